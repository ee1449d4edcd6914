/* loadgen.c - HTTP/1.1 load generator with TLS client certificates. */
#include "config.h"

#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

/*
 * Usage: loadgen [options] HOST:PORT   (loadgen --help lists them)
 *
 * One process, one or two threads, each with its own epoll set and its
 * share of the connections. Modes:
 *   max        closed loop: every connection sends its next keep-alive GET
 *              as soon as the previous response is complete
 *   rate       open loop: requests are due at a fixed rate whether or not
 *              earlier ones finished; a due request waits for a free
 *              connection, and its latency counts from when it was due
 *              (no coordinated omission)
 *   handshake  a new connection (TCP + TLS) per request, which says
 *              "Connection: close"; with --resume each connection offers
 *              the session ticket its slot received last time
 *   idle       open K connections, one request on each, then hold them
 *   upload     one PUT of --size bytes; download: one GET, body counted
 * Every run is bounded: by --duration (and --requests), and by a hard
 * deadline after which it stops whatever is left. It prints human lines on
 * stderr and one "RESULT key=value ..." line on stdout. It measures; it
 * never judges a number.
 */

#define LG_MAX_THREADS 2
#define LG_MAX_HEADERS 8
#define LG_MAX_HEAD 8192          /* response head bytes kept per connection */
#define LG_MAX_REQ 4096           /* request head bytes */
#define LG_RBUF (64 * 1024)       /* read buffer per thread */
#define LG_WCHUNK (16 * 1024)     /* upload write size */
#define LG_MAX_CONNS 100000       /* connections per run */
#define LG_MAX_SECONDS 600.0      /* duration, hold and warmup each */
#define LG_DRAIN_NS 5000000000ULL /* rate mode: wait for stragglers */
#define LG_QUEUE_MAX (1u << 22)   /* rate mode: due requests waiting */
#define LG_EVENTS 256
#define LG_NS 1000000000ULL

/* Histogram: exact below 2048 ns, then 1024 sub-buckets per power of 2. */
#define LG_HIST_LINEAR 2048
#define LG_HIST_SUB 1024
#define LG_HIST_MAXEXP 42
#define LG_HIST_BUCKETS (LG_HIST_LINEAR + (LG_HIST_MAXEXP - 10) * LG_HIST_SUB)

enum loadgen_mode {
	LG_MODE_MAX = 0,
	LG_MODE_RATE,
	LG_MODE_HANDSHAKE,
	LG_MODE_IDLE,
	LG_MODE_UPLOAD,
	LG_MODE_DOWNLOAD,
};

enum loadgen_cstate {
	LG_C_CLOSED = 0, /* no socket */
	LG_C_CONNECTING, /* TCP connect in progress */
	LG_C_HANDSHAKE,  /* TLS handshake in progress */
	LG_C_SEND,       /* writing a request (head, then upload body) */
	LG_C_RECV,       /* reading a response */
	LG_C_WAIT,       /* keep-alive, nothing to send (rate mode, idle) */
};

enum loadgen_rstate {
	LG_R_HEAD = 0,
	LG_R_BODY_CL,    /* Content-Length bytes left */
	LG_R_BODY_EOF,   /* until the server closes */
	LG_R_CHUNK_SIZE, /* a chunk-size line */
	LG_R_CHUNK_DATA, /* chunk bytes left */
	LG_R_CHUNK_CRLF, /* the CRLF after a chunk */
	LG_R_TRAILER,    /* trailer lines up to an empty one */
	LG_R_DONE,
};

enum loadgen_io {
	LG_IO_EOF = 0,
	LG_IO_ERROR = -1,
	LG_IO_WANT_READ = -2,
	LG_IO_WANT_WRITE = -3,
};

struct loadgen_stats {
	uint64_t measured;    /* responses inside the window */
	uint64_t responses;   /* all complete responses */
	uint64_t unexpected;  /* responses with another status than --expect */
	int bad_status;       /* the last such status */
	uint64_t err_connect; /* TCP connect failed */
	uint64_t err_tls;     /* TLS handshake failed */
	uint64_t err_io;      /* read/write error or EOF mid-response */
	uint64_t err_parse;   /* malformed response */
	uint64_t err_timeout; /* due or in flight when the run ended */
	uint64_t err_dropped; /* idle: connection closed while held */
	uint64_t reconnects;  /* connections opened after the first ones */
	uint64_t handshakes;  /* TLS handshakes completed */
	uint64_t resumed;     /* ... of which resumed a session */
	uint64_t bytes_in;    /* response body bytes */
	uint64_t bytes_out;   /* request body bytes */
	uint64_t window_ns;   /* this thread's measured window */
	uint64_t transfer_ns; /* upload/download: request start to end */
};

struct loadgen_hist {
	uint64_t *b;
	uint64_t n;
	uint64_t max;
	long double sum;
};

struct loadgen_thread;

struct loadgen_conn {
	struct loadgen_thread *t;
	uint32_t idx;
	uint32_t gen; /* bumped at each close: stale events are ignored */
	int fd;
	SSL *ssl;
	SSL_SESSION *sess; /* handshake --resume: last ticket of this slot */
	enum loadgen_cstate state;
	uint32_t events; /* current epoll interest, 0 = not registered */
	int held;        /* idle mode: counted as held */
	/* request */
	size_t woff;
	uint64_t body_left;
	uint64_t t_open;     /* connect started */
	uint64_t t_sent;     /* request started */
	uint64_t t_intended; /* rate mode: when the request was due */
	/* response */
	enum loadgen_rstate rstate;
	int status;
	int close_after;
	uint64_t left; /* body or chunk bytes left */
	size_t hlen;
	char head[LG_MAX_HEAD];
};

struct loadgen_thread {
	int id;
	int ep;
	pthread_t tid;
	struct loadgen_conn *conns;
	uint32_t nconns;   /* slots */
	uint32_t target;   /* idle mode: connections to hold */
	uint32_t opened;   /* idle mode: connections opened so far */
	uint32_t held;     /* idle mode: held now */
	uint32_t failed;   /* idle mode: failed to establish */
	uint32_t inflight; /* rate mode: requests sent, not answered */
	struct loadgen_conn **idle;
	uint32_t nidle;
	/* rate mode */
	uint64_t *queue;
	uint32_t qhead, qlen;
	uint64_t interval_ns;
	uint64_t next_due;
	uint64_t sched_limit; /* due requests to issue at most */
	uint64_t sched_n;
	/* the run */
	uint64_t stop_at; /* measured window end (0: not yet ended) */
	int stopping;
	int done;
	uint64_t cpu_begin, cpu_end; /* --stat-pid ticks, thread 0 */
	struct loadgen_hist hist;
	struct loadgen_stats st;
	char rbuf[LG_RBUF];
};

struct loadgen_opts {
	enum loadgen_mode mode;
	const char *host;
	const char *port;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	uint32_t conns;
	uint32_t idle;
	int threads;
	double duration, warmup, hold, settle, rate;
	uint64_t requests;
	uint64_t size;
	const char *path;
	const char *hosthdr;
	const char *headers[LG_MAX_HEADERS];
	int nheaders;
	int tls;
	int resume;
	int max_tls12;
	const char *cert, *key, *ca;
	char *sni; /* SSL_set_tlsext_host_name() casts away const */
	int expect;
	pid_t stat_pid;
	const char *ready_file;
	int quiet;
};

static struct loadgen_opts opt;
static SSL_CTX *loadgen_ctx;
static char loadgen_req[LG_MAX_REQ];
static size_t loadgen_reqlen;
static char loadgen_zeros[LG_WCHUNK];
/* What the first completed handshake negotiated (for the report). */
static char loadgen_tls_version[32] = "-", loadgen_tls_cipher[64] = "-";
static int loadgen_tls_seen;
/* Phase boundaries, CLOCK_MONOTONIC ns, set before the threads start. */
static uint64_t loadgen_t_begin, loadgen_t_meas, loadgen_t_end,
    loadgen_t_deadline;

static void loadgen_drive(struct loadgen_conn *c, uint32_t ev);
static void loadgen_open(struct loadgen_conn *c);

static uint64_t
loadgen_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * LG_NS + (uint64_t)ts.tv_nsec;
}

static void
loadgen_die(const char *what)
{
	fprintf(stderr, "loadgen: %s\n", what);
	exit(2);
}

/* --- histogram ----------------------------------------------------------- */

static size_t
loadgen_hist_index(uint64_t v)
{
	int e;

	if (v < LG_HIST_LINEAR)
		return (size_t)v;
	e = 63 - __builtin_clzll(v); /* >= 11 */
	if (e >= LG_HIST_MAXEXP)
		return LG_HIST_BUCKETS - 1;
	return LG_HIST_LINEAR + (size_t)(e - 11) * LG_HIST_SUB +
	    (size_t)((v >> (e - 10)) & (LG_HIST_SUB - 1));
}

/* The middle of bucket i, in ns. */
static double
loadgen_hist_value(size_t i)
{
	size_t e, sub;
	double lo, w;

	if (i < LG_HIST_LINEAR)
		return (double)i;
	e = (i - LG_HIST_LINEAR) / LG_HIST_SUB + 11;
	sub = (i - LG_HIST_LINEAR) % LG_HIST_SUB;
	w = (double)(1ULL << (e - 10));
	lo = (double)(1ULL << e) + (double)sub * w;
	return lo + w / 2;
}

static void
loadgen_hist_add(struct loadgen_hist *h, uint64_t v)
{
	h->b[loadgen_hist_index(v)]++;
	h->n++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
}

static void
loadgen_hist_merge(struct loadgen_hist *to, const struct loadgen_hist *from)
{
	size_t i;

	for (i = 0; i < LG_HIST_BUCKETS; i++)
		to->b[i] += from->b[i];
	to->n += from->n;
	to->sum += from->sum;
	if (from->max > to->max)
		to->max = from->max;
}

/* The q-quantile (0 < q <= 1) in microseconds; 0 when empty. */
static double
loadgen_hist_quantile(const struct loadgen_hist *h, double q)
{
	uint64_t want, acc = 0;
	size_t i;

	if (h->n == 0)
		return 0;
	want = (uint64_t)(q * (double)h->n + 0.999999);
	if (want < 1)
		want = 1;
	for (i = 0; i < LG_HIST_BUCKETS; i++) {
		acc += h->b[i];
		if (acc >= want)
			return loadgen_hist_value(i) / 1000.0;
	}
	return (double)h->max / 1000.0;
}

/* --- /proc of the process under test ------------------------------------- */

/* utime + stime of pid in clock ticks, or 0 if unreadable. */
static uint64_t
loadgen_proc_cpu(pid_t pid)
{
	char path[64], buf[4096], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f = NULL;
	size_t n;
	int i;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: skip to the last
	 * ')'. Then field 3 (state) follows; utime and stime are 14 and 15. */
	if ((p = strrchr(buf, ')')) == NULL)
		return 0;
	p++;
	for (i = 3; i < 14 && p != NULL; i++) {
		while (*p == ' ')
			p++;
		p = strchr(p, ' ');
	}
	if (p == NULL || sscanf(p, "%llu %llu", &ut, &st) != 2)
		return 0;
	return ut + st;
}

/* A "Name: N kB" field of /proc/PID/status in kB, or -1. */
static long
loadgen_proc_status(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t flen = strlen(field);
	long v = -1;
	FILE *f = NULL;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
			v = strtol(line + flen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

/* Reset pid's VmHWM to its current RSS (Linux clear_refs "5"). */
static int
loadgen_proc_reset_hwm(pid_t pid)
{
	char path[64];
	int fd, ok;

	snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)pid);
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) == -1)
		return 0;
	ok = write(fd, "5", 1) == 1;
	close(fd);
	return ok;
}

/* --- connections --------------------------------------------------------- */

static void
loadgen_watch(struct loadgen_conn *c, uint32_t events)
{
	struct epoll_event ev;
	int op;

	if (c->events == events)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.u64 = ((uint64_t)c->gen << 32) | c->idx;
	op = c->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
	if (events == 0)
		op = EPOLL_CTL_DEL;
	if (epoll_ctl(c->t->ep, op, c->fd, &ev) == -1)
		loadgen_die("epoll_ctl failed");
	c->events = events;
}

/* Close the socket; keep the slot (and its session for --resume). */
static void
loadgen_close(struct loadgen_conn *c)
{
	if (c->ssl != NULL) {
		/* Closing without a shutdown marks the session not resumable
		 * (SSL_free removes it from the cache): mark the connection
		 * shut down quietly, as a client that is done with it would. */
		if (c->state != LG_C_HANDSHAKE && c->state != LG_C_CONNECTING)
			SSL_set_shutdown(c->ssl,
			    SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
		if (opt.resume && c->state != LG_C_HANDSHAKE &&
		    c->state != LG_C_CONNECTING) {
			SSL_SESSION *s = SSL_get1_session(c->ssl);

			if (s != NULL) {
				SSL_SESSION_free(c->sess);
				c->sess = s;
			}
		}
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd != -1)
		close(c->fd); /* also leaves the epoll set */
	c->fd = -1;
	c->events = 0;
	c->gen++;
	c->state = LG_C_CLOSED;
}

static int
loadgen_running(uint64_t now)
{
	return now < loadgen_t_end;
}

static void
loadgen_push_idle(struct loadgen_conn *c)
{
	struct loadgen_thread *t = c->t;

	c->state = LG_C_WAIT;
	t->idle[t->nidle++] = c;
	loadgen_watch(c, EPOLLIN);
}

/* A connection failed or the server closed it: count, then replace it. */
static void
loadgen_fail(struct loadgen_conn *c, uint64_t *counter)
{
	struct loadgen_thread *t = c->t;
	uint32_t i;

	(*counter)++;
	if (c->state == LG_C_SEND || c->state == LG_C_RECV) {
		if (opt.mode == LG_MODE_RATE)
			t->inflight--;
	}
	if (c->state == LG_C_WAIT) {
		for (i = 0; i < t->nidle; i++) {
			if (t->idle[i] == c) {
				t->idle[i] = t->idle[--t->nidle];
				break;
			}
		}
	}
	if (c->held) {
		c->held = 0;
		t->held--;
	}
	loadgen_close(c);
	switch (opt.mode) {
	case LG_MODE_MAX:
	case LG_MODE_RATE:
	case LG_MODE_HANDSHAKE:
		if (!t->stopping && loadgen_running(loadgen_now())) {
			t->st.reconnects++;
			loadgen_open(c);
		}
		break;
	case LG_MODE_IDLE:
		if (counter != &t->st.err_dropped)
			t->failed++;
		break;
	case LG_MODE_UPLOAD:
	case LG_MODE_DOWNLOAD:
		t->done = 1;
		break;
	}
}

static void
loadgen_start_request(struct loadgen_conn *c, uint64_t now)
{
	c->state = LG_C_SEND;
	c->woff = 0;
	c->body_left = opt.mode == LG_MODE_UPLOAD ? opt.size : 0;
	c->t_sent = now;
	c->rstate = LG_R_HEAD;
	c->hlen = 0;
	c->status = 0;
	c->close_after = 0;
	c->left = 0;
	/* The caller drives the connection on: the write usually succeeds at
	 * once, so the epoll interest stays EPOLLIN between requests. */
}

/* Start the TCP connection of slot c. */
static void
loadgen_open(struct loadgen_conn *c)
{
	int fd, one = 1;

	c->t_open = loadgen_now();
	fd = socket(opt.addr.ss_family,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		c->t->st.err_connect++;
		if (opt.mode == LG_MODE_IDLE)
			c->t->failed++;
		else if (opt.mode >= LG_MODE_UPLOAD)
			c->t->done = 1;
		return;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	c->state = LG_C_CONNECTING;
	c->events = 0;
	if (connect(fd, (struct sockaddr *)&opt.addr, opt.addrlen) == -1 &&
	    errno != EINPROGRESS) {
		loadgen_fail(c, &c->t->st.err_connect);
		return;
	}
	loadgen_watch(c, EPOLLOUT);
}

/* The connection is ready for requests (TCP up, TLS done if any). */
static void
loadgen_ready(struct loadgen_conn *c, uint64_t now)
{
	struct loadgen_thread *t = c->t;

	if (opt.mode == LG_MODE_RATE) {
		if (t->qlen > 0) {
			c->t_intended = t->queue[t->qhead];
			t->qhead = (t->qhead + 1) % LG_QUEUE_MAX;
			t->qlen--;
			t->inflight++;
			loadgen_start_request(c, now);
		} else
			loadgen_push_idle(c);
		return;
	}
	loadgen_start_request(c, now);
}

static enum loadgen_io
loadgen_ssl_err(struct loadgen_conn *c, int rc)
{
	switch (SSL_get_error(c->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		return LG_IO_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return LG_IO_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return LG_IO_EOF;
	default:
		return LG_IO_ERROR;
	}
}

/* Read into buf: bytes (> 0) or an enum loadgen_io. */
static long
loadgen_read(struct loadgen_conn *c, char *buf, size_t len)
{
	ssize_t n;
	int rc;

	if (c->ssl != NULL) {
		ERR_clear_error();
		rc = SSL_read(c->ssl, buf, (int)len);
		if (rc > 0)
			return rc;
		return loadgen_ssl_err(c, rc);
	}
	n = read(c->fd, buf, len);
	if (n > 0)
		return (long)n;
	if (n == 0)
		return LG_IO_EOF;
	if (errno == EAGAIN || errno == EINTR)
		return LG_IO_WANT_READ;
	return LG_IO_ERROR;
}

static long
loadgen_write(struct loadgen_conn *c, const char *buf, size_t len)
{
	ssize_t n;
	int rc;

	if (c->ssl != NULL) {
		ERR_clear_error();
		rc = SSL_write(c->ssl, buf, (int)len);
		if (rc > 0)
			return rc;
		return loadgen_ssl_err(c, rc);
	}
	n = send(c->fd, buf, len, MSG_NOSIGNAL);
	if (n > 0)
		return (long)n;
	if (n == 0 || errno == EAGAIN || errno == EINTR)
		return LG_IO_WANT_WRITE;
	return LG_IO_ERROR;
}

/* Case-insensitive search for needle in [p, p + len). */
static int
loadgen_has_token(const char *p, size_t len, const char *needle)
{
	size_t n = strlen(needle), i;

	for (i = 0; i + n <= len; i++)
		if (strncasecmp(p + i, needle, n) == 0)
			return 1;
	return 0;
}

/*
 * Parse a complete response head of hlen bytes (ending in CRLF CRLF).
 * Returns 0 and sets status, body framing and close_after, or -1.
 */
static int
loadgen_parse_head(struct loadgen_conn *c, size_t hlen)
{
	const char *p = c->head, *end = c->head + hlen, *eol, *v;
	int http10, have_cl = 0, chunked = 0, keepalive = 0, close_tok = 0;
	unsigned long long cl = 0;
	size_t nlen;

	if (hlen < 12 || strncmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ')
		return -1;
	http10 = p[7] == '0';
	if (p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' ||
	    p[11] < '0' || p[11] > '9')
		return -1;
	c->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
		return -1;
	for (p = eol + 1; p < end; p = eol + 1) {
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			return -1;
		if ((v = memchr(p, ':', (size_t)(eol - p))) == NULL)
			continue; /* the final empty line */
		nlen = (size_t)(v - p);
		v++;
		if (nlen == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
			char *ep;

			errno = 0;
			cl = strtoull(v, &ep, 10);
			if (errno != 0 || ep == v)
				return -1;
			have_cl = 1;
		} else if (nlen == 17 &&
		    strncasecmp(p, "Transfer-Encoding", 17) == 0) {
			chunked =
			    loadgen_has_token(v, (size_t)(eol - v), "chunked");
		} else if (nlen == 10 &&
		    strncasecmp(p, "Connection", 10) == 0) {
			close_tok |=
			    loadgen_has_token(v, (size_t)(eol - v), "close");
			keepalive |= loadgen_has_token(v, (size_t)(eol - v),
			    "keep-alive");
		}
	}
	c->close_after = close_tok || (http10 && !keepalive);
	if (c->status == 204 || c->status == 304 || c->status < 200) {
		c->rstate = LG_R_DONE;
	} else if (chunked) {
		c->rstate = LG_R_CHUNK_SIZE;
		c->hlen = 0;
	} else if (have_cl) {
		c->left = cl;
		c->rstate = cl == 0 ? LG_R_DONE : LG_R_BODY_CL;
	} else {
		c->rstate = LG_R_BODY_EOF;
		c->close_after = 1;
	}
	return 0;
}

/*
 * Feed n response bytes. Returns 1 when the response is complete, 0 when
 * more is needed, -1 on a malformed response. The head is gathered in
 * c->head; chunk-size and trailer lines reuse it.
 */
static int
loadgen_feed(struct loadgen_conn *c, const char *p, size_t n)
{
	struct loadgen_thread *t = c->t;
	size_t take, from, i;
	const char *nl;

	while (n > 0 || c->rstate == LG_R_DONE) {
		switch (c->rstate) {
		case LG_R_HEAD:
			from = c->hlen > 3 ? c->hlen - 3 : 0;
			take = n;
			if (take > sizeof(c->head) - c->hlen)
				take = sizeof(c->head) - c->hlen;
			memcpy(c->head + c->hlen, p, take);
			c->hlen += take;
			for (i = from; i + 3 < c->hlen; i++) {
				if (memcmp(c->head + i, "\r\n\r\n", 4) == 0)
					break;
			}
			if (i + 3 >= c->hlen) {
				if (c->hlen == sizeof(c->head))
					return -1;
				return 0; /* take == n here */
			}
			/* Bytes of this read that lie beyond the head. */
			take -= c->hlen - (i + 4);
			p += take;
			n -= take;
			if (loadgen_parse_head(c, i + 4) == -1)
				return -1;
			break;
		case LG_R_BODY_CL:
		case LG_R_CHUNK_DATA:
			take = n < c->left ? n : (size_t)c->left;
			c->left -= take;
			t->st.bytes_in += take;
			p += take;
			n -= take;
			if (c->left == 0)
				c->rstate = c->rstate == LG_R_BODY_CL
				    ? LG_R_DONE
				    : LG_R_CHUNK_CRLF;
			break;
		case LG_R_BODY_EOF:
			t->st.bytes_in += n;
			return 0;
		case LG_R_CHUNK_CRLF:
			if (*p == '\n')
				c->rstate = LG_R_CHUNK_SIZE;
			else if (*p != '\r')
				return -1;
			p++;
			n--;
			break;
		case LG_R_CHUNK_SIZE:
		case LG_R_TRAILER:
			nl = memchr(p, '\n', n);
			take = nl != NULL ? (size_t)(nl - p) + 1 : n;
			if (take > sizeof(c->head) - c->hlen)
				return -1;
			memcpy(c->head + c->hlen, p, take);
			c->hlen += take;
			p += take;
			n -= take;
			if (nl == NULL)
				return 0;
			if (c->rstate == LG_R_TRAILER) {
				if (c->hlen <= 2)
					c->rstate = LG_R_DONE;
				c->hlen = 0;
				break;
			}
			{
				char *ep;

				c->head[c->hlen - 1] = '\0';
				errno = 0;
				c->left = strtoull(c->head, &ep, 16);
				if (errno != 0 || ep == c->head)
					return -1;
			}
			c->hlen = 0;
			c->rstate =
			    c->left == 0 ? LG_R_TRAILER : LG_R_CHUNK_DATA;
			break;
		case LG_R_DONE:
			/* Pipelining is never used: extra bytes are an error.
			 */
			return n == 0 ? 1 : -1;
		}
	}
	return 0;
}

/* A response is complete: count it and give the connection its next job. */
static void
loadgen_done(struct loadgen_conn *c, uint64_t now)
{
	struct loadgen_thread *t = c->t;
	uint64_t from;
	int in_window;

	t->st.responses++;
	if (c->status != opt.expect) {
		t->st.unexpected++;
		t->st.bad_status = c->status;
	}
	switch (opt.mode) {
	case LG_MODE_RATE:
		t->inflight--;
		from = c->t_intended;
		in_window = from >= loadgen_t_meas && from < loadgen_t_end;
		break;
	case LG_MODE_HANDSHAKE:
		from = c->t_open;
		in_window = now >= loadgen_t_meas && t->stop_at == 0;
		break;
	default:
		from = c->t_sent;
		in_window = now >= loadgen_t_meas && t->stop_at == 0;
		break;
	}
	if (in_window && opt.mode != LG_MODE_IDLE) {
		t->st.measured++;
		loadgen_hist_add(&t->hist, now - from);
		if (opt.requests > 0 &&
		    t->st.measured >= opt.requests / (uint64_t)opt.threads)
			t->stopping = 1;
	}
	switch (opt.mode) {
	case LG_MODE_MAX:
	case LG_MODE_RATE:
		if (c->close_after) {
			loadgen_close(c);
			if (!t->stopping && loadgen_running(now)) {
				t->st.reconnects++;
				loadgen_open(c);
			}
		} else if (opt.mode == LG_MODE_MAX) {
			if (!t->stopping && loadgen_running(now))
				loadgen_start_request(c, now);
			else
				loadgen_close(c);
		} else
			loadgen_ready(c, now);
		break;
	case LG_MODE_HANDSHAKE:
		loadgen_close(c);
		if (!t->stopping && loadgen_running(now))
			loadgen_open(c);
		break;
	case LG_MODE_IDLE:
		if (c->close_after) {
			loadgen_fail(c, &t->st.err_dropped);
			t->failed++;
			break;
		}
		c->state = LG_C_WAIT;
		c->held = 1;
		t->held++;
		loadgen_watch(c, EPOLLIN);
		break;
	case LG_MODE_UPLOAD:
	case LG_MODE_DOWNLOAD:
		t->st.transfer_ns = now - c->t_sent;
		t->done = 1;
		loadgen_close(c);
		break;
	}
}

/* Move connection c forward as far as it goes without blocking. */
static void
loadgen_drive(struct loadgen_conn *c, uint32_t ev)
{
	struct loadgen_thread *t = c->t;
	socklen_t sl;
	long n;
	size_t len;
	int rc, err;

	for (;;) {
		switch (c->state) {
		case LG_C_CLOSED:
			return;
		case LG_C_CONNECTING:
			err = 0;
			sl = sizeof(err);
			if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err,
			        &sl) == -1 ||
			    err != 0) {
				loadgen_fail(c, &t->st.err_connect);
				return;
			}
			if (err == 0 &&
			    !(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
				return;
			if (!opt.tls) {
				loadgen_ready(c, loadgen_now());
				break;
			}
			if ((c->ssl = SSL_new(loadgen_ctx)) == NULL ||
			    SSL_set_fd(c->ssl, c->fd) != 1)
				loadgen_die("SSL_new failed");
			if (opt.sni != NULL)
				SSL_set_tlsext_host_name(c->ssl, opt.sni);
			if (opt.resume && c->sess != NULL)
				SSL_set_session(c->ssl, c->sess);
			SSL_set_connect_state(c->ssl);
			c->state = LG_C_HANDSHAKE;
			break;
		case LG_C_HANDSHAKE:
			ERR_clear_error();
			rc = SSL_do_handshake(c->ssl);
			if (rc != 1) {
				switch (loadgen_ssl_err(c, rc)) {
				case LG_IO_WANT_READ:
					loadgen_watch(c, EPOLLIN);
					return;
				case LG_IO_WANT_WRITE:
					loadgen_watch(c, EPOLLOUT);
					return;
				default:
					if (!opt.quiet && t->st.err_tls == 0)
						ERR_print_errors_fp(stderr);
					loadgen_fail(c, &t->st.err_tls);
					return;
				}
			}
			t->st.handshakes++;
			if (!__atomic_exchange_n(&loadgen_tls_seen, 1,
			        __ATOMIC_ACQ_REL)) {
				strlcpy(loadgen_tls_version,
				    SSL_get_version(c->ssl),
				    sizeof(loadgen_tls_version));
				strlcpy(loadgen_tls_cipher,
				    SSL_get_cipher_name(c->ssl),
				    sizeof(loadgen_tls_cipher));
			}
			if (SSL_session_reused(c->ssl))
				t->st.resumed++;
			loadgen_ready(c, loadgen_now());
			break;
		case LG_C_SEND:
			if (c->woff < loadgen_reqlen) {
				n = loadgen_write(c, loadgen_req + c->woff,
				    loadgen_reqlen - c->woff);
			} else if (c->body_left > 0) {
				len = c->body_left < LG_WCHUNK
				    ? (size_t)c->body_left
				    : LG_WCHUNK;
				n = loadgen_write(c, loadgen_zeros, len);
			} else {
				/* Wait for the answer in epoll rather than try
				 * a read that would only say EAGAIN: one
				 * syscall less per request (wrk does the same).
				 */
				c->state = LG_C_RECV;
				loadgen_watch(c, EPOLLIN);
				return;
			}
			if (n == LG_IO_WANT_WRITE || n == LG_IO_WANT_READ) {
				/* An upload may be answered before it ends. */
				if (opt.mode == LG_MODE_UPLOAD &&
				    (ev & EPOLLIN))
					goto recv;
				loadgen_watch(c,
				    n == LG_IO_WANT_WRITE ? EPOLLOUT |
				            (opt.mode == LG_MODE_UPLOAD
				                    ? EPOLLIN
				                    : 0)
				                          : EPOLLIN);
				return;
			}
			if (n <= 0) {
				loadgen_fail(c, &t->st.err_io);
				return;
			}
			if (c->woff < loadgen_reqlen)
				c->woff += (size_t)n;
			else {
				c->body_left -= (uint64_t)n;
				t->st.bytes_out += (uint64_t)n;
			}
			break;
		case LG_C_RECV:
		recv:
			ev = 0;
			n = loadgen_read(c, t->rbuf, sizeof(t->rbuf));
			if (n == LG_IO_WANT_READ || n == LG_IO_WANT_WRITE) {
				if (c->state == LG_C_SEND) {
					loadgen_watch(c, EPOLLOUT | EPOLLIN);
					break;
				}
				loadgen_watch(c,
				    n == LG_IO_WANT_READ ? EPOLLIN : EPOLLOUT);
				return;
			}
			if (n == LG_IO_EOF && c->rstate == LG_R_BODY_EOF) {
				loadgen_done(c, loadgen_now());
				return;
			}
			if (n <= 0) {
				loadgen_fail(c, &t->st.err_io);
				return;
			}
			rc = loadgen_feed(c, t->rbuf, (size_t)n);
			if (rc == -1) {
				loadgen_fail(c, &t->st.err_parse);
				return;
			}
			if (rc == 1) {
				loadgen_done(c, loadgen_now());
				if (c->state != LG_C_SEND)
					return;
				break;
			}
			/* Read on only if more is surely there: else epoll
			 * (level-triggered) says when. */
			if (c->state == LG_C_RECV &&
			    (c->ssl != NULL ? SSL_pending(c->ssl) > 0
			                    : (size_t)n == sizeof(t->rbuf)))
				break;
			if (c->state == LG_C_RECV)
				return;
			break;
		case LG_C_WAIT:
			/* Only a close, a TLS ticket or junk can arrive. */
			n = loadgen_read(c, t->rbuf, sizeof(t->rbuf));
			if (n == LG_IO_WANT_READ || n == LG_IO_WANT_WRITE)
				return;
			if (n > 0) {
				loadgen_fail(c, &t->st.err_parse);
				return;
			}
			loadgen_fail(c,
			    opt.mode == LG_MODE_IDLE && c->held
			        ? &t->st.err_dropped
			        : &t->st.reconnects);
			if (opt.mode != LG_MODE_IDLE)
				t->st.reconnects--; /* counted by the reopen */
			return;
		}
	}
}

/* --- the event loop ------------------------------------------------------ */

/* Rate mode: queue every request that is due by now, then hand them out. */
static void
loadgen_schedule(struct loadgen_thread *t, uint64_t now)
{
	struct loadgen_conn *c;

	while (!t->stopping && t->next_due <= now &&
	    t->next_due < loadgen_t_end && t->sched_n < t->sched_limit) {
		if (t->qlen == LG_QUEUE_MAX) {
			t->st.err_timeout++;
		} else {
			t->queue[(t->qhead + t->qlen) % LG_QUEUE_MAX] =
			    t->next_due;
			t->qlen++;
		}
		t->sched_n++;
		t->next_due = loadgen_t_begin + t->sched_n * t->interval_ns;
	}
	while (t->qlen > 0 && t->nidle > 0) {
		c = t->idle[--t->nidle];
		loadgen_ready(c, now);
		loadgen_drive(c, 0);
	}
}

static void
loadgen_sample_cpu(struct loadgen_thread *t, int end)
{
	if (t->id != 0 || opt.stat_pid <= 0)
		return;
	if (end)
		t->cpu_end = loadgen_proc_cpu(opt.stat_pid);
	else
		t->cpu_begin = loadgen_proc_cpu(opt.stat_pid);
}

/* May the loop stop now? Also closes the measured window when it ends. */
static int
loadgen_finished(struct loadgen_thread *t, uint64_t now)
{
	uint32_t i;

	if (now >= loadgen_t_deadline)
		return 1;
	switch (opt.mode) {
	case LG_MODE_IDLE:
		if (t->held + t->failed < t->target)
			return now >= loadgen_t_end; /* could not establish */
		return 0;                            /* main thread decides */
	case LG_MODE_UPLOAD:
	case LG_MODE_DOWNLOAD:
		return t->done || now >= loadgen_t_end;
	default:
		break;
	}
	if (t->stop_at == 0 && (t->stopping || now >= loadgen_t_end)) {
		t->stop_at = now < loadgen_t_end ? now : loadgen_t_end;
		t->stopping = 1;
		loadgen_sample_cpu(t, 1);
	}
	if (t->stop_at == 0)
		return 0;
	if (opt.mode == LG_MODE_RATE) {
		/* Wait for requests that were due inside the window. */
		if ((t->inflight > 0 || t->qlen > 0) &&
		    now < t->stop_at + LG_DRAIN_NS)
			return 0;
		t->st.err_timeout += t->qlen + t->inflight;
		return 1;
	}
	for (i = 0; i < t->nconns; i++)
		if (t->conns[i].state != LG_C_CLOSED)
			loadgen_close(&t->conns[i]);
	return 1;
}

static void *
loadgen_thread_main(void *arg)
{
	struct loadgen_thread *t = arg;
	struct epoll_event evs[LG_EVENTS];
	struct timespec ts;
	struct loadgen_conn *c;
	uint64_t now, wake;
	uint32_t i, idx, gen, initial;
	int n, k, measuring = 0;

	initial = t->nconns;
	if (opt.mode == LG_MODE_IDLE && initial > opt.conns)
		initial = opt.conns; /* establish at most -c at a time */
	for (i = 0; i < initial; i++) {
		loadgen_open(&t->conns[i]);
		t->opened++;
	}
	for (;;) {
		now = loadgen_now();
		if (!measuring && now >= loadgen_t_meas) {
			measuring = 1;
			loadgen_sample_cpu(t, 0);
		}
		if (opt.mode == LG_MODE_RATE)
			loadgen_schedule(t, now);
		if (opt.mode == LG_MODE_IDLE) {
			while (t->opened < t->nconns &&
			    t->opened - t->held - t->failed < opt.conns) {
				loadgen_open(&t->conns[t->opened]);
				t->opened++;
			}
		}
		if (loadgen_finished(t, now) ||
		    __atomic_load_n(&t->done, __ATOMIC_ACQUIRE) == 2)
			break;
		wake = now + 50000000ULL; /* look around at least every 50 ms */
		if (opt.mode == LG_MODE_RATE && !t->stopping && t->qlen == 0 &&
		    t->next_due < wake)
			wake = t->next_due;
		if (!measuring && loadgen_t_meas < wake)
			wake = loadgen_t_meas;
		if (t->stop_at == 0 && loadgen_t_end < wake)
			wake = loadgen_t_end;
		if (opt.mode == LG_MODE_RATE && t->qlen > 0 && t->nidle > 0)
			wake = now;
		ts.tv_sec = wake > now ? (time_t)((wake - now) / LG_NS) : 0;
		ts.tv_nsec = wake > now ? (long)((wake - now) % LG_NS) : 0;
		n = epoll_pwait2(t->ep, evs, LG_EVENTS, &ts, NULL);
		if (n == -1 && errno != EINTR)
			loadgen_die("epoll_pwait2 failed");
		for (k = 0; k < n; k++) {
			idx = (uint32_t)(evs[k].data.u64 & 0xffffffffu);
			gen = (uint32_t)(evs[k].data.u64 >> 32);
			if (idx >= t->nconns)
				continue;
			c = &t->conns[idx];
			if (c->gen != gen || c->state == LG_C_CLOSED)
				continue;
			loadgen_drive(c, evs[k].events);
		}
	}
	if (t->stop_at == 0)
		t->stop_at = now < loadgen_t_end ? now : loadgen_t_end;
	t->st.window_ns =
	    t->stop_at > loadgen_t_meas ? t->stop_at - loadgen_t_meas : 0;
	if (t->cpu_end == 0)
		loadgen_sample_cpu(t, 1);
	return NULL;
}

/* --- setup --------------------------------------------------------------- */

static uint64_t
loadgen_parse_size(const char *s)
{
	unsigned long long v;
	char *ep;

	errno = 0;
	v = strtoull(s, &ep, 10);
	if (errno != 0 || ep == s)
		loadgen_die("bad size");
	switch (*ep) {
	case 'k':
	case 'K':
		v <<= 10;
		break;
	case 'm':
	case 'M':
		v <<= 20;
		break;
	case 'g':
	case 'G':
		v <<= 30;
		break;
	case '\0':
		break;
	default:
		loadgen_die("bad size suffix (k, m, g)");
	}
	return v;
}

static double
loadgen_parse_seconds(const char *s, const char *what)
{
	char *ep;
	double v;

	errno = 0;
	v = strtod(s, &ep);
	if (errno != 0 || ep == s || *ep != '\0' || v < 0 ||
	    v > LG_MAX_SECONDS) {
		fprintf(stderr, "loadgen: %s: want 0..%.0f seconds\n", what,
		    LG_MAX_SECONDS);
		exit(2);
	}
	return v;
}

static unsigned long
loadgen_parse_ulong(const char *s, unsigned long max, const char *what)
{
	unsigned long v;
	char *ep;

	errno = 0;
	v = strtoul(s, &ep, 10);
	if (errno != 0 || ep == s || *ep != '\0' || v > max) {
		fprintf(stderr, "loadgen: %s: want 0..%lu\n", what, max);
		exit(2);
	}
	return v;
}

static void
loadgen_usage(FILE *f)
{
	fprintf(f,
	    "usage: loadgen [options] HOST:PORT\n"
	    "  -m, --mode MODE      max | rate | handshake | idle | upload |"
	    " download (max)\n"
	    "  -c, --connections N  connections (16); idle: opened at a time\n"
	    "  -t, --threads N      1 or 2 (1)\n"
	    "  -d, --duration S     measured seconds (10); idle and bulk: "
	    "time allowed\n"
	    "  -w, --warmup S       unmeasured seconds before (1)\n"
	    "  -n, --requests N     stop after N measured requests (no limit)\n"
	    "  -r, --rate R         rate: requests per second in total\n"
	    "  -k, --idle N         idle: connections to hold\n"
	    "      --hold S         idle: seconds to hold them (10)\n"
	    "      --settle S       idle: wait before reading RSS (1)\n"
	    "      --ready-file F   idle: create F once all are held\n"
	    "  -s, --size BYTES     upload: PUT body size (k, m, g)\n"
	    "  -u, --path PATH      request target (/)\n"
	    "  -H, --header 'N: V'  extra request header (up to %d)\n"
	    "      --host NAME      Host header (HOST)\n"
	    "      --expect CODE    status that counts as success (200)\n"
	    "      --tls            speak TLS\n"
	    "      --cert F --key F client certificate chain and key\n"
	    "      --ca F           verify the server against F (no check)\n"
	    "      --sni NAME       server name to send\n"
	    "      --resume         handshake: resume with session tickets\n"
	    "      --tls12          offer TLS 1.2 at most\n"
	    "      --stat-pid PID   read PID's CPU time and memory from /proc\n"
	    "  -q, --quiet          only the RESULT line\n",
	    LG_MAX_HEADERS);
}

static void
loadgen_parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "connections", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 't' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "requests", required_argument, NULL, 'n' },
		{ "rate", required_argument, NULL, 'r' },
		{ "idle", required_argument, NULL, 'k' },
		{ "size", required_argument, NULL, 's' },
		{ "path", required_argument, NULL, 'u' },
		{ "header", required_argument, NULL, 'H' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "hold", required_argument, NULL, 1 },
		{ "settle", required_argument, NULL, 2 },
		{ "ready-file", required_argument, NULL, 3 },
		{ "host", required_argument, NULL, 4 },
		{ "expect", required_argument, NULL, 5 },
		{ "tls", no_argument, NULL, 6 },
		{ "cert", required_argument, NULL, 7 },
		{ "key", required_argument, NULL, 8 },
		{ "ca", required_argument, NULL, 9 },
		{ "sni", required_argument, NULL, 10 },
		{ "resume", no_argument, NULL, 11 },
		{ "tls12", no_argument, NULL, 12 },
		{ "stat-pid", required_argument, NULL, 13 },
		{ NULL, 0, NULL, 0 },
	};
	static char hostbuf[256];
	struct addrinfo hints, *ai = NULL;
	char *colon;
	int ch;

	opt.conns = 16;
	opt.threads = 1;
	opt.duration = 10;
	opt.warmup = 1;
	opt.hold = 10;
	opt.settle = 1;
	opt.path = "/";
	opt.expect = 200;
	while ((ch = getopt_long(argc, argv, "m:c:t:d:w:n:r:k:s:u:H:qh",
	            longopts, NULL)) != -1) {
		switch (ch) {
		case 'm':
			if (strcmp(optarg, "max") == 0)
				opt.mode = LG_MODE_MAX;
			else if (strcmp(optarg, "rate") == 0)
				opt.mode = LG_MODE_RATE;
			else if (strcmp(optarg, "handshake") == 0)
				opt.mode = LG_MODE_HANDSHAKE;
			else if (strcmp(optarg, "idle") == 0)
				opt.mode = LG_MODE_IDLE;
			else if (strcmp(optarg, "upload") == 0)
				opt.mode = LG_MODE_UPLOAD;
			else if (strcmp(optarg, "download") == 0)
				opt.mode = LG_MODE_DOWNLOAD;
			else
				loadgen_die("unknown mode");
			break;
		case 'c':
			opt.conns = (uint32_t)loadgen_parse_ulong(optarg,
			    LG_MAX_CONNS, "connections");
			break;
		case 't':
			opt.threads = (int)loadgen_parse_ulong(optarg,
			    LG_MAX_THREADS, "threads");
			break;
		case 'd':
			opt.duration =
			    loadgen_parse_seconds(optarg, "duration");
			break;
		case 'w':
			opt.warmup = loadgen_parse_seconds(optarg, "warmup");
			break;
		case 'n':
			opt.requests =
			    loadgen_parse_ulong(optarg, ULONG_MAX, "requests");
			break;
		case 'r':
			opt.rate = strtod(optarg, NULL);
			if (!(opt.rate > 0 && opt.rate <= 1e7))
				loadgen_die("rate: want 0 < R <= 10000000");
			break;
		case 'k':
			opt.idle = (uint32_t)loadgen_parse_ulong(optarg,
			    LG_MAX_CONNS, "idle");
			break;
		case 's':
			opt.size = loadgen_parse_size(optarg);
			break;
		case 'u':
			opt.path = optarg;
			break;
		case 'H':
			if (opt.nheaders == LG_MAX_HEADERS)
				loadgen_die("too many -H");
			opt.headers[opt.nheaders++] = optarg;
			break;
		case 'q':
			opt.quiet = 1;
			break;
		case 'h':
			loadgen_usage(stdout);
			exit(0);
		case 1:
			opt.hold = loadgen_parse_seconds(optarg, "hold");
			break;
		case 2:
			opt.settle = loadgen_parse_seconds(optarg, "settle");
			break;
		case 3:
			opt.ready_file = optarg;
			break;
		case 4:
			opt.hosthdr = optarg;
			break;
		case 5:
			opt.expect =
			    (int)loadgen_parse_ulong(optarg, 599, "expect");
			break;
		case 6:
			opt.tls = 1;
			break;
		case 7:
			opt.cert = optarg;
			break;
		case 8:
			opt.key = optarg;
			break;
		case 9:
			opt.ca = optarg;
			break;
		case 10:
			opt.sni = optarg;
			break;
		case 11:
			opt.resume = 1;
			break;
		case 12:
			opt.max_tls12 = 1;
			break;
		case 13:
			opt.stat_pid = (pid_t)loadgen_parse_ulong(optarg,
			    INT_MAX, "stat-pid");
			break;
		default:
			loadgen_usage(stderr);
			exit(2);
		}
	}
	if (optind != argc - 1) {
		loadgen_usage(stderr);
		exit(2);
	}
	if (opt.threads < 1)
		opt.threads = 1;
	if (opt.conns < 1)
		loadgen_die("need at least one connection");
	if (opt.mode == LG_MODE_RATE && opt.rate <= 0)
		loadgen_die("rate mode needs --rate");
	if (opt.mode == LG_MODE_IDLE && opt.idle == 0)
		loadgen_die("idle mode needs --idle N");
	if (opt.mode == LG_MODE_UPLOAD && opt.size == 0)
		loadgen_die("upload mode needs --size");
	if (opt.mode >= LG_MODE_UPLOAD) {
		opt.threads = 1;
		opt.conns = 1;
		opt.warmup = 0;
	}
	if (opt.mode == LG_MODE_IDLE)
		opt.warmup = 0;
	if ((opt.cert == NULL) != (opt.key == NULL))
		loadgen_die("--cert and --key go together");
	if (strlcpy(hostbuf, argv[optind], sizeof(hostbuf)) >= sizeof(hostbuf))
		loadgen_die("address too long");
	/* [v6]:port or host:port */
	if ((colon = strrchr(hostbuf, ':')) == NULL)
		loadgen_die("address must be HOST:PORT");
	*colon = '\0';
	opt.port = colon + 1;
	opt.host = hostbuf;
	if (hostbuf[0] == '[' && colon > hostbuf && colon[-1] == ']') {
		colon[-1] = '\0';
		opt.host = hostbuf + 1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(opt.host, opt.port, &hints, &ai) != 0 || ai == NULL)
		loadgen_die("cannot resolve the address");
	memcpy(&opt.addr, ai->ai_addr, ai->ai_addrlen);
	opt.addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	if (opt.hosthdr == NULL)
		opt.hosthdr = opt.host;
}

static void
loadgen_build_request(void)
{
	char line[512];
	int i, n;

	n = snprintf(loadgen_req, sizeof(loadgen_req),
	    "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: govgate-loadgen\r\n",
	    opt.mode == LG_MODE_UPLOAD ? "PUT" : "GET", opt.path, opt.hosthdr);
	if (n < 0 || (size_t)n >= sizeof(loadgen_req))
		loadgen_die("request too long");
	for (i = 0; i < opt.nheaders; i++) {
		snprintf(line, sizeof(line), "%s\r\n", opt.headers[i]);
		if (strlcat(loadgen_req, line, sizeof(loadgen_req)) >=
		    sizeof(loadgen_req))
			loadgen_die("request too long");
	}
	if (opt.mode == LG_MODE_UPLOAD) {
		snprintf(line, sizeof(line),
		    "Content-Type: application/octet-stream\r\n"
		    "Content-Length: %" PRIu64 "\r\n",
		    opt.size);
		if (strlcat(loadgen_req, line, sizeof(loadgen_req)) >=
		    sizeof(loadgen_req))
			loadgen_die("request too long");
	}
	if (opt.mode == LG_MODE_HANDSHAKE &&
	    strlcat(loadgen_req, "Connection: close\r\n",
	        sizeof(loadgen_req)) >= sizeof(loadgen_req))
		loadgen_die("request too long");
	if (strlcat(loadgen_req, "\r\n", sizeof(loadgen_req)) >=
	    sizeof(loadgen_req))
		loadgen_die("request too long");
	loadgen_reqlen = strlen(loadgen_req);
}

static void
loadgen_tls_setup(void)
{
	SSL_CTX *ctx = NULL;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		goto err;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		goto err;
	if (opt.max_tls12 &&
	    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION) != 1)
		goto err;
	SSL_CTX_set_mode(ctx,
	    SSL_MODE_ENABLE_PARTIAL_WRITE |
	        SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* Keep the tickets the server sends: SSL_get1_session() then returns
	 * a resumable session (TLS 1.3 issues them after the handshake). */
	SSL_CTX_set_session_cache_mode(ctx,
	    SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	if (opt.cert != NULL) {
		if (SSL_CTX_use_certificate_chain_file(ctx, opt.cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(ctx, opt.key,
		        SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(ctx) != 1)
			goto err;
	}
	if (opt.ca != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, opt.ca, NULL) != 1)
			goto err;
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	loadgen_ctx = ctx;
	return;
err:
	ERR_print_errors_fp(stderr);
	loadgen_die("TLS setup failed");
}

static void
loadgen_raise_nofile(uint32_t need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)need + 64) {
		fprintf(stderr,
		    "loadgen: %u connections need more open files than the "
		    "limit %llu (ulimit -n)\n",
		    need, (unsigned long long)rl.rlim_cur);
		exit(2);
	}
}

static void
loadgen_sleep_until(uint64_t when)
{
	struct timespec ts;
	uint64_t now = loadgen_now();

	if (when <= now)
		return;
	ts.tv_sec = (time_t)((when - now) / LG_NS);
	ts.tv_nsec = (long)((when - now) % LG_NS);
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static const char *
loadgen_mode_name(void)
{
	static const char *const names[] = { "max", "rate", "handshake", "idle",
		"upload", "download" };

	return names[opt.mode];
}

int
main(int argc, char **argv)
{
	struct loadgen_thread *th[LG_MAX_THREADS] = { NULL, NULL };
	struct loadgen_stats tot;
	struct loadgen_hist hist;
	uint64_t total_slots, per, rest, errors, window_ns = 0;
	long rss_before = -1, rss_after = -1, hwm = -1;
	double secs, rps, cpu_s = 0, tick;
	uint32_t held = 0, failed = 0, i;
	int k, hwm_reset = 0, fd;

	loadgen_parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	/* Timer slack (50 us by default) would send fixed-rate requests late
	 * and in bursts. */
	(void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	loadgen_build_request();
	if (opt.tls)
		loadgen_tls_setup();
	total_slots = opt.mode == LG_MODE_IDLE ? opt.idle : opt.conns;
	loadgen_raise_nofile((uint32_t)total_slots);
	memset(&hist, 0, sizeof(hist));
	if ((hist.b = calloc(LG_HIST_BUCKETS, sizeof(*hist.b))) == NULL)
		loadgen_die("out of memory");
	per = total_slots / (uint64_t)opt.threads;
	rest = total_slots % (uint64_t)opt.threads;
	for (k = 0; k < opt.threads; k++) {
		struct loadgen_thread *t;

		if ((t = calloc(1, sizeof(*t))) == NULL)
			loadgen_die("out of memory");
		th[k] = t;
		t->id = k;
		t->nconns = (uint32_t)(per + ((uint64_t)k < rest ? 1 : 0));
		t->target = t->nconns;
		if ((t->conns = calloc(t->nconns + 1, sizeof(*t->conns))) ==
		        NULL ||
		    (t->idle = calloc(t->nconns + 1, sizeof(*t->idle))) ==
		        NULL ||
		    (t->hist.b = calloc(LG_HIST_BUCKETS, sizeof(*t->hist.b))) ==
		        NULL)
			loadgen_die("out of memory");
		for (i = 0; i < t->nconns; i++) {
			t->conns[i].t = t;
			t->conns[i].idx = i;
			t->conns[i].fd = -1;
		}
		if ((t->ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
			loadgen_die("epoll_create1 failed");
		if (opt.mode == LG_MODE_RATE) {
			if ((t->queue = calloc(LG_QUEUE_MAX,
			         sizeof(*t->queue))) == NULL)
				loadgen_die("out of memory");
			t->interval_ns =
			    (uint64_t)((double)LG_NS * opt.threads / opt.rate);
			if (t->interval_ns == 0)
				t->interval_ns = 1;
			t->sched_limit = opt.requests > 0
			    ? opt.requests / (uint64_t)opt.threads
			    : UINT64_MAX;
		}
	}
	if (opt.stat_pid > 0) {
		rss_before = loadgen_proc_status(opt.stat_pid, "VmRSS");
		if (opt.mode >= LG_MODE_UPLOAD)
			hwm_reset = loadgen_proc_reset_hwm(opt.stat_pid);
	}
	loadgen_t_begin = loadgen_now();
	for (k = 0; k < opt.threads; k++)
		th[k]->next_due = loadgen_t_begin;
	loadgen_t_meas =
	    loadgen_t_begin + (uint64_t)(opt.warmup * (double)LG_NS);
	loadgen_t_end = loadgen_t_meas + (uint64_t)(opt.duration * LG_NS);
	/* Whatever happens, stop 30 s after the planned end. */
	loadgen_t_deadline = loadgen_t_end + 30 * LG_NS +
	    (opt.mode == LG_MODE_IDLE
	            ? (uint64_t)((opt.hold + opt.settle) * LG_NS)
	            : 0);
	for (k = 0; k < opt.threads; k++)
		if (pthread_create(&th[k]->tid, NULL, loadgen_thread_main,
		        th[k]) != 0)
			loadgen_die("pthread_create failed");
	if (opt.mode == LG_MODE_IDLE) {
		/* Wait until every thread holds or gave up on its share. */
		for (;;) {
			held = failed = 0;
			for (k = 0; k < opt.threads; k++) {
				held += __atomic_load_n(&th[k]->held,
				    __ATOMIC_RELAXED);
				failed += __atomic_load_n(&th[k]->failed,
				    __ATOMIC_RELAXED);
			}
			if (held + failed >= opt.idle ||
			    loadgen_now() >= loadgen_t_end)
				break;
			loadgen_sleep_until(loadgen_now() + 10000000ULL);
		}
		if (!opt.quiet)
			fprintf(stderr,
			    "loadgen: holding %u connections (%u "
			    "failed)\n",
			    held, failed);
		loadgen_sleep_until(
		    loadgen_now() + (uint64_t)(opt.settle * LG_NS));
		if (opt.stat_pid > 0)
			rss_after = loadgen_proc_status(opt.stat_pid, "VmRSS");
		if (opt.ready_file != NULL) {
			fd = open(opt.ready_file,
			    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			if (fd != -1)
				close(fd);
		}
		loadgen_sleep_until(
		    loadgen_now() + (uint64_t)(opt.hold * LG_NS));
		held = 0;
		for (k = 0; k < opt.threads; k++) {
			held += __atomic_load_n(&th[k]->held, __ATOMIC_RELAXED);
			__atomic_store_n(&th[k]->done, 2, __ATOMIC_RELEASE);
		}
	}
	for (k = 0; k < opt.threads; k++)
		pthread_join(th[k]->tid, NULL);
	if (opt.stat_pid > 0 && opt.mode >= LG_MODE_UPLOAD)
		hwm = loadgen_proc_status(opt.stat_pid, "VmHWM");

	memset(&tot, 0, sizeof(tot));
	rps = 0;
	for (k = 0; k < opt.threads; k++) {
		struct loadgen_stats *s = &th[k]->st;

		loadgen_hist_merge(&hist, &th[k]->hist);
		tot.measured += s->measured;
		tot.responses += s->responses;
		tot.unexpected += s->unexpected;
		if (s->bad_status != 0)
			tot.bad_status = s->bad_status;
		tot.err_connect += s->err_connect;
		tot.err_tls += s->err_tls;
		tot.err_io += s->err_io;
		tot.err_parse += s->err_parse;
		tot.err_timeout += s->err_timeout;
		tot.err_dropped += s->err_dropped;
		tot.reconnects += s->reconnects;
		tot.handshakes += s->handshakes;
		tot.resumed += s->resumed;
		tot.bytes_in += s->bytes_in;
		tot.bytes_out += s->bytes_out;
		if (s->window_ns > 0)
			rps +=
			    (double)s->measured * LG_NS / (double)s->window_ns;
		if (s->window_ns > window_ns)
			window_ns = s->window_ns;
		if (s->transfer_ns > tot.transfer_ns)
			tot.transfer_ns = s->transfer_ns;
	}
	errors = tot.err_connect + tot.err_tls + tot.err_io + tot.err_parse +
	    tot.err_timeout + tot.err_dropped;
	secs = (double)window_ns / LG_NS;
	tick = (double)sysconf(_SC_CLK_TCK);
	if (opt.stat_pid > 0 && th[0]->cpu_end >= th[0]->cpu_begin)
		cpu_s = (double)(th[0]->cpu_end - th[0]->cpu_begin) / tick;

	printf("RESULT mode=%s conns=%u threads=%d tls=%d window_s=%.3f "
	       "requests=%" PRIu64 " rps=%.1f",
	    loadgen_mode_name(), opt.conns, opt.threads, opt.tls, secs,
	    tot.measured, rps);
	printf(" p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f "
	       "max_us=%.1f mean_us=%.1f",
	    loadgen_hist_quantile(&hist, 0.50),
	    loadgen_hist_quantile(&hist, 0.90),
	    loadgen_hist_quantile(&hist, 0.99),
	    loadgen_hist_quantile(&hist, 0.999), (double)hist.max / 1000.0,
	    hist.n > 0 ? (double)(hist.sum / hist.n) / 1000.0 : 0.0);
	printf(" errors=%" PRIu64 " unexpected=%" PRIu64 " err_connect=%" PRIu64
	       " err_tls=%" PRIu64 " err_io=%" PRIu64 " err_parse=%" PRIu64
	       " err_timeout=%" PRIu64 " err_dropped=%" PRIu64
	       " reconnects=%" PRIu64 " handshakes=%" PRIu64 " resumed=%" PRIu64
	       " tls_version=%s cipher=%s bad_status=%d",
	    errors, tot.unexpected, tot.err_connect, tot.err_tls, tot.err_io,
	    tot.err_parse, tot.err_timeout, tot.err_dropped, tot.reconnects,
	    tot.handshakes, tot.resumed, loadgen_tls_version,
	    loadgen_tls_cipher, tot.bad_status);
	if (opt.stat_pid > 0 && opt.mode != LG_MODE_IDLE &&
	    opt.mode < LG_MODE_UPLOAD)
		printf(" cpu_s=%.2f cpu_util=%.3f cpu_us_per_req=%.2f", cpu_s,
		    secs > 0 ? cpu_s / secs : 0.0,
		    tot.measured > 0 ? cpu_s * 1e6 / (double)tot.measured
		                     : 0.0);
	if (opt.mode == LG_MODE_IDLE)
		printf(" held=%u rss_before_kb=%ld rss_after_kb=%ld "
		       "bytes_per_conn=%.0f",
		    held, rss_before, rss_after,
		    held > 0 && rss_before >= 0 && rss_after >= 0
		        ? (double)(rss_after - rss_before) * 1024.0 / held
		        : 0.0);
	if (opt.mode >= LG_MODE_UPLOAD) {
		double ts = (double)tot.transfer_ns / LG_NS;
		uint64_t bytes =
		    opt.mode == LG_MODE_UPLOAD ? tot.bytes_out : tot.bytes_in;

		printf(" bytes=%" PRIu64 " transfer_s=%.3f mib_per_s=%.1f "
		       "rss_before_kb=%ld vmhwm_kb=%ld hwm_growth_kb=%ld "
		       "hwm_reset=%d",
		    bytes, ts, ts > 0 ? (double)bytes / 1048576.0 / ts : 0.0,
		    rss_before, hwm,
		    hwm >= 0 && rss_before >= 0 ? hwm - rss_before : -1L,
		    hwm_reset);
	}
	printf("\n");
	if (!opt.quiet)
		fprintf(stderr,
		    "loadgen: %s: %" PRIu64 " responses in %.2f s, %.0f req/s, "
		    "p50 %.0f us, p99 %.0f us, p99.9 %.0f us, %" PRIu64
		    " errors, %" PRIu64 " unexpected status\n",
		    loadgen_mode_name(), tot.measured, secs, rps,
		    loadgen_hist_quantile(&hist, 0.50),
		    loadgen_hist_quantile(&hist, 0.99),
		    loadgen_hist_quantile(&hist, 0.999), errors,
		    tot.unexpected);
	for (k = 0; k < opt.threads; k++) {
		for (i = 0; i < th[k]->nconns; i++) {
			loadgen_close(&th[k]->conns[i]);
			SSL_SESSION_free(th[k]->conns[i].sess);
		}
		close(th[k]->ep);
		free(th[k]->conns);
		free(th[k]->idle);
		free(th[k]->hist.b);
		free(th[k]->queue);
		free(th[k]);
	}
	free(hist.b);
	SSL_CTX_free(loadgen_ctx);
	return errors > 0 || (opt.mode == LG_MODE_IDLE && held < opt.idle) ? 1
	                                                                   : 0;
}
