#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, unit tests, and the
# integration tests that run ringstack against the Linux kernel in network
# namespaces (those need root; without it they print why they skip).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --lib --bins --tests --examples --locked -- --test-threads="${RINGSTACK_TEST_THREADS:-4}"
echo "== benches, once each (criterion's test mode)"
cargo test --locked --bench "*"
