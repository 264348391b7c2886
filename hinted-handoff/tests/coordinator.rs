//! The coordinator and replica roles driven by hand: exact outputs, consistency levels,
//! sloppy quorums, hints and their bounds.

mod support;

use std::time::Duration;

use epidemic_core::{Machine, Output};
use epidemic_hinted_handoff::{
    Config, Consistency, DropReason, Event, LogRecord, Message, Mutation, WriteError,
};
use support::{Cluster, drain, node, t0};

fn m(key: &str, ts: u64) -> Mutation {
    Mutation::put(key.as_bytes().to_vec(), format!("v{ts}").into_bytes(), ts)
}

#[test]
fn quorum_write_exact_outputs() {
    let now = t0();
    let mut a = node(0, Config::default(), now);
    let id = a
        .write(now, m("k", 1), &[0, 1, 2, 3, 4], Consistency::Quorum)
        .unwrap();
    // Node 0 owns the key and applies it locally; owners 1 and 2 get the write.
    assert_eq!(
        drain(&mut a),
        [
            Output::Send {
                to: 1,
                msg: Message::Write {
                    id,
                    mutation: m("k", 1)
                }
            },
            Output::Send {
                to: 2,
                msg: Message::Write {
                    id,
                    mutation: m("k", 1)
                }
            },
        ]
    );
    assert!(a.store().has(b"k", 1));
    // Owner 1 acknowledges: quorum met. Owner 2 has not answered yet, so a hint covering
    // it is persisted *before* the client hears of success.
    let later = now + Duration::from_millis(5);
    a.handle_message(later, 1, Message::WriteAck { id });
    let out = drain(&mut a);
    assert_eq!(out.len(), 2);
    let Output::Event(Event::Persist(LogRecord::Put(rec))) = &out[0] else {
        panic!("expected a persisted hint first, got {out:?}");
    };
    assert_eq!((rec.target, rec.handoff), (2, false));
    assert_eq!(
        out[1],
        Output::Event(Event::WriteAcked {
            id,
            acks: 2,
            hinted: 1,
            latency: Duration::from_millis(5)
        })
    );
    // Owner 2 answers late: the hint is superseded and removed.
    a.handle_message(later, 2, Message::WriteAck { id });
    assert_eq!(
        drain(&mut a),
        [Output::Event(Event::Persist(LogRecord::Remove(rec.id)))]
    );
    assert_eq!((a.hints_pending(), a.pending_writes()), (0, 0));
    assert_eq!(a.stats().hints_superseded, 1);
    // A duplicate ack for the finished write is counted, not acted on.
    a.handle_message(later, 2, Message::WriteAck { id });
    assert!(drain(&mut a).is_empty());
    assert_eq!(a.stats().unknown_acks, 1);
}

#[test]
fn every_level_counts_right() {
    for (level, acks_needed) in [
        (Consistency::One, 1),
        (Consistency::Two, 2),
        (Consistency::Three, 3),
        (Consistency::Quorum, 2),
        (Consistency::All, 3),
        (Consistency::Count(2), 2),
    ] {
        let now = t0();
        // Coordinator 9 is not an owner: every ack is remote.
        let mut c = node(9, Config::default(), now);
        let id = c.write(now, m("k", 1), &[0, 1, 2], level).unwrap();
        drain(&mut c);
        for (i, peer) in [0u64, 1, 2].into_iter().enumerate() {
            c.handle_message(now, peer, Message::WriteAck { id });
            let acked = drain(&mut c)
                .iter()
                .any(|o| matches!(o, Output::Event(Event::WriteAcked { .. })));
            assert_eq!(
                acked,
                i + 1 == acks_needed,
                "{level:?} after {} acks",
                i + 1
            );
        }
    }
}

#[test]
fn refusals_change_nothing() {
    let now = t0();
    let mut c = node(9, Config::default(), now);
    let pref = [0, 1, 2];
    assert_eq!(
        c.write(now, m("k", 1), &[0, 1], Consistency::One),
        Err(WriteError::BadPreferenceList)
    );
    assert_eq!(
        c.write(now, m("k", 1), &[0, 1, 1], Consistency::One),
        Err(WriteError::BadPreferenceList)
    );
    assert_eq!(
        c.write(now, m("k", 1), &pref, Consistency::Count(4)),
        Err(WriteError::Unsatisfiable {
            required: 4,
            replicas: 3
        })
    );
    let big = Mutation::put(vec![0u8; 10], vec![0u8; 2 << 20], 1);
    assert!(matches!(
        c.write(now, big, &pref, Consistency::One),
        Err(WriteError::TooLarge { .. })
    ));
    // Strict quorum with two owners down: QUORUM is refused up front.
    let strict = Config {
        sloppy_quorum: false,
        ..Config::default()
    };
    let mut s = node(9, strict, now);
    s.peer_down(now, 0);
    s.peer_down(now, 1);
    assert_eq!(
        s.write(now, m("k", 1), &pref, Consistency::Quorum),
        Err(WriteError::Unavailable {
            required: 2,
            alive: 1
        })
    );
    assert!(drain(&mut c).is_empty() && drain(&mut s).is_empty());
    assert_eq!((c.stats().writes, s.stats().writes), (0, 0));
}

#[test]
fn any_succeeds_on_hints_alone() {
    let now = t0();
    let strict = Config {
        sloppy_quorum: false,
        ..Config::default()
    };
    let mut c = node(9, strict, now);
    for p in [0, 1, 2] {
        c.peer_down(now, p);
    }
    assert!(matches!(
        c.write(now, m("k", 1), &[0, 1, 2], Consistency::One),
        Err(WriteError::Unavailable { .. })
    ));
    let id = c
        .write(now, m("k", 1), &[0, 1, 2], Consistency::Any)
        .unwrap();
    let out = drain(&mut c);
    let persisted = out
        .iter()
        .filter(|o| matches!(o, Output::Event(Event::Persist(LogRecord::Put(_)))))
        .count();
    assert_eq!(persisted, 3);
    assert_eq!(
        out.last(),
        Some(&Output::Event(Event::WriteAcked {
            id,
            acks: 0,
            hinted: 3,
            latency: Duration::ZERO
        }))
    );
    assert_eq!(c.hints_pending(), 3);
}

#[test]
fn timeout_hints_the_silent_and_fails_below_level() {
    let now = t0();
    let mut c = node(9, Config::default(), now);
    let id = c
        .write(now, m("k", 1), &[0, 1, 2], Consistency::All)
        .unwrap();
    drain(&mut c);
    c.handle_message(now, 0, Message::WriteAck { id });
    assert!(drain(&mut c).is_empty());
    let deadline = c.poll_timeout().unwrap();
    assert_eq!(deadline, now + Duration::from_secs(2));
    c.handle_timeout(deadline - Duration::from_millis(1)); // early: no-op
    assert!(drain(&mut c).is_empty());
    c.handle_timeout(deadline);
    let out = drain(&mut c);
    let targets: Vec<u64> = out
        .iter()
        .filter_map(|o| match o {
            Output::Event(Event::Persist(LogRecord::Put(r))) => Some(r.target),
            _ => None,
        })
        .collect();
    assert_eq!(targets, [1, 2]);
    assert_eq!(
        out.last(),
        Some(&Output::Event(Event::WriteFailed {
            id,
            acks: 1,
            required: 3
        }))
    );
    assert_eq!(c.stats().writes_failed, 1);
}

/// The seed's example: replicas {A, B, C} of {A, B, C, D, E}, B down, A picks D; the data
/// lives on {A, D, C}; D hands off to B when B recovers and drops its copy once B
/// acknowledges.
#[test]
fn sloppy_quorum_hands_off_to_the_owner() {
    let (a, b, c, d) = (0, 1, 2, 3);
    let mut cl = Cluster::new(5, &Config::default());
    cl.down.insert(b);
    cl.report_down(b);
    let now = cl.now;
    let id = cl
        .node(a)
        .write(now, m("k", 7), &[a, b, c, d, 4], Consistency::All)
        .unwrap();
    let first = drain(cl.node(a));
    assert_eq!(
        first,
        [
            Output::Send {
                to: d,
                msg: Message::HintedWrite {
                    id,
                    owner: b,
                    mutation: m("k", 7)
                }
            },
            Output::Send {
                to: c,
                msg: Message::Write {
                    id,
                    mutation: m("k", 7)
                }
            },
        ]
    );
    for o in first {
        if let Output::Send { to, msg } = o {
            cl.wire.push_back((a, to, msg));
        }
    }
    cl.settle();
    // ALL is met by A, C and D standing in for B.
    assert!(cl.events.iter().any(|(n, e)| *n == a
        && matches!(
            e,
            Event::WriteAcked {
                acks: 3,
                hinted: 0,
                ..
            }
        )));
    let holders: Vec<u64> = (0..5)
        .filter(|i| cl.nodes[i].store().has(b"k", 7))
        .collect();
    assert_eq!(holders, [a, c, d]);
    assert_eq!(cl.nodes[&d].hints_for(b), 1);
    assert_eq!(cl.logs[&d].len(), 1, "D's handoff hint is durable");
    assert_eq!(
        cl.nodes[&a].hints_pending(),
        0,
        "A needs no hint: D holds it"
    );

    // B recovers: D hands off, B acknowledges, D drops its copy and its hint.
    cl.down.remove(&b);
    cl.advance(Duration::from_secs(60));
    cl.report_up(b);
    let holders: Vec<u64> = (0..5)
        .filter(|i| cl.nodes[i].store().has(b"k", 7))
        .collect();
    assert_eq!(holders, [a, b, c]);
    assert_eq!(cl.nodes[&d].hints_pending(), 0);
    assert_eq!(cl.logs[&d].len(), 0);
    assert_eq!(cl.nodes[&d].stats().guests_discarded, 1);
    assert!(cl.events.iter().any(|(n, e)| *n == d
        && matches!(
            e,
            Event::HintDelivered {
                target: 1,
                handoff: true,
                ..
            }
        )));
}

/// The weaker guarantee of a sloppy quorum: during a partition, a write acknowledged at
/// QUORUM by fallbacks is invisible to a QUORUM of owners on the other side, although
/// R + W > N. It reaches the owners only after the partition heals.
#[test]
fn sloppy_quorum_breaks_read_your_write_during_a_partition() {
    // Owners {0, 1, 2}; fallbacks {3, 4}. The client side holds {0, 3, 4}; owners 1 and 2
    // are cut off (and reported down by the client side's failure detector).
    let mut cl = Cluster::new(5, &Config::default());
    cl.down.extend([1, 2]);
    for n in [0, 3, 4] {
        let now = cl.now;
        cl.node(n).peer_down(now, 1);
        cl.node(n).peer_down(now, 2);
    }
    let now = cl.now;
    cl.node(0)
        .write(now, m("k", 1), &[0, 1, 2, 3, 4], Consistency::Quorum)
        .unwrap();
    cl.settle();
    assert!(
        cl.events
            .iter()
            .any(|(_, e)| matches!(e, Event::WriteAcked { acks: 2, .. }))
    );
    let holders: Vec<u64> = (0..5)
        .filter(|i| cl.nodes[i].store().has(b"k", 1))
        .collect();
    assert_eq!(
        holders,
        [0, 3, 4],
        "the write lives on the client side only"
    );
    // A strict read quorum of owners {1, 2} sees nothing: read-your-write is lost.
    let owners_side: Vec<bool> = [1, 2]
        .iter()
        .map(|i| cl.nodes[i].store().has(b"k", 1))
        .collect();
    assert_eq!(owners_side, [false, false]);
    // Heal: the handoffs complete and every owner has the write.
    cl.down.clear();
    cl.report_up(1);
    cl.report_up(2);
    for i in [0, 1, 2] {
        assert!(cl.nodes[&i].store().has(b"k", 1), "owner {i}");
    }
    for i in [3, 4] {
        assert!(
            !cl.nodes[&i].store().has(b"k", 1),
            "guest copy on {i} dropped"
        );
    }
}

#[test]
fn hint_window_ttl_and_bounds_are_reported() {
    let now = t0();
    let config = Config {
        sloppy_quorum: false,
        max_hints_per_target: 2,
        hint_ttl: Duration::from_secs(3600),
        ..Config::default()
    };
    let mut c = node(9, config, now);
    c.peer_down(now, 2);
    for ts in 1..=3 {
        c.write(now, m("k", ts), &[0, 1, 2], Consistency::One)
            .unwrap();
    }
    let drops: Vec<DropReason> = drain(&mut c)
        .into_iter()
        .filter_map(|o| match o {
            Output::Event(Event::HintDropped { reason, target, .. }) => {
                assert_eq!(target, 2);
                Some(reason)
            }
            _ => None,
        })
        .collect();
    assert_eq!(drops, [DropReason::TargetBound]);
    assert_eq!(c.hints_for(2), 2);

    // Past the TTL, the dispatcher drops both, reported and persisted.
    let later = now + Duration::from_secs(3600 + 10);
    c.handle_timeout(later);
    let out = drain(&mut c);
    let ttl = out
        .iter()
        .filter(|o| {
            matches!(
                o,
                Output::Event(Event::HintDropped {
                    reason: DropReason::Ttl,
                    ..
                })
            )
        })
        .count();
    let removes = out
        .iter()
        .filter(|o| matches!(o, Output::Event(Event::Persist(LogRecord::Remove(_)))))
        .count();
    assert!(ttl >= 2 && removes >= 2, "{out:?}");
    assert_eq!(c.hints_for(2), 0);

    // Down longer than the 3 h window: no hint at all.
    let late = now + Duration::from_secs(3 * 3600 + 1);
    c.write(late, m("k", 9), &[0, 1, 2], Consistency::One)
        .unwrap();
    let out = drain(&mut c);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Event(Event::HintDropped {
            reason: DropReason::Window,
            target: 2,
            ..
        })
    )));
    assert_eq!(c.hints_for(2), 0);
    assert_eq!(c.stats().dropped_window, 1);
}

#[test]
fn forged_late_and_unknown_acks_never_remove_a_hint() {
    let mut cl = Cluster::new(
        4,
        &Config {
            sloppy_quorum: false,
            ..Config::default()
        },
    );
    cl.down.insert(2);
    cl.report_down(2);
    let now = cl.now;
    cl.node(3)
        .write(now, m("k", 5), &[0, 1, 2], Consistency::Quorum)
        .unwrap();
    cl.settle();
    let rec = cl.logs[&3].records().next().unwrap().clone();
    assert_eq!(rec.target, 2);
    let c = cl.node(3);
    // From the wrong node, with the wrong timestamp, for an unknown hint, an unknown write.
    c.handle_message(
        now,
        0,
        Message::ReplayAck {
            hint: rec.id,
            timestamp: 5,
        },
    );
    c.handle_message(
        now,
        2,
        Message::ReplayAck {
            hint: rec.id,
            timestamp: 4,
        },
    );
    c.handle_message(
        now,
        2,
        Message::ReplayAck {
            hint: epidemic_hinted_handoff::HintId(rec.id.0 ^ 1),
            timestamp: 5,
        },
    );
    c.handle_message(
        now,
        2,
        Message::WriteAck {
            id: epidemic_hinted_handoff::WriteId(12345),
        },
    );
    // Node 2's messages prove it alive: replay starts. Keep it from being delivered.
    let out = drain(c);
    assert!(out.iter().all(|o| matches!(
        o,
        Output::Send {
            to: 2,
            msg: Message::Replay { .. }
        }
    )));
    assert_eq!(c.hints_pending(), 1);
    assert_eq!((c.stats().forged_acks, c.stats().unknown_acks), (2, 2));
    // The real acknowledgement removes it.
    c.handle_message(
        now,
        2,
        Message::ReplayAck {
            hint: rec.id,
            timestamp: 5,
        },
    );
    assert_eq!(c.hints_pending(), 0);
}

#[test]
fn oversized_messages_are_dropped_and_counted() {
    let now = t0();
    let config = Config {
        max_mutation_bytes: 8,
        ..Config::default()
    };
    let mut r = node(1, config, now);
    let big = Mutation::put(&b"k"[..], vec![1u8; 100], 1);
    r.handle_message(
        now,
        0,
        Message::Write {
            id: epidemic_hinted_handoff::WriteId(1),
            mutation: big.clone(),
        },
    );
    r.handle_message(
        now,
        0,
        Message::HintedWrite {
            id: epidemic_hinted_handoff::WriteId(2),
            owner: 5,
            mutation: big.clone(),
        },
    );
    r.handle_message(
        now,
        0,
        Message::Replay {
            hint: epidemic_hinted_handoff::HintId(3),
            mutation: big,
        },
    );
    assert!(drain(&mut r).is_empty());
    assert_eq!(r.stats().oversized, 3);
    assert!(r.store().is_empty() && r.hints_pending() == 0);
}

#[test]
fn cassandra_mode_hints_only_at_the_timeout() {
    let now = t0();
    let config = Config {
        hint_before_ack: false,
        ..Config::default()
    };
    let mut c = node(9, config, now);
    let id = c
        .write(now, m("k", 1), &[0, 1, 2], Consistency::Quorum)
        .unwrap();
    drain(&mut c);
    c.handle_message(now, 0, Message::WriteAck { id });
    c.handle_message(now, 1, Message::WriteAck { id });
    let out = drain(&mut c);
    assert_eq!(
        out,
        [Output::Event(Event::WriteAcked {
            id,
            acks: 2,
            hinted: 0,
            latency: Duration::ZERO
        })]
    );
    c.handle_timeout(now + Duration::from_secs(2));
    let out = drain(&mut c);
    assert!(matches!(
        out.as_slice(),
        [Output::Event(Event::Persist(LogRecord::Put(r)))] if r.target == 2
    ));
}

/// The coordinator itself is the first healthy fallback: it keeps a guest copy and a
/// handoff hint, counts itself toward the level, and drops the copy after handing it off.
#[test]
fn coordinator_as_its_own_fallback() {
    let mut cl = Cluster::new(5, &Config::default());
    cl.down.insert(1);
    cl.report_down(1);
    let now = cl.now;
    let id = cl
        .node(3)
        .write(now, m("k", 4), &[0, 1, 2, 3, 4], Consistency::All)
        .unwrap();
    cl.settle();
    assert!(cl.events.iter().any(|(n, e)| *n == 3
        && *e
            == Event::WriteAcked {
                id,
                acks: 3,
                hinted: 0,
                latency: Duration::ZERO
            }));
    assert!(cl.nodes[&3].store().has(b"k", 4));
    assert_eq!(cl.nodes[&3].hints_for(1), 1);
    cl.down.clear();
    cl.report_up(1);
    assert!(cl.nodes[&1].store().has(b"k", 4));
    assert!(!cl.nodes[&3].store().has(b"k", 4), "guest copy dropped");
    assert_eq!(cl.nodes[&3].hints_pending(), 0);
}
