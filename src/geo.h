/* geo.h - source-address facts from MaxMind databases: country and zone. */
#ifndef GEO_H
#define GEO_H

#include <stddef.h>
#include <sys/socket.h>

struct diag;

#define GEO_MAX_ZONE 64

/* What the databases say about one source address. */
struct geo_info {
	char country[4];         /* ISO 3166-1 alpha-2, "" when not covered */
	char zone[GEO_MAX_ZONE]; /* "" when in no zone */
};

struct geo;

/*
 * Open the country database (MaxMind Country or City; NULL: none) and the
 * zone database (CIDR -> {"zone": "..."}; NULL: none), checking that each
 * opens and has the expected record shape. Returns an owned geo (possibly
 * with no databases), or NULL with the problem recorded in dg.
 */
struct geo *geo_open(const char *country_db, const char *zone_db,
    struct diag *dg);
void geo_free(struct geo *g);
int geo_has_country(const struct geo *g);
int geo_has_zone(const struct geo *g);

/*
 * Look up sa (AF_INET or AF_INET6; IPv4-mapped IPv6 is treated as IPv4).
 * Fills out; never fails: lookup errors leave fields empty (unknown).
 * Thread-safe.
 */
void geo_lookup(const struct geo *g, const struct sockaddr *sa,
    struct geo_info *out);
/* Same for a textual address ("10.30.4.21", "::1"). Returns 0 or -1. */
int geo_lookup_str(const struct geo *g, const char *ip, struct geo_info *out);

#endif /* GEO_H */
