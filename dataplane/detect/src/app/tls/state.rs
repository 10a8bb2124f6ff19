//! Per-flow TLS state: reassembles the handshake records of each direction (split across
//! segments) and the handshake messages (split across records), with caps, and parses the
//! client's ClientHello (in TLS records, or the SSL 2.0 format) and Certificate (client
//! authentication), and the server's ServerHello and Certificate, each once.

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
    /// The server's certificate chain (`tls.cert_*`, `tls.certs` towards the client).
    pub certs: Option<Certificates>,
    /// The client's certificate chain, sent when the server asks for client authentication
    /// (`tls.cert_*`, `tls.certs` towards the server, as Suricata 7 and later).
    pub client_certs: Option<Certificates>,
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
    /// The client's Certificate message (not empty).
    ClientCerts(Certificates),
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
    /// The direction opened with an SSL 2.0 record (the client's CLIENT-HELLO): `rec` holds
    /// it until complete ([`parser::sslv2_record`] bounds it to 2 + 32,767 bytes).
    sslv2: bool,
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
    /// The client's hello was read: its next handshake messages are read up to the
    /// Certificate (client authentication) or any other message.
    client_hello: bool,
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
        let hello = &mut self.client_hello;
        if to_server && !*hello && h.rec.is_empty() && h.hs.is_empty() && !h.done {
            // A TLS record's content type is below 0x80: a first byte with the high bit set is
            // an SSL 2.0 record header, a compatibility ClientHello (see `looks_like_tls`).
            h.sslv2 |= data.first().is_some_and(|b| b & 0x80 != 0);
        }
        let mut rest = None;
        if to_server && h.sslv2 {
            h.rec.extend_from_slice(data);
            let (len, hello_read) = match parser::sslv2_record(&h.rec) {
                Ok(Record::Incomplete) => return,
                Err(_) => (None, Err(AppEvent::TlsMalformedRecord)),
                Ok(Record::Complete { payload, len, .. }) => (
                    Some(len),
                    parser::sslv2_client_hello(payload)
                        .map_err(|_| AppEvent::TlsMalformedHandshake),
                ),
            };
            match hello_read {
                Ok(c) => out.push(TlsOut::Client(c)),
                Err(e) => {
                    h.stop(ev, Some(e));
                    return;
                }
            }
            // The server answers in SSL 3.0/TLS records and the client goes on in them: what
            // follows the SSL 2.0 record is read as TLS.
            *hello = true;
            h.sslv2 = false;
            let mut left = core::mem::take(&mut h.rec);
            left.drain(..len.unwrap_or_default().min(left.len()));
            rest = Some(left);
        }
        let data = rest.as_deref().unwrap_or(data);
        if to_server {
            // The first message must be the ClientHello. After it, the client's next message
            // is read when it is a Certificate (client authentication, after the server's
            // CertificateRequest); any other message or record ends the reading.
            h.feed(data, ev, &mut |ty, msg, ev| {
                if !*hello {
                    if ty != CLIENT_HELLO {
                        return false;
                    }
                    return match parser::client_hello(msg) {
                        Ok(c) => {
                            out.push(TlsOut::Client(c));
                            *hello = true;
                            true
                        }
                        Err(_) => {
                            ev.push(AppEvent::TlsMalformedHandshake);
                            false
                        }
                    };
                }
                if ty == CERTIFICATE {
                    match parser::certificate(msg) {
                        // An empty chain: the client has no certificate to offer.
                        Ok(c) if c.certs.is_empty() => {}
                        Ok(c) => out.push(TlsOut::ClientCerts(c)),
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
    use super::super::parser::tests::{client_certificate_msg, client_hello_msg, records};
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
        assert!(!s.is_done(), "the client's Certificate is still to read");
        s.on_gap(true);
        assert!(s.is_done());
    }

    // An SSL 2.0-format CLIENT-HELLO, split at every byte: its version is read once, and the
    // TLS records after it are read as the client's next messages.
    #[test]
    fn sslv2_hello_then_tls_records() {
        use super::super::parser::tests::SSLV2_HELLO;
        for cut in 0..SSLV2_HELLO.len() {
            let mut s = TlsState::default();
            let mut out = Vec::new();
            let mut ev = AppEvents::default();
            s.feed(true, &SSLV2_HELLO[..cut], &mut out, &mut ev);
            assert!(out.is_empty());
            s.feed(true, &SSLV2_HELLO[cut..], &mut out, &mut ev);
            assert!(ev.is_empty(), "{ev:?}");
            let [TlsOut::Client(c)] = out.as_slice() else {
                panic!("{out:?}");
            };
            assert!(c.is_sslv2());
            assert_eq!(c.version_name(), Some(&b"tls1.0"[..]));
            assert!(!s.is_done());
        }
        // The client's certificate in the same segment as the SSL 2.0 hello.
        let mut wire = SSLV2_HELLO.to_vec();
        wire.extend(records(&client_certificate_msg(), 1 << 14));
        let mut s = TlsState::default();
        let mut out = Vec::new();
        let mut ev = AppEvents::default();
        s.feed(true, &wire, &mut out, &mut ev);
        assert!(ev.is_empty(), "{ev:?}");
        assert!(matches!(
            out.as_slice(),
            [TlsOut::Client(_), TlsOut::ClientCerts(_)]
        ));
        // A zero-length SSL 2.0 record: malformed, the client's side is no longer read.
        let mut s = TlsState::default();
        let mut ev = AppEvents::default();
        s.feed(true, &[0x80, 0x00, 0x01], &mut out, &mut ev);
        assert_eq!(
            ev.iter().collect::<Vec<_>>(),
            vec![AppEvent::TlsMalformedRecord]
        );
    }

    // Client authentication: the client's Certificate after its hello is read (in its own
    // records, segments later); an empty one is not reported; a ClientKeyExchange first ends
    // the reading, as a second ClientHello does.
    #[test]
    fn client_certificate() {
        let hello = records(&client_hello_msg(b"auth.example"), 1 << 14);
        let cert = records(&client_certificate_msg(), 1 << 14);
        let mut s = TlsState::default();
        let mut out = Vec::new();
        let mut ev = AppEvents::default();
        s.feed(true, &hello, &mut out, &mut ev);
        assert!(matches!(out.as_slice(), [TlsOut::Client(_)]));
        for chunk in cert.chunks(100) {
            s.feed(true, chunk, &mut out, &mut ev);
        }
        assert!(ev.is_empty(), "{ev:?}");
        let [_, TlsOut::ClientCerts(c)] = out.as_slice() else {
            panic!("{out:?}");
        };
        assert_eq!(c.certs, [super::super::cert::tests::PROBE_CERT.to_vec()]);
        assert!(c.subject.is_some());

        let empty = records(&[CERTIFICATE, 0, 0, 3, 0, 0, 0], 1 << 14);
        let key_exchange = records(&[16, 0, 0, 2, 0, 0], 1 << 14);
        for (next, name) in [
            (&empty, "empty"),
            (&key_exchange, "key exchange"),
            (&hello, "hello"),
        ] {
            let mut s = TlsState::default();
            let mut out = Vec::new();
            s.feed(true, &hello, &mut out, &mut ev);
            s.feed(true, next, &mut out, &mut ev);
            s.feed(true, &cert, &mut out, &mut ev);
            assert!(
                matches!(out.as_slice(), [TlsOut::Client(_)]),
                "{name}: {out:?}"
            );
        }
        assert!(ev.is_empty(), "{ev:?}");
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
