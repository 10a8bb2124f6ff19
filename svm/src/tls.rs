//! TLS material and configurations (rustls with the `ring` provider; TLS 1.2 and 1.3 only,
//! which is all rustls speaks).
//!
//! The API server requires a client certificate that chains to the management CA
//! ([`server_config`]); the daemon's clients (central server, NSX Manager, the admin CLI) check
//! the server's certificate against a configured CA and may present a client certificate
//! ([`client_config`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

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
    let builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(management_ca)?), provider());
    let verifier = match auth {
        ClientAuth::Required => builder.build()?,
        ClientAuth::OptionalForBouncers => builder.allow_unauthenticated().build()?,
    };
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
        Some(id) => builder.with_client_auth_cert(id.chain, id.key)?,
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
