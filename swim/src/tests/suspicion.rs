//! Suspicion's finer rules: corrections of outdated suspicions, the last-chance probe,
//! newer incarnations, and what a push-pull table may confirm.

use std::time::{Duration, Instant};

use bytes::Bytes;
use epidemic_core::Machine;

use super::{Node, alive, drain, gossip, quiet, with_members};
use crate::lifeguard::{suspicion_min, suspicion_timeout};
use crate::{Event, Message, State, Update};

#[test]
fn an_outdated_suspicion_of_us_is_corrected_at_its_sender() {
    let (mut s, now) = with_members(3, quiet());
    gossip(
        &mut s,
        now,
        1,
        vec![Update::Suspect {
            member: 0,
            incarnation: 1,
            from: 1,
        }],
    );
    assert_eq!(s.incarnation(), 2);
    drain(&mut s);
    // A ping carrying the old suspicion: the ack leads with our Alive.
    s.handle_message(
        now,
        2,
        Message::Ping {
            seq: 9,
            target: 0,
            updates: vec![Update::Suspect {
                member: 0,
                incarnation: 1,
                from: 3,
            }],
        },
    );
    let (sent, _) = drain(&mut s);
    assert_eq!(sent.len(), 1);
    assert!(matches!(&sent[0], (2, Message::Ack { seq: 9, updates }) if updates[0] == alive(0, 2)));
    // Gossip of an old Dead: a direct Gossip back with our Alive.
    s.handle_message(
        now,
        3,
        Message::Gossip {
            updates: vec![Update::Dead {
                member: 0,
                incarnation: 0,
                from: 1,
            }],
        },
    );
    let (sent, _) = drain(&mut s);
    assert!(matches!(&sent[..], [(3, Message::Gossip { updates })] if updates[0] == alive(0, 2)));
}

#[test]
fn an_unconfirmed_suspicion_gets_a_last_chance_ping() {
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
    let max = suspicion_min(4, 11, Duration::from_secs(1)) * 6;
    s.handle_timeout(now + max);
    let (sent, ev) = drain(&mut s);
    assert!(!ev.iter().any(|e| matches!(e, Event::MemberDown { .. })));
    let ping = sent
        .iter()
        .find(|(to, m)| *to == 5 && matches!(m, Message::Ping { .. }))
        .expect("last-chance ping");
    assert_eq!(
        ping.1.updates()[0],
        Update::Suspect {
            member: 5,
            incarnation: 0,
            from: 0
        }
    );
    // Its ack carries the refutation: no Down.
    s.handle_message(
        now + max,
        5,
        Message::Ack {
            seq: 0,
            updates: vec![alive(5, 1)],
        },
    );
    assert!(drain(&mut s).1.contains(&Event::MemberRefuted {
        member: 5,
        incarnation: 1
    }));
    // Silence after the last chance: Down one period later.
    gossip(
        &mut s,
        now + max,
        1,
        vec![Update::Suspect {
            member: 6,
            incarnation: 0,
            from: 1,
        }],
    );
    let t = now + max;
    s.handle_timeout(t + max);
    assert!(
        !drain(&mut s)
            .1
            .iter()
            .any(|e| matches!(e, Event::MemberDown { .. }))
    );
    s.handle_timeout(t + max + Duration::from_secs(1));
    assert!(drain(&mut s).1.contains(&Event::MemberDown {
        member: 6,
        incarnation: 0,
        by: 0
    }));
}

#[test]
fn a_suspicion_of_a_newer_incarnation_starts_over() {
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
    let later = now + Duration::from_secs(5);
    let ev = gossip(
        &mut s,
        later,
        2,
        vec![Update::Suspect {
            member: 5,
            incarnation: 1,
            from: 2,
        }],
    );
    assert_eq!(
        ev,
        [Event::MemberSuspected {
            member: 5,
            incarnation: 1,
            by: 2
        }]
    );
    let max = suspicion_min(4, 11, Duration::from_secs(1)) * 6;
    assert_eq!(
        s.suspicions.get(&5).unwrap().timer.at(),
        later + max,
        "a fresh timer, no confirmation"
    );
}

fn suspect(member: u64, incarnation: u32, from: u64) -> Update<u64> {
    Update::Suspect {
        member,
        incarnation,
        from,
    }
}

fn push_pull(s: &mut Node, now: Instant, from: u64, member: u64, state: State) {
    s.handle_message(
        now,
        from,
        Message::PushPull {
            seq: 7,
            reply: true,
            chunk: 0,
            chunks: 1,
            members: vec![crate::MemberState {
                member,
                incarnation: 0,
                state,
                meta: Bytes::new(),
            }],
        },
    );
    drain(s);
}

/// Found at N = 1,000 with 10% loss: every node whose push-pull table held a Suspect
/// entry counted as an independent suspecter, so a suspicion gathered its k
/// "confirmations" from mere relayers, shrank to the minimum timeout and skipped the
/// last-chance probe, and a node that missed the refutation declared a live member Down.
#[test]
fn push_pull_suspect_entries_do_not_confirm_a_suspicion() {
    let (mut s, now) = with_members(10, quiet());
    let max = suspicion_min(4, 11, Duration::from_secs(1)) * 6;
    let deadline = |s: &Node, m: u64| s.suspicions.get(&m).unwrap().timer.at();
    gossip(&mut s, now, 1, vec![suspect(5, 0, 1)]);
    assert_eq!(deadline(&s, 5), now + max);
    push_pull(&mut s, now, 2, 5, State::Suspect);
    push_pull(&mut s, now, 3, 5, State::Dead);
    assert_eq!(deadline(&s, 5), now + max, "relayers confirm nothing");
    assert_eq!(s.suspicions.get(&5).unwrap().suspecters.as_slice(), [1]);
    // A suspicion learned from a table alone is ours to time out, not gossiped under the
    // sender's name; the first suspecter named by gossip is not a confirmation either.
    push_pull(&mut s, now, 2, 6, State::Suspect);
    assert_eq!(s.member(&6).unwrap().state, State::Suspect);
    assert!(s.suspicions.get(&6).unwrap().suspecters.is_empty());
    let mut out = Vec::new();
    s.take_updates(usize::MAX, u32::MAX, &mut out);
    assert!(
        !out.iter()
            .any(|u| matches!(u, Update::Suspect { member: 6, .. })),
        "{out:?}"
    );
    gossip(&mut s, now, 4, vec![suspect(6, 0, 4)]);
    assert_eq!(deadline(&s, 6), now + max);
    gossip(&mut s, now, 8, vec![suspect(6, 0, 8)]);
    assert_eq!(
        deadline(&s, 6),
        now + suspicion_timeout(1, 2, max / 6, max),
        "the second named suspecter is the first confirmation"
    );
    // Unconfirmed, it still gets its last chance instead of a Down.
    s.handle_timeout(now + max);
    let (_, ev) = drain(&mut s);
    assert!(
        !ev.iter()
            .any(|e| matches!(e, Event::MemberDown { member: 5, .. }))
    );
}

/// Found at N = 1,000 with 5% loss: a node that missed a refutation's wave kept its
/// suspicion to the end. Whoever knows the newer Alive now answers a ping or ping-req
/// that carries the outdated suspicion with it.
#[test]
fn an_outdated_suspicion_of_a_third_member_is_answered_with_its_refutation() {
    let (mut s, now) = with_members(3, quiet());
    gossip(&mut s, now, 2, vec![alive(2, 1)]);
    s.handle_message(
        now,
        1,
        Message::Ping {
            seq: 9,
            target: 0,
            updates: vec![suspect(2, 0, 3)],
        },
    );
    let (sent, _) = drain(&mut s);
    assert!(
        matches!(&sent[..], [(1, Message::Ack { seq: 9, updates })] if updates[0] == alive(2, 1)),
        "{sent:?}"
    );
    s.handle_message(
        now,
        3,
        Message::PingReq {
            seq: 4,
            target: 1,
            nack_ms: 0,
            updates: vec![Update::Dead {
                member: 2,
                incarnation: 0,
                from: 3,
            }],
        },
    );
    let (sent, _) = drain(&mut s);
    assert!(
        sent.iter().any(|(to, m)| *to == 3
            && matches!(m, Message::Gossip { updates } if updates[0] == alive(2, 1))),
        "{sent:?}"
    );
    assert_eq!(s.stats().corrections_sent, 2);
    // Plain gossip is not answered (most outdated copies are still in flight in a wave).
    gossip(&mut s, now, 1, vec![suspect(2, 0, 3)]);
    assert!(drain(&mut s).0.is_empty());
    assert_eq!(s.stats().corrections_sent, 2);
}

#[test]
fn the_last_chance_also_asks_k_helpers_with_the_suspicion_attached() {
    let (mut s, now) = with_members(10, quiet());
    gossip(&mut s, now, 1, vec![suspect(5, 0, 1)]);
    let max = suspicion_min(4, 11, Duration::from_secs(1)) * 6;
    s.handle_timeout(now + max);
    let (sent, _) = drain(&mut s);
    let reqs: Vec<_> = sent
        .iter()
        .filter_map(|(to, m)| match m {
            Message::PingReq {
                target: 5, updates, ..
            } => Some((*to, updates[0].clone())),
            _ => None,
        })
        .collect();
    assert_eq!(reqs.len(), 3, "{sent:?}");
    for (to, u) in reqs {
        assert_ne!(to, 5);
        assert_eq!(u, suspect(5, 0, 0));
    }
}
