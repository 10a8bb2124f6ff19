//! NSX-T Manager tagging: when a detection involves a protected VM, add the configured tag
//! (default scope `IDS_IPS`, tag `threat=high`) with
//! `POST /api/v1/fabric/virtual-machines?action=add_tags` and body
//! `{"external_id": ..., "tags": [{"scope": ..., "tag": ...}]}`. `add_tags` (NSX 3.1.2+) adds to
//! the VM's tags instead of replacing them, so other products' tags survive. Each VM is tagged
//! once (remembered in the store across restarts), retried with backoff until NSX accepts, and
//! never untagged by the SVM.
//!
//! While a protected VM is isolated it also carries the quarantine tag (default scope
//! `IDS_IPS`, tag `isolated`): added at `isolation_started` and removed at `isolation_ended`
//! (`action=remove_tags`), in the order of the events, each call retried with backoff. Their
//! queue is bounded ([`QUARANTINE_QUEUE`]): a change that finds it full is dropped, counted
//! (`svm_queue_dropped_total{queue="nsx_quarantine"}`, an `engine_overload` event) and marks
//! the queue for a resync, as the block keeper's event queue does
//! (`svm/src/daemon/keeper_events.rs`): the sender then discards the changes still queued
//! (all older than what it reads next) and gives every protected VM the tag state of the
//! isolation table ([`QuarantineState`], the desired state), so nothing a drop lost stays
//! wrong in NSX.
//!
//! Authentication is HTTP basic, or a session: `POST /api/session/create` with the form fields
//! `j_username`/`j_password` returns a `JSESSIONID` cookie and an `X-XSRF-TOKEN` header, both
//! sent on later calls; a 401/403 drops the session and the next attempt logs in again.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use hyper::{Method, StatusCode};
use tokio::sync::{Mutex, mpsc};

use crate::events::{EventHub, Overload, Record, Severity};
use crate::https::{HttpsClient, HttpsError};
use crate::inventory::ProtectedVm;
use crate::secret::Secret;
use crate::store::Store;

/// How to authenticate to NSX Manager.
#[derive(Clone, Debug)]
pub enum NsxAuth {
    /// `Authorization: Basic` on every call.
    Basic {
        /// User (`admin`, or `user@domain` for remote users).
        user: String,
        /// Password (never printed by `Debug`).
        password: Secret,
    },
    /// Session cookie + XSRF token.
    Session {
        /// User.
        user: String,
        /// Password (never printed by `Debug`).
        password: Secret,
    },
}

/// NSX settings.
#[derive(Clone, Debug)]
pub struct NsxConfig {
    /// `https://nsx-manager[:port]`.
    pub base_url: String,
    /// Authentication.
    pub auth: NsxAuth,
    /// Tag scope (default `IDS_IPS`).
    pub scope: String,
    /// Tag (default `threat=high`).
    pub tag: String,
    /// Quarantine tag scope while a VM is isolated (default `IDS_IPS`).
    pub isolation_scope: String,
    /// Quarantine tag while a VM is isolated (default `isolated`).
    pub isolation_tag: String,
    /// First retry delay.
    pub backoff_min: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
}

impl NsxConfig {
    /// Defaults: tag `IDS_IPS` / `threat=high`, backoff 1 s doubling to 5 min.
    pub fn new(base_url: impl Into<String>, auth: NsxAuth) -> Self {
        NsxConfig {
            base_url: base_url.into(),
            auth,
            scope: "IDS_IPS".into(),
            tag: "threat=high".into(),
            isolation_scope: "IDS_IPS".into(),
            isolation_tag: "isolated".into(),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
        }
    }
}

/// NSX errors.
#[derive(Debug, thiserror::Error)]
pub enum NsxError {
    /// Transport.
    #[error("nsx: {0}")]
    Https(#[from] HttpsError),
    /// NSX answered with an error status.
    #[error("nsx: {call} answered {status}")]
    Status {
        /// Which call.
        call: &'static str,
        /// Status.
        status: StatusCode,
    },
    /// The session answer lacked the cookie.
    #[error("nsx: session create returned no JSESSIONID cookie")]
    NoSession,
}

#[derive(Clone, Debug)]
struct Session {
    cookie: String,
    xsrf: Option<String>,
}

/// The client.
#[derive(Debug)]
pub struct NsxClient {
    cfg: NsxConfig,
    http: HttpsClient,
    session: Mutex<Option<Session>>,
}

fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl NsxClient {
    /// A client.
    pub fn new(cfg: NsxConfig, http: HttpsClient) -> Self {
        NsxClient {
            cfg,
            http,
            session: Mutex::new(None),
        }
    }

    /// The settings.
    pub fn config(&self) -> &NsxConfig {
        &self.cfg
    }

    async fn login(&self, user: &str, password: &Secret) -> Result<Session, NsxError> {
        let body = format!(
            "j_username={}&j_password={}",
            form_encode(user),
            form_encode(password.expose())
        );
        let resp = self
            .http
            .request(
                Method::POST,
                &format!("{}/api/session/create", self.cfg.base_url),
                &[("content-type", "application/x-www-form-urlencoded".into())],
                body.into_bytes(),
            )
            .await?;
        if !resp.status.is_success() {
            return Err(NsxError::Status {
                call: "session/create",
                status: resp.status,
            });
        }
        let cookie = resp
            .headers
            .get_all(hyper::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .find(|c| c.trim_start().starts_with("JSESSIONID="))
            .map(|c| c.trim().to_owned())
            .ok_or(NsxError::NoSession)?;
        let xsrf = resp
            .headers
            .get("x-xsrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Session { cookie, xsrf })
    }

    /// Add the configured tag to one VM (one attempt).
    pub async fn add_tags(&self, external_id: &str) -> Result<(), NsxError> {
        self.tags(external_id, "add_tags", &self.cfg.scope, &self.cfg.tag)
            .await
    }

    /// Add (`add`) or remove the quarantine tag of one VM (one attempt).
    pub async fn quarantine(&self, external_id: &str, add: bool) -> Result<(), NsxError> {
        let action = if add { "add_tags" } else { "remove_tags" };
        self.tags(
            external_id,
            action,
            &self.cfg.isolation_scope,
            &self.cfg.isolation_tag,
        )
        .await
    }

    /// One `action` (`add_tags`, `remove_tags`) call with one tag.
    async fn tags(
        &self,
        external_id: &str,
        action: &'static str,
        scope: &str,
        tag: &str,
    ) -> Result<(), NsxError> {
        let mut headers = vec![("content-type", "application/json".to_owned())];
        match &self.cfg.auth {
            NsxAuth::Basic { user, password } => {
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{user}:{}", password.expose()));
                headers.push(("authorization", format!("Basic {token}")));
            }
            NsxAuth::Session { user, password } => {
                let mut guard = self.session.lock().await;
                let session = match guard.as_ref() {
                    Some(s) => s.clone(),
                    None => {
                        let s = self.login(user, password).await?;
                        *guard = Some(s.clone());
                        s
                    }
                };
                headers.push(("cookie", session.cookie));
                if let Some(x) = session.xsrf {
                    headers.push(("x-xsrf-token", x));
                }
            }
        }
        let body = serde_json::json!({
            "external_id": external_id,
            "tags": [{"scope": scope, "tag": tag}],
        });
        let resp = self
            .http
            .request(
                Method::POST,
                &format!(
                    "{}/api/v1/fabric/virtual-machines?action={action}",
                    self.cfg.base_url
                ),
                &headers,
                body.to_string().into_bytes(),
            )
            .await?;
        if resp.status.is_success() {
            return Ok(());
        }
        if matches!(
            resp.status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            *self.session.lock().await = None;
        }
        Err(NsxError::Status {
            call: action,
            status: resp.status,
        })
    }
}

/// A request to tag a VM because of an event.
#[derive(Clone, Debug)]
pub struct TagRequest {
    /// The VM.
    pub vm: ProtectedVm,
    /// Id of the event that involved it.
    pub cause: String,
}

/// Depth of the tagging queue. Each protected VM is tagged once, so the queue only needs room
/// for a burst of events naming many VMs (or one VM many times) while NSX Manager is slow; a
/// flood beyond it is dropped, counted and reported (the VM is requested again by its next event).
pub const TAG_QUEUE: usize = 4096;

/// Depth of the quarantine tag queue. Isolation changes feed it (a start and an end per
/// isolation, and automatic isolations follow detections, so traffic can feed it too) while
/// NSX Manager may be slow or away; beyond it a change is dropped, counted and reported, and
/// the sender resyncs every VM's tag from the isolation table (see the module doc). An entry
/// is an external id and a flag (about 60 bytes).
pub const QUARANTINE_QUEUE: usize = 1024;

/// `queue` label of the quarantine tag queue in `svm_queue_dropped_total` and in its
/// `engine_overload` events.
pub const QUARANTINE_QUEUE_NAME: &str = "nsx_quarantine";

/// The quarantine tags NSX should show now: every protected VM's NSX external id and whether
/// it is isolated (read from the isolation keeper's table, the one owner of that state).
pub type QuarantineState = Arc<dyn Fn() -> Vec<(String, bool)> + Send + Sync>;

/// Depths of the tagger's two queues.
#[derive(Clone, Copy, Debug)]
pub struct TagQueues {
    /// Tag requests ([`TAG_QUEUE`]).
    pub tags: usize,
    /// Quarantine tag changes ([`QUARANTINE_QUEUE`]).
    pub quarantine: usize,
}

impl Default for TagQueues {
    fn default() -> Self {
        TagQueues {
            tags: TAG_QUEUE,
            quarantine: QUARANTINE_QUEUE,
        }
    }
}

/// Handle to the tagging task.
#[derive(Clone, Debug)]
pub struct Tagger {
    tx: mpsc::Sender<TagRequest>,
    // Quarantine tag changes (external id, add), applied in order by one task.
    quarantine: mpsc::Sender<(String, bool)>,
    // Set when a quarantine change was dropped: the sender resyncs from `desired`.
    resync: Arc<AtomicBool>,
    desired: Arc<Desired>,
    overload: Arc<Overload>,
    quarantine_overload: Arc<Overload>,
    hub: EventHub,
    clock: Arc<dyn crate::control::Clock>,
}

/// The tagger's [`QuarantineState`], once the control state set it.
#[derive(Default)]
struct Desired(OnceLock<QuarantineState>);

impl std::fmt::Debug for Desired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Desired(set)"
        } else {
            "Desired(unset)"
        })
    }
}

impl Tagger {
    /// Ask for a VM to be tagged (never blocks; duplicates are ignored by the task). When the
    /// queue is full the request is dropped and counted, and an `engine_overload` event says so
    /// (at most one per [`crate::events::OVERLOAD_INTERVAL_SECS`]).
    pub fn request(&self, req: TagRequest) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(req) {
            self.overload.drop_one();
            if let Some(rec) = self.overload.report("nsx_tags", self.clock.now()) {
                self.hub.emit(rec);
            }
        }
    }

    /// Add (`add`) or remove the quarantine tag of an isolated VM: queued in order (never
    /// blocks). When the queue is full the change is dropped, counted, reported with an
    /// `engine_overload` event (rate-limited) and the sender resyncs every VM's tag from the
    /// isolation table ([`Tagger::follow_isolations`]).
    pub fn quarantine(&self, vm: &ProtectedVm, add: bool) {
        if let Err(mpsc::error::TrySendError::Full(_)) =
            self.quarantine.try_send((vm.nsx_external_id.clone(), add))
        {
            self.quarantine_overload.drop_one();
            self.resync.store(true, Ordering::Release);
            if let Some(rec) = self
                .quarantine_overload
                .report(QUARANTINE_QUEUE_NAME, self.clock.now())
            {
                self.hub.emit(rec);
            }
        }
    }

    /// Where the sender reads the desired quarantine tags after a dropped change (set once; the
    /// control state sets it from the isolation table). Without it a dropped change stays lost
    /// (counted and reported all the same).
    pub fn follow_isolations(&self, desired: QuarantineState) {
        let _ = self.desired.0.set(desired);
    }

    /// The tagging queue's drops.
    pub fn overload(&self) -> &Arc<Overload> {
        &self.overload
    }

    /// The quarantine tag queue's drops.
    pub fn quarantine_overload(&self) -> &Arc<Overload> {
        &self.quarantine_overload
    }

    /// Start the task on the current tokio runtime.
    pub fn spawn(
        client: Arc<NsxClient>,
        store: Arc<Store>,
        hub: EventHub,
        clock: Arc<dyn crate::control::Clock>,
    ) -> Tagger {
        Self::spawn_with_queues(client, store, hub, clock, TagQueues::default())
    }

    /// [`Tagger::spawn`] with queues of the given depths.
    pub fn spawn_with_queues(
        client: Arc<NsxClient>,
        store: Arc<Store>,
        hub: EventHub,
        clock: Arc<dyn crate::control::Clock>,
        depths: TagQueues,
    ) -> Tagger {
        let (tx, mut rx) = mpsc::channel::<TagRequest>(depths.tags.max(1));
        let (qtx, qrx) = mpsc::channel::<(String, bool)>(depths.quarantine.max(1));
        let resync = Arc::new(AtomicBool::new(false));
        let desired: Arc<Desired> = Arc::default();
        tokio::spawn(send_quarantine(
            client.clone(),
            qrx,
            Arc::clone(&resync),
            Arc::clone(&desired),
        ));
        let tagger = Tagger {
            tx,
            quarantine: qtx,
            resync,
            desired,
            overload: Arc::default(),
            quarantine_overload: Arc::default(),
            hub: hub.clone(),
            clock: clock.clone(),
        };
        tokio::spawn(async move {
            // Requested at least once in this process; together with the store this makes each
            // VM tagged once.
            let mut seen: HashSet<String> = HashSet::new();
            while let Some(req) = rx.recv().await {
                let ext = req.vm.nsx_external_id.clone();
                if !seen.insert(ext.clone()) || store.is_tagged(&ext).unwrap_or(false) {
                    continue;
                }
                let client = client.clone();
                let store = store.clone();
                let hub = hub.clone();
                let clock = clock.clone();
                tokio::spawn(async move {
                    let mut backoff = client.cfg.backoff_min;
                    let mut attempts: u32 = 0;
                    loop {
                        attempts = attempts.saturating_add(1);
                        match client.add_tags(&ext).await {
                            Ok(()) => break,
                            Err(_) => {
                                tokio::time::sleep(backoff).await;
                                backoff = (backoff * 2).min(client.cfg.backoff_max);
                            }
                        }
                    }
                    let now = clock.now();
                    let _ = store.mark_tagged(&ext, now.micros());
                    let mut f = serde_json::Map::new();
                    f.insert(
                        "vm".into(),
                        serde_json::json!({
                            "id": req.vm.id,
                            "name": req.vm.name,
                            "nsx_external_id": ext,
                        }),
                    );
                    f.insert(
                        "tag".into(),
                        serde_json::json!({"scope": client.cfg.scope, "tag": client.cfg.tag}),
                    );
                    f.insert("cause_event_id".into(), req.cause.into());
                    f.insert("attempts".into(), attempts.into());
                    hub.emit(Record::new(now, "vm_tagged", Severity::Warning, f));
                });
            }
        });
        tagger
    }
}

/// The quarantine tag sender: one change after the other, so a removal never overtakes its
/// addition, each retried with backoff until NSX accepts it. After a dropped change (`resync`)
/// the changes still queued are discarded, since each is older than the table read next, and
/// every protected VM gets the tag state `desired` reads; a change queued after that read is
/// applied in its order as any (the last change of a VM is its state in the table).
async fn send_quarantine(
    client: Arc<NsxClient>,
    mut rx: mpsc::Receiver<(String, bool)>,
    resync: Arc<AtomicBool>,
    desired: Arc<Desired>,
) {
    while let Some(change) = rx.recv().await {
        let wanted = match desired.0.get() {
            Some(d) if resync.swap(false, Ordering::AcqRel) => {
                let mut discarded = 1usize;
                while rx.try_recv().is_ok() {
                    discarded = discarded.saturating_add(1);
                }
                let all = d();
                tracing::warn!(
                    "svm: nsx quarantine tag changes were dropped (queue full); {discarded} \
                     queued ones discarded, resyncing the tags of {} protected VMs",
                    all.len()
                );
                all
            }
            _ => vec![change],
        };
        for (ext, add) in wanted {
            let mut backoff = client.cfg.backoff_min;
            while let Err(e) = client.quarantine(&ext, add).await {
                tracing::warn!("svm: nsx quarantine tag of {ext}: {e}; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(client.cfg.backoff_max);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::ManualClock;
    use crate::events::{ENGINE_OVERLOAD, HubConfig};
    use dataplane::time::Timestamp;

    fn vm(i: usize) -> ProtectedVm {
        ProtectedVm {
            id: format!("vm-{i}"),
            name: format!("web-{i}"),
            nsx_external_id: format!("5012c3a4-0000-4000-8000-{i:012}"),
            interfaces: vec![],
        }
    }

    /// The tagging queue is bounded: requests beyond it are dropped, counted and reported once
    /// (rate-limited), and the caller never waits.
    #[test]
    fn a_full_tag_queue_drops_counts_and_raises_engine_overload() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("s.redb")).unwrap());
        let hub = EventHub::start(store.clone(), HubConfig::default(), Vec::new()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _enter = rt.enter();
        let http = HttpsClient::new(
            crate::tls::client_config(&[], None).unwrap(),
            Duration::from_secs(1),
        );
        let client = Arc::new(NsxClient::new(
            NsxConfig::new(
                "https://127.0.0.1:9",
                NsxAuth::Basic {
                    user: "u".into(),
                    password: "p".into(),
                },
            ),
            http,
        ));
        let clock = Arc::new(ManualClock::new(Timestamp::from_secs_micros(1000, 0)));
        let depth = 4;
        // The current-thread runtime does not run the task until this thread awaits: the
        // queue fills.
        let t = Tagger::spawn_with_queues(
            client,
            store.clone(),
            hub.clone(),
            clock,
            TagQueues {
                tags: depth,
                quarantine: depth,
            },
        );
        for i in 0..depth + 3 {
            t.request(TagRequest {
                vm: vm(i),
                cause: format!("ev-{i}"),
            });
        }
        assert_eq!(t.overload().dropped.load(Ordering::Relaxed), 3);
        hub.flush();
        let spooled = store.spool_peek(100).unwrap();
        let overloads: Vec<serde_json::Value> = spooled
            .iter()
            .filter_map(|s| serde_json::from_slice::<serde_json::Value>(&s.data).ok())
            .filter(|v| v["event_type"] == ENGINE_OVERLOAD)
            .collect();
        assert_eq!(
            overloads.len(),
            1,
            "one report within the interval: {overloads:?}"
        );
        assert_eq!(overloads[0]["queue"], "nsx_tags");
        assert_eq!(overloads[0]["dropped"], 1, "reported at the first drop");
        assert_eq!(overloads[0]["dropped_total"], 1);
    }
}
