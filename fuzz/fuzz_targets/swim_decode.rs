//! SWIM's wire under arbitrary bytes: decoding never panics, every failure is a typed
//! error, whatever decodes re-encodes to a fixed point, and feeding the decoded message to
//! a member (from any sender) never panics and keeps its bounds.

#![no_main]

use std::time::{Duration, Instant};

use epidemic_core::codec;
use epidemic_core::{Machine, Output};
use epidemic_swim::scenario::seeded_node;
use epidemic_swim::{Config, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&from, bytes)) = data.split_first() else {
        return;
    };
    let Ok(msg) = codec::decode::<Message<u64>>(bytes) else {
        return;
    };
    let again = codec::encode(&msg).expect("a decoded message encodes");
    assert_eq!(
        codec::decode::<Message<u64>>(&again).expect("round trip"),
        msg
    );
    assert!(again.len() <= bytes.len());

    let mut config = Config::lan();
    config.max_members = 16;
    config.max_queue = 16;
    config.max_relays = 2;
    let mut node = seeded_node(0, &config, 1);
    #[allow(clippy::disallowed_methods)] // the fuzz driver is a driver: it may read the clock
    let t0 = Instant::now();
    node.start(t0);
    for i in 0..3u32 {
        let now = t0 + Duration::from_millis(u64::from(i) * 700);
        node.handle_message(now, u64::from(from % 8), msg.clone());
        node.handle_timeout(now);
        while let Some(out) = node.poll_output() {
            if let Output::Send { msg, .. } = out {
                assert!(codec::encoded_len(&msg) <= config.max_packet_size);
            }
        }
    }
    assert!(node.num_members() <= config.max_members);
    assert!(node.queued_updates() <= config.max_queue);
    assert_eq!(
        node.members().filter(|m| m.state.is_live()).count(),
        node.num_live()
    );
    assert!(node.member(&0).is_none(), "never an entry for itself");
});
