/* offline.h - one request built by hand, for explain and policy test. */
#ifndef OFFLINE_H
#define OFFLINE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "geo.h"
#include "peer.h"
#include "policy.h"

#define OFFLINE_MAX_HEADERS 64
#define OFFLINE_MAX_HEADER 8192 /* bytes of one "Name: value" */

struct offline_header {
	char *name;
	char *value;
};

/* A request as `serve` would see it after parsing, built from text. */
struct offline_req {
	char method[16];
	char *target;    /* as given: path and query */
	size_t path_len; /* bytes of target before '?' */
	int malformed;   /* the request line would not parse */
	struct offline_header headers[OFFLINE_MAX_HEADERS];
	size_t nheaders;
	struct peer peer; /* zero: no certificate */
	int cert_optional;
	int have_from;
	char from[64];
	struct geo_info geo;
	int64_t at_sec;
	int32_t at_nsec;
	char norm[POLICY_MAX_PATH + 1];
};

void offline_init(struct offline_req *r);
void offline_clear(struct offline_req *r);
/* "GET /path?query". Returns 0, or -1 with a reason (usage errors only). */
int offline_set_request(struct offline_req *r, const char *line, char *err,
    size_t errlen);
/* "Name: value". Returns 0 or -1 with a reason. */
int offline_add_header(struct offline_req *r, const char *nameval, char *err,
    size_t errlen);
int offline_set_header(struct offline_req *r, const char *name,
    const char *value, char *err, size_t errlen);
/* The first certificate of a PEM file. Returns 0 or -1 with a reason. */
int offline_load_cert(struct offline_req *r, const char *path, char *err,
    size_t errlen);
/* Source address looked up in the gateway's databases. */
int offline_set_from(struct offline_req *r, const struct geo *g, const char *ip,
    char *err, size_t errlen);
/* RFC 3339 clock. Returns 0 or -1 with a reason. */
int offline_set_at(struct offline_req *r, const char *s, char *err,
    size_t errlen);
const char *offline_header(const struct offline_req *r, const char *name);
/* Remove every header named name (case-insensitive). */
void offline_unset_header(struct offline_req *r, const char *name);

/* Fill in from r for p; in borrows r's memory. */
void offline_input(struct offline_req *r, const struct policy *p,
    struct policy_input *in);

/* Write s as a JSON string (quoted, escaped) to fp. */
void offline_json_str(FILE *fp, const char *s);

#endif /* OFFLINE_H */
