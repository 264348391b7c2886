//! The read path's wire messages under arbitrary bytes: decoding never panics, every
//! failure is a typed error, and whatever decodes re-encodes to a canonical form that
//! decodes to the same message. A decoded record's digest is stable across the round trip.

#![no_main]

use bytes::Bytes;
use epidemic_core::codec;
use epidemic_read_repair::{Message, Schema, VersionVector, digest};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Lww;
impl Schema for Lww {
    type Key = Bytes;
    type Cell = u16;
    type Value = Bytes;
    type Version = u64;
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Vv;
impl Schema for Vv {
    type Key = u32;
    type Cell = ();
    type Value = Bytes;
    type Version = VersionVector;
}

fn check<S: Schema>(data: &[u8]) {
    let Ok(msg) = codec::decode::<Message<S>>(data) else {
        return;
    };
    let bytes = codec::encode(&msg).expect("a decoded message encodes");
    assert!(bytes.len() <= data.len(), "canonical form is never longer");
    let again = codec::decode::<Message<S>>(&bytes).expect("canonical bytes decode");
    assert_eq!(again, msg);
    if let (Message::Data { record: a, .. }, Message::Data { record: b, .. }) = (&msg, &again) {
        assert_eq!(digest(a.as_ref()), digest(b.as_ref()));
    }
}

fuzz_target!(|data: &[u8]| {
    check::<Lww>(data);
    check::<Vv>(data);
});
