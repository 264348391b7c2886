//! Unit tests: one machine driven by hand, exact output sequences per handler.

use std::time::{Duration, Instant};

use bytes::Bytes;
use epidemic_core::codec::encoded_len;
use epidemic_core::{Machine, Output};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::{
    Config, Direct, Event, Graft, IHave, Message, MessageId, Payload, Plumtree, Received, Scope,
    Validator,
};

type Out = Output<u64, Message, Event<u64>>;

fn t0() -> Instant {
    #[allow(clippy::disallowed_methods)] // tests may read the clock
    Instant::now()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn node_with(me: u64, config: Config) -> Plumtree<u64> {
    Plumtree::new(me, config, &mut ChaCha8Rng::seed_from_u64(me)).unwrap()
}

/// Node `me` with `peers` up (all eager).
fn node(me: u64, peers: &[u64], now: Instant) -> Plumtree<u64> {
    node_config(me, peers, now, Config::default())
}

/// Node `me` with `config` and `peers` up (all eager).
fn node_config(me: u64, peers: &[u64], now: Instant, config: Config) -> Plumtree<u64> {
    let mut n = node_with(me, config);
    for &p in peers {
        n.neighbor_up(now, p);
    }
    n
}

fn drain<V: Validator<u64>>(n: &mut Plumtree<u64, V>) -> Vec<Out> {
    std::iter::from_fn(|| n.poll_output()).collect()
}

fn id(b: u8) -> MessageId {
    MessageId([b; 16])
}

fn gossip(i: MessageId, round: u16, payload: &'static [u8]) -> Message {
    Message::Gossip(Payload {
        id: i,
        round,
        payload: Bytes::from_static(payload),
    })
}

fn send(to: u64, msg: Message) -> Out {
    Output::Send { to, msg }
}

fn received(i: MessageId, from: u64, round: u16, payload: &'static [u8]) -> Out {
    Output::Event(Event::Received(Received {
        payload: Bytes::from_static(payload),
        id: i,
        delivered_from: from,
        round,
        scope: Scope::Swarm,
    }))
}

fn eager(n: &Plumtree<u64, impl Validator<u64>>) -> Vec<u64> {
    n.eager_peers().copied().collect()
}

fn lazy(n: &Plumtree<u64, impl Validator<u64>>) -> Vec<u64> {
    n.lazy_peers().copied().collect()
}

#[test]
fn broadcast_pushes_to_eager_peers_and_announces_to_lazy_ones() {
    let t = t0();
    let mut n = node(0, &[1, 2, 3], t);
    n.handle_message(t, 3, Message::Prune);
    assert_eq!((eager(&n), lazy(&n)), (vec![1, 2], vec![3]));
    let i = n.broadcast(t, Bytes::from_static(b"x")).unwrap();
    assert_eq!(
        drain(&mut n),
        [send(1, gossip(i, 1, b"x")), send(2, gossip(i, 1, b"x"))]
    );
    assert_eq!(n.poll_timeout(), Some(t + ms(20)));
    n.handle_timeout(t + ms(19));
    assert_eq!(drain(&mut n), []);
    n.handle_timeout(t + ms(20));
    assert_eq!(
        drain(&mut n),
        [send(3, Message::IHave(vec![IHave { id: i, round: 1 }]))]
    );
    assert_eq!(n.poll_timeout(), None);
    assert_eq!(n.stats().broadcasts, 1);
}

#[test]
fn first_gossip_is_delivered_and_forwarded_duplicate_prunes() {
    let t = t0();
    let mut n = node(0, &[1, 2, 3], t);
    n.handle_message(t, 3, Message::Prune);
    n.handle_message(t, 1, gossip(id(7), 4, b"p"));
    assert_eq!(
        drain(&mut n),
        [received(id(7), 1, 4, b"p"), send(2, gossip(id(7), 5, b"p"))]
    );
    n.handle_timeout(t + ms(20));
    assert_eq!(
        drain(&mut n),
        [send(
            3,
            Message::IHave(vec![IHave {
                id: id(7),
                round: 5
            }])
        )]
    );
    // The same message again, from another eager peer: it turns lazy and hears PRUNE.
    n.handle_message(t, 2, gossip(id(7), 3, b"p"));
    assert_eq!(drain(&mut n), [send(2, Message::Prune)]);
    assert_eq!((eager(&n), lazy(&n)), (vec![1], vec![2, 3]));
    assert_eq!(n.stats().duplicates, 1);
    assert_eq!(n.stats().delivered, 1);
}

#[test]
fn a_lazy_sender_of_a_new_payload_becomes_eager() {
    let t = t0();
    let mut n = node(0, &[1, 2], t);
    n.handle_message(t, 1, Message::Prune);
    n.handle_message(t, 1, gossip(id(1), 1, b"a"));
    assert_eq!(
        drain(&mut n),
        [received(id(1), 1, 1, b"a"), send(2, gossip(id(1), 2, b"a"))]
    );
    assert_eq!(eager(&n), [1, 2]);
}

#[test]
fn ihave_for_unknown_id_grafts_announcers_in_turn_then_gives_up() {
    let t = t0();
    let mut n = node(0, &[1, 2, 3], t);
    for p in [1, 2] {
        n.handle_message(t, p, Message::Prune);
    }
    n.handle_message(
        t,
        1,
        Message::IHave(vec![IHave {
            id: id(5),
            round: 2,
        }]),
    );
    n.handle_message(
        t + ms(5),
        2,
        Message::IHave(vec![IHave {
            id: id(5),
            round: 3,
        }]),
    );
    assert_eq!(drain(&mut n), []);
    assert_eq!(n.missing(), 1);
    assert_eq!(n.poll_timeout(), Some(t + ms(300)));
    n.handle_timeout(t + ms(300));
    let graft = |round| {
        Message::Graft(Graft {
            id: Some(id(5)),
            round,
        })
    };
    assert_eq!(drain(&mut n), [send(1, graft(2))]);
    assert_eq!(eager(&n), [1, 3]);
    assert_eq!(n.poll_timeout(), Some(t + ms(340)));
    n.handle_timeout(t + ms(340));
    assert_eq!(drain(&mut n), [send(2, graft(3))]);
    n.handle_timeout(t + ms(380));
    assert_eq!(drain(&mut n), [Output::Event(Event::Missed(id(5)))]);
    assert_eq!(n.missing(), 0);
    assert_eq!((n.stats().grafts_sent, n.stats().missed), (2, 1));
}

#[test]
fn payload_cancels_the_missing_timer() {
    let t = t0();
    let mut n = node(0, &[1, 2], t);
    n.handle_message(t, 2, Message::Prune);
    n.handle_message(
        t,
        2,
        Message::IHave(vec![IHave {
            id: id(5),
            round: 1,
        }]),
    );
    n.handle_message(t + ms(10), 1, gossip(id(5), 2, b"z"));
    assert_eq!(drain(&mut n), [received(id(5), 1, 2, b"z")]);
    assert_eq!(n.missing(), 0);
    assert_eq!(
        n.poll_timeout(),
        Some(t + ms(30)),
        "only the IHAVE flush is left"
    );
    n.handle_timeout(t + ms(300));
    // No GRAFT: the announcement to 2 is the only output.
    assert_eq!(
        drain(&mut n),
        [send(
            2,
            Message::IHave(vec![IHave {
                id: id(5),
                round: 3
            }])
        )]
    );
}

#[test]
fn graft_is_served_from_the_cache_within_credit() {
    let t = t0();
    let mut n = node(0, &[1], t);
    n.handle_message(t, 1, Message::Prune);
    let i = n.broadcast(t, Bytes::from_static(b"c")).unwrap();
    assert_eq!(drain(&mut n), []);
    let graft = |i| {
        Message::Graft(Graft {
            id: Some(i),
            round: 1,
        })
    };
    n.handle_message(t + ms(1), 1, graft(i));
    assert_eq!(drain(&mut n), [send(1, gossip(i, 1, b"c"))]);
    assert_eq!(eager(&n), [1]);
    // Unknown id: answered with nothing.
    n.handle_message(t + ms(2), 1, graft(id(9)));
    assert_eq!(drain(&mut n), []);
    assert_eq!(n.stats().grafts_unknown, 1);
    // A flood of GRAFTs: served only up to the credit (16, two spent above; the queued
    // IHAVE was never flushed, so it gave none).
    for _ in 0..100 {
        n.handle_message(t + ms(3), 1, graft(i));
    }
    let served = drain(&mut n).len();
    assert_eq!(served, 14);
    assert_eq!(n.stats().grafts_refused, 100 - served as u64);
}

#[test]
fn graft_without_id_only_makes_the_peer_eager() {
    let t = t0();
    let mut n = node(0, &[1], t);
    n.handle_message(t, 1, Message::Prune);
    n.handle_message(t, 1, Message::Graft(Graft { id: None, round: 0 }));
    assert_eq!(drain(&mut n), []);
    assert_eq!(eager(&n), [1]);
}

#[test]
fn optimisation_swaps_a_deep_eager_link_for_a_short_lazy_one() {
    let t = t0();
    // The paper's rule: one threshold (iroh-gossip's 7), no repair window.
    let config = Config {
        optimization_threshold: 7,
        repair_window: Duration::ZERO,
        ..Config::default()
    };
    let mut n = node_config(0, &[1, 2], t, config);
    n.handle_message(t, 2, Message::Prune);
    n.handle_message(t, 1, gossip(id(3), 10, b"o"));
    drain(&mut n);
    // Round 3 + threshold 7 is not below 10: nothing.
    n.handle_message(
        t,
        2,
        Message::IHave(vec![IHave {
            id: id(3),
            round: 3,
        }]),
    );
    assert_eq!(drain(&mut n), []);
    n.handle_message(
        t,
        2,
        Message::IHave(vec![IHave {
            id: id(3),
            round: 2,
        }]),
    );
    assert_eq!(
        drain(&mut n),
        [
            send(2, Message::Graft(Graft { id: None, round: 2 })),
            send(1, Message::Prune)
        ]
    );
    assert_eq!((eager(&n), lazy(&n)), (vec![2], vec![1]));
    assert_eq!(n.stats().optimizations, 1);
}

#[test]
fn the_repair_threshold_applies_within_the_window_after_a_neighbour_change() {
    let t = t0();
    let mut n = node(0, &[1, 2, 3], t);
    n.handle_message(t, 2, Message::Prune);
    let ihave = |i: MessageId, round: u16| Message::IHave(vec![IHave { id: i, round }]);
    // 30 s after the last neighbour change the threshold is 16: round 6 at 2 is not enough
    // against round 9 through 1, nor round 4 against 20; round 3 is.
    let late = t + Duration::from_secs(30);
    n.handle_message(late, 1, gossip(id(1), 9, b"a"));
    n.handle_message(late, 1, gossip(id(2), 20, b"b"));
    drain(&mut n);
    n.handle_message(late, 2, ihave(id(1), 6));
    n.handle_message(late, 2, ihave(id(2), 4));
    assert_eq!(drain(&mut n), []);
    n.handle_message(late, 2, ihave(id(2), 3));
    assert_eq!(
        drain(&mut n),
        [
            send(2, Message::Graft(Graft { id: None, round: 3 })),
            send(1, Message::Prune)
        ]
    );
    assert_eq!((eager(&n), lazy(&n)), (vec![2, 3], vec![1]));
    // A neighbour comes up: for 30 s the threshold is 2. Round 7 + 2 is not below 9 (the
    // copy from 2), round 6 + 2 is.
    n.neighbor_up(late, 4);
    n.handle_message(late, 2, gossip(id(3), 9, b"c"));
    drain(&mut n);
    n.handle_message(late + ms(10), 1, ihave(id(3), 7));
    assert_eq!(drain(&mut n), []);
    n.handle_message(late + ms(20), 1, ihave(id(3), 6));
    assert_eq!(
        drain(&mut n),
        [
            send(1, Message::Graft(Graft { id: None, round: 6 })),
            send(2, Message::Prune)
        ]
    );
    assert_eq!((eager(&n), lazy(&n)), (vec![1, 3, 4], vec![2]));
    assert_eq!(n.stats().optimizations, 2);
    // A zero window never applies the repair threshold.
    let config = Config {
        repair_window: Duration::ZERO,
        ..Config::default()
    };
    let mut n = node_config(0, &[1, 2], t, config);
    n.handle_message(t, 2, Message::Prune);
    n.handle_message(t, 1, gossip(id(4), 9, b"d"));
    drain(&mut n);
    n.handle_message(t, 2, ihave(id(4), 6));
    assert_eq!(drain(&mut n), []);
}

#[test]
fn losing_a_neighbour_makes_every_lazy_link_eager_both_ways() {
    let t = t0();
    let mut n = node(0, &[1, 2, 3, 4], t);
    n.handle_message(t, 2, Message::Prune);
    n.handle_message(t, 4, Message::Prune);
    assert_eq!((eager(&n), lazy(&n)), (vec![1, 3], vec![2, 4]));
    n.neighbor_down(t + ms(5), &1);
    assert_eq!(
        drain(&mut n),
        [
            send(2, Message::Graft(Graft { id: None, round: 0 })),
            send(4, Message::Graft(Graft { id: None, round: 0 }))
        ]
    );
    assert_eq!((eager(&n), lazy(&n)), (vec![2, 3, 4], vec![]));
    assert_eq!(n.stats().loss_grafts, 2);
    // The next payload goes to all of them.
    n.handle_message(t + ms(10), 3, gossip(id(1), 1, b"x"));
    assert_eq!(
        drain(&mut n),
        [
            received(id(1), 3, 1, b"x"),
            send(2, gossip(id(1), 2, b"x")),
            send(4, gossip(id(1), 2, b"x"))
        ]
    );
    // Within the repair window after the loss, a new neighbour re-floods too.
    n.handle_message(t + ms(20), 2, Message::Prune);
    n.neighbor_up(t + ms(30), 5);
    assert_eq!(
        drain(&mut n),
        [send(2, Message::Graft(Graft { id: None, round: 0 }))]
    );
    assert_eq!((eager(&n), lazy(&n)), (vec![2, 3, 4, 5], vec![]));
    // After it, a new neighbour is only a new eager link.
    n.handle_message(t + ms(40), 2, Message::Prune);
    n.neighbor_up(t + Duration::from_secs(31), 6);
    assert_eq!(drain(&mut n), []);
    assert_eq!((eager(&n), lazy(&n)), (vec![3, 4, 5, 6], vec![2]));
    assert_eq!(n.stats().loss_grafts, 3);
    // Off: the lazy links stay lazy and nothing is sent.
    let config = Config {
        eager_on_loss: false,
        ..Config::default()
    };
    let mut n = node_config(0, &[1, 2, 3], t, config);
    n.handle_message(t, 2, Message::Prune);
    n.neighbor_down(t, &1);
    assert_eq!(drain(&mut n), []);
    assert_eq!((eager(&n), lazy(&n)), (vec![3], vec![2]));
}

#[test]
fn neighbor_down_leaves_both_sets_and_the_announcers() {
    let t = t0();
    let mut n = node(0, &[1, 2, 3], t);
    n.handle_message(t, 1, Message::Prune);
    n.handle_message(
        t,
        1,
        Message::IHave(vec![IHave {
            id: id(5),
            round: 1,
        }]),
    );
    n.handle_message(
        t,
        2,
        Message::IHave(vec![IHave {
            id: id(5),
            round: 2,
        }]),
    );
    n.neighbor_down(t, &1);
    assert_eq!((eager(&n), lazy(&n)), (vec![2, 3], vec![]));
    n.handle_timeout(t + ms(300));
    assert_eq!(
        drain(&mut n),
        [send(
            2,
            Message::Graft(Graft {
                id: Some(id(5)),
                round: 2
            })
        )]
    );
    // Messages from the departed peer are ignored, but a payload is still delivered.
    n.handle_message(t, 1, Message::Prune);
    n.handle_message(t, 1, gossip(id(6), 1, b"late"));
    assert_eq!(
        drain(&mut n),
        [
            received(id(6), 1, 1, b"late"),
            send(2, gossip(id(6), 2, b"late")),
            send(3, gossip(id(6), 2, b"late"))
        ]
    );
    assert_eq!(n.stats().not_neighbor, 2);
}

#[test]
fn a_new_neighbour_hears_every_cached_id() {
    let t = t0();
    let mut n = node(0, &[], t);
    let a = n.broadcast(t, Bytes::from_static(b"a")).unwrap();
    let b = n.broadcast(t, Bytes::from_static(b"b")).unwrap();
    assert_eq!(drain(&mut n), []);
    n.neighbor_up(t + ms(100), 5);
    n.handle_timeout(t + ms(120));
    assert_eq!(
        drain(&mut n),
        [send(
            5,
            Message::IHave(vec![IHave { id: a, round: 1 }, IHave { id: b, round: 1 }])
        )]
    );
    assert_eq!(eager(&n), [5]);
}

#[test]
fn ihave_batches_are_packed_up_to_the_message_size() {
    let t = t0();
    let config = Config {
        max_message_size: 100,
        ..Config::default()
    };
    let mut n = node_with(0, config);
    let ids: Vec<MessageId> = (0..10)
        .map(|i| n.broadcast(t, Bytes::from(vec![i; 3])).unwrap())
        .collect();
    n.neighbor_up(t, 9);
    n.handle_timeout(t + ms(20));
    let out = drain(&mut n);
    let mut got = Vec::new();
    for o in &out {
        let Output::Send {
            to: 9,
            msg: msg @ Message::IHave(es),
        } = o
        else {
            panic!("unexpected {o:?}");
        };
        // +1: a composite's tag around the message.
        assert!(encoded_len(msg) < 100, "{}", encoded_len(msg));
        got.extend(es.iter().map(|e| e.id));
    }
    assert_eq!(got, ids);
    assert_eq!(out.len(), 2, "17-byte entries, 5 per 100-byte message");
}

#[test]
fn a_declined_message_is_neither_delivered_nor_forwarded() {
    let t = t0();
    let mut n = node(0, &[1, 2], t)
        .with_validator(|_: &u64, _: &MessageId, p: &Bytes| p.as_ref() != b"spam");
    n.handle_message(t, 1, gossip(id(1), 1, b"spam"));
    assert_eq!(drain(&mut n), []);
    n.handle_message(t, 2, gossip(id(1), 1, b"spam"));
    assert_eq!(
        drain(&mut n),
        [send(2, Message::Prune)],
        "a copy is a duplicate"
    );
    n.handle_message(t, 1, gossip(id(2), 1, b"ham"));
    // 2 is lazy now: it gets the announcement, not the payload.
    assert_eq!(drain(&mut n), [received(id(2), 1, 1, b"ham")]);
    assert_eq!(lazy(&n), [2]);
    assert_eq!(n.stats().rejected, 1);
}

#[test]
fn neighbours_scope_reaches_one_hop_only() {
    let t = t0();
    let mut n = node(0, &[1, 2], t);
    let i = n
        .broadcast_scoped(t, Bytes::from_static(b"hop"), Scope::Neighbors)
        .unwrap();
    let direct = Message::Direct(Direct {
        id: i,
        payload: Bytes::from_static(b"hop"),
    });
    assert_eq!(
        drain(&mut n),
        [send(1, direct.clone()), send(2, direct.clone())]
    );
    let mut m = node(1, &[0, 3], t);
    m.handle_message(t, 0, direct.clone());
    assert_eq!(
        drain(&mut m),
        [Output::Event(Event::Received(Received {
            payload: Bytes::from_static(b"hop"),
            id: i,
            delivered_from: 0,
            round: 1,
            scope: Scope::Neighbors,
        }))]
    );
    m.handle_message(t, 0, direct);
    assert_eq!(drain(&mut m), []);
    assert_eq!(m.poll_timeout(), None, "nothing announced either");
}

#[test]
fn a_grafted_copy_after_the_trees_is_pruned_like_any_duplicate() {
    let t = t0();
    let mut n = node(0, &[1, 2], t);
    n.handle_message(t, 2, Message::Prune);
    n.handle_message(
        t,
        2,
        Message::IHave(vec![IHave {
            id: id(4),
            round: 1,
        }]),
    );
    n.handle_timeout(t + ms(300));
    drain(&mut n);
    assert_eq!(eager(&n), [1, 2], "grafted");
    // The tree's copy arrives first, then the grafted one: the tree is whole, so the
    // graft's link is undone.
    n.handle_message(t + ms(301), 1, gossip(id(4), 5, b"g"));
    drain(&mut n);
    n.handle_message(t + ms(302), 2, gossip(id(4), 2, b"g"));
    assert_eq!(drain(&mut n), [send(2, Message::Prune)]);
    assert_eq!((eager(&n), lazy(&n)), (vec![1], vec![2]));
    assert_eq!(n.stats().graft_duplicates, 1);
}

#[test]
fn the_same_bytes_twice_are_two_messages() {
    let t = t0();
    let mut n = node(0, &[1], t);
    let a = n.broadcast(t, Bytes::from_static(b"same")).unwrap();
    let b = n.broadcast(t, Bytes::from_static(b"same")).unwrap();
    assert_ne!(a, b);
    assert_eq!(drain(&mut n).len(), 2);
}

#[test]
fn hostile_input_is_counted_and_bounded() {
    let t = t0();
    let config = Config {
        max_missing: 2,
        ..Config::default()
    };
    let mut n = node_with(0, config);
    n.neighbor_up(t, 1);
    n.handle_message(t, 0, Message::Prune);
    assert_eq!(n.stats().hostile, 1, "a message from ourselves");
    let many: Vec<IHave> = (0..1000u16)
        .map(|i| IHave {
            id: MessageId::new(&1u64, 0, u64::from(i), b""),
            round: i,
        })
        .collect();
    n.handle_message(t, 1, Message::IHave(many));
    assert_eq!(n.stats().hostile, 2, "a batch over the entry bound");
    assert_eq!(n.missing(), 2);
    assert_eq!(n.stats().missing_full, 510);
    n.handle_message(t, 7, Message::Graft(Graft { id: None, round: 0 }));
    assert_eq!(n.stats().not_neighbor, 1);
    assert_eq!(eager(&n), [1], "a stranger's GRAFT adds nothing");
    assert_eq!(
        n.broadcast(t, Bytes::from(vec![0; 5000])),
        Err(crate::Error::PayloadTooLarge {
            len: 5000,
            max: 4070
        })
    );
}

#[test]
fn caches_are_bounded_in_size_and_time() {
    let t = t0();
    let config = Config {
        max_cached_payloads: 2,
        max_received: 3,
        ..Config::default()
    };
    let mut n = node_with(0, config);
    let ids: Vec<MessageId> = (0..4u8)
        .map(|i| n.broadcast(t, Bytes::from(vec![i])).unwrap())
        .collect();
    assert_eq!(n.cached(), 2);
    assert_eq!(n.stats().cache_evictions, 2);
    assert!(!n.has_received(&ids[0]) && n.has_received(&ids[1]));
    n.neighbor_up(t, 1);
    let graft = |i| {
        Message::Graft(Graft {
            id: Some(i),
            round: 1,
        })
    };
    n.handle_message(t + Duration::from_secs(30), 1, graft(ids[3]));
    assert_eq!(drain(&mut n), [], "past the payload TTL");
    assert_eq!(n.cached(), 0);
    n.handle_message(t + Duration::from_secs(90), 1, Message::Prune);
    assert!(!n.has_received(&ids[3]), "past the id TTL");
}

#[test]
fn flooding_never_prunes() {
    let t = t0();
    let mut n = node_with(0, Config::flooding());
    for p in [1, 2, 3] {
        n.neighbor_up(t, p);
    }
    n.handle_message(t, 1, gossip(id(1), 1, b"f"));
    n.handle_message(t, 2, gossip(id(1), 1, b"f"));
    assert_eq!(
        drain(&mut n),
        [
            received(id(1), 1, 1, b"f"),
            send(2, gossip(id(1), 2, b"f")),
            send(3, gossip(id(1), 2, b"f"))
        ]
    );
    assert_eq!(eager(&n), [1, 2, 3]);
    assert_eq!(n.poll_timeout(), None);
}

#[test]
fn time_going_back_is_the_last_time() {
    let t = t0();
    let mut n = node(0, &[1, 2], t + ms(500));
    n.handle_message(t + ms(500), 2, Message::Prune);
    n.handle_message(t, 1, gossip(id(1), 1, b"t"));
    drain(&mut n);
    assert_eq!(n.poll_timeout(), Some(t + ms(520)));
}

#[test]
fn an_early_announcement_at_a_much_lower_round_swaps_links_on_receipt() {
    let t = t0();
    let mut n = node(0, &[1, 2, 3], t);
    n.handle_message(t, 2, Message::Prune);
    // 2 announces at round 1; the tree's copy arrives from 1 at round 9 (1 + 7 < 9).
    n.handle_message(
        t,
        2,
        Message::IHave(vec![IHave {
            id: id(8),
            round: 1,
        }]),
    );
    n.handle_message(t + ms(50), 1, gossip(id(8), 9, b"s"));
    assert_eq!(
        drain(&mut n),
        [
            received(id(8), 1, 9, b"s"),
            send(2, Message::Graft(Graft { id: None, round: 1 })),
            send(1, Message::Prune),
            // Not to 2, which has it (it announced it) and is eager now.
            send(3, gossip(id(8), 10, b"s")),
        ]
    );
    assert_eq!((eager(&n), lazy(&n)), (vec![2, 3], vec![1]));
}

#[test]
fn a_duplicate_from_a_peer_we_just_forwarded_another_message_to_is_kept() {
    let t = t0();
    let mut n = node(0, &[1, 2, 3], t);
    // m1 comes from 1 and goes on to 2 and 3: we may be 2's parent for m1's sender.
    n.handle_message(t, 1, gossip(id(1), 2, b"a"));
    assert_eq!(
        drain(&mut n),
        [
            received(id(1), 1, 2, b"a"),
            send(2, gossip(id(1), 3, b"a")),
            send(3, gossip(id(1), 3, b"a"))
        ]
    );
    // m2 from 3, then a copy of it from 2 within the grace: no PRUNE.
    n.handle_message(t + ms(100), 3, gossip(id(2), 2, b"b"));
    drain(&mut n);
    n.handle_message(t + ms(110), 2, gossip(id(2), 3, b"b"));
    assert_eq!(drain(&mut n), []);
    assert_eq!(n.stats().prunes_deferred, 1);
    // A copy of m1 itself from 2 is no reason to keep 2 (we forwarded it m1, not another
    // message): but m2 went to 2 as well at +100 ms, so 2 is still kept until the grace
    // of both has passed.
    n.handle_message(t + ms(120), 2, gossip(id(1), 4, b"a"));
    assert_eq!(drain(&mut n), []);
    assert_eq!(n.stats().prunes_deferred, 2);
    // Past the grace, a redundant copy from 2 prunes it.
    n.handle_message(t + ms(700), 1, gossip(id(3), 2, b"c"));
    drain(&mut n);
    n.handle_message(t + ms(1300), 2, gossip(id(3), 3, b"c"));
    assert_eq!(drain(&mut n), [send(2, Message::Prune)]);
    assert_eq!(lazy(&n), [2]);
}

#[test]
fn a_duplicate_from_a_recent_parent_is_kept_then_pruned_later() {
    let t = t0();
    let mut n = node(0, &[1, 2, 3], t);
    // 2 delivers m1 first: it is our parent for m1's sender.
    n.handle_message(t, 2, gossip(id(1), 2, b"a"));
    drain(&mut n);
    // m2 comes first from 1, then a copy from 2 within the grace: no PRUNE (with concurrent
    // senders the copies cross on a cycle, and 2 is still on m1's path).
    n.handle_message(t + ms(100), 1, gossip(id(2), 2, b"b"));
    drain(&mut n);
    n.handle_message(t + ms(110), 2, gossip(id(2), 3, b"b"));
    assert_eq!(drain(&mut n), []);
    assert_eq!(n.stats().prunes_deferred, 1);
    assert_eq!(eager(&n), [1, 2, 3]);
    // Past the grace, the next redundant copy from 2 prunes it.
    n.handle_message(t + ms(600), 1, gossip(id(3), 2, b"c"));
    drain(&mut n);
    n.handle_message(t + ms(610), 2, gossip(id(3), 3, b"c"));
    assert_eq!(drain(&mut n), [send(2, Message::Prune)]);
    assert_eq!(lazy(&n), [2]);
}

/// Steady traffic keeps a link within its grace forever: after `max_prune_deferrals`
/// deferred prunes in a row the next redundant copy prunes it anyway.
#[test]
fn steady_traffic_defers_a_prune_at_most_max_prune_deferrals_times() {
    let t = t0();
    let mut n = node(0, &[1, 2, 3], t);
    let cap = Config::default().max_prune_deferrals;
    assert_eq!(cap, 4);
    // m0 from 1 goes on to 2 and 3.
    n.handle_message(t, 1, gossip(id(100), 2, b"x"));
    drain(&mut n);
    // Then a message every 20 ms, first from 1 (and on to 2), then a copy from 2: the
    // previous message went to 2 20 ms before, so every copy is within the grace.
    let mut pruned_at = None;
    for k in 1..=10u8 {
        let at = t + ms(20 * u64::from(k));
        n.handle_message(at, 1, gossip(id(k), 2, b"x"));
        drain(&mut n);
        n.handle_message(at + ms(5), 2, gossip(id(k), 3, b"x"));
        let out = drain(&mut n);
        if out == [send(2, Message::Prune)] {
            pruned_at = Some(u32::from(k));
            break;
        }
        assert_eq!(out, []);
    }
    assert_eq!(n.stats().prunes_deferred, u64::from(cap));
    assert_eq!(pruned_at, Some(cap + 1));
    assert_eq!(lazy(&n), [2]);
}
