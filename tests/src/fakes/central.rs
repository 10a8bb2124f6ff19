//! Fake central server: `POST /api/v1/events` takes a JSON array of events and records how often
//! each `id` arrived.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use tokio::net::TcpListener;

/// What the fake saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Times each event id arrived.
    pub ids: HashMap<String, u32>,
    /// Batches received.
    pub batches: u32,
    /// Events in arrival order.
    pub events: Vec<serde_json::Value>,
}

/// The fake.
#[derive(Debug, Clone, Default)]
pub struct FakeCentral {
    /// Recorded calls.
    pub seen: Arc<Mutex<Seen>>,
}

async fn events(State(f): State<FakeCentral>, body: Bytes) -> StatusCode {
    let Ok(serde_json::Value::Array(batch)) = serde_json::from_slice(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut seen = f.seen.lock().unwrap();
    seen.batches += 1;
    for ev in batch {
        let id = ev["id"].as_str().unwrap_or("").to_owned();
        *seen.ids.entry(id).or_default() += 1;
        seen.events.push(ev);
    }
    StatusCode::OK
}

impl FakeCentral {
    /// Serve on `listener`.
    pub fn start(
        &self,
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
    ) -> tokio::task::JoinHandle<()> {
        let router = Router::new()
            .route("/api/v1/events", post(events))
            .with_state(self.clone());
        super::serve_tls(listener, tls, router)
    }

    /// Distinct ids seen.
    pub fn distinct(&self) -> usize {
        self.seen.lock().unwrap().ids.len()
    }
}
