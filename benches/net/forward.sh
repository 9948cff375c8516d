#!/usr/bin/env bash
# Forwarding through a gateway namespace between a LAN host and a WAN host
# (three namespaces in a line, veths, offloads off everywhere), with the
# gateway being, in the same run, either the Linux kernel (addresses on both
# gateway veths, ip_forward=1) or `ringstack gateway` (AF_XDP drv, or
# AF_PACKET). Measured: TCP throughput of iperf3 LAN -> WAN, and the rate of
# 64-byte UDP datagrams the WAN host receives when the LAN host sends as
# fast as it can (iperf3 -u -l 18 -b 0). Each case runs RUNS times (default
# 3); the table shows the median and the spread. Needs root. The gateway is
# pinned to CPU 1, the hosts to CPU 0.
#
#   sudo benches/net/forward.sh [RUNS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
secs=${2:-5}
log=benches/net/forward-last-run.log
: > "$log"
scripts/install-deps.sh
cargo build --release --locked --bin ringstack 2>&1 | tail -1
R=${CARGO_TARGET_DIR:-target}/release/ringstack
T=rsf$$
L=${T}l; G=${T}g; W=${T}w
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for ns in "$L" "$G" "$W"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -f "/tmp/$T.toml"
}
trap cleanup EXIT
for ns in "$L" "$G" "$W"; do
    ip netns add "$ns"; ip -n "$ns" link set dev lo up
    ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1
done
ip link add "${T}a" netns "$G" type veth peer name "${T}c" netns "$L"
ip link add "${T}b" netns "$G" type veth peer name "${T}d" netns "$W"
ip -n "$L" addr add 198.18.1.2/24 dev "${T}c"; ip -n "$W" addr add 198.51.100.2/24 dev "${T}d"
for x in "$L ${T}c" "$W ${T}d" "$G ${T}a" "$G ${T}b"; do
    set -- $x
    ip -n "$1" link set dev "$2" up
    ip netns exec "$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null
done
ip -n "$L" route add default via 198.18.1.1; ip -n "$W" route add default via 198.51.100.1
cat > "/tmp/$T.toml" <<EOT
[[interface]]
name = "lan"
device = "${T}a"
address = "198.18.1.1/24"

[[interface]]
name = "wan"
device = "${T}b"
address = "198.51.100.1/24"
EOT
ip netns exec "$W" taskset -c 0 iperf3 -s -D -1 >/dev/null 2>&1 || true
kernel_on() {
    ip -n "$G" addr add 198.18.1.1/24 dev "${T}a"; ip -n "$G" addr add 198.51.100.1/24 dev "${T}b"
    ip netns exec "$G" sysctl -q -w net.ipv4.ip_forward=1
}
kernel_off() {
    ip netns exec "$G" sysctl -q -w net.ipv4.ip_forward=0
    ip -n "$G" addr flush dev "${T}a"; ip -n "$G" addr flush dev "${T}b"
}
measure() { # label -> appends "label tcp_mbit udp_kpps"
    local label=$1 tcp udp
    ip netns exec "$W" taskset -c 0 iperf3 -s -1 -D >/dev/null 2>&1; sleep 0.3
    tcp=$(ip netns exec "$L" taskset -c 0 iperf3 -c 198.51.100.2 -t "$secs" -J 2>>"$log" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e6))')
    ip netns exec "$W" taskset -c 0 iperf3 -s -1 -D >/dev/null 2>&1; sleep 0.3
    udp=$(ip netns exec "$L" taskset -c 0 iperf3 -c 198.51.100.2 -u -l 18 -b 0 -t "$secs" -J 2>>"$log" | python3 -c 'import json,sys; e=json.load(sys.stdin)["end"]["sum"]; print(round((e["packets"]-e["lost_packets"])/e["seconds"]/1e3))')
    echo "$label $tcp $udp" | tee -a "$log"
}
results=()
for r in $(seq "$runs"); do
    kernel_on; ip netns exec "$L" ping -c 2 -q 198.51.100.2 >/dev/null
    results+=("$(measure kernel)"); kernel_off
    for drv in "xdp --xdp-attach drv" "xdp --xdp-attach drv --busy-poll" "packet"; do
        ip netns exec "$G" taskset -c 1 "$R" gateway --config "/tmp/$T.toml" --driver $drv >>"$log" 2>&1 &
        pid=$!; pids+=("$pid"); sleep 1.5
        ip netns exec "$L" ping -c 2 -q 198.51.100.2 >/dev/null
        label="ringstack-${drv%% *}"
        case "$drv" in *busy-poll*) label="$label-busy";; esac
        results+=("$(measure "$label")")
        kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    done
done
python3 - "${results[@]}" <<'PY'
import sys, statistics, collections
d = collections.defaultdict(lambda: ([], []))
for line in sys.argv[1:]:
    k, t, u = line.split(); d[k][0].append(int(t)); d[k][1].append(int(u))
print("| gateway | iperf3 TCP Mbit/s, median (min-max) | 64-byte UDP received, kpps, median (min-max) |")
print("|---|---|---|")
for k, (t, u) in d.items():
    print(f"| {k} | {statistics.median(t):.0f} ({min(t)}-{max(t)}) | {statistics.median(u):.0f} ({min(u)}-{max(u)}) |")
PY
