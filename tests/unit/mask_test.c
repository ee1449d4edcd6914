/* mask_test.c - response masking, contract section 4.3. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "mask.h"
#include "policy.h"
#include "tap.h"

#define MASK_TEST_RULES 6
#define MASK_TEST_CONTRACT                                                     \
	{                                                                      \
		"keep 6 4 /id_number", "keep 3 4 /phone", "keep 1 0 /name",    \
		    "drop /photo", "keep 6 4 /family/*/id_number", NULL        \
	}

/*
 * One row per behaviour. A rule is "drop POINTER" or "keep FIRST LAST
 * POINTER" (an empty POINTER addresses the whole document). want is the
 * masked output, or NULL when the body is refused, and then why is a
 * part of the expected reason.
 */
static const struct {
	const char *name;
	const char *rules[MASK_TEST_RULES + 1];
	const char *in;
	const char *want;
	size_t changed;
	const char *why;
} cases[] = {
	/* The contract's examples. */
	{ "contract: id_number keep 6/4", { "keep 6 4 /id_number" },
	    "{\"id_number\":\"450102199001011234\"}",
	    "{\"id_number\":\"450102********1234\"}", 1, NULL },
	{ "contract: phone keep 3/4", { "keep 3 4 /phone" },
	    "{\"phone\":\"13800138000\"}", "{\"phone\":\"138****8000\"}", 1,
	    NULL },
	{ "contract: Chinese name keep first 1", { "keep 1 0 /name" },
	    "{\"name\":\"張三豐\"}", "{\"name\":\"張**\"}", 1, NULL },
	{ "contract: photo dropped", { "drop /photo" },
	    "{\"name\":\"x\",\"photo\":\"iVBORw0KGgo=\"}", "{\"name\":\"x\"}",
	    1, NULL },
	{ "contract: whole household-basic mask", MASK_TEST_CONTRACT,
	    "{\"id_number\":\"450102199001011234\",\"name\":\"張三豐\","
	    "\"phone\":\"13800138000\",\"photo\":\"AAAA\",\"family\":["
	    "{\"name\":\"李四\",\"id_number\":\"450102196002021111\"},"
	    "{\"name\":\"王五\",\"id_number\":\"450102196503032222\"}],"
	    "\"address\":\"南寧市青秀區\"}",
	    "{\"id_number\":\"450102********1234\",\"name\":\"張**\","
	    "\"phone\":\"138****8000\",\"family\":["
	    "{\"name\":\"李四\",\"id_number\":\"450102********1111\"},"
	    "{\"name\":\"王五\",\"id_number\":\"450102********2222\"}],"
	    "\"address\":\"南寧市青秀區\"}",
	    6, NULL },

	/* Characters, not bytes. */
	{ "two-character Chinese name", { "keep 1 0 /name" },
	    "{\"name\":\"李四\"}", "{\"name\":\"李*\"}", 1, NULL },
	{ "four-character Chinese name", { "keep 1 0 /name" },
	    "{\"name\":\"歐陽娜娜\"}", "{\"name\":\"歐***\"}", 1, NULL },
	{ "Chinese address keep first 3 last 1", { "keep 3 1 /addr" },
	    "{\"addr\":\"南寧市青秀區民族大道1號\"}",
	    "{\"addr\":\"南寧市********號\"}", 1, NULL },
	{ "emoji are one character each (4-byte UTF-8)", { "keep 1 1 /s" },
	    "{\"s\":\"😀😁😂🤣\"}", "{\"s\":\"😀**🤣\"}", 1, NULL },
	{ "escaped surrogate pair is one character", { "keep 1 0 /s" },
	    "{\"s\":\"\\ud83d\\ude00\\uD83D\\uDE01\\ud83d\\ude02\"}",
	    "{\"s\":\"\\ud83d\\ude00**\"}", 1, NULL },
	{ "kept surrogate pair at the end, upper-case hex", { "keep 0 1 /s" },
	    "{\"s\":\"ab\\uD83D\\uDE00\"}", "{\"s\":\"**\\uD83D\\uDE00\"}", 1,
	    NULL },
	{ "\\u00e9 is one character, copied as written", { "keep 0 1 /s" },
	    "{\"s\":\"\\u00e9t\\u00e9\"}", "{\"s\":\"**\\u00e9\"}", 1, NULL },
	{ "short escapes are one character", { "keep 1 1 /s" },
	    "{\"s\":\"a\\n\\\"\\/\\\\c\"}", "{\"s\":\"a****c\"}", 1, NULL },
	{ "mixed ASCII, CJK, escape and emoji", { "keep 2 2 /s" },
	    "{\"s\":\"a張\\u00e9😀b\\tc\"}", "{\"s\":\"a張***\\tc\"}", 1, NULL },

	/* Pointers. */
	{ "nested pointer", { "keep 3 4 /person/contact/phone" },
	    "{\"person\":{\"name\":\"x\",\"contact\":{\"phone\":"
	    "\"13800138000\"}},\"phone\":\"13800138000\"}",
	    "{\"person\":{\"name\":\"x\",\"contact\":{\"phone\":"
	    "\"138****8000\"}},\"phone\":\"13800138000\"}",
	    1, NULL },
	{ "* over an array of objects, one without the field",
	    { "keep 6 4 /family/*/id_number" },
	    "{\"family\":[{\"id_number\":\"110101199003078888\"},"
	    "{\"name\":\"none\"},{\"id_number\":\"110101200001011234\"}]}",
	    "{\"family\":[{\"id_number\":\"110101********8888\"},"
	    "{\"name\":\"none\"},{\"id_number\":\"110101********1234\"}]}",
	    2, NULL },
	{ "* over an empty array", { "keep 0 0 /family/*/id_number" },
	    "{\"family\":[]}", "{\"family\":[]}", 0, NULL },
	{ "* on an object names the member \"*\" only",
	    { "keep 0 0 /family/*/id" },
	    "{\"family\":{\"*\":{\"id\":\"abc\"},\"a\":{\"id\":\"def\"}}}",
	    "{\"family\":{\"*\":{\"id\":\"***\"},\"a\":{\"id\":\"def\"}}}", 1,
	    NULL },
	{ "index then nested * over arrays of arrays", { "keep 0 1 /1/m/*/*" },
	    "[0,{\"m\":[[\"ab\",\"cd\"],[\"ef\"]]}]",
	    "[0,{\"m\":[[\"*b\",\"*d\"],[\"*f\"]]}]", 3, NULL },
	{ "a member name is no array index", { "keep 0 0 /m/*" },
	    "[{\"m\":[\"ab\"]}]", "[{\"m\":[\"ab\"]}]", 0, NULL },
	{ "top-level array with /*/name", { "keep 1 0 /*/name" },
	    "[{\"name\":\"張三\"},{\"name\":\"李四\"}]",
	    "[{\"name\":\"張*\"},{\"name\":\"李*\"}]", 2, NULL },
	{ "~1 in a pointer is '/'", { "keep 0 0 /a~1b" },
	    "{\"a/b\":\"xy\",\"a\":{\"b\":\"zz\"}}",
	    "{\"a/b\":\"**\",\"a\":{\"b\":\"zz\"}}", 1, NULL },
	{ "~0 in a pointer is '~'", { "keep 0 0 /m~0n" },
	    "{\"m~n\":\"xy\",\"m~0n\":\"zz\"}",
	    "{\"m~n\":\"**\",\"m~0n\":\"zz\"}", 1, NULL },
	{ "key spelled with an escape matches", { "keep 3 4 /phone" },
	    "{\"\\u0070hone\":\"13800138000\"}",
	    "{\"\\u0070hone\":\"138****8000\"}", 1, NULL },
	{ "empty token names the member \"\"", { "keep 0 0 /" },
	    "{\"\":\"x\",\"a\":\"y\"}", "{\"\":\"*\",\"a\":\"y\"}", 1, NULL },
	{ "array index", { "keep 0 0 /list/1" },
	    "{\"list\":[\"a\",\"b\",\"c\"]}", "{\"list\":[\"a\",\"*\",\"c\"]}",
	    1, NULL },
	{ "array index past the end", { "keep 0 0 /list/3" },
	    "{\"list\":[\"a\",\"b\",\"c\"]}", "{\"list\":[\"a\",\"b\",\"c\"]}",
	    0, NULL },
	{ "array index with a leading zero addresses nothing",
	    { "keep 0 0 /list/01" }, "{\"list\":[\"a\",\"b\"]}",
	    "{\"list\":[\"a\",\"b\"]}", 0, NULL },
	{ "array index - addresses nothing", { "drop /list/-" },
	    "{\"list\":[\"a\"]}", "{\"list\":[\"a\"]}", 0, NULL },
	{ "huge array index addresses nothing",
	    { "drop /list/99999999999999999999" }, "{\"list\":[\"a\"]}",
	    "{\"list\":[\"a\"]}", 0, NULL },

	/* Missing fields. */
	{ "missing member changes nothing", { "keep 0 0 /nope", "drop /gone" },
	    "{\"a\":\"x\"}", "{\"a\":\"x\"}", 0, NULL },
	{ "pointer through a string changes nothing", { "drop /a/b/c" },
	    "{\"a\":\"x\"}", "{\"a\":\"x\"}", 0, NULL },
	{ "pointer through null changes nothing", { "drop /a/b" },
	    "{\"a\":null}", "{\"a\":null}", 0, NULL },
	{ "pointer does not split keys holding '/'", { "drop /a/b" },
	    "{\"a/b\":1}", "{\"a/b\":1}", 0, NULL },

	/* drop. */
	{ "drop first and last of three members", { "drop /a", "drop /c" },
	    "{\"a\":1,\"b\":2,\"c\":3}", "{\"b\":2}", 2, NULL },
	{ "drop every member", { "drop /a", "drop /b" }, "{\"a\":1,\"b\":[2]}",
	    "{}", 2, NULL },
	{ "drop an object counts once", { "drop /p" },
	    "{\"p\":{\"x\":\"1\",\"y\":\"2\"},\"q\":0}", "{\"q\":0}", 1, NULL },
	{ "drop an array item by index: null holds its place",
	    { "drop /list/0" }, "{\"list\":[\"a\",\"b\"]}",
	    "{\"list\":[null,\"b\"]}", 1, NULL },
	{ "drop every array item with *", { "drop /list/*" },
	    "{\"list\":[1,{\"a\":2},[3]]}", "{\"list\":[null,null,null]}", 3,
	    NULL },
	{ "drop a member of every array item", { "drop /f/*/photo" },
	    "{\"f\":[{\"n\":1,\"photo\":\"A\"},{\"photo\":\"B\",\"n\":2}]}",
	    "{\"f\":[{\"n\":1},{\"n\":2}]}", 2, NULL },
	{ "drop the whole document", { "drop " }, "{\"a\":1}", "null", 1,
	    NULL },
	{ "drop the whole one-digit document", { "drop " }, "1", "null", 1,
	    NULL },

	/* keep on what is not a string. */
	{ "keep on a phone number sent as a number", { "keep 3 4 /phone" },
	    "{\"phone\":13800138000}", "{\"phone\":\"138****8000\"}", 1, NULL },
	{ "keep on a number uses its text", { "keep 1 1 /n" },
	    "{\"n\":-12.5e3}", "{\"n\":\"-*****3\"}", 1, NULL },
	{ "keep on a short number still makes a string", { "keep 3 4 /n" },
	    "{\"n\":123}", "{\"n\":\"123\"}", 1, NULL },
	{ "keep on true", { "keep 1 0 /b" }, "{\"b\":true}", "{\"b\":\"t***\"}",
	    1, NULL },
	{ "keep on false", { "keep 0 0 /b" }, "{\"b\":false}",
	    "{\"b\":\"*****\"}", 1, NULL },
	{ "keep on null stays null", { "keep 0 0 /n" }, "{\"n\":null}",
	    "{\"n\":null}", 0, NULL },
	{ "keep on an object masks every leaf, not the names",
	    { "keep 1 0 /c" },
	    "{\"c\":{\"phone\":\"13800138000\",\"tel\":12345,\"x\":null,"
	    "\"l\":[\"ab\",true,{\"k\":\"v\"}]},\"d\":\"ok\"}",
	    "{\"c\":{\"phone\":\"1**********\",\"tel\":\"1****\",\"x\":null,"
	    "\"l\":[\"a*\",\"t***\",{\"k\":\"v\"}]},\"d\":\"ok\"}",
	    4, NULL },
	{ "keep on an array of phone numbers", { "keep 3 4 /phones" },
	    "{\"phones\":[\"13800138000\",13900139000]}",
	    "{\"phones\":[\"138****8000\",\"139****9000\"]}", 2, NULL },
	{ "keep on the whole document", { "keep 0 0 " },
	    "{\"a\":\"xy\",\"b\":[1]}", "{\"a\":\"**\",\"b\":[\"*\"]}", 2,
	    NULL },
	{ "keep on a string document", { "keep 1 0 " }, "\"secret\"",
	    "\"s*****\"", 1, NULL },

	/* Lengths. */
	{ "first+last equal to the length masks nothing", { "keep 2 1 /s" },
	    "{\"s\":\"abc\"}", "{\"s\":\"abc\"}", 0, NULL },
	{ "first+last above the length masks nothing", { "keep 6 4 /s" },
	    "{\"s\":\"張三豐\"}", "{\"s\":\"張三豐\"}", 0, NULL },
	{ "first+last one below the length masks one", { "keep 1 1 /s" },
	    "{\"s\":\"abc\"}", "{\"s\":\"a*c\"}", 1, NULL },
	{ "keep 0 0 masks everything", { "keep 0 0 /s" }, "{\"s\":\"secret\"}",
	    "{\"s\":\"******\"}", 1, NULL },
	{ "empty string stays empty", { "keep 0 0 /s" }, "{\"s\":\"\"}",
	    "{\"s\":\"\"}", 0, NULL },
	{ "keep last only", { "keep 0 4 /s" }, "{\"s\":\"13800138000\"}",
	    "{\"s\":\"*******8000\"}", 1, NULL },

	/* Rules on one value. */
	{ "drop wins over keep", { "keep 1 1 /a", "drop /a" },
	    "{\"a\":\"xyz\",\"b\":1}", "{\"b\":1}", 1, NULL },
	{ "two keeps take the smaller first and last",
	    { "keep 6 4 /id", "keep 3 5 /id" },
	    "{\"id\":\"450102199001011234\"}",
	    "{\"id\":\"450***********1234\"}", 1, NULL },
	{ "a keep inside a kept object combines",
	    { "keep 3 0 /p", "keep 1 2 /p/x" },
	    "{\"p\":{\"x\":\"abcdef\",\"y\":\"abcdef\"}}",
	    "{\"p\":{\"x\":\"a*****\",\"y\":\"abc***\"}}", 2, NULL },
	{ "a drop inside a kept object", { "keep 1 0 /p", "drop /p/x" },
	    "{\"p\":{\"x\":\"abc\",\"y\":\"abc\"}}", "{\"p\":{\"y\":\"a**\"}}",
	    2, NULL },
	{ "a keep inside a dropped member is not counted",
	    { "drop /p", "keep 0 0 /p/x" }, "{\"p\":{\"x\":\"abc\"},\"q\":1}",
	    "{\"q\":1}", 1, NULL },
	{ "the same rule twice counts once", { "keep 0 0 /a", "keep 0 0 /a" },
	    "{\"a\":\"xy\"}", "{\"a\":\"**\"}", 1, NULL },

	/* Output form. */
	{ "whitespace goes, tokens stay as written", { "drop /none" },
	    " { \"a\" : [ 1.50 , -0 , 1E+2 ] ,\n\t\"b\" : \"\\u00e9\\/\" } "
	    "\r\n",
	    "{\"a\":[1.50,-0,1E+2],\"b\":\"\\u00e9\\/\"}", 0, NULL },
	{ "densest array: a token per two bytes", { "keep 0 0 /16" },
	    "[1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9]",
	    "[1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,\"*\",8,9]", 1, NULL },
	{ "nested empty containers", { "drop /0/0/0/0/0/0/0/0/0" },
	    "[[[[[[[[[[]]]]]]]]],{\"\":{\"\":{}}},[{},[]]]",
	    "[[[[[[[[[null]]]]]]]],{\"\":{\"\":{}}},[{},[]]]", 1, NULL },
	{ "dense object of empty names", { "keep 0 0 //" },
	    "{\"\":{\"\":0,\"a\":1},\"b\":[{},{}],\"c\":[0,0,0,0]}",
	    "{\"\":{\"\":\"*\",\"a\":1},\"b\":[{},{}],\"c\":[0,0,0,0]}", 1,
	    NULL },
	{ "no rules", { NULL }, "[true,false,null,{}]", "[true,false,null,{}]",
	    0, NULL },

	/* Refused bodies. */
	{ "empty body", { "drop /a" }, "", NULL, 0, "empty body" },
	{ "whitespace only", { "drop /a" }, " \n", NULL, 0, "end of input" },
	{ "invalid JSON: missing value", { "drop /a" }, "{\"a\":}", NULL, 0,
	    "" },
	{ "invalid JSON: trailing characters", { "drop /a" }, "{\"a\":1}x",
	    NULL, 0, "trailing" },
	{ "invalid JSON: HTML error page", { "drop /a" },
	    "<html><body>502</body></html>", NULL, 0, "" },
	{ "invalid JSON: two documents", { "drop /a" }, "{} {}", NULL, 0,
	    "trailing" },
	{ "invalid JSON: single quotes", { "drop /a" }, "{'a':1}", NULL, 0,
	    "" },
	{ "invalid JSON: raw newline in a string", { "drop /a" },
	    "{\"a\":\"x\ny\"}", NULL, 0, "control" },
	{ "invalid UTF-8 byte", { "keep 0 0 /a" }, "{\"a\":\"\xff\"}", NULL, 0,
	    "UTF-8" },
	{ "overlong UTF-8", { "keep 0 0 /a" }, "{\"a\":\"\xc0\xaf\"}", NULL, 0,
	    "UTF-8" },
	{ "truncated UTF-8", { "keep 0 0 /a" }, "{\"a\":\"\xe5\xbc\"}", NULL, 0,
	    "UTF-8" },
	{ "UTF-8 encoded surrogate", { "keep 0 0 /a" },
	    "{\"a\":\"\xed\xa0\x80\"}", NULL, 0, "UTF-8" },
	{ "lone high surrogate escape", { "keep 0 0 /a" },
	    "{\"a\":\"\\ud83d\"}", NULL, 0, "surrogate" },
	{ "lone low surrogate escape", { "keep 0 0 /a" },
	    "{\"a\":\"\\ude00x\"}", NULL, 0, "surrogate" },
	{ "byte order mark", { "drop /a" }, "\xef\xbb\xbf{}", NULL, 0,
	    "byte order mark" },
	{ "duplicate keys are refused", { "keep 0 0 /a" },
	    "{\"a\":\"x\",\"a\":\"y\"}", NULL, 0, "duplicate key" },
	{ "duplicate keys spelled differently are refused", { "keep 0 0 /a" },
	    "{\"a\":\"x\",\"\\u0061\":\"y\"}", NULL, 0, "duplicate key" },
	{ "duplicate keys deep inside are refused", { "drop /z" },
	    "{\"p\":[{\"q\":{\"id\":1,\"id\":2}}]}", NULL, 0, "duplicate key" },
};

/* Split a JSON Pointer into unescaped tokens, as policy_load does. */
static int
mask_test_pointer(const char *s, struct policy_mask_rule *r)
{
	const char *c, *start;
	char *o;
	size_t n = 0, i;

	if (*s == '\0')
		return 0;
	if (*s != '/')
		return -1;
	for (c = s; *c; c++)
		if (*c == '/')
			n++;
	if ((r->tokens = calloc(n, sizeof(char *))) == NULL)
		return -1;
	r->ntokens = n;
	start = s + 1;
	for (i = 0; i < n; i++) {
		for (c = start; *c && *c != '/'; c++)
			;
		if ((r->tokens[i] = calloc((size_t)(c - start) + 1, 1)) == NULL)
			return -1;
		for (o = r->tokens[i]; start < c; start++) {
			if (*start == '~' && start + 1 < c && start[1] == '0') {
				*o++ = '~';
				start++;
			} else if (*start == '~' && start + 1 < c &&
			    start[1] == '1') {
				*o++ = '/';
				start++;
			} else if (*start == '~')
				return -1;
			else
				*o++ = *start;
		}
		start = c + 1;
	}
	return 0;
}

static void
mask_test_free(struct policy_mask *m)
{
	size_t i, j;

	for (i = 0; i < m->nrules; i++) {
		for (j = 0; j < m->rules[i].ntokens; j++)
			free(m->rules[i].tokens[j]);
		free(m->rules[i].tokens);
		free(m->rules[i].field);
	}
	free(m->rules);
	memset(m, 0, sizeof(*m));
}

/* Build m from rule specs (see the table). Returns 0 or -1. */
static int
mask_test_build(const char *const *spec, struct policy_mask *m)
{
	struct policy_mask_rule *r;
	unsigned first, last;
	const char *ptr;
	size_t n;
	int used;

	memset(m, 0, sizeof(*m));
	for (n = 0; n < MASK_TEST_RULES && spec[n] != NULL; n++)
		;
	if ((m->rules = calloc(n + 1, sizeof(*m->rules))) == NULL)
		return -1;
	for (m->nrules = 0; m->nrules < n; m->nrules++) {
		r = &m->rules[m->nrules];
		if (strncmp(spec[m->nrules], "drop ", 5) == 0) {
			r->drop = 1;
			ptr = spec[m->nrules] + 5;
		} else if (sscanf(spec[m->nrules], "keep %u %u %n", &first,
		               &last, &used) == 2) {
			r->first = first;
			r->last = last;
			ptr = spec[m->nrules] + used;
		} else
			return -1;
		if ((r->field = strdup(ptr)) == NULL ||
		    mask_test_pointer(ptr, r) == -1)
			return -1;
	}
	return 0;
}

/* The output parses as strict JSON. */
static int
mask_test_valid(const char *s, size_t len)
{
	struct json_tok *t;
	int n;

	if ((t = calloc(len + 2, sizeof(*t))) == NULL)
		return 0;
	n = json_parse(s, len, t, len + 2, NULL, NULL);
	free(t);
	return n > 0;
}

static void
mask_test_row(size_t i)
{
	struct policy_mask m;
	const char *why = NULL, *why2 = NULL;
	char *out = NULL, *again = NULL;
	size_t outlen = 0, changed = 0, len2 = 0, ch2 = 0;
	int rc;

	if (mask_test_build(cases[i].rules, &m) == -1) {
		tap_ok(0, "%s: bad rule in the table", cases[i].name);
		goto out;
	}
	rc = mask_apply(&m, cases[i].in, strlen(cases[i].in), &out, &outlen,
	    &changed, &why);
	if (cases[i].want == NULL) {
		if (!tap_ok(rc == -1 && out == NULL && why != NULL &&
		            strstr(why, cases[i].why) != NULL,
		        "%s: refused", cases[i].name))
			tap_diag("rc %d why \"%s\", want \"%s\"", rc,
			    why ? why : "(null)", cases[i].why);
		goto out;
	}
	if (rc != 0) {
		tap_ok(0, "%s: refused: %s", cases[i].name, why ? why : "?");
		goto out;
	}
	if (!tap_streq(out, cases[i].want, "%s", cases[i].name))
		goto out;
	if (!tap_ok(changed == cases[i].changed && outlen == strlen(out) &&
	            mask_test_valid(out, outlen),
	        "%s: %zu changed, valid output", cases[i].name,
	        cases[i].changed)) {
		tap_diag("changed %zu outlen %zu", changed, outlen);
		goto out;
	}
	/* Masking the output again changes no byte. */
	rc = mask_apply(&m, out, outlen, &again, &len2, &ch2, &why2);
	tap_ok(rc == 0 && len2 == outlen && memcmp(again, out, outlen) == 0,
	    "%s: masking the output again is a fixed point", cases[i].name);
out:
	free(out);
	free(again);
	mask_test_free(&m);
}

/* n nested arrays around a string. */
static char *
mask_test_nest(size_t n, size_t *len)
{
	char *s;
	size_t i;

	if ((s = malloc(2 * n + 6)) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		s[i] = '[';
	memcpy(s + n, "\"ab\"", 4);
	for (i = 0; i < n; i++)
		s[n + 4 + i] = ']';
	*len = 2 * n + 4;
	s[*len] = '\0';
	return s;
}

static void
mask_test_limits(void)
{
	static const char *const keep_all[] = { "keep 1 0 ", NULL };
	static const char *const keep_s[] = { "keep 1 1 /s", NULL };
	static const char *const none[] = { NULL };
	struct policy_mask m, e;
	const char *why = NULL;
	char *in = NULL, *out = NULL, *want = NULL;
	size_t len = 0, outlen = 0, changed = 0, i;
	int rc;

	memset(&e, 0, sizeof(e));
	if (mask_test_build(keep_all, &m) == -1)
		return;

	/* JSON_MAX_DEPTH levels pass, one more is refused. */
	in = mask_test_nest(JSON_MAX_DEPTH, &len);
	want = mask_test_nest(JSON_MAX_DEPTH, &len);
	if (in != NULL && want != NULL)
		memcpy(want + JSON_MAX_DEPTH, "\"a*\"", 4);
	rc = mask_apply(&m, in, len, &out, &outlen, &changed, &why);
	tap_ok(rc == 0 && want != NULL && outlen == len &&
	        memcmp(out, want, len) == 0 && changed == 1,
	    "64 levels of nesting are masked");
	free(in);
	free(want);
	free(out);
	out = NULL;
	in = mask_test_nest(JSON_MAX_DEPTH + 1, &len);
	rc = mask_apply(&m, in, len, &out, &outlen, &changed, &why);
	tap_ok(rc == -1 && out == NULL && why != NULL &&
	        strstr(why, "deep") != NULL,
	    "65 levels of nesting are refused (%s)", why ? why : "?");
	free(in);
	mask_test_free(&m);

	/* A body of MASK_MAX_BODY bytes is masked, one more is refused. */
	if (mask_test_build(keep_s, &m) == -1 ||
	    (in = malloc(MASK_MAX_BODY + 2)) == NULL)
		return;
	memcpy(in, "{\"s\":\"", 6);
	for (i = 6; i < MASK_MAX_BODY - 2; i++)
		in[i] = (char)('a' + i % 26);
	memcpy(in + MASK_MAX_BODY - 2, "\"}", 3);
	out = NULL;
	rc = mask_apply(&m, in, MASK_MAX_BODY, &out, &outlen, &changed, &why);
	tap_ok(rc == 0 && outlen == MASK_MAX_BODY && changed == 1 &&
	        out[6] == in[6] && out[7] == '*' &&
	        out[MASK_MAX_BODY - 4] == '*' &&
	        out[MASK_MAX_BODY - 3] == in[MASK_MAX_BODY - 3],
	    "a body of MASK_MAX_BODY bytes is masked");
	free(out);
	out = NULL;
	memcpy(in + MASK_MAX_BODY - 2, "a\"}", 4);
	rc = mask_apply(&m, in, MASK_MAX_BODY + 1, &out, &outlen, &changed,
	    &why);
	tap_ok(rc == -1 && out == NULL && outlen == 0 && why != NULL &&
	        strstr(why, "limit") != NULL,
	    "a body of MASK_MAX_BODY + 1 bytes is refused (%s)",
	    why ? why : "?");
	free(in);
	mask_test_free(&m);

	/* No mask, and an empty one, only compact the document. */
	rc = mask_apply(NULL, " [ 1 ] ", 7, &out, &outlen, &changed, &why);
	tap_ok(rc == 0 && outlen == 3 && memcmp(out, "[1]", 4) == 0 &&
	        changed == 0,
	    "no mask compacts the document");
	free(out);
	out = NULL;
	if (mask_test_build(none, &m) == -1)
		return;
	rc = mask_apply(&m, "{\"a\" :2}", 8, &out, &outlen, &changed, &why);
	tap_ok(rc == 0 && outlen == 7 && memcmp(out, "{\"a\":2}", 8) == 0 &&
	        changed == 0,
	    "an empty mask compacts the document");
	free(out);
	mask_test_free(&m);

	/* A NUL inside the body is refused, not taken as its end. */
	out = NULL;
	rc = mask_apply(&e, "{\"a\":\"x\0y\"}", 11, &out, &outlen, &changed,
	    &why);
	tap_ok(rc == -1 && out == NULL, "a NUL inside a string is refused");
	rc = mask_apply(&e, "{}\0", 3, &out, &outlen, &changed, &why);
	tap_ok(rc == -1 && out == NULL, "a NUL after the document is refused");
}

/* Many * matches: every item of a large array is masked, in order. */
static void
mask_test_many(void)
{
	static const char *const spec[] = { "keep 0 1 /l/*/p", "drop /l/*/x",
		NULL };
	struct policy_mask m;
	const char *why = NULL;
	char *in = NULL, *out = NULL, *want = NULL, *p, *q;
	size_t i, v, n = 20000, outlen = 0, changed = 0;
	int rc;

	if (mask_test_build(spec, &m) == -1 ||
	    (in = malloc(n * 40 + 16)) == NULL ||
	    (want = malloc(n * 40 + 16)) == NULL)
		goto out;
	p = in;
	q = want;
	p += snprintf(p, 16, "{\"l\":[");
	q += snprintf(q, 16, "{\"l\":[");
	for (i = 0; i < n; i++) {
		v = 1000 + i % 9000;
		p += snprintf(p, 40, "%s{\"x\":1,\"p\":%zu}", i ? "," : "", v);
		q += snprintf(q, 40, "%s{\"p\":\"***%zu\"}", i ? "," : "",
		    v % 10);
	}
	memcpy(p, "]}", 3);
	memcpy(q, "]}", 3);
	rc = mask_apply(&m, in, strlen(in), &out, &outlen, &changed, &why);
	tap_ok(rc == 0 && changed == 2 * n && strcmp(out, want) == 0,
	    "20000 items masked and dropped through *");
out:
	free(in);
	free(want);
	free(out);
	mask_test_free(&m);
}

int
main(void)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		mask_test_row(i);
	mask_test_limits();
	mask_test_many();
	tap_done();
	tap_exit();
}
