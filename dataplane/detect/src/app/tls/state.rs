//! Per-flow TLS state: reassembles the handshake records of each direction (split across
//! segments) and the handshake messages (split across records), with caps, and parses the
//! client's ClientHello and the server's ServerHello and Certificate, each once.

use super::cert::Certificates;
use super::parser::{
    self, CERTIFICATE, CLIENT_HELLO, ClientHello, Record, SERVER_HELLO, ServerHello,
};
use super::records::{RecordWalker, Seen};
use crate::app::{AppEvent, AppEvents};

/// Handshake bytes held per direction until the messages we read are complete. A ClientHello
/// is a few hundred bytes (a few KiB with post-quantum key shares), a server's hello and
/// certificate chain a few KiB; 64 KiB is generous and still bounded. Beyond it:
/// [`AppEvent::TlsHandshakeTooLong`], parsing of that direction stops.
pub const MAX_HANDSHAKE_BYTES: usize = 64 << 10;

/// Record bytes held while a record is incomplete: one maximal record (5-byte header plus
/// 2^14 + 2048 bytes, the TLSCiphertext limit tls-parser enforces) is all it can be.
pub const MAX_RECORD_BYTES: usize = 5 + (1 << 14) + 2048;

/// Handshake message type of ServerHelloDone: the server's cleartext handshake ends there.
const SERVER_HELLO_DONE: u8 = 14;

/// The TLS transaction: what the handshake of each side revealed so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsTx {
    /// The client's hello (`tls.sni`, `ja3.*`, `ja4.hash`).
    pub client: Option<ClientHello>,
    /// The server's hello (`ja3s.*`).
    pub server: Option<ServerHello>,
    /// The server's certificate chain (`tls.cert_*`, `tls.certs`).
    pub certs: Option<Certificates>,
}

/// A step of the handshake, in the order it was parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsOut {
    /// The ClientHello.
    Client(ClientHello),
    /// The ServerHello.
    Server(ServerHello),
    /// The server's Certificate message.
    Certs(Certificates),
}

/// One direction's handshake reassembly.
#[derive(Debug, Default)]
struct HsReader {
    /// Bytes of an incomplete record.
    rec: Vec<u8>,
    /// Handshake payload gathered from records, not yet consumed as messages.
    hs: Vec<u8>,
    /// Nothing more to read in this direction.
    done: bool,
}

impl HsReader {
    fn stop(&mut self, ev: &mut AppEvents, e: Option<AppEvent>) {
        if let Some(e) = e {
            ev.push(e);
        }
        self.done = true;
        self.rec = Vec::new();
        self.hs = Vec::new();
    }

    /// New in-order bytes; each complete handshake message goes to `on_msg(type, message)`,
    /// which says whether to read on.
    fn feed(
        &mut self,
        data: &[u8],
        ev: &mut AppEvents,
        on_msg: &mut dyn FnMut(u8, &[u8], &mut AppEvents) -> bool,
    ) {
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
                        // ChangeCipherSpec, alert or data: the cleartext handshake is over.
                        self.stop(ev, None);
                        return;
                    }
                    if self.hs.len().saturating_add(payload.len()) > MAX_HANDSHAKE_BYTES {
                        self.stop(ev, Some(AppEvent::TlsHandshakeTooLong));
                        return;
                    }
                    self.hs.extend_from_slice(payload);
                    self.messages(ev, on_msg);
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

    fn messages(
        &mut self,
        ev: &mut AppEvents,
        on_msg: &mut dyn FnMut(u8, &[u8], &mut AppEvents) -> bool,
    ) {
        while let Some((ty, len)) = parser::handshake_len(&self.hs) {
            if len > MAX_HANDSHAKE_BYTES {
                self.stop(ev, Some(AppEvent::TlsHandshakeTooLong));
                return;
            }
            let Some(msg) = self.hs.get(..len) else {
                return;
            };
            if !on_msg(ty, msg, ev) {
                self.stop(ev, None);
                return;
            }
            self.hs.drain(..len);
        }
    }
}

/// TLS state of one flow.
#[derive(Debug, Default)]
pub struct TlsState {
    /// Handshake reassembly per direction (`[to_server, to_client]`).
    hs: [HsReader; 2],
    /// Record headers of each direction (`[to_server, to_client]`), to see encryption start.
    walk: [RecordWalker; 2],
    /// The server sent a handshake record (its ServerHello).
    server_handshake: bool,
    /// Application data was seen: the session is encrypted from here on.
    encrypted: bool,
}

impl TlsState {
    /// Whether nothing more is parsed on this flow (both directions).
    pub fn is_done(&self) -> bool {
        self.hs.iter().all(|h| h.done)
    }

    /// Bytes of one direction were lost: its handshake cannot be rebuilt.
    pub fn on_gap(&mut self, to_server: bool) {
        if let Some(h) = self.hs.get_mut(usize::from(!to_server)) {
            h.done = true;
            h.rec = Vec::new();
            h.hs = Vec::new();
        }
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

    /// New in-order bytes of one direction: the client's ClientHello, the server's
    /// ServerHello and Certificate go to `out` as they complete.
    pub fn feed(
        &mut self,
        to_server: bool,
        data: &[u8],
        out: &mut Vec<TlsOut>,
        ev: &mut AppEvents,
    ) {
        let Some(h) = self.hs.get_mut(usize::from(!to_server)) else {
            return;
        };
        if to_server && h.rec.is_empty() && h.hs.is_empty() && !h.done {
            // A TLS record's content type is below 0x80: a first byte with the high bit set is
            // an SSL 2.0 record header, a compatibility ClientHello (see `looks_like_tls`). It
            // is not read; the server answers in TLS, and its side is.
            if data.first().is_some_and(|b| b & 0x80 != 0) {
                h.stop(ev, None);
                return;
            }
        }
        if to_server {
            // The first message must be the ClientHello; nothing after it is read.
            h.feed(data, ev, &mut |ty, msg, ev| {
                if ty == CLIENT_HELLO {
                    match parser::client_hello(msg) {
                        Ok(c) => out.push(TlsOut::Client(c)),
                        Err(_) => ev.push(AppEvent::TlsMalformedHandshake),
                    }
                }
                false
            });
        } else {
            // ServerHello, then (TLS 1.2 and earlier) Certificate, in clear; other messages
            // are skipped, ServerHelloDone or a non-handshake record ends the reading.
            h.feed(data, ev, &mut |ty, msg, ev| match ty {
                SERVER_HELLO => match parser::server_hello(msg) {
                    Ok(s) => {
                        out.push(TlsOut::Server(s));
                        true
                    }
                    Err(_) => {
                        ev.push(AppEvent::TlsMalformedHandshake);
                        false
                    }
                },
                CERTIFICATE => {
                    match parser::certificate(msg) {
                        Ok(c) => out.push(TlsOut::Certs(c)),
                        Err(_) => ev.push(AppEvent::TlsMalformedHandshake),
                    }
                    false
                }
                SERVER_HELLO_DONE => false,
                _ => true,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parser::tests::{client_hello_msg, records};
    use super::*;

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
            s.feed(true, chunk, &mut out, &mut ev);
        }
        assert!(ev.is_empty(), "{ev:?}");
        assert_eq!(out.len(), 1);
        let TlsOut::Client(c) = &out[0] else {
            panic!("{out:?}");
        };
        assert_eq!(c.sni.as_deref(), Some(&b"frag.example.net"[..]));
        assert!(!s.is_done(), "the server's side is still to read");
        s.on_gap(false);
        assert!(s.is_done());
    }

    #[test]
    fn malformed_and_oversize() {
        let mut out = Vec::new();
        let mut ev = AppEvents::default();
        let mut s = TlsState::default();
        // Record length beyond 2^14 + 2048.
        s.feed(true, &[0x16, 0x03, 0x01, 0xff, 0xff], &mut out, &mut ev);
        assert_eq!(
            ev.iter().collect::<Vec<_>>(),
            vec![AppEvent::TlsMalformedRecord]
        );

        let mut ev = AppEvents::default();
        let mut s = TlsState::default();
        // A ClientHello announcing 16 MiB.
        s.feed(
            true,
            &records(&[1, 0xff, 0xff, 0xff], 100),
            &mut out,
            &mut ev,
        );
        assert_eq!(
            ev.iter().collect::<Vec<_>>(),
            vec![AppEvent::TlsHandshakeTooLong]
        );

        let mut ev = AppEvents::default();
        let mut s = TlsState::default();
        s.feed(
            true,
            &records(&[1, 0, 0, 3, 1, 2, 3], 100),
            &mut out,
            &mut ev,
        );
        assert_eq!(
            ev.iter().collect::<Vec<_>>(),
            vec![AppEvent::TlsMalformedHandshake]
        );
        assert!(out.is_empty());
    }
}
