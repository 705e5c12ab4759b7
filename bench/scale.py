#!/usr/bin/env python3
"""Latency of the issue-11 request shapes against a seeded tenant (bench/scale.sh).

One client, one request at a time, keep-alive, loopback only; every loop is bounded.
Prints one Markdown table row per shape: p50 and p99 in milliseconds.

    scale.py BASE_URL TOKEN ACCOUNTS CONTACTS REQUESTS
"""
import http.client
import json
import random
import sys
import time
import urllib.parse

base, token, accounts, contacts, requests = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
url = urllib.parse.urlparse(base)
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
rng = random.Random(11)


def call(method, path, body=None):
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise SystemExit(f"{method} {path} {body}: {resp.status} {data[:300]!r}")
    return json.loads(data)


def measure(name, make):
    """Times `requests` calls of make() -> (method, path, body), after 10 warm-up calls."""
    for _ in range(10):
        call(*make())
    times = []
    for _ in range(requests):
        args = make()
        t = time.perf_counter()
        call(*args)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    p50 = times[len(times) // 2]
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(f"| {name} | {p50:.2f} | {p99:.2f} |", flush=True)


ids = [r["id"] for r in call("GET", "/api/v1/crm/accounts?limit=500")["data"]]
domain = lambda: f"a{rng.randrange(accounts)}.example"
email = lambda: (lambda j: f"c{j}@a{j % accounts}.example")(rng.randrange(contacts))
words = ["acme", "globex", "initech", "umbrella", "stark", "wayne", "hooli", "wonka"]

measure("GET v1 account by id", lambda: ("GET", f"/api/v1/crm/accounts/{rng.choice(ids)}", None))
measure("v1 industry=software&sort=-employee_count&limit=50",
        lambda: ("GET", "/api/v1/crm/accounts?industry=software&sort=-employee_count&limit=50", None))
measure("v2 _query industry eq, sort -employee_count", lambda: ("POST", "/api/v2/account/_query", {
    "filters": [{"field": "industry", "operator": "eq", "value": "software"}],
    "sort": [{"field": "employee_count", "direction": "desc"}], "limit": 50}))
measure("v1 ?domain= (exact)", lambda: ("GET", f"/api/v1/crm/accounts?domain={domain()}", None))
measure("v2 domains eq", lambda: ("POST", "/api/v2/account/_query",
                                  {"filters": [{"field": "domains", "operator": "eq", "value": domain()}]}))
if contacts:
    measure("v1 contacts ?email= (exact)",
            lambda: ("GET", f"/api/v1/crm/contacts?email={urllib.parse.quote(email())}", None))
    measure("v2 contact_emails eq", lambda: ("POST", "/api/v2/contact/_query",
                                             {"filters": [{"field": "contact_emails", "operator": "eq", "value": email()}]}))
measure("v2 display_name contains", lambda: ("POST", "/api/v2/account/_query", {
    "filters": [{"field": "display_name", "operator": "contains", "value": f"{rng.choice(words)} {rng.choice(words)} 1"}]}))
measure("v1 q", lambda: ("GET", f"/api/v1/crm/accounts?q={rng.choice(words)}%20{rng.choice(words)}%201", None))

# Keyset walk: the cursor of page 100 of industry=software newest first, then that page timed.
path = "/api/v1/crm/accounts?industry=software&limit=50"
cursor = None
for _ in range(99):
    page = call("GET", path + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else ""))
    cursor = page.get("next_cursor")
    if not cursor:
        break
if cursor:
    measure("keyset page 100 (industry=software, 50 a page)",
            lambda: ("GET", f"{path}&cursor={urllib.parse.quote(cursor)}", None))
measure("count=estimated, industry=software",
        lambda: ("GET", "/api/v1/crm/accounts?industry=software&limit=1&count=estimated", None))
measure("count=exact, industry=software",
        lambda: ("GET", "/api/v1/crm/accounts?industry=software&limit=1&count=exact", None))
