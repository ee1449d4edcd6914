/* audit.h - audit records: encoding, hash chain, checkpoints, verification. */
#ifndef AUDIT_H
#define AUDIT_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

struct json_tok;
struct peer;
struct policy_decision;

/*
 * Sizes. Every formatter cuts its strings to the limits below, counted in
 * escaped output bytes (a cut is marked with a trailing U+2026), so that a
 * body built from any input stays far below AUDIT_BODY_MAX (about 20 KiB
 * at worst) and a sealed record fits AUDIT_RECORD_MAX.
 */
#define AUDIT_RECORD_MAX 65536 /* bytes of one line, newline included */
#define AUDIT_BODY_MAX (AUDIT_RECORD_MAX - 1024) /* what callers format */
#define AUDIT_GATEWAY_MAX 255                    /* bytes of the gateway name */
#define AUDIT_ID_MAX 256    /* bytes kept of an id (policy, request) */
#define AUDIT_FIELD_MAX 512 /* bytes kept of host, purpose, case, ... */
#define AUDIT_PATH_MAX 8192 /* bytes kept of a request path */
#define AUDIT_ERROR_MAX 400 /* bytes kept of one policy_loaded error */
#define AUDIT_MAX_ERRORS 20 /* errors listed in a policy_loaded record */
#define AUDIT_HASH_LEN 32
#define AUDIT_HEX_LEN 64     /* hex digits of a hash */
#define AUDIT_KEY_ID_LEN 16  /* hex digits of a key id */
#define AUDIT_SIG_LEN 64     /* bytes of an Ed25519 signature */
#define AUDIT_TS_LEN 27      /* "2026-11-28T02:15:07.123456Z" */
#define AUDIT_WHERE_MAX 4200 /* "file:line" in verification reports */
#define AUDIT_KNOWN_MAX 4096 /* known checkpoints per verification */

#define AUDIT_HASH_DOMAIN "govgate-audit-v1\n"
#define AUDIT_SIG_DOMAIN "govgate-checkpoint-v1\n"

enum audit_event {
	AUDIT_EV_DECISION = 0,
	AUDIT_EV_COMPLETE,
	AUDIT_EV_CHECKPOINT,
	AUDIT_EV_START,
	AUDIT_EV_STOP,
	AUDIT_EV_POLICY_LOADED,
	AUDIT_EV_REOPEN,
	AUDIT_EV_DEGRADED,
	AUDIT_EV_RECOVERED,
	AUDIT_NEVENTS,
};

/*
 * An output buffer over caller storage. Appenders never write past cap:
 * when something does not fit they set overflow and every later append
 * is a no-op, so a formatter checks once at the end. mark is where the
 * record being built starts (audit_begin sets it), so one buffer can
 * hold a batch of sealed records for a single write.
 */
struct audit_buf {
	char *p;
	size_t len, cap;
	size_t mark;
	int overflow;
};

void audit_buf_init(struct audit_buf *b, char *mem, size_t cap);
void audit_buf_reset(struct audit_buf *b); /* empty, overflow cleared */
/* Drop a half-built record: back to mark, overflow cleared. */
void audit_rollback(struct audit_buf *b);
void audit_buf_raw(struct audit_buf *b, const char *s, size_t n);
#define audit_buf_lit(b, s) audit_buf_raw((b), (s), sizeof(s) - 1)
/* ,"key": (a comma unless the previous byte opens an object) */
void audit_buf_key(struct audit_buf *b, const char *key);
/*
 * A JSON string of the n bytes at s, escaped so that no value can break a
 * line: '"' and '\\' and the controls below 0x20 get backslash escapes
 * (\n \r \t \b \f, else \u00XX), DEL is \u007f, each byte that is not
 * part of valid shortest-form UTF-8 becomes \ufffd; valid UTF-8 is copied
 * as is. The content is cut to at most max bytes as escaped (at a whole
 * character or escape); a cut string then ends in U+2026 (3 more bytes).
 * s may be NULL (written as null).
 */
void audit_buf_str(struct audit_buf *b, const char *s, size_t n, size_t max);
/* NUL-terminated s, or null when s is NULL; cut at max bytes. */
void audit_buf_strz(struct audit_buf *b, const char *s, size_t max);
void audit_buf_u64(struct audit_buf *b, uint64_t v);
void audit_buf_i64(struct audit_buf *b, int64_t v);
/* Microseconds as milliseconds, e.g. 3100 -> 3.1; negative -> null. */
void audit_buf_ms(struct audit_buf *b, int64_t usec);
void audit_buf_bool(struct audit_buf *b, int v);
void audit_buf_null(struct audit_buf *b);
/* n bytes as a quoted lower-case hex string. */
void audit_buf_hex(struct audit_buf *b, const unsigned char *p, size_t n);

/*
 * "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" (UTC, microseconds, truncated) into out,
 * which holds AUDIT_TS_LEN + 1 bytes. Returns 0, or -1 outside years
 * 0000..9999 or when nsec is not 0..999999999.
 */
int audit_ts_format(int64_t sec, int32_t nsec, char *out);

/*
 * The writer's chain head: the seq and hash of the last record sealed,
 * the gateway name, and a reusable digest context (one per writer thread;
 * not thread-safe).
 */
struct audit_chain {
	uint64_t seq;                       /* 0: nothing sealed yet */
	unsigned char prev[AUDIT_HASH_LEN]; /* hash of record seq; zeros */
	char gateway[AUDIT_GATEWAY_MAX + 1];
	EVP_MD_CTX *md;
	EVP_MD *sha256;
};

/*
 * Start a chain at seq 0 with a zero prev. gateway must be 1 to
 * AUDIT_GATEWAY_MAX bytes of valid UTF-8 without controls, '"' or '\\',
 * so its JSON form is itself and the bytes signed are unambiguous.
 * Returns 0, or -1 with a reason in err.
 */
int audit_chain_init(struct audit_chain *ch, const char *gateway, char *err,
    size_t errlen);
/* Continue from a record read back (audit_tail_read). */
void audit_chain_set(struct audit_chain *ch, uint64_t seq,
    const unsigned char *prev);
void audit_chain_clear(struct audit_chain *ch);

/*
 * Begin the next record at the end of b: sets b->mark and appends
 * {"seq":<ch->seq + 1>,"ts":"<sec.nsec>","gateway":"<name>","event":"<event>"
 * The caller then appends the event's fields (an audit_fmt_* body) and
 * calls audit_seal. event must be one of audit_event_str's names.
 * Returns 0, or -1 (b overflowed, bad time or event, seq exhausted).
 */
int audit_begin(struct audit_chain *ch, struct audit_buf *b, const char *event,
    int64_t sec, int32_t nsec);
int audit_seal(struct audit_chain *ch, struct audit_buf *b);
/* audit_begin, the body bytes (from an audit_fmt_*), audit_seal. */
int audit_record(struct audit_chain *ch, struct audit_buf *b, const char *event,
    int64_t sec, int32_t nsec, const char *body, size_t bodylen);

/* A checkpoint signing key and its id. */
struct audit_signer {
	EVP_PKEY *key;
	char key_id[AUDIT_KEY_ID_LEN + 1];
};

/*
 * key_id: the first 16 hex digits of SHA-256 over the public key's DER
 * SubjectPublicKeyInfo. out holds AUDIT_KEY_ID_LEN + 1 bytes. 0 or -1.
 */
int audit_key_id(EVP_PKEY *key, char *out);
/* Takes a reference to key (an Ed25519 private key). 0, or -1 and err. */
int audit_signer_init(struct audit_signer *s, EVP_PKEY *key, char *err,
    size_t errlen);
void audit_signer_clear(struct audit_signer *s);
/*
 * Load a PEM Ed25519 private key; refuses a file that group or others
 * may read. Returns an owned key, or NULL with a reason in err.
 */
EVP_PKEY *audit_key_load_private(const char *path, char *err, size_t errlen);
/* Load a PEM Ed25519 public key (SubjectPublicKeyInfo). */
EVP_PKEY *audit_key_load_public(const char *path, char *err, size_t errlen);

/* Append and seal a signed checkpoint record; see audit.c. 0 or -1. */
int audit_checkpoint(struct audit_chain *ch, struct audit_buf *b,
    const struct audit_signer *s, int64_t sec, int32_t nsec);

/* The HMAC-SHA256 key that pseudonymises data subjects, as pads. */
struct audit_subject_key {
	unsigned char ipad[64], opad[64];
};

#define AUDIT_SUBJECT_KEY_MIN 16
#define AUDIT_SUBJECT_KEY_MAX 1024

void audit_subject_key_set(struct audit_subject_key *k,
    const unsigned char *key, size_t len);
/*
 * Load a subject key file: its bytes, trailing whitespace removed, are
 * the key (16 to 1024 bytes; e.g. `openssl rand -hex 32`). Refuses a file
 * that group or others may read. Returns 0, or -1 with a reason in err.
 */
int audit_subject_key_load(struct audit_subject_key *k, const char *path,
    char *err, size_t errlen);
/*
 * Hex HMAC-SHA256(key, the n bytes at v) into out (65 bytes). md is a
 * scratch digest context of the calling thread. Returns 0 or -1.
 */
int audit_subject_ref(const struct audit_subject_key *k, EVP_MD_CTX *md,
    const char *v, size_t n, char *out);

/* Where the client came from, for a decision record. */
struct audit_client {
	const char *ip; /* textual address */
	uint16_t port;
	const char *country; /* NULL: not known */
	const char *zone;    /* NULL: in no zone */
};

/* The request as seen by the decision; any pointer may be NULL (null). */
struct audit_request {
	const char *method;
	size_t method_len;
	const char *host;
	size_t host_len;
	const char *path; /* the normalised path (raw for bad_request) */
	size_t path_len;
	const char *query; /* after '?', without it; NULL: no '?' */
	size_t query_len;
	const char *purpose;
	size_t purpose_len;
	const char *case_id;
	size_t case_len;
	const char *operator_id;
	size_t operator_len;
};

struct audit_decision {
	const char *request_id;
	const char *policy_revision;
	const char *policy_sha256;
	const char *classification; /* name of d->resource's level */
	const struct audit_client *client;
	const struct peer *peer; /* NULL or not present: "subject": null */
	const struct audit_request *req;
	const struct policy_decision *d;
	const struct audit_subject_key *subject_key; /* NULL: not used */
	EVP_MD_CTX *md; /* scratch of this thread; NULL: made per call */
};

/*
 * Record bodies: each appends the fields that follow "event" (in contract
 * section 6 order, each with its leading comma) to b, ready for
 * audit_record with the event named in the comment. They return 0, or -1
 * when b overflowed (never for b of AUDIT_BODY_MAX bytes).
 */
/* "decision" */
int audit_fmt_decision(struct audit_buf *b, const struct audit_decision *in);

struct audit_complete {
	const char *request_id;
	int status;
	const char *upstream; /* NULL: none was reached */
	int64_t upstream_us;  /* negative: null */
	uint64_t bytes_in, bytes_out;
	int64_t duration_us;
	uint64_t masked; /* fields masked in the response */
	int upstream_incomplete;
};

/* "complete", "start", "stop", "policy_loaded", "reopen", "audit_degraded",
 * "audit_recovered" */
int audit_fmt_complete(struct audit_buf *b, const struct audit_complete *c);
int audit_fmt_start(struct audit_buf *b, const char *version, long pid,
    uint64_t torn_bytes);
int audit_fmt_stop(struct audit_buf *b, const char *reason);
int audit_fmt_policy_loaded(struct audit_buf *b, const char *revision,
    const char *sha256, int ok, const char *const *errors, size_t nerrors);
int audit_fmt_reopen(struct audit_buf *b, const char *reason);
int audit_fmt_degraded(struct audit_buf *b, const char *reason);
int audit_fmt_recovered(struct audit_buf *b, uint64_t refused,
    int64_t degraded_us);

const char *audit_event_str(enum audit_event e);

/* The last record of an audit file, for a writer that continues it. */
struct audit_tail {
	uint64_t seq; /* 0: the file holds no complete record */
	unsigned char hash[AUDIT_HASH_LEN];
	enum audit_event event;
	off_t end;  /* bytes through the last complete record's newline */
	off_t torn; /* bytes after end without a newline: a torn line */
};

/*
 * Read the last complete line of path and check it is a well-formed
 * record whose hash verifies. A torn final line (bytes after the last
 * newline) is reported in t->torn, not an error: the writer truncates the
 * file to t->end and notes it (start record's torn_bytes). Returns 0, or
 * -1 with a reason in err (errno ENOENT when the file does not exist).
 */
int audit_tail_read(const char *path, struct audit_tail *t, char *err,
    size_t errlen);

struct audit_known {
	uint64_t seq;
	unsigned char hash[AUDIT_HASH_LEN];
	int seen;
	char where[AUDIT_WHERE_MAX];
};

/*
 * A verification over files in order (see audit.c for every rule). Set
 * the options, audit_verify_init, optionally audit_verify_known, then
 * audit_verify_file or _buf per file, then audit_verify_finish. Each
 * returns 0, or -1 after the first problem, with "file:line: why" in
 * error (later calls return -1 at once).
 */
struct audit_verify {
	/* Options. */
	EVP_PKEY *pubkey; /* NULL: checkpoint signatures not checked */
	int partial;      /* the first record may continue an earlier chain */

	/* Results. */
	uint64_t nrecords, ncheckpoints, nfiles;
	uint64_t first_seq, last_seq;
	uint64_t sealed_seq; /* seq of the last checkpoint; 0: none */
	char sealed_at[AUDIT_WHERE_MAX];
	uint64_t unsealed; /* records after it (all when none) */
	uint64_t ts_backwards;
	char ts_backwards_at[AUDIT_WHERE_MAX];
	size_t torn_bytes; /* torn tail of the last file */
	char torn_at[AUDIT_WHERE_MAX];
	uint64_t nknown_before; /* known checkpoints before a partial start */
	int failed;
	char error[2 * AUDIT_WHERE_MAX];

	/* Working state. */
	unsigned char prev[AUDIT_HASH_LEN];
	char prev_ts[AUDIT_TS_LEN + 1];
	char last_at[AUDIT_WHERE_MAX];
	char pub_key_id[AUDIT_KEY_ID_LEN + 1];
	struct audit_known *known;
	size_t nknown, knext;
	struct json_tok *toks;
	EVP_MD_CTX *md;
	EVP_MD *sha256;
	char *rbuf;
};

int audit_verify_init(struct audit_verify *v, char *err, size_t errlen);
/* Load trusted checkpoint lines copied elsewhere (blank lines ignored). */
int audit_verify_known(struct audit_verify *v, const char *path);
int audit_verify_known_buf(struct audit_verify *v, const char *name,
    const char *buf, size_t len);
/* last: this is the last file (only it may end in a torn line). */
int audit_verify_file(struct audit_verify *v, const char *path, int last);
int audit_verify_buf(struct audit_verify *v, const char *name, const char *buf,
    size_t len, int last);
int audit_verify_finish(struct audit_verify *v);
void audit_verify_clear(struct audit_verify *v);

#endif /* AUDIT_H */
