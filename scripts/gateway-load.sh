#!/usr/bin/env bash
# The gateway binary under load, logging off (`--no-log`) against logging on (JSON Lines), on
# the built-in mock upstream, driven by the load harness's HTTP/1.1 client (`examples/load`,
# `--target`), all on this machine. Builds the release gateway twice: on mimalloc (the default)
# and on the system allocator (`--no-default-features`).
#
#   scripts/gateway-load.sh                 # 32 clients, 5 s per run
#   ARGS="--concurrency 64 --seconds 10" scripts/gateway-load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

cargo build --release --example load 2>/dev/null
cargo build --release -p llm-log-gateway --no-default-features 2>/dev/null
cp target/release/llm-log-gateway "$dir/gateway-system"
cargo build --release -p llm-log-gateway 2>/dev/null
cp target/release/llm-log-gateway "$dir/gateway-mimalloc"

targets=()
start() { # binary name args...: starts a gateway, adds it to the targets
  local bin=$1 name=$2 addr=""
  shift 2
  "$dir/$bin" --listen 127.0.0.1:0 "$@" >"$dir/$name.out" 2>"$dir/$name.err" &
  pids+=($!)
  for _ in $(seq 1 100); do
    addr=$(sed -n 's/^gateway listening on http:\/\///p' "$dir/$name.err")
    if [ -n "$addr" ]; then
      targets+=(--target "$name=$addr")
      return
    fi
    sleep 0.1
  done
  echo "the gateway $name did not start: $(cat "$dir/$name.err")" >&2
  exit 1
}

for alloc in system mimalloc; do
  start gateway-$alloc "$alloc, logging off" --no-log
  start gateway-$alloc "$alloc, logging on (JSON Lines)" --log-file "$dir/$alloc.jsonl"
done
# shellcheck disable=SC2086
target/release/examples/load "${targets[@]}" ${ARGS:-}
for alloc in system mimalloc; do
  echo "$alloc: $(wc -l <"$dir/$alloc.jsonl") records written"
done
