//! `epidemic-bvv` messages from arbitrary bytes: decoding never panics and never
//! allocates past the input (bitmaps are bounded, containers validated), whatever decodes
//! re-encodes to a fixed point (not always shorter: decoding repairs a container whose
//! context forgot its own values), and handing it to a node never panics nor makes the node
//! claim a dot of its own it never generated.

#![no_main]

use std::time::Instant;

use bytes::Bytes;
use epidemic_bvv::scenario::{SimNode, rng};
use epidemic_bvv::{Bvv, Config, Context, Dot, MemoryStore, Message};
use epidemic_core::Machine;
use epidemic_core::codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = codec::decode::<Message>(data) else {
        return;
    };
    // Decoding normalises (a container's context is raised to cover its values), so the
    // canonical form may be longer than the input; it is a fixed point.
    let canonical = codec::encode(&msg).expect("a decoded message encodes");
    let again = codec::decode::<Message>(&canonical).expect("canonical bytes decode");
    assert_eq!(again, msg);

    #[allow(clippy::disallowed_methods)] // the fuzz target's epoch
    let now = Instant::now();
    let mut node: SimNode = Bvv::new(
        now,
        0,
        [0, 1, 2],
        Config::default(),
        MemoryStore::new(),
        rng(0),
    )
    .expect("default config is valid");
    node.put(
        now,
        Bytes::from_static(b"k"),
        Bytes::from_static(b"v"),
        &Context::new(),
    )
    .expect("a small write is accepted");
    node.handle_message(now, 1, msg);
    while node.poll_output().is_some() {}
    assert_eq!(node.clock().base(0), 1);
    assert!(!node.clock().contains(Dot::new(0, 2)));
    assert_eq!(node.clock().entry(0).map(|e| e.bits().len()), Some(0));
});
