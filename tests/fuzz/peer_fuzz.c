/*
 * peer_fuzz.c - fuzz peer_from_cert on whatever DER d2i_X509 accepts and
 * check the identity it fills: every string bounded, printable and inside
 * the arena, the DNs safe to put in a header or a JSON line.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "fuzz.h"
#include "peer.h"

#define PEER_FUZZ_MAX 65536 /* input bytes tried */

/* 1 when s[0..n) is valid shortest-form UTF-8 (written apart from peer.c). */
static int
peer_fuzz_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0, k, j;
	uint32_t c, min;

	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0) {
			k = 2;
			c = s[i] & 0x1f;
			min = 0x80;
		} else if ((s[i] & 0xf0) == 0xe0) {
			k = 3;
			c = s[i] & 0x0f;
			min = 0x800;
		} else if ((s[i] & 0xf8) == 0xf0) {
			k = 4;
			c = s[i] & 0x07;
			min = 0x10000;
		} else
			return 0;
		if (n - i < k)
			return 0;
		for (j = 1; j < k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
			c = c << 6 | (s[i + j] & 0x3f);
		}
		if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return 0;
		i += k;
	}
	return 1;
}

/*
 * A string of p: inside the used part of the arena, NUL-terminated right
 * after len bytes with no NUL before.
 */
static const char *
peer_fuzz_str(const struct peer *p, struct peer_str s)
{
	const char *v;

	if (s.len == 0) {
		if (s.off != 0)
			abort();
		return "";
	}
	if ((size_t)s.off + s.len + 1 > p->arena_used)
		abort();
	v = peer_str(p, s);
	if (v[s.len] != '\0' || memchr(v, '\0', s.len) != NULL)
		abort();
	return v;
}

static void
peer_fuzz_check_name(const struct peer *p, const struct peer_name *pn)
{
	const unsigned char *v;
	size_t i, a;

	for (a = 0; a < PEER_NATTRS; a++) {
		v = (const unsigned char *)peer_fuzz_str(p, pn->val[a]);
		switch (pn->state[a]) {
		case PEER_ATTR_OK:
			if (pn->val[a].len >= PEER_MAX_FIELD)
				abort();
			if (!peer_fuzz_utf8(v, pn->val[a].len))
				abort();
			for (i = 0; i < pn->val[a].len; i++)
				if (v[i] < 0x20 || v[i] == 0x7f)
					abort();
			break;
		case PEER_ATTR_ABSENT:
		case PEER_ATTR_UNUSABLE:
			/* Nothing a policy could match on. */
			if (pn->val[a].len != 0)
				abort();
			break;
		default:
			abort();
		}
	}
}

/*
 * An RFC 4514 rendering as peer.c writes it: no CR, LF or other control
 * byte, and every '"' (and '\\') escaped. An escape is a backslash and
 * either two hex digits or one character; it is never cut in half.
 */
static void
peer_fuzz_check_dn(const struct peer *p, struct peer_str s)
{
	const unsigned char *v;
	size_t i;

	v = (const unsigned char *)peer_fuzz_str(p, s);
	if (s.len > PEER_MAX_DN - 1)
		abort();
	for (i = 0; i < s.len; i++) {
		if (v[i] == '\r' || v[i] == '\n' || v[i] < 0x20 || v[i] == 0x7f)
			abort();
		if (v[i] == '"')
			abort(); /* a quote outside an escape */
		if (v[i] != '\\')
			continue;
		if (i + 1 >= s.len)
			abort(); /* a lone backslash at the end */
		if (strchr("0123456789ABCDEF", v[i + 1]) != NULL) {
			if (i + 2 >= s.len ||
			    strchr("0123456789ABCDEF", v[i + 2]) == NULL)
				abort();
			i += 2;
		} else
			i++;
	}
}

static void
peer_fuzz_check_sans(const struct peer *p, const struct peer_str *v, size_t n)
{
	const char *s;
	size_t i, j;

	if (n > PEER_MAX_SAN)
		abort();
	for (i = 0; i < n; i++) {
		s = peer_fuzz_str(p, v[i]);
		if (v[i].len == 0 || v[i].len >= PEER_MAX_FIELD)
			abort();
		for (j = 0; j < v[i].len; j++)
			if (s[j] <= 0x20 || s[j] >= 0x7f)
				abort();
	}
}

static void
peer_fuzz_check(const struct peer *p)
{
	const char *s;
	char canon[2 * PEER_SERIAL_MAX_OCTETS + 2];
	size_t i;

	if (!p->present || p->arena_used > PEER_ARENA)
		abort();
	/* Upper-case hex, an optional '-', and already canonical. */
	s = peer_fuzz_str(p, p->serial);
	if (p->serial.len == 0)
		abort();
	for (i = s[0] == '-' ? 1 : 0; s[i] != '\0'; i++)
		if (strchr("0123456789ABCDEF", s[i]) == NULL)
			abort();
	if (peer_serial_canon(s, canon, sizeof(canon)) == -1 ||
	    strcmp(canon, s) != 0)
		abort();
	s = peer_fuzz_str(p, p->sha256);
	if (p->sha256.len != 64 || strspn(s, "0123456789abcdef") != 64)
		abort();
	peer_fuzz_check_name(p, &p->subject);
	peer_fuzz_check_name(p, &p->issuer);
	peer_fuzz_check_sans(p, p->san_uri, p->n_san_uri);
	peer_fuzz_check_sans(p, p->san_dns, p->n_san_dns);
	peer_fuzz_check_dn(p, p->dn);
	peer_fuzz_check_dn(p, p->issuer_dn);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const unsigned char *d = data;
	static const struct peer zero;
	struct peer *p = NULL;
	X509 *cert = NULL;
	char err[256];

	if (size > PEER_FUZZ_MAX)
		return 0;
	if ((cert = d2i_X509(NULL, &d, (long)size)) == NULL)
		goto out;
	/* On the heap so that ASan sees any write past the arena. */
	if ((p = malloc(sizeof(*p))) == NULL)
		abort();
	memset(err, 0, sizeof(err));
	if (peer_from_cert(cert, p, err, sizeof(err)) == 0)
		peer_fuzz_check(p);
	else if (err[0] == '\0' || memcmp(p, &zero, sizeof(*p)) != 0)
		abort(); /* a refusal says why and leaves "no certificate" */
out:
	free(p);
	X509_free(cert);
	return 0;
}
