//! Benchmarks of the core's hot pieces: phone parsing with a global audience, and decisions.
//!
//! `cargo bench -p optin-core`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use optin_core::business::CategorySlot;
use optin_core::consent::ConsentBits;
use optin_core::decision::decide;
use optin_core::phone::PhoneNumber;

/// Numbers from 60+ countries, each varied in its last digits, in round-robin order: the mix a
/// business with a global audience sends, and the one that used to thrash the regex cache.
fn global_mix(per_country: u64) -> Vec<String> {
    let seeds: Vec<&str> = include_str!("global_mobile_numbers.txt").lines().filter(|l| l.starts_with('+')).collect();
    let mut numbers = Vec::new();
    for variant in 0..per_country {
        for seed in &seeds {
            let (head, tail) = seed.split_at(seed.len() - 2);
            let last_two: u64 = tail.parse().unwrap();
            numbers.push(format!("{head}{:02}", (last_two + variant) % 100));
        }
    }
    numbers
}

fn phone_parsing(c: &mut Criterion) {
    let numbers = global_mix(50);
    let countries = numbers.iter().filter_map(|n| PhoneNumber::parse(n, None).ok()).count();
    assert!(countries > numbers.len() * 9 / 10, "most of the global mix must be valid");
    let mut group = c.benchmark_group("phone");
    group.throughput(Throughput::Elements(numbers.len() as u64));
    group.bench_function("parse_validate_e164_global_mix_62_countries", |b| {
        b.iter(|| {
            for number in &numbers {
                let _ = black_box(PhoneNumber::parse(black_box(number), None));
            }
        });
    });
    group.bench_function("strict_e164_fast_path", |b| {
        b.iter(|| {
            for number in &numbers {
                black_box(PhoneNumber::from_e164(black_box(number)));
            }
        });
    });
    group.finish();
}

fn decisions(c: &mut Criterion) {
    let phone = PhoneNumber::from_e164("+14155552671").unwrap();
    let slot = CategorySlot::new(1).unwrap();
    let consent = ConsentBits { opted_in: 0b10, opted_out: 0, ..ConsentBits::default() };
    c.bench_function("decide_pure", |b| {
        b.iter(|| decide(Ok(black_box(&phone)), Ok(black_box(slot)), black_box(consent).into()));
    });
}

criterion_group!(benches, phone_parsing, decisions);
criterion_main!(benches);
