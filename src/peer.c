/* peer.c - a client's certificate identity as plain data (pure: libcrypto). */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "compat.h"
#include "peer.h"

/*
 * What peer_from_cert decides, beyond the header:
 *
 *  - Name attributes are found by NID in the X509_NAME entries, never by
 *    parsing a rendered string, so a CN holding "/OU=Admin" or ",OU=Admin"
 *    stays inside the CN.
 *  - An attribute that occurs twice anywhere in the name (two RDNs, or
 *    twice in one multi-valued RDN) is UNUSABLE: first-match and last-match
 *    readers would disagree about who this is.
 *  - Values are converted with ASN1_STRING_to_UTF8 (BMPString, T61String,
 *    UniversalString, ... all become UTF-8), then must be valid shortest-
 *    form UTF-8 without NUL, C0 controls or DEL, and at most
 *    PEER_MAX_FIELD - 1 bytes. Anything else is UNUSABLE. Spaces and case
 *    are kept exactly; there is no normalisation.
 *  - URI and DNS SANs must be 1..PEER_MAX_FIELD - 1 bytes of printable
 *    ASCII without space; otherwise, or past PEER_MAX_SAN of a kind, or
 *    when the extension is duplicated or undecodable, san_overflow is set.
 *  - dn and issuer_dn are RFC 4514 (last RDN first, '+' inside an RDN),
 *    written here rather than by X509_NAME_print_ex so that every byte is
 *    accounted for: the RFC 4514 specials and leading '#'/space and
 *    trailing space get a backslash, C0 controls, DEL and bytes that are
 *    not valid UTF-8 become \XX, other UTF-8 stays as is. The result never
 *    holds a raw CR, LF, NUL or unescaped '"'. A value that does not
 *    convert is written as '#' and the hex of its DER. A rendering longer
 *    than the budget is cut between escapes and characters, and ends in
 *    "...".
 *  - The arena is filled in order of importance: serial and fingerprint,
 *    then subject and issuer attributes, then SANs (which leave
 *    PEER_DN_RESERVE bytes), then the two DNs, shortened to what is left.
 *    A field that finds the arena full is UNUSABLE (attributes), sets
 *    san_overflow (SANs) or is cut (DNs), so an oversized certificate
 *    fails closed instead of failing open.
 */

#define PEER_DN_RESERVE 256 /* arena bytes the SANs leave to the DNs */
#define PEER_OID_MAX 128    /* bytes of a dotted OID in a DN */
#define PEER_ASN1_RAW_MAX (4 * PEER_MAX_FIELD) /* encoded value bytes */

static const struct {
	const char *name;
	int nid;
} peer_attrs[PEER_NATTRS] = {
	[PEER_ATTR_CN] = { "CN", NID_commonName },
	[PEER_ATTR_OU] = { "OU", NID_organizationalUnitName },
	[PEER_ATTR_O] = { "O", NID_organizationName },
	[PEER_ATTR_L] = { "L", NID_localityName },
	[PEER_ATTR_ST] = { "ST", NID_stateOrProvinceName },
	[PEER_ATTR_C] = { "C", NID_countryName },
	[PEER_ATTR_SERIALNUMBER] = { "serialNumber", NID_serialNumber },
};

/* A bounded RFC 4514 rendering under construction. */
struct peer_dnbuf {
	char *buf;   /* cap + 1 bytes */
	size_t len;  /* bytes written */
	size_t cap;  /* longest string allowed */
	size_t safe; /* last token boundary that leaves room for "..." */
	int full;    /* a token did not fit: the result is cut */
};

static const char peer_hex_upper[] = "0123456789ABCDEF";
static const char peer_hex_lower[] = "0123456789abcdef";

const char *
peer_attr_name(enum peer_attr a)
{
	if ((unsigned int)a >= PEER_NATTRS)
		return "?";
	return peer_attrs[a].name;
}

int
peer_attr_parse(const char *name, enum peer_attr *out)
{
	size_t i;

	for (i = 0; i < PEER_NATTRS; i++) {
		if (strcmp(name, peer_attrs[i].name) == 0) {
			*out = (enum peer_attr)i;
			return 0;
		}
	}
	return -1;
}

struct peer *
peer_dup(const struct peer *p)
{
	size_t used = p->arena_used < PEER_ARENA ? p->arena_used : PEER_ARENA;
	size_t n = offsetof(struct peer, arena) + used;
	struct peer *q;

	if ((q = malloc(n)) == NULL)
		return NULL;
	memcpy(q, p, n);
	return q;
}

/* Free arena bytes, including the one a string's NUL needs. */
static size_t
peer_room(const struct peer *p)
{
	if (p->arena_used >= PEER_ARENA)
		return 0;
	return (size_t)PEER_ARENA - p->arena_used;
}

int
peer_put(struct peer *p, const char *s, size_t len, struct peer_str *out)
{
	out->off = 0;
	out->len = 0;
	if (len == 0)
		return 0;
	if (memchr(s, '\0', len) != NULL)
		return -1;
	if (len >= peer_room(p))
		return -1;
	memcpy(p->arena + p->arena_used, s, len);
	p->arena[p->arena_used + len] = '\0';
	out->off = p->arena_used;
	out->len = (uint16_t)len;
	p->arena_used += (uint16_t)(len + 1);
	return 0;
}

static int
peer_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
peer_serial_canon(const char *s, char *out, size_t outlen)
{
	size_t i = 0, n = 0, digits = 0, start;
	int seen = 0, prev_colon = 0, v;

	if (outlen < 2)
		return -1;
	if (s[0] == '-') {
		out[n++] = '-';
		i++;
	}
	start = n;
	for (; s[i] != '\0'; i++) {
		if (s[i] == ':') {
			/* Only between digits: no ":a", "a::b" or "a:". */
			if (!seen || prev_colon)
				return -1;
			prev_colon = 1;
			continue;
		}
		if ((v = peer_hexval((unsigned char)s[i])) == -1)
			return -1;
		seen = 1;
		prev_colon = 0;
		if (++digits > 2 * PEER_SERIAL_MAX_OCTETS)
			return -1;
		if (v == 0 && n == start)
			continue;
		if (n + 1 >= outlen)
			return -1;
		out[n++] = peer_hex_upper[v];
	}
	if (!seen || prev_colon)
		return -1;
	/* All zeros is "0": there is no negative zero. */
	if (n == start) {
		n = 0;
		out[n++] = '0';
	}
	out[n] = '\0';
	return 0;
}

/*
 * The length of the valid shortest-form UTF-8 scalar value at s (1 to 4),
 * or 0 when the bytes there are not one (stray continuation, overlong
 * form, surrogate, above U+10FFFF, or cut short by n).
 */
static size_t
peer_utf8_char(const unsigned char *s, size_t n)
{
	uint32_t c;
	size_t len, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		c = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		c = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		c = s[0] & 0x07;
	} else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (len == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff)))
		return 0;
	if (len == 4 && (c < 0x10000 || c > 0x10ffff))
		return 0;
	return len;
}

/* Valid UTF-8 with no NUL, C0 control or DEL: fit for an attribute. */
static int
peer_text_ok(const unsigned char *s, size_t n)
{
	size_t i, k;

	for (i = 0; i < n; i += k) {
		if (s[i] < 0x20 || s[i] == 0x7f)
			return 0;
		if ((k = peer_utf8_char(s + i, n - i)) == 0)
			return 0;
	}
	return 1;
}

/*
 * Convert one attribute value into p's arena. Returns 0, or -1 when the
 * value is unusable (see the top of this file).
 */
static int
peer_value(struct peer *p, const ASN1_STRING *v, struct peer_str *out)
{
	unsigned char *u = NULL;
	int n, rc = -1;

	/* Bound the work before converting: no encoding is wider than 4. */
	if (v == NULL || ASN1_STRING_length(v) > PEER_ASN1_RAW_MAX)
		goto out;
	if ((n = ASN1_STRING_to_UTF8(&u, v)) < 0)
		goto out;
	if ((size_t)n > PEER_MAX_FIELD - 1)
		goto out;
	/* Checks every byte up to the converted length: catches a NUL. */
	if (!peer_text_ok(u, (size_t)n))
		goto out;
	if (peer_put(p, (const char *)u, (size_t)n, out) == -1)
		goto out;
	rc = 0;
out:
	OPENSSL_free(u);
	return rc;
}

static int
peer_attr_by_nid(int nid)
{
	int a;

	for (a = 0; a < PEER_NATTRS; a++)
		if (peer_attrs[a].nid == nid)
			return a;
	return -1;
}

/* Fill pn from name: each attribute ABSENT, OK or UNUSABLE. */
static void
peer_name_fill(struct peer *p, const X509_NAME *name, struct peer_name *pn)
{
	const X509_NAME_ENTRY *e;
	int count[PEER_NATTRS], at[PEER_NATTRS];
	int i, n, a;

	memset(count, 0, sizeof(count));
	memset(at, 0, sizeof(at));
	n = name == NULL ? 0 : X509_NAME_entry_count(name);
	for (i = 0; i < n; i++) {
		e = X509_NAME_get_entry(name, i);
		a = peer_attr_by_nid(
		    OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)));
		if (a == -1)
			continue;
		count[a]++;
		at[a] = i;
	}
	for (a = 0; a < PEER_NATTRS; a++) {
		pn->val[a].off = 0;
		pn->val[a].len = 0;
		if (count[a] == 0) {
			pn->state[a] = PEER_ATTR_ABSENT;
			continue;
		}
		pn->state[a] = PEER_ATTR_UNUSABLE;
		if (count[a] > 1)
			continue;
		e = X509_NAME_get_entry(name, at[a]);
		if (peer_value(p, X509_NAME_ENTRY_get_data(e), &pn->val[a]) ==
		    0)
			pn->state[a] = PEER_ATTR_OK;
	}
}

/* Keep one URI or DNS SAN, or set san_overflow. */
static void
peer_san_add(struct peer *p, const ASN1_IA5STRING *v, struct peer_str *arr,
    uint8_t *nv)
{
	const unsigned char *d;
	size_t len, i;

	if (v == NULL || *nv >= PEER_MAX_SAN)
		goto overflow;
	d = ASN1_STRING_get0_data(v);
	len = (size_t)ASN1_STRING_length(v);
	if (len == 0 || len > PEER_MAX_FIELD - 1)
		goto overflow;
	/* IA5 is 7-bit and neither a URI nor a DNS name holds a space. */
	for (i = 0; i < len; i++)
		if (d[i] <= 0x20 || d[i] >= 0x7f)
			goto overflow;
	if (len + 1 + PEER_DN_RESERVE > peer_room(p))
		goto overflow;
	if (peer_put(p, (const char *)d, len, &arr[*nv]) == -1)
		goto overflow;
	(*nv)++;
	return;
overflow:
	p->san_overflow = 1;
}

static void
peer_san_fill(struct peer *p, X509 *cert)
{
	GENERAL_NAMES *gens = NULL;
	const GENERAL_NAME *g;
	int crit = -1, i, n;

	gens = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
	if (gens == NULL) {
		/* -1 is "absent"; -2 duplicated, 0 or 1 undecodable. */
		if (crit != -1)
			p->san_overflow = 1;
		goto out;
	}
	n = sk_GENERAL_NAME_num(gens);
	for (i = 0; i < n; i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		if (g->type == GEN_URI)
			peer_san_add(p, g->d.uniformResourceIdentifier,
			    p->san_uri, &p->n_san_uri);
		else if (g->type == GEN_DNS)
			peer_san_add(p, g->d.dNSName, p->san_dns,
			    &p->n_san_dns);
	}
out:
	GENERAL_NAMES_free(gens);
}

static int
peer_serial_fill(struct peer *p, X509 *cert, char *err, size_t errlen)
{
	char buf[2 * PEER_SERIAL_MAX_OCTETS + 2];
	const ASN1_INTEGER *ai;
	BIGNUM *bn = NULL;
	char *hex = NULL;
	int rc = -1;

	if ((ai = X509_get0_serialNumber(cert)) == NULL) {
		snprintf(err, errlen, "certificate has no serial number");
		goto out;
	}
	if (ASN1_STRING_length(ai) > PEER_SERIAL_MAX_OCTETS) {
		snprintf(err, errlen,
		    "certificate serial number longer than %d octets",
		    PEER_SERIAL_MAX_OCTETS);
		goto out;
	}
	if ((bn = ASN1_INTEGER_to_BN(ai, NULL)) == NULL ||
	    (hex = BN_bn2hex(bn)) == NULL) {
		snprintf(err, errlen,
		    "certificate serial number: out of memory");
		goto out;
	}
	/* BN_bn2hex writes whole octets ("0A"); canonical drops the zero. */
	if (peer_serial_canon(hex, buf, sizeof(buf)) == -1 ||
	    peer_put(p, buf, strlen(buf), &p->serial) == -1) {
		snprintf(err, errlen, "certificate serial number unusable");
		goto out;
	}
	rc = 0;
out:
	OPENSSL_free(hex);
	BN_free(bn);
	return rc;
}

static int
peer_sha256_fill(struct peer *p, X509 *cert, char *err, size_t errlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	unsigned int mdlen = 0, i;

	/* The digest of the certificate's DER encoding, like openssl x509. */
	if (!X509_digest(cert, EVP_sha256(), md, &mdlen) || mdlen != 32) {
		snprintf(err, errlen, "certificate sha256 fingerprint failed");
		return -1;
	}
	for (i = 0; i < mdlen; i++) {
		hex[2 * i] = peer_hex_lower[md[i] >> 4];
		hex[2 * i + 1] = peer_hex_lower[md[i] & 0x0f];
	}
	hex[2 * mdlen] = '\0';
	if (peer_put(p, hex, 2 * mdlen, &p->sha256) == -1) {
		snprintf(err, errlen, "certificate fingerprint does not fit");
		return -1;
	}
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12). */
static int64_t
peer_days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int
peer_not_after_fill(struct peer *p, X509 *cert, char *err, size_t errlen)
{
	const ASN1_TIME *t;
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if ((t = X509_get0_notAfter(cert)) == NULL ||
	    !ASN1_TIME_to_tm(t, &tm)) {
		snprintf(err, errlen, "certificate notAfter unreadable");
		return -1;
	}
	/* UTC by construction; no TZ lookup, unlike mktime. */
	p->not_after = peer_days_from_civil((int64_t)tm.tm_year + 1900,
	                   tm.tm_mon + 1, tm.tm_mday) *
	        86400 +
	    (int64_t)tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
	return 0;
}

/* Append one indivisible token (a character or an escape) to b. */
static void
peer_dn_emit(struct peer_dnbuf *b, const char *s, size_t n)
{
	if (b->full)
		return;
	if (n > b->cap - b->len) {
		b->full = 1;
		return;
	}
	memcpy(b->buf + b->len, s, n);
	b->len += n;
	if (b->cap >= 3 && b->len <= b->cap - 3)
		b->safe = b->len;
}

static void
peer_dn_emit_hexbyte(struct peer_dnbuf *b, const char *prefix, unsigned char c)
{
	char t[3];
	size_t n = 0;

	if (prefix[0] != '\0')
		t[n++] = prefix[0];
	t[n++] = peer_hex_upper[c >> 4];
	t[n++] = peer_hex_upper[c & 0x0f];
	peer_dn_emit(b, t, n);
}

/* RFC 4514 section 2.4 escaping of a UTF-8 value, plus \XX for the rest. */
static void
peer_dn_value(struct peer_dnbuf *b, const unsigned char *s, size_t n)
{
	char t[2];
	size_t i, k;
	unsigned char c;

	for (i = 0; i < n && !b->full; i += k) {
		c = s[i];
		if ((k = peer_utf8_char(s + i, n - i)) == 0) {
			peer_dn_emit_hexbyte(b, "\\", c);
			k = 1;
		} else if (k > 1)
			peer_dn_emit(b, (const char *)s + i, k);
		else if (c < 0x20 || c == 0x7f)
			peer_dn_emit_hexbyte(b, "\\", c);
		else if (c == '"' || c == '+' || c == ',' || c == ';' ||
		    c == '<' || c == '>' || c == '\\' ||
		    (i == 0 && (c == ' ' || c == '#')) ||
		    (i == n - 1 && c == ' ')) {
			t[0] = '\\';
			t[1] = (char)c;
			peer_dn_emit(b, t, 2);
		} else
			peer_dn_emit(b, (const char *)&c, 1);
	}
}

/* A value that does not convert: '#' and the hex of its DER (4514 2.4). */
static void
peer_dn_value_der(struct peer_dnbuf *b, const ASN1_STRING *v)
{
	ASN1_TYPE *at = NULL;
	unsigned char *der = NULL;
	const unsigned char *d;
	int i, n = -1;

	peer_dn_emit(b, "#", 1);
	if ((at = ASN1_TYPE_new()) != NULL &&
	    ASN1_TYPE_set1(at, ASN1_STRING_type(v), v))
		n = i2d_ASN1_TYPE(at, &der);
	if (n > 0) {
		d = der;
	} else {
		/* Cannot re-encode: the content octets alone. */
		d = ASN1_STRING_get0_data(v);
		n = ASN1_STRING_length(v);
	}
	for (i = 0; i < n && !b->full; i++)
		peer_dn_emit_hexbyte(b, "", d[i]);
	OPENSSL_free(der);
	ASN1_TYPE_free(at);
}

static void
peer_dn_type(struct peer_dnbuf *b, const ASN1_OBJECT *obj)
{
	char oid[PEER_OID_MAX];
	const char *sn = NULL;
	int nid, n;

	nid = OBJ_obj2nid(obj);
	if (nid != NID_undef)
		sn = OBJ_nid2sn(nid);
	if (sn != NULL) {
		peer_dn_emit(b, sn, strlen(sn));
		return;
	}
	n = OBJ_obj2txt(oid, sizeof(oid), obj, 1);
	if (n <= 0 || (size_t)n >= sizeof(oid))
		peer_dn_emit(b, "?", 1);
	else
		peer_dn_emit(b, oid, (size_t)n);
}

/*
 * Render name as RFC 4514 into buf (cap + 1 bytes), at most cap bytes and
 * cut with "..." when longer. Returns the length.
 */
static size_t
peer_dn_render(const X509_NAME *name, char *buf, size_t cap)
{
	struct peer_dnbuf b;
	const X509_NAME_ENTRY *e, *next;
	const ASN1_STRING *v;
	unsigned char *u = NULL;
	int i, n, u_len;

	memset(&b, 0, sizeof(b));
	b.buf = buf;
	b.cap = cap;
	n = name == NULL ? 0 : X509_NAME_entry_count(name);
	for (i = n - 1; i >= 0 && !b.full; i--) {
		e = X509_NAME_get_entry(name, i);
		if (i < n - 1) {
			/* Entries of one multi-valued RDN share a set. */
			next = X509_NAME_get_entry(name, i + 1);
			peer_dn_emit(&b,
			    X509_NAME_ENTRY_set(e) == X509_NAME_ENTRY_set(next)
			        ? "+"
			        : ",",
			    1);
		}
		peer_dn_type(&b, X509_NAME_ENTRY_get_object(e));
		peer_dn_emit(&b, "=", 1);
		v = X509_NAME_ENTRY_get_data(e);
		u_len = v == NULL ? -1 : ASN1_STRING_to_UTF8(&u, v);
		if (u_len >= 0)
			peer_dn_value(&b, u, (size_t)u_len);
		else if (v != NULL)
			peer_dn_value_der(&b, v);
		OPENSSL_free(u);
		u = NULL;
	}
	if (b.full) {
		if (cap < 3) {
			b.len = 0;
		} else {
			b.len = b.safe;
			memcpy(b.buf + b.len, "...", 3);
			b.len += 3;
		}
	}
	buf[b.len] = '\0';
	return b.len;
}

/*
 * Put both DNs in what is left of the arena. When both do not fit whole,
 * each gets half, and one that needs less than half leaves the rest to
 * the other.
 */
static void
peer_dns_fill(struct peer *p, X509 *cert)
{
	char dn[PEER_MAX_DN], idn[PEER_MAX_DN];
	const X509_NAME *sname, *iname;
	size_t room, dlen, ilen, dcap, icap;

	sname = X509_get_subject_name(cert);
	iname = X509_get_issuer_name(cert);
	dlen = peer_dn_render(sname, dn, sizeof(dn) - 1);
	ilen = peer_dn_render(iname, idn, sizeof(idn) - 1);
	room = peer_room(p);
	if (dlen + 1 + ilen + 1 > room) {
		dcap = icap = room / 2;
		if (dlen + 1 <= dcap)
			icap = room - (dlen + 1);
		else if (ilen + 1 <= icap)
			dcap = room - (ilen + 1);
		/* A cap counts the NUL here; the renderer's does not. */
		if (dlen + 1 > dcap)
			dlen =
			    dcap == 0 ? 0 : peer_dn_render(sname, dn, dcap - 1);
		if (ilen + 1 > icap)
			ilen = icap == 0 ? 0
			                 : peer_dn_render(iname, idn, icap - 1);
	}
	/* Both fit by construction; if not, they stay empty. */
	(void)peer_put(p, dn, dlen, &p->dn);
	(void)peer_put(p, idn, ilen, &p->issuer_dn);
}

int
peer_from_cert(X509 *cert, struct peer *p, char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	if (cert == NULL) {
		snprintf(err, errlen, "no certificate");
		goto fail;
	}
	if (peer_serial_fill(p, cert, err, errlen) == -1 ||
	    peer_sha256_fill(p, cert, err, errlen) == -1 ||
	    peer_not_after_fill(p, cert, err, errlen) == -1)
		goto fail;
	peer_name_fill(p, X509_get_subject_name(cert), &p->subject);
	peer_name_fill(p, X509_get_issuer_name(cert), &p->issuer);
	peer_san_fill(p, cert);
	peer_dns_fill(p, cert);
	p->present = 1;
	return 0;
fail:
	memset(p, 0, sizeof(*p));
	return -1;
}
