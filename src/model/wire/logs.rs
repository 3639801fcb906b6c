//! Views of the OTLP log messages, from `ExportLogsServiceRequest` down to
//! log records, and [`validate_logs`], the one pass that checks a whole
//! request (every field prost would check) and counts its records.
//!
//! Checking comes first for a second reason: prost's generated decoder for
//! attribute values recurses without the bound its recursion limit
//! promises (`AnyValue` → `ArrayValue` → `AnyValue` …, found by the fuzzer:
//! a 234 KB request overflowed a 16 MiB stack), and skips unknown groups
//! recursively. Here nesting is bounded by `MAX_DEPTH` and any group wire
//! type (proto2, never used by OTLP) is refused, so a validated request is
//! safe to decode with prost for the consumers that want owned structures.

use super::common::{
    AnyValueView, Attributes, FieldName, KeyValueView, MessageView, Repeated, ResourceView,
    ScopeView, head_and_schema_url, once, optional, validate_attributes,
};
use super::reader::{
    Field, InOrder, SPAN_ID_LEN, TRACE_ID_LEN, WireError, for_each_field, id_fits, utf8,
};

/// `ExportLogsServiceRequest`.
#[derive(Debug, Clone, Copy)]
pub struct LogsRequestView<'a> {
    pub resource_logs: Repeated<'a, ResourceLogsView<'a>>,
}

impl<'a> LogsRequestView<'a> {
    /// The view of a request's bytes (validate them first).
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            resource_logs: Repeated::new(
                bytes,
                1,
                &FieldName("ExportLogsServiceRequest", "resource_logs"),
            ),
        }
    }
}

/// `ResourceLogs`.
#[derive(Debug, Clone, Copy)]
pub struct ResourceLogsView<'a> {
    pub resource: Option<ResourceView<'a>>,
    pub scope_logs: Repeated<'a, ScopeLogsView<'a>>,
    pub schema_url: &'a str,
}

impl<'a> MessageView<'a> for ResourceLogsView<'a> {
    const NAME: &'static str = "ResourceLogs";
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        let (resource, schema_url) = head_and_schema_url(bytes, Self::NAME, "resource")?;
        Ok(Self {
            resource: optional(resource)?,
            scope_logs: Repeated::new(bytes, 2, &FieldName(Self::NAME, "scope_logs")),
            schema_url,
        })
    }
}

/// `ScopeLogs`.
#[derive(Debug, Clone, Copy)]
pub struct ScopeLogsView<'a> {
    pub scope: Option<ScopeView<'a>>,
    pub log_records: Repeated<'a, LogRecordView<'a>>,
    pub schema_url: &'a str,
}

impl<'a> MessageView<'a> for ScopeLogsView<'a> {
    const NAME: &'static str = "ScopeLogs";
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        let (scope, schema_url) = head_and_schema_url(bytes, Self::NAME, "scope")?;
        Ok(Self {
            scope: optional(scope)?,
            log_records: Repeated::new(bytes, 2, &FieldName(Self::NAME, "log_records")),
            schema_url,
        })
    }
}

/// `LogRecord`: the fields a record's consumers read, decoded; its
/// attributes and body read on demand from its bytes. `severity_number` is the
/// number as sent (protobuf enums are open: an unknown number is kept,
/// not refused).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogRecordView<'a> {
    bytes: &'a [u8],
    pub time_ns: u64,
    pub observed_time_ns: u64,
    pub severity_number: i32,
    pub severity_text: &'a str,
    /// The body's `AnyValue` message, if sent (read by [`Self::body`]).
    body: Option<&'a [u8]>,
    pub flags: u32,
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub event_name: &'a str,
}

impl<'a> LogRecordView<'a> {
    /// The record before any field is read: every field unset.
    fn unset(bytes: &'a [u8]) -> Self {
        LogRecordView {
            bytes,
            time_ns: 0,
            observed_time_ns: 0,
            severity_number: 0,
            severity_text: "",
            body: None,
            flags: 0,
            trace_id: &[],
            span_id: &[],
            event_name: "",
        }
    }

    pub fn attributes(&self) -> Attributes<'a> {
        Repeated::new(self.bytes, 6, &FieldName(Self::NAME, "attributes"))
    }

    /// The body (of a validated record); [`AnyValueView::Empty`] when
    /// not sent.
    pub fn body(&self) -> AnyValueView<'a> {
        self.body
            .and_then(|body| AnyValueView::parse_nested(body, 0).ok())
            .unwrap_or(AnyValueView::Empty)
    }

    /// Checks the record's own fields, its body (nested values included)
    /// and its attributes.
    #[inline]
    pub fn validate(bytes: &'a [u8]) -> Result<Self, WireError> {
        match Self::read_in_order::<true>(bytes) {
            Some(record) => Ok(record),
            None => Self::validate_walking(bytes),
        }
    }

    /// [`LogRecordView::validate`] for any layout, field by field.
    #[cold]
    #[inline(never)]
    fn validate_walking(bytes: &'a [u8]) -> Result<Self, WireError> {
        let record = Self::walk(bytes)?;
        validate_attributes(&record.attributes())?;
        Ok(record)
    }

    /// Reads a record laid out as OTLP encoders lay it out, straight
    /// through: its fields in field-number order with one-byte tags, the
    /// observed time either in its place by number or (as prost writes it,
    /// in declaration order) right after the time. Checks the body and
    /// the attributes too when `CHECK` (a validated record's are not read
    /// again). `None` for any other layout and for
    /// anything invalid: the general walk then reads the record, and gives
    /// the error (it reads whatever this reads to the same view).
    #[inline(always)]
    fn read_in_order<const CHECK: bool>(bytes: &'a [u8]) -> Option<Self> {
        let mut out = LogRecordView::unset(bytes);
        let mut record = InOrder::new(bytes);
        if record.at(0x09) {
            out.time_ns = u64::from_le_bytes(record.fixed::<1, 8>()?);
        }
        if record.at(0x59) {
            out.observed_time_ns = u64::from_le_bytes(record.fixed::<1, 8>()?);
        }
        if record.at(0x10) {
            out.severity_number = record.varint()? as i32;
        }
        if record.at(0x1a) {
            out.severity_text = utf8(record.delimited()?)?;
        }
        if record.at(0x2a) {
            let body = record.delimited()?;
            if CHECK {
                AnyValueView::parse_nested(body, 0).ok()?;
            }
            out.body = Some(body);
        }
        while record.at(0x32) {
            let attribute = record.delimited()?;
            if CHECK {
                KeyValueView::parse(attribute).ok()?;
            }
        }
        if record.at(0x38) {
            record.varint()?;
        }
        if record.at(0x45) {
            out.flags = u32::from_le_bytes(record.fixed::<1, 4>()?);
        }
        if record.at(0x4a) {
            out.trace_id = record.delimited().filter(|id| id_fits(id, TRACE_ID_LEN))?;
        }
        if record.at(0x52) {
            out.span_id = record.delimited().filter(|id| id_fits(id, SPAN_ID_LEN))?;
        }
        if record.at(0x59) {
            out.observed_time_ns = u64::from_le_bytes(record.fixed::<1, 8>()?);
        }
        if record.at(0x62) {
            out.event_name = utf8(record.delimited()?)?;
        }
        record.rest.is_empty().then_some(out)
    }

    /// Reads and checks the record's own fields and its body field by
    /// field, in any layout (not its attributes).
    fn walk(bytes: &'a [u8]) -> Result<Self, WireError> {
        const NAME: &str = LogRecordView::NAME;
        let mut out = LogRecordView::unset(bytes);
        let mut body_seen = None;
        for_each_field(bytes, NAME, |n, v| {
            match n {
                1 => out.time_ns = field!(v, NAME, "time_unix_nano").fixed64()?,
                2 => out.severity_number = field!(v, NAME, "severity_number").int32()?,
                3 => out.severity_text = field!(v, NAME, "severity_text").string()?,
                5 => {
                    let body = field!(v, NAME, "body").message()?;
                    once(&mut body_seen, (), NAME, "body")?;
                    AnyValueView::parse_nested(body, 0)?;
                    out.body = Some(body);
                }
                7 => {
                    field!(v, NAME, "dropped_attributes_count").uint32()?;
                }
                8 => out.flags = field!(v, NAME, "flags").fixed32()?,
                9 => out.trace_id = field!(v, NAME, "trace_id").id(TRACE_ID_LEN)?,
                10 => out.span_id = field!(v, NAME, "span_id").id(SPAN_ID_LEN)?,
                11 => {
                    out.observed_time_ns = field!(v, NAME, "observed_time_unix_nano").fixed64()?;
                }
                12 => out.event_name = field!(v, NAME, "event_name").string()?,
                _ => {}
            }
            Ok(())
        })?;
        Ok(out)
    }
}

impl<'a> MessageView<'a> for LogRecordView<'a> {
    const NAME: &'static str = "LogRecord";
    /// Reads the record's own fields. Laid out as encoders write it, its
    /// body and attributes are left for [`LogRecordView::validate`] to
    /// check (and read on demand); in any other layout the body is
    /// checked on the way.
    #[inline]
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        match Self::read_in_order::<false>(bytes) {
            Some(record) => Ok(record),
            None => Self::walk(bytes),
        }
    }
}

/// Checks an `ExportLogsServiceRequest` (every field prost would check,
/// attribute values nested at most `MAX_DEPTH` deep, no groups) and
/// counts its log records.
pub fn validate_logs(bytes: &[u8]) -> Result<u64, WireError> {
    let mut records = 0u64;
    for rl in LogsRequestView::new(bytes).resource_logs.try_iter() {
        let rl = rl?;
        if let Some(resource) = &rl.resource {
            resource.validate()?;
        }
        for sl in rl.scope_logs.try_iter() {
            let sl = sl?;
            if let Some(scope) = &sl.scope {
                scope.validate()?;
            }
            for record in sl.log_records.raw() {
                LogRecordView::validate(record?)?;
                records += 1;
            }
        }
    }
    Ok(records)
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::model::LogsRequest;
    use crate::model::otlp::common::{
        AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
    };
    use crate::model::otlp::logs::{LogRecord, ResourceLogs, ScopeLogs};
    use crate::model::otlp::resource::Resource;
    use prost::Message;

    /// Two resources, scopes with attributes, and records with every
    /// field set in some of them: string, structured and missing bodies,
    /// severities by number, by text and both.
    pub fn sample_logs() -> LogsRequest {
        let text = |s: &str| AnyValue {
            value: Some(any_value::Value::StringValue(s.into())),
        };
        let kv = |k: &str, v: &str| KeyValue {
            key: k.into(),
            value: Some(text(v)),
            ..Default::default()
        };
        let record = |i: u64, number: i32, severity: &str, body: Option<AnyValue>| LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000 + i,
            observed_time_unix_nano: 1_700_000_000_000_000_500 + i,
            severity_number: number,
            severity_text: severity.into(),
            body,
            attributes: vec![
                kv("http.route", "/checkout"),
                KeyValue {
                    key: "attempt".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::IntValue(i as i64)),
                    }),
                    ..Default::default()
                },
            ],
            dropped_attributes_count: u32::from(i == 2),
            flags: 1,
            trace_id: vec![7; 16],
            span_id: vec![9; 8],
            event_name: if i == 1 {
                "checkout.done".into()
            } else {
                String::new()
            },
        };
        let structured = AnyValue {
            value: Some(any_value::Value::KvlistValue(KeyValueList {
                values: vec![kv("user", "ünïcode"), kv("cart", "3 items")],
            })),
        };
        LogsRequest {
            resource_logs: vec![
                ResourceLogs {
                    resource: Some(Resource {
                        attributes: vec![kv("service.name", "checkout")],
                        ..Default::default()
                    }),
                    scope_logs: vec![ScopeLogs {
                        scope: Some(InstrumentationScope {
                            name: "app".into(),
                            version: "1.0".into(),
                            attributes: vec![kv("lib", "x")],
                            ..Default::default()
                        }),
                        log_records: vec![
                            record(0, 9, "INFO", Some(text("placed order"))),
                            record(1, 17, "", Some(structured)),
                            record(2, 0, "error", None),
                        ],
                        schema_url: "https://opentelemetry.io/schemas/1.21.0".into(),
                    }],
                    schema_url: String::new(),
                },
                ResourceLogs {
                    resource: None,
                    scope_logs: vec![ScopeLogs {
                        log_records: vec![record(3, 13, "WARN", Some(text("slow")))],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
        }
    }

    #[test]
    fn views_read_what_prost_decodes() {
        let request = sample_logs();
        let bytes = request.encode_to_vec();
        assert_eq!(validate_logs(&bytes), Ok(4));
        let view = LogsRequestView::new(&bytes);
        let records: Vec<LogRecordView<'_>> = view
            .resource_logs
            .iter()
            .flat_map(|rl| rl.scope_logs.iter())
            .flat_map(|sl| sl.log_records.iter())
            .collect();
        let owned: Vec<&LogRecord> = request
            .resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .flat_map(|sl| &sl.log_records)
            .collect();
        assert_eq!(records.len(), owned.len());
        for (view, record) in records.iter().zip(owned) {
            assert_eq!(view.time_ns, record.time_unix_nano);
            assert_eq!(view.observed_time_ns, record.observed_time_unix_nano);
            assert_eq!(view.severity_number, record.severity_number);
            assert_eq!(view.severity_text, record.severity_text);
            assert_eq!(
                view.body().to_owned_value(),
                record.body.clone().filter(|b| b.value.is_some())
            );
            assert_eq!(view.attributes().to_owned_vec(), record.attributes);
            assert_eq!(view.flags, record.flags);
            assert_eq!(view.trace_id, record.trace_id);
            assert_eq!(view.span_id, record.span_id);
            assert_eq!(view.event_name, record.event_name);
        }
        let first = view.resource_logs.iter().next().expect("a resource");
        let resource = first.resource.expect("its resource");
        assert_eq!(
            resource.attributes.find("service.name"),
            Some(AnyValueView::String("checkout"))
        );
        let scope = first
            .scope_logs
            .iter()
            .next()
            .and_then(|sl| sl.scope)
            .expect("a scope");
        assert_eq!((scope.name, scope.version), ("app", "1.0"));
    }

    /// A record's fields one at a time, each encoded alone: concatenated
    /// in field-number order they are the record as Go and Python encode
    /// it (prost writes the observed time second).
    fn by_field_number(record: &LogRecord) -> Vec<u8> {
        let alone = [
            LogRecord {
                time_unix_nano: record.time_unix_nano,
                ..Default::default()
            },
            LogRecord {
                severity_number: record.severity_number,
                severity_text: record.severity_text.clone(),
                body: record.body.clone(),
                attributes: record.attributes.clone(),
                dropped_attributes_count: record.dropped_attributes_count,
                flags: record.flags,
                trace_id: record.trace_id.clone(),
                span_id: record.span_id.clone(),
                ..Default::default()
            },
            LogRecord {
                observed_time_unix_nano: record.observed_time_unix_nano,
                ..Default::default()
            },
            LogRecord {
                event_name: record.event_name.clone(),
                ..Default::default()
            },
        ];
        alone.iter().flat_map(|r| r.encode_to_vec()).collect()
    }

    /// Whatever the straight read accepts, the field walk reads the same.
    fn straight_read_agrees_with_the_walk(bytes: &[u8]) -> bool {
        let Some(straight) = LogRecordView::read_in_order::<true>(bytes) else {
            return false;
        };
        assert_eq!(
            LogRecordView::validate_walking(bytes),
            Ok(straight),
            "{bytes:?}"
        );
        assert_eq!(LogRecordView::read_in_order::<false>(bytes), Some(straight));
        true
    }

    #[test]
    fn a_record_read_straight_through_is_the_record_the_walk_reads() {
        let request = sample_logs();
        let records = request
            .resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .flat_map(|sl| &sl.log_records);
        let (mut straight, mut tried) = (0, 0);
        for record in records {
            for bytes in [record.encode_to_vec(), by_field_number(record)] {
                assert_eq!(LogRecord::decode(&bytes[..]).as_ref(), Ok(record));
                assert!(straight_read_agrees_with_the_walk(&bytes), "{record:?}");
                for cut in 0..bytes.len() {
                    straight_read_agrees_with_the_walk(&bytes[..cut]);
                }
                for at in 0..bytes.len() {
                    for flip in [0x01, 0x08, 0x40, 0x80, 0xff] {
                        let mut changed = bytes.clone();
                        changed[at] ^= flip;
                        tried += 1;
                        straight += usize::from(straight_read_agrees_with_the_walk(&changed));
                    }
                }
            }
        }
        // Most changes leave a readable record (a changed value) or
        // one the straight read declines; both happen.
        assert!(straight > 0 && straight < tried, "{straight} of {tried}");
    }

    #[test]
    fn invalid_fields_are_refused_as_prost_refuses_them() {
        // A severity text that is not UTF-8, in a record of its own.
        let mut record = vec![0x1a, 2, 0xff, 0xfe];
        let wrap = |tag: u8, inner: &[u8]| {
            let mut out = vec![tag, inner.len() as u8];
            out.extend_from_slice(inner);
            out
        };
        let request = |record: &[u8]| wrap(0x0a, &wrap(0x12, &wrap(0x12, record)));
        let bytes = request(&record);
        assert!(LogsRequest::decode(&bytes[..]).is_err());
        let err = validate_logs(&bytes).unwrap_err();
        assert!(err.to_string().contains("severity_text"), "{err}");
        // time_unix_nano sent as a varint instead of fixed64.
        record = vec![0x08, 1];
        let bytes = request(&record);
        assert!(LogsRequest::decode(&bytes[..]).is_err());
        let err = validate_logs(&bytes).unwrap_err();
        assert!(err.to_string().contains("time_unix_nano"), "{err}");
        // An attribute whose key is not UTF-8.
        let attribute = wrap(0x0a, &[0xc3]);
        let bytes = request(&wrap(0x32, &attribute));
        assert!(LogsRequest::decode(&bytes[..]).is_err());
        assert!(validate_logs(&bytes).is_err());
    }

    fn request(body: AnyValue) -> Vec<u8> {
        opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord {
                        body: Some(body),
                        attributes: vec![KeyValue {
                            key: "k".into(),
                            value: Some(AnyValue {
                                value: Some(any_value::Value::IntValue(1)),
                            }),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }

    fn nested(depth: usize) -> AnyValue {
        let mut v = AnyValue {
            value: Some(any_value::Value::StringValue("leaf".into())),
        };
        for _ in 0..depth {
            v = AnyValue {
                value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![v] })),
            };
        }
        v
    }

    #[test]
    fn ordinary_requests_pass_and_deep_values_are_refused() {
        assert!(validate_logs(&request(nested(20))).is_ok());
        let err = validate_logs(&request(nested(150))).unwrap_err();
        assert!(err.to_string().contains("nested deeper"), "{err}");
    }

    #[test]
    fn groups_are_refused() {
        // Field 7 of the request as a start group (wire type 3) ... end group.
        let err = validate_logs(&[0x3b, 0x3c]).unwrap_err();
        assert!(err.to_string().contains("wire type"), "{err}");
        // The same inside a log record.
        let record = [0x3b, 0x3c];
        let mut scope = vec![0x12, record.len() as u8];
        scope.extend_from_slice(&record);
        let mut resource = vec![0x12, scope.len() as u8];
        resource.extend_from_slice(&scope);
        let mut req = vec![0x0a, resource.len() as u8];
        req.extend_from_slice(&resource);
        assert!(validate_logs(&req).is_err());
    }
}
