/* cmd_audit.c - `govgate audit keygen|verify|query` for compliance staff. */
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

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "audit.h"
#include "cmd.h"
#include "compat.h"
#include "json.h"
#include "tz.h"

#define CMD_AUDIT_MAX_KNOWN 64 /* --known-checkpoint options */
#define CMD_AUDIT_TOKENS 1024

static const char cmd_audit_usage[] =
    "usage: govgate audit keygen --out PREFIX\n"
    "       govgate audit verify [--pubkey PEM] [--known-checkpoint FILE]...\n"
    "                            [--require-sealed] [--allow-torn-tail]\n"
    "                            [--partial] FILE...\n"
    "       govgate audit query [filters] [--json] FILE...\n"
    "\n"
    "Tools for the audit trail (JSON Lines, one hash-chained record per\n"
    "line, signed checkpoints). Run 'govgate audit COMMAND --help' for "
    "details.\n";

static const char cmd_audit_keygen_usage[] =
    "usage: govgate audit keygen --out PREFIX\n"
    "\n"
    "Make an Ed25519 key pair for signing audit checkpoints:\n"
    "  PREFIX.key  the private key (PEM PKCS#8, mode 0600) for the gateway's\n"
    "              audit.signing_key\n"
    "  PREFIX.pub  the public key (PEM SubjectPublicKeyInfo) for\n"
    "              'govgate audit verify --pubkey'\n"
    "Existing files are never overwritten. Prints the key_id (the first 16\n"
    "hex digits of SHA-256 of the public key's DER), which checkpoints\n"
    "carry.\n"
    "\n"
    "exit status: 0 written, 1 error, 2 usage\n";

static const char cmd_audit_verify_usage[] =
    "usage: govgate audit verify [--pubkey PEM] [--known-checkpoint FILE]...\n"
    "                            [--require-sealed] [--allow-torn-tail]\n"
    "                            [--partial] FILE...\n"
    "\n"
    "Verify audit files, given oldest first, as one chain: every line is a\n"
    "well-formed record (strict JSON, the event's keys in order), seq\n"
    "counts up by one from 1, each prev is the previous record's hash, and\n"
    "each hash is SHA-256(\"govgate-audit-v1\\n\" || the line up to "
    ",\"hash\").\n"
    "The first problem is reported as FILE:LINE: why, and verification stops.\n"
    "\n"
    "  --pubkey PEM       check every checkpoint's key_id and Ed25519\n"
    "                     signature; without it they are reported as not\n"
    "                     checked, and a chain recomputed by someone without\n"
    "                     the key goes unnoticed\n"
    "  --known-checkpoint FILE\n"
    "                     checkpoint lines copied elsewhere (e.g. by a\n"
    "                     monitoring system); each must be in the log with\n"
    "                     the same hash, else rollback or truncation\n"
    "  --require-sealed   fail when records follow the last checkpoint\n"
    "                     (use on closed logs: the gateway ends each run\n"
    "                     with a checkpoint)\n"
    "  --allow-torn-tail  accept a torn final line (a crash mid-write) in\n"
    "                     the last file; it is still reported\n"
    "  --partial          the first file may start later in the chain\n"
    "                     (older files archived); its first prev and seq\n"
    "                     are taken as given\n"
    "\n"
    "Records after the last checkpoint are reported as unsealed: without a\n"
    "newer known checkpoint, deleting them cannot be detected.\n"
    "\n"
    "exit status: 0 intact, 1 a bad record, a torn tail or an unreadable\n"
    "file, 2 usage\n";

static const char cmd_audit_query_usage[] =
    "usage: govgate audit query [--department D] [--resource R] [--grant G]\n"
    "                           [--decision allow|deny] [--reason R]\n"
    "                           [--since TIME] [--until TIME]\n"
    "                           [--request-id ID] [--event EVENT]\n"
    "                           [--subject VALUE --subject-key FILE]\n"
    "                           [--json] FILE...\n"
    "\n"
    "List the decision and complete records that match every filter given,\n"
    "as a table, or with --json the matching lines exactly as written.\n"
    "\n"
    "  --department, --resource, --grant, --decision, --reason, --subject\n"
    "                     match decision records; a complete record matches\n"
    "                     when its decision record (same request_id, read\n"
    "                     earlier) did\n"
    "  --since, --until   RFC 3339 times (2026-11-28T10:00:00+08:00); since\n"
    "                     is inclusive, until exclusive; applied to each\n"
    "                     record's own ts\n"
    "  --request-id ID    records of one request\n"
    "  --event EVENT      list records of this event instead (checkpoint,\n"
    "                     start, stop, policy_loaded, reopen, ...)\n"
    "  --subject VALUE --subject-key FILE\n"
    "                     records about one data subject: matches\n"
    "                     subject_ref = hex HMAC-SHA256(key, VALUE)\n"
    "\n"
    "query does not verify the chain: run 'govgate audit verify' first.\n"
    "Lines that are not records are reported on stderr and skipped.\n"
    "\n"
    "exit status: 0 done (even with no match), 1 unreadable file or bad\n"
    "subject key, 2 usage\n";

/* "--name VALUE" or "--name=VALUE" at argv[*i]; NULL when not this name. */
static const char *
cmd_audit_opt(int argc, char **argv, int *i, const char *name, int *bad)
{
	size_t n = strlen(name);
	const char *a = argv[*i];

	if (strncmp(a, name, n) != 0)
		return NULL;
	if (a[n] == '=')
		return a + n + 1;
	if (a[n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		fprintf(stderr, "govgate audit: %s needs a value\n", name);
		*bad = 1;
		return NULL;
	}
	return argv[++*i];
}

/* Keys. */

static int
cmd_audit_create(const char *path, mode_t mode, FILE **fpp)
{
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    mode);
	if (fd < 0) {
		fprintf(stderr, "govgate audit keygen: %s: %s%s\n", path,
		    strerror(errno),
		    errno == EEXIST ? " (refusing to overwrite)" : "");
		return -1;
	}
	if (fchmod(fd, mode) < 0 || (*fpp = fdopen(fd, "w")) == NULL) {
		fprintf(stderr, "govgate audit keygen: %s: %s\n", path,
		    strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	return 0;
}

static int
cmd_audit_keygen(int argc, char **argv)
{
	char keypath[4096], pubpath[4096], kid[AUDIT_KEY_ID_LEN + 1];
	const char *out = NULL, *v;
	EVP_PKEY *key = NULL;
	FILE *kf = NULL, *pf = NULL;
	int i, bad = 0, ret = 1, made_key = 0;

	for (i = 1; i < argc; i++) {
		if ((v = cmd_audit_opt(argc, argv, &i, "--out", &bad)) != NULL)
			out = v;
		else {
			if (!bad)
				fprintf(stderr,
				    "govgate audit keygen: unknown argument "
				    "\"%s\"\n",
				    argv[i]);
			bad = 1;
			break;
		}
	}
	if (bad || out == NULL || *out == '\0') {
		fputs(cmd_audit_keygen_usage, stderr);
		return 2;
	}
	if ((size_t)snprintf(keypath, sizeof(keypath), "%s.key", out) >=
	        sizeof(keypath) ||
	    (size_t)snprintf(pubpath, sizeof(pubpath), "%s.pub", out) >=
	        sizeof(pubpath)) {
		fprintf(stderr, "govgate audit keygen: PREFIX too long\n");
		return 2;
	}
	if (access(pubpath, F_OK) == 0) {
		fprintf(stderr,
		    "govgate audit keygen: %s exists (refusing to overwrite)\n",
		    pubpath);
		return 1;
	}
	if ((key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL ||
	    audit_key_id(key, kid) < 0) {
		fprintf(stderr, "govgate audit keygen: cannot make a key\n");
		goto out;
	}
	if (cmd_audit_create(keypath, 0600, &kf) < 0)
		goto out;
	made_key = 1;
	if (PEM_write_PrivateKey(kf, key, NULL, NULL, 0, NULL, NULL) != 1 ||
	    fflush(kf) != 0 || fsync(fileno(kf)) != 0) {
		fprintf(stderr, "govgate audit keygen: %s: write failed\n",
		    keypath);
		goto out;
	}
	if (cmd_audit_create(pubpath, 0644, &pf) < 0)
		goto out;
	if (PEM_write_PUBKEY(pf, key) != 1 || fflush(pf) != 0) {
		fprintf(stderr, "govgate audit keygen: %s: write failed\n",
		    pubpath);
		fclose(pf);
		pf = NULL;
		unlink(pubpath);
		goto out;
	}
	printf("wrote %s (private: keep it secret) and %s\nkey_id: %s\n",
	    keypath, pubpath, kid);
	ret = 0;
out:
	if (kf != NULL && fclose(kf) != 0)
		ret = 1;
	if (pf != NULL && fclose(pf) != 0)
		ret = 1;
	if (ret != 0 && made_key)
		unlink(keypath);
	EVP_PKEY_free(key);
	return ret;
}

/* Verification. */

static int
cmd_audit_verify(int argc, char **argv)
{
	const char *known[CMD_AUDIT_MAX_KNOWN], *pubpath = NULL, *v;
	struct audit_verify av;
	EVP_PKEY *pub = NULL;
	char err[1024];
	int i, nknown = 0, require_sealed = 0, allow_torn = 0, partial = 0;
	int first = 0, bad = 0, ret = 1;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			first = i + 1;
			break;
		}
		if (argv[i][0] != '-' || argv[i][1] == '\0') {
			first = i;
			break;
		}
		if ((v = cmd_audit_opt(argc, argv, &i, "--pubkey", &bad)) !=
		    NULL)
			pubpath = v;
		else if ((v = cmd_audit_opt(argc, argv, &i,
		              "--known-checkpoint", &bad)) != NULL) {
			if (nknown == CMD_AUDIT_MAX_KNOWN) {
				fprintf(stderr,
				    "govgate audit verify: too "
				    "many --known-checkpoint\n");
				return 2;
			}
			known[nknown++] = v;
		} else if (bad)
			break;
		else if (strcmp(argv[i], "--require-sealed") == 0)
			require_sealed = 1;
		else if (strcmp(argv[i], "--allow-torn-tail") == 0)
			allow_torn = 1;
		else if (strcmp(argv[i], "--partial") == 0)
			partial = 1;
		else {
			fprintf(stderr,
			    "govgate audit verify: unknown option \"%s\"\n",
			    argv[i]);
			bad = 1;
			break;
		}
	}
	if (bad || first == 0 || first >= argc) {
		if (!bad)
			fprintf(stderr, "govgate audit verify: no FILE\n");
		fputs(cmd_audit_verify_usage, stderr);
		return 2;
	}
	if (pubpath != NULL &&
	    (pub = audit_key_load_public(pubpath, err, sizeof(err))) == NULL) {
		fprintf(stderr, "govgate audit verify: %s\n", err);
		return 1;
	}
	memset(&av, 0, sizeof(av));
	av.pubkey = pub;
	av.partial = partial;
	if (audit_verify_init(&av, err, sizeof(err)) < 0) {
		fprintf(stderr, "govgate audit verify: %s\n", err);
		EVP_PKEY_free(pub);
		return 1;
	}
	for (i = 0; i < nknown; i++)
		if (audit_verify_known(&av, known[i]) < 0)
			goto out;
	for (i = first; i < argc; i++)
		if (audit_verify_file(&av, argv[i], i == argc - 1) < 0)
			goto out;
	if (audit_verify_finish(&av) < 0)
		goto out;
	if (av.torn_bytes > 0 && !allow_torn) {
		fprintf(stderr,
		    "%s: torn tail (crash?): %zu bytes without a final "
		    "newline\n",
		    av.torn_at, av.torn_bytes);
		goto out;
	}
	if (av.unsealed > 0 && require_sealed) {
		if (av.sealed_seq > 0)
			fprintf(stderr,
			    "%s: %llu records after the last checkpoint at %s "
			    "are unsealed\n",
			    av.last_at, (unsigned long long)av.unsealed,
			    av.sealed_at);
		else
			fprintf(stderr,
			    "%s: no checkpoint: all %llu records are "
			    "unsealed\n",
			    av.last_at, (unsigned long long)av.unsealed);
		goto out;
	}
	if (av.torn_bytes > 0)
		printf("note: torn tail (crash?) at %s: %zu bytes without a "
		       "final newline\n",
		    av.torn_at, av.torn_bytes);
	if (av.partial && av.nrecords > 0)
		printf("note: the chain starts at seq %llu (earlier records "
		       "not given)\n",
		    (unsigned long long)av.first_seq);
	if (av.nknown_before > 0)
		printf("note: %llu known checkpoints precede the first record "
		       "and were not compared\n",
		    (unsigned long long)av.nknown_before);
	if (pub == NULL && av.ncheckpoints > 0)
		printf("note: checkpoint signatures not checked (no "
		       "--pubkey)\n");
	if (av.ts_backwards > 0)
		printf("note: ts goes backwards at %llu records, first at %s "
		       "(clock change?)\n",
		    (unsigned long long)av.ts_backwards, av.ts_backwards_at);
	if (av.unsealed > 0) {
		if (av.sealed_seq > 0)
			printf("note: %llu records after the last checkpoint "
			       "at %s are unsealed\n",
			    (unsigned long long)av.unsealed, av.sealed_at);
		else
			printf("note: no checkpoint: all %llu records are "
			       "unsealed\n",
			    (unsigned long long)av.unsealed);
	}
	if (av.sealed_seq > 0)
		printf("ok: %llu records in %llu files, %llu checkpoints, last "
		       "sealed at seq %llu\n",
		    (unsigned long long)av.nrecords,
		    (unsigned long long)av.nfiles,
		    (unsigned long long)av.ncheckpoints,
		    (unsigned long long)av.sealed_seq);
	else
		printf("ok: %llu records in %llu files, 0 checkpoints, none "
		       "sealed\n",
		    (unsigned long long)av.nrecords,
		    (unsigned long long)av.nfiles);
	ret = 0;
out:
	if (av.failed)
		fprintf(stderr, "%s\n", av.error);
	audit_verify_clear(&av);
	EVP_PKEY_free(pub);
	return ret;
}

/* Query. */

struct cmd_audit_query {
	const char *department, *resource, *grant, *decision, *reason;
	const char *request_id, *event;
	char subject_ref[AUDIT_HEX_LEN + 1];
	int has_subject;
	int has_since, has_until;
	int64_t since_sec, until_sec;
	int32_t since_nsec, until_nsec;
	int json;
	int dfilter; /* a filter on decision fields is set */
	/* request_ids of matching decisions: an open-addressing set */
	char **ids;
	size_t nids, capids;
	uint64_t shown, skipped;
};

static uint64_t
cmd_audit_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static int
cmd_audit_ids_has(const struct cmd_audit_query *q, const char *id)
{
	size_t i;

	if (q->capids == 0)
		return 0;
	for (i = cmd_audit_hash(id) & (q->capids - 1); q->ids[i] != NULL;
	     i = (i + 1) & (q->capids - 1))
		if (strcmp(q->ids[i], id) == 0)
			return 1;
	return 0;
}

static int
cmd_audit_ids_add(struct cmd_audit_query *q, const char *id)
{
	char **old = q->ids, **nw;
	size_t oldcap = q->capids, cap, i, j;

	if (cmd_audit_ids_has(q, id))
		return 0;
	if (2 * (q->nids + 1) > q->capids) {
		cap = oldcap ? 2 * oldcap : 1024;
		if ((nw = calloc(cap, sizeof(*nw))) == NULL)
			return -1;
		for (i = 0; i < oldcap; i++) {
			if (old[i] == NULL)
				continue;
			for (j = cmd_audit_hash(old[i]) & (cap - 1);
			     nw[j] != NULL; j = (j + 1) & (cap - 1))
				;
			nw[j] = old[i];
		}
		free(old);
		q->ids = nw;
		q->capids = cap;
	}
	for (j = cmd_audit_hash(id) & (q->capids - 1); q->ids[j] != NULL;
	     j = (j + 1) & (q->capids - 1))
		;
	if ((q->ids[j] = strdup(id)) == NULL)
		return -1;
	q->nids++;
	return 0;
}

/* The decoded string at a path of keys (NULL-terminated), or NULL. */
static const char *
cmd_audit_get(const char *line, const struct json_tok *t, char *buf, size_t cap,
    const char *k1, const char *k2)
{
	int v;

	v = json_obj_get(line, t, 0, k1);
	if (v >= 0 && k2 != NULL)
		v = json_obj_get(line, t, v, k2);
	if (v < 0 || t[v].type != JSON_STRING)
		return NULL;
	json_str_get(line, &t[v], buf, cap);
	return buf;
}

static int
cmd_audit_eq(const char *line, const struct json_tok *t, const char *k1,
    const char *k2, const char *want)
{
	int v;

	v = json_obj_get(line, t, 0, k1);
	if (v >= 0 && k2 != NULL)
		v = json_obj_get(line, t, v, k2);
	return v >= 0 && json_str_eq(line, &t[v], want, strlen(want));
}

/* A table cell: controls shown as '?', empty as '-'. */
static void
cmd_audit_cell(const char *s, int width)
{
	char buf[256];
	size_t i, n;

	if (s == NULL || *s == '\0')
		s = "-";
	n = strlen(s);
	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	for (i = 0; i < n; i++)
		buf[i] =
		    ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	buf[n] = '\0';
	if (width > 0)
		printf("%-*s ", width, buf);
	else
		printf("%s\n", buf);
}

/* Decide on one line, print it when it matches. */
static void
cmd_audit_query_line(struct cmd_audit_query *q, const char *file,
    unsigned long long ln, const char *line, size_t len, struct json_tok *t)
{
	static const struct json_opts jo = { 8, 0, 0 };
	char ev[32], ts[64], rid[AUDIT_ID_MAX * 2], b1[512], b2[512];
	char b3[512], b4[64], b5[512], b6[AUDIT_PATH_MAX + 8];
	const char *dep, *res, *gr, *dec, *rsn, *tail;
	struct json_err je;
	int64_t sec;
	int32_t nsec;
	int isdec, iscomp, v, match;

	if (json_parse(line, len, t, CMD_AUDIT_TOKENS, &jo, &je) < 0 ||
	    t[0].type != JSON_OBJECT ||
	    cmd_audit_get(line, t, ev, sizeof(ev), "event", NULL) == NULL ||
	    cmd_audit_get(line, t, ts, sizeof(ts), "ts", NULL) == NULL ||
	    tz_parse_rfc3339(ts, &sec, &nsec) < 0) {
		fprintf(stderr, "%s:%llu: not a record, skipped\n", file, ln);
		q->skipped++;
		return;
	}
	isdec = strcmp(ev, "decision") == 0;
	iscomp = strcmp(ev, "complete") == 0;
	if (q->event != NULL ? strcmp(ev, q->event) != 0 : !isdec && !iscomp)
		return;
	if (cmd_audit_get(line, t, rid, sizeof(rid), "request_id", NULL) ==
	    NULL)
		rid[0] = '\0';
	if (isdec) {
		match = 1;
		if (q->department != NULL &&
		    !cmd_audit_eq(line, t, "subject", "department",
		        q->department))
			match = 0;
		if (q->resource != NULL &&
		    !cmd_audit_eq(line, t, "resource", "id", q->resource))
			match = 0;
		if (q->grant != NULL &&
		    !cmd_audit_eq(line, t, "grant", NULL, q->grant))
			match = 0;
		if (q->decision != NULL &&
		    !cmd_audit_eq(line, t, "decision", NULL, q->decision))
			match = 0;
		if (q->reason != NULL &&
		    !cmd_audit_eq(line, t, "reason", NULL, q->reason))
			match = 0;
		if (q->has_subject &&
		    !cmd_audit_eq(line, t, "subject_ref", NULL, q->subject_ref))
			match = 0;
		if (!match)
			return;
		if (q->dfilter && rid[0] != '\0' &&
		    cmd_audit_ids_add(q, rid) < 0) {
			fprintf(stderr, "govgate audit query: out of memory\n");
			exit(1);
		}
	} else if (q->dfilter) {
		/* Other events carry no decision fields: join or drop. */
		if (!iscomp || !cmd_audit_ids_has(q, rid))
			return;
	}
	if (q->request_id != NULL && strcmp(rid, q->request_id) != 0)
		return;
	if (q->has_since &&
	    (sec < q->since_sec ||
	        (sec == q->since_sec && nsec < q->since_nsec)))
		return;
	if (q->has_until &&
	    (sec > q->until_sec ||
	        (sec == q->until_sec && nsec >= q->until_nsec)))
		return;
	q->shown++;
	if (q->json) {
		fwrite(line, 1, len, stdout);
		fputc('\n', stdout);
		return;
	}
	dep = cmd_audit_get(line, t, b1, sizeof(b1), "subject", "department");
	res = cmd_audit_get(line, t, b2, sizeof(b2), "resource", "id");
	gr = cmd_audit_get(line, t, b3, sizeof(b3), "grant", NULL);
	dec = isdec ? cmd_audit_get(line, t, b4, sizeof(b4), "decision", NULL)
	            : ev;
	rsn = cmd_audit_get(line, t, b5, sizeof(b5), "reason", NULL);
	if (isdec)
		tail =
		    cmd_audit_get(line, t, b6, sizeof(b6), "request", "path");
	else if (iscomp && (v = json_obj_get(line, t, 0, "status")) >= 0 &&
	    t[v].type == JSON_NUMBER) {
		snprintf(b6, sizeof(b6), "%.*s", (int)t[v].len,
		    line + t[v].off);
		tail = b6;
	} else
		tail = NULL;
	cmd_audit_cell(ts, 27);
	cmd_audit_cell(rid, 20);
	cmd_audit_cell(dep, 12);
	cmd_audit_cell(res, 20);
	cmd_audit_cell(dec, 8);
	cmd_audit_cell(rsn, 22);
	cmd_audit_cell(gr, 16);
	cmd_audit_cell(tail, 0);
}

static int
cmd_audit_query_file(struct cmd_audit_query *q, const char *path,
    struct json_tok *t)
{
	unsigned long long ln = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *fp;

	if ((fp = fopen(path, "r")) == NULL) {
		fprintf(stderr, "govgate audit query: %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	while ((n = getline(&line, &cap, fp)) > 0) {
		ln++;
		if (line[n - 1] != '\n') {
			fprintf(stderr, "%s:%llu: torn line, skipped\n", path,
			    ln);
			q->skipped++;
			break;
		}
		if (n > AUDIT_RECORD_MAX) {
			fprintf(stderr, "%s:%llu: line too long, skipped\n",
			    path, ln);
			q->skipped++;
			continue;
		}
		cmd_audit_query_line(q, path, ln, line, (size_t)n - 1, t);
	}
	free(line);
	if (ferror(fp)) {
		fprintf(stderr, "govgate audit query: %s: read error\n", path);
		fclose(fp);
		return -1;
	}
	fclose(fp);
	return 0;
}

static int
cmd_audit_time(const char *opt, const char *s, int64_t *sec, int32_t *nsec)
{
	if (tz_parse_rfc3339(s, sec, nsec) < 0) {
		fprintf(stderr,
		    "govgate audit query: %s \"%s\": not an RFC 3339 time "
		    "(e.g. 2026-11-28T10:00:00+08:00)\n",
		    opt, s);
		return -1;
	}
	return 0;
}

static int
cmd_audit_query(int argc, char **argv)
{
	struct cmd_audit_query q;
	struct audit_subject_key sk;
	struct json_tok *t = NULL;
	const char *subject = NULL, *keyfile = NULL, *v;
	char err[1024];
	EVP_MD_CTX *md;
	int i, first = 0, bad = 0, ret = 1;
	size_t k;

	memset(&q, 0, sizeof(q));
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			first = i + 1;
			break;
		}
		if (argv[i][0] != '-' || argv[i][1] == '\0') {
			first = i;
			break;
		}
		if (strcmp(argv[i], "--json") == 0)
			q.json = 1;
		else if ((v = cmd_audit_opt(argc, argv, &i, "--department",
		              &bad)) != NULL)
			q.department = v;
		else if (!bad &&
		    (v = cmd_audit_opt(argc, argv, &i, "--resource", &bad)) !=
		        NULL)
			q.resource = v;
		else if (!bad &&
		    (v = cmd_audit_opt(argc, argv, &i, "--grant", &bad)) !=
		        NULL)
			q.grant = v;
		else if (!bad &&
		    (v = cmd_audit_opt(argc, argv, &i, "--decision", &bad)) !=
		        NULL)
			q.decision = v;
		else if (!bad &&
		    (v = cmd_audit_opt(argc, argv, &i, "--reason", &bad)) !=
		        NULL)
			q.reason = v;
		else if (!bad &&
		    (v = cmd_audit_opt(argc, argv, &i, "--request-id", &bad)) !=
		        NULL)
			q.request_id = v;
		else if (!bad &&
		    (v = cmd_audit_opt(argc, argv, &i, "--event", &bad)) !=
		        NULL)
			q.event = v;
		else if (!bad &&
		    (v = cmd_audit_opt(argc, argv, &i, "--subject-key",
		         &bad)) != NULL)
			keyfile = v;
		else if (!bad &&
		    (v = cmd_audit_opt(argc, argv, &i, "--subject", &bad)) !=
		        NULL)
			subject = v;
		else if (!bad &&
		    (v = cmd_audit_opt(argc, argv, &i, "--since", &bad)) !=
		        NULL) {
			if (cmd_audit_time("--since", v, &q.since_sec,
			        &q.since_nsec) < 0)
				return 2;
			q.has_since = 1;
		} else if (!bad &&
		    (v = cmd_audit_opt(argc, argv, &i, "--until", &bad)) !=
		        NULL) {
			if (cmd_audit_time("--until", v, &q.until_sec,
			        &q.until_nsec) < 0)
				return 2;
			q.has_until = 1;
		} else {
			if (!bad)
				fprintf(stderr,
				    "govgate audit query: unknown option "
				    "\"%s\"\n",
				    argv[i]);
			bad = 1;
			break;
		}
	}
	if (!bad && q.decision != NULL && strcmp(q.decision, "allow") != 0 &&
	    strcmp(q.decision, "deny") != 0) {
		fprintf(stderr,
		    "govgate audit query: --decision is allow or deny\n");
		bad = 1;
	}
	if (!bad && (subject == NULL) != (keyfile == NULL)) {
		fprintf(stderr,
		    "govgate audit query: --subject and "
		    "--subject-key go together\n");
		bad = 1;
	}
	if (bad || first == 0 || first >= argc) {
		if (!bad)
			fprintf(stderr, "govgate audit query: no FILE\n");
		fputs(cmd_audit_query_usage, stderr);
		return 2;
	}
	if (subject != NULL) {
		if (audit_subject_key_load(&sk, keyfile, err, sizeof(err)) <
		    0) {
			fprintf(stderr, "govgate audit query: %s\n", err);
			return 1;
		}
		if ((md = EVP_MD_CTX_new()) == NULL ||
		    audit_subject_ref(&sk, md, subject, strlen(subject),
		        q.subject_ref) < 0) {
			EVP_MD_CTX_free(md);
			fprintf(stderr, "govgate audit query: HMAC failed\n");
			return 1;
		}
		EVP_MD_CTX_free(md);
		OPENSSL_cleanse(&sk, sizeof(sk));
		q.has_subject = 1;
	}
	q.dfilter = q.department != NULL || q.resource != NULL ||
	    q.grant != NULL || q.decision != NULL || q.reason != NULL ||
	    q.has_subject;
	if ((t = calloc(CMD_AUDIT_TOKENS, sizeof(*t))) == NULL) {
		fprintf(stderr, "govgate audit query: out of memory\n");
		return 1;
	}
	if (!q.json)
		printf("%-27s %-20s %-12s %-20s %-8s %-22s %-16s %s\n", "TS",
		    "REQUEST_ID", "DEPARTMENT", "RESOURCE", "DECISION",
		    "REASON", "GRANT", "STATUS/PATH");
	ret = 0;
	for (i = first; i < argc; i++)
		if (cmd_audit_query_file(&q, argv[i], t) < 0)
			ret = 1;
	if (q.skipped > 0)
		fprintf(stderr, "govgate audit query: %llu lines skipped\n",
		    (unsigned long long)q.skipped);
	for (k = 0; k < q.capids; k++)
		free(q.ids[k]);
	free(q.ids);
	free(t);
	if (fflush(stdout) != 0)
		ret = 1;
	return ret;
}

/* `govgate audit SUBCOMMAND ...`: dispatch, or usage. */
int
cmd_audit(int argc, char **argv)
{
	if (argc < 2) {
		fputs(cmd_audit_usage, stderr);
		return 2;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(cmd_audit_usage, stdout);
		return 0;
	}
	if (strcmp(argv[1], "keygen") == 0) {
		if (cmd_wants_help(argc - 1, argv + 1)) {
			fputs(cmd_audit_keygen_usage, stdout);
			return 0;
		}
		return cmd_audit_keygen(argc - 1, argv + 1);
	}
	if (strcmp(argv[1], "verify") == 0) {
		if (cmd_wants_help(argc - 1, argv + 1)) {
			fputs(cmd_audit_verify_usage, stdout);
			return 0;
		}
		return cmd_audit_verify(argc - 1, argv + 1);
	}
	if (strcmp(argv[1], "query") == 0) {
		if (cmd_wants_help(argc - 1, argv + 1)) {
			fputs(cmd_audit_query_usage, stdout);
			return 0;
		}
		return cmd_audit_query(argc - 1, argv + 1);
	}
	fprintf(stderr, "govgate audit: unknown command \"%s\"\n\n", argv[1]);
	fputs(cmd_audit_usage, stderr);
	return 2;
}
