//! Black-box tests against real Prometheus tools: `promtool check metrics`
//! lints a scrape, and a real `prometheus` server scrapes the collector's
//! admin address and must store the series sent to it as OTLP/JSON with the
//! translated names, labels and values, negotiating OpenMetrics as
//! Prometheus 2.x does by default.
//!
//! The tools come from Debian's `prometheus` package (`scripts/test`
//! installs it). Without them the tests skip, or fail when
//! `STREAMGATE_REQUIRE_PEERS=1`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::prometheus::{Prometheus, sample_value};
use common::{Collector, find_peer, http_client};
use serde_json::{Value, json};

/// Now as Unix nanoseconds.
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64
}

fn string_attr(key: &str, value: &str) -> Value {
    json!({ "key": key, "value": { "stringValue": value } })
}

/// An OTLP/JSON `ExportMetricsServiceRequest`, written by hand as the
/// OTLP/JSON encoding specifies: lowerCamelCase field names, 64-bit
/// integers as decimal strings, enums as integers.
///
/// Resource `service.name=inventory`, `service.instance.id=inv-7`, scope
/// `inventory.stock` 0.4.0, and:
/// - `inventory.reservations` `{reservation}`: monotonic cumulative sum
///   (`asInt` = `reservations`) with attributes `warehouse.code=ber-1`,
///   `priority=2` (an int);
/// - `inventory.fill` `1`: gauge 0.5;
/// - `inventory.stock.level` `{item}`: non-monotonic sum -3;
/// - `inventory.pick.duration` `s`: cumulative histogram, bounds
///   [0.25, 1, 2.5], bucket counts [1, 2, 0, 1], sum 5.5.
fn inventory_request(start_ns: u64, time_ns: u64, reservations: i64) -> Value {
    let start = start_ns.to_string();
    let time = time_ns.to_string();
    json!({
        "resourceMetrics": [{
            "resource": {
                "attributes": [
                    string_attr("service.name", "inventory"),
                    string_attr("service.instance.id", "inv-7"),
                    string_attr("host.name", "rack-3")
                ]
            },
            "scopeMetrics": [{
                "scope": { "name": "inventory.stock", "version": "0.4.0" },
                "metrics": [
                    {
                        "name": "inventory.reservations",
                        "unit": "{reservation}",
                        "description": "Stock reservations made.",
                        "sum": {
                            "aggregationTemporality": 2,
                            "isMonotonic": true,
                            "dataPoints": [{
                                "attributes": [
                                    string_attr("warehouse.code", "ber-1"),
                                    { "key": "priority", "value": { "intValue": "2" } }
                                ],
                                "startTimeUnixNano": start,
                                "timeUnixNano": time,
                                "asInt": reservations.to_string()
                            }]
                        }
                    },
                    {
                        "name": "inventory.fill",
                        "unit": "1",
                        "description": "Share of shelf space in use.",
                        "gauge": {
                            "dataPoints": [{
                                "attributes": [string_attr("warehouse.code", "ber-1")],
                                "timeUnixNano": time,
                                "asDouble": 0.5
                            }]
                        }
                    },
                    {
                        "name": "inventory.stock.level",
                        "unit": "{item}",
                        "description": "Items in stock, negative when oversold.",
                        "sum": {
                            "aggregationTemporality": 2,
                            "isMonotonic": false,
                            "dataPoints": [{
                                "attributes": [string_attr("warehouse.code", "ber-1")],
                                "startTimeUnixNano": start,
                                "timeUnixNano": time,
                                "asInt": "-3"
                            }]
                        }
                    },
                    {
                        "name": "inventory.pick.duration",
                        "unit": "s",
                        "description": "Time to pick an order.",
                        "histogram": {
                            "aggregationTemporality": 2,
                            "dataPoints": [{
                                "attributes": [string_attr("warehouse.code", "ber-1")],
                                "startTimeUnixNano": start,
                                "timeUnixNano": time,
                                "count": "4",
                                "sum": 5.5,
                                "bucketCounts": ["1", "2", "0", "1"],
                                "explicitBounds": [0.25, 1.0, 2.5]
                            }]
                        }
                    }
                ]
            }]
        }]
    })
}

/// POSTs an OTLP/JSON metrics request; requires a full success answer.
fn post_json(collector: &Collector, body: &Value) {
    let response = http_client()
        .post(collector.otlp_http_url("/v1/metrics"))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .expect("POST /v1/metrics");
    let status = response.status();
    let text = response.text().unwrap_or_default();
    assert_eq!(status.as_u16(), 200, "OTLP/JSON export answered: {text}");
    let answer: Value = serde_json::from_str(&text).expect("JSON answer");
    assert!(
        answer.get("partialSuccess").is_none(),
        "nothing rejected: {text}\n{}",
        collector.logs()
    );
}

/// `promtool check metrics` finds no problem in a scrape holding every
/// kind of translated series (all with descriptions) and the
/// `streamgate_*` self-metrics: exit 0 and no lint for any series.
#[test]
fn promtool_check_metrics_finds_no_problems() {
    let Some(promtool) = find_peer("promtool") else {
        return;
    };
    let collector = Collector::start();
    let now = now_ns();
    post_json(
        &collector,
        &inventory_request(now - 60_000_000_000, now, 42),
    );
    let text = collector.scrape_text();
    assert!(
        text.contains("inventory_pick_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains("streamgate_receiver_request_duration_seconds_bucket"),
        "{text}"
    );

    let (success, report) = common::promtool_check(&promtool, &text);
    let self_lints: Vec<&str> = report
        .lines()
        .filter(|l| l.contains("streamgate_"))
        .collect();
    assert!(
        self_lints.is_empty(),
        "promtool lints StreamGate's own series:\n{}",
        self_lints.join("\n")
    );
    assert!(
        success,
        "promtool check metrics failed:\n{report}\n--- scrape ---\n{text}"
    );
    assert_eq!(report.trim(), "", "promtool printed problems");
}

/// Starts `binary` scraping `target` every second in two jobs:
/// `streamgate` with `honor_labels: true` (the setting for a collector,
/// keeping the sender's `job`/`instance`) and `streamgate-plain` without
/// it; a third, `streamgate-subset`, asks for one metric only with
/// `params: {name[]: [...]}`.
fn start_prometheus(binary: &Path, target: &str) -> Prometheus {
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n\
         \x20 - job_name: streamgate\n    honor_labels: true\n    static_configs:\n      - targets: ['{target}']\n\
         \x20 - job_name: streamgate-plain\n    static_configs:\n      - targets: ['{target}']\n\
         \x20 - job_name: streamgate-subset\n    params:\n      'name[]': [inventory_fill_ratio]\n    static_configs:\n      - targets: ['{target}']\n"
    );
    Prometheus::start(binary, &config)
}

impl Prometheus {
    /// Polls `promql` until `check` accepts its result (scrapes start a few
    /// seconds after Prometheus is ready: target discovery is batched).
    fn query_until(&self, promql: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(45);
        loop {
            let result = self.query(promql);
            if check(&result) {
                return result;
            }
            if Instant::now() > deadline {
                let targets = self.api("/api/v1/targets", &[]);
                panic!(
                    "timed out waiting for `{promql}`; last result: {result:?}\ntargets: {targets}\n--- prometheus log ---\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// The label set of a query result, as a JSON object.
fn metric(result: &Value) -> &Value {
    &result["metric"]
}

/// Results whose value equals `want`.
fn has_value(want: f64) -> impl Fn(&[Value]) -> bool {
    move |r: &[Value]| r.len() == 1 && sample_value(&r[0]) == want
}

/// Real Prometheus scrapes the admin address and stores a counter sent as
/// OTLP/JSON under its translated name with exact labels and value (the
/// sender's `job`/`instance` kept with `honor_labels`, moved to
/// `exported_*` without), sees a later cumulative value, stores the other
/// families, and reports `up == 1` for both jobs.
#[test]
fn prometheus_stores_series_sent_as_otlp_json() {
    let Some(binary) = find_peer("prometheus") else {
        return;
    };
    let collector = Collector::start();
    let start = now_ns() - 60_000_000_000;
    post_json(&collector, &inventory_request(start, now_ns(), 42));
    let prometheus = start_prometheus(&binary, &collector.admin.to_string());

    let honored = prometheus.query_until(
        r#"inventory_reservations_total{job="inventory"}"#,
        has_value(42.0),
    );
    assert_eq!(
        metric(&honored[0]),
        &json!({
            "__name__": "inventory_reservations_total",
            "job": "inventory",
            "instance": "inv-7",
            "otel_scope_name": "inventory.stock",
            "otel_scope_version": "0.4.0",
            "priority": "2",
            "warehouse_code": "ber-1"
        })
    );
    let plain = prometheus.query_until(
        r#"inventory_reservations_total{job="streamgate-plain"}"#,
        has_value(42.0),
    );
    assert_eq!(
        metric(&plain[0]),
        &json!({
            "__name__": "inventory_reservations_total",
            "job": "streamgate-plain",
            "instance": collector.admin.to_string(),
            "exported_job": "inventory",
            "exported_instance": "inv-7",
            "otel_scope_name": "inventory.stock",
            "otel_scope_version": "0.4.0",
            "priority": "2",
            "warehouse_code": "ber-1"
        })
    );

    for job in ["streamgate", "streamgate-plain", "streamgate-subset"] {
        prometheus.query_until(&format!(r#"up{{job="{job}"}}"#), has_value(1.0));
    }
    // The subset job got the one metric it asked for, and nothing else.
    prometheus.query_until(
        r#"inventory_fill_ratio{job="streamgate-subset",exported_job="inventory"}"#,
        has_value(0.5),
    );
    prometheus.query_until(
        r#"scrape_samples_scraped{job="streamgate-subset"}"#,
        has_value(1.0),
    );
    assert!(
        prometheus
            .query(r#"{job="streamgate-subset",__name__=~"inventory_stock.*|streamgate_.*|target_info"}"#)
            .is_empty()
    );

    // The other families, as stored by Prometheus.
    let ber = r#"job="inventory",instance="inv-7",warehouse_code="ber-1""#;
    let expected = [
        (format!("inventory_fill_ratio{{{ber}}}"), 0.5),
        (format!("inventory_stock_level{{{ber}}}"), -3.0),
        (
            format!(r#"inventory_pick_duration_seconds_bucket{{{ber},le="0.25"}}"#),
            1.0,
        ),
        (
            format!(r#"inventory_pick_duration_seconds_bucket{{{ber},le="1"}}"#),
            3.0,
        ),
        (
            format!(r#"inventory_pick_duration_seconds_bucket{{{ber},le="2.5"}}"#),
            3.0,
        ),
        (
            format!(r#"inventory_pick_duration_seconds_bucket{{{ber},le="+Inf"}}"#),
            4.0,
        ),
        (format!("inventory_pick_duration_seconds_sum{{{ber}}}"), 5.5),
        (
            format!("inventory_pick_duration_seconds_count{{{ber}}}"),
            4.0,
        ),
        (
            r#"target_info{job="inventory",instance="inv-7",host_name="rack-3"}"#.to_string(),
            1.0,
        ),
        (
            r#"streamgate_build_info{job="streamgate"}"#.to_string(),
            1.0,
        ),
    ];
    for (promql, want) in &expected {
        prometheus.query_until(promql, has_value(*want));
    }
    // A quantile Prometheus computes from the translated buckets: the
    // median (2nd of 4) falls in (0.25, 1], halfway through its 2 counts.
    prometheus.query_until(
        &format!("histogram_quantile(0.5, inventory_pick_duration_seconds_bucket{{{ber}}})"),
        has_value(0.625),
    );

    // A later cumulative point replaces the value Prometheus scrapes.
    post_json(&collector, &inventory_request(start, now_ns(), 50));
    prometheus.query_until(
        r#"inventory_reservations_total{job="inventory"}"#,
        has_value(50.0),
    );

    let targets = prometheus.api("/api/v1/targets", &[]);
    for target in targets["activeTargets"].as_array().expect("active targets") {
        assert_eq!(target["health"], "up", "{target}");
        assert_eq!(target["lastError"], "", "{target}");
    }
}

/// Prometheus 2.x asks for OpenMetrics first; the collector answers in
/// OpenMetrics and Prometheus parses it: the series is found, the
/// counter's `_created` sample (OpenMetrics only) holds the point's start
/// time, and the metadata carries the OpenMetrics family name, help and
/// unit.
#[test]
fn prometheus_scrapes_openmetrics() {
    let Some(binary) = find_peer("prometheus") else {
        return;
    };
    let collector = Collector::start();

    // What Prometheus 2.42 sends, answered directly.
    let accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let response = http_client()
        .get(collector.url("/metrics"))
        .header("Accept", accept)
        .send()
        .expect("scrape");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text; version=1.0.0"),
        "content type {content_type}"
    );
    assert!(response.text().expect("body").ends_with("# EOF\n"));

    let start = now_ns() - 60_000_000_000;
    post_json(&collector, &inventory_request(start, now_ns(), 42));
    let prometheus = start_prometheus(&binary, &collector.admin.to_string());

    prometheus.query_until(
        r#"inventory_reservations_total{job="inventory",instance="inv-7"}"#,
        has_value(42.0),
    );
    let created = prometheus.query_until(
        r#"inventory_reservations_created{job="inventory",instance="inv-7"}"#,
        |r| r.len() == 1,
    );
    let start_secs = start as f64 / 1e9;
    assert!(
        (sample_value(&created[0]) - start_secs).abs() < 1e-3,
        "_created {} vs start {start_secs}",
        sample_value(&created[0])
    );

    let metadata = prometheus.api("/api/v1/metadata", &[]);
    assert_eq!(
        metadata["inventory_reservations"],
        json!([{ "type": "counter", "help": "Stock reservations made.", "unit": "" }]),
        "{metadata}"
    );
    assert_eq!(
        metadata["inventory_pick_duration_seconds"],
        json!([{ "type": "histogram", "help": "Time to pick an order.", "unit": "seconds" }]),
        "{metadata}"
    );
    assert_eq!(
        metadata["streamgate_receiver_accepted_items"][0]["type"], "counter",
        "{metadata}"
    );
    assert!(
        metadata.get("inventory_reservations_total").is_none(),
        "an OpenMetrics counter family has no _total: {metadata}"
    );
}

/// Exemplars sent with OTLP points reach Prometheus' exemplar storage
/// through an OpenMetrics scrape, with the trace and span ids and the
/// exemplar's `filtered_attributes` as labels; an exemplar whose
/// attributes would pass OpenMetrics' 128 characters keeps its ids alone
/// (Prometheus would fail the whole scrape otherwise).
#[test]
fn prometheus_stores_exemplars_with_their_filtered_attributes() {
    let Some(binary) = find_peer("prometheus") else {
        return;
    };
    let collector = Collector::start();
    let time = now_ns();
    let exemplar = |value: f64, span: &str, attributes: Value| {
        json!({
            "timeUnixNano": time.to_string(),
            "asDouble": value,
            "traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": span,
            "filteredAttributes": attributes
        })
    };
    let request = json!({
        "resourceMetrics": [{
            "resource": { "attributes": [string_attr("service.name", "checkout")] },
            "scopeMetrics": [{
                "scope": { "name": "checkout.web" },
                "metrics": [{
                    "name": "checkout.duration",
                    "unit": "s",
                    "histogram": {
                        "aggregationTemporality": 2,
                        "dataPoints": [{
                            "startTimeUnixNano": (time - 60_000_000_000).to_string(),
                            "timeUnixNano": time.to_string(),
                            "count": "2",
                            "sum": 3.25,
                            "bucketCounts": ["1", "1"],
                            "explicitBounds": [1.0],
                            "exemplars": [
                                exemplar(0.25, "00000000000000a1", json!([string_attr("user.id", "u-42")])),
                                exemplar(3.0, "00000000000000b2", json!([string_attr("note", &"x".repeat(80))]))
                            ]
                        }]
                    }
                }]
            }]
        }]
    });
    post_json(&collector, &request);
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
         scrape_configs:\n  - job_name: streamgate\n    honor_labels: true\n    static_configs:\n      - targets: ['{}']\n",
        collector.admin
    );
    let prometheus = Prometheus::start_with(
        &binary,
        &config,
        &["--enable-feature=exemplar-storage"],
        None,
    );
    let query = r#"checkout_duration_seconds_bucket{job="checkout"}"#;
    let deadline = Instant::now() + Duration::from_secs(45);
    let exemplars = loop {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        let answer = prometheus.api(
            "/api/v1/query_exemplars",
            &[
                ("query", query),
                ("start", &(now - 600).to_string()),
                ("end", &(now + 60).to_string()),
            ],
        );
        let found: Vec<Value> = answer
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|series| series["exemplars"].as_array().cloned().unwrap_or_default())
            .collect();
        if found.len() >= 2 {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "no exemplars stored: {answer}\n--- prometheus log ---\n{}",
            prometheus.logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let labels_of = |span: &str| {
        exemplars
            .iter()
            .find(|e| e["labels"]["span_id"] == span)
            .map(|e| e["labels"].clone())
            .unwrap_or_else(|| panic!("an exemplar of span {span}: {exemplars:?}"))
    };
    assert_eq!(
        labels_of("00000000000000a1"),
        json!({
            "trace_id": "5b8efff798038103d269b633813fc60c",
            "span_id": "00000000000000a1",
            "user_id": "u-42"
        })
    );
    assert_eq!(
        labels_of("00000000000000b2"),
        json!({
            "trace_id": "5b8efff798038103d269b633813fc60c",
            "span_id": "00000000000000b2"
        }),
        "over the limit, the ids alone"
    );
    let targets = prometheus.api("/api/v1/targets", &[]);
    assert_eq!(targets["activeTargets"][0]["lastError"], "", "{targets}");
}

/// With `exporters.prometheus.openmetrics_created: false`, Prometheus
/// (scraping OpenMetrics) stores the counter and not its `_created`
/// series.
#[test]
fn prometheus_stores_no_created_series_when_they_are_left_out() {
    let Some(binary) = find_peer("prometheus") else {
        return;
    };
    let collector = Collector::start_with(common::Options {
        exporter_extra: "openmetrics_created: false".into(),
        ..Default::default()
    });
    let start = now_ns() - 60_000_000_000;
    post_json(&collector, &inventory_request(start, now_ns(), 42));
    let prometheus = start_prometheus(&binary, &collector.admin.to_string());
    prometheus.query_until(
        r#"inventory_reservations_total{job="inventory",instance="inv-7"}"#,
        has_value(42.0),
    );
    // The counter was scraped (in OpenMetrics: Prometheus asked for it
    // first), so its `_created` series would be there by now.
    let created = prometheus.query(r#"{__name__=~".+_created"}"#);
    assert!(created.is_empty(), "{created:?}");
}

/// A real Prometheus stores what the connectors and the window processor
/// derive: span metrics (RED) and log counts from OTLP/JSON traces and
/// logs, and windowed quantiles; `histogram_quantile` over the span
/// duration buckets and the window p50 agree on the bucket holding it.
#[test]
fn prometheus_stores_span_log_and_window_series() {
    let Some(binary) = find_peer("prometheus") else {
        return;
    };
    let collector = Collector::start_with(common::Options {
        processors_extra: "windows:\n  interval: 200ms\n  windows: [1m]\n".into(),
        ..Default::default()
    });
    let end = now_ns();
    let spans: Vec<Value> = (0..10)
        .map(|i| {
            json!({
                "traceId": format!("{:032x}", i + 1),
                "spanId": format!("{:016x}", i + 1),
                "name": "GET /items",
                "kind": 2,
                "startTimeUnixNano": (end - 30_000_000 - i * 1_000_000).to_string(),
                "endTimeUnixNano": end.to_string(),
                "status": { "code": if i == 0 { 2 } else { 0 } }
            })
        })
        .collect();
    let traces = json!({ "resourceSpans": [{
        "resource": { "attributes": [string_attr("service.name", "catalog")] },
        "scopeSpans": [{ "scope": { "name": "t" }, "spans": spans }]
    }]});
    let logs = json!({ "resourceLogs": [{
        "resource": { "attributes": [string_attr("service.name", "catalog")] },
        "scopeLogs": [{ "logRecords": [
            { "timeUnixNano": end.to_string(), "severityNumber": 17, "severityText": "ERROR", "body": { "stringValue": "db down" } },
            { "timeUnixNano": end.to_string(), "severityNumber": 9, "body": { "stringValue": "ok" } }
        ]}]
    }]});
    for (path, body) in [("/v1/traces", traces), ("/v1/logs", logs)] {
        let r = http_client()
            .post(collector.otlp_http_url(path))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let prometheus = start_prometheus(&binary, &collector.admin.to_string());
    let calls = prometheus.query_until(
        r#"sum by (status_code) (traces_span_metrics_calls_total{job="catalog",span_name="GET /items"})"#,
        |r| r.len() == 2,
    );
    let by_status: std::collections::BTreeMap<String, String> = calls
        .iter()
        .map(|s| {
            (
                s["metric"]["status_code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                s["value"][1].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(by_status["STATUS_CODE_ERROR"], "1");
    assert_eq!(by_status["STATUS_CODE_UNSET"], "9");
    let errors = prometheus.query_until(
        r#"log_error_records_total{job="catalog",service_name="catalog"}"#,
        |r| r.len() == 1,
    );
    assert_eq!(errors[0]["value"][1], "1");
    let p50 = prometheus.query_until(
        r#"traces_span_metrics_duration_window_p50_seconds{job="catalog",status_code="STATUS_CODE_UNSET",window="1m"}"#,
        |r| r.len() == 1,
    );
    // The unset spans last 31..39 ms: the median is 35 ms (±1 %).
    let value: f64 = p50[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!((value - 0.035).abs() <= 0.035 * 0.01, "{value}");
    let hq = prometheus.query_until(
        r#"histogram_quantile(0.5, sum by (le) (traces_span_metrics_duration_seconds_bucket{job="catalog",status_code="STATUS_CODE_UNSET"}))"#,
        |r| r.len() == 1,
    );
    let interpolated: f64 = hq[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!((0.01..=0.05).contains(&interpolated), "{interpolated}");
}

/// Prometheus stores every series of a scrape large enough to be
/// rendered in many chunks and gzipped on several threads (the body is
/// one gzip member of independently deflated chunks, which Go's reader
/// must take whole): 20,000 series from the load generator, OpenMetrics
/// with their `_created` samples.
#[test]
fn prometheus_stores_every_series_of_a_large_gzipped_scrape() {
    let Some(binary) = find_peer("prometheus") else {
        return;
    };
    let collector = Collector::start();
    const SERIES: u64 = 20_000;
    let endpoint = format!("http://{}", collector.grpc);
    // A loaded machine may send fewer in the time: each run starts at the
    // first series again, so runs are repeated until all are in.
    for _ in 0..3 {
        let (summary, _) = common::loadgen(&[
            "--endpoint",
            &endpoint,
            "--series",
            &SERIES.to_string(),
            "--batch",
            "5000",
            "--concurrency",
            "1",
            "--duration",
            "2s",
        ]);
        if summary["items_accepted"].as_u64().unwrap_or(0) >= SERIES {
            break;
        }
    }
    // The body is many 256 KiB chunks, gzipped.
    let gz = http_client()
        .get(collector.url("/metrics"))
        .header("Accept-Encoding", "gzip")
        .send()
        .expect("scrape");
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    let text = http_client()
        .get(collector.url("/metrics"))
        .send()
        .and_then(|r| r.text())
        .expect("scrape");
    assert!(text.len() > 4 * 256 * 1024, "{} bytes", text.len());

    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
         scrape_configs:\n\
         \x20 - job_name: streamgate\n    honor_labels: true\n    static_configs:\n      - targets: ['{}']\n",
        collector.admin
    );
    let prometheus = Prometheus::start(&binary, &config);
    prometheus.query_until(
        r#"count({__name__=~"loadgen_metric_.*", __name__!~".*_created"})"#,
        has_value(SERIES as f64),
    );
    prometheus.query_until(r#"up{job="streamgate"}"#, has_value(1.0));
    let scraped = prometheus.query_until(r#"scrape_samples_scraped{job="streamgate"}"#, |r| {
        r.len() == 1
    });
    assert!(
        sample_value(&scraped[0]) >= SERIES as f64,
        "{}",
        sample_value(&scraped[0])
    );
}
