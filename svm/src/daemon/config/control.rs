//! The control plane's sections: `state_dir`, `api`, `central`, `nsx`, `inventory`, `outputs`.

use std::path::PathBuf;

use super::reader::{Mapping, Value};

use super::files::Need;
use super::reader::Reader;
use super::{
    ApiSettings, CentralSettings, EveFileSettings, NsxAuthKind, NsxPassword, NsxSettings,
    OutputSettings, SyslogSettings, to_u32, to_usize,
};
use crate::inventory::{Inventory, ProtectedVm};

/// The sections that only the control plane uses: refused without `state_dir`.
pub(super) const NEEDS_STATE: [&str; 5] = ["api", "central", "nsx", "inventory", "outputs"];

/// What the control plane's sections give.
pub(super) struct ControlPlane {
    pub(super) state_dir: Option<PathBuf>,
    /// The sections of [`NEEDS_STATE`] the file has.
    pub(super) needs_state: Vec<&'static str>,
    pub(super) api: Option<ApiSettings>,
    pub(super) central: Option<CentralSettings>,
    pub(super) nsx: Option<NsxSettings>,
    pub(super) inventory: Vec<ProtectedVm>,
    pub(super) outputs: OutputSettings,
}

/// Every control-plane section.
pub(super) fn read(r: &mut Reader, m: &mut Mapping) -> ControlPlane {
    let state_dir = r
        .file(m, "state_dir", "state_dir", Need::Dir)
        .map(PathBuf::from);
    let needs_state = NEEDS_STATE
        .into_iter()
        .filter(|k| m.get(*k).is_some_and(|v| !v.is_null()))
        .collect();
    ControlPlane {
        state_dir,
        needs_state,
        api: api(r, m),
        central: central(r, m),
        nsx: nsx(r, m),
        inventory: inventory(r, m),
        outputs: outputs(r, m),
    }
}

/// `api`.
fn api(r: &mut Reader, m: &mut Mapping) -> Option<ApiSettings> {
    let mut a = r.opt_section(m, "api")?;
    let p = "api";
    let listen = r.addr(&mut a, "listen", p);
    let cert = r.required_file(&mut a, "cert", p, Need::Certs);
    let key = r.required_file(&mut a, "key", p, Need::Key);
    let client_ca = r.required_file(&mut a, "client_ca", p, Need::Certs);
    let admin = r.strings(&mut a, "admin", "api.admin");
    let read_only = r.strings(&mut a, "read_only", "api.read_only");
    let bouncer_keys = r.strings(&mut a, "bouncer_keys", "api.bouncer_keys");
    let crl: Vec<PathBuf> = r
        .strings(&mut a, "crl", "api.crl")
        .into_iter()
        .enumerate()
        .map(|(i, path)| {
            r.files.push(super::files::FileRef {
                key: format!("api.crl[{i}]"),
                path: path.clone().into(),
                need: Need::Crl,
            });
            path.into()
        })
        .collect();
    if admin.is_empty() {
        r.issue(
            "api.admin",
            "name at least one admin subject (CN=... or OU=...)",
        );
    }
    for (i, k) in bouncer_keys.iter().enumerate() {
        if k.len() < 16 {
            r.issue(
                &format!("api.bouncer_keys[{i}]"),
                "too short (16 characters at least)",
            );
        }
    }
    r.unknown(&a, p);
    Some(ApiSettings {
        listen: listen?,
        cert: cert?.into(),
        key: key?.into(),
        client_ca: client_ca?.into(),
        admin,
        read_only,
        bouncer_keys,
        crl,
    })
}

/// `central`.
fn central(r: &mut Reader, m: &mut Mapping) -> Option<CentralSettings> {
    let mut c = r.opt_section(m, "central")?;
    let p = "central";
    let url = r.required(&mut c, "url", p);
    if let Some(u) = &url
        && !u.starts_with("https://")
    {
        r.issue("central.url", "must be an https:// URL");
    }
    let ca = r.required_file(&mut c, "ca", p, Need::Certs);
    let cert = r.required_file(&mut c, "cert", p, Need::Certs);
    let key = r.required_file(&mut c, "key", p, Need::Key);
    let batch = r
        .uint(&mut c, "batch", "central.batch", 1, 10_000)
        .unwrap_or(500);
    let retry_max_secs = r
        .uint(&mut c, "retry_max_secs", "central.retry_max_secs", 1, 3600)
        .unwrap_or(60);
    r.unknown(&c, p);
    Some(CentralSettings {
        url: url?,
        ca: ca?.into(),
        cert: cert?.into(),
        key: key?.into(),
        batch: to_usize(batch),
        retry_max_secs,
    })
}

/// Exactly one of `nsx.password`, `nsx.password_file` and `nsx.password_credential` (a file
/// of `$CREDENTIALS_DIRECTORY`); the files are checked with the others.
fn nsx_password(r: &mut Reader, n: &mut Mapping) -> Option<NsxPassword> {
    let inline = r.string(n, "password", "nsx.password");
    let file = r.file(n, "password_file", "nsx.password_file", Need::Secret);
    let credential = r.string(n, "password_credential", "nsx.password_credential");
    let credential = credential.and_then(|name| {
        let dir = std::env::var_os("CREDENTIALS_DIRECTORY");
        match crate::secret::credential_path(dir.as_deref(), &name) {
            Ok(path) => {
                r.files.push(super::files::FileRef {
                    key: "nsx.password_credential".into(),
                    path: path.clone(),
                    need: Need::Secret,
                });
                Some(path)
            }
            Err(e) => {
                r.issue("nsx.password_credential", e.to_string());
                None
            }
        }
    });
    match (inline, file, credential) {
        (Some(s), None, None) => Some(NsxPassword::Inline(s.into())),
        (None, Some(f), None) => Some(NsxPassword::File(f.into())),
        (None, None, Some(c)) => Some(NsxPassword::File(c)),
        (None, None, None) => {
            if !r
                .tree
                .errors
                .iter()
                .any(|i| i.path == "nsx.password_credential")
            {
                r.issue(
                    "nsx.password",
                    "required: give password_file (or password_credential under systemd, or \
                     password)",
                );
            }
            None
        }
        _ => {
            r.issue(
                "nsx.password",
                "give one of password, password_file and password_credential",
            );
            None
        }
    }
}

/// `nsx`.
fn nsx(r: &mut Reader, m: &mut Mapping) -> Option<NsxSettings> {
    let mut n = r.opt_section(m, "nsx")?;
    let p = "nsx";
    let url = r.required(&mut n, "url", p);
    if let Some(u) = &url
        && !u.starts_with("https://")
    {
        r.issue("nsx.url", "must be an https:// URL");
    }
    let auth = match r.string(&mut n, "auth", "nsx.auth").as_deref() {
        None | Some("basic") => Some(NsxAuthKind::Basic),
        Some("session") => Some(NsxAuthKind::Session),
        Some(other) => {
            r.issue(
                "nsx.auth",
                format!("unknown value {other:?} (basic or session)"),
            );
            None
        }
    };
    let user = r.required(&mut n, "user", p);
    let password = nsx_password(r, &mut n);
    let ca = r.required_file(&mut n, "ca", p, Need::Certs);
    let scope = r
        .string(&mut n, "scope", "nsx.scope")
        .unwrap_or_else(|| "IDS_IPS".into());
    let tag = r
        .string(&mut n, "tag", "nsx.tag")
        .unwrap_or_else(|| "threat=high".into());
    let isolation_scope = r
        .string(&mut n, "isolation_scope", "nsx.isolation_scope")
        .unwrap_or_else(|| "IDS_IPS".into());
    let isolation_tag = r
        .string(&mut n, "isolation_tag", "nsx.isolation_tag")
        .unwrap_or_else(|| "isolated".into());
    r.unknown(&n, p);
    Some(NsxSettings {
        url: url?,
        auth: auth?,
        user: user?,
        password: password?,
        ca: ca?.into(),
        scope,
        tag,
        isolation_scope,
        isolation_tag,
    })
}

/// `inventory`: the protected VMs, read with serde and checked by [`Inventory::new`].
fn inventory(r: &mut Reader, m: &mut Mapping) -> Vec<ProtectedVm> {
    match m.remove("inventory") {
        None | Some(Value::Null) => vec![],
        Some(v) => match serde_json::from_value::<Vec<ProtectedVm>>(v) {
            Ok(vms) => {
                if let Err(errors) = Inventory::new(vms.clone()) {
                    for e in errors {
                        r.issue("inventory", e.to_string());
                    }
                }
                vms
            }
            Err(e) => {
                r.issue("inventory", e.to_string());
                vec![]
            }
        },
    }
}

/// `outputs`: the control plane's local event outputs.
fn outputs(r: &mut Reader, m: &mut Mapping) -> OutputSettings {
    let mut outputs = OutputSettings::default();
    let Some(mut o) = r.opt_section(m, "outputs") else {
        return outputs;
    };
    if let Some(mut e) = r.opt_section(&mut o, "eve") {
        let path = r.required_file(&mut e, "path", "outputs.eve", Need::Append);
        let max_bytes = r
            .uint(
                &mut e,
                "max_bytes",
                "outputs.eve.max_bytes",
                1 << 16,
                u64::MAX,
            )
            .unwrap_or(u64::MAX);
        let keep = r
            .uint(&mut e, "keep", "outputs.eve.keep", 0, 1000)
            .map_or(5, to_u32);
        r.unknown(&e, "outputs.eve");
        outputs.eve = path.map(|p| EveFileSettings {
            path: p.into(),
            max_bytes,
            keep,
        });
    }
    if let Some(mut y) = r.opt_section(&mut o, "syslog") {
        let target = r.addr(&mut y, "target", "outputs.syslog");
        let transport = match r
            .string(&mut y, "transport", "outputs.syslog.transport")
            .as_deref()
        {
            None | Some("udp") => crate::events::syslog::Transport::Udp,
            Some("tcp") => crate::events::syslog::Transport::Tcp,
            Some(other) => {
                r.issue(
                    "outputs.syslog.transport",
                    format!("unknown value {other:?} (udp or tcp)"),
                );
                crate::events::syslog::Transport::Udp
            }
        };
        let cef = r
            .boolean(&mut y, "cef", "outputs.syslog.cef")
            .unwrap_or(false);
        r.unknown(&y, "outputs.syslog");
        outputs.syslog = target.map(|target| SyslogSettings {
            target,
            transport,
            cef,
        });
    }
    r.unknown(&o, "outputs");
    outputs
}
