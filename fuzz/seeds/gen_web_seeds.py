#!/usr/bin/env python3
"""Write the seed corpora of the quic_initial, dns_answer and block_page fuzz targets
(deterministic, stdlib only).

quic_initial's seeds are in the form its second half reads: a DCID length byte, the DCID, then
plaintext frames that the target seals into valid client Initials (RFC 9001 A.2's CRYPTO frame,
read from the unit tests' fixture, whole and split out of order), so the fuzzer starts past the
AEAD, in the frame walk, reassembly and ClientHello parser.

    python3 fuzz/seeds/gen_web_seeds.py   # from the repository root
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
A2 = os.path.join(HERE, "../../dataplane/src/app/quic/testdata/rfc9001_a2_crypto.hex")


def write(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def crypto(offset, data):
    return b"\x06" + struct.pack(">IH", 0x80000000 | offset, 0x4000 | len(data)) + data


with open(A2) as f:
    frame = bytes.fromhex("".join(f.read().split()))
hello = frame[4:]  # the A.2 frame: type, offset 0, 2-byte length, then the ClientHello
dcid = bytes.fromhex("8394c8f03e515708")
write("quic_initial", "a2_whole", bytes([len(dcid)]) + dcid + frame)
split = crypto(100, hello[100:]) + b"\x01" + crypto(0, hello[:100])
write("quic_initial", "a2_split_reordered", bytes([len(dcid)]) + dcid + split)

name = b"\x04evil\x07example\x03com\x00"
opt = b"\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00"
q_a = struct.pack(">6H", 0xABCD, 0x0100, 1, 0, 0, 1) + name + b"\x00\x01\x00\x01" + opt
q_aaaa = struct.pack(">6H", 0x1234, 0x0100, 1, 0, 0, 0) + name + b"\x00\x1c\x00\x01"
write("dns_answer", "a_edns", q_a)
write("dns_answer", "aaaa_plain", q_aaaa)
write("dns_answer", "tcp_a_edns", struct.pack(">H", len(q_a)) + q_a)
canary = b"\x13use-application-dns\x03net\x00"
write("dns_answer", "canary", struct.pack(">6H", 7, 0x0100, 1, 0, 0, 0) + canary + b"\x00\x01\x00\x01")

write("block_page", "placeholders", "<p title='{{address}}'>{{list}} {{category}} {{entry}}</p>\0\"><script>x</script>")
write("block_page", "unclosed", "line\n  {{address\0v")
