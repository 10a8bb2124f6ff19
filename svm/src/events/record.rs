//! One event as the control plane handles it: a JSON object with a unique `id`, an EVE-style
//! `timestamp` and `event_type`, and `severity` 1..4 (info, warning, error, critical) as the
//! central server expects. Dataplane events keep their EVE shape (alerts keep EVE's `alert`
//! object, whose own `severity` is the rule priority, 1 highest); control events (policy applied
//! or rejected, VM tagged, spool overflow, ...) use the same header.

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
        value.insert("id".into(), new_id().into());
        value.insert("timestamp".into(), crate::eve::format_ts(ts).into());
        value.insert("event_type".into(), event_type.into());
        value.insert("severity".into(), severity.level().into());
        value.extend(fields);
        Record { ts, value }
    }

    /// A dataplane event in its EVE shape, with an id and a severity.
    pub fn from_dataplane(ev: &Event) -> Record {
        let severity = match &ev.kind {
            EventKind::Alert(a) => Severity::of_alert(a.severity, a.enforced),
            EventKind::Block {
                change: BlockChange::Added { .. },
                ..
            } => Severity::Warning,
            EventKind::Block { .. } => Severity::Info,
        };
        let mut value = Map::new();
        value.insert("id".into(), new_id().into());
        if let Ok(Value::Object(eve)) = crate::eve::to_json(ev)
            .map_err(|_| ())
            .and_then(|s| serde_json::from_str(&s).map_err(|_| ()))
        {
            value.extend(eve);
        }
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
