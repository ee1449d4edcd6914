/* SPDX-License-Identifier: ISC */
/* admin.h - the admin listener: GET /healthz and GET /metrics, plain HTTP. */
#ifndef ADMIN_H
#define ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct conf;
struct conf_addr;
struct metrics;
struct metrics_state;

/*
 * Wiring it into serve (cmd_serve.c, worker.c, conn.c):
 *
 * Start, after worker_group_new(): m = metrics_new(worker_group_nworkers
 * (g), err, errlen); give worker i metrics_shard_at(m, i) (say w->ms,
 * which only that thread writes). If conf->has_admin, bind now, so a
 * busy port stops the start before the audit trail is touched: a =
 * admin_new(&conf->admin, err, errlen). Once the trail is open and handed
 * to the workers: admin_start(a, m, state_cb, &sv, err, errlen). state_cb
 * runs on the admin thread: st->draining from an atomic flag the SIGTERM
 * handler sets, and auditlog_stats(al, &st->audit) with st->have_audit =
 * 1; /healthz is 503 while either says so.
 *
 * Each worker_set gets set->mg = metrics_gen_new(m, set->cs->policy,
 * set->cs->conf, err, errlen) before any connection can use it (the
 * first right after metrics_new; on SIGHUP before worker_group_swap), and
 * metrics_gen_unref(set->mg) where the set is freed; a NULL mg only
 * empties labels. At start and after each swap: metrics_set_policy(m,
 * set->mg) and admin_observe_certs(m, set->cs->conf, set->server_ctx,
 * set->nlisteners); each SIGHUP: metrics_count_reload(m, swapped).
 *
 * Hot path, ms = c->w->ms, mg = c->set->mg: metrics_conn_opened where
 * conn_accept links c in, metrics_conn_closed where conn_close unlinks
 * it; metrics_tls_failure(ms, mg, c->li, why) on a failed handshake, why
 * = metrics_tls_fail_from_verify(SSL_get_verify_result()) when verifying
 * failed (PEER_DID_NOT_RETURN_A_CERTIFICATE too), else CLOSED, PROTOCOL,
 * or TIMEOUT from the handshake deadline; metrics_request once per
 * decided request with what the client got: denials in conn_decide, an
 * allow in conn_decision_done_cb (deny POLICY_R_AUDIT_UNAVAILABLE when
 * !ok, and when the submit is refused); metrics_response and
 * metrics_request_time(now - c->t0) in conn_answer for requests not
 * allowed and in conn_complete for allowed ones, there also
 * metrics_upstream_time(t_resp - t_up); metrics_upstream_error(ms, mg,
 * c->ui, kind) in conn_up_failed (connect, tls, reset), on the 504
 * (timeout) and on bad_upstream_response (bad_response). Audit lag:
 * metrics_audit_lag(m, now - r->queued_us) for each record handed back
 * ok (worker_rec_done, or the writer itself).
 *
 * Stop: set draining; worker_group_stop(); admin_free(a) before
 * auditlog_close() (state_cb reads the trail); metrics_free(m) last.
 */

#define ADMIN_MAX_HEAD 8192           /* bytes of a request head */
#define ADMIN_MAX_HEADERS 32          /* header lines of a request */
#define ADMIN_MAX_CONNS 16            /* at once; more wait in the backlog */
#define ADMIN_HEAD_TIMEOUT_MS 1000    /* accept to complete head */
#define ADMIN_SEND_TIMEOUT_MS 1000    /* no write progress for this long */
#define ADMIN_SEND_MAX_MS 10000       /* whole answer, however it trickles */
#define ADMIN_LINGER_MS 500           /* after the answer: read, drop, close */
#define ADMIN_MAX_DISCARD (64 * 1024) /* bytes dropped after a head */
#define ADMIN_BACKLOG 64
#define ADMIN_ACCEPT_PAUSE_MS 100 /* accept failed (EMFILE): pause */

struct admin;

/*
 * Bind and listen on addr (an IP literal and port; port 0 picks one, see
 * admin_port). Nothing is served before admin_start. Returns an owned
 * admin, or NULL with a reason in err (address in use, no permission).
 */
struct admin *admin_new(const struct conf_addr *addr, char *err, size_t errlen);

/*
 * Serve on a thread of its own: answers do not wait for the main loop
 * (reloads, the SIGTERM drain). state (may be NULL) is called on that
 * thread for every /healthz and /metrics to fill a zeroed st; it must be
 * thread-safe and quick. m is borrowed and must outlive a. Returns 0, or
 * -1 with a reason in err.
 */
int admin_start(struct admin *a, struct metrics *m,
    void (*state)(void *arg, struct metrics_state *st), void *arg, char *err,
    size_t errlen);

/* Stop the thread, close every admin connection, free a. NULL ok. */
void admin_free(struct admin *a);

/* The bound port (the one chosen when addr asked for port 0). */
uint16_t admin_port(const struct admin *a);

/*
 * Record the certificate times of the n listeners of c (ctx[i] is the
 * server context of c->listeners[i]): the certificate's notAfter, the
 * soonest notAfter among the client CAs and the soonest nextUpdate among
 * the CRLs of its verify store. Times that do not exist are forgotten.
 */
void admin_observe_certs(struct metrics *m, const struct conf *c,
    SSL_CTX *const *ctx, size_t n);

#endif /* ADMIN_H */
