#!/usr/bin/env bash
# Load benchmark: release build, 10,000 seeded accounts, wrk from a second process on
# 127.0.0.1, compared with the Directus 11.3.5 figures recorded in docs/PERFORMANCE.md
# (measured on this machine kind, medians of 3). Traffic goes to loopback only and every
# run stops by itself.
#
#   bench/run.sh            # SQLite
#   bench/run.sh --pg       # PostgreSQL (a throwaway server via scripts/pg)
#   DURATION=10s CONNECTIONS=32 bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
ACCOUNTS=${ACCOUNTS:-10000}
PORT=${PORT:-18187}
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null; }

cargo build --release -q -p corral
BIN=target/release/corral
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; [ -n "${PG_STARTED:-}" ] && scripts/pg stop; rm -rf "$WORK"' EXIT

DB="sqlite://$WORK/corral.db"
if [ "${1:-}" = "--pg" ]; then
  eval "$(PG_PORT=54339 PG_DIR=/tmp/corral-bench-pg scripts/pg start)"
  PG_STARTED=1
  SCHEMA="bench_$(date +%s)"
  psql -q "$CORRAL_TEST_DATABASE_URL" -c "CREATE SCHEMA $SCHEMA"
  DB="$CORRAL_TEST_DATABASE_URL?options=-c%20search_path%3D$SCHEMA"
fi

# No rate limit: wrk measures the server, not the limiter (docs/API.md "Rate limits").
CORRAL_LOG=warn CORRAL_RATE_LIMIT_PER_SECOND=0 $BIN --data-dir "$WORK" --database-url "$DB" serve --listen "127.0.0.1:$PORT" >/dev/null &
SERVER=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null && break; sleep 0.1; done
export TOKEN=$($BIN --data-dir "$WORK" --database-url "$DB" token --tenant bench --ttl 2h)
export IDS_FILE="$WORK/ids.txt"
python3 bench/seed.py "http://127.0.0.1:$PORT" "$TOKEN" "$ACCOUNTS" "$IDS_FILE"

rate() { wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s "bench/$1.lua" "http://127.0.0.1:$PORT" | awk '/Requests\/sec/ {print int($2)}'; }

printf '%-34s %12s %14s %8s\n' "workload ($CONNECTIONS conns, $DURATION)" "corral req/s" "directus req/s" "ratio"
for row in "get:GET one account by id:260:264" "post:POST one account:126:190" "patch:PATCH one field:113:164" "list:filter industry + sort + 50 rows:125:185"; do
  IFS=: read -r script label peer_sqlite peer_pg <<<"$row"
  peer=$peer_sqlite; [ "${1:-}" = "--pg" ] && peer=$peer_pg
  r=$(rate "$script")
  printf '%-34s %12s %14s %7sx\n' "$label" "$r" "$peer" "$(( r / peer ))"
done
echo "server RSS after the run: $(( $(awk '/VmRSS/ {print $2}' /proc/$SERVER/status) / 1024 )) MB"
