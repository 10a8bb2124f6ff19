//! The server name of a TLS ClientHello, and nothing else: the web address scan's reader.
//!
//! [`crate::app::tls::parser::client_hello`] reads the whole hello through tls-parser and
//! computes JA3 (a string and an MD5) and JA4's fields, with a dozen allocations; the scan needs
//! only the `server_name` extension's first `host_name` (RFC 6066 section 3), so this walks the
//! message by its length fields and borrows the name from it: no allocation, no fingerprint.
//!
//! It reads the hello's fixed part exactly as tls-parser does (version, random, a session id of
//! at most 32 bytes, an even cipher suite length, compression methods, then an optional
//! extensions block that must fit), so the two fail on the same messages. In the extensions it
//! is the more lenient: tls-parser stops at the first extension whose contents it cannot read
//! (a malformed ALPN list before the server name hides the name from it); this reader only needs
//! each extension's length. So whenever the full parser finds a name, this finds the same name
//! (a property test, an agreement test over the shared captures and the `web_readers` fuzz
//! target hold it to that), and a malformed extension cannot hide a listed name from the scan.

use crate::app::tls::parser::{CLIENT_HELLO, ParseError};

/// `server_name`'s extension type (RFC 6066).
const SERVER_NAME: u16 = 0;
/// `host_name`'s name type in a server name list.
const HOST_NAME: u8 = 0;
/// Longest session id (RFC 8446 section 4.1.2; tls-parser refuses a longer one).
const MAX_SESSION_ID: usize = 32;

/// A byte cursor over a message: every read checks the length, none panics.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        let (b, rest) = self.0.split_first_chunk::<2>()?;
        self.0 = rest;
        Some(u16::from_be_bytes(*b))
    }

    fn u24(&mut self) -> Option<usize> {
        let ([a, b, c], rest) = self.0.split_first_chunk::<3>()?;
        self.0 = rest;
        Some(usize::from(*a) << 16 | usize::from(*b) << 8 | usize::from(*c))
    }

    /// A `u16`-length-prefixed vector.
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

/// The first `host_name` of the `server_name` extension of a complete ClientHello handshake
/// message (its 4-byte header included), borrowed from `msg`. `Ok(None)`: a hello without a
/// server name. `Err`: not a ClientHello, or its fixed part is malformed (where
/// [`crate::app::tls::parser::client_hello`] fails too).
pub fn server_name(msg: &[u8]) -> Result<Option<&[u8]>, ParseError> {
    let mut m = Cursor(msg);
    let (Some(CLIENT_HELLO), Some(len)) = (m.u8(), m.u24()) else {
        return Err(ParseError::Handshake);
    };
    let body = m.take(len).ok_or(ParseError::Handshake)?;
    let Some(extensions) = extensions(body) else {
        return Err(ParseError::Handshake);
    };
    Ok(extensions.and_then(find_server_name))
}

/// The extensions block of a ClientHello body: `None` when the fixed part is malformed,
/// `Some(None)` when there is no (readable) extensions block.
fn extensions(body: &[u8]) -> Option<Option<&[u8]>> {
    let mut b = Cursor(body);
    b.take(2 + 32)?; // legacy_version, random
    let sid = usize::from(b.u8()?);
    if sid > MAX_SESSION_ID {
        return None;
    }
    b.take(sid)?;
    let ciphers = usize::from(b.u16()?);
    if ciphers % 2 == 1 {
        return None;
    }
    b.take(ciphers)?;
    let compression = usize::from(b.u8()?);
    b.take(compression)?;
    // An extensions block that is absent or does not fit is no block (as tls-parser reads it).
    Some(b.vec16())
}

/// The first `host_name` of the first `server_name` extension that has one.
fn find_server_name(block: &[u8]) -> Option<&[u8]> {
    let mut exts = Cursor(block);
    // Each round takes at least 4 bytes, so the walk ends.
    while let (Some(ty), Some(data)) = (exts.u16(), exts.vec16()) {
        if ty != SERVER_NAME {
            continue;
        }
        let mut ext = Cursor(data);
        let Some(list) = ext.vec16() else {
            continue;
        };
        let mut names = Cursor(list);
        while let (Some(kind), Some(name)) = (names.u8(), names.vec16()) {
            if kind == HOST_NAME {
                return Some(name);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::tls::parser::{self, tests::client_hello_msg};
    use proptest::prelude::*;

    /// A ClientHello whose extensions are `exts` (type, data), TLS 1.2, one cipher suite.
    fn hello_with(sid: &[u8], exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7; 32]);
        body.push(u8::try_from(sid.len()).unwrap());
        body.extend_from_slice(sid);
        body.extend_from_slice(&[0x00, 0x04, 0x13, 0x01, 0xc0, 0x2f, 0x01, 0x00]);
        let mut block = Vec::new();
        for (ty, data) in exts {
            block.extend_from_slice(&ty.to_be_bytes());
            block.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
            block.extend_from_slice(data);
        }
        body.extend_from_slice(&u16::try_from(block.len()).unwrap().to_be_bytes());
        body.extend_from_slice(&block);
        let mut msg = vec![CLIENT_HELLO];
        msg.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
        msg.extend_from_slice(&body);
        msg
    }

    /// A server_name extension's data with these (type, name) entries.
    fn sni_data(names: &[(u8, &[u8])]) -> Vec<u8> {
        let mut list = Vec::new();
        for (kind, name) in names {
            list.push(*kind);
            list.extend_from_slice(&u16::try_from(name.len()).unwrap().to_be_bytes());
            list.extend_from_slice(name);
        }
        let mut data = u16::try_from(list.len()).unwrap().to_be_bytes().to_vec();
        data.extend_from_slice(&list);
        data
    }

    #[test]
    fn the_name_of_a_hello() {
        let msg = client_hello_msg(b"Www.Example.org");
        assert_eq!(server_name(&msg), Ok(Some(&b"Www.Example.org"[..])));
        // Behind GREASE and other extensions, after a name of another type.
        let msg = hello_with(
            &[1; 32],
            &[
                (0x0a0a, vec![]),
                (16, b"\x00\x03\x02h2".to_vec()),
                (
                    0,
                    sni_data(&[(7, b"other"), (0, b"a.example"), (0, b"b.example")]),
                ),
            ],
        );
        assert_eq!(server_name(&msg), Ok(Some(&b"a.example"[..])));
        assert_eq!(
            parser::client_hello(&msg).unwrap().sni.as_deref(),
            Some(&b"a.example"[..])
        );
    }

    #[test]
    fn hellos_without_a_name_and_malformed_ones() {
        assert_eq!(server_name(&hello_with(&[], &[])), Ok(None));
        assert_eq!(server_name(&hello_with(&[], &[(0, vec![])])), Ok(None));
        // Cut anywhere in its fixed part, a hello is malformed; a session id over 32 bytes too.
        let msg = client_hello_msg(b"a.example");
        for cut in 0..44 {
            assert_eq!(
                server_name(&msg[..cut]),
                Err(ParseError::Handshake),
                "{cut}"
            );
        }
        assert_eq!(
            server_name(&hello_with(&[0; 33], &[])),
            Err(ParseError::Handshake)
        );
        let mut server = msg.clone();
        server[0] = parser::SERVER_HELLO;
        assert_eq!(server_name(&server), Err(ParseError::Handshake));
        // A malformed extension before the name hides it from tls-parser, not from the scan.
        let msg = hello_with(
            &[],
            &[
                (16, b"\x00\x09\x02h2".to_vec()),
                (0, sni_data(&[(0, b"x.example")])),
            ],
        );
        assert_eq!(parser::client_hello(&msg).unwrap().sni, None);
        assert_eq!(server_name(&msg), Ok(Some(&b"x.example"[..])));
    }

    fn arb_exts() -> impl Strategy<Value = Vec<(u16, Vec<u8>)>> {
        let ext = prop_oneof![
            // A server name list of a few entries, names of any bytes.
            proptest::collection::vec(
                (
                    prop_oneof![Just(0u8), any::<u8>()],
                    proptest::collection::vec(any::<u8>(), 0..40)
                ),
                0..4
            )
            .prop_map(|names| {
                let names: Vec<(u8, &[u8])> =
                    names.iter().map(|(k, n)| (*k, n.as_slice())).collect();
                (0u16, sni_data(&names))
            }),
            (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..40)),
            (
                prop_oneof![Just(16u16), Just(43), Just(10), Just(13)],
                proptest::collection::vec(any::<u8>(), 0..12)
            ),
        ];
        proptest::collection::vec(ext, 0..6)
    }

    proptest! {
        /// On well-formed hellos of any extensions the two readers give the same name; on those
        /// bytes altered or cut anywhere, they fail together, and a name the full parser finds
        /// is the name this reader finds.
        #[test]
        fn agrees_with_the_full_parser(
            sid in proptest::collection::vec(any::<u8>(), 0..33),
            exts in arb_exts(),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
            cut in any::<usize>(),
        ) {
            let msg = hello_with(&sid, &exts);
            let full = parser::client_hello(&msg).map(|c| c.sni);
            let mine = server_name(&msg).map(|n| n.map(<[u8]>::to_vec));
            if full.as_ref().is_ok_and(|n| n.is_some()) || full.is_err() {
                prop_assert_eq!(&mine, &full);
            }
            let mut bad = msg.clone();
            for (at, x) in flips {
                let i = at % bad.len();
                bad[i] ^= x;
            }
            let len = cut % (bad.len() + 1);
            for m in [&bad[..], &bad[..len]] {
                let full = parser::client_hello(m).map(|c| c.sni);
                let mine = server_name(m).map(|n| n.map(<[u8]>::to_vec));
                prop_assert_eq!(full.is_err(), mine.is_err());
                if let Ok(Some(name)) = full {
                    prop_assert_eq!(mine, Ok(Some(name)));
                }
            }
        }
    }
}
