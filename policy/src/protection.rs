//! Which VMs are protected and how (the `protection` section), and what happens to frames whose
//! headers nest too deep to inspect (the `decode` section).
//!
//! # Document
//! ```yaml
//! protection:
//!   only_listed_vms: false            # true: only the VMs under `vms` are inspected (seed 002)
//!   vms:                              # keyed by the inventory's VM id
//!     web-01:
//!       attack_blocker: true          # each engine on or off for this VM (default on)
//!       activity_scanner: true
//!       direction: inbound            # the connections the activity scanner inspects
//!       web_address_scan: false
//! decode:
//!   too_deep: drop                    # drop (inline) or forward frames nested too deep
//! ```
//!
//! The ids are checked against the inventory by whoever has one (the daemon on start and on a
//! push, `svm replay --inventory`): the policy alone cannot know them, so this crate checks only
//! their form.

use core::fmt;
use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::document::{MAX_LABEL_LEN, Walk, child, describe, field};

/// Most VMs `protection.vms` may name (the dataplane's inventory cap).
pub const MAX_PROTECTED_VMS: usize = 65_536;

/// Which of a VM's connections the activity scanner inspects: by who opened the connection (the
/// flow's client), so both halves of a connection are inspected together and a stream is never
/// reassembled one way only.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum Direction {
    /// Connections opened to the VM (the VM is the server).
    Inbound,
    /// Connections the VM opens (the VM is the client).
    Outbound,
    /// Both.
    #[default]
    Both,
}

impl Direction {
    /// The document spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Both => "both",
        }
    }

    /// Whether connections the VM opened (`vm_is_client`) or that were opened to it are covered.
    #[inline]
    pub const fn covers(self, vm_is_client: bool) -> bool {
        match self {
            Direction::Both => true,
            Direction::Outbound => vm_is_client,
            Direction::Inbound => !vm_is_client,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One VM's settings. Each engine runs for the VM only when it is also on in its own section
/// (`attack_blocker.enabled` and so on): a VM can switch an engine off, not on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct VmProtection {
    /// Network attack blocker. Default on.
    pub attack_blocker: bool,
    /// Network activity scanner (signature rules). Default on.
    pub activity_scanner: bool,
    /// The connections the activity scanner inspects. Default [`Direction::Both`].
    pub direction: Direction,
    /// Web address scan (not directional: it reads what a client asks for, whichever end the
    /// VM is). Default on.
    pub web_address_scan: bool,
}

impl Default for VmProtection {
    fn default() -> Self {
        VmProtection {
            attack_blocker: true,
            activity_scanner: true,
            direction: Direction::Both,
            web_address_scan: true,
        }
    }
}

impl VmProtection {
    /// Every engine off: the VM's frames are forwarded uninspected.
    pub const OFF: VmProtection = VmProtection {
        attack_blocker: false,
        activity_scanner: false,
        direction: Direction::Both,
        web_address_scan: false,
    };
}

/// The `protection` section.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct Protection {
    /// Inspect only the frames of VMs named in `vms` (seed 002: protection starts once the
    /// policy configures it). Default off: every frame is inspected.
    pub only_listed_vms: bool,
    /// Per-VM settings, by inventory id.
    pub vms: BTreeMap<String, VmProtection>,
}

impl Protection {
    /// Whether the section changes anything (otherwise the dataplane skips the VM lookup).
    pub fn is_default(&self) -> bool {
        !self.only_listed_vms && self.vms.is_empty()
    }

    /// The settings of an inventory VM: its own, or the default (every engine on), or none at
    /// all when only listed VMs are protected.
    pub fn of(&self, id: &str) -> VmProtection {
        match self.vms.get(id) {
            Some(p) => *p,
            None if self.only_listed_vms => VmProtection::OFF,
            None => VmProtection::default(),
        }
    }

    /// The ids not in `known` (the inventory), with their paths (`protection.vms.ID`), so a
    /// caller that has an inventory can refuse them.
    pub fn unknown_vms<'a>(
        &'a self,
        mut known: impl FnMut(&str) -> bool + 'a,
    ) -> impl Iterator<Item = crate::PolicyError> + 'a {
        self.vms
            .keys()
            .filter(move |id| !known(id))
            .map(|id| crate::PolicyError {
                path: format!("protection.vms.{id}"),
                message: format!("no VM {id:?} in the inventory"),
            })
    }
}

/// What happens to a frame with 9 or more VLAN tags or more than 8 IPv6 extension headers:
/// nothing past such a header is decoded, so no engine can inspect it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum TooDeep {
    /// Inline: the frame is dropped (no host's stack needs such a frame, and forwarding it would
    /// let anything through that nests itself deep enough). On a mirror nothing can be dropped:
    /// it is reported only.
    #[default]
    Drop,
    /// Forwarded uninspected, and reported.
    Forward,
}

impl TooDeep {
    /// The document spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            TooDeep::Drop => "drop",
            TooDeep::Forward => "forward",
        }
    }
}

/// The `decode` section.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Decode {
    /// Frames nested too deep to inspect. Default [`TooDeep::Drop`].
    pub too_deep: TooDeep,
}

/// Whether `id` can be an inventory id: 1..=256 bytes, no control characters.
pub fn is_vm_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_LABEL_LEN && !id.chars().any(char::is_control)
}

impl Walk {
    pub(crate) fn protection(&mut self, v: Option<&Value>, path: &str) -> Protection {
        let map = self.mapping(v, path, &["only_listed_vms", "vms"]);
        let mut out = Protection {
            only_listed_vms: self.boolean(
                field(map, "only_listed_vms"),
                child(path, "only_listed_vms"),
                false,
            ),
            vms: BTreeMap::new(),
        };
        let vms_path = child(path, "vms");
        let vms = match field(map, "vms") {
            None => return out,
            Some(Value::Object(m)) => m,
            Some(other) => {
                self.err(
                    vms_path,
                    format!(
                        "expected a mapping of VM ids to settings, got {}",
                        describe(other)
                    ),
                );
                return out;
            }
        };
        if vms.len() > MAX_PROTECTED_VMS {
            self.err(
                vms_path,
                format!("{} VMs, at most {MAX_PROTECTED_VMS} are allowed", vms.len()),
            );
            return out;
        }
        for (id, settings) in vms {
            let p = child(&vms_path, id);
            if !is_vm_id(id) {
                self.err(
                    p.clone(),
                    format!("a VM id is 1..={MAX_LABEL_LEN} bytes without control characters"),
                );
            }
            let vm = self.vm_protection(settings, &p);
            if is_vm_id(id) {
                out.vms.insert(id.clone(), vm);
            }
        }
        out
    }

    fn vm_protection(&mut self, v: &Value, path: &str) -> VmProtection {
        let map = self.mapping(
            Some(v),
            path,
            &[
                "attack_blocker",
                "activity_scanner",
                "direction",
                "web_address_scan",
            ],
        );
        let d = VmProtection::default();
        VmProtection {
            attack_blocker: self.boolean(
                field(map, "attack_blocker"),
                child(path, "attack_blocker"),
                d.attack_blocker,
            ),
            activity_scanner: self.boolean(
                field(map, "activity_scanner"),
                child(path, "activity_scanner"),
                d.activity_scanner,
            ),
            direction: self.keyword(
                field(map, "direction"),
                child(path, "direction"),
                &[
                    ("inbound", Direction::Inbound),
                    ("outbound", Direction::Outbound),
                    ("both", Direction::Both),
                ],
                d.direction,
            ),
            web_address_scan: self.boolean(
                field(map, "web_address_scan"),
                child(path, "web_address_scan"),
                d.web_address_scan,
            ),
        }
    }

    pub(crate) fn decode(&mut self, v: Option<&Value>, path: &str) -> Decode {
        let map = self.mapping(v, path, &["too_deep"]);
        Decode {
            too_deep: self.keyword(
                field(map, "too_deep"),
                child(path, "too_deep"),
                &[("drop", TooDeep::Drop), ("forward", TooDeep::Forward)],
                TooDeep::default(),
            ),
        }
    }
}

pub(crate) fn protection_tree(p: &Protection) -> Value {
    let Protection {
        only_listed_vms,
        vms,
    } = p;
    let mut m = Map::new();
    for (id, vm) in vms {
        let VmProtection {
            attack_blocker,
            activity_scanner,
            direction,
            web_address_scan,
        } = vm;
        m.insert(
            id.clone(),
            json!({
                "attack_blocker": attack_blocker,
                "activity_scanner": activity_scanner,
                "direction": direction.as_str(),
                "web_address_scan": web_address_scan,
            }),
        );
    }
    json!({ "only_listed_vms": only_listed_vms, "vms": Value::Object(m) })
}

pub(crate) fn decode_tree(d: &Decode) -> Value {
    let Decode { too_deep } = d;
    json!({ "too_deep": too_deep.as_str() })
}
