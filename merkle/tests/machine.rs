//! The machine driven by hand: exact outputs, bad and hostile input, bounds, timeouts,
//! retransmission and restart.

use std::time::{Duration, Instant};

use bytes::Bytes;
use epidemic_core::codec::{self, encoded_len};
use epidemic_core::{Machine, Output};
use epidemic_merkle::{
    AbortReason, Config, Event, FailReason, Fragment, Item, MerkleSync, Message, Method, Step,
    StepKind,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

type M = MerkleSync<u64>;

fn t0() -> Instant {
    #[allow(clippy::disallowed_methods)] // tests own the clock
    Instant::now()
}

fn node(config: &Config, seed: u64, keys: impl IntoIterator<Item = (u64, u64)>) -> M {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut m = M::in_memory(config.clone(), &mut rng).unwrap();
    for (k, d) in keys {
        m.insert(k, d);
    }
    m
}

fn drain(m: &mut M) -> (Vec<(u64, Message)>, Vec<Event<u64>>) {
    let (mut sends, mut events) = (Vec::new(), Vec::new());
    while let Some(o) = m.poll_output() {
        match o {
            Output::Send { to, msg } => sends.push((to, msg)),
            Output::Event(e) => events.push(e),
            Output::Disconnect(_) => panic!("never disconnects"),
        }
    }
    (sends, events)
}

/// Runs a session between a (peer 1) and b (peer 2); `drop(i)` drops the i-th message.
fn run(
    a: &mut M,
    b: &mut M,
    now: &mut Instant,
    mut drop: impl FnMut(usize, &Message) -> bool,
) -> (Vec<Event<u64>>, Vec<Event<u64>>) {
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    let mut n = 0;
    for _ in 0..10_000 {
        let (sa, ev) = drain(a);
        ea.extend(ev);
        let (sb, ev) = drain(b);
        eb.extend(ev);
        let mut idle = sa.is_empty() && sb.is_empty();
        for (_, msg) in sa {
            n += 1;
            if !drop(n, &msg) {
                b.handle_message(*now, 1, msg);
            }
        }
        for (_, msg) in sb {
            n += 1;
            if !drop(n, &msg) {
                a.handle_message(*now, 2, msg);
            }
        }
        if idle {
            let next = [a.poll_timeout(), b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) => {
                    *now = t.max(*now);
                    a.handle_timeout(*now);
                    b.handle_timeout(*now);
                    idle = false;
                }
                None => break,
            }
        }
        if idle {
            break;
        }
    }
    (ea, eb)
}

fn synced(events: &[Event<u64>]) -> Vec<(Vec<Item>, Vec<Item>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Synced {
                to_send, to_fetch, ..
            } => {
                let (mut s, mut f) = (to_send.clone(), to_fetch.clone());
                s.sort_unstable();
                f.sort_unstable();
                Some((s, f))
            }
            _ => None,
        })
        .collect()
}

fn it(key: u64, digest: u64) -> Item {
    Item { key, digest }
}

#[test]
fn equal_replicas_finish_after_one_round_trip() {
    let c = Config::default();
    let mut a = node(&c, 1, (0..100).map(|k| (k, k)));
    let mut b = node(&c, 2, (0..100).map(|k| (k, k)));
    let now = t0();
    let id = a.sync(now, 2).unwrap();
    let (sends, events) = drain(&mut a);
    assert!(events.is_empty());
    assert_eq!(sends.len(), 1);
    let Message::Fragment(f) = &sends[0].1 else {
        panic!("an open fragment")
    };
    assert_eq!(
        (f.session, f.step, f.kind, f.from_initiator),
        (id, 0, StepKind::Open, true)
    );
    b.handle_message(now, 1, sends[0].1.clone());
    let (replies, events) = drain(&mut b);
    assert_eq!(synced(&events), [(vec![], vec![])]);
    assert_eq!(replies.len(), 1);
    let Message::Fragment(f) = &replies[0].1 else {
        panic!("a done fragment")
    };
    assert_eq!((f.step, f.kind), (1, StepKind::Done));
    a.handle_message(now, 2, replies[0].1.clone());
    let (sends, events) = drain(&mut a);
    assert!(sends.is_empty());
    assert_eq!(synced(&events), [(vec![], vec![])]);
    assert_eq!(a.sessions(), 0);
    // b lingers to answer a retransmission, then forgets.
    assert_eq!(b.sessions(), 1);
    let t = b.poll_timeout().unwrap();
    b.handle_timeout(t);
    assert_eq!(b.sessions(), 0);
    assert_eq!(b.poll_timeout(), None);
}

#[test]
fn each_method_reports_the_exact_difference_on_both_sides() {
    for method in [
        Method::Planned,
        Method::Tree,
        Method::Riblt,
        Method::Full,
        Method::Sketch,
    ] {
        let c = Config {
            method,
            ..Config::default()
        };
        let mut a = node(&c, 1, (0..2_000).map(|k| (k, k)));
        let mut b = node(&c, 2, (0..2_000).map(|k| (k, k)));
        a.insert(10_000, 1);
        b.insert(20_000, 2);
        b.insert(5, 6);
        b.remove(7);
        let mut now = t0();
        a.sync(now, 2).unwrap();
        let (ea, eb) = run(&mut a, &mut b, &mut now, |_, _| false);
        let a_only = vec![it(5, 5), it(7, 7), it(10_000, 1)];
        let b_only = vec![it(5, 6), it(20_000, 2)];
        assert_eq!(
            synced(&ea),
            [(a_only.clone(), b_only.clone())],
            "{method:?}"
        );
        assert_eq!(synced(&eb), [(b_only, a_only)], "{method:?}");
    }
}

#[test]
fn no_message_exceeds_the_configured_size() {
    let c = Config {
        method: Method::Full,
        max_message_bytes: 300,
        max_step_bytes: 1 << 20,
        ..Config::default()
    };
    let mut a = node(&c, 1, (0..3_000).map(|k| (k, k)));
    let mut b = node(&c, 2, (0..3_000).map(|k| (k, k + 1)));
    let mut now = t0();
    a.sync(now, 2).unwrap();
    let mut biggest = 0;
    let (ea, _) = run(&mut a, &mut b, &mut now, |_, m| {
        biggest = biggest.max(encoded_len(m));
        false
    });
    assert!(biggest <= 300, "{biggest}");
    assert!(biggest > 200, "fragments are filled");
    assert_eq!(synced(&ea)[0].0.len(), 3_000);
}

#[test]
fn a_lost_step_is_retransmitted_and_the_session_resumes() {
    let c = Config {
        method: Method::Tree,
        ..Config::default()
    };
    let mut a = node(&c, 1, (0..500).map(|k| (k, k)));
    let mut b = node(&c, 2, (0..500).map(|k| (k, k)));
    b.insert(3, 4);
    let mut now = t0();
    let start = now;
    a.sync(now, 2).unwrap();
    // Lose the 2nd and the 5th message (a reply, then a request).
    let (ea, eb) = run(&mut a, &mut b, &mut now, |i, _| i == 2 || i == 5);
    assert_eq!(synced(&ea), [(vec![it(3, 3)], vec![it(3, 4)])]);
    assert_eq!(synced(&eb).len(), 1);
    assert!(a.stats().retransmits + b.stats().retransmits >= 2);
    assert!(now >= start + c.retransmit);
    assert_eq!(a.stats().restarts, 0);
}

#[test]
fn a_dead_peer_fails_the_session_then_restarts_it_then_gives_up() {
    let c = Config {
        max_retries: 1,
        max_restarts: 1,
        ..Config::default()
    };
    let mut a = node(&c, 1, [(1, 1)]);
    let mut b = node(&c, 2, []);
    let mut now = t0();
    let first = a.sync(now, 2).unwrap();
    let (ea, _) = run(&mut a, &mut b, &mut now, |_, _| true);
    let kinds: Vec<String> = ea
        .iter()
        .map(|e| match e {
            Event::Failed { reason, .. } => format!("failed {reason:?}"),
            Event::Restarted { old, .. } => format!("restarted {}", *old == first),
            Event::Synced { .. } => "synced".into(),
        })
        .collect();
    assert_eq!(
        kinds,
        ["failed Timeout", "restarted true", "failed Timeout"]
    );
    assert_eq!(a.stats().retransmits, 2);
    assert_eq!(a.sessions(), 0);
    assert_eq!(a.poll_timeout(), None);
}

#[test]
fn fragments_for_unknown_sessions_are_answered_with_an_abort() {
    let c = Config::default();
    let mut b = node(&c, 2, []);
    let now = t0();
    let stray = Message::Fragment(Fragment {
        session: 42,
        from_initiator: true,
        step: 4,
        kind: StepKind::More,
        index: 0,
        count: 1,
        data: Bytes::from_static(&[4, 1]),
    });
    b.handle_message(now, 1, stray);
    let (sends, events) = drain(&mut b);
    assert!(events.is_empty());
    assert_eq!(
        sends,
        [(
            1,
            Message::Abort {
                session: 42,
                from_initiator: false,
                reason: AbortReason::UnknownSession
            }
        )]
    );
    assert_eq!(b.stats().unknown_session, 1);
}

#[test]
fn sessions_beyond_the_bound_are_refused() {
    let c = Config {
        max_sessions: 1,
        ..Config::default()
    };
    let mut a = node(&c, 1, [(1, 1)]);
    let mut a2 = node(&c, 3, [(1, 1)]);
    let mut b = node(&c, 2, [(1, 2)]);
    let now = t0();
    a.sync(now, 2).unwrap();
    assert_eq!(a.sync(now, 2), Err(epidemic_merkle::Error::TooManySessions));
    a2.sync(now, 2).unwrap();
    let (s1, _) = drain(&mut a);
    let (s2, _) = drain(&mut a2);
    b.handle_message(now, 1, s1[0].1.clone());
    drain(&mut b);
    b.handle_message(now, 3, s2[0].1.clone());
    let (sends, _) = drain(&mut b);
    assert!(matches!(
        sends[..],
        [(
            3,
            Message::Abort {
                reason: AbortReason::Busy,
                ..
            }
        )]
    ));
    assert_eq!(b.stats().refused_busy, 1);
    a2.handle_message(now, 2, sends[0].1.clone());
    let (_, events) = drain(&mut a2);
    assert!(matches!(
        events[..],
        [Event::Failed {
            reason: FailReason::Aborted(AbortReason::Busy),
            ..
        }]
    ));
}

/// A fragment carrying `step` as session 9's step `no`.
fn forged(no: u32, step: &Step) -> Message {
    Message::Fragment(Fragment {
        session: 9,
        from_initiator: true,
        step: no,
        kind: step.kind(),
        index: 0,
        count: 1,
        data: Bytes::from(postcard::to_allocvec(step).unwrap()),
    })
}

#[test]
fn hostile_steps_abort_the_session_and_are_counted() {
    let c = Config::default();
    let open = Step::Open {
        hasher: epidemic_merkle::ItemHasher::id(&epidemic_merkle::Xxh3::default()),
        shape: c.shape,
        method: Method::Tree,
        count: 1,
        root: [1; 16],
    };
    let now = t0();
    let hostile = [
        // A bitmap of the wrong length.
        Step::Hashes {
            level: 2,
            count: 1,
            diff: Bytes::from_static(&[1, 1]),
            hashes: vec![],
        },
        // Hashes for the wrong number of nodes.
        Step::Hashes {
            level: 2,
            count: 1,
            diff: Bytes::from_static(&[0xFF, 0xFF]),
            hashes: vec![[0; 8]; 3],
        },
        // More symbols than any session may send.
        Step::More { upto: u64::MAX },
        // A step of the wrong kind for the phase.
        Step::Symbols {
            level: 1,
            diff: Bytes::from_static(&[0, 0]),
            start: 5,
            hash: None,
            symbols: Bytes::new(),
        },
    ];
    for step in hostile {
        let mut b = node(&c, 2, [(1, 1), (2, 2)]);
        b.handle_message(now, 1, forged(0, &open));
        let (sends, _) = drain(&mut b);
        let Message::Fragment(f) = &sends[0].1 else {
            panic!("b answers the open")
        };
        assert_eq!(f.kind, StepKind::Hashes);
        b.handle_message(now, 1, forged(2, &step));
        let (sends, events) = drain(&mut b);
        assert!(
            matches!(
                sends[..],
                [(
                    1,
                    Message::Abort {
                        reason: AbortReason::Protocol,
                        ..
                    }
                )]
            ),
            "{step:?}: {sends:?}"
        );
        assert!(matches!(
            events[..],
            [Event::Failed {
                reason: FailReason::Protocol,
                initiator: false,
                ..
            }]
        ));
        assert_eq!(b.stats().protocol_errors, 1);
        assert_eq!(b.sessions(), 0);
    }
    // Garbage bytes as a step, and a shape that differs.
    let mut b = node(&c, 2, []);
    b.handle_message(
        now,
        1,
        Message::Fragment(Fragment {
            session: 9,
            from_initiator: true,
            step: 0,
            kind: StepKind::Open,
            index: 0,
            count: 1,
            data: Bytes::from_static(&[0xFF, 0xFF, 0xFF]),
        }),
    );
    assert!(matches!(drain(&mut b).0[..], [(1, Message::Abort { .. })]));
    let other = Step::Open {
        hasher: 77,
        shape: c.shape,
        method: Method::Tree,
        count: 0,
        root: [0; 16],
    };
    b.handle_message(now, 1, forged(0, &other));
    let (sends, events) = drain(&mut b);
    assert!(matches!(
        sends[..],
        [(
            1,
            Message::Abort {
                reason: AbortReason::Incompatible,
                ..
            }
        )]
    ));
    assert!(matches!(
        events[..],
        [Event::Failed {
            reason: FailReason::Incompatible,
            ..
        }]
    ));
}

#[test]
fn wire_bytes_decode_or_fail_with_a_typed_error() {
    let m = Message::Abort {
        session: 1,
        from_initiator: true,
        reason: AbortReason::Protocol,
    };
    let bytes = codec::encode(&m).unwrap();
    assert_eq!(codec::decode::<Message>(&bytes), Ok(m));
    assert!(codec::decode::<Message>(&[5, 1, 9]).is_err());
    assert!(codec::decode::<Message>(&bytes[..bytes.len() - 1]).is_err());
}

#[test]
fn early_timeouts_and_clocks_going_back_are_harmless() {
    let c = Config::default();
    let mut a = node(&c, 1, [(1, 1)]);
    let now = t0() + Duration::from_secs(10);
    a.sync(now, 2).unwrap();
    drain(&mut a);
    let deadline = a.poll_timeout().unwrap();
    a.handle_timeout(now);
    a.handle_timeout(now - Duration::from_secs(5));
    assert_eq!(drain(&mut a).0.len(), 0);
    assert_eq!(a.poll_timeout(), Some(deadline));
    a.handle_timeout(deadline);
    assert_eq!(drain(&mut a).0.len(), 1, "one retransmission");
}

#[test]
fn an_open_that_never_completes_frees_its_slot() {
    let c = Config {
        max_sessions: 1,
        ..Config::default()
    };
    let mut b = node(&c, 2, []);
    let now = t0();
    let half = Message::Fragment(Fragment {
        session: 5,
        from_initiator: true,
        step: 0,
        kind: StepKind::Open,
        index: 0,
        count: 2,
        data: Bytes::from_static(&[0]),
    });
    b.handle_message(now, 1, half);
    assert_eq!(drain(&mut b).0.len(), 0);
    assert_eq!(b.sessions(), 1);
    let t = b
        .poll_timeout()
        .expect("the half-open session has a deadline");
    b.handle_timeout(t);
    let (sends, events) = drain(&mut b);
    assert!(sends.is_empty());
    assert!(matches!(
        events[..],
        [Event::Failed {
            reason: FailReason::Timeout,
            initiator: false,
            session: 5,
            ..
        }]
    ));
    assert_eq!(b.sessions(), 0);
    assert_eq!(b.poll_timeout(), None);
}
