//! One event as the control plane handles it: a JSON object with a unique `id`, an EVE-style
//! `timestamp` and `event_type`, and `severity` 1..4 (info, warning, error, critical) as the
//! central server expects. Dataplane events keep their EVE shape (alerts keep EVE's `alert`
//! object, whose own `severity` is the rule priority, 1 highest); control events (policy applied
//! or rejected, VM tagged, spool overflow, ...) use the same header.
//!
//! Keys keep Suricata's order (`timestamp` first, then EVE's header, the type's object, and our
//! `id` and `severity` last) in every output: the map keeps insertion order (serde_json's
//! `preserve_order`), so the daemon writes what replay writes.

use dataplane::event::{BlockChange, Event, EventKind};
use dataplane::time::Timestamp;
use serde_json::{Map, Value};

/// Severity as the central server expects it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub enum Severity {
    /// 1: informational.
    Info = 1,
    /// 2: warning.
    Warning = 2,
    /// 3: error.
    Error = 3,
    /// 4: critical.
    Critical = 4,
}

impl Severity {
    /// 1..4.
    pub const fn level(self) -> u8 {
        self as u8
    }

    /// From 1..4 (anything else is `Info`).
    pub const fn from_level(level: u64) -> Self {
        match level {
            4 => Severity::Critical,
            3 => Severity::Error,
            2 => Severity::Warning,
            _ => Severity::Info,
        }
    }

    /// Name (`info`, `warning`, `error`, `critical`).
    pub const fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }

    /// Severity of an alert from its rule priority (1 highest): an enforced priority-1 alert is
    /// critical, other priority-1 and priority-2 alerts are errors, the rest warnings.
    pub const fn of_alert(priority: u8, enforced: bool) -> Self {
        match (priority, enforced) {
            (0 | 1, true) => Severity::Critical,
            (0..=2, _) => Severity::Error,
            _ => Severity::Warning,
        }
    }
}

/// An event with its id.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// When it happened.
    pub ts: Timestamp,
    /// The JSON object (`id`, `timestamp`, `event_type`, `severity`, ...).
    pub value: Map<String, Value>,
}

/// A fresh unique event id (UUID v4): ids are what the central server deduplicates on.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Record {
    /// A control-plane event with the common header and `fields`.
    pub fn new(
        ts: Timestamp,
        event_type: &str,
        severity: Severity,
        fields: Map<String, Value>,
    ) -> Record {
        let mut value = Map::new();
        value.insert("timestamp".into(), crate::eve::format_ts(ts).into());
        value.insert("event_type".into(), event_type.into());
        value.extend(fields);
        value.insert("id".into(), new_id().into());
        value.insert("severity".into(), severity.level().into());
        Record { ts, value }
    }

    /// A dataplane event in its EVE shape, with an id and a severity.
    pub fn from_dataplane(ev: &Event) -> Record {
        let severity = match &ev.kind {
            EventKind::Alert(a) => Severity::of_alert(a.severity, a.enforced),
            EventKind::Block {
                change: BlockChange::Added { .. } | BlockChange::Refused { .. },
                ..
            } => Severity::Warning,
            EventKind::Block { .. } => Severity::Info,
            EventKind::Isolation {
                change: dataplane::isolation::IsolationChange::Started { .. },
                ..
            } => Severity::Warning,
            EventKind::Isolation { .. } => Severity::Info,
        };
        let mut value = Map::new();
        if let Ok(Value::Object(eve)) = crate::eve::to_json(ev)
            .map_err(|_| ())
            .and_then(|s| serde_json::from_str(&s).map_err(|_| ()))
        {
            value.extend(eve);
        }
        value.insert("id".into(), new_id().into());
        value.insert("severity".into(), severity.level().into());
        Record { ts: ev.ts, value }
    }

    /// The id.
    pub fn id(&self) -> &str {
        self.value.get("id").and_then(Value::as_str).unwrap_or("-")
    }

    /// The event type.
    pub fn event_type(&self) -> &str {
        self.value
            .get("event_type")
            .and_then(Value::as_str)
            .unwrap_or("event")
    }

    /// The severity.
    pub fn severity(&self) -> Severity {
        Severity::from_level(
            self.value
                .get("severity")
                .and_then(Value::as_u64)
                .unwrap_or(1),
        )
    }

    /// A string field at a `/`-separated JSON pointer (e.g. `/alert/signature`).
    pub fn str_at(&self, pointer: &str) -> Option<String> {
        let mut cur: Option<&Value> = None;
        for (i, part) in pointer.trim_start_matches('/').split('/').enumerate() {
            cur = if i == 0 {
                self.value.get(part)
            } else {
                cur.and_then(|v| v.get(part))
            };
        }
        match cur? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// The record as JSON bytes (what the spool holds and the central server receives).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.value).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::app::dns::eve::DnsEve;
    use dataplane::app::tls::eve::TlsEve;
    use dataplane::event::{Alert, Engine, PacketRef, Signature};
    use std::borrow::Cow;

    /// The keys of a JSON object text, in order, at the top level.
    fn keys(text: &str) -> Vec<String> {
        let v: Map<String, Value> = serde_json::from_str(text).unwrap();
        v.keys().cloned().collect()
    }

    fn alert() -> Event {
        Event {
            ts: Timestamp(1_767_225_600_000_000),
            pcap_cnt: Some(3),
            kind: EventKind::Alert(Alert::new(
                PacketRef {
                    flow_id: None,
                    scope: vlan::VlanScope::UNTAGGED,
                    src_ip: "10.0.0.1".parse().unwrap(),
                    dst_ip: "10.0.0.2".parse().unwrap(),
                    ports: None,
                    proto: None,
                    to_server: None,
                },
                Engine::AttackBlocker,
                Signature {
                    name: Cow::Borrowed("MAC spoofing"),
                    gid: 1,
                    sid: 9,
                    rev: 1,
                    category: Cow::Borrowed("c"),
                    severity: 2,
                },
            )),
        }
    }

    #[test]
    fn records_keep_suricatas_key_order() {
        let ev = alert();
        let eve = crate::eve::to_json(&ev).unwrap();
        let rec = Record::from_dataplane(&ev);
        let text = String::from_utf8(rec.to_bytes()).unwrap();
        let mut want = keys(&eve);
        assert_eq!(want[0], "timestamp");
        want.extend(["id".to_owned(), "severity".to_owned()]);
        assert_eq!(keys(&text), want, "{text}");
        // The nested alert object keeps EVE's order too (action, gid, signature_id, ...).
        let nested = |t: &str| {
            let v: Value = serde_json::from_str(t).unwrap();
            v["alert"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(nested(&text), nested(&eve));
        assert_eq!(nested(&eve)[..3], ["action", "gid", "signature_id"]);
        let ctl = Record::new(Timestamp(0), "policy_applied", Severity::Info, Map::new());
        let text = String::from_utf8(ctl.to_bytes()).unwrap();
        assert_eq!(keys(&text), ["timestamp", "event_type", "id", "severity"]);
    }

    #[test]
    fn flow_alerts_say_their_direction_after_the_app_layer() {
        let mut ev = alert();
        if let EventKind::Alert(a) = &mut ev.kind {
            a.packet.flow_id = Some(7);
            a.packet.to_server = Some(false);
            a.packet.proto = Some(dataplane::decode::IpProto::Tcp);
            a.app = Some(Box::new(dataplane::scanner::AppFields {
                app_proto: "tls",
                tls: Some(TlsEve::new("example.org".into())),
                ..Default::default()
            }));
        }
        let text = crate::eve::to_json(&ev).unwrap();
        let k = keys(&text);
        let tail: Vec<&str> = k
            .iter()
            .skip_while(|k| *k != "alert")
            .map(String::as_str)
            .collect();
        assert_eq!(tail, ["alert", "tls", "app_proto", "direction"], "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["direction"], "to_client");
        assert_eq!(v["flow_id"], 7);
        // Outside the flow table there is no direction.
        let v: Value = serde_json::from_str(&crate::eve::to_json(&alert()).unwrap()).unwrap();
        assert!(v.get("direction").is_none());
    }

    // A DNS name cut at Suricata's 1025 bytes says so (`rrname_truncated`); a whole one not.
    #[test]
    fn dns_alerts_say_a_truncated_name() {
        for cut in [false, true] {
            let mut ev = alert();
            if let EventKind::Alert(a) = &mut ev.kind {
                a.app = Some(Box::new(dataplane::scanner::AppFields {
                    app_proto: "dns",
                    dns: Some(DnsEve::query("a.io".into(), cut)),
                    ..Default::default()
                }));
            }
            let v: Value = serde_json::from_str(&crate::eve::to_json(&ev).unwrap()).unwrap();
            assert_eq!(v["dns"]["query"][0]["rrname"], "a.io");
            let flag = v["dns"]["query"][0].get("rrname_truncated");
            assert_eq!(flag, cut.then_some(&Value::Bool(true)), "{v}");
        }
    }

    #[test]
    fn alerts_outside_flows_have_a_flow_id_and_arp_a_proto() {
        let v: Value = serde_json::from_str(&crate::eve::to_json(&alert()).unwrap()).unwrap();
        assert_eq!(v["proto"], "ARP");
        let id = v["flow_id"].as_u64().unwrap();
        assert!(id < 1 << 51);
        let again: Value = serde_json::from_str(&crate::eve::to_json(&alert()).unwrap()).unwrap();
        assert_eq!(again["flow_id"], id, "the same packet, the same id");
    }
    #[test]
    fn a_live_alert_names_its_interface_after_the_flow_id() {
        let mut ev = alert();
        if let EventKind::Alert(a) = &mut ev.kind {
            a.in_iface = Some("ens4".into());
        }
        let text = crate::eve::to_json(&ev).unwrap();
        assert_eq!(
            keys(&text)[..4],
            ["timestamp", "flow_id", "in_iface", "pcap_cnt"],
            "{text}"
        );
        let rec = Record::from_dataplane(&ev);
        let v: Value = serde_json::from_slice(&rec.to_bytes()).unwrap();
        assert_eq!(v["in_iface"], "ens4");
        // Without an interface (replay) the key is absent.
        assert!(!crate::eve::to_json(&alert()).unwrap().contains("in_iface"));
    }

    #[test]
    fn a_replay_writer_ends_every_record_with_the_capture_name() {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Shared {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut w = crate::eve::EveWriter::new(Box::new(Shared(buf.clone())))
            .with_pcap_filename("caps/a \"b\".pcap");
        w.write(&alert()).unwrap();
        w.write(&alert()).unwrap();
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        for line in text.lines() {
            let k = keys(line);
            assert_eq!(
                k.last().map(String::as_str),
                Some("pcap_filename"),
                "{line}"
            );
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["pcap_filename"], "caps/a \"b\".pcap");
        }
        assert_eq!(text.lines().count(), 2);
    }
}
