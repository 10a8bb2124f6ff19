//! End-to-end on live interfaces with the DPDK backend: the same cases as `live_afpacket`, with
//! `svm run` using `backend: dpdk` over two `net_af_packet` vdevs on the svm namespace's veths
//! (`--no-huge --no-pci --no-shconf`, one EAL per svm process). Needs the `dpdk` feature
//! (`make test-dpdk` builds the svm binary with it first), root, iproute2, ethtool, nmap, curl,
//! python3 (and tcpdump for the VLAN case); without root or the tools every test prints why it
//! is skipped and passes.
//!
//! One worker (the EAL main lcore). The tests run one at a time: several busy DPDK processes on
//! a 2-vCPU machine would compete with the traffic they inspect. net_af_packet over veth loses
//! frames under load there, so benign fetches are retried (TCP recovers, the bytes must still be
//! identical); what is asserted about detection and blocking is exactly what `live_afpacket`
//! asserts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "common/live.rs"]
mod live;

#[path = "common/cases.rs"]
mod cases;

use std::sync::{Mutex, MutexGuard, PoisonError};

use cases::Setup;
use live::{Backend, skip_reason};

/// One worker on the EAL main lcore; benign fetches retried (frame loss on net_af_packet).
const SETUP: Setup = Setup {
    backend: Backend::Dpdk,
    workers: 1,
    fetch_attempts: 3,
};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

macro_rules! skip_unless_able {
    () => {
        if let Some(why) = skip_reason() {
            eprintln!("SKIPPED live DPDK test: {why}");
            return;
        }
    };
}

#[test]
fn dpdk_benign_http_passes_unchanged() {
    skip_unless_able!();
    let _g = serial();
    let log = cases::benign_http_passes_unchanged(&SETUP);
    assert!(log.contains("dpdk inline"), "{log}");
}

#[test]
fn dpdk_nmap_scan_blocks_the_attacker() {
    skip_unless_able!();
    let _g = serial();
    cases::nmap_scan_blocks_the_attacker(&SETUP);
}

#[test]
fn dpdk_tagged_scan_blocks_the_source_in_its_vlan_only() {
    skip_unless_able!();
    let _g = serial();
    if cases::tagged_scan_blocks_the_source_in_its_vlan_only(&SETUP).is_none() {
        eprintln!("SKIPPED live DPDK test: tcpdump not installed");
    }
}

#[test]
fn dpdk_terminate_resets_real_connections_without_blocking() {
    skip_unless_able!();
    let _g = serial();
    cases::terminate_resets_real_connections_without_blocking(&SETUP);
}

#[test]
fn dpdk_monitoring_mode_passes_everything_and_reports() {
    skip_unless_able!();
    let _g = serial();
    cases::monitoring_mode_passes_everything_and_reports(&SETUP);
}
