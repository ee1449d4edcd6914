/* diag.h - collected configuration diagnostics as file:line:col: message. */
#ifndef DIAG_H
#define DIAG_H

#include <stddef.h>
#include <stdio.h>

#include "compat.h"

#define DIAG_MAX_ERRORS 50 /* per diag; later ones are counted, not kept */

enum diag_kind {
	DIAG_ERROR = 0,
	DIAG_WARNING,
};

struct diag_entry {
	enum diag_kind kind;
	char *text; /* "file:line:col: message" or "file: message" */
};

struct diag {
	struct diag_entry *v;
	size_t n, cap;
	size_t nerrors, nwarnings;
	size_t dropped; /* errors past DIAG_MAX_ERRORS */
};

void diag_init(struct diag *dg);
void diag_clear(struct diag *dg);
/* line and col are 1-based; 0 omits them. */
void diag_error(struct diag *dg, const char *file, size_t line, size_t col,
    const char *fmt, ...) PRINTFLIKE(5, 6);
void diag_warn(struct diag *dg, const char *file, size_t line, size_t col,
    const char *fmt, ...) PRINTFLIKE(5, 6);
void diag_print(const struct diag *dg, FILE *fp);
const char *diag_first_error(const struct diag *dg);

#endif /* DIAG_H */
