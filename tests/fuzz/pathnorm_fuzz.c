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

static int
pathnorm_fuzz_hexany(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return c - 'A' + 10;
}

/*
 * A second, simpler spelling of the rules for an accepted input: split on
 * '/', decode each segment apart, keep a stack of segments. Writes the
 * expected path into want (len + 1 bytes); dec has len bytes, seg and
 * seglen len entries each.
 */
static void
pathnorm_fuzz_reference(const uint8_t *in, size_t len, char *want, char *dec,
    size_t *seg, size_t *seglen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, j, d = 0, s0, top = 0, w = 0, k;
	int v, trailing = 1;

	for (i = 1; i <= len; i = j + 1) {
		for (j = i; j < len && in[j] != '/'; j++)
			;
		s0 = d;
		for (k = i; k < j; k++) {
			if (in[k] != '%') {
				dec[d++] = (char)in[k];
				continue;
			}
			v = pathnorm_fuzz_hexany(in[k + 1]) << 4 |
			    pathnorm_fuzz_hexany(in[k + 2]);
			k += 2;
			if ((v >= 'A' && v <= 'Z') || (v >= 'a' && v <= 'z') ||
			    (v >= '0' && v <= '9') || v == '-' || v == '.' ||
			    v == '_' || v == '~') {
				dec[d++] = (char)v;
			} else {
				dec[d++] = '%';
				dec[d++] = hex[v >> 4];
				dec[d++] = hex[v & 0x0f];
			}
		}
		if (d - s0 == 0 || (d - s0 == 1 && dec[s0] == '.')) {
			trailing = 1;
		} else if (d - s0 == 2 && dec[s0] == '.' &&
		    dec[s0 + 1] == '.') {
			if (top == 0)
				abort();
			top--;
			trailing = 1;
		} else {
			seg[top] = s0;
			seglen[top++] = d - s0;
			trailing = 0;
		}
	}
	want[w++] = '/';
	for (k = 0; k < top; k++) {
		memcpy(want + w, dec + seg[k], seglen[k]);
		w += seglen[k];
		if (k + 1 < top || trailing)
			want[w++] = '/';
	}
	want[w] = '\0';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *out = NULL, *again = NULL, *dec = NULL;
	size_t *seg = NULL, *seglen = NULL;
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

	/* The same answer as the stack-based reference. */
	if ((dec = malloc(size)) == NULL ||
	    (seg = calloc(size, sizeof(*seg))) == NULL ||
	    (seglen = calloc(size, sizeof(*seglen))) == NULL)
		goto out;
	pathnorm_fuzz_reference(data, size, again, dec, seg, seglen);
	if (strcmp(again, out) != 0)
		abort();

	/* One byte short of inlen + 1 is always refused. */
	if (pathnorm((const char *)data, size, again, size, &n2, &why) != -1)
		abort();
out:
	free(out);
	free(again);
	free(dec);
	free(seg);
	free(seglen);
	return 0;
}
