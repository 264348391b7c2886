//! The HyParView + Plumtree composite's wire messages under arbitrary bytes: decoding never
//! panics, every failure is a typed error, and whatever decodes re-encodes to a canonical
//! form that decodes to the same message. Plumtree's own messages likewise.

#![no_main]

use epidemic_core::codec;
use epidemic_plumtree::{GossipMessage, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = codec::decode::<GossipMessage<u64>>(data) {
        let canonical = codec::encode(&msg).expect("a decoded message encodes");
        assert!(
            canonical.len() <= data.len(),
            "canonical form is never longer"
        );
        assert_eq!(codec::encoded_len(&msg), canonical.len());
        let again = codec::decode::<GossipMessage<u64>>(&canonical).expect("canonical decodes");
        assert_eq!(again, msg);
    }
    if let Ok(msg) = codec::decode::<Message>(data) {
        let canonical = codec::encode(&msg).expect("a decoded message encodes");
        assert!(
            canonical.len() <= data.len(),
            "canonical form is never longer"
        );
        let again = codec::decode::<Message>(&canonical).expect("canonical decodes");
        assert_eq!(again, msg);
    }
});
