/* tz_test.c - time zones from TZif files and strict date/time parsing. */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "tap.h"
#include "tz.h"

#define TZT_ZONEINFO "/usr/share/zoneinfo"

/*
 * Offsets at UTC instants. The expected values were taken from CPython's
 * zoneinfo (an independent reader of the same tzdata). Instants after 2037
 * lie past the last transition zic writes, so they exercise the footer rule.
 */
static const struct {
	const char *zone;
	const char *at; /* "YYYY-MM-DDTHH:MM:SSZ", any year */
	int32_t want;
} offset_cases[] = {
	{ "Asia/Shanghai", "2026-06-01T00:00:00Z", 28800 },
	{ "Asia/Shanghai", "1995-01-01T00:00:00Z", 28800 },
	{ "Asia/Shanghai", "1986-05-03T17:59:59Z", 28800 },
	{ "Asia/Shanghai", "1986-05-03T18:00:00Z", 32400 }, /* DST 1986-91 */
	{ "Asia/Shanghai", "1987-07-01T00:00:00Z", 32400 },
	{ "Asia/Shanghai", "1991-12-31T00:00:00Z", 28800 },
	{ "Asia/Shanghai", "2100-07-01T00:00:00Z", 28800 }, /* footer CST-8 */
	{ "Asia/Shanghai", "1900-01-01T00:00:00Z", 29143 }, /* LMT, type 0 */
	{ "America/New_York", "2026-03-08T06:59:59Z", -18000 },
	{ "America/New_York", "2026-03-08T07:00:00Z", -14400 },
	{ "America/New_York", "2026-11-01T05:59:59Z", -14400 },
	{ "America/New_York", "2026-11-01T06:00:00Z", -18000 },
	{ "America/New_York", "2060-03-14T06:59:59Z", -18000 },
	{ "America/New_York", "2060-03-14T07:00:00Z", -14400 },
	{ "America/New_York", "2060-11-07T05:59:59Z", -14400 },
	{ "America/New_York", "2060-11-07T06:00:00Z", -18000 },
	{ "America/New_York", "2100-01-01T00:00:00Z", -18000 },
	{ "America/New_York", "1900-01-01T00:00:00Z", -18000 },
	{ "America/New_York", "1800-01-01T00:00:00Z", -17762 },
	{ "Europe/London", "2026-03-29T00:59:59Z", 0 },
	{ "Europe/London", "2026-03-29T01:00:00Z", 3600 },
	{ "Europe/London", "2026-10-25T00:59:59Z", 3600 },
	{ "Europe/London", "2026-10-25T01:00:00Z", 0 },
	{ "Europe/London", "2050-07-01T00:00:00Z", 3600 },
	{ "Australia/Lord_Howe", "2026-01-01T00:00:00Z", 39600 },
	{ "Australia/Lord_Howe", "2026-07-01T00:00:00Z", 37800 },
	{ "Australia/Lord_Howe", "2026-04-04T14:59:59Z", 39600 },
	{ "Australia/Lord_Howe", "2026-04-04T15:00:00Z", 37800 },
	{ "Australia/Lord_Howe", "2050-01-01T00:00:00Z", 39600 },
	{ "Australia/Lord_Howe", "2050-07-01T00:00:00Z", 37800 },
	{ "Europe/Dublin", "2050-01-01T00:00:00Z", 0 }, /* negative DST */
	{ "Europe/Dublin", "2050-07-01T00:00:00Z", 3600 },
	{ "America/Santiago", "2050-01-01T00:00:00Z", -10800 },
	{ "America/Santiago", "2050-07-01T00:00:00Z", -14400 },
	{ "America/Sao_Paulo", "2018-12-01T00:00:00Z", -7200 },
	{ "America/Sao_Paulo", "2030-01-01T00:00:00Z", -10800 },
	{ "UTC", "2026-06-01T00:00:00Z", 0 },
	{ "Etc/UTC", "1800-06-01T00:00:00Z", 0 },
	{ "Z", "2026-06-01T00:00:00Z", 0 },
	{ "+08:00", "2026-06-01T00:00:00Z", 28800 },
	{ "-05:30", "2026-06-01T00:00:00Z", -19800 },
	{ "+00:00", "2026-06-01T00:00:00Z", 0 },
	{ "-00:45", "2026-06-01T00:00:00Z", -2700 },
};

/*
 * The UTC instant at which a local date begins (from a second-by-second
 * search with CPython's zoneinfo). Skipped and repeated midnights included.
 */
static const struct {
	const char *name;
	const char *zone;
	int y, m, d;
	const char *want;
} midnight_cases[] = {
	{ "plain", "Asia/Shanghai", 2026, 3, 1, "2026-02-28T16:00:00Z" },
	{ "ny spring-forward day", "America/New_York", 2026, 3, 8,
	    "2026-03-08T05:00:00Z" },
	{ "ny fall-back day", "America/New_York", 2026, 11, 1,
	    "2026-11-01T04:00:00Z" },
	{ "sao paulo gap at midnight", "America/Sao_Paulo", 2018, 11, 4,
	    "2018-11-04T03:00:00Z" },
	{ "sao paulo fall-back crosses midnight", "America/Sao_Paulo", 2019, 2,
	    17, "2019-02-17T03:00:00Z" },
	{ "sao paulo day with repeated hour", "America/Sao_Paulo", 2019, 2, 16,
	    "2019-02-16T02:00:00Z" },
	{ "havana repeated midnight: earlier", "America/Havana", 2024, 11, 3,
	    "2024-11-03T04:00:00Z" },
	{ "havana gap at midnight", "America/Havana", 2024, 3, 10,
	    "2024-03-10T05:00:00Z" },
	{ "havana gap, footer rule", "America/Havana", 2050, 3, 13,
	    "2050-03-13T05:00:00Z" },
	{ "havana repeat, footer rule", "America/Havana", 2050, 11, 6,
	    "2050-11-06T04:00:00Z" },
	{ "santiago 24:00 start, footer", "America/Santiago", 2050, 9, 4,
	    "2050-09-04T04:00:00Z" },
	{ "santiago 24:00 end, footer", "America/Santiago", 2050, 4, 3,
	    "2050-04-03T04:00:00Z" },
	{ "beirut gap at midnight", "Asia/Beirut", 2026, 3, 29,
	    "2026-03-28T22:00:00Z" },
	{ "beirut gap, footer rule", "Asia/Beirut", 2060, 3, 28,
	    "2060-03-27T22:00:00Z" },
	{ "lord howe half-hour fall-back day", "Australia/Lord_Howe", 2026, 4,
	    5, "2026-04-04T13:00:00Z" },
	{ "apia skipped date: next day begins", "Pacific/Apia", 2011, 12, 30,
	    "2011-12-30T10:00:00Z" },
	{ "apia day after the skipped date", "Pacific/Apia", 2011, 12, 31,
	    "2011-12-30T10:00:00Z" },
	{ "london spring-forward day", "Europe/London", 2026, 3, 29,
	    "2026-03-29T00:00:00Z" },
	{ "nuuk rule time -1:00, footer", "America/Godthab", 2050, 3, 26,
	    "2050-03-26T02:00:00Z" },
	{ "nuuk day after, footer", "America/Godthab", 2050, 3, 27,
	    "2050-03-27T01:00:00Z" },
	{ "utc", "UTC", 2026, 1, 1, "2026-01-01T00:00:00Z" },
	{ "fixed +08:00", "+08:00", 2026, 1, 1, "2025-12-31T16:00:00Z" },
	{ "fixed -05:30", "-05:30", 2026, 1, 1, "2026-01-01T05:30:00Z" },
};

static const struct {
	const char *zone;
	const char *at;
	int32_t want;
} sod_cases[] = {
	{ "Asia/Shanghai", "2026-06-01T00:00:00Z", 8 * 3600 },
	{ "Asia/Shanghai", "2026-06-01T16:00:00Z", 0 },
	{ "Asia/Shanghai", "2026-06-01T15:59:59Z", 86399 },
	{ "America/New_York", "2026-03-08T07:00:00Z", 3 * 3600 },
	{ "America/New_York", "2026-03-08T06:59:59Z", 2 * 3600 - 1 },
	{ "UTC", "2026-01-01T23:59:59Z", 86399 },
	{ "UTC", "1969-12-31T23:59:59Z", 86399 },
	{ "-05:30", "1970-01-01T00:00:00Z", 86400 - 19800 },
};

/* Names that must not load (path escapes, junk, bad fixed offsets). */
static const struct {
	const char *name;
	const char *zone;
} bad_name_cases[] = {
	{ "dotdot escape", "../etc/passwd" },
	{ "absolute path", "/etc/localtime" },
	{ "no such zone", "Nope/Nowhere" },
	{ "empty", "" },
	{ "dotdot inside", "Asia/../Asia/Shanghai" },
	{ "empty component", "Asia//Shanghai" },
	{ "trailing slash", "Asia/Shanghai/" },
	{ "space", "Asia/Shang hai" },
	{ "dot", "Asia/Shanghai." },
	{ "newline", "Asia/Shanghai\n" },
	{ "too long",
	    "Aaaaaaaaaa/Bbbbbbbbbb/Cccccccccc/Dddddddddd/Eeeeeeeeee/"
	    "Ffffffffff/Gg" },
	{ "directory", "America" },
	{ "fixed one-digit hour", "+8:00" },
	{ "fixed minutes 60", "+08:60" },
	{ "fixed hour 24", "+24:00" },
	{ "fixed without colon", "+0800" },
	{ "fixed trailing junk", "+08:00x" },
	{ "fixed without sign", "08:00" },
	{ "lower-case utc is a file name", "utc" },
};

static const struct {
	const char *in;
	int ok, y, m, d;
} date_cases[] = {
	{ "2024-02-29", 1, 2024, 2, 29 },
	{ "2000-02-29", 1, 2000, 2, 29 },
	{ "1970-01-01", 1, 1970, 1, 1 },
	{ "9999-12-31", 1, 9999, 12, 31 },
	{ "2026-12-31", 1, 2026, 12, 31 },
	{ "2026-02-29", 0, 0, 0, 0 },
	{ "2100-02-29", 0, 0, 0, 0 },
	{ "2026-04-31", 0, 0, 0, 0 },
	{ "2026-13-01", 0, 0, 0, 0 },
	{ "2026-00-10", 0, 0, 0, 0 },
	{ "2026-01-00", 0, 0, 0, 0 },
	{ "2026-1-01", 0, 0, 0, 0 },
	{ "2026-01-1", 0, 0, 0, 0 },
	{ "2026-01-01x", 0, 0, 0, 0 },
	{ "2026-01-01 ", 0, 0, 0, 0 },
	{ " 2026-01-01", 0, 0, 0, 0 },
	{ "1969-12-31", 0, 0, 0, 0 },
	{ "2026/01/01", 0, 0, 0, 0 },
	{ "20260-01-01", 0, 0, 0, 0 },
	{ "+026-01-01", 0, 0, 0, 0 },
	{ "", 0, 0, 0, 0 },
};

static const struct {
	const char *in;
	int ok;
	int64_t sec;
	int32_t nsec;
} rfc3339_cases[] = {
	{ "2026-11-28T02:15:07Z", 1, 1795832107, 0 },
	{ "2026-11-28T02:15:07.123456Z", 1, 1795832107, 123456000 },
	{ "2026-11-28T02:15:07.1Z", 1, 1795832107, 100000000 },
	{ "2026-11-28T02:15:07.123456789Z", 1, 1795832107, 123456789 },
	{ "2026-11-28T10:15:07+08:00", 1, 1795832107, 0 },
	{ "2026-11-27T21:15:07-05:00", 1, 1795832107, 0 },
	{ "2026-11-28T02:15:07-00:00", 1, 1795832107, 0 },
	{ "1970-01-01T00:00:00Z", 1, 0, 0 },
	{ "1970-01-01T00:00:00+01:00", 1, -3600, 0 },
	{ "2024-02-29T23:59:59Z", 1, 1709251199, 0 },
	{ "9999-12-31T23:59:59Z", 1, 253402300799LL, 0 },
	{ "2026-11-28t02:15:07Z", 0, 0, 0 },
	{ "2026-11-28 02:15:07Z", 0, 0, 0 },
	{ "2026-11-28T02:15:07z", 0, 0, 0 },
	{ "2026-11-28T02:15:07", 0, 0, 0 },
	{ "2026-11-28T02:15:60Z", 0, 0, 0 },
	{ "2026-11-28T24:00:00Z", 0, 0, 0 },
	{ "2026-11-28T02:60:00Z", 0, 0, 0 },
	{ "2026-11-28T02:15:07.Z", 0, 0, 0 },
	{ "2026-11-28T02:15:07.1234567890Z", 0, 0, 0 },
	{ "2026-11-28T02:15:07+0800", 0, 0, 0 },
	{ "2026-11-28T02:15:07+08", 0, 0, 0 },
	{ "2026-11-28T02:15:07+24:00", 0, 0, 0 },
	{ "2026-11-28T02:15:07+08:00x", 0, 0, 0 },
	{ "2026-11-28T02:15:07Z ", 0, 0, 0 },
	{ "2026-02-29T00:00:00Z", 0, 0, 0 },
	{ "1969-12-31T23:59:59Z", 0, 0, 0 },
	{ "2026-11-28T2:15:07Z", 0, 0, 0 },
	{ "2026-11-28", 0, 0, 0 },
	{ "", 0, 0, 0 },
};

static const struct {
	const char *in;
	int ok;
	int32_t sec;
} hhmm_cases[] = {
	{ "00:00", 1, 0 },
	{ "08:30", 1, 30600 },
	{ "23:59", 1, 86340 },
	{ "24:00", 1, 86400 },
	{ "24:01", 0, 0 },
	{ "25:00", 0, 0 },
	{ "8:00", 0, 0 },
	{ "08:60", 0, 0 },
	{ "08:5", 0, 0 },
	{ "0800", 0, 0 },
	{ "08:00 ", 0, 0 },
	{ "-1:00", 0, 0 },
	{ "", 0, 0 },
};

static const struct {
	int64_t sec;
	int32_t nsec;
	const char *want;
} format_cases[] = {
	{ 0, 0, "1970-01-01T00:00:00.000000Z" },
	{ 1795832107, 123456789, "2026-11-28T02:15:07.123456Z" },
	{ -1, 0, "1969-12-31T23:59:59.000000Z" },
	{ 0, -1, "1969-12-31T23:59:59.999999Z" },
	{ 0, 1500000000, "1970-01-01T00:00:01.500000Z" },
	{ 951782400, 0, "2000-02-29T00:00:00.000000Z" },
	{ 253402300799LL, 999999999, "9999-12-31T23:59:59.999999Z" },
};

static const struct {
	int y, m, d;
	int64_t want;
} civil_cases[] = {
	{ 1970, 1, 1, 0 }, { 1969, 12, 31, -1 }, { 2000, 2, 29, 11016 },
	{ 2000, 3, 1, 11017 }, { 2026, 1, 1, 20454 }, { 1600, 1, 1, -135140 },
	{ 0, 3, 1, -719468 }, { -1, 12, 31, -719529 },
	{ 9999, 12, 31, 2932896 },
	{ 2026, 13, 1, 20819 }, /* month 13 carries into 2027 */
	{ 2026, 3, 0, 20512 },  /* day 0 is 2026-02-28 */
};

/* Parse "YYYY-MM-DDTHH:MM:SSZ" for any year, independently of tz.c. */
static int64_t
tzt_utc(const char *s)
{
	int y, mo, d, h, mi, se;

	if (sscanf(s, "%d-%d-%dT%d:%d:%dZ", &y, &mo, &d, &h, &mi, &se) != 6)
		return INT64_MIN;
	return tz_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
}

/* Skip rows whose zone file the installed tzdata lacks. */
static int
tzt_have(const char *zone)
{
	char path[256];

	if (zone[0] == '+' || zone[0] == '-' || strcmp(zone, "UTC") == 0 ||
	    strcmp(zone, "Etc/UTC") == 0 || strcmp(zone, "Z") == 0)
		return 1;
	snprintf(path, sizeof(path), "%s/%s", TZT_ZONEINFO, zone);
	return access(path, R_OK) == 0;
}

static void
tzt_skip(const char *why)
{
	tap_n++;
	printf("ok %d # SKIP %s\n", tap_n, why);
}

static void
test_offsets(void)
{
	struct tz *z;
	char err[256];
	size_t i;

	for (i = 0; i < nitems(offset_cases); i++) {
		if (!tzt_have(offset_cases[i].zone)) {
			tzt_skip(offset_cases[i].zone);
			continue;
		}
		if ((z = tz_load(offset_cases[i].zone, err, sizeof(err))) ==
		    NULL) {
			tap_ok(0, "offset %s at %s: %s", offset_cases[i].zone,
			    offset_cases[i].at, err);
			continue;
		}
		if (!tap_ok(tz_offset(z, tzt_utc(offset_cases[i].at)) ==
		            offset_cases[i].want,
		        "offset %s at %s is %ld", offset_cases[i].zone,
		        offset_cases[i].at, (long)offset_cases[i].want))
			tap_diag("got %ld",
			    (long)tz_offset(z, tzt_utc(offset_cases[i].at)));
		tz_free(z);
	}
}

static void
test_midnight(void)
{
	struct tz *z;
	char err[256], got[32];
	const char *gotp = got;
	int64_t t;
	size_t i;

	for (i = 0; i < nitems(midnight_cases); i++) {
		if (!tzt_have(midnight_cases[i].zone)) {
			tzt_skip(midnight_cases[i].zone);
			continue;
		}
		if ((z = tz_load(midnight_cases[i].zone, err, sizeof(err))) ==
		    NULL) {
			tap_ok(0, "midnight %s: %s", midnight_cases[i].name,
			    err);
			continue;
		}
		t = tz_local_midnight(z, midnight_cases[i].y,
		    midnight_cases[i].m, midnight_cases[i].d);
		tz_format_utc_us(t, 0, got, sizeof(got));
		/* Compare without the fraction: ".000000Z" -> "Z". */
		memmove(got + 19, got + 26, 2);
		tap_streq(gotp, midnight_cases[i].want, "midnight %s (%s)",
		    midnight_cases[i].name, midnight_cases[i].zone);
		tz_free(z);
	}
}

static void
test_second_of_day(void)
{
	struct tz *z;
	char err[256];
	int32_t got;
	size_t i;

	for (i = 0; i < nitems(sod_cases); i++) {
		if (!tzt_have(sod_cases[i].zone)) {
			tzt_skip(sod_cases[i].zone);
			continue;
		}
		if ((z = tz_load(sod_cases[i].zone, err, sizeof(err))) ==
		    NULL) {
			tap_ok(0, "second of day %s: %s", sod_cases[i].zone,
			    err);
			continue;
		}
		got = tz_local_second_of_day(z, tzt_utc(sod_cases[i].at));
		if (!tap_ok(got == sod_cases[i].want,
		        "second of day %s at %s is %ld", sod_cases[i].zone,
		        sod_cases[i].at, (long)sod_cases[i].want))
			tap_diag("got %ld", (long)got);
		tz_free(z);
	}
}

static void
test_names(void)
{
	struct tz *z;
	char err[256];
	size_t i;

	for (i = 0; i < nitems(bad_name_cases); i++) {
		err[0] = '\0';
		z = tz_load(bad_name_cases[i].zone, err, sizeof(err));
		tap_ok(z == NULL && err[0] != '\0', "bad name refused: %s",
		    bad_name_cases[i].name);
		if (err[0] != '\0')
			tap_diag("%s", err);
		tz_free(z);
	}
	z = tz_load(NULL, err, sizeof(err));
	tap_ok(z == NULL, "NULL name refused");
	if ((z = tz_load("Asia/Shanghai", err, sizeof(err))) != NULL) {
		tap_streq(tz_name(z), "Asia/Shanghai", "tz_name returns %s",
		    "the name given");
		tz_free(z);
	} else
		tzt_skip("Asia/Shanghai");
	if (tzt_have("right/Asia/Shanghai")) {
		z = tz_load("right/Asia/Shanghai", err, sizeof(err));
		tap_ok(z == NULL, "leap-second zone refused");
		tz_free(z);
	} else
		tzt_skip("right/Asia/Shanghai");
	tz_free(NULL);
	tap_ok(1, "tz_free(NULL) is a no-op");
}

static void
test_dates(void)
{
	int y, m, d, rc;
	size_t i;

	for (i = 0; i < nitems(date_cases); i++) {
		y = m = d = -1;
		rc = tz_parse_date(date_cases[i].in, &y, &m, &d);
		if (date_cases[i].ok)
			tap_ok(rc == 0 && y == date_cases[i].y &&
			        m == date_cases[i].m && d == date_cases[i].d,
			    "date \"%s\" parses", date_cases[i].in);
		else
			tap_ok(rc == -1 && y == -1,
			    "date \"%s\" refused, outputs untouched",
			    date_cases[i].in);
	}
	tap_ok(tz_parse_date(NULL, &y, &m, &d) == -1, "date NULL refused");
}

static void
test_rfc3339(void)
{
	int64_t sec;
	int32_t nsec;
	int rc;
	size_t i;

	for (i = 0; i < nitems(rfc3339_cases); i++) {
		sec = -42;
		nsec = -42;
		rc = tz_parse_rfc3339(rfc3339_cases[i].in, &sec, &nsec);
		if (rfc3339_cases[i].ok) {
			if (!tap_ok(rc == 0 && sec == rfc3339_cases[i].sec &&
			            nsec == rfc3339_cases[i].nsec,
			        "rfc3339 \"%s\" parses", rfc3339_cases[i].in))
				tap_diag("rc %d sec %lld nsec %ld", rc,
				    (long long)sec, (long)nsec);
		} else
			tap_ok(rc == -1 && sec == -42 && nsec == -42,
			    "rfc3339 \"%s\" refused", rfc3339_cases[i].in);
	}
}

static void
test_hhmm(void)
{
	int32_t sec;
	int rc;
	size_t i;

	for (i = 0; i < nitems(hhmm_cases); i++) {
		sec = -1;
		rc = tz_parse_hhmm(hhmm_cases[i].in, &sec);
		if (hhmm_cases[i].ok)
			tap_ok(rc == 0 && sec == hhmm_cases[i].sec,
			    "hhmm \"%s\" is %ld", hhmm_cases[i].in,
			    (long)hhmm_cases[i].sec);
		else
			tap_ok(rc == -1 && sec == -1, "hhmm \"%s\" refused",
			    hhmm_cases[i].in);
	}
}

static void
test_format(void)
{
	char buf[28], small[8];
	const char *bufp = buf, *smallp = small;
	int64_t sec;
	int32_t nsec;
	size_t i;

	for (i = 0; i < nitems(format_cases); i++) {
		tz_format_utc_us(format_cases[i].sec, format_cases[i].nsec, buf,
		    sizeof(buf));
		tap_streq(bufp, format_cases[i].want,
		    "format sec %lld nsec %ld", (long long)format_cases[i].sec,
		    (long)format_cases[i].nsec);
	}
	tz_format_utc_us(0, 0, small, sizeof(small));
	tap_streq(smallp, "1970-01", "format truncates to a short buffer");
	tap_ok(tz_parse_rfc3339("2026-11-28T02:15:07.654321Z", &sec, &nsec) ==
	        0,
	    "round trip: parse");
	tz_format_utc_us(sec, nsec, buf, sizeof(buf));
	tap_streq(bufp, "2026-11-28T02:15:07.654321Z", "round trip: format");
}

static void
test_civil(void)
{
	int64_t days, bad = INT64_MIN;
	int y, m, d, py, pm, pd, ok;
	size_t i;

	for (i = 0; i < nitems(civil_cases); i++) {
		days = tz_days_from_civil(civil_cases[i].y, civil_cases[i].m,
		    civil_cases[i].d);
		if (!tap_ok(days == civil_cases[i].want,
		        "days_from_civil %d-%02d-%02d is %lld",
		        civil_cases[i].y, civil_cases[i].m, civil_cases[i].d,
		        (long long)civil_cases[i].want))
			tap_diag("got %lld", (long long)days);
	}

	/*
	 * Every day from 0000-03-01 to about year 12000: the inverse round
	 * trips, and each day follows the previous one on the calendar.
	 */
	tz_civil_from_days(-719469, &py, &pm, &pd);
	ok = py == 0 && pm == 2 && pd == 29;
	for (days = -719468; days < 3660000 && ok; days++) {
		tz_civil_from_days(days, &y, &m, &d);
		if (tz_days_from_civil(y, m, d) != days)
			ok = 0;
		else if (d == pd + 1 && m == pm && y == py)
			;
		else if (d == 1 && m == pm + 1 && y == py && m <= 12)
			;
		else if (d == 1 && m == 1 && pm == 12 && pd == 31 &&
		    y == py + 1)
			;
		else
			ok = 0;
		if (!ok)
			bad = days;
		py = y;
		pm = m;
		pd = d;
	}
	if (!tap_ok(ok, "civil round trip, every day year 0..12000"))
		tap_diag("first bad day %lld", (long long)bad);

	/* Sparse over +-10^8 years, including negative years. */
	ok = 1;
	for (days = -36500000000LL; days <= 36500000000LL && ok;
	     days += 1234567) {
		tz_civil_from_days(days, &y, &m, &d);
		ok = tz_days_from_civil(y, m, d) == days && m >= 1 && m <= 12 &&
		    d >= 1 && d <= 31;
	}
	tap_ok(ok, "civil round trip, sparse over +-10^8 years");
	tz_civil_from_days(INT64_MAX, &y, &m, &d);
	tap_ok(y > 99000000 && y < 101000000, "huge day counts are clamped");
}

/*
 * Synthetic TZif files written into a scratch $TZDIR, for what the installed
 * tzdata cannot show: version 1 files, rule-only files, exotic footers and
 * damaged files.
 */
struct tzt_file {
	int version; /* 1, 2 or 3 */
	size_t ntrans;
	const int64_t *at;
	const unsigned char *idx;
	size_t ntypes;
	const int32_t *utoff;
	const char *footer; /* NULL: none even for v2+ */
};

static size_t
tzt_put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
	return 4;
}

static size_t
tzt_hdr(unsigned char *p, int version, size_t ntrans, size_t ntypes)
{
	memset(p, 0, 44);
	memcpy(p, "TZif", 4);
	p[4] = version == 1 ? 0 : (unsigned char)('0' + version);
	tzt_put32(p + 32, (uint32_t)ntrans);
	tzt_put32(p + 36, (uint32_t)ntypes);
	tzt_put32(p + 40, 4); /* charcnt: "ABC\0" */
	return 44;
}

static size_t
tzt_block(unsigned char *p, const struct tzt_file *f, size_t tsize)
{
	unsigned char *q = p;
	uint64_t u;
	size_t i;

	for (i = 0; i < f->ntrans; i++) {
		u = (uint64_t)f->at[i];
		if (tsize == 8)
			q += tzt_put32(q, (uint32_t)(u >> 32));
		q += tzt_put32(q, (uint32_t)u);
	}
	for (i = 0; i < f->ntrans; i++)
		*q++ = f->idx[i];
	for (i = 0; i < f->ntypes; i++) {
		q += tzt_put32(q, (uint32_t)f->utoff[i]);
		*q++ = 0;
		*q++ = 0;
	}
	memcpy(q, "ABC", 4);
	q += 4;
	return (size_t)(q - p);
}

/* Serialise f into buf (large enough for these small files). */
static size_t
tzt_build(unsigned char *buf, size_t cap, const struct tzt_file *f)
{
	struct tzt_file empty = { 0 };
	static const int32_t zero = 0;
	size_t n = 0;

	if (f->version == 1) {
		n += tzt_hdr(buf, 1, f->ntrans, f->ntypes);
		n += tzt_block(buf + n, f, 4);
		return n;
	}
	/* A minimal version 1 block, as "zic -b slim" writes. */
	empty.ntypes = 1;
	empty.utoff = &zero;
	n += tzt_hdr(buf, f->version, 0, 1);
	n += tzt_block(buf + n, &empty, 4);
	n += tzt_hdr(buf + n, f->version, f->ntrans, f->ntypes);
	n += tzt_block(buf + n, f, 8);
	if (f->footer != NULL)
		n += (size_t)snprintf((char *)buf + n, cap - n, "\n%s\n",
		    f->footer);
	return n;
}

static int
tzt_write(const char *dir, const char *name, const unsigned char *buf,
    size_t len)
{
	char path[512];
	FILE *fp;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fp = fopen(path, "wb")) == NULL)
		return -1;
	rc = fwrite(buf, 1, len, fp) == len ? 0 : -1;
	if (fclose(fp) != 0)
		rc = -1;
	return rc;
}

static const int64_t tzt_at2[] = { 1000000000, 1100000000 };
static const unsigned char tzt_idx2[] = { 1, 0 };
static const unsigned char tzt_idx_bad[] = { 1, 2 };
static const int64_t tzt_at_unordered[] = { 1100000000, 1000000000 };
static const int32_t tzt_off2[] = { 3600, 7200 };
static const int64_t tzt_at1[] = { 1000000000 };
static const unsigned char tzt_idx1[] = { 1 };
static const int32_t tzt_est[] = { -18000 };
static const int32_t tzt_huge_off[] = { 100000 };

static const struct {
	const char *file;
	struct tzt_file f;
} tzt_files[] = {
	{ "V1", { 1, 2, tzt_at2, tzt_idx2, 2, tzt_off2, NULL } },
	{ "RuleOnly",
	    { 2, 0, NULL, NULL, 1, tzt_est, "EST5EDT,M3.2.0,M11.1.0" } },
	{ "AllYearDST",
	    { 3, 0, NULL, NULL, 1, tzt_est, "EST5EDT4,0/0,J365/25" } },
	{ "Exotic", { 3, 1, tzt_at1, tzt_idx1, 2, tzt_off2, "<+02>-2<+03>" } },
	{ "EmptyFooter", { 2, 1, tzt_at1, tzt_idx1, 2, tzt_off2, "" } },
	{ "NoFooter", { 2, 1, tzt_at1, tzt_idx1, 2, tzt_off2, NULL } },
	{ "BadIndex", { 2, 2, tzt_at2, tzt_idx_bad, 2, tzt_off2, "" } },
	{ "Unordered", { 2, 2, tzt_at_unordered, tzt_idx2, 2, tzt_off2, "" } },
	{ "HugeOffset", { 2, 0, NULL, NULL, 1, tzt_huge_off, "" } },
};

static const struct {
	const char *name;
	const char *zone;
	const char *at;
	int32_t want; /* INT32_MIN: the load must fail */
} synth_cases[] = {
	{ "v1: type 0 before the first transition", "Test/V1",
	    "1970-01-01T00:00:00Z", 3600 },
	{ "v1: first transition", "Test/V1", "2001-09-09T01:46:40Z", 7200 },
	{ "v1: just before the second", "Test/V1", "2004-11-09T11:33:19Z",
	    7200 },
	{ "v1: no footer, last offset stays", "Test/V1", "2100-01-01T00:00:00Z",
	    3600 },
	{ "rule only: winter", "Test/RuleOnly", "1950-01-01T00:00:00Z",
	    -18000 },
	{ "rule only: summer", "Test/RuleOnly", "1950-07-01T00:00:00Z",
	    -14400 },
	{ "all-year DST: new year", "Test/AllYearDST", "2030-01-01T04:30:00Z",
	    -14400 },
	{ "all-year DST: new year's eve", "Test/AllYearDST",
	    "2030-12-31T23:00:00Z", -14400 },
	{ "all-year DST: summer", "Test/AllYearDST", "2030-07-01T00:00:00Z",
	    -14400 },
	{ "exotic footer falls back to last", "Test/Exotic",
	    "2100-01-01T00:00:00Z", 7200 },
	{ "empty footer keeps last", "Test/EmptyFooter", "2100-01-01T00:00:00Z",
	    7200 },
	{ "v2 without footer refused", "Test/NoFooter", NULL, INT32_MIN },
	{ "type index out of range refused", "Test/BadIndex", NULL, INT32_MIN },
	{ "unordered transitions refused", "Test/Unordered", NULL, INT32_MIN },
	{ "offset beyond 26h refused", "Test/HugeOffset", NULL, INT32_MIN },
	{ "bad magic refused", "Test/BadMagic", NULL, INT32_MIN },
	{ "truncated file refused", "Test/Truncated", NULL, INT32_MIN },
	{ "leap seconds refused", "Test/Leap", NULL, INT32_MIN },
	{ "file over 256 KiB refused", "Test/Huge", NULL, INT32_MIN },
	{ "fifo refused without blocking", "Test/Fifo", NULL, INT32_MIN },
	{ "utc needs no tzdata", "UTC", "2026-01-01T00:00:00Z", 0 },
	{ "etc/utc needs no tzdata", "Etc/UTC", "2026-01-01T00:00:00Z", 0 },
	{ "fixed offset needs no tzdata", "+08:00", "2026-01-01T00:00:00Z",
	    28800 },
	{ "iana zone absent from this tzdir", "Asia/Shanghai", NULL,
	    INT32_MIN },
};

/* Write the synthetic files; returns 0 or -1. */
static int
tzt_setup(const char *dir)
{
	static unsigned char buf[300 * 1024];
	char path[512];
	size_t i, n;

	snprintf(path, sizeof(path), "%s/Test", dir);
	if (mkdir(path, 0700) == -1)
		return -1;
	for (i = 0; i < nitems(tzt_files); i++) {
		n = tzt_build(buf, sizeof(buf), &tzt_files[i].f);
		snprintf(path, sizeof(path), "Test/%s", tzt_files[i].file);
		if (tzt_write(dir, path, buf, n) == -1)
			return -1;
	}
	n = tzt_build(buf, sizeof(buf), &tzt_files[0].f);
	buf[0] = 'X';
	if (tzt_write(dir, "Test/BadMagic", buf, n) == -1)
		return -1;
	n = tzt_build(buf, sizeof(buf), &tzt_files[1].f);
	if (tzt_write(dir, "Test/Truncated", buf, n - 30) == -1)
		return -1;
	/* One leap-second record in the 64-bit block. */
	n = tzt_build(buf, sizeof(buf), &tzt_files[4].f);
	tzt_put32(buf + 44 + 10 + 28, 1);
	if (tzt_write(dir, "Test/Leap", buf, n) == -1)
		return -1;
	memset(buf, 'x', sizeof(buf));
	memcpy(buf, "TZif2", 5);
	if (tzt_write(dir, "Test/Huge", buf, sizeof(buf)) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/Test/Fifo", dir);
	if (mkfifo(path, 0600) == -1)
		return -1;
	return 0;
}

static void
tzt_cleanup(const char *dir)
{
	static const char *extra[] = { "BadMagic", "Truncated", "Leap", "Huge",
		"Fifo" };
	char path[512];
	size_t i;

	for (i = 0; i < nitems(tzt_files); i++) {
		snprintf(path, sizeof(path), "%s/Test/%s", dir,
		    tzt_files[i].file);
		unlink(path);
	}
	for (i = 0; i < nitems(extra); i++) {
		snprintf(path, sizeof(path), "%s/Test/%s", dir, extra[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/Test", dir);
	rmdir(path);
	rmdir(dir);
}

static void
test_synthetic(void)
{
	char dir[] = "/tmp/tz_test.XXXXXX";
	struct tz *z;
	char err[256];
	size_t i;

	if (mkdtemp(dir) == NULL) {
		tap_ok(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	if (!tap_ok(tzt_setup(dir) == 0, "synthetic TZif files written"))
		goto out;
	if (setenv("TZDIR", dir, 1) == -1)
		goto out;
	for (i = 0; i < nitems(synth_cases); i++) {
		err[0] = '\0';
		z = tz_load(synth_cases[i].zone, err, sizeof(err));
		if (synth_cases[i].want == INT32_MIN)
			tap_ok(z == NULL && err[0] != '\0', "%s",
			    synth_cases[i].name);
		else if (z == NULL)
			tap_ok(0, "%s: %s", synth_cases[i].name, err);
		else if (!tap_ok(tz_offset(z, tzt_utc(synth_cases[i].at)) ==
		                 synth_cases[i].want,
		             "%s", synth_cases[i].name))
			tap_diag("got %ld",
			    (long)tz_offset(z, tzt_utc(synth_cases[i].at)));
		if (err[0] != '\0')
			tap_diag("%s", err);
		tz_free(z);
	}
	unsetenv("TZDIR");
out:
	tzt_cleanup(dir);
}

int
main(void)
{
	/* The system tzdata, whatever the caller's environment says. */
	unsetenv("TZDIR");
	test_offsets();
	test_midnight();
	test_second_of_day();
	test_names();
	test_dates();
	test_rfc3339();
	test_hhmm();
	test_format();
	test_civil();
	test_synthetic();
	tap_done();
	tap_exit();
}
