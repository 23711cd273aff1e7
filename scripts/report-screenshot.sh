#!/usr/bin/env bash
# The README's picture of `llmlog report`: a six-hour log of synthetic traffic (four models,
# three users, a few errors, streams with time to first token), its report, and a headless
# Chromium screenshot of it. Needs python3 and chromium (installed with apt if missing).
# Usage: scripts/report-screenshot.sh [out.png]   (default docs/report.png)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/report.png}
dir=$(mktemp -d)
if ! command -v chromium >/dev/null; then
    SUDO=""; if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get install -y -qq chromium
fi
cargo build --release --features cli --bin llmlog 2>/dev/null
python3 - "$dir/llm.jsonl" <<'PY'
import json, random, sys, datetime
random.seed(7)
start = datetime.datetime(2026, 11, 24, 6, 0, tzinfo=datetime.timezone.utc)
models = [("gpt-4o", 2.5, 10), ("gpt-4o-mini", 0.15, 0.6), ("claude-sonnet-4-5", 3, 15), ("text-embedding-3-small", 0.02, 0)]
users = ["alice", "bob", "search-team"]
with open(sys.argv[1], "w") as f:
    for i in range(3000):
        t = start + datetime.timedelta(seconds=random.uniform(0, 6 * 3600))
        model, pin, pout = random.choices(models, weights=[3, 5, 2, 1])[0]
        prompt = int(random.lognormvariate(6.5, 0.8)); completion = 0 if pout == 0 else int(random.lognormvariate(5, 0.7))
        failed = random.random() < 0.03
        stream = pout > 0 and random.random() < 0.6
        duration = random.lognormvariate(6.3, 0.5) + completion * 0.8
        rec = {"TimeGenerated": t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "CorrelationId": "c%d" % i, "Kind": "Response",
               "SequenceNumber": 0, "IsLast": True, "Api": "chat_completions", "OperationName": "chat", "ModelName": model,
               "IsStreamCompletion": stream, "ResponseMessages": "", "MessageBytes": 0, "Truncated": False,
               "DurationMs": duration, "Outcome": "UpstreamError" if failed else "Completed",
               "Dimensions": {"user": random.choice(users)}}
        if not failed:
            rec.update({"PromptTokens": prompt, "CompletionTokens": completion, "TotalTokens": prompt + completion,
                        "CostUsd": (prompt * pin + completion * pout) / 1e6})
        if stream and not failed:
            rec["TimeToFirstTokenMs"] = random.lognormvariate(5.8, 0.4)
        f.write(json.dumps(rec) + "\n")
PY
target/release/llmlog report "$dir/llm.jsonl" -o "$dir/report.html" --top 5
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1000,2200 \
    --screenshot="$out" "file://$dir/report.html" 2>/dev/null
echo "wrote $out (report: $dir/report.html)"
