/* policy.h - compiled access policy and the decision pipeline (pure). */
#ifndef POLICY_H
#define POLICY_H

#include <stddef.h>
#include <stdint.h>

struct diag;
struct peer;
struct tz;

#define POLICY_MAX_LEVELS 16
#define POLICY_MAX_CANDIDATES 8 /* candidate grants reported on a denial */
#define POLICY_MAX_PATH 8192    /* bytes of a request path judged */
#define POLICY_MAX_SEGMENTS 64  /* segments of a path or pattern */

/* Stable reason codes (contract section 4.1); the names are the codes. */
enum policy_reason {
	POLICY_R_NONE = 0,
	POLICY_R_OWNER,
	POLICY_R_OPEN,
	POLICY_R_UNCONDITIONAL,
	POLICY_R_GRANT,
	POLICY_R_BAD_REQUEST,
	POLICY_R_NO_CLIENT_CERT,
	POLICY_R_UNKNOWN_DEPARTMENT,
	POLICY_R_COUNTRY_BLOCKED,
	POLICY_R_ZONE_MISMATCH,
	POLICY_R_NO_RESOURCE,
	POLICY_R_SUSPENDED,
	POLICY_R_NOT_SHARED,
	POLICY_R_INSUFFICIENT_CLEARANCE,
	POLICY_R_NO_GRANT,
	POLICY_R_GRANT_NOT_YET_VALID,
	POLICY_R_GRANT_EXPIRED,
	POLICY_R_OUTSIDE_HOURS,
	POLICY_R_METHOD_NOT_GRANTED,
	POLICY_R_PURPOSE_REQUIRED,
	POLICY_R_PURPOSE_MISMATCH,
	POLICY_R_CASE_REQUIRED,
	POLICY_R_RATE_LIMITED,
	POLICY_R_CONNECTION_LIMIT, /* serve: the department's connections */
	POLICY_R_AUDIT_UNAVAILABLE,
	POLICY_NREASONS,
};

/* The pipeline's steps, in order (contract section 4.1). */
enum policy_step {
	POLICY_STEP_PARSE = 0,
	POLICY_STEP_CERT,
	POLICY_STEP_DEPARTMENT,
	POLICY_STEP_COUNTRY,
	POLICY_STEP_ZONE,
	POLICY_STEP_RESOURCE,
	POLICY_STEP_SUSPENSION,
	POLICY_STEP_OWNER,
	POLICY_STEP_SHARING,
	POLICY_STEP_CLEARANCE,
	POLICY_STEP_GRANT,
	POLICY_NSTEPS,
};

enum policy_outcome {
	POLICY_OUT_NOT_REACHED = 0,
	POLICY_OUT_PASS,
	POLICY_OUT_SKIP, /* does not apply to this request */
	POLICY_OUT_DENY,
	POLICY_OUT_ALLOW,
};

enum policy_sharing {
	POLICY_SHARE_OPEN = 0,
	POLICY_SHARE_UNCONDITIONAL,
	POLICY_SHARE_CONDITIONAL,
	POLICY_SHARE_NONE,
};

/* HTTP methods a resource or grant may list, as a bit set. */
enum policy_method {
	POLICY_M_GET = 0x01,
	POLICY_M_HEAD = 0x02,
	POLICY_M_POST = 0x04,
	POLICY_M_PUT = 0x08,
	POLICY_M_PATCH = 0x10,
	POLICY_M_DELETE = 0x20,
	POLICY_M_OPTIONS = 0x40,
};

struct policy_mask_rule {
	char *field;   /* the JSON Pointer as written */
	char **tokens; /* unescaped reference tokens; "*" is every item */
	size_t ntokens;
	int drop; /* fn: drop; else keep first/last */
	uint32_t first, last;
};

struct policy_mask {
	char *id;
	struct policy_mask_rule *rules;
	size_t nrules;
};

struct policy_department {
	char *id;
	char *name;
	int clearance; /* index into the policy's levels */
	char **zones;  /* empty: any source zone */
	size_t nzones;
	size_t index;
};

struct policy_resource {
	char *id;
	char *name;
	const struct policy_department *owner;
	char *upstream;
	unsigned methods; /* enum policy_method bits */
	char **paths;     /* patterns as written */
	size_t npaths;
	char *subject_id; /* name of the {segment} naming a data subject */
	int classification;
	enum policy_sharing sharing;
	char *legal_basis;
	const struct policy_mask *mask;
	size_t index;
};

struct policy_grant {
	char *id;
	const struct policy_department *consumer;
	const struct policy_resource *resource;
	char **purposes;
	size_t npurposes;
	char *legal_basis;
	int64_t valid_from; /* UTC instant; INT64_MIN: always */
	int64_t
	    valid_until; /* first instant after `expires`; INT64_MAX: none */
	int32_t hours_from, hours_to; /* seconds of the local day; -1: any */
	unsigned methods;             /* 0: the resource's methods */
	int require_case;
	uint64_t rate_interval_ns; /* 0: no rate limit */
	uint32_t rate_burst;
	int shadow;
	const struct policy_mask *mask; /* stricter mask, or NULL */
	int suspended_by;               /* index of a suspension + 1, or 0 */
	size_t index;
};

struct policy_suspension {
	char *id;
	const struct policy_department *department; /* NULL: any */
	const struct policy_resource *resource;     /* NULL: any */
	const struct policy_grant *grant;           /* NULL: any */
	char *cert_serial;                          /* NULL: any */
	char *reason;
};

/* What one request looks like to the policy; the caller owns every byte. */
struct policy_input {
	const char *method;
	size_t method_len;
	const char *path; /* raw path of the target, without '?' and query */
	size_t path_len;
	int malformed; /* the HTTP parser refused the request */
	const struct peer *peer;
	int cert_optional;   /* listener has client_auth: optional */
	const char *country; /* ISO 3166 code; NULL: not covered (unknown) */
	const char *zone;    /* NULL: in no zone */
	const char *purpose; /* header value or NULL */
	size_t purpose_len;
	const char *case_id; /* header value or NULL */
	size_t case_len;
	int64_t now_sec; /* clock, UTC */
	int32_t now_nsec;
	int dry_run; /* do not take rate-limit tokens (explain) */
	/* policy diff: the department as recorded, instead of mapping */
	const struct policy_department *department;
	char *norm; /* out: normalised path, room for path_len + 1 bytes */
	size_t normsz;
};

struct policy_candidate {
	const struct policy_grant *grant;
	enum policy_reason reason; /* POLICY_R_GRANT when it would allow */
};

/*
 * A decision and how it was reached. Pointers borrow from the policy,
 * which must outlive the decision.
 */
struct policy_decision {
	int allow;
	enum policy_reason reason;
	int status;                     /* HTTP status: 200 when allowed */
	enum policy_step step;          /* the step that decided */
	uint8_t outcome[POLICY_NSTEPS]; /* enum policy_outcome per step */
	const char *detail; /* static text: why parse or a step failed */
	const struct policy_department *department;
	const struct policy_resource *resource;
	const struct policy_grant
	    *grant; /* allowed by; on a grant-step
	             * denial: the one that got furthest */
	const struct policy_suspension *suspension;
	const struct policy_mask *mask;    /* response obligation, or NULL */
	size_t norm_len;                   /* bytes of input->norm */
	size_t subject_off, subject_len;   /* subject_id segment in norm */
	const struct policy_grant *shadow; /* a shadow grant evaluated */
	enum policy_reason shadow_reason;  /* POLICY_R_GRANT: would allow */
	size_t ncandidates;                /* may exceed the array */
	struct policy_candidate cand[POLICY_MAX_CANDIDATES];
};

/* Settings that come from govgate.yaml rather than the policy files. */
struct policy_env {
	const struct tz *tz; /* for dates and hours; required */
	int64_t now;         /* for "expires within 30 days" warnings */
	int have_country_db; /* geoip.country_db configured */
	int have_zone_db;    /* geoip.zone_db configured */
};

/*
 * Load a policy file, or every *.yaml of a folder in name order, merged.
 * Returns an owned policy (reference count 1), or NULL with every problem
 * recorded in dg as file:line:col; warnings are recorded either way.
 */
struct policy *policy_load(const char *path, const struct policy_env *env,
    struct diag *dg);
void policy_ref(struct policy *p);
void policy_unref(struct policy *p); /* frees at zero; NULL is a no-op */

/* Decide one request (contract section 4.1). Thread-safe. */
void policy_decide(const struct policy *p, const struct policy_input *in,
    struct policy_decision *d);

/*
 * The one department a verified certificate maps to (contract 4.1 step
 * 3), or NULL: none, several, or a field a match uses is unusable. The
 * department is borrowed from p.
 */
const struct policy_department *policy_department_match(const struct policy *p,
    const struct peer *id);

/*
 * Turn d into a denial for reason r, a limit the gateway enforces beside
 * the policy (connection_limit). What names the request stays (department,
 * resource, normalised path and subject segment); what only an allowed
 * request carries (grant, mask, shadow, candidates) goes.
 */
void policy_refuse(struct policy_decision *d, enum policy_reason r);

/* Forget rate-limit state (policy tests run each case from a full bucket). */
void policy_rate_reset(const struct policy *p);

const char *policy_reason_str(enum policy_reason r);
int policy_reason_parse(const char *s, enum policy_reason *out);
int policy_reason_status(enum policy_reason r);
const char *policy_step_str(enum policy_step s);
const char *policy_outcome_str(enum policy_outcome o);
const char *policy_sharing_str(enum policy_sharing s);
const char *policy_level_str(const struct policy *p, int level);
unsigned policy_method_bit(const char *m, size_t len); /* 0: unknown */

const char *policy_revision(const struct policy *p);
const char *policy_sha256(const struct policy *p); /* 64 hex digits */
const char *policy_purpose_header(const struct policy *p);
const char *policy_case_header(const struct policy *p);
const char *policy_operator_header(const struct policy *p);

/* Iteration, for explain, coverage and the gateway's upstream checks. */
size_t policy_ndepartments(const struct policy *p);
const struct policy_department *policy_department_at(const struct policy *p,
    size_t i);
size_t policy_nresources(const struct policy *p);
const struct policy_resource *policy_resource_at(const struct policy *p,
    size_t i);
size_t policy_ngrants(const struct policy *p);
const struct policy_grant *policy_grant_at(const struct policy *p, size_t i);
const struct policy_department *policy_department_find(const struct policy *p,
    const char *id);

#endif /* POLICY_H */
