//! The floor a server is compared with: how many items per CPU-second prost
//! decodes into owned OTLP structures from the very payloads the run sends
//! (`--baseline`), measured in this process before the load starts. With
//! `--compression` the payloads are compressed as sent, and the floor
//! decompresses each before decoding it, as any receiver must.

use std::time::{Duration, Instant};

use prost::Message;

use super::payload::{self, Shape};
use super::{Compression, Signal};
use crate::model::{LogsRequest, MetricsRequest, TracesRequest};
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
    let payloads: Vec<Vec<u8>> = (0..PAYLOADS)
        .map(|i| {
            let encoded = match signal {
                Signal::Metrics => payload::metrics(shape, i, 1, 2).encode_to_vec(),
                Signal::Traces => payload::traces(shape, i, 2).encode_to_vec(),
                Signal::Logs => payload::logs(shape, i, 2).encode_to_vec(),
            };
            compression.compress(&encoded).ok()
        })
        .collect::<Option<_>>()?;
    let mut plain = Vec::new();
    let mut decode = |bytes: &[u8]| -> bool {
        let bytes = match decompress(compression, bytes, &mut plain) {
            Some(()) => &plain[..],
            None if compression == Compression::None => bytes,
            None => return false,
        };
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
        for bytes in &payloads {
            if decode(std::hint::black_box(bytes)) {
                decoded += shape.batch;
            }
        }
    }
    let cpu = process::read().cpu_seconds? - cpu_before;
    (cpu > 0.0).then(|| decoded as f64 / cpu)
}

/// Decompresses `bytes` into `out` (reused); `None` when they are not
/// compressed, or are corrupt.
fn decompress(compression: Compression, bytes: &[u8], out: &mut Vec<u8>) -> Option<()> {
    use std::io::Read as _;
    out.clear();
    match compression {
        Compression::None => None,
        Compression::Gzip => flate2::read::GzDecoder::new(bytes)
            .read_to_end(out)
            .ok()
            .map(drop),
        Compression::Zstd => zstd::stream::read::Decoder::new(bytes)
            .ok()?
            .read_to_end(out)
            .ok()
            .map(drop),
    }
}
