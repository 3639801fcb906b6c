//! Tests of a family split into shards: a series lives in one shard
//! whichever source gives its `job` and `instance`, the per-metric limit
//! counts the whole family (also when two threads write at once), and
//! points beyond it from every shard fold into one overflow series.

use std::sync::Arc;

use super::tests::{CUMULATIVE, DELTA, kv, number, sum};
use super::*;
use crate::model::otlp::common::InstrumentationScope;
use crate::model::otlp::metrics::{Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics};
use crate::model::otlp::resource::Resource;
use crate::model::{MetricsBatch, MetricsRequest};
use store::{Family, route_hash};

/// One resource per entry: `service.name` "svc", the instance id if any.
fn request(resources: Vec<(Option<&str>, Vec<Metric>)>) -> MetricsBatch {
    let resource_metrics = resources
        .into_iter()
        .map(|(instance, metrics)| {
            let mut attributes = vec![kv("service.name", "svc")];
            attributes.extend(instance.map(|i| kv("service.instance.id", i)));
            ResourceMetrics {
                resource: Some(Resource {
                    attributes,
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: "s".into(),
                        ..Default::default()
                    }),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }
        })
        .collect();
    MetricsBatch::from_request(MetricsRequest { resource_metrics })
}

fn point(time: u64, value: f64, attributes: &[(&str, &str)]) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attributes.iter().map(|(k, v)| kv(k, v)).collect(),
        ..number(1, time, value)
    }
}

fn counter(points: Vec<NumberDataPoint>) -> Metric {
    sum("hits", CUMULATIVE, true, points)
}

/// A delta counter: beyond a limit, every point folds in (a cumulative
/// one needs a bounded record of its series' last value).
fn delta_counter(points: Vec<NumberDataPoint>) -> Metric {
    sum("hits", DELTA, true, points)
}

fn exporter(per_metric: usize) -> Arc<PrometheusExporter> {
    Arc::new(PrometheusExporter::new(
        PrometheusExporterConfig {
            max_series_per_metric: per_metric,
            target_info: false,
            ..Default::default()
        },
        Arc::new(crate::telemetry::Telemetry::new()),
    ))
}

/// The `hits_total` samples: (label block, value).
fn samples(e: &PrometheusExporter) -> Vec<(String, f64)> {
    e.render(Format::Text)
        .lines()
        .filter_map(|l| l.strip_prefix("hits_total{"))
        .filter_map(|l| {
            let (labels, value) = l.rsplit_once("} ")?;
            Some((labels.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn shard_of(job: &str, instance: &str) -> usize {
    Family::shard_index(route_hash(job, instance))
}

#[test]
fn a_series_is_one_series_whichever_source_names_its_instance() {
    // An instance whose shard is not that of the service without one, so
    // the point that names it in an attribute must leave its scope's shard.
    let instance = (0..64)
        .map(|i| format!("i-{i}"))
        .find(|i| shard_of("svc", i) != shard_of("svc", ""))
        .expect("an instance in another shard");
    let e = exporter(usize::MAX);
    let by_attribute = |time, value| {
        request(vec![(
            None,
            vec![counter(vec![
                point(time, value, &[("instance", &instance), ("path", "/a")]),
                point(time, value * 10.0, &[("path", "/b")]),
            ])],
        )])
    };
    let by_resource = |time, value| {
        request(vec![(
            Some(instance.as_str()),
            vec![counter(vec![point(time, value, &[("path", "/a")])])],
        )])
    };
    e.consume_metrics(&by_attribute(2, 1.0)).unwrap();
    e.consume_metrics(&by_resource(3, 2.0)).unwrap();
    let a = format!(r#"instance="{instance}",job="svc",otel_scope_name="s",path="/a""#);
    let b = r#"job="svc",otel_scope_name="s",path="/b""#.to_string();
    let mut seen = samples(&e);
    seen.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(seen, vec![(a.clone(), 2.0), (b.clone(), 10.0)]);
    // Back through the attribute: the same series again, in its shard.
    e.consume_metrics(&by_attribute(4, 3.0)).unwrap();
    let mut seen = samples(&e);
    seen.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(seen, vec![(a, 3.0), (b, 30.0)]);
    let family = e.store().family("hits_total").expect("family");
    assert_eq!(family.series_count(), 2);
    assert_eq!(
        family.shard(shard_of("svc", &instance)).lock().len(),
        1,
        "the series named by instance lives in that instance's shard"
    );
}

#[test]
fn the_per_metric_limit_counts_every_shard_and_one_overflow_series_takes_the_rest() {
    let instances: Vec<String> = (0..16).map(|i| format!("pod-{i}")).collect();
    let shards: std::collections::HashSet<usize> =
        instances.iter().map(|i| shard_of("svc", i)).collect();
    assert!(shards.len() > 2, "the instances spread over shards");
    let e = exporter(5);
    // Each instance's delta counter: `value(n)` from instance n.
    let send = |time: u64, value: &dyn Fn(usize) -> f64| {
        let resources = instances
            .iter()
            .enumerate()
            .map(|(n, i)| {
                let points = vec![point(time, value(n), &[])];
                (Some(i.as_str()), vec![delta_counter(points)])
            })
            .collect();
        let consumed = e.consume_metrics(&request(resources)).expect("consumed");
        assert_eq!(consumed.rejected, 0);
    };
    let split = || {
        let seen = samples(&e);
        let (overflow, stored): (Vec<_>, Vec<_>) = seen
            .into_iter()
            .partition(|(l, _)| l.contains("otel_metric_overflow"));
        let values = |v: Vec<(String, f64)>| v.into_iter().map(|(_, v)| v).collect::<Vec<_>>();
        (values(stored), values(overflow))
    };
    send(2, &|n| 100.0 + n as f64);
    let (stored, overflow) = split();
    assert_eq!(stored.len(), 5, "{stored:?}");
    assert_eq!(overflow.len(), 1, "one overflow series: {overflow:?}");
    let total: f64 = (0..16).map(|n| 100.0 + n as f64).sum();
    assert_eq!(stored.iter().sum::<f64>() + overflow[0], total);
    // Every counter grows by 1: the overflow series by its 11 series' 1s.
    send(3, &|_| 1.0);
    let (again, overflow_again) = split();
    assert_eq!(again.iter().sum::<f64>(), stored.iter().sum::<f64>() + 5.0);
    assert_eq!(overflow_again, vec![overflow[0] + 11.0]);
    let family = e.store().family("hits_total").expect("family");
    assert_eq!(family.series_count(), 6);
}

#[test]
fn two_writers_at_once_stop_at_the_per_metric_limit() {
    const LIMIT: usize = 40;
    let e = exporter(LIMIT);
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let e = Arc::clone(&e);
            std::thread::spawn(move || {
                for round in 0..25u64 {
                    let names: Vec<String> = (0..4).map(|i| format!("w{w}-r{round}-{i}")).collect();
                    let resources = names
                        .iter()
                        .map(|i| {
                            (
                                Some(i.as_str()),
                                vec![delta_counter(vec![point(2, 1.0, &[])])],
                            )
                        })
                        .collect();
                    e.consume_metrics(&request(resources)).expect("consumed");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    let seen = samples(&e);
    let (overflow, stored): (Vec<_>, Vec<_>) = seen
        .iter()
        .partition(|(l, _)| l.contains("otel_metric_overflow"));
    assert_eq!(stored.len(), LIMIT, "{} stored", stored.len());
    // 200 counters of 1: the stored ones and the overflow series add up.
    assert_eq!(overflow.len(), 1);
    let folded = overflow[0].1;
    assert_eq!(stored.len() as f64 + folded, 200.0);
    let family = e.store().family("hits_total").expect("family");
    assert_eq!(
        family.series_count(),
        LIMIT + 1,
        "the stored and the overflow series"
    );
}
