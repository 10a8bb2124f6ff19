//! Rule matching: prefilter + verification over typical payloads with ET Open loaded
//! (../shared/rules/et-open, read in place; the bench is skipped when the files are missing),
//! plus a small synthetic set that always runs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use dataplane::decode::IpProto;
use dataplane::rules::{
    AppProto, BufferKind, FlowRuleState, FlowView, PacketView, RuleSet, RuleSetBuilder,
    ThresholdState,
};
use dataplane::time::Timestamp;

fn et_open() -> Option<RuleSet> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/rules/et-open");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .collect();
    files.sort();
    let mut b = RuleSetBuilder::default();
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    b.add_files(&paths);
    Some(b.build())
}

fn view(payload: &[u8], app: Option<AppProto>) -> PacketView<'_> {
    PacketView {
        proto: IpProto::Tcp,
        src: "192.168.1.10"
            .parse()
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
        dst: "93.184.216.34"
            .parse()
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
        src_port: 51000,
        dst_port: 80,
        ttl: 64,
        tcp_flags: Some(0x18),
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
            to_server: true,
        },
        app_proto: app,
        events: 0,
        vlan: &[],
        flow_age: None,
    }
}

fn run(c: &mut Criterion, name: &str, set: &RuleSet) {
    let request = b"GET /wp-content/plugins/index.php?id=1&cmd=whoami HTTP/1.1\r\nHost: www.example.com\r\n\
User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64)\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n";
    let mut bulk = Vec::with_capacity(1460);
    for i in 0..1460u32 {
        bulk.push((i.wrapping_mul(2_654_435_761) >> 24) as u8);
    }
    let bufs: HashMap<BufferKind, Vec<u8>> = [
        (
            BufferKind::HttpUri,
            b"/wp-content/plugins/index.php?id=1&cmd=whoami".to_vec(),
        ),
        (BufferKind::HttpMethod, b"GET".to_vec()),
        (BufferKind::HttpHost, b"www.example.com".to_vec()),
        (
            BufferKind::HttpUserAgent,
            b"Mozilla/5.0 (Windows NT 10.0; Win64; x64)".to_vec(),
        ),
        (
            BufferKind::HttpHeader,
            b"Host: www.example.com\r\nAccept: */*\r\n".to_vec(),
        ),
    ]
    .into();
    let mut g = c.benchmark_group(name);
    let mut th = ThresholdState::new();
    let mut out = Vec::new();
    g.throughput(Throughput::Bytes(request.len() as u64));
    g.bench_function("http_request", |b| {
        let p = view(request, Some(AppProto::Http));
        b.iter(|| {
            out.clear();
            let mut fs = FlowRuleState::new();
            set.inspect(
                black_box(&p),
                &bufs,
                &mut fs,
                &mut th,
                Timestamp(0),
                &mut out,
            );
            black_box(out.len())
        })
    });
    g.throughput(Throughput::Bytes(bulk.len() as u64));
    g.bench_function("binary_1460", |b| {
        let p = view(&bulk, None);
        let none: HashMap<BufferKind, Vec<u8>> = HashMap::new();
        b.iter(|| {
            out.clear();
            let mut fs = FlowRuleState::new();
            set.inspect(
                black_box(&p),
                &none,
                &mut fs,
                &mut th,
                Timestamp(0),
                &mut out,
            );
            black_box(out.len())
        })
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    let mut b = RuleSetBuilder::default();
    b.add_text(
        "bench",
        r#"alert http any any -> any any (http.uri; content:"cmd=whoami"; sid:1;)
alert tcp any any -> any 80 (content:"GET"; startswith; content:"index.php"; distance:0; sid:2;)
alert tcp any any -> any any (pcre:"/id=\d+&cmd=/"; content:"id="; sid:3;)"#,
    );
    run(c, "rules_small", &b.build());
    match et_open() {
        Some(set) => run(c, "rules_et_open", &set),
        None => eprintln!("ET Open rules not found: skipping the ET Open benches"),
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
