//! The management API: HTTPS only (rustls, TLS 1.2/1.3), mutual TLS against the management CA,
//! roles from the client certificate, an OpenAPI document generated from the handlers.
//!
//! | route | role |
//! |---|---|
//! | `GET /api/v1/policy`, `GET /api/v1/blocked-hosts`, `GET /api/v1/status`, `GET /metrics`, `GET /api/v1/openapi.json` | read-only |
//! | `PUT /api/v1/policy`, `POST /api/v1/blocked-hosts`, `DELETE /api/v1/blocked-hosts/{vlan}/{address}` | admin |
//! | `GET /api/v1/db` | read-only |
//! | `GET /api/v1/events`, `GET /api/v1/events/stream` | read-only |
//! | `POST /api/v1/db`, `POST /api/v1/db/update`, `POST /api/v1/db/rollback` | admin |
//! | `GET /api/v1/isolations`, `GET /api/v1/isolations/{vm}` | read-only |
//! | `POST /api/v1/isolations`, `DELETE /api/v1/isolations/{vm}` | admin |
//! | `GET /v1/decisions/stream` | `X-Api-Key` of a bouncer |
//! | `GET /healthz` | none |

pub mod db;
pub mod error;
pub mod events;
pub mod handlers;
pub mod isolations;
pub mod metrics;
pub mod server;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use utoipa::OpenApi;

pub use error::ApiError;
pub use handlers::AppState;
pub use server::{ApiConfig, RoleMap, serve};

/// Role of a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// May read and watch.
    ReadOnly,
    /// May change policy and blocks.
    Admin,
}

/// Who is calling, from the TLS handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Role, if the certificate maps to one.
    pub role: Option<Role>,
    /// Certificate subject names (`CN=...`, `OU=...`) for logs.
    pub subject: Vec<String>,
}

/// Largest request body: a policy with the maximum number of exclusions fits.
pub const MAX_BODY_BYTES: usize = 16 << 20;

/// The OpenAPI document.
#[derive(OpenApi, Debug)]
#[openapi(
    info(
        title = "svm management API",
        description = "Policy, blocked hosts, status and metrics of one SVM."
    ),
    paths(
        handlers::get_policy,
        handlers::put_policy,
        handlers::list_blocks,
        handlers::post_block,
        handlers::delete_block,
        handlers::status,
        handlers::healthz,
        handlers::metrics,
        handlers::decisions_stream,
        handlers::openapi,
        db::get_db,
        db::post_db,
        db::post_update,
        db::post_rollback,
        events::recent,
        events::stream,
        isolations::list,
        isolations::get_one,
        isolations::post,
        isolations::delete,
    ),
    components(schemas(
        crate::control::PolicyState,
        crate::control::BlockView,
        crate::control::Status,
        crate::control::Decision,
        crate::control::DecisionStream,
        error::ErrorBody,
        error::Problem,
        handlers::BlockBody,
        handlers::VlanParam,
        handlers::Unblocked,
        db::DbView,
        db::DbSetView,
        isolations::IsolationView,
        isolations::IsolationBody,
    ))
)]
pub struct ApiDoc;

/// The OpenAPI document as JSON.
pub fn openapi_json() -> String {
    ApiDoc::openapi().to_json().unwrap_or_default()
}

/// The router (without the TLS layer; [`server::serve`] adds the [`Peer`] to every request).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/api/v1/policy",
            get(handlers::get_policy).put(handlers::put_policy),
        )
        .route(
            "/api/v1/blocked-hosts",
            get(handlers::list_blocks).post(handlers::post_block),
        )
        .route(
            "/api/v1/blocked-hosts/{vlan}/{address}",
            delete(handlers::delete_block),
        )
        .route("/api/v1/status", get(handlers::status))
        .route("/api/v1/db", get(db::get_db).post(db::post_db))
        .route("/api/v1/db/update", post(db::post_update))
        .route("/api/v1/db/rollback", post(db::post_rollback))
        .route(
            "/api/v1/isolations",
            get(isolations::list).post(isolations::post),
        )
        .route(
            "/api/v1/isolations/{vm}",
            get(isolations::get_one).delete(isolations::delete),
        )
        .route("/api/v1/events", get(events::recent))
        .route("/api/v1/events/stream", get(events::stream))
        .route("/api/v1/openapi.json", get(handlers::openapi))
        .route("/healthz", get(handlers::healthz))
        .route("/metrics", get(handlers::metrics))
        .route("/v1/decisions/stream", get(handlers::decisions_stream))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
