#!/usr/bin/env bash
# Network benchmarks for the fast path, all in one run on one namespace pair
# with the two ends pinned to different cores:
#   1. receive rate of 64-byte frames into the stack: AF_PACKET with a
#      TPACKET_V2 and a TPACKET_V3 ring vs AF_XDP (skb, drv)
#   2. UDP echo transactions/s and RTT p50/p99 from a kernel client:
#      ringstack AF_XDP vs ringstack AF_PACKET (V2 and V3 rings, busy and
#      blocking) vs a kernel UDP echo socket.
# Each case runs RUNS times (default 3); the table shows the median and the
# min-max spread. Needs root. Raw output goes to benches/net/last-run.log.
#
#   sudo [FRAMES=N] [TRIPS=N] [QUIET=PCT] benches/net/run.sh [RUNS]
#
# QUIET=PCT: on a shared machine, wait before every run (up to QUIET_WAIT
# seconds, default 120) until other processes keep the CPUs less than PCT %
# busy over one second; the busy figure seen is logged with each run.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
frames=${FRAMES:-2000000}
trips=${TRIPS:-50000}
log=benches/net/last-run.log
: > "$log"

scripts/install-deps.sh
cargo build --release --locked --bin ringstack --example blast --example rx_rate --example udp_pingpong --example kernel_udp_echo 2>&1 | tail -1
R=${CARGO_TARGET_DIR:-target}/release
A=rsbA$$; B=rsbB$$; VA=rsbva$$; VB=rsbvb$$
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    ip netns del "$A" 2>/dev/null || true
    ip netns del "$B" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$A"; ip netns add "$B"
ip link add "$VA" netns "$A" type veth peer name "$VB" netns "$B"
for ns in "$A" "$B"; do ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1; done
ip -n "$A" link set dev "$VA" up; ip -n "$B" link set dev "$VB" up
ip -n "$B" addr add 198.18.0.1/24 dev "$VB"
ip netns exec "$B" ethtool -K "$VB" tx off tso off gso off gro off >/dev/null
MAC=$(ip -n "$A" link show dev "$VA" | awk '/ether/ {print $2}')
SRV="taskset -c 1"; CLI="taskset -c 0"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r)" | tee -a "$log"

# With QUIET set, wait until the machine is idle enough; print what was seen.
# own_load: the share our own busy loop takes (50: one core of two).
own_load=0
settle() {
    [ -n "${QUIET:-}" ] || return 0
    local busy=100 u n s i w q sq st t1 i1 t2 i2
    for _ in $(seq "${QUIET_WAIT:-120}"); do
        read -r _ u n s i w q sq st _ < /proc/stat; t1=$((u+n+s+i+w+q+sq+st)); i1=$((i+w))
        sleep 1
        read -r _ u n s i w q sq st _ < /proc/stat; t2=$((u+n+s+i+w+q+sq+st)); i2=$((i+w))
        busy=$(( 100 - 100 * (i2 - i1) / (t2 - t1) ))
        [ "$busy" -lt $((QUIET + own_load)) ] && break
    done
    echo "[other load ${busy}%]"
}

# Wait for a background process to print a line matching $2 (max 20 s).
wait_for() { for _ in $(seq 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "timed out waiting for '$2' in $1"; cat "$1"; return 1; }

# One receive-rate run: rx NAME MODE [BLOCKS] (BLOCKS: PACKET_BLOCKS for rx_rate).
rx() {
    local out load p
    out=$(mktemp)
    load=$(settle)
    PACKET_BLOCKS=${3:-} ip netns exec "$A" $SRV $R/examples/rx_rate "$2" "$VA" 5 > "$out" 2>&1 &
    pids+=($!); p=$!
    wait_for "$out" ready
    ip netns exec "$B" $CLI $R/examples/blast "$VB" "$MAC" "$frames" 60 >> "$log" 2>&1
    wait "$p" || true
    echo "rx $1 run $r: $(grep received "$out") $load" | tee -a "$log"
    rm -f "$out"
}

# Runs are interleaved (round r of every mode, then round r+1) so that a
# burst of load from elsewhere on a shared machine does not land on one mode.
echo "== receive rate, $frames frames of 60 bytes" | tee -a "$log"
for r in $(seq "$runs"); do
    for mode in packet-v2 packet-v3 xdp-skb xdp-drv; do rx "$mode" "$mode"; done
done

# The same with a busy loop sharing the receiver's core: the receiver gets
# about half of it and is descheduled for milliseconds at a time, so what
# counts is how many frames its ring holds until it runs again. V2 at the
# V3 default's 4 MiB (2048 slots) shows why V2's default ring is 16 MiB.
echo "== receive rate, receiver sharing its core with a busy loop" | tee -a "$log"
taskset -c 1 bash -c 'while :; do :; done' &
hog=$!; pids+=("$hog"); own_load=$((100 / $(nproc)))
for r in $(seq "$runs"); do
    rx hogged-packet-v2 packet-v2
    rx hogged-packet-v2-4MiB packet-v2 16
    rx hogged-packet-v3 packet-v3
    rx hogged-xdp-skb xdp-skb
done
kill -TERM "$hog"; wait "$hog" 2>/dev/null || true; own_load=0

echo "== UDP echo, $trips round trips of 64 bytes" | tee -a "$log"
pingpong() { ip netns exec "$B" $CLI $R/examples/udp_pingpong 198.18.0.2:7 "$trips" 64; }
for r in $(seq "$runs"); do
    for variant in "xdp-busy:--driver xdp --xdp-attach drv --busy-poll" "xdp-blocking:--driver xdp --xdp-attach drv" \
        "packet-v2-busy:--driver packet --packet-ring v2 --busy-poll" "packet-v2-blocking:--driver packet --packet-ring v2" \
        "packet-v3-busy:--driver packet --packet-ring v3 --busy-poll" "packet-v3-blocking:--driver packet --packet-ring v3"; do
        name=${variant%%:*}; args=${variant#*:}
        out=$(mktemp)
        load=$(settle)
        # shellcheck disable=SC2086
        ip netns exec "$A" $SRV $R/ringstack serve --iface "$VA" --addr 198.18.0.2/24 --udp-echo 7 $args > "$out" 2>&1 &
        pids+=($!); p=$!
        wait_for "$out" "serving on"
        echo "echo ringstack-$name run $r: $(pingpong) $load" | tee -a "$log"
        kill -TERM "$p"; wait "$p" || true
        rm -f "$out"
        ip netns exec "$B" ip neigh flush dev "$VB"
    done
done
ip -n "$A" addr add 198.18.0.2/24 dev "$VA"
ip netns exec "$A" ethtool -K "$VA" tx off tso off gso off gro off >/dev/null
for variant in "kernel-blocking:" "kernel-busy:--busy"; do
    name=${variant%%:*}; args=${variant#*:}
    for r in $(seq "$runs"); do
        load=$(settle)
        # shellcheck disable=SC2086
        ip netns exec "$A" $SRV $R/examples/kernel_udp_echo 198.18.0.2:7 $args &
        pids+=($!); p=$!
        sleep 0.3
        echo "echo $name run $r: $(pingpong) $load" | tee -a "$log"
        kill -TERM "$p"; wait "$p" 2>/dev/null || true
    done
done

python3 - "$log" <<'PY'
import re, sys, statistics
rx, echo = {}, {}
for line in open(sys.argv[1]):
    m = re.match(r"rx (\S+) run \d+: .* received (\d+) frames .* ([\d.]+) Mpps", line)
    if m: rx.setdefault(m[1], []).append((float(m[3]), int(m[2])))
    m = re.match(r"echo (\S+) run \d+: .*: (\d+) trans/s, rtt p50 ([\d.]+) us p99 ([\d.]+) us", line)
    if m: echo.setdefault(m[1], []).append((float(m[2]), float(m[3]), float(m[4])))
def cell(v, fmt):
    return f"{fmt.format(statistics.median(v))} ({fmt.format(min(v))}–{fmt.format(max(v))})"
print("\n| receiver | Mpps, median (min–max) | frames received |\n|---|---|---|")
for k, v in rx.items(): print(f"| {k} | {cell([x[0] for x in v], '{:.3f}')} | {cell([x[1] for x in v], '{:.0f}')} |")
print("\n| echo server | trans/s | RTT p50 µs | RTT p99 µs |\n|---|---|---|---|")
for k, v in echo.items():
    print(f"| {k} | {cell([x[0] for x in v], '{:.0f}')} | {cell([x[1] for x in v], '{:.1f}')} | {cell([x[2] for x in v], '{:.1f}')} |")
PY
