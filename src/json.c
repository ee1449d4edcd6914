/* json.c - a strict RFC 8259 JSON parser into a flat token array (pure). */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/*
 * What "strict" means here, beyond the RFC 8259 grammar:
 *  - the input is UTF-8 (RFC 8259 section 8.1) in shortest form, without
 *    surrogates or values above U+10FFFF, and without a byte order mark;
 *  - a \u escape of a surrogate must be a high one followed at once by an
 *    escaped low one (RFC 8259 section 8.2 leaves lone ones undefined;
 *    I-JSON, RFC 7493, forbids them);
 *  - duplicate keys are refused (I-JSON again), unless asked otherwise;
 *  - nesting and the length of a number are bounded.
 * Numbers are validated, not converted: json_get_* convert on demand.
 */

#define JSON_DUP_PAIRWISE 32 /* members compared pairwise; above: a table */

struct json_parser {
	const unsigned char *base, *p, *end;
	struct json_tok *t;
	size_t ntok, cap;
	const char *why;
	uint32_t *tab; /* open-addressing table for big objects */
	size_t tabcap;
};

static int
json_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Four hex digits at p (at least 4 bytes available), or -1. */
static long
json_hex4(const unsigned char *p)
{
	long v = 0;
	int i, d;

	for (i = 0; i < 4; i++) {
		if ((d = json_hexval(p[i])) < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

static size_t
json_put_utf8(unsigned long cp, unsigned char *out)
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xc0 | (cp >> 6));
		out[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xe0 | (cp >> 12));
		out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (unsigned char)(0xf0 | (cp >> 18));
	out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * Decode one unit (a raw byte or one escape) of an already validated
 * string at *pp into out (up to 4 bytes); advance *pp. Returns the count.
 */
static size_t
json_unesc1(const unsigned char **pp, unsigned char *out)
{
	const unsigned char *p = *pp;
	unsigned long cp, lo;

	if (*p != '\\') {
		out[0] = *p;
		*pp = p + 1;
		return 1;
	}
	*pp = p + 2;
	switch (p[1]) {
	case 'b':
		out[0] = '\b';
		return 1;
	case 'f':
		out[0] = '\f';
		return 1;
	case 'n':
		out[0] = '\n';
		return 1;
	case 'r':
		out[0] = '\r';
		return 1;
	case 't':
		out[0] = '\t';
		return 1;
	case 'u':
		break;
	default: /* '"', '\\', '/' */
		out[0] = p[1];
		return 1;
	}
	cp = (unsigned long)json_hex4(p + 2);
	*pp = p + 6;
	if (cp >= 0xd800 && cp <= 0xdbff) {
		lo = (unsigned long)json_hex4(p + 8);
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		*pp = p + 12;
	}
	return json_put_utf8(cp, out);
}

static uint32_t
json_hash_bytes(uint32_t h, const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619U;
	}
	return h;
}

/* FNV-1a of the decoded string. */
static uint32_t
json_str_hash(const unsigned char *base, const struct json_tok *t)
{
	const unsigned char *p = base + t->off, *end = p + t->len;
	unsigned char u[4];
	uint32_t h = 2166136261U;
	size_t n;

	if (!t->esc)
		return json_hash_bytes(h, p, t->len);
	while (p < end) {
		n = json_unesc1(&p, u);
		h = json_hash_bytes(h, u, n);
	}
	return h;
}

/* Two validated string tokens decode to the same bytes. */
static int
json_str_same(const unsigned char *base, const struct json_tok *a,
    const struct json_tok *b)
{
	const unsigned char *p = base + a->off, *pe = p + a->len;
	const unsigned char *q = base + b->off, *qe = q + b->len;
	unsigned char u[4], v[4];
	size_t un = 0, ui = 0, vn = 0, vi = 0;

	if (!a->esc && !b->esc)
		return a->len == b->len && memcmp(p, q, a->len) == 0;
	/* Compare the decoded byte streams; units may differ in size. */
	for (;;) {
		if (ui == un && p < pe) {
			un = json_unesc1(&p, u);
			ui = 0;
		}
		if (vi == vn && q < qe) {
			vn = json_unesc1(&q, v);
			vi = 0;
		}
		if (ui == un || vi == vn)
			return ui == un && vi == vn;
		if (u[ui++] != v[vi++])
			return 0;
	}
}

/* Length of a valid UTF-8 sequence; see json.h. */
size_t
json_utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		else if (c == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

static int
json_fail(struct json_parser *ps, const unsigned char *at, const char *why)
{
	ps->p = at;
	ps->why = why;
	return -1;
}

static int
json_tok_new(struct json_parser *ps, enum json_type type)
{
	struct json_tok *tok;

	if (ps->ntok >= ps->cap)
		return json_fail(ps, ps->p, "too many values");
	tok = &ps->t[ps->ntok];
	memset(tok, 0, sizeof(*tok));
	tok->type = (uint8_t)type;
	tok->off = (uint32_t)(ps->p - ps->base);
	tok->end = (uint32_t)(ps->ntok + 1);
	return (int)ps->ntok++;
}

/* A string; ps->p is just past the opening quote. */
static int
json_string(struct json_parser *ps, struct json_tok *tok, int key)
{
	const unsigned char *p = ps->p, *end = ps->end, *start = p;
	long u, lo;
	size_t n;
	int esc = 0;

	for (;;) {
		while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' &&
		    *p != '\\')
			p++;
		if (p == end)
			return json_fail(ps, start - 1, "unterminated string");
		if (*p == '"')
			break;
		if (*p < 0x20)
			return json_fail(ps, p, "control character in string");
		if (*p >= 0x80) {
			if ((n = json_utf8_len(p, end)) == 0)
				return json_fail(ps, p, "invalid UTF-8");
			p += n;
			continue;
		}
		/* A backslash escape. */
		esc = 1;
		if (end - p < 2)
			return json_fail(ps, p, "unterminated string");
		switch (p[1]) {
		case '"':
		case '\\':
		case '/':
		case 'b':
		case 'f':
		case 'n':
		case 'r':
		case 't':
			p += 2;
			continue;
		case 'u':
			break;
		default:
			return json_fail(ps, p, "invalid escape");
		}
		if (end - p < 6 || (u = json_hex4(p + 2)) < 0)
			return json_fail(ps, p, "invalid \\u escape");
		if (u >= 0xdc00 && u <= 0xdfff)
			return json_fail(ps, p, "lone low surrogate");
		if (u >= 0xd800 && u <= 0xdbff) {
			if (end - p < 12 || p[6] != '\\' || p[7] != 'u' ||
			    (lo = json_hex4(p + 8)) < 0xdc00 || lo > 0xdfff)
				return json_fail(ps, p, "lone high surrogate");
			p += 12;
		} else
			p += 6;
	}
	tok->off = (uint32_t)(start - ps->base);
	tok->len = (uint32_t)(p - start);
	tok->esc = (uint8_t)esc;
	ps->p = p + 1;
	if (key)
		tok->hash = json_str_hash(ps->base, tok);
	return 0;
}

static int
json_isdigit(const unsigned char *p, const unsigned char *end)
{
	return p < end && *p >= '0' && *p <= '9';
}

static int
json_number(struct json_parser *ps, struct json_tok *tok, unsigned maxnum)
{
	const unsigned char *p = ps->p, *end = ps->end, *start = p;

	if (*p == '-')
		p++;
	if (!json_isdigit(p, end))
		return json_fail(ps, start, "invalid number");
	if (*p == '0') {
		p++;
		if (json_isdigit(p, end))
			return json_fail(ps, start, "leading zero in number");
	} else
		while (json_isdigit(p, end))
			p++;
	if (p < end && *p == '.') {
		p++;
		if (!json_isdigit(p, end))
			return json_fail(ps, start, "invalid number fraction");
		while (json_isdigit(p, end))
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (!json_isdigit(p, end))
			return json_fail(ps, start, "invalid number exponent");
		while (json_isdigit(p, end))
			p++;
	}
	if ((size_t)(p - start) > maxnum)
		return json_fail(ps, start, "number too long");
	tok->len = (uint32_t)(p - start);
	ps->p = p;
	return 0;
}

/* Refuse an object (just closed) that holds a key twice. */
static int
json_dupcheck(struct json_parser *ps, size_t obj)
{
	const struct json_tok *t = ps->t;
	uint32_t small[JSON_DUP_PAIRWISE], *tab, mask;
	size_t n = t[obj].n, i, j, k, want, slot;

	if (n < 2)
		return 0;
	if (n <= JSON_DUP_PAIRWISE) {
		for (i = 0, k = obj + 1; i < n; i++, k = t[k + 1].end)
			small[i] = (uint32_t)k;
		for (i = 1; i < n; i++)
			for (j = 0; j < i; j++)
				if (t[small[i]].hash == t[small[j]].hash &&
				    json_str_same(ps->base, &t[small[i]],
				        &t[small[j]]))
					return json_fail(ps,
					    ps->base + t[small[i]].off - 1,
					    "duplicate key");
		return 0;
	}
	for (want = 64; want < 2 * n; want *= 2)
		;
	if (want > ps->tabcap) {
		if ((tab = realloc(ps->tab, want * sizeof(*tab))) == NULL)
			return json_fail(ps, ps->p, "out of memory");
		ps->tab = tab;
		ps->tabcap = want;
	}
	tab = ps->tab;
	memset(tab, 0, want * sizeof(*tab));
	mask = (uint32_t)(want - 1);
	for (i = 0, k = obj + 1; i < n; i++, k = t[k + 1].end) {
		slot = t[k].hash & mask;
		while (tab[slot] != 0) {
			j = tab[slot] - 1;
			if (t[j].hash == t[k].hash &&
			    json_str_same(ps->base, &t[j], &t[k]))
				return json_fail(ps, ps->base + t[k].off - 1,
				    "duplicate key");
			slot = (slot + 1) & mask;
		}
		tab[slot] = (uint32_t)(k + 1);
	}
	return 0;
}

static void
json_ws(struct json_parser *ps)
{
	const unsigned char *p = ps->p;

	while (p < ps->end &&
	    (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	ps->p = p;
}

static int
json_literal(struct json_parser *ps, const char *lit, size_t n)
{
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, lit, n) != 0)
		return json_fail(ps, ps->p, "invalid literal");
	ps->t[ps->ntok - 1].len = (uint32_t)n;
	ps->p += n;
	return 0;
}

/* Parse one JSON text; see json.h. */
int
json_parse(const char *s, size_t len, struct json_tok *t, size_t cap,
    const struct json_opts *opts, struct json_err *err)
{
	uint32_t stack[JSON_MAX_DEPTH];
	struct json_parser ps;
	unsigned maxdepth = JSON_MAX_DEPTH, maxnum = JSON_MAX_NUMBER;
	size_t depth = 0, top;
	int i, allow_dups = 0, ret = -1;

	memset(&ps, 0, sizeof(ps));
	ps.base = ps.p = (const unsigned char *)s;
	ps.end = ps.base + len;
	ps.t = t;
	ps.cap = cap > INT_MAX ? INT_MAX : cap;
	if (opts != NULL) {
		if (opts->max_depth != 0 && opts->max_depth < maxdepth)
			maxdepth = opts->max_depth;
		if (opts->max_number != 0)
			maxnum = opts->max_number;
		allow_dups = opts->allow_dups;
	}
	if (len > JSON_MAX_INPUT) {
		json_fail(&ps, ps.base, "input too large");
		goto out;
	}
	if (len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
		json_fail(&ps, ps.base, "byte order mark");
		goto out;
	}
	json_ws(&ps);
value:
	if (ps.p == ps.end) {
		json_fail(&ps, ps.p, "unexpected end of input");
		goto out;
	}
	if (depth > 0 && t[stack[depth - 1]].type == JSON_ARRAY)
		t[stack[depth - 1]].n++;
	switch (*ps.p) {
	case '{':
	case '[':
		if ((i = json_tok_new(&ps,
		         *ps.p == '{' ? JSON_OBJECT : JSON_ARRAY)) < 0)
			goto out;
		if (depth >= maxdepth) {
			json_fail(&ps, ps.p, "nesting too deep");
			goto out;
		}
		stack[depth++] = (uint32_t)i;
		ps.p++;
		json_ws(&ps);
		if (ps.p < ps.end &&
		    *ps.p == (t[i].type == JSON_OBJECT ? '}' : ']'))
			goto close;
		if (t[i].type == JSON_OBJECT)
			goto key;
		goto value;
	case '"':
		if ((i = json_tok_new(&ps, JSON_STRING)) < 0)
			goto out;
		ps.p++;
		if (json_string(&ps, &t[i], 0) < 0)
			goto out;
		break;
	case 't':
		if (json_tok_new(&ps, JSON_TRUE) < 0 ||
		    json_literal(&ps, "true", 4) < 0)
			goto out;
		break;
	case 'f':
		if (json_tok_new(&ps, JSON_FALSE) < 0 ||
		    json_literal(&ps, "false", 5) < 0)
			goto out;
		break;
	case 'n':
		if (json_tok_new(&ps, JSON_NULL) < 0 ||
		    json_literal(&ps, "null", 4) < 0)
			goto out;
		break;
	default:
		if (*ps.p != '-' && !(*ps.p >= '0' && *ps.p <= '9')) {
			json_fail(&ps, ps.p,
			    *ps.p >= 0x80 ? "invalid UTF-8 or character"
			                  : "unexpected character");
			goto out;
		}
		if ((i = json_tok_new(&ps, JSON_NUMBER)) < 0 ||
		    json_number(&ps, &t[i], maxnum) < 0)
			goto out;
		break;
	}
after:
	json_ws(&ps);
	if (depth == 0) {
		if (ps.p != ps.end) {
			json_fail(&ps, ps.p, "trailing characters");
			goto out;
		}
		ret = (int)ps.ntok;
		goto out;
	}
	if (ps.p == ps.end) {
		json_fail(&ps, ps.p, "unexpected end of input");
		goto out;
	}
	top = stack[depth - 1];
	if (*ps.p == ',') {
		ps.p++;
		json_ws(&ps);
		if (t[top].type == JSON_OBJECT)
			goto key;
		goto value;
	}
	if (*ps.p != (t[top].type == JSON_OBJECT ? '}' : ']')) {
		json_fail(&ps, ps.p,
		    t[top].type == JSON_OBJECT ? "expected ',' or '}'"
		                               : "expected ',' or ']'");
		goto out;
	}
close:
	top = stack[--depth];
	t[top].end = (uint32_t)ps.ntok;
	t[top].len = (uint32_t)(ps.p - ps.base) - t[top].off + 1;
	ps.p++;
	if (t[top].type == JSON_OBJECT && !allow_dups &&
	    json_dupcheck(&ps, top) < 0)
		goto out;
	goto after;
key:
	if (ps.p == ps.end || *ps.p != '"') {
		json_fail(&ps, ps.p,
		    ps.p == ps.end ? "unexpected end of input"
		                   : "expected a string key");
		goto out;
	}
	t[stack[depth - 1]].n++;
	if ((i = json_tok_new(&ps, JSON_STRING)) < 0)
		goto out;
	ps.p++;
	if (json_string(&ps, &t[i], 1) < 0)
		goto out;
	json_ws(&ps);
	if (ps.p == ps.end || *ps.p != ':') {
		json_fail(&ps, ps.p, "expected ':'");
		goto out;
	}
	ps.p++;
	json_ws(&ps);
	goto value;
out:
	if (ret < 0 && err != NULL) {
		err->off = (size_t)(ps.p - ps.base);
		err->why = ps.why;
	}
	free(ps.tab);
	return ret;
}

/* Compare a string token with a literal; see json.h. */
int
json_str_eq(const char *s, const struct json_tok *t, const char *lit,
    size_t len)
{
	const unsigned char *p, *end, *q = (const unsigned char *)lit;
	const unsigned char *qe = q + len;
	unsigned char u[4];
	size_t n;

	if (t->type != JSON_STRING)
		return 0;
	p = (const unsigned char *)s + t->off;
	end = p + t->len;
	if (!t->esc)
		return t->len == len && memcmp(p, lit, len) == 0;
	while (p < end) {
		n = json_unesc1(&p, u);
		if ((size_t)(qe - q) < n || memcmp(q, u, n) != 0)
			return 0;
		q += n;
	}
	return q == qe;
}

/* Decode a string token; see json.h. */
size_t
json_str_get(const char *s, const struct json_tok *t, char *dst, size_t cap)
{
	const unsigned char *p, *end;
	unsigned char u[4];
	size_t n, i, out = 0;

	if (t->type != JSON_STRING) {
		if (cap > 0)
			dst[0] = '\0';
		return 0;
	}
	p = (const unsigned char *)s + t->off;
	end = p + t->len;
	if (!t->esc) {
		if (cap > 0) {
			n = t->len < cap - 1 ? t->len : cap - 1;
			memcpy(dst, p, n);
			dst[n] = '\0';
		}
		return t->len;
	}
	while (p < end) {
		n = json_unesc1(&p, u);
		for (i = 0; i < n; i++, out++)
			if (out + 1 < cap)
				dst[out] = (char)u[i];
	}
	if (cap > 0)
		dst[out < cap ? out : cap - 1] = '\0';
	return out;
}

/* Convert an integer number token; see json.h. */
int
json_get_u64(const char *s, const struct json_tok *t, uint64_t *v)
{
	const char *p = s + t->off, *end = p + t->len;
	uint64_t x = 0;
	unsigned d;

	if (t->type != JSON_NUMBER || *p == '-')
		return -1;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -1; /* fraction or exponent */
		d = (unsigned)(*p - '0');
		if (x > (UINT64_MAX - d) / 10)
			return -1;
		x = x * 10 + d;
	}
	*v = x;
	return 0;
}

int
json_get_i64(const char *s, const struct json_tok *t, int64_t *v)
{
	struct json_tok u;
	uint64_t x;
	int neg;

	if (t->type != JSON_NUMBER)
		return -1;
	u = *t;
	if ((neg = (s[t->off] == '-'))) {
		u.off++;
		u.len--;
	}
	if (json_get_u64(s, &u, &x) < 0)
		return -1;
	if (neg) {
		if (x > (uint64_t)INT64_MAX + 1)
			return -1;
		*v = x == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)x;
	} else {
		if (x > (uint64_t)INT64_MAX)
			return -1;
		*v = (int64_t)x;
	}
	return 0;
}

int
json_get_double(const char *s, const struct json_tok *t, double *v)
{
	char buf[JSON_MAX_NUMBER * 4 + 1], *end;
	double x;

	if (t->type != JSON_NUMBER || t->len >= sizeof(buf))
		return -1;
	memcpy(buf, s + t->off, t->len);
	buf[t->len] = '\0';
	errno = 0;
	x = strtod(buf, &end);
	if (*end != '\0' || isinf(x))
		return -1;
	*v = x;
	return 0;
}

/* Find a member of an object; see json.h. */
int
json_obj_get(const char *s, const struct json_tok *t, int obj, const char *key)
{
	size_t i, k, n, len = strlen(key);

	if (obj < 0 || t[obj].type != JSON_OBJECT)
		return -1;
	n = t[obj].n;
	for (i = 0, k = (size_t)obj + 1; i < n; i++, k = t[k + 1].end)
		if (json_str_eq(s, &t[k], key, len))
			return (int)k + 1;
	return -1;
}

const char *
json_type_str(enum json_type type)
{
	switch (type) {
	case JSON_NULL:
		return "null";
	case JSON_FALSE:
	case JSON_TRUE:
		return "boolean";
	case JSON_NUMBER:
		return "number";
	case JSON_STRING:
		return "string";
	case JSON_ARRAY:
		return "array";
	case JSON_OBJECT:
		return "object";
	}
	return "?";
}
