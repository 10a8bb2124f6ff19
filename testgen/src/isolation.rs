//! The isolation scenario: a protected VM that holds a long TCP session, resolves names, renews
//! its DHCP lease, then scans outward; after that it keeps trying to talk, and talks again once
//! an isolation of one minute would be over.
//!
//! The VM is the plan's attacker host ([`plan::attacker`], 10.0.0.66, MAC 02:00:00:00:00:66);
//! its peers are the plan's server (10.0.0.20: SSH, DNS, DHCP and HTTP) and the scan's target,
//! the plan's victim (10.0.0.10). Times from the start, in seconds (one part a row):
//!
//! | at | frames | what |
//! |---|---|---|
//! | 0 | 6 | TCP session VM:40000 <-> server:22, handshake and one data segment each way |
//! | 1 | 4 | DNS query and answer (VM:50000 <-> server:53), DHCP request and ack (68 <-> 67) |
//! | 2 | 202 | [`scenarios::tcp_port_scan`]: VM -> target ports 1..=100 (detected at the 20th) |
//! | 3 | 1 | the session's next data segment from the VM |
//! | 4 | 5 | DNS and DHCP again, and an ARP request from the VM |
//! | 5 | 10 | an HTTP GET VM:50100 -> server:80 ([`crate::http_get`]) |
//! | 72 | 10 | an HTTP GET VM:50200 -> server:80 |

use crate::link::tcp_flags::{ACK, PSH, SYN};
use crate::payload::{dns_a_query, dns_a_response};
use crate::scenarios::{self, Roles};
use crate::{Capture, Host, Link, http_get, plan};

const MS: u64 = 1_000;
const S: u64 = 1_000_000;

/// The VM's port of the long session.
pub const SESSION_SPORT: u16 = 40_000;
/// The session's server port.
pub const SESSION_DPORT: u16 = 22;
/// The VM's DNS source port.
pub const DNS_SPORT: u16 = 50_000;
/// The HTTP GET while isolated (source port).
pub const HTTP_ISOLATED_SPORT: u16 = 50_100;
/// The HTTP GET after an isolation of one minute (source port).
pub const HTTP_AFTER_SPORT: u16 = 50_200;
/// When the scan starts, seconds after the capture's start.
pub const SCAN_AT_S: u64 = 2;
/// When the last HTTP GET starts, seconds after the capture's start.
pub const AFTER_AT_S: u64 = 72;

/// The protected VM.
pub const fn vm() -> Host {
    plan::attacker()
}

/// DNS query and answer plus a DHCP request and ack, from `t`.
fn dns_dhcp(link: &Link, vm: &Host, server: &Host, t: u64, id: u16) -> Capture {
    let mut cap = Capture::new();
    let name = "update.example.org";
    cap.push(
        t,
        link.udp(vm, server, DNS_SPORT, 53, &dns_a_query(id, name)),
    );
    cap.push(
        t + MS,
        link.udp(
            server,
            vm,
            53,
            DNS_SPORT,
            &dns_a_response(id, name, plan::SERVER_V4),
        ),
    );
    // A renewal (unicast, BOOTREQUEST op 1) and its ack (op 2): only the ports matter here.
    let mut bootp = vec![0u8; 240];
    if let Some(b) = bootp.first_mut() {
        *b = 1;
    }
    cap.push(t + 2 * MS, link.udp(vm, server, 68, 67, &bootp));
    if let Some(b) = bootp.first_mut() {
        *b = 2;
    }
    cap.push(t + 3 * MS, link.udp(server, vm, 67, 68, &bootp));
    cap
}

/// The scenario (see the module documentation), on `link` from `start_us`.
pub fn outbound_scan(link: &Link, start_us: u64) -> Capture {
    let vm = vm();
    let server = plan::server();
    let mut cap = Capture::new();
    // The long session.
    let (c_isn, s_isn) = (0x1000_0000u32, 0x2000_0000u32);
    let hello: &[u8; 16] = b"SSH-2.0-client\r\n";
    let banner: &[u8; 16] = b"SSH-2.0-server\r\n";
    let (sp, dp) = (SESSION_SPORT, SESSION_DPORT);
    let c1 = c_isn.wrapping_add(1);
    let s1 = s_isn.wrapping_add(1);
    let c2 = c1.wrapping_add(16);
    let s2 = s1.wrapping_add(16);
    let t = start_us;
    cap.push(t, link.tcp(&vm, &server, sp, dp, SYN, c_isn, 0, &[]));
    cap.push(
        t + MS,
        link.tcp(&server, &vm, dp, sp, SYN | ACK, s_isn, c1, &[]),
    );
    cap.push(t + 2 * MS, link.tcp(&vm, &server, sp, dp, ACK, c1, s1, &[]));
    cap.push(
        t + 3 * MS,
        link.tcp(&vm, &server, sp, dp, PSH | ACK, c1, s1, hello),
    );
    cap.push(
        t + 4 * MS,
        link.tcp(&server, &vm, dp, sp, PSH | ACK, s1, c2, banner),
    );
    cap.push(t + 5 * MS, link.tcp(&vm, &server, sp, dp, ACK, c2, s2, &[]));
    cap.extend(dns_dhcp(link, &vm, &server, start_us + S, 0x1001));
    let roles = Roles {
        attacker: vm,
        victim: plan::victim(),
        server,
    };
    cap.extend(scenarios::tcp_port_scan_with(
        link,
        &roles,
        start_us + SCAN_AT_S * S,
    ));
    cap.push(
        start_us + 3 * S,
        link.tcp(&vm, &server, sp, dp, PSH | ACK, c2, s2, b"more\n"),
    );
    cap.extend(dns_dhcp(link, &vm, &server, start_us + 4 * S, 0x1002));
    cap.push(
        start_us + 4 * S + 500 * MS,
        link.arp_request(&vm, plan::SERVER_V4),
    );
    cap.extend(http_get(
        link,
        &vm,
        &server,
        HTTP_ISOLATED_SPORT,
        start_us + 5 * S,
        MS,
    ));
    cap.extend(http_get(
        link,
        &vm,
        &server,
        HTTP_AFTER_SPORT,
        start_us + AFTER_AT_S * S,
        MS,
    ));
    cap.sort_by_time();
    cap
}
