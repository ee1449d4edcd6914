/* json.h - a strict RFC 8259 JSON parser into a flat token array (pure). */
#ifndef JSON_H
#define JSON_H

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 64          /* nesting limit, hard */
#define JSON_MAX_NUMBER 64         /* default bytes of one number */
#define JSON_MAX_INPUT 0x7fffffffU /* offsets are 32 bits */

enum json_type {
	JSON_NULL = 0,
	JSON_FALSE,
	JSON_TRUE,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

/*
 * One value. Tokens are in document order: an array is followed by its
 * items, an object by key, value, key, value... (each key a JSON_STRING
 * token, each value a whole subtree). end is the index just past the
 * subtree, so siblings are reached by jumping to end. Strings point at
 * their raw bytes between the quotes, escapes undecoded (see
 * json_str_get); everything is a view into the caller's input.
 */
struct json_tok {
	uint32_t off;  /* first byte; strings: just after the opening quote */
	uint32_t len;  /* bytes; strings: raw length between the quotes */
	uint32_t end;  /* index of the first token after this subtree */
	uint32_t n;    /* arrays: items; objects: members; else 0 */
	uint32_t hash; /* object keys: hash of the decoded key */
	uint8_t type;  /* enum json_type */
	uint8_t esc;   /* strings: holds at least one backslash escape */
};

struct json_opts {
	unsigned max_depth;  /* 0: JSON_MAX_DEPTH; larger values are clamped */
	unsigned max_number; /* bytes of a number; 0: JSON_MAX_NUMBER */
	int allow_dups;      /* accept duplicate keys (default: refuse) */
};

/* Where and why a parse failed; why is a static string. */
struct json_err {
	size_t off;
	const char *why;
};

/*
 * Parse exactly one JSON text (RFC 8259: any value, optional surrounding
 * whitespace, nothing else) of len bytes into at most cap tokens. The
 * input must be valid UTF-8 without a byte order mark; strings must not
 * hold raw control characters, lone surrogates or invalid escapes; a key
 * that appears twice in one object is refused unless opts->allow_dups.
 * opts may be NULL. Returns the number of tokens (t[0] is the root), or
 * -1 with err filled (err may be NULL). Allocates only to check objects
 * of more than 32 members for duplicates.
 */
int json_parse(const char *s, size_t len, struct json_tok *t, size_t cap,
    const struct json_opts *opts, struct json_err *err);

/* True when string token t of s decodes to exactly the len bytes of lit. */
int json_str_eq(const char *s, const struct json_tok *t, const char *lit,
    size_t len);

/*
 * Decode string token t of s into dst (cap bytes, NUL-terminated when cap
 * > 0). Returns the decoded length; a result >= cap means it was cut.
 */
size_t json_str_get(const char *s, const struct json_tok *t, char *dst,
    size_t cap);

/* Numbers without fraction or exponent. Return 0, or -1 when out of range. */
int json_get_u64(const char *s, const struct json_tok *t, uint64_t *v);
int json_get_i64(const char *s, const struct json_tok *t, int64_t *v);
/* Any number; -1 when it overflows a double. */
int json_get_double(const char *s, const struct json_tok *t, double *v);

/*
 * The value of member key in the object at index obj, as a token index,
 * or -1 when absent (or obj is not an object).
 */
int json_obj_get(const char *s, const struct json_tok *t, int obj,
    const char *key);

/*
 * Length of the UTF-8 sequence at p (p < end): 1 for ASCII, 2..4 for a
 * shortest-form encoding of a scalar value (no surrogates, nothing above
 * U+10FFFF), 0 when the bytes are not valid UTF-8.
 */
size_t json_utf8_len(const unsigned char *p, const unsigned char *end);

const char *json_type_str(enum json_type type);

#endif /* JSON_H */
