//! The daemon's configuration file (YAML): read every key, collect every problem with its key,
//! and hand back validated settings, before any socket is opened.
//!
//! The file is walked as a YAML tree rather than deserialized into a struct, so a wrong type in
//! one key does not hide the problems of the others, and unknown keys are reported by name.
//! Tests hand in the text directly ([`Config::from_yaml`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::inventory::{Inventory, ProtectedVm};

use serde_norway::{Mapping, Value};

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
    /// Password.
    pub password: String,
    /// CA of NSX Manager's certificate (PEM).
    pub ca: PathBuf,
    /// Tag scope.
    pub scope: String,
    /// Tag.
    pub tag: String,
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
    /// One direction of a flow may be missing (asymmetric routing, a one-sided mirror): a
    /// client's ACK after its SYN completes the handshake for `flow:established`.
    pub async_oneside: bool,
    /// Suricata's `stream.inline` on a mirror: inspect TCP data on arrival (inline timing)
    /// rather than once the peer acknowledged it (IDS timing, the mirror's default).
    pub inline: bool,
    /// `rules.tls.encryption_handling: full`: keep inspecting the payload of TLS flows once
    /// they carry encrypted application data (`default`: stop, as Suricata).
    pub tls_inspect_encrypted: bool,
    /// Where `files` came from, for problems: `rules.files` (this configuration) or
    /// `activity_scanner.rule_files` (the policy).
    pub files_key: &'static str,
}

impl RulesSettings {
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
            None => {
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
                    async_oneside: false,
                    inline: false,
                    tls_inspect_encrypted: false,
                    files_key: "rules.files",
                }
            }
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

struct Reader {
    issues: Vec<ConfigIssue>,
}

impl Reader {
    fn issue(&mut self, key: &str, message: impl Into<String>) {
        self.issues.push(ConfigIssue {
            key: key.to_owned(),
            message: message.into(),
        });
    }

    fn string(&mut self, map: &mut Mapping, key: &str, full: &str) -> Option<String> {
        match map.remove(key)? {
            Value::String(s) if !s.is_empty() => Some(s),
            Value::String(_) => {
                self.issue(full, "must not be empty");
                None
            }
            other => {
                self.issue(full, format!("expected a string, found {}", kind(&other)));
                None
            }
        }
    }

    fn uint(&mut self, map: &mut Mapping, key: &str, full: &str, lo: u64, hi: u64) -> Option<u64> {
        match map.remove(key)? {
            Value::Number(n) => match n.as_u64() {
                Some(v) if (lo..=hi).contains(&v) => Some(v),
                _ => {
                    self.issue(full, format!("{n} is out of range {lo}..={hi}"));
                    None
                }
            },
            other => {
                self.issue(full, format!("expected an integer, found {}", kind(&other)));
                None
            }
        }
    }

    fn boolean(&mut self, map: &mut Mapping, key: &str, full: &str) -> Option<bool> {
        match map.remove(key)? {
            Value::Bool(b) => Some(b),
            other => {
                self.issue(
                    full,
                    format!("expected true or false, found {}", kind(&other)),
                );
                None
            }
        }
    }

    fn strings(&mut self, map: &mut Mapping, key: &str, full: &str) -> Vec<String> {
        match map.remove(key) {
            None | Some(Value::Null) => vec![],
            Some(Value::Sequence(items)) => items
                .into_iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    Value::String(s) if !s.is_empty() => Some(s),
                    other => {
                        self.issue(
                            &format!("{full}[{i}]"),
                            format!("expected a non-empty string, found {}", kind(&other)),
                        );
                        None
                    }
                })
                .collect(),
            Some(other) => {
                self.issue(
                    full,
                    format!("expected a list of strings, found {}", kind(&other)),
                );
                vec![]
            }
        }
    }

    fn required(&mut self, map: &mut Mapping, key: &str, prefix: &str) -> Option<String> {
        let full = format!("{prefix}.{key}");
        if !map.contains_key(key) {
            self.issue(&full, "required");
            return None;
        }
        self.string(map, key, &full)
    }

    fn addr(&mut self, map: &mut Mapping, key: &str, prefix: &str) -> Option<SocketAddr> {
        let full = format!("{prefix}.{key}");
        let s = self.required(map, key, prefix)?;
        match s.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.issue(&full, format!("{s:?} is not an address:port"));
                None
            }
        }
    }

    /// An optional section: None when absent.
    fn opt_section(&mut self, map: &mut Mapping, key: &str) -> Option<Mapping> {
        match map.get(key) {
            None | Some(Value::Null) => {
                map.remove(key);
                None
            }
            Some(_) => Some(self.section(map, key)),
        }
    }

    fn section(&mut self, map: &mut Mapping, key: &str) -> Mapping {
        match map.remove(key) {
            None | Some(Value::Null) => Mapping::new(),
            Some(Value::Mapping(m)) => m,
            Some(other) => {
                self.issue(key, format!("expected a mapping, found {}", kind(&other)));
                Mapping::new()
            }
        }
    }

    fn unknown(&mut self, map: &Mapping, prefix: &str) {
        for k in map.keys() {
            let name = match k {
                Value::String(s) => s.clone(),
                other => format!("{other:?}"),
            };
            let full = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}.{name}")
            };
            self.issue(&full, "unknown key");
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

impl Config {
    /// Parse and validate a configuration document.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigErrors> {
        let root: Value = serde_norway::from_str(text).map_err(|e| {
            ConfigErrors(vec![ConfigIssue {
                key: "(document)".into(),
                message: e.to_string(),
            }])
        })?;
        let mut map = match root {
            Value::Mapping(m) => m,
            Value::Null => Mapping::new(),
            other => {
                return Err(ConfigErrors(vec![ConfigIssue {
                    key: "(document)".into(),
                    message: format!("expected a mapping, found {}", kind(&other)),
                }]));
            }
        };
        let mut r = Reader { issues: vec![] };
        let m = &mut map;

        let backend = match r.string(m, "backend", "backend").as_deref() {
            None | Some("af-packet") => Some(Backend::AfPacket),
            Some("dpdk") => Some(Backend::Dpdk),
            Some(other) => {
                r.issue(
                    "backend",
                    format!("unknown backend {other:?} (af-packet or dpdk)"),
                );
                None
            }
        };
        if backend == Some(Backend::Dpdk) && !cfg!(feature = "dpdk") {
            r.issue(
                "backend",
                "dpdk: this svm was built without DPDK support (cargo feature `dpdk`)",
            );
        }

        let mode = r.string(m, "mode", "mode");
        // AF_PACKET names interfaces, DPDK names devices (a vdev or a PCI address of eal_args).
        let dpdk = backend == Some(Backend::Dpdk);
        let (own, other) = if dpdk {
            (DPDK_PORT_KEYS, AFP_INTERFACE_KEYS)
        } else {
            (AFP_INTERFACE_KEYS, DPDK_PORT_KEYS)
        };
        for k in other {
            if m.remove(k).is_some() {
                r.issue(
                    k,
                    if dpdk {
                        "only for backend: af-packet (dpdk: vm_port, network_port, port, inject_port)"
                    } else {
                        "only for backend: dpdk"
                    },
                );
            }
        }
        let [k_vm, k_net, k_if, k_inject] = own;
        let vm = r.string(m, k_vm, k_vm);
        let net = r.string(m, k_net, k_net);
        let iface = r.string(m, k_if, k_if);
        let inject = r.string(m, k_inject, k_inject);
        let attach = match mode.as_deref() {
            Some("inline") => {
                for (v, k) in [(&iface, k_if), (&inject, k_inject)] {
                    if v.is_some() {
                        r.issue(k, "only for mode: mirror");
                    }
                }
                match (vm, net) {
                    (Some(v), Some(n)) if v == n => {
                        r.issue(k_net, format!("must differ from {k_vm}"));
                        None
                    }
                    (Some(vm_interface), Some(network_interface)) => Some(AttachConfig::Inline {
                        vm_interface,
                        network_interface,
                    }),
                    (v, n) => {
                        if v.is_none() {
                            r.issue(k_vm, "required for mode: inline");
                        }
                        if n.is_none() {
                            r.issue(k_net, "required for mode: inline");
                        }
                        None
                    }
                }
            }
            Some("mirror") => {
                for (v, k) in [(&vm, k_vm), (&net, k_net)] {
                    if v.is_some() {
                        r.issue(k, "only for mode: inline");
                    }
                }
                match iface {
                    Some(interface) => {
                        if inject.as_ref() == Some(&interface) {
                            r.issue(k_inject, format!("must differ from {k_if}"));
                        }
                        Some(AttachConfig::Mirror {
                            interface,
                            inject_interface: inject,
                        })
                    }
                    None => {
                        r.issue(k_if, "required for mode: mirror");
                        None
                    }
                }
            }
            Some(other) => {
                r.issue("mode", format!("unknown mode {other:?} (inline or mirror)"));
                None
            }
            None => {
                r.issue("mode", "required (inline or mirror)");
                None
            }
        };

        let workers = match (m.contains_key("workers"), m.contains_key("cores")) {
            (true, true) => {
                r.issue("cores", "give either workers or cores, not both");
                m.remove("cores");
                r.uint(m, "workers", "workers", 1, MAX_WORKERS)
            }
            (false, true) => r.uint(m, "cores", "cores", 1, MAX_WORKERS),
            _ => r.uint(m, "workers", "workers", 1, MAX_WORKERS),
        }
        .unwrap_or(1);

        let eal_args = match m.remove("eal_args") {
            None | Some(Value::Null) => vec![],
            Some(Value::Sequence(items)) => items
                .into_iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    Value::String(s) => Some(s),
                    other => {
                        r.issue(
                            &format!("eal_args[{i}]"),
                            format!("expected a string, found {}", kind(&other)),
                        );
                        None
                    }
                })
                .collect(),
            Some(other) => {
                r.issue(
                    "eal_args",
                    format!("expected a list of strings, found {}", kind(&other)),
                );
                vec![]
            }
        };
        if !eal_args.is_empty() && backend == Some(Backend::AfPacket) {
            r.issue("eal_args", "only for backend: dpdk");
        }
        if dpdk {
            check_dpdk(&mut r, &eal_args, attach.as_ref(), workers);
        }

        let policy = r.string(m, "policy", "policy").map(PathBuf::from);
        let eve = r.string(m, "eve", "eve");
        let verify_checksums = match r.string(m, "checksums", "checksums").as_deref() {
            None | Some("none") => false,
            Some("all") => true,
            Some(other) => {
                r.issue(
                    "checksums",
                    format!("unknown value {other:?} (none or all)"),
                );
                false
            }
        };
        let stats_interval_secs = r
            .uint(m, "stats_interval_secs", "stats_interval_secs", 0, 86_400)
            .unwrap_or(0);
        let burst = r.uint(m, "burst", "burst", 1, 1024).unwrap_or(64);

        let flow_defaults = dataplane::flow::FlowConfig::default();
        let defrag_defaults = dataplane::defrag::DefragConfig::default();
        let mut flows = r.section(m, "flows");
        let max_flows = r
            .uint(&mut flows, "max", "flows.max", 1024, 1 << 26)
            .map_or(flow_defaults.max_flows, to_usize);
        r.unknown(&flows, "flows");
        let mut defrag = r.section(m, "defrag");
        let defrag_max_datagrams = r
            .uint(
                &mut defrag,
                "max_datagrams",
                "defrag.max_datagrams",
                1,
                1 << 20,
            )
            .map_or(defrag_defaults.max_datagrams, to_usize);
        let defrag_max_bytes = r
            .uint(
                &mut defrag,
                "max_bytes",
                "defrag.max_bytes",
                1 << 16,
                1 << 32,
            )
            .map_or(defrag_defaults.max_bytes, to_usize);
        r.unknown(&defrag, "defrag");
        let mut blocks = r.section(m, "blocks");
        let max_blocks = r
            .uint(&mut blocks, "max", "blocks.max", 1, 1 << 24)
            .map_or(dataplane::blocks::DEFAULT_BLOCK_CAPACITY, to_usize);
        r.unknown(&blocks, "blocks");

        let mut afp = r.section(m, "af_packet");
        let d = AfPacketSettings::default();
        let block_size = r
            .uint(
                &mut afp,
                "block_size",
                "af_packet.block_size",
                4096,
                1 << 28,
            )
            .map_or(d.block_size, to_u32);
        if !block_size.is_power_of_two() {
            r.issue(
                "af_packet.block_size",
                format!("{block_size} is not a power of two"),
            );
        }
        let block_count = r
            .uint(&mut afp, "block_count", "af_packet.block_count", 2, 4096)
            .map_or(d.block_count, to_u32);
        let retire_ms = r
            .uint(&mut afp, "retire_ms", "af_packet.retire_ms", 1, 1000)
            .map_or(d.retire_ms, to_u32);
        let fanout_hash = match r
            .string(&mut afp, "fanout_hash", "af_packet.fanout_hash")
            .as_deref()
        {
            None | Some("addresses") => dataplane::io::afpacket::FanoutHash::Addresses,
            Some("kernel") => dataplane::io::afpacket::FanoutHash::Kernel,
            Some(other) => {
                r.issue(
                    "af_packet.fanout_hash",
                    format!("unknown value {other:?} (addresses or kernel)"),
                );
                d.fanout_hash
            }
        };
        let promiscuous = r
            .boolean(&mut afp, "promiscuous", "af_packet.promiscuous")
            .unwrap_or(d.promiscuous);
        r.unknown(&afp, "af_packet");

        let had_dpdk = m.get("dpdk").is_some_and(|v| !v.is_null());
        if had_dpdk && !dpdk {
            r.issue("dpdk", "only for backend: dpdk");
        }
        let mut dp = r.section(m, "dpdk");
        let dd = DpdkSettings::default();
        let distribution = match r
            .string(&mut dp, "distribution", "dpdk.distribution")
            .as_deref()
        {
            None | Some("auto") => DpdkDistribution::Auto,
            Some("rss") => DpdkDistribution::Rss,
            Some("software") => DpdkDistribution::Software,
            Some(other) => {
                r.issue(
                    "dpdk.distribution",
                    format!("unknown value {other:?} (auto, rss or software)"),
                );
                dd.distribution
            }
        };
        let dpdk_hash = match r.string(&mut dp, "hash", "dpdk.hash").as_deref() {
            None | Some("addresses") => DpdkHash::Addresses,
            Some("flows") => DpdkHash::Flows,
            Some(other) => {
                r.issue(
                    "dpdk.hash",
                    format!("unknown value {other:?} (addresses or flows)"),
                );
                dd.hash
            }
        };
        let ring_size = r
            .uint(&mut dp, "ring_size", "dpdk.ring_size", 64, 1 << 16)
            .map_or(dd.ring_size, to_u32);
        if !ring_size.is_power_of_two() {
            r.issue(
                "dpdk.ring_size",
                format!("{ring_size} is not a power of two"),
            );
        }
        r.unknown(&dp, "dpdk");

        let state_dir = r.string(m, "state_dir", "state_dir").map(PathBuf::from);
        let present = |m: &Mapping, k: &str| m.get(k).is_some_and(|v| !v.is_null());
        let needs_state: Vec<&str> = ["api", "central", "nsx", "inventory", "outputs"]
            .into_iter()
            .filter(|k| present(m, k))
            .collect();
        let api = r.opt_section(m, "api").and_then(|mut a| {
            let p = "api";
            let listen = r.addr(&mut a, "listen", p);
            let cert = r.required(&mut a, "cert", p);
            let key = r.required(&mut a, "key", p);
            let client_ca = r.required(&mut a, "client_ca", p);
            let admin = r.strings(&mut a, "admin", "api.admin");
            let read_only = r.strings(&mut a, "read_only", "api.read_only");
            let bouncer_keys = r.strings(&mut a, "bouncer_keys", "api.bouncer_keys");
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
            })
        });
        let central = r.opt_section(m, "central").and_then(|mut c| {
            let p = "central";
            let url = r.required(&mut c, "url", p);
            if let Some(u) = &url
                && !u.starts_with("https://")
            {
                r.issue("central.url", "must be an https:// URL");
            }
            let ca = r.required(&mut c, "ca", p);
            let cert = r.required(&mut c, "cert", p);
            let key = r.required(&mut c, "key", p);
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
        });
        let nsx = r.opt_section(m, "nsx").and_then(|mut n| {
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
            let password = r.required(&mut n, "password", p);
            let ca = r.required(&mut n, "ca", p);
            let scope = r
                .string(&mut n, "scope", "nsx.scope")
                .unwrap_or_else(|| "IDS_IPS".into());
            let tag = r
                .string(&mut n, "tag", "nsx.tag")
                .unwrap_or_else(|| "threat=high".into());
            r.unknown(&n, p);
            Some(NsxSettings {
                url: url?,
                auth: auth?,
                user: user?,
                password: password?,
                ca: ca?.into(),
                scope,
                tag,
            })
        });
        let inventory = match m.remove("inventory") {
            None | Some(Value::Null) => vec![],
            Some(v) => match serde_norway::from_value::<Vec<ProtectedVm>>(v) {
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
        };
        let mut outputs = OutputSettings::default();
        if let Some(mut o) = r.opt_section(m, "outputs") {
            if let Some(mut e) = r.opt_section(&mut o, "eve") {
                let path = r.required(&mut e, "path", "outputs.eve");
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
        }
        let rules = r
            .opt_section(m, "rules")
            .and_then(|s| rules_section(&mut r, s));
        if state_dir.is_none() {
            for k in needs_state {
                r.issue(k, "needs state_dir (the control plane's store)");
            }
        } else if eve.is_some() && outputs.eve.is_some() {
            r.issue("eve", "give either eve or outputs.eve, not both");
        }
        r.unknown(m, "");

        match (backend, attach) {
            (Some(backend), Some(attach)) if r.issues.is_empty() => Ok(Config {
                backend,
                attach,
                workers: u16::try_from(workers).unwrap_or(1),
                eal_args,
                policy,
                eve,
                verify_checksums,
                max_flows,
                defrag_max_datagrams,
                defrag_max_bytes,
                max_blocks,
                stats_interval_secs,
                burst: to_usize(burst),
                af_packet: AfPacketSettings {
                    block_size,
                    block_count,
                    retire_ms,
                    fanout_hash,
                    promiscuous,
                },
                dpdk: DpdkSettings {
                    distribution,
                    hash: dpdk_hash,
                    ring_size,
                },
                state_dir,
                api,
                central,
                nsx,
                inventory,
                outputs,
                rules,
            }),
            _ => Err(ConfigErrors(r.issues)),
        }
    }
}

/// Interface keys of the AF_PACKET backend: inline VM side, inline network side, mirror, inject.
const AFP_INTERFACE_KEYS: [&str; 4] = [
    "vm_interface",
    "network_interface",
    "interface",
    "inject_interface",
];
/// Port keys of the DPDK backend, in the same order.
const DPDK_PORT_KEYS: [&str; 4] = ["vm_port", "network_port", "port", "inject_port"];

/// The devices an EAL command line brings up: `--vdev NAME,...` and the PCI allow-list
/// (`-a`/`--allow ADDRESS,...`), by the names DPDK gives their ports (a short PCI address gets
/// its `0000:` domain).
pub fn eal_devices(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (value, pci) = if let Some(v) = a.strip_prefix("--vdev=") {
            (Some(v.to_owned()), false)
        } else if let Some(v) = a.strip_prefix("--allow=") {
            (Some(v.to_owned()), true)
        } else if a == "--vdev" {
            (it.next().cloned(), false)
        } else if a == "-a" || a == "--allow" {
            (it.next().cloned(), true)
        } else if let Some(v) = a.strip_prefix("-a").filter(|v| !v.is_empty()) {
            (Some(v.to_owned()), true)
        } else {
            (None, false)
        };
        let Some(value) = value else { continue };
        let name = value
            .split(',')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        if name.is_empty() {
            continue;
        }
        if pci && name.split(':').count() == 2 {
            out.push(format!("0000:{name}"));
        } else {
            out.push(name);
        }
    }
    out
}

/// The lcores an EAL command line enables with `-l LIST` / `-c MASK` (`None` if it uses
/// `--lcores`, whose CPU sets are not counted here, or none of them: then the EAL takes every
/// CPU and the daemon checks the count after `rte_eal_init`).
pub fn eal_lcores(args: &[String]) -> Option<usize> {
    let mut it = args.iter();
    let mut found = None;
    while let Some(a) = it.next() {
        if a == "--lcores" || a.starts_with("--lcores=") {
            return None;
        }
        let (value, mask) = if a == "-l" {
            (it.next().cloned(), false)
        } else if a == "-c" {
            (it.next().cloned(), true)
        } else if let Some(v) = a.strip_prefix("-l").filter(|v| !v.is_empty()) {
            (Some(v.to_owned()), false)
        } else if let Some(v) = a.strip_prefix("-c").filter(|v| !v.is_empty()) {
            (Some(v.to_owned()), true)
        } else {
            continue;
        };
        let value = value?;
        found = if mask {
            let hex = value.trim_start_matches("0x").trim_start_matches("0X");
            u128::from_str_radix(hex, 16)
                .ok()
                .map(|m| usize::try_from(m.count_ones()).unwrap_or(0))
        } else {
            let mut cpus = std::collections::BTreeSet::new();
            for part in value.split(',') {
                let (lo, hi) = part.split_once('-').unwrap_or((part, part));
                let (lo, hi) = (
                    lo.trim().parse::<u32>().ok()?,
                    hi.trim().parse::<u32>().ok()?,
                );
                if hi < lo || hi - lo > 1024 {
                    return None;
                }
                cpus.extend(lo..=hi);
            }
            Some(cpus.len())
        };
    }
    found
}

/// `backend: dpdk`: the EAL arguments must bring up every named port and, when they list the
/// lcores (`-l`, `-c`), give one per worker (worker 0 runs on the main lcore, the others on
/// worker lcores).
fn check_dpdk(r: &mut Reader, eal_args: &[String], attach: Option<&AttachConfig>, workers: u64) {
    if let Some(lcores) = eal_lcores(eal_args)
        && u64::try_from(lcores).unwrap_or(0) < workers
    {
        r.issue(
            "workers",
            format!(
                "{workers} workers need {workers} EAL lcores, eal_args enable {lcores} \
                 (-l with one CPU per worker)"
            ),
        );
    }
    if eal_args.is_empty() {
        r.issue(
            "eal_args",
            "required for backend: dpdk (at least the devices: --vdev=NAME,... or -a PCI-ADDRESS)",
        );
        return;
    }
    if eal_args.iter().any(|a| a == "--in-memory") && eal_args.iter().any(|a| a == "--no-huge") {
        r.issue(
            "eal_args",
            "--in-memory cannot be combined with --no-huge (use --no-shconf)",
        );
    }
    let devices = eal_devices(eal_args);
    if devices.is_empty() {
        r.issue(
            "eal_args",
            "names no device: add --vdev=NAME,... or -a PCI-ADDRESS for every port",
        );
        return;
    }
    let named: Vec<(&str, &String)> = match attach {
        Some(AttachConfig::Inline {
            vm_interface,
            network_interface,
        }) => vec![
            ("vm_port", vm_interface),
            ("network_port", network_interface),
        ],
        Some(AttachConfig::Mirror {
            interface,
            inject_interface,
        }) => std::iter::once(("port", interface))
            .chain(inject_interface.iter().map(|i| ("inject_port", i)))
            .collect(),
        None => vec![],
    };
    for (key, name) in named {
        if !devices.contains(name) {
            r.issue(
                key,
                format!(
                    "{name:?} is not a device of eal_args (devices: {})",
                    devices.join(", ")
                ),
            );
        }
    }
}

/// The `rules:` section. Files are only named here; they are read (and every problem in them
/// reported with these keys) by [`super::rules::load`] before any socket is opened.
fn rules_section(r: &mut Reader, mut s: Mapping) -> Option<RulesSettings> {
    let p = "rules";
    let files = r.strings(&mut s, "files", "rules.files");
    if files.is_empty() {
        r.issue(
            "rules.files",
            "name at least one rule file or pattern (e.g. /etc/svm/rules/*.rules)",
        );
    }
    let vars_file = r
        .string(&mut s, "vars_file", "rules.vars_file")
        .map(PathBuf::from);
    let address_groups = groups(r, &mut s, "address_groups");
    let port_groups = groups(r, &mut s, "port_groups");
    let threshold_file = r
        .string(&mut s, "threshold_file", "rules.threshold_file")
        .map(PathBuf::from);
    let classification_file = r
        .string(&mut s, "classification_file", "rules.classification_file")
        .map(PathBuf::from);
    let d = dataplane::stream::StreamConfig::default();
    let mut stream = r.section(&mut s, "stream");
    let midstream = r
        .boolean(&mut stream, "midstream", "rules.stream.midstream")
        .unwrap_or(d.midstream);
    let stream_depth = r
        .uint(&mut stream, "depth", "rules.stream.depth", 1, 1 << 32)
        .unwrap_or(d.depth);
    let async_oneside = r
        .boolean(&mut stream, "async_oneside", "rules.stream.async_oneside")
        .unwrap_or(false);
    let inline = r
        .boolean(&mut stream, "inline", "rules.stream.inline")
        .unwrap_or(false);
    r.unknown(&stream, "rules.stream");
    let mut tls = r.section(&mut s, "tls");
    let tls_inspect_encrypted = match r
        .string(
            &mut tls,
            "encryption_handling",
            "rules.tls.encryption_handling",
        )
        .as_deref()
    {
        None | Some("default") => false,
        Some("full") => true,
        Some(other) => {
            r.issue(
                "rules.tls.encryption_handling",
                format!("unknown value {other:?} (default or full)"),
            );
            false
        }
    };
    r.unknown(&tls, "rules.tls");
    r.unknown(&s, p);
    (!files.is_empty()).then_some(RulesSettings {
        files,
        vars_file,
        address_groups,
        port_groups,
        threshold_file,
        classification_file,
        midstream,
        stream_depth,
        async_oneside,
        files_key: "rules.files",
        inline,
        tls_inspect_encrypted,
    })
}

/// `rules.address_groups` / `rules.port_groups`: variable names to values (strings, or numbers
/// for ports).
fn groups(r: &mut Reader, s: &mut Mapping, key: &str) -> Vec<(String, String)> {
    let full = format!("rules.{key}");
    let m = match s.remove(key) {
        None | Some(Value::Null) => return vec![],
        Some(Value::Mapping(m)) => m,
        Some(other) => {
            r.issue(&full, format!("expected a mapping, found {}", kind(&other)));
            return vec![];
        }
    };
    let mut out = Vec::with_capacity(m.len());
    for (k, v) in m {
        let name = match k {
            Value::String(n) => n,
            other => {
                r.issue(
                    &full,
                    format!("a variable name must be a string, found {}", kind(&other)),
                );
                continue;
            }
        };
        let at = format!("{full}.{name}");
        let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            r.issue(&at, "not a variable name (letters, digits and _)");
            continue;
        }
        match v {
            Value::String(t) if !t.trim().is_empty() => out.push((name, t)),
            Value::Number(n) => out.push((name, n.to_string())),
            other => r.issue(
                &at,
                format!(
                    "expected a non-empty string or a number, found {}",
                    kind(&other)
                ),
            ),
        }
    }
    out
}

// Values were range-checked against bounds that fit.
fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

fn to_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn deploy_example_parses() {
        let c = Config::from_yaml(include_str!("../../../deploy/svm.yaml")).unwrap();
        assert!(c.state_dir.is_some());
        assert!(c.api.is_some() && c.central.is_some() && c.nsx.is_some());
        assert_eq!(c.inventory.len(), 1);
        assert!(c.outputs.syslog.is_some());
        let r = c.rules.unwrap();
        assert_eq!(r.files, ["/etc/svm/rules/*.rules"]);
        assert!(r.address_groups.iter().any(|(k, _)| k == "HOME_NET"));
    }

    #[test]
    fn rules_section_parses() {
        let c = Config::from_yaml(
            "mode: mirror\ninterface: x\nrules:\n  files: [/r/*.rules, /r/local.rules]\n  \
             vars_file: /etc/suricata/suricata.yaml\n  \
             address_groups: {HOME_NET: \"[10.0.0.0/8]\", EXTERNAL_NET: \"!$HOME_NET\"}\n  \
             port_groups: {HTTP_PORTS: 8080}\n  threshold_file: /r/threshold.config\n  \
             classification_file: /r/classification.config\n  \
             stream: {midstream: true, depth: 65536, async_oneside: true, inline: true}\n\
             \x20 tls: {encryption_handling: full}\n",
        )
        .unwrap();
        let r = c.rules.unwrap();
        assert_eq!(r.files, ["/r/*.rules", "/r/local.rules"]);
        assert_eq!(
            r.port_groups,
            [("HTTP_PORTS".to_owned(), "8080".to_owned())]
        );
        assert_eq!(r.address_groups.len(), 2);
        assert!(r.midstream);
        assert_eq!(r.stream_depth, 65536);
        assert!(r.async_oneside);
        assert!(r.inline);
        assert!(r.tls_inspect_encrypted);
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
             threshold_file: 7\n  stream: {midstream: maybe, depth: 0, window: 1}\n  colour: red\n",
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
            "rules.stream.window",
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
}
