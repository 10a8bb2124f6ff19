//! Fuzz the rule parser and compiler: arbitrary UTF-8 as a rules file must load (with skips),
//! never panic, and the compiled set must inspect a packet built from the same bytes.
#![no_main]

use dataplane::decode::IpProto;
use dataplane::rules::{FlowRuleState, FlowView, NoBuffers, PacketView, RuleSetBuilder, ThresholdState};
use dataplane::time::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut b = RuleSetBuilder::default();
    let _ = b.add_text("fuzz.rules", text);
    let set = b.build();
    let p = PacketView {
        proto: IpProto::Tcp,
        src: std::net::Ipv4Addr::new(10, 0, 0, 1).into(),
        dst: std::net::Ipv4Addr::new(192, 0, 2, 1).into(),
        src_port: 1234,
        dst_port: 80,
        ttl: 64,
        tcp_flags: Some(0x18),
        icmp: None,
        fragbits: (false, false, false),
        ip_v6: false,
        payload: data,
        // The header buffers and `ipopts` read these (bounds-checked like the payload).
        ip_header: data,
        l4_header: data,
        stream_size: Some((1, 1)),
        flow_counts: Some(dataplane::rules::FlowCounts {
            pkts: [1, 1],
            bytes: [64, 64],
        }),
        stream_events: u16::MAX,
        flow: FlowView { has_flow: true, established: true, to_server: true },
        app_proto: None,
        events: 0,
        vlan: &[],
        flow_age: None,
    };
    let mut out = Vec::new();
    set.inspect(&p, &NoBuffers, &mut FlowRuleState::new(), &mut ThresholdState::new(), Timestamp(0), &mut out);
});
