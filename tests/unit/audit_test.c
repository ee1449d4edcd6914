/* audit_test.c - audit record encoding, sealing, checkpoints, verification. */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit.h"
#include "compat.h"
#include "json.h"
#include "peer.h"
#include "policy.h"
#include "tap.h"

#define AUDIT_TEST_BIG (4 * 1024 * 1024)

/* An array as a plain pointer, so tap_streq's NULL check is not moot. */
static const char *
test_s(const char *s)
{
	return s;
}

static char *big;       /* AUDIT_TEST_BIG bytes of scratch output */
static char tmpdir[64]; /* for tail and key files */

/* Rows: input bytes and the JSON string they must become. */
static const struct {
	const char *name;
	const char *in;
	size_t len; /* 0: strlen(in) */
	size_t max; /* 0: unlimited */
	const char *want;
} esc_cases[] = {
	{ "plain", "abc", 0, 0, "\"abc\"" },
	{ "empty", "", 0, 0, "\"\"" },
	{ "quote", "a\"b", 0, 0, "\"a\\\"b\"" },
	{ "backslash", "a\\b", 0, 0, "\"a\\\\b\"" },
	{ "slash kept", "a/b", 0, 0, "\"a/b\"" },
	{ "newline", "a\nb", 0, 0, "\"a\\nb\"" },
	{ "CR LF", "\r\n", 0, 0, "\"\\r\\n\"" },
	{ "tab, backspace, form feed", "\t\b\f", 0, 0, "\"\\t\\b\\f\"" },
	{ "NUL", "a\0b", 3, 0, "\"a\\u0000b\"" },
	{ "ESC", "\x1b[31m", 0, 0, "\"\\u001b[31m\"" },
	{ "DEL", "\x7f", 0, 0, "\"\\u007f\"" },
	{ "unit separator", "\x1f", 0, 0, "\"\\u001f\"" },
	{ "space and tilde", " ~", 0, 0, "\" ~\"" },
	{ "CJK kept raw", "\xe5\x8d\x97\xe5\xae\x81", 0, 0,
	    "\"\xe5\x8d\x97\xe5\xae\x81\"" },
	{ "emoji kept raw", "\xf0\x9f\x98\x80", 0, 0, "\"\xf0\x9f\x98\x80\"" },
	{ "U+2028 kept raw", "\xe2\x80\xa8", 0, 0, "\"\xe2\x80\xa8\"" },
	{ "Latin-1 byte", "caf\xe9", 0, 0, "\"caf\\ufffd\"" },
	{ "lone continuation", "\x80x", 0, 0, "\"\\ufffdx\"" },
	{ "overlong slash", "\xc0\xaf", 0, 0, "\"\\ufffd\\ufffd\"" },
	{ "UTF-8 surrogate", "\xed\xa0\x80", 0, 0,
	    "\"\\ufffd\\ufffd\\ufffd\"" },
	{ "above U+10FFFF", "\xf4\x90\x80\x80", 0, 0,
	    "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" },
	{ "truncated at end", "a\xe5\x8d", 0, 0, "\"a\\ufffd\\ufffd\"" },
	{ "truncated before ASCII", "\xe5\x8dz", 0, 0, "\"\\ufffd\\ufffdz\"" },
	{ "FF FE", "\xff\xfe", 0, 0, "\"\\ufffd\\ufffd\"" },
	{ "log injection", "x\"}\n{\"seq\":1", 0, 0,
	    "\"x\\\"}\\n{\\\"seq\\\":1\"" },
	{ "cut ASCII", "abcdef", 0, 3, "\"abc\xe2\x80\xa6\"" },
	{ "cut counts escaped bytes", "\n\n\n", 0, 5,
	    "\"\\n\\n\xe2\x80\xa6\"" },
	{ "cut before a \\u escape", "a\x01", 0, 6, "\"a\xe2\x80\xa6\"" },
	{ "\\u escape exactly fits", "\x01", 0, 6, "\"\\u0001\"" },
	{ "cut before a replacement", "ab\xff", 0, 7, "\"ab\xe2\x80\xa6\"" },
	{ "cut exactly at length", "abc", 0, 3, "\"abc\"" },
	{ "cut before a split character", "ab\xe5\x8d\x97", 0, 4,
	    "\"ab\xe2\x80\xa6\"" },
	{ "cut after a whole character", "\xe5\x8d\x97z", 0, 3,
	    "\"\xe5\x8d\x97\xe2\x80\xa6\"" },
	{ "cut to nothing", "abc", 0, 0, "\"abc\"" },
};

static void
test_escape_table(void)
{
	struct audit_buf b;
	size_t i, len;

	for (i = 0; i < nitems(esc_cases); i++) {
		audit_buf_init(&b, big, AUDIT_TEST_BIG);
		len = esc_cases[i].len ? esc_cases[i].len
		                       : strlen(esc_cases[i].in);
		audit_buf_str(&b, esc_cases[i].in, len,
		    esc_cases[i].max ? esc_cases[i].max : SIZE_MAX);
		audit_buf_lit(&b, "\0");
		tap_streq(test_s(b.p), esc_cases[i].want, "escape: %s",
		    esc_cases[i].name);
	}
}

/* Every byte value alone: the output parses back to what it should. */
static void
test_escape_every_byte(void)
{
	struct json_tok t[4];
	struct audit_buf b;
	char in[1], out[16], want[8];
	int c, bad = 0, n;

	for (c = 0; c < 256; c++) {
		in[0] = (char)c;
		audit_buf_init(&b, big, 64);
		audit_buf_str(&b, in, 1, SIZE_MAX);
		n = json_parse(b.p, b.len, t, 4, NULL, NULL);
		if (n != 1 || t[0].type != JSON_STRING) {
			bad++;
			continue;
		}
		json_str_get(b.p, &t[0], out, sizeof(out));
		if (c < 0x80) {
			want[0] = (char)c;
			want[1] = '\0';
		} else
			strcpy(want, "\xef\xbf\xbd");
		if (memcmp(out, want, strlen(want) + (c == 0)) != 0)
			bad++;
		/* No raw control byte or DEL may be left. */
		if (memchr(b.p, c, b.len) != NULL && (c < 0x20 || c == 0x7f))
			bad++;
	}
	tap_ok(bad == 0,
	    "each of the 256 byte values escapes to valid JSON "
	    "that decodes back (%d bad)",
	    bad);
}

/* Random bytes always give one valid JSON string on one line. */
static void
test_escape_random(void)
{
	struct json_tok t[4];
	struct audit_buf b;
	unsigned char in[300];
	unsigned seed = 12345;
	size_t i, n;
	int k, bad = 0;

	for (k = 0; k < 2000; k++) {
		n = (size_t)k % sizeof(in);
		for (i = 0; i < n; i++) {
			seed = seed * 1103515245 + 12345;
			in[i] = (unsigned char)(seed >> 16);
		}
		audit_buf_init(&b, big, AUDIT_TEST_BIG);
		audit_buf_str(&b, (const char *)in, n, 100);
		if (json_parse(b.p, b.len, t, 4, NULL, NULL) != 1 ||
		    memchr(b.p, '\n', b.len) != NULL)
			bad++;
	}
	tap_ok(bad == 0, "2000 random strings escape to valid one-line JSON");
}

static void
test_buf_overflow(void)
{
	char mem[32];
	struct audit_buf b;
	size_t i;
	int intact = 1;

	memset(mem, 'Z', sizeof(mem));
	audit_buf_init(&b, mem, 16);
	audit_buf_str(&b, "0123456789", 10, SIZE_MAX);
	tap_ok(!b.overflow && b.len == 12, "12 bytes fit in 16");
	audit_buf_str(&b, "abc", 3, SIZE_MAX);
	tap_ok(b.overflow, "overflow is flagged");
	audit_buf_lit(&b, "x");
	audit_buf_u64(&b, 1);
	tap_ok(b.len <= 16, "nothing written past cap (len %zu)", b.len);
	for (i = 16; i < sizeof(mem); i++)
		if (mem[i] != 'Z')
			intact = 0;
	tap_ok(intact, "bytes past cap untouched");
	audit_rollback(&b);
	tap_ok(!b.overflow && b.len == 0, "rollback to mark clears overflow");

	/* A long string, escaped, in one go. */
	audit_buf_init(&b, big, AUDIT_TEST_BIG);
	memset(big + 2 * 1024 * 1024, '\n', 100000);
	audit_buf_str(&b, big + 2 * 1024 * 1024, 100000, SIZE_MAX);
	tap_ok(!b.overflow && b.len == 200002,
	    "100000 newlines become 200002 bytes");
	audit_buf_init(&b, mem, 16);
	audit_buf_str(&b, "\x01\x01\x01", 3, SIZE_MAX);
	tap_ok(b.overflow && b.len <= 16, "escape that does not fit");
}

static void
test_numbers(void)
{
	static const struct {
		int64_t us;
		const char *want;
	} ms[] = {
		{ 3100, "3.1" },
		{ 3000, "3.0" },
		{ 3, "0.003" },
		{ 50, "0.05" },
		{ 0, "0.0" },
		{ 123456789, "123456.789" },
		{ -1, "null" },
	};
	char mem[64];
	struct audit_buf b;
	size_t i;

	for (i = 0; i < nitems(ms); i++) {
		audit_buf_init(&b, mem, sizeof(mem));
		audit_buf_ms(&b, ms[i].us);
		audit_buf_lit(&b, "\0");
		tap_streq(test_s(mem), ms[i].want, "ms %lld",
		    (long long)ms[i].us);
	}
	audit_buf_init(&b, mem, sizeof(mem));
	audit_buf_u64(&b, UINT64_MAX);
	audit_buf_lit(&b, " ");
	audit_buf_i64(&b, INT64_MIN);
	audit_buf_lit(&b, " ");
	audit_buf_u64(&b, 0);
	audit_buf_lit(&b, "\0");
	tap_streq(test_s(mem), "18446744073709551615 -9223372036854775808 0",
	    "integer extremes");
	audit_buf_init(&b, mem, sizeof(mem));
	audit_buf_hex(&b, (const unsigned char *)"\x00\xab\xff", 3);
	audit_buf_lit(&b, "\0");
	tap_streq(test_s(mem), "\"00abff\"", "hex");
}

static void
test_ts(void)
{
	static const struct {
		int64_t sec;
		int32_t nsec;
		const char *want;
	} ts[] = {
		{ 0, 0, "1970-01-01T00:00:00.000000Z" },
		{ 1795832107, 123456789, "2026-11-28T02:15:07.123456Z" },
		{ 1709164800, 999, "2024-02-29T00:00:00.000000Z" },
		{ -1, 999999999, "1969-12-31T23:59:59.999999Z" },
		{ 951782400, 0, "2000-02-29T00:00:00.000000Z" },
		{ 253402300799LL, 0, "9999-12-31T23:59:59.000000Z" },
		{ -62167219200LL, 0, "0000-01-01T00:00:00.000000Z" },
	};
	char out[AUDIT_TS_LEN + 1];
	size_t i;

	for (i = 0; i < nitems(ts); i++) {
		memset(out, 0, sizeof(out));
		tap_ok(audit_ts_format(ts[i].sec, ts[i].nsec, out) == 0 &&
		        strcmp(out, ts[i].want) == 0,
		    "ts %s (got %s)", ts[i].want, out);
	}
	tap_ok(audit_ts_format(253402300800LL, 0, out) < 0, "year 10000");
	tap_ok(audit_ts_format(0, 1000000000, out) < 0, "nsec too big");
	tap_ok(audit_ts_format(0, -1, out) < 0, "negative nsec");
}

static void
test_sha_line(const char *p, size_t n, char *hex)
{
	unsigned char h[32];
	unsigned int hl = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t i;

	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	EVP_DigestUpdate(md, "govgate-audit-v1\n", 17);
	EVP_DigestUpdate(md, p, n);
	EVP_DigestFinal_ex(md, h, &hl);
	EVP_MD_CTX_free(md);
	for (i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", h[i]);
}

static void
test_seal(void)
{
	static const char zeros[] = "000000000000000000000000000000000000"
	                            "0000000000000000000000000000";
	struct audit_chain ch;
	struct audit_buf b;
	char err[256], want[512], hex1[65], hex2[65], body[64];
	char *l2;
	size_t plen;
	int rc;

	tap_ok(audit_chain_init(&ch, "nn-egov-gw-1", err, sizeof(err)) == 0,
	    "chain init");
	audit_buf_init(&b, big, AUDIT_TEST_BIG);
	snprintf(body, sizeof(body), ",\"reason\":\"x\"");
	rc = audit_record(&ch, &b, "stop", 1795832107, 123456000, body,
	    strlen(body));
	tap_ok(rc == 0 && ch.seq == 1, "first record sealed");
	snprintf(want, sizeof(want),
	    "{\"seq\":1,\"ts\":\"2026-11-28T02:15:07.123456Z\",\"gateway\":"
	    "\"nn-egov-gw-1\",\"event\":\"stop\",\"reason\":\"x\",\"prev\":"
	    "\"%s\"",
	    zeros);
	plen = strlen(want);
	test_sha_line(want, plen, hex1);
	snprintf(want + plen, sizeof(want) - plen, ",\"hash\":\"%s\"}\n", hex1);
	tap_ok(b.len == strlen(want) && memcmp(b.p, want, b.len) == 0,
	    "first record is byte-exact, hash computed independently");
	if (b.len != strlen(want))
		tap_diag("got %.*s", (int)b.len, b.p);

	/* The second record in the same buffer chains to the first. */
	rc = audit_record(&ch, &b, "stop", 1795832108, 0, body, strlen(body));
	l2 = big + strlen(want);
	tap_ok(rc == 0 && ch.seq == 2 && b.mark == b.len,
	    "second record sealed in the same batch buffer");
	tap_ok(strncmp(l2, "{\"seq\":2,", 9) == 0, "seq 2");
	tap_ok(strstr(l2, hex1) != NULL, "prev of record 2 is hash of 1");
	plen = (size_t)(strstr(l2, ",\"hash\":") - l2);
	test_sha_line(l2, plen, hex2);
	tap_ok(memcmp(l2 + plen + 9, hex2, 64) == 0 &&
	        memcmp(l2 + plen + 73, "\"}\n", 3) == 0,
	    "hash of record 2 verifies");

	/* A record that does not fit leaves the chain where it was. */
	audit_buf_init(&b, big, 120);
	rc = audit_record(&ch, &b, "stop", 1795832109, 0, body, strlen(body));
	tap_ok(rc < 0 && ch.seq == 2, "overflow: not sealed, chain kept");
	audit_rollback(&b);
	tap_ok(b.len == b.mark && !b.overflow, "rollback after overflow");
	tap_ok(audit_begin(&ch, &b, "stop", 253402300800LL, 0) < 0,
	    "begin refuses a time past year 9999");
	tap_ok(audit_begin(&ch, &b, "stopp", 0, 0) < 0,
	    "begin refuses an unknown event");
	audit_chain_clear(&ch);

	tap_ok(audit_chain_init(&ch, "", err, sizeof(err)) < 0,
	    "empty gateway name refused");
	tap_ok(audit_chain_init(&ch, "a\"b", err, sizeof(err)) < 0,
	    "gateway name with a quote refused");
	tap_ok(audit_chain_init(&ch, "a\nb", err, sizeof(err)) < 0,
	    "gateway name with a newline refused");
	tap_ok(audit_chain_init(&ch, "a\\b", err, sizeof(err)) < 0,
	    "gateway name with a backslash refused");
	tap_ok(audit_chain_init(&ch, "gw\xff", err, sizeof(err)) < 0,
	    "gateway name with invalid UTF-8 refused");
	memset(want, 'g', 256);
	want[256] = '\0';
	tap_ok(audit_chain_init(&ch, want, err, sizeof(err)) < 0,
	    "gateway name of 256 bytes refused");
	tap_ok(audit_chain_init(&ch, "\xe5\x8d\x97\xe5\xae\x81-gw", err,
	           sizeof(err)) == 0,
	    "UTF-8 gateway name accepted");
	audit_chain_clear(&ch);
}

static EVP_PKEY *
test_keygen(void)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
}

/* Pull a string member out of a record line (test helper). */
static int
test_field(const char *line, size_t len, const char *key, char *out, size_t cap)
{
	static struct json_tok t[256];
	int v;

	if (json_parse(line, len, t, 256, NULL, NULL) < 0 ||
	    (v = json_obj_get(line, t, 0, key)) < 0)
		return -1;
	json_str_get(line, &t[v], out, cap);
	return 0;
}

static void
test_checkpoint(void)
{
	struct audit_signer s;
	struct audit_chain ch;
	struct audit_buf b;
	EVP_PKEY *key = test_keygen();
	EVP_MD_CTX *vctx;
	unsigned char *der = NULL, h[32], sig[80];
	unsigned int hl = 0;
	char err[256], kid[17], got[128], b64[128], msg[512], prevhex[65];
	char ts[64];
	int n, i, ok;
	size_t first;

	tap_ok(key != NULL && audit_signer_init(&s, key, err, sizeof(err)) == 0,
	    "signer init");
	n = i2d_PUBKEY(key, &der);
	EVP_Digest(der, (size_t)n, h, &hl, EVP_sha256(), NULL);
	OPENSSL_free(der);
	for (i = 0; i < 8; i++)
		sprintf(kid + 2 * i, "%02x", h[i]);
	tap_streq(test_s(s.key_id), kid,
	    "key_id is SHA-256 of the DER public key");

	audit_chain_init(&ch, "gw-1", err, sizeof(err));
	audit_buf_init(&b, big, AUDIT_TEST_BIG);
	audit_record(&ch, &b, "stop", 1795832107, 0, ",\"reason\":\"x\"", 13);
	for (i = 0; i < 32; i++)
		sprintf(prevhex + 2 * i, "%02x", ch.prev[i]);
	first = b.len;
	tap_ok(audit_checkpoint(&ch, &b, &s, 1795832108, 5000) == 0 &&
	        ch.seq == 2,
	    "checkpoint sealed");
	tap_ok(strstr(big + first, "\"event\":\"checkpoint\",\"count\":2,") !=
	        NULL,
	    "count equals seq");
	test_field(big + first, b.len - first - 1, "key_id", got, sizeof(got));
	tap_streq(test_s(got), kid, "key_id field");
	test_field(big + first, b.len - first - 1, "sig", b64, sizeof(b64));
	test_field(big + first, b.len - first - 1, "ts", ts, sizeof(ts));
	tap_ok(strlen(b64) == 88 &&
	        EVP_DecodeBlock(sig, (unsigned char *)b64, 88) == 66,
	    "sig is base64 of 64 bytes");
	snprintf(msg, sizeof(msg), "govgate-checkpoint-v1\ngw-1\n2\n%s\n%s\n",
	    ts, prevhex);
	vctx = EVP_MD_CTX_new();
	ok = EVP_DigestVerifyInit(vctx, NULL, NULL, NULL, key) == 1 &&
	    EVP_DigestVerify(vctx, sig, 64, (unsigned char *)msg,
	        strlen(msg)) == 1;
	EVP_MD_CTX_free(vctx);
	tap_ok(ok, "signature verifies over the message built independently");
	audit_chain_clear(&ch);
	audit_signer_clear(&s);
	EVP_PKEY_free(key);
}

/* Fill a peer's arena by hand (peer.c is not linked here). */
static void
test_put(struct peer *p, const char *s, struct peer_str *out)
{
	size_t n = strlen(s);

	out->off = p->arena_used;
	out->len = (uint16_t)n;
	memcpy(p->arena + p->arena_used, s, n + 1);
	p->arena_used = (uint16_t)(p->arena_used + n + 1);
}

static char dep_gongan[] = "gongan", dep_renshe[] = "renshe";
static char res_id[] = "household-registry", res_sub[] = "id";
static char grant_id[] = "NNZW-2026-0113", shadow_id[] = "NNZW-2027-0001";

static struct policy_department owner = { .id = dep_gongan };
static struct policy_department consumer = { .id = dep_renshe };
static struct policy_resource resource = { .id = res_id,
	.owner = &owner,
	.subject_id = res_sub,
	.sharing = POLICY_SHARE_CONDITIONAL };
static struct policy_grant grant = { .id = grant_id };
static struct policy_grant shadow = { .id = shadow_id };

static const char test_path[] = "/psb/v1/persons/450102199001011234";

static void
test_decision_in(struct audit_decision *in, struct audit_client *cl,
    struct audit_request *rq, struct peer *pr, struct policy_decision *d)
{
	memset(in, 0, sizeof(*in));
	memset(cl, 0, sizeof(*cl));
	memset(rq, 0, sizeof(*rq));
	memset(pr, 0, sizeof(*pr));
	memset(d, 0, sizeof(*d));
	cl->ip = "10.30.4.21";
	cl->port = 53122;
	cl->country = "CN";
	cl->zone = "renshe-net";
	pr->present = 1;
	test_put(pr, "CN=pension-app,OU=IT,O=Nanning HRSS", &pr->dn);
	test_put(pr, "3F8A21", &pr->serial);
	test_put(pr, "CN=Nanning E-Gov Department CA", &pr->issuer_dn);
	test_put(pr, "ab12", &pr->sha256);
	rq->method = "GET";
	rq->method_len = 3;
	rq->host = "psb-api.internal";
	rq->host_len = strlen(rq->host);
	rq->path = test_path;
	rq->path_len = strlen(test_path);
	rq->query = "x=1";
	rq->query_len = 3;
	rq->purpose = "pension-eligibility";
	rq->purpose_len = strlen(rq->purpose);
	rq->operator_id = "u1043";
	rq->operator_len = 5;
	d->allow = 1;
	d->reason = POLICY_R_GRANT;
	d->status = 200;
	d->department = &consumer;
	d->resource = &resource;
	d->grant = &grant;
	d->subject_off = 16;
	d->subject_len = 18;
	in->request_id = "r-0001";
	in->policy_revision = "2026-11-20.1";
	in->policy_sha256 = "00ff";
	in->classification = "restricted";
	in->client = cl;
	in->peer = pr;
	in->req = rq;
	in->d = d;
}

/* Seal body into a fresh one-record log and verify it. */
static int
test_verify_body(const char *event, const char *body, size_t len, char *why,
    size_t whylen)
{
	struct audit_verify v;
	struct audit_chain ch;
	struct audit_buf b;
	char err[256];
	int rc;

	audit_chain_init(&ch, "gw", err, sizeof(err));
	audit_buf_init(&b, big, AUDIT_TEST_BIG);
	rc = audit_record(&ch, &b, event, 1795832107, 0, body, len);
	audit_chain_clear(&ch);
	if (rc < 0) {
		snprintf(why, whylen, "seal failed");
		return -1;
	}
	memset(&v, 0, sizeof(v));
	audit_verify_init(&v, err, sizeof(err));
	rc = audit_verify_buf(&v, "t", big, b.len, 1);
	if (rc == 0)
		rc = audit_verify_finish(&v);
	snprintf(why, whylen, "%s", v.error);
	audit_verify_clear(&v);
	return rc;
}

static void
test_decision(void)
{
	struct audit_subject_key sk;
	struct audit_decision in;
	struct audit_client cl;
	struct audit_request rq;
	struct policy_decision d;
	struct audit_buf b;
	static struct peer pr;
	static char body[AUDIT_BODY_MAX];
	unsigned char mac[32], qh[32];
	size_t maclen = 0, i;
	unsigned int ql = 0;
	char why[2 * AUDIT_WHERE_MAX], hex[65], want[256], *junk;
	int rc;

	test_decision_in(&in, &cl, &rq, &pr, &d);
	audit_buf_init(&b, body, sizeof(body));
	rc = audit_fmt_decision(&b, &in);
	tap_ok(rc == 0 &&
	        test_verify_body("decision", body, b.len, why, sizeof(why)) ==
	            0,
	    "decision record verifies (%s)", why);
	audit_buf_lit(&b, "\0");
	tap_ok(strstr(body,
	           "\"path\":\"/psb/v1/persons/450102199001011234\"") != NULL &&
	        strstr(body, "subject_ref") == NULL,
	    "no subject key: path kept, no subject_ref");
	EVP_Digest("x=1", 3, qh, &ql, EVP_sha256(), NULL);
	for (i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", qh[i]);
	snprintf(want, sizeof(want), "\"query_sha256\":\"%s\"", hex);
	tap_ok(strstr(body, want) != NULL, "query_sha256 of the raw query");
	tap_ok(strstr(body,
	           ",\"decision\":\"allow\",\"reason\":\"grant\","
	           "\"grant\":\"NNZW-2026-0113\",\"shadow\":null") != NULL,
	    "decision, reason, grant, shadow");
	tap_ok(strstr(body,
	           "\"subject\":{\"department\":\"renshe\",\"dn\":"
	           "\"CN=pension-app,OU=IT,O=Nanning HRSS\"") != NULL,
	    "subject fields");

	/* With a subject key: {id} in the path and subject_ref after it. */
	audit_subject_key_set(&sk, (const unsigned char *)"0123456789abcdef0",
	    17);
	in.subject_key = &sk;
	d.shadow = &shadow;
	d.shadow_reason = POLICY_R_PURPOSE_MISMATCH;
	audit_buf_init(&b, body, sizeof(body));
	rc = audit_fmt_decision(&b, &in);
	tap_ok(rc == 0 &&
	        test_verify_body("decision", body, b.len, why, sizeof(why)) ==
	            0,
	    "pseudonymised decision verifies (%s)", why);
	audit_buf_lit(&b, "\0");
	EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, "0123456789abcdef0", 17,
	    (const unsigned char *)"450102199001011234", 18, mac, sizeof(mac),
	    &maclen);
	for (i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", mac[i]);
	snprintf(want, sizeof(want),
	    "\"operator\":\"u1043\"},\"subject_ref\":\"%s\",\"resource\":",
	    hex);
	tap_ok(strstr(body, want) != NULL,
	    "subject_ref is HMAC-SHA256 and sits right after request");
	tap_ok(strstr(body, "\"path\":\"/psb/v1/persons/{id}\"") != NULL &&
	        strstr(body, "450102199001011234") == NULL,
	    "the subject id is not in the record");
	tap_ok(strstr(body,
	           "\"shadow\":{\"grant\":\"NNZW-2027-0001\","
	           "\"decision\":\"deny\",\"reason\":"
	           "\"purpose_mismatch\"}") != NULL,
	    "shadow object");

	/* An early denial: no certificate, no resource, nothing parsed. */
	in.peer = NULL;
	in.req = NULL;
	in.subject_key = NULL;
	d.resource = NULL;
	d.grant = NULL;
	d.shadow = NULL;
	d.department = NULL;
	d.allow = 0;
	d.reason = POLICY_R_BAD_REQUEST;
	audit_buf_init(&b, body, sizeof(body));
	rc = audit_fmt_decision(&b, &in);
	tap_ok(rc == 0 &&
	        test_verify_body("decision", body, b.len, why, sizeof(why)) ==
	            0,
	    "bare denial verifies (%s)", why);

	/* Worst case: every field at its limit, every byte escaped 6-fold. */
	test_decision_in(&in, &cl, &rq, &pr, &d);
	if ((junk = malloc(3 * AUDIT_PATH_MAX)) == NULL)
		exit(1);
	memset(junk, 0x01, 3 * AUDIT_PATH_MAX);
	junk[3 * AUDIT_PATH_MAX - 1] = '\0';
	memset(&pr, 0, sizeof(pr));
	pr.present = 1;
	for (i = 0; i < PEER_MAX_DN - 1; i++)
		pr.arena[i] = '\x01';
	pr.dn.len = PEER_MAX_DN - 1;
	pr.issuer_dn.len = PEER_MAX_DN - 1;
	pr.serial.len = PEER_MAX_DN - 1;
	pr.sha256.len = PEER_MAX_DN - 1;
	rq.method = rq.host = rq.path = rq.purpose = rq.case_id =
	    rq.operator_id = junk;
	rq.method_len = rq.host_len = rq.path_len = rq.purpose_len =
	    rq.case_len = rq.operator_len = 3 * AUDIT_PATH_MAX - 1;
	in.request_id = in.policy_revision = in.policy_sha256 =
	    in.classification = junk;
	cl.ip = cl.country = cl.zone = junk;
	consumer.id = owner.id = resource.id = grant.id = shadow.id = junk;
	d.shadow = &shadow;
	in.subject_key = &sk;
	audit_buf_init(&b, body, sizeof(body));
	rc = audit_fmt_decision(&b, &in);
	tap_ok(rc == 0 &&
	        test_verify_body("decision", body, b.len, why, sizeof(why)) ==
	            0,
	    "worst-case decision fits AUDIT_BODY_MAX (%zu bytes) and "
	    "verifies (%s)",
	    b.len, why);
	consumer.id = dep_renshe;
	owner.id = dep_gongan;
	resource.id = res_id;
	grant.id = grant_id;
	shadow.id = shadow_id;
	free(junk);
}

static void
test_lifecycle(void)
{
	static const char *const errs[25] = { "policies/a.yaml:1:1: bad",
		"two\nlines" };
	struct audit_complete c;
	struct audit_buf b;
	static char body[AUDIT_BODY_MAX];
	char why[2 * AUDIT_WHERE_MAX];
	int rc;

	memset(&c, 0, sizeof(c));
	c.request_id = "r-1";
	c.status = 200;
	c.upstream = "psb-api";
	c.upstream_us = 3100;
	c.bytes_out = 1043;
	c.duration_us = 3900;
	audit_buf_init(&b, body, sizeof(body));
	rc = audit_fmt_complete(&b, &c);
	tap_ok(rc == 0 &&
	        test_verify_body("complete", body, b.len, why, sizeof(why)) ==
	            0,
	    "complete verifies (%s)", why);
	audit_buf_lit(&b, "\0");
	tap_streq(test_s(body),
	    ",\"request_id\":\"r-1\",\"status\":200,"
	    "\"upstream\":\"psb-api\",\"upstream_ms\":3.1,\"bytes_in\":0,"
	    "\"bytes_out\":1043,\"duration_ms\":3.9,\"masked\":0,"
	    "\"upstream_incomplete\":false",
	    "complete body");
	c.upstream = NULL;
	c.upstream_us = -1;
	c.upstream_incomplete = 1;
	audit_buf_init(&b, body, sizeof(body));
	rc = audit_fmt_complete(&b, &c);
	tap_ok(rc == 0 &&
	        test_verify_body("complete", body, b.len, why, sizeof(why)) ==
	            0,
	    "complete without upstream verifies (%s)", why);

#define LIFE(ev, name, call)                                                   \
	do {                                                                   \
		audit_buf_init(&b, body, sizeof(body));                        \
		rc = (call);                                                   \
		tap_ok(rc == 0 &&                                              \
		        test_verify_body(ev, body, b.len, why, sizeof(why)) == \
		            0,                                                 \
		    name " verifies (%s)", why);                               \
	} while (0)
	LIFE("start", "start", audit_fmt_start(&b, "0.1.0", 4242, 17));
	LIFE("stop", "stop", audit_fmt_stop(&b, "SIGTERM"));
	LIFE("reopen", "reopen", audit_fmt_reopen(&b, "SIGUSR1"));
	LIFE("audit_degraded", "audit_degraded",
	    audit_fmt_degraded(&b, "write: No space left on device"));
	LIFE("audit_recovered", "audit_recovered",
	    audit_fmt_recovered(&b, 12, 2500000));
	LIFE("policy_loaded", "policy_loaded ok",
	    audit_fmt_policy_loaded(&b, "2026-11-20.1", "ab", 1, NULL, 0));
	LIFE("policy_loaded", "policy_loaded error",
	    audit_fmt_policy_loaded(&b, NULL, NULL, 0, errs, 2));
	LIFE("policy_loaded", "policy_loaded with 25 errors",
	    audit_fmt_policy_loaded(&b, NULL, NULL, 0, errs, 25));
	audit_buf_lit(&b, "\0");
	tap_ok(strstr(body, "\"and 5 more\"]") != NULL,
	    "errors past the limit are counted");
	audit_buf_init(&b, body, sizeof(body));
	audit_fmt_complete(&b, &c);
	tap_ok(test_verify_body("stop", body, b.len, why, sizeof(why)) < 0 &&
	        strstr(why, "expected key \"reason\", found \"request_id\"") !=
	            NULL,
	    "a complete body under event stop is refused (%s)", why);
#undef LIFE
}

/* A small log in memory: n records, a checkpoint every k. */
static size_t
test_log(struct audit_chain *ch, const struct audit_signer *s, int n, int k,
    char *out, size_t cap)
{
	struct audit_buf b;
	char body[128];
	int i;

	audit_buf_init(&b, out, cap);
	for (i = 1; i <= n; i++) {
		if (i % k == 0)
			audit_checkpoint(ch, &b, s, 1795832107 + i, 0);
		else {
			snprintf(body, sizeof(body), ",\"reason\":\"r%d\"", i);
			audit_record(ch, &b, "stop", 1795832107 + i, 0, body,
			    strlen(body));
		}
	}
	return b.len;
}

/* Line n (1-based) of a log: its offset and length with the newline. */
static size_t
test_line(const char *log, int n, size_t *len)
{
	const char *p = log, *e;

	while (--n > 0)
		p = strchr(p, '\n') + 1;
	e = strchr(p, '\n');
	*len = (size_t)(e - p) + 1;
	return (size_t)(p - log);
}

static int
test_verify(const char *log, size_t len, EVP_PKEY *pub, const char *known,
    char *why, size_t whylen, struct audit_verify *out)
{
	struct audit_verify v;
	char err[256];
	int rc;

	memset(&v, 0, sizeof(v));
	v.pubkey = pub;
	audit_verify_init(&v, err, sizeof(err));
	rc = 0;
	if (known != NULL)
		rc = audit_verify_known_buf(&v, "known", known, strlen(known));
	if (rc == 0)
		rc = audit_verify_buf(&v, "log", log, len, 1);
	if (rc == 0)
		rc = audit_verify_finish(&v);
	snprintf(why, whylen, "%s", v.error);
	if (out != NULL) {
		out->nrecords = v.nrecords;
		out->ncheckpoints = v.ncheckpoints;
		out->sealed_seq = v.sealed_seq;
		out->unsealed = v.unsealed;
		out->torn_bytes = v.torn_bytes;
		memcpy(out->torn_at, v.torn_at, sizeof(v.torn_at));
	}
	audit_verify_clear(&v);
	return rc;
}

static void
test_verifier(void)
{
	struct audit_verify res;
	struct audit_signer s;
	struct audit_chain ch;
	EVP_PKEY *key = test_keygen(), *other = test_keygen();
	static char log[65536], copy[65536], known[4096];
	char err[256], why[2 * AUDIT_WHERE_MAX];
	size_t len, off, ll, l2, o2;
	int rc;

	audit_signer_init(&s, key, err, sizeof(err));
	audit_chain_init(&ch, "gw", err, sizeof(err));
	len = test_log(&ch, &s, 23, 5, log, sizeof(log));
	audit_chain_clear(&ch);

	rc = test_verify(log, len, key, NULL, why, sizeof(why), &res);
	tap_ok(rc == 0 && res.nrecords == 23 && res.ncheckpoints == 4 &&
	        res.sealed_seq == 20 && res.unsealed == 3,
	    "intact log: 23 records, 4 checkpoints, 3 unsealed (%s)", why);
	rc = test_verify(log, len, other, NULL, why, sizeof(why), NULL);
	tap_ok(rc < 0 &&
	        strncmp(why,
	            "log:5: checkpoint made with another "
	            "key",
	            36) == 0,
	    "another public key: named at the first checkpoint (%s)", why);

	/* Flip one byte of the payload of record 7. */
	memcpy(copy, log, len);
	off = test_line(copy, 7, &ll);
	copy[off + 60] ^= 0x01;
	rc = test_verify(copy, len, key, NULL, why, sizeof(why), NULL);
	tap_ok(rc < 0 && strncmp(why, "log:7: ", 7) == 0,
	    "flipped payload byte named at line 7 (%s)", why);

	/* Delete record 7. */
	memcpy(copy, log, off);
	memcpy(copy + off, log + off + ll, len - off - ll);
	rc = test_verify(copy, len - ll, key, NULL, why, sizeof(why), NULL);
	tap_ok(rc < 0 && strncmp(why, "log:7: seq 8 where 7 expected", 29) == 0,
	    "deleted record named at line 7 (%s)", why);

	/* Swap records 7 and 8. */
	o2 = test_line(log, 8, &l2);
	memcpy(copy, log, len);
	memcpy(copy + off, log + o2, l2);
	memcpy(copy + off + l2, log + off, ll);
	rc = test_verify(copy, len, key, NULL, why, sizeof(why), NULL);
	tap_ok(rc < 0 && strncmp(why, "log:7: ", 7) == 0,
	    "swapped records named at line 7 (%s)", why);

	/* Torn tail: the last line without its end. */
	rc = test_verify(log, len - 30, key, NULL, why, sizeof(why), &res);
	tap_ok(rc == 0 && res.torn_bytes > 0 &&
	        strcmp(res.torn_at, "log:23") == 0 && res.nrecords == 22,
	    "torn tail reported at log:23, not an error (%s)", why);

	/* Known checkpoints. */
	off = test_line(log, 20, &ll);
	memcpy(known, log + off, ll);
	known[ll] = '\0';
	rc = test_verify(log, len, key, known, why, sizeof(why), NULL);
	tap_ok(rc == 0, "known checkpoint found (%s)", why);
	off = test_line(log, 16, &ll);
	rc = test_verify(log, off, key, known, why, sizeof(why), NULL);
	tap_ok(rc < 0 && strstr(why, "log:15: the log ends at seq 15") == why &&
	        strstr(why, "rollback or truncation") != NULL,
	    "truncation before a known checkpoint (%s)", why);
	rc = test_verify(log, len, other, known, why, sizeof(why), NULL);
	tap_ok(rc < 0 && strncmp(why, "known:1: known checkpoint", 25) == 0,
	    "known checkpoint under another key refused (%s)", why);
	rc = test_verify(log, len, NULL, "{\"seq\":1}\n", why, sizeof(why),
	    NULL);
	tap_ok(rc < 0 && strncmp(why, "known:1: ", 9) == 0,
	    "malformed known checkpoint refused (%s)", why);

	/* Inputs that are not records at all. */
	rc = test_verify("\n", 1, NULL, NULL, why, sizeof(why), NULL);
	tap_ok(rc < 0 && strcmp(why, "log:1: empty line") == 0,
	    "empty line (%s)", why);
	rc = test_verify("[1]\n", 4, NULL, NULL, why, sizeof(why), NULL);
	tap_ok(rc < 0 && strncmp(why, "log:1: bad record", 17) == 0,
	    "array line (%s)", why);
	rc = test_verify("", 0, NULL, NULL, why, sizeof(why), &res);
	tap_ok(rc == 0 && res.nrecords == 0, "empty log is intact");

	audit_signer_clear(&s);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
}

static void
test_tail(void)
{
	struct audit_signer s;
	struct audit_chain ch;
	struct audit_tail t;
	EVP_PKEY *key = test_keygen();
	static char log[65536];
	char path[128], err[512];
	size_t len, off, ll;
	FILE *fp;

	audit_signer_init(&s, key, err, sizeof(err));
	audit_chain_init(&ch, "gw", err, sizeof(err));
	len = test_log(&ch, &s, 12, 5, log, sizeof(log));
	err[0] = '\0';
	snprintf(path, sizeof(path), "%s/tail.jsonl", tmpdir);

	fp = fopen(path, "w");
	fwrite(log, 1, len, fp);
	fclose(fp);
	tap_ok(audit_tail_read(path, &t, err, sizeof(err)) == 0 &&
	        t.seq == 12 && memcmp(t.hash, ch.prev, 32) == 0 &&
	        t.torn == 0 && t.end == (off_t)len && t.event == AUDIT_EV_STOP,
	    "tail of a clean file: seq 12 and its hash (%s)", err);

	fp = fopen(path, "a");
	fwrite("{\"seq\":13,\"ts\":", 1, 15, fp);
	fclose(fp);
	tap_ok(audit_tail_read(path, &t, err, sizeof(err)) == 0 &&
	        t.seq == 12 && t.torn == 15 && t.end == (off_t)len,
	    "torn final line: reported with its offset (%s)", err);

	off = test_line(log, 12, &ll);
	log[off + 20] ^= 0x02;
	fp = fopen(path, "w");
	fwrite(log, 1, len, fp);
	fclose(fp);
	tap_ok(audit_tail_read(path, &t, err, sizeof(err)) < 0,
	    "corrupt last record refused (%s)", err);

	fp = fopen(path, "w");
	fclose(fp);
	tap_ok(audit_tail_read(path, &t, err, sizeof(err)) == 0 && t.seq == 0 &&
	        t.end == 0,
	    "empty file: no record");
	fp = fopen(path, "w");
	fwrite("{\"seq\":1", 1, 8, fp);
	fclose(fp);
	tap_ok(audit_tail_read(path, &t, err, sizeof(err)) == 0 && t.seq == 0 &&
	        t.end == 0 && t.torn == 8,
	    "only a torn line");
	unlink(path);
	tap_ok(audit_tail_read(path, &t, err, sizeof(err)) < 0 &&
	        errno == ENOENT,
	    "missing file: ENOENT");
	audit_chain_clear(&ch);
	audit_signer_clear(&s);
	EVP_PKEY_free(key);
}

static void
test_subject_key(void)
{
	static const char *const keys[] = { "0123456789abcdef",
		"a much longer key that is well past the sixty-four bytes of "
		"one SHA-256 block, to test the hashing of long keys" };
	struct audit_subject_key sk;
	unsigned char mac[32];
	size_t maclen, i, k;
	char hex[65], ref[65], path[128], err[256];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	FILE *fp;

	for (k = 0; k < nitems(keys); k++) {
		audit_subject_key_set(&sk, (const unsigned char *)keys[k],
		    strlen(keys[k]));
		EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, keys[k],
		    strlen(keys[k]), (const unsigned char *)"450102", 6, mac,
		    sizeof(mac), &maclen);
		for (i = 0; i < 32; i++)
			sprintf(hex + 2 * i, "%02x", mac[i]);
		tap_ok(audit_subject_ref(&sk, md, "450102", 6, ref) == 0 &&
		        strcmp(ref, hex) == 0,
		    "subject_ref equals HMAC-SHA256 (key of %zu bytes)",
		    strlen(keys[k]));
	}
	snprintf(path, sizeof(path), "%s/subject.key", tmpdir);
	fp = fopen(path, "w");
	fprintf(fp, "0123456789abcdef\n");
	fclose(fp);
	chmod(path, 0644);
	tap_ok(audit_subject_key_load(&sk, path, err, sizeof(err)) < 0,
	    "world-readable subject key refused (%s)", err);
	chmod(path, 0600);
	tap_ok(audit_subject_key_load(&sk, path, err, sizeof(err)) == 0 &&
	        audit_subject_ref(&sk, md, "450102", 6, ref) == 0 &&
	        strcmp(ref, hex) != 0,
	    "subject key file loads, newline stripped");
	audit_subject_key_set(&sk, (const unsigned char *)keys[0], 16);
	audit_subject_ref(&sk, md, "450102", 6, hex);
	audit_subject_key_load(&sk, path, err, sizeof(err));
	audit_subject_ref(&sk, md, "450102", 6, ref);
	tap_streq(test_s(ref), hex,
	    "file key equals the same bytes set directly");
	fp = fopen(path, "w");
	fprintf(fp, "short\n");
	fclose(fp);
	tap_ok(audit_subject_key_load(&sk, path, err, sizeof(err)) < 0,
	    "too short a subject key refused");
	unlink(path);
	EVP_MD_CTX_free(md);
}

int
main(void)
{
	if ((big = malloc(AUDIT_TEST_BIG)) == NULL)
		return 1;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/audit_test.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return 1;
	test_escape_table();
	test_escape_every_byte();
	test_escape_random();
	test_buf_overflow();
	test_numbers();
	test_ts();
	test_seal();
	test_checkpoint();
	test_decision();
	test_lifecycle();
	test_verifier();
	test_tail();
	test_subject_key();
	rmdir(tmpdir);
	free(big);
	tap_done();
	tap_exit();
}
