#!/usr/bin/env bash
# Kept for the commands in older notes: the benchmark is bench/compare.py (see bench/README.md).
exec python3 "$(dirname "$0")/compare.py" "$@"
