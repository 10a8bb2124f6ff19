//! Isolation glue of the `svm` binary: the inventory as the dataplane's protected VMs, the
//! inventory file `svm replay --inventory` reads, and `--isolate VM[:MINUTES]`.

use std::path::Path;
use std::sync::Arc;

use dataplane::event::{Engine, Event};
use dataplane::isolation::{
    IsolationClient, IsolationControl, IsolationInfo, IsolationKeeper, IsolationOrigin,
    KeeperStats, Protected, ProtectedVm as DpVm, SharedIsolation, VmNic,
};
use dataplane::time::Timestamp;
#[cfg(doc)]
use dataplane::worker::Worker;
use policy::isolation::{IsolationExclusion, IsolationMinutes};

use crate::inventory::{Inventory, ProtectedVm, parse_mac};
use crate::store::StoredIsolation;

/// The inventory's VMs as the dataplane knows them (VLAN scopes and MACs parsed), with every
/// problem reported, one a line.
pub fn protected(vms: &[ProtectedVm]) -> Result<Protected, String> {
    if let Err(errors) = Inventory::new(vms.to_vec()) {
        return Err(errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"));
    }
    let dp = vms
        .iter()
        .map(|vm| {
            DpVm::new(
                Arc::from(vm.id.as_str()),
                vm.interfaces
                    .iter()
                    .filter_map(|i| {
                        Some(VmNic {
                            scope: i.vlan.parse().ok()?,
                            mac: i.mac.as_deref().and_then(parse_mac),
                            addrs: i.addresses.clone(),
                        })
                    })
                    .collect(),
            )
        })
        .collect();
    Protected::new(dp).map_err(|errors| {
        errors
            .iter()
            .map(|e| format!("inventory: {e}"))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// Read an inventory file: the daemon configuration's `inventory` list, either alone or inside a
/// whole daemon configuration (its other keys are not read).
pub fn read_inventory(path: &Path) -> Result<Protected, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
    let doc: serde_norway::Value =
        serde_norway::from_str(&text).map_err(|e| format!("{shown}: {e}"))?;
    let list = match doc {
        serde_norway::Value::Mapping(mut m) => m
            .remove("inventory")
            .ok_or_else(|| format!("{shown}: no `inventory` list"))?,
        other => other,
    };
    let vms: Vec<ProtectedVm> =
        serde_norway::from_value(list).map_err(|e| format!("{shown}: inventory: {e}"))?;
    protected(&vms).map_err(|e| format!("{shown}: {e}"))
}

/// `VM[:MINUTES]` of `--isolate`: the VM id and the duration in seconds (default 480 minutes).
pub fn parse_isolate(spec: &str) -> Result<(String, u64), String> {
    let (vm, minutes) = match spec.rsplit_once(':') {
        Some((vm, m)) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()) => {
            let m: u32 = m
                .parse()
                .map_err(|_| format!("--isolate {spec}: bad minutes"))?;
            (vm, m)
        }
        _ => (spec, IsolationMinutes::DEFAULT),
    };
    if vm.is_empty() {
        return Err(format!("--isolate {spec}: expected VM[:MINUTES]"));
    }
    let d = IsolationMinutes::new(minutes).ok_or_else(|| {
        format!(
            "--isolate {spec}: an isolation lasts {}..={} minutes",
            IsolationMinutes::MIN,
            IsolationMinutes::MAX
        )
    })?;
    Ok((vm.to_owned(), d.as_secs()))
}

/// The exclusions of `--isolate-exclude` values (each a YAML/JSON mapping, or a list of them, in
/// the form of `isolation.automatic.exclusions`); none given: the DNS/DHCP profiles.
pub fn parse_excludes(values: &[String]) -> Result<Vec<IsolationExclusion>, String> {
    if values.is_empty() {
        return Ok(policy::isolation::default_exclusions());
    }
    let mut out = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let tree: serde_json::Value =
            serde_norway::from_str(v).map_err(|e| format!("--isolate-exclude {v}: {e}"))?;
        let list = match tree {
            serde_json::Value::Array(_) => tree,
            other => serde_json::Value::Array(vec![other]),
        };
        let path = format!("--isolate-exclude[{i}]");
        match policy::isolation::exclusions_from_value(&list, &path) {
            Ok(mut e) => out.append(&mut e),
            Err(errors) => return Err(errors.to_string()),
        }
    }
    Ok(out)
}

/// An isolation in force as the store keeps it.
pub fn stored(i: &IsolationInfo) -> StoredIsolation {
    let mut s = StoredIsolation {
        vm: i.vm.id.to_string(),
        started_us: i.started.0,
        expires_us: i.expires.0,
        exclusions: i
            .exclusions
            .iter()
            .map(policy::isolation::exclusion_to_value)
            .collect(),
        origin: i.origin.name().to_owned(),
        note: String::new(),
        engine: String::new(),
        signature: String::new(),
        sid: 0,
        flow_id: None,
        dropped: i.dropped,
        flows_reset: i.flows_reset,
    };
    match &i.origin {
        IsolationOrigin::Manual { note } => s.note.clone_from(note),
        IsolationOrigin::Automatic {
            engine,
            signature,
            sid,
            flow_id,
        } => {
            s.engine = engine.name().to_owned();
            s.signature = signature.to_string();
            s.sid = *sid;
            s.flow_id = *flow_id;
        }
    }
    s
}

/// A stored isolation back as the keeper restores it; refused (with the reason) for a VM the
/// inventory no longer has or exclusions that no longer read.
pub fn unstored(s: &StoredIsolation, protected: &Protected) -> Result<IsolationInfo, String> {
    let vm = protected
        .get(&s.vm)
        .ok_or_else(|| format!("VM {:?} is no longer in the inventory", s.vm))?;
    let exclusions = policy::isolation::exclusions_from_value(
        &serde_json::Value::Array(s.exclusions.clone()),
        "exclusions",
    )
    .map_err(|e| format!("VM {:?}: stored exclusions: {e}", s.vm))?;
    let origin = if s.origin == "automatic" {
        let engine = [
            Engine::AttackBlocker,
            Engine::ActivityScanner,
            Engine::WebAddressScan,
            Engine::Manual,
        ]
        .into_iter()
        .find(|e| e.name() == s.engine)
        .unwrap_or(Engine::AttackBlocker);
        IsolationOrigin::Automatic {
            engine,
            signature: s.signature.clone().into(),
            sid: s.sid,
            flow_id: s.flow_id,
        }
    } else {
        IsolationOrigin::Manual {
            note: s.note.clone(),
        }
    };
    Ok(IsolationInfo {
        vm: Arc::clone(vm),
        started: Timestamp(s.started_us),
        expires: Timestamp(s.expires_us),
        exclusions,
        origin,
        dropped: s.dropped,
        flows_reset: s.flows_reset,
    })
}

/// Isolation in `svm replay`: the keeper driven between frames on packet time, as the block
/// keeper is, and the `--isolate` isolations made before the first frame.
#[derive(Debug)]
pub struct ReplayIsolation {
    keeper: IsolationKeeper,
    control: IsolationControl,
    manual: Vec<(String, u64)>,
    exclusions: Vec<IsolationExclusion>,
    started: bool,
}

impl ReplayIsolation {
    /// From `--inventory`, `--isolate` and `--isolate-exclude`: `None` without an inventory,
    /// else the keeper's side and one client for each of `workers` workers
    /// ([`Worker::set_isolation`]).
    pub fn new(
        inventory: Option<&Path>,
        isolate: &[String],
        excludes: &[String],
        workers: usize,
    ) -> Result<(Option<ReplayIsolation>, Vec<IsolationClient>), String> {
        let Some(path) = inventory else {
            if isolate.is_empty() && excludes.is_empty() {
                return Ok((None, Vec::new()));
            }
            return Err("--isolate and --isolate-exclude need --inventory FILE".into());
        };
        let protected = Arc::new(read_inventory(path)?);
        let manual = isolate
            .iter()
            .map(|s| parse_isolate(s))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, (vm, _)) in manual.iter().enumerate() {
            if protected.get(vm).is_none() {
                return Err(format!("--isolate {vm}: no such VM in {}", path.display()));
            }
            if manual.iter().take(i).any(|(v, _)| v == vm) {
                return Err(format!("--isolate {vm}: given twice"));
            }
        }
        let exclusions = parse_excludes(excludes)?;
        let SharedIsolation {
            keeper,
            control,
            clients,
        } = SharedIsolation::new(protected, workers);
        let iso = ReplayIsolation {
            keeper,
            control,
            manual,
            exclusions,
            started: false,
        };
        Ok((Some(iso), clients))
    }

    /// Before a frame at `now`: the `--isolate` isolations (first frame only; [`Self::new`]
    /// checked their VMs and durations, so none is refused), then expiry.
    pub fn before_frame(&mut self, now: Timestamp, events: &mut Vec<Event>) {
        let mut on_event = |ev| events.push(ev);
        if !self.started {
            self.started = true;
            for (vm, secs) in std::mem::take(&mut self.manual) {
                let _ = self.keeper.enable(
                    &vm,
                    now,
                    secs,
                    self.exclusions.clone(),
                    "svm replay --isolate".into(),
                    &mut on_event,
                );
            }
        }
        self.keeper.expire(now, &mut on_event);
        self.keeper.publish();
    }

    /// After a frame: the isolations it started (no command comes in replay: only the workers'
    /// fresh list is read, one atomic load when it did not move).
    pub fn after_frame(&mut self, events: &mut Vec<Event>) {
        let mut on_event = |ev| events.push(ev);
        self.keeper.take_fresh(&mut on_event);
        self.keeper.publish();
    }

    /// The keeper's counters and the isolations in force at `now`.
    pub fn finish(&self, now: Timestamp) -> (KeeperStats, Vec<IsolationInfo>) {
        (self.keeper.stats(), self.control.list(now))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn stored_isolations_read_back_as_made() {
        let vms: Vec<ProtectedVm> = serde_norway::from_str(
            "[{id: vm-1, name: a, nsx_external_id: e1, \
             interfaces: [{vlan: '100', mac: '02:00:00:00:00:01'}]}]",
        )
        .unwrap();
        let p = protected(&vms).unwrap();
        let vm = Arc::clone(p.get("vm-1").unwrap());
        let mut excl = parse_excludes(&[
            "{remote: 10.0.0.0/8, protocol: tcp, ports: [443, 8000-8080]}".into(),
        ])
        .unwrap();
        excl.push(IsolationExclusion::Profile(
            policy::isolation::Profile::DnsClient,
        ));
        for origin in [
            IsolationOrigin::Manual {
                note: "by hand".into(),
            },
            IsolationOrigin::Automatic {
                engine: Engine::ActivityScanner,
                signature: "ET SCAN".into(),
                sid: 2_000_001,
                flow_id: Some(7),
            },
        ] {
            let info = IsolationInfo {
                vm: Arc::clone(&vm),
                started: Timestamp(1_000_000),
                expires: Timestamp(61_000_000),
                exclusions: excl.clone(),
                origin,
                dropped: 5,
                flows_reset: 2,
            };
            let row = stored(&info);
            let json = serde_json::to_vec(&row).unwrap();
            let back: StoredIsolation = serde_json::from_slice(&json).unwrap();
            assert_eq!(unstored(&back, &p).unwrap(), info);
        }
        let mut gone = stored(&IsolationInfo {
            vm,
            started: Timestamp(1),
            expires: Timestamp(2),
            exclusions: vec![],
            origin: IsolationOrigin::Manual {
                note: String::new(),
            },
            dropped: 0,
            flows_reset: 0,
        });
        gone.vm = "vm-9".into();
        assert!(
            unstored(&gone, &p)
                .unwrap_err()
                .contains("no longer in the inventory")
        );
        gone.vm = "vm-1".into();
        gone.exclusions = vec![serde_json::json!({"ports": ["x"]})];
        assert!(
            unstored(&gone, &p)
                .unwrap_err()
                .contains("stored exclusions")
        );
    }

    #[test]
    fn isolate_specs() {
        assert_eq!(parse_isolate("vm-1").unwrap(), ("vm-1".into(), 480 * 60));
        assert_eq!(parse_isolate("vm-1:5").unwrap(), ("vm-1".into(), 300));
        assert_eq!(
            parse_isolate("urn:vm:7:2").unwrap(),
            ("urn:vm:7".into(), 120)
        );
        assert!(parse_isolate("vm-1:0").is_err());
        assert!(parse_isolate(":5").is_err());
        assert_eq!(parse_excludes(&[]).unwrap().len(), 4);
        assert!(parse_excludes(&["[]".into()]).unwrap().is_empty());
        let e = parse_excludes(&["{remote: 10.0.0.0/8, ports: [443]}".into()]).unwrap();
        assert_eq!(e.len(), 1);
        assert!(
            parse_excludes(&["{ports: [x]}".into()])
                .unwrap_err()
                .contains("--isolate-exclude[0][0].ports[0]")
        );
    }
}
