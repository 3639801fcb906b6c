//! Series computed when they are read: the contract between a processor
//! that derives a set of gauges from each of many series (the analysis
//! processor's baselines and forecasts, the window processor's quantiles
//! and rates) and the exporter that serves them.
//!
//! Storing every derived value as an ordinary series would cost a full
//! series (labels, table entry, value) per derived gauge: fifteen per
//! analysed series, forty per windowed one. Instead the processor keeps
//! one label block per series, built once by the exporter's translation
//! ([`LabelTranslator`]), and the exporter walks the processor's state
//! when it renders `/metrics` or a remote-write collection
//! ([`DerivedSource`]).

use std::borrow::Cow;
use std::ops::Range;

use crate::model::otlp::common::{InstrumentationScope, KeyValue};

/// Renames the attributes whose label would repeat one a derived gauge
/// adds (`window`, `horizon`, `threshold`) to `exported_<name>`, as
/// Prometheus renames a scraped label that clashes with a target label:
/// a sample with two labels of one name makes Prometheus refuse the
/// whole scrape. `None` when no attribute clashes (nothing copied).
pub fn set_aside_added_labels(attributes: &[KeyValue], added: &[&str]) -> Option<Vec<KeyValue>> {
    if !attributes.iter().any(|kv| added.contains(&kv.key.as_str())) {
        return None;
    }
    Some(
        attributes
            .iter()
            .map(|kv| {
                let mut kv = kv.clone();
                if added.contains(&kv.key.as_str()) {
                    kv.key = format!("exported_{}", kv.key);
                }
                kv
            })
            .collect(),
    )
}

/// A gauge family a [`DerivedSource`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedFamily {
    /// The OTel metric name (the exporter translates it as it would a
    /// received gauge's).
    pub name: Cow<'static, str>,
    /// The OTel unit (`s`, or empty).
    pub unit: Cow<'static, str>,
    pub help: Cow<'static, str>,
    /// What the source walks for this family ([`DerivedSource::walk`]):
    /// its own meaning, stable while the family is listed.
    pub key: u64,
}

impl DerivedFamily {
    /// A family whose texts are all known at compile time.
    pub const fn fixed(
        name: &'static str,
        unit: &'static str,
        help: &'static str,
        key: u64,
    ) -> Self {
        Self {
            name: Cow::Borrowed(name),
            unit: Cow::Borrowed(unit),
            help: Cow::Borrowed(help),
            key,
        }
    }
}

/// A label block in three consecutive parts, written one after the
/// other: a series keeps its own text (`head`, `tail`) and shares the run
/// of labels its source gives every series (`shared`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockParts<'a> {
    pub head: &'a str,
    pub shared: &'a str,
    pub tail: &'a str,
}

impl<'a> BlockParts<'a> {
    /// A block held in one piece.
    pub fn whole(text: &'a str) -> Self {
        Self {
            head: text,
            shared: "",
            tail: "",
        }
    }

    /// The block as one string.
    pub fn joined(&self) -> String {
        [self.head, self.shared, self.tail].concat()
    }
}

/// One derived sample: the series' label block (as
/// [`LabelTranslator::label_block`] built it), an extra label (`horizon`,
/// `threshold`) and the value. `false` from the callback stops the walk.
pub type SampleSink<'a> = dyn FnMut(BlockParts<'_>, Option<(&str, &str)>, f64) -> bool + 'a;

/// A translated label block and, within it, the run of labels the
/// translation adds from the resource and scope (`job`, `instance`,
/// `otel_scope_*`, without the commas around it; empty when too short to
/// be worth sharing): the same text for every series of a source, unless
/// an attribute's label sorts into it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelBlock {
    pub text: String,
    pub shared: Range<usize>,
}

/// Gauges rendered from a processor's state.
pub trait DerivedSource: Send + Sync {
    /// The families it has now, in the order they are written.
    fn families(&self) -> Vec<DerivedFamily>;

    /// Calls `sample` for every series of the family with this `key`
    /// (see [`DerivedFamily::key`]) as it is now; false when `sample`
    /// stopped the walk. A key the source no longer has walks nothing.
    /// The source may hold a lock while it calls `sample`, so `sample`
    /// must not wait.
    fn walk(&self, key: u64, sample: &mut SampleSink<'_>) -> bool;
}

/// Builds the pre-escaped label block (`name="value",…`, sorted by name)
/// a received gauge point with these resource, scope and attributes would
/// have on `/metrics`; an error (why, naming the setting) when the block,
/// with the one label a derived family may add, breaks the exporter's
/// label limits, as such a point would be refused.
pub trait LabelTranslator: Send + Sync {
    fn label_block(
        &self,
        resource: &[KeyValue],
        scope: &InstrumentationScope,
        attributes: &[KeyValue],
    ) -> Result<LabelBlock, String>;
}

/// Takes derived gauges that are not stored, as a request of the ones it
/// wants (the analysis processor reading the window processor's gauges:
/// they reach it without going through the exporter's store).
pub trait DerivedObserver: Send + Sync {
    /// Whether gauges of this OTel metric name are wanted.
    fn wants_metric(&self, name: &str) -> bool;

    /// Observes a request of wanted gauges (it is not passed on).
    fn observe_derived(&self, batch: &crate::model::MetricsBatch);
}
