/* tz.h - time zones from TZif files and strict date/time parsing (pure). */
#ifndef TZ_H
#define TZ_H

#include <stddef.h>
#include <stdint.h>

struct tz;

/*
 * Load a zone by IANA name ("Asia/Shanghai", from /usr/share/zoneinfo or
 * $TZDIR), "UTC", or a fixed offset "+08:00" / "-05:30". Returns an owned
 * zone, or NULL with a one-line reason in err.
 */
struct tz *tz_load(const char *name, char *err, size_t errlen);
void tz_free(struct tz *z);
const char *tz_name(const struct tz *z);

/* Seconds east of UTC in force at the UTC instant t. Thread-safe, no locks. */
int32_t tz_offset(const struct tz *z, int64_t t);

/*
 * The UTC instant of local midnight starting day y-m-d in z (the first
 * instant of that local date when a transition skips midnight).
 */
int64_t tz_local_midnight(const struct tz *z, int y, int m, int d);

/* Seconds since local midnight (0..86399) of the UTC instant t in z. */
int32_t tz_local_second_of_day(const struct tz *z, int64_t t);

/* Days since 1970-01-01 of a proleptic Gregorian date; and its inverse. */
int64_t tz_days_from_civil(int y, int m, int d);
void tz_civil_from_days(int64_t days, int *y, int *m, int *d);

/* Strictly "YYYY-MM-DD" with a real calendar date. Returns 0 or -1. */
int tz_parse_date(const char *s, int *y, int *m, int *d);

/*
 * Strictly RFC 3339 "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" into
 * seconds and nanoseconds since the epoch. Returns 0 or -1.
 */
int tz_parse_rfc3339(const char *s, int64_t *sec, int32_t *nsec);

/* Strictly "HH:MM" (00:00..24:00) into seconds of the day. Returns 0 or -1. */
int tz_parse_hhmm(const char *s, int32_t *sec);

/* Format t as "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" into buf (at least 28 bytes). */
void tz_format_utc_us(int64_t sec, int32_t nsec, char *buf, size_t len);

#endif /* TZ_H */
