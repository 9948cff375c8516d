#!/usr/bin/env bash
# Many concurrent TCP connections between two ringstack stacks in one
# thread (examples/many_flows): instructions per unit of work under
# callgrind, and throughput by the wall clock, for 1, 100 and 4000
# connections in both modes (rr: 64-byte request and response per
# transaction; stream: bulk, one full segment per connection in turn).
#
# callgrind: each case at two amounts of work; the difference of the totals
# over the difference in work is the steady-state cost, connection setup
# cancelled out. The wall-clock runs (about a second each) go round all
# cases RUNS times (default 5), so a slow spell of the machine hits every case alike; each cell is the
# median with the range.
#
#   benches/many_flows.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)"; exit 1; }
cargo build --release --locked --example many_flows 2>&1 | tail -1
bin=${CARGO_TARGET_DIR:-target}/release/examples/many_flows
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r), $(rustc --version), commit $(git rev-parse --short HEAD)"

# name:mode:flows:callgrind work 1:callgrind work 2:wall-clock work[:extra args]
cases=(
    "rr-1:rr:1:4000:12000:1000000"
    "rr-100:rr:100:4000:12000:1000000"
    "rr-4000:rr:4000:4000:12000:500000"
    "stream-1:stream:1:10000:30000:2000000"
    "stream-100:stream:100:10000:30000:1000000"
    "stream-4000:stream:4000:10000:30000:500000"
)
# The client's address count at 4000 connections (rr): what the stack's
# linear own-address checks cost (callgrind only).
sweep=(
    "rr-4000-a1:rr:4000:4000:12000:0:--addrs 1"
    "rr-4000-a64:rr:4000:4000:12000:0:--addrs 64"
    "rr-4000-a256:rr:4000:4000:12000:0:--addrs 256"
    "rr-4000-a1000:rr:4000:4000:12000:0:--addrs 1000"
)

for c in "${cases[@]}" "${sweep[@]}"; do
    IFS=: read -r name mode n w1 w2 _ extra <<<"$c"
    for w in "$w1" "$w2"; do
        # shellcheck disable=SC2086
        valgrind --tool=callgrind --callgrind-out-file="$dir/$name.$w.cg" "$bin" "$mode" "$n" "$w" $extra \
            >"$dir/$name.$w.cg.txt" 2>"$dir/$name.$w.log" || { cat "$dir/$name.$w.log"; exit 1; }
    done
done
for r in $(seq "$runs"); do
    for c in "${cases[@]}"; do
        IFS=: read -r name mode n _ _ wt extra <<<"$c"
        # shellcheck disable=SC2086
        "$bin" "$mode" "$n" "$wt" $extra >"$dir/$name.run$r.txt"
    done
done

python3 - "$dir" "$runs" "${cases[@]}" -- "${sweep[@]}" <<'PY'
import re, statistics, sys
d, runs = sys.argv[1], int(sys.argv[2])
rest = sys.argv[3:]
cases, sweep = rest[:rest.index("--")], rest[rest.index("--") + 1:]
LINE = re.compile(r"addrs (\d+) ts \w+: (\d+) \w+ in ([\d.]+) s, ([\d.]+) (\S+), (\d+) rounds, "
                  r"(\d+) frames client to server, (\d+) frames server to client")

def parse(path):
    m = LINE.search(open(path).read())
    return dict(addrs=int(m[1]), work=int(m[2]), secs=float(m[3]), rate=float(m[4]), unit=m[5],
                rounds=int(m[6]), ab=int(m[7]), ba=int(m[8]))

def cost(name, w1, w2):
    t = {}
    for w in (w1, w2):
        r = parse(f"{d}/{name}.{w}.cg.txt")
        r["ir"] = int(re.search(r"^totals: (\d+)", open(f"{d}/{name}.{w}.cg").read(), re.M)[1])
        t[w] = r
    a, b = t[w1], t[w2]
    work = b["work"] - a["work"]
    data = b["ab"] - a["ab"]
    back = b["ba"] - a["ba"]
    return dict(addrs=b["addrs"], per_work=(b["ir"] - a["ir"]) / work,
                per_frame=(b["ir"] - a["ir"]) / (data + back),
                frames=(data + back) / work, back=back / work,
                per_round=work / (b["rounds"] - a["rounds"]))

print(f"\ncallgrind, instructions per unit of work, both ends (steady state);"
      f" wall clock: median (min–max) of {runs} runs\n")
print("| mode | connections | client addresses | instructions per unit | per frame | frames per unit | units per round | throughput |")
print("|---|---|---|---|---|---|---|---|")
for c in cases:
    name, mode, n, w1, w2, wt = c.split(":")[:6]
    k = cost(name, w1, w2)
    rates = sorted(parse(f"{d}/{name}.run{r}.txt")["rate"] for r in range(1, runs + 1))
    unit = parse(f"{d}/{name}.run1.txt")["unit"]
    fmt = lambda x: f"{x / 1000:,.0f} k" if unit == "transactions/s" else f"{x:,.0f}"
    what = "transaction" if mode == "rr" else "data segment"
    print(f"| {mode} | {n} | {k['addrs']} | {k['per_work']:.0f} per {what} | {k['per_frame']:.0f} | "
          f"{k['frames']:.3f} | {k['per_round']:.1f} | {fmt(statistics.median(rates))} {unit} "
          f"({fmt(rates[0])}–{fmt(rates[-1])}) |")
print("\nrr at 4000 connections by the client's address count (callgrind)\n")
print("| client addresses | instructions per transaction | per frame |")
print("|---|---|---|")
for c in [cases[2]] + sweep:
    name, mode, n, w1, w2 = c.split(":")[:5]
    k = cost(name, w1, w2)
    print(f"| {k['addrs']} | {k['per_work']:.0f} | {k['per_frame']:.0f} |")
PY
