//! The whole worker: frames through decode, defragmentation, the flow table, the attack blocker,
//! stream reassembly and the app layer, the rule engine (a small built-in rule set over every
//! keyword family) and the actions (drops, resets, blocks and their expiry) together, with
//! detection thresholds low enough for a short input to cross them.
//!
//! Input: one settings byte, then frames, each `[dt, len_hi, len_lo, frame...]` (`len` capped to
//! what is left and to 4096). `dt` advances the packet clock by `dt` × 10 ms; 255 jumps 61 s
//! (timeouts, windows, the end of a one-minute block).
//!
//! Settings bits: 0 inline (else mirror), 1 monitoring mode, 2 actions `inform`, 3 checksum
//! validation, 4 IDS inspection timing, 5 midstream pick-up, 6 single-packet detections block
//! unverified sources, 7 half of each address space may never be blocked. Automatic isolation of
//! protected VMs is always on (one-minute isolations, two profiles and a custom exclusion).
//!
//! VM b has per-VM protection (the activity scanner on its inbound connections only).
//!
//! Beyond "no panic": a monitoring or `inform` policy makes no block, and drops no frame but an
//! isolated VM's or one nested too deep (`decode.too_deep: drop`) (monitoring none); monitoring isolates nothing; every injected frame is a
//! well-formed frame with valid checksums; every block and every isolation expires. The block
//! and isolation tables are the daemon's keepers, driven between frames on packet time as replay
//! drives them, with room for 8 blocks so that a full table (eviction) is reached too. The
//! protected VMs: MAC 02:00:00:00:00:01 untagged, 02:00:00:00:00:02 on VLAN 100, and one known
//! by its address only (10.0.0.1, untagged).
#![no_main]

use std::sync::{Arc, OnceLock};

use dataplane::decode::{DecodeOptions, decode_frame};
use dataplane::event::EventKind;
use dataplane::isolation::{
    IsolationChange, IsolationKeeper, Protected, ProtectedVm, SharedIsolation, VmNic,
};
use dataplane::rules::{RuleSet, RuleSetBuilder};
use dataplane::scanner::InspectionMode;
use dataplane::shared_blocks::{BlockKeeper, SharedBlocks};
use dataplane::time::Timestamp;
use dataplane::worker::{Attach, DropReason, PacketMeta, VecOutput, Verdict, Worker, WorkerConfig};
use libfuzzer_sys::fuzz_target;
use policy::{CompiledPolicy, Policy};

/// One rule per family the parser and the engine know: payload content with modifiers, HTTP,
/// TLS and DNS buffers, pcre, byte tests, flowbits, thresholds, header checks, and `drop` /
/// `reject` actions. Ports are `any` so the fuzzer reaches them with any port.
const RULES: &str = r#"
alert tcp any any -> any any (msg:"payload"; flow:established,to_server; content:"GET "; depth:4; content:"/"; distance:0; within:2; sid:1;)
drop tcp any any -> any any (msg:"http uri"; flow:established,to_server; http.uri; content:"/admin"; nocase; sid:2;)
alert http any any -> any any (msg:"http host"; http.host; content:"evil"; sid:3;)
alert tls any any -> any any (msg:"tls sni"; tls.sni; content:"bad.example"; sid:4;)
alert dns any any -> any any (msg:"dns query"; dns.query; content:"c2"; nocase; sid:5;)
alert tcp any any -> any any (msg:"pcre"; pcre:"/pass(word)?=/i"; sid:6;)
alert udp any any -> any any (msg:"byte_test"; byte_test:1,>,200,0; isdataat:2,relative; sid:7;)
alert tcp any any -> any any (msg:"flowbit set"; flow:to_server; content:"login"; flowbits:set,seen; flowbits:noalert; sid:8;)
alert tcp any any -> any any (msg:"flowbit isset"; flow:to_client; flowbits:isset,seen; content:"ok"; sid:9;)
reject tcp any any -> any any (msg:"reject"; content:"shell"; fast_pattern; sid:10;)
alert ip any any -> any any (msg:"ttl"; ttl:1; threshold:type limit,track by_src,count 1,seconds 60; sid:11;)
alert icmp any any -> any any (msg:"icmp"; itype:8; dsize:>100; sid:12;)
drop udp any any -> any any (msg:"udp drop"; content:"|de ad|"; detection_filter:track by_src,count 2,seconds 10; sid:13;)
alert tcp any any -> any any (msg:"flags"; flags:SF,12; sid:14;)
drop pkthdr any any -> any any (msg:"frag overlap"; decode-event:ipv4.frag_overlap; sid:15;)
alert tcp any any -> any any (msg:"tcp too small"; decode-event:tcp.pkt_too_small; sid:16;)
alert ip any any -> any any (msg:"fragment"; fragbits:M; sid:17;)
"#;

fn rules() -> Arc<RuleSet> {
    static SET: OnceLock<Arc<RuleSet>> = OnceLock::new();
    Arc::clone(SET.get_or_init(|| {
        let mut b = RuleSetBuilder::default();
        let report = b.add_text("worker-fuzz", RULES);
        assert!(
            report.skipped.is_empty(),
            "the built-in rules must all load: {:?}",
            report.skipped
        );
        Arc::new(b.build())
    }))
}

/// The policy: every detector at a count a short input reaches, one-minute blocks; with
/// `unverified`, single-packet detections block unproven sources too; with `never_block`, half
/// of each address space may never be blocked.
fn policy(
    monitoring: bool,
    inform: bool,
    unverified: bool,
    never_block: bool,
) -> Arc<CompiledPolicy> {
    let action = if inform {
        "inform"
    } else {
        "terminate_and_block"
    };
    let mode = if monitoring { "monitoring" } else { "standard" };
    let text = format!(
        "mode: {mode}\n\
         attack_blocker:\n  action: {action}\n  block_minutes: 1\n  detectors:\n\
         \x20   tcp_port_scan: {{count: 3, window_secs: 10}}\n\
         \x20   udp_port_scan: {{count: 3, window_secs: 10}}\n\
         \x20   host_sweep: {{count: 3, window_secs: 10}}\n\
         \x20   syn_flood: {{count: 4, window_secs: 5}}\n\
         \x20   udp_flood: {{count: 5, window_secs: 1}}\n\
         \x20   icmp_flood: {{count: 5, window_secs: 1}}\n\
         \x20 block_unverified_sources: {unverified}\n\
         activity_scanner:\n  action: {action}\n\
         never_block: {never}\n\
         isolation:\n  automatic:\n    enabled: true\n    duration_minutes: 1\n\
         \x20   exclusions:\n      - profile: dns-client\n      - profile: dhcp-client\n\
         \x20     - {{remote: 10.0.0.0/8, protocol: tcp, ports: [80], direction: outbound}}\n\
         protection:\n  vms:\n    b: {{direction: inbound, web_address_scan: false}}\n",
        never = if never_block {
            "[0.0.0.0/1, \"::/1\"]"
        } else {
            "[]"
        },
    );
    let p = Policy::from_yaml(&text).expect("the fuzz policy is valid");
    Arc::new(CompiledPolicy::compile(p))
}

fn protected() -> Arc<Protected> {
    let nic = |vlan: u16, mac: Option<[u8; 6]>, addr: [u8; 4]| VmNic {
        scope: match vlan::VlanId::new(vlan) {
            Ok(id) if vlan > 0 => vlan::VlanScope::single(id),
            _ => vlan::VlanScope::UNTAGGED,
        },
        mac,
        addrs: vec![std::net::IpAddr::from(addr)],
    };
    let vm = |id: &str, nics| ProtectedVm {
        id: id.into(),
        nics,
        learned: Default::default(),
    };
    Arc::new(
        Protected::new(vec![
            vm("a", vec![nic(0, Some([2, 0, 0, 0, 0, 1]), [10, 0, 0, 66])]),
            vm(
                "b",
                vec![nic(100, Some([2, 0, 0, 0, 0, 2]), [10, 0, 0, 10])],
            ),
            vm("c", vec![nic(0, None, [10, 0, 0, 1])]),
        ])
        .expect("the fuzz inventory is valid"),
    )
}

fn worker(settings: u8) -> (Worker, BlockKeeper, IsolationKeeper) {
    let mut cfg = WorkerConfig::default();
    cfg.attach = if settings & 1 != 0 {
        Attach::Inline
    } else {
        Attach::Mirror
    };
    cfg.decode.verify_checksums = settings & 8 != 0;
    cfg.scanner.mode = if settings & 16 != 0 {
        InspectionMode::Ids
    } else {
        InspectionMode::Inline
    };
    cfg.scanner.stream.midstream = settings & 32 != 0;
    // Small tables: eviction, sweeps and caps are reached by short inputs too.
    cfg.flows.max_flows = 64;
    cfg.defrag.max_datagrams = 16;
    cfg.defrag.max_bytes = 1 << 16;
    cfg.attack_caps.sources = 32;
    cfg.attack_caps.destinations = 32;
    cfg.attack_caps.mac_bindings = 32;
    cfg.attack_caps.first_seen = 8;
    let SharedBlocks {
        keeper,
        mut clients,
        ..
    } = SharedBlocks::new(1, 8);
    let mut w = Worker::new(
        cfg,
        policy(
            settings & 2 != 0,
            settings & 4 != 0,
            settings & 64 != 0,
            settings & 128 != 0,
        ),
        clients.remove(0),
    );
    w.set_rules(Some(rules()));
    let SharedIsolation {
        keeper: iso_keeper,
        clients: mut iso_clients,
        ..
    } = SharedIsolation::new(protected(), 1);
    w.set_isolation(iso_clients.remove(0));
    (w, keeper, iso_keeper)
}

/// Injected frames are built by us for the wire: they must decode with checksums checked.
fn check_injected(out: &mut VecOutput) {
    let strict = DecodeOptions {
        verify_checksums: true,
    };
    for (frame, _) in out.injected.drain(..) {
        if let Err(e) = decode_frame(&frame, strict) {
            panic!("an injected frame does not decode ({e:?}): {frame:02x?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&settings, mut rest)) = data.split_first() else {
        return;
    };
    let monitoring = settings & 2 != 0;
    let quiet = monitoring || settings & 4 != 0;
    let (mut w, mut keeper, mut iso) = worker(settings);
    let mut out = VecOutput::default();
    let mut now = Timestamp::from_secs_micros(1_000_000, 0);
    let mut n = 0u64;
    let mut isolated_once = false;
    while let Some((&[dt, hi, lo], tail)) = rest.split_first_chunk::<3>() {
        let len = usize::from(u16::from_be_bytes([hi, lo]))
            .min(tail.len())
            .min(4096);
        let (frame, tail) = tail.split_at(len);
        rest = tail;
        now = if dt == 255 {
            now.plus_secs(61)
        } else {
            now.plus_micros(u64::from(dt) * 10_000)
        };
        n += 1;
        keeper.expire(now, &mut |_| {});
        keeper.publish();
        iso.expire(now, &mut |_| {});
        iso.publish();
        let verdict = w.process(
            frame,
            PacketMeta {
                ts: now,
                pcap_cnt: n,
            },
            &mut out,
        );
        keeper.drain(&mut |_| {});
        keeper.publish();
        iso.drain(&mut |ev| out.events.push(ev));
        iso.publish();
        assert!(keeper.len() <= 8, "the table outgrew its capacity");
        if monitoring {
            assert_eq!(verdict, Verdict::Forward, "monitoring dropped a frame");
            assert!(
                !out.events.iter().any(|e| matches!(
                    &e.kind,
                    EventKind::Isolation {
                        change: IsolationChange::Started { .. },
                        ..
                    }
                )),
                "monitoring isolated a VM"
            );
        }
        // An isolation resets the VM's sessions (terminates their flows), whatever the
        // engines' action: a later frame of such a flow is dropped as terminated, also once
        // the isolation has ended.
        isolated_once |= out.events.iter().any(|e| {
            matches!(
                &e.kind,
                EventKind::Isolation {
                    change: IsolationChange::Started { .. },
                    ..
                }
            )
        });
        if quiet {
            assert!(
                matches!(
                    verdict,
                    Verdict::Forward
                        | Verdict::Drop(DropReason::Isolated)
                        | Verdict::Drop(DropReason::TooDeep)
                ) || (isolated_once && verdict == Verdict::Drop(DropReason::Terminated)),
                "monitoring/inform dropped a frame of a VM not isolated: {verdict:?}"
            );
            assert!(keeper.is_empty(), "monitoring/inform made a block");
        }
        check_injected(&mut out);
        out.events.clear();
    }
    assert_eq!(w.counters().packets, n);
    w.flush_streams(now, &mut out);
    check_injected(&mut out);
    // Blocks last one minute here (at most 32768 minutes in any policy): all are gone a day on.
    keeper.drain(&mut |_| {});
    keeper.expire(now.plus_secs(86_400), &mut |_| {});
    assert!(keeper.is_empty(), "a block outlived its expiry");
    iso.drain(&mut |_| {});
    iso.expire(now.plus_secs(86_400), &mut |_| {});
    assert!(iso.is_empty(), "an isolation outlived its expiry");
});
