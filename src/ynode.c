/* ynode.c - typed, position-aware walk of libyaml documents (pure). */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "diag.h"
#include "xmalloc.h"
#include "ynode.h"

static const char *
ynode_type_name(enum ynode_type t)
{
	switch (t) {
	case YNODE_STR:
		return "a scalar";
	case YNODE_MAP:
		return "a mapping";
	case YNODE_SEQ:
		return "a sequence";
	case YNODE_ANY:
		break;
	}
	return "a value";
}

size_t
ynode_line(const yaml_node_t *n)
{
	return n ? n->start_mark.line + 1 : 0;
}

size_t
ynode_col(const yaml_node_t *n)
{
	return n ? n->start_mark.column + 1 : 0;
}

void
ynode_error(struct ynode_doc *d, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	diag_error(d->dg, d->file, ynode_line(n), ynode_col(n), "%s", msg);
}

void
ynode_warn(struct ynode_doc *d, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	diag_warn(d->dg, d->file, ynode_line(n), ynode_col(n), "%s", msg);
}

/*
 * Read path whole (bounded by maxbytes) and parse its one document. libyaml
 * reports errors with a mark; they become file:line:col diagnostics.
 */
int
ynode_load(struct ynode_doc *d, const char *path, size_t maxbytes,
    struct diag *dg)
{
	yaml_parser_t parser;
	FILE *fp = NULL;
	char *buf = NULL;
	size_t len = 0, cap = 0, nr;
	int ret = -1, parser_ok = 0;

	memset(d, 0, sizeof(*d));
	d->file = xstrdup(path);
	d->dg = dg;
	if ((fp = fopen(path, "rb")) == NULL) {
		diag_error(dg, path, 0, 0, "cannot open: %s", strerror(errno));
		goto out;
	}
	for (;;) {
		if (len == cap) {
			if (cap >= maxbytes + 1)
				break;
			cap = cap ? cap * 2 : 65536;
			if (cap > maxbytes + 1)
				cap = maxbytes + 1;
			buf = xreallocarray(buf, cap, 1);
		}
		nr = fread(buf + len, 1, cap - len, fp);
		len += nr;
		if (nr == 0)
			break;
	}
	if (ferror(fp)) {
		diag_error(dg, path, 0, 0, "read error: %s", strerror(errno));
		goto out;
	}
	if (len > maxbytes) {
		diag_error(dg, path, 0, 0, "file larger than %zu bytes",
		    maxbytes);
		goto out;
	}
	if (!yaml_parser_initialize(&parser)) {
		diag_error(dg, path, 0, 0, "cannot initialise the YAML parser");
		goto out;
	}
	parser_ok = 1;
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &d->doc)) {
		diag_error(dg, path, parser.problem_mark.line + 1,
		    parser.problem_mark.column + 1, "YAML syntax: %s%s%s",
		    parser.problem ? parser.problem : "error",
		    parser.context ? " " : "",
		    parser.context ? parser.context : "");
		goto out;
	}
	d->loaded = 1;
	/* A second document would be silently ignored: refuse it. */
	{
		yaml_document_t extra;

		if (!yaml_parser_load(&parser, &extra)) {
			diag_error(dg, path, parser.problem_mark.line + 1,
			    parser.problem_mark.column + 1, "YAML syntax: %s",
			    parser.problem ? parser.problem : "error");
			goto out;
		}
		if (yaml_document_get_root_node(&extra) != NULL) {
			diag_error(dg, path, extra.start_mark.line + 1,
			    extra.start_mark.column + 1,
			    "more than one YAML document in the file");
			yaml_document_delete(&extra);
			goto out;
		}
		yaml_document_delete(&extra);
	}
	ret = 0;
out:
	if (parser_ok)
		yaml_parser_delete(&parser);
	if (fp != NULL)
		fclose(fp);
	free(buf);
	return ret;
}

void
ynode_free(struct ynode_doc *d)
{
	if (d->loaded)
		yaml_document_delete(&d->doc);
	free(d->file);
	memset(d, 0, sizeof(*d));
}

yaml_node_t *
ynode_root(struct ynode_doc *d)
{
	return d->loaded ? yaml_document_get_root_node(&d->doc) : NULL;
}

yaml_node_t *
ynode_at(struct ynode_doc *d, int index)
{
	return yaml_document_get_node(&d->doc, index);
}

static int
ynode_is(const yaml_node_t *n, enum ynode_type t)
{
	switch (t) {
	case YNODE_ANY:
		return 1;
	case YNODE_STR:
		return n->type == YAML_SCALAR_NODE;
	case YNODE_MAP:
		return n->type == YAML_MAPPING_NODE;
	case YNODE_SEQ:
		return n->type == YAML_SEQUENCE_NODE;
	}
	return 0;
}

int
ynode_expect(struct ynode_doc *d, yaml_node_t *n, enum ynode_type t,
    const char *what)
{
	if (n != NULL && ynode_is(n, t))
		return 0;
	if (n == NULL)
		return -1; /* a missing key is ynode_map's to report */
	ynode_error(d, n, "%s: expected %s", what, ynode_type_name(t));
	return -1;
}

int
ynode_map(struct ynode_doc *d, yaml_node_t *n, const struct ynode_key *keys,
    yaml_node_t **out, const char *what)
{
	yaml_node_pair_t *pair;
	yaml_node_t *k, *v;
	char expected[512];
	size_t i, nkeys, elen = 0;
	int ret = 0;

	for (nkeys = 0; keys[nkeys].name != NULL; nkeys++)
		out[nkeys] = NULL;
	if (ynode_expect(d, n, YNODE_MAP, what) == -1)
		return -1;
	expected[0] = '\0';
	for (i = 0; i < nkeys && elen < sizeof(expected); i++)
		elen +=
		    (size_t)snprintf(expected + elen, sizeof(expected) - elen,
		        "%s%s", i ? ", " : "", keys[i].name);
	for (pair = n->data.mapping.pairs.start;
	     pair < n->data.mapping.pairs.top; pair++) {
		k = ynode_at(d, pair->key);
		v = ynode_at(d, pair->value);
		if (k == NULL || k->type != YAML_SCALAR_NODE) {
			ynode_error(d, k, "%s: keys must be scalars", what);
			ret = -1;
			continue;
		}
		for (i = 0; i < nkeys; i++)
			if (strcmp((const char *)k->data.scalar.value,
			        keys[i].name) == 0)
				break;
		if (i == nkeys) {
			ynode_error(d, k,
			    "unknown key \"%s\" in %s (expected: %s)",
			    (const char *)k->data.scalar.value, what, expected);
			ret = -1;
			continue;
		}
		if (out[i] != NULL) {
			ynode_error(d, k, "duplicate key \"%s\" in %s",
			    keys[i].name, what);
			ret = -1;
			continue;
		}
		if (v == NULL || !ynode_is(v, keys[i].type)) {
			ynode_error(d, v, "%s: \"%s\" must be %s", what,
			    keys[i].name, ynode_type_name(keys[i].type));
			ret = -1;
			continue;
		}
		out[i] = v;
	}
	for (i = 0; i < nkeys; i++) {
		if ((keys[i].flags & YNODE_REQUIRED) && out[i] == NULL) {
			ynode_error(d, n, "%s: missing required key \"%s\"",
			    what, keys[i].name);
			ret = -1;
		}
	}
	return ret;
}

const char *
ynode_str(struct ynode_doc *d, yaml_node_t *n, const char *what)
{
	if (ynode_expect(d, n, YNODE_STR, what) == -1)
		return NULL;
	if (strlen((const char *)n->data.scalar.value) !=
	    n->data.scalar.length) {
		ynode_error(d, n, "%s: NUL byte in value", what);
		return NULL;
	}
	return (const char *)n->data.scalar.value;
}

int
ynode_bool(struct ynode_doc *d, yaml_node_t *n, const char *what, int *out)
{
	const char *s;

	if ((s = ynode_str(d, n, what)) == NULL)
		return -1;
	if (strcmp(s, "true") == 0)
		*out = 1;
	else if (strcmp(s, "false") == 0)
		*out = 0;
	else {
		ynode_error(d, n, "%s: \"%s\" is not true or false", what, s);
		return -1;
	}
	return 0;
}

/* Parse leading decimal digits of s; *end points past them. -1 on overflow. */
static int
ynode_digits(const char *s, const char **end, uint64_t *out)
{
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*end = s;
	*out = v;
	return 0;
}

int
ynode_uint(struct ynode_doc *d, yaml_node_t *n, const char *what, uint64_t min,
    uint64_t max, uint64_t *out)
{
	const char *s, *end;
	uint64_t v;

	if ((s = ynode_str(d, n, what)) == NULL)
		return -1;
	if (ynode_digits(s, &end, &v) == -1 || *end != '\0') {
		ynode_error(d, n, "%s: \"%s\" is not a whole number", what, s);
		return -1;
	}
	if (v < min || v > max) {
		ynode_error(d, n, "%s: %llu is out of range (%llu to %llu)",
		    what, (unsigned long long)v, (unsigned long long)min,
		    (unsigned long long)max);
		return -1;
	}
	*out = v;
	return 0;
}

int
ynode_duration(struct ynode_doc *d, yaml_node_t *n, const char *what,
    uint64_t min_ms, uint64_t max_ms, uint64_t *out_ms)
{
	const char *s, *end;
	uint64_t v, mul;

	if ((s = ynode_str(d, n, what)) == NULL)
		return -1;
	if (ynode_digits(s, &end, &v) == -1)
		goto bad;
	if (strcmp(end, "ms") == 0)
		mul = 1;
	else if (strcmp(end, "s") == 0)
		mul = 1000;
	else if (strcmp(end, "m") == 0)
		mul = 60 * 1000;
	else if (strcmp(end, "h") == 0)
		mul = 3600 * 1000;
	else
		goto bad;
	if (v > UINT64_MAX / mul)
		goto range;
	v *= mul;
	if (v < min_ms || v > max_ms)
		goto range;
	*out_ms = v;
	return 0;
bad:
	ynode_error(d, n,
	    "%s: \"%s\" is not a duration (a number with ms, s, m or h)", what,
	    s);
	return -1;
range:
	ynode_error(d, n, "%s: \"%s\" is out of range (%llums to %llums)", what,
	    s, (unsigned long long)min_ms, (unsigned long long)max_ms);
	return -1;
}

int
ynode_size(struct ynode_doc *d, yaml_node_t *n, const char *what, uint64_t min,
    uint64_t max, uint64_t *out)
{
	const char *s, *end;
	uint64_t v, mul;

	if ((s = ynode_str(d, n, what)) == NULL)
		return -1;
	if (ynode_digits(s, &end, &v) == -1)
		goto bad;
	if (*end == '\0')
		mul = 1;
	else if (strcmp(end, "k") == 0)
		mul = 1024;
	else if (strcmp(end, "m") == 0)
		mul = 1024 * 1024;
	else if (strcmp(end, "g") == 0)
		mul = 1024 * 1024 * 1024;
	else
		goto bad;
	if (v > UINT64_MAX / mul)
		goto range;
	v *= mul;
	if (v < min || v > max)
		goto range;
	*out = v;
	return 0;
bad:
	ynode_error(d, n,
	    "%s: \"%s\" is not a size (a number, or with k, m, g)", what, s);
	return -1;
range:
	ynode_error(d, n, "%s: \"%s\" is out of range (%llu to %llu bytes)",
	    what, s, (unsigned long long)min, (unsigned long long)max);
	return -1;
}

size_t
ynode_seq_len(const yaml_node_t *n)
{
	return (
	    size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

yaml_node_item_t
ynode_seq_item(const yaml_node_t *n, size_t i)
{
	return n->data.sequence.items.start[i];
}

size_t
ynode_map_len(const yaml_node_t *n)
{
	return (
	    size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

yaml_node_pair_t *
ynode_map_pair(const yaml_node_t *n, size_t i)
{
	return &n->data.mapping.pairs.start[i];
}
