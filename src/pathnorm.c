/* pathnorm.c - the one canonical spelling of a request path (pure). */
#include "config.h"

#include <stddef.h>

#include "pathnorm.h"

/*
 * The rules, contract section 4.2, as decided here:
 *
 *  - raw bytes: RFC 3986 pchar without ';' (unreserved, sub-delims but ';',
 *    ':' and '@'), plus '/' and '%' escapes; everything else is refused,
 *    including '?' (the caller splits the query off first);
 *  - an escape of an unreserved character is decoded ("%2e" is '.');
 *  - an escape of '/', '\\', '%', a control or DEL is refused;
 *  - an escape of any other ASCII byte (space, '"', '#', ';', '?', sub-delims,
 *    ...) stays encoded, since decoding it would change what it means;
 *  - escaped bytes >= 0x80 must spell shortest-form UTF-8 of a scalar value
 *    (no overlong forms, surrogates, values above U+10FFFF, stray or
 *    missing continuation bytes) and stay encoded;
 *  - kept escapes get upper-case hex;
 *  - empty segments are dropped, "." and ".." (also when spelled with
 *    escapes) are resolved, and a ".." above the root is refused;
 *  - a trailing slash, or a final "." or "..", leaves a trailing slash.
 *
 * The output is built in place in out: each input byte yields at most one
 * output byte, so out never holds more than what was read so far.
 */

/* Shortest-form UTF-8 progress across a run of escaped bytes. */
struct pathnorm_utf8 {
	unsigned int need; /* continuation bytes still expected */
	unsigned char lo;  /* range of the next continuation byte */
	unsigned char hi;
	const char *why; /* the reason when it falls outside lo..hi */
};

static int
pathnorm_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* RFC 3986 section 2.3: safe to decode, same meaning either way. */
static int
pathnorm_unreserved(unsigned char c)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c == '-' || c == '.' || c == '_' || c == '~';
}

/*
 * Judge a raw byte other than '/' and '%': NULL when it may appear
 * unencoded in a path, else the reason it may not.
 */
static const char *
pathnorm_raw_why(unsigned char c)
{
	if (pathnorm_unreserved(c))
		return NULL;
	switch (c) {
	case '!':
	case '$':
	case '&':
	case '\'':
	case '(':
	case ')':
	case '*':
	case '+':
	case ',':
	case '=':
	case ':':
	case '@':
		return NULL;
	case ';':
		/* Path parameters: containers cut "..;/" differently. */
		return "raw semicolon";
	case '\\':
		return "raw backslash";
	case ' ':
		return "raw space";
	case '#':
		return "raw fragment mark";
	case '?':
		return "raw question mark";
	default:
		break;
	}
	if (c < 0x20 || c == 0x7f)
		return "raw control character";
	if (c > 0x7f)
		return "raw non-ASCII byte";
	return "raw character not allowed in a path";
}

/*
 * Feed one escaped byte >= 0x80 to the UTF-8 check. Returns NULL, or the
 * reason the run of escaped bytes is not shortest-form UTF-8.
 */
static const char *
pathnorm_utf8_step(struct pathnorm_utf8 *u, unsigned char v)
{
	if (u->need > 0) {
		if (v >= u->lo && v <= u->hi) {
			u->need--;
			u->lo = 0x80;
			u->hi = 0xbf;
			return NULL;
		}
		/* A continuation byte out of range means a bad scalar value. */
		if (v <= 0xbf)
			return u->why;
		return "truncated UTF-8 sequence";
	}
	u->lo = 0x80;
	u->hi = 0xbf;
	u->why = "truncated UTF-8 sequence";
	if (v <= 0xbf)
		return "stray UTF-8 continuation byte";
	if (v <= 0xc1)
		return "overlong UTF-8";
	if (v <= 0xdf) {
		u->need = 1;
		return NULL;
	}
	if (v <= 0xef) {
		u->need = 2;
		if (v == 0xe0) {
			u->lo = 0xa0;
			u->why = "overlong UTF-8";
		} else if (v == 0xed) {
			u->hi = 0x9f;
			u->why = "UTF-8 surrogate";
		}
		return NULL;
	}
	if (v <= 0xf4) {
		u->need = 3;
		if (v == 0xf0) {
			u->lo = 0x90;
			u->why = "overlong UTF-8";
		} else if (v == 0xf4) {
			u->hi = 0x8f;
			u->why = "UTF-8 above U+10FFFF";
		}
		return NULL;
	}
	return "UTF-8 above U+10FFFF";
}

/*
 * Canonicalise the raw path in/inlen into out (room for outsz bytes) as
 * contract section 4.2 says. Returns 0 with the NUL-terminated result in
 * out and its length in *outlen, or -1 with a static reason in *why and an
 * empty string in out. A path of outsz bytes or more is "path too long".
 */
int
pathnorm(const char *in, size_t inlen, char *out, size_t outsz, size_t *outlen,
    const char **why)
{
	static const char hex[] = "0123456789ABCDEF";
	struct pathnorm_utf8 u = { 0, 0x80, 0xbf, NULL };
	const unsigned char *p = (const unsigned char *)in;
	const char *reason = NULL;
	size_t i, o, seg, k;
	int hi, lo, ret = -1;
	unsigned char c, v;

	o = 0;
	if (inlen == 0) {
		reason = "empty path";
		goto out;
	}
	if (p[0] != '/') {
		/* "*", absolute-form and authority-form are not ours. */
		reason = "path does not start with /";
		goto out;
	}
	/* Checked before anything is copied; then o <= i < inlen < outsz. */
	if (out == NULL || outsz == 0 || inlen > outsz - 1) {
		reason = "path too long";
		goto out;
	}

	out[o++] = '/';
	i = 1;
	while (i < inlen) {
		if (p[i] == '/') {
			/* An empty segment: "//" is "/". */
			i++;
			continue;
		}

		/* Copy one segment; out[0..o) ends with '/' here. */
		seg = o;
		while (i < inlen && p[i] != '/') {
			c = p[i];
			if (c != '%') {
				if (u.need > 0) {
					reason = "truncated UTF-8 sequence";
					goto out;
				}
				if ((reason = pathnorm_raw_why(c)) != NULL)
					goto out;
				out[o++] = (char)c;
				i++;
				continue;
			}
			if (inlen - i < 3 ||
			    (hi = pathnorm_hexval(p[i + 1])) < 0 ||
			    (lo = pathnorm_hexval(p[i + 2])) < 0) {
				reason = "invalid percent-encoding";
				goto out;
			}
			v = (unsigned char)(hi << 4 | lo);
			i += 3;
			if (v >= 0x80) {
				if ((reason = pathnorm_utf8_step(&u, v)) !=
				    NULL)
					goto out;
			} else if (u.need > 0) {
				reason = "truncated UTF-8 sequence";
				goto out;
			} else if (v == '/') {
				reason = "encoded slash";
				goto out;
			} else if (v == '\\') {
				reason = "encoded backslash";
				goto out;
			} else if (v == '%') {
				/* Double encoding: a second decode differs. */
				reason = "encoded percent";
				goto out;
			} else if (v < 0x20 || v == 0x7f) {
				reason = "encoded control character";
				goto out;
			} else if (pathnorm_unreserved(v)) {
				out[o++] = (char)v;
				continue;
			}
			out[o++] = '%';
			out[o++] = hex[v >> 4];
			out[o++] = hex[v & 0x0f];
		}
		if (u.need > 0) {
			reason = "truncated UTF-8 sequence";
			goto out;
		}

		if (o - seg == 1 && out[seg] == '.') {
			/* "/a/." and "/a/./" both leave "/a/". */
			o = seg;
		} else if (o - seg == 2 && out[seg] == '.' &&
		    out[seg + 1] == '.') {
			if (seg == 1) {
				reason = "dot-dot above root";
				goto out;
			}
			/* Drop the previous segment, keep its leading '/'. */
			k = seg - 2;
			while (out[k] != '/')
				k--;
			o = k + 1;
		} else if (i < inlen) {
			out[o++] = '/';
		}
		if (i < inlen)
			i++;
	}
	ret = 0;
out:
	if (ret == 0) {
		out[o] = '\0';
		if (outlen != NULL)
			*outlen = o;
	} else {
		if (out != NULL && outsz > 0)
			out[0] = '\0';
		if (outlen != NULL)
			*outlen = 0;
		if (why != NULL)
			*why = reason;
	}
	return ret;
}
