//! The window processor's durable state: every stream's identity and its
//! windows' sketches (1m to 1d), so the day-long percentiles a dashboard
//! shows do not start from nothing after a restart. Restored streams are
//! evaluated at the next step like any other, before new data arrives; a
//! stream whose windows no longer match the configuration (other window
//! lengths, sub-buckets or sketch accuracy) is discarded.
//!
//! Payload (postcard): the number of streams, then each stream, with its
//! resource, scope and attributes as protobuf.

use prost::Message;
use serde::{Deserialize, Serialize};

use super::WindowProcessor;
use super::stream::{LastHistogram, Stream, StreamOrigin};
use crate::analytics::aggregation::{SavedWindows, WindowedStats};
use crate::model::otlp::common::InstrumentationScope;
use crate::model::otlp::resource::Resource;
use crate::pipeline::durable::{Durable, DurableError, Restored, append as put};

#[derive(Serialize)]
struct SavedRef<'a> {
    hash: u64,
    last_seen_ms: u64,
    raw_values: bool,
    resource: Vec<u8>,
    /// Serialised as `Vec<u8>` is (a sequence of bytes).
    scope: &'a [u8],
    metric: &'a str,
    unit: &'a str,
    attributes: Vec<u8>,
    stats: &'a WindowedStats,
    last_histogram: &'a Option<Box<LastHistogram>>,
}

#[derive(Deserialize)]
struct SavedOwned {
    hash: u64,
    last_seen_ms: u64,
    raw_values: bool,
    resource: Vec<u8>,
    scope: Vec<u8>,
    metric: String,
    unit: String,
    attributes: Vec<u8>,
    stats: SavedWindows,
    last_histogram: Option<Box<LastHistogram>>,
}

/// Attributes as a protobuf `Resource` (its field 1 is the attribute list).
fn attributes_bytes(attributes: &[crate::model::otlp::common::KeyValue]) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::message::encode_repeated(1, attributes, &mut out);
    out
}

/// Streams written per lock of the stream map.
const CHUNK: usize = 64;

/// Appends one stream; its staged samples go into the windows first, so
/// none is lost.
fn write_stream(hash: u64, stream: &mut Stream, out: &mut Vec<u8>) -> Result<(), DurableError> {
    stream.flush();
    put(
        &SavedRef {
            hash,
            last_seen_ms: stream.last_seen_ms,
            raw_values: stream.raw_values,
            resource: attributes_bytes(&stream.resource()),
            scope: stream.scope_bytes(),
            metric: &stream.metric,
            unit: &stream.unit,
            attributes: attributes_bytes(&stream.attributes()),
            stats: &stream.stats,
            last_histogram: &stream.last_histogram,
        },
        out,
    )
}

impl Durable for WindowProcessor {
    fn state_name(&self) -> &'static str {
        "windows"
    }

    fn state_version(&self) -> u32 {
        // 2: a sub-bucket's sketch is made on its first value and given
        // back when it leaves its window. 3: nested windows keep each
        // value once, in the shortest window that shows it (the same
        // layout, read differently).
        3
    }

    /// Written [`CHUNK`] streams per lock, so ingest waits at most for
    /// one chunk (a stream's sketches are kilobytes).
    fn snapshot(&self, out: &mut Vec<u8>) -> Result<(), DurableError> {
        let hashes: Vec<u64> = self.streams.lock().keys().copied().collect();
        let mut items = Vec::new();
        let mut written = 0u64;
        for chunk in hashes.chunks(CHUNK) {
            let mut streams = self.streams.lock();
            for hash in chunk {
                let Some(stream) = streams.get_mut(hash) else {
                    continue;
                };
                written += 1;
                write_stream(*hash, stream, &mut items)?;
            }
        }
        put(&written, out)?;
        out.extend_from_slice(&items);
        Ok(())
    }

    fn restore(&self, snapshot: &[u8]) -> Result<Restored, DurableError> {
        let (count, mut rest): (u64, _) =
            postcard::take_from_bytes(snapshot).map_err(DurableError::decode)?;
        let mut outcome = Restored::default();
        // Built aside and taken in only once the whole snapshot has been
        // read: a snapshot that fails half-way leaves no stream (and no
        // refusal) behind.
        let room = self
            .config
            .max_series
            .saturating_sub(self.streams.lock().len());
        let mut streams: Vec<(u64, Box<Stream>)> = Vec::new();
        let mut refusals: Vec<(u64, f64, String)> = Vec::new();
        for _ in 0..count {
            let (saved, tail): (SavedOwned, _) =
                postcard::take_from_bytes(rest).map_err(DurableError::decode)?;
            rest = tail;
            let stats = match self.empty.restore(saved.stats) {
                Some(stats) if streams.len() < room => stats,
                _ => {
                    outcome.discarded += 1;
                    continue;
                }
            };
            let resource = Resource::decode(&saved.resource[..]).map_err(DurableError::decode)?;
            let scope =
                InstrumentationScope::decode(&saved.scope[..]).map_err(DurableError::decode)?;
            let attributes =
                Resource::decode(&saved.attributes[..]).map_err(DurableError::decode)?;
            let origin = StreamOrigin {
                resource: &resource.attributes,
                scope: &scope,
                metric: &saved.metric,
                unit: &saved.unit,
                attributes: &attributes.attributes,
            };
            // A series whose labels the exporter now refuses (its limits
            // changed) starts no windows.
            let mut stream = match self.new_stream(origin, stats) {
                Ok(stream) => stream,
                Err(why) => {
                    let now_secs = saved.last_seen_ms as f64 / 1000.0;
                    refusals.push((saved.hash, now_secs, why));
                    outcome.discarded += 1;
                    continue;
                }
            };
            stream.last_seen_ms = saved.last_seen_ms;
            stream.raw_values = saved.raw_values;
            stream.last_histogram = saved.last_histogram;
            streams.push((saved.hash, Box::new(stream)));
            outcome.items += 1;
        }
        if !rest.is_empty() {
            return Err(DurableError::decode("bytes after the last stream"));
        }
        self.streams.lock().extend(streams);
        for (hash, now_secs, why) in refusals {
            self.refused.refuse(hash, now_secs, &why);
        }
        Ok(outcome)
    }
}
