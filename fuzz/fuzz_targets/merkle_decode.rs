//! Merkle wire bytes: any byte string decodes to a message or a typed error, never a
//! panic; a decoded fragment's data decodes to a step or a typed error; whatever decodes
//! re-encodes to bytes that decode to the same thing; and a machine fed the message (as
//! from a peer) never panics and never sends more than its message bound.

#![no_main]

use std::time::Instant;

use epidemic_core::codec::{self, encoded_len};
use epidemic_core::{Machine, Output};
use epidemic_merkle::{Config, MerkleSync, Message, Replica, Step};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(step) = Step::from_bytes(data) {
        let again = Step::from_bytes(&step.to_bytes()).expect("canonical bytes decode");
        assert_eq!(again, step);
    }
    let Ok(msg) = codec::decode::<Message>(data) else {
        return;
    };
    let bytes = codec::encode(&msg).expect("a decoded message encodes");
    assert_eq!(codec::decode::<Message>(&bytes).expect("decodes"), msg);
    let config = Config {
        max_message_bytes: 200,
        max_step_bytes: 1 << 16,
        ..Config::default()
    };
    let replica = Replica::in_memory(config.shape);
    let mut m = MerkleSync::<u64>::with_salt(config, replica, 0).expect("valid config");
    for k in 0..64 {
        m.insert(k, k);
    }
    #[allow(clippy::disallowed_methods)] // the fuzz target is the driver
    let now = Instant::now();
    m.handle_message(now, 1, msg);
    while let Some(out) = m.poll_output() {
        if let Output::Send { msg, .. } = out {
            assert!(encoded_len(&msg) <= 200);
        }
    }
});
