/* audit.c - audit records: encoding, hash chain, checkpoints, verification. */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "audit.h"
#include "json.h"
#include "peer.h"
#include "policy.h"

/*
 * Pure apart from reading key files and audit files: no sockets, no
 * event loop. The writer (auditlog.c) owns the chain and the buffers;
 * nothing here allocates per record except a checkpoint's signature.
 *
 * Decisions fixed here (contract section 6 leaves them to us):
 *  - strings: invalid UTF-8 bytes become U+FFFD (written \ufffd), one per
 *    byte; nothing is refused, since the values come from certificates
 *    and requests and the record must still be written;
 *  - "subject_ref" is present only when a subject was pseudonymised, and
 *    then right after "request";
 *  - complete's "upstream_incomplete" is always there, a boolean;
 *  - a checkpoint's "count" is the number of records it seals, itself
 *    included: records 1..seq, so count == seq always (as in the
 *    contract's example); the verifier checks it;
 *  - lifecycle fields: start {version, pid, torn_bytes}, stop {reason},
 *    policy_loaded {revision, sha256, result, errors}, reopen {reason},
 *    audit_degraded {reason}, audit_recovered {refused, degraded_ms}.
 */

#define AUDIT_MAX_TOKENS 1024
#define AUDIT_RBUF_SIZE (1024 * 1024 + AUDIT_RECORD_MAX)
#define AUDIT_KEYFILE_MAX 65536
#define AUDIT_SIGMSG_MAX 512
#define AUDIT_SIG_B64_LEN 88
#define AUDIT_SUFFIX_LEN 75 /* ,"hash":"<64 hex>"} */

static const char *const audit_event_names[AUDIT_NEVENTS] = {
	[AUDIT_EV_DECISION] = "decision",
	[AUDIT_EV_COMPLETE] = "complete",
	[AUDIT_EV_CHECKPOINT] = "checkpoint",
	[AUDIT_EV_START] = "start",
	[AUDIT_EV_STOP] = "stop",
	[AUDIT_EV_POLICY_LOADED] = "policy_loaded",
	[AUDIT_EV_REOPEN] = "reopen",
	[AUDIT_EV_DEGRADED] = "audit_degraded",
	[AUDIT_EV_RECOVERED] = "audit_recovered",
};

static const char audit_hexdig[] = "0123456789abcdef";
static const unsigned char audit_zero[AUDIT_HASH_LEN];

const char *
audit_event_str(enum audit_event e)
{
	return (unsigned)e < AUDIT_NEVENTS ? audit_event_names[e] : "?";
}

static void
audit_hex(const unsigned char *p, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = audit_hexdig[p[i] >> 4];
		out[2 * i + 1] = audit_hexdig[p[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static int
audit_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* upper case is not the canonical form */
}

/* Lower-case hex only, exactly 2n digits. */
static int
audit_unhex(const char *s, size_t len, unsigned char *out, size_t n)
{
	size_t i;
	int hi, lo;

	if (len != 2 * n)
		return -1;
	for (i = 0; i < n; i++) {
		if ((hi = audit_hexval(s[2 * i])) < 0 ||
		    (lo = audit_hexval(s[2 * i + 1])) < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/* Output buffers. */

void
audit_buf_init(struct audit_buf *b, char *mem, size_t cap)
{
	b->p = mem;
	b->cap = cap;
	b->len = b->mark = 0;
	b->overflow = 0;
}

void
audit_buf_reset(struct audit_buf *b)
{
	b->len = b->mark = 0;
	b->overflow = 0;
}

void
audit_rollback(struct audit_buf *b)
{
	b->len = b->mark;
	b->overflow = 0;
}

void
audit_buf_raw(struct audit_buf *b, const char *s, size_t n)
{
	if (b->overflow || b->cap - b->len < n) {
		b->overflow = 1;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

void
audit_buf_key(struct audit_buf *b, const char *key)
{
	if (b->len > 0 && b->p[b->len - 1] != '{')
		audit_buf_lit(b, ",");
	audit_buf_lit(b, "\"");
	audit_buf_raw(b, key, strlen(key));
	audit_buf_lit(b, "\":");
}

/*
 * 1 for the bytes a JSON string holds as they are: printable ASCII but
 * '"' and '\\'. One row per 16 bytes.
 */
/* clang-format off */
static const unsigned char audit_plain[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};
/* clang-format on */

/*
 * The escaped content of a string, without quotes; see audit_buf_str.
 * max bounds the output bytes, so limits hold whatever the input.
 */
static void
audit_buf_esc(struct audit_buf *b, const char *s, size_t n, size_t max)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n, *run;
	char esc[6] = { '\\', 'u', '0', '0', 0, 0 };
	size_t k, room = max, take;
	int cut = 0;

	while (p < end && !b->overflow) {
		/* A run of bytes that need no escape. */
		run = p;
		take = (size_t)(end - p) < room ? (size_t)(end - p) : room;
		while ((size_t)(p - run) < take && audit_plain[*p])
			p++;
		if (p > run) {
			audit_buf_raw(b, (const char *)run, (size_t)(p - run));
			room -= (size_t)(p - run);
		}
		if (p == end)
			break;
		if (*p >= 0x80) {
			if ((k = json_utf8_len(p, end)) == 0) {
				if (room < 6) {
					cut = 1;
					break;
				}
				audit_buf_lit(b, "\\ufffd");
				room -= 6;
				p++;
				continue;
			}
			if (k > room) {
				cut = 1;
				break;
			}
			audit_buf_raw(b, (const char *)p, k);
			room -= k;
			p += k;
			continue;
		}
		if (audit_plain[*p]) {
			cut = 1; /* a plain byte, but no room left */
			break;
		}
		switch (*p) {
		case '"':
		case '\\':
		case '\n':
		case '\r':
		case '\t':
		case '\b':
		case '\f':
			k = 2;
			break;
		default: /* other controls and DEL */
			k = 6;
			break;
		}
		if (k > room) {
			cut = 1;
			break;
		}
		room -= k;
		switch (*p) {
		case '"':
			audit_buf_lit(b, "\\\"");
			break;
		case '\\':
			audit_buf_lit(b, "\\\\");
			break;
		case '\n':
			audit_buf_lit(b, "\\n");
			break;
		case '\r':
			audit_buf_lit(b, "\\r");
			break;
		case '\t':
			audit_buf_lit(b, "\\t");
			break;
		case '\b':
			audit_buf_lit(b, "\\b");
			break;
		case '\f':
			audit_buf_lit(b, "\\f");
			break;
		default:
			esc[4] = audit_hexdig[*p >> 4];
			esc[5] = audit_hexdig[*p & 0xf];
			audit_buf_raw(b, esc, sizeof(esc));
			break;
		}
		p++;
	}
	if (cut)
		audit_buf_lit(b, "\xe2\x80\xa6");
}

/* A quoted, escaped JSON string; see audit.h. */
void
audit_buf_str(struct audit_buf *b, const char *s, size_t n, size_t max)
{
	if (s == NULL) {
		audit_buf_null(b);
		return;
	}
	audit_buf_lit(b, "\"");
	audit_buf_esc(b, s, n, max);
	audit_buf_lit(b, "\"");
}

void
audit_buf_strz(struct audit_buf *b, const char *s, size_t max)
{
	audit_buf_str(b, s, s == NULL ? 0 : strlen(s), max);
}

void
audit_buf_u64(struct audit_buf *b, uint64_t v)
{
	char tmp[24];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	audit_buf_raw(b, tmp + i, sizeof(tmp) - i);
}

void
audit_buf_i64(struct audit_buf *b, int64_t v)
{
	if (v < 0) {
		audit_buf_lit(b, "-");
		audit_buf_u64(b, (uint64_t)0 - (uint64_t)v);
	} else
		audit_buf_u64(b, (uint64_t)v);
}

void
audit_buf_ms(struct audit_buf *b, int64_t usec)
{
	char frac[4];
	int64_t f;
	size_t n = 3;

	if (usec < 0) {
		audit_buf_null(b);
		return;
	}
	audit_buf_u64(b, (uint64_t)(usec / 1000));
	f = usec % 1000;
	frac[0] = (char)('0' + f / 100);
	frac[1] = (char)('0' + f / 10 % 10);
	frac[2] = (char)('0' + f % 10);
	while (n > 1 && frac[n - 1] == '0')
		n--;
	audit_buf_lit(b, ".");
	audit_buf_raw(b, frac, n);
}

void
audit_buf_bool(struct audit_buf *b, int v)
{
	if (v)
		audit_buf_lit(b, "true");
	else
		audit_buf_lit(b, "false");
}

void
audit_buf_null(struct audit_buf *b)
{
	audit_buf_lit(b, "null");
}

void
audit_buf_hex(struct audit_buf *b, const unsigned char *p, size_t n)
{
	char two[2];
	size_t i;

	audit_buf_lit(b, "\"");
	for (i = 0; i < n; i++) {
		two[0] = audit_hexdig[p[i] >> 4];
		two[1] = audit_hexdig[p[i] & 0xf];
		audit_buf_raw(b, two, 2);
	}
	audit_buf_lit(b, "\"");
}

static void
audit_digits(char *out, unsigned v, int n)
{
	while (n-- > 0) {
		out[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

/* UTC timestamp with microseconds; see audit.h. */
int
audit_ts_format(int64_t sec, int32_t nsec, char *out)
{
	int64_t days, z, era, doe, yoe, y, doy, mp, d, m, sod;

	if (nsec < 0 || nsec > 999999999)
		return -1;
	if (sec < -62167219200LL || sec > 253402300799LL) /* 0000..9999 */
		return -1;
	days = sec >= 0 ? sec / 86400 : -((-sec + 86399) / 86400);
	sod = sec - days * 86400;
	/* Days to civil date (proleptic Gregorian), after H. Hinnant. */
	z = days + 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	if (m <= 2)
		y++;
	audit_digits(out, (unsigned)y, 4);
	out[4] = '-';
	audit_digits(out + 5, (unsigned)m, 2);
	out[7] = '-';
	audit_digits(out + 8, (unsigned)d, 2);
	out[10] = 'T';
	audit_digits(out + 11, (unsigned)(sod / 3600), 2);
	out[13] = ':';
	audit_digits(out + 14, (unsigned)(sod / 60 % 60), 2);
	out[16] = ':';
	audit_digits(out + 17, (unsigned)(sod % 60), 2);
	out[19] = '.';
	audit_digits(out + 20, (unsigned)(nsec / 1000), 6);
	out[26] = 'Z';
	out[27] = '\0';
	return 0;
}

/* The chain. */

int
audit_chain_init(struct audit_chain *ch, const char *gateway, char *err,
    size_t errlen)
{
	const unsigned char *p = (const unsigned char *)gateway, *end;
	size_t n, len;

	memset(ch, 0, sizeof(*ch));
	len = strlen(gateway);
	if (len == 0 || len > AUDIT_GATEWAY_MAX) {
		snprintf(err, errlen, "gateway name must be 1 to %d bytes",
		    AUDIT_GATEWAY_MAX);
		return -1;
	}
	for (end = p + len; p < end; p += n) {
		if ((n = json_utf8_len(p, end)) == 0 || *p < 0x20 ||
		    *p == 0x7f || *p == '"' || *p == '\\') {
			snprintf(err, errlen,
			    "gateway name \"%s\" holds a control character, "
			    "quote, backslash or invalid UTF-8",
			    gateway);
			return -1;
		}
	}
	memcpy(ch->gateway, gateway, len + 1);
	if ((ch->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
	    (ch->md = EVP_MD_CTX_new()) == NULL) {
		audit_chain_clear(ch);
		snprintf(err, errlen, "cannot set up SHA-256");
		return -1;
	}
	return 0;
}

void
audit_chain_set(struct audit_chain *ch, uint64_t seq, const unsigned char *prev)
{
	ch->seq = seq;
	memcpy(ch->prev, prev, AUDIT_HASH_LEN);
}

void
audit_chain_clear(struct audit_chain *ch)
{
	EVP_MD_CTX_free(ch->md);
	EVP_MD_free(ch->sha256);
	ch->md = NULL;
	ch->sha256 = NULL;
}

static int
audit_event_known(const char *event)
{
	int e;

	for (e = 0; e < AUDIT_NEVENTS; e++)
		if (strcmp(event, audit_event_names[e]) == 0)
			return 1;
	return 0;
}

/* Begin a record; see audit.h. */
int
audit_begin(struct audit_chain *ch, struct audit_buf *b, const char *event,
    int64_t sec, int32_t nsec)
{
	char ts[AUDIT_TS_LEN + 1];

	if (b->overflow || ch->seq >= (uint64_t)INT64_MAX ||
	    audit_ts_format(sec, nsec, ts) < 0 || !audit_event_known(event))
		return -1;
	b->mark = b->len;
	audit_buf_lit(b, "{\"seq\":");
	audit_buf_u64(b, ch->seq + 1);
	audit_buf_lit(b, ",\"ts\":\"");
	audit_buf_raw(b, ts, AUDIT_TS_LEN);
	audit_buf_lit(b, "\",\"gateway\":\"");
	audit_buf_raw(b, ch->gateway, strlen(ch->gateway));
	audit_buf_lit(b, "\",\"event\":\"");
	audit_buf_raw(b, event, strlen(event));
	audit_buf_lit(b, "\"");
	return b->overflow ? -1 : 0;
}

static int
audit_sha256(EVP_MD_CTX *md, const EVP_MD *sha, const char *p, size_t n,
    unsigned char *out)
{
	unsigned int olen = 0;

	if (EVP_DigestInit_ex2(md, sha, NULL) != 1 ||
	    EVP_DigestUpdate(md, AUDIT_HASH_DOMAIN,
	        sizeof(AUDIT_HASH_DOMAIN) - 1) != 1 ||
	    EVP_DigestUpdate(md, p, n) != 1 ||
	    EVP_DigestFinal_ex(md, out, &olen) != 1 || olen != AUDIT_HASH_LEN)
		return -1;
	return 0;
}

/*
 * Seal the record begun at b->mark and advance the chain. The bytes are
 * fixed by contract section 6 and restated here:
 *
 *   line = P ,"hash":"<H>"} \n
 *
 * P is the record from its opening '{' up to, not including, the comma
 * before "hash"; its last member is "prev":"<64 hex>", the hash of the
 * previous record (64 zeros for the very first record; a new file
 * continues from the last record of the previous one). H is lower-case
 * hex of SHA-256("govgate-audit-v1\n" || P), so it covers every byte of
 * the line but itself and the closing "}\n". "seq" counts from 1 by one
 * across files; "ts" is UTC with microseconds. On failure b is left in
 * overflow and the chain does not move (audit_rollback discards).
 */
int
audit_seal(struct audit_chain *ch, struct audit_buf *b)
{
	unsigned char h[AUDIT_HASH_LEN];

	audit_buf_lit(b, ",\"prev\":");
	audit_buf_hex(b, ch->prev, AUDIT_HASH_LEN);
	if (b->overflow || b->cap - b->len < AUDIT_SUFFIX_LEN + 1) {
		b->overflow = 1;
		return -1;
	}
	if (audit_sha256(ch->md, ch->sha256, b->p + b->mark, b->len - b->mark,
	        h) < 0) {
		b->overflow = 1;
		return -1;
	}
	audit_buf_lit(b, ",\"hash\":");
	audit_buf_hex(b, h, AUDIT_HASH_LEN);
	audit_buf_lit(b, "}\n");
	ch->seq++;
	memcpy(ch->prev, h, AUDIT_HASH_LEN);
	b->mark = b->len;
	return 0;
}

int
audit_record(struct audit_chain *ch, struct audit_buf *b, const char *event,
    int64_t sec, int32_t nsec, const char *body, size_t bodylen)
{
	if (audit_begin(ch, b, event, sec, nsec) < 0)
		return -1;
	audit_buf_raw(b, body, bodylen);
	return audit_seal(ch, b);
}

/* Keys and checkpoints. */

int
audit_key_id(EVP_PKEY *key, char *out)
{
	unsigned char *der = NULL, h[AUDIT_HASH_LEN];
	unsigned int hlen = 0;
	int n, ret = -1;

	if ((n = i2d_PUBKEY(key, &der)) <= 0)
		goto out;
	if (EVP_Digest(der, (size_t)n, h, &hlen, EVP_sha256(), NULL) != 1)
		goto out;
	audit_hex(h, AUDIT_KEY_ID_LEN / 2, out);
	ret = 0;
out:
	OPENSSL_free(der);
	return ret;
}

int
audit_signer_init(struct audit_signer *s, EVP_PKEY *key, char *err,
    size_t errlen)
{
	memset(s, 0, sizeof(*s));
	if (!EVP_PKEY_is_a(key, "ED25519")) {
		snprintf(err, errlen, "signing key is not an Ed25519 key");
		return -1;
	}
	if (audit_key_id(key, s->key_id) < 0) {
		snprintf(err, errlen, "cannot encode the public key");
		return -1;
	}
	if (EVP_PKEY_up_ref(key) != 1) {
		snprintf(err, errlen, "cannot take a key reference");
		return -1;
	}
	s->key = key;
	return 0;
}

void
audit_signer_clear(struct audit_signer *s)
{
	EVP_PKEY_free(s->key);
	s->key = NULL;
}

/* Open a key file, refusing symlink games and (when secret) loose modes. */
static FILE *
audit_key_open(const char *path, int secret, char *err, size_t errlen)
{
	struct stat st;
	FILE *fp;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return NULL;
	}
	if (secret && (st.st_mode & 077) != 0) {
		snprintf(err, errlen,
		    "%s: group or others may read it (chmod 600)", path);
		close(fd);
		return NULL;
	}
	if (st.st_size > AUDIT_KEYFILE_MAX) {
		snprintf(err, errlen, "%s: larger than %d bytes", path,
		    AUDIT_KEYFILE_MAX);
		close(fd);
		return NULL;
	}
	if ((fp = fdopen(fd, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
	}
	return fp;
}

EVP_PKEY *
audit_key_load_private(const char *path, char *err, size_t errlen)
{
	EVP_PKEY *key;
	FILE *fp;

	if ((fp = audit_key_open(path, 1, err, errlen)) == NULL)
		return NULL;
	key = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	if (key == NULL) {
		snprintf(err, errlen, "%s: not a PEM private key", path);
		return NULL;
	}
	if (!EVP_PKEY_is_a(key, "ED25519")) {
		snprintf(err, errlen, "%s: not an Ed25519 key", path);
		EVP_PKEY_free(key);
		return NULL;
	}
	return key;
}

EVP_PKEY *
audit_key_load_public(const char *path, char *err, size_t errlen)
{
	EVP_PKEY *key;
	FILE *fp;

	if ((fp = audit_key_open(path, 0, err, errlen)) == NULL)
		return NULL;
	key = PEM_read_PUBKEY(fp, NULL, NULL, NULL);
	fclose(fp);
	if (key == NULL) {
		snprintf(err, errlen, "%s: not a PEM public key", path);
		return NULL;
	}
	if (!EVP_PKEY_is_a(key, "ED25519")) {
		snprintf(err, errlen, "%s: not an Ed25519 key", path);
		EVP_PKEY_free(key);
		return NULL;
	}
	return key;
}

/*
 * The bytes a checkpoint signs:
 * "govgate-checkpoint-v1\n<gateway>\n<seq>\n<ts>\n<prev hex>\n".
 */
static size_t
audit_sig_msg(char *out, const char *gw, size_t gwlen, uint64_t seq,
    const char *ts, const unsigned char *prev)
{
	char hex[AUDIT_HEX_LEN + 1];
	size_t n = 0;
	int k;

	memcpy(out, AUDIT_SIG_DOMAIN, sizeof(AUDIT_SIG_DOMAIN) - 1);
	n += sizeof(AUDIT_SIG_DOMAIN) - 1;
	memcpy(out + n, gw, gwlen);
	n += gwlen;
	audit_hex(prev, AUDIT_HASH_LEN, hex);
	k = snprintf(out + n, AUDIT_SIGMSG_MAX - n, "\n%llu\n%.*s\n%s\n",
	    (unsigned long long)seq, AUDIT_TS_LEN, ts, hex);
	return n + (size_t)k;
}

/*
 * Append a checkpoint: {"seq","ts","gateway","event":"checkpoint",
 * "count":<seq>,"key_id","sig","prev","hash"}, where sig is base64 of the
 * Ed25519 signature over audit_sig_msg with this record's seq and ts and
 * its prev (the hash of the record before it). Then seal it.
 */
int
audit_checkpoint(struct audit_chain *ch, struct audit_buf *b,
    const struct audit_signer *s, int64_t sec, int32_t nsec)
{
	char ts[AUDIT_TS_LEN + 1], msg[AUDIT_SIGMSG_MAX];
	unsigned char sig[AUDIT_SIG_LEN], b64[AUDIT_SIG_B64_LEN + 4];
	EVP_MD_CTX *sctx = NULL;
	size_t siglen = sizeof(sig), mlen;
	int ret = -1;

	if (s->key == NULL || audit_ts_format(sec, nsec, ts) < 0)
		return -1;
	mlen = audit_sig_msg(msg, ch->gateway, strlen(ch->gateway), ch->seq + 1,
	    ts, ch->prev);
	if ((sctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(sctx, NULL, NULL, NULL, s->key) != 1 ||
	    EVP_DigestSign(sctx, sig, &siglen, (unsigned char *)msg, mlen) !=
	        1 ||
	    siglen != AUDIT_SIG_LEN)
		goto out;
	if (EVP_EncodeBlock(b64, sig, AUDIT_SIG_LEN) != AUDIT_SIG_B64_LEN)
		goto out;
	if (audit_begin(ch, b, "checkpoint", sec, nsec) < 0)
		goto out;
	audit_buf_lit(b, ",\"count\":");
	audit_buf_u64(b, ch->seq + 1);
	audit_buf_lit(b, ",\"key_id\":\"");
	audit_buf_raw(b, s->key_id, AUDIT_KEY_ID_LEN);
	audit_buf_lit(b, "\",\"sig\":\"");
	audit_buf_raw(b, (const char *)b64, AUDIT_SIG_B64_LEN);
	audit_buf_lit(b, "\"");
	ret = audit_seal(ch, b);
out:
	EVP_MD_CTX_free(sctx);
	OPENSSL_cleanse(sig, sizeof(sig));
	return ret;
}

/* Data subjects. */

void
audit_subject_key_set(struct audit_subject_key *k, const unsigned char *key,
    size_t len)
{
	unsigned char kb[64];
	unsigned int hl = 0;
	size_t i;

	memset(kb, 0, sizeof(kb));
	if (len > sizeof(kb))
		EVP_Digest(key, len, kb, &hl, EVP_sha256(), NULL);
	else
		memcpy(kb, key, len);
	for (i = 0; i < sizeof(kb); i++) {
		k->ipad[i] = kb[i] ^ 0x36;
		k->opad[i] = kb[i] ^ 0x5c;
	}
	OPENSSL_cleanse(kb, sizeof(kb));
}

int
audit_subject_key_load(struct audit_subject_key *k, const char *path, char *err,
    size_t errlen)
{
	unsigned char buf[AUDIT_SUBJECT_KEY_MAX + 2];
	size_t n;
	FILE *fp;
	int ret = -1;

	if ((fp = audit_key_open(path, 1, err, errlen)) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf), fp);
	if (ferror(fp)) {
		snprintf(err, errlen, "%s: read error", path);
		goto out;
	}
	while (n > 0 &&
	    (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
	        buf[n - 1] == '\t'))
		n--;
	if (n < AUDIT_SUBJECT_KEY_MIN || n > AUDIT_SUBJECT_KEY_MAX) {
		snprintf(err, errlen, "%s: a subject key is %d to %d bytes",
		    path, AUDIT_SUBJECT_KEY_MIN, AUDIT_SUBJECT_KEY_MAX);
		goto out;
	}
	audit_subject_key_set(k, buf, n);
	ret = 0;
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	fclose(fp);
	return ret;
}

/* HMAC-SHA256 (RFC 2104) from the precomputed pads; see audit.h. */
int
audit_subject_ref(const struct audit_subject_key *k, EVP_MD_CTX *md,
    const char *v, size_t n, char *out)
{
	unsigned char ih[AUDIT_HASH_LEN], oh[AUDIT_HASH_LEN];
	unsigned int l1 = 0, l2 = 0;
	const EVP_MD *sha = EVP_sha256();

	if (EVP_DigestInit_ex2(md, sha, NULL) != 1 ||
	    EVP_DigestUpdate(md, k->ipad, sizeof(k->ipad)) != 1 ||
	    EVP_DigestUpdate(md, v, n) != 1 ||
	    EVP_DigestFinal_ex(md, ih, &l1) != 1 ||
	    EVP_DigestInit_ex2(md, sha, NULL) != 1 ||
	    EVP_DigestUpdate(md, k->opad, sizeof(k->opad)) != 1 ||
	    EVP_DigestUpdate(md, ih, sizeof(ih)) != 1 ||
	    EVP_DigestFinal_ex(md, oh, &l2) != 1)
		return -1;
	audit_hex(oh, sizeof(oh), out);
	return 0;
}

/* Record bodies. */

/* A decision record's body; see audit.h for who owns what. */
int
audit_fmt_decision(struct audit_buf *b, const struct audit_decision *in)
{
	const struct policy_decision *d = in->d;
	const struct audit_request *rq = in->req;
	const struct audit_client *cl = in->client;
	const struct policy_resource *res = d->resource;
	const struct peer *pr = in->peer;
	unsigned char qh[AUDIT_HASH_LEN];
	char ref[AUDIT_HEX_LEN + 1];
	EVP_MD_CTX *md = in->md, *own = NULL;
	unsigned int qlen = 0;
	size_t off, slen;
	int pseudo, ret = -1;

	pseudo = in->subject_key != NULL && res != NULL &&
	    res->subject_id != NULL && rq != NULL && rq->path != NULL &&
	    d->subject_len > 0 && d->subject_off <= rq->path_len &&
	    d->subject_len <= rq->path_len - d->subject_off;
	if (md == NULL && (pseudo || (rq != NULL && rq->query != NULL))) {
		if ((own = EVP_MD_CTX_new()) == NULL)
			return -1;
		md = own;
	}
	audit_buf_lit(b, ",\"request_id\":");
	audit_buf_strz(b, in->request_id, AUDIT_ID_MAX);
	audit_buf_lit(b, ",\"policy\":{\"revision\":");
	audit_buf_strz(b, in->policy_revision, AUDIT_ID_MAX);
	audit_buf_lit(b, ",\"sha256\":");
	audit_buf_strz(b, in->policy_sha256, AUDIT_ID_MAX);
	audit_buf_lit(b, "},\"client\":{\"ip\":");
	audit_buf_strz(b, cl != NULL ? cl->ip : NULL, AUDIT_ID_MAX);
	audit_buf_lit(b, ",\"port\":");
	audit_buf_u64(b, cl != NULL ? cl->port : 0);
	audit_buf_lit(b, ",\"country\":");
	audit_buf_strz(b, cl != NULL ? cl->country : NULL, AUDIT_ID_MAX);
	audit_buf_lit(b, ",\"zone\":");
	audit_buf_strz(b, cl != NULL ? cl->zone : NULL, AUDIT_ID_MAX);
	audit_buf_lit(b, "},\"subject\":");
	if (pr != NULL && pr->present) {
		audit_buf_lit(b, "{\"department\":");
		audit_buf_strz(b,
		    d->department != NULL ? d->department->id : NULL,
		    AUDIT_ID_MAX);
		audit_buf_lit(b, ",\"dn\":");
		audit_buf_str(b, peer_str(pr, pr->dn), pr->dn.len, PEER_MAX_DN);
		audit_buf_lit(b, ",\"serial\":");
		audit_buf_str(b, peer_str(pr, pr->serial), pr->serial.len,
		    AUDIT_ID_MAX);
		audit_buf_lit(b, ",\"issuer\":");
		audit_buf_str(b, peer_str(pr, pr->issuer_dn), pr->issuer_dn.len,
		    PEER_MAX_DN);
		audit_buf_lit(b, ",\"sha256\":");
		audit_buf_str(b, peer_str(pr, pr->sha256), pr->sha256.len,
		    AUDIT_ID_MAX);
		audit_buf_lit(b, "}");
	} else
		audit_buf_null(b);
	audit_buf_lit(b, ",\"request\":{\"method\":");
	if (rq == NULL) {
		audit_buf_lit(b,
		    "null,\"host\":null,\"path\":null,"
		    "\"query_sha256\":null,\"purpose\":null,"
		    "\"case\":null,\"operator\":null}");
		goto resource;
	}
	audit_buf_str(b, rq->method, rq->method_len, AUDIT_ID_MAX);
	audit_buf_lit(b, ",\"host\":");
	audit_buf_str(b, rq->host, rq->host_len, AUDIT_FIELD_MAX);
	audit_buf_lit(b, ",\"path\":");
	if (pseudo) {
		/* The subject segment is written as {name}. */
		off = d->subject_off;
		slen = d->subject_len;
		audit_buf_lit(b, "\"");
		audit_buf_esc(b, rq->path, off, AUDIT_PATH_MAX);
		audit_buf_lit(b, "{");
		audit_buf_esc(b, res->subject_id, strlen(res->subject_id),
		    AUDIT_ID_MAX);
		audit_buf_lit(b, "}");
		audit_buf_esc(b, rq->path + off + slen,
		    rq->path_len - off - slen, AUDIT_PATH_MAX);
		audit_buf_lit(b, "\"");
	} else
		audit_buf_str(b, rq->path, rq->path_len, AUDIT_PATH_MAX);
	audit_buf_lit(b, ",\"query_sha256\":");
	if (rq->query != NULL) {
		if (EVP_DigestInit_ex2(md, EVP_sha256(), NULL) != 1 ||
		    EVP_DigestUpdate(md, rq->query, rq->query_len) != 1 ||
		    EVP_DigestFinal_ex(md, qh, &qlen) != 1)
			goto out;
		audit_buf_hex(b, qh, sizeof(qh));
	} else
		audit_buf_null(b);
	audit_buf_lit(b, ",\"purpose\":");
	audit_buf_str(b, rq->purpose, rq->purpose_len, AUDIT_FIELD_MAX);
	audit_buf_lit(b, ",\"case\":");
	audit_buf_str(b, rq->case_id, rq->case_len, AUDIT_FIELD_MAX);
	audit_buf_lit(b, ",\"operator\":");
	audit_buf_str(b, rq->operator_id, rq->operator_len, AUDIT_FIELD_MAX);
	audit_buf_lit(b, "}");
	if (pseudo) {
		if (audit_subject_ref(in->subject_key, md,
		        rq->path + d->subject_off, d->subject_len, ref) < 0)
			goto out;
		audit_buf_lit(b, ",\"subject_ref\":\"");
		audit_buf_raw(b, ref, AUDIT_HEX_LEN);
		audit_buf_lit(b, "\"");
	}
resource:
	audit_buf_lit(b, ",\"resource\":");
	if (res != NULL) {
		audit_buf_lit(b, "{\"id\":");
		audit_buf_strz(b, res->id, AUDIT_ID_MAX);
		audit_buf_lit(b, ",\"owner\":");
		audit_buf_strz(b, res->owner != NULL ? res->owner->id : NULL,
		    AUDIT_ID_MAX);
		audit_buf_lit(b, ",\"classification\":");
		audit_buf_strz(b, in->classification, AUDIT_ID_MAX);
		audit_buf_lit(b, ",\"sharing\":\"");
		audit_buf_raw(b, policy_sharing_str(res->sharing),
		    strlen(policy_sharing_str(res->sharing)));
		audit_buf_lit(b, "\"}");
	} else
		audit_buf_null(b);
	if (d->allow)
		audit_buf_lit(b, ",\"decision\":\"allow\",\"reason\":");
	else
		audit_buf_lit(b, ",\"decision\":\"deny\",\"reason\":");
	audit_buf_strz(b, policy_reason_str(d->reason), AUDIT_ID_MAX);
	audit_buf_lit(b, ",\"grant\":");
	audit_buf_strz(b, d->grant != NULL ? d->grant->id : NULL, AUDIT_ID_MAX);
	audit_buf_lit(b, ",\"shadow\":");
	if (d->shadow != NULL) {
		audit_buf_lit(b, "{\"grant\":");
		audit_buf_strz(b, d->shadow->id, AUDIT_ID_MAX);
		if (d->shadow_reason == POLICY_R_GRANT)
			audit_buf_lit(b, ",\"decision\":\"allow\",\"reason\":");
		else
			audit_buf_lit(b, ",\"decision\":\"deny\",\"reason\":");
		audit_buf_strz(b, policy_reason_str(d->shadow_reason),
		    AUDIT_ID_MAX);
		audit_buf_lit(b, "}");
	} else
		audit_buf_null(b);
	ret = b->overflow ? -1 : 0;
out:
	EVP_MD_CTX_free(own);
	return ret;
}

int
audit_fmt_complete(struct audit_buf *b, const struct audit_complete *c)
{
	audit_buf_lit(b, ",\"request_id\":");
	audit_buf_strz(b, c->request_id, AUDIT_ID_MAX);
	audit_buf_lit(b, ",\"status\":");
	audit_buf_u64(b, c->status > 0 ? (uint64_t)c->status : 0);
	audit_buf_lit(b, ",\"upstream\":");
	audit_buf_strz(b, c->upstream, AUDIT_ID_MAX);
	audit_buf_lit(b, ",\"upstream_ms\":");
	audit_buf_ms(b, c->upstream_us);
	audit_buf_lit(b, ",\"bytes_in\":");
	audit_buf_u64(b, c->bytes_in);
	audit_buf_lit(b, ",\"bytes_out\":");
	audit_buf_u64(b, c->bytes_out);
	audit_buf_lit(b, ",\"duration_ms\":");
	audit_buf_ms(b, c->duration_us < 0 ? 0 : c->duration_us);
	audit_buf_lit(b, ",\"masked\":");
	audit_buf_u64(b, c->masked);
	audit_buf_lit(b, ",\"upstream_incomplete\":");
	audit_buf_bool(b, c->upstream_incomplete);
	return b->overflow ? -1 : 0;
}

int
audit_fmt_start(struct audit_buf *b, const char *version, long pid,
    uint64_t torn_bytes)
{
	audit_buf_lit(b, ",\"version\":");
	audit_buf_strz(b, version != NULL ? version : "", AUDIT_ID_MAX);
	audit_buf_lit(b, ",\"pid\":");
	audit_buf_u64(b, pid > 0 ? (uint64_t)pid : 0);
	audit_buf_lit(b, ",\"torn_bytes\":");
	audit_buf_u64(b, torn_bytes);
	return b->overflow ? -1 : 0;
}

static int
audit_fmt_reason(struct audit_buf *b, const char *reason)
{
	audit_buf_lit(b, ",\"reason\":");
	audit_buf_strz(b, reason != NULL ? reason : "", AUDIT_FIELD_MAX);
	return b->overflow ? -1 : 0;
}

int
audit_fmt_stop(struct audit_buf *b, const char *reason)
{
	return audit_fmt_reason(b, reason);
}

int
audit_fmt_reopen(struct audit_buf *b, const char *reason)
{
	return audit_fmt_reason(b, reason);
}

int
audit_fmt_degraded(struct audit_buf *b, const char *reason)
{
	return audit_fmt_reason(b, reason);
}

int
audit_fmt_recovered(struct audit_buf *b, uint64_t refused, int64_t degraded_us)
{
	audit_buf_lit(b, ",\"refused\":");
	audit_buf_u64(b, refused);
	audit_buf_lit(b, ",\"degraded_ms\":");
	audit_buf_ms(b, degraded_us < 0 ? 0 : degraded_us);
	return b->overflow ? -1 : 0;
}

/*
 * At most AUDIT_MAX_ERRORS errors, each cut to AUDIT_ERROR_MAX bytes;
 * when there are more, a last element says how many were left out.
 */
int
audit_fmt_policy_loaded(struct audit_buf *b, const char *revision,
    const char *sha256, int ok, const char *const *errors, size_t nerrors)
{
	char more[64];
	size_t i;

	audit_buf_lit(b, ",\"revision\":");
	audit_buf_strz(b, revision, AUDIT_ID_MAX);
	audit_buf_lit(b, ",\"sha256\":");
	audit_buf_strz(b, sha256, AUDIT_ID_MAX);
	if (ok)
		audit_buf_lit(b, ",\"result\":\"ok\",\"errors\":[");
	else
		audit_buf_lit(b, ",\"result\":\"error\",\"errors\":[");
	for (i = 0; i < nerrors && i < AUDIT_MAX_ERRORS; i++) {
		if (i > 0)
			audit_buf_lit(b, ",");
		audit_buf_strz(b, errors[i] != NULL ? errors[i] : "",
		    AUDIT_ERROR_MAX);
	}
	if (nerrors > AUDIT_MAX_ERRORS) {
		snprintf(more, sizeof(more), ",\"and %zu more\"",
		    nerrors - AUDIT_MAX_ERRORS);
		audit_buf_raw(b, more, strlen(more));
	}
	audit_buf_lit(b, "]");
	return b->overflow ? -1 : 0;
}

/*
 * Reading records back. A line is checked in three layers: it is JSON
 * (strict, json.c), it has exactly the keys of its event in order with
 * the right types (the tables below), and its hash verifies. The chain
 * across lines is audit_verify's business.
 */

#define AT_STR 0x01
#define AT_NULL 0x02
#define AT_INT 0x04 /* a non-negative integer below 2^64 */
#define AT_NUM 0x08
#define AT_BOOL 0x10
#define AT_OBJ 0x20
#define AT_STRS 0x40 /* an array of strings */

enum audit_check {
	AC_NONE = 0,
	AC_SEQ,
	AC_TS,
	AC_GATEWAY,
	AC_EVENT,
	AC_COUNT,
	AC_KEY_ID,
	AC_SIG,
	AC_PREV,
	AC_HASH,
	AC_VERDICT, /* "allow" or "deny" */
	AC_RESULT,  /* "ok" or "error" */
	AC_NCHECKS,
};

struct audit_field {
	const char *key;
	uint8_t types;
	uint8_t optional;
	uint8_t check;
	const struct audit_field *sub;
};

#define F(k, t)                                                                \
	{                                                                      \
		k, t, 0, AC_NONE, NULL                                         \
	}
#define FC(k, t, c)                                                            \
	{                                                                      \
		k, t, 0, c, NULL                                               \
	}
#define FO(k, t, s)                                                            \
	{                                                                      \
		k, t, 0, AC_NONE, s                                            \
	}
#define FEND                                                                   \
	{                                                                      \
		NULL, 0, 0, 0, NULL                                            \
	}

static const struct audit_field audit_f_head[] = {
	FC("seq", AT_INT, AC_SEQ),
	FC("ts", AT_STR, AC_TS),
	FC("gateway", AT_STR, AC_GATEWAY),
	FC("event", AT_STR, AC_EVENT),
	FEND,
};

static const struct audit_field audit_f_tail[] = {
	FC("prev", AT_STR, AC_PREV),
	FC("hash", AT_STR, AC_HASH),
	FEND,
};

static const struct audit_field audit_f_policy[] = {
	F("revision", AT_STR | AT_NULL),
	F("sha256", AT_STR | AT_NULL),
	FEND,
};

static const struct audit_field audit_f_client[] = {
	F("ip", AT_STR | AT_NULL),
	F("port", AT_INT),
	F("country", AT_STR | AT_NULL),
	F("zone", AT_STR | AT_NULL),
	FEND,
};

static const struct audit_field audit_f_subject[] = {
	F("department", AT_STR | AT_NULL),
	F("dn", AT_STR),
	F("serial", AT_STR),
	F("issuer", AT_STR),
	F("sha256", AT_STR),
	FEND,
};

static const struct audit_field audit_f_request[] = {
	F("method", AT_STR | AT_NULL),
	F("host", AT_STR | AT_NULL),
	F("path", AT_STR | AT_NULL),
	F("query_sha256", AT_STR | AT_NULL),
	F("purpose", AT_STR | AT_NULL),
	F("case", AT_STR | AT_NULL),
	F("operator", AT_STR | AT_NULL),
	FEND,
};

static const struct audit_field audit_f_resource[] = {
	F("id", AT_STR),
	F("owner", AT_STR | AT_NULL),
	F("classification", AT_STR | AT_NULL),
	F("sharing", AT_STR),
	FEND,
};

static const struct audit_field audit_f_shadow[] = {
	F("grant", AT_STR),
	FC("decision", AT_STR, AC_VERDICT),
	F("reason", AT_STR),
	FEND,
};

static const struct audit_field audit_f_decision[] = {
	F("request_id", AT_STR),
	FO("policy", AT_OBJ, audit_f_policy),
	FO("client", AT_OBJ, audit_f_client),
	FO("subject", AT_OBJ | AT_NULL, audit_f_subject),
	FO("request", AT_OBJ, audit_f_request),
	{ "subject_ref", AT_STR, 1, AC_NONE, NULL },
	FO("resource", AT_OBJ | AT_NULL, audit_f_resource),
	FC("decision", AT_STR, AC_VERDICT),
	F("reason", AT_STR),
	F("grant", AT_STR | AT_NULL),
	FO("shadow", AT_OBJ | AT_NULL, audit_f_shadow),
	FEND,
};

static const struct audit_field audit_f_complete[] = {
	F("request_id", AT_STR),
	F("status", AT_INT),
	F("upstream", AT_STR | AT_NULL),
	F("upstream_ms", AT_NUM | AT_NULL),
	F("bytes_in", AT_INT),
	F("bytes_out", AT_INT),
	F("duration_ms", AT_NUM),
	F("masked", AT_INT),
	F("upstream_incomplete", AT_BOOL),
	FEND,
};

static const struct audit_field audit_f_checkpoint[] = {
	FC("count", AT_INT, AC_COUNT),
	FC("key_id", AT_STR, AC_KEY_ID),
	FC("sig", AT_STR, AC_SIG),
	FEND,
};

static const struct audit_field audit_f_start[] = {
	F("version", AT_STR),
	F("pid", AT_INT),
	F("torn_bytes", AT_INT),
	FEND,
};

static const struct audit_field audit_f_reason[] = {
	F("reason", AT_STR),
	FEND,
};

static const struct audit_field audit_f_policy_loaded[] = {
	F("revision", AT_STR | AT_NULL),
	F("sha256", AT_STR | AT_NULL),
	FC("result", AT_STR, AC_RESULT),
	F("errors", AT_STRS),
	FEND,
};

static const struct audit_field audit_f_recovered[] = {
	F("refused", AT_INT),
	F("degraded_ms", AT_NUM),
	FEND,
};

static const struct audit_field *const audit_fields[AUDIT_NEVENTS] = {
	[AUDIT_EV_DECISION] = audit_f_decision,
	[AUDIT_EV_COMPLETE] = audit_f_complete,
	[AUDIT_EV_CHECKPOINT] = audit_f_checkpoint,
	[AUDIT_EV_START] = audit_f_start,
	[AUDIT_EV_STOP] = audit_f_reason,
	[AUDIT_EV_POLICY_LOADED] = audit_f_policy_loaded,
	[AUDIT_EV_REOPEN] = audit_f_reason,
	[AUDIT_EV_DEGRADED] = audit_f_reason,
	[AUDIT_EV_RECOVERED] = audit_f_recovered,
};

/* What the chain logic needs of one checked line. */
struct audit_rec {
	uint64_t seq;
	enum audit_event event;
	unsigned char prev[AUDIT_HASH_LEN], hash[AUDIT_HASH_LEN];
	char ts[AUDIT_TS_LEN + 1];
	char gateway[AUDIT_GATEWAY_MAX + 1];
	size_t gwlen;
	uint64_t count;
	char key_id[AUDIT_KEY_ID_LEN + 1];
	unsigned char sig[AUDIT_SIG_LEN];
};

/* The tools a line check needs; owned by the verifier or tail reader. */
struct audit_scan {
	struct json_tok *toks;
	EVP_MD_CTX *md;
	EVP_MD *sha256;
};

/* A key as text fit for a message: printable ASCII, cut at 40 bytes. */
static void
audit_keyname(const char *s, const struct json_tok *t, char *out, size_t cap)
{
	size_t n, i;

	n = json_str_get(s, t, out, cap);
	if (n >= cap)
		n = cap - 1;
	for (i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20 ||
		    (unsigned char)out[i] >= 0x7f || out[i] == '"')
			out[i] = '?';
	out[n] = '\0';
}

static int
audit_tok_types(const struct json_tok *t)
{
	switch (t->type) {
	case JSON_NULL:
		return AT_NULL;
	case JSON_TRUE:
	case JSON_FALSE:
		return AT_BOOL;
	case JSON_NUMBER:
		return AT_NUM;
	case JSON_STRING:
		return AT_STR;
	case JSON_ARRAY:
		return AT_STRS;
	case JSON_OBJECT:
		return AT_OBJ;
	}
	return 0;
}

/* The ts format, with field ranges (leap seconds allowed). */
static int
audit_ts_ok(const char *s, size_t n)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
	size_t i;

	if (n != AUDIT_TS_LEN)
		return 0;
	for (i = 0; i < n; i++) {
		if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
			return 0;
	}
#define TS2(o) ((s[o] - '0') * 10 + (s[(o) + 1] - '0'))
	return TS2(5) >= 1 && TS2(5) <= 12 && TS2(8) >= 1 && TS2(8) <= 31 &&
	    TS2(11) <= 23 && TS2(14) <= 59 && TS2(17) <= 60;
#undef TS2
}

/* Canonical base64 of exactly AUDIT_SIG_LEN bytes. */
static int
audit_sig_decode(const char *s, size_t n, unsigned char *out)
{
	static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                            "abcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char tmp[AUDIT_SIG_B64_LEN], dec[AUDIT_SIG_LEN + 3];
	unsigned char back[AUDIT_SIG_B64_LEN + 4];
	size_t i;

	if (n != AUDIT_SIG_B64_LEN || s[n - 1] != '=' || s[n - 2] != '=')
		return -1;
	for (i = 0; i < n - 2; i++)
		if (s[i] == '\0' || strchr(alpha, s[i]) == NULL)
			return -1;
	memcpy(tmp, s, n);
	if (EVP_DecodeBlock(dec, tmp, (int)n) != AUDIT_SIG_LEN + 2)
		return -1;
	if (EVP_EncodeBlock(back, dec, AUDIT_SIG_LEN) != AUDIT_SIG_B64_LEN ||
	    memcmp(back, s, n) != 0)
		return -1;
	memcpy(out, dec, AUDIT_SIG_LEN);
	return 0;
}

static int audit_walk(const char *s, const struct json_tok *t, int obj,
    const struct audit_field *f, size_t *k, size_t *m, const char *in, int *at,
    char *why, size_t whylen);

/* Check one member value against its field; record where it is. */
static int
audit_check_value(const char *s, const struct json_tok *t, size_t v,
    const struct audit_field *f, int *at, char *why, size_t whylen)
{
	const struct json_tok *tv = &t[v];
	size_t i, k, m;
	int types;

	types = audit_tok_types(tv);
	if (types == AT_NUM && (f->types & AT_INT) && !(f->types & AT_NUM)) {
		uint64_t x;

		if (json_get_u64(s, tv, &x) == 0)
			types = AT_INT;
	}
	if ((types & f->types) == 0)
		goto type;
	if (types == AT_STRS)
		for (i = v + 1; i < tv->end; i = t[i].end)
			if (t[i].type != JSON_STRING)
				goto type;
	if (types == AT_OBJ && f->sub != NULL) {
		k = v + 1;
		m = 0;
		if (audit_walk(s, t, (int)v, f->sub, &k, &m, f->key, NULL, why,
		        whylen) < 0)
			return -1;
	}
	if (f->check == AC_VERDICT && !json_str_eq(s, tv, "allow", 5) &&
	    !json_str_eq(s, tv, "deny", 4))
		goto invalid;
	if (f->check == AC_RESULT && !json_str_eq(s, tv, "ok", 2) &&
	    !json_str_eq(s, tv, "error", 5))
		goto invalid;
	if (at != NULL && f->check != AC_NONE)
		at[f->check] = (int)v;
	return 0;
type:
	snprintf(why, whylen, "bad record: \"%s\" has the wrong type", f->key);
	return -1;
invalid:
	snprintf(why, whylen, "bad record: \"%s\" is not valid", f->key);
	return -1;
}

/*
 * Match the members of obj from the k-th key token (the m-th member) on
 * against the fields f, in order; optional fields may be absent. Leaves
 * k and m after the last matched member. With at == NULL (a nested
 * object) the object must end there.
 */
static int
audit_walk(const char *s, const struct json_tok *t, int obj,
    const struct audit_field *f, size_t *k, size_t *m, const char *in, int *at,
    char *why, size_t whylen)
{
	char found[48], ctx[64];
	size_t n = t[obj].n;

	ctx[0] = '\0';
	if (in != NULL)
		snprintf(ctx, sizeof(ctx), " in \"%s\"", in);
	for (; f->key != NULL; f++) {
		if (*m == n) {
			if (f->optional)
				continue;
			snprintf(why, whylen,
			    "bad record: missing key \"%s\"%s", f->key, ctx);
			return -1;
		}
		if (!json_str_eq(s, &t[*k], f->key, strlen(f->key))) {
			if (f->optional)
				continue;
			audit_keyname(s, &t[*k], found, sizeof(found));
			snprintf(why, whylen,
			    "bad record: expected key \"%s\"%s, found \"%s\"",
			    f->key, ctx, found);
			return -1;
		}
		if (audit_check_value(s, t, *k + 1, f, at, why, whylen) < 0)
			return -1;
		*k = t[*k + 1].end;
		(*m)++;
	}
	if (at == NULL && *m != n) {
		audit_keyname(s, &t[*k], found, sizeof(found));
		snprintf(why, whylen, "bad record: unexpected key \"%s\"%s",
		    found, ctx);
		return -1;
	}
	return 0;
}

/*
 * Check one line (without its newline) as a record and fill r. Returns 0,
 * or -1 with why. Does not look at the chain.
 */
static int
audit_check_line(struct audit_scan *sc, const char *line, size_t len,
    struct audit_rec *r, char *why, size_t whylen)
{
	static const struct json_opts jo = { 4, 0, 0 };
	const struct json_tok *t = sc->toks;
	struct json_err je;
	unsigned char h[AUDIT_HASH_LEN];
	char found[48], hex[AUDIT_HEX_LEN + 1], sig[AUDIT_SIG_B64_LEN + 1];
	int at[AC_NCHECKS], e;
	size_t k = 1, m = 0;

	memset(at, -1, sizeof(at));
	if (len == 0) {
		snprintf(why, whylen, "empty line");
		return -1;
	}
	if (json_parse(line, len, sc->toks, AUDIT_MAX_TOKENS, &jo, &je) < 0) {
		snprintf(why, whylen, "not valid JSON: %s at column %zu",
		    je.why, je.off + 1);
		return -1;
	}
	if (t[0].type != JSON_OBJECT) {
		snprintf(why, whylen, "bad record: not a JSON object");
		return -1;
	}
	if (audit_walk(line, t, 0, audit_f_head, &k, &m, NULL, at, why,
	        whylen) < 0)
		return -1;
	for (e = 0; e < AUDIT_NEVENTS; e++)
		if (json_str_eq(line, &t[at[AC_EVENT]], audit_event_names[e],
		        strlen(audit_event_names[e])))
			break;
	if (e == AUDIT_NEVENTS) {
		audit_keyname(line, &t[at[AC_EVENT]], found, sizeof(found));
		snprintf(why, whylen, "bad record: unknown event \"%s\"",
		    found);
		return -1;
	}
	r->event = (enum audit_event)e;
	if (audit_walk(line, t, 0, audit_fields[e], &k, &m, NULL, at, why,
	        whylen) < 0 ||
	    audit_walk(line, t, 0, audit_f_tail, &k, &m, NULL, NULL, why,
	        whylen) < 0)
		return -1;
	/* audit_walk with at == NULL does not record; find prev and hash. */
	at[AC_HASH] = (int)t[0].end - 1;
	at[AC_PREV] = at[AC_HASH] - 2;
	if (json_get_u64(line, &t[at[AC_SEQ]], &r->seq) < 0 || r->seq == 0 ||
	    r->seq > (uint64_t)INT64_MAX) {
		snprintf(why, whylen, "bad record: \"seq\" is not valid");
		return -1;
	}
	/*
	 * Values are compared as decoded strings (an escape spelling a hex
	 * digit is that digit), as any JSON reader would see them.
	 */
	if (json_str_get(line, &t[at[AC_TS]], r->ts, sizeof(r->ts)) !=
	        AUDIT_TS_LEN ||
	    !audit_ts_ok(r->ts, AUDIT_TS_LEN)) {
		snprintf(why, whylen, "bad record: \"ts\" is not valid");
		return -1;
	}
	r->gwlen = json_str_get(line, &t[at[AC_GATEWAY]], r->gateway,
	    sizeof(r->gateway));
	if (r->gwlen > AUDIT_GATEWAY_MAX) {
		snprintf(why, whylen, "bad record: \"gateway\" is not valid");
		return -1;
	}
	if (json_str_get(line, &t[at[AC_PREV]], hex, sizeof(hex)) !=
	        AUDIT_HEX_LEN ||
	    audit_unhex(hex, AUDIT_HEX_LEN, r->prev, AUDIT_HASH_LEN) < 0) {
		snprintf(why, whylen, "bad record: \"prev\" is not valid");
		return -1;
	}
	if (json_str_get(line, &t[at[AC_HASH]], hex, sizeof(hex)) !=
	        AUDIT_HEX_LEN ||
	    audit_unhex(hex, AUDIT_HEX_LEN, r->hash, AUDIT_HASH_LEN) < 0) {
		snprintf(why, whylen, "bad record: \"hash\" is not valid");
		return -1;
	}
	if (r->event == AUDIT_EV_CHECKPOINT) {
		if (json_get_u64(line, &t[at[AC_COUNT]], &r->count) < 0) {
			snprintf(why, whylen,
			    "bad record: \"count\" is not valid");
			return -1;
		}
		if (json_str_get(line, &t[at[AC_KEY_ID]], r->key_id,
		        sizeof(r->key_id)) != AUDIT_KEY_ID_LEN ||
		    audit_unhex(r->key_id, AUDIT_KEY_ID_LEN, h,
		        AUDIT_KEY_ID_LEN / 2) < 0) {
			snprintf(why, whylen,
			    "bad record: \"key_id\" is not valid");
			return -1;
		}
		if (json_str_get(line, &t[at[AC_SIG]], sig, sizeof(sig)) !=
		        AUDIT_SIG_B64_LEN ||
		    audit_sig_decode(sig, AUDIT_SIG_B64_LEN, r->sig) < 0) {
			snprintf(why, whylen,
			    "bad record: \"sig\" is not base64 of 64 bytes");
			return -1;
		}
	}
	/* The hash member must be the literal end of the line. */
	if (len < AUDIT_SUFFIX_LEN ||
	    memcmp(line + len - AUDIT_SUFFIX_LEN, ",\"hash\":\"", 9) != 0 ||
	    memcmp(line + len - 2, "\"}", 2) != 0) {
		snprintf(why, whylen,
		    "bad record: the line must end with ,\"hash\":\"<64 "
		    "hex>\"}");
		return -1;
	}
	if (audit_sha256(sc->md, sc->sha256, line, len - AUDIT_SUFFIX_LEN, h) <
	    0) {
		snprintf(why, whylen, "cannot compute SHA-256");
		return -1;
	}
	if (memcmp(h, r->hash, AUDIT_HASH_LEN) != 0) {
		audit_hex(h, AUDIT_HASH_LEN, hex);
		snprintf(why, whylen,
		    "hash mismatch: the record was changed (computed %s)", hex);
		return -1;
	}
	return 0;
}

static int
audit_scan_init(struct audit_scan *sc)
{
	memset(sc, 0, sizeof(*sc));
	if ((sc->toks = calloc(AUDIT_MAX_TOKENS, sizeof(*sc->toks))) == NULL ||
	    (sc->md = EVP_MD_CTX_new()) == NULL ||
	    (sc->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		return -1;
	return 0;
}

static void
audit_scan_clear(struct audit_scan *sc)
{
	free(sc->toks);
	EVP_MD_CTX_free(sc->md);
	EVP_MD_free(sc->sha256);
	memset(sc, 0, sizeof(*sc));
}

/* Read the last record of a file; see audit.h. */
int
audit_tail_read(const char *path, struct audit_tail *t, char *err,
    size_t errlen)
{
	struct audit_scan sc;
	struct audit_rec r;
	struct stat st;
	char *buf = NULL, why[512];
	size_t want, got, nl, start;
	ssize_t n;
	off_t base;
	int fd = -1, ret = -1, saved = 0;

	memset(t, 0, sizeof(*t));
	memset(&sc, 0, sizeof(sc));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		saved = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size == 0) {
		ret = 0;
		goto out;
	}
	want = st.st_size < 2 * AUDIT_RECORD_MAX ? (size_t)st.st_size
	                                         : 2 * AUDIT_RECORD_MAX;
	base = st.st_size - (off_t)want;
	if ((buf = malloc(want)) == NULL || audit_scan_init(&sc) < 0) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	for (got = 0; got < want; got += (size_t)n) {
		n = pread(fd, buf + got, want - got, base + (off_t)got);
		if (n < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0) {
			snprintf(err, errlen, "%s: read: %s", path,
			    n < 0 ? strerror(errno) : "file shrank");
			goto out;
		}
	}
	/* The torn part: bytes after the last newline. */
	for (nl = want; nl > 0 && buf[nl - 1] != '\n'; nl--)
		;
	t->torn = (off_t)(want - nl);
	if (nl == 0) {
		if (base == 0 && want < AUDIT_RECORD_MAX) {
			t->end = 0; /* only a torn line */
			ret = 0;
		} else
			snprintf(err, errlen,
			    "%s: no newline in the last %zu bytes", path, want);
		goto out;
	}
	if (t->torn >= AUDIT_RECORD_MAX) {
		snprintf(err, errlen, "%s: %lld bytes after the last newline",
		    path, (long long)t->torn);
		goto out;
	}
	t->end = base + (off_t)nl;
	for (start = nl - 1; start > 0 && buf[start - 1] != '\n'; start--)
		;
	if (start == 0 && base != 0) {
		snprintf(err, errlen, "%s: last line longer than %d bytes",
		    path, AUDIT_RECORD_MAX);
		goto out;
	}
	if (audit_check_line(&sc, buf + start, nl - 1 - start, &r, why,
	        sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: last record (offset %lld): %s", path,
		    (long long)(base + (off_t)start), why);
		goto out;
	}
	t->seq = r.seq;
	t->event = r.event;
	memcpy(t->hash, r.hash, AUDIT_HASH_LEN);
	ret = 0;
out:
	audit_scan_clear(&sc);
	free(buf);
	if (fd >= 0)
		close(fd);
	if (saved != 0)
		errno = saved;
	return ret;
}

/* Verification. */

static int audit_vfail(struct audit_verify *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
audit_vfail(struct audit_verify *v, const char *fmt, ...)
{
	va_list ap;

	if (v->failed)
		return -1;
	va_start(ap, fmt);
	vsnprintf(v->error, sizeof(v->error), fmt, ap);
	va_end(ap);
	v->failed = 1;
	return -1;
}

int
audit_verify_init(struct audit_verify *v, char *err, size_t errlen)
{
	EVP_PKEY *pub = v->pubkey;
	int partial = v->partial;

	memset(v, 0, sizeof(*v));
	v->pubkey = pub;
	v->partial = partial;
	if ((v->toks = calloc(AUDIT_MAX_TOKENS, sizeof(*v->toks))) == NULL ||
	    (v->md = EVP_MD_CTX_new()) == NULL ||
	    (v->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL) {
		snprintf(err, errlen, "out of memory");
		audit_verify_clear(v);
		return -1;
	}
	if (pub != NULL) {
		if (!EVP_PKEY_is_a(pub, "ED25519") ||
		    audit_key_id(pub, v->pub_key_id) < 0) {
			snprintf(err, errlen, "public key is not Ed25519");
			audit_verify_clear(v);
			return -1;
		}
	}
	return 0;
}

void
audit_verify_clear(struct audit_verify *v)
{
	free(v->toks);
	free(v->known);
	free(v->rbuf);
	EVP_MD_CTX_free(v->md);
	EVP_MD_free(v->sha256);
	v->toks = NULL;
	v->known = NULL;
	v->rbuf = NULL;
	v->md = NULL;
	v->sha256 = NULL;
}

static int
audit_sig_ok(EVP_PKEY *pub, const struct audit_rec *r)
{
	char msg[AUDIT_SIGMSG_MAX];
	EVP_MD_CTX *ctx;
	size_t mlen;
	int ok;

	mlen = audit_sig_msg(msg, r->gateway, r->gwlen, r->seq, r->ts, r->prev);
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return 0;
	ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pub) == 1 &&
	    EVP_DigestVerify(ctx, r->sig, AUDIT_SIG_LEN,
	        (const unsigned char *)msg, mlen) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

static struct audit_scan
audit_vscan(struct audit_verify *v)
{
	struct audit_scan sc;

	sc.toks = v->toks;
	sc.md = v->md;
	sc.sha256 = v->sha256;
	return sc;
}

static int
audit_known_cmp(const void *a, const void *b)
{
	const struct audit_known *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Known checkpoints: checkpoint lines kept elsewhere (a monitoring
 * system's copy). Each must be a valid checkpoint (and, with a public
 * key, carry a good signature); the log must hold the same record at its
 * seq, so a rollback or a truncation before it is caught.
 */
int
audit_verify_known_buf(struct audit_verify *v, const char *name,
    const char *buf, size_t len)
{
	struct audit_scan sc = audit_vscan(v);
	struct audit_known *nk;
	struct audit_rec r;
	const char *p = buf, *end = buf + len, *nl;
	char why[512];
	uint64_t line = 0;
	size_t n, i;

	if (v->failed)
		return -1;
	while (p < end) {
		line++;
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		if (n == 0 || (n == 1 && *p == '\r'))
			goto next;
		if (n >= AUDIT_RECORD_MAX)
			return audit_vfail(v,
			    "%s:%llu: line longer than %d bytes", name,
			    (unsigned long long)line, AUDIT_RECORD_MAX);
		if (audit_check_line(&sc, p, n, &r, why, sizeof(why)) < 0)
			return audit_vfail(v, "%s:%llu: known checkpoint: %s",
			    name, (unsigned long long)line, why);
		if (r.event != AUDIT_EV_CHECKPOINT)
			return audit_vfail(v,
			    "%s:%llu: known checkpoint: not a checkpoint "
			    "record",
			    name, (unsigned long long)line);
		if (v->pubkey != NULL &&
		    (strcmp(r.key_id, v->pub_key_id) != 0 ||
		        !audit_sig_ok(v->pubkey, &r)))
			return audit_vfail(v,
			    "%s:%llu: known checkpoint: signature does not "
			    "verify under the public key",
			    name, (unsigned long long)line);
		if (v->nknown >= AUDIT_KNOWN_MAX)
			return audit_vfail(v,
			    "%s:%llu: more than %d known checkpoints", name,
			    (unsigned long long)line, AUDIT_KNOWN_MAX);
		if ((nk = realloc(v->known, (v->nknown + 1) * sizeof(*nk))) ==
		    NULL)
			return audit_vfail(v, "%s: out of memory", name);
		v->known = nk;
		nk = &v->known[v->nknown++];
		memset(nk, 0, sizeof(*nk));
		nk->seq = r.seq;
		memcpy(nk->hash, r.hash, AUDIT_HASH_LEN);
		snprintf(nk->where, sizeof(nk->where), "%s:%llu", name,
		    (unsigned long long)line);
	next:
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	if (v->nknown > 1)
		qsort(v->known, v->nknown, sizeof(*v->known), audit_known_cmp);
	for (i = 1; i < v->nknown; i++)
		if (v->known[i].seq == v->known[i - 1].seq &&
		    memcmp(v->known[i].hash, v->known[i - 1].hash,
		        AUDIT_HASH_LEN) != 0)
			return audit_vfail(v,
			    "%s: two known checkpoints for seq %llu differ",
			    v->known[i].where,
			    (unsigned long long)v->known[i].seq);
	return 0;
}

static char *
audit_slurp(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (size_t)st.st_size > max) {
		snprintf(err, errlen,
		    "%s: not a regular file of at most %zu "
		    "bytes",
		    path, max);
		goto fail;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

int
audit_verify_known(struct audit_verify *v, const char *path)
{
	char err[AUDIT_WHERE_MAX], *buf;
	size_t len = 0;
	int ret;

	if (v->failed)
		return -1;
	if ((buf = audit_slurp(path, 16 * 1024 * 1024, &len, err,
	         sizeof(err))) == NULL)
		return audit_vfail(v, "%s", err);
	ret = audit_verify_known_buf(v, path, buf, len);
	free(buf);
	return ret;
}

/* One line of the log, in chain order. */
static int
audit_verify_line(struct audit_verify *v, const char *name, uint64_t line,
    const char *p, size_t n)
{
	struct audit_scan sc = audit_vscan(v);
	struct audit_known *kn;
	struct audit_rec r;
	char why[512], hex[AUDIT_HEX_LEN + 1];
	unsigned long long ln = (unsigned long long)line;

	if (audit_check_line(&sc, p, n, &r, why, sizeof(why)) < 0)
		return audit_vfail(v, "%s:%llu: %s", name, ln, why);
	if (v->nrecords == 0) {
		if (!v->partial && r.seq != 1)
			return audit_vfail(v,
			    "%s:%llu: first record has seq %llu: a chain "
			    "starts at 1 (--partial verifies a later part)",
			    name, ln, (unsigned long long)r.seq);
		if (!v->partial &&
		    memcmp(r.prev, audit_zero, AUDIT_HASH_LEN) != 0)
			return audit_vfail(v,
			    "%s:%llu: the first record's prev is not 64 zeros",
			    name, ln);
		v->first_seq = r.seq;
		while (v->knext < v->nknown && v->known[v->knext].seq < r.seq) {
			v->known[v->knext++].seen = 1;
			v->nknown_before++;
		}
	} else {
		if (r.seq != v->last_seq + 1) {
			if (line == 1)
				return audit_vfail(v,
				    "%s:%llu: seq %llu where %llu expected: "
				    "gap "
				    "after %s (missing file or deleted "
				    "records)",
				    name, ln, (unsigned long long)r.seq,
				    (unsigned long long)v->last_seq + 1,
				    v->last_at);
			return audit_vfail(v,
			    "%s:%llu: seq %llu where %llu expected (records "
			    "deleted, inserted or reordered)",
			    name, ln, (unsigned long long)r.seq,
			    (unsigned long long)v->last_seq + 1);
		}
		if (memcmp(r.prev, v->prev, AUDIT_HASH_LEN) != 0)
			return audit_vfail(v,
			    "%s:%llu: prev does not match the hash of the "
			    "previous record (%s)",
			    name, ln, v->last_at);
	}
	if (r.event == AUDIT_EV_CHECKPOINT) {
		if (r.count != r.seq)
			return audit_vfail(v,
			    "%s:%llu: checkpoint count %llu is not its seq",
			    name, ln, (unsigned long long)r.count);
		if (v->pubkey != NULL) {
			if (strcmp(r.key_id, v->pub_key_id) != 0)
				return audit_vfail(v,
				    "%s:%llu: checkpoint made with another key "
				    "(key_id %s, expected %s)",
				    name, ln, r.key_id, v->pub_key_id);
			if (!audit_sig_ok(v->pubkey, &r))
				return audit_vfail(v,
				    "%s:%llu: checkpoint signature does not "
				    "verify (records before it were changed, "
				    "or it was forged)",
				    name, ln);
		}
		v->ncheckpoints++;
		v->sealed_seq = r.seq;
		snprintf(v->sealed_at, sizeof(v->sealed_at), "%s:%llu", name,
		    ln);
	}
	while (v->knext < v->nknown && v->known[v->knext].seq == r.seq) {
		kn = &v->known[v->knext++];
		if (memcmp(kn->hash, r.hash, AUDIT_HASH_LEN) != 0) {
			audit_hex(kn->hash, AUDIT_HASH_LEN, hex);
			return audit_vfail(v,
			    "%s:%llu: differs from the known checkpoint for "
			    "seq "
			    "%llu (%s, hash %s): rollback or rewrite",
			    name, ln, (unsigned long long)r.seq, kn->where,
			    hex);
		}
		kn->seen = 1;
	}
	if (v->nrecords > 0 && memcmp(r.ts, v->prev_ts, AUDIT_TS_LEN) < 0 &&
	    v->ts_backwards++ == 0)
		snprintf(v->ts_backwards_at, sizeof(v->ts_backwards_at),
		    "%s:%llu", name, ln);
	memcpy(v->prev_ts, r.ts, sizeof(v->prev_ts));
	memcpy(v->prev, r.hash, AUDIT_HASH_LEN);
	v->last_seq = r.seq;
	v->nrecords++;
	snprintf(v->last_at, sizeof(v->last_at), "%s:%llu", name, ln);
	return 0;
}

/* Every complete line of buf; *used is set to the bytes consumed. */
static int
audit_verify_lines(struct audit_verify *v, const char *name, const char *buf,
    size_t len, uint64_t *line, size_t *used)
{
	const char *p = buf, *end = buf + len, *nl;

	*used = 0;
	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		++*line;
		if ((size_t)(nl - p) >= AUDIT_RECORD_MAX)
			return audit_vfail(v,
			    "%s:%llu: line longer than %d bytes", name,
			    (unsigned long long)*line, AUDIT_RECORD_MAX);
		if (audit_verify_line(v, name, *line, p, (size_t)(nl - p)) < 0)
			return -1;
		p = nl + 1;
		*used = (size_t)(p - buf);
	}
	return 0;
}

/* The bytes after a file's last newline. */
static int
audit_verify_rest(struct audit_verify *v, const char *name, uint64_t line,
    size_t rest, int last)
{
	unsigned long long ln = (unsigned long long)line + 1;

	if (rest == 0)
		return 0;
	if (rest >= AUDIT_RECORD_MAX)
		return audit_vfail(v, "%s:%llu: line longer than %d bytes",
		    name, ln, AUDIT_RECORD_MAX);
	if (!last)
		return audit_vfail(v,
		    "%s:%llu: the file does not end with a newline, and it "
		    "is not the last file",
		    name, ln);
	v->torn_bytes = rest;
	snprintf(v->torn_at, sizeof(v->torn_at), "%s:%llu", name, ln);
	return 0;
}

int
audit_verify_buf(struct audit_verify *v, const char *name, const char *buf,
    size_t len, int last)
{
	uint64_t line = 0;
	size_t used;

	if (v->failed)
		return -1;
	v->nfiles++;
	if (audit_verify_lines(v, name, buf, len, &line, &used) < 0)
		return -1;
	return audit_verify_rest(v, name, line, len - used, last);
}

int
audit_verify_file(struct audit_verify *v, const char *path, int last)
{
	uint64_t line = 0;
	size_t carry = 0, used;
	ssize_t n;
	int fd, ret = -1;

	if (v->failed)
		return -1;
	v->nfiles++;
	if (v->rbuf == NULL && (v->rbuf = malloc(AUDIT_RBUF_SIZE)) == NULL)
		return audit_vfail(v, "%s: out of memory", path);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return audit_vfail(v, "%s: %s", path, strerror(errno));
	for (;;) {
		n = read(fd, v->rbuf + carry, AUDIT_RBUF_SIZE - carry);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			audit_vfail(v, "%s: read: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		carry += (size_t)n;
		if (audit_verify_lines(v, path, v->rbuf, carry, &line, &used) <
		    0)
			goto out;
		carry -= used;
		if (carry >= AUDIT_RECORD_MAX) {
			audit_vfail(v, "%s:%llu: line longer than %d bytes",
			    path, (unsigned long long)line + 1,
			    AUDIT_RECORD_MAX);
			goto out;
		}
		memmove(v->rbuf, v->rbuf + used, carry);
	}
	ret = audit_verify_rest(v, path, line, carry, last);
out:
	close(fd);
	return ret;
}

int
audit_verify_finish(struct audit_verify *v)
{
	const struct audit_known *kn;

	if (v->failed)
		return -1;
	if (v->knext < v->nknown) {
		kn = &v->known[v->knext];
		if (v->nrecords == 0)
			return audit_vfail(v,
			    "the log is empty, but there is a known checkpoint "
			    "at seq %llu (%s): rollback or truncation",
			    (unsigned long long)kn->seq, kn->where);
		return audit_vfail(v,
		    "%s: the log ends at seq %llu, before the known checkpoint "
		    "at seq %llu (%s): rollback or truncation",
		    v->last_at, (unsigned long long)v->last_seq,
		    (unsigned long long)kn->seq, kn->where);
	}
	v->unsealed =
	    v->sealed_seq != 0 ? v->last_seq - v->sealed_seq : v->nrecords;
	return 0;
}
