//! Fake database mirror: `GET /db/{file}` serves the bytes the test published under that name
//! (`timestamp.json`, `bundle.tar`), 404 otherwise, and counts what was asked for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;

/// The fake.
#[derive(Debug, Clone, Default)]
pub struct FakeMirror {
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    hits: Arc<Mutex<HashMap<String, u32>>>,
}

async fn file(State(m): State<FakeMirror>, Path(name): Path<String>) -> (StatusCode, Vec<u8>) {
    *m.hits.lock().unwrap().entry(name.clone()).or_default() += 1;
    match m.files.lock().unwrap().get(&name) {
        Some(b) => (StatusCode::OK, b.clone()),
        None => (StatusCode::NOT_FOUND, Vec::new()),
    }
}

impl FakeMirror {
    /// Serve on `listener`.
    pub fn start(
        &self,
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
    ) -> tokio::task::JoinHandle<()> {
        let router = Router::new()
            .route("/db/{name}", get(file))
            .with_state(self.clone());
        super::serve_tls(listener, tls, router)
    }

    /// Serve `bytes` as `name` from now on.
    pub fn put(&self, name: &str, bytes: Vec<u8>) {
        self.files.lock().unwrap().insert(name.to_owned(), bytes);
    }

    /// Times `name` was asked for.
    pub fn hits(&self, name: &str) -> u32 {
        self.hits.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}
