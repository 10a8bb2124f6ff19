//! Frame decode and defragmentation on arbitrary bytes.
//!
//! The input is read twice: as one Ethernet frame, and as a sequence of frames each preceded by
//! a 2-byte big-endian length. Every fragment of the sequence goes into one defragmenter; every
//! reassembled datagram is decoded again. A bad checksum is only an anomaly, so checksums never
//! stop the fuzzer from going deeper (and under `cfg(fuzzing)` smoltcp's IPv4/TCP/UDP checks
//! pass); both settings are run to cover both code paths. The replay's worker hash
//! (`io::hash`) reads every frame as well. The tunnel decapsulations (`decode::tunnel`) read the
//! whole input as each encapsulation's header, and the frame's own UDP payload, GRE payload or
//! link-layer body as the worker hands them over; an inner Ethernet frame is decoded again.
#![no_main]

use dataplane::decode::tunnel::{self, Decap, Inner, TunnelConfig};
use dataplane::decode::{
    DecodeOptions, L3, L4, decode_frame, decode_frame_fast, decode_frame_lenient, decode_ip,
};
use dataplane::defrag::{DefragConfig, Defragmenter};
use dataplane::time::Timestamp;
use libfuzzer_sys::fuzz_target;

const OPTS: [DecodeOptions; 2] = [
    DecodeOptions {
        verify_checksums: false,
    },
    DecodeOptions {
        verify_checksums: true,
    },
];

/// Every tunnel on (ERSPAN type I too), on its default ports.
const TUNNELS: TunnelConfig = TunnelConfig {
    gre: true,
    erspan_type1: true,
    vxlan: Some(tunnel::Ports::one(4789)),
    geneve: Some(tunnel::Ports::one(6081)),
    teredo: Some(tunnel::Ports::one(3544)),
};

/// What a decapsulation returned lies inside its input, and decodes without panicking.
fn open(len: usize, d: Result<Option<Decap<'_>>, dataplane::decode::DecodeEvent>) {
    let Ok(Some(d)) = d else { return };
    match d.inner {
        Inner::Ip(b) => {
            assert!(b.len() <= len);
            let _ = decode_ip(b, OPTS[0]);
        }
        Inner::Ethernet(b) => {
            assert!(b.len() <= len);
            let _ = decode_frame(b, OPTS[0]);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The fanout hash replay spreads frames with reads every frame too: no panic, a worker in
    // range.
    assert!(dataplane::io::hash::worker_of(data, 3) < 3);
    // What a frame refused as too deep says about itself, for its report: any bytes.
    let _ = dataplane::decode::too_deep_view(data);
    open(data.len(), tunnel::decap_gre(&TUNNELS, data));
    for port in [4789, 6081, 3544] {
        open(data.len(), tunnel::decap_udp(&TUNNELS, 1, port, data));
    }
    for et in [
        tunnel::ethertype::NSH,
        tunnel::ethertype::MPLS_UNICAST,
        tunnel::ethertype::PPPOE_SESSION,
    ] {
        open(data.len(), tunnel::decap_ethertype(et, data));
    }
    if let Ok(decoded) = decode_frame(data, OPTS[0]) {
        match &decoded.l3 {
            L3::Ip(ip) => match &ip.l4 {
                L4::Udp(u) => {
                    open(
                        data.len(),
                        tunnel::decap_udp(&TUNNELS, u.src_port, u.dst_port, u.payload),
                    );
                }
                L4::Other(p) => open(data.len(), tunnel::decap_gre(&TUNNELS, p)),
                _ => {}
            },
            L3::Other => {
                let body = data.get(decoded.l3_offset..).unwrap_or_default();
                open(
                    data.len(),
                    tunnel::decap_ethertype(u16::from(decoded.ethertype), body),
                );
            }
            L3::Arp(_) => {}
        }
    }
    for opts in OPTS {
        let general = decode_frame(data, opts);
        // The fast path declines a frame or decodes it exactly as the general decoder.
        if let Some(fast) = decode_frame_fast(data, opts) {
            let general = general.as_ref().map(|d| format!("{d:?}"));
            assert_eq!(general, Ok(format!("{fast:?}")));
        }
        // The lenient decoder (invalid packets for `decode-event` rules) agrees with the
        // general one on what it decodes, and keeps a failure past the IP header as an anomaly.
        match (&general, decode_frame_lenient(data, opts)) {
            (Ok(g), Ok(l)) => assert_eq!(format!("{g:?}"), format!("{l:?}")),
            (Err(e), Ok(l)) => assert!(l.anomalies.iter().any(|a| a == *e)),
            (Err(e), Err(f)) => assert_eq!(*e, f),
            (Ok(_), Err(f)) => panic!("lenient decoding refused a decodable frame: {f}"),
        }
    }

    // Small caps so that eviction, memory and fragment-count limits are reached quickly.
    let mut defrag = Defragmenter::new(DefragConfig {
        max_bytes: 64 << 10,
        max_datagrams: 16,
        max_fragments_per_datagram: 32,
        timeout_us: 30 * Timestamp::SECOND,
    });
    let mut now = Timestamp(0);
    let mut rest = data;
    while let [hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (frame, tail) = tail.split_at(len);
        rest = tail;
        // One second per frame: datagrams time out after 30 frames.
        now = now.plus_secs(1);
        for opts in OPTS {
            let Ok(decoded) = decode_frame(frame, opts) else {
                continue;
            };
            let L3::Ip(ip) = &decoded.l3 else { continue };
            let Some(frag) = &ip.fragment else { continue };
            if !opts.verify_checksums {
                // Insert once per frame, not once per setting.
                let out = defrag.insert(now, decoded.vlan.scope(), ip, frag);
                // The fragment's own event names an IP fragment event of its family.
                if let Some(e) = out.event {
                    assert!(e.name().starts_with(if ip.v6 { "ipv6_frag" } else { "ipv4_frag" }));
                }
                if let Some(datagram) = out.datagram {
                    for opts in OPTS {
                        let _ = decode_ip(&datagram, opts);
                    }
                }
            }
        }
        defrag.expire(now);
    }
    let _ = defrag.stats();
});
