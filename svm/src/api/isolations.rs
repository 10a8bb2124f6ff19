//! `/api/v1/isolations`: network isolation of the inventory's protected VMs (docs/isolation.md).
//! The handlers check the role and call the isolation table's control side
//! ([`IsolationControl`]) off the async threads; the keeper decides.
//!
//! | route | role | what |
//! |---|---|---|
//! | `GET /api/v1/isolations` | read-only | the isolations in force |
//! | `GET /api/v1/isolations/{vm}` | read-only | one VM's isolation (404 when it is not isolated) |
//! | `POST /api/v1/isolations` | admin | isolate a VM (`vm`, `minutes`, `exclusions`, `note`) |
//! | `DELETE /api/v1/isolations/{vm}` | admin | release a VM |

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dataplane::isolation::{IsolationControl, IsolationError, IsolationInfo, IsolationOrigin};
use policy::isolation::IsolationMinutes;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ErrorBody};
use super::handlers::{AppState, blocking, read_body, require};
use super::{Peer, Role};

/// One isolation in force.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IsolationView {
    /// The protected VM's inventory id.
    pub vm: String,
    /// `manual` or `automatic`.
    pub origin: String,
    /// The administrator's note (manual).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The detecting engine (automatic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// The detection (automatic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// When it started (RFC 3339).
    pub started: String,
    /// When it ends (RFC 3339).
    pub expires: String,
    /// Whole seconds left.
    pub seconds_left: u64,
    /// What stays open, in the policy's form (`isolation.automatic.exclusions`).
    #[schema(value_type = Vec<Object>)]
    pub exclusions: Vec<serde_json::Value>,
    /// Frames of the VM dropped so far.
    pub dropped: u64,
    /// TCP flows of the VM reset so far.
    pub flows_reset: u64,
}

impl IsolationView {
    /// The view of `i` at `now`.
    pub fn of(i: &IsolationInfo, now: dataplane::time::Timestamp) -> IsolationView {
        let (note, engine, signature) = match &i.origin {
            IsolationOrigin::Manual { note } => (Some(note.clone()), None, None),
            IsolationOrigin::Automatic {
                engine, signature, ..
            } => (
                None,
                Some(engine.name().to_owned()),
                Some(signature.to_string()),
            ),
        };
        IsolationView {
            vm: i.vm.id.to_string(),
            origin: i.origin.name().to_owned(),
            note,
            engine,
            signature,
            started: crate::events::syslog::rfc3339(i.started),
            expires: crate::events::syslog::rfc3339(i.expires),
            seconds_left: i.expires.since(now) / dataplane::time::Timestamp::SECOND,
            exclusions: i
                .exclusions
                .iter()
                .map(policy::isolation::exclusion_to_value)
                .collect(),
            dropped: i.dropped,
            flows_reset: i.flows_reset,
        }
    }
}

/// Body of `POST /api/v1/isolations`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IsolationBody {
    /// The protected VM's inventory id.
    pub vm: String,
    /// How long, 1 to 43200 minutes (default 480).
    #[serde(default)]
    pub minutes: Option<u32>,
    /// What stays open, in the form of `isolation.automatic.exclusions` (`[]`: nothing; absent:
    /// the DNS and DHCP profiles). The policy's exclusions do not apply to a manual isolation.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub exclusions: Option<serde_json::Value>,
    /// A note for the events.
    #[serde(default)]
    pub note: Option<String>,
}

impl From<IsolationError> for ApiError {
    fn from(e: IsolationError) -> Self {
        match e {
            IsolationError::UnknownVm(_) | IsolationError::NotIsolated(_) => {
                ApiError::NotFound(e.to_string())
            }
            IsolationError::AlreadyIsolated(_) => ApiError::Conflict(e.to_string()),
            IsolationError::Duration(_) => ApiError::BadRequest(e.to_string()),
            IsolationError::Gone | IsolationError::Busy => ApiError::Unavailable(e.to_string()),
        }
    }
}

fn table(app: &AppState) -> Result<IsolationControl, ApiError> {
    app.control
        .isolation()
        .ok_or_else(|| ApiError::NotFound("no inventory is configured".into()))
}

/// The isolations in force, by VM id.
#[utoipa::path(get, path = "/api/v1/isolations", tag = "isolations",
    responses(
        (status = 200, description = "Isolations in force", body = Vec<IsolationView>),
        (status = 403, description = "No role", body = ErrorBody),
        (status = 404, description = "No inventory configured", body = ErrorBody),
    ))]
pub async fn list(
    State(app): State<AppState>,
    Extension(peer): Extension<Peer>,
) -> Result<Json<Vec<IsolationView>>, ApiError> {
    require(&peer, Role::ReadOnly)?;
    let t = table(&app)?;
    let now = crate::daemon::now();
    Ok(Json(
        t.list(now)
            .iter()
            .map(|i| IsolationView::of(i, now))
            .collect(),
    ))
}

/// One VM's isolation.
#[utoipa::path(get, path = "/api/v1/isolations/{vm}", tag = "isolations",
    params(("vm" = String, Path, description = "Inventory id of the VM")),
    responses(
        (status = 200, description = "Isolated", body = IsolationView),
        (status = 403, description = "No role", body = ErrorBody),
        (status = 404, description = "Not isolated, no such VM, or no inventory", body = ErrorBody),
    ))]
pub async fn get_one(
    State(app): State<AppState>,
    Extension(peer): Extension<Peer>,
    Path(vm): Path<String>,
) -> Result<Json<IsolationView>, ApiError> {
    require(&peer, Role::ReadOnly)?;
    let t = table(&app)?;
    if t.protected().get(&vm).is_none() {
        return Err(IsolationError::UnknownVm(vm).into());
    }
    let now = crate::daemon::now();
    match t.get(&vm, now) {
        Some(i) => Ok(Json(IsolationView::of(&i, now))),
        None => Err(IsolationError::NotIsolated(vm).into()),
    }
}

/// Isolate a VM: its TCP flows are reset and, once this answers, no worker forwards another
/// frame of it that the exclusions do not let through, and the isolation is in the state store.
#[utoipa::path(post, path = "/api/v1/isolations", tag = "isolations", request_body = IsolationBody,
    responses(
        (status = 201, description = "Isolated", body = IsolationView),
        (status = 400, description = "Bad request (body, duration)", body = ErrorBody),
        (status = 403, description = "Not admin", body = ErrorBody),
        (status = 404, description = "No such VM in the inventory, or no inventory", body = ErrorBody),
        (status = 409, description = "Isolated already", body = ErrorBody),
        (status = 422, description = "Invalid exclusions (each problem with its path)", body = ErrorBody),
        (status = 503, description = "Isolated but not stored (the state store is failing), or shutting down", body = ErrorBody),
    ))]
pub async fn post(
    State(app): State<AppState>,
    Extension(peer): Extension<Peer>,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    require(&peer, Role::Admin)?;
    let t = table(&app)?;
    let body = read_body(body).await?;
    let b: IsolationBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("isolation body: {e}")))?;
    let minutes = b.minutes.unwrap_or(IsolationMinutes::DEFAULT);
    let exclusions = match &b.exclusions {
        None => policy::isolation::default_exclusions(),
        Some(v) => policy::isolation::exclusions_from_value(v, "exclusions")
            .map_err(ApiError::InvalidPolicy)?,
    };
    let note = b
        .note
        .unwrap_or_else(|| format!("API ({})", peer_name(&peer)));
    let now = crate::daemon::now();
    let store = app.control.state_store();
    let info = blocking(move || {
        let info = t.enable(
            &b.vm,
            now,
            u64::from(minutes).saturating_mul(60),
            exclusions,
            note,
        )?;
        store_in_force(&t, store.as_ref(), "isolated")?;
        Ok::<_, ApiError>(info)
    })
    .await??;
    Ok((StatusCode::CREATED, Json(IsolationView::of(&info, now))).into_response())
}

/// Store the isolations in force before the answer, so that what the API answered survives a
/// kill -9 right after it (the keeper stores them too, at its next step, which may come later).
/// A store that fails leaves the change in force, and the answer says it was not stored.
fn store_in_force(
    t: &IsolationControl,
    store: Option<&std::sync::Arc<crate::store::Store>>,
    done: &str,
) -> Result<(), ApiError> {
    let Some(store) = store else { return Ok(()) };
    store
        .put_isolations_with(|| {
            t.list(crate::daemon::now())
                .iter()
                .map(crate::isolation::stored)
                .collect()
        })
        .map_err(|e| {
            tracing::warn!("svm api: isolations not stored: {e}");
            ApiError::Unavailable(format!(
                "{done}, but the state store is failing (see /healthz): a restart would lose it"
            ))
        })
}

/// Release a VM (stored before the answer).
#[utoipa::path(delete, path = "/api/v1/isolations/{vm}", tag = "isolations",
    params(("vm" = String, Path, description = "Inventory id of the VM")),
    responses(
        (status = 200, description = "Released: the isolation as it ended", body = IsolationView),
        (status = 403, description = "Not admin", body = ErrorBody),
        (status = 404, description = "Not isolated, no such VM, or no inventory", body = ErrorBody),
        (status = 503, description = "Released but not stored (the state store is failing), or shutting down", body = ErrorBody),
    ))]
pub async fn delete(
    State(app): State<AppState>,
    Extension(peer): Extension<Peer>,
    Path(vm): Path<String>,
) -> Result<Json<IsolationView>, ApiError> {
    require(&peer, Role::Admin)?;
    let t = table(&app)?;
    let now = crate::daemon::now();
    let store = app.control.state_store();
    let info = blocking(move || {
        let info = t.disable(&vm, now)?;
        store_in_force(&t, store.as_ref(), "released")?;
        Ok::<_, ApiError>(info)
    })
    .await??;
    Ok(Json(IsolationView::of(&info, now)))
}

fn peer_name(peer: &Peer) -> String {
    peer.subject.join(",")
}
