//! `svm replay`: run a capture through the workers (one, or `--workers N` spread by the live
//! symmetric hash) as the inline appliance (`--inline`) or as on a mirror port, and report what
//! the SVM did: events (EVE JSON), the forwarded and injected frames (pcap), and a summary.
//!
//! The capture is a device ([`PcapIo`]) driven by the daemon's driver loop
//! ([`dataplane::driver::run_worker`]); each worker is a [`Driver`], as in `svm run`. Blocks live
//! in the daemon's one table ([`dataplane::shared_blocks`]); its keeper runs here between frames
//! with the packet time as its clock: before a frame it reports the blocks that expired by then,
//! after it the blocks the frame made. Either step is skipped when the keeper says it has
//! nothing to do (no expiry due; no fresh block, command or unpublished change).

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::time::Instant;

use dataplane::attack::Attack;
use dataplane::blocks::DEFAULT_BLOCK_CAPACITY;
use dataplane::decode::DecodeEvent;
use dataplane::driver::{Driven, Driver, Events, RunConfig, WorkerStatus, run_worker};
use dataplane::event::{Event, EventKind};
use dataplane::io::hash::worker_of;
use dataplane::io::pcap::{Frames, PcapError, PcapIo, PcapOutputs, PcapSink, ReadStats};
use dataplane::io::{FrameHandler, Injection, RxMeta};
use dataplane::rules::RuleSet;
use dataplane::settings::{KNOWN, SettingError, WorkerConfigBuilder};
use dataplane::shared_blocks::{BlockControl, BlockKeeper, KeeperStats, SharedBlocks};
use dataplane::time::Timestamp;
use dataplane::worker::{Attach, Counters, Verdict, Worker, WorkerConfig};
use policy::{CompiledPolicy, Policy};
use serde::Serialize;

use crate::cli::{Checksums, Exit, ReplayArgs};
use crate::eve::{EveWriter, format_ts};
use crate::rules_load::{self, RulesSpec, Strictness};

/// Errors of `svm replay`.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The capture could not be read, or an output capture not written.
    #[error(transparent)]
    Pcap(#[from] PcapError),
    /// The policy file is invalid.
    #[error("policy {path}:\n{message}")]
    Policy {
        /// The file.
        path: String,
        /// Every problem, one a line.
        message: String,
    },
    /// A rule, threshold or variables file could not be read.
    #[error("{0}")]
    Rules(String),
    /// Arguments that cannot apply: every problem, one a line.
    #[error("{0}")]
    Arguments(String),
    /// Writing events or the summary failed.
    #[error("{what}: {source}")]
    Output {
        /// What was being written.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl From<std::io::Error> for ReplayError {
    /// An error of the capture device; [`run`] replaces it with the capture's own error.
    fn from(source: std::io::Error) -> Self {
        ReplayError::Output {
            what: "capture".into(),
            source,
        }
    }
}

impl ReplayError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> Exit {
        match self {
            ReplayError::Policy { .. } | ReplayError::Arguments(_) => Exit::Syntax,
            _ => Exit::General,
        }
    }
}

/// A problem of the policy `args` name (the built-in one when none), found after it was read.
fn policy_error(args: &ReplayArgs, message: String) -> ReplayError {
    ReplayError::Policy {
        path: args
            .policy
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        message,
    }
}

fn out_err(what: &str) -> impl FnOnce(std::io::Error) -> ReplayError + '_ {
    move |source| ReplayError::Output {
        what: what.to_owned(),
        source,
    }
}

/// The summary of one replay.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Capture file.
    pub pcap: String,
    /// `inline` or `mirror`.
    pub mode: &'static str,
    /// Whether the policy was in monitoring mode.
    pub monitoring: bool,
    /// Passes over the capture.
    pub loops: u32,
    /// Workers the frames were spread over.
    pub workers: u16,
    /// Frames processed.
    pub packets: u64,
    /// Bytes processed.
    pub bytes: u64,
    /// Seconds spent processing: with `--loop` N > 1 capture loading excluded; a single pass
    /// streams the capture, so its reading is included.
    pub seconds: f64,
    /// Packets per second.
    pub packets_per_sec: f64,
    /// Bits per second.
    pub bits_per_sec: f64,
    /// Frames forwarded.
    pub forwarded: u64,
    /// Frames dropped, in total and by reason.
    pub dropped: u64,
    /// Dropped because the source was blocked.
    pub dropped_blocked: u64,
    /// Dropped because the flow had been terminated.
    pub dropped_terminated: u64,
    /// Dropped as attack packets.
    pub dropped_attack: u64,
    /// Frames injected (resets).
    pub injected: u64,
    /// Injected frames toward the sender of the frame that caused them.
    pub injected_to_source: u64,
    /// Injected frames toward the receiver of the frame that caused them.
    pub injected_to_destination: u64,
    /// Frames that could not be decoded.
    pub invalid: u64,
    /// Decoder events by name (failures and anomalies).
    pub decoder_events: BTreeMap<&'static str, u64>,
    /// Packets skipped for a bad checksum.
    pub bad_checksum: u64,
    /// Packets not inspected because of a `do_not_scan` exclusion.
    pub excluded: u64,
    /// Frames no engine inspected because of the policy's per-VM `protection`.
    pub unprotected: u64,
    /// Frames nested too deep to inspect (9+ VLAN tags, 9+ IPv6 extension headers).
    pub too_deep: u64,
    /// Of those, frames dropped (`decode.too_deep: drop`, inline).
    pub dropped_too_deep: u64,
    /// IP fragments and reassembled datagrams.
    pub fragments: u64,
    /// Datagrams reassembled.
    pub reassembled: u64,
    /// Flows created.
    pub flows: u64,
    /// Flows evicted at the cap.
    pub flows_evicted: u64,
    /// Times the flow table filled up and entered emergency mode.
    pub flow_emergencies: u64,
    /// Entries of the attack blocker's per-address state (sources, destinations, MAC
    /// bindings, proven sources) evicted at their caps.
    pub attack_state_evicted: u64,
    /// First sightings of addresses (attack blocker) lost to another address taking their slot
    /// before their second packet.
    pub attack_first_seen_replaced: u64,
    /// Alerts by attack name.
    pub detections: BTreeMap<&'static str, u64>,
    /// Blocks made.
    pub blocks_added: u64,
    /// Blocks expired.
    pub blocks_expired: u64,
    /// Detection blocks evicted from a full table.
    pub blocks_evicted: u64,
    /// Blocks refused (table full of blocks that may not be evicted, or the keeper behind).
    pub blocks_refused: u64,
    /// Blocks still active at the end, as (scope, address, reason, expiry).
    pub blocks_active: Vec<ActiveBlock>,
    /// EVE records written.
    pub events: u64,
    /// Signature rules loaded (0 without `--rules`).
    pub rules_loaded: usize,
    /// Rules skipped (unsupported or invalid).
    pub rules_skipped: usize,
    /// Seconds spent loading and compiling the rules.
    pub rules_load_seconds: f64,
    /// Activity scanner alerts.
    pub rule_alerts: u64,
    /// Frames dropped by `drop`/`reject` rules.
    pub dropped_rule: u64,
    /// TCP segments with URG set dropped by `stream.reassembly.urgent.policy: drop`.
    pub dropped_stream_urgent: u64,
    /// Web address scan: lists and entries loaded, lookups, hits by category, frames dropped.
    pub web: WebSummary,
    /// Isolation (with `--inventory`): started, ended on time, frames dropped, flows reset,
    /// detections that would have isolated (monitoring), VMs isolated at the end. Absent
    /// without `--inventory`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolation: Option<IsolationSummary>,
}

/// What isolation did in one replay.
#[derive(Debug, Default, Serialize)]
pub struct IsolationSummary {
    /// Isolations started (manual and automatic).
    pub started: u64,
    /// Isolations that ended on time.
    pub expired: u64,
    /// Frames of isolated VMs dropped (inline) or answered with resets (mirror).
    pub dropped: u64,
    /// TCP flows reset.
    pub flows_reset: u64,
    /// Monitoring mode: detections that would have isolated a VM.
    pub would_isolate: u64,
    /// VMs still isolated when the capture ended.
    pub active: Vec<String>,
}

/// The web address scan's part of a replay summary.
#[derive(Debug, Default, Serialize)]
pub struct WebSummary {
    /// Lists compiled.
    pub lists: usize,
    /// Entries compiled.
    pub entries: usize,
    /// Addresses looked up.
    pub lookups: u64,
    /// Listed addresses by category.
    pub hits: BTreeMap<String, u64>,
    /// Lookups a trusted address answered.
    pub trusted: u64,
    /// Frames dropped (requests, ClientHellos, queries, QUIC Initials).
    pub dropped: u64,
    /// QUIC Initials dropped under `quic: block`.
    pub quic_blocked: u64,
    /// Flows whose first bytes could not be read.
    pub unread: u64,
    /// `use-application-dns.net` queries answered NXDOMAIN.
    pub doh_canary: u64,
}

/// How the rules of one replay were loaded.
#[derive(Debug, Default, Clone, Copy)]
pub struct RulesLoad {
    /// Rules loaded.
    pub loaded: usize,
    /// Rules skipped.
    pub skipped: usize,
    /// Seconds.
    pub seconds: f64,
}

/// Settings from the flags, `--set`, `--vars` and `--threshold-file`.
#[derive(Debug, Default)]
struct Settings {
    worker: WorkerConfigBuilder,
    threshold_file: Option<std::path::PathBuf>,
    address_vars: Vec<(String, String)>,
    port_vars: Vec<(String, String)>,
    action_order: Vec<String>,
}

/// Read the worker's settings from the flags and every `--set`: the rule loader's keys here, the
/// worker's through [`WorkerConfigBuilder::set`] (the daemon's builder); an unknown key or a bad
/// value is refused, every problem reported at once.
fn settings(args: &ReplayArgs) -> Result<Settings, ReplayError> {
    let mut s = Settings {
        // `--inline` is the appliance, `--simulate-ips` Suricata's IPS mode: both inspect a
        // packet before forwarding it; otherwise Suricata's IDS timing.
        worker: WorkerConfig::builder()
            .attach(if args.inline {
                Attach::Inline
            } else {
                Attach::Mirror
            })
            .simulate_ips(args.simulate_ips)
            .verify_checksums(args.checksums == Checksums::All),
        threshold_file: args.threshold_file.clone(),
        ..Settings::default()
    };
    let mut problems = Vec::new();
    // The vars file's `host-os-policy` (a `suricata.yaml`'s), before `--set`, which adds to it.
    if let Some(path) = &args.vars
        && let Ok(text) = std::fs::read_to_string(path)
    {
        for (os, list) in rules_load::host_os_of_yaml(&text) {
            if let Err(e) = s.worker.set(&format!("host-os-policy.{os}"), &list) {
                problems.push(format!("{}: {e}", path.display()));
            }
        }
    }
    for kv in &args.set {
        let Some((k, v)) = kv.split_once('=') else {
            problems.push(format!("--set {kv}: expected KEY=VALUE"));
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        match k {
            // `drop,alert,reject,pass`: overrides the vars file's `action-order`.
            "action-order" => s.action_order = v.split(',').map(|a| a.trim().to_owned()).collect(),
            "threshold-file" => s.threshold_file = Some(v.into()),
            _ => {
                if let Some(name) = k.strip_prefix("vars.address-groups.") {
                    s.address_vars.push((name.to_owned(), v.to_owned()));
                } else if let Some(name) = k.strip_prefix("vars.port-groups.") {
                    s.port_vars.push((name.to_owned(), v.to_owned()));
                } else {
                    match s.worker.set(k, v) {
                        Ok(()) => {}
                        Err(SettingError::Unknown { .. }) => problems.push(format!(
                            "--set {k}={v}: unknown setting (known: {}, action-order, \
                             threshold-file, vars.address-groups.NAME, vars.port-groups.NAME)",
                            KNOWN.join(", ")
                        )),
                        Err(e) => problems.push(format!("--set {e}")),
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(s)
    } else {
        Err(ReplayError::Arguments(problems.join("\n")))
    }
}

/// Load the rule files of `args` with the shared loader ([`crate::rules_load`]); without
/// `--rules`, the policy's `activity_scanner.rule_files` (patterns, as the daemon reads them);
/// neither: `None`. The policy's `address_groups`/`port_groups` apply over the vars file, and
/// `--set vars.*` over them.
fn load_rules(
    args: &ReplayArgs,
    s: &Settings,
    scanner: &policy::ActivityScanner,
) -> Result<(Option<Arc<RuleSet>>, RulesLoad), ReplayError> {
    let files = if args.rules.is_empty() {
        let (files, _, problems) = rules_load::expand(&scanner.rule_files);
        if !problems.is_empty() {
            let text: Vec<String> = problems
                .into_iter()
                .map(|(i, m)| format!("activity_scanner.rule_files[{i}]: {m}"))
                .collect();
            return Err(ReplayError::Rules(text.join("\n")));
        }
        files
    } else {
        args.rules.clone()
    };
    if files.is_empty() {
        // What only rules use would be ignored without a word: refuse it.
        let unused: Vec<String> = [
            args.vars
                .as_ref()
                .map(|v| format!("--vars {}", v.display())),
            s.threshold_file
                .as_ref()
                .map(|t| format!("threshold file {}", t.display())),
        ]
        .into_iter()
        .flatten()
        .map(|what| {
            format!(
                "{what} applies to signature rules, and none are loaded: give --rules FILE (or a \
                 policy whose activity_scanner.rule_files names some)"
            )
        })
        .collect();
        if !unused.is_empty() {
            return Err(ReplayError::Arguments(unused.join("\n")));
        }
        return Ok((None, RulesLoad::default()));
    }
    let pairs = |m: &BTreeMap<String, String>| -> Vec<(String, String)> {
        m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    let mut address_groups = pairs(&scanner.address_groups);
    address_groups.extend(s.address_vars.iter().cloned());
    let mut port_groups = pairs(&scanner.port_groups);
    port_groups.extend(s.port_vars.iter().cloned());
    let spec = RulesSpec {
        files,
        vars_file: args.vars.clone(),
        address_groups,
        port_groups,
        threshold_file: s.threshold_file.clone(),
        classification_file: None,
        action_order: s.action_order.clone(),
    };
    let l = rules_load::load(&spec, Strictness::Lenient).map_err(|problems| {
        ReplayError::Rules(
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    for w in &l.warnings {
        eprintln!("svm replay: {w}");
    }
    let load = RulesLoad {
        loaded: l.loaded,
        skipped: l.skipped,
        seconds: l.seconds,
    };
    Ok((Some(l.set), load))
}

/// The web address lists of `--url-list` and the policy's `url_lists`; `None` when there are
/// none (the scan is off).
fn load_web_lists(
    args: &ReplayArgs,
    w: &policy::WebAddressScan,
) -> Result<Option<crate::weblists::Loaded>, ReplayError> {
    let mut specs = Vec::new();
    let mut problems = Vec::new();
    for (i, spec) in args.url_lists.iter().enumerate() {
        match crate::weblists::ListSpec::parse(spec, format!("--url-list {i}")) {
            Ok(s) => specs.push(s),
            Err(e) => problems.push(e),
        }
    }
    if !problems.is_empty() {
        return Err(ReplayError::Arguments(problems.join("\n")));
    }
    specs.extend(crate::weblists::policy_specs(w));
    if specs.is_empty() {
        return Ok(None);
    }
    let l = crate::weblists::load(&specs, w).map_err(|p| ReplayError::Rules(p.join("\n")))?;
    for warning in &l.warnings {
        eprintln!("svm replay: {warning}");
    }
    eprintln!("svm replay: {}", l.describe());
    Ok(Some(l))
}

/// A block active at the end of the replay.
#[derive(Debug, Serialize)]
pub struct ActiveBlock {
    /// VLAN scope.
    pub scope: String,
    /// Address.
    pub address: String,
    /// Reason.
    pub reason: String,
    /// Expiry.
    pub expires: String,
    /// Packets dropped because of it.
    pub hits: u64,
}

fn summarize(
    args: &ReplayArgs,
    workers: &[&Worker],
    blocks: (&BlockControl, KeeperStats),
    seconds: f64,
    (events, injected): (u64, (u64, u64)),
    rules: RulesLoad,
    web: (usize, usize),
) -> Summary {
    let mut sum = Counters::default();
    let (mut flows_created, mut flows_evicted, mut flow_emergencies) = (0, 0, 0);
    let mut attack = dataplane::attack::AttackStats::default();
    for w in workers {
        crate::daemon::status::add(&mut sum, w.counters());
        let f = w.flows().stats();
        flows_created += f.created;
        flows_evicted += f.evicted;
        flow_emergencies += f.emergencies;
        crate::daemon::status::add_attack(&mut attack, &w.attack_blocker().stats());
    }
    let c = &sum;
    let (table, keeper) = blocks;
    let decoder_events = DecodeEvent::ALL
        .iter()
        .zip(c.decoder.iter())
        .filter(|(_, n)| **n > 0)
        .map(|(e, n)| (e.name(), *n))
        .collect();
    let detections = Attack::ALL
        .iter()
        .zip(c.detections.iter())
        .filter(|(_, n)| **n > 0)
        .map(|(a, n)| (a.name(), *n))
        .collect();
    let mut blocks_active: Vec<ActiveBlock> = table
        .list()
        .into_iter()
        .map(|(k, e)| ActiveBlock {
            scope: k.scope.to_string(),
            address: k.addr.to_string(),
            reason: e.reason,
            expires: format_ts(e.expires),
            hits: e.hits,
        })
        .collect();
    blocks_active.sort_by(|a, b| (&a.scope, &a.address).cmp(&(&b.scope, &b.address)));
    let secs = seconds.max(1e-9);
    #[allow(clippy::cast_precision_loss)]
    let (pps, bps) = (c.packets as f64 / secs, c.bytes as f64 * 8.0 / secs);
    Summary {
        pcap: args.pcap.display().to_string(),
        mode: if args.inline { "inline" } else { "mirror" },
        monitoring: workers
            .first()
            .is_some_and(|w| w.policy().policy().mode == policy::Mode::Monitoring),
        loops: args.loops,
        workers: args.workers,
        packets: c.packets,
        bytes: c.bytes,
        seconds,
        packets_per_sec: pps,
        bits_per_sec: bps,
        forwarded: c.forwarded,
        dropped: c.dropped(),
        dropped_blocked: c.dropped_blocked,
        dropped_terminated: c.dropped_terminated,
        dropped_attack: c.dropped_attack,
        injected: c.injected,
        injected_to_source: injected.0,
        injected_to_destination: injected.1,
        invalid: c.invalid,
        decoder_events,
        bad_checksum: c.bad_checksum,
        excluded: c.excluded,
        unprotected: c.unprotected,
        too_deep: c.too_deep,
        dropped_too_deep: c.dropped_too_deep,
        fragments: c.fragments,
        reassembled: c.reassembled,
        flows: flows_created,
        flows_evicted,
        flow_emergencies,
        attack_state_evicted: attack.evicted,
        attack_first_seen_replaced: attack.first_seen_replaced,
        detections,
        blocks_added: keeper.added,
        blocks_expired: keeper.expired,
        blocks_evicted: keeper.evicted,
        blocks_refused: keeper.refused + c.blocks_refused,
        blocks_active,
        events,
        rules_loaded: rules.loaded,
        rules_skipped: rules.skipped,
        rules_load_seconds: rules.seconds,
        rule_alerts: c.rule_alerts,
        dropped_rule: c.dropped_rule,
        dropped_stream_urgent: c.dropped_stream_urgent,
        isolation: None,
        web: WebSummary {
            lists: web.0,
            entries: web.1,
            lookups: c.web.lookups,
            hits: c.web.hits.clone(),
            trusted: c.web.trusted,
            dropped: c.web.dropped,
            quic_blocked: c.web.quic_blocked,
            unread: c.web.unread,
            doh_canary: c.web.doh_canary,
        },
    }
}

fn human_rate(v: f64, unit: &str) -> String {
    if v >= 1e9 {
        format!("{:.2} G{unit}", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2} M{unit}", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.2} k{unit}", v / 1e3)
    } else {
        format!("{v:.0} {unit}")
    }
}

fn print_summary(s: &Summary, w: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        w,
        "svm replay {} ({}{}, {} pass{}{})",
        s.pcap,
        s.mode,
        if s.monitoring { ", monitoring" } else { "" },
        s.loops,
        if s.loops == 1 { "" } else { "es" },
        if s.workers == 1 {
            String::new()
        } else {
            format!(", {} workers", s.workers)
        }
    )?;
    writeln!(
        w,
        "  packets      {} ({} bytes) in {:.3} s: {}/s, {}/s",
        s.packets,
        s.bytes,
        s.seconds,
        human_rate(s.packets_per_sec, "packets"),
        human_rate(s.bits_per_sec, "bit")
    )?;
    writeln!(w, "  forwarded    {}", s.forwarded)?;
    writeln!(
        w,
        "  dropped      {} (blocked source {}, terminated flow {}, attack {})",
        s.dropped, s.dropped_blocked, s.dropped_terminated, s.dropped_attack
    )?;
    if s.dropped_stream_urgent > 0 {
        writeln!(
            w,
            "  urgent       {} segments dropped (stream.reassembly.urgent.policy=drop)",
            s.dropped_stream_urgent
        )?;
    }
    writeln!(w, "  injected     {} resets", s.injected)?;
    let dec: u64 = s.decoder_events.values().sum();
    write!(
        w,
        "  decoder      {} events, {} undecodable frames",
        dec, s.invalid
    )?;
    if !s.decoder_events.is_empty() {
        let parts: Vec<String> = s
            .decoder_events
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        write!(w, " ({})", parts.join(", "))?;
    }
    writeln!(w)?;
    writeln!(
        w,
        "  fragments    {} (reassembled {} datagrams)",
        s.fragments, s.reassembled
    )?;
    writeln!(
        w,
        "  flows        {} (evicted {})",
        s.flows, s.flows_evicted
    )?;
    if s.attack_state_evicted > 0 || s.attack_first_seen_replaced > 0 {
        writeln!(
            w,
            "  attack state {} entries evicted, {} first sightings replaced",
            s.attack_state_evicted, s.attack_first_seen_replaced
        )?;
    }
    if s.excluded > 0 || s.bad_checksum > 0 {
        writeln!(
            w,
            "  uninspected  {} excluded, {} bad checksum",
            s.excluded, s.bad_checksum
        )?;
    }
    if s.unprotected > 0 || s.too_deep > 0 {
        writeln!(
            w,
            "  unprotected  {} (per-VM protection); too deep {} ({} dropped)",
            s.unprotected, s.too_deep, s.dropped_too_deep
        )?;
    }
    let total: u64 = s.detections.values().sum();
    writeln!(w, "  detections   {total}")?;
    for (name, n) in &s.detections {
        writeln!(w, "    {name:<28} {n}")?;
    }
    if s.rules_loaded > 0 || s.rules_skipped > 0 {
        writeln!(
            w,
            "  rules        {} loaded, {} skipped in {:.3} s; {}, {} dropped",
            s.rules_loaded,
            s.rules_skipped,
            s.rules_load_seconds,
            counted(s.rule_alerts, "alert"),
            counted(s.dropped_rule, "packet")
        )?;
    }
    if s.web.lists > 0 {
        let hits: Vec<String> = s.web.hits.iter().map(|(k, v)| format!("{k} {v}")).collect();
        writeln!(
            w,
            "  web          {} lists ({} entries); {} lookups, {} listed ({}), {} trusted, {} dropped",
            s.web.lists,
            s.web.entries,
            s.web.lookups,
            s.web.hits.values().sum::<u64>(),
            hits.join(", "),
            s.web.trusted,
            counted(s.web.dropped, "frame")
        )?;
    }
    writeln!(
        w,
        "  blocks       {} added, {} expired, {} active at end",
        s.blocks_added,
        s.blocks_expired,
        s.blocks_active.len()
    )?;
    if s.blocks_evicted > 0 || s.blocks_refused > 0 {
        writeln!(
            w,
            "    table full: {} evicted, {} refused",
            s.blocks_evicted, s.blocks_refused
        )?;
    }
    if let Some(i) = &s.isolation {
        writeln!(
            w,
            "  isolation    {} started, {} expired, {} dropped, {} reset, {} would isolate; isolated at end: {}",
            i.started,
            i.expired,
            counted(i.dropped, "frame"),
            counted(i.flows_reset, "flow"),
            i.would_isolate,
            if i.active.is_empty() {
                "none".to_owned()
            } else {
                i.active.join(", ")
            }
        )?;
    }
    for b in &s.blocks_active {
        writeln!(
            w,
            "    vlan {:<9} {:<24} {:<28} until {} ({} dropped)",
            b.scope,
            b.address,
            b.reason,
            b.expires,
            counted(b.hits, "packet")
        )?;
    }
    writeln!(w, "  events       {}", s.events)
}

/// `1 packet`, `2 packets`: a count and its noun for people.
fn counted(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// One line per event for people (when no EVE output is requested).
fn human_event(ev: &Event) -> String {
    let ts = format_ts(ev.ts);
    match &ev.kind {
        EventKind::Alert(a) => {
            let p = &a.packet;
            let ports = p
                .ports
                .map(|(s, d)| (format!(":{s}"), format!(":{d}")))
                .unwrap_or_default();
            // The response is what was done: a rule match blocks its source only on a TCP flow
            // whose handshake was seen, else the alert's response is a terminate.
            let what = if a.monitoring {
                format!("would {}", a.response.name())
            } else if a.enforced {
                a.response.name().to_owned()
            } else {
                "allowed".to_owned()
            };
            format!(
                "{ts} ALERT   vlan {:<9} {}{} -> {}{}  {} [{}{}]",
                p.scope,
                p.src_ip,
                ports.0,
                p.dst_ip,
                ports.1,
                a.signature,
                what,
                match (a.excluded, a.block_skipped) {
                    (true, _) => ", excluded from blocking".to_owned(),
                    (false, Some(skip)) => format!(", block skipped: {}", skip.name()),
                    (false, None) => String::new(),
                }
            )
        }
        EventKind::Block { key, change } => match change {
            dataplane::event::BlockChange::Added {
                reason, expires, ..
            } => {
                format!(
                    "{ts} BLOCK   vlan {:<9} {} ({reason}) until {}",
                    key.scope,
                    key.addr,
                    format_ts(*expires)
                )
            }
            dataplane::event::BlockChange::Refused { reason, .. } => {
                format!(
                    "{ts} REFUSED vlan {:<9} {} ({reason}): block table full",
                    key.scope, key.addr
                )
            }
            dataplane::event::BlockChange::Removed { reason, hits, .. } => {
                format!(
                    "{ts} UNBLOCK vlan {:<9} {} ({}; {} dropped)",
                    key.scope,
                    key.addr,
                    reason.name(),
                    counted(*hits, "packet")
                )
            }
        },
        EventKind::Isolation { vm, change } => crate::isolation_eve::human(ev, vm, change),
    }
}

/// Say on standard error what the capture held besides frames: a cut-short end, records
/// without an IP packet, frames of link types that cannot be read.
fn report_capture(path: &std::path::Path, stats: &ReadStats) {
    let path = path.display();
    if stats.truncated {
        eprintln!(
            "svm replay: {path}: capture ends inside a record; replayed the {} before it",
            counted(stats.frames, "frame")
        );
    }
    if stats.skipped > 0 {
        eprintln!(
            "svm replay: {path}: {} without an IPv4 or IPv6 packet skipped",
            counted(stats.skipped, "non-Ethernet record")
        );
    }
    for (linktype, n) in &stats.unsupported {
        if *linktype == u32::MAX {
            eprintln!(
                "svm replay: {path}: {} of an interface no interface block declares skipped",
                counted(*n, "frame")
            );
        } else {
            eprintln!(
                "svm replay: {path}: {} of unsupported link type {linktype} skipped",
                counted(*n, "frame")
            );
        }
    }
}

/// The frame handler of replay: the workers' drivers over one block keeper, which it steps
/// around every frame on packet time (expiries before the frame, the frame's blocks after it),
/// frames spread by the live address hash, events gathered in capture order.
struct Replay {
    drivers: Vec<Driver>,
    keeper: BlockKeeper,
    // Isolation (with --inventory): its keeper, stepped around every frame as the block keeper.
    isolation: Option<crate::isolation::ReplayIsolation>,
    // Events of the frames so far, the keeper's among them, in order.
    events: Vec<Event>,
    // The driver of the latest frame (its injections are the backend's next).
    last: usize,
    frames: u64,
    last_ts: Timestamp,
}

impl Replay {
    /// Step the keeper: with `expire_at`, report the blocks expired by then, else take the
    /// blocks the frame made; then publish. Skipped when the keeper has nothing to do.
    fn keeper_step(&mut self, expire_at: Option<Timestamp>) {
        let Replay { keeper, events, .. } = self;
        let mut on_event = |ev| events.push(ev);
        match expire_at {
            Some(now) if keeper.expiry_due(now) => keeper.expire(now, &mut on_event),
            None if keeper.has_news() => {
                keeper.drain(&mut on_event);
            }
            _ => return,
        }
        keeper.publish();
    }
}

impl FrameHandler for Replay {
    fn on_frame(&mut self, frame: &[u8], meta: RxMeta) -> Verdict {
        self.frames += 1;
        self.last_ts = meta.ts;
        self.keeper_step(Some(meta.ts));
        if let Some(iso) = self.isolation.as_mut() {
            iso.before_frame(meta.ts, &mut self.events);
        }
        let n = self.drivers.len();
        let i = if n > 1 { worker_of(frame, n) } else { 0 };
        let Some(d) = self.drivers.get_mut(i) else {
            return Verdict::Forward;
        };
        self.last = i;
        // Frames are numbered by their place in the capture, whichever worker gets them.
        d.set_received(self.frames - 1);
        let verdict = d.on_frame(frame, meta);
        if d.has_events() {
            self.events.extend(d.take_events());
        }
        self.keeper_step(None);
        if let Some(iso) = self.isolation.as_mut() {
            iso.after_frame(&mut self.events);
        }
        verdict
    }

    fn take_injections(&mut self, out: &mut Vec<Injection>) {
        if let Some(d) = self.drivers.get_mut(self.last) {
            d.take_injections(out);
        }
    }

    /// The farthest any worker wants frames named ahead (asked once per poll).
    fn lookahead(&self) -> usize {
        self.drivers
            .iter()
            .map(Driver::lookahead)
            .max()
            .unwrap_or(0)
    }

    /// To the worker the frame will go to, as [`FrameHandler::on_frame`] picks it.
    fn prefetch(&mut self, frame: &[u8]) {
        let n = self.drivers.len();
        let i = if n > 1 { worker_of(frame, n) } else { 0 };
        if let Some(d) = self.drivers.get_mut(i) {
            d.prefetch(frame);
        }
    }
}

impl Driven for Replay {
    fn refresh(&mut self) {}

    /// The capture ended: in IDS mode, what was never acknowledged is inspected now, at the
    /// time of the capture's last frame, worker by worker.
    fn finish(&mut self) {
        for d in &mut self.drivers {
            d.finish_at(self.last_ts);
            self.events.extend(d.take_events());
        }
    }

    fn status(&self) -> WorkerStatus {
        WorkerStatus::default()
    }
}

/// Where replay writes events: EVE JSON, or one line per event for people.
struct EventSink {
    eve: Option<EveWriter>,
    human: Option<BufWriter<std::io::Stdout>>,
    written: u64,
}

impl EventSink {
    fn write(&mut self, events: &mut Vec<Event>) -> Result<(), ReplayError> {
        for ev in events.drain(..) {
            self.written += 1;
            if let Some(w) = self.eve.as_mut() {
                w.write(&ev).map_err(out_err("EVE output"))?;
            } else if let Some(h) = self.human.as_mut() {
                writeln!(h, "{}", human_event(&ev)).map_err(out_err("standard output"))?;
            }
        }
        Ok(())
    }
}

/// Frames a replay poll hands over before its events are written out.
const REPLAY_BURST: usize = 64;

/// Run `svm replay`.
pub fn run(args: &ReplayArgs) -> Result<(), ReplayError> {
    let policy = match &args.policy {
        Some(path) => Policy::load(path).map_err(|e| ReplayError::Policy {
            path: path.display().to_string(),
            message: e.to_string(),
        })?,
        None => Policy::default(),
    };
    let scanner_policy = policy.activity_scanner.clone();
    if let Some(e) = crate::weblists::check_block_page(&policy.web_address_scan) {
        return Err(policy_error(args, e.to_string()));
    }
    let web = load_web_lists(args, &policy.web_address_scan)?;
    let compiled = Arc::new(CompiledPolicy::compile(policy));
    // One pass streams the file; several read it into memory once, so passes measure
    // processing, not reading.
    let capture = Frames::open(&args.pcap, args.loops > 1)?;
    let settings = settings(args)?;
    let (rules, rules_load) = load_rules(args, &settings, &scanner_policy)?;
    let cfg = settings.worker;
    let SharedBlocks {
        keeper,
        control: table,
        clients,
    } = SharedBlocks::new(
        usize::from(args.workers),
        usize::try_from(args.max_blocks).unwrap_or(DEFAULT_BLOCK_CAPACITY),
    );
    let (isolation, iso_clients) = crate::isolation::ReplayIsolation::new(
        args.inventory.as_deref(),
        &args.isolate,
        &args.isolate_exclude,
        usize::from(args.workers),
    )
    .map_err(ReplayError::Arguments)?;
    // Per-VM protection names inventory ids: without --inventory every one is unknown.
    let unknown: Vec<String> = compiled
        .policy()
        .protection
        .unknown_vms(|id| {
            iso_clients
                .first()
                .is_some_and(|c| c.protected().get(id).is_some())
        })
        .map(|e| e.to_string())
        .collect();
    if !unknown.is_empty() {
        return Err(policy_error(args, unknown.join("\n")));
    }
    let mut iso_clients = iso_clients.into_iter();
    let drivers: Vec<Driver> = clients
        .into_iter()
        .zip(0u16..)
        .map(|(blocks, index)| {
            let cfg = cfg.index(index).build();
            let mut w = Worker::new(cfg, Arc::clone(&compiled), blocks);
            w.set_rules(rules.clone());
            if let Some(c) = iso_clients.next() {
                w.set_isolation(c);
            }
            w.set_web_addresses(web.as_ref().map(|l| Arc::clone(&l.set)));
            Driver::new(w, Events::Keep(Vec::new()))
        })
        .collect();
    let mut replay = Replay {
        drivers,
        keeper,
        isolation,
        events: Vec::new(),
        last: 0,
        frames: 0,
        last_ts: Timestamp(0),
    };

    let stdout_eve = args.eve.as_deref() == Some("-");
    let eve = match args.eve.as_deref() {
        None => None,
        Some("-") => Some(EveWriter::new(Box::new(BufWriter::new(std::io::stdout())))),
        Some(path) => {
            let f = std::fs::File::create(path).map_err(out_err(path))?;
            Some(EveWriter::new(Box::new(BufWriter::with_capacity(
                1 << 16,
                f,
            ))))
        }
    }
    .map(|w| w.with_pcap_filename(&args.pcap.display().to_string()));
    let sink = |p: &Option<std::path::PathBuf>| p.as_deref().map(PcapSink::create).transpose();
    let outputs = PcapOutputs {
        forwarded: sink(&args.write_forwarded)?,
        injected: sink(&args.write_injected)?,
        toward_source: sink(&args.write_injected_to_source)?,
        toward_destination: sink(&args.write_injected_to_destination)?,
    };
    let human = if eve.is_none() {
        Some(BufWriter::new(std::io::stdout()))
    } else {
        None
    };
    let mut out = EventSink {
        eve,
        human,
        written: 0,
    };

    let mut io = PcapIo::new(capture, args.loops, outputs);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let run = RunConfig {
        burst: REPLAY_BURST,
        stop: &stop,
        status: None,
    };
    let started = Instant::now();
    let mut progress = crate::replay_progress::ReplayProgress::new(args.progress);
    let result = run_worker(&mut io, &mut replay, &run, |r, io, _| {
        progress.tick(io);
        out.write(&mut r.events)
    });
    progress.finish();
    // What the last frames and the end-of-capture inspection produced, also when the capture
    // turned out corrupt: nothing found before the error is lost.
    let written = out.write(&mut replay.events);
    if let Some(e) = io.take_error() {
        return Err(e.into());
    }
    result?;
    written?;
    if let Some(stats) = io.first_pass() {
        report_capture(&args.pcap, stats);
    }
    let seconds = started.elapsed().as_secs_f64();
    let EventSink {
        eve,
        human,
        written: events,
    } = out;
    if let Some(mut w) = eve {
        w.flush().map_err(out_err("EVE output"))?;
    }
    let injected = io.injected_by_direction();
    io.finish()?;
    let Replay {
        drivers,
        keeper,
        isolation,
        last_ts,
        ..
    } = replay;
    let stats = keeper.stats();
    let workers: Vec<&Worker> = drivers.iter().map(Driver::worker).collect();
    let web_sizes = web.as_ref().map_or((0, 0), |l| (l.lists, l.entries));
    let mut summary = summarize(
        args,
        &workers,
        (&table, stats),
        seconds,
        (events, injected),
        rules_load,
        web_sizes,
    );
    if let Some(iso) = &isolation {
        let (st, active) = iso.finish(last_ts);
        let c = workers.iter().fold(Counters::default(), |mut a, w| {
            crate::daemon::status::add(&mut a, w.counters());
            a
        });
        summary.isolation = Some(IsolationSummary {
            started: st.started,
            expired: st.expired,
            dropped: c.dropped_isolated,
            flows_reset: c.isolation_resets,
            would_isolate: c.would_isolate,
            active: active.iter().map(|i| i.vm.id.to_string()).collect(),
        });
    }
    if let Some(path) = &args.summary_json {
        let text = serde_json::to_string_pretty(&summary).map_err(|e| ReplayError::Output {
            what: "summary".into(),
            source: e.into(),
        })?;
        std::fs::write(path, text).map_err(out_err("summary JSON"))?;
    }
    if let Some(mut h) = human {
        writeln!(h).map_err(out_err("standard output"))?;
        print_summary(&summary, &mut h).map_err(out_err("standard output"))?;
        h.flush().map_err(out_err("standard output"))?;
    } else if stdout_eve {
        print_summary(&summary, &mut std::io::stderr()).map_err(out_err("standard error"))?;
    } else {
        print_summary(&summary, &mut std::io::stdout()).map_err(out_err("standard output"))?;
    }
    Ok(())
}
