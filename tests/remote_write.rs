//! The remote-write exporter against a real Prometheus (Debian's 2.42)
//! started with `--web.enable-remote-write-receiver`: series sent by the
//! Rust OTel SDK, span metrics and StreamGate's own series arrive with
//! their translated names, `collector_instance` and the external labels;
//! samples queued while the receiver was down arrive with their original
//! timestamps once it is up; a receiver that refuses the protocol (404)
//! makes requests fail for good, counted, without retries; two replicas
//! writing the same series into one Prometheus never collide; a series
//! that expires is ended at once with a staleness marker.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::prometheus::{Prometheus, sample_value};
use common::{Collector, Options, find_peer, free_port};
use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use serde_json::Value;

const RECEIVER_FLAG: &str = "--web.enable-remote-write-receiver";

/// A Prometheus that only receives (no scrape jobs), on `addr` if given.
fn receiving_prometheus(binary: &std::path::Path, addr: Option<&str>) -> Prometheus {
    Prometheus::start_with(
        binary,
        "global:\n  evaluation_interval: 1s\n",
        &[RECEIVER_FLAG],
        addr,
    )
}

fn collector_writing_to(write_url: &str, extra: &str) -> Collector {
    replica_writing_to("replica-a", write_url, extra)
}

fn replica_writing_to(name: &str, write_url: &str, extra: &str) -> Collector {
    Collector::start_with(Options {
        top_extra: format!("collector_instance: {name}"),
        exporters_extra: format!(
            "remote_write:\n  url: {write_url}\n  interval: 1s\n  min_backoff: 50ms\n  max_backoff: 500ms\n  external_labels:\n    cluster: test-eu\n{extra}"
        ),
        ..Default::default()
    })
}

/// Exports, over OTLP/HTTP, a counter `checkout.orders` = 7 and a
/// histogram `checkout.duration` (s) of 0.2 and 3.0 from service `shop`.
fn send_shop_metrics(c: &Collector) -> SdkMeterProvider {
    send_orders(c, 7)
}

/// [`send_shop_metrics`] with `orders` orders.
fn send_orders(c: &Collector, orders: u64) -> SdkMeterProvider {
    let provider =
        common::sdk::http_meter_provider(c, Resource::builder().with_service_name("shop").build());
    let meter = provider.meter("shop.checkout");
    meter
        .u64_counter("checkout.orders")
        .build()
        .add(orders, &[KeyValue::new("payment", "card")]);
    let histogram = meter
        .f64_histogram("checkout.duration")
        .with_unit("s")
        .with_boundaries(vec![0.5, 1.0, 5.0])
        .build();
    histogram.record(0.2, &[]);
    histogram.record(3.0, &[]);
    provider.force_flush().expect("SDK export");
    provider
}

/// Polls an instant query until `check` accepts it.
fn query_until(
    p: &Prometheus,
    c: &Collector,
    promql: &str,
    check: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let result = p.query(promql);
        if check(&result) {
            return result;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out waiting for `{promql}`; last result: {result:?}\n--- streamgate ---\n{}\n--- prometheus ---\n{}",
                c.logs(),
                p.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn one_value(want: f64) -> impl Fn(&[Value]) -> bool {
    move |r: &[Value]| r.len() == 1 && sample_value(&r[0]) == want
}

fn delivered(c: &Collector, family: &str) -> f64 {
    c.scrape()
        .matching(
            family,
            &[("exporter", "remote_write"), ("signal", "metrics")],
        )
        .iter()
        .map(|(_, v)| v)
        .sum()
}

#[test]
fn prometheus_receives_translated_enriched_and_own_series() {
    let Some(binary) = find_peer("prometheus") else {
        return;
    };
    let p = receiving_prometheus(&binary, None);
    let c = collector_writing_to(&p.url("/api/v1/write"), "");
    let _provider = send_shop_metrics(&c);

    // The SDK's counter, translated, with the sender's job and ours.
    let orders = query_until(
        &p,
        &c,
        r#"checkout_orders_total{job="shop",payment="card"}"#,
        one_value(7.0),
    );
    let labels = &orders[0]["metric"];
    assert_eq!(labels["collector_instance"], "replica-a", "{labels}");
    assert_eq!(labels["cluster"], "test-eu", "{labels}");

    // The histogram as classic buckets, cumulative.
    let buckets = query_until(
        &p,
        &c,
        r#"checkout_duration_seconds_bucket{job="shop"}"#,
        |r| r.len() == 4,
    );
    let by_le: std::collections::BTreeMap<String, f64> = buckets
        .iter()
        .map(|r| {
            (
                r["metric"]["le"].as_str().unwrap_or_default().to_string(),
                sample_value(r),
            )
        })
        .collect();
    assert_eq!(by_le["0.5"], 1.0);
    assert_eq!(by_le["1"], 1.0);
    assert_eq!(by_le["5"], 2.0);
    assert_eq!(by_le["+Inf"], 2.0);
    query_until(
        &p,
        &c,
        r#"checkout_duration_seconds_sum{job="shop"}"#,
        one_value(3.2),
    );

    // target_info and StreamGate's own series come along.
    query_until(
        &p,
        &c,
        r#"target_info{job="shop",collector_instance="replica-a"}"#,
        one_value(1.0),
    );
    let accepted = query_until(
        &p,
        &c,
        r#"sum(streamgate_receiver_accepted_items_total{signal="metrics",collector_instance="replica-a",cluster="test-eu"})"#,
        |r| r.len() == 1 && sample_value(&r[0]) >= 2.0,
    );
    assert!(sample_value(&accepted[0]) >= 2.0);

    // Every sample the exporter sent was accepted; /metrics carries the
    // same collector_instance label.
    assert!(delivered(&c, "streamgate_exporter_sent_items_total") > 0.0);
    assert_eq!(delivered(&c, "streamgate_exporter_failed_items_total"), 0.0);
    assert_eq!(
        delivered(&c, "streamgate_exporter_dropped_items_total"),
        0.0
    );
    let scrape = c.scrape();
    assert_eq!(
        scrape
            .matching(
                "checkout_orders_total",
                &[
                    ("job", "shop"),
                    ("payment", "card"),
                    ("collector_instance", "replica-a")
                ]
            )
            .len(),
        1,
        "collector_instance on /metrics:\n{}",
        scrape.text
    );
    assert!(!p.logs().contains("level=error"), "{}", p.logs());
}

#[test]
fn samples_queued_during_an_outage_arrive_with_their_timestamps() {
    let Some(binary) = find_peer("prometheus") else {
        return;
    };
    let addr = format!("127.0.0.1:{}", free_port());
    let c = collector_writing_to(&format!("http://{addr}/api/v1/write"), "");
    let _provider = send_shop_metrics(&c);

    // Nothing listens: requests are retried and the queue fills.
    let outage_started_ms = now_ms();
    let deadline = Instant::now() + Duration::from_secs(20);
    while delivered(&c, "streamgate_exporter_retried_requests_total") < 3.0
        || delivered(&c, "streamgate_exporter_queue_items") == 0.0
    {
        assert!(Instant::now() < deadline, "no retries: {}", c.scrape().text);
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(delivered(&c, "streamgate_exporter_sent_items_total"), 0.0);
    // The status says the export is failing before anything is lost.
    let (status, reasons) = health(&c);
    assert_eq!(status, "degraded", "{reasons}");
    assert!(
        reasons.contains("export: 0 items lost") && reasons.contains("requests retried"),
        "{reasons}"
    );

    let p = receiving_prometheus(&binary, Some(&addr));
    let receiver_up_ms = now_ms();
    query_until(
        &p,
        &c,
        r#"checkout_orders_total{job="shop"}"#,
        one_value(7.0),
    );

    // The raw samples of the last minute include ones stamped during the
    // outage, before the receiver existed.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let raw = p.query(r#"checkout_orders_total{job="shop"}[1m]"#);
        let stamps: Vec<f64> = raw
            .first()
            .and_then(|s| s["values"].as_array())
            .map(|v| v.iter().filter_map(|p| p[0].as_f64()).collect())
            .unwrap_or_default();
        let earliest_ms = stamps.iter().cloned().fold(f64::INFINITY, f64::min) * 1000.0;
        if earliest_ms < receiver_up_ms as f64 {
            assert!(
                earliest_ms >= outage_started_ms as f64 - 5000.0,
                "earliest {earliest_ms} vs outage {outage_started_ms}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no sample from before the receiver came up: {stamps:?} (up at {receiver_up_ms})"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(delivered(&c, "streamgate_exporter_failed_items_total"), 0.0);
    assert_eq!(
        delivered(&c, "streamgate_exporter_dropped_items_total"),
        0.0
    );
}

#[test]
fn a_series_that_expires_is_marked_stale_at_once() {
    let Some(binary) = find_peer("prometheus") else {
        return;
    };
    let p = receiving_prometheus(&binary, None);
    let c = Collector::start_with(Options {
        top_extra: "collector_instance: replica-a".into(),
        exporter_extra: "series_ttl: 3s".into(),
        exporters_extra: format!(
            "remote_write:\n  url: {}\n  interval: 1s\n  min_backoff: 50ms\n  max_backoff: 500ms",
            p.url("/api/v1/write")
        ),
        ..Default::default()
    });
    let _provider = send_shop_metrics(&c);
    query_until(
        &p,
        &c,
        r#"checkout_orders_total{job="shop"}"#,
        one_value(7.0),
    );
    let sent_at = Instant::now();

    // Nothing more is sent: three seconds on, the series leaves the
    // store, and the next collection ends it in Prometheus with a
    // staleness marker, where without one it would still answer instant
    // queries for five minutes (the lookback).
    query_until(&p, &c, r#"checkout_orders_total{job="shop"}"#, |r| {
        r.is_empty()
    });
    assert!(
        sent_at.elapsed() < Duration::from_secs(60),
        "ended after {:?}",
        sent_at.elapsed()
    );
    // Ended, not deleted: its samples are still there, and the
    // collector's own series, still written, still answer.
    let raw = p.query(r#"checkout_orders_total{job="shop"}[5m]"#);
    assert_eq!(raw.len(), 1, "{raw:?}");
    query_until(
        &p,
        &c,
        r#"streamgate_receiver_accepted_items_total{signal="metrics",transport="http"}"#,
        |r| !r.is_empty(),
    );
    assert_eq!(delivered(&c, "streamgate_exporter_failed_items_total"), 0.0);
    assert!(!p.logs().contains("level=error"), "{}", p.logs());
}

#[test]
fn a_receiver_refusing_the_protocol_fails_requests_without_retrying() {
    let Some(binary) = find_peer("prometheus") else {
        return;
    };
    // Without the receiver flag Prometheus answers the write path 404.
    let p = Prometheus::start_with(&binary, "global:\n  evaluation_interval: 1s\n", &[], None);
    let c = collector_writing_to(&p.url("/api/v1/write"), "");
    let deadline = Instant::now() + Duration::from_secs(20);
    while delivered(&c, "streamgate_exporter_failed_items_total") == 0.0 {
        assert!(
            Instant::now() < deadline,
            "nothing failed: {}",
            c.scrape().text
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        delivered(&c, "streamgate_exporter_retried_requests_total"),
        0.0
    );
    assert_eq!(delivered(&c, "streamgate_exporter_sent_items_total"), 0.0);
    let logs = c.logs();
    assert!(
        logs.contains("push failed") && logs.contains("404"),
        "the refusal is logged with the status: {logs}"
    );
    let (status, reasons) = health(&c);
    assert_eq!(status, "degraded", "{reasons}");
    assert!(reasons.contains("items lost"), "{reasons}");
}

/// A queue that overflows while the receiver is down drops its oldest
/// requests: counted, logged (once a minute, with the items) and shown
/// in `/api/v1/status`, never silent. 50,000 series written every second
/// fill the 1 MiB queue within a few collections.
#[test]
fn an_overflowing_queue_says_what_it_dropped() {
    let addr = format!("127.0.0.1:{}", free_port());
    let c = collector_writing_to(
        &format!("http://{addr}/api/v1/write"),
        "  queue_size: 1MiB\n",
    );
    common::loadgen(&[
        "--endpoint",
        &format!("http://{}", c.grpc),
        "--series",
        "50000",
        "--batch",
        "1000",
        "--duration",
        "2s",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while delivered(&c, "streamgate_exporter_dropped_items_total") == 0.0 {
        assert!(
            Instant::now() < deadline,
            "nothing dropped: {}",
            c.scrape().text
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let logs = c.logs();
    assert!(
        logs.contains("export queue full") && logs.contains("\"items\":"),
        "the drop is logged: {logs}"
    );
    let (status, reasons) = health(&c);
    assert_eq!(status, "degraded", "{reasons}");
    assert!(reasons.contains("items lost"), "{reasons}");
    assert!(!reasons.contains("export: 0 items lost"), "{reasons}");
}

/// Two replicas write into one Prometheus: the same series held by both
/// (as during a re-shard) and each replica's own series arrive as
/// separate series told apart by `collector_instance`, none refused, and
/// summing over the replicas gives the total.
#[test]
fn replicas_write_one_prometheus_without_colliding() {
    let Some(binary) = find_peer("prometheus") else {
        return;
    };
    let p = receiving_prometheus(&binary, None);
    let url = p.url("/api/v1/write");
    let a = replica_writing_to("replica-a", &url, "");
    let b = replica_writing_to("replica-b", &url, "");
    let _pa = send_orders(&a, 7);
    let _pb = send_orders(&b, 5);

    let both = query_until(&p, &a, r#"checkout_orders_total{job="shop"}"#, |r| {
        r.len() == 2
    });
    let mut replicas: Vec<&str> = both
        .iter()
        .filter_map(|r| r["metric"]["collector_instance"].as_str())
        .collect();
    replicas.sort();
    assert_eq!(replicas, vec!["replica-a", "replica-b"]);
    query_until(
        &p,
        &a,
        r#"sum without (collector_instance) (checkout_orders_total{job="shop"})"#,
        one_value(12.0),
    );
    // Each replica's own series too, every sample accepted.
    query_until(&p, &a, "count(streamgate_uptime_seconds)", one_value(2.0));
    std::thread::sleep(Duration::from_secs(2));
    for c in [&a, &b] {
        assert!(delivered(c, "streamgate_exporter_sent_items_total") > 0.0);
        assert_eq!(
            delivered(c, "streamgate_exporter_failed_items_total"),
            0.0,
            "{}",
            c.logs()
        );
    }
}

/// `/api/v1/status`'s health: its status and reasons joined.
fn health(c: &Collector) -> (String, String) {
    let body = common::http_client()
        .get(c.url("/api/v1/status"))
        .send()
        .and_then(|r| r.text())
        .expect("GET /api/v1/status");
    let status: Value = serde_json::from_str(&body).expect("status JSON");
    let health = &status["health"];
    let reasons = health["reasons"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    (health["status"].as_str().unwrap_or("").to_string(), reasons)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}
