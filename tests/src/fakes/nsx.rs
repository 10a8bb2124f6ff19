//! Fake NSX-T Manager: `POST /api/session/create` (form `j_username`/`j_password` -> JSESSIONID
//! cookie + X-XSRF-TOKEN header) and `POST /api/v1/fabric/virtual-machines?action=add_tags`
//! and `action=remove_tags` (basic auth, or cookie + XSRF token), recording every call and the
//! tags each VM holds after the calls it accepted. It can fail the next N calls with 503 to
//! exercise retries (or hold NSX away with a large N).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use tokio::net::TcpListener;

/// One add_tags call.
#[derive(Debug, Clone)]
pub struct TagCall {
    /// The body.
    pub body: serde_json::Value,
    /// Status answered.
    pub status: u16,
    /// `add_tags` or `remove_tags`.
    pub action: String,
}

/// Recorded state.
#[derive(Debug, Default)]
pub struct Recorded {
    /// add_tags calls.
    pub calls: Vec<TagCall>,
    /// Sessions created.
    pub sessions: u32,
    /// add_tags calls still to fail with 503.
    pub fail_next: u32,
    /// The tags (`scope/tag`) each VM (by external id) holds after the accepted calls.
    pub tags: HashMap<String, BTreeSet<String>>,
}

/// The fake.
#[derive(Debug, Clone)]
pub struct FakeNsx {
    /// Recorded calls.
    pub rec: Arc<Mutex<Recorded>>,
    user: String,
    password: String,
}

const SESSION: &str = "JSESSIONID=fake-session-1";
const XSRF: &str = "xsrf-token-1";

/// Decode `application/x-www-form-urlencoded`.
fn form_decode(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    let dec = |s: &str| {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
                    i += 2;
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    text.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (dec(k), dec(v)))
        .collect()
}

async fn create_session(State(f): State<FakeNsx>, body: Bytes) -> Response {
    let form = form_decode(&body);
    if form.get("j_username") != Some(&f.user) || form.get("j_password") != Some(&f.password) {
        return StatusCode::FORBIDDEN.into_response();
    }
    f.rec.lock().unwrap().sessions += 1;
    (
        [
            (
                header::SET_COOKIE,
                format!("{SESSION}; Path=/; Secure; HttpOnly"),
            ),
            (
                header::HeaderName::from_static("x-xsrf-token"),
                XSRF.to_owned(),
            ),
        ],
        "",
    )
        .into_response()
}

async fn vms(
    State(f): State<FakeNsx>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let action = match q.get("action").map(String::as_str) {
        Some(a @ ("add_tags" | "remove_tags")) => a.to_owned(),
        _ => return StatusCode::BAD_REQUEST,
    };
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", f.user, f.password))
    );
    let hv = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
    let authed = hv("authorization") == basic
        || (hv("cookie").contains(SESSION) && hv("x-xsrf-token") == XSRF);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let mut rec = f.rec.lock().unwrap();
    let status = if !authed {
        StatusCode::FORBIDDEN
    } else if rec.fail_next > 0 {
        rec.fail_next -= 1;
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    if status == StatusCode::OK {
        let vm = body["external_id"].as_str().unwrap_or_default().to_owned();
        let held = rec.tags.entry(vm).or_default();
        for t in body["tags"].as_array().into_iter().flatten() {
            let tag = format!(
                "{}/{}",
                t["scope"].as_str().unwrap_or_default(),
                t["tag"].as_str().unwrap_or_default()
            );
            if action == "add_tags" {
                held.insert(tag);
            } else {
                held.remove(&tag);
            }
        }
    }
    rec.calls.push(TagCall {
        body,
        status: status.as_u16(),
        action,
    });
    status
}

impl FakeNsx {
    /// A fake accepting `user`/`password`.
    pub fn new(user: &str, password: &str) -> Self {
        FakeNsx {
            rec: Arc::default(),
            user: user.into(),
            password: password.into(),
        }
    }

    /// Serve on `listener`.
    pub fn start(
        &self,
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
    ) -> tokio::task::JoinHandle<()> {
        let router = Router::new()
            .route("/api/session/create", post(create_session))
            .route("/api/v1/fabric/virtual-machines", post(vms))
            .with_state(self.clone());
        super::serve_tls(listener, tls, router)
    }

    /// Successful add_tags calls.
    pub fn successes(&self) -> Vec<serde_json::Value> {
        self.rec
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| c.status == 200 && c.action == "add_tags")
            .map(|c| c.body.clone())
            .collect()
    }

    /// Whether the VM with NSX external id `vm` holds the tag `scope/tag` now.
    pub fn holds(&self, vm: &str, tag: &str) -> bool {
        self.rec
            .lock()
            .unwrap()
            .tags
            .get(vm)
            .is_some_and(|t| t.contains(tag))
    }

    /// Successful calls of every action, in order: (action, body).
    pub fn all_successes(&self) -> Vec<(String, serde_json::Value)> {
        self.rec
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| c.status == 200)
            .map(|c| (c.action.clone(), c.body.clone()))
            .collect()
    }
}
