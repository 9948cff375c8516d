#!/usr/bin/env bash
# The newcomer's first command: install the lab's tools, build ringstack,
# and run `ringstack lab` (namespaces, the stack on one end, the kernel on
# the other, real traffic, counters). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --locked
exec target/release/ringstack lab "$@"
