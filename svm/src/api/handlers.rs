//! Handlers: check the caller's role, parse the request into a typed command, call the core,
//! shape the answer. No decisions are made here.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use vlan::VlanScope;

use super::error::{ApiError, ErrorBody};
use super::{Peer, Role};
use crate::control::{
    BlockFilter, BlockRequest, BlockView, Control, DecisionStream, PolicyState, Status,
};

/// Shared handler state.
#[derive(Clone)]
pub struct AppState {
    /// The core.
    pub control: Arc<dyn Control>,
    /// API keys of bouncers allowed on the decisions stream.
    pub bouncer_keys: Arc<Vec<String>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("bouncer_keys", &self.bouncer_keys.len())
            .finish_non_exhaustive()
    }
}

pub(super) fn require(peer: &Peer, need: Role) -> Result<(), ApiError> {
    match peer.role {
        None => Err(ApiError::Forbidden("client certificate maps to no role")),
        Some(have) if have >= need => Ok(()),
        Some(_) => Err(ApiError::Forbidden("this operation needs the admin role")),
    }
}

/// Read a request body of at most [`super::MAX_BODY_BYTES`] within
/// [`super::server::BODY_TIMEOUT`]; called after the role check, so a client without the role
/// never has its body read.
pub(super) async fn read_body(body: axum::body::Body) -> Result<Bytes, ApiError> {
    let limit = super::MAX_BODY_BYTES;
    match tokio::time::timeout(
        super::server::BODY_TIMEOUT,
        axum::body::to_bytes(body, limit),
    )
    .await
    {
        Err(_) => Err(ApiError::RequestTimeout(super::server::BODY_TIMEOUT)),
        Ok(Ok(b)) => Ok(b),
        // The limit, or the client went away (no answer reaches it then).
        Ok(Err(_)) => Err(ApiError::PayloadTooLarge { limit }),
    }
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Parse a `PUT /api/v1/policy` body into a JSON tree. A body that is not UTF-8 is a 400; a
/// syntax error is a 422 with the parser's message at the empty path, as `policy check` reports
/// it. Shared with the fuzz target.
pub fn parse_policy_body(body: &[u8]) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::BadRequest("policy body is not UTF-8".into()))?;
    match serde_json::from_str::<Value>(text) {
        Ok(v) => Ok(v),
        Err(_) => match policy::Policy::from_json(text) {
            Err(errors) => Err(ApiError::InvalidPolicy(errors)),
            // serde_json refused but the policy reader accepted: cannot happen with the same
            // parser, treat as a syntax error anyway.
            Ok(_) => Err(ApiError::BadRequest("policy body is not JSON".into())),
        },
    }
}

/// Parse `If-Match`: `"3"`, `W/"3"`, `3` or `*` (any version: `None`). Anything else can match
/// no version, so it is reported as a version mismatch by the caller.
pub fn parse_if_match(headers: &HeaderMap) -> Result<Option<u64>, UnmatchableIfMatch> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let s = v.to_str().map_err(|_| UnmatchableIfMatch)?.trim();
    if s == "*" {
        return Ok(None);
    }
    s.trim_start_matches("W/")
        .trim_matches('"')
        .parse::<u64>()
        .map(Some)
        .map_err(|_| UnmatchableIfMatch)
}

/// An `If-Match` value that names no version we could have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnmatchableIfMatch;

fn with_etag(state: PolicyState) -> Response {
    let etag = HeaderValue::from_str(&state.etag).ok();
    let mut resp = Json(state).into_response();
    if let Some(e) = etag {
        resp.headers_mut().insert(header::ETAG, e);
    }
    resp
}

/// The running policy.
#[utoipa::path(get, path = "/api/v1/policy", tag = "policy",
    responses(
        (status = 200, description = "Running policy; ETag is its version", body = PolicyState),
        (status = 403, description = "No role", body = ErrorBody),
    ))]
pub async fn get_policy(
    State(app): State<AppState>,
    Extension(peer): Extension<Peer>,
) -> Result<Response, ApiError> {
    require(&peer, Role::ReadOnly)?;
    let c = app.control.clone();
    Ok(with_etag(blocking(move || c.policy()).await?))
}

/// Replace the running policy. The document is validated whole: on any problem nothing
/// changes and the answer lists every problem with its JSON path.
#[utoipa::path(put, path = "/api/v1/policy", tag = "policy",
    request_body(content = Object, description = "Policy document (docs/policy.md)"),
    params(("If-Match" = Option<String>, Header, description = "ETag of the version to replace")),
    responses(
        (status = 200, description = "Applied; ETag is the new version", body = PolicyState),
        (status = 403, description = "Not admin", body = ErrorBody),
        (status = 408, description = "Body not received in time", body = ErrorBody),
        (status = 412, description = "If-Match does not name the running version", body = ErrorBody),
        (status = 413, description = "Body over 16 MiB", body = ErrorBody),
        (status = 422, description = "Invalid policy, nothing changed", body = ErrorBody),
    ))]
pub async fn put_policy(
    State(app): State<AppState>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    require(&peer, Role::Admin)?;
    let body = read_body(body).await?;
    let c = app.control.clone();
    let if_match = match parse_if_match(&headers) {
        Ok(v) => v,
        Err(UnmatchableIfMatch) => {
            let current = blocking(move || c.policy().version).await?;
            return Err(ApiError::PreconditionFailed { current });
        }
    };
    let doc = match parse_policy_body(&body) {
        Ok(doc) => doc,
        Err(ApiError::InvalidPolicy(errors)) => {
            // A syntax error is refused like an invalid policy: reported as policy_rejected.
            let (c, reported) = (c.clone(), errors.clone());
            blocking(move || c.reject_policy(&reported)).await?;
            return Err(ApiError::InvalidPolicy(errors));
        }
        Err(e) => return Err(e),
    };
    let state = blocking(move || c.apply_policy(doc, if_match)).await??;
    Ok(with_etag(state))
}

/// Filters of the block list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BlockQuery {
    /// VLAN scope (`untagged`, `100`, `100.200`).
    pub vlan: Option<String>,
    /// Address or prefix (`10.0.0.5`, `10.0.0.0/24`).
    pub address: Option<String>,
    /// Text the reason contains.
    pub reason: Option<String>,
}

fn parse_scope(s: &str) -> Result<VlanScope, ApiError> {
    s.parse()
        .map_err(|_| ApiError::BadRequest(format!("invalid VLAN scope {s:?}")))
}

fn parse_net(s: &str) -> Result<IpNet, ApiError> {
    if let Ok(addr) = s.parse::<IpAddr>() {
        return Ok(IpNet::from(addr));
    }
    s.parse::<IpNet>()
        .map(|n| n.trunc())
        .map_err(|_| ApiError::BadRequest(format!("invalid address or prefix {s:?}")))
}

/// Blocked hosts.
#[utoipa::path(get, path = "/api/v1/blocked-hosts", tag = "blocked-hosts", params(BlockQuery),
    responses(
        (status = 200, description = "Active blocks", body = Vec<BlockView>),
        (status = 400, description = "Bad filter", body = ErrorBody),
    ))]
pub async fn list_blocks(
    State(app): State<AppState>,
    Extension(peer): Extension<Peer>,
    Query(q): Query<BlockQuery>,
) -> Result<Json<Vec<BlockView>>, ApiError> {
    require(&peer, Role::ReadOnly)?;
    let filter = BlockFilter {
        scope: q.vlan.as_deref().map(parse_scope).transpose()?,
        net: q.address.as_deref().map(parse_net).transpose()?,
        reason: q.reason,
    };
    let c = app.control.clone();
    Ok(Json(blocking(move || c.blocks(&filter)).await?))
}

/// A VLAN given as a number or as text.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum VlanParam {
    /// `100`.
    Id(u16),
    /// `untagged`, `100`, `100.200`.
    Text(String),
}

/// A manual block.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockBody {
    /// Address to block.
    pub address: String,
    /// VLAN scope (number or text, `untagged` for untagged traffic).
    pub vlan: VlanParam,
    /// Duration in minutes (1..32768).
    pub minutes: u64,
    /// Note recorded as the reason.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Block a host manually.
#[utoipa::path(post, path = "/api/v1/blocked-hosts", tag = "blocked-hosts", request_body = BlockBody,
    responses(
        (status = 201, description = "Blocked", body = BlockView),
        (status = 400, description = "Bad request", body = ErrorBody),
        (status = 403, description = "Not admin", body = ErrorBody),
        (status = 409, description = "Already blocked", body = ErrorBody),
    ))]
pub async fn post_block(
    State(app): State<AppState>,
    Extension(peer): Extension<Peer>,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    require(&peer, Role::Admin)?;
    let body = read_body(body).await?;
    let b: BlockBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("block body: {e}")))?;
    let scope = match &b.vlan {
        VlanParam::Id(id) => parse_scope(&id.to_string())?,
        VlanParam::Text(t) => parse_scope(t)?,
    };
    let addr: IpAddr = b
        .address
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("invalid address {:?}", b.address)))?;
    let req = BlockRequest {
        scope,
        addr,
        duration_secs: b.minutes.saturating_mul(60),
        reason: b.reason.unwrap_or_else(|| "manual".into()),
    };
    let c = app.control.clone();
    let view = blocking(move || c.block(req)).await??;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// Result of an unblock.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Unblocked {
    /// Blocks lifted.
    pub removed: usize,
}

/// Lift blocks: one address, or every address in a prefix (URL-encode the slash:
/// `10.0.0.0%2F24`). `vlan` may be `any`.
#[utoipa::path(delete, path = "/api/v1/blocked-hosts/{vlan}/{address}", tag = "blocked-hosts",
    params(
        ("vlan" = String, Path, description = "VLAN scope or `any`"),
        ("address" = String, Path, description = "Address or prefix"),
    ),
    responses(
        (status = 200, description = "Lifted", body = Unblocked),
        (status = 403, description = "Not admin", body = ErrorBody),
        (status = 404, description = "Nothing matched", body = ErrorBody),
    ))]
pub async fn delete_block(
    State(app): State<AppState>,
    Extension(peer): Extension<Peer>,
    Path((vlan, address)): Path<(String, String)>,
) -> Result<Json<Unblocked>, ApiError> {
    require(&peer, Role::Admin)?;
    let scope = if vlan.eq_ignore_ascii_case("any") {
        None
    } else {
        Some(parse_scope(&vlan)?)
    };
    let net = parse_net(&address)?;
    let c = app.control.clone();
    let removed = blocking(move || c.unblock(scope, net)).await??;
    Ok(Json(Unblocked { removed }))
}

/// Daemon status.
#[utoipa::path(get, path = "/api/v1/status", tag = "status",
    responses((status = 200, description = "Status", body = Status)))]
pub async fn status(
    State(app): State<AppState>,
    Extension(peer): Extension<Peer>,
) -> Result<Json<Status>, ApiError> {
    require(&peer, Role::ReadOnly)?;
    let c = app.control.clone();
    Ok(Json(blocking(move || c.status()).await?))
}

/// Liveness: `ok` whenever the API answers (no role needed), or `degraded: REASON` while the
/// appliance works without a part (the state store failing on a full disk: it keeps
/// forwarding and keeps what it could not write in memory).
#[utoipa::path(get, path = "/healthz", tag = "status",
    responses((status = 200, description = "Alive: `ok`, or `degraded: REASON`", body = String, content_type = "text/plain")))]
pub async fn healthz(State(app): State<AppState>) -> String {
    match app.control.degraded() {
        None => "ok\n".to_owned(),
        Some(why) => format!("degraded: {why}\n"),
    }
}

/// Prometheus metrics (text format). No label carries an address.
#[utoipa::path(get, path = "/metrics", tag = "status",
    responses((status = 200, description = "Prometheus text", body = String, content_type = "text/plain; version=0.0.4")))]
pub async fn metrics(
    State(app): State<AppState>,
    Extension(peer): Extension<Peer>,
) -> Result<Response, ApiError> {
    require(&peer, Role::ReadOnly)?;
    let c = app.control.clone();
    let text = blocking(move || super::metrics::render(&c.metrics())).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Decision stream query.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// `true`: every active decision; `false`: changes since this bouncer's last call.
    #[serde(default)]
    pub startup: bool,
}

/// Block list as CrowdSec LAPI decisions, for firewall bouncers. Authenticated by `X-Api-Key`.
#[utoipa::path(get, path = "/v1/decisions/stream", tag = "bouncers", params(StreamQuery,
        ("X-Api-Key" = String, Header, description = "Bouncer API key")),
    responses(
        (status = 200, description = "New and deleted decisions", body = DecisionStream),
        (status = 403, description = "Bad or missing API key", body = ErrorBody),
    ))]
pub async fn decisions_stream(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> Result<Json<DecisionStream>, ApiError> {
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| app.bouncer_keys.iter().any(|b| constant_eq(b, k)))
        .ok_or(ApiError::Forbidden("bad or missing X-Api-Key"))?
        .to_owned();
    let c = app.control.clone();
    Ok(Json(blocking(move || c.decisions(&key, q.startup)).await?))
}

fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The OpenAPI document of this API.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "status",
    responses((status = 200, description = "OpenAPI 3.1 document", body = Object)))]
pub async fn openapi(Extension(peer): Extension<Peer>) -> Result<Response, ApiError> {
    require(&peer, Role::ReadOnly)?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        super::openapi_json(),
    )
        .into_response())
}
