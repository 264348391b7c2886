use super::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SALT: u64 = 0x5a17;

fn items(range: std::ops::Range<u64>, v: u64) -> Vec<Item> {
    range.map(|k| Item { key: k, digest: v }).collect()
}

fn sorted(v: &[Item]) -> Vec<Item> {
    let mut v = v.to_vec();
    v.sort_unstable();
    v
}

/// Two sets sharing 2,000 items and differing in `d` random keys: a third only in `a`, a
/// third only in `b`, a third in both with other digests. Returns `(a, b, a_only,
/// b_only)`.
fn replicas(rng: &mut ChaCha8Rng, d: u64) -> (Vec<Item>, Vec<Item>, Vec<Item>, Vec<Item>) {
    let common = items(0..2_000, 5);
    let (mut a, mut b) = (common.clone(), common);
    let (mut a_only, mut b_only) = (Vec::new(), Vec::new());
    for i in 0..d {
        let key = rng.random_range(10_000..u64::MAX);
        let (va, vb): (u64, u64) = (rng.random(), rng.random());
        if i % 3 != 1 {
            a.push(Item { key, digest: va });
            a_only.push(Item { key, digest: va });
        }
        if i % 3 != 0 {
            b.push(Item { key, digest: vb });
            b_only.push(Item { key, digest: vb });
        }
    }
    (a, b, a_only, b_only)
}

#[test]
fn mapping_density_follows_the_paper() {
    // P(index i) ≈ 1/(1 + 5i/8): about 1/7 of keys hit index 10.
    let mut hits = [0u32; 64];
    for k in 0..20_000u64 {
        let mut m = Mapping::new(map_seed(k, SALT));
        while m.next < 64 {
            hits[m.next as usize] += 1;
            m.advance();
        }
    }
    assert_eq!(hits[0], 20_000);
    for i in [1usize, 10, 40] {
        let want = 20_000.0 / (1.0 + i as f64 * 0.625);
        let got = f64::from(hits[i]);
        assert!(
            (got - want).abs() < want * 0.1,
            "index {i}: {got} vs {want}"
        );
    }
}

#[test]
fn decodes_a_symmetric_difference_exactly() {
    let a = [items(0..1000, 1), items(1000..1010, 2)].concat();
    let b = [items(0..1000, 1), items(2000..2007, 3)].concat();
    let mut enc = Encoder::new(&a, SALT);
    let mut dec = Decoder::new(&b, SALT, 100);
    let mut buf = Vec::new();
    while !dec.is_decoded() {
        buf.clear();
        enc.produce(4, &mut buf);
        dec.add(&buf).unwrap();
        assert!(dec.received() < 200);
    }
    assert_eq!(sorted(&dec.remote_only()), items(1000..1010, 2));
    assert_eq!(sorted(&dec.local_only()), items(2000..2007, 3));
    assert_eq!(dec.peeled(), 17);
}

#[test]
fn an_updated_key_is_one_difference_with_both_versions() {
    // Keys 0..30 updated on b, 30..40 only on a, 40..50 only on b.
    let common = items(100..600, 7);
    let a = [common.clone(), items(0..30, 1), items(30..40, 2)].concat();
    let b = [common, items(0..30, 3), items(40..50, 4)].concat();
    let mut enc = Encoder::new(&a, SALT);
    let mut dec = Decoder::new(&b, SALT, 100);
    let mut buf = Vec::new();
    enc.produce(200, &mut buf);
    let used = dec.add_until_decoded(&buf).unwrap();
    assert!(dec.is_decoded());
    assert_eq!(dec.peeled(), 50, "one peel per differing key");
    assert!(used < 120, "{used} symbols for 50 keys");
    assert_eq!(
        sorted(&dec.remote_only()),
        [items(0..30, 1), items(30..40, 2)].concat()
    );
    assert_eq!(
        sorted(&dec.local_only()),
        [items(0..30, 3), items(40..50, 4)].concat()
    );
}

#[test]
fn equal_sets_decode_at_the_first_symbol() {
    let a = items(0..50, 9);
    let mut enc = Encoder::new(&a, SALT);
    let mut dec = Decoder::new(&a, SALT, 10);
    let mut buf = Vec::new();
    enc.produce(1, &mut buf);
    dec.add(&buf).unwrap();
    assert!(dec.is_decoded());
    assert!(dec.remote_only().is_empty() && dec.local_only().is_empty());
}

#[test]
fn symbols_per_difference_is_near_the_papers_figure() {
    // Over many seeds, d = 100 keys (a third updated): the paper reports ~1.35 symbols
    // per difference at large d (higher at small d).
    let mut total = 0usize;
    let runs = 30u64;
    for seed in 0..runs {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let common = items(0..200, 5);
        let (mut a, mut b) = (common.clone(), common);
        for i in 0..100u64 {
            let key = rng.random_range(1_000..u64::MAX);
            match i % 3 {
                0 => a.push(Item {
                    key,
                    digest: rng.random(),
                }),
                1 => b.push(Item {
                    key,
                    digest: rng.random(),
                }),
                _ => {
                    a.push(Item { key, digest: 1 });
                    b.push(Item { key, digest: 2 });
                }
            }
        }
        let mut enc = Encoder::new(&a, seed);
        let mut dec = Decoder::new(&b, seed, 1000);
        let mut buf = Vec::new();
        enc.produce(1000, &mut buf);
        total += dec.add_until_decoded(&buf).unwrap();
        assert!(dec.is_decoded());
        assert_eq!(dec.peeled(), 100);
    }
    let per = total as f64 / (runs as f64 * 100.0);
    assert!((1.2..1.75).contains(&per), "{per} symbols per difference");
}

#[test]
fn wire_form_round_trips_with_narrow_then_no_checksums() {
    let mut enc = Encoder::new(&items(0..300, 3), SALT);
    let mut buf = Vec::new();
    enc.produce(200, &mut buf);
    // 64 checksum bits for symbol 0, 8 for 1..=27, ... 1 for 235..=332, none after.
    assert_eq!(
        [0, 1, 27, 28, 81, 82, 116, 117, 234, 235, 332, 333, 10_000].map(check_bits),
        [64, 8, 8, 7, 5, 4, 4, 3, 2, 1, 1, 0, 0]
    );
    assert_eq!((1..=LAST_CHECKED).map(check_bits).sum::<u32>(), 1051);
    let bytes = encode_symbols(0, &buf[..100]);
    assert_eq!(bytes.len(), 100 * 16 + 664 / 8);
    assert_eq!(bytes.len() as u64, batch_bytes(0, 100));
    assert_eq!(
        decode_symbols(0, &bytes, 1000).as_deref(),
        Some(&buf[..100])
    );
    // A later batch carries its own checksum bits: 36 of 5 or 4 bits, 162 in all.
    let tail = encode_symbols(64, &buf[64..100]);
    assert_eq!(tail.len(), 36 * 16 + 21);
    assert_eq!(
        decode_symbols(64, &tail, 1000).as_deref(),
        Some(&buf[64..100])
    );
    // Past index 332, 16 bytes a symbol.
    enc.produce(200, &mut buf);
    let bare = encode_symbols(333, &buf[333..]);
    assert_eq!(bare.len(), 67 * 16);
    assert_eq!(
        decode_symbols(333, &bare, 1000).as_deref(),
        Some(&buf[333..])
    );
    // Cut, over the bound, a padding bit set, or at an index that overflows: refused.
    assert_eq!(decode_symbols(0, &bytes[..bytes.len() - 1], 1000), None);
    assert_eq!(decode_symbols(0, &bytes, 99), None);
    let mut padded = tail.clone();
    *padded.last_mut().unwrap() |= 0x80;
    assert_eq!(decode_symbols(64, &padded, 1000), None);
    assert_eq!(decode_symbols(u64::MAX, &bare[..32], 10), None);
    assert_eq!(decode_symbols(5, &[], 10), Some(vec![]));
    for cut in 0..60 {
        // Never a panic on any length.
        let _ = decode_symbols(3, &bytes[..cut], 10);
    }
}

#[test]
fn hostile_symbols_never_loop_and_respect_the_bound() {
    // Ten keys of difference against a bound of three: the decoder refuses.
    let mut enc = Encoder::new(&items(100..110, 0), SALT);
    let mut buf = Vec::new();
    enc.produce(64, &mut buf);
    let mut dec = Decoder::new(&[], SALT, 3);
    assert_eq!(dec.add(&buf), Err(DecodeLimit::TooManyItems));
    // Digest 0 is a digest like any other.
    let mut enc = Encoder::new(&items(0..5, 0), SALT);
    let mut dec = Decoder::new(&[], SALT, 10);
    buf.clear();
    enc.produce(20, &mut buf);
    dec.add(&buf).unwrap();
    assert!(dec.is_decoded());
    assert_eq!(sorted(&dec.remote_only()), items(0..5, 0));
    // Fabricated pure symbols, all claiming one key: it is peeled once, never twice.
    let it = Item { key: 77, digest: 5 };
    let v = 5 ^ digest_mask(SALT);
    let fake: Vec<Symbol> = (0..40)
        .map(|i| Symbol {
            sum: v,
            weighted: gf::mul(77, v),
            check: checksum(it, SALT) & check_mask(i),
        })
        .collect();
    let mut dec = Decoder::new(&items(0..10, 1), SALT, 1000);
    dec.add(&fake).unwrap();
    assert_eq!(dec.remote_only(), [it]);
    assert!(dec.peeled() <= 11, "77 and at most the ten local keys");
    // Garbage peels nothing and decodes nothing.
    let garbage = [Symbol {
        sum: 1,
        weighted: 2,
        check: 3,
    }; 8];
    let mut dec = Decoder::new(&[], SALT, 3);
    dec.add(&garbage).unwrap();
    assert!(!dec.is_decoded());
    assert_eq!(dec.peeled(), 0);
}

#[test]
fn a_large_difference_decodes_exactly() {
    // 20,000 differing keys (a third updated), three salts: exact every time, though
    // dozens of false peels happen on the way.
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (a, b, a_only, b_only) = replicas(&mut rng, 20_000);
    for salt in 0..3u64 {
        let mut enc = Encoder::new(&a, salt);
        let mut dec = Decoder::new(&b, salt, 100_000);
        let mut buf = Vec::new();
        enc.produce(29_000, &mut buf);
        dec.add(&buf).unwrap();
        assert!(dec.is_decoded(), "salt {salt}");
        // Past symbol 165 only the index test guards: false peels may happen (none in
        // one batch with these salts) and are undone.
        assert_eq!(sorted(&dec.remote_only()), sorted(&a_only));
        assert_eq!(sorted(&dec.local_only()), sorted(&b_only));
    }
}

#[test]
fn a_false_peel_is_undone_and_the_decode_stays_exact() {
    // Sender-only keys 1000..1200. Decode the first 70 symbols, then find a symbol past
    // index 64 still holding two or more keys and force the "peel" of its garbage key as
    // if its checksum bits had passed; the rest of the stream must undo it.
    let common = items(0..500, 5);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let extra: Vec<Item> = (1000..1200)
        .map(|key| Item {
            key,
            digest: rng.random(),
        })
        .collect();
    let a = [common.clone(), extra.clone()].concat();
    let mut enc = Encoder::new(&a, SALT);
    let mut dec = Decoder::new(&common, SALT, 1000);
    let mut buf = Vec::new();
    enc.produce(600, &mut buf);
    dec.add(&buf[..70]).unwrap();
    let idx = (64..70)
        .find(|&i| {
            let s = dec.symbols[i];
            s.sum != 0 && dec.examine(i).is_none()
        })
        .expect("a mixed symbol");
    let s = dec.symbols[idx];
    let key = gf::mul(s.weighted, gf::inv(s.sum).unwrap());
    let c = Contribution {
        sum: s.sum,
        weighted: s.weighted,
        check: s.check,
    };
    let garbage = Peeled {
        key,
        origin: idx,
        src: Source::new(key, c, SALT),
        theirs: Some(s.sum ^ digest_mask(SALT)),
        ours: None,
    };
    dec.apply(Found::Peel(garbage)).unwrap();
    dec.peel().unwrap();
    dec.add(&buf[70..]).unwrap();
    assert!(dec.is_decoded());
    // The forced peel and, with few checksum bits past index 64, possibly another.
    assert!(dec.unpeeled() >= 1);
    assert_eq!(sorted(&dec.remote_only()), extra);
    assert!(dec.local_only().is_empty());
}

/// Decodes over many salts: how many fail (not decoded within 2d + 100 symbols), how many
/// end wrong (symbol 0 emptied with a difference other than the true one: the session's
/// set-hash check catches these and retries), the false peels undone, and the symbols
/// each differing key needs. Slow in debug builds: run with
/// `cargo test --release -p epidemic-merkle --lib decode_sweep -- --ignored --nocapture`
/// (measured: 1.82, 1.65, 1.46, 1.39, 1.35 and 1.33 symbols per key at d = 10, 30, 100,
/// 300, 1,000 and 20,000; 0.4, 11 and 196 undone peels per decode at 100, 1,000 and
/// 20,000; none wrong; 1 of 400 failed at d = 10, two true keys banned after two undos
/// each, and 1 of 400 at d = 100, two keys whose only symbols below 300 were the same
/// three; a session asks for more, or retries under a fresh salt. The assertion allows
/// under 1% failed or wrong.)
#[test]
#[ignore = "a measurement: a minute in debug builds"]
fn decode_sweep() {
    for &d in &[10u64, 30, 100, 300, 1000, 20_000] {
        let (mut used_total, mut unpeel_total) = (0usize, 0usize);
        let (mut failed, mut wrong) = (0u64, 0u64);
        let runs = if d > 10_000 { 60 } else { 400 };
        for salt in 0..runs {
            let mut rng = ChaCha8Rng::seed_from_u64(salt + 100);
            let (a, b, a_only, b_only) = replicas(&mut rng, d);
            let mut enc = Encoder::new(&a, salt);
            let mut dec = Decoder::new(&b, salt, 100_000);
            let mut buf = Vec::new();
            enc.produce(usize::try_from(d).unwrap() * 2 + 100, &mut buf);
            // Chunks of d/100 symbols: the count is exact to 1%.
            let chunk = usize::try_from(d / 100).unwrap().max(1);
            let mut used = None;
            for (i, c) in buf.chunks(chunk).enumerate() {
                dec.add(c).unwrap();
                if dec.is_decoded() {
                    used = Some((i + 1) * chunk);
                    break;
                }
            }
            let Some(used) = used else {
                failed += 1;
                continue;
            };
            if sorted(&dec.remote_only()) != sorted(&a_only)
                || sorted(&dec.local_only()) != sorted(&b_only)
            {
                wrong += 1;
                continue;
            }
            used_total += used;
            unpeel_total += dec.unpeeled();
        }
        let ok = (runs - failed - wrong) as f64;
        let per_key = used_total as f64 / (ok * d as f64);
        eprintln!(
            "d {d}: {per_key:.3} symbols per key, {:.1} undone peels per decode, \
             {failed} of {runs} failed, {wrong} wrong",
            unpeel_total as f64 / ok
        );
        assert!(
            (failed + wrong) * 100 < runs,
            "d {d}: {failed} failed, {wrong} wrong"
        );
        assert!(d < 100 || per_key < 1.5, "{per_key}");
    }
}
