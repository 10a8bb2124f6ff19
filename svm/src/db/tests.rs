//! The negative matrix of issue 19 (each refusal its own error, the state directory unchanged)
//! and the positive path, on real files: keys from `keygen`, bundles written as tar, a state
//! directory on disk, rules compiled and a capture replayed through the engine.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use time::{Duration, OffsetDateTime};

use super::DbError;
use super::cmd::{self, BuildArgs, KeygenArgs, RoleKeyring};
use super::meta::{self, Role, TargetKind, Targets};
use super::store::{Store, UpdateOptions};
use super::verify::Options;

const RULE: &str = "alert udp any any -> any any (msg:\"db self-test\"; content:\"SVM-SELF-TEST\"; sid:9000001; rev:1;)\n";
const RULE_V2: &str = "alert udp any any -> any any (msg:\"db self-test v2\"; content:\"SELF\"; sid:9000002; rev:1;)\n";

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// One UDP frame carrying `payload`, in a pcap.
fn capture(path: &Path, payload: &[u8]) {
    let mut f = Vec::new();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
    let total = u16::try_from(20 + 8 + payload.len()).unwrap();
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0, 1, 0, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    let udp_len = u16::try_from(8 + payload.len()).unwrap();
    f.extend_from_slice(&[0x30, 0x39, 0x27, 0x0f]);
    f.extend_from_slice(&udp_len.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    let mut w = pcap_file::pcap::PcapWriter::new(std::fs::File::create(path).unwrap()).unwrap();
    w.write_packet(&pcap_file::pcap::PcapPacket::new(
        std::time::Duration::from_secs(1_700_000_000),
        u32::try_from(f.len()).unwrap(),
        &f,
    ))
    .unwrap();
}

struct Fx {
    tmp: tempfile::TempDir,
    keys_dir: PathBuf,
    root: Vec<u8>,
    keys: RoleKeyring,
}

impl Fx {
    fn new(threshold: u32) -> Fx {
        let tmp = tempfile::tempdir().unwrap();
        let keys_dir = tmp.path().join("keys");
        cmd::keygen(
            &KeygenArgs {
                dir: keys_dir.clone(),
                threshold,
                expires: None,
                rotate_from: None,
            },
            now(),
        )
        .unwrap();
        let (root, keys) = cmd::load_keys(&keys_dir).unwrap();
        std::fs::write(tmp.path().join("a.rules"), RULE).unwrap();
        std::fs::write(tmp.path().join("b.rules"), RULE_V2).unwrap();
        capture(&tmp.path().join("selftest.pcap"), b"hello SVM-SELF-TEST");
        // The first open makes the state directory's skeleton (lock, sets/), as any command does.
        drop(Store::open(&tmp.path().join("state")).unwrap());
        Fx {
            tmp,
            keys_dir,
            root,
            keys,
        }
    }

    fn p(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn state(&self) -> PathBuf {
        self.p("state")
    }

    /// `svm db build` of version `v` (rules a.rules, and b.rules from v2 on; a list; the self-test).
    fn build(&self, v: u64, ts_expires: Option<OffsetDateTime>) -> PathBuf {
        self.build_with(&self.keys_dir, v, ts_expires)
    }

    /// [`Fx::build`] with the keys of `keys`.
    fn build_with(&self, keys: &Path, v: u64, ts_expires: Option<OffsetDateTime>) -> PathBuf {
        let out = self.p(&if ts_expires.is_some() {
            format!("v{v}-expired.tar")
        } else {
            format!("v{v}.tar")
        });
        let mut rules = vec![self.p("a.rules")];
        if v >= 2 {
            rules.push(self.p("b.rules"));
        }
        std::fs::write(self.p("bad.list"), "evil.example\nphish.example/login\n").unwrap();
        cmd::build(
            &BuildArgs {
                keys: keys.to_owned(),
                version: v,
                expires: None,
                timestamp_expires: ts_expires.map(meta::format_time),
                rules,
                url_list: vec![format!("malware={}", self.p("bad.list").display())],
                self_test: Some(self.p("selftest.pcap")),
                classification: None,
                reference: None,
                attack_blocker: None,
                output: out.clone(),
            },
            now(),
        )
        .unwrap();
        out
    }

    fn update_at(
        &self,
        bundle: &Path,
        at: OffsetDateTime,
        allow_expired: bool,
    ) -> Result<u64, DbError> {
        let store = Store::open(&self.state())?;
        store
            .update(&UpdateOptions {
                from: bundle.to_owned(),
                root: Some(self.keys_dir.join("root.json")),
                allow_expired,
                now: at,
            })
            .map(|i| i.set.version)
    }

    fn update(&self, bundle: &Path) -> Result<u64, DbError> {
        self.update_at(bundle, now(), false)
    }

    fn current(&self) -> Option<u64> {
        Store::open(&self.state())
            .unwrap()
            .status(now())
            .unwrap()
            .current
            .map(|c| c.version)
    }
}

/// The bundle's entries in order.
fn entries(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(std::fs::File::open(path).unwrap());
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_str().unwrap().to_owned();
            let mut b = Vec::new();
            e.read_to_end(&mut b).unwrap();
            (name, b)
        })
        .collect()
}

fn write_entries(path: &Path, entries: &[(String, Vec<u8>)]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data.as_slice()).unwrap();
    }
    b.into_inner().unwrap();
}

/// A copy of `src` with `f` applied to its entries.
fn altered(src: &Path, dst: &Path, f: impl FnOnce(&mut Vec<(String, Vec<u8>)>)) -> PathBuf {
    let mut e = entries(src);
    f(&mut e);
    write_entries(dst, &e);
    dst.to_owned()
}

fn entry<'a>(e: &'a mut [(String, Vec<u8>)], name: &str) -> &'a mut Vec<u8> {
    &mut e.iter_mut().find(|(n, _)| n == name).unwrap().1
}

/// Change one byte of a metadata file's signed content: the decade of its expiry.
fn bump_year(b: &mut [u8]) {
    let key = b"\"expires\":\"20";
    let at = b.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    b[at] = if b[at] == b'9' { b'8' } else { b[at] + 1 };
}

/// Sign and write a bundle without the publisher's checks (what an attacker or a broken
/// publisher could produce): `files` are (name, bytes, kind).
fn craft(
    fx: &Fx,
    out: &str,
    version: u64,
    keys: &RoleKeyring,
    files: &[(&str, Vec<u8>, TargetKind)],
) -> PathBuf {
    let expires = meta::format_time(now() + Duration::days(3));
    let targets = Targets {
        kind: "targets".into(),
        spec_version: meta::SPEC_VERSION.into(),
        version,
        expires: expires.clone(),
        targets: files
            .iter()
            .map(|(n, b, k)| {
                (
                    (*n).to_owned(),
                    meta::TargetInfo {
                        length: b.len() as u64,
                        hashes: meta::Hashes {
                            sha256: super::sha256_hex(b),
                        },
                        custom: meta::TargetCustom {
                            kind: *k,
                            category: None,
                        },
                    },
                )
            })
            .collect(),
    };
    let md = cmd::sign_metadata(&fx.root, keys, &targets, &expires).unwrap();
    // The tar crate will not write a name with `..`; such a target is only in the metadata.
    let payload: Vec<(String, Vec<u8>)> = files
        .iter()
        .filter(|(n, _, _)| !n.contains(".."))
        .map(|(n, b, _)| ((*n).to_owned(), b.clone()))
        .collect();
    let path = fx.p(out);
    super::bundle::write(&path, &md, &payload).unwrap();
    path
}

/// Every path under `dir` with its link target or content.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let v = if md.file_type().is_symlink() {
                std::fs::read_link(&p)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else if md.is_dir() {
                stack.push(p.clone());
                Vec::new()
            } else {
                std::fs::read(&p).unwrap()
            };
            out.insert(p, v);
        }
    }
    out
}

/// `bundle` is refused with an error `pred` accepts, and the state directory does not change.
fn refused(
    fx: &Fx,
    bundle: &Path,
    at: OffsetDateTime,
    allow: bool,
    pred: impl Fn(&DbError) -> bool,
) {
    let before = tree(&fx.state());
    let err = fx.update_at(bundle, at, allow).unwrap_err();
    assert!(pred(&err), "unexpected error: {err}");
    assert_eq!(tree(&fx.state()), before, "the state changed after: {err}");
    assert!(!err.to_string().contains('\n'));
}

#[test]
fn build_verify_update_status_update_rollback() {
    let fx = Fx::new(1);
    let v1 = fx.build(1, None);
    let opts = Options {
        now: now(),
        allow_expired: false,
    };
    let v = cmd::verify_bundle(&fx.keys_dir.join("root.json"), &v1, &opts).unwrap();
    assert_eq!(v.versions.targets, 1);
    assert_eq!(fx.update(&v1).unwrap(), 1);
    let s = Store::open(&fx.state()).unwrap().status(now()).unwrap();
    let cur = s.current.unwrap();
    assert_eq!((cur.version, cur.stale), (1, false));
    assert_eq!(cur.report.self_test.get("1:9000001"), Some(&1));
    assert_eq!(cur.report.lists.get("malware"), Some(&2));
    assert!(s.previous.is_none());
    let v2 = fx.build(2, None);
    assert_eq!(fx.update(&v2).unwrap(), 2);
    let s = Store::open(&fx.state()).unwrap().status(now()).unwrap();
    assert_eq!(s.current.as_ref().unwrap().version, 2);
    assert_eq!(
        s.current.unwrap().report.self_test.get("1:9000002"),
        Some(&1),
        "the rule new in v2 fires in its self-test"
    );
    assert_eq!(s.previous.unwrap().version, 1);
    let s = Store::open(&fx.state()).unwrap().rollback(now()).unwrap();
    assert_eq!(s.current.unwrap().version, 1);
    assert_eq!(s.previous.unwrap().version, 2);
    // The trusted versions stay: v1 cannot come back as an update, v2 is the newest seen.
    assert_eq!(s.trusted.versions.targets, 2);
    let sets = std::fs::read_dir(fx.state().join("sets")).unwrap().count();
    assert_eq!(sets, 2, "A/B: two sets kept");
    // A third version replaces the set that was neither current nor previous.
    let v3 = fx.build(3, None);
    assert_eq!(fx.update(&v3).unwrap(), 3);
    assert_eq!(fx.current(), Some(3));
    assert_eq!(
        std::fs::read_dir(fx.state().join("sets")).unwrap().count(),
        2
    );
}

#[test]
fn tampered_target_and_metadata() {
    let fx = Fx::new(1);
    fx.update(&fx.build(1, None)).unwrap();
    let v2 = fx.build(2, None);
    let t = altered(&v2, &fx.p("t1.tar"), |e| {
        let b = entry(e, "targets/rules/a.rules");
        b[10] ^= 1;
    });
    refused(
        &fx,
        &t,
        now(),
        false,
        |e| matches!(e, DbError::TargetHash(n) if n == "rules/a.rules"),
    );
    let t = altered(&v2, &fx.p("t2.tar"), |e| {
        bump_year(entry(e, "metadata/targets.json"));
    });
    refused(&fx, &t, now(), false, |e| {
        matches!(
            e,
            DbError::MetadataMismatch {
                name: "targets.json",
                what: "sha256",
                ..
            }
        )
    });
    let t = altered(&v2, &fx.p("t3.tar"), |e| {
        bump_year(entry(e, "metadata/timestamp.json"));
    });
    refused(&fx, &t, now(), false, |e| {
        matches!(
            e,
            DbError::BadSignature {
                role: "timestamp",
                ..
            }
        )
    });
    assert_eq!(fx.update(&v2).unwrap(), 2, "the untampered bundle installs");
}

#[test]
fn wrong_key_and_below_threshold() {
    let fx = Fx::new(2);
    let files = [("rules/a.rules", RULE.as_bytes().to_vec(), TargetKind::Rules)];
    let mut wrong = fx.keys.clone();
    wrong.insert(
        Role::Timestamp,
        vec![
            SigningKey::from_bytes(&[7; 32]),
            SigningKey::from_bytes(&[8; 32]),
        ],
    );
    let b = craft(&fx, "wrong.tar", 1, &wrong, &files);
    refused(&fx, &b, now(), false, |e| {
        matches!(e, DbError::UnknownKeys { role: "timestamp" })
    });
    let mut one = fx.keys.clone();
    one.get_mut(&Role::Targets).unwrap().truncate(1);
    let b = craft(&fx, "one.tar", 1, &one, &files);
    refused(&fx, &b, now(), false, |e| {
        matches!(
            e,
            DbError::BelowThreshold {
                role: "targets",
                valid: 1,
                threshold: 2
            }
        )
    });
    let b = craft(&fx, "ok.tar", 1, &fx.keys, &files);
    assert_eq!(fx.update(&b).unwrap(), 1);
}

#[test]
fn duplicate_signatures_count_once() {
    let fx = Fx::new(2);
    let files = [("rules/a.rules", RULE.as_bytes().to_vec(), TargetKind::Rules)];
    let b = craft(&fx, "ok.tar", 1, &fx.keys, &files);
    let e = entries(&b);
    let ts = e
        .iter()
        .find(|(n, _)| n == "metadata/timestamp.json")
        .unwrap();
    let mut env = meta::Envelope::parse(Role::Timestamp, &ts.1).unwrap();
    let (root, _) = meta::trusted_root(&fx.root).unwrap();
    env.verify(&root).unwrap();
    let first = env.signatures[0].clone();
    env.signatures = vec![first.clone(), first];
    assert!(matches!(
        env.verify(&root),
        Err(DbError::BelowThreshold {
            valid: 1,
            threshold: 2,
            ..
        })
    ));
}

#[test]
fn rollback_freeze_and_mix_and_match() {
    let fx = Fx::new(1);
    let v1 = fx.build(1, None);
    let v2 = fx.build(2, None);
    fx.update(&v2).unwrap();
    refused(&fx, &v1, now(), false, |e| {
        matches!(
            e,
            DbError::Rollback {
                role: "timestamp",
                trusted: 2,
                got: 1
            }
        )
    });
    refused(&fx, &v2, now(), false, |e| {
        matches!(
            e,
            DbError::NotNewer {
                installed: 2,
                got: 2
            }
        )
    });
    // Freeze: a v3 whose timestamp expired an hour ago.
    let v3 = fx.build(3, Some(now() - Duration::hours(1)));
    refused(&fx, &v3, now(), false, |e| {
        matches!(
            e,
            DbError::Expired {
                role: "timestamp",
                ..
            }
        )
    });
    // Mix and match: v3's metadata with v2's snapshot.
    let v3ok = fx.build(3, None);
    let v2snap = entries(&v2)
        .into_iter()
        .find(|(n, _)| n == "metadata/snapshot.json")
        .unwrap()
        .1;
    let mixed = altered(&v3ok, &fx.p("mixed.tar"), |e| {
        *entry(e, "metadata/snapshot.json") = v2snap;
    });
    refused(&fx, &mixed, now(), false, |e| {
        matches!(
            e,
            DbError::MixAndMatch {
                name: "snapshot.json",
                expected: 3,
                got: 2,
                ..
            }
        )
    });
    // --allow-expired installs the expired v3 (newer), and then the set is stale.
    assert_eq!(fx.update_at(&v3, now(), true).unwrap(), 3);
    let s = Store::open(&fx.state()).unwrap().status(now()).unwrap();
    assert!(s.current.unwrap().stale);
    // ... but never an expired bundle that is not newer.
    let v3b = fx.build(3, Some(now() - Duration::hours(1)));
    refused(&fx, &v3b, now(), true, |e| {
        matches!(e, DbError::NotNewer { .. })
    });
}

#[test]
fn oversized_metadata_and_long_target() {
    let fx = Fx::new(1);
    let v1 = fx.build(1, None);
    let big = altered(&v1, &fx.p("big.tar"), |e| {
        entry(e, "metadata/timestamp.json").resize(10 * 1024 * 1024, b' ');
    });
    refused(&fx, &big, now(), false, |e| {
        matches!(e, DbError::MetadataTooLarge { cap: 16384, .. })
    });
    let long = altered(&v1, &fx.p("long.tar"), |e| {
        entry(e, "targets/rules/a.rules").extend_from_slice(b"# more\n");
    });
    refused(
        &fx,
        &long,
        now(),
        false,
        |e| matches!(e, DbError::TargetTooLong { name, .. } if name == "rules/a.rules"),
    );
    let extra = altered(&v1, &fx.p("extra.tar"), |e| {
        e.push(("targets/rules/extra.rules".into(), RULE.into()));
    });
    refused(&fx, &extra, now(), false, |e| {
        matches!(e, DbError::UnlistedTarget(_))
    });
    let missing = altered(&v1, &fx.p("missing.tar"), |e| {
        e.retain(|(n, _)| n != "targets/rules/a.rules");
    });
    refused(&fx, &missing, now(), false, |e| {
        matches!(e, DbError::MissingTarget(_))
    });
    assert!(matches!(
        meta::Envelope::parse(Role::Root, &vec![b' '; 70_000]),
        Err(DbError::MetadataTooLarge { .. })
    ));
}

#[test]
fn clock_stepped_back() {
    let fx = Fx::new(1);
    fx.update(&fx.build(1, None)).unwrap();
    let v2 = fx.build(2, None);
    refused(&fx, &v2, now() - Duration::hours(2), false, |e| {
        matches!(e, DbError::ClockBack { .. })
    });
    assert!(matches!(
        Store::open(&fx.state())
            .unwrap()
            .rollback(now() - Duration::hours(2)),
        Err(DbError::ClockBack { .. })
    ));
}

#[test]
fn rules_that_do_not_compile_and_failing_self_test() {
    let fx = Fx::new(1);
    fx.update(&fx.build(1, None)).unwrap();
    let bad = craft(
        &fx,
        "badrules.tar",
        2,
        &fx.keys,
        &[(
            "rules/bad.rules",
            b"alert tcp any any -> any any (msg:\"x\"; content:\"a\"; sid:1;\n".to_vec(),
            TargetKind::Rules,
        )],
    );
    refused(&fx, &bad, now(), false, |e| matches!(e, DbError::Rules(_)));
    let pcap = std::fs::read(fx.p("selftest.pcap")).unwrap();
    let wrong = craft(
        &fx,
        "selftest.tar",
        2,
        &fx.keys,
        &[
            ("rules/a.rules", RULE.as_bytes().to_vec(), TargetKind::Rules),
            ("selftest/capture.pcap", pcap, TargetKind::SelfTestCapture),
            (
                "selftest/expected.json",
                br#"{"alerts": {"1:9000001": 2}}"#.to_vec(),
                TargetKind::SelfTestExpected,
            ),
        ],
    );
    refused(
        &fx,
        &wrong,
        now(),
        false,
        |e| matches!(e, DbError::SelfTest(m) if m.contains("expected 2 alert(s) 1:9000001, got 1")),
    );
    let unsafe_name = craft(
        &fx,
        "unsafe.tar",
        2,
        &fx.keys,
        &[(
            "rules/../x.rules",
            RULE.as_bytes().to_vec(),
            TargetKind::Rules,
        )],
    );
    refused(&fx, &unsafe_name, now(), false, |e| {
        matches!(e, DbError::BadMetadata { .. })
    });
    assert_eq!(fx.current(), Some(1));
}

#[test]
fn another_root_is_refused() {
    let fx = Fx::new(1);
    let other = Fx::new(1);
    let b = other.build(1, None);
    refused(&fx, &b, now(), false, |e| {
        matches!(e, DbError::RootMismatch { .. })
    });
    assert!(matches!(
        Store::open(&fx.state()).unwrap().rollback(now()),
        Err(DbError::State(_))
    ));
}

#[test]
fn configuration_targets_are_checked() {
    let fx = Fx::new(1);
    let rules = ("rules/a.rules", RULE.as_bytes().to_vec(), TargetKind::Rules);
    let ab = |text: &str| {
        (
            "config/attack-blocker.yaml",
            text.as_bytes().to_vec(),
            TargetKind::AttackBlocker,
        )
    };
    let reference = |text: &str| {
        (
            "config/reference.config",
            text.as_bytes().to_vec(),
            TargetKind::Reference,
        )
    };
    let b = craft(
        &fx,
        "badab.tar",
        1,
        &fx.keys,
        &[
            rules.clone(),
            ab("attack_blocker:\n  detectors:\n    syn_flood: { count: 0 }\n"),
        ],
    );
    refused(
        &fx,
        &b,
        now(),
        false,
        |e| matches!(e, DbError::BadContent { name, message } if name == "config/attack-blocker.yaml" && message.contains("syn_flood.count")),
    );
    // The block duration, the action and the switches are the admin's alone.
    let b = craft(
        &fx,
        "abminutes.tar",
        1,
        &fx.keys,
        &[rules.clone(), ab("attack_blocker:\n  block_minutes: 120\n")],
    );
    refused(
        &fx,
        &b,
        now(),
        false,
        |e| matches!(e, DbError::BadContent { message, .. } if message.contains("attack_blocker may hold only detectors")),
    );
    // `svm db verify` parses them too.
    let opts = Options {
        now: now(),
        allow_expired: false,
    };
    let root = fx.keys_dir.join("root.json");
    assert!(matches!(
        cmd::verify_bundle(&root, &b, &opts),
        Err(DbError::BadContent { name, .. }) if name == "config/attack-blocker.yaml"
    ));
    let b = craft(
        &fx,
        "otherkey.tar",
        1,
        &fx.keys,
        &[rules.clone(), ab("mode: monitoring\n")],
    );
    refused(
        &fx,
        &b,
        now(),
        false,
        |e| matches!(e, DbError::BadContent { message, .. } if message.contains("may hold only attack_blocker")),
    );
    let b = craft(
        &fx,
        "badref.tar",
        1,
        &fx.keys,
        &[rules.clone(), reference("config reference: url\n")],
    );
    refused(
        &fx,
        &b,
        now(),
        false,
        |e| matches!(e, DbError::BadContent { name, .. } if name == "config/reference.config"),
    );
    let good = craft(
        &fx,
        "good.tar",
        1,
        &fx.keys,
        &[
            rules,
            ab("attack_blocker:\n  detectors:\n    syn_flood: { count: 500, window_secs: 2 }\n"),
            reference(
                "# refs\nconfig reference: url http://\nconfig reference: cve http://cve.mitre.org/cgi-bin/cvename.cgi?name=\n",
            ),
        ],
    );
    cmd::verify_bundle(&root, &good, &opts).unwrap();
    assert_eq!(fx.update(&good).unwrap(), 1);
    let s = Store::open(&fx.state()).unwrap().status(now()).unwrap();
    let defs = s.current.unwrap().report.attack_blocker;
    assert_eq!(
        serde_json::to_value(defs).unwrap(),
        serde_json::json!({"syn_flood": {"count": 500, "window_secs": 2}})
    );
}

/// The fuzz target's body on its seeds, on a real bundle and on every 97th prefix of it: no
/// panic, and nothing passes as signed by the fuzz root's keys.
#[test]
fn fuzz_body_on_seeds_and_truncations() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/db_metadata");
    let mut n = 0;
    for e in std::fs::read_dir(seeds).unwrap() {
        super::fuzz_metadata(&std::fs::read(e.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n >= 5);
    let fx = Fx::new(1);
    let bytes = std::fs::read(fx.build(1, None)).unwrap();
    for len in (0..bytes.len()).step_by(97) {
        super::fuzz_metadata(&bytes[..len]);
    }
}

/// What a kill -9 can leave at each step of an update: a staging directory, the final set
/// renamed but not linked, `previous` relinked but not `current`. The installed set stays usable
/// and the next update completes and clears the leftovers.
#[test]
fn leftovers_of_a_killed_update() {
    let fx = Fx::new(1);
    fx.update(&fx.build(1, None)).unwrap();
    let v2 = fx.build(2, None);
    // Killed while staging.
    let sets = fx.state().join("sets");
    std::fs::create_dir_all(sets.join(".staging-999/targets/rules")).unwrap();
    std::fs::write(sets.join(".staging-999/targets/rules/a.rules"), "partial").unwrap();
    // Killed after previous was relinked, before current: both name v1.
    let cur = std::fs::read_link(fx.state().join("current")).unwrap();
    std::os::unix::fs::symlink(&cur, fx.state().join("previous")).unwrap();
    assert_eq!(fx.current(), Some(1));
    // Killed after the staged v2 was renamed to its final name: install it once, then put that
    // state back by hand (v2's directory present, current still v1, trusted still v1).
    let trusted = std::fs::read(fx.state().join("trusted.json")).unwrap();
    fx.update(&v2).unwrap();
    let v2_dir = std::fs::read_link(fx.state().join("current")).unwrap();
    std::fs::remove_file(fx.state().join("current")).unwrap();
    std::os::unix::fs::symlink(&cur, fx.state().join("current")).unwrap();
    std::fs::write(fx.state().join("trusted.json"), trusted).unwrap();
    std::fs::create_dir_all(sets.join(".staging-998")).unwrap();
    assert!(fx.state().join(&v2_dir).is_dir());
    assert_eq!(fx.current(), Some(1));
    assert_eq!(fx.update(&v2).unwrap(), 2);
    let s = Store::open(&fx.state()).unwrap().status(now()).unwrap();
    assert_eq!(s.previous.unwrap().version, 1);
    let left: Vec<String> = std::fs::read_dir(&sets)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|n| !n.starts_with(".staging")), "{left:?}");
    // Killed after the switch, before trusted.json: v2 in use, trusted still v1. Installing v2
    // again keeps v2 in place and v1 as previous, and only writes the trusted state.
    std::fs::write(
        fx.state().join("trusted.json"),
        std::fs::read(fx.state().join("trusted.json"))
            .map(|t| String::from_utf8(t).unwrap().replace(": 2", ": 1"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(fx.update(&v2).unwrap(), 2);
    let s = Store::open(&fx.state()).unwrap().status(now()).unwrap();
    assert_eq!(s.current.unwrap().version, 2);
    assert_eq!(s.previous.unwrap().version, 1);
    assert_eq!(s.trusted.versions.targets, 2);
}

/// `keygen --rotate-from`: a root's next version signed by the old and the new root keys.
fn rotate(fx: &Fx, from: &Path, name: &str) -> PathBuf {
    let dir = fx.p(name);
    cmd::keygen(
        &KeygenArgs {
            dir: dir.clone(),
            threshold: 1,
            expires: None,
            rotate_from: Some(from.to_owned()),
        },
        now(),
    )
    .unwrap();
    dir
}

#[test]
fn root_rotation() {
    let fx = Fx::new(1);
    assert_eq!(fx.update(&fx.build(1, None)).unwrap(), 1);
    // The next root, signed by both: a bundle signed by the new keys installs, and the state
    // directory trusts the new root from then on (the old --root given again is ignored).
    let k2 = rotate(&fx, &fx.keys_dir, "keys2");
    let v2 = fx.build_with(&k2, 2, None);
    let opts = Options {
        now: now(),
        allow_expired: false,
    };
    let v = cmd::verify_bundle(&fx.keys_dir.join("root.json"), &v2, &opts).unwrap();
    assert!(v.new_root.is_some());
    assert_eq!(fx.update(&v2).unwrap(), 2);
    assert_eq!(
        std::fs::read(fx.state().join("root.json")).unwrap(),
        std::fs::read(k2.join("root.json")).unwrap()
    );
    // The old keys no longer sign: their bundle carries the old root.
    refused(&fx, &fx.build(3, None), now(), false, |e| {
        matches!(e, DbError::RootMismatch { trusted: 2, got: 1 })
    });
    // A version 3 root signed by its own keys only (not by the trusted root's): refused.
    let k3 = fx.p("keys3");
    cmd::keygen(
        &KeygenArgs {
            dir: k3.clone(),
            threshold: 1,
            expires: None,
            rotate_from: None,
        },
        now(),
    )
    .unwrap();
    let (bytes, keys) = cmd::load_keys(&k3).unwrap();
    let (mut root, _) = meta::trusted_root(&bytes).unwrap();
    root.version = 3;
    let own: Vec<&SigningKey> = keys[&Role::Root].iter().collect();
    std::fs::write(k3.join("root.json"), meta::sign(&root, &own).unwrap()).unwrap();
    refused(&fx, &fx.build_with(&k3, 3, None), now(), false, |e| {
        matches!(e, DbError::UnknownKeys { role: "root" })
    });
    // A jump of two versions: refused.
    let k4 = rotate(&fx, &rotate(&fx, &k2, "keys3b"), "keys4");
    refused(&fx, &fx.build_with(&k4, 3, None), now(), false, |e| {
        matches!(e, DbError::RootMismatch { trusted: 2, got: 4 })
    });
    // One step at a time goes through.
    let k3b = fx.p("keys3b");
    assert_eq!(fx.update(&fx.build_with(&k3b, 3, None)).unwrap(), 3);
    assert_eq!(fx.update(&fx.build_with(&k4, 4, None)).unwrap(), 4);
}
