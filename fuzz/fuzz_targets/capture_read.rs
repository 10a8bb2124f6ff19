//! Capture files (pcap and pcapng) read as a stream: no panic, no frame longer than a record
//! may be, and a reader that has failed or ended stays ended.
#![no_main]

use dataplane::io::pcap::{CaptureReader, MAX_RECORD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut r) = CaptureReader::new(data) else {
        return;
    };
    loop {
        match r.next_frame() {
            Ok(Some((_, frame))) => assert!(frame.len() <= MAX_RECORD as usize + 14),
            Ok(None) | Err(_) => break,
        }
    }
    assert!(matches!(r.next_frame(), Ok(None)));
});
