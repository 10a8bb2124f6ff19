//! Frame decode and defragmentation on arbitrary bytes.
//!
//! The input is read twice: as one Ethernet frame, and as a sequence of frames each preceded by
//! a 2-byte big-endian length. Every fragment of the sequence goes into one defragmenter; every
//! reassembled datagram is decoded again. A bad checksum is only an anomaly, so checksums never
//! stop the fuzzer from going deeper (and under `cfg(fuzzing)` smoltcp's IPv4/TCP/UDP checks
//! pass); both settings are run to cover both code paths. The replay's worker hash
//! (`io::hash`) reads every frame as well.
#![no_main]

use dataplane::decode::{DecodeOptions, L3, decode_frame, decode_frame_fast, decode_ip};
use dataplane::defrag::{DefragConfig, Defragmenter};
use dataplane::time::Timestamp;
use libfuzzer_sys::fuzz_target;

const OPTS: [DecodeOptions; 2] =
    [DecodeOptions { verify_checksums: false }, DecodeOptions { verify_checksums: true }];

fuzz_target!(|data: &[u8]| {
    // The fanout hash replay spreads frames with reads every frame too: no panic, a worker in
    // range.
    assert!(dataplane::io::hash::worker_of(data, 3) < 3);
    // What a frame refused as too deep says about itself, for its report: any bytes.
    let _ = dataplane::decode::too_deep_view(data);
    for opts in OPTS {
        let general = decode_frame(data, opts);
        // The fast path declines a frame or decodes it exactly as the general decoder.
        if let Some(fast) = decode_frame_fast(data, opts) {
            let general = general.as_ref().map(|d| format!("{d:?}"));
            assert_eq!(general, Ok(format!("{fast:?}")));
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
            let Ok(decoded) = decode_frame(frame, opts) else { continue };
            let L3::Ip(ip) = &decoded.l3 else { continue };
            let Some(frag) = &ip.fragment else { continue };
            if !opts.verify_checksums {
                // Insert once per frame, not once per setting.
                let out = defrag.insert(now, decoded.vlan.scope(), ip, frag);
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
