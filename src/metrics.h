/* SPDX-License-Identifier: ISC */
/* metrics.h - counters per worker thread, summed into Prometheus text (pure).
 */
#ifndef METRICS_H
#define METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "auditlog.h"
#include "policy.h"

struct conf;

/*
 * Design. Each worker thread counts into its own struct metrics_shard:
 * plain 64-bit counters written only by that thread, through relaxed
 * atomics (a load and a store, no lock prefix), so counting costs a few
 * nanoseconds and never contends; a scrape reads every shard and sums.
 *
 * Requests are counted by (department, resource, decision, reason),
 * upstream errors by (upstream, kind) and TLS handshake failures by
 * (listener, reason). Those series live in a per-shard open-addressing
 * table keyed by *label ids*: every department, resource, upstream and
 * listener id is interned once in the registry and never forgotten. A
 * policy generation (struct metrics_gen, built at load and at each
 * reload) maps the policy's and config's indexes to those label ids, so
 * the hot path does an array load and one table probe, and a counter
 * keeps counting across reloads as long as its ids stay the same: a
 * reload never resets or duplicates a series, and series of ids a new
 * policy dropped stay (counters must not go back). A dense
 * department x resource x reason array per generation would cost
 * megabytes per worker for a large catalogue; the table holds only the
 * combinations that happened. It grows by doubling (the old arrays are
 * kept until the shard is freed, for readers still on them) up to
 * METRICS_MAX_SERIES; past that, counts go to govgate_metrics_dropped_total.
 *
 * A missing department or resource (a request refused before the
 * department was known, a path that matched no resource) is rendered as
 * an empty label value: "none" or "-" are valid policy ids, "" is not.
 */

#define METRICS_NBUCKETS 14        /* finite histogram buckets, 0.5 ms..10 s */
#define METRICS_MAX_SERIES 262144  /* table slots per shard (load <= 3/4) */
#define METRICS_MAX_LABELS 1048576 /* interned ids, over all generations */
#define METRICS_MAX_CERTS 256      /* (listener) rows of certificate times */
#define METRICS_MAX_RENDER (64 * 1024 * 1024) /* bytes of one scrape */
#define METRICS_CERT_UNKNOWN INT64_MIN        /* metrics_cert_set: forget it */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Why an upstream attempt failed: label kind of govgate_upstream_errors. */
enum metrics_upstream_error {
	METRICS_UP_CONNECT = 0, /* refused, unreachable, connect timeout */
	METRICS_UP_TIMEOUT,     /* read timeout: no (complete) answer in time */
	METRICS_UP_RESET,       /* closed or reset before a complete answer */
	METRICS_UP_BAD_RESPONSE, /* malformed, ambiguous or oversized answer */
	METRICS_UP_TLS,          /* TLS handshake with the backend failed */
	METRICS_UP_NKINDS,
};

/* Why a client's TLS handshake failed: label reason of govgate_tls_... */
enum metrics_tls_fail {
	METRICS_TLS_NO_CERTIFICATE = 0,
	METRICS_TLS_CERT_EXPIRED,
	METRICS_TLS_CERT_NOT_YET_VALID,
	METRICS_TLS_CERT_REVOKED,
	METRICS_TLS_UNKNOWN_CA,
	METRICS_TLS_CRL,          /* CRL missing, stale or bad: fail closed */
	METRICS_TLS_CERT_INVALID, /* any other certificate problem */
	METRICS_TLS_PROTOCOL,     /* version, suites, ALPN, bad records */
	METRICS_TLS_TIMEOUT,
	METRICS_TLS_CLOSED, /* the client went away mid-handshake */
	METRICS_TLS_OTHER,
	METRICS_TLS_NFAILS,
};

/* Times of one listener's certificates (gauges, epoch seconds). */
enum metrics_cert {
	METRICS_CERT_SERVER = 0, /* the listener's own certificate: notAfter */
	METRICS_CERT_CLIENT_CA,  /* soonest notAfter among its client CAs */
	METRICS_CERT_CRL,        /* soonest nextUpdate among its CRLs */
	METRICS_CERT_NKINDS,
};

struct connlim;

/*
 * What the registry cannot count itself, read at each scrape (the
 * admin listener asks the gateway for it). Zero-filled: no audit trail
 * known, not draining, no per-department connection counts.
 */
struct metrics_state {
	int draining;   /* SIGTERM: no new connections */
	int have_audit; /* audit below is filled */
	struct auditlog_stats audit;
	struct connlim *connlim; /* borrowed: connections per department */
};

struct metrics;
struct metrics_gen;
struct metrics_shard;

/*
 * The registry: nshards shards (one per worker thread), the interned
 * label ids, the audit lag histogram, certificate times and the policy
 * in force. Returns NULL with a reason in err.
 */
struct metrics *metrics_new(size_t nshards, char *err, size_t errlen);
/* Free m and its shards; no thread may use them any more. NULL ok. */
void metrics_free(struct metrics *m);
size_t metrics_nshards(const struct metrics *m);
/* Shard i (< nshards), borrowed: written only by the thread it is for. */
struct metrics_shard *metrics_shard_at(struct metrics *m, size_t i);

/*
 * Map one policy and config to label ids (departments, resources,
 * upstreams, listeners by their index), interning new ids. Returns a
 * generation with one reference, or NULL with a reason in err. Any
 * thread; takes the registry's lock.
 */
struct metrics_gen *metrics_gen_new(struct metrics *m, const struct policy *p,
    const struct conf *c, char *err, size_t errlen);
void metrics_gen_ref(struct metrics_gen *g);
void metrics_gen_unref(struct metrics_gen *g); /* frees at zero; NULL ok */

/*
 * The generation whose policy is in force (govgate_policy_info and the
 * department and resource info series); takes a reference to g.
 */
void metrics_set_policy(struct metrics *m, struct metrics_gen *g);
/* Count a reload (SIGHUP): ok 1 swapped in, 0 refused. Any thread. */
void metrics_count_reload(struct metrics *m, int ok);

/*
 * Set a certificate time of a listener (epoch seconds), or forget it with
 * METRICS_CERT_UNKNOWN. Returns 0, or -1 when the table is full or memory
 * is short. Any thread; takes the registry's lock.
 */
int metrics_cert_set(struct metrics *m, const char *listener,
    enum metrics_cert which, int64_t when);

/* One record's submit-to-durable time, in microseconds. Any thread. */
void metrics_audit_lag(struct metrics *m, int64_t us);

/*
 * Hot path: shard s belongs to the calling thread, g is the generation of
 * the policy and config the request was decided under (NULL: every label
 * empty). dept and res come from that policy's decision (NULL: none).
 */
void metrics_request(struct metrics_shard *s, const struct metrics_gen *g,
    const struct policy_department *dept, const struct policy_resource *res,
    int allow, enum policy_reason reason);
/* A response status the client got (100-599), gateway's or backend's. */
void metrics_response(struct metrics_shard *s, int status);
/* From the first byte of the head to the last byte of the answer. */
void metrics_request_time(struct metrics_shard *s, int64_t us);
/* From sending the request upstream to its response head. */
void metrics_upstream_time(struct metrics_shard *s, int64_t us);
/* Upstream ui (config index) of g failed as kind. */
void metrics_upstream_error(struct metrics_shard *s,
    const struct metrics_gen *g, size_t ui, enum metrics_upstream_error kind);
/* A client handshake on listener li (config index) of g failed. */
void metrics_tls_failure(struct metrics_shard *s, const struct metrics_gen *g,
    size_t li, enum metrics_tls_fail why);
void metrics_conn_opened(struct metrics_shard *s);
void metrics_conn_closed(struct metrics_shard *s);

/*
 * The category of a client certificate that failed verification, from
 * SSL_get_verify_result(). X509_V_OK there means the client sent no
 * certificate (the only verify failure without a code).
 */
enum metrics_tls_fail metrics_tls_fail_from_verify(long verify_result);
const char *metrics_tls_fail_str(enum metrics_tls_fail why);
const char *metrics_upstream_error_str(enum metrics_upstream_error kind);

/*
 * Render every series in the Prometheus text exposition format 0.0.4,
 * summing the shards; st (may be NULL) adds audit and draining state.
 * Returns a NUL-terminated malloc'd string the caller frees, its length
 * in *lenp, or NULL when memory is short or it would pass
 * METRICS_MAX_RENDER. Any thread; takes the registry's lock.
 */
char *metrics_render(struct metrics *m, const struct metrics_state *st,
    size_t *lenp);

/*
 * Escape len bytes of s as a label value (backslash, double quote and
 * newline escaped; invalid UTF-8 replaced by U+FFFD) into dst with a NUL.
 * Returns the length, or -1 when it does not fit in dstsz.
 */
int metrics_label_escape(const char *s, size_t len, char *dst, size_t dstsz);

#endif /* METRICS_H */
