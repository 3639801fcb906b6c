//! The analysis processor's label blocks built by the Prometheus
//! exporter's own translation, as the app wires them: what a series keeps
//! and what its origin keeps once, put back together, is the block the
//! translation gives the series (the processor's own tests use a stand-in
//! translation, and processors may not use the exporter).

use std::sync::Arc;

use crate::config::types::HumanDuration;
use crate::exporters::prometheus::PrometheusExporter;
use crate::model::otlp::common::KeyValue;
use crate::model::otlp::metrics::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric::Data,
    number_data_point,
};
use crate::model::otlp::resource::Resource;
use crate::model::{MetricsBatch, MetricsRequest};
use crate::pipeline::derived::LabelTranslator;
use crate::pipeline::{ConsumeResult, Consumed, MetricsConsumer};
use crate::processors::analysis::{AnalysisConfig, AnalysisProcessor, SelectRule};
use crate::processors::output::string_kv;
use crate::telemetry::Telemetry;

struct Sink;

impl MetricsConsumer for Sink {
    fn consume_metrics(&self, _: &MetricsBatch) -> ConsumeResult {
        Ok(Consumed::all())
    }
}

fn select(name: &str) -> SelectRule {
    SelectRule {
        name: name.into(),
        labels: Default::default(),
    }
}

/// One point per route of metric `name` (a gauge, or a cumulative
/// counter), from service `api` instance `i-1`, scope `shop`.
fn request(name: &str, counter: bool, routes: &[&str]) -> MetricsBatch {
    let data_points: Vec<NumberDataPoint> = routes
        .iter()
        .map(|route| NumberDataPoint {
            attributes: vec![string_kv("route", route)],
            value: Some(number_data_point::Value::AsDouble(1.0)),
            ..Default::default()
        })
        .collect();
    let data = if counter {
        Data::Sum(Sum {
            data_points,
            aggregation_temporality: 2,
            is_monotonic: true,
        })
    } else {
        Data::Gauge(Gauge { data_points })
    };
    MetricsBatch::from_request(MetricsRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    string_kv("service.name", "api"),
                    string_kv("service.instance.id", "i-1"),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(crate::model::otlp::common::InstrumentationScope {
                    name: "shop".into(),
                    version: "1.0".into(),
                    ..Default::default()
                }),
                metrics: vec![Metric {
                    name: name.into(),
                    data: Some(data),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

/// The labels every series of a metric has (`instance`, `job`, `metric`,
/// `otel_scope_*`) are kept once, by the metric's origin: a series keeps
/// only its own attributes' labels, and its block put back together is
/// what the translation gives it. A counter's `transform="rate"` sorts
/// after the point's `route`, so its run is the longest piece of the
/// common labels its block has whole, and `transform` stays its own.
#[test]
fn series_of_one_metric_leave_the_labels_they_share_to_their_origin() {
    let exporter = Arc::new(PrometheusExporter::new(
        Default::default(),
        Arc::new(Telemetry::new()),
    ));
    let config = AnalysisConfig {
        select: vec![select("queue.depth"), select("jobs.done")],
        step: HumanDuration::secs(30),
        horizons: vec![HumanDuration::secs(60)],
        ..Default::default()
    };
    let p = AnalysisProcessor::new(
        config,
        Arc::new(Sink),
        exporter.clone(),
        Arc::new(Telemetry::new()),
    );
    let routes = ["/a", "/b", "/c"];
    let now = 1_800_000_000.0;
    p.observe_request(&request("queue.depth", false, &routes), now);
    p.observe_request(&request("jobs.done", true, &routes), now);
    assert_eq!(p.series_count(), 6);
    assert_eq!(
        p.origin_counts(),
        (1, 2),
        "one source, one origin per metric"
    );
    for kept in p.kept_label_blocks() {
        let own = format!("{}{}", kept.head, kept.tail);
        for common in ["instance=", "job=", "metric=", "otel_scope_name="] {
            assert!(!own.contains(common), "{common} in {own:?}");
            assert!(kept.run.contains(common), "{common} not in {:?}", kept.run);
        }
        assert!(own.contains("route="), "{own}");
        let attributes: &[KeyValue] = &kept.attributes;
        let block = exporter
            .label_block(&kept.resource, &kept.scope, attributes)
            .expect("translated");
        assert_eq!(
            format!("{}{}{}", kept.head, kept.run, kept.tail),
            block.text
        );
        if attributes.iter().any(|kv| kv.key == "transform") {
            assert!(kept.tail.contains(r#"transform="rate""#), "{}", kept.tail);
        }
    }
}
