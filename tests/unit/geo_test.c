/* geo_test.c - country and zone lookups against small generated databases. */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "diag.h"
#include "geo.h"
#include "tap.h"

/* Built by geo_test.sh into the folder given as argv[1]. */
#define ZONES "zones.mmdb"
#define COUNTRIES "countries.mmdb"
#define V4ONLY "v4only.mmdb"   /* ip_version 4, "GeoLite2-City" */
#define REGISTERED "regc.mmdb" /* registered_country only */
#define BADZONE "badzone.mmdb" /* govgate-zones with "zone": 42 */
#define NOTMMDB "notmmdb.mmdb" /* plain text */

static char dir[512];

static const char *
geo_test_path(const char *name, char *buf, size_t len)
{
	if (name == NULL)
		return NULL;
	snprintf(buf, len, "%s/%s", dir, name);
	return buf;
}

/* Lookups against the zone and country databases together. */
static const struct {
	const char *name;
	const char *ip;
	int rc;
	const char *country;
	const char *zone;
} lookups[] = {
	{ "CN address", "1.0.1.5", 0, "CN", "" },
	{ "CN address, second network", "114.114.114.114", 0, "CN", "" },
	{ "US address", "8.8.8.8", 0, "US", "" },
	{ "public address in neither db", "9.9.9.9", 0, "", "" },
	{ "intranet /8 zone", "10.1.2.3", 0, "", "intranet" },
	{ "nested /16 zone wins over /8", "10.30.4.21", 0, "", "renshe-net" },
	{ "/24 listed before its /16 still wins", "10.30.99.1", 0, "",
	    "renshe-lab" },
	{ "another /16", "10.20.1.10", 0, "", "psb-net" },
	{ "bare address is a /32", "192.168.5.7", 0, "", "single-host" },
	{ "next to the /32", "192.168.5.8", 0, "", "" },
	{ "IPv6 zone", "2001:db8:30::5", 0, "", "renshe-net" },
	{ "IPv6 outside zones", "2001:db8:31::5", 0, "", "" },
	{ "IPv6 country", "2400:3200::1", 0, "CN", "" },
	{ "IPv6 US", "2001:4860:4860::8888", 0, "US", "" },
	{ "IPv4-mapped zone", "::ffff:10.30.4.21", 0, "", "renshe-net" },
	{ "IPv4-mapped country", "::ffff:1.0.1.5", 0, "CN", "" },
	{ "IPv4-mapped in neither", "::ffff:9.9.9.9", 0, "", "" },
	{ "IPv6 loopback", "::1", 0, "", "" },
	{ "IPv4-compatible ::10.30.4.21 is not 10.30.4.21", "::10.30.4.21", 0,
	    "", "" },
	{ "6to4 embedding 10.30.4.21 gets no zone", "2002:a1e:415::1", 0, "",
	    "" },
	{ "Teredo embedding 10.30.4.21 gets no zone", "2001:0:a1e:415::1", 0,
	    "", "" },
	{ "6to4 embedding a CN address gets no country", "2002:100:105::1", 0,
	    "", "" },
	{ "IPv4 loopback", "127.0.0.1", 0, "", "" },
	{ "shorthand 10.1 refused", "10.1", -1, "", "" },
	{ "hex octet refused", "0x0a.1.2.3", -1, "", "" },
	{ "not an address", "renshe", -1, "", "" },
	{ "empty string", "", -1, "", "" },
	{ "CIDR is not an address", "10.0.0.0/8", -1, "", "" },
};

/* geo_open outcomes: which databases open, and the error it reports. */
static const struct {
	const char *name;
	const char *country;
	const char *zone;
	int ok;
	const char *err; /* substring of the first error */
} opens[] = {
	{ "no databases", NULL, NULL, 1, NULL },
	{ "both databases", COUNTRIES, ZONES, 1, NULL },
	{ "country only", COUNTRIES, NULL, 1, NULL },
	{ "zones only", NULL, ZONES, 1, NULL },
	{ "IPv4-only City database as country db", V4ONLY, NULL, 1, NULL },
	{ "registered_country-only database", REGISTERED, NULL, 1, NULL },
	{ "zone db given as country db", ZONES, NULL, 0,
	    "database type is \"govgate-zones\", expected a Country" },
	{ "country db given as zone db", NULL, COUNTRIES, 0,
	    "database type is \"govgate-country\", expected "
	    "\"govgate-zones\"" },
	{ "zone record with a number", NULL, BADZONE, 0,
	    "has no valid \"zone\" string" },
	{ "missing country file", "missing.mmdb", NULL, 0,
	    "missing.mmdb: cannot open: No such file" },
	{ "missing zone file", NULL, "missing.mmdb", 0,
	    "missing.mmdb: cannot open: No such file" },
	{ "text file", NULL, NOTMMDB, 0, "not a MaxMind database" },
};

static void
geo_test_opens(void)
{
	char cbuf[600], zbuf[600];
	struct diag dg;
	struct geo *g;
	const char *first;
	size_t i;

	for (i = 0; i < nitems(opens); i++) {
		diag_init(&dg);
		g = geo_open(
		    geo_test_path(opens[i].country, cbuf, sizeof(cbuf)),
		    geo_test_path(opens[i].zone, zbuf, sizeof(zbuf)), &dg);
		first = diag_first_error(&dg);
		if (opens[i].ok) {
			tap_ok(g != NULL && dg.nerrors == 0 &&
			        geo_has_country(g) ==
			            (opens[i].country != NULL) &&
			        geo_has_zone(g) == (opens[i].zone != NULL),
			    "open: %s", opens[i].name);
		} else {
			tap_ok(g == NULL && first != NULL &&
			        strstr(first, opens[i].err) != NULL,
			    "open: %s is refused", opens[i].name);
		}
		if (first != NULL && !opens[i].ok)
			tap_diag("%s", first);
		else if (first != NULL)
			tap_diag("unexpected: %s", first);
		geo_free(g);
		diag_clear(&dg);
	}
}

static void
geo_test_lookups(void)
{
	char cbuf[600], zbuf[600];
	struct geo_info gi;
	struct diag dg;
	struct geo *g;
	size_t i;
	int rc;

	diag_init(&dg);
	g = geo_open(geo_test_path(COUNTRIES, cbuf, sizeof(cbuf)),
	    geo_test_path(ZONES, zbuf, sizeof(zbuf)), &dg);
	if (!tap_ok(g != NULL, "open both databases for lookups")) {
		diag_print(&dg, stdout);
		diag_clear(&dg);
		return;
	}
	for (i = 0; i < nitems(lookups); i++) {
		memset(&gi, 'x', sizeof(gi));
		rc = geo_lookup_str(g, lookups[i].ip, &gi);
		tap_ok(rc == lookups[i].rc &&
		        strcmp(gi.country, lookups[i].country) == 0 &&
		        strcmp(gi.zone, lookups[i].zone) == 0,
		    "lookup: %s (%s)", lookups[i].name, lookups[i].ip);
		if (rc != lookups[i].rc ||
		    strcmp(gi.country, lookups[i].country) != 0 ||
		    strcmp(gi.zone, lookups[i].zone) != 0)
			tap_diag("got rc %d country \"%.4s\" zone \"%.64s\"",
			    rc, gi.country, gi.zone);
	}
	geo_free(g);
	diag_clear(&dg);
}

/* geo_lookup on sockaddr structs as accept() returns them. */
static void
geo_test_sockaddr(void)
{
	char cbuf[600], zbuf[600];
	struct sockaddr_in6 sin6;
	struct sockaddr_in sin;
	struct sockaddr_un sun;
	struct geo_info gi;
	struct diag dg;
	struct geo *g;

	diag_init(&dg);
	g = geo_open(geo_test_path(COUNTRIES, cbuf, sizeof(cbuf)),
	    geo_test_path(ZONES, zbuf, sizeof(zbuf)), &dg);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(53122);
	inet_pton(AF_INET, "10.30.4.21", &sin.sin_addr);
	geo_lookup(g, (struct sockaddr *)&sin, &gi);
	tap_ok(strcmp(gi.zone, "renshe-net") == 0 && gi.country[0] == '\0',
	    "sockaddr: AF_INET with a port");

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:8.8.8.8", &sin6.sin6_addr);
	geo_lookup(g, (struct sockaddr *)&sin6, &gi);
	tap_ok(strcmp(gi.country, "US") == 0 && gi.zone[0] == '\0',
	    "sockaddr: AF_INET6 IPv4-mapped");

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memset(&gi, 'x', sizeof(gi));
	geo_lookup(g, (struct sockaddr *)&sun, &gi);
	tap_ok(gi.country[0] == '\0' && gi.zone[0] == '\0',
	    "sockaddr: AF_UNIX leaves both empty");

	memset(&gi, 'x', sizeof(gi));
	geo_lookup(NULL, (struct sockaddr *)&sin, &gi);
	tap_ok(gi.country[0] == '\0' && gi.zone[0] == '\0',
	    "sockaddr: NULL geo leaves both empty");

	geo_free(g);
	diag_clear(&dg);
}

/* Country databases of other shapes. */
static void
geo_test_country_shapes(void)
{
	static const struct {
		const char *db;
		const char *ip;
		const char *country;
		const char *name;
	} rows[] = {
		{ V4ONLY, "8.8.8.8", "US", "IPv4-only db: IPv4" },
		{ V4ONLY, "::ffff:8.8.8.8", "US",
		    "IPv4-only db: IPv4-mapped converted before lookup" },
		{ V4ONLY, "2001:4860:4860::8888", "",
		    "IPv4-only db: IPv6 is unknown, not an error" },
		{ REGISTERED, "1.0.1.5", "CN",
		    "registered_country when country is absent" },
		{ REGISTERED, "8.8.8.8", "US",
		    "country preferred over registered_country" },
		{ REGISTERED, "9.9.9.9", "", "registered db: not covered" },
	};
	char buf[600];
	struct geo_info gi;
	struct diag dg;
	struct geo *g;
	size_t i;

	for (i = 0; i < nitems(rows); i++) {
		diag_init(&dg);
		g = geo_open(geo_test_path(rows[i].db, buf, sizeof(buf)), NULL,
		    &dg);
		memset(&gi, 'x', sizeof(gi));
		tap_ok(g != NULL && geo_lookup_str(g, rows[i].ip, &gi) == 0 &&
		        strcmp(gi.country, rows[i].country) == 0 &&
		        gi.zone[0] == '\0',
		    "%s", rows[i].name);
		geo_free(g);
		diag_clear(&dg);
	}
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: geo_test DBDIR (run geo_test.sh)\n");
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s", argv[1]);
	geo_test_opens();
	geo_test_lookups();
	geo_test_sockaddr();
	geo_test_country_shapes();
	tap_done();
	tap_exit();
}
