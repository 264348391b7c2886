//! A coordinator under arbitrary operation sequences: reads with any replica list and
//! level, answers from any peer with any id and record, repair acknowledgements, lost
//! links and time jumps. Nothing panics, the in-flight bound holds, every accepted read
//! ends exactly once (done or failed), no later than the first timeout call past its
//! deadline, and a completed read's value keeps one version per cell under LWW.

#![no_main]

use libfuzzer_sys::fuzz_target;

include!("../../read-repair/tests/support/ops.rs");

fuzz_target!(|input: Input| {
    check(input);
});
