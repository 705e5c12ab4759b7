#!/usr/bin/env python3
"""Corral next to its peer (Directus) and its ceiling (a bare axum + rusqlite server), one run.

Builds Corral and the ceiling (release), installs Directus once into bench/.peer (npm, pinned),
starts all three on 127.0.0.1, seeds the same 10,000 accounts into each, then runs every
workload against each server interleaved (Corral, Directus, ceiling; three times) with wrk,
takes medians and writes a table and an SVG chart into docs/PERFORMANCE.md. See bench/README.md.

    bench/compare.py              # SQLite: 3 reps x 10 s per workload and server (~25 min)
    bench/compare.py --quick      # smoke run: 1 rep x 3 s
    bench/compare.py --pg         # Corral and Directus on PostgreSQL (the ceiling stays SQLite)

Every process started here is stopped by its PID (process group) on exit, every wrk and
client call has a timeout, and all traffic stays on loopback. Python standard library only.
"""
import argparse
import datetime
import http.client
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
PEER_DIR = os.environ.get("PEER_DIR", os.path.join(BENCH, ".peer"))
DIRECTUS_VERSION = "11.3.5"  # the newest release whose engines field accepts Node 20
SQLITE3_VERSION = "5.1.7"  # the sqlite3 @directus/api 23.3.2 pins; listed top-level so knex finds it
LUA = os.path.join(BENCH, "wrk", "workload.lua")
DOC = os.path.join(ROOT, "docs", "PERFORMANCE.md")
SERVERS = ["corral", "directus", "ceiling"]
PORTS = {"corral": 18187, "directus": 18055, "ceiling": 18188}
DIRECTUS_TOKEN = "corral-bench-static-admin-token-0001"

PROCS = []  # every process this driver started (Popen, started in its own process group)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def stop_all():
    for p in reversed(PROCS):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait(timeout=5)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
    PROCS.clear()


def spawn(cmd, env, logfile, cwd=None):
    out = open(logfile, "ab")
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    PROCS.append(p)
    return p


def run(cmd, timeout, **kw):
    return subprocess.run(cmd, timeout=timeout, check=True, **kw)


# ------------------------------------------------------------------ HTTP helpers (keep-alive)

class Client:
    def __init__(self, port, headers):
        self.port, self.headers = port, headers
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method, path, body=None, content_type="application/json"):
        h = dict(self.headers)
        if body is not None:
            h["Content-Type"] = content_type
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body)
        try:
            self.conn.request(method, path, body, h)
            r = self.conn.getresponse()
        except (ConnectionError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.conn.request(method, path, body, h)
            r = self.conn.getresponse()
        data = r.read()
        try:
            return r.status, json.loads(data) if data else None
        except ValueError:
            return r.status, data[:300]


def wait_http(port, path, proc, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server on :{port} exited with {proc.returncode} while starting")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"server on :{port} not ready after {seconds}s")


def port_free(port):
    try:
        http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/")
        return False
    except OSError:
        return True


# ------------------------------------------------------------------ the data (same for all three)

INDUSTRIES = ["Software", "Healthcare", "Manufacturing", "Finance", "Retail"]
STAGES = ["prospect", "target_account", "engaged", "opportunity", "customer", "churned"]
ADJ = ["Quantum", "Northwind", "Bright", "Pixel", "Harbor", "Zenith", "Blue", "Summit", "Silver", "Apex",
       "Cedar", "Nova", "Iron", "Lumen", "Atlas", "Crimson", "Evergreen", "Granite", "Vertex", "Orbit"]
NOUN = ["Labs", "Logistics", "Systems", "Dynamics", "Health", "Capital", "Foods", "Works", "Analytics",
        "Motors", "Media", "Energy", "Partners", "Robotics", "Outfitters"]
WORDS = ["enterprise", "customer", "platform", "regional", "supplier", "renewal", "contract", "pipeline",
         "expansion", "migration", "pilot", "integration", "support", "onboarding", "procurement"]
TAGS = ["vip", "partner", "smb", "enterprise", "emea", "amer", "apac", "inbound", "outbound", "referral"]


def record(i):
    """Account i, deterministic; fields are Corral's v1 names (Directus and the ceiling use the same)."""
    r = random.Random(i)
    adj, noun = r.choice(ADJ), r.choice(NOUN)
    slug = f"{adj}-{noun}-{i}".lower()
    employees = max(1, int(50000 ** r.random()))  # log-uniform 1..50k
    return {
        "name": f"{adj} {noun} {i}",
        "legal_name": f"{adj} {noun} {i} Inc.",
        "industry": INDUSTRIES[i % len(INDUSTRIES)],
        "website": f"https://www.{slug}.example.com",
        "domain": f"{slug}.example.com",
        "phone": f"+1-555-{r.randrange(10000):04d}",
        "employee_count": employees,
        "annual_revenue": round(employees * (50000 + r.random() * 250000), 2),
        "lifecycle_stage": r.choice(STAGES),
        "description": " ".join(r.choice(WORDS) for _ in range(20 + r.randrange(20))),
        "tags": sorted({r.choice(TAGS) for _ in range(1 + r.randrange(3))}),
    }


# A full record for the write workloads; {uniq} is unique per request (per record in batches).
POST_ITEM = ('{"name":"Bench {uniq}","legal_name":"Bench {uniq} Inc.","industry":"bench-post",'
             '"website":"https://wrk-{uniq}.example.com","domain":"wrk-{uniq}.example.com","phone":"+1-555-0100",'
             '"employee_count":{rand},"annual_revenue":1250000.5,"lifecycle_stage":"customer",'
             '"description":"Account created by the wrk write workloads.","tags":["bench","wrk"]}')
BULK_ITEM = POST_ITEM.replace("bench-post", "bench-bulk").replace("wrk-{uniq}", "bulk-{uniq}")
# Corral's v2 spelling of the same record for `_bulk`: one create operation per NDJSON line,
# the body of `POST /api/v2/account` plus `op` (docs/API.md, Bulk import).
BULK_ITEM_V2 = ('{"op":"create","attributes":{"display_name":"Bench {uniq}","legal_name":"Bench {uniq} Inc.",'
                '"industry":"bench-bulk","official_website":"https://bulk-{uniq}.example.com","phone":"+1-555-0100",'
                '"employee_count":{rand},"estimated_annual_revenue":"1250000.5","current_stage_id":"customer",'
                '"description":"Account created by the bulk workload.","tags":["bench","bulk"]}}')


# ------------------------------------------------------------------ servers

class Server:
    """One running server: its process, a keep-alive client, seeded ids and domains."""

    def __init__(self, name, proc, headers):
        self.name, self.proc = name, proc
        self.port = PORTS[name]
        self.headers = headers
        self.client = Client(self.port, headers)
        self.ids, self.domains = [], []
        self.bulk_mode = None


def build(args):
    log("building corral and the ceiling (release)")
    run(["cargo", "build", "--release", "-q", "-p", "corral", "-p", "corral-bench-ceiling"], timeout=3600, cwd=ROOT)
    tgt = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(tgt, "release", "corral"), os.path.join(tgt, "release", "corral-bench-ceiling")


def ensure_directus():
    check = "require('directus/package.json');require('sqlite3');require('isolated-vm');require('argon2')"
    try:
        have = subprocess.run(["node", "-p", "require('directus/package.json').version"], cwd=PEER_DIR,
                              capture_output=True, text=True, timeout=30).stdout.strip()
        if have == DIRECTUS_VERSION and subprocess.run(["node", "-e", check], cwd=PEER_DIR, timeout=30,
                                                       capture_output=True).returncode == 0:
            return
    except (OSError, subprocess.TimeoutExpired):
        pass
    log(f"installing directus@{DIRECTUS_VERSION} into {PEER_DIR} (5-8 min: sqlite3 and isolated-vm compile)")
    os.makedirs(PEER_DIR, exist_ok=True)
    # allowScripts: newer npm skips dependency install scripts unless approved; these are the
    # native builds Directus needs (they fall back to node-gyp against the local Node headers).
    with open(os.path.join(PEER_DIR, "package.json"), "w") as f:
        json.dump({"name": "corral-bench-peer", "private": True,
                   "dependencies": {"directus": DIRECTUS_VERSION, "sqlite3": SQLITE3_VERSION},
                   "allowScripts": {k: True for k in ["sqlite3", "isolated-vm", "argon2", "sharp", "esbuild"]}},
                  f, indent=2)
    # sqlite3 links the system libsqlite3 when it has headers (npm_config_sqlite=/usr): compiling
    # its bundled amalgamation took over 20 minutes on a busy 2-core machine. PEER_BUNDLED_SQLITE=1
    # builds the bundled copy instead.
    env = dict(os.environ)
    if os.path.exists("/usr/include/sqlite3.h") and not os.environ.get("PEER_BUNDLED_SQLITE"):
        env["npm_config_sqlite"] = "/usr"
    with open(os.path.join(PEER_DIR, "npm-install.log"), "ab") as out:
        run(["npm", "install", "--no-audit", "--no-fund"], timeout=3600, cwd=PEER_DIR, env=env, stdout=out, stderr=out)
    run(["node", "-e", check], timeout=60, cwd=PEER_DIR)


def start_corral(binary, work, db_url):
    env = dict(os.environ, CORRAL_LOG="warn", CORRAL_RATE_LIMIT_PER_SECOND="0")
    base = [binary, "--data-dir", os.path.join(work, "corral"), "--database-url", db_url]
    proc = spawn(base + ["serve", "--listen", f"127.0.0.1:{PORTS['corral']}"], env, os.path.join(work, "corral.log"))
    wait_http(PORTS["corral"], "/ready", proc, 60)
    token = subprocess.run(base + ["token", "--tenant", "bench", "--ttl", "6h"], env=env, capture_output=True,
                           text=True, timeout=60, check=True).stdout.strip()
    return Server("corral", proc, {"Authorization": f"Bearer {token}"})


def directus_env(work, pg):
    d = os.path.join(work, "directus")
    for sub in ("uploads", "extensions"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    port = PORTS["directus"]
    env = dict(os.environ, NODE_ENV="production", HOST="127.0.0.1", PORT=str(port), PUBLIC_URL=f"http://127.0.0.1:{port}",
               KEY="corral-bench-key", SECRET="corral-bench-secret-0123456789abcdef",
               ADMIN_EMAIL="admin@example.com", ADMIN_PASSWORD="corral-bench-password", ADMIN_TOKEN=DIRECTUS_TOKEN,
               TELEMETRY="false", RATE_LIMITER_ENABLED="false", CACHE_ENABLED="false",
               PRESSURE_LIMITER_ENABLED="false", WEBSOCKETS_ENABLED="false", LOG_LEVEL="warn", LOG_STYLE="raw",
               STORAGE_LOCATIONS="local", STORAGE_LOCAL_ROOT=os.path.join(d, "uploads"),
               EXTENSIONS_PATH=os.path.join(d, "extensions"))
    if pg:
        env.update(DB_CLIENT="pg", DB_HOST="127.0.0.1", DB_PORT=str(pg["port"]), DB_DATABASE=pg["directus_db"],
                   DB_USER="corral", DB_PASSWORD="unused-trust-auth")
    else:
        env.update(DB_CLIENT="sqlite3", DB_FILENAME=os.path.join(d, "directus.db"))
    return env


def start_directus(work, pg):
    env = directus_env(work, pg)
    cli = ["node", "node_modules/@directus/api/dist/cli/run.js"]
    logf = os.path.join(work, "directus.log")
    with open(logf, "ab") as out:
        run(cli + ["bootstrap"], timeout=300, cwd=PEER_DIR, env=env, stdout=out, stderr=out)
    # `run.js start` is what the `directus` bin runs after its npm update check (skipped here).
    proc = spawn(cli + ["start"], env, logf, cwd=PEER_DIR)
    wait_http(PORTS["directus"], "/server/ping", proc, 120)
    s = Server("directus", proc, {"Authorization": f"Bearer {DIRECTUS_TOKEN}"})
    # The same columns as Corral's v1 account; industry indexed, domain unique (=> indexed).
    fields = [{"field": "id", "type": "integer", "meta": {"hidden": True, "readonly": True},
               "schema": {"is_primary_key": True, "has_auto_increment": True}},
              {"field": "name", "type": "string", "schema": {"is_nullable": False}},
              {"field": "legal_name", "type": "string", "schema": {}},
              {"field": "industry", "type": "string", "schema": {"is_indexed": True}},
              {"field": "website", "type": "string", "schema": {}},
              {"field": "domain", "type": "string", "schema": {"is_unique": True}},
              {"field": "phone", "type": "string", "schema": {}},
              {"field": "employee_count", "type": "integer", "schema": {}},
              {"field": "annual_revenue", "type": "decimal", "schema": {"numeric_precision": 18, "numeric_scale": 2}},
              {"field": "lifecycle_stage", "type": "string", "schema": {}},
              {"field": "description", "type": "text", "schema": {}},
              {"field": "tags", "type": "json", "meta": {"special": ["cast-json"]}, "schema": {}},
              {"field": "date_created", "type": "timestamp", "meta": {"special": ["date-created"], "readonly": True}, "schema": {}},
              {"field": "date_updated", "type": "timestamp", "meta": {"special": ["date-updated"], "readonly": True}, "schema": {}}]
    st, body = s.client.call("POST", "/collections", {"collection": "accounts", "schema": {}, "meta": {}, "fields": fields})
    if st != 200:
        raise SystemExit(f"directus: create collection answered {st}: {body}")
    return s


def start_ceiling(binary, work):
    proc = spawn([binary, "--db", os.path.join(work, "ceiling.db"), "--listen", f"127.0.0.1:{PORTS['ceiling']}"],
                 dict(os.environ), os.path.join(work, "ceiling.log"))
    wait_http(PORTS["ceiling"], "/health", proc, 30)
    return Server("ceiling", proc, {})


# ------------------------------------------------------------------ seeding

def seed_batches(s, path, n, batch=500):
    """Directus (array POST) and the ceiling (_bulk): batches of 500, one after another."""
    for start in range(0, n, batch):
        recs = [record(i) for i in range(start, min(n, start + batch))]
        st, body = s.client.call("POST", path, recs)
        if st not in (200, 201):
            raise SystemExit(f"{s.name}: seed batch at {start} answered {st}: {body}")
        data = body["data"]
        s.ids += [str(d["id"] if isinstance(d, dict) else d) for d in data]
        s.domains += [r["domain"] for r in recs]


def seed_corral(s, n, threads=4):
    """Corral: v1 POST one by one over 4 keep-alive connections (works with or without `_bulk`)."""
    ids, lock, errors = {}, threading.Lock(), []

    def work(k):
        c = Client(s.port, s.headers)
        for i in range(k, n, threads):
            st, body = c.call("POST", "/api/v1/crm/accounts", record(i))
            if st != 201:
                errors.append(f"{st} {body}")
                return
            with lock:
                ids[i] = body["id"]

    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise SystemExit(f"corral: seed failed: {errors[0]}")
    s.ids = [ids[i] for i in range(n)]
    s.domains = [record(i)["domain"] for i in range(n)]


def seed(servers, n, work):
    for s in servers.values():
        t0 = time.time()
        if s.name == "corral":
            seed_corral(s, n)
        elif s.name == "directus":
            seed_batches(s, "/items/accounts", n)
        else:
            seed_batches(s, "/accounts/_bulk", n)
        log(f"{s.name}: seeded {len(s.ids)} accounts in {time.time() - t0:.1f}s")
        for kind, rows in (("ids", s.ids), ("domains", s.domains)):
            with open(os.path.join(work, f"{s.name}-{kind}.txt"), "w") as f:
                f.write("\n".join(rows) + "\n")


# ------------------------------------------------------------------ workloads

def q(s):
    return s.replace("[", "%5B").replace("]", "%5D")


# name -> (label, {server: (method, path, body) or None}); bodies and paths are wrk templates.
LIST_V1 = "/api/v1/crm/accounts?industry={industry}&sort=-employee_count&limit=50"
QUERY_V2 = ('{"filters":[{"field":"industry","operator":"eq","value":"{industry}"}],'
            '"sort":[{"field":"employee_count","direction":"desc"}],"limit":50}')
D_FILTER = q("/items/accounts?filter[industry][_eq]={industry}&sort=-employee_count&limit=50")
C_FILTER = "/accounts?industry={industry}&sort=-employee_count&limit=50"
WORKLOADS = [
    ("get_v1", "GET one account by id (v1)", {
        "corral": ("GET", "/api/v1/crm/accounts/{id}", ""),
        "directus": ("GET", "/items/accounts/{id}", ""),
        "ceiling": ("GET", "/accounts/{id}", "")}),
    ("get_v2", "GET one account by id (v2)", {
        "corral": ("GET", "/api/v2/account/{id}", ""),
        "directus": ("GET", "/items/accounts/{id}", ""),
        "ceiling": ("GET", "/accounts/{id}", "")}),
    ("list_v1", "filter industry + sort + 50 rows (v1 list)", {
        "corral": ("GET", LIST_V1, ""),
        "directus": ("GET", D_FILTER, ""),
        "ceiling": ("GET", C_FILTER, "")}),
    ("query_v2", "filter industry + sort + 50 rows (v2 _query)", {
        "corral": ("POST", "/api/v2/account/_query", QUERY_V2),
        "directus": ("GET", D_FILTER, ""),
        "ceiling": ("GET", C_FILTER, "")}),
    ("search", "search, 50 rows (v1 ?q= / ?search=)", {
        "corral": ("GET", "/api/v1/crm/accounts?q={term}&limit=50", ""),
        "directus": ("GET", "/items/accounts?search={term}&limit=50", ""),
        "ceiling": ("GET", "/accounts?q={term}&limit=50", "")}),
    ("patch", "PATCH one field", {
        "corral": ("PATCH", "/api/v1/crm/accounts/{id}", '{"employee_count":{rand}}'),
        "directus": ("PATCH", "/items/accounts/{id}", '{"employee_count":{rand}}'),
        "ceiling": ("PATCH", "/accounts/{id}", '{"employee_count":{rand}}')}),
    ("assert", "_assert (upsert by domain, existing record)", {
        "corral": ("POST", "/api/v2/account/_assert",
                   '{"match":{"domain_name":"{domain}"},"attributes":{"employee_count":{rand}}}'),
        "directus": None,  # no upsert in Directus' REST API
        "ceiling": ("POST", "/accounts/_assert", '{"domain":"{domain}","employee_count":{rand}}')}),
    ("post", "POST one account", {
        "corral": ("POST", "/api/v1/crm/accounts", POST_ITEM),
        "directus": ("POST", "/items/accounts", POST_ITEM),
        "ceiling": ("POST", "/accounts", POST_ITEM)}),
    # bulk: filled in per run (Corral's `_bulk` when the server answers it, else POST one by one)
    ("bulk", "bulk import (records/s)", {}),
]


def bulk_spec(s):
    """(method, path, item, batch, format, threads, conns) of the bulk workload for server s."""
    if s.name == "directus":
        return ("POST", "/items/accounts", BULK_ITEM, 500, "json", 1, 1)
    if s.name == "ceiling":
        return ("POST", "/accounts/_bulk", BULK_ITEM, 500, "json", 1, 1)
    if s.bulk_mode == "_bulk":
        return ("POST", "/api/v2/account/_bulk", BULK_ITEM_V2, 500, "ndjson", 1, 1)
    return ("POST", "/api/v1/crm/accounts", BULK_ITEM, 0, "", None, None)


def probe_bulk(s):
    """Does Corral answer `POST /api/v2/account/_bulk` (NDJSON)? 404/405 means not yet."""
    line = BULK_ITEM_V2.replace("{uniq}", "probe").replace("{rand}", "7")
    st, body = s.client.call("POST", "/api/v2/account/_bulk", line + "\n", "application/x-ndjson")
    if st in (404, 405):
        s.bulk_mode = "post"
        log(f"corral: _bulk answered {st}: bulk import uses POST one by one")
    elif 200 <= st < 300:
        # The request answers 200 whatever its lines did: the line itself must be created, or
        # the workload would measure how fast bad lines are refused.
        # (One line's result is one JSON object, which `call` has parsed.)
        if not isinstance(body, dict) or body.get("status") != 201:
            raise SystemExit(f"corral: the probe line of _bulk was not created: {str(body)[:300]}")
        s.bulk_mode = "_bulk"
        log(f"corral: _bulk answered {st}: bulk import uses _bulk NDJSON, 500 lines per request")
    else:
        s.bulk_mode = "post"
        log(f"corral: _bulk answered {st} {str(body)[:200]}: not understood, bulk import uses POST one by one")


def fill_once(tpl, s):
    return (tpl.replace("{id}", s.ids[0]).replace("{domain}", s.domains[0]).replace("{industry}", "Software")
            .replace("{term}", "quantum").replace("{uniq}", f"probe-{time.time_ns()}").replace("{rand}", "42"))


def probe(servers):
    """One request per workload and server before any load: each must succeed, lists must hold 50 rows."""
    for name, _, specs in WORKLOADS:
        for sn, spec in specs.items():
            if spec is None or sn not in servers:
                continue
            s = servers[sn]
            method, path, body = spec
            st, data = s.client.call(method, fill_once(path, s), fill_once(body, s) if body else None)
            if not 200 <= st < 300:
                raise SystemExit(f"probe {name} on {sn}: {method} {path} answered {st}: {str(data)[:300]}")
            if name in ("list_v1", "query_v2") and len(data["data"]) != 50:
                raise SystemExit(f"probe {name} on {sn}: {len(data['data'])} rows, expected 50")
            if name == "search" and not data["data"]:
                raise SystemExit(f"probe search on {sn}: no rows")


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def wrk(s, work, method, path, body, seconds, threads, conns, batch=0, fmt="", tag=""):
    env = dict(os.environ, WL_METHOD=method, WL_PATH=path, WL_BODY=body, WL_BATCH=str(batch), WL_FORMAT=fmt,
               RUN_ID=f"{s.name}{tag}{time.time_ns()}",
               IDS_FILE=os.path.join(work, f"{s.name}-ids.txt"), DOMAINS_FILE=os.path.join(work, f"{s.name}-domains.txt"))
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--timeout", "30s" if batch else "10s", "--latency",
           "-s", LUA]
    for k, v in s.headers.items():
        cmd += ["-H", f"{k}: {v}"]
    cmd.append(f"http://127.0.0.1:{s.port}")
    peak, stop = [0], threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kb(s.proc.pid))
            stop.wait(0.25)

    t = threading.Thread(target=sample)
    t.start()
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 30).stdout
    finally:
        stop.set()
        t.join()
    line = next((ln for ln in out.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise SystemExit(f"wrk against {s.name} printed no result:\n{out[-2000:]}")
    r = json.loads(line[8:])
    r["non2xx"] = next((int(ln.split()[-1]) for ln in out.splitlines() if "Non-2xx or 3xx" in ln), 0)
    r["rss_max_mb"] = round(peak[0] / 1024, 1)
    if s.proc.poll() is not None:
        raise SystemExit(f"{s.name} exited during a run")
    return r


def errors(r):
    """Failed requests of one wrk run, and failed lines of `_bulk` requests that answered 200."""
    return (r["non2xx"] + r["err_connect"] + r["err_read"] + r["err_write"] + r["err_timeout"]
            + r.get("item_errors", 0))


def measure(servers, work, args):
    results = []  # one dict per (workload, rep, server)
    for name, label, specs in WORKLOADS:
        for rep in range(1, args.reps + 1):
            for sn in SERVERS:  # interleaved: Corral, Directus, ceiling, then the next repetition
                if sn not in servers:
                    continue
                s = servers[sn]
                if name == "bulk":
                    method, path, item, batch, fmt, th, co = bulk_spec(s)
                    threads, conns = th or args.threads, co or args.connections
                else:
                    spec = specs.get(sn)
                    if spec is None:
                        continue
                    (method, path, item), batch, fmt, threads, conns = spec, 0, "", args.threads, args.connections
                # A batch of 500 can take seconds on a loaded machine: bulk runs at least 10 s.
                seconds = max(args.duration, 10) if batch else args.duration
                wrk(s, work, method, path, item, args.warmup, threads, conns, batch, fmt, "w")
                load = os.getloadavg()[0]
                r = wrk(s, work, method, path, item, seconds, threads, conns, batch, fmt, "m")
                if r["requests"] == 0:
                    log(f"{name} on {sn}: no request completed in {seconds}s")
                r.update(workload=name, server=sn, rep=rep, load1=round(load, 2), batch=batch, threads=threads,
                         conns=conns, records_per_s=round(r["rps"] * (batch or 1), 1))
                errs = errors(r)
                log(f"{name:9} rep {rep} {sn:8}: {r['records_per_s'] if batch else r['rps']:>9} "
                    f"{'records/s' if batch else 'req/s'}, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
                    f"RSS {r['rss_max_mb']} MB, errors {errs}, load {load:.1f}")
                results.append(r)
                with open(os.path.join(args.results, "results.jsonl"), "a") as f:
                    f.write(json.dumps(r) + "\n")
    return results


# ------------------------------------------------------------------ report

def summarize(results):
    """{workload: {server: medians}} over repetitions."""
    out = {}
    for r in results:
        out.setdefault(r["workload"], {}).setdefault(r["server"], []).append(r)
    med = {}
    for w, per in out.items():
        for sn, rs in per.items():
            med.setdefault(w, {})[sn] = {
                "rate": statistics.median(x["records_per_s"] for x in rs),
                "p50": statistics.median(x["p50_ms"] for x in rs),
                "p99": statistics.median(x["p99_ms"] for x in rs),
                "rss": statistics.median(x["rss_max_mb"] for x in rs),
                "errors": sum(errors(x) for x in rs),
                "batch": rs[0]["batch"], "conns": rs[0]["conns"], "n": len(rs),
            }
    return med


def fmt_rate(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def fmt_ms(x):
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def ratio(a, b):
    if not a or not b:
        return "n/a"
    r = a / b
    return f"{r:,.0f}×" if r >= 10 else f"{r:.2f}×"


COLORS = {"corral": "#2b6cb0", "directus": "#c05621", "ceiling": "#718096"}


def svg_chart(med, title):
    """Horizontal bars of the median rate per workload and server, on a log scale (drawn by hand)."""
    import math
    rows = [(w, label) for w, label, _ in WORKLOADS if w in med]
    vals = [v["rate"] for w, _ in rows for v in med[w].values() if v["rate"] > 0]
    lo = 10 ** math.floor(math.log10(min(vals))) if vals else 1
    hi = 10 ** math.ceil(math.log10(max(vals))) if vals else 10
    left, width, bar, gap, top = 300, 520, 11, 12, 48
    height = top + len(rows) * (3 * bar + gap) + 40
    x = lambda v: left + width * (math.log10(max(v, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" height="{height}" '
         f'font-family="sans-serif" font-size="11">',
         f'<rect width="100%" height="100%" fill="white"/>',
         f'<text x="10" y="18" font-size="13" font-weight="bold">{title}</text>']
    for i, sn in enumerate(SERVERS):
        o.append(f'<rect x="{left + i * 120}" y="28" width="10" height="10" fill="{COLORS[sn]}"/>'
                 f'<text x="{left + i * 120 + 14}" y="37">{sn}</text>')
    decade = lo
    while decade <= hi:
        gx = x(decade)
        o.append(f'<line x1="{gx:.1f}" y1="{top - 4}" x2="{gx:.1f}" y2="{height - 30}" stroke="#ddd"/>'
                 f'<text x="{gx:.1f}" y="{height - 16}" text-anchor="middle">{decade:,.0f}</text>')
        decade *= 10
    o.append(f'<text x="{left + width / 2}" y="{height - 3}" text-anchor="middle">'
             f'requests/s (records/s for bulk import), log scale, median</text>')
    y = top
    for w, label in rows:
        o.append(f'<text x="{left - 8}" y="{y + 1.5 * bar + 4}" text-anchor="end">{label}</text>')
        for k, sn in enumerate(SERVERS):
            v = med[w].get(sn)
            by = y + k * bar
            if v is None:
                o.append(f'<text x="{left + 4}" y="{by + bar - 2}" fill="#999">{sn}: n/a</text>')
                continue
            o.append(f'<rect x="{left}" y="{by}" width="{max(1, x(v["rate"]) - left):.1f}" height="{bar - 1}" '
                     f'fill="{COLORS[sn]}"/><text x="{x(v["rate"]) + 4:.1f}" y="{by + bar - 2}">{fmt_rate(v["rate"])}</text>')
        y += 3 * bar + gap
    o.append("</svg>")
    return "\n".join(o) + "\n"


def markdown(med, meta, chart):
    lines = [f"Run {meta['date']}: {meta['db']}, {meta['accounts']:,} accounts seeded into each server, "
             f"wrk -t{meta['threads']} -c{meta['connections']} -d{meta['duration']}s after a {meta['warmup']}s warm-up, "
             f"{'median of ' + str(meta['reps']) if meta['reps'] > 1 else 'one repetition (smoke run)'}, "
             f"workloads interleaved Corral, Directus, ceiling; {meta['cpus']} CPUs, load average "
             f"{meta['load_min']}–{meta['load_max']} during the measured runs "
             f"(the machine is shared: compare ratios, not absolute figures). "
             f"Directus {DIRECTUS_VERSION} on Node {meta['node']}; Corral bulk import: {meta['bulk_mode']}.",
             "",
             f"![Corral, Directus and the ceiling, {meta['db']}]({chart})",
             "",
             "| Workload | Corral | Directus | ceiling | Corral ÷ Directus | Corral ÷ ceiling | p50 / p99 ms (Corral · Directus · ceiling) | RSS MB (C · D · c) | errors |",
             "|---|---:|---:|---:|---:|---:|---|---|---:|"]
    for w, label, _ in WORKLOADS:
        if w not in med:
            continue
        m = med[w]
        get = lambda sn, k: m[sn][k] if sn in m else None
        rate = lambda sn: fmt_rate(m[sn]["rate"]) if sn in m else "n/a"
        lat = " · ".join(f"{fmt_ms(m[sn]['p50'])} / {fmt_ms(m[sn]['p99'])}" if sn in m else "n/a" for sn in SERVERS)
        rss = " · ".join(f"{m[sn]['rss']:.0f}" if sn in m else "n/a" for sn in SERVERS)
        errors = sum(v["errors"] for v in m.values())
        lines.append(f"| {label} | {rate('corral')} | {rate('directus')} | {rate('ceiling')} | "
                     f"{ratio(get('corral', 'rate'), get('directus', 'rate'))} | "
                     f"{ratio(get('corral', 'rate'), get('ceiling', 'rate'))} | {lat} | {rss} | {errors} |")
    return "\n".join(lines) + "\n"


def write_docs(med, meta, key):
    chart_name = f"bench-compare-{key}.svg"
    with open(os.path.join(ROOT, "docs", chart_name), "w") as f:
        f.write(svg_chart(med, f"Corral, Directus {DIRECTUS_VERSION} and the ceiling — {meta['db']}, {meta['date']}"))
    start, end = f"<!-- bench/compare.py {key}: start -->", f"<!-- bench/compare.py {key}: end -->"
    doc = open(DOC).read()
    body = f"{start}\n{markdown(med, meta, chart_name)}{end}"
    if start in doc and end in doc:
        doc = doc[:doc.index(start)] + body + doc[doc.index(end) + len(end):]
    else:
        raise SystemExit(f"markers {start} / {end} not found in {DOC}")
    with open(DOC, "w") as f:
        f.write(doc)
    log(f"wrote {DOC} ({key}) and docs/{chart_name}")


# ------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pg", action="store_true", help="Corral and Directus on PostgreSQL (scripts/pg; PG_DIR, PG_PORT)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 repetition, 3 s per workload, 1 s warm-up")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10, help="seconds per measured wrk run")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each measured run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--accounts", type=int, default=10000)
    ap.add_argument("--only", help="comma list of workloads to run (default all)")
    ap.add_argument("--servers", default=",".join(SERVERS), help="comma list of servers (default all three)")
    ap.add_argument("--no-docs", action="store_true", help="do not write docs/PERFORMANCE.md and the chart")
    ap.add_argument("--no-build", action="store_true", help="use the release binaries already built")
    args = ap.parse_args()
    if args.quick:
        args.reps, args.duration, args.warmup = 1, 3, 1
    if args.only:
        keep = set(args.only.split(","))
        WORKLOADS[:] = [w for w in WORKLOADS if w[0] in keep]
    wanted = args.servers.split(",")
    if not shutil.which("wrk"):
        raise SystemExit("wrk is required (apt-get install wrk)")
    for sn in wanted:
        if not port_free(PORTS[sn]):
            raise SystemExit(f"something already listens on 127.0.0.1:{PORTS[sn]}")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    args.results = os.path.join(BENCH, "results", stamp)
    os.makedirs(args.results, exist_ok=True)
    work = tempfile.mkdtemp(prefix="corral-compare-")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    pg = None
    try:
        if args.no_build:
            tgt = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
            corral_bin, ceiling_bin = (os.path.join(tgt, "release", b) for b in ("corral", "corral-bench-ceiling"))
        else:
            corral_bin, ceiling_bin = build(args)
        if "directus" in wanted:
            ensure_directus()
        db_url = "sqlite://" + os.path.join(work, "corral.db")
        if args.pg:
            pg = start_pg(work)
            db_url = pg["corral_url"]
        servers = {}
        if "corral" in wanted:
            servers["corral"] = start_corral(corral_bin, work, db_url)
        if "directus" in wanted:
            servers["directus"] = start_directus(work, pg)
        if "ceiling" in wanted:
            servers["ceiling"] = start_ceiling(ceiling_bin, work)
        log("servers up: " + ", ".join(f"{s.name} pid {s.proc.pid} :{s.port}" for s in servers.values()))
        seed(servers, args.accounts, work)
        if "corral" in servers:
            probe_bulk(servers["corral"])
        probe(servers)
        idle = {sn: round(rss_kb(s.proc.pid) / 1024, 1) for sn, s in servers.items()}
        log(f"RSS after seeding (MB): {idle}")
        results = measure(servers, work, args)
        med = summarize(results)
        loads = [r["load1"] for r in results]
        node = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
        meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                "db": "PostgreSQL" if args.pg else "SQLite", "accounts": args.accounts, "threads": args.threads,
                "connections": args.connections, "duration": args.duration, "warmup": args.warmup, "reps": args.reps,
                "cpus": os.cpu_count(), "node": node, "load_min": min(loads), "load_max": max(loads),
                "bulk_mode": ("`_bulk` NDJSON, 500 lines per request" if servers.get("corral") and
                              servers["corral"].bulk_mode == "_bulk" else "POST one by one (no `_bulk` yet)"),
                "rss_after_seed_mb": idle}
        with open(os.path.join(args.results, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
        print(markdown(med, meta, "chart.svg"))
        with open(os.path.join(args.results, "chart.svg"), "w") as f:
            f.write(svg_chart(med, f"{meta['db']}, {meta['date']}"))
        if not args.no_docs:
            write_docs(med, meta, ("pg" if args.pg else "sqlite") + ("-quick" if args.quick else ""))
        log(f"results in {args.results}")
    finally:
        stop_all()
        if pg:
            subprocess.run([os.path.join(ROOT, "scripts", "pg"), "stop"], env=pg["env"], timeout=120)
        shutil.rmtree(work, ignore_errors=True)


def start_pg(work):
    """A throwaway PostgreSQL from scripts/pg: Corral in its own schema, Directus in its own database."""
    env = dict(os.environ, PG_DIR=os.environ.get("PG_DIR", "/tmp/corral-bench-pg"),
               PG_PORT=os.environ.get("PG_PORT", "54339"))
    out = subprocess.run([os.path.join(ROOT, "scripts", "pg"), "start"], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    url = next(ln.split("=", 1)[1] for ln in out.splitlines() if "CORRAL_TEST_DATABASE_URL=" in ln)
    suffix = time.strftime("%Y%m%d%H%M%S")
    schema, ddb = f"bench_{suffix}", f"directus_bench_{suffix}"
    run(["psql", "-q", url, "-c", f"CREATE SCHEMA {schema}"], timeout=60)
    run(["psql", "-q", url, "-c", f"CREATE DATABASE {ddb}"], timeout=60)
    return {"env": env, "port": int(env["PG_PORT"]), "directus_db": ddb,
            "corral_url": f"{url}?options=-c%20search_path%3D{schema}"}


if __name__ == "__main__":
    main()
