//! OTLP exemplars as the store keeps them: the trace and span ids, the
//! value and time, and the `filtered_attributes` as OpenMetrics exemplar
//! labels. The OTel compatibility specification asks for those labels
//! unless they would break OpenMetrics' limit of 128 characters over an
//! exemplar's label names and values together; the ids take 63 of them.

use crate::model::text::write_any_view;
use crate::model::wire::metrics::ExemplarView;
use crate::model::wire::{Attributes, Repeated};

use crate::model::label_block::parse_borrowed as parse_label_block_borrowed;

use super::store::value::StoredExemplar;
use super::store::{LabelSet, LabelSource};
use super::translate::sanitize_label_into;

/// OpenMetrics' bound on an exemplar's label names and values, together,
/// in characters.
const LABEL_CHARS: usize = 128;

/// What `trace_id` and `span_id` take of [`LABEL_CHARS`]: their names and
/// their values in hex.
const ID_CHARS: usize = "trace_id".len() + 32 + "span_id".len() + 16;

/// The last exemplar of a point that names a trace and span, as stored.
pub fn latest_exemplar(exemplars: &Repeated<'_, ExemplarView<'_>>) -> Option<StoredExemplar> {
    let last = exemplars.iter().filter(has_ids).last()?;
    stored_exemplar(&last)
}

/// An OTLP exemplar with a trace and span id and a value, as stored.
pub fn stored_exemplar(e: &ExemplarView<'_>) -> Option<StoredExemplar> {
    Some(StoredExemplar {
        trace_id: e.trace_id.try_into().ok()?,
        span_id: e.span_id.try_into().ok()?,
        value: e.value?,
        time_ns: e.time_ns,
        labels: exemplar_labels(&e.filtered_attributes),
    })
}

fn has_ids(e: &ExemplarView<'_>) -> bool {
    e.trace_id.len() == 16 && e.span_id.len() == 8 && e.value.is_some()
}

/// `filtered_attributes` as label pairs written after the ids
/// (`,name="value"…`), translated by the store's [`LabelSet`] as a
/// point's attributes are: names sanitised, two keys that become one
/// name joined with `;` in the order of the original keys, empty values
/// left out; attributes that would become `trace_id` or `span_id` are
/// left out too. `None` when none is left, or when they would take the
/// exemplar past its character limit (then the exemplar keeps its ids
/// alone rather than break the scrape).
fn exemplar_labels(attributes: &Attributes<'_>) -> Option<Box<str>> {
    let mut labels = LabelSet::new();
    let mut name = String::new();
    for kv in attributes.iter() {
        name.clear();
        sanitize_label_into(kv.key, &mut name);
        if name == "trace_id" || name == "span_id" {
            continue;
        }
        labels.push(
            kv.key,
            |b| b.push_str(&name),
            |b| write_any_view(&kv.value, b),
            LabelSource::Attribute,
        );
    }
    labels.finish();
    let block = labels.text();
    if block.is_empty() {
        return None;
    }
    let chars: usize = parse_label_block_borrowed(block)
        .iter()
        .map(|(name, value)| name.len() + value.chars().count())
        .sum();
    (ID_CHARS + chars <= LABEL_CHARS).then(|| format!(",{block}").into_boxed_str())
}
