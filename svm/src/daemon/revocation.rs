//! Client certificate revocation for the API (`api.crl`): the lists are read at start with the
//! rest of the configuration and read again on every SIGHUP; a new set is put in force for
//! every later handshake, a set that cannot be read or built keeps the one in force (logged).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};

use crate::tls::{ClientAuth, SwappableVerifier, TlsError};

/// What the API's client verifier is built from.
#[derive(Clone, Debug)]
pub struct Revocation {
    /// The management CA.
    pub ca: Vec<CertificateDer<'static>>,
    /// Whether clients without a certificate are let in (bouncers).
    pub auth: ClientAuth,
    /// The CRL files (`api.crl`), empty for none.
    pub files: Vec<PathBuf>,
}

impl Revocation {
    /// Every list of every file.
    pub fn read(&self) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
        let mut all = Vec::new();
        for f in &self.files {
            all.extend(crate::tls::load_crls(f)?);
        }
        Ok(all)
    }

    /// The verifier of the lists as they are now on disk, and how many lists it holds.
    pub fn build(
        &self,
    ) -> Result<(Arc<dyn rustls::server::danger::ClientCertVerifier>, usize), TlsError> {
        let crls = self.read()?;
        let n = crls.len();
        Ok((crate::tls::client_verifier(&self.ca, self.auth, crls)?, n))
    }

    /// Read the lists again and put them in force; the line to log.
    pub fn reload(&self, verifier: &SwappableVerifier) -> String {
        match self.build() {
            Ok((v, n)) => {
                verifier.swap(v);
                format!("svm run: api: {n} certificate revocation list(s) reloaded")
            }
            Err(e) => format!(
                "svm run: api: certificate revocation lists not reloaded, the previous ones stay in force: {e}"
            ),
        }
    }
}

/// Reload on every SIGHUP (its own flag beside the rules' one) until the runtime stops.
pub fn watch(
    runtime: &tokio::runtime::Runtime,
    revocation: Revocation,
    verifier: Arc<SwappableVerifier>,
) -> std::io::Result<()> {
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup))?;
    runtime.spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if hup.swap(false, Ordering::Relaxed) {
                tracing::info!("{}", revocation.reload(&verifier));
            }
        }
    });
    Ok(())
}
