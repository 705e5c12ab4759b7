#!/usr/bin/env bash
# Duplicate candidates at scale (docs/PERFORMANCE.md, "Duplicate detection"): how long one
# page of `POST /api/v2/account/_duplicates` takes in a tenant of N accounts (default
# 1,000,000), on SQLite or PostgreSQL. A release build:
#   1. seeds N accounts with `corral seed` (the ordinary create path, 5,000 per transaction);
#   2. starts `corral serve` on that database and plants N/1,000 duplicates through `_bulk`,
#      spread over the whole tenant: a seeded account's name with a legal suffix, with its
#      words' vowels changed (a typo), or its domain as a website;
#   3. walks PAGES pages of 100 groups (following next_cursor) and a filtered page, timing each
#      request with curl, and prints the first page, the median and the slowest.
# Loopback only; stops by itself.
#
#   bench/duplicates.sh                 # 1,000,000 accounts, SQLite
#   bench/duplicates.sh 100000          # fewer
#   bench/duplicates.sh 1000000 --pg    # PostgreSQL (CORRAL_TEST_DATABASE_URL, else a throwaway server)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
PG=${2:-}
PAGES=${PAGES:-20}
PORT=${PORT:-18189}

. bench/lib.sh
corral_binary # BIN=path/to/corral skips the release build
WORK=$(mktemp -d)
SERVER=
cleanup() {
  [ -n "$SERVER" ] && { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
  [ -n "${PG_STARTED:-}" ] && PG_PORT=54341 PG_DIR=/tmp/corral-bench-dup-pg scripts/pg stop
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ "$PG" = "--pg" ]; then
  if [ -z "${CORRAL_TEST_DATABASE_URL:-}" ]; then
    eval "$(PG_PORT=54341 PG_DIR=/tmp/corral-bench-dup-pg scripts/pg start)"
    PG_STARTED=1
  fi
  SCHEMA="bench_dup_$(date +%s)"
  psql -q "$CORRAL_TEST_DATABASE_URL" -c "CREATE SCHEMA $SCHEMA"
  DB="$CORRAL_TEST_DATABASE_URL?options=-c%20search_path%3D$SCHEMA"
else
  DB="sqlite://$WORK/bench.db"
fi
now() { date +%s.%N; }

start=$(now)
CORRAL_LOG=warn $BIN --data-dir "$WORK" --database-url "$DB" seed --tenant bench --accounts "$N" >/dev/null
python3 -c "import sys; n, t = int(sys.argv[1]), float(sys.argv[2]); print(f'seeded {n:,} accounts in {t:.0f} s ({n/t:,.0f}/s)')" "$N" "$(python3 -c "print($(now) - $start)")"

CORRAL_LOG=warn CORRAL_RATE_LIMIT_PER_SECOND=0 $BIN --data-dir "$WORK" --database-url "$DB" serve --listen "127.0.0.1:$PORT" >/dev/null &
SERVER=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null && break; sleep 0.1; done
TOKEN=$($BIN --data-dir "$WORK" --database-url "$DB" token --tenant bench --ttl 2h)
BASE="http://127.0.0.1:$PORT/api/v2/account"

# The planted duplicates: the names corral_store::seed::account_body gives account i.
python3 - "$N" > "$WORK/planted.ndjson" <<'EOF'
import json, sys
n = int(sys.argv[1])
words = ["acme", "globex", "initech", "umbrella", "stark", "wayne", "hooli", "vandelay", "wonka",
         "tyrell", "cyberdyne", "soylent", "oscorp", "aperture", "massive", "nakatomi"]
for k, i in enumerate(range(7, n, 1000)):
    name = f"{words[i % 16]} {words[(i // 16) % 16]} {i}"
    kind = k % 3
    if kind == 0:
        attrs = {"display_name": name.title() + " GmbH"}
    elif kind == 1:
        attrs = {"display_name": name.replace("a", "e", 1) + " Inc"}
    else:
        attrs = {"display_name": f"Other Name {i}", "official_website": f"https://www.a{i}.example/about"}
    print(json.dumps({"op": "create", "attributes": attrs}))
EOF
planted=$(wc -l < "$WORK/planted.ndjson")
curl -sS -X POST -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/x-ndjson" \
  --data-binary @"$WORK/planted.ndjson" "$BASE/_bulk" -o "$WORK/planted.out"
echo "planted $planted duplicates ($(grep -c '"status":201' "$WORK/planted.out" || true) created)"

# Page through the candidates, then one filtered page.
python3 - "$BASE" "$TOKEN" "$PAGES" <<'EOF'
import json, statistics, sys, time, urllib.request
base, token, pages = sys.argv[1], sys.argv[2], int(sys.argv[3])
def call(body):
    req = urllib.request.Request(base + "/_duplicates", data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as r:
        doc = json.load(r)
    return time.perf_counter() - t, doc
times, groups, cursor = [], 0, None
for _ in range(pages):
    elapsed, doc = call({"limit": 100, **({"cursor": cursor} if cursor else {})})
    times.append(elapsed)
    groups += len(doc["data"])
    cursor = doc.get("next_cursor")
    if not cursor:
        break
ms = [t * 1000 for t in times]
print(f"_duplicates, 100 groups a page: {len(ms)} pages, {groups} groups; first page {ms[0]:.0f} ms, "
      f"median {statistics.median(ms):.0f} ms, slowest {max(ms):.0f} ms")
elapsed, doc = call({"limit": 100, "filters": [{"field": "industry", "operator": "eq", "value": "software"}]})
print(f"_duplicates filtered to industry = software: {elapsed * 1000:.0f} ms, {len(doc['data'])} groups")
EOF
