#!/usr/bin/env bash
# Throughput of LiteLLM's proxy against the gateway binary (logging on, JSON Lines; logging off,
# `--no-log`), all three in front of the same canned upstream (the gateway's built-in mock) and
# driven by the same client with the same load (`examples/load --target`), on this machine.
#
#   scripts/litellm-compare.sh                                  # 32 clients, 5 s per run
#   ARGS="--concurrency 64 --seconds 10" scripts/litellm-compare.sh
#   JOBS=1 scripts/litellm-compare.sh                           # cargo -j1, CARGO_INCREMENTAL=0
#
# Environment:
#   LITELLM_VENV     the venv holding LiteLLM's proxy (default /work/litellm-venv); make it with
#                    python3 -m venv /work/litellm-venv && /work/litellm-venv/bin/pip install 'litellm[proxy]'
#   LITELLM_WORKERS  LiteLLM's uvicorn workers (default 2)
#   LITELLM_PORT     LiteLLM's port (default: a free one)
#   ARGS             more flags for examples/load (--concurrency, --seconds, --prompt-bytes, ...)
#   JOBS             build with `cargo build -j "$JOBS"` and CARGO_INCREMENTAL=0 (default: cargo's)
#
# The mock upstream runs in a gateway process of its own that the load never drives (started
# without --upstream, it serves the mock on a port of its own): LiteLLM and both gateways reach
# it over TCP alike. LiteLLM runs with no callbacks, no spend or error logs (no database), its
# logs at ERROR (no access log) and no master key: the load client sends no Authorization
# header, and the proxy listens on 127.0.0.1 only. Everything shares the machine's cores: on a
# machine with few cores, LiteLLM's workers, the gateways, the mock and the client compete, so
# run it on a quiet machine and compare the rows of one run. After the table, the CPU time
# each server used during the load (warm-ups included) is printed. A run counts the requests
# that started before its end, so give runs several times LiteLLM's stream latency (seconds
# per stream at 32 clients on 2 cores): `ARGS="--seconds 30"` for figures worth quoting.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${LITELLM_VENV:-/work/litellm-venv}
if [ ! -x "$venv/bin/litellm" ]; then
  echo "LiteLLM's proxy is not installed in $venv; install it with:" >&2
  echo "  python3 -m venv $venv && $venv/bin/pip install 'litellm[proxy]'" >&2
  echo "(or point LITELLM_VENV at a venv that has it)" >&2
  exit 1
fi
workers=${LITELLM_WORKERS:-2}

dir=$(mktemp -d)
pids=()   # processes started here, killed on exit
groups=() # process groups started here (LiteLLM and its workers), killed on exit
cleanup() {
  for g in "${groups[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for g in "${groups[@]}"; do # LiteLLM takes a few seconds to stop its workers
    for _ in $(seq 1 50); do
      kill -0 -- "-$g" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL -- "-$g" 2>/dev/null || true
  done
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

jobs=()
if [ -n "${JOBS:-}" ]; then
  jobs=(-j "$JOBS")
  export CARGO_INCREMENTAL=0
fi
cargo build --release "${jobs[@]}" -p llm-log-gateway 2>"$dir/build.err" || { cat "$dir/build.err" >&2; exit 1; }
cargo build --release "${jobs[@]}" --example load 2>"$dir/build.err" || { cat "$dir/build.err" >&2; exit 1; }
gateway=target/release/llm-log-gateway

# wait_for FILE SED-SCRIPT NAME: the first match of SED-SCRIPT in FILE (a gateway's stderr).
wait_for() {
  local file=$1 script=$2 name=$3 found=""
  for _ in $(seq 1 100); do
    found=$(sed -n "$script" "$file" | head -n 1)
    if [ -n "$found" ]; then
      echo "$found"
      return
    fi
    sleep 0.1
  done
  echo "$name did not start: $(cat "$file")" >&2
  exit 1
}

# The mock upstream: a gateway without --upstream starts the built-in mock on a port of its own.
"$gateway" --listen 127.0.0.1:0 --no-log --log-file "$dir/mock-host.jsonl" \
  >"$dir/mock.out" 2>"$dir/mock.err" &
mock_pid=$!
pids+=("$mock_pid")
mock=$(wait_for "$dir/mock.err" 's/^forwarding to the built-in mock upstream at http:\/\///p' "the mock upstream")

# The gateways, both forwarding to that mock.
start_gateway() { # name log-args...: starts a gateway, prints its address
  local name=$1
  shift
  "$gateway" --listen 127.0.0.1:0 --upstream "http://$mock" "$@" \
    >"$dir/$name.out" 2>"$dir/$name.err" &
  pids+=($!)
  echo $! >"$dir/$name.pid"
}
start_gateway gateway-on --log-file "$dir/gateway-on.jsonl"
start_gateway gateway-off --no-log --log-file "$dir/gateway-off.jsonl"
on=$(wait_for "$dir/gateway-on.err" 's/^gateway listening on http:\/\///p' "the gateway (logging on)")
off=$(wait_for "$dir/gateway-off.err" 's/^gateway listening on http:\/\///p' "the gateway (logging off)")

# LiteLLM's proxy, forwarding the load's model (gpt-4o-mini) to the mock as an OpenAI endpoint.
port=${LITELLM_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
cat >"$dir/litellm.yaml" <<EOF
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://$mock/v1
      api_key: sk-mock
litellm_settings:
  callbacks: []
  success_callback: []
  failure_callback: []
  set_verbose: false
  json_logs: false
  turn_off_message_logging: true
  telemetry: false
general_settings:
  disable_spend_logs: true
  disable_error_logs: true
  # The load client sends no Authorization header; the proxy listens on 127.0.0.1 only.
  dangerously_permit_weak_or_unset_master_key: true
EOF
# LITELLM_LOCAL_MODEL_COST_MAP: no fetch of the price list from the network at start-up.
# LITELLM_LOG=ERROR: no per-request access log (uvicorn's log level follows it).
# --keepalive_timeout: keep the client's idle connections between runs, as the gateway does.
# setsid: LiteLLM and its worker processes in a process group of their own, killed on exit.
(
  cd "$dir"
  LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_LOG=ERROR DISABLE_ADMIN_UI=True \
    exec setsid "$venv/bin/litellm" --config "$dir/litellm.yaml" --host 127.0.0.1 --port "$port" \
    --num_workers "$workers" --keepalive_timeout 300 >"$dir/litellm.out" 2>"$dir/litellm.err"
) &
litellm_pid=$!
groups+=("$litellm_pid")
litellm_version=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))')
echo "waiting for LiteLLM $litellm_version ($workers workers) on 127.0.0.1:$port ..." >&2
for i in $(seq 1 "${LITELLM_START_SECONDS:-180}"); do
  if curl -sf "http://127.0.0.1:$port/health/liveliness" >/dev/null 2>&1; then
    break
  fi
  if ! kill -0 "$litellm_pid" 2>/dev/null; then
    echo "LiteLLM exited at start-up:" >&2
    tail -n 40 "$dir/litellm.out" "$dir/litellm.err" >&2
    exit 1
  fi
  if [ "$i" = "${LITELLM_START_SECONDS:-180}" ]; then
    echo "LiteLLM did not answer /health/liveliness in $i s:" >&2
    tail -n 40 "$dir/litellm.out" "$dir/litellm.err" >&2
    exit 1
  fi
  sleep 1
done
# Each worker starts on its own: wait until chat requests pass, and check that LiteLLM answers
# a streamed request of the load's shape through the mock (status 200, the stream's end).
probe='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hi"}],"max_tokens":5,"stream":true,"stream_options":{"include_usage":true}}'
ok=0
for _ in $(seq 1 60); do
  code=$(curl -s -o "$dir/probe.out" -w '%{http_code}' "http://127.0.0.1:$port/v1/chat/completions" \
    -H 'content-type: application/json' -d "$probe" || true)
  if [ "$code" = 200 ] && grep -q '^data: \[DONE\]' "$dir/probe.out"; then
    ok=$((ok + 1))
    [ "$ok" -ge 4 ] && break
  else
    ok=0
    sleep 1
  fi
done
if [ "$ok" -lt 4 ]; then
  echo "LiteLLM does not answer chat completions through the mock (last status $code):" >&2
  cat "$dir/probe.out" >&2
  tail -n 40 "$dir/litellm.err" >&2
  exit 1
fi

# CPU seconds (user + system) used so far by the processes of a group, or by one process.
ticks=$(getconf CLK_TCK)
cpu_of_group() {
  local total=0 p
  for p in $(pgrep -g "$1" || true); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
before_litellm=$(cpu_of_group "$litellm_pid")
before_on=$(cpu_of "$(cat "$dir/gateway-on.pid")")
before_off=$(cpu_of "$(cat "$dir/gateway-off.pid")")
before_mock=$(cpu_of "$mock_pid")

echo "LiteLLM $litellm_version, $workers workers; mock upstream at $mock; $(nproc) cores"
# shellcheck disable=SC2086
target/release/examples/load \
  --target "litellm ($workers workers)=127.0.0.1:$port" \
  --target "gateway, logging on (JSON Lines)=$on" \
  --target "gateway, logging off=$off" \
  ${ARGS:-}

seconds() { awk -v t="$1" -v hz="$ticks" 'BEGIN { printf "%.1f", t / hz }'; }
echo
echo "CPU time used during the load (warm-ups included):"
echo "  litellm ($workers workers):         $(seconds $(($(cpu_of_group "$litellm_pid") - before_litellm))) s"
echo "  gateway, logging on (JSON Lines): $(seconds $(($(cpu_of "$(cat "$dir/gateway-on.pid")") - before_on))) s"
echo "  gateway, logging off:             $(seconds $(($(cpu_of "$(cat "$dir/gateway-off.pid")") - before_off))) s"
echo "  mock upstream (all three):        $(seconds $(($(cpu_of "$mock_pid") - before_mock))) s"
echo "gateway, logging on: $(wc -l <"$dir/gateway-on.jsonl") records written"
errors=$(cat "$dir/litellm.err" "$dir/litellm.out" | grep -c -E 'ERROR|Traceback|Exception' || true)
if [ "$errors" -gt 0 ]; then
  echo "LiteLLM logged $errors error lines; the last ones:"
  grep -E 'ERROR|Traceback|Exception' "$dir/litellm.err" "$dir/litellm.out" | tail -n 10
fi
