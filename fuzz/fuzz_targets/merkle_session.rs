//! Arbitrary session message sequences: a hostile peer sends any steps (well-formed or
//! not, for our session or not, fragmented or not) to a replica that has started a
//! session with it, interleaved with timeouts and writes. Nothing panics or loops, no
//! message exceeds the bound, the sessions stay within their bound, and every timer the
//! machine reports is honoured.

#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::Bytes;
use epidemic_core::codec::encoded_len;
use epidemic_core::{Machine, Output};
use epidemic_merkle::ranks::Ranks;
use epidemic_merkle::{
    AbortReason, Config, Fragment, MerkleSync, Message, Method, Replica, Shape, Step, StepKind,
};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Op {
    /// A step for the session we opened (or a forged one), as one fragment.
    Step {
        forge_session: Option<u64>,
        from_initiator: bool,
        step: u8,
        body: Body,
    },
    /// Raw fragment bytes.
    Raw {
        session: Option<u64>,
        step: u8,
        kind: u8,
        index: u16,
        count: u16,
        data: Vec<u8>,
    },
    Abort(u8),
    Timeout(u16),
    Write(u16, u8),
    Sync,
}

#[derive(Debug, Arbitrary)]
enum Body {
    Hashes {
        level: u8,
        count: u64,
        diff: Vec<u8>,
        hashes: Vec<[u8; 8]>,
    },
    Items {
        level: u8,
        diff: Vec<u8>,
        items: Vec<([u8; 8], [u8; 8])>,
    },
    Symbols {
        level: u8,
        diff: Vec<u8>,
        start: u64,
        hash: Option<[u8; 8]>,
        symbols: Vec<u8>,
    },
    More(u64),
    Done {
        gone: (u32, u8, Vec<u8>),
        changed: (u32, u8, Vec<u8>),
        digests: Vec<[u8; 8]>,
        mine: Vec<([u8; 8], [u8; 8])>,
    },
    Open {
        method: u8,
        count: u64,
        root: [u8; 16],
    },
    Sketch {
        level: u8,
        diff: Vec<u8>,
        hash: [u8; 8],
        depth: u8,
        per: u32,
        syndromes: Vec<u8>,
    },
    Syndromes(Vec<u8>),
    Ask {
        split: Vec<u8>,
        bits: u8,
        extend: Vec<u8>,
        by: Vec<u32>,
    },
}

const KINDS: [StepKind; 9] = [
    StepKind::Open,
    StepKind::Hashes,
    StepKind::Items,
    StepKind::Symbols,
    StepKind::More,
    StepKind::Done,
    StepKind::Sketch,
    StepKind::Syndromes,
    StepKind::Ask,
];

const METHODS: [Method; 5] = [
    Method::Planned,
    Method::Tree,
    Method::Riblt,
    Method::Full,
    Method::Sketch,
];

fn step(body: Body, shape: Shape) -> Step {
    match body {
        Body::Hashes {
            level,
            count,
            diff,
            hashes,
        } => Step::Hashes {
            level,
            count,
            diff: diff.into(),
            hashes,
        },
        Body::Items { level, diff, items } => Step::Items {
            level,
            diff: diff.into(),
            items,
        },
        Body::Symbols {
            level,
            diff,
            start,
            hash,
            symbols,
        } => Step::Symbols {
            level,
            diff: diff.into(),
            start,
            hash,
            symbols: symbols.into(),
        },
        Body::More(upto) => Step::More { upto },
        Body::Done {
            gone,
            changed,
            digests,
            mine,
        } => {
            let ranks = |(count, k, bits): (u32, u8, Vec<u8>)| Ranks {
                count,
                k,
                bits: bits.into(),
            };
            Step::Done {
                gone: ranks(gone),
                changed: ranks(changed),
                digests,
                mine,
            }
        }
        Body::Open {
            method,
            count,
            root,
        } => Step::Open {
            hasher: epidemic_merkle::ItemHasher::id(&epidemic_merkle::Xxh3::default()),
            shape,
            method: METHODS[usize::from(method) % METHODS.len()],
            count,
            root,
        },
        Body::Sketch {
            level,
            diff,
            hash,
            depth,
            per,
            syndromes,
        } => Step::Sketch {
            level,
            diff: diff.into(),
            hash,
            depth,
            per,
            syndromes: syndromes.into(),
        },
        Body::Syndromes(syndromes) => Step::Syndromes {
            syndromes: syndromes.into(),
        },
        Body::Ask {
            split,
            bits,
            extend,
            by,
        } => Step::Ask {
            split: split.into(),
            bits,
            extend: extend.into(),
            by,
        },
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let config = Config {
        shape: Shape {
            fanout_bits: 2,
            depth: 3,
        },
        max_message_bytes: 256,
        max_step_bytes: 1 << 16,
        max_sessions: 3,
        max_differences: 500,
        ..Config::default()
    };
    let shape = config.shape;
    let replica = Replica::in_memory(config.shape);
    let mut m = MerkleSync::<u64>::with_salt(config, replica, 7).expect("valid config");
    for k in 0..200u64 {
        m.insert(k, k % 5);
    }
    #[allow(clippy::disallowed_methods)] // the fuzz target is the driver
    let mut now = Instant::now();
    let mut session = m.sync(now, 1).expect("room for a session");
    for op in ops.into_iter().take(256) {
        match op {
            Op::Step {
                forge_session,
                from_initiator,
                step: no,
                body,
            } => {
                let s = step(body, shape);
                let data = Bytes::from(s.to_bytes());
                m.handle_message(
                    now,
                    1,
                    Message::Fragment(Fragment {
                        session: forge_session.unwrap_or(session),
                        from_initiator,
                        step: u32::from(no),
                        kind: s.kind(),
                        index: 0,
                        count: 1,
                        data,
                    }),
                );
            }
            Op::Raw {
                session: s,
                step: no,
                kind,
                index,
                count,
                data,
            } => m.handle_message(
                now,
                1,
                Message::Fragment(Fragment {
                    session: s.unwrap_or(session),
                    from_initiator: false,
                    step: u32::from(no),
                    kind: KINDS[usize::from(kind) % KINDS.len()],
                    index,
                    count,
                    data: data.into(),
                }),
            ),
            Op::Abort(r) => m.handle_message(
                now,
                1,
                Message::Abort {
                    session,
                    from_initiator: r % 2 == 0,
                    reason: [
                        AbortReason::UnknownSession,
                        AbortReason::Busy,
                        AbortReason::Incompatible,
                        AbortReason::Protocol,
                    ][usize::from(r % 4)],
                },
            ),
            Op::Timeout(ms) => {
                now += Duration::from_millis(u64::from(ms));
                m.handle_timeout(now);
            }
            Op::Write(k, d) => {
                m.insert(u64::from(k), u64::from(d));
            }
            Op::Sync => {
                if let Ok(id) = m.sync(now, 1) {
                    session = id;
                }
            }
        }
        while let Some(out) = m.poll_output() {
            if let Output::Send { msg, .. } = out {
                assert!(encoded_len(&msg) <= 256, "message over the bound");
            }
        }
        assert!(m.sessions() <= 3, "sessions over the bound");
        if let Some(t) = m.poll_timeout() {
            // Honouring a deadline never leaves it in the past.
            if t <= now {
                m.handle_timeout(now);
                while m.poll_output().is_some() {}
                assert!(m.poll_timeout().is_none_or(|t2| t2 > now));
            }
        }
    }
});
