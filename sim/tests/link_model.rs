//! The link model delivers what it is configured to: loss, bursts, latency and jitter,
//! reordering, duplication, within statistical bounds.

mod support;

use std::time::Duration;

use epidemic_sim::{GilbertElliott, LinkConfig, Loss, Sim, SimConfig, Wire};
use support::{Prober, receipts};

const MS: Duration = Duration::from_millis(1);

/// Node 0 probes node 1 `n` times, one probe per `period`, over `link`.
fn one_link(seed: u64, link: LinkConfig, n: u64, period: Duration) -> Sim<Prober> {
    let config = SimConfig {
        seed,
        link,
        ..SimConfig::default()
    };
    let mut sim = Sim::new(config, Wire::unsized_());
    let start = sim.instant();
    sim.add_node(0, Prober::new(0, vec![1], period, n, start))
        .unwrap();
    sim.add_node(1, Prober::listener(1)).unwrap();
    assert!(
        sim.run_until_quiescent(Duration::from_secs(1_000_000))
            .unwrap()
    );
    sim
}

/// `|observed − expected| ≤ 5σ` of a binomial proportion: fails by chance about once in
/// 1.7 million runs, and every run here is seeded, so a pass is a pass forever.
fn within_binomial(observed: u64, n: u64, p: f64) -> bool {
    let sigma = (p * (1.0 - p) / n as f64).sqrt();
    ((observed as f64 / n as f64) - p).abs() <= 5.0 * sigma
}

#[test]
fn uniform_loss_matches_the_configured_rate() {
    for (seed, p) in [(1, 0.01), (2, 0.1), (3, 0.3)] {
        let n = 20_000;
        let link = LinkConfig {
            loss: Loss::Uniform(p),
            ..LinkConfig::default()
        };
        let sim = one_link(seed, link, n, MS);
        let got = receipts(sim.events()).len() as u64;
        let lost = n - got;
        assert!(within_binomial(lost, n, p), "p={p}: lost {lost} of {n}");
        assert_eq!(sim.metrics().drops.loss, lost);
        assert_eq!(sim.metrics().sent.messages, n);
    }
}

#[test]
fn bursty_loss_has_the_configured_rate_and_burst_length() {
    let (rate, burst, n) = (0.1, 5.0, 100_000);
    let link = LinkConfig {
        loss: Loss::Bursty(GilbertElliott::with_rate(rate, burst)),
        jitter: Duration::ZERO, // keep order, so gaps in seq are the bursts
        ..LinkConfig::default()
    };
    let sim = one_link(11, link, n, MS);
    let seqs: Vec<u64> = receipts(sim.events()).iter().map(|r| r.2).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "no jitter, no reordering"
    );
    let lost = n - seqs.len() as u64;
    let observed = lost as f64 / n as f64;
    // Bursts make the variance ~burst times the binomial one; allow ±2 points.
    assert!((observed - rate).abs() < 0.02, "observed loss {observed}");
    let mut prev = 0;
    let (mut bursts, mut in_bursts) = (0u64, 0u64);
    for &s in seqs.iter().chain(std::iter::once(&(n + 1))) {
        if s > prev + 1 {
            bursts += 1;
            in_bursts += s - prev - 1;
        }
        prev = s;
    }
    let mean = in_bursts as f64 / bursts as f64;
    assert!((4.0..6.0).contains(&mean), "mean burst {mean}");
    // Uniform loss at the same rate has bursts of ~1.1: the model is really bursty.
    let uniform = one_link(
        11,
        LinkConfig {
            loss: Loss::Uniform(rate),
            ..LinkConfig::default()
        },
        20_000,
        MS,
    );
    assert!(receipts(uniform.events()).len() > 17_000);
}

#[test]
fn latency_stays_within_base_plus_jitter_and_reorders() {
    let link = LinkConfig {
        latency: 20 * MS,
        jitter: 10 * MS,
        ..LinkConfig::default()
    };
    let n = 10_000;
    // One probe per 0.5 ms: jitter of 10 ms makes later probes overtake earlier ones.
    let sim = one_link(5, link, n, MS / 2);
    let r = receipts(sim.events());
    assert_eq!(r.len() as u64, n);
    assert!(r.iter().all(|&(_, _, _, d)| d >= 20 * MS && d <= 30 * MS));
    let mean = r.iter().map(|x| x.3.as_secs_f64()).sum::<f64>() / n as f64;
    // Uniform on [20, 30] ms: mean 25 ms, σ of the mean ≈ 2.9 ms / √n = 0.03 ms.
    assert!((mean * 1e3 - 25.0).abs() < 0.2, "mean {mean}");
    let overtaken = r.windows(2).filter(|w| w[1].2 < w[0].2).count();
    assert!(overtaken > n as usize / 10, "only {overtaken} reorderings");
    // Without jitter nothing is reordered and every delay is exact.
    let exact = one_link(
        5,
        LinkConfig {
            jitter: Duration::ZERO,
            ..LinkConfig::default()
        },
        1000,
        MS / 2,
    );
    let r = receipts(exact.events());
    assert!(r.windows(2).all(|w| w[0].2 < w[1].2));
    assert!(r.iter().all(|x| x.3 == 10 * MS));
}

#[test]
fn duplication_happens_at_the_configured_rate() {
    let (p, n) = (0.05, 20_000);
    let link = LinkConfig {
        duplicate: p,
        ..LinkConfig::default()
    };
    let sim = one_link(9, link, n, MS);
    let mut seqs: Vec<u64> = receipts(sim.events()).iter().map(|r| r.2).collect();
    let total = seqs.len() as u64;
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len() as u64, n, "every probe arrives at least once");
    let dups = total - n;
    assert!(within_binomial(dups, n, p), "{dups} duplicates of {n}");
    assert_eq!(sim.metrics().duplicated, dups);
    assert_eq!(sim.metrics().delivered.messages, total);
}

#[test]
fn a_per_link_override_changes_one_direction_only() {
    let config = SimConfig::with_seed(3);
    let mut sim: Sim<Prober> = Sim::new(config, Wire::unsized_());
    // Probing starts at 1 ms, after the override applied at 0.
    let start = sim.instant() + MS;
    sim.add_node(0, Prober::new(0, vec![1], MS, 100, start))
        .unwrap();
    sim.add_node(1, Prober::new(1, vec![0], MS, 100, start))
        .unwrap();
    sim.schedule_link(Duration::ZERO, &0, &1, Some(LinkConfig::down()))
        .unwrap();
    sim.run_until_quiescent(Duration::from_secs(10)).unwrap();
    let r = receipts(sim.events());
    assert!(r.iter().all(|&(to, from, _, _)| (to, from) == (0, 1)));
    assert_eq!(r.len(), 100);
    assert_eq!(sim.metrics().drops.loss, 100);
}

#[test]
fn a_slow_node_sees_its_messages_late_and_others_do_not() {
    let mut sim: Sim<Prober> = Sim::new(SimConfig::with_seed(4), Wire::unsized_());
    let start = sim.instant() + MS;
    for me in 0..3u64 {
        let targets = (0..3).filter(|&t| t != me).collect();
        sim.add_node(me, Prober::new(me, targets, MS, 200, start))
            .unwrap();
    }
    let extra = 250 * MS;
    sim.schedule_slow(100 * MS, &2, extra).unwrap();
    sim.schedule_slow(150 * MS, &2, Duration::ZERO).unwrap();
    sim.run_until_quiescent(Duration::from_secs(10)).unwrap();
    let origin = sim.instant() - sim.now();
    for e in sim.events() {
        let support::Ev::Got { sent, at, .. } = e.event else {
            continue;
        };
        let (sent, delay) = (sent - origin, at - sent);
        let slowed = e.node == 2 && (100 * MS..150 * MS).contains(&sent);
        if slowed {
            assert!(
                delay >= 10 * MS + extra && delay <= 15 * MS + extra,
                "{delay:?}"
            );
        } else {
            assert!(
                delay >= 10 * MS && delay <= 15 * MS,
                "node {} sent at {sent:?}: {delay:?}",
                e.node
            );
        }
    }
    assert_eq!(receipts(sim.events()).len(), 3 * 2 * 200, "slow, not lossy");
}

#[test]
fn endless_delays_mean_never_not_a_panic() {
    let link = LinkConfig {
        latency: Duration::MAX,
        jitter: Duration::MAX,
        duplicate: 0.5,
        ..LinkConfig::default()
    };
    let config = SimConfig {
        seed: 1,
        link,
        ..SimConfig::default()
    };
    let mut sim: Sim<Prober> = Sim::new(config, Wire::unsized_());
    let start = sim.instant();
    sim.add_node(0, Prober::new(0, vec![1], MS, 10, start))
        .unwrap();
    sim.add_node(1, Prober::listener(1)).unwrap();
    sim.schedule_slow(Duration::ZERO, &1, Duration::MAX)
        .unwrap();
    assert!(!sim.run_until_quiescent(Duration::from_secs(3600)).unwrap());
    assert!(receipts(sim.events()).is_empty());
    assert_eq!(sim.metrics().sent.messages, 10);
}
