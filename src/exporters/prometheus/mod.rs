//! The Prometheus exporter: received metrics translated by the
//! OTel→Prometheus rules into a series store, and `/metrics` serving them
//! (text 0.0.4 or OpenMetrics 1.0, gzip when accepted) together with
//! StreamGate's own `streamgate_*` series.
//!
//! [`PrometheusExporter`] is a [`MetricsConsumer`]: it applies a request to
//! the store before the receiver answers, so an acknowledged point is
//! visible on the next scrape. Series unseen for `series_ttl` expire.
//!
//! Processors' derived gauges (the analysis processor's baselines and
//! forecasts) are not stored: attached as
//! [`DerivedSource`](crate::pipeline::derived::DerivedSource)s, they are
//! rendered from the processor's state on every walk (`/metrics` and
//! remote write), with label blocks this exporter's translation built
//! once per series ([`LabelTranslator`](crate::pipeline::derived::LabelTranslator)).
//!
//! It also answers the API's [`SeriesQuery`](crate::pipeline::query::SeriesQuery)
//! (`query.rs`): series listing and the history rings of watched series.

mod compression;
pub mod config;
mod exemplar;
mod http;
mod ingest;
mod names_filter;
mod query;
pub mod render;
pub mod store;
pub mod translate;
mod weighted;

use crate::model::MetricsBatch;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::RwLock;

use crate::model::MetricsRequest;
use crate::model::otlp::common::{InstrumentationScope, KeyValue};
use crate::model::otlp::metrics::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric::Data,
};
use crate::model::otlp::resource::Resource;
use crate::pipeline::derived::{DerivedSource, LabelBlock, LabelTranslator};

use crate::pipeline::{ConsumeResult, MetricsConsumer, Shutdown};
use crate::telemetry::{Telemetry, names};

pub use config::PrometheusExporterConfig;
pub use names_filter::NameFilter;
pub use render::Format;
pub use store::SeriesStore;

/// The label telling replicas' series apart (see `collector_instance`).
pub const COLLECTOR_INSTANCE_LABEL: &str = "collector_instance";

/// The exporter: store + config. Shared as `Arc<PrometheusExporter>`.
pub struct PrometheusExporter {
    store: SeriesStore,
    config: PrometheusExporterConfig,
    telemetry: Arc<Telemetry>,
    /// `collector_instance` (empty: none), added to every sample.
    collector_instance: String,
    /// The same as a pre-escaped label block.
    common_labels: String,
    /// Processors whose gauges are rendered from their state rather than
    /// stored (see `pipeline::derived`). Weak: they send to this exporter.
    derived: RwLock<Vec<Weak<dyn DerivedSource>>>,
}

/// A derived family `/metrics` serves now: its source and key, and its
/// name and unit as translated.
struct DerivedEntry {
    source: Arc<dyn DerivedSource>,
    key: u64,
    name: String,
    help: std::borrow::Cow<'static, str>,
    unit: String,
}

/// Builds the exporter from its (validated) config.
pub fn build(
    config: PrometheusExporterConfig,
    telemetry: Arc<Telemetry>,
) -> Arc<PrometheusExporter> {
    Arc::new(PrometheusExporter::new(config, telemetry))
}

impl PrometheusExporter {
    pub fn new(config: PrometheusExporterConfig, telemetry: Arc<Telemetry>) -> Self {
        Self {
            store: SeriesStore::new(telemetry.clone(), names::ALL.to_vec()),
            config,
            telemetry,
            collector_instance: String::new(),
            common_labels: String::new(),
            derived: RwLock::new(Vec::new()),
        }
    }

    /// Renders the gauges of `source` on every walk (`/metrics` and
    /// remote write) from now on, until it is dropped.
    pub fn attach_derived(&self, source: Weak<dyn DerivedSource>) {
        self.derived.write().push(source);
    }

    /// The derived families `names` asks for, translated as received
    /// gauges' names are (a name with no usable character is left out).
    fn derived_families(&self, names: &NameFilter) -> Vec<DerivedEntry> {
        self.derived_families_where(|name| names.matches(name))
    }

    /// The derived families whose translated name `keep` accepts.
    fn derived_families_where(&self, keep: impl Fn(&str) -> bool) -> Vec<DerivedEntry> {
        let mut out = Vec::new();
        for source in self.derived.read().iter().filter_map(Weak::upgrade) {
            for family in source.families() {
                let Some(name) = translate::metric_name(
                    &family.name,
                    &family.unit,
                    translate::MetricShape::Gauge,
                    &self.config.namespace,
                    self.config.add_metric_suffixes,
                ) else {
                    continue;
                };
                if keep(&name) {
                    out.push(DerivedEntry {
                        source: source.clone(),
                        key: family.key,
                        name,
                        unit: translate::unit_word(&family.unit),
                        help: family.help,
                    });
                }
            }
        }
        out
    }

    /// Adds `collector_instance="<name>"` to every sample (nothing when
    /// empty), so replicas sharing a backend never write the same series.
    pub fn with_collector_instance(mut self, name: &str) -> Self {
        self.collector_instance = name.to_string();
        self.common_labels.clear();
        if !name.is_empty() {
            self.common_labels.push_str(COLLECTOR_INSTANCE_LABEL);
            self.common_labels.push_str("=\"");
            store::escape_value_into(name, &mut self.common_labels);
            self.common_labels.push('"');
        }
        self
    }

    /// The `collector_instance` label's value (empty: none).
    pub fn collector_instance(&self) -> &str {
        &self.collector_instance
    }

    /// The label every sample gets at render time, which no attribute may
    /// set: `collector_instance` when it is set.
    fn reserved_label(&self) -> Option<&'static str> {
        (!self.collector_instance.is_empty()).then_some(COLLECTOR_INSTANCE_LABEL)
    }

    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    /// Walks every family `/metrics` serves (stored, derived and
    /// StreamGate's own) into `out`, one shard lock at a time, pacing it
    /// with `pacing`. False when the pacing stopped it.
    pub fn visit<E: render::Exposition>(
        &self,
        names: &NameFilter,
        out: &mut E,
        pacing: &mut dyn Pacing<E>,
    ) -> bool {
        let mut families = self.store.families_sorted();
        families.retain(|f| names.matches(f.name()));
        let mut derived = self.derived_families(names);
        // A derived family a stored gauge shares its name with (received
        // under that name) is written as part of it; one a stored family
        // of another type holds is left out, as the store refuses a gauge
        // of that name.
        fn write_derived<E: render::Exposition>(
            entry: &DerivedEntry,
            header: bool,
            out: &mut E,
            pacing: &mut dyn Pacing<E>,
        ) -> bool {
            let text = render::DerivedFamilyText {
                name: &entry.name,
                help: &entry.help,
                unit: &entry.unit,
            };
            render::write_derived_chunked(&*entry.source, entry.key, &text, header, out, &mut |o| {
                pacing.after_series(o)
            })
        }
        for family in &families {
            let header = render::write_family_chunked(family, out, &mut |o| pacing.after_series(o));
            let gauge = family.kind() == store::FamilyKind::Gauge;
            for entry in derived.iter().filter(|e| gauge && e.name == family.name()) {
                if !write_derived(entry, header, out, pacing) {
                    return false;
                }
            }
            if !pacing.after_series(out) || !pacing.between_families(out) {
                return false;
            }
        }
        derived.retain(|e| !families.iter().any(|f| f.name() == e.name));
        // Families of one name (from two sources, or two source names
        // that translate alike) are written as one.
        derived.sort_by(|a, b| a.name.cmp(&b.name));
        for (i, entry) in derived.iter().enumerate() {
            let continued = i > 0 && derived[i - 1].name == entry.name;
            let last = derived
                .get(i + 1)
                .is_none_or(|next| next.name != entry.name);
            if !write_derived(entry, continued, out, pacing)
                || !pacing.after_series(out)
                || (last && !pacing.between_families(out))
            {
                return false;
            }
        }
        let mut own = self.telemetry.snapshot();
        own.retain(|f| names.matches(f.name));
        render::write_self_metrics(&own, out);
        true
    }

    pub fn store(&self) -> &SeriesStore {
        &self.store
    }

    /// Renders everything `/metrics` serves, in `format`.
    pub fn render(&self, format: Format) -> String {
        struct Collect(String);
        impl ChunkSink for Collect {
            fn push(&mut self, chunk: String) -> bool {
                self.0.push_str(&chunk);
                true
            }
        }
        let mut out = Collect(String::new());
        self.render_chunks(format, &NameFilter::all(), usize::MAX, &mut out);
        out.0
    }

    /// Renders the exposition in chunks of about `chunk_size` bytes, each
    /// handed to `sink` as soon as it is full (so the whole output never
    /// sits in memory); stops when `sink` answers `false` (the client
    /// went away). A family's lock is held while its series are written,
    /// so `push` must not wait; `settle`, called between families with no
    /// lock held, may. Only the families `names` asks for are written.
    pub fn render_chunks(
        &self,
        format: Format,
        names: &NameFilter,
        chunk_size: usize,
        sink: &mut dyn ChunkSink,
    ) {
        let capacity = chunk_size.min(4096 + self.store.family_count() * 256);
        let mut out = render::TextOut::new(format, &self.common_labels, capacity)
            .with_created(self.config.openmetrics_created);
        struct Chunking<'s> {
            sink: &'s mut dyn ChunkSink,
            chunk_size: usize,
            capacity: usize,
            open: bool,
        }
        impl Pacing<render::TextOut<'_>> for Chunking<'_> {
            fn after_series(&mut self, out: &mut render::TextOut<'_>) -> bool {
                if self.open && out.out.len() >= self.chunk_size {
                    let full =
                        std::mem::replace(&mut out.out, String::with_capacity(self.capacity));
                    self.open = self.sink.push(full);
                }
                self.open
            }
            fn between_families(&mut self, _: &mut render::TextOut<'_>) -> bool {
                self.sink.settle()
            }
        }
        let mut chunking = Chunking {
            sink,
            chunk_size,
            capacity,
            open: true,
        };
        if !self.visit(names, &mut out, &mut chunking) {
            return;
        }
        let sink = chunking.sink;
        render::write_eof(format, &mut out.out);
        if sink.push(out.out) {
            sink.settle();
        }
    }

    /// The `/metrics` route.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        http::router(self.clone())
    }

    /// Expires idle series until shutdown.
    pub async fn run_expiry(self: Arc<Self>, shutdown: Shutdown) {
        let ttl = self.config.series_ttl.get();
        let every = (ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(30));
        let ttl_secs = ttl.as_secs().min(u32::MAX as u64) as u32;
        shutdown
            .every(every, || {
                // Waits for shard locks a scrape may hold: not on an
                // async worker.
                let exporter = self.clone();
                async move {
                    let expired =
                        tokio::task::spawn_blocking(move || exporter.store.expire(ttl_secs))
                            .await
                            .unwrap_or(0);
                    if expired > 0 {
                        tracing::debug!(expired, "expired idle series");
                    }
                }
            })
            .await;
    }
}

/// How a walk over the families ([`PrometheusExporter::visit`]) hands
/// over what it wrote.
pub trait Pacing<E> {
    /// After each series, a shard lock held: must not wait. False stops.
    fn after_series(&mut self, out: &mut E) -> bool;
    /// Between families, no lock held: may wait. False stops.
    fn between_families(&mut self, out: &mut E) -> bool;
}

/// A walk that never waits nor stops early (a remote-write collection:
/// requests go to their queue as they fill).
pub struct Unpaced;

impl<E> Pacing<E> for Unpaced {
    fn after_series(&mut self, _: &mut E) -> bool {
        true
    }
    fn between_families(&mut self, _: &mut E) -> bool {
        true
    }
}

/// Where [`PrometheusExporter::render_chunks`] puts the exposition.
pub trait ChunkSink {
    /// Takes one chunk while a shard lock may be held: must not wait.
    /// `false` stops the rendering (the client went away).
    fn push(&mut self, chunk: String) -> bool;
    /// Called between families, with no lock held: may wait for what was
    /// pushed to be taken. `false` stops the rendering.
    fn settle(&mut self) -> bool {
        true
    }
}

/// The label block of a derived series: built by the same translation as
/// a received gauge point's (through a one-point request), once per
/// series.
impl LabelTranslator for PrometheusExporter {
    fn label_block(
        &self,
        resource: &[KeyValue],
        scope: &InstrumentationScope,
        attributes: &[KeyValue],
    ) -> Result<LabelBlock, String> {
        let point = NumberDataPoint {
            attributes: attributes.to_vec(),
            ..Default::default()
        };
        let request = MetricsRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: resource.to_vec(),
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(scope.clone()),
                    metrics: vec![Metric {
                        name: "derived".into(),
                        data: Some(Data::Gauge(Gauge {
                            data_points: vec![point],
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let limits = (
            self.config.max_labels_per_series,
            self.config.max_label_value_length,
        );
        ingest::first_point_label_block(
            &MetricsBatch::from_request(request),
            limits,
            self.reserved_label(),
        )
    }
}

impl MetricsConsumer for PrometheusExporter {
    fn consume_metrics(&self, request: &MetricsBatch) -> ConsumeResult {
        Ok(ingest::Ingester::new(&self.store, &self.config, self.reserved_label()).ingest(request))
    }
}

#[cfg(test)]
mod derived_tests;
#[cfg(test)]
mod shard_tests;
#[cfg(test)]
mod tests;

/// Durable state: the totals of delta senders' series (see
/// `store/durable.rs`), so those counters continue across a restart.
impl crate::pipeline::durable::Durable for PrometheusExporter {
    fn state_name(&self) -> &'static str {
        "exporter"
    }

    fn state_version(&self) -> u32 {
        1
    }

    fn snapshot(&self, out: &mut Vec<u8>) -> Result<(), crate::pipeline::durable::DurableError> {
        self.store().save_accumulated(out)
    }

    fn restore(
        &self,
        snapshot: &[u8],
    ) -> Result<crate::pipeline::durable::Restored, crate::pipeline::durable::DurableError> {
        let (items, discarded) = self.store().restore_accumulated(snapshot)?;
        Ok(crate::pipeline::durable::Restored { items, discarded })
    }
}
