/* pathnorm.h - the one canonical spelling of a request path (pure). */
#ifndef PATHNORM_H
#define PATHNORM_H

#include <stddef.h>

/*
 * Canonicalise the path of an origin-form request target (the bytes before
 * any '?', which the caller splits off) as contract section 4.2 says:
 * decode percent-encoded unreserved characters, upper-case the hex of the
 * other escapes, resolve "." and ".." segments and merge repeated slashes.
 *
 * in/inlen is the raw path, not NUL-terminated. out must have room for
 * inlen + 1 bytes (the result never grows); a smaller outsz is refused as
 * "path too long" before anything is copied. Returns 0 with the
 * NUL-terminated result in out and its length in *outlen, or -1 with a
 * static one-line reason in *why and "" in out (the request is then
 * `bad_request`). Escapes of other ASCII (e.g. %3B, %3F, %20) stay
 * encoded; escaped bytes >= 0x80 must be shortest-form UTF-8.
 */
int pathnorm(const char *in, size_t inlen, char *out, size_t outsz,
    size_t *outlen, const char **why);

#endif /* PATHNORM_H */
