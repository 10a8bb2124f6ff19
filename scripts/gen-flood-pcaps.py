#!/usr/bin/env python3
# Usage: scripts/gen-flood-pcaps.py OUTDIR (docs/benchmarks.md, "A random-source SYN flood").
# Two captures of the same size: 1,100,000 TCP SYNs at 1 us spacing to 10.0.0.10:80, from
# distinct spoofed sources (flood.pcap) or from one source and port (single.pcap).
import struct, sys
N = 1_100_000
def csum(h):
    s = sum(struct.unpack('!10H', h))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return (~s) & 0xffff
def write(path, src_of):
    with open(path, 'wb') as f:
        f.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
        eth = bytes([2,0,0,0,0,0x10, 2,0,0,0,0,0x66]) + b'\x08\x00'
        dst = bytes([10,0,0,10])
        t0 = 1_767_225_600
        for i in range(N):
            src, sport = src_of(i)
            ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 40, i & 0xffff, 0, 64, 6, 0, src, dst)
            ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
            tcp = struct.pack('!HHIIBBHHH', sport, 80, (i * 2654435761) & 0xffffffff, 0, 0x50, 0x02, 65535, 0, 0)
            frame = eth + ip + tcp
            us = i
            f.write(struct.pack('<IIII', t0 + us // 1_000_000, us % 1_000_000, len(frame), len(frame)))
            f.write(frame)
write(sys.argv[1] + '/flood.pcap', lambda i: (bytes([100 + (i >> 24), (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff]), 1024 + i % 60000))
write(sys.argv[1] + '/single.pcap', lambda i: (bytes([10, 0, 0, 66]), 40000))
