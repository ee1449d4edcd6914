/* conn.h - one client connection: TLS, strict HTTP, decide, audit, relay. */
#ifndef CONN_H
#define CONN_H

#include <sys/socket.h>

#include <stddef.h>

struct worker;
struct conn_req;

#define CONN_RELAY_HIGH (256 * 1024) /* bytes queued towards a peer: pause */
#define CONN_RELAY_LOW (64 * 1024)   /* ... resume below this */
#define CONN_LINGER_MS 2000          /* reading after a closing answer */
#define CONN_LINGER_MAX (256 * 1024) /* bytes discarded while lingering */
#define CONN_MAX_RETRIES 2           /* other servers tried per request */
#define CONN_COALESCE 4096 /* body bytes copied behind a head, not moved */
#define CONN_DIRECT_MAX (16 * 1024) /* staged bytes sent at once, at most */
#define CONN_UP_FILL (64 * 1024)    /* upstream body read per loop turn */

/*
 * The states of a connection; conn_set_state() is the only writer and
 * installs the callbacks and deadline of the state it enters.
 */
enum conn_state {
	CONN_HANDSHAKE = 0, /* TLS accept under an absolute deadline */
	CONN_PROXY,         /* PROXY header from a trusted balancer, first */
	CONN_IDLE,          /* keep-alive: no byte of the next request yet */
	CONN_READ_HEAD,     /* reading a request head under its deadline */
	CONN_AUDIT,         /* allowed; decision record on its way to disk */
	CONN_CONNECT,       /* record durable; connecting to the upstream */
	CONN_RELAY,         /* request up, response down, with backpressure */
	CONN_FLUSH,  /* an answer queued; wait for the client to read it */
	CONN_DRAIN,  /* last answer written: flush, then linger, close */
	CONN_CLOSED, /* released; waiting for its audit records */
};

struct conn;

/*
 * Take over an accepted socket fd of listener li on worker w: starts the
 * TLS handshake under the set w uses now. Closes fd on failure.
 */
void conn_accept(struct worker *w, size_t li, int fd, const struct sockaddr *sa,
    socklen_t salen);

/*
 * End c, whatever its state: log why, free what exists, count it gone.
 * The memory itself goes once no audit record refers to it.
 */
void conn_close(struct conn *c, const char *reason);

/*
 * Shutdown of worker w: close its connections that are between requests
 * (with force: all of them); the others close after their current
 * exchange.
 */
void conn_shutdown_all(struct worker *w, int force);

/* Free the worker's pool of request buffers (at its end). */
void conn_pool_free(struct worker *w);

const char *conn_state_str(enum conn_state s);

#endif /* CONN_H */
