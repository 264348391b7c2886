// The op-sequence harness shared by `tests/ops.rs` and the `read_repair_ops` fuzz target
// (both `include!` it): a coordinator under arbitrary reads, answers, acknowledgements,
// lost links and time jumps, with its invariants asserted; `check` returns the reads done.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use epidemic_core::{Machine, Output};
use epidemic_read_repair::{
    Config, Coordinator, DataReplica, Event, LastWriteWins, Level, Message, ReadOptions, Record,
    RepairMode, Schema, SpeculativeRetry, digest,
};

#[derive(Debug, Clone, PartialEq, Eq)]
struct S;
impl Schema for S {
    type Key = u8;
    type Cell = u8;
    type Value = u8;
    type Version = u8;
}

#[derive(Debug, Arbitrary)]
enum Op {
    Read {
        key: u8,
        replicas: Vec<u8>,
        level: u8,
        repair: u8,
    },
    Data {
        from: u8,
        id: u8,
        cells: Vec<(u8, u8, u8)>,
        none: bool,
    },
    Digest {
        from: u8,
        id: u8,
        cells: Vec<(u8, u8, u8)>,
    },
    Ack {
        from: u8,
        id: u8,
    },
    LinkDown(u8),
    Advance(u16),
}

#[derive(Debug, Arbitrary)]
struct Input {
    speculation: u8,
    data_replica: bool,
    digest_reads: bool,
    ops: Vec<Op>,
}

fn record(cells: &[(u8, u8, u8)]) -> Record<S> {
    let mut r = Record::new();
    for &(c, v, x) in cells.iter().take(16) {
        r.insert(c, v, x, &LastWriteWins);
    }
    r
}

fn check(input: Input) -> u64 {
    let mut done = 0;
    let config = Config {
        speculative_retry: match input.speculation % 4 {
            0 => SpeculativeRetry::Never,
            1 => SpeculativeRetry::Always,
            2 => SpeculativeRetry::Fixed(Duration::from_millis(20)),
            _ => SpeculativeRetry::Percentile(0.9),
        },
        data_replica: if input.data_replica {
            DataReplica::First
        } else {
            DataReplica::LowestLatency
        },
        digest_reads: input.digest_reads,
        max_in_flight: 8,
        max_lingering: 8,
        read_timeout: Duration::from_millis(500),
        ..Config::default()
    };
    let mut c: Coordinator<u8, S, LastWriteWins> = Coordinator::new(config, LastWriteWins).unwrap();
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let mut now = start;
    // Accepted reads not yet ended, with their start.
    let mut open: BTreeMap<u64, Instant> = BTreeMap::new();
    for op in input.ops.into_iter().take(256) {
        let mut deadline_passed = false;
        match op {
            Op::Read {
                key,
                replicas,
                level,
                repair,
            } => {
                let replicas: Vec<u8> = replicas.into_iter().take(8).map(|r| r % 8).collect();
                let level = match level % 6 {
                    0 => Level::One,
                    1 => Level::Two,
                    2 => Level::Quorum,
                    3 => Level::All,
                    4 => Level::Three,
                    n => Level::Count(n),
                };
                let repair = match repair % 3 {
                    0 => RepairMode::Blocking,
                    1 => RepairMode::Async,
                    _ => RepairMode::None,
                };
                if let Ok(id) = c.read(now, key, &replicas, ReadOptions { level, repair }) {
                    assert!(open.insert(id, now).is_none(), "ids are unique");
                }
            }
            Op::Data {
                from,
                id,
                cells,
                none,
            } => {
                let rec = (!none).then(|| record(&cells));
                c.handle_message(
                    now,
                    from % 9,
                    Message::Data {
                        id: u64::from(id % 16),
                        record: rec,
                    },
                );
            }
            Op::Digest { from, id, cells } => {
                let d = digest(Some(&record(&cells)));
                c.handle_message(
                    now,
                    from % 9,
                    Message::Digest {
                        id: u64::from(id % 16),
                        digest: d,
                    },
                );
            }
            Op::Ack { from, id } => c.handle_message(
                now,
                from % 9,
                Message::RepairAck {
                    id: u64::from(id % 16),
                },
            ),
            Op::LinkDown(p) => c.handle_link_down(now, p % 9),
            Op::Advance(ms) => {
                now += Duration::from_millis(u64::from(ms));
                c.handle_timeout(now);
                deadline_passed = true;
            }
        }
        assert!(c.in_flight() <= 8);
        while let Some(out) = c.poll_output() {
            if let Output::Event(e) = out {
                let id = match &e {
                    Event::ReadDone(d) => d.id,
                    Event::ReadFailed { id, .. } => *id,
                };
                open.remove(&id).expect("each read ends once");
                if let Event::ReadDone(d) = e {
                    done += 1;
                    if let Some(v) = &d.value {
                        assert!(
                            v.cells().all(|(_, s)| s.len() == 1),
                            "LWW keeps one version"
                        );
                    }
                    assert!(d.level_met >= 1);
                }
            }
        }
        assert_eq!(c.in_flight(), open.len());
        if deadline_passed {
            // A timeout call at or after a read's deadline ends it.
            assert!(open.values().all(|&t| t + Duration::from_millis(500) > now));
        }
    }
    // Past every deadline, every read has ended.
    now += Duration::from_secs(1);
    c.handle_timeout(now);
    while let Some(out) = c.poll_output() {
        if let Output::Event(Event::ReadDone(d)) = &out {
            open.remove(&d.id);
        } else if let Output::Event(Event::ReadFailed { id, .. }) = &out {
            open.remove(id);
        }
    }
    assert!(open.is_empty(), "reads left open: {open:?}");
    assert_eq!(c.in_flight(), 0);
    done
}
