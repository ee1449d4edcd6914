/* tap.h - a minimal Test Anything Protocol helper for the unit tests. */
#ifndef TAP_H
#define TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

static void tap_plan(int n) __attribute__((unused));
static void
tap_plan(int n)
{
	printf("1..%d\n", n);
}

static void tap_done(void) __attribute__((unused));
static void
tap_done(void)
{
	printf("1..%d\n", tap_n);
}

static int tap_ok(int cond, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), unused));
static int
tap_ok(int cond, const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	printf("%s %d - ", cond ? "ok" : "not ok", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond)
		tap_failed++;
	return cond;
}

static void tap_diag(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), unused));
static void
tap_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* Compare two strings; on a mismatch print both. */
#define tap_streq(got, want, ...)                                            \
	(tap_ok((got) != NULL && strcmp((got), (want)) == 0, __VA_ARGS__) ||     \
	    (tap_diag("got  \"%s\"", (got) ? (got) : "(null)"),                  \
		tap_diag("want \"%s\"", (want)), 0))

#define tap_exit() return tap_failed ? 1 : 0

#endif /* TAP_H */
