/* policy_bench.c - time policy_load() and policy_decide() on a large policy. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "diag.h"
#include "peer.h"
#include "policy.h"
#include "tz.h"

/*
 * Usage: policy_bench [-n DECISIONS] [-l LOADS] [-t TIMEZONE] POLICY REQUESTS
 *
 * POLICY and REQUESTS come from tests/bench/gen_policy.py (REQUESTS: one
 * "DEPT\tMETHOD\tPATH\tPURPOSE\tCASE" per line, "-" for none). Prints
 * load times, per-decision times (median and p99 of batch means, and of
 * individually timed calls) and the decision mix. It measures; it never
 * judges a time, so it cannot fail on a slow machine.
 */

#define BENCH_BATCH 100      /* decisions per timed batch */
#define BENCH_SAMPLE_EVERY 4 /* time every 4th call individually */
#define BENCH_MAX_LINE 4096  /* bytes of one request line */
#define BENCH_MAX_REQUESTS 10000000
#define BENCH_CLOCK "2026-11-25T10:00:00+08:00" /* as gen_policy.py */
#define BENCH_TICK_NS 1000000 /* the simulated clock's step per call */

struct bench_req {
	char *method;
	char *path;
	char *purpose; /* NULL: no header */
	char *case_id; /* NULL: no header */
	const struct peer *peer;
	char *norm;
	size_t normsz;
};

struct bench_dept {
	char id[24];
	struct peer peer;
};

static int64_t
bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
bench_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* The q-quantile (0..1) of v[0..n), which is sorted in place. */
static int64_t
bench_quantile(int64_t *v, size_t n, double q)
{
	size_t i;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), bench_cmp_i64);
	i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static void *
bench_alloc(size_t n, size_t size)
{
	void *p;

	if ((p = calloc(n ? n : 1, size)) == NULL) {
		fprintf(stderr, "policy_bench: out of memory\n");
		exit(2);
	}
	return p;
}

static char *
bench_strdup(const char *s)
{
	size_t len = strlen(s) + 1;
	char *p = bench_alloc(len, 1);

	memcpy(p, s, len);
	return p;
}

/* Resident set size in kB, or -1 where /proc is not there. */
static long
bench_rss_kb(void)
{
	FILE *fp;
	long pages = -1, rss = -1;

	if ((fp = fopen("/proc/self/statm", "r")) == NULL)
		return -1;
	if (fscanf(fp, "%ld %ld", &pages, &rss) != 2)
		rss = -1;
	fclose(fp);
	return rss < 0 ? -1 : rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Fill p as a verified certificate with subject O org from "Bench CA". */
static void
bench_peer_init(struct peer *p, const char *org, const char *serial)
{
	memset(p, 0, sizeof(*p));
	p->present = 1;
	if (peer_put(p, org, strlen(org), &p->subject.val[PEER_ATTR_O]) == 0)
		p->subject.state[PEER_ATTR_O] = PEER_ATTR_OK;
	if (peer_put(p, "bench-app", 9, &p->subject.val[PEER_ATTR_CN]) == 0)
		p->subject.state[PEER_ATTR_CN] = PEER_ATTR_OK;
	if (peer_put(p, "Bench CA", 8, &p->issuer.val[PEER_ATTR_CN]) == 0)
		p->issuer.state[PEER_ATTR_CN] = PEER_ATTR_OK;
	(void)peer_put(p, serial, strlen(serial), &p->serial);
}

static void
bench_free_requests(struct bench_req *v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(v[i].method);
		free(v[i].path);
		free(v[i].purpose);
		free(v[i].case_id);
		free(v[i].norm);
	}
	free(v);
}

/*
 * Read the request list. Departments are "dNNN" (any number below ndept)
 * or "-" (a certificate no department matches). Returns the count, or -1.
 */
static long
bench_read_requests(const char *path, struct bench_dept *depts, size_t ndept,
    const struct peer *stranger, struct bench_req **out)
{
	FILE *fp = NULL;
	char line[BENCH_MAX_LINE];
	char *f[5], *s;
	struct bench_req *v = NULL;
	size_t n = 0, cap = 0, lineno = 0, k, di;
	long ret = -1;

	if ((fp = fopen(path, "r")) == NULL) {
		fprintf(stderr, "policy_bench: %s: %s\n", path,
		    strerror(errno));
		goto out;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		if ((s = strchr(line, '\n')) == NULL && !feof(fp)) {
			fprintf(stderr, "policy_bench: %s:%zu: line too long\n",
			    path, lineno);
			goto out;
		}
		if (s != NULL)
			*s = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		for (k = 0, s = line; k < 5; k++) {
			f[k] = s;
			if ((s = strchr(s, '\t')) == NULL)
				break;
			*s++ = '\0';
		}
		if (k != 4 || s != NULL) {
			fprintf(stderr,
			    "policy_bench: %s:%zu: expected 5 tab-separated "
			    "fields\n",
			    path, lineno);
			goto out;
		}
		if (n == BENCH_MAX_REQUESTS) {
			fprintf(stderr, "policy_bench: %s: over %d requests\n",
			    path, BENCH_MAX_REQUESTS);
			goto out;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			if ((v = realloc(v, cap * sizeof(*v))) == NULL) {
				fprintf(stderr,
				    "policy_bench: out of memory\n");
				exit(2);
			}
		}
		memset(&v[n], 0, sizeof(v[n]));
		if (strcmp(f[0], "-") == 0)
			v[n].peer = stranger;
		else if (f[0][0] == 'd' &&
		    (di = strtoul(f[0] + 1, NULL, 10)) < ndept)
			v[n].peer = &depts[di].peer;
		else {
			fprintf(stderr,
			    "policy_bench: %s:%zu: unknown department \"%s\"\n",
			    path, lineno, f[0]);
			goto out;
		}
		v[n].method = bench_strdup(f[1]);
		v[n].path = bench_strdup(f[2]);
		v[n].purpose = strcmp(f[3], "-") ? bench_strdup(f[3]) : NULL;
		v[n].case_id = strcmp(f[4], "-") ? bench_strdup(f[4]) : NULL;
		v[n].normsz = strlen(f[2]) + 1;
		v[n].norm = bench_alloc(v[n].normsz, 1);
		n++;
	}
	if (ferror(fp)) {
		fprintf(stderr, "policy_bench: %s: read error\n", path);
		goto out;
	}
	if (n == 0) {
		fprintf(stderr, "policy_bench: %s: no requests\n", path);
		goto out;
	}
	*out = v;
	v = NULL;
	ret = (long)n;
out:
	bench_free_requests(v, n);
	if (fp != NULL)
		fclose(fp);
	return ret;
}

/* Fill in (which the caller zeroed once) for request r at clock t. */
static void
bench_input(struct policy_input *in, const struct bench_req *r, int64_t t_ns)
{
	in->method = r->method;
	in->method_len = strlen(r->method);
	in->path = r->path;
	in->path_len = r->normsz - 1;
	in->peer = r->peer;
	in->purpose = r->purpose;
	in->purpose_len = r->purpose ? strlen(r->purpose) : 0;
	in->case_id = r->case_id;
	in->case_len = r->case_id ? strlen(r->case_id) : 0;
	in->now_sec = t_ns / 1000000000;
	in->now_nsec = (int32_t)(t_ns % 1000000000);
	in->norm = r->norm;
	in->normsz = r->normsz;
}

static void
bench_usage(void)
{
	fprintf(stderr,
	    "usage: policy_bench [-n DECISIONS] [-l LOADS] [-t TIMEZONE] "
	    "POLICY REQUESTS\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct bench_dept *depts = NULL;
	struct bench_req *reqs = NULL;
	struct policy_env env;
	struct policy_input in;
	struct policy_decision d;
	struct policy *p = NULL;
	struct peer stranger;
	struct diag dg;
	struct tz *zone = NULL;
	const char *zone_name = "Asia/Shanghai";
	char err[256], name[64];
	unsigned long ndecisions = 1000000, nloads = 3, i, j, b, nbatch;
	int64_t *loads = NULL, *batch = NULL, *calls = NULL;
	int64_t t0, t1, clock_ns, overhead, start_sec;
	uint64_t reasons[POLICY_NREASONS], allowed = 0;
	size_t ndept, k, ncalls = 0;
	long nreq = 0, rss0, rss1 = -1;
	int32_t start_nsec;
	int c, ret = 1;

	while ((c = getopt(argc, argv, "n:l:t:h")) != -1) {
		switch (c) {
		case 'n':
			ndecisions = strtoul(optarg, NULL, 10);
			break;
		case 'l':
			nloads = strtoul(optarg, NULL, 10);
			break;
		case 't':
			zone_name = optarg;
			break;
		default:
			bench_usage();
		}
	}
	if (argc - optind != 2 || ndecisions < BENCH_BATCH || nloads < 1 ||
	    nloads > 100 || ndecisions > 1000000000UL)
		bench_usage();
	if ((zone = tz_load(zone_name, err, sizeof(err))) == NULL) {
		fprintf(stderr, "policy_bench: timezone %s: %s\n", zone_name,
		    err);
		goto out;
	}
	if (tz_parse_rfc3339(BENCH_CLOCK, &start_sec, &start_nsec) == -1)
		goto out;

	/* policy_load, nloads times; the last one is kept. */
	memset(&env, 0, sizeof(env));
	env.tz = zone;
	env.now = start_sec;
	env.have_country_db = 1;
	env.have_zone_db = 1;
	loads = bench_alloc(nloads, sizeof(*loads));
	rss0 = bench_rss_kb();
	for (i = 0; i < nloads; i++) {
		policy_unref(p);
		diag_init(&dg);
		t0 = bench_now_ns();
		p = policy_load(argv[optind], &env, &dg);
		t1 = bench_now_ns();
		loads[i] = t1 - t0;
		if (p == NULL) {
			diag_print(&dg, stderr);
			diag_clear(&dg);
			fprintf(stderr, "policy_bench: %s: not loaded\n",
			    argv[optind]);
			goto out;
		}
		if (i == 0)
			rss1 = bench_rss_kb();
		if (i == 0)
			printf("policy: %s\n  %zu departments, %zu resources, "
			       "%zu grants; %zu errors, %zu warnings\n",
			    argv[optind], policy_ndepartments(p),
			    policy_nresources(p), policy_ngrants(p), dg.nerrors,
			    dg.nwarnings);
		diag_clear(&dg);
	}
	printf("policy_load: min %.1f ms, median %.1f ms over %lu loads\n",
	    (double)bench_quantile(loads, nloads, 0.0) / 1e6,
	    (double)bench_quantile(loads, nloads, 0.5) / 1e6, nloads);
	if (rss0 >= 0 && rss1 >= 0)
		printf("  resident memory grew by %ld kB during the first "
		       "load\n",
		    rss1 - rss0);

	/*
	 * One peer per department, as gen_policy.py names them: department
	 * dNNN has the subject O "Bench Department NNN", and the request list
	 * refers to it as dNNN.
	 */
	ndept = policy_ndepartments(p);
	depts = bench_alloc(ndept, sizeof(*depts));
	for (k = 0; k < ndept; k++) {
		snprintf(depts[k].id, sizeof(depts[k].id), "d%03zu", k);
		if (policy_department_find(p, depts[k].id) == NULL) {
			fprintf(stderr,
			    "policy_bench: no department %s: not a policy from "
			    "gen_policy.py\n",
			    depts[k].id);
			goto out;
		}
		snprintf(name, sizeof(name), "Bench Department %03zu", k);
		bench_peer_init(&depts[k].peer, name, "BE0001");
	}
	bench_peer_init(&stranger, "Bench Stranger", "BE0002");
	if ((nreq = bench_read_requests(argv[optind + 1], depts, ndept,
	         &stranger, &reqs)) < 0)
		goto out;

	/* Timer overhead: back-to-back clock_gettime calls. */
	calls = bench_alloc(100000, sizeof(*calls));
	for (i = 0; i < 100000; i++) {
		t0 = bench_now_ns();
		t1 = bench_now_ns();
		calls[i] = t1 - t0;
	}
	overhead = bench_quantile(calls, 100000, 0.5);
	free(calls);
	calls = NULL;

	/* Warm up: every request once. */
	memset(&in, 0, sizeof(in));
	clock_ns = start_sec * 1000000000 + start_nsec;
	for (j = 0; j < (unsigned long)nreq; j++) {
		bench_input(&in, &reqs[j], clock_ns);
		policy_decide(p, &in, &d);
		clock_ns += BENCH_TICK_NS;
	}

	/* Phase 1: batches of BENCH_BATCH, timed as a whole. */
	policy_rate_reset(p);
	memset(reasons, 0, sizeof(reasons));
	nbatch = ndecisions / BENCH_BATCH;
	batch = bench_alloc(nbatch, sizeof(*batch));
	clock_ns = start_sec * 1000000000 + start_nsec;
	for (b = 0, j = 0; b < nbatch; b++) {
		t0 = bench_now_ns();
		for (i = 0; i < BENCH_BATCH; i++) {
			bench_input(&in, &reqs[j], clock_ns);
			policy_decide(p, &in, &d);
			reasons[d.reason]++;
			allowed += (uint64_t)d.allow;
			clock_ns += BENCH_TICK_NS;
			if (++j == (unsigned long)nreq)
				j = 0;
		}
		t1 = bench_now_ns();
		batch[b] = (t1 - t0) * 10 / BENCH_BATCH; /* tenths of ns */
	}
	printf("decisions: %lu over %ld distinct requests, %.1f%% allowed\n",
	    nbatch * BENCH_BATCH, nreq,
	    100.0 * (double)allowed / (double)(nbatch * BENCH_BATCH));
	printf("per decision, batches of %d: median %.1f ns, p99 %.1f ns\n",
	    BENCH_BATCH, (double)bench_quantile(batch, nbatch, 0.5) / 10,
	    (double)bench_quantile(batch, nbatch, 0.99) / 10);

	/* Phase 2: every BENCH_SAMPLE_EVERY-th call timed on its own. */
	policy_rate_reset(p);
	calls =
	    bench_alloc(ndecisions / BENCH_SAMPLE_EVERY + 1, sizeof(*calls));
	clock_ns = start_sec * 1000000000 + start_nsec;
	for (i = 0, j = 0; i < ndecisions; i++) {
		bench_input(&in, &reqs[j], clock_ns);
		if (i % BENCH_SAMPLE_EVERY == 0) {
			t0 = bench_now_ns();
			policy_decide(p, &in, &d);
			t1 = bench_now_ns();
			calls[ncalls++] = t1 - t0 - overhead;
		} else
			policy_decide(p, &in, &d);
		clock_ns += BENCH_TICK_NS;
		if (++j == (unsigned long)nreq)
			j = 0;
	}
	printf("per call, 1 in %d timed (%zu samples, timer overhead %lld ns "
	       "subtracted): median %lld ns, p90 %lld ns, p99 %lld ns, "
	       "p99.9 %lld ns, max %lld ns\n",
	    BENCH_SAMPLE_EVERY, ncalls, (long long)overhead,
	    (long long)bench_quantile(calls, ncalls, 0.5),
	    (long long)bench_quantile(calls, ncalls, 0.9),
	    (long long)bench_quantile(calls, ncalls, 0.99),
	    (long long)bench_quantile(calls, ncalls, 0.999),
	    (long long)bench_quantile(calls, ncalls, 1.0));

	printf("decision mix (phase 1):\n");
	for (k = 0; k < POLICY_NREASONS; k++)
		if (reasons[k] != 0)
			printf("  %-24s %10llu  %5.1f%%\n",
			    policy_reason_str((enum policy_reason)k),
			    (unsigned long long)reasons[k],
			    100.0 * (double)reasons[k] /
			        (double)(nbatch * BENCH_BATCH));
	ret = 0;
out:
	free(calls);
	free(batch);
	free(loads);
	free(depts);
	if (reqs != NULL)
		bench_free_requests(reqs, (size_t)nreq);
	policy_unref(p);
	tz_free(zone);
	return ret;
}
