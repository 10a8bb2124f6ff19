//! The running policy: its state as the API shows it, pushes (validated, stored, applied,
//! reported) and the compiled snapshot the workers run.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use policy::{CompiledPolicy, Policy, PolicyErrors};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::events::{Record, Severity};

use super::{ControlError, ControlState, lock};

/// The running policy as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PolicyState {
    /// Version: 0 is the built-in default, each applied policy adds one.
    pub version: u64,
    /// Entity tag of this version (`"<version>"`), for `If-Match`.
    pub etag: String,
    /// The canonical document.
    #[schema(value_type = Object)]
    pub document: Value,
}

impl PolicyState {
    pub(super) fn new(version: u64, document: Value) -> Self {
        PolicyState {
            version,
            etag: etag(version),
            document,
        }
    }
}

/// The entity tag of a policy version.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

#[derive(Debug)]
pub(super) struct Running {
    pub(super) state: PolicyState,
    pub(super) compiled: Arc<CompiledPolicy>,
}

impl ControlState {
    /// The running compiled policy (hand it to workers at start).
    pub fn compiled(&self) -> Arc<CompiledPolicy> {
        self.running
            .read()
            .map_or_else(|e| e.into_inner().compiled.clone(), |r| r.compiled.clone())
    }

    /// Before the first push (running version 0), show and run `policy` (the daemon's policy
    /// file) as version 0 instead of the built-in default. Not stored: the file is read again at
    /// each start until a policy is pushed. Returns false (and changes nothing) once a pushed
    /// policy is running.
    pub fn seed_policy(&self, policy: Policy) -> bool {
        let mut r = self
            .running
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if r.state.version != 0 {
            return false;
        }
        *r = Running {
            state: PolicyState::new(0, policy.to_json()),
            compiled: Arc::new(CompiledPolicy::compile(policy)),
        };
        true
    }

    pub(super) fn running_state(&self) -> PolicyState {
        self.running
            .read()
            .map_or_else(|e| e.into_inner().state.clone(), |r| r.state.clone())
    }

    /// [`Control::apply_policy`](super::Control::apply_policy).
    pub(super) fn apply(
        &self,
        doc: Value,
        if_match: Option<u64>,
    ) -> Result<PolicyState, ControlError> {
        let _serial = lock(&self.apply_lock);
        let current = self.running_state().version;
        if let Some(expected) = if_match
            && expected != current
        {
            return Err(ControlError::VersionMismatch { current });
        }
        let checked = Policy::from_value(&doc).and_then(|p| {
            let problems = self
                .hooks
                .validate
                .as_ref()
                .map(|v| v(&p))
                .unwrap_or_default();
            if problems.is_empty() {
                Ok(p)
            } else {
                Err(PolicyErrors(problems))
            }
        });
        let policy = match checked {
            Ok(p) => p,
            Err(errors) => {
                self.rejected(current, &errors);
                return Err(ControlError::InvalidPolicy(errors));
            }
        };
        let canonical = policy.to_json();
        let label = policy.version.clone();
        let exclusions = policy.exclusions.len();
        let compiled = Arc::new(CompiledPolicy::compile(policy));
        let version = current.saturating_add(1);
        self.store.put_policy(version, &canonical)?;
        let state = PolicyState::new(version, canonical);
        {
            let mut r = self
                .running
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *r = Running {
                state: state.clone(),
                compiled: compiled.clone(),
            };
        }
        if let Some(h) = &self.hooks.on_policy {
            h(compiled);
        }
        self.counters.policy_applied.fetch_add(1, Ordering::Relaxed);
        let mut f = Map::new();
        f.insert("policy_version".into(), version.into());
        f.insert(
            "policy_label".into(),
            label.map_or(Value::Null, Value::from),
        );
        f.insert("exclusions".into(), exclusions.into());
        self.policy_event("policy_applied", Severity::Info, f);
        Ok(state)
    }

    /// [`Control::reject_policy`](super::Control::reject_policy).
    pub(super) fn reject(&self, errors: &PolicyErrors) {
        let _serial = lock(&self.apply_lock);
        self.rejected(self.running_state().version, errors);
    }

    /// The one report of a refused policy push: counted, and a `policy_rejected` event with
    /// the running version and every problem.
    fn rejected(&self, current: u64, errors: &PolicyErrors) {
        self.counters
            .policy_rejected
            .fetch_add(1, Ordering::Relaxed);
        let mut f = Map::new();
        f.insert("policy_version".into(), current.into());
        f.insert(
            "problems".into(),
            serde_json::to_value(errors).unwrap_or_default(),
        );
        self.policy_event("policy_rejected", Severity::Warning, f);
    }

    fn policy_event(&self, event_type: &str, severity: Severity, fields: Map<String, Value>) {
        self.hub
            .emit(Record::new(self.clock.now(), event_type, severity, fields));
    }
}
