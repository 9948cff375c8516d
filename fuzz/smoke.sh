#!/usr/bin/env bash
# Build every fuzz target and run each for FUZZ_SECONDS (default 20): what CI
# runs. Stops at the first crash, which fuzz/run.sh has already printed.
set -euo pipefail
cd "$(dirname "$0")"
secs=${FUZZ_SECONDS:-20}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo fuzz build -s none
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in $(cargo fuzz list); do
    echo "== fuzz $t (${secs}s)"
    if ./run.sh "$t" "$secs" >"$log" 2>&1; then
        grep -E '^stat::number_of_executed_units' "$log" || true
    else
        # The crash, its input and where libFuzzer saved it.
        grep -E -A3 'panicked|ERROR|SUMMARY|Test unit written|Base64' "$log" || tail -40 "$log"
        echo "fuzz target $t crashed"
        exit 1
    fi
done
