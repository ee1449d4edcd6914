/* worker.c - serve's threads: each its own event base, listeners, pools. */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/rand.h>

#include "audit.h"
#include "auditlog.h"
#include "cfgset.h"
#include "conf.h"
#include "conn.h"
#include "connlim.h"
#include "diag.h"
#include "fwd.h"
#include "log.h"
#include "policy.h"
#include "tlsctx.h"
#include "upstream.h"
#include "worker.h"
#include "metrics.h"
#include "xmalloc.h"

struct worker_group {
	struct worker *w;
	size_t n;
	struct auditlog *al;
	struct metrics *metrics;
	size_t nlisteners;
	char **lnames; /* listener names and addresses the sockets are for */
	char **laddrs;
	atomic_size_t nconns;
	atomic_size_t max_conns;
	atomic_int npaused;
	pthread_mutex_t mtx; /* nfinished */
	pthread_cond_t cond;
	size_t nfinished;
};

static atomic_uint_fast64_t worker_set_gen;

static void worker_listeners_enable(struct worker *w, int on);
static void worker_check_done(struct worker *w);
static void worker_retry_cb(evutil_socket_t fd, short what, void *arg);

/* Free a set whose reference count reached zero. */
static void
worker_set_free(struct worker_set *s)
{
	size_t i;

	for (i = 0; s->server_ctx != NULL && i < s->nlisteners; i++)
		SSL_CTX_free(s->server_ctx[i]);
	free(s->server_ctx);
	upstream_table_free(s->ups);
	free(s->res_upstream);
	free(s->dept_conns);
	cfgset_free(s->cs);
	metrics_gen_unref(s->mg);
	explicit_bzero(&s->subject_key, sizeof(s->subject_key));
	free(s);
}

struct worker_set *
worker_set_load(const char *path, int64_t now, struct connlim *cl,
    struct diag *dg)
{
	const struct policy_department *dp;
	const struct policy_resource *r;
	const struct conf *c;
	struct worker_set *s;
	size_t i, j, nerrors = dg->nerrors;
	char err[256];

	s = xcalloc(1, sizeof(*s));
	if ((s->cs = cfgset_load(path, NULL, now, dg)) == NULL)
		goto fail;
	c = s->cs->conf;
	if (c->nlisteners == 0)
		diag_error(dg, c->file, 0, 0,
		    "serve needs at least one listener");
	if (!c->has_audit)
		diag_error(dg, c->file, 0, 0,
		    "serve needs an audit trail: add audit.path and "
		    "audit.signing_key");
	s->nlisteners = c->nlisteners;
	s->server_ctx = xcalloc(s->nlisteners + 1, sizeof(*s->server_ctx));
	for (i = 0; i < c->nlisteners; i++)
		s->server_ctx[i] = tlsctx_server_new(&c->listeners[i], now, dg);
	s->ups = upstream_table_new(c, now, dg);

	/* Each resource's upstream, found once rather than per request. */
	s->nres = policy_nresources(s->cs->policy);
	s->res_upstream = xcalloc(s->nres + 1, sizeof(*s->res_upstream));
	for (i = 0; i < s->nres; i++) {
		r = policy_resource_at(s->cs->policy, i);
		s->res_upstream[i] = (size_t)-1;
		for (j = 0; r->upstream != NULL && j < c->nupstreams; j++)
			if (strcmp(r->upstream, c->upstreams[j].name) == 0)
				s->res_upstream[i] = j;
		if (r->index != i)
			diag_error(dg, c->file, 0, 0,
			    "policy resource \"%s\": index mismatch", r->id);
		else if (s->res_upstream[i] == (size_t)-1)
			diag_error(dg, c->file, 0, 0,
			    "policy resource \"%s\": upstream \"%s\" is not "
			    "defined under upstreams",
			    r->id, r->upstream != NULL ? r->upstream : "");
	}
	/*
	 * Each department's connection counter, by id: the table outlives
	 * every set, so counts carry over a reload.
	 */
	s->ndepts = policy_ndepartments(s->cs->policy);
	s->dept_conns = xcalloc(s->ndepts + 1, sizeof(*s->dept_conns));
	for (i = 0; i < s->ndepts; i++) {
		dp = policy_department_at(s->cs->policy, i);
		if (dp->index != i)
			diag_error(dg, c->file, 0, 0,
			    "policy department \"%s\": index mismatch", dp->id);
		else if ((s->dept_conns[i] = connlim_slot_get(cl, dp->id)) ==
		    NULL)
			diag_error(dg, c->file, 0, 0,
			    "policy department \"%s\": no connection counter "
			    "(more than %d department ids since start, or out "
			    "of memory)",
			    dp->id, CONNLIM_MAX_SLOTS);
	}
	if (c->has_audit && c->audit.subject_key != NULL) {
		if (audit_subject_key_load(&s->subject_key,
		        c->audit.subject_key, err, sizeof(err)) == -1)
			diag_error(dg, c->audit.subject_key, 0, 0,
			    "audit subject key: %s", err);
		else
			s->have_subject_key = 1;
	}
	if (dg->nerrors > nerrors)
		goto fail;
	atomic_init(&s->refs, 1);
	s->gen = atomic_fetch_add(&worker_set_gen, 1) + 1;
	return s;
fail:
	worker_set_free(s);
	return NULL;
}

void
worker_set_ref(struct worker_set *s)
{
	atomic_fetch_add(&s->refs, 1);
}

void
worker_set_unref(struct worker_set *s)
{
	if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1)
		worker_set_free(s);
}

/*
 * One listening socket for l: SO_REUSEPORT so that every worker has its
 * own and the kernel spreads connections. Returns the fd or -1 (err).
 */
static int
worker_bind(const struct conf_listener *l, int probe, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	char port[8];
	int fd = -1, one = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", (unsigned)l->address.port);
	if ((rc = getaddrinfo(l->address.host, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "listener %s: %s: %s", l->name,
		    l->address.text, gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		goto fail;
	if (!probe &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1)
		goto fail;
	/* "[::]" means IPv6 only, so "0.0.0.0" may be bound beside it. */
	if (res->ai_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1)
		goto fail;
	if (bind(fd, res->ai_addr, res->ai_addrlen) == -1)
		goto fail;
	if (!probe && listen(fd, WORKER_BACKLOG) == -1)
		goto fail;
	freeaddrinfo(res);
	return fd;
fail:
	snprintf(err, errlen, "listener %s: %s: %s", l->name, l->address.text,
	    strerror(errno));
	if (fd != -1)
		close(fd);
	freeaddrinfo(res);
	return -1;
}

static size_t
worker_count(const struct conf *c)
{
	long n;

	if (c->workers != 0)
		return c->workers;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > CONF_MAX_WORKERS)
		n = CONF_MAX_WORKERS;
	return (size_t)n;
}

struct worker_group *
worker_group_new(struct worker_set *set, struct auditlog *al, char *err,
    size_t errlen)
{
	const struct conf *c = set->cs->conf;
	struct worker_group *g;
	struct worker *w;
	size_t i, j;
	int fd;

	g = xcalloc(1, sizeof(*g));
	g->al = al;
	g->n = worker_count(c);
	g->nlisteners = c->nlisteners;
	atomic_init(&g->nconns, 0);
	atomic_init(&g->max_conns, c->limits.max_connections);
	atomic_init(&g->npaused, 0);
	pthread_mutex_init(&g->mtx, NULL);
	pthread_cond_init(&g->cond, NULL);
	g->lnames = xcalloc(g->nlisteners + 1, sizeof(*g->lnames));
	g->laddrs = xcalloc(g->nlisteners + 1, sizeof(*g->laddrs));
	g->w = xcalloc(g->n, sizeof(*g->w));
	for (i = 0; i < g->n; i++) {
		w = &g->w[i];
		w->id = i;
		w->g = g;
		pthread_mutex_init(&w->mtx, NULL);
		w->ls = xcalloc(g->nlisteners + 1, sizeof(*w->ls));
		w->nls = g->nlisteners;
		for (j = 0; j < w->nls; j++)
			w->ls[j].fd = -1;
	}
	for (j = 0; j < g->nlisteners; j++) {
		g->lnames[j] = xstrdup(c->listeners[j].name);
		g->laddrs[j] = xstrdup(c->listeners[j].address.text);
		/*
		 * A plain bind first: SO_REUSEPORT would silently share the
		 * port with another govgate (or anything) already on it.
		 */
		if ((fd = worker_bind(&c->listeners[j], 1, err, errlen)) == -1)
			goto fail;
		close(fd);
		for (i = 0; i < g->n; i++) {
			fd = worker_bind(&c->listeners[j], 0, err, errlen);
			if (fd == -1)
				goto fail;
			g->w[i].ls[j].fd = fd;
			g->w[i].ls[j].w = &g->w[i];
			g->w[i].ls[j].li = j;
		}
	}
	for (i = 0; i < g->n; i++) {
		worker_set_ref(set);
		g->w[i].set = set;
	}
	return g;
fail:
	worker_group_free(g);
	return NULL;
}

void
worker_group_set_auditlog(struct worker_group *g, struct auditlog *al)
{
	g->al = al;
}

size_t
worker_group_nworkers(const struct worker_group *g)
{
	return g->n;
}

struct auditlog *
worker_group_auditlog(const struct worker_group *g)
{
	return g->al;
}

/* Accept paused (connection limit): resume when below it again. */
static void
worker_pause(struct worker *w)
{
	struct worker_group *g = w->g;

	if (w->paused)
		return;
	w->paused = 1;
	worker_listeners_enable(w, 0);
	atomic_fetch_add(&g->npaused, 1);
	log_warnx("worker %zu: %zu connections: accepting paused", w->id,
	    atomic_load(&g->nconns));
	/* A close elsewhere may have missed the flag: look again. */
	if (atomic_load(&g->nconns) < atomic_load(&g->max_conns)) {
		w->paused = 0;
		atomic_fetch_sub(&g->npaused, 1);
		worker_listeners_enable(w, 1);
	}
}

static void
worker_resume(struct worker *w)
{
	if (!w->paused)
		return;
	w->paused = 0;
	atomic_fetch_sub(&w->g->npaused, 1);
	log_info("worker %zu: accepting again", w->id);
	worker_listeners_enable(w, 1);
}

void
worker_conn_gone(struct worker *w)
{
	struct worker_group *g = w->g;
	size_t i, n;

	n = atomic_fetch_sub(&g->nconns, 1) - 1;
	worker_check_done(w);
	if (atomic_load(&g->npaused) == 0 || n >= atomic_load(&g->max_conns))
		return;
	for (i = 0; i < g->n; i++) {
		if (&g->w[i] == w) {
			worker_resume(w);
			continue;
		}
		pthread_mutex_lock(&g->w[i].mtx);
		g->w[i].inbox_resume = 1;
		pthread_mutex_unlock(&g->w[i].mtx);
		if (g->w[i].wake != NULL)
			event_active(g->w[i].wake, EV_READ, 0);
	}
}

static void
worker_accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct worker_listener *wl = arg;
	struct worker *w = wl->w;
	struct worker_group *g = w->g;
	size_t n, max = atomic_load(&g->max_conns);

	if (w->draining) {
		close(fd);
		return;
	}
	n = atomic_fetch_add(&g->nconns, 1) + 1;
	if (n > max) {
		atomic_fetch_sub(&g->nconns, 1);
		close(fd);
		worker_pause(w);
		return;
	}
	conn_accept(w, wl->li, fd, sa, (socklen_t)salen);
	if (n == max)
		worker_pause(w);
}

static void
worker_accept_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	if (!w->paused && !w->draining)
		worker_listeners_enable(w, 1);
}

/* Out of descriptors: pause instead of spinning on a full accept queue. */
static void
worker_accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct worker_listener *wl = arg;
	struct worker *w = wl->w;
	struct timeval tv = { 0, WORKER_ACCEPT_PAUSE_MS * 1000 };
	int e = EVUTIL_SOCKET_ERROR();

	if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
		if (!evtimer_pending(w->accept_timer, NULL))
			log_warnx("worker %zu: accept: %s: pausing %d ms",
			    w->id, strerror(e), WORKER_ACCEPT_PAUSE_MS);
		worker_listeners_enable(w, 0);
		evtimer_add(w->accept_timer, &tv);
		return;
	}
	log_warnx("worker %zu: accept: %s", w->id, strerror(e));
}

static void
worker_listeners_enable(struct worker *w, int on)
{
	size_t i;

	for (i = 0; i < w->nls; i++) {
		if (w->ls[i].lev == NULL || w->ls[i].enabled == on)
			continue;
		if (on)
			evconnlistener_enable(w->ls[i].lev);
		else
			evconnlistener_disable(w->ls[i].lev);
		w->ls[i].enabled = on;
	}
}

static void
worker_listeners_free(struct worker *w)
{
	size_t i;

	for (i = 0; i < w->nls; i++) {
		if (w->ls[i].lev != NULL)
			evconnlistener_free(w->ls[i].lev);
		else if (w->ls[i].fd != -1)
			close(w->ls[i].fd);
		w->ls[i].lev = NULL;
		w->ls[i].fd = -1;
		w->ls[i].enabled = 0;
	}
}

/*
 * Quit the loop once draining and nothing is left in flight. Records
 * held for a failing trail get one last offer first.
 */
static void
worker_check_done(struct worker *w)
{
	if (!w->draining || w->nconns != 0 || w->nrecs != 0 || w->batch != NULL)
		return;
	if (w->nretry > 0 && !w->retry_final) {
		w->retry_final = 1;
		evtimer_del(w->retry_ev);
		worker_retry_cb(-1, 0, w);
		return;
	}
	event_base_loopexit(w->base, NULL);
}

/*
 * Install set as the one new connections use; pools follow it, keeping
 * the TLS sessions of upstreams whose TLS settings stayed as they were.
 */
static void
worker_install(struct worker *w, struct worker_set *set)
{
	struct upstream_pools *p;

	if ((p = upstream_pools_new(set->ups, set->gen)) == NULL) {
		log_warnx("worker %zu: reload: out of memory; keeping the "
		          "previous set",
		    w->id);
		worker_set_unref(set);
		return;
	}
	upstream_pools_adopt(p, w->pools);
	upstream_pools_free(w->pools);
	w->pools = p;
	worker_set_unref(w->set);
	w->set = set;
}

static void
worker_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct worker_set *set;
	int stop, force, resume;

	pthread_mutex_lock(&w->mtx);
	set = w->inbox_set;
	w->inbox_set = NULL;
	stop = w->inbox_stop;
	force = w->inbox_force;
	resume = w->inbox_resume;
	w->inbox_stop = w->inbox_force = w->inbox_resume = 0;
	pthread_mutex_unlock(&w->mtx);

	if (set != NULL)
		worker_install(w, set);
	if (resume && !w->draining &&
	    atomic_load(&w->g->nconns) < atomic_load(&w->g->max_conns))
		worker_resume(w);
	if (stop && !w->draining) {
		w->draining = 1;
		worker_listeners_free(w);
		upstream_pools_free(w->pools);
		w->pools = NULL;
		conn_shutdown_all(w, 0);
	}
	if (force && !w->forced) {
		w->forced = 1;
		conn_shutdown_all(w, 1);
	}
	worker_check_done(w);
}

/* Back to the pool, or freed. */
static void
worker_rec_put(struct worker *w, struct worker_rec *rec)
{
	if (rec->cap == WORKER_REC_BODY &&
	    w->nfree_recs < WORKER_REC_FREE_MAX) {
		rec->next = w->free_recs;
		w->free_recs = rec;
		w->nfree_recs++;
	} else
		free(rec);
}

static void worker_batch_add(struct worker *w, struct auditlog_req *r);

/* Done callback of every record a worker submits; runs on its thread. */
static void
worker_rec_done(struct auditlog_req *r, int ok)
{
	struct worker_rec *rec = r->arg;
	struct worker *w = rec->w;
	void (*cb)(void *, int) = rec->cb;
	void *arg = rec->arg;
	struct timeval tv = { WORKER_RETRY_MS / 1000,
		(WORKER_RETRY_MS % 1000) * 1000 };
	struct timespec ts;

	if (ok && w->g->metrics != NULL && r->queued_us != 0) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		metrics_audit_lag(w->g->metrics,
		    (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 -
		        r->queued_us);
	}

	w->nrecs--;
	if (!ok && rec->keep) {
		if (w->retry_final || w->nretry >= WORKER_RETRY_MAX) {
			log_error(
			    "audit: %s record lost: the trail refuses it%s",
			    r->event, w->retry_final ? " at shutdown" : "");
		} else {
			/* Held, and offered again when the trail may work. */
			rec->next = w->retry;
			w->retry = rec;
			w->nretry++;
			if (!evtimer_pending(w->retry_ev, NULL))
				evtimer_add(w->retry_ev, &tv);
			worker_check_done(w);
			return;
		}
	}
	worker_rec_put(w, rec);
	if (cb != NULL)
		cb(arg, ok);
	worker_check_done(w);
}

/* Offer every held record to the trail again, oldest first. */
static void
worker_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct worker_rec *rec, *list = NULL, *next;
	size_t n = w->nretry;

	/* The list is newest first: reverse it to keep the order. */
	for (rec = w->retry; rec != NULL; rec = next) {
		next = rec->next;
		rec->next = list;
		list = rec;
	}
	w->retry = NULL;
	w->nretry = 0;
	if (n > 0)
		log_info("worker %zu: audit: offering %zu held records again",
		    w->id, n);
	for (rec = list; rec != NULL; rec = next) {
		next = rec->next;
		w->nrecs++;
		worker_batch_add(w, &rec->r);
	}
}

/*
 * Records wait for the end of the loop iteration and reach the writer
 * together: one wake-up of its thread (and one hand-back) per batch
 * rather than per record. The flush event is activated behind the
 * callbacks already due, so it runs after them.
 */
static void
worker_batch_add(struct worker *w, struct auditlog_req *r)
{
	r->next = NULL;
	if (w->batch == NULL)
		event_active(w->flush_ev, EV_READ, 0);
	*w->batch_tail = r;
	w->batch_tail = &r->next;
}

static void
worker_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct auditlog_req *r, *next;

	r = w->batch;
	w->batch = NULL;
	w->batch_tail = &w->batch;
	/* Refused (failing trail, full queue): said as a failure. */
	for (r = auditlog_submit_list(w->g->al, r); r != NULL; r = next) {
		next = r->next;
		r->next = NULL;
		worker_rec_done(r, 0);
	}
	worker_check_done(w);
}

struct audit_buf *
worker_audit_buf(struct worker *w)
{
	audit_buf_reset(&w->ab);
	return &w->ab;
}

int
worker_audit(struct worker *w, const char *event, int keep,
    void (*cb)(void *, int), void *arg)
{
	struct worker_rec *rec;
	size_t len = w->ab.len;

	if (w->ab.overflow)
		return -1;
	if (len <= WORKER_REC_BODY && w->free_recs != NULL) {
		rec = w->free_recs;
		w->free_recs = rec->next;
		w->nfree_recs--;
	} else {
		rec = malloc(sizeof(*rec) +
		    (len <= WORKER_REC_BODY ? WORKER_REC_BODY : len));
		if (rec == NULL)
			return -1;
		rec->cap = len <= WORKER_REC_BODY ? WORKER_REC_BODY : len;
	}
	memcpy(rec->body, w->ab.p, len);
	memset(&rec->r, 0, sizeof(rec->r));
	rec->r.event = event;
	rec->r.body = rec->body;
	rec->r.len = len;
	rec->r.done = worker_rec_done;
	rec->r.arg = rec;
	rec->r.notify = w->notify;
	rec->w = w;
	rec->cb = cb;
	rec->arg = arg;
	rec->keep = keep;
	w->nrecs++;
	worker_batch_add(w, &rec->r);
	return 0;
}

char *
worker_scratch(struct worker *w, size_t n)
{
	char *p;

	if (n <= w->scratchsz)
		return w->scratch;
	if ((p = realloc(w->scratch, n)) == NULL)
		return NULL;
	w->scratch = p;
	w->scratchsz = n;
	return p;
}

/*
 * Request ids are 128 random bits from OpenSSL's DRBG, drawn a page at a
 * time so an id costs a copy: unique in practice and not guessable, so
 * one cannot be forged to collide with another's in the audit trail.
 */
void
worker_request_id(struct worker *w, char *out)
{
	if (w->rnd_off + 16 > sizeof(w->rnd)) {
		if (RAND_bytes(w->rnd, sizeof(w->rnd)) != 1)
			arc4random_buf(w->rnd, sizeof(w->rnd));
		w->rnd_off = 0;
	}
	fwd_request_id(w->rnd + w->rnd_off, out);
	w->rnd_off += 16;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct worker_group *g = w->g;
	char name[16];

	/* "govgate-w0" in top -H and perf. */
	snprintf(name, sizeof(name), "govgate-w%zu", w->id);
	(void)pthread_setname_np(pthread_self(), name);
	worker_listeners_enable(w, 1);
	log_debug("worker %zu: running", w->id);
	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	log_debug("worker %zu: stopped", w->id);
	pthread_mutex_lock(&g->mtx);
	g->nfinished++;
	pthread_cond_signal(&g->cond);
	pthread_mutex_unlock(&g->mtx);
	return NULL;
}

/*
 * An event base whose epoll changes are batched per loop iteration: a
 * write interest added and dropped again within one iteration (every
 * response) costs no epoll_ctl at all.
 */
static struct event_base *
worker_base_new(void)
{
	struct event_config *cfg;
	struct event_base *base;

	if ((cfg = event_config_new()) == NULL)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

/* Everything a worker owns apart from its thread: built on the caller's. */
static int
worker_init(struct worker *w, char *err, size_t errlen)
{
	size_t i;

	TAILQ_INIT(&w->conns);
	w->rnd_off = sizeof(w->rnd);
	w->batch = NULL;
	w->batch_tail = &w->batch;
	if ((w->base = worker_base_new()) == NULL ||
	    (w->wake = event_new(w->base, -1, EV_PERSIST, worker_wake_cb, w)) ==
	        NULL ||
	    (w->accept_timer =
	            evtimer_new(w->base, worker_accept_timer_cb, w)) == NULL ||
	    (w->flush_ev = event_new(w->base, -1, 0, worker_flush_cb, w)) ==
	        NULL ||
	    (w->retry_ev = evtimer_new(w->base, worker_retry_cb, w)) == NULL ||
	    (w->notify = auditlog_notify_new(w->base)) == NULL ||
	    (w->md = EVP_MD_CTX_new()) == NULL ||
	    (w->stage = evbuffer_new()) == NULL ||
	    (w->abmem = malloc(AUDIT_BODY_MAX)) == NULL ||
	    (w->pools = upstream_pools_new(w->set->ups, w->set->gen)) == NULL) {
		snprintf(err, errlen, "worker %zu: out of memory", w->id);
		return -1;
	}
	audit_buf_init(&w->ab, w->abmem, AUDIT_BODY_MAX);
	event_add(w->wake, NULL);
	for (i = 0; i < w->nls; i++) {
		w->ls[i].lev =
		    evconnlistener_new(w->base, worker_accept_cb, &w->ls[i],
		        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
		            LEV_OPT_DISABLED,
		        -1, w->ls[i].fd);
		if (w->ls[i].lev == NULL) {
			snprintf(err, errlen, "worker %zu: listener: %s", w->id,
			    strerror(errno));
			return -1;
		}
		evconnlistener_set_error_cb(w->ls[i].lev,
		    worker_accept_error_cb);
	}
	return 0;
}

int
worker_group_start(struct worker_group *g, char *err, size_t errlen)
{
	sigset_t all, old;
	size_t i;
	int rc;

	for (i = 0; i < g->n; i++)
		if (worker_init(&g->w[i], err, errlen) == -1)
			return -1;
	/* Signals go to the main thread: workers start with all blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < g->n; i++) {
		rc = pthread_create(&g->w[i].thread, NULL, worker_main,
		    &g->w[i]);
		if (rc != 0) {
			snprintf(err, errlen, "worker %zu: thread: %s", i,
			    strerror(rc));
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			return -1;
		}
		g->w[i].started = 1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return 0;
}

int
worker_group_can_swap(const struct worker_group *g,
    const struct worker_set *set, char *err, size_t errlen)
{
	const struct conf *c = set->cs->conf;
	size_t j;

	if (c->nlisteners != g->nlisteners) {
		snprintf(err, errlen,
		    "listeners added or removed: restart govgate to apply");
		return -1;
	}
	for (j = 0; j < g->nlisteners; j++) {
		if (strcmp(c->listeners[j].name, g->lnames[j]) != 0 ||
		    strcmp(c->listeners[j].address.text, g->laddrs[j]) != 0) {
			snprintf(err, errlen,
			    "listener %s: address or name changed: restart "
			    "govgate to apply",
			    c->listeners[j].name);
			return -1;
		}
	}
	if (worker_count(c) != g->n)
		log_warnx("reload: workers: the new count takes effect at the "
		          "next start");
	return 0;
}

void
worker_group_swap(struct worker_group *g, struct worker_set *set)
{
	size_t i;

	atomic_store(&g->max_conns, set->cs->conf->limits.max_connections);
	for (i = 0; i < g->n; i++) {
		worker_set_ref(set);
		pthread_mutex_lock(&g->w[i].mtx);
		worker_set_unref(g->w[i].inbox_set);
		g->w[i].inbox_set = set;
		g->w[i].inbox_resume = 1;
		pthread_mutex_unlock(&g->w[i].mtx);
		event_active(g->w[i].wake, EV_READ, 0);
	}
}

/* Post to every worker's inbox. */
static void
worker_group_post(struct worker_group *g, int stop, int force)
{
	size_t i;

	for (i = 0; i < g->n; i++) {
		if (!g->w[i].started)
			continue;
		pthread_mutex_lock(&g->w[i].mtx);
		g->w[i].inbox_stop |= stop;
		g->w[i].inbox_force |= force;
		pthread_mutex_unlock(&g->w[i].mtx);
		event_active(g->w[i].wake, EV_READ, 0);
	}
}

/* Wait until every started worker finished, or ms passed. 1: all done. */
static int
worker_group_wait(struct worker_group *g, size_t nstarted, int64_t ms)
{
	struct timespec ts;
	int done;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&g->mtx);
	while (g->nfinished < nstarted) {
		if (pthread_cond_timedwait(&g->cond, &g->mtx, &ts) != 0)
			break;
	}
	done = g->nfinished >= nstarted;
	pthread_mutex_unlock(&g->mtx);
	return done;
}

void
worker_group_stop(struct worker_group *g, int64_t drain_ms)
{
	size_t i, nstarted = 0;

	for (i = 0; i < g->n; i++)
		nstarted += g->w[i].started;
	worker_group_post(g, 1, 0);
	if (!worker_group_wait(g, nstarted, drain_ms)) {
		log_warnx("shutdown: requests still in flight after %lld ms: "
		          "closing them",
		    (long long)drain_ms);
		worker_group_post(g, 1, 1);
		if (!worker_group_wait(g, nstarted, WORKER_RECORDS_MS)) {
			log_error("shutdown: audit records still queued after "
			          "%d ms: stopping anyway",
			    WORKER_RECORDS_MS);
			for (i = 0; i < g->n; i++)
				if (g->w[i].started)
					event_base_loopbreak(g->w[i].base);
		}
	}
	for (i = 0; i < g->n; i++) {
		if (!g->w[i].started)
			continue;
		pthread_join(g->w[i].thread, NULL);
		g->w[i].started = 0;
	}
}

static void
worker_free(struct worker *w)
{
	struct worker_rec *rec;
	struct auditlog_req *r, *rnext;
	if (w->base != NULL)
		conn_shutdown_all(w, 1);
	worker_listeners_free(w);
	upstream_pools_free(w->pools);
	while ((rec = w->free_recs) != NULL) {
		w->free_recs = rec->next;
		free(rec);
	}
	if (w->notify != NULL)
		auditlog_notify_free(w->notify);
	/* After the notify queue: a late record may free a connection. */
	conn_pool_free(w);
	if (w->wake != NULL)
		event_free(w->wake);
	if (w->accept_timer != NULL)
		event_free(w->accept_timer);
	if (w->flush_ev != NULL)
		event_free(w->flush_ev);
	if (w->retry_ev != NULL)
		event_free(w->retry_ev);
	if (w->nretry > 0)
		log_error("worker %zu: audit: %zu records lost: the trail "
		          "refused them until shutdown",
		    w->id, w->nretry);
	while ((rec = w->retry) != NULL) {
		w->retry = rec->next;
		free(rec);
	}
	for (r = w->batch; r != NULL; r = rnext) {
		rnext = r->next;
		free(r->arg);
	}
	if (w->base != NULL)
		event_base_free(w->base);
	EVP_MD_CTX_free(w->md);
	if (w->stage != NULL)
		evbuffer_free(w->stage);
	free(w->abmem);
	free(w->scratch);
	worker_set_unref(w->inbox_set);
	worker_set_unref(w->set);
	free(w->ls);
	pthread_mutex_destroy(&w->mtx);
}

void
worker_group_free(struct worker_group *g)
{
	size_t i;

	if (g == NULL)
		return;
	for (i = 0; i < g->n; i++)
		worker_free(&g->w[i]);
	for (i = 0; i < g->nlisteners; i++) {
		free(g->lnames[i]);
		free(g->laddrs[i]);
	}
	free(g->lnames);
	free(g->laddrs);
	free(g->w);
	pthread_mutex_destroy(&g->mtx);
	pthread_cond_destroy(&g->cond);
	free(g);
}

void
worker_group_set_metrics(struct worker_group *g, struct metrics *m)
{
	size_t i;

	g->metrics = m;
	for (i = 0; i < g->n; i++)
		g->w[i].ms = metrics_shard_at(m, i);
}
