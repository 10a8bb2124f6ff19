//! Live events for watchers (`svm events tail`): `GET /api/v1/events` answers the most recent
//! events as a JSON array; `GET /api/v1/events/stream` is a server-sent event stream (one
//! `data:` line of EVE JSON per event) that starts with up to `backlog` recent events. Read-only
//! role. Filters: `type` (event types, comma-separated), `severity` (the least: `info`,
//! `warning`, `error`, `critical`), `vlan` (`untagged`, `100`, `100.200`: the event's VLAN tags
//! exactly; events without tags are `untagged`).
//!
//! # Limits
//! At most [`MAX_STREAMS`] streams are open at once (then 503). A stream holds no events of its
//! own: it reads the hub's broadcast ([`crate::events::live`]) as fast as its socket takes them,
//! and when it falls [`crate::events::live::BUFFER`] events behind it loses the oldest and sends
//! `event: lost` with how many. A comment line every [`KEEPALIVE`] finds a vanished client.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Extension, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::handlers::{AppState, require};
use super::{ApiError, Peer, Role};
use crate::events::live::BACKLOG;
use crate::events::{Record, Severity};

/// Streams open at once at most.
pub const MAX_STREAMS: usize = 32;
/// Time between two keep-alive comments of a quiet stream.
pub const KEEPALIVE: Duration = Duration::from_secs(15);
/// Events `GET /api/v1/events` answers without `limit`.
pub const DEFAULT_LIMIT: usize = 20;

static STREAMS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_STREAMS);

/// Query of both routes.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// Event types, comma-separated (`alert,block_added`).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The least severity: `info`, `warning`, `error`, `critical` (or 1..4).
    pub severity: Option<String>,
    /// VLAN scope: `untagged`, `100`, `100.200`.
    pub vlan: Option<String>,
    /// `/api/v1/events`: how many recent events (1..=1000, default 20).
    pub limit: Option<usize>,
    /// `/api/v1/events/stream`: recent events sent first (0..=1000, default 0).
    pub backlog: Option<usize>,
}

/// A parsed filter.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Filter {
    types: Vec<String>,
    severity: Option<Severity>,
    vlan: Option<Vec<u64>>,
}

/// A severity by name or level.
pub fn parse_severity(s: &str) -> Option<Severity> {
    match s.to_ascii_lowercase().as_str() {
        "info" | "1" => Some(Severity::Info),
        "warning" | "2" => Some(Severity::Warning),
        "error" | "3" => Some(Severity::Error),
        "critical" | "4" => Some(Severity::Critical),
        _ => None,
    }
}

impl Filter {
    /// From the query; a bad value is a 400 that says what is accepted.
    pub fn parse(q: &EventQuery) -> Result<Filter, ApiError> {
        let types = q
            .kind
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        let severity = match &q.severity {
            None => None,
            Some(s) => Some(parse_severity(s).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "severity {s:?}: expected info, warning, error or critical"
                ))
            })?),
        };
        let vlan = match q.vlan.as_deref() {
            None => None,
            Some("untagged" | "novlan") => Some(Vec::new()),
            Some(v) => {
                let tags: Option<Vec<u64>> = v
                    .split('.')
                    .map(|t| t.parse::<u64>().ok().filter(|n| (1..=4094).contains(n)))
                    .collect();
                match tags {
                    Some(t) if (1..=vlan::MAX_TAGS).contains(&t.len()) => Some(t),
                    _ => {
                        return Err(ApiError::BadRequest(format!(
                            "vlan {v:?}: expected untagged, a tag 1..=4094, outer.inner or \
                             outer.middle.inner"
                        )));
                    }
                }
            }
        };
        Ok(Filter {
            types,
            severity,
            vlan,
        })
    }

    /// Whether an event passes.
    pub fn matches(&self, rec: &Record) -> bool {
        if !self.types.is_empty() && !self.types.iter().any(|t| t == rec.event_type()) {
            return false;
        }
        if self.severity.is_some_and(|min| rec.severity() < min) {
            return false;
        }
        if let Some(want) = &self.vlan {
            let have: Vec<u64> = rec
                .value
                .get("vlan")
                .and_then(|v| v.as_array())
                .map(|a| a.iter().filter_map(serde_json::Value::as_u64).collect())
                .unwrap_or_default();
            if &have != want {
                return false;
            }
        }
        true
    }
}

fn live(state: &AppState) -> Result<Arc<crate::events::live::Live>, ApiError> {
    state.control.live_events().ok_or(ApiError::NotFound(
        "this daemon keeps no live events".into(),
    ))
}

/// The most recent events that pass the filters, oldest first.
#[utoipa::path(get, path = "/api/v1/events", params(EventQuery),
    responses((status = 200, description = "Recent events (EVE JSON objects), oldest first"),
              (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody)))]
pub async fn recent(
    State(state): State<AppState>,
    Extension(peer): Extension<Peer>,
    Query(q): Query<EventQuery>,
) -> Result<Response, ApiError> {
    require(&peer, Role::ReadOnly)?;
    let filter = Filter::parse(&q)?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=BACKLOG).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit {limit}: expected 1..={BACKLOG}"
        )));
    }
    let (backlog, _) = live(&state)?.subscribe();
    let picked: Vec<&serde_json::Map<String, serde_json::Value>> = latest(&backlog, &filter, limit)
        .into_iter()
        .map(|r| &r.value)
        .collect();
    Ok(axum::Json(picked).into_response())
}

/// The last `n` events of `backlog` that pass `filter`, oldest first.
fn latest<'a>(backlog: &'a [Arc<Record>], filter: &Filter, n: usize) -> Vec<&'a Arc<Record>> {
    let mut picked: Vec<&Arc<Record>> = backlog
        .iter()
        .rev()
        .filter(|r| filter.matches(r))
        .take(n)
        .collect();
    picked.reverse();
    picked
}

fn sse_data(rec: &Record) -> Vec<u8> {
    let mut out = b"data: ".to_vec();
    out.extend(rec.to_bytes());
    out.extend_from_slice(b"\n\n");
    out
}

/// Server-sent events: `backlog` recent events, then every new one that passes the filters.
#[utoipa::path(get, path = "/api/v1/events/stream", params(EventQuery),
    responses((status = 200, description = "text/event-stream: `data: <EVE JSON>` per event; `event: lost` with `data: {\"lost\": N}` when the client fell behind"),
              (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
              (status = 503, body = super::error::ErrorBody)))]
pub async fn stream(
    State(state): State<AppState>,
    Extension(peer): Extension<Peer>,
    Query(q): Query<EventQuery>,
) -> Result<Response, ApiError> {
    require(&peer, Role::ReadOnly)?;
    let filter = Filter::parse(&q)?;
    let want = q.backlog.unwrap_or(0);
    if want > BACKLOG {
        return Err(ApiError::BadRequest(format!(
            "backlog {want}: expected 0..={BACKLOG}"
        )));
    }
    let live = live(&state)?;
    let permit = STREAMS.try_acquire().map_err(|_| {
        ApiError::Unavailable("too many event streams are open; try again later".into())
    })?;
    let (backlog, rx) = live.subscribe();
    let first: Vec<u8> = {
        // A comment first, so the client sees the stream open at once.
        let mut out = b": svm events\n\n".to_vec();
        for r in latest(&backlog, &filter, want) {
            out.extend(sse_data(r));
        }
        out
    };
    let body = futures_util::stream::unfold(
        (Some(first), rx, filter, permit),
        |(first, mut rx, filter, permit)| async move {
            if let Some(f) = first {
                return Some((
                    Ok::<_, std::convert::Infallible>(f),
                    (None, rx, filter, permit),
                ));
            }
            loop {
                let chunk = match tokio::time::timeout(KEEPALIVE, rx.recv()).await {
                    Err(_) => b": keepalive\n\n".to_vec(),
                    Ok(Ok(rec)) if filter.matches(&rec) => sse_data(&rec),
                    Ok(Ok(_)) => continue,
                    Ok(Err(RecvError::Lagged(n))) => {
                        format!("event: lost\ndata: {{\"lost\":{n}}}\n\n").into_bytes()
                    }
                    // The hub is gone (the daemon stops): end the stream.
                    Ok(Err(RecvError::Closed)) => return None,
                };
                return Some((Ok(chunk), (None, rx, filter, permit)));
            }
        },
    );
    let mut resp = axum::body::Body::from_stream(body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rec(kind: &str, sev: Severity, vlan: Option<serde_json::Value>) -> Record {
        let mut f = serde_json::Map::new();
        if let Some(v) = vlan {
            f.insert("vlan".into(), v);
        }
        Record::new(dataplane::time::Timestamp::default(), kind, sev, f)
    }

    fn q(kind: Option<&str>, severity: Option<&str>, vlan: Option<&str>) -> EventQuery {
        EventQuery {
            kind: kind.map(str::to_owned),
            severity: severity.map(str::to_owned),
            vlan: vlan.map(str::to_owned),
            ..EventQuery::default()
        }
    }

    proptest::proptest! {
        /// Any query values are a filter or a 400, never a panic.
        #[test]
        fn any_query_parses_or_is_refused(
            kind in proptest::option::of(".{0,40}"),
            severity in proptest::option::of(".{0,12}"),
            vlan in proptest::option::of("[0-9.a-z]{0,12}"),
        ) {
            let _ = Filter::parse(&q(kind.as_deref(), severity.as_deref(), vlan.as_deref()));
        }
    }

    #[test]
    fn filters_by_type_least_severity_and_exact_vlan() {
        let alert100 = rec("alert", Severity::Error, Some(serde_json::json!([100])));
        let qinq = rec(
            "alert",
            Severity::Warning,
            Some(serde_json::json!([100, 200])),
        );
        let applied = rec("policy_applied", Severity::Info, None);
        let f = |k, s, v| Filter::parse(&q(k, s, v)).unwrap();
        let all = [&alert100, &qinq, &applied];
        let hits = |f: Filter| all.iter().filter(|r| f.matches(r)).count();
        assert_eq!(hits(f(None, None, None)), 3);
        assert_eq!(hits(f(Some("alert"), None, None)), 2);
        assert_eq!(hits(f(Some("block_added, policy_applied"), None, None)), 1);
        assert_eq!(hits(f(None, Some("warning"), None)), 2);
        assert_eq!(hits(f(None, Some("3"), None)), 1);
        assert_eq!(hits(f(None, None, Some("100"))), 1);
        assert_eq!(hits(f(None, None, Some("100.200"))), 1);
        assert_eq!(hits(f(None, None, Some("untagged"))), 1);
        // Three tags, the deepest stack the decoder keeps: a valid filter, no event here.
        assert_eq!(hits(f(None, None, Some("100.200.300"))), 0);
        for bad in [
            q(None, Some("loud"), None),
            q(None, None, Some("4095")),
            q(None, None, Some("1.2.3.4")),
            q(None, None, Some("x")),
        ] {
            assert!(Filter::parse(&bad).is_err(), "{bad:?}");
        }
    }
}
