//! `/api/v1/db`: the signed application databases of the daemon (docs/databases.md). The
//! handlers check the role and call the updater ([`DbControl`], implemented by
//! [`crate::daemon::dbsync::DbSync`]) off the async threads; they decide nothing.
//!
//! | route | role | what |
//! |---|---|---|
//! | `GET /api/v1/db` | read-only | sets installed, the one in force, last and next check |
//! | `POST /api/v1/db/update` | admin | check the mirror now; install a newer bundle |
//! | `POST /api/v1/db/rollback` | admin | switch back to the previous set |
//! | `POST /api/v1/db` | admin | install the bundle in the body (streamed to disk, capped) |

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Extension, State};
use serde::Serialize;

use super::error::{ApiError, ErrorBody};
use super::handlers::{AppState, blocking, require};
use super::{Peer, Role};

/// One installed database set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DbSetView {
    /// Its directory under `sets/` (`vN-HASH`).
    pub name: String,
    /// The database version.
    pub version: u64,
    /// When its targets metadata expires (RFC 3339).
    pub expires: String,
    /// When its timestamp expires: past it the database is stale (RFC 3339).
    pub timestamp_expires: String,
    /// Whether its timestamp has expired (it stays in force).
    pub stale: bool,
    /// Targets in the set.
    pub targets: usize,
    /// Rules its check loaded.
    pub rules_loaded: usize,
    /// Rules its check skipped (unsupported keywords, duplicates).
    pub rules_skipped: usize,
    /// Address list entries by category.
    #[schema(value_type = Object)]
    pub lists: BTreeMap<String, usize>,
    /// Its attack blocker definitions: `count` and `window_secs` by threshold detection, laid
    /// under the admin's policy while the set is in force (docs/databases.md).
    #[schema(value_type = Object)]
    pub attack_blocker: crate::db::attack::Definitions,
}

/// The databases as the daemon holds them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DbView {
    /// The database state directory.
    pub dir: String,
    /// The mirror's base URL, if one is configured.
    pub mirror: Option<String>,
    /// The set `current` names.
    pub current: Option<DbSetView>,
    /// The set kept for rollback.
    pub previous: Option<DbSetView>,
    /// The set whose rules the workers run (normally `current`).
    pub in_force: Option<String>,
    /// The newest version ever installed: an update must be newer.
    pub trusted_version: u64,
    /// The last check of the mirror (RFC 3339).
    pub last_check: Option<String>,
    /// What it found: `installed`, `up_to_date`, `refused_before`, `refused`, `failed`.
    pub last_result: Option<String>,
    /// The last failure (check, update or rollback), until an operation succeeds.
    pub last_error: Option<String>,
    /// When the mirror is checked next (RFC 3339).
    pub next_check: Option<String>,
    /// A version refused (not installed, or rolled back): not tried again until the mirror
    /// offers a newer one, also after a restart.
    pub refused_version: Option<u64>,
    /// The set swapped in last, while its health is watched after the swap.
    pub probation: Option<DbProbationView>,
    /// Frames lost across the last swap (kernel and transmit drops from the last worker status
    /// before it to 2 s after it); `None` before a swap with running workers.
    pub last_swap_frames_lost: Option<u64>,
}

/// A set in probation: rolled back by itself if a health check fails before `until`.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DbProbationView {
    /// Its version.
    pub version: u64,
    /// When its probation ends (RFC 3339).
    pub until: String,
    /// Alerts a second before its swap (the alert rate bound's base).
    pub alerts_per_sec_before: f64,
}

/// Why a database operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum DbOpError {
    /// No mirror is configured (`db.mirror`).
    #[error("no mirror is configured (db.mirror)")]
    NoMirror,
    /// The mirror could not be reached or answered wrongly; nothing changed.
    #[error("mirror: {0}")]
    Mirror(String),
    /// The bundle was refused (verification, checks, self-test, or the engine); nothing
    /// changed, or the previous set is back in force.
    #[error("refused: {0}")]
    Refused(String),
    /// The operation does not apply now (nothing to roll back to, the state directory in use).
    #[error("{0}")]
    Conflict(String),
}

impl From<DbOpError> for ApiError {
    fn from(e: DbOpError) -> Self {
        match e {
            DbOpError::NoMirror | DbOpError::Refused(_) | DbOpError::Conflict(_) => {
                ApiError::Conflict(e.to_string())
            }
            DbOpError::Mirror(m) => ApiError::Unavailable(format!("mirror: {m}")),
        }
    }
}

/// What the API needs from the database updater.
pub trait DbControl: Send + Sync + 'static {
    /// The state.
    fn view(&self) -> DbView;
    /// Check the mirror now and install a newer bundle.
    fn check_now(&self) -> Result<DbView, DbOpError>;
    /// Switch back to the previous set.
    fn rollback(&self) -> Result<DbView, DbOpError>;
    /// Where an uploaded bundle is written, its cap in bytes and the time it may take.
    fn upload_limits(&self) -> (std::path::PathBuf, u64, std::time::Duration);
    /// Install the bundle at `path` (an upload).
    fn install(&self, path: &std::path::Path) -> Result<DbView, DbOpError>;
}

fn db_of(app: &AppState) -> Result<std::sync::Arc<dyn DbControl>, ApiError> {
    app.control
        .db()
        .ok_or_else(|| ApiError::NotFound("no db section is configured".into()))
}

/// The installed databases, the one in force, and the mirror checks.
#[utoipa::path(get, path = "/api/v1/db", tag = "db",
    responses(
        (status = 200, description = "Database state", body = DbView),
        (status = 403, description = "No role", body = ErrorBody),
        (status = 404, description = "No db section configured", body = ErrorBody),
    ))]
pub async fn get_db(
    State(app): State<AppState>,
    Extension(peer): Extension<Peer>,
) -> Result<Json<DbView>, ApiError> {
    require(&peer, Role::ReadOnly)?;
    let db = db_of(&app)?;
    Ok(Json(blocking(move || db.view()).await?))
}

/// Check the mirror now: a newer bundle is downloaded, verified, checked (rules, lists,
/// self-test), swapped in, and rolled back if the engine refuses its rules. Answers when done.
#[utoipa::path(post, path = "/api/v1/db/update", tag = "db",
    responses(
        (status = 200, description = "Checked: installed or up to date", body = DbView),
        (status = 403, description = "Not admin", body = ErrorBody),
        (status = 404, description = "No db section configured", body = ErrorBody),
        (status = 409, description = "Refused (the reason is in the message), or no mirror", body = ErrorBody),
        (status = 503, description = "The mirror could not be reached", body = ErrorBody),
    ))]
pub async fn post_update(
    State(app): State<AppState>,
    Extension(peer): Extension<Peer>,
) -> Result<Json<DbView>, ApiError> {
    require(&peer, Role::Admin)?;
    let db = db_of(&app)?;
    Ok(Json(blocking(move || db.check_now()).await??))
}

/// Stream `body` into a new file under `dir`, at most `cap` bytes within `timeout`; the file.
async fn receive(
    body: axum::body::Body,
    dir: &std::path::Path,
    cap: u64,
    timeout: std::time::Duration,
) -> Result<std::path::PathBuf, ApiError> {
    use http_body_util::BodyExt;
    use std::io::Write;
    let path = dir.join(format!("upload-{}.tar", crate::events::record::new_id()));
    let io = |e: std::io::Error| ApiError::Internal(format!("{}: {e}", path.display()));
    let write = async {
        // Chunks are written as they come (to the page cache: microseconds each); the one
        // fsync runs off the async threads.
        let mut f = std::fs::File::create(&path).map_err(io)?;
        let mut body = body;
        let mut got = 0u64;
        while let Some(frame) = body.frame().await {
            // The client went away.
            let frame = frame.map_err(|e| ApiError::BadRequest(format!("request body: {e}")))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            got = got.saturating_add(data.len() as u64);
            if got > cap {
                return Err(ApiError::PayloadTooLarge {
                    limit: usize::try_from(cap).unwrap_or(usize::MAX),
                });
            }
            f.write_all(&data).map_err(io)?;
        }
        blocking(move || f.sync_all()).await?.map_err(io)
    };
    let r = match tokio::time::timeout(timeout, write).await {
        Err(_) => Err(ApiError::RequestTimeout(timeout)),
        Ok(r) => r,
    };
    match r {
        Ok(()) => Ok(path),
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            Err(e)
        }
    }
}

/// Install the bundle in the request body (a plain tar, as `svm db build` writes it): verified,
/// checked and swapped in as a mirror's. The body is streamed to the database directory, up to
/// the `db.max_bundle_bytes` cap within `db.timeout_secs`, after the role check.
#[utoipa::path(post, path = "/api/v1/db", tag = "db",
    request_body(content = Vec<u8>, content_type = "application/x-tar", description = "The bundle"),
    responses(
        (status = 200, description = "Installed and in force", body = DbView),
        (status = 403, description = "Not admin", body = ErrorBody),
        (status = 404, description = "No db section configured", body = ErrorBody),
        (status = 408, description = "The body did not arrive in time", body = ErrorBody),
        (status = 409, description = "Refused (the reason is in the message)", body = ErrorBody),
        (status = 413, description = "Larger than db.max_bundle_bytes", body = ErrorBody),
    ))]
pub async fn post_db(
    State(app): State<AppState>,
    Extension(peer): Extension<Peer>,
    body: axum::body::Body,
) -> Result<Json<DbView>, ApiError> {
    require(&peer, Role::Admin)?;
    let db = db_of(&app)?;
    let (dir, cap, timeout) = db.upload_limits();
    let p = receive(body, &dir, cap, timeout).await?;
    let r = blocking(move || {
        let r = db.install(&p);
        let _ = std::fs::remove_file(&p);
        r
    })
    .await;
    Ok(Json(r??))
}

/// Switch back to the previous set (its rules swapped in); the newer set stays installable only
/// by another rollback.
#[utoipa::path(post, path = "/api/v1/db/rollback", tag = "db",
    responses(
        (status = 200, description = "Rolled back", body = DbView),
        (status = 403, description = "Not admin", body = ErrorBody),
        (status = 404, description = "No db section configured", body = ErrorBody),
        (status = 409, description = "Nothing to roll back to, or refused", body = ErrorBody),
    ))]
pub async fn post_rollback(
    State(app): State<AppState>,
    Extension(peer): Extension<Peer>,
) -> Result<Json<DbView>, ApiError> {
    require(&peer, Role::Admin)?;
    let db = db_of(&app)?;
    Ok(Json(blocking(move || db.rollback()).await??))
}
