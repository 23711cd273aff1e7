#!/usr/bin/env bash
# The release gateway's resident memory with 200 concurrent slow-drip clients (1-byte HTTP
# chunks), read from outside the process: the README's memory table. Linux only.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example gateway --example slow_drip
port=18080
run() { # caps read-ahead clients body_bytes chunk
  local log
  log=$(mktemp)
  target/release/examples/gateway --listen 127.0.0.1:$port --log-file "$log" \
    --prompt-bytes "$1" --completion-bytes "$1" --request-read-ahead "$2" 2>/dev/null &
  local pid=$!
  sleep 1
  echo -n "caps $1, read-ahead $2: "
  target/release/examples/slow_drip --addr 127.0.0.1:$port --pid $pid --clients "$3" --body-bytes "$4" --chunk "$5"
  kill -INT $pid; wait $pid || true
  rm -f "$log"
}
run 32768 4194304 200 262144 1
run 32768 0 200 262144 1
run 2097152 4194304 200 1048576 1
run 2097152 0 200 1048576 1
run 2097152 4194304 200 1048576 7
