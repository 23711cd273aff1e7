#!/usr/bin/env bash
# llmlog's peak resident memory on hostile logs, read from outside the process (/proc VmHWM):
# 1 GiB of chunks of one exchange that never ends, and a million distinct model names.
# Usage: scripts/hostile-logs.sh [dir]   (needs python3; builds llmlog in release)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-$(mktemp -d)}
cargo build --release --features cli --bin llmlog 2>/dev/null
bin=target/release/llmlog
python3 - "$dir" <<'PY'
import json, sys, os
d = sys.argv[1]
def rec(i, seq, last, model, msg):
    return json.dumps({"TimeGenerated": "2026-11-24T03:02:12.706100119Z", "CorrelationId": i, "Kind": "Response",
        "SequenceNumber": seq, "IsLast": last, "Api": "chat_completions", "OperationName": "chat", "ModelName": model,
        "IsStreamCompletion": False, "ResponseMessages": msg, "MessageBytes": len(msg), "Truncated": False,
        "DurationMs": 1.5, "Outcome": "Completed", "TotalTokens": 3}, separators=(",", ":"))
chunk = "x" * 32768
with open(os.path.join(d, "endless.jsonl"), "w") as f:
    n = 0; seq = 0
    while n < 1 << 30:
        line = rec("endless", seq, False, "m", chunk) + "\n"; f.write(line); n += len(line); seq += 1
with open(os.path.join(d, "models.jsonl"), "w") as f:
    for i in range(1_000_000):
        f.write(rec("c%d" % i, 0, True, "model-%d" % i, "") + "\n")
PY
peak() { # command... ; prints the peak resident memory in MiB
  "$@" >/dev/null 2>&1 &
  local pid=$! hwm=0 v
  while kill -0 "$pid" 2>/dev/null; do
    v=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$v" ] && [ "$v" -gt "$hwm" ] && hwm=$v
    sleep 0.01
  done
  wait "$pid" || true
  echo $((hwm / 1024))
}
echo "endless exchange, $(du -m "$dir/endless.jsonl" | cut -f1) MiB log: llmlog exchanges peak $(peak $bin exchanges --json "$dir/endless.jsonl") MiB"
echo "1,000,000 models, $(du -m "$dir/models.jsonl" | cut -f1) MiB log: llmlog usage --by model peak $(peak $bin usage --by model "$dir/models.jsonl") MiB"
echo "same, llmlog report: peak $(peak $bin report -o "$dir/report.html" "$dir/models.jsonl") MiB"
