#!/usr/bin/env python3
"""Write the seed corpus of the frame_decode fuzz target (deterministic, stdlib only).

Single frames are written as they are; files named seq_* are sequences of frames, each preceded
by a 2-byte big-endian length, which the target feeds through the defragmenter.

    python3 fuzz/seeds/gen_frame_decode.py   # from the repository root
"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "frame_decode")
MAC_SRC = bytes([2, 0, 0, 0, 0, 1])
MAC_DST = bytes([2, 0, 0, 0, 0, 2])
V4_SRC, V4_DST = bytes([192, 0, 2, 1]), bytes([198, 51, 100, 2])
V6_SRC = bytes.fromhex("20010db8000000000000000000000001")
V6_DST = bytes.fromhex("20010db8000000000000000000000002")


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def eth(ethertype, l3, tags=()):
    """tags: (tpid, tci) outer first."""
    out = MAC_DST + MAC_SRC
    for tpid, tci in tags:
        out += struct.pack("!HH", tpid, tci)
    out += struct.pack("!H", ethertype) + l3
    return out + b"\0" * max(0, 60 - len(out))


def ipv4(proto, payload, ident=1, flags_off=0x4000, options=b""):
    hl = 20 + len(options)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | hl // 4, 0, hl + len(payload), ident, flags_off,
                      64, proto, 0, V4_SRC, V4_DST) + options
    return hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:] + payload


def ipv6(next_header, payload):
    return struct.pack("!IHBB", 6 << 28, len(payload), next_header, 64) + V6_SRC + V6_DST + payload


def pseudo4(proto, length):
    return V4_SRC + V4_DST + struct.pack("!BBH", 0, proto, length)


def pseudo6(proto, length):
    return V6_SRC + V6_DST + struct.pack("!IxxxB", length, proto)


def tcp(pseudo, sport, dport, flags, payload=b"", options=b""):
    hl = 20 + len(options)
    seg = struct.pack("!HHIIBBHHH", sport, dport, 100, 0, (hl // 4) << 4, flags, 65535, 0, 0)
    seg += options + payload
    c = csum(pseudo(6, len(seg)) + seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def udp(pseudo, sport, dport, payload):
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    c = csum(pseudo(17, len(seg)) + seg) or 0xFFFF
    return seg[:6] + struct.pack("!H", c) + seg[8:]


def icmp_echo(ident, seq, data, pseudo=None, kind=8):
    msg = struct.pack("!BBHHH", kind, 0, 0, ident, seq) + data
    c = csum((pseudo(58, len(msg)) if pseudo else b"") + msg)
    return msg[:2] + struct.pack("!H", c) + msg[4:]


def seq(*frames):
    return b"".join(struct.pack("!H", len(f)) + f for f in frames)


def v4_fragments(proto, payload, ident, chunk):
    out = []
    for off in range(0, len(payload), chunk):
        more = off + chunk < len(payload)
        out.append(ipv4(proto, payload[off:off + chunk], ident, (0x2000 if more else 0) | off // 8))
    return out


def v6_fragment(ident, off, more, proto, data, prefix_next=None, prefix=b""):
    frag = struct.pack("!BBHI", proto, 0, off | int(more), ident)
    return ipv6(prefix_next if prefix else 44, prefix + frag + data)


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {}
    mss_sack_ws = bytes([2, 4, 5, 0xB4, 4, 2, 1, 3, 3, 7])  + b"\0\0"
    seeds["ipv4_tcp_syn_opts"] = eth(0x0800, ipv4(6, tcp(pseudo4, 40000, 80, 0x02, options=mss_sack_ws)))
    seeds["qinq_ipv4_udp"] = eth(0x0800, ipv4(17, udp(pseudo4, 5353, 53, b"\x12\x34\x01\x00query")),
                                 tags=[(0x88A8, 100), (0x8100, 200)])
    seeds["triple_tag_9100"] = eth(0x0800, ipv4(1, icmp_echo(1, 1, b"ping")),
                                   tags=[(0x9100, 1), (0x8100, 2), (0x8100, 3)])
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + MAC_SRC + V4_SRC + bytes(6) + V4_DST
    seeds["dot1q_arp"] = eth(0x0806, arp, tags=[(0x8100, 0x6064)])
    rr = bytes([1, 1, 7, 7, 4, 0, 0, 0, 0, 0, 0, 0])
    seeds["ipv4_options_icmp"] = eth(0x0800, ipv4(1, icmp_echo(7, 9, b"opts"), options=rr))
    seeds["ipv6_tcp_psh"] = eth(0x86DD, ipv6(6, tcp(pseudo6, 443, 51000, 0x18, b"GET / HTTP/1.1\r\n\r\n")))
    echo6 = icmp_echo(3, 4, bytes(range(64)), pseudo6, kind=128)
    hbh_dst = bytes([60, 0, 1, 4, 0, 0, 0, 0, 44, 0, 1, 4, 0, 0, 0, 0])
    seeds["ipv6_hbh_dst_frag"] = eth(0x86DD, v6_fragment(0xDEADBEEF, 0, True, 58, echo6[:32], 0, hbh_dst))

    dgram = udp(pseudo4, 4000, 53, bytes(i % 251 for i in range(120)))
    seeds["seq_ipv4_fragments"] = seq(*(eth(0x0800, f) for f in reversed(v4_fragments(17, dgram, 77, 48))))
    seeds["seq_ipv6_fragments"] = seq(eth(0x86DD, v6_fragment(5, 0, True, 58, echo6[:40])),
                                      eth(0x86DD, v6_fragment(5, 40, False, 58, echo6[40:])))
    seeds["seq_teardrop"] = seq(eth(0x0800, ipv4(17, dgram[:48], 9, 0x2000)),
                                eth(0x0800, ipv4(17, dgram[24:64], 9, 0x2000 | 3)),
                                eth(0x0800, ipv4(17, dgram[64:], 9, 8)))
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"{len(seeds)} seeds, {sum(map(len, seeds.values()))} bytes in {OUT}")


if __name__ == "__main__":
    main()
