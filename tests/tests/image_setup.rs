//! The image's first-boot settings reader (`deploy/image/rootfs/usr/lib/svm/svm-setup check`) on
//! this machine: the built-in defaults, and the OVF environment through VMware Tools'
//! `guestinfo.ovfEnv`. VMware's backdoor cannot run here, so `vmware-checkvm` and
//! `vmware-rpctool` are small scripts that answer as open-vm-tools' do (exit 0 on VMware; the
//! variable's value on stdout, or "No value found" and exit 1). The cidata and ISO sources need
//! block devices and are covered by the boot test (`make image-test`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

const ENV_OK: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1"
     xmlns:oe="http://schemas.dmtf.org/ovf/environment/1" oe:id="">
   <PlatformSection><Kind>VMware ESXi</Kind><Version>8.0.2</Version></PlatformSection>
   <PropertySection>
         <Property oe:key="svm.hostname" oe:value="svm-07"/>
         <Property oe:key="svm.mgmt_address" oe:value="192.0.2.20"/>
         <Property oe:key="svm.mgmt_prefix" oe:value="24"/>
         <Property oe:key="svm.management_url" oe:value="https://mgmt.example:9443"/>
         <Property oe:key="svm.management_pin" oe:value="sha256//zSoZo/df5fo3knQNvDZVJsggiHbSrBpCYKZwx812x7M="/>
         <Property oe:key="svm.enrollment_token" oe:value="3f9c2b7a41d8e6f0a2b4c6d8"/>
         <Property oe:key="svm.data_vlans" oe:value=""/>
         <Property oe:key="svm.ntp" oe:value="ntp1.example,ntp2.example"/>
   </PropertySection>
</Environment>
"#;

/// `svm-setup check` with the fake tools; `on_vmware` is what `vmware-checkvm` says, `env` the
/// value of guestinfo.ovfEnv (None: not set). (exit code, stdout).
fn check(on_vmware: bool, env: Option<&str>) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (name, body) in [
        (
            "vmware-checkvm",
            format!("#!/bin/sh\nexit {}\n", if on_vmware { 0 } else { 1 }),
        ),
        (
            "vmware-rpctool",
            "#!/bin/sh\n[ \"$1\" = \"info-get guestinfo.ovfEnv\" ] && [ -r \"$FAKE_OVF\" ] && \
             exec cat \"$FAKE_OVF\"\necho 'No value found'\nexit 1\n"
                .to_owned(),
        ),
    ] {
        let p = bin.join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let ovf = dir.path().join("ovf-env.xml");
    if let Some(text) = env {
        std::fs::write(&ovf, text).unwrap();
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = Command::new("bash")
        .arg(repo().join("deploy/image/rootfs/usr/lib/svm/svm-setup"))
        .arg("check")
        .env(
            "SVM_SETUP_DEFAULTS",
            repo().join("deploy/image/rootfs/usr/lib/svm/defaults.conf"),
        )
        .env("SVM_SETUP_STATE", dir.path().join("state"))
        .env("SVM_SETUP_ETC", dir.path().join("etc"))
        .env("SVM_SETUP_RUN", dir.path().join("run"))
        .env("FAKE_OVF", &ovf)
        .env("PATH", path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn guestinfo_ovf_environment_overrides_the_defaults() {
    let (code, out) = check(true, Some(ENV_OK));
    assert_eq!(code, 0, "{out}");
    for line in [
        "hostname=svm-07  # OVF environment (guestinfo)",
        "mgmt_address=192.0.2.20  # OVF environment (guestinfo)",
        "management_url=https://mgmt.example:9443  # OVF environment (guestinfo)",
        // Masked: the token is a secret.
        "enrollment_token=(set)  # OVF environment (guestinfo)",
        // An empty vApp property means "not set here".
        "data_vlans=  # defaults",
        "mode=inline  # defaults",
        // The last property: it shares the document's last line, which ends without a newline.
        "ntp=ntp1.example,ntp2.example  # OVF environment (guestinfo)",
    ] {
        assert!(out.lines().any(|l| l == line), "no '{line}' in:\n{out}");
    }
    assert!(!out.contains("3f9c2b7a41d8e6f0a2b4c6d8"), "{out}");
}

#[test]
fn every_problem_of_the_guestinfo_environment_is_listed_with_its_source() {
    let bad = ENV_OK
        .replace("192.0.2.20", "192.0.2.300")
        .replace("svm.data_vlans", "svm.data_vlan");
    let (code, out) = check(true, Some(&bad));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("OVF environment (guestinfo): unknown property svm.data_vlan"),
        "{out}"
    );
    assert!(
        out.contains("mgmt_address = '192.0.2.300' (from OVF environment (guestinfo))"),
        "{out}"
    );
    assert!(out.contains("2 problem(s)"), "{out}");

    let (code, out) = check(true, Some("No value found\n"));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not an OVF environment document"), "{out}");
}

#[test]
fn off_vmware_or_without_the_variable_guestinfo_is_not_read() {
    for (on_vmware, env) in [(false, Some(ENV_OK)), (true, None)] {
        let (code, out) = check(on_vmware, env);
        // The defaults alone lack the management server: the admin is told so.
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("hostname=svm  # defaults"), "{out}");
        assert!(out.contains("management_url = '' (from defaults)"), "{out}");
        assert!(!out.contains("guestinfo"), "{out}");
    }
}
