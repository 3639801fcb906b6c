//! A logs request checked in place before prost decodes it. prost's
//! generated decoder for attribute values recurses without the bound its
//! recursion limit promises (`AnyValue` → `ArrayValue` → `AnyValue` …,
//! found by the fuzzer: a 234 KB request overflowed a 16 MiB stack), and
//! skips unknown groups recursively. So every message prost would parse is
//! walked here first, iteratively over a fixed schema: attribute values
//! through [`AnyValueView`] (nesting bounded by `MAX_DEPTH`), and any
//! group wire type (proto2, never used by OTLP) refused.

use super::common::{AnyValueView, KeyValueView, MessageView};
use super::reader::{Field, Value, WireError, for_each_field};

/// What a length-delimited field holds.
enum Node {
    Message(&'static Schema),
    AnyValue,
    KeyValue,
}

/// A message's name and the fields of it that are messages.
struct Schema {
    name: &'static str,
    children: &'static [(u32, &'static str, Node)],
}

static REQUEST: Schema = Schema {
    name: "ExportLogsServiceRequest",
    children: &[(1, "resource_logs", Node::Message(&RESOURCE_LOGS))],
};
static RESOURCE_LOGS: Schema = Schema {
    name: "ResourceLogs",
    children: &[
        (1, "resource", Node::Message(&RESOURCE)),
        (2, "scope_logs", Node::Message(&SCOPE_LOGS)),
    ],
};
static RESOURCE: Schema = Schema {
    name: "Resource",
    children: &[
        (1, "attributes", Node::KeyValue),
        (3, "entity_refs", Node::Message(&ENTITY_REF)),
    ],
};
static ENTITY_REF: Schema = Schema {
    name: "EntityRef",
    children: &[],
};
static SCOPE_LOGS: Schema = Schema {
    name: "ScopeLogs",
    children: &[
        (1, "scope", Node::Message(&SCOPE)),
        (2, "log_records", Node::Message(&LOG_RECORD)),
    ],
};
static SCOPE: Schema = Schema {
    name: "InstrumentationScope",
    children: &[(3, "attributes", Node::KeyValue)],
};
static LOG_RECORD: Schema = Schema {
    name: "LogRecord",
    children: &[
        (5, "body", Node::AnyValue),
        (6, "attributes", Node::KeyValue),
    ],
};

/// Checks that an `ExportLogsServiceRequest` is safe to hand to prost:
/// well-formed wire format in every message prost parses, no groups, and
/// attribute values nested at most `MAX_DEPTH` deep.
pub fn check_logs_request(body: &[u8]) -> Result<(), WireError> {
    walk(body, &REQUEST)
}

/// The schema is five levels deep: this recursion is bounded by it, not
/// by the input.
fn walk(bytes: &[u8], schema: &'static Schema) -> Result<(), WireError> {
    for_each_field(bytes, schema.name, |number, value| {
        let Some((_, field, node)) = schema.children.iter().find(|(n, ..)| *n == number) else {
            return Ok(());
        };
        let field = Field {
            value,
            message: schema.name,
            field,
        };
        let Value::Bytes(inner) = value else {
            return Err(field.wrong());
        };
        match node {
            Node::Message(child) => walk(inner, child),
            Node::AnyValue => AnyValueView::parse_nested(inner, 0).map(|_| ()),
            Node::KeyValue => KeyValueView::parse(inner).map(|_| ()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::otlp::common::{AnyValue, ArrayValue, KeyValue, any_value};
    use crate::model::otlp::logs::{LogRecord, ResourceLogs, ScopeLogs};
    use prost::Message;

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
        assert!(check_logs_request(&request(nested(20))).is_ok());
        let err = check_logs_request(&request(nested(150))).unwrap_err();
        assert!(err.to_string().contains("nested deeper"), "{err}");
    }

    #[test]
    fn groups_are_refused() {
        // Field 7 of the request as a start group (wire type 3) ... end group.
        let err = check_logs_request(&[0x3b, 0x3c]).unwrap_err();
        assert!(err.to_string().contains("wire type"), "{err}");
        // The same inside a log record.
        let record = [0x3b, 0x3c];
        let mut scope = vec![0x12, record.len() as u8];
        scope.extend_from_slice(&record);
        let mut resource = vec![0x12, scope.len() as u8];
        resource.extend_from_slice(&scope);
        let mut req = vec![0x0a, resource.len() as u8];
        req.extend_from_slice(&resource);
        assert!(check_logs_request(&req).is_err());
    }
}
