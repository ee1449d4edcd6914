/* conf.h - govgate.yaml, the deployment config, as plain structs (pure). */
#ifndef CONF_H
#define CONF_H

#include <stddef.h>
#include <stdint.h>

struct diag;

/* Defaults and limits; contract section 3. */
#define CONF_DEFAULT_MAX_CONNECTIONS 10000
#define CONF_DEFAULT_HEADER_TIMEOUT_MS 10000
#define CONF_DEFAULT_IDLE_TIMEOUT_MS 60000
#define CONF_DEFAULT_HANDSHAKE_TIMEOUT_MS 10000
#define CONF_DEFAULT_MAX_HEADER_BYTES (16 * 1024)
#define CONF_DEFAULT_MAX_BODY_BYTES (16 * 1024 * 1024)
#define CONF_DEFAULT_MAX_REQUESTS_PER_CONNECTION 1000 /* as nginx */
#define CONF_DEFAULT_CONNECT_TIMEOUT_MS 2000
#define CONF_DEFAULT_READ_TIMEOUT_MS 30000
#define CONF_DEFAULT_CHECKPOINT_INTERVAL_MS 1000
#define CONF_DEFAULT_TIMEZONE "Asia/Shanghai"
#define CONF_MAX_WORKERS 256
#define CONF_MAX_LISTENERS 64
#define CONF_MAX_UPSTREAM_SERVERS 64
#define CONF_DEFAULT_PATH "/etc/govgate/govgate.yaml"
#define CONF_DEFAULT_LOG_LEVEL "info"
#define CONF_MAX_FILE (1024 * 1024) /* bytes of govgate.yaml */
#define CONF_MAX_NAME 253           /* gateway name: letters, digits, . _ - */
#define CONF_MAX_ID 64              /* listener and upstream names */
#define CONF_MAX_UPSTREAMS 1024
#define CONF_MAX_PROXY_TRUSTED 256
#define CONF_MAX_TIMEZONE 64
#define CONF_MAX_CONNECTIONS 1000000
#define CONF_MIN_HEADER_BYTES 1024
#define CONF_MAX_HEADER_BYTES (1024 * 1024)
#define CONF_MAX_BODY_BYTES (1024ULL * 1024 * 1024)
#define CONF_MAX_REQUESTS_PER_CONNECTION 1000000000
#define CONF_MIN_TIMEOUT_MS 10 /* every timeout and interval */
#define CONF_MAX_CONNECT_TIMEOUT_MS (5 * 60 * 1000)
#define CONF_MAX_TIMEOUT_MS (24 * 3600 * 1000ULL) /* read, idle */
#define CONF_MAX_HEAD_TIMEOUT_MS (10 * 60 * 1000) /* header, handshake */
#define CONF_MAX_CHECKPOINT_INTERVAL_MS (3600 * 1000)
#define CONF_DEFAULT_VERIFY_DEPTH 4 /* intermediates below a trusted root */
#define CONF_MAX_VERIFY_DEPTH 16

enum conf_client_auth {
	CONF_CLIENT_AUTH_REQUIRE = 0,
	CONF_CLIENT_AUTH_OPTIONAL,
};

enum conf_audit_sync {
	CONF_AUDIT_SYNC_FSYNC = 0,
	CONF_AUDIT_SYNC_WRITE,
};

/* A socket address as written, split into host and port. */
struct conf_addr {
	char *text; /* "0.0.0.0:8443", "[::]:8443" */
	char *host; /* "0.0.0.0", "::" (no brackets) */
	uint16_t port;
	size_t line, col; /* where it was written, for later errors */
};

struct conf_cidr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	uint8_t prefix;
};

struct conf_listener_tls {
	char *certificate; /* absolute paths (resolved against the file) */
	char *key;
	char *client_ca;
	char *crl; /* NULL: none */
	enum conf_client_auth client_auth;
	int min_version;  /* TLS1_2_VERSION or TLS1_3_VERSION */
	int verify_depth; /* intermediate CAs allowed in a client's chain */
};

struct conf_listener {
	char *name;
	size_t line, col; /* the listener's entry, for later errors */
	struct conf_addr address;
	int proxy_protocol;
	struct conf_cidr *proxy_trusted;
	size_t nproxy_trusted;
	struct conf_listener_tls tls;
};

struct conf_upstream_tls {
	char *ca;
	char *certificate; /* NULL: no client certificate */
	char *key;
	char *server_name; /* NULL: the server's host */
	int verify_depth;  /* intermediate CAs allowed in a server's chain */
};

struct conf_upstream {
	char *name;
	size_t line, col; /* its key under upstreams */
	struct conf_addr *servers;
	size_t nservers;
	int has_tls;
	struct conf_upstream_tls tls;
	uint64_t connect_timeout_ms;
	uint64_t read_timeout_ms;
};

struct conf_audit {
	char *path;
	char *signing_key; /* required: checkpoints are always signed */
	uint64_t checkpoint_interval_ms;
	enum conf_audit_sync sync;
	char *subject_key; /* NULL: no pseudonymisation */
};

struct conf_limits {
	uint64_t max_connections;
	uint64_t header_timeout_ms;
	uint64_t idle_timeout_ms;
	uint64_t handshake_timeout_ms;
	uint64_t max_header_bytes;
	uint64_t max_body_bytes;
	uint64_t max_connections_per_department; /* 0: no such limit */
	uint64_t max_requests_per_connection;    /* then Connection: close */
};

struct conf {
	char *file;       /* the config file as given */
	char *dir;        /* its folder: base of relative paths */
	char *name;       /* gateway name (default: host name) */
	unsigned workers; /* 0: auto (CPU cores) */
	char *policy;     /* absolute path of a file or folder */
	struct conf_listener *listeners;
	size_t nlisteners;
	struct conf_upstream *upstreams;
	size_t nupstreams;
	int has_audit;
	struct conf_audit audit;
	char *geoip_country_db; /* NULL: none */
	char *geoip_zone_db;    /* NULL: none */
	int has_admin;
	struct conf_addr admin;
	struct conf_limits limits;
	char *timezone;
	size_t policy_line, policy_col;     /* where policy was written */
	size_t timezone_line, timezone_col; /* 0: the default */
	char *log_file;                     /* NULL: stderr */
	char *log_level;                    /* "info" by default */
};

/*
 * Load and validate govgate.yaml. Returns an owned conf, or NULL with every
 * problem recorded in dg as file:line:col (warnings are recorded either
 * way). Files named by the config are not opened here (cmd_check and serve
 * load them); only the policy path must exist.
 */
struct conf *conf_load(const char *path, struct diag *dg);
void conf_free(struct conf *c);

const struct conf_upstream *conf_upstream_find(const struct conf *c,
    const char *name);
/* 1 when addr (AF_INET/AF_INET6 bytes) lies inside one of the CIDRs. */
int conf_cidr_match(const struct conf_cidr *v, size_t n, int family,
    const uint8_t *addr);
/* Parse "10.0.0.0/8", "::1/128" or a bare address. Returns 0 or -1. */
int conf_cidr_parse(const char *s, struct conf_cidr *out);

#endif /* CONF_H */
