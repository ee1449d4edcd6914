/* worker.h - serve's threads: each its own event base, listeners, pools. */
#ifndef WORKER_H
#define WORKER_H

#include <sys/queue.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "audit.h"
#include "auditlog.h"
#include "peer.h"

struct auditlog;
struct metrics;
struct metrics_gen;
struct metrics_shard;
struct cfgset;
struct conn;
struct connlim;
struct connlim_slot;
struct diag;
struct event;
struct event_base;
struct evconnlistener;
struct upstream_pools;
struct upstream_table;
struct worker_group;

#define WORKER_DRAIN_MS 10000      /* SIGTERM: in-flight requests get this */
#define WORKER_RECORDS_MS 5000     /* then queued audit records get this */
#define WORKER_ACCEPT_PAUSE_MS 100 /* out of descriptors: accepting pauses */
#define WORKER_REC_BODY 4096       /* pooled audit record body bytes */
#define WORKER_REC_FREE_MAX 1024   /* pooled records kept per worker */
#define WORKER_RETRY_MS 1000       /* a refused record is offered again */
#define WORKER_RETRY_MAX 65536     /* records held for a failing trail */
#define WORKER_RND_POOL 4096       /* random bytes drawn at once for ids */
#define WORKER_BACKLOG 4096

/*
 * Everything a connection decides and forwards with: config, policy,
 * GeoIP, TLS contexts and upstreams. Built whole at start and on SIGHUP;
 * each connection holds a reference to the set it was accepted under
 * until it ends, so a reload never changes a request in flight.
 */
struct worker_set {
	atomic_int refs;
	uint64_t gen;
	struct cfgset *cs;
	SSL_CTX **server_ctx; /* per listener of cs->conf */
	size_t nlisteners;
	struct upstream_table *ups;
	size_t *res_upstream; /* per policy resource index: upstream index */
	size_t nres;
	int have_subject_key;
	struct audit_subject_key subject_key;
	struct metrics_gen *mg; /* label ids for metrics */
	/* per policy department index: its open connections (serve's table) */
	struct connlim_slot **dept_conns;
	size_t ndepts;
};

/*
 * Load the config at path and everything serve needs from it: the
 * cfgset, listener TLS contexts, resolved upstreams with their TLS
 * contexts, each resource's upstream, the audit subject key, and each
 * department's connection counter in cl (found by id: a department that
 * stays across a reload keeps its count; cl must outlive the set).
 * Returns a set with one reference, or NULL with every problem in dg.
 */
struct worker_set *worker_set_load(const char *path, int64_t now,
    struct connlim *cl, struct diag *dg);
void worker_set_ref(struct worker_set *s);
void worker_set_unref(struct worker_set *s); /* frees at zero; NULL ok */

/* One listening socket of one worker. */
struct worker_listener {
	struct worker *w;
	size_t li; /* index into the set's listeners */
	int fd;
	struct evconnlistener *lev;
	int enabled;
};

/* An audit record in flight, pooled per worker (see worker_audit). */
struct worker_rec {
	struct auditlog_req r;
	struct worker *w;
	void (*cb)(void *arg, int ok);
	void *arg;
	int keep;   /* offered again until written (no one waits for it) */
	size_t cap; /* bytes of body; WORKER_REC_BODY: pooled */
	struct worker_rec *next;
	char body[];
};

TAILQ_HEAD(worker_conn_list, conn);

/*
 * One thread. Everything here is touched only by that thread, except
 * the inbox (under mtx), which the main thread fills and signals
 * through wake.
 */
struct worker {
	size_t id;
	struct worker_group *g;
	pthread_t thread;
	int started;
	struct event_base *base;
	struct event *wake;
	struct event *accept_timer; /* resumes accepting after EMFILE */
	struct event *drain_timer;
	struct event *flush_ev;     /* submits the batch below */
	struct auditlog_req *batch; /* records of this loop iteration */
	struct auditlog_req **batch_tail;
	struct event *retry_ev;
	struct worker_rec *retry; /* refused, to be offered again */
	size_t nretry;
	int retry_final;        /* shutdown: the last offer was made */
	struct worker_set *set; /* new connections take a reference */
	struct metrics_shard *ms;
	struct upstream_pools *pools;
	struct auditlog_notify *notify;
	struct worker_listener *ls;
	size_t nls;
	struct worker_conn_list conns;
	size_t nconns;
	size_t nrecs; /* audit records submitted, done not yet run */
	struct worker_rec *free_recs;
	size_t nfree_recs;
	struct audit_buf ab; /* scratch for formatting one record body */
	char *abmem;
	EVP_MD_CTX *md; /* scratch digest for audit formatting */
	unsigned char rnd[WORKER_RND_POOL];
	size_t rnd_off;
	int paused;    /* listeners off: connection limit */
	int draining;  /* SIGTERM: no new connections, no keep-alive */
	int forced;    /* drain time over: every connection closed */
	char *scratch; /* a request head built before it is sent */
	size_t scratchsz;
	/*
	 * A response on its way to the client, gathered while one upstream
	 * callback runs, then written with one SSL_write (conn.c).
	 */
	struct evbuffer *stage;
	struct conn *stage_conn; /* whose bytes stage holds; NULL: none */
	struct peer peer; /* scratch: a certificate read before peer_dup */
	struct conn_req *free_reqs; /* request buffers for reuse (conn.c) */
	size_t nfree_reqs;

	pthread_mutex_t mtx;
	struct worker_set *inbox_set;
	int inbox_stop, inbox_force, inbox_resume;
};

/*
 * The workers. Binds one SO_REUSEPORT socket per worker and listener
 * (the kernel spreads connections), starts nothing yet. Returns NULL with
 * a reason in err (address in use, no permission).
 */
struct worker_group *worker_group_new(struct worker_set *set,
    struct auditlog *al, char *err, size_t errlen);
/* The audit trail the workers submit to (opened after binding). */
void worker_group_set_auditlog(struct worker_group *g, struct auditlog *al);
/* Start the threads. Returns 0, or -1 with a reason in err. */
int worker_group_start(struct worker_group *g, char *err, size_t errlen);
/*
 * Check that set can replace the running one without rebinding (same
 * listeners, names and addresses). Returns 0, or -1 with a reason in err.
 */
int worker_group_can_swap(const struct worker_group *g,
    const struct worker_set *set, char *err, size_t errlen);
/* New connections use set from now on (takes a reference per worker). */
void worker_group_swap(struct worker_group *g, struct worker_set *set);
/*
 * Stop accepting, close idle connections, let in-flight requests finish
 * for up to drain_ms, then close the rest, wait for their audit records
 * and join the threads. Blocks the caller.
 */
void worker_group_stop(struct worker_group *g, int64_t drain_ms);
void worker_group_free(struct worker_group *g);
size_t worker_group_nworkers(const struct worker_group *g);
void worker_group_set_metrics(struct worker_group *g, struct metrics *m);
struct auditlog *worker_group_auditlog(const struct worker_group *g);

/*
 * For conn.c: a connection accepted by w ended (accounting against
 * limits.max_connections, which worker_accept_cb counted it in; the
 * connection list itself is conn.c's).
 */
void worker_conn_gone(struct worker *w);

/*
 * Submit the record body in w->ab as event. When it is durable or has
 * failed, cb(arg, ok) runs on w's thread (cb may be NULL), never before
 * this returns. Records of one loop iteration reach the writer together
 * (one wake-up for the batch). With keep (a record no request waits
 * for: a denial's decision, a complete record), a record the trail could
 * not write is held and offered again every WORKER_RETRY_MS until it is
 * written (contract 6: no record is silently dropped); cb must then be
 * NULL. Returns 0, or -1 when out of memory.
 */
int worker_audit(struct worker *w, const char *event, int keep,
    void (*cb)(void *, int), void *arg);
/* Reset w->ab for the next record and return it. */
struct audit_buf *worker_audit_buf(struct worker *w);

/*
 * w's scratch buffer with room for n bytes (grown as needed; valid until
 * the next call). Returns NULL when out of memory.
 */
char *worker_scratch(struct worker *w, size_t n);

/* A fresh request id (FWD_REQUEST_ID_LEN hex + NUL) into out. */
void worker_request_id(struct worker *w, char *out);

#endif /* WORKER_H */
