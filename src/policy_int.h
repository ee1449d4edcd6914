/* policy_int.h - the compiled policy's private layout (policy*.c only). */
#ifndef POLICY_INT_H
#define POLICY_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "peer.h"
#include "policy.h"

/* A string-keyed open-addressing table; keys are borrowed. */
struct ptab_ent {
	const char *key;
	uint32_t klen;
	uint32_t ns; /* namespace: a trie node for path edges, else 0 */
	uint32_t val;
	uint32_t used;
};

struct ptab {
	struct ptab_ent *e;
	size_t cap, n;
};

void ptab_init(struct ptab *t);
void ptab_clear(struct ptab *t);
/* Insert; returns the value already stored under the key, or val. */
uint32_t ptab_put(struct ptab *t, uint32_t ns, const char *key, size_t len,
    uint32_t val);
/* Returns 0 and *val, or -1 when absent. */
int ptab_get(const struct ptab *t, uint32_t ns, const char *key, size_t len,
    uint32_t *val);

/* One certificate condition of a department's `match`. */
enum pmatch_kind {
	PMATCH_SUBJECT = 0,
	PMATCH_ISSUER,
	PMATCH_SAN_URI,
	PMATCH_SAN_DNS,
};

struct pmatch {
	enum pmatch_kind kind;
	enum peer_attr attr; /* subject/issuer only */
	char *val;
	size_t len;
	int prefix; /* SAN with a trailing '*': val is the prefix */
};

struct pdept {
	struct pmatch *m;
	size_t nm;
	int keyed; /* found through dept_index by its first exact condition */
	uint32_t next_same_key; /* chain of departments sharing the key + 1 */
};

/* A path pattern of a resource, compiled. */
struct ppat {
	uint32_t resource;
	uint16_t nlit, nwild;
	uint8_t rest;        /* ends in ** */
	int16_t subject_seg; /* segment index of {subject_id}, or -1 */
	unsigned methods;
	const char *text;
	size_t line, col; /* where it was written, for overlap errors */
	const char *file;
};

/* A node of the path trie: literal edges live in policy.edges. */
struct pnode {
	int32_t wild;   /* child for one-segment wildcards, or -1 */
	uint32_t *term; /* patterns ending exactly here */
	uint32_t nterm;
	uint32_t *rest; /* `**` patterns anchored here */
	uint32_t nrest;
	uint32_t *lit; /* literal children, for load-time walks only */
	uint32_t nlit;
	int empty; /* reached by an empty final segment (trailing '/') */
};

struct tz;

struct policy {
	atomic_int refcnt;
	char *revision;
	char sha256[65];
	char **levels;
	size_t nlevels;
	char *purpose_header, *case_header, *operator_header;
	char **countries;
	size_t ncountries;
	int countries_unknown; /* `unknown` in the list */
	char **purpose_ids;
	size_t npurposes;
	struct policy_department *depts;
	struct pdept *dmatch;
	size_t ndepts;
	unsigned used_subject, used_issuer; /* bits of enum peer_attr */
	int uses_san;
	struct ptab dept_index; /* key condition -> first department + 1 */
	uint32_t *dept_scan;    /* departments without an exact condition */
	size_t ndept_scan;
	struct policy_resource *res;
	size_t nres;
	struct policy_grant *grants;
	size_t ngrants;
	uint32_t
	    *res_grants; /* grant indices sorted by resource, consumer, id */
	uint32_t *res_grant_off; /* per resource: start in res_grants; +1 end */
	struct policy_suspension *susp;
	size_t nsusp;
	struct policy_mask *masks;
	size_t nmasks;
	struct ppat *pats;
	size_t npats;
	struct pnode *nodes;
	size_t nnodes, capnodes;
	struct ptab edges;          /* (node, segment) -> child node */
	_Atomic uint64_t *rate_tat; /* per grant: GCRA theoretical arrival */
	struct tz *tz;              /* owned copy of the gateway's zone */
	void **allocs;              /* every heap block above, freed together */
	size_t nallocs, capallocs;
};

int policy_match_path(const struct policy *p, const char *norm, size_t len,
    unsigned method, struct policy_decision *d, uint32_t *pat_out);

#endif /* POLICY_INT_H */
