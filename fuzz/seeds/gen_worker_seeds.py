#!/usr/bin/env python3
"""Write the seed corpus of the `worker` fuzz target (deterministic, stdlib only).

A seed is one settings byte (bit 0 inline, 1 monitoring, 2 inform, 3 checksums, 4 IDS timing,
5 midstream), then frames, each `[dt, len_hi, len_lo, frame]` (dt in 10 ms steps, 255 = 61 s).
Every frame carries valid checksums, so the seeds pass with checksum validation on as well.

    python3 fuzz/seeds/gen_worker_seeds.py   # from the repository root
"""
import os
import struct
import sys

sys.dont_write_bytecode = True
from gen_frame_decode import csum  # noqa: E402 (the Internet checksum, beside this script)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker")
MAC_C = bytes([2, 0, 0, 0, 0, 1])
MAC_S = bytes([2, 0, 0, 0, 0, 2])
CLIENT = bytes([10, 0, 0, 5])
SERVER = bytes([10, 0, 0, 80])

SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10


def eth(src_mac, dst_mac, l3, vlan=None):
    out = dst_mac + src_mac
    if vlan is not None:
        out += struct.pack("!HH", 0x8100, vlan)
    out += struct.pack("!H", 0x0800) + l3
    return out + b"\0" * max(0, 60 - len(out))


def ipv4(src, dst, proto, payload, ident=1, flags_off=0x4000, ttl=64):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, flags_off, ttl, proto,
                      0, src, dst)
    return hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:] + payload


def tcp(src, dst, sport, dport, seq, ack, flags, payload=b""):
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(seg))
    c = csum(pseudo + seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def udp(src, dst, sport, dport, payload):
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    pseudo = src + dst + struct.pack("!BBH", 0, 17, len(seg))
    c = csum(pseudo + seg) or 0xFFFF
    return seg[:6] + struct.pack("!H", c) + seg[8:]


def icmp_echo(ident, seq, data):
    msg = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + data
    return msg[:2] + struct.pack("!H", csum(msg)) + msg[4:]


def frame(dt, f):
    return struct.pack("!BH", dt, len(f)) + f


class Conversation:
    """A TCP connection between CLIENT and SERVER with consistent sequence numbers."""

    def __init__(self, sport, dport, vlan=None):
        self.sport, self.dport, self.vlan = sport, dport, vlan
        self.cseq, self.sseq = 1000, 5000
        self.frames = []

    def _send(self, from_client, flags, payload=b"", dt=1):
        if from_client:
            seg = tcp(CLIENT, SERVER, self.sport, self.dport, self.cseq, self.sseq, flags, payload)
            f = eth(MAC_C, MAC_S, ipv4(CLIENT, SERVER, 6, seg), self.vlan)
            self.cseq += len(payload) + (1 if flags & (SYN | FIN) else 0)
        else:
            seg = tcp(SERVER, CLIENT, self.dport, self.sport, self.sseq, self.cseq, flags, payload)
            f = eth(MAC_S, MAC_C, ipv4(SERVER, CLIENT, 6, seg), self.vlan)
            self.sseq += len(payload) + (1 if flags & (SYN | FIN) else 0)
        self.frames.append(frame(dt, f))

    def handshake(self):
        self._send(True, SYN)
        self._send(False, SYN | ACK)
        self._send(True, ACK)
        return self

    def client(self, payload):
        self._send(True, PSH | ACK, payload)
        self._send(False, ACK)
        return self

    def server(self, payload):
        self._send(False, PSH | ACK, payload)
        self._send(True, ACK)
        return self

    def close(self):
        self._send(True, FIN | ACK)
        self._send(False, FIN | ACK)
        self._send(True, ACK)
        return self


def client_hello(sni):
    name = sni.encode()
    ext = struct.pack("!HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name)) + name
    body = (b"\x03\x03" + bytes(range(32)) + b"\x00" + struct.pack("!H", 2) + b"\x13\x01"
            + b"\x01\x00" + struct.pack("!H", len(ext)) + ext)
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def dns_query(qname):
    q = b"".join(bytes([len(p)]) + p.encode() for p in qname.split(".")) + b"\x00"
    return struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", 1, 1)


def seed(settings, frames):
    return bytes([settings]) + b"".join(frames)


def main():
    seeds = {}
    http = (Conversation(40000, 80).handshake()
            .client(b"GET /admin/login HTTP/1.1\r\nHost: evil.example\r\n\r\n")
            .server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").close())
    seeds["http_inline"] = seed(0x01, http.frames)
    seeds["http_mirror_ids"] = seed(0x10, http.frames)
    seeds["http_monitoring"] = seed(0x03, http.frames)
    flowbits = (Conversation(40001, 8080, vlan=100).handshake().client(b"login user=a password=b")
                .server(b"ok welcome").client(b"shell").close())
    seeds["flowbits_reject_vlan"] = seed(0x09, flowbits.frames)
    tls = Conversation(40002, 443).handshake().client(client_hello("bad.example"))
    seeds["tls_sni"] = seed(0x01, tls.frames)
    dns = [frame(1, eth(MAC_C, MAC_S, ipv4(CLIENT, SERVER, 17,
                                           udp(CLIENT, SERVER, 5353, 53, dns_query("c2.example.com")))))]
    seeds["dns_query"] = seed(0x01, dns)
    # A SYN scan of five ports: a block (one minute), frames after it, then its expiry.
    scan = [frame(1, eth(MAC_C, MAC_S, ipv4(CLIENT, SERVER, 6,
                                            tcp(CLIENT, SERVER, 50000, p, 1, 0, SYN))))
            for p in (21, 22, 23, 25, 110)]
    scan.append(frame(255, eth(MAC_C, MAC_S, ipv4(CLIENT, SERVER, 6,
                                                  tcp(CLIENT, SERVER, 50000, 443, 1, 0, SYN)))))
    seeds["syn_scan_block_expiry"] = seed(0x01, scan)
    seeds["syn_scan_inform"] = seed(0x05, scan)
    # UDP: a flood of the dropped pattern, and a large byte.
    flood = [frame(1, eth(MAC_C, MAC_S, ipv4(CLIENT, SERVER, 17,
                                             udp(CLIENT, SERVER, 6000, 7000, b"\xde\xad\xff!!"))))
             for _ in range(6)]
    seeds["udp_flood_drop_rule"] = seed(0x01, flood)
    # Overlapping fragments of an ICMP echo (Teardrop), and a ping with a large payload.
    data = icmp_echo(7, 1, b"A" * 120)
    frags = [
        frame(1, eth(MAC_C, MAC_S, ipv4(CLIENT, SERVER, 1, data[:64], ident=9, flags_off=0x2000))),
        frame(1, eth(MAC_C, MAC_S, ipv4(CLIENT, SERVER, 1, data[48:], ident=9, flags_off=6))),
    ]
    seeds["teardrop"] = seed(0x01, frags)
    seeds["icmp_big_ttl1"] = seed(0x01, [frame(1, eth(MAC_C, MAC_S,
                                                      ipv4(CLIENT, SERVER, 1, data, ttl=1)))])
    # Midstream pick-up: data without a handshake, then SYN+FIN (invalid flags).
    mid = Conversation(40003, 80)
    mid.client(b"password=hunter2")
    mid._send(True, SYN | FIN)
    seeds["midstream_flags"] = seed(0x21, mid.frames)

    os.makedirs(OUT, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"{len(seeds)} seeds, {sum(map(len, seeds.values()))} bytes in {OUT}")


if __name__ == "__main__":
    main()
