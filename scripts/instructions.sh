#!/usr/bin/env bash
# Instructions per 4K/4K exchange, counted by valgrind's callgrind (not fooled by a busy
# machine): bare, with the layer (defaults: read-ahead, secrets, media elision), with request
# read-ahead off, with everything privacy does off, with secrets only, with PII on, without
# cost, and with two header dimensions and a key to fingerprint.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --bench allocations --no-run 2>/dev/null
bin=$(ls -t target/release/deps/allocations-* | grep -v '\.d$' | head -1)
count() { # case n
  local out
  out=$(mktemp)
  INSTRUCTIONS_CASE=$1 INSTRUCTIONS_N=$2 valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
  rm -f "$out"
}
for case in ${CASES:-bare read_ahead_off read_ahead_on privacy_off secrets_only pii no_cost attributed}; do
  a=$(count $case 200)
  b=$(count $case 400)
  echo "$case: $(( (b - a) / 200 )) instructions per exchange"
done
