/* mask_fuzz.c - fuzz mask_apply() on arbitrary bodies with a fixed mask. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "json.h"
#include "mask.h"
#include "policy.h"

#define MASK_FUZZ_MAX (256 * 1024)

/* The contract's mask and more: drops in arrays, *, indexes, escapes. */
static const struct {
	const char *field; /* tokens split on '/', already unescaped */
	int drop;
	uint32_t first, last;
} mask_fuzz_spec[] = {
	{ "id_number", 0, 6, 4 },
	{ "phone", 0, 3, 4 },
	{ "name", 0, 1, 0 },
	{ "photo", 1, 0, 0 },
	{ "family/*/id_number", 0, 6, 4 },
	{ "list/*", 1, 0, 0 },
	{ "*/name", 0, 0, 2 },
	{ "a/0/b", 0, 1, 1 },
	{ "x~y/m", 0, 0, 0 }, /* the member "x~y" */
	{ "contact", 0, 2, 2 },
	{ "family/*/photo", 1, 0, 0 },
};

#define MASK_FUZZ_NRULES (sizeof(mask_fuzz_spec) / sizeof(mask_fuzz_spec[0]))

static struct policy_mask_rule mask_fuzz_rules[MASK_FUZZ_NRULES];
static struct policy_mask mask_fuzz_mask;

/* Build the mask once; it lives as long as the process. */
static void
mask_fuzz_init(void)
{
	struct policy_mask_rule *r;
	const char *s, *e;
	size_t i, j, n;

	if (mask_fuzz_mask.rules != NULL)
		return;
	for (i = 0; i < MASK_FUZZ_NRULES; i++) {
		r = &mask_fuzz_rules[i];
		s = mask_fuzz_spec[i].field;
		for (n = 1, e = s; *e != '\0'; e++)
			n += *e == '/';
		if ((r->field = strdup(s)) == NULL ||
		    (r->tokens = calloc(n, sizeof(char *))) == NULL)
			abort();
		r->ntokens = n;
		for (j = 0; j < n; j++) {
			e = strchr(s, '/');
			if (e == NULL)
				e = s + strlen(s);
			if ((r->tokens[j] = strndup(s, (size_t)(e - s))) ==
			    NULL)
				abort();
			s = *e == '/' ? e + 1 : e;
		}
		r->drop = mask_fuzz_spec[i].drop;
		r->first = mask_fuzz_spec[i].first;
		r->last = mask_fuzz_spec[i].last;
	}
	mask_fuzz_mask.rules = mask_fuzz_rules;
	mask_fuzz_mask.nrules = MASK_FUZZ_NRULES;
}

/* s parses as strict JSON (duplicate keys refused). */
static int
mask_fuzz_valid(const char *s, size_t len)
{
	struct json_opts opts;
	struct json_tok *t;
	int n;

	memset(&opts, 0, sizeof(opts));
	opts.max_number = 1024;
	if ((t = calloc(len + 2, sizeof(*t))) == NULL)
		abort();
	n = json_parse(s, len, t, len + 2, &opts, NULL);
	free(t);
	return n > 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data, *why = NULL, *why2 = NULL;
	char *out = NULL, *plain = NULL, *again = NULL;
	size_t outlen = 0, plainlen = 0, againlen = 0;
	size_t changed = 0, ch0 = 0, ch2 = 0;
	int rc, rc0;

	if (size > MASK_FUZZ_MAX)
		return 0;
	mask_fuzz_init();
	rc = mask_apply(&mask_fuzz_mask, in, size, &out, &outlen, &changed,
	    &why);
	rc0 = mask_apply(NULL, in, size, &plain, &plainlen, &ch0, &why2);

	/* The mask decides nothing about whether a body is acceptable. */
	if (rc != rc0 || (rc != 0 && rc != -1))
		abort();
	if (rc == -1) {
		if (why == NULL || *why == '\0' || out != NULL || outlen != 0 ||
		    changed != 0 || mask_fuzz_valid(in, size))
			abort();
		goto out;
	}
	if (!mask_fuzz_valid(in, size) || ch0 != 0)
		abort();

	/* The output is strict JSON, NUL-terminated, and bounded. */
	if (out[outlen] != '\0' || !mask_fuzz_valid(out, outlen) ||
	    outlen > 4 * size + 3)
		abort();
	/* Unchanged means only whitespace went. */
	if (changed == 0 &&
	    (outlen != plainlen || memcmp(out, plain, outlen) != 0))
		abort();
	/* Compacting is a fixed point, and so is masking. */
	if (mask_apply(NULL, plain, plainlen, &again, &againlen, &ch2, &why2) !=
	        0 ||
	    againlen != plainlen || memcmp(again, plain, plainlen) != 0)
		abort();
	free(again);
	again = NULL;
	if (mask_apply(&mask_fuzz_mask, out, outlen, &again, &againlen, &ch2,
	        &why2) != 0 ||
	    againlen != outlen || memcmp(again, out, outlen) != 0)
		abort();
out:
	free(out);
	free(plain);
	free(again);
	return 0;
}
