//! The updater against a real HTTPS mirror on 127.0.0.1 (rustls, a CA made for the test),
//! real bundles from `svm db keygen`/`build`, a real state directory and a real rule set swapped
//! into a [`RulesCell`] as the workers read it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::Bytes;
use policy::{CompiledPolicy, Policy};
use serde_json::{Map, Value};

use super::*;
use crate::daemon::config::RulesSettings;
use crate::daemon::rules::LiveRules;
use crate::daemon::workers::PolicyCell;
use crate::db::cmd::{self, BuildArgs, KeygenArgs};

type Files = Arc<Mutex<HashMap<String, Vec<u8>>>>;
/// Events the updater emitted: type and fields.
type Seen = Arc<Mutex<Vec<(String, Map<String, Value>)>>>;

/// An event sink into `seen`.
fn sink(seen: &Seen) -> Emit {
    let ev = seen.clone();
    Box::new(move |kind, _, fields| {
        ev.lock().unwrap().push((kind.to_owned(), fields));
    })
}

/// A mirror: files by path, and how often each was asked for.
struct TestMirror {
    files: Files,
    hits: Arc<Mutex<HashMap<String, u32>>>,
    url: String,
    ca: PathBuf,
    _rt: tokio::runtime::Runtime,
}

impl TestMirror {
    fn start(dir: &Path) -> TestMirror {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = p.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut sp = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        sp.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = sp.signed_by(&key, &ca_cert, &ca_key).unwrap();
        let ca = dir.join("mirror-ca.pem");
        std::fs::write(&ca, ca_cert.pem()).unwrap();
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_l.set_nonblocking(true).unwrap();
        let url = format!("https://{}/db", std_l.local_addr().unwrap());
        let files: Files = Arc::default();
        let hits: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let (f, h) = (files.clone(), hits.clone());
        rt.spawn(async move {
            let l = tokio::net::TcpListener::from_std(std_l).unwrap();
            loop {
                let Ok((tcp, _)) = l.accept().await else {
                    continue;
                };
                let (acceptor, f, h) = (acceptor.clone(), f.clone(), h.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(move |req: hyper::Request<_>| {
                        let path = req.uri().path().trim_start_matches("/db/").to_owned();
                        *h.lock().unwrap().entry(path.clone()).or_default() += 1;
                        let body = f.lock().unwrap().get(&path).cloned();
                        async move {
                            let (status, body) = match body {
                                Some(b) => (200, b),
                                None => (404, Vec::new()),
                            };
                            hyper::Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::from(body)))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        TestMirror {
            files,
            hits,
            url,
            ca,
            _rt: rt,
        }
    }

    /// Publish a bundle: `bundle.tar` and its `metadata/timestamp.json` as `timestamp.json`.
    fn publish(&self, bundle: &[u8]) {
        let mut f = self.files.lock().unwrap();
        f.insert(
            "timestamp.json".into(),
            member(bundle, "metadata/timestamp.json"),
        );
        f.insert("bundle.tar".into(), bundle.to_vec());
    }

    fn bundle_hits(&self) -> u32 {
        self.hits
            .lock()
            .unwrap()
            .get("bundle.tar")
            .copied()
            .unwrap_or(0)
    }
}

/// A file of a bundle.
fn member(bundle: &[u8], name: &str) -> Vec<u8> {
    let mut ar = tar::Archive::new(bundle);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some(name) {
            let mut b = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut b).unwrap();
            return b;
        }
    }
    panic!("{name} not in the bundle")
}

fn rule(sid: u32) -> String {
    format!(
        "alert tcp any any -> any any (msg:\"db {sid}\"; content:\"db{sid}\"; sid:{sid}; rev:1;)\n"
    )
}

struct Fx {
    tmp: tempfile::TempDir,
    mirror: TestMirror,
    rules: LiveRules,
    /// The workers' policy, with the set's attack blocker definitions laid under the admin's.
    policy: Arc<PolicyCell>,
    defs: Arc<AttackDefs>,
    sync: DbSync,
    events: Seen,
}

impl Fx {
    fn new() -> Fx {
        let tmp = tempfile::tempdir().unwrap();
        let keys = tmp.path().join("keys");
        cmd::keygen(
            &KeygenArgs {
                dir: keys.clone(),
                threshold: 1,
                expires: None,
                rotate_from: None,
            },
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        let mirror = TestMirror::start(tmp.path());
        // The configuration's own rules, with a threshold file: removing it makes the engine
        // refuse every build, as a broken appliance file would.
        let local = tmp.path().join("local.rules");
        std::fs::write(&local, rule(100)).unwrap();
        let threshold = tmp.path().join("threshold.config");
        std::fs::write(&threshold, "").unwrap();
        let mut s = RulesSettings::bare();
        s.files = vec![local.display().to_string()];
        s.threshold_file = Some(threshold);
        let initial = crate::daemon::rules::load(&s).unwrap();
        let rules = LiveRules::start(Some(&s), Some(s.clone()), Some(initial), None).unwrap();
        let settings = DbSettings {
            dir: tmp.path().join("db"),
            root: Some(keys.join("root.json")),
            mirror: Some(mirror.url.clone()),
            ca: Some(mirror.ca.clone()),
            interval_secs: 3600,
            jitter_secs: 0,
            retry_min_secs: 30,
            max_bundle_bytes: 1 << 20,
            timeout_secs: 10,
            probation_secs: 60,
            alert_rate_factor: 10,
            alert_rate_floor: 50,
        };
        let events = Seen::default();
        let policy = Arc::new(PolicyCell::new(Arc::new(CompiledPolicy::compile(
            Policy::default(),
        ))));
        let defs = Arc::new(AttackDefs::new(Arc::clone(&policy)));
        let sync = DbSync::new(settings, rules.swapper(), sink(&events))
            .unwrap()
            .with_attack_defs(Arc::clone(&defs));
        sync.start();
        Fx {
            tmp,
            mirror,
            rules,
            policy,
            defs,
            sync,
            events,
        }
    }

    /// `svm db build` of version `v` with rules of these sids.
    fn build(&self, v: u64, sids: &[u32]) -> Vec<u8> {
        self.build_with("keys", v, sids, None, vec![])
    }

    /// [`Fx::build`] with the keys of `keys`, the timestamp expiring at `ts_expires`, and
    /// address lists (`CATEGORY=FILE`).
    fn build_with(
        &self,
        keys: &str,
        v: u64,
        sids: &[u32],
        ts_expires: Option<String>,
        url_list: Vec<String>,
    ) -> Vec<u8> {
        self.build_full(keys, v, sids, ts_expires, url_list, None)
    }

    /// [`Fx::build`] with these attack blocker definitions.
    fn build_defs(&self, v: u64, sids: &[u32], defs: &str) -> Vec<u8> {
        let f = self.tmp.path().join(format!("ab{v}.yaml"));
        std::fs::write(&f, defs).unwrap();
        self.build_full("keys", v, sids, None, vec![], Some(f))
    }

    fn build_full(
        &self,
        keys: &str,
        v: u64,
        sids: &[u32],
        ts_expires: Option<String>,
        url_list: Vec<String>,
        attack_blocker: Option<PathBuf>,
    ) -> Vec<u8> {
        let mut files = Vec::new();
        for sid in sids {
            let f = self.tmp.path().join(format!("r{sid}.rules"));
            std::fs::write(&f, rule(*sid)).unwrap();
            files.push(f);
        }
        let out = self.tmp.path().join(format!("v{v}.tar"));
        cmd::build(
            &BuildArgs {
                keys: self.tmp.path().join(keys),
                version: v,
                expires: None,
                timestamp_expires: ts_expires,
                rules: files,
                url_list,
                self_test: None,
                classification: None,
                reference: None,
                attack_blocker,
                output: out.clone(),
            },
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        std::fs::read(out).unwrap()
    }

    /// Publish version `v` with rules of these sids and check: installed.
    fn install(&self, v: u64, sids: &[u32]) {
        self.mirror.publish(&self.build(v, sids));
        self.sync.check().unwrap();
    }

    /// A new updater on the same state directory and rules, started: the daemon restarted.
    fn restart(&self) -> DbSync {
        let s = DbSync::new(
            self.sync.settings.clone(),
            self.rules.swapper(),
            sink(&self.events),
        )
        .unwrap();
        s.start();
        s
    }

    fn sids(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .rules
            .cell
            .load()
            .map(|s| s.rules().iter().map(|r| r.sid).collect())
            .unwrap_or_default();
        v.sort_unstable();
        v
    }

    fn kinds(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn last_event(&self) -> (String, Value) {
        let ev = self.events.lock().unwrap();
        let (k, f) = ev.last().unwrap();
        (k.clone(), f["db"].clone())
    }
}

/// Flip one byte of `needle` inside `bundle` (a target's bytes are stored as they are).
/// Only past the metadata: a hex hash there may hold the needle too (`...db7"`), and a
/// changed metadata byte is another refusal.
fn tamper(bundle: &[u8], needle: &[u8]) -> Vec<u8> {
    let mut b = bundle.to_vec();
    let targets = b.windows(8).position(|w| w == b"targets/").unwrap();
    let at = targets
        + b[targets..]
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap();
    b[at] ^= 0x01;
    b
}

#[test]
fn installs_refuses_rolls_back_and_backs_off() {
    let fx = Fx::new();
    assert_eq!(
        fx.sids(),
        [100],
        "no set installed: the configuration's rules"
    );
    assert_eq!(fx.sync.view().current, None);

    // v1 on the mirror: installed and in force beside the configuration's rules.
    let v1 = fx.build(1, &[1]);
    fx.mirror.publish(&v1);
    let v = fx.sync.check().unwrap();
    assert_eq!(v.current.as_ref().unwrap().version, 1);
    assert_eq!(v.in_force, Some(v.current.unwrap().name));
    assert_eq!(v.last_result.as_deref(), Some("installed"));
    assert_eq!(fx.sids(), [1, 100]);
    let (k, f) = fx.last_event();
    assert_eq!((k.as_str(), f["version"].as_u64()), ("db_updated", Some(1)));
    assert_eq!(f["rules_loaded"].as_u64(), Some(2));

    // The same version again: up to date, nothing downloaded.
    let v = fx.sync.check().unwrap();
    assert_eq!(v.last_result.as_deref(), Some("up_to_date"));
    assert_eq!(fx.mirror.bundle_hits(), 1);

    // v2 with a target byte changed: refused, v1 stays in force, and v2 is not fetched again.
    let v2 = fx.build(2, &[1, 2]);
    fx.mirror.publish(&tamper(&v2, b"db2\""));
    let e = fx.sync.check().unwrap_err();
    assert!(
        matches!(&e, DbOpError::Refused(m) if m.contains("SHA-256")),
        "{e}"
    );
    assert_eq!(fx.sids(), [1, 100]);
    let (k, f) = fx.last_event();
    assert_eq!(
        (k.as_str(), f["version"].as_u64()),
        ("db_update_failed", Some(2))
    );
    assert_eq!(f["stage"], "verify");
    let v = fx.sync.check().unwrap();
    assert_eq!(v.last_result.as_deref(), Some("refused_before"));
    assert_eq!(v.refused_version, Some(2));
    assert_eq!(
        fx.mirror.bundle_hits(),
        2,
        "a refused version is not downloaded again"
    );
    assert_eq!(v.current.unwrap().version, 1);

    // v3, good: installed.
    fx.install(3, &[1, 3]);
    assert_eq!(fx.sids(), [1, 3, 100]);

    // The mirror back at v1 (a rollback attack): refused, v3 stays.
    fx.mirror.publish(&v1);
    let e = fx.sync.check().unwrap_err();
    assert!(
        matches!(&e, DbOpError::Refused(m) if m.contains("older than the trusted version 3")),
        "{e}"
    );
    assert_eq!(fx.sids(), [1, 3, 100]);

    // v4 passes every check of the store but the engine refuses the build (the appliance's
    // threshold file is gone): rolled back to v3 by itself, the v3 rules never left.
    fx.mirror.publish(&fx.build(4, &[1, 4]));
    let threshold = fx.tmp.path().join("threshold.config");
    std::fs::remove_file(&threshold).unwrap();
    let e = fx.sync.check().unwrap_err();
    assert!(
        matches!(&e, DbOpError::Refused(m) if m.contains("engine refused")),
        "{e}"
    );
    assert_eq!(fx.sids(), [1, 3, 100]);
    let kinds = fx.kinds();
    assert_eq!(
        kinds[kinds.len() - 2..],
        ["db_update_failed", "db_rolled_back"]
    );
    let (_, f) = fx.last_event();
    assert_eq!(
        (f["from_version"].as_u64(), f["to_version"].as_u64()),
        (Some(4), Some(3))
    );
    assert_eq!(f["automatic"], true);
    let v = fx.sync.view();
    assert_eq!(v.current.as_ref().unwrap().version, 3);
    assert_eq!(v.previous.as_ref().unwrap().version, 4);
    assert_eq!(v.trusted_version, 4);
    assert_eq!(
        fx.sync.check().unwrap().last_result.as_deref(),
        Some("up_to_date")
    );

    // A rollback to v4 while the engine still refuses it is undone.
    let e = fx.sync.rollback_now().unwrap_err();
    assert!(matches!(e, DbOpError::Refused(_)), "{e}");
    assert_eq!(fx.sync.view().current.unwrap().version, 3);
    assert_eq!(fx.sids(), [1, 3, 100]);
    // With the file back, the rollback (to the newer set, here) goes through.
    std::fs::write(&threshold, "").unwrap();
    let v = fx.sync.rollback_now().unwrap();
    assert_eq!(v.current.unwrap().version, 4);
    assert_eq!(fx.sids(), [1, 4, 100]);
    let (k, f) = fx.last_event();
    assert_eq!(
        (k.as_str(), f["automatic"].as_bool()),
        ("db_rolled_back", Some(false))
    );

    let m = fx.sync.metrics();
    let get = |name: &str, label: Option<&str>| {
        m.iter()
            .find(|x| x.name == name)
            .unwrap()
            .samples
            .iter()
            .find(|(l, _)| label.is_none_or(|want| l.iter().any(|(_, v)| v == want)))
            .unwrap()
            .1
    };
    assert!((get("svm_db_version", None) - 4.0).abs() < f64::EPSILON);
    assert!((get("svm_db_updates_total", Some("installed")) - 2.0).abs() < f64::EPSILON);
    assert!((get("svm_db_updates_total", Some("refused")) - 2.0).abs() < f64::EPSILON);
    assert!((get("svm_db_updates_total", Some("rolled_back")) - 2.0).abs() < f64::EPSILON);
    assert!(get("svm_db_stale", None).abs() < f64::EPSILON);

    // A mirror caught between its uploads (v5's timestamp, v4's bundle): tried again, not
    // refused.
    let v5 = fx.build(5, &[1, 5]);
    fx.mirror.publish(&v5);
    let v4 = fx.tmp.path().join("v4.tar");
    fx.mirror
        .files
        .lock()
        .unwrap()
        .insert("bundle.tar".into(), std::fs::read(v4).unwrap());
    let e = fx.sync.check().unwrap_err();
    assert!(
        matches!(&e, DbOpError::Mirror(m) if m.contains("not the timestamp")),
        "{e}"
    );
    fx.mirror.publish(&v5);
    assert_eq!(fx.sync.check().unwrap().current.unwrap().version, 5);
    assert_eq!(fx.sids(), [1, 5, 100]);

    // A bundle handed in through the API (install_file): the same checks. A tampered one is
    // refused without marking its version refused for the mirror.
    let up = fx.tmp.path().join("upload.tar");
    std::fs::write(&up, tamper(&fx.build(7, &[1, 7]), b"db7\"")).unwrap();
    let e = fx.sync.install_file(&up).unwrap_err();
    assert!(
        matches!(&e, DbOpError::Refused(m) if m.contains("SHA-256")),
        "{e}"
    );
    assert_eq!(fx.sync.view().refused_version, Some(4));
    assert_eq!(fx.sids(), [1, 5, 100]);
    std::fs::write(&up, fx.build(7, &[1, 7])).unwrap();
    assert_eq!(
        fx.sync.install_file(&up).unwrap().current.unwrap().version,
        7
    );
    assert_eq!(fx.sids(), [1, 7, 100]);
    let (k, f) = fx.last_event();
    assert_eq!(
        (k.as_str(), f["source"].as_str()),
        ("db_updated", Some("upload"))
    );

    // The publisher rotates its root: v6 is signed by new keys; its timestamp verifies only
    // under the new root, which the mirror must serve as root.json.
    cmd::keygen(
        &KeygenArgs {
            dir: fx.tmp.path().join("keys2"),
            threshold: 1,
            expires: None,
            rotate_from: Some(fx.tmp.path().join("keys")),
        },
        OffsetDateTime::now_utc(),
    )
    .unwrap();
    let v6 = fx.build_with("keys2", 8, &[1, 6], None, vec![]);
    fx.mirror.publish(&v6);
    let e = fx.sync.check().unwrap_err();
    assert!(
        matches!(&e, DbOpError::Refused(m) if m.contains("timestamp")),
        "{e}"
    );
    assert_eq!(
        fx.sync.view().refused_version,
        Some(4),
        "an unverified version is not kept"
    );
    fx.mirror
        .files
        .lock()
        .unwrap()
        .insert("root.json".into(), member(&v6, "metadata/root.json"));
    assert_eq!(fx.sync.check().unwrap().current.unwrap().version, 8);
    assert_eq!(fx.sids(), [1, 6, 100]);

    // The mirror gone: a mirror failure, one event for a run of them, a retry sooner than the
    // interval that doubles.
    fx.mirror.files.lock().unwrap().clear();
    let before = fx.kinds().len();
    for _ in 0..2 {
        assert!(matches!(fx.sync.check(), Err(DbOpError::Mirror(_))));
    }
    assert_eq!(fx.kinds().len(), before + 1, "{:?}", fx.kinds());
    let next = fx.sync.due_in().unwrap().as_secs();
    assert!(
        (55..=60).contains(&next),
        "second failure waits 60 s: {next}"
    );
    assert_eq!(fx.sync.view().last_result.as_deref(), Some("failed"));
}

#[test]
fn a_set_the_engine_refuses_at_start_gives_way_to_the_previous_one() {
    let fx = Fx::new();
    fx.install(1, &[1]);
    fx.install(2, &[2]);
    assert_eq!(fx.sids(), [2, 100]);
    // v2's rule file damaged on disk: at the next start, the engine refuses it (a syntax error
    // only skips a rule, so make the file unreadable instead: a directory in its place).
    let cur = fx.sync.view().current.unwrap().name;
    let file = fx
        .tmp
        .path()
        .join("db/sets")
        .join(&cur)
        .join("targets/rules/r2.rules");
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    let s2 = DbSync::new(
        fx.sync.settings.clone(),
        fx.rules.swapper(),
        sink(&fx.events),
    )
    .unwrap();
    let left = fx.tmp.path().join("db/upload-x.tar");
    std::fs::write(&left, b"half an upload").unwrap();
    s2.start();
    assert!(!left.exists(), "a left upload is removed at start");
    assert_eq!(s2.view().current.unwrap().version, 1);
    assert_eq!(
        fx.kinds().last().map(String::as_str),
        Some("db_rolled_back")
    );
    assert_eq!(fx.sids(), [1, 100]);
}

#[test]
fn a_set_whose_timestamp_expires_is_reported_stale_once_and_stays() {
    let fx = Fx::new();
    let soon = OffsetDateTime::now_utc() + time::Duration::seconds(120);
    fx.mirror
        .publish(&fx.build_with("keys", 1, &[1], Some(meta::format_time(soon)), vec![]));
    fx.sync.check().unwrap();
    fx.sync.note_stale(OffsetDateTime::now_utc());
    assert!(!fx.kinds().contains(&"db_stale".to_owned()));
    let later = soon + time::Duration::seconds(1);
    fx.sync.note_stale(later);
    fx.sync.note_stale(later);
    let kinds = fx.kinds();
    assert_eq!(
        kinds.iter().filter(|k| *k == "db_stale").count(),
        1,
        "{kinds:?}"
    );
    let (_, f) = fx.last_event();
    assert_eq!(f["version"], 1);
    assert_eq!(fx.sids(), [1, 100], "a stale set stays in force");
}

#[test]
fn a_refused_version_is_not_fetched_again_after_a_restart() {
    let fx = Fx::new();
    fx.install(1, &[1]);
    let v2 = fx.build(2, &[1, 2]);
    fx.mirror.publish(&tamper(&v2, b"db2\""));
    fx.sync.check().unwrap_err();
    assert_eq!(fx.mirror.bundle_hits(), 2);
    let on_disk: Refused =
        serde_json::from_slice(&std::fs::read(fx.tmp.path().join("db/refused.json")).unwrap())
            .unwrap();
    assert_eq!(on_disk.version, 2);
    assert!(on_disk.reason.contains("SHA-256"), "{on_disk:?}");

    // A restarted updater (a new process on the same state directory) knows v2 is refused.
    let again = fx.restart();
    assert_eq!(again.view().refused_version, Some(2));
    let v = again.check().unwrap();
    assert_eq!(v.last_result.as_deref(), Some("refused_before"));
    assert_eq!(
        fx.mirror.bundle_hits(),
        2,
        "the refused bundle was fetched again"
    );
    // A newer version is fetched and installed.
    fx.mirror.publish(&fx.build(3, &[1, 3]));
    assert_eq!(again.check().unwrap().current.unwrap().version, 3);
    assert_eq!(fx.mirror.bundle_hits(), 3);
}

/// One worker's published status, as the daemon's workers publish theirs.
fn workers() -> (WorkerStatuses, Arc<Mutex<dataplane::driver::WorkerStatus>>) {
    let w = Arc::new(Mutex::new(dataplane::driver::WorkerStatus::default()));
    let all: WorkerStatuses = Arc::default();
    all.set(vec![Arc::clone(&w)]).unwrap();
    (all, w)
}

/// The worker forwarded `packets` frames and raised `alerts` rule alerts in all.
fn publish(w: &Mutex<dataplane::driver::WorkerStatus>, packets: u64, alerts: u64) {
    let mut s = w.lock().unwrap();
    s.counters.packets = packets;
    s.counters.forwarded = packets;
    s.counters.rule_alerts = alerts;
}

#[test]
fn a_set_that_floods_alerts_is_rolled_back_with_its_lists_and_stays_refused() {
    let fx = Fx::new();
    let (all, w) = workers();
    let web = Arc::new(WebDb::default());
    let lists = crate::daemon::weblists::LiveWebLists::start(
        Vec::new(),
        &Policy::default(),
        Arc::default(),
        None,
        Arc::clone(&web),
    )
    .unwrap();
    let mut settings = fx.sync.settings.clone();
    settings.probation_secs = 3;
    settings.alert_rate_floor = 5;
    let sync = DbSync::new(settings, fx.rules.swapper(), sink(&fx.events))
        .unwrap()
        .with_web(Arc::clone(&web))
        .with_workers(all);
    sync.start();
    let listed = |host: &[u8]| {
        lists
            .cell
            .load()
            .is_some_and(|s| s.lookup_host(host).is_listed())
    };
    // The worker forwards 100 frames a second and raises `rate` alerts a second, published
    // 4 times a second and sampled at each, for `secs` or until `done`.
    let (mut packets, mut alerts) = (0.0f64, 0.0f64);
    let mut feed = |rate: f64, secs: u64, done: &dyn Fn() -> bool| {
        let t = std::time::Instant::now();
        while t.elapsed() < Duration::from_secs(secs) && !done() {
            std::thread::sleep(Duration::from_millis(250));
            packets += 25.0;
            alerts += rate / 4.0;
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            publish(&w, packets as u64, alerts as u64);
            sync.tick();
        }
    };
    feed(2.0, 2, &|| false);

    // v1 with an address list: its entry is listed once it is in force, and its probation
    // passes at the same alert rate.
    let list = fx.tmp.path().join("bad-hosts.txt");
    std::fs::write(&list, "evil-v1.example\n").unwrap();
    let bundle = |v: u64, sids: &[u32], list: &Path| {
        fx.build_with(
            "keys",
            v,
            sids,
            None,
            vec![format!("malware={}", list.display())],
        )
    };
    fx.mirror.publish(&bundle(1, &[1], &list));
    sync.check().unwrap();
    assert!(listed(b"evil-v1.example"));
    assert_eq!(sync.view().probation.unwrap().version, 1);
    assert!(fx.tmp.path().join("db/probation.json").exists());
    feed(2.0, 10, &|| sync.view().probation.is_none());
    assert_eq!(sync.view().probation, None, "v1 passed its probation");
    assert!(!fx.tmp.path().join("db/probation.json").exists());
    assert_eq!(sync.view().last_swap_frames_lost, Some(0));

    // v2 replaces the list; its rules raise 100 alerts a second: rolled back by itself, the
    // v1 rules and list back in force, v2 refused (on disk).
    std::fs::write(&list, "evil-v2.example\n").unwrap();
    fx.mirror.publish(&bundle(2, &[1, 2], &list));
    sync.check().unwrap();
    assert!(listed(b"evil-v2.example") && !listed(b"evil-v1.example"));
    assert_eq!(fx.sids(), [1, 2, 100]);
    feed(100.0, 10, &|| sync.view().current.unwrap().version == 1);
    let v = sync.view();
    assert_eq!(v.current.unwrap().version, 1, "not rolled back");
    assert_eq!(v.probation, None);
    assert_eq!(v.refused_version, Some(2));
    assert_eq!(fx.sids(), [1, 100]);
    assert!(listed(b"evil-v1.example") && !listed(b"evil-v2.example"));
    let (k, f) = fx.last_event();
    assert_eq!(k, "db_rolled_back");
    assert_eq!(f["check"], "alert_rate");
    assert_eq!(
        (f["from_version"].as_u64(), f["to_version"].as_u64()),
        (Some(2), Some(1))
    );
    assert!(f["reason"].as_str().unwrap().contains("alerts/s"), "{f}");
    let refused = std::fs::read_to_string(fx.tmp.path().join("db/refused.json")).unwrap();
    assert!(refused.contains("alert_rate"), "{refused}");
    assert_eq!(
        sync.check().unwrap().last_result.as_deref(),
        Some("up_to_date"),
        "v2 is not tried again"
    );
    lists.stop();
}

#[test]
fn a_daemon_that_dies_in_a_probation_rolls_the_set_back_at_its_next_start() {
    let fx = Fx::new();
    fx.install(1, &[1]);
    fx.install(2, &[2]);
    assert_eq!(fx.sync.view().probation.unwrap().version, 2);
    // A clean stop in the probation: v2 is watched again after the restart.
    fx.sync.stopping();
    let s = fx.restart();
    assert_eq!(s.view().current.unwrap().version, 2);
    assert_eq!(s.view().probation.unwrap().version, 2);
    assert_eq!(fx.sids(), [2, 100]);
    // Dying in it (no clean stop): the next start rolls v2 back and refuses it.
    drop(s);
    let s = fx.restart();
    let v = s.view();
    assert_eq!(v.current.unwrap().version, 1);
    assert_eq!(v.refused_version, Some(2));
    assert_eq!(fx.sids(), [1, 100]);
    let (k, f) = fx.last_event();
    assert_eq!(
        (k.as_str(), f["check"].as_str()),
        ("db_rolled_back", Some("daemon"))
    );
    assert!(!fx.tmp.path().join("db/probation.json").exists());
    // A worker ending in a probation rolls back at once.
    fx.mirror.publish(&fx.build(3, &[3]));
    s.check().unwrap();
    assert_eq!(fx.sids(), [3, 100]);
    s.worker_ended();
    assert_eq!(s.view().current.unwrap().version, 1);
    assert_eq!(fx.sids(), [1, 100]);
    let (_, f) = fx.last_event();
    assert_eq!(f["check"], "worker");
}

#[test]
fn the_first_set_failing_its_probation_is_taken_out_of_use() {
    let fx = Fx::new();
    fx.install(1, &[1]);
    assert_eq!(fx.sids(), [1, 100]);
    fx.sync.worker_ended();
    let v = fx.sync.view();
    assert_eq!(v.current, None, "no set in use");
    assert_eq!(v.previous.unwrap().version, 1);
    assert_eq!((v.in_force, v.refused_version), (None, Some(1)));
    assert_eq!(fx.sids(), [100], "the rules as before the set");
    let (k, f) = fx.last_event();
    assert_eq!(
        (k.as_str(), f["to_version"].as_u64()),
        ("db_rolled_back", None)
    );
    // Not fetched again, nor installed by upload (versions only go up).
    assert_eq!(
        fx.sync.check().unwrap().last_result.as_deref(),
        Some("refused_before")
    );
    let again = fx.tmp.path().join("v1-again.tar");
    std::fs::write(&again, fx.build(1, &[1])).unwrap();
    let e = fx.sync.install_file(&again).unwrap_err();
    assert!(
        matches!(&e, DbOpError::Refused(m) if m.contains("not newer") && m.contains("svm db rollback")),
        "{e:?}"
    );
    assert_eq!(fx.sync.view().current, None);
    assert_eq!(fx.sids(), [100]);
    // An explicit rollback brings it back into use; a second one has nothing to go back to.
    let v = fx.sync.rollback_now().unwrap();
    assert_eq!(v.current.unwrap().version, 1);
    assert_eq!(v.previous, None);
    assert_eq!(fx.sids(), [1, 100]);
    assert!(matches!(
        fx.sync.rollback_now(),
        Err(DbOpError::Conflict(_))
    ));
    fx.mirror.publish(&fx.build(2, &[2]));
    assert_eq!(fx.sync.check().unwrap().current.unwrap().version, 2);
    assert_eq!(fx.sids(), [2, 100]);
}

#[test]
fn a_rollback_in_a_probation_puts_the_replaced_rules_back_without_a_build() {
    let fx = Fx::new();
    fx.install(1, &[1]);
    fx.install(2, &[2]);
    let builds = fx.rules.status().reloads;
    let v = fx.sync.rollback_now().unwrap();
    assert_eq!(v.current.unwrap().version, 1);
    assert_eq!(v.probation, None);
    assert_eq!(fx.sids(), [1, 100]);
    assert_eq!(
        fx.rules.status().reloads,
        builds,
        "the rules were built again"
    );
    // Back to v2 (no probation any more): built.
    fx.sync.rollback_now().unwrap();
    assert_eq!(fx.sids(), [2, 100]);
    assert_eq!(fx.rules.status().reloads, builds + 1);
}

/// A TCP port scan in a capture: SYNs from 10.0.0.1 to `ports` ports of 10.0.0.2, 10 ms apart.
fn scan_capture(path: &Path, ports: u16) {
    let mut pcap = Vec::new();
    for w in [0xa1b2_c3d4_u32, 0x0004_0002, 0, 0, 65535, 1] {
        pcap.extend_from_slice(&w.to_le_bytes());
    }
    // The version is two u16 in one word: 2, then 4.
    pcap[4..8].copy_from_slice(&[2, 0, 4, 0]);
    for (i, port) in (1000..1000 + ports).enumerate() {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        let mut ip = vec![
            0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let sum = ip
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum::<u32>();
        let sum = (sum & 0xffff) + (sum >> 16);
        ip[10..12].copy_from_slice(&(!u16::try_from(sum).unwrap()).to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&40000u16.to_be_bytes());
        f.extend_from_slice(&port.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 4, 0, 0, 0, 0, 0]);
        let usec = u32::try_from(i).unwrap() * 10_000;
        for w in [1_700_000_000u32, usec, 54, 54] {
            pcap.extend_from_slice(&w.to_le_bytes());
        }
        pcap.extend_from_slice(&f);
    }
    std::fs::write(path, pcap).unwrap();
}

/// Attack blocker detections of the scan under the policy the workers run now.
fn scans(fx: &Fx, capture: &Path) -> u64 {
    crate::db::check::self_test(capture, None, fx.policy.load().policy().clone())
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("attack_blocker:Scan.Generic.TCP"))
        .map(|(_, n)| n)
        .sum()
}

#[test]
fn a_sets_attack_blocker_definitions_go_in_under_the_admins_policy_and_roll_back() {
    let fx = Fx::new();
    let scan = fx.tmp.path().join("scan.pcap");
    scan_capture(&scan, 10);
    fx.install(1, &[1]);
    assert_eq!(scans(&fx, &scan), 0, "10 ports: under the built-in 20");
    assert_eq!(fx.defs.current(), None);

    // v2 lowers the TCP port scan's count to 5: the same scan is detected.
    fx.mirror.publish(&fx.build_defs(
        2,
        &[1],
        "attack_blocker:\n  detectors:\n    tcp_port_scan: { count: 5 }\n",
    ));
    let v = fx.sync.check().unwrap();
    let cur = v.current.unwrap();
    assert_eq!(cur.version, 2);
    assert_eq!(cur.attack_blocker["tcp_port_scan"].count, Some(5));
    assert_eq!(
        serde_json::to_value(&cur.attack_blocker).unwrap(),
        serde_json::json!({"tcp_port_scan": {"count": 5}})
    );
    assert!(scans(&fx, &scan) >= 1, "the bundle's count is in force");
    assert_eq!(fx.sids(), [1, 100], "with its rules");

    // The admin's policy wins where it sets a count; a push keeps the bundle's defaults.
    let admin = |text: &str| Arc::new(CompiledPolicy::compile(Policy::from_yaml(text).unwrap()));
    fx.defs.policy(admin(
        "attack_blocker:\n  detectors:\n    tcp_port_scan: { count: 50 }\n",
    ));
    assert_eq!(scans(&fx, &scan), 0, "the admin's 50 wins");
    fx.defs.policy(admin("mode: standard\n"));
    assert!(scans(&fx, &scan) >= 1, "a push keeps the bundle's defaults");

    // A rollback (in v2's probation: v1's engine state put back as it was) restores v1's
    // definitions: none.
    let v = fx.sync.rollback_now().unwrap();
    assert_eq!(v.current.unwrap().version, 1);
    assert_eq!(fx.defs.current(), None);
    assert_eq!(scans(&fx, &scan), 0, "rolled back: the built-in 20 again");

    // v3 with them again, then a rollback outside any probation (a build).
    fx.mirror.publish(&fx.build_defs(
        3,
        &[1],
        "attack_blocker:\n  detectors:\n    tcp_port_scan: { count: 5 }\n",
    ));
    fx.sync.check().unwrap();
    assert!(scans(&fx, &scan) >= 1);
    fx.sync.end_probation(&fx.sync.store().unwrap());
    fx.sync.rollback_now().unwrap();
    assert_eq!(scans(&fx, &scan), 0);
}

#[test]
fn a_worker_stalling_in_a_probation_rolls_the_set_back() {
    let fx = Fx::new();
    fx.install(1, &[1]);
    fx.sync.worker_stalled(0, 10);
    assert_eq!(fx.sids(), [100], "v1 out of use");
    assert_eq!(fx.sync.view().refused_version, Some(1));
    let (k, f) = fx.last_event();
    assert_eq!(
        (k.as_str(), f["check"].as_str()),
        ("db_rolled_back", Some("worker_stalled"))
    );
    assert!(f["reason"].as_str().unwrap().contains("worker 0"), "{f}");
    // Outside a probation, a stall changes no set.
    fx.mirror.publish(&fx.build(2, &[2]));
    fx.sync.check().unwrap();
    fx.sync.end_probation(&fx.sync.store().unwrap());
    fx.sync.worker_stalled(0, 10);
    assert_eq!(fx.sync.view().current.unwrap().version, 2);
}
