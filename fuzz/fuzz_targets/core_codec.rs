//! The wire envelope under arbitrary bytes: decoding never panics and never allocates
//! unboundedly, every failure is a typed error, and whatever decodes re-encodes to a
//! canonical form that is a fixed point (decode ∘ encode changes nothing) and never longer
//! than the input. (postcard accepts overlong varints, so the input itself need not be
//! canonical: nothing in epidemic may hash received bytes as an identity.)

#![no_main]

use bytes::Bytes;
use epidemic_core::codec::{self, Envelope, protocol_id};
use libfuzzer_sys::fuzz_target;
use serde::{Deserialize, Serialize};

/// A message with the shapes protocol messages have: variants, varints, options, nested
/// lists, shared byte payloads, strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Msg {
    Ping {
        seq: u64,
        incarnation: u32,
    },
    Gossip {
        id: [u8; 16],
        round: u16,
        payload: Bytes,
    },
    Updates(Vec<(u64, Option<String>, i64)>),
    Digest {
        ranges: Vec<(Vec<u8>, u128)>,
        flag: bool,
        ratio: f32,
    },
}

impl Envelope for Msg {
    const PROTOCOL: u8 = protocol_id::TEST;
    const VERSION: u8 = 1;
}

fuzz_target!(|data: &[u8]| {
    match codec::decode::<Msg>(data) {
        Ok(msg) => {
            let canonical = codec::encode(&msg).expect("a decoded message encodes");
            assert!(
                canonical.len() <= data.len(),
                "canonical form is never longer"
            );
            assert_eq!(codec::encoded_len(&msg), canonical.len());
            // Compared as bytes, not with `==`: a NaN float is not equal to itself.
            let again = codec::decode::<Msg>(&canonical).expect("canonical bytes decode");
            assert_eq!(
                codec::encode(&again).expect("encodes"),
                canonical,
                "not a fixed point"
            );
        }
        Err(e) => {
            // Typed and printable; and the envelope check comes first.
            let _ = e.to_string();
            if data.len() < codec::ENVELOPE_LEN {
                assert_eq!(e, codec::DecodeError::Truncated);
            }
        }
    }
});
