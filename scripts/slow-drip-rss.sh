#!/usr/bin/env bash
# The release gateway's resident memory with 200 concurrent slow-drip clients (1-byte HTTP
# chunks), read from outside the process: the README's memory table. Linux only.
#
# The upstream is a second gateway process (its built-in mock, logging off), so the memory
# measured is the gateway's own, not the mock's buffering of the bodies it receives.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p llm-log-gateway --example slow_drip
bin=target/release/examples
mock_port=18081
port=18080
"target/release/llm-log-gateway" --listen 127.0.0.1:$mock_port --no-log 2>/dev/null &
mock=$!
trap 'kill $mock 2>/dev/null || true' EXIT
sleep 1
run() { # label, slow_drip args, gateway args...
  local label=$1 clients=$2 body=$3 chunk=$4
  shift 4
  local log
  log=$(mktemp)
  "target/release/llm-log-gateway" --listen 127.0.0.1:$port --upstream http://127.0.0.1:$mock_port --log-file "$log" "$@" 2>/dev/null &
  local pid=$!
  sleep 1
  echo -n "$label: "
  "$bin/slow_drip" --addr 127.0.0.1:$port --pid $pid --clients "$clients" --body-bytes "$body" --chunk "$chunk"
  kill -INT $pid
  wait $pid || true
  rm -f "$log"
}
body=65536
run "logging off" 200 $body 1 --no-log
run "default caps, read-ahead 4 MiB (default)" 200 $body 1
run "default caps, read-ahead off" 200 $body 1 --request-read-ahead 0
run "2 MiB caps, read-ahead 4 MiB" 200 $body 1 --prompt-bytes 2097152 --completion-bytes 2097152
run "2 MiB caps, read-ahead off" 200 $body 1 --prompt-bytes 2097152 --completion-bytes 2097152 --request-read-ahead 0
