//! The daemon's configuration file (YAML): read every key, collect every problem with its key,
//! and hand back validated settings, before any socket is opened.
//!
//! The file is walked as a YAML tree rather than deserialized into a struct, so a wrong type in
//! one key does not hide the problems of the others, and unknown keys are reported by name.
//! Tests hand in the text directly ([`Config::from_yaml`]).
//!
//! One [`reader::Reader`] walks the tree; each section has its reader: [`attach`] (backend,
//! mode, interfaces, workers, EAL arguments), [`tuning`] (top-level settings, caps, `af_packet`,
//! `dpdk`), [`control`] (`state_dir` and the control plane's sections) and [`rules`]. The files
//! the keys name are checked by [`files`] in the same run ([`Config::read_checked`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::inventory::ProtectedVm;

use reader::{Mapping, Value};

mod attach;
mod control;
mod db;
pub mod files;
mod reader;
mod rules;
mod tuning;
mod web;

pub use attach::{eal_devices, eal_lcores};

/// Packet I/O backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Linux AF_PACKET.
    AfPacket,
    /// DPDK (cargo feature `dpdk`).
    Dpdk,
}

/// Where the SVM sits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttachConfig {
    /// Two interfaces, frames forwarded between them.
    Inline {
        /// Faces the protected VMs (port 0).
        vm_interface: String,
        /// Faces the network (port 1).
        network_interface: String,
    },
    /// One interface receiving copies, and optionally one to inject resets.
    Mirror {
        /// Receives copies.
        interface: String,
        /// Sends injected resets.
        inject_interface: Option<String>,
    },
}

impl AttachConfig {
    /// The interface (or DPDK device) name of port 0 and port 1 (EVE `in_iface`).
    pub fn port_names(&self) -> [Option<std::sync::Arc<str>>; 2] {
        match self {
            AttachConfig::Inline {
                vm_interface,
                network_interface,
            } => [
                Some(vm_interface.as_str().into()),
                Some(network_interface.as_str().into()),
            ],
            AttachConfig::Mirror {
                interface,
                inject_interface,
            } => [
                Some(interface.as_str().into()),
                inject_interface.as_deref().map(Into::into),
            ],
        }
    }
}

/// AF_PACKET tuning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AfPacketSettings {
    /// Ring block size in bytes.
    pub block_size: u32,
    /// Blocks per ring.
    pub block_count: u32,
    /// Block retire timeout in milliseconds.
    pub retire_ms: u32,
    /// Fanout hash for several workers.
    pub fanout_hash: dataplane::io::afpacket::FanoutHash,
    /// Promiscuous mode on receive interfaces.
    pub promiscuous: bool,
}

impl Default for AfPacketSettings {
    fn default() -> Self {
        let r = dataplane::io::afpacket::RingConfig::default();
        AfPacketSettings {
            block_size: r.block_size,
            block_count: r.block_count,
            retire_ms: r.retire_ms,
            fanout_hash: dataplane::io::afpacket::FanoutHash::Addresses,
            promiscuous: true,
        }
    }
}

/// How the DPDK backend spreads frames over several workers (`dpdk.distribution`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DpdkDistribution {
    /// RSS if every receive port offers it with a queue per worker, software otherwise.
    #[default]
    Auto,
    /// RSS, or refuse to start.
    Rss,
    /// The software distributor (worker 0 receives and hands frames over rings).
    Software,
}

/// What the DPDK distribution hashes (`dpdk.hash`); both are symmetric.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DpdkHash {
    /// IP addresses (and VLAN IDs in software): an address pair stays on one worker.
    #[default]
    Addresses,
    /// Addresses and TCP/UDP/SCTP ports.
    Flows,
}

/// DPDK tuning (`dpdk:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DpdkSettings {
    /// RSS or software distribution.
    pub distribution: DpdkDistribution,
    /// What the distribution hashes.
    pub hash: DpdkHash,
    /// Slots of each software-distribution ring (a power of two).
    pub ring_size: u32,
}

impl Default for DpdkSettings {
    fn default() -> Self {
        DpdkSettings {
            distribution: DpdkDistribution::Auto,
            hash: DpdkHash::Addresses,
            ring_size: 1024,
        }
    }
}

/// Validated daemon settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Backend.
    pub backend: Backend,
    /// Attach mode and interfaces.
    pub attach: AttachConfig,
    /// Worker threads.
    pub workers: u16,
    /// EAL arguments (DPDK only; kept for the DPDK backend).
    pub eal_args: Vec<String>,
    /// Policy file; the built-in default policy without it.
    pub policy: Option<PathBuf>,
    /// EVE JSON output (`-` for standard output); none: events are not written.
    pub eve: Option<String>,
    /// Validate checksums.
    pub verify_checksums: bool,
    /// Flow table cap per worker.
    pub max_flows: usize,
    /// Defragmenter caps per worker.
    pub defrag_max_datagrams: usize,
    /// Defragmenter memory cap per worker, bytes.
    pub defrag_max_bytes: usize,
    /// Block table cap (shared).
    pub max_blocks: usize,
    /// Print counters to the log this often (0: only on SIGUSR1 and at exit).
    pub stats_interval_secs: u64,
    /// Frames per receive burst.
    pub burst: usize,
    /// AF_PACKET tuning.
    pub af_packet: AfPacketSettings,
    /// DPDK tuning.
    pub dpdk: DpdkSettings,
    /// Control plane state (redb store); the control plane runs only when set.
    pub state_dir: Option<PathBuf>,
    /// Management API.
    pub api: Option<ApiSettings>,
    /// Central event server.
    pub central: Option<CentralSettings>,
    /// NSX Manager tagging.
    pub nsx: Option<NsxSettings>,
    /// Protected VMs.
    pub inventory: Vec<ProtectedVm>,
    /// Local event outputs of the control plane.
    pub outputs: OutputSettings,
    /// Activity scanner rules; none: the attack blocker only.
    pub rules: Option<RulesSettings>,
    /// Signed application databases (`db:`); needs `state_dir`.
    pub db: Option<DbSettings>,
    /// The user to become once the ports and files are open (`run_as`); none: stay as started.
    pub run_as: Option<String>,
    /// Web address lists (`web_address_scan.url_lists`), besides the policy's.
    pub web_lists: Vec<crate::weblists::ListSpec>,
    /// The system call filter (`security.seccomp`; off with DPDK).
    pub seccomp: crate::daemon::seccomp::Mode,
}

/// `db:` settings (docs/databases.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbSettings {
    /// The database state directory (`STATE_DIR/db` by default).
    pub dir: PathBuf,
    /// The root to trust for the directory's first install.
    pub root: Option<PathBuf>,
    /// The mirror's base URL (`https://...`, no trailing `/`): it serves `timestamp.json` and
    /// `bundle.tar`.
    pub mirror: Option<String>,
    /// CA of the mirror's certificate (PEM).
    pub ca: Option<PathBuf>,
    /// Time between two checks of the mirror.
    pub interval_secs: u64,
    /// Up to this many seconds, at random, added to each wait.
    pub jitter_secs: u64,
    /// First wait after a failed check; it doubles with each failure up to the interval.
    pub retry_min_secs: u64,
    /// Cap on a downloaded bundle.
    pub max_bundle_bytes: u64,
    /// Time for one download.
    pub timeout_secs: u64,
    /// How long a set just swapped in is watched before it counts as good (0: not watched).
    pub probation_secs: u64,
    /// The alert rate in probation that rolls a set back: more than this many times the rate
    /// before the swap ...
    pub alert_rate_factor: u64,
    /// ... and more than this many alerts a second.
    pub alert_rate_floor: u64,
}

/// `api:` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiSettings {
    /// Listen address.
    pub listen: SocketAddr,
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server key (PEM).
    pub key: PathBuf,
    /// Management CA: client certificates must chain to it (PEM).
    pub client_ca: PathBuf,
    /// Subject entries (`CN=...`, `OU=...`) with the admin role.
    pub admin: Vec<String>,
    /// Subject entries with the read-only role.
    pub read_only: Vec<String>,
    /// API keys of CrowdSec-style bouncers (`X-Api-Key`).
    pub bouncer_keys: Vec<String>,
    /// PEM files of certificate revocation lists for the client certificates (read again on
    /// SIGHUP); empty: no revocation check.
    pub crl: Vec<PathBuf>,
}

/// `central:` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CentralSettings {
    /// Events URL.
    pub url: String,
    /// CA of the server certificate (PEM).
    pub ca: PathBuf,
    /// Client certificate (PEM).
    pub cert: PathBuf,
    /// Client key (PEM).
    pub key: PathBuf,
    /// Events per POST.
    pub batch: usize,
    /// Longest retry delay, seconds.
    pub retry_max_secs: u64,
}

/// NSX authentication kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NsxAuthKind {
    /// HTTP basic on every call.
    Basic,
    /// Session cookie.
    Session,
}

/// `nsx:` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NsxSettings {
    /// `https://nsx-manager[:port]`.
    pub url: String,
    /// Authentication kind.
    pub auth: NsxAuthKind,
    /// User.
    pub user: String,
    /// Password: inline, or a file only the daemon's user may read.
    pub password: NsxPassword,
    /// CA of NSX Manager's certificate (PEM).
    pub ca: PathBuf,
    /// Tag scope.
    pub scope: String,
    /// Tag.
    pub tag: String,
    /// Quarantine tag scope while a VM is isolated.
    pub isolation_scope: String,
    /// Quarantine tag while a VM is isolated.
    pub isolation_tag: String,
}

/// Where the NSX password comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NsxPassword {
    /// `nsx.password` in the configuration.
    Inline(crate::secret::Secret),
    /// `nsx.password_file`, or `nsx.password_credential` in `$CREDENTIALS_DIRECTORY`: read (and
    /// its permissions checked) at validation and again when the daemon starts.
    File(PathBuf),
}

impl NsxPassword {
    /// The password.
    pub fn read(&self) -> Result<crate::secret::Secret, crate::secret::SecretError> {
        match self {
            NsxPassword::Inline(s) => Ok(s.clone()),
            NsxPassword::File(p) => crate::secret::read_file(p),
        }
    }
}

/// A size-rotated EVE file of the control plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EveFileSettings {
    /// The file.
    pub path: PathBuf,
    /// Rotate past this size.
    pub max_bytes: u64,
    /// Rotated files kept.
    pub keep: u32,
}

/// Syslog output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogSettings {
    /// Collector.
    pub target: SocketAddr,
    /// Transport.
    pub transport: crate::events::syslog::Transport,
    /// CEF instead of JSON messages.
    pub cef: bool,
}

/// `outputs:` settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutputSettings {
    /// EVE file.
    pub eve: Option<EveFileSettings>,
    /// Syslog.
    pub syslog: Option<SyslogSettings>,
}

/// `rules:` settings: what [`crate::rules_load`] loads at start and on SIGHUP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RulesSettings {
    /// Rule files: paths or glob patterns, in load order.
    pub files: Vec<String>,
    /// A `suricata.yaml` whose `vars.address-groups` / `vars.port-groups` are read.
    pub vars_file: Option<PathBuf>,
    /// Address variables, applied after the vars file.
    pub address_groups: Vec<(String, String)>,
    /// Port variables, applied after the vars file.
    pub port_groups: Vec<(String, String)>,
    /// A `threshold.config`.
    pub threshold_file: Option<PathBuf>,
    /// A `classification.config` (replaces the built-in classes).
    pub classification_file: Option<PathBuf>,
    /// Reassemble TCP flows picked up without their handshake (flows older than the daemon).
    pub midstream: bool,
    /// Stream bytes per direction inspected from the start of a flow.
    pub stream_depth: u64,
    /// Bytes every stream of a worker may hold together (Suricata's
    /// `stream.reassembly.memcap`, per worker).
    pub stream_memcap: usize,
    /// One direction of a flow may be missing (asymmetric routing, a one-sided mirror): a
    /// client's ACK after its SYN completes the handshake for `flow:established`.
    pub async_oneside: bool,
    /// Suricata's `stream.inline` on a mirror: inspect TCP data on arrival (inline timing)
    /// rather than once the peer acknowledged it (IDS timing, the mirror's default).
    pub inline: bool,
    /// `rules.stream.urgent_policy` (Suricata's `stream.reassembly.urgent.policy`): what
    /// reassembly does with the urgent byte of a segment with URG set.
    pub urgent_policy: dataplane::stream::UrgentPolicy,
    /// `rules.stream.urgent_oob_limit_policy` (`...urgent.oob-limit-policy`): the same once a
    /// direction took its out-of-band limit (`inline`, `gap` or `drop`).
    pub urgent_oob_limit_policy: dataplane::stream::UrgentPolicy,
    /// `rules.tls.encryption_handling: full`: keep inspecting the payload of TLS flows once
    /// they carry encrypted application data (`default`: stop, as Suricata).
    pub tls_inspect_encrypted: bool,
    /// `rules.dns.tcp_detection_ports` / `udp_detection_ports`: the ports DNS is recognised
    /// on (Suricata's `app-layer.protocols.dns.{tcp,udp}.detection-ports.dp`; 53).
    pub detection_ports: dataplane::app::DetectionPorts,
    /// `rules.host_os_policy` (Suricata's `host-os-policy`): the operating system of receiving
    /// hosts, by address prefix, which decides the overlap policy of IDS-mode reassembly.
    pub host_os: dataplane::stream::HostOsPolicy,
    /// Where `files` came from, for problems: `rules.files` (this configuration) or
    /// `activity_scanner.rule_files` (the policy).
    pub files_key: &'static str,
}

impl RulesSettings {
    /// The settings without a `rules` section: no files, the engine's defaults.
    pub fn bare() -> RulesSettings {
        let d = dataplane::stream::StreamConfig::default();
        RulesSettings {
            files: Vec::new(),
            vars_file: None,
            address_groups: Vec::new(),
            port_groups: Vec::new(),
            threshold_file: None,
            classification_file: None,
            midstream: d.midstream,
            stream_depth: d.depth,
            stream_memcap: dataplane::stream::DEFAULT_MEMCAP,
            async_oneside: false,
            inline: false,
            urgent_policy: d.urgent,
            urgent_oob_limit_policy: d.urgent_oob_limit,
            tls_inspect_encrypted: false,
            detection_ports: dataplane::app::DetectionPorts::default(),
            host_os: dataplane::stream::HostOsPolicy::default(),
            files_key: "rules.files",
        }
    }

    /// The settings the policy's `activity_scanner` makes of the configuration's `rules`
    /// section: its `rule_files` replace `files` when not empty, its `address_groups` and
    /// `port_groups` apply over the section's. `None` when neither names a rule file.
    pub fn with_policy(
        config: Option<&RulesSettings>,
        a: &policy::ActivityScanner,
    ) -> Option<RulesSettings> {
        let mut s = match config {
            Some(c) => c.clone(),
            None if a.rule_files.is_empty() => return None,
            None => RulesSettings::bare(),
        };
        if !a.rule_files.is_empty() {
            s.files.clone_from(&a.rule_files);
            s.files_key = "activity_scanner.rule_files";
        }
        let over = |base: &mut Vec<(String, String)>,
                    m: &std::collections::BTreeMap<String, String>| {
            base.retain(|(k, _)| !m.contains_key(k.trim_start_matches('$')));
            base.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
        };
        over(&mut s.address_groups, &a.address_groups);
        over(&mut s.port_groups, &a.port_groups);
        Some(s)
    }
}

/// One problem in the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The key, dotted (`af_packet.block_size`).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// Every problem in a configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(|i| format!("{}: {}", i.key, i.message)).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigIssue>);

/// Upper bound on workers: more than the cores of any appliance we ship.
pub const MAX_WORKERS: u64 = 64;

/// A configuration read and its files checked: every problem of one run, and what the daemon
/// needs to check the policy and rule files even when keys elsewhere are wrong.
#[derive(Debug)]
pub struct Reading {
    /// The settings, when no key is wrong (file problems do not clear it).
    pub config: Option<Config>,
    /// Every problem: the keys', then the files'.
    pub issues: Vec<ConfigIssue>,
    /// `policy`, when given.
    pub policy: Option<PathBuf>,
    /// The `rules` section, when it reads.
    pub rules: Option<RulesSettings>,
}

impl Config {
    /// Parse and validate a configuration document (keys only; named files are not opened).
    pub fn from_yaml(text: &str) -> Result<Config, ConfigErrors> {
        let (reading, _) = walk(text)?;
        match reading.config {
            Some(c) if reading.issues.is_empty() => Ok(c),
            _ => Err(ConfigErrors(reading.issues)),
        }
    }

    /// [`Config::from_yaml`], then every file the keys name checked the way the daemon will
    /// use it ([`files::check`]). Only a document that does not parse is an error.
    pub fn read_checked(text: &str) -> Result<Reading, ConfigErrors> {
        let (mut reading, named) = walk(text)?;
        reading.issues.extend(files::check(&named));
        Ok(reading)
    }
}

fn document_issue(message: String) -> ConfigErrors {
    ConfigErrors(vec![ConfigIssue {
        key: "(document)".into(),
        message,
    }])
}

/// Walk the document: every section's reader on one [`reader::Reader`].
fn walk(text: &str) -> Result<(Reading, Vec<files::FileRef>), ConfigErrors> {
    // The policy crate's reading: duplicate keys are an error, not the last one winning.
    let root: Value = policy::tree::yaml_tree(text).map_err(|e| {
        document_issue(
            e.0.into_iter()
                .map(|e| e.message)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let mut map = match root {
        Value::Object(m) => m,
        Value::Null => Mapping::new(),
        other => {
            return Err(document_issue(format!(
                "expected a mapping, got {}",
                policy::tree::describe(&other)
            )));
        }
    };
    let mut r = reader::Reader::default();
    let m = &mut map;
    let attach::Attach {
        backend,
        attach,
        workers,
        eal_args,
    } = attach::read(&mut r, m);
    let general = tuning::general(&mut r, m);
    let caps = tuning::caps(&mut r, m);
    let af_packet = tuning::af_packet(&mut r, m);
    let dpdk = tuning::dpdk(&mut r, m, backend == Some(Backend::Dpdk));
    let control = control::read(&mut r, m);
    let rules = r
        .opt_section(m, "rules")
        .and_then(|s| rules::read(&mut r, s));
    let has_db = m.get("db").is_some_and(|v| !v.is_null());
    let db = db::read(&mut r, m, control.state_dir.as_ref());
    if has_db && control.state_dir.is_none() {
        r.issue("db", "needs state_dir (the control plane's store)");
    }
    let web_lists = r
        .opt_section(m, "web_address_scan")
        .map(|s| web::read(&mut r, s))
        .unwrap_or_default();
    if control.state_dir.is_none() {
        for k in &control.needs_state {
            r.issue(k, "needs state_dir (the control plane's store)");
        }
    } else if general.eve.is_some() && control.outputs.eve.is_some() {
        r.issue("eve", "give either eve or outputs.eve, not both");
    }
    let run_as = r.string(m, "run_as", "run_as");
    if run_as.is_some() && backend == Some(Backend::Dpdk) {
        // The EAL keeps hugepage and device files it may open again; not dropped yet.
        r.issue("run_as", "not with the DPDK backend yet");
    }
    if let Some(u) = &run_as {
        match crate::daemon::privileges::lookup(u) {
            Ok(user) if user.uid.is_root() => {
                r.issue(
                    "run_as",
                    "root is what the daemon gives up; name another user",
                );
            }
            Ok(_) => {}
            Err(e) => r.issue("run_as", e.to_string().trim_start_matches("run_as: ")),
        }
    }
    let seccomp = security(&mut r, m, backend);
    r.unknown(m, "");

    let policy = general.policy.clone();
    let config = match (backend, attach) {
        (Some(backend), Some(attach)) if r.tree.errors.is_empty() => Some(Config {
            backend,
            attach,
            workers: u16::try_from(workers).unwrap_or(1),
            eal_args,
            policy: general.policy,
            eve: general.eve,
            verify_checksums: general.verify_checksums,
            max_flows: caps.max_flows,
            defrag_max_datagrams: caps.defrag_max_datagrams,
            defrag_max_bytes: caps.defrag_max_bytes,
            max_blocks: caps.max_blocks,
            stats_interval_secs: general.stats_interval_secs,
            burst: to_usize(general.burst),
            af_packet,
            dpdk,
            state_dir: control.state_dir,
            api: control.api,
            central: control.central,
            nsx: control.nsx,
            inventory: control.inventory,
            outputs: control.outputs,
            rules: rules.clone(),
            db,
            run_as,
            web_lists,
            seccomp,
        }),
        _ => None,
    };
    let reader::Reader { tree, files } = r;
    let issues = tree
        .errors
        .into_iter()
        .map(|e| ConfigIssue {
            key: e.path,
            message: e.message,
        })
        .collect();
    Ok((
        Reading {
            config,
            issues,
            policy,
            rules,
        },
        files,
    ))
}

/// `security`: `seccomp: enforce | log | off` (default enforce; off with the DPDK backend, whose
/// EAL is not traced yet).
fn security(
    r: &mut reader::Reader,
    m: &mut Mapping,
    backend: Option<Backend>,
) -> crate::daemon::seccomp::Mode {
    use crate::daemon::seccomp::Mode;
    let mut sec = r.section(m, "security");
    let dpdk = backend == Some(Backend::Dpdk);
    let mode = match r.string(&mut sec, "seccomp", "security.seccomp") {
        None if dpdk => Mode::Off,
        None => Mode::default(),
        Some(v) => v.parse().unwrap_or_else(|e: String| {
            r.issue("security.seccomp", e);
            Mode::default()
        }),
    };
    if dpdk && mode != Mode::Off {
        r.issue(
            "security.seccomp",
            "not with the DPDK backend yet (its EAL's system calls are not traced): off",
        );
    }
    r.unknown(&sec, "security");
    mode
}

// Values were range-checked against bounds that fit.
fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

fn to_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
