/*
 * auditlog_test.c - the audit writer: group commit from four event loops,
 * crash consistency (A14), deletion (A09), rotation (A10), copytruncate
 * (A11, flagged), fail closed and recovery (A07 by RLIMIT_FSIZE),
 * refusals at start. With a first argument "drive", a small driver for
 * tests/audit/faults_*.sh (strace fault injection and a small tmpfs).
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "audit.h"
#include "auditlog.h"
#include "conf.h"
#include "diag.h"
#include "tap.h"

#define T_THREADS 4
#define T_WINDOW 32
#define T_ID_MAX 64

static char t_dir[1024];
static char t_keypath[PATH_MAX];
static EVP_PKEY *t_key; /* private; verifies checkpoints too */

/* Helpers. */

static int64_t
t_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
t_sleep_ms(int64_t ms)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void
t_path(char *out, const char *name)
{
	snprintf(out, PATH_MAX, "%s/%s", t_dir, name);
}

/* A fresh Ed25519 key in a 0600 PEM file. */
static EVP_PKEY *
t_keygen(const char *path)
{
	EVP_PKEY *k;
	FILE *fp;
	int fd;

	if ((k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL)
		return NULL;
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) <
	        0 ||
	    (fp = fdopen(fd, "w")) == NULL) {
		EVP_PKEY_free(k);
		return NULL;
	}
	if (PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL) != 1) {
		fclose(fp);
		EVP_PKEY_free(k);
		return NULL;
	}
	fclose(fp);
	return k;
}

struct t_conf {
	struct conf_audit a;
	char path[PATH_MAX];
	char key[PATH_MAX];
};

static void
t_conf_init(struct t_conf *c, const char *path, enum conf_audit_sync sync,
    uint64_t interval_ms)
{
	memset(c, 0, sizeof(*c));
	strlcpy(c->path, path, sizeof(c->path));
	strlcpy(c->key, t_keypath, sizeof(c->key));
	c->a.path = c->path;
	c->a.signing_key = c->key;
	c->a.sync = sync;
	c->a.checkpoint_interval_ms = interval_ms;
}

static struct auditlog *
t_open(const struct t_conf *c, char *err, size_t errlen)
{
	struct auditlog *l;
	struct diag dg;

	diag_init(&dg);
	l = auditlog_open(&c->a, "test-gw", &dg);
	if (l == NULL)
		snprintf(err, errlen, "%s",
		    diag_first_error(&dg) ? diag_first_error(&dg) : "?");
	else
		snprintf(err, errlen, "ok");
	diag_clear(&dg);
	return l;
}

/*
 * A record body for request id: a `complete` record, or with pad > 0 a
 * `policy_loaded` one whose revision is id and whose errors make it
 * about pad bytes long (to make torn lines likely).
 */
static const char *
t_body(struct audit_buf *b, const char *id, size_t pad)
{
	static const char fill[AUDIT_ERROR_MAX + 1] =
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxx";
	const char *errs[AUDIT_MAX_ERRORS];
	struct audit_complete c;
	size_t i, n;

	audit_buf_reset(b);
	if (pad > 0) {
		n = pad / AUDIT_ERROR_MAX + 1;
		if (n > AUDIT_MAX_ERRORS)
			n = AUDIT_MAX_ERRORS;
		for (i = 0; i < n; i++)
			errs[i] = fill;
		audit_fmt_policy_loaded(b, id,
		    "0123456789abcdef0123456789abcdef"
		    "0123456789abcdef0123456789abcdef",
		    0, errs, n);
		return "policy_loaded";
	}
	memset(&c, 0, sizeof(c));
	c.request_id = id;
	c.status = 200;
	c.upstream = "psb-api";
	c.upstream_us = 3100;
	c.bytes_out = 1043;
	c.duration_us = 3900;
	audit_fmt_complete(b, &c);
	return "complete";
}

/* One record submitted and waited for on the writer thread. */
struct t_one {
	struct auditlog_req r;
	pthread_mutex_t mtx;
	pthread_cond_t cv;
	int done, ok;
	struct audit_buf b;
	char mem[AUDIT_BODY_MAX];
};

static void
t_one_done(struct auditlog_req *r, int ok)
{
	struct t_one *o = r->arg;

	pthread_mutex_lock(&o->mtx);
	o->done = 1;
	o->ok = ok;
	pthread_cond_signal(&o->cv);
	pthread_mutex_unlock(&o->mtx);
}

/* Submit one record and wait: 1 ok, 0 failed, -1 refused at submit. */
static int
t_put(struct auditlog *l, const char *id, size_t pad, uint64_t *seq)
{
	struct t_one *o;
	int ret;

	if ((o = calloc(1, sizeof(*o))) == NULL)
		return -1;
	pthread_mutex_init(&o->mtx, NULL);
	pthread_cond_init(&o->cv, NULL);
	audit_buf_init(&o->b, o->mem, sizeof(o->mem));
	o->r.event = t_body(&o->b, id, pad);
	o->r.body = o->b.p;
	o->r.len = o->b.len;
	o->r.done = t_one_done;
	o->r.arg = o;
	if (auditlog_submit(l, &o->r) < 0) {
		ret = -1;
		goto out;
	}
	pthread_mutex_lock(&o->mtx);
	while (!o->done)
		pthread_cond_wait(&o->cv, &o->mtx);
	pthread_mutex_unlock(&o->mtx);
	ret = o->ok;
	if (seq != NULL)
		*seq = o->r.seq;
out:
	pthread_cond_destroy(&o->cv);
	pthread_mutex_destroy(&o->mtx);
	free(o);
	return ret;
}

/* A file read back: each line's seq, event and id. */
struct t_rec {
	uint64_t seq;
	char event[32];
	char id[T_ID_MAX];
	uint64_t num; /* torn_bytes (start) or refused (audit_recovered) */
	char prev[AUDIT_HEX_LEN + 1];
	char hash[AUDIT_HEX_LEN + 1];
};

struct t_file {
	struct t_rec *v;
	size_t n;
	size_t torn; /* bytes after the last newline */
};

static void
t_field(const char *line, size_t len, const char *key, char *out, size_t outlen)
{
	const char *p, *end = line + len;
	size_t klen = strlen(key), n = 0;

	out[0] = '\0';
	for (p = line; p + klen < end; p++)
		if (memcmp(p, key, klen) == 0)
			break;
	if (p + klen >= end)
		return;
	p += klen;
	while (p < end && *p != '"' && *p != ',' && *p != '}' && n + 1 < outlen)
		out[n++] = *p++;
	out[n] = '\0';
}

static void
t_file_free(struct t_file *f)
{
	free(f->v);
	memset(f, 0, sizeof(*f));
}

static int
t_file_load(const char *path, struct t_file *f)
{
	char *buf = NULL, num[32];
	const char *p, *nl, *end;
	struct t_rec *r;
	struct stat st;
	size_t cap = 0, got = 0;
	ssize_t k;
	int fd;

	memset(f, 0, sizeof(*f));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if (fstat(fd, &st) < 0 ||
	    (buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return -1;
	}
	while (got < (size_t)st.st_size &&
	    (k = read(fd, buf + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)k;
	close(fd);
	for (p = buf, end = buf + got; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL) {
			f->torn = (size_t)(end - p);
			break;
		}
		if (f->n == cap) {
			cap = cap ? 2 * cap : 256;
			if ((r = realloc(f->v, cap * sizeof(*r))) == NULL)
				break;
			f->v = r;
		}
		r = &f->v[f->n++];
		memset(r, 0, sizeof(*r));
		t_field(p, (size_t)(nl - p), "{\"seq\":", num, sizeof(num));
		r->seq = strtoull(num, NULL, 10);
		t_field(p, (size_t)(nl - p), "\"event\":\"", r->event,
		    sizeof(r->event));
		t_field(p, (size_t)(nl - p), "\"request_id\":\"", r->id,
		    sizeof(r->id));
		if (r->id[0] == '\0')
			t_field(p, (size_t)(nl - p), "\"revision\":\"", r->id,
			    sizeof(r->id));
		t_field(p, (size_t)(nl - p), "\"torn_bytes\":", num,
		    sizeof(num));
		if (num[0] == '\0')
			t_field(p, (size_t)(nl - p), "\"refused\":", num,
			    sizeof(num));
		r->num = strtoull(num, NULL, 10);
		t_field(p, (size_t)(nl - p), "\"prev\":\"", r->prev,
		    sizeof(r->prev));
		t_field(p, (size_t)(nl - p), "\"hash\":\"", r->hash,
		    sizeof(r->hash));
	}
	free(buf);
	return 0;
}

/* The index of the record with this id, or -1; *count: how many. */
static long
t_file_find(const struct t_file *f, const char *id, size_t *count)
{
	long at = -1;
	size_t i, c = 0;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->v[i].id, id) == 0) {
			if (at < 0)
				at = (long)i;
			c++;
		}
	if (count != NULL)
		*count = c;
	return at;
}

static size_t
t_file_count(const struct t_file *f, const char *event)
{
	size_t i, c = 0;

	for (i = 0; i < f->n; i++)
		c += strcmp(f->v[i].event, event) == 0;
	return c;
}

struct t_vsum {
	uint64_t nrecords, first_seq, last_seq, unsealed, ncheckpoints;
	size_t torn;
};

/* Verify files in order with the checkpoint key. 0, or -1 and err. */
static int
t_verify(const char *const *paths, size_t n, int partial, struct t_vsum *s,
    char *err, size_t errlen)
{
	struct audit_verify v;
	size_t i;
	int ret = -1;

	memset(&v, 0, sizeof(v));
	if (s != NULL)
		memset(s, 0, sizeof(*s));
	v.pubkey = t_key;
	v.partial = partial;
	if (audit_verify_init(&v, err, errlen) < 0)
		return -1;
	for (i = 0; i < n; i++)
		if (audit_verify_file(&v, paths[i], i + 1 == n) < 0)
			break;
	if (i == n && audit_verify_finish(&v) == 0) {
		ret = 0;
		snprintf(err, errlen, "ok");
	} else
		strlcpy(err, v.error, errlen);
	if (s != NULL) {
		s->nrecords = v.nrecords;
		s->first_seq = v.first_seq;
		s->last_seq = v.last_seq;
		s->unsealed = v.unsealed;
		s->ncheckpoints = v.ncheckpoints;
		s->torn = v.torn_bytes;
	}
	audit_verify_clear(&v);
	return ret;
}

static int
t_verify1(const char *path, int partial, struct t_vsum *s, char *err,
    size_t errlen)
{
	const char *paths[1];

	paths[0] = path;
	return t_verify(paths, 1, partial, s, err, errlen);
}

/* Seq strictly increasing by one through a file (A18: no interleaving). */
static int
t_file_seq_ok(const struct t_file *f)
{
	size_t i;

	for (i = 1; i < f->n; i++)
		if (f->v[i].seq != f->v[i - 1].seq + 1)
			return 0;
	return 1;
}

/*
 * Loaders: threads keeping `window` records in flight, done on the
 * writer thread (notify NULL), until told to stop. Used by the crash
 * child and by the driver's load mode.
 */
struct t_loader {
	struct auditlog *l;
	int id;
	size_t window, pad;
	int stop; /* atomic */
	int ackfd;
	pthread_t thread;
	pthread_mutex_t mtx;
	pthread_cond_t cv;
	size_t inflight;
	uint64_t next, ok, failed, refused;
	FILE *acked; /* ids of records handed back ok */
};

struct t_lreq {
	struct auditlog_req r;
	struct t_loader *ld;
	uint64_t num;
	struct audit_buf b;
	char mem[];
};

static void
t_loader_done(struct auditlog_req *r, int ok)
{
	struct t_lreq *q = r->arg;
	struct t_loader *ld = q->ld;
	uint64_t tag;
	ssize_t w;

	pthread_mutex_lock(&ld->mtx);
	if (ok) {
		ld->ok++;
		tag = (uint64_t)ld->id << 48 | q->num;
		if (ld->ackfd >= 0)
			w = write(ld->ackfd, &tag, sizeof(tag));
		else
			w = 0;
		(void)w;
		if (ld->acked != NULL)
			fprintf(ld->acked, "L%d-%llu\n", ld->id,
			    (unsigned long long)q->num);
	} else
		ld->failed++;
	ld->inflight--;
	pthread_cond_signal(&ld->cv);
	pthread_mutex_unlock(&ld->mtx);
	free(q);
}

static void *
t_loader_main(void *arg)
{
	struct t_loader *ld = arg;
	struct t_lreq *q;
	char id[T_ID_MAX];
	size_t cap = ld->pad > 0 ? AUDIT_BODY_MAX : 1024;

	for (;;) {
		pthread_mutex_lock(&ld->mtx);
		while (ld->inflight >= ld->window &&
		    !__atomic_load_n(&ld->stop, __ATOMIC_ACQUIRE))
			pthread_cond_wait(&ld->cv, &ld->mtx);
		pthread_mutex_unlock(&ld->mtx);
		if (__atomic_load_n(&ld->stop, __ATOMIC_ACQUIRE))
			break;
		if ((q = calloc(1, sizeof(*q) + cap)) == NULL)
			break;
		q->ld = ld;
		q->num = ++ld->next;
		audit_buf_init(&q->b, q->mem, cap);
		snprintf(id, sizeof(id), "L%d-%llu", ld->id,
		    (unsigned long long)q->num);
		q->r.event = t_body(&q->b, id, ld->pad);
		q->r.body = q->b.p;
		q->r.len = q->b.len;
		q->r.done = t_loader_done;
		q->r.arg = q;
		pthread_mutex_lock(&ld->mtx);
		ld->inflight++;
		pthread_mutex_unlock(&ld->mtx);
		if (auditlog_submit(ld->l, &q->r) < 0) {
			pthread_mutex_lock(&ld->mtx);
			ld->inflight--;
			ld->refused++;
			pthread_mutex_unlock(&ld->mtx);
			free(q);
			t_sleep_ms(1);
		}
	}
	pthread_mutex_lock(&ld->mtx);
	while (ld->inflight > 0)
		pthread_cond_wait(&ld->cv, &ld->mtx);
	pthread_mutex_unlock(&ld->mtx);
	return NULL;
}

static void
t_loaders_start(struct t_loader *ld, size_t n, struct auditlog *l,
    size_t window, size_t pad, int ackfd, FILE *acked)
{
	size_t i;

	for (i = 0; i < n; i++) {
		memset(&ld[i], 0, sizeof(ld[i]));
		ld[i].l = l;
		ld[i].id = (int)i + 1;
		ld[i].window = window;
		ld[i].pad = pad;
		ld[i].ackfd = ackfd;
		ld[i].acked = acked;
		pthread_mutex_init(&ld[i].mtx, NULL);
		pthread_cond_init(&ld[i].cv, NULL);
		pthread_create(&ld[i].thread, NULL, t_loader_main, &ld[i]);
	}
}

static void
t_loaders_stop(struct t_loader *ld, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		__atomic_store_n(&ld[i].stop, 1, __ATOMIC_RELEASE);
		pthread_mutex_lock(&ld[i].mtx);
		pthread_cond_broadcast(&ld[i].cv);
		pthread_mutex_unlock(&ld[i].mtx);
	}
	for (i = 0; i < n; i++) {
		pthread_join(ld[i].thread, NULL);
		pthread_cond_destroy(&ld[i].cv);
		pthread_mutex_destroy(&ld[i].mtx);
	}
}

/* Group commit from four event loops (A18). */

struct t_evthr;

struct t_slot {
	struct auditlog_req r;
	struct t_evthr *t;
	size_t idx;
	struct audit_buf b;
	char mem[512];
};

struct t_evthr {
	struct auditlog *l;
	int id;
	size_t n, sent, done, ok, wrong_thread, refused;
	pthread_t thread, self;
	struct event_base *base;
	struct auditlog_notify *notify;
	struct t_slot slots[T_WINDOW];
	uint64_t *seqs;
};

static void t_ev_done(struct auditlog_req *r, int ok);

/* Send the next record from slot s; 0, or -1 when none is left. */
static int
t_ev_send(struct t_evthr *t, struct t_slot *s)
{
	char id[T_ID_MAX];

	while (t->sent < t->n) {
		s->idx = t->sent++;
		snprintf(id, sizeof(id), "t%d-%zu", t->id, s->idx);
		audit_buf_init(&s->b, s->mem, sizeof(s->mem));
		memset(&s->r, 0, sizeof(s->r));
		s->r.event = t_body(&s->b, id, 0);
		s->r.body = s->b.p;
		s->r.len = s->b.len;
		s->r.done = t_ev_done;
		s->r.arg = s;
		s->r.notify = t->notify;
		if (auditlog_submit(t->l, &s->r) == 0)
			return 0;
		t->refused++;
		t->done++;
	}
	return -1;
}

static void
t_ev_done(struct auditlog_req *r, int ok)
{
	struct t_slot *s = r->arg;
	struct t_evthr *t = s->t;

	if (!pthread_equal(pthread_self(), t->self))
		t->wrong_thread++;
	t->seqs[s->idx] = ok ? r->seq : 0;
	t->ok += ok != 0;
	t->done++;
	t_ev_send(t, s);
	if (t->done >= t->n)
		event_base_loopbreak(t->base);
}

static void *
t_ev_main(void *arg)
{
	struct t_evthr *t = arg;
	size_t i;

	t->self = pthread_self();
	for (i = 0; i < T_WINDOW; i++) {
		t->slots[i].t = t;
		if (t_ev_send(t, &t->slots[i]) < 0)
			break;
	}
	if (t->done < t->n)
		event_base_loop(t->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

/* N records from each of four threads; returns records per second. */
static double
t_group(const char *name, enum conf_audit_sync sync, size_t n)
{
	struct t_evthr *th;
	struct auditlog_stats st;
	struct t_conf c;
	struct t_file f;
	struct t_vsum vs;
	struct auditlog *l;
	char path[PATH_MAX], err[4200], id[T_ID_MAX];
	size_t i, k, ok = 0, wrong = 0, missing = 0, order = 0, cnt;
	int64_t t0, t1;
	double rate = 0;
	long at;

	t_path(path, name);
	t_conf_init(&c, path, sync, 200);
	th = calloc(T_THREADS, sizeof(*th));
	if (!tap_ok((l = t_open(&c, err, sizeof(err))) != NULL, "%s: open: %s",
	        name, err)) {
		free(th);
		return 0;
	}
	for (i = 0; i < T_THREADS; i++) {
		th[i].l = l;
		th[i].id = (int)i;
		th[i].n = n;
		th[i].seqs = calloc(n, sizeof(uint64_t));
		th[i].base = event_base_new();
		th[i].notify = auditlog_notify_new(th[i].base);
	}
	t0 = t_now_ms();
	for (i = 0; i < T_THREADS; i++)
		pthread_create(&th[i].thread, NULL, t_ev_main, &th[i]);
	for (i = 0; i < T_THREADS; i++)
		pthread_join(th[i].thread, NULL);
	t1 = t_now_ms();
	auditlog_stats(l, &st);
	auditlog_close(l);
	for (i = 0; i < T_THREADS; i++) {
		ok += th[i].ok;
		wrong += th[i].wrong_thread;
	}
	rate = (double)(T_THREADS * n) * 1000.0 /
	    (double)(t1 - t0 > 0 ? t1 - t0 : 1);
	tap_ok(ok == T_THREADS * n, "%s: all %zu records handed back ok (%zu)",
	    name, T_THREADS * n, ok);
	tap_ok(wrong == 0, "%s: done ran on the submitter's event loop", name);
	tap_ok(st.batches < st.records,
	    "%s: group commit: %llu records in %llu batches, %llu syncs", name,
	    (unsigned long long)st.records, (unsigned long long)st.batches,
	    (unsigned long long)st.syncs);
	tap_diag("%s: %.0f records/s (%zu threads, window %d)", name, rate,
	    (size_t)T_THREADS, T_WINDOW);
	tap_ok(t_verify1(path, 0, &vs, err, sizeof(err)) == 0,
	    "%s: the file verifies: %s", name, err);
	tap_ok(vs.unsealed == 0 && vs.ncheckpoints >= 1,
	    "%s: closed sealed (%llu unsealed, %llu checkpoints)", name,
	    (unsigned long long)vs.unsealed,
	    (unsigned long long)vs.ncheckpoints);
	t_file_load(path, &f);
	tap_ok(t_file_seq_ok(&f) && f.torn == 0,
	    "%s: seq strictly increasing by one, no partial line", name);
	for (i = 0; i < T_THREADS; i++)
		for (k = 0; k < n; k++) {
			snprintf(id, sizeof(id), "t%zu-%zu", i, k);
			at = t_file_find(&f, id, &cnt);
			if (at < 0 || cnt != 1 || f.v[at].seq != th[i].seqs[k])
				missing++;
			if (k > 0 && th[i].seqs[k] <= th[i].seqs[k - 1])
				order++;
		}
	tap_ok(missing == 0,
	    "%s: every record once, at the seq it was given (%zu wrong)", name,
	    missing);
	tap_ok(order == 0, "%s: each thread's records in submission order",
	    name);
	tap_ok(strcmp(f.v[0].event, "start") == 0 && f.n >= 2 &&
	        strcmp(f.v[f.n - 2].event, "stop") == 0 &&
	        strcmp(f.v[f.n - 1].event, "checkpoint") == 0,
	    "%s: start first; stop, checkpoint last", name);
	t_file_free(&f);
	for (i = 0; i < T_THREADS; i++) {
		auditlog_notify_free(th[i].notify);
		event_base_free(th[i].base);
		free(th[i].seqs);
	}
	free(th);
	return rate;
}

/* Restart: seq and chain continue; a torn line is cut and reported. */
static void
t_continue(void)
{
	struct t_conf c;
	struct t_file f;
	struct auditlog *l;
	char path[PATH_MAX], err[4200];
	uint64_t last;
	int fd;

	t_path(path, "continue.jsonl");
	t_conf_init(&c, path, CONF_AUDIT_SYNC_FSYNC, 1000);
	l = t_open(&c, err, sizeof(err));
	tap_ok(l != NULL && t_put(l, "c1", 0, NULL) == 1,
	    "continue: first run");
	auditlog_close(l);
	t_file_load(path, &f);
	last = f.n > 0 ? f.v[f.n - 1].seq : 0;
	t_file_free(&f);
	l = t_open(&c, err, sizeof(err));
	tap_ok(l != NULL && t_put(l, "c2", 0, NULL) == 1,
	    "continue: second run: %s", err);
	auditlog_close(l);
	t_file_load(path, &f);
	tap_ok(f.n > 0 && f.v[0].seq == 1 && t_file_seq_ok(&f),
	    "continue: one sequence across runs");
	tap_ok(f.n > 0 && t_file_count(&f, "start") == 2 &&
	        t_file_find(&f, "c2", NULL) > 0,
	    "continue: second start record after seq %llu",
	    (unsigned long long)last);
	t_file_free(&f);
	tap_ok(t_verify1(path, 0, NULL, err, sizeof(err)) == 0,
	    "continue: verifies: %s", err);

	/* A torn line, as a crash mid-write leaves it. */
	fd = open(path, O_WRONLY | O_APPEND);
	tap_ok(fd >= 0 && write(fd, "{\"seq\":99,\"ts", 13) == 13,
	    "torn: 13 bytes appended");
	close(fd);
	l = t_open(&c, err, sizeof(err));
	tap_ok(l != NULL, "torn: opens: %s", err);
	auditlog_close(l);
	t_file_load(path, &f);
	tap_ok(f.torn == 0 && t_file_count(&f, "start") == 3,
	    "torn: the torn line is gone");
	tap_ok(f.n > 0 && f.v[f.n - 3].num == 13 &&
	        strcmp(f.v[f.n - 3].event, "start") == 0,
	    "torn: the start record says torn_bytes 13");
	t_file_free(&f);
	tap_ok(t_verify1(path, 0, NULL, err, sizeof(err)) == 0,
	    "torn: verifies: %s", err);
}

/* Refusals at start: each row sets up a path and names the reason. */
struct t_refuse {
	const char *name;
	const char *file;
	int (*setup)(const char *path);
	const char *want; /* a substring of the error */
};

static int
t_setup_symlink(const char *path)
{
	char target[PATH_MAX];

	t_path(target, "target.jsonl");
	close(open(target, O_WRONLY | O_CREAT, 0640));
	return symlink(target, path);
}

static int
t_setup_dir(const char *path)
{
	return mkdir(path, 0750);
}

static int
t_setup_garbage(const char *path)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL)
		return -1;
	fputs("this is not an audit record\n", fp);
	return fclose(fp);
}

static int
t_setup_world(const char *path)
{
	close(open(path, O_WRONLY | O_CREAT, 0600));
	return chmod(path, 0646);
}

static int
t_setup_none(const char *path)
{
	return 0;
}

static const struct t_refuse t_refusals[] = {
	{ "path is a symbolic link", "link.jsonl", t_setup_symlink,
	    "symbolic link" },
	{ "path is a directory", "dir.jsonl", t_setup_dir, "open" },
	{ "folder does not exist", "nodir/audit.jsonl", t_setup_none,
	    "No such file" },
	{ "last line is not a record", "garbage.jsonl", t_setup_garbage,
	    "cannot continue" },
	{ "others may write the file", "world.jsonl", t_setup_world,
	    "others may write" },
};

static void
t_refusals_run(void)
{
	const struct t_refuse *t;
	struct t_conf c;
	struct auditlog *l, *l2;
	char path[PATH_MAX], key[PATH_MAX], err[4200];
	size_t i;

	for (i = 0; i < nitems(t_refusals); i++) {
		t = &t_refusals[i];
		t_path(path, t->file);
		t->setup(path);
		t_conf_init(&c, path, CONF_AUDIT_SYNC_FSYNC, 1000);
		l = t_open(&c, err, sizeof(err));
		tap_ok(l == NULL && strstr(err, t->want) != NULL,
		    "refuse: %s (%s)", t->name, err);
		auditlog_close(l);
	}

	/* The signing key: group-readable, missing. */
	t_path(path, "keys.jsonl");
	t_path(key, "loose.key");
	EVP_PKEY_free(t_keygen(key));
	chmod(key, 0640);
	t_conf_init(&c, path, CONF_AUDIT_SYNC_FSYNC, 1000);
	strlcpy(c.key, key, sizeof(c.key));
	l = t_open(&c, err, sizeof(err));
	tap_ok(l == NULL && strstr(err, "group or others") != NULL,
	    "refuse: a group-readable signing key (%s)", err);
	auditlog_close(l);
	t_path(key, "missing.key");
	strlcpy(c.key, key, sizeof(c.key));
	l = t_open(&c, err, sizeof(err));
	tap_ok(l == NULL, "refuse: a missing signing key (%s)", err);
	auditlog_close(l);

	/* Two writers on one file. */
	t_path(path, "twice.jsonl");
	t_conf_init(&c, path, CONF_AUDIT_SYNC_FSYNC, 1000);
	l = t_open(&c, err, sizeof(err));
	l2 = t_open(&c, err, sizeof(err));
	tap_ok(l != NULL && l2 == NULL && strstr(err, "another process"),
	    "refuse: a second writer (%s)", err);
	auditlog_close(l2);
	auditlog_close(l);
}

/* Lifecycle events, bad records, the checkpoint timer. */
static void
t_events(void)
{
	char path[PATH_MAX], err[4200], mem[2048];
	struct audit_buf b;
	struct auditlog_req r;
	struct t_conf c;
	struct t_file f;
	struct t_vsum vs;
	struct auditlog *l;
	uint64_t seq = 0;
	size_t ncp;
	int rc;

	t_path(path, "events.jsonl");
	t_conf_init(&c, path, CONF_AUDIT_SYNC_FSYNC, 100);
	l = t_open(&c, err, sizeof(err));
	tap_ok(l != NULL, "events: open: %s", err);
	audit_buf_init(&b, mem, sizeof(mem));
	audit_fmt_policy_loaded(&b, "2026-11-20.1", "abc", 1, NULL, 0);
	mem[b.len] = '\0';
	tap_ok(auditlog_event(l, "policy_loaded", mem) == 0,
	    "events: policy_loaded is durable when auditlog_event returns");
	tap_ok(auditlog_event(l, "no_such_event", "") == -1 &&
	        !auditlog_degraded(l),
	    "events: an unknown event fails alone, not the log");
	memset(&r, 0, sizeof(r));
	r.event = "complete";
	r.body = mem;
	r.len = AUDIT_BODY_MAX + 1;
	tap_ok(auditlog_submit(l, &r) == -1,
	    "events: a body over AUDIT_BODY_MAX is refused at submit");
	rc = t_put(l, "e1", 0, &seq);
	tap_ok(rc == 1 && seq > 0, "events: a record after them (seq %llu)",
	    (unsigned long long)seq);
	t_sleep_ms(400);
	rc = t_verify1(path, 0, &vs, err, sizeof(err));
	tap_ok(rc == 0 && vs.unsealed == 0,
	    "events: a checkpoint follows within the interval (%llu "
	    "unsealed): %s",
	    (unsigned long long)vs.unsealed, err);
	t_file_load(path, &f);
	ncp = t_file_count(&f, "checkpoint");
	t_file_free(&f);
	t_sleep_ms(300);
	t_file_load(path, &f);
	tap_ok(ncp >= 1 && t_file_count(&f, "checkpoint") == ncp,
	    "events: no new checkpoint while nothing was written (%zu)",
	    t_file_count(&f, "checkpoint"));
	t_file_free(&f);
	auditlog_close(l);
}

/* A09: the file is deleted under the writer. */
static void
t_deleted(void)
{
	char path[PATH_MAX], old[PATH_MAX], err[4200], *buf = NULL;
	const char *paths[2];
	struct t_conf c;
	struct t_file f, fo;
	struct auditlog *l;
	struct stat st;
	uint64_t seq6 = 0, seq7 = 0;
	int hold, fd, i, rc, ok = 1;
	ssize_t n = 0;

	t_path(path, "deleted.jsonl");
	t_path(old, "deleted.old");
	t_conf_init(&c, path, CONF_AUDIT_SYNC_FSYNC, 60000);
	l = t_open(&c, err, sizeof(err));
	for (i = 1; i <= 5; i++)
		ok &= t_put(l, i == 1 ? "d1" : "dx", 0, NULL) == 1;
	tap_ok(l != NULL && ok, "A09: five records before the deletion");
	hold = open(path, O_RDONLY);
	unlink(path);
	tap_ok(t_put(l, "d6", 0, &seq6) == 0,
	    "A09: the record written to the deleted file is reported "
	    "failed");
	rc = t_put(l, "d7", 0, &seq7);
	tap_ok(rc == 1 && !auditlog_degraded(l),
	    "A09: the next one goes to a new file (seq %llu)",
	    (unsigned long long)seq7);
	auditlog_close(l);

	/* Keep what the deleted inode held, to verify the pair. */
	if (hold >= 0 && fstat(hold, &st) == 0 &&
	    (buf = malloc((size_t)st.st_size)) != NULL)
		n = pread(hold, buf, (size_t)st.st_size, 0);
	if ((fd = open(old, O_WRONLY | O_CREAT | O_TRUNC, 0640)) >= 0) {
		if (n > 0 && write(fd, buf, (size_t)n) != n)
			n = -1;
		close(fd);
	}
	free(buf);
	close(hold);
	t_file_load(old, &fo);
	t_file_load(path, &f);
	tap_ok(f.n > 0 && strcmp(f.v[0].event, "reopen") == 0 && fo.n > 0 &&
	        f.v[0].seq == fo.v[fo.n - 1].seq + 1 &&
	        strcmp(f.v[0].prev, fo.v[fo.n - 1].hash) == 0,
	    "A09: the new file starts with reopen, chained to the last "
	    "record of the deleted one");
	tap_ok(t_file_find(&f, "d6", NULL) < 0 &&
	        t_file_find(&f, "d7", NULL) > 0,
	    "A09: the lost record is not in the new file, the next one is");
	t_file_free(&f);
	t_file_free(&fo);
	paths[0] = old;
	paths[1] = path;
	tap_ok(t_verify(paths, 2, 0, NULL, err, sizeof(err)) == 0,
	    "A09: deleted file + new file verify as one chain: %s", err);
}

/* A10: rotation by rename, with SIGUSR1's reopen and without it. */
static void
t_rotated(void)
{
	char path[PATH_MAX], p1[PATH_MAX], p2[PATH_MAX], err[4200];
	const char *paths[3];
	struct t_conf c;
	struct t_file f, f1, f2;
	struct auditlog *l;
	struct stat st;
	int i, ok = 1;
	size_t cnt, bad = 0;
	char id[T_ID_MAX];

	t_path(path, "rot.jsonl");
	t_path(p1, "rot.jsonl.2");
	t_path(p2, "rot.jsonl.1");
	t_conf_init(&c, path, CONF_AUDIT_SYNC_FSYNC, 60000);
	l = t_open(&c, err, sizeof(err));
	for (i = 0; i < 3; i++) {
		snprintf(id, sizeof(id), "a%d", i);
		ok &= t_put(l, id, 0, NULL) == 1;
	}
	/* logrotate: rename, then the signal. */
	rename(path, p1);
	auditlog_reopen(l);
	for (i = 0; i < 50 && stat(path, &st) < 0; i++)
		t_sleep_ms(10);
	for (i = 3; i < 6; i++) {
		snprintf(id, sizeof(id), "a%d", i);
		ok &= t_put(l, id, 0, NULL) == 1;
	}
	/* A rename nobody signals: noticed after the next commit. */
	rename(path, p2);
	for (i = 6; i < 9; i++) {
		snprintf(id, sizeof(id), "a%d", i);
		ok &= t_put(l, id, 0, NULL) == 1;
	}
	tap_ok(l != NULL && ok && !auditlog_degraded(l),
	    "A10: every record ok across two rotations");
	auditlog_close(l);
	t_file_load(p1, &f1);
	t_file_load(p2, &f2);
	t_file_load(path, &f);
	tap_ok(f1.n > 0 && strcmp(f1.v[f1.n - 1].event, "checkpoint") == 0 &&
	        f2.n > 0 && strcmp(f2.v[0].event, "reopen") == 0 &&
	        strcmp(f2.v[f2.n - 1].event, "checkpoint") == 0 && f.n > 0 &&
	        strcmp(f.v[0].event, "reopen") == 0,
	    "A10: old files end with a checkpoint, new ones start with "
	    "reopen");
	for (i = 0; i < 9; i++) {
		snprintf(id, sizeof(id), "a%d", i);
		cnt = 0;
		t_file_find(&f1, id, &cnt);
		ok = (int)cnt;
		t_file_find(&f2, id, &cnt);
		ok += (int)cnt;
		t_file_find(&f, id, &cnt);
		ok += (int)cnt;
		bad += ok != 1;
	}
	tap_ok(bad == 0, "A10: each record in exactly one file (%zu not)", bad);
	t_file_free(&f);
	t_file_free(&f1);
	t_file_free(&f2);
	paths[0] = p1;
	paths[1] = p2;
	paths[2] = path;
	tap_ok(t_verify(paths, 3, 0, NULL, err, sizeof(err)) == 0,
	    "A10: the three files verify in order: %s", err);
}

/* A11: copytruncate under the writer is noticed, never trusted. */
static void
t_copytruncate(void)
{
	char path[PATH_MAX], copy[PATH_MAX], err[4200], buf[65536];
	const char *paths[2];
	struct t_conf c;
	struct t_file f;
	struct auditlog *l;
	int i, in, out, rc4, rc5, ok = 1;
	ssize_t n;

	t_path(path, "ct.jsonl");
	t_path(copy, "ct.jsonl.1");
	t_conf_init(&c, path, CONF_AUDIT_SYNC_FSYNC, 60000);
	l = t_open(&c, err, sizeof(err));
	for (i = 0; i < 3; i++)
		ok &= t_put(l, "ct", 0, NULL) == 1;
	in = open(path, O_RDONLY);
	out = open(copy, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			ok = 0;
	close(in);
	close(out);
	ok &= truncate(path, 0) == 0;
	rc4 = t_put(l, "ct4", 0, NULL);
	rc5 = t_put(l, "ct5", 0, NULL);
	tap_ok(l != NULL && ok && rc4 == 0 && rc5 == 1 && !auditlog_degraded(l),
	    "A11: the record written after a copytruncate is reported "
	    "failed, the next one is ok");
	auditlog_close(l);
	t_file_load(path, &f);
	tap_ok(t_file_count(&f, "reopen") == 1 &&
	        t_file_find(&f, "ct5", NULL) > 0,
	    "A11: flagged with a reopen record");
	t_file_free(&f);
	paths[0] = copy;
	paths[1] = path;
	tap_ok(t_verify(paths, 2, 0, NULL, err, sizeof(err)) == 0,
	    "A11: the copy and the file verify in order: %s", err);
}

/*
 * Scenarios run in a child (resource limits, SIGKILL) report through a
 * pipe, one "1 name" or "0 name" line per check.
 */
static void t_child_ok(int fd, int cond, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
t_child_ok(int fd, int cond, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), "%d ", cond ? 1 : 0);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(fd, line, (size_t)n) != n)
		_exit(5);
}

static void
t_child_collect(int fd, pid_t pid, const char *what)
{
	char buf[65536], *p, *nl;
	size_t len = 0;
	ssize_t n;
	int status = 0, lines = 0;

	while (len < sizeof(buf) - 1 &&
	    (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(fd);
	waitpid(pid, &status, 0);
	for (p = buf; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		*nl = '\0';
		tap_ok(p[0] == '1', "%s", p + 2);
		lines++;
	}
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0 && lines > 0,
	    "%s: child exited 0 after %d checks", what, lines);
}

/* A07-like: a file size limit (EFBIG) degrades; raising it recovers. */
static void
t_fsize_child(int out)
{
	char path[PATH_MAX], err[4200], id[T_ID_MAX];
	struct auditlog_stats st;
	struct rlimit rl;
	struct t_conf c;
	struct t_file f;
	struct auditlog *l;
	struct stat sb;
	int64_t t0;
	int i, rc = 1, failed_at = -1, refused;
	long fi;

	signal(SIGXFSZ, SIG_IGN);
	t_path(path, "fsize.jsonl");
	t_conf_init(&c, path, CONF_AUDIT_SYNC_FSYNC, 60000);
	l = t_open(&c, err, sizeof(err));
	t_child_ok(out, l != NULL, "A07: open: %s", err);
	if (l == NULL)
		_exit(1);
	for (i = 0; i < 3; i++) {
		snprintf(id, sizeof(id), "f%d", i);
		rc &= t_put(l, id, 0, NULL) == 1;
	}
	t_child_ok(out, rc, "A07: records before the limit");
	stat(path, &sb);
	getrlimit(RLIMIT_FSIZE, &rl);
	rl.rlim_cur = (rlim_t)sb.st_size + 1500;
	setrlimit(RLIMIT_FSIZE, &rl);
	for (i = 3; i < 40; i++) {
		snprintf(id, sizeof(id), "f%d", i);
		if ((rc = t_put(l, id, 0, NULL)) != 1) {
			failed_at = i;
			break;
		}
	}
	t_child_ok(out, failed_at > 3 && rc == 0,
	    "A07: the record past the limit is reported failed (f%d)",
	    failed_at);
	t_child_ok(out, auditlog_degraded(l) == 1, "A07: the log is degraded");
	refused = 0;
	for (i = 0; i < 3; i++)
		refused += t_put(l, "refused", 0, NULL) == -1;
	t_child_ok(out, refused == 3, "A07: submits are refused at once");
	t_sleep_ms(1300);
	t_child_ok(out, auditlog_degraded(l) == 1,
	    "A07: still degraded while the limit holds");
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_FSIZE, &rl);
	t0 = t_now_ms();
	while (auditlog_degraded(l) && t_now_ms() - t0 < 3000)
		t_sleep_ms(20);
	t_child_ok(out, !auditlog_degraded(l),
	    "A07: writing again after the limit went (%lld ms)",
	    (long long)(t_now_ms() - t0));
	t_child_ok(out, t_put(l, "after", 0, NULL) == 1,
	    "A07: a record after recovery is ok");
	auditlog_stats(l, &st);
	t_child_ok(out, st.degradations == 1 && st.refused >= 3,
	    "A07: stats: %llu degradation, %llu refused",
	    (unsigned long long)st.degradations,
	    (unsigned long long)st.refused);
	auditlog_close(l);
	t_child_ok(out, t_verify1(path, 0, NULL, err, sizeof(err)) == 0,
	    "A07: verifies: %s", err);
	t_file_load(path, &f);
	snprintf(id, sizeof(id), "f%d", failed_at);
	fi = t_file_find(&f, "after", NULL);
	t_child_ok(out,
	    t_file_find(&f, id, NULL) < 0 &&
	        t_file_find(&f, "refused", NULL) < 0 && fi >= 2 &&
	        strcmp(f.v[fi - 2].event, "audit_degraded") == 0 &&
	        strcmp(f.v[fi - 1].event, "audit_recovered") == 0 &&
	        f.v[fi - 1].num >= 4,
	    "A07: failed and refused records absent; audit_degraded and "
	    "audit_recovered (refused %llu) before the next record",
	    fi >= 1 ? (unsigned long long)f.v[fi - 1].num : 0ULL);
	t_file_free(&f);
	EVP_PKEY_free(t_key);
	_exit(0);
}

static void
t_fsize(void)
{
	int p[2];
	pid_t pid;

	if (pipe(p) < 0)
		return;
	fflush(stdout);
	if ((pid = fork()) == 0) {
		close(p[0]);
		t_fsize_child(p[1]);
	}
	close(p[1]);
	t_child_collect(p[0], pid, "A07");
}

/* A14: SIGKILL at a random moment, again and again. */
static uint64_t t_rng;

static uint64_t
t_rand(void)
{
	t_rng ^= t_rng << 13;
	t_rng ^= t_rng >> 7;
	t_rng ^= t_rng << 17;
	return t_rng;
}

static void
t_crash_child(const char *path, int ackfd, int iter)
{
	struct t_loader ld[2];
	struct t_conf c;
	struct auditlog *l;
	char err[4200];

	t_conf_init(&c, path,
	    iter % 4 == 3 ? CONF_AUDIT_SYNC_WRITE : CONF_AUDIT_SYNC_FSYNC, 20);
	if ((l = t_open(&c, err, sizeof(err))) == NULL) {
		fprintf(stderr, "crash child: %s\n", err);
		_exit(3);
	}
	/* Big records (~8 KiB) make a kill mid-write likely. */
	t_loaders_start(ld, 2, l, 16, iter % 2 ? 8000 : 0, ackfd, NULL);
	for (;;)
		pause();
}

static int
t_crash_one(int iter, const char *path)
{
	struct audit_tail t;
	struct t_conf c;
	struct t_file f;
	struct t_vsum vs;
	struct auditlog *l;
	struct pollfd pfd;
	uint64_t *acked = NULL, tag, missing = 0;
	size_t nacked = 0, cap = 0, k;
	char err[4200], id[T_ID_MAX], twhy[512];
	int p[2], status, fl, okv, ok_start;
	int64_t delay, t0;
	ssize_t n;
	pid_t pid;
	long at;

	if (pipe(p) < 0)
		return 0;
	fflush(stdout);
	if ((pid = fork()) == 0) {
		close(p[0]);
		t_crash_child(path, p[1], iter);
	}
	close(p[1]);
	fl = fcntl(p[0], F_GETFL);
	fcntl(p[0], F_SETFL, fl | O_NONBLOCK);
	delay = 5 + (int64_t)(t_rand() % 60);
	t0 = t_now_ms();
	for (;;) {
		for (;;) {
			if (nacked == cap) {
				cap = cap ? 2 * cap : 4096;
				acked = realloc(acked, cap * sizeof(*acked));
			}
			n = read(p[0], &tag, sizeof(tag));
			if (n != sizeof(tag))
				break;
			acked[nacked++] = tag;
		}
		if (t_now_ms() - t0 >= delay)
			break;
		pfd.fd = p[0];
		pfd.events = POLLIN;
		poll(&pfd, 1, 1);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	fcntl(p[0], F_SETFL, fl);
	while (read(p[0], &tag, sizeof(tag)) == sizeof(tag)) {
		if (nacked == cap) {
			cap = cap ? 2 * cap : 4096;
			acked = realloc(acked, cap * sizeof(*acked));
		}
		acked[nacked++] = tag;
	}
	close(p[0]);

	memset(&t, 0, sizeof(t));
	audit_tail_read(path, &t, twhy, sizeof(twhy));
	t_conf_init(&c, path, CONF_AUDIT_SYNC_FSYNC, 20);
	l = t_open(&c, err, sizeof(err));
	auditlog_close(l);
	t_file_load(path, &f);
	at = -1;
	for (k = 0; k < f.n; k++)
		if (f.v[k].seq == t.seq + 1)
			at = (long)k;
	ok_start = at >= 0 && strcmp(f.v[at].event, "start") == 0 &&
	    f.v[at].num == (uint64_t)t.torn;
	for (k = 0; k < nacked; k++) {
		snprintf(id, sizeof(id), "L%d-%llu", (int)(acked[k] >> 48),
		    (unsigned long long)(acked[k] & 0xffffffffffffULL));
		if (t_file_find(&f, id, NULL) < 0)
			missing++;
	}
	okv = t_verify1(path, 0, &vs, err, sizeof(err)) == 0;
	tap_ok(l != NULL && ok_start && okv && vs.torn == 0 && missing == 0 &&
	        t_file_seq_ok(&f),
	    "A14 %d: kill -9 after %lld ms (%s): reopened at seq %llu, torn "
	    "%lld cut, %zu acked all present, verifies: %s",
	    iter, (long long)delay, iter % 4 == 3 ? "write" : "fsync",
	    (unsigned long long)t.seq + 1, (long long)t.torn, nacked, err);
	t_file_free(&f);
	free(acked);
	return t.torn > 0;
}

static void
t_crash(void)
{
	char path[PATH_MAX];
	const char *s;
	int i, n = 24, torn = 0;

	if ((s = getenv("AUDITLOG_CRASH_ITERATIONS")) != NULL && atoi(s) > 0)
		n = atoi(s);
	t_rng = (s = getenv("AUDITLOG_SEED")) != NULL ? strtoull(s, NULL, 10)
	                                              : (uint64_t)time(NULL);
	tap_diag("A14: seed %llu (AUDITLOG_SEED), %d iterations",
	    (unsigned long long)t_rng, n);
	if (t_rng == 0)
		t_rng = 1;
	t_path(path, "crash.jsonl");
	for (i = 0; i < n; i++)
		torn += t_crash_one(i, path);
	tap_diag("A14: %d of %d kills left a torn line", torn, n);
}

/*
 * The driver for tests/audit/faults_*.sh:
 *   drive keygen KEY [PUB]
 *   drive run KEY LOG SYNC RECORDS WAIT_MS
 *     records one at a time; after the first failure three more submits
 *     (expected refused), then wait up to WAIT_MS for recovery, then the
 *     rest. Prints "rec I ok SEQ|fail|refused", "degraded", "recovered
 *     MS" or "still-degraded". Exit 2 when the log refuses to open.
 *   drive load KEY LOG ACKED GO_FILE DEGRADED_FILE
 *     eight loaders until the log degrades; touch DEGRADED_FILE; wait for
 *     GO_FILE, stop the load, wait for recovery, write ten records; the
 *     ids of records handed back ok go to ACKED.
 *   drive verify KEY FILE...
 */
static int
t_drive_run(int argc, char **argv)
{
	struct t_conf c;
	struct auditlog *l;
	char err[4200], id[T_ID_MAX];
	uint64_t seq;
	long i, n, wait;
	int rc, failed = 0, k;
	int64_t t0;

	if (argc != 5)
		return 64;
	t_conf_init(&c, argv[1],
	    strcmp(argv[2], "write") == 0 ? CONF_AUDIT_SYNC_WRITE
	                                  : CONF_AUDIT_SYNC_FSYNC,
	    3600000);
	strlcpy(c.key, argv[0], sizeof(c.key));
	n = atol(argv[3]);
	wait = atol(argv[4]);
	if ((l = t_open(&c, err, sizeof(err))) == NULL) {
		fprintf(stderr, "open refused: %s\n", err);
		return 2;
	}
	for (i = 1; i <= n; i++) {
		snprintf(id, sizeof(id), "d-%ld", i);
		seq = 0;
		rc = t_put(l, id, 0, &seq);
		if (rc == 1)
			printf("rec %ld ok %llu\n", i, (unsigned long long)seq);
		else
			printf("rec %ld %s\n", i, rc == 0 ? "fail" : "refused");
		if (rc != 1 && !failed) {
			failed = 1;
			printf("degraded %d\n", auditlog_degraded(l));
			for (k = 1; k <= 3; k++) {
				snprintf(id, sizeof(id), "x-%d", k);
				rc = t_put(l, id, 0, NULL);
				printf("extra %d %s\n", k,
				    rc == -1      ? "refused"
				        : rc == 0 ? "fail"
				                  : "ok");
			}
			t0 = t_now_ms();
			while (auditlog_degraded(l) && t_now_ms() - t0 < wait)
				t_sleep_ms(10);
			if (auditlog_degraded(l))
				printf("still-degraded\n");
			else
				printf("recovered %lld\n",
				    (long long)(t_now_ms() - t0));
		}
		fflush(stdout);
	}
	auditlog_close(l);
	return 0;
}

static int
t_drive_load(int argc, char **argv)
{
	struct t_loader ld[8];
	struct auditlog_stats st;
	struct t_conf c;
	struct auditlog *l;
	struct stat sb;
	char err[4200], id[T_ID_MAX];
	uint64_t ok = 0, failed = 0, refused = 0, after = 0;
	FILE *acked;
	int64_t t0;
	int i, fd;

	if (argc != 5)
		return 64;
	t_conf_init(&c, argv[1], CONF_AUDIT_SYNC_FSYNC, 1000);
	strlcpy(c.key, argv[0], sizeof(c.key));
	if ((acked = fopen(argv[2], "w")) == NULL)
		return 1;
	if ((l = t_open(&c, err, sizeof(err))) == NULL) {
		fprintf(stderr, "open refused: %s\n", err);
		fclose(acked);
		return 2;
	}
	t_loaders_start(ld, nitems(ld), l, 8, 0, -1, acked);
	t0 = t_now_ms();
	while (!auditlog_degraded(l) && t_now_ms() - t0 < 30000)
		t_sleep_ms(1);
	printf("degraded %d after %lld ms\n", auditlog_degraded(l),
	    (long long)(t_now_ms() - t0));
	if ((fd = open(argv[4], O_WRONLY | O_CREAT, 0644)) >= 0)
		close(fd);
	t0 = t_now_ms();
	while (stat(argv[3], &sb) < 0 && t_now_ms() - t0 < 30000)
		t_sleep_ms(10);
	t_loaders_stop(ld, nitems(ld));
	for (i = 0; i < (int)nitems(ld); i++) {
		ok += ld[i].ok;
		failed += ld[i].failed;
		refused += ld[i].refused;
	}
	t0 = t_now_ms();
	while (auditlog_degraded(l) && t_now_ms() - t0 < 5000)
		t_sleep_ms(10);
	printf("recovered %d after %lld ms\n", !auditlog_degraded(l),
	    (long long)(t_now_ms() - t0));
	for (i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "after-%d", i);
		if (t_put(l, id, 0, NULL) == 1) {
			after++;
			fprintf(acked, "%s\n", id);
		}
	}
	auditlog_stats(l, &st);
	auditlog_close(l);
	fclose(acked);
	printf("load ok %llu failed %llu refused %llu after %llu "
	       "degradations %llu\n",
	    (unsigned long long)ok, (unsigned long long)failed,
	    (unsigned long long)refused, (unsigned long long)after,
	    (unsigned long long)st.degradations);
	return 0;
}

static int
t_drive_verify(int argc, char **argv)
{
	struct t_vsum vs;
	char err[4200];
	const char **paths;
	int i, rc;

	if (argc < 2)
		return 64;
	if ((t_key = audit_key_load_private(argv[0], err, sizeof(err))) ==
	    NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	paths = calloc((size_t)argc, sizeof(*paths));
	for (i = 1; i < argc; i++)
		paths[i - 1] = argv[i];
	rc = t_verify(paths, (size_t)argc - 1, 0, &vs, err, sizeof(err));
	printf("verify %s: %llu records, seq %llu..%llu, %llu unsealed, %zu "
	       "torn\n",
	    rc == 0 ? "ok" : err, (unsigned long long)vs.nrecords,
	    (unsigned long long)vs.first_seq, (unsigned long long)vs.last_seq,
	    (unsigned long long)vs.unsealed, vs.torn);
	free(paths);
	return rc == 0 ? 0 : 1;
}

static int
t_drive(int argc, char **argv)
{
	EVP_PKEY *k;
	FILE *fp = NULL;

	if (argc >= 2 && strcmp(argv[0], "keygen") == 0) {
		if ((k = t_keygen(argv[1])) == NULL)
			return 1;
		if (argc >= 3 &&
		    ((fp = fopen(argv[2], "w")) == NULL ||
		        PEM_write_PUBKEY(fp, k) != 1)) {
			EVP_PKEY_free(k);
			return 1;
		}
		if (argc >= 3 && fclose(fp) != 0) {
			EVP_PKEY_free(k);
			return 1;
		}
		EVP_PKEY_free(k);
		return 0;
	}
	if (argc >= 1 && strcmp(argv[0], "run") == 0)
		return t_drive_run(argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "load") == 0)
		return t_drive_load(argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "verify") == 0)
		return t_drive_verify(argc - 1, argv + 1);
	fprintf(stderr,
	    "usage: auditlog_test drive keygen|run|load|verify "
	    "...\n");
	return 64;
}

static void
t_rmrf(const char *dir)
{
	char cmd[PATH_MAX + 16];

	if (getenv("AUDITLOG_KEEP") != NULL) {
		tap_diag("kept %s", dir);
		return;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", dir);
}

int
main(int argc, char **argv)
{
	const char *tmp;
	double fs, wr;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (evthread_use_pthreads() < 0) {
		printf("Bail out! evthread_use_pthreads\n");
		return 1;
	}
	if (argc >= 2 && strcmp(argv[1], "drive") == 0) {
		rc = t_drive(argc - 2, argv + 2);
		EVP_PKEY_free(t_key);
		return rc;
	}
	if ((tmp = getenv("TMPDIR")) == NULL)
		tmp = "/tmp";
	snprintf(t_dir, sizeof(t_dir), "%s/auditlog_test.XXXXXX", tmp);
	if (mkdtemp(t_dir) == NULL) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	t_path(t_keypath, "audit.key");
	if ((t_key = t_keygen(t_keypath)) == NULL) {
		printf("Bail out! keygen\n");
		return 1;
	}

	fs = t_group("group-fsync.jsonl", CONF_AUDIT_SYNC_FSYNC, 2500);
	wr = t_group("group-write.jsonl", CONF_AUDIT_SYNC_WRITE, 2500);
	tap_diag("records/s: fsync %.0f, write %.0f", fs, wr);
	t_continue();
	t_refusals_run();
	t_events();
	t_deleted();
	t_rotated();
	t_copytruncate();
	t_fsize();
	t_crash();

	EVP_PKEY_free(t_key);
	t_rmrf(t_dir);
	tap_done();
	tap_exit();
}
