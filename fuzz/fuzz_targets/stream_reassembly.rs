//! TCP reassembly and the app layer on top: the input is a list of segments
//! (direction+flags byte, 4-byte seq, 4-byte ack, 1-byte length, payload). Bit 0x40 of the
//! first byte feeds the app layer as IDS mode does: the other direction, up to what this
//! segment's ACK acknowledged. Bits 1..5 of the first byte choose the receivers' overlap
//! policy (`host-os-policy`), bits 6..7 the urgent-data policy; a segment with URG (0x20) takes
//! the low four bits of its ack as its urgent pointer.
#![no_main]

use dataplane::app::AppState;
use dataplane::decode::TcpFlags;
use dataplane::stream::{OsPolicy, Segment, StreamConfig, StreamMemcap, TcpStream, UrgentPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cfg = StreamConfig {
        depth: 1 << 16,
        max_buffered_per_direction: 1 << 12,
        midstream: data.first().is_some_and(|b| b & 1 == 1),
        urgent: match data.first().map_or(0, |b| b >> 6) {
            0 => UrgentPolicy::Inline,
            1 => UrgentPolicy::Oob,
            2 => UrgentPolicy::Gap,
            _ => UrgentPolicy::Drop,
        },
        urgent_oob_limit: UrgentPolicy::Gap,
    };
    let mem = StreamMemcap::new(1 << 15);
    let mut s = TcpStream::new(cfg, &mem);
    let pick = usize::from(data.first().copied().unwrap_or(0) >> 1) % OsPolicy::NAMES.len();
    if let Some((_, policy)) = OsPolicy::NAMES.get(pick) {
        s.client.set_os_policy(*policy);
        s.server.set_os_policy(*policy);
    }
    let mut app = AppState::new();
    let mut rest = data.get(1..).unwrap_or_default();
    while let Some((head, tail)) = rest.split_first_chunk::<10>() {
        let [kind, s0, s1, s2, s3, a0, a1, a2, a3, len] = *head;
        let len = usize::from(len).min(tail.len());
        let (payload, tail) = tail.split_at(len);
        rest = tail;
        let to_server = kind & 0x80 == 0;
        let seg = Segment {
            seq: u32::from_be_bytes([s0, s1, s2, s3]),
            ack: u32::from_be_bytes([a0, a1, a2, a3]),
            flags: TcpFlags(u16::from(kind & 0x3f)),
            urgent: u16::from(a3 & 0x0f),
            payload,
        };
        s.insert(to_server, seg);
        if kind & 0x40 == 0 {
            let dir = if to_server { &s.client } else { &s.server };
            let _ = app.on_stream(to_server, dir, (40000, 80));
        } else {
            let dir = if to_server { &s.server } else { &s.client };
            let acked = dir.acked_offset();
            assert!(acked <= dir.end_offset());
            let (from, bytes) = dir.data_between(dir.data_offset(), acked);
            assert!(from + bytes.len() as u64 <= acked.max(from));
            let _ = app.on_stream_until(
                !to_server,
                dir,
                (80, 40000),
                acked,
                &dataplane::app::DetectionPorts::default(),
            );
        }
        assert!(s.client.data().len() as u64 <= cfg.depth);
        assert!(mem.used() <= mem.cap());
    }
    drop(s);
    assert_eq!(mem.used(), 0);
});
