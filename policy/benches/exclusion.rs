//! Exclusion lookup cost: empty policy, and 10 000 entries over mixed prefix lengths and VLAN forms.

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use ipnet::{IpNet, Ipv4Net};
use policy::{CompiledPolicy, Exclusion, ExclusionRule, Policy, VlanMatch};
use std::net::{IpAddr, Ipv4Addr};
use vlan::{VlanId, VlanScope};

fn ten_thousand() -> Vec<Exclusion> {
    (0u32..10_000)
        .filter_map(|i| {
            let len = match i % 5 {
                0 => 32u8,
                1 => 24,
                2 => 28,
                3 => 16,
                _ => 30,
            };
            let net = Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 | (i << 6)), len)
                .ok()?
                .trunc();
            let vlan = match i % 3 {
                0 => VlanMatch::Any,
                1 => VlanMatch::Id(VlanId::new(u16::try_from(i % 4000).ok()?).ok()?),
                _ => VlanMatch::Untagged,
            };
            Some(Exclusion {
                name: None,
                address: IpNet::V4(net),
                vlan,
                rule: ExclusionRule::DoNotScan,
            })
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let empty = CompiledPolicy::compile(Policy::default());
    let src = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
    let miss = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let Ok(id) = VlanId::new(7) else { return };
    let scope = VlanScope::single(id);
    c.bench_function("exclusion/empty", |b| {
        b.iter(|| empty.exclusion(black_box(scope), black_box(src)))
    });
    let rules = ten_thousand();
    c.bench_function("exclusion/compile_10k", |b| {
        b.iter(|| {
            CompiledPolicy::compile(Policy {
                exclusions: rules.clone(),
                ..Policy::default()
            })
        })
    });
    let big = CompiledPolicy::compile(Policy {
        exclusions: rules,
        ..Policy::default()
    });
    c.bench_function("exclusion/10k_hit", |b| {
        b.iter(|| big.exclusion(black_box(scope), black_box(src)))
    });
    c.bench_function("exclusion/10k_miss", |b| {
        b.iter(|| big.exclusion(black_box(scope), black_box(miss)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
