//! The traffic of the DPDK benchmark examples (`dpdk_fwd`, `dpdk_workers`): `--flows` templates
//! of 64-byte TCP ACKs in VLAN 100 from 10.0.x.y to 10.1.0.1:443, written into mbufs.

use std::net::{IpAddr, Ipv4Addr};

use dataplane::io::dpdk::DpdkIo;
use testgen::{Host, Link, tcp_flags};

/// The template of flow `i`: a 64-byte TCP ACK in VLAN 100.
pub fn template(i: u32) -> Vec<u8> {
    let link = Link::dot1q(testgen::plan::VLAN_100);
    let [_, _, hi, lo] = i.to_be_bytes();
    let client = Host::new(
        [0x02, 0, 0, 0, hi, lo],
        IpAddr::V4(Ipv4Addr::new(10, 0, hi, lo)),
    );
    let server = Host::new(
        [0x02, 0, 0, 1, 0, 1],
        IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)),
    );
    let sport = 20_000u16.wrapping_add(u16::from_be_bytes([hi, lo]));
    let mut frame = link.tcp(
        &client,
        &server,
        sport,
        443,
        tcp_flags::ACK,
        1000,
        2000,
        &[],
    );
    // Ethernet minimum: pad to 64 bytes (the IP total length tells the decoder where IP ends).
    frame.resize(frame.len().max(64), 0);
    frame
}

/// Write templates into every mbuf of the pool, so what `net_null` "receives" is real traffic.
pub fn fill_pool(io: &DpdkIo, flows: u32) -> usize {
    let pool = io.pool();
    let mut held = Vec::new();
    let mut i = 0u32;
    while let Some(mut m) = pool.alloc() {
        if !m.append(&template(i.wrapping_mul(0x9e37_79b9) % flows.max(1))) {
            break;
        }
        held.push(m);
        i = i.wrapping_add(1);
    }
    held.len()
}
