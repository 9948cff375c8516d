#!/usr/bin/env bash
# Instructions per data segment of a bulk TCP transfer between two stacks in
# one thread, ringstack vs smoltcp 0.12, counted with callgrind (the same
# count on every run, whatever else the machine does).
#
# examples/tcp_cost moves N × 1460 bytes; it runs at N1 and N2 segments and
# the difference of the totals over the difference in data frames is one
# data segment's cost for both ends together (sender, receiver, the ACKs).
# The split by where the instructions go comes from callgrind_annotate,
# by source file (inlined code included): the Internet checksum, memcpy,
# memset, and everything else (protocol, headers, device, application loop).
#
#   benches/tcp_cost.sh [N1 N2]
set -euo pipefail
cd "$(dirname "$0")/.."
n1=${1:-1000}
n2=${2:-11000}
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)"; exit 1; }
cargo build --release --locked --example tcp_cost 2>&1 | tail -1
bin=${CARGO_TARGET_DIR:-target}/release/examples/tcp_cost
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r), $(rustc --version)"
for c in "smoltcp:--no-ts" "ringstack:--no-ts" "ringstack:"; do
    stack=${c%%:*}; flag=${c#*:}; name=$stack${flag:+_$flag}
    for n in "$n1" "$n2"; do
        # shellcheck disable=SC2086
        valgrind --tool=callgrind --callgrind-out-file="$dir/$name.$n.cg" "$bin" "$stack" "$n" $flag \
            > "$dir/$name.$n.txt" 2> "$dir/$name.$n.log"
    done
done
python3 - "$dir" "$n1" "$n2" <<'PY'
import collections, re, subprocess, sys
d, n1, n2 = sys.argv[1], sys.argv[2], sys.argv[3]
def frames(name, n):
    t = open(f"{d}/{name}.{n}.txt").read()
    return int(re.search(r"(\d+) frames data way", t)[1]), int(re.search(r"(\d+) frames ACK way", t)[1])
def costs(name, n):
    out = subprocess.run(["callgrind_annotate", "--auto=no", "--threshold=100", f"{d}/{name}.{n}.cg"],
                         capture_output=True, text=True, check=True).stdout
    c = collections.Counter()
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(.*)", line)
        if not m or "PROGRAM TOTALS" in m[2]:
            continue
        where = m[2]
        k = ("checksum" if "checksum" in where else
             "memcpy" if "memcpy" in where or "memmove" in where else
             "memset" if "memset" in where else "rest")
        c[k] += int(m[1].replace(",", ""))
    return c
rows = [("smoltcp 0.12, no timestamps", "smoltcp_--no-ts"),
        ("ringstack, no timestamps", "ringstack_--no-ts"),
        ("ringstack, timestamps (default)", "ringstack")]
print(f"\nN1 = {n1}, N2 = {n2} segments of 1460 bytes; per data segment, both ends\n")
print("| stack | instructions | checksum | memcpy + memset | rest | ACKs per data segment |")
print("|---|---|---|---|---|---|")
for label, name in rows:
    (f1, a1), (f2, a2) = frames(name, n1), frames(name, n2)
    c1, c2 = costs(name, n1), costs(name, n2)
    per = {k: (c2[k] - c1[k]) / (f2 - f1) for k in set(c1) | set(c2)}
    tot = sum(per.values())
    print(f"| {label} | {tot:.0f} | {per.get('checksum', 0):.0f} | "
          f"{per.get('memcpy', 0) + per.get('memset', 0):.0f} | {per.get('rest', 0):.0f} | "
          f"{(a2 - a1) / (f2 - f1):.3f} |")
PY
