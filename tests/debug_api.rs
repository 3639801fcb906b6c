//! Black-box tests of the live debugging API on the admin server: metrics,
//! spans and log records are sent over OTLP/HTTP JSON to the real binary,
//! and every answer of `/api/v1/series`, `/api/v1/series/history`,
//! `/api/v1/tail/traces` and `/api/v1/tail/logs` is checked as whole JSON.

mod common;

use common::{Collector, Options, http_client};
use serde_json::{Value, json};

/// Posts an OTLP/JSON body to `/v1/<signal>` and expects 200.
fn post(collector: &Collector, signal: &str, body: Value) {
    let r = http_client()
        .post(collector.otlp_http_url(&format!("/v1/{signal}")))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .expect("OTLP/HTTP post");
    assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// GETs `path` with these query parameters: (status, JSON body).
fn get(collector: &Collector, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let url = collector.url(&format!("{path}?{}", query.join("&")));
    let r = http_client().get(url).send().expect("API request");
    let status = r.status().as_u16();
    assert_eq!(
        r.headers()["content-type"],
        "application/json",
        "{path} answers JSON"
    );
    let body = r.text().expect("body");
    let value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    (status, value)
}

fn string_attr(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

/// A metrics request from service `shop`, scope `test`.
fn metrics(metrics: Vec<Value>) -> Value {
    json!({"resourceMetrics": [{
        "resource": {"attributes": [string_attr("service.name", "shop")]},
        "scopeMetrics": [{"scope": {"name": "test"}, "metrics": metrics}]
    }]})
}

/// A cumulative counter point per (route, value).
fn requests(time: u64, points: &[(&str, i64)]) -> Value {
    let points: Vec<Value> = points
        .iter()
        .map(|(route, v)| {
            json!({
                "asInt": v.to_string(),
                "startTimeUnixNano": "1",
                "timeUnixNano": time.to_string(),
                "attributes": [string_attr("http.route", route)]
            })
        })
        .collect();
    json!({"name": "http.server.requests", "sum": {
        "isMonotonic": true, "aggregationTemporality": 2, "dataPoints": points
    }})
}

fn queue_depth(time: u64, value: f64) -> Value {
    json!({"name": "queue.depth", "gauge": {"dataPoints": [
        {"asDouble": value, "timeUnixNano": time.to_string()}
    ]}})
}

/// A delta histogram point with bounds [0.1, 1].
fn latency(time: u64, counts: [u64; 3], sum: f64) -> Value {
    json!({"name": "http.server.duration", "unit": "s", "histogram": {
        "aggregationTemporality": 1,
        "dataPoints": [{
            "startTimeUnixNano": (time - 1).to_string(),
            "timeUnixNano": time.to_string(),
            "count": counts.iter().sum::<u64>().to_string(),
            "sum": sum,
            "bucketCounts": counts.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "explicitBounds": [0.1, 1.0]
        }]
    }})
}

/// The labels every `shop` series carries, plus `extra`.
fn shop_labels(extra: &[(&str, &str)]) -> Value {
    let mut labels = json!({"job": "shop", "otel_scope_name": "test"});
    for (k, v) in extra {
        labels[*k] = json!(v);
    }
    labels
}

/// `/api/v1/series` lists the active series a name, a name regex or label
/// matchers select, sorted, with labels as an object and the Prometheus
/// type; `limit` truncates and says so.
#[test]
fn series_are_listed_by_name_regex_and_labels() {
    // Without window series derived from the histogram, which would join
    // the listing on the processor's clock.
    let collector = Collector::start_with(Options {
        processors_extra: "windows:\n  enabled: false\n".into(),
        ..Default::default()
    });
    post(
        &collector,
        "metrics",
        metrics(vec![
            requests(2_000_000_000, &[("/cart", 3), ("/pay", 1)]),
            queue_depth(2_000_000_000, 4.0),
            latency(2_000_000_000, [1, 0, 0], 0.05),
        ]),
    );
    let series = "/api/v1/series";
    let cart = json!({"name": "http_server_requests_total", "type": "counter",
                      "labels": shop_labels(&[("http_route", "/cart")])});
    let pay = json!({"name": "http_server_requests_total", "type": "counter",
                     "labels": shop_labels(&[("http_route", "/pay")])});
    let duration = json!({"name": "http_server_duration_seconds", "type": "histogram",
                          "labels": shop_labels(&[])});
    let depth = json!({"name": "queue_depth", "type": "gauge", "labels": shop_labels(&[])});

    let (status, body) = get(
        &collector,
        series,
        &[("match", "http_server_requests_total")],
    );
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"series": [cart.clone(), pay.clone()], "truncated": false})
    );
    let (_, body) = get(&collector, series, &[("match", "http_server_.*")]);
    assert_eq!(
        body,
        json!({"series": [duration.clone(), cart.clone(), pay.clone()], "truncated": false})
    );
    let (_, body) = get(
        &collector,
        series,
        &[("match", r#"http_server_requests_total{http_route="/pay"}"#)],
    );
    assert_eq!(body, json!({"series": [pay.clone()], "truncated": false}));
    let (_, body) = get(
        &collector,
        series,
        &[("match", r#"{job="shop",http_route!~"/c.*"}"#)],
    );
    assert_eq!(
        body,
        json!({"series": [duration.clone(), pay.clone(), depth.clone()], "truncated": false})
    );
    let (_, body) = get(
        &collector,
        series,
        &[("match", "http_.*|queue_depth"), ("limit", "2")],
    );
    assert_eq!(body, json!({"series": [duration, cart], "truncated": true}));
    let (_, body) = get(&collector, series, &[("match", "nothing_here")]);
    assert_eq!(body, json!({"series": [], "truncated": false}));
}

/// `/api/v1/series/history` starts watching a series on its first request
/// (answering its current value) and from then on records every update:
/// numbers as `value`, histograms as accumulated `count` and `sum`.
#[test]
fn history_grows_across_updates() {
    let collector = Collector::start();
    post(
        &collector,
        "metrics",
        metrics(vec![
            requests(2_000_000_000, &[("/cart", 3), ("/pay", 1)]),
            latency(2_000_000_000, [1, 0, 0], 0.05),
        ]),
    );
    let history = "/api/v1/series/history";
    let cart = [
        ("name", "http_server_requests_total"),
        ("job", "shop"),
        ("otel_scope_name", "test"),
        ("http_route", "/cart"),
    ];
    let answer = |points: Value| {
        json!({
            "name": "http_server_requests_total",
            "type": "counter",
            "labels": shop_labels(&[("http_route", "/cart")]),
            "capacity": 256,
            "points": points
        })
    };
    let (status, body) = get(&collector, history, &cart);
    assert_eq!(status, 200);
    assert_eq!(
        body,
        answer(json!([{"time_unix_nano": 2_000_000_000u64, "value": 3.0}]))
    );
    post(
        &collector,
        "metrics",
        metrics(vec![requests(3_000_000_000, &[("/cart", 5), ("/pay", 2)])]),
    );
    post(
        &collector,
        "metrics",
        metrics(vec![requests(4_000_000_000, &[("/cart", 9)])]),
    );
    let (_, body) = get(&collector, history, &cart);
    assert_eq!(
        body,
        answer(json!([
            {"time_unix_nano": 2_000_000_000u64, "value": 3.0},
            {"time_unix_nano": 3_000_000_000u64, "value": 5.0},
            {"time_unix_nano": 4_000_000_000u64, "value": 9.0}
        ]))
    );

    let latency_series = [
        ("name", "http_server_duration_seconds"),
        ("job", "shop"),
        ("otel_scope_name", "test"),
    ];
    get(&collector, history, &latency_series);
    post(
        &collector,
        "metrics",
        metrics(vec![latency(3_000_000_000, [0, 2, 1], 3.0)]),
    );
    let (_, body) = get(&collector, history, &latency_series);
    assert_eq!(
        body,
        json!({
            "name": "http_server_duration_seconds",
            "type": "histogram",
            "labels": shop_labels(&[]),
            "capacity": 256,
            "points": [
                {"time_unix_nano": 2_000_000_000u64, "count": 1, "sum": 0.05},
                {"time_unix_nano": 3_000_000_000u64, "count": 4, "sum": 3.05}
            ]
        })
    );
}

/// Bad parameters are 400 with a JSON error that says what is wrong; an
/// unknown series is 404.
#[test]
fn bad_parameters_are_400_and_unknown_series_404() {
    let collector = Collector::start();
    post(
        &collector,
        "metrics",
        metrics(vec![queue_depth(2_000_000_000, 1.0)]),
    );
    /// (path, parameters, status, error message).
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16, &'a str);
    let cases: &[Case] = &[
        (
            "/api/v1/series",
            &[("match", "queue_(")],
            400,
            "bad regular expression `queue_(`: unclosed group",
        ),
        (
            "/api/v1/series",
            &[("match", r#"queue_depth{job="shop""#)],
            400,
            "label matchers `{job=\"shop\"` do not end with `}`",
        ),
        (
            "/api/v1/series",
            &[("limit", "0")],
            400,
            "limit `0` must be a positive integer",
        ),
        (
            "/api/v1/series",
            &[("matches", "x")],
            400,
            "unknown parameter `matches`; this endpoint takes match, limit",
        ),
        (
            "/api/v1/series/history",
            &[("job", "shop")],
            400,
            "missing parameter `name` (the metric name); labels follow as <label>=<value>",
        ),
        (
            "/api/v1/series/history",
            &[("name", "queue_depth"), ("bad-label", "x")],
            400,
            "`bad-label` is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)",
        ),
        (
            "/api/v1/series/history",
            &[("name", "queue_depth"), ("job", "other")],
            404,
            "no active series queue_depth{job=\"other\"}",
        ),
        (
            "/api/v1/series/history",
            &[("name", "no_such_metric")],
            404,
            "no active series no_such_metric",
        ),
        (
            "/api/v1/tail/traces",
            &[("limit", "many")],
            400,
            "limit `many` must be a positive integer",
        ),
        (
            "/api/v1/tail/logs",
            &[("severity", "ERROR")],
            400,
            "unknown parameter `severity`; this endpoint takes service, limit",
        ),
    ];
    for (path, params, status, error) in cases {
        let (got_status, body) = get(&collector, path, params);
        assert_eq!(
            (got_status, body),
            (*status, json!({"error": error})),
            "{path} {params:?}"
        );
    }
}

fn span(trace: u8, name: &str, kind: u8, millis: u64, error: bool) -> Value {
    json!({
        "traceId": format!("{trace:02x}").repeat(16),
        "spanId": format!("{:02x}", trace + 1).repeat(8),
        "name": name,
        "kind": kind,
        "startTimeUnixNano": "1000000000",
        "endTimeUnixNano": (1_000_000_000 + millis * 1_000_000).to_string(),
        "status": if error { json!({"code": 2, "message": "failed"}) } else { json!({}) },
        "attributes": [{"key": "http.response.status_code",
                        "value": {"intValue": if error { "500" } else { "200" }}}]
    })
}

fn traces(service: &str, spans: Vec<Value>) -> Value {
    json!({"resourceSpans": [{
        "resource": {"attributes": [string_attr("service.name", service)]},
        "scopeSpans": [{"spans": spans}]
    }]})
}

/// `/api/v1/tail/traces` answers the most recent spans, newest first, with
/// hex ids, kind, status, duration, service and attributes; `service`
/// filters, `limit` bounds.
#[test]
fn tail_of_traces_filters_by_service() {
    let collector = Collector::start();
    post(
        &collector,
        "traces",
        traces(
            "checkout",
            vec![
                span(0x11, "GET /cart", 2, 250, false),
                span(0x22, "POST /pay", 2, 1500, true),
            ],
        ),
    );
    post(
        &collector,
        "traces",
        traces("db", vec![span(0x33, "SELECT", 3, 5, false)]),
    );
    let cart = json!({
        "trace_id": "11111111111111111111111111111111", "span_id": "1212121212121212",
        "name": "GET /cart", "kind": "server", "status": "unset",
        "start_time_unix_nano": 1_000_000_000u64, "duration_seconds": 0.25,
        "service": "checkout", "attributes": {"http.response.status_code": 200}
    });
    let pay = json!({
        "trace_id": "22222222222222222222222222222222", "span_id": "2323232323232323",
        "name": "POST /pay", "kind": "server", "status": "error", "status_message": "failed",
        "start_time_unix_nano": 1_000_000_000u64, "duration_seconds": 1.5,
        "service": "checkout", "attributes": {"http.response.status_code": 500}
    });
    let select = json!({
        "trace_id": "33333333333333333333333333333333", "span_id": "3434343434343434",
        "name": "SELECT", "kind": "client", "status": "unset",
        "start_time_unix_nano": 1_000_000_000u64, "duration_seconds": 0.005,
        "service": "db", "attributes": {"http.response.status_code": 200}
    });
    let tail = "/api/v1/tail/traces";
    let (status, body) = get(&collector, tail, &[]);
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"spans": [select.clone(), pay.clone(), cart.clone()]})
    );
    let (_, body) = get(&collector, tail, &[("service", "checkout")]);
    assert_eq!(body, json!({"spans": [pay.clone(), cart]}));
    let (_, body) = get(&collector, tail, &[("service", "checkout"), ("limit", "1")]);
    assert_eq!(body, json!({"spans": [pay]}));
    let (_, body) = get(&collector, tail, &[("service", "nobody")]);
    assert_eq!(body, json!({"spans": []}));
}

fn logs(service: &str, records: Vec<Value>) -> Value {
    json!({"resourceLogs": [{
        "resource": {"attributes": [string_attr("service.name", service)]},
        "scopeLogs": [{"logRecords": records}]
    }]})
}

/// `/api/v1/tail/logs` answers the most recent log records with time,
/// severity (text, else the number's range name), body text, service and
/// trace id; `service` filters.
#[test]
fn tail_of_logs_filters_by_service() {
    let collector = Collector::start();
    post(
        &collector,
        "logs",
        logs(
            "payments",
            vec![
                json!({"timeUnixNano": "3000000000", "severityNumber": 17,
                       "body": {"stringValue": "card declined"},
                       "traceId": "22222222222222222222222222222222",
                       "attributes": [string_attr("order.id", "A-1")]}),
                json!({"timeUnixNano": "4000000000", "severityNumber": 9,
                       "severityText": "Information",
                       "body": {"kvlistValue": {"values": [
                           {"key": "retries", "value": {"intValue": "2"}}]}}}),
            ],
        ),
    );
    post(
        &collector,
        "logs",
        logs(
            "search",
            vec![json!({"timeUnixNano": "5000000000", "severityNumber": 13,
                        "body": {"stringValue": "slow query"}})],
        ),
    );
    let declined = json!({
        "time_unix_nano": 3_000_000_000u64, "severity": "ERROR", "severity_number": 17,
        "body": "card declined", "service": "payments",
        "trace_id": "22222222222222222222222222222222", "attributes": {"order.id": "A-1"}
    });
    let info = json!({
        "time_unix_nano": 4_000_000_000u64, "severity": "Information", "severity_number": 9,
        "body": "{\"retries\":2}", "service": "payments", "attributes": {}
    });
    let slow = json!({
        "time_unix_nano": 5_000_000_000u64, "severity": "WARN", "severity_number": 13,
        "body": "slow query", "service": "search", "attributes": {}
    });
    let tail = "/api/v1/tail/logs";
    let (status, body) = get(&collector, tail, &[]);
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"logs": [slow.clone(), info.clone(), declined.clone()]})
    );
    let (_, body) = get(&collector, tail, &[("service", "payments")]);
    assert_eq!(body, json!({"logs": [info, declined]}));
    let (_, body) = get(&collector, tail, &[("service", "search"), ("limit", "5")]);
    assert_eq!(body, json!({"logs": [slow]}));
}

/// The `api` section bounds everything: tails keep their last N items,
/// history rings their last N points, and watching one series more than
/// `history.max_series` forgets the least recently requested; a tail of 0
/// is off (404).
#[test]
fn rings_and_watches_are_bounded_by_config() {
    let collector = Collector::start_with(Options {
        api_extra: "history:\n  max_series: 1\n  points: 2\ntail:\n  spans: 2\n  logs: 0\n".into(),
        ..Default::default()
    });
    let names: Vec<String> = (0..5).map(|i| format!("op{i}")).collect();
    post(
        &collector,
        "traces",
        traces(
            "svc",
            names
                .iter()
                .enumerate()
                .map(|(i, n)| span(0x10 * (i as u8 + 1), n, 1, 1, false))
                .collect(),
        ),
    );
    let (_, body) = get(&collector, "/api/v1/tail/traces", &[]);
    let kept: Vec<&str> = body["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(kept, ["op4", "op3"]);
    let (status, body) = get(&collector, "/api/v1/tail/logs", &[]);
    assert_eq!(
        (status, body),
        (
            404,
            json!({"error": "the tail of logs is off (api.tail.logs: 0)"})
        )
    );

    let history = "/api/v1/series/history";
    let route = |r: &'static str| {
        [
            ("name", "http_server_requests_total"),
            ("job", "shop"),
            ("otel_scope_name", "test"),
            ("http_route", r),
        ]
    };
    let values = |body: &Value| -> Vec<f64> {
        body["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["value"].as_f64().unwrap())
            .collect()
    };
    post(
        &collector,
        "metrics",
        metrics(vec![requests(1_000_000_000, &[("/a", 1), ("/b", 1)])]),
    );
    get(&collector, history, &route("/a"));
    for (t, v) in [(2, 2), (3, 3)] {
        post(
            &collector,
            "metrics",
            metrics(vec![requests(t * 1_000_000_000, &[("/a", v), ("/b", v)])]),
        );
    }
    let (_, body) = get(&collector, history, &route("/a"));
    assert_eq!(body["capacity"], 2);
    assert_eq!(values(&body), [2.0, 3.0]);
    // Watching /b evicts /a: its ring starts again from the current value.
    let (_, body) = get(&collector, history, &route("/b"));
    assert_eq!(values(&body), [3.0]);
    post(
        &collector,
        "metrics",
        metrics(vec![requests(4_000_000_000, &[("/a", 4), ("/b", 4)])]),
    );
    let (_, body) = get(&collector, history, &route("/a"));
    assert_eq!(values(&body), [4.0]);
}

/// A method a route does not take is a JSON 405 naming the ones it does
/// (with `Allow`); an unknown path under `/api/` is a JSON 404, and
/// elsewhere a plain one that names the path.
#[test]
fn wrong_methods_and_unknown_paths_answer_with_a_reason() {
    let collector = Collector::start();
    let client = http_client();
    let r = client
        .post(collector.url("/api/v1/series"))
        .send()
        .expect("POST");
    assert_eq!(r.status(), 405);
    assert_eq!(
        r.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("GET")
    );
    let body: Value = serde_json::from_str(&r.text().expect("body")).expect("JSON");
    assert_eq!(body, json!({"error": "POST is not allowed here; use GET"}));
    let r = client
        .put(collector.url("/api/v1/alerts"))
        .send()
        .expect("PUT");
    assert_eq!(r.status(), 405);
    assert_eq!(
        r.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("GET, POST")
    );

    let (status, body) = get(&collector, "/api/v1/config", &[]);
    assert_eq!(status, 404);
    assert_eq!(body, json!({"error": "no such endpoint: /api/v1/config"}));
    let r = client
        .get(collector.url("/nothing/here"))
        .send()
        .expect("GET");
    assert_eq!(r.status(), 404);
    assert!(r.text().unwrap().contains("/nothing/here"));
    // Endpoints that take no parameters say so.
    for path in [
        "/api/v1/recommendations",
        "/api/v1/alerts",
        "/api/v1/alerts/history",
    ] {
        let (status, body) = get(&collector, path, &[("state", "x")]);
        assert_eq!(status, 400, "{path}");
        assert_eq!(
            body,
            json!({"error": "unknown parameter `state`; this endpoint takes no parameters"}),
            "{path}"
        );
    }
    // What is served still is.
    let (status, _) = get(&collector, "/api/v1/status", &[]);
    assert_eq!(status, 200);
    let r = client
        .get(collector.url("/metrics"))
        .send()
        .expect("scrape");
    assert_eq!(r.status(), 200);
}
