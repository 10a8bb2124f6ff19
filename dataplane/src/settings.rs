//! A worker's settings and the one way to build them. The daemon (typed, from its YAML) and
//! `svm replay` (its flags and Suricata-style `--set KEY=VALUE`) both go through
//! [`WorkerConfigBuilder`], so a setting means the same in both and the same rule holds for
//! names nobody knows: they are refused ([`SettingError::Unknown`]), never ignored.

use crate::attack::StateCaps;
use crate::decode::DecodeOptions;
use crate::decode::tunnel::{Ports, TunnelConfig};
use crate::defrag::DefragConfig;
use crate::flow::FlowConfig;
use crate::scanner::{InspectionMode, ScannerConfig};
use crate::stream::{MEMCAP_RANGE, MemcapBytes, UrgentPolicy};

/// How the SVM is attached to the traffic.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Attach {
    /// Inline: every allowed frame is forwarded; drops are real.
    Inline,
    /// Mirror: the SVM sees copies; it can only inject resets. Blocked sources get a reset for
    /// every TCP segment they send.
    #[default]
    Mirror,
}

/// Worker settings.
#[derive(Clone, Copy, Debug, Default)]
pub struct WorkerConfig {
    /// Decoder options (checksum validation).
    pub decode: DecodeOptions,
    /// Flow table.
    pub flows: FlowConfig,
    /// Defragmenter.
    pub defrag: DefragConfig,
    /// Caps of the attack blocker's state.
    pub attack_caps: StateCaps,
    /// Attach mode.
    pub attach: Attach,
    /// Worker index (salts flow ids).
    pub index: u16,
    /// Activity scanner (signature rules) settings.
    pub scanner: ScannerConfig,
    /// Which tunnels are opened and on which UDP ports.
    pub tunnels: TunnelConfig,
}

/// A setting [`WorkerConfigBuilder::set`] refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// No such setting.
    #[error("{key}: unknown setting (known: {})", KNOWN.join(", "))]
    Unknown {
        /// The name given.
        key: String,
    },
    /// The value does not fit the setting.
    #[error("{key}={value}: expected {expected}")]
    Invalid {
        /// The setting.
        key: String,
        /// The value given.
        value: String,
        /// What it takes.
        expected: &'static str,
    },
}

/// The settings [`WorkerConfigBuilder::set`] knows, by their Suricata (or daemon) names.
pub const KNOWN: [&str; 19] = [
    "stream.midstream",
    "stream.inline",
    "stream.async-oneside",
    "stream.reassembly.depth",
    "stream.reassembly.memcap",
    "stream.reassembly.urgent.policy",
    "stream.reassembly.urgent.oob-limit-policy",
    "app-layer.protocols.tls.encryption-handling",
    "app-layer.protocols.dns.tcp.detection-ports.dp",
    "app-layer.protocols.dns.udp.detection-ports.dp",
    "flows.max",
    "decoder.vxlan.enabled",
    "decoder.vxlan.ports",
    "decoder.geneve.enabled",
    "decoder.geneve.ports",
    "decoder.teredo.enabled",
    "decoder.teredo.ports",
    "decoder.erspan.typeI.enabled",
    "host-os-policy.OS",
];

/// The range of `flows.max` (the daemon's setting of that name).
pub const MAX_FLOWS: core::ops::RangeInclusive<usize> = 1024..=1 << 26;

/// Builds a [`WorkerConfig`]: typed setters for what a caller knows by type, [`Self::set`] for
/// settings by name.
#[derive(Clone, Copy, Debug, Default)]
pub struct WorkerConfigBuilder {
    cfg: WorkerConfig,
    // Inspection on arrival asked for whatever the attach mode.
    inline_inspection: bool,
}

impl WorkerConfig {
    /// A builder, starting from the defaults (mirror attach, IDS timing).
    pub fn builder() -> WorkerConfigBuilder {
        WorkerConfigBuilder::default()
    }
}

impl WorkerConfigBuilder {
    /// The attach mode. Inline, stream data is inspected as it arrives (the engine sits in the
    /// path); on a mirror with Suricata's IDS timing, unless [`Self::inline_inspection`].
    #[must_use]
    pub fn attach(mut self, attach: Attach) -> Self {
        self.cfg.attach = attach;
        self
    }

    /// Inspect stream data as it arrives even on a mirror (Suricata's `stream.inline`).
    #[must_use]
    pub fn inline_inspection(mut self, on: bool) -> Self {
        self.inline_inspection |= on;
        self
    }

    /// Suricata's `--simulate-ips` (implies inspection on arrival).
    #[must_use]
    pub fn simulate_ips(mut self, on: bool) -> Self {
        self.cfg.scanner.simulate_ips = on;
        self.inline_inspection |= on;
        self
    }

    /// The worker's index (salts flow ids).
    #[must_use]
    pub fn index(mut self, index: u16) -> Self {
        self.cfg.index = index;
        self
    }

    /// Validate checksums (`-k all`; the daemon's `verify_checksums`).
    #[must_use]
    pub fn verify_checksums(mut self, on: bool) -> Self {
        self.cfg.decode.verify_checksums = on;
        self
    }

    /// The flow table's cap.
    #[must_use]
    pub fn max_flows(mut self, n: usize) -> Self {
        self.cfg.flows.max_flows = n;
        self
    }

    /// The defragmenter's caps.
    #[must_use]
    pub fn defrag_caps(mut self, max_datagrams: usize, max_bytes: usize) -> Self {
        self.cfg.defrag.max_datagrams = max_datagrams;
        self.cfg.defrag.max_bytes = max_bytes;
        self
    }

    /// Reassembly: pick up flows without their handshake, and collect at most `depth` bytes per
    /// direction.
    #[must_use]
    pub fn stream(mut self, midstream: bool, depth: u64) -> Self {
        self.cfg.scanner.stream.midstream = midstream;
        self.cfg.scanner.stream.depth = depth;
        self
    }

    /// The memory a worker's streams may hold, bytes (Suricata's `stream.reassembly.memcap`,
    /// here per worker).
    #[must_use]
    pub fn stream_memcap(mut self, bytes: usize) -> Self {
        self.cfg.scanner.memcap = MemcapBytes(bytes);
        self
    }

    /// Urgent data: the policy, and the one past the out-of-band limit (Suricata's
    /// `stream.reassembly.urgent.policy` and `.oob-limit-policy`; the limit policy is never
    /// `oob`).
    #[must_use]
    pub fn urgent(mut self, policy: UrgentPolicy, oob_limit: UrgentPolicy) -> Self {
        self.cfg.scanner.stream.urgent = policy;
        if oob_limit != UrgentPolicy::Oob {
            self.cfg.scanner.stream.urgent_oob_limit = oob_limit;
        }
        self
    }

    /// Suricata's `stream.async-oneside`.
    #[must_use]
    pub fn async_oneside(mut self, on: bool) -> Self {
        self.cfg.scanner.async_oneside = on;
        self
    }

    /// The receiving hosts' operating systems (Suricata's `host-os-policy`).
    #[must_use]
    pub fn host_os(mut self, host_os: crate::stream::HostOsPolicy) -> Self {
        self.cfg.flows.host_os = host_os;
        self
    }

    /// Keep inspecting encrypted TLS payload (Suricata's `encryption-handling: full`).
    #[must_use]
    pub fn tls_inspect_encrypted(mut self, on: bool) -> Self {
        self.cfg.scanner.tls_inspect_encrypted = on;
        self
    }

    /// The ports app-layer detection recognises DNS on.
    #[must_use]
    pub fn detection_ports(mut self, ports: crate::app::DetectionPorts) -> Self {
        self.cfg.scanner.detection_ports = ports;
        self
    }

    /// Apply the setting `key` = `value` (see [`KNOWN`]); an unknown key or a bad value is
    /// refused and changes nothing.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), SettingError> {
        let invalid = |expected| SettingError::Invalid {
            key: key.to_owned(),
            value: value.to_owned(),
            expected,
        };
        const BOOL: &str = "true or false (yes/no, on/off, 1/0)";
        let stream = &mut self.cfg.scanner.stream;
        match key {
            "stream.midstream" => stream.midstream = parse_bool(value).ok_or(invalid(BOOL))?,
            "stream.inline" => self.inline_inspection |= parse_bool(value).ok_or(invalid(BOOL))?,
            "stream.async-oneside" => {
                self.cfg.scanner.async_oneside = parse_bool(value).ok_or(invalid(BOOL))?;
            }
            "stream.reassembly.depth" => {
                stream.depth = parse_size(value).ok_or(invalid("a size (e.g. 1mb, 65536)"))?;
            }
            "stream.reassembly.urgent.policy" => {
                stream.urgent =
                    UrgentPolicy::parse(value).ok_or(invalid("inline, oob, gap or drop"))?;
            }
            "stream.reassembly.urgent.oob-limit-policy" => {
                stream.urgent_oob_limit = UrgentPolicy::parse(value)
                    .filter(|p| *p != UrgentPolicy::Oob)
                    .ok_or(invalid("inline, gap or drop"))?;
            }
            "stream.reassembly.memcap" => {
                let bytes = parse_size(value)
                    .filter(|n| MEMCAP_RANGE.contains(n))
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or(invalid("a size in 1mb..=64gb (e.g. 256mb)"))?;
                self.cfg.scanner.memcap = MemcapBytes(bytes);
            }
            // Suricata's `default` stops inspecting the payload of encrypted TLS; `full` keeps
            // on. `bypass` also stops the app layer and reassembly there; for detection it is
            // `default` (no flow bypass here).
            "app-layer.protocols.tls.encryption-handling" => match value {
                "default" | "bypass" | "full" => {
                    self.cfg.scanner.tls_inspect_encrypted = value == "full";
                }
                _ => return Err(invalid("default, bypass or full")),
            },
            // Suricata's port syntax (no negation): DNS is recognised on these ports.
            "app-layer.protocols.dns.tcp.detection-ports.dp"
            | "app-layer.protocols.dns.udp.detection-ports.dp" => {
                let ports = crate::app::PortRanges::parse(value).ok_or(invalid(
                    "up to 8 ports or ranges, e.g. 53, [53, 1053], 1024:65535 or any",
                ))?;
                let d = &mut self.cfg.scanner.detection_ports;
                if key.contains(".tcp.") {
                    d.dns_tcp = ports;
                } else {
                    d.dns_udp = ports;
                }
            }
            "flows.max" => {
                self.cfg.flows.max_flows = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| MAX_FLOWS.contains(n))
                    .ok_or(invalid("a number of flows in 1024..=67108864"))?;
            }
            // Suricata's tunnel decoders: `enabled` switches one on (on its default port when it
            // was off) or off; `ports` lists its UDP ports (and switches it on).
            "decoder.vxlan.enabled" | "decoder.geneve.enabled" | "decoder.teredo.enabled" => {
                let on = parse_bool(value).ok_or(invalid(BOOL))?;
                let (slot, default) = self.tunnel_ports(key);
                *slot = on.then(|| slot.unwrap_or(Ports::one(default)));
            }
            "decoder.vxlan.ports" | "decoder.geneve.ports" | "decoder.teredo.ports" => {
                let ports = Ports::parse(value)
                    .ok_or(invalid("up to 8 UDP ports, e.g. 4789 or [4789, 8472]"))?;
                *self.tunnel_ports(key).0 = Some(ports);
            }
            "decoder.erspan.typeI.enabled" => {
                self.cfg.tunnels.erspan_type1 = parse_bool(value).ok_or(invalid(BOOL))?;
            }
            // Suricata's `host-os-policy`: `host-os-policy.old-linux=[2.2.2.2, 10.0.0.0/8]`.
            _ if key.starts_with("host-os-policy.") => {
                let os = key.trim_start_matches("host-os-policy.");
                self.cfg.flows.host_os.add(os, value).map_err(|e| match e {
                    crate::stream::os_policy::HostOsError::UnknownOs(_) => invalid(
                        "an OS of bsd, bsd-right, old-linux, linux, old-solaris, solaris, \
                             hpux10, hpux11, irix, macos, windows, vista, windows2k3, first, last",
                    ),
                    crate::stream::os_policy::HostOsError::BadPrefix(_) => {
                        invalid("a list of addresses or prefixes, e.g. [10.0.0.0/8, 2001:db8::1]")
                    }
                    crate::stream::os_policy::HostOsError::TooMany => {
                        invalid("at most 32 prefixes in all host-os-policy entries")
                    }
                })?;
            }
            _ => {
                return Err(SettingError::Unknown {
                    key: key.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// The port setting of the tunnel a `decoder.NAME.*` key names, and its default port.
    fn tunnel_ports(&mut self, key: &str) -> (&mut Option<Ports>, u16) {
        let t = &mut self.cfg.tunnels;
        if key.starts_with("decoder.vxlan.") {
            (&mut t.vxlan, 4789)
        } else if key.starts_with("decoder.geneve.") {
            (&mut t.geneve, 6081)
        } else {
            (&mut t.teredo, 3544)
        }
    }

    /// Which tunnels are opened.
    #[must_use]
    pub fn tunnels(mut self, tunnels: TunnelConfig) -> Self {
        self.cfg.tunnels = tunnels;
        self
    }

    /// The settings.
    pub fn build(self) -> WorkerConfig {
        let mut cfg = self.cfg;
        cfg.scanner.mode = if cfg.attach == Attach::Inline || self.inline_inspection {
            InspectionMode::Inline
        } else {
            InspectionMode::Ids
        };
        cfg
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// `1mb`, `512kb`, `1048576`, `1gb` (Suricata's size syntax).
fn parse_size(v: &str) -> Option<u64> {
    let t = v.trim().to_ascii_lowercase();
    let (num, mul) = if let Some(n) = t.strip_suffix("gb") {
        (n, 1u64 << 30)
    } else if let Some(n) = t.strip_suffix("mb") {
        (n, 1 << 20)
    } else if let Some(n) = t.strip_suffix("kb") {
        (n, 1 << 10)
    } else {
        (t.as_str(), 1)
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mul)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_and_inline_inspection_choose_the_timing() {
        let mode = |b: WorkerConfigBuilder| b.build().scanner.mode;
        assert_eq!(mode(WorkerConfig::builder()), InspectionMode::Ids);
        assert_eq!(
            mode(WorkerConfig::builder().attach(Attach::Inline)),
            InspectionMode::Inline
        );
        assert_eq!(
            mode(WorkerConfig::builder().inline_inspection(true)),
            InspectionMode::Inline
        );
        assert_eq!(
            mode(WorkerConfig::builder().simulate_ips(true)),
            InspectionMode::Inline
        );
        let mut b = WorkerConfig::builder();
        assert_eq!(b.set("stream.inline", "yes"), Ok(()));
        assert_eq!(mode(b), InspectionMode::Inline);
        // false does not undo inline attach.
        let mut b = WorkerConfig::builder().attach(Attach::Inline);
        assert_eq!(b.set("stream.inline", "false"), Ok(()));
        assert_eq!(mode(b), InspectionMode::Inline);
    }

    #[test]
    fn settings_by_name_apply_or_are_refused_and_change_nothing() {
        let mut b = WorkerConfig::builder();
        for (k, v) in [
            ("stream.midstream", "on"),
            ("stream.async-oneside", "1"),
            ("stream.reassembly.depth", "2mb"),
            ("stream.reassembly.memcap", "64mb"),
            ("app-layer.protocols.tls.encryption-handling", "full"),
            ("flows.max", "4096"),
            ("decoder.geneve.enabled", "no"),
            ("decoder.teredo.ports", "[3544, 3545]"),
            ("decoder.erspan.typeI.enabled", "yes"),
            ("app-layer.protocols.dns.tcp.detection-ports.dp", "1053"),
            (
                "app-layer.protocols.dns.udp.detection-ports.dp",
                "[53, 5300:5399]",
            ),
            ("host-os-policy.old-linux", "[2.2.2.2]"),
            ("stream.reassembly.urgent.policy", "oob"),
            ("stream.reassembly.urgent.oob-limit-policy", "drop"),
        ] {
            assert_eq!(b.set(k, v), Ok(()), "{k}={v}");
        }
        let before = format!("{:?}", b.build());
        let c = b.build();
        assert!(c.scanner.stream.midstream && c.scanner.async_oneside);
        assert!(c.scanner.tls_inspect_encrypted);
        assert_eq!(c.scanner.stream.depth, 2 << 20);
        assert_eq!(c.scanner.stream.urgent, UrgentPolicy::Oob);
        assert_eq!(c.scanner.stream.urgent_oob_limit, UrgentPolicy::Drop);
        assert_eq!(c.scanner.memcap, MemcapBytes(64 << 20));
        assert_eq!(c.flows.max_flows, 4096);
        assert_eq!(c.tunnels.geneve, None);
        assert_eq!(c.tunnels.teredo, Ports::parse("3544,3545"));
        assert!(c.tunnels.erspan_type1 && c.tunnels.vxlan == Some(Ports::one(4789)));
        let d = c.scanner.detection_ports;
        assert!(d.dns_tcp.contains(1053) && !d.dns_tcp.contains(53));
        assert!(d.dns_udp.contains(53) && d.dns_udp.contains(5399) && !d.dns_udp.contains(5400));
        assert_eq!(
            c.flows.host_os.lookup(0x0202_0202, false),
            crate::stream::OsPolicy::OldLinux
        );
        let unknown = b.set("stream.bypass", "yes");
        assert_eq!(
            unknown,
            Err(SettingError::Unknown {
                key: "stream.bypass".into()
            })
        );
        assert!(
            unknown
                .map_err(|e| e.to_string())
                .unwrap_err()
                .contains("known: stream.midstream")
        );
        for (k, v) in [
            ("stream.midstream", "maybe"),
            ("stream.reassembly.depth", "lots"),
            ("stream.reassembly.memcap", "512kb"),
            ("stream.reassembly.memcap", "65gb"),
            ("stream.reassembly.memcap", "lots"),
            ("app-layer.protocols.tls.encryption-handling", "half"),
            ("flows.max", "10"),
            ("flows.max", "67108865"),
            ("decoder.vxlan.enabled", "sometimes"),
            ("decoder.geneve.ports", "[6081, 0]"),
            ("decoder.teredo.ports", "any"),
            ("decoder.erspan.typeI.enabled", "2"),
            ("app-layer.protocols.dns.tcp.detection-ports.dp", "!53"),
            ("app-layer.protocols.dns.udp.detection-ports.dp", "60:50"),
            (
                "app-layer.protocols.dns.udp.detection-ports.dp",
                "1,2,3,4,5,6,7,8,9",
            ),
            ("host-os-policy.plan9", "[1.2.3.4]"),
            ("stream.reassembly.urgent.policy", "ignore"),
            ("stream.reassembly.urgent.oob-limit-policy", "oob"),
            ("host-os-policy.linux", "[1.2.3.4/40]"),
        ] {
            assert!(
                matches!(b.set(k, v), Err(SettingError::Invalid { .. })),
                "{k}={v}"
            );
        }
        assert_eq!(format!("{:?}", b.build()), before);
        // Every known name is accepted with some value.
        for k in KNOWN {
            let k = k.replace(".OS", ".old-linux");
            let ok = ["true", "1mb", "full", "65536", "4789", "[2.2.2.2]", "gap"]
                .iter()
                .any(|v| WorkerConfig::builder().set(&k, v).is_ok());
            assert!(ok, "{k}");
        }
    }

    #[test]
    fn sizes_read_as_suricata_writes_them() {
        assert_eq!(parse_size("1mb"), Some(1 << 20));
        assert_eq!(parse_size(" 512KB "), Some(512 << 10));
        assert_eq!(parse_size("1gb"), Some(1 << 30));
        assert_eq!(parse_size("65536"), Some(65536));
        assert_eq!(parse_size("mb"), None);
        assert_eq!(parse_size("99999999999gb"), None);
    }
}
