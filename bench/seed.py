#!/usr/bin/env python3
"""Seeds N accounts through the HTTP API (keep-alive, a few threads) and writes their ids.

usage: seed.py BASE_URL TOKEN N IDS_FILE
"""
import http.client, json, sys, threading, urllib.parse

base, token, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
u = urllib.parse.urlparse(base)
industries = ["software", "hardware", "retail", "healthcare", "finance", "manufacturing", "energy", "media"]
stages = ["prospect", "target_account", "engaged", "opportunity", "customer", "churned"]
ids, lock = [], threading.Lock()

def work(start, step):
    conn = http.client.HTTPConnection(u.hostname, u.port)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for i in range(start, n, step):
        body = {"name": f"Account {i:06d}", "domain": f"acct{i}.bench.example", "industry": industries[i % len(industries)],
                "lifecycle_stage": stages[i % len(stages)], "employee_count": (i * 37) % 5000, "tags": ["bench", f"t{i % 10}"]}
        conn.request("POST", "/api/v1/crm/accounts", json.dumps(body), headers)
        r = conn.getresponse()
        data = r.read()
        if r.status != 201:
            sys.exit(f"seed failed: {r.status} {data[:200]!r}")
        with lock:
            ids.append(json.loads(data)["id"])

threads = [threading.Thread(target=work, args=(k, 4)) for k in range(4)]
for t in threads: t.start()
for t in threads: t.join()
with open(out, "w") as f:
    f.write("\n".join(ids))
print(f"seeded {len(ids)} accounts")
