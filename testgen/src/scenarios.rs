//! One capture per detector, plus benign traffic and the `make run` demo.
//!
//! Every scenario is `fn(&Link, start_us) -> Capture`: frames on the given VLAN stack, the first
//! at `start_us`, attacker -> victim of [`crate::plan`] unless the doc says otherwise. Counts
//! exceed the default detector thresholds comfortably but not absurdly:
//!
//! | detector | default threshold | scenario |
//! |---|---|---|
//! | tcp_port_scan | 20 distinct dst ports / 10 s (SYN without ACK) | 100 ports in 0.1 s |
//! | udp_port_scan | 20 distinct dst ports / 10 s | 60 ports in 0.3 s |
//! | host_sweep | 20 distinct dst hosts / 10 s | 50 hosts in 0.1 s |
//! | syn_flood | 200 half-open SYNs to one dst / 5 s | 600 SYNs in 1.2 s |
//! | udp_flood | 10000 packets to one dst / 1 s | 25000 in 1 s |
//! | icmp_flood | 1000 packets to one dst / 1 s | 3000 in 1 s |
//!
//! Scenarios with an address-family choice come as `NAME` (IPv4 [`Roles::v4`]), `NAME_v6`
//! ([`Roles::v6`]) and `NAME_with` (any [`Roles`], e.g. another attacker host).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::link::tcp_flags::{ACK, FIN, PSH, RST, SYN, URG};
use crate::payload::{
    dns_a_query, dns_a_response, icmp_echo_message, icmpv6_echo_message, udp_datagram,
};
use crate::rng::SplitMix64;
use crate::{Capture, Host, Link, host_header, http_get, plan, tcp_session};

/// A scenario: frames on one link from a start time.
pub type Scenario = fn(&Link, u64) -> Capture;

/// Who plays which part. All three hosts share one address family.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Roles {
    /// Sends the attack.
    pub attacker: Host,
    /// Receives the attack.
    pub victim: Host,
    /// A benign server (HTTP, DNS) the victim and follow-up traffic talk to.
    pub server: Host,
}

impl Roles {
    /// The plan's hosts with their IPv4 addresses.
    pub const fn v4() -> Self {
        Roles {
            attacker: plan::attacker(),
            victim: plan::victim(),
            server: plan::server(),
        }
    }

    /// The plan's hosts with their IPv6 addresses.
    pub const fn v6() -> Self {
        Roles {
            attacker: plan::attacker_v6(),
            victim: plan::victim_v6(),
            server: plan::server_v6(),
        }
    }

    /// These roles with another attacker.
    pub const fn with_attacker(self, attacker: Host) -> Self {
        Roles {
            attacker,
            victim: self.victim,
            server: self.server,
        }
    }

    fn is_v6(&self) -> bool {
        self.victim.ip.is_ipv6()
    }
}

const MS: u64 = 1_000;
const S: u64 = 1_000_000;

const PROTO_ICMP: u8 = 1;
const PROTO_UDP: u8 = 17;
const PROTO_ICMPV6: u8 = 58;

/// IPv4 and IPv6 wrappers around a `_with` scenario.
macro_rules! families {
    ($with:ident => $v4:ident, $v6:ident) => {
        #[doc = concat!("[`", stringify!($with), "`] with the plan's IPv4 hosts.")]
        pub fn $v4(link: &Link, start_us: u64) -> Capture {
            $with(link, &Roles::v4(), start_us)
        }
        #[doc = concat!("[`", stringify!($with), "`] with the plan's IPv6 hosts.")]
        pub fn $v6(link: &Link, start_us: u64) -> Capture {
            $with(link, &Roles::v6(), start_us)
        }
    };
}

/// Time of step `i` of a series.
fn at(start_us: u64, i: u64, gap_us: u64) -> u64 {
    start_us.saturating_add(i.saturating_mul(gap_us))
}

/// The IP packet inside a frame this link built (for ICMP error quotes).
fn l3<'a>(link: &Link, frame: &'a [u8]) -> &'a [u8] {
    frame.get(link.l3_offset()..).unwrap_or(&[])
}

// ---------------------------------------------------------------------------------------------
// Scans

/// Ports answered with SYN/ACK by the victim in [`tcp_port_scan_with`].
pub const OPEN_TCP_PORTS: [u16; 2] = [22, 80];
/// Source port of the scanner's probes (nmap keeps one per scan).
pub const SCAN_SPORT: u16 = 54_321;

/// An nmap `-sS`-like SYN scan: SYNs to victim ports 1..=100, 1 ms apart, from one source port.
/// The victim answers RST/ACK for closed ports 100 µs later and SYN/ACK for 22 and 80, which the
/// attacker resets 100 µs after that. 202 frames: 100 SYNs, 98 RST/ACKs, 2 SYN/ACKs, 2 RSTs.
pub fn tcp_port_scan_with(link: &Link, r: &Roles, start_us: u64) -> Capture {
    let mut rng = SplitMix64::new(0x5ca1);
    let mut cap = Capture::new();
    for port in 1u16..=100 {
        let t = at(start_us, u64::from(port - 1), MS);
        let seq = rng.next_u32();
        cap.push(
            t,
            link.tcp(&r.attacker, &r.victim, SCAN_SPORT, port, SYN, seq, 0, &[]),
        );
        let ack = seq.wrapping_add(1);
        if OPEN_TCP_PORTS.contains(&port) {
            let vseq = rng.next_u32();
            cap.push(
                t + 100,
                link.tcp(
                    &r.victim,
                    &r.attacker,
                    port,
                    SCAN_SPORT,
                    SYN | ACK,
                    vseq,
                    ack,
                    &[],
                ),
            );
            cap.push(
                t + 200,
                link.tcp(&r.attacker, &r.victim, SCAN_SPORT, port, RST, ack, 0, &[]),
            );
        } else {
            cap.push(
                t + 100,
                link.tcp(
                    &r.victim,
                    &r.attacker,
                    port,
                    SCAN_SPORT,
                    RST | ACK,
                    0,
                    ack,
                    &[],
                ),
            );
        }
    }
    cap
}
families!(tcp_port_scan_with => tcp_port_scan, tcp_port_scan_v6);

/// Ports that stay silent (open|filtered) in [`udp_port_scan_with`].
pub const SILENT_UDP_PORTS: [u16; 2] = [37, 53];

/// Empty UDP probes to victim ports 1..=60, 5 ms apart, from source port 54321. The victim answers
/// ICMP port unreachable (type 3 code 3 quoting the probe's IP header + 8 bytes; ICMPv6 type 1
/// code 4 for IPv6) 200 µs later for every port but 37 and 53. 118 frames.
pub fn udp_port_scan_with(link: &Link, r: &Roles, start_us: u64) -> Capture {
    let mut cap = Capture::new();
    for port in 1u16..=60 {
        let t = at(start_us, u64::from(port - 1), 5 * MS);
        let probe = link.udp(&r.attacker, &r.victim, SCAN_SPORT, port, &[]);
        if !SILENT_UDP_PORTS.contains(&port) {
            let reply = link.icmp_port_unreachable(&r.victim, &r.attacker, l3(link, &probe));
            cap.push(t, probe);
            cap.push(t + 200, reply);
        } else {
            cap.push(t, probe);
        }
    }
    cap
}
families!(udp_port_scan_with => udp_port_scan, udp_port_scan_v6);

/// ICMP echo identifier of the sweep.
pub const SWEEP_IDENT: u16 = 0x5157;

/// ICMP echo requests from the attacker to the 50 sweep targets ([`plan::sweep_target`] or
/// [`plan::sweep_target_v6`]), 2 ms apart; every fifth target (0, 5, .. 45) replies 300 µs
/// later. 60 frames.
fn sweep(link: &Link, attacker: &Host, v6: bool, start_us: u64) -> Capture {
    let mut cap = Capture::new();
    let payload = *b"svm-testgen host sweep probe....";
    for i in 0..plan::SWEEP_COUNT {
        let target = if v6 {
            plan::sweep_target_v6(i)
        } else {
            plan::sweep_target(i)
        };
        let t = at(start_us, u64::from(i), 2 * MS);
        let seq = u16::from(i) + 1;
        cap.push(
            t,
            link.icmp_echo(attacker, &target, SWEEP_IDENT, seq, &payload),
        );
        if i % 5 == 0 {
            cap.push(
                t + 300,
                link.icmp_echo_reply(&target, attacker, SWEEP_IDENT, seq, &payload),
            );
        }
    }
    cap
}

/// IPv4 host sweep: 10.0.0.66 pings 10.0.0.100..=10.0.0.149, 2 ms apart, 10 replies. 60 frames.
pub fn host_sweep(link: &Link, start_us: u64) -> Capture {
    sweep(link, &plan::attacker(), false, start_us)
}

/// IPv6 host sweep: fd00::66 pings fd00::100..=fd00::131, 2 ms apart, 10 replies. 60 frames.
pub fn host_sweep_v6(link: &Link, start_us: u64) -> Capture {
    sweep(link, &plan::attacker_v6(), true, start_us)
}

/// Host sweep by the roles' attacker, in the roles' family.
pub fn host_sweep_with(link: &Link, r: &Roles, start_us: u64) -> Capture {
    sweep(link, &r.attacker, r.is_v6(), start_us)
}

// ---------------------------------------------------------------------------------------------
// Floods

/// 600 SYNs from the attacker to victim:80, 2 ms apart (1.2 s), with PRNG source ports in
/// 1024..=65535 and sequence numbers; the victim answers SYN/ACK 50 µs later to every fourth
/// (150), and the attacker never completes a handshake. 750 frames.
pub fn syn_flood_with(link: &Link, r: &Roles, start_us: u64) -> Capture {
    let mut rng = SplitMix64::new(0xf100d);
    let mut cap = Capture::new();
    for i in 0..600u64 {
        let t = at(start_us, i, 2 * MS);
        let sport = rng.range_u16(1024, u16::MAX);
        let seq = rng.next_u32();
        cap.push(
            t,
            link.tcp(&r.attacker, &r.victim, sport, 80, SYN, seq, 0, &[]),
        );
        if i % 4 == 0 {
            let vseq = rng.next_u32();
            let reply = link.tcp(
                &r.victim,
                &r.attacker,
                80,
                sport,
                SYN | ACK,
                vseq,
                seq.wrapping_add(1),
                &[],
            );
            cap.push(t + 50, reply);
        }
    }
    cap
}
families!(syn_flood_with => syn_flood, syn_flood_v6);

/// Spoofed source `i` (0..600) of [`syn_flood_random_sources`]: 10.200.x.y where x.y is
/// `i * 40503 + 0x3a5c` mod 2^16 (a bijection: 600 distinct addresses, none the /16's network
/// or broadcast address for i < 600, which the tests check).
pub fn spoofed_source_v4(i: u16) -> Ipv4Addr {
    let [x, y] = i.wrapping_mul(40_503).wrapping_add(0x3a5c).to_be_bytes();
    let [a, b, ..] = plan::SPOOF_NET_V4.octets();
    Ipv4Addr::new(a, b, x, y)
}

/// Spoofed source `i` of [`syn_flood_random_sources_v6`]: fd00:200::1:x with the same bijection.
pub fn spoofed_source_v6(i: u16) -> Ipv6Addr {
    let [a, b, ..] = plan::SPOOF_NET_V6.segments();
    Ipv6Addr::new(
        a,
        b,
        0,
        0,
        0,
        0,
        1,
        i.wrapping_mul(40_503).wrapping_add(0x3a5c),
    )
}

/// 600 SYNs to victim:80 from 600 distinct spoofed sources (all behind the attacker's MAC),
/// 2 ms apart, PRNG source ports and sequence numbers, no replies. 600 frames.
pub fn syn_flood_random_sources_with(link: &Link, r: &Roles, start_us: u64) -> Capture {
    let mut rng = SplitMix64::new(0x5b00f);
    let mut cap = Capture::new();
    for i in 0..600u16 {
        let ip = if r.is_v6() {
            IpAddr::V6(spoofed_source_v6(i))
        } else {
            IpAddr::V4(spoofed_source_v4(i))
        };
        let src = r.attacker.with_ip(ip);
        let sport = rng.range_u16(1024, u16::MAX);
        let seq = rng.next_u32();
        cap.push(
            at(start_us, u64::from(i), 2 * MS),
            link.tcp(&src, &r.victim, sport, 80, SYN, seq, 0, &[]),
        );
    }
    cap
}
families!(syn_flood_random_sources_with => syn_flood_random_sources, syn_flood_random_sources_v6);

/// Destination port of the UDP flood.
pub const UDP_FLOOD_PORT: u16 = 9999;

/// 25000 UDP datagrams with 64-byte payloads to victim:9999, 40 µs apart (1 s), source ports
/// cycling up from 1024. 25000 frames.
pub fn udp_flood_with(link: &Link, r: &Roles, start_us: u64) -> Capture {
    let mut cap = Capture::new();
    let mut payload = [0x55u8; 64];
    for i in 0..25_000u16 {
        if let Some(head) = payload.get_mut(..2) {
            head.copy_from_slice(&i.to_be_bytes());
        }
        let sport = 1024 + i % 60_000;
        cap.push(
            at(start_us, u64::from(i), 40),
            link.udp(&r.attacker, &r.victim, sport, UDP_FLOOD_PORT, &payload),
        );
    }
    cap
}
families!(udp_flood_with => udp_flood, udp_flood_v6);

/// 3000 ICMP (ICMPv6) echo requests with 56-byte payloads to the victim, 333 µs apart (1 s), one
/// identifier, sequence 1..=3000, no replies. 3000 frames.
pub fn icmp_flood_with(link: &Link, r: &Roles, start_us: u64) -> Capture {
    let mut cap = Capture::new();
    let payload = [0x66u8; 56];
    for i in 0..3000u16 {
        cap.push(
            at(start_us, u64::from(i), 333),
            link.icmp_echo(&r.attacker, &r.victim, 0x0f10, i + 1, &payload),
        );
    }
    cap
}
families!(icmp_flood_with => icmp_flood, icmp_flood_v6);

// ---------------------------------------------------------------------------------------------
// Malformed and crafted packets

/// LAND: one TCP SYN with source == destination == the victim's address and port 139 -> 139,
/// sent from the attacker's MAC. 1 frame.
pub fn land_with(link: &Link, r: &Roles, start_us: u64) -> Capture {
    let forged = r.attacker.with_ip(r.victim.ip);
    let mut cap = Capture::new();
    cap.push(
        start_us,
        link.tcp(&forged, &r.victim, 139, 139, SYN, 0x0bad_f00d, 0, &[]),
    );
    cap
}
families!(land_with => land, land_v6);

/// IPv4 identification of the ping-of-death fragments.
pub const POD_IDENT: u16 = 0x0d0d;

/// Ping of death (IPv4 only): an ICMP echo request of 66600 bytes (8-byte header + 66592 data)
/// cut into 45 fragments of 1480 bytes, 100 µs apart. The last one sits at offset 65120, so it
/// ends at 66600 and the reassembled datagram would be 66620 bytes, over the 65535 limit. IP
/// header checksums are correct; the ICMP checksum covers the whole (impossible) message.
/// 45 frames.
pub fn ping_of_death_with(link: &Link, r: &Roles, start_us: u64) -> Capture {
    let message = icmp_echo_message(0x0666, 1, &vec![0x58u8; 66_592]);
    let mut cap = Capture::new();
    let frags = link.ipv4_fragments(
        &r.attacker,
        &r.victim,
        PROTO_ICMP,
        POD_IDENT,
        &message,
        1480,
    );
    for (i, f) in (0u64..).zip(frags) {
        cap.push(at(start_us, i, 100), f);
    }
    cap
}

/// [`ping_of_death_with`] with the plan's IPv4 hosts.
pub fn ping_of_death(link: &Link, start_us: u64) -> Capture {
    ping_of_death_with(link, &Roles::v4(), start_us)
}

/// IPv4 identification of the teardrop fragments (the original exploit's 242).
pub const TEARDROP_IDENT: u16 = 242;

/// Teardrop (IPv4 only): UDP 31337 -> 53. Fragment 1: offset 0, 36 bytes (the 8-byte UDP header
/// claiming 36 bytes + 28 bytes of `A`), MF. Fragment 2, 1 ms later: offset 24, 4 bytes of `B`, no
/// MF; it overlaps fragment 1 with different bytes and ends inside it. IP header checksums are
/// correct; the UDP checksum matches fragment 1 alone. 2 frames.
pub fn teardrop_with(link: &Link, r: &Roles, start_us: u64) -> Capture {
    let dgram = udp_datagram(r.attacker.ip, r.victim.ip, 31337, 53, &[b'A'; 28]);
    let mut cap = Capture::new();
    cap.push(
        start_us,
        link.ipv4_fragment(
            &r.attacker,
            &r.victim,
            PROTO_UDP,
            TEARDROP_IDENT,
            0,
            true,
            &dgram,
        ),
    );
    cap.push(
        start_us + MS,
        link.ipv4_fragment(
            &r.attacker,
            &r.victim,
            PROTO_UDP,
            TEARDROP_IDENT,
            24,
            false,
            b"BBBB",
        ),
    );
    cap
}

/// [`teardrop_with`] with the plan's IPv4 hosts.
pub fn teardrop(link: &Link, start_us: u64) -> Capture {
    teardrop_with(link, &Roles::v4(), start_us)
}

/// Destination ports of the flag probes.
pub const PROBE_PORTS: [u16; 3] = [21, 22, 80];

fn probes(link: &Link, r: &Roles, flags: u16, start_us: u64) -> Capture {
    let mut cap = Capture::new();
    for (i, port) in (0u64..).zip(PROBE_PORTS) {
        let seq = 0x1000_0000u32.wrapping_mul(u32::from(port));
        cap.push(
            at(start_us, i, 10 * MS),
            link.tcp(&r.attacker, &r.victim, SCAN_SPORT, port, flags, seq, 0, &[]),
        );
    }
    cap
}

/// Three TCP segments with no flags at all to victim ports 21, 22, 80, 10 ms apart, no replies.
pub fn tcp_null_with(link: &Link, r: &Roles, start_us: u64) -> Capture {
    probes(link, r, 0, start_us)
}
families!(tcp_null_with => tcp_null, tcp_null_v6);

/// Three Xmas probes (FIN+PSH+URG) to victim ports 21, 22, 80, 10 ms apart, no replies.
pub fn tcp_xmas_with(link: &Link, r: &Roles, start_us: u64) -> Capture {
    probes(link, r, FIN | PSH | URG, start_us)
}
families!(tcp_xmas_with => tcp_xmas, tcp_xmas_v6);

/// Three SYN+FIN probes to victim ports 21, 22, 80, 10 ms apart, no replies.
pub fn tcp_synfin_with(link: &Link, r: &Roles, start_us: u64) -> Capture {
    probes(link, r, SYN | FIN, start_us)
}
families!(tcp_synfin_with => tcp_synfin, tcp_synfin_v6);

// ---------------------------------------------------------------------------------------------
// MAC spoofing

/// Syslog port used for the IPv4 traffic of [`mac_spoofing`].
const SYSLOG: u16 = 514;

/// MAC spoofing (IPv4/ARP only). The victim (its real MAC) sends an ARP reply to the server at
/// +0 and three UDP datagrams to server:514 at +10, +20, +30 ms. From +1 s the spoofer
/// (02:00:00:00:00:99) sends three ARP replies claiming 10.0.0.10 (at +1.0, +1.1, +1.2 s) and three
/// UDP datagrams with source 10.0.0.10 (at +1.05, +1.15, +1.25 s). 10 frames.
pub fn mac_spoofing(link: &Link, start_us: u64) -> Capture {
    let (victim, spoofer, server) = (plan::victim(), plan::spoofer(), plan::server());
    let mut cap = Capture::new();
    cap.push(start_us, link.arp_reply(&victim, &server));
    for i in 1..=3u64 {
        cap.push(
            at(start_us, i, 10 * MS),
            link.udp(&victim, &server, 5140, SYSLOG, b"<14>victim: hello"),
        );
    }
    for i in 0..3u64 {
        let t = start_us + S + i * 100 * MS;
        cap.push(t, link.arp_reply(&spoofer, &server));
        cap.push(
            t + 50 * MS,
            link.udp(&spoofer, &server, 5140, SYSLOG, b"<14>victim: not really"),
        );
    }
    cap
}

// ---------------------------------------------------------------------------------------------
// Benign traffic

/// Address the DNS answer in [`benign`] resolves `example.com` to.
pub const EXAMPLE_COM: Ipv4Addr = Ipv4Addr::new(93, 184, 215, 14);

/// Benign mix, all far below every threshold, about 5 s long, 54 frames:
/// * +0, +200, +400 ms: HTTP GET sessions victim -> server:80 (source ports 40001..=40003,
///   1 ms between frames, 10 frames each);
/// * +600, +650, +700 ms: DNS `example.com` A queries victim:53000.. -> server:53, answered
///   2 ms later (93.184.215.14; over IPv6 when the roles are IPv6);
/// * +1, +2, +3, +4 s: ping victim -> server, replies 400 µs later;
/// * +5 s: an IPv6 HTTP session `fd00::10 -> [fd00::20]:80` (10 frames), whatever the roles.
pub fn benign_with(link: &Link, r: &Roles, start_us: u64) -> Capture {
    let mut cap = Capture::new();
    for (i, sport) in (0u64..).zip(40_001u16..=40_003) {
        cap.extend(http_get(
            link,
            &r.victim,
            &r.server,
            sport,
            at(start_us, i, 200 * MS),
            MS,
        ));
    }
    for (i, k) in (0u64..).zip(0u16..3) {
        let t = at(start_us + 600 * MS, i, 50 * MS);
        let id = 0x1000 + k;
        let sport = 53_000 + k;
        cap.push(
            t,
            link.udp(
                &r.victim,
                &r.server,
                sport,
                53,
                &dns_a_query(id, "example.com"),
            ),
        );
        let answer = dns_a_response(id, "example.com", EXAMPLE_COM);
        cap.push(
            t + 2 * MS,
            link.udp(&r.server, &r.victim, 53, sport, &answer),
        );
    }
    let ping = [0x70u8; 56];
    for seq in 1..=4u16 {
        let t = at(start_us, u64::from(seq), S);
        cap.push(t, link.icmp_echo(&r.victim, &r.server, 0x0b0b, seq, &ping));
        cap.push(
            t + 400,
            link.icmp_echo_reply(&r.server, &r.victim, 0x0b0b, seq, &ping),
        );
    }
    cap.extend(http_get(
        link,
        &plan::victim_v6(),
        &plan::server_v6(),
        40_010,
        start_us + 5 * S,
        MS,
    ));
    cap.sort_by_time();
    cap
}
families!(benign_with => benign, benign_v6);

/// The target of [`web_exploit_with`]'s request: Apache HTTP Server 2.4.49's path traversal
/// through `/cgi-bin/` to a shell (CVE-2021-41773), its dots percent-encoded so that the raw URI
/// differs from the normalized one.
pub const WEB_EXPLOIT_URI: &str = "/cgi-bin/.%2e/.%2e/.%2e/.%2e/bin/sh";

/// The name [`dns_c2_with`] looks up: a command-and-control name in the reserved `.test` domain.
pub const C2_NAME: &str = "update.c2.svm-demo.test";

/// The address [`dns_c2_with`]'s answer gives (TEST-NET-3).
pub const C2_ADDR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 66);

/// A remote command execution attempt, `r.attacker`:41773 -> `r.server`:80: the handshake, a
/// `POST` of `echo; id` to [`WEB_EXPLOIT_URI`] in one segment, the server's `200` with the
/// command's output, and the close; 10 frames, 1 ms apart. No attack blocker detector sees it;
/// a signature on the raw URI does (`deploy/demo.rules`, sid 9000001).
pub fn web_exploit_with(link: &Link, r: &Roles, start_us: u64) -> Capture {
    let body = "echo Content-Type: text/plain; echo; id";
    let host = host_header(&r.server);
    let request = format!(
        "POST {WEB_EXPLOIT_URI} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: curl/7.88.1\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let output = "uid=1(daemon) gid=1(daemon) groups=1(daemon)\n";
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{output}",
        output.len()
    );
    tcp_session(
        link,
        &r.attacker,
        &r.server,
        41_773,
        80,
        request.as_bytes(),
        response.as_bytes(),
        start_us,
        MS,
    )
}

/// A protected VM resolving a command-and-control name: `r.victim`:53100 asks `r.server`:53 for
/// [`C2_NAME`] (A), answered 2 ms later with [`C2_ADDR`]; 2 frames, IPv4 roles only. No attack
/// blocker detector sees it; a `dns.query` signature does (`deploy/demo.rules`, sid 9000002).
pub fn dns_c2_with(link: &Link, r: &Roles, start_us: u64) -> Capture {
    let mut cap = Capture::new();
    let id = 0xc2c2;
    cap.push(
        start_us,
        link.udp(&r.victim, &r.server, 53_100, 53, &dns_a_query(id, C2_NAME)),
    );
    cap.push(
        start_us + 2 * MS,
        link.udp(
            &r.server,
            &r.victim,
            53,
            53_100,
            &dns_a_response(id, C2_NAME, C2_ADDR),
        ),
    );
    cap
}

/// IPv6 extension headers and fragments (benign, IPv6 only, victim <-> server):
/// * +0, +1 ms: UDP 40000 -> 9000 behind hop-by-hop + destination-options headers;
/// * +10 ms: an ICMPv6 echo request with 3000 data bytes in 3 fragments (1232, 1232, 552 bytes of
///   fragmentable part), hop-by-hop header in each, destination options inside the first,
///   fragment id 0x6001, 100 µs apart;
/// * +20 ms: the echo reply in 3 fragments without extension headers (1232, 1232, 544 bytes),
///   id 0x6002.
///
/// Everything reassembles to valid packets with correct checksums. 8 frames.
pub fn ipv6_ext_fragments(link: &Link, start_us: u64) -> Capture {
    let (c, s) = (plan::victim_v6(), plan::server_v6());
    let mut cap = Capture::new();
    cap.push(
        start_us,
        link.ipv6_udp_with_ext(&c, &s, 40_000, 9000, b"ext headers 1"),
    );
    cap.push(
        start_us + MS,
        link.ipv6_udp_with_ext(&c, &s, 40_000, 9000, b"ext headers 2"),
    );
    let data: Vec<u8> = (0..3000u16).map(|i| i.to_be_bytes()[1]).collect();
    let req = icmpv6_echo_message(plan::VICTIM_V6, plan::SERVER_V6, 0x6006, 1, &data);
    for (i, f) in (0u64..).zip(link.ipv6_fragments(&c, &s, PROTO_ICMPV6, 0x6001, &req, 1232, true))
    {
        cap.push(at(start_us + 10 * MS, i, 100), f);
    }
    let rep = crate::payload::icmpv6_echo_reply_message(
        plan::SERVER_V6,
        plan::VICTIM_V6,
        0x6006,
        1,
        &data,
    );
    for (i, f) in (0u64..).zip(link.ipv6_fragments(&s, &c, PROTO_ICMPV6, 0x6002, &rep, 1232, false))
    {
        cap.push(at(start_us + 20 * MS, i, 100), f);
    }
    cap
}

/// After an attack: 5 TCP SYNs attacker -> victim:443 (source ports 50000..=50004, 10 ms apart),
/// then at +100 ms a benign HTTP GET session attacker -> server:80 (source port 50100, 1 ms between
/// frames). Used to check that a blocked source's later packets are dropped. 15 frames.
pub fn follow_up_with(link: &Link, r: &Roles, start_us: u64) -> Capture {
    let mut cap = Capture::new();
    for (i, sport) in (0u64..).zip(50_000u16..50_005) {
        let seq = 0x4000_0000u32 ^ u32::from(sport);
        cap.push(
            at(start_us, i, 10 * MS),
            link.tcp(&r.attacker, &r.victim, sport, 443, SYN, seq, 0, &[]),
        );
    }
    cap.extend(http_get(
        link,
        &r.attacker,
        &r.server,
        50_100,
        start_us + 100 * MS,
        MS,
    ));
    cap
}
families!(follow_up_with => follow_up, follow_up_v6);

/// The per-link scenarios by name (IPv4 hosts where there is a choice; `host_sweep_v6` and
/// `ipv6_ext_fragments` are IPv6 by nature).
pub fn all() -> Vec<(&'static str, Scenario)> {
    vec![
        ("tcp_port_scan", tcp_port_scan as Scenario),
        ("udp_port_scan", udp_port_scan),
        ("host_sweep", host_sweep),
        ("host_sweep_v6", host_sweep_v6),
        ("syn_flood", syn_flood),
        ("syn_flood_random_sources", syn_flood_random_sources),
        ("udp_flood", udp_flood),
        ("icmp_flood", icmp_flood),
        ("land", land),
        ("ping_of_death", ping_of_death),
        ("teardrop", teardrop),
        ("tcp_null", tcp_null),
        ("tcp_xmas", tcp_xmas),
        ("tcp_synfin", tcp_synfin),
        ("mac_spoofing", mac_spoofing),
        ("benign", benign),
        ("ipv6_ext_fragments", ipv6_ext_fragments),
        ("follow_up", follow_up),
        ("isolation_outbound_scan", crate::isolation::outbound_scan),
        ("web_addresses", crate::web::web_addresses),
    ]
}

/// The IPv6 form of each scenario of [`all`] that has one, under the same name. Scenarios
/// missing here (ping_of_death, teardrop, mac_spoofing) are IPv4 concepts; `ipv6_ext_fragments`
/// and `host_sweep_v6` are IPv6 already.
pub fn all_v6() -> Vec<(&'static str, Scenario)> {
    vec![
        ("tcp_port_scan", tcp_port_scan_v6 as Scenario),
        ("udp_port_scan", udp_port_scan_v6),
        ("host_sweep", host_sweep_v6),
        ("host_sweep_v6", host_sweep_v6),
        ("syn_flood", syn_flood_v6),
        ("syn_flood_random_sources", syn_flood_random_sources_v6),
        ("udp_flood", udp_flood_v6),
        ("icmp_flood", icmp_flood_v6),
        ("land", land_v6),
        ("tcp_null", tcp_null_v6),
        ("tcp_xmas", tcp_xmas_v6),
        ("tcp_synfin", tcp_synfin_v6),
        ("benign", benign_v6),
        ("ipv6_ext_fragments", ipv6_ext_fragments),
        ("follow_up", follow_up_v6),
    ]
}

/// Look a scenario up by name, in its IPv6 form when `ipv6` is set. `None` if there is no such
/// scenario (or no IPv6 form of it).
pub fn by_name(name: &str, ipv6: bool) -> Option<Scenario> {
    let list = if ipv6 { all_v6() } else { all() };
    list.into_iter().find(|(n, _)| *n == name).map(|(_, f)| f)
}

// ---------------------------------------------------------------------------------------------
// Demo

/// One part of the demo: what runs where and when, and what the SVM should do about it.
#[derive(Clone, Copy, Debug)]
pub struct DemoPart {
    /// Short name.
    pub name: &'static str,
    /// The VLAN stack it runs on.
    pub link: Link,
    /// Start, relative to the demo's start.
    pub offset_us: u64,
    /// What the SVM is expected to do.
    pub expect: &'static str,
    /// The traffic.
    pub build: fn(&Link, u64) -> Capture,
}

fn demo_follow_up_other_vlan(link: &Link, start_us: u64) -> Capture {
    http_get(
        link,
        &plan::attacker(),
        &plan::server(),
        50_200,
        start_us,
        MS,
    )
}
fn demo_syn_flood(link: &Link, start_us: u64) -> Capture {
    syn_flood_with(link, &Roles::v4().with_attacker(plan::flooder()), start_us)
}
fn demo_xmas(link: &Link, start_us: u64) -> Capture {
    tcp_xmas_with(link, &Roles::v4().with_attacker(plan::prober()), start_us)
}

/// The demo's parts, in time order. See [`demo`].
/// The demo's ping of death: from the flooder (10.0.0.77), not the teardrop's 10.0.0.66. Neither
/// is blocked: a single-packet detection blocks only a source that proved its address.
fn demo_ping_of_death(link: &Link, start_us: u64) -> Capture {
    ping_of_death_with(link, &Roles::v4().with_attacker(plan::flooder()), start_us)
}
/// The demo's web exploit: from the prober (10.0.0.88), whose Xmas probes on VLAN 100 were
/// reported but did not block it (it had proven nothing); its handshake here proves it.
fn demo_web_exploit(link: &Link, start_us: u64) -> Capture {
    web_exploit_with(link, &Roles::v4().with_attacker(plan::prober()), start_us)
}
fn demo_dns_c2(link: &Link, start_us: u64) -> Capture {
    dns_c2_with(link, &Roles::v4(), start_us)
}

pub fn demo_parts() -> Vec<DemoPart> {
    let (v100, v200, untagged, qinq) = (
        plan::vlan100(),
        plan::vlan200(),
        plan::untagged(),
        plan::qinq(),
    );
    let part = |name, link, offset_s: u64, expect, build| DemoPart {
        name,
        link,
        offset_us: offset_s * S,
        expect,
        build,
    };
    vec![
        part("benign", v100, 0, "pass; no alert", benign as Scenario),
        part("benign", v200, 1, "pass; no alert", benign),
        part("benign", untagged, 2, "pass; no alert", benign),
        part(
            "ipv6_ext_fragments",
            v100,
            8,
            "pass (reassembles cleanly); no alert",
            ipv6_ext_fragments,
        ),
        part(
            "tcp_port_scan",
            v100,
            10,
            "alert tcp_port_scan from 10.0.0.66 on VLAN 100 and block 10.0.0.66 on VLAN 100 only",
            tcp_port_scan,
        ),
        part(
            "follow_up",
            v100,
            20,
            "drop: 10.0.0.66 is blocked on VLAN 100",
            follow_up,
        ),
        part(
            "http_get_attacker_vlan200",
            v200,
            22,
            "pass: the block on VLAN 100 does not reach VLAN 200",
            demo_follow_up_other_vlan,
        ),
        part(
            "syn_flood",
            v200,
            30,
            "alert syn_flood from 10.0.0.77 to 10.0.0.10:80 on VLAN 200; block 10.0.0.77",
            demo_syn_flood,
        ),
        part(
            "land",
            untagged,
            40,
            "alert land (src == dst 10.0.0.10:139) untagged; drop it",
            land,
        ),
        part(
            "teardrop",
            qinq,
            50,
            "alert overlapping fragments (teardrop) on QinQ 300.100; drop; no block (unverified source)",
            teardrop,
        ),
        part(
            "ping_of_death",
            qinq,
            52,
            "alert oversized reassembly (ping of death) from 10.0.0.77 on QinQ 300.100; drop it; no block \
             (block_skipped: unverified_source)",
            demo_ping_of_death,
        ),
        part(
            "tcp_xmas",
            v100,
            60,
            "alert Xmas scan probes from 10.0.0.88 on VLAN 100; drop them; no block (unverified source)",
            demo_xmas,
        ),
        part(
            "mac_spoofing",
            v200,
            70,
            "alert mac_spoofing: 10.0.0.10 moves from 02:00:00:00:00:10 to 02:00:00:00:00:99 on VLAN 200",
            mac_spoofing,
        ),
        part(
            "tcp_port_scan_v6",
            v100,
            80,
            "alert tcp_port_scan from fd00::66 on VLAN 100 and block fd00::66 there",
            tcp_port_scan_v6,
        ),
        part(
            "benign",
            v100,
            90,
            "pass; no alert (the victim and server were never blocked)",
            benign,
        ),
        part(
            "web_exploit",
            v200,
            95,
            "with deploy/demo.rules: alert sid 9000001 (a drop rule) from 10.0.0.88 to 10.0.0.20:80 on \
             VLAN 200; reset both ends and drop the rest of the connection (no block: rules never \
             block); without rules: pass",
            demo_web_exploit,
        ),
        part(
            "dns_c2",
            untagged,
            97,
            "with deploy/demo.rules: alert sid 9000002 (an alert rule): 10.0.0.10 looks up \
             update.c2.svm-demo.test; reported, passed",
            demo_dns_c2,
        ),
        part("benign", v200, 100, "pass; no alert", benign),
        part("benign", untagged, 110, "pass; no alert", benign),
    ]
}

/// The `make run` demo: about two minutes of traffic from `start_us`, sorted by time.
///
/// | at (s) | link | traffic | the SVM should |
/// |---|---|---|---|
/// | 0, 1, 2 | VLAN 100, VLAN 200, untagged | [`benign`] (HTTP, DNS, ping, IPv6 HTTP) | pass, no alert |
/// | 8 | VLAN 100 | [`ipv6_ext_fragments`] | pass, no alert |
/// | 10 | VLAN 100 | [`tcp_port_scan`] 10.0.0.66 -> 10.0.0.10 ports 1-100 | alert, block 10.0.0.66 on VLAN 100 |
/// | 20 | VLAN 100 | [`follow_up`] 10.0.0.66: SYNs to :443, HTTP to 10.0.0.20 | drop all 15 frames from 10.0.0.66 |
/// | 22 | VLAN 200 | HTTP GET 10.0.0.66 -> 10.0.0.20 (sport 50200) | pass: blocks are per VLAN |
/// | 30 | VLAN 200 | [`syn_flood`] from 10.0.0.77 (MAC :77) -> 10.0.0.10:80 | alert syn_flood, block 10.0.0.77 |
/// | 40 | untagged | [`land`] 10.0.0.10:139 -> 10.0.0.10:139 | alert land, drop |
/// | 50 | QinQ 300/100 | [`teardrop`] 10.0.0.66 -> 10.0.0.10 | alert overlapping fragments |
/// | 52 | QinQ 300/100 | [`ping_of_death`] 10.0.0.77 -> 10.0.0.10 | alert oversized datagram (no block: unverified source) |
/// | 60 | VLAN 100 | [`tcp_xmas`] from 10.0.0.88 (MAC :88) | alert Xmas probes (no block: unverified source) |
/// | 70 | VLAN 200 | [`mac_spoofing`] 10.0.0.10 claimed by MAC :99 | alert MAC spoofing |
/// | 80 | VLAN 100 | [`tcp_port_scan_v6`] fd00::66 -> fd00::10 | alert, block fd00::66 on VLAN 100 |
/// | 90 | VLAN 100 | [`benign`] | pass, no alert |
/// | 95 | VLAN 200 | [`web_exploit_with`] 10.0.0.88 -> 10.0.0.20:80, CVE-2021-41773 | with `deploy/demo.rules`: alert, reset both ends, drop the flow |
/// | 97 | untagged | [`dns_c2_with`] 10.0.0.10 looks up [`C2_NAME`] | with `deploy/demo.rules`: alert, pass |
/// | 100, 110 | VLAN 200, untagged | [`benign`] | pass, no alert |
///
/// The last frame is at about +115 s. [`demo_parts`] gives the same table as data.
pub fn demo(start_us: u64) -> Capture {
    let mut cap = Capture::new();
    for p in demo_parts() {
        cap.extend((p.build)(&p.link, start_us.saturating_add(p.offset_us)));
    }
    cap.sort_by_time();
    cap
}
