//! Web address lists at scale: compiling 1,000,000 domains, and lookups with the parent walk
//! (a miss walks every name from the host down to the registrable domain; a hit stops at the
//! listed parent), a URL lookup on a host that carries URL entries, and repeated names through
//! a worker's verdict cache.
//!
//! `cargo bench -p webaddr --bench lookup`; figures in docs/benchmarks.md.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use webaddr::synth::{Rng, domain_list};
use webaddr::{AddressSet, AddressSetBuilder, Category, Format, ListInfo, parse_list};

const N: usize = 1_000_000;

fn info() -> ListInfo {
    ListInfo {
        id: "synthetic".into(),
        category: Category::Phishing,
        version: "1".into(),
    }
}

fn compile(text: &str) -> AddressSet {
    let parsed = parse_list(text.as_bytes(), Format::Auto);
    let mut b = AddressSetBuilder::new();
    b.add_list(info(), &parsed).unwrap();
    b.build()
}

fn benches(c: &mut Criterion) {
    let text = domain_list(N, 1);
    let mut g = c.benchmark_group("webaddr_1m");
    g.sample_size(10);
    g.bench_function("compile_1m_domains", |b| {
        b.iter(|| black_box(compile(&text)));
    });
    g.finish();

    let mut set_text = text.clone();
    // URL entries on a popular host, as URLhaus lists them on github.com.
    for i in 0..2000 {
        set_text.push_str(&format!("github.com/user{i}/repo/raw/main/payload.exe\n"));
    }
    let set = compile(&set_text);
    let listed: Vec<&str> = text.lines().collect();

    // Misses: four- and five-label names under random registrable domains (the walk probes
    // every name down to the registrable domain, as deep as the list's deepest entry).
    let mut rng = Rng::new(99);
    let misses: Vec<String> = (0..4096)
        .map(|_| format!("{}.{}.{}", rng.label(), rng.label(), rng.domain()))
        .collect();
    // Hits: a name two labels below a listed entry.
    let hits: Vec<String> = (0..4096)
        .map(|i| format!("a.b.{}", listed[(i * 7919) % listed.len()]))
        .collect();
    let urls: Vec<String> = (0..4096)
        .map(|i| {
            format!(
                "https://github.com/user{}/repo/raw/main/payload.exe?x=1",
                i % 4000
            )
        })
        .collect();

    let mut g = c.benchmark_group("webaddr_lookup_1m");
    let mut i = 0usize;
    g.bench_function("host_miss_parent_walk", |b| {
        b.iter(|| {
            i = (i + 1) % misses.len();
            black_box(set.lookup_host(misses[i].as_bytes()).is_listed())
        })
    });
    g.bench_function("host_hit_two_below_entry", |b| {
        b.iter(|| {
            i = (i + 1) % hits.len();
            black_box(set.lookup_host(hits[i].as_bytes()).is_listed())
        })
    });
    g.bench_function("url_on_host_with_url_entries", |b| {
        b.iter(|| {
            i = (i + 1) % urls.len();
            black_box(set.lookup_url(urls[i].as_bytes()).is_listed())
        })
    });
    // Through a worker's verdict cache: names that repeat (1,024 distinct ones, as a VM's DNS
    // and TLS names do), misses and hits alike.
    let mut cache = webaddr::LookupCache::default();
    let repeated: Vec<&String> = misses
        .iter()
        .take(512)
        .chain(hits.iter().take(512))
        .collect();
    g.bench_function("host_repeated_through_cache", |b| {
        b.iter(|| {
            i = (i + 1) % repeated.len();
            black_box(cache.lookup_host(&set, repeated[i].as_bytes()).is_listed())
        })
    });
    g.bench_function("canonical_host_only", |b| {
        b.iter_batched(
            || {
                i = (i + 1) % misses.len();
                misses[i].clone()
            },
            |h| black_box(webaddr::canonical_host(h.as_bytes())),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(lookup, benches);
criterion_main!(lookup);
