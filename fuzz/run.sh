#!/usr/bin/env bash
# Run one cargo-fuzz target on stable Rust: `fuzz/run.sh TARGET [SECONDS]`.
# `-s none` builds without a sanitizer, which stable allows (`cargo fuzz run`
# alone needs nightly's -Z flags); safe Rust still finds panics, overflows
# and hangs. A crash exits non-zero and libFuzzer prints the reproducer path.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh TARGET [SECONDS]}
secs=${2:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p "corpus/$target"
exec cargo fuzz run -s none "$target" "corpus/$target" -- -max_total_time="$secs" -rss_limit_mb=2048
