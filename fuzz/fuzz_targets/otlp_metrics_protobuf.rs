//! OTLP metrics in protobuf: in-place validation, the window processor,
//! OTel→Prometheus translation, the series store and `/metrics` rendering.
//! See `streamgate_fuzz::run` for what every input goes through.

#![no_main]

use libfuzzer_sys::fuzz_target;
use streamgate_fuzz::{Target, run};

fuzz_target!(|data: &[u8]| {
    run(Target::MetricsProtobuf, data);
});
