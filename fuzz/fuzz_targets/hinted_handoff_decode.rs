//! Hinted-handoff wire messages and hint-log bytes under arbitrary input: decoding never
//! panics, every failure is a typed error, whatever decodes re-encodes to a fixed point;
//! the log scanner never panics and never claims more bytes than it was given.

#![no_main]

use epidemic_core::codec;
use epidemic_hinted_handoff::Message;
use epidemic_hinted_handoff::log::scan;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = codec::decode::<Message>(data) {
        let canonical = codec::encode(&msg).expect("a decoded message encodes");
        assert!(canonical.len() <= data.len());
        let again = codec::decode::<Message>(&canonical).expect("canonical bytes decode");
        assert_eq!(again, msg);
    }
    let mut n = 0u64;
    let (good, count) = scan(data, |_| n += 1);
    assert!(good <= data.len());
    assert_eq!(count, n);
});
