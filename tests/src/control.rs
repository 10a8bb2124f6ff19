//! Harness for the control-plane tests: a `ControlState` on a temporary store with a manual
//! clock, served by the real mTLS API on 127.0.0.1, plus clients holding an admin certificate,
//! a read-only certificate, a certificate without a role and one from a foreign CA.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::AtomicBool;

use dataplane::blocks::DEFAULT_BLOCK_CAPACITY;
use dataplane::shared_blocks::{Command, SharedBlocks};
use dataplane::time::Timestamp;
use hyper::Method;
use svm::api::{ApiConfig, RoleMap};
use svm::control::{Clock, Control, ControlConfig, ControlState, Hooks, ManualClock};
use svm::events::{EventHub, HubConfig};
use svm::https::{HttpsClient, Response};
use svm::inventory::Inventory;
use svm::store::Store;

use crate::fakes::pki::TestCa;

/// 2026-01-01T00:00:00Z.
pub const T0: Timestamp = Timestamp::from_secs_micros(1_767_225_600, 0);

/// A running API.
#[derive(Debug)]
pub struct Harness {
    /// Temporary directory holding the store.
    pub dir: tempfile::TempDir,
    /// The core.
    pub control: Arc<ControlState>,
    /// The clock.
    pub clock: Arc<ManualClock>,
    /// `https://127.0.0.1:<port>`.
    pub base: String,
    /// Client with the admin certificate (CN=svm-admin).
    pub admin: HttpsClient,
    /// Client with a read-only certificate (OU=svm-readers).
    pub reader: HttpsClient,
    /// Client with a management-CA certificate mapped to no role.
    pub nobody: HttpsClient,
    /// Client whose certificate comes from another CA.
    pub foreign: HttpsClient,
    /// Client without a certificate.
    pub anonymous: HttpsClient,
    /// Management CA.
    pub ca: TestCa,
    shutdown: tokio::sync::watch::Sender<bool>,
}

/// The bouncer key the harness accepts.
pub const BOUNCER_KEY: &str = "bouncer-key-0123456789";

fn client(ca: &TestCa, id: Option<svm::tls::Identity>) -> HttpsClient {
    HttpsClient::new(
        svm::tls::client_config(&ca.roots(), id).unwrap(),
        Duration::from_secs(10),
    )
}

/// Open a `ControlState` on `path` (a store file) with `clock`, and its block keeper on a thread
/// of its own, as the daemon runs them: the keeper's clock is `clock`, and its events go to
/// the core's `ingest` (directly, so a command's events are in before its answer). The keeper
/// ends when the core is dropped.
pub fn open_control(path: &std::path::Path, clock: Arc<ManualClock>) -> Arc<ControlState> {
    open_control_with(path, clock, Hooks::default())
}

/// [`open_control`] with the daemon's callbacks `hooks` (an isolation table, ...).
pub fn open_control_with(
    path: &std::path::Path,
    clock: Arc<ManualClock>,
    hooks: Hooks,
) -> Arc<ControlState> {
    // A previous instance's event writer thread lets go of the file shortly after its hub is
    // dropped; wait for that rather than racing it.
    let mut tries = 0;
    let store = loop {
        match Store::open(path) {
            Ok(s) => break Arc::new(s),
            Err(e) if tries < 100 => {
                tries += 1;
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("open store: {e}"),
        }
    };
    let hub = EventHub::start(store.clone(), HubConfig::default(), Vec::new()).unwrap();
    let SharedBlocks {
        mut keeper,
        control: table,
        ..
    } = SharedBlocks::new(0, DEFAULT_BLOCK_CAPACITY);
    let control = Arc::new(
        ControlState::open(
            ControlConfig::default(),
            store,
            hub,
            clock.clone(),
            Arc::new(Inventory::default()),
            None,
            hooks,
            table,
        )
        .unwrap(),
    );
    for (key, entry) in control.stored_blocks().unwrap() {
        keeper.apply(Command::Restore { key, entry }, &mut |_| {});
    }
    let core = Arc::downgrade(&control);
    std::thread::spawn(move || {
        let stop = AtomicBool::new(false);
        keeper.run(
            &stop,
            move || clock.now(),
            Duration::from_millis(20),
            |ev| {
                if let Some(c) = core.upgrade() {
                    c.ingest(&ev);
                }
            },
        )
    });
    control
}

impl Harness {
    /// Start everything.
    pub async fn start() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let control = open_control(&dir.path().join("state.redb"), clock.clone());
        Self::serve(dir, control, clock).await
    }

    /// Serve an existing core.
    pub async fn serve(
        dir: tempfile::TempDir,
        control: Arc<ControlState>,
        clock: Arc<ManualClock>,
    ) -> Harness {
        let ca = TestCa::new("svm management CA");
        let other = TestCa::new("someone else's CA");
        let server = ca.server("svm-api");
        let tls = svm::tls::server_config(
            server.identity(),
            &ca.roots(),
            svm::tls::ClientAuth::OptionalForBouncers,
        )
        .unwrap();
        let cfg = ApiConfig {
            tls,
            roles: RoleMap {
                admin: vec!["CN=svm-admin".into()],
                read_only: vec!["OU=svm-readers".into()],
            },
            bouncer_keys: vec![BOUNCER_KEY.into()],
            handshake_timeout: Duration::from_secs(5),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://{}", listener.local_addr().unwrap());
        let (shutdown, rx) = tokio::sync::watch::channel(false);
        let c: Arc<dyn Control> = control.clone();
        tokio::spawn(svm::api::serve(listener, cfg, c, rx));
        Harness {
            admin: client(&ca, Some(ca.client("svm-admin", None).identity())),
            reader: client(
                &ca,
                Some(ca.client("dashboard", Some("svm-readers")).identity()),
            ),
            nobody: client(
                &ca,
                Some(ca.client("stranger", Some("elsewhere")).identity()),
            ),
            foreign: client(&ca, Some(other.client("svm-admin", None).identity())),
            anonymous: client(&ca, None),
            dir,
            control,
            clock,
            base,
            ca,
            shutdown,
        }
    }

    /// Path of the store file.
    pub fn store_path(&self) -> PathBuf {
        self.dir.path().join("state.redb")
    }

    /// One request; body as JSON text.
    pub async fn call(
        &self,
        who: &HttpsClient,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: &str,
    ) -> Result<Response, svm::https::HttpsError> {
        let mut h = headers.to_vec();
        if !body.is_empty() {
            h.push(("content-type", "application/json".into()));
        }
        who.request(
            method,
            &format!("{}{path}", self.base),
            &h,
            body.as_bytes().to_vec(),
        )
        .await
    }

    /// Write the admin's, a reader's and the CA's PEM files for the CLI; a runner of `svm ARGS`
    /// against the harness as `who` (`admin` or `ro`): (exit code, stdout).
    pub fn cli(
        &self,
    ) -> (
        tempfile::TempDir,
        impl Fn(&str, &[&str]) -> (i32, String) + Clone + use<>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let admin = self.ca.client("svm-admin", None);
        let reader = self.ca.client("ro", Some("svm-readers"));
        for (name, text) in [
            ("admin.crt", &admin.cert_pem),
            ("admin.key", &admin.key_pem),
            ("ro.crt", &reader.cert_pem),
            ("ro.key", &reader.key_pem),
            ("ca.crt", &self.ca.cert_pem()),
        ] {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let d = dir.path().to_owned();
        let base = self.base.clone();
        let run = move |who: &str, args: &[&str]| {
            let out = std::process::Command::new(crate::svm_bin())
                .args(args)
                .args([
                    "--api",
                    &base,
                    "--ca",
                    d.join("ca.crt").to_str().unwrap(),
                    "--cert",
                    d.join(format!("{who}.crt")).to_str().unwrap(),
                    "--key",
                    d.join(format!("{who}.key")).to_str().unwrap(),
                ])
                .output()
                .unwrap();
            (
                out.status.code().unwrap(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        };
        (dir, run)
    }

    /// Stop the server.
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
    }
}

/// The JSON body of a response.
pub fn json(r: &Response) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|_| {
        panic!(
            "not JSON ({}): {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        )
    })
}
