//! Per-flow TLS state: reassembles handshake records (split across segments) and the ClientHello
//! (split across records), with caps, then extracts the SNI once.

use super::parser::{self, CLIENT_HELLO, Record};
use super::records::{RecordWalker, Seen};
use crate::app::{AppEvent, AppEvents, TxData};

/// Handshake bytes held until the ClientHello is complete. A ClientHello is a few hundred bytes,
/// a few KiB with post-quantum key shares; 64 KiB is generous and still bounded.
/// Beyond it: [`AppEvent::TlsHandshakeTooLong`], parsing stops.
pub const MAX_HANDSHAKE_BYTES: usize = 64 << 10;

/// Record bytes held while a record is incomplete: one maximal record (5-byte header plus
/// 2^14 + 2048 bytes, the TLSCiphertext limit tls-parser enforces) is all it can be.
pub const MAX_RECORD_BYTES: usize = 5 + (1 << 14) + 2048;

/// TLS state of one flow (client-to-server direction).
#[derive(Debug, Default)]
pub struct TlsState {
    /// Bytes of an incomplete record.
    rec: Vec<u8>,
    /// Handshake payload gathered from records.
    hs: Vec<u8>,
    /// ClientHello seen, or parsing stopped: nothing more to do.
    done: bool,
    /// Record headers of each direction (`[to_server, to_client]`), to see encryption start.
    walk: [RecordWalker; 2],
    /// The server sent a handshake record (its ServerHello).
    server_handshake: bool,
    /// Application data was seen: the session is encrypted from here on.
    encrypted: bool,
}

impl TlsState {
    /// Whether nothing more is parsed on this flow.
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn stop(&mut self, ev: &mut AppEvents, e: Option<AppEvent>) {
        if let Some(e) = e {
            ev.push(e);
        }
        self.done = true;
        self.rec = Vec::new();
        self.hs = Vec::new();
    }

    /// Bytes were lost: the handshake cannot be rebuilt.
    pub fn on_gap(&mut self) {
        self.done = true;
        self.rec = Vec::new();
        self.hs = Vec::new();
    }

    /// Bytes of one direction were lost (or never read): its record boundaries are unknown.
    pub fn lost_records(&mut self, to_server: bool) {
        if let Some(w) = self.walk.get_mut(usize::from(!to_server)) {
            w.kill();
        }
    }

    /// Whether the session carries encrypted application data: an application data record
    /// from the server, or from the client after the server's handshake began (client data
    /// before it is TLS 1.3 early data, not the end of the handshake), as Suricata decides.
    pub fn is_encrypted(&self) -> bool {
        self.encrypted
    }

    /// New in-order bytes of either direction, for the record walk ([`Self::is_encrypted`]).
    pub fn on_records(&mut self, to_server: bool, data: &[u8]) {
        if self.encrypted {
            return;
        }
        let Some(w) = self.walk.get_mut(usize::from(!to_server)) else {
            return;
        };
        match w.feed(data) {
            Seen::Nothing => {}
            Seen::Handshake => self.server_handshake |= !to_server,
            Seen::ApplicationData { after_handshake } => {
                self.server_handshake |= !to_server && after_handshake;
                self.encrypted = !to_server || self.server_handshake;
                if !self.encrypted {
                    // Early data: its length is unknown here; stop reading the client.
                    w.kill();
                }
            }
        }
    }

    /// New in-order client bytes.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<TxData>, ev: &mut AppEvents) {
        if self.done {
            return;
        }
        let mut buf = core::mem::take(&mut self.rec);
        buf.extend_from_slice(data);
        let mut pos = 0usize;
        while !self.done {
            let rest = buf.get(pos..).unwrap_or_default();
            match parser::record(rest) {
                Ok(Record::Incomplete) => break,
                Err(_) => {
                    self.stop(ev, Some(AppEvent::TlsMalformedRecord));
                    return;
                }
                Ok(Record::Complete {
                    content_type,
                    payload,
                    len,
                }) => {
                    pos = pos.saturating_add(len);
                    if !parser::is_handshake(content_type) {
                        // Anything but handshake before the ClientHello: nothing for us.
                        self.stop(ev, None);
                        return;
                    }
                    if self.hs.len().saturating_add(payload.len()) > MAX_HANDSHAKE_BYTES {
                        self.stop(ev, Some(AppEvent::TlsHandshakeTooLong));
                        return;
                    }
                    self.hs.extend_from_slice(payload);
                    self.try_hello(out, ev);
                }
            }
        }
        if self.done {
            return;
        }
        let left = buf.get(pos..).unwrap_or_default();
        if left.len() > MAX_RECORD_BYTES {
            // Cannot happen with tls-parser's length check; kept as the written cap.
            self.stop(ev, Some(AppEvent::TlsMalformedRecord));
            return;
        }
        buf.drain(..pos.min(buf.len()));
        self.rec = buf;
    }

    fn try_hello(&mut self, out: &mut Vec<TxData>, ev: &mut AppEvents) {
        let Some((ty, len)) = parser::handshake_len(&self.hs) else {
            return;
        };
        if ty != CLIENT_HELLO {
            self.stop(ev, None);
            return;
        }
        if len > MAX_HANDSHAKE_BYTES {
            self.stop(ev, Some(AppEvent::TlsHandshakeTooLong));
            return;
        }
        let Some(msg) = self.hs.get(..len) else {
            return;
        };
        match parser::client_hello(msg) {
            Ok(hello) => {
                out.push(TxData::Tls(hello));
                self.stop(ev, None);
            }
            Err(_) => self.stop(ev, Some(AppEvent::TlsMalformedHandshake)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parser::tests::{client_hello_msg, records};
    use super::*;
    use crate::app::AppBuffers;

    // The ClientHello spread over records of 7 bytes (handshake fragmentation, as in
    // tls-client-hello-frag-01), and the record bytes over segments of 5 bytes.
    #[test]
    fn fragmented_across_records_and_segments() {
        let wire = records(&client_hello_msg(b"frag.example.net"), 7);
        let mut s = TlsState::default();
        let mut out = Vec::new();
        let mut ev = AppEvents::default();
        for chunk in wire.chunks(5) {
            assert!(out.is_empty());
            s.feed(chunk, &mut out, &mut ev);
        }
        assert!(ev.is_empty(), "{ev:?}");
        assert_eq!(out.len(), 1);
        assert_eq!(
            AppBuffers::of(&out[0]).tls_sni,
            Some(&b"frag.example.net"[..])
        );
        assert!(s.is_done());
    }

    #[test]
    fn malformed_and_oversize() {
        let mut out = Vec::new();
        let mut ev = AppEvents::default();
        let mut s = TlsState::default();
        // Record length beyond 2^14 + 2048.
        s.feed(&[0x16, 0x03, 0x01, 0xff, 0xff], &mut out, &mut ev);
        assert_eq!(
            ev.iter().collect::<Vec<_>>(),
            vec![AppEvent::TlsMalformedRecord]
        );

        let mut ev = AppEvents::default();
        let mut s = TlsState::default();
        // A ClientHello announcing 16 MiB.
        s.feed(&records(&[1, 0xff, 0xff, 0xff], 100), &mut out, &mut ev);
        assert_eq!(
            ev.iter().collect::<Vec<_>>(),
            vec![AppEvent::TlsHandshakeTooLong]
        );

        let mut ev = AppEvents::default();
        let mut s = TlsState::default();
        s.feed(&records(&[1, 0, 0, 3, 1, 2, 3], 100), &mut out, &mut ev);
        assert_eq!(
            ev.iter().collect::<Vec<_>>(),
            vec![AppEvent::TlsMalformedHandshake]
        );
        assert!(out.is_empty());
    }
}
