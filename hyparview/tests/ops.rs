//! Property test: one node under arbitrary input sequences from a small set of peers (any
//! message, TTL, list or data; timeouts, also backwards; lost links; joins; leaves) never
//! panics and keeps its views within bounds, disjoint and free of itself. The fuzz target
//! `hyparview_ops` runs the same checks without a bound on the search.

use std::time::{Duration, Instant};

use bytes::Bytes;
use epidemic_core::Machine;
use epidemic_hyparview::{Config, HyParView, Message, PeerInfo, Priority};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone)]
enum Op {
    Msg(u64, Message<u64>),
    Timeout(u64),
    LinkDown(u64),
    Join(u64),
    Leave,
}

fn peer() -> impl Strategy<Value = u64> {
    0u64..24
}

fn infos() -> impl Strategy<Value = Vec<PeerInfo<u64>>> {
    prop::collection::vec(peer().prop_map(PeerInfo::new), 0..12)
}

fn message() -> impl Strategy<Value = Message<u64>> {
    prop_oneof![
        (0usize..600).prop_map(|n| Message::Join {
            data: Bytes::from(vec![1; n])
        }),
        (peer(), any::<u8>()).prop_map(|(p, ttl)| Message::ForwardJoin {
            peer: PeerInfo::new(p),
            ttl
        }),
        any::<bool>().prop_map(|high| Message::Neighbor {
            priority: if high { Priority::High } else { Priority::Low },
            data: Bytes::new()
        }),
        any::<bool>().prop_map(|accepted| Message::NeighborReply {
            accepted,
            data: Bytes::new()
        }),
        any::<bool>().prop_map(|alive| Message::Disconnect { alive }),
        (peer(), infos(), any::<u8>()).prop_map(|(o, peers, ttl)| Message::Shuffle {
            origin: PeerInfo::new(o),
            peers,
            ttl
        }),
        infos().prop_map(|peers| Message::ShuffleReply { peers }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (peer(), message()).prop_map(|(p, m)| Op::Msg(p, m)),
        2 => (0u64..30_000).prop_map(Op::Timeout),
        1 => peer().prop_map(Op::LinkDown),
        1 => peer().prop_map(Op::Join),
        1 => Just(Op::Leave),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_input_sequence_keeps_the_views_sound(
        seed in any::<u64>(),
        small in any::<bool>(),
        ops in prop::collection::vec(op(), 0..300),
    ) {
        let config = if small {
            Config { active_capacity: 2, passive_capacity: 3, max_pending: 2,
                     reconnect_capacity: 1, max_contacts: 2, ..Config::default() }
        } else {
            Config::default()
        };
        let c = config.clone();
        let mut n = HyParView::new(0u64, Bytes::new(), config, ChaCha8Rng::seed_from_u64(seed))
            .expect("valid config");
        #[allow(clippy::disallowed_methods)] // tests may read the clock
        let mut now = Instant::now();
        for op in ops {
            match op {
                Op::Msg(from, m) => n.handle_message(now, from, m),
                Op::Timeout(ms) => {
                    now += Duration::from_millis(ms);
                    n.handle_timeout(now);
                }
                Op::LinkDown(p) => n.handle_link_down(now, p),
                Op::Join(p) => { let _ = n.join(now, p); }
                Op::Leave => n.leave(now),
            }
            let outputs = std::iter::from_fn(|| n.poll_output()).count();
            prop_assert!(outputs <= 64, "{} outputs for one input", outputs);
            let active: Vec<u64> = n.active_view().copied().collect();
            let passive: Vec<u64> = n.passive_view().copied().collect();
            prop_assert!(active.len() <= c.active_capacity);
            prop_assert!(passive.len() <= c.passive_capacity);
            prop_assert!(n.pending_requests().count() <= c.max_pending);
            prop_assert!(n.contacts().len() <= c.max_contacts);
            prop_assert!(n.lost_neighbors().count() <= c.reconnect_capacity);
            prop_assert!(!active.contains(&0) && !passive.contains(&0));
            prop_assert!(active.iter().all(|p| !passive.contains(p)));
        }
    }
}
