#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, unit tests, and the
# integration tests that run ringstack against the Linux kernel in network
# namespaces (those need root; without it they print why they skip), the
# gate on TCP instructions per segment (callgrind), and a short run of every
# fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --all-features --locked -- -D warnings
echo "== the library alone (default-features = false)"
cargo build --lib --no-default-features --locked
results=$(mktemp)
trap 'rm -f "$results"' EXIT
echo "== cargo test"
cargo test --all-features --lib --bins --tests --examples --locked -- --test-threads="${RINGSTACK_TEST_THREADS:-4}" 2>&1 | tee -a "$results"
echo "== benches, once each (criterion's test mode)"
cargo test --locked --bench "*" 2>&1 | tee -a "$results"
echo "== TCP instructions per segment against benches/tcp_cost.baseline"
benches/tcp_cost_check.sh
echo "== fuzz smoke: every target for ${FUZZ_SECONDS:-20}s"
fuzz/smoke.sh
# One closing line for the whole run: every "test result" of cargo test, summed.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$results"
