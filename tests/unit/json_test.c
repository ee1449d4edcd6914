/* json_test.c - the strict JSON parser: grammar, UTF-8, limits, accessors. */
#include "config.h"

#include <sys/mman.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "json.h"
#include "tap.h"

#define JSON_TEST_TOKS 4096

/*
 * One row per behaviour: want is the token count, or -1 when the text
 * must be refused. len is the input length when it holds a NUL, else 0.
 */
static const struct {
	const char *name;
	const char *in;
	size_t len;
	int want;
} cases[] = {
	/* Scalars at the top (RFC 8259 allows any value). */
	{ "null", "null", 0, 1 },
	{ "true", "true", 0, 1 },
	{ "false", "false", 0, 1 },
	{ "zero", "0", 0, 1 },
	{ "negative zero", "-0", 0, 1 },
	{ "integer", "12345", 0, 1 },
	{ "fraction", "3.25", 0, 1 },
	{ "exponent", "1e10", 0, 1 },
	{ "signed exponent", "-1.5E-3", 0, 1 },
	{ "exponent plus", "2e+8", 0, 1 },
	{ "string", "\"abc\"", 0, 1 },
	{ "empty string", "\"\"", 0, 1 },
	{ "surrounding whitespace", " \t\r\n1 \n", 0, 1 },

	/* Containers. */
	{ "empty object", "{}", 0, 1 },
	{ "empty array", "[]", 0, 1 },
	{ "object", "{\"a\":1,\"b\":[true,null]}", 0, 7 },
	{ "nested", "[[[]],{}]", 0, 4 },
	{ "spaces inside", "{ \"a\" : [ 1 , 2 ] }", 0, 5 },

	/* Strings: escapes and UTF-8. */
	{ "all simple escapes", "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"", 0, 1 },
	{ "unicode escape", "\"\\u00e9\"", 0, 1 },
	{ "escaped NUL", "\"a\\u0000b\"", 0, 1 },
	{ "surrogate pair", "\"\\ud83d\\ude00\"", 0, 1 },
	{ "raw two-byte UTF-8", "\"\xc3\xa9\"", 0, 1 },
	{ "raw CJK", "\"\xe5\x8d\x97\xe5\xae\x81\"", 0, 1 },
	{ "raw four-byte UTF-8", "\"\xf0\x9f\x98\x80\"", 0, 1 },
	{ "raw U+10FFFF", "\"\xf4\x8f\xbf\xbf\"", 0, 1 },
	{ "raw DEL allowed", "\"\x7f\"", 0, 1 },
	{ "raw U+2028", "\"\xe2\x80\xa8\"", 0, 1 },

	/* Refused: structure. */
	{ "empty input", "", 0, -1 },
	{ "only whitespace", "  ", 0, -1 },
	{ "trailing comma in array", "[1,]", 0, -1 },
	{ "trailing comma in object", "{\"a\":1,}", 0, -1 },
	{ "leading comma", "[,1]", 0, -1 },
	{ "missing comma", "[1 2]", 0, -1 },
	{ "missing colon", "{\"a\" 1}", 0, -1 },
	{ "missing value", "{\"a\":}", 0, -1 },
	{ "unquoted key", "{a:1}", 0, -1 },
	{ "single quotes", "'a'", 0, -1 },
	{ "number key", "{1:2}", 0, -1 },
	{ "unclosed array", "[1,2", 0, -1 },
	{ "unclosed object", "{\"a\":1", 0, -1 },
	{ "mismatched close", "[1}", 0, -1 },
	{ "extra close", "[1]]", 0, -1 },
	{ "two values", "1 2", 0, -1 },
	{ "trailing garbage", "{} x", 0, -1 },
	{ "comment", "[1 /* c */]", 0, -1 },
	{ "byte order mark", "\xef\xbb\xbf{}", 0, -1 },
	{ "NUL after value", "1\0", 2, -1 },
	{ "form feed is not whitespace", "\f1", 0, -1 },
	{ "vertical tab is not whitespace", "\v1", 0, -1 },

	/* Refused: literals and numbers. */
	{ "capital True", "True", 0, -1 },
	{ "truncated literal", "nul", 0, -1 },
	{ "literal prefix", "nullx", 0, -1 },
	{ "NaN", "NaN", 0, -1 },
	{ "Infinity", "Infinity", 0, -1 },
	{ "plus sign", "+1", 0, -1 },
	{ "leading zero", "01", 0, -1 },
	{ "negative leading zero", "-01", 0, -1 },
	{ "bare minus", "-", 0, -1 },
	{ "dot without digits", "1.", 0, -1 },
	{ "leading dot", ".5", 0, -1 },
	{ "exponent without digits", "1e", 0, -1 },
	{ "exponent sign only", "1e+", 0, -1 },
	{ "hex number", "0x10", 0, -1 },
	{ "number too long",
	    "1234567890123456789012345678901234567890123456789012345678901"
	    "2345",
	    0, -1 },

	/* Refused: strings. */
	{ "unterminated string", "\"abc", 0, -1 },
	{ "raw newline in string", "\"a\nb\"", 0, -1 },
	{ "raw tab in string", "\"a\tb\"", 0, -1 },
	{ "raw NUL in string", "\"a\0b\"", 5, -1 },
	{ "raw 0x1f in string", "\"\x1f\"", 0, -1 },
	{ "bad escape letter", "\"\\x41\"", 0, -1 },
	{ "escaped single quote", "\"\\'\"", 0, -1 },
	{ "short unicode escape", "\"\\u12\"", 0, -1 },
	{ "non-hex unicode escape", "\"\\u12g4\"", 0, -1 },
	{ "lone high surrogate", "\"\\ud800\"", 0, -1 },
	{ "lone low surrogate", "\"\\udc00\"", 0, -1 },
	{ "high then non-surrogate", "\"\\ud800\\u0041\"", 0, -1 },
	{ "high then raw text", "\"\\ud800abcdef\"", 0, -1 },
	{ "two high surrogates", "\"\\ud800\\ud800\"", 0, -1 },
	{ "backslash at end", "\"\\", 0, -1 },
	{ "overlong slash C0 AF", "\"\xc0\xaf\"", 0, -1 },
	{ "overlong C1", "\"\xc1\xbf\"", 0, -1 },
	{ "overlong three-byte", "\"\xe0\x80\xaf\"", 0, -1 },
	{ "overlong four-byte", "\"\xf0\x80\x80\xaf\"", 0, -1 },
	{ "UTF-8 surrogate ED A0 80", "\"\xed\xa0\x80\"", 0, -1 },
	{ "above U+10FFFF", "\"\xf4\x90\x80\x80\"", 0, -1 },
	{ "F5 lead byte", "\"\xf5\x80\x80\x80\"", 0, -1 },
	{ "lone continuation", "\"\x80\"", 0, -1 },
	{ "truncated sequence", "\"\xe5\x8d\"", 0, -1 },
	{ "FF byte", "\"\xff\"", 0, -1 },
	{ "Latin-1 outside string", "\xe9", 0, -1 },

	/* Duplicate keys. */
	{ "duplicate key", "{\"a\":1,\"a\":2}", 0, -1 },
	{ "duplicate via escape", "{\"a\":1,\"\\u0061\":2}", 0, -1 },
	{ "duplicate via surrogate pair",
	    "{\"\xf0\x9f\x98\x80\":1,\"\\ud83d\\ude00\":2}", 0, -1 },
	{ "duplicate nested", "{\"o\":{\"x\":1,\"y\":2,\"x\":3}}", 0, -1 },
	{ "same key in sibling objects", "[{\"a\":1},{\"a\":2}]", 0, 7 },
	{ "keys differing by case", "{\"a\":1,\"A\":2}", 0, 5 },
	{ "key equal to a value", "{\"a\":\"a\",\"b\":\"a\"}", 0, 5 },
};

/* Copy s to the very end of a page followed by an unmapped page. */
static char *guard;
static long pagesz;

static const char *
json_test_place(const char *s, size_t len)
{
	if (guard == NULL || len > (size_t)pagesz)
		return s;
	memcpy(guard + pagesz - len, s, len);
	return guard + pagesz - len;
}

static int
json_test_parse(const char *s, size_t len, struct json_tok *t, size_t cap,
    const struct json_opts *o, struct json_err *e)
{
	return json_parse(json_test_place(s, len), len, t, cap, o, e);
}

static void
json_test_table(struct json_tok *t)
{
	struct json_err e;
	size_t i, len;
	int n;

	for (i = 0; i < nitems(cases); i++) {
		len = cases[i].len ? cases[i].len : strlen(cases[i].in);
		e.why = NULL;
		n = json_test_parse(cases[i].in, len, t, JSON_TEST_TOKS, NULL,
		    &e);
		if (!tap_ok(n == cases[i].want, "%s", cases[i].name))
			tap_diag("got %d want %d (%s at %zu)", n, cases[i].want,
			    e.why ? e.why : "-", e.off);
		if (n < 0 && e.why == NULL)
			tap_ok(0, "%s: no reason given", cases[i].name);
	}
}

static char *
json_test_nest(size_t depth, const char *open, const char *close)
{
	char *s;
	size_t i, ol = strlen(open), cl = strlen(close);

	if ((s = malloc(depth * (ol + cl) + 2)) == NULL)
		exit(1);
	for (i = 0; i < depth; i++)
		memcpy(s + i * ol, open, ol);
	s[depth * ol] = '1';
	for (i = 0; i < depth; i++)
		memcpy(s + depth * ol + 1 + i * cl, close, cl);
	s[depth * (ol + cl) + 1] = '\0';
	return s;
}

static void
json_test_limits(struct json_tok *t)
{
	struct json_opts o;
	struct json_err e;
	char *s, buf[256];
	size_t i, len;
	int n;

	s = json_test_nest(JSON_MAX_DEPTH, "[", "]");
	n = json_parse(s, strlen(s), t, JSON_TEST_TOKS, NULL, &e);
	tap_ok(n == JSON_MAX_DEPTH + 1, "nesting at the depth limit");
	free(s);
	s = json_test_nest(JSON_MAX_DEPTH + 1, "[", "]");
	n = json_parse(s, strlen(s), t, JSON_TEST_TOKS, NULL, &e);
	tap_ok(n < 0 && strcmp(e.why, "nesting too deep") == 0,
	    "depth bomb one past the limit");
	free(s);
	s = json_test_nest(100000, "{\"a\":", "}");
	n = json_parse(s, strlen(s), t, JSON_TEST_TOKS, NULL, &e);
	tap_ok(n < 0, "depth bomb of 100000 objects");
	free(s);
	s = json_test_nest(100000, "[", "");
	n = json_parse(s, strlen(s), t, JSON_TEST_TOKS, NULL, &e);
	tap_ok(n < 0, "100000 unclosed brackets");
	free(s);

	memset(&o, 0, sizeof(o));
	o.max_depth = 2;
	tap_ok(json_parse("[[1]]", 5, t, 8, &o, &e) == 3, "max_depth 2 ok");
	tap_ok(json_parse("[[[1]]]", 7, t, 8, &o, &e) < 0,
	    "max_depth 2 "
	    "refuses 3");
	tap_ok(json_parse("[1,2,3]", 7, t, 3, NULL, &e) < 0 &&
	        strcmp(e.why, "too many values") == 0,
	    "token array too small");
	tap_ok(json_parse("[1,2,3]", 7, t, 4, NULL, &e) == 4,
	    "token array exactly big enough");
	o.max_depth = 0;
	o.max_number = 4;
	tap_ok(json_parse("1234", 4, t, 8, &o, &e) == 1, "max_number 4 ok");
	tap_ok(json_parse("12345", 5, t, 8, &o, &e) < 0,
	    "max_number 4 "
	    "refuses 5");
	o.max_number = 0;
	o.allow_dups = 1;
	tap_ok(json_parse("{\"a\":1,\"a\":2}", 13, t, 8, &o, &e) == 5,
	    "allow_dups accepts a duplicate");

	/* A big object goes through the hash table. */
	len = 0;
	s = malloc(20 * 2000 + 16);
	if (s == NULL)
		exit(1);
	s[len++] = '{';
	for (i = 0; i < 2000; i++)
		len += (size_t)sprintf(s + len, "%s\"k%zu\":%zu", i ? "," : "",
		    i, i);
	s[len++] = '}';
	tap_ok(json_parse(s, len, t, JSON_TEST_TOKS, NULL, &e) == 4001,
	    "2000 distinct keys");
	len--;
	len += (size_t)sprintf(s + len, ",\"\\u006b1234\":0}");
	n = json_parse(s, len, t, JSON_TEST_TOKS, NULL, &e);
	tap_ok(n < 0 && strcmp(e.why, "duplicate key") == 0,
	    "duplicate (escaped) among 2001 keys");
	free(s);

	/* Long strings cross any internal chunking. */
	len = 100000;
	if ((s = malloc(len + 2)) == NULL)
		exit(1);
	s[0] = '"';
	memset(s + 1, 'x', len - 2);
	s[len - 1] = '"';
	tap_ok(json_parse(s, len, t, 4, NULL, &e) == 1, "100000-byte string");
	s[len / 2] = '\x01';
	tap_ok(json_parse(s, len, t, 4, NULL, &e) < 0 && e.off == len / 2,
	    "control byte deep in a long string, offset reported");
	free(s);

	snprintf(buf, sizeof(buf), "[1,");
	tap_ok(json_parse(buf, strlen(buf), t, 8, NULL, &e) < 0 && e.off == 3,
	    "end of input offset");
}

static void
json_test_access(struct json_tok *t)
{
	static const char doc[] =
	    "{\"s\":\"a\\u00e9\\n\\ud83d\\ude00\",\"n\":18446744073709551615,"
	    "\"big\":18446744073709551616,\"neg\":-9223372036854775808,"
	    "\"f\":2.5,\"e\":1e400,\"frac\":1.0,\"o\":{\"x\":[1,2]},"
	    "\"k\\u0065y\":true}";
	char out[64];
	uint64_t u;
	int64_t i;
	double d;
	int n, v;

	n = json_parse(doc, strlen(doc), t, JSON_TEST_TOKS, NULL, NULL);
	tap_ok(n == 23, "accessor document parses (%d tokens)", n);
	if (n < 0)
		return;
	tap_ok(t[0].type == JSON_OBJECT && t[0].n == 9 && t[0].end == 23,
	    "root object members and end");
	v = json_obj_get(doc, t, 0, "s");
	tap_ok(v > 0 && json_str_get(doc, &t[v], out, sizeof(out)) == 8 &&
	        memcmp(out, "a\xc3\xa9\n\xf0\x9f\x98\x80", 9) == 0,
	    "string decodes escapes and surrogate pairs");
	tap_ok(v > 0 &&
	        json_str_eq(doc, &t[v], "a\xc3\xa9\n\xf0\x9f\x98\x80", 8),
	    "json_str_eq on an escaped string");
	tap_ok(v > 0 && !json_str_eq(doc, &t[v], "a\xc3\xa9\n", 4),
	    "json_str_eq refuses a prefix");
	tap_ok(v > 0 && json_str_get(doc, &t[v], out, 3) == 8 &&
	        strcmp(out, "a\xc3") == 0,
	    "json_str_get cuts and reports the full length");
	v = json_obj_get(doc, t, 0, "n");
	tap_ok(v > 0 && json_get_u64(doc, &t[v], &u) == 0 && u == UINT64_MAX,
	    "u64 maximum");
	v = json_obj_get(doc, t, 0, "big");
	tap_ok(v > 0 && json_get_u64(doc, &t[v], &u) < 0, "u64 overflow");
	tap_ok(v > 0 && json_get_double(doc, &t[v], &d) == 0 && d > 1.8e19,
	    "huge integer as double");
	v = json_obj_get(doc, t, 0, "neg");
	tap_ok(v > 0 && json_get_i64(doc, &t[v], &i) == 0 && i == INT64_MIN,
	    "i64 minimum");
	tap_ok(v > 0 && json_get_u64(doc, &t[v], &u) < 0, "u64 of negative");
	v = json_obj_get(doc, t, 0, "f");
	tap_ok(v > 0 && json_get_double(doc, &t[v], &d) == 0 && d == 2.5,
	    "double");
	tap_ok(v > 0 && json_get_i64(doc, &t[v], &i) < 0, "i64 of fraction");
	v = json_obj_get(doc, t, 0, "e");
	tap_ok(v > 0 && json_get_double(doc, &t[v], &d) < 0,
	    "1e400 overflows a double");
	v = json_obj_get(doc, t, 0, "frac");
	tap_ok(v > 0 && json_get_u64(doc, &t[v], &u) < 0,
	    "1.0 is not an "
	    "integer");
	v = json_obj_get(doc, t, 0, "o");
	tap_ok(v > 0 && t[v].type == JSON_OBJECT && t[v].n == 1,
	    "nested object");
	v = json_obj_get(doc, t, v, "x");
	tap_ok(v > 0 && t[v].type == JSON_ARRAY && t[v].n == 2 &&
	        t[v].end == (uint32_t)v + 3,
	    "array items and end");
	tap_ok(json_obj_get(doc, t, 0, "key") > 0, "escaped key found");
	tap_ok(json_obj_get(doc, t, 0, "missing") < 0, "absent key");
	tap_ok(json_obj_get(doc, t, 1, "s") < 0, "json_obj_get on a string");
	tap_streq(json_type_str(JSON_ARRAY), "array", "type names");
}

int
main(void)
{
	struct json_tok *t;

	pagesz = sysconf(_SC_PAGESIZE);
	guard = mmap(NULL, (size_t)pagesz * 2, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (guard == MAP_FAILED ||
	    mprotect(guard + pagesz, (size_t)pagesz, PROT_NONE) != 0)
		guard = NULL;
	if ((t = calloc(JSON_TEST_TOKS, sizeof(*t))) == NULL)
		return 1;
	json_test_table(t);
	json_test_limits(t);
	json_test_access(t);
	free(t);
	tap_done();
	tap_exit();
}
