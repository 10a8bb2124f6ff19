//! TLS record framing of both directions after the ClientHello: only the 5-byte record headers
//! are read (the payload is skipped without being copied) to learn when the session turns to
//! encrypted application data, which ends payload inspection of the flow (Suricata's default
//! `encryption-handling`).

/// Record content types (RFC 8446 5.1, RFC 6520).
const CHANGE_CIPHER_SPEC: u8 = 20;
const HEARTBEAT: u8 = 24;
const HANDSHAKE: u8 = 22;
/// Content type of encrypted application data.
pub const APPLICATION_DATA: u8 = 23;

/// Largest record payload (TLSCiphertext: 2^14 + 2048).
const MAX_RECORD_PAYLOAD: usize = (1 << 14) + 2048;

/// What a record header told the walker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Nothing of note in these bytes.
    Nothing,
    /// At least one handshake record started.
    Handshake,
    /// An application data record started (and maybe handshake records before it).
    ApplicationData {
        /// A handshake record came before it in the same bytes.
        after_handshake: bool,
    },
}

/// Walks the record headers of one direction of a TLS flow.
#[derive(Clone, Copy, Debug, Default)]
pub struct RecordWalker {
    /// Bytes of an incomplete header.
    hdr: [u8; 5],
    have: u8,
    /// Payload bytes of the current record still to skip.
    skip: usize,
    /// Lost track (a gap, or bytes that are not TLS records): nothing more is read.
    dead: bool,
}

impl RecordWalker {
    /// Stop reading: the record boundaries are no longer known.
    pub fn kill(&mut self) {
        self.dead = true;
    }

    /// Whether the walker lost track.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// Read the next in-order bytes of the direction. Returns at the first application data
    /// record header (the bytes after it are read by the next call).
    pub fn feed(&mut self, mut data: &[u8]) -> Seen {
        let mut handshake = false;
        while !self.dead && !data.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = data.get(n..).unwrap_or_default();
                continue;
            }
            let want = 5usize.saturating_sub(usize::from(self.have));
            let n = want.min(data.len());
            for (slot, b) in self
                .hdr
                .iter_mut()
                .skip(usize::from(self.have))
                .zip(data.iter().take(n))
            {
                *slot = *b;
            }
            self.have = self.have.saturating_add(u8::try_from(n).unwrap_or(5));
            data = data.get(n..).unwrap_or_default();
            if self.have < 5 {
                break;
            }
            self.have = 0;
            let [ty, major, _, hi, lo] = self.hdr;
            let len = usize::from(u16::from_be_bytes([hi, lo]));
            if !(CHANGE_CIPHER_SPEC..=HEARTBEAT).contains(&ty)
                || major != 3
                || len > MAX_RECORD_PAYLOAD
            {
                self.dead = true;
                break;
            }
            self.skip = len;
            if ty == APPLICATION_DATA {
                return Seen::ApplicationData {
                    after_handshake: handshake,
                };
            }
            handshake |= ty == HANDSHAKE;
        }
        if handshake {
            Seen::Handshake
        } else {
            Seen::Nothing
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rec(ty: u8, len: usize) -> Vec<u8> {
        let mut v = vec![ty, 3, 3];
        v.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
        v.resize(5 + len, 0xAB);
        v
    }

    #[test]
    fn finds_application_data_across_segments() {
        let mut wire = rec(HANDSHAKE, 300);
        wire.extend(rec(CHANGE_CIPHER_SPEC, 1));
        wire.extend(rec(HANDSHAKE, 40));
        wire.extend(rec(APPLICATION_DATA, 100));
        // Every split point: the application data record is found exactly once, at its header.
        for cut in 0..wire.len() {
            let (a, b) = wire.split_at(cut);
            let mut w = RecordWalker::default();
            let first = w.feed(a);
            let second = w.feed(b);
            let found = [first, second]
                .iter()
                .filter(|s| matches!(s, Seen::ApplicationData { .. }))
                .count();
            assert_eq!(found, 1, "cut at {cut}: {first:?} {second:?}");
            assert!(!w.is_dead());
        }
    }

    #[test]
    fn not_tls_kills_the_walker() {
        let mut w = RecordWalker::default();
        assert_eq!(w.feed(b"GET / HTTP/1.1\r\n"), Seen::Nothing);
        assert!(w.is_dead());
        assert_eq!(w.feed(&rec(APPLICATION_DATA, 10)), Seen::Nothing);

        let mut w = RecordWalker::default();
        // Length beyond 2^14 + 2048.
        assert_eq!(w.feed(&[HANDSHAKE, 3, 3, 0xff, 0xff]), Seen::Nothing);
        assert!(w.is_dead());
    }

    #[test]
    fn handshake_only() {
        let mut w = RecordWalker::default();
        assert_eq!(w.feed(&rec(HANDSHAKE, 70)), Seen::Handshake);
        assert_eq!(w.feed(&rec(CHANGE_CIPHER_SPEC, 1)), Seen::Nothing);
        assert_eq!(
            w.feed(&[rec(HANDSHAKE, 2), rec(APPLICATION_DATA, 2)].concat()),
            Seen::ApplicationData {
                after_handshake: true
            }
        );
    }

    proptest! {
        #[test]
        fn never_panics(chunks in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..64), 0..16)) {
            let mut w = RecordWalker::default();
            for c in &chunks {
                let _ = w.feed(c);
            }
        }
    }
}
