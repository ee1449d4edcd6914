#!/usr/bin/python3
"""verify-audit.py - an independent verifier for govgate audit trails.

Written from the byte-level format (contract section 6), not from the C
code, so that the two can check each other. Needs only Debian's python3
and python3-cryptography. Same options, messages and exit codes as
`govgate audit verify`:

  verify-audit.py [--pubkey PEM] [--known-checkpoint FILE]...
                  [--require-sealed] [--allow-torn-tail] [--partial] FILE...

The format, in short. Each line of each file (oldest file first) is one
JSON object, UTF-8, ending in a newline:

  {"seq":N,"ts":"YYYY-MM-DDTHH:MM:SS.uuuuuuZ","gateway":G,"event":E,
   ...fields of E in a fixed order...,"prev":"<64 hex>","hash":"<64 hex>"}

The line is P + ',"hash":"<H>"}' + '\\n', and H is the lower-case hex of
SHA-256(b"govgate-audit-v1\\n" + P). seq starts at 1 and grows by one
across files; prev is the previous record's hash (64 zeros first).
A checkpoint (E = "checkpoint") has count (= seq), key_id (the first 16
hex digits of SHA-256 of the signing key's DER SubjectPublicKeyInfo) and
sig, base64 of an Ed25519 signature over
b"govgate-checkpoint-v1\\n" G "\\n" seq "\\n" ts "\\n" prev "\\n".

What is caught, and what needs what: any changed, deleted, inserted or
reordered line breaks the chain or its hash; a chain recomputed without
the signing key fails at the next checkpoint's signature (--pubkey); a
rollback or a cut tail is caught only against a newer checkpoint kept
elsewhere (--known-checkpoint). Records after the newest such checkpoint
can be cut without trace: the gateway writes a checkpoint within
audit.checkpoint_interval of any record, so that window is the interval
plus the monitor's copying delay.

Exit status: 0 intact, 1 a bad record, torn tail or unreadable file,
2 usage.
"""

import argparse
import base64
import hashlib
import json
import re
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HASH_DOMAIN = b"govgate-audit-v1\n"
SIG_DOMAIN = b"govgate-checkpoint-v1\n"
RECORD_MAX = 65536  # bytes of a line, newline included
NUMBER_MAX = 64  # characters of one JSON number
GATEWAY_MAX = 255
KNOWN_MAX = 4096
SUFFIX = re.compile(rb',"hash":"[0-9a-f]{64}"\}\Z')
HEX64 = re.compile(r"[0-9a-f]{64}\Z", re.ASCII)
HEX16 = re.compile(r"[0-9a-f]{16}\Z", re.ASCII)
B64SIG = re.compile(r"[A-Za-z0-9+/]{86}==\Z", re.ASCII)
TS = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):"
                r"([0-9]{2})\.[0-9]{6}Z\Z", re.ASCII)

# Value kinds a field may take.
STR, NULL, INT, NUM, BOOL, OBJ, STRS = "str", "null", "int", "num", \
    "bool", "obj", "strs"


def field(key, kinds, sub=None, optional=False, values=None):
    return {"key": key, "kinds": kinds, "sub": sub, "optional": optional,
            "values": values}


VERDICT = ("allow", "deny")
HEAD = [field("seq", [INT]), field("ts", [STR]), field("gateway", [STR]),
        field("event", [STR])]
TAIL = [field("prev", [STR]), field("hash", [STR])]
EVENTS = {
    "decision": [
        field("request_id", [STR]),
        field("policy", [OBJ], [field("revision", [STR, NULL]),
                                field("sha256", [STR, NULL])]),
        field("client", [OBJ], [field("ip", [STR, NULL]),
                                field("port", [INT]),
                                field("country", [STR, NULL]),
                                field("zone", [STR, NULL])]),
        field("subject", [OBJ, NULL], [field("department", [STR, NULL]),
                                       field("dn", [STR]),
                                       field("serial", [STR]),
                                       field("issuer", [STR]),
                                       field("sha256", [STR])]),
        field("request", [OBJ], [field("method", [STR, NULL]),
                                 field("host", [STR, NULL]),
                                 field("path", [STR, NULL]),
                                 field("query_sha256", [STR, NULL]),
                                 field("purpose", [STR, NULL]),
                                 field("case", [STR, NULL]),
                                 field("operator", [STR, NULL])]),
        field("subject_ref", [STR], optional=True),
        field("resource", [OBJ, NULL], [field("id", [STR]),
                                        field("owner", [STR, NULL]),
                                        field("classification", [STR, NULL]),
                                        field("sharing", [STR])]),
        field("decision", [STR], values=VERDICT),
        field("reason", [STR]),
        field("grant", [STR, NULL]),
        field("shadow", [OBJ, NULL], [field("grant", [STR]),
                                      field("decision", [STR],
                                            values=VERDICT),
                                      field("reason", [STR])]),
    ],
    "complete": [
        field("request_id", [STR]), field("status", [INT]),
        field("upstream", [STR, NULL]), field("upstream_ms", [NUM, NULL]),
        field("bytes_in", [INT]), field("bytes_out", [INT]),
        field("duration_ms", [NUM]), field("masked", [INT]),
        field("upstream_incomplete", [BOOL]),
    ],
    "checkpoint": [field("count", [INT]), field("key_id", [STR]),
                   field("sig", [STR])],
    "start": [field("version", [STR]), field("pid", [INT]),
              field("torn_bytes", [INT])],
    "stop": [field("reason", [STR])],
    "policy_loaded": [field("revision", [STR, NULL]),
                      field("sha256", [STR, NULL]),
                      field("result", [STR], values=("ok", "error")),
                      field("errors", [STRS])],
    "reopen": [field("reason", [STR])],
    "audit_degraded": [field("reason", [STR])],
    "audit_recovered": [field("refused", [INT]),
                        field("degraded_ms", [NUM])],
}


class Bad(Exception):
    """One line is not a good record; the text says why."""


class NegInt(int):
    """A JSON integer written with a minus sign (never a count)."""


def parse_int(text):
    if len(text) > NUMBER_MAX:
        raise ValueError("number too long")
    return NegInt(int(text)) if text.startswith("-") else int(text)


def parse_float(text):
    if len(text) > NUMBER_MAX:
        raise ValueError("number too long")
    return float(text)


def parse_constant(text):
    raise ValueError("%s is not JSON" % text)


def pairs(items):
    obj = {}
    for key, value in items:
        if key in obj:
            raise ValueError("duplicate key")
        obj[key] = value
    return obj


def check_text(value):
    """Strings must be real Unicode: no lone surrogates from \\u escapes."""
    if isinstance(value, str):
        value.encode("utf-8")
    elif isinstance(value, dict):
        for key, item in value.items():
            key.encode("utf-8")
            check_text(item)
    elif isinstance(value, list):
        for item in value:
            check_text(item)


def kind_of(value):
    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, str):
        return STR
    if isinstance(value, dict):
        return OBJ
    if isinstance(value, list):
        return STRS
    if type(value) is int and 0 <= value < 2 ** 64:
        return INT
    return NUM


def kind_ok(value, kinds):
    kind = kind_of(value)
    if kind == INT:
        return INT in kinds or NUM in kinds
    if kind == STRS:
        return STRS in kinds and all(isinstance(v, str) for v in value)
    return kind in kinds


def walk(items, pos, fields, where, end):
    """Match items[pos:] against fields in order; return the new pos."""
    ctx = ' in "%s"' % where if where else ""
    for f in fields:
        if pos == len(items):
            if f["optional"]:
                continue
            raise Bad('bad record: missing key "%s"%s' % (f["key"], ctx))
        key, value = items[pos]
        if key != f["key"]:
            if f["optional"]:
                continue
            raise Bad('bad record: expected key "%s"%s, found "%s"'
                      % (f["key"], ctx, printable(key)))
        if not kind_ok(value, f["kinds"]):
            raise Bad('bad record: "%s" has the wrong type' % f["key"])
        if isinstance(value, dict) and f["sub"] is not None:
            walk(list(value.items()), 0, f["sub"], f["key"], True)
        if f["values"] is not None and value not in f["values"]:
            raise Bad('bad record: "%s" is not valid' % f["key"])
        pos += 1
    if end and pos != len(items):
        raise Bad('bad record: unexpected key "%s"%s'
                  % (printable(items[pos][0]), ctx))
    return pos


def printable(text):
    text = text[:47]
    return "".join(c if " " <= c < "\x7f" and c != '"' else "?"
                   for c in text)


def ts_ok(ts):
    m = TS.match(ts)
    if not m:
        return False
    mo, d, h, mi, s = (int(x) for x in m.groups()[1:])
    return 1 <= mo <= 12 and 1 <= d <= 31 and h <= 23 and mi <= 59 \
        and s <= 60


def check_line(raw):
    """Check one line (bytes, no newline) as a record; return a dict."""
    if not raw:
        raise Bad("empty line")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Bad("not valid JSON: invalid UTF-8 at column %d"
                  % (e.start + 1))
    try:
        rec = json.loads(text, object_pairs_hook=pairs, parse_int=parse_int,
                         parse_float=parse_float,
                         parse_constant=parse_constant)
        check_text(rec)
    except (ValueError, RecursionError, UnicodeEncodeError) as e:
        raise Bad("not valid JSON: %s" % str(e).split(":")[0])
    if not isinstance(rec, dict):
        raise Bad("bad record: not a JSON object")
    items = list(rec.items())
    pos = walk(items, 0, HEAD, None, False)
    event = rec["event"]
    if event not in EVENTS:
        raise Bad('bad record: unknown event "%s"' % printable(event))
    pos = walk(items, pos, EVENTS[event], None, False)
    walk(items, pos, TAIL, None, True)
    seq = rec["seq"]
    if type(seq) is not int or not 1 <= seq < 2 ** 63:
        raise Bad('bad record: "seq" is not valid')
    if not ts_ok(rec["ts"]):
        raise Bad('bad record: "ts" is not valid')
    if len(rec["gateway"].encode("utf-8")) > GATEWAY_MAX:
        raise Bad('bad record: "gateway" is not valid')
    if not HEX64.match(rec["prev"]):
        raise Bad('bad record: "prev" is not valid')
    if not HEX64.match(rec["hash"]):
        raise Bad('bad record: "hash" is not valid')
    if event == "checkpoint":
        if not HEX16.match(rec["key_id"]):
            raise Bad('bad record: "key_id" is not valid')
        sig = rec["sig"]
        if not B64SIG.match(sig) or \
                base64.b64encode(base64.b64decode(sig)).decode() != sig:
            raise Bad('bad record: "sig" is not base64 of 64 bytes')
        rec["_sig"] = base64.b64decode(sig)
    if not SUFFIX.search(raw):
        raise Bad('bad record: the line must end with ,"hash":"<64 hex>"}')
    computed = hashlib.sha256(HASH_DOMAIN + raw[:-75]).hexdigest()
    if computed != rec["hash"]:
        raise Bad("hash mismatch: the record was changed (computed %s)"
                  % computed)
    return rec


def sig_ok(pub, rec):
    msg = SIG_DOMAIN + rec["gateway"].encode("utf-8") + b"\n" + \
        str(rec["seq"]).encode() + b"\n" + rec["ts"].encode() + b"\n" + \
        rec["prev"].encode() + b"\n"
    try:
        pub.verify(rec["_sig"], msg)
        return True
    except InvalidSignature:
        return False


class Failure(Exception):
    """Verification stops: the text is the report line."""


class Verifier:
    def __init__(self, pub, partial):
        self.pub = pub
        self.key_id = None
        if pub is not None:
            der = pub.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat
                                   .SubjectPublicKeyInfo)
            self.key_id = hashlib.sha256(der).hexdigest()[:16]
        self.partial = partial
        self.known = []  # [seq, hash, where], sorted by seq
        self.knext = 0
        self.known_before = 0
        self.nrecords = self.ncheckpoints = self.nfiles = 0
        self.first_seq = self.last_seq = self.sealed_seq = 0
        self.sealed_at = self.last_at = ""
        self.prev = "0" * 64
        self.prev_ts = ""
        self.ts_back = 0
        self.ts_back_at = ""
        self.torn_bytes = 0
        self.torn_at = ""

    def load_known(self, path):
        try:
            with open(path, "rb") as f:
                data = f.read(16 * 1024 * 1024 + 1)
        except OSError as e:
            raise Failure("%s: %s" % (path, e.strerror))
        for n, raw in enumerate(data.split(b"\n"), 1):
            if raw in (b"", b"\r"):
                continue
            where = "%s:%d" % (path, n)
            if len(raw) >= RECORD_MAX:
                raise Failure("%s: line longer than %d bytes"
                              % (where, RECORD_MAX))
            try:
                rec = check_line(raw)
            except Bad as e:
                raise Failure("%s: known checkpoint: %s" % (where, e))
            if rec["event"] != "checkpoint":
                raise Failure("%s: known checkpoint: not a checkpoint "
                              "record" % where)
            if self.pub is not None and (rec["key_id"] != self.key_id or
                                         not sig_ok(self.pub, rec)):
                raise Failure("%s: known checkpoint: signature does not "
                              "verify under the public key" % where)
            if len(self.known) >= KNOWN_MAX:
                raise Failure("%s: more than %d known checkpoints"
                              % (where, KNOWN_MAX))
            self.known.append((rec["seq"], rec["hash"], where))
        self.known.sort(key=lambda k: k[0])
        for a, b in zip(self.known, self.known[1:]):
            if a[0] == b[0] and a[1] != b[1]:
                raise Failure("%s: two known checkpoints for seq %d differ"
                              % (b[2], b[0]))

    def record(self, path, n, raw):
        where = "%s:%d" % (path, n)
        try:
            rec = check_line(raw)
        except Bad as e:
            raise Failure("%s: %s" % (where, e))
        seq = rec["seq"]
        if self.nrecords == 0:
            if not self.partial and seq != 1:
                raise Failure("%s: first record has seq %d: a chain starts "
                              "at 1 (--partial verifies a later part)"
                              % (where, seq))
            if not self.partial and rec["prev"] != "0" * 64:
                raise Failure("%s: the first record's prev is not 64 zeros"
                              % where)
            self.first_seq = seq
            while self.knext < len(self.known) and \
                    self.known[self.knext][0] < seq:
                self.knext += 1
                self.known_before += 1
        else:
            if seq != self.last_seq + 1:
                if n == 1:
                    raise Failure("%s: seq %d where %d expected: gap after "
                                  "%s (missing file or deleted records)"
                                  % (where, seq, self.last_seq + 1,
                                     self.last_at))
                raise Failure("%s: seq %d where %d expected (records "
                              "deleted, inserted or reordered)"
                              % (where, seq, self.last_seq + 1))
            if rec["prev"] != self.prev:
                raise Failure("%s: prev does not match the hash of the "
                              "previous record (%s)" % (where, self.last_at))
        if rec["event"] == "checkpoint":
            if rec["count"] != seq:
                raise Failure("%s: checkpoint count %d is not its seq"
                              % (where, rec["count"]))
            if self.pub is not None:
                if rec["key_id"] != self.key_id:
                    raise Failure("%s: checkpoint made with another key "
                                  "(key_id %s, expected %s)"
                                  % (where, rec["key_id"], self.key_id))
                if not sig_ok(self.pub, rec):
                    raise Failure("%s: checkpoint signature does not verify "
                                  "(records before it were changed, or it "
                                  "was forged)" % where)
            self.ncheckpoints += 1
            self.sealed_seq = seq
            self.sealed_at = where
        while self.knext < len(self.known) and \
                self.known[self.knext][0] == seq:
            kseq, khash, kwhere = self.known[self.knext]
            self.knext += 1
            if khash != rec["hash"]:
                raise Failure("%s: differs from the known checkpoint for seq "
                              "%d (%s, hash %s): rollback or rewrite"
                              % (where, seq, kwhere, khash))
        if self.nrecords > 0 and rec["ts"] < self.prev_ts:
            if self.ts_back == 0:
                self.ts_back_at = where
            self.ts_back += 1
        self.prev_ts = rec["ts"]
        self.prev = rec["hash"]
        self.last_seq = seq
        self.nrecords += 1
        self.last_at = where

    def file(self, path, last):
        self.nfiles += 1
        n = 0
        try:
            with open(path, "rb") as f:
                for raw in f:
                    n += 1
                    if not raw.endswith(b"\n"):
                        self.rest(path, n, len(raw), last)
                        break
                    if len(raw) - 1 >= RECORD_MAX:
                        raise Failure("%s:%d: line longer than %d bytes"
                                      % (path, n, RECORD_MAX))
                    self.record(path, n, raw[:-1])
        except OSError as e:
            raise Failure("%s: %s" % (path, e.strerror))

    def rest(self, path, n, size, last):
        if size >= RECORD_MAX:
            raise Failure("%s:%d: line longer than %d bytes"
                          % (path, n, RECORD_MAX))
        if not last:
            raise Failure("%s:%d: the file does not end with a newline, and "
                          "it is not the last file" % (path, n))
        self.torn_bytes = size
        self.torn_at = "%s:%d" % (path, n)

    def finish(self):
        if self.knext < len(self.known):
            kseq, khash, kwhere = self.known[self.knext]
            if self.nrecords == 0:
                raise Failure("the log is empty, but there is a known "
                              "checkpoint at seq %d (%s): rollback or "
                              "truncation" % (kseq, kwhere))
            raise Failure("%s: the log ends at seq %d, before the known "
                          "checkpoint at seq %d (%s): rollback or truncation"
                          % (self.last_at, self.last_seq, kseq, kwhere))
        if self.sealed_seq:
            return self.last_seq - self.sealed_seq
        return self.nrecords


def main():
    ap = argparse.ArgumentParser(
        prog="verify-audit.py",
        description="Verify govgate audit files (oldest first) as one "
        "hash chain with signed checkpoints.")
    ap.add_argument("--pubkey", metavar="PEM",
                    help="check checkpoint key_id and Ed25519 signatures")
    ap.add_argument("--known-checkpoint", metavar="FILE", action="append",
                    default=[], help="checkpoint lines kept elsewhere; each "
                    "must be in the log with the same hash")
    ap.add_argument("--require-sealed", action="store_true",
                    help="fail when records follow the last checkpoint")
    ap.add_argument("--allow-torn-tail", action="store_true",
                    help="accept (and report) a torn final line")
    ap.add_argument("--partial", action="store_true",
                    help="the first file may start later in the chain")
    ap.add_argument("files", metavar="FILE", nargs="+")
    args = ap.parse_args()

    pub = None
    if args.pubkey:
        try:
            with open(args.pubkey, "rb") as f:
                pub = serialization.load_pem_public_key(f.read())
        except (OSError, ValueError) as e:
            print("verify-audit.py: %s: %s" % (args.pubkey, e),
                  file=sys.stderr)
            return 1
        if not isinstance(pub, Ed25519PublicKey):
            print("verify-audit.py: %s: not an Ed25519 key" % args.pubkey,
                  file=sys.stderr)
            return 1
    v = Verifier(pub, args.partial)
    try:
        for path in args.known_checkpoint:
            v.load_known(path)
        for i, path in enumerate(args.files):
            v.file(path, i == len(args.files) - 1)
        unsealed = v.finish()
        if v.torn_bytes and not args.allow_torn_tail:
            raise Failure("%s: torn tail (crash?): %d bytes without a final "
                          "newline" % (v.torn_at, v.torn_bytes))
        if unsealed and args.require_sealed:
            if v.sealed_seq:
                raise Failure("%s: %d records after the last checkpoint at "
                              "%s are unsealed"
                              % (v.last_at, unsealed, v.sealed_at))
            raise Failure("%s: no checkpoint: all %d records are unsealed"
                          % (v.last_at, unsealed))
    except Failure as e:
        print(e, file=sys.stderr)
        return 1
    if v.torn_bytes:
        print("note: torn tail (crash?) at %s: %d bytes without a final "
              "newline" % (v.torn_at, v.torn_bytes))
    if args.partial and v.nrecords:
        print("note: the chain starts at seq %d (earlier records not given)"
              % v.first_seq)
    if v.known_before:
        print("note: %d known checkpoints precede the first record and "
              "were not compared" % v.known_before)
    if pub is None and v.ncheckpoints:
        print("note: checkpoint signatures not checked (no --pubkey)")
    if v.ts_back:
        print("note: ts goes backwards at %d records, first at %s (clock "
              "change?)" % (v.ts_back, v.ts_back_at))
    if unsealed:
        if v.sealed_seq:
            print("note: %d records after the last checkpoint at %s are "
                  "unsealed" % (unsealed, v.sealed_at))
        else:
            print("note: no checkpoint: all %d records are unsealed"
                  % unsealed)
    if v.sealed_seq:
        print("ok: %d records in %d files, %d checkpoints, last sealed at "
              "seq %d" % (v.nrecords, v.nfiles, v.ncheckpoints,
                          v.sealed_seq))
    else:
        print("ok: %d records in %d files, 0 checkpoints, none sealed"
              % (v.nrecords, v.nfiles))
    return 0


if __name__ == "__main__":
    sys.exit(main())
