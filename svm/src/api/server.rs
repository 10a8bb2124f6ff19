//! The TLS listener: accept, handshake (the client certificate is verified against the
//! management CA by rustls), map the certificate to a role, serve HTTP/1.1 on the connection.
//! There is no plaintext listener.

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::{AppState, Peer, Role, router};
use crate::control::Control;

/// Which certificate subjects get which role: entries are `CN=<name>` or `OU=<unit>`; admin
/// wins when both match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleMap {
    /// Subjects with the admin role.
    pub admin: Vec<String>,
    /// Subjects with the read-only role.
    pub read_only: Vec<String>,
}

impl RoleMap {
    /// The role of a certificate with these subject names.
    pub fn role(&self, subject: &[String]) -> Option<Role> {
        let hit = |list: &[String]| {
            list.iter()
                .any(|want| subject.iter().any(|s| s.eq_ignore_ascii_case(want)))
        };
        if hit(&self.admin) {
            Some(Role::Admin)
        } else if hit(&self.read_only) {
            Some(Role::ReadOnly)
        } else {
            None
        }
    }
}

/// API server settings.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// TLS (see [`crate::tls::server_config`]).
    pub tls: Arc<rustls::ServerConfig>,
    /// Roles.
    pub roles: RoleMap,
    /// Bouncer API keys for the decisions stream.
    pub bouncer_keys: Vec<String>,
    /// Handshake timeout.
    pub handshake_timeout: Duration,
}

/// Serve until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    cfg: ApiConfig,
    control: Arc<dyn Control>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(cfg.tls.clone());
    let app = router(AppState {
        control,
        bouncer_keys: Arc::new(cfg.bouncer_keys.clone()),
    });
    let roles = Arc::new(cfg.roles.clone());
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let Ok((tcp, _remote)) = accepted else {
            // EMFILE and friends: back off briefly instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let roles = roles.clone();
        let timeout = cfg.handshake_timeout;
        tokio::spawn(async move {
            // A refused handshake (unknown CA, no certificate, old TLS) just ends the connection.
            let Ok(Ok(tls)) = tokio::time::timeout(timeout, acceptor.accept(tcp)).await else {
                return;
            };
            let subject: Vec<String> = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|leaf| {
                    let (cns, ous) = crate::tls::subject_names(leaf);
                    cns.into_iter()
                        .map(|c| format!("CN={c}"))
                        .chain(ous.into_iter().map(|o| format!("OU={o}")))
                        .collect()
                })
                .unwrap_or_default();
            let peer = Peer {
                role: roles.role(&subject),
                subject,
            };
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(peer.clone());
                app.clone().oneshot(req)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), svc)
                .await;
        });
    }
}
