//! Network isolation of a protected VM.
//!
//! While a VM is isolated, every worker drops each frame to or from it except what its
//! exclusions let through (the built-in DNS/DHCP profiles and custom rules, see
//! [`policy::isolation`]; ARP and Neighbor Discovery pass with any exclusion), and each of its
//! tracked TCP flows that no exclusion covers is reset once, both ends, with the flow's whole
//! tag stack. An isolation is manual (an administrator, through [`IsolationControl`]) or
//! automatic (a detection whose source is the VM, as `isolation.automatic` says), and ends when
//! its time is up or when an administrator releases it.
//!
//! - [`vm`]: the protected VMs (the daemon's inventory): which frames are a VM's.
//! - [`table`]: the one table of isolations, its single writer (the keeper, author of the
//!   `isolation_started`/`isolation_ended` events), the control plane's handle and each
//!   worker's view, with the same publication scheme as the block table.
//! - [`hook`]: what the worker does per frame.
//! - [`learn`]: the addresses a VM is seen using (its own ARP, ND and DHCP acknowledgements).
//!
//! The interface for the control plane: [`SharedIsolation::new`] gives the keeper (run it with
//! [`IsolationKeeper::run`] on the wall clock, or drive it between frames with packet time as
//! replay does), an [`IsolationControl`] (`enable(vm, now, duration, exclusions, note)`,
//! `disable(vm, now)`, `list(now)`, `get(vm, now)`) and one [`IsolationClient`] per worker
//! ([`crate::worker::Worker::set_isolation`]).

pub mod hook;
pub mod learn;
pub mod table;
pub mod vm;

pub use table::{
    Command, IsolationChange, IsolationClient, IsolationControl, IsolationEnd, IsolationEntry,
    IsolationError, IsolationInfo, IsolationKeeper, IsolationOrigin, IsolationSnapshot,
    KeeperStats, SharedIsolation,
};
pub use vm::{Protected, ProtectedError, ProtectedVm, VmNic, mac_text};

#[cfg(test)]
mod tests;
