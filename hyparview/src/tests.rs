//! Unit tests: one node driven by hand, asserting the exact outputs of every handler and
//! the view-bound rules.

use std::time::{Duration, Instant};

use bytes::Bytes;
use epidemic_core::{Machine, Output};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::node::Timer;
use crate::{Config, DownReason, Event, HyParView, Message, PeerInfo, Priority};

type Node = HyParView<u64, ChaCha8Rng>;
type Out = Output<u64, Message<u64>, Event<u64>>;

fn t0() -> Instant {
    #[allow(clippy::disallowed_methods)] // tests may read the clock
    Instant::now()
}

fn node(me: u64) -> Node {
    HyParView::new(
        me,
        Bytes::new(),
        Config::default(),
        ChaCha8Rng::seed_from_u64(me),
    )
    .unwrap()
}

fn drain(n: &mut Node) -> Vec<Out> {
    std::iter::from_fn(|| n.poll_output()).collect()
}

fn send(to: u64, msg: Message<u64>) -> Out {
    Output::Send { to, msg }
}

fn ev(e: Event<u64>) -> Out {
    Output::Event(e)
}

fn accept() -> Message<u64> {
    Message::NeighborReply {
        accepted: true,
        data: Bytes::new(),
    }
}

fn refuse() -> Message<u64> {
    Message::NeighborReply {
        accepted: false,
        data: Bytes::new(),
    }
}

fn neighbor(priority: Priority) -> Message<u64> {
    Message::Neighbor {
        priority,
        data: Bytes::new(),
    }
}

/// A node whose active view is `active` (each taken by a high-priority request) and whose
/// passive view is `passive`, outputs drained.
fn with_views(me: u64, active: &[u64], passive: &[u64], now: Instant) -> Node {
    let mut n = node(me);
    for &p in active {
        n.handle_message(now, p, neighbor(Priority::High));
    }
    for &p in passive {
        n.passive.insert(p, Bytes::new());
    }
    drain(&mut n);
    n
}

fn sorted<'a>(it: impl Iterator<Item = &'a u64>) -> Vec<u64> {
    let mut v: Vec<u64> = it.copied().collect();
    v.sort_unstable();
    v
}

#[test]
fn join_is_pending_until_the_contact_accepts() {
    let now = t0();
    let mut n = node(1);
    n.join(now, 9).unwrap();
    assert_eq!(
        drain(&mut n),
        [send(9, Message::Join { data: Bytes::new() })]
    );
    assert_eq!(sorted(n.pending_joins()), [9]);
    n.handle_message(now, 9, accept());
    assert_eq!(drain(&mut n), [ev(Event::NeighborUp(9))]);
    assert_eq!(sorted(n.active_view()), [9]);
    assert_eq!(n.pending_joins().count(), 0);
    assert_eq!(n.join(now, 1), Err(crate::Error::SelfContact));
}

#[test]
fn a_failed_join_is_reported_then_retried_with_growing_backoff() {
    let now = t0();
    let mut n = node(1);
    n.join(now, 9).unwrap();
    drain(&mut n);
    let timeout = now + Config::default().neighbor_timeout;
    n.handle_timeout(timeout - Duration::from_millis(1)); // early: no-op
    assert_eq!(drain(&mut n), []);
    n.handle_timeout(timeout);
    assert_eq!(drain(&mut n), [ev(Event::JoinFailed(9))]);
    // Both views empty: a rejoin after one backoff, then twice that.
    let first = timeout + Duration::from_secs(10);
    assert_eq!(n.timers.get(Timer::Rejoin), Some(first));
    n.handle_timeout(first);
    assert_eq!(
        drain(&mut n),
        [
            send(9, Message::Join { data: Bytes::new() }),
            ev(Event::Rejoining(9))
        ]
    );
    let second = first + Duration::from_secs(3);
    n.handle_link_down(second, 9); // the dial failed this time
    assert_eq!(drain(&mut n), [ev(Event::JoinFailed(9))]);
    assert_eq!(
        n.timers.get(Timer::Rejoin),
        Some(second + Duration::from_secs(20))
    );
    assert_eq!(n.stats().rejoins, 1);
    assert_eq!(n.stats().requests_failed, 2);
}

#[test]
fn the_contact_takes_the_joiner_and_starts_a_walk_through_each_other_neighbour() {
    let now = t0();
    let mut n = with_views(0, &[1, 2], &[], now);
    n.handle_message(
        now,
        5,
        Message::Join {
            data: Bytes::from_static(b"addr"),
        },
    );
    let fj = |to| {
        send(
            to,
            Message::ForwardJoin {
                peer: PeerInfo {
                    id: 5,
                    data: Bytes::from_static(b"addr"),
                },
                ttl: 6,
            },
        )
    };
    assert_eq!(
        drain(&mut n),
        [ev(Event::NeighborUp(5)), send(5, accept()), fj(1), fj(2)]
    );
    assert_eq!(n.peer_data(&5), Some(&Bytes::from_static(b"addr")));
}

#[test]
fn a_full_contact_drops_a_random_neighbour_who_becomes_passive() {
    let now = t0();
    let mut n = with_views(0, &[1, 2, 3, 4, 5], &[], now);
    n.handle_message(now, 9, Message::Join { data: Bytes::new() });
    let out = drain(&mut n);
    let Some(Output::Send { to: victim, .. }) = out.first().cloned() else {
        panic!("{out:?}")
    };
    assert_eq!(out[0], send(victim, Message::Disconnect { alive: true }));
    assert_eq!(out[1], Output::Disconnect(victim));
    assert_eq!(
        out[2],
        ev(Event::NeighborDown(victim, DownReason::Replaced))
    );
    assert_eq!(out[3], ev(Event::NeighborUp(9)));
    assert_eq!(out[4], send(9, accept()));
    assert_eq!(out.len(), 5 + 4, "a walk through each of the four others");
    assert_eq!(n.active_view().count(), 5);
    assert!(n.passive_view().any(|p| *p == victim));
    assert_eq!(n.stats().evictions, 1);
}

#[test]
fn forward_join_at_ttl_zero_asks_the_joiner_with_high_priority() {
    let now = t0();
    let mut n = with_views(0, &[1, 2, 3], &[], now);
    let fj = |ttl| Message::ForwardJoin {
        peer: PeerInfo::new(7),
        ttl,
    };
    n.handle_message(now, 1, fj(0));
    assert_eq!(drain(&mut n), [send(7, neighbor(Priority::High))]);
    assert_eq!(sorted(n.pending_requests()), [7]);
    // The joiner accepts: it is a neighbour.
    n.handle_message(now, 7, accept());
    assert_eq!(drain(&mut n), [ev(Event::NeighborUp(7))]);
    // A walk for a neighbour stops here.
    n.handle_message(now, 2, fj(4));
    assert_eq!(drain(&mut n), []);
}

#[test]
fn forward_join_at_prwl_keeps_the_joiner_passive_and_walks_on() {
    let now = t0();
    let mut n = with_views(0, &[1, 2], &[], now);
    n.handle_message(
        now,
        1,
        Message::ForwardJoin {
            peer: PeerInfo::new(7),
            ttl: 3,
        },
    );
    let out = drain(&mut n);
    assert_eq!(
        out,
        [send(
            2,
            Message::ForwardJoin {
                peer: PeerInfo::new(7),
                ttl: 2
            }
        )],
        "never back to the sender"
    );
    assert_eq!(sorted(n.passive_view()), [7]);
    // With a single neighbour, the node takes the joiner whatever the TTL.
    let mut single = with_views(0, &[1], &[], now);
    single.handle_message(
        now,
        1,
        Message::ForwardJoin {
            peer: PeerInfo::new(7),
            ttl: 5,
        },
    );
    assert_eq!(drain(&mut single), [send(7, neighbor(Priority::High))]);
}

#[test]
fn a_hostile_ttl_is_capped_and_counted() {
    let now = t0();
    let mut n = with_views(0, &[1, 2], &[], now);
    n.handle_message(
        now,
        1,
        Message::ForwardJoin {
            peer: PeerInfo::new(7),
            ttl: 200,
        },
    );
    assert_eq!(
        drain(&mut n),
        [send(
            2,
            Message::ForwardJoin {
                peer: PeerInfo::new(7),
                ttl: 5
            }
        )]
    );
    assert_eq!(n.stats().hostile, 1);
    // A shuffle with a huge TTL and list is capped too: answered within SRWL hops.
    n.handle_message(
        now,
        1,
        Message::Shuffle {
            origin: PeerInfo::new(8),
            peers: (100..200).map(PeerInfo::new).collect(),
            ttl: 255,
        },
    );
    let out = drain(&mut n);
    let Some(Output::Send {
        to: 2,
        msg: Message::Shuffle { peers, ttl: 5, .. },
    }) = out.first()
    else {
        panic!("{out:?}")
    };
    assert_eq!(peers.len(), 8);
    assert_eq!(n.stats().hostile, 3);
}

#[test]
fn low_priority_is_refused_by_a_full_view_high_priority_never() {
    let now = t0();
    let mut n = with_views(0, &[1, 2, 3, 4, 5], &[], now);
    n.handle_message(now, 9, neighbor(Priority::Low));
    assert_eq!(drain(&mut n), [send(9, refuse())]);
    assert!(n.passive_view().any(|p| *p == 9), "a refused peer is alive");
    assert_eq!(n.stats().neighbor_refused, 1);
    n.handle_message(now, 9, neighbor(Priority::High));
    let out = drain(&mut n);
    assert_eq!(out.len(), 5, "evict (3 outputs), up, reply: {out:?}");
    assert_eq!(out[3], ev(Event::NeighborUp(9)));
    assert_eq!(out[4], send(9, accept()));
    let mut room = with_views(0, &[1], &[], now);
    room.handle_message(now, 9, neighbor(Priority::Low));
    assert_eq!(
        drain(&mut room),
        [ev(Event::NeighborUp(9)), send(9, accept())]
    );
}

#[test]
fn a_refusal_keeps_the_peer_passive_and_asks_another() {
    let now = t0();
    let mut n = with_views(0, &[1, 2, 3, 4], &[8], now);
    n.handle_message(now, 1, Message::Disconnect { alive: true });
    let out = drain(&mut n);
    assert_eq!(
        out,
        [
            ev(Event::NeighborDown(1, DownReason::Disconnected)),
            Output::Disconnect(1),
            send(8, neighbor(Priority::Low)),
        ]
    );
    n.handle_message(now, 8, refuse());
    // 1 made room on purpose and 8 refused: nobody else to ask this round.
    assert_eq!(drain(&mut n), []);
    assert_eq!(sorted(n.passive_view()), [1, 8]);
    assert_eq!(n.active_view().count(), 3);
}

#[test]
fn a_lost_link_promotes_a_passive_peer_and_a_failed_dial_removes_it() {
    let now = t0();
    let mut n = with_views(0, &[1, 2], &[8, 9], now);
    n.handle_link_down(now, 1);
    let out = drain(&mut n);
    assert_eq!(out[0], ev(Event::NeighborDown(1, DownReason::LinkLost)));
    assert_eq!(out[1], Output::Disconnect(1), "our end is closed too");
    // Four free slots now and two backups: both are asked.
    let asked: Vec<u64> = out[2..]
        .iter()
        .map(|o| match o {
            Output::Send {
                to,
                msg:
                    Message::Neighbor {
                        priority: Priority::Low,
                        ..
                    },
            } => *to,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(sorted(asked.iter()), [8, 9]);
    n.handle_link_down(now, 8); // the dial to 8 failed
    assert_eq!(drain(&mut n), []);
    assert_eq!(sorted(n.passive_view()), [9]);
    assert_eq!(sorted(n.lost_neighbors()), [1]);
    assert_eq!(n.stats().links_lost, 1);
}

#[test]
fn an_isolated_node_asks_with_high_priority() {
    let now = t0();
    let mut n = with_views(0, &[1], &[8], now);
    n.handle_link_down(now, 1);
    assert_eq!(
        drain(&mut n),
        [
            ev(Event::NeighborDown(1, DownReason::LinkLost)),
            Output::Disconnect(1),
            send(8, neighbor(Priority::High))
        ]
    );
}

#[test]
fn a_lost_neighbour_is_asked_again_with_high_priority_after_a_round() {
    let now = t0();
    let mut n = with_views(0, &[1, 2], &[], now);
    n.handle_link_down(now, 1);
    drain(&mut n);
    let round = Config::default().shuffle_interval;
    // Jump past the first shuffle too, then look only for the reconnect.
    n.handle_timeout(now + round);
    let out = drain(&mut n);
    assert!(out.contains(&send(1, neighbor(Priority::High))), "{out:?}");
    assert_eq!(n.stats().reconnects, 1);
    n.handle_message(now + round, 1, accept());
    assert_eq!(drain(&mut n), [ev(Event::NeighborUp(1))]);
    assert_eq!(n.lost_neighbors().count(), 0);
}

#[test]
fn a_shuffle_walks_then_is_answered_and_integrated() {
    let now = t0();
    let mut n = with_views(0, &[1, 2, 3], &[10, 11, 12, 13, 14], now);
    let at = n.poll_timeout().unwrap();
    n.handle_timeout(at);
    let out = drain(&mut n);
    let Some(Output::Send {
        to,
        msg: Message::Shuffle { origin, peers, ttl },
    }) = out.first().cloned()
    else {
        panic!("{out:?}")
    };
    assert!([1, 2, 3].contains(&to));
    assert_eq!((origin.id, ttl), (0, 6));
    assert_eq!(
        peers.len(),
        2 + 4,
        "ka = 3 but only two other neighbours; kp = 4"
    );
    assert!(peers.iter().all(|p| p.id != to));
    // The reply is integrated, evicting first what we sent.
    n.handle_message(
        at,
        55,
        Message::ShuffleReply {
            peers: vec![PeerInfo::new(20), PeerInfo::new(21)],
        },
    );
    assert!(n.passive_view().any(|p| *p == 20) && n.passive_view().any(|p| *p == 21));
    // A second, unasked reply is dropped.
    n.handle_message(
        at,
        55,
        Message::ShuffleReply {
            peers: vec![PeerInfo::new(30)],
        },
    );
    assert!(!n.passive_view().any(|p| *p == 30));
    assert_eq!(n.stats().hostile, 1);
}

#[test]
fn a_shuffle_is_forwarded_while_its_ttl_lasts_and_answered_at_the_end() {
    let now = t0();
    let mut n = with_views(0, &[1, 2], &[10, 11], now);
    let shuffle = |ttl| Message::Shuffle {
        origin: PeerInfo::new(9),
        peers: vec![PeerInfo::new(40), PeerInfo::new(41)],
        ttl,
    };
    n.handle_message(now, 1, shuffle(3));
    assert_eq!(drain(&mut n), [send(2, shuffle(2))]);
    n.handle_message(now, 1, shuffle(1));
    let out = drain(&mut n);
    let Some(Output::Send {
        to: 9,
        msg: Message::ShuffleReply { peers },
    }) = out.first()
    else {
        panic!("{out:?}")
    };
    assert_eq!(peers.len(), 3, "as many as sent, plus one for the origin");
    assert_eq!(sorted(n.passive_view()), [9, 10, 11, 40, 41]);
    assert_eq!(n.stats().shuffles_answered, 1);
}

#[test]
fn views_and_pending_requests_stay_within_bounds_under_a_flood_of_walks() {
    let now = t0();
    let mut n = with_views(0, &[1, 2, 3, 4, 5], &[], now);
    for id in 100..1000 {
        let ttl = if id % 2 == 0 { 3 } else { 0 };
        n.handle_message(
            now,
            1 + id % 5,
            Message::ForwardJoin {
                peer: PeerInfo::new(id),
                ttl,
            },
        );
        n.handle_message(
            now,
            1,
            Message::Shuffle {
                origin: PeerInfo::new(id + 5000),
                peers: (0..20).map(|k| PeerInfo::new(id * 100 + k)).collect(),
                ttl: 1,
            },
        );
        assert!(n.active_view().count() <= 5);
        assert!(n.passive_view().count() <= 30);
        assert!(n.pending_requests().count() <= 10);
    }
    drain(&mut n);
    assert!(n.stats().pending_full > 0);
    // Oversized data is refused.
    n.handle_message(
        now,
        77,
        Message::Neighbor {
            priority: Priority::High,
            data: Bytes::from(vec![0; 513]),
        },
    );
    assert!(!n.is_neighbor(&77));
}

#[test]
fn crossed_requests_settle_symmetric() {
    let now = t0();
    let mut a = with_views(1, &[], &[2], now);
    let mut b = with_views(2, &[], &[1], now);
    a.refill(now);
    b.refill(now);
    let (oa, ob) = (drain(&mut a), drain(&mut b));
    assert_eq!(oa, [send(2, neighbor(Priority::High))]);
    assert_eq!(ob, [send(1, neighbor(Priority::High))]);
    a.handle_message(now, 2, neighbor(Priority::High));
    b.handle_message(now, 1, neighbor(Priority::High));
    let (oa, ob) = (drain(&mut a), drain(&mut b));
    assert_eq!(oa, [ev(Event::NeighborUp(2)), send(2, accept())]);
    assert_eq!(ob, [ev(Event::NeighborUp(1)), send(1, accept())]);
    a.handle_message(now, 2, accept());
    b.handle_message(now, 1, accept());
    assert_eq!((drain(&mut a), drain(&mut b)), (vec![], vec![]));
    assert!(a.is_neighbor(&2) && b.is_neighbor(&1));
    assert_eq!(a.pending_requests().count(), 0);
}

#[test]
fn a_late_acceptance_is_undone() {
    let now = t0();
    let mut n = with_views(0, &[1, 2], &[], now);
    n.handle_message(now, 9, accept());
    assert_eq!(
        drain(&mut n),
        [
            send(9, Message::Disconnect { alive: true }),
            Output::Disconnect(9)
        ]
    );
    assert!(!n.is_neighbor(&9));
}

#[test]
fn leaving_tells_every_neighbour_and_goes_inert() {
    let now = t0();
    let mut n = with_views(0, &[1, 2], &[8], now);
    n.leave(now);
    assert_eq!(
        drain(&mut n),
        [
            send(1, Message::Disconnect { alive: false }),
            Output::Disconnect(1),
            ev(Event::NeighborDown(1, DownReason::ShuttingDown)),
            send(2, Message::Disconnect { alive: false }),
            Output::Disconnect(2),
            ev(Event::NeighborDown(2, DownReason::ShuttingDown)),
        ]
    );
    assert_eq!(n.poll_timeout(), None);
    n.handle_message(now, 3, Message::Join { data: Bytes::new() });
    assert_eq!(drain(&mut n), []);
    // A peer that leaves is forgotten, not kept as a backup.
    let mut m = with_views(0, &[1, 2], &[], now);
    m.handle_message(now, 1, Message::Disconnect { alive: false });
    assert_eq!(
        drain(&mut m)[0],
        ev(Event::NeighborDown(1, DownReason::PeerLeft))
    );
    assert_eq!(m.passive_view().count(), 0);
}

#[test]
fn a_time_going_backwards_is_the_last_time() {
    let now = t0();
    let mut n = node(1);
    n.join(now + Duration::from_secs(5), 9).unwrap();
    drain(&mut n);
    n.handle_timeout(now); // earlier than seen: treated as +5 s, not due yet
    assert_eq!(drain(&mut n), []);
    assert!(n.pending_joins().count() == 1);
}

#[test]
fn a_join_from_a_peer_we_are_asking_voids_our_request() {
    let now = t0();
    let mut n = with_views(0, &[1, 2], &[7], now);
    n.handle_link_down(now, 1);
    drain(&mut n);
    assert_eq!(sorted(n.pending_requests()), [7]);
    // 7 restarted and joins through us: our request to it will never be answered.
    n.handle_message(now, 7, Message::Join { data: Bytes::new() });
    let out = drain(&mut n);
    assert_eq!(out[0], ev(Event::NeighborUp(7)));
    assert_eq!(out[1], send(7, accept()));
    assert_eq!(n.pending_requests().count(), 0);
    // Its timeout later is harmless: 7 stays a neighbour.
    n.handle_timeout(now + Config::default().neighbor_timeout);
    assert!(n.is_neighbor(&7));
}

#[test]
fn a_restarted_node_rejoins_through_its_contacts_at_once() {
    let now = t0();
    let mut n = node(1);
    n.join(now, 9).unwrap();
    n.add_contact(8);
    n.handle_message(now, 9, accept());
    drain(&mut n);
    let mut r = n.restarted(ChaCha8Rng::seed_from_u64(5));
    assert_eq!(r.active_view().count(), 0);
    assert_eq!(r.contacts(), [9, 8]);
    assert_eq!(r.poll_timeout(), Some(now), "due at once");
    r.handle_timeout(now + Duration::from_secs(1));
    assert_eq!(
        drain(&mut r),
        [
            send(9, Message::Join { data: Bytes::new() }),
            ev(Event::Rejoining(9))
        ]
    );
}
