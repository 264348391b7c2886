//! Seeded simulations of the read path: 3 and 5 replicas, loss, slow replicas, random
//! fault schedules.

use std::time::Duration;

use epidemic_read_repair::scenario::{self, Report, Scenario};
use epidemic_read_repair::{Config, DataReplica, Level, RepairMode, SpeculativeRetry};
use epidemic_sim::plan::{FaultPlan, PlanShape};
use epidemic_sim::{LinkConfig, Loss, check_seeds};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn lossy(p: f64) -> LinkConfig {
    LinkConfig {
        loss: Loss::Uniform(p),
        ..LinkConfig::default()
    }
}

fn run(s: &Scenario) -> Report {
    scenario::run(s).expect("scenario runs")
}

#[test]
fn quorum_reads_see_every_write_a_quorum_took() {
    // W = 2 of 3 and R = 2: every read sees the newest write issued before it, despite
    // 5% loss and a replica 200 ms slow.
    check_seeds(0..16, |seed| {
        let r = run(&Scenario {
            seed,
            write_replicas: Some(2),
            link: lossy(0.05),
            slow: Some((1, Duration::from_millis(200))),
            ..Scenario::default()
        });
        if r.done < 200 || r.stale_reads > 0 {
            return Err(format!("{} reads done, {} stale", r.done, r.stale_reads));
        }
        Ok(())
    });
}

#[test]
fn blocking_repair_gives_monotonic_quorum_reads_across_coordinators() {
    check_seeds(0..16, |seed| {
        for replicas in [3, 5] {
            let r = run(&Scenario {
                seed,
                replicas,
                coordinators: 3,
                staleness: 0.6,
                write_ratio: 0.4,
                link: lossy(0.05),
                slow: Some((0, Duration::from_millis(150))),
                repair: RepairMode::Blocking,
                ..Scenario::default()
            });
            if r.monotonic_violations > 0 || r.done < 150 || r.repairs == 0 {
                return Err(format!(
                    "{replicas} replicas: {} violations, {} done, {} repairs",
                    r.monotonic_violations, r.done, r.repairs
                ));
            }
        }
        Ok(())
    });
}

#[test]
fn blocking_repair_stays_monotonic_under_random_fault_schedules() {
    check_seeds(0..24, |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let shape = PlanShape {
            nodes: 5,
            horizon: Duration::from_secs(2),
            max_faults: 8,
            restarts: true,
            protected: 0,
        };
        let plan = FaultPlan::random(&mut rng, &shape);
        let r = run(&Scenario {
            seed,
            replicas: 5,
            staleness: 0.5,
            link: lossy(0.02),
            faults: Some(plan),
            config: Config {
                read_timeout: Duration::from_millis(500),
                ..Config::default()
            },
            ..Scenario::default()
        });
        if r.monotonic_violations > 0 {
            return Err(format!("{} violations", r.monotonic_violations));
        }
        Ok(())
    });
}

#[test]
fn repaired_replicas_hold_the_reconciled_value() {
    check_seeds(0..4, |seed| {
        for repair in [RepairMode::Blocking, RepairMode::Async] {
            let r = run(&Scenario {
                seed,
                staleness: 0.5,
                slow: Some((2, Duration::from_millis(100))),
                repair,
                ..Scenario::default()
            });
            if r.unrepaired > 0 || r.repairs == 0 {
                return Err(format!(
                    "{repair:?}: {} of {} repairs not held",
                    r.unrepaired, r.repairs
                ));
            }
        }
        Ok(())
    });
}

#[test]
fn asynchronous_repair_converges_every_replica() {
    check_seeds(0..4, |seed| {
        let r = run(&Scenario {
            seed,
            replicas: 5,
            staleness: 0.5,
            repair: RepairMode::Async,
            final_sweep: Some(RepairMode::Async),
            ..Scenario::default()
        });
        if r.divergent_keys > 0 {
            return Err(format!("{} keys still differ", r.divergent_keys));
        }
        Ok(())
    });
    // Without the sweep the same workload leaves replicas divergent: the check can fail.
    let r = run(&Scenario {
        replicas: 5,
        staleness: 0.5,
        repair: RepairMode::Async,
        ..Scenario::default()
    });
    assert!(r.divergent_keys > 0);
}

#[test]
fn agreeing_replicas_answer_in_one_round_trip() {
    check_seeds(0..4, |seed| {
        let r = run(&Scenario {
            seed,
            staleness: 0.0,
            ..Scenario::default()
        });
        if r.round_trips[1] + r.round_trips[2] > 0 || r.digest_mismatches > 0 || r.done == 0 {
            return Err(format!("round trips {:?}", r.round_trips));
        }
        if r.bytes_saved_by_digests == 0 {
            return Err("digests saved nothing".into());
        }
        Ok(())
    });
}

#[test]
fn speculative_retry_hides_a_slow_replica() {
    let slow = |speculative_retry| Scenario {
        replicas: 3,
        staleness: 0.0,
        write_ratio: 0.0,
        ops: 300,
        slow: Some((0, Duration::from_millis(400))),
        config: Config {
            speculative_retry,
            data_replica: DataReplica::First,
            ..Config::default()
        },
        ..Scenario::default()
    };
    check_seeds(0..3, |seed| {
        let without = run(&Scenario {
            seed,
            ..slow(SpeculativeRetry::Never)
        });
        let with = run(&Scenario {
            seed,
            ..slow(SpeculativeRetry::Percentile(0.99))
        });
        // Without: every read waits for the slow data replica.
        if without.latency_ms[0] < 400.0 {
            return Err(format!("without: p50 {:.1} ms", without.latency_ms[0]));
        }
        // With: the percentile learns the normal latency and one more replica answers.
        if with.latency_ms[1] > 100.0 || with.speculative_retries == 0 || with.failed > 0 {
            return Err(format!("with: p90 {:.1} ms", with.latency_ms[1]));
        }
        Ok(())
    });
}

#[test]
fn same_seed_same_trace() {
    let s = Scenario {
        seed: 11,
        link: lossy(0.05),
        ..Scenario::default()
    };
    assert_eq!(run(&s).trace_hash, run(&s).trace_hash);
    let level_all = run(&Scenario {
        level: Level::All,
        ..s
    });
    assert!(level_all.done > 0);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]

    /// The same property over shrinking fault plans (crashes, restarts, partitions, lossy
    /// and slow links), a write-heavy mix over five replicas: a failing plan
    /// shrinks to the few faults that matter.
    #[test]
    fn blocking_reads_are_monotonic_for_any_fault_plan(
        plan in epidemic_sim::plan::strategy::plans(PlanShape {
            nodes: 5,
            horizon: Duration::from_secs(2),
            max_faults: 10,
            restarts: true,
            protected: 0,
        }),
        seed in 0u64..1000,
    ) {
        let r = run(&Scenario {
            seed,
            replicas: 5,
            coordinators: 3,
            keys: 4,
            write_ratio: 0.4,
            staleness: 0.5,
            shuffle_replicas: true,
            link: lossy(0.05),
            faults: Some(plan),
            config: Config {
                read_timeout: Duration::from_millis(500),
                ..Config::default()
            },
            ..Scenario::default()
        });
        proptest::prop_assert_eq!(r.monotonic_violations, 0);
    }
}

#[test]
fn the_monotonic_check_catches_reads_without_repair() {
    // The workload of the monotonic tests, with no repair: stale quorums are read after
    // newer answers, so the check that finds none under blocking repair is not vacuous.
    let r = run(&Scenario {
        coordinators: 3,
        keys: 4,
        interval: Duration::from_millis(2),
        ops: 1000,
        write_ratio: 0.3,
        staleness: 0.5,
        shuffle_replicas: true,
        repair: RepairMode::None,
        link: LinkConfig {
            jitter: Duration::from_millis(30),
            ..lossy(0.1)
        },
        ..Scenario::default()
    });
    assert!(r.monotonic_violations > 0, "{r:?}");
    let blocking = run(&Scenario {
        coordinators: 3,
        keys: 4,
        interval: Duration::from_millis(2),
        ops: 1000,
        write_ratio: 0.3,
        staleness: 0.5,
        shuffle_replicas: true,
        repair: RepairMode::Blocking,
        link: LinkConfig {
            jitter: Duration::from_millis(30),
            ..lossy(0.1)
        },
        ..Scenario::default()
    });
    assert_eq!(blocking.monotonic_violations, 0);
}

#[test]
fn over_connections_a_crashed_replica_is_failed_over_at_once() {
    check_seeds(0..4, |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let victim = rand::RngExt::random_range(&mut rng, 0..3u64);
        let mut plan = FaultPlan::default();
        plan.faults.push((
            Duration::from_millis(200),
            epidemic_sim::plan::Fault::Crash(usize::try_from(victim).unwrap()),
        ));
        let r = run(&Scenario {
            seed,
            staleness: 0.3,
            transport: epidemic_sim::Transport::Connection {
                failure_detection: Duration::from_millis(50),
            },
            faults: Some(plan),
            config: Config {
                speculative_retry: SpeculativeRetry::Never,
                data_replica: DataReplica::First,
                ..Config::default()
            },
            ..Scenario::default()
        });
        // Every read completes: QUORUM of 3 survives one crash, and a read waiting on the
        // crashed replica moves to the third as soon as the link is reported down.
        if r.failed > 0 || r.done < 250 || r.monotonic_violations > 0 {
            return Err(format!(
                "victim {victim}: {} failed, {} done, {} violations, p99 {:.0} ms",
                r.failed, r.done, r.monotonic_violations, r.latency_ms[2]
            ));
        }
        if r.latency_ms[3] > 300.0 {
            return Err(format!("slowest read {:.0} ms", r.latency_ms[3]));
        }
        Ok(())
    });
}
