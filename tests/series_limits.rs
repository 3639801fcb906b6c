//! Black-box tests of the exporter's series limits: series beyond
//! `max_series_per_metric` or `max_series` fold into their metric's
//! `otel_metric_overflow="true"` series (cumulative counters by their
//! increases, gauges by their latest point), counted in
//! `streamgate_exporter_prometheus_overflow_points_total`, and the
//! exposition stays valid for `promtool check metrics`.

mod common;

use common::{Collector, Options, find_peer, http_client, promtool_check};
use prost::Message;
use streamgate::model::otlp::MetricsRequest;
use streamgate::model::otlp::common::{AnyValue, KeyValue, any_value};
use streamgate::model::otlp::metrics::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric::Data,
    number_data_point,
};
use streamgate::model::otlp::resource::Resource;

const T0: u64 = 1_700_000_000_000_000_000;

fn attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// One point per `(series label value, value)`.
fn points(values: &[(&str, f64)], time: u64) -> Vec<NumberDataPoint> {
    values
        .iter()
        .map(|(series, v)| NumberDataPoint {
            attributes: vec![attr("route", series)],
            start_time_unix_nano: T0 - 60_000_000_000,
            time_unix_nano: time,
            value: Some(number_data_point::Value::AsDouble(*v)),
            ..Default::default()
        })
        .collect()
}

fn counter(name: &str, values: &[(&str, f64)], time: u64) -> Metric {
    Metric {
        name: name.into(),
        description: "requests served".into(),
        data: Some(Data::Sum(Sum {
            aggregation_temporality: 2,
            is_monotonic: true,
            data_points: points(values, time),
        })),
        ..Default::default()
    }
}

fn gauge(name: &str, values: &[(&str, f64)], time: u64) -> Metric {
    Metric {
        name: name.into(),
        description: "a level".into(),
        data: Some(Data::Gauge(Gauge {
            data_points: points(values, time),
        })),
        ..Default::default()
    }
}

fn send(collector: &Collector, metrics: Vec<Metric>) {
    let request = MetricsRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![attr("service.name", "limits")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let response = http_client()
        .post(collector.otlp_http_url("/v1/metrics"))
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .expect("POST /v1/metrics");
    assert_eq!(response.status().as_u16(), 200);
}

const OVERFLOW: (&str, &str) = ("otel_metric_overflow", "true");

#[test]
fn series_beyond_the_per_metric_limit_fold_into_the_overflow_series() {
    let collector = Collector::start_with(Options {
        exporter_extra: "max_series_per_metric: 2".into(),
        ..Default::default()
    });
    send(
        &collector,
        vec![
            counter(
                "requests",
                &[("a", 10.0), ("b", 20.0), ("c", 30.0), ("d", 40.0)],
                T0,
            ),
            gauge("temperature", &[("a", 1.0), ("b", 2.0), ("c", 3.0)], T0),
        ],
    );
    let s = collector.scrape();
    let job = ("job", "limits");
    assert_eq!(s.get("requests_total", &[job, ("route", "a")]), Some(10.0));
    assert_eq!(s.get("requests_total", &[job, ("route", "b")]), Some(20.0));
    assert!(s.matching("requests_total", &[("route", "c")]).is_empty());
    assert_eq!(s.get("requests_total", &[OVERFLOW]), Some(70.0));
    assert_eq!(s.get("temperature", &[OVERFLOW]), Some(3.0));

    // The overflowed counters grow by 5 and 1 and a stored one by 1: the
    // overflow series adds the increases, not the totals again.
    send(
        &collector,
        vec![
            counter(
                "requests",
                &[("a", 11.0), ("c", 35.0), ("d", 41.0)],
                T0 + 10_000_000_000,
            ),
            gauge("temperature", &[("c", 7.0)], T0 + 10_000_000_000),
        ],
    );
    let s = collector.scrape();
    assert_eq!(s.get("requests_total", &[job, ("route", "a")]), Some(11.0));
    assert_eq!(s.get("requests_total", &[OVERFLOW]), Some(76.0));
    assert_eq!(s.get("temperature", &[OVERFLOW]), Some(7.0));
    assert_eq!(
        s.get("streamgate_exporter_prometheus_overflow_points_total", &[]),
        Some(2.0 + 1.0 + 2.0 + 1.0)
    );
    if let Some(promtool) = find_peer("promtool") {
        let (ok, report) = promtool_check(&promtool, &collector.scrape_text());
        assert!(ok, "{report}");
    }
}

#[test]
fn the_global_limit_applies_across_metrics() {
    let collector = Collector::start_with(Options {
        exporter_extra: "max_series: 3\ntarget_info: false".into(),
        ..Default::default()
    });
    send(
        &collector,
        vec![
            gauge("first", &[("a", 1.0), ("b", 2.0)], T0),
            gauge("second", &[("a", 3.0), ("b", 4.0)], T0),
        ],
    );
    let s = collector.scrape();
    let job = ("job", "limits");
    assert_eq!(s.get("first", &[job, ("route", "a")]), Some(1.0));
    assert_eq!(s.get("first", &[job, ("route", "b")]), Some(2.0));
    assert_eq!(s.get("second", &[job, ("route", "a")]), Some(3.0));
    assert!(s.matching("second", &[("route", "b")]).is_empty());
    assert_eq!(s.get("second", &[OVERFLOW]), Some(4.0));
    assert_eq!(
        s.get("streamgate_exporter_prometheus_overflow_points_total", &[]),
        Some(1.0)
    );
}
