//! Hint replay: the adaptive window, timeouts, and recovery from the durable log.

mod support;

use std::time::{Duration, Instant};

use epidemic_core::{Machine, Output};
use epidemic_hinted_handoff::{
    Config, Consistency, Event, HintId, LogRecord, MemLog, MemStore, Message, Mutation, Node,
    ReplayConfig,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use support::{N, drain, node, t0};

/// Coordinator 9 holding `n` hints for node 2 (down), persisted into `log`.
fn holder(n: u64, replay: ReplayConfig) -> (N, MemLog, Instant) {
    let now = t0();
    let config = Config {
        sloppy_quorum: false,
        replay,
        ..Config::default()
    };
    let mut c = node(9, config, now);
    let mut log = MemLog::new();
    c.peer_down(now, 2);
    for ts in 1..=n {
        let key = format!("k{ts}").into_bytes();
        c.write(
            now,
            Mutation::put(key, &b"v"[..], ts),
            &[0, 1, 2],
            Consistency::Any,
        )
        .unwrap();
    }
    // Owners 0 and 1 acknowledge every write (superseding the hints that covered them
    // while they had not).
    let mut out = drain(&mut c);
    let acks: Vec<(u64, Message)> = out
        .iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                msg: Message::Write { id, .. },
            } => Some((*to, Message::WriteAck { id: *id })),
            _ => None,
        })
        .collect();
    for (from, ack) in acks {
        c.handle_message(now, from, ack);
        out.extend(drain(&mut c));
    }
    for o in out {
        if let Output::Event(Event::Persist(r)) = o {
            log.apply(&r);
        }
    }
    assert_eq!(c.hints_pending(), usize::try_from(n).unwrap());
    assert_eq!(c.hints_for(2), usize::try_from(n).unwrap());
    (c, log, now)
}

fn replays(out: &[Output<u64, Message, Event>]) -> Vec<(HintId, u64)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send {
                to: 2,
                msg: Message::Replay { hint, mutation },
            } => Some((*hint, mutation.timestamp)),
            _ => None,
        })
        .collect()
}

#[test]
fn replay_window_grows_while_latency_stays_flat() {
    let (mut c, mut log, now) = holder(40, ReplayConfig::default());
    let mut t = now + Duration::from_secs(1);
    c.peer_up(t, 2);
    let mut inflight = replays(&drain(&mut c));
    assert_eq!(inflight.len(), 4, "initial window");
    let mut max_inflight = inflight.len();
    // Every replay is acknowledged 10 ms after it was sent: the window grows.
    while !inflight.is_empty() {
        t += Duration::from_millis(10);
        let batch = std::mem::take(&mut inflight);
        for (hint, ts) in batch {
            c.handle_message(
                t,
                2,
                Message::ReplayAck {
                    hint,
                    timestamp: ts,
                },
            );
            for o in drain(&mut c) {
                match o {
                    Output::Send {
                        msg: Message::Replay { hint, mutation },
                        ..
                    } => inflight.push((hint, mutation.timestamp)),
                    Output::Event(Event::Persist(r)) => log.apply(&r),
                    _ => {}
                }
            }
        }
        max_inflight = max_inflight.max(inflight.len());
    }
    assert!(
        max_inflight >= 16,
        "slow start doubles per round trip: {max_inflight}"
    );
    assert_eq!((c.hints_pending(), log.len()), (0, 0));
    assert_eq!(c.stats().hints_delivered, 40);
}

#[test]
fn replay_window_halves_when_the_target_slows_down() {
    let (mut c, _log, now) = holder(200, ReplayConfig::default());
    let mut t = now + Duration::from_secs(1);
    c.peer_up(t, 2);
    let mut inflight = replays(&drain(&mut c));
    // Two fast rounds (10 ms), then the target's queue grows: 100 ms per ack.
    for (round, rtt) in [(0, 10), (1, 10), (2, 100)] {
        t += Duration::from_millis(rtt);
        let batch = std::mem::take(&mut inflight);
        for (hint, ts) in batch {
            c.handle_message(
                t,
                2,
                Message::ReplayAck {
                    hint,
                    timestamp: ts,
                },
            );
            inflight.extend(replays(&drain(&mut c)));
        }
        let w = c.replay_window(2).unwrap();
        match round {
            0 => assert!((w - 8.0).abs() < 1e-9, "after 4 fast acks: {w}"),
            1 => assert!((w - 16.0).abs() < 1e-9, "after 8 more: {w}"),
            _ => assert!(w < 16.0, "slow acks cut the window: {w}"),
        }
    }
    assert!(c.replays_in_flight(2) <= 16);
}

#[test]
fn unthrottled_replay_sends_everything_at_once() {
    let replay = ReplayConfig {
        adaptive: false,
        max_in_flight: 1000,
        ..ReplayConfig::default()
    };
    let (mut c, _log, now) = holder(300, replay);
    c.peer_up(now, 2);
    assert_eq!(replays(&drain(&mut c)).len(), 300);
}

#[test]
fn replay_timeouts_shrink_the_window_then_pause() {
    let (mut c, _log, now) = holder(50, ReplayConfig::default());
    c.peer_up(now, 2);
    assert_eq!(replays(&drain(&mut c)).len(), 4);
    // Node 2 never answers. Each timeout halves the window; at one, replay pauses until
    // the next dispatch.
    let mut sent = 4;
    let until = now + Duration::from_secs(25);
    while let Some(t) = c.poll_timeout().filter(|t| *t <= until) {
        c.handle_timeout(t);
        sent += replays(&drain(&mut c)).len();
    }
    assert_eq!(c.replay_window(2), Some(1.0));
    assert!(c.stats().replay_timeouts >= 1);
    assert!(
        sent <= 8,
        "backed off instead of resending everything: {sent}"
    );
    assert_eq!(c.hints_for(2), 50, "timeouts never drop hints");
}

#[test]
fn recovery_from_the_log_replays_every_hint() {
    let (c, log, now) = holder(10, ReplayConfig::default());
    let wall_before = 0u64;
    drop(c); // the crash: only the log survives
    let later = now + Duration::from_secs(30);
    let mut r: N = Node::from_log(
        9,
        Config {
            sloppy_quorum: false,
            ..Config::default()
        },
        MemStore::default(),
        ChaCha8Rng::seed_from_u64(99),
        later,
        wall_before + 30_000,
        log.records(),
    )
    .unwrap();
    assert_eq!(r.hints_for(2), 10);
    assert_eq!(r.stats().hints_recovered, 10);
    // The first dispatch is due at once and replays at the initial window.
    assert_eq!(r.poll_timeout(), Some(later));
    r.handle_timeout(later);
    let out = drain(&mut r);
    assert_eq!(replays(&out).len(), 4);
}

#[test]
fn recovery_drops_expired_hints_and_reports_them() {
    let (_c, log, now) = holder(3, ReplayConfig::default());
    let ttl = Duration::from_secs(60);
    let mut r: N = Node::from_log(
        9,
        Config {
            hint_ttl: ttl,
            ..Config::default()
        },
        MemStore::default(),
        ChaCha8Rng::seed_from_u64(1),
        now,
        61_000,
        log.records(),
    )
    .unwrap();
    let out = drain(&mut r);
    let removes = out
        .iter()
        .filter(|o| matches!(o, Output::Event(Event::Persist(LogRecord::Remove(_)))))
        .count();
    let drops = out
        .iter()
        .filter(|o| matches!(o, Output::Event(Event::HintDropped { .. })))
        .count();
    assert_eq!((removes, drops, r.hints_pending()), (3, 3, 0));
}
