/* geo_bench.c - time geo_lookup() (country + zone) per request. */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "diag.h"
#include "geo.h"

/*
 * Usage: geo_bench [-n LOOKUPS] [-N COUNTRY_NETS] [-Z ZONE_NETS]
 *                  [-C CONTRIB_DIR] [-c COUNTRY.mmdb -z ZONES.mmdb]
 *
 * Without -c and -z, writes a country list (COUNTRY_NETS IPv4 /24s and a
 * quarter as many IPv6 /48s, anywhere, plus 10/8 and fd00::/8 as CN) and
 * a zone list (ZONE_NETS /24s in 10/8 and an eighth as many /48s in
 * fd00::/8) into a temporary folder, builds them with
 * contrib/mkcountries and contrib/mkzones, and removes the folder at the
 * end. Then, for IPv4, IPv6 and IPv4-mapped IPv6 sources, times LOOKUPS
 * calls of geo_lookup() -- one country and one zone lookup, as `serve`
 * does per connection -- in batches of 100, then each call by itself.
 * "mix" sources are a quarter in a country network, a quarter in a zone
 * (and so in a country too), half anywhere; "hit" sources are all in a
 * zone and a country, the most work a lookup does. It prints medians and
 * tails and never judges them.
 */

#define BENCH_BATCH 100    /* lookups per timed batch */
#define BENCH_NADDRS 65536 /* distinct source addresses per family */
#define BENCH_MAX_LOOKUPS 100000000UL
#define BENCH_MAX_NETS 4000000UL /* < 2^24: the /24 numbering stays 1:1 */
#define BENCH_SEED 0x676f7667617465ULL

#ifndef GEO_BENCH_CONTRIB
#define GEO_BENCH_CONTRIB "contrib"
#endif

enum bench_family {
	BENCH_V4 = 0,
	BENCH_V4_HIT,
	BENCH_V6,
	BENCH_V6_HIT,
	BENCH_V4MAPPED,
	BENCH_NFAMILIES,
};

static const char *const bench_family_names[BENCH_NFAMILIES] = {
	"IPv4 mix",
	"IPv4 hit",
	"IPv6 mix",
	"IPv6 hit",
	"IPv4-mapped",
};

static const char *const bench_countries[] = { "CN", "US", "VN", "JP", "DE",
	"FR", "GB", "KR", "SG", "RU", "IN", "BR", "AU", "CA", "NL", "TH", "MY",
	"ID", "PH", "LA" };

/* What the generated lists hold, to draw addresses inside them. */
struct bench_nets {
	unsigned long ncountry4, ncountry6, nzone4, nzone6;
	int generated;
};

static uint64_t bench_rng = BENCH_SEED;

/* splitmix64: a fixed sequence, so that runs compare. */
static uint64_t
bench_rand(void)
{
	uint64_t z = (bench_rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

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

/* The q-quantile (0..1) of v[0..n), sorted already. */
static int64_t
bench_quantile(const int64_t *v, size_t n, double q)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static void *
bench_alloc(size_t n, size_t size)
{
	void *p;

	if ((p = calloc(n ? n : 1, size)) == NULL) {
		fprintf(stderr, "geo_bench: out of memory\n");
		exit(2);
	}
	return p;
}

/*
 * Network i of a kind, numbered 1:1 by multiplying with an odd constant
 * modulo a power of two, so that no network repeats (mkzones refuses a
 * network listed twice) and neighbours in i are far apart in the tree.
 */
static uint32_t
bench_country4(unsigned long i)
{
	return (uint32_t)((i * 0x9e3779b1UL) & 0xffffffUL) << 8;
}

static uint64_t
bench_country6(unsigned long i)
{
	/* 2400::/12 plus 36 bits: a /48, clear of ::/96 and 2001/2002. */
	return 0x240000000000ULL |
	    (((uint64_t)i * 0x9e3779b97ULL) & 0xfffffffffULL);
}

static uint32_t
bench_zone4(unsigned long i)
{
	return 0x0a000000U | (uint32_t)((i * 0x9e37UL) & 0xffffUL) << 8;
}

static uint64_t
bench_zone6(unsigned long i)
{
	/* fd00::/8 plus 40 bits: a /48 in the unique local range. */
	return 0xfd0000000000ULL |
	    (((uint64_t)i * 0x9e3779b97fULL) & 0xffffffffffULL);
}

static void
bench_put_v6_48(FILE *fp, uint64_t net, const char *value)
{
	fprintf(fp, "%x:%x:%x::/48 %s\n", (unsigned)(net >> 32),
	    (unsigned)(net >> 16) & 0xffff, (unsigned)net & 0xffff, value);
}

/* Write the country and zone lists. Returns 0, or -1 (message printed). */
static int
bench_write_lists(const char *countries, const char *zones,
    const struct bench_nets *nets)
{
	FILE *fp;
	unsigned long i;
	uint32_t a;
	char zone[16];

	if ((fp = fopen(countries, "w")) == NULL)
		goto fail_c;
	for (i = 0; i < nets->ncountry4; i++) {
		a = bench_country4(i);
		fprintf(fp, "%u.%u.%u.0/24 %s\n", a >> 24, (a >> 16) & 0xff,
		    (a >> 8) & 0xff,
		    bench_countries[i % nitems(bench_countries)]);
	}
	for (i = 0; i < nets->ncountry6; i++)
		bench_put_v6_48(fp, bench_country6(i),
		    bench_countries[i % nitems(bench_countries)]);
	/* The intranet as a country: zone hits are country hits too. */
	fprintf(fp, "10.0.0.0/8 CN\nfd00::/8 CN\n");
	if (fclose(fp) != 0)
		goto fail_c;

	if ((fp = fopen(zones, "w")) == NULL)
		goto fail_z;
	for (i = 0; i < nets->nzone4; i++) {
		a = bench_zone4(i);
		fprintf(fp, "%u.%u.%u.0/24 zone-%lu\n", a >> 24,
		    (a >> 16) & 0xff, (a >> 8) & 0xff, i % 500);
	}
	for (i = 0; i < nets->nzone6; i++) {
		snprintf(zone, sizeof(zone), "zone-%lu", i % 500);
		bench_put_v6_48(fp, bench_zone6(i), zone);
	}
	if (fclose(fp) != 0)
		goto fail_z;
	return 0;
fail_c:
	fprintf(stderr, "geo_bench: %s: %s\n", countries, strerror(errno));
	return -1;
fail_z:
	fprintf(stderr, "geo_bench: %s: %s\n", zones, strerror(errno));
	return -1;
}

/* Run `perl DIR/TOOL OUT LIST`. Returns 0, or -1 (message printed). */
static int
bench_run_tool(const char *dir, const char *tool, const char *out,
    const char *list)
{
	char path[4096];
	pid_t pid;
	int status;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, tool) >=
	    sizeof(path)) {
		fprintf(stderr, "geo_bench: %s: path too long\n", dir);
		return -1;
	}
	fflush(NULL);
	if ((pid = fork()) == -1) {
		fprintf(stderr, "geo_bench: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		execlp("perl", "perl", path, out, list, (char *)NULL);
		fprintf(stderr, "geo_bench: perl: %s\n", strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR) {
			fprintf(stderr, "geo_bench: waitpid: %s\n",
			    strerror(errno));
			return -1;
		}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "geo_bench: %s failed (status %d)\n", path,
		    status);
		return -1;
	}
	return 0;
}

static void
bench_v4(struct sockaddr_storage *ss, uint32_t a)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(40000);
	sin->sin_addr.s_addr = htonl(a);
}

static void
bench_v6(struct sockaddr_storage *ss, uint64_t hi, uint64_t lo)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	int i;

	memset(ss, 0, sizeof(*ss));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(40000);
	for (i = 0; i < 8; i++) {
		sin6->sin6_addr.s6_addr[i] = (uint8_t)(hi >> (56 - 8 * i));
		sin6->sin6_addr.s6_addr[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
	}
}

/*
 * An IPv4 source: a quarter in a country network, a quarter in a zone,
 * half anywhere; with hit, all in a zone.
 */
static uint32_t
bench_pick_v4(const struct bench_nets *nets, int hit)
{
	uint64_t r = bench_rand();
	uint32_t host = (uint32_t)(r >> 40) & 0xff;

	if (hit)
		r = (r & ~(uint64_t)3) | 1;
	if (nets->generated && (r & 3) == 0)
		return bench_country4((r >> 8) % nets->ncountry4) | host;
	if (nets->generated && (r & 3) == 1 && nets->nzone4 > 0)
		return bench_zone4((r >> 8) % nets->nzone4) | host;
	if ((r & 3) == 1)
		return 0x0a000000U | ((uint32_t)(r >> 8) & 0xffffff);
	return (uint32_t)(r >> 16);
}

/* An IPv6 source, the same way; "anywhere" is 2000::/3. */
static void
bench_pick_v6(struct sockaddr_storage *ss, const struct bench_nets *nets,
    int hit)
{
	uint64_t r = bench_rand(), lo = bench_rand(), hi;

	if (hit)
		r = (r & ~(uint64_t)3) | 1;
	if (nets->generated && (r & 3) == 0 && nets->ncountry6 > 0)
		hi = bench_country6((r >> 8) % nets->ncountry6) << 16;
	else if (nets->generated && (r & 3) == 1 && nets->nzone6 > 0)
		hi = bench_zone6((r >> 8) % nets->nzone6) << 16;
	else
		hi = 0x2000000000000000ULL | (r >> 3);
	bench_v6(ss, hi | ((r >> 40) & 0xffff), lo);
}

struct bench_result {
	int64_t batch_med, batch_p99;
	int64_t call_med, call_p90, call_p99, call_p999, call_max;
	unsigned long country_hits, zone_hits;
};

/*
 * Time n lookups over the addresses in v (nv of them): in batches, then
 * each call alone less the clock's own cost.
 */
static void
bench_family(const struct geo *g, const struct sockaddr_storage *v, size_t nv,
    unsigned long n, int64_t overhead, struct bench_result *res)
{
	struct geo_info info;
	int64_t *batch, *calls, t0, t1;
	unsigned long i, b, nbatch = n / BENCH_BATCH;
	size_t k = 0;

	memset(res, 0, sizeof(*res));
	batch = bench_alloc(nbatch, sizeof(*batch));
	calls = bench_alloc(n, sizeof(*calls));
	/* Warm the page cache and the branch predictors. */
	for (i = 0; i < nv; i++)
		geo_lookup(g, (const struct sockaddr *)&v[i], &info);
	for (b = 0; b < nbatch; b++) {
		t0 = bench_now_ns();
		for (i = 0; i < BENCH_BATCH; i++) {
			geo_lookup(g, (const struct sockaddr *)&v[k], &info);
			if (++k == nv)
				k = 0;
		}
		t1 = bench_now_ns();
		batch[b] = (t1 - t0) / BENCH_BATCH;
	}
	for (i = 0; i < n; i++) {
		t0 = bench_now_ns();
		geo_lookup(g, (const struct sockaddr *)&v[k], &info);
		t1 = bench_now_ns();
		calls[i] = t1 - t0 - overhead;
		if (calls[i] < 0)
			calls[i] = 0;
		if (info.country[0] != '\0')
			res->country_hits++;
		if (info.zone[0] != '\0')
			res->zone_hits++;
		if (++k == nv)
			k = 0;
	}
	qsort(batch, nbatch, sizeof(*batch), bench_cmp_i64);
	qsort(calls, n, sizeof(*calls), bench_cmp_i64);
	res->batch_med = bench_quantile(batch, nbatch, 0.5);
	res->batch_p99 = bench_quantile(batch, nbatch, 0.99);
	res->call_med = bench_quantile(calls, n, 0.5);
	res->call_p90 = bench_quantile(calls, n, 0.9);
	res->call_p99 = bench_quantile(calls, n, 0.99);
	res->call_p999 = bench_quantile(calls, n, 0.999);
	res->call_max = calls[n - 1];
	free(batch);
	free(calls);
}

/* The median cost of two back-to-back clock reads. */
static int64_t
bench_clock_overhead(void)
{
	int64_t v[10001], t0;
	size_t i;

	for (i = 0; i < nitems(v); i++) {
		t0 = bench_now_ns();
		v[i] = bench_now_ns() - t0;
	}
	qsort(v, nitems(v), sizeof(v[0]), bench_cmp_i64);
	return v[nitems(v) / 2];
}

static void
bench_usage(void)
{
	fprintf(stderr,
	    "usage: geo_bench [-n LOOKUPS] [-N COUNTRY_NETS] [-Z ZONE_NETS] "
	    "[-C CONTRIB_DIR]\n"
	    "                 [-c COUNTRY.mmdb -z ZONES.mmdb]\n");
	exit(2);
}

static unsigned long
bench_number(const char *s, unsigned long min, unsigned long max)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "geo_bench: \"%s\": expected %lu to %lu\n", s,
		    min, max);
		exit(2);
	}
	return v;
}

int
main(int argc, char **argv)
{
	struct sockaddr_storage *addrs[BENCH_NFAMILIES] = { NULL };
	struct bench_result res[BENCH_NFAMILIES];
	struct bench_nets nets;
	struct geo *g = NULL;
	struct diag dg;
	const char *contrib = GEO_BENCH_CONTRIB;
	const char *country_db = NULL, *zone_db = NULL;
	char tmpdir[] = "/tmp/geo_bench.XXXXXX";
	char clist[64], zlist[64], cdb[64], zdb[64];
	unsigned long n = 1000000;
	int64_t t0, t1, overhead;
	size_t i;
	int c, f, made = 0, ret = 1;

	memset(&nets, 0, sizeof(nets));
	nets.ncountry4 = 200000;
	nets.nzone4 = 5000;
	while ((c = getopt(argc, argv, "n:N:Z:C:c:z:h")) != -1) {
		switch (c) {
		case 'n':
			n = bench_number(optarg, BENCH_BATCH,
			    BENCH_MAX_LOOKUPS);
			break;
		case 'N':
			nets.ncountry4 =
			    bench_number(optarg, 1, BENCH_MAX_NETS);
			break;
		case 'Z':
			nets.nzone4 = bench_number(optarg, 1, 60000);
			break;
		case 'C':
			contrib = optarg;
			break;
		case 'c':
			country_db = optarg;
			break;
		case 'z':
			zone_db = optarg;
			break;
		default:
			bench_usage();
		}
	}
	if (argc != optind || (country_db == NULL) != (zone_db == NULL))
		bench_usage();

	if (country_db == NULL) {
		nets.generated = 1;
		nets.ncountry6 = nets.ncountry4 / 4 + 1;
		nets.nzone6 = nets.nzone4 / 8 + 1;
		if (mkdtemp(tmpdir) == NULL) {
			fprintf(stderr, "geo_bench: mkdtemp: %s\n",
			    strerror(errno));
			goto out;
		}
		made = 1;
		snprintf(clist, sizeof(clist), "%s/countries.txt", tmpdir);
		snprintf(zlist, sizeof(zlist), "%s/zones.txt", tmpdir);
		snprintf(cdb, sizeof(cdb), "%s/countries.mmdb", tmpdir);
		snprintf(zdb, sizeof(zdb), "%s/zones.mmdb", tmpdir);
		printf("building %lu + %lu country and %lu + %lu zone "
		       "networks with %s/mk{countries,zones}\n",
		    nets.ncountry4, nets.ncountry6, nets.nzone4, nets.nzone6,
		    contrib);
		t0 = bench_now_ns();
		if (bench_write_lists(clist, zlist, &nets) == -1 ||
		    bench_run_tool(contrib, "mkcountries", cdb, clist) == -1 ||
		    bench_run_tool(contrib, "mkzones", zdb, zlist) == -1)
			goto out;
		t1 = bench_now_ns();
		printf("  built in %.1f s\n", (double)(t1 - t0) / 1e9);
		country_db = cdb;
		zone_db = zdb;
	}

	diag_init(&dg);
	t0 = bench_now_ns();
	g = geo_open(country_db, zone_db, &dg);
	t1 = bench_now_ns();
	if (g == NULL) {
		diag_print(&dg, stderr);
		diag_clear(&dg);
		goto out;
	}
	diag_clear(&dg);
	printf("geo_open (both databases, probed): %.3f ms\n",
	    (double)(t1 - t0) / 1e6);

	for (f = 0; f < BENCH_NFAMILIES; f++)
		addrs[f] = bench_alloc(BENCH_NADDRS, sizeof(*addrs[f]));
	for (i = 0; i < BENCH_NADDRS; i++) {
		uint32_t a = bench_pick_v4(&nets, 0);

		bench_v4(&addrs[BENCH_V4][i], a);
		bench_v6(&addrs[BENCH_V4MAPPED][i], 0, 0xffff00000000ULL | a);
		bench_v4(&addrs[BENCH_V4_HIT][i], bench_pick_v4(&nets, 1));
		bench_pick_v6(&addrs[BENCH_V6][i], &nets, 0);
		bench_pick_v6(&addrs[BENCH_V6_HIT][i], &nets, 1);
	}

	overhead = bench_clock_overhead();
	printf("geo_lookup (country + zone), %lu lookups per family over "
	       "%d sources; clock overhead %lld ns subtracted per call\n\n",
	    n, BENCH_NADDRS, (long long)overhead);
	printf("%-12s %9s %9s | %9s %9s %9s %9s %9s | %7s %7s\n", "ns/lookup",
	    "batch-med", "batch-p99", "call-med", "call-p90", "call-p99",
	    "p99.9", "max", "country", "zone");
	for (f = 0; f < BENCH_NFAMILIES; f++) {
		/* Which sources hit is known only for generated lists. */
		if (!nets.generated && (f == BENCH_V4_HIT || f == BENCH_V6_HIT))
			continue;
		bench_family(g, addrs[f], BENCH_NADDRS, n, overhead, &res[f]);
		printf("%-12s %9lld %9lld | %9lld %9lld %9lld %9lld %9lld | "
		       "%6.1f%% %6.1f%%\n",
		    bench_family_names[f], (long long)res[f].batch_med,
		    (long long)res[f].batch_p99, (long long)res[f].call_med,
		    (long long)res[f].call_p90, (long long)res[f].call_p99,
		    (long long)res[f].call_p999, (long long)res[f].call_max,
		    100.0 * (double)res[f].country_hits / (double)n,
		    100.0 * (double)res[f].zone_hits / (double)n);
	}
	printf("\nbatch: mean of %d consecutive calls (median, p99 over "
	       "batches); call: each call\ntimed alone (its tail includes "
	       "interrupts and other processes); country, zone:\nshare of "
	       "lookups that found one.\n",
	    BENCH_BATCH);
	ret = 0;
out:
	geo_free(g);
	for (f = 0; f < BENCH_NFAMILIES; f++)
		free(addrs[f]);
	if (made) {
		(void)unlink(clist);
		(void)unlink(zlist);
		(void)unlink(cdb);
		(void)unlink(zdb);
		(void)rmdir(tmpdir);
	}
	return ret;
}
