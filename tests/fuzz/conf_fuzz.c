/*
 * conf_fuzz.c - fuzz conf_load on arbitrary govgate.yaml and check what a
 * loaded config promises: required fields set, ports and limits in range.
 */
#include "config.h"

#include <sys/stat.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "diag.h"
#include "fuzz.h"

#define CONF_FUZZ_MAX 65536 /* input bytes tried; larger adds nothing */

/*
 * A folder holding policy/tiny.yaml and policies/, the policy paths the
 * seeds name, so good configs load; made on the first input.
 */
static char conf_fuzz_dir[] = "/tmp/conf_fuzz.XXXXXX";
static char conf_fuzz_file[sizeof(conf_fuzz_dir) + 32];
static char conf_fuzz_subdir[sizeof(conf_fuzz_dir) + 32];
static char conf_fuzz_subdir2[sizeof(conf_fuzz_dir) + 32];

static void
conf_fuzz_cleanup(void)
{
	unlink(conf_fuzz_file);
	rmdir(conf_fuzz_subdir);
	rmdir(conf_fuzz_subdir2);
	rmdir(conf_fuzz_dir);
}

static void
conf_fuzz_setup(void)
{
	FILE *fp;

	if (mkdtemp(conf_fuzz_dir) == NULL)
		abort();
	snprintf(conf_fuzz_subdir, sizeof(conf_fuzz_subdir), "%s/policy",
	    conf_fuzz_dir);
	snprintf(conf_fuzz_subdir2, sizeof(conf_fuzz_subdir2), "%s/policies",
	    conf_fuzz_dir);
	snprintf(conf_fuzz_file, sizeof(conf_fuzz_file), "%s/policy/tiny.yaml",
	    conf_fuzz_dir);
	if (mkdir(conf_fuzz_subdir, 0700) == -1 ||
	    mkdir(conf_fuzz_subdir2, 0700) == -1)
		abort();
	if ((fp = fopen(conf_fuzz_file, "w")) == NULL)
		abort();
	fclose(fp);
	if (atexit(conf_fuzz_cleanup) != 0)
		abort();
}

/* A path the loader resolved: absolute, without a trailing '/'. */
static void
conf_fuzz_check_path(const char *s, int required)
{
	size_t len;

	if (s == NULL) {
		if (required)
			abort();
		return;
	}
	len = strlen(s);
	if (s[0] != '/' || (len > 1 && s[len - 1] == '/'))
		abort();
}

static void
conf_fuzz_check_addr(const struct conf_addr *a)
{
	if (a->text == NULL || a->host == NULL || a->host[0] == '\0' ||
	    a->port == 0)
		abort();
}

static void
conf_fuzz_check_limits(const struct conf_limits *l)
{
	if (l->max_connections < 1 || l->max_connections > CONF_MAX_CONNECTIONS)
		abort();
	if (l->header_timeout_ms < CONF_MIN_TIMEOUT_MS ||
	    l->header_timeout_ms > CONF_MAX_HEAD_TIMEOUT_MS ||
	    l->handshake_timeout_ms < CONF_MIN_TIMEOUT_MS ||
	    l->handshake_timeout_ms > CONF_MAX_HEAD_TIMEOUT_MS ||
	    l->idle_timeout_ms < CONF_MIN_TIMEOUT_MS ||
	    l->idle_timeout_ms > CONF_MAX_TIMEOUT_MS)
		abort();
	if (l->max_header_bytes < CONF_MIN_HEADER_BYTES ||
	    l->max_header_bytes > CONF_MAX_HEADER_BYTES ||
	    l->max_body_bytes > CONF_MAX_BODY_BYTES)
		abort();
}

/* What a loaded config promises its users (conf.h, contract section 3). */
static void
conf_fuzz_check(const struct conf *c)
{
	const struct conf_listener *l;
	const struct conf_upstream *u;
	size_t i, j;

	if (c->file == NULL || c->dir == NULL || c->dir[0] != '/')
		abort();
	if (c->name == NULL || c->name[0] == '\0' ||
	    strlen(c->name) > CONF_MAX_NAME)
		abort();
	if (c->workers > CONF_MAX_WORKERS)
		abort();
	conf_fuzz_check_path(c->policy, 1);
	if (c->nlisteners < 1 || c->nlisteners > CONF_MAX_LISTENERS ||
	    c->listeners == NULL)
		abort();
	for (i = 0; i < c->nlisteners; i++) {
		l = &c->listeners[i];
		if (l->name == NULL || strlen(l->name) > CONF_MAX_ID)
			abort();
		conf_fuzz_check_addr(&l->address);
		conf_fuzz_check_path(l->tls.certificate, 1);
		conf_fuzz_check_path(l->tls.key, 1);
		conf_fuzz_check_path(l->tls.client_ca, 1);
		conf_fuzz_check_path(l->tls.crl, 0);
		/* Without a trusted list anyone could claim any source. */
		if (l->proxy_protocol && l->nproxy_trusted == 0)
			abort();
		if (l->nproxy_trusted > CONF_MAX_PROXY_TRUSTED)
			abort();
	}
	if (c->nupstreams > CONF_MAX_UPSTREAMS)
		abort();
	for (i = 0; i < c->nupstreams; i++) {
		u = &c->upstreams[i];
		if (u->name == NULL || u->nservers < 1 ||
		    u->nservers > CONF_MAX_UPSTREAM_SERVERS)
			abort();
		for (j = 0; j < u->nservers; j++)
			conf_fuzz_check_addr(&u->servers[j]);
		if (u->has_tls) {
			conf_fuzz_check_path(u->tls.ca, 1);
			/* A client certificate always comes with its key. */
			if ((u->tls.certificate == NULL) !=
			    (u->tls.key == NULL))
				abort();
		}
		/* Names are unique, so a lookup finds this very upstream. */
		if (conf_upstream_find(c, u->name) != u)
			abort();
	}
	if (c->has_admin)
		conf_fuzz_check_addr(&c->admin);
	if (c->has_audit) {
		conf_fuzz_check_path(c->audit.path, 1);
		conf_fuzz_check_path(c->audit.signing_key, 1);
	}
	conf_fuzz_check_limits(&c->limits);
	/* The zone name is opened under the zoneinfo folder: no climbing. */
	if (c->timezone == NULL || c->timezone[0] == '\0' ||
	    c->timezone[0] == '/' || c->timezone[0] == '.' ||
	    strstr(c->timezone, "/.") != NULL)
		abort();
	if (c->log_level == NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[sizeof(conf_fuzz_dir) + 32];
	struct conf *c;
	struct diag dg;
	int fd;

	if (size > CONF_FUZZ_MAX)
		return 0;
	if (conf_fuzz_file[0] == '\0')
		conf_fuzz_setup();
	snprintf(path, sizeof(path), "%s/conf.XXXXXX", conf_fuzz_dir);
	if ((fd = mkstemp(path)) == -1)
		abort();
	if (write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	diag_init(&dg);
	c = conf_load(path, &dg);
	unlink(path);
	/* A refusal always says why; a success has no errors. */
	if (c == NULL && dg.nerrors == 0)
		abort();
	if (c != NULL && dg.nerrors != 0)
		abort();
	if (c != NULL)
		conf_fuzz_check(c);
	conf_free(c);
	diag_clear(&dg);
	return 0;
}
