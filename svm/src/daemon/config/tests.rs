//! Tests of the configuration reader.

use super::*;

#[test]
fn inline_example_parses() {
    let c = Config::from_yaml(
        "backend: af-packet\nmode: inline\nvm_interface: a\nnetwork_interface: b\nworkers: 2\n\
         eve: /tmp/eve.json\naf_packet: {block_count: 8, fanout_hash: kernel}\n",
    )
    .unwrap();
    assert_eq!(c.workers, 2);
    assert_eq!(c.af_packet.block_count, 8);
    assert_eq!(
        c.attach,
        AttachConfig::Inline {
            vm_interface: "a".into(),
            network_interface: "b".into()
        }
    );
}

#[test]
fn every_problem_is_reported_with_its_key() {
    let e = Config::from_yaml(
        "backend: netmap\nmode: inline\nvm_interface: a\nworkers: 0\nflows: {max: x}\n\
         af_packet: {block_size: 5000, colour: red}\nextra: 1\n",
    )
    .unwrap_err();
    let keys: Vec<&str> = e.0.iter().map(|i| i.key.as_str()).collect();
    for k in [
        "backend",
        "network_interface",
        "workers",
        "flows.max",
        "af_packet.block_size",
        "af_packet.colour",
        "extra",
    ] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
}

/// The configuration is read by the policy crate's tree reader: its messages echo what was
/// found (`got 0`, `got "x"`), a key with nothing after it counts as absent (so a required one
/// is "required", as in the policy), and a duplicate key is refused as the policy refuses one.
#[test]
fn problems_are_told_in_the_policy_readers_words() {
    let e = Config::from_yaml(
        "backend: af-packet\nmode: inline\nvm_interface: a\nnetwork_interface:\nworkers: 0\n\
         flows: {max: x}\nrules: {stream: {midstream: 1}}\n",
    )
    .unwrap_err();
    let said = |key: &str| {
        e.0.iter()
            .find(|i| i.key == key)
            .map(|i| i.message.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        said("network_interface"),
        "required for mode: inline",
        "{e}"
    );
    assert!(said("workers").ends_with(", got 0"), "{e}");
    assert!(
        said("workers").starts_with("expected an integer 1..="),
        "{e}"
    );
    assert!(said("flows.max").ends_with("got \"x\""), "{e}");
    assert_eq!(
        said("rules.stream.midstream"),
        "expected true or false, got 1",
        "{e}"
    );
    let e = Config::from_yaml("backend: af-packet\nworkers: 1\nworkers: 2\n").unwrap_err();
    assert_eq!(e.0.len(), 1, "{e}");
    assert!(e.0[0].message.contains("duplicate key \"workers\""), "{e}");
}

const DEPLOY: &str = include_str!("../../../../deploy/svm.yaml");

#[test]
fn deploy_example_starts_as_it_is() {
    let r = Config::read_checked(DEPLOY).unwrap();
    assert_eq!(
        r.issues,
        [],
        "the shipped configuration must start as it is"
    );
    let c = r.config.unwrap();
    assert!(c.state_dir.is_some() && c.eve.is_some());
    assert!(c.api.is_none() && c.central.is_none() && c.nsx.is_none() && c.rules.is_none());
}

/// The shipped file with its optional sections uncommented.
fn deploy_with_optional_sections() -> String {
    const SECTIONS: [&str; 8] = [
        "policy:",
        "rules:",
        "api:",
        "central:",
        "nsx:",
        "inventory:",
        "outputs:",
        "db:",
    ];
    DEPLOY
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if SECTIONS.iter().any(|s| rest.starts_with(s)) => rest,
            Some(rest) if rest.starts_with("  ") => rest,
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn deploy_example_optional_sections_parse() {
    let text = deploy_with_optional_sections();
    let c = Config::from_yaml(&text).unwrap();
    assert!(c.policy.is_some());
    assert!(c.api.is_some() && c.central.is_some() && c.nsx.is_some());
    assert!(c.db.as_ref().is_some_and(|d| d.mirror.is_some()));
    assert_eq!(c.inventory.len(), 1);
    assert!(c.outputs.syslog.is_some());
    let r = c.rules.unwrap();
    assert_eq!(r.files, ["/etc/svm/rules/*.rules"]);
    assert!(r.address_groups.iter().any(|(k, _)| k == "HOME_NET"));
    assert!(r.vars_file.is_some() && r.threshold_file.is_some());
}

#[test]
fn db_section() {
    let base = "backend: af-packet\nmode: mirror\ninterface: a\n";
    let c = Config::from_yaml(&format!(
        "{base}state_dir: /var/lib/svm\ndb: {{mirror: \"https://m.example/db/\", ca: /etc/ca.crt}}\n"
    ))
    .unwrap();
    let d = c.db.unwrap();
    assert_eq!(d.dir, std::path::Path::new("/var/lib/svm/db"));
    assert_eq!(d.mirror.as_deref(), Some("https://m.example/db"));
    assert_eq!((d.interval_secs, d.jitter_secs), (3600, 300));
    let e = Config::from_yaml(&format!(
        "{base}db: {{mirror: \"http://m.example\", interval_secs: 0, colour: red}}\n"
    ))
    .unwrap_err();
    let keys: Vec<&str> = e.0.iter().map(|i| i.key.as_str()).collect();
    for k in ["db", "db.mirror", "db.ca", "db.interval_secs", "db.colour"] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
}

#[test]
fn every_missing_file_is_reported_in_one_run() {
    // The optional sections name files that do not exist here: every one is reported, with
    // the keys' own problems, in one reading.
    let text = format!("{}\nburst: 0\n", deploy_with_optional_sections());
    let text = text.replace("burst: 64", "");
    let r = Config::read_checked(&text).unwrap();
    let keys: Vec<&str> = r.issues.iter().map(|i| i.key.as_str()).collect();
    for k in [
        "burst",
        "api.cert",
        "api.key",
        "api.client_ca",
        "api.crl[0]",
        "central.ca",
        "central.cert",
        "central.key",
        "nsx.ca",
        "nsx.password_file",
    ] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
    assert!(r.config.is_none());
    assert_eq!(
        r.policy.as_deref(),
        Some(std::path::Path::new("/etc/svm/policy.yaml"))
    );
    assert!(
        r.rules.is_some(),
        "the rules section is kept for its file checks"
    );
}

/// An EVE path that cannot be written is refused, with and without the control plane
/// (issue 21, defect 4: with `state_dir` it was only counted by a metric).
#[test]
fn an_unwritable_eve_path_is_refused_with_and_without_state_dir() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("plain");
    std::fs::write(&file, "").unwrap();
    let under_file = file.join("eve.json");
    let base = "mode: inline\nvm_interface: a\nnetwork_interface: b\n";
    let state = d.path().join("state");
    for (eve, state_dir) in [
        (under_file.clone(), None),
        (under_file.clone(), Some(&state)),
        (d.path().to_owned(), None),
        (d.path().to_owned(), Some(&state)),
    ] {
        let mut text = format!("{base}eve: {}\n", eve.display());
        if let Some(s) = state_dir {
            text.push_str(&format!("state_dir: {}\n", s.display()));
        }
        let r = Config::read_checked(&text).unwrap();
        assert!(r.config.is_some(), "the keys are right: {:?}", r.issues);
        let keys: Vec<&str> = r.issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["eve"], "{text}");
        assert!(
            r.issues[0].message.contains("cannot be written"),
            "{:?}",
            r.issues
        );
    }
    // outputs.eve.path too.
    let text = format!(
        "{base}state_dir: {}\noutputs: {{eve: {{path: {}}}}}\n",
        state.display(),
        under_file.display()
    );
    let r = Config::read_checked(&text).unwrap();
    let keys: Vec<&str> = r.issues.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, ["outputs.eve.path"]);
    // A missing file in a missing directory is fine (both are created), and the check leaves
    // nothing behind.
    let fresh = d.path().join("logs/svm/eve.json");
    let text = format!("{base}eve: {}\n", fresh.display());
    assert_eq!(Config::read_checked(&text).unwrap().issues, []);
    assert!(!d.path().join("logs").exists());
    let existing = d.path().join("eve.json");
    let text = format!(
        "{base}eve: {}\nstate_dir: {}\n",
        existing.display(),
        state.display()
    );
    assert_eq!(Config::read_checked(&text).unwrap().issues, []);
    assert!(!existing.exists() && !state.exists());
}

#[test]
fn a_state_dir_under_a_file_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("plain");
    std::fs::write(&file, "").unwrap();
    for dir in [file.clone(), file.join("state")] {
        let text = format!(
            "mode: inline\nvm_interface: a\nnetwork_interface: b\nstate_dir: {}\n",
            dir.display()
        );
        let r = Config::read_checked(&text).unwrap();
        let keys: Vec<&str> = r.issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["state_dir"], "{:?}", r.issues);
    }
}

/// `svm run`'s loading: the keys, the files, the policy and the rule files, all in one report.
#[test]
fn the_daemon_reports_keys_files_policy_and_rules_at_once() {
    let d = tempfile::tempdir().unwrap();
    let policy = d.path().join("policy.yaml");
    std::fs::write(&policy, "mode: strict\n").unwrap();
    let cfg = d.path().join("svm.yaml");
    std::fs::write(
        &cfg,
        format!(
            "mode: inline\nvm_interface: a\nnetwork_interface: b\nworkers: 0\n\
             policy: {}\neve: {}\nrules: {{files: [{}/missing.rules]}}\n",
            policy.display(),
            d.path().display(),
            d.path().display()
        ),
    )
    .unwrap();
    let e = crate::daemon::load(&cfg).unwrap_err();
    assert_eq!(e.exit_code(), crate::cli::Exit::Syntax);
    let text = e.to_string();
    for k in ["workers:", "eve:", "policy:", "rules.files[0]:"] {
        assert!(text.contains(k), "{k} missing from:\n{text}");
    }
    assert!(
        text.contains("mode"),
        "the policy's own problem is named: {text}"
    );
    // A missing policy file is reported with the rest too.
    std::fs::remove_file(&policy).unwrap();
    let text = crate::daemon::load(&cfg).unwrap_err().to_string();
    assert!(
        text.contains("policy:") && text.contains("workers:"),
        "{text}"
    );
}

#[test]
fn rules_section_parses() {
    let c = Config::from_yaml(
        "mode: mirror\ninterface: x\nrules:\n  files: [/r/*.rules, /r/local.rules]\n  \
         vars_file: /etc/suricata/suricata.yaml\n  \
         address_groups: {HOME_NET: \"[10.0.0.0/8]\", EXTERNAL_NET: \"!$HOME_NET\"}\n  \
         port_groups: {HTTP_PORTS: 8080}\n  threshold_file: /r/threshold.config\n  \
         classification_file: /r/classification.config\n  \
         stream: {midstream: true, depth: 65536, memcap: 67108864, async_oneside: true, inline: true, \
         urgent_policy: oob, urgent_oob_limit_policy: drop}\n\
         \x20 tls: {encryption_handling: full}\n\
         \x20 dns: {tcp_detection_ports: \"[53, 1053]\", udp_detection_ports: 5353}\n  \
         host_os_policy: {old-linux: [2.2.2.2], windows: [0.0.0.0/0]}\n",
    )
    .unwrap();
    let r = c.rules.unwrap();
    assert_eq!(
        r.host_os.lookup(0x0202_0202, false),
        dataplane::stream::OsPolicy::OldLinux
    );
    assert_eq!(
        r.host_os.lookup(0x0101_0101, false),
        dataplane::stream::OsPolicy::Windows
    );
    let bad = Config::from_yaml(
        "mode: mirror\ninterface: x\nrules:\n  files: [/r/a.rules]\n  \
         host_os_policy: {plan9: [1.2.3.4], linux: [1.2.3.4/99]}\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        bad.contains("rules.host_os_policy.plan9") && bad.contains("rules.host_os_policy.linux"),
        "{bad}"
    );
    assert_eq!(r.files, ["/r/*.rules", "/r/local.rules"]);
    assert_eq!(
        r.port_groups,
        [("HTTP_PORTS".to_owned(), "8080".to_owned())]
    );
    assert_eq!(r.address_groups.len(), 2);
    assert!(r.midstream);
    assert_eq!(r.stream_depth, 65536);
    assert_eq!(r.stream_memcap, 64 << 20);
    assert!(r.async_oneside);
    assert!(r.inline);
    assert_eq!(r.urgent_policy, dataplane::stream::UrgentPolicy::Oob);
    assert_eq!(
        r.urgent_oob_limit_policy,
        dataplane::stream::UrgentPolicy::Drop
    );
    assert!(r.tls_inspect_encrypted);
    let d = r.detection_ports;
    assert!(d.dns_tcp.contains(1053) && d.dns_tcp.contains(53) && !d.dns_tcp.contains(5353));
    assert!(d.dns_udp.contains(5353) && !d.dns_udp.contains(53));
    assert!(r.threshold_file.is_some() && r.classification_file.is_some());
    assert!(
        Config::from_yaml("mode: mirror\ninterface: x\n")
            .unwrap()
            .rules
            .is_none()
    );
}

#[test]
fn rules_section_problems_are_all_reported() {
    let e = Config::from_yaml(
        "mode: mirror\ninterface: x\nrules:\n  files: []\n  \
         address_groups: {\"HOME NET\": x, EXTERNAL_NET: [a]}\n  port_groups: 5\n  \
         threshold_file: 7\n  stream: {midstream: maybe, depth: 0, memcap: 1024, window: 1, \
         urgent_policy: ignore, urgent_oob_limit_policy: oob}\n  \
         dns: {tcp_detection_ports: \"!53\", udp_detection_ports: [53], port: 1}\n  \
         colour: red\n",
    )
    .unwrap_err();
    let keys: Vec<&str> = e.0.iter().map(|i| i.key.as_str()).collect();
    for k in [
        "rules.files",
        "rules.address_groups.HOME NET",
        "rules.address_groups.EXTERNAL_NET",
        "rules.port_groups",
        "rules.threshold_file",
        "rules.stream.midstream",
        "rules.stream.depth",
        "rules.stream.memcap",
        "rules.stream.window",
        "rules.stream.urgent_policy",
        "rules.stream.urgent_oob_limit_policy",
        "rules.dns.tcp_detection_ports",
        "rules.dns.udp_detection_ports",
        "rules.dns.port",
        "rules.colour",
    ] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
}

#[test]
fn control_plane_problems_are_all_reported() {
    let e = Config::from_yaml(
        "mode: inline\nvm_interface: a\nnetwork_interface: b\n\
         api: {listen: nowhere, cert: c, admin: []}\ncentral: {url: http://x, ca: a}\n\
         nsx: {url: https://n, auth: token}\ninventory: [{id: x}]\n",
    )
    .unwrap_err();
    let keys: Vec<&str> = e.0.iter().map(|i| i.key.as_str()).collect();
    for k in [
        "api.listen",
        "api.key",
        "api.client_ca",
        "api.admin",
        "central.url",
        "central.cert",
        "nsx.auth",
        "nsx.user",
        "inventory",
        "api",
        "central",
        "nsx",
    ] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
}

#[test]
fn mirror_needs_interface() {
    let e = Config::from_yaml("mode: mirror\ninject_interface: x\n").unwrap_err();
    assert!(e.to_string().contains("interface: required"));
}

#[cfg(not(feature = "dpdk"))]
#[test]
fn dpdk_without_feature_is_refused() {
    let e = Config::from_yaml(
        "backend: dpdk\nmode: mirror\nport: 0000:00:04.0\neal_args: [-a, 00:04.0]\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("built without DPDK"), "{e}");
}

#[test]
fn eal_devices_are_read_by_port_name() {
    let args: Vec<String> = [
        "--no-huge",
        "--vdev=net_af_packet0,iface=veth0",
        "--vdev",
        "net_pcap1,rx_pcap=x",
        "-a",
        "00:04.0",
        "-a0000:00:05.0,foo=1",
        "--allow=0000:00:06.0",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(
        eal_devices(&args),
        [
            "net_af_packet0",
            "net_pcap1",
            "0000:00:04.0",
            "0000:00:05.0",
            "0000:00:06.0"
        ]
    );
}

#[test]
fn dpdk_ports_and_eal_args_are_validated() {
    let e = Config::from_yaml(
        "backend: dpdk\nmode: inline\nvm_interface: a\nvm_port: net_af_packet0\n\
         network_port: net_af_packet9\nworkers: 3\n\
         eal_args: [--no-huge, -l, \"0-1\", \"--vdev=net_af_packet0,iface=a\", \"--vdev=net_af_packet1,iface=b\"]\n",
    )
    .unwrap_err();
    let keys: Vec<&str> = e.0.iter().map(|i| i.key.as_str()).collect();
    for k in ["vm_interface", "workers", "network_port"] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
    assert!(!keys.contains(&"vm_port"), "{keys:?}");
    let e = Config::from_yaml("backend: dpdk\nmode: mirror\nport: p\neal_args: [--no-huge]\n")
        .unwrap_err();
    assert!(e.to_string().contains("names no device"), "{e}");
    let e = Config::from_yaml("mode: mirror\ninterface: x\nport: p\n").unwrap_err();
    assert!(
        e.to_string().contains("port: only for backend: dpdk"),
        "{e}"
    );
}

#[test]
fn eal_lcores_counts_lists_and_masks() {
    let v = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(eal_lcores(&v(&["--no-huge", "-l", "0-1"])), Some(2));
    assert_eq!(eal_lcores(&v(&["-l0,2-4,3"])), Some(4));
    assert_eq!(eal_lcores(&v(&["-c", "0x5"])), Some(2));
    assert_eq!(eal_lcores(&v(&["-c", "f"])), Some(4));
    assert_eq!(eal_lcores(&v(&["--lcores=0@1,1@2", "-l", "0"])), None);
    assert_eq!(eal_lcores(&v(&["--no-huge"])), None);
    assert_eq!(eal_lcores(&v(&["-l", "x"])), None);
}

#[cfg(feature = "dpdk")]
#[test]
fn dpdk_workers_and_distribution_parse() {
    let c = Config::from_yaml(
        "backend: dpdk\nmode: inline\nvm_port: net_pcap0\nnetwork_port: net_pcap1\nworkers: 2\n\
         dpdk: {distribution: software, hash: flows, ring_size: 512}\n\
         eal_args: [--no-huge, -l, \"0-1\", \"--vdev=net_pcap0,iface=a\", \"--vdev=net_pcap1,iface=b\"]\n",
    )
    .unwrap();
    assert_eq!(c.workers, 2);
    assert_eq!(
        c.dpdk,
        DpdkSettings {
            distribution: DpdkDistribution::Software,
            hash: DpdkHash::Flows,
            ring_size: 512
        }
    );
    let e = Config::from_yaml(
        "backend: dpdk\nmode: mirror\nport: net_pcap0\n\
         dpdk: {distribution: magic, hash: ports, ring_size: 100, x: 1}\n\
         eal_args: [\"--vdev=net_pcap0,iface=a\"]\n",
    )
    .unwrap_err();
    let keys: Vec<&str> = e.0.iter().map(|i| i.key.as_str()).collect();
    for k in ["dpdk.distribution", "dpdk.hash", "dpdk.ring_size", "dpdk.x"] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
}

#[test]
fn dpdk_section_is_refused_on_af_packet() {
    let e = Config::from_yaml("mode: mirror\ninterface: x\ndpdk: {distribution: software}\n")
        .unwrap_err();
    assert!(
        e.to_string().contains("dpdk: only for backend: dpdk"),
        "{e}"
    );
}

#[cfg(feature = "dpdk")]
#[test]
fn dpdk_inline_parses() {
    let c = Config::from_yaml(
        "backend: dpdk\nmode: inline\nvm_port: net_af_packet0\nnetwork_port: net_af_packet1\n\
         eal_args: [--no-huge, \"--vdev=net_af_packet0,iface=a\", \"--vdev=net_af_packet1,iface=b\"]\n",
    )
    .unwrap();
    assert_eq!(c.backend, Backend::Dpdk);
    assert_eq!(
        c.attach,
        AttachConfig::Inline {
            vm_interface: "net_af_packet0".into(),
            network_interface: "net_af_packet1".into()
        }
    );
}

#[test]
fn api_crl_files_are_read_and_checked() {
    let d = tempfile::tempdir().unwrap();
    let base = "mode: inline\nvm_interface: a\nnetwork_interface: b\nstate_dir: /var/lib/svm\n\
                api: {listen: \"127.0.0.1:8443\", cert: c, key: k, client_ca: ca, admin: [CN=a], ";
    let c = Config::from_yaml(&format!("{base}crl: [one.crl, two.crl]}}\n")).unwrap();
    let api = c.api.unwrap();
    assert_eq!(api.crl, [PathBuf::from("one.crl"), "two.crl".into()]);
    let none = Config::from_yaml(&format!("{base}}}\n")).unwrap();
    assert!(none.api.unwrap().crl.is_empty());
    // A file without a CRL (a certificate is not one) is refused with its key.
    let cert = d.path().join("not-a-crl.pem");
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let r = Config::read_checked(&format!("{base}crl: [{}]}}\n", cert.display())).unwrap();
    let crl = r.issues.iter().find(|i| i.key == "api.crl[0]").unwrap();
    assert!(
        crl.message.contains("no certificate revocation list"),
        "{}",
        crl.message
    );
}

#[test]
fn the_nsx_password_comes_from_one_place_and_its_file_must_be_private() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let base = "mode: inline\nvm_interface: a\nnetwork_interface: b\nstate_dir: /var/lib/svm\n\
                nsx: {url: \"https://n\", user: u, ca: c, ";
    let c = Config::from_yaml(&format!("{base}password: inline-secret}}\n")).unwrap();
    let nsx = c.nsx.unwrap();
    assert_eq!(nsx.password.read().unwrap().expose(), "inline-secret");
    assert!(!format!("{nsx:?}").contains("inline-secret"));

    let file = d.path().join("nsx-password");
    std::fs::write(&file, "from-a-file\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let with_file = format!("{base}password_file: {}}}\n", file.display());
    let c = Config::from_yaml(&with_file).unwrap();
    assert_eq!(c.nsx.unwrap().password, NsxPassword::File(file.clone()));
    let checked = Config::read_checked(&with_file).unwrap();
    assert!(
        !checked.issues.iter().any(|i| i.key == "nsx.password_file"),
        "{:?}",
        checked.issues
    );
    // Group-readable: refused at validation with its key.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let checked = Config::read_checked(&with_file).unwrap();
    let issue = checked
        .issues
        .iter()
        .find(|i| i.key == "nsx.password_file")
        .unwrap();
    assert!(issue.message.contains("chmod 0600"), "{}", issue.message);
    assert!(!issue.message.contains("from-a-file"));

    // None, or two at once.
    for text in [
        format!("{base}}}\n"),
        format!("{base}password: a, password_file: {}}}\n", file.display()),
    ] {
        let e = Config::from_yaml(&text).unwrap_err();
        assert!(e.0.iter().any(|i| i.key == "nsx.password"), "{e:?}");
    }
}

#[test]
fn run_as_names_a_user_other_than_root() {
    let base = "mode: inline\nvm_interface: a\nnetwork_interface: b\n";
    let c = Config::from_yaml(&format!("{base}run_as: nobody\n")).unwrap();
    assert_eq!(c.run_as.as_deref(), Some("nobody"));
    assert!(Config::from_yaml(base).unwrap().run_as.is_none());
    let dpdk = "backend: dpdk\nmode: inline\nvm_port: a\nnetwork_port: b\nrun_as: nobody\n";
    let e = Config::from_yaml(dpdk).unwrap_err();
    assert!(
        e.0.iter()
            .any(|i| i.key == "run_as" && i.message.contains("DPDK")),
        "{e:?}"
    );
    for (user, says) in [
        ("root", "root is what the daemon gives up"),
        ("\"0\"", "root is what the daemon gives up"),
        ("no-such-user-svm", "no user \"no-such-user-svm\""),
    ] {
        let e = Config::from_yaml(&format!("{base}run_as: {user}\n")).unwrap_err();
        let issue = e.0.iter().find(|i| i.key == "run_as").unwrap();
        assert!(issue.message.contains(says), "{user}: {}", issue.message);
    }
}

#[test]
fn security_seccomp_defaults_to_enforce_and_is_off_with_dpdk() {
    use crate::daemon::seccomp::Mode;
    let base = "mode: inline\nvm_interface: a\nnetwork_interface: b\n";
    assert_eq!(Config::from_yaml(base).unwrap().seccomp, Mode::Enforce);
    for (word, mode) in [
        ("enforce", Mode::Enforce),
        ("log", Mode::Log),
        ("off", Mode::Off),
    ] {
        let c = Config::from_yaml(&format!("{base}security:\n  seccomp: {word}\n")).unwrap();
        assert_eq!(c.seccomp, mode, "{word}");
    }
    let e =
        Config::from_yaml(&format!("{base}security: {{seccomp: strict, other: 1}}\n")).unwrap_err();
    assert!(
        e.0.iter()
            .any(|i| i.key == "security.seccomp" && i.message.contains("enforce, log or off")),
        "{e:?}"
    );
    assert!(e.0.iter().any(|i| i.key == "security.other"), "{e:?}");
    let dpdk = "backend: dpdk\nmode: mirror\nport: 0000:00:04.0\neal_args: [-a, 00:04.0]\n";
    #[cfg(feature = "dpdk")]
    assert_eq!(Config::from_yaml(dpdk).unwrap().seccomp, Mode::Off);
    let e = Config::from_yaml(&format!("{dpdk}security: {{seccomp: enforce}}\n")).unwrap_err();
    assert!(
        e.0.iter()
            .any(|i| i.key == "security.seccomp" && i.message.contains("DPDK")),
        "{e:?}"
    );
}
