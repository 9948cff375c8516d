#!/usr/bin/env python3
"""Hostile traffic against a ringstack stack, crafted with scapy.

    attack.py SCENARIO IFACE STACK_IP STACK_MAC

Runs in the peer's network namespace and sends raw frames on IFACE. Each
scenario prints one line, "sent N", when done (syn_flood also prints
"start T" first, see there; the dhcp_ scenarios add what they sent after N). The Rust side (tests/attack.rs)
then checks that the stack still answers, counted the drops, and kept memory
under its caps.
"""
import random
import socket
import struct
import sys
import time

from scapy.all import ARP, ICMP, IP, TCP, UDP, Ether, Raw, conf, get_if_hwaddr, sendp

conf.verb = 0
scenario, iface, stack_ip, stack_mac = sys.argv[1:5]
extra = sys.argv[5:]
me = get_if_hwaddr(iface)
rnd = random.Random(1)
net = stack_ip.rsplit(".", 2)[0]  # the stack runs on a /16: 198.18.x.y


def eth():
    # type set explicitly: scapy's default for a Raw payload is 0x9000.
    return Ether(src=me, dst=stack_mac, type=0x0800)


def rand_host():
    return f"{net}.{rnd.randrange(1, 255)}.{rnd.randrange(1, 255)}"


def rand_mac():
    return "02:%02x:%02x:%02x:%02x:%02x" % tuple(rnd.randrange(256) for _ in range(5))


def send(frames):
    # One socket for the whole list: scapy's fast path.
    sendp(frames, iface=iface, verbose=False)
    print(f"sent {len(frames)}", flush=True)


# DHCP (RFC 2131) frames, built by hand: scapy is too slow to build
# thousands per second. UDP checksum 0: "no checksum" (RFC 768).
MAGIC = bytes([99, 130, 83, 99])
BCAST = b"\xff" * 6
DISCOVER, REQUEST = 1, 3


def ip_csum(h):
    s = sum(struct.unpack(f"!{len(h) // 2}H", h))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src, dst, payload, ident=0, frag=0, total=None):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total if total is not None else 20 + len(payload), ident, frag, 64, 17, 0,
                    socket.inet_aton(src), socket.inet_aton(dst))
    return h[:10] + struct.pack("!H", ip_csum(h)) + h[12:] + payload


def udp(payload, sport=68, dport=67, length=None):
    return struct.pack("!HHHH", sport, dport, length if length is not None else 8 + len(payload), 0) + payload


def bootp(chaddr, mtype=DISCOVER, opts=b"", xid=1, op=1, htype=1, hlen=6, cookie=MAGIC, sname=b"", file=b"", end=True):
    h = struct.pack("!BBBBIHH", op, htype, hlen, 0, xid, 0, 0x8000) + b"\0" * 16
    h += chaddr.ljust(16, b"\0") + sname.ljust(64, b"\0")[:64] + file.ljust(128, b"\0")[:128]
    o = (bytes([53, 1, mtype]) if mtype is not None else b"") + opts
    return h + cookie + o + (b"\xff" if end else b"")


def client_frame(mac, payload):
    """From 0.0.0.0:68 to 255.255.255.255:67, broadcast, as a client in INIT."""
    return BCAST + mac + b"\x08\x00" + ipv4("0.0.0.0", "255.255.255.255", udp(payload))


def raw_socket():
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    return s


def send_raw(s, frames, pace=0):
    """Frames in order; a full socket buffer waits a little, then goes on.
    pace: a 1 ms breath every `pace` frames, so the stack's ring keeps up."""
    n = 0
    for i, f in enumerate(frames):
        for _ in range(100):
            try:
                s.send(f)
                n += 1
                break
            except OSError:
                time.sleep(0.001)
        if pace and i % pace == pace - 1:
            time.sleep(0.001)
    return n


def rand_mac_bytes():
    # Locally administered unicast.
    return bytes([0x02]) + rnd.randbytes(5)


def opt(code, value):
    return bytes([code, len(value)]) + value


def flood(s, seconds, make):
    """make(i) -> frame, sent as fast as the socket takes them for `seconds`."""
    n, i, t_end = 0, 0, time.time() + seconds
    while time.time() < t_end:
        for _ in range(256):
            try:
                s.send(make(i))
                n += 1
            except OSError:
                pass
            i += 1
    return n


def dhcp_scenario(scenario, extra):
    s = raw_socket()
    pool0 = int(extra[0]) if extra else 100
    sent = 0
    if scenario in ("dhcp_starve_discover", "dhcp_starve_rapid_commit"):
        # One client (one source MAC and chaddr) sending 300 DISCOVERs in a
        # burst: past the token bucket's 8 they are refused, and counted.
        one = bytes.fromhex("02aaaaaaaa01")
        sent += send_raw(s, [client_frame(one, bootp(one, DISCOVER, xid=i)) for i in range(300)], pace=50)
        time.sleep(0.2)
        seconds = float(extra[1]) if len(extra) > 1 else 3.0
        rapid = scenario == "dhcp_starve_rapid_commit"
        pool = [f"{net}.0.{pool0 + k}" for k in range(100)]

        def make(i):
            mac = rand_mac_bytes()
            # Half DISCOVERs, a quarter each of the two kinds of REQUEST.
            kind = 3 if rapid else i % 4
            if kind in (1, 3):
                # A DISCOVER from a client nobody has seen; with rapid
                # commit (RFC 4039) it is bound straight away.
                opts = opt(80, b"") if rapid else b""
                return client_frame(mac, bootp(mac, DISCOVER, opts, xid=i))
            if kind == 0:
                # SELECTING, naming us, for an address never offered to it.
                opts = opt(54, socket.inet_aton(stack_ip)) + opt(50, socket.inet_aton(rnd.choice(pool)))
            else:
                # INIT-REBOOT for some pool address.
                opts = opt(50, socket.inet_aton(rnd.choice(pool)))
            return client_frame(mac, bootp(mac, REQUEST, opts, xid=i))

        n = flood(s, seconds, make)
        sent += n
        print(f"sent {sent} flood {n} end {time.time():.6f}", flush=True)
    elif scenario == "dhcp_malformed":
        me_b = bytes.fromhex(me.replace(":", ""))
        frames = []
        count = {}

        def add(kind, payload, chaddr):
            # From our own Ethernet address, claiming many chaddrs: what
            # parses is rate limited (one source), so the pool stays free for
            # the legitimate client.
            frames.append(client_frame(me_b, payload))
            count[kind] = count.get(kind, 0) + 1

        for i in range(200):
            m = rand_mac_bytes()
            # Option walk errors: a code with no length byte, a length past
            # the end of the message.
            add("truncated_option", bootp(m, DISCOVER, b"\x0c", end=False), m)
            add("length_past_end", bootp(m, DISCOVER, b"\x0c\xf0abc", end=False), m)
            add("length_past_end", bootp(m, DISCOVER, bytes([61, 255]) + b"\x01" * 20, end=False), m)
            # Option overload (52) sending the walk into sname and file full
            # of garbage: runs past their ends.
            g = rnd.randbytes(128)
            add("overload_garbage", bootp(m, DISCOVER, opt(52, b"\x03"), sname=bytes([7, 200]) + g[:62],
                                          file=bytes([9, 250]) + g[:126]), m)
            add("overload_garbage", bootp(m, DISCOVER, opt(52, bytes([1 + i % 3])),
                                          sname=rnd.randbytes(64), file=rnd.randbytes(128)), m)
            # Malformed message types: none, empty, two bytes, unknown.
            add("bad_message_type", bootp(m, None), m)
            add("bad_message_type", bootp(m, None, opt(53, b"")), m)
            add("bad_message_type", bootp(m, None, opt(53, b"\x01\x01")), m)
            add("bad_message_type", bootp(m, None, opt(53, b"\xee")), m)
            # Header: no magic cookie, wrong op, hlen 16 and 200, too short,
            # zero-length.
            add("no_cookie", bootp(m, DISCOVER, cookie=b"\0\0\0\0"), m)
            add("wrong_op", bootp(m, DISCOVER, op=2), m)
            add("wrong_op", bootp(m, DISCOVER, op=7), m)
            add("hlen_16", bootp(m, DISCOVER, hlen=16), m)
            add("hlen_200", bootp(m, DISCOVER, hlen=200), m)
            add("htype_other", bootp(m, DISCOVER, htype=6), m)
            add("short", bootp(m, DISCOVER)[: rnd.randrange(1, 240)], m)
            add("zero_length", b"", m)
        # Hundreds of PADs and unknown options, up to the largest UDP
        # payload one frame carries.
        for i in range(100):
            m = rand_mac_bytes()
            unk = b"".join(opt(rnd.randrange(100, 250), rnd.randbytes(rnd.randrange(0, 8))) for _ in range(150))
            msg = bootp(m, DISCOVER, b"\0" * 300 + unk)
            add("huge_option_list", msg[:1472], m)
        rnd.shuffle(frames)
        sent += send_raw(s, frames, pace=32)
        # A UDP length field larger than the datagram, and one below 8.
        lies = []
        for i in range(100):
            m = rand_mac_bytes()
            d = bootp(m, DISCOVER)
            lies.append(BCAST + me_b + b"\x08\x00" + ipv4("0.0.0.0", "255.255.255.255", udp(d, length=len(d) + 100)))
            lies.append(BCAST + me_b + b"\x08\x00" + ipv4("0.0.0.0", "255.255.255.255", udp(d, length=4)))
        count["udp_length_lies"] = len(lies)
        sent += send_raw(s, lies, pace=32)
        # ~60 KB DHCP messages in fragmented IP datagrams, each from a source
        # of its own (so no rate limit keeps them from the server): RFC 3396 splits a
        # long option over many instances of its code; these hold 230
        # instances of a client id and hundreds of unknown options.
        big = []
        for i in range(40):
            m = rand_mac_bytes()
            opts = b"\0" * 1000
            opts += b"".join(opt(61, b"\x01" + rnd.randbytes(200)) for _ in range(230))
            opts += b"".join(opt(200 + k % 50, rnd.randbytes(50)) for k in range(200))
            opts += opt(80, b"")  # rapid commit: a lease straight away
            d = udp(bootp(m, DISCOVER, opts, xid=90000 + i))
            ident = 4000 + i
            off = 0
            while off < len(d):
                chunk = d[off:off + 1480]
                more = 0x2000 if off + 1480 < len(d) else 0
                big.append(BCAST + m + b"\x08\x00" + ipv4("0.0.0.0", "255.255.255.255", chunk, ident=ident,
                                                          frag=more | (off // 8), total=20 + len(chunk)))
                off += 1480
            count["fragmented_60k"] = count.get("fragmented_60k", 0) + 1
        # After the probes the garbage started have timed out (500 ms), so
        # these are served, not refused for the probe backlog.
        time.sleep(1.5)
        sent += send_raw(s, big, pace=16)
        print(f"sent {sent} " + " ".join(f"{k}={v}" for k, v in sorted(count.items())), flush=True)
    else:
        sys.exit(f"unknown scenario {scenario}")


frames = []
if scenario == "teardrop":
    # The classic: the second fragment starts inside the first.
    for i in range(2000):
        src = rand_host()
        frames.append(eth() / IP(src=src, dst=stack_ip, id=i, flags="MF", frag=0, proto=17) / Raw(b"A" * 48))
        frames.append(eth() / IP(src=src, dst=stack_ip, id=i, frag=3, proto=17) / Raw(b"B" * 40))
elif scenario == "tiny_fragments":
    # 8-byte fragments that never complete, many per datagram.
    for d in range(300):
        src = rand_host()
        for k in range(100):
            frames.append(eth() / IP(src=src, dst=stack_ip, id=d, flags="MF", frag=k, proto=1) / Raw(b"x" * 8))
elif scenario == "ping_of_death":
    # Fragments of an echo request whose reassembled size passes 65535.
    payload = bytes(ICMP(type=8) / Raw(b"D" * 65600))
    for i in range(20):
        whole = IP(src=rand_host(), dst=stack_ip, id=1000 + i, proto=1) / Raw(payload)
        off = 0
        while off < len(payload):
            chunk = payload[off:off + 1480]
            more = "MF" if off + 1480 < len(payload) else 0
            frames.append(eth() / IP(src=whole.src, dst=stack_ip, id=whole.id, flags=more, frag=off // 8, proto=1) / Raw(chunk))
            off += 1480
elif scenario == "fragment_flood":
    for i in range(20000):
        frames.append(eth() / IP(src=rand_host(), dst=stack_ip, id=rnd.randrange(65536), flags="MF", frag=0, proto=17) / Raw(b"F" * 1000))
elif scenario == "arp_flood":
    # Requests for our address from thousands of senders: every one is an
    # entry the stack may learn (RFC 826); the cache must stay bounded.
    for i in range(10000):
        frames.append(Ether(src=(m := rand_mac()), dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=m, psrc=rand_host(), pdst=stack_ip))
elif scenario == "arp_spoof_gateway":
    # Replies claiming the kernel peer (the stack's gateway) is at our fake MAC.
    gw = f"{net}.0.1"
    fake = "02:66:66:66:66:66"
    for i in range(3000):
        frames.append(Ether(src=fake, dst=stack_mac) / ARP(op=2, hwsrc=fake, psrc=gw, hwdst=stack_mac, pdst=stack_ip))
elif scenario == "bad_headers":
    good = IP(src=f"{net}.0.1", dst=stack_ip, proto=17) / UDP(sport=1, dport=7) / Raw(b"hello")
    raw = bytes(good)
    for i in range(2000):
        b = bytearray(raw)
        kind = i % 8
        if kind == 0:
            b[0] = 0x40 | rnd.randrange(0, 5)       # IHL below 5
        elif kind == 1:
            b[0] = 0x4F                               # IHL 15: past the packet
        elif kind == 2:
            b[2:4] = (len(b) + rnd.randrange(1, 500)).to_bytes(2, "big")  # total length too big
        elif kind == 3:
            b[2:4] = rnd.randrange(0, 20).to_bytes(2, "big")              # total length below the header
        elif kind == 4:
            b[10] ^= 0xFF                             # header checksum
        elif kind == 5:
            b[-1] ^= 0xFF                             # UDP checksum
        elif kind == 6:
            b[0] = 0x65                               # version 6 in an IPv4 frame
        else:
            b = b[: rnd.randrange(0, 20)]             # truncated header
        frames.append(eth() / Raw(bytes(b)))
    # TTL 0: a host MUST NOT discard for that alone (RFC 1122 3.2.1.7); the echo is answered.
    frames.append(eth() / IP(src=f"{net}.0.1", dst=stack_ip, ttl=0) / ICMP(type=8, id=7, seq=1))
elif scenario == "icmp_flood":
    # Echo requests from thousands of spoofed on-link sources: each reply
    # needs ARP for a host that does not exist.
    for i in range(10000):
        frames.append(eth() / IP(src=rand_host(), dst=stack_ip) / ICMP(type=8, id=i, seq=i) / Raw(b"p" * 56))
elif scenario == "icmp_errors_quoting_us":
    # Errors quoting datagrams from our own address, as a blind attacker
    # would send to tear down connections.
    for i in range(5000):
        quoted = IP(src=stack_ip, dst=rand_host(), proto=17) / UDP(sport=7, dport=rnd.randrange(1, 65536))
        t, c = [(3, 3), (3, 1), (3, 4), (11, 0), (12, 0)][i % 5]
        frames.append(eth() / IP(src=rand_host(), dst=stack_ip) / ICMP(type=t, code=c) / Raw(bytes(quoted)[:28]))
elif scenario == "syn_flood":
    # Spoofed SYNs from thousands of on-link sources to the HTTP port: the
    # SYN queue fills and SYN cookies take over (RFC 4987). extra: seconds
    # to spread the flood over (default 0: as fast as possible), so that a
    # kernel client can connect while it lasts. Prints "start T" (epoch
    # seconds) before the first SYN, "full T" once the SYN queue must be
    # full, and "sent N T" after the last.
    seconds = float(extra[0]) if extra else 0.0
    for i in range(10000):
        frames.append(eth() / IP(src=rand_host(), dst=stack_ip) / TCP(sport=rnd.randrange(1024, 65536), dport=80, flags="S", seq=rnd.randrange(2**32), options=[("MSS", 1460)]))
    raw = [bytes(f) for f in frames]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    # The first 1100 at once: more than the stack's 1024 half-open
    # connections, so the queue is full ("full T") before the paced rest.
    burst, batch = 1100, 50
    t0 = time.time()
    print(f"start {t0:.6f}", flush=True)
    sent = 0
    for b in range(0, len(raw), batch):
        for f in raw[b:b + batch]:
            try:
                s.send(f)
                sent += 1
            except OSError:
                pass
        if b + batch == burst:
            t1 = time.time()
            print(f"full {t1:.6f}", flush=True)
        if b + batch >= burst:
            # Pace against the clock, not by sleeping a fixed step: a loaded
            # machine catches up instead of stretching the flood.
            done = (b + batch - burst) / (len(raw) - burst)
            wait = t1 + seconds * done - time.time()
            if wait > 0:
                time.sleep(wait)
    print(f"sent {sent} {time.time():.6f}", flush=True)
    sys.exit(0)
elif scenario == "tcp_flags_and_options":
    # Every flag combination, to the open port and to a closed one, plus
    # malformed option lists.
    src = f"{net}.0.1"
    for flags in range(256):
        for dport in (80, 4444):
            frames.append(eth() / IP(src=src, dst=stack_ip) / TCP(sport=40000 + flags, dport=dport, flags=flags, seq=rnd.randrange(2**32), ack=rnd.randrange(2**32)) / Raw(b"x" * (flags % 3)))
    bad_options = [b"\x02\x00", b"\x02\x01\x05", b"\x03\x10\x07", b"\x08\x03\x00", b"\x05\x05\x00\x00\x00", b"\xfe\x28" + b"\x00" * 38, b"\x02"]
    for i in range(2000):
        opt = bad_options[i % len(bad_options)]
        opt = opt + b"\x00" * ((4 - len(opt) % 4) % 4)
        t = TCP(sport=50000 + i % 1000, dport=80, flags="S", seq=i, dataofs=5 + len(opt) // 4)
        frames.append(eth() / IP(src=src, dst=stack_ip, proto=6) / Raw(bytes(t)[:20] + opt))
elif scenario == "blind_rst_syn_injection":
    # A blind attacker knows the 4-tuple of a live connection (extra: client
    # ip, client port, server port) but not its sequence numbers.
    cip, cport, sport = extra[0], int(extra[1]), int(extra[2])
    for i in range(4000):
        f = "R" if i % 2 == 0 else "S"
        frames.append(eth() / IP(src=cip, dst=stack_ip) / TCP(sport=cport, dport=sport, flags=f, seq=rnd.randrange(2**32)))
    # ICMP errors quoting the connection with guessed sequence numbers
    # (RFC 5927: accept only if the quoted sequence number is in flight).
    for i in range(2000):
        quoted = IP(src=stack_ip, dst=cip) / TCP(sport=sport, dport=cport, seq=rnd.randrange(2**32))
        t, c = [(3, 1), (3, 3), (3, 2), (3, 4), (11, 0)][i % 5]
        frames.append(eth() / IP(src=rand_host(), dst=stack_ip) / ICMP(type=t, code=c, nexthopmtu=68) / Raw(bytes(quoted)[:28]))
elif scenario.startswith("dhcp_"):
    dhcp_scenario(scenario, extra)
    sys.exit(0)
else:
    sys.exit(f"unknown scenario {scenario}")
send(frames)
