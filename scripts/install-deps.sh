#!/usr/bin/env bash
# Install the Debian tools the lab and the tests drive ringstack against:
# the kernel's own peers (ping, arping, ip), capture and dissection
# (tcpdump, tshark), ethtool to switch off the peer's offloads, and valgrind
# for the instruction-count gate (benches/tcp_cost_check.sh).
# Only what is missing is installed; needs root when something is.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have ip       || need+=(iproute2)
have ping     || need+=(iputils-ping)
have arping   || need+=(iputils-arping)
have ethtool  || need+=(ethtool)
have tcpdump  || need+=(tcpdump)
have tshark   || need+=(tshark)
have nft      || need+=(nftables)
have curl     || need+=(curl)
have socat    || need+=(socat)
# traceroute shows ringstack as the first hop in tests/gateway.rs; iperf3
# drives benches/net/forward.sh.
have traceroute || need+=(traceroute)
have iperf3   || need+=(iperf3)
# dnsmasq is the DHCP server tests/dhcp_client.rs takes leases from
# (dnsmasq-base: the daemon alone, no service started).
have dnsmasq  || need+=(dnsmasq-base)
# DHCP clients that tests/dhcp_server.rs serves: busybox udhcpc, ISC dhclient.
have busybox  || need+=(busybox)
have dhclient || need+=(isc-dhcp-client)
# bpftool attaches a foreign XDP program for tests/dev_xdp.rs.
have bpftool  || need+=(bpftool)
# callgrind counts instructions per TCP segment for benches/tcp_cost_check.sh.
have valgrind || need+=(valgrind)

if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: missing ${need[*]}; run as root to install them" >&2
    else
        echo "install-deps: installing ${need[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi
fi

# scapy (PyPI) crafts the hostile traffic of tests/attack.rs.
if ! python3 -c 'import scapy' 2>/dev/null; then
    echo "install-deps: installing scapy from PyPI" >&2
    python3 -m pip install -q --disable-pip-version-check scapy >&2 || echo "install-deps: scapy not installed; the attack tests will skip" >&2
fi
