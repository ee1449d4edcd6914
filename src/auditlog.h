/* auditlog.h - the audit writer: one thread, group commit, fail closed. */
#ifndef AUDITLOG_H
#define AUDITLOG_H

#include <stddef.h>
#include <stdint.h>

struct conf_audit;
struct diag;
struct event_base;

struct auditlog;
struct auditlog_notify;

#define AUDITLOG_MAX_RECORD (64 * 1024)    /* bytes of one sealed line */
#define AUDITLOG_MAX_QUEUE 65536           /* records waiting; beyond: refuse */
#define AUDITLOG_BATCH_BYTES (1024 * 1024) /* one write(2), at most */
#define AUDITLOG_RETRY_MS 1000    /* while degraded: retry this often */
#define AUDITLOG_WRITEBACK_MS 100 /* start write-back, drop cache */

/*
 * One record on its way to disk. The submitter owns it and must keep it
 * alive until done has run (or forever, if done is NULL and it was
 * allocated for the writer to free: see AUDITLOG_F_FREE).
 *
 * body holds the record's fields after "event", each with its leading
 * comma and without the closing brace, e.g. `,"request_id":"r1",...`.
 * The writer adds `{"seq":N,"ts":"…","gateway":"…","event":"…"` before it
 * and `,"prev":"…","hash":"…"}\n` after it (contract section 6), in the
 * order records reach it, so sequence and chain order are one.
 */
struct auditlog_req {
	const char *event; /* "decision", "complete", "start", ... */
	char *body;
	size_t len; /* at most AUDIT_BODY_MAX (audit.h) */
	int flags;  /* AUDITLOG_F_* */
	/*
	 * Called on the submitter's event loop (through notify) once the
	 * record is durable as audit.sync says (ok = 1), or when it cannot
	 * be (ok = 0: the request must be refused with 503). With notify
	 * NULL, done runs on the writer thread itself: it must be quick
	 * and must not call back into the log.
	 */
	void (*done)(struct auditlog_req *r, int ok);
	void *arg;
	struct auditlog_notify *notify;
	/* Set by auditlog_submit and the writer. */
	uint64_t seq; /* 0 when the record was not written */
	int ok;
	int64_t queued_us; /* CLOCK_MONOTONIC at submit, for the lag */
	struct auditlog_req *next;
};

/* The writer frees body and r (free(3)) after writing; done is not run. */
#define AUDITLOG_F_FREE 0x1

/*
 * Open (or continue) the audit trail at a->path: read the tail of the
 * file to continue seq and chain, repair a torn final line (truncate it;
 * the start record's torn_bytes says how many bytes went), write a
 * `start` record and fdatasync it, then start the writer thread.
 * Refuses (NULL, reason in dg) when the signing key cannot be loaded or
 * may be read by group or others, the path is a symlink or not a regular
 * file, others may write the file, another process holds it (flock),
 * its last line is not a valid record, or the start record cannot be
 * made durable (disk full, read-only, I/O error).
 */
struct auditlog *auditlog_open(const struct conf_audit *a, const char *gateway,
    struct diag *dg);

/*
 * Write the records still queued, then a `stop` record and a final
 * checkpoint (so a clean shutdown leaves nothing unsealed), fdatasync,
 * stop the thread and free l. Submitting after close has begun returns
 * -1. NULL is a no-op.
 */
void auditlog_close(struct auditlog *l);

/*
 * A completion queue bound to one worker's event base: done callbacks of
 * records submitted with it run on that base's thread. The program must
 * call evthread_use_pthreads() before creating base. Free it only after
 * every record submitted with it has been handed back; callbacks still
 * pending then run inside auditlog_notify_free.
 */
struct auditlog_notify *auditlog_notify_new(struct event_base *base);
void auditlog_notify_free(struct auditlog_notify *n);

/*
 * Queue r. Returns 0, or -1 when the trail is failing (disk full, I/O
 * error, file removed and not reopenable), the queue is full, the log is
 * closing, or r is malformed (no event, body over AUDIT_BODY_MAX): then r
 * is not queued and the caller answers 503 audit_unavailable at once.
 * Never blocks on I/O. Thread-safe.
 */
int auditlog_submit(struct auditlog *l, struct auditlog_req *r);

/*
 * Submit a list of records (linked by next) in order; returns those
 * refused as auditlog_submit would refuse them (linked by next), for
 * the caller to answer 503 at once. With audit.sync write and the
 * writer idle, the records are sealed and written on the caller's
 * thread, sparing a thread hand-off; otherwise they are queued. Either
 * way each accepted record comes back through its notify queue. Never
 * waits for the writer (a rare file found deleted or truncated under it
 * is replaced on the thread that finds it).
 */
struct auditlog_req *auditlog_submit_list(struct auditlog *l,
    struct auditlog_req *list);

/*
 * Submit a lifecycle record (e.g. "policy_loaded") with body as in
 * struct auditlog_req, and wait until it is durable (0) or has failed
 * (-1). For the main thread; never from the writer's done callbacks.
 */
int auditlog_event(struct auditlog *l, const char *event, const char *body);

/* 1 while records cannot be written (for /healthz and fast refusals). */
int auditlog_degraded(const struct auditlog *l);

/*
 * Reopen the file after rotation (SIGUSR1): the writer checkpoints the
 * old file, opens the path anew and writes a `reopen` record that
 * continues the chain. While degraded, it retries at once instead.
 * Returns at once; not for signal handlers (it takes a mutex).
 */
void auditlog_reopen(struct auditlog *l);

/* Counters for /metrics; a consistent snapshot. */
struct auditlog_stats {
	uint64_t records;     /* handed back ok */
	uint64_t failed;      /* handed back not ok */
	uint64_t refused;     /* submits refused: degraded or closing */
	uint64_t queue_full;  /* submits refused: queue full */
	uint64_t batches;     /* write(2) batches */
	uint64_t syncs;       /* fdatasync calls that succeeded */
	uint64_t checkpoints; /* checkpoints written */
	uint64_t degradations;
	uint64_t max_lag_us; /* longest submit-to-handback, this run */
	size_t queued;       /* waiting now */
	int degraded;
};

void auditlog_stats(struct auditlog *l, struct auditlog_stats *st);

#endif /* AUDITLOG_H */
