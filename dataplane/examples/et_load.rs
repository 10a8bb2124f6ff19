//! Load ET Open (../shared/rules/et-open/*.rules, read in place) and print what loaded, what was
//! skipped and why, and how long load + compile took; then the signature groups a few typical
//! flow directions get (rules, fast patterns, automata memory, compile time) and the time
//! `RuleSet::inspect` takes for a binary segment and an HTTP request in each.
//!
//! `cargo run --release -p dataplane --example et_load [DIR]`

use std::path::PathBuf;
use std::time::Instant;

use dataplane::decode::IpProto;
use dataplane::rules::{
    FlowRuleState, FlowView, NoBuffers, PacketView, RuleSet, RuleSetBuilder, ThresholdState,
    reasons_table,
};
use dataplane::time::Timestamp;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/rules/et-open"
            ))
        });
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "rules"))
            .collect(),
        Err(e) => {
            eprintln!("{}: {e}", dir.display());
            std::process::exit(2);
        }
    };
    files.sort();
    let t0 = Instant::now();
    let mut b = RuleSetBuilder::default();
    let mut reports = Vec::new();
    let paths: Vec<&std::path::Path> = files.iter().map(PathBuf::as_path).collect();
    for r in b.add_files(&paths) {
        match r {
            Ok(r) => reports.push(r),
            Err(e) => eprintln!("{e}"),
        }
    }
    let parsed = t0.elapsed();
    let set = b.build();
    let total = t0.elapsed();
    let loaded: usize = reports.iter().map(|r| r.loaded).sum();
    let skipped: usize = reports.iter().map(|r| r.skipped.len()).sum();
    let all = loaded + skipped;
    println!("files: {}", files.len());
    println!(
        "rules: {all}, loaded {loaded} ({:.2}%), skipped {skipped}",
        100.0 * loaded as f64 / all.max(1) as f64
    );
    let (pf, always, ip) = set.layout();
    println!(
        "compiled: {} rules ({pf} prefiltered, {always} always evaluated at most per protocol, {ip} IP-only)",
        set.len()
    );
    println!(
        "time: parse {:.3} s, parse + compile {:.3} s",
        parsed.as_secs_f64(),
        total.as_secs_f64()
    );
    if std::env::var_os("ET_LOAD_VERBOSE").is_some() {
        for r in &reports {
            for e in &r.skipped {
                println!("{}: {e}", r.source);
            }
        }
    }
    println!("skip reasons:");
    for (k, n) in reasons_table(reports.iter().flat_map(|r| r.skipped.iter())) {
        println!("{n:>7}  {k}");
    }
    groups(&set);
}

/// Group sizes and inspection time for typical flow directions.
fn groups(set: &RuleSet) {
    let flows: [(&str, IpProto, &str, u16, &str, u16, bool); 5] = [
        (
            "http client",
            IpProto::Tcp,
            "192.168.1.10",
            51000,
            "93.184.216.34",
            80,
            true,
        ),
        (
            "http server",
            IpProto::Tcp,
            "93.184.216.34",
            80,
            "192.168.1.10",
            51000,
            false,
        ),
        (
            "tls client",
            IpProto::Tcp,
            "192.168.1.10",
            51002,
            "1.2.3.4",
            443,
            true,
        ),
        (
            "dns client",
            IpProto::Udp,
            "192.168.1.10",
            53000,
            "8.8.8.8",
            53,
            true,
        ),
        (
            "lan tcp",
            IpProto::Tcp,
            "10.0.0.5",
            40000,
            "10.0.0.6",
            5001,
            true,
        ),
    ];
    let request = b"GET /index.php?id=1 HTTP/1.1\r\nHost: www.example.com\r\n\
User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64)\r\nAccept: */*\r\n\r\n";
    let mut x: u32 = 0x1234_5678;
    let binary: &'static [u8] = (0..1460)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect::<Vec<u8>>()
        .leak();
    println!("signature groups (parts: any ports / named ports):");
    for (name, proto, src, sport, dst, dport, to_server) in flows {
        let (Ok(src), Ok(dst)) = (src.parse(), dst.parse()) else {
            continue;
        };
        let view = |payload: &'static [u8]| PacketView {
            proto,
            src,
            dst,
            src_port: sport,
            dst_port: dport,
            ttl: 64,
            tcp_flags: (proto == IpProto::Tcp).then_some(0x18),
            icmp: None,
            fragbits: (false, true, false),
            ip_v6: false,
            payload,
            ip_header: &[],
            l4_header: &[],
            stream_size: None,
            flow_counts: None,
            stream_events: 0,
            flow: FlowView {
                has_flow: true,
                established: true,
                to_server,
            },
            app_proto: None,
            events: 0,
            vlan: &[],
            flow_age: None,
        };
        let t = Instant::now();
        let parts = set.group_stats(&view(&[]));
        let compile = t.elapsed();
        for (i, p) in parts.iter().enumerate() {
            println!(
                "  {name:<12} part {i}: {:>6} rules, {:>6} patterns ({} payload, {} of <= 2 bytes), {:>5} without, {:>6} KiB",
                p.rules,
                p.patterns,
                p.payload_patterns,
                p.short_patterns,
                p.always,
                p.automata_bytes / 1024
            );
        }
        let mut fs = FlowRuleState::new();
        let mut th = ThresholdState::new();
        let mut out = Vec::new();
        let mut per = |payload: &'static [u8]| {
            let n = 2000u32;
            let t = Instant::now();
            for _ in 0..n {
                out.clear();
                set.inspect(
                    &view(payload),
                    &NoBuffers,
                    &mut fs,
                    &mut th,
                    Timestamp(0),
                    &mut out,
                );
            }
            t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
        };
        let (b, r) = (per(binary), per(request));
        println!(
            "  {name:<12} compile {:.1} ms; inspect: 1460-byte binary {b:.2} us, HTTP request {r:.2} us",
            compile.as_secs_f64() * 1e3
        );
    }
}
