/* proxyproto_fuzz.c - fuzz the PROXY protocol header parser. */
#include "config.h"

#include <stdlib.h>

#include "fuzz.h"
#include "proxyproto.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxyproto_addr a;
	const char *why;
	size_t k;
	int rc, rk;

	if (size > 4096)
		return 0;
	rc = proxyproto_parse(data, size, &a, &why);
	if (rc > 0 && (size_t)rc > size)
		abort(); /* took more than it was given */
	if (rc == PROXYPROTO_ERROR && why == NULL)
		abort();
	if (rc > 0 && !a.local && a.src.ss_family != AF_INET &&
	    a.src.ss_family != AF_INET6)
		abort();
	/* A complete header's prefixes are partial; an error stays one. */
	for (k = 0; rc > 0 && k < (size_t)rc; k++)
		if (proxyproto_parse(data, k, &a, &why) != PROXYPROTO_PARTIAL)
			abort();
	if (rc == PROXYPROTO_ERROR && size < 4096) {
		rk = proxyproto_parse(data, size, &a, &why);
		if (rk != PROXYPROTO_ERROR)
			abort();
	}
	return 0;
}
