//! Periodic push-pull opened by a digest: one datagram when the tables agree, the full
//! exchange both ways when they do not.

use std::time::Duration;

use bytes::Bytes;
use epidemic_core::Machine;

use super::{Node, Sent, alive, drain, gossip, node, quiet, step, t0};
use crate::{Config, Event, Message, State, Update};

/// Quiet, except for a push-pull every second (scaled to 1 s: fewer than 32 members).
fn periodic() -> Config {
    Config {
        push_pull_interval: Duration::from_secs(1),
        ..quiet()
    }
}

/// Nodes `a` and `b` that both know `a`, `b` and `others` alive at incarnation 0.
fn pair(a: u64, b: u64, others: &[u64], config: &Config) -> (Node, Node) {
    let now = t0();
    let mut x = node(a, config.clone());
    let mut y = node(b, config.clone());
    x.start(now);
    y.start(now);
    let known = |me: u64| -> Vec<Update<u64>> {
        [a, b]
            .iter()
            .chain(others)
            .filter(|m| **m != me)
            .map(|m| alive(*m, 0))
            .collect()
    };
    gossip(&mut x, now, b, known(a));
    gossip(&mut y, now, a, known(b));
    (x, y)
}

/// Steps `s` until its push-pull tick sends something; returns what went to `to`.
fn next_push_pull(s: &mut Node, to: u64) -> Sent {
    for _ in 0..1_000 {
        let (_, sent, _) = step(s);
        let pp: Sent = sent
            .into_iter()
            .filter(|(t, m)| {
                *t == to && matches!(m, Message::PushPull { .. } | Message::PushPullDigest { .. })
            })
            .collect();
        if !pp.is_empty() {
            return pp;
        }
    }
    panic!("no push-pull to {to}")
}

/// Delivers every message in `sent` from `from` to `to` and returns what `to` sent back
/// to `from`, and its events.
fn deliver(to: &mut Node, from: u64, sent: Sent) -> (Sent, Vec<Event<u64>>) {
    let now = t0() + Duration::from_secs(3_600);
    for (_, m) in sent {
        to.handle_message(now, from, m);
    }
    let (back, ev) = drain(to);
    (back.into_iter().filter(|(t, _)| *t == from).collect(), ev)
}

#[test]
fn equal_tables_cost_one_digest_and_no_answer() {
    let (mut a, mut b) = pair(1, 2, &[], &periodic());
    assert_eq!(a.state_digest(), b.state_digest());
    let sent = next_push_pull(&mut a, 2);
    assert!(
        matches!(sent.as_slice(), [(2, Message::PushPullDigest { .. })]),
        "{sent:?}"
    );
    let (back, ev) = deliver(&mut b, 1, sent);
    assert!(back.is_empty() && ev.is_empty(), "{back:?} {ev:?}");
    assert_eq!(b.stats().push_pulls_in_sync, 1);
}

#[test]
fn a_different_digest_starts_the_full_exchange_both_ways() {
    let (mut a, mut b) = pair(1, 2, &[], &periodic());
    // b alone knows 3, and a alone has 4.
    gossip(&mut b, t0(), 1, vec![alive(3, 5)]);
    gossip(&mut a, t0(), 2, vec![alive(4, 2)]);
    assert_ne!(a.state_digest(), b.state_digest());
    let digest = next_push_pull(&mut a, 2);
    let Some((_, Message::PushPullDigest { seq, .. })) = digest.first().cloned() else {
        panic!("{digest:?}")
    };
    // b answers with its whole state under a's seq, as an initiator would.
    let (state, _) = deliver(&mut b, 1, digest.clone());
    assert!(!state.is_empty());
    for (_, m) in &state {
        assert!(
            matches!(m, Message::PushPull { seq: s, reply: false, .. } if *s == seq),
            "{m:?}"
        );
    }
    // The same digest again (a duplicate datagram) is answered once.
    assert!(deliver(&mut b, 1, digest).0.is_empty());
    let (reply, ev) = deliver(&mut a, 2, state);
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::MemberJoined { member: 3, .. }))
    );
    assert!(
        reply
            .iter()
            .all(|(_, m)| matches!(m, Message::PushPull { reply: true, .. }))
    );
    let (none, ev) = deliver(&mut b, 1, reply);
    assert!(none.is_empty(), "a reply is not answered");
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::MemberJoined { member: 4, .. }))
    );
    assert_eq!(a.member(&3).unwrap().incarnation, 5);
    assert_eq!(b.member(&4).unwrap().incarnation, 2);
    assert_eq!(a.state_digest(), b.state_digest(), "converged");
}

#[test]
fn the_digest_ignores_order_but_not_incarnation_state_or_metadata() {
    let config = quiet();
    let make = || {
        let (mut a, mut b) = pair(1, 2, &[], &config);
        gossip(&mut a, t0(), 2, (3..=9).map(|m| alive(m, 0)).collect());
        gossip(
            &mut b,
            t0(),
            1,
            (3..=9).rev().map(|m| alive(m, 0)).collect(),
        );
        (a, b)
    };
    let (a, b) = make();
    let same = a.state_digest();
    assert_eq!(same, b.state_digest(), "learned in another order");
    let mut c = make().0;
    gossip(&mut c, t0(), 2, vec![alive(5, 1)]);
    assert_ne!(c.state_digest(), same, "incarnation");
    let mut c = make().0;
    gossip(
        &mut c,
        t0(),
        2,
        vec![Update::Suspect {
            member: 5,
            incarnation: 0,
            from: 2,
        }],
    );
    assert_eq!(c.member(&5).unwrap().state, State::Suspect);
    assert_ne!(c.state_digest(), same, "state");
    // Member 5 first heard of with metadata, at the same incarnation.
    let (mut c, _) = pair(1, 2, &[], &config);
    let with_meta = (3..=9)
        .map(|m| Update::Alive {
            member: m,
            incarnation: 0,
            meta: if m == 5 {
                Bytes::from_static(b"zone-b")
            } else {
                Bytes::new()
            },
        })
        .collect();
    gossip(&mut c, t0(), 2, with_meta);
    assert_ne!(c.state_digest(), same, "metadata");
    let mut c = make().0;
    c.set_meta(t0(), Bytes::from_static(b"x")).unwrap();
    assert_ne!(c.state_digest(), same, "our own entry");
}

#[test]
fn digests_off_sends_the_full_state_as_memberlist_does() {
    let config = Config {
        push_pull_digest: false,
        ..periodic()
    };
    let (mut a, _) = pair(1, 2, &[3, 4], &config);
    let sent = next_push_pull(&mut a, 2);
    assert!(
        sent.iter()
            .all(|(_, m)| matches!(m, Message::PushPull { reply: false, .. })),
        "{sent:?}"
    );
    let Message::PushPull { members, .. } = &sent[0].1 else {
        unreachable!()
    };
    assert_eq!(members.len(), 4, "ourselves and the three others");
}
