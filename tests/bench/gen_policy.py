#!/usr/bin/env python3
"""gen_policy.py - generate a large synthetic policy and a request list for
tests/bench/policy_bench.

The policy has N resources owned by D departments, and G grants; paths have
the shapes a real catalogue has (ids, sub-resources, searches, `*` and `**`
tails), grouped in families that share a prefix, so the most-specific rule
and wildcard backtracking are exercised. Families never collide: no two
resources can be equally specific for the same method and path, so
`govgate check` accepts the result.

The request list is one request per line, tab-separated:

    DEPT  METHOD  PATH  PURPOSE  CASE

with "-" for "none" (DEPT "-" is a certificate no department matches). The
mix is roughly: allowed by a grant, grant denials (purpose, case, hours,
validity, method), no grant, owner, open and unconditional, insufficient
clearance, not shared, no resource, unknown department.

Usage: gen_policy.py [--resources N] [--departments D] [--grants G]
                     [--requests R] [--seed S] --policy OUT.yaml
                     --requests-out OUT.txt
Deterministic for a given seed. Standard library only.
"""

import argparse
import random
import sys

LEVELS = ["public", "internal", "restricted", "confidential"]
NOUNS = [
    "persons", "households", "records", "certificates", "licences",
    "enterprises", "permits", "payments", "cases", "vehicles", "parcels",
    "contracts", "inspections", "claims", "benefits", "accounts",
]
# Bench clock: 2026-11-25T10:00:00+08:00 (policy_bench uses the same).
EXPIRES = "2027-12-31"


def die(msg):
    sys.stderr.write("gen_policy.py: %s\n" % msg)
    sys.exit(2)


def ycode(s):
    """A YAML double-quoted scalar."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Resource:
    __slots__ = ("id", "owner", "methods", "paths", "level", "sharing",
                 "subject")

    def __init__(self, rid, owner):
        self.id = rid
        self.owner = owner
        self.methods = ["GET"]
        self.paths = []
        self.level = 1
        self.sharing = "conditional"
        self.subject = None


class Grant:
    __slots__ = ("id", "consumer", "resource", "purposes", "valid_from",
                 "expires", "hours", "methods", "case", "rate", "shadow")

    def __init__(self, gid, consumer, res):
        self.id = gid
        self.consumer = consumer
        self.resource = res
        self.purposes = []
        self.valid_from = "2026-01-01"
        self.expires = EXPIRES
        self.hours = None
        self.methods = None
        self.case = False
        self.rate = None
        self.shadow = False


def make_catalogue(rng, nres, ndept):
    """Resources in prefix families. Each family is a base path
    /dNNN/vK/noun-F and up to five members with distinct specificity:
      base/{id}            3 literals, 1 wildcard
      base/{id}/history    4 literals, 1 wildcard
      base/{id}/docs/**    4 literals, 2 wildcards (rest)
      base/{id}/*          3 literals, 2 wildcards
      base/search          4 literals (POST)
    """
    shapes = [
        ("{id}", ["GET", "HEAD"], "id"),
        ("{id}/history", ["GET"], "id"),
        ("{id}/docs/**", ["GET"], "id"),
        ("{id}/*", ["GET"], "id"),
        ("search", ["POST"], None),
    ]
    res = []
    fam = 0
    while len(res) < nres:
        owner = fam % ndept
        base = "/d%03d/v%d/%s-%d" % (owner, 1 + fam % 3,
                                      NOUNS[fam % len(NOUNS)], fam)
        members = rng.sample(range(len(shapes)), rng.randint(1, len(shapes)))
        for m in sorted(members):
            if len(res) == nres:
                break
            tail, methods, subject = shapes[m]
            r = Resource("r%05d" % len(res), owner)
            r.methods = list(methods)
            r.paths = [base + "/" + tail]
            r.subject = subject
            x = rng.random()
            if x < 0.05:
                r.sharing, r.level = "open", 0
            elif x < 0.25:
                r.sharing, r.level = "unconditional", rng.choice([0, 1, 1, 2])
            elif x < 0.30:
                r.sharing, r.level = "none", 3
            else:
                r.sharing, r.level = "conditional", rng.choice([1, 2, 2, 3])
            res.append(r)
        fam += 1
    return res


def make_grants(rng, res, clear, ngrants, npurposes):
    """Grants go to departments cleared for the resource, as real approvals
    do; the owner never needs one."""
    ndept = len(clear)
    cond = [r for r in res if r.sharing == "conditional"]
    if not cond and ngrants:
        die("no conditional resource to grant")
    cleared = [[d for d in range(ndept) if clear[d] >= lv]
               for lv in range(len(LEVELS))]
    grants = []
    for i in range(ngrants):
        r = rng.choice(cond)
        c = rng.choice([d for d in cleared[r.level] if d != r.owner] or
                       [d for d in range(ndept) if d != r.owner])
        g = Grant("BG-%06d" % i, c, r)
        g.purposes = ["p%03d" % k for k in
                      rng.sample(range(npurposes), rng.randint(1, 3))]
        x = rng.random()
        if x < 0.03:
            g.valid_from, g.expires = "2025-01-01", "2026-06-30"
        elif x < 0.06:
            g.valid_from = "2027-03-01"
        if rng.random() < 0.10:
            g.hours = rng.choice(["08:00-20:00", "09:00-17:30",
                                  "20:00-06:00"])
        if len(r.methods) > 1 and rng.random() < 0.3:
            g.methods = [r.methods[0]]
        g.case = rng.random() < 0.05
        if rng.random() < 0.10:
            g.rate = rng.choice(["100/s", "600/min", "20000/h"])
        g.shadow = rng.random() < 0.05
        grants.append(g)
    return grants


def clearances(rng, ndept):
    return [rng.choice([1, 2, 2, 3]) for _ in range(ndept)]


def write_policy(fp, res, grants, clear, ndept, npurposes):
    w = fp.write
    w("# Generated by tests/bench/gen_policy.py: %d departments, "
      "%d resources, %d grants.\n" % (ndept, len(res), len(grants)))
    w("version: 1\nrevision: \"bench\"\n")
    w("levels: [%s]\n" % ", ".join(LEVELS))
    w("defaults:\n  countries: [CN, unknown]\n")
    w("purposes:\n")
    for k in range(npurposes):
        w("  p%03d: { name: \"bench purpose %d\", basis: \"Bench Act art. "
          "%d\" }\n" % (k, k, k + 1))
    w("departments:\n")
    for d in range(ndept):
        w("  d%03d:\n    name: \"Bench department %03d\"\n" % (d, d))
        w("    match:\n      subject: { O: \"Bench Department %03d\" }\n"
          % d)
        w("      issuer: { CN: \"Bench CA\" }\n")
        w("    clearance: %s\n" % LEVELS[clear[d]])
    w("resources:\n")
    for r in res:
        w("  %s:\n    name: \"bench resource %s\"\n" % (r.id, r.id))
        w("    owner: d%03d\n    upstream: up%03d\n" % (r.owner, r.owner))
        w("    methods: [%s]\n" % ", ".join(r.methods))
        w("    paths: [%s]\n" % ", ".join(ycode(p) for p in r.paths))
        if r.subject:
            w("    subject_id: %s\n" % r.subject)
        w("    classification: %s\n    sharing: %s\n"
          % (LEVELS[r.level], r.sharing))
        if r.sharing == "none":
            w("    legal_basis: \"Bench Act art. 99\"\n")
    w("grants:%s\n" % ("" if grants else " []"))
    for g in grants:
        w("  - id: %s\n    consumer: d%03d\n    resource: %s\n"
          % (g.id, g.consumer, g.resource.id))
        w("    purposes: [%s]\n" % ", ".join(g.purposes))
        w("    approved_by: d%03d\n    legal_basis: \"Bench Act art. 7\"\n"
          % g.resource.owner)
        w("    valid_from: %s\n    expires: %s\n" % (g.valid_from, g.expires))
        if g.hours:
            w("    hours: \"%s\"\n" % g.hours)
        if g.methods:
            w("    methods: [%s]\n" % ", ".join(g.methods))
        if g.case:
            w("    require_case: true\n")
        if g.rate:
            w("    rate: %s\n" % g.rate)
        if g.shadow:
            w("    mode: shadow\n")


def instantiate(rng, pattern):
    """A concrete path matching pattern."""
    out = []
    for seg in pattern.split("/")[1:]:
        if seg == "**":
            for _ in range(rng.randint(0, 2)):
                out.append("f%d" % rng.randrange(1000))
        elif seg == "*" or (seg.startswith("{") and seg.endswith("}")):
            out.append("45010%013d" % rng.randrange(10 ** 13))
        else:
            out.append(seg)
    return "/" + "/".join(out)


def make_requests(rng, nreq, res, grants, ndept, npurposes):
    lines = []
    by_kind = {}
    for r in res:
        by_kind.setdefault(r.sharing, []).append(r)
    enforcing = [g for g in grants if not g.shadow]
    for _ in range(nreq):
        x = rng.random()
        purpose, case = "-", "-"
        if x < 0.40 and enforcing:
            # Meant to be allowed by a grant (some will not be: hours,
            # validity, rate).
            g = rng.choice(enforcing)
            r = g.resource
            dept = "d%03d" % g.consumer
            method = (g.methods or r.methods)[0]
            purpose = rng.choice(g.purposes)
            if g.case:
                case = "BENCH-%d" % rng.randrange(100000)
        elif x < 0.55 and enforcing:
            # A grant's consumer with a wrong or missing purpose, a missing
            # case number or a method the grant leaves out.
            g = rng.choice(enforcing)
            r = g.resource
            dept = "d%03d" % g.consumer
            method = (g.methods or r.methods)[0]
            y = rng.random()
            if y < 0.4:
                purpose = "p%03d" % rng.randrange(npurposes)
            elif y < 0.7 or not (g.case or g.methods):
                purpose = "-"
            else:
                purpose = rng.choice(g.purposes)
                if g.methods:
                    method = r.methods[-1]
        elif x < 0.70:
            r = rng.choice(by_kind.get("conditional", res))
            dept = "d%03d" % rng.randrange(ndept)
            method = r.methods[0]
            purpose = "p%03d" % rng.randrange(npurposes)
        elif x < 0.80:
            r = rng.choice(res)
            dept = "d%03d" % r.owner
            method = r.methods[0]
        elif x < 0.88:
            r = rng.choice(by_kind.get("open", res) +
                           by_kind.get("unconditional", res) +
                           by_kind.get("none", res))
            dept = "d%03d" % rng.randrange(ndept)
            method = r.methods[0]
        elif x < 0.96:
            # No resource: an unknown leaf, or a method nobody serves.
            r = rng.choice(res)
            dept = "d%03d" % rng.randrange(ndept)
            if rng.random() < 0.5:
                lines.append("%s\tGET\t%s/no-such-leaf/x\t-\t-" %
                             (dept, instantiate(rng, r.paths[0])))
            else:
                lines.append("%s\tDELETE\t%s\t-\t-" %
                             (dept, instantiate(rng, r.paths[0])))
            continue
        else:
            r = rng.choice(res)
            dept = "-"
            method = r.methods[0]
        lines.append("%s\t%s\t%s\t%s\t%s" % (
            dept, method, instantiate(rng, rng.choice(r.paths)), purpose,
            case))
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--resources", type=int, default=10000)
    ap.add_argument("--departments", type=int, default=50)
    ap.add_argument("--grants", type=int, default=50000)
    ap.add_argument("--purposes", type=int, default=200)
    ap.add_argument("--requests", type=int, default=20000,
                    help="distinct requests (the bench cycles through them)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--policy", required=True, help="policy file to write")
    ap.add_argument("--requests-out", required=True,
                    help="request list to write")
    a = ap.parse_args()
    if a.departments < 2 or a.departments > 1000:
        die("--departments must be 2..1000")
    if a.resources < 1 or a.grants < 0 or a.requests < 1 or a.purposes < 3:
        die("sizes must be positive (at least 3 purposes)")

    rng = random.Random(a.seed)
    res = make_catalogue(rng, a.resources, a.departments)
    clear = clearances(rng, a.departments)
    grants = make_grants(rng, res, clear, a.grants, a.purposes)
    reqs = make_requests(rng, a.requests, res, grants, a.departments,
                         a.purposes)
    with open(a.policy, "w", encoding="utf-8") as fp:
        write_policy(fp, res, grants, clear, a.departments, a.purposes)
    with open(a.requests_out, "w", encoding="utf-8") as fp:
        fp.write("\n".join(reqs) + "\n")
    sys.stderr.write("gen_policy.py: %d departments, %d resources, %d "
                     "grants, %d requests\n" % (a.departments, len(res),
                                                len(grants), len(reqs)))


if __name__ == "__main__":
    main()
