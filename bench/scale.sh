#!/usr/bin/env bash
# Latency at scale (issue 11): seeds one tenant with `corral seed` (N accounts, 2N contacts)
# at each size, then measures the documented request shapes with one client, one request at
# a time (bench/scale.py: p50 / p99 in ms). Release build, SQLite, loopback only; every loop
# is bounded. Results go to stdout as Markdown tables, for docs/PERFORMANCE.md.
#
#   bench/scale.sh                   # 10,000 and 100,000 accounts
#   SIZES="10000 100000 1000000" bench/scale.sh
#   REQUESTS=200 bench/scale.sh      # timed requests per shape (default 100)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"10000 100000"}
REQUESTS=${REQUESTS:-100}
PORT=${PORT:-18188}

cargo build --release -q -p corral
WORK=$(mktemp -d)
# A copy: a build during a long run (a 1,000,000-account seed takes most of an hour) must not
# replace the binary the run is using.
cp "${CARGO_TARGET_DIR:-target}/release/corral" "$WORK/corral"
BIN=$WORK/corral
SERVER=
trap '[ -n "$SERVER" ] && { kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; }; rm -rf "$WORK"' EXIT

for n in $SIZES; do
  db="sqlite://$WORK/scale-$n.db"
  echo "### $n accounts, $((2 * n)) contacts (SQLite)"
  start=$(date +%s)
  CORRAL_LOG=warn $BIN --data-dir "$WORK" --database-url "$db" seed --tenant bench --accounts "$n" --contacts "$((2 * n))" 2>"$WORK/seed.log"
  echo
  echo "Seeded in $(( $(date +%s) - start )) s ($(du -h "$WORK/scale-$n.db" | cut -f1) on disk)."
  echo
  CORRAL_LOG=warn CORRAL_RATE_LIMIT_PER_SECOND=0 $BIN --data-dir "$WORK" --database-url "$db" serve --listen "127.0.0.1:$PORT" >/dev/null &
  SERVER=$!
  # Start-up analyses a large database first: wait up to 5 minutes.
  for _ in $(seq 3000); do curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null && break; sleep 0.1; done
  token=$($BIN --data-dir "$WORK" --database-url "$db" token --tenant bench --ttl 2h)
  echo "| request | p50 ms | p99 ms |"
  echo "| --- | ---: | ---: |"
  python3 bench/scale.py "http://127.0.0.1:$PORT" "$token" "$n" "$((2 * n))" "$REQUESTS"
  kill $SERVER; wait $SERVER 2>/dev/null || true; SERVER=
  rm -f "$WORK/scale-$n.db"*
  echo
done
