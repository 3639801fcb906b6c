//! The most recent spans and log records, for `GET /api/v1/tail/traces`
//! and `GET /api/v1/tail/logs`.
//!
//! [`Tail`] is a [`TracesConsumer`] and a [`LogsConsumer`] that `app.rs`
//! adds to the traces and logs fan-outs. For each request it copies only
//! what the JSON shows, bounded (strings cut at `max_string_length`, at
//! most `max_attributes` attributes), and only the last `capacity` items
//! of the request: each item is rendered once, at ingest, into one JSON
//! string, which is what the ring keeps. The ring lock is taken once per
//! request, to append the batch; a query copies the strings it returns.
//!
//! Once a ring is full, a request is captured only if the last capture is
//! [`CAPTURE_EVERY`] old: under heavy ingest the tail shows the spans of
//! the newest captured request (at most that old) instead of rendering
//! every item only to drop it a moment later.

use std::collections::VecDeque;
use std::fmt::{self, Display, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::model::otlp::common::{AnyValue, KeyValue, any_value};
use crate::model::otlp::logs::LogRecord;
use crate::model::otlp::resource::Resource;
use crate::model::otlp::trace::{Span, span::SpanKind, status::StatusCode};
use crate::model::text::write_any_value;
use crate::model::{LogsBatch, TracesBatch};
use crate::pipeline::{ConsumeResult, Consumed, LogsConsumer, TracesConsumer};

use super::ApiState;
use super::config::TailConfig;
use super::error::{ApiError, Params, RawParams};

/// One kept item: its service (for the filter) and its JSON.
#[derive(Debug)]
struct Item {
    service: Arc<str>,
    json: Box<str>,
}

/// Least time between two captured requests once a ring is full.
pub const CAPTURE_EVERY: Duration = Duration::from_millis(100);

/// A bounded ring of items, newest at the back.
#[derive(Debug)]
pub struct Ring {
    capacity: usize,
    items: Mutex<VecDeque<Item>>,
    /// Set once the ring has held `capacity` items.
    full: AtomicBool,
    /// When the last request was captured, in µs since `epoch`.
    last_capture_us: AtomicU64,
    epoch: Instant,
}

impl Ring {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            items: Mutex::new(VecDeque::new()),
            full: AtomicBool::new(false),
            last_capture_us: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Whether to capture the request arriving now: always until full,
    /// then once per [`CAPTURE_EVERY`] (one caller wins the slot).
    fn should_capture(&self) -> bool {
        if self.capacity == 0 {
            return false;
        }
        let now = self.epoch.elapsed().as_micros() as u64;
        let last = self.last_capture_us.load(Ordering::Relaxed);
        if self.full.load(Ordering::Relaxed)
            && now.saturating_sub(last) < CAPTURE_EVERY.as_micros() as u64
        {
            return false;
        }
        self.last_capture_us
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
            || !self.full.load(Ordering::Relaxed)
    }

    /// Appends a batch (oldest first), dropping the oldest items over
    /// capacity.
    fn extend(&self, batch: Vec<Item>) {
        if batch.is_empty() {
            return;
        }
        let mut items = self.items.lock();
        let excess = (items.len() + batch.len()).saturating_sub(self.capacity);
        let dropped = excess.min(items.len());
        items.drain(..dropped);
        let skip = batch.len().saturating_sub(self.capacity);
        items.extend(batch.into_iter().skip(skip));
        if items.len() >= self.capacity {
            self.full.store(true, Ordering::Relaxed);
        }
    }

    /// Up to `limit` items of `service` (any when `None`), newest first,
    /// as a JSON array.
    fn newest(&self, service: Option<&str>, limit: usize) -> String {
        let items = self.items.lock();
        let mut out = String::from("[");
        let mut n = 0;
        for item in items.iter().rev() {
            if n == limit {
                break;
            }
            if service.is_some_and(|s| *item.service != *s) {
                continue;
            }
            if n > 0 {
                out.push(',');
            }
            out.push_str(&item.json);
            n += 1;
        }
        out.push(']');
        out
    }

    pub fn len(&self) -> usize {
        self.items.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.lock().is_empty()
    }
}

/// The rings of recent spans and log records.
#[derive(Debug)]
pub struct Tail {
    spans: Ring,
    logs: Ring,
    max_string: usize,
    max_attributes: usize,
}

impl Tail {
    pub fn new(config: &TailConfig) -> Self {
        Self {
            spans: Ring::new(config.spans),
            logs: Ring::new(config.logs),
            max_string: config.max_string_length,
            max_attributes: config.max_attributes,
        }
    }

    /// Up to `limit` recent spans (of `service`), newest first: a JSON array.
    pub fn spans(&self, service: Option<&str>, limit: usize) -> String {
        self.spans.newest(service, limit)
    }

    /// Up to `limit` recent log records (of `service`), newest first.
    pub fn logs(&self, service: Option<&str>, limit: usize) -> String {
        self.logs.newest(service, limit)
    }

    fn cut<'a>(&self, text: &'a str) -> Cut<'a> {
        Cut {
            text,
            max: self.max_string,
        }
    }

    fn attributes<'a>(&self, kvs: &'a [KeyValue]) -> Attributes<'a> {
        Attributes {
            kvs: &kvs[..kvs.len().min(self.max_attributes)],
            max_string: self.max_string,
        }
    }
}

/// Renders one item into `buf` and returns it as kept.
fn render(buf: &mut Vec<u8>, service: &Arc<str>, item: &impl Serialize) -> Option<Item> {
    buf.clear();
    serde_json::to_writer(&mut *buf, item).ok()?;
    Some(Item {
        service: service.clone(),
        json: std::str::from_utf8(buf).ok()?.into(),
    })
}

/// `service.name` of a resource, or empty.
fn service_of(resource: Option<&Resource>) -> Arc<str> {
    let value = resource
        .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
        .and_then(|kv| kv.value.as_ref());
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => Arc::from(s.as_str()),
        Some(_) => {
            let mut s = String::new();
            write_any_value(value, &mut s);
            Arc::from(s)
        }
        None => Arc::from(""),
    }
}

impl TracesConsumer for Tail {
    fn consume_traces(&self, batch: &TracesBatch) -> ConsumeResult {
        let capacity = self.spans.capacity;
        if !self.spans.should_capture() {
            return Ok(Consumed::all());
        }
        let request = batch.request();
        let total: usize = request
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum();
        // Only the last `capacity` spans of the request can stay.
        let mut skip = total.saturating_sub(capacity);
        let mut batch = Vec::with_capacity(total.min(capacity));
        let mut buf = Vec::with_capacity(512);
        for rs in &request.resource_spans {
            let spans = rs
                .scope_spans
                .iter()
                .map(|ss| ss.spans.len())
                .sum::<usize>();
            if skip >= spans {
                skip -= spans;
                continue;
            }
            let service = service_of(rs.resource.as_ref());
            for span in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                batch.extend(render(&mut buf, &service, &self.span_json(span, &service)));
            }
        }
        self.spans.extend(batch);
        Ok(Consumed::all())
    }
}

impl LogsConsumer for Tail {
    fn consume_logs(&self, batch: &LogsBatch) -> ConsumeResult {
        let capacity = self.logs.capacity;
        if !self.logs.should_capture() {
            return Ok(Consumed::all());
        }
        let request = batch.request();
        let total: usize = request
            .resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .map(|sl| sl.log_records.len())
            .sum();
        let mut skip = total.saturating_sub(capacity);
        let mut batch = Vec::with_capacity(total.min(capacity));
        let mut buf = Vec::with_capacity(512);
        let mut body = String::new();
        for rl in &request.resource_logs {
            let records = rl
                .scope_logs
                .iter()
                .map(|sl| sl.log_records.len())
                .sum::<usize>();
            if skip >= records {
                skip -= records;
                continue;
            }
            let service = service_of(rl.resource.as_ref());
            for record in rl.scope_logs.iter().flat_map(|sl| &sl.log_records) {
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                let item = self.log_json(record, &service, &mut body);
                batch.extend(render(&mut buf, &service, &item));
            }
        }
        self.logs.extend(batch);
        Ok(Consumed::all())
    }
}

/// The JSON of a span.
#[derive(serde::Serialize)]
struct SpanJson<'a> {
    trace_id: Hex<'a>,
    span_id: Hex<'a>,
    #[serde(skip_serializing_if = "Hex::is_empty")]
    parent_span_id: Hex<'a>,
    name: Cut<'a>,
    kind: &'static str,
    status: &'static str,
    #[serde(skip_serializing_if = "Cut::is_empty")]
    status_message: Cut<'a>,
    start_time_unix_nano: u64,
    duration_seconds: f64,
    service: Cut<'a>,
    attributes: Attributes<'a>,
    #[serde(skip_serializing_if = "is_zero")]
    dropped_attributes: u64,
}

/// The JSON of a log record.
#[derive(serde::Serialize)]
struct LogJson<'a> {
    time_unix_nano: u64,
    severity: Cut<'a>,
    severity_number: i32,
    body: Cut<'a>,
    service: Cut<'a>,
    #[serde(skip_serializing_if = "Hex::is_empty")]
    trace_id: Hex<'a>,
    #[serde(skip_serializing_if = "Hex::is_empty")]
    span_id: Hex<'a>,
    attributes: Attributes<'a>,
    #[serde(skip_serializing_if = "is_zero")]
    dropped_attributes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Tail {
    fn span_json<'a>(&self, span: &'a Span, service: &'a str) -> SpanJson<'a> {
        let kind = match SpanKind::try_from(span.kind) {
            Ok(SpanKind::Internal) => "internal",
            Ok(SpanKind::Server) => "server",
            Ok(SpanKind::Client) => "client",
            Ok(SpanKind::Producer) => "producer",
            Ok(SpanKind::Consumer) => "consumer",
            _ => "unspecified",
        };
        let (status, message) = match &span.status {
            Some(s) => (
                match StatusCode::try_from(s.code) {
                    Ok(StatusCode::Ok) => "ok",
                    Ok(StatusCode::Error) => "error",
                    _ => "unset",
                },
                s.message.as_str(),
            ),
            None => ("unset", ""),
        };
        let duration_ns = span
            .end_time_unix_nano
            .saturating_sub(span.start_time_unix_nano);
        SpanJson {
            trace_id: Hex(&span.trace_id),
            span_id: Hex(&span.span_id),
            parent_span_id: Hex(&span.parent_span_id),
            name: self.cut(&span.name),
            kind,
            status,
            status_message: self.cut(message),
            start_time_unix_nano: span.start_time_unix_nano,
            duration_seconds: duration_ns as f64 / 1e9,
            service: self.cut(service),
            attributes: self.attributes(&span.attributes),
            dropped_attributes: dropped(&span.attributes, self.max_attributes)
                + span.dropped_attributes_count as u64,
        }
    }

    /// `body` is a scratch buffer for a body that is not a string.
    fn log_json<'a>(
        &self,
        record: &'a LogRecord,
        service: &'a str,
        body: &'a mut String,
    ) -> LogJson<'a> {
        let text = match record.body.as_ref().and_then(|b| b.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => s.as_str(),
            _ => {
                body.clear();
                write_any_value(record.body.as_ref(), body);
                body.as_str()
            }
        };
        let severity = if record.severity_text.is_empty() {
            severity_range(record.severity_number)
        } else {
            record.severity_text.as_str()
        };
        LogJson {
            time_unix_nano: if record.time_unix_nano != 0 {
                record.time_unix_nano
            } else {
                record.observed_time_unix_nano
            },
            severity: self.cut(severity),
            severity_number: record.severity_number,
            body: self.cut(text),
            service: self.cut(service),
            trace_id: Hex(&record.trace_id),
            span_id: Hex(&record.span_id),
            attributes: self.attributes(&record.attributes),
            dropped_attributes: dropped(&record.attributes, self.max_attributes)
                + record.dropped_attributes_count as u64,
        }
    }
}

fn dropped(kvs: &[KeyValue], max: usize) -> u64 {
    kvs.len().saturating_sub(max) as u64
}

/// The range name of an OTel severity number (as log metrics name it).
fn severity_range(number: i32) -> &'static str {
    match number {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "FATAL",
        _ => "UNSPECIFIED",
    }
}

/// Bytes as lowercase hex.
struct Hex<'a>(&'a [u8]);

impl Hex<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        // Ids are 8 or 16 bytes: hex them on the stack in one write.
        let mut text = [0u8; 64];
        for chunk in self.0.chunks(32) {
            for (i, b) in chunk.iter().enumerate() {
                text[2 * i] = DIGITS[(b >> 4) as usize];
                text[2 * i + 1] = DIGITS[(b & 15) as usize];
            }
            let hex = std::str::from_utf8(&text[..2 * chunk.len()]).map_err(|_| fmt::Error)?;
            f.write_str(hex)?;
        }
        Ok(())
    }
}

impl Serialize for Hex<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A string cut to at most `max` bytes (at a character boundary), marked
/// with a trailing `…` when cut.
#[derive(Clone, Copy)]
struct Cut<'a> {
    text: &'a str,
    max: usize,
}

impl<'a> Cut<'a> {
    fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The kept prefix and whether the text was cut.
    fn parts(&self) -> (&'a str, bool) {
        if self.text.len() <= self.max {
            return (self.text, false);
        }
        let mut end = self.max;
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        (&self.text[..end], true)
    }
}

impl Display for Cut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kept, cut) = self.parts();
        f.write_str(kept)?;
        if cut {
            f.write_char('…')?;
        }
        Ok(())
    }
}

impl Serialize for Cut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.parts() {
            (kept, false) => s.serialize_str(kept),
            _ => s.collect_str(self),
        }
    }
}

/// Attributes as a JSON object; scalars keep their JSON type, bytes,
/// arrays and maps are shown as text (as labels show them). A key given
/// twice is shown with its first value (JSON object names should be
/// unique, and parsers keep one), as `job` and `instance` read the first.
struct Attributes<'a> {
    kvs: &'a [KeyValue],
    max_string: usize,
}

impl Serialize for Attributes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.kvs.len()))?;
        let mut seen = std::collections::HashSet::with_capacity(self.kvs.len());
        for kv in self.kvs {
            if !seen.insert(kv.key.as_str()) {
                continue;
            }
            let key = Cut {
                text: &kv.key,
                max: self.max_string,
            };
            map.serialize_entry(&key, &AttributeValue(kv.value.as_ref(), self.max_string))?;
        }
        map.end()
    }
}

struct AttributeValue<'a>(Option<&'a AnyValue>, usize);

impl Serialize for AttributeValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use any_value::Value;
        let max = self.1;
        match self.0.and_then(|v| v.value.as_ref()) {
            None => s.serialize_none(),
            Some(Value::StringValue(text)) => Cut { text, max }.serialize(s),
            Some(Value::BoolValue(b)) => s.serialize_bool(*b),
            Some(Value::IntValue(i)) => s.serialize_i64(*i),
            Some(Value::DoubleValue(d)) => s.serialize_f64(*d),
            Some(_) => {
                let mut text = String::new();
                write_any_value(self.0, &mut text);
                Cut { text: &text, max }.serialize(s)
            }
        }
    }
}

/// `GET /api/v1/tail/traces?service=…&limit=N`.
pub async fn traces(State(state): State<Arc<ApiState>>, raw: RawParams) -> Response {
    tail_answer(&state, raw, "spans")
}

/// `GET /api/v1/tail/logs?service=…&limit=N`.
pub async fn logs(State(state): State<Arc<ApiState>>, raw: RawParams) -> Response {
    tail_answer(&state, raw, "logs")
}

fn tail_answer(state: &ApiState, raw: RawParams, what: &'static str) -> Response {
    let answer = || -> Result<String, ApiError> {
        let params = Params::read(raw, &["service", "limit"], false)?;
        let tail = &state.tail;
        let ring = if what == "spans" {
            &tail.spans
        } else {
            &tail.logs
        };
        if ring.capacity == 0 {
            return Err(ApiError::not_found(format!(
                "the tail of {what} is off (api.tail.{what}: 0)"
            )));
        }
        let limit = params.limit(ring.capacity, ring.capacity)?;
        let items = ring.newest(params.get("service"), limit);
        Ok(format!("{{\"{what}\":{items}}}"))
    };
    match answer() {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: usize) -> Item {
        Item {
            service: Arc::from("s"),
            json: n.to_string().into(),
        }
    }

    #[test]
    fn a_full_ring_captures_once_per_interval() {
        let ring = Ring::new(3);
        // Until full, every request is captured.
        assert!(ring.should_capture());
        ring.extend(vec![item(1), item(2)]);
        assert!(ring.should_capture());
        ring.extend(vec![item(3), item(4)]);
        assert_eq!(ring.newest(None, 10), "[4,3,2]");
        // Full: the next request within the interval is skipped.
        assert!(!ring.should_capture());
        std::thread::sleep(CAPTURE_EVERY + Duration::from_millis(20));
        assert!(ring.should_capture());
        assert!(!ring.should_capture(), "one capture per interval");
        assert!(!Ring::new(0).should_capture());
    }

    /// A key given twice is one JSON name, with its first value.
    #[test]
    fn a_key_given_twice_is_shown_once() {
        let kv =
            |k: &str, v: &str| crate::model::otlp::kv(k, any_value::Value::StringValue(v.into()));
        let kvs = [kv("same", "first"), kv("other", "x"), kv("same", "second")];
        let json = serde_json::to_string(&Attributes {
            kvs: &kvs,
            max_string: 100,
        })
        .unwrap();
        assert_eq!(json, r#"{"same":"first","other":"x"}"#);
    }

    #[test]
    fn ids_are_lower_case_hex() {
        assert_eq!(Hex(&[0x00, 0xab, 0x7f]).to_string(), "00ab7f");
        assert_eq!(Hex(&[0xfe; 40]).to_string(), "fe".repeat(40));
        assert_eq!(Hex(&[]).to_string(), "");
    }
}
