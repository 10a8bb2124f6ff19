//! TLS material and configurations (rustls with the `ring` provider; TLS 1.2 and 1.3 only,
//! which is all rustls speaks).
//!
//! The API server requires a client certificate that chains to the management CA
//! ([`server_config`]); the daemon's clients (central server, NSX Manager, the admin CLI) check
//! the server's certificate against a configured CA and may present a client certificate
//! ([`client_config`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};

/// Errors loading TLS material or building a configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{}: {reason}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// rustls refused the material.
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client verifier could not be built (e.g. no usable CA certificate).
    #[error("tls client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// A certificate that every peer would refuse (see [`check_leaf`]).
    #[error("{what}: {reason}")]
    Unusable {
        /// Which certificate (`server certificate`, `client certificate`).
        what: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

/// What a certificate of ours is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertUse {
    /// Presented by the API server: clients check the name they connect to against it.
    Server,
    /// Presented by a client of the API or of an outside server.
    Client,
}

/// Refuse a certificate of ours that every peer would refuse: one that is not X.509 version 3
/// (rustls's verifier refuses versions 1 and 2) and, for a server, one without a subjectAltName
/// (clients match the name they connect to against its DNS and IP names only, never the common
/// name). Found at start, these are one clear message instead of every client failing later.
pub fn check_leaf(cert: &CertificateDer<'_>, usage: CertUse) -> Result<(), String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|e| format!("not a readable X.509 certificate ({e})"))?;
    let version = parsed.version().0;
    if version != x509_parser::x509::X509Version::V3.0 {
        return Err(format!(
            "it is an X.509 version {} certificate and TLS peers accept only version 3; \
             reissue it with extensions (openssl makes version 1 when `openssl x509 -req` is given \
             no -extfile; add one with the subjectAltName and extendedKeyUsage lines)",
            version + 1
        ));
    }
    if usage == CertUse::Server {
        let names = match parsed.subject_alternative_name() {
            Ok(Some(san)) => san.value.general_names.len(),
            Ok(None) => 0,
            Err(e) => return Err(format!("its subjectAltName cannot be read ({e})")),
        };
        if names == 0 {
            return Err(
                "it has no subjectAltName: clients check the DNS name or address they \
                 connect to against its subjectAltName entries (the common name is not used), so \
                 every client would fail; reissue it with the names clients use, e.g. \
                 `-addext \"subjectAltName=DNS:svm.example.org,IP:192.0.2.10\"` (openssl req) or \
                 `subjectAltName = DNS:svm.example.org, IP:192.0.2.10` in the -extfile \
                 (openssl x509 -req)"
                    .into(),
            );
        }
    }
    Ok(())
}

fn check_identity(identity: &Identity, usage: CertUse) -> Result<(), TlsError> {
    let what = match usage {
        CertUse::Server => "server certificate",
        CertUse::Client => "client certificate",
    };
    let leaf = identity.chain.first().ok_or(TlsError::Unusable {
        what,
        reason: "no certificate".into(),
    })?;
    check_leaf(leaf, usage).map_err(|reason| TlsError::Unusable { what, reason })
}

/// A TLS failure in words an admin can act on: what the peer's certificate (or ours, as the
/// peer's alert says) got wrong and where to look. rustls's own text names only the variant
/// (`UnknownIssuer`, `Other(OtherError(UnsupportedCertVersion))`).
pub fn explain(e: &rustls::Error) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    match e {
        E::InvalidCertificate(c) => {
            let why = match c {
                C::UnknownIssuer => "it is not issued by the CA this side trusts (check the CA \
                     file given: --ca, api.client_ca or the output's ca)"
                    .to_owned(),
                C::NotValidForName | C::NotValidForNameContext { .. } => "it does not name the \
                     host connected to: its subjectAltName must list that DNS name or address"
                    .to_owned(),
                C::Expired | C::ExpiredContext { .. } => "it has expired".to_owned(),
                C::NotValidYet | C::NotValidYetContext { .. } => {
                    "it is not valid yet (check both clocks)".to_owned()
                }
                C::Revoked => "it is revoked".to_owned(),
                C::BadSignature => "its signature does not verify".to_owned(),
                C::UnsupportedSignatureAlgorithmContext { .. }
                | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
                    "it is signed with an algorithm rustls does not support".to_owned()
                }
                C::Other(o) if format!("{o:?}").contains("UnsupportedCertVersion") => {
                    "it is not an X.509 version 3 certificate (version 1 or 2); reissue it with \
                     extensions"
                        .to_owned()
                }
                other => format!("{other:?}"),
            };
            format!("the peer's certificate was refused: {why}")
        }
        E::AlertReceived(a) => {
            let why = match a {
                A::CertificateRequired => "it requires a client certificate and none was sent",
                A::UnknownCA => "it does not trust the CA of our certificate",
                A::BadCertificate | A::UnsupportedCertificate => {
                    "it refused our certificate (not X.509 version 3, wrong key usage, or not \
                     issued by its CA)"
                }
                A::CertificateExpired => "our certificate has expired",
                A::CertificateRevoked => "our certificate is revoked",
                A::HandshakeFailure | A::ProtocolVersion => {
                    "no TLS version or cipher suite in common"
                }
                _ => "",
            };
            if why.is_empty() {
                format!("the peer ended the handshake ({a:?})")
            } else {
                format!("the peer ended the handshake: {why}")
            }
        }
        other => other.to_string(),
    }
}

/// An I/O error from a TLS connection, explained ([`explain`]) when rustls caused it.
pub fn explain_io(e: &std::io::Error) -> String {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .map_or_else(|| e.to_string(), explain)
}

/// A certificate chain and its key.
#[derive(Debug)]
pub struct Identity {
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

fn pem_err(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// Read every certificate in a PEM file (at least one).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(path, e))?;
    if certs.is_empty() {
        return Err(pem_err(path, "no certificate found"));
    }
    Ok(certs)
}

/// Read a certificate chain and key from PEM files.
pub fn load_identity(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
    Ok(Identity {
        chain: load_certs(cert)?,
        key: PrivateKeyDer::from_pem_file(key).map_err(|e| pem_err(key, e))?,
    })
}

/// Identity from PEM text (tests and generated material).
pub fn identity_from_pem(cert_pem: &str, key_pem: &str) -> Result<Identity, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(Path::new("<cert>"), e))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| pem_err(Path::new("<key>"), e))?;
    Ok(Identity { chain, key })
}

/// Certificates from PEM text.
pub fn certs_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(Path::new("<ca>"), e))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(cas: &[CertificateDer<'static>]) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for ca in cas {
        store.add(ca.clone())?;
    }
    Ok(store)
}

/// How the API server treats client certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// Every connection must present a certificate chaining to the management CA.
    #[default]
    Required,
    /// A certificate, when presented, must chain to the CA; connections without one are allowed
    /// but only reach routes with their own credential (the decisions stream's `X-Api-Key`)
    /// and `/healthz`.
    OptionalForBouncers,
}

/// The API server's TLS configuration: our identity, client certificates verified against the
/// management CA, HTTP/1.1 only.
pub fn server_config(
    identity: Identity,
    management_ca: &[CertificateDer<'static>],
    auth: ClientAuth,
) -> Result<Arc<ServerConfig>, TlsError> {
    server_config_with(identity, client_verifier(management_ca, auth, Vec::new())?)
}
/// Read every certificate revocation list in a PEM file (`-----BEGIN X509 CRL-----`, as
/// `openssl ca -gencrl` writes; at least one).
pub fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let crls = CertificateRevocationListDer::pem_file_iter(path)
        .map_err(|e| pem_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(path, e))?;
    if crls.is_empty() {
        return Err(pem_err(
            path,
            "no certificate revocation list (X509 CRL) found",
        ));
    }
    Ok(crls)
}

/// The API's client verifier: client certificates chain to the management CA and, with `crls`,
/// none of the chain is revoked. With CRLs every certificate of the chain needs its issuer's
/// list (webpki's default: an unknown revocation status is refused, so a CRL of the wrong CA
/// locks clients out instead of letting revoked ones in).
pub fn client_verifier(
    management_ca: &[CertificateDer<'static>],
    auth: ClientAuth,
    crls: Vec<CertificateRevocationListDer<'static>>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let mut builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(management_ca)?), provider());
    if !crls.is_empty() {
        builder = builder.with_crls(crls);
    }
    Ok(match auth {
        ClientAuth::Required => builder.build()?,
        ClientAuth::OptionalForBouncers => builder.allow_unauthenticated().build()?,
    })
}

/// A client verifier that can be replaced while the server runs (new CRLs on SIGHUP): each
/// handshake asks the one in force when it starts. The CA, and so the subjects hinted to clients
/// and whether a certificate is required, stay those of the first.
#[derive(Debug)]
pub struct SwappableVerifier {
    current: std::sync::RwLock<Arc<dyn ClientCertVerifier>>,
    hints: Vec<DistinguishedName>,
    offer: bool,
    mandatory: bool,
}

impl SwappableVerifier {
    /// Start with `first`.
    pub fn new(first: Arc<dyn ClientCertVerifier>) -> Arc<SwappableVerifier> {
        Arc::new(SwappableVerifier {
            hints: first.root_hint_subjects().to_vec(),
            offer: first.offer_client_auth(),
            mandatory: first.client_auth_mandatory(),
            current: std::sync::RwLock::new(first),
        })
    }

    /// Put `next` in force for every later handshake.
    pub fn swap(&self, next: Arc<dyn ClientCertVerifier>) {
        match self.current.write() {
            Ok(mut g) => *g = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }

    fn get(&self) -> Arc<dyn ClientCertVerifier> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}

impl ClientCertVerifier for SwappableVerifier {
    fn offer_client_auth(&self) -> bool {
        self.offer
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.get()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.get().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.get().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.get().supported_verify_schemes()
    }
}

/// The API server's TLS configuration with a given client verifier (see [`server_config`]).
pub fn server_config_with(
    identity: Identity,
    verifier: Arc<dyn ClientCertVerifier>,
) -> Result<Arc<ServerConfig>, TlsError> {
    check_identity(&identity, CertUse::Server)?;
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain, identity.key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A client configuration: the server must chain to `server_ca`; `identity` is sent when the
/// server asks for a client certificate.
pub fn client_config(
    server_ca: &[CertificateDer<'static>],
    identity: Option<Identity>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots(server_ca)?);
    let cfg = match identity {
        Some(id) => {
            check_identity(&id, CertUse::Client)?;
            builder.with_client_auth_cert(id.chain, id.key)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

/// Subject common names and organisational units of a DER certificate.
pub fn subject_names(cert: &CertificateDer<'_>) -> (Vec<String>, Vec<String>) {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return (Vec::new(), Vec::new());
    };
    let subject = parsed.subject();
    let cns = subject
        .iter_common_name()
        .filter_map(|a| a.as_str().ok().map(str::to_owned))
        .collect();
    let ous = subject
        .iter_organizational_unit()
        .filter_map(|a| a.as_str().ok().map(str::to_owned))
        .collect();
    (cns, ous)
}
