//! Fakes for the control-plane tests: real HTTPS servers (rustls on 127.0.0.1) implementing the
//! documented endpoints of the central server and NSX Manager and recording every call, a
//! database mirror; and a test PKI.

pub mod central;
pub mod mirror;
pub mod nsx;
pub mod pki;

use std::sync::Arc;

use axum::Router;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// Serve `router` over TLS on `listener` until the task is aborted.
pub fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
) -> tokio::task::JoinHandle<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let router = router.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(move |req| router.clone().oneshot(req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    })
}

/// A server TLS config with `server` as identity; client certificates, when `client_ca` is
/// given, must chain to it.
pub fn server_tls(
    server: &pki::Issued,
    client_ca: Option<&pki::TestCa>,
) -> Arc<rustls::ServerConfig> {
    match client_ca {
        Some(ca) => svm::tls::server_config(
            server.identity(),
            &ca.roots(),
            svm::tls::ClientAuth::Required,
        )
        .unwrap(),
        None => {
            let id = server.identity();
            let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(id.chain, id.key)
            .unwrap();
            Arc::new(cfg)
        }
    }
}
