#!/usr/bin/env bash
# Instructions per forwarded packet (callgrind: the same count on every run)
# and packets per second on one core, for plain IPv4 forwarding in memory:
# examples/forward_cost runs a two-interface router over a frame source and
# a sink, no device, no syscalls. The count is the difference of two runs
# over the difference in packets, so setup cancels out.
#
#   benches/forward_cost.sh [FRAME_BYTES]
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-64}
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)"; exit 1; }
cargo build --release --locked --example forward_cost 2>&1 | tail -1
bin=${CARGO_TARGET_DIR:-target}/release/examples/forward_cost
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r), $(rustc --version)"
for n in 100000 200000; do
    valgrind --tool=callgrind --callgrind-out-file="$dir/$n.cg" "$bin" "$n" "$size" >/dev/null 2>&1
done
total() { callgrind_annotate "$1" | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'; }
a=$(total "$dir/100000.cg"); b=$(total "$dir/200000.cg")
echo "instructions per forwarded ${size}-byte frame: $(( (b - a) / 100000 ))"
for i in 1 2 3; do "$bin" 10000000 "$size"; done
