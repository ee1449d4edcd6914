/* policy.c - the decision pipeline of contract section 4.1 (pure). */
#include "config.h"

#include <stdatomic.h>
#include <string.h>
#include <strings.h>

#include "pathnorm.h"
#include "peer.h"
#include "policy.h"
#include "policy_int.h"
#include "tz.h"

#define POLICY_MATCH_BUDGET 4096 /* trie nodes visited for one path */

static const char *const policy_step_names[POLICY_NSTEPS] = {
	[POLICY_STEP_PARSE] = "parse",
	[POLICY_STEP_CERT] = "client_cert",
	[POLICY_STEP_DEPARTMENT] = "department",
	[POLICY_STEP_COUNTRY] = "country",
	[POLICY_STEP_ZONE] = "zone",
	[POLICY_STEP_RESOURCE] = "resource",
	[POLICY_STEP_SUSPENSION] = "suspension",
	[POLICY_STEP_OWNER] = "owner",
	[POLICY_STEP_SHARING] = "sharing",
	[POLICY_STEP_CLEARANCE] = "clearance",
	[POLICY_STEP_GRANT] = "grant",
};

/* The HTTP status a reason answers with (contract section 4.1). */
int
policy_reason_status(enum policy_reason r)
{
	switch (r) {
	case POLICY_R_OWNER:
	case POLICY_R_OPEN:
	case POLICY_R_UNCONDITIONAL:
	case POLICY_R_GRANT:
		return 200;
	case POLICY_R_BAD_REQUEST:
		return 400;
	case POLICY_R_RATE_LIMITED:
	case POLICY_R_CONNECTION_LIMIT:
		return 429;
	case POLICY_R_AUDIT_UNAVAILABLE:
		return 503;
	default:
		return 403;
	}
}

const char *
policy_step_str(enum policy_step s)
{
	return (unsigned)s < POLICY_NSTEPS ? policy_step_names[s] : "?";
}

const char *
policy_outcome_str(enum policy_outcome o)
{
	switch (o) {
	case POLICY_OUT_NOT_REACHED:
		return "not_reached";
	case POLICY_OUT_PASS:
		return "pass";
	case POLICY_OUT_SKIP:
		return "skip";
	case POLICY_OUT_DENY:
		return "deny";
	case POLICY_OUT_ALLOW:
		return "allow";
	}
	return "?";
}

const char *
policy_level_str(const struct policy *p, int level)
{
	if (level < 0 || (size_t)level >= p->nlevels)
		return "?";
	return p->levels[level];
}

/* The bit of an upper-case method name, or 0 for any other method. */
unsigned
policy_method_bit(const char *m, size_t len)
{
	static const struct {
		const char *name;
		size_t len;
		unsigned bit;
	} methods[] = {
		{ "GET", 3, POLICY_M_GET },
		{ "HEAD", 4, POLICY_M_HEAD },
		{ "POST", 4, POLICY_M_POST },
		{ "PUT", 3, POLICY_M_PUT },
		{ "PATCH", 5, POLICY_M_PATCH },
		{ "DELETE", 6, POLICY_M_DELETE },
		{ "OPTIONS", 7, POLICY_M_OPTIONS },
	};
	size_t i;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (len == methods[i].len &&
		    memcmp(m, methods[i].name, len) == 0)
			return methods[i].bit;
	return 0;
}

const char *
policy_revision(const struct policy *p)
{
	return p->revision;
}

const char *
policy_sha256(const struct policy *p)
{
	return p->sha256;
}

const char *
policy_purpose_header(const struct policy *p)
{
	return p->purpose_header;
}

const char *
policy_case_header(const struct policy *p)
{
	return p->case_header;
}

const char *
policy_operator_header(const struct policy *p)
{
	return p->operator_header;
}

size_t
policy_ndepartments(const struct policy *p)
{
	return p->ndepts;
}

const struct policy_department *
policy_department_at(const struct policy *p, size_t i)
{
	return i < p->ndepts ? &p->depts[i] : NULL;
}

size_t
policy_nresources(const struct policy *p)
{
	return p->nres;
}

const struct policy_resource *
policy_resource_at(const struct policy *p, size_t i)
{
	return i < p->nres ? &p->res[i] : NULL;
}

size_t
policy_ngrants(const struct policy *p)
{
	return p->ngrants;
}

const struct policy_grant *
policy_grant_at(const struct policy *p, size_t i)
{
	return i < p->ngrants ? &p->grants[i] : NULL;
}

const struct policy_department *
policy_department_find(const struct policy *p, const char *id)
{
	size_t i;

	for (i = 0; i < p->ndepts; i++)
		if (strcmp(p->depts[i].id, id) == 0)
			return &p->depts[i];
	return NULL;
}

void
policy_rate_reset(const struct policy *p)
{
	size_t i;

	for (i = 0; i < p->ngrants; i++)
		atomic_store(&p->rate_tat[i], 0);
}

/* ---- step: department ---- */

static int
policy_san_match(const struct peer *id, const struct peer_str *v, size_t n,
    const struct pmatch *m)
{
	const char *s;
	size_t i;

	for (i = 0; i < n; i++) {
		s = peer_str(id, v[i]);
		if (m->prefix
		        ? (v[i].len >= m->len && memcmp(s, m->val, m->len) == 0)
		        : (v[i].len == m->len &&
		              memcmp(s, m->val, m->len) == 0))
			return 1;
	}
	return 0;
}

/* Every condition of department dept holds for the certificate id. */
static int
policy_dept_matches(const struct pdept *pd, const struct peer *id)
{
	const struct peer_name *nm;
	const struct pmatch *m;
	size_t i;

	for (i = 0; i < pd->nm; i++) {
		m = &pd->m[i];
		switch (m->kind) {
		case PMATCH_SUBJECT:
		case PMATCH_ISSUER:
			nm = m->kind == PMATCH_SUBJECT ? &id->subject
			                               : &id->issuer;
			if (nm->state[m->attr] != PEER_ATTR_OK ||
			    nm->val[m->attr].len != m->len ||
			    memcmp(peer_str(id, nm->val[m->attr]), m->val,
			        m->len) != 0)
				return 0;
			break;
		case PMATCH_SAN_URI:
			if (!policy_san_match(id, id->san_uri, id->n_san_uri,
			        m))
				return 0;
			break;
		case PMATCH_SAN_DNS:
			if (!policy_san_match(id, id->san_dns, id->n_san_dns,
			        m))
				return 0;
			break;
		}
	}
	return 1;
}

/* Count departments found under one key; remember the last. */
static void
policy_dept_chain(const struct policy *p, uint32_t first, const struct peer *id,
    size_t *n, const struct policy_department **out)
{
	uint32_t i = first;

	while (i != 0) {
		if (policy_dept_matches(&p->dmatch[i - 1], id)) {
			(*n)++;
			*out = &p->depts[i - 1];
		}
		i = p->dmatch[i - 1].next_same_key;
	}
}

/*
 * The one department the certificate maps to, or NULL (none, several, or
 * a field some match uses is unusable: repeated, NUL, too long).
 */
static const struct policy_department *
policy_find_department(const struct policy *p, const struct peer *id,
    const char **why)
{
	const struct policy_department *found = NULL;
	uint32_t first;
	size_t n = 0, i;
	int a;

	for (a = 0; a < PEER_NATTRS; a++) {
		if (((p->used_subject >> a) & 1) &&
		    id->subject.state[a] == PEER_ATTR_UNUSABLE) {
			*why = "a subject field used by a match is repeated, "
			       "too long or holds a NUL";
			return NULL;
		}
		if (((p->used_issuer >> a) & 1) &&
		    id->issuer.state[a] == PEER_ATTR_UNUSABLE) {
			*why = "an issuer field used by a match is repeated, "
			       "too long or holds a NUL";
			return NULL;
		}
	}
	if (p->uses_san && id->san_overflow) {
		*why = "too many or too long subject alternative names";
		return NULL;
	}
	/* Keyed departments: look up each of the certificate's fields. */
	for (a = 0; a < PEER_NATTRS; a++) {
		if (id->subject.state[a] == PEER_ATTR_OK &&
		    ptab_get(&p->dept_index,
		        1 + PMATCH_SUBJECT * 16 + (uint32_t)a,
		        peer_str(id, id->subject.val[a]),
		        id->subject.val[a].len, &first) == 0)
			policy_dept_chain(p, first, id, &n, &found);
	}
	for (i = 0; i < id->n_san_uri; i++)
		if (ptab_get(&p->dept_index, 1 + PMATCH_SAN_URI * 16,
		        peer_str(id, id->san_uri[i]), id->san_uri[i].len,
		        &first) == 0)
			policy_dept_chain(p, first, id, &n, &found);
	for (i = 0; i < id->n_san_dns; i++)
		if (ptab_get(&p->dept_index, 1 + PMATCH_SAN_DNS * 16,
		        peer_str(id, id->san_dns[i]), id->san_dns[i].len,
		        &first) == 0)
			policy_dept_chain(p, first, id, &n, &found);
	for (i = 0; i < p->ndept_scan; i++) {
		if (policy_dept_matches(&p->dmatch[p->dept_scan[i]], id)) {
			n++;
			found = &p->depts[p->dept_scan[i]];
		}
	}
	if (n == 1)
		return found;
	*why = n == 0 ? "no department matches the certificate"
	              : "the certificate matches several departments";
	return NULL;
}

/*
 * The one department a verified certificate maps to, or NULL; serve maps
 * a connection's certificate once with it and passes the department in.
 */
const struct policy_department *
policy_department_match(const struct policy *p, const struct peer *id)
{
	const char *why = NULL;

	if (id == NULL || !id->present)
		return NULL;
	return policy_find_department(p, id, &why);
}

/* ---- step: resource ---- */

struct policy_seg {
	uint16_t off, len;
};

struct policy_walk {
	const struct policy *p;
	const char *path;
	const struct policy_seg *seg;
	size_t nseg;
	unsigned method;
	size_t budget;
	int32_t best; /* pattern index, or -1 */
	int any_path; /* some pattern matched the path, any method */
};

/* Is a more specific than b (contract 4.1, then no `**` over `**`)? */
static int
policy_more_specific(const struct ppat *a, const struct ppat *b)
{
	if (a->nlit != b->nlit)
		return a->nlit > b->nlit;
	if (a->nwild != b->nwild)
		return a->nwild < b->nwild;
	return !a->rest && b->rest;
}

static void
policy_walk_offer(struct policy_walk *w, const uint32_t *list, uint32_t n)
{
	const struct ppat *pat;
	uint32_t k;

	for (k = 0; k < n; k++) {
		pat = &w->p->pats[list[k]];
		w->any_path = 1;
		if ((pat->methods & w->method) == 0)
			continue;
		if (w->best < 0 ||
		    policy_more_specific(pat, &w->p->pats[w->best]))
			w->best = (int32_t)list[k];
	}
}

static void
policy_walk(struct policy_walk *w, uint32_t node, size_t i)
{
	const struct pnode *nd = &w->p->nodes[node];
	uint32_t child;

	if (w->budget == 0)
		return;
	w->budget--;
	policy_walk_offer(w, nd->rest, nd->nrest);
	if (i == w->nseg) {
		policy_walk_offer(w, nd->term, nd->nterm);
		return;
	}
	if (ptab_get(&w->p->edges, node, w->path + w->seg[i].off, w->seg[i].len,
	        &child) == 0)
		policy_walk(w, child, i + 1);
	if (nd->wild >= 0 && w->seg[i].len > 0)
		policy_walk(w, (uint32_t)nd->wild, i + 1);
}

/*
 * Find the most specific pattern for method and the normalised path.
 * Returns 0 with *pat_out, or -1 (detail says why) when none matches.
 */
int
policy_match_path(const struct policy *p, const char *norm, size_t len,
    unsigned method, struct policy_decision *d, uint32_t *pat_out)
{
	struct policy_seg seg[POLICY_MAX_SEGMENTS];
	struct policy_walk w;
	const struct ppat *pat;
	size_t n = 0, i, start;

	/* Split "/a/b/" into "a", "b", "". */
	for (start = 1, i = 1; i <= len; i++) {
		if (i < len && norm[i] != '/')
			continue;
		if (n == POLICY_MAX_SEGMENTS) {
			d->detail = "path has too many segments";
			return -1;
		}
		seg[n].off = (uint16_t)start;
		seg[n].len = (uint16_t)(i - start);
		n++;
		start = i + 1;
	}
	memset(&w, 0, sizeof(w));
	w.p = p;
	w.path = norm;
	w.seg = seg;
	w.nseg = n;
	w.method = method;
	w.budget = POLICY_MATCH_BUDGET;
	w.best = -1;
	if (p->nnodes > 0)
		policy_walk(&w, 0, 0);
	if (w.budget == 0) {
		d->detail = "path matching budget exceeded";
		return -1;
	}
	if (w.best < 0) {
		d->detail = w.any_path ? "no resource allows this method here"
		                       : "no resource matches this path";
		return -1;
	}
	pat = &p->pats[w.best];
	if (pat->subject_seg >= 0 && (size_t)pat->subject_seg < n) {
		d->subject_off = seg[pat->subject_seg].off;
		d->subject_len = seg[pat->subject_seg].len;
	}
	*pat_out = (uint32_t)w.best;
	return 0;
}

/* ---- step: grants ---- */

/* The order in which a grant's conditions are checked; higher is further. */
static int
policy_reason_depth(enum policy_reason r)
{
	switch (r) {
	case POLICY_R_SUSPENDED:
		return 0;
	case POLICY_R_GRANT_NOT_YET_VALID:
	case POLICY_R_GRANT_EXPIRED:
		return 1;
	case POLICY_R_OUTSIDE_HOURS:
		return 2;
	case POLICY_R_METHOD_NOT_GRANTED:
		return 3;
	case POLICY_R_PURPOSE_REQUIRED:
	case POLICY_R_PURPOSE_MISMATCH:
		return 4;
	case POLICY_R_CASE_REQUIRED:
		return 5;
	case POLICY_R_RATE_LIMITED:
		return 6;
	default:
		return 7;
	}
}

/* Take one token of g's bucket (GCRA); returns 1 when within the rate. */
static int
policy_rate_take(const struct policy *p, const struct policy_grant *g,
    const struct policy_input *in)
{
	_Atomic uint64_t *tatp = &p->rate_tat[g->index];
	uint64_t now, tat, newtat, tau;

	now = (uint64_t)in->now_sec * 1000000000ULL + (uint64_t)in->now_nsec;
	tau = g->rate_interval_ns * (uint64_t)(g->rate_burst - 1);
	tat = atomic_load_explicit(tatp, memory_order_relaxed);
	do {
		newtat = (tat > now ? tat : now) + g->rate_interval_ns;
		if (newtat - now > tau + g->rate_interval_ns)
			return 0;
		if (in->dry_run)
			return 1;
	} while (!atomic_compare_exchange_weak_explicit(tatp, &tat, newtat,
	    memory_order_relaxed, memory_order_relaxed));
	return 1;
}

/*
 * The suspension that stops grant g for this request, or NULL. A
 * suspension naming a grant also needs its other fields to match.
 */
static const struct policy_suspension *
policy_grant_suspension(const struct policy *p, const struct policy_grant *g,
    const struct policy_input *in)
{
	const struct policy_suspension *su;
	size_t i;

	if (!g->suspended_by)
		return NULL;
	for (i = (size_t)g->suspended_by - 1; i < p->nsusp; i++) {
		su = &p->susp[i];
		if (su->grant != g)
			continue;
		if (su->department != NULL && su->department != g->consumer)
			continue;
		if (su->resource != NULL && su->resource != g->resource)
			continue;
		if (su->cert_serial != NULL &&
		    (in->peer == NULL || !in->peer->present ||
		        strcmp(su->cert_serial,
		            peer_str(in->peer, in->peer->serial)) != 0))
			continue;
		return su;
	}
	return NULL;
}

/* Check one grant's conditions in order; POLICY_R_GRANT when all hold. */
static enum policy_reason
policy_grant_check(const struct policy *p, const struct policy_grant *g,
    const struct policy_input *in, unsigned method, int take)
{
	int64_t now = in->now_sec;
	int32_t sod;
	size_t i;

	if (policy_grant_suspension(p, g, in) != NULL)
		return POLICY_R_SUSPENDED;
	if (now < g->valid_from)
		return POLICY_R_GRANT_NOT_YET_VALID;
	if (now >= g->valid_until)
		return POLICY_R_GRANT_EXPIRED;
	if (g->hours_from >= 0) {
		sod = tz_local_second_of_day(p->tz, now);
		if (g->hours_from < g->hours_to
		        ? (sod < g->hours_from || sod >= g->hours_to)
		        : (sod < g->hours_from && sod >= g->hours_to))
			return POLICY_R_OUTSIDE_HOURS;
	}
	if (g->methods != 0 && (g->methods & method) == 0)
		return POLICY_R_METHOD_NOT_GRANTED;
	if (in->purpose == NULL || in->purpose_len == 0)
		return POLICY_R_PURPOSE_REQUIRED;
	for (i = 0; i < g->npurposes; i++)
		if (strlen(g->purposes[i]) == in->purpose_len &&
		    memcmp(g->purposes[i], in->purpose, in->purpose_len) == 0)
			break;
	if (i == g->npurposes)
		return POLICY_R_PURPOSE_MISMATCH;
	if (g->require_case && (in->case_id == NULL || in->case_len == 0))
		return POLICY_R_CASE_REQUIRED;
	if (take && g->rate_interval_ns != 0 && !policy_rate_take(p, g, in))
		return POLICY_R_RATE_LIMITED;
	return POLICY_R_GRANT;
}

/*
 * The grant step: the first enforcing grant (in id order) whose conditions
 * all hold allows; otherwise the reason of the one that got furthest.
 * Shadow grants are evaluated without effect and reported.
 */
static enum policy_reason
policy_step_grants(const struct policy *p, const struct policy_input *in,
    unsigned method, const struct policy_department *dept,
    const struct policy_resource *res, struct policy_decision *d)
{
	const struct policy_grant *g;
	enum policy_reason r, best = POLICY_R_NO_GRANT;
	const struct policy_grant *furthest = NULL;
	uint32_t lo, hi, mid, k;
	int best_depth = -1, nenforce = 0;

	/* Binary search the first grant of dept within the resource. */
	lo = p->res_grant_off[res->index];
	hi = p->res_grant_off[res->index + 1];
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (p->grants[p->res_grants[mid]].consumer->index < dept->index)
			lo = mid + 1;
		else
			hi = mid;
	}
	hi = p->res_grant_off[res->index + 1];
	for (k = lo; k < hi; k++) {
		g = &p->grants[p->res_grants[k]];
		if (g->consumer != dept)
			break;
		if (g->shadow) {
			if (d->shadow != NULL &&
			    d->shadow_reason == POLICY_R_GRANT)
				continue;
			d->shadow = g;
			d->shadow_reason =
			    policy_grant_check(p, g, in, method, 0);
			continue;
		}
		nenforce++;
		if (d->grant != NULL)
			continue; /* decided; only shadows remain of interest */
		r = policy_grant_check(p, g, in, method, 1);
		if (d->ncandidates < POLICY_MAX_CANDIDATES) {
			d->cand[d->ncandidates].grant = g;
			d->cand[d->ncandidates].reason = r;
		}
		d->ncandidates++;
		if (r == POLICY_R_GRANT) {
			d->grant = g;
			continue;
		}
		if (policy_reason_depth(r) > best_depth) {
			best_depth = policy_reason_depth(r);
			best = r;
			furthest = g;
			if (r == POLICY_R_SUSPENDED)
				d->suspension =
				    policy_grant_suspension(p, g, in);
			else
				d->suspension = NULL;
		}
	}
	if (d->grant != NULL) {
		d->suspension = NULL;
		return POLICY_R_GRANT;
	}
	if (nenforce == 0)
		return POLICY_R_NO_GRANT;
	/* On a denial, grant names the grant that got furthest. */
	d->grant = furthest;
	return best;
}

/* ---- the pipeline ---- */

static void
policy_finish(struct policy_decision *d, enum policy_step step,
    enum policy_reason r, int allow)
{
	d->step = step;
	d->reason = r;
	d->allow = allow;
	d->status = policy_reason_status(r);
	d->outcome[step] = allow ? POLICY_OUT_ALLOW : POLICY_OUT_DENY;
}

static const struct policy_suspension *
policy_suspension_find(const struct policy *p, const struct peer *id,
    const struct policy_department *dept, const struct policy_resource *res)
{
	const struct policy_suspension *su;
	size_t i;

	for (i = 0; i < p->nsusp; i++) {
		su = &p->susp[i];
		if (su->grant != NULL)
			continue; /* judged with the grant itself */
		if (su->department != NULL && su->department != dept)
			continue;
		if (su->resource != NULL && su->resource != res)
			continue;
		if (su->cert_serial != NULL &&
		    (!id->present ||
		        strcmp(su->cert_serial, peer_str(id, id->serial)) != 0))
			continue;
		return su;
	}
	return NULL;
}

/*
 * Decide one request as contract section 4.1 says; the first failing step
 * decides. Fills d completely (every step's outcome, the deciding object
 * and, for grants, the candidates). Thread-safe: the only shared state it
 * writes is the per-grant rate bucket, with atomics.
 */
void
policy_decide(const struct policy *p, const struct policy_input *in,
    struct policy_decision *d)
{
	const struct peer *id = in->peer;
	const struct policy_department *dept = NULL;
	const struct policy_resource *res = NULL;
	const struct ppat *pat;
	enum policy_reason r;
	unsigned method;
	uint32_t pi;
	size_t i;
	int have_cert = id != NULL && id->present;

	memset(d, 0, sizeof(*d));
	/* 1. The request parses strictly and the path normalises. */
	if (in->malformed) {
		d->detail = "malformed request";
		policy_finish(d, POLICY_STEP_PARSE, POLICY_R_BAD_REQUEST, 0);
		return;
	}
	if (in->norm == NULL || in->normsz < in->path_len + 1 ||
	    pathnorm(in->path, in->path_len, in->norm, in->normsz, &d->norm_len,
	        &d->detail) == -1) {
		if (d->detail == NULL)
			d->detail = "no room for the normalised path";
		policy_finish(d, POLICY_STEP_PARSE, POLICY_R_BAD_REQUEST, 0);
		return;
	}
	d->outcome[POLICY_STEP_PARSE] = POLICY_OUT_PASS;
	method = policy_method_bit(in->method, in->method_len);

	/*
	 * 2. A verified certificate. Without one, an optional listener
	 * still serves `open` resources: look the resource up first.
	 */
	if (!have_cert) {
		if (!in->cert_optional ||
		    policy_match_path(p, in->norm, d->norm_len, method, d,
		        &pi) == -1 ||
		    p->res[p->pats[pi].resource].sharing != POLICY_SHARE_OPEN) {
			d->subject_off = d->subject_len = 0;
			d->detail = "no verified client certificate";
			policy_finish(d, POLICY_STEP_CERT,
			    POLICY_R_NO_CLIENT_CERT, 0);
			return;
		}
		d->outcome[POLICY_STEP_CERT] = POLICY_OUT_SKIP;
		d->outcome[POLICY_STEP_DEPARTMENT] = POLICY_OUT_SKIP;
	} else {
		d->outcome[POLICY_STEP_CERT] = POLICY_OUT_PASS;
		/* 3. Exactly one department. */
		if ((dept = in->department) == NULL &&
		    (dept = policy_find_department(p, id, &d->detail)) ==
		        NULL) {
			policy_finish(d, POLICY_STEP_DEPARTMENT,
			    POLICY_R_UNKNOWN_DEPARTMENT, 0);
			return;
		}
		d->department = dept;
		d->outcome[POLICY_STEP_DEPARTMENT] = POLICY_OUT_PASS;
	}

	/* 4. Source country. */
	if (p->ncountries > 0) {
		for (i = 0; i < p->ncountries; i++)
			if (in->country != NULL && in->country[0] != '\0' &&
			    strcmp(p->countries[i], in->country) == 0)
				break;
		if (i == p->ncountries &&
		    !((in->country == NULL || in->country[0] == '\0') &&
		        p->countries_unknown)) {
			d->detail = "source country not in defaults.countries";
			policy_finish(d, POLICY_STEP_COUNTRY,
			    POLICY_R_COUNTRY_BLOCKED, 0);
			return;
		}
		d->outcome[POLICY_STEP_COUNTRY] = POLICY_OUT_PASS;
	} else
		d->outcome[POLICY_STEP_COUNTRY] = POLICY_OUT_SKIP;

	/* 5. Source zone. */
	if (dept != NULL && dept->nzones > 0) {
		for (i = 0; i < dept->nzones; i++)
			if (in->zone != NULL &&
			    strcmp(dept->zones[i], in->zone) == 0)
				break;
		if (i == dept->nzones) {
			d->detail = "source address outside the department's "
			            "zones";
			policy_finish(d, POLICY_STEP_ZONE,
			    POLICY_R_ZONE_MISMATCH, 0);
			return;
		}
		d->outcome[POLICY_STEP_ZONE] = POLICY_OUT_PASS;
	} else
		d->outcome[POLICY_STEP_ZONE] = POLICY_OUT_SKIP;

	/* 6. The resource: most specific pattern for method and path. */
	if (policy_match_path(p, in->norm, d->norm_len, method, d, &pi) == -1) {
		policy_finish(d, POLICY_STEP_RESOURCE, POLICY_R_NO_RESOURCE, 0);
		return;
	}
	pat = &p->pats[pi];
	res = &p->res[pat->resource];
	d->resource = res;
	d->outcome[POLICY_STEP_RESOURCE] = POLICY_OUT_PASS;

	/* 7. Suspensions (those naming a grant are judged with it). */
	if ((d->suspension = policy_suspension_find(p, id, dept, res)) !=
	    NULL) {
		d->detail = d->suspension->reason;
		policy_finish(d, POLICY_STEP_SUSPENSION, POLICY_R_SUSPENDED, 0);
		return;
	}
	d->outcome[POLICY_STEP_SUSPENSION] = POLICY_OUT_PASS;

	/* 8. The owner sees its own data unmasked. */
	if (dept != NULL && dept == res->owner) {
		policy_finish(d, POLICY_STEP_OWNER, POLICY_R_OWNER, 1);
		return;
	}
	d->outcome[POLICY_STEP_OWNER] = POLICY_OUT_SKIP;
	d->mask = res->mask;

	/* 9. Sharing type. */
	if (res->sharing == POLICY_SHARE_OPEN) {
		policy_finish(d, POLICY_STEP_SHARING, POLICY_R_OPEN, 1);
		return;
	}
	if (res->sharing == POLICY_SHARE_NONE) {
		d->detail = "resource is not shared (sharing: none)";
		d->mask = NULL;
		policy_finish(d, POLICY_STEP_SHARING, POLICY_R_NOT_SHARED, 0);
		return;
	}
	d->outcome[POLICY_STEP_SHARING] = POLICY_OUT_PASS;

	/* 10. Clearance (dept is set: no certificate stops at step 2). */
	if (dept->clearance < res->classification) {
		d->detail = "department clearance below the resource's "
		            "classification";
		d->mask = NULL;
		policy_finish(d, POLICY_STEP_CLEARANCE,
		    POLICY_R_INSUFFICIENT_CLEARANCE, 0);
		return;
	}
	d->outcome[POLICY_STEP_CLEARANCE] = POLICY_OUT_PASS;
	if (res->sharing == POLICY_SHARE_UNCONDITIONAL) {
		d->outcome[POLICY_STEP_GRANT] = POLICY_OUT_SKIP;
		d->step = POLICY_STEP_CLEARANCE;
		d->reason = POLICY_R_UNCONDITIONAL;
		d->allow = 1;
		d->status = 200;
		d->outcome[POLICY_STEP_CLEARANCE] = POLICY_OUT_ALLOW;
		return;
	}

	/* 11. Conditional: an approval in force for this request. */
	r = policy_step_grants(p, in, method, dept, res, d);
	if (r == POLICY_R_GRANT) {
		if (d->grant->mask != NULL)
			d->mask = d->grant->mask;
		policy_finish(d, POLICY_STEP_GRANT, POLICY_R_GRANT, 1);
		return;
	}
	d->mask = NULL;
	d->detail = r == POLICY_R_NO_GRANT
	    ? "no enforcing grant for this department and resource"
	    : "no grant's conditions all hold";
	policy_finish(d, POLICY_STEP_GRANT, r, 0);
}

/*
 * Deny d for r, a gateway limit beside the policy: keep what names the
 * request (department, resource, path), drop what only an allowed request
 * carries, so the audit record and metrics show the limit, not a grant.
 */
void
policy_refuse(struct policy_decision *d, enum policy_reason r)
{
	d->allow = 0;
	d->reason = r;
	d->status = policy_reason_status(r);
	d->detail = NULL;
	d->grant = NULL;
	d->suspension = NULL;
	d->mask = NULL;
	d->shadow = NULL;
	d->shadow_reason = POLICY_R_NONE;
	d->ncandidates = 0;
}
