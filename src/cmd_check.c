/* cmd_check.c - `govgate check`: load and validate everything serve would. */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "cmd.h"
#include "conf.h"
#include "diag.h"
#include "geo.h"
#include "policy.h"
#include "tlsctx.h"
#include "tz.h"

#define CMD_CHECK_MAX_KEY_FILE (64 * 1024) /* bytes of an audit key file */
#define CMD_CHECK_MIN_SUBJECT_KEY 32       /* bytes of HMAC key, at least */

static void
cmd_check_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: govgate check [-q] [-c FILE]\n"
	    "\n"
	    "Load and validate the configuration FILE (default: %s),\n"
	    "the policy it names, certificates, keys, CRLs, GeoIP databases\n"
	    "and the audit files, without binding a socket or writing a "
	    "file.\n"
	    "Every problem is printed to stderr as file:line:col: message,\n"
	    "warnings too. Exit 0 when usable (warnings allowed), 1 when "
	    "not,\n"
	    "2 on a usage error.\n"
	    "\n"
	    "  -c, --config FILE  the configuration file\n"
	    "  -q, --quiet        no \"configuration ok\" line; problems "
	    "only\n"
	    "  -h, --help         print this text\n",
	    CONF_DEFAULT_PATH);
}

/* A passphrase callback that gives none: key files must not prompt. */
static int
cmd_check_no_pass_cb(char *buf, int size, int rwflag, void *u)
{
	return 0;
}

/*
 * Open a secret file, as OpenSMTPD's check_file_secrecy: a regular file,
 * not accessible by group or others, at most CMD_CHECK_MAX_KEY_FILE bytes.
 * Returns the fd (size in *size), or -1 after recording why.
 */
static int
cmd_check_secret_open(struct diag *dg, const char *path, const char *what,
    off_t *size)
{
	struct stat st;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		diag_error(dg, path, 0, 0, "%s: cannot open: %s", what,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		diag_error(dg, path, 0, 0, "%s: %s", what, strerror(errno));
		goto err;
	}
	if (!S_ISREG(st.st_mode)) {
		diag_error(dg, path, 0, 0, "%s: not a regular file", what);
		goto err;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		diag_error(dg, path, 0, 0,
		    "%s: group or others may access it (mode %04o); chmod 600 "
		    "it",
		    what, (unsigned)(st.st_mode & 07777));
		goto err;
	}
	if (st.st_size > CMD_CHECK_MAX_KEY_FILE) {
		diag_error(dg, path, 0, 0, "%s: larger than %d bytes", what,
		    CMD_CHECK_MAX_KEY_FILE);
		goto err;
	}
	*size = st.st_size;
	return fd;
err:
	close(fd);
	return -1;
}

/* The checkpoint signing key: secret, PEM, Ed25519 (contract 6). */
static void
cmd_check_signing_key(struct diag *dg, const char *path)
{
	static const char what[] = "audit signing key";
	EVP_PKEY *pk = NULL;
	BIO *bio = NULL;
	char *buf = NULL;
	size_t len = 0;
	ssize_t nr;
	off_t size;
	int fd;

	if ((fd = cmd_check_secret_open(dg, path, what, &size)) == -1)
		return;
	if ((buf = calloc(1, (size_t)size + 1)) == NULL) {
		diag_error(dg, path, 0, 0, "%s: out of memory", what);
		goto out;
	}
	while (len < (size_t)size) {
		nr = read(fd, buf + len, (size_t)size - len);
		if (nr == -1 && errno == EINTR)
			continue;
		if (nr == -1) {
			diag_error(dg, path, 0, 0, "%s: read: %s", what,
			    strerror(errno));
			goto out;
		}
		if (nr == 0)
			break;
		len += (size_t)nr;
	}
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
		diag_error(dg, path, 0, 0, "%s: out of memory", what);
		goto out;
	}
	pk = PEM_read_bio_PrivateKey(bio, NULL, cmd_check_no_pass_cb, NULL);
	if (pk == NULL) {
		diag_error(dg, path, 0, 0,
		    "%s: not an unencrypted PEM private key (make one with "
		    "govgate audit keygen)",
		    what);
		goto out;
	}
	if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_ED25519)
		diag_error(dg, path, 0, 0, "%s: key type %s, not Ed25519", what,
		    EVP_PKEY_get0_type_name(pk) ? EVP_PKEY_get0_type_name(pk)
		                                : "unknown");
out:
	ERR_clear_error();
	EVP_PKEY_free(pk);
	BIO_free(bio);
	if (buf != NULL) {
		explicit_bzero(buf, (size_t)size + 1);
		free(buf);
	}
	close(fd);
}

/* The HMAC key for data subjects: secret and long enough; never read. */
static void
cmd_check_subject_key(struct diag *dg, const char *path)
{
	static const char what[] = "audit subject key";
	off_t size;
	int fd;

	if ((fd = cmd_check_secret_open(dg, path, what, &size)) == -1)
		return;
	if (size < CMD_CHECK_MIN_SUBJECT_KEY)
		diag_error(dg, path, 0, 0,
		    "%s: %lld bytes; at least %d are needed (head -c 32 "
		    "/dev/urandom)",
		    what, (long long)size, CMD_CHECK_MIN_SUBJECT_KEY);
	close(fd);
}

/*
 * A file serve appends to (audit trail, error log): its folder must exist
 * and be writable, and the file, when there, a writable regular file.
 */
static void
cmd_check_writable(struct diag *dg, const struct conf *c, const char *key,
    const char *path)
{
	char dir[4096], *slash;
	struct stat st;

	if (strlcpy(dir, path, sizeof(dir)) >= sizeof(dir)) {
		diag_error(dg, c->file, 0, 0, "%s: path too long", key);
		return;
	}
	if ((slash = strrchr(dir, '/')) == dir)
		dir[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	if (stat(dir, &st) == -1) {
		diag_error(dg, c->file, 0, 0, "%s: folder %s: %s", key, dir,
		    strerror(errno));
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		diag_error(dg, c->file, 0, 0, "%s: %s is not a folder", key,
		    dir);
		return;
	}
	if (stat(path, &st) == 0) {
		if (!S_ISREG(st.st_mode))
			diag_error(dg, c->file, 0, 0,
			    "%s: %s is not a regular file", key, path);
		else if (access(path, W_OK) == -1)
			diag_error(dg, c->file, 0, 0,
			    "%s: %s: not writable: %s", key, path,
			    strerror(errno));
	} else if (errno != ENOENT)
		diag_error(dg, c->file, 0, 0, "%s: %s: %s", key, path,
		    strerror(errno));
	else if (access(dir, W_OK | X_OK) == -1)
		diag_error(dg, c->file, 0, 0,
		    "%s: cannot create files in %s: %s", key, dir,
		    strerror(errno));
}

/* Every resource's upstream must be configured; unused ones are noted. */
static void
cmd_check_upstreams(struct diag *dg, const struct conf *c,
    const struct policy *p)
{
	const struct policy_resource *r;
	size_t i, j, n = policy_nresources(p);

	for (i = 0; i < n; i++) {
		r = policy_resource_at(p, i);
		if (r->upstream != NULL &&
		    conf_upstream_find(c, r->upstream) == NULL)
			diag_error(dg, c->file, 0, 0,
			    "policy resource \"%s\": upstream \"%s\" is not "
			    "defined under upstreams",
			    r->id, r->upstream);
	}
	for (j = 0; j < c->nupstreams; j++) {
		for (i = 0; i < n; i++) {
			r = policy_resource_at(p, i);
			if (r->upstream != NULL &&
			    strcmp(r->upstream, c->upstreams[j].name) == 0)
				break;
		}
		if (i == n)
			diag_warn(dg, c->file, c->upstreams[j].line,
			    c->upstreams[j].col,
			    "upstream \"%s\" is used by no policy resource",
			    c->upstreams[j].name);
	}
}

/*
 * Everything after the config itself, in the order serve loads it. Each
 * step records its problems in dg and the next runs anyway, so one run
 * lists every problem.
 */
static void
cmd_check_conf(struct diag *dg, const struct conf *c)
{
	struct policy_env env;
	struct policy *p = NULL;
	struct tz *z = NULL;
	struct geo *g = NULL;
	SSL_CTX *ctx;
	char err[256];
	size_t i;

	memset(&env, 0, sizeof(env));
	env.now = (int64_t)time(NULL);
	env.have_country_db = c->geoip_country_db != NULL;
	env.have_zone_db = c->geoip_zone_db != NULL;
	if ((z = tz_load(c->timezone, err, sizeof(err))) == NULL) {
		diag_error(dg, c->file, c->timezone_line, c->timezone_col,
		    "timezone: %s", err);
		/* Check the policy anyway, with dates read in UTC. */
		z = tz_load("UTC", err, sizeof(err));
	}
	if ((env.tz = z) != NULL &&
	    (p = policy_load(c->policy, &env, dg)) != NULL)
		cmd_check_upstreams(dg, c, p);

	for (i = 0; i < c->nlisteners; i++)
		if ((ctx = tlsctx_server_new(&c->listeners[i], env.now, dg)) !=
		    NULL)
			SSL_CTX_free(ctx);
	for (i = 0; i < c->nupstreams; i++)
		if (c->upstreams[i].has_tls &&
		    (ctx = tlsctx_upstream_new(&c->upstreams[i], env.now,
		         dg)) != NULL)
			SSL_CTX_free(ctx);

	if (c->geoip_country_db != NULL || c->geoip_zone_db != NULL) {
		g = geo_open(c->geoip_country_db, c->geoip_zone_db, dg);
		geo_free(g);
	}

	if (c->has_audit) {
		cmd_check_writable(dg, c, "audit.path", c->audit.path);
		cmd_check_signing_key(dg, c->audit.signing_key);
		if (c->audit.subject_key != NULL)
			cmd_check_subject_key(dg, c->audit.subject_key);
	}
	if (c->log_file != NULL)
		cmd_check_writable(dg, c, "log.file", c->log_file);

	policy_unref(p);
	tz_free(z);
}

/*
 * govgate check [-q] [-c FILE]: exit 0 when serve could start with FILE
 * (warnings allowed), 1 when not, 2 on a usage error. Problems go to
 * stderr, one per line, in the order found.
 */
int
cmd_check(int argc, char **argv)
{
	const char *file = CONF_DEFAULT_PATH;
	struct diag dg;
	struct conf *c;
	int i, quiet = 0, ret;

	if (cmd_wants_help(argc, argv)) {
		cmd_check_usage(stdout);
		return 0;
	}
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-q") == 0 ||
		    strcmp(argv[i], "--quiet") == 0)
			quiet = 1;
		else if (strcmp(argv[i], "-c") == 0 ||
		    strcmp(argv[i], "--config") == 0) {
			if (++i == argc) {
				fprintf(stderr,
				    "govgate check: %s needs a file\n\n",
				    argv[i - 1]);
				cmd_check_usage(stderr);
				return 2;
			}
			file = argv[i];
		} else if (strncmp(argv[i], "--config=", 9) == 0)
			file = argv[i] + 9;
		else {
			fprintf(stderr, "govgate check: unexpected \"%s\"\n\n",
			    argv[i]);
			cmd_check_usage(stderr);
			return 2;
		}
	}
	if (*file == '\0') {
		fprintf(stderr, "govgate check: empty file name\n\n");
		cmd_check_usage(stderr);
		return 2;
	}

	diag_init(&dg);
	if ((c = conf_load(file, &dg)) != NULL)
		cmd_check_conf(&dg, c);
	diag_print(&dg, stderr);
	if (dg.nerrors > 0) {
		ret = 1;
		fprintf(stderr, "%s: %zu error%s, %zu warning%s\n", file,
		    dg.nerrors, dg.nerrors == 1 ? "" : "s", dg.nwarnings,
		    dg.nwarnings == 1 ? "" : "s");
	} else {
		ret = 0;
		if (!quiet && dg.nwarnings > 0)
			printf("%s: configuration ok, %zu warning%s\n", file,
			    dg.nwarnings, dg.nwarnings == 1 ? "" : "s");
		else if (!quiet)
			printf("%s: configuration ok\n", file);
	}
	conf_free(c);
	diag_clear(&dg);
	return ret;
}
