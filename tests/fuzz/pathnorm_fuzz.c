/* pathnorm_fuzz.c - fuzz pathnorm() and check its output invariants. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "pathnorm.h"

#define PATHNORM_FUZZ_MAX 65536

/* A byte a canonical path may hold raw: pchar without ';', '/' and '%'. */
static int
pathnorm_fuzz_allowed(unsigned char c)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("-._~!$&'()*+,=:@/%", c) != NULL;
}

static int
pathnorm_fuzz_hex(char c)
{
	const char *digits = "0123456789ABCDEF", *d;

	if (c == '\0' || (d = strchr(digits, c)) == NULL)
		return -1;
	return (int)(d - digits);
}

/* Abort unless s/len is canonical: contract 4.2 as the output sees it. */
static void
pathnorm_fuzz_check(const char *s, size_t len, size_t inlen)
{
	size_t i;
	int hi, lo, v;

	if (len > inlen || len == 0 || s[0] != '/' || s[len] != '\0' ||
	    strlen(s) != len)
		abort();
	if (strstr(s, "//") != NULL || strstr(s, "/./") != NULL ||
	    strstr(s, "/../") != NULL)
		abort();
	if ((len >= 2 && strcmp(s + len - 2, "/.") == 0) ||
	    (len >= 3 && strcmp(s + len - 3, "/..") == 0))
		abort();
	for (i = 0; i < len; i++) {
		if (!pathnorm_fuzz_allowed((unsigned char)s[i]))
			abort();
		if (s[i] != '%')
			continue;
		if (i + 2 >= len || (hi = pathnorm_fuzz_hex(s[i + 1])) < 0 ||
		    (lo = pathnorm_fuzz_hex(s[i + 2])) < 0)
			abort();
		v = hi << 4 | lo;
		/* Unreserved escapes are decoded; forbidden ones refused. */
		if ((v >= 'A' && v <= 'Z') || (v >= 'a' && v <= 'z') ||
		    (v >= '0' && v <= '9') || v == '-' || v == '.' ||
		    v == '_' || v == '~' || v == '/' || v == '\\' || v == '%' ||
		    v < 0x20 || v == 0x7f)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *out = NULL, *again = NULL;
	const char *why = NULL;
	size_t n = 0, n2 = 0;
	int rc;

	if (size > PATHNORM_FUZZ_MAX)
		return 0;
	if ((out = malloc(size + 1)) == NULL ||
	    (again = malloc(size + 1)) == NULL)
		goto out;

	rc = pathnorm((const char *)data, size, out, size + 1, &n, &why);
	if (rc != 0) {
		if (rc != -1 || why == NULL || *why == '\0' || out[0] != '\0')
			abort();
		goto out;
	}
	pathnorm_fuzz_check(out, n, size);

	/* The canonical form is a fixed point. */
	why = NULL;
	if (pathnorm(out, n, again, n + 1, &n2, &why) != 0 || n2 != n ||
	    memcmp(again, out, n + 1) != 0)
		abort();

	/* One byte short of inlen + 1 is always refused. */
	if (pathnorm((const char *)data, size, again, size, &n2, &why) != -1)
		abort();
out:
	free(out);
	free(again);
	return 0;
}
