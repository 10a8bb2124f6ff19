//! Fuzz the files that come with a rule set: `threshold.config`, `classification.config`, and the
//! address and port expressions of rule variables. Arbitrary UTF-8 must never panic, every line
//! must be kept or reported (nothing is lost silently), and a negated expression must hold
//! exactly the addresses and ports its operand does not.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dataplane::rules::{Classifications, ThresholdConfig, Vars};
use libfuzzer_sys::fuzz_target;

/// Addresses and ports probed against each expression that compiles.
const PROBE_ADDRS: [IpAddr; 6] = [
    IpAddr::V4(Ipv4Addr::new(0, 0, 0, 0)),
    IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
    IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1)),
    IpAddr::V4(Ipv4Addr::new(255, 255, 255, 255)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
    IpAddr::V6(Ipv6Addr::new(0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff)),
];
const PROBE_PORTS: [u16; 6] = [0, 1, 80, 1023, 1024, 65535];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Lines that are neither blank nor comments: each is kept or comes back as an error.
    let directives = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();

    let (cfg, errs) = ThresholdConfig::parse(text, &Vars::default());
    assert_eq!(cfg.suppress.len() + cfg.thresholds.len() + errs.len(), directives);
    for e in &errs {
        assert!(e.line >= 1 && e.line <= text.lines().count());
    }

    let mut classes = Classifications::empty();
    let errs = classes.merge(text);
    assert!(errs.len() <= directives);
    assert!(classes.len() + errs.len() <= directives);

    // `NAME=value` lines define variables; every other line is an expression.
    let mut vars = Vars::default();
    for line in text.lines() {
        if let Some((name, value)) = line.split_once('=') {
            vars.set_address(name.trim(), value);
            vars.set_port(name.trim(), value);
        }
    }
    for line in text.lines().filter(|l| !l.contains('=')) {
        if let Ok(set) = vars.address(line) {
            assert!(!set.is_empty());
            match vars.address(&format!("!{line}")) {
                Ok(neg) => {
                    for ip in PROBE_ADDRS {
                        assert_ne!(set.contains(ip), neg.contains(ip), "{line:?} at {ip}");
                    }
                }
                // Only an expression that holds every address has an empty complement.
                Err(_) => assert!(set.is_any()),
            }
        }
        if let Ok(set) = vars.ports(line) {
            match vars.ports(&format!("!{line}")) {
                Ok(neg) => {
                    for p in PROBE_PORTS {
                        assert_ne!(set.contains(p), neg.contains(p), "{line:?} at {p}");
                    }
                }
                Err(_) => assert!(set.is_any()),
            }
        }
    }
});
