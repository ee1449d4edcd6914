/* SPDX-License-Identifier: ISC */
/* metrics.c - counters per worker thread, summed into Prometheus text. */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509_vfy.h>

#include "compat.h"
#include "conf.h"
#include "connlim.h"
#include "metrics.h"
#include "policy.h"

#define METRICS_TAB_MIN 256 /* first table of a shard, in slots */
#define METRICS_STATUS_MIN 100
#define METRICS_NSTATUS 500   /* statuses 100-599 */
#define METRICS_LIDX_MIN 256  /* first label index, in slots */
#define METRICS_LABELS_MIN 64 /* first label array, in entries */
#define METRICS_LABEL_MAX 24  /* bits of a label id in a key */
#define METRICS_ALIGN 64      /* a shard starts on its own cache line */
#define METRICS_NUM 64        /* bytes of a formatted number */
#define METRICS_MAX_ROWS (2 * 1024 * 1024) /* series gathered per scrape */

_Static_assert(METRICS_MAX_LABELS < (1 << METRICS_LABEL_MAX),
    "label ids must fit in a key");
_Static_assert(POLICY_NREASONS < 128, "reason and decision share a byte");
_Static_assert((METRICS_MAX_SERIES & (METRICS_MAX_SERIES - 1)) == 0,
    "table sizes are powers of two");

/* What a key of a shard's table counts; the family is its top byte. */
enum metrics_fam {
	METRICS_FAM_REQUEST = 1, /* a: department, b: resource, c: reason */
	METRICS_FAM_UPSTREAM,    /* a: upstream, c: kind */
	METRICS_FAM_TLS,         /* a: listener, c: reason */
};

#define METRICS_KEY(fam, a, b, c)                                              \
	((uint64_t)(fam) << 56 | (uint64_t)(a) << 32 | (uint64_t)(b) << 8 |    \
	    (uint64_t)(c))
#define METRICS_KEY_FAM(k) ((unsigned)((k) >> 56))
#define METRICS_KEY_A(k) ((uint32_t)((k) >> 32) & 0xffffffu)
#define METRICS_KEY_B(k) ((uint32_t)((k) >> 8) & 0xffffffu)
#define METRICS_KEY_C(k) ((unsigned)((k)&0xffu))

/*
 * Open addressing, linear probing; written by the shard's thread only.
 * A key is published (release) after its value slot is zero, so a
 * reader that sees a key (acquire) reads a valid count.
 */
struct metrics_tab {
	size_t cap; /* slots, a power of two */
	unsigned shift;
	size_t used;
	_Atomic uint64_t *keys; /* 0: empty */
	_Atomic uint64_t *vals;
	struct metrics_tab *retired; /* smaller tables readers may be on */
};

struct metrics_hist {
	_Atomic uint64_t
	    b[METRICS_NBUCKETS + 1]; /* per bucket, not cumulative */
	_Atomic uint64_t sum_us;
};

/* A summed histogram, for rendering. */
struct metrics_hsum {
	uint64_t b[METRICS_NBUCKETS + 1];
	uint64_t sum_us;
};

struct metrics_shard {
	_Atomic(struct metrics_tab *) tab;
	_Atomic uint64_t opened, closed, dropped;
	struct metrics_hist req, up;
	_Atomic uint64_t status[METRICS_NSTATUS];
};

struct metrics_gen {
	atomic_int refs;
	uint32_t *dept, *res, *up, *lis; /* index -> label id */
	size_t ndept, nres, nup, nlis;
	/* What the info series show while this generation is in force. */
	char *revision, *sha256;
	char **dept_name;
	char **res_name;
	uint32_t *res_owner;
	const char **res_sharing;
	char **res_class;
};

struct metrics_cert_row {
	uint32_t listener;
	unsigned have; /* bit per enum metrics_cert */
	int64_t when[METRICS_CERT_NKINDS];
};

struct metrics {
	size_t nshards;
	struct metrics_shard **shards;
	struct metrics_hist lag; /* any thread: atomic additions */
	_Atomic uint64_t reloads_ok, reloads_failed;
	int64_t started;

	pthread_mutex_t mtx; /* the fields below */
	char **labels;       /* label id -> string; 0 is "" (none) */
	size_t nlabels, labcap;
	uint32_t *lidx; /* open addressing over labels; 0: empty */
	size_t lidxcap;
	struct metrics_gen *current;
	struct metrics_cert_row *certs;
	size_t ncerts;
};

/* One merged series while rendering. */
struct metrics_row {
	uint64_t key;
	uint64_t v;
	const char *a, *b;
};

struct metrics_rows {
	struct metrics_row *v;
	size_t n, cap;
	int failed;
};

/* The text being rendered. */
struct metrics_out {
	char *p;
	size_t len, cap;
	int failed;
};

static const uint64_t metrics_bounds_us[METRICS_NBUCKETS] = {
	500,
	1000,
	2500,
	5000,
	10000,
	25000,
	50000,
	100000,
	250000,
	500000,
	1000000,
	2500000,
	5000000,
	10000000,
};

static const char *const metrics_bounds_le[METRICS_NBUCKETS + 1] = {
	"0.0005",
	"0.001",
	"0.0025",
	"0.005",
	"0.01",
	"0.025",
	"0.05",
	"0.1",
	"0.25",
	"0.5",
	"1",
	"2.5",
	"5",
	"10",
	"+Inf",
};

static const char *const metrics_tls_names[METRICS_TLS_NFAILS] = {
	[METRICS_TLS_NO_CERTIFICATE] = "no_certificate",
	[METRICS_TLS_CERT_EXPIRED] = "certificate_expired",
	[METRICS_TLS_CERT_NOT_YET_VALID] = "certificate_not_yet_valid",
	[METRICS_TLS_CERT_REVOKED] = "certificate_revoked",
	[METRICS_TLS_UNKNOWN_CA] = "unknown_ca",
	[METRICS_TLS_CRL] = "crl",
	[METRICS_TLS_CERT_INVALID] = "certificate_invalid",
	[METRICS_TLS_PROTOCOL] = "protocol",
	[METRICS_TLS_TIMEOUT] = "timeout",
	[METRICS_TLS_CLOSED] = "closed",
	[METRICS_TLS_OTHER] = "other",
};

static const char *const metrics_up_names[METRICS_UP_NKINDS] = {
	[METRICS_UP_CONNECT] = "connect",
	[METRICS_UP_TIMEOUT] = "timeout",
	[METRICS_UP_RESET] = "reset",
	[METRICS_UP_BAD_RESPONSE] = "bad_response",
	[METRICS_UP_TLS] = "tls",
};

static const struct {
	const char *name;
	const char *help;
} metrics_cert_fams[METRICS_CERT_NKINDS] = {
	[METRICS_CERT_SERVER] = { "certificate_not_after_seconds",
	    "notAfter of the listener's certificate, epoch seconds." },
	[METRICS_CERT_CLIENT_CA] = { "client_ca_not_after_seconds",
	    "Soonest notAfter among the listener's client CAs, epoch "
	    "seconds." },
	[METRICS_CERT_CRL] = { "crl_next_update_seconds",
	    "Soonest nextUpdate among the listener's CRLs, epoch seconds." },
};

/* ---- counting ---- */

/* Add n to a counter only the calling thread writes: no lock prefix. */
static inline void
metrics_inc(_Atomic uint64_t *p, uint64_t n)
{
	atomic_store_explicit(p,
	    atomic_load_explicit(p, memory_order_relaxed) + n,
	    memory_order_relaxed);
}

static inline uint64_t
metrics_get(_Atomic uint64_t *p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

static size_t
metrics_bucket(int64_t us)
{
	uint64_t v = us < 0 ? 0 : (uint64_t)us;
	size_t i = 0;

	/* Prometheus buckets are upper bounds, inclusive: v <= le. */
	while (i < METRICS_NBUCKETS && v > metrics_bounds_us[i])
		i++;
	return i;
}

static void
metrics_hist_add(struct metrics_hist *h, int64_t us)
{
	metrics_inc(&h->b[metrics_bucket(us)], 1);
	metrics_inc(&h->sum_us, us < 0 ? 0 : (uint64_t)us);
}

static void
metrics_hist_add_shared(struct metrics_hist *h, int64_t us)
{
	atomic_fetch_add_explicit(&h->b[metrics_bucket(us)], 1,
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, us < 0 ? 0 : (uint64_t)us,
	    memory_order_relaxed);
}

static void
metrics_hist_sum(struct metrics_hsum *d, struct metrics_hist *h)
{
	size_t i;

	for (i = 0; i <= METRICS_NBUCKETS; i++)
		d->b[i] += metrics_get(&h->b[i]);
	d->sum_us += metrics_get(&h->sum_us);
}

static struct metrics_tab *
metrics_tab_new(size_t cap)
{
	struct metrics_tab *t;
	unsigned bits = 0;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->keys = calloc(cap, sizeof(*t->keys));
	t->vals = calloc(cap, sizeof(*t->vals));
	if (t->keys == NULL || t->vals == NULL) {
		free(t->keys);
		free(t->vals);
		free(t);
		return NULL;
	}
	while (((size_t)1 << bits) < cap)
		bits++;
	t->cap = cap;
	t->shift = 64 - bits;
	return t;
}

static void
metrics_tab_free(struct metrics_tab *t)
{
	struct metrics_tab *next;

	for (; t != NULL; t = next) {
		next = t->retired;
		free(t->keys);
		free(t->vals);
		free(t);
	}
}

static size_t
metrics_tab_home(const struct metrics_tab *t, uint64_t key)
{
	return (size_t)((key * UINT64_C(0x9e3779b97f4a7c15)) >> t->shift);
}

/* Claim a slot for key, which is not in t; t has room. */
static _Atomic uint64_t *
metrics_tab_put(struct metrics_tab *t, uint64_t key)
{
	size_t i = metrics_tab_home(t, key), mask = t->cap - 1;

	while (atomic_load_explicit(&t->keys[i], memory_order_relaxed) != 0)
		i = (i + 1) & mask;
	atomic_store_explicit(&t->keys[i], key, memory_order_release);
	t->used++;
	return &t->vals[i];
}

/*
 * Double the shard's table: copy, then publish. The old table stays
 * allocated (a scrape may be reading it) until the shard is freed; the
 * sizes form a geometric series, so that costs less than the new one.
 */
static struct metrics_tab *
metrics_tab_grow(struct metrics_shard *s, struct metrics_tab *t)
{
	struct metrics_tab *n;
	_Atomic uint64_t *v;
	uint64_t k;
	size_t i;

	if (t->cap * 2 > METRICS_MAX_SERIES ||
	    (n = metrics_tab_new(t->cap * 2)) == NULL)
		return NULL;
	for (i = 0; i < t->cap; i++) {
		k = atomic_load_explicit(&t->keys[i], memory_order_relaxed);
		if (k == 0)
			continue;
		v = metrics_tab_put(n, k);
		atomic_store_explicit(v, metrics_get(&t->vals[i]),
		    memory_order_relaxed);
	}
	n->retired = t;
	atomic_store_explicit(&s->tab, n, memory_order_release);
	return n;
}

/* The counter of key in s, created at zero; NULL when the table is full. */
static _Atomic uint64_t *
metrics_slot(struct metrics_shard *s, uint64_t key)
{
	struct metrics_tab *t =
	    atomic_load_explicit(&s->tab, memory_order_relaxed);
	size_t i, mask = t->cap - 1;
	uint64_t k;

	for (i = metrics_tab_home(t, key);; i = (i + 1) & mask) {
		k = atomic_load_explicit(&t->keys[i], memory_order_relaxed);
		if (k == key)
			return &t->vals[i];
		if (k == 0)
			break;
	}
	if ((t->used + 1) * 4 > t->cap * 3 &&
	    (t = metrics_tab_grow(s, t)) == NULL)
		return NULL;
	return metrics_tab_put(t, key);
}

static void
metrics_count(struct metrics_shard *s, uint64_t key)
{
	_Atomic uint64_t *p;

	if ((p = metrics_slot(s, key)) == NULL)
		metrics_inc(&s->dropped, 1);
	else
		metrics_inc(p, 1);
}

/*
 * Count one decided request. The decision and reason are the ones the
 * client got (e.g. deny audit_unavailable after a policy allow).
 */
void
metrics_request(struct metrics_shard *s, const struct metrics_gen *g,
    const struct policy_department *dept, const struct policy_resource *res,
    int allow, enum policy_reason reason)
{
	uint32_t d = 0, r = 0;
	unsigned c;

	if (g != NULL && dept != NULL && dept->index < g->ndept)
		d = g->dept[dept->index];
	if (g != NULL && res != NULL && res->index < g->nres)
		r = g->res[res->index];
	if ((unsigned)reason >= POLICY_NREASONS)
		reason = POLICY_R_NONE;
	c = (unsigned)reason << 1 | (allow != 0);
	metrics_count(s, METRICS_KEY(METRICS_FAM_REQUEST, d, r, c));
}

/* Count a status sent to a client; others than 100-599 are ignored. */
void
metrics_response(struct metrics_shard *s, int status)
{
	if (status >= METRICS_STATUS_MIN &&
	    status < METRICS_STATUS_MIN + METRICS_NSTATUS)
		metrics_inc(&s->status[status - METRICS_STATUS_MIN], 1);
}

/* Observe a request's duration (negative counts as 0). */
void
metrics_request_time(struct metrics_shard *s, int64_t us)
{
	metrics_hist_add(&s->req, us);
}

/* Observe an upstream's time to its response head. */
void
metrics_upstream_time(struct metrics_shard *s, int64_t us)
{
	metrics_hist_add(&s->up, us);
}

/* Count an upstream failure of upstream ui (config index) in g. */
void
metrics_upstream_error(struct metrics_shard *s, const struct metrics_gen *g,
    size_t ui, enum metrics_upstream_error kind)
{
	uint32_t u = 0;

	if (g != NULL && ui < g->nup)
		u = g->up[ui];
	if ((unsigned)kind >= METRICS_UP_NKINDS)
		kind = METRICS_UP_BAD_RESPONSE;
	metrics_count(s, METRICS_KEY(METRICS_FAM_UPSTREAM, u, 0, kind));
}

/* Count a failed client handshake on listener li (config index) of g. */
void
metrics_tls_failure(struct metrics_shard *s, const struct metrics_gen *g,
    size_t li, enum metrics_tls_fail why)
{
	uint32_t l = 0;

	if (g != NULL && li < g->nlis)
		l = g->lis[li];
	if ((unsigned)why >= METRICS_TLS_NFAILS)
		why = METRICS_TLS_OTHER;
	metrics_count(s, METRICS_KEY(METRICS_FAM_TLS, l, 0, why));
}

/* A connection was accepted by the shard's worker. */
void
metrics_conn_opened(struct metrics_shard *s)
{
	metrics_inc(&s->opened, 1);
}

/* A connection of the shard's worker ended (open = opened - closed). */
void
metrics_conn_closed(struct metrics_shard *s)
{
	metrics_inc(&s->closed, 1);
}

/* Observe one audit record's submit-to-durable time. Any thread. */
void
metrics_audit_lag(struct metrics *m, int64_t us)
{
	metrics_hist_add_shared(&m->lag, us);
}

/* Count a reload attempt. Any thread. */
void
metrics_count_reload(struct metrics *m, int ok)
{
	atomic_fetch_add_explicit(ok ? &m->reloads_ok : &m->reloads_failed, 1,
	    memory_order_relaxed);
}

/* Map an X509_V_ERR code of a failed client verification to a category. */
enum metrics_tls_fail
metrics_tls_fail_from_verify(long v)
{
	switch (v) {
	case X509_V_OK:
		return METRICS_TLS_NO_CERTIFICATE;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return METRICS_TLS_CERT_EXPIRED;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return METRICS_TLS_CERT_NOT_YET_VALID;
	case X509_V_ERR_CERT_REVOKED:
		return METRICS_TLS_CERT_REVOKED;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_UNTRUSTED:
		return METRICS_TLS_UNKNOWN_CA;
	case X509_V_ERR_UNABLE_TO_GET_CRL:
	case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
	case X509_V_ERR_CRL_HAS_EXPIRED:
	case X509_V_ERR_CRL_NOT_YET_VALID:
	case X509_V_ERR_CRL_SIGNATURE_FAILURE:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
	case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
	case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
	case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
	case X509_V_ERR_DIFFERENT_CRL_SCOPE:
		return METRICS_TLS_CRL;
	default:
		return METRICS_TLS_CERT_INVALID;
	}
}

const char *
metrics_tls_fail_str(enum metrics_tls_fail why)
{
	return (unsigned)why < METRICS_TLS_NFAILS ? metrics_tls_names[why]
	                                          : "other";
}

const char *
metrics_upstream_error_str(enum metrics_upstream_error kind)
{
	return (unsigned)kind < METRICS_UP_NKINDS ? metrics_up_names[kind]
	                                          : "other";
}

/* ---- the registry ---- */

static struct metrics_shard *
metrics_shard_new(void)
{
	struct metrics_shard *s;
	struct metrics_tab *t;
	size_t sz =
	    (sizeof(*s) + METRICS_ALIGN - 1) & ~(size_t)(METRICS_ALIGN - 1);
	void *mem = NULL;

	if (posix_memalign(&mem, METRICS_ALIGN, sz) != 0)
		return NULL;
	memset(mem, 0, sz);
	s = mem;
	if ((t = metrics_tab_new(METRICS_TAB_MIN)) == NULL) {
		free(s);
		return NULL;
	}
	atomic_init(&s->tab, t);
	return s;
}

static void
metrics_shard_free(struct metrics_shard *s)
{
	if (s == NULL)
		return;
	metrics_tab_free(atomic_load(&s->tab));
	free(s);
}

/*
 * A registry for nshards worker threads. Returns an owned registry, or
 * NULL with a reason in err.
 */
struct metrics *
metrics_new(size_t nshards, char *err, size_t errlen)
{
	struct metrics *m = NULL;
	struct timespec ts;
	size_t i;

	if (nshards == 0 || nshards > CONF_MAX_WORKERS) {
		snprintf(err, errlen, "metrics: %zu shards (1-%d)", nshards,
		    CONF_MAX_WORKERS);
		return NULL;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL)
		goto oom;
	if (pthread_mutex_init(&m->mtx, NULL) != 0) {
		free(m);
		m = NULL;
		goto oom;
	}
	m->nshards = nshards;
	clock_gettime(CLOCK_REALTIME, &ts);
	m->started = (int64_t)ts.tv_sec;
	m->shards = calloc(nshards, sizeof(*m->shards));
	m->labcap = METRICS_LABELS_MIN;
	m->labels = calloc(m->labcap, sizeof(*m->labels));
	m->lidxcap = METRICS_LIDX_MIN;
	m->lidx = calloc(m->lidxcap, sizeof(*m->lidx));
	if (m->shards == NULL || m->labels == NULL || m->lidx == NULL ||
	    (m->labels[0] = strdup("")) == NULL)
		goto oom;
	m->nlabels = 1;
	for (i = 0; i < nshards; i++)
		if ((m->shards[i] = metrics_shard_new()) == NULL)
			goto oom;
	return m;
oom:
	snprintf(err, errlen, "metrics: out of memory");
	metrics_free(m);
	return NULL;
}

void
metrics_free(struct metrics *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; m->shards != NULL && i < m->nshards; i++)
		metrics_shard_free(m->shards[i]);
	free(m->shards);
	for (i = 0; i < m->nlabels; i++)
		free(m->labels[i]);
	free(m->labels);
	free(m->lidx);
	free(m->certs);
	metrics_gen_unref(m->current);
	pthread_mutex_destroy(&m->mtx);
	free(m);
}

size_t
metrics_nshards(const struct metrics *m)
{
	return m->nshards;
}

struct metrics_shard *
metrics_shard_at(struct metrics *m, size_t i)
{
	return i < m->nshards ? m->shards[i] : NULL;
}

static uint64_t
metrics_strhash(const char *s)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

/* Rebuild the label index at twice its size. Called with the lock. */
static int
metrics_lidx_grow(struct metrics *m)
{
	size_t cap = m->lidxcap * 2, i, j;
	uint32_t *v;

	if ((v = calloc(cap, sizeof(*v))) == NULL)
		return -1;
	for (i = 1; i < m->nlabels; i++) {
		j = (size_t)metrics_strhash(m->labels[i]) & (cap - 1);
		while (v[j] != 0)
			j = (j + 1) & (cap - 1);
		v[j] = (uint32_t)i;
	}
	free(m->lidx);
	m->lidx = v;
	m->lidxcap = cap;
	return 0;
}

/*
 * The label id of s, interned on first sight ("" is 0). Returns 0 and
 * the id in *id, or -1 when memory or METRICS_MAX_LABELS runs out. Called
 * with the lock.
 */
static int
metrics_intern(struct metrics *m, const char *s, uint32_t *id)
{
	size_t j, mask = m->lidxcap - 1;
	char **nl;
	uint32_t k;

	*id = 0;
	if (s == NULL || *s == '\0')
		return 0;
	for (j = (size_t)metrics_strhash(s) & mask;; j = (j + 1) & mask) {
		if ((k = m->lidx[j]) == 0)
			break;
		if (strcmp(m->labels[k], s) == 0) {
			*id = k;
			return 0;
		}
	}
	if (m->nlabels >= METRICS_MAX_LABELS)
		return -1;
	if (m->nlabels == m->labcap) {
		nl = reallocarray(m->labels, m->labcap * 2, sizeof(*nl));
		if (nl == NULL)
			return -1;
		m->labels = nl;
		m->labcap *= 2;
	}
	if ((m->labels[m->nlabels] = strdup(s)) == NULL)
		return -1;
	k = (uint32_t)m->nlabels++;
	m->lidx[j] = k;
	if (m->nlabels * 2 > m->lidxcap && metrics_lidx_grow(m) == -1) {
		/* Keep the index consistent: forget the new label. */
		m->lidx[j] = 0;
		free(m->labels[--m->nlabels]);
		return -1;
	}
	*id = k;
	return 0;
}

static void
metrics_gen_free(struct metrics_gen *g)
{
	size_t i;

	for (i = 0; g->dept_name != NULL && i < g->ndept; i++)
		free(g->dept_name[i]);
	for (i = 0; g->res_name != NULL && i < g->nres; i++)
		free(g->res_name[i]);
	for (i = 0; g->res_class != NULL && i < g->nres; i++)
		free(g->res_class[i]);
	free(g->dept);
	free(g->res);
	free(g->up);
	free(g->lis);
	free(g->revision);
	free(g->sha256);
	free(g->dept_name);
	free(g->res_name);
	free(g->res_owner);
	free(g->res_sharing);
	free(g->res_class);
	free(g);
}

void
metrics_gen_ref(struct metrics_gen *g)
{
	atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
}

void
metrics_gen_unref(struct metrics_gen *g)
{
	if (g == NULL)
		return;
	if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) == 1)
		metrics_gen_free(g);
}

static char *
metrics_strdup(const char *s, int *failed)
{
	char *d;

	if ((d = strdup(s != NULL ? s : "")) == NULL)
		*failed = 1;
	return d;
}

/* Intern the ids of one generation. Called with the lock. */
static int
metrics_gen_intern(struct metrics *m, struct metrics_gen *g,
    const struct policy *p, const struct conf *c)
{
	const struct policy_department *d;
	const struct policy_resource *r;
	size_t i;

	for (i = 0; i < g->ndept; i++) {
		d = policy_department_at(p, i);
		if (metrics_intern(m, d->id, &g->dept[i]) == -1)
			return -1;
	}
	for (i = 0; i < g->nres; i++) {
		r = policy_resource_at(p, i);
		if (metrics_intern(m, r->id, &g->res[i]) == -1 ||
		    metrics_intern(m, r->owner != NULL ? r->owner->id : NULL,
		        &g->res_owner[i]) == -1)
			return -1;
	}
	for (i = 0; i < g->nup; i++)
		if (metrics_intern(m, c->upstreams[i].name, &g->up[i]) == -1)
			return -1;
	for (i = 0; i < g->nlis; i++)
		if (metrics_intern(m, c->listeners[i].name, &g->lis[i]) == -1)
			return -1;
	return 0;
}

/*
 * Build the generation of policy p and config c (either may be NULL: no
 * departments and resources, or no upstreams and listeners).
 */
struct metrics_gen *
metrics_gen_new(struct metrics *m, const struct policy *p, const struct conf *c,
    char *err, size_t errlen)
{
	const struct policy_department *d;
	const struct policy_resource *r;
	struct metrics_gen *g;
	int failed = 0, rc;
	size_t i;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		goto oom;
	atomic_init(&g->refs, 1);
	g->ndept = p != NULL ? policy_ndepartments(p) : 0;
	g->nres = p != NULL ? policy_nresources(p) : 0;
	g->nup = c != NULL ? c->nupstreams : 0;
	g->nlis = c != NULL ? c->nlisteners : 0;
	/* One more element each: calloc(0) may return NULL. */
	g->dept = calloc(g->ndept + 1, sizeof(*g->dept));
	g->dept_name = calloc(g->ndept + 1, sizeof(*g->dept_name));
	g->res = calloc(g->nres + 1, sizeof(*g->res));
	g->res_name = calloc(g->nres + 1, sizeof(*g->res_name));
	g->res_owner = calloc(g->nres + 1, sizeof(*g->res_owner));
	g->res_sharing = calloc(g->nres + 1, sizeof(*g->res_sharing));
	g->res_class = calloc(g->nres + 1, sizeof(*g->res_class));
	g->up = calloc(g->nup + 1, sizeof(*g->up));
	g->lis = calloc(g->nlis + 1, sizeof(*g->lis));
	if (g->dept == NULL || g->dept_name == NULL || g->res == NULL ||
	    g->res_name == NULL || g->res_owner == NULL ||
	    g->res_sharing == NULL || g->res_class == NULL || g->up == NULL ||
	    g->lis == NULL)
		goto oom;
	if (p != NULL) {
		g->revision = metrics_strdup(policy_revision(p), &failed);
		g->sha256 = metrics_strdup(policy_sha256(p), &failed);
	}
	for (i = 0; i < g->ndept; i++) {
		d = policy_department_at(p, i);
		g->dept_name[i] = metrics_strdup(d->name, &failed);
	}
	for (i = 0; i < g->nres; i++) {
		r = policy_resource_at(p, i);
		g->res_name[i] = metrics_strdup(r->name, &failed);
		g->res_sharing[i] = policy_sharing_str(r->sharing);
		g->res_class[i] = metrics_strdup(
		    policy_level_str(p, r->classification), &failed);
	}
	if (failed)
		goto oom;
	pthread_mutex_lock(&m->mtx);
	rc = metrics_gen_intern(m, g, p, c);
	pthread_mutex_unlock(&m->mtx);
	if (rc == -1) {
		snprintf(err, errlen,
		    "metrics: out of memory or more than %d label values",
		    METRICS_MAX_LABELS);
		metrics_gen_free(g);
		return NULL;
	}
	return g;
oom:
	snprintf(err, errlen, "metrics: out of memory");
	if (g != NULL)
		metrics_gen_free(g);
	return NULL;
}

void
metrics_set_policy(struct metrics *m, struct metrics_gen *g)
{
	struct metrics_gen *old;

	if (g != NULL)
		metrics_gen_ref(g);
	pthread_mutex_lock(&m->mtx);
	old = m->current;
	m->current = g;
	pthread_mutex_unlock(&m->mtx);
	metrics_gen_unref(old);
}

int
metrics_cert_set(struct metrics *m, const char *listener,
    enum metrics_cert which, int64_t when)
{
	struct metrics_cert_row *row = NULL, *v;
	uint32_t id;
	size_t i;
	int ret = -1;

	if ((unsigned)which >= METRICS_CERT_NKINDS)
		return -1;
	pthread_mutex_lock(&m->mtx);
	if (metrics_intern(m, listener, &id) == -1)
		goto out;
	for (i = 0; i < m->ncerts; i++)
		if (m->certs[i].listener == id)
			row = &m->certs[i];
	if (row == NULL) {
		if (when == METRICS_CERT_UNKNOWN) {
			ret = 0;
			goto out;
		}
		if (m->ncerts >= METRICS_MAX_CERTS ||
		    (v = reallocarray(m->certs, m->ncerts + 1, sizeof(*v))) ==
		        NULL)
			goto out;
		m->certs = v;
		row = &m->certs[m->ncerts++];
		memset(row, 0, sizeof(*row));
		row->listener = id;
	}
	if (when == METRICS_CERT_UNKNOWN)
		row->have &= ~(1u << which);
	else {
		row->have |= 1u << which;
		row->when[which] = when;
	}
	ret = 0;
out:
	pthread_mutex_unlock(&m->mtx);
	return ret;
}

/* ---- escaping ---- */

/* Bytes of the valid UTF-8 sequence at s (len > 0), or 0 when invalid. */
static size_t
metrics_utf8_len(const unsigned char *s, size_t len)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		if (s[0] == 0xe0)
			lo = 0xa0; /* overlong */
		else if (s[0] == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		if (s[0] == 0xf0)
			lo = 0x90; /* overlong */
		else if (s[0] == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else
		return 0;
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/*
 * Escape s[0, len) as a label value into dst (when not NULL). Returns
 * the escaped length either way.
 */
static size_t
metrics_escape(const char *s, size_t len, char *dst)
{
	const unsigned char *u = (const unsigned char *)s;
	const char *rep;
	size_t i = 0, o = 0, n, rn;

	while (i < len) {
		rep = NULL;
		n = 1;
		if (u[i] == '\\')
			rep = "\\\\";
		else if (u[i] == '"')
			rep = "\\\"";
		else if (u[i] == '\n')
			rep = "\\n";
		else if ((n = metrics_utf8_len(u + i, len - i)) == 0) {
			rep = "\xef\xbf\xbd"; /* U+FFFD for a bad byte */
			n = 1;
		}
		if (rep != NULL) {
			rn = strlen(rep);
			if (dst != NULL)
				memcpy(dst + o, rep, rn);
			o += rn;
		} else {
			if (dst != NULL)
				memcpy(dst + o, s + i, n);
			o += n;
		}
		i += n;
	}
	return o;
}

int
metrics_label_escape(const char *s, size_t len, char *dst, size_t dstsz)
{
	size_t n = metrics_escape(s, len, NULL);

	if (n >= dstsz || n > INT32_MAX)
		return -1;
	metrics_escape(s, len, dst);
	dst[n] = '\0';
	return (int)n;
}

/* ---- rendering ---- */

static int
metrics_out_room(struct metrics_out *o, size_t n)
{
	size_t cap;
	char *p;

	if (o->failed)
		return -1;
	if (n > METRICS_MAX_RENDER || o->len + n + 1 > METRICS_MAX_RENDER) {
		o->failed = 1;
		return -1;
	}
	if (o->len + n + 1 <= o->cap)
		return 0;
	cap = o->cap != 0 ? o->cap : 16384;
	while (cap < o->len + n + 1)
		cap *= 2;
	if (cap > METRICS_MAX_RENDER)
		cap = METRICS_MAX_RENDER;
	if ((p = realloc(o->p, cap)) == NULL) {
		o->failed = 1;
		return -1;
	}
	o->p = p;
	o->cap = cap;
	return 0;
}

static void
metrics_out_add(struct metrics_out *o, const char *s, size_t n)
{
	if (metrics_out_room(o, n) == -1)
		return;
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

static void
metrics_out_str(struct metrics_out *o, const char *s)
{
	metrics_out_add(o, s, strlen(s));
}

static void
metrics_out_label(struct metrics_out *o, const char *s)
{
	size_t len = strlen(s), n = metrics_escape(s, len, NULL);

	if (metrics_out_room(o, n) == -1)
		return;
	metrics_escape(s, len, o->p + o->len);
	o->len += n;
	o->p[o->len] = '\0';
}

/* HELP and TYPE of family govgate_<name>. */
static void
metrics_out_head(struct metrics_out *o, const char *name, const char *type,
    const char *help)
{
	metrics_out_str(o, "# HELP govgate_");
	metrics_out_str(o, name);
	metrics_out_str(o, " ");
	metrics_out_str(o, help);
	metrics_out_str(o, "\n# TYPE govgate_");
	metrics_out_str(o, name);
	metrics_out_str(o, " ");
	metrics_out_str(o, type);
	metrics_out_str(o, "\n");
}

/*
 * One sample: govgate_<name>{k="v",...} value. lv holds label names and
 * values in turn, NULL-terminated (NULL itself for none).
 */
static void
metrics_out_sample(struct metrics_out *o, const char *name,
    const char *const *lv, const char *value)
{
	size_t i;

	metrics_out_str(o, "govgate_");
	metrics_out_str(o, name);
	for (i = 0; lv != NULL && lv[i] != NULL; i += 2) {
		metrics_out_str(o, i == 0 ? "{" : ",");
		metrics_out_str(o, lv[i]);
		metrics_out_str(o, "=\"");
		metrics_out_label(o, lv[i + 1]);
		metrics_out_str(o, "\"");
	}
	if (i > 0)
		metrics_out_str(o, "}");
	metrics_out_str(o, " ");
	metrics_out_str(o, value);
	metrics_out_str(o, "\n");
}

static const char *
metrics_u64(char *buf, uint64_t v)
{
	snprintf(buf, METRICS_NUM, "%llu", (unsigned long long)v);
	return buf;
}

static const char *
metrics_i64(char *buf, int64_t v)
{
	snprintf(buf, METRICS_NUM, "%lld", (long long)v);
	return buf;
}

/* Microseconds as seconds, exactly: 1500 is "0.001500". */
static const char *
metrics_secs(char *buf, uint64_t us)
{
	snprintf(buf, METRICS_NUM, "%llu.%06llu",
	    (unsigned long long)(us / 1000000),
	    (unsigned long long)(us % 1000000));
	return buf;
}

static void
metrics_out_counter(struct metrics_out *o, const char *name, const char *help,
    uint64_t v)
{
	char num[METRICS_NUM];

	metrics_out_head(o, name, "counter", help);
	metrics_out_sample(o, name, NULL, metrics_u64(num, v));
}

static void
metrics_out_gauge(struct metrics_out *o, const char *name, const char *help,
    int64_t v)
{
	char num[METRICS_NUM];

	metrics_out_head(o, name, "gauge", help);
	metrics_out_sample(o, name, NULL, metrics_i64(num, v));
}

static void
metrics_out_hist(struct metrics_out *o, const char *name, const char *help,
    const struct metrics_hsum *h)
{
	char num[METRICS_NUM], fam[96];
	const char *lv[3] = { "le", NULL, NULL };
	uint64_t cum = 0;
	size_t i;

	metrics_out_head(o, name, "histogram", help);
	snprintf(fam, sizeof(fam), "%s_bucket", name);
	for (i = 0; i <= METRICS_NBUCKETS; i++) {
		cum += h->b[i];
		lv[1] = metrics_bounds_le[i];
		metrics_out_sample(o, fam, lv, metrics_u64(num, cum));
	}
	snprintf(fam, sizeof(fam), "%s_sum", name);
	metrics_out_sample(o, fam, NULL, metrics_secs(num, h->sum_us));
	snprintf(fam, sizeof(fam), "%s_count", name);
	metrics_out_sample(o, fam, NULL, metrics_u64(num, cum));
}

static void
metrics_rows_add(struct metrics_rows *r, uint64_t key, uint64_t v)
{
	struct metrics_row *nv;
	size_t cap;

	if (r->failed)
		return;
	if (r->n >= METRICS_MAX_ROWS) {
		r->failed = 1;
		return;
	}
	if (r->n == r->cap) {
		cap = r->cap != 0 ? r->cap * 2 : 1024;
		if ((nv = reallocarray(r->v, cap, sizeof(*nv))) == NULL) {
			r->failed = 1;
			return;
		}
		r->v = nv;
		r->cap = cap;
	}
	r->v[r->n].key = key;
	r->v[r->n].v = v;
	r->v[r->n].a = r->v[r->n].b = NULL;
	r->n++;
}

static int
metrics_row_key_cmp(const void *x, const void *y)
{
	const struct metrics_row *a = x, *b = y;

	return a->key < b->key ? -1 : a->key > b->key;
}

/* Family, then label strings, then the small field: a stable order. */
static int
metrics_row_label_cmp(const void *x, const void *y)
{
	const struct metrics_row *a = x, *b = y;
	int rc;

	if (METRICS_KEY_FAM(a->key) != METRICS_KEY_FAM(b->key))
		return METRICS_KEY_FAM(a->key) < METRICS_KEY_FAM(b->key) ? -1
		                                                         : 1;
	if ((rc = strcmp(a->a, b->a)) != 0 || (rc = strcmp(a->b, b->b)) != 0)
		return rc;
	return METRICS_KEY_C(a->key) < METRICS_KEY_C(b->key) ? -1
	    : METRICS_KEY_C(a->key) > METRICS_KEY_C(b->key)  ? 1
	                                                     : 0;
}

/*
 * Every table series of every shard, summed per key, with label strings
 * and in rendering order. The current generation's upstream and listener
 * series are present at zero, so rate() works from their first failure.
 * Called with the lock.
 */
static void
metrics_collect(struct metrics *m, struct metrics_rows *r)
{
	struct metrics_tab *t;
	const struct metrics_gen *g = m->current;
	uint64_t k;
	size_t i, j, n;

	for (i = 0; i < m->nshards; i++) {
		t = atomic_load_explicit(&m->shards[i]->tab,
		    memory_order_acquire);
		for (j = 0; j < t->cap; j++) {
			k = atomic_load_explicit(&t->keys[j],
			    memory_order_acquire);
			if (k != 0)
				metrics_rows_add(r, k,
				    metrics_get(&t->vals[j]));
		}
	}
	for (i = 0; g != NULL && i < g->nup; i++)
		for (j = 0; j < METRICS_UP_NKINDS; j++)
			metrics_rows_add(r,
			    METRICS_KEY(METRICS_FAM_UPSTREAM, g->up[i], 0, j),
			    0);
	for (i = 0; g != NULL && i < g->nlis; i++)
		for (j = 0; j < METRICS_TLS_NFAILS; j++)
			metrics_rows_add(r,
			    METRICS_KEY(METRICS_FAM_TLS, g->lis[i], 0, j), 0);
	if (r->failed || r->n == 0)
		return;
	qsort(r->v, r->n, sizeof(*r->v), metrics_row_key_cmp);
	for (i = 1, n = 1; i < r->n; i++) {
		if (r->v[i].key == r->v[n - 1].key)
			r->v[n - 1].v += r->v[i].v;
		else
			r->v[n++] = r->v[i];
	}
	r->n = n;
	for (i = 0; i < r->n; i++) {
		k = r->v[i].key;
		r->v[i].a = METRICS_KEY_A(k) < m->nlabels
		    ? m->labels[METRICS_KEY_A(k)]
		    : "";
		r->v[i].b = METRICS_KEY_B(k) < m->nlabels
		    ? m->labels[METRICS_KEY_B(k)]
		    : "";
	}
	qsort(r->v, r->n, sizeof(*r->v), metrics_row_label_cmp);
}

static void
metrics_render_requests(struct metrics_out *o, const struct metrics_rows *r)
{
	const char *lv[9] = { "department", NULL, "resource", NULL, "decision",
		NULL, "reason", NULL, NULL };
	char num[METRICS_NUM];
	unsigned c;
	size_t i;

	metrics_out_head(o, "requests_total", "counter",
	    "Requests decided, by department, resource, decision and reason "
	    "(empty: not known when the request was refused).");
	for (i = 0; i < r->n; i++) {
		if (METRICS_KEY_FAM(r->v[i].key) != METRICS_FAM_REQUEST)
			continue;
		c = METRICS_KEY_C(r->v[i].key);
		lv[1] = r->v[i].a;
		lv[3] = r->v[i].b;
		lv[5] = c & 1 ? "allow" : "deny";
		lv[7] = policy_reason_str((enum policy_reason)(c >> 1));
		metrics_out_sample(o, "requests_total", lv,
		    metrics_u64(num, r->v[i].v));
	}
}

static void
metrics_render_pairs(struct metrics_out *o, const struct metrics_rows *r,
    unsigned fam, const char *name, const char *la, const char *lc,
    const char *help)
{
	const char *lv[5] = { la, NULL, lc, NULL, NULL };
	char num[METRICS_NUM];
	unsigned c;
	size_t i;

	metrics_out_head(o, name, "counter", help);
	for (i = 0; i < r->n; i++) {
		if (METRICS_KEY_FAM(r->v[i].key) != fam)
			continue;
		c = METRICS_KEY_C(r->v[i].key);
		lv[1] = r->v[i].a;
		lv[3] = fam == METRICS_FAM_UPSTREAM
		    ? metrics_upstream_error_str((enum metrics_upstream_error)c)
		    : metrics_tls_fail_str((enum metrics_tls_fail)c);
		metrics_out_sample(o, name, lv, metrics_u64(num, r->v[i].v));
	}
}

/* Build, policy and reload series. Called with the lock. */
static void
metrics_render_info(struct metrics *m, struct metrics_out *o)
{
	const struct metrics_gen *g = m->current;
	const char *lv[11];
	char num[METRICS_NUM];
	size_t i;

	metrics_out_head(o, "build_info", "gauge",
	    "Always 1; the version of the running gateway.");
	lv[0] = "version";
	lv[1] = PACKAGE_VERSION;
	lv[2] = NULL;
	metrics_out_sample(o, "build_info", lv, "1");
	metrics_out_gauge(o, "start_time_seconds",
	    "When the gateway started, epoch seconds.", m->started);

	metrics_out_head(o, "policy_info", "gauge",
	    "Always 1; the revision and SHA-256 of the policy in force.");
	if (g != NULL) {
		lv[0] = "revision";
		lv[1] = g->revision != NULL ? g->revision : "";
		lv[2] = "sha256";
		lv[3] = g->sha256 != NULL ? g->sha256 : "";
		lv[4] = NULL;
		metrics_out_sample(o, "policy_info", lv, "1");
	}
	metrics_out_head(o, "policy_reloads_total", "counter",
	    "Reloads (SIGHUP), by result: ok swapped in, failed kept the "
	    "running set.");
	lv[0] = "result";
	lv[1] = "ok";
	lv[2] = NULL;
	metrics_out_sample(o, "policy_reloads_total", lv,
	    metrics_u64(num, metrics_get(&m->reloads_ok)));
	lv[1] = "failed";
	metrics_out_sample(o, "policy_reloads_total", lv,
	    metrics_u64(num, metrics_get(&m->reloads_failed)));

	metrics_out_head(o, "department_info", "gauge",
	    "Always 1; the departments of the policy in force.");
	for (i = 0; g != NULL && i < g->ndept; i++) {
		lv[0] = "department";
		lv[1] = m->labels[g->dept[i]];
		lv[2] = "name";
		lv[3] = g->dept_name[i];
		lv[4] = NULL;
		metrics_out_sample(o, "department_info", lv, "1");
	}
	metrics_out_head(o, "resource_info", "gauge",
	    "Always 1; the catalogue of the policy in force.");
	for (i = 0; g != NULL && i < g->nres; i++) {
		lv[0] = "resource";
		lv[1] = m->labels[g->res[i]];
		lv[2] = "name";
		lv[3] = g->res_name[i];
		lv[4] = "owner";
		lv[5] = m->labels[g->res_owner[i]];
		lv[6] = "sharing";
		lv[7] = g->res_sharing[i];
		lv[8] = "classification";
		lv[9] = g->res_class[i];
		lv[10] = NULL;
		metrics_out_sample(o, "resource_info", lv, "1");
	}
}

/*
 * Connections counted against each department of the policy in force
 * (limits.max_connections_per_department), from the table the workers
 * count in. Called with the lock.
 */
static void
metrics_render_dept_conns(struct metrics *m, struct connlim *cl,
    struct metrics_out *o)
{
	const struct metrics_gen *g = m->current;
	struct connlim_slot *slot;
	const char *lv[3] = { "department", NULL, NULL };
	char num[METRICS_NUM];
	size_t i;

	if (cl == NULL)
		return;
	metrics_out_head(o, "department_connections", "gauge",
	    "Client connections counted against each department now "
	    "(limits.max_connections_per_department).");
	for (i = 0; g != NULL && i < g->ndept; i++) {
		lv[1] = m->labels[g->dept[i]];
		if ((slot = connlim_slot_get(cl, lv[1])) == NULL)
			continue;
		metrics_out_sample(o, "department_connections", lv,
		    metrics_u64(num, connlim_count(slot)));
	}
}

static void
metrics_render_certs(struct metrics *m, struct metrics_out *o)
{
	const char *lv[3] = { "listener", NULL, NULL };
	char num[METRICS_NUM];
	size_t i, k;

	for (k = 0; k < METRICS_CERT_NKINDS; k++) {
		metrics_out_head(o, metrics_cert_fams[k].name, "gauge",
		    metrics_cert_fams[k].help);
		for (i = 0; i < m->ncerts; i++) {
			if (!(m->certs[i].have & (1u << k)))
				continue;
			lv[1] = m->labels[m->certs[i].listener];
			metrics_out_sample(o, metrics_cert_fams[k].name, lv,
			    metrics_i64(num, m->certs[i].when[k]));
		}
	}
}

static void
metrics_render_audit(struct metrics *m, const struct metrics_state *st,
    struct metrics_out *o)
{
	const struct auditlog_stats *a = &st->audit;
	const char *lv[3] = { "cause", NULL, NULL };
	struct metrics_hsum lag;
	char num[METRICS_NUM];

	memset(&lag, 0, sizeof(lag));
	metrics_hist_sum(&lag, &m->lag);
	metrics_out_hist(o, "audit_write_lag_seconds",
	    "Time from submitting an audit record to its being durable.", &lag);
	metrics_out_gauge(o, "audit_degraded",
	    "1 while audit records cannot be written (requests get 503).",
	    st->have_audit && a->degraded);
	if (!st->have_audit)
		return;
	metrics_out_counter(o, "audit_records_total",
	    "Audit records written and handed back.", a->records);
	metrics_out_counter(o, "audit_failed_total",
	    "Audit records that could not be written.", a->failed);
	metrics_out_head(o, "audit_refused_total", "counter",
	    "Audit records refused at submission, by cause.");
	lv[1] = "degraded";
	metrics_out_sample(o, "audit_refused_total", lv,
	    metrics_u64(num, a->refused));
	lv[1] = "queue_full";
	metrics_out_sample(o, "audit_refused_total", lv,
	    metrics_u64(num, a->queue_full));
	metrics_out_gauge(o, "audit_queue_length",
	    "Audit records waiting for the writer.", (int64_t)a->queued);
	metrics_out_counter(o, "audit_batches_total",
	    "Batches the audit writer committed.", a->batches);
	metrics_out_counter(o, "audit_syncs_total",
	    "Successful fdatasync calls on the audit trail.", a->syncs);
	metrics_out_counter(o, "audit_checkpoints_total",
	    "Signed checkpoints written.", a->checkpoints);
	metrics_out_counter(o, "audit_degradations_total",
	    "Times the audit trail became unwritable.", a->degradations);
}

char *
metrics_render(struct metrics *m, const struct metrics_state *st, size_t *lenp)
{
	static const struct metrics_state none;
	const char *lv[3] = { "code", NULL, NULL };
	struct metrics_hsum req, up;
	struct metrics_rows rows;
	struct metrics_out o;
	struct metrics_shard *s;
	uint64_t opened = 0, closed = 0, dropped = 0, status[METRICS_NSTATUS];
	char num[METRICS_NUM], code[METRICS_NUM];
	size_t i, j;

	if (st == NULL)
		st = &none;
	memset(&o, 0, sizeof(o));
	memset(&rows, 0, sizeof(rows));
	memset(&req, 0, sizeof(req));
	memset(&up, 0, sizeof(up));
	memset(status, 0, sizeof(status));
	for (i = 0; i < m->nshards; i++) {
		s = m->shards[i];
		opened += metrics_get(&s->opened);
		closed += metrics_get(&s->closed);
		dropped += metrics_get(&s->dropped);
		metrics_hist_sum(&req, &s->req);
		metrics_hist_sum(&up, &s->up);
		for (j = 0; j < METRICS_NSTATUS; j++)
			status[j] += metrics_get(&s->status[j]);
	}

	pthread_mutex_lock(&m->mtx);
	metrics_collect(m, &rows);
	if (rows.failed)
		o.failed = 1;
	metrics_render_info(m, &o);
	metrics_render_requests(&o, &rows);
	metrics_out_head(&o, "responses_total", "counter",
	    "Responses sent to clients, by HTTP status.");
	for (j = 0; j < METRICS_NSTATUS; j++) {
		if (status[j] == 0)
			continue;
		snprintf(code, sizeof(code), "%zu", j + METRICS_STATUS_MIN);
		lv[1] = code;
		metrics_out_sample(&o, "responses_total", lv,
		    metrics_u64(num, status[j]));
	}
	metrics_out_hist(&o, "request_duration_seconds",
	    "Time from a request's first byte to the end of its answer.", &req);
	metrics_out_hist(&o, "upstream_response_seconds",
	    "Time from sending a request upstream to its response head.", &up);
	metrics_render_pairs(&o, &rows, METRICS_FAM_UPSTREAM,
	    "upstream_errors_total", "upstream", "kind",
	    "Failed upstream attempts, by upstream and kind.");
	metrics_render_pairs(&o, &rows, METRICS_FAM_TLS,
	    "tls_handshake_failures_total", "listener", "reason",
	    "Client TLS handshakes that failed, by listener and reason.");
	metrics_out_counter(&o, "connections_accepted_total",
	    "Client connections accepted.", opened);
	metrics_out_gauge(&o, "connections_open", "Client connections open.",
	    opened >= closed ? (int64_t)(opened - closed) : 0);
	metrics_render_dept_conns(m, st->connlim, &o);
	metrics_render_certs(m, &o);
	pthread_mutex_unlock(&m->mtx);

	metrics_render_audit(m, st, &o);
	metrics_out_gauge(&o, "draining",
	    "1 while the gateway drains (SIGTERM): no new connections.",
	    st->draining != 0);
	metrics_out_counter(&o, "metrics_dropped_total",
	    "Counts lost because a worker's series table was full.", dropped);
	free(rows.v);
	if (o.failed) {
		free(o.p);
		return NULL;
	}
	if (lenp != NULL)
		*lenp = o.len;
	return o.p;
}
