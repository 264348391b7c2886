//! A node that coordinates a read it is itself a replica of: requests to itself are
//! handled in memory, and its own store is repaired like any other.

use std::collections::VecDeque;
use std::time::Instant;

use epidemic_core::{Machine, Output};
use epidemic_read_repair::{
    Config, DataReplica, Event, LastWriteWins, Level, MemoryStore, Node, ReadOptions, RepairMode,
    Schema, SpeculativeRetry, Store,
};

#[derive(Debug, Clone, PartialEq, Eq)]
struct S;
impl Schema for S {
    type Key = u8;
    type Cell = u8;
    type Value = u32;
    type Version = u64;
}

type N = Node<u64, S, MemoryStore<S>, LastWriteWins>;

#[test]
fn a_coordinator_that_is_a_replica_reads_and_repairs_itself() {
    let config = Config {
        speculative_retry: SpeculativeRetry::Never,
        data_replica: DataReplica::First,
        ..Config::default()
    };
    let mut nodes: Vec<N> = (0..3u64)
        .map(|me| Node::new(me, config.clone(), MemoryStore::new(8), LastWriteWins).unwrap())
        .collect();
    // Node 0 missed the newest write of cell 1; node 1 has it.
    for n in &mut nodes {
        n.responder_mut().write(5, 0, 1, 10);
        n.responder_mut().write(5, 1, 2, 20);
    }
    nodes[1].responder_mut().write(5, 1, 3, 30);
    #[allow(clippy::disallowed_methods)] // an epoch
    let now = Instant::now();
    let all = ReadOptions {
        level: Level::All,
        repair: RepairMode::Blocking,
    };
    nodes[0].read(now, 5, &[0, 1, 2], all).unwrap();
    let mut wire: VecDeque<(u64, u64, _)> = VecDeque::new();
    let mut events = Vec::new();
    loop {
        for (me, n) in (0u64..).zip(nodes.iter_mut()) {
            while let Some(out) = n.poll_output() {
                match out {
                    Output::Send { to, msg } => {
                        assert_ne!(to, me, "self-sends never reach the network");
                        wire.push_back((me, to, msg));
                    }
                    Output::Event(e) => events.push(e),
                    Output::Disconnect(_) => {}
                }
            }
        }
        let Some((from, to, msg)) = wire.pop_front() else {
            break;
        };
        nodes[usize::try_from(to).unwrap()].handle_message(now, from, msg);
    }
    let [Event::ReadDone(d)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(d.round_trips, 3);
    assert_eq!(d.repaired.as_slice(), [0, 2]);
    assert!(
        nodes[0].local_messages() >= 4,
        "request, answer, repair, ack in memory"
    );
    for n in &nodes {
        let r = n.responder().store().get(&5).unwrap();
        assert_eq!(r.get(&1).unwrap()[0].value, 30);
        assert_eq!(r.get(&0).unwrap()[0].value, 10);
    }
}

#[test]
fn a_full_store_refuses_a_repair_and_does_not_acknowledge_it() {
    use epidemic_read_repair::{Message, Record, Responder};
    let mut r: Responder<u64, S, MemoryStore<S>, LastWriteWins> =
        Responder::new(MemoryStore::new(1), LastWriteWins);
    assert!(r.write(1, 0, 1, 10));
    #[allow(clippy::disallowed_methods)] // an epoch
    let now = Instant::now();
    // A second key does not fit: the repair is refused, counted, and not acknowledged.
    let diff = Record::single(0, 2, 20);
    r.handle_message(
        now,
        9,
        Message::Repair {
            id: 4,
            key: 2,
            diff: diff.clone(),
            ack: true,
        },
    );
    assert_eq!(r.poll_output(), None);
    assert_eq!((r.stats().repairs_refused, r.store().refused()), (1, 1));
    // The key it holds is repaired and acknowledged; a repeat changes nothing but is
    // still acknowledged (the coordinator may have lost the first ack).
    for _ in 0..2 {
        r.handle_message(
            now,
            9,
            Message::Repair {
                id: 5,
                key: 1,
                diff: diff.clone(),
                ack: true,
            },
        );
        assert_eq!(
            r.poll_output(),
            Some(Output::Send {
                to: 9,
                msg: Message::RepairAck { id: 5 }
            })
        );
    }
    assert_eq!(r.stats().repairs_applied, 1);
    // Answers sent to a replica are counted and dropped.
    r.handle_message(now, 9, Message::RepairAck { id: 5 });
    assert_eq!((r.poll_output(), r.stats().unexpected), (None, 1));
    // Data and digest requests are answered from the store.
    r.handle_message(now, 9, Message::ReadDigest { id: 6, key: 1 });
    let Some(Output::Send {
        msg: Message::Digest { digest, .. },
        ..
    }) = r.poll_output()
    else {
        panic!("a digest answer")
    };
    assert_eq!(
        digest,
        epidemic_read_repair::digest(r.store().get(&1).as_deref())
    );
}
