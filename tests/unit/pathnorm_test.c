/* pathnorm_test.c - canonical request paths, contract section 4.2. */
#include "config.h"

#include <sys/mman.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "pathnorm.h"
#include "tap.h"

#define PATHNORM_TEST_LONG 60000

/*
 * One row per behaviour. want is the canonical path, or NULL when the
 * path is bad_request, and then why is the expected reason. len is the
 * input length when the input holds a NUL, else 0 for strlen(in).
 */
static const struct {
	const char *name;
	const char *in;
	size_t len;
	const char *want;
	const char *why;
} cases[] = {
	/* Plain paths and slashes. */
	{ "root", "/", 0, "/", NULL },
	{ "simple", "/a/b", 0, "/a/b", NULL },
	{ "trailing slash kept", "/a/b/", 0, "/a/b/", NULL },
	{ "double slash merged", "/a//b", 0, "/a/b", NULL },
	{ "leading double slash merged", "//a", 0, "/a", NULL },
	{ "runs of slashes merged", "///a///b///", 0, "/a/b/", NULL },
	{ "only slashes", "////", 0, "/", NULL },
	{ "ordinary resource path", "/finance/public/report-2026_q3.pdf", 0,
	    "/finance/public/report-2026_q3.pdf", NULL },
	{ "sub-delims and colon and at raw", "/a!$&'()*+,=b/u:x@y", 0,
	    "/a!$&'()*+,=b/u:x@y", NULL },
	{ "tilde raw", "/~user/x", 0, "/~user/x", NULL },

	/* Dot segments. */
	{ "dot segment dropped", "/a/./b", 0, "/a/b", NULL },
	{ "trailing dot leaves slash", "/a/.", 0, "/a/", NULL },
	{ "trailing dot slash", "/a/./", 0, "/a/", NULL },
	{ "dot at root", "/.", 0, "/", NULL },
	{ "dotdot pops", "/a/../b", 0, "/b", NULL },
	{ "trailing dotdot to root", "/a/..", 0, "/", NULL },
	{ "trailing dotdot slash", "/a/b/../", 0, "/a/", NULL },
	{ "two dotdots", "/a/b/c/../../d", 0, "/a/d", NULL },
	{ "dot then dotdot", "/a/./../b", 0, "/b", NULL },
	{ "dotdot across merged slashes", "/a//..//b", 0, "/b", NULL },
	{ "dotdot back to root then down", "/a/../b/../c/", 0, "/c/", NULL },
	{ "three dots is a name", "/a/.../b", 0, "/a/.../b", NULL },
	{ "dot prefix is a name", "/a/.hidden", 0, "/a/.hidden", NULL },
	{ "dotdot prefix is a name", "/a/..a/b", 0, "/a/..a/b", NULL },
	{ "dotdot suffix is a name", "/a/b../c", 0, "/a/b../c", NULL },
	{ "encoded dot segment", "/a/%2e/b", 0, "/a/b", NULL },
	{ "encoded dotdot lower", "/a/b/%2e%2e/c", 0, "/a/c", NULL },
	{ "encoded dotdot mixed case", "/a/b/%2E%2e/c", 0, "/a/c", NULL },
	{ "half encoded dotdot", "/a/b/.%2E/c", 0, "/a/c", NULL },
	{ "encoded trailing dotdot", "/a/%2e%2e", 0, "/", NULL },
	{ "dotdot after escaped segment", "/%E5%8D%97/../b", 0, "/b", NULL },
	{ "encoded dot in a name", "/a%2eb", 0, "/a.b", NULL },

	/* Escapes: decoded, kept, upper-cased. */
	{ "unreserved decoded", "/%41%62%7E%2D%5F%30", 0, "/Ab~-_0", NULL },
	{ "lower hex tilde decoded", "/%7e", 0, "/~", NULL },
	{ "semicolon escape kept upper", "/a%3b", 0, "/a%3B", NULL },
	{ "space escape kept", "/a%20b", 0, "/a%20b", NULL },
	{ "quote escape kept", "/%22", 0, "/%22", NULL },
	{ "hash escape kept", "/%23x", 0, "/%23x", NULL },
	{ "question escape kept upper", "/%3f", 0, "/%3F", NULL },
	{ "sub-delim escapes kept", "/%21%24%26%2b", 0, "/%21%24%26%2B", NULL },
	{ "bracket and brace escapes kept", "/%5b%7b%7c", 0, "/%5B%7B%7C",
	    NULL },

	/* Percent-encoded UTF-8. */
	{ "Chinese kept", "/%E5%8D%97%E5%AE%81", 0, "/%E5%8D%97%E5%AE%81",
	    NULL },
	{ "Chinese lower hex upper-cased", "/api/%e5%8d%97%e5%ae%81/x", 0,
	    "/api/%E5%8D%97%E5%AE%81/x", NULL },
	{ "two-byte", "/caf%C3%a9", 0, "/caf%C3%A9", NULL },
	{ "smallest two-byte U+0080", "/%C2%80", 0, "/%C2%80", NULL },
	{ "smallest three-byte U+0800", "/%E0%A0%80", 0, "/%E0%A0%80", NULL },
	{ "last before surrogates U+D7FF", "/%ED%9F%BF", 0, "/%ED%9F%BF",
	    NULL },
	{ "first after surrogates U+E000", "/%EE%80%80", 0, "/%EE%80%80",
	    NULL },
	{ "smallest four-byte U+10000", "/%F0%90%80%80", 0, "/%F0%90%80%80",
	    NULL },
	{ "emoji", "/%F0%9F%98%80", 0, "/%F0%9F%98%80", NULL },
	{ "largest U+10FFFF", "/%F4%8F%BF%BF", 0, "/%F4%8F%BF%BF", NULL },

	/* Not origin-form. */
	{ "empty", "", 0, NULL, "empty path" },
	{ "asterisk", "*", 0, NULL, "path does not start with /" },
	{ "absolute-form", "http://a/b", 0, NULL,
	    "path does not start with /" },
	{ "relative", "a/b", 0, NULL, "path does not start with /" },

	/* Traversal. */
	{ "dotdot at root", "/..", 0, NULL, "dot-dot above root" },
	{ "dotdot above root", "/../a", 0, NULL, "dot-dot above root" },
	{ "encoded dotdot above root", "/%2E%2E/", 0, NULL,
	    "dot-dot above root" },
	{ "deeper above root", "/a/../../b", 0, NULL, "dot-dot above root" },
	{ "dot then dotdot at root", "/./../", 0, NULL, "dot-dot above root" },
	{ "dotdot then encoded slash", "/a/..%2fb", 0, NULL, "encoded slash" },
	{ "encoded dotdot and slash", "/a/%2e%2e%2Fb", 0, NULL,
	    "encoded slash" },

	/* Encoded separators and double encoding. */
	{ "encoded slash upper", "/a%2Fb", 0, NULL, "encoded slash" },
	{ "encoded slash lower", "/a%2fb", 0, NULL, "encoded slash" },
	{ "encoded backslash", "/a%5cb", 0, NULL, "encoded backslash" },
	{ "finance backslash traversal", "/finance/public/..%5cadmin", 0, NULL,
	    "encoded backslash" },
	{ "double-encoded dotdot", "/%252e%252e/x", 0, NULL,
	    "encoded percent" },
	{ "encoded percent", "/100%25", 0, NULL, "encoded percent" },

	/* Path parameters. */
	{ "dotdot semicolon", "/public/..;/admin", 0, NULL, "raw semicolon" },
	{ "jsessionid", "/a;jsessionid=0123", 0, NULL, "raw semicolon" },

	/* Invalid UTF-8. */
	{ "overlong dots C0", "/%C0%AE%C0%AE/", 0, NULL, "overlong UTF-8" },
	{ "overlong C1", "/%C1%BF", 0, NULL, "overlong UTF-8" },
	{ "overlong three-byte dot", "/%E0%80%AE", 0, NULL, "overlong UTF-8" },
	{ "overlong three-byte slash", "/a%E0%80%AFb", 0, NULL,
	    "overlong UTF-8" },
	{ "overlong four-byte", "/%F0%80%80%AF", 0, NULL, "overlong UTF-8" },
	{ "surrogate", "/%ED%A0%80", 0, NULL, "UTF-8 surrogate" },
	{ "above U+10FFFF", "/%F4%90%80%80", 0, NULL, "UTF-8 above U+10FFFF" },
	{ "lead F5", "/%F5%80%80%80", 0, NULL, "UTF-8 above U+10FFFF" },
	{ "lead FF", "/%FF", 0, NULL, "UTF-8 above U+10FFFF" },
	{ "stray continuation", "/%80", 0, NULL,
	    "stray UTF-8 continuation byte" },
	{ "extra continuation", "/%C3%A9%A9", 0, NULL,
	    "stray UTF-8 continuation byte" },
	{ "truncated at end", "/%E5%8D", 0, NULL, "truncated UTF-8 sequence" },
	{ "truncated by slash", "/%E5%8D/%97", 0, NULL,
	    "truncated UTF-8 sequence" },
	{ "truncated by raw byte", "/%C3a", 0, NULL,
	    "truncated UTF-8 sequence" },
	{ "truncated by ASCII escape", "/%C3%41", 0, NULL,
	    "truncated UTF-8 sequence" },
	{ "truncated by new lead", "/%C3%C3%A9", 0, NULL,
	    "truncated UTF-8 sequence" },

	/* Raw bytes. */
	{ "raw UTF-8", "/\xE5\x8D\x97", 0, NULL, "raw non-ASCII byte" },
	{ "raw Latin-1", "/caf\xE9", 0, NULL, "raw non-ASCII byte" },
	{ "raw NUL", "/a\0b", 4, NULL, "raw control character" },
	{ "raw tab", "/a\tb", 0, NULL, "raw control character" },
	{ "raw CR LF", "/a\r\n", 0, NULL, "raw control character" },
	{ "raw DEL", "/\x7f", 0, NULL, "raw control character" },
	{ "raw hash", "/a#frag", 0, NULL, "raw fragment mark" },
	{ "raw space", "/a b", 0, NULL, "raw space" },
	{ "raw backslash", "/a\\b", 0, NULL, "raw backslash" },
	{ "raw backslash traversal", "/a\\..\\b", 0, NULL, "raw backslash" },
	{ "raw question mark", "/a?b=1", 0, NULL, "raw question mark" },
	{ "raw double quote", "/a\"", 0, NULL,
	    "raw character not allowed in a path" },
	{ "raw angle brackets", "/<script>", 0, NULL,
	    "raw character not allowed in a path" },
	{ "raw caret", "/a^b", 0, NULL, "raw character not allowed in a path" },
	{ "raw backtick", "/a`b", 0, NULL,
	    "raw character not allowed in a path" },
	{ "raw braces", "/{x}", 0, NULL,
	    "raw character not allowed in a path" },
	{ "raw pipe", "/a|b", 0, NULL, "raw character not allowed in a path" },
	{ "raw square brackets", "/a[0]", 0, NULL,
	    "raw character not allowed in a path" },

	/* Encoded controls. */
	{ "encoded NUL", "/a%00b", 0, NULL, "encoded control character" },
	{ "encoded LF", "/a%0a", 0, NULL, "encoded control character" },
	{ "encoded CR", "/a%0D", 0, NULL, "encoded control character" },
	{ "encoded US", "/%1f", 0, NULL, "encoded control character" },
	{ "encoded DEL", "/%7F", 0, NULL, "encoded control character" },

	/* Malformed escapes. */
	{ "lone percent", "/%", 0, NULL, "invalid percent-encoding" },
	{ "percent at end", "/a%", 0, NULL, "invalid percent-encoding" },
	{ "one hex digit", "/%4", 0, NULL, "invalid percent-encoding" },
	{ "non-hex digits", "/%zz", 0, NULL, "invalid percent-encoding" },
	{ "second digit not hex", "/%4g", 0, NULL, "invalid percent-encoding" },
	{ "percent percent", "/%%41", 0, NULL, "invalid percent-encoding" },
	{ "escape split by NUL", "/%4\0", 4, NULL, "invalid percent-encoding" },
};

/*
 * Place len bytes at the very end of a readable page followed by an
 * inaccessible one, so any read past the input faults (picohttpparser's
 * trick). Returns the start of the copy; *map and *maplen to unmap.
 */
static char *
pathnorm_test_guard(const char *in, size_t len, void **map, size_t *maplen)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t n = (len + pg - 1) / pg + 1;
	char *base;

	*maplen = n * pg;
	*map = mmap(NULL, *maplen, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (*map == MAP_FAILED)
		return NULL;
	base = *map;
	if (mprotect(base + (n - 1) * pg, pg, PROT_NONE) == -1)
		return NULL;
	memcpy(base + (n - 1) * pg - len, in, len);
	return base + (n - 1) * pg - len;
}

static int
pathnorm_test_hex(char c)
{
	const char *digits = "0123456789ABCDEF", *d;

	if (c == '\0' || (d = strchr(digits, c)) == NULL)
		return -1;
	return (int)(d - digits);
}

/* The output invariants every good result must hold. */
static int
pathnorm_test_canonical(const char *s, size_t len, size_t inlen)
{
	size_t i;
	int hi, lo, v;

	if (len > inlen || len == 0 || s[0] != '/' || strlen(s) != len)
		return 0;
	if (strstr(s, "//") != NULL || strstr(s, "/./") != NULL ||
	    strstr(s, "/../") != NULL)
		return 0;
	if ((len >= 2 && strcmp(s + len - 2, "/.") == 0) ||
	    (len >= 3 && strcmp(s + len - 3, "/..") == 0))
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] != '%')
			continue;
		/* Kept escapes are upper case, and never of unreserved bytes.
		 */
		if (i + 2 >= len || (hi = pathnorm_test_hex(s[i + 1])) < 0 ||
		    (lo = pathnorm_test_hex(s[i + 2])) < 0)
			return 0;
		v = hi << 4 | lo;
		if (v < 0x80 && strchr("-._~", v) != NULL)
			return 0;
		if ((v >= 'A' && v <= 'Z') || (v >= 'a' && v <= 'z') ||
		    (v >= '0' && v <= '9') || v == '/' || v == '%' ||
		    v == '\\' || v < 0x20 || v == 0x7f)
			return 0;
	}
	return 1;
}

/* Normalising a canonical path again must give it back unchanged. */
static int
pathnorm_test_idempotent(const char *s, size_t len)
{
	char *again = NULL;
	const char *why = NULL;
	size_t n = 0;
	int ok = 0;

	if ((again = malloc(len + 1)) == NULL)
		goto out;
	if (pathnorm(s, len, again, len + 1, &n, &why) != 0)
		goto out;
	ok = n == len && memcmp(again, s, len) == 0;
out:
	free(again);
	return ok;
}

static void
pathnorm_test_table(void)
{
	char *in, *out = NULL;
	const char *why;
	void *map;
	size_t i, len, maplen, n;
	int rc;

	for (i = 0; i < nitems(cases); i++) {
		len = cases[i].len ? cases[i].len : strlen(cases[i].in);
		if ((in = pathnorm_test_guard(cases[i].in, len, &map,
		         &maplen)) == NULL ||
		    (out = malloc(len + 1)) == NULL) {
			tap_ok(0, "%s: setup failed", cases[i].name);
			continue;
		}
		why = NULL;
		n = 12345;
		rc = pathnorm(in, len, out, len + 1, &n, &why);
		if (cases[i].want == NULL) {
			if (!tap_ok(rc == -1 && why != NULL && out[0] == '\0' &&
			            n == 0 && strcmp(why, cases[i].why) == 0,
			        "%s: bad (%s)", cases[i].name, cases[i].why))
				tap_diag("rc %d, why \"%s\", out \"%s\"", rc,
				    why ? why : "(null)", out);
		} else if (rc != 0) {
			tap_ok(0, "%s: refused: %s", cases[i].name,
			    why ? why : "(null)");
		} else {
			tap_streq(out, cases[i].want, "%s", cases[i].name);
			tap_ok(n == strlen(cases[i].want) &&
			        pathnorm_test_canonical(out, n, len) &&
			        pathnorm_test_idempotent(out, n),
			    "%s: canonical and idempotent", cases[i].name);
		}
		free(out);
		out = NULL;
		munmap(map, maplen);
	}
}

/* The buffer limit is checked against the raw length, before copying. */
static void
pathnorm_test_sizes(void)
{
	char out[16];
	const char *why = NULL;
	size_t n = 0;

	tap_ok(pathnorm("/abcdefghijklmn", 15, out, 16, &n, &why) == 0 &&
	        n == 15,
	    "outsz of inlen + 1 is enough");
	tap_ok(pathnorm("/abcdefghijklmno", 16, out, 16, &n, &why) == -1 &&
	        strcmp(why, "path too long") == 0 && out[0] == '\0',
	    "outsz of inlen is path too long");
	tap_ok(pathnorm("/a/..", 5, out, 5, &n, &why) == -1 &&
	        strcmp(why, "path too long") == 0,
	    "path too long even when the result would fit");
	tap_ok(pathnorm("/", 1, out, 0, &n, &why) == -1 &&
	        strcmp(why, "path too long") == 0,
	    "outsz 0 is path too long");
	tap_ok(pathnorm("/x", 2, out, sizeof(out), NULL, NULL) == 0 &&
	        strcmp(out, "/x") == 0,
	    "outlen and why may be NULL");
	tap_ok(pathnorm("/x", 0, out, sizeof(out), &n, &why) == -1 &&
	        strcmp(why, "empty path") == 0,
	    "inlen 0 is empty whatever in holds");
	tap_ok(pathnorm("/ab/cd?q", 6, out, 7, &n, &why) == 0 &&
	        strcmp(out, "/ab/cd") == 0,
	    "input need not be NUL-terminated");
}

/* Very long paths: linear work, exact results, traversal still counted. */
static void
pathnorm_test_long(void)
{
	char *in = NULL, *out = NULL;
	const char *why = NULL;
	size_t i, len, n = 0, depth;
	int rc;

	if ((in = malloc(PATHNORM_TEST_LONG + 1)) == NULL ||
	    (out = malloc(PATHNORM_TEST_LONG + 1)) == NULL) {
		tap_ok(0, "long paths: setup failed");
		goto out;
	}

	for (len = 0; len + 4 <= PATHNORM_TEST_LONG; len += 4)
		memcpy(in + len, "/abc", 4);
	rc = pathnorm(in, len, out, PATHNORM_TEST_LONG + 1, &n, &why);
	tap_ok(rc == 0 && n == len && memcmp(in, out, len) == 0,
	    "long plain path unchanged (%zu bytes)", len);

	depth = PATHNORM_TEST_LONG / 8;
	for (i = 0, len = 0; i < depth; i++, len += 2)
		memcpy(in + len, "/a", 2);
	for (i = 0; i < depth; i++, len += 3)
		memcpy(in + len, "/..", 3);
	rc = pathnorm(in, len, out, PATHNORM_TEST_LONG + 1, &n, &why);
	tap_ok(rc == 0 && strcmp(out, "/") == 0,
	    "%zu segments down and back up is the root", depth);
	memcpy(in + len, "/..", 3);
	rc = pathnorm(in, len + 3, out, PATHNORM_TEST_LONG + 1, &n, &why);
	tap_ok(rc == -1 && strcmp(why, "dot-dot above root") == 0,
	    "one dotdot more climbs above the root");

	for (len = 0; len + 5 <= PATHNORM_TEST_LONG; len += 5)
		memcpy(in + len, "/a/..", 5);
	rc = pathnorm(in, len, out, PATHNORM_TEST_LONG + 1, &n, &why);
	tap_ok(rc == 0 && strcmp(out, "/") == 0, "repeated /a/.. is the root");

	for (len = 0; len + 10 <= PATHNORM_TEST_LONG; len += 10)
		memcpy(in + len, "/%e5%8D%97", 10);
	rc = pathnorm(in, len, out, PATHNORM_TEST_LONG + 1, &n, &why);
	tap_ok(rc == 0 && n == len && pathnorm_test_canonical(out, n, len) &&
	        pathnorm_test_idempotent(out, n),
	    "long escaped path canonical and idempotent");
out:
	free(in);
	free(out);
}

/*
 * Property check: random paths over an alphabet dense in edge cases either
 * fail with a reason or give a canonical, idempotent result.
 */
static void
pathnorm_test_random(void)
{
	static const char *const atoms[] = { "/", "/", ".", "..", "a", "%2e",
		"%2E", "%2f", "%41", "%c3", "%A9", "%e5%8d%97", "%ED", "%80",
		"%", "%3b", ";", "\\", "%25", "~", "%7e", "?", "%F0%9F%98%80",
		"%0" };
	char in[128], out[129];
	const char *why;
	uint32_t seed = 2463534242u;
	size_t len, n, alen;
	int i, j, k, bad = 0, good = 0;

	for (i = 0; i < 50000; i++) {
		len = 0;
		in[len++] = '/';
		k = (int)(seed % 12);
		for (j = 0; j < k; j++) {
			seed ^= seed << 13;
			seed ^= seed >> 17;
			seed ^= seed << 5;
			alen = strlen(atoms[seed % nitems(atoms)]);
			if (len + alen > sizeof(in))
				break;
			memcpy(in + len, atoms[seed % nitems(atoms)], alen);
			len += alen;
		}
		seed ^= seed << 13;
		seed ^= seed >> 17;
		seed ^= seed << 5;
		why = NULL;
		if (pathnorm(in, len, out, sizeof(out), &n, &why) != 0) {
			if (why == NULL || out[0] != '\0')
				bad++;
			continue;
		}
		good++;
		if (!pathnorm_test_canonical(out, n, len) ||
		    !pathnorm_test_idempotent(out, n)) {
			if (bad++ == 0)
				tap_diag("not canonical: \"%.*s\" -> \"%s\"",
				    (int)len, in, out);
		}
	}
	tap_ok(bad == 0 && good > 1000,
	    "random paths: %d good, all canonical and idempotent", good);
}

int
main(void)
{
	pathnorm_test_table();
	pathnorm_test_sizes();
	pathnorm_test_long();
	pathnorm_test_random();
	tap_done();
	tap_exit();
}
