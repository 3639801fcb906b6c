//! Rendering the store and the self-metrics as Prometheus text 0.0.4 or
//! OpenMetrics 1.0. Label blocks are stored pre-escaped, so a series is
//! written with a few copies and a number format.

use std::fmt::Write;

use crate::pipeline::derived::DerivedSource;
use crate::telemetry::{FamilySnapshot, MetricKind};

use super::store::value::StoredExemplar;
use super::store::{Family, FamilyKind, LabelText, SeriesValue, SeriesView};

/// The exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`.
    Text,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// Picks the format from an `Accept` header: OpenMetrics when it is
    /// listed with a non-zero quality at least as high as the text
    /// format's (`text/plain`, else `text/*` or `*/*`), text otherwise
    /// (a header that names neither gets text, the format every scraper
    /// reads).
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        // (A weight that does not parse counts as 1: it does not refuse.)
        let (mut open_metrics, mut text, mut wildcard) = (None::<f32>, None::<f32>, None::<f32>);
        for (media, weight) in super::weighted::entries(accept) {
            let q = weight.unwrap_or(1.0);
            let best = |slot: &mut Option<f32>| *slot = Some(slot.map_or(q, |s| s.max(q)));
            if media.eq_ignore_ascii_case("application/openmetrics-text") {
                best(&mut open_metrics);
            } else if media.eq_ignore_ascii_case("text/plain") {
                best(&mut text);
            } else if media.eq_ignore_ascii_case("text/*") || media == "*/*" {
                best(&mut wildcard);
            }
        }
        match (open_metrics, text.or(wildcard)) {
            (Some(om), other) if om > 0.0 && other.is_none_or(|t| om >= t) => Format::OpenMetrics,
            _ => Format::Text,
        }
    }
}

/// Writes a float as Prometheus expects: `NaN`, `+Inf`, `-Inf`, integers
/// without a fraction, others in shortest round-trip form.
pub fn write_float(value: f64, out: &mut String) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        let mut buf = itoa::Buffer::new();
        out.push_str(buf.format(value as i64));
    } else if value.abs() >= 1e15 || value.abs() < 1e-6 {
        let _ = write!(out, "{value:e}");
    } else {
        let _ = write!(out, "{value}");
    }
}

fn write_help(help: &str, format: Format, out: &mut String) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if format == Format::OpenMetrics => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// Writes `# TYPE`, `# UNIT`, `# HELP` for a family. `name` is the family
/// name as the text format writes it (counters end in `_total`).
fn write_header(name: &str, kind: &str, help: &str, unit: &str, format: Format, out: &mut String) {
    let family = family_name(name, kind, format);
    if !help.is_empty() || format == Format::Text {
        out.push_str("# HELP ");
        out.push_str(family);
        if !help.is_empty() {
            out.push(' ');
            write_help(help, format, out);
        }
        out.push('\n');
    }
    out.push_str("# TYPE ");
    out.push_str(family);
    out.push(' ');
    // The text format (0.0.4) calls OpenMetrics' `unknown` `untyped`.
    out.push_str(match (kind, format) {
        ("unknown", Format::Text) => "untyped",
        _ => kind,
    });
    out.push('\n');
    if format == Format::OpenMetrics && !unit.is_empty() && family.ends_with(&format!("_{unit}")) {
        out.push_str("# UNIT ");
        out.push_str(family);
        out.push(' ');
        out.push_str(unit);
        out.push('\n');
    }
}

/// OpenMetrics names a counter family without `_total`.
fn family_name<'a>(name: &'a str, kind: &str, format: Format) -> &'a str {
    if format == Format::OpenMetrics && kind == "counter" {
        name.strip_suffix("_total").unwrap_or(name)
    } else {
        name
    }
}

/// Where rendered families go: the text exposition ([`TextOut`]), or
/// another reader of samples (the remote-write exporter). The walk over
/// the store is the same for both, so they never disagree on a series.
pub trait Exposition {
    /// The conventions samples follow (suffixes, `_created`, exemplars).
    fn format(&self) -> Format;
    /// Whether counters, histograms and summaries get their `_created`
    /// sample (OpenMetrics only).
    fn created(&self) -> bool {
        self.format() == Format::OpenMetrics
    }
    /// A family begins: `name` as the text format writes it (counters end
    /// in `_total`), its type, help and unit.
    fn header(&mut self, name: &str, kind: &str, help: &str, unit: &str);
    /// One sample: `name` + `suffix`, the family's pre-escaped label
    /// block, an extra label (`le`, `quantile`) and the value.
    fn sample(
        &mut self,
        name: &str,
        suffix: &str,
        labels: LabelText<'_>,
        extra: Option<(&str, &str)>,
        value: f64,
    );
    /// An exemplar of the sample just written (OpenMetrics only).
    fn exemplar(&mut self, _exemplar: &StoredExemplar) {}
}

/// The text exposition being written, with labels every sample carries
/// (`collector_instance`), pre-escaped, after its own.
pub struct TextOut<'a> {
    pub out: String,
    format: Format,
    common: &'a str,
    /// Whether OpenMetrics `_created` samples are written.
    created: bool,
}

impl<'a> TextOut<'a> {
    /// `common` is a pre-escaped label block (`a="b",c="d"`) or empty.
    pub fn new(format: Format, common: &'a str, capacity: usize) -> Self {
        Self {
            out: String::with_capacity(capacity),
            format,
            common,
            created: true,
        }
    }

    /// Leaves OpenMetrics `_created` samples out when `created` is false
    /// (`exporters.prometheus.openmetrics_created`).
    pub fn with_created(mut self, created: bool) -> Self {
        self.created = created;
        self
    }
}

impl Exposition for TextOut<'_> {
    fn format(&self) -> Format {
        self.format
    }

    fn created(&self) -> bool {
        self.created && self.format == Format::OpenMetrics
    }

    fn header(&mut self, name: &str, kind: &str, help: &str, unit: &str) {
        write_header(name, kind, help, unit, self.format, &mut self.out);
    }

    /// Writes `name{labels,extra,common} value\n`.
    fn sample(
        &mut self,
        name: &str,
        suffix: &str,
        labels: LabelText<'_>,
        extra: Option<(&str, &str)>,
        value: f64,
    ) {
        let out = &mut self.out;
        out.push_str(name);
        out.push_str(suffix);
        if !labels.is_empty() || extra.is_some() || !self.common.is_empty() {
            out.push('{');
            labels.push_to(out);
            let mut first = labels.is_empty();
            if let Some((k, v)) = extra {
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(k);
                out.push_str("=\"");
                out.push_str(v);
                out.push('"');
            }
            if !self.common.is_empty() {
                if !first {
                    out.push(',');
                }
                out.push_str(self.common);
            }
            out.push('}');
        }
        out.push(' ');
        write_float(value, out);
        out.push('\n');
    }

    fn exemplar(&mut self, exemplar: &StoredExemplar) {
        append_exemplar(exemplar, &mut self.out);
    }
}

/// Appends an OpenMetrics exemplar to the sample line just written:
/// `… value # {trace_id="…",span_id="…"[,attributes]} value timestamp`.
fn append_exemplar(e: &StoredExemplar, out: &mut String) {
    if out.ends_with('\n') {
        out.pop();
    }
    out.push_str(" # {trace_id=\"");
    hex_into(&e.trace_id, out);
    out.push_str("\",span_id=\"");
    hex_into(&e.span_id, out);
    out.push('"');
    if let Some(labels) = &e.labels {
        out.push_str(labels);
    }
    out.push_str("} ");
    write_float(e.value, out);
    if e.time_ns > 0 {
        let _ = write!(
            out,
            " {}.{:09}",
            e.time_ns / 1_000_000_000,
            e.time_ns % 1_000_000_000
        );
    }
    out.push('\n');
}

fn hex_into(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
}

fn write_bound(bound: f64, buf: &mut String) -> &str {
    buf.clear();
    write_float(bound, buf);
    buf
}

/// Writes one stored family as text.
pub fn write_family(family: &Family, format: Format, out: &mut String) {
    let mut text = TextOut::new(format, "", 0);
    std::mem::swap(&mut text.out, out);
    write_family_chunked(family, &mut text, &mut |_| true);
    std::mem::swap(&mut text.out, out);
}

/// Walks one stored family into `out`, calling `after_series` after each
/// series (to hand over full chunks while the family is written); stops
/// early when it answers `false`. True when it wrote the family's header
/// (it had a series).
pub fn write_family_chunked<E: Exposition>(
    family: &Family,
    out: &mut E,
    after_series: &mut dyn FnMut(&mut E) -> bool,
) -> bool {
    let format = out.format();
    let kind = family.kind();
    let sample_base = match (format, kind) {
        (Format::OpenMetrics, FamilyKind::Counter) => family_name(family.name(), "counter", format),
        _ => family.name(),
    };
    let mut bound = String::new();
    let mut header = false;
    // One shard locked at a time: writers wait on one shard, not the family.
    for shard in family.shards() {
        let series = shard.lock();
        for s in series.iter() {
            if !header {
                let text = family.text();
                out.header(family.name(), kind.as_str(), &text.help, &text.unit);
                header = true;
            }
            write_series(sample_base, kind, &s, &mut bound, out);
            if !after_series(out) {
                return header;
            }
        }
    }
    header
}

/// A gauge family rendered from a processor's state (see
/// `pipeline::derived`), with its name as `/metrics` writes it.
pub struct DerivedFamilyText<'a> {
    pub name: &'a str,
    pub help: &'a str,
    pub unit: &'a str,
}

/// Walks the family with `key` of a derived source into `out`, calling
/// `after_series` after each sample; its header comes before its first
/// sample unless `header_written` (a stored family of the same name came
/// first). False when `after_series` stopped it.
pub fn write_derived_chunked<E: Exposition>(
    source: &dyn DerivedSource,
    key: u64,
    family: &DerivedFamilyText<'_>,
    header_written: bool,
    out: &mut E,
    after_series: &mut dyn FnMut(&mut E) -> bool,
) -> bool {
    let mut header = header_written;
    source.walk(key, &mut |labels, extra, value| {
        if !header {
            out.header(family.name, "gauge", family.help, family.unit);
            header = true;
        }
        let labels = LabelText::parts(labels.head, labels.shared, labels.tail);
        out.sample(family.name, "", labels, extra, value);
        after_series(out)
    })
}

/// Writes `_bucket` samples from (upper bound, cumulative count), then
/// `+Inf`, `_sum`, `_count`. Leading empty negative buckets are left out.
/// OpenMetrics allows `_sum` and `_count` only together, and no `_sum`
/// when negative buckets are present.
#[allow(clippy::too_many_arguments)]
fn write_histogram<E: Exposition>(
    name: &str,
    s: &SeriesView<'_>,
    // Whether bucket i holds exemplar slot i (explicit buckets).
    exemplars: bool,
    buckets: impl Iterator<Item = (f64, u64)>,
    count: u64,
    sum: Option<f64>,
    bound: &mut String,
    out: &mut E,
) {
    let labels = s.labels();
    let mut negative = false;
    let mut slots = 0;
    for (i, (b, cumulative)) in buckets.enumerate() {
        if b == f64::INFINITY {
            // An explicit `+Inf` bound (as a histogram converted from
            // Prometheus may carry): the closing `+Inf` bucket below is
            // that one, with this slot's exemplar; `le="+Inf"` is written
            // once.
            break;
        }
        slots = i + 1;
        if b < 0.0 && cumulative == 0 {
            continue;
        }
        negative |= b < 0.0;
        let le = write_bound(b, bound);
        out.sample(name, "_bucket", labels, Some(("le", le)), cumulative as f64);
        if let Some(e) = exemplars.then(|| s.state.exemplar(i)).flatten() {
            out.exemplar(e);
        }
    }
    out.sample(name, "_bucket", labels, Some(("le", "+Inf")), count as f64);
    if let Some(e) = exemplars.then(|| s.state.exemplar(slots)).flatten() {
        out.exemplar(e);
    }
    match out.format() {
        Format::Text => {
            if let Some(sum) = sum {
                out.sample(name, "_sum", labels, None, sum);
            }
            out.sample(name, "_count", labels, None, count as f64);
        }
        Format::OpenMetrics => {
            if let Some(sum) = sum.filter(|_| !negative) {
                out.sample(name, "_sum", labels, None, sum);
                out.sample(name, "_count", labels, None, count as f64);
            }
        }
    }
    write_created(name, s, out);
}

fn write_created<E: Exposition>(name: &str, s: &SeriesView<'_>, out: &mut E) {
    if out.created() && s.state.start_ns > 0 {
        out.sample(
            name,
            "_created",
            s.labels(),
            None,
            s.state.start_ns as f64 / 1e9,
        );
    }
}

fn write_series<E: Exposition>(
    name: &str,
    kind: FamilyKind,
    s: &SeriesView<'_>,
    bound: &mut String,
    out: &mut E,
) {
    let labels = s.labels();
    let open_metrics = out.format() == Format::OpenMetrics;
    match &s.state.value {
        SeriesValue::Number(v) => {
            let suffix = if kind == FamilyKind::Counter && open_metrics {
                "_total"
            } else {
                ""
            };
            out.sample(name, suffix, labels, None, *v);
            if kind == FamilyKind::Counter
                && open_metrics
                && let Some(e) = s.state.exemplar(0)
            {
                out.exemplar(e);
            }
            if kind == FamilyKind::Counter {
                write_created(name, s, out);
            }
        }
        SeriesValue::Histogram(h) => {
            let buckets = h
                .bounds
                .iter()
                .zip(&h.counts)
                .scan(0u64, |running, (b, c)| {
                    *running = running.saturating_add(*c);
                    Some((*b, *running))
                });
            write_histogram(name, s, open_metrics, buckets, h.count, h.sum, bound, out);
        }
        SeriesValue::Exponential(h) => {
            let buckets = h.classic_buckets();
            // Equal edges (a zero threshold on a bucket edge) keep the last count.
            let distinct = buckets
                .iter()
                .enumerate()
                .filter(|(i, (b, _))| buckets.get(i + 1).is_none_or(|(next, _)| next > b))
                .map(|(_, (b, c))| (*b, (*c).min(h.count)));
            write_histogram(name, s, false, distinct, h.count, h.sum, bound, out);
        }
        SeriesValue::Summary(summary) => {
            for (q, v) in &summary.quantiles {
                let quantile = write_bound(*q, bound);
                out.sample(name, "", labels, Some(("quantile", quantile)), *v);
            }
            out.sample(name, "_sum", labels, None, summary.sum);
            out.sample(name, "_count", labels, None, summary.count as f64);
            write_created(name, s, out);
        }
    }
}

/// Writes StreamGate's own families.
pub fn write_self_metrics<E: Exposition>(families: &[FamilySnapshot], out: &mut E) {
    let format = out.format();
    let mut labels = String::new();
    for family in families {
        let kind = match family.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        };
        out.header(family.name, kind, family.help, "");
        let base = family_name(family.name, kind, format);
        for sample in &family.samples {
            labels.clear();
            for (i, (k, v)) in sample.labels.iter().enumerate() {
                if i > 0 {
                    labels.push(',');
                }
                labels.push_str(k);
                labels.push_str("=\"");
                super::store::escape_value_into(v, &mut labels);
                labels.push('"');
            }
            let suffix = if kind == "counter" && format == Format::OpenMetrics {
                "_total"
            } else {
                sample.suffix
            };
            out.sample(base, suffix, LabelText::whole(&labels), None, sample.value);
        }
    }
}

/// Ends an OpenMetrics exposition.
pub fn write_eof(format: Format, out: &mut String) {
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
}
