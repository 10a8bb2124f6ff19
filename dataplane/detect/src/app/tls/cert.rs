//! The server's certificate chain (TLS 1.2 and earlier send it in clear): the fields Suricata's
//! certificate keywords read, from the first (leaf) certificate, parsed with `x509-parser`, and
//! each certificate's DER for `tls.certs`. Pure functions, no panics on any input.

use sha1::{Digest, Sha1};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// Certificates of a chain kept for `tls.certs` (the leaf first). Chains have 2-4; the cap
/// bounds the work of a hostile one (the handshake cap already bounds its bytes).
pub const MAX_CERTS: usize = 10;

/// Subject alternative names kept for `tls.subjectaltname` (Suricata caps them too). Real
/// certificates have a few to a few hundred; the handshake cap bounds the bytes.
pub const MAX_SANS: usize = 1024;

/// What the certificate keywords read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Certificates {
    /// `tls.cert_subject`: the leaf's subject as x509-parser prints it (`C=US, O=..., CN=...`),
    /// as Suricata (which uses the same crate) shows it.
    pub subject: Option<Vec<u8>>,
    /// `tls.cert_issuer`, printed likewise.
    pub issuer: Option<Vec<u8>>,
    /// `tls.cert_serial`: the serial's DER bytes as uppercase hex pairs joined by `:`.
    pub serial: Option<Vec<u8>>,
    /// `tls.cert_fingerprint` ([`Self::fingerprint`]), once computed.
    fingerprint: std::sync::OnceLock<Vec<u8>>,
    /// `tls.certs`: each certificate's DER, leaf first, at most [`MAX_CERTS`].
    pub certs: Vec<Vec<u8>>,
    /// `tls.subjectaltname`: the leaf's subject alternative names, in order, at most
    /// [`MAX_SANS`]: DNS names, e-mail addresses and URIs as written, IP addresses in text form.
    /// Other kinds (directory names, other names) are left out.
    pub sans: Vec<Vec<u8>>,
}

/// The text of one subject alternative name, for the kinds rules match on.
fn san_text(n: &GeneralName<'_>) -> Option<Vec<u8>> {
    match n {
        GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
            Some(s.as_bytes().to_vec())
        }
        GeneralName::IPAddress(b) => match *b {
            [a, b, c, d] => Some(
                std::net::Ipv4Addr::new(*a, *b, *c, *d)
                    .to_string()
                    .into_bytes(),
            ),
            _ => <[u8; 16]>::try_from(*b)
                .ok()
                .map(|v6| std::net::Ipv6Addr::from(v6).to_string().into_bytes()),
        },
        _ => None,
    }
}

impl Certificates {
    /// `tls.cert_fingerprint`: SHA-1 of the leaf's DER, lowercase hex pairs joined by `:`;
    /// `None` without a certificate. Computed the first time it is asked for: no rule of ET
    /// Open reads it, and hashing every leaf cost about 1.5% of a replay with it.
    pub fn fingerprint(&self) -> Option<&[u8]> {
        let leaf = self.certs.first()?;
        Some(
            self.fingerprint
                .get_or_init(|| pairs(&Sha1::digest(leaf), false)),
        )
    }
}

fn pairs(b: &[u8], upper: bool) -> Vec<u8> {
    let digit = |n: u8| {
        let c = super::fingerprint::nibble(n);
        if upper { c.to_ascii_uppercase() } else { c }
    };
    let mut s = String::with_capacity(b.len() * 3);
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push(digit(x >> 4));
        s.push(digit(*x));
    }
    s.into_bytes()
}

/// Read a chain: `chain` holds each certificate's DER, leaf first. The leaf's fields are
/// filled when it parses as X.509; the DER of every certificate is kept either way.
pub fn certificates<'a>(chain: impl IntoIterator<Item = &'a [u8]>) -> Certificates {
    let mut out = Certificates::default();
    for der in chain.into_iter().take(MAX_CERTS) {
        if out.certs.is_empty()
            && let Ok((_, x)) = X509Certificate::from_der(der)
        {
            out.subject = Some(x.subject().to_string().into_bytes());
            out.issuer = Some(x.issuer().to_string().into_bytes());
            out.serial = Some(pairs(x.tbs_certificate.raw_serial(), true));
            if let Ok(Some(san)) = x.subject_alternative_name() {
                out.sans = san
                    .value
                    .general_names
                    .iter()
                    .filter_map(san_text)
                    .take(MAX_SANS)
                    .collect();
            }
        }
        out.certs.push(der.to_vec());
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // Any bytes, whole or as a damaged copy of a real certificate: no panic, the DER is
        // kept as given and the fingerprint is always there.
        #[test]
        fn any_chain_reads(
            junk in proptest::collection::vec(any::<u8>(), 0..300),
            cut in 0usize..600,
            flip in 0usize..600,
        ) {
            let mut damaged = PROBE_CERT.to_vec();
            if let Some(b) = damaged.get_mut(flip) {
                *b ^= 0x5a;
            }
            damaged.truncate(cut.max(1));
            let c = certificates([damaged.as_slice(), junk.as_slice()]);
            prop_assert_eq!(c.certs.len(), 2);
            prop_assert_eq!(c.certs[0].as_slice(), damaged.as_slice());
            prop_assert!(c.fingerprint().is_some());
        }
    }

    /// A self-signed certificate (openssl, RSA 1024, serial 0x0a1b2c3d):
    /// subject and issuer `C=DE, O=probe GmbH, CN=probe.example`.
    pub(crate) const PROBE_CERT: &[u8] = include_bytes!("testdata/probe-cert.der");

    #[test]
    fn leaf_fields() {
        let c = certificates([PROBE_CERT, b"not a certificate".as_slice()]);
        assert_eq!(
            c.subject.as_deref(),
            Some(&b"C=DE, O=probe GmbH, CN=probe.example"[..])
        );
        assert_eq!(c.issuer, c.subject);
        assert_eq!(c.serial.as_deref(), Some(&b"0A:1B:2C:3D"[..]));
        // Not hashed until asked for.
        assert!(c.fingerprint.get().is_none());
        let fp = String::from_utf8(c.fingerprint().unwrap().to_vec()).unwrap();
        assert_eq!(fp.len(), 20 * 3 - 1);
        assert!(
            fp.chars()
                .all(|ch| ch == ':' || ch.is_ascii_hexdigit() && !ch.is_ascii_uppercase())
        );
        assert_eq!(c.certs.len(), 2);
    }

    /// A self-signed certificate (openssl, P-256): `O=probe GmbH, CN=san.example`, subject
    /// alternative names DNS `san.example`, DNS `*.san.example`, IP `192.0.2.7`.
    pub(crate) const SAN_CERT: &[u8] = include_bytes!("testdata/san-cert.der");

    #[test]
    fn subject_alt_names() {
        let c = certificates([SAN_CERT, PROBE_CERT]);
        assert_eq!(
            c.sans,
            vec![
                b"san.example".to_vec(),
                b"*.san.example".to_vec(),
                b"192.0.2.7".to_vec()
            ]
        );
        // Only the leaf's names count.
        assert!(certificates([PROBE_CERT, SAN_CERT]).sans.is_empty());
    }

    #[test]
    fn garbage_leaf_keeps_der_and_fingerprint() {
        let c = certificates([&[0x30, 0x03, 1, 2, 3][..]]);
        assert_eq!(c.subject, None);
        assert_eq!(c.serial, None);
        assert!(c.fingerprint().is_some());
        assert_eq!(c.certs, vec![vec![0x30, 0x03, 1, 2, 3]]);
        assert_eq!(certificates([]).fingerprint(), None);
        let many: Vec<&[u8]> = vec![PROBE_CERT; 30];
        assert_eq!(certificates(many).certs.len(), MAX_CERTS);
    }
}
