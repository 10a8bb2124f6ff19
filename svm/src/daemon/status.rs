//! Counters of all workers, summed, and one status report for the log.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use dataplane::attack::{Attack, AttackStats};
use dataplane::io::PortStats;
use dataplane::shared_blocks::BlockControl;
use dataplane::worker::Counters;

use super::workers::WorkerStatus;

/// The sum over workers, plus the per-worker packet counts.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    /// Summed engine counters.
    pub counters: Counters,
    /// Summed port counters, by port.
    pub ports: Vec<PortStats>,
    /// Packets per worker.
    pub per_worker: Vec<u64>,
    /// Events dropped (writer behind).
    pub events_dropped: u64,
    /// Injections with nowhere to go.
    pub unroutable: u64,
    /// Live flows.
    pub flows: usize,
    /// Flows evicted at the cap.
    pub flows_evicted: u64,
    /// Times a flow table filled up (emergency mode).
    pub flow_emergencies: u64,
    /// The attack blockers' state counters, summed.
    pub attack: AttackStats,
}

/// Add the attack blocker's state counters `b` into `a`.
pub fn add_attack(a: &mut AttackStats, b: &AttackStats) {
    a.sources += b.sources;
    a.destinations += b.destinations;
    a.mac_bindings += b.mac_bindings;
    a.proven += b.proven;
    a.evicted += b.evicted;
    a.first_seen_replaced += b.first_seen_replaced;
}

/// Add `b` into `a`.
pub fn add(a: &mut Counters, b: &Counters) {
    a.packets += b.packets;
    a.bytes += b.bytes;
    a.forwarded += b.forwarded;
    a.dropped_blocked += b.dropped_blocked;
    a.dropped_terminated += b.dropped_terminated;
    a.dropped_attack += b.dropped_attack;
    a.dropped_rule += b.dropped_rule;
    a.dropped_stream_urgent += b.dropped_stream_urgent;
    a.rule_alerts += b.rule_alerts;
    a.invalid += b.invalid;
    for (x, y) in a.decoder.iter_mut().zip(b.decoder.iter()) {
        *x += y;
    }
    a.bad_checksum += b.bad_checksum;
    a.excluded += b.excluded;
    a.fragments += b.fragments;
    a.reassembled += b.reassembled;
    for (x, y) in a.detections.iter_mut().zip(b.detections.iter()) {
        *x += y;
    }
    a.blocks_added += b.blocks_added;
    a.blocks_refused += b.blocks_refused;
    a.injected += b.injected;
    a.other_l3 += b.other_l3;
    a.dropped_isolated += b.dropped_isolated;
    a.isolation_resets += b.isolation_resets;
    a.isolations += b.isolations;
    a.would_isolate += b.would_isolate;
    a.web.lookups += b.web.lookups;
    for (k, n) in &b.web.hits {
        *a.web.hits.entry(k.clone()).or_insert(0) += n;
    }
    a.web.trusted += b.web.trusted;
    a.web.dropped += b.web.dropped;
    a.web.quic_blocked += b.web.quic_blocked;
    a.web.unread += b.web.unread;
    a.web.doh_canary += b.web.doh_canary;
    a.unprotected += b.unprotected;
    a.too_deep += b.too_deep;
    a.dropped_too_deep += b.dropped_too_deep;
}

/// Sum the latest published status of every worker.
pub fn collect(statuses: &[Arc<Mutex<WorkerStatus>>]) -> Totals {
    let mut t = Totals::default();
    for s in statuses {
        let s = s.lock().unwrap_or_else(PoisonError::into_inner).clone();
        add(&mut t.counters, &s.counters);
        t.per_worker.push(s.counters.packets);
        t.events_dropped += s.events_dropped;
        t.unroutable += s.unroutable;
        t.flows += s.flows;
        t.flows_evicted += s.flow_stats.evicted;
        t.flow_emergencies += s.flow_stats.emergencies;
        add_attack(&mut t.attack, &s.attack);
        if t.ports.len() < s.ports.len() {
            t.ports.resize(s.ports.len(), PortStats::default());
        }
        for (a, b) in t.ports.iter_mut().zip(s.ports.iter()) {
            a.rx_packets += b.rx_packets;
            a.rx_bytes += b.rx_bytes;
            a.tx_packets += b.tx_packets;
            a.rx_dropped += b.rx_dropped;
            a.tx_failed += b.tx_failed;
        }
    }
    t
}

/// A multi-line status report.
pub fn render(t: &Totals, blocks: &BlockControl) -> String {
    let c = &t.counters;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "svm status: packets {} ({} bytes), forwarded {}, dropped {} (blocked {}, terminated {}, attack {}, rule {}), injected {}, alerts {}, rule alerts {}, flows {}",
        c.packets,
        c.bytes,
        c.forwarded,
        c.dropped(),
        c.dropped_blocked,
        c.dropped_terminated,
        c.dropped_attack,
        c.dropped_rule,
        c.injected,
        c.alerts(),
        c.rule_alerts,
        t.flows
    );
    let _ = writeln!(s, "  per worker packets {:?}", t.per_worker);
    for (i, p) in t.ports.iter().enumerate() {
        let _ = writeln!(
            s,
            "  port {i}: rx {} ({} bytes), tx {}, kernel drops {}, tx failed {}",
            p.rx_packets, p.rx_bytes, p.tx_packets, p.rx_dropped, p.tx_failed
        );
    }
    for (a, n) in Attack::ALL.iter().zip(c.detections.iter()) {
        if *n > 0 {
            let _ = writeln!(s, "  detections {:<28} {n}", a.name());
        }
    }
    let list = blocks.list();
    let _ = write!(
        s,
        "  blocks active {}; events dropped {}, injections unroutable {}",
        list.len(),
        t.events_dropped,
        t.unroutable
    );
    // Columns as wide as their widest cell: an IPv6 address or a QinQ scope keeps them aligned.
    let rows: Vec<Vec<String>> = list
        .iter()
        .take(20)
        .map(|(k, e)| {
            vec![
                "vlan".to_owned(),
                k.scope.to_string(),
                k.addr.to_string(),
                e.reason.to_string(),
                format!("({} packets dropped)", e.hits),
            ]
        })
        .collect();
    for line in crate::admin_cli::table(&rows, &[]) {
        let _ = write!(s, "\n    {line}");
    }
    s
}
