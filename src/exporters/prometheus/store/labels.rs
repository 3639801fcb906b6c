//! Building a series' label set without allocating: names and values are
//! written into reused buffers, sorted, merged, escaped into the canonical
//! label block and hashed once.

use std::hash::BuildHasher;
use std::ops::Range;

pub use crate::model::label_block::parse as parse_label_block;

/// Where a label came from, which decides collisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LabelSource {
    /// A data-point attribute. Colliding attributes join their values with
    /// `;`, ordered by the original attribute key.
    Attribute,
    /// Derived by the translation (`job`, `instance`, `otel_scope_*`):
    /// replaces attributes of the same name.
    Derived,
}

#[derive(Debug, Clone)]
struct Pair {
    name: Range<usize>,
    value: Range<usize>,
    /// The attribute key before sanitising, to order collisions.
    key: Range<usize>,
    source: LabelSource,
}

/// A reusable label-set builder. `clear`, `push` …, `finish`, then read
/// [`text`](Self::text) and [`hash`](Self::hash).
#[derive(Default)]
pub struct LabelSet {
    buf: String,
    pairs: Vec<Pair>,
    text: String,
    hash: u64,
    /// The longest run of derived labels in `text` (see
    /// [`shared_span`](Self::shared_span)).
    shared: Range<usize>,
    /// [`route_hash`] of the block's `job` and `instance` values.
    route: u64,
    /// A label name the exposition adds to every sample itself
    /// (`collector_instance`, when set): attributes of that name are
    /// left out, as derived labels replace them. Kept across `clear`.
    reserved: Option<&'static str>,
}

/// Runs of derived labels shorter than this are not worth sharing.
const MIN_SHARED_BYTES: usize = 16;

const HASHER: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x5eed_5eed);

impl LabelSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Leaves attributes named `name` out of every later block (see
    /// `reserved`); `None` keeps them.
    pub fn reserve(&mut self, name: Option<&'static str>) {
        self.reserved = name;
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.pairs.clear();
        self.text.clear();
        self.hash = 0;
        self.shared = 0..0;
        self.route = 0;
    }

    /// Adds a label. `write_name` writes the (already valid) label name,
    /// `write_value` the value; an empty value means no label, as in
    /// Prometheus. `key` is the original attribute key (for ordering).
    pub fn push(
        &mut self,
        key: &str,
        write_name: impl FnOnce(&mut String),
        write_value: impl FnOnce(&mut String),
        source: LabelSource,
    ) {
        let start = self.buf.len();
        write_name(&mut self.buf);
        let name = start..self.buf.len();
        write_value(&mut self.buf);
        let value = name.end..self.buf.len();
        if name.is_empty() || value.is_empty() {
            self.buf.truncate(start);
            return;
        }
        self.buf.push_str(key);
        let key = value.end..self.buf.len();
        self.pairs.push(Pair {
            name,
            value,
            key,
            source,
        });
    }

    /// Labels pushed (attributes that collide on one name count apart).
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Bytes of the longest label value.
    pub fn longest_value(&self) -> usize {
        self.pairs.iter().map(|p| p.value.len()).max().unwrap_or(0)
    }

    /// Adds a label whose name and value are plain strings.
    pub fn push_str(&mut self, name: &str, value: &str, source: LabelSource) {
        self.push(name, |b| b.push_str(name), |b| b.push_str(value), source);
    }

    /// Sorts, resolves collisions, renders the canonical block and hashes it.
    pub fn finish(&mut self) {
        let buf = &self.buf;
        self.pairs.sort_by(|a, b| {
            buf[a.name.clone()]
                .cmp(&buf[b.name.clone()])
                .then(b.source.cmp(&a.source))
                .then_with(|| buf[a.key.clone()].cmp(&buf[b.key.clone()]))
        });
        self.text.clear();
        let (mut run, mut best) = (0..0, 0..0);
        let (mut job, mut instance) = (0..0, 0..0);
        let mut i = 0;
        while i < self.pairs.len() {
            let first = &self.pairs[i];
            let name = &buf[first.name.clone()];
            let mut j = i + 1;
            while j < self.pairs.len() && &buf[self.pairs[j].name.clone()] == name {
                j += 1;
            }
            let derived = first.source == LabelSource::Derived;
            if !derived && self.reserved == Some(name) {
                i = j;
                continue;
            }
            if !self.text.is_empty() {
                self.text.push(',');
            }
            if !derived {
                run = 0..0;
            } else if run.is_empty() {
                run = self.text.len()..self.text.len();
            }
            self.text.push_str(name);
            self.text.push_str("=\"");
            let value_start = self.text.len();
            if derived {
                escape_value_into(&buf[first.value.clone()], &mut self.text);
            } else {
                for (n, pair) in self.pairs[i..j].iter().enumerate() {
                    if n > 0 {
                        self.text.push(';');
                    }
                    escape_value_into(&buf[pair.value.clone()], &mut self.text);
                }
            }
            match name {
                "job" => job = value_start..self.text.len(),
                "instance" => instance = value_start..self.text.len(),
                _ => {}
            }
            self.text.push('"');
            if derived {
                run.end = self.text.len();
                if run.len() > best.len() {
                    best = run.clone();
                }
            }
            i = j;
        }
        self.shared = if best.len() >= MIN_SHARED_BYTES {
            best
        } else {
            0..0
        };
        self.hash = label_hash(&self.text);
        self.route = route_hash(&self.text[job], &self.text[instance]);
    }

    /// [`route_hash`] of this set's `job` and `instance` (valid after
    /// `finish`): which shard of its family the series lives in.
    pub fn route(&self) -> u64 {
        self.route
    }

    /// The longest run of consecutive derived labels in [`text`](Self::text)
    /// (`job`, `instance`, `otel_scope_*`: the same for every series of a
    /// scope), without the commas around it; empty when there is none
    /// worth sharing. The store keeps that part once per family.
    pub fn shared_span(&self) -> Range<usize> {
        self.shared.clone()
    }

    /// The canonical block: `a="1",b="2"` (no braces), escaped.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Number of labels after merging (valid after `finish`).
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }
}

/// The hash of a canonical label block (as [`LabelSet::hash`] gives it).
pub fn label_hash(text: &str) -> u64 {
    HASHER.hash_one(text.as_bytes())
}

/// The hash that places a series in a shard of its family: of its `job`
/// and `instance` values as escaped in its label block (empty when it has
/// none). A function of the final labels only, so a series has one shard
/// whichever source (resource, scope, attributes) its labels came from;
/// and the two labels that tell the instances of a service apart, so two
/// instances' points rarely meet in one shard.
pub fn route_hash(job: &str, instance: &str) -> u64 {
    use std::hash::Hasher;
    let mut hasher = ROUTE_HASHER.build_hasher();
    hasher.write(job.as_bytes());
    hasher.write_u8(0xff);
    hasher.write(instance.as_bytes());
    hasher.finish()
}

const ROUTE_HASHER: foldhash::fast::FixedState =
    foldhash::fast::FixedState::with_seed(0x7a11_0c8e_d15c_0b1e);

/// Escapes a label value for both text formats: `\`, `"` and newline.
pub fn escape_value_into(value: &str, out: &mut String) {
    if !value.contains(['\\', '"', '\n']) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_blocks_parse_back_to_their_values() {
        let mut set = LabelSet::new();
        set.push_str("a", "q\"\n\\,=\"", LabelSource::Attribute);
        set.push_str("b", "plain", LabelSource::Attribute);
        set.finish();
        assert_eq!(
            parse_label_block(set.text()),
            vec![
                ("a".to_string(), "q\"\n\\,=\"".to_string()),
                ("b".to_string(), "plain".to_string()),
            ]
        );
        assert!(parse_label_block("").is_empty());
    }

    #[test]
    fn sorts_merges_collisions_by_key_and_derived_wins() {
        let mut set = LabelSet::new();
        set.push(
            "foo_bar",
            |b| b.push_str("foo_bar"),
            |b| b.push('b'),
            LabelSource::Attribute,
        );
        set.push(
            "foo.bar",
            |b| b.push_str("foo_bar"),
            |b| b.push('a'),
            LabelSource::Attribute,
        );
        set.push_str("job", "from-attr", LabelSource::Attribute);
        set.push_str("job", "svc", LabelSource::Derived);
        set.push_str("empty", "", LabelSource::Attribute);
        set.push_str("a", "q\"\n\\", LabelSource::Attribute);
        set.finish();
        assert_eq!(set.text(), r#"a="q\"\n\\",foo_bar="a;b",job="svc""#);
    }

    #[test]
    fn same_labels_in_any_order_hash_alike() {
        let mut a = LabelSet::new();
        a.push_str("x", "1", LabelSource::Attribute);
        a.push_str("y", "2", LabelSource::Attribute);
        a.finish();
        let mut b = LabelSet::new();
        b.push_str("y", "2", LabelSource::Attribute);
        b.push_str("x", "1", LabelSource::Attribute);
        b.finish();
        assert_eq!(a.text(), b.text());
        assert_eq!(a.hash(), b.hash());
        b.clear();
        b.push_str("x", "2", LabelSource::Attribute);
        b.finish();
        assert_ne!(a.hash(), b.hash());
    }
}
