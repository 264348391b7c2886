//! One node driven by hand: timers, pushes, hostile messages, bounded replies, lost
//! chunks, blocked garbage collection, retirement, full transfers and restarts.

use std::time::{Duration, Instant};

use bytes::Bytes;
use epidemic_bvv::{
    Bvv, Config, Context, Dcc, Dot, Event, MemoryStore, Message, NodeClock, Storage, SyncEntry,
    SyncReply, Watermark,
};
use epidemic_core::codec::{DecodeError, decode, encode, encoded_len};
use epidemic_core::{Machine, Output};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use smallvec::SmallVec;

type Node = Bvv<MemoryStore, ChaCha8Rng>;
type Out = Output<u64, Message, Event>;

#[allow(clippy::disallowed_methods)] // a test's epoch; nothing reads time after
fn epoch() -> Instant {
    Instant::now()
}

fn node(id: u64, members: &[u64], cfg: &Config, t: Instant) -> Node {
    Bvv::new(
        t,
        id,
        members.iter().copied(),
        cfg.clone(),
        MemoryStore::new(),
        ChaCha8Rng::seed_from_u64(id),
    )
    .unwrap()
}

fn drain(n: &mut Node) -> Vec<Out> {
    std::iter::from_fn(|| n.poll_output()).collect()
}

fn quiet() -> Config {
    Config {
        push_writes: false,
        ..Config::default()
    }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Delivers `from`'s sends addressed to `to`, returning how many.
fn deliver(from: &mut Node, to: &mut Node, t: Instant, keep: impl Fn(usize) -> bool) -> usize {
    let mut n = 0;
    for (i, o) in drain(from).into_iter().enumerate() {
        if let Output::Send { to: dst, msg } = o {
            assert_eq!(dst, to.id());
            if keep(i) {
                to.handle_message(t, from.id(), msg);
                n += 1;
            }
        }
    }
    n
}

/// `a` syncs from `b`, every message delivered.
fn sync(a: &mut Node, b: &mut Node, t: Instant) {
    a.sync_with(t, b.id()).unwrap();
    deliver(a, b, t, |_| true);
    deliver(b, a, t, |_| true);
    drain(a);
}

#[test]
fn the_timer_sends_one_clock_to_one_member() {
    let t = epoch();
    let mut n = node(0, &[0, 1, 2], &quiet(), t);
    let at = n.poll_timeout().unwrap();
    assert!(at < t + Duration::from_secs(1));
    n.handle_timeout(at - Duration::from_nanos(1));
    assert!(drain(&mut n).is_empty());
    n.handle_timeout(at);
    let out = drain(&mut n);
    assert_eq!(out.len(), 1);
    assert!(
        matches!(&out[0], Output::Send { to: 1 | 2, msg: Message::SyncRequest { clock, .. } } if clock.is_empty())
    );
    assert_eq!(n.poll_timeout(), Some(at + Duration::from_secs(1)));
}

#[test]
fn a_write_is_pushed_to_every_member_and_acknowledged_with_its_dot() {
    let t = epoch();
    let mut n = node(5, &[5, 1, 2], &Config::default(), t);
    let dot = n.put(t, b("k"), b("v"), &Context::new()).unwrap();
    assert_eq!(dot, Dot::new(5, 1));
    let mut dcc = Dcc::new();
    dcc.add(dot, b("v"));
    let entry = SyncEntry {
        key: b("k"),
        dots: SmallVec::from_slice(&[dot]),
        dcc,
    };
    let push = Message::Push {
        entries: vec![entry],
    };
    assert_eq!(
        drain(&mut n),
        [
            Output::Send {
                to: 1,
                msg: push.clone()
            },
            Output::Send { to: 2, msg: push },
        ]
    );
    // At rest: one pair, no context.
    let stored = n.store().get(b"k").unwrap();
    assert_eq!((stored.metadata_pairs(), stored.context().len()), (1, 0));
    assert_eq!(n.log().len(), 1);
}

#[test]
fn hostile_messages_are_dropped_and_counted() {
    let t = epoch();
    let cfg = Config {
        max_clock_ids: 1,
        ..quiet()
    };
    let mut n = node(0, &[0, 1], &cfg, t);
    n.put(t, b("k"), b("v"), &Context::new()).unwrap();
    // A clock claiming this node's future dots.
    let mut lie = NodeClock::new();
    assert!(lie.add(Dot::new(0, 1)));
    assert!(lie.add(Dot::new(0, 2)));
    n.handle_message(
        t,
        1,
        Message::SyncRequest {
            request: 0,
            clock: lie.clone(),
            resume: None,
        },
    );
    assert!(drain(&mut n).is_empty());
    // An entry naming a dot its container does not cover, and one naming our future.
    let bad = |dot: Dot| SyncEntry {
        key: b("x"),
        dots: SmallVec::from_slice(&[dot]),
        dcc: Dcc::new(),
    };
    n.handle_message(
        t,
        1,
        Message::Push {
            entries: vec![bad(Dot::new(1, 1))],
        },
    );
    let mut covered = Dcc::new();
    covered.add(Dot::new(0, 9), b("forged"));
    n.handle_message(
        t,
        1,
        Message::Push {
            entries: vec![SyncEntry {
                key: b("x"),
                dots: SmallVec::from_slice(&[Dot::new(0, 9)]),
                dcc: covered,
            }],
        },
    );
    // A dot of an id nobody knows, with the clock at its bound of ids.
    let mut invented = Dcc::new();
    invented.add(Dot::new(4242, 1_000_000), b("x"));
    n.handle_message(
        t,
        1,
        Message::Push {
            entries: vec![SyncEntry {
                key: b("x"),
                dots: SmallVec::from_slice(&[Dot::new(4242, 1_000_000)]),
                dcc: invented,
            }],
        },
    );
    // A reply with a clock claiming our future.
    n.handle_message(
        t,
        1,
        Message::SyncReply(SyncReply {
            request: 0,
            session: 0,
            total: 1,
            full: true,
            next: None,
            clock: lie,
            watermark: Watermark::new(),
            entries: vec![],
        }),
    );
    // A stranger.
    n.handle_message(
        t,
        9,
        Message::SyncRequest {
            request: 0,
            clock: NodeClock::new(),
            resume: None,
        },
    );
    let s = n.stats();
    assert_eq!((s.dropped_hostile, s.dropped_non_member), (5, 1));
    assert!(n.clock().entry(4242).is_none());
    assert_eq!(n.clock().base(0), 1);
    assert!(!n.clock().contains(Dot::new(1, 1)));
    assert!(n.store().get(b"x").is_none());
}

#[test]
fn hostile_bytes_never_decode_into_a_huge_bitmap() {
    // A SyncRequest (request 0) with one entry (id 7, base 3) and `words` bitmap words of value 2.
    let request = |words: usize, varint: &[u8]| {
        let mut bytes = vec![6, 1, 0, 0, 1, 7, 3];
        bytes.extend_from_slice(varint);
        bytes.extend(std::iter::repeat_n(2u8, words));
        bytes.push(0); // no resume key
        decode::<Message>(&bytes)
    };
    assert!(request(16_384, &[0x80, 0x80, 0x01]).is_ok());
    assert_eq!(
        request(16_385, &[0x81, 0x80, 0x01]),
        Err(DecodeError::Malformed)
    );
    assert_eq!(decode::<Message>(&[6, 1, 9]), Err(DecodeError::Malformed));
}

#[test]
fn a_big_reply_is_split_and_a_lost_chunk_comes_back_exactly() {
    let t = epoch();
    let cfg = Config {
        max_message_bytes: 2048,
        max_value_bytes: 200,
        ..quiet()
    };
    let mut a = node(0, &[0, 1], &cfg, t);
    let mut bnode = node(1, &[0, 1], &cfg, t);
    for k in 0..60 {
        bnode
            .put(
                t,
                b(&format!("key{k:03}")),
                Bytes::from(vec![7u8; 100]),
                &Context::new(),
            )
            .unwrap();
    }
    a.sync_with(t, 1).unwrap();
    deliver(&mut a, &mut bnode, t, |_| true);
    let out = drain(&mut bnode);
    assert!(out.len() >= 4, "{} messages", out.len());
    for o in &out {
        let Output::Send { msg, .. } = o else {
            panic!("only sends")
        };
        assert!(encoded_len(msg) <= 2048, "{}", encoded_len(msg));
    }
    // Lose the second message.
    let mut lost_keys = Vec::new();
    for (i, o) in out.into_iter().enumerate() {
        let Output::Send { msg, .. } = o else {
            continue;
        };
        if i == 1 {
            let Message::SyncMore { entries, .. } = &msg else {
                panic!("a further chunk")
            };
            lost_keys = entries.iter().map(|e| e.key.clone()).collect();
            continue;
        }
        a.handle_message(t, 1, msg);
    }
    assert!(!lost_keys.is_empty());
    assert_eq!(a.store().len(), 60 - lost_keys.len());
    assert_eq!(a.clock().missing_count(bnode.clock()), 0);
    assert_eq!(
        bnode.clock().missing_count(a.clock()),
        lost_keys.len() as u64
    );
    // The next sync ships exactly the lost keys.
    let sent = bnode.stats().entries_sent;
    sync(&mut a, &mut bnode, t);
    assert_eq!(bnode.stats().entries_sent - sent, lost_keys.len() as u64);
    assert_eq!(a.store().len(), 60);
    assert_eq!(a.clock(), bnode.clock());
    assert_eq!(a.stats().entries_redundant, 0);
}

#[test]
fn a_silent_member_blocks_truncation_is_reported_and_can_be_retired() {
    let t = epoch();
    let cfg = Config {
        gc_block_report: Duration::from_secs(5),
        ..quiet()
    };
    let mut n0 = node(0, &[0, 1, 2], &cfg, t);
    let mut n1 = node(1, &[0, 1, 2], &cfg, t);
    n0.put(t, b("k"), b("v"), &Context::new()).unwrap();
    sync(&mut n1, &mut n0, t);
    sync(&mut n0, &mut n1, t);
    // Node 2 never speaks: the dot stays logged.
    assert_eq!(n0.log().len(), 1);
    let later = t + Duration::from_secs(6);
    let at = n0.poll_timeout().unwrap().max(later);
    n0.handle_timeout(at);
    let events: Vec<Event> = drain(&mut n0)
        .into_iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(events.len(), 1);
    assert!(matches!(
        events[0],
        Event::GcBlocked {
            peer: 2,
            pending_dots: 1,
            ..
        }
    ));
    n0.retire_peer(at, 2).unwrap();
    assert_eq!(
        drain(&mut n0),
        [Output::Event(Event::PeerRetired { peer: 2 })]
    );
    assert!(n0.log().is_empty());
    // The retired id is refused from now on.
    n0.handle_message(
        at,
        2,
        Message::SyncRequest {
            request: 0,
            clock: NodeClock::new(),
            resume: None,
        },
    );
    assert!(drain(&mut n0).is_empty());
    assert_eq!(n0.stats().dropped_non_member, 1);
}

#[test]
fn automatic_retirement_after_a_long_silence() {
    let t = epoch();
    let cfg = Config {
        gc_block_report: Duration::from_secs(5),
        retire_after: Some(Duration::from_secs(20)),
        ..quiet()
    };
    let mut n0 = node(0, &[0, 1], &cfg, t);
    n0.put(t, b("k"), b("v"), &Context::new()).unwrap();
    n0.handle_timeout(t + Duration::from_secs(21));
    let out = drain(&mut n0);
    assert!(out.contains(&Output::Event(Event::PeerRetired { peer: 1 })));
    assert!(n0.members().is_empty());
}

#[test]
fn a_replacement_node_gets_a_full_transfer() {
    let t = epoch();
    let mut n0 = node(0, &[0, 1], &quiet(), t);
    let mut n1 = node(1, &[0, 1], &quiet(), t);
    for k in 0..10 {
        n0.put(t, b(&format!("k{k}")), b("v"), &Context::new())
            .unwrap();
    }
    let ctx = n0.get(b"k3").context;
    n0.delete(t, b("k3"), &ctx).unwrap();
    for _ in 0..2 {
        sync(&mut n1, &mut n0, t);
        sync(&mut n0, &mut n1, t);
    }
    assert!(n0.log().is_empty() && n1.log().is_empty());
    assert_eq!(n0.store().len(), 9);
    // Node 1 lost its disk and comes back as node 7.
    n0.replace_peer(t, 1, 7).unwrap();
    let mut n7 = node(7, &[0, 7], &quiet(), t);
    sync(&mut n7, &mut n0, t);
    assert_eq!(n0.stats().full_transfers_sent, 1);
    assert_eq!(n7.stats().full_transfers_applied, 1);
    assert_eq!(n7.store(), n0.store());
    assert_eq!(n7.clock(), n0.clock());
    assert!(n7.get(b"k3").values.is_empty());
    // From now on, syncs are incremental again.
    n0.put(t, b("k1"), b("w"), &n0.get(b"k1").context).unwrap();
    let before = n0.stats().entries_sent;
    sync(&mut n7, &mut n0, t);
    assert_eq!(n0.stats().entries_sent - before, 1);
    assert_eq!(n0.stats().full_transfers_sent, 1);
}

/// Exchanges messages between two nodes until neither has anything to send.
fn pump(a: &mut Node, b: &mut Node, t: Instant) {
    loop {
        let n = deliver(a, b, t, |_| true) + deliver(b, a, t, |_| true);
        if n == 0 {
            break;
        }
    }
}

#[test]
fn a_full_transfer_goes_page_by_page() {
    let t = epoch();
    let cfg = Config {
        max_keys_per_sync: 3,
        ..quiet()
    };
    let mut n0 = node(0, &[0, 1], &cfg, t);
    let mut n1 = node(1, &[0, 1], &cfg, t);
    for k in 0..10 {
        n0.put(t, b(&format!("k{k}")), b("v"), &Context::new())
            .unwrap();
    }
    for _ in 0..8 {
        n1.sync_with(t, 0).unwrap();
        pump(&mut n1, &mut n0, t);
        n0.sync_with(t, 1).unwrap();
        pump(&mut n0, &mut n1, t);
    }
    assert!(n0.log().is_empty());
    n0.replace_peer(t, 1, 7).unwrap();
    let mut n7 = node(7, &[0, 7], &cfg, t);
    n7.sync_with(t, 0).unwrap();
    // Lose the second page's reply: the pass stalls, then resumes where it stood.
    deliver(&mut n7, &mut n0, t, |_| true);
    deliver(&mut n0, &mut n7, t, |_| true);
    deliver(&mut n7, &mut n0, t, |_| true);
    deliver(&mut n0, &mut n7, t, |_| false);
    assert_eq!(n7.store().len(), 3);
    assert_eq!(n7.stats().full_transfers_applied, 0);
    // It holds the first page's values, and their dots: the clock is not joined yet.
    assert_eq!(n0.clock().missing_count(n7.clock()), 7);
    n7.sync_with(t, 0).unwrap();
    pump(&mut n7, &mut n0, t);
    assert_eq!(n0.stats().full_transfers_sent, 5); // 4 pages, the lost one twice
    assert_eq!(n7.stats().full_transfers_applied, 1);
    assert_eq!(n7.store(), n0.store());
    assert_eq!(n7.clock(), n0.clock());
}

#[test]
fn durable_state_survives_a_restart() {
    let t = epoch();
    let mut n = node(0, &[0, 1], &quiet(), t);
    n.put(t, b("k"), b("v"), &Context::new()).unwrap();
    let d = n.take_durable();
    let mut r: Node = Bvv::restore(t, quiet(), d, ChaCha8Rng::seed_from_u64(1)).unwrap();
    assert_eq!(r.get(b"k").values, [b("v")]);
    assert_eq!(
        r.put(t, b("k"), b("w"), &Context::new()).unwrap(),
        Dot::new(0, 2)
    );
    assert_eq!(
        encode(&Message::SyncRequest {
            request: 0,
            clock: r.clock().clone(),
            resume: None,
        })
        .unwrap()
        .len(),
        9
    );
}

#[test]
fn a_stale_duplicated_request_is_ignored() {
    let t = epoch();
    let mut a = node(0, &[0, 1], &quiet(), t);
    let mut bn = node(1, &[0, 1], &quiet(), t);
    a.sync_with(t, 1).unwrap();
    let old = drain(&mut a);
    a.put(t, b("k"), b("v"), &Context::new()).unwrap();
    sync(&mut bn, &mut a, t); // b learns a's newer clock from a's reply
    sync(&mut a, &mut bn, t);
    let Output::Send { msg, .. } = old.into_iter().next().unwrap() else {
        panic!("a request")
    };
    bn.handle_message(t, 0, msg);
    assert!(drain(&mut bn).is_empty());
    assert_eq!(bn.stats().stale_requests, 1);
    assert_eq!(bn.stats().full_transfers_sent, 0);
}

#[test]
fn the_lost_dots_of_a_retired_node_can_be_declared_lost() {
    let t = epoch();
    let mut n0 = node(0, &[0, 1, 2], &quiet(), t);
    let mut n1 = node(1, &[0, 1, 2], &quiet(), t);
    let pushing = Config::default();
    let mut n2 = node(2, &[0, 1, 2], &pushing, t);
    for k in 1..=3 {
        n2.put(t, b(&format!("k{k}")), b("v"), &Context::new())
            .unwrap();
        // Only the first and third writes ever leave node 2.
        for o in drain(&mut n2) {
            if let Output::Send { to, msg } = o {
                if k != 2 {
                    let n = if to == 0 { &mut n0 } else { &mut n1 };
                    n.handle_message(t, 2, msg);
                }
            }
        }
    }
    // Node 2's disk is gone: retire it; the gap at (2, 2) holds (2, 3) in the logs.
    for n in [&mut n0, &mut n1] {
        n.retire_peer(t, 2).unwrap();
        drain(n);
    }
    for _ in 0..2 {
        sync(&mut n0, &mut n1, t);
        sync(&mut n1, &mut n0, t);
    }
    assert_eq!((n0.log().len(), n1.log().len()), (1, 1));
    assert_eq!(
        n0.close_retired(t, 1),
        Err(epidemic_bvv::Error::UnknownPeer(1))
    );
    for n in [&mut n0, &mut n1] {
        n.close_retired(t, 2).unwrap();
    }
    sync(&mut n0, &mut n1, t);
    sync(&mut n1, &mut n0, t);
    assert!(n0.log().is_empty() && n1.log().is_empty());
    assert_eq!(n0.clock().base(2), 3);
    assert_eq!(n0.store(), n1.store());
    assert_eq!(n0.store().len(), 2);
}
