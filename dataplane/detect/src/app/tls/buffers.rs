//! The TLS detection buffers of one handshake (`tls.*`, `ja3*`, `ja4.hash`, `ssl_version`),
//! read from the hellos and certificate chains where they lie (the scanner's `ScanBuffers`
//! hands every app buffer to [`crate::app::AppBuffers::get_nth`], which asks here for a TLS
//! transaction).

use super::cert::Certificates;
use super::parser::ClientHello;
use super::state::TlsTx;
use crate::rules::BufferKind;

/// The buffers of one TLS transaction: borrows its handshake.
#[derive(Clone, Copy, Debug)]
pub struct TlsBuffers<'a> {
    tx: &'a TlsTx,
}

impl<'a> TlsBuffers<'a> {
    /// The buffers of the handshake `tx`.
    pub fn new(tx: &'a TlsTx) -> Self {
        TlsBuffers { tx }
    }

    /// The handshake.
    pub fn tx(&self) -> &'a TlsTx {
        self.tx
    }

    /// `tls.sni`: the ClientHello's server name.
    pub fn sni(&self) -> Option<&'a [u8]> {
        self.tx.client.as_ref()?.sni.as_deref()
    }

    /// Instance `n` of buffer `kind` on the client's side (`to_server`: the ClientHello and
    /// the client's certificates) or the server's (the ServerHello and its chain).
    pub fn get_nth(&self, kind: BufferKind, n: usize, to_server: bool) -> Option<&'a [u8]> {
        if to_server {
            self.client_nth(kind, n)
        } else {
            self.server_nth(kind, n)
        }
    }

    fn client_nth(&self, kind: BufferKind, n: usize) -> Option<&'a [u8]> {
        let t = self.tx;
        let c = t.client.as_ref();
        // An SSL 2.0-format hello has a version only: no JA3, JA4 or random.
        let hello = || c.filter(|c| !c.is_sslv2());
        match kind {
            BufferKind::TlsAlpn => return c?.alpns().get(n).map(Vec::as_slice),
            BufferKind::TlsCerts => {
                return t.client_certs.as_ref()?.certs.get(n).map(Vec::as_slice);
            }
            _ if n > 0 => return None,
            _ => {}
        }
        match kind {
            BufferKind::TlsRandom | BufferKind::TlsRandomTime | BufferKind::TlsRandomBytes => {
                random_part(kind, hello().map(|c| c.random.as_slice()))
            }
            BufferKind::TlsSni => self.sni(),
            BufferKind::Ja3String => hello().map(|c| c.ja3.as_slice()),
            BufferKind::Ja3Hash => hello().map(|c| c.ja3_hash.as_slice()),
            BufferKind::Ja4Hash => hello().map(ClientHello::ja4),
            BufferKind::SslVersion => c.and_then(ClientHello::version_name),
            k => chain_nth(t.client_certs.as_ref()?, k),
        }
    }

    fn server_nth(&self, kind: BufferKind, n: usize) -> Option<&'a [u8]> {
        let t = self.tx;
        let s = t.server.as_ref();
        let x = t.certs.as_ref();
        match kind {
            BufferKind::TlsCerts => return x?.certs.get(n).map(Vec::as_slice),
            BufferKind::TlsAlpn => return s?.alpns.get(n).map(Vec::as_slice),
            BufferKind::TlsSubjectAltName => return x?.sans.get(n).map(Vec::as_slice),
            _ if n > 0 => return None,
            _ => {}
        }
        match kind {
            BufferKind::TlsRandom | BufferKind::TlsRandomTime | BufferKind::TlsRandomBytes => {
                random_part(kind, s.map(|s| s.random.as_slice()))
            }
            BufferKind::Ja3sString => s.map(|s| s.ja3s.as_slice()),
            BufferKind::Ja3sHash => s.map(|s| s.ja3s_hash.as_slice()),
            BufferKind::SslVersion => s?.version_name,
            k => chain_nth(x?, k),
        }
    }

    /// A handshake where every buffer is present (empty), for the scanner's `buffer_filled`.
    pub(crate) fn every() -> TlsBuffers<'static> {
        static T: std::sync::LazyLock<TlsTx> = std::sync::LazyLock::new(|| {
            let mut chain = Certificates::default();
            chain.certs.push(Vec::new());
            chain.sans.push(Vec::new());
            chain.subject = Some(Vec::new());
            chain.issuer = Some(Vec::new());
            chain.serial = Some(Vec::new());
            TlsTx {
                client: Some(ClientHello::every()),
                server: Some(super::parser::ServerHello {
                    random: vec![0; 32],
                    alpns: vec![Vec::new()],
                    version_name: Some(b""),
                    ..Default::default()
                }),
                certs: Some(chain.clone()),
                client_certs: Some(chain),
            }
        });
        TlsBuffers::new(&T)
    }
}

/// The `tls.cert_*` buffers of a certificate chain (the leaf's).
fn chain_nth(x: &Certificates, kind: BufferKind) -> Option<&[u8]> {
    match kind {
        BufferKind::TlsCertSubject => x.subject.as_deref(),
        BufferKind::TlsCertIssuer => x.issuer.as_deref(),
        BufferKind::TlsCertSerial => x.serial.as_deref(),
        BufferKind::TlsCertFingerprint => x.fingerprint(),
        _ => None,
    }
}

/// `tls.random` (all 32 bytes), `tls.random_time` (the first 4) or `tls.random_bytes` (the
/// other 28) of one hello's random.
pub(crate) fn random_part(kind: BufferKind, random: Option<&[u8]>) -> Option<&[u8]> {
    let r = random?;
    match kind {
        BufferKind::TlsRandomTime => r.get(..4),
        BufferKind::TlsRandomBytes => r.get(4..),
        _ => Some(r),
    }
}
