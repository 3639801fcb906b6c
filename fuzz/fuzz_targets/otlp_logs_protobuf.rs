//! OTLP logs in protobuf: prost decoding, log counts, the log tail, and the
//! metrics they emit.
//! See `streamgate_fuzz::run` for what every input goes through.

#![no_main]

use libfuzzer_sys::fuzz_target;
use streamgate_fuzz::{Target, run};

fuzz_target!(|data: &[u8]| {
    run(Target::LogsProtobuf, data);
});
