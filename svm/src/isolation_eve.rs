//! Isolation events in EVE JSON (`event_type` `isolation_started`, `isolation_ended`,
//! `would_isolate`) and in replay's human lines. The keeper builds the events
//! ([`dataplane::isolation::table`]); this only writes them.

use std::sync::Arc;

use dataplane::event::Event;
use dataplane::isolation::{IsolationChange, IsolationOrigin, ProtectedVm, mac_text};
use serde::Serialize;

use crate::eve::format_ts;

#[derive(Serialize)]
struct Nic {
    vlan: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    mac: Option<String>,
    addresses: Vec<String>,
}

#[derive(Serialize)]
struct Vm {
    id: String,
    interfaces: Vec<Nic>,
}

#[derive(Serialize, Default)]
struct Body {
    vm: Option<Vm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    engine: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exclusions: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flows_reset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dropped: Option<u64>,
}

#[derive(Serialize)]
struct Record {
    timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pcap_cnt: Option<u64>,
    event_type: &'static str,
    isolation: Body,
}

fn vm_of(vm: &ProtectedVm) -> Vm {
    Vm {
        id: vm.id.to_string(),
        interfaces: vm
            .nics
            .iter()
            .map(|n| Nic {
                vlan: n.scope.to_string(),
                mac: n.mac.map(mac_text),
                addresses: vm.addresses(n).iter().map(ToString::to_string).collect(),
            })
            .collect(),
    }
}

fn origin_fields(b: &mut Body, o: &IsolationOrigin) {
    b.origin = Some(o.name());
    match o {
        IsolationOrigin::Manual { note } => {
            b.note = (!note.is_empty()).then(|| note.clone());
        }
        IsolationOrigin::Automatic {
            engine,
            signature,
            sid,
            flow_id,
        } => {
            b.engine = Some(engine.name());
            b.signature = Some(signature.to_string());
            b.signature_id = Some(*sid);
            b.flow_id = *flow_id;
        }
    }
}

/// The `event_type` of an isolation change.
pub fn event_type(change: &IsolationChange) -> &'static str {
    match change {
        IsolationChange::Started { .. } => "isolation_started",
        IsolationChange::Ended { .. } => "isolation_ended",
        IsolationChange::WouldIsolate { .. } => "would_isolate",
    }
}

/// One isolation event as an EVE JSON line (without the newline).
pub fn to_json(
    ev: &Event,
    vm: &Arc<ProtectedVm>,
    change: &IsolationChange,
) -> serde_json::Result<String> {
    let mut b = Body {
        vm: Some(vm_of(vm)),
        ..Body::default()
    };
    match change {
        IsolationChange::Started {
            origin,
            expires,
            duration_secs,
            exclusions,
            flows_reset,
        } => {
            // Started isolations give their origin as the reason (manual or automatic).
            b.reason = Some(origin.name());
            origin_fields(&mut b, origin);
            b.duration = Some(*duration_secs);
            b.expires = Some(format_ts(*expires));
            b.exclusions = Some(exclusions.clone());
            b.flows_reset = Some(*flows_reset);
        }
        IsolationChange::Ended {
            reason,
            origin,
            started,
            dropped,
            flows_reset,
        } => {
            b.reason = Some(reason.name());
            origin_fields(&mut b, origin);
            b.started = Some(format_ts(*started));
            b.duration = Some(ev.ts.since(*started) / dataplane::time::Timestamp::SECOND);
            b.dropped = Some(*dropped);
            b.flows_reset = Some(*flows_reset);
        }
        IsolationChange::WouldIsolate {
            origin,
            duration_secs,
        } => {
            origin_fields(&mut b, origin);
            b.duration = Some(*duration_secs);
        }
    }
    serde_json::to_string(&Record {
        timestamp: format_ts(ev.ts),
        pcap_cnt: ev.pcap_cnt,
        event_type: event_type(change),
        isolation: b,
    })
}

/// One line for people (replay without EVE output).
pub fn human(ev: &Event, vm: &ProtectedVm, change: &IsolationChange) -> String {
    let ts = format_ts(ev.ts);
    match change {
        IsolationChange::Started {
            origin,
            expires,
            exclusions,
            flows_reset,
            ..
        } => {
            let why = match origin {
                IsolationOrigin::Manual { .. } => "manual".to_owned(),
                IsolationOrigin::Automatic { signature, .. } => format!("automatic: {signature}"),
            };
            format!(
                "{ts} ISOLATE vm {} ({why}) until {}; {} reset; open: {}",
                vm.id,
                format_ts(*expires),
                plural(*flows_reset, "flow"),
                if exclusions.is_empty() {
                    "nothing".to_owned()
                } else {
                    exclusions.join(", ")
                }
            )
        }
        IsolationChange::Ended {
            reason, dropped, ..
        } => format!(
            "{ts} RELEASE vm {} ({}; {} dropped)",
            vm.id,
            reason.name(),
            plural(*dropped, "frame")
        ),
        IsolationChange::WouldIsolate { origin, .. } => {
            let why = match origin {
                IsolationOrigin::Automatic { signature, .. } => signature.to_string(),
                IsolationOrigin::Manual { .. } => "manual".to_owned(),
            };
            format!("{ts} WOULD ISOLATE vm {} ({why})", vm.id)
        }
    }
}

fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
