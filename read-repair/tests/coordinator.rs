//! Unit tests driving one coordinator by hand and asserting on the exact outputs.

use std::time::{Duration, Instant};

use epidemic_core::{Machine, Output};
use epidemic_read_repair::{
    Config, Coordinator, DataReplica, Event, FailReason, LastWriteWins, Level, Message, ReadError,
    ReadOptions, Record, RepairMode, Schema, SpeculativeRetry, VectorResolver, VersionVector,
    digest,
};

#[derive(Debug, Clone, PartialEq, Eq)]
struct S;
impl Schema for S {
    type Key = u64;
    type Cell = u8;
    type Value = u32;
    type Version = u64;
}

type Out = Output<u64, Message<S>, Event<u64, S>>;
type C = Coordinator<u64, S, LastWriteWins>;

fn config() -> Config {
    Config {
        speculative_retry: SpeculativeRetry::Never,
        data_replica: DataReplica::First,
        ..Config::default()
    }
}

fn coordinator(config: Config) -> C {
    Coordinator::new(config, LastWriteWins).unwrap()
}

fn drain(c: &mut C) -> Vec<Out> {
    std::iter::from_fn(|| c.poll_output()).collect()
}

fn t0() -> Instant {
    #[allow(clippy::disallowed_methods)] // tests may read the clock once, as an epoch
    Instant::now()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn send(to: u64, msg: Message<S>) -> Out {
    Output::Send { to, msg }
}

/// A record with cells `(cell, version, value)`.
fn rec(cells: &[(u8, u64, u32)]) -> Record<S> {
    let mut r = Record::new();
    for &(c, v, x) in cells {
        r.insert(c, v, x, &LastWriteWins);
    }
    r
}

fn quorum(repair: RepairMode) -> ReadOptions {
    ReadOptions {
        level: Level::Quorum,
        repair,
    }
}

fn done(out: &[Out]) -> &epidemic_read_repair::ReadDone<u64, S> {
    match out.last() {
        Some(Output::Event(Event::ReadDone(d))) => d,
        other => panic!("expected ReadDone, got {other:?}"),
    }
}

#[test]
fn agreeing_replicas_answer_in_one_round_trip() {
    let mut c = coordinator(config());
    let now = t0();
    let id = c
        .read(now, 7, &[1, 2, 3], quorum(RepairMode::Blocking))
        .unwrap();
    assert_eq!(
        drain(&mut c),
        [
            send(1, Message::ReadData { id, key: 7 }),
            send(2, Message::ReadDigest { id, key: 7 }),
        ]
    );
    let big = 1 << 50;
    let r = rec(&[(1, big, 50), (2, big + 1, 60), (3, big + 2, 70)]);
    c.handle_message(
        now + ms(3),
        2,
        Message::Digest {
            id,
            digest: digest(Some(&r)),
        },
    );
    assert_eq!(drain(&mut c), []);
    c.handle_message(
        now + ms(4),
        1,
        Message::Data {
            id,
            record: Some(r.clone()),
        },
    );
    let out = drain(&mut c);
    assert_eq!(out.len(), 1);
    let d = done(&out);
    assert_eq!(
        (d.round_trips, d.level_met, d.digest_mismatch),
        (1, 2, false)
    );
    assert_eq!(d.value, Some(r));
    assert!(d.repaired.is_empty());
    assert_eq!(d.latency, ms(4));
    let s = c.stats();
    assert_eq!((s.one_round_trip, s.reads_done, s.repairs_sent), (1, 1, 0));
    assert!(s.bytes_saved_by_digests > 0);
    assert_eq!(c.in_flight(), 0);
}

#[test]
fn mismatch_fetches_only_the_differing_replica_and_blocks_on_its_repair() {
    let mut c = coordinator(config());
    let now = t0();
    let id = c
        .read(now, 7, &[1, 2, 3], quorum(RepairMode::Blocking))
        .unwrap();
    drain(&mut c);
    let fresh = rec(&[(1, 9, 90), (2, 6, 60), (3, 1, 10)]);
    let stale = rec(&[(1, 5, 50), (2, 6, 60), (3, 1, 10)]);
    c.handle_message(
        now + ms(2),
        1,
        Message::Data {
            id,
            record: Some(fresh.clone()),
        },
    );
    c.handle_message(
        now + ms(3),
        2,
        Message::Digest {
            id,
            digest: digest(Some(&stale)),
        },
    );
    assert_eq!(drain(&mut c), [send(2, Message::ReadData { id, key: 7 })]);
    c.handle_message(
        now + ms(5),
        2,
        Message::Data {
            id,
            record: Some(stale),
        },
    );
    // Only cell 1 goes to replica 2, and the read waits for its acknowledgement.
    assert_eq!(
        drain(&mut c),
        [send(
            2,
            Message::Repair {
                id,
                key: 7,
                diff: rec(&[(1, 9, 90)]),
                ack: true
            }
        )]
    );
    c.handle_message(now + ms(7), 2, Message::RepairAck { id });
    let out = drain(&mut c);
    let d = done(&out);
    assert_eq!((d.round_trips, d.digest_mismatch), (3, true));
    assert_eq!(d.value, Some(fresh));
    assert_eq!(d.repaired.as_slice(), [2]);
    let s = c.stats();
    assert_eq!(
        (s.digest_mismatches, s.extra_round_trips, s.repairs_sent),
        (1, 2, 1)
    );
    assert!(s.repair_bytes < s.whole_record_bytes);
    // A second acknowledgement is late, not a problem.
    c.handle_message(now + ms(8), 2, Message::RepairAck { id });
    assert_eq!(drain(&mut c), []);
    assert_eq!(c.stats().late_responses, 1);
}

#[test]
fn async_repair_answers_before_the_repair_lands() {
    let mut c = coordinator(config());
    let now = t0();
    let id = c
        .read(now, 7, &[1, 2, 3], quorum(RepairMode::Async))
        .unwrap();
    drain(&mut c);
    c.handle_message(now, 1, Message::Data { id, record: None });
    c.handle_message(
        now,
        2,
        Message::Digest {
            id,
            digest: digest(Some(&rec(&[(0, 1, 1)]))),
        },
    );
    drain(&mut c);
    c.handle_message(
        now,
        2,
        Message::Data {
            id,
            record: Some(rec(&[(0, 1, 1)])),
        },
    );
    let out = drain(&mut c);
    assert_eq!(
        out[0],
        send(
            1,
            Message::Repair {
                id,
                key: 7,
                diff: rec(&[(0, 1, 1)]),
                ack: false
            }
        )
    );
    let d = done(&out);
    assert_eq!(d.round_trips, 2);
    assert_eq!(d.value, Some(rec(&[(0, 1, 1)])));
    assert_eq!(out.len(), 2);
}

#[test]
fn refused_reads_change_nothing() {
    let mut c = coordinator(Config {
        max_in_flight: 1,
        ..config()
    });
    let now = t0();
    let all = ReadOptions {
        level: Level::Count(4),
        repair: RepairMode::Blocking,
    };
    assert_eq!(
        c.read(now, 1, &[1, 2, 3], all),
        Err(ReadError::Unavailable {
            required: 4,
            replicas: 3
        })
    );
    assert_eq!(
        c.read(now, 1, &[], ReadOptions::default()),
        Err(ReadError::Unavailable {
            required: 1,
            replicas: 0
        })
    );
    assert_eq!(
        c.read(now, 1, &[1, 2, 1], ReadOptions::default()),
        Err(ReadError::DuplicateReplica)
    );
    assert_eq!(drain(&mut c), []);
    assert!(c.read(now, 1, &[1], ReadOptions::default()).is_ok());
    assert_eq!(
        c.read(now, 2, &[1], ReadOptions::default()),
        Err(ReadError::TooManyReads { max: 1 })
    );
    assert_eq!(c.stats().reads_refused, 4);
}

#[test]
fn hostile_answers_are_dropped_and_counted() {
    let mut c = coordinator(config());
    let now = t0();
    let id = c
        .read(now, 7, &[1, 2, 3], quorum(RepairMode::Blocking))
        .unwrap();
    drain(&mut c);
    c.handle_message(
        now,
        1,
        Message::Data {
            id: id + 99,
            record: None,
        },
    ); // unknown id
    c.handle_message(now, 3, Message::Data { id, record: None }); // not asked
    c.handle_message(
        now,
        9,
        Message::Digest {
            id,
            digest: digest::<S>(None),
        },
    ); // stranger
    c.handle_message(
        now,
        1,
        Message::Digest {
            id,
            digest: digest::<S>(None),
        },
    ); // asked data
    c.handle_message(now, 2, Message::RepairAck { id }); // no repair sent
    c.handle_message(now, 2, Message::ReadData { id, key: 1 }); // a request
    c.handle_message(
        now,
        2,
        Message::Digest {
            id,
            digest: digest::<S>(None),
        },
    );
    c.handle_message(
        now,
        2,
        Message::Digest {
            id,
            digest: digest::<S>(None),
        },
    ); // duplicate
    assert_eq!(drain(&mut c), []);
    let s = *c.stats();
    assert_eq!(s.unknown_id, 1);
    assert_eq!(s.wrong_replica, 2);
    assert_eq!(s.unexpected, 3);
    assert_eq!(s.duplicate_responses, 1);
    c.handle_message(now, 1, Message::Data { id, record: None });
    let out = drain(&mut c);
    assert_eq!(done(&out).value, None);
}

#[test]
fn silent_replicas_time_out() {
    let mut c = coordinator(config());
    let now = t0();
    let id = c
        .read(now, 7, &[1, 2, 3], quorum(RepairMode::Blocking))
        .unwrap();
    drain(&mut c);
    c.handle_message(
        now,
        2,
        Message::Digest {
            id,
            digest: digest::<S>(None),
        },
    );
    assert_eq!(c.poll_timeout(), Some(now + ms(100)));
    // Unanswered requests are sent again every retransmit interval.
    c.handle_timeout(now + ms(100));
    assert_eq!(drain(&mut c), [send(1, Message::ReadData { id, key: 7 })]);
    c.handle_timeout(now + ms(4999));
    assert_eq!(drain(&mut c), [send(1, Message::ReadData { id, key: 7 })]);
    assert_eq!(c.stats().retransmits, 2);
    c.handle_timeout(now + Duration::from_secs(5));
    assert_eq!(
        drain(&mut c),
        [Output::Event(Event::ReadFailed {
            id,
            key: 7,
            reason: FailReason::Timeout {
                responded: 1,
                required: 2
            }
        })]
    );
    assert_eq!(c.stats().reads_failed, 1);
}

#[test]
fn speculative_retry_asks_one_more_replica() {
    let mut c = coordinator(Config {
        speculative_retry: SpeculativeRetry::Fixed(ms(20)),
        ..config()
    });
    let now = t0();
    let id = c
        .read(now, 7, &[1, 2, 3], quorum(RepairMode::Blocking))
        .unwrap();
    drain(&mut c);
    c.handle_message(now + ms(2), 1, Message::Data { id, record: None });
    assert_eq!(c.poll_timeout(), Some(now + ms(20)));
    c.handle_timeout(now + ms(20));
    assert_eq!(drain(&mut c), [send(3, Message::ReadDigest { id, key: 7 })]);
    c.handle_message(
        now + ms(23),
        3,
        Message::Digest {
            id,
            digest: digest::<S>(None),
        },
    );
    let out = drain(&mut c);
    let d = done(&out);
    assert!(d.speculated);
    assert_eq!(d.round_trips, 1);
    assert_eq!(c.stats().speculative_retries, 1);
    // The slow replica answers late: it is known, counted, and (agreeing) not repaired.
    c.handle_message(
        now + ms(90),
        2,
        Message::Digest {
            id,
            digest: digest::<S>(None),
        },
    );
    assert_eq!(drain(&mut c), []);
    assert_eq!(c.stats().late_responses, 1);
}

#[test]
fn speculation_asks_for_data_while_the_data_replica_is_silent() {
    let mut c = coordinator(Config {
        speculative_retry: SpeculativeRetry::Fixed(ms(20)),
        ..config()
    });
    let now = t0();
    let id = c
        .read(now, 7, &[1, 2, 3], quorum(RepairMode::Blocking))
        .unwrap();
    drain(&mut c);
    c.handle_message(
        now + ms(2),
        2,
        Message::Digest {
            id,
            digest: digest::<S>(None),
        },
    );
    c.handle_timeout(now + ms(20));
    assert_eq!(drain(&mut c), [send(3, Message::ReadData { id, key: 7 })]);
    c.handle_message(now + ms(25), 3, Message::Data { id, record: None });
    assert_eq!(done(&drain(&mut c)).level_met, 2);
}

#[test]
fn late_stale_answers_are_repaired() {
    let mut c = coordinator(Config {
        speculative_retry: SpeculativeRetry::Always,
        ..config()
    });
    let now = t0();
    let id = c
        .read(now, 7, &[1, 2, 3], quorum(RepairMode::Blocking))
        .unwrap();
    assert_eq!(
        drain(&mut c),
        [
            send(1, Message::ReadData { id, key: 7 }),
            send(2, Message::ReadDigest { id, key: 7 }),
            // The speculative extra replica gets a data request too.
            send(3, Message::ReadData { id, key: 7 }),
        ]
    );
    let r = rec(&[(1, 2, 3)]);
    c.handle_message(
        now,
        1,
        Message::Data {
            id,
            record: Some(r.clone()),
        },
    );
    c.handle_message(
        now,
        2,
        Message::Digest {
            id,
            digest: digest(Some(&r)),
        },
    );
    assert!(done(&drain(&mut c)).speculated);
    c.handle_message(
        now + ms(50),
        3,
        Message::Data {
            id,
            record: Some(rec(&[(1, 1, 9)])),
        },
    );
    assert_eq!(
        drain(&mut c),
        [send(
            3,
            Message::Repair {
                id,
                key: 7,
                diff: r,
                ack: false
            }
        )]
    );
    assert_eq!(c.stats().late_repairs, 1);
    // Once forgotten, an answer is an unknown id.
    c.handle_timeout(now + Duration::from_secs(6));
    c.handle_message(
        now + Duration::from_secs(6),
        3,
        Message::Digest {
            id,
            digest: digest::<S>(None),
        },
    );
    assert_eq!(c.stats().unknown_id, 1);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn unacknowledged_repairs_are_retransmitted_until_the_deadline() {
    let mut c = coordinator(config());
    let now = t0();
    let id = c
        .read(
            now,
            7,
            &[1, 2],
            ReadOptions {
                level: Level::All,
                repair: RepairMode::Blocking,
            },
        )
        .unwrap();
    drain(&mut c);
    c.handle_message(
        now,
        1,
        Message::Data {
            id,
            record: Some(rec(&[(1, 1, 1)])),
        },
    );
    c.handle_message(
        now,
        2,
        Message::Digest {
            id,
            digest: digest::<S>(None),
        },
    );
    drain(&mut c);
    c.handle_message(now, 2, Message::Data { id, record: None });
    let repair = send(
        2,
        Message::Repair {
            id,
            key: 7,
            diff: rec(&[(1, 1, 1)]),
            ack: true,
        },
    );
    assert_eq!(drain(&mut c), std::slice::from_ref(&repair));
    c.handle_timeout(now + ms(100));
    assert_eq!(drain(&mut c), std::slice::from_ref(&repair));
    c.handle_timeout(now + ms(200));
    assert_eq!(drain(&mut c), [repair]);
    assert_eq!(c.stats().retransmits, 2);
    c.handle_timeout(now + Duration::from_secs(5));
    assert_eq!(
        drain(&mut c).last(),
        Some(&Output::Event(Event::ReadFailed {
            id,
            key: 7,
            reason: FailReason::RepairTimeout {
                holding: 1,
                required: 2
            }
        }))
    );
}

#[test]
fn blocking_repair_does_not_wait_when_enough_replicas_were_up_to_date() {
    let mut c = coordinator(config());
    let now = t0();
    let opts = ReadOptions {
        level: Level::Count(2),
        repair: RepairMode::Blocking,
    };
    let id = c.read(now, 7, &[1, 2, 3], opts).unwrap();
    drain(&mut c);
    // All three answer data (digests off), two agree.
    let r = rec(&[(1, 2, 3)]);
    c.handle_message(
        now,
        1,
        Message::Data {
            id,
            record: Some(r.clone()),
        },
    );
    c.handle_message(
        now,
        2,
        Message::Data {
            id,
            record: Some(r.clone()),
        },
    );
    let out = drain(&mut c);
    assert_eq!(done(&out).round_trips, 1);
}

#[test]
fn link_down_fails_over_to_the_next_replica() {
    let mut c = coordinator(config());
    let now = t0();
    let id = c
        .read(now, 7, &[1, 2, 3], quorum(RepairMode::Blocking))
        .unwrap();
    drain(&mut c);
    c.handle_link_down(now, 1);
    assert_eq!(drain(&mut c), [send(3, Message::ReadData { id, key: 7 })]);
    c.handle_link_down(now, 3);
    assert_eq!(
        drain(&mut c),
        [Output::Event(Event::ReadFailed {
            id,
            key: 7,
            reason: FailReason::Unavailable {
                alive: 1,
                required: 2
            }
        })]
    );
}

#[test]
fn lowest_latency_replica_gets_the_data_request() {
    let mut c = coordinator(Config {
        data_replica: DataReplica::LowestLatency,
        ..config()
    });
    let now = t0();
    let id = c
        .read(
            now,
            7,
            &[1, 2, 3],
            ReadOptions {
                level: Level::All,
                repair: RepairMode::None,
            },
        )
        .unwrap();
    drain(&mut c);
    c.handle_message(
        now + ms(5),
        2,
        Message::Digest {
            id,
            digest: digest::<S>(None),
        },
    );
    c.handle_message(
        now + ms(9),
        3,
        Message::Digest {
            id,
            digest: digest::<S>(None),
        },
    );
    c.handle_message(now + ms(50), 1, Message::Data { id, record: None });
    drain(&mut c);
    let later = now + ms(60);
    let id = c
        .read(later, 8, &[1, 2, 3], quorum(RepairMode::None))
        .unwrap();
    assert_eq!(
        drain(&mut c),
        [
            send(2, Message::ReadData { id, key: 8 }),
            send(3, Message::ReadDigest { id, key: 8 }),
        ]
    );
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct V;
impl Schema for V {
    type Key = u64;
    type Cell = ();
    type Value = u32;
    type Version = VersionVector;
}

#[test]
fn concurrent_siblings_reach_the_application_and_both_replicas() {
    let mut c: Coordinator<u64, V, VectorResolver> = Coordinator::new(
        Config {
            digest_reads: false,
            ..config()
        },
        VectorResolver,
    )
    .unwrap();
    let now = t0();
    let id = c
        .read(
            now,
            1,
            &[1, 2],
            ReadOptions {
                level: Level::All,
                repair: RepairMode::Async,
            },
        )
        .unwrap();
    let sent: Vec<_> = std::iter::from_fn(|| c.poll_output()).collect();
    assert_eq!(sent.len(), 2, "data requests to both, digests off");
    let mut a = VersionVector::new();
    a.increment(1);
    let mut b = VersionVector::new();
    b.increment(2);
    c.handle_message(
        now,
        1,
        Message::Data {
            id,
            record: Some(Record::single((), a.clone(), 10)),
        },
    );
    c.handle_message(
        now,
        2,
        Message::Data {
            id,
            record: Some(Record::single((), b.clone(), 20)),
        },
    );
    let out: Vec<_> = std::iter::from_fn(|| c.poll_output()).collect();
    assert_eq!(out.len(), 3, "a repair to each, then the answer: {out:?}");
    let Some(Output::Event(Event::ReadDone(d))) = out.last() else {
        panic!()
    };
    let value = d.value.as_ref().unwrap();
    assert!(value.has_siblings());
    let values: Vec<u32> = value.get(&()).unwrap().iter().map(|v| v.value).collect();
    assert_eq!(values, [10, 20]);
    assert_eq!(
        out[0],
        Output::Send {
            to: 1,
            msg: Message::Repair {
                id,
                key: 1,
                diff: Record::single((), b, 20),
                ack: false
            }
        }
    );
}

#[test]
fn a_late_differing_digest_gets_the_whole_record() {
    let mut c = coordinator(Config {
        speculative_retry: SpeculativeRetry::Fixed(ms(20)),
        ..config()
    });
    let now = t0();
    let id = c
        .read(now, 7, &[1, 2, 3], quorum(RepairMode::Blocking))
        .unwrap();
    drain(&mut c);
    let r = rec(&[(1, 2, 3), (2, 2, 2)]);
    c.handle_message(
        now + ms(2),
        1,
        Message::Data {
            id,
            record: Some(r.clone()),
        },
    );
    c.handle_timeout(now + ms(20));
    assert_eq!(drain(&mut c), [send(3, Message::ReadDigest { id, key: 7 })]);
    c.handle_message(
        now + ms(25),
        3,
        Message::Digest {
            id,
            digest: digest(Some(&r)),
        },
    );
    assert_eq!(done(&drain(&mut c)).round_trips, 1);
    // Replica 2 was abandoned; its late digest differs: a digest says nothing about which
    // cells, so the whole record goes.
    c.handle_message(
        now + ms(60),
        2,
        Message::Digest {
            id,
            digest: digest::<S>(None),
        },
    );
    assert_eq!(
        drain(&mut c),
        [send(
            2,
            Message::Repair {
                id,
                key: 7,
                diff: r,
                ack: false
            }
        )]
    );
    // A second late answer from the same replica is a duplicate.
    c.handle_message(
        now + ms(61),
        2,
        Message::Digest {
            id,
            digest: digest::<S>(None),
        },
    );
    assert_eq!(drain(&mut c), []);
    let s = c.stats();
    assert_eq!(
        (s.late_repairs, s.late_responses, s.duplicate_responses),
        (1, 1, 1)
    );
}

#[test]
fn cassandra_mode_rereads_every_replica_on_a_mismatch() {
    let all = ReadOptions {
        level: Level::All,
        repair: RepairMode::Async,
    };
    for (fetch_all, asked) in [(false, vec![2]), (true, vec![1, 2, 3])] {
        let mut c = coordinator(Config {
            fetch_all_on_mismatch: fetch_all,
            ..config()
        });
        let now = t0();
        let id = c.read(now, 7, &[1, 2, 3], all).unwrap();
        drain(&mut c);
        let r = rec(&[(1, 2, 3)]);
        c.handle_message(
            now,
            1,
            Message::Data {
                id,
                record: Some(r.clone()),
            },
        );
        c.handle_message(
            now,
            2,
            Message::Digest {
                id,
                digest: digest::<S>(None),
            },
        );
        c.handle_message(
            now,
            3,
            Message::Digest {
                id,
                digest: digest(Some(&r)),
            },
        );
        let to: Vec<u64> = drain(&mut c)
            .into_iter()
            .map(|o| match o {
                Output::Send {
                    to,
                    msg: Message::ReadData { .. },
                } => to,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(to, asked);
        for p in asked {
            let record = (p != 2).then(|| r.clone());
            c.handle_message(now, p, Message::Data { id, record });
        }
        let out = drain(&mut c);
        assert_eq!(done(&out).value, Some(r.clone()));
        assert_eq!(done(&out).repaired.as_slice(), [2]);
    }
}

#[test]
fn a_replica_that_answers_late_stops_being_the_data_replica() {
    let mut c = coordinator(Config {
        speculative_retry: SpeculativeRetry::Fixed(ms(20)),
        data_replica: DataReplica::LowestLatency,
        ..config()
    });
    let now = t0();
    let id = c
        .read(now, 7, &[1, 2, 3], quorum(RepairMode::None))
        .unwrap();
    drain(&mut c);
    c.handle_message(
        now + ms(5),
        2,
        Message::Digest {
            id,
            digest: digest::<S>(None),
        },
    );
    c.handle_timeout(now + ms(20));
    assert_eq!(drain(&mut c), [send(3, Message::ReadData { id, key: 7 })]);
    c.handle_message(now + ms(26), 3, Message::Data { id, record: None });
    assert_eq!(done(&drain(&mut c)).level_met, 2);
    // Replica 1 was never measured, so it came first; its late answer teaches otherwise.
    c.handle_message(now + ms(300), 1, Message::Data { id, record: None });
    let id = c
        .read(now + ms(301), 8, &[1, 2, 3], quorum(RepairMode::None))
        .unwrap();
    assert_eq!(
        drain(&mut c),
        [
            send(2, Message::ReadData { id, key: 8 }),
            send(3, Message::ReadDigest { id, key: 8 }),
        ]
    );
}
