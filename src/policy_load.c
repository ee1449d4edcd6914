/* policy_load.c - policy YAML files -> struct policy, with every check (pure).
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "diag.h"
#include "peer.h"
#include "policy.h"
#include "policy_int.h"
#include "tz.h"
#include "xmalloc.h"
#include "ynode.h"

#define PLOAD_MAX_FILES 256
#define PLOAD_MAX_ID 128 /* bytes of an id */
#define PLOAD_SECONDS_PER_DAY 86400
#define PLOAD_EXPIRY_WARN_DAYS 30

/* A mapping entry or sequence item collected from one of the files. */
struct pitem {
	struct ynode_doc *d;
	yaml_node_t *key; /* NULL for sequence items */
	yaml_node_t *val;
};

struct pitems {
	struct pitem *v;
	size_t n, cap;
};

struct pload {
	struct policy *p;
	const struct policy_env *env;
	struct diag *dg;
	struct ynode_doc *docs;
	size_t ndocs;
	struct pitem revision, levels, defaults; /* set in one file only */
	struct pitems purposes, depts, res, masks, grants, susps;
	struct ptab ids_purpose, ids_dept, ids_res, ids_mask, ids_grant;
	int errors_before;
};

/* ---- ownership: every block the policy holds is freed together ---- */

static void *
pkeep(struct policy *p, void *ptr)
{
	if (p->nallocs == p->capallocs) {
		p->capallocs = p->capallocs ? p->capallocs * 2 : 256;
		p->allocs =
		    xreallocarray(p->allocs, p->capallocs, sizeof(*p->allocs));
	}
	p->allocs[p->nallocs++] = ptr;
	return ptr;
}

static char *
pstrdup(struct policy *p, const char *s)
{
	return pkeep(p, xstrdup(s));
}

static void *
pcalloc(struct policy *p, size_t n, size_t size)
{
	return pkeep(p, xcalloc(n, size));
}

/* ---- a small string table ---- */

static uint64_t
ptab_hash(uint32_t ns, const char *key, size_t len)
{
	uint64_t h = 1469598103934665603ULL ^ ns;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 1099511628211ULL;
	}
	h ^= h >> 29;
	return h;
}

void
ptab_init(struct ptab *t)
{
	memset(t, 0, sizeof(*t));
}

void
ptab_clear(struct ptab *t)
{
	free(t->e);
	memset(t, 0, sizeof(*t));
}

static void
ptab_grow(struct ptab *t)
{
	struct ptab_ent *old = t->e;
	size_t oldcap = t->cap, i, j;

	t->cap = t->cap ? t->cap * 2 : 64;
	t->e = xcalloc(t->cap, sizeof(*t->e));
	for (i = 0; i < oldcap; i++) {
		if (!old[i].used)
			continue;
		j = ptab_hash(old[i].ns, old[i].key, old[i].klen) &
		    (t->cap - 1);
		while (t->e[j].used)
			j = (j + 1) & (t->cap - 1);
		t->e[j] = old[i];
	}
	free(old);
}

uint32_t
ptab_put(struct ptab *t, uint32_t ns, const char *key, size_t len, uint32_t val)
{
	size_t j;

	if ((t->n + 1) * 2 > t->cap)
		ptab_grow(t);
	j = ptab_hash(ns, key, len) & (t->cap - 1);
	while (t->e[j].used) {
		if (t->e[j].ns == ns && t->e[j].klen == len &&
		    memcmp(t->e[j].key, key, len) == 0)
			return t->e[j].val;
		j = (j + 1) & (t->cap - 1);
	}
	t->e[j].used = 1;
	t->e[j].ns = ns;
	t->e[j].key = key;
	t->e[j].klen = (uint32_t)len;
	t->e[j].val = val;
	t->n++;
	return val;
}

int
ptab_get(const struct ptab *t, uint32_t ns, const char *key, size_t len,
    uint32_t *val)
{
	size_t j;

	if (t->cap == 0)
		return -1;
	j = ptab_hash(ns, key, len) & (t->cap - 1);
	while (t->e[j].used) {
		if (t->e[j].ns == ns && t->e[j].klen == len &&
		    memcmp(t->e[j].key, key, len) == 0) {
			*val = t->e[j].val;
			return 0;
		}
		j = (j + 1) & (t->cap - 1);
	}
	return -1;
}

/* ---- collecting the files ---- */

static void
pitems_add(struct pitems *v, struct ynode_doc *d, yaml_node_t *key,
    yaml_node_t *val)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 32;
		v->v = xreallocarray(v->v, v->cap, sizeof(*v->v));
	}
	v->v[v->n].d = d;
	v->v[v->n].key = key;
	v->v[v->n].val = val;
	v->n++;
}

static const struct ynode_key pload_root_keys[] = {
	{ "version", YNODE_STR, YNODE_REQUIRED },
	{ "revision", YNODE_STR, 0 },
	{ "levels", YNODE_SEQ, 0 },
	{ "defaults", YNODE_MAP, 0 },
	{ "purposes", YNODE_MAP, 0 },
	{ "departments", YNODE_MAP, 0 },
	{ "resources", YNODE_MAP, 0 },
	{ "grants", YNODE_SEQ, 0 },
	{ "suspensions", YNODE_SEQ, 0 },
	{ "masks", YNODE_MAP, 0 },
	{ NULL, YNODE_ANY, 0 },
};

enum {
	ROOT_VERSION = 0,
	ROOT_REVISION,
	ROOT_LEVELS,
	ROOT_DEFAULTS,
	ROOT_PURPOSES,
	ROOT_DEPARTMENTS,
	ROOT_RESOURCES,
	ROOT_GRANTS,
	ROOT_SUSPENSIONS,
	ROOT_MASKS,
	ROOT_NKEYS,
};

/* A section that may be set in only one of the merged files. */
static void
pload_once(struct pload *L, struct ynode_doc *d, yaml_node_t *n,
    const char *name, struct pitem *slot)
{
	if (n == NULL)
		return;
	if (slot->val != NULL) {
		ynode_error(d, n, "\"%s\" is already set at %s:%zu:%zu", name,
		    slot->d->file, ynode_line(slot->val), ynode_col(slot->val));
		return;
	}
	slot->d = d;
	slot->val = n;
}

static void
pload_collect_map(struct ynode_doc *d, yaml_node_t *n, struct pitems *v)
{
	size_t i;

	if (n == NULL)
		return;
	for (i = 0; i < ynode_map_len(n); i++)
		pitems_add(v, d, ynode_at(d, ynode_map_pair(n, i)->key),
		    ynode_at(d, ynode_map_pair(n, i)->value));
}

static void
pload_collect_seq(struct ynode_doc *d, yaml_node_t *n, struct pitems *v)
{
	size_t i;

	if (n == NULL)
		return;
	for (i = 0; i < ynode_seq_len(n); i++)
		pitems_add(v, d, NULL, ynode_at(d, ynode_seq_item(n, i)));
}

static void
pload_file(struct pload *L, struct ynode_doc *d)
{
	yaml_node_t *root, *v[ROOT_NKEYS];
	const char *s;

	if ((root = ynode_root(d)) == NULL) {
		diag_error(L->dg, d->file, 0, 0, "empty policy file");
		return;
	}
	if (ynode_map(d, root, pload_root_keys, v, "policy") == -1 &&
	    v[ROOT_VERSION] == NULL)
		return;
	if (v[ROOT_VERSION] != NULL &&
	    (s = ynode_str(d, v[ROOT_VERSION], "version")) != NULL &&
	    strcmp(s, "1") != 0)
		ynode_error(d, v[ROOT_VERSION],
		    "version: unsupported policy version \"%s\" (expected: 1)",
		    s);
	pload_once(L, d, v[ROOT_REVISION], "revision", &L->revision);
	pload_once(L, d, v[ROOT_LEVELS], "levels", &L->levels);
	pload_once(L, d, v[ROOT_DEFAULTS], "defaults", &L->defaults);
	pload_collect_map(d, v[ROOT_PURPOSES], &L->purposes);
	pload_collect_map(d, v[ROOT_DEPARTMENTS], &L->depts);
	pload_collect_map(d, v[ROOT_RESOURCES], &L->res);
	pload_collect_map(d, v[ROOT_MASKS], &L->masks);
	pload_collect_seq(d, v[ROOT_GRANTS], &L->grants);
	pload_collect_seq(d, v[ROOT_SUSPENSIONS], &L->susps);
}

static int
pload_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
pload_hex(const unsigned char *md, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[2 * n] = '\0';
}

/* SHA-256 of a file's bytes as hex. Returns 0 or -1 (recorded in dg). */
static int
pload_file_sha256(struct pload *L, const char *path, char *hex)
{
	unsigned char buf[65536], md[32];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = NULL;
	FILE *fp = NULL;
	size_t n;
	int ret = -1;

	if ((fp = fopen(path, "rb")) == NULL) {
		diag_error(L->dg, path, 0, 0, "cannot open: %s",
		    strerror(errno));
		goto out;
	}
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		goto out;
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
		if (!EVP_DigestUpdate(ctx, buf, n))
			goto out;
	if (ferror(fp) || !EVP_DigestFinal_ex(ctx, md, &mdlen))
		goto out;
	pload_hex(md, 32, hex);
	ret = 0;
out:
	if (ret == -1)
		diag_error(L->dg, path, 0, 0, "cannot hash the file");
	EVP_MD_CTX_free(ctx);
	if (fp != NULL)
		fclose(fp);
	return ret;
}

/*
 * The policy's fingerprint. A file: SHA-256 of its bytes. A folder: SHA-256
 * of what `sha256sum *.yaml` prints there, so compliance staff can
 * reproduce it with `cd policies && sha256sum *.yaml | sha256sum`.
 */
static int
pload_fingerprint(struct pload *L, const char *dir, char **names, size_t n,
    int is_dir)
{
	char path[PATH_MAX], hex[65], line[PATH_MAX + 80];
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = NULL;
	size_t i;
	int ret = -1;

	if (!is_dir)
		return pload_file_sha256(L, names[0], L->p->sha256);
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		goto out;
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (pload_file_sha256(L, path, hex) == -1)
			goto out;
		snprintf(line, sizeof(line), "%s  %s\n", hex, names[i]);
		if (!EVP_DigestUpdate(ctx, line, strlen(line)))
			goto out;
	}
	if (!EVP_DigestFinal_ex(ctx, md, &mdlen))
		goto out;
	pload_hex(md, 32, L->p->sha256);
	ret = 0;
out:
	EVP_MD_CTX_free(ctx);
	return ret;
}

/* Load one file or every *.yaml of a folder (name order) into L->docs. */
static int
pload_read(struct pload *L, const char *path)
{
	char **names = NULL, full[PATH_MAX];
	struct dirent *de;
	struct stat st;
	size_t n = 0, i, len;
	DIR *dp = NULL;
	int is_dir, ret = -1;

	if (stat(path, &st) == -1) {
		diag_error(L->dg, path, 0, 0, "cannot open: %s",
		    strerror(errno));
		return -1;
	}
	is_dir = S_ISDIR(st.st_mode);
	if (!is_dir) {
		names = xcalloc(1, sizeof(*names));
		names[n++] = xstrdup(path);
	} else {
		if ((dp = opendir(path)) == NULL) {
			diag_error(L->dg, path, 0, 0, "cannot open folder: %s",
			    strerror(errno));
			return -1;
		}
		names = xcalloc(PLOAD_MAX_FILES, sizeof(*names));
		while ((de = readdir(dp)) != NULL) {
			len = strlen(de->d_name);
			if (de->d_name[0] == '.' || len < 6 ||
			    strcmp(de->d_name + len - 5, ".yaml") != 0)
				continue;
			if (n == PLOAD_MAX_FILES) {
				diag_error(L->dg, path, 0, 0,
				    "more than %d policy files",
				    PLOAD_MAX_FILES);
				goto out;
			}
			names[n++] = xstrdup(de->d_name);
		}
		if (n == 0) {
			diag_error(L->dg, path, 0, 0, "no *.yaml policy files");
			goto out;
		}
		qsort(names, n, sizeof(*names), pload_name_cmp);
	}
	L->docs = xcalloc(n, sizeof(*L->docs));
	for (i = 0; i < n; i++) {
		if (is_dir)
			snprintf(full, sizeof(full), "%s/%s", path, names[i]);
		else
			snprintf(full, sizeof(full), "%s", names[i]);
		L->ndocs++;
		if (ynode_load(&L->docs[i], full, YNODE_MAX_FILE, L->dg) == 0)
			pload_file(L, &L->docs[i]);
	}
	ret = pload_fingerprint(L, path, names, n, is_dir);
out:
	if (dp != NULL)
		closedir(dp);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return ret;
}

/* ---- scalar helpers ---- */

/* An id: 1..128 bytes of [A-Za-z0-9._-]. */
static const char *
pload_id(struct ynode_doc *d, yaml_node_t *n, const char *what)
{
	const char *s, *c;

	if ((s = ynode_str(d, n, what)) == NULL)
		return NULL;
	if (*s == '\0' || strlen(s) > PLOAD_MAX_ID)
		goto bad;
	for (c = s; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		        (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' ||
		        *c == '-'))
			goto bad;
	return s;
bad:
	ynode_error(d, n,
	    "%s: \"%s\" is not a valid id (1-%d of A-Z a-z 0-9 . _ -)", what, s,
	    PLOAD_MAX_ID);
	return NULL;
}

/* Register a new id; a duplicate is an error naming the first place. */
static int
pload_new_id(struct pload *L, struct ptab *t, struct pitems *items,
    size_t index, struct ynode_doc *d, yaml_node_t *n, const char *id,
    const char *kind)
{
	uint32_t prev;
	struct pitem *first;

	prev = ptab_put(t, 0, id, strlen(id), (uint32_t)index);
	if (prev == index)
		return 0;
	first = &items->v[prev];
	ynode_error(d, n, "duplicate %s id \"%s\" (first at %s:%zu:%zu)", kind,
	    id, first->d->file,
	    ynode_line(first->key ? first->key : first->val),
	    ynode_col(first->key ? first->key : first->val));
	return -1;
}

static int
pload_level(struct pload *L, struct ynode_doc *d, yaml_node_t *n,
    const char *what, int *out)
{
	const char *s;
	size_t i;

	if ((s = ynode_str(d, n, what)) == NULL)
		return -1;
	for (i = 0; i < L->p->nlevels; i++) {
		if (strcmp(L->p->levels[i], s) == 0) {
			*out = (int)i;
			return 0;
		}
	}
	ynode_error(d, n, "%s: unknown level \"%s\" (levels: %s%s%s%s%s%s%s)",
	    what, s, L->p->levels[0], L->p->nlevels > 1 ? ", " : "",
	    L->p->nlevels > 1 ? L->p->levels[1] : "",
	    L->p->nlevels > 2 ? ", " : "",
	    L->p->nlevels > 2 ? L->p->levels[2] : "",
	    L->p->nlevels > 3 ? ", " : "",
	    L->p->nlevels > 3 ? L->p->levels[3] : "");
	return -1;
}

/* A sequence of scalars into a kept array of kept strings. */
static int
pload_strlist(struct pload *L, struct ynode_doc *d, yaml_node_t *n,
    const char *what, char ***out, size_t *count)
{
	const char *s;
	size_t i, len;
	int ret = 0;

	*out = NULL;
	*count = 0;
	if (ynode_expect(d, n, YNODE_SEQ, what) == -1)
		return -1;
	len = ynode_seq_len(n);
	*out = pcalloc(L->p, len + 1, sizeof(char *));
	for (i = 0; i < len; i++) {
		if ((s = ynode_str(d, ynode_at(d, ynode_seq_item(n, i)),
		         what)) == NULL) {
			ret = -1;
			continue;
		}
		(*out)[(*count)++] = pstrdup(L->p, s);
	}
	return ret;
}

static int
pload_methods(struct ynode_doc *d, yaml_node_t *n, const char *what,
    unsigned *out)
{
	yaml_node_t *it;
	const char *s;
	unsigned bit;
	size_t i;
	int ret = 0;

	*out = 0;
	if (ynode_expect(d, n, YNODE_SEQ, what) == -1)
		return -1;
	if (ynode_seq_len(n) == 0) {
		ynode_error(d, n, "%s: empty list", what);
		return -1;
	}
	for (i = 0; i < ynode_seq_len(n); i++) {
		it = ynode_at(d, ynode_seq_item(n, i));
		if ((s = ynode_str(d, it, what)) == NULL) {
			ret = -1;
			continue;
		}
		if ((bit = policy_method_bit(s, strlen(s))) == 0) {
			ynode_error(d, it,
			    "%s: unknown method \"%s\" (expected: GET, HEAD, "
			    "POST, PUT, PATCH, DELETE, OPTIONS)",
			    what, s);
			ret = -1;
			continue;
		}
		if (*out & bit) {
			ynode_error(d, it, "%s: method \"%s\" listed twice",
			    what, s);
			ret = -1;
		}
		*out |= bit;
	}
	return ret;
}

/* ---- sections ---- */

static const char *const pload_default_levels[] = { "public", "internal",
	"restricted", "confidential" };

static void
pload_levels(struct pload *L)
{
	struct policy *p = L->p;
	struct ynode_doc *d = L->levels.d;
	size_t i, j;

	if (L->levels.val == NULL) {
		p->nlevels = 4;
		p->levels = pcalloc(p, 4, sizeof(char *));
		for (i = 0; i < 4; i++)
			p->levels[i] = pstrdup(p, pload_default_levels[i]);
		return;
	}
	if (pload_strlist(L, d, L->levels.val, "levels", &p->levels,
	        &p->nlevels) == -1)
		return;
	if (p->nlevels == 0 || p->nlevels > POLICY_MAX_LEVELS) {
		ynode_error(d, L->levels.val, "levels: between 1 and %d levels",
		    POLICY_MAX_LEVELS);
		p->nlevels = 0;
		return;
	}
	for (i = 0; i < p->nlevels; i++)
		for (j = 0; j < i; j++)
			if (strcmp(p->levels[i], p->levels[j]) == 0)
				ynode_error(d, L->levels.val,
				    "levels: \"%s\" listed twice",
				    p->levels[i]);
}

static const struct ynode_key pload_defaults_keys[] = {
	{ "countries", YNODE_SEQ, 0 },
	{ "purpose_header", YNODE_STR, 0 },
	{ "case_header", YNODE_STR, 0 },
	{ "operator_header", YNODE_STR, 0 },
	{ NULL, YNODE_ANY, 0 },
};

/* A header name: an HTTP token. */
static char *
pload_header_name(struct pload *L, struct ynode_doc *d, yaml_node_t *n,
    const char *what, const char *dflt)
{
	const char *s, *c;

	if (n == NULL)
		return pstrdup(L->p, dflt);
	if ((s = ynode_str(d, n, what)) == NULL)
		return pstrdup(L->p, dflt);
	for (c = s; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		        (*c >= '0' && *c <= '9') || *c == '-' || *c == '_'))
			break;
	if (*s == '\0' || *c != '\0' || strncasecmp(s, "X-Govgate-", 10) == 0) {
		ynode_error(d, n, "%s: \"%s\" is not a usable header name",
		    what, s);
		return pstrdup(L->p, dflt);
	}
	return pstrdup(L->p, s);
}

static void
pload_defaults(struct pload *L)
{
	struct policy *p = L->p;
	struct ynode_doc *d = L->defaults.d;
	yaml_node_t *v[4] = { NULL, NULL, NULL, NULL };
	size_t i;
	char *c;

	if (L->defaults.val != NULL)
		ynode_map(d, L->defaults.val, pload_defaults_keys, v,
		    "defaults");
	p->purpose_header = pload_header_name(L, d, v[1],
	    "defaults.purpose_header", "X-Purpose");
	p->case_header =
	    pload_header_name(L, d, v[2], "defaults.case_header", "X-Case-Id");
	p->operator_header = pload_header_name(L, d, v[3],
	    "defaults.operator_header", "X-Operator-Id");
	if (v[0] == NULL)
		return;
	if (pload_strlist(L, d, v[0], "defaults.countries", &p->countries,
	        &p->ncountries) == -1)
		return;
	if (p->ncountries == 0)
		ynode_error(d, v[0],
		    "defaults.countries: empty list denies every request "
		    "(omit the key to allow all countries)");
	for (i = 0; i < p->ncountries; i++) {
		c = p->countries[i];
		if (strcmp(c, "unknown") == 0) {
			p->countries_unknown = 1;
			continue;
		}
		if (strlen(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' ||
		    c[1] > 'Z')
			ynode_error(d, v[0],
			    "defaults.countries: \"%s\" is not an ISO 3166 "
			    "alpha-2 code (like CN) or unknown",
			    c);
	}
	if (!L->env->have_country_db)
		ynode_error(d, v[0],
		    "defaults.countries needs geoip.country_db in the gateway "
		    "config");
}

static const struct ynode_key pload_purpose_keys[] = {
	{ "name", YNODE_STR, YNODE_REQUIRED },
	{ "basis", YNODE_STR, 0 },
	{ NULL, YNODE_ANY, 0 },
};

static void
pload_purposes(struct pload *L)
{
	struct policy *p = L->p;
	yaml_node_t *v[2];
	const char *id;
	size_t i;

	p->purpose_ids = pcalloc(p, L->purposes.n + 1, sizeof(char *));
	for (i = 0; i < L->purposes.n; i++) {
		struct pitem *it = &L->purposes.v[i];

		if ((id = pload_id(it->d, it->key, "purpose")) == NULL)
			continue;
		if (pload_new_id(L, &L->ids_purpose, &L->purposes, i, it->d,
		        it->key, id, "purpose") == -1)
			continue;
		ynode_map(it->d, it->val, pload_purpose_keys, v, "purpose");
		p->purpose_ids[i] = pstrdup(p, id);
	}
	p->npurposes = L->purposes.n;
}

static const struct ynode_key pload_rule_keys[] = {
	{ "field", YNODE_STR, YNODE_REQUIRED },
	{ "fn", YNODE_STR, YNODE_REQUIRED },
	{ "first", YNODE_STR, 0 },
	{ "last", YNODE_STR, 0 },
	{ NULL, YNODE_ANY, 0 },
};

/* Split a JSON Pointer (RFC 6901) into unescaped tokens. Returns 0 or -1. */
static int
pload_pointer(struct pload *L, const char *s, struct policy_mask_rule *r)
{
	const char *c, *start;
	char *tok, *o;
	size_t n = 0, i;

	if (*s != '/')
		return -1;
	for (c = s; *c; c++)
		if (*c == '/')
			n++;
	r->tokens = pcalloc(L->p, n, sizeof(char *));
	r->ntokens = n;
	start = s + 1;
	for (i = 0; i < n; i++) {
		for (c = start; *c && *c != '/'; c++)
			;
		tok = pcalloc(L->p, (size_t)(c - start) + 1, 1);
		for (o = tok; start < c; start++) {
			if (*start == '~') {
				if (start + 1 < c && start[1] == '0')
					*o++ = '~';
				else if (start + 1 < c && start[1] == '1')
					*o++ = '/';
				else
					return -1;
				start++;
			} else
				*o++ = *start;
		}
		r->tokens[i] = tok;
		start = c + 1;
	}
	return 0;
}

static void
pload_masks(struct pload *L)
{
	static const struct ynode_key mask_keys[] = {
		{ "rules", YNODE_SEQ, YNODE_REQUIRED },
		{ NULL, YNODE_ANY, 0 },
	};
	struct policy *p = L->p;
	struct policy_mask *m;
	struct policy_mask_rule *r;
	yaml_node_t *v[1], *rv[4], *rn;
	const char *id, *s;
	uint64_t u;
	size_t i, j;

	p->masks = pcalloc(p, L->masks.n + 1, sizeof(*p->masks));
	p->nmasks = L->masks.n;
	for (i = 0; i < L->masks.n; i++) {
		struct pitem *it = &L->masks.v[i];
		struct ynode_doc *d = it->d;

		m = &p->masks[i];
		if ((id = pload_id(d, it->key, "mask")) == NULL)
			continue;
		m->id = pstrdup(p, id);
		if (pload_new_id(L, &L->ids_mask, &L->masks, i, d, it->key, id,
		        "mask") == -1)
			continue;
		if (ynode_map(d, it->val, mask_keys, v, "mask") == -1)
			continue;
		m->nrules = ynode_seq_len(v[0]);
		m->rules = pcalloc(p, m->nrules + 1, sizeof(*m->rules));
		for (j = 0; j < m->nrules; j++) {
			r = &m->rules[j];
			rn = ynode_at(d, ynode_seq_item(v[0], j));
			if (ynode_map(d, rn, pload_rule_keys, rv,
			        "mask rule") == -1)
				continue;
			if ((s = ynode_str(d, rv[0], "field")) != NULL) {
				r->field = pstrdup(p, s);
				if (pload_pointer(L, s, r) == -1)
					ynode_error(d, rv[0],
					    "field: \"%s\" is not a JSON "
					    "Pointer "
					    "(like /name or /family/*/id)",
					    s);
			}
			if ((s = ynode_str(d, rv[1], "fn")) == NULL)
				continue;
			if (strcmp(s, "drop") == 0) {
				r->drop = 1;
				if (rv[2] || rv[3])
					ynode_error(d, rv[1],
					    "fn: drop takes no first or last");
			} else if (strcmp(s, "keep") == 0) {
				if (rv[2] &&
				    ynode_uint(d, rv[2], "first", 0, 1024,
				        &u) == 0)
					r->first = (uint32_t)u;
				if (rv[3] &&
				    ynode_uint(d, rv[3], "last", 0, 1024, &u) ==
				        0)
					r->last = (uint32_t)u;
			} else
				ynode_error(d, rv[1],
				    "fn: unknown function \"%s\" (expected: "
				    "keep, drop)",
				    s);
		}
	}
}

static const struct ynode_key pload_dept_keys[] = {
	{ "name", YNODE_STR, YNODE_REQUIRED },
	{ "match", YNODE_MAP, YNODE_REQUIRED },
	{ "clearance", YNODE_STR, YNODE_REQUIRED },
	{ "zones", YNODE_SEQ, 0 },
	{ NULL, YNODE_ANY, 0 },
};

static const struct ynode_key pload_match_keys[] = {
	{ "subject", YNODE_MAP, 0 },
	{ "issuer", YNODE_MAP, 0 },
	{ "san_uri", YNODE_STR, 0 },
	{ "san_dns", YNODE_STR, 0 },
	{ NULL, YNODE_ANY, 0 },
};

static void
pload_match_add(struct pload *L, struct pdept *pd, enum pmatch_kind kind,
    enum peer_attr attr, const char *val)
{
	struct pmatch *m;
	size_t len = strlen(val);

	pd->m = xreallocarray(pd->m, pd->nm + 1, sizeof(*pd->m));
	m = &pd->m[pd->nm++];
	memset(m, 0, sizeof(*m));
	m->kind = kind;
	m->attr = attr;
	if ((kind == PMATCH_SAN_URI || kind == PMATCH_SAN_DNS) && len > 0 &&
	    val[len - 1] == '*') {
		m->prefix = 1;
		len--;
	}
	m->val = pkeep(L->p, xstrndup(val, len));
	m->len = len;
}

static void
pload_match_name(struct pload *L, struct ynode_doc *d, yaml_node_t *n,
    struct pdept *pd, enum pmatch_kind kind, const char *what)
{
	yaml_node_pair_t *pair;
	yaml_node_t *k;
	enum peer_attr a;
	const char *key, *val;
	unsigned seen = 0;
	size_t i;

	if (ynode_map_len(n) == 0)
		ynode_error(d, n, "%s: empty", what);
	for (i = 0; i < ynode_map_len(n); i++) {
		pair = ynode_map_pair(n, i);
		k = ynode_at(d, pair->key);
		if ((key = ynode_str(d, k, what)) == NULL)
			continue;
		if (peer_attr_parse(key, &a) == -1) {
			ynode_error(d, k,
			    "unknown key \"%s\" in %s (expected: CN, OU, O, L, "
			    "ST, C, serialNumber)",
			    key, what);
			continue;
		}
		if (seen & (1u << a)) {
			ynode_error(d, k, "duplicate key \"%s\" in %s", key,
			    what);
			continue;
		}
		seen |= 1u << a;
		if ((val = ynode_str(d, ynode_at(d, pair->value), key)) == NULL)
			continue;
		if (*val == '\0' || strlen(val) >= PEER_MAX_FIELD) {
			ynode_error(d, ynode_at(d, pair->value),
			    "%s: value must be 1-%d bytes", key,
			    PEER_MAX_FIELD - 1);
			continue;
		}
		pload_match_add(L, pd, kind, a, val);
		if (kind == PMATCH_SUBJECT)
			L->p->used_subject |= 1u << a;
		else
			L->p->used_issuer |= 1u << a;
	}
}

static void
pload_departments(struct pload *L)
{
	struct policy *p = L->p;
	struct policy_department *dep;
	struct pdept *pd;
	yaml_node_t *v[4], *mv[4];
	const char *id, *s;
	size_t i;

	p->ndepts = L->depts.n;
	p->depts = pcalloc(p, p->ndepts + 1, sizeof(*p->depts));
	p->dmatch = pcalloc(p, p->ndepts + 1, sizeof(*p->dmatch));
	for (i = 0; i < L->depts.n; i++) {
		struct pitem *it = &L->depts.v[i];
		struct ynode_doc *d = it->d;

		dep = &p->depts[i];
		pd = &p->dmatch[i];
		dep->index = i;
		if ((id = pload_id(d, it->key, "department")) == NULL)
			continue;
		dep->id = pstrdup(p, id);
		if (pload_new_id(L, &L->ids_dept, &L->depts, i, d, it->key, id,
		        "department") == -1)
			continue;
		if (ynode_map(d, it->val, pload_dept_keys, v, "department") ==
		    -1)
			continue;
		if ((s = ynode_str(d, v[0], "name")) != NULL)
			dep->name = pstrdup(p, s);
		pload_level(L, d, v[2], "clearance", &dep->clearance);
		if (v[3] != NULL)
			pload_strlist(L, d, v[3], "zones", &dep->zones,
			    &dep->nzones);
		if (v[3] != NULL && dep->nzones == 0)
			ynode_error(d, v[3],
			    "zones: empty list denies every request (omit the "
			    "key to allow any zone)");
		if (dep->nzones > 0 && !L->env->have_zone_db)
			ynode_error(d, v[3],
			    "zones need geoip.zone_db in the gateway config");
		if (ynode_map(d, v[1], pload_match_keys, mv, "match") == -1)
			continue;
		if (mv[0] != NULL)
			pload_match_name(L, d, mv[0], pd, PMATCH_SUBJECT,
			    "match.subject");
		if (mv[1] != NULL)
			pload_match_name(L, d, mv[1], pd, PMATCH_ISSUER,
			    "match.issuer");
		if (mv[2] != NULL && (s = ynode_str(d, mv[2], "san_uri"))) {
			pload_match_add(L, pd, PMATCH_SAN_URI, 0, s);
			p->uses_san = 1;
		}
		if (mv[3] != NULL && (s = ynode_str(d, mv[3], "san_dns"))) {
			pload_match_add(L, pd, PMATCH_SAN_DNS, 0, s);
			p->uses_san = 1;
		}
		if (pd->nm == 0)
			ynode_error(d, v[1],
			    "match: needs at least one of subject, issuer, "
			    "san_uri, san_dns");
		else if (mv[0] == NULL && mv[2] == NULL && mv[3] == NULL)
			ynode_error(d, v[1],
			    "match: issuer alone would admit every certificate "
			    "of that CA; add subject, san_uri or san_dns");
	}
}

/* Resolve a reference to an id in t; records an error when unknown. */
static int
pload_ref(struct ptab *t, struct ynode_doc *d, yaml_node_t *n, const char *what,
    const char *kind, uint32_t *out)
{
	const char *s;

	if ((s = ynode_str(d, n, what)) == NULL)
		return -1;
	if (ptab_get(t, 0, s, strlen(s), out) == 0)
		return 0;
	ynode_error(d, n, "%s: unknown %s \"%s\"", what, kind, s);
	return -1;
}

static const struct ynode_key pload_res_keys[] = {
	{ "name", YNODE_STR, YNODE_REQUIRED },
	{ "owner", YNODE_STR, YNODE_REQUIRED },
	{ "upstream", YNODE_STR, YNODE_REQUIRED },
	{ "methods", YNODE_SEQ, YNODE_REQUIRED },
	{ "paths", YNODE_SEQ, YNODE_REQUIRED },
	{ "subject_id", YNODE_STR, 0 },
	{ "classification", YNODE_STR, YNODE_REQUIRED },
	{ "sharing", YNODE_STR, YNODE_REQUIRED },
	{ "legal_basis", YNODE_STR, 0 },
	{ "mask", YNODE_STR, 0 },
	{ NULL, YNODE_ANY, 0 },
};

static int
pload_sharing(const char *s, enum policy_sharing *out)
{
	static const char *const names[] = { "open", "unconditional",
		"conditional", "none" };
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum policy_sharing)i;
			return 0;
		}
	}
	return -1;
}

/*
 * Check and count one path pattern: "/" then segments separated by "/";
 * a segment is a literal (pchar without '%', ';' or wildcards), `*`,
 * `{name}` or, last only, `**`.
 */
static int
pload_pattern(struct ynode_doc *d, yaml_node_t *n, const char *s,
    const char *subject_id, struct ppat *pat, int *has_subject)
{
	const char *seg, *e, *c;
	size_t len, nseg = 0;

	pat->nlit = pat->nwild = 0;
	pat->rest = 0;
	pat->subject_seg = -1;
	if (*s != '/' || strlen(s) >= POLICY_MAX_PATH)
		goto bad;
	for (seg = s + 1;; seg = e + 1) {
		for (e = seg; *e && *e != '/'; e++)
			;
		len = (size_t)(e - seg);
		if (pat->rest)
			goto bad; /* `**` must be last */
		if (++nseg > POLICY_MAX_SEGMENTS)
			goto bad;
		if (len == 2 && seg[0] == '*' && seg[1] == '*') {
			pat->rest = 1;
			pat->nwild++;
		} else if (len == 1 && seg[0] == '*')
			pat->nwild++;
		else if (len >= 3 && seg[0] == '{' && seg[len - 1] == '}') {
			for (c = seg + 1; c < e - 1; c++)
				if (!((*c >= 'a' && *c <= 'z') ||
				        (*c >= 'A' && *c <= 'Z') ||
				        (*c >= '0' && *c <= '9') || *c == '_'))
					goto bad;
			if (subject_id != NULL &&
			    strlen(subject_id) == len - 2 &&
			    memcmp(subject_id, seg + 1, len - 2) == 0) {
				pat->subject_seg = (int16_t)(nseg - 1);
				*has_subject = 1;
			}
			pat->nwild++;
		} else {
			/* Literal: what pathnorm can produce, sans '%'. */
			if (len == 0 && *e != '\0')
				goto bad; /* "//" */
			if ((len == 1 && seg[0] == '.') ||
			    (len == 2 && seg[0] == '.' && seg[1] == '.'))
				goto bad;
			for (c = seg; c < e; c++)
				if (!((*c >= 'a' && *c <= 'z') ||
				        (*c >= 'A' && *c <= 'Z') ||
				        (*c >= '0' && *c <= '9') ||
				        strchr("-._~!$&'()+,=:@", *c) != NULL))
					goto bad;
			pat->nlit++;
		}
		if (*e == '\0')
			break;
	}
	return 0;
bad:
	ynode_error(d, n,
	    "paths: \"%s\" is not a valid pattern (segments are literals, "
	    "{name}, * or a final **)",
	    s);
	return -1;
}

static void
pload_add_pat(struct policy *p, const struct ppat *pat)
{
	if ((p->npats & (p->npats - 1)) == 0)
		p->pats = xreallocarray(p->pats, p->npats ? p->npats * 2 : 2,
		    sizeof(*p->pats));
	p->pats[p->npats++] = *pat;
}

static void
pload_resources(struct pload *L)
{
	struct policy *p = L->p;
	struct policy_resource *r;
	struct ppat pat;
	yaml_node_t *v[10], *pn;
	const char *id, *s;
	uint32_t ref;
	size_t i, j;
	int has_subject;

	p->nres = L->res.n;
	p->res = pcalloc(p, p->nres + 1, sizeof(*p->res));
	for (i = 0; i < L->res.n; i++) {
		struct pitem *it = &L->res.v[i];
		struct ynode_doc *d = it->d;

		r = &p->res[i];
		r->index = i;
		if ((id = pload_id(d, it->key, "resource")) == NULL)
			continue;
		r->id = pstrdup(p, id);
		if (pload_new_id(L, &L->ids_res, &L->res, i, d, it->key, id,
		        "resource") == -1)
			continue;
		if (ynode_map(d, it->val, pload_res_keys, v, "resource") == -1)
			continue;
		if ((s = ynode_str(d, v[0], "name")) != NULL)
			r->name = pstrdup(p, s);
		if (pload_ref(&L->ids_dept, d, v[1], "owner", "department",
		        &ref) == 0)
			r->owner = &p->depts[ref];
		if ((s = pload_id(d, v[2], "upstream")) != NULL)
			r->upstream = pstrdup(p, s);
		pload_methods(d, v[3], "methods", &r->methods);
		if (v[5] != NULL && (s = ynode_str(d, v[5], "subject_id")))
			r->subject_id = pstrdup(p, s);
		pload_level(L, d, v[6], "classification", &r->classification);
		if ((s = ynode_str(d, v[7], "sharing")) != NULL &&
		    pload_sharing(s, &r->sharing) == -1)
			ynode_error(d, v[7],
			    "sharing: unknown type \"%s\" (expected: open, "
			    "unconditional, conditional, none)",
			    s);
		if (v[8] != NULL && (s = ynode_str(d, v[8], "legal_basis")))
			r->legal_basis = pstrdup(p, s);
		if (r->sharing == POLICY_SHARE_NONE &&
		    (r->legal_basis == NULL || r->legal_basis[0] == '\0'))
			ynode_error(d, v[7],
			    "sharing: none needs a non-empty legal_basis");
		if (v[9] != NULL &&
		    pload_ref(&L->ids_mask, d, v[9], "mask", "mask", &ref) == 0)
			r->mask = &p->masks[ref];
		if (ynode_seq_len(v[4]) == 0) {
			ynode_error(d, v[4], "paths: empty list");
			continue;
		}
		has_subject = 0;
		r->npaths = ynode_seq_len(v[4]);
		r->paths = pcalloc(p, r->npaths + 1, sizeof(char *));
		for (j = 0; j < r->npaths; j++) {
			pn = ynode_at(d, ynode_seq_item(v[4], j));
			if ((s = ynode_str(d, pn, "paths")) == NULL)
				continue;
			r->paths[j] = pstrdup(p, s);
			memset(&pat, 0, sizeof(pat));
			if (pload_pattern(d, pn, s, r->subject_id, &pat,
			        &has_subject) == -1)
				continue;
			pat.resource = (uint32_t)i;
			pat.methods = r->methods;
			pat.text = r->paths[j];
			pat.file = d->file;
			pat.line = ynode_line(pn);
			pat.col = ynode_col(pn);
			pload_add_pat(p, &pat);
		}
		if (r->subject_id != NULL && !has_subject)
			ynode_error(d, v[5],
			    "subject_id: no path has a {%s} segment",
			    r->subject_id);
	}
}

static const struct ynode_key pload_grant_keys[] = {
	{ "id", YNODE_STR, YNODE_REQUIRED },
	{ "consumer", YNODE_STR, YNODE_REQUIRED },
	{ "resource", YNODE_STR, YNODE_REQUIRED },
	{ "purposes", YNODE_SEQ, YNODE_REQUIRED },
	{ "approved_by", YNODE_STR, YNODE_REQUIRED },
	{ "legal_basis", YNODE_STR, YNODE_REQUIRED },
	{ "valid_from", YNODE_STR, 0 },
	{ "expires", YNODE_STR, YNODE_REQUIRED },
	{ "hours", YNODE_STR, 0 },
	{ "methods", YNODE_SEQ, 0 },
	{ "require_case", YNODE_STR, 0 },
	{ "rate", YNODE_STR, 0 },
	{ "mode", YNODE_STR, 0 },
	{ "mask", YNODE_STR, 0 },
	{ NULL, YNODE_ANY, 0 },
};

enum {
	GK_ID = 0,
	GK_CONSUMER,
	GK_RESOURCE,
	GK_PURPOSES,
	GK_APPROVED_BY,
	GK_LEGAL_BASIS,
	GK_VALID_FROM,
	GK_EXPIRES,
	GK_HOURS,
	GK_METHODS,
	GK_REQUIRE_CASE,
	GK_RATE,
	GK_MODE,
	GK_MASK,
	GK_NKEYS,
};

static int
pload_date(struct pload *L, struct ynode_doc *d, yaml_node_t *n,
    const char *what, int64_t *midnight)
{
	const char *s;
	int y, m, dd;

	if ((s = ynode_str(d, n, what)) == NULL)
		return -1;
	if (tz_parse_date(s, &y, &m, &dd) == -1) {
		ynode_error(d, n, "%s: \"%s\" is not a date (YYYY-MM-DD)", what,
		    s);
		return -1;
	}
	*midnight = tz_local_midnight(L->p->tz, y, m, dd);
	return 0;
}

/* "600/min" -> GCRA emission interval and burst. */
static int
pload_rate(struct ynode_doc *d, yaml_node_t *n, struct policy_grant *g)
{
	const char *s, *c;
	uint64_t count = 0, period_ns;

	if ((s = ynode_str(d, n, "rate")) == NULL)
		return -1;
	for (c = s; *c >= '0' && *c <= '9' && count <= 1000000000; c++)
		count = count * 10 + (uint64_t)(*c - '0');
	if (c == s || *c != '/' || count == 0 || count > 1000000)
		goto bad;
	c++;
	if (strcmp(c, "s") == 0)
		period_ns = 1000000000ULL;
	else if (strcmp(c, "min") == 0)
		period_ns = 60ULL * 1000000000ULL;
	else if (strcmp(c, "h") == 0)
		period_ns = 3600ULL * 1000000000ULL;
	else
		goto bad;
	g->rate_interval_ns = period_ns / count;
	if (g->rate_interval_ns == 0)
		g->rate_interval_ns = 1;
	g->rate_burst = (uint32_t)count;
	return 0;
bad:
	ynode_error(d, n,
	    "rate: \"%s\" is not a rate (N/s, N/min or N/h, N from 1 to "
	    "1000000)",
	    s);
	return -1;
}

static int
pload_grant_cmp_id(const struct policy_grant *a, const struct policy_grant *b)
{
	return strcmp(a->id ? a->id : "", b->id ? b->id : "");
}

/* Order grant indices by resource, consumer, id (qsort_r: no global). */
static int
pload_res_grant_cmp(const void *a, const void *b, void *arg)
{
	const struct policy *p = arg;
	const struct policy_grant *ga = &p->grants[*(const uint32_t *)a];
	const struct policy_grant *gb = &p->grants[*(const uint32_t *)b];

	if (ga->resource->index != gb->resource->index)
		return ga->resource->index < gb->resource->index ? -1 : 1;
	if (ga->consumer->index != gb->consumer->index)
		return ga->consumer->index < gb->consumer->index ? -1 : 1;
	return pload_grant_cmp_id(ga, gb);
}

static void
pload_grants(struct pload *L)
{
	struct policy *p = L->p;
	struct policy_grant *g;
	yaml_node_t *v[GK_NKEYS];
	const char *id, *s;
	uint32_t ref;
	size_t i, j;
	int flag;
	int32_t from, to;

	p->ngrants = L->grants.n;
	p->grants = pcalloc(p, p->ngrants + 1, sizeof(*p->grants));
	for (i = 0; i < L->grants.n; i++) {
		struct pitem *it = &L->grants.v[i];
		struct ynode_doc *d = it->d;
		int ok = 1;

		g = &p->grants[i];
		g->index = i;
		g->valid_from = INT64_MIN;
		g->valid_until = INT64_MAX;
		g->hours_from = g->hours_to = -1;
		if (ynode_map(d, it->val, pload_grant_keys, v, "grant") == -1 &&
		    (v[GK_ID] == NULL || v[GK_CONSUMER] == NULL ||
		        v[GK_RESOURCE] == NULL)) {
			g->id = pstrdup(p, "");
			continue;
		}
		if ((id = pload_id(d, v[GK_ID], "id")) == NULL) {
			g->id = pstrdup(p, "");
			continue;
		}
		g->id = pstrdup(p, id);
		pload_new_id(L, &L->ids_grant, &L->grants, i, d, v[GK_ID], id,
		    "grant");
		if (pload_ref(&L->ids_dept, d, v[GK_CONSUMER], "consumer",
		        "department", &ref) == 0)
			g->consumer = &p->depts[ref];
		else
			ok = 0;
		if (pload_ref(&L->ids_res, d, v[GK_RESOURCE], "resource",
		        "resource", &ref) == 0)
			g->resource = &p->res[ref];
		else
			ok = 0;
		if (pload_strlist(L, d, v[GK_PURPOSES], "purposes",
		        &g->purposes, &g->npurposes) == 0) {
			if (g->npurposes == 0)
				ynode_error(d, v[GK_PURPOSES],
				    "purposes: a grant needs at least one "
				    "purpose");
			for (j = 0; j < g->npurposes; j++)
				if (ptab_get(&L->ids_purpose, 0, g->purposes[j],
				        strlen(g->purposes[j]), &ref) == -1)
					ynode_error(d,
					    ynode_at(d,
					        ynode_seq_item(v[GK_PURPOSES],
					            j)),
					    "purposes: undeclared purpose "
					    "\"%s\"",
					    g->purposes[j]);
		}
		if (pload_ref(&L->ids_dept, d, v[GK_APPROVED_BY], "approved_by",
		        "department", &ref) == 0 &&
		    g->resource != NULL && g->resource->owner != NULL &&
		    &p->depts[ref] != g->resource->owner)
			ynode_error(d, v[GK_APPROVED_BY],
			    "approved_by: \"%s\" does not own resource \"%s\" "
			    "(owner: %s)",
			    p->depts[ref].id, g->resource->id,
			    g->resource->owner->id);
		if ((s = ynode_str(d, v[GK_LEGAL_BASIS], "legal_basis")) !=
		    NULL) {
			if (*s == '\0')
				ynode_error(d, v[GK_LEGAL_BASIS],
				    "legal_basis: must not be empty");
			g->legal_basis = pstrdup(p, s);
		}
		if (v[GK_VALID_FROM] != NULL)
			pload_date(L, d, v[GK_VALID_FROM], "valid_from",
			    &g->valid_from);
		if (pload_date(L, d, v[GK_EXPIRES], "expires",
		        &g->valid_until) == 0) {
			int y, m, dd;

			/* The day after `expires`, at local midnight. */
			tz_parse_date(
			    (const char *)v[GK_EXPIRES]->data.scalar.value, &y,
			    &m, &dd);
			tz_civil_from_days(tz_days_from_civil(y, m, dd) + 1, &y,
			    &m, &dd);
			g->valid_until = tz_local_midnight(p->tz, y, m, dd);
			if (g->valid_from != INT64_MIN &&
			    g->valid_from >= g->valid_until)
				ynode_error(d, v[GK_EXPIRES],
				    "expires: before valid_from");
			else if (g->valid_until <= L->env->now)
				ynode_warn(d, v[GK_EXPIRES],
				    "grant \"%s\" has expired", g->id);
			else if (g->valid_until - L->env->now <=
			    (int64_t)PLOAD_EXPIRY_WARN_DAYS *
			        PLOAD_SECONDS_PER_DAY)
				ynode_warn(d, v[GK_EXPIRES],
				    "grant \"%s\" expires within %d days",
				    g->id, PLOAD_EXPIRY_WARN_DAYS);
		}
		if (v[GK_HOURS] != NULL &&
		    (s = ynode_str(d, v[GK_HOURS], "hours")) != NULL) {
			char a[6], b[6];

			if (strlen(s) != 11 || s[5] != '-' ||
			    (memcpy(a, s, 5), a[5] = '\0',
			        tz_parse_hhmm(a, &from)) == -1 ||
			    (memcpy(b, s + 6, 5), b[5] = '\0',
			        tz_parse_hhmm(b, &to)) == -1 ||
			    from == to || from == 86400)
				ynode_error(d, v[GK_HOURS],
				    "hours: \"%s\" is not a range like "
				    "\"08:00-20:00\"",
				    s);
			else {
				g->hours_from = from;
				g->hours_to = to;
			}
		}
		if (v[GK_METHODS] != NULL &&
		    pload_methods(d, v[GK_METHODS], "methods", &g->methods) ==
		        0 &&
		    g->resource != NULL && (g->methods & ~g->resource->methods))
			ynode_error(d, v[GK_METHODS],
			    "methods: not a subset of resource \"%s\"'s "
			    "methods",
			    g->resource->id);
		if (v[GK_REQUIRE_CASE] != NULL &&
		    ynode_bool(d, v[GK_REQUIRE_CASE], "require_case", &flag) ==
		        0)
			g->require_case = flag;
		if (v[GK_RATE] != NULL)
			pload_rate(d, v[GK_RATE], g);
		if (v[GK_MODE] != NULL &&
		    (s = ynode_str(d, v[GK_MODE], "mode")) != NULL) {
			if (strcmp(s, "shadow") == 0)
				g->shadow = 1;
			else if (strcmp(s, "enforce") != 0)
				ynode_error(d, v[GK_MODE],
				    "mode: unknown mode \"%s\" (expected: "
				    "enforce, shadow)",
				    s);
		}
		if (v[GK_MASK] != NULL &&
		    pload_ref(&L->ids_mask, d, v[GK_MASK], "mask", "mask",
		        &ref) == 0)
			g->mask = &p->masks[ref];
		if (!ok || g->resource == NULL || g->consumer == NULL)
			continue;
		if (g->consumer == g->resource->owner)
			ynode_warn(d, v[GK_CONSUMER],
			    "grant \"%s\" has no effect: %s owns %s", g->id,
			    g->consumer->id, g->resource->id);
		else if (g->resource->sharing != POLICY_SHARE_CONDITIONAL)
			ynode_warn(d, v[GK_RESOURCE],
			    "grant \"%s\" has no effect: resource \"%s\" is "
			    "shared as %s",
			    g->id, g->resource->id,
			    policy_sharing_str(g->resource->sharing));
	}
}

static const struct ynode_key pload_susp_keys[] = {
	{ "id", YNODE_STR, YNODE_REQUIRED },
	{ "department", YNODE_STR, 0 },
	{ "resource", YNODE_STR, 0 },
	{ "grant", YNODE_STR, 0 },
	{ "cert_serial", YNODE_STR, 0 },
	{ "reason", YNODE_STR, YNODE_REQUIRED },
	{ NULL, YNODE_ANY, 0 },
};

/* Upper-case hex without leading zeros, as struct peer spells serials. */
static char *
pload_serial(struct pload *L, struct ynode_doc *d, yaml_node_t *n)
{
	const char *s, *c;
	char *out, *o;

	if ((s = ynode_str(d, n, "cert_serial")) == NULL)
		return NULL;
	for (c = s; *c; c++)
		if (!((*c >= '0' && *c <= '9') || (*c >= 'A' && *c <= 'F') ||
		        (*c >= 'a' && *c <= 'f') || *c == ':'))
			break;
	if (*s == '\0' || *c != '\0' || strlen(s) > 128) {
		ynode_error(d, n, "cert_serial: \"%s\" is not a hex serial", s);
		return NULL;
	}
	out = pcalloc(L->p, strlen(s) + 2, 1);
	o = out;
	for (c = s; *c; c++) {
		if (*c == ':' || (o == out && *c == '0'))
			continue;
		*o++ = (*c >= 'a' && *c <= 'f') ? (char)(*c - 32) : *c;
	}
	if (o == out)
		*o++ = '0';
	*o = '\0';
	return out;
}

static void
pload_suspensions(struct pload *L)
{
	struct policy *p = L->p;
	struct policy_suspension *su;
	yaml_node_t *v[6];
	const char *id, *s;
	uint32_t ref;
	size_t i;
	struct ptab ids;

	ptab_init(&ids);
	p->nsusp = L->susps.n;
	p->susp = pcalloc(p, p->nsusp + 1, sizeof(*p->susp));
	for (i = 0; i < L->susps.n; i++) {
		struct pitem *it = &L->susps.v[i];
		struct ynode_doc *d = it->d;

		su = &p->susp[i];
		if (ynode_map(d, it->val, pload_susp_keys, v, "suspension") ==
		        -1 &&
		    v[0] == NULL)
			continue;
		if ((id = pload_id(d, v[0], "id")) == NULL)
			continue;
		su->id = pstrdup(p, id);
		pload_new_id(L, &ids, &L->susps, i, d, v[0], id, "suspension");
		if (v[1] &&
		    pload_ref(&L->ids_dept, d, v[1], "department", "department",
		        &ref) == 0)
			su->department = &p->depts[ref];
		if (v[2] &&
		    pload_ref(&L->ids_res, d, v[2], "resource", "resource",
		        &ref) == 0)
			su->resource = &p->res[ref];
		if (v[3] &&
		    pload_ref(&L->ids_grant, d, v[3], "grant", "grant", &ref) ==
		        0) {
			su->grant = &p->grants[ref];
			if (p->grants[ref].suspended_by == 0)
				p->grants[ref].suspended_by = (int)i + 1;
		}
		if (v[4] != NULL)
			su->cert_serial = pload_serial(L, d, v[4]);
		if ((s = ynode_str(d, v[5], "reason")) != NULL)
			su->reason = pstrdup(p, s);
		if (!v[1] && !v[2] && !v[3] && !v[4])
			ynode_error(d, it->val,
			    "suspension: needs at least one of department, "
			    "resource, grant, cert_serial");
	}
	ptab_clear(&ids);
}

/* ---- cross checks and compilation ---- */

/*
 * Could one certificate evidently satisfy both departments' conditions?
 * They must constrain at least one common field and agree on every field
 * they both constrain (SAN prefixes agree when one extends the other).
 * Departments that constrain different fields are not flagged: a
 * certificate matching both is denied at run time.
 */
static int
pload_match_overlap(const struct pdept *a, const struct pdept *b)
{
	const struct pmatch *x, *y;
	size_t i, j, n;
	int common = 0;

	for (i = 0; i < a->nm; i++) {
		x = &a->m[i];
		for (j = 0; j < b->nm; j++) {
			y = &b->m[j];
			if (y->kind != x->kind || y->attr != x->attr)
				continue;
			if (x->kind == PMATCH_SAN_URI ||
			    x->kind == PMATCH_SAN_DNS) {
				n = x->len < y->len ? x->len : y->len;
				if ((x->prefix || y->prefix)
				        ? memcmp(x->val, y->val, n) != 0 ||
				            (!x->prefix && x->len < y->len) ||
				            (!y->prefix && y->len < x->len)
				        : x->len != y->len ||
				            memcmp(x->val, y->val, n) != 0)
					continue; /* a cert may hold both */
				common = 1;
				continue;
			}
			if (x->len != y->len || memcmp(x->val, y->val, x->len))
				return 0;
			common = 1;
		}
	}
	return common;
}

static void
pload_dept_index(struct pload *L)
{
	struct policy *p = L->p;
	struct pdept *pd;
	uint32_t first;
	size_t i, j, k;

	p->dept_scan = pcalloc(p, p->ndepts + 1, sizeof(uint32_t));
	for (i = 0; i < p->ndepts; i++) {
		pd = &p->dmatch[i];
		for (k = 0; k < pd->nm; k++)
			if (pd->m[k].kind == PMATCH_SUBJECT ||
			    (!pd->m[k].prefix &&
			        pd->m[k].kind != PMATCH_ISSUER))
				break;
		if (k == pd->nm) {
			p->dept_scan[p->ndept_scan++] = (uint32_t)i;
			continue;
		}
		/* Move the key condition first; keyed lookups use it. */
		if (k != 0) {
			struct pmatch t = pd->m[0];

			pd->m[0] = pd->m[k];
			pd->m[k] = t;
		}
		pd->keyed = 1;
		first = ptab_put(&p->dept_index,
		    1 + (uint32_t)pd->m[0].kind * 16 + (uint32_t)pd->m[0].attr,
		    pd->m[0].val, pd->m[0].len, (uint32_t)i + 1);
		if (first != (uint32_t)i + 1) {
			/* Chain behind the first with the same key. */
			j = first - 1;
			while (p->dmatch[j].next_same_key)
				j = p->dmatch[j].next_same_key - 1;
			p->dmatch[j].next_same_key = (uint32_t)i + 1;
		}
	}
	for (i = 0; i < p->ndepts; i++)
		for (j = i + 1; j < p->ndepts; j++)
			if (p->dmatch[i].nm && p->dmatch[j].nm &&
			    pload_match_overlap(&p->dmatch[i], &p->dmatch[j])) {
				struct pitem *it = &L->depts.v[j];

				ynode_error(it->d, it->key,
				    "departments \"%s\" and \"%s\" can both "
				    "match one certificate; make their match "
				    "fields differ",
				    p->depts[i].id, p->depts[j].id);
			}
}

static uint32_t
pload_node_new(struct policy *p)
{
	if (p->nnodes == p->capnodes) {
		p->capnodes = p->capnodes ? p->capnodes * 2 : 64;
		p->nodes =
		    xreallocarray(p->nodes, p->capnodes, sizeof(*p->nodes));
	}
	memset(&p->nodes[p->nnodes], 0, sizeof(p->nodes[0]));
	p->nodes[p->nnodes].wild = -1;
	return (uint32_t)p->nnodes++;
}

static void
pload_u32_push(uint32_t **v, uint32_t *n, uint32_t x)
{
	if ((*n & (*n - 1)) == 0 || *n == 0)
		*v = xreallocarray(*v, *n ? *n * 2 : 2, sizeof(**v));
	(*v)[(*n)++] = x;
}

/* Insert pattern i into the trie; literal edges live in p->edges. */
static void
pload_trie_insert(struct policy *p, uint32_t pi)
{
	const char *seg, *e;
	uint32_t node = 0, child;
	size_t len;
	const struct ppat *pat = &p->pats[pi];

	for (seg = pat->text + 1;; seg = e + 1) {
		for (e = seg; *e && *e != '/'; e++)
			;
		len = (size_t)(e - seg);
		if (len == 2 && seg[0] == '*' && seg[1] == '*') {
			pload_u32_push(&p->nodes[node].rest,
			    &p->nodes[node].nrest, pi);
			return;
		}
		if ((len == 1 && seg[0] == '*') ||
		    (len >= 3 && seg[0] == '{' && seg[len - 1] == '}')) {
			if (p->nodes[node].wild < 0) {
				child = pload_node_new(p);
				p->nodes[node].wild = (int32_t)child;
			}
			node = (uint32_t)p->nodes[node].wild;
		} else {
			child = (uint32_t)p->nnodes;
			if (ptab_put(&p->edges, node, seg, len, child) ==
			    child) {
				pload_node_new(p);
				p->nodes[child].empty = len == 0;
				pload_u32_push(&p->nodes[node].lit,
				    &p->nodes[node].nlit, child);
			} else
				ptab_get(&p->edges, node, seg, len, &child);
			node = child;
		}
		if (*e == '\0')
			break;
	}
	pload_u32_push(&p->nodes[node].term, &p->nodes[node].nterm, pi);
}

static int
pload_spec_cmp(const struct ppat *a, const struct ppat *b)
{
	if (a->nlit != b->nlit)
		return a->nlit > b->nlit ? 1 : -1;
	if (a->nwild != b->nwild)
		return a->nwild < b->nwild ? 1 : -1;
	if (a->rest != b->rest)
		return a->rest ? -1 : 1;
	return 0;
}

/* Report pattern pi as conflicting with every equal pattern in list. */
static void
pload_conflicts(struct pload *L, uint32_t pi, const uint32_t *list, uint32_t n)
{
	struct policy *p = L->p;
	const struct ppat *a = &p->pats[pi], *b;
	uint32_t k;

	for (k = 0; k < n; k++) {
		b = &p->pats[list[k]];
		if (list[k] <= pi || b->resource == a->resource ||
		    (a->methods & b->methods) == 0 || pload_spec_cmp(a, b) != 0)
			continue;
		diag_error(L->dg, b->file, b->line, b->col,
		    "paths: \"%s\" of resource \"%s\" and \"%s\" of resource "
		    "\"%s\" (%s:%zu:%zu) are equally specific and can match "
		    "the same request",
		    b->text, p->res[b->resource].id, a->text,
		    p->res[a->resource].id, a->file, a->line, a->col);
	}
}

/* Every pattern stored under node and its descendants overlaps a `**`. */
static void
pload_overlap_subtree(struct pload *L, uint32_t pi, uint32_t node,
    size_t *budget)
{
	struct policy *p = L->p;
	size_t i;

	if (*budget == 0)
		return;
	(*budget)--;
	pload_conflicts(L, pi, p->nodes[node].term, p->nodes[node].nterm);
	pload_conflicts(L, pi, p->nodes[node].rest, p->nodes[node].nrest);
	if (p->nodes[node].wild >= 0)
		pload_overlap_subtree(L, pi, (uint32_t)p->nodes[node].wild,
		    budget);
	for (i = 0; i < p->nodes[node].nlit; i++)
		pload_overlap_subtree(L, pi, p->nodes[node].lit[i], budget);
}

/*
 * Walk the trie along pattern pi's segments, following every edge a path
 * matching pi could take, and report equally specific patterns there.
 */
static void
pload_overlap_walk(struct pload *L, uint32_t pi, const char *seg, uint32_t node,
    size_t *budget)
{
	struct policy *p = L->p;
	const char *e;
	size_t len, i;
	uint32_t child;

	if (*budget == 0)
		return;
	(*budget)--;
	/* `**` anchored here matches whatever pi has left. */
	pload_conflicts(L, pi, p->nodes[node].rest, p->nodes[node].nrest);
	if (seg == NULL) {
		pload_conflicts(L, pi, p->nodes[node].term,
		    p->nodes[node].nterm);
		return;
	}
	for (e = seg; *e && *e != '/'; e++)
		;
	len = (size_t)(e - seg);
	if (len == 2 && seg[0] == '*' && seg[1] == '*') {
		pload_overlap_subtree(L, pi, node, budget);
		return;
	}
	if ((len == 1 && seg[0] == '*') ||
	    (len >= 3 && seg[0] == '{' && seg[len - 1] == '}')) {
		/* A wildcard matches any non-empty literal below. */
		for (i = 0; i < p->nodes[node].nlit; i++)
			if (!p->nodes[p->nodes[node].lit[i]].empty)
				pload_overlap_walk(L, pi, *e ? e + 1 : NULL,
				    p->nodes[node].lit[i], budget);
	} else if (ptab_get(&p->edges, node, seg, len, &child) == 0)
		pload_overlap_walk(L, pi, *e ? e + 1 : NULL, child, budget);
	if (p->nodes[node].wild >= 0 && len > 0)
		pload_overlap_walk(L, pi, *e ? e + 1 : NULL,
		    (uint32_t)p->nodes[node].wild, budget);
}

static void
pload_compile_paths(struct pload *L)
{
	struct policy *p = L->p;
	size_t i, budget;

	pload_node_new(p); /* the root */
	for (i = 0; i < p->npats; i++)
		pload_trie_insert(p, (uint32_t)i);
	for (i = 0; i < p->npats; i++) {
		budget = 100000;
		pload_overlap_walk(L, (uint32_t)i, p->pats[i].text + 1, 0,
		    &budget);
		if (budget == 0)
			diag_warn(L->dg, p->pats[i].file, p->pats[i].line,
			    p->pats[i].col,
			    "paths: overlap check of \"%s\" stopped early",
			    p->pats[i].text);
	}
}

static void
pload_compile_grants(struct pload *L)
{
	struct policy *p = L->p;
	size_t i, n = 0, r;

	p->res_grants = pcalloc(p, p->ngrants + 1, sizeof(uint32_t));
	p->res_grant_off = pcalloc(p, p->nres + 1, sizeof(uint32_t));
	for (i = 0; i < p->ngrants; i++)
		if (p->grants[i].resource != NULL &&
		    p->grants[i].consumer != NULL)
			p->res_grants[n++] = (uint32_t)i;
	qsort_r(p->res_grants, n, sizeof(uint32_t), pload_res_grant_cmp, p);
	/* res_grant_off[r] is where resource r's grants start. */
	for (i = 0, r = 0; r <= p->nres; r++) {
		while (i < n && p->grants[p->res_grants[i]].resource->index < r)
			i++;
		p->res_grant_off[r] = (uint32_t)i;
	}
	p->rate_tat = pcalloc(p, p->ngrants + 1, sizeof(*p->rate_tat));
}

static void
pload_clear(struct pload *L)
{
	size_t i;

	for (i = 0; i < L->ndocs; i++)
		ynode_free(&L->docs[i]);
	free(L->docs);
	free(L->purposes.v);
	free(L->depts.v);
	free(L->res.v);
	free(L->masks.v);
	free(L->grants.v);
	free(L->susps.v);
	ptab_clear(&L->ids_purpose);
	ptab_clear(&L->ids_dept);
	ptab_clear(&L->ids_res);
	ptab_clear(&L->ids_mask);
	ptab_clear(&L->ids_grant);
}

/*
 * Load a policy file or folder (see policy.h). Three phases: collect the
 * files' sections, check and build each section (all errors recorded),
 * then compile the lookup structures. Returns NULL if any error was found.
 */
struct policy *
policy_load(const char *path, const struct policy_env *env, struct diag *dg)
{
	struct pload L;
	struct policy *p;
	const char *s;
	char err[256];
	size_t nerr0 = dg->nerrors;

	memset(&L, 0, sizeof(L));
	p = xcalloc(1, sizeof(*p));
	atomic_init(&p->refcnt, 1);
	ptab_init(&p->dept_index);
	ptab_init(&p->edges);
	L.p = p;
	L.env = env;
	L.dg = dg;
	if ((p->tz = tz_load(tz_name(env->tz), err, sizeof(err))) == NULL) {
		diag_error(dg, path, 0, 0, "timezone: %s", err);
		goto fail;
	}
	if (pload_read(&L, path) == -1 || dg->nerrors > nerr0)
		goto fail;
	if (L.revision.val != NULL &&
	    (s = ynode_str(L.revision.d, L.revision.val, "revision")) != NULL)
		p->revision = pstrdup(p, s);
	else
		p->revision = pstrdup(p, "");
	pload_levels(&L);
	if (p->nlevels == 0)
		goto fail;
	pload_defaults(&L);
	pload_purposes(&L);
	pload_masks(&L);
	pload_departments(&L);
	pload_resources(&L);
	pload_grants(&L);
	pload_suspensions(&L);
	if (dg->nerrors > nerr0)
		goto fail;
	pload_dept_index(&L);
	pload_compile_paths(&L);
	pload_compile_grants(&L);
	if (dg->nerrors > nerr0)
		goto fail;
	pload_clear(&L);
	return p;
fail:
	pload_clear(&L);
	policy_unref(p);
	return NULL;
}

void
policy_ref(struct policy *p)
{
	atomic_fetch_add(&p->refcnt, 1);
}

/* Drop a reference; the last one frees everything the policy owns. */
void
policy_unref(struct policy *p)
{
	size_t i;

	if (p == NULL || atomic_fetch_sub(&p->refcnt, 1) != 1)
		return;
	for (i = 0; i < p->ndepts; i++)
		free(p->dmatch ? p->dmatch[i].m : NULL);
	for (i = 0; i < p->nallocs; i++)
		free(p->allocs[i]);
	free(p->allocs);
	for (i = 0; i < p->nnodes; i++) {
		free(p->nodes[i].term);
		free(p->nodes[i].rest);
		free(p->nodes[i].lit);
	}
	free(p->nodes);
	free(p->pats);
	ptab_clear(&p->dept_index);
	ptab_clear(&p->edges);
	tz_free(p->tz);
	free(p);
}
