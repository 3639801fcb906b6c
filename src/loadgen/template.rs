//! Pre-encoded metrics and traces requests, so the load generator spends
//! its CPU on sending rather than on building and encoding what it sends.
//!
//! A metrics request's content depends on its index only through which
//! series it covers, which repeats every `series / gcd(series, batch)`
//! requests, and through each point's times and value, which are 8-byte
//! fixed-width fields on the wire (`fixed64` times, a `double` value).
//! A traces request's also depends on its spans' serial numbers modulo
//! 100 (duration class, error flag), and its IDs are fixed-width bytes.
//! So each distinct request is encoded once with a unique marker in each
//! of those fields; later requests copy the bytes and write the real
//! values over the markers. The bytes sent are exactly what encoding
//! [`payload::metrics`] or [`payload::traces`] would give (the tests
//! check it). Log records carry their serial number in a string of
//! varying length, so they are built per request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use prost::Message as _;

use super::Signal;
use super::payload::{self, PointStamp, Shape, SpanShape, SpanStamp};

/// Encoded requests kept at most, all patterns together: beyond it the
/// remaining patterns are built per request as before.
pub const MAX_TEMPLATE_BYTES: usize = 256 << 20;

/// The high half of every marker: not a timestamp any clock gives, nor
/// the bits of a value the generator sends. The low half numbers the
/// field.
const MARKER: u64 = 0xfeed_face_0000_0000;
const MARKER_MASK: u64 = 0xffff_ffff_0000_0000;

/// What goes into one 8-byte field of a request.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Field {
    /// The request's time (a point's time, a span's end).
    Now,
    /// The run's start (a counter's start time).
    Start,
    /// A counter's value: the request index.
    Counter,
    /// A gauge's value: this base plus the request index modulo 10.
    Gauge(u32),
    /// A span's start: this many nanoseconds before the request's time.
    Ago(u32),
    /// The ID bytes of the request's `k`-th span (a span ID, or either
    /// half of a trace ID; see `payload::id_bytes`).
    Serial(u32),
    /// The same of the `k`-th span of the request before.
    SerialBefore(u32),
}

/// One distinct request, encoded, and where its fields are.
#[derive(Debug)]
struct Template {
    bytes: Vec<u8>,
    fields: Vec<(u32, Field)>,
}

impl Template {
    /// Encodes request `index` of `signal` with markers and finds them
    /// again; `None` if any marker is not found exactly once (or for logs).
    fn build(signal: Signal, shape: &Shape, index: u64) -> Option<Self> {
        let mut kinds: Vec<Field> = Vec::new();
        fn mark(kinds: &mut Vec<Field>, kind: Field) -> u64 {
            let marker = MARKER | kinds.len() as u64;
            kinds.push(kind);
            marker
        }
        let bytes = match signal {
            Signal::Metrics => payload::metrics_stamped(shape, index, |id, counter| {
                let start_ns = if counter {
                    mark(&mut kinds, Field::Start)
                } else {
                    0
                };
                let time_ns = mark(&mut kinds, Field::Now);
                let value = if counter {
                    mark(&mut kinds, Field::Counter)
                } else {
                    mark(&mut kinds, Field::Gauge((id % 100) as u32))
                };
                PointStamp {
                    start_ns,
                    time_ns,
                    value: f64::from_bits(value),
                }
            })
            .encode_to_vec(),
            Signal::Traces => {
                let first = payload::span_serial(shape, index, 0);
                let before = shape.spans == SpanShape::PairsAcross;
                payload::traces_stamped(shape, index, |serial, parent| {
                    let k = serial.wrapping_sub(first) as u32;
                    // A parent in the request before is numbered from
                    // that request's first span.
                    let root = match parent {
                        Some(p) if before => Field::SerialBefore(
                            p.wrapping_add(shape.batch).wrapping_sub(first) as u32,
                        ),
                        Some(p) => Field::Serial(p.wrapping_sub(first) as u32),
                        None => Field::Serial(k),
                    };
                    let mut trace_id = [0; 16];
                    trace_id[..8].copy_from_slice(&mark(&mut kinds, root).to_le_bytes());
                    trace_id[8..].copy_from_slice(&mark(&mut kinds, root).to_le_bytes());
                    let span_id = mark(&mut kinds, Field::Serial(k)).to_le_bytes();
                    let parent_span_id = parent.map(|_| mark(&mut kinds, root).to_le_bytes());
                    let ago = payload::span_duration_ns(serial) as u32;
                    SpanStamp {
                        trace_id,
                        span_id,
                        parent_span_id,
                        start_ns: mark(&mut kinds, Field::Ago(ago)),
                        end_ns: mark(&mut kinds, Field::Now),
                    }
                })
                .encode_to_vec()
            }
            Signal::Logs => return None,
        };
        let mut found = vec![false; kinds.len()];
        let mut fields = Vec::with_capacity(kinds.len());
        let mut at = 0;
        while let Some(word) = bytes.get(at..at + 8) {
            let value = u64::from_le_bytes(word.try_into().ok()?);
            if value & MARKER_MASK != MARKER {
                at += 1;
                continue;
            }
            let n = (value & !MARKER_MASK) as usize;
            if n >= kinds.len() || std::mem::replace(&mut found[n], true) {
                return None;
            }
            fields.push((u32::try_from(at).ok()?, kinds[n]));
            at += 8;
        }
        found.iter().all(|&f| f).then_some(Self { bytes, fields })
    }

    /// Request `index`'s bytes at `now_ns`, the run started at `start_ns`.
    fn fill(&self, shape: &Shape, index: u64, start_ns: u64, now_ns: u64) -> Bytes {
        let mut out = self.bytes.clone();
        let counter = payload::point_value(0, index, true).to_bits();
        for &(at, field) in &self.fields {
            let word = match field {
                Field::Now => now_ns.to_le_bytes(),
                Field::Start => start_ns.to_le_bytes(),
                Field::Counter => counter.to_le_bytes(),
                Field::Gauge(base) => payload::point_value(u64::from(base), index, false)
                    .to_bits()
                    .to_le_bytes(),
                Field::Ago(ns) => now_ns.saturating_sub(u64::from(ns)).to_le_bytes(),
                Field::Serial(k) => {
                    payload::id_bytes(payload::span_serial(shape, index, u64::from(k)))
                }
                Field::SerialBefore(k) => payload::id_bytes(
                    payload::span_serial(shape, index, u64::from(k)).wrapping_sub(shape.batch),
                ),
            };
            let at = at as usize;
            if let Some(dst) = out.get_mut(at..at + 8) {
                dst.copy_from_slice(&word);
            }
        }
        Bytes::from(out)
    }
}

/// The encoded requests of one run, built on first use and shared by its
/// workers.
#[derive(Debug)]
pub struct Templates {
    signal: Signal,
    shape: Shape,
    /// One slot per distinct request (`None` inside: not kept, see
    /// [`MAX_TEMPLATE_BYTES`]); empty when there are too many to keep.
    slots: Box<[OnceLock<Option<Template>>]>,
    kept_bytes: AtomicUsize,
}

impl Templates {
    /// Templates for `signal`'s requests (`None` for logs, which are
    /// built per request).
    pub fn new(signal: Signal, shape: Shape) -> Option<Arc<Self>> {
        let period = match signal {
            Signal::Metrics => distinct_requests(&shape),
            Signal::Traces => lcm(distinct_requests(&shape), serial_period(&shape)),
            Signal::Logs => return None,
        };
        // Each request is at least a few bytes a point: more distinct
        // ones than fit the budget at one byte a point are never kept.
        let slots = if period.saturating_mul(shape.batch.max(1)) <= MAX_TEMPLATE_BYTES as u64 {
            (0..period).map(|_| OnceLock::new()).collect()
        } else {
            Box::default()
        };
        Some(Arc::new(Self {
            signal,
            shape,
            slots,
            kept_bytes: AtomicUsize::new(0),
        }))
    }

    /// Request `index`'s protobuf bytes, or `None` when its pattern is
    /// not kept (the caller then builds and encodes it).
    pub fn encoded(&self, index: u64, start_ns: u64, now_ns: u64) -> Option<Bytes> {
        if self.slots.is_empty() {
            return None;
        }
        let slot = &self.slots[(index % self.slots.len() as u64) as usize];
        let template = slot.get_or_init(|| {
            let template = Template::build(self.signal, &self.shape, index)?;
            let size = template.bytes.len() + template.fields.len() * size_of::<(u32, Field)>();
            let before = self.kept_bytes.fetch_add(size, Ordering::Relaxed);
            (before + size <= MAX_TEMPLATE_BYTES).then_some(template)
        });
        template
            .as_ref()
            .map(|t| t.fill(&self.shape, index, start_ns, now_ns))
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `a · b / gcd(a, b)`, saturating (a period too long to keep is then
/// refused by the size check).
fn lcm(a: u64, b: u64) -> u64 {
    (a / gcd(a, b).max(1)).saturating_mul(b)
}

/// How many requests go by before the series covered repeat:
/// `series / gcd(series, batch)`.
fn distinct_requests(shape: &Shape) -> u64 {
    let series = shape.series.max(1);
    series / gcd(series, shape.batch % series)
}

/// How many requests go by before the spans' serial numbers modulo 100
/// (duration class, error flag) repeat.
fn serial_period(shape: &Shape) -> u64 {
    100 / gcd(100, shape.batch % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(series: u64, batch: u64, attributes: u64) -> Shape {
        Shape {
            series,
            batch,
            attributes,
            spans: SpanShape::Roots,
        }
    }

    #[test]
    fn filled_requests_are_the_encoded_requests_byte_for_byte() {
        let start_ns = 1_764_000_000_123_456_789;
        for shape in [
            shape(25, 10, 3),
            shape(10_000, 1_000, 5),
            shape(7, 10, 0),
            shape(1, 1, 1),
            shape(100, 30, 2),
            shape(1_000, 137, 4),
        ] {
            let metrics = Templates::new(Signal::Metrics, shape).unwrap();
            let traces =
                [SpanShape::Roots, SpanShape::Pairs, SpanShape::PairsAcross].map(|spans| {
                    let s = Shape { spans, ..shape };
                    (s, Templates::new(Signal::Traces, s).unwrap())
                });
            for index in [0, 1, 2, 3, 9, 10, 11, 99, 100, 101, 12_345] {
                let now_ns = start_ns + index * 1_000_000_007;
                let filled = metrics.encoded(index, start_ns, now_ns).expect("kept");
                let built = payload::metrics(&shape, index, start_ns, now_ns).encode_to_vec();
                assert_eq!(filled.as_ref(), built.as_slice(), "{shape:?} index {index}");
                for (shape, traces) in &traces {
                    let filled = traces.encoded(index, start_ns, now_ns).expect("kept");
                    let built = payload::traces(shape, index, now_ns).encode_to_vec();
                    assert_eq!(filled.as_ref(), built.as_slice(), "{shape:?} index {index}");
                }
            }
        }
    }

    #[test]
    fn series_repeat_every_series_over_gcd_requests() {
        assert_eq!(distinct_requests(&shape(10_000, 1_000, 5)), 10);
        assert_eq!(distinct_requests(&shape(25, 10, 5)), 5);
        assert_eq!(distinct_requests(&shape(7, 10, 5)), 7);
        assert_eq!(distinct_requests(&shape(1_000_000, 1_000, 5)), 1_000);
        assert_eq!(distinct_requests(&shape(5, 0, 5)), 1);
    }

    #[test]
    fn span_flags_and_durations_repeat_with_the_serial_modulo_100() {
        assert_eq!(serial_period(&shape(10_000, 1_000, 5)), 1);
        assert_eq!(serial_period(&shape(10_000, 30, 5)), 10);
        assert_eq!(serial_period(&shape(10_000, 137, 5)), 100);
        assert_eq!(lcm(10, 4), 20);
        assert_eq!(lcm(u64::MAX, 3), u64::MAX);
    }

    #[test]
    fn too_many_distinct_requests_are_built_per_request() {
        // 2^40 series one at a time: never kept, and no memory taken.
        let templates = Templates::new(Signal::Metrics, shape(1 << 40, 1, 5)).unwrap();
        assert!(templates.slots.is_empty());
        assert_eq!(templates.encoded(3, 1, 2), None);
        assert!(Templates::new(Signal::Logs, shape(10, 1, 1)).is_none());
    }
}
