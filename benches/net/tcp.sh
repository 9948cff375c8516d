#!/usr/bin/env bash
# TCP against the kernel on a veth pair, all in one run on one namespace pair
# with the two ends pinned to different cores (ringstack's namespace on
# core 1, the kernel peer's on core 0), as benches/net/run.sh does:
#   1. bulk throughput, BYTES per connection, measured at the receiver:
#      ringstack send -> kernel sink        vs  kernel client -> kernel sink
#      kernel client -> ringstack --discard vs  kernel client -> kernel sink
#      (the kernel baselines run in ringstack's namespace, on the same veth
#      end, given ringstack's address for that part of the run)
#   2. TCP request/response: a kernel client doing 64-byte ping-pong over
#      one connection against ringstack serve --tcp-echo (busy-poll and
#      blocking) vs a kernel TCP echo server (blocking and busy).
# Each case runs RUNS times (default 3); the tables show the median and the
# min-max spread. Needs root. Raw output goes to benches/net/tcp-last-run.log.
#
#   sudo benches/net/tcp.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
bytes=${BYTES:-2000000000}
trips=${TRIPS:-30000}
driver=${DRIVER:---driver xdp --xdp-attach drv}
log=benches/net/tcp-last-run.log
: > "$log"

scripts/install-deps.sh
cargo build --release --locked --bin ringstack --example tcp_kernel_sink --example tcp_kernel_send \
    --example tcp_pingpong --example tcp_kernel_echo 2>&1 | tail -1
R=${CARGO_TARGET_DIR:-target}/release
A=rstA$$; B=rstB$$; VA=rstva$$; VB=rstvb$$
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    ip netns del "$A" 2>/dev/null || true
    ip netns del "$B" 2>/dev/null || true
    rm -f "$log.cpu" "${sinklog:-}" "${sinklog:-}.check"
}
trap cleanup EXIT
ip netns add "$A"; ip netns add "$B"
ip link add "$VA" netns "$A" type veth peer name "$VB" netns "$B"
for ns in "$A" "$B"; do ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1; done
ip -n "$A" link set dev "$VA" up; ip -n "$B" link set dev "$VB" up
ip -n "$A" link set dev lo up; ip -n "$B" link set dev lo up
ip -n "$B" addr add 198.18.0.1/24 dev "$VB"
ip netns exec "$B" ethtool -K "$VB" tx off tso off gso off gro off >/dev/null
SRV="taskset -c 1"; CLI="taskset -c 0"

{
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r)"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "ringstack driver: $driver; bulk $bytes bytes per run; $trips round trips of 64 bytes per run"
} | tee -a "$log"

# CPU seconds (user, system) process $1 has used so far.
tck=$(getconf CLK_TCK)
cpu_of() { awk -v t="$tck" '{print $14 / t, $15 / t}' "/proc/$1/stat"; }
cpu_delta() { echo "$1 $2" | awk '{printf "cpu %.2f user %.2f sys", $3 - $1, $4 - $2}'; }
TIMEFORMAT="cpu %U user %S sys real %R"
# Wait for a background process to print a line matching $2 (max 20 s).
wait_for() { for _ in $(seq 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "timed out waiting for '$2' in $1"; cat "$1"; return 1; }
# Wait until file $1 has more than $2 lines matching $3 (max 60 s).
wait_lines() { for _ in $(seq 600); do [ "$(grep -c "$3" "$1" 2>/dev/null)" -gt "$2" ] && return 0; sleep 0.1; done; echo "timed out waiting in $1"; cat "$1"; return 1; }

# The kernel sink in B for everything sent towards the kernel.
sinklog=$(mktemp)
ip netns exec "$B" $CLI $R/examples/tcp_kernel_sink 198.18.0.1:9000 > "$sinklog" 2>&1 &
pids+=($!)
wait_for "$sinklog" listening

# One checked transfer first: every byte ringstack sends must arrive in order.
ip netns exec "$B" $CLI $R/examples/tcp_kernel_sink 198.18.0.1:9009 --check > "$sinklog.check" 2>&1 &
pids+=($!); chk=$!
wait_for "$sinklog.check" listening
# shellcheck disable=SC2086
ip netns exec "$A" $SRV $R/ringstack send --iface "$VA" --addr 198.18.0.2/24 $driver 198.18.0.1:9009 --bytes 100000000 >> "$log" 2>&1
wait_lines "$sinklog.check" 0 "bytes from"
grep "bytes from" "$sinklog.check" | tee -a "$log"
grep -q "pattern ok" "$sinklog.check" || { echo "ringstack send delivered wrong bytes"; exit 1; }
kill -TERM "$chk"; wait "$chk" 2>/dev/null || true
ip netns exec "$B" ip neigh flush dev "$VB"

echo "== bulk ringstack -> kernel, $bytes bytes" | tee -a "$log"
for variant in "ringstack-blocking:" "ringstack-busy:--busy-poll"; do
    name=${variant%%:*}; args=${variant#*:}
    for r in $(seq "$runs"); do
        before=$(grep -c "bytes from" "$sinklog" || true)
        # bash's time reports the CPU ringstack itself used (ip netns exec
        # and taskset exec it in the same process).
        { time ip netns exec "$A" $SRV $R/ringstack send --iface "$VA" --addr 198.18.0.2/24 $driver $args \
            198.18.0.1:9000 --bytes "$bytes" >> "$log" 2>&1; } 2> "$log.cpu"
        wait_lines "$sinklog" "$before" "bytes from"
        echo "bulk-tx $name run $r: $(grep "bytes from" "$sinklog" | tail -1), ringstack $(cat "$log.cpu")" | tee -a "$log"
        ip netns exec "$B" ip neigh flush dev "$VB"
    done
done

echo "== bulk kernel -> ringstack, $bytes bytes" | tee -a "$log"
for variant in "ringstack-blocking:" "ringstack-busy:--busy-poll"; do
    name=${variant%%:*}; args=${variant#*:}
    for r in $(seq "$runs"); do
        out=$(mktemp)
        # shellcheck disable=SC2086
        ip netns exec "$A" $SRV $R/ringstack serve --iface "$VA" --addr 198.18.0.2/24 $driver $args --discard 9001 > "$out" 2>&1 &
        pids+=($!); p=$!
        wait_for "$out" "serving on"
        c0=$(cpu_of "$p")
        ip netns exec "$B" $CLI $R/examples/tcp_kernel_send 198.18.0.2:9001 "$bytes" >> "$log" 2>&1
        wait_for "$out" "discard: .* bytes from"
        echo "bulk-rx $name run $r: $(grep "discard: .* bytes from" "$out"), ringstack $(cpu_delta "$c0" "$(cpu_of "$p")")" | tee -a "$log"
        kill -TERM "$p"; wait "$p" || true
        grep -E "retrans|rx_dropped|tx_exhausted" "$out" >> "$log" || true
        rm -f "$out"
        ip netns exec "$B" ip neigh flush dev "$VB"
    done
done

echo "== TCP echo, $trips round trips of 64 bytes" | tee -a "$log"
pingpong() { ip netns exec "$B" $CLI $R/examples/tcp_pingpong 198.18.0.2:7 "$trips" 64; }
for variant in "ringstack-busy:--busy-poll" "ringstack-blocking:"; do
    name=${variant%%:*}; args=${variant#*:}
    for r in $(seq "$runs"); do
        out=$(mktemp)
        # shellcheck disable=SC2086
        ip netns exec "$A" $SRV $R/ringstack serve --iface "$VA" --addr 198.18.0.2/24 $driver $args --tcp-echo 7 > "$out" 2>&1 &
        pids+=($!); p=$!
        wait_for "$out" "serving on"
        echo "echo $name run $r: $(pingpong)" | tee -a "$log"
        kill -TERM "$p"; wait "$p" || true
        rm -f "$out"
        ip netns exec "$B" ip neigh flush dev "$VB"
    done
done

# The kernel baselines: the same veth end, now with the kernel's address.
ip -n "$A" addr add 198.18.0.2/24 dev "$VA"
ip netns exec "$A" ethtool -K "$VA" tx off tso off gso off gro off >/dev/null

echo "== bulk kernel -> kernel, $bytes bytes" | tee -a "$log"
for r in $(seq "$runs"); do
    before=$(grep -c "bytes from" "$sinklog" || true)
    ip netns exec "$A" $SRV $R/examples/tcp_kernel_send 198.18.0.1:9000 "$bytes" >> "$log" 2>&1
    wait_lines "$sinklog" "$before" "bytes from"
    echo "bulk-tx kernel run $r: $(grep "bytes from" "$sinklog" | tail -1)" | tee -a "$log"
done
out=$(mktemp)
ip netns exec "$A" $SRV $R/examples/tcp_kernel_sink 198.18.0.2:9001 > "$out" 2>&1 &
pids+=($!); p=$!
wait_for "$out" listening
for r in $(seq "$runs"); do
    before=$(grep -c "bytes from" "$out" || true)
    ip netns exec "$B" $CLI $R/examples/tcp_kernel_send 198.18.0.2:9001 "$bytes" >> "$log" 2>&1
    wait_lines "$out" "$before" "bytes from"
    echo "bulk-rx kernel run $r: $(grep "bytes from" "$out" | tail -1)" | tee -a "$log"
done
kill -TERM "$p"; wait "$p" 2>/dev/null || true

for variant in "kernel-blocking:" "kernel-busy:--busy"; do
    name=${variant%%:*}; args=${variant#*:}
    for r in $(seq "$runs"); do
        # shellcheck disable=SC2086
        ip netns exec "$A" $SRV $R/examples/tcp_kernel_echo 198.18.0.2:7 $args &
        pids+=($!); p=$!
        sleep 0.3
        echo "echo $name run $r: $(pingpong)" | tee -a "$log"
        kill -TERM "$p"; wait "$p" 2>/dev/null || true
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"

python3 - "$log" <<'PY'
import re, sys, statistics
bulk, echo = {}, {}
for line in open(sys.argv[1]):
    m = re.match(r"(bulk-tx|bulk-rx) (\S+) run \d+: .*?(\d+) bytes from .* in ([\d.]+) s \(([\d.]+) Mbit/s\)(?:.*ringstack cpu ([\d.]+) user ([\d.]+) sys(?: real ([\d.]+))?)?", line)
    if m:
        # CPU share of the ringstack process, (user + sys) over its whole
        # life (send) or over the transfer (serve --discard, CPU sampled
        # before the sender starts and after the transfer).
        share = (float(m[6]) + float(m[7])) / float(m[8] or m[4]) * 100 if m[6] else None
        bulk.setdefault((m[1], m[2]), []).append((float(m[5]), share))
    m = re.match(r"echo (\S+) run \d+: .*: (\d+) trans/s, rtt p50 ([\d.]+) us p99 ([\d.]+) us", line)
    if m: echo.setdefault(m[1], []).append((float(m[2]), float(m[3]), float(m[4])))
def cell(v, fmt):
    return f"{fmt.format(statistics.median(v))} ({fmt.format(min(v))}–{fmt.format(max(v))})"
print("\n| direction | sender → receiver | Mbit/s, median (min–max) | ringstack process CPU % |\n|---|---|---|---|")
for (d, k), v in bulk.items():
    if k == "kernel":
        who = "kernel → kernel sink"
    else:
        who = f"{k} send → kernel sink" if d == "bulk-tx" else f"kernel → {k} discard"
    shares = [x[1] for x in v if x[1] is not None]
    cpu = cell(shares, '{:.0f}') if shares else "–"
    print(f"| {'A → B' if d == 'bulk-tx' else 'B → A'} | {who} | {cell([x[0] for x in v], '{:.0f}')} | {cpu} |")
print("\n| echo server | trans/s | RTT p50 µs | RTT p99 µs |\n|---|---|---|---|")
for k, v in echo.items():
    print(f"| {k} | {cell([x[0] for x in v], '{:.0f}')} | {cell([x[1] for x in v], '{:.1f}')} | {cell([x[2] for x in v], '{:.1f}')} |")
PY
