//! Unit tests of each rule, driving one machine by hand.

use std::time::{Duration, Instant};

use bytes::Bytes;
use epidemic_core::codec;
use epidemic_core::{Machine, Output};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

use crate::lifeguard::{suspicion_min, suspicion_timeout};
use crate::{Bound, Config, Event, Message, State, Swim, Update};

mod nack;
mod push_pull;
mod suspicion;

type Node = Swim<u64, ChaCha8Rng>;
type Sent = Vec<(u64, Message<u64>)>;

fn t0() -> Instant {
    #[allow(clippy::disallowed_methods)] // tests may read the clock
    Instant::now()
}

/// LAN config with no background gossip or push-pull, so tests see only what they cause.
fn quiet() -> Config {
    Config {
        gossip_interval: Duration::ZERO,
        push_pull_interval: Duration::ZERO,
        ..Config::lan()
    }
}

fn node(me: u64, config: Config) -> Node {
    Swim::new(me, config, ChaCha8Rng::seed_from_u64(me)).unwrap()
}

fn drain(s: &mut Node) -> (Sent, Vec<Event<u64>>) {
    let (mut sent, mut events) = (Vec::new(), Vec::new());
    while let Some(o) = s.poll_output() {
        match o {
            Output::Send { to, msg } => sent.push((to, msg)),
            Output::Event(e) => events.push(e),
            Output::Disconnect(_) => unreachable!("SWIM never disconnects"),
        }
    }
    (sent, events)
}

fn alive(member: u64, incarnation: u32) -> Update<u64> {
    Update::Alive {
        member,
        incarnation,
        meta: Bytes::new(),
    }
}

fn gossip(s: &mut Node, now: Instant, from: u64, updates: Vec<Update<u64>>) -> Vec<Event<u64>> {
    s.handle_message(now, from, Message::Gossip { updates });
    drain(s).1
}

/// A node that knows members `1..=n` as alive at incarnation 0.
fn with_members(n: u64, config: Config) -> (Node, Instant) {
    let now = t0();
    let mut s = node(0, config);
    s.start(now);
    gossip(&mut s, now, 1, (1..=n).map(|m| alive(m, 0)).collect());
    (s, now)
}

#[test]
fn incarnation_precedence() {
    let now = t0();
    let mut s = node(0, quiet());
    let ev = gossip(&mut s, now, 9, vec![alive(5, 1)]);
    assert_eq!(
        ev,
        [Event::MemberJoined {
            member: 5,
            incarnation: 1,
            meta: Bytes::new()
        }]
    );
    assert!(
        gossip(&mut s, now, 9, vec![alive(5, 1)]).is_empty(),
        "same incarnation: nothing"
    );
    let suspect = |inc| Update::Suspect {
        member: 5,
        incarnation: inc,
        from: 9,
    };
    assert!(
        gossip(&mut s, now, 9, vec![suspect(0)]).is_empty(),
        "older suspicion ignored"
    );
    assert_eq!(
        gossip(&mut s, now, 9, vec![suspect(1)]),
        [Event::MemberSuspected {
            member: 5,
            incarnation: 1,
            by: 9
        }]
    );
    assert!(
        gossip(&mut s, now, 9, vec![alive(5, 1)]).is_empty(),
        "Suspect(i) beats Alive(i)"
    );
    assert_eq!(
        gossip(&mut s, now, 9, vec![alive(5, 2)]),
        [Event::MemberRefuted {
            member: 5,
            incarnation: 2
        }]
    );
    let dead = |inc| Update::Dead {
        member: 5,
        incarnation: inc,
        from: 9,
    };
    assert!(
        gossip(&mut s, now, 9, vec![dead(1)]).is_empty(),
        "older Dead ignored"
    );
    assert_eq!(
        gossip(&mut s, now, 9, vec![dead(2)]),
        [Event::MemberDown {
            member: 5,
            incarnation: 2,
            by: 9
        }]
    );
    assert!(
        gossip(&mut s, now, 9, vec![alive(5, 2), suspect(3)]).is_empty(),
        "a tombstone ignores equal Alive and any Suspect"
    );
    assert_eq!(s.member(&5).unwrap().state, State::Dead);
    assert_eq!(
        gossip(&mut s, now, 9, vec![alive(5, 3)]),
        [Event::MemberJoined {
            member: 5,
            incarnation: 3,
            meta: Bytes::new()
        }],
        "a higher incarnation rejoins"
    );
    assert_eq!(s.num_members(), 1, "the same entry, never a second one");
    let left = Update::Left {
        member: 5,
        incarnation: 3,
    };
    assert_eq!(
        gossip(&mut s, now, 5, vec![left]),
        [Event::MemberLeft {
            member: 5,
            incarnation: 3
        }]
    );
    assert_eq!(s.member(&5).unwrap().state, State::Left);
    assert!(
        gossip(&mut s, now, 9, vec![suspect(4)]).is_empty(),
        "nothing about a left member but Alive"
    );
    assert!(gossip(&mut s, now, 9, vec![suspect(0)]).is_empty());
    assert!(s.stats().updates_stale >= 6);
}

#[test]
fn refutation_raises_the_incarnation_and_gossips_it() {
    let (mut s, now) = with_members(3, quiet());
    let ev = gossip(
        &mut s,
        now,
        1,
        vec![Update::Suspect {
            member: 0,
            incarnation: 0,
            from: 1,
        }],
    );
    assert_eq!(ev, [Event::SelfRefuted { incarnation: 1 }]);
    assert_eq!(s.incarnation(), 1);
    assert_eq!(s.health_score(), 1, "being suspected worsens local health");
    // The next message out carries Alive(me, 1) first (freshest).
    s.handle_message(
        now,
        2,
        Message::Ping {
            seq: 7,
            target: 0,
            updates: vec![],
        },
    );
    let (sent, _) = drain(&mut s);
    assert_eq!(sent[0].0, 2);
    assert!(matches!(&sent[0].1, Message::Ack { seq: 7, updates } if updates[0] == alive(0, 1)));
    // A Dead about us at a later incarnation (we restarted) is refuted past it.
    let ev = gossip(
        &mut s,
        now,
        1,
        vec![Update::Dead {
            member: 0,
            incarnation: 6,
            from: 3,
        }],
    );
    assert_eq!(ev, [Event::SelfRefuted { incarnation: 7 }]);
    // Stale news about us is ignored.
    assert!(
        gossip(
            &mut s,
            now,
            1,
            vec![Update::Suspect {
                member: 0,
                incarnation: 2,
                from: 1
            }]
        )
        .is_empty()
    );
    assert_eq!(s.stats().refutations, 2);
}

#[test]
fn tombstones_expire_after_dead_retention() {
    let (mut s, now) = with_members(2, quiet());
    gossip(
        &mut s,
        now,
        2,
        vec![Update::Dead {
            member: 1,
            incarnation: 0,
            from: 2,
        }],
    );
    assert_eq!(s.num_members(), 2);
    assert_eq!(s.num_live(), 1);
    let later = now + Duration::from_secs(29);
    s.handle_timeout(later);
    assert!(
        gossip(&mut s, later, 2, vec![alive(1, 0)]).is_empty(),
        "stale Alive cannot resurrect"
    );
    let expired = now + Duration::from_secs(31);
    s.handle_timeout(expired);
    drain(&mut s);
    assert_eq!(s.num_members(), 1, "the tombstone is gone");
    assert!(s.member(&1).is_none());
}

/// Runs `s` to its next deadline and returns that instant.
fn step(s: &mut Node) -> (Instant, Sent, Vec<Event<u64>>) {
    let at = s.poll_timeout().unwrap();
    s.handle_timeout(at);
    let (sent, ev) = drain(s);
    (at, sent, ev)
}

/// Steps until the node sends a ping; returns its time, target and seq.
fn next_ping(s: &mut Node) -> (Instant, u64, u32) {
    for _ in 0..100 {
        let (at, sent, _) = step(s);
        for (to, m) in sent {
            if let Message::Ping { seq, .. } = m {
                return (at, to, seq);
            }
        }
    }
    panic!("no ping")
}

#[test]
fn round_robin_probes_every_member_once_per_round() {
    let (mut s, _) = with_members(5, quiet());
    for _round in 0..3 {
        let mut seen = Vec::new();
        for _ in 0..5 {
            let (at, to, seq) = next_ping(&mut s);
            s.handle_message(
                at,
                to,
                Message::Ack {
                    seq,
                    updates: vec![],
                },
            );
            seen.push(to);
        }
        seen.sort_unstable();
        assert_eq!(seen, [1, 2, 3, 4, 5]);
    }
    assert_eq!(s.stats().probes_failed, 0);
}

#[test]
fn failed_probe_ping_req_nacks_and_local_health() {
    let (mut s, _) = with_members(5, quiet());
    let (t, target, seq) = next_ping(&mut s);
    // No ack: after the probe timeout, three ping-reqs.
    let (at, sent, _) = step(&mut s);
    assert_eq!(at, t + Duration::from_millis(500));
    let helpers: Vec<u64> = sent
        .iter()
        .filter_map(|(to, m)| {
            matches!(m, Message::PingReq { target: x, seq: q, .. } if *x == target && *q == seq)
                .then_some(*to)
        })
        .collect();
    assert_eq!(helpers.len(), 3);
    assert!(!helpers.contains(&target));
    // One helper nacks; the period ends without an ack.
    s.handle_message(
        at,
        helpers[0],
        Message::Nack {
            seq,
            updates: vec![],
        },
    );
    let (end, _, ev) = step(&mut s);
    assert_eq!(end, t + Duration::from_secs(1));
    assert!(ev.contains(&Event::MemberSuspected {
        member: target,
        incarnation: 0,
        by: 0
    }));
    assert_eq!(s.health_score(), 2, "two nacks missing");
    // The next period is stretched by the multiplier (score + 1 = 3).
    let (t2, to2, seq2) = (
        end,
        s.probe.as_ref().unwrap().target,
        s.probe.as_ref().unwrap().seq,
    );
    assert_eq!(
        s.ticks.get(crate::swim::Tick::Probe),
        Some(t2 + Duration::from_secs(3))
    );
    assert_eq!(
        s.ticks.get(crate::swim::Tick::Indirect),
        Some(t2 + Duration::from_millis(1500))
    );
    // An ack heals by one.
    s.handle_message(
        t2,
        to2,
        Message::Ack {
            seq: seq2,
            updates: vec![],
        },
    );
    assert_eq!(s.health_score(), 1);
}

/// memberlist's TCP fallback ping, as a datagram: with the ping-reqs goes one more direct
/// ping under the probe's seq, and its ack alone saves the target from suspicion.
#[test]
fn a_second_direct_ping_goes_with_the_ping_reqs_and_its_ack_counts() {
    for fallback in [true, false] {
        let config = Config {
            fallback_ping: fallback,
            ..quiet()
        };
        let (mut s, _) = with_members(5, config);
        let (_, target, seq) = next_ping(&mut s);
        let (at, sent, _) = step(&mut s);
        let again: Vec<&Message<u64>> = sent
            .iter()
            .filter(|(to, m)| *to == target && matches!(m, Message::Ping { .. }))
            .map(|(_, m)| m)
            .collect();
        if !fallback {
            assert!(again.is_empty(), "{sent:?}");
            assert_eq!(s.stats().fallback_pings, 0);
            continue;
        }
        assert!(
            matches!(again.as_slice(), [Message::Ping { seq: q, target: t, .. }] if *q == seq && *t == target),
            "{sent:?}"
        );
        assert_eq!(s.stats().fallback_pings, 1);
        s.handle_message(
            at,
            target,
            Message::Ack {
                seq,
                updates: vec![],
            },
        );
        let (_, _, ev) = step(&mut s);
        assert!(
            !ev.iter()
                .any(|e| matches!(e, Event::MemberSuspected { .. })),
            "{ev:?}"
        );
        assert_eq!(s.stats().probes_failed, 0);
    }
}

#[test]
fn a_probe_of_a_suspect_carries_the_suspicion() {
    let (mut s, now) = with_members(1, quiet());
    gossip(
        &mut s,
        now,
        9,
        vec![Update::Suspect {
            member: 1,
            incarnation: 0,
            from: 9,
        }],
    );
    let (_, sent, _) = {
        let mut out = (now, vec![], vec![]);
        for _ in 0..10 {
            out = step(&mut s);
            if !out.1.is_empty() {
                break;
            }
        }
        out
    };
    let Message::Ping { updates, .. } = &sent[0].1 else {
        panic!("expected a ping, got {sent:?}")
    };
    assert_eq!(
        updates[0],
        Update::Suspect {
            member: 1,
            incarnation: 0,
            from: 0
        }
    );
}

#[test]
fn suspicion_timeout_starts_at_max_and_shrinks_with_confirmations() {
    let (mut s, now) = with_members(10, quiet());
    gossip(
        &mut s,
        now,
        1,
        vec![Update::Suspect {
            member: 5,
            incarnation: 0,
            from: 1,
        }],
    );
    let n = 11;
    let min = suspicion_min(4, n, Duration::from_secs(1));
    let max = min * 6;
    let deadline = |s: &Node| s.suspicions.get(&5).unwrap().timer.at();
    assert_eq!(deadline(&s), now + max);
    gossip(
        &mut s,
        now,
        2,
        vec![Update::Suspect {
            member: 5,
            incarnation: 0,
            from: 2,
        }],
    );
    assert_eq!(deadline(&s), now + suspicion_timeout(1, 2, min, max));
    // The same suspecter again does not count.
    gossip(
        &mut s,
        now,
        2,
        vec![Update::Suspect {
            member: 5,
            incarnation: 0,
            from: 2,
        }],
    );
    assert_eq!(deadline(&s), now + suspicion_timeout(1, 2, min, max));
    gossip(
        &mut s,
        now,
        3,
        vec![Update::Suspect {
            member: 5,
            incarnation: 0,
            from: 3,
        }],
    );
    assert_eq!(deadline(&s), now + min);
    s.handle_timeout(now + min);
    let (_, ev) = drain(&mut s);
    assert!(ev.contains(&Event::MemberDown {
        member: 5,
        incarnation: 0,
        by: 0
    }));
    // Without Lifeguard the timeout is the minimum at once.
    let mut c = quiet();
    c.lifeguard = crate::Lifeguard::OFF;
    let (mut s, now) = with_members(10, c);
    gossip(
        &mut s,
        now,
        1,
        vec![Update::Suspect {
            member: 5,
            incarnation: 0,
            from: 1,
        }],
    );
    assert_eq!(deadline(&s), now + min);
}

#[test]
fn each_update_is_sent_lambda_log10_n_times() {
    let (mut s, now) = with_members(9, quiet());
    // Flush the queue of the nine Alive updates.
    for _ in 0..200 {
        s.handle_message(
            now,
            1,
            Message::Ping {
                seq: 1,
                target: 0,
                updates: vec![],
            },
        );
        drain(&mut s);
    }
    assert_eq!(s.queued_updates(), 0);
    gossip(
        &mut s,
        now,
        1,
        vec![Update::Suspect {
            member: 3,
            incarnation: 0,
            from: 1,
        }],
    );
    let mut carried = 0;
    for _ in 0..50 {
        s.handle_message(
            now,
            1,
            Message::Ping {
                seq: 1,
                target: 0,
                updates: vec![],
            },
        );
        let (sent, _) = drain(&mut s);
        carried += sent[0].1.updates().len();
    }
    // 10 members in all: λ · ⌈log10(10 + 1)⌉ = 4 · 2.
    assert_eq!(carried, 8);
}

#[test]
fn updates_are_packed_up_to_the_packet_size_envelope_included() {
    let mut c = quiet();
    c.max_packet_size = 200;
    c.max_meta_len = 100;
    let (mut s, now) = with_members(500, c);
    s.handle_message(
        now,
        1,
        Message::Ping {
            seq: 1,
            target: 0,
            updates: vec![],
        },
    );
    let (sent, _) = drain(&mut s);
    let len = codec::encoded_len(&sent[0].1);
    assert!(len <= 200, "{len}");
    assert!(len >= 190, "packed close to the limit: {len}");
    // Push-pull of 501 members is chunked, every chunk within the limit.
    let chunks = {
        s.handle_message(
            now,
            7,
            Message::PushPull {
                seq: 3,
                reply: false,
                chunk: 0,
                chunks: 1,
                members: vec![],
            },
        );
        drain(&mut s).0
    };
    assert!(chunks.len() > 10);
    let mut total = 0;
    for (to, m) in &chunks {
        assert_eq!(*to, 7);
        assert!(codec::encoded_len(m) <= 200);
        if let Message::PushPull {
            members,
            reply: true,
            ..
        } = m
        {
            total += members.len();
        }
    }
    assert_eq!(total, 501);
}

#[test]
fn hostile_messages_are_dropped_and_counted() {
    let (mut s, now) = with_members(2, quiet());
    s.handle_message(
        now,
        1,
        Message::Ping {
            seq: 1,
            target: 99,
            updates: vec![],
        },
    );
    s.handle_message(
        now,
        0,
        Message::Ping {
            seq: 1,
            target: 0,
            updates: vec![],
        },
    );
    s.handle_message(
        now,
        1,
        Message::Ack {
            seq: 12345,
            updates: vec![],
        },
    );
    assert!(drain(&mut s).0.is_empty());
    let st = s.stats();
    assert_eq!((st.misdirected, st.unexpected_acks), (2, 1));
    let huge = Update::Alive {
        member: 50,
        incarnation: 0,
        meta: Bytes::from(vec![0; 600]),
    };
    assert!(gossip(&mut s, now, 1, vec![huge]).is_empty());
    assert_eq!(s.stats().oversized, 1);
    // Incarnation at the ceiling: refuting cannot go higher, and nothing panics.
    gossip(
        &mut s,
        now,
        1,
        vec![Update::Suspect {
            member: 0,
            incarnation: u32::MAX,
            from: 1,
        }],
    );
    assert_eq!(s.incarnation(), u32::MAX);
    assert_eq!(s.stats().incarnation_overflow, 1);
}

#[test]
fn the_member_table_is_bounded() {
    let mut c = quiet();
    c.max_members = 3;
    let now = t0();
    let mut s = node(0, c);
    let ev = gossip(&mut s, now, 1, (1..=4).map(|m| alive(m, 0)).collect());
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, Event::MemberJoined { .. }))
            .count(),
        3
    );
    assert!(ev.contains(&Event::Dropped {
        bound: Bound::Members
    }));
    // A tombstone makes room.
    gossip(
        &mut s,
        now,
        1,
        vec![Update::Dead {
            member: 1,
            incarnation: 0,
            from: 2,
        }],
    );
    gossip(&mut s, now, 1, vec![alive(4, 0)]);
    assert!(s.member(&4).is_some() && s.member(&1).is_none());
}

#[test]
fn user_broadcasts_are_delivered_once_and_superseded_by_key() {
    let (mut s, now) = with_members(2, quiet());
    let user = |seq, key, p: &'static [u8]| Update::User {
        origin: 1,
        seq,
        key,
        payload: Bytes::from_static(p),
    };
    let ev = gossip(
        &mut s,
        now,
        1,
        vec![user(1, None, b"a"), user(1, None, b"a")],
    );
    assert_eq!(ev.len(), 1);
    let ev = gossip(
        &mut s,
        now,
        2,
        vec![user(3, Some(7), b"new"), user(2, Some(7), b"old")],
    );
    assert_eq!(
        ev,
        [Event::UserBroadcast {
            origin: 1,
            seq: 3,
            key: Some(7),
            payload: Bytes::from_static(b"new")
        }]
    );
    assert_eq!(s.stats().duplicate_broadcasts, 2);
    // Our own broadcast goes out on the next message; a too-big one is refused.
    let seq = s
        .broadcast(now, None, Bytes::from_static(b"hello"))
        .unwrap();
    s.handle_message(
        now,
        1,
        Message::Ping {
            seq: 1,
            target: 0,
            updates: vec![],
        },
    );
    let (sent, _) = drain(&mut s);
    assert!(
        sent[0]
            .1
            .updates()
            .iter()
            .any(|u| matches!(u, Update::User { origin: 0, seq: q, .. } if *q == seq))
    );
    assert!(matches!(
        s.broadcast(now, None, Bytes::from(vec![0; 1400])),
        Err(crate::Error::PayloadTooLarge { .. })
    ));
}

#[test]
fn join_retries_then_gives_up_and_leave_announces_left() {
    let now = t0();
    let mut s = node(0, quiet());
    assert_eq!(s.join(now, [0]), Err(crate::Error::NoSeeds));
    s.join(now, [1, 2]).unwrap();
    let (sent, _) = drain(&mut s);
    assert_eq!(
        sent.iter()
            .filter(|(_, m)| matches!(m, Message::PushPull { reply: false, .. }))
            .count(),
        2
    );
    let mut failed = false;
    for i in 1..=5 {
        s.handle_timeout(now + Duration::from_secs(i));
        failed |= drain(&mut s).1.contains(&Event::JoinFailed);
    }
    assert!(failed);
    // Metadata: a change raises the incarnation.
    s.set_meta(now, Bytes::from_static(b"role=db")).unwrap();
    assert_eq!(s.incarnation(), 1);
    assert!(s.set_meta(now, Bytes::from(vec![0; 513])).is_err());
    // Leave: Left(me) is gossiped; probing stops.
    let (mut s, now) = with_members(
        3,
        Config {
            push_pull_interval: Duration::ZERO,
            ..Config::lan()
        },
    );
    s.leave(now);
    let (sent, _) = drain(&mut s);
    assert!(!sent.is_empty());
    assert!(
        sent.iter()
            .all(|(_, m)| m.updates().contains(&Update::Left {
                member: 0,
                incarnation: 0
            }))
    );
    for _ in 0..200 {
        if s.poll_timeout().is_none() {
            break;
        }
        let (_, sent, _) = step(&mut s);
        assert!(
            sent.iter()
                .all(|(_, m)| matches!(m, Message::Gossip { .. }))
        );
    }
    assert_eq!(
        s.poll_timeout(),
        None,
        "a left node goes quiet once its news is out"
    );
}
