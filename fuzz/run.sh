#!/usr/bin/env bash
# Run one cargo-fuzz target on stable Rust: `fuzz/run.sh TARGET [SECONDS]`.
#
# `-s none` builds without a sanitizer, which stable allows (plain
# `cargo fuzz run` needs nightly's -Z flags); safe Rust still finds panics,
# overflows and hangs. For AddressSanitizer on code near `unsafe`, run
# `RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET` instead (about 6x slower).
#
# New inputs go to fuzz/work/TARGET (not committed); the committed seeds in
# fuzz/corpus/TARGET (made from lab captures by fuzz/seed.py) are read too.
# A crash exits non-zero; libFuzzer prints the input and writes it under
# fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh TARGET [SECONDS]}
secs=${2:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p "work/$target" "corpus/$target"
exec cargo fuzz run -s none "$target" "work/$target" "corpus/$target" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
