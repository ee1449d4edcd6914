/* metrics_test.c - counting, summing shards, reloads, escaping, rendering. */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/x509_vfy.h>

#include "compat.h"
#include "conf.h"
#include "diag.h"
#include "connlim.h"
#include "metrics.h"
#include "policy.h"
#include "tap.h"
#include "tz.h"

/*
 * Two generations of one deployment. The second policy drops caizheng
 * and puts two departments before renshe, so renshe's index changes
 * whether departments are indexed in file or in id order.
 */
static const char policy1[] = "version: 1\n"
                              "revision: \"m1\"\n"
                              "departments:\n"
                              "  renshe:\n"
                              "    name: 南寧市人力資源和社會保障局\n"
                              "    match: { subject: { O: \"HR\" } }\n"
                              "    clearance: confidential\n"
                              "  caizheng:\n"
                              "    name: \"南宁市\\\"财政\\\"局\\\\二\\n\"\n"
                              "    match: { subject: { O: \"Finance\" } }\n"
                              "    clearance: public\n"
                              "resources:\n"
                              "  hr-records:\n"
                              "    name: 人事檔案\n"
                              "    owner: renshe\n"
                              "    upstream: hr-api\n"
                              "    methods: [GET]\n"
                              "    paths: [\"/hr/**\"]\n"
                              "    classification: confidential\n"
                              "    sharing: unconditional\n"
                              "  budget:\n"
                              "    name: budget\n"
                              "    owner: caizheng\n"
                              "    upstream: fin-api\n"
                              "    methods: [GET]\n"
                              "    paths: [\"/budget/**\"]\n"
                              "    classification: public\n"
                              "    sharing: open\n";

static const char policy2[] = "version: 1\n"
                              "revision: \"m2\"\n"
                              "departments:\n"
                              "  abc:\n"
                              "    name: abc\n"
                              "    match: { subject: { O: \"A\" } }\n"
                              "    clearance: public\n"
                              "  bcd:\n"
                              "    name: bcd\n"
                              "    match: { subject: { O: \"B\" } }\n"
                              "    clearance: public\n"
                              "  renshe:\n"
                              "    name: 南寧市人力資源和社會保障局\n"
                              "    match: { subject: { O: \"HR\" } }\n"
                              "    clearance: confidential\n"
                              "resources:\n"
                              "  hr-records:\n"
                              "    name: 人事檔案\n"
                              "    owner: renshe\n"
                              "    upstream: hr-api\n"
                              "    methods: [GET]\n"
                              "    paths: [\"/hr/**\"]\n"
                              "    classification: confidential\n"
                              "    sharing: unconditional\n";

struct fixture {
	struct tz *tz;
	struct policy *p1, *p2;
	struct conf c;
	struct conf_upstream ups[2];
	struct conf_listener lis[2];
};

static struct policy *
load_policy(const struct fixture *fx, const char *text)
{
	struct policy_env env;
	struct policy *p;
	struct diag dg;
	char path[64];
	FILE *fp;
	int fd;

	snprintf(path, sizeof(path), "/tmp/metrics_test.XXXXXX");
	if ((fd = mkstemp(path)) == -1 || (fp = fdopen(fd, "w")) == NULL)
		abort();
	fputs(text, fp);
	fclose(fp);
	memset(&env, 0, sizeof(env));
	env.tz = fx->tz;
	diag_init(&dg);
	p = policy_load(path, &env, &dg);
	unlink(path);
	if (p == NULL)
		diag_print(&dg, stdout);
	diag_clear(&dg);
	return p;
}

/* Does text hold line as one whole line? */
static int
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *s;

	for (s = text; (s = strstr(s, line)) != NULL; s++)
		if ((s == text || s[-1] == '\n') && s[n] == '\n')
			return 1;
	return 0;
}

static int
check_line(const char *text, const char *line, const char *name)
{
	if (tap_ok(text != NULL && has_line(text, line), "%s", name))
		return 1;
	tap_diag("missing line: %s", line);
	return 0;
}

/* Sum the values of every sample line starting with prefix. */
static uint64_t
sum_lines(const char *text, const char *prefix)
{
	const char *s, *sp;
	uint64_t sum = 0;

	for (s = text; s != NULL && *s != '\0';
	     s = strchr(s, '\n'), s = s ? s + 1 : s) {
		if (strncmp(s, prefix, strlen(prefix)) != 0)
			continue;
		if ((sp = strchr(s, '\n')) == NULL)
			break;
		while (sp > s && sp[-1] != ' ')
			sp--;
		sum += strtoull(sp, NULL, 10);
	}
	return sum;
}

static size_t
count_lines(const char *text, const char *prefix)
{
	const char *s;
	size_t n = 0;

	for (s = text; s != NULL && *s != '\0';
	     s = strchr(s, '\n'), s = s ? s + 1 : s)
		if (strncmp(s, prefix, strlen(prefix)) == 0)
			n++;
	return n;
}

/*
 * A strict reading of exposition format 0.0.4: comments are HELP or TYPE
 * of a govgate_ family, TYPE comes before the family's samples and once,
 * samples are name{label="value",...} value, values quote only escaped
 * backslash, quote and newline, and the text ends with a newline.
 * Returns NULL, or what is wrong.
 */
static const char *check_format_line(const char *s, const char *e,
    char typed[][96], size_t *ntyped);

static const char *
check_format(const char *text)
{
	char typed[256][96];
	const char *s, *e, *why;
	size_t ntyped = 0;

	if (text == NULL || *text == '\0' || text[strlen(text) - 1] != '\n')
		return "does not end with a newline";
	for (s = text; *s != '\0'; s = e + 1) {
		e = strchr(s, '\n');
		if ((why = check_format_line(s, e, typed, &ntyped)) != NULL) {
			tap_diag("%.*s", (int)(e - s), s);
			return why;
		}
	}
	return NULL;
}

/* One line of check_format; typed holds the families seen so far. */
static const char *
check_format_line(const char *s, const char *e, char typed[][96],
    size_t *ntyped)
{
	char name[96];
	const char *p;
	size_t i, n;
	int found;

	if (strncmp(s, "# HELP govgate_", 15) == 0)
		return NULL;
	if (strncmp(s, "# TYPE govgate_", 15) == 0) {
		p = strchr(s + 7, ' ');
		if (p == NULL || p > e || (size_t)(p - s - 7) >= 96 ||
		    *ntyped == 256)
			return "bad TYPE line";
		n = (size_t)(p - s - 7);
		memcpy(typed[*ntyped], s + 7, n);
		typed[*ntyped][n] = '\0';
		for (i = 0; i < *ntyped; i++)
			if (strcmp(typed[i], typed[*ntyped]) == 0)
				return "family typed twice";
		(*ntyped)++;
		if (strncmp(p, " counter\n", 9) != 0 &&
		    strncmp(p, " gauge\n", 7) != 0 &&
		    strncmp(p, " histogram\n", 11) != 0)
			return "unknown type";
		return NULL;
	}
	if (*s == '#')
		return "other comment";
	for (p = s; p < e &&
	     (*p == '_' || *p == ':' || (*p >= 'a' && *p <= 'z') ||
	         (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'));
	     p++)
		;
	if (p == s || (size_t)(p - s) >= sizeof(name))
		return "bad metric name";
	memcpy(name, s, (size_t)(p - s));
	name[p - s] = '\0';
	found = 0;
	for (i = 0; i < *ntyped && !found; i++) {
		n = strlen(typed[i]);
		found = strcmp(name, typed[i]) == 0 ||
		    (strncmp(name, typed[i], n) == 0 &&
		        (strcmp(name + n, "_bucket") == 0 ||
		            strcmp(name + n, "_sum") == 0 ||
		            strcmp(name + n, "_count") == 0));
	}
	if (!found)
		return "sample before its TYPE";
	if (*p == '{') {
		for (p++;;) {
			while (p < e &&
			    ((*p >= 'a' && *p <= 'z') || *p == '_' ||
			        (*p >= '0' && *p <= '9')))
				p++;
			if (p + 1 >= e || p[0] != '=' || p[1] != '"')
				return "bad label";
			for (p += 2; p < e && *p != '"'; p++) {
				if (*p != '\\')
					continue;
				if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
					return "bad escape";
				p++;
			}
			if (p >= e)
				return "unterminated label value";
			p++;
			if (*p == '}') {
				p++;
				break;
			}
			if (*p != ',')
				return "bad label separator";
			p++;
		}
	}
	if (*p != ' ' || p + 1 >= e)
		return "no value";
	for (p++; p < e; p++)
		if (!((*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
			return "bad value";
	return NULL;
}

static char *
render(struct metrics *m, const struct metrics_state *st)
{
	return metrics_render(m, st, NULL);
}

static const struct {
	const char *name;
	const char *in;
	size_t len; /* 0: strlen */
	const char *want;
} escapes[] = {
	{ "plain id", "renshe", 0, "renshe" },
	{ "empty", "", 0, "" },
	{ "double quote", "a\"b", 0, "a\\\"b" },
	{ "backslash", "a\\b", 0, "a\\\\b" },
	{ "newline", "a\nb", 0, "a\\nb" },
	{ "all three", "\\\"\n", 0, "\\\\\\\"\\n" },
	{ "carriage return and tab pass", "a\r\tb", 0, "a\r\tb" },
	{ "Chinese department name", "南寧市公安局", 0, "南寧市公安局" },
	{ "Chinese with quotes", "南宁市\"财政\"局", 0,
	    "南宁市\\\"财政\\\"局" },
	{ "four-byte character", "\xf0\x9f\x98\x80", 0, "\xf0\x9f\x98\x80" },
	{ "stray continuation byte", "a\x80z", 0, "a\xef\xbf\xbdz" },
	{ "invalid lead byte", "\xff", 0, "\xef\xbf\xbd" },
	{ "overlong slash", "\xc0\xaf", 0, "\xef\xbf\xbd\xef\xbf\xbd" },
	{ "surrogate", "\xed\xa0\x80", 0,
	    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
	{ "above U+10FFFF", "\xf4\x90\x80\x80", 0,
	    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
	{ "truncated sequence", "\xe5\x8d", 0, "\xef\xbf\xbd\xef\xbf\xbd" },
	{ "embedded NUL with length", "a\0b", 3, "a\0b" },
};

static void
test_escape(void)
{
	const char *got;
	char out[128];
	size_t i, len;
	int n;

	for (i = 0; i < nitems(escapes); i++) {
		len = escapes[i].len != 0 ? escapes[i].len
		                          : strlen(escapes[i].in);
		n = metrics_label_escape(escapes[i].in, len, out, sizeof(out));
		if (escapes[i].len != 0)
			tap_ok(n == 3 && memcmp(out, escapes[i].want, 3) == 0,
			    "escape: %s", escapes[i].name);
		else {
			got = n >= 0 ? out : NULL;
			tap_streq(got, escapes[i].want, "escape: %s",
			    escapes[i].name);
		}
	}
	tap_ok(metrics_label_escape("a\"b", 3, out, 4) == -1,
	    "escape: refuses a buffer one byte short");
	tap_ok(metrics_label_escape("a\"b", 3, out, 5) == 4,
	    "escape: fits exactly with its NUL");
}

/* Value in microseconds and the first bucket (le) that counts it. */
static const struct {
	int64_t us;
	const char *le;
	const char *below; /* the bucket before, which must stay 0; or NULL */
} edges[] = {
	{ -7, "0.0005", NULL },
	{ 0, "0.0005", NULL },
	{ 500, "0.0005", NULL },
	{ 501, "0.001", "0.0005" },
	{ 1000, "0.001", "0.0005" },
	{ 1001, "0.0025", "0.001" },
	{ 250000, "0.25", "0.1" },
	{ 250001, "0.5", "0.25" },
	{ 1000000, "1", "0.5" },
	{ 10000000, "10", "5" },
	{ 10000001, "+Inf", "10" },
};

static void
test_buckets(void)
{
	struct metrics *m;
	char err[128], line[128], sum[64];
	char *t;
	size_t i;

	for (i = 0; i < nitems(edges); i++) {
		if ((m = metrics_new(1, err, sizeof(err))) == NULL)
			abort();
		metrics_request_time(metrics_shard_at(m, 0), edges[i].us);
		t = render(m, NULL);
		snprintf(line, sizeof(line),
		    "govgate_request_duration_seconds_bucket{le=\"%s\"} 1",
		    edges[i].le);
		if (edges[i].below != NULL) {
			snprintf(sum, sizeof(sum),
			    "govgate_request_duration_seconds_bucket{le=\"%s\"}"
			    " "
			    "0",
			    edges[i].below);
			tap_ok(t != NULL && has_line(t, line) &&
			        has_line(t, sum),
			    "bucket edge: %lld us counts in le=%s, not le=%s",
			    (long long)edges[i].us, edges[i].le,
			    edges[i].below);
		} else
			tap_ok(t != NULL && has_line(t, line),
			    "bucket edge: %lld us counts in le=%s",
			    (long long)edges[i].us, edges[i].le);
		snprintf(sum, sizeof(sum),
		    "govgate_request_duration_seconds_sum %lld.%06lld",
		    (long long)(edges[i].us < 0 ? 0 : edges[i].us / 1000000),
		    (long long)(edges[i].us < 0 ? 0 : edges[i].us % 1000000));
		if (!has_line(t, sum))
			tap_diag("no line %s", sum);
		free(t);
		metrics_free(m);
	}
}

static void
setup_conf(struct fixture *fx)
{
	static char up0[] = "hr-api", up1[] = "fin-api", l0[] = "egov",
	            l1[] = "egov \"v6\"";

	memset(&fx->c, 0, sizeof(fx->c));
	memset(fx->ups, 0, sizeof(fx->ups));
	memset(fx->lis, 0, sizeof(fx->lis));
	fx->ups[0].name = up0;
	fx->ups[1].name = up1;
	fx->lis[0].name = l0;
	fx->lis[1].name = l1;
	fx->c.upstreams = fx->ups;
	fx->c.nupstreams = 2;
	fx->c.listeners = fx->lis;
	fx->c.nlisteners = 2;
}

static void
test_counting(struct fixture *fx)
{
	const struct policy_department *renshe, *cai;
	const struct policy_resource *hr, *budget, *r;
	struct metrics_state st;
	struct metrics_gen *g;
	struct metrics *m;
	struct metrics_shard *s0, *s2;
	char err[128];
	const char *bad;
	char *t;
	size_t i;

	renshe = policy_department_find(fx->p1, "renshe");
	cai = policy_department_find(fx->p1, "caizheng");
	hr = budget = NULL;
	for (i = 0; i < policy_nresources(fx->p1); i++) {
		r = policy_resource_at(fx->p1, i);
		if (strcmp(r->id, "hr-records") == 0)
			hr = r;
		else if (strcmp(r->id, "budget") == 0)
			budget = r;
	}
	if (renshe == NULL || cai == NULL || hr == NULL || budget == NULL)
		abort();

	tap_ok(metrics_new(0, err, sizeof(err)) == NULL &&
	        strstr(err, "shards") != NULL,
	    "a registry without shards is refused");
	if ((m = metrics_new(3, err, sizeof(err))) == NULL)
		abort();
	tap_ok(metrics_nshards(m) == 3 && metrics_shard_at(m, 3) == NULL,
	    "three shards, and no fourth");
	g = metrics_gen_new(m, fx->p1, &fx->c, err, sizeof(err));
	tap_ok(g != NULL, "generation of policy m1");
	metrics_set_policy(m, g);
	s0 = metrics_shard_at(m, 0);
	s2 = metrics_shard_at(m, 2);

	metrics_request(s0, g, renshe, hr, 1, POLICY_R_OWNER);
	metrics_request(s0, g, renshe, hr, 1, POLICY_R_OWNER);
	metrics_request(s2, g, renshe, hr, 1, POLICY_R_OWNER);
	metrics_request(s2, g, cai, hr, 0, POLICY_R_INSUFFICIENT_CLEARANCE);
	metrics_request(s0, g, NULL, NULL, 0, POLICY_R_BAD_REQUEST);
	metrics_request(s2, g, cai, NULL, 0, POLICY_R_NO_RESOURCE);
	metrics_request(s0, g, renshe, hr, 0, POLICY_R_AUDIT_UNAVAILABLE);
	metrics_request(s0, NULL, renshe, hr, 0, POLICY_R_NO_CLIENT_CERT);
	metrics_request(s0, g, cai, budget, 1, (enum policy_reason)999);
	metrics_response(s0, 200);
	metrics_response(s2, 200);
	metrics_response(s2, 403);
	metrics_response(s2, 99);
	metrics_response(s2, 600);
	metrics_upstream_error(s0, g, 0, METRICS_UP_CONNECT);
	metrics_upstream_error(s2, g, 0, METRICS_UP_CONNECT);
	metrics_upstream_error(s2, g, 1, METRICS_UP_TIMEOUT);
	metrics_upstream_error(s2, g, 7, METRICS_UP_RESET);
	metrics_tls_failure(s0, g, 1, METRICS_TLS_CERT_REVOKED);
	metrics_tls_failure(s0, g, 0, (enum metrics_tls_fail)77);
	metrics_conn_opened(s0);
	metrics_conn_opened(s0);
	metrics_conn_opened(s2);
	metrics_conn_closed(s0);
	metrics_upstream_time(s2, 1500);
	metrics_audit_lag(m, 2000);
	metrics_audit_lag(m, 3000000);
	metrics_count_reload(m, 1);
	metrics_count_reload(m, 0);
	metrics_count_reload(m, 0);
	tap_ok(metrics_cert_set(m, "egov", METRICS_CERT_SERVER, 1900000000) ==
	            0 &&
	        metrics_cert_set(m, "egov", METRICS_CERT_CLIENT_CA,
	            1800000000) == 0 &&
	        metrics_cert_set(m, "egov", METRICS_CERT_CRL, 1700000000) ==
	            0 &&
	        metrics_cert_set(m, "egov", METRICS_CERT_CRL,
	            METRICS_CERT_UNKNOWN) == 0 &&
	        metrics_cert_set(m, "other", METRICS_CERT_CRL,
	            METRICS_CERT_UNKNOWN) == 0 &&
	        metrics_cert_set(m, "egov", METRICS_CERT_NKINDS, 1) == -1,
	    "certificate times set, one forgotten, a bad kind refused");

	memset(&st, 0, sizeof(st));
	st.have_audit = 1;
	st.audit.degraded = 1;
	st.audit.records = 42;
	st.audit.refused = 3;
	st.audit.queue_full = 1;
	st.audit.queued = 5;
	st.draining = 1;
	t = render(m, &st);
	tap_ok(t != NULL, "rendered");
	if (t == NULL)
		abort();
	bad = check_format(t);
	tap_ok(bad == NULL, "exposition format holds (%s)", bad ? bad : "ok");

	check_line(t,
	    "govgate_requests_total{department=\"renshe\","
	    "resource=\"hr-records\",decision=\"allow\",reason=\"owner\"} 3",
	    "shards are summed: 2 + 1 allowed owner requests");
	check_line(t,
	    "govgate_requests_total{department=\"caizheng\","
	    "resource=\"hr-records\",decision=\"deny\","
	    "reason=\"insufficient_clearance\"} 1",
	    "a denial keeps department and resource");
	check_line(t,
	    "govgate_requests_total{department=\"\",resource=\"\","
	    "decision=\"deny\",reason=\"bad_request\"} 1",
	    "no department, no resource: empty labels");
	check_line(t,
	    "govgate_requests_total{department=\"caizheng\",resource=\"\","
	    "decision=\"deny\",reason=\"no_resource\"} 1",
	    "no resource: empty resource label");
	check_line(t,
	    "govgate_requests_total{department=\"renshe\","
	    "resource=\"hr-records\",decision=\"deny\","
	    "reason=\"audit_unavailable\"} 1",
	    "the reason the client got is counted");
	check_line(t,
	    "govgate_requests_total{department=\"\",resource=\"\","
	    "decision=\"deny\",reason=\"no_client_cert\"} 1",
	    "no generation: every label empty");
	check_line(t,
	    "govgate_requests_total{department=\"caizheng\","
	    "resource=\"budget\",decision=\"allow\",reason=\"none\"} 1",
	    "an unknown reason is counted as none");
	tap_ok(count_lines(t, "govgate_requests_total{") == 7,
	    "seven request series");
	check_line(t, "govgate_responses_total{code=\"200\"} 2",
	    "responses by status, summed");
	check_line(t, "govgate_responses_total{code=\"403\"} 1", "403 counted");
	tap_ok(count_lines(t, "govgate_responses_total{") == 2,
	    "statuses outside 100-599 are ignored");
	check_line(t,
	    "govgate_upstream_errors_total{upstream=\"hr-api\","
	    "kind=\"connect\"} 2",
	    "upstream errors summed over shards");
	check_line(t,
	    "govgate_upstream_errors_total{upstream=\"fin-api\","
	    "kind=\"timeout\"} 1",
	    "upstream timeout");
	check_line(t,
	    "govgate_upstream_errors_total{upstream=\"fin-api\","
	    "kind=\"bad_response\"} 0",
	    "known upstreams and kinds start at 0");
	check_line(t,
	    "govgate_upstream_errors_total{upstream=\"\",kind=\"reset\"} 1",
	    "an upstream index out of range: empty label");
	check_line(t,
	    "govgate_tls_handshake_failures_total{listener=\"egov "
	    "\\\"v6\\\"\",reason=\"certificate_revoked\"} 1",
	    "TLS failures by listener (quotes escaped) and reason");
	check_line(t,
	    "govgate_tls_handshake_failures_total{listener=\"egov\","
	    "reason=\"other\"} 1",
	    "an unknown TLS reason is other");
	tap_ok(count_lines(t, "govgate_tls_handshake_failures_total{") ==
	        2 * METRICS_TLS_NFAILS,
	    "every listener and reason is present");
	check_line(t, "govgate_connections_accepted_total 3",
	    "connections accepted");
	check_line(t, "govgate_connections_open 2", "connections open");
	check_line(t,
	    "govgate_upstream_response_seconds_bucket{le=\"0.0025\"} 1",
	    "upstream time histogram");
	check_line(t, "govgate_upstream_response_seconds_sum 0.001500",
	    "upstream time sum in seconds");
	check_line(t, "govgate_upstream_response_seconds_count 1",
	    "upstream time count");
	check_line(t, "govgate_audit_write_lag_seconds_bucket{le=\"0.0025\"} 1",
	    "audit lag histogram");
	check_line(t, "govgate_audit_write_lag_seconds_bucket{le=\"5\"} 2",
	    "audit lag buckets are cumulative");
	check_line(t, "govgate_audit_write_lag_seconds_sum 3.002000",
	    "audit lag sum");
	check_line(t, "govgate_audit_degraded 1", "audit degraded gauge");
	check_line(t, "govgate_audit_records_total 42", "audit records");
	check_line(t, "govgate_audit_refused_total{cause=\"queue_full\"} 1",
	    "audit refusals by cause");
	check_line(t, "govgate_audit_queue_length 5", "audit queue length");
	check_line(t, "govgate_draining 1", "draining gauge");
	check_line(t,
	    "govgate_certificate_not_after_seconds{listener=\"egov\"} "
	    "1900000000",
	    "listener certificate notAfter");
	check_line(t,
	    "govgate_client_ca_not_after_seconds{listener=\"egov\"} "
	    "1800000000",
	    "client CA notAfter");
	tap_ok(count_lines(t, "govgate_crl_next_update_seconds{") == 0,
	    "a forgotten CRL time is not shown");
	check_line(t, "# TYPE govgate_policy_info gauge",
	    "policy info is a gauge");
	tap_ok(count_lines(t,
	           "govgate_policy_info{revision=\"m1\",sha256=\"") == 1,
	    "policy info names the revision in force");
	check_line(t, "govgate_policy_reloads_total{result=\"failed\"} 2",
	    "failed reloads");
	check_line(t,
	    "govgate_department_info{department=\"renshe\",name=\""
	    "南寧市人力資源和社會保障局\"} 1",
	    "department info with a Chinese name");
	check_line(t,
	    "govgate_department_info{department=\"caizheng\",name=\""
	    "南宁市\\\"财政\\\"局\\\\二\\n\"} 1",
	    "department name with quote, backslash and newline escaped");
	check_line(t,
	    "govgate_resource_info{resource=\"hr-records\",name=\"人事檔案\","
	    "owner=\"renshe\",sharing=\"unconditional\","
	    "classification=\"confidential\"} 1",
	    "resource info");
	check_line(t,
	    "# HELP govgate_requests_total Requests decided, by department, "
	    "resource, decision and reason (empty: not known when the request "
	    "was refused).",
	    "golden HELP line");
	check_line(t, "# TYPE govgate_requests_total counter",
	    "golden TYPE line");
	check_line(t, "# TYPE govgate_request_duration_seconds histogram",
	    "histogram TYPE line");
	check_line(t, "govgate_metrics_dropped_total 0", "nothing dropped");
	free(t);

	t = render(m, NULL);
	check_line(t, "govgate_audit_degraded 0",
	    "without audit state: not degraded");
	tap_ok(t != NULL && strstr(t, "govgate_audit_records_total") == NULL,
	    "without audit state: no audit counters");
	free(t);
	metrics_gen_unref(g);
	metrics_free(m);
}

/* A reload maps the same ids to the same series, whatever the indexes. */
static void
test_reload(struct fixture *fx)
{
	const struct policy_department *r1, *r2;
	const struct policy_resource *h1 = NULL, *h2 = NULL;
	struct metrics_gen *g1, *g2;
	struct metrics *m;
	char err[128];
	char *t;
	size_t i;

	r1 = policy_department_find(fx->p1, "renshe");
	r2 = policy_department_find(fx->p2, "renshe");
	for (i = 0; i < policy_nresources(fx->p1); i++)
		if (strcmp(policy_resource_at(fx->p1, i)->id, "hr-records") ==
		    0)
			h1 = policy_resource_at(fx->p1, i);
	h2 = policy_resource_at(fx->p2, 0);
	if (r1 == NULL || r2 == NULL || h1 == NULL)
		abort();
	tap_ok(r1->index != r2->index, "renshe has another index in m2");
	if ((m = metrics_new(2, err, sizeof(err))) == NULL)
		abort();
	g1 = metrics_gen_new(m, fx->p1, &fx->c, err, sizeof(err));
	metrics_set_policy(m, g1);
	metrics_request(metrics_shard_at(m, 0), g1, r1, h1, 1, POLICY_R_OWNER);
	g2 = metrics_gen_new(m, fx->p2, &fx->c, err, sizeof(err));
	metrics_set_policy(m, g2);
	metrics_count_reload(m, 1);
	/* A connection still on m1 finishes after the reload. */
	metrics_request(metrics_shard_at(m, 1), g1, r1, h1, 1, POLICY_R_OWNER);
	metrics_request(metrics_shard_at(m, 0), g2, r2, h2, 1, POLICY_R_OWNER);
	metrics_gen_unref(g1);
	t = render(m, NULL);
	check_line(t,
	    "govgate_requests_total{department=\"renshe\","
	    "resource=\"hr-records\",decision=\"allow\",reason=\"owner\"} 3",
	    "reload: counts of one id continue in one series");
	tap_ok(t != NULL &&
	        count_lines(t, "govgate_policy_info{revision=\"m2\"") == 1 &&
	        strstr(t, "revision=\"m1\"") == NULL,
	    "reload: policy info shows m2 only");
	tap_ok(t != NULL && count_lines(t, "govgate_department_info{") == 3 &&
	        strstr(t, "department_info{department=\"caizheng\"") == NULL,
	    "reload: department info lists m2's departments");
	check_line(t, "govgate_policy_reloads_total{result=\"ok\"} 1",
	    "reload counted");
	free(t);
	metrics_gen_unref(g2);
	metrics_free(m);
}

/*
 * The connections each department holds now, from the table the workers
 * count in: one series per department of the policy in force, none
 * without a table.
 */
static void
test_dept_conns(struct fixture *fx)
{
	struct metrics_state st;
	struct metrics_gen *g1, *g2;
	struct connlim *cl;
	struct metrics *m;
	char err[128];
	char *t;

	if ((m = metrics_new(1, err, sizeof(err))) == NULL ||
	    (cl = connlim_new()) == NULL)
		abort();
	g1 = metrics_gen_new(m, fx->p1, &fx->c, err, sizeof(err));
	metrics_set_policy(m, g1);
	memset(&st, 0, sizeof(st));
	t = render(m, &st);
	tap_ok(t != NULL && strstr(t, "department_connections") == NULL,
	    "department connections: no table, no series");
	free(t);

	(void)connlim_take(connlim_slot_get(cl, "renshe"), 0);
	(void)connlim_take(connlim_slot_get(cl, "renshe"), 0);
	(void)connlim_take(connlim_slot_get(cl, "renshe"), 0);
	connlim_put(connlim_slot_get(cl, "renshe"));
	(void)connlim_take(connlim_slot_get(cl, "gone"), 0);
	st.connlim = cl;
	t = render(m, &st);
	check_line(t, "govgate_department_connections{department=\"renshe\"} 2",
	    "department connections: renshe holds 2");
	check_line(t,
	    "govgate_department_connections{department=\"caizheng\"} 0",
	    "department connections: caizheng holds none, shown as 0");
	tap_ok(t != NULL && strstr(t, "department=\"gone\"") == NULL &&
	        count_lines(t, "govgate_department_connections{") == 2,
	    "department connections: only the policy's departments");
	tap_ok(t != NULL &&
	        has_line(t, "# TYPE govgate_department_connections gauge"),
	    "department connections: a gauge");
	free(t);

	g2 = metrics_gen_new(m, fx->p2, &fx->c, err, sizeof(err));
	metrics_set_policy(m, g2);
	t = render(m, &st);
	check_line(t, "govgate_department_connections{department=\"renshe\"} 2",
	    "department connections: renshe's count survives a reload");
	tap_ok(t != NULL &&
	        count_lines(t, "govgate_department_connections{") == 3 &&
	        strstr(t, "department_connections{department=\"caizheng\"") ==
	            NULL,
	    "department connections: the new policy's departments");
	free(t);
	metrics_gen_unref(g1);
	metrics_gen_unref(g2);
	metrics_free(m);
	connlim_free(cl);
}

static const struct {
	long v;
	enum metrics_tls_fail want;
	const char *name;
} verify_rows[] = {
	{ X509_V_OK, METRICS_TLS_NO_CERTIFICATE, "no_certificate" },
	{ X509_V_ERR_CERT_HAS_EXPIRED, METRICS_TLS_CERT_EXPIRED,
	    "certificate_expired" },
	{ X509_V_ERR_CERT_NOT_YET_VALID, METRICS_TLS_CERT_NOT_YET_VALID,
	    "certificate_not_yet_valid" },
	{ X509_V_ERR_CERT_REVOKED, METRICS_TLS_CERT_REVOKED,
	    "certificate_revoked" },
	{ X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, METRICS_TLS_UNKNOWN_CA,
	    "unknown_ca" },
	{ X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, METRICS_TLS_UNKNOWN_CA,
	    "unknown_ca" },
	{ X509_V_ERR_UNABLE_TO_GET_CRL, METRICS_TLS_CRL, "crl" },
	{ X509_V_ERR_CRL_HAS_EXPIRED, METRICS_TLS_CRL, "crl" },
	{ X509_V_ERR_INVALID_PURPOSE, METRICS_TLS_CERT_INVALID,
	    "certificate_invalid" },
	{ X509_V_ERR_CERT_SIGNATURE_FAILURE, METRICS_TLS_CERT_INVALID,
	    "certificate_invalid" },
};

static void
test_verify_map(void)
{
	size_t i;

	for (i = 0; i < nitems(verify_rows); i++)
		tap_ok(metrics_tls_fail_from_verify(verify_rows[i].v) ==
		            verify_rows[i].want &&
		        strcmp(metrics_tls_fail_str(verify_rows[i].want),
		            verify_rows[i].name) == 0,
		    "verify result %ld is %s", verify_rows[i].v,
		    verify_rows[i].name);
	tap_ok(strcmp(metrics_upstream_error_str(METRICS_UP_BAD_RESPONSE),
	           "bad_response") == 0 &&
	        strcmp(metrics_upstream_error_str(METRICS_UP_NKINDS),
	            "other") == 0,
	    "upstream error kind names");
}

/* ---- workers counting while a scraper reads ---- */

#define NTHREADS 4
#define NREQ 200000
#define NUPS 600

struct worker_arg {
	struct metrics_shard *s;
	struct metrics_gen *g;
	const struct policy_department *d;
	const struct policy_resource *r;
};

static void *
worker_main(void *arg)
{
	struct worker_arg *a = arg;
	size_t i, k;

	for (i = 0; i < NREQ; i++) {
		metrics_request(a->s, a->g, a->d, a->r, (int)(i & 1),
		    i & 1 ? POLICY_R_OWNER : POLICY_R_NO_GRANT);
		metrics_request_time(a->s, (int64_t)(i % 20000));
		/* New series now and then: the table grows under readers. */
		if (i % 64 == 0 && (k = i / 64) < NUPS * METRICS_UP_NKINDS)
			metrics_upstream_error(a->s, a->g, k % NUPS,
			    (enum metrics_upstream_error)(k / NUPS));
	}
	return NULL;
}

static void
test_threads(struct fixture *fx)
{
	struct conf_upstream *ups;
	struct worker_arg args[NTHREADS];
	pthread_t th[NTHREADS];
	struct metrics_gen *g;
	struct metrics *m;
	struct conf c;
	char err[128], names[NUPS][16];
	char *t;
	size_t i, scrapes = 0, last = 0, now;
	int monotonic = 1;

	if ((ups = calloc(NUPS, sizeof(*ups))) == NULL)
		abort();
	for (i = 0; i < NUPS; i++) {
		snprintf(names[i], sizeof(names[i]), "up-%zu", i);
		ups[i].name = names[i];
	}
	memset(&c, 0, sizeof(c));
	c.upstreams = ups;
	c.nupstreams = NUPS;
	if ((m = metrics_new(NTHREADS, err, sizeof(err))) == NULL ||
	    (g = metrics_gen_new(m, fx->p1, &c, err, sizeof(err))) == NULL)
		abort();
	for (i = 0; i < NTHREADS; i++) {
		args[i].s = metrics_shard_at(m, i);
		args[i].g = g;
		args[i].d = policy_department_find(fx->p1, "renshe");
		args[i].r = policy_resource_at(fx->p1, 0);
		if (pthread_create(&th[i], NULL, worker_main, &args[i]) != 0)
			abort();
	}
	/* Scrape while they count: totals never go backwards. */
	for (i = 0; i < 20; i++) {
		if ((t = render(m, NULL)) == NULL)
			break;
		now = (size_t)sum_lines(t, "govgate_requests_total{");
		if (now < last)
			monotonic = 0;
		last = now;
		scrapes++;
		free(t);
	}
	for (i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	tap_ok(scrapes == 20 && monotonic,
	    "20 scrapes during counting, never going backwards");
	t = render(m, NULL);
	tap_ok(t != NULL &&
	        sum_lines(t, "govgate_requests_total{") ==
	            (uint64_t)NTHREADS * NREQ,
	    "threads: every request counted once (%d)", NTHREADS * NREQ);
	tap_ok(t != NULL && count_lines(t, "govgate_requests_total{") == 2,
	    "threads: two series over four shards");
	tap_ok(t != NULL &&
	        has_line(t, "govgate_request_duration_seconds_count 800000"),
	    "threads: histogram count");
	tap_ok(t != NULL &&
	        sum_lines(t, "govgate_upstream_errors_total{") ==
	            (uint64_t)NTHREADS * NUPS * METRICS_UP_NKINDS &&
	        count_lines(t, "govgate_upstream_errors_total{") ==
	            NUPS * METRICS_UP_NKINDS,
	    "threads: %d series each grown past the first table",
	    NUPS * METRICS_UP_NKINDS);
	tap_ok(t != NULL && has_line(t, "govgate_metrics_dropped_total 0"),
	    "threads: nothing dropped");
	tap_ok(t != NULL && check_format(t) == NULL, "threads: format holds");
	free(t);
	metrics_gen_unref(g);
	metrics_free(m);
	free(ups);
}

int
main(void)
{
	struct fixture fx;
	char err[128];

	memset(&fx, 0, sizeof(fx));
	if ((fx.tz = tz_load("Asia/Shanghai", err, sizeof(err))) == NULL) {
		printf("1..0 # SKIP no tzdata: %s\n", err);
		return 0;
	}
	setup_conf(&fx);
	fx.p1 = load_policy(&fx, policy1);
	fx.p2 = load_policy(&fx, policy2);
	if (!tap_ok(fx.p1 != NULL && fx.p2 != NULL, "test policies load")) {
		tap_done();
		tap_exit();
	}
	test_escape();
	test_buckets();
	test_counting(&fx);
	test_reload(&fx);
	test_dept_conns(&fx);
	test_verify_map();
	test_threads(&fx);
	policy_unref(fx.p1);
	policy_unref(fx.p2);
	tz_free(fx.tz);
	tap_done();
	tap_exit();
}
