//! The identity of an OTLP stream as processors key it: identifying
//! resource attributes (those that make `job` and `instance`), scope,
//! metric name and point attributes, independent of attribute order.
//!
//! It is computed in two steps, so a request pays the resource and scope
//! part once per scope: [`scope_identity`] (resource attributes read as
//! text through [`AttributeLookup`]), then [`stream_hash`] per point (each
//! attribute's encoded `KeyValue`, so points read in place are hashed
//! without parsing their attributes). A stream has the same identity
//! whether its attributes are owned (raw values from a connector) or read
//! in place from a request. An attribute whose value changes encoding
//! (an int sent as a string) makes another stream here, though the
//! Prometheus labels are the same text.

use std::hash::{BuildHasher, Hasher};

use crate::model::otlp::common::{InstrumentationScope, KeyValue};
use crate::model::text::AttributeLookup;
use crate::model::wire::{
    Attributes, FieldName, MetricView, MetricsRequestView, Repeated, ScopeView,
};

const HASHER: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x51de);
/// Encoded attributes ([`stream_hash`]).
const RAW_HASHER: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x7a3);

/// The resource attributes that make `job` and `instance`.
pub const IDENTIFYING: [&str; 3] = ["service.name", "service.namespace", "service.instance.id"];

/// Maps keyed by stream identity: the keys are hashes already, so the
/// map uses them as they are instead of hashing them again.
pub type ByIdentity<V> =
    std::collections::HashMap<u64, V, std::hash::BuildHasherDefault<IdentityHasher>>;

/// The hasher of [`ByIdentity`]: passes a `u64` key through.
#[derive(Default)]
pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed; fold anything else in anyway.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Where a scope's metrics come from, read in place: its resource and
/// scope, and their identity ([`scope_identity`]).
pub struct ScopeSource<'r, 'a> {
    pub resource: &'r Attributes<'a>,
    pub scope: Option<ScopeView<'a>>,
    pub identity: u64,
}

impl<'a> ScopeSource<'_, 'a> {
    /// Calls `each` with the source and the metrics of every scope of a
    /// request read in place.
    pub fn each_scope(
        request: MetricsRequestView<'a>,
        mut each: impl FnMut(&ScopeSource<'_, 'a>, Repeated<'a, MetricView<'a>>),
    ) {
        let no_attributes = Attributes::new(&[], 1, &FieldName("Resource", "attributes"));
        for rm in request.resource_metrics.iter() {
            let resource = rm.resource.map_or(no_attributes, |r| r.attributes);
            for sm in rm.scope_metrics.iter() {
                let (name, version) = sm.scope.map_or(("", ""), |s| (s.name, s.version));
                let source = ScopeSource {
                    resource: &resource,
                    scope: sm.scope,
                    identity: scope_identity(&resource, name, version),
                };
                each(&source, sm.metrics);
            }
        }
    }

    /// The identifying resource attributes, as a new series keeps them.
    pub fn identifying_resource(&self) -> Vec<KeyValue> {
        self.resource
            .iter()
            .filter(|kv| IDENTIFYING.contains(&kv.key))
            .map(|kv| kv.to_owned_kv())
            .collect()
    }

    /// The scope, as a new series keeps it.
    pub fn owned_scope(&self) -> InstrumentationScope {
        self.scope
            .map(|s| InstrumentationScope {
                name: s.name.to_string(),
                version: s.version.to_string(),
                attributes: s.attributes.to_owned_vec(),
                dropped_attributes_count: 0,
            })
            .unwrap_or_default()
    }
}

/// The identity of the streams of one resource and scope.
pub fn scope_identity(
    resource: &(impl AttributeLookup + ?Sized),
    scope_name: &str,
    scope_version: &str,
) -> u64 {
    let mut h = HASHER.build_hasher();
    let mut text = String::new();
    for key in IDENTIFYING {
        text.clear();
        if resource.write_text(key, &mut text) {
            write_pair(&mut h, key, &text);
        }
    }
    h.write_u8(0xfd);
    write_pair(&mut h, scope_name, scope_version);
    h.finish()
}

/// Hash of a stream's identity within its scope. Attribute order does not
/// matter (SDKs may send the same series with its attributes in another
/// order): each attribute is hashed alone, as its encoded `KeyValue`, and
/// the hashes are summed. Hashing the encoding needs no parsing of the
/// attributes read in place; owned ones are encoded as prost (and every
/// SDK) writes them. `scratch` holds encodings (reuse it across points).
pub fn stream_hash(
    scope: u64,
    metric: &str,
    attributes: &(impl EncodedAttributes + ?Sized),
    scratch: &mut Vec<u8>,
) -> u64 {
    let mut sum = 0u64;
    attributes.for_each_encoded(scratch, |bytes| {
        sum = sum.wrapping_add(RAW_HASHER.hash_one(bytes));
    });
    with_attributes(scope, metric, sum)
}

/// Attribute lists as encoded `KeyValue` messages.
pub trait EncodedAttributes {
    /// Calls `each` with every attribute's encoding.
    fn for_each_encoded(&self, scratch: &mut Vec<u8>, each: impl FnMut(&[u8]));
}

impl EncodedAttributes for [KeyValue] {
    fn for_each_encoded(&self, scratch: &mut Vec<u8>, mut each: impl FnMut(&[u8])) {
        for kv in self {
            scratch.clear();
            prost::Message::encode_raw(kv, scratch);
            each(scratch);
        }
    }
}

impl EncodedAttributes for Attributes<'_> {
    fn for_each_encoded(&self, _: &mut Vec<u8>, mut each: impl FnMut(&[u8])) {
        // A validated list: every element reads.
        self.raw().flatten().for_each(&mut each);
    }
}

/// The hash of one attribute, as [`stream_hash`] sums them.
pub fn attribute_hash(key: &str, text: &str) -> u64 {
    let mut h = HASHER.build_hasher();
    write_pair(&mut h, key, text);
    h.finish()
}

/// A stream's identity from its scope, metric and summed attribute hashes.
pub fn with_attributes(scope: u64, metric: &str, attributes: u64) -> u64 {
    let mut h = HASHER.build_hasher();
    h.write_u64(scope);
    h.write(metric.as_bytes());
    h.write_u8(0xfd);
    h.write_u64(attributes);
    h.finish()
}

fn write_pair(h: &mut impl Hasher, key: &str, value: &str) {
    h.write_usize(key.len());
    h.write(key.as_bytes());
    h.write_usize(value.len());
    h.write(value.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::otlp::common::{KeyValue, any_value::Value};
    use crate::model::otlp::kv;
    use crate::model::wire::Attributes;
    use prost::Message;

    /// Encodes `attributes` as a `Resource` and views them in place.
    fn in_place(attributes: &[KeyValue]) -> Vec<u8> {
        crate::model::otlp::resource::Resource {
            attributes: attributes.to_vec(),
            ..Default::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn owned_and_in_place_attributes_give_one_identity_in_any_order() {
        let resource = vec![
            kv("service.name", Value::StringValue("shop".into())),
            kv("host.name", Value::StringValue("h1".into())),
        ];
        let attributes = vec![
            kv("code", Value::IntValue(200)),
            kv("method", Value::StringValue("GET".into())),
            kv("ok", Value::BoolValue(true)),
        ];
        let reversed: Vec<KeyValue> = attributes.iter().rev().cloned().collect();
        let mut scratch = Vec::new();
        let scope = scope_identity(resource.as_slice(), "lib", "1.0");
        let owned = stream_hash(scope, "requests", attributes.as_slice(), &mut scratch);
        assert_eq!(
            owned,
            stream_hash(scope, "requests", reversed.as_slice(), &mut scratch)
        );

        let resource_bytes = in_place(&resource);
        let attribute_bytes = in_place(&attributes);
        let resource_view: Attributes<'_> =
            Attributes::new(&resource_bytes, 1, &FieldName("Resource", "attributes"));
        let attribute_view: Attributes<'_> =
            Attributes::new(&attribute_bytes, 1, &FieldName("Resource", "attributes"));
        let scope_in_place = scope_identity(&resource_view, "lib", "1.0");
        assert_eq!(scope_in_place, scope);
        assert_eq!(
            stream_hash(scope_in_place, "requests", &attribute_view, &mut scratch),
            owned
        );

        // Another value, metric, scope or identifying resource attribute is
        // another stream; a non-identifying resource attribute is not.
        let other = vec![kv("code", Value::IntValue(500))];
        assert_ne!(
            stream_hash(scope, "requests", other.as_slice(), &mut scratch),
            owned
        );
        assert_ne!(
            stream_hash(scope, "errors", attributes.as_slice(), &mut scratch),
            owned
        );
        assert_ne!(scope_identity(resource.as_slice(), "lib", "2.0"), scope);
        let mut moved = resource.clone();
        moved[1] = kv("host.name", Value::StringValue("h2".into()));
        assert_eq!(scope_identity(moved.as_slice(), "lib", "1.0"), scope);
        moved[0] = kv("service.name", Value::StringValue("cart".into()));
        assert_ne!(scope_identity(moved.as_slice(), "lib", "1.0"), scope);
    }
}
