//! TLS handshake parsing over tls-parser: record framing, the ClientHello (SNI, JA3, JA4), the
//! ServerHello (JA3S) and the Certificate messages of either side (see [`super::cert`]); and
//! the SSL 2.0-format ClientHello old clients open with ([`sslv2_record`],
//! [`sslv2_client_hello`]), written here because tls-parser does not read SSL 2.0.
//! Pure functions: no state, no logging, no panics on any input.

use tls_parser::{
    SNIType, TlsExtension, TlsMessage, TlsMessageHandshake, TlsRecordType, parse_tls_extensions,
    parse_tls_message_handshake, parse_tls_raw_record,
};

use super::cert::{self, Certificates};
use super::fingerprint::{self, HelloFields};

/// Handshake message type of a ClientHello.
pub const CLIENT_HELLO: u8 = 1;
/// Handshake message type of a ServerHello.
pub const SERVER_HELLO: u8 = 2;
/// Handshake message type of a Certificate.
pub const CERTIFICATE: u8 = 11;

/// What the ClientHello told us.
#[derive(Clone, Debug, Default)]
pub struct ClientHello {
    /// The first `host_name` of the server_name extension, as sent.
    pub sni: Option<Vec<u8>>,
    /// `ja3.string`.
    pub ja3: Vec<u8>,
    /// `ja3.hash`: MD5 of the JA3 string, 32 lowercase hex digits.
    pub ja3_hash: Vec<u8>,
    /// `tls.random`: the hello's 32 random bytes (`tls.random_time` is the first 4,
    /// `tls.random_bytes` the other 28).
    pub random: Vec<u8>,
    /// What JA4 is computed from ([`Self::ja4`]).
    fields: HelloFields,
    /// JA4, once computed.
    ja4: std::sync::OnceLock<Vec<u8>>,
    /// Read from an SSL 2.0-format CLIENT-HELLO ([`sslv2_client_hello`]).
    sslv2: bool,
}

impl ClientHello {
    /// A hello where every buffer is present (empty names, a 32-byte random, one ALPN name, a
    /// TLS 1.2 version), for [`super::buffers::TlsBuffers::every`].
    pub(crate) fn every() -> ClientHello {
        ClientHello {
            sni: Some(Vec::new()),
            random: vec![0; 32],
            fields: HelloFields {
                version: 0x0303,
                alpns: vec![Vec::new()],
                ..HelloFields::default()
            },
            ..ClientHello::default()
        }
    }

    /// `ja4.hash`: the JA4 fingerprint (`t13d1516h2_8daaf6152771_e5627efa2ab1`), computed the
    /// first time it is asked for: its two SHA-256 hashes are not paid for on every hello when
    /// no loaded rule reads `ja4.hash` (ET Open has none), as Suricata computes JA4 only when
    /// something uses it.
    pub fn ja4(&self) -> &[u8] {
        self.ja4
            .get_or_init(|| fingerprint::ja4(&self.fields).into_bytes())
    }

    /// `tls.alpn`: the ALPN names offered, in order.
    pub fn alpns(&self) -> &[Vec<u8>] {
        &self.fields.alpns
    }

    /// `ssl_version` towards the server: the hello's version field ([`version_name`]), as
    /// Suricata's client version.
    pub fn version_name(&self) -> Option<&'static [u8]> {
        version_name(self.fields.version)
    }

    /// Whether the hello came in the SSL 2.0 format: it has no extensions, no SNI and no
    /// random, and Suricata computes neither JA3 nor JA4 for it, so those buffers are absent.
    pub fn is_sslv2(&self) -> bool {
        self.sslv2
    }

    /// The cipher suites offered, in order (for SSL 2.0, the specs that name a TLS suite).
    pub fn ciphers(&self) -> &[u16] {
        &self.fields.ciphers
    }
}

/// The `ssl_version` name of a protocol version (`sslv2` ... `tls1.3`, TLS 1.3 drafts
/// included, as Suricata), `None` for any other value: `ssl_version` then matches nothing.
pub fn version_name(v: u16) -> Option<&'static [u8]> {
    Some(match v {
        0x0002 | 0x0200 => b"sslv2",
        0x0300 => b"sslv3",
        0x0301 => b"tls1.0",
        0x0302 => b"tls1.1",
        0x0303 => b"tls1.2",
        0x0304 | 0x7f00..=0x7f1c => b"tls1.3",
        _ => return None,
    })
}

/// Equal when what they were read from is (whether JA4 was computed yet does not matter).
impl PartialEq for ClientHello {
    fn eq(&self, other: &Self) -> bool {
        self.sni == other.sni
            && self.ja3 == other.ja3
            && self.ja3_hash == other.ja3_hash
            && self.random == other.random
            && self.fields == other.fields
    }
}

impl Eq for ClientHello {}

/// What the ServerHello told us.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerHello {
    /// `ja3s.string`.
    pub ja3s: Vec<u8>,
    /// `ja3s.hash`.
    pub ja3s_hash: Vec<u8>,
    /// `tls.random` of the server side.
    pub random: Vec<u8>,
    /// `tls.alpn` of the server side: the protocol it chose.
    pub alpns: Vec<Vec<u8>>,
    /// `ssl_version` towards the client: the supported_versions choice (TLS 1.3), else the
    /// hello's version field, as Suricata's server version.
    pub version_name: Option<&'static [u8]>,
}

/// One record at the start of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// A complete record: its content type, its payload, and the bytes it took.
    Complete {
        /// Content type (22 handshake).
        content_type: u8,
        /// Payload.
        payload: &'a [u8],
        /// Header + payload length.
        len: usize,
    },
    /// More bytes needed.
    Incomplete,
}

/// Why TLS bytes cannot be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A record header is invalid or announces more than the protocol allows.
    #[error("tls: malformed record")]
    Record,
    /// The handshake message is not a well-formed ClientHello, ServerHello or Certificate.
    #[error("tls: malformed handshake")]
    Handshake,
}

/// Read one record at the start of `buf`.
pub fn record(buf: &[u8]) -> Result<Record<'_>, ParseError> {
    match parse_tls_raw_record(buf) {
        Ok((rest, rec)) => Ok(Record::Complete {
            content_type: rec.hdr.record_type.0,
            payload: rec.data,
            len: buf.len().saturating_sub(rest.len()),
        }),
        Err(tls_parser::nom::Err::Incomplete(_)) => Ok(Record::Incomplete),
        Err(_) => Err(ParseError::Record),
    }
}

/// Whether a record content type is handshake.
pub fn is_handshake(content_type: u8) -> bool {
    content_type == TlsRecordType::Handshake.0
}

/// Length of the first handshake message in `hs` (header included), once its 4-byte header is
/// there, and its type.
pub fn handshake_len(hs: &[u8]) -> Option<(u8, usize)> {
    match hs {
        [t, a, b, c, ..] => Some((
            *t,
            4usize
                .saturating_add(usize::from(*a) << 16)
                .saturating_add(usize::from(*b) << 8)
                .saturating_add(usize::from(*c)),
        )),
        _ => None,
    }
}

/// Parse a complete ClientHello handshake message (header included) and extract the SNI.
pub fn client_hello(msg: &[u8]) -> Result<ClientHello, ParseError> {
    let Ok((_, TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch)))) =
        parse_tls_message_handshake(msg)
    else {
        return Err(ParseError::Handshake);
    };
    let mut fields = HelloFields {
        version: ch.version.0,
        ciphers: ch
            .ciphers
            .iter()
            .take(fingerprint::MAX_LIST)
            .map(|c| c.0)
            .collect(),
        ..HelloFields::default()
    };
    if let Some(ext) = ch.ext {
        fields.read_extensions(ext, true);
    }
    let ja3 = fingerprint::ja3(&fields);
    let mut hello = ClientHello {
        sni: None,
        ja3_hash: fingerprint::md5_hex(&ja3).into_bytes(),
        ja3: ja3.into_bytes(),
        random: ch.random.to_vec(),
        fields,
        ja4: std::sync::OnceLock::new(),
        sslv2: false,
    };
    let Some(ext) = ch.ext else {
        return Ok(hello);
    };
    // Extensions that fail to parse end the list; SNI usually comes first, keep what parsed.
    let exts = parse_tls_extensions(ext)
        .map(|(_, e)| e)
        .unwrap_or_default();
    hello.sni = exts.iter().find_map(|e| match e {
        TlsExtension::SNI(names) => names
            .iter()
            .find(|(t, _)| *t == SNIType::HostName)
            .map(|(_, n)| n.to_vec()),
        _ => None,
    });
    Ok(hello)
}

/// SSL 2.0 message type of a CLIENT-HELLO.
pub const SSLV2_CLIENT_HELLO: u8 = 1;

/// One SSL 2.0 record with the 2-byte header (RFC 6101 appendix E.1: the high bit set, 15 bits
/// of length, no padding) at the start of `buf`; `content_type` is the message type, the first
/// byte of the payload. The 3-byte header form (with padding) is not read: its first byte is
/// indistinguishable from a TLS record's, and no client sends a CLIENT-HELLO with it. The
/// length field bounds a record to 2 + 32,767 bytes.
pub fn sslv2_record(buf: &[u8]) -> Result<Record<'_>, ParseError> {
    let [hi, lo, ..] = *buf else {
        return Ok(Record::Incomplete);
    };
    if hi & 0x80 == 0 {
        return Err(ParseError::Record);
    }
    let len = usize::from(u16::from_be_bytes([hi & 0x7f, lo]));
    if len == 0 {
        // Suricata: "record length should never be zero" (invalid_sslv2_header).
        return Err(ParseError::Record);
    }
    let total = len.saturating_add(2);
    match (buf.get(2..total), buf.get(2)) {
        (Some(payload), Some(ty)) => Ok(Record::Complete {
            content_type: *ty,
            payload,
            len: total,
        }),
        _ => Ok(Record::Incomplete),
    }
}

/// Parse the payload of an SSL 2.0 CLIENT-HELLO record (message type 1, RFC 6101 appendix E.1,
/// the SSL 2.0 draft's CLIENT-HELLO): version (the highest the client speaks: 0x0002 for SSL
/// 2.0, 0x0300-0x0303 for a client reaching SSL 3.0/TLS servers), cipher specs (3 bytes
/// each), session id and challenge, whose lengths must fit the record. The version is what
/// Suricata reads (its client version, `ssl_version`); cipher specs whose first byte is 0 name
/// a TLS cipher suite and are kept as such (RFC 5246 appendix E.2), at most
/// [`fingerprint::MAX_LIST`].
pub fn sslv2_client_hello(payload: &[u8]) -> Result<ClientHello, ParseError> {
    let Some(&[ty, v0, v1, c0, c1, s0, s1, h0, h1]) = payload.get(..9) else {
        return Err(ParseError::Handshake);
    };
    if ty != SSLV2_CLIENT_HELLO {
        return Err(ParseError::Handshake);
    }
    let specs_len = usize::from(u16::from_be_bytes([c0, c1]));
    let session_len = usize::from(u16::from_be_bytes([s0, s1]));
    let challenge_len = usize::from(u16::from_be_bytes([h0, h1]));
    let body = payload.get(9..).unwrap_or_default();
    if specs_len % 3 != 0
        || specs_len
            .saturating_add(session_len)
            .saturating_add(challenge_len)
            > body.len()
    {
        return Err(ParseError::Handshake);
    }
    let specs = body.get(..specs_len).unwrap_or_default();
    let fields = HelloFields {
        version: u16::from_be_bytes([v0, v1]),
        ciphers: specs
            .chunks_exact(3)
            .filter_map(|s| match *s {
                [0, a, b] => Some(u16::from_be_bytes([a, b])),
                _ => None,
            })
            .take(fingerprint::MAX_LIST)
            .collect(),
        ..HelloFields::default()
    };
    Ok(ClientHello {
        sni: None,
        ja3: Vec::new(),
        ja3_hash: Vec::new(),
        random: Vec::new(),
        fields,
        ja4: std::sync::OnceLock::new(),
        sslv2: true,
    })
}

/// Parse a complete ServerHello handshake message (header included): its JA3S.
pub fn server_hello(msg: &[u8]) -> Result<ServerHello, ParseError> {
    let Ok((_, TlsMessage::Handshake(TlsMessageHandshake::ServerHello(sh)))) =
        parse_tls_message_handshake(msg)
    else {
        return Err(ParseError::Handshake);
    };
    let mut fields = HelloFields {
        version: sh.version.0,
        ciphers: vec![sh.cipher.0],
        ..HelloFields::default()
    };
    if let Some(ext) = sh.ext {
        fields.read_extensions(ext, false);
    }
    let ja3s = fingerprint::ja3s(&fields);
    let version = fields.versions.first().copied().unwrap_or(fields.version);
    Ok(ServerHello {
        version_name: version_name(version),
        ja3s_hash: fingerprint::md5_hex(&ja3s).into_bytes(),
        ja3s: ja3s.into_bytes(),
        random: sh.random.to_vec(),
        alpns: fields.alpns,
    })
}

/// Parse a complete Certificate handshake message (header included; TLS 1.2 and earlier), the
/// server's or (client authentication) the client's.
pub fn certificate(msg: &[u8]) -> Result<Certificates, ParseError> {
    let Ok((_, TlsMessage::Handshake(TlsMessageHandshake::Certificate(c)))) =
        parse_tls_message_handshake(msg)
    else {
        return Err(ParseError::Handshake);
    };
    Ok(cert::certificates(c.cert_chain.iter().map(|c| c.data)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ClientHello handshake message (header included) with SNI `name`.
    pub(crate) fn client_hello_msg(name: &[u8]) -> Vec<u8> {
        client_hello_alpn_msg(name, &[])
    }

    /// A ClientHello with SNI `name` and, when `alpns` is not empty, an ALPN extension.
    pub(crate) fn client_hello_alpn_msg(name: &[u8], alpns: &[&[u8]]) -> Vec<u8> {
        let mut sni = Vec::new();
        let list_len = u16::try_from(name.len() + 3).unwrap();
        sni.extend_from_slice(&[0x00, 0x00]);
        sni.extend_from_slice(&(list_len + 2).to_be_bytes());
        sni.extend_from_slice(&list_len.to_be_bytes());
        sni.push(0);
        sni.extend_from_slice(&u16::try_from(name.len()).unwrap().to_be_bytes());
        sni.extend_from_slice(name);
        if !alpns.is_empty() {
            let mut list = Vec::new();
            for a in alpns {
                list.push(u8::try_from(a.len()).unwrap());
                list.extend_from_slice(a);
            }
            sni.extend_from_slice(&[0x00, 0x10]);
            sni.extend_from_slice(&u16::try_from(list.len() + 2).unwrap().to_be_bytes());
            sni.extend_from_slice(&u16::try_from(list.len()).unwrap().to_be_bytes());
            sni.extend_from_slice(&list);
        }
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[0x11; 32]); // random
        body.push(0); // session id
        body.extend_from_slice(&[0x00, 0x02, 0x13, 0x01]); // one cipher suite
        body.extend_from_slice(&[0x01, 0x00]); // null compression
        body.extend_from_slice(&u16::try_from(sni.len()).unwrap().to_be_bytes());
        body.extend_from_slice(&sni);
        let mut msg = vec![CLIENT_HELLO];
        let l = u32::try_from(body.len()).unwrap().to_be_bytes();
        msg.extend_from_slice(&l[1..]);
        msg.extend_from_slice(&body);
        msg
    }

    /// A ServerHello (TLS 1.2, cipher 0xc02f, renegotiation_info) followed by a Certificate
    /// message with `certs`, as the server sends them in clear.
    pub(crate) fn server_flight(certs: &[&[u8]]) -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[0x22; 32]); // random
        body.push(0); // session id
        body.extend_from_slice(&[0xc0, 0x2f, 0x00]); // cipher, null compression
        body.extend_from_slice(&[0x00, 0x05, 0xff, 0x01, 0x00, 0x01, 0x00]);
        let mut out = handshake(SERVER_HELLO, &body);
        let mut chain = Vec::new();
        for c in certs {
            chain.extend_from_slice(&u32::try_from(c.len()).unwrap().to_be_bytes()[1..]);
            chain.extend_from_slice(c);
        }
        let mut body = u32::try_from(chain.len()).unwrap().to_be_bytes()[1..].to_vec();
        body.extend_from_slice(&chain);
        out.extend(handshake(CERTIFICATE, &body));
        out.extend(handshake(14, &[]));
        out
    }

    /// A client's Certificate message (client authentication) carrying the probe certificate
    /// (`C=DE, O=probe GmbH, CN=probe.example`).
    pub(crate) fn client_certificate_msg() -> Vec<u8> {
        let der = cert::tests::PROBE_CERT;
        let mut chain = u32::try_from(der.len()).unwrap().to_be_bytes()[1..].to_vec();
        chain.extend_from_slice(der);
        let mut body = u32::try_from(chain.len()).unwrap().to_be_bytes()[1..].to_vec();
        body.extend_from_slice(&chain);
        handshake(CERTIFICATE, &body)
    }

    fn handshake(ty: u8, body: &[u8]) -> Vec<u8> {
        let mut msg = vec![ty];
        msg.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
        msg.extend_from_slice(body);
        msg
    }

    /// `payload` wrapped in handshake records of at most `max` bytes each.
    pub(crate) fn records(payload: &[u8], max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in payload.chunks(max) {
            out.extend_from_slice(&[0x16, 0x03, 0x01]);
            out.extend_from_slice(&u16::try_from(chunk.len()).unwrap().to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out
    }

    #[test]
    fn sni_extracted() {
        let msg = client_hello_msg(b"Www.Example.org");
        assert_eq!(
            client_hello(&msg).unwrap().sni.as_deref(),
            Some(&b"Www.Example.org"[..])
        );
        let rec = records(&msg, 1 << 14);
        match record(&rec).unwrap() {
            Record::Complete {
                content_type, len, ..
            } => {
                assert!(is_handshake(content_type));
                assert_eq!(len, rec.len());
            }
            Record::Incomplete => panic!("complete record expected"),
        }
        assert_eq!(record(&rec[..3]), Ok(Record::Incomplete));
        assert_eq!(client_hello(&msg[..20]), Err(ParseError::Handshake));
    }

    /// The SSL 2.0-format CLIENT-HELLO of suricata-verify's `ssl_version_negated` (flow
    /// 1660's first segment): version 3.1 (TLS 1.0), 26 cipher specs, no session id, a
    /// 16-byte challenge.
    pub(crate) const SSLV2_HELLO: &[u8] = &[
        0x80, 0x67, // 2-byte header, 103 bytes
        0x01, 0x03, 0x01, // CLIENT-HELLO, version 3.1
        0x00, 0x4e, 0x00, 0x00, 0x00, 0x10, // specs 78, session id 0, challenge 16
        0x01, 0x00, 0x80, 0x03, 0x00, 0x80, 0x07, 0x00, 0xc0, 0x06, 0x00, 0x40, 0x02, 0x00, 0x80,
        0x04, 0x00, 0x80, 0x00, 0x00, 0x39, 0x00, 0x00, 0x38, 0x00, 0x00, 0x35, 0x00, 0x00, 0x33,
        0x00, 0x00, 0x32, 0x00, 0x00, 0x04, 0x00, 0x00, 0x05, 0x00, 0x00, 0x2f, 0x00, 0x00, 0x16,
        0x00, 0x00, 0x13, 0x00, 0xfe, 0xff, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x15, 0x00, 0x00, 0x12,
        0x00, 0xfe, 0xfe, 0x00, 0x00, 0x09, 0x00, 0x00, 0x64, 0x00, 0x00, 0x62, 0x00, 0x00, 0x03,
        0x00, 0x00, 0x06, // specs
        0x31, 0x43, 0xc4, 0x65, 0xd5, 0x27, 0x71, 0xe4, 0x66, 0xa4, 0x2b, 0xe1, 0x70, 0x17, 0x87,
        0xfd, // challenge
    ];

    #[test]
    fn sslv2_client_hello_read() {
        assert_eq!(SSLV2_HELLO.len(), 105);
        let Record::Complete {
            content_type,
            payload,
            len,
        } = sslv2_record(SSLV2_HELLO).unwrap()
        else {
            panic!("complete record expected");
        };
        assert_eq!((content_type, len), (SSLV2_CLIENT_HELLO, 105));
        let c = sslv2_client_hello(payload).unwrap();
        assert!(c.is_sslv2());
        assert_eq!(c.version_name(), Some(&b"tls1.0"[..]));
        // 26 specs, 6 of them SSL 2.0-only (first byte not 0).
        assert_eq!(c.ciphers().len(), 20);
        assert_eq!(c.ciphers()[..3], [0x39, 0x38, 0x35]);
        assert!(c.ja3.is_empty() && c.sni.is_none() && c.random.is_empty());
        // Every cut short of the whole record is incomplete; the hello needs all its fields.
        for cut in 0..105 {
            assert_eq!(sslv2_record(&SSLV2_HELLO[..cut]), Ok(Record::Incomplete));
        }
        for cut in 2..payload.len() {
            assert_eq!(
                sslv2_client_hello(&payload[..cut]),
                Err(ParseError::Handshake),
                "{cut}"
            );
        }
        // Not a 2-byte header, a zero length, another message type, specs not in threes.
        assert_eq!(sslv2_record(&[0x16, 3, 1]), Err(ParseError::Record));
        assert_eq!(sslv2_record(&[0x80, 0]), Err(ParseError::Record));
        let mut other = payload.to_vec();
        other[0] = 4;
        assert_eq!(sslv2_client_hello(&other), Err(ParseError::Handshake));
        let mut odd = payload.to_vec();
        odd[4] = 0x4d;
        assert_eq!(sslv2_client_hello(&odd), Err(ParseError::Handshake));
        // SSL 2.0 itself.
        let mut v2 = payload.to_vec();
        v2[1..3].copy_from_slice(&[0, 2]);
        assert_eq!(
            sslv2_client_hello(&v2).unwrap().version_name(),
            Some(&b"sslv2"[..])
        );
    }

    proptest::proptest! {
        // Any bytes: never a panic; a hello read back keeps its version and at most as many
        // ciphers as the record has specs.
        #[test]
        fn sslv2_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            if let Ok(Record::Complete { payload, len, .. }) = sslv2_record(&data) {
                proptest::prop_assert!(len <= data.len());
                if let Ok(c) = sslv2_client_hello(payload) {
                    proptest::prop_assert!(c.ciphers().len() * 3 <= payload.len());
                    proptest::prop_assert_eq!(
                        c.fields.version,
                        u16::from_be_bytes([payload[1], payload[2]])
                    );
                }
            }
        }

        // A well-formed hello with any version, specs, session id and challenge parses back.
        #[test]
        fn sslv2_round_trip(
            version in proptest::prelude::any::<u16>(),
            specs in proptest::collection::vec(proptest::prelude::any::<[u8; 3]>(), 0..40),
            session in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..17),
            challenge in proptest::collection::vec(proptest::prelude::any::<u8>(), 16..33),
        ) {
            let mut body = vec![SSLV2_CLIENT_HELLO];
            body.extend_from_slice(&version.to_be_bytes());
            for n in [specs.len() * 3, session.len(), challenge.len()] {
                body.extend_from_slice(&u16::try_from(n).unwrap().to_be_bytes());
            }
            body.extend(specs.iter().flatten());
            body.extend_from_slice(&session);
            body.extend_from_slice(&challenge);
            let mut rec = (u16::try_from(body.len()).unwrap() | 0x8000).to_be_bytes().to_vec();
            rec.extend_from_slice(&body);
            let Ok(Record::Complete { payload, len, .. }) = sslv2_record(&rec) else {
                return Err(proptest::test_runner::TestCaseError::fail("record"));
            };
            proptest::prop_assert_eq!(len, rec.len());
            let c = sslv2_client_hello(payload).unwrap();
            let want: Vec<u16> = specs
                .iter()
                .filter(|s| s[0] == 0)
                .map(|s| u16::from_be_bytes([s[1], s[2]]))
                .collect();
            proptest::prop_assert_eq!(c.ciphers(), want.as_slice());
            proptest::prop_assert_eq!(c.fields.version, version);
        }
    }

    #[test]
    fn fingerprints_of_the_hellos() {
        let c = client_hello(&client_hello_msg(b"a.example")).unwrap();
        assert_eq!(c.ja3, b"771,4865,0,,");
        assert_eq!(c.ja3_hash, b"1e7c622032b0cb79401b0f7be3793a1a");
        assert!(
            c.ja4().starts_with(b"t12d010100_"),
            "{:?}",
            String::from_utf8_lossy(c.ja4())
        );
        let flight = server_flight(&[cert::tests::PROBE_CERT]);
        let (_, len) = handshake_len(&flight).unwrap();
        let s = server_hello(&flight[..len]).unwrap();
        assert_eq!(s.ja3s, b"771,49199,65281");
        assert_eq!(s.ja3s_hash, b"fbe78c619e7ea20046131294ad087f05");
        assert_eq!(c.random, [0x11; 32]);
        assert!(c.alpns().is_empty());
        let a = client_hello(&client_hello_alpn_msg(b"a.example", &[b"h2", b"x"])).unwrap();
        assert_eq!(a.alpns(), [b"h2".to_vec(), b"x".to_vec()]);
        assert_eq!(a.sni.as_deref(), Some(&b"a.example"[..]));
        assert_eq!(s.random, [0x22; 32]);
        let rest = &flight[len..];
        let (ty, clen) = handshake_len(rest).unwrap();
        assert_eq!(ty, CERTIFICATE);
        let certs = certificate(&rest[..clen]).unwrap();
        assert_eq!(certs.serial.as_deref(), Some(&b"0A:1B:2C:3D"[..]));
        assert_eq!(server_hello(&rest[..clen]), Err(ParseError::Handshake));
        assert_eq!(certificate(&flight[..len]), Err(ParseError::Handshake));
    }
}
