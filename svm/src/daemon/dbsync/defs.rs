//! The attack blocker definitions of the database set in force, laid under the admin's policy
//! ([`crate::db::attack::merge`]) in the policy the workers run.
//!
//! Two writers: the control plane hands in every policy it applies (the admin's, as pushed or
//! seeded), the updater the definitions of each set it swaps in or puts back. Each publishes the
//! merged policy to the workers' [`PolicyCell`], which they take between two receive bursts, as
//! for a push. Without definitions the admin's compiled policy goes in as it is.

use std::sync::{Arc, Mutex};

use policy::CompiledPolicy;

use crate::daemon::workers::PolicyCell;
use crate::db::attack::{Definitions, merge};

#[derive(Debug)]
struct Inner {
    admin: Arc<CompiledPolicy>,
    defs: Option<Arc<Definitions>>,
}

/// The admin's policy and the set's definitions, merged into the workers' policy cell.
#[derive(Debug)]
pub struct AttackDefs {
    cell: Arc<PolicyCell>,
    inner: Mutex<Inner>,
}

impl AttackDefs {
    /// Merging into `cell`, whose policy is the admin's to start with.
    pub fn new(cell: Arc<PolicyCell>) -> AttackDefs {
        let admin = cell.load();
        AttackDefs {
            cell,
            inner: Mutex::new(Inner { admin, defs: None }),
        }
    }

    fn publish(&self, inner: &Inner) {
        let p = match inner.defs.as_deref() {
            Some(d) if !d.is_empty() => {
                Arc::new(CompiledPolicy::compile(merge(inner.admin.policy(), d)))
            }
            _ => Arc::clone(&inner.admin),
        };
        self.cell.store(p);
    }

    /// The admin's policy changed (a push, the stored one at start).
    pub fn policy(&self, admin: Arc<CompiledPolicy>) {
        let mut g = super::lock(&self.inner);
        g.admin = admin;
        self.publish(&g);
    }

    /// Put `defs` (a set's; `None`: no set) in force; returns the ones they replace.
    pub fn swap(&self, defs: Option<Arc<Definitions>>) -> Option<Arc<Definitions>> {
        let mut g = super::lock(&self.inner);
        let was = std::mem::replace(&mut g.defs, defs);
        if was != g.defs {
            self.publish(&g);
        }
        was
    }

    /// The definitions in force.
    pub fn current(&self) -> Option<Arc<Definitions>> {
        super::lock(&self.inner).defs.clone()
    }
}
