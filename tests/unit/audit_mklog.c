/*
 * audit_mklog.c - test tool: write a valid sealed audit log of N records
 * of every kind through the audit API, split over the files given.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "audit.h"
#include "compat.h"
#include "peer.h"
#include "policy.h"

static const char mklog_usage[] =
    "usage: audit_mklog --key KEY.key [--records N] [--checkpoint-every K]\n"
    "                   [--unsealed M] [--gateway NAME] [--start EPOCH]\n"
    "                   OUT...\n"
    "Write records 1..N (default 100) split evenly over OUT files, one\n"
    "chain: a checkpoint every K records (default 10) and after record\n"
    "N - M, so the last M records (default 0) are unsealed. Record kinds\n"
    "cycle through all events; timestamps are 1 ms apart from EPOCH.\n";

static char d_renshe[] = "renshe", d_gongan[] = "gongan";
static char d_cjk[] = "\xe6\xb0\x91\xe6\x94\xbf"; /* 民政 */
static char r_house[] = "household-registry", r_sub[] = "id";
static char r_open[] = "open-data";
static char g_one[] = "NNZW-2026-0113", g_shadow[] = "NNZW-2027-0001";

static struct policy_department dep[3] = { { .id = d_renshe },
	{ .id = d_gongan }, { .id = d_cjk } };
static struct policy_resource res[2] = {
	{ .id = r_house,
	    .owner = &dep[1],
	    .subject_id = r_sub,
	    .sharing = POLICY_SHARE_CONDITIONAL },
	{ .id = r_open, .owner = &dep[2], .sharing = POLICY_SHARE_OPEN },
};
static struct policy_grant grant = { .id = g_one };
static struct policy_grant shadow = { .id = g_shadow };

static void
mklog_put(struct peer *p, const char *s, struct peer_str *out)
{
	size_t n = strlen(s);

	out->off = p->arena_used;
	out->len = (uint16_t)n;
	memcpy(p->arena + p->arena_used, s, n + 1);
	p->arena_used = (uint16_t)(p->arena_used + n + 1);
}

/* The body and event of record i (not a checkpoint). */
static const char *
mklog_body(uint64_t i, struct audit_buf *b, const struct peer *pr,
    const struct audit_subject_key *sk, EVP_MD_CTX *md)
{
	static const char *const errs[] = { "policies/hr.yaml:12:7: unknown "
		                            "key \"mehtod\"" };
	struct audit_decision in;
	struct audit_client cl;
	struct audit_request rq;
	struct policy_decision d;
	struct audit_complete c;
	char rid[32], path[96];
	uint64_t k = i % 20;

	audit_buf_reset(b);
	snprintf(rid, sizeof(rid), "r-%08llu",
	    (unsigned long long)(k % 2 == 1 ? i : i - 1));
	if (i == 1) {
		audit_fmt_start(b, "0.1.0", 4242, 0);
		return "start";
	}
	if (i == 2 || k == 18) {
		audit_fmt_policy_loaded(b, "2026-11-20.1",
		    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0"
		    "f00"
		    "a08",
		    k != 18, errs, k == 18);
		return "policy_loaded";
	}
	if (k == 14) {
		audit_fmt_reopen(b, "SIGUSR1");
		return "reopen";
	}
	if (k == 15) {
		audit_fmt_degraded(b, "write: No space left on device");
		return "audit_degraded";
	}
	if (k == 16) {
		audit_fmt_recovered(b, i % 7, 1500000);
		return "audit_recovered";
	}
	if (k == 17) {
		audit_fmt_stop(b, "SIGTERM");
		return "stop";
	}
	if (k % 2 == 0) {
		memset(&c, 0, sizeof(c));
		c.request_id = rid;
		c.status = 200;
		c.upstream = "psb-api";
		c.upstream_us = (int64_t)(i % 5000);
		c.bytes_out = i * 3;
		c.duration_us = (int64_t)(i % 7000);
		c.masked = i % 3;
		c.upstream_incomplete = i % 11 == 0;
		audit_fmt_complete(b, &c);
		return "complete";
	}
	memset(&cl, 0, sizeof(cl));
	memset(&rq, 0, sizeof(rq));
	memset(&d, 0, sizeof(d));
	memset(&in, 0, sizeof(in));
	cl.ip = "10.30.4.21";
	cl.port = (uint16_t)(1024 + i % 60000);
	cl.country = i % 3 == 0 ? NULL : "CN";
	cl.zone = "renshe-net";
	snprintf(path, sizeof(path), "/psb/v1/persons/4501021990%08llu",
	    (unsigned long long)(i % 100000000));
	rq.method = "GET";
	rq.method_len = 3;
	rq.host = "psb-api.internal";
	rq.host_len = strlen(rq.host);
	rq.path = path;
	rq.path_len = strlen(path);
	rq.query = i % 4 == 1 ? "fields=name" : NULL;
	rq.query_len = rq.query != NULL ? strlen(rq.query) : 0;
	rq.purpose = "pension-eligibility";
	rq.purpose_len = strlen(rq.purpose);
	rq.operator_id = "u1043\n\"x\"";
	rq.operator_len = strlen(rq.operator_id);
	d.department = &dep[i % 3];
	d.resource = &res[i % 5 == 0];
	d.subject_off = 16;
	d.subject_len = strlen(path) - 16;
	if (i % 5 == 3) {
		d.allow = 0;
		d.reason = POLICY_R_PURPOSE_MISMATCH;
		d.shadow = &shadow;
		d.shadow_reason = POLICY_R_GRANT;
	} else {
		d.allow = 1;
		d.reason = POLICY_R_GRANT;
		d.grant = &grant;
	}
	in.request_id = rid;
	in.policy_revision = "2026-11-20.1";
	in.policy_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd1"
	                   "5d6c15b0f00a08";
	in.classification = "restricted";
	in.client = &cl;
	in.peer = i % 9 == 0 ? NULL : pr;
	in.req = &rq;
	in.d = &d;
	in.subject_key = sk;
	in.md = md;
	audit_fmt_decision(b, &in);
	return "decision";
}

int
main(int argc, char **argv)
{
	const char *keypath = NULL, *gw = "nn-egov-gw-1", *event;
	unsigned long long n = 100, every = 10, unsealed = 0;
	long long start = 1795832107;
	struct audit_subject_key sk;
	struct audit_signer s;
	struct audit_chain ch;
	struct audit_buf out, body;
	static struct peer pr;
	static char obuf[1 << 20], bbuf[AUDIT_BODY_MAX];
	EVP_PKEY *key;
	EVP_MD_CTX *md;
	char err[512];
	uint64_t i, last_sealed, hi;
	int f, nf, first;
	FILE *fp;
	int rc;

	for (first = 1; first < argc; first++) {
		if (first + 1 < argc && strcmp(argv[first], "--key") == 0)
			keypath = argv[++first];
		else if (first + 1 < argc &&
		    strcmp(argv[first], "--records") == 0)
			n = strtoull(argv[++first], NULL, 10);
		else if (first + 1 < argc &&
		    strcmp(argv[first], "--checkpoint-every") == 0)
			every = strtoull(argv[++first], NULL, 10);
		else if (first + 1 < argc &&
		    strcmp(argv[first], "--unsealed") == 0)
			unsealed = strtoull(argv[++first], NULL, 10);
		else if (first + 1 < argc &&
		    strcmp(argv[first], "--gateway") == 0)
			gw = argv[++first];
		else if (first + 1 < argc &&
		    strcmp(argv[first], "--start") == 0)
			start = strtoll(argv[++first], NULL, 10);
		else
			break;
	}
	nf = argc - first;
	if (keypath == NULL || nf < 1 || every < 2 || unsealed >= n) {
		fputs(mklog_usage, stderr);
		return 2;
	}
	if ((key = audit_key_load_private(keypath, err, sizeof(err))) == NULL ||
	    audit_signer_init(&s, key, err, sizeof(err)) < 0 ||
	    audit_chain_init(&ch, gw, err, sizeof(err)) < 0) {
		fprintf(stderr, "audit_mklog: %s\n", err);
		return 1;
	}
	EVP_PKEY_free(key);
	audit_subject_key_set(&sk, (const unsigned char *)"audit-mklog-key-0",
	    17);
	md = EVP_MD_CTX_new();
	pr.present = 1;
	mklog_put(&pr, "CN=pension-app,OU=IT\\, \"Ops\",O=Nanning HRSS",
	    &pr.dn);
	mklog_put(&pr, "3F8A21", &pr.serial);
	mklog_put(&pr, "CN=Nanning E-Gov Department CA", &pr.issuer_dn);
	mklog_put(&pr,
	    "5d41402abc4b2a76b9719d911017c592aaaabbbbccccddddeeeeffff00001111",
	    &pr.sha256);
	last_sealed = n - unsealed;
	audit_buf_init(&body, bbuf, sizeof(bbuf));
	i = 0;
	for (f = 0; f < nf; f++) {
		if ((fp = fopen(argv[first + f], "w")) == NULL) {
			perror(argv[first + f]);
			return 1;
		}
		hi = (uint64_t)(n * (unsigned long long)(f + 1) /
		    (unsigned long long)nf);
		audit_buf_init(&out, obuf, sizeof(obuf));
		while (i < hi) {
			i++;
			if ((i % every == 0 && i < last_sealed) ||
			    i == last_sealed)
				rc = audit_checkpoint(&ch, &out, &s,
				    start + (int64_t)(i / 1000),
				    (int32_t)(i % 1000) * 1000000);
			else {
				event = mklog_body(i, &body, &pr, &sk, md);
				rc = audit_record(&ch, &out, event,
				    start + (int64_t)(i / 1000),
				    (int32_t)(i % 1000) * 1000000, body.p,
				    body.len);
			}
			if (rc < 0) {
				fprintf(stderr,
				    "audit_mklog: record %llu "
				    "failed\n",
				    (unsigned long long)i);
				return 1;
			}
			if (out.len > sizeof(obuf) - AUDIT_RECORD_MAX) {
				fwrite(out.p, 1, out.len, fp);
				audit_buf_reset(&out);
			}
		}
		fwrite(out.p, 1, out.len, fp);
		if (fclose(fp) != 0) {
			perror(argv[first + f]);
			return 1;
		}
	}
	EVP_MD_CTX_free(md);
	audit_chain_clear(&ch);
	audit_signer_clear(&s);
	return 0;
}
