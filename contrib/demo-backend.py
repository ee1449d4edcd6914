#!/usr/bin/python3
"""demo-backend.py - stand-in department backends for the govgate demo.

One process serves the seven upstreams of the example policy
(policies/3N-catalogue-*.yaml) on consecutive loopback ports, in this
order starting at --port:

    psb-api      公安局 (gongan)             /psb/v1/...
    hrss-api     人社局 (renshe)             /hrss/v1/...
    civil-api    民政局 (minzheng)           /civil/v1/...
    health-api   衛(wèi)健委 (weijian)            /health/v1/...
    market-api   市場監(jiān)管局 (shichang)        /market/v1/...
    estate-api   不動產(chǎn)登記中心 (budongchan)  /estate/v1/...
    bigdata-api  大數(shù)據(jù)發(fā)展局 (dashuju)        /open/v1/..., /bigdata/v1/...

Each answers the catalogue's paths with canned, realistic JSON (people,
ids and companies are invented), unmasked, as a department's own system
would: the gateway applies the masks. Every answer also carries
"_received": the request line and the X-Govgate-* and Forwarded headers
this backend got, so an administrator sees what govgate passes on.
Anything else is 404.

Usage: demo-backend.py [--host 127.0.0.1] [--port 8444] [--ready FILE]

--ready FILE is written once every port is bound. SIGTERM (and SIGINT,
unless it was ignored at start, as for a background job of a script)
stops all seven servers and exits 0. Access lines go to stderr.

Python 3 standard library only: it runs wherever the demo does.
"""
import argparse
import datetime
import json
import os
import re
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1024 * 1024

# --------------------------------------------------------------------------
# Canned records. ID numbers follow the GB 11643 layout (region, birth date,
# sequence, check digit) but name nobody.


def birth_of(idn):
    """The birth date and sex an 18-character id number encodes."""
    if re.fullmatch(r"[0-9]{17}[0-9X]", idn):
        d = "%s-%s-%s" % (idn[6:10], idn[10:12], idn[12:14])
        sex = "男" if int(idn[16]) % 2 else "女"
        return d, sex
    return None, None


def person(idn):
    born, sex = birth_of(idn)
    return {
        "id_number": idn,
        "name": "黃建國",
        "sex": sex or "男",
        "ethnicity": "漢族",
        "birth_date": born or "1958-03-12",
        "phone": "13807718000",
        "address": "廣西壯族自治區(qū)南寧市青秀區(qū)民族大道88號3棟2單元501室",
        "household_no": "450103012345",
        "registration_status": "正常",
        "photo": "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgH",
        "family": [
            {"relation": "配偶", "name": "李秀蘭", "id_number": "450103196005230026",
             "phone": "13977112345"},
            {"relation": "子", "name": "黃志明", "id_number": "450103198509150013",
             "phone": "18677150021"},
        ],
    }


def psb(method, parts, query, body):
    # /psb/v1/persons/{id}, /psb/v1/persons/{id}/photo,
    # /psb/v1/households/{household_no}/members
    if method in ("GET", "HEAD") and parts[:3] == ["psb", "v1", "persons"]:
        if len(parts) == 4:
            return 200, person(parts[3])
        if len(parts) == 5 and parts[4] == "photo":
            return 200, {"id_number": parts[3], "format": "image/jpeg",
                         "taken": "2019-06-14",
                         "photo": person(parts[3])["photo"]}
    if (method in ("GET", "HEAD") and len(parts) == 5 and
            parts[:3] == ["psb", "v1", "households"] and parts[4] == "members"):
        head = person("450103195803120017")
        head["household_no"] = parts[3]
        head["relation"] = "戶主"
        return 200, head
    return None


def hrss(method, parts, query, body):
    # /hrss/v1/pension/{id}/records, /hrss/v1/insured/{id}/status
    if method in ("GET", "HEAD") and len(parts) == 5 and parts[:2] == ["hrss", "v1"]:
        idn = parts[3]
        if parts[2] == "pension" and parts[4] == "records":
            return 200, {
                "id_number": idn,
                "name": "黃建國",
                "insured_since": "1978-07",
                "status": "領(lǐng)取待遇",
                "monthly_pension": 3862.50,
                "bank_account": "6217003320001234567",
                "employers": [
                    {"name": "南寧市第二機床廠", "from": "1978-07", "to": "1998-12",
                     "contact_phone": "0771-5512345"},
                    {"name": "廣西綠城物業(yè)服務(wù)有限公司", "from": "1999-03", "to": "2018-03",
                     "contact_phone": "0771-3867000"},
                ],
                "payments": [
                    {"month": "2026-10", "amount": 3862.50},
                    {"month": "2026-11", "amount": 3862.50},
                ],
            }
        if parts[2] == "insured" and parts[4] == "status":
            return 200, {"id_number": idn, "as_of": datetime.date.today().isoformat(),
                         "pension": "參保", "medical": "參保",
                         "unemployment": "未參保", "work_injury": "未參保"}
    return None


def civil(method, parts, query, body):
    # /civil/v1/marriages/{id}, /civil/v1/dibao/recipients/{id},
    # /civil/v1/social-orgs/{uscc}
    if method not in ("GET", "HEAD") or parts[:2] != ["civil", "v1"]:
        return None
    if len(parts) == 4 and parts[2] == "marriages":
        return 200, {
            "id_number": parts[3], "name": "黃建國", "marital_status": "已婚",
            "registered": "1982-10-01",
            "registration_office": "南寧市青秀區(qū)民政局婚姻登記處",
            "certificate_no": "J450103-1982-001234",
            "spouse": {"name": "李秀蘭", "id_number": "450103196005230026",
                       "phone": "13977112345"},
        }
    if len(parts) == 5 and parts[2:4] == ["dibao", "recipients"]:
        return 200, {
            "id_number": parts[4], "name": "韋春梅", "status": "在保",
            "since": "2024-03", "monthly_amount": 830,
            "bank_account": "6228480598765432101",
            "members": [
                {"relation": "本人", "name": "韋春梅", "id_number": parts[4],
                 "health_condition": "慢性腎病", "disability_grade": None},
                {"relation": "子", "name": "韋小龍", "id_number": "450105201203150031",
                 "health_condition": "健康", "disability_grade": "肢體三級"},
            ],
        }
    if len(parts) == 4 and parts[2] == "social-orgs":
        return 200, {"uscc": parts[3], "name": "南寧市青秀區(qū)社區(qū)養(yǎng)老服務(wù)協(xié)會",
                     "type": "社會團體", "registered": "2018-05-16", "status": "正常",
                     "registration_authority": "南寧市民政局"}
    return None


def health(method, parts, query, body):
    # /health/v1/birth-certificates/{cert_no}, /health/v1/death-certificates/{id},
    # /health/v1/ehr/{id}/**, /health/v1/institutions/{code}
    if method not in ("GET", "HEAD") or parts[:2] != ["health", "v1"] or len(parts) < 4:
        return None
    kind, key = parts[2], parts[3]
    if kind == "birth-certificates" and len(parts) == 4:
        return 200, {
            "cert_no": key, "child_name": "黃雨桐", "sex": "女",
            "born": "2026-10-03T08:42:00+08:00",
            "birthplace": "廣西壯族自治區(qū)婦幼保健院",
            "mother": {"name": "陸曉燕", "id_number": "450102199402180028"},
            "father": {"name": "黃志明", "id_number": "450103198509150013"},
        }
    if kind == "death-certificates" and len(parts) == 4:
        return 200, {
            "id_number": key, "name": "潘桂英", "died": "2026-11-02",
            "place": "家中", "certificate_no": "D4501032026000871",
            "cause_of_death": "急性心肌梗死",
            "underlying_conditions": ["高血壓", "2型糖尿病"],
            "informant": {"name": "潘立新", "relation": "子", "phone": "13707713456"},
        }
    if kind == "ehr" and len(parts) >= 4:
        return 200, {"id_number": key, "section": "/".join(parts[4:]) or "summary",
                     "blood_type": "O", "allergies": ["青霉素"],
                     "chronic_conditions": ["高血壓"],
                     "last_visit": "2026-09-17"}
    if kind == "institutions" and len(parts) == 4:
        return 200, {"code": key, "name": "南寧市第一人民醫(yī)院", "level": "三級甲等",
                     "address": "南寧市七星路89號", "licence_valid_until": "2029-12-31"}
    return None


def market(method, parts, query, body):
    # /market/v1/enterprises/{uscc}                     licence
    # /market/v1/enterprises/{uscc}/annual-reports/**   annual reports
    # /market/v1/enterprises/{uscc}/**                  registry details
    if (method not in ("GET", "HEAD") or parts[:3] != ["market", "v1", "enterprises"]
            or len(parts) < 4):
        return None
    uscc = parts[3]
    if len(parts) == 4:
        return 200, {
            "uscc": uscc, "name": "南寧綠城智能科技有限公司",
            "type": "有限責任公司（自然人投資或控股）",
            "legal_representative_name": "陳明", "registered_capital": "500萬元人民幣",
            "established": "2019-04-22", "status": "存續(xù)",
            "address": "南寧市西鄉(xiāng)塘區(qū)總部路1號中國—東盟科技企業(yè)孵化基地",
            "scope": "軟件開發(fā)；信息系統(tǒng)集成服務(wù)；物聯(lián)網(wǎng)技術(shù)服務(wù)",
        }
    if parts[4] == "annual-reports":
        year = parts[5] if len(parts) > 5 else "2025"
        return 200, {"uscc": uscc, "year": year, "published": "2026-05-18",
                     "employees": 46, "status": "已公示",
                     "website": "https://www.lvcheng-tech.example"}
    return 200, {
        "uscc": uscc, "section": "/".join(parts[4:]),
        "legal_representative": {"name": "陳明", "id_number": "450107198811230035",
                                 "phone": "13878801234"},
        "shareholders": [
            {"name": "陳明", "id_number": "450107198811230035", "share": "60%"},
            {"name": "廖麗華", "id_number": "450103199001050042", "share": "40%"},
        ],
        "officers": [
            {"role": "監(jiān)事", "name": "廖麗華", "id_number": "450103199001050042",
             "phone": "15977165432"},
        ],
        "changes": [{"date": "2023-08-09", "item": "注冊資本", "from": "100萬元",
                     "to": "500萬元"}],
    }


def estate_property(cert_no):
    return {
        "cert_no": cert_no,
        "location": "南寧市青秀區(qū)民族大道88號3棟2單元501室",
        "area_m2": 112.36, "use": "住宅", "registered": "2021-06-30",
        "owners": [
            {"name": "黃建國", "id_number": "450103195803120017", "share": "共同共有",
             "phone": "13807718000"},
            {"name": "李秀蘭", "id_number": "450103196005230026", "share": "共同共有",
             "phone": "13977112345"},
        ],
        "mortgages": [{"bank": "中國建設(shè)銀行南寧分行", "amount": 300000,
                       "until": "2031-06-30", "borrower_phone": "13807718000"}],
    }


def estate(method, parts, query, body):
    # GET /estate/v1/properties/{cert_no}, POST /estate/v1/properties/search,
    # GET /estate/v1/owners/{id}/properties
    if parts[:2] != ["estate", "v1"] or len(parts) < 4:
        return None
    if parts[2] == "properties" and len(parts) == 4:
        if parts[3] == "search" and method == "POST":
            found = estate_property("450103-2021-0123456")
            return 200, {"matches": 1, "owners": found["owners"], "properties": [
                {k: v for k, v in found.items() if k not in ("owners", "mortgages")}]}
        if method in ("GET", "HEAD"):
            return 200, estate_property(parts[3])
    if (parts[2] == "owners" and len(parts) == 5 and parts[4] == "properties"
            and method in ("GET", "HEAD")):
        found = estate_property("450103-2021-0123456")
        return 200, {"id_number": parts[3], "owners": found["owners"], "properties": [
            {k: v for k, v in found.items() if k not in ("owners", "mortgages")}]}
    return None


def bigdata(method, parts, query, body):
    # /open/v1/stats/**, /open/v1/catalogue/**, /bigdata/v1/legal-persons/{uscc},
    # POST /bigdata/v1/population/verify
    if parts[:3] == ["open", "v1", "stats"] and method in ("GET", "HEAD"):
        return 200, {"dataset": "/".join(parts[3:]) or "index",
                     "title": "南寧市常住人口", "year": 2025, "value": 8945000,
                     "unit": "人", "source": "南寧市統(tǒng)計局"}
    if parts[:3] == ["open", "v1", "catalogue"] and method in ("GET", "HEAD"):
        return 200, {"items": [
            {"id": "household-registry", "name": "常住人口基本信息", "owner": "南寧市公安局",
             "sharing": "有條件共享"},
            {"id": "enterprise-licence", "name": "營業(yè)執(zhí)照信息", "owner": "南寧市市場監(jiān)督管理局",
             "sharing": "無條件共享"},
            {"id": "open-statistics", "name": "統(tǒng)計數(shù)據(jù)開放", "owner": "南寧市大數(shù)據(jù)發(fā)展局",
             "sharing": "主動公開"},
        ]}
    if (parts[:3] == ["bigdata", "v1", "legal-persons"] and len(parts) == 4
            and method in ("GET", "HEAD")):
        return 200, {"uscc": parts[3], "name": "南寧綠城智能科技有限公司",
                     "kind": "企業(yè)法人", "legal_representative_name": "陳明",
                     "status": "存續(xù)", "updated": "2026-11-27"}
    if parts == ["bigdata", "v1", "population", "verify"] and method == "POST":
        try:
            req = json.loads(body.decode("utf-8")) if body else {}
        except (UnicodeDecodeError, ValueError):
            return 400, {"error": "bad_request", "detail": "body is not JSON"}
        known = {"450103195803120017": "黃建國", "450107198811230035": "陳明"}
        idn = str(req.get("id_number", "")) if isinstance(req, dict) else ""
        name = str(req.get("name", "")) if isinstance(req, dict) else ""
        return 200, {"match": known.get(idn) == name, "checked_at":
                     datetime.datetime.now(datetime.timezone.utc).isoformat()}
    return None


UPSTREAMS = [
    ("psb-api", "南寧市公安局", psb),
    ("hrss-api", "南寧市人力資源和社會保障局", hrss),
    ("civil-api", "南寧市民政局", civil),
    ("health-api", "南寧市衛(wèi)生健康委員會", health),
    ("market-api", "南寧市市場監(jiān)督管理局", market),
    ("estate-api", "南寧市不動產(chǎn)登記中心", estate),
    ("bigdata-api", "南寧市大數(shù)據(jù)發(fā)展局", bigdata),
]

# --------------------------------------------------------------------------
# HTTP


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: govgate pools its upstreams
    def version_string(self):
        return "demo-backend/1"

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if te.lower() == "chunked":
            out = b""
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                if len(out) + size > MAX_BODY:
                    raise ValueError("body too large")
                out += self.rfile.read(size)
                self.rfile.readline(1024)
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n) if n > 0 else b""

    def answer(self):
        upstream, owner, route = self.server.demo
        try:
            body = self.read_body()
        except ValueError:
            self.close_connection = True
            self.send(400, {"error": "bad_request"})
            return
        target = self.path
        path, _, query = target.partition("?")
        parts = [p for p in path.split("/") if p]
        res = route(self.command, parts, query, body)
        if res is None:
            status, obj = 404, {"error": "not_found",
                                "detail": "%s has no %s %s" % (upstream, self.command, path)}
        else:
            status, obj = res
        seen = {k: v for k, v in self.headers.items()
                if k.lower().startswith("x-govgate-") or k.lower() == "forwarded"}
        obj["_received"] = {"backend": "%s (%s)" % (upstream, owner),
                            "request": "%s %s" % (self.command, target),
                            "headers": seen}
        self.send(status, obj)

    def send(self, status, obj):
        data = (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = answer

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s %s\n" % (
            datetime.datetime.now().strftime("%H:%M:%S"), self.server.demo[0], fmt % args))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description="Canned department backends for the govgate demo.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8444,
                    help="first of seven consecutive ports (default 8444)")
    ap.add_argument("--ready", help="write this file once every port is bound")
    a = ap.parse_args()

    servers = []
    try:
        for i, (name, owner, route) in enumerate(UPSTREAMS):
            s = Server((a.host, a.port + i), Handler)
            s.demo = (name, owner, route)
            servers.append(s)
    except OSError as e:
        sys.stderr.write("demo-backend: cannot listen on %s:%d: %s\n"
                         % (a.host, a.port + len(servers), e.strerror))
        return 1

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    for s in servers:
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2},
                         daemon=True).start()
        sys.stderr.write("demo-backend: %s on http://%s:%d/\n"
                         % (s.demo[0], a.host, s.server_address[1]))
    if a.ready:
        tmp = a.ready + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % os.getpid())
        os.replace(tmp, a.ready)
    while not stop.wait(3600):
        pass
    for s in servers:
        s.shutdown()
        s.server_close()
    sys.stderr.write("demo-backend: stopped\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
