//! Read digests: XXH3-128 of a record's canonical postcard encoding, hashed as it is
//! serialized (no buffer, no allocation).

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{Xxh3, xxh3_128};

use crate::record::{Record, Schema};

/// A 128-bit digest of one replica's answer to a read (the record, or its absence).
///
/// XXH3-128 is a fast non-cryptographic hash: it detects divergence between honest
/// replicas, not tampering (Cassandra uses MD5, also 128 bits, for the same job).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Digest(pub [u8; 16]);

/// Bytes a digest takes in a message body.
pub const DIGEST_LEN: usize = 16;

/// The digest of a replica's answer: `None` (no record) and `Some` (the record) hash
/// differently, and equal records hash equally because their encoding is canonical.
#[must_use]
pub fn digest<S: Schema>(record: Option<&Record<S>>) -> Digest {
    // Small records: encode on the stack and hash in one shot (XXH3's one-shot path is
    // much cheaper than setting up its streaming state). Larger ones stream through the
    // hasher as they are serialized. Both give the same hash of the same bytes.
    let mut stack = [0u8; STACK];
    if let Ok(bytes) = postcard::to_slice(&record, &mut stack) {
        return Digest(xxh3_128(bytes).to_le_bytes());
    }
    let flavor = HashFlavor {
        hasher: Xxh3::new(),
        buf: [0; BUF],
        len: 0,
    };
    // The hashing flavor never fails; a `Serialize` impl that does (derived ones never
    // do) gives the digest 0, still a deterministic function of the record.
    let hash: u128 = postcard::serialize_with_flavor(&record, flavor).unwrap_or_default();
    Digest(hash.to_le_bytes())
}

/// Encodings up to this size are hashed in one shot from a stack buffer.
const STACK: usize = 2048;

/// Bytes batched before the hasher sees them: one XXH3 update per few cells rather than
/// per field.
const BUF: usize = 512;

/// A postcard output that feeds XXH3 instead of a buffer; single bytes (tags, varints) are
/// batched so the hasher sees few short updates.
struct HashFlavor {
    hasher: Xxh3,
    buf: [u8; BUF],
    len: usize,
}

impl HashFlavor {
    fn flush(&mut self) {
        self.hasher.update(&self.buf[..self.len]);
        self.len = 0;
    }
}

impl postcard::ser_flavors::Flavor for HashFlavor {
    type Output = u128;

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        if self.len == self.buf.len() {
            self.flush();
        }
        self.buf[self.len] = data;
        self.len += 1;
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if data.len() >= BUF / 2 {
            // Values: straight to the hasher after what is batched, no copy.
            self.flush();
            self.hasher.update(data);
        } else {
            if self.len + data.len() > BUF {
                self.flush();
            }
            self.buf[self.len..self.len + data.len()].copy_from_slice(data);
            self.len += data.len();
        }
        Ok(())
    }

    fn finalize(mut self) -> postcard::Result<u128> {
        self.flush();
        Ok(self.hasher.digest128())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::LastWriteWins;

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct S;
    impl Schema for S {
        type Key = u64;
        type Cell = u16;
        type Value = bytes::Bytes;
        type Version = u64;
    }

    #[test]
    fn digest_is_xxh3_of_the_canonical_encoding() {
        let mut r = Record::<S>::single(1, 9, bytes::Bytes::from_static(b"hello"));
        r.insert(2, 3, bytes::Bytes::from(vec![7; 500]), &LastWriteWins);
        let bytes = postcard::to_allocvec(&Some(&r)).unwrap();
        let expected = xxhash_rust::xxh3::xxh3_128(&bytes);
        assert_eq!(digest(Some(&r)), Digest(expected.to_le_bytes()));
        // Every size class of value: batched, straight through, across the buffer edge.
        for sizes in [
            [3, 300, 5],
            [200, 200, 200],
            [600, 1, 255],
            [256, 256, 256],
            [2000, 30, 20],
            [700, 700, 700],
            [5000, 256, 3],
        ] {
            let mut r = Record::<S>::new();
            for (c, n) in (0u16..).zip(sizes) {
                r.insert(c, 1, bytes::Bytes::from(vec![c as u8; n]), &LastWriteWins);
            }
            let bytes = postcard::to_allocvec(&Some(&r)).unwrap();
            let expected = xxhash_rust::xxh3::xxh3_128(&bytes);
            assert_eq!(
                digest(Some(&r)),
                Digest(expected.to_le_bytes()),
                "{sizes:?}"
            );
        }
        assert_ne!(digest::<S>(None), digest(Some(&Record::<S>::new())));
        // Insertion order does not change the digest.
        let mut q = Record::<S>::single(2, 3, bytes::Bytes::from(vec![7; 500]));
        q.insert(1, 9, bytes::Bytes::from_static(b"hello"), &LastWriteWins);
        assert_eq!(digest(Some(&q)), digest(Some(&r)));
    }
}
