//! The attributes the service graph reads of a span and its resource,
//! found in one pass over each list.
//!
//! A CLIENT span is checked for the database markers, named by the first
//! of seven attributes, and read for its `peer_attributes` and
//! dimensions: a dozen keys, which looked up one by one scan the span's
//! attributes (read in place from the request) a dozen times. [`Wanted`]
//! is the set of keys, fixed when the connector is built; one pass over a
//! span's attributes notes the first value of each ([`Wanted::find`]),
//! and a resource's texts are read once for all of its spans
//! ([`Wanted::resource_texts`]). A key's first attribute wins, and one
//! without a value (or with empty text) is absent, as
//! [`AttributeLookup::text`] reads it.

use crate::model::text::{AttributeLookup, write_any_view};
use crate::model::wire::common::{KeyValueView, MessageView};
use crate::model::wire::{AnyValueView, Attributes};

use super::config::Dimension;

/// The keys every service graph reads, by their place in [`Wanted`]:
/// the database markers first.
const FIXED: [&str; 8] = [
    "db.system.name",
    "db.system",
    "db.namespace",
    "db.name",
    "peer.service",
    "server.address",
    "network.peer.address",
    "network.peer.port",
];
const DB_SYSTEM_NAME: usize = 0;
const DB_SYSTEM: usize = 1;
const DB_NAMESPACE: usize = 2;
const DB_NAME: usize = 3;
const PEER_SERVICE: usize = 4;
const SERVER_ADDRESS: usize = 5;
const NETWORK_PEER_ADDRESS: usize = 6;
const NETWORK_PEER_PORT: usize = 7;
/// Attributes that make a CLIENT span a database request.
const DATABASE_MARKERS: [usize; 4] = [DB_SYSTEM_NAME, DB_SYSTEM, DB_NAMESPACE, DB_NAME];

/// The keys one service graph reads, each once.
#[derive(Debug)]
pub struct Wanted {
    keys: Vec<Box<str>>,
    /// Bit `n` set when a key is `n` bytes long (`n` < 64; longer keys
    /// set bit 63): most attributes are passed over on their length.
    lengths: u64,
    /// `peer_attributes`, in order.
    peers: Vec<usize>,
    /// The dimensions, in config order.
    dims: Vec<usize>,
}

impl Wanted {
    pub fn new(peer_attributes: &[String], dimensions: &[Dimension]) -> Self {
        let mut keys: Vec<Box<str>> = FIXED.iter().map(|&k| k.into()).collect();
        let mut index = |key: &str| match keys.iter().position(|k| &**k == key) {
            Some(i) => i,
            None => {
                keys.push(key.into());
                keys.len() - 1
            }
        };
        let peers = peer_attributes.iter().map(|p| index(p)).collect();
        let dims = dimensions.iter().map(|d| index(&d.name)).collect();
        let lengths = keys
            .iter()
            .fold(0, |bits, k| bits | length_bit(k.as_bytes()));
        Self {
            keys,
            lengths,
            peers,
            dims,
        }
    }

    /// Notes in `found` (one entry per key, cleared first) the first
    /// value of each key in `attributes`.
    pub fn find<'a>(&self, attributes: &Attributes<'a>, found: &mut Vec<Option<AnyValueView<'a>>>) {
        found.clear();
        found.resize(self.keys.len(), None);
        for (key, kv) in attributes.keyed() {
            if self.lengths & length_bit(key) == 0 {
                continue;
            }
            if let Some(i) = self.keys.iter().position(|k| k.as_bytes() == key)
                && found[i].is_none()
                && let Ok(kv) = KeyValueView::parse(kv)
            {
                found[i] = Some(kv.value);
            }
        }
    }

    /// The text of each key in a resource's attributes (read in place,
    /// or owned).
    pub fn resource_texts(
        &self,
        resource: &(impl AttributeLookup + ?Sized),
    ) -> Vec<Option<String>> {
        self.keys.iter().map(|k| resource.text(k)).collect()
    }

    /// What one span's pass found, read with its resource's texts.
    pub fn found<'s, 'a>(
        &'s self,
        span: &'s [Option<AnyValueView<'a>>],
        resource: &'s [Option<String>],
    ) -> Found<'s, 'a> {
        Found {
            wanted: self,
            span,
            resource,
        }
    }
}

fn length_bit(key: &[u8]) -> u64 {
    1 << key.len().min(63)
}

/// The attributes one span has of the [`Wanted`] keys, and its resource's.
pub struct Found<'s, 'a> {
    wanted: &'s Wanted,
    span: &'s [Option<AnyValueView<'a>>],
    resource: &'s [Option<String>],
}

/// A value's text, if it has one and it is not empty.
pub fn text_of(value: &AnyValueView<'_>) -> Option<String> {
    match *value {
        AnyValueView::Empty => None,
        AnyValueView::String(s) => (!s.is_empty()).then(|| s.to_owned()),
        value => {
            let mut text = String::new();
            write_any_view(&value, &mut text);
            (!text.is_empty()).then_some(text)
        }
    }
}

/// Whether a value has text that is not empty.
fn has_text(value: &AnyValueView<'_>) -> bool {
    match *value {
        AnyValueView::Empty => false,
        AnyValueView::String(s) => !s.is_empty(),
        _ => text_of(value).is_some(),
    }
}

impl<'a> Found<'_, 'a> {
    /// The span's value of key `i`, if it has one.
    fn span_value(&self, i: usize) -> Option<AnyValueView<'a>> {
        self.span.get(i).copied().flatten()
    }

    /// The span's text of key `i`, if it has one and it is not empty.
    fn span_text(&self, i: usize) -> Option<String> {
        text_of(&self.span_value(i)?)
    }

    /// The span's text of key `i`, else its resource's.
    fn text(&self, i: usize) -> Option<String> {
        self.span_text(i)
            .or_else(|| self.resource.get(i).cloned().flatten())
    }

    /// The database node a CLIENT span calls, if it is a database request.
    pub fn database_name(&self) -> Option<String> {
        if !DATABASE_MARKERS.iter().any(|&m| self.has(m)) {
            return None;
        }
        self.text(PEER_SERVICE)
            .or_else(|| self.text(SERVER_ADDRESS))
            .or_else(|| {
                self.text(NETWORK_PEER_ADDRESS)
                    .map(|host| match self.text(NETWORK_PEER_PORT) {
                        Some(port) => format!("{host}:{port}"),
                        None => host,
                    })
            })
            .or_else(|| self.text(DB_NAMESPACE))
            .or_else(|| self.text(DB_NAME))
            .or_else(|| self.text(DB_SYSTEM_NAME))
            .or_else(|| self.text(DB_SYSTEM))
    }

    /// Whether the span or its resource has text for key `i`.
    fn has(&self, i: usize) -> bool {
        self.span_value(i).is_some_and(|v| has_text(&v))
            || self.resource.get(i).is_some_and(Option::is_some)
    }

    /// The value of the first of `peer_attributes` the span has text for
    /// (not its resource); [`text_of`] reads it.
    pub fn peer(&self) -> Option<AnyValueView<'a>> {
        self.wanted
            .peers
            .iter()
            .filter_map(|&i| self.span_value(i))
            .find(has_text)
    }

    /// The dimensions' values, in config order: the span's, else the
    /// resource's, else the dimension's default.
    pub fn dimension_values(&self, dimensions: &[Dimension]) -> Vec<Option<Box<str>>> {
        if self.wanted.dims.is_empty() {
            return Vec::new();
        }
        self.wanted
            .dims
            .iter()
            .zip(dimensions)
            .map(|(&i, d)| {
                self.text(i)
                    .or_else(|| d.default.clone())
                    .map(String::into_boxed_str)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::otlp::common::{AnyValue, KeyValue, any_value::Value};
    use crate::model::otlp::resource::Resource;
    use crate::model::wire::Repeated;
    use crate::model::wire::common::FieldName;
    use prost::Message;

    fn kv(key: &str, value: Option<Value>) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value }),
            ..Default::default()
        }
    }

    fn text(key: &str, value: &str) -> KeyValue {
        kv(key, Some(Value::StringValue(value.into())))
    }

    /// A message whose field 1 is the attribute list, read in place as
    /// a span's attributes are.
    fn encoded(list: &[KeyValue]) -> Vec<u8> {
        Resource {
            attributes: list.to_vec(),
            ..Default::default()
        }
        .encode_to_vec()
    }

    fn dimension(name: &str, default: Option<&str>) -> Dimension {
        Dimension {
            name: name.into(),
            default: default.map(str::to_owned),
        }
    }

    /// Reads `span` (and `resource`) both ways: through one pass of
    /// [`Wanted`], and key by key as [`AttributeLookup::text`] does.
    fn check(span: &[KeyValue], resource: &[KeyValue], peers: &[&str], dims: &[Dimension]) {
        let peers: Vec<String> = peers.iter().map(|p| p.to_string()).collect();
        let wanted = Wanted::new(&peers, dims);
        let bytes = encoded(span);
        let attributes = Repeated::new(&bytes, 1, &FieldName("Resource", "attributes"));
        let mut found = Vec::new();
        wanted.find(&attributes, &mut found);
        let texts = wanted.resource_texts(resource);
        let got = wanted.found(&found, &texts);
        let each = |key: &str| span.text(key).or_else(|| resource.text(key));
        let expected_database = if FIXED[..4].iter().any(|m| each(m).is_some()) {
            each("peer.service")
                .or_else(|| each("server.address"))
                .or_else(|| {
                    each("network.peer.address").map(|h| match each("network.peer.port") {
                        Some(p) => format!("{h}:{p}"),
                        None => h,
                    })
                })
                .or_else(|| each("db.namespace"))
                .or_else(|| each("db.name"))
                .or_else(|| each("db.system.name"))
                .or_else(|| each("db.system"))
        } else {
            None
        };
        assert_eq!(
            got.database_name(),
            expected_database,
            "{span:?} {resource:?}"
        );
        let expected_peer = peers.iter().find_map(|p| span.text(p));
        assert_eq!(got.peer().and_then(|p| text_of(&p)), expected_peer);
        let expected_dims: Vec<Option<Box<str>>> = dims
            .iter()
            .map(|d| {
                each(&d.name)
                    .or_else(|| d.default.clone())
                    .map(String::into_boxed_str)
            })
            .collect();
        assert_eq!(got.dimension_values(dims), expected_dims);
    }

    #[test]
    fn one_pass_reads_what_looking_up_each_key_reads() {
        let peers = ["peer.service", "db.name", "db.system"];
        let dims = [
            dimension("http.route", None),
            dimension("deployment.environment", Some("none")),
            dimension("peer.service", None),
        ];
        let cases: Vec<(Vec<KeyValue>, Vec<KeyValue>)> = vec![
            (vec![], vec![]),
            (vec![text("http.route", "/a"), text("attr.1", "x")], vec![]),
            // A database call named by its server address; the first
            // attribute of a key wins, even an empty one.
            (
                vec![
                    text("db.system", "postgresql"),
                    text("server.address", "db-1"),
                    text("server.address", "db-2"),
                ],
                vec![text("deployment.environment", "prod")],
            ),
            (
                vec![kv("peer.service", None), text("peer.service", "later")],
                vec![text("peer.service", "from-resource")],
            ),
            (
                vec![text("peer.service", ""), text("db.name", "orders")],
                vec![],
            ),
            // Markers only on the resource; host and port, a number.
            (
                vec![
                    text("network.peer.address", "10.0.0.7"),
                    kv("network.peer.port", Some(Value::IntValue(5432))),
                ],
                vec![text("db.system.name", "postgresql")],
            ),
            (
                vec![kv("db.namespace", Some(Value::BoolValue(true)))],
                vec![],
            ),
            (
                vec![text("db.system", ""), text("db.system.name", "")],
                vec![text("db.namespace", "")],
            ),
        ];
        for (span, resource) in &cases {
            check(span, resource, &peers, &dims);
            check(span, resource, &[], &[]);
        }
    }

    #[test]
    fn keys_read_twice_are_kept_once() {
        let wanted = Wanted::new(
            &["peer.service".into(), "rpc.service".into()],
            &[
                dimension("rpc.service", None),
                dimension("k8s.namespace", None),
            ],
        );
        assert_eq!(wanted.keys.len(), FIXED.len() + 2);
        assert_eq!(wanted.peers, vec![PEER_SERVICE, FIXED.len()]);
        assert_eq!(wanted.dims, vec![FIXED.len(), FIXED.len() + 1]);
    }
}
