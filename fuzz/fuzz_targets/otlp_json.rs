//! OTLP/JSON requests of any signal (the first byte picks it), through
//! decoding and the whole pipeline.
//! See `streamgate_fuzz::run` for what every input goes through.

#![no_main]

use libfuzzer_sys::fuzz_target;
use streamgate_fuzz::{Target, run};

fuzz_target!(|data: &[u8]| {
    run(Target::Json, data);
});
