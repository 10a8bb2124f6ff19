//! QUIC v1 client Initials: the ClientHello's server name, read by removing the Initial packet
//! protection any observer can remove (RFC 9001 section 5: the keys come from the destination
//! connection id the client chose).
//!
//! - `parser`: long headers (RFC 9000 section 17.2), varints, the frames of an Initial;
//! - `crypto`: the client's Initial keys, header protection removal, AES-128-GCM decryption;
//! - `eve`: an alert's EVE `quic` (the server name);
//! - here: walking a datagram's coalesced packets, reassembling the CRYPTO stream (frames out of
//!   order, split over packets and datagrams) and reading the ClientHello's server name with the
//!   web address scan's reader ([`crate::webscan::hello::server_name`]: no fingerprints).
//!
//! One datagram: [`initial_server_name`]. A ClientHello larger than one datagram (post-quantum
//! key shares make Chrome's about 1,800 bytes, sent in two datagrams) needs the flow's later
//! client datagrams too: keep an [`InitialStream`] beside the flow and [`InitialStream::push`]
//! each client-to-server datagram until it answers.
//!
//! Only version 1 is read. Version negotiation packets, other versions (draft-29, v2, gQUIC,
//! greased versions) and short headers are reported as errors naming what they are, never read
//! further; nothing here panics on any input (property tests and the `quic_initial` fuzz target).

pub mod crypto;
pub mod eve;
pub mod parser;

use crate::app::tls::parser::{CLIENT_HELLO, ParseError, handshake_len};
use crypto::{InitialKeys, MaterialCache};
use parser::{LongType, crypto_frames, long_packet};

/// Bytes of the Initial crypto stream kept until the ClientHello is complete: the TLS engine's
/// cap ([`crate::app::tls::state::MAX_HANDSHAKE_BYTES`], 64 KiB). Beyond it:
/// [`QuicError::CryptoTooLong`].
pub const MAX_CRYPTO_BYTES: usize = crate::app::tls::state::MAX_HANDSHAKE_BYTES;

/// Disjoint pieces of the crypto stream held at once. Chrome scatters its ClientHello over a
/// few dozen CRYPTO frames at most; each piece costs a range insertion, so the count is capped.
/// Beyond it: [`QuicError::TooFragmented`].
pub const MAX_CRYPTO_PIECES: usize = 256;

/// Why a datagram yields no server name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuicError {
    /// The datagram starts with a short header (or zero bytes): not an Initial.
    #[error("quic: not a long header packet")]
    NotLongHeader,
    /// A version negotiation packet (version 0).
    #[error("quic: version negotiation packet, not QUIC v1")]
    VersionNegotiation,
    /// Another version than 1.
    #[error("quic: version {0:#010x}, not QUIC v1")]
    UnsupportedVersion(u32),
    /// The fixed bit of a version 1 long header is clear.
    #[error("quic: fixed bit clear")]
    FixedBitClear,
    /// A connection id longer than 20 bytes.
    #[error("quic: connection id too long")]
    BadConnectionId,
    /// The datagram's first packet is a 0-RTT, Handshake or Retry packet.
    #[error("quic: first packet is not an Initial")]
    NotInitial,
    /// A header or packet runs past the datagram, or is too short to carry a sample and a tag.
    #[error("quic: truncated packet")]
    Truncated,
    /// Key derivation or header protection failed (not expected with valid lengths).
    #[error("quic: key derivation failed")]
    Keys,
    /// Authentication failed: not a client Initial of this connection (a server's Initial, keys
    /// of another connection id, or altered bytes).
    #[error("quic: Initial does not decrypt with the client's Initial keys")]
    Decrypt,
    /// A frame an Initial may not carry, or one that runs past the payload.
    #[error("quic: bad frame in an Initial")]
    BadFrame,
    /// The crypto stream reaches past [`MAX_CRYPTO_BYTES`].
    #[error("quic: crypto stream longer than {MAX_CRYPTO_BYTES} bytes")]
    CryptoTooLong,
    /// More than [`MAX_CRYPTO_PIECES`] disjoint pieces of crypto stream.
    #[error("quic: crypto stream in more than {MAX_CRYPTO_PIECES} pieces")]
    TooFragmented,
    /// The crypto stream starts with a handshake message that is not a ClientHello.
    #[error("quic: crypto stream does not start with a ClientHello")]
    NotClientHello,
    /// The ClientHello continues past this datagram (use an [`InitialStream`]).
    #[error("quic: ClientHello continues in a later datagram")]
    Incomplete,
    /// The ClientHello is malformed.
    #[error("quic: {0}")]
    Tls(#[from] ParseError),
    /// The server name is not UTF-8 (no DNS name is; the server would refuse it).
    #[error("quic: server name is not UTF-8")]
    ServerNameNotUtf8,
}

/// The server name of the ClientHello in one client-to-server UDP payload: `Ok(None)` when the
/// ClientHello has no server_name extension. [`QuicError::Incomplete`] when the ClientHello
/// continues in a later datagram; every other error says why this is not a readable QUIC v1
/// client Initial.
pub fn initial_server_name(udp_payload: &[u8]) -> Result<Option<String>, QuicError> {
    match InitialStream::new().push(udp_payload)? {
        Progress::NeedMore => Err(QuicError::Incomplete),
        Progress::Done(name) => Ok(name),
    }
}

/// What an [`InitialStream`] knows after a datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The ClientHello is not complete yet.
    NeedMore,
    /// The ClientHello's server name (`None`: it has none).
    Done(Option<String>),
}

/// The client Initials of one connection, datagram by datagram, until the ClientHello is read.
/// Holds at most [`MAX_CRYPTO_BYTES`] plus one datagram.
#[derive(Debug, Default)]
pub struct InitialStream {
    /// Keys from the first Initial that decrypted (a later Initial keeps them even when the
    /// client moved to the server's connection id: RFC 9001 section 5.2).
    keys: Option<InitialKeys>,
    /// Largest packet number decrypted.
    largest: Option<u64>,
    crypto: CryptoBuffer,
    scratch: Vec<u8>,
    done: Option<Option<String>>,
}

impl InitialStream {
    /// A stream that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Read one client-to-server datagram. An error leaves what earlier datagrams gave intact;
    /// once [`Progress::Done`], later datagrams are not read and the same answer is returned.
    pub fn push(&mut self, udp_payload: &[u8]) -> Result<Progress, QuicError> {
        self.push_cached(udp_payload, None)
    }

    /// [`InitialStream::push`], the keys' material taken from `cache` (and remembered there)
    /// when given: the same answer, without deriving the keys of an id seen recently again.
    pub fn push_cached(
        &mut self,
        udp_payload: &[u8],
        mut cache: Option<&mut MaterialCache>,
    ) -> Result<Progress, QuicError> {
        if let Some(done) = &self.done {
            return Ok(Progress::Done(done.clone()));
        }
        let mut rest = udp_payload;
        let mut first_dcid: Option<&[u8]> = None;
        while !rest.is_empty() {
            let (p, used) = match long_packet(rest) {
                Ok(x) => x,
                Err(e) if first_dcid.is_none() => return Err(e),
                // After the first packet: a short header or padding ends the datagram, and a
                // packet we cannot read is ignored as an endpoint would (RFC 9000 section 12.2).
                Err(_) => break,
            };
            rest = rest.get(used..).unwrap_or_default();
            match first_dcid {
                None if p.ty != LongType::Initial => return Err(QuicError::NotInitial),
                None => first_dcid = Some(p.dcid),
                // Receivers drop coalesced packets of another connection id (section 12.2).
                Some(d) if d != p.dcid => continue,
                Some(_) => {}
            }
            if p.ty != LongType::Initial {
                continue; // 0-RTT and Handshake packets use other keys.
            }
            let keys = match self.keys.take() {
                Some(k) => k,
                None => match cache.as_deref_mut() {
                    Some(c) => InitialKeys::client_cached(p.dcid, c)?,
                    None => InitialKeys::client(p.dcid)?,
                },
            };
            let opened = keys.open(&p, self.largest, &mut self.scratch);
            let (pn, plain) = match opened {
                Ok(x) => x,
                Err(e) => {
                    // Keys that never opened a packet are not kept.
                    if self.largest.is_some() {
                        self.keys = Some(keys);
                    }
                    return Err(e);
                }
            };
            self.keys = Some(keys);
            self.largest = Some(self.largest.map_or(pn, |l| l.max(pn)));
            let crypto = &mut self.crypto;
            crypto_frames(plain, |f| crypto.insert(f.offset, f.data))?;
        }
        match self.crypto.client_hello()? {
            Some(name) => {
                self.done = Some(name.clone());
                self.crypto = CryptoBuffer::default();
                self.scratch = Vec::new();
                Ok(Progress::Done(name))
            }
            None => Ok(Progress::NeedMore),
        }
    }
}

/// The Initial crypto stream: bytes placed at their offsets, and the ranges held.
#[derive(Debug, Default)]
struct CryptoBuffer {
    data: Vec<u8>,
    /// Disjoint, sorted, non-adjacent `[start, end)` ranges of `data` that frames filled.
    ranges: Vec<(usize, usize)>,
}

impl CryptoBuffer {
    fn insert(&mut self, offset: u64, bytes: &[u8]) -> Result<(), QuicError> {
        let start = usize::try_from(offset).map_err(|_| QuicError::CryptoTooLong)?;
        let end = start
            .checked_add(bytes.len())
            .filter(|e| *e <= MAX_CRYPTO_BYTES)
            .ok_or(QuicError::CryptoTooLong)?;
        if bytes.is_empty() {
            return Ok(());
        }
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        // A retransmitted byte must equal the first copy (RFC 9000 section 19.6); a peer that
        // sends other bytes breaks its own handshake, so the last copy is kept.
        self.data
            .get_mut(start..end)
            .ok_or(QuicError::CryptoTooLong)?
            .copy_from_slice(bytes);
        // Merge [start, end) with every range it touches.
        let (mut s, mut e) = (start, end);
        let first = self.ranges.partition_point(|r| r.1 < s);
        let mut last = first;
        while let Some(r) = self.ranges.get(last) {
            if r.0 > e {
                break;
            }
            s = s.min(r.0);
            e = e.max(r.1);
            last += 1;
        }
        self.ranges.splice(first..last, [(s, e)]);
        if self.ranges.len() > MAX_CRYPTO_PIECES {
            return Err(QuicError::TooFragmented);
        }
        Ok(())
    }

    /// `Some(name)` once the ClientHello is complete; `None` while bytes are missing.
    fn client_hello(&self) -> Result<Option<Option<String>>, QuicError> {
        let held = match self.ranges.first() {
            Some(&(0, end)) => self.data.get(..end).unwrap_or_default(),
            _ => return Ok(None),
        };
        let Some((ty, len)) = handshake_len(held) else {
            return Ok(None);
        };
        if ty != CLIENT_HELLO {
            return Err(QuicError::NotClientHello);
        }
        if len > MAX_CRYPTO_BYTES {
            return Err(QuicError::CryptoTooLong);
        }
        let Some(msg) = held.get(..len) else {
            return Ok(None);
        };
        let sni = crate::webscan::hello::server_name(msg)?;
        sni.map(|n| String::from_utf8(n.to_vec()).map_err(|_| QuicError::ServerNameNotUtf8))
            .transpose()
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::crypto::tests::hex;
    use super::crypto::{client_initial, seal_client_initial};
    use super::*;
    use crate::app::tls::parser::tests::client_hello_msg;
    use proptest::prelude::*;

    const DCID: &str = "8394c8f03e515708";

    // RFC 9001 appendix A.2: the client Initial, as published (1,200 bytes).
    const RFC9001_A2: &str = "\
c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11\
d242b123dc9bd8bab936b47d92ec356c0bab7df5976d27cd449f63300099f399\
1c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c\
8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df6212\
30c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5\
457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208\
4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec\
4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7bad1db4ba3\
485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db\
059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c\
7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f8\
9937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556\
be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c74\
68449a13d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663a\
c69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00\
f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632\
291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe58964\
25c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd\
14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ff\
ef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198\
e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd\
c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73\
203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77f\
cb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e\
fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03ade\
a2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e724047\
90a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2\
162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f4\
40591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b65bfc5ca0\
6948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e\
8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0\
be79e2fb8f5d5fbbe2e30ecadd220723c8c0aea8078cdfcb3868263ff8f09400\
54da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab\
760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9\
f96f3ca9ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4\
056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064\
7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241\
e221af44860018ab0856972e194cd934";

    // RFC 9001 appendix A.2: the unprotected header and the CRYPTO frame (then 917 bytes of
    // PADDING); the frame is shared with the bench.
    const A2_HEADER: &str = "c300000001088394c8f03e5157080000449e00000002";
    const A2_CRYPTO: &str = include_str!("testdata/rfc9001_a2_crypto.hex");

    // RFC 9001 appendix A.3: the server's Initial.
    const RFC9001_A3: &str = "\
cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a\
5816b6394100f37a1c69797554780bb38cc5a99f5ede4cf73c3ec2493a1839b3\
dbcba3f6ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84\
022f8ef4cdd93795d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc4\
2158407dd074ee";

    #[test]
    fn rfc9001_client_initial() {
        let wire = hex(RFC9001_A2);
        assert_eq!(wire.len(), 1200);
        assert_eq!(
            initial_server_name(&wire),
            Ok(Some("example.com".to_string()))
        );
        // Our test-side protection reproduces the published bytes: the helper the other tests
        // build datagrams with is RFC 9001's.
        let mut payload = hex(A2_CRYPTO);
        payload.resize(1162, 0);
        assert_eq!(
            seal_client_initial(&hex(DCID), &hex(A2_HEADER), 2, &payload),
            Ok(wire.clone())
        );
        // One flipped ciphertext bit, one flipped tag bit: authentication fails.
        for at in [100, 1199] {
            let mut bad = wire.clone();
            bad[at] ^= 1;
            assert_eq!(initial_server_name(&bad), Err(QuicError::Decrypt));
        }
        // Cut short: the Length field runs past the datagram.
        assert_eq!(
            initial_server_name(&wire[..1000]),
            Err(QuicError::Truncated)
        );
    }

    // The server's Initial does not open with the client's keys.
    #[test]
    fn rfc9001_server_initial() {
        assert_eq!(
            initial_server_name(&hex(RFC9001_A3)),
            Err(QuicError::Decrypt)
        );
    }

    fn crypto_frame(offset: usize, data: &[u8]) -> Vec<u8> {
        let mut f = vec![0x06];
        f.extend_from_slice(&(u32::try_from(offset).unwrap() | 0x8000_0000).to_be_bytes());
        f.extend_from_slice(&(u16::try_from(data.len()).unwrap() | 0x4000).to_be_bytes());
        f.extend_from_slice(data);
        f
    }

    /// A protected Initial carrying `frames`.
    fn initial(dcid: &[u8], pn: u16, frames: &[u8]) -> Vec<u8> {
        client_initial(dcid, pn, frames, 0).unwrap()
    }

    /// `hello` cut into `pieces` CRYPTO frames, listed in the order `order` gives.
    fn scattered(hello: &[u8], cuts: &[usize], order: &[usize]) -> Vec<Vec<u8>> {
        let mut bounds = vec![0];
        bounds.extend(cuts.iter().copied().filter(|c| *c > 0 && *c < hello.len()));
        bounds.push(hello.len());
        bounds.sort_unstable();
        bounds.dedup();
        let frames: Vec<Vec<u8>> = bounds
            .windows(2)
            .map(|w| crypto_frame(w[0], &hello[w[0]..w[1]]))
            .collect();
        let mut out: Vec<Vec<u8>> = Vec::new();
        for i in order.iter().map(|i| i % frames.len()) {
            out.push(frames[i].clone());
        }
        // Every frame at least once, whatever the order said.
        out.extend(frames);
        out
    }

    // CRYPTO frames out of order, over two coalesced Initials, then a Handshake packet and
    // padding; with a PING and an ACK among them.
    #[test]
    fn coalesced_out_of_order() {
        let dcid = b"\x01\x02\x03\x04\x05\x06\x07\x08";
        let hello = client_hello_msg(b"blocked.example");
        let a = crypto_frame(0, &hello[..30]);
        let b = crypto_frame(30, &hello[30..70]);
        let c = crypto_frame(70, &hello[70..]);
        let mut p1 = c.clone();
        p1.push(0x01);
        p1.extend_from_slice(&a);
        let mut p2 = b"\x02\x00\x00\x00\x00".to_vec();
        p2.extend_from_slice(&b);
        let mut dgram = initial(dcid, 0, &p1);
        dgram.extend_from_slice(&initial(dcid, 1, &p2));
        dgram.extend_from_slice(
            b"\xe1\x00\x00\x00\x01\x08\x01\x02\x03\x04\x05\x06\x07\x08\x00\x03abc",
        );
        dgram.resize(1200, 0);
        assert_eq!(
            initial_server_name(&dgram),
            Ok(Some("blocked.example".to_string()))
        );
        // Without the second packet: the ClientHello is incomplete.
        let one = initial(dcid, 0, &p1);
        assert_eq!(initial_server_name(&one), Err(QuicError::Incomplete));
        // A coalesced Initial of another connection id is ignored.
        let mut other = initial(dcid, 0, &p1);
        other.extend_from_slice(&initial(b"\x09\x09\x09\x09", 1, &p2));
        assert_eq!(initial_server_name(&other), Err(QuicError::Incomplete));
    }

    // The ClientHello over two datagrams (as post-quantum key shares make Chrome's): the stream
    // answers on the second, and the first datagram alone says Incomplete.
    #[test]
    fn two_datagrams() {
        let dcid = b"\xaa\xbb\xcc\xdd\xee\xff\x00\x11";
        let mut name = b"x".repeat(40);
        name.extend_from_slice(b".example.org");
        let hello = client_hello_msg(&name);
        let cut = hello.len() / 2;
        let d1 = initial(dcid, 0, &crypto_frame(0, &hello[..cut]));
        let d2 = initial(dcid, 1, &crypto_frame(cut, &hello[cut..]));
        let mut s = InitialStream::new();
        assert_eq!(s.push(&d1), Ok(Progress::NeedMore));
        // A server's packet pushed by mistake is refused and loses nothing.
        assert_eq!(s.push(&hex(RFC9001_A3)), Err(QuicError::Decrypt));
        let want = Progress::Done(Some(String::from_utf8(name).unwrap()));
        assert_eq!(s.push(&d2), Ok(want.clone()));
        assert_eq!(s.push(b"anything"), Ok(want));
    }

    // Streams sharing a key material cache read what streams without it read: the same
    // datagrams (RFC 9001's, a ClientHello over two datagrams), a datagram of another id after
    // them, and a tampered one whose id's material is cached.
    #[test]
    fn a_shared_material_cache_changes_no_answer() {
        let dcid = b"\xaa\xbb\xcc\xdd\xee\xff\x00\x11";
        let hello = client_hello_msg(b"cached.example.org");
        let cut = hello.len() / 2;
        let d1 = initial(dcid, 0, &crypto_frame(0, &hello[..cut]));
        let d2 = initial(dcid, 1, &crypto_frame(cut, &hello[cut..]));
        let other = initial(b"\x01\x02\x03\x04", 0, &crypto_frame(0, &hello));
        let mut bad = hex(RFC9001_A2);
        bad[100] ^= 1;
        let mut cache = MaterialCache::default();
        for _ in 0..3 {
            for dgrams in [
                vec![hex(RFC9001_A2)],
                vec![d1.clone(), d2.clone()],
                vec![other.clone()],
                vec![bad.clone()],
            ] {
                let (mut plain, mut cached) = (InitialStream::new(), InitialStream::new());
                for d in &dgrams {
                    assert_eq!(cached.push_cached(d, Some(&mut cache)), plain.push(d));
                }
            }
        }
    }

    #[test]
    fn not_v1() {
        // Version negotiation, draft-29, a greased version, a short header.
        assert_eq!(
            initial_server_name(
                b"\x80\x00\x00\x00\x00\x08\x01\x02\x03\x04\x05\x06\x07\x08\x00\x00\x00\x00\x01"
            ),
            Err(QuicError::VersionNegotiation)
        );
        let mut draft = hex(RFC9001_A2);
        draft[1..5].copy_from_slice(&[0xff, 0, 0, 0x1d]);
        assert_eq!(
            initial_server_name(&draft),
            Err(QuicError::UnsupportedVersion(0xff00_001d))
        );
        draft[1..5].copy_from_slice(&[0x0a, 0x0a, 0x0a, 0x0a]);
        assert_eq!(
            initial_server_name(&draft),
            Err(QuicError::UnsupportedVersion(0x0a0a_0a0a))
        );
        assert_eq!(
            initial_server_name(b"\x41\x02\x03"),
            Err(QuicError::NotLongHeader)
        );
        // A Handshake packet first.
        assert_eq!(
            initial_server_name(b"\xe0\x00\x00\x00\x01\x00\x00\x00\x01\x00"),
            Err(QuicError::NotInitial)
        );
    }

    #[test]
    fn crypto_limits() {
        let dcid = b"\x01\x02\x03\x04";
        // Another handshake message first (a ServerHello).
        let d = initial(dcid, 0, &crypto_frame(0, b"\x02\x00\x00\x04abcd"));
        assert_eq!(initial_server_name(&d), Err(QuicError::NotClientHello));
        // Data past the cap.
        let d = initial(dcid, 0, &crypto_frame(MAX_CRYPTO_BYTES, b"x"));
        assert_eq!(initial_server_name(&d), Err(QuicError::CryptoTooLong));
        // 300 one-byte pieces with holes between them.
        let frames: Vec<u8> = (0..300)
            .flat_map(|i| crypto_frame(i * 2 + 1, b"x"))
            .collect();
        let d = initial(dcid, 0, &frames);
        assert_eq!(initial_server_name(&d), Err(QuicError::TooFragmented));
        // A ClientHello without SNI.
        let mut hello = client_hello_msg(b"");
        // Drop the extensions: ClientHello body ends with the (empty) compression list.
        let ext_at = 4 + 2 + 32 + 1 + 4 + 2;
        hello.truncate(ext_at);
        let body = u32::try_from(hello.len() - 4).unwrap().to_be_bytes();
        hello[1..4].copy_from_slice(&body[1..]);
        let d = initial(dcid, 0, &crypto_frame(0, &hello));
        assert_eq!(initial_server_name(&d), Ok(None));
    }

    // Real QUIC v1 client Initials from the shared capture (read at test time, never copied):
    // each flow's client datagrams go through an `InitialStream` until it answers. Skipped
    // with a message when the capture is not there.
    #[test]
    fn shared_capture() {
        use crate::decode::{DecodeOptions, L3, L4, decode_frame};
        use std::collections::BTreeMap;
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/bench/pcaps/ndpi-tests-merged.pcap"
        );
        let Ok(file) = std::fs::File::open(path) else {
            eprintln!("skipped: {path} not found");
            return;
        };
        let mut reader = pcap_file::pcap::PcapReader::new(std::io::BufReader::new(file)).unwrap();
        let mut flows: BTreeMap<(u128, u16, u128, u16), InitialStream> = BTreeMap::new();
        let mut names = Vec::new();
        while let Some(pkt) = reader.next_packet() {
            let pkt = pkt.unwrap();
            let Ok(d) = decode_frame(&pkt.data, DecodeOptions::default()) else {
                continue;
            };
            let L3::Ip(ip) = d.l3 else { continue };
            let L4::Udp(u) = ip.l4 else { continue };
            // A version 1 Initial starts a flow (the server's too: it fails to decrypt with the
            // client's keys and the flow is dropped); its later datagrams follow it.
            let key = (ip.src_bits, u.src_port, ip.dst_bits, u.dst_port);
            let v1_initial = u.payload.len() > 5
                && u.payload[0] & 0xf0 == 0xc0
                && u.payload[1..5] == [0, 0, 0, 1];
            if !flows.contains_key(&key) && !v1_initial {
                continue;
            }
            let s = flows.entry(key).or_default();
            let fresh = s.done.is_none();
            match s.push(u.payload) {
                Ok(Progress::Done(n)) if fresh => names.push(n),
                Ok(_) => {}
                Err(_) if s.largest.is_none() => {
                    flows.remove(&key);
                }
                Err(_) => {}
            }
        }
        // Cross-checked against an independent decryption (Python `cryptography`, RFC 9001
        // section 5 by hand). The three without a name are test clients of QUIC servers on
        // ports 4433/4443 that sent no server_name; cdnjs.cloudflare.com's ClientHello (1,767
        // bytes) spans two datagrams.
        let want = [
            None,
            None,
            Some("app-analytics-v2.snapchat.com"),
            Some("gcp.api.snapchat.com"),
            Some("str1-euwest1-34-246-231-140.addlive.io"),
            Some("ssl.gstatic.com"),
            Some("classroom.google.com"),
            Some("hangouts.google.com"),
            Some("plus.google.com"),
            None,
            Some("meet.google.com"),
            Some("cdnjs.cloudflare.com"),
            Some("www.threads.net"),
        ];
        let want: Vec<Option<String>> = want.iter().map(|n| n.map(String::from)).collect();
        assert_eq!(names, want);
    }

    proptest! {
        // A ClientHello scattered over CRYPTO frames in any order and split over up to three
        // coalesced Initials is read whole.
        #[test]
        fn scattered_frames(
            label in "[a-z]{1,30}",
            cuts in proptest::collection::vec(0usize..200, 0..8),
            order in proptest::collection::vec(0usize..16, 0..8),
            packets in 1usize..4,
        ) {
            let dcid = b"\x10\x20\x30\x40\x50\x60\x70\x80";
            let name = format!("{label}.example");
            let hello = client_hello_msg(name.as_bytes());
            let frames = scattered(&hello, &cuts, &order);
            let per = frames.len().div_ceil(packets);
            let mut dgram = Vec::new();
            for (pn, chunk) in frames.chunks(per).enumerate() {
                dgram.extend_from_slice(&initial(dcid, u16::try_from(pn).unwrap(), &chunk.concat()));
            }
            prop_assert_eq!(initial_server_name(&dgram), Ok(Some(name)));
        }

        // Any bytes, and any corruption of a valid datagram: an answer or an error, no panic.
        #[test]
        fn never_panics(
            buf in proptest::collection::vec(any::<u8>(), 0..1300),
            flips in proptest::collection::vec((0usize..1200, any::<u8>()), 0..4),
        ) {
            let _ = initial_server_name(&buf);
            let mut wire = hex(RFC9001_A2);
            for (at, x) in flips {
                wire[at] ^= x;
            }
            let _ = initial_server_name(&wire);
        }
    }
}
