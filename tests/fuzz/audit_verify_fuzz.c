/*
 * audit_verify_fuzz.c - the audit verifier on arbitrary bytes: as a whole
 * log, and with the first line taken as a known checkpoint, checked under
 * a fixed public key.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include "audit.h"
#include "fuzz.h"

#define AUDIT_FUZZ_MAX (4 * AUDIT_RECORD_MAX)

static void
audit_fuzz_run(const char *data, size_t size, EVP_PKEY *pub, int partial,
    const char *known, size_t knownlen)
{
	struct audit_verify v;
	char err[256];

	memset(&v, 0, sizeof(v));
	v.pubkey = pub;
	v.partial = partial;
	if (audit_verify_init(&v, err, sizeof(err)) < 0)
		return;
	if (known != NULL)
		(void)audit_verify_known_buf(&v, "known", known, knownlen);
	if (audit_verify_buf(&v, "fuzz", data, size, 1) == 0)
		(void)audit_verify_finish(&v);
	audit_verify_clear(&v);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char raw[32] = { 0xd7, 0x5a, 0x98, 0x01, 0x82,
		0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07,
		0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf,
		0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a };
	const char *s = (const char *)data, *nl;
	EVP_PKEY *pub;

	if (size > AUDIT_FUZZ_MAX)
		return 0;
	audit_fuzz_run(s, size, NULL, 0, NULL, 0);
	pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw,
	    sizeof(raw));
	if ((nl = memchr(s, '\n', size)) != NULL)
		audit_fuzz_run(nl + 1, size - (size_t)(nl + 1 - s), pub, 1, s,
		    (size_t)(nl - s));
	else
		audit_fuzz_run(s, size, pub, 1, NULL, 0);
	EVP_PKEY_free(pub);
	return 0;
}
