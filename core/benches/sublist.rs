//! Subscription index micro-benchmarks: match rate with 100k subscriptions, through the
//! `MatchCache` on hits and on misses, and straight on the trie.
//!
//! `cargo bench -p edgebus-core --bench sublist`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use edgebus_core::sublist::{MatchCache, Sublist, CACHE_MAX};

const SUBS: u32 = 100_000;

/// A service-style subject space over 100 services: 90% literal subscriptions
/// `svc.<s>.<id>.evt`, 5% `svc.<s>.*.w<id>` (a `*` branch every publish has to look into) and
/// 5% `svc.<s>.<id>.>`. A publish on `svc.<s>.<id>.evt` matches one literal, or one `>`.
fn subscriptions() -> Vec<(String, u32)> {
    (0..SUBS)
        .map(|i| {
            let subject = match i % 20 {
                0 => format!("svc.{}.*.w{}", i % 100, i),
                10 => format!("svc.{}.{}.>", i % 100, i),
                _ => format!("svc.{}.{}.evt", i % 100, i),
            };
            (subject, i)
        })
        .collect()
}

fn build() -> Sublist<u32> {
    let mut sl = Sublist::new();
    for (s, id) in subscriptions() {
        sl.insert(s.as_bytes(), None, id).expect("valid subject");
    }
    sl
}

/// Published subjects, each matching exactly one subscription.
fn published(n: u32) -> Vec<Vec<u8>> {
    (0..n)
        .map(|k| {
            // Spread over the id space, skipping the ids taken by `*` subscriptions (id % 20 == 0).
            let id = (k * 7919) % (SUBS / 20) * 20 + 1 + k % 19;
            format!("svc.{}.{}.evt", id % 100, id).into_bytes()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let sl = build();
    assert_eq!(sl.count(), SUBS as usize);
    assert!(published(4096).iter().all(|s| sl.matches(s).plain.len() == 1));

    let mut g = c.benchmark_group("sublist_100k");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));

    // The trie alone: every lookup walks the tokens (what a cache miss pays).
    let subjects = published(4096);
    g.throughput(Throughput::Elements(subjects.len() as u64));
    g.bench_function("match_trie", |b| {
        b.iter(|| {
            let mut n = 0;
            for s in &subjects {
                n += sl.matches(black_box(s)).plain.len();
            }
            n
        })
    });

    // Cache hits: a working set well under CACHE_MAX, warmed first.
    let hot = published(256);
    let mut cache = MatchCache::default();
    for s in &hot {
        cache.lookup(&sl, s);
    }
    g.throughput(Throughput::Elements(hot.len() as u64));
    g.bench_function("cache_hit", |b| {
        b.iter(|| {
            let mut n = 0;
            for s in &hot {
                n += cache.lookup(&sl, black_box(s)).plain.len();
            }
            n
        })
    });

    // Cache misses: cycling through far more subjects than the cache holds, so nearly every
    // lookup walks the trie, inserts and now and then sweeps the cache.
    let cold = published(16 * CACHE_MAX as u32);
    let mut cache = MatchCache::default();
    g.throughput(Throughput::Elements(cold.len() as u64));
    g.bench_function("cache_miss", |b| {
        b.iter(|| {
            let mut n = 0;
            for s in &cold {
                n += cache.lookup(&sl, black_box(s)).plain.len();
            }
            n
        })
    });

    // A subject nobody subscribes to (the "unrelated traffic" case), through the cache.
    let mut cache = MatchCache::default();
    let none = b"other.subject.nobody.wants".to_vec();
    g.throughput(Throughput::Elements(1));
    g.bench_function("cache_hit_no_interest", |b| b.iter(|| cache.lookup(&sl, black_box(&none)).is_empty()));
    g.finish();

    let mut g = c.benchmark_group("sublist_build");
    g.sample_size(10);
    let subs = subscriptions();
    g.throughput(Throughput::Elements(SUBS as u64));
    g.bench_function("insert_100k", |b| {
        b.iter_batched(
            Sublist::<u32>::new,
            |mut sl| {
                for (s, id) in &subs {
                    sl.insert(s.as_bytes(), None, *id).expect("valid subject");
                }
                sl
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
