//! Keyword, parser-error and engine tests.

use std::collections::HashMap;
use std::net::IpAddr;

use proptest::prelude::*;

use super::*;
use crate::decode::IpProto;
use crate::time::Timestamp;

fn set(rules: &str) -> RuleSet {
    let mut b = RuleSetBuilder::default();
    let rep = b.add_text("t.rules", rules);
    assert!(rep.skipped.is_empty(), "{:?}", rep.skipped);
    b.build()
}

fn pkt<'a>(proto: IpProto, payload: &'a [u8]) -> PacketView<'a> {
    PacketView {
        proto,
        src: "10.0.0.1".parse().unwrap(),
        dst: "8.8.8.8".parse().unwrap(),
        src_port: 40000,
        dst_port: 80,
        ttl: 64,
        tcp_flags: if proto == IpProto::Tcp {
            Some(0x18)
        } else {
            None
        },
        icmp: None,
        fragbits: (false, true, false),
        ip_v6: false,
        payload,
        ip_header: &[],
        l4_header: &[],
        stream_size: None,
        flow_counts: None,
        stream_events: 0,
        flow: FlowView {
            has_flow: true,
            established: true,
            to_server: true,
        },
        app_proto: None,
        events: 0,
        vlan: &[],
        flow_age: None,
    }
}

fn sids_with(rs: &RuleSet, p: &PacketView<'_>, bufs: &dyn Buffers) -> Vec<u32> {
    let mut out = Vec::new();
    rs.inspect(
        p,
        bufs,
        &mut FlowRuleState::new(),
        &mut ThresholdState::new(),
        Timestamp(0),
        &mut out,
    );
    let mut v: Vec<u32> = out.iter().filter(|m| m.alert).map(|m| m.sid).collect();
    v.sort_unstable();
    v
}

fn sids(rs: &RuleSet, p: &PacketView<'_>) -> Vec<u32> {
    sids_with(rs, p, &NoBuffers)
}

/// One rule against a TCP payload: does it match?
fn hit(opts: &str, payload: &[u8]) -> bool {
    let rs = set(&format!("alert tcp any any -> any any ({opts} sid:1;)"));
    !sids(&rs, &pkt(IpProto::Tcp, payload)).is_empty()
}

fn skip(rule: &str) -> RuleError {
    let mut b = RuleSetBuilder::default();
    let rep = b.add_text("t.rules", rule);
    assert_eq!(rep.loaded, 0, "{rule} loaded");
    rep.skipped.into_iter().next().unwrap()
}

#[test]
fn content_basic_hex_escape_nocase() {
    assert!(hit(r#"content:"GET";"#, b"xx GET /"));
    assert!(!hit(r#"content:"GET";"#, b"xx get /"));
    assert!(hit(r#"content:"GET"; nocase;"#, b"xx get /"));
    assert!(hit(r#"content:"|41 42|C";"#, b"ABC"));
    assert!(hit(r#"content:"a|3b|b\;c\"d";"#, b"a;b;c\"d"));
    assert!(hit(r#"content:!"evil";"#, b"good"));
    assert!(!hit(r#"content:!"evil";"#, b"so evil"));
}

#[test]
fn offset_depth() {
    assert!(hit(r#"content:"bc"; offset:1; depth:2;"#, b"abcd"));
    assert!(!hit(r#"content:"bc"; offset:2;"#, b"abcd"));
    assert!(!hit(r#"content:"cd"; depth:3;"#, b"abcd"));
    assert!(hit(r#"content:"cd"; depth:4;"#, b"abcd"));
}

#[test]
fn distance_within_and_backtracking() {
    assert!(hit(
        r#"content:"a"; content:"b"; distance:1; within:1;"#,
        b"axb"
    ));
    assert!(!hit(
        r#"content:"a"; content:"b"; distance:0; within:1;"#,
        b"axb"
    ));
    // First "a" fails the relative check; Suricata retries from the next "a".
    assert!(hit(r#"content:"a"; content:"b"; within:1;"#, b"axxab"));
    assert!(hit(
        r#"content:"ab"; content:"c"; distance:-1; within:2;"#,
        b"abc"
    ));
    assert!(!hit(r#"content:"b"; content:"a"; distance:0;"#, b"ab"));
}

#[test]
fn startswith_endswith() {
    assert!(hit(r#"content:"GET"; startswith;"#, b"GET /"));
    assert!(!hit(r#"content:"GET"; startswith;"#, b" GET /"));
    assert!(hit(r#"content:".exe"; endswith;"#, b"a.exe"));
    assert!(!hit(r#"content:".exe"; endswith;"#, b"a.exe "));
    assert!(hit(
        r#"content:"a"; content:"z"; distance:0; endswith;"#,
        b"abz"
    ));
}

#[test]
fn pcre_relative_and_negated() {
    assert!(hit(r#"pcre:"/^a.c$/";"#, b"abc"));
    assert!(hit(r#"content:"x"; pcre:"/^y+/R";"#, b"axyy"));
    assert!(!hit(r#"content:"x"; pcre:"/^y+/R";"#, b"axzy"));
    assert!(hit(r#"content:"a"; pcre:!"/zz/";"#, b"abc"));
    assert!(hit(r#"pcre:"/ABC/i";"#, b"xabc"));
}

#[test]
fn isdataat_bsize_bytes() {
    // Relative: the position may be the buffer's end (Suricata, redmine 8031); absolute: not.
    assert!(hit(r#"content:"a"; isdataat:3,relative;"#, b"abcd"));
    assert!(!hit(r#"content:"a"; isdataat:4,relative;"#, b"abcd"));
    assert!(hit(r#"content:"a"; isdataat:!4,relative;"#, b"abcd"));
    assert!(!hit(r#"content:"a"; isdataat:!3,relative;"#, b"abcd"));
    assert!(hit(r#"isdataat:3;"#, b"abcd") && !hit(r#"isdataat:4;"#, b"abcd"));
    assert!(hit(r#"isdataat:4,relative;"#, b"abcd") && !hit(r#"isdataat:5,relative;"#, b"abcd"));
    assert!(hit(r#"byte_test:2,>,0x100,1;"#, &[0, 2, 0]));
    assert!(!hit(r#"byte_test:2,>,0x200,1;"#, &[0, 2, 0]));
    assert!(hit(r#"byte_test:2,=,0x0102,0,little;"#, &[2, 1]));
    assert!(hit(r#"byte_test:3,=,123,0,string,dec;"#, b"123"));
    assert!(hit(r#"byte_test:1,&,0x80,0;"#, &[0x81]));
    assert!(hit(r#"byte_test:1,!&,0x80,0;"#, &[0x01]));
    // byte_jump over a 2-byte length, then a relative content.
    assert!(hit(
        r#"byte_jump:1,0; content:"X"; within:1;"#,
        &[2, 0, 0, b'X']
    ));
    assert!(!hit(
        r#"byte_jump:1,0; content:"X"; within:1;"#,
        &[1, 0, 0, b'X']
    ));
    assert!(!hit(r#"byte_jump:1,0;"#, &[9, 0]));
    // A jump before the buffer's start lands on the start (Suricata), one past its end fails.
    assert!(!hit(
        r#"byte_jump:1,0,post_offset -9; content:"A"; within:1;"#,
        &[0, b'x', b'A']
    ));
    assert!(hit(
        r#"byte_jump:1,0,post_offset -9; content:"|00|"; within:1;"#,
        &[0, b'x']
    ));
    // A string jump counts the digits read, not `nbytes`.
    assert!(hit(
        r#"byte_jump:3,0,string,dec; content:"Z"; within:1;"#,
        b"2 xZ"
    ));
    assert!(!hit(
        r#"byte_jump:3,0,string,dec; content:"Z"; within:1;"#,
        b"2 xxZ"
    ));
}

// `byte_extract` (Suricata's payload keyword): the value goes into a variable that later
// keywords take as a number, and the position moves past the bytes read.
#[test]
fn byte_extract_variables() {
    // Binary length, then a content exactly that far on.
    assert!(hit(
        r#"byte_extract:1,0,len; content:"Z"; distance:len; within:1;"#,
        &[2, 0, 0, b'Z']
    ));
    assert!(!hit(
        r#"byte_extract:1,0,len; content:"Z"; distance:len; within:1;"#,
        &[1, 0, 0, b'Z']
    ));
    // String decimal as offset and depth (byte-extract-01's shapes).
    assert!(hit(
        r#"byte_extract:1,0,off,string,dec; byte_extract:1,1,dep,string,dec; content:"ab"; offset:off; depth:dep;"#,
        b"32xab"
    ));
    assert!(!hit(
        r#"byte_extract:1,0,off,string,dec; byte_extract:1,1,dep,string,dec; content:"ab"; offset:off; depth:dep;"#,
        b"31xab"
    ));
    // Relative extract after a content; multiplier and align.
    assert!(hit(
        r#"content:"L"; byte_extract:1,0,n,relative,multiplier 2; isdataat:n,relative; isdataat:!5,relative;"#,
        &[b'L', 2, 1, 2, 3, 4]
    ));
    assert!(hit(
        r#"byte_extract:1,0,n,align 4; byte_test:1,=,n,1;"#,
        &[5, 8]
    ));
    // byte_test and byte_jump taking variables (detect-bytejump-02's shape).
    assert!(hit(
        r#"content:"|00 00 00|"; byte_extract:1,0,l,relative; byte_jump:l,0,relative; isdataat:1,relative;"#,
        &[0, 0, 0, 2, 0, 3, 0, 0, 7, 8]
    ));
    assert!(!hit(
        r#"content:"|00 00 00|"; byte_extract:1,0,l,relative; byte_jump:l,0,relative; isdataat:1,relative;"#,
        &[0, 0, 0, 2, 0, 3, 0]
    ));
    // A variable of 0 bytes reads nothing and jumps 0 (detect-bytejump-02's payload).
    assert!(hit(
        r#"content:"|00 00 00|"; byte_extract:1,4,l,relative; byte_jump:l,0,relative; isdataat:1,relative;"#,
        &[0, 0, 0, 5, 0x34, 0x23, 6, 0, 0x21, 0x0a]
    ));
    assert!(hit(r#"byte_extract:1,0,v; byte_test:1,=,v,1;"#, &[7, 7]));
    assert!(!hit(r#"byte_extract:1,0,v; byte_test:1,=,v,1;"#, &[7, 8]));
    // Out of the buffer, or no digit: no match.
    assert!(!hit(
        r#"byte_extract:2,3,v; content:"a"; offset:v;"#,
        b"abcd"
    ));
    assert!(!hit(
        r#"byte_extract:1,0,v,string; content:"a"; offset:v;"#,
        b"xa"
    ));
}

#[test]
fn byte_extract_refused() {
    for (rule, kw) in [
        ("byte_extract:1,0,v; content:\"a\"; offset:w;", "offset"),
        ("byte_extract:9,0,v;", "byte_extract"),
        ("byte_extract:21,0,v,string,dec;", "byte_extract"),
        ("byte_extract:1,0,v,align 3;", "byte_extract"),
        ("byte_extract:1,0,v; byte_extract:1,0,v;", "byte_extract"),
        ("byte_extract:1,0,9v;", "byte_extract"),
        ("byte_extract:1,0,v,hex;", "byte_extract"),
        // Read in the payload, set in a buffer inspected after it.
        (
            "content:\"a\"; http.uri; byte_extract:1,0,v; pkt_data; content:\"b\"; distance:v;",
            "byte_extract",
        ),
    ] {
        let e = skip(&format!("alert tcp any any -> any any ({rule} sid:1;)"));
        assert_eq!(e.keyword, kw, "{rule}: {e}");
    }
}

fn http(rules: &str, bufs: &[(BufferKind, &[u8])]) -> Vec<u32> {
    let rs = set(rules);
    let map: HashMap<BufferKind, Vec<u8>> = bufs.iter().map(|(k, v)| (*k, v.to_vec())).collect();
    let mut p = pkt(IpProto::Tcp, b"");
    p.app_proto = Some(AppProto::Http);
    sids_with(&rs, &p, &map)
}

// `base64_decode` decodes from the previous match (`relative`) plus `offset`, at most `bytes`,
// up to the first byte outside the alphabet; `base64_data` reads what it decoded, from its
// start; nothing decoded is no match. "PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg" is
// `<script>alert(1)</script>` (without padding).
#[test]
fn base64_decode_and_data() {
    let b64 = b"GET /?q=PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg&x=1 HTTP/1.1";
    let dec = |opts: &str| hit(opts, b64);
    let tail = "base64_data; content:\"<script>\"; startswith;";
    assert!(dec(&format!(
        "content:\"q=\"; base64_decode:offset 0, relative; {tail}"
    )));
    assert!(dec(&format!(
        "content:\"q=\"; base64_decode:relative; {tail} content:\"alert(1)\"; distance:0;"
    )));
    // Not relative: decoding starts at "GET" (valid base64), which is not the script.
    assert!(!dec(&format!("content:\"q=\"; base64_decode; {tail}")));
    // An offset past the start of the encoded text.
    assert!(!dec(&format!(
        "content:\"q=\"; base64_decode:offset 4,relative; {tail}"
    )));
    // `bytes 8` decodes `<scrip` only.
    assert!(dec(
        "content:\"q=\"; base64_decode:bytes 8,relative; base64_data; content:\"<scrip\"; bsize:6;"
    ));
    assert!(!dec(
        "content:\"q=\"; base64_decode:bytes 8,relative; base64_data; content:\"<script>\";"
    ));
    // Nothing decodes after "x=1 " ("1" alone is no byte; " " stops it).
    assert!(!dec(
        "content:\"x=\"; base64_decode:relative; base64_data; content:!\"zzz\";"
    ));
    assert!(!dec("content:\"x=\"; base64_decode:relative;"));
    assert!(dec("content:\"q=\"; base64_decode:relative;"));
    // The decoded bytes helper: padding and trailing characters.
    let f = detect::base64_prefix;
    assert_eq!(f(b"QUJD"), b"ABC");
    assert_eq!(f(b"QUI=rest"), b"AB");
    assert_eq!(f(b"QUJDR"), b"ABC");
    assert_eq!(f(b"QUJDRA"), b"ABCD");
    assert_eq!(f(b"!QUJD"), b"");
    // The decoded bytes are their own buffer: no fast pattern, a chain of their own.
    for bad in [
        "alert tcp any any -> any any (base64_data; content:\"a\"; sid:1;)",
        "alert tcp any any -> any any (base64_decode:bytes 0; sid:1;)",
        "alert tcp any any -> any any (base64_decode:bytes x; sid:1;)",
        "alert tcp any any -> any any (base64_decode:width 2; sid:1;)",
    ] {
        skip(bad);
    }
}

proptest! {
    // Any bytes decode without a panic; encoded data decodes back to itself, also when cut
    // by a byte outside the alphabet.
    #[test]
    fn base64_prefix_round_trip(data in proptest::collection::vec(any::<u8>(), 0..200), junk in any::<u8>()) {
        use base64::Engine as _;
        let _ = detect::base64_prefix(&data);
        let enc = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&data);
        prop_assert_eq!(detect::base64_prefix(enc.as_bytes()), data.clone());
        if !(junk.is_ascii_alphanumeric() || junk == b'+' || junk == b'/') {
            let mut cut = enc.into_bytes();
            cut.push(junk);
            cut.extend_from_slice(b"QUJD");
            prop_assert_eq!(detect::base64_prefix(&cut), data);
        }
    }
}

// ET Open's base64_decode rules load (a sample of their forms).
#[test]
fn base64_et_open_forms_load() {
    let rules = "alert http any any -> any any (msg:\"x\"; flow:established,to_server; http.uri; content:\"/cgi-bin/\"; base64_decode:offset 0,relative; base64_data; content:\"|60|\"; startswith; sid:1;)\n\
        alert http any any -> any any (msg:\"y\"; http.request_body; content:\"data=\"; base64_decode:bytes 300, offset 0, relative; base64_data; content:\"<!DOCTYPE\"; content:\"SYSTEM\"; distance:0; sid:2;)\n\
        alert http any any -> any any (msg:\"z\"; http.request_body; content:\"p=\"; base64_decode:offset 0, relative; base64_data; pcre:\"/^[\\x20-\\x7e\\r\\n]{0,13}[^\\x20-\\x7e\\r\\n]/si\"; sid:3;)\n";
    let rs = set(rules);
    let body: &[u8] = b"data=PCFET0NUWVBFIGZvbyBTWVNURU0gImZpbGU6Ly8vZXRjL3Bhc3N3ZCI+";
    let got = http(rules, &[(BufferKind::HttpRequestBody, body)]);
    assert_eq!(got, vec![2], "{:?}", rs.rules().len());
}

#[test]
fn sticky_and_legacy_buffers() {
    let bufs: &[(BufferKind, &[u8])] = &[
        (BufferKind::HttpUri, b"/index.php?id=1"),
        (BufferKind::HttpMethod, b"GET"),
        (BufferKind::HttpHost, b"example.com"),
        (BufferKind::HttpUserAgent, b"curl/8.0"),
    ];
    let rules = r#"
alert http any any -> any any (http.uri; content:"index.php"; sid:1;)
alert http any any -> any any (content:"index.php"; http_uri; sid:2;)
alert tcp any any -> any any (uricontent:"id="; sid:3;)
alert http any any -> any any (http.method; content:"GET"; bsize:3; http.host; content:"example"; startswith; sid:4;)
alert http any any -> any any (http.user_agent; content:"wget"; sid:5;)
alert http any any -> any any (http.uri; bsize:>100; sid:6;)
alert http any any -> any any (pcre:"/php\?id=\d/U"; sid:7;)
alert http any any -> any any (content:"index.php"; sid:8;)
alert http any any -> any any (urilen:15; sid:9;)
"#;
    assert_eq!(http(rules, bufs), [1, 2, 3, 4, 7, 9]);
}

#[test]
fn app_proto_and_dotprefix() {
    let rs = set(
        r#"alert dns any any -> any any (dns.query; dotprefix; content:".example.com"; endswith; sid:1;)
alert dns any any -> any any (dns_query; content:"EXAMPLE"; nocase; sid:2;)
alert tls any any -> any any (tls.sni; content:"example"; sid:3;)"#,
    );
    let map: HashMap<BufferKind, Vec<u8>> =
        [(BufferKind::DnsQuery, b"www.example.com".to_vec())].into();
    let mut p = pkt(IpProto::Udp, b"");
    p.app_proto = Some(AppProto::Dns);
    assert_eq!(sids_with(&rs, &p, &map), [1, 2]);
    let exact: HashMap<BufferKind, Vec<u8>> =
        [(BufferKind::DnsQuery, b"example.com".to_vec())].into();
    assert_eq!(sids_with(&rs, &p, &exact), [1, 2]);
    let other: HashMap<BufferKind, Vec<u8>> =
        [(BufferKind::DnsQuery, b"badexample.com".to_vec())].into();
    assert_eq!(sids_with(&rs, &p, &other), [2]);
    p.app_proto = None;
    assert!(sids_with(&rs, &p, &map).is_empty());
}

#[test]
fn stream_buffer_preferred_for_tcp() {
    let rs = set(
        r#"alert tcp any any -> any any (content:"hello world"; sid:1;)
alert tcp-pkt any any -> any any (content:"hello world"; sid:2;)
alert tcp-stream any any -> any any (content:"hello world"; sid:3;)"#,
    );
    let stream: HashMap<BufferKind, Vec<u8>> =
        [(BufferKind::Stream, b"hello world".to_vec())].into();
    assert_eq!(
        sids_with(&rs, &pkt(IpProto::Tcp, b"world"), &stream),
        [1, 3]
    );
    assert_eq!(sids(&rs, &pkt(IpProto::Tcp, b"hello world")), [1, 2]);
}

// Suricata's `SigValidate`: a TCP payload rule with packet keywords or a content anchored by
// `offset`/`depth`/`startswith` inspects the packet's own payload as well as the stream.
#[test]
fn packet_too_for_anchored_payload_content() {
    let rs = set(
        r#"alert tcp any any -> any any (content:"a"; depth:4; sid:1;)
alert tcp any any -> any any (content:"a"; offset:1; sid:2;)
alert tcp any any -> any any (content:"a"; startswith; sid:3;)
alert tcp any any -> any any (dsize:>0; content:"a"; sid:4;)
alert tcp any any -> any any (content:"a"; content:"b"; distance:0; within:4; sid:5;)
alert http any any -> any any (http.uri; content:"a"; depth:4; sid:6;)
alert tcp any any -> any any (pcre:"/a/"; byte_test:1,=,1,6,relative,string,dec; sid:7;)"#,
    );
    let too: Vec<u32> = rs
        .rules()
        .iter()
        .filter(|r| r.packet_too)
        .map(|r| r.sid)
        .collect();
    assert_eq!(too, [1, 2, 3, 4]);
    // The stream's "a" is past the depth and not at its start: the anchored rules 1 and 3
    // match the packet's own payload, the others the stream.
    let stream = InStream(b"zzzzzzab".to_vec());
    assert_eq!(
        sids_with(&rs, &pkt(IpProto::Tcp, b"ab"), &stream),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(
        sids_with(&rs, &pkt(IpProto::Tcp, b"zz"), &stream),
        [2, 4, 5]
    );
}

/// A stream buffer holding the packet's payload (IDS timing).
struct InStream(Vec<u8>);

impl Buffers for InStream {
    fn get(&self, kind: BufferKind) -> Option<&[u8]> {
        (kind == BufferKind::Stream).then_some(self.0.as_slice())
    }

    fn payload_in_stream(&self) -> bool {
        true
    }
}

// `stream-event` matches the events the packet raised; a name svm never raises is refused.
#[test]
fn stream_event_keyword() {
    let rs = set(
        r#"alert tcp any any -> any any (stream-event:suspected_rst_inject; sid:1;)
alert tcp any any -> any any (stream-event:reassembly_overlap_different_data; sid:2;)
alert tcp any any -> any any (stream-event:pkt_invalid_timestamp; sid:3;)"#,
    );
    let mut p = pkt(IpProto::Tcp, b"x");
    assert!(sids(&rs, &p).is_empty());
    p.stream_events = ast::stream_event::SUSPECTED_RST_INJECT;
    assert_eq!(sids(&rs, &p), [1]);
    p.stream_events |= ast::stream_event::REASSEMBLY_OVERLAP_DIFFERENT_DATA;
    assert_eq!(sids(&rs, &p), [1, 2]);
    p.stream_events = ast::stream_event::PKT_INVALID_TIMESTAMP;
    assert_eq!(sids(&rs, &p), [3]);
    let e = skip("alert tcp any any -> any any (stream-event:pkt_broken_ack; sid:4;)");
    assert!(format!("{e:?}").contains("pkt_broken_ack"), "{e:?}");
}

#[test]
fn header_addresses_ports_direction() {
    let rs = set(
        r#"alert tcp $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS (sid:1;)
alert tcp $EXTERNAL_NET any -> $HOME_NET any (sid:2;)
alert tcp $EXTERNAL_NET any <> $HOME_NET any (sid:3;)
alert tcp any [1024:,!40000] -> any any (sid:4;)
alert udp any any -> any any (sid:5;)
alert ip [10.0.0.0/8,!10.0.0.1] any -> any any (sid:6;)
alert tcp any any -> any :79 (sid:7;)"#,
    );
    assert_eq!(sids(&rs, &pkt(IpProto::Tcp, b"x")), [1, 3]);
}

#[test]
fn flow_keyword() {
    let rs = set(
        r#"alert tcp any any -> any any (flow:established,to_server; sid:1;)
alert tcp any any -> any any (flow:not_established; sid:2;)
alert tcp any any -> any any (flow:to_client; sid:3;)
alert tcp any any -> any any (flow:from_client,stateless; sid:4;)"#,
    );
    let mut p = pkt(IpProto::Tcp, b"x");
    assert_eq!(sids(&rs, &p), [1, 4]);
    p.flow.established = false;
    p.flow.to_server = false;
    assert_eq!(sids(&rs, &p), [2, 3]);
    p.flow.has_flow = false;
    assert!(sids(&rs, &p).is_empty());
}

#[test]
fn packet_keywords() {
    let rs = set(r#"alert tcp any any -> any any (flags:PA; sid:1;)
alert tcp any any -> any any (flags:S; sid:2;)
alert tcp any any -> any any (flags:+A; sid:3;)
alert tcp any any -> any any (flags:*SA; sid:4;)
alert tcp any any -> any any (flags:!S; sid:5;)
alert tcp any any -> any any (flags:P,A; sid:6;)
alert tcp any any -> any any (dsize:3; sid:7;)
alert tcp any any -> any any (dsize:>10; sid:8;)
alert tcp any any -> any any (dsize:1<>5; sid:9;)
alert tcp any any -> any any (ttl:64; sid:10;)
alert tcp any any -> any any (ttl:<10; sid:11;)
alert tcp any any -> any any (fragbits:D; sid:12;)
alert tcp any any -> any any (fragbits:M; sid:13;)
alert ip any any -> any any (ip_proto:6; sid:14;)
alert ip any any -> any any (ip_proto:!tcp; sid:15;)"#);
    assert_eq!(
        sids(&rs, &pkt(IpProto::Tcp, b"abc")),
        [1, 3, 4, 5, 6, 7, 9, 10, 12, 14]
    );
}

#[test]
fn icmp_keywords() {
    let rs = set(r#"alert icmp any any -> any any (itype:8; sid:1;)
alert icmp any any -> any any (itype:>8; sid:2;)
alert icmp any any -> any any (icode:0; sid:3;)
alert icmp any any -> any any (icmp_id:7; sid:4;)
alert icmp any any -> any any (icmp_seq:9; sid:5;)
alert icmp any any -> any any (icmp_seq:10; sid:6;)
alert icmpv6 any any -> any any (itype:128; sid:7;)"#);
    let mut p = pkt(IpProto::Icmp, b"");
    p.icmp = Some((8, 0, 7, 9));
    assert_eq!(sids(&rs, &p), [1, 3, 4, 5]);
}

/// Sids alerting on one TCP packet of a flow with this state.
fn flow_sids(
    rs: &RuleSet,
    payload: &[u8],
    fs: &mut FlowRuleState,
    th: &mut ThresholdState,
) -> Vec<u32> {
    let mut out = Vec::new();
    rs.inspect(
        &pkt(IpProto::Tcp, payload),
        &NoBuffers,
        fs,
        th,
        Timestamp(0),
        &mut out,
    );
    out.iter().filter(|m| m.alert).map(|m| m.sid).collect()
}

#[test]
fn flowbits_set_isset_noalert() {
    let rs = set(
        r#"alert tcp any any -> any any (content:"login"; flowbits:set,auth; flowbits:noalert; sid:1;)
alert tcp any any -> any any (content:"cmd"; flowbits:isset,auth; sid:2;)
alert tcp any any -> any any (content:"cmd"; flowbits:isnotset,auth; sid:3;)
alert tcp any any -> any any (content:"bye"; flowbits:unset,auth; sid:4;)
alert tcp any any -> any any (content:"x"; flowbits:isset,a|auth; sid:5;)"#,
    );
    let mut fs = FlowRuleState::new();
    let mut th = ThresholdState::new();
    let mut run = |payload: &[u8], fs: &mut FlowRuleState| flow_sids(&rs, payload, fs, &mut th);
    assert_eq!(run(b"cmd", &mut fs), [3]);
    assert!(run(b"login", &mut fs).is_empty());
    assert_eq!(run(b"cmd x", &mut fs), [2, 5]);
    assert_eq!(run(b"bye", &mut fs), [4]);
    assert_eq!(run(b"cmd", &mut fs), [3]);
    // Set and check in the same packet: setters run first.
    let mut fresh = FlowRuleState::new();
    assert_eq!(run(b"login cmd", &mut fresh), [2]);
}

#[test]
fn action_order_and_pass() {
    let rs = set(r#"alert tcp any any -> any any (content:"Hi all"; sid:1;)
pass tcp any any -> any any (content:"Hi all"; sid:2;)
drop tcp any any -> any any (content:"Hi all"; sid:3;)
drop tcp any any -> any any (content:"other"; sid:4;)"#);
    assert!(sids(&rs, &pkt(IpProto::Tcp, b"Hi all")).is_empty());
    assert_eq!(sids(&rs, &pkt(IpProto::Tcp, b"other")), [4]);
    assert_eq!(rs.rules().first().map(|r| r.action), Some(RuleAction::Pass));
}

// Suricata's `action-order`: with `drop, alert, reject, pass` the pass rule comes last and
// hides nothing (util-action-07); a bad list is refused.
#[test]
fn configurable_action_order() {
    let text = r#"alert tcp any any -> any any (content:"Hi all"; sid:1;)
pass tcp any any -> any any (content:"Hi all"; sid:2;)
drop tcp any any -> any any (content:"Hi all"; sid:3;)
"#;
    let p = pkt(IpProto::Tcp, b"Hi all!");
    assert!(sids(&set(text), &p).is_empty());
    let mut b = RuleSetBuilder::default();
    b.add_text("t.rules", text);
    b.set_action_order(ActionOrder::parse(&["drop", "Alert", "reject", "pass"]).unwrap());
    let rs = b.build();
    assert_eq!(sids(&rs, &p), vec![1, 3]);
    let mut out = Vec::new();
    let mut fs = FlowRuleState::new();
    rs.inspect(
        &p,
        &NoBuffers,
        &mut fs,
        &mut ThresholdState::new(),
        Timestamp(0),
        &mut out,
    );
    let order: Vec<u32> = out.iter().map(|m| m.sid).collect();
    assert_eq!(order, vec![3, 1, 2]);
    assert_eq!(
        ActionOrder::parse(&["pass", "drop", "reject", "alert"]),
        Ok(ActionOrder::default())
    );
    for bad in [
        &["drop", "alert", "reject"][..],
        &["drop", "alert", "reject", "pass", "pass"],
        &["drop", "drop", "reject", "pass"],
        &["drop", "alert", "reject", "allow"],
    ] {
        assert!(ActionOrder::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn ip_only_once_per_direction_and_flow_pass() {
    let rs = set(r#"alert ip 10.0.0.1 any -> any any (sid:1;)
alert tcp any any -> any any (content:"x"; sid:2;)"#);
    assert!(rs.rules().iter().any(|r| r.is_ip_only()));
    let mut fs = FlowRuleState::new();
    let mut th = ThresholdState::new();
    let mut count = |p: &PacketView<'_>, fs: &mut FlowRuleState| {
        let mut out = Vec::new();
        rs.inspect(p, &NoBuffers, fs, &mut th, Timestamp(0), &mut out);
        out.iter().filter(|m| m.sid == 1).count()
    };
    let p = pkt(IpProto::Tcp, b"x");
    assert_eq!(count(&p, &mut fs), 1);
    assert_eq!(count(&p, &mut fs), 0);
    let mut back = p;
    back.flow.to_server = false;
    back.src = "8.8.8.8".parse().unwrap();
    back.dst = "10.0.0.1".parse().unwrap();
    assert_eq!(count(&back, &mut fs), 0);

    let pass = set(r#"pass ip 10.0.0.1 any -> any any (sid:1;)
alert tcp any any -> any any (content:"x"; sid:2;)"#);
    let mut fs = FlowRuleState::new();
    let mut out = Vec::new();
    pass.inspect(&p, &NoBuffers, &mut fs, &mut th, Timestamp(0), &mut out);
    assert!(fs.passed() && out.iter().all(|m| !m.alert));
    out.clear();
    pass.inspect(&back, &NoBuffers, &mut fs, &mut th, Timestamp(0), &mut out);
    assert!(out.is_empty());
}

#[test]
fn thresholds_in_rules_with_time() {
    let rs = set(r#"alert icmp any any -> any any (itype:8; sid:1;)
alert icmp any any -> any any (itype:8; threshold:type limit, track by_flow, count 2, seconds 3600; sid:2;)
alert icmp any any -> any any (itype:8; threshold:type both, track by_src, count 3, seconds 10; sid:3;)
alert icmp any any -> any any (itype:8; detection_filter:track by_src, count 4, seconds 3600; sid:4;)"#);
    let mut p = pkt(IpProto::Icmp, b"");
    p.icmp = Some((8, 0, 1, 1));
    let mut fs = FlowRuleState::new();
    let mut th = ThresholdState::new();
    let mut counts = [0usize; 5];
    for s in 0..8u64 {
        let mut out = Vec::new();
        rs.inspect(
            &p,
            &NoBuffers,
            &mut fs,
            &mut th,
            Timestamp::from_secs_micros(s, 0),
            &mut out,
        );
        for m in out.iter().filter(|m| m.alert) {
            counts[m.sid as usize] += 1;
        }
    }
    // sid 3: window of 10 s, alert once at the 3rd hit.
    assert_eq!(counts[1..], [8, 2, 1, 4]);
    let mut later = Vec::new();
    for s in [20u64, 21, 22] {
        rs.inspect(
            &p,
            &NoBuffers,
            &mut fs,
            &mut th,
            Timestamp::from_secs_micros(s, 0),
            &mut later,
        );
    }
    assert_eq!(later.iter().filter(|m| m.sid == 3 && m.alert).count(), 1);
}

#[test]
fn suppress_from_threshold_config() {
    let mut b = RuleSetBuilder::default();
    let (cfg, errs) = ThresholdConfig::parse(
        "suppress gen_id 1, sig_id 1000001, track by_src, ip 10.0.0.1\n",
        &Vars::default(),
    );
    assert!(errs.is_empty());
    b.set_threshold_config(cfg);
    b.add_text("t", "drop tcp any any -> any any (dsize:0; sid:1000001;)");
    let rs = b.build();
    let mut out = Vec::new();
    let p = pkt(IpProto::Tcp, b"");
    rs.inspect(
        &p,
        &NoBuffers,
        &mut FlowRuleState::new(),
        &mut ThresholdState::new(),
        Timestamp(0),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert!(!out[0].alert && out[0].action == RuleAction::Drop);
    let mut other = p;
    other.src = "10.9.9.9".parse::<IpAddr>().unwrap();
    assert_eq!(sids(&rs, &other), [1000001]);
}

#[test]
fn rule_metadata() {
    let rs = set(
        r#"alert tcp any any -> any any (msg:"a \"quoted\" msg\; ok"; content:"x"; classtype:trojan-activity; reference:url,example.com; metadata:former_category MALWARE; target:src_ip; gid:3; sid:5; rev:7;)
alert tcp any any -> any any (msg:"p"; content:"x"; classtype:trojan-activity; priority:3; sid:6;)"#,
    );
    let mut out = Vec::new();
    rs.inspect(
        &pkt(IpProto::Tcp, b"x"),
        &NoBuffers,
        &mut FlowRuleState::new(),
        &mut ThresholdState::new(),
        Timestamp(0),
        &mut out,
    );
    let m = out.iter().find(|m| m.sid == 5).unwrap();
    assert_eq!((m.gid, m.rev, m.priority), (3, 7, 1));
    assert_eq!(&*m.msg, "a \"quoted\" msg; ok");
    assert_eq!(m.category.as_deref(), Some("A Network Trojan was detected"));
    assert_eq!(out.iter().find(|m| m.sid == 6).unwrap().priority, 3);
    assert_eq!(
        rs.rules().iter().find(|r| r.sid == 5).unwrap().id(),
        "3:5:7"
    );
}

#[test]
fn fast_pattern_variants_load() {
    assert!(hit(
        r#"content:"abc"; fast_pattern; content:"longer pattern";"#,
        b"abc longer pattern"
    ));
    assert!(hit(r#"content:"abcdef"; fast_pattern:only;"#, b"xxabcdef"));
    assert!(hit(r#"content:"abcdefgh"; fast_pattern:2,3;"#, b"abcdefgh"));
    assert!(!hit(r#"content:"abcdefgh"; fast_pattern:2,3;"#, b"cde"));
}

#[test]
fn parser_errors_name_line_and_keyword() {
    let mut b = RuleSetBuilder::default();
    let rep = b.add_text(
        "x.rules",
        "# comment\n\nalert tcp any any -> any any (content:\"ab\"; sid:1;)\n\
         alert tcp any any -> any any (content:\"abc\"; content:\"d\"; within:0; sid:2;)\n\
         alert tcp any any -> any any (content:\"abc\"; depth:2; sid:3;)\n\
         alert tcp any any -> any any (content:\"ab\"; sid:1;)\n\
         alert tcp any any -> any any (content:\"ab\";)\n\
         alert tcp any any -> any any (foo_bar:1; sid:6;)\n\
         alert tcp any any -> any any (pcre:\"/(a)\\1/\"; sid:7;)\n\
         alert xyz any any -> any any (sid:8;)\n\
         alert tcp $NOPE any -> any any (sid:9;)\n\
         alert tcp any any -> any any (content:\"abc\" sid:10;)\n\
         alert tcp any any -> any any (content:\"a\"; offset:1; distance:1; sid:11;)\n\
         alert tcp any any \\\n  -> any any (content:\"a\"; sid:12;)\n",
    );
    assert_eq!(rep.loaded, 2, "{:?}", rep.skipped);
    let by_sid = |s: u32| rep.skipped.iter().find(|e| e.sid == Some(s)).unwrap();
    let e = by_sid(2);
    assert_eq!((e.line, e.keyword.as_str()), (4, "within"));
    assert!(matches!(e.kind, RuleErrorKind::Invalid(_)));
    assert_eq!(by_sid(3).keyword, "depth");
    let dup = rep
        .skipped
        .iter()
        .find(|e| e.kind == RuleErrorKind::Duplicate)
        .unwrap();
    assert_eq!(dup.line, 6);
    let missing = rep.skipped.iter().find(|e| e.line == 7).unwrap();
    assert_eq!((missing.line, missing.keyword.as_str()), (7, "sid"));
    assert_eq!(by_sid(6).keyword, "foo_bar");
    assert!(matches!(by_sid(6).kind, RuleErrorKind::Unsupported(_)));
    assert_eq!(by_sid(7).keyword, "pcre");
    assert_eq!(by_sid(8).keyword, "protocol");
    assert_eq!(by_sid(9).keyword, "source");
    assert_eq!(
        rep.skipped.iter().find(|e| e.line == 12).unwrap().keyword,
        "content"
    );
    assert_eq!(by_sid(11).keyword, "offset");
    let text = by_sid(2).to_string();
    assert!(
        text.contains("line 4") && text.contains("sid 2") && text.contains("within"),
        "{text}"
    );
    let table = rep.reasons();
    assert!(table.iter().any(|(k, n)| k == "foo_bar" && *n == 1));
}

#[test]
fn duplicate_with_higher_rev_replaces() {
    let mut b = RuleSetBuilder::default();
    b.add_text(
        "a",
        "alert tcp any any -> any any (content:\"a\"; sid:1; rev:1;)",
    );
    let rep = b.add_text(
        "b",
        "alert tcp any any -> any any (content:\"b\"; sid:1; rev:2;)",
    );
    assert_eq!(rep.skipped.len(), 1);
    let rs = b.build();
    assert_eq!(rs.len(), 1);
    assert_eq!(rs.rules()[0].rev, 2);
}

#[test]
fn more_syntax_errors() {
    for (rule, kw) in [
        (
            "alert tcp any any -> any any (content:\"a\"; nocase; sid:1",
            "options",
        ),
        ("alert tcp any any any -> any any (sid:1;)", "header"),
        ("alert tcp any any <- any any (sid:1;)", "direction"),
        ("alert tcp any 70000 -> any any (sid:1;)", "source port"),
        ("alert tcp any any -> any any (nocase; sid:1;)", "nocase"),
        (
            "alert tcp any any -> any any (content:\"|4|\"; sid:1;)",
            "content",
        ),
        ("alert tcp any any -> any any (flags:Q; sid:1;)", "flags"),
        ("alert tcp any any -> any any (dsize:x; sid:1;)", "dsize"),
        (
            "alert tcp any any -> any any (classtype:nope; sid:1;)",
            "classtype",
        ),
        (
            "alert tcp any any -> any any (threshold:type limit; sid:1;)",
            "threshold",
        ),
        (
            "alert tcp any any -> any any (flowbits:set; sid:1;)",
            "flowbits",
        ),
        ("alert tcp any any -> any any (bsize:5; sid:1;)", "bsize"),
        (
            "alert tcp any any -> any any (content:\"a\"; startswith; offset:1; sid:1;)",
            "startswith",
        ),
    ] {
        assert_eq!(skip(rule).keyword, kw, "{rule}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_never_panics(text in "\\PC{0,300}") {
        let mut b = RuleSetBuilder::default();
        let _ = b.add_text("p", &text);
        let _ = b.build();
    }

    #[test]
    fn rule_shaped_text_never_panics(
        action in prop::sample::select(vec!["alert", "drop", "pass", "reject", "x"]),
        proto in prop::sample::select(vec!["tcp", "udp", "ip", "http", "dns", "icmp"]),
        addr in "[!\\[\\]0-9./,$A-Z_a-z]{0,20}",
        port in "[!\\[\\]0-9:,$A-Z]{0,12}",
        opts in prop::collection::vec(
            prop::sample::select(vec![
                "content:\"ab|41|\"", "content:!\"x\"", "nocase", "depth:1", "offset:2",
                "distance:-3", "within:2", "pcre:\"/a(b)?/Ri\"", "isdataat:!1,relative",
                "byte_test:1,>,1,0,relative", "byte_jump:2,-1,relative,from_beginning",
                "dsize:<5", "flags:S+", "flow:established", "http.uri", "bsize:2<>9",
                "endswith", "startswith", "fast_pattern:0,1", "flowbits:set,x",
                "threshold:type limit,track by_src,count 1,seconds 1", "dns.query", "dotprefix",
                "byte_extract:1,0,v,relative", "byte_extract:2,-1,w,string,hex,multiplier 3",
                "distance:v", "within:w", "offset:v", "depth:w", "byte_jump:v,0,relative",
                "isdataat:w,relative", "byte_test:v,>,w,v",
            ]),
            0..8,
        ),
        payload in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let rule = format!("{action} {proto} {addr} {port} -> any any ({} ; sid:1;)", opts.join(";"));
        let mut b = RuleSetBuilder::default();
        let _ = b.add_text("p", &rule);
        let rs = b.build();
        let map: HashMap<BufferKind, Vec<u8>> = [
            (BufferKind::HttpUri, payload.clone()),
            (BufferKind::DnsQuery, payload.clone()),
        ].into();
        let mut p = pkt(IpProto::Tcp, &payload);
        p.app_proto = Some(AppProto::Http);
        let _ = sids_with(&rs, &p, &map);
    }
}

#[test]
fn ruleset_is_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<RuleSet>();
    check::<std::sync::Arc<RuleSet>>();
}

#[test]
fn buffer_kind_all_is_in_index_order() {
    for (i, k) in BufferKind::ALL.iter().enumerate() {
        assert_eq!(k.index(), i, "{k:?}");
    }
    assert_eq!(BufferKind::ALL.len(), BufferKind::COUNT);
}

// Each keyword names one kind (the payload and the packet share `pkt_data`), so the parser's
// lookup by name and `name` agree.
#[test]
fn buffer_kind_names_are_unique() {
    let mut seen = HashMap::new();
    for k in BufferKind::ALL {
        if let Some(other) = seen.insert(k.name(), k) {
            assert!(
                matches!((other, k), (BufferKind::Payload, BufferKind::Packet)),
                "{other:?} and {k:?} are both {}",
                k.name()
            );
        }
    }
}

// A `KindSet` gives back what it was given, in index order; its bits above the last kind are
// no kinds; the side masks offer each side's own kinds and the shared ones.
#[test]
fn kind_set_pops_in_index_order() {
    let mut all: KindSet = BufferKind::ALL.into_iter().rev().collect();
    let mut popped = Vec::new();
    while let Some(k) = all.pop_first() {
        popped.push(k);
    }
    assert_eq!(popped, BufferKind::ALL);
    assert!(all.is_empty());
    // Kinds past bit 63 (what a u64 mask could not hold) are kept and given back.
    let last = BufferKind::ALL[BufferKind::COUNT - 1];
    assert!(last.index() >= 64, "{last:?}");
    let mut wide = KindSet::EMPTY.with(last).with(BufferKind::Stream);
    assert!(wide.contains(last) && !wide.contains(BufferKind::Payload));
    assert_eq!(wide.pop_first(), Some(BufferKind::Stream));
    assert_eq!(wide.pop_first(), Some(last));
    assert_eq!(wide.pop_first(), None);
    let hdr = BufferKind::Icmpv6Hdr;
    let set = KindSet::EMPTY.with(hdr).with(BufferKind::Payload);
    assert!(set.contains(hdr) && set.contains(BufferKind::Payload));
    assert!(!set.contains(BufferKind::Stream));
    let payload = KindSet::EMPTY.with(BufferKind::Payload);
    assert_eq!(set.and(BufferKind::PACKET), payload);
    let headers = set.or(BufferKind::PACKET).and(BufferKind::HEADERS);
    assert_eq!(headers, KindSet::EMPTY.with(hdr));
    // The full set's bits above the last kind are no kinds.
    let mut full = KindSet::FULL;
    assert_eq!(
        std::iter::from_fn(|| full.pop_first()).count(),
        BufferKind::COUNT
    );
    // Each side offers its own kinds and the shared ones, never the headers.
    let (up, down) = (BufferKind::side_mask(true), BufferKind::side_mask(false));
    assert!(up.contains(BufferKind::HttpUri) && !down.contains(BufferKind::HttpUri));
    assert!(down.contains(BufferKind::HttpStatCode) && !up.contains(BufferKind::HttpStatCode));
    assert!(up.contains(BufferKind::FileData) && down.contains(BufferKind::FileData));
    assert!(up.and(BufferKind::HEADERS).is_empty() && down.and(BufferKind::HEADERS).is_empty());
}

// A reload that keeps the old set's flowbit ids (`keep_flowbits_of`): a bit a flow set under
// the old set means the same name under the new one, even where the new files name their
// flowbits in another order; without it the id would name another flowbit.
#[test]
fn flowbits_survive_a_reload_by_name() {
    let old = set(
        r#"alert tcp any any -> any any (content:"login"; flowbits:set,auth; flowbits:noalert; sid:1;)
alert tcp any any -> any any (content:"zz"; flowbits:set,other; flowbits:noalert; sid:9;)"#,
    );
    let new_text = r#"alert tcp any any -> any any (content:"q"; flowbits:isset,fresh; sid:3;)
alert tcp any any -> any any (content:"cmd"; flowbits:isset,other; sid:4;)
alert tcp any any -> any any (content:"cmd"; flowbits:isset,auth; sid:2;)"#;
    let mut b = RuleSetBuilder::default();
    b.keep_flowbits_of(&old);
    b.add_text("new", new_text);
    let kept = b.build();
    let mut b = RuleSetBuilder::default();
    b.add_text("new", new_text);
    let renumbered = b.build();
    let mut th = ThresholdState::new();
    let mut run =
        |rs: &RuleSet, payload: &[u8], fs: &mut FlowRuleState| flow_sids(rs, payload, fs, &mut th);
    let mut fs = FlowRuleState::new();
    assert!(run(&old, b"login", &mut fs).is_empty());
    assert_eq!(run(&kept, b"cmd", &mut fs), [2]);
    assert_eq!(kept.flowbit_count(), 3);
    // The same bits read by ids assigned afresh: `fresh` took `auth`'s id.
    let mut fs = FlowRuleState::new();
    assert!(run(&old, b"login", &mut fs).is_empty());
    assert_ne!(run(&renumbered, b"cmd q", &mut fs), [2]);
}

// Source lists mixing IPv4 and IPv6 addresses, or IPv6 only, on rules without content that are
// not IP-only (ET's Tor rules set a flowbit): indexed by their IPv4 ranges (none for the IPv6
// list, so IPv4 packets never try it), still found for IPv6 sources (listed or v4-mapped),
// never for other addresses.
#[test]
fn mixed_source_list_is_indexed_and_exact() {
    let rs = set("alert tcp [10.0.0.1,10.0.0.7,2001:db8::9] any -> any any \
         (flowbits:set,tor; sid:1;)\n\
         alert tcp [2001:db8::7,2001:db8::8] any -> any any (flowbits:set,tor6; sid:2;)\n");
    let from = |src: &str| {
        let mut p = pkt(IpProto::Tcp, b"x");
        p.src = src.parse().unwrap();
        p.ip_v6 = p.src.is_ipv6();
        sids(&rs, &p)
    };
    assert_eq!(from("10.0.0.1"), [1]);
    assert_eq!(from("10.0.0.7"), [1]);
    assert!(from("10.0.0.2").is_empty());
    assert_eq!(from("2001:db8::9"), [1]);
    assert_eq!(from("2001:db8::8"), [2]);
    assert!(from("2001:db8::6").is_empty());
    assert_eq!(from("::ffff:10.0.0.7"), [1]);
}

/// A relative chain over thousands of candidate positions uses up its inspection steps: the
/// rule gives up, and the run-time error is counted.
#[test]
fn an_exhausted_inspection_is_a_counted_runtime_error() {
    let s = set(
        "alert tcp any any -> any any (content:\"a\"; content:\"b\"; distance:0; within:1; sid:1;)",
    );
    let steps = &s.rules()[0].chains[0].steps;
    let before = runtime::runtime_errors().inspect_limit;
    assert!(detect::match_chain(steps, b"xxab"));
    let mut buf = vec![b'a'; 4000];
    buf.push(b'b');
    assert!(
        !detect::match_chain(steps, &buf),
        "the match past the limit is missed"
    );
    assert!(runtime::runtime_errors().inspect_limit > before);
}

// The legacy certificate keywords: a substring of the field, `!` inverts; the fingerprint's
// value is lowercased (the field is lowercase), subject and issuer are case-sensitive.
#[test]
fn legacy_certificate_keywords() {
    let rs = set(
        r#"alert tls any any -> any any (tls.fingerprint:"90:86:A4:3B"; sid:1;)
alert tls any any -> any any (tls.fingerprint:!"90:86:a4:3c"; sid:2;)
alert tls any any -> any any (tls.fingerprint:"90:86:a4:3c"; sid:3;)
alert tls any any -> any any (tls.subject:"CN=probe"; sid:4;)
alert tls any any -> any any (tls.subject:"cn=probe"; sid:5;)
alert tls any any -> any any (tls.issuerdn:!"O=Other"; sid:6;)
alert tls any any -> any any (tls.issuerdn:"O=Other"; sid:7;)"#,
    );
    let map: HashMap<BufferKind, Vec<u8>> = [
        (BufferKind::TlsCertFingerprint, b"90:86:a4:3b:f5".to_vec()),
        (
            BufferKind::TlsCertSubject,
            b"O=x, CN=probe.example".to_vec(),
        ),
        (BufferKind::TlsCertIssuer, b"O=Probe CA".to_vec()),
    ]
    .into();
    let mut p = pkt(IpProto::Tcp, b"");
    p.app_proto = Some(AppProto::Tls);
    assert_eq!(sids_with(&rs, &p, &map), [1, 2, 4, 6]);
    // No certificate: neither the keyword nor its negation matches.
    let none: HashMap<BufferKind, Vec<u8>> = HashMap::new();
    assert!(sids_with(&rs, &p, &none).is_empty());
    let mut b = RuleSetBuilder::default();
    let rep = b.add_text(
        "t",
        r#"alert tls any any -> any any (tls.fingerprint:""; sid:1;)"#,
    );
    assert_eq!(rep.loaded, 0);
}

// `url_decode`: `%HH` and `+` decoded before the chain runs; the encoded form no longer
// matches; a bad escape is kept; the prefilter does not skip the rule for the decoded content.
#[test]
fn url_decode_transform() {
    let rs = set(
        r#"alert http any any -> any any (http.request_body; url_decode; content:"mail=test@oisf.net a"; sid:1;)
alert http any any -> any any (http.request_body; content:"mail=test@oisf.net"; sid:2;)
alert http any any -> any any (http.request_body; url_decode; content:"%4"; endswith; sid:3;)
alert http any any -> any any (http.uri; url_decode; dotprefix; content:"./a b"; startswith; sid:4;)"#,
    );
    let map: HashMap<BufferKind, Vec<u8>> = [
        (
            BufferKind::HttpRequestBody,
            b"mail=test%40oisf.net+a%4".to_vec(),
        ),
        (BufferKind::HttpUri, b"/a%20b".to_vec()),
    ]
    .into();
    let mut p = pkt(IpProto::Tcp, b"");
    p.app_proto = Some(AppProto::Http);
    assert_eq!(sids_with(&rs, &p, &map), [1, 3, 4]);
    let mut b = RuleSetBuilder::default();
    let rep = b.add_text(
        "t",
        r#"alert http any any -> any any (http.uri; content:"a"; url_decode; sid:1;)"#,
    );
    assert_eq!(rep.loaded, 0);
}

proptest! {
    // Percent-encoding any bytes (upper or lower hex) decodes back to them.
    #[test]
    fn url_decode_inverts_percent_encoding(data in proptest::collection::vec(any::<u8>(), 0..64), lower in any::<bool>()) {
        let enc: String = data
            .iter()
            .map(|b| if lower { format!("%{b:02x}") } else { format!("%{b:02X}") })
            .collect();
        let mut out = Vec::new();
        detect::url_decode(enc.as_bytes(), &mut out);
        prop_assert_eq!(out, data);
    }
}

// Header sticky buffers read the packet's own headers (Suricata's `ipv4.hdr`, `tcp.hdr`, ...):
// only on packets that have that header, and never on a pseudo packet (empty headers).
#[test]
fn header_buffers() {
    // IPv4 with TOS 0 and id 1; TCP header with data offset 5, flags PA.
    let ip4: &[u8] = &[
        0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 8, 8, 8, 8,
    ];
    let tcp: &[u8] = &[
        0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 2, 0, 0, 0, 0, 0,
    ];
    let rs = set(concat!(
        "alert ip any any -> any any (ipv4.hdr; content:\"|00 01|\"; offset:4; depth:2; sid:1;)\n",
        "alert tcp any any -> any any (tcp.hdr; content:\"|50 18|\"; offset:12; sid:2;)\n",
        "alert ip any any -> any any (ipv6.hdr; content:\"|45|\"; sid:3;)\n",
        "alert udp any any -> any any (udp.hdr; content:\"|00 50|\"; sid:4;)\n",
    ));
    let mut p = pkt(IpProto::Tcp, b"");
    p.ip_header = ip4;
    p.l4_header = tcp;
    assert_eq!(sids(&rs, &p), vec![1, 2]);
    // The same bytes on an IPv6 packet: only `ipv6.hdr` reads the IP header.
    p.ip_v6 = true;
    assert_eq!(sids(&rs, &p), vec![2, 3]);
    // A pseudo packet has no headers.
    let p = pkt(IpProto::Tcp, b"");
    assert_eq!(sids(&rs, &p), Vec::<u32>::new());
    // A header the rule's protocol cannot have is refused, as Suricata does.
    assert_eq!(
        skip("alert udp any any -> any any (tcp.hdr; content:\"a\"; sid:1;)").keyword,
        "tcp.hdr"
    );
    assert_eq!(
        skip("alert tcp any any -> any any (icmpv4.hdr; content:\"a\"; sid:1;)").keyword,
        "icmpv4.hdr"
    );
}

#[test]
fn ipopts_keyword() {
    let rs = set(concat!(
        "alert ip any any -> any any (ipopts:rr; sid:1;)\n",
        "alert ip any any -> any any (ipopts:eol; sid:2;)\n",
        "alert ip any any -> any any (ipopts:any; sid:3;)\n",
        "alert ip any any -> any any (ipopts:lsrr; sid:4;)\n",
    ));
    let mut hdr = vec![
        0x46, 0, 0, 44, 0, 1, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 8, 8, 8, 8,
    ];
    hdr.extend_from_slice(&[7, 3, 4, 0]);
    let mut p = pkt(IpProto::Tcp, b"");
    p.ip_header = &hdr;
    assert_eq!(sids(&rs, &p), vec![1, 2, 3]);
    // No options; and IPv6 never has IPv4 options.
    let plain = hdr.get(..20).unwrap().to_vec();
    p.ip_header = &plain;
    assert_eq!(sids(&rs, &p), Vec::<u32>::new());
    p.ip_header = &hdr;
    p.ip_v6 = true;
    assert_eq!(sids(&rs, &p), Vec::<u32>::new());
    assert_eq!(
        skip("alert ip any any -> any any (ipopts:bogus; sid:1;)").keyword,
        "ipopts"
    );
}

// `stream_size` compares the sequence space a side used (Suricata's `next_seq - isn`).
#[test]
fn stream_size_keyword() {
    let rs = set(concat!(
        "alert tcp any any -> any any (stream_size:server,<,10; sid:1;)\n",
        "alert tcp any any -> any any (stream_size:client,>=,100; sid:2;)\n",
        "alert tcp any any -> any any (stream_size:both,>,5; sid:3;)\n",
        "alert tcp any any -> any any (stream_size:either,=,1; sid:4;)\n",
        "alert tcp any any -> any any (stream_size:client,!=,100; sid:5;)\n",
    ));
    let mut p = pkt(IpProto::Tcp, b"x");
    p.stream_size = Some((100, 1));
    assert_eq!(sids(&rs, &p), vec![1, 2, 4]);
    p.stream_size = Some((50, 20));
    assert_eq!(sids(&rs, &p), vec![3, 5]);
    // No TCP session: nothing to compare.
    p.stream_size = None;
    assert_eq!(sids(&rs, &p), Vec::<u32>::new());
    for bad in ["server,<", "middle,<,1", "server,<>,1", "server,<,x"] {
        let e = skip(&format!(
            "alert tcp any any -> any any (stream_size:{bad}; sid:1;)"
        ));
        assert_eq!(e.keyword, "stream_size", "{bad}");
    }
}

// `decode-event`: the rule matches a packet carrying the event (Suricata's name, with or
// without `decoder.`), not one without it or with another; `pkthdr` loads as `ip`; an event
// svm never raises is skipped with its name.
#[test]
fn decode_event_keyword() {
    use crate::decode::DecodeEvent;
    let rs = set(concat!(
        "alert pkthdr any any -> any any (decode-event:ipv6.frag_overlap; sid:1;)\n",
        "alert ip any any -> any any (decode-event:decoder.ipv6.exthdr_useless_fh; sid:2;)\n",
        "alert tcp any any -> any any (decode-event:tcp.pkt_too_small; sid:3;)\n",
    ));
    let mut p = pkt(IpProto::Icmpv6, b"");
    assert!(sids(&rs, &p).is_empty());
    p.events = DecodeEvent::Ipv6FragOverlap.bit();
    assert_eq!(sids(&rs, &p), [1]);
    p.events |= DecodeEvent::Ipv6UselessFragHeader.bit();
    assert_eq!(sids(&rs, &p), [1, 2]);
    // The header protocol still applies: a TCP event on a TCP packet only.
    p.events = DecodeEvent::TcpTooSmall.bit();
    assert!(sids(&rs, &p).is_empty());
    let mut t = pkt(IpProto::Tcp, b"");
    t.events = DecodeEvent::TcpTooSmall.bit();
    assert_eq!(sids(&rs, &t), [3]);
    let e = skip("alert pkthdr any any -> any any (decode-event:ipv6.rh_type_0; sid:4;)");
    assert_eq!(e.keyword, "decode-event");
    assert!(matches!(e.kind, RuleErrorKind::Unsupported(ref d) if d.contains("rh_type_0")));
}

// Every event with a Suricata name maps back to itself.
#[test]
fn decode_event_names_round_trip() {
    use crate::decode::DecodeEvent;
    for e in DecodeEvent::ALL {
        if let Some(n) = e.suricata_name() {
            assert_eq!(DecodeEvent::from_suricata_name(n), Some(e), "{n}");
        }
    }
    assert_eq!(DecodeEvent::from_suricata_name("ipv4.no_such_event"), None);
}

// `ipv4`/`ipv6` (`ip4`/`ip6`) match their IP version only; `icmpv6.mtu` reads the MTU of a
// Packet Too Big (type 2, code 0) and nothing else.
#[test]
fn ip_version_protocols_and_icmpv6_mtu() {
    let rs = set(concat!(
        "alert ipv6 any any -> any any (icmpv6.mtu:<1280; sid:1;)\n",
        "alert ip4 any any -> any any (ttl:64; sid:2;)\n",
        "alert ip6 any any -> any any (ttl:64; sid:3;)\n",
        "alert icmpv6 any any -> any any (icmpv6.mtu:1500; sid:4;)\n",
    ));
    let mut p = pkt(IpProto::Icmpv6, b"");
    p.ip_v6 = true;
    p.icmp = Some((2, 0, 0, 1200));
    assert_eq!(sids(&rs, &p), [1, 3]);
    p.icmp = Some((2, 0, 0, 1500));
    assert_eq!(sids(&rs, &p), [3, 4]);
    // A 32-bit MTU: the high half counts.
    p.icmp = Some((2, 0, 1, 1200));
    assert_eq!(sids(&rs, &p), [3]);
    // Another type or code carries no MTU.
    p.icmp = Some((1, 0, 0, 1200));
    assert_eq!(sids(&rs, &p), [3]);
    p.icmp = Some((2, 1, 0, 1200));
    assert_eq!(sids(&rs, &p), [3]);
    let v4 = pkt(IpProto::Udp, b"");
    assert_eq!(sids(&rs, &v4), [2]);
    assert_eq!(
        skip("alert ipv4 any any -> any any (ipv6.hdr; content:\"x\"; sid:5;)").keyword,
        "ipv6.hdr"
    );
}

// `vlan.id` (Suricata's layers: any by default, `all`, 0..=2 from the outermost, -3..=-1 from
// the innermost) and `vlan.layers`, on the detect-vlan-id case's three tags 200, 300, 400.
#[test]
fn vlan_id_and_layers() {
    let rules = [
        "vlan.id:200,0;",
        "vlan.id:300;",
        "vlan.id:400,-1;",
        "vlan.id:0x12C,1;",
        "vlan.id:!200,1;",
        "vlan.id:!500,all;",
        "vlan.id:100-600,2;",
        "vlan.id:<400,1;",
        "vlan.id:>=0xC8;",
        "vlan.id:>100,all;",
        "vlan.id:200,1;",
        "vlan.id:300,-3;",
        "vlan.layers:3;",
        "vlan.layers:>2;",
        "vlan.layers:!1;",
        "vlan.layers:0;",
    ];
    let text: String = rules
        .iter()
        .enumerate()
        .map(|(i, o)| format!("alert ip any any -> any any ({o} sid:{};)\n", i + 1))
        .collect();
    let rs = set(&text);
    let mut p = pkt(IpProto::Icmp, b"");
    p.vlan = &[200, 300, 400];
    assert_eq!(sids(&rs, &p), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15]);
    // Untagged: no `vlan.id` matches, not even `!N` or `all`; zero layers.
    p.vlan = &[];
    assert_eq!(sids(&rs, &p), [15, 16]);
    // One tag: layer 1 and -3 do not exist.
    p.vlan = &[300];
    assert_eq!(sids(&rs, &p), [2, 6, 9, 10]);
    for bad in [
        "vlan.id:200,3;",
        "vlan.id:200,-4;",
        "vlan.id:4096;",
        "vlan.id:x;",
    ] {
        let e = skip(&format!("alert ip any any -> any any ({bad} sid:1;)"));
        assert_eq!(e.keyword, "vlan.id", "{bad}");
    }
}

// `flow.age`: whole seconds since the flow began; a packet without a flow has no age.
#[test]
fn flow_age_keyword() {
    let rs = set(concat!(
        "alert ip any any -> any any (flow.age:>20; sid:1;)\n",
        "alert ip any any -> any any (flow.age:0; sid:2;)\n",
    ));
    let mut p = pkt(IpProto::Udp, b"");
    assert!(sids(&rs, &p).is_empty());
    p.flow_age = Some(0);
    assert_eq!(sids(&rs, &p), [2]);
    p.flow_age = Some(20);
    assert!(sids(&rs, &p).is_empty());
    p.flow_age = Some(21);
    assert_eq!(sids(&rs, &p), [1]);
    assert_eq!(
        skip("alert ip any any -> any any (flow.age:x; sid:3;)").keyword,
        "flow.age"
    );
}

/// The rule set with this action order (Suricata's `action-order`).
fn set_ordered(rules: &str, order: &[&str]) -> RuleSet {
    let mut b = RuleSetBuilder::default();
    b.set_action_order(ActionOrder::parse(order).unwrap());
    let rep = b.add_text("t.rules", rules);
    assert!(rep.skipped.is_empty(), "{:?}", rep.skipped);
    b.build()
}

/// (sid, action, alert) of each match of one packet, in evaluation order.
fn matches_of(
    rs: &RuleSet,
    p: &PacketView<'_>,
    bufs: &dyn Buffers,
    fs: &mut FlowRuleState,
) -> Vec<(u32, RuleAction, bool)> {
    let mut out = Vec::new();
    rs.inspect(
        p,
        bufs,
        fs,
        &mut ThresholdState::new(),
        Timestamp(0),
        &mut out,
    );
    out.iter().map(|m| (m.sid, m.action, m.alert)).collect()
}

// `alert` on a pass rule: the pass alerts ("alert then pass") and still passes the flow; a
// port rule without payload keywords is like-IP-only, so its pass applies to the flow.
#[test]
fn pass_with_alert_keyword_alerts_and_passes_the_flow() {
    let rs = set_ordered(
        "pass tcp any any -> any 80 (alert; sid:2;)\n\
         drop tcp any any -> any any (noalert; sid:1;)",
        &["pass", "drop", "reject", "alert"],
    );
    let mut fs = FlowRuleState::new();
    let p = pkt(IpProto::Tcp, b"x");
    assert_eq!(
        matches_of(&rs, &p, &NoBuffers, &mut fs),
        [(2, RuleAction::Pass, true)]
    );
    assert!(fs.passed() && !fs.dropped());
    assert!(matches_of(&rs, &p, &NoBuffers, &mut fs).is_empty());
    // Without `alert` the pass is silent.
    let quiet = set("pass tcp any any -> any 80 (sid:2;)");
    assert_eq!(
        matches_of(&quiet, &p, &NoBuffers, &mut FlowRuleState::new()),
        [(2, RuleAction::Pass, false)]
    );
}

// A drop earlier in the action order drops the flow (like-IP-only rule); a pass after it on the
// same packet still ends the packet's evaluation, but does not pass the flow.
#[test]
fn drop_before_pass_drops_the_flow_and_the_pass_is_not_applied() {
    let rs = set_ordered(
        "pass tcp any any -> any 80 (alert; sid:2;)\n\
         drop tcp any any -> any any (sid:1;)\n\
         alert tcp any any -> any any (content:\"x\"; sid:3;)",
        &["drop", "reject", "alert", "pass"],
    );
    let mut fs = FlowRuleState::new();
    let p = pkt(IpProto::Tcp, b"x");
    assert_eq!(
        matches_of(&rs, &p, &NoBuffers, &mut fs),
        [
            (1, RuleAction::Drop, true),
            (3, RuleAction::Alert, true),
            (2, RuleAction::Pass, true)
        ]
    );
    assert!(fs.dropped() && !fs.passed());
    // The flow is dropped: its later packets are not inspected (Suricata's DetectFlow), in IDS
    // mode too (drop-protocol-change: one alert, not one a packet).
    assert!(matches_of(&rs, &p, &NoBuffers, &mut fs).is_empty());
}

// A packet match (payload content, no stream) drops or passes the packet only; an app-layer
// rule's action applies to the flow, as does a payload match in the established stream.
#[test]
fn packet_matches_act_on_the_packet_app_layer_and_stream_matches_on_the_flow() {
    let rs = set("drop tcp any any -> any any (content:\"Hi\"; sid:1;)");
    let mut fs = FlowRuleState::new();
    let p = pkt(IpProto::Tcp, b"Hi all");
    assert_eq!(matches_of(&rs, &p, &NoBuffers, &mut fs).len(), 1);
    assert!(!fs.dropped());
    // The same bytes reassembled in the stream of an established flow: a stream match.
    let stream: HashMap<BufferKind, Vec<u8>> = [(BufferKind::Stream, b"Hi all".to_vec())]
        .into_iter()
        .collect();
    let mut fs = FlowRuleState::new();
    assert_eq!(matches_of(&rs, &p, &stream, &mut fs).len(), 1);
    assert!(fs.dropped());
    // Before the handshake completed Suricata has no stream: a packet match.
    let mut early = p;
    early.flow.established = false;
    let mut fs = FlowRuleState::new();
    assert_eq!(matches_of(&rs, &early, &stream, &mut fs).len(), 1);
    assert!(!fs.dropped());
    // A packet keyword makes an http rule a packet rule; a header-only http rule is not.
    let mut http = p;
    http.app_proto = Some(AppProto::Http);
    let dsize = set("pass http any any -> any any (dsize:6; sid:1;)");
    let mut fs = FlowRuleState::new();
    assert_eq!(matches_of(&dsize, &http, &NoBuffers, &mut fs).len(), 1);
    assert!(!fs.passed());
    let pd_only = set("pass http any any -> any any (sid:1;)");
    let mut fs = FlowRuleState::new();
    assert_eq!(matches_of(&pd_only, &http, &NoBuffers, &mut fs).len(), 1);
    assert!(fs.passed());
}

fn rate_filtered(rule: &str, line: &str) -> RuleSet {
    let mut b = RuleSetBuilder::default();
    let (cfg, errs) = ThresholdConfig::parse(line, &Vars::default());
    assert!(errs.is_empty(), "{errs:?}");
    b.set_threshold_config(cfg);
    let rep = b.add_text("t", rule);
    assert!(rep.skipped.is_empty(), "{:?}", rep.skipped);
    b.build()
}

// rate_filter: the match over `count` in the window takes `new_action` (and keeps it for
// `timeout` seconds); by_both counts the pair in both directions.
#[test]
fn rate_filter_changes_the_action() {
    let rs = rate_filtered(
        "alert tcp any any -> any any (content:\"x\"; sid:7;)",
        "rate_filter gen_id 1, sig_id 7, track by_both, count 1, seconds 60, new_action drop, timeout 10\n",
    );
    let mut th = ThresholdState::new();
    let p = pkt(IpProto::Tcp, b"x");
    let mut back = p;
    (back.src, back.dst) = (p.dst, p.src);
    let mut run = |p: &PacketView<'_>, s: u64| {
        let mut out = Vec::new();
        rs.inspect(
            p,
            &NoBuffers,
            &mut FlowRuleState::new(),
            &mut th,
            Timestamp::from_secs_micros(s, 0),
            &mut out,
        );
        out.iter().map(|m| (m.action, m.alert)).collect::<Vec<_>>()
    };
    assert_eq!(run(&p, 0), [(RuleAction::Alert, true)]);
    assert_eq!(run(&back, 1), [(RuleAction::Drop, true)]);
    assert_eq!(run(&p, 5), [(RuleAction::Drop, true)]);
    // The timeout ran out (10 s after the switch) but the window (60 s from the first match)
    // still holds more than `count`: the action switches again; after the window, it does not.
    assert_eq!(run(&p, 20), [(RuleAction::Drop, true)]);
    assert_eq!(run(&p, 200), [(RuleAction::Alert, true)]);

    // new_action pass: the switched match does not alert and passes the flow (an app-layer
    // rule here), so the flow's later packets are not inspected.
    let rs = rate_filtered(
        "alert http any any -> any any (sid:8;)",
        "rate_filter gen_id 1, sig_id 8, track by_rule, count 1, seconds 60, new_action pass, timeout 1000\n",
    );
    let mut http = p;
    http.app_proto = Some(AppProto::Http);
    let mut th = ThresholdState::new();
    let mut fs = FlowRuleState::new();
    let mut alerts = 0;
    for _ in 0..5 {
        let mut out = Vec::new();
        rs.inspect(&http, &NoBuffers, &mut fs, &mut th, Timestamp(0), &mut out);
        alerts += out.iter().filter(|m| m.alert).count();
    }
    assert_eq!(alerts, 1);
    assert!(fs.passed());
}

// threshold type backoff (by_flow): alerts on match count, count*m, count*m², ...
#[test]
fn threshold_backoff() {
    let rs = set(
        "alert tcp any any -> any any (content:\"x\"; threshold: type backoff, track by_flow, count 2, multiplier 10; sid:5;)",
    );
    let mut fs = FlowRuleState::new();
    let mut th = ThresholdState::new();
    let p = pkt(IpProto::Tcp, b"x");
    let mut alerted = Vec::new();
    for n in 1..=250u32 {
        let mut out = Vec::new();
        rs.inspect(&p, &NoBuffers, &mut fs, &mut th, Timestamp(0), &mut out);
        assert_eq!(out.len(), 1, "every match is returned, silent or not");
        if out.iter().any(|m| m.alert) {
            alerted.push(n);
        }
    }
    assert_eq!(alerted, [2, 20, 200]);
    // Backoff counts per flow only, with a multiplier and without seconds.
    for bad in [
        "threshold: type backoff, track by_src, count 1, multiplier 10;",
        "threshold: type backoff, track by_flow, count 1;",
        "threshold: type backoff, track by_flow, count 1, multiplier 10, seconds 5;",
        "threshold: type limit, track by_flow, count 1, seconds 5, multiplier 2;",
    ] {
        let e = skip(&format!("alert tcp any any -> any any ({bad} sid:1;)"));
        assert_eq!(e.keyword, "threshold", "{bad}");
    }
}

// hostbits: kept per address across flows (a fresh flow state sees them), on the source by
// default or the named side, until they expire; `both` is refused as Suricata refuses it.
#[test]
fn hostbits_set_on_one_flow_seen_by_another() {
    let rs = set(
        "alert tcp any any -> any any (content:\"login\"; hostbits:set,seen; noalert; sid:1;)\n\
         alert tcp any any -> any any (content:\"data\"; hostbits:isset,seen,src; sid:2;)\n\
         alert tcp any any -> any any (content:\"data\"; hostbits:isnotset,seen,dst; sid:3;)\n\
         alert tcp any any -> any any (content:\"bye\"; hostbits:unset,seen; sid:4;)",
    );
    let mut th = ThresholdState::new();
    let mut run = |payload: &[u8], secs: u64| {
        let p = pkt(IpProto::Tcp, payload);
        let mut out = Vec::new();
        rs.inspect(
            &p,
            &NoBuffers,
            &mut FlowRuleState::new(),
            &mut th,
            Timestamp::from_secs_micros(secs, 0),
            &mut out,
        );
        let mut v: Vec<u32> = out.iter().filter(|m| m.alert).map(|m| m.sid).collect();
        v.sort_unstable();
        v
    };
    assert_eq!(run(b"data", 0), [3]);
    assert_eq!(run(b"login", 1), Vec::<u32>::new());
    assert_eq!(run(b"data", 2), [2, 3]);
    assert_eq!(run(b"bye", 3), [4]);
    assert_eq!(run(b"data", 4), [3]);
    assert_eq!(run(b"login", 5), Vec::<u32>::new());
    // 30 s after the set, the bit has expired.
    assert_eq!(run(b"data", 5 + hostbits::HOSTBIT_EXPIRE_SECS), [3]);
    assert_eq!(
        skip("alert tcp any any -> any any (hostbits:set,x,both; sid:1;)").keyword,
        "hostbits"
    );
    assert_eq!(
        skip("alert tcp any any -> any any (hostbits:isset,a|b; sid:1;)").keyword,
        "hostbits"
    );
    assert!(!set("alert ip any any -> any any (hostbits:set,x; sid:1;)").rules()[0].is_ip_only());
}

// tcp.seq / tcp.ack read the packet's own TCP header, with the integer operators; a packet
// without a TCP header (a pseudo packet, UDP) never matches.
#[test]
fn tcp_seq_and_ack() {
    let rs = set(
        "alert tcp any any -> any any (tcp.ack:2548486954; sid:1;)\n\
         alert tcp any any -> any any (tcp.seq:>100; sid:2;)\n\
         alert ip any any -> any any (tcp.ack:!0; sid:3;)",
    );
    let header = |seq: u32, ack: u32| {
        let mut h = [0u8; 20];
        h[4..8].copy_from_slice(&seq.to_be_bytes());
        h[8..12].copy_from_slice(&ack.to_be_bytes());
        h
    };
    let hit = header(101, 2548486954);
    let miss = header(100, 0);
    let mut p = pkt(IpProto::Tcp, b"");
    p.l4_header = &hit;
    assert_eq!(sids(&rs, &p), [1, 2, 3]);
    p.l4_header = &miss;
    assert!(sids(&rs, &p).is_empty());
    p.l4_header = &[];
    assert!(sids(&rs, &p).is_empty());
    let mut u = pkt(IpProto::Udp, b"");
    u.l4_header = &hit[..8];
    assert!(sids(&rs, &u).is_empty());
    assert_eq!(
        skip("alert tcp any any -> any any (tcp.ack:4294967296; sid:1;)").keyword,
        "tcp.ack"
    );
}

// The legacy seq / ack (ET Open's NMAP scan rules: `ack:0;`): one exact number against the
// packet's own TCP header; no operators, nothing over 32 bits.
#[test]
fn legacy_seq_and_ack() {
    let rs = set("alert tcp any any -> any any (seq:0; ack:0; sid:1;)\n\
         alert tcp any any -> any any (ack:2548486954; sid:2;)\n\
         alert tcp any any -> any any (seq: 101; sid:3;)");
    let header = |seq: u32, ack: u32| {
        let mut h = [0u8; 20];
        h[4..8].copy_from_slice(&seq.to_be_bytes());
        h[8..12].copy_from_slice(&ack.to_be_bytes());
        h
    };
    let zero = header(0, 0);
    let hit = header(101, 2548486954);
    let mut p = pkt(IpProto::Tcp, b"");
    p.l4_header = &zero;
    assert_eq!(sids(&rs, &p), [1]);
    p.l4_header = &hit;
    assert_eq!(sids(&rs, &p), [2, 3]);
    p.l4_header = &[];
    assert!(sids(&rs, &p).is_empty());
    let mut u = pkt(IpProto::Udp, b"");
    u.l4_header = &zero[..8];
    assert!(sids(&rs, &u).is_empty());
    for bad in ["seq:>1", "ack:!0", "seq:4294967296", "ack:x", "seq"] {
        let e = skip(&format!("alert tcp any any -> any any ({bad}; sid:1;)"));
        assert!(e.keyword == "seq" || e.keyword == "ack", "{bad}: {e:?}");
    }
}

// flow.pkts / flow.bytes: a direction (or either) and an integer comparison against the flow's
// counts so far; the Suricata 7 forms; no flow, no match.
#[test]
fn flow_pkts_and_bytes() {
    let rs = set(
        "alert ip any any -> any any (flow.pkts:toserver,=10; sid:1;)\n\
         alert ip any any -> any any (flow.pkts:toclient,>2; sid:2;)\n\
         alert ip any any -> any any (flow.pkts:either,=3; flow.bytes:either,>3000; sid:3;)\n\
         alert ip any any -> any any (flow.bytes_toserver:<100; sid:4;)\n\
         alert ip any any -> any any (flow.pkts_toclient:3; sid:5;)",
    );
    let mut p = pkt(IpProto::Tcp, b"");
    p.flow_counts = Some(FlowCounts {
        pkts: [10, 3],
        bytes: [99, 3001],
    });
    assert_eq!(sids(&rs, &p), [1, 2, 3, 4, 5]);
    p.flow_counts = Some(FlowCounts {
        pkts: [9, 2],
        bytes: [100, 3000],
    });
    assert!(sids(&rs, &p).is_empty());
    p.flow_counts = None;
    assert!(sids(&rs, &p).is_empty());
    for bad in ["flow.pkts:up,=1", "flow.pkts:=1", "flow.bytes:toserver,x"] {
        let e = skip(&format!("alert ip any any -> any any ({bad}; sid:1;)"));
        assert!(e.keyword.starts_with("flow."), "{bad}: {e:?}");
    }
}

/// A transaction's buffers as a packet sees them: the request's towards the server, the
/// response's towards the client, and the request's to a transactional rule either way.
struct TxBufs {
    to_server: bool,
    request: HashMap<BufferKind, Vec<u8>>,
    response: HashMap<BufferKind, Vec<u8>>,
}

impl Buffers for TxBufs {
    fn get(&self, kind: BufferKind) -> Option<&[u8]> {
        let (mine, other_side) = if self.to_server {
            (&self.request, Side::ToClient)
        } else {
            (&self.response, Side::ToServer)
        };
        (kind.side() != other_side)
            .then(|| mine.get(&kind).map(Vec::as_slice))
            .flatten()
    }

    fn get_request(&self, kind: BufferKind, n: usize) -> Option<&[u8]> {
        (n == 0)
            .then(|| self.request.get(&kind).map(Vec::as_slice))
            .flatten()
    }
}

// Suricata 8's transactional rules (`=>`): a buffer of each side of one transaction, matched on
// the packet towards the client that carries the response, whatever side the fast pattern is
// on; the header's source is the client, so it is checked the other way round on that packet.
#[test]
fn transactional_rules() {
    let rs = set(
        r#"alert tls any any => any any (ja3.hash; content:"aaaa"; ja3s.hash; content:"bbbb"; fast_pattern; sid:1;)
alert tls any any => any any (ja3.hash; content:"aaaa"; fast_pattern; ja3s.hash; content:"bbbb"; sid:2;)
alert tls 10.0.0.1 any => 8.8.8.8 443 (ja3.hash; content:"aaaa"; ja3s.hash; content:"bbbb"; sid:3;)
alert tls 8.8.8.8 443 => 10.0.0.1 any (ja3.hash; content:"aaaa"; ja3s.hash; content:"bbbb"; sid:4;)
alert tls any any -> any any (ja3s.hash; content:"bbbb"; sid:5;)
alert http any any => any any (http.uri; content:"/download"; http.stat_code; content:"200"; sid:6;)"#,
    );
    assert!(
        rs.rules()
            .iter()
            .all(|r| (r.direction == ast::Direction::Tx) == (r.sid != 5))
    );
    let mut p = pkt(IpProto::Tcp, b"");
    (p.src, p.dst) = (p.dst, p.src);
    (p.src_port, p.dst_port) = (443, 40000);
    p.flow.to_server = false;
    p.app_proto = Some(AppProto::Tls);
    let tls = |ja3: &[u8], to_server| TxBufs {
        to_server,
        request: [(BufferKind::Ja3Hash, ja3.to_vec())].into(),
        response: [(BufferKind::Ja3sHash, b"bbbb".to_vec())].into(),
    };
    assert_eq!(sids_with(&rs, &p, &tls(b"aaaa", false)), [1, 2, 3, 5]);
    assert_eq!(sids_with(&rs, &p, &tls(b"cccc", false)), [5]);
    // Towards the server the response is not there: no transactional match.
    let mut q = pkt(IpProto::Tcp, b"");
    (q.dst_port, q.app_proto) = (443, Some(AppProto::Tls));
    assert!(sids_with(&rs, &q, &tls(b"aaaa", true)).is_empty());
    p.app_proto = Some(AppProto::Http);
    let http = TxBufs {
        to_server: false,
        request: [(BufferKind::HttpUri, b"/download".to_vec())].into(),
        response: [(BufferKind::HttpStatCode, b"200".to_vec())].into(),
    };
    assert_eq!(sids_with(&rs, &p, &http), [6]);
}

// What Suricata 8 refuses: a `flow` direction, a buffer either side has, or one side only in a
// transactional rule; buffers of both sides in a `->` rule (it could never match).
#[test]
fn transactional_rules_refused() {
    for (rule, kw) in [
        (
            r#"alert http any any => any any (flow:established,to_client; http.uri; content:"a"; http.stat_code; content:"200"; sid:1;)"#,
            "flow",
        ),
        (
            r#"alert http any any => any any (http.uri; content:"a"; http.header; content:"b"; http.stat_code; content:"200"; sid:1;)"#,
            "http.header",
        ),
        (
            r#"alert tls any any => any any (ja3.hash; content:"a"; sid:1;)"#,
            "direction",
        ),
        (
            r#"alert tls any any -> any any (ja3.hash; content:"a"; ja3s.hash; content:"b"; sid:1;)"#,
            "ja3s.hash",
        ),
    ] {
        let e = skip(rule);
        assert_eq!(e.keyword, kw, "{rule}: {e}");
        assert!(matches!(e.kind, RuleErrorKind::Invalid(_)), "{rule}: {e}");
    }
    let ok = r#"alert http any any => any any (flow:established; http.uri; content:"a"; http.stat_code; content:"200"; sid:1;)"#;
    assert_eq!(set(ok).len(), 1);
}

// `http_header_names`, the keyword's older name (suricata-verify `http-missing-protocol`).
#[test]
fn http_header_names_legacy_name() {
    let rules = r#"alert http any any -> any any (http_header_names; content:"|0d 0a|User-Agent|0d 0a|"; sid:1;)"#;
    let names: &[(BufferKind, &[u8])] = &[(
        BufferKind::HttpHeaderNames,
        b"\r\nHost\r\nUser-Agent\r\n\r\n",
    )];
    assert_eq!(http(rules, names), [1]);
}

// `frame:http1.request` is a sticky buffer named by its value; other frames are refused with
// what svm has.
#[test]
fn frame_keyword() {
    let bufs: &[(BufferKind, &[u8])] = &[(
        BufferKind::Http1RequestFrame,
        b"GET /malicious HTTP/1.1\r\nHost: h\r\n\r\n",
    )];
    let rules = r#"
alert tcp any any -> any any (frame:http1.request; content:"malicious"; nocase; sid:1;)
alert tcp any any -> any any (frame:http1.request; content:"Host: h|0d 0a 0d 0a|"; endswith; sid:2;)
alert tcp any any -> any any (frame:http1.request; content:"POST"; sid:3;)
"#;
    assert_eq!(http(rules, bufs), [1, 2]);
    for rule in ["frame:http1.response;", "frame:tls.pdu;"] {
        let e = skip(&format!(
            "alert tcp any any -> any any ({rule} content:\"x\"; sid:1;)"
        ));
        assert_eq!(e.keyword, "frame", "{rule}: {e}");
        assert!(matches!(e.kind, RuleErrorKind::Unsupported(ref d) if d.contains("http1.request")));
    }
    let e = skip("alert tcp any any -> any any (frame; content:\"x\"; sid:1;)");
    assert_eq!(e.keyword, "frame");
}
