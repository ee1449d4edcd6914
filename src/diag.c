/* diag.c - collected configuration diagnostics as file:line:col: message. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "xmalloc.h"

void
diag_init(struct diag *dg)
{
	memset(dg, 0, sizeof(*dg));
}

void
diag_clear(struct diag *dg)
{
	size_t i;

	for (i = 0; i < dg->n; i++)
		free(dg->v[i].text);
	free(dg->v);
	memset(dg, 0, sizeof(*dg));
}

static void diag_add(struct diag *, enum diag_kind, const char *, size_t,
    size_t, const char *, va_list) __attribute__((format(printf, 6, 0)));

static void
diag_add(struct diag *dg, enum diag_kind kind, const char *file, size_t line,
    size_t col, const char *fmt, va_list ap)
{
	char msg[1024], text[1400];

	if (kind == DIAG_ERROR) {
		dg->nerrors++;
		if (dg->nerrors > DIAG_MAX_ERRORS) {
			dg->dropped++;
			return;
		}
	} else
		dg->nwarnings++;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (file == NULL)
		snprintf(text, sizeof(text), "%s%s",
		    kind == DIAG_WARNING ? "warning: " : "", msg);
	else if (line == 0)
		snprintf(text, sizeof(text), "%s: %s%s", file,
		    kind == DIAG_WARNING ? "warning: " : "", msg);
	else
		snprintf(text, sizeof(text), "%s:%zu:%zu: %s%s", file, line,
		    col, kind == DIAG_WARNING ? "warning: " : "", msg);
	if (dg->n == dg->cap) {
		dg->cap = dg->cap ? dg->cap * 2 : 16;
		dg->v = xreallocarray(dg->v, dg->cap, sizeof(*dg->v));
	}
	dg->v[dg->n].kind = kind;
	dg->v[dg->n].text = xstrdup(text);
	dg->n++;
}

/* Record an error at file:line:col (1-based; line 0 omits the position). */
void
diag_error(struct diag *dg, const char *file, size_t line, size_t col,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_add(dg, DIAG_ERROR, file, line, col, fmt, ap);
	va_end(ap);
}

/* Record a warning; warnings never make a configuration unusable. */
void
diag_warn(struct diag *dg, const char *file, size_t line, size_t col,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_add(dg, DIAG_WARNING, file, line, col, fmt, ap);
	va_end(ap);
}

/* Print every entry, one per line, in the order recorded. */
void
diag_print(const struct diag *dg, FILE *fp)
{
	size_t i;

	for (i = 0; i < dg->n; i++)
		fprintf(fp, "%s\n", dg->v[i].text);
	if (dg->dropped)
		fprintf(fp, "(%zu more errors not shown)\n", dg->dropped);
}

/* The first error's text, or NULL when there is none. */
const char *
diag_first_error(const struct diag *dg)
{
	size_t i;

	for (i = 0; i < dg->n; i++)
		if (dg->v[i].kind == DIAG_ERROR)
			return dg->v[i].text;
	return NULL;
}
