#!/usr/bin/env python3
"""Seeds for the capture_read fuzz target: small pcap files (microsecond, nanosecond, raw IP,
Linux cooked) and pcapng files (two interfaces of different link types, if_tsresol 10^-9 and
2^-20, if_tsoffset, a simple packet block, a second section). Run from fuzz/seeds/."""
import os
import struct

d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "capture_read")
os.makedirs(d, exist_ok=True)
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 1, 0, 64, 6, 0, bytes([10, 0, 0, 66]), bytes([10, 0, 0, 10]))
tcp = struct.pack("!HHIIBBHHH", 54321, 80, 1, 0, 0x50, 0x02, 8192, 0, 0)
eth = bytes([2, 0, 0, 0, 0, 0x10, 2, 0, 0, 0, 0, 0x66, 8, 0]) + ip + tcp


def pcap(link, recs, magic=0xA1B2C3D4, snap=65535):
    out = struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snap, link)
    for i, r in enumerate(recs):
        out += struct.pack("<IIII", 1767225600 + i, 123456, len(r), len(r)) + r
    return out


def block(kind, body):
    body += b"\0" * ((-len(body)) % 4)
    t = len(body) + 12
    return struct.pack("<II", kind, t) + body + struct.pack("<I", t)


shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(link, opts=b""):
    return block(1, struct.pack("<HHI", link, 0, 0) + opts)


def epb(iface, ticks, data):
    return block(6, struct.pack("<IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data)) + data)


def write(name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


write("ethernet.pcap", pcap(1, [eth, eth]))
write("nanosecond.pcap", pcap(1, [eth], magic=0xA1B23C4D))
write("raw-ip.pcap", pcap(101, [eth[14:]]))
write("sll.pcap", pcap(113, [b"\0" * 14 + b"\x08\x00" + eth[14:]]))
ns = struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HHq", 14, 8, -10) + b"\0\0\0\0"
t = 1767225600123456
write(
    "two-interfaces.pcapng",
    shb + idb(1) + idb(101, ns) + epb(0, t, eth) + epb(1, t * 1000, eth[14:])
    + block(3, struct.pack("<I", len(eth)) + eth),
)
write(
    "binary-resolution.pcapng",
    shb + idb(1, struct.pack("<HHB3x", 9, 1, 0x80 | 20) + b"\0\0\0\0") + epb(0, 1767225600 << 20, eth)
    + shb + idb(1) + epb(0, t, eth),
)
