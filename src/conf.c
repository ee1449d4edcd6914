/* conf.c - govgate.yaml, the deployment config, as plain structs (pure). */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/tls1.h>
#include <yaml.h>

#include "compat.h"
#include "conf.h"
#include "diag.h"
#include "xmalloc.h"
#include "ynode.h"

#define CONF_LABEL_MAX 96 /* "listener \"x\"" and its like */
#define CONF_WHAT_MAX 160 /* a label and a field: "... tls.client_ca" */
#define CONF_ERR_MAX 384  /* reasons that quote a host name */

static const struct ynode_key conf_top_keys[] = {
	{ "name", YNODE_STR, 0 },
	{ "workers", YNODE_STR, 0 },
	{ "policy", YNODE_STR, YNODE_REQUIRED },
	{ "listeners", YNODE_SEQ, YNODE_REQUIRED },
	{ "upstreams", YNODE_MAP, 0 },
	{ "audit", YNODE_MAP, 0 },
	{ "geoip", YNODE_MAP, 0 },
	{ "admin", YNODE_MAP, 0 },
	{ "limits", YNODE_MAP, 0 },
	{ "timezone", YNODE_STR, 0 },
	{ "log", YNODE_MAP, 0 },
	{ NULL, YNODE_ANY, 0 },
};
enum {
	CONF_K_NAME = 0,
	CONF_K_WORKERS,
	CONF_K_POLICY,
	CONF_K_LISTENERS,
	CONF_K_UPSTREAMS,
	CONF_K_AUDIT,
	CONF_K_GEOIP,
	CONF_K_ADMIN,
	CONF_K_LIMITS,
	CONF_K_TIMEZONE,
	CONF_K_LOG,
	CONF_K_N,
};

static const struct ynode_key conf_listener_keys[] = {
	{ "name", YNODE_STR, YNODE_REQUIRED },
	{ "address", YNODE_STR, YNODE_REQUIRED },
	{ "proxy_protocol", YNODE_STR, 0 },
	{ "proxy_trusted", YNODE_SEQ, 0 },
	{ "tls", YNODE_MAP, YNODE_REQUIRED },
	{ NULL, YNODE_ANY, 0 },
};

static const struct ynode_key conf_listener_tls_keys[] = {
	{ "certificate", YNODE_STR, YNODE_REQUIRED },
	{ "key", YNODE_STR, YNODE_REQUIRED },
	{ "client_ca", YNODE_STR, YNODE_REQUIRED },
	{ "crl", YNODE_STR, 0 },
	{ "client_auth", YNODE_STR, 0 },
	{ "min_version", YNODE_STR, 0 },
	{ "verify_depth", YNODE_STR, 0 },
	{ NULL, YNODE_ANY, 0 },
};

static const struct ynode_key conf_upstream_keys[] = {
	{ "servers", YNODE_SEQ, YNODE_REQUIRED },
	{ "tls", YNODE_MAP, 0 },
	{ "connect_timeout", YNODE_STR, 0 },
	{ "read_timeout", YNODE_STR, 0 },
	{ NULL, YNODE_ANY, 0 },
};

static const struct ynode_key conf_upstream_tls_keys[] = {
	{ "ca", YNODE_STR, YNODE_REQUIRED },
	{ "certificate", YNODE_STR, 0 },
	{ "key", YNODE_STR, 0 },
	{ "server_name", YNODE_STR, 0 },
	{ "verify_depth", YNODE_STR, 0 },
	{ NULL, YNODE_ANY, 0 },
};

static const struct ynode_key conf_audit_keys[] = {
	{ "path", YNODE_STR, YNODE_REQUIRED },
	{ "signing_key", YNODE_STR, YNODE_REQUIRED },
	{ "checkpoint_interval", YNODE_STR, 0 },
	{ "sync", YNODE_STR, 0 },
	{ "subject_key", YNODE_STR, 0 },
	{ NULL, YNODE_ANY, 0 },
};

static const struct ynode_key conf_geoip_keys[] = {
	{ "country_db", YNODE_STR, 0 },
	{ "zone_db", YNODE_STR, 0 },
	{ NULL, YNODE_ANY, 0 },
};

static const struct ynode_key conf_admin_keys[] = {
	{ "address", YNODE_STR, YNODE_REQUIRED },
	{ NULL, YNODE_ANY, 0 },
};

static const struct ynode_key conf_limits_keys[] = {
	{ "max_connections", YNODE_STR, 0 },
	{ "header_timeout", YNODE_STR, 0 },
	{ "idle_timeout", YNODE_STR, 0 },
	{ "handshake_timeout", YNODE_STR, 0 },
	{ "max_header_bytes", YNODE_STR, 0 },
	{ "max_body_bytes", YNODE_STR, 0 },
	{ "max_connections_per_department", YNODE_STR, 0 },
	{ "max_requests_per_connection", YNODE_STR, 0 },
	{ NULL, YNODE_ANY, 0 },
};

static const struct ynode_key conf_log_keys[] = {
	{ "file", YNODE_STR, 0 },
	{ "level", YNODE_STR, 0 },
	{ NULL, YNODE_ANY, 0 },
};

static const char *const conf_client_auth_names[] = { "require", "optional",
	NULL };
static const char *const conf_min_version_names[] = { "TLSv1.2", "TLSv1.3",
	NULL };
static const char *const conf_sync_names[] = { "fsync", "write", NULL };
static const char *const conf_log_level_names[] = { "error", "warn", "info",
	"debug", NULL };

/* 1 when s is 1..max bytes of letters, digits, '.', '_' and '-'. */
static int
conf_ident_ok(const char *s, size_t max)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i >= max)
			return 0;
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		        (s[i] >= 'A' && s[i] <= 'Z') ||
		        (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		        s[i] == '_' || s[i] == '-'))
			return 0;
	}
	return i > 0;
}

/*
 * 1 when s is a DNS host name (RFC 1123 labels of letters, digits and
 * inner hyphens, at most 63 bytes each, 253 in all) that is not all
 * digits and dots (which would be a malformed IPv4 address).
 */
static int
conf_hostname_ok(const char *s)
{
	size_t i, label = 0, len = strlen(s);
	int alpha = 0;

	if (len == 0 || len > 253 || s[len - 1] == '.')
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (s[i] == '-') {
			if (label == 0)
				return 0;
		} else if ((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z'))
			alpha = 1;
		else if (s[i] < '0' || s[i] > '9')
			return 0;
		if (++label > 63)
			return 0;
	}
	return s[len - 1] != '-' && alpha;
}

/*
 * Split "host:port", "[v6]:port" into out. Listener and admin addresses
 * (allow_names 0) must be IP literals, since they are bound without DNS;
 * upstream servers may also be host names, resolved when connecting.
 * Returns 0, or -1 with the reason in err.
 */
static int
conf_addr_parse(const char *s, int allow_names, struct conf_addr *out,
    char *err, size_t errlen)
{
	const char *colon, *host, *port;
	size_t hostlen, i;
	unsigned long v = 0;
	unsigned char buf[16];
	char hostbuf[256];
	int v6 = 0;

	memset(out, 0, sizeof(*out));
	if (s[0] == '[') {
		host = s + 1;
		if ((colon = strchr(host, ']')) == NULL) {
			snprintf(err, errlen,
			    "missing \"]\" after the IPv6 "
			    "address");
			return -1;
		}
		hostlen = (size_t)(colon - host);
		colon++;
		if (*colon != ':') {
			snprintf(err, errlen, "expected host:port");
			return -1;
		}
		v6 = 1;
	} else {
		host = s;
		if ((colon = strrchr(s, ':')) == NULL) {
			snprintf(err, errlen, "expected host:port");
			return -1;
		}
		hostlen = (size_t)(colon - host);
		if (memchr(host, ':', hostlen) != NULL) {
			snprintf(err, errlen,
			    "an IPv6 address must be in "
			    "brackets, as [::1]:8443");
			return -1;
		}
	}
	if (hostlen == 0) {
		snprintf(err, errlen,
		    "missing host (use 0.0.0.0 or [::] for "
		    "every address)");
		return -1;
	}
	if (hostlen >= sizeof(hostbuf)) {
		snprintf(err, errlen, "host longer than %zu bytes",
		    sizeof(hostbuf) - 1);
		return -1;
	}
	memcpy(hostbuf, host, hostlen);
	hostbuf[hostlen] = '\0';
	port = colon + 1;
	for (i = 0; port[i] >= '0' && port[i] <= '9' && i < 6; i++)
		v = v * 10 + (unsigned long)(port[i] - '0');
	if (i == 0 || port[i] != '\0' || port[0] == '0' || v > 65535) {
		snprintf(err, errlen, "port must be a number from 1 to 65535");
		return -1;
	}
	if (v6) {
		if (inet_pton(AF_INET6, hostbuf, buf) != 1) {
			snprintf(err, errlen, "\"%s\" is not an IPv6 address",
			    hostbuf);
			return -1;
		}
	} else if (inet_pton(AF_INET, hostbuf, buf) != 1) {
		if (!allow_names) {
			snprintf(err, errlen,
			    "host must be an IPv4 address or a bracketed "
			    "IPv6 address");
			return -1;
		}
		if (!conf_hostname_ok(hostbuf)) {
			snprintf(err, errlen,
			    "\"%s\" is not an IP address or a "
			    "host name",
			    hostbuf);
			return -1;
		}
	}
	out->text = xstrdup(s);
	out->host = xstrdup(hostbuf);
	out->port = (uint16_t)v;
	return 0;
}

static void
conf_addr_clear(struct conf_addr *a)
{
	free(a->text);
	free(a->host);
	memset(a, 0, sizeof(*a));
}

/*
 * The address family and bytes of an IP-literal host; 0 for a host name.
 * IPv4-mapped IPv6 becomes AF_INET, as conf_cidr_match treats it.
 */
static int
conf_addr_family(const struct conf_addr *a, uint8_t *bytes)
{
	if (inet_pton(AF_INET, a->host, bytes) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, a->host, bytes) == 1)
		return AF_INET6;
	return 0;
}

static int
conf_addr_is_loopback(const struct conf_addr *a)
{
	static const uint8_t v6lo[16] = { [15] = 1 };
	uint8_t b[16];

	switch (conf_addr_family(a, b)) {
	case AF_INET:
		return b[0] == 127;
	case AF_INET6:
		return memcmp(b, v6lo, 16) == 0;
	}
	return 0;
}

static int
conf_addr_is_any(int family, const uint8_t *b)
{
	static const uint8_t zero[16];

	return memcmp(b, zero, family == AF_INET ? 4 : 16) == 0;
}

/*
 * 1 when binding both a and b would collide: the same port and either the
 * same address or a wildcard of the same family.
 */
static int
conf_addr_overlaps(const struct conf_addr *a, const struct conf_addr *b)
{
	uint8_t ab[16], bb[16];
	int af, bf;

	if (a->port != b->port)
		return 0;
	af = conf_addr_family(a, ab);
	bf = conf_addr_family(b, bb);
	if (af == 0 || af != bf)
		return 0;
	if (memcmp(ab, bb, af == AF_INET ? 4 : 16) == 0)
		return 1;
	return conf_addr_is_any(af, ab) || conf_addr_is_any(bf, bb);
}

static int
conf_cidr_parse_err(const char *s, struct conf_cidr *out, char *err,
    size_t errlen)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	const char *slash;
	char buf[INET6_ADDRSTRLEN + 1];
	size_t len, i, bits;
	unsigned prefix = 0;
	int full = 1;

	memset(out, 0, sizeof(*out));
	slash = strchr(s, '/');
	len = slash ? (size_t)(slash - s) : strlen(s);
	if (len == 0 || len >= sizeof(buf)) {
		snprintf(err, errlen, "not an IP address");
		return -1;
	}
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, out->addr) == 1)
		out->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, out->addr) == 1)
		out->family = AF_INET6;
	else {
		snprintf(err, errlen, "\"%s\" is not an IP address", buf);
		return -1;
	}
	bits = out->family == AF_INET ? 32 : 128;
	if (slash != NULL) {
		full = 0;
		for (i = 1; slash[i] >= '0' && slash[i] <= '9' && i < 5; i++)
			prefix = prefix * 10 + (unsigned)(slash[i] - '0');
		if (i == 1 || slash[i] != '\0' || (slash[1] == '0' && i > 2) ||
		    prefix > bits) {
			snprintf(err, errlen,
			    "prefix must be a number from 0 "
			    "to %zu",
			    bits);
			return -1;
		}
	} else
		prefix = (unsigned)bits;
	for (i = prefix; i < bits; i++) {
		if (out->addr[i / 8] & (0x80 >> (i % 8))) {
			snprintf(err, errlen, "host bits set after /%u",
			    prefix);
			return -1;
		}
	}
	out->prefix = (uint8_t)prefix;
	/* ::ffff:a.b.c.d/n (n >= 96) is the IPv4 network a.b.c.d/(n-96). */
	if (out->family == AF_INET6 && memcmp(out->addr, mapped, 12) == 0 &&
	    (full || prefix >= 96)) {
		out->family = AF_INET;
		memmove(out->addr, out->addr + 12, 4);
		memset(out->addr + 4, 0, 12);
		out->prefix = (uint8_t)(prefix - 96);
	}
	return 0;
}

/*
 * Parse "10.0.0.0/8", "2001:db8::/32" or a bare address (a /32 or /128).
 * Bits past the prefix must be zero. An IPv4-mapped IPv6 network with a
 * prefix of 96 or more is stored as the IPv4 network it maps. Returns 0,
 * or -1.
 */
int
conf_cidr_parse(const char *s, struct conf_cidr *out)
{
	char err[128];

	return conf_cidr_parse_err(s, out, err, sizeof(err));
}

/*
 * 1 when addr (4 bytes for AF_INET, 16 for AF_INET6) lies in one of the n
 * networks of v. An IPv4-mapped IPv6 address is matched as IPv4; it does
 * not match IPv6 networks (so ::/0 admits no IPv4 client).
 */
int
conf_cidr_match(const struct conf_cidr *v, size_t n, int family,
    const uint8_t *addr)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	const uint8_t *a = addr;
	size_t i, full, rest;

	if (family == AF_INET6 && memcmp(addr, mapped, 12) == 0) {
		family = AF_INET;
		a = addr + 12;
	}
	if (family != AF_INET && family != AF_INET6)
		return 0;
	for (i = 0; i < n; i++) {
		if (v[i].family != family)
			continue;
		full = v[i].prefix / 8;
		rest = v[i].prefix % 8;
		if (memcmp(v[i].addr, a, full) != 0)
			continue;
		if (rest != 0 &&
		    ((v[i].addr[full] ^ a[full]) & (0xff00 >> rest) & 0xff))
			continue;
		return 1;
	}
	return 0;
}

/* The upstream called name, or NULL. The result is borrowed from c. */
const struct conf_upstream *
conf_upstream_find(const struct conf *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nupstreams; i++)
		if (strcmp(c->upstreams[i].name, name) == 0)
			return &c->upstreams[i];
	return NULL;
}

/* One of names, stored as its index in *out. */
static int
conf_enum(struct ynode_doc *d, yaml_node_t *n, const char *what,
    const char *const *names, int *out)
{
	char expected[256];
	const char *s;
	size_t i, len = 0;

	if ((s = ynode_str(d, n, what)) == NULL)
		return -1;
	expected[0] = '\0';
	for (i = 0; names[i] != NULL; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (int)i;
			return 0;
		}
		if (len < sizeof(expected))
			len += (size_t)snprintf(expected + len,
			    sizeof(expected) - len, "%s%s", i ? ", " : "",
			    names[i]);
	}
	ynode_error(d, n, "%s: unknown value \"%s\" (expected: %s)", what, s,
	    expected);
	return -1;
}

/*
 * A file or folder named in the config, resolved against the config's
 * folder. Returns an owned absolute path, or NULL after an error.
 */
static char *
conf_path(struct ynode_doc *d, const struct conf *c, yaml_node_t *n,
    const char *what)
{
	char buf[PATH_MAX];
	const char *s;
	int len;

	if ((s = ynode_str(d, n, what)) == NULL)
		return NULL;
	if (*s == '\0') {
		ynode_error(d, n, "%s: empty path", what);
		return NULL;
	}
	if (*s == '/')
		len = snprintf(buf, sizeof(buf), "%s", s);
	else {
		while (s[0] == '.' && s[1] == '/')
			for (s += 2; *s == '/'; s++)
				;
		len = snprintf(buf, sizeof(buf), "%s%s%s", c->dir,
		    c->dir[strlen(c->dir) - 1] == '/' ? "" : "/", s);
	}
	if (len < 0 || (size_t)len >= sizeof(buf)) {
		ynode_error(d, n, "%s: path longer than %zu bytes", what,
		    sizeof(buf) - 1);
		return NULL;
	}
	/* "policies/" is the folder itself: "policies". */
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';
	return xstrdup(buf);
}

/* The scalar value of key in mapping n, if it is a usable identifier. */
static const char *
conf_peek_name(struct ynode_doc *d, yaml_node_t *n, const char *key)
{
	yaml_node_pair_t *p;
	yaml_node_t *k, *v;
	size_t i;

	if (n == NULL || n->type != YAML_MAPPING_NODE)
		return NULL;
	for (i = 0; i < ynode_map_len(n); i++) {
		p = ynode_map_pair(n, i);
		k = ynode_at(d, p->key);
		v = ynode_at(d, p->value);
		if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE ||
		    v->type != YAML_SCALAR_NODE)
			continue;
		if (strcmp((const char *)k->data.scalar.value, key) == 0 &&
		    conf_ident_ok((const char *)v->data.scalar.value,
		        CONF_MAX_ID))
			return (const char *)v->data.scalar.value;
	}
	return NULL;
}

static void
conf_parse_listener_tls(struct ynode_doc *d, struct conf *c, yaml_node_t *n,
    const char *lwhat, struct conf_listener_tls *t)
{
	yaml_node_t *v[nitems(conf_listener_tls_keys)];
	char what[CONF_WHAT_MAX];
	uint64_t depth;
	int e;

	t->min_version = TLS1_2_VERSION;
	t->client_auth = CONF_CLIENT_AUTH_REQUIRE;
	t->verify_depth = CONF_DEFAULT_VERIFY_DEPTH;
	if (n == NULL)
		return;
	snprintf(what, sizeof(what), "%s tls", lwhat);
	(void)ynode_map(d, n, conf_listener_tls_keys, v, what);
	snprintf(what, sizeof(what), "%s tls.certificate", lwhat);
	if (v[0] != NULL)
		t->certificate = conf_path(d, c, v[0], what);
	snprintf(what, sizeof(what), "%s tls.key", lwhat);
	if (v[1] != NULL)
		t->key = conf_path(d, c, v[1], what);
	snprintf(what, sizeof(what), "%s tls.client_ca", lwhat);
	if (v[2] != NULL)
		t->client_ca = conf_path(d, c, v[2], what);
	snprintf(what, sizeof(what), "%s tls.crl", lwhat);
	if (v[3] != NULL)
		t->crl = conf_path(d, c, v[3], what);
	snprintf(what, sizeof(what), "%s tls.client_auth", lwhat);
	if (v[4] != NULL &&
	    conf_enum(d, v[4], what, conf_client_auth_names, &e) == 0)
		t->client_auth = e == 0 ? CONF_CLIENT_AUTH_REQUIRE
		                        : CONF_CLIENT_AUTH_OPTIONAL;
	snprintf(what, sizeof(what), "%s tls.min_version", lwhat);
	if (v[5] != NULL &&
	    conf_enum(d, v[5], what, conf_min_version_names, &e) == 0)
		t->min_version = e == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
	snprintf(what, sizeof(what), "%s tls.verify_depth", lwhat);
	if (v[6] != NULL &&
	    ynode_uint(d, v[6], what, 0, CONF_MAX_VERIFY_DEPTH, &depth) == 0)
		t->verify_depth = (int)depth;
}

static void
conf_parse_listener(struct ynode_doc *d, struct conf *c, yaml_node_t *n,
    size_t idx, struct conf_listener *l)
{
	yaml_node_t *v[nitems(conf_listener_keys)], *item;
	char what[CONF_LABEL_MAX], fwhat[CONF_WHAT_MAX], err[CONF_ERR_MAX];
	const char *name, *s;
	size_t i, len;

	l->line = ynode_line(n);
	l->col = ynode_col(n);
	if ((name = conf_peek_name(d, n, "name")) != NULL)
		snprintf(what, sizeof(what), "listener \"%s\"", name);
	else
		snprintf(what, sizeof(what), "listener #%zu", idx + 1);
	if (ynode_map(d, n, conf_listener_keys, v, what) == -1 &&
	    (n == NULL || n->type != YAML_MAPPING_NODE))
		return;
	if (v[0] != NULL && (s = ynode_str(d, v[0], "listener name")) != NULL) {
		if (!conf_ident_ok(s, CONF_MAX_ID))
			ynode_error(d, v[0],
			    "listener name \"%s\": use 1 to %d letters, "
			    "digits, "
			    "'.', '_' or '-'",
			    s, CONF_MAX_ID);
		else
			l->name = xstrdup(s);
	}
	snprintf(fwhat, sizeof(fwhat), "%s address", what);
	if (v[1] != NULL && (s = ynode_str(d, v[1], fwhat)) != NULL) {
		if (conf_addr_parse(s, 0, &l->address, err, sizeof(err)) == -1)
			ynode_error(d, v[1], "%s: \"%s\": %s", fwhat, s, err);
		l->address.line = ynode_line(v[1]);
		l->address.col = ynode_col(v[1]);
	}
	snprintf(fwhat, sizeof(fwhat), "%s proxy_protocol", what);
	if (v[2] != NULL)
		(void)ynode_bool(d, v[2], fwhat, &l->proxy_protocol);
	snprintf(fwhat, sizeof(fwhat), "%s proxy_trusted", what);
	if (v[3] != NULL) {
		len = ynode_seq_len(v[3]);
		if (len > CONF_MAX_PROXY_TRUSTED) {
			ynode_error(d, v[3], "%s: more than %d networks", fwhat,
			    CONF_MAX_PROXY_TRUSTED);
			len = 0;
		}
		l->proxy_trusted = xcalloc(len, sizeof(*l->proxy_trusted));
		for (i = 0; i < len; i++) {
			item = ynode_at(d, ynode_seq_item(v[3], i));
			if ((s = ynode_str(d, item, fwhat)) == NULL)
				continue;
			if (conf_cidr_parse_err(s,
			        &l->proxy_trusted[l->nproxy_trusted], err,
			        sizeof(err)) == -1) {
				ynode_error(d, item,
				    "%s: \"%s\" is not a CIDR: %s", fwhat, s,
				    err);
				continue;
			}
			l->nproxy_trusted++;
		}
	}
	conf_parse_listener_tls(d, c, v[4], what, &l->tls);
}

static void
conf_parse_listeners(struct ynode_doc *d, struct conf *c, yaml_node_t *n)
{
	size_t i, len;

	if (n == NULL)
		return;
	len = ynode_seq_len(n);
	if (len == 0) {
		ynode_error(d, n,
		    "listeners: at least one listener is required");
		return;
	}
	if (len > CONF_MAX_LISTENERS) {
		ynode_error(d, n, "listeners: more than %d listeners",
		    CONF_MAX_LISTENERS);
		return;
	}
	c->listeners = xcalloc(len, sizeof(*c->listeners));
	c->nlisteners = len;
	for (i = 0; i < len; i++)
		conf_parse_listener(d, c, ynode_at(d, ynode_seq_item(n, i)), i,
		    &c->listeners[i]);
}

static void
conf_parse_upstream_tls(struct ynode_doc *d, struct conf *c, yaml_node_t *n,
    const char *uwhat, struct conf_upstream_tls *t)
{
	yaml_node_t *v[nitems(conf_upstream_tls_keys)];
	char what[CONF_WHAT_MAX];
	const char *s;
	uint64_t depth;

	t->verify_depth = CONF_DEFAULT_VERIFY_DEPTH;
	snprintf(what, sizeof(what), "%s tls", uwhat);
	if (ynode_map(d, n, conf_upstream_tls_keys, v, what) == -1 &&
	    n->type != YAML_MAPPING_NODE)
		return;
	/* As nginx's proxy_ssl_certificate: a client certificate needs its key.
	 */
	if (v[1] != NULL && v[2] == NULL)
		ynode_error(d, v[1], "%s: certificate without key", what);
	if (v[2] != NULL && v[1] == NULL)
		ynode_error(d, v[2], "%s: key without certificate", what);
	snprintf(what, sizeof(what), "%s tls.ca", uwhat);
	if (v[0] != NULL)
		t->ca = conf_path(d, c, v[0], what);
	snprintf(what, sizeof(what), "%s tls.certificate", uwhat);
	if (v[1] != NULL)
		t->certificate = conf_path(d, c, v[1], what);
	snprintf(what, sizeof(what), "%s tls.key", uwhat);
	if (v[2] != NULL)
		t->key = conf_path(d, c, v[2], what);
	snprintf(what, sizeof(what), "%s tls.server_name", uwhat);
	if (v[3] != NULL && (s = ynode_str(d, v[3], what)) != NULL) {
		if (!conf_hostname_ok(s))
			ynode_error(d, v[3], "%s: \"%s\" is not a host name",
			    what, s);
		else
			t->server_name = xstrdup(s);
	}
	snprintf(what, sizeof(what), "%s tls.verify_depth", uwhat);
	if (v[4] != NULL &&
	    ynode_uint(d, v[4], what, 0, CONF_MAX_VERIFY_DEPTH, &depth) == 0)
		t->verify_depth = (int)depth;
}

static void
conf_parse_upstream(struct ynode_doc *d, struct conf *c, yaml_node_t *k,
    yaml_node_t *n, struct conf_upstream *u)
{
	yaml_node_t *v[nitems(conf_upstream_keys)], *item;
	char what[CONF_LABEL_MAX], fwhat[CONF_WHAT_MAX], err[CONF_ERR_MAX];
	const char *s;
	size_t i, j, len;

	u->line = ynode_line(k);
	u->col = ynode_col(k);
	u->connect_timeout_ms = CONF_DEFAULT_CONNECT_TIMEOUT_MS;
	u->read_timeout_ms = CONF_DEFAULT_READ_TIMEOUT_MS;
	snprintf(what, sizeof(what), "upstream \"%s\"", u->name);
	if (ynode_map(d, n, conf_upstream_keys, v, what) == -1 &&
	    n->type != YAML_MAPPING_NODE)
		return;
	snprintf(fwhat, sizeof(fwhat), "%s servers", what);
	if (v[0] != NULL) {
		len = ynode_seq_len(v[0]);
		if (len == 0)
			ynode_error(d, v[0],
			    "%s: at least one server is required", fwhat);
		else if (len > CONF_MAX_UPSTREAM_SERVERS) {
			ynode_error(d, v[0], "%s: more than %d servers", fwhat,
			    CONF_MAX_UPSTREAM_SERVERS);
			len = 0;
		}
		u->servers = xcalloc(len, sizeof(*u->servers));
		for (i = 0; i < len; i++) {
			item = ynode_at(d, ynode_seq_item(v[0], i));
			if ((s = ynode_str(d, item, fwhat)) == NULL)
				continue;
			if (conf_addr_parse(s, 1, &u->servers[u->nservers], err,
			        sizeof(err)) == -1) {
				ynode_error(d, item, "%s: \"%s\": %s", fwhat, s,
				    err);
				continue;
			}
			for (j = 0; j < u->nservers; j++)
				if (strcmp(u->servers[j].host,
				        u->servers[u->nservers].host) == 0 &&
				    u->servers[j].port ==
				        u->servers[u->nservers].port)
					break;
			if (j < u->nservers) {
				ynode_error(d, item,
				    "%s: \"%s\" is listed twice", fwhat, s);
				conf_addr_clear(&u->servers[u->nservers]);
				continue;
			}
			u->servers[u->nservers].line = ynode_line(item);
			u->servers[u->nservers].col = ynode_col(item);
			u->nservers++;
		}
	}
	if (v[1] != NULL) {
		u->has_tls = 1;
		conf_parse_upstream_tls(d, c, v[1], what, &u->tls);
	}
	snprintf(fwhat, sizeof(fwhat), "%s connect_timeout", what);
	if (v[2] != NULL)
		(void)ynode_duration(d, v[2], fwhat, CONF_MIN_TIMEOUT_MS,
		    CONF_MAX_CONNECT_TIMEOUT_MS, &u->connect_timeout_ms);
	snprintf(fwhat, sizeof(fwhat), "%s read_timeout", what);
	if (v[3] != NULL)
		(void)ynode_duration(d, v[3], fwhat, CONF_MIN_TIMEOUT_MS,
		    CONF_MAX_TIMEOUT_MS, &u->read_timeout_ms);
}

/* upstreams: a mapping of name -> upstream; ynode_map cannot check names. */
static void
conf_parse_upstreams(struct ynode_doc *d, struct conf *c, yaml_node_t *n)
{
	yaml_node_pair_t *p;
	yaml_node_t *k, *v;
	const char *name;
	size_t i, j, len;

	if (n == NULL)
		return;
	len = ynode_map_len(n);
	if (len > CONF_MAX_UPSTREAMS) {
		ynode_error(d, n, "upstreams: more than %d upstreams",
		    CONF_MAX_UPSTREAMS);
		return;
	}
	c->upstreams = xcalloc(len, sizeof(*c->upstreams));
	for (i = 0; i < len; i++) {
		p = ynode_map_pair(n, i);
		k = ynode_at(d, p->key);
		v = ynode_at(d, p->value);
		if ((name = ynode_str(d, k, "upstream name")) == NULL)
			continue;
		if (!conf_ident_ok(name, CONF_MAX_ID)) {
			ynode_error(d, k,
			    "upstream name \"%s\": use 1 to %d letters, "
			    "digits, "
			    "'.', '_' or '-'",
			    name, CONF_MAX_ID);
			continue;
		}
		for (j = 0; j < c->nupstreams; j++)
			if (strcmp(c->upstreams[j].name, name) == 0)
				break;
		if (j < c->nupstreams) {
			ynode_error(d, k, "duplicate key \"%s\" in upstreams",
			    name);
			continue;
		}
		c->upstreams[c->nupstreams].name = xstrdup(name);
		conf_parse_upstream(d, c, k, v, &c->upstreams[c->nupstreams]);
		c->nupstreams++;
	}
}

static void
conf_parse_audit(struct ynode_doc *d, struct conf *c, yaml_node_t *n)
{
	yaml_node_t *v[nitems(conf_audit_keys)];
	int e;

	c->audit.checkpoint_interval_ms = CONF_DEFAULT_CHECKPOINT_INTERVAL_MS;
	c->audit.sync = CONF_AUDIT_SYNC_FSYNC;
	if (n == NULL)
		return;
	c->has_audit = 1;
	(void)ynode_map(d, n, conf_audit_keys, v, "audit");
	if (v[0] != NULL)
		c->audit.path = conf_path(d, c, v[0], "audit.path");
	if (v[1] != NULL)
		c->audit.signing_key =
		    conf_path(d, c, v[1], "audit.signing_key");
	if (v[2] != NULL)
		(void)ynode_duration(d, v[2], "audit.checkpoint_interval",
		    CONF_MIN_TIMEOUT_MS, CONF_MAX_CHECKPOINT_INTERVAL_MS,
		    &c->audit.checkpoint_interval_ms);
	if (v[3] != NULL &&
	    conf_enum(d, v[3], "audit.sync", conf_sync_names, &e) == 0)
		c->audit.sync =
		    e == 0 ? CONF_AUDIT_SYNC_FSYNC : CONF_AUDIT_SYNC_WRITE;
	if (v[4] != NULL)
		c->audit.subject_key =
		    conf_path(d, c, v[4], "audit.subject_key");
	if (c->audit.signing_key != NULL && c->audit.subject_key != NULL &&
	    strcmp(c->audit.signing_key, c->audit.subject_key) == 0)
		ynode_error(d, v[4],
		    "audit.subject_key: must not be the signing key");
}

static void
conf_parse_geoip(struct ynode_doc *d, struct conf *c, yaml_node_t *n)
{
	yaml_node_t *v[nitems(conf_geoip_keys)];

	if (n == NULL)
		return;
	(void)ynode_map(d, n, conf_geoip_keys, v, "geoip");
	if (v[0] != NULL)
		c->geoip_country_db = conf_path(d, c, v[0], "geoip.country_db");
	if (v[1] != NULL)
		c->geoip_zone_db = conf_path(d, c, v[1], "geoip.zone_db");
}

static void
conf_parse_admin(struct ynode_doc *d, struct conf *c, yaml_node_t *n)
{
	yaml_node_t *v[nitems(conf_admin_keys)];
	char err[CONF_ERR_MAX];
	const char *s;

	if (n == NULL)
		return;
	(void)ynode_map(d, n, conf_admin_keys, v, "admin");
	if (v[0] == NULL || (s = ynode_str(d, v[0], "admin.address")) == NULL)
		return;
	if (conf_addr_parse(s, 0, &c->admin, err, sizeof(err)) == -1) {
		ynode_error(d, v[0], "admin.address: \"%s\": %s", s, err);
		return;
	}
	c->has_admin = 1;
	c->admin.line = ynode_line(v[0]);
	c->admin.col = ynode_col(v[0]);
	/* Metrics name departments and resources: keep them on the host. */
	if (!conf_addr_is_loopback(&c->admin))
		ynode_warn(d, v[0],
		    "admin.address: \"%s\" is not a loopback address; "
		    "/metrics and /healthz will be reachable from the network",
		    s);
}

static void
conf_parse_limits(struct ynode_doc *d, struct conf *c, yaml_node_t *n)
{
	yaml_node_t *v[nitems(conf_limits_keys)];
	struct conf_limits *lim = &c->limits;
	int max_ok = 1;

	lim->max_connections = CONF_DEFAULT_MAX_CONNECTIONS;
	lim->header_timeout_ms = CONF_DEFAULT_HEADER_TIMEOUT_MS;
	lim->idle_timeout_ms = CONF_DEFAULT_IDLE_TIMEOUT_MS;
	lim->handshake_timeout_ms = CONF_DEFAULT_HANDSHAKE_TIMEOUT_MS;
	lim->max_header_bytes = CONF_DEFAULT_MAX_HEADER_BYTES;
	lim->max_body_bytes = CONF_DEFAULT_MAX_BODY_BYTES;
	lim->max_connections_per_department = 0;
	lim->max_requests_per_connection =
	    CONF_DEFAULT_MAX_REQUESTS_PER_CONNECTION;
	if (n == NULL)
		return;
	(void)ynode_map(d, n, conf_limits_keys, v, "limits");
	if (v[0] != NULL)
		max_ok = ynode_uint(d, v[0], "limits.max_connections", 1,
		             CONF_MAX_CONNECTIONS, &lim->max_connections) == 0;
	if (v[1] != NULL)
		(void)ynode_duration(d, v[1], "limits.header_timeout",
		    CONF_MIN_TIMEOUT_MS, CONF_MAX_HEAD_TIMEOUT_MS,
		    &lim->header_timeout_ms);
	if (v[2] != NULL)
		(void)ynode_duration(d, v[2], "limits.idle_timeout",
		    CONF_MIN_TIMEOUT_MS, CONF_MAX_TIMEOUT_MS,
		    &lim->idle_timeout_ms);
	if (v[3] != NULL)
		(void)ynode_duration(d, v[3], "limits.handshake_timeout",
		    CONF_MIN_TIMEOUT_MS, CONF_MAX_HEAD_TIMEOUT_MS,
		    &lim->handshake_timeout_ms);
	if (v[4] != NULL)
		(void)ynode_size(d, v[4], "limits.max_header_bytes",
		    CONF_MIN_HEADER_BYTES, CONF_MAX_HEADER_BYTES,
		    &lim->max_header_bytes);
	if (v[5] != NULL)
		(void)ynode_size(d, v[5], "limits.max_body_bytes", 0,
		    CONF_MAX_BODY_BYTES, &lim->max_body_bytes);
	/* One department may have every connection, never more. */
	if (v[6] != NULL &&
	    ynode_uint(d, v[6], "limits.max_connections_per_department", 0,
	        CONF_MAX_CONNECTIONS,
	        &lim->max_connections_per_department) == 0 &&
	    max_ok &&
	    lim->max_connections_per_department > lim->max_connections)
		ynode_error(d, v[6],
		    "limits.max_connections_per_department: %llu is above "
		    "limits.max_connections (%llu)",
		    (unsigned long long)lim->max_connections_per_department,
		    (unsigned long long)lim->max_connections);
	if (v[7] != NULL)
		(void)ynode_uint(d, v[7], "limits.max_requests_per_connection",
		    1, CONF_MAX_REQUESTS_PER_CONNECTION,
		    &lim->max_requests_per_connection);
}

static void
conf_parse_log(struct ynode_doc *d, struct conf *c, yaml_node_t *n)
{
	yaml_node_t *v[nitems(conf_log_keys)];
	const char *s;
	int e;

	c->log_level = xstrdup(CONF_DEFAULT_LOG_LEVEL);
	if (n == NULL)
		return;
	(void)ynode_map(d, n, conf_log_keys, v, "log");
	/* "-" keeps the log on stderr, as log_init() reads it. */
	if (v[0] != NULL && (s = ynode_str(d, v[0], "log.file")) != NULL &&
	    strcmp(s, "-") != 0)
		c->log_file = conf_path(d, c, v[0], "log.file");
	if (v[1] != NULL &&
	    conf_enum(d, v[1], "log.level", conf_log_level_names, &e) == 0) {
		free(c->log_level);
		c->log_level = xstrdup(conf_log_level_names[e]);
	}
}

/*
 * "Asia/Shanghai", "UTC", "+08:00": the name is opened under the zoneinfo
 * folder later, so refuse anything that could climb out of it.
 */
static int
conf_timezone_ok(const char *s)
{
	size_t i;

	if (*s == '\0' || *s == '/' || strlen(s) > CONF_MAX_TIMEZONE)
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] == '.' && (i == 0 || s[i - 1] == '/'))
			return 0;
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		        (s[i] >= 'A' && s[i] <= 'Z') ||
		        (s[i] >= '0' && s[i] <= '9') || s[i] == '/' ||
		        s[i] == '_' || s[i] == '-' || s[i] == '+' ||
		        s[i] == ':' || s[i] == '.'))
			return 0;
	}
	return s[i - 1] != '/';
}

static void
conf_parse_top(struct ynode_doc *d, struct conf *c, yaml_node_t **v)
{
	char host[256];
	const char *s;
	uint64_t w;
	struct stat st;

	if (v[CONF_K_NAME] != NULL &&
	    (s = ynode_str(d, v[CONF_K_NAME], "name")) != NULL) {
		if (!conf_ident_ok(s, CONF_MAX_NAME))
			ynode_error(d, v[CONF_K_NAME],
			    "name: \"%s\": use 1 to %d letters, digits, '.', "
			    "'_' or '-'",
			    s, CONF_MAX_NAME);
		else
			c->name = xstrdup(s);
	} else if (v[CONF_K_NAME] == NULL) {
		memset(host, 0, sizeof(host));
		if (gethostname(host, sizeof(host) - 1) == -1 ||
		    !conf_ident_ok(host, CONF_MAX_NAME))
			ynode_error(d, NULL,
			    "name: the host name is not a usable gateway name; "
			    "set name");
		else
			c->name = xstrdup(host);
	}

	if (v[CONF_K_WORKERS] != NULL &&
	    (s = ynode_str(d, v[CONF_K_WORKERS], "workers")) != NULL) {
		if (strcmp(s, "auto") == 0)
			c->workers = 0;
		else if (strspn(s, "0123456789") != strlen(s) || *s == '\0')
			ynode_error(d, v[CONF_K_WORKERS],
			    "workers: \"%s\" is not auto or a number from 1 to "
			    "%d",
			    s, CONF_MAX_WORKERS);
		else if (ynode_uint(d, v[CONF_K_WORKERS], "workers", 1,
		             CONF_MAX_WORKERS, &w) == 0)
			c->workers = (unsigned)w;
	}

	if (v[CONF_K_POLICY] != NULL) {
		c->policy_line = ynode_line(v[CONF_K_POLICY]);
		c->policy_col = ynode_col(v[CONF_K_POLICY]);
		c->policy = conf_path(d, c, v[CONF_K_POLICY], "policy");
	}
	/* Every command needs the policy, so a wrong path is a config error. */
	if (c->policy != NULL && stat(c->policy, &st) == -1)
		ynode_error(d, v[CONF_K_POLICY],
		    "policy: cannot access \"%s\": %s",
		    (const char *)v[CONF_K_POLICY]->data.scalar.value,
		    strerror(errno));
	else if (c->policy != NULL && !S_ISREG(st.st_mode) &&
	    !S_ISDIR(st.st_mode))
		ynode_error(d, v[CONF_K_POLICY],
		    "policy: \"%s\" is not a file or a folder",
		    (const char *)v[CONF_K_POLICY]->data.scalar.value);

	if (v[CONF_K_TIMEZONE] != NULL &&
	    (s = ynode_str(d, v[CONF_K_TIMEZONE], "timezone")) != NULL) {
		if (!conf_timezone_ok(s))
			ynode_error(d, v[CONF_K_TIMEZONE],
			    "timezone: \"%s\" is not a zone name (as "
			    "Asia/Shanghai, UTC or +08:00)",
			    s);
		else {
			c->timezone = xstrdup(s);
			c->timezone_line = ynode_line(v[CONF_K_TIMEZONE]);
			c->timezone_col = ynode_col(v[CONF_K_TIMEZONE]);
		}
	}
	if (c->timezone == NULL)
		c->timezone = xstrdup(CONF_DEFAULT_TIMEZONE);
}

/* Phase 2: checks across settings, once every node has been read. */
static void
conf_check(struct ynode_doc *d, struct conf *c)
{
	struct conf_listener *a, *b;
	size_t i, j;

	for (i = 0; i < c->nlisteners; i++) {
		a = &c->listeners[i];
		for (j = 0; j < i && a->name != NULL; j++) {
			b = &c->listeners[j];
			if (b->name != NULL && strcmp(a->name, b->name) == 0) {
				diag_error(d->dg, d->file, a->line, a->col,
				    "duplicate listener name \"%s\" (first at "
				    "line %zu)",
				    a->name, b->line);
				break;
			}
		}
		for (j = 0; j < i && a->address.text != NULL; j++) {
			b = &c->listeners[j];
			if (b->address.text != NULL &&
			    conf_addr_overlaps(&a->address, &b->address)) {
				diag_error(d->dg, d->file, a->address.line,
				    a->address.col,
				    "listener address \"%s\" collides with "
				    "\"%s\" (line %zu)",
				    a->address.text, b->address.text,
				    b->address.line);
				break;
			}
		}
		if (c->has_admin && a->address.text != NULL &&
		    conf_addr_overlaps(&c->admin, &a->address))
			diag_error(d->dg, d->file, c->admin.line, c->admin.col,
			    "admin.address \"%s\" collides with listener "
			    "address \"%s\" (line %zu)",
			    c->admin.text, a->address.text, a->address.line);
		/* Without a trusted list anyone could claim any source. */
		if (a->proxy_protocol && a->nproxy_trusted == 0)
			diag_error(d->dg, d->file, a->line, a->col,
			    "listener \"%s\": proxy_protocol needs "
			    "proxy_trusted (the balancers' networks)",
			    a->name ? a->name : "?");
		if (!a->proxy_protocol && a->nproxy_trusted > 0)
			diag_warn(d->dg, d->file, a->line, a->col,
			    "listener \"%s\": proxy_trusted is ignored without "
			    "proxy_protocol: true",
			    a->name ? a->name : "?");
	}
	if (c->has_audit && c->log_file != NULL && c->audit.path != NULL &&
	    strcmp(c->log_file, c->audit.path) == 0)
		diag_error(d->dg, d->file, 0, 0,
		    "log.file and audit.path name the same file");
	if (!c->has_audit)
		diag_warn(d->dg, d->file, 0, 0,
		    "no audit section: decisions will not be recorded");
}

/*
 * Load and validate govgate.yaml (contract section 3) in two phases: every
 * node is type-checked with all problems collected, then settings are
 * checked against each other. Returns an owned conf, or NULL with every
 * error in dg. Only the policy path is looked at on disk (stat).
 */
struct conf *
conf_load(const char *path, struct diag *dg)
{
	struct ynode_doc d;
	yaml_node_t *root, *v[CONF_K_N + 1];
	struct conf *c;
	char buf[PATH_MAX], real[PATH_MAX];
	size_t nerrors0 = dg->nerrors;
	char *slash;

	c = xcalloc(1, sizeof(*c));
	c->file = xstrdup(path);
	if (ynode_load(&d, path, CONF_MAX_FILE, dg) == -1)
		goto out;
	if (strlcpy(buf, path, sizeof(buf)) >= sizeof(buf)) {
		diag_error(dg, path, 0, 0, "path longer than %zu bytes",
		    sizeof(buf) - 1);
		goto out;
	}
	if ((slash = strrchr(buf, '/')) == NULL)
		strlcpy(buf, ".", sizeof(buf));
	else if (slash == buf)
		buf[1] = '\0';
	else
		*slash = '\0';
	if (realpath(buf, real) == NULL) {
		diag_error(dg, path, 0, 0, "cannot resolve its folder: %s",
		    strerror(errno));
		goto out;
	}
	c->dir = xstrdup(real);
	if ((root = ynode_root(&d)) == NULL) {
		diag_error(dg, path, 0, 0, "empty file");
		goto out;
	}
	if (ynode_map(&d, root, conf_top_keys, v, "config") == -1 &&
	    root->type != YAML_MAPPING_NODE)
		goto out;
	conf_parse_top(&d, c, v);
	conf_parse_listeners(&d, c, v[CONF_K_LISTENERS]);
	conf_parse_upstreams(&d, c, v[CONF_K_UPSTREAMS]);
	conf_parse_audit(&d, c, v[CONF_K_AUDIT]);
	conf_parse_geoip(&d, c, v[CONF_K_GEOIP]);
	conf_parse_admin(&d, c, v[CONF_K_ADMIN]);
	conf_parse_limits(&d, c, v[CONF_K_LIMITS]);
	conf_parse_log(&d, c, v[CONF_K_LOG]);
	conf_check(&d, c);
out:
	ynode_free(&d);
	if (dg->nerrors > nerrors0) {
		conf_free(c);
		return NULL;
	}
	return c;
}

static void
conf_listener_clear(struct conf_listener *l)
{
	free(l->name);
	conf_addr_clear(&l->address);
	free(l->proxy_trusted);
	free(l->tls.certificate);
	free(l->tls.key);
	free(l->tls.client_ca);
	free(l->tls.crl);
}

static void
conf_upstream_clear(struct conf_upstream *u)
{
	size_t i;

	free(u->name);
	for (i = 0; i < u->nservers; i++)
		conf_addr_clear(&u->servers[i]);
	free(u->servers);
	free(u->tls.ca);
	free(u->tls.certificate);
	free(u->tls.key);
	free(u->tls.server_name);
}

/* Free c and everything it owns; NULL is a no-op. */
void
conf_free(struct conf *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nlisteners; i++)
		conf_listener_clear(&c->listeners[i]);
	free(c->listeners);
	for (i = 0; i < c->nupstreams; i++)
		conf_upstream_clear(&c->upstreams[i]);
	free(c->upstreams);
	free(c->audit.path);
	free(c->audit.signing_key);
	free(c->audit.subject_key);
	free(c->geoip_country_db);
	free(c->geoip_zone_db);
	conf_addr_clear(&c->admin);
	free(c->file);
	free(c->dir);
	free(c->name);
	free(c->policy);
	free(c->timezone);
	free(c->log_file);
	free(c->log_level);
	free(c);
}
