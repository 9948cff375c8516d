#!/usr/bin/env bash
# Congestion control against the kernel over a shaped link, all in one run:
#
#   A (ringstack) --veth-- M (Linux bridge, HTB + bfifo) --veth-- B (kernel)
#
# The bottleneck is in the middle namespace: HTB at RATE on the egress of
# each bridge port (towards B for A -> B, towards A for B -> A), with a
# bfifo child of QUEUE bytes (default: one BDP of a 10 ms RTT at RATE).
# Shaping at the sender would not work: AF_XDP and AF_PACKET bypass the
# sender's own qdisc. There is no delay line: the base RTT is the veth RTT
# (well under 1 ms), so the queue at the bottleneck dominates the RTT.
#
#   1. ringstack send --cc reno|cubic|bbr (and reno, cubic with --pace)
#      -> kernel sink in B: receiver-side Mbit/s and ringstack's
#      retransmissions;
#   2. the kernel in B sending with cubic and bbr (per socket,
#      TCP_CONGESTION: the namespace sysctl refuses bbr unless the host
#      allows it) -> ringstack serve --discard in A: Mbit/s counted by
#      ringstack and the kernel's RetransSegs delta (/proc/net/snmp in B);
#   3. the kernel -> kernel baselines over the same link, A's veth end
#      given ringstack's address for that part: cubic and bbr, A -> B and
#      B -> A.
# Every transfer also records the drops at the bottleneck (tc -s).
# Each case runs RUNS times (default 3); the table shows the median and
# min-max. Needs root. Raw output goes to benches/net/cc-last-run.log.
#
#   sudo benches/net/cc.sh [RUNS]
#   env: BYTES (default 50000000), RATE (mbit, default 100),
#        QUEUE (bytes, default RATE x 10 ms), DRIVER (default --driver xdp)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
bytes=${BYTES:-50000000}
rate=${RATE:-100}
queue=${QUEUE:-$((rate * 1000000 / 8 / 100))}
driver=${DRIVER:---driver xdp}
log=benches/net/cc-last-run.log
: > "$log"

if [ "$(id -u)" -ne 0 ]; then echo "cc.sh: needs root (network namespaces)" >&2; exit 1; fi
scripts/install-deps.sh
cargo build --release --locked --bin ringstack --example tcp_kernel_sink --example tcp_kernel_send 2>&1 | tail -1
R=${CARGO_TARGET_DIR:-target}/release
A=rccA$$; M=rccM$$; B=rccB$$
VA=rcva$$; MA=rcma$$; MB=rcmb$$; VB=rcvb$$; BR=rcbr$$
pids=()
tmp=$(mktemp -d)
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    for ns in "$A" "$M" "$B"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

for ns in "$A" "$M" "$B"; do
    ip netns add "$ns"
    ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1
    ip netns exec "$ns" sysctl -q -w net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" link set dev lo up
done
ip link add "$VA" netns "$A" type veth peer name "$MA" netns "$M"
ip link add "$VB" netns "$B" type veth peer name "$MB" netns "$M"
ip -n "$M" link add name "$BR" type bridge forward_delay 0 stp_state 0
for dev in "$MA" "$MB"; do
    ip -n "$M" link set dev "$dev" master "$BR"
    ip netns exec "$M" ethtool -K "$dev" tx off tso off gso off gro off >/dev/null
    ip -n "$M" link set dev "$dev" up
done
ip -n "$M" link set dev "$BR" up
ip -n "$A" link set dev "$VA" up
ip -n "$B" link set dev "$VB" up
ip -n "$B" addr add 198.18.0.1/24 dev "$VB"
ip netns exec "$B" ethtool -K "$VB" tx off tso off gso off gro off >/dev/null
# The bottleneck, one per direction, on the bridge port towards the receiver.
for dev in "$MB" "$MA"; do
    ip netns exec "$M" tc qdisc add dev "$dev" root handle 1: htb default 10
    ip netns exec "$M" tc class add dev "$dev" parent 1: classid 1:10 htb rate "${rate}mbit" quantum 1514
    ip netns exec "$M" tc qdisc add dev "$dev" parent 1:10 handle 10: bfifo limit "$queue"
done
SRV="taskset -c 1"; CLI="taskset -c 0"

{
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r)"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "link: HTB rate ${rate}mbit + bfifo limit $queue bytes on each bridge port's egress, no added delay"
    echo "ringstack driver: $driver; $bytes bytes per transfer; $runs runs"
    echo "ringstack: $($R/ringstack --version 2>/dev/null || echo '?'), git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
} | tee -a "$log"

# Wait for a file to have more than $2 lines matching $3 (max $4 s, default 60).
wait_lines() {
    local n=$(( ${4:-60} * 10 ))
    for _ in $(seq "$n"); do
        [ "$(grep -c "$3" "$1" 2>/dev/null)" -gt "$2" ] && return 0
        sleep 0.1
    done
    echo "timed out waiting for '$3' in $1" | tee -a "$log"
    return 1
}
# The bfifo drop counter at the bottleneck on bridge port $1.
drops() { ip netns exec "$M" tc -s qdisc show dev "$1" | awk '/^qdisc bfifo/ {f = 1} f && /dropped/ {gsub(/[(),]/, ""); for (i = 1; i < NF; i++) if ($i == "dropped") {print $(i + 1); exit}}'; }
# TCP RetransSegs in namespace $1.
retrans_segs() { ip netns exec "$1" awk '/^Tcp:/ {if (!h) {for (i = 1; i <= NF; i++) if ($i == "RetransSegs") c = i; h = 1} else print $c}' /proc/net/snmp; }

# One kernel sender: kernel_send NS PIN DST CC REPORTLOG PATTERN BOTTLENECK LABEL.
# Sends $bytes from namespace NS (pinned with PIN) to DST with congestion
# control CC, waits for the receiver's line matching PATTERN in REPORTLOG,
# and records it with the bottleneck's drops and the sender's RetransSegs.
kernel_send() {
    local ns=$1 pin=$2 dst=$3 cc=$4 replog=$5 pat=$6 port=$7 label=$8 before d0 s0 rep
    before=$(grep -c "$pat" "$replog" || true)
    d0=$(drops "$port"); s0=$(retrans_segs "$ns")
    # shellcheck disable=SC2086
    ip netns exec "$ns" $pin $R/examples/tcp_kernel_send "$dst" "$bytes" "$cc" >> "$log" 2>&1 || echo "kernel send failed" | tee -a "$log"
    rep="(no report from the receiver)"
    wait_lines "$replog" "$before" "$pat" 30 && rep=$(grep "$pat" "$replog" | tail -1)
    echo "$label: $rep; drops $(( $(drops "$port") - d0 )); kernel RetransSegs $(( $(retrans_segs "$ns") - s0 ))" | tee -a "$log"
}

# The kernel sink in B for everything sent towards the kernel.
sinklog=$tmp/sink
ip netns exec "$B" $CLI $R/examples/tcp_kernel_sink 198.18.0.1:9000 > "$sinklog" 2>&1 &
pids+=($!)
wait_lines "$sinklog" 0 listening 20

for r in $(seq "$runs"); do
    echo "== run $r: ringstack -> kernel, then kernel -> ringstack" | tee -a "$log"
    for variant in "reno:--cc reno" "cubic:--cc cubic" "bbr:--cc bbr" "reno+pace:--cc reno --pace" "cubic+pace:--cc cubic --pace"; do
        name=${variant%%:*}; args=${variant#*:}
        before=$(grep -c "bytes from" "$sinklog" || true)
        d0=$(drops "$MB")
        rc=0
        # shellcheck disable=SC2086
        out=$(ip netns exec "$A" $SRV $R/ringstack send --iface "$VA" --addr 198.18.0.2/24 $driver $args \
            198.18.0.1:9000 --bytes "$bytes" 2>&1) || rc=$?
        echo "$out" >> "$log"
        sink="(no sink report)"
        wait_lines "$sinklog" "$before" "bytes from" 30 && sink=$(grep "bytes from" "$sinklog" | tail -1)
        sent=$(echo "$out" | grep "^sent " | tail -1 || true)
        echo "ringstack-$name run $r: rc $rc; $sink; drops $(( $(drops "$MB") - d0 )); ${sent:-send failed: $(echo "$out" | tail -1)}" | tee -a "$log"
    done
    # ringstack's discard server in A, up only while the kernel sends to it
    # (ringstack send needs the interface to itself).
    srvlog=$tmp/serve$r
    # shellcheck disable=SC2086
    ip netns exec "$A" $SRV $R/ringstack serve --iface "$VA" --addr 198.18.0.2/24 $driver --discard 9001 > "$srvlog" 2>&1 &
    pids+=($!); srv=$!
    wait_lines "$srvlog" 0 "serving on" 20
    for cc in cubic bbr; do
        kernel_send "$B" "$CLI" 198.18.0.2:9001 "$cc" "$srvlog" "discard: .* bytes from" "$MA" "kernel-$cc-to-ringstack run $r"
    done
    kill -TERM "$srv"; wait "$srv" 2>/dev/null || true
    sed -n '/--- ringstack counters ---/,$p' "$srvlog" >> "$log"
done

# The kernel baselines: the same veth end, now with the kernel's address.
ip -n "$A" addr add 198.18.0.2/24 dev "$VA"
ip netns exec "$A" ethtool -K "$VA" tx off tso off gso off gro off >/dev/null
ip netns exec "$B" ip neigh flush dev "$VB"
asink=$tmp/asink
ip netns exec "$A" $SRV $R/examples/tcp_kernel_sink 198.18.0.2:9001 > "$asink" 2>&1 &
pids+=($!)
wait_lines "$asink" 0 listening 20
for r in $(seq "$runs"); do
    echo "== run $r: kernel -> kernel" | tee -a "$log"
    for cc in cubic bbr; do
        kernel_send "$A" "$SRV" 198.18.0.1:9000 "$cc" "$sinklog" "bytes from" "$MB" "kernel-$cc-A-to-B run $r"
        kernel_send "$B" "$CLI" 198.18.0.2:9001 "$cc" "$asink" "bytes from" "$MA" "kernel-$cc-B-to-A run $r"
    done
done
for dev in "$MB" "$MA"; do
    echo "bottleneck $dev:" >> "$log"
    ip netns exec "$M" tc -s qdisc show dev "$dev" >> "$log"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"

python3 - "$log" "$rate" > "$tmp/table" <<'PY'
import re, sys, statistics
rows = {}
order = []
for line in open(sys.argv[1]):
    m = re.match(r"([a-z][\w+-]*) run \d+: (.*)", line)
    if not m:
        continue
    case, rest = m[1], m[2]
    mb = re.search(r"(\d+) bytes from \S+ in [\d.]+ s \(([\d.]+) Mbit/s\)", rest)
    rt = re.search(r"(\d+) retransmissions|RetransSegs (-?\d+)", rest)
    dr = re.search(r"drops (-?\d+)", rest)
    cc = re.search(r"cc (\S+) \(", rest)
    ok = not re.search(r"rc [1-9]|failed|no sink|no discard", rest)
    if case not in rows:
        order.append(case)
        rows[case] = {"mbit": [], "re": [], "drops": [], "cc": set(), "fail": 0}
    row = rows[case]
    if ok and mb:
        row["mbit"].append(float(mb[2]))
    else:
        row["fail"] += 1
    if rt:
        row["re"].append(int(rt[1] or rt[2]))
    if dr:
        row["drops"].append(int(dr[1]))
    if cc:
        row["cc"].add(cc[1])
def cell(v, fmt="{:.0f}"):
    if not v:
        return "–"
    return f"{fmt.format(statistics.median(v))} ({fmt.format(min(v))}–{fmt.format(max(v))})"
def who(case):
    if case.startswith("ringstack-"):
        return "A → B", f"ringstack `--cc {case[10:].replace('+pace', ' --pace')}` → kernel sink"
    m = re.match(r"kernel-(\w+)-to-ringstack", case)
    if m:
        return "B → A", f"kernel {m[1]} → ringstack discard"
    m = re.match(r"kernel-(\w+)-(A-to-B|B-to-A)", case)
    return ("A → B" if m[2] == "A-to-B" else "B → A"), f"kernel {m[1]} → kernel sink"
print(f"\nshaped rate {sys.argv[2]} Mbit/s; medians (min–max)\n")
print("| dir | sender → receiver | Mbit/s at receiver | sender retransmissions | bottleneck drops | ringstack cc reported | failed runs |\n|---|---|---|---|---|---|---|")
for case in order:
    r = rows[case]
    d, w = who(case)
    print(f"| {d} | {w} | {cell(r['mbit'])} | {cell(r['re'])} | {cell(r['drops'])} | {', '.join(sorted(r['cc'])) or '–'} | {r['fail']} |")
PY
cat "$tmp/table"; cat "$tmp/table" >> "$log"
