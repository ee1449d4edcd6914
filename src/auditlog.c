/* auditlog.c - the audit writer: one thread, group commit, fail closed. */
#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>

#include "audit.h"
#include "auditlog.h"
#include "conf.h"
#include "diag.h"
#include "log.h"

/*
 * How it works. Worker threads append their batch (a loop iteration's
 * records) to a bounded queue under one lock (mutex and condition
 * variable, signalled only when the queue was empty). One writer thread
 * takes everything queued, seals the records into one buffer in queue
 * order, and commits the batch: one write(2) loop, then, with
 * audit.sync fsync, one fdatasync; only then do the records go back to
 * their submitters (one chain per notify queue and one event_active on
 * the submitter's base). With audit.sync write, records
 * go back once written, and fdatasync runs with each checkpoint; and
 * there a worker whose batch finds the writer idle (wmtx free) seals and
 * writes it itself, the same way under the same lock, which spares two
 * thread switches per batch.
 *
 * After each commit the writer checks that the file is still there:
 * st_nlink 0 on the descriptor means it was deleted, so the batch only
 * reached a nameless inode and is reported failed; a new file is then
 * created at the path and starts with a `reopen` record that continues
 * the chain. A different inode (or none) at the path with st_nlink > 0
 * means it was renamed (rotation without a signal): the batch is
 * durable, and the writer reopens as for SIGUSR1. A file smaller than
 * what we appended was truncated by another process (copytruncate): the
 * batch is reported failed and a `reopen` record says so.
 *
 * Fail closed (I2, I3). The first failed write or fdatasync is fatal for
 * the descriptor: the batch is reported failed, the descriptor closed,
 * the log degraded (submit refuses at once) and an alert logged. Nothing
 * is retried on that descriptor, since after an fsync error the page
 * cache may already have dropped the data. Every AUDITLOG_RETRY_MS the
 * writer opens the path afresh. If it is still our file, whatever lies
 * after the last committed byte (records of the failed batch, a torn
 * line) is cut off: those records were reported failed and their
 * requests refused, so the trail keeps only what was committed. The
 * tail is then read back and verified, and the writer writes, in one
 * write and one fdatasync, an `audit_degraded` record (what failed, when,
 * from which seq, bytes cut) and an `audit_recovered` record (requests
 * refused, milliseconds degraded). Only when that commit succeeds are
 * requests accepted again. Both records are written at recovery, never
 * at the moment of failure, because the disk that just failed cannot be
 * trusted with them; the error log carries the alert meanwhile. A
 * gateway stopped while degraded has no such records: its error log
 * shows the outage, and the next start continues the chain from the
 * last committed record.
 */

#define AUDITLOG_LIFE_MAX 2048 /* body of a lifecycle record */
#define AUDITLOG_WHY_MAX 400

enum auditlog_state {
	AUDITLOG_RUNNING = 0, /* records are written */
	AUDITLOG_DEGRADED,    /* refusing; retrying every AUDITLOG_RETRY_MS */
};

enum auditlog_file {
	AUDITLOG_FILE_OK = 0,
	AUDITLOG_FILE_MOVED,  /* renamed away: durable, reopen the path */
	AUDITLOG_FILE_GONE,   /* deleted: what went there is lost */
	AUDITLOG_FILE_SHRUNK, /* truncated by someone: the batch may be lost */
	AUDITLOG_FILE_ERROR,  /* cannot tell: treated as a failure */
};

struct auditlog_notify {
	struct event *ev;
	pthread_mutex_t mtx;
	struct auditlog_req *head, *tail;
};

struct auditlog {
	/* Set by auditlog_open, then read-only. */
	char path[PATH_MAX];
	enum conf_audit_sync sync;
	int64_t interval_ms;
	struct audit_signer signer;

	/* Shared with submitters: under mtx. */
	pthread_mutex_t mtx;
	pthread_cond_t wake;   /* the writer: work, stop, reopen */
	pthread_cond_t evdone; /* auditlog_event waiters */
	struct auditlog_req *qhead, *qtail;
	size_t qlen;
	int stopping;
	int reopen_req;
	int kick; /* a deadline moved: the writer recomputes its wait */
	enum auditlog_state state;
	int degraded;      /* state, for lock-free readers (atomic) */
	uint64_t nrefused; /* during this degraded period */
	struct auditlog_stats st;

	/*
	 * The writer's state below: under wmtx, held by the writer thread
	 * while it works and, with audit.sync write, by a submitter that
	 * writes its batch itself (auditlog_submit_list). Lock order: wmtx,
	 * then mtx.
	 */
	pthread_mutex_t wmtx;
	pthread_t thread;
	int started;
	int fd;
	dev_t dev;
	ino_t ino;
	int had_file; /* dev, ino, dur_off: the file before a failure */
	struct audit_chain ch;
	uint64_t dur_seq; /* the last record committed */
	unsigned char dur_hash[AUDIT_HASH_LEN];
	off_t dur_off; /* file size after it (we are the only appender) */
	char *mem;
	struct audit_buf b;
	int64_t unsealed_ms; /* first record after the last checkpoint; -1 */
	int dirty;           /* write mode: written since the last sync */
	int64_t wb_ms;       /* next write-back tick; -1 none */
	off_t wb_off;        /* dur_off at the last tick */
	off_t wb_prev;       /* and at the tick before */
	off_t drop_off;      /* the next tick drops the cache from here */
	const char *rotate_why;
	int64_t retry_ms;
	int64_t fail_ms;
	char fail_ts[AUDIT_TS_LEN + 1];
	char fail_why[AUDITLOG_WHY_MAX];
	uint64_t fail_seq;
	uint64_t fail_cut; /* bytes cut at recovery */
	char retry_err[AUDITLOG_WHY_MAX];
};

/* A blocking auditlog_event in progress. */
struct auditlog_waiter {
	struct auditlog *l;
	int done, ok;
};

/* Counts of one hand-back round, added to the stats under one lock. */
struct auditlog_tally {
	uint64_t ok, failed, max_lag_us;
};

static int64_t
auditlog_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t
auditlog_mono_ms(void)
{
	return auditlog_mono_us() / 1000;
}

static void
auditlog_now(int64_t *sec, int32_t *nsec)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	*sec = (int64_t)ts.tv_sec;
	*nsec = (int32_t)ts.tv_nsec;
}

static const char *
auditlog_state_str(enum auditlog_state s)
{
	return s == AUDITLOG_RUNNING ? "running" : "degraded";
}

/* Make the writer look at its deadlines again; mtx held. */
static void
auditlog_kick_locked(struct auditlog *l)
{
	l->kick = 1;
	pthread_cond_signal(&l->wake);
}

/* The one place the state changes; takes mtx. */
static void
auditlog_set_state(struct auditlog *l, enum auditlog_state next)
{
	pthread_mutex_lock(&l->mtx);
	log_debug("audit: %s -> %s", auditlog_state_str(l->state),
	    auditlog_state_str(next));
	if (next == AUDITLOG_DEGRADED && l->state != AUDITLOG_DEGRADED) {
		l->nrefused = 0;
		l->st.degradations++;
	}
	l->state = next;
	__atomic_store_n(&l->degraded, next == AUDITLOG_DEGRADED,
	    __ATOMIC_RELEASE);
	/* Maybe on a submitter's thread: the retry timer is the writer's. */
	auditlog_kick_locked(l);
	pthread_mutex_unlock(&l->mtx);
}

/* All n bytes, through short writes and EINTR. 0, or -1 with errno. */
static int
auditlog_write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
auditlog_datasync(int fd)
{
	int rc;

	/* EINTR is not an I/O error: nothing was reported lost. */
	while ((rc = fdatasync(fd)) < 0 && errno == EINTR)
		;
	return rc;
}

/* Cut the file at off and make the cut durable. 0, or -1 with errno. */
static int
auditlog_cut(int fd, off_t off)
{
	if (ftruncate(fd, off) < 0)
		return -1;
	return auditlog_datasync(fd);
}

/*
 * Does the record with hash h end exactly at off in the file open as fd?
 * Checked before cutting there, so that a wrong offset never cuts a
 * committed record.
 */
static int
auditlog_ends_at(const char *path, const struct stat *st, off_t off,
    const unsigned char *h)
{
	static const char hexdig[] = "0123456789abcdef";
	char want[AUDIT_HEX_LEN + 11], got[sizeof(want)]; /* "hash":"…"}\n */
	struct stat rst;
	size_t n = sizeof(want), i;
	int fd, ret = 0;

	if (off == 0)
		return 1;
	if (off < (off_t)n)
		return 0;
	memcpy(want, "\"hash\":\"", 8);
	for (i = 0; i < AUDIT_HASH_LEN; i++) {
		want[8 + 2 * i] = hexdig[h[i] >> 4];
		want[8 + 2 * i + 1] = hexdig[h[i] & 0xf];
	}
	memcpy(want + 8 + AUDIT_HEX_LEN, "\"}\n", 3);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return 0;
	if (fstat(fd, &rst) == 0 && rst.st_dev == st->st_dev &&
	    rst.st_ino == st->st_ino &&
	    pread(fd, got, n, off - (off_t)n) == (ssize_t)n &&
	    memcmp(got, want, n) == 0)
		ret = 1;
	close(fd);
	return ret;
}

/*
 * Open path for appending and read its tail back. If it is the file we
 * had before a failure (l->had_file and the same inode), the bytes after
 * the last commit are cut first. A torn final line is cut off. An empty
 * file continues the chain in l->ch; a file with records continues from
 * its last one, which must verify and, unless any is set (start-up) or
 * it is our own file, be the chain head. *cut says how many bytes went.
 * Sets l->fd, dev, ino and the committed state. Returns 0, or -1 with a
 * reason in err.
 */
static int
auditlog_attach(struct auditlog *l, int any, uint64_t *cut, char *err,
    size_t errlen)
{
	struct audit_tail t;
	struct stat st, pst;
	char why[AUDITLOG_WHY_MAX];
	off_t size;
	int fd = -1, fl, ret = -1, own, cutok;

	*cut = 0;
	fd = open(l->path,
	    O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
	        O_NONBLOCK | O_NOCTTY,
	    0640);
	if (fd < 0) {
		if (errno == ELOOP)
			snprintf(err, errlen, "is a symbolic link");
		else
			snprintf(err, errlen, "open: %s", strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "fstat: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "not a regular file");
		goto out;
	}
	if ((st.st_mode & S_IWOTH) != 0) {
		snprintf(err, errlen, "others may write it (chmod o-w)");
		goto out;
	}
	/* O_NONBLOCK only kept open(2) from waiting on a FIFO. */
	if ((fl = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		snprintf(err, errlen, "fcntl: %s", strerror(errno));
		goto out;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			snprintf(err, errlen, "another process is writing it");
		else
			snprintf(err, errlen, "flock: %s", strerror(errno));
		goto out;
	}
	size = st.st_size;
	own = l->had_file && st.st_dev == l->dev && st.st_ino == l->ino;
	cutok = own && size > l->dur_off;
	if (cutok && !auditlog_ends_at(l->path, &st, l->dur_off, l->dur_hash)) {
		log_error("audit: %s: the last commit (seq %llu) does not end "
		          "at byte %lld; cutting only a torn line",
		    l->path, (unsigned long long)l->dur_seq,
		    (long long)l->dur_off);
		cutok = 0;
	}
	if (cutok) {
		if (auditlog_cut(fd, l->dur_off) < 0) {
			snprintf(err, errlen,
			    "cutting %lld bytes not committed: %s",
			    (long long)(size - l->dur_off), strerror(errno));
			goto out;
		}
		*cut += (uint64_t)(size - l->dur_off);
		size = l->dur_off;
	}
	if (size > 0) {
		if (audit_tail_read(l->path, &t, why, sizeof(why)) < 0) {
			snprintf(err, errlen,
			    "cannot continue the trail: %s (check it with "
			    "govgate audit verify, then move it away)",
			    why);
			goto out;
		}
		/* The tail read went by name: make sure it was this file. */
		if (stat(l->path, &pst) < 0 || pst.st_dev != st.st_dev ||
		    pst.st_ino != st.st_ino) {
			snprintf(err, errlen, "replaced while opening");
			goto out;
		}
		if (t.seq > 0 && !any && !own &&
		    (t.seq != l->ch.seq ||
		        memcmp(t.hash, l->ch.prev, AUDIT_HASH_LEN) != 0)) {
			snprintf(err, errlen,
			    "holds another chain (last seq %llu, this "
			    "one is at %llu); move it away",
			    (unsigned long long)t.seq,
			    (unsigned long long)l->ch.seq);
			goto out;
		}
		if (t.torn > 0) {
			if (auditlog_cut(fd, t.end) < 0) {
				snprintf(err, errlen,
				    "cutting a torn line of %lld bytes: "
				    "%s",
				    (long long)t.torn, strerror(errno));
				goto out;
			}
			log_warnx("audit: %s: cut a torn final line of %lld "
			          "bytes after seq %llu",
			    l->path, (long long)t.torn,
			    (unsigned long long)t.seq);
			*cut += (uint64_t)t.torn;
			size = t.end;
		}
		if (own && t.seq != l->dur_seq)
			log_warnx("audit: %s: the file ends at seq %llu, the "
			          "last commit was %llu",
			    l->path, (unsigned long long)t.seq,
			    (unsigned long long)l->dur_seq);
		if (t.seq > 0)
			audit_chain_set(&l->ch, t.seq, t.hash);
	}
	l->fd = fd;
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	l->had_file = 0;
	l->dur_seq = l->ch.seq;
	memcpy(l->dur_hash, l->ch.prev, AUDIT_HASH_LEN);
	l->dur_off = size;
	l->wb_off = l->wb_prev = l->drop_off = 0;
	fd = -1;
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

/* Close the descriptor; dev, ino and dur_off still name the file. */
static void
auditlog_detach(struct auditlog *l)
{
	if (l->fd >= 0) {
		close(l->fd);
		l->had_file = 1;
	}
	l->fd = -1;
	l->dirty = 0;
}

/* Forget sealed records that were not committed. */
static void
auditlog_rewind(struct auditlog *l)
{
	audit_chain_set(&l->ch, l->dur_seq, l->dur_hash);
	audit_buf_reset(&l->b);
}

/*
 * The first failure of a write or fdatasync (or of a reopen): degrade.
 * Nothing more goes to this descriptor.
 */
static void auditlog_fail(struct auditlog *l, uint64_t from_seq,
    const char *fmt, ...) PRINTFLIKE(3, 4);

static void
auditlog_fail(struct auditlog *l, uint64_t from_seq, const char *fmt, ...)
{
	va_list ap;
	int64_t sec;
	int32_t nsec;

	va_start(ap, fmt);
	vsnprintf(l->fail_why, sizeof(l->fail_why), fmt, ap);
	va_end(ap);
	auditlog_now(&sec, &nsec);
	if (audit_ts_format(sec, nsec, l->fail_ts) < 0)
		strlcpy(l->fail_ts, "?", sizeof(l->fail_ts));
	l->fail_ms = auditlog_mono_ms();
	l->fail_seq = from_seq;
	l->fail_cut = 0;
	l->retry_ms = l->fail_ms + AUDITLOG_RETRY_MS;
	l->retry_err[0] = '\0';
	auditlog_detach(l);
	auditlog_rewind(l);
	auditlog_set_state(l, AUDITLOG_DEGRADED);
	log_error("audit: %s: %s; refusing requests (503 audit_unavailable) "
	          "until the trail can be written",
	    l->path, l->fail_why);
}

/*
 * Where is the file? A deleted one (st_nlink 0) took whatever was written
 * to it into the void; a renamed one kept it.
 */
static enum auditlog_file
auditlog_check_file(struct auditlog *l, char *err, size_t errlen)
{
	struct stat st, pst;

	if (fstat(l->fd, &st) < 0) {
		snprintf(err, errlen, "fstat: %s", strerror(errno));
		return AUDITLOG_FILE_ERROR;
	}
	if (st.st_nlink == 0)
		return AUDITLOG_FILE_GONE;
	/* We are the only appender: a smaller file was cut by another. */
	if (st.st_size < l->dur_off)
		return AUDITLOG_FILE_SHRUNK;
	if (stat(l->path, &pst) < 0) {
		if (errno == ENOENT)
			return AUDITLOG_FILE_MOVED;
		snprintf(err, errlen, "stat: %s", strerror(errno));
		return AUDITLOG_FILE_ERROR;
	}
	if (pst.st_dev != st.st_dev || pst.st_ino != st.st_ino)
		return AUDITLOG_FILE_MOVED;
	return AUDITLOG_FILE_OK;
}

/* Seal one record into the batch buffer. 0, or -1 (record too big). */
static int
auditlog_seal(struct auditlog *l, const char *event, const char *body,
    size_t len)
{
	struct audit_buf sub;
	int64_t sec;
	int32_t nsec;

	/* A window of the batch buffer bounds each record on its own. */
	if (l->b.cap - l->b.len < AUDITLOG_MAX_RECORD)
		return -1;
	audit_buf_init(&sub, l->b.p + l->b.len, AUDITLOG_MAX_RECORD);
	auditlog_now(&sec, &nsec);
	if (audit_record(&l->ch, &sub, event, sec, nsec, body, len) < 0)
		return -1;
	l->b.len += sub.len;
	return 0;
}

static int
auditlog_seal_checkpoint(struct auditlog *l)
{
	struct audit_buf sub;
	int64_t sec;
	int32_t nsec;

	if (l->b.cap - l->b.len < AUDITLOG_MAX_RECORD)
		return -1;
	audit_buf_init(&sub, l->b.p + l->b.len, AUDITLOG_MAX_RECORD);
	auditlog_now(&sec, &nsec);
	if (audit_checkpoint(&l->ch, &sub, &l->signer, sec, nsec) < 0)
		return -1;
	l->b.len += sub.len;
	return 0;
}

/* Append a lifecycle record built by an audit_fmt_* into the buffer. */
static int
auditlog_seal_life(struct auditlog *l, const char *event,
    const struct audit_buf *body)
{
	if (body->overflow)
		return -1;
	return auditlog_seal(l, event, body->p, body->len);
}

/*
 * Write what the buffer holds and, when sync is set (or records written
 * in write mode wait for their sync), fdatasync. On success the records
 * are committed and the buffer is empty. On failure the log is degraded
 * and the chain is back at the last commit. first is the seq of the
 * first record in the buffer, for the alert.
 */
static int
auditlog_commit(struct auditlog *l, int sync, uint64_t first)
{
	int synced = 0;

	if (l->fd < 0) {
		auditlog_rewind(l);
		return -1;
	}
	if (auditlog_write_all(l->fd, l->b.p, l->b.len) < 0) {
		auditlog_fail(l, first, "write: %s", strerror(errno));
		return -1;
	}
	if (sync) {
		if (auditlog_datasync(l->fd) < 0) {
			auditlog_fail(l, first, "fdatasync: %s",
			    strerror(errno));
			return -1;
		}
		l->dirty = 0;
		synced = 1;
	} else
		l->dirty = 1;
	l->dur_seq = l->ch.seq;
	memcpy(l->dur_hash, l->ch.prev, AUDIT_HASH_LEN);
	l->dur_off += (off_t)l->b.len;
	audit_buf_reset(&l->b);
	pthread_mutex_lock(&l->mtx);
	l->st.batches++;
	l->st.syncs += (uint64_t)synced;
	pthread_mutex_unlock(&l->mtx);
	return 0;
}

/*
 * Move to a new file at the path after a rotation (why: what happened):
 * checkpoint the old file if it still holds our records (old_ok), open
 * the path, and start it with a `reopen` record that continues the
 * chain. Failures degrade.
 */
static void
auditlog_switch(struct auditlog *l, const char *why, int old_ok)
{
	char bodymem[AUDITLOG_LIFE_MAX], err[AUDITLOG_WHY_MAX + 64];
	struct audit_buf body;
	uint64_t cut;

	if (l->state != AUDITLOG_RUNNING)
		return;
	if (old_ok && l->fd >= 0) {
		audit_buf_reset(&l->b);
		if (auditlog_seal_checkpoint(l) < 0) {
			auditlog_fail(l, l->ch.seq + 1,
			    "cannot seal a checkpoint");
			return;
		}
		if (auditlog_commit(l, 1, l->ch.seq) < 0)
			return;
		l->unsealed_ms = -1;
		pthread_mutex_lock(&l->mtx);
		l->st.checkpoints++;
		pthread_mutex_unlock(&l->mtx);
	}
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	l->dirty = 0;
	l->had_file = 0;
	if (auditlog_attach(l, 0, &cut, err, sizeof(err)) < 0) {
		auditlog_fail(l, l->ch.seq + 1, "reopen: %s", err);
		return;
	}
	audit_buf_init(&body, bodymem, sizeof(bodymem));
	audit_fmt_reopen(&body, why);
	audit_buf_reset(&l->b);
	if (auditlog_seal_life(l, "reopen", &body) < 0) {
		auditlog_fail(l, l->ch.seq + 1, "cannot seal a reopen record");
		return;
	}
	if (auditlog_commit(l, 1, l->ch.seq) < 0)
		return;
	if (l->unsealed_ms < 0)
		l->unsealed_ms = auditlog_mono_ms();
	log_info("audit: %s: reopened (%s) at seq %llu", l->path, why,
	    (unsigned long long)l->ch.seq);
}

/* Hand a chain of records, all for n, to n's base in one go. */
static void
auditlog_notify_chain(struct auditlog_notify *n, struct auditlog_req *head,
    struct auditlog_req *tail)
{
	int wake;

	pthread_mutex_lock(&n->mtx);
	wake = n->head == NULL;
	if (n->tail != NULL)
		n->tail->next = head;
	else
		n->head = head;
	n->tail = tail;
	pthread_mutex_unlock(&n->mtx);
	/* Thread-safe with evthread_use_pthreads; wakes the base. */
	if (wake)
		event_active(n->ev, EV_READ, 0);
}

/*
 * Give a list of records back to their submitters, in order. Records
 * for the same notify queue go over in one chain: one lock and at most
 * one wake-up of that worker per batch, not per record.
 */
static void
auditlog_handback(struct auditlog_req *list, int64_t now_us,
    struct auditlog_tally *t)
{
	struct auditlog_req *r, *next, *head = NULL, *tail = NULL;
	struct auditlog_notify *n = NULL;
	uint64_t lag;

	for (r = list; r != NULL; r = next) {
		next = r->next;
		r->next = NULL;
		if (r->ok)
			t->ok++;
		else
			t->failed++;
		lag = now_us > r->queued_us ? (uint64_t)(now_us - r->queued_us)
		                            : 0;
		if (lag > t->max_lag_us)
			t->max_lag_us = lag;
		if (r->notify != n && head != NULL) {
			auditlog_notify_chain(n, head, tail);
			head = tail = NULL;
		}
		if (r->flags & AUDITLOG_F_FREE) {
			free(r->body);
			free(r);
			continue;
		}
		if ((n = r->notify) == NULL) {
			if (r->done != NULL)
				r->done(r, r->ok);
			continue;
		}
		if (tail != NULL)
			tail->next = r;
		else
			head = r;
		tail = r;
	}
	if (head != NULL)
		auditlog_notify_chain(n, head, tail);
}

/* Add a round's counts; failed records count as refused requests. */
static void
auditlog_tally_add(struct auditlog *l, const struct auditlog_tally *t)
{
	pthread_mutex_lock(&l->mtx);
	l->st.records += t->ok;
	l->st.failed += t->failed;
	l->nrefused += t->failed;
	if (t->max_lag_us > l->st.max_lag_us)
		l->st.max_lag_us = t->max_lag_us;
	pthread_mutex_unlock(&l->mtx);
}

/* Hand back the list, every record failed. */
static void
auditlog_fail_list(struct auditlog *l, struct auditlog_req *list)
{
	struct auditlog_tally t = { 0, 0, 0 };
	struct auditlog_req *r;
	int64_t now = auditlog_mono_us();

	for (r = list; r != NULL; r = r->next) {
		r->ok = 0;
		r->seq = 0;
	}
	auditlog_handback(list, now, &t);
	auditlog_tally_add(l, &t);
}

/*
 * Write a list taken from the queue, in order, in batches of at most
 * AUDITLOG_BATCH_BYTES; hand each batch back once committed (or failed).
 */
static void
auditlog_write_list(struct auditlog *l, struct auditlog_req *list)
{
	struct auditlog_tally t = { 0, 0, 0 };
	struct auditlog_req *head, *tail, *r;
	char err[AUDITLOG_WHY_MAX], why[AUDITLOG_WHY_MAX];
	uint64_t first;
	int rc;

	while (list != NULL) {
		if (l->state != AUDITLOG_RUNNING) {
			auditlog_fail_list(l, list);
			return;
		}
		audit_buf_reset(&l->b);
		head = tail = NULL;
		first = l->ch.seq + 1;
		while (list != NULL &&
		    l->b.cap - l->b.len >= AUDITLOG_MAX_RECORD) {
			r = list;
			list = r->next;
			r->next = NULL;
			if (tail != NULL)
				tail->next = r;
			else
				head = r;
			tail = r;
			if (auditlog_seal(l, r->event, r->body, r->len) < 0) {
				log_warnx("audit: cannot seal a %s record "
				          "(unknown event, or over %d bytes); "
				          "refused",
				    r->event, AUDITLOG_MAX_RECORD);
				r->seq = 0;
			} else
				r->seq = l->ch.seq;
		}
		if (l->unsealed_ms < 0 && l->b.len > 0) {
			l->unsealed_ms = auditlog_mono_ms();
			/* The checkpoint timer is the writer's. */
			pthread_mutex_lock(&l->mtx);
			auditlog_kick_locked(l);
			pthread_mutex_unlock(&l->mtx);
		}
		rc = 0;
		if (l->b.len > 0)
			rc = auditlog_commit(l,
			    l->sync == CONF_AUDIT_SYNC_FSYNC, first);
		switch (rc < 0 ? AUDITLOG_FILE_OK
		               : auditlog_check_file(l, err, sizeof(err))) {
		case AUDITLOG_FILE_OK:
			break;
		case AUDITLOG_FILE_MOVED:
			l->rotate_why = "file renamed";
			/* The writer reopens; this may be a submitter. */
			pthread_mutex_lock(&l->mtx);
			auditlog_kick_locked(l);
			pthread_mutex_unlock(&l->mtx);
			break;
		case AUDITLOG_FILE_GONE:
			rc = -1;
			snprintf(why, sizeof(why),
			    "file removed; records %llu to %llu went only to "
			    "the removed file",
			    (unsigned long long)first,
			    (unsigned long long)l->ch.seq);
			log_error("audit: %s: %s and were refused", l->path,
			    why);
			auditlog_switch(l, why, 0);
			break;
		case AUDITLOG_FILE_SHRUNK:
			/*
			 * copytruncate (A11): what was written between the
			 * copy and the cut is in neither file.
			 */
			rc = -1;
			snprintf(why, sizeof(why),
			    "file truncated by another process (copytruncate "
			    "is not supported); records %llu to %llu may be "
			    "lost",
			    (unsigned long long)first,
			    (unsigned long long)l->ch.seq);
			log_error("audit: %s: %s and were refused", l->path,
			    why);
			auditlog_switch(l, why, 0);
			break;
		case AUDITLOG_FILE_ERROR:
			rc = -1;
			auditlog_fail(l, first, "checking the file: %s", err);
			break;
		}
		memset(&t, 0, sizeof(t));
		for (r = head; r != NULL; r = r->next) {
			r->ok = rc == 0 && r->seq != 0;
			if (!r->ok)
				r->seq = 0;
		}
		auditlog_handback(head, auditlog_mono_us(), &t);
		auditlog_tally_add(l, &t);
	}
}

/* A signed checkpoint (and, in write mode, the fdatasync with it). */
static void
auditlog_checkpoint(struct auditlog *l)
{
	audit_buf_reset(&l->b);
	if (auditlog_seal_checkpoint(l) < 0) {
		auditlog_fail(l, l->ch.seq + 1, "cannot seal a checkpoint");
		return;
	}
	if (auditlog_commit(l, 1, l->ch.seq) < 0)
		return;
	l->unsealed_ms = -1;
	pthread_mutex_lock(&l->mtx);
	l->st.checkpoints++;
	pthread_mutex_unlock(&l->mtx);
}

static void
auditlog_retry_error(struct auditlog *l, const char *err)
{
	/* Once per distinct reason: a full disk must not flood the log. */
	if (strcmp(err, l->retry_err) == 0)
		return;
	log_error("audit: %s: still degraded: %s", l->path, err);
	strlcpy(l->retry_err, err, sizeof(l->retry_err));
}

/*
 * While degraded: open the path again, cut what was not committed, take
 * the tail back, and write audit_degraded + audit_recovered in one
 * durable commit. Only then are requests accepted again.
 */
static void
auditlog_recover(struct auditlog *l)
{
	char bodymem[AUDITLOG_LIFE_MAX], err[AUDITLOG_WHY_MAX + 64];
	char reason[AUDITLOG_WHY_MAX + 128];
	struct audit_buf body;
	uint64_t cut, refused;
	int64_t now = auditlog_mono_ms(), gap_us;

	l->retry_ms = now + AUDITLOG_RETRY_MS;
	if (l->fd < 0) {
		if (auditlog_attach(l, 0, &cut, err, sizeof(err)) < 0) {
			auditlog_retry_error(l, err);
			return;
		}
		l->fail_cut += cut;
	}
	pthread_mutex_lock(&l->mtx);
	refused = l->nrefused;
	pthread_mutex_unlock(&l->mtx);
	gap_us = (now - l->fail_ms) * 1000;
	snprintf(reason, sizeof(reason),
	    "%s at %s, from seq %llu; %llu bytes not committed were cut",
	    l->fail_why, l->fail_ts, (unsigned long long)l->fail_seq,
	    (unsigned long long)l->fail_cut);
	audit_buf_reset(&l->b);
	audit_buf_init(&body, bodymem, sizeof(bodymem));
	audit_fmt_degraded(&body, reason);
	if (auditlog_seal_life(l, "audit_degraded", &body) < 0)
		goto fail;
	audit_buf_init(&body, bodymem, sizeof(bodymem));
	audit_fmt_recovered(&body, refused, gap_us);
	if (auditlog_seal_life(l, "audit_recovered", &body) < 0)
		goto fail;
	if (auditlog_write_all(l->fd, l->b.p, l->b.len) < 0 ||
	    auditlog_datasync(l->fd) < 0) {
		snprintf(err, sizeof(err), "recovery write: %s",
		    strerror(errno));
		auditlog_retry_error(l, err);
		goto fail;
	}
	l->dur_seq = l->ch.seq;
	memcpy(l->dur_hash, l->ch.prev, AUDIT_HASH_LEN);
	l->dur_off += (off_t)l->b.len;
	audit_buf_reset(&l->b);
	if (l->unsealed_ms < 0)
		l->unsealed_ms = auditlog_mono_ms();
	pthread_mutex_lock(&l->mtx);
	l->st.syncs++;
	l->st.batches++;
	refused = l->nrefused;
	pthread_mutex_unlock(&l->mtx);
	auditlog_set_state(l, AUDITLOG_RUNNING);
	log_warnx("audit: %s: writing again after %lld ms; %llu requests "
	          "refused",
	    l->path, (long long)(gap_us / 1000), (unsigned long long)refused);
	return;
fail:
	/* What this attempt wrote is cut by the next one. */
	auditlog_detach(l);
	auditlog_rewind(l);
}

/* When the writer must wake without work: -1 for never. */
static int64_t
auditlog_deadline(const struct auditlog *l)
{
	int64_t due;

	if (l->state == AUDITLOG_DEGRADED)
		return l->retry_ms;
	if (l->unsealed_ms < 0)
		return -1;
	due = l->unsealed_ms + l->interval_ms;
	if (l->wb_ms >= 0 && l->wb_ms < due)
		due = l->wb_ms;
	return due;
}

/*
 * Every AUDITLOG_WRITEBACK_MS while records come in, the writer does two
 * things that wait for nothing.
 *
 * With audit.sync write, the checkpoint's fdatasync would otherwise
 * write back all of an interval's records at once while holding wmtx,
 * and every request decided meanwhile waited for it (p99 at 11,000
 * req/s: 8-10 ms, against 2 ms with no checkpoint in the window). So it
 * starts the write-back of what is dirty; the fdatasync then finds
 * little left to do. Durability is unchanged: still at each checkpoint.
 *
 * In both modes it drops from the page cache what was written before
 * the last tick (written back by now: by fdatasync, or by the write-back
 * started then). The trail is only appended to, and a busy gateway
 * writes gigabytes of it: kept cached, it pushed out the cache of
 * everything else on the machine, and each write went into a page the
 * kernel had not used before (in 25 s runs at 45,000 req/s, 11 % more
 * CPU per request than with the pages recycled). A page still dirty or
 * under write-back cannot be dropped: each range is tried at two ticks,
 * and what is left after that is left to the kernel's own reclaim.
 */
static void
auditlog_writeback(struct auditlog *l, int64_t now)
{
	off_t page;

	if (l->fd < 0) {
		l->wb_ms = -1;
		return;
	}
	if (l->wb_ms < 0) {
		l->wb_ms = now + AUDITLOG_WRITEBACK_MS;
		l->wb_off = l->wb_prev = l->dur_off;
		return;
	}
	if (now < l->wb_ms)
		return;
	if (l->wb_off > l->drop_off) {
		(void)posix_fadvise(l->fd, l->drop_off, l->wb_off - l->drop_off,
		    POSIX_FADV_DONTNEED);
		/* From the part new at this tick, its page boundary. */
		page = (off_t)sysconf(_SC_PAGESIZE);
		if (page > 0 && l->wb_prev > l->drop_off)
			l->drop_off = l->wb_prev - l->wb_prev % page;
	}
	l->wb_prev = l->wb_off;
	if (l->sync == CONF_AUDIT_SYNC_WRITE && l->dirty)
		(void)sync_file_range(l->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	l->wb_off = l->dur_off;
	l->wb_ms = now + AUDITLOG_WRITEBACK_MS;
}

static void
auditlog_timers(struct auditlog *l)
{
	int64_t now = auditlog_mono_ms();

	if (l->state == AUDITLOG_DEGRADED && now >= l->retry_ms)
		auditlog_recover(l);
	if (l->state == AUDITLOG_RUNNING && l->unsealed_ms >= 0 &&
	    now >= l->unsealed_ms + l->interval_ms)
		auditlog_checkpoint(l);
	if (l->state == AUDITLOG_RUNNING && l->unsealed_ms >= 0)
		auditlog_writeback(l, now);
	else
		l->wb_ms = -1;
}

/* Last words at close: the stop record, then the checkpoint sealing it. */
static void
auditlog_finish(struct auditlog *l)
{
	char bodymem[AUDITLOG_LIFE_MAX];
	struct audit_buf body;

	if (l->state == AUDITLOG_DEGRADED)
		auditlog_recover(l);
	if (l->state == AUDITLOG_RUNNING) {
		audit_buf_init(&body, bodymem, sizeof(bodymem));
		audit_fmt_stop(&body, "shutdown");
		audit_buf_reset(&l->b);
		if (auditlog_seal_life(l, "stop", &body) < 0 ||
		    auditlog_seal_checkpoint(l) < 0)
			auditlog_fail(l, l->ch.seq + 1,
			    "cannot seal the stop record");
		else if (auditlog_commit(l, 1, l->ch.seq - 1) == 0)
			l->unsealed_ms = -1;
	}
	if (l->state == AUDITLOG_DEGRADED) {
		pthread_mutex_lock(&l->mtx);
		log_error("audit: %s: closing while degraded (%s); %llu "
		          "requests refused",
		    l->path, l->fail_why, (unsigned long long)l->nrefused);
		pthread_mutex_unlock(&l->mtx);
	}
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
}

static void
auditlog_wait(struct auditlog *l, int64_t due_ms)
{
	struct timespec ts;

	if (due_ms < 0) {
		pthread_cond_wait(&l->wake, &l->mtx);
		return;
	}
	ts.tv_sec = (time_t)(due_ms / 1000);
	ts.tv_nsec = (long)(due_ms % 1000) * 1000000;
	pthread_cond_timedwait(&l->wake, &l->mtx, &ts);
}

static void *
auditlog_main(void *arg)
{
	struct auditlog *l = arg;
	struct auditlog_req *list;
	int64_t due;
	int stop, reopen;

	pthread_mutex_lock(&l->wmtx);
	due = auditlog_deadline(l);
	pthread_mutex_unlock(&l->wmtx);
	pthread_mutex_lock(&l->mtx);
	for (;;) {
		while (l->qhead == NULL && !l->stopping && !l->reopen_req &&
		    !l->kick) {
			if (due >= 0 && due <= auditlog_mono_ms())
				break;
			auditlog_wait(l, due);
		}
		list = l->qhead;
		l->qhead = l->qtail = NULL;
		l->qlen = 0;
		stop = l->stopping;
		reopen = l->reopen_req;
		l->reopen_req = 0;
		l->kick = 0;
		pthread_mutex_unlock(&l->mtx);

		pthread_mutex_lock(&l->wmtx);
		if (list != NULL)
			auditlog_write_list(l, list);
		if (reopen && l->state == AUDITLOG_DEGRADED)
			l->retry_ms = auditlog_mono_ms();
		else if (reopen || l->rotate_why != NULL)
			auditlog_switch(l,
			    reopen ? "reopen requested" : l->rotate_why, 1);
		l->rotate_why = NULL;
		auditlog_timers(l);
		due = auditlog_deadline(l);
		pthread_mutex_unlock(&l->wmtx);

		pthread_mutex_lock(&l->mtx);
		if (stop && l->qhead == NULL)
			break;
	}
	pthread_mutex_unlock(&l->mtx);
	pthread_mutex_lock(&l->wmtx);
	auditlog_finish(l);
	pthread_mutex_unlock(&l->wmtx);
	return NULL;
}

static void
auditlog_free(struct auditlog *l)
{
	if (l == NULL)
		return;
	if (l->fd >= 0)
		close(l->fd);
	audit_chain_clear(&l->ch);
	audit_signer_clear(&l->signer);
	free(l->mem);
	pthread_mutex_destroy(&l->wmtx);
	pthread_cond_destroy(&l->evdone);
	pthread_cond_destroy(&l->wake);
	pthread_mutex_destroy(&l->mtx);
	free(l);
}

/* Open the trail; see auditlog.h for what it refuses. */
struct auditlog *
auditlog_open(const struct conf_audit *a, const char *gateway, struct diag *dg)
{
	char err[AUDITLOG_WHY_MAX + 256], bodymem[AUDITLOG_LIFE_MAX];
	struct auditlog *l = NULL;
	struct audit_buf body;
	pthread_condattr_t ca;
	sigset_t all, old;
	EVP_PKEY *key = NULL;
	uint64_t torn = 0;
	int rc;

	if (a->path == NULL || a->signing_key == NULL) {
		diag_error(dg, NULL, 0, 0,
		    "audit: path and signing_key are required");
		return NULL;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		diag_error(dg, a->path, 0, 0, "out of memory");
		return NULL;
	}
	l->fd = -1;
	l->unsealed_ms = -1;
	l->wb_ms = -1;
	pthread_mutex_init(&l->mtx, NULL);
	pthread_mutex_init(&l->wmtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&l->evdone, NULL);
	if (strlcpy(l->path, a->path, sizeof(l->path)) >= sizeof(l->path)) {
		diag_error(dg, a->path, 0, 0, "path longer than %d bytes",
		    PATH_MAX - 1);
		goto fail;
	}
	l->sync = a->sync;
	l->interval_ms = (int64_t)(a->checkpoint_interval_ms > 86400000
	        ? 86400000
	        : a->checkpoint_interval_ms);
	if ((key = audit_key_load_private(a->signing_key, err, sizeof(err))) ==
	        NULL ||
	    audit_signer_init(&l->signer, key, err, sizeof(err)) < 0) {
		diag_error(dg, a->signing_key, 0, 0, "audit signing key: %s",
		    err);
		goto fail;
	}
	if (audit_chain_init(&l->ch, gateway, err, sizeof(err)) < 0) {
		diag_error(dg, a->path, 0, 0, "audit: %s", err);
		goto fail;
	}
	if ((l->mem = malloc(AUDITLOG_BATCH_BYTES + AUDITLOG_MAX_RECORD)) ==
	    NULL) {
		diag_error(dg, a->path, 0, 0, "out of memory");
		goto fail;
	}
	audit_buf_init(&l->b, l->mem,
	    AUDITLOG_BATCH_BYTES + AUDITLOG_MAX_RECORD);
	if (auditlog_attach(l, 1, &torn, err, sizeof(err)) < 0) {
		diag_error(dg, a->path, 0, 0, "audit: %s", err);
		goto fail;
	}
	/* The start record, durable before we say yes (A01). */
	audit_buf_init(&body, bodymem, sizeof(bodymem));
	audit_fmt_start(&body, PACKAGE_VERSION, (long)getpid(), torn);
	if (auditlog_seal_life(l, "start", &body) < 0) {
		diag_error(dg, a->path, 0, 0,
		    "audit: cannot seal the start "
		    "record");
		goto fail;
	}
	if (auditlog_write_all(l->fd, l->b.p, l->b.len) < 0 ||
	    auditlog_datasync(l->fd) < 0) {
		diag_error(dg, a->path, 0, 0,
		    "audit: cannot write the start record: %s",
		    strerror(errno));
		goto fail;
	}
	l->dur_seq = l->ch.seq;
	memcpy(l->dur_hash, l->ch.prev, AUDIT_HASH_LEN);
	l->dur_off += (off_t)l->b.len;
	audit_buf_reset(&l->b);
	l->unsealed_ms = auditlog_mono_ms();
	l->st.batches = l->st.syncs = 1;

	/*
	 * The writer takes no asynchronous signals (the main thread's
	 * business), but keeps the synchronous ones and SIGXFSZ, whose
	 * disposition the program chooses.
	 */
	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGXFSZ);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&l->thread, NULL, auditlog_main, l);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		diag_error(dg, a->path, 0, 0, "audit: pthread_create: %s",
		    strerror(rc));
		goto fail;
	}
	l->started = 1;
	EVP_PKEY_free(key);
	return l;
fail:
	EVP_PKEY_free(key);
	auditlog_free(l);
	return NULL;
}

void
auditlog_close(struct auditlog *l)
{
	if (l == NULL)
		return;
	if (l->started) {
		pthread_mutex_lock(&l->mtx);
		l->stopping = 1;
		pthread_cond_signal(&l->wake);
		pthread_mutex_unlock(&l->mtx);
		pthread_join(l->thread, NULL);
	}
	auditlog_free(l);
}

/*
 * Take r off its list for the writer: its writer fields reset, and 1 if it
 * may be written, 0 if it is refused (malformed, or the trail is not open:
 * counted). Under l->mtx.
 */
static int
auditlog_admit(struct auditlog *l, struct auditlog_req *r, int open,
    int64_t now)
{
	int bad;

	r->next = NULL;
	r->ok = 0;
	r->seq = 0;
	r->queued_us = now;
	bad = r->event == NULL || r->len > AUDIT_BODY_MAX ||
	    (r->body == NULL && r->len > 0);
	if (!bad && !open) {
		l->nrefused++;
		l->st.refused++;
	}
	return !bad && open;
}

/*
 * Queue a list for the writer under one lock; returns the records
 * refused (a failing trail, a full queue, a malformed record). The
 * writer is signalled once, after the unlock, and only when the queue
 * was empty: otherwise it is awake or already signalled, and waking it
 * for each record made it preempt the submitter only to block on mtx.
 */
static struct auditlog_req *
auditlog_enqueue(struct auditlog *l, struct auditlog_req *list)
{
	struct auditlog_req *refused = NULL, **rtail = &refused, *r, *next;
	int64_t now = auditlog_mono_us();
	int ok, open, wake;

	pthread_mutex_lock(&l->mtx);
	open = l->state == AUDITLOG_RUNNING && !l->stopping;
	wake = l->qhead == NULL;
	for (r = list; r != NULL; r = next) {
		next = r->next;
		ok = auditlog_admit(l, r, open, now);
		if (!ok || l->qlen >= AUDITLOG_MAX_QUEUE) {
			if (ok)
				l->st.queue_full++;
			*rtail = r;
			rtail = &r->next;
			continue;
		}
		if (l->qtail != NULL)
			l->qtail->next = r;
		else
			l->qhead = r;
		l->qtail = r;
		l->qlen++;
	}
	wake = wake && l->qhead != NULL;
	pthread_mutex_unlock(&l->mtx);
	if (wake)
		pthread_cond_signal(&l->wake);
	return refused;
}

/* Queue r for the writer; see auditlog.h. */
int
auditlog_submit(struct auditlog *l, struct auditlog_req *r)
{
	r->next = NULL;
	return auditlog_enqueue(l, r) == NULL ? 0 : -1;
}

/*
 * Submit a batch; with audit.sync write and the writer idle, write it
 * on the caller's thread. See auditlog.h.
 */
struct auditlog_req *
auditlog_submit_list(struct auditlog *l, struct auditlog_req *list)
{
	struct auditlog_req *refused = NULL, **rtail = &refused, *r, *next;
	struct auditlog_req *head = NULL, **tail = &head;
	int64_t now;
	int open;

	/*
	 * With fsync the writer's group commit waits for fdatasync anyway;
	 * writing here first measured no better (a thread hand-off per
	 * batch either way), so fsync keeps the one writer.
	 */
	if (l->sync == CONF_AUDIT_SYNC_FSYNC ||
	    pthread_mutex_trylock(&l->wmtx) != 0)
		return auditlog_enqueue(l, list);
	now = auditlog_mono_us();
	pthread_mutex_lock(&l->mtx);
	open = l->state == AUDITLOG_RUNNING && !l->stopping;
	for (r = list; r != NULL; r = next) {
		next = r->next;
		if (!auditlog_admit(l, r, open, now)) {
			*rtail = r;
			rtail = &r->next;
			continue;
		}
		*tail = r;
		tail = &r->next;
	}
	pthread_mutex_unlock(&l->mtx);
	if (head != NULL)
		auditlog_write_list(l, head);
	pthread_mutex_unlock(&l->wmtx);
	return refused;
}

static void
auditlog_event_done(struct auditlog_req *r, int ok)
{
	struct auditlog_waiter *w = r->arg;

	pthread_mutex_lock(&w->l->mtx);
	w->ok = ok;
	w->done = 1;
	pthread_cond_broadcast(&w->l->evdone);
	pthread_mutex_unlock(&w->l->mtx);
}

/* Submit one record and wait for its fate; see auditlog.h. */
int
auditlog_event(struct auditlog *l, const char *event, const char *body)
{
	struct auditlog_waiter w;
	struct auditlog_req r;
	char *copy = NULL;
	int ret = -1;

	memset(&w, 0, sizeof(w));
	memset(&r, 0, sizeof(r));
	if ((copy = strdup(body != NULL ? body : "")) == NULL)
		return -1;
	w.l = l;
	r.event = event;
	r.body = copy;
	r.len = strlen(copy);
	r.done = auditlog_event_done;
	r.arg = &w;
	if (auditlog_submit(l, &r) < 0)
		goto out;
	pthread_mutex_lock(&l->mtx);
	while (!w.done)
		pthread_cond_wait(&l->evdone, &l->mtx);
	pthread_mutex_unlock(&l->mtx);
	ret = w.ok ? 0 : -1;
out:
	free(copy);
	return ret;
}

int
auditlog_degraded(const struct auditlog *l)
{
	return __atomic_load_n(&l->degraded, __ATOMIC_ACQUIRE);
}

void
auditlog_reopen(struct auditlog *l)
{
	pthread_mutex_lock(&l->mtx);
	l->reopen_req = 1;
	pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&l->mtx);
}

void
auditlog_stats(struct auditlog *l, struct auditlog_stats *st)
{
	pthread_mutex_lock(&l->mtx);
	*st = l->st;
	st->queued = l->qlen;
	st->degraded = l->state == AUDITLOG_DEGRADED;
	pthread_mutex_unlock(&l->mtx);
}

/* Runs on the submitter's base: the done callbacks, in order. */
static void
auditlog_notify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct auditlog_notify *n = arg;
	struct auditlog_req *r, *next;

	pthread_mutex_lock(&n->mtx);
	r = n->head;
	n->head = n->tail = NULL;
	pthread_mutex_unlock(&n->mtx);
	for (; r != NULL; r = next) {
		next = r->next; /* done may free r */
		r->next = NULL;
		if (r->done != NULL)
			r->done(r, r->ok);
	}
}

struct auditlog_notify *
auditlog_notify_new(struct event_base *base)
{
	struct auditlog_notify *n;

	if ((n = calloc(1, sizeof(*n))) == NULL)
		return NULL;
	if ((n->ev = event_new(base, -1, 0, auditlog_notify_cb, n)) == NULL) {
		free(n);
		return NULL;
	}
	pthread_mutex_init(&n->mtx, NULL);
	return n;
}

void
auditlog_notify_free(struct auditlog_notify *n)
{
	if (n == NULL)
		return;
	auditlog_notify_cb(-1, 0, n);
	event_free(n->ev);
	pthread_mutex_destroy(&n->mtx);
	free(n);
}
