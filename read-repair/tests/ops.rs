//! The `read_repair_ops` fuzz target's checks, run on random inputs in every test run
//! (both include `tests/support/ops.rs`).
//!
//! A coordinator under arbitrary operation sequences: reads with any replica list and
//! level, answers from any peer with any id and record, repair acknowledgements, lost
//! links and time jumps. Nothing panics, the in-flight bound holds, every accepted read
//! ends exactly once (done or failed), no later than the first timeout call past its
//! deadline, and a completed read's value keeps one version per cell under LWW.

include!("support/ops.rs");

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// An input biased towards real protocol runs: distinct replicas, answers mostly from
/// the replicas of recent reads for their ids (raw `arbitrary` bytes rarely complete one).
fn biased(rng: &mut ChaCha8Rng) -> Input {
    let mut ops = Vec::new();
    let mut next_id = 0u8;
    for _ in 0..rng.random_range(1..120) {
        let cells = |rng: &mut ChaCha8Rng| -> Vec<(u8, u8, u8)> {
            (0..rng.random_range(0..4))
                .map(|_| (rng.random_range(0..3), rng.random_range(0..4), rng.random()))
                .collect()
        };
        let id = next_id.saturating_sub(rng.random_range(1..3));
        let from = rng.random_range(0..6);
        ops.push(match rng.random_range(0..10) {
            0 | 1 => {
                let mut replicas: Vec<u8> = (0..rng.random_range(1..6)).collect();
                if rng.random_bool(0.1) {
                    replicas.push(0); // a duplicate: refused
                }
                next_id = next_id.wrapping_add(1);
                Op::Read {
                    key: rng.random(),
                    replicas,
                    level: rng.random(),
                    repair: rng.random(),
                }
            }
            2 | 3 => Op::Data {
                from,
                id,
                cells: cells(rng),
                none: rng.random_bool(0.2),
            },
            4 | 5 => Op::Digest {
                from,
                id,
                cells: cells(rng),
            },
            6 => Op::Ack { from, id },
            7 => Op::LinkDown(from),
            _ => Op::Advance(rng.random_range(0..300)),
        });
    }
    Input {
        speculation: rng.random(),
        data_replica: rng.random(),
        digest_reads: rng.random(),
        ops,
    }
}

#[test]
fn random_operation_sequences_keep_the_invariants() {
    let mut done = 0;
    for seed in epidemic_sim::seeds(0..400) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        if seed % 2 == 0 {
            let mut bytes = vec![0u8; 2048];
            rng.fill_bytes(&mut bytes);
            if let Ok(input) = Input::arbitrary(&mut arbitrary::Unstructured::new(&bytes)) {
                done += check(input);
            }
        } else {
            done += check(biased(&mut rng));
        }
    }
    // The inputs reach the interesting paths: reads complete, not only time out.
    assert!(
        done > 10 || std::env::var_os("SEED").is_some(),
        "{done} reads done"
    );
}
