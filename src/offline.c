/* offline.c - one request built by hand, for explain and policy test. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "geo.h"
#include "offline.h"
#include "peer.h"
#include "policy.h"
#include "tz.h"
#include "xmalloc.h"

void
offline_init(struct offline_req *r)
{
	struct timespec ts;

	memset(r, 0, sizeof(*r));
	clock_gettime(CLOCK_REALTIME, &ts);
	r->at_sec = ts.tv_sec;
	r->at_nsec = (int32_t)ts.tv_nsec;
}

void
offline_clear(struct offline_req *r)
{
	size_t i;

	free(r->target);
	for (i = 0; i < r->nheaders; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	memset(r, 0, sizeof(*r));
}

static int
offline_is_tchar(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

/*
 * The request line as `METHOD TARGET`. What the HTTP parser would refuse
 * (a method that is not a token, a target with spaces, controls or bytes
 * above 0x7E, anything but origin-form) makes the request malformed, so
 * it is decided as bad_request exactly like serve would.
 */
int
offline_set_request(struct offline_req *r, const char *line, char *err,
    size_t errlen)
{
	const char *sp, *t, *q;
	size_t mlen;

	if ((sp = strchr(line, ' ')) == NULL) {
		snprintf(err, errlen, "request \"%s\" is not METHOD PATH",
		    line);
		return -1;
	}
	mlen = (size_t)(sp - line);
	if (mlen == 0 || mlen >= sizeof(r->method)) {
		snprintf(err, errlen, "request \"%s\": bad method", line);
		return -1;
	}
	memcpy(r->method, line, mlen);
	r->method[mlen] = '\0';
	for (t = r->method; *t; t++)
		if (!offline_is_tchar((unsigned char)*t))
			r->malformed = 1;
	free(r->target);
	r->target = xstrdup(sp + 1);
	if (strlen(r->target) > POLICY_MAX_PATH) {
		snprintf(err, errlen, "request target longer than %d bytes",
		    POLICY_MAX_PATH);
		return -1;
	}
	for (t = r->target; *t; t++)
		if ((unsigned char)*t <= 0x20 || (unsigned char)*t >= 0x7F)
			r->malformed = 1;
	if (r->target[0] != '/')
		r->malformed = 1;
	q = strchr(r->target, '?');
	r->path_len = q ? (size_t)(q - r->target) : strlen(r->target);
	return 0;
}

int
offline_set_header(struct offline_req *r, const char *name, const char *value,
    char *err, size_t errlen)
{
	const char *c;

	if (r->nheaders == OFFLINE_MAX_HEADERS) {
		snprintf(err, errlen, "more than %d headers",
		    OFFLINE_MAX_HEADERS);
		return -1;
	}
	if (*name == '\0') {
		snprintf(err, errlen, "empty header name");
		return -1;
	}
	for (c = name; *c; c++)
		if (!offline_is_tchar((unsigned char)*c)) {
			snprintf(err, errlen,
			    "header name \"%s\" is not a token", name);
			return -1;
		}
	for (c = value; *c; c++)
		if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7F) {
			snprintf(err, errlen,
			    "header \"%s\": control character in value", name);
			return -1;
		}
	if (strlen(name) + strlen(value) > OFFLINE_MAX_HEADER) {
		snprintf(err, errlen, "header \"%s\" too long", name);
		return -1;
	}
	r->headers[r->nheaders].name = xstrdup(name);
	r->headers[r->nheaders].value = xstrdup(value);
	r->nheaders++;
	return 0;
}

/* "Name: value" with optional whitespace around the value. */
int
offline_add_header(struct offline_req *r, const char *nameval, char *err,
    size_t errlen)
{
	const char *colon = strchr(nameval, ':'), *v, *e;
	char name[256], value[OFFLINE_MAX_HEADER + 1];
	size_t nlen, vlen;

	if (colon == NULL || colon == nameval) {
		snprintf(err, errlen, "header \"%s\" is not Name: value",
		    nameval);
		return -1;
	}
	nlen = (size_t)(colon - nameval);
	if (nlen >= sizeof(name)) {
		snprintf(err, errlen, "header name too long");
		return -1;
	}
	memcpy(name, nameval, nlen);
	name[nlen] = '\0';
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	for (e = v + strlen(v); e > v && (e[-1] == ' ' || e[-1] == '\t'); e--)
		;
	vlen = (size_t)(e - v);
	if (vlen >= sizeof(value)) {
		snprintf(err, errlen, "header \"%s\" too long", name);
		return -1;
	}
	memcpy(value, v, vlen);
	value[vlen] = '\0';
	return offline_set_header(r, name, value, err, errlen);
}

/* The first header named name (case-insensitive), or NULL. */
const char *
offline_header(const struct offline_req *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

void
offline_unset_header(struct offline_req *r, const char *name)
{
	size_t i, o = 0;

	for (i = 0; i < r->nheaders; i++) {
		if (strcasecmp(r->headers[i].name, name) == 0) {
			free(r->headers[i].name);
			free(r->headers[i].value);
			continue;
		}
		r->headers[o++] = r->headers[i];
	}
	r->nheaders = o;
}

int
offline_load_cert(struct offline_req *r, const char *path, char *err,
    size_t errlen)
{
	X509 *x = NULL;
	FILE *fp = NULL;
	char why[256];
	int ret = -1;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if ((x = PEM_read_X509(fp, NULL, NULL, NULL)) == NULL) {
		snprintf(err, errlen, "%s: no PEM certificate", path);
		ERR_clear_error();
		goto out;
	}
	memset(&r->peer, 0, sizeof(r->peer));
	if (peer_from_cert(x, &r->peer, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: %s", path, why);
		goto out;
	}
	ret = 0;
out:
	X509_free(x);
	if (fp != NULL)
		fclose(fp);
	return ret;
}

int
offline_set_from(struct offline_req *r, const struct geo *g, const char *ip,
    char *err, size_t errlen)
{
	if (strlen(ip) >= sizeof(r->from) ||
	    geo_lookup_str(g, ip, &r->geo) == -1) {
		snprintf(err, errlen, "\"%s\" is not an IP address", ip);
		return -1;
	}
	snprintf(r->from, sizeof(r->from), "%s", ip);
	r->have_from = 1;
	return 0;
}

int
offline_set_at(struct offline_req *r, const char *s, char *err, size_t errlen)
{
	if (tz_parse_rfc3339(s, &r->at_sec, &r->at_nsec) == -1) {
		snprintf(err, errlen,
		    "\"%s\" is not an RFC 3339 time like "
		    "2026-11-25T10:00:00+08:00",
		    s);
		return -1;
	}
	return 0;
}

void
offline_input(struct offline_req *r, const struct policy *p,
    struct policy_input *in)
{
	const char *v;

	memset(in, 0, sizeof(*in));
	in->method = r->method;
	in->method_len = strlen(r->method);
	in->path = r->target ? r->target : "";
	in->path_len = r->target ? r->path_len : 0;
	in->malformed = r->malformed;
	in->peer = &r->peer;
	in->cert_optional = r->cert_optional;
	in->country = r->geo.country[0] ? r->geo.country : NULL;
	in->zone = r->geo.zone[0] ? r->geo.zone : NULL;
	if ((v = offline_header(r, policy_purpose_header(p))) != NULL) {
		in->purpose = v;
		in->purpose_len = strlen(v);
	}
	if ((v = offline_header(r, policy_case_header(p))) != NULL) {
		in->case_id = v;
		in->case_len = strlen(v);
	}
	in->now_sec = r->at_sec;
	in->now_nsec = r->at_nsec;
	in->norm = r->norm;
	in->normsz = sizeof(r->norm);
}

void
offline_json_str(FILE *fp, const char *s)
{
	const unsigned char *c;

	if (s == NULL) {
		fputs("null", fp);
		return;
	}
	fputc('"', fp);
	for (c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\')
			fprintf(fp, "\\%c", *c);
		else if (*c < 0x20 || *c == 0x7F)
			fprintf(fp, "\\u%04x", *c);
		else
			fputc(*c, fp);
	}
	fputc('"', fp);
}
