/* mask.h - response masking for data minimisation (contract 4.3, pure). */
#ifndef MASK_H
#define MASK_H

#include <stddef.h>

struct policy_mask;

#define MASK_MAX_BODY (8 * 1024 * 1024) /* bytes of a body masked whole */

/*
 * Apply mask m to the JSON document in (inlen bytes). On success returns 0
 * with a newly allocated masked document in *out (*outlen bytes; the
 * caller frees it) and the number of values changed or dropped in
 * *changed. Returns -1 with a static reason in *why when the body is not
 * valid JSON, nests too deep, or is larger than MASK_MAX_BODY: the
 * gateway then answers 502 obligation_failed and passes nothing on.
 * Masks count Unicode characters: keep first 1 of "張三豐" is "張**".
 */
int mask_apply(const struct policy_mask *m, const char *in, size_t inlen,
    char **out, size_t *outlen, size_t *changed, const char **why);

#endif /* MASK_H */
