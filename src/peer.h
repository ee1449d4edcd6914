/* peer.h - a client's certificate identity as plain data (no X509 after). */
#ifndef PEER_H
#define PEER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#define PEER_MAX_FIELD 256 /* bytes of one subject/issuer attribute or SAN */
#define PEER_MAX_SAN 8     /* URI and DNS SANs kept, of each kind */
#define PEER_MAX_DN 1024   /* bytes of an RFC 4514 rendering, + NUL */
#define PEER_ARENA 4096    /* bytes for all strings of one identity */
#define PEER_SERIAL_MAX_OCTETS 32 /* RFC 5280 says 20; longer is refused */

/* The name attributes a department `match` may use (contract section 4). */
enum peer_attr {
	PEER_ATTR_CN = 0,
	PEER_ATTR_OU,
	PEER_ATTR_O,
	PEER_ATTR_L,
	PEER_ATTR_ST,
	PEER_ATTR_C,
	PEER_ATTR_SERIALNUMBER,
	PEER_NATTRS,
};

/*
 * An OK value is the attribute's exact UTF-8 (ASN1_STRING_to_UTF8 of any
 * string type), not trimmed or case-folded: "Finance " and "finance" are
 * not "Finance". Policy compares bytes; UNUSABLE in a field that any
 * match uses makes the certificate unknown_department (contract 4.2b).
 */
enum peer_attr_state {
	PEER_ATTR_ABSENT = 0,
	PEER_ATTR_OK,       /* once, valid UTF-8, no NUL/C0/DEL, fits */
	PEER_ATTR_UNUSABLE, /* repeated, control, bad encoding, too long */
};

/* A NUL-terminated string inside struct peer's arena; len 0 is "". */
struct peer_str {
	uint16_t off, len;
};

struct peer_name {
	uint8_t state[PEER_NATTRS]; /* enum peer_attr_state */
	struct peer_str val[PEER_NATTRS];
};

/*
 * A verified client identity. A zero-filled struct is "no certificate".
 * Filled once after the handshake (peer_from_cert) or from a policy test
 * case, then only read (policy, audit, identity headers). It owns no heap
 * memory: every string lives in arena.
 */
struct peer {
	int present;      /* a verified client certificate was presented */
	int san_overflow; /* a URI/DNS SAN was not kept: too many, too long,
	                     malformed, or the extension is bad; the kept
	                     ones are then incomplete */
	struct peer_name subject;
	struct peer_name issuer;
	uint8_t n_san_uri, n_san_dns;
	struct peer_str san_uri[PEER_MAX_SAN];
	struct peer_str san_dns[PEER_MAX_SAN];
	struct peer_str serial;    /* upper-case hex, e.g. "3F8A21"; no leading
	                              zeros, "0" for zero, "-" if negative */
	struct peer_str sha256;    /* of the certificate's DER, lower hex */
	struct peer_str dn;        /* RFC 4514 subject, escaped, bounded; ends
	                              "..." when truncated */
	struct peer_str issuer_dn; /* RFC 4514 issuer */
	int64_t not_after;         /* seconds since the epoch */
	uint16_t arena_used;
	char arena[PEER_ARENA];
};

/* The string s of p (never NULL). */
static inline const char *
peer_str(const struct peer *p, struct peer_str s)
{
	return s.len == 0 ? "" : p->arena + s.off;
}

/* The attribute's name as a match writes it ("CN"), or "?" if out of range. */
const char *peer_attr_name(enum peer_attr a);
/* "CN", "OU", "O", "L", "ST", "C", "serialNumber". Returns 0 or -1. */
int peer_attr_parse(const char *name, enum peer_attr *out);

/*
 * A heap copy of p that holds only the arena bytes in use (a struct peer
 * is mostly arena), for identities kept a long time; free(3) it. The
 * copy is shorter than sizeof(struct peer): read it through its fields
 * and peer_str() only, never copy it whole or put into it. NULL when
 * out of memory.
 */
struct peer *peer_dup(const struct peer *p);

/*
 * Copy len bytes of s into p's arena as a NUL-terminated string. Returns 0,
 * or -1 when the arena is full or s holds a NUL (the caller marks the field
 * unusable); out is then the empty string.
 */
int peer_put(struct peer *p, const char *s, size_t len, struct peer_str *out);

/*
 * Write the canonical spelling of serial number s into out: the form
 * peer_from_cert produces. s is hex digits in any case, optionally with ':'
 * between digits and a leading '-'; leading zeros are dropped ("0a:3f" is
 * "A3F", "00" is "0"). Returns 0, or -1 when s is not such a number, has
 * more than PEER_SERIAL_MAX_OCTETS octets, or out is too small.
 */
int peer_serial_canon(const char *s, char *out, size_t outlen);

/*
 * Fill p from a leaf certificate the caller has chain-verified. Returns 0,
 * or -1 with a one-line reason in err. Does not take ownership of cert.
 */
int peer_from_cert(X509 *cert, struct peer *p, char *err, size_t errlen);

#endif /* PEER_H */
