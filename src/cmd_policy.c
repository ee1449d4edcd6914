/* cmd_policy.c - `govgate policy test`: run policy test cases. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfgset.h"
#include "cmd.h"
#include "conf.h"
#include "diag.h"
#include "json.h"
#include "offline.h"
#include "peer.h"
#include "policy.h"
#include "tz.h"
#include "xmalloc.h"
#include "ynode.h"

#define PTEST_MAX_REPEAT 100000
#define PDIFF_MAX_LINE (64 * 1024) /* bytes of one audit record */
#define PDIFF_MAX_TOKENS 512

/* What the cases exercised, for --coverage. */
struct ptest_cov {
	unsigned char *dept, *res, *grant;
	unsigned char reason[POLICY_NREASONS];
};

struct ptest {
	struct cfgset *set;
	struct ptest_cov cov;
	size_t passed, failed;
	int nerrors; /* case files that could not be read */
};

static void
policy_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: govgate policy test -c FILE [--coverage] CASES.yaml...\n"
	    "       govgate policy diff -c FILE --against POLICY AUDIT.jsonl..."
	    "\n\n"
	    "Run policy test cases against the policy the config names, "
	    "deciding each\n"
	    "request exactly as serve would. Prints one line per failing "
	    "case and ends\n"
	    "with \"N passed, N failed\". Exit status 1 when any case fails "
	    "or a case\n"
	    "file is invalid.\n\n"
	    "  -c, --config FILE  the gateway config (govgate.yaml)\n"
	    "      --coverage     list departments, resources, grants and "
	    "reason codes\n"
	    "                     no case exercised (one \"unexercised KIND "
	    "ID\" line each)\n"
	    "  -h, --help         this text\n\n"
	    "Case files: see govgate-policy(5), section POLICY TESTS.\n\n"
	    "policy diff re-decides every decision record of the audit files "
	    "under the\n"
	    "candidate POLICY (a file or folder) and prints each decision "
	    "that would\n"
	    "change. The department is taken as recorded (certificate "
	    "matching is not\n"
	    "re-run); source country, zone, purpose, case and time are the "
	    "recorded ones.\n"
	    "Exit status: 0 no change, 1 changes, 2 trouble.\n");
}

static const struct ynode_key ptest_file_keys[] = {
	{ "defaults", YNODE_MAP, 0 },
	{ "cases", YNODE_SEQ, YNODE_REQUIRED },
	{ NULL, YNODE_ANY, 0 },
};

/* Keys of a case; `defaults` takes the same except name/expect/reason. */
static const struct ynode_key ptest_case_keys[] = {
	{ "name", YNODE_STR, 0 },
	{ "cert", YNODE_ANY, 0 },
	{ "from", YNODE_STR, 0 },
	{ "at", YNODE_STR, 0 },
	{ "request", YNODE_STR, 0 },
	{ "headers", YNODE_MAP, 0 },
	{ "expect", YNODE_ANY, 0 },
	{ "reason", YNODE_STR, 0 },
	{ "repeat", YNODE_STR, 0 },
	{ "listener", YNODE_STR, 0 },
	{ NULL, YNODE_ANY, 0 },
};

enum {
	CK_NAME = 0,
	CK_CERT,
	CK_FROM,
	CK_AT,
	CK_REQUEST,
	CK_HEADERS,
	CK_EXPECT,
	CK_REASON,
	CK_REPEAT,
	CK_LISTENER,
	CK_NKEYS,
};

static const struct ynode_key ptest_expect_keys[] = {
	{ "decision", YNODE_STR, 0 },
	{ "reason", YNODE_STR, 0 },
	{ "grant", YNODE_STR, 0 },
	{ "status", YNODE_STR, 0 },
	{ NULL, YNODE_ANY, 0 },
};

static const struct ynode_key ptest_cert_keys[] = {
	{ "subject", YNODE_MAP, 0 },
	{ "issuer", YNODE_MAP, 0 },
	{ "serial", YNODE_STR, 0 },
	{ "san_uri", YNODE_ANY, 0 },
	{ "san_dns", YNODE_ANY, 0 },
	{ NULL, YNODE_ANY, 0 },
};

/* What a case expects; NULL/0 fields are not checked. */
struct ptest_expect {
	int decision; /* -1: unchecked, 0 deny, 1 allow */
	const char *reason;
	const char *grant;
	int status;
};

static int
ptest_name_fields(struct ynode_doc *d, yaml_node_t *n, struct peer *id,
    struct peer_name *nm, const char *what)
{
	yaml_node_pair_t *pair;
	enum peer_attr a;
	const char *k, *v;
	size_t i;

	for (i = 0; i < ynode_map_len(n); i++) {
		pair = ynode_map_pair(n, i);
		if ((k = ynode_str(d, ynode_at(d, pair->key), what)) == NULL ||
		    (v = ynode_str(d, ynode_at(d, pair->value), what)) == NULL)
			return -1;
		if (peer_attr_parse(k, &a) == -1) {
			ynode_error(d, ynode_at(d, pair->key),
			    "unknown key \"%s\" in %s (expected: CN, OU, O, L, "
			    "ST, C, serialNumber)",
			    k, what);
			return -1;
		}
		if (peer_put(id, v, strlen(v), &nm->val[a]) == -1)
			return -1;
		nm->state[a] = PEER_ATTR_OK;
	}
	return 0;
}

static int
ptest_sans(struct ynode_doc *d, yaml_node_t *n, struct peer *id,
    struct peer_str *v, uint8_t *count, const char *what)
{
	const char *s;
	size_t i, len = n->type == YAML_SEQUENCE_NODE ? ynode_seq_len(n) : 1;

	for (i = 0; i < len; i++) {
		s = ynode_str(d,
		    n->type == YAML_SEQUENCE_NODE
		        ? ynode_at(d, ynode_seq_item(n, i))
		        : n,
		    what);
		if (s == NULL || *count == PEER_MAX_SAN ||
		    peer_put(id, s, strlen(s), &v[*count]) == -1)
			return -1;
		(*count)++;
	}
	return 0;
}

/*
 * A case's certificate: "none", a PEM file relative to the case file, or
 * a mapping of certificate fields.
 */
static int
ptest_cert(struct ynode_doc *d, yaml_node_t *n, struct offline_req *r)
{
	yaml_node_t *v[5];
	char path[PATH_MAX], err[512], dir[PATH_MAX];
	const char *s;

	memset(&r->peer, 0, sizeof(r->peer));
	if (n->type == YAML_SCALAR_NODE) {
		if ((s = ynode_str(d, n, "cert")) == NULL)
			return -1;
		if (strcmp(s, "none") == 0)
			return 0;
		snprintf(dir, sizeof(dir), "%s", d->file);
		if (s[0] == '/')
			snprintf(path, sizeof(path), "%s", s);
		else
			snprintf(path, sizeof(path), "%s/%s", dirname(dir), s);
		if (offline_load_cert(r, path, err, sizeof(err)) == -1) {
			ynode_error(d, n, "cert: %s", err);
			return -1;
		}
		return 0;
	}
	if (ynode_map(d, n, ptest_cert_keys, v, "cert") == -1)
		return -1;
	r->peer.present = 1;
	if (v[0] &&
	    ptest_name_fields(d, v[0], &r->peer, &r->peer.subject,
	        "cert.subject") == -1)
		return -1;
	if (v[1] &&
	    ptest_name_fields(d, v[1], &r->peer, &r->peer.issuer,
	        "cert.issuer") == -1)
		return -1;
	if (v[2] != NULL) {
		if ((s = ynode_str(d, v[2], "serial")) == NULL ||
		    peer_put(&r->peer, s, strlen(s), &r->peer.serial) == -1)
			return -1;
	}
	if (v[3] &&
	    ptest_sans(d, v[3], &r->peer, r->peer.san_uri, &r->peer.n_san_uri,
	        "san_uri") == -1)
		return -1;
	if (v[4] &&
	    ptest_sans(d, v[4], &r->peer, r->peer.san_dns, &r->peer.n_san_dns,
	        "san_dns") == -1)
		return -1;
	return 0;
}

static int
ptest_expect(struct ynode_doc *d, yaml_node_t *n, yaml_node_t *reason,
    struct ptest_expect *e)
{
	yaml_node_t *v[4];
	const char *s;
	enum policy_reason r;
	uint64_t st;

	memset(e, 0, sizeof(*e));
	e->decision = -1;
	if (n == NULL) {
		ynode_error(d, NULL, "a case needs expect");
		return -1;
	}
	if (n->type == YAML_SCALAR_NODE) {
		v[0] = n;
		v[1] = reason;
		v[2] = v[3] = NULL;
	} else if (ynode_map(d, n, ptest_expect_keys, v, "expect") == -1)
		return -1;
	if (v[0] != NULL) {
		if ((s = ynode_str(d, v[0], "decision")) == NULL)
			return -1;
		if (strcmp(s, "allow") == 0)
			e->decision = 1;
		else if (strcmp(s, "deny") == 0)
			e->decision = 0;
		else {
			ynode_error(d, v[0],
			    "expect: \"%s\" is not allow or deny", s);
			return -1;
		}
	}
	if (v[1] != NULL) {
		if ((e->reason = ynode_str(d, v[1], "reason")) == NULL)
			return -1;
		if (policy_reason_parse(e->reason, &r) == -1) {
			ynode_error(d, v[1],
			    "reason: unknown reason code \"%s\"", e->reason);
			return -1;
		}
	}
	if (v[2] != NULL && (e->grant = ynode_str(d, v[2], "grant")) == NULL)
		return -1;
	if (v[3] != NULL) {
		if (ynode_uint(d, v[3], "status", 100, 599, &st) == -1)
			return -1;
		e->status = (int)st;
	}
	if (e->decision == -1 && e->reason == NULL && e->grant == NULL &&
	    e->status == 0) {
		ynode_error(d, n, "expect: says nothing to check");
		return -1;
	}
	return 0;
}

/* Apply one case's (or the defaults') settings to r. */
static int
ptest_apply(struct ptest *t, struct ynode_doc *d, yaml_node_t **v,
    struct offline_req *r)
{
	const struct conf *conf = t->set->conf;
	yaml_node_pair_t *pair;
	const char *s, *k;
	char err[512];
	size_t i;

	if (v[CK_CERT] != NULL && ptest_cert(d, v[CK_CERT], r) == -1)
		return -1;
	if (v[CK_FROM] != NULL) {
		if ((s = ynode_str(d, v[CK_FROM], "from")) == NULL)
			return -1;
		if (offline_set_from(r, t->set->geo, s, err, sizeof(err)) ==
		    -1) {
			ynode_error(d, v[CK_FROM], "from: %s", err);
			return -1;
		}
	}
	if (v[CK_AT] != NULL) {
		if ((s = ynode_str(d, v[CK_AT], "at")) == NULL)
			return -1;
		if (offline_set_at(r, s, err, sizeof(err)) == -1) {
			ynode_error(d, v[CK_AT], "at: %s", err);
			return -1;
		}
	}
	if (v[CK_REQUEST] != NULL) {
		if ((s = ynode_str(d, v[CK_REQUEST], "request")) == NULL)
			return -1;
		if (offline_set_request(r, s, err, sizeof(err)) == -1) {
			ynode_error(d, v[CK_REQUEST], "request: %s", err);
			return -1;
		}
	}
	for (i = 0; v[CK_HEADERS] != NULL && i < ynode_map_len(v[CK_HEADERS]);
	     i++) {
		pair = ynode_map_pair(v[CK_HEADERS], i);
		if ((k = ynode_str(d, ynode_at(d, pair->key), "headers")) ==
		        NULL ||
		    (s = ynode_str(d, ynode_at(d, pair->value), k)) == NULL)
			return -1;
		/* A case's header replaces the same one from defaults. */
		offline_unset_header(r, k);
		if (offline_set_header(r, k, s, err, sizeof(err)) == -1) {
			ynode_error(d, ynode_at(d, pair->key), "headers: %s",
			    err);
			return -1;
		}
	}
	if (v[CK_LISTENER] != NULL) {
		if ((s = ynode_str(d, v[CK_LISTENER], "listener")) == NULL)
			return -1;
		if (strcmp(s, "optional") == 0)
			r->cert_optional = 1;
		else if (strcmp(s, "require") == 0)
			r->cert_optional = 0;
		else {
			for (i = 0; i < conf->nlisteners; i++)
				if (strcmp(conf->listeners[i].name, s) == 0)
					break;
			if (i == conf->nlisteners) {
				ynode_error(d, v[CK_LISTENER],
				    "listener: no listener named \"%s\" "
				    "(or: optional, require)",
				    s);
				return -1;
			}
			r->cert_optional = conf->listeners[i].tls.client_auth ==
			    CONF_CLIENT_AUTH_OPTIONAL;
		}
	}
	return 0;
}

static void
ptest_cover(struct ptest *t, const struct policy_decision *d)
{
	size_t i, n;

	t->cov.reason[d->reason] = 1;
	if (d->department)
		t->cov.dept[d->department->index] = 1;
	if (d->resource)
		t->cov.res[d->resource->index] = 1;
	if (d->grant)
		t->cov.grant[d->grant->index] = 1;
	if (d->shadow)
		t->cov.grant[d->shadow->index] = 1;
	n = d->ncandidates < POLICY_MAX_CANDIDATES ? d->ncandidates
	                                           : POLICY_MAX_CANDIDATES;
	for (i = 0; i < n; i++)
		t->cov.grant[d->cand[i].grant->index] = 1;
	if (d->suspension && d->suspension->grant)
		t->cov.grant[d->suspension->grant->index] = 1;
}

/* Compare and report; returns 1 when the case passed. */
static int
ptest_check(struct ynode_doc *d, yaml_node_t *n, const char *name,
    const struct ptest_expect *e, const struct policy_decision *dec)
{
	const char *got_grant = dec->grant ? dec->grant->id : "";

	if ((e->decision == -1 || e->decision == dec->allow) &&
	    (e->reason == NULL ||
	        strcmp(e->reason, policy_reason_str(dec->reason)) == 0) &&
	    (e->grant == NULL || strcmp(e->grant, got_grant) == 0) &&
	    (e->status == 0 || e->status == dec->status))
		return 1;
	printf("%s:%zu:%zu: FAIL %s: expected %s%s%s%s%s%s, got %s %s%s%s "
	       "(status %d%s%s)\n",
	    d->file, ynode_line(n), ynode_col(n), name,
	    e->decision == -1 ? "" : (e->decision ? "allow" : "deny"),
	    e->reason ? " " : "", e->reason ? e->reason : "",
	    e->grant ? " grant " : "", e->grant ? e->grant : "",
	    e->status ? " with status" : "", dec->allow ? "allow" : "deny",
	    policy_reason_str(dec->reason), dec->grant ? " grant " : "",
	    got_grant, dec->status, dec->detail ? "; " : "",
	    dec->detail && !dec->allow ? dec->detail : "");
	return 0;
}

static void
ptest_file(struct ptest *t, const char *path)
{
	struct ynode_doc doc;
	struct diag dg;
	struct offline_req base, r;
	struct policy_input in;
	struct policy_decision dec;
	struct ptest_expect e;
	yaml_node_t *fv[2], *dv[CK_NKEYS], *cv[CK_NKEYS], *cn;
	const char *name;
	uint64_t repeat;
	char label[64];
	size_t i, k;

	diag_init(&dg);
	offline_init(&base);
	if (ynode_load(&doc, path, YNODE_MAX_FILE, &dg) == 0 &&
	    ynode_root(&doc) == NULL)
		ynode_error(&doc, NULL,
		    "empty test file (expected: defaults, "
		    "cases)");
	if (dg.nerrors > 0 ||
	    ynode_map(&doc, ynode_root(&doc), ptest_file_keys, fv,
	        "test file") == -1)
		goto bad;
	for (k = 0; k < CK_NKEYS; k++)
		dv[k] = NULL;
	if (fv[0] != NULL &&
	    (ynode_map(&doc, fv[0], ptest_case_keys, dv, "defaults") == -1 ||
	        ptest_apply(t, &doc, dv, &base) == -1))
		goto bad;
	if (dv[CK_NAME] || dv[CK_EXPECT] || dv[CK_REASON]) {
		ynode_error(&doc, fv[0],
		    "defaults: name, expect and reason belong to cases");
		goto bad;
	}
	for (i = 0; i < ynode_seq_len(fv[1]); i++) {
		cn = ynode_at(&doc, ynode_seq_item(fv[1], i));
		r = base;
		/* Deep-copy what base owns so each case starts fresh. */
		r.target = base.target ? xstrdup(base.target) : NULL;
		for (k = 0; k < base.nheaders; k++) {
			r.headers[k].name = xstrdup(base.headers[k].name);
			r.headers[k].value = xstrdup(base.headers[k].value);
		}
		repeat = 1;
		if (ynode_map(&doc, cn, ptest_case_keys, cv, "case") == -1 ||
		    ptest_apply(t, &doc, cv, &r) == -1 ||
		    ptest_expect(&doc, cv[CK_EXPECT], cv[CK_REASON], &e) ==
		        -1 ||
		    (cv[CK_REPEAT] != NULL &&
		        ynode_uint(&doc, cv[CK_REPEAT], "repeat", 1,
		            PTEST_MAX_REPEAT, &repeat) == -1)) {
			offline_clear(&r);
			goto bad;
		}
		if (r.target == NULL) {
			ynode_error(&doc, cn, "a case needs request");
			offline_clear(&r);
			goto bad;
		}
		snprintf(label, sizeof(label), "case %zu", i + 1);
		name =
		    cv[CK_NAME] ? ynode_str(&doc, cv[CK_NAME], "name") : NULL;
		offline_input(&r, t->set->policy, &in);
		policy_rate_reset(t->set->policy);
		for (k = 0; k < repeat; k++)
			policy_decide(t->set->policy, &in, &dec);
		ptest_cover(t, &dec);
		if (ptest_check(&doc, cn, name ? name : label, &e, &dec))
			t->passed++;
		else
			t->failed++;
		offline_clear(&r);
	}
	goto out;
bad:
	diag_print(&dg, stdout);
	t->nerrors++;
out:
	offline_clear(&base);
	ynode_free(&doc);
	diag_clear(&dg);
}

static size_t
ptest_coverage(const struct ptest *t)
{
	const struct policy *p = t->set->policy;
	size_t i, n = 0;

	for (i = 0; i < policy_ndepartments(p); i++)
		if (!t->cov.dept[i] && ++n)
			printf("unexercised department %s\n",
			    policy_department_at(p, i)->id);
	for (i = 0; i < policy_nresources(p); i++)
		if (!t->cov.res[i] && ++n)
			printf("unexercised resource %s\n",
			    policy_resource_at(p, i)->id);
	for (i = 0; i < policy_ngrants(p); i++)
		if (!t->cov.grant[i] && ++n)
			printf("unexercised grant %s\n",
			    policy_grant_at(p, i)->id);
	/*
	 * audit_unavailable needs a failing audit log, connection_limit a
	 * department's open connections: neither happens offline.
	 */
	for (i = 1; i < POLICY_NREASONS; i++)
		if (!t->cov.reason[i] && i != POLICY_R_AUDIT_UNAVAILABLE &&
		    i != POLICY_R_CONNECTION_LIMIT && ++n)
			printf("unexercised reason %s\n",
			    policy_reason_str((enum policy_reason)i));
	if (n == 0)
		printf("coverage: every department, resource, grant and reason "
		       "code was exercised\n");
	return n;
}

static int
policy_test(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "coverage", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ptest t;
	struct diag dg;
	const char *config = NULL;
	int ch, coverage = 0, i;

	memset(&t, 0, sizeof(t));
	diag_init(&dg);
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'v':
			coverage = 1;
			break;
		case 'h':
			policy_usage(stdout);
			return 0;
		default:
			policy_usage(stderr);
			return 2;
		}
	}
	if (config == NULL || optind == argc) {
		policy_usage(stderr);
		return 2;
	}
	if ((t.set = cfgset_load(config, NULL, time(NULL), &dg)) == NULL) {
		diag_print(&dg, stderr);
		diag_clear(&dg);
		return 2;
	}
	diag_clear(&dg);
	t.cov.dept = xcalloc(policy_ndepartments(t.set->policy) + 1, 1);
	t.cov.res = xcalloc(policy_nresources(t.set->policy) + 1, 1);
	t.cov.grant = xcalloc(policy_ngrants(t.set->policy) + 1, 1);
	for (i = optind; i < argc; i++)
		ptest_file(&t, argv[i]);
	if (coverage)
		ptest_coverage(&t);
	printf("%zu passed, %zu failed\n", t.passed,
	    t.failed + (size_t)t.nerrors);
	free(t.cov.dept);
	free(t.cov.res);
	free(t.cov.grant);
	cfgset_free(t.set);
	return t.failed || t.nerrors ? 1 : 0;
}

/* A decision record's fields that a re-decision needs. */
struct pdiff_rec {
	char request_id[80], method[16], path[POLICY_MAX_PATH + 1];
	char purpose[256], case_id[256], country[4], zone[GEO_MAX_ZONE];
	char department[129], serial[80], ts[40];
	char decision[8], reason[40], grant[129];
	int has_purpose, has_case, has_cert;
};

/* Copy a string member of object obj, or "" when absent or null. */
static int
pdiff_str(const char *line, const struct json_tok *t, int obj, const char *key,
    char *dst, size_t cap)
{
	int i;

	dst[0] = '\0';
	if ((i = json_obj_get(line, t, obj, key)) < 0 ||
	    t[i].type != JSON_STRING)
		return 0;
	if (t[i].len >= cap)
		return -1;
	json_str_get(line, &t[i], dst, cap);
	return 1;
}

static int
pdiff_parse(const char *line, size_t len, struct json_tok *t,
    struct pdiff_rec *r)
{
	struct json_err err;
	char event[16];
	int n, req, cli, subj, ok = 0;

	memset(r, 0, sizeof(*r));
	if ((n = json_parse(line, len, t, PDIFF_MAX_TOKENS, NULL, &err)) < 1 ||
	    t[0].type != JSON_OBJECT)
		return -1;
	if (pdiff_str(line, t, 0, "event", event, sizeof(event)) != 1 ||
	    strcmp(event, "decision") != 0)
		return 0; /* not a decision record */
	req = json_obj_get(line, t, 0, "request");
	cli = json_obj_get(line, t, 0, "client");
	subj = json_obj_get(line, t, 0, "subject");
	if (req < 0 || t[req].type != JSON_OBJECT)
		return -1;
	ok |= pdiff_str(line, t, 0, "request_id", r->request_id,
	    sizeof(r->request_id));
	ok |= pdiff_str(line, t, 0, "ts", r->ts, sizeof(r->ts));
	ok |= pdiff_str(line, t, req, "method", r->method, sizeof(r->method));
	ok |= pdiff_str(line, t, req, "path", r->path, sizeof(r->path));
	r->has_purpose =
	    pdiff_str(line, t, req, "purpose", r->purpose, sizeof(r->purpose));
	r->has_case =
	    pdiff_str(line, t, req, "case", r->case_id, sizeof(r->case_id));
	if (cli >= 0 && t[cli].type == JSON_OBJECT) {
		pdiff_str(line, t, cli, "country", r->country,
		    sizeof(r->country));
		pdiff_str(line, t, cli, "zone", r->zone, sizeof(r->zone));
	}
	if (subj >= 0 && t[subj].type == JSON_OBJECT) {
		r->has_cert = 1;
		pdiff_str(line, t, subj, "department", r->department,
		    sizeof(r->department));
		pdiff_str(line, t, subj, "serial", r->serial,
		    sizeof(r->serial));
	}
	pdiff_str(line, t, 0, "decision", r->decision, sizeof(r->decision));
	pdiff_str(line, t, 0, "reason", r->reason, sizeof(r->reason));
	pdiff_str(line, t, 0, "grant", r->grant, sizeof(r->grant));
	return ok < 0 || r->method[0] == '\0' ? -1 : 1;
}

struct pdiff {
	struct cfgset *set;
	size_t records, changed, skipped, bad;
};

/*
 * A pseudonymised path holds the subject segment as `{name}`, which is not
 * a valid path segment: judge it with a neutral segment instead.
 */
static void
pdiff_unpseudonymise(const char *in, char *out, size_t cap)
{
	const char *seg, *e;
	size_t o = 0, len;

	for (seg = in; *seg && o + 1 < cap; seg = e) {
		for (e = seg + 1; *e && *e != '/'; e++)
			;
		len = (size_t)(e - seg);
		if (len >= 3 && seg[0] == '/' && seg[1] == '{' &&
		    e[-1] == '}') {
			seg = "/0";
			len = 2;
		}
		if (o + len >= cap)
			break;
		memcpy(out + o, seg, len);
		o += len;
	}
	out[o] = '\0';
}

/* Re-decide one record; print it when the decision would change. */
static void
pdiff_record(struct pdiff *pd, const char *file, size_t lineno,
    const struct pdiff_rec *rec)
{
	const struct policy *p = pd->set->policy;
	struct offline_req r;
	struct policy_input in;
	struct policy_decision d;
	char err[256], line[POLICY_MAX_PATH + 32], path[POLICY_MAX_PATH + 1];
	const char *nd, *nr, *ng;
	int nodept, limit;

	/*
	 * Without a department the certificate would have to be re-mapped;
	 * a connection limit is the gateway's, not the policy's, and the
	 * record does not say what the policy would have decided.
	 */
	nodept = rec->has_cert && rec->department[0] == '\0' &&
	    strcmp(rec->reason, "no_client_cert") != 0;
	limit = strcmp(rec->reason,
	            policy_reason_str(POLICY_R_CONNECTION_LIMIT)) == 0;
	if (nodept || limit) {
		pd->skipped++;
		return;
	}
	offline_init(&r);
	pdiff_unpseudonymise(rec->path, path, sizeof(path));
	snprintf(line, sizeof(line), "%s %s", rec->method, path);
	if (offline_set_request(&r, line, err, sizeof(err)) == -1 ||
	    tz_parse_rfc3339(rec->ts, &r.at_sec, &r.at_nsec) == -1) {
		pd->bad++;
		printf("%s:%zu: cannot re-decide: %s\n", file, lineno,
		    rec->ts[0] ? err : "no time");
		offline_clear(&r);
		return;
	}
	if (rec->has_purpose &&
	    offline_set_header(&r, policy_purpose_header(p), rec->purpose, err,
	        sizeof(err)) == -1)
		pd->bad++;
	if (rec->has_case &&
	    offline_set_header(&r, policy_case_header(p), rec->case_id, err,
	        sizeof(err)) == -1)
		pd->bad++;
	snprintf(r.geo.country, sizeof(r.geo.country), "%s", rec->country);
	snprintf(r.geo.zone, sizeof(r.geo.zone), "%s", rec->zone);
	offline_input(&r, p, &in);
	in.dry_run = 1;
	if (rec->department[0] != '\0') {
		r.peer.present = 1;
		peer_put(&r.peer, rec->serial, strlen(rec->serial),
		    &r.peer.serial);
		in.department = policy_department_find(p, rec->department);
	}
	pd->records++;
	if (rec->department[0] != '\0' && in.department == NULL) {
		nd = "deny";
		nr = "unknown_department";
		ng = "";
	} else {
		policy_decide(p, &in, &d);
		nd = d.allow ? "allow" : "deny";
		nr = policy_reason_str(d.reason);
		ng = d.grant ? d.grant->id : "";
	}
	/* Which grant got furthest on a denial is detail, not a change. */
	if (strcmp(nd, rec->decision) != 0 || strcmp(nr, rec->reason) != 0 ||
	    (strcmp(nd, "allow") == 0 && strcmp(ng, rec->grant) != 0)) {
		pd->changed++;
		printf("%s:%zu: %s %s %s %s: %s %s%s%s -> %s %s%s%s\n", file,
		    lineno, rec->request_id,
		    rec->department[0] ? rec->department : "-", rec->method,
		    rec->path, rec->decision, rec->reason,
		    rec->grant[0] ? " " : "", rec->grant, nd, nr,
		    ng[0] ? " " : "", ng);
	}
	offline_clear(&r);
}

static int
pdiff_file(struct pdiff *pd, const char *path, struct json_tok *t)
{
	struct pdiff_rec rec;
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t n;
	FILE *fp;
	int rc;

	if ((fp = fopen(path, "r")) == NULL) {
		fprintf(stderr, "govgate policy diff: %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	while ((n = getline(&line, &cap, fp)) != -1) {
		lineno++;
		if (n > PDIFF_MAX_LINE) {
			pd->bad++;
			printf("%s:%zu: record longer than %d bytes\n", path,
			    lineno, PDIFF_MAX_LINE);
			continue;
		}
		if (n > 0 && line[n - 1] == '\n')
			n--;
		if ((rc = pdiff_parse(line, (size_t)n, t, &rec)) == -1) {
			pd->bad++;
			printf("%s:%zu: not a readable audit record\n", path,
			    lineno);
		} else if (rc == 1)
			pdiff_record(pd, path, lineno, &rec);
	}
	free(line);
	fclose(fp);
	return 0;
}

static int
policy_diff(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "against", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct json_tok *t = NULL;
	struct pdiff pd;
	struct diag dg;
	const char *config = NULL, *against = NULL;
	int ch, i, ret = 2;

	memset(&pd, 0, sizeof(pd));
	diag_init(&dg);
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'a':
			against = optarg;
			break;
		case 'h':
			policy_usage(stdout);
			return 0;
		default:
			policy_usage(stderr);
			return 2;
		}
	}
	if (config == NULL || against == NULL || optind == argc) {
		policy_usage(stderr);
		return 2;
	}
	if ((pd.set = cfgset_load(config, against, time(NULL), &dg)) == NULL) {
		diag_print(&dg, stderr);
		goto out;
	}
	t = xcalloc(PDIFF_MAX_TOKENS, sizeof(*t));
	for (i = optind; i < argc; i++)
		if (pdiff_file(&pd, argv[i], t) == -1)
			goto out;
	printf("%zu decisions re-decided, %zu would change, %zu skipped "
	       "(no department recorded, or a connection limit), %zu "
	       "unreadable\n",
	    pd.records, pd.changed, pd.skipped, pd.bad);
	ret = pd.bad ? 2 : pd.changed ? 1 : 0;
out:
	free(t);
	cfgset_free(pd.set);
	diag_clear(&dg);
	return ret;
}

int
cmd_policy(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0) {
		policy_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "test") == 0)
		return policy_test(argc - 1, argv + 1);
	if (strcmp(argv[1], "diff") == 0)
		return policy_diff(argc - 1, argv + 1);
	fprintf(stderr, "govgate policy: unknown subcommand \"%s\"\n", argv[1]);
	policy_usage(stderr);
	return 2;
}
