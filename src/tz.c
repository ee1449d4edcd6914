/* tz.c - time zones from TZif files and strict date/time parsing (pure). */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "tz.h"

#define TZ_NAME_MAX 64           /* longest zone name accepted */
#define TZ_FILE_MAX (256 * 1024) /* largest TZif file read */
#define TZ_TRANS_MAX 8192        /* transitions in one data block */
#define TZ_TYPES_MAX 256         /* local time types (indices are bytes) */
#define TZ_FOOTER_MAX 128        /* POSIX TZ string in the footer */
#define TZ_UTOFF_MAX 93599       /* |utoff| bound, RFC 8536 section 3.2 */
#define TZ_RULE_HOURS_MAX 167    /* rule times, RFC 8536 section 3.3.1 */
#define TZ_DIR_DEFAULT "/usr/share/zoneinfo"
#define TZ_DAY 86400
#define TZ_DAYS_CLAMP 36500000000LL /* about 10^8 years either side */
#define TZ_EPOCH_MARCH 719468       /* days from 0000-03-01 to 1970-01-01 */
#define TZ_HDR_LEN 44               /* TZif header bytes */

enum tz_date_kind {
	TZ_DATE_JULIAN1 = 0, /* "Jn": 1..365, Feb 29 never counted */
	TZ_DATE_JULIAN0,     /* "n": 0..365, Feb 29 counted */
	TZ_DATE_MWD,         /* "Mm.w.d": day d of week w of month m */
};

/* One end of a POSIX TZ daylight-saving rule. */
struct tz_date {
	enum tz_date_kind kind;
	int n;        /* JULIAN1 and JULIAN0 */
	int m, w, wd; /* MWD: month 1..12, week 1..5, weekday 0..6 */
	int32_t secs; /* local time of day, may be negative or past 24h */
};

/* A POSIX TZ rule ("EST5EDT,M3.2.0,M11.1.0"), offsets east of UTC. */
struct tz_rule {
	int32_t std_off;
	int32_t dst_off;
	int has_dst;
	struct tz_date start; /* in standard local time */
	struct tz_date end;   /* in daylight local time */
};

/*
 * A loaded zone; read-only once tz_load returns, so any number of threads
 * may share it. Transitions that do not change the offset are dropped.
 */
struct tz {
	char name[TZ_NAME_MAX + 1];
	int64_t *at;  /* transition instants, strictly ascending */
	int32_t *off; /* offset in force from at[i] */
	size_t n;
	int32_t off0;      /* before at[0], or everywhere if n == 0 */
	int has_rule;      /* rule governs instants >= rule_from */
	int64_t rule_from; /* the file's last transition, or INT64_MIN */
	struct tz_rule rule;
};

/* Counts from a TZif header (RFC 8536 section 3.1). */
struct tz_hdr {
	int version;
	uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

/* Month lengths, and days before each month of a year that starts in March. */
static const int tz_mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30,
	31 };
static const int tz_march_before[12] = { 0, 31, 61, 92, 122, 153, 184, 214, 245,
	275, 306, 337 };

static int64_t
tz_floordiv(int64_t a, int64_t b)
{
	int64_t q = a / b;

	/* b is always positive here: round toward minus infinity. */
	if (a % b != 0 && a < 0)
		q--;
	return q;
}

static int64_t
tz_floormod(int64_t a, int64_t b)
{
	return a - tz_floordiv(a, b) * b;
}

static int
tz_is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
tz_month_days(int64_t y, int m)
{
	if (m == 2 && tz_is_leap(y))
		return 29;
	return tz_mdays[m - 1];
}

static int
tz_is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
tz_is_alpha(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/*
 * Days since 1970-01-01 of a proleptic Gregorian date. A month outside 1..12
 * carries into the year, and a day outside the month simply adds days (d = 0
 * is the last day of the previous month).
 */
int64_t
tz_days_from_civil(int y, int m, int d)
{
	int64_t yy, mm;

	mm = (int64_t)m - 1;
	yy = (int64_t)y + tz_floordiv(mm, 12);
	mm = tz_floormod(mm, 12);
	/*
	 * Count years from March, so that the leap day is the last day of
	 * its year and every month before it has a fixed start.
	 */
	if (mm < 2) {
		yy--;
		mm += 10;
	} else
		mm -= 2;
	return 365 * yy + tz_floordiv(yy, 4) - tz_floordiv(yy, 100) +
	    tz_floordiv(yy, 400) + tz_march_before[mm] + d - 1 - TZ_EPOCH_MARCH;
}

/*
 * Inverse of tz_days_from_civil. Days are clamped to about 10^8 years either
 * side of the epoch so that the year always fits an int.
 */
void
tz_civil_from_days(int64_t days, int *y, int *m, int *d)
{
	int64_t n, q400, q100, q4, q1, yy;
	int i;

	if (days > TZ_DAYS_CLAMP)
		days = TZ_DAYS_CLAMP;
	if (days < -TZ_DAYS_CLAMP)
		days = -TZ_DAYS_CLAMP;
	/* Days since 0000-03-01, split into 400, 100, 4 and 1 year blocks. */
	n = days + TZ_EPOCH_MARCH;
	q400 = tz_floordiv(n, 146097);
	n -= q400 * 146097;
	/* The fourth century of a cycle is one day longer: its leap day. */
	q100 = n / 36524;
	if (q100 == 4)
		q100 = 3;
	n -= q100 * 36524;
	q4 = n / 1461;
	n -= q4 * 1461;
	/* Likewise the fourth year of a 4-year block (ending in Feb 29). */
	q1 = n / 365;
	if (q1 == 4)
		q1 = 3;
	n -= q1 * 365;
	yy = q400 * 400 + q100 * 100 + q4 * 4 + q1;
	for (i = 11; i > 0 && tz_march_before[i] > n; i--)
		continue;
	*d = (int)(n - tz_march_before[i]) + 1;
	if (i < 10)
		*m = i + 3;
	else {
		*m = i - 9;
		yy++;
	}
	*y = (int)yy;
}

static int64_t
tz_year_of(int64_t t)
{
	int y, m, d;

	tz_civil_from_days(tz_floordiv(t, TZ_DAY), &y, &m, &d);
	return y;
}

/* Local seconds since the epoch at which date dt of year y takes effect. */
static int64_t
tz_date_local(const struct tz_date *dt, int64_t y)
{
	int64_t day, first;
	int wd;

	switch (dt->kind) {
	case TZ_DATE_JULIAN1:
		day = tz_days_from_civil((int)y, 1, 1) + dt->n - 1;
		/* J60 is always March 1. */
		if (tz_is_leap(y) && dt->n >= 60)
			day++;
		break;
	case TZ_DATE_JULIAN0:
		day = tz_days_from_civil((int)y, 1, 1) + dt->n;
		break;
	case TZ_DATE_MWD:
	default:
		first = tz_days_from_civil((int)y, dt->m, 1);
		/* 1970-01-01 was a Thursday (weekday 4). */
		wd = (int)tz_floormod(first + 4, 7);
		day = first + (dt->wd - wd + 7) % 7 + 7 * (dt->w - 1);
		/* Week 5 means the last such weekday of the month. */
		while (day - first >= tz_month_days(y, dt->m))
			day -= 7;
		break;
	}
	return day * TZ_DAY + dt->secs;
}

/*
 * The rule's changes in years y0..y1, in order of (instant, year, start
 * before end). The offset at t is set by the last change at or before t;
 * with that order a change that ends DST at the instant the next year's
 * starts it (all-year DST, "0/0,J365/25") leaves DST in force.
 */
static int
tz_rule_state(const struct tz_rule *r, int64_t t, int64_t *next)
{
	int64_t y, yt, s, e, best = 0, nx = INT64_MAX;
	int found = 0, dst = 0;

	yt = tz_year_of(t);
	for (y = yt - 2; y <= yt + 2; y++) {
		s = tz_date_local(&r->start, y) - r->std_off;
		e = tz_date_local(&r->end, y) - r->dst_off;
		if (s <= t && (!found || s >= best)) {
			best = s;
			dst = 1;
			found = 1;
		}
		if (e <= t && (!found || e >= best)) {
			best = e;
			dst = 0;
			found = 1;
		}
		if (s > t && s < nx)
			nx = s;
		if (e > t && e < nx)
			nx = e;
	}
	if (next != NULL)
		*next = nx;
	return dst;
}

static int32_t
tz_rule_offset(const struct tz_rule *r, int64_t t)
{
	if (!r->has_dst)
		return r->std_off;
	return tz_rule_state(r, t, NULL) ? r->dst_off : r->std_off;
}

/*
 * Seconds east of UTC in force at the UTC instant t: a binary search over
 * the transitions, then the footer rule past the last one. Reads only.
 */
int32_t
tz_offset(const struct tz *z, int64_t t)
{
	size_t lo, hi, mid;

	if (z->has_rule && t >= z->rule_from)
		return tz_rule_offset(&z->rule, t);
	if (z->n == 0 || t < z->at[0])
		return z->off0;
	/* Invariant: at[lo] <= t, and every index >= hi is after t. */
	lo = 0;
	hi = z->n;
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (z->at[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	return z->off[lo];
}

/* The first instant after t at which the offset may change, or INT64_MAX. */
static int64_t
tz_next_change(const struct tz *z, int64_t t)
{
	size_t lo, hi, mid;
	int64_t nx;

	if (z->has_rule && t >= z->rule_from) {
		if (!z->rule.has_dst)
			return INT64_MAX;
		tz_rule_state(&z->rule, t, &nx);
		return nx;
	}
	lo = 0;
	hi = z->n;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (z->at[mid] <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < z->n)
		return z->at[lo];
	return z->has_rule ? z->rule_from : INT64_MAX;
}

/*
 * The UTC instant at which local date y-m-d begins in z: the first instant,
 * in time order, whose local time is at or past that date's midnight. When
 * a transition skips midnight that is the transition; when midnight occurs
 * twice it is the earlier one.
 */
int64_t
tz_local_midnight(const struct tz *z, int y, int m, int d)
{
	int64_t lm, s, nx;
	int32_t o;

	lm = tz_days_from_civil(y, m, d) * TZ_DAY;
	/*
	 * Walk the spans of constant offset from a point whose local time is
	 * surely before lm (offsets are bounded by TZ_UTOFF_MAX).
	 */
	s = lm - TZ_UTOFF_MAX - 1;
	for (;;) {
		o = tz_offset(z, s);
		if (s + o >= lm)
			return s;
		nx = tz_next_change(z, s);
		if (lm - o < nx)
			return lm - o;
		s = nx;
	}
}

/* Seconds since local midnight (0..86399) of the UTC instant t in z. */
int32_t
tz_local_second_of_day(const struct tz *z, int64_t t)
{
	int64_t r;

	/* Reduce t first so that adding the offset cannot overflow. */
	r = tz_floormod(t, TZ_DAY) + tz_offset(z, t);
	return (int32_t)tz_floormod(r, TZ_DAY);
}

/* The zone's name as given to tz_load. Borrowed from z. */
const char *
tz_name(const struct tz *z)
{
	return z->name;
}

/* Free z and everything it owns; NULL is a no-op. */
void
tz_free(struct tz *z)
{
	if (z == NULL)
		return;
	free(z->at);
	free(z->off);
	free(z);
}

/*
 * Parse "[+-]h[hh][:mm[:ss]]" (POSIX TZ offsets and rule times) with hours
 * at most maxh. Returns seconds with the sign applied, or -1 on error.
 */
static int
tz_posix_hms(const char **pp, int maxh, int32_t *out)
{
	const char *p = *pp;
	int32_t sign = 1, h = 0, mi = 0, s = 0;
	int nd = 0;

	if (*p == '+' || *p == '-') {
		if (*p == '-')
			sign = -1;
		p++;
	}
	while (tz_is_digit(*p) && nd < 3) {
		h = h * 10 + (*p++ - '0');
		nd++;
	}
	if (nd == 0 || tz_is_digit(*p) || h > maxh)
		return -1;
	if (*p == ':') {
		if (!tz_is_digit(p[1]) || !tz_is_digit(p[2]))
			return -1;
		mi = (p[1] - '0') * 10 + (p[2] - '0');
		p += 3;
		if (*p == ':') {
			if (!tz_is_digit(p[1]) || !tz_is_digit(p[2]))
				return -1;
			s = (p[1] - '0') * 10 + (p[2] - '0');
			p += 3;
		}
		if (mi > 59 || s > 59)
			return -1;
	}
	*out = sign * (h * 3600 + mi * 60 + s);
	*pp = p;
	return 0;
}

/* Skip a POSIX TZ abbreviation: three or more letters, or "<...>". */
static int
tz_posix_abbr(const char **pp)
{
	const char *p = *pp;
	size_t n = 0;

	if (*p == '<') {
		p++;
		while (tz_is_alpha(*p) || tz_is_digit(*p) || *p == '+' ||
		    *p == '-') {
			p++;
			n++;
		}
		if (*p != '>')
			return -1;
		p++;
	} else {
		while (tz_is_alpha(*p)) {
			p++;
			n++;
		}
	}
	if (n < 3)
		return -1;
	*pp = p;
	return 0;
}

/* Parse at most three digits as an int in lo..hi. */
static int
tz_posix_num(const char **pp, int lo, int hi, int *out)
{
	const char *p = *pp;
	int v = 0, nd = 0;

	while (tz_is_digit(*p) && nd < 3) {
		v = v * 10 + (*p++ - '0');
		nd++;
	}
	if (nd == 0 || tz_is_digit(*p) || v < lo || v > hi)
		return -1;
	*out = v;
	*pp = p;
	return 0;
}

/* Parse one rule date "Jn", "n" or "Mm.w.d", then an optional "/time". */
static int
tz_posix_date(const char **pp, struct tz_date *dt)
{
	const char *p = *pp;

	if (*p == 'J') {
		p++;
		dt->kind = TZ_DATE_JULIAN1;
		if (tz_posix_num(&p, 1, 365, &dt->n) == -1)
			return -1;
	} else if (*p == 'M') {
		p++;
		dt->kind = TZ_DATE_MWD;
		if (tz_posix_num(&p, 1, 12, &dt->m) == -1 || *p++ != '.' ||
		    tz_posix_num(&p, 1, 5, &dt->w) == -1 || *p++ != '.' ||
		    tz_posix_num(&p, 0, 6, &dt->wd) == -1)
			return -1;
	} else {
		dt->kind = TZ_DATE_JULIAN0;
		if (tz_posix_num(&p, 0, 365, &dt->n) == -1)
			return -1;
	}
	dt->secs = 2 * 3600;
	if (*p == '/') {
		p++;
		if (tz_posix_hms(&p, TZ_RULE_HOURS_MAX, &dt->secs) == -1)
			return -1;
	}
	*pp = p;
	return 0;
}

/*
 * Parse a POSIX TZ string as found in a TZif footer: "CST-8", "<+08>-8",
 * "EST5EDT,M3.2.0,M11.1.0", "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0". A
 * daylight name without a rule (implementation-defined in POSIX) is refused,
 * and so is anything else this parser does not know. Returns 0 or -1.
 */
static int
tz_posix_parse(const char *s, struct tz_rule *r)
{
	const char *p = s;
	int32_t v;

	memset(r, 0, sizeof(*r));
	if (tz_posix_abbr(&p) == -1 || tz_posix_hms(&p, 24, &v) == -1)
		return -1;
	/* POSIX offsets count west of UTC; ours count east. */
	r->std_off = -v;
	if (*p == '\0')
		return 0;
	if (tz_posix_abbr(&p) == -1)
		return -1;
	r->has_dst = 1;
	r->dst_off = r->std_off + 3600;
	if (*p != ',' && *p != '\0') {
		if (tz_posix_hms(&p, 24, &v) == -1)
			return -1;
		r->dst_off = -v;
	}
	if (*p++ != ',' || tz_posix_date(&p, &r->start) == -1 || *p++ != ',' ||
	    tz_posix_date(&p, &r->end) == -1 || *p != '\0')
		return -1;
	if (r->dst_off > TZ_UTOFF_MAX || r->dst_off < -TZ_UTOFF_MAX)
		return -1;
	return 0;
}

static uint32_t
tz_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int64_t
tz_be64s(const unsigned char *p)
{
	uint64_t u = (uint64_t)tz_be32(p) << 32 | tz_be32(p + 4);

	/* Two's complement without relying on implementation-defined casts. */
	if (u > (uint64_t)INT64_MAX)
		return -(int64_t)(~u) - 1;
	return (int64_t)u;
}

static int32_t
tz_be32s(const unsigned char *p)
{
	uint32_t u = tz_be32(p);

	if (u > (uint32_t)INT32_MAX)
		return -(int32_t)(~u) - 1;
	return (int32_t)u;
}

/* Read and check a TZif header at buf[pos]. Returns 0 or -1 with err. */
static int
tz_hdr_parse(const unsigned char *buf, size_t len, size_t pos, struct tz_hdr *h,
    char *err, size_t errlen)
{
	const unsigned char *p = buf + pos;

	if (len - pos < TZ_HDR_LEN) {
		snprintf(err, errlen, "truncated TZif header");
		return -1;
	}
	if (memcmp(p, "TZif", 4) != 0) {
		snprintf(err, errlen, "not a TZif file");
		return -1;
	}
	/* Version 4 differs from 3 only in leap-second rules, refused below. */
	if (p[4] == 0)
		h->version = 1;
	else if (p[4] >= '2' && p[4] <= '4')
		h->version = p[4] - '0';
	else {
		snprintf(err, errlen, "unknown TZif version 0x%02x", p[4]);
		return -1;
	}
	h->isutcnt = tz_be32(p + 20);
	h->isstdcnt = tz_be32(p + 24);
	h->leapcnt = tz_be32(p + 28);
	h->timecnt = tz_be32(p + 32);
	h->typecnt = tz_be32(p + 36);
	h->charcnt = tz_be32(p + 40);
	if (h->timecnt > TZ_TRANS_MAX) {
		snprintf(err, errlen, "more than %d transitions", TZ_TRANS_MAX);
		return -1;
	}
	if (h->typecnt == 0 || h->typecnt > TZ_TYPES_MAX) {
		snprintf(err, errlen, "bad local time type count %u",
		    (unsigned)h->typecnt);
		return -1;
	}
	if ((h->isutcnt != 0 && h->isutcnt != h->typecnt) ||
	    (h->isstdcnt != 0 && h->isstdcnt != h->typecnt)) {
		snprintf(err, errlen, "bad standard/UT indicator count");
		return -1;
	}
	/* Leap-second ("right/") zones count TAI-like seconds: not UTC. */
	if (h->leapcnt != 0) {
		snprintf(err, errlen, "leap-second zones are not supported");
		return -1;
	}
	if (h->charcnt > TZ_FILE_MAX) {
		snprintf(err, errlen, "bad designation count");
		return -1;
	}
	return 0;
}

/* Bytes of the data block that follows header h, for tsize-byte times. */
static size_t
tz_block_len(const struct tz_hdr *h, size_t tsize)
{
	/* Every count is bounded by tz_hdr_parse, so this cannot overflow. */
	return (size_t)h->timecnt * (tsize + 1) + (size_t)h->typecnt * 6 +
	    h->charcnt + (size_t)h->leapcnt * (tsize + 4) + h->isstdcnt +
	    h->isutcnt;
}

/*
 * Fill z's transitions from a data block at p (already checked to be
 * tz_block_len bytes). Returns 0 or -1 with err.
 */
static int
tz_block_parse(struct tz *z, const struct tz_hdr *h, const unsigned char *p,
    size_t tsize, char *err, size_t errlen)
{
	const unsigned char *times = p;
	const unsigned char *idx = times + (size_t)h->timecnt * tsize;
	const unsigned char *types = idx + h->timecnt;
	int32_t utoff[TZ_TYPES_MAX];
	int64_t t, prev = INT64_MIN;
	uint32_t i;
	int32_t cur;

	for (i = 0; i < h->typecnt; i++) {
		utoff[i] = tz_be32s(types + 6 * i);
		if (utoff[i] > TZ_UTOFF_MAX || utoff[i] < -TZ_UTOFF_MAX) {
			snprintf(err, errlen, "UT offset %ld out of range",
			    (long)utoff[i]);
			return -1;
		}
		if (types[6 * i + 4] > 1) {
			snprintf(err, errlen, "bad DST indicator");
			return -1;
		}
	}
	if (h->timecnt > 0) {
		z->at = calloc(h->timecnt, sizeof(*z->at));
		z->off = calloc(h->timecnt, sizeof(*z->off));
		if (z->at == NULL || z->off == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	/* RFC 8536: time type 0 applies before the first transition. */
	z->off0 = cur = utoff[0];
	z->n = 0;
	for (i = 0; i < h->timecnt; i++) {
		if (tsize == 8)
			t = tz_be64s(times + 8 * (size_t)i);
		else
			t = tz_be32s(times + 4 * (size_t)i);
		if (i > 0 && t <= prev) {
			snprintf(err, errlen, "transitions out of order");
			return -1;
		}
		if (idx[i] >= h->typecnt) {
			snprintf(err, errlen, "bad local time type index");
			return -1;
		}
		prev = t;
		if (utoff[idx[i]] == cur)
			continue;
		cur = utoff[idx[i]];
		z->at[z->n] = t;
		z->off[z->n] = cur;
		z->n++;
	}
	z->rule_from = h->timecnt > 0 ? prev : INT64_MIN;
	return 0;
}

/*
 * Parse a whole TZif file (RFC 8536) into z: the 64-bit block when the
 * version has one, and its footer rule. Returns 0 or -1 with err.
 */
static int
tz_tzif_parse(struct tz *z, const unsigned char *buf, size_t len, char *err,
    size_t errlen)
{
	struct tz_hdr h;
	char footer[TZ_FOOTER_MAX + 1];
	const unsigned char *nl;
	size_t pos = 0, blen, tsize = 4, flen;

	if (tz_hdr_parse(buf, len, pos, &h, err, errlen) == -1)
		return -1;
	pos += TZ_HDR_LEN;
	blen = tz_block_len(&h, 4);
	if (len - pos < blen) {
		snprintf(err, errlen, "truncated TZif data");
		return -1;
	}
	if (h.version >= 2) {
		/* Skip the version 1 block: the 64-bit one follows. */
		pos += blen;
		if (tz_hdr_parse(buf, len, pos, &h, err, errlen) == -1)
			return -1;
		pos += TZ_HDR_LEN;
		tsize = 8;
		blen = tz_block_len(&h, 8);
		if (len - pos < blen) {
			snprintf(err, errlen, "truncated TZif data");
			return -1;
		}
	}
	if (tz_block_parse(z, &h, buf + pos, tsize, err, errlen) == -1)
		return -1;
	pos += blen;
	if (h.version < 2)
		return 0;
	/* The footer is "\n" TZ-string "\n". */
	if (len - pos < 2 || buf[pos] != '\n' ||
	    (nl = memchr(buf + pos + 1, '\n', len - pos - 1)) == NULL) {
		snprintf(err, errlen, "missing TZif footer");
		return -1;
	}
	flen = (size_t)(nl - (buf + pos + 1));
	if (flen > TZ_FOOTER_MAX) {
		snprintf(err, errlen, "TZif footer longer than %d bytes",
		    TZ_FOOTER_MAX);
		return -1;
	}
	memcpy(footer, buf + pos + 1, flen);
	footer[flen] = '\0';
	/*
	 * XXX An empty footer, or a rule this parser does not understand,
	 * leaves the last transition's offset in force for all later instants
	 * rather than failing the load; the table covers the years zic wrote.
	 */
	if (flen > 0 && memchr(footer, '\0', flen) == NULL &&
	    tz_posix_parse(footer, &z->rule) == 0)
		z->has_rule = 1;
	return 0;
}

/*
 * Read the regular file at path, at most TZ_FILE_MAX bytes, into an owned
 * buffer. Returns 0, or -1 with the reason (without the path) in err.
 */
static int
tz_read_file(const char *path, unsigned char **bufp, size_t *lenp, char *err,
    size_t errlen)
{
	struct stat st;
	unsigned char *buf = NULL;
	size_t len = 0;
	ssize_t nr;
	int fd = -1, ret = -1;

	/* O_NONBLOCK: a FIFO planted in the tree must not hang the load. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1) {
		snprintf(err, errlen, "%s", strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "not a regular file");
		goto out;
	}
	if (st.st_size > TZ_FILE_MAX) {
		snprintf(err, errlen, "larger than %d bytes", TZ_FILE_MAX);
		goto out;
	}
	if ((buf = malloc(TZ_FILE_MAX + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	/* Read one byte past the limit to notice a file that grew. */
	while (len < TZ_FILE_MAX + 1) {
		nr = read(fd, buf + len, TZ_FILE_MAX + 1 - len);
		if (nr == -1 && errno == EINTR)
			continue;
		if (nr == -1) {
			snprintf(err, errlen, "%s", strerror(errno));
			goto out;
		}
		if (nr == 0)
			break;
		len += (size_t)nr;
	}
	if (len > TZ_FILE_MAX) {
		snprintf(err, errlen, "larger than %d bytes", TZ_FILE_MAX);
		goto out;
	}
	*bufp = buf;
	*lenp = len;
	buf = NULL;
	ret = 0;
out:
	free(buf);
	if (fd != -1)
		close(fd);
	return ret;
}

/*
 * An IANA name that cannot leave the zone directory: letters, digits and
 * "_+-/", no leading or trailing '/', no empty component, and no '.' at all
 * (so no ".."). The length is checked by the caller.
 */
static int
tz_name_ok(const char *name)
{
	const char *p;

	if (name[0] == '/' || name[strlen(name) - 1] == '/')
		return 0;
	for (p = name; *p != '\0'; p++) {
		if (!tz_is_alpha(*p) && !tz_is_digit(*p) && *p != '_' &&
		    *p != '+' && *p != '-' && *p != '/')
			return 0;
		if (p[0] == '/' && p[1] == '/')
			return 0;
	}
	return strstr(name, "..") == NULL;
}

/* "+HH:MM" or "-HH:MM" with HH 00..23 and MM 00..59, east of UTC. */
static int
tz_fixed_parse(const char *s, int32_t *off)
{
	int h, m;

	if ((s[0] != '+' && s[0] != '-') || !tz_is_digit(s[1]) ||
	    !tz_is_digit(s[2]) || s[3] != ':' || !tz_is_digit(s[4]) ||
	    !tz_is_digit(s[5]) || s[6] != '\0')
		return -1;
	h = (s[1] - '0') * 10 + (s[2] - '0');
	m = (s[4] - '0') * 10 + (s[5] - '0');
	if (h > 23 || m > 59)
		return -1;
	*off = (h * 3600 + m * 60) * (s[0] == '-' ? -1 : 1);
	return 0;
}

/* Copy name for an error message, control and non-ASCII bytes as '?'. */
static void
tz_name_shown(const char *name, char *buf, size_t len)
{
	size_t i;

	for (i = 0; name[i] != '\0' && i + 1 < len; i++)
		buf[i] = name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?';
	buf[i] = '\0';
}

/*
 * Load a zone by IANA name from $TZDIR (when set and absolute) or
 * /usr/share/zoneinfo, or "UTC", "Etc/UTC", "Z", or a fixed offset
 * "+08:00" / "-05:30" (these need no tzdata). Returns an owned zone, or
 * NULL with a one-line reason in err.
 */
struct tz *
tz_load(const char *name, char *err, size_t errlen)
{
	struct tz *z = NULL, *ret = NULL;
	unsigned char *buf = NULL;
	const char *dir;
	char path[1024], why[256], shown[TZ_NAME_MAX + 1];
	size_t len = 0;
	int32_t off;

	if (name == NULL || name[0] == '\0') {
		snprintf(err, errlen, "empty time zone name");
		goto out;
	}
	if (strlen(name) > TZ_NAME_MAX) {
		snprintf(err, errlen, "time zone name longer than %d bytes",
		    TZ_NAME_MAX);
		goto out;
	}
	tz_name_shown(name, shown, sizeof(shown));
	if ((z = calloc(1, sizeof(*z))) == NULL) {
		snprintf(err, errlen, "time zone \"%s\": out of memory", shown);
		goto out;
	}
	strlcpy(z->name, name, sizeof(z->name));
	if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0 ||
	    strcmp(name, "Z") == 0) {
		ret = z;
		goto out;
	}
	if (name[0] == '+' || name[0] == '-') {
		if (tz_fixed_parse(name, &off) == -1) {
			snprintf(err, errlen,
			    "time zone \"%s\": bad fixed offset (expected "
			    "+HH:MM or -HH:MM)",
			    shown);
			goto out;
		}
		z->off0 = off;
		ret = z;
		goto out;
	}
	if (!tz_name_ok(name)) {
		snprintf(err, errlen,
		    "time zone \"%s\": bad name (expected an IANA name such "
		    "as Asia/Shanghai)",
		    shown);
		goto out;
	}
	/* getenv only: tz_load runs at startup and reload, never setenv. */
	dir = getenv("TZDIR");
	if (dir == NULL || dir[0] != '/')
		dir = TZ_DIR_DEFAULT;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    sizeof(path)) {
		snprintf(err, errlen, "time zone \"%s\": path too long", shown);
		goto out;
	}
	if (tz_read_file(path, &buf, &len, why, sizeof(why)) == -1 ||
	    tz_tzif_parse(z, buf, len, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "time zone \"%s\": %s: %s", shown, path,
		    why);
		goto out;
	}
	ret = z;
out:
	if (ret == NULL)
		tz_free(z);
	free(buf);
	return ret;
}

/* Read exactly n digits at s into *v. Stops at NUL, so never overreads. */
static int
tz_digits(const char *s, int n, int *v)
{
	int i, x = 0;

	for (i = 0; i < n; i++) {
		if (!tz_is_digit(s[i]))
			return -1;
		x = x * 10 + (s[i] - '0');
	}
	*v = x;
	return 0;
}

/* "YYYY-MM-DD" at the start of s, a real date in 1970..9999. */
static int
tz_date_prefix(const char *s, int *y, int *m, int *d)
{
	int yy, mm, dd;

	if (tz_digits(s, 4, &yy) == -1 || s[4] != '-' ||
	    tz_digits(s + 5, 2, &mm) == -1 || s[7] != '-' ||
	    tz_digits(s + 8, 2, &dd) == -1)
		return -1;
	if (yy < 1970 || mm < 1 || mm > 12 || dd < 1 ||
	    dd > tz_month_days(yy, mm))
		return -1;
	*y = yy;
	*m = mm;
	*d = dd;
	return 0;
}

/*
 * Strictly "YYYY-MM-DD", a real calendar date with the year in 1970..9999.
 * Returns 0, or -1 leaving the outputs untouched.
 */
int
tz_parse_date(const char *s, int *y, int *m, int *d)
{
	int yy, mm, dd;

	if (s == NULL || tz_date_prefix(s, &yy, &mm, &dd) == -1 ||
	    s[10] != '\0')
		return -1;
	*y = yy;
	*m = mm;
	*d = dd;
	return 0;
}

/*
 * Strictly RFC 3339 "YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+HH:MM|-HH:MM)": upper
 * case 'T' and 'Z' only, no leap second (:60), years 1970..9999, nothing
 * trailing. Returns 0, or -1 leaving the outputs untouched.
 */
int
tz_parse_rfc3339(const char *s, int64_t *sec, int32_t *nsec)
{
	int y, mo, d, h, mi, se, oh, om, nd;
	int32_t frac = 0, scale = 1000000000;
	int64_t t;
	const char *p;

	if (s == NULL || tz_date_prefix(s, &y, &mo, &d) == -1 || s[10] != 'T' ||
	    tz_digits(s + 11, 2, &h) == -1 || s[13] != ':' ||
	    tz_digits(s + 14, 2, &mi) == -1 || s[16] != ':' ||
	    tz_digits(s + 17, 2, &se) == -1)
		return -1;
	if (h > 23 || mi > 59 || se > 59)
		return -1;
	p = s + 19;
	if (*p == '.') {
		p++;
		for (nd = 0; tz_is_digit(*p) && nd < 9; nd++) {
			frac = frac * 10 + (*p++ - '0');
			scale /= 10;
		}
		if (nd == 0 || tz_is_digit(*p))
			return -1;
		frac *= scale;
	}
	t = tz_days_from_civil(y, mo, d) * TZ_DAY + h * 3600 + mi * 60 + se;
	if (*p == 'Z')
		p++;
	else if (*p == '+' || *p == '-') {
		if (tz_digits(p + 1, 2, &oh) == -1 || p[3] != ':' ||
		    tz_digits(p + 4, 2, &om) == -1 || oh > 23 || om > 59)
			return -1;
		/* The local time is ahead of UTC by a '+' offset. */
		t -= (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
		p += 6;
	} else
		return -1;
	if (*p != '\0')
		return -1;
	*sec = t;
	*nsec = frac;
	return 0;
}

/*
 * Strictly "HH:MM" from 00:00 to 24:00 (24:00 for the end of a range: the
 * caller decides where it is allowed) into seconds of the day. Returns 0, or
 * -1 leaving *sec untouched.
 */
int
tz_parse_hhmm(const char *s, int32_t *sec)
{
	int h, m;

	if (s == NULL || tz_digits(s, 2, &h) == -1 || s[2] != ':' ||
	    tz_digits(s + 3, 2, &m) == -1 || s[5] != '\0')
		return -1;
	if (h > 24 || m > 59 || (h == 24 && m != 0))
		return -1;
	*sec = h * 3600 + m * 60;
	return 0;
}

/*
 * Format sec + nsec as "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" (microseconds
 * truncated) into buf; 28 bytes hold any year 0..9999. An nsec outside
 * 0..999999999 carries into the seconds.
 */
void
tz_format_utc_us(int64_t sec, int32_t nsec, char *buf, size_t len)
{
	int64_t days, sod;
	int y, m, d;

	if (buf == NULL || len == 0)
		return;
	days = tz_floordiv(sec, TZ_DAY);
	/* Carry nsec into the second of the day, not sec: no overflow. */
	sod = tz_floormod(sec, TZ_DAY) + tz_floordiv(nsec, 1000000000);
	nsec = (int32_t)tz_floormod(nsec, 1000000000);
	days += tz_floordiv(sod, TZ_DAY);
	sod = tz_floormod(sod, TZ_DAY);
	tz_civil_from_days(days, &y, &m, &d);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", y, m, d,
	    (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60),
	    (int)(nsec / 1000));
}
