#!/usr/bin/env bash
# CI gate on the TCP fast path: ringstack's instructions per data segment
# (examples/tcp_cost, both ends, counted by callgrind the way
# benches/tcp_cost.sh counts them) may not grow more than 3 % over the
# figures in benches/tcp_cost.baseline. The same holds for 4000 concurrent
# connections exchanging 64-byte requests and responses round-robin
# (examples/many_flows rr 4000), where every frame misses the one-entry
# caches a single flow lives on.
#
# Instruction counts do not depend on the machine's load, so two runs of
# the same binary give the same figure and a small threshold holds. What
# can still move them without a change to ringstack: the compiler, glibc,
# valgrind, and the checksum loop picked at run time by CPU detection. The
# last is part of every baseline key; the others are recorded in the file,
# and a difference is printed next to the figures. smoltcp's figure is
# measured beside ringstack's for the same reason: when both move, the
# toolchain moved, not ringstack.
#
#   benches/tcp_cost_check.sh            compare; exit 1 when over
#   benches/tcp_cost_check.sh --update   write this tree's figures into
#                                        the baseline (commit them with the
#                                        reason in the message)
#
# Without valgrind it skips, saying why, unless it runs as root or with CI
# set: there scripts/install-deps.sh has installed valgrind, so a missing
# one is an error.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=check
case "${1:-}" in
    "") ;;
    --update) mode=update ;;
    *) echo "usage: $0 [--update]" >&2; exit 2 ;;
esac
baseline=benches/tcp_cost.baseline
# The same segment counts as benches/tcp_cost.sh, so the figures match its
# table and BENCHMARKS.md.
n1=1000
n2=11000
start=$SECONDS

if ! command -v valgrind >/dev/null; then
    if [ "$(id -u)" -eq 0 ] || [ -n "${CI:-}" ]; then
        echo "tcp_cost: valgrind is missing (scripts/install-deps.sh installs it); the check cannot run" >&2
        exit 1
    fi
    echo "tcp_cost: check skipped: valgrind is not installed and this is not root (apt-get install valgrind)"
    exit 0
fi

log=$(mktemp)
dir=$(mktemp -d)
trap 'rm -rf "$dir" "$log"' EXIT
echo "tcp_cost: building examples/tcp_cost and examples/many_flows (release)"
if ! cargo build --release --locked --example tcp_cost --example many_flows >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
fi
bins=${CARGO_TARGET_DIR:-target}/release/examples
# The baseline is for the release profile as Cargo.toml sets it; flags from
# the environment build other code (a debug build takes about 40 times the
# instructions).
for v in RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS $(compgen -e | grep '^CARGO_PROFILE_RELEASE_' || true); do
    [ -n "${!v:-}" ] && echo "tcp_cost: note: $v is set ($v=${!v}); the baseline was measured without it"
done

# stack:configuration:example:arguments before the work:work 1:work 2:arguments after
# (many_flows at 4000 and 12 000 transactions, after its setup and warm-up:
# about 5 s under callgrind)
for c in "ringstack:no-ts:tcp_cost:ringstack:$n1:$n2:--no-ts" \
    "ringstack:ts:tcp_cost:ringstack:$n1:$n2:" \
    "smoltcp:no-ts:tcp_cost:smoltcp:$n1:$n2:--no-ts" \
    "ringstack:rr-4000-flows:many_flows:rr 4000:4000:12000:"; do
    IFS=: read -r stack cfg example pre w1 w2 post <<<"$c"
    for w in "$w1" "$w2"; do
        out=$dir/$stack.$cfg.$w
        # shellcheck disable=SC2086
        if ! valgrind --tool=callgrind --callgrind-out-file="$out.cg" "$bins/$example" $pre "$w" $post \
            >"$out.txt" 2>"$out.log"; then
            cat "$out.txt" "$out.log" >&2
            echo "tcp_cost: $example $pre $w $post failed under callgrind" >&2
            exit 1
        fi
    done
done

# The commit the figures belong to, marked when what the example is built
# from differs from it.
head=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src examples Cargo.toml Cargo.lock 2>/dev/null || head="$head + uncommitted changes"
rc=0
python3 - "$mode" "$baseline" "$dir" "$n1" "$n2" "$(rustc --version)" "$(valgrind --version)" \
    "$(ldd --version | head -1 | awk '{print $NF}')" "$head" <<'PY' || rc=$?
import datetime, re, sys

mode, path, d, n1, n2, rustc, valgrind, glibc, head = sys.argv[1:]
ALLOWED = 3.0


def run(stack, cfg, n):
    """Total instructions, data segments, checksum path (tcp_cost only)."""
    text = open(f"{d}/{stack}.{cfg}.{n}.txt").read()
    cg = open(f"{d}/{stack}.{cfg}.{n}.cg").read()
    total = int(re.search(r"^totals: (\d+)", cg, re.M)[1])
    m = re.search(r"(\d+) frames data way", text)
    if m:
        return total, int(m[1]), re.search(r"checksum path (\S+)", text)[1]
    # many_flows rr: every frame, either way, is a request or a response.
    m = re.search(r"(\d+) frames client to server, (\d+) frames server to client", text)
    return total, int(m[1]) + int(m[2]), None


fig, paths = {}, set()
for stack, cfg, w1, w2 in [("ringstack", "no-ts", n1, n2), ("ringstack", "ts", n1, n2),
                           ("smoltcp", "no-ts", n1, n2), ("ringstack", "rr-4000-flows", 4000, 12000)]:
    (i1, f1, p1), (i2, f2, p2) = run(stack, cfg, w1), run(stack, cfg, w2)
    paths |= {p1, p2} - {None}
    fig[(stack, cfg)] = (i2 - i1) / (f2 - f1)
if len(paths) != 1:
    sys.exit(f"tcp_cost: the checksum path changed between runs: {sorted(paths)}")
csum = paths.pop()
env = {"rustc": rustc, "valgrind": valgrind, "glibc": glibc}

lines = open(path).read().splitlines()
base = {}
for line in lines:
    if line.strip() and not line.lstrip().startswith("#"):
        k, v = (s.strip() for s in line.split("=", 1))
        base[k] = v
key = lambda stack, cfg: f"{stack}.{cfg}.{csum}"

if mode == "update":
    new = {key(s, c): f"{v:.1f}" for (s, c), v in fig.items()}
    new.update({f"measured.{k}": v for k, v in env.items()})
    new["measured.commit"] = head
    new["measured.date"] = datetime.date.today().isoformat()
    out, seen = [], set()
    for line in lines:
        k = line.split("=", 1)[0].strip()
        if not line.lstrip().startswith("#") and k in new:
            line = f"{k} = {new[k]}"
            seen.add(k)
        out.append(line)
    # New keys go in with the figures, before the measured.* lines.
    at = next((i for i, l in enumerate(out) if l.startswith("measured.")), len(out))
    out[at:at] = [f"{k} = {v}" for k, v in new.items() if k not in seen]
    open(path, "w").write("\n".join(out) + "\n")
    for k, v in new.items():
        print(f"tcp_cost: {k} = {v}")
    print(f"tcp_cost: wrote {path}; commit it and say why the figures moved")
    sys.exit(0)

print(f"tcp_cost: callgrind, release build, checksum path {csum}; instructions per data "
      f"segment, both ends: one bulk flow (tcp_cost, N = {n1} and {n2} segments) and "
      f"rr-4000-flows (many_flows rr 4000, 4000 and 12000 transactions, 64-byte segments)")
for k, v in env.items():
    if base.get(f"measured.{k}", v) != v:
        print(f"tcp_cost: note: the baseline was measured with {base[f'measured.{k}']}, "
              f"this is {v}; a toolchain change alone can move the figures")
over, gain, missing = [], [], []
for (stack, cfg), v in fig.items():
    gated = stack == "ringstack"
    b = base.get(key(stack, cfg))
    if b is None:
        print(f"  {stack} {cfg}: {v:.1f} (no baseline for {key(stack, cfg)})")
        if gated:
            missing.append(key(stack, cfg))
        continue
    b = float(b)
    # Rounded first, so a figure a hair under its rounded baseline does
    # not print as -0.0 %.
    pct = round((v - b) / b * 100, 1) + 0.0
    what = (f"limit +{ALLOWED:.0f} %, margin {ALLOWED - pct:.1f} %" if gated
            else "reference, not gated")
    print(f"  {stack} {cfg}: {v:.1f}, baseline {b:.1f}, {pct:+.1f} % ({what})")
    if not gated:
        continue
    msg = f"{cfg} {b:.0f} -> {v:.0f} instructions per segment ({pct:+.1f} %)"
    if pct > ALLOWED:
        over.append(msg)
    elif pct < -ALLOWED:
        gain.append(msg)
for m in gain:
    print(f"tcp_cost: {m}, more than {ALLOWED:.0f} % below the baseline: update "
          f"{path} to lock in the gain (benches/tcp_cost_check.sh --update)")
for m in over:
    print(f"tcp_cost: {m}, over the {ALLOWED:.0f} % allowed; if deliberate, update "
          f"{path} in the same commit and say why")
if missing:
    print(f"tcp_cost: {path} has no figure for {', '.join(missing)} (keys end in the "
          f"checksum path this machine takes, {csum}). Record them with "
          f"benches/tcp_cost_check.sh --update on a tree known to be good and commit them")
sys.exit(1 if over or missing else 0)
PY
echo "tcp_cost: $( [ $rc -eq 0 ] && echo passed || echo FAILED ) in $((SECONDS - start)) s"
exit $rc
