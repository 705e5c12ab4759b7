#!/usr/bin/env bash
# Bulk throughput (docs/PERFORMANCE.md, "Bulk import and export"): a release build, N accounts
# as NDJSON, imported
#   1. through a running server's `POST /api/v2/account/_bulk` (curl streaming the file),
#      sampling the server's RSS every 0.2 s;
#   2. with `corral import` against a fresh local database (in-process, no server);
# then exported with `corral export` (server, then local). Loopback only; stops by itself.
#
#   bench/import.sh                  # 1,000,000 accounts, SQLite
#   bench/import.sh 100000           # fewer
#   bench/import.sh 1000000 --pg     # PostgreSQL (CORRAL_TEST_DATABASE_URL, else a throwaway server)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
PG=${2:-}
PORT=${PORT:-18188}

. bench/lib.sh
corral_binary # BIN=path/to/corral skips the release build
WORK=$(mktemp -d)
SERVER=
SAMPLER=
cleanup() {
  [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null || true
  [ -n "$SERVER" ] && { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
  [ -n "${PG_STARTED:-}" ] && scripts/pg stop
  rm -rf "$WORK"
}
trap cleanup EXIT

database() { # a fresh database URL named $1
  if [ "$PG" = "--pg" ]; then
    psql -q "$CORRAL_TEST_DATABASE_URL" -c "CREATE SCHEMA $1"
    echo "$CORRAL_TEST_DATABASE_URL?options=-c%20search_path%3D$1"
  else
    echo "sqlite://$WORK/$1.db"
  fi
}
if [ "$PG" = "--pg" ]; then
  if [ -z "${CORRAL_TEST_DATABASE_URL:-}" ]; then
    eval "$(PG_PORT=54340 PG_DIR=/tmp/corral-bench-import-pg scripts/pg start)"
    PG_STARTED=1
  fi
fi
SUFFIX=$(date +%s)

now() { date +%s.%N; }
rate() { python3 -c "import sys; n, t = int(sys.argv[1]), float(sys.argv[2]); print(f'{n/t:,.0f} records/s ({n:,} in {t:.1f} s)')" "$1" "$2"; }

echo "generating $N accounts"
python3 - "$N" "$WORK/bulk.ndjson" "$WORK/flat.ndjson" <<'EOF'
import json, sys
n = int(sys.argv[1])
industries = ["software", "hardware", "retail", "healthcare", "finance", "manufacturing", "energy", "media"]
with open(sys.argv[2], "w") as bulk, open(sys.argv[3], "w") as flat:
    for i in range(n):
        domain = f"acct{i}.bench.example"
        attrs = {"display_name": f"Account {i:07d}", "industry": industries[i % 8], "employee_count": (i * 37) % 5000}
        bulk.write(json.dumps({"op": "assert", "match": {"domain_name": domain}, "attributes": attrs}, separators=(",", ":")) + "\n")
        flat.write(json.dumps({"name": attrs["display_name"], "domain": domain, "industry": attrs["industry"],
                               "employee_count": attrs["employee_count"]}, separators=(",", ":")) + "\n")
EOF
echo "file: $(( $(stat -c %s "$WORK/bulk.ndjson") / 1024 / 1024 )) MiB"

# 1. Through the server.
DB=$(database "bench_server_$SUFFIX")
CORRAL_LOG=warn CORRAL_RATE_LIMIT_PER_SECOND=0 $BIN --data-dir "$WORK" --database-url "$DB" serve --listen "127.0.0.1:$PORT" >/dev/null &
SERVER=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null && break; sleep 0.1; done
TOKEN=$($BIN --data-dir "$WORK" --database-url "$DB" token --tenant bench --ttl 10h)
( max=0; while kill -0 "$SERVER" 2>/dev/null; do
    r=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER/status" 2>/dev/null || echo 0)
    [ "${r:-0}" -gt "$max" ] && max=$r && echo "$max" > "$WORK/rss.max"
    sleep 0.2
  done ) &
SAMPLER=$!
start=$(now)
curl -sS -X POST -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/x-ndjson" \
  -T "$WORK/bulk.ndjson" "http://127.0.0.1:$PORT/api/v2/account/_bulk" -o "$WORK/results.ndjson"
elapsed=$(python3 -c "print($(now) - $start)")
created=$(grep -c '"status":201' "$WORK/results.ndjson" || true)
echo "server _bulk import:   $(rate "$N" "$elapsed"); created $created; peak server RSS $(( $(cat "$WORK/rss.max") / 1024 )) MB"

start=$(now)
$BIN --data-dir "$WORK" export --type account --server "http://127.0.0.1:$PORT" --token "$TOKEN" --no-progress -o "$WORK/export.ndjson" 2>/dev/null
elapsed=$(python3 -c "print($(now) - $start)")
echo "server export:         $(rate "$(wc -l < "$WORK/export.ndjson")" "$elapsed"); peak server RSS $(( $(cat "$WORK/rss.max") / 1024 )) MB"
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=

# 2. The CLI against a fresh local database.
DB=$(database "bench_local_$SUFFIX")
start=$(now)
CORRAL_LOG=warn $BIN --data-dir "$WORK" --database-url "$DB" import "$WORK/flat.ndjson" --tenant bench --type account --no-progress
elapsed=$(python3 -c "print($(now) - $start)")
echo "local corral import:   $(rate "$N" "$elapsed")"
start=$(now)
CORRAL_LOG=warn $BIN --data-dir "$WORK" --database-url "$DB" export --tenant bench --type account --no-progress -o "$WORK/export2.ndjson" 2>/dev/null
elapsed=$(python3 -c "print($(now) - $start)")
echo "local corral export:   $(rate "$(wc -l < "$WORK/export2.ndjson")" "$elapsed")"
