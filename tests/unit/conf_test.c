/* conf_test.c - govgate.yaml loading, defaults, paths and CIDRs (contract 3).
 */
#include "config.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/tls1.h>

#include "compat.h"
#include "conf.h"
#include "diag.h"
#include "tap.h"

static char conf_test_dir[256]; /* the temp folder, resolved */

/* A listener block most cases share; two-space indent under listeners. */
#define LISTENER                                                               \
	"listeners:\n"                                                         \
	"  - name: egov\n"                                                     \
	"    address: \"0.0.0.0:8443\"\n"                                      \
	"    tls:\n"                                                           \
	"      certificate: certs/gw.crt\n"                                    \
	"      key: certs/gw.key\n"                                            \
	"      client_ca: certs/ca.pem\n"

static const struct {
	const char *name;
	const char *in;
	size_t cidr_prefix;
	int family;       /* 0: parse fails */
	const char *addr; /* the stored network, as text */
} cidr_parse_cases[] = {
	{ "ipv4 network", "10.0.0.0/8", 8, AF_INET, "10.0.0.0" },
	{ "ipv4 bare address", "192.0.2.7", 32, AF_INET, "192.0.2.7" },
	{ "ipv4 /0", "0.0.0.0/0", 0, AF_INET, "0.0.0.0" },
	{ "ipv4 /32", "192.0.2.7/32", 32, AF_INET, "192.0.2.7" },
	{ "ipv4 odd prefix", "10.128.0.0/9", 9, AF_INET, "10.128.0.0" },
	{ "ipv6 network", "2001:db8::/32", 32, AF_INET6, "2001:db8::" },
	{ "ipv6 bare", "::1", 128, AF_INET6, "::1" },
	{ "ipv6 /0", "::/0", 0, AF_INET6, "::" },
	{ "v4-mapped network is ipv4", "::ffff:10.0.0.0/104", 8, AF_INET,
	    "10.0.0.0" },
	{ "v4-mapped address is ipv4", "::ffff:192.0.2.1", 32, AF_INET,
	    "192.0.2.1" },
	{ "v4-mapped /96 is all ipv4", "::ffff:0:0/96", 0, AF_INET, "0.0.0.0" },
	{ "ipv4 host bits set", "10.0.0.1/8", 0, 0, NULL },
	{ "ipv4 host bits in partial byte", "10.192.0.0/9", 0, 0, NULL },
	{ "ipv6 host bits set", "2001:db8::1/64", 0, 0, NULL },
	{ "ipv4 prefix too long", "10.0.0.0/33", 0, 0, NULL },
	{ "ipv6 prefix too long", "::/129", 0, 0, NULL },
	{ "empty prefix", "10.0.0.0/", 0, 0, NULL },
	{ "prefix leading zero", "10.0.0.0/08", 0, 0, NULL },
	{ "prefix not a number", "10.0.0.0/x", 0, 0, NULL },
	{ "prefix sign", "10.0.0.0/+8", 0, 0, NULL },
	{ "short ipv4", "10.1/16", 0, 0, NULL },
	{ "host name", "example.org", 0, 0, NULL },
	{ "empty", "", 0, 0, NULL },
	{ "only slash", "/8", 0, 0, NULL },
	{ "zone id", "fe80::1%eth0", 0, 0, NULL },
	{ "trailing space", "10.0.0.0/8 ", 0, 0, NULL },
};

static const struct {
	const char *name;
	const char *nets[3];
	const char *addr;
	int want;
} cidr_match_cases[] = {
	{ "ipv4 inside", { "10.0.0.0/8" }, "10.200.3.4", 1 },
	{ "ipv4 outside", { "10.0.0.0/8" }, "11.0.0.1", 0 },
	{ "ipv4 first of range", { "192.0.2.0/24" }, "192.0.2.0", 1 },
	{ "ipv4 last of range", { "192.0.2.0/24" }, "192.0.2.255", 1 },
	{ "ipv4 just past range", { "192.0.2.0/24" }, "192.0.3.0", 0 },
	{ "ipv4 /9 lower half", { "10.0.0.0/9" }, "10.127.255.255", 1 },
	{ "ipv4 /9 upper half", { "10.0.0.0/9" }, "10.128.0.0", 0 },
	{ "ipv4 /0 matches all", { "0.0.0.0/0" }, "203.0.113.9", 1 },
	{ "ipv4 /32 exact", { "192.0.2.7" }, "192.0.2.7", 1 },
	{ "ipv4 /32 other", { "192.0.2.7" }, "192.0.2.8", 0 },
	{ "second network", { "10.0.0.0/8", "172.16.0.0/12" }, "172.31.0.1",
	    1 },
	{ "no networks", { NULL }, "10.0.0.1", 0 },
	{ "ipv6 inside", { "2001:db8::/32" }, "2001:db8:1::5", 1 },
	{ "ipv6 outside", { "2001:db8::/32" }, "2001:db9::1", 0 },
	{ "ipv6 /127 pair", { "2001:db8::/127" }, "2001:db8::1", 1 },
	{ "ipv6 /127 past", { "2001:db8::/127" }, "2001:db8::2", 0 },
	{ "ipv4 address vs ipv6 net", { "::/0" }, "10.0.0.1", 0 },
	{ "ipv6 address vs ipv4 net", { "0.0.0.0/0" }, "2001:db8::1", 0 },
	{ "v4-mapped address vs ipv4 net", { "10.0.0.0/8" }, "::ffff:10.1.2.3",
	    1 },
	{ "v4-mapped address outside ipv4 net", { "10.0.0.0/8" },
	    "::ffff:11.1.2.3", 0 },
	{ "v4-mapped address vs ::/0", { "::/0" }, "::ffff:10.1.2.3", 0 },
	{ "ipv4 address vs v4-mapped net", { "::ffff:10.0.0.0/104" },
	    "10.9.9.9", 1 },
};

/*
 * Each row is a whole govgate.yaml. want_errors and want_warnings count
 * diagnostics; first is the first error without its "file:" prefix.
 */
static const struct {
	const char *name;
	const char *yaml;
	size_t want_errors, want_warnings;
	const char *first;
} load_cases[] = {
	{ "minimal", "policy: policy.yaml\n" LISTENER, 0, 1, NULL },
	{ "unknown top-level key", "policy: policy.yaml\nlisten: x\n" LISTENER,
	    1, 1,
	    "2:1: unknown key \"listen\" in config (expected: name, workers, "
	    "policy, listeners, upstreams, audit, geoip, admin, limits, "
	    "timezone, log)" },
	{ "missing policy and listeners", "name: gw\n", 2, 1,
	    "1:1: config: missing required key \"policy\"" },
	{ "empty listeners", "policy: policy.yaml\nlisteners: []\n", 1, 1,
	    "2:12: listeners: at least one listener is required" },
	{ "errors are all collected",
	    "policy: policy.yaml\nworkers: 0\n" LISTENER
	    "limits:\n  max_header_bytes: 10\n  idle_timeout: 5\n"
	    "  max_connections: x\n",
	    4, 1, "2:10: workers: 0 is out of range (1 to 256)" },
	{ "per-department connections up to max_connections",
	    "policy: policy.yaml\n" LISTENER "limits:\n  max_connections: 100\n"
	    "  max_connections_per_department: 100\n",
	    0, 1, NULL },
	{ "per-department connections above max_connections",
	    "policy: policy.yaml\n" LISTENER "limits:\n  max_connections: 100\n"
	    "  max_connections_per_department: 101\n",
	    1, 1,
	    "11:35: limits.max_connections_per_department: 101 is above "
	    "limits.max_connections (100)" },
	{ "per-department connections above the default max_connections",
	    "policy: policy.yaml\n" LISTENER
	    "limits:\n  max_connections_per_department: 10001\n",
	    1, 1,
	    "10:35: limits.max_connections_per_department: 10001 is above "
	    "limits.max_connections (10000)" },
	{ "per-department connections not a number",
	    "policy: policy.yaml\n" LISTENER
	    "limits:\n  max_connections_per_department: -1\n",
	    1, 1,
	    "10:35: limits.max_connections_per_department: \"-1\" is not a "
	    "whole number" },
	{ "workers not a number",
	    "policy: policy.yaml\nworkers: many\n" LISTENER, 1, 1,
	    "2:10: workers: \"many\" is not auto or a number from 1 to 256" },
	{ "duplicate listener names and addresses",
	    "policy: policy.yaml\n" LISTENER "  - name: egov\n"
	    "    address: \"0.0.0.0:8443\"\n    tls: { certificate: a, key: b, "
	    "client_ca: c }\n",
	    2, 1, "9:5: duplicate listener name \"egov\" (first at line 3)" },
	{ "wildcard address overlaps a specific one",
	    "policy: policy.yaml\n" LISTENER "  - name: other\n"
	    "    address: \"10.1.2.3:8443\"\n    tls: { certificate: a, key: "
	    "b, "
	    "client_ca: c }\n",
	    1, 1,
	    "10:14: listener address \"10.1.2.3:8443\" collides with "
	    "\"0.0.0.0:8443\" (line 4)" },
	{ "proxy protocol without trusted networks",
	    "policy: policy.yaml\n" LISTENER "    proxy_protocol: true\n", 1, 1,
	    "3:5: listener \"egov\": proxy_protocol needs proxy_trusted (the "
	    "balancers' networks)" },
	{ "trusted networks without proxy protocol warns",
	    "policy: policy.yaml\n" LISTENER
	    "    proxy_trusted: [10.0.0.0/8]\n",
	    0, 2, NULL },
	{ "admin not on loopback warns",
	    "policy: policy.yaml\n" LISTENER
	    "admin: { address: \"0.0.0.0:9190\" }\n",
	    0, 2, NULL },
	{ "admin collides with a listener",
	    "policy: policy.yaml\n" LISTENER
	    "admin: { address: \"127.0.0.1:8443\" }\n",
	    1, 1,
	    "9:19: admin.address \"127.0.0.1:8443\" collides with listener "
	    "address \"0.0.0.0:8443\" (line 4)" },
	{ "upstream host names accepted",
	    "policy: policy.yaml\n" LISTENER
	    "upstreams:\n  hr:\n    servers: [\"hr-api.internal:8080\", "
	    "\"[2001:db8::1]:80\", \"10.0.0.1:80\"]\n",
	    0, 1, NULL },
	{ "upstream server listed twice",
	    "policy: policy.yaml\n" LISTENER
	    "upstreams:\n  hr:\n    servers: [\"10.0.0.1:80\", "
	    "\"10.0.0.1:80\"]\n",
	    1, 1,
	    "11:30: upstream \"hr\" servers: \"10.0.0.1:80\" is listed twice" },
	{ "upstream bad host",
	    "policy: policy.yaml\n" LISTENER "upstreams:\n  hr:\n    servers: "
	    "[\"10.0.0.300:80\"]\n",
	    1, 1,
	    "11:15: upstream \"hr\" servers: \"10.0.0.300:80\": \"10.0.0.300\" "
	    "is "
	    "not an IP address or a host name" },
	{ "upstream key without certificate",
	    "policy: policy.yaml\n" LISTENER
	    "upstreams:\n  hr:\n    servers: [\"10.0.0.1:80\"]\n"
	    "    tls: { ca: ca.pem, key: k.pem }\n",
	    1, 1, "12:29: upstream \"hr\" tls: key without certificate" },
	{ "upstream verify_depth",
	    "policy: policy.yaml\n" LISTENER
	    "upstreams:\n  hr:\n    servers: [\"10.0.0.1:80\"]\n"
	    "    tls: { ca: ca.pem, verify_depth: 7 }\n",
	    0, 1, NULL },
	{ "upstream verify_depth above the maximum",
	    "policy: policy.yaml\n" LISTENER
	    "upstreams:\n  hr:\n    servers: [\"10.0.0.1:80\"]\n"
	    "    tls: { ca: ca.pem, verify_depth: 17 }\n",
	    1, 1,
	    "12:38: upstream \"hr\" tls.verify_depth: 17 is out of range (0 "
	    "to 16)" },
	{ "duplicate upstream",
	    "policy: policy.yaml\n" LISTENER
	    "upstreams:\n  hr: { servers: [\"a.b:1\"] }\n"
	    "  hr: { servers: [\"a.b:2\"] }\n",
	    1, 1, "11:3: duplicate key \"hr\" in upstreams" },
	{ "no requests per connection",
	    "policy: policy.yaml\n" LISTENER
	    "limits: { max_requests_per_connection: 0 }\n",
	    1, 1,
	    "9:40: limits.max_requests_per_connection: 0 is out of range (1 "
	    "to 1000000000)" },
	{ "requests per connection not a number",
	    "policy: policy.yaml\n" LISTENER
	    "limits: { max_requests_per_connection: 1k }\n",
	    1, 1,
	    "9:40: limits.max_requests_per_connection: \"1k\" is not a whole "
	    "number" },
	{ "audit without signing key",
	    "policy: policy.yaml\n" LISTENER "audit: { path: audit.jsonl }\n",
	    1, 0, "9:8: audit: missing required key \"signing_key\"" },
	{ "same file for signing and subject key",
	    "policy: policy.yaml\n" LISTENER
	    "audit: { path: a.jsonl, signing_key: k, subject_key: ./k }\n",
	    1, 0, "9:54: audit.subject_key: must not be the signing key" },
	{ "timezone climbing out",
	    "policy: policy.yaml\ntimezone: ../etc/x\n" LISTENER, 1, 1,
	    "2:11: timezone: \"../etc/x\" is not a zone name (as "
	    "Asia/Shanghai, "
	    "UTC or +08:00)" },
	{ "missing policy file", "policy: nope/\n" LISTENER, 1, 1,
	    "1:9: policy: cannot access \"nope/\": No such file or directory" },
	{ "bad log level",
	    "policy: policy.yaml\n" LISTENER "log: { level: loud }\n", 1, 1,
	    "9:15: log.level: unknown value \"loud\" (expected: error, warn, "
	    "info, debug)" },
	{ "verify_depth 0 is allowed",
	    "policy: policy.yaml\n" LISTENER "      verify_depth: 0\n", 0, 1,
	    NULL },
	{ "verify_depth at its maximum",
	    "policy: policy.yaml\n" LISTENER "      verify_depth: 16\n", 0, 1,
	    NULL },
	{ "verify_depth above the maximum",
	    "policy: policy.yaml\n" LISTENER "      verify_depth: 17\n", 1, 1,
	    "9:21: listener \"egov\" tls.verify_depth: 17 is out of range (0 "
	    "to 16)" },
	{ "verify_depth negative",
	    "policy: policy.yaml\n" LISTENER "      verify_depth: -1\n", 1, 1,
	    "9:21: listener \"egov\" tls.verify_depth: \"-1\" is not a whole "
	    "number" },
	{ "verify_depth not a number",
	    "policy: policy.yaml\n" LISTENER "      verify_depth: [2]\n", 1, 1,
	    NULL },
	{ "root is a sequence", "- a\n- b\n", 1, 0,
	    "1:1: config: expected a mapping" },
	{ "empty file", "", 1, 0, NULL },
	{ "comments only", "# nothing\n", 1, 0, NULL },
	{ "syntax error", "policy: [\n", 1, 0, NULL },
};

static int
conf_test_write(const char *name, const char *text, char *path, size_t len)
{
	FILE *fp;

	snprintf(path, len, "%s/%s", conf_test_dir, name);
	if ((fp = fopen(path, "w")) == NULL)
		return -1;
	fputs(text, fp);
	return fclose(fp);
}

/* Write text with its first from replaced by to. */
static int
conf_test_write_subst(const char *name, const char *text, const char *from,
    const char *to, char *path, size_t len)
{
	const char *at;
	char *buf;
	size_t n;
	int rc;

	if ((at = strstr(text, from)) == NULL)
		return -1;
	n = strlen(text) + strlen(to) + 1;
	if ((buf = malloc(n)) == NULL)
		return -1;
	snprintf(buf, n, "%.*s%s%s", (int)(at - text), text, to,
	    at + strlen(from));
	rc = conf_test_write(name, buf, path, len);
	free(buf);
	return rc;
}

static void
conf_test_cidr(void)
{
	struct conf_cidr c, nets[3];
	char text[INET6_ADDRSTRLEN];
	const char *got;
	uint8_t addr[16];
	size_t i, j, n;
	int rc, family;

	for (i = 0; i < nitems(cidr_parse_cases); i++) {
		rc = conf_cidr_parse(cidr_parse_cases[i].in, &c);
		if (cidr_parse_cases[i].family == 0) {
			tap_ok(rc == -1, "cidr parse: %s",
			    cidr_parse_cases[i].name);
			continue;
		}
		if (!tap_ok(rc == 0 && c.family == cidr_parse_cases[i].family &&
		            c.prefix == cidr_parse_cases[i].cidr_prefix,
		        "cidr parse: %s", cidr_parse_cases[i].name)) {
			tap_diag("rc %d family %d prefix %u", rc, c.family,
			    c.prefix);
			continue;
		}
		got = inet_ntop(c.family, c.addr, text, sizeof(text));
		tap_streq(got, cidr_parse_cases[i].addr,
		    "cidr parse: %s: address", cidr_parse_cases[i].name);
	}
	for (i = 0; i < nitems(cidr_match_cases); i++) {
		for (n = 0; n < 3 && cidr_match_cases[i].nets[n] != NULL; n++)
			if (conf_cidr_parse(cidr_match_cases[i].nets[n],
			        &nets[n]) == -1)
				tap_diag("bad net %s",
				    cidr_match_cases[i].nets[n]);
		family =
		    strchr(cidr_match_cases[i].addr, ':') ? AF_INET6 : AF_INET;
		memset(addr, 0, sizeof(addr));
		inet_pton(family, cidr_match_cases[i].addr, addr);
		rc = conf_cidr_match(nets, n, family, addr);
		tap_ok(rc == cidr_match_cases[i].want, "cidr match: %s",
		    cidr_match_cases[i].name);
		for (j = 0; j < n; j++)
			memset(&nets[j], 0, sizeof(nets[j]));
	}
}

static void
conf_test_cases(void)
{
	struct diag dg;
	struct conf *c;
	char path[PATH_MAX];
	const char *first;
	size_t i, skip;

	for (i = 0; i < nitems(load_cases); i++) {
		diag_init(&dg);
		if (conf_test_write("case.yaml", load_cases[i].yaml, path,
		        sizeof(path)) == -1) {
			tap_ok(0, "load: %s: cannot write", load_cases[i].name);
			continue;
		}
		c = conf_load(path, &dg);
		if (!tap_ok((c == NULL) == (load_cases[i].want_errors > 0) &&
		            dg.nerrors == load_cases[i].want_errors &&
		            dg.nwarnings == load_cases[i].want_warnings,
		        "load: %s: %zu errors, %zu warnings",
		        load_cases[i].name, load_cases[i].want_errors,
		        load_cases[i].want_warnings)) {
			tap_diag("got %zu errors, %zu warnings", dg.nerrors,
			    dg.nwarnings);
			diag_print(&dg, stdout);
		}
		if (load_cases[i].first != NULL) {
			first = diag_first_error(&dg);
			skip = strlen(path) + 1;
			if (first != NULL && strlen(first) > skip)
				first += skip;
			tap_streq(first, load_cases[i].first,
			    "load: %s: first error", load_cases[i].name);
		}
		conf_free(c);
		diag_clear(&dg);
	}
}

/* Every default of contract section 3 when only the required keys exist. */
static void
conf_test_defaults(void)
{
	struct diag dg;
	struct conf *c;
	char path[PATH_MAX], want[PATH_MAX + 64], host[256];

	diag_init(&dg);
	conf_test_write("defaults.yaml", "policy: ./policy.yaml\n" LISTENER,
	    path, sizeof(path));
	c = conf_load(path, &dg);
	if (!tap_ok(c != NULL, "defaults: loads")) {
		diag_print(&dg, stdout);
		diag_clear(&dg);
		return;
	}
	memset(host, 0, sizeof(host));
	gethostname(host, sizeof(host) - 1);
	tap_streq(c->name, host, "defaults: name is the host name");
	tap_ok(c->workers == 0, "defaults: workers auto");
	tap_streq(c->dir, conf_test_dir, "defaults: dir is the file's folder");
	snprintf(want, sizeof(want), "%s/policy.yaml", conf_test_dir);
	tap_streq(c->policy, want, "defaults: ./policy resolved");
	snprintf(want, sizeof(want), "%s/certs/gw.crt", conf_test_dir);
	tap_streq(c->listeners[0].tls.certificate, want,
	    "defaults: certificate resolved");
	tap_ok(c->listeners[0].tls.crl == NULL, "defaults: no crl");
	tap_ok(c->listeners[0].tls.client_auth == CONF_CLIENT_AUTH_REQUIRE,
	    "defaults: client_auth require");
	tap_ok(c->listeners[0].tls.min_version == TLS1_2_VERSION,
	    "defaults: min_version TLSv1.2");
	/* 4, the fixed depth before tls.verify_depth existed. */
	tap_ok(c->listeners[0].tls.verify_depth == 4,
	    "defaults: verify_depth 4");
	tap_ok(c->listeners[0].proxy_protocol == 0 &&
	        c->listeners[0].nproxy_trusted == 0,
	    "defaults: no proxy protocol");
	tap_streq(c->listeners[0].address.host, "0.0.0.0",
	    "defaults: address host");
	tap_ok(c->listeners[0].address.port == 8443, "defaults: address port");
	tap_ok(c->nupstreams == 0 && !c->has_audit && !c->has_admin,
	    "defaults: no upstreams, audit or admin");
	tap_ok(c->geoip_country_db == NULL && c->geoip_zone_db == NULL,
	    "defaults: no geoip");
	tap_ok(c->limits.max_connections == CONF_DEFAULT_MAX_CONNECTIONS &&
	        c->limits.header_timeout_ms == CONF_DEFAULT_HEADER_TIMEOUT_MS &&
	        c->limits.idle_timeout_ms == CONF_DEFAULT_IDLE_TIMEOUT_MS &&
	        c->limits.handshake_timeout_ms ==
	            CONF_DEFAULT_HANDSHAKE_TIMEOUT_MS &&
	        c->limits.max_header_bytes == CONF_DEFAULT_MAX_HEADER_BYTES &&
	        c->limits.max_body_bytes == CONF_DEFAULT_MAX_BODY_BYTES &&
	        c->limits.max_connections_per_department == 0 &&
	        c->limits.max_requests_per_connection ==
	            CONF_DEFAULT_MAX_REQUESTS_PER_CONNECTION,
	    "defaults: limits");
	tap_streq(c->timezone, CONF_DEFAULT_TIMEZONE, "defaults: timezone");
	tap_ok(c->timezone_line == 0, "defaults: timezone has no position");
	tap_ok(c->log_file == NULL, "defaults: log to stderr");
	tap_streq(c->log_level, "info", "defaults: log level");
	conf_free(c);
	diag_clear(&dg);
}

/* Every key of contract section 3, plus log, with values read back. */
static void
conf_test_full(void)
{
	static const char yaml[] =
	    "name: nn-egov-gw-1\n"
	    "workers: 4\n"
	    "policy: /etc/govgate/policies/\n"
	    "listeners:\n"
	    "  - name: egov\n"
	    "    address: \"[::]:8443\"\n"
	    "    proxy_protocol: true\n"
	    "    proxy_trusted: [10.9.0.0/16, \"2001:db8::/48\"]\n"
	    "    tls:\n"
	    "      certificate: certs/gw.crt\n"
	    "      key: /etc/govgate/gw.key\n"
	    "      client_ca: certs/ca.pem\n"
	    "      crl: certs/ca.crl\n"
	    "      client_auth: optional\n"
	    "      min_version: TLSv1.3\n"
	    "      verify_depth: 2\n"
	    "upstreams:\n"
	    "  psb-api:\n"
	    "    servers: [\"10.20.1.10:8080\", \"psb.internal:8443\"]\n"
	    "    tls:\n"
	    "      ca: certs/psb-ca.pem\n"
	    "      certificate: certs/client.crt\n"
	    "      key: certs/client.key\n"
	    "      server_name: psb-api.internal\n"
	    "    connect_timeout: 250ms\n"
	    "    read_timeout: 2m\n"
	    "  plain:\n"
	    "    servers: [\"127.0.0.1:9000\"]\n"
	    "audit:\n"
	    "  path: audit/audit.jsonl\n"
	    "  signing_key: audit.key\n"
	    "  checkpoint_interval: 5s\n"
	    "  sync: write\n"
	    "  subject_key: subject.key\n"
	    "geoip:\n"
	    "  country_db: geo/c.mmdb\n"
	    "  zone_db: geo/z.mmdb\n"
	    "admin:\n"
	    "  address: \"[::1]:9190\"\n"
	    "limits:\n"
	    "  max_connections: 500\n"
	    "  header_timeout: 3s\n"
	    "  idle_timeout: 1h\n"
	    "  handshake_timeout: 1500ms\n"
	    "  max_header_bytes: 32k\n"
	    "  max_body_bytes: 1g\n"
	    "  max_requests_per_connection: 7\n"
	    "timezone: UTC\n"
	    "log:\n"
	    "  file: log/govgate.log\n"
	    "  level: debug\n";
	struct diag dg;
	struct conf *c;
	const struct conf_upstream *u;
	const struct conf_listener *l;
	char path[PATH_MAX], want[PATH_MAX + 64], folder[300];
	uint8_t a[16];

	diag_init(&dg);
	conf_test_write("full.yaml", yaml, path, sizeof(path));
	/* An absolute policy that does not exist fails; use the folder. */
	c = conf_load(path, &dg);
	tap_ok(c == NULL && dg.nerrors == 1, "full: absolute missing policy");
	diag_clear(&dg);
	/* The temp folder with a trailing slash, which is dropped. */
	snprintf(folder, sizeof(folder), "%s/", conf_test_dir);
	conf_test_write_subst("full.yaml", yaml, "/etc/govgate/policies/",
	    folder, path, sizeof(path));
	c = conf_load(path, &dg);
	if (!tap_ok(c != NULL && dg.nwarnings == 0, "full: loads")) {
		diag_print(&dg, stdout);
		conf_free(c);
		diag_clear(&dg);
		return;
	}
	tap_streq(c->name, "nn-egov-gw-1", "full: name");
	tap_ok(c->workers == 4, "full: workers");
	tap_streq(c->policy, conf_test_dir,
	    "full: absolute policy kept, trailing slash dropped");
	l = &c->listeners[0];
	tap_streq(l->address.host, "::", "full: ipv6 host without brackets");
	tap_streq(l->address.text, "[::]:8443", "full: address text");
	tap_ok(l->address.line == 6 && l->address.col == 14,
	    "full: address position");
	tap_ok(l->proxy_protocol == 1 && l->nproxy_trusted == 2,
	    "full: proxy protocol and two networks");
	inet_pton(AF_INET, "10.9.255.1", a);
	tap_ok(conf_cidr_match(l->proxy_trusted, l->nproxy_trusted, AF_INET,
	           a) == 1,
	    "full: trusted network matches");
	tap_streq(l->tls.key, "/etc/govgate/gw.key", "full: absolute key kept");
	snprintf(want, sizeof(want), "%s/certs/ca.crl", conf_test_dir);
	tap_streq(l->tls.crl, want, "full: crl resolved");
	tap_ok(l->tls.client_auth == CONF_CLIENT_AUTH_OPTIONAL,
	    "full: client_auth optional");
	tap_ok(l->tls.min_version == TLS1_3_VERSION, "full: min_version 1.3");
	tap_ok(l->tls.verify_depth == 2, "full: verify_depth 2");
	tap_ok(c->nupstreams == 2, "full: two upstreams");
	u = conf_upstream_find(c, "psb-api");
	tap_ok(u != NULL && u->nservers == 2 && u->has_tls &&
	        u->connect_timeout_ms == 250 && u->read_timeout_ms == 120000,
	    "full: psb-api servers, tls, timeouts");
	if (u != NULL) {
		tap_streq(u->servers[1].host, "psb.internal",
		    "full: server host name");
		tap_ok(u->servers[1].port == 8443, "full: server port");
		tap_streq(u->tls.server_name, "psb-api.internal",
		    "full: server_name");
		tap_ok(u->tls.verify_depth == 4,
		    "full: upstream verify_depth 4 by default");
		snprintf(want, sizeof(want), "%s/certs/client.key",
		    conf_test_dir);
		tap_streq(u->tls.key, want, "full: upstream key resolved");
	}
	u = conf_upstream_find(c, "plain");
	tap_ok(u != NULL && !u->has_tls &&
	        u->connect_timeout_ms == CONF_DEFAULT_CONNECT_TIMEOUT_MS,
	    "full: plain upstream defaults");
	tap_ok(conf_upstream_find(c, "nope") == NULL,
	    "full: unknown upstream not found");
	snprintf(want, sizeof(want), "%s/audit/audit.jsonl", conf_test_dir);
	tap_streq(c->audit.path, want, "full: audit path resolved");
	tap_ok(c->has_audit && c->audit.checkpoint_interval_ms == 5000 &&
	        c->audit.sync == CONF_AUDIT_SYNC_WRITE &&
	        c->audit.subject_key != NULL,
	    "full: audit settings");
	snprintf(want, sizeof(want), "%s/geo/z.mmdb", conf_test_dir);
	tap_streq(c->geoip_zone_db, want, "full: zone db resolved");
	tap_ok(c->has_admin && c->admin.port == 9190, "full: admin");
	tap_streq(c->admin.host, "::1", "full: admin host");
	tap_ok(c->limits.max_connections == 500 &&
	        c->limits.header_timeout_ms == 3000 &&
	        c->limits.idle_timeout_ms == 3600000 &&
	        c->limits.handshake_timeout_ms == 1500 &&
	        c->limits.max_header_bytes == 32768 &&
	        c->limits.max_body_bytes == 1024ULL * 1024 * 1024 &&
	        c->limits.max_requests_per_connection == 7,
	    "full: limits");
	tap_streq(c->timezone, "UTC", "full: timezone");
	tap_ok(c->timezone_line == 48 && c->timezone_col == 11,
	    "full: timezone position");
	snprintf(want, sizeof(want), "%s/log/govgate.log", conf_test_dir);
	tap_streq(c->log_file, want, "full: log file resolved");
	tap_streq(c->log_level, "debug", "full: log level");
	conf_free(c);
	diag_clear(&dg);
}

/* A nonexistent config file is one error naming the file, no crash. */
static void
conf_test_missing_file(void)
{
	struct diag dg;
	struct conf *c;
	char path[PATH_MAX], want[PATH_MAX + 64];

	diag_init(&dg);
	snprintf(path, sizeof(path), "%s/absent.yaml", conf_test_dir);
	c = conf_load(path, &dg);
	snprintf(want, sizeof(want),
	    "%s: cannot open: No such file or directory", path);
	tap_ok(c == NULL && dg.nerrors == 1, "missing file: one error");
	tap_streq(diag_first_error(&dg), want, "missing file: message");
	diag_clear(&dg);
	tap_ok(1, "free(NULL) is a no-op");
	conf_free(NULL);
}

int
main(void)
{
	char path[PATH_MAX], tmpl[] = "/tmp/conf_test.XXXXXX";

	if (mkdtemp(tmpl) == NULL || realpath(tmpl, path) == NULL ||
	    strlcpy(conf_test_dir, path, sizeof(conf_test_dir)) >=
	        sizeof(conf_test_dir)) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	conf_test_write("policy.yaml", "", path, sizeof(path));
	conf_test_cidr();
	conf_test_cases();
	conf_test_defaults();
	conf_test_full();
	conf_test_missing_file();
	tap_done();
	unlink(path);
	snprintf(path, sizeof(path), "%s/case.yaml", conf_test_dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/defaults.yaml", conf_test_dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/full.yaml", conf_test_dir);
	unlink(path);
	rmdir(conf_test_dir);
	tap_exit();
}
