//! Crash tests of the file hint log: kill the writer at random points (truncated tail,
//! torn record with garbage, a flipped byte) and recover every record fully persisted
//! before the damage, across many seeds.

use std::path::PathBuf;

use bytes::Bytes;
use epidemic_hinted_handoff::log::{HintLog, LogOptions, SyncPolicy};
use epidemic_hinted_handoff::{HintId, HintRecord, LogRecord, MemLog, Mutation};
use epidemic_sim::seeds;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn temp_dir(name: &str, seed: u64) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("epidemic-hh-{name}-{}-{seed}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn random_records(rng: &mut ChaCha8Rng, n: usize) -> Vec<LogRecord> {
    let mut ids: Vec<HintId> = Vec::new();
    (0..n)
        .map(|i| {
            if !ids.is_empty() && rng.random_bool(0.3) {
                let k = rng.random_range(0..ids.len());
                LogRecord::Remove(ids.swap_remove(k))
            } else {
                let id = HintId(rng.random());
                ids.push(id);
                let vlen = rng.random_range(0..200);
                LogRecord::Put(HintRecord {
                    id,
                    target: rng.random_range(0..8),
                    mutation: Mutation {
                        key: Bytes::from(format!("k{i}")),
                        value: Some(Bytes::from(vec![7u8; vlen])),
                        timestamp: i as u64,
                    },
                    created_ms: i as u64 * 10,
                    handoff: rng.random_bool(0.5),
                })
            }
        })
        .collect()
}

fn live_of(records: &[LogRecord]) -> Vec<HintRecord> {
    let mut m = MemLog::new();
    for r in records {
        m.apply(r);
    }
    m.records().cloned().collect()
}

fn options() -> LogOptions {
    LogOptions {
        sync: SyncPolicy::Never,
        max_segment_bytes: u64::MAX,
        ..LogOptions::default()
    }
}

#[test]
fn killed_writer_recovers_every_persisted_record() {
    for seed in seeds(0..64) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let dir = temp_dir("crash", seed);
        let count = rng.random_range(1..60);
        let records = random_records(&mut rng, count);
        let (mut log, _) = HintLog::open(&dir, options()).unwrap();
        let mut ends = Vec::new(); // byte offset after each record
        for r in &records {
            log.append(r).unwrap();
            ends.push(log.position());
        }
        drop(log);
        let seg = std::fs::read_dir(&dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let full = std::fs::read(&seg).unwrap();
        let cut = rng.random_range(0..=full.len());
        let mut bytes = full[..cut].to_vec();
        let mut intact = ends.iter().filter(|&&e| e as usize <= cut).count();
        match rng.random_range(0..3) {
            0 => {} // truncated tail
            1 => {
                // A torn record: garbage where the next record was being written.
                let junk = rng.random_range(1..40);
                bytes.extend((0..junk).map(|_| rng.random::<u8>()));
            }
            _ => {
                // A flipped byte: everything from the record holding it on is lost.
                if cut > 0 {
                    let p = rng.random_range(0..cut);
                    bytes[p] ^= 1 << rng.random_range(0..8);
                    intact = intact.min(ends.iter().filter(|&&e| (e as usize) <= p).count());
                }
            }
        }
        std::fs::write(&seg, &bytes).unwrap();
        let (mut log, rec) = HintLog::open(&dir, options()).unwrap();
        let got: Vec<HintRecord> = log.records().cloned().collect();
        assert_eq!(
            got,
            live_of(&records[..intact]),
            "seed {seed}: cut {cut} of {}",
            full.len()
        );
        assert_eq!(rec.records, intact as u64, "seed {seed}");
        // The torn tail was cut away: a new append is readable after another restart.
        let extra = LogRecord::Remove(HintId(42));
        log.append(&extra).unwrap();
        drop(log);
        let (_, rec2) = HintLog::open(&dir, options()).unwrap();
        assert_eq!(rec2.records, intact as u64 + 1, "seed {seed}");
        assert_eq!(rec2.torn_bytes, 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn segments_roll_and_compaction_keeps_exactly_the_live_hints() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let dir = temp_dir("compact", 7);
    let opts = LogOptions {
        sync: SyncPolicy::Every(16),
        max_segment_bytes: 2048,
        ..LogOptions::default()
    };
    let records = random_records(&mut rng, 400);
    let (mut log, _) = HintLog::open(&dir, opts).unwrap();
    for r in &records {
        log.append(r).unwrap();
    }
    // Remove most of what is live.
    let live: Vec<HintId> = log.records().map(|h| h.id).collect();
    for id in live.iter().skip(5) {
        log.append(&LogRecord::Remove(*id)).unwrap();
    }
    let expected: Vec<HintRecord> = log.records().cloned().collect();
    assert_eq!(expected.len(), 5.min(live.len()));
    let before = log.segments();
    assert!(before > 3, "{before} segments");
    assert!(log.maybe_compact().unwrap());
    assert!(log.segments() < before);
    drop(log);
    let (log, rec) = HintLog::open(&dir, opts).unwrap();
    let got: Vec<HintRecord> = log.records().cloned().collect();
    assert_eq!(got, expected);
    assert_eq!((rec.torn_bytes, rec.damaged_segments), (0, 0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The machine and the file log end to end: every persist record goes to the log before
/// the next output; after a crash the reopened log rebuilds the node, which replays.
#[test]
fn node_restarts_from_the_file_log() {
    use epidemic_core::{Machine, Output};
    use epidemic_hinted_handoff::scenario::{recovered_node, seeded_node};
    use epidemic_hinted_handoff::{Config, Consistency, Event, MemStore, Message};
    use std::time::{Duration, Instant};

    let dir = temp_dir("node", 0);
    #[allow(clippy::disallowed_methods)] // a base instant for the test's virtual clock
    let now = Instant::now();
    let config = Config {
        sloppy_quorum: false,
        ..Config::default()
    };
    let (mut log, _) = HintLog::open(&dir, LogOptions::default()).unwrap();
    let mut c = seeded_node(9, config.clone(), 1, now).unwrap();
    c.peer_down(now, 2);
    let mut acked = 0;
    for ts in 1..=20u64 {
        let m = Mutation::put(format!("k{ts}").into_bytes(), &b"v"[..], ts);
        c.write(now, m, &[0, 1, 2], Consistency::Any).unwrap();
        while let Some(out) = c.poll_output() {
            match out {
                Output::Event(Event::Persist(r)) => log.append(&r).unwrap(),
                Output::Event(Event::WriteAcked { .. }) => {
                    // Every hint covering this write is already on disk.
                    acked += 1;
                }
                Output::Send {
                    to,
                    msg: Message::Write { id, .. },
                } => c.handle_message(now, to, Message::WriteAck { id }),
                _ => {}
            }
        }
    }
    assert_eq!(acked, 20);
    assert_eq!(log.len(), 20);
    drop((c, log)); // crash
    let (log, rec) = HintLog::open(&dir, LogOptions::default()).unwrap();
    assert_eq!(rec.torn_bytes, 0);
    let later = now + Duration::from_secs(5);
    let store = MemStore::default();
    let mut r = {
        let mut mem = MemLog::new();
        for h in log.records() {
            mem.apply(&LogRecord::Put(h.clone()));
        }
        recovered_node(9, config, 2, later, 5_000, store, &mem).unwrap()
    };
    assert_eq!(r.hints_for(2), 20);
    r.handle_timeout(later);
    let replays = std::iter::from_fn(|| r.poll_output())
        .filter(|o| {
            matches!(
                o,
                Output::Send {
                    to: 2,
                    msg: Message::Replay { .. }
                }
            )
        })
        .count();
    assert_eq!(replays, 4, "replay resumes at the initial window");
    let _ = std::fs::remove_dir_all(&dir);
}
