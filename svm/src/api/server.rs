//! The TLS listener: accept, handshake (the client certificate is verified against the
//! management CA by rustls), map the certificate to a role, serve HTTP/1.1 on the connection.
//! There is no plaintext listener.
//!
//! # Limits
//! Anonymous clients must not exhaust the API (each open connection is a file descriptor, each
//! unread body memory):
//! - A connection is *unverified* from accept until its handshake shows a client certificate;
//!   at most [`MAX_UNVERIFIED`] are open, and a new one closes the oldest unverified one. A
//!   certified client's handshake takes milliseconds, so slow or idle anonymous connections
//!   cannot keep it out. Clients without a certificate (bouncers, only when bouncer keys are
//!   configured) stay unverified for their connection's life.
//! - Certified connections have their own [`MAX_CERTIFIED`] places.
//! - Request headers must arrive within [`HEADER_TIMEOUT`], which is also how long a kept-alive
//!   connection may idle; a request body within [`BODY_TIMEOUT`].
//! - A connection without a certificate reaches only the decisions stream; every other request
//!   is refused before its body is read, and handlers check the role before they read a body.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
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

/// Unverified connections (handshaking, or without a client certificate) open at most.
pub const MAX_UNVERIFIED: usize = 64;

/// Connections with a verified client certificate open at most.
pub const MAX_CERTIFIED: usize = 256;

/// Time for a request's headers, and for idling between requests on one connection.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Time for a request's body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// The unverified connections, oldest first, each with the means to close it.
#[derive(Debug, Default)]
struct Unverified {
    next: u64,
    open: BTreeMap<u64, tokio::sync::oneshot::Sender<()>>,
}

impl Unverified {
    /// Admit a connection, closing the oldest unverified one when all places are taken.
    fn admit(&mut self) -> (u64, tokio::sync::oneshot::Receiver<()>) {
        while self.open.len() >= MAX_UNVERIFIED {
            if let Some((_, close)) = self.open.pop_first() {
                let _ = close.send(());
            }
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let id = self.next;
        self.next += 1;
        self.open.insert(id, tx);
        (id, rx)
    }
}

fn lock(u: &Mutex<Unverified>) -> std::sync::MutexGuard<'_, Unverified> {
    u.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The paths a client without a certificate may reach.
fn anonymous_may(path: &str) -> bool {
    path == "/v1/decisions/stream"
}

/// Log lines of refused handshakes and of 403s: a peer can cause them at will.
static REFUSED_HANDSHAKES: crate::logging::RateLimit = crate::logging::RateLimit::new();
static FORBIDDEN: crate::logging::RateLimit = crate::logging::RateLimit::new();

fn suppressed(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} more not logged)")
    }
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
    let unverified = Arc::new(Mutex::new(Unverified::default()));
    let certified = Arc::new(tokio::sync::Semaphore::new(MAX_CERTIFIED));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let Ok((tcp, remote)) = accepted else {
            // EMFILE and friends: back off briefly instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let roles = roles.clone();
        let timeout = cfg.handshake_timeout;
        let (slot, evicted) = lock(&unverified).admit();
        let unverified = unverified.clone();
        let certified = certified.clone();
        tokio::spawn(async move {
            let serve = async {
                // A refused handshake (unknown CA, no certificate, old TLS) ends the connection;
                // the log says who and why (rustls' reason names no key material).
                let tls = match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        if let Some(more) = REFUSED_HANDSHAKES.check() {
                            tracing::warn!(
                                "svm api: TLS handshake from {remote} refused: {e}{}",
                                suppressed(more)
                            );
                        }
                        return;
                    }
                    Err(_) => {
                        if let Some(more) = REFUSED_HANDSHAKES.check() {
                            tracing::warn!(
                                "svm api: TLS handshake from {remote} timed out after {timeout:?}{}",
                                suppressed(more)
                            );
                        }
                        return;
                    }
                };
                let leaf = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
                let has_cert = leaf.is_some();
                let subject: Vec<String> = leaf
                    .map(|leaf| {
                        let (cns, ous) = crate::tls::subject_names(leaf);
                        cns.into_iter()
                            .map(|c| format!("CN={c}"))
                            .chain(ous.into_iter().map(|o| format!("OU={o}")))
                            .collect()
                    })
                    .unwrap_or_default();
                // A certified connection leaves the unverified places for its own.
                let _permit = if has_cert {
                    let Ok(p) = certified.clone().try_acquire_owned() else {
                        return;
                    };
                    lock(&unverified).open.remove(&slot);
                    Some(p)
                } else {
                    None
                };
                let peer = Peer {
                    role: roles.role(&subject),
                    subject,
                };
                let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                    let app = app.clone();
                    let refuse = !has_cert && !anonymous_may(req.uri().path());
                    // For the log of a refusal: the route without its query, and the client's
                    // certificate names (never a key, token or body).
                    let what = format!("{} {}", req.method(), req.uri().path());
                    let who = if peer.subject.is_empty() {
                        "no client certificate".to_owned()
                    } else {
                        peer.subject.join(",")
                    };
                    req.extensions_mut().insert(peer.clone());
                    async move {
                        let resp = if refuse {
                            // Before the body is read.
                            axum::response::IntoResponse::into_response(super::ApiError::Forbidden(
                                "a client certificate is required for this route",
                            ))
                        } else {
                            app.oneshot(req).await?
                        };
                        if resp.status() == hyper::StatusCode::FORBIDDEN
                            && let Some(more) = FORBIDDEN.check()
                        {
                            tracing::warn!(
                                "svm api: 403 for {what} from {remote} ({who}){}",
                                suppressed(more)
                            );
                        }
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            };
            tokio::select! {
                () = serve => {}
                // Closed to make room for a newer unverified connection (a certified one drops
                // its sender without a message and keeps going).
                Ok(()) = evicted => {}
            }
            lock(&unverified).open.remove(&slot);
        });
    }
}
