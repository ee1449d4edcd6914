/* policy_test.c - the decision pipeline and the loader's checks. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "diag.h"
#include "peer.h"
#include "policy.h"
#include "tap.h"
#include "tz.h"

static const char policy_text[] =
    "version: 1\n"
    "revision: \"t1\"\n"
    "defaults:\n"
    "  countries: [CN, unknown]\n"
    "purposes:\n"
    "  pension: { name: pension check }\n"
    "  audit: { name: audit }\n"
    "departments:\n"
    "  police:\n"
    "    name: Police\n"
    "    match: { subject: { O: \"Police\" }, issuer: { CN: \"Dept CA\" } }\n"
    "    clearance: confidential\n"
    "  hr:\n"
    "    name: HR\n"
    "    match: { subject: { O: \"HR\" } }\n"
    "    clearance: restricted\n"
    "    zones: [hr-net]\n"
    "  civil:\n"
    "    name: Civil\n"
    "    match: { subject: { O: \"Civil\", OU: \"Apps\" } }\n"
    "    clearance: confidential\n"
    "  lab:\n"
    "    name: Lab\n"
    "    match: { san_uri: \"spiffe://gov/lab/*\" }\n"
    "    clearance: public\n"
    "resources:\n"
    "  persons:\n"
    "    name: persons\n"
    "    owner: police\n"
    "    upstream: psb\n"
    "    methods: [GET, POST]\n"
    "    paths: [\"/psb/v1/persons/{id}\"]\n"
    "    subject_id: id\n"
    "    classification: restricted\n"
    "    sharing: conditional\n"
    "    mask: basic\n"
    "  persons-photo:\n"
    "    name: photos\n"
    "    owner: police\n"
    "    upstream: psb\n"
    "    methods: [GET]\n"
    "    paths: [\"/psb/v1/persons/{id}/photo\"]\n"
    "    classification: confidential\n"
    "    sharing: none\n"
    "    legal_basis: law 1\n"
    "  stats:\n"
    "    name: stats\n"
    "    owner: civil\n"
    "    upstream: civ\n"
    "    methods: [GET]\n"
    "    paths: [\"/open/**\"]\n"
    "    classification: public\n"
    "    sharing: open\n"
    "  stats-special:\n"
    "    name: special stats\n"
    "    owner: civil\n"
    "    upstream: civ\n"
    "    methods: [GET]\n"
    "    paths: [\"/open/special/*\"]\n"
    "    classification: internal\n"
    "    sharing: unconditional\n"
    "  marriages:\n"
    "    name: marriages\n"
    "    owner: civil\n"
    "    upstream: civ\n"
    "    methods: [GET]\n"
    "    paths: [\"/civil/v1/marriages/{id}\"]\n"
    "    classification: confidential\n"
    "    sharing: conditional\n"
    "  benefits:\n"
    "    name: benefits\n"
    "    owner: civil\n"
    "    upstream: civ\n"
    "    methods: [GET]\n"
    "    paths: [\"/civil/v1/benefits/{id}\"]\n"
    "    classification: public\n"
    "    sharing: conditional\n"
    "masks:\n"
    "  basic: { rules: [ { field: /id_number, fn: keep, first: 6, last: 4 } ] "
    "}\n"
    "  strict: { rules: [ { field: /name, fn: drop } ] }\n"
    "grants:\n"
    "  - { id: G-1, consumer: hr, resource: persons, purposes: [pension],\n"
    "      approved_by: police, legal_basis: law, expires: 2027-06-30,\n"
    "      hours: \"08:00-20:00\", methods: [GET], require_case: true,\n"
    "      rate: 2/min, mask: strict }\n"
    "  - { id: G-0-old, consumer: hr, resource: persons, purposes: [pension],\n"
    "      approved_by: police, legal_basis: law, expires: 2025-12-31 }\n"
    "  - { id: G-2-future, consumer: civil, resource: persons,\n"
    "      purposes: [audit], approved_by: police, legal_basis: law,\n"
    "      valid_from: 2027-01-01, expires: 2027-12-31 }\n"
    "  - { id: G-3-shadow, consumer: civil, resource: persons,\n"
    "      purposes: [audit], approved_by: police, legal_basis: law,\n"
    "      expires: 2027-12-31, mode: shadow }\n"
    "  - { id: G-4-susp, consumer: police, resource: marriages,\n"
    "      purposes: [audit], approved_by: civil, legal_basis: law,\n"
    "      expires: 2027-12-31 }\n"
    "suspensions:\n"
    "  - { id: S-1, cert_serial: \"0a:bc\", reason: lost laptop }\n"
    "  - { id: S-2, grant: G-4-susp, reason: under review }\n"
    "  - { id: S-3, grant: G-1, cert_serial: \"ff\", reason: one app }\n";

/* 2026-11-25T10:00:00+08:00 */
#define T_DAY 1795572000LL

struct row {
	const char *name;
	const char *org; /* subject O, or NULL: no certificate */
	const char *ou;
	const char *issuer; /* issuer CN */
	const char *serial;
	const char *san;
	int optional;
	const char *country;
	const char *zone;
	const char *req; /* "METHOD /path" */
	const char *purpose, *case_id;
	int64_t at; /* 0: T_DAY */
	int repeat;
	const char *want; /* reason code */
	const char *grant;
	int status;
};

static const struct row rows[] = {
	{ "hr reads a person with a full grant", "HR", NULL, NULL, "1", NULL, 0,
	    "CN", "hr-net", "GET /psb/v1/persons/123", "pension", "C1", 0, 1,
	    "grant", "G-1", 200 },
	{ "malformed path", "HR", NULL, NULL, "1", NULL, 0, "CN", "hr-net",
	    "GET /psb/v1/persons/%2F", NULL, NULL, 0, 1, "bad_request", NULL,
	    400 },
	{ "dot-dot above root", "HR", NULL, NULL, "1", NULL, 0, "CN", "hr-net",
	    "GET /../x", NULL, NULL, 0, 1, "bad_request", NULL, 400 },
	{ "no certificate", NULL, NULL, NULL, NULL, NULL, 0, "CN", NULL,
	    "GET /open/x", NULL, NULL, 0, 1, "no_client_cert", NULL, 403 },
	{ "no certificate, optional listener, open resource", NULL, NULL, NULL,
	    NULL, NULL, 1, "CN", NULL, "GET /open/x/y", NULL, NULL, 0, 1,
	    "open", NULL, 200 },
	{ "no certificate, optional listener, closed resource", NULL, NULL,
	    NULL, NULL, NULL, 1, "CN", NULL, "GET /open/special/a", NULL, NULL,
	    0, 1, "no_client_cert", NULL, 403 },
	{ "unknown organisation", "Other", NULL, NULL, "1", NULL, 0, "CN", NULL,
	    "GET /open/x", NULL, NULL, 0, 1, "unknown_department", NULL, 403 },
	{ "issuer must match too", "Police", NULL, "Other CA", "1", NULL, 0,
	    "CN", NULL, "GET /open/x", NULL, NULL, 0, 1, "unknown_department",
	    NULL, 403 },
	{ "two conditions: O without OU", "Civil", NULL, NULL, "1", NULL, 0,
	    "CN", NULL, "GET /open/x", NULL, NULL, 0, 1, "unknown_department",
	    NULL, 403 },
	{ "SAN prefix department", "Nobody", NULL, NULL, "1",
	    "spiffe://gov/lab/app1", 0, "CN", NULL, "GET /open/x", NULL, NULL,
	    0, 1, "open", NULL, 200 },
	{ "country blocked", "HR", NULL, NULL, "1", NULL, 0, "US", "hr-net",
	    "GET /open/x", NULL, NULL, 0, 1, "country_blocked", NULL, 403 },
	{ "unknown country admitted", "Police", NULL, "Dept CA", "1", NULL, 0,
	    NULL, NULL, "GET /open/x", NULL, NULL, 0, 1, "open", NULL, 200 },
	{ "zone mismatch", "HR", NULL, NULL, "1", NULL, 0, "CN", "other-net",
	    "GET /open/x", NULL, NULL, 0, 1, "zone_mismatch", NULL, 403 },
	{ "no zone at all", "HR", NULL, NULL, "1", NULL, 0, "CN", NULL,
	    "GET /open/x", NULL, NULL, 0, 1, "zone_mismatch", NULL, 403 },
	{ "no resource", "HR", NULL, NULL, "1", NULL, 0, "CN", "hr-net",
	    "GET /nothing/here", NULL, NULL, 0, 1, "no_resource", NULL, 403 },
	{ "wrong method is no resource", "HR", NULL, NULL, "1", NULL, 0, "CN",
	    "hr-net", "DELETE /psb/v1/persons/1", NULL, NULL, 0, 1,
	    "no_resource", NULL, 403 },
	{ "empty wildcard segment", "HR", NULL, NULL, "1", NULL, 0, "CN",
	    "hr-net", "GET /psb/v1/persons/", NULL, NULL, 0, 1, "no_resource",
	    NULL, 403 },
	{ "suspended certificate serial", "HR", NULL, NULL, "ABC", NULL, 0,
	    "CN", "hr-net", "GET /open/x", NULL, NULL, 0, 1, "suspended", NULL,
	    403 },
	{ "owner reads its own", "Police", NULL, "Dept CA", "1", NULL, 0, "CN",
	    NULL, "GET /psb/v1/persons/1/photo", NULL, NULL, 0, 1, "owner",
	    NULL, 200 },
	{ "not shared", "HR", NULL, NULL, "1", NULL, 0, "CN", "hr-net",
	    "GET /psb/v1/persons/1/photo", NULL, NULL, 0, 1, "not_shared", NULL,
	    403 },
	{ "more literal segments win over **", "HR", NULL, NULL, "1", NULL, 0,
	    "CN", "hr-net", "GET /open/special/a", NULL, NULL, 0, 1,
	    "unconditional", NULL, 200 },
	{ "insufficient clearance", "Nobody", NULL, NULL, "1",
	    "spiffe://gov/lab/x", 0, "CN", NULL, "GET /psb/v1/persons/1",
	    "audit", NULL, 0, 1, "insufficient_clearance", NULL, 403 },
	{ "unconditional needs clearance", "Nobody", NULL, NULL, "1",
	    "spiffe://gov/lab/x", 0, "CN", NULL, "GET /open/special/a", NULL,
	    NULL, 0, 1, "insufficient_clearance", NULL, 403 },
	{ "suspended grant", "Police", NULL, "Dept CA", "1", NULL, 0, "CN",
	    NULL, "GET /civil/v1/marriages/1", "audit", NULL, 0, 1, "suspended",
	    NULL, 403 },
	{ "grant suspended for one certificate: the expired one got further",
	    "HR", NULL, NULL, "FF", NULL, 0, "CN", "hr-net",
	    "GET /psb/v1/persons/1", "pension", "C1", 0, 1, "grant_expired",
	    NULL, 403 },
	{ "no grant", "HR", NULL, NULL, "1", NULL, 0, "CN", "hr-net",
	    "GET /civil/v1/benefits/1", "audit", NULL, 0, 1, "no_grant", NULL,
	    403 },
	{ "outside hours (22:00 local)", "HR", NULL, NULL, "1", NULL, 0, "CN",
	    "hr-net", "GET /psb/v1/persons/1", "pension", "C1",
	    T_DAY + 12 * 3600, 1, "outside_hours", NULL, 403 },
	{ "method not granted", "HR", NULL, NULL, "1", NULL, 0, "CN", "hr-net",
	    "POST /psb/v1/persons/1", "pension", "C1", 0, 1,
	    "method_not_granted", NULL, 403 },
	{ "purpose required", "HR", NULL, NULL, "1", NULL, 0, "CN", "hr-net",
	    "GET /psb/v1/persons/1", NULL, "C1", 0, 1, "purpose_required", NULL,
	    403 },
	{ "purpose mismatch", "HR", NULL, NULL, "1", NULL, 0, "CN", "hr-net",
	    "GET /psb/v1/persons/1", "audit", "C1", 0, 1, "purpose_mismatch",
	    NULL, 403 },
	{ "case required", "HR", NULL, NULL, "1", NULL, 0, "CN", "hr-net",
	    "GET /psb/v1/persons/1", "pension", NULL, 0, 1, "case_required",
	    NULL, 403 },
	{ "rate limited on the third", "HR", NULL, NULL, "1", NULL, 0, "CN",
	    "hr-net", "GET /psb/v1/persons/1", "pension", "C1", 0, 3,
	    "rate_limited", NULL, 429 },
	{ "grant expired (all others fail earlier)", "HR", NULL, NULL, "1",
	    NULL, 0, "CN", "hr-net", "GET /psb/v1/persons/1", "pension", "C1",
	    1830297600LL /* 2028-01-01 */, 1, "grant_expired", NULL, 403 },
	{ "grant not yet valid; shadow is not a grant", "Civil", "Apps", NULL,
	    "1", NULL, 0, "CN", NULL, "GET /psb/v1/persons/1", "audit", NULL, 0,
	    1, "grant_not_yet_valid", NULL, 403 },
	{ "dot segments normalise before matching", "HR", NULL, NULL, "1", NULL,
	    0, "CN", "hr-net", "GET /psb/v1/x/../persons/7", "pension", "C9", 0,
	    1, "grant", "G-1", 200 },
};

static void
row_peer(const struct row *r, struct peer *id)
{
	memset(id, 0, sizeof(*id));
	if (r->org == NULL)
		return;
	id->present = 1;
	peer_put(id, r->org, strlen(r->org), &id->subject.val[PEER_ATTR_O]);
	id->subject.state[PEER_ATTR_O] = PEER_ATTR_OK;
	if (r->ou) {
		peer_put(id, r->ou, strlen(r->ou),
		    &id->subject.val[PEER_ATTR_OU]);
		id->subject.state[PEER_ATTR_OU] = PEER_ATTR_OK;
	}
	if (r->issuer) {
		peer_put(id, r->issuer, strlen(r->issuer),
		    &id->issuer.val[PEER_ATTR_CN]);
		id->issuer.state[PEER_ATTR_CN] = PEER_ATTR_OK;
	}
	if (r->serial)
		peer_put(id, r->serial, strlen(r->serial), &id->serial);
	if (r->san) {
		peer_put(id, r->san, strlen(r->san), &id->san_uri[0]);
		id->n_san_uri = 1;
	}
}

static void
run_row(struct policy *p, const struct row *r)
{
	struct policy_input in;
	struct policy_decision d;
	struct peer id;
	char norm[256];
	const char *sp = strchr(r->req, ' ');
	int i;

	row_peer(r, &id);
	memset(&in, 0, sizeof(in));
	in.method = r->req;
	in.method_len = (size_t)(sp - r->req);
	in.path = sp + 1;
	in.path_len = strlen(sp + 1);
	in.peer = &id;
	in.cert_optional = r->optional;
	in.country = r->country;
	in.zone = r->zone;
	in.purpose = r->purpose;
	in.purpose_len = r->purpose ? strlen(r->purpose) : 0;
	in.case_id = r->case_id;
	in.case_len = r->case_id ? strlen(r->case_id) : 0;
	in.now_sec = r->at ? r->at : T_DAY;
	in.norm = norm;
	in.normsz = sizeof(norm);
	policy_rate_reset(p);
	for (i = 0; i < r->repeat; i++)
		policy_decide(p, &in, &d);
	tap_streq(policy_reason_str(d.reason), r->want, "%s: reason", r->name);
	if (strcmp(r->want, "grant_not_yet_valid") == 0)
		tap_ok(d.shadow != NULL &&
		        strcmp(d.shadow->id, "G-3-shadow") == 0 &&
		        d.shadow_reason == POLICY_R_GRANT,
		    "%s: the shadow grant would have allowed", r->name);
	if (strcmp(r->want, "grant") == 0)
		tap_ok(d.mask != NULL && strcmp(d.mask->id, "strict") == 0 &&
		        d.subject_len > 0,
		    "%s: grant's mask and subject segment", r->name);
	tap_ok(d.status == r->status, "%s: status %d", r->name, d.status);
	if (r->grant)
		tap_streq(d.grant ? d.grant->id : "(none)", r->grant,
		    "%s: grant", r->name);
}

/*
 * What serve does for limits.max_connections_per_department: map the
 * certificate once, judge without taking rate tokens, then refuse.
 */
static void
connection_limit_checks(struct policy *p)
{
	static const struct row hr = { "hr", "HR", NULL, NULL, "1", NULL, 0,
		"CN", "hr-net", "GET /psb/v1/persons/1", "pension", "C1", 0, 1,
		"grant", "G-1", 200 };
	static const struct row other = { "other", "Other", NULL, NULL, "1",
		NULL, 0, "CN", NULL, "GET /open/x", NULL, NULL, 0, 1,
		"unknown_department", NULL, 403 };
	const struct policy_department *dept;
	enum policy_reason r = POLICY_R_NONE;
	struct policy_input in;
	struct policy_decision d;
	struct peer id;
	char norm[256];
	int i, all = 1;

	tap_streq(policy_reason_str(POLICY_R_CONNECTION_LIMIT),
	    "connection_limit", "connection_limit: its name");
	tap_ok(policy_reason_parse("connection_limit", &r) == 0 &&
	        r == POLICY_R_CONNECTION_LIMIT &&
	        policy_reason_status(r) == 429,
	    "connection_limit: parses back, status 429");

	row_peer(&other, &id);
	tap_ok(policy_department_match(p, &id) == NULL,
	    "department match: none for an unknown organisation");
	memset(&id, 0, sizeof(id));
	tap_ok(policy_department_match(p, &id) == NULL,
	    "department match: none without a certificate");
	row_peer(&hr, &id);
	dept = policy_department_match(p, &id);
	tap_ok(dept != NULL && strcmp(dept->id, "hr") == 0,
	    "department match: HR certificate is hr");

	memset(&in, 0, sizeof(in));
	in.method = "GET";
	in.method_len = 3;
	in.path = "/psb/v1/persons/1";
	in.path_len = strlen(in.path);
	in.peer = &id;
	in.country = "CN";
	in.zone = "hr-net";
	in.purpose = "pension";
	in.purpose_len = strlen(in.purpose);
	in.case_id = "C1";
	in.case_len = 2;
	in.now_sec = T_DAY;
	in.norm = norm;
	in.normsz = sizeof(norm);
	in.department = dept;
	in.dry_run = 1;
	policy_rate_reset(p);
	/* The grant allows two at once: dry runs take none of them. */
	for (i = 0; i < 5; i++) {
		policy_decide(p, &in, &d);
		all &= d.allow && d.reason == POLICY_R_GRANT;
	}
	tap_ok(all, "connection_limit: judged requests take no rate token");
	policy_refuse(&d, POLICY_R_CONNECTION_LIMIT);
	tap_ok(!d.allow && d.reason == POLICY_R_CONNECTION_LIMIT &&
	        d.status == 429 && d.grant == NULL && d.mask == NULL &&
	        d.shadow == NULL && d.ncandidates == 0,
	    "connection_limit: refused, no grant, mask or shadow left");
	tap_ok(d.department == dept && d.resource != NULL &&
	        strcmp(d.resource->id, "persons") == 0 && d.norm_len > 0 &&
	        d.subject_len > 0,
	    "connection_limit: department, resource and path kept");
	in.dry_run = 0;
	policy_decide(p, &in, &d);
	policy_decide(p, &in, &d);
	tap_ok(d.allow, "connection_limit: the rate is still whole after");
}

static char *
write_tmp(const char *text)
{
	static char path[64];
	FILE *fp;
	int fd;

	snprintf(path, sizeof(path), "/tmp/policy_test.XXXXXX");
	if ((fd = mkstemp(path)) == -1 || (fp = fdopen(fd, "w")) == NULL)
		abort();
	fputs(text, fp);
	fclose(fp);
	return path;
}

/* Policies that must be refused, with a part of the first error. */
static const struct {
	const char *name;
	const char *text;
	const char *want;
} bad[] = {
	{ "unknown root key", "version: 1\nfoo: 1\n", "unknown key \"foo\"" },
	{ "bad version", "version: 2\n", "unsupported policy version" },
	{ "no version", "revision: x\n", "missing required key \"version\"" },
	{ "unknown owner",
	    "version: 1\nresources:\n  r: { name: r, owner: x, upstream: u,"
	    " methods: [GET], paths: [/a], classification: public, sharing:"
	    " open }\n",
	    "owner: unknown department \"x\"" },
	{ "bad level",
	    "version: 1\ndepartments:\n  d: { name: d, match: { subject: {"
	    " O: d } }, clearance: secret }\n",
	    "unknown level \"secret\"" },
	{ "none without legal basis",
	    "version: 1\ndepartments:\n  d: { name: d, match: { subject: {"
	    " O: d } }, clearance: public }\nresources:\n  r: { name: r, "
	    "owner: d, upstream: u, methods: [GET], paths: [/a], "
	    "classification: public, sharing: none }\n",
	    "sharing: none needs a non-empty legal_basis" },
	{ "approved by someone else",
	    "version: 1\npurposes: { p: { name: p } }\ndepartments:\n  d: { "
	    "name: d, match: { subject: { O: d } }, clearance: public }\n  e: "
	    "{ name: e, match: { subject: { O: e } }, clearance: public }\n"
	    "resources:\n  r: { name: r, owner: d, upstream: u, methods: "
	    "[GET], paths: [/a], classification: public, sharing: "
	    "conditional }\ngrants:\n  - { id: g, consumer: e, resource: r, "
	    "purposes: [p], approved_by: e, legal_basis: x, expires: "
	    "2030-01-01 }\n",
	    "approved_by: \"e\" does not own resource \"r\"" },
	{ "undeclared purpose",
	    "version: 1\ndepartments:\n  d: { name: d, match: { subject: { O: "
	    "d } }, clearance: public }\n  e: { name: e, match: { subject: { "
	    "O: e } }, clearance: public }\nresources:\n  r: { name: r, owner: "
	    "d, upstream: u, methods: [GET], paths: [/a], classification: "
	    "public, sharing: conditional }\ngrants:\n  - { id: g, consumer: "
	    "e, resource: r, purposes: [zz], approved_by: d, legal_basis: x, "
	    "expires: 2030-01-01 }\n",
	    "undeclared purpose \"zz\"" },
	{ "equally specific overlap",
	    "version: 1\ndepartments:\n  d: { name: d, match: { subject: { O: "
	    "d } }, clearance: public }\nresources:\n  r: { name: r, owner: d, "
	    "upstream: u, methods: [GET], paths: [\"/a/{x}/b\"], "
	    "classification: public, sharing: open }\n  s: { name: s, owner: "
	    "d, upstream: u, methods: [GET, POST], paths: [\"/a/*/b\"], "
	    "classification: public, sharing: open }\n",
	    "are equally specific" },
	{ "two departments can match one certificate",
	    "version: 1\ndepartments:\n  d: { name: d, match: { subject: { O: "
	    "x } }, clearance: public }\n  e: { name: e, match: { subject: { "
	    "O: x, OU: y } }, clearance: public }\n",
	    "can both match one certificate" },
	{ "duplicate key",
	    "version: 1\ndepartments:\n  d: { name: d, name: e, match: { "
	    "subject: { O: x } }, clearance: public }\n",
	    "duplicate key \"name\"" },
	{ "bad pattern",
	    "version: 1\ndepartments:\n  d: { name: d, match: { "
	    "subject: { O: d } }, clearance: public }\nresources:\n"
	    "  r: { name: r, owner: d, upstream: u, methods: [GET],"
	    " paths: [\"/a/**/b\"], classification: public, "
	    "sharing: open }\n",
	    "is not a valid pattern" },
	{ "bad rate",
	    "version: 1\npurposes: { p: { name: p } }\ndepartments:\n  d: { "
	    "name: d, match: { subject: { O: d } }, clearance: public }\n  e: "
	    "{ name: e, match: { subject: { O: e } }, clearance: public }\n"
	    "resources:\n  r: { name: r, owner: d, upstream: u, methods: "
	    "[GET], paths: [/a], classification: public, sharing: "
	    "conditional }\ngrants:\n  - { id: g, consumer: e, resource: r, "
	    "purposes: [p], approved_by: d, legal_basis: x, expires: "
	    "2030-01-01, rate: 5/day }\n",
	    "is not a rate" },
};

int
main(void)
{
	struct policy_env env;
	struct tz *zone;
	struct policy *p;
	struct diag dg;
	char err[128];
	size_t i;
	char *path;

	memset(&env, 0, sizeof(env));
	if ((zone = tz_load("Asia/Shanghai", err, sizeof(err))) == NULL) {
		printf("1..0 # SKIP no tzdata: %s\n", err);
		return 0;
	}
	env.tz = zone;
	env.now = T_DAY;
	env.have_country_db = env.have_zone_db = 1;
	diag_init(&dg);
	path = write_tmp(policy_text);
	p = policy_load(path, &env, &dg);
	unlink(path);
	if (!tap_ok(p != NULL, "example policy loads")) {
		diag_print(&dg, stdout);
		tap_done();
		tap_exit();
	}
	diag_clear(&dg);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		run_row(p, &rows[i]);
	connection_limit_checks(p);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct policy *q;

		diag_init(&dg);
		path = write_tmp(bad[i].text);
		q = policy_load(path, &env, &dg);
		unlink(path);
		tap_ok(q == NULL && diag_first_error(&dg) != NULL &&
		        strstr(diag_first_error(&dg), bad[i].want) != NULL,
		    "refused: %s", bad[i].name);
		if (diag_first_error(&dg) &&
		    !strstr(diag_first_error(&dg), bad[i].want))
			tap_diag("first error: %s", diag_first_error(&dg));
		policy_unref(q);
		diag_clear(&dg);
	}
	policy_unref(p);
	tz_free(zone);
	tap_done();
	tap_exit();
}
