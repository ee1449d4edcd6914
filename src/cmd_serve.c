/* cmd_serve.c - `govgate serve`: start, signals, reload, drain, exit. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/crypto.h>

#include "admin.h"
#include "audit.h"
#include "auditlog.h"
#include "cfgset.h"
#include "cmd.h"
#include "conf.h"
#include "connlim.h"
#include "diag.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "worker.h"

#define CMD_SERVE_TRIM_MAX (4 * 1024 * 1024) /* see cmd_serve_malloc_tune */

/* What the main thread keeps between signals. */
struct serve {
	const char *path;
	int debug;
	struct event_base *base;
	struct worker_set *set; /* the set in force */
	struct connlim *cl;     /* connections per department, every set's */
	struct worker_group *g;
	struct auditlog *al;
	unsigned nreloads;
	struct metrics *metrics;
	struct admin *admin;
	atomic_int draining;
};

/*
 * For the admin thread: draining, the audit trail's counters and the
 * connections per department.
 */
static void
cmd_serve_state_cb(void *arg, struct metrics_state *st)
{
	struct serve *sv = arg;

	st->draining = atomic_load(&sv->draining);
	st->connlim = sv->cl;
	if (sv->al != NULL) {
		auditlog_stats(sv->al, &st->audit);
		st->have_audit = 1;
	}
}

/* Label ids of a set; NULL (and a warning) if they cannot be made. */
static void
cmd_serve_metrics_gen(struct serve *sv, struct worker_set *set)
{
	char err[256];

	set->mg = metrics_gen_new(sv->metrics, set->cs->policy, set->cs->conf,
	    err, sizeof(err));
	if (set->mg == NULL)
		log_warnx("%s", err);
}

static void
cmd_serve_metrics_policy(struct serve *sv, struct worker_set *set)
{
	metrics_set_policy(sv->metrics, set->mg);
	admin_observe_certs(sv->metrics, set->cs->conf, set->server_ctx,
	    set->nlisteners);
}

/*
 * glibc gives the free top of a worker thread's heap back to the kernel
 * (madvise) as soon as it passes 128 KiB, and a request's buffers take
 * it again, page fault by page fault: at 45,000 req/s with audit write,
 * 370 madvise calls and 20,000 page faults a second, about 4 % of the
 * worker's CPU. With up to CMD_SERVE_TRIM_MAX of free top kept, none of
 * that is left. A trim threshold set in the environment still wins; an
 * ASan build's allocator ignores mallopt.
 */
static void
cmd_serve_malloc_tune(void)
{
	const char *t = getenv("GLIBC_TUNABLES");

	if ((t != NULL && strstr(t, "trim_threshold") != NULL) ||
	    getenv("MALLOC_TRIM_THRESHOLD_") != NULL)
		return;
	(void)mallopt(M_TRIM_THRESHOLD, CMD_SERVE_TRIM_MAX);
}

static void
cmd_serve_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: govgate serve [-d] [-c FILE]\n"
	    "\n"
	    "Run the gateway in the foreground with the configuration FILE\n"
	    "(default: %s): terminate mutual TLS, decide every request with\n"
	    "the policy, write its audit record, then forward it or refuse "
	    "it.\n"
	    "\n"
	    "  -c, --config FILE  the configuration file\n"
	    "  -d, --debug        log at debug level (each connection's "
	    "states)\n"
	    "  -h, --help         print this text\n"
	    "\n"
	    "Signals: HUP reloads config, policy, certificates, CRLs, GeoIP\n"
	    "files and log.file (on any error the running set and log "
	    "stay);\n"
	    "USR1 reopens the log and audit files; TERM and INT stop "
	    "accepting,\n"
	    "let requests in flight finish (up to %d s), write a final\n"
	    "checkpoint and exit 0.\n",
	    CONF_DEFAULT_PATH, WORKER_DRAIN_MS / 1000);
}

/*
 * Record a policy load in the audit trail (contract 6: policy_loaded with
 * revision, sha256, result and errors), and wait until it is durable.
 */
static void
cmd_serve_record_load(struct auditlog *al, const struct worker_set *set,
    const struct diag *dg)
{
	const char *errors[AUDIT_MAX_ERRORS];
	struct audit_buf b;
	char *mem = NULL;
	size_t i, n = 0;

	for (i = 0; dg != NULL && i < dg->n && n < AUDIT_MAX_ERRORS; i++)
		if (dg->v[i].kind == DIAG_ERROR)
			errors[n++] = dg->v[i].text;
	if ((mem = malloc(AUDIT_BODY_MAX + 1)) == NULL)
		goto fail;
	audit_buf_init(&b, mem, AUDIT_BODY_MAX);
	if (audit_fmt_policy_loaded(&b,
	        set != NULL ? policy_revision(set->cs->policy) : NULL,
	        set != NULL ? policy_sha256(set->cs->policy) : NULL,
	        set != NULL, errors, n) == -1)
		goto fail;
	mem[b.len] = '\0';
	if (auditlog_event(al, "policy_loaded", mem) == -1)
		goto fail;
	free(mem);
	return;
fail:
	log_error("audit: policy_loaded record not written");
	free(mem);
}

static void
cmd_serve_diag_log(const struct diag *dg, const char *prefix)
{
	size_t i;

	for (i = 0; i < dg->n; i++) {
		if (dg->v[i].kind == DIAG_ERROR)
			log_error("%s%s", prefix, dg->v[i].text);
		else
			log_warnx("%s%s", prefix, dg->v[i].text);
	}
	if (dg->dropped > 0)
		log_error("%s%zu more errors", prefix, dg->dropped);
}

static void
cmd_serve_log_level(const struct serve *sv, const struct conf *c)
{
	enum log_level lvl = LOG_LEVEL_INFO;

	if (sv->debug)
		lvl = LOG_LEVEL_DEBUG;
	else if (c->log_level != NULL &&
	    log_level_parse(c->log_level, &lvl) == -1)
		lvl = LOG_LEVEL_INFO;
	log_set_level(lvl);
}

/*
 * When c moves the log elsewhere (log.file added, changed or removed), open
 * the new file now, before anything is swapped. Returns 0 with *fd the open
 * file (STDERR_FILENO for stderr) or -1 when the log stays; -1 with a reason
 * in err when the file cannot be opened.
 */
static int
cmd_serve_log_open(const struct conf *c, int *fd, char *err, size_t errlen)
{
	*fd = -1;
	if (log_file_is(c->log_file))
		return 0;
	if (c->log_file == NULL) {
		*fd = STDERR_FILENO;
		return 0;
	}
	if ((*fd = log_file_open(c->log_file)) == -1) {
		snprintf(err, errlen, "log.file: %s: %s", c->log_file,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Move the log to c's log.file, open as fd (cmd_serve_log_open), saying so
 * at the end of the old file and at the start of the new one.
 */
static void
cmd_serve_log_switch(const struct serve *sv, const struct conf *c, int fd,
    const char *from)
{
	const char *to = c->log_file != NULL ? c->log_file : "standard error";

	log_info("reload %u: log continues in %s", sv->nreloads, to);
	log_file_switch(c->log_file, fd);
	log_info("reload %u: log continued from %s", sv->nreloads, from);
}

/*
 * SIGHUP: build a whole new set; swap it in only when everything loaded,
 * the listeners stayed as they are and a new log.file opened. Connections
 * keep the set they started with, so nothing in flight or idle is dropped.
 */
static void
cmd_serve_reload(struct serve *sv)
{
	struct worker_set *set;
	struct diag dg;
	char err[LOG_PATH_MAX + 256], from[LOG_PATH_MAX];
	int logfd = -1;

	sv->nreloads++;
	log_info("reload %u: loading %s", sv->nreloads, sv->path);
	diag_init(&dg);
	set = worker_set_load(sv->path, (int64_t)time(NULL), sv->cl, &dg);
	if (set != NULL &&
	    worker_group_can_swap(sv->g, set, err, sizeof(err)) == -1) {
		diag_error(&dg, sv->path, 0, 0, "%s", err);
		worker_set_unref(set);
		set = NULL;
	}
	/* Like nginx: a log that cannot be opened refuses the whole reload. */
	if (set != NULL &&
	    cmd_serve_log_open(set->cs->conf, &logfd, err, sizeof(err)) == -1) {
		diag_error(&dg, sv->path, 0, 0, "%s", err);
		worker_set_unref(set);
		set = NULL;
	}
	cmd_serve_diag_log(&dg, "reload: ");
	cmd_serve_record_load(sv->al, set, &dg);
	metrics_count_reload(sv->metrics, set != NULL);
	if (set == NULL) {
		log_error(
		    "reload %u: failed; policy revision %s stays in force",
		    sv->nreloads, policy_revision(sv->set->cs->policy));
		diag_clear(&dg);
		return;
	}
	cmd_serve_metrics_gen(sv, set);
	worker_group_swap(sv->g, set);
	(void)strlcpy(from,
	    sv->set->cs->conf->log_file != NULL ? sv->set->cs->conf->log_file
	                                        : "standard error",
	    sizeof(from));
	worker_set_unref(sv->set);
	sv->set = set;
	cmd_serve_metrics_policy(sv, set);
	cmd_serve_log_level(sv, set->cs->conf);
	if (logfd != -1)
		cmd_serve_log_switch(sv, set->cs->conf, logfd, from);
	log_info("reload %u: policy revision %s (sha256 %.16s) in force",
	    sv->nreloads, policy_revision(set->cs->policy),
	    policy_sha256(set->cs->policy));
	diag_clear(&dg);
}

static void
cmd_serve_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct serve *sv = arg;

	switch (sig) {
	case SIGHUP:
		cmd_serve_reload(sv);
		break;
	case SIGUSR1:
		log_info("reopening the log and audit files");
		if (log_reopen() == -1)
			log_warn("log: reopen");
		auditlog_reopen(sv->al);
		break;
	case SIGTERM:
	case SIGINT:
		log_info("%s: stopping: no new connections, draining",
		    sig == SIGTERM ? "SIGTERM" : "SIGINT");
		atomic_store(&sv->draining, 1);
		event_base_loopexit(sv->base, NULL);
		break;
	default:
		break;
	}
}

/* Parse -c FILE, -d and --help. Returns 0, 1 (help shown) or -1. */
static int
cmd_serve_args(int argc, char **argv, struct serve *sv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	sv->path = CONF_DEFAULT_PATH;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:dh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			sv->path = optarg;
			break;
		case 'd':
			sv->debug = 1;
			break;
		case 'h':
			cmd_serve_usage(stdout);
			return 1;
		default:
			cmd_serve_usage(stderr);
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "govgate serve: unexpected argument \"%s\"\n\n",
		    argv[optind]);
		cmd_serve_usage(stderr);
		return -1;
	}
	return 0;
}

int
cmd_serve(int argc, char **argv)
{
	static const int sigs[] = { SIGHUP, SIGUSR1, SIGTERM, SIGINT };
	struct event *sev[nitems(sigs)];
	sigset_t ctl;
	struct serve sv;
	struct diag dg;
	const struct conf *c;
	char err[512];
	size_t i;
	int rc, ret = 1;

	memset(&sv, 0, sizeof(sv));
	memset(sev, 0, sizeof(sev));
	if ((rc = cmd_serve_args(argc, argv, &sv)) != 0)
		return rc == 1 ? 0 : 2;
	log_init(sv.debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, NULL);
	if (evthread_use_pthreads() == -1) {
		log_error("libevent: no thread support");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	cmd_serve_malloc_tune();
	/*
	 * A file size limit on the audit file must degrade the trail (EFBIG:
	 * 503 audit_unavailable, recovery when it clears), not kill the
	 * gateway.
	 */
	signal(SIGXFSZ, SIG_IGN);
	/*
	 * The listeners accept before the main loop runs: hold the control
	 * signals until their handlers are in place, so an early SIGHUP or
	 * SIGTERM is handled, not fatal. Threads started meanwhile inherit
	 * the mask; the handlers work from any thread.
	 */
	sigemptyset(&ctl);
	for (i = 0; i < nitems(sigs); i++)
		sigaddset(&ctl, sigs[i]);
	sigprocmask(SIG_BLOCK, &ctl, NULL);

	diag_init(&dg);
	if ((sv.cl = connlim_new()) == NULL) {
		log_error("out of memory: not started");
		return 1;
	}
	sv.set = worker_set_load(sv.path, (int64_t)time(NULL), sv.cl, &dg);
	diag_print(&dg, stderr);
	if (sv.set == NULL) {
		log_error("%s: not usable: not started", sv.path);
		diag_clear(&dg);
		connlim_free(sv.cl);
		return 1;
	}
	c = sv.set->cs->conf;
	if (c->log_file != NULL)
		log_init(sv.debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO,
		    c->log_file);
	cmd_serve_log_level(&sv, c);

	/* Bind before the audit trail opens: a busy port writes nothing. */
	if ((sv.g = worker_group_new(sv.set, NULL, err, sizeof(err))) == NULL) {
		log_error("%s: not started", err);
		goto out;
	}
	if ((sv.metrics = metrics_new(worker_group_nworkers(sv.g), err,
	         sizeof(err))) == NULL) {
		log_error("%s: not started", err);
		goto out;
	}
	worker_group_set_metrics(sv.g, sv.metrics);
	cmd_serve_metrics_gen(&sv, sv.set);
	cmd_serve_metrics_policy(&sv, sv.set);
	if (c->has_admin &&
	    (sv.admin = admin_new(&c->admin, err, sizeof(err))) == NULL) {
		log_error("%s: not started", err);
		goto out;
	}
	if ((sv.al = auditlog_open(&c->audit, c->name, &dg)) == NULL) {
		diag_print(&dg, stderr);
		log_error("audit trail %s: not usable: not started",
		    c->audit.path);
		goto out;
	}
	worker_group_set_auditlog(sv.g, sv.al);
	if (sv.admin != NULL &&
	    admin_start(sv.admin, sv.metrics, cmd_serve_state_cb, &sv, err,
	        sizeof(err)) == -1) {
		log_error("%s: not started", err);
		goto out;
	}
	cmd_serve_record_load(sv.al, sv.set, NULL);

	if ((sv.base = event_base_new()) == NULL) {
		log_error("libevent: cannot create the main event base");
		goto out;
	}
	for (i = 0; i < nitems(sigs); i++) {
		sev[i] =
		    evsignal_new(sv.base, sigs[i], cmd_serve_signal_cb, &sv);
		if (sev[i] == NULL || evsignal_add(sev[i], NULL) == -1) {
			log_error("cannot handle signal %d", sigs[i]);
			goto out;
		}
	}
	sigprocmask(SIG_UNBLOCK, &ctl, NULL);
	if (worker_group_start(sv.g, err, sizeof(err)) == -1) {
		log_error("%s: not started", err);
		goto out;
	}
	log_info("govgate %s: %s: %zu listener(s), %zu worker(s), policy "
	         "revision %s",
	    PACKAGE_VERSION, c->name, c->nlisteners,
	    worker_group_nworkers(sv.g), policy_revision(sv.set->cs->policy));
	for (i = 0; i < c->nlisteners; i++)
		log_info("listening on %s (%s)", c->listeners[i].address.text,
		    c->listeners[i].name);
	event_base_dispatch(sv.base);

	worker_group_stop(sv.g, WORKER_DRAIN_MS);
	log_info("stopped");
	ret = 0;
out:
	if (sv.g != NULL)
		worker_group_stop(sv.g, 0);
	admin_free(sv.admin);
	if (sv.al != NULL)
		auditlog_close(sv.al);
	worker_group_free(sv.g);
	/*
	 * Freeing the signal events gives SIGTERM and SIGINT their default
	 * action back. A second stop signal now (a script that stops us
	 * after Ctrl-C reached us too) would kill a gateway that stopped
	 * cleanly, with status 143. Every other thread is gone: held here,
	 * such a signal ends with the process.
	 */
	sigprocmask(SIG_BLOCK, &ctl, NULL);
	for (i = 0; i < nitems(sigs); i++)
		if (sev[i] != NULL)
			event_free(sev[i]);
	if (sv.base != NULL)
		event_base_free(sv.base);
	worker_set_unref(sv.set);
	/* Last: every connection and set that counted in it is gone. */
	connlim_free(sv.cl);
	metrics_free(sv.metrics);
	diag_clear(&dg);
	return ret;
}
