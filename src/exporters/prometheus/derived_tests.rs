//! Tests of derived families (`pipeline::derived`): rendered from their
//! source on every walk, with label blocks the exporter's own translation
//! built, merged into a received family of the same name.

use std::sync::Arc;

use super::tests::kv;
use super::*;
use crate::model::otlp::common::{InstrumentationScope, KeyValue};
use crate::model::otlp::metrics::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric::Data, number_data_point,
};
use crate::model::otlp::resource::Resource;
use crate::model::{MetricsBatch, MetricsRequest};
use crate::pipeline::derived::{
    BlockParts, DerivedFamily, DerivedSource, LabelBlock, LabelTranslator, SampleSink,
};

const FAMILIES: [DerivedFamily; 3] = [
    DerivedFamily::fixed("demo.level", "", "A level.", 0),
    DerivedFamily::fixed("demo.eta", "s", "Seconds to go.", 1),
    DerivedFamily::fixed("demo.empty", "", "Never has a sample.", 2),
];

/// Two series: family 0 has one sample each, family 1 one per horizon.
/// Each block is handed over in its three parts, as the analysis
/// processor keeps it.
struct Demo {
    labels: Vec<LabelBlock>,
}

impl DerivedSource for Demo {
    fn families(&self) -> Vec<DerivedFamily> {
        FAMILIES.to_vec()
    }

    fn walk(&self, key: u64, sample: &mut SampleSink<'_>) -> bool {
        for (i, block) in self.labels.iter().enumerate() {
            let text = &block.text;
            let labels = BlockParts {
                head: &text[..block.shared.start],
                shared: &text[block.shared.clone()],
                tail: &text[block.shared.end..],
            };
            let go_on = match key {
                0 => sample(labels, None, i as f64 + 0.5),
                1 => ["5m", "1h"]
                    .iter()
                    .all(|h| sample(labels, Some(("horizon", h)), 60.0 * (i + 1) as f64)),
                _ => true,
            };
            if !go_on {
                return false;
            }
        }
        true
    }
}

fn exporter() -> PrometheusExporter {
    PrometheusExporter::new(
        PrometheusExporterConfig::default(),
        Arc::new(Telemetry::new()),
    )
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "test.scope".into(),
        version: "2.0".into(),
        ..Default::default()
    }
}

/// Attaches a [`Demo`] source with one series per route (resource
/// `service.name="api"`) to `e`; the source lives while the result does.
fn attach_demo(e: &PrometheusExporter, routes: &[&str]) -> Arc<dyn DerivedSource> {
    let labels = routes
        .iter()
        .map(|route| {
            e.label_block(
                &[kv("service.name", "api")],
                &scope(),
                &[kv("route", route)],
            )
            .expect("within limits")
        })
        .collect();
    let source: Arc<dyn DerivedSource> = Arc::new(Demo { labels });
    e.attach_derived(Arc::downgrade(&source));
    source
}

fn gauge_request(resource: &[KeyValue], name: &str, attributes: &[KeyValue]) -> MetricsBatch {
    MetricsBatch::from_request(MetricsRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource.to_vec(),
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope()),
                metrics: vec![Metric {
                    name: name.into(),
                    data: Some(Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            attributes: attributes.to_vec(),
                            value: Some(number_data_point::Value::AsDouble(7.0)),
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

/// The label block of the first sample of `name` in `text`.
fn block_of<'t>(text: &'t str, name: &str) -> &'t str {
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"));
    let open = line.find('{').unwrap_or_default();
    let close = line.rfind('}').unwrap_or_default();
    &line[open + 1..close]
}

#[test]
fn a_label_block_is_what_a_received_gauge_point_gets() {
    let e = exporter();
    let resource = [
        kv("service.namespace", "shop"),
        kv("service.name", "api"),
        kv("service.instance.id", "i-1"),
    ];
    let attributes = [
        kv("http.route", "/a\"b"),
        kv("metric", "queue_depth"),
        kv("1st", "x"),
        kv("http_route", "dup"),
    ];
    e.consume_metrics(&gauge_request(&resource, "stored.gauge", &attributes))
        .expect("consumed");
    let text = e.render(Format::Text);
    let built = e
        .label_block(&resource, &scope(), &attributes)
        .expect("within limits");
    assert_eq!(built.text, block_of(&text, "stored_gauge"));
    // The longest run of labels the source gives every series: `metric`
    // sorts between `job` and the scope's labels, which are longer.
    assert_eq!(
        &built.text[built.shared.clone()],
        r#"otel_scope_name="test.scope",otel_scope_version="2.0""#
    );
}

/// Blocks are built with one reused builder per thread: a block built
/// after a longer one, and after a refused one, carries nothing of them.
#[test]
fn a_label_block_built_after_others_carries_nothing_of_them() {
    let e = exporter();
    let resource = [kv("service.name", "api")];
    let long = [kv("a", "1"), kv("b", "2"), kv("c", "3"), kv("d", "4")];
    let first = e
        .label_block(&resource, &scope(), &long)
        .expect("within limits");
    assert!(first.text.contains(r#"d="4""#), "{}", first.text);
    let huge = "x".repeat(1 << 20);
    assert!(
        e.label_block(&resource, &scope(), &[kv("z", &huge)])
            .is_err()
    );
    let short = e
        .label_block(&resource, &scope(), &[kv("b", "9")])
        .expect("within limits");
    assert_eq!(
        short.text,
        r#"b="9",job="api",otel_scope_name="test.scope",otel_scope_version="2.0""#
    );
    assert_eq!(
        &short.text[short.shared.clone()],
        r#"job="api",otel_scope_name="test.scope",otel_scope_version="2.0""#
    );
}

#[test]
fn a_label_block_over_the_label_limits_is_refused_with_the_setting() {
    let e = PrometheusExporter::new(
        PrometheusExporterConfig {
            max_labels_per_series: 8,
            max_label_value_length: 64,
            ..Default::default()
        },
        Arc::new(Telemetry::new()),
    );
    let resource = [kv("service.name", "api")];
    let long = "x".repeat(65);
    let why = e
        .label_block(&resource, &scope(), &[kv("route", &long)])
        .expect_err("too long");
    assert!(why.contains("max_label_value_length"), "{why}");
    // job and two scope labels, plus 5 attributes: 8, and the derived
    // family's own label (`horizon`) makes 9.
    let five: Vec<KeyValue> = (0..5).map(|i| kv(&format!("a{i}"), "v")).collect();
    let why = e
        .label_block(&resource, &scope(), &five)
        .expect_err("too many");
    assert!(why.contains("max_labels_per_series"), "{why}");
    assert!(e.label_block(&resource, &scope(), &five[..4]).is_ok());
}

#[test]
fn derived_families_are_rendered_from_their_source_on_every_walk() {
    let e = exporter();
    let source = attach_demo(&e, &["/a", "/b"]);
    let text = e.render(Format::Text);
    let base = r#"job="api",otel_scope_name="test.scope",otel_scope_version="2.0""#;
    for line in [
        "# HELP demo_level A level.\n# TYPE demo_level gauge\n".to_string(),
        format!("demo_level{{{base},route=\"/a\"}} 0.5\n"),
        format!("demo_level{{{base},route=\"/b\"}} 1.5\n"),
        "# TYPE demo_eta_seconds gauge\n".to_string(),
        format!("demo_eta_seconds{{{base},route=\"/a\",horizon=\"5m\"}} 60\n"),
        format!("demo_eta_seconds{{{base},route=\"/b\",horizon=\"1h\"}} 120\n"),
    ] {
        assert!(text.contains(&line), "{line} not in\n{text}");
    }
    assert!(
        !text.contains("demo_empty"),
        "a family without samples has no header"
    );
    let open = e.render(Format::OpenMetrics);
    assert!(open.contains("# UNIT demo_eta_seconds seconds\n"), "{open}");
    // Only the families asked for.
    let mut sink = String::new();
    struct Collect<'a>(&'a mut String);
    impl ChunkSink for Collect<'_> {
        fn push(&mut self, chunk: String) -> bool {
            self.0.push_str(&chunk);
            true
        }
    }
    e.render_chunks(
        Format::Text,
        &NameFilter::from_query([("name[]", "demo_level")]),
        usize::MAX,
        &mut Collect(&mut sink),
    );
    assert!(sink.contains("demo_level{"), "{sink}");
    assert!(!sink.contains("demo_eta"), "{sink}");
    // A dropped source is no longer walked.
    drop(source);
    assert!(!e.render(Format::Text).contains("demo_level"));
}

/// Two sources with a family of one name (as two windowed metrics whose
/// names translate alike would give): one header, both samples, together.
#[test]
fn derived_families_of_one_name_are_written_as_one() {
    let e = exporter();
    let first = attach_demo(&e, &["/a"]);
    let second = attach_demo(&e, &["/b"]);
    let text = e.render(Format::Text);
    assert_eq!(text.matches("# HELP demo_level ").count(), 1, "{text}");
    assert_eq!(text.matches("# TYPE demo_level gauge").count(), 1, "{text}");
    let header = text.find("# TYPE demo_level gauge").unwrap_or_default();
    let lines: Vec<&str> = text[header..].lines().skip(1).take(2).collect();
    assert!(lines.iter().all(|l| l.starts_with("demo_level{")), "{text}");
    assert!(lines.iter().any(|l| l.contains("route=\"/a\"")), "{text}");
    assert!(lines.iter().any(|l| l.contains("route=\"/b\"")), "{text}");
    drop((first, second));
}

#[test]
fn a_derived_family_named_like_a_received_one_is_written_within_it() {
    let e = exporter();
    e.consume_metrics(&gauge_request(
        &[kv("service.name", "api")],
        "demo.level",
        &[kv("route", "/received")],
    ))
    .expect("consumed");
    let _source = attach_demo(&e, &["/a"]);
    let text = e.render(Format::Text);
    assert_eq!(text.matches("# TYPE demo_level gauge").count(), 1, "{text}");
    let samples: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("demo_level{"))
        .collect();
    assert_eq!(samples.len(), 2, "{text}");
    // The group is contiguous: its header, then both samples.
    let header = text.find("# TYPE demo_level gauge").unwrap_or_default();
    let block = &text[header..];
    let lines: Vec<&str> = block.lines().skip(1).take(2).collect();
    assert!(lines.iter().all(|l| l.starts_with("demo_level{")), "{text}");
}

#[test]
fn a_derived_gauge_named_like_a_received_counter_is_left_out() {
    // Without suffixes a counter keeps its name: `demo_level`.
    let e = PrometheusExporter::new(
        PrometheusExporterConfig {
            add_metric_suffixes: false,
            ..Default::default()
        },
        Arc::new(Telemetry::new()),
    );
    let counter = MetricsBatch::from_request(MetricsRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "api")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope()),
                metrics: vec![super::tests::sum(
                    "demo.level",
                    2,
                    true,
                    vec![super::tests::number(1, 2, 3.0)],
                )],
                ..Default::default()
            }],
            ..Default::default()
        }],
    });
    e.consume_metrics(&counter).expect("consumed");
    let _source = attach_demo(&e, &["/a"]);
    let text = e.render(Format::Text);
    assert!(text.contains("# TYPE demo_level counter"), "{text}");
    assert_eq!(text.matches("# TYPE demo_level ").count(), 1, "{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("demo_level{") && l.contains("route")),
        "{text}"
    );
    // The other derived family is still written.
    assert!(text.contains("# TYPE demo_eta gauge"), "{text}");
}

#[test]
fn derived_series_are_listed_but_have_no_history() {
    use crate::pipeline::query::{HistoryError, SeriesMatcher, SeriesQuery};
    let e = exporter();
    let _source = attach_demo(&e, &["/a", "/b"]);
    let matcher = |s: &str| SeriesMatcher::parse(s).expect("a selector");
    let page = e.find_series(&matcher(r#"demo_eta_seconds{horizon="1h"}"#), 10);
    assert!(!page.truncated);
    let routes: Vec<&str> = page
        .series
        .iter()
        .map(|s| s.labels.get("route").map_or("", String::as_str))
        .collect();
    assert_eq!(routes, ["/a", "/b"]);
    assert!(page.series.iter().all(|s| s.kind == "gauge"
        && s.name == "demo_eta_seconds"
        && s.labels.get("job").map(String::as_str) == Some("api")));
    // The limit covers derived series too.
    let page = e.find_series(&matcher("demo_.*"), 3);
    assert!(page.truncated);
    assert_eq!(page.series.len(), 3);
    let history = e.series_history("demo_level", &[("route".into(), "/a".into())]);
    assert!(
        matches!(history, Err(HistoryError::Derived(ref name)) if name == "demo_level"),
        "{history:?}"
    );
}
