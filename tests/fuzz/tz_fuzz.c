/*
 * tz_fuzz.c - fuzz the strict date/time parsers on the input as text, and
 * tz_load on the same bytes as a TZif file; check offsets, seconds of the
 * day, local midnights and date round trips.
 */
#include "config.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "tz.h"

#define TZ_FUZZ_MAX (256 * 1024 + 1) /* one byte past tz.c's file limit */
#define TZ_FUZZ_DAY 86400
#define TZ_FUZZ_OFF_MAX (26 * 3600) /* any offset a zone may have */
#define TZ_FUZZ_SPAN (1LL << 40)    /* |instants| tried: 35,000 years */
#define TZ_FUZZ_ZONE "Fuzz"         /* the input's file under TZDIR */
#define TZ_FUZZ_NFIXED 5

/* A private TZDIR holding the input as TZif; made on the first input. */
static char tz_fuzz_dir[] = "/tmp/tz_fuzz.XXXXXX";
static char tz_fuzz_file[sizeof(tz_fuzz_dir) + 16];

/* Zones the parsed dates and instants are tried in besides the input's. */
static struct tz *tz_fuzz_fixed[TZ_FUZZ_NFIXED];
static const char *const tz_fuzz_fixed_names[TZ_FUZZ_NFIXED] = {
	"UTC", "+05:45", "-09:30",
	/* Read before TZDIR moves; skipped where tzdata is missing. */
	"Australia/Lord_Howe", /* a 30-minute DST step, southern */
	"Pacific/Apia",        /* 2011-12-30 never happened there */
};

static const int64_t tz_fuzz_instants[] = {
	0,
	-1,
	1,
	INT32_MIN,
	INT32_MAX,
	1700000000,
	1795572000,
	-2208988800,  /* 1900-01-01 */
	4102444800,   /* 2100-01-01 */
	253402300799, /* 9999-12-31T23:59:59Z */
	-62135596800, /* 0001-01-01 */
	TZ_FUZZ_SPAN,
	-TZ_FUZZ_SPAN,
};

static int64_t
tz_fuzz_floordiv(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && a < 0);
}

static void
tz_fuzz_cleanup(void)
{
	size_t i;

	unlink(tz_fuzz_file);
	rmdir(tz_fuzz_dir);
	for (i = 0; i < TZ_FUZZ_NFIXED; i++)
		tz_free(tz_fuzz_fixed[i]);
}

static void
tz_fuzz_setup(void)
{
	char err[256];
	size_t i;

	for (i = 0; i < TZ_FUZZ_NFIXED; i++) {
		tz_fuzz_fixed[i] =
		    tz_load(tz_fuzz_fixed_names[i], err, sizeof(err));
		/* The first three need no tzdata. */
		if (tz_fuzz_fixed[i] == NULL && i < 3)
			abort();
	}
	if (mkdtemp(tz_fuzz_dir) == NULL)
		abort();
	snprintf(tz_fuzz_file, sizeof(tz_fuzz_file), "%s/%s", tz_fuzz_dir,
	    TZ_FUZZ_ZONE);
	/* The fuzzer is single-threaded, and tz_load reads TZDIR each time. */
	if (setenv("TZDIR", tz_fuzz_dir, 1) == -1)
		abort();
	if (atexit(tz_fuzz_cleanup) != 0)
		abort();
}

/* Local time of the UTC instant t in z, as seconds since the epoch. */
static int64_t
tz_fuzz_local(const struct tz *z, int64_t t)
{
	int32_t o;

	o = tz_offset(z, t);
	if (o > TZ_FUZZ_OFF_MAX || o < -TZ_FUZZ_OFF_MAX)
		abort();
	return t + o;
}

/*
 * tz_local_midnight(y-m-d) is the first instant whose local time is at or
 * past that date's midnight: the instant before it is still before.
 */
static int64_t
tz_fuzz_midnight(const struct tz *z, int y, int m, int d)
{
	int64_t lm, r;

	lm = tz_days_from_civil(y, m, d) * TZ_FUZZ_DAY;
	r = tz_local_midnight(z, y, m, d);
	if (tz_fuzz_local(z, r) < lm || tz_fuzz_local(z, r - 1) >= lm)
		abort();
	return r;
}

static void
tz_fuzz_instant(const struct tz *z, int64_t t)
{
	int64_t local, days, back;
	int32_t sod;
	int y, m, d;

	local = tz_fuzz_local(z, t);
	sod = tz_local_second_of_day(z, t);
	if (sod < 0 || sod >= TZ_FUZZ_DAY ||
	    sod != local - tz_fuzz_floordiv(local, TZ_FUZZ_DAY) * TZ_FUZZ_DAY)
		abort();
	days = tz_fuzz_floordiv(local, TZ_FUZZ_DAY);
	tz_civil_from_days(days, &y, &m, &d);
	if (m < 1 || m > 12 || d < 1 || d > 31)
		abort();
	back = tz_days_from_civil(y, m, d);
	if (back != days)
		abort();
	/* t's own date began at or before t. */
	if (tz_fuzz_midnight(z, y, m, d) > t)
		abort();
}

static void
tz_fuzz_zone(const struct tz *z, const uint8_t *data, size_t size)
{
	uint64_t h = 1469598103934665603ULL;
	int64_t t;
	size_t i;

	for (i = 0; i < sizeof(tz_fuzz_instants) / sizeof(int64_t); i++)
		tz_fuzz_instant(z, tz_fuzz_instants[i]);
	/* A few instants that follow the input, within TZ_FUZZ_SPAN. */
	for (i = 0; i < size; i++)
		h = (h ^ data[i]) * 1099511628211ULL;
	for (i = 0; i < 4; i++) {
		t = (int64_t)(h % (2 * (uint64_t)TZ_FUZZ_SPAN)) - TZ_FUZZ_SPAN;
		/* Mostly near now, where zones change most often. */
		if (i < 3)
			t = 1700000000 + t % (200LL * 365 * TZ_FUZZ_DAY);
		tz_fuzz_instant(z, t);
		h = h * 6364136223846793005ULL + 1442695040888963407ULL;
	}
}

static void
tz_fuzz_each_zone(const struct tz *extra, int64_t t, int y, int m, int d)
{
	const struct tz *z;
	size_t i;

	for (i = 0; i < TZ_FUZZ_NFIXED + 1; i++) {
		z = i < TZ_FUZZ_NFIXED ? tz_fuzz_fixed[i] : extra;
		if (z == NULL)
			continue;
		if (y != 0)
			(void)tz_fuzz_midnight(z, y, m, d);
		else
			tz_fuzz_instant(z, t);
	}
}

/* "YYYY-MM-DD": a real date in 1970..9999 that survives a round trip. */
static void
tz_fuzz_date(const char *s, const struct tz *extra)
{
	char buf[32];
	int y = 0, m = 0, d = 0, y2, m2, d2;
	int64_t days;

	if (tz_parse_date(s, &y, &m, &d) == -1)
		return;
	if (strlen(s) != 10 || y < 1970 || y > 9999 || m < 1 || m > 12 ||
	    d < 1 || d > 31)
		abort();
	days = tz_days_from_civil(y, m, d);
	tz_civil_from_days(days, &y2, &m2, &d2);
	/* A date that does not exist ("2023-02-29") would come back moved. */
	if (y2 != y || m2 != m || d2 != d)
		abort();
	/* The formatter spells it as it was written. */
	tz_format_utc_us(days * TZ_FUZZ_DAY, 0, buf, sizeof(buf));
	if (strncmp(buf, s, 10) != 0)
		abort();
	tz_fuzz_each_zone(extra, 0, y, m, d);
}

static void
tz_fuzz_rfc3339(const char *s, const struct tz *extra)
{
	char buf[32];
	int64_t sec = 0, sec2 = 0;
	int32_t nsec = 0, nsec2 = 0;

	if (tz_parse_rfc3339(s, &sec, &nsec) == -1)
		return;
	if (nsec < 0 || nsec > 999999999)
		abort();
	/* 1970-01-01 to 9999-12-31, local, with offsets up to 23:59. */
	if (sec <= -TZ_FUZZ_DAY || sec >= 253402300800LL + TZ_FUZZ_DAY)
		abort();
	tz_format_utc_us(sec, nsec, buf, sizeof(buf));
	/* Written in UTC without a fraction: the same text comes back. */
	if (s[19] == 'Z' && strncmp(buf, s, 19) != 0)
		abort();
	/* What the formatter writes parses back to the microsecond. */
	if (sec >= 0 && sec < 253402300800LL) {
		if (strlen(buf) != 27 ||
		    tz_parse_rfc3339(buf, &sec2, &nsec2) == -1 || sec2 != sec ||
		    nsec2 != nsec / 1000 * 1000)
			abort();
	}
	tz_fuzz_each_zone(extra, sec, 0, 0, 0);
}

static void
tz_fuzz_hhmm(const char *s)
{
	char buf[8];
	int32_t sec = -1;

	if (tz_parse_hhmm(s, &sec) == -1)
		return;
	if (sec < 0 || sec > TZ_FUZZ_DAY || sec % 60 != 0)
		abort();
	snprintf(buf, sizeof(buf), "%02d:%02d", (int)(sec / 3600),
	    (int)(sec / 60 % 60));
	if (strcmp(buf, s) != 0)
		abort();
}

/* Write the input as TZDIR/Fuzz and load it. Returns the zone or NULL. */
static struct tz *
tz_fuzz_load(const uint8_t *data, size_t size)
{
	struct tz *z;
	char err[512];
	int fd;

	fd = open(tz_fuzz_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1)
		abort();
	if (write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	err[0] = '\0';
	if ((z = tz_load(TZ_FUZZ_ZONE, err, sizeof(err))) == NULL) {
		if (err[0] == '\0')
			abort(); /* a refusal says why */
		return NULL;
	}
	if (strcmp(tz_name(z), TZ_FUZZ_ZONE) != 0)
		abort();
	return z;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tz *z = NULL;
	char *text = NULL;

	if (size > TZ_FUZZ_MAX)
		return 0;
	if (tz_fuzz_file[0] == '\0')
		tz_fuzz_setup();
	z = tz_fuzz_load(data, size);
	if (z != NULL)
		tz_fuzz_zone(z, data, size);
	/* The parsers take C strings: a NUL in the input ends the text. */
	if ((text = malloc(size + 1)) == NULL)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	tz_fuzz_date(text, z);
	tz_fuzz_rfc3339(text, z);
	tz_fuzz_hhmm(text);
	free(text);
	tz_free(z);
	return 0;
}
