#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_SECONDS seconds each (default 60). Needs a nightly toolchain.
#
# A crash (a panic: every invariant is an assert) makes cargo fuzz exit non-zero, and the script
# stops there. The input that crashed lands in fuzz/artifacts/<target>/; replay it with
#   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>
# and, once understood, turn it into a regression test beside the code it broke (as the tests
# named for the byte order mark, the bad last literal and the too-long repeated scalar were).
set -euo pipefail

seconds="${FUZZ_SECONDS:-60}"
targets=(json_scanner sse_parser tap)

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# cargo fuzz runs from the crate root and finds fuzz/ there.
cd "$(dirname "${BASH_SOURCE[0]}")/.."

for target in "${targets[@]}"; do
    echo "=== fuzzing ${target} for ${seconds}s ==="
    cargo +nightly fuzz run -O "${target}" -- -max_total_time="${seconds}" -max_len=8192
done
echo "=== no crash in ${targets[*]} ==="
