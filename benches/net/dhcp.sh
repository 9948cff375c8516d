#!/usr/bin/env bash
# DHCP server leases per second over a veth, in one run: the server in one
# namespace is, in turn, `ringstack serve --dhcp-server` (AF_PACKET, then
# AF_XDP drv; lease file fsynced per lease, lease time 3600 s) and dnsmasq
# (--no-ping, logging off, lease file on the same disk); the load generator
# (examples/dhcp_load.rs, AF_PACKET) in the other namespace runs N distinct
# client MACs through DISCOVER -> OFFER -> REQUEST -> ACK with WINDOW
# exchanges outstanding. Each case runs RUNS times (default 3), each against
# a fresh lease file; the table shows the median and the spread. Needs root.
# The server is pinned to CPU 1, the generator to CPU 0.
#
# ringstack probes every address with ARP before offering it (500 ms without
# an answer, at most 64 probes pending) and `serve` has no switch to turn
# that off, so its rate is measured as shipped. Its table holds 4096 entries
# (bindings, offers, probes): keep N below that.
#
#   sudo benches/net/dhcp.sh [RUNS] [N] [WINDOW]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
n=${2:-2000}
window=${3:-64}
log=benches/net/dhcp-last-run.log
: > "$log"
scripts/install-deps.sh
cargo build --release --locked --bin ringstack --example dhcp_load 2>&1 | tail -1
R=${CARGO_TARGET_DIR:-target}/release/ringstack
G=${CARGO_TARGET_DIR:-target}/release/examples/dhcp_load
T=rsd$$
S=${T}s; C=${T}c
tmp=$(mktemp -d /var/tmp/ringstack-dhcp.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for ns in "$S" "$C"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
for ns in "$S" "$C"; do
    ip netns add "$ns"; ip -n "$ns" link set dev lo up
    ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1
done
ip link add "${T}a" netns "$S" type veth peer name "${T}b" netns "$C"
for x in "$S ${T}a" "$C ${T}b"; do
    set -- $x
    ip -n "$1" link set dev "$2" up
    ip netns exec "$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null
done
first=198.18.1.0; last=198.18.200.255
generate() { # label -> prints "label leases_per_s p50_ms p99_ms"
    local out
    out=$(ip netns exec "$C" taskset -c 0 "$G" "${T}b" "$n" "$window" 2000 120 2>>"$log") \
        || { echo "$1: $out" >>"$log"; echo "dhcp_load failed for $1 (see $log)" >&2; return 1; }
    echo "$1: $out" >>"$log"
    python3 -c 'import sys; d=dict(kv.split("=") for kv in sys.argv[2:]); print(sys.argv[1], d["rate"], d["p50_ms"], d["p99_ms"])' "$1" $out
}
results=()
for r in $(seq "$runs"); do
    for drv in packet "xdp --xdp-attach drv" "packet --dhcp-probe-ms 0"; do
        rm -f "$tmp/ringstack.leases"
        echo "== ringstack --driver $drv, run $r" >>"$log"
        ip netns exec "$S" taskset -c 1 "$R" serve --iface "${T}a" --driver $drv \
            --addr 198.18.0.1/16 --dhcp-server "$first-$last" \
            --lease-file "$tmp/ringstack.leases" --lease-time 3600 >>"$log" 2>&1 &
        pid=$!; pids+=("$pid"); sleep 1.5
        label="ringstack-${drv%% *}"
        case "$drv" in *probe-ms*) label="$label-no-probe";; esac
        results+=("$(generate "$label")")
        kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    done
    rm -f "$tmp/dnsmasq.leases"
    echo "== dnsmasq, run $r" >>"$log"
    ip -n "$S" addr add 198.18.0.1/16 dev "${T}a"
    ip netns exec "$S" taskset -c 1 dnsmasq --no-daemon --conf-file=/dev/null --port=0 \
        --bind-interfaces --interface="${T}a" --except-interface=lo \
        --dhcp-range="$first,$last,1h" --dhcp-leasefile="$tmp/dnsmasq.leases" \
        --dhcp-authoritative --no-ping --dhcp-lease-max=1000000 \
        --log-facility=/dev/null --quiet-dhcp --pid-file="$tmp/dnsmasq.pid" >>"$log" 2>&1 &
    pid=$!; pids+=("$pid"); sleep 1
    results+=("$(generate dnsmasq)")
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    echo "dnsmasq lease file: $(wc -l < "$tmp/dnsmasq.leases") lines" >>"$log"
    ip -n "$S" addr flush dev "${T}a"
done
echo "$(lscpu | sed -n 's/^Model name: *//p'), $(date -u +%F), N=$n, window=$window"
python3 - "${results[@]}" <<'PY'
import sys, statistics, collections
d = collections.defaultdict(lambda: ([], [], []))
for line in sys.argv[1:]:
    k, *v = line.split()
    for l, x in zip(d[k], v):
        l.append(float(x))
print("| server | leases/s, median (min-max) | DISCOVER→ACK p50 ms, median (min-max) | p99 ms, median (min-max) |")
print("|---|---|---|---|")
f = lambda l, p: f"{statistics.median(l):.{p}f} ({min(l):.{p}f}-{max(l):.{p}f})"
for k, (r, p50, p99) in d.items():
    print(f"| {k} | {f(r, 0)} | {f(p50, 1)} | {f(p99, 1)} |")
PY
