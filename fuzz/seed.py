#!/usr/bin/env python3
"""Turn a pcap of lab traffic into seed corpora for the fuzz targets.

    fuzz/seed.py CAPTURE.pcap

Each frame becomes a seed for the parser of every layer it contains (named by
its SHA-1, as libFuzzer names units); the whole capture also becomes one
record stream for the `stack` target (2-byte length, 1-byte clock step,
frame). Only the Python standard library is used.
"""
import hashlib
import os
import struct
import sys


def frames(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    if magic != 0xA1B2C3D4:
        sys.exit(f"{path}: not a little-endian microsecond pcap")
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack("<IIII", data[off:off + 16])
        yield data[off + 16:off + 16 + incl]
        off += 16 + incl


def put(target, blob):
    d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(blob).hexdigest()), "wb") as f:
        f.write(blob)


def main():
    stream = b""
    for fr in frames(sys.argv[1]):
        put("eth", fr)
        stream += struct.pack(">HB", len(fr), 1) + fr
        if len(fr) < 14:
            continue
        etype = struct.unpack(">H", fr[12:14])[0]
        l3 = fr[14:]
        if etype == 0x0806:
            put("arp", l3)
        elif etype == 0x0800 and len(l3) >= 20:
            put("ipv4", l3)
            ihl = (l3[0] & 15) * 4
            total = struct.unpack(">H", l3[2:4])[0]
            frag = struct.unpack(">H", l3[6:8])[0] & 0x3FFF
            payload = l3[ihl:total]
            if frag == 0 and l3[9] == 1:
                put("icmp", payload)
            elif frag == 0 and l3[9] == 17:
                put("udp", l3[12:20] + payload)
    put("stack", stream)


if __name__ == "__main__":
    main()
