//! Simulator throughput: deliveries per second of a flooding run (the run alone, without
//! building the overlay), at 1,000 and 10,000 nodes, lossless and with 5% loss and 2%
//! duplication.
//!
//! `cargo bench -p epidemic-sim` (criterion reports elements/s = deliveries/s).

#![allow(missing_docs)]

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use epidemic_sim::flood::{self, FloodScenario};
use epidemic_sim::{LinkConfig, Loss};

fn flood_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("flood");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for (name, nodes, link) in [
        ("lossless", 1_000, LinkConfig::default()),
        ("lossless", 10_000, LinkConfig::default()),
        (
            "loss5_dup2",
            10_000,
            LinkConfig {
                loss: Loss::Uniform(0.05),
                duplicate: 0.02,
                ..LinkConfig::default()
            },
        ),
    ] {
        let scenario = FloodScenario {
            nodes,
            degree: 6,
            messages: 5,
            link,
            seed: 1,
            ..FloodScenario::default()
        };
        let deliveries = flood::run(&scenario).expect("runs").deliveries;
        group.throughput(Throughput::Elements(deliveries));
        // Time only the simulation itself, as the CLI does: not building the overlay or
        // analysing it.
        group.bench_with_input(BenchmarkId::new(name, nodes), &scenario, |b, s| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let r = flood::run(s).expect("runs");
                        Duration::from_secs_f64(r.measured.wall_secs)
                    })
                    .sum()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, flood_throughput);
criterion_main!(benches);
