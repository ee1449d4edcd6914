/* mask.h - response masking for data minimisation (contract 4.3, pure). */
#ifndef MASK_H
#define MASK_H

#include <stddef.h>

struct policy_mask;

/*
 * Bytes of a body masked whole. Parsing costs up to about 12 bytes of
 * tokens per input byte, so this bounds one masked response to ~13 MiB.
 */
#define MASK_MAX_BODY (1024 * 1024)

/*
 * Apply mask m to the JSON document in (inlen bytes). On success returns 0
 * with a newly allocated masked document in *out (*outlen bytes, plus a
 * NUL not counted; the caller frees it), re-serialised compactly, and
 * the number of values changed or dropped in *changed (0: the output is
 * the input without insignificant whitespace). Returns -1 with a static
 * reason in *why (and *out NULL) when the body is empty, not strict JSON
 * (invalid UTF-8, duplicate keys...), nests too deep, is larger than
 * MASK_MAX_BODY, or memory runs out: the gateway then answers 502
 * obligation_failed and passes nothing on. m NULL masks nothing.
 * Masks count Unicode code points: keep first 1 of "張三豐" is "張**".
 * Semantics in detail: the comment at the top of mask.c.
 */
int mask_apply(const struct policy_mask *m, const char *in, size_t inlen,
    char **out, size_t *outlen, size_t *changed, const char **why);

#endif /* MASK_H */
