/* ynode.h - typed, position-aware walk of libyaml documents (pure). */
#ifndef YNODE_H
#define YNODE_H

#include <stddef.h>
#include <stdint.h>

#include <yaml.h>

#include "compat.h"

struct diag;

#define YNODE_MAX_FILE (64u * 1024 * 1024) /* bytes of one YAML file */

/* A loaded document; errors go to dg as file:line:col. */
struct ynode_doc {
	yaml_document_t doc;
	int loaded;
	char *file; /* as given, for messages */
	struct diag *dg;
};

enum ynode_type {
	YNODE_ANY = 0,
	YNODE_STR, /* a scalar */
	YNODE_MAP,
	YNODE_SEQ,
};

#define YNODE_REQUIRED 0x1

/* One row of a mapping's schema; a table ends with { NULL }. */
struct ynode_key {
	const char *name;
	enum ynode_type type;
	int flags;
};

/*
 * Read and parse path (at most maxbytes) into d. Returns 0, or -1 with
 * the error recorded in dg. An empty document has a NULL root.
 */
int ynode_load(struct ynode_doc *d, const char *path, size_t maxbytes,
    struct diag *dg);
void ynode_free(struct ynode_doc *d);
yaml_node_t *ynode_root(struct ynode_doc *d);
yaml_node_t *ynode_at(struct ynode_doc *d, int index);

/* Record an error or warning at n's position (n may be NULL: file only). */
void ynode_error(struct ynode_doc *d, const yaml_node_t *n, const char *fmt,
    ...) PRINTFLIKE(3, 4);
void ynode_warn(struct ynode_doc *d, const yaml_node_t *n, const char *fmt, ...)
    PRINTFLIKE(3, 4);
size_t ynode_line(const yaml_node_t *n);
size_t ynode_col(const yaml_node_t *n);

/*
 * Check that n is a mapping whose keys are all in keys (each once), that
 * required keys are there and values have the declared types. out[i] is
 * set to the value of keys[i], or NULL. what names the mapping in
 * messages ("listener"). Returns 0, or -1 after recording every problem.
 */
int ynode_map(struct ynode_doc *d, yaml_node_t *n, const struct ynode_key *keys,
    yaml_node_t **out, const char *what);

/*
 * Check a type and record "what: expected a mapping" etc. Returns 0 or -1.
 * A NULL n fails silently: a missing key is ynode_map's to report.
 */
int ynode_expect(struct ynode_doc *d, yaml_node_t *n, enum ynode_type t,
    const char *what);

/*
 * A scalar's text (NUL-terminated; lives as long as the document). Records
 * an error and returns NULL when n is not a scalar or holds a NUL byte.
 */
const char *ynode_str(struct ynode_doc *d, yaml_node_t *n, const char *what);

/* Typed scalars; each returns 0, or -1 after recording an error. */
int ynode_bool(struct ynode_doc *d, yaml_node_t *n, const char *what, int *out);
int ynode_uint(struct ynode_doc *d, yaml_node_t *n, const char *what,
    uint64_t min, uint64_t max, uint64_t *out);
/* "250ms", "2s", "5m", "1h"; a bare number is an error. Result in ms. */
int ynode_duration(struct ynode_doc *d, yaml_node_t *n, const char *what,
    uint64_t min_ms, uint64_t max_ms, uint64_t *out_ms);
/* "512", "16k", "16m", "1g" (powers of 1024). Result in bytes. */
int ynode_size(struct ynode_doc *d, yaml_node_t *n, const char *what,
    uint64_t min, uint64_t max, uint64_t *out);

/* Items of a sequence (n must be one), for iteration with ynode_at(). */
size_t ynode_seq_len(const yaml_node_t *n);
yaml_node_item_t ynode_seq_item(const yaml_node_t *n, size_t i);
/* Pairs of a mapping. */
size_t ynode_map_len(const yaml_node_t *n);
yaml_node_pair_t *ynode_map_pair(const yaml_node_t *n, size_t i);

#endif /* YNODE_H */
