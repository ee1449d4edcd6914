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

#define AUDITLOG_MAX_RECORD (64 * 1024) /* bytes of one sealed line */
#define AUDITLOG_MAX_QUEUE 65536	/* records waiting; beyond: refuse */

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
	size_t len;
	int flags; /* AUDITLOG_F_* */
	/*
	 * Called on the submitter's event loop (through notify) once the
	 * record is durable as audit.sync says (ok = 1), or when it cannot
	 * be (ok = 0: the request must be refused with 503).
	 */
	void (*done)(struct auditlog_req *r, int ok);
	void *arg;
	struct auditlog_notify *notify;
	/* Set by the writer. */
	uint64_t seq;
	int ok;
	struct auditlog_req *next;
};

#define AUDITLOG_F_FREE 0x1 /* the writer frees body and r when done */

/*
 * Open (or continue) the audit trail at a->path: read the tail of the
 * last file to continue seq and chain, repair a torn final line (and
 * record that), write a `start` record and start the writer thread.
 * Refuses (NULL, reason in dg) when the file cannot be written.
 */
struct auditlog *auditlog_open(const struct conf_audit *a, const char *gateway,
    struct diag *dg);

/*
 * Write a final checkpoint and a `stop` record, flush, and stop the
 * thread. Records still queued are written first.
 */
void auditlog_close(struct auditlog *l);

/*
 * A completion queue bound to one worker's event base: done callbacks of
 * records submitted with it run on that base's thread.
 */
struct auditlog_notify *auditlog_notify_new(struct event_base *base);
void auditlog_notify_free(struct auditlog_notify *n);

/*
 * Queue r. Returns 0, or -1 when the trail is failing (disk full, I/O
 * error, file removed and not reopenable) or the queue is full: then r is
 * not queued and the caller answers 503 audit_unavailable at once.
 * Thread-safe.
 */
int auditlog_submit(struct auditlog *l, struct auditlog_req *r);

/* 1 while records cannot be written (for /healthz and fast refusals). */
int auditlog_degraded(const struct auditlog *l);

/* Reopen the file after rotation (SIGUSR1): checkpoint, reopen, record. */
void auditlog_reopen(struct auditlog *l);

#endif /* AUDITLOG_H */
