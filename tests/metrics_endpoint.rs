//! Black-box tests of `/metrics`: content negotiation (text 0.0.4 vs
//! OpenMetrics 1.0 with `# EOF`), gzip when accepted, series expiry, and
//! the status API.

mod common;

use std::io::Read;
use std::time::Duration;

use common::{Collector, Options, http_client};

const GAUGE: &str = r#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"neg"}}]},
  "scopeMetrics":[{"metrics":[
    {"name":"queue.depth","unit":"{item}","description":"Items waiting","gauge":{"dataPoints":[{"asInt":"42","timeUnixNano":"1700000000000000000"}]}},
    {"name":"net.sent","unit":"By","description":"Bytes sent","sum":{"aggregationTemporality":2,"isMonotonic":true,
      "dataPoints":[{"asInt":"1024","startTimeUnixNano":"1600000000000000000","timeUnixNano":"1700000000000000000"}]}}]}]}]}"#;

fn send(collector: &Collector, body: &str) {
    let r = http_client()
        .post(collector.otlp_http_url("/v1/metrics"))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Without an Accept header the answer is text 0.0.4; with OpenMetrics
/// accepted it is OpenMetrics, counters named without `_total` in their
/// metadata, with `# UNIT`, `_created` and a final `# EOF`.
#[test]
fn negotiates_text_and_openmetrics() {
    let collector = Collector::start();
    send(&collector, GAUGE);

    let text = http_client().get(collector.url("/metrics")).send().unwrap();
    assert_eq!(
        text.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let body = text.text().unwrap();
    assert!(
        body.contains("# TYPE net_sent_bytes_total counter\n"),
        "{body}"
    );
    assert!(
        body.contains("net_sent_bytes_total{job=\"neg\"} 1024\n"),
        "{body}"
    );
    assert!(body.contains("queue_depth{job=\"neg\"} 42\n"), "{body}");
    assert!(!body.contains("# EOF"));

    let om = http_client()
        .get(collector.url("/metrics"))
        .header(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .send()
        .unwrap();
    assert_eq!(
        om.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let body = om.text().unwrap();
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert!(body.contains("# TYPE net_sent_bytes counter\n"), "{body}");
    assert!(body.contains("# UNIT net_sent_bytes bytes\n"), "{body}");
    assert!(
        body.contains("net_sent_bytes_total{job=\"neg\"} 1024\n"),
        "{body}"
    );
    assert!(
        body.contains("net_sent_bytes_created{job=\"neg\"} 1600000000\n"),
        "{body}"
    );
}

/// With `Accept-Encoding: gzip` the body is gzip and decompresses to the
/// same exposition.
#[test]
fn gzip_when_accepted() {
    let collector = Collector::start();
    send(&collector, GAUGE);
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let r = client
        .get(collector.url("/metrics"))
        .header("Accept-Encoding", "gzip")
        .send()
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let compressed = r.bytes().unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_string(&mut text)
        .expect("valid gzip");
    assert!(text.contains("queue_depth{job=\"neg\"} 42\n"), "{text}");
    let plain = client.get(collector.url("/metrics")).send().unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
}

/// A series with no new point for `series_ttl` disappears and is counted
/// as expired; active series go back down.
#[test]
fn idle_series_expire_after_ttl() {
    let collector = Collector::start_with(Options {
        exporter_extra: "series_ttl: 2s".into(),
        ..Default::default()
    });
    send(&collector, GAUGE);
    let s = collector.scrape();
    assert_eq!(s.get("queue_depth", &[("job", "neg")]), Some(42.0));
    assert_eq!(
        s.get("streamgate_exporter_prometheus_active_series", &[]),
        Some(2.0)
    );
    // Expiry takes the series out family by family and counts them once
    // at the end: wait for both.
    let s = collector.scrape_until("expiry", |s| {
        s.get("queue_depth", &[("job", "neg")]).is_none()
            && s.get("streamgate_exporter_prometheus_expired_series_total", &[]) == Some(2.0)
    });
    assert_eq!(
        s.get("streamgate_exporter_prometheus_expired_series_total", &[]),
        Some(2.0)
    );
    assert_eq!(
        s.get("streamgate_exporter_prometheus_active_series", &[]),
        Some(0.0)
    );
}

/// `/api/v1/status` reports readiness, listeners and accepted counts.
#[test]
fn status_api_reports_listeners_and_counts() {
    let collector = Collector::start();
    send(&collector, GAUGE);
    let status: serde_json::Value = serde_json::from_slice(
        &http_client()
            .get(collector.url("/api/v1/status"))
            .send()
            .unwrap()
            .bytes()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(status["ready"], true);
    assert_eq!(status["listeners"]["otlp_grpc"], collector.grpc.to_string());
    assert_eq!(status["listeners"]["otlp_http"], collector.http.to_string());
    assert_eq!(status["accepted"]["data_points"], 2);
    assert_eq!(status["active_series"], 2);
    assert_eq!(status["health"]["status"], "ok", "{status}");
    assert_eq!(status["health"]["reasons"], serde_json::json!([]));

    // Malformed input turns the verdict to degraded, with the reason.
    let r = http_client()
        .post(collector.otlp_http_url("/v1/metrics"))
        .header("Content-Type", "application/x-protobuf")
        .body(vec![0xff, 0xff, 0xff])
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let status: serde_json::Value = serde_json::from_slice(
        &http_client()
            .get(collector.url("/api/v1/status"))
            .send()
            .unwrap()
            .bytes()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(status["health"]["status"], "degraded", "{status}");
    assert!(
        status["health"]["reasons"][0]
            .as_str()
            .is_some_and(|r| r.contains("1 requests refused as malformed")),
        "{status}"
    );
}

/// The async runtime's state is on /metrics: workers, alive tasks, the
/// global queue, and per-worker busy time and parks.
#[test]
fn runtime_metrics_are_exported() {
    let collector = Collector::start();
    send(&collector, GAUGE);
    let s = collector.scrape();
    let workers = s
        .get("streamgate_runtime_workers", &[])
        .expect("streamgate_runtime_workers");
    // The ingest runtime's workers (one per CPU), not the admin server's
    // own single-threaded runtime that renders the page.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(workers, cpus as f64);
    assert!(
        s.get("streamgate_runtime_alive_tasks", &[])
            .is_some_and(|n| n >= 1.0)
    );
    assert!(
        s.get("streamgate_runtime_global_queue_depth", &[])
            .is_some()
    );
    assert_eq!(
        s.types["streamgate_runtime_worker_busy_seconds_total"],
        "counter"
    );
    let busy = s.matching("streamgate_runtime_worker_busy_seconds_total", &[]);
    assert_eq!(busy.len() as f64, workers, "one per worker");
    assert_eq!(
        s.matching("streamgate_runtime_worker_parks_total", &[])
            .len() as f64,
        workers
    );
}

/// A large exposition is streamed in chunks (no `Content-Length`), whole,
/// and the gzipped and zstd streams (compressed on several threads)
/// decode to the same series, by flate2 and by curl.
#[test]
fn large_expositions_are_streamed_whole_plain_and_gzipped() {
    let collector = Collector::start();
    // Flat out for 3 s, 4 requests of 10,000 points cover the 40,000
    // series. A run that a loaded machine slowed below that is run again
    // (each run starts at the first series), at most three times.
    let mut summary = serde_json::Value::Null;
    for _ in 0..3 {
        let endpoint = format!("http://{}", collector.grpc);
        (summary, _) = common::loadgen(&[
            "--endpoint",
            &endpoint,
            "--series",
            "40000",
            "--batch",
            "10000",
            "--concurrency",
            "1",
            "--duration",
            "3s",
        ]);
        if summary["items_accepted"].as_u64().unwrap_or(0) >= 40_000 {
            break;
        }
    }
    assert!(
        summary["items_accepted"].as_u64().unwrap_or(0) >= 40_000,
        "{summary}"
    );
    let client = common::http_client();
    let plain = client.get(collector.url("/metrics")).send().unwrap();
    assert_eq!(plain.status(), 200);
    assert!(plain.headers().get("content-length").is_none(), "streamed");
    let plain = plain.text().unwrap();
    assert!(plain.len() > 5_000_000, "{} bytes", plain.len());
    let series = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("loadgen_metric_"))
            .count()
    };
    assert_eq!(series(&plain), 40_000);
    assert!(plain.contains("\nstreamgate_exporter_prometheus_active_series 40001\n"));
    let gz = client
        .get(collector.url("/metrics"))
        .header("Accept-Encoding", "gzip")
        .send()
        .unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&gz.bytes().unwrap()[..]),
        &mut text,
    )
    .expect("one valid gzip stream");
    assert_eq!(series(&text), 40_000);
    assert!(text.ends_with("\n"), "complete");
    // curl decodes them too: zstd when offered (as `curl --compressed`
    // offers it, with gzip, deflate and br), and gzip.
    for (accept, coding) in [("deflate, gzip, br, zstd", "zstd"), ("gzip", "gzip")] {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--compressed", "-D", "-", "-H"])
            .arg(format!("Accept-Encoding: {accept}"))
            .arg(collector.url("/metrics"))
            .output()
            .expect("curl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = String::from_utf8(out.stdout).expect("text");
        let (head, body) = out.split_once("\r\n\r\n").expect("headers, then the body");
        assert!(
            head.to_ascii_lowercase()
                .contains(&format!("content-encoding: {coding}")),
            "{head}"
        );
        assert_eq!(series(body), 40_000, "{coding}");
        assert!(body.ends_with("\n"), "{coding}: complete");
    }
}

/// A scraper that stops reading (a stuck or slow Prometheus), plain or
/// gzipped, never holds up ingest: the exposition waits for the client only between families,
/// with no lock held, so points for every family are still applied and
/// acknowledged while the scrape hangs.
#[test]
fn a_stalled_scrape_does_not_block_ingest() {
    use std::io::Write;
    let collector = Collector::start();
    // Runs the load generator; fails (instead of hanging) if it has not
    // finished 30 s after it was due to.
    let load = |duration: &str| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_streamgate"))
            .args(["loadgen", "--endpoint"])
            .arg(format!("http://{}", collector.grpc))
            .args(["--series", "60000", "--batch", "6000", "--concurrency", "1"])
            .args(["--duration", duration, "--json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("loadgen");
        let deadline = std::time::Instant::now() + Duration::from_secs(35);
        while child.try_wait().expect("wait").is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("ingest is blocked: the load generator did not finish");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut stdout = String::new();
        child
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut stdout)
            .expect("summary");
        let summary: serde_json::Value = serde_json::from_str(&stdout).expect("summary");
        summary
    };
    // Ten requests put every series in; 6 s leaves room for a debug
    // build on a loaded machine (one CI run saw 355 ms per request).
    let first = load("6s");
    assert!(
        first["items_accepted"].as_u64().unwrap_or(0) >= 60_000,
        "{first}"
    );
    // About 12 MB of exposition; the client reads 1 KB of it, then nothing.
    let mut stalled = std::net::TcpStream::connect(collector.admin).expect("connect");
    write!(
        stalled,
        "GET /metrics HTTP/1.1\r\nHost: {}\r\n\r\n",
        collector.admin
    )
    .unwrap();
    let mut head = [0u8; 1024];
    stalled.read_exact(&mut head).expect("the scrape starts");
    // And a gzipped one (rendered and compressed on two threads).
    let mut stalled_gzip = std::net::TcpStream::connect(collector.admin).expect("connect");
    write!(
        stalled_gzip,
        "GET /metrics HTTP/1.1\r\nHost: {}\r\nAccept-Encoding: gzip\r\n\r\n",
        collector.admin
    )
    .unwrap();
    stalled_gzip
        .read_exact(&mut head)
        .expect("the gzipped scrape starts");
    std::thread::sleep(Duration::from_secs(1));
    let during = load("2s");
    let accepted = during["items_accepted"].as_u64().unwrap_or(0);
    assert!(
        accepted >= 6_000,
        "ingest went on during the stalled scrape: {during}"
    );
    assert_eq!(during["items_refused"].as_u64(), Some(0), "{during}");
    let health = http_client()
        .get(collector.url("/readyz"))
        .timeout(Duration::from_secs(5))
        .send()
        .expect("readyz answers");
    assert_eq!(health.status(), 200);
    drop(stalled);
    drop(stalled_gzip);
}

/// Each scrape's render time is counted (without waits for the client),
/// and the last one is shown on its own.
#[test]
fn render_time_is_reported() {
    let collector = Collector::start();
    send(&collector, GAUGE);
    collector.scrape_text();
    let samples = collector.scrape();
    let total = samples
        .get("streamgate_exporter_prometheus_render_seconds_total", &[])
        .expect("render seconds");
    let last = samples
        .get("streamgate_exporter_prometheus_last_render_seconds", &[])
        .expect("last render");
    assert!(total > 0.0 && total < 10.0, "total {total}");
    assert!(last > 0.0 && last <= total, "last {last}, total {total}");
    let later = collector
        .scrape()
        .get("streamgate_exporter_prometheus_render_seconds_total", &[])
        .expect("render seconds");
    assert!(later > total, "{later} after {total}");
}

/// `?name[]=` renders only the named metrics (by family or sample name),
/// received and StreamGate's own alike, in either format.
#[test]
fn name_parameters_select_metrics() {
    let collector = Collector::start();
    send(&collector, GAUGE);
    let get = |query: &str, accept: Option<&str>| {
        let mut request = http_client().get(collector.url(&format!("/metrics?{query}")));
        if let Some(accept) = accept {
            request = request.header("Accept", accept);
        }
        let r = request.send().unwrap();
        assert_eq!(r.status(), 200, "{query}");
        r.text().unwrap()
    };
    let one = get("name[]=queue_depth", None);
    assert!(one.contains("queue_depth{job=\"neg\"} 42\n"), "{one}");
    assert!(!one.contains("net_sent"), "{one}");
    assert!(!one.contains("streamgate_"), "{one}");
    assert!(!one.contains("target_info"), "{one}");

    // URL-encoded brackets, a counter by its sample name, one of our own.
    let two = get(
        "name%5B%5D=net_sent_bytes_total&name[]=streamgate_exporter_prometheus_scrapes_total",
        None,
    );
    assert!(
        two.contains("net_sent_bytes_total{job=\"neg\"} 1024\n"),
        "{two}"
    );
    assert!(
        two.contains("streamgate_exporter_prometheus_scrapes_total "),
        "{two}"
    );
    assert!(!two.contains("queue_depth"), "{two}");

    // OpenMetrics: the counter asked for by its base name, still ending in
    // `# EOF`.
    let om = get(
        "name[]=net_sent_bytes",
        Some("application/openmetrics-text;version=1.0.0"),
    );
    assert!(
        om.contains("net_sent_bytes_total{job=\"neg\"} 1024\n"),
        "{om}"
    );
    assert!(om.contains("net_sent_bytes_created{job=\"neg\"}"), "{om}");
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(!om.contains("queue_depth"), "{om}");

    // No such metric: an empty exposition, not an error.
    assert_eq!(get("name[]=nothing_here", None), "");
    // Other parameters change nothing.
    assert!(get("x=1", None).contains("queue_depth"));
}
