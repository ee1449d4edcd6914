/* geo.c - source-address facts from MaxMind databases: country and zone. */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <maxminddb.h>

#include "diag.h"
#include "geo.h"
#include "xmalloc.h"

#define GEO_ZONE_TYPE "govgate-zones"
#define GEO_COUNTRY_TYPE "govgate-country"

/*
 * Both databases are opened once and only read afterwards: libmaxminddb
 * lookups on an MMDB_s are thread-safe, so workers share one struct geo.
 */
struct geo {
	MMDB_s country;
	MMDB_s zone;
	int has_country;
	int has_zone;
};

/*
 * Addresses probed when a database is opened. A hit must carry the expected
 * field with the expected type; a miss is fine (a zone list covers only the
 * intranet, a test country list only a few networks).
 */
static const char *const geo_probe_addrs[] = {
	"10.0.0.1",
	"172.16.0.1",
	"192.168.0.1",
	"1.1.1.1",
	"8.8.8.8",
	"114.114.114.114",
	"2001:4860:4860::8888",
	"2400:3200::1",
};

/*
 * Copy a UTF-8 string entry into dst when it has 1..dstlen-1 bytes, each
 * accepted by ok(). Returns 0, or -1 leaving dst empty.
 */
static int
geo_copy_str(const MMDB_entry_data_s *data, char *dst, size_t dstlen,
    int (*ok)(unsigned char))
{
	size_t i;

	dst[0] = '\0';
	if (!data->has_data || data->type != MMDB_DATA_TYPE_UTF8_STRING)
		return -1;
	if (data->data_size == 0 || data->data_size >= dstlen)
		return -1;
	for (i = 0; i < data->data_size; i++)
		if (!ok((unsigned char)data->utf8_string[i]))
			return -1;
	memcpy(dst, data->utf8_string, data->data_size);
	dst[data->data_size] = '\0';
	return 0;
}

static int
geo_country_char(unsigned char ch)
{
	return ch >= 'A' && ch <= 'Z';
}

/* Zone names as contrib/mkzones accepts them: [A-Za-z0-9._-]. */
static int
geo_zone_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
}

/*
 * Read country.iso_code, or registered_country.iso_code when the address
 * has no country of its own (anycast, satellite). Returns the status of
 * the last lookup: MMDB_SUCCESS also when the paths do not exist.
 */
static int
geo_entry_country(MMDB_entry_s *entry, char *dst, size_t dstlen)
{
	MMDB_entry_data_s data;
	int status;

	dst[0] = '\0';
	memset(&data, 0, sizeof(data));
	status = MMDB_get_value(entry, &data, "country", "iso_code", NULL);
	if (status == MMDB_SUCCESS &&
	    geo_copy_str(&data, dst, dstlen, geo_country_char) == 0)
		return MMDB_SUCCESS;
	if (status != MMDB_SUCCESS &&
	    status != MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR)
		return status;
	memset(&data, 0, sizeof(data));
	status = MMDB_get_value(entry, &data, "registered_country", "iso_code",
	    NULL);
	if (status == MMDB_SUCCESS)
		(void)geo_copy_str(&data, dst, dstlen, geo_country_char);
	if (status == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR)
		status = MMDB_SUCCESS;
	return status;
}

static int
geo_entry_zone(MMDB_entry_s *entry, char *dst, size_t dstlen)
{
	MMDB_entry_data_s data;
	int status;

	dst[0] = '\0';
	memset(&data, 0, sizeof(data));
	status = MMDB_get_value(entry, &data, "zone", NULL);
	if (status == MMDB_SUCCESS)
		(void)geo_copy_str(&data, dst, dstlen, geo_zone_char);
	if (status == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR)
		status = MMDB_SUCCESS;
	return status;
}

/*
 * Probe db with the sample addresses: every hit must have a well-formed
 * record. Returns 0, or -1 with the problem in dg.
 */
static int
geo_probe(MMDB_s *db, int is_zone, const char *path, struct diag *dg)
{
	MMDB_lookup_result_s res;
	MMDB_entry_data_s data;
	char buf[GEO_MAX_ZONE];
	size_t i;
	int gai, mmerr, status;

	for (i = 0; i < nitems(geo_probe_addrs); i++) {
		if (db->metadata.ip_version == 4 &&
		    strchr(geo_probe_addrs[i], ':') != NULL)
			continue;
		res = MMDB_lookup_string(db, geo_probe_addrs[i], &gai, &mmerr);
		if (gai != 0 || mmerr != MMDB_SUCCESS) {
			diag_error(dg, path, 0, 0, "lookup of %s failed: %s",
			    geo_probe_addrs[i],
			    gai != 0 ? gai_strerror(gai)
			             : MMDB_strerror(mmerr));
			return -1;
		}
		if (!res.found_entry)
			continue;
		if (is_zone) {
			memset(&data, 0, sizeof(data));
			status =
			    MMDB_get_value(&res.entry, &data, "zone", NULL);
			if (status == MMDB_SUCCESS &&
			    geo_copy_str(&data, buf, sizeof(buf),
			        geo_zone_char) == -1) {
				diag_error(dg, path, 0, 0,
				    "record for %s has no valid \"zone\" "
				    "string",
				    geo_probe_addrs[i]);
				return -1;
			}
		} else
			status =
			    geo_entry_country(&res.entry, buf, sizeof(buf));
		if (status != MMDB_SUCCESS &&
		    status != MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR) {
			diag_error(dg, path, 0, 0, "record for %s: %s",
			    geo_probe_addrs[i], MMDB_strerror(status));
			return -1;
		}
	}
	return 0;
}

/*
 * Open one database and check its metadata type and record shape. Returns
 * 0 with db open, or -1 with db closed and the problem in dg.
 */
static int
geo_open_one(MMDB_s *db, const char *path, int is_zone, struct diag *dg)
{
	const char *type;
	int status;

	errno = 0;
	status = MMDB_open(path, MMDB_MODE_MMAP, db);
	if (status != MMDB_SUCCESS) {
		if ((status == MMDB_FILE_OPEN_ERROR ||
		        status == MMDB_IO_ERROR) &&
		    errno != 0)
			diag_error(dg, path, 0, 0, "cannot open: %s",
			    strerror(errno));
		else
			diag_error(dg, path, 0, 0, "not a MaxMind database: %s",
			    MMDB_strerror(status));
		return -1;
	}
	type = db->metadata.database_type;
	if (type == NULL)
		type = "";
	if (db->metadata.binary_format_major_version != 2) {
		diag_error(dg, path, 0, 0,
		    "unsupported MaxMind DB format version %u",
		    (unsigned)db->metadata.binary_format_major_version);
		goto fail;
	}
	if (is_zone && strcmp(type, GEO_ZONE_TYPE) != 0) {
		diag_error(dg, path, 0, 0,
		    "database type is \"%s\", expected \"%s\" "
		    "(build it with contrib/mkzones)",
		    type, GEO_ZONE_TYPE);
		goto fail;
	}
	if (!is_zone && strcmp(type, GEO_COUNTRY_TYPE) != 0 &&
	    strstr(type, "Country") == NULL && strstr(type, "City") == NULL) {
		diag_error(dg, path, 0, 0,
		    "database type is \"%s\", expected a Country or City "
		    "database",
		    type);
		goto fail;
	}
	if (geo_probe(db, is_zone, path, dg) == -1)
		goto fail;
	return 0;
fail:
	MMDB_close(db);
	return -1;
}

/*
 * Open the country database (MaxMind Country or City, or a govgate-country
 * test database; NULL: none) and the zone database (govgate-zones from
 * contrib/mkzones; NULL: none), checking type and record shape. Returns an
 * owned geo (possibly with no databases), or NULL with the problem in dg.
 */
struct geo *
geo_open(const char *country_db, const char *zone_db, struct diag *dg)
{
	struct geo *g;
	int bad = 0;

	g = xcalloc(1, sizeof(*g));
	if (country_db != NULL) {
		if (geo_open_one(&g->country, country_db, 0, dg) == 0)
			g->has_country = 1;
		else
			bad = 1;
	}
	if (zone_db != NULL) {
		if (geo_open_one(&g->zone, zone_db, 1, dg) == 0)
			g->has_zone = 1;
		else
			bad = 1;
	}
	if (bad) {
		geo_free(g);
		return NULL;
	}
	return g;
}

/* Close both databases and free g. geo_free(NULL) is a no-op. */
void
geo_free(struct geo *g)
{
	if (g == NULL)
		return;
	if (g->has_country)
		MMDB_close(&g->country);
	if (g->has_zone)
		MMDB_close(&g->zone);
	free(g);
}

int
geo_has_country(const struct geo *g)
{
	return g != NULL && g->has_country;
}

int
geo_has_zone(const struct geo *g)
{
	return g != NULL && g->has_zone;
}

/*
 * An IPv6 tree keeps IPv4 at ::/96, so an IPv4-compatible source such as
 * ::10.30.4.21 (deprecated, never a real peer; also :: and ::1) would get
 * the zone of 10.30.4.21. Such sources are looked up as unknown.
 */
static const uint8_t geo_v4compat[12];

/*
 * Look up sa (AF_INET or AF_INET6; IPv4-mapped IPv6 is looked up as IPv4,
 * since a database may be IPv4-only; IPv4-compatible ::/96 is unknown).
 * Fills out; lookup errors leave the fields empty (unknown). Thread-safe;
 * touches no socket.
 */
void
geo_lookup(const struct geo *g, const struct sockaddr *sa, struct geo_info *out)
{
	const struct sockaddr_in6 *sin6;
	const struct sockaddr *key = sa;
	struct sockaddr_in sin;
	MMDB_lookup_result_s res;
	int mmerr;

	memset(out, 0, sizeof(*out));
	if (g == NULL || sa == NULL)
		return;
	if (sa->sa_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			memset(&sin, 0, sizeof(sin));
			sin.sin_family = AF_INET;
			sin.sin_port = sin6->sin6_port;
			memcpy(&sin.sin_addr, &sin6->sin6_addr.s6_addr[12], 4);
			key = (const struct sockaddr *)&sin;
		} else if (memcmp(sin6->sin6_addr.s6_addr, geo_v4compat,
		               sizeof(geo_v4compat)) == 0)
			return;
	} else if (sa->sa_family != AF_INET)
		return;

	if (g->has_country) {
		res = MMDB_lookup_sockaddr(&g->country, key, &mmerr);
		if (mmerr == MMDB_SUCCESS && res.found_entry &&
		    geo_entry_country(&res.entry, out->country,
		        sizeof(out->country)) != MMDB_SUCCESS)
			out->country[0] = '\0';
	}
	if (g->has_zone) {
		res = MMDB_lookup_sockaddr(&g->zone, key, &mmerr);
		if (mmerr == MMDB_SUCCESS && res.found_entry &&
		    geo_entry_zone(&res.entry, out->zone, sizeof(out->zone)) !=
		        MMDB_SUCCESS)
			out->zone[0] = '\0';
	}
}

/*
 * Same for a textual address ("10.30.4.21", "::1"). Only the strict
 * inet_pton forms are accepted (no "10.1" or hex shorthand). Returns 0, or
 * -1 with out empty when ip is not an address.
 */
int
geo_lookup_str(const struct geo *g, const char *ip, struct geo_info *out)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	memset(out, 0, sizeof(*out));
	memset(&sin, 0, sizeof(sin));
	memset(&sin6, 0, sizeof(sin6));
	if (inet_pton(AF_INET, ip, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		geo_lookup(g, (const struct sockaddr *)&sin, out);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		geo_lookup(g, (const struct sockaddr *)&sin6, out);
		return 0;
	}
	return -1;
}
