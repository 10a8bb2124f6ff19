#!/usr/bin/env python3
"""Write the seed corpora of the rule_parse, app_http, app_tls and app_dns fuzz targets
(deterministic, stdlib only). The rules are our own, written to touch each keyword family the
parser knows; the messages are minimal well-formed ones, so the fuzzer starts past the first
length and syntax checks instead of finding them byte by byte.

    python3 fuzz/seeds/gen_app_seeds.py   # from the repository root
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


RULES = {
    "content_chain": 'alert tcp $EXTERNAL_NET any -> $HOME_NET [80,8080:8090,!8081] (msg:"chain"; '
    'flow:established,to_server; content:"GET "; depth:4; content:"|2f 61|"; distance:0; within:10; '
    'nocase; content:!"safe"; fast_pattern; isdataat:2,relative; sid:1000001; rev:2; classtype:bad-unknown;)',
    "http_buffers": 'alert http any any -> any any (msg:"http"; http.method; content:"POST"; '
    'http.uri; content:"/login"; startswith; bsize:>5; http.host; content:"example"; endswith; '
    'http.user_agent; pcre:"/curl\\/\\d+/i"; sid:1000002; metadata:created_at 2026_12_06;)',
    "legacy_modifiers": 'alert tcp any any -> any 80 (msg:"legacy"; uricontent:"/a.php"; '
    'content:"Host|3a|"; http_header; content:"x"; http_uri; sid:1000003; reference:url,example.org;)',
    "tls_dns": 'alert tls any any -> any 443 (msg:"sni"; tls.sni; content:".example"; endswith; '
    'sid:1000004;)\nalert dns any any -> any 53 (msg:"dns"; dns.query; content:"bad"; nocase; sid:1000005;)',
    "flowbits_threshold": 'alert tcp any any -> any any (msg:"set"; content:"A"; flowbits:set,seen; '
    'flowbits:noalert; sid:1000006;)\nalert tcp any any <> any any (msg:"isset"; flowbits:isset,seen; '
    'threshold:type limit, track by_src, count 1, seconds 60; sid:1000007;)\n'
    'alert tcp any any -> any any (msg:"df"; content:"B"; detection_filter:track by_dst, count 3, seconds 10; '
    'sid:1000008;)',
    "packet_keywords": 'alert icmp any any -> any any (msg:"icmp"; itype:8; icode:0; icmp_id:1; '
    'icmp_seq:2; ttl:<10; dsize:>100; sid:1000009;)\n'
    'drop tcp any any -> any any (msg:"flags"; flags:SF,12; fragbits:!D; sid:1000010; priority:1;)\n'
    'reject ip [10.0.0.0/8,!10.1.0.0/16] any -> ![192.168.0.0/16,2001:db8::/32] any (msg:"ip"; sid:1000011;)\n'
    'pass udp any any -> any 53 (msg:"pass"; sid:1000012; gid:3;)',
    "bytes": 'alert tcp any any -> any any (msg:"bytes"; content:"|00 01|"; byte_test:2,>,512,0,relative; '
    'byte_jump:2,0,relative,little; content:"x"; within:4; sid:1000013;)',
    "bad_lines": '# a comment\nalert tcp any any -> any any (msg:"no sid";)\n'
    'alert tcp any any -> any any (msg:"within short"; content:"abcd"; within:2; sid:1000014;)\n'
    'alert foo any any -> any any (msg:"proto"; sid:1000015;)\n'
    'alert tcp any any -> any any (msg:"unknown"; frobnicate; sid:1000016;)',
}
for name, text in RULES.items():
    write("rule_parse", name + ".rules", text + "\n")

# app_http: first byte is the chunk size of the stateful feed.
write("app_http", "get", b"\x07GET /index.html?q=1 HTTP/1.1\r\nHost: Example.COM:8080\r\n"
      b"User-Agent: curl/8.0\r\nAccept: */*\r\n\r\n")
write("app_http", "post_chunked", b"\x10POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      b"5\r\nhello\r\n0\r\n\r\nGET /next HTTP/1.0\r\n\r\n")
write("app_http", "post_length", b"\x40POST /%2e%2e/x HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\n\r\nabc")


def client_hello(sni):
    name = sni.encode()
    sni_ext = struct.pack("!HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name)) + name
    alpn = b"\x02h2"
    alpn_ext = struct.pack("!HHH", 16, len(alpn) + 2, len(alpn)) + alpn
    exts = sni_ext + alpn_ext
    body = (b"\x03\x03" + bytes(range(32)) + b"\x00" + struct.pack("!H", 4) + b"\x13\x01\xc0\x2f"
            + b"\x01\x00" + struct.pack("!H", len(exts)) + exts)
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


# app_tls: first byte is the chunk size; chunks alternate direction.
write("app_tls", "client_hello", b"\x20" + client_hello("www.example.org"))
write("app_tls", "hello_then_appdata", b"\xff" + client_hello("a.example") + b"\x17\x03\x03\x00\x03abc")


def dns_query(qname, qtype=1):
    q = b"".join(bytes([len(p)]) + p.encode() for p in qname.split(".")) + b"\x00"
    return struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", qtype, 1)


write("app_dns", "query_a", dns_query("www.example.com"))
write("app_dns", "query_aaaa", dns_query("mail.example.net", 28))
# A response whose answer names the question by a compression pointer.
resp = bytearray(dns_query("x.example"))
resp[2:4] = b"\x81\x80"
resp[6:8] = b"\x00\x01"
resp += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 1])
write("app_dns", "response_pointer", bytes(resp))
