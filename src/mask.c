/* mask.c - response masking for data minimisation (contract 4.3, pure). */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "mask.h"
#include "policy.h"

/*
 * How a mask reads a document (contract 4.3 leaves these to us):
 *  - The body is parsed once, strictly (json.c: UTF-8 in shortest form,
 *    no lone surrogates, no duplicate keys, at most JSON_MAX_DEPTH levels,
 *    numbers of at most MASK_MAX_NUMBER bytes). Anything else is refused
 *    whole: ambiguous data is never passed on.
 *  - A rule's pointer is RFC 6901. On an array, "*" addresses every item
 *    and a decimal index one item ("-" and indexes past the end address
 *    nothing). On an object every token, "*" included, names one member.
 *    A token that addresses nothing is no error: nothing changes.
 *  - drop removes an object member, key and value. An array item it
 *    addresses is replaced by null, so the positions of the others hold;
 *    the whole document (an empty pointer) becomes null.
 *  - keep first/last keeps the first and last Unicode code points of a
 *    string (an escape such as \u00e9 or a surrogate pair \ud83d\ude00 is
 *    one) and writes one '*' for each other one; when first + last
 *    reaches the length nothing is masked. Kept code points are copied
 *    as they were written, escapes included.
 *  - Under keep a number, true or false becomes a string of its text,
 *    masked the same way (a phone number sent as a number must not leak);
 *    null stays null. On an object or array keep applies to every such
 *    value inside (member names are left alone): fail closed when the
 *    data is more structured than the rule expected.
 *  - Rules that address the same value combine: drop wins; keeps take
 *    the smaller first and the smaller last, which keeps no more than
 *    applying them one after the other would.
 * The output is the document re-serialised compactly: tokens are copied
 * byte for byte, whitespace between them goes.
 */

#define MASK_MAX_NUMBER 1024 /* bytes of one number in a masked body */

/* What the rules ask of one value token. */
struct mask_mark {
	uint32_t tok;
	uint32_t first, last;
	int drop;
};

struct mask_ctx {
	const char *in;
	const struct json_tok *t;
	size_t ntok;
	struct mask_mark *marks; /* sorted by tok once resolved */
	size_t nmarks, marks_cap;
	size_t cur; /* the next mark the writer may need */
	char *buf;
	size_t len, cap; /* cap excludes the terminating NUL */
	int overflow;
	size_t changed;
};

/* 0x80 in each byte of x equal to the byte repeated in pat, else 0. */
static uint64_t
mask_eq_bytes(uint64_t x, uint64_t pat)
{
	const uint64_t lo7 = 0x7f7f7f7f7f7f7f7fULL;
	uint64_t t = x ^ pat;

	/* The high bit of each byte of t that is not zero, exactly. */
	t = ((t & lo7) + lo7) | t;
	return ~t & ~lo7;
}

/*
 * An upper bound on the tokens json_parse makes of in. Every value but
 * the root, and every key, comes just after a '[', '{', ',' or ':' of
 * its own; counting such bytes inside strings as well, and the control
 * bytes that fold onto them below, only loosens the bound.
 */
static size_t
mask_count_tokens(const char *in, size_t len)
{
	const uint64_t ones = 0x0101010101010101ULL;
	uint64_t x;
	size_t i = 0, n = 1;
	unsigned char c;

	/* OR 0x20 folds '[' onto '{', and keeps ',' and ':' as they are. */
	for (; len - i >= 8; i += 8) {
		memcpy(&x, in + i, 8);
		x |= ones * 0x20;
		x = mask_eq_bytes(x, ones * '{') |
		    mask_eq_bytes(x, ones * ',') | mask_eq_bytes(x, ones * ':');
		/* A byte matches one pattern at most; add up the 0/1 bytes. */
		n += (size_t)(((x >> 7) * ones) >> 56);
	}
	for (; i < len; i++) {
		c = (unsigned char)(in[i] | 0x20);
		n += c == '{' || c == ',' || c == ':';
	}
	return n;
}

static int
mask_mark_add(struct mask_ctx *c, uint32_t tok,
    const struct policy_mask_rule *r)
{
	struct mask_mark *m;
	size_t cap;

	if (c->nmarks == c->marks_cap) {
		cap = c->marks_cap ? c->marks_cap * 2 : 16;
		if (cap > SIZE_MAX / sizeof(*m))
			return -1;
		if ((m = realloc(c->marks, cap * sizeof(*m))) == NULL)
			return -1;
		c->marks = m;
		c->marks_cap = cap;
	}
	m = &c->marks[c->nmarks++];
	m->tok = tok;
	m->drop = r->drop;
	m->first = r->first;
	m->last = r->last;
	return 0;
}

/* An RFC 6901 array index: "0" or digits without a leading zero. */
static int
mask_index(const char *s, uint32_t *v)
{
	uint64_t x = 0;

	if (*s == '\0' || (*s == '0' && s[1] != '\0'))
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		x = x * 10 + (uint64_t)(*s - '0');
		if (x > UINT32_MAX)
			return -1;
	}
	*v = (uint32_t)x;
	return 0;
}

/*
 * Mark every value that tokens depth.. of r address below value i.
 * Returns 0, or -1 when out of memory. Each step goes one level down the
 * document, so the recursion is at most JSON_MAX_DEPTH deep.
 */
static int
mask_resolve(struct mask_ctx *c, const struct policy_mask_rule *r, size_t depth,
    uint32_t i)
{
	const struct json_tok *t = c->t;
	const char *tok;
	uint32_t k, n, idx;
	size_t len;

	if (depth == r->ntokens)
		return mask_mark_add(c, i, r);
	tok = r->tokens[depth];
	if (t[i].type == JSON_OBJECT) {
		len = strlen(tok);
		for (n = 0, k = i + 1; n < t[i].n; n++, k = t[k + 1].end)
			if (json_str_eq(c->in, &t[k], tok, len))
				return mask_resolve(c, r, depth + 1, k + 1);
		return 0;
	}
	if (t[i].type != JSON_ARRAY)
		return 0;
	if (strcmp(tok, "*") == 0) {
		for (n = 0, k = i + 1; n < t[i].n; n++, k = t[k].end)
			if (mask_resolve(c, r, depth + 1, k) == -1)
				return -1;
		return 0;
	}
	if (mask_index(tok, &idx) == -1 || idx >= t[i].n)
		return 0;
	for (n = 0, k = i + 1; n < idx; n++)
		k = t[k].end;
	return mask_resolve(c, r, depth + 1, k);
}

static int
mask_mark_cmp(const void *a, const void *b)
{
	const struct mask_mark *x = a, *y = b;

	return x->tok < y->tok ? -1 : x->tok > y->tok;
}

/* Sort the marks and fold those of one value into one (see the top). */
static void
mask_marks_merge(struct mask_ctx *c)
{
	struct mask_mark *m = c->marks, *o;
	size_t i, n = 0;

	if (c->nmarks == 0)
		return;
	qsort(m, c->nmarks, sizeof(*m), mask_mark_cmp);
	for (i = 1; i < c->nmarks; i++) {
		o = &m[n];
		if (m[i].tok != o->tok) {
			m[++n] = m[i];
			continue;
		}
		if (m[i].drop || o->drop) {
			o->drop = 1;
			continue;
		}
		if (m[i].first < o->first)
			o->first = m[i].first;
		if (m[i].last < o->last)
			o->last = m[i].last;
	}
	c->nmarks = n + 1;
}

/*
 * Bytes the output may exceed the input by: a value dropped from an
 * array becomes "null" (at most 3 more than its shortest spelling, 1),
 * a number or literal under keep gains two quotes; masked strings and
 * everything else only shrink. No token grows more than 3.
 */
static size_t
mask_growth(const struct mask_ctx *c)
{
	const struct mask_mark *m;
	size_t i, extra = 3, most;

	most = 3 * c->ntok + 3;
	for (i = 0; i < c->nmarks && extra < most; i++) {
		m = &c->marks[i];
		if (m->drop)
			extra += 3;
		else
			extra += 2 * (size_t)(c->t[m->tok].end - m->tok);
	}
	return extra < most ? extra : most;
}

/* The merged mark of value token i, or NULL; tokens come in order. */
static const struct mask_mark *
mask_mark_find(struct mask_ctx *c, uint32_t i)
{
	while (c->cur < c->nmarks && c->marks[c->cur].tok < i)
		c->cur++;
	if (c->cur < c->nmarks && c->marks[c->cur].tok == i)
		return &c->marks[c->cur];
	return NULL;
}

static void
mask_put(struct mask_ctx *c, const char *p, size_t n)
{
	if (c->overflow || n > c->cap - c->len) {
		c->overflow = 1;
		return;
	}
	memcpy(c->buf + c->len, p, n);
	c->len += n;
}

static void
mask_putc(struct mask_ctx *c, char ch)
{
	mask_put(c, &ch, 1);
}

static void
mask_fill(struct mask_ctx *c, char ch, size_t n)
{
	if (c->overflow || n > c->cap - c->len) {
		c->overflow = 1;
		return;
	}
	memset(c->buf + c->len, ch, n);
	c->len += n;
}

/*
 * Bytes of the one code point written at p (p < end) in the raw text of
 * a string json_parse accepted: a UTF-8 sequence, an escape, or an
 * escaped surrogate pair. Never past end, whatever the bytes.
 */
static size_t
mask_char_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char a, b;
	size_t n;

	if (*p < 0x80 && *p != '\\')
		return 1;
	if (*p == '\\') {
		n = 6;
		if (end - p < 6 || p[1] != 'u')
			n = 2;
		else {
			a = (unsigned char)(p[2] | 0x20);
			b = (unsigned char)(p[3] | 0x20);
			/* A high surrogate, D800 to DBFF, has its low one. */
			if (a == 'd' &&
			    ((b >= '8' && b <= '9') || (b >= 'a' && b <= 'b')))
				n = 12;
		}
	} else
		n = *p < 0xe0 ? 2 : *p < 0xf0 ? 3 : 4;
	return n < (size_t)(end - p) ? n : (size_t)(end - p);
}

/*
 * Write the len bytes of raw string text s as a string that keeps its
 * first and last code points and has one '*' for each other one. esc: s
 * holds escapes. text: s is the ASCII text of a number or literal, always
 * written as a string and so always counted as changed.
 */
static void
mask_string(struct mask_ctx *c, const char *s, size_t len, int esc, int text,
    uint32_t first, uint32_t last)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	const unsigned char *q;
	size_t n = 0, k, a, b;

	if (text)
		n = len;
	else if (!esc) {
		/* Valid UTF-8: a code point starts at each non-continuation. */
		for (q = p; q < end; q++)
			n += (*q & 0xc0) != 0x80;
	} else
		for (q = p; q < end; q += mask_char_len(q, end))
			n++;
	mask_putc(c, '"');
	if ((uint64_t)first + last >= n) {
		mask_put(c, s, len);
		mask_putc(c, '"');
		c->changed += text != 0;
		return;
	}
	if (text) {
		a = first;
		b = n - last;
	} else {
		for (q = p, k = 0; k < first; k++)
			q += mask_char_len(q, end);
		a = (size_t)(q - p);
		for (; k < n - last; k++)
			q += mask_char_len(q, end);
		b = (size_t)(q - p);
	}
	mask_put(c, s, a);
	mask_fill(c, '*', n - first - last);
	mask_put(c, s + b, len - b);
	mask_putc(c, '"');
	c->changed++;
}

struct mask_keep {
	int on;
	uint32_t first, last;
};

static void mask_emit(struct mask_ctx *c, uint32_t i,
    const struct mask_keep *keep);

/* Write value i, not dropped, under keep and its own mark m. */
static void
mask_emit_child(struct mask_ctx *c, uint32_t i, const struct mask_mark *m,
    const struct mask_keep *keep)
{
	struct mask_keep k = *keep;

	if (m != NULL) {
		if (!k.on) {
			k.on = 1;
			k.first = m->first;
			k.last = m->last;
		} else {
			if (m->first < k.first)
				k.first = m->first;
			if (m->last < k.last)
				k.last = m->last;
		}
	}
	mask_emit(c, i, &k);
}

/* Write value i compactly; every keep above it applies. */
static void
mask_emit(struct mask_ctx *c, uint32_t i, const struct mask_keep *keep)
{
	const struct json_tok *t = c->t, *v = &t[i];
	const struct mask_mark *m;
	const char *p = c->in + v->off;
	uint32_t k, n;
	int sep = 0;

	switch (v->type) {
	case JSON_OBJECT:
		mask_putc(c, '{');
		for (n = 0, k = i + 1; n < v->n; n++, k = t[k + 1].end) {
			m = mask_mark_find(c, k + 1);
			if (m != NULL && m->drop) {
				c->changed++;
				continue;
			}
			if (sep)
				mask_putc(c, ',');
			sep = 1;
			mask_put(c, c->in + t[k].off - 1, t[k].len + 2);
			mask_putc(c, ':');
			mask_emit_child(c, k + 1, m, keep);
		}
		mask_putc(c, '}');
		break;
	case JSON_ARRAY:
		mask_putc(c, '[');
		for (n = 0, k = i + 1; n < v->n; n++, k = t[k].end) {
			if (n > 0)
				mask_putc(c, ',');
			m = mask_mark_find(c, k);
			if (m != NULL && m->drop) {
				mask_put(c, "null", 4);
				c->changed++;
				continue;
			}
			mask_emit_child(c, k, m, keep);
		}
		mask_putc(c, ']');
		break;
	case JSON_STRING:
		if (keep->on)
			mask_string(c, p, v->len, v->esc, 0, keep->first,
			    keep->last);
		else
			mask_put(c, p - 1, (size_t)v->len + 2);
		break;
	case JSON_NULL:
		mask_put(c, "null", 4);
		break;
	default: /* a number, true or false */
		if (keep->on)
			mask_string(c, p, v->len, 0, 1, keep->first,
			    keep->last);
		else
			mask_put(c, p, v->len);
		break;
	}
}

/* Mask a JSON body; see mask.h. */
int
mask_apply(const struct policy_mask *m, const char *in, size_t inlen,
    char **out, size_t *outlen, size_t *changed, const char **why)
{
	static const struct mask_keep none = { 0, 0, 0 };
	struct json_opts opts;
	struct json_err jerr;
	struct json_tok *t = NULL;
	struct mask_ctx c;
	const struct mask_mark *root;
	size_t i, cap;
	int n, ret = -1;

	memset(&c, 0, sizeof(c));
	*out = NULL;
	*outlen = 0;
	*changed = 0;
	*why = NULL;
	if (inlen > MASK_MAX_BODY) {
		*why = "body larger than the masking limit";
		goto out;
	}
	if (inlen == 0) {
		*why = "empty body";
		goto out;
	}
	cap = mask_count_tokens(in, inlen);
	if ((t = calloc(cap, sizeof(*t))) == NULL) {
		*why = "out of memory";
		goto out;
	}
	memset(&opts, 0, sizeof(opts));
	opts.max_depth = JSON_MAX_DEPTH;
	opts.max_number = MASK_MAX_NUMBER;
	memset(&jerr, 0, sizeof(jerr));
	if ((n = json_parse(in, inlen, t, cap, &opts, &jerr)) < 0) {
		*why = jerr.why != NULL ? jerr.why : "malformed JSON";
		goto out;
	}
	c.in = in;
	c.t = t;
	c.ntok = (size_t)n;
	for (i = 0; m != NULL && i < m->nrules; i++)
		if (mask_resolve(&c, &m->rules[i], 0, 0) == -1) {
			*why = "out of memory";
			goto out;
		}
	mask_marks_merge(&c);
	c.cap = inlen + mask_growth(&c);
	if ((c.buf = malloc(c.cap + 1)) == NULL) {
		*why = "out of memory";
		goto out;
	}
	root = mask_mark_find(&c, 0);
	if (root != NULL && root->drop) {
		mask_put(&c, "null", 4);
		c.changed++;
	} else
		mask_emit_child(&c, 0, root, &none);
	if (c.overflow) {
		*why = "masked body larger than its bound";
		goto out;
	}
	c.buf[c.len] = '\0';
	*out = c.buf;
	*outlen = c.len;
	*changed = c.changed;
	c.buf = NULL;
	ret = 0;
out:
	free(c.buf);
	free(c.marks);
	free(t);
	return ret;
}
