//! Black-box test of the analysis processor: a gauge sent over OTLP/HTTP
//! with an injected anomaly comes out of `/metrics` with a learned
//! baseline, an anomaly flag on the spike and forecasts at the horizon.

mod common;

use std::time::{Duration, Instant};

use common::{Collector, Options, http_client};

fn gauge(value: f64) -> String {
    queue_gauge("checkout", r#"orders \"eu\""#, value)
}

/// A gauge `queue.depth` of `service` for queue `queue` (JSON-escaped).
fn queue_gauge(service: &str, queue: &str, value: f64) -> String {
    format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},
          "scopeMetrics":[{{"metrics":[{{"name":"queue.depth","unit":"{{item}}","description":"Items waiting",
            "gauge":{{"dataPoints":[{{"asDouble":{value},
              "attributes":[{{"key":"queue.name","value":{{"stringValue":"{queue}"}}}}]}}]}}}}]}}]}}]}}"#
    )
}

/// A collector analysing `queue.depth` every 100 ms, forecasting 1 s ahead.
fn queue_depth_analysed() -> Collector {
    Collector::start_with(Options {
        processors_extra: "analysis:\n  select: [{name: queue.depth}]\n  step: 100ms\n  horizons: [1s]\n  series_ttl: 1m\n".into(),
        ..Default::default()
    })
}

/// GETs `path` of the admin server as JSON.
fn get_json(collector: &Collector, path: &str) -> serde_json::Value {
    let body = http_client()
        .get(collector.url(path))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

/// 60 steady points, then a jump to 20× the level: `streamgate_anomaly` is 1 for the
/// series, its baseline stayed near the steady level, and forecasts exist.
#[test]
fn injected_anomaly_is_flagged_and_forecasts_appear() {
    let collector = queue_depth_analysed();
    let send = |v: f64| collector.post_json_metrics(gauge(v));
    for i in 0..60 {
        send(20.0 + (i % 5) as f64 * 0.5);
        std::thread::sleep(Duration::from_millis(100));
    }
    let labels = [("job", "checkout"), ("metric", "queue_depth")];
    let s = collector.scrape();
    let forecasts = s.matching(
        "streamgate_forecast",
        &[("metric", "queue_depth"), ("horizon", "1s")],
    );
    assert_eq!(forecasts.len(), 1, "{}", s.text);
    assert!((forecasts[0].1 - 21.0).abs() < 3.0, "{forecasts:?}");
    assert_eq!(s.matching("streamgate_anomaly", &labels)[0].1, 0.0);

    // The flag is a rising edge: it stays 1 while no newer value
    // arrives, so send one jump at a time and look after each, for long
    // enough that a step (every 100 ms, later on a loaded machine) has
    // taken it: a second jump sent before the step that raises the flag
    // had run would be fed after it and clear it.
    let flag = |s: &common::Samples| {
        s.matching("streamgate_anomaly", &labels)
            .first()
            .map(|m| m.1)
            == Some(1.0)
    };
    let mut flagged = None;
    for jump in 1..=5 {
        send(400.0);
        let deadline = Instant::now() + Duration::from_millis(1500);
        let s = loop {
            let s = collector.scrape();
            if flag(&s) || Instant::now() > deadline {
                break s;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if flag(&s) {
            flagged = Some((jump, s));
            break;
        }
    }
    let (jump, s) = flagged.expect("the anomaly flag rises within five jumps");
    assert!(jump <= 3, "flagged at jump {jump}");
    let score = s.matching("streamgate_anomaly_score", &labels)[0].1;
    assert!(score > 0.9, "{score}");
    let expected = s.matching("streamgate_baseline_expected", &labels)[0].1;
    assert!(
        (expected - 21.0).abs() < 3.0,
        "baseline near the steady level: {expected}"
    );
    let upper = s.matching("streamgate_baseline_upper", &labels)[0].1;
    assert!(upper < 400.0, "{upper}");
    assert_eq!(s.types["streamgate_anomaly"], "gauge");

    // The finding, in words and numbers, on the API.
    let body = get_json(&collector, "/api/v1/recommendations");
    let list = body["recommendations"].as_array().expect("a list");
    let anomaly = list
        .iter()
        .find(|r| r["kind"] == "anomaly" && r["metric"] == "queue_depth")
        .unwrap_or_else(|| panic!("an anomaly finding: {body}"));
    assert_eq!(anomaly["numbers"]["value"], 400.0);
    assert_eq!(anomaly["labels"]["service.name"], "checkout");
    // A point attribute under its own key, read back from the label
    // block the series keeps (`queue_name` on /metrics).
    assert_eq!(anomaly["labels"]["queue.name"], "orders \"eu\"");
    assert!(anomaly["labels"].get("queue_name").is_none(), "{anomaly}");
    assert!(
        anomaly["summary"]
            .as_str()
            .unwrap()
            .contains("queue_depth of checkout is anomalous")
    );
}

/// With the default selection StreamGate analyses its own resident memory,
/// heap, CPU (as a rate) and runtime queue: a baseline near the
/// self-metric appears on /metrics without any traffic, and its memory is
/// forecast against the memory limit.
#[test]
fn own_memory_and_cpu_are_analysed_by_default() {
    let collector = Collector::start_with(Options {
        processors_extra: "analysis:\n  step: 100ms\n  horizons: [1s]\n".into(),
        ..Default::default()
    });
    let memory = [
        ("job", "streamgate"),
        ("metric", "streamgate_process_resident_memory_bytes"),
    ];
    let cpu = [
        ("job", "streamgate"),
        ("metric", "streamgate_process_cpu_seconds_total"),
        ("transform", "rate"),
    ];
    let heap = [
        ("job", "streamgate"),
        ("metric", "streamgate_heap_allocated_bytes"),
    ];
    let queue = [
        ("job", "streamgate"),
        ("metric", "streamgate_runtime_global_queue_depth"),
    ];
    let mut last = None;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        let s = collector.scrape();
        if [&memory[..], &cpu, &heap, &queue].iter().all(|labels| {
            !s.matching("streamgate_baseline_expected", labels)
                .is_empty()
        }) && !s.matching("streamgate_forecast", &memory).is_empty()
        {
            last = Some(s);
            break;
        }
    }
    let s = last.expect("own memory and CPU baselines and a forecast within 10 s");
    let rss = s.matching("streamgate_process_resident_memory_bytes", &[])[0].1;
    let expected = s.matching("streamgate_baseline_expected", &memory)[0].1;
    assert!(
        expected > 0.5 * rss && expected < 2.0 * rss,
        "baseline {expected} vs resident {rss}"
    );
    let cores = s.matching("streamgate_baseline_expected", &cpu)[0].1;
    assert!((0.0..=4.0).contains(&cores), "{cores}");
    let allocated = s.matching("streamgate_heap_allocated_bytes", &[])[0].1;
    let expected = s.matching("streamgate_baseline_expected", &heap)[0].1;
    assert!(
        expected > 0.3 * allocated && expected < 3.0 * allocated,
        "baseline {expected} vs heap {allocated}"
    );
}

/// A source attribute named like a label the derived gauges add
/// (`window`, `horizon`, `threshold`) is kept as `exported_<name>`: a
/// sample with one label name twice makes Prometheus refuse the whole
/// scrape. Every line of the scrape has each label name once, and
/// promtool accepts it.
#[test]
fn attributes_named_like_added_labels_are_set_aside() {
    let collector = Collector::start_with(Options {
        processors_extra: "windows:\n  interval: 200ms\n  windows: [1m]\n  include: [queue.latency]\nanalysis:\n  select: [{name: queue.latency}]\n  step: 100ms\n  horizons: [1s]\n  thresholds: [{name: queue.latency, value: 1000}]\n".into(),
        ..Default::default()
    });
    let point = |v: f64| {
        format!(
            r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"checkout"}}}}]}},
              "scopeMetrics":[{{"metrics":[{{"name":"queue.latency","unit":"s","description":"Queue wait",
                "gauge":{{"dataPoints":[{{"asDouble":{v},"attributes":[
                  {{"key":"window","value":{{"stringValue":"sender-w"}}}},
                  {{"key":"horizon","value":{{"stringValue":"sender-h"}}}},
                  {{"key":"threshold","value":{{"stringValue":"sender-t"}}}}]}}]}}}}]}}]}}]}}"#
        )
    };
    let v = std::cell::Cell::new(1.0);
    let s = collector.scrape_until("window, forecast and time-to-threshold series", |s| {
        let r = http_client()
            .post(collector.otlp_http_url("/v1/metrics"))
            .header("Content-Type", "application/json")
            .body(point(v.get()))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        v.set(v.get() + 1.0);
        [
            (
                "queue_latency_window_max_seconds",
                ("exported_window", "sender-w"),
            ),
            ("streamgate_forecast", ("exported_horizon", "sender-h")),
            (
                "streamgate_time_to_threshold_seconds",
                ("exported_threshold", "sender-t"),
            ),
        ]
        .iter()
        .all(|(name, label)| !s.matching(name, &[*label]).is_empty())
    });
    for line in s
        .text
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('{'))
    {
        let inner = &line[line.find('{').unwrap() + 1..line.rfind('}').unwrap()];
        let mut names = common::label_names(inner);
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "a label name twice: {line}");
    }
    let window = s.matching(
        "queue_latency_window_max_seconds",
        &[("window", "1m"), ("exported_window", "sender-w")],
    );
    assert_eq!(window.len(), 1, "{}", s.text);
    let forecast = s.matching(
        "streamgate_forecast",
        &[
            ("horizon", "1s"),
            ("exported_horizon", "sender-h"),
            ("exported_threshold", "sender-t"),
            ("window", "sender-w"),
        ],
    );
    assert_eq!(forecast.len(), 1, "{}", s.text);
    let eta = s.matching(
        "streamgate_time_to_threshold_seconds",
        &[("threshold", "1000"), ("exported_threshold", "sender-t")],
    );
    assert_eq!(eta.len(), 1, "{}", s.text);
    if let Some(promtool) = common::find_peer("promtool") {
        let (success, report) = common::promtool_check(&promtool, &s.text);
        assert!(success, "promtool: {report}");
    }
}

/// Two queues watched against a level of 1000: one steps from 50 to 500
/// and stays there, the other ramps toward the level. The step's line is
/// steep for a while (its time to the threshold falls far below
/// `critical_within`), but the recent points never confirm it: it has
/// no `streamgate_time_to_threshold_confirmed_seconds` and its built-in
/// alert stays a warning. The ramp gets both series and pages critical.
#[test]
fn a_step_toward_a_threshold_warns_and_a_ramp_pages() {
    let collector = Collector::start_with(Options {
        processors_extra: "analysis:\n  select: [{name: queue.depth}]\n  step: 200ms\n  horizons: [1s]\n  series_ttl: 1m\n  thresholds: [{name: queue.depth, value: 1000}]\n".into(),
        exporters_extra: "alertmanager:\n  evaluation_interval: 100ms\n".into(),
        ..Default::default()
    });
    let send = |queue: &str, v: f64| collector.post_json_metrics(queue_gauge("shop", queue, v));
    let alert_severity = |queue: &str| -> Option<String> {
        let body = get_json(&collector, "/api/v1/alerts");
        body["alerts"]
            .as_array()?
            .iter()
            .find(|a| {
                a["labels"]["alertname"] == "StreamGateForecastBreach"
                    && a["labels"]["queue_name"] == queue
            })
            .and_then(|a| a["labels"]["severity"].as_str().map(String::from))
    };
    let eta = |s: &common::Samples, name: &str, queue: &str| {
        s.matching(name, &[("queue_name", queue), ("threshold", "1000")])
            .first()
            .map(|m| m.1)
    };
    // Level: 2 s of both at 50 (small noise), a send every 50 ms.
    let wobble = |i: u32| f64::from(i % 3) * 0.2;
    let mut i = 0u32;
    while i < 40 {
        send("step", 50.0 + wobble(i));
        send("ramp", 50.0 + wobble(i));
        std::thread::sleep(Duration::from_millis(50));
        i += 1;
    }
    // Then the step to 500, held, and the ramp at 30 a second (through
    // 1000 after about 30 s), watched until the ramp is confirmed and
    // paging and the step's line has had time to settle.
    let began = Instant::now();
    let mut step_soonest = f64::INFINITY;
    let mut step_severities = Vec::new();
    let mut ramp_confirmed = None;
    let mut ramp_severity = None;
    let mut k = 0u32;
    while began.elapsed() < Duration::from_secs(20) {
        send("step", 500.0 + wobble(i));
        // By the clock, so a slow send does not make the ramp uneven.
        let ramp = 50.0 + 30.0 * began.elapsed().as_secs_f64();
        if ramp < 950.0 {
            send("ramp", ramp + wobble(i));
        }
        std::thread::sleep(Duration::from_millis(50));
        i += 1;
        k += 1;
        if k.is_multiple_of(4) {
            let s = collector.scrape();
            if let Some(secs) = eta(&s, "streamgate_time_to_threshold_seconds", "step") {
                step_soonest = step_soonest.min(secs);
            }
            assert_eq!(
                eta(&s, "streamgate_time_to_threshold_confirmed_seconds", "step"),
                None,
                "the step confirmed a trend:\n{}",
                s.text
            );
            ramp_confirmed = ramp_confirmed.or(eta(
                &s,
                "streamgate_time_to_threshold_confirmed_seconds",
                "ramp",
            ));
            step_severities.extend(alert_severity("step"));
            ramp_severity = alert_severity("ramp").or(ramp_severity);
            if ramp_severity.as_deref() == Some("critical")
                && began.elapsed() > Duration::from_secs(6)
            {
                break;
            }
        }
    }
    assert!(
        step_soonest < 900.0,
        "the step's plain time to threshold fell to {step_soonest} s"
    );
    assert!(
        step_severities.iter().any(|s| s == "warning"),
        "the step warns: {step_severities:?}"
    );
    assert!(
        step_severities.iter().all(|s| s == "warning"),
        "the step never pages: {step_severities:?}"
    );
    let confirmed = ramp_confirmed.expect("the ramp's trend is confirmed");
    assert!(confirmed > 0.0 && confirmed < 900.0, "{confirmed}");
    assert_eq!(ramp_severity.as_deref(), Some("critical"));

    // The finding says which crossing is confirmed.
    let body = get_json(&collector, "/api/v1/recommendations");
    let list = body["recommendations"].as_array().expect("a list");
    let ramp = list
        .iter()
        .find(|r| r["kind"] == "threshold" && r["labels"]["queue.name"] == "ramp")
        .unwrap_or_else(|| panic!("a threshold finding for the ramp: {body}"));
    assert!(
        ramp["numbers"]["confirmed_eta_seconds"].is_number(),
        "{ramp}"
    );
    assert!(
        !ramp["summary"]
            .as_str()
            .unwrap()
            .contains("not yet confirmed"),
        "{ramp}"
    );
}

/// A false alarm does not hide an outage for the 6 h hold-off: after a
/// small jump is flagged and has calmed, a jump 20× as large, held, is
/// flagged again as a new anomaly (`streamgate_anomaly` 1, active, the
/// score uncapped), through the binary with the default hold-off.
#[test]
fn an_outage_after_a_false_alarm_is_still_flagged() {
    let collector = queue_depth_analysed();
    let send = |v: f64| collector.post_json_metrics(gauge(v));
    let labels = [("job", "checkout"), ("metric", "queue_depth")];
    let value = |s: &common::Samples, name: &str| s.matching(name, &labels).first().map(|m| m.1);
    let steady = |i: u32| 20.0 + f64::from(i % 5) * 0.5;
    let mut i = 0;
    for _ in 0..60 {
        send(steady(i));
        i += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    // Held until flagged, then steady until it has calmed.
    let mut hold = |v: f64, until: &dyn Fn(&common::Samples) -> bool, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            send(if v.is_nan() { steady(i) } else { v });
            i += 1;
            std::thread::sleep(Duration::from_millis(100));
            let s = collector.scrape();
            if until(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "{what}:\n{}", s.text);
        }
    };
    let flagged = |s: &common::Samples| value(s, "streamgate_anomaly") == Some(1.0);
    hold(40.0, &flagged, "the small jump is flagged");
    hold(
        f64::NAN,
        &|s| value(s, "streamgate_anomaly_active") == Some(0.0),
        "the small jump calms",
    );
    let s = hold(800.0, &flagged, "the outage is flagged within the hold-off");
    assert_eq!(value(&s, "streamgate_anomaly_active"), Some(1.0));
    let score = value(&s, "streamgate_anomaly_score").unwrap_or(0.0);
    assert!(score >= 0.95, "uncapped score: {score}");
}
