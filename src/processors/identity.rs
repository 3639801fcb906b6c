//! The identity of an OTLP stream as processors key it: identifying
//! resource attributes (those that make `job` and `instance`), scope,
//! metric name and point attributes, independent of attribute order.

use std::hash::{BuildHasher, Hasher};

use crate::model::otlp::common::{InstrumentationScope, KeyValue};

const HASHER: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x51de);

/// The resource attributes that make `job` and `instance`.
pub const IDENTIFYING: [&str; 3] = ["service.name", "service.namespace", "service.instance.id"];

/// Hash of a stream's identity. Attribute order does not matter: SDKs
/// may send the same series with its attributes in another order.
pub fn stream_hash(
    resource: &[KeyValue],
    scope: &InstrumentationScope,
    metric: &str,
    attributes: &[KeyValue],
) -> u64 {
    let mut h = HASHER.build_hasher();
    for key in IDENTIFYING {
        if let Some(kv) = resource.iter().find(|kv| kv.key == key) {
            write_kv(&mut h, kv);
        }
    }
    h.write_u8(0xfd);
    h.write(scope.name.as_bytes());
    h.write_u8(0xff);
    h.write(scope.version.as_bytes());
    h.write_u8(0xfd);
    h.write(metric.as_bytes());
    h.write_u8(0xfd);
    let mut sorted: Vec<&KeyValue> = attributes.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    for kv in sorted {
        write_kv(&mut h, kv);
    }
    h.finish()
}

fn write_kv(h: &mut impl Hasher, kv: &KeyValue) {
    h.write(kv.key.as_bytes());
    h.write_u8(0xff);
    let mut text = String::new();
    crate::model::text::write_any_value(kv.value.as_ref(), &mut text);
    h.write(text.as_bytes());
    h.write_u8(0xfe);
}
