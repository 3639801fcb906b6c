//! The floor a server is compared with: how many items per CPU-second prost
//! decodes into owned OTLP structures from the very payloads the run sends
//! (`--baseline`), measured in this process before the load starts. With
//! `--compression` the payloads are compressed as sent, and the floor
//! decompresses each before decoding it, as any receiver must (with the
//! receiver's own bounded decompression).

use std::time::{Duration, Instant};

use prost::Message;

use super::payload::{self, Shape};
use super::{Compression, Signal};
use crate::model::{LogsRequest, MetricsRequest, TracesRequest};
use crate::receivers::otlp::{self, decompress};
use crate::telemetry::process;

/// Distinct payloads decoded in turn (as the run varies its series).
const PAYLOADS: u64 = 8;

/// Items decoded per CPU-second over about `length`; `None` without a CPU
/// clock (no `/proc`).
pub fn prost_decode_rate(
    signal: Signal,
    shape: &Shape,
    compression: Compression,
    length: Duration,
) -> Option<f64> {
    // Each payload as sent, with its size decompressed (the bound the
    // decompression is given).
    let payloads: Vec<(bytes::Bytes, usize)> = (0..PAYLOADS)
        .map(|i| {
            let encoded = match signal {
                Signal::Metrics => payload::metrics(shape, i, 1, 2).encode_to_vec(),
                Signal::Traces => payload::traces(shape, i, 2).encode_to_vec(),
                Signal::Logs => payload::logs(shape, i, 2).encode_to_vec(),
            };
            let sent = compression.compress(&encoded).ok()?;
            Some((sent.into(), encoded.len()))
        })
        .collect::<Option<_>>()?;
    let coding = match compression {
        Compression::None => otlp::Compression::Identity,
        Compression::Gzip => otlp::Compression::Gzip,
        Compression::Zstd => otlp::Compression::Zstd,
    };
    let decode = |(sent, plain_len): &(bytes::Bytes, usize)| -> bool {
        let Ok(plain) = decompress(sent.clone(), coding, *plain_len) else {
            return false;
        };
        // From a slice, as before: prost reading a `Bytes` buffer is slower.
        let bytes = &plain[..];
        match signal {
            Signal::Metrics => MetricsRequest::decode(bytes).is_ok(),
            Signal::Traces => TracesRequest::decode(bytes).is_ok(),
            Signal::Logs => LogsRequest::decode(bytes).is_ok(),
        }
    };
    let cpu_before = process::read().cpu_seconds?;
    let start = Instant::now();
    let mut decoded = 0u64;
    while start.elapsed() < length {
        for payload in &payloads {
            if decode(std::hint::black_box(payload)) {
                decoded += shape.batch;
            }
        }
    }
    let cpu = process::read().cpu_seconds? - cpu_before;
    (cpu > 0.0).then(|| decoded as f64 / cpu)
}
