/* log.c - operational log: levels, stderr or a file, fatal exits. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Read by every thread for each line; written by the main thread. */
static atomic_int log_cur = LOG_LEVEL_INFO;
/* log_fd and log_path change together, under log_mtx. */
static int log_fd = STDERR_FILENO;
static char log_path[LOG_PATH_MAX]; /* "": stderr */
static pthread_mutex_t log_mtx = PTHREAD_MUTEX_INITIALIZER;

static const char *const log_names[] = { "error", "warn", "info", "debug" };

/*
 * Send log lines to path (NULL or "-": stderr) at level and above. Called
 * once at startup; the file is opened append-only.
 */
void
log_init(enum log_level level, const char *path)
{
	int fd;

	log_set_level(level);
	if (path == NULL || strcmp(path, "-") == 0)
		return;
	if (strlen(path) >= sizeof(log_path))
		fatalx("log file path too long");
	if ((fd = log_file_open(path)) == -1)
		fatal("open log file %s", path);
	log_file_switch(path, fd);
}

/*
 * Open path for appending log lines, without using it yet. Returns the
 * descriptor, or -1 with errno (ENAMETOOLONG beyond LOG_PATH_MAX).
 */
int
log_file_open(const char *path)
{
	if (strlen(path) >= sizeof(log_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

/*
 * Make fd, open on path (NULL: stderr, with fd STDERR_FILENO), the log:
 * the next line of any thread goes there. Takes ownership of fd; the
 * previous file is closed. path must fit LOG_PATH_MAX (log_file_open).
 */
void
log_file_switch(const char *path, int fd)
{
	int old;

	pthread_mutex_lock(&log_mtx);
	old = log_fd;
	log_fd = fd;
	if (path == NULL)
		log_path[0] = '\0';
	else
		(void)strlcpy(log_path, path, sizeof(log_path));
	pthread_mutex_unlock(&log_mtx);
	if (old != STDERR_FILENO && old != fd)
		close(old);
}

/*
 * Whether path (NULL or "-": stderr) is where the log goes now. For the
 * thread that switches the log (serve's main thread).
 */
int
log_file_is(const char *path)
{
	if (path == NULL || strcmp(path, "-") == 0)
		return log_path[0] == '\0';
	return strcmp(path, log_path) == 0;
}

/*
 * Reopen the log file at its path (logrotate, SIGUSR1). Returns 0, or -1
 * with errno; the old file then stays in use.
 */
int
log_reopen(void)
{
	char path[LOG_PATH_MAX];
	int fd;

	pthread_mutex_lock(&log_mtx);
	(void)strlcpy(path, log_path, sizeof(path));
	pthread_mutex_unlock(&log_mtx);
	if (path[0] == '\0')
		return 0;
	if ((fd = log_file_open(path)) == -1)
		return -1;
	log_file_switch(path, fd);
	return 0;
}

/* Log at level and above from now on, in every thread. */
void
log_set_level(enum log_level level)
{
	atomic_store_explicit(&log_cur, (int)level, memory_order_relaxed);
}

/* Parse "error", "warn", "info" or "debug". Returns 0 or -1. */
int
log_level_parse(const char *s, enum log_level *out)
{
	size_t i;

	for (i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++) {
		if (strcmp(s, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

static void log_vwrite(enum log_level, int, int, const char *, va_list)
    __attribute__((format(printf, 4, 0)));

static void
log_vwrite(enum log_level level, int with_errno, int saved_errno,
    const char *fmt, va_list ap)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t len;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
	    "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s: ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    ts.tv_nsec / 1000000, log_names[level]);
	if (n < 0)
		return;
	len = (size_t)n;
	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	if (n < 0)
		return;
	len += (size_t)n;
	if (len >= sizeof(line) - 1)
		len = sizeof(line) - 2;
	if (with_errno) {
		n = snprintf(line + len, sizeof(line) - len, ": %s",
		    strerror(saved_errno));
		if (n > 0)
			len += (size_t)n;
		if (len >= sizeof(line) - 1)
			len = sizeof(line) - 2;
	}
	/* One line per record: a value can never start a forged line. */
	for (size_t i = 0; i < len; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[len++] = '\n';
	pthread_mutex_lock(&log_mtx);
	if (write(log_fd, line, len) == -1) {
		/* Nowhere left to report it. */
	}
	pthread_mutex_unlock(&log_mtx);
}

#define LOG_FN(fn, lvl, errflag)                                               \
	void fn(const char *fmt, ...)                                          \
	{                                                                      \
		va_list ap;                                                    \
		int e = errno;                                                 \
		if ((int)(lvl) >                                               \
		    atomic_load_explicit(&log_cur, memory_order_relaxed))      \
			return;                                                \
		va_start(ap, fmt);                                             \
		log_vwrite((lvl), (errflag), e, fmt, ap);                      \
		va_end(ap);                                                    \
		errno = e;                                                     \
	}

LOG_FN(log_error, LOG_LEVEL_ERROR, 0)
LOG_FN(log_warnx, LOG_LEVEL_WARN, 0)
LOG_FN(log_warn, LOG_LEVEL_WARN, 1)
LOG_FN(log_info, LOG_LEVEL_INFO, 0)
LOG_FN(log_debug, LOG_LEVEL_DEBUG, 0)

/* Log with errno's text and exit 1: startup or broken invariants only. */
void
fatal(const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, 1, e, fmt, ap);
	va_end(ap);
	exit(1);
}

/* Log and exit 1, without errno. */
void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, 0, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
