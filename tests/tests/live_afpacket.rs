//! End-to-end on live interfaces: the real `svm run` (AF_PACKET, inline) bridging two veths in
//! its own network namespace, between an attacker and a victim namespace, with real traffic
//! (curl, python's http.server, nmap). Needs root, iproute2, ethtool, nmap, curl and python3;
//! without them every test prints why it is skipped and passes.
//!
//! Topology per test (names carry the process id and a per-test letter):
//!
//! ```text
//! netns A (attacker)         netns S (svm run, inline)           netns V (victim, "VMs")
//!   a<t><pid> 10.77.0.1 ---- n<t><pid>  [svm]  m<t><pid> ---- v<t><pid> 10.77.0.2
//! ```
//! Tagged traffic: VLAN sub-interfaces (`ip link add ... type vlan`) need the kernel's 8021q
//! support, which the CI kernel lacks, so the VLAN case sends tagged frames from a raw packet
//! socket (python) and checks what reaches the victim with tcpdump. The veth still carries the
//! tag as offload metadata or in the data, so the SVM's tag restore is exercised.
//! Offloads (checksum, TSO/GSO/GRO) are off on every veth: an AF_PACKET bridge forwards frames as
//! received, and partial checksums or 64 KiB GSO frames would not survive the second hop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "common/live.rs"]
mod live;

#[path = "common/cases.rs"]
mod cases;

use cases::Setup;
use live::{Backend, skip_reason};

/// Two workers: the fanout hash must keep each flow on one worker and blocks must be shared.
const SETUP: Setup = Setup {
    backend: Backend::AfPacket,
    workers: 2,
    fetch_attempts: 1,
};

macro_rules! skip_unless_able {
    () => {
        if let Some(why) = skip_reason() {
            eprintln!("SKIPPED live AF_PACKET test: {why}");
            return;
        }
    };
}

#[test]
fn benign_http_passes_unchanged() {
    skip_unless_able!();
    cases::benign_http_passes_unchanged(&SETUP);
}

#[test]
fn nmap_scan_blocks_the_attacker() {
    skip_unless_able!();
    cases::nmap_scan_blocks_the_attacker(&SETUP);
}

#[test]
fn block_reaches_every_worker() {
    skip_unless_able!();
    cases::block_reaches_every_worker(&SETUP);
}

#[test]
fn tagged_scan_blocks_the_source_in_its_vlan_only() {
    skip_unless_able!();
    if cases::tagged_scan_blocks_the_source_in_its_vlan_only(&SETUP).is_none() {
        eprintln!("SKIPPED live AF_PACKET test: tcpdump not installed");
    }
}

#[test]
fn terminate_resets_real_connections_without_blocking() {
    skip_unless_able!();
    cases::terminate_resets_real_connections_without_blocking(&SETUP);
}

#[test]
fn monitoring_mode_passes_everything_and_reports() {
    skip_unless_able!();
    cases::monitoring_mode_passes_everything_and_reports(&SETUP);
}
