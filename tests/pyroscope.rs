//! Continuous profiling pushed to a Pyroscope-compatible server. There is
//! no Pyroscope package to install, so a stand-in server here checks each
//! request strictly against Pyroscope's documented ingest API: `POST
//! /ingest` with `name=<app>.cpu{labels}` (CPU, with `sampleRate`) or
//! `name=<app>.inuse_space{labels}` (heap), integer `from` < `until`,
//! `format=pprof`, the tenant and auth headers, and a multipart body whose
//! `profile` field is a gzipped pprof that decodes with the sample types
//! of its kind. An unreachable server is counted, never blocking.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Collector, Options, free_port, http_client};
use pprof::protos::Message as _;

/// One received request: method, path, query, headers (lower-case), body.
struct Received {
    method: String,
    path: String,
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn stand_in() -> (String, Arc<Mutex<Vec<Received>>>) {
    stand_in_on(TcpListener::bind("127.0.0.1:0").unwrap())
}

fn stand_in_on(listener: TcpListener) -> (String, Arc<Mutex<Vec<Received>>>) {
    let url = format!("http://{}", listener.local_addr().unwrap());
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let sink = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap_or("").to_string();
            let target = parts.next().unwrap_or("").to_string();
            let (path, query) = target.split_once('?').unwrap_or((&target, ""));
            let query = query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), decode(v)))
                .collect();
            let mut headers = HashMap::new();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                }
            }
            let length = headers
                .get("content-length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            sink.lock().unwrap().push(Received {
                method,
                path: path.to_string(),
                query,
                headers,
                body,
            });
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (url, got)
}

/// The `profile` part of a multipart/form-data body.
fn profile_part(content_type: &str, body: &[u8]) -> Vec<u8> {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .expect("a boundary");
    let delimiter = format!("--{boundary}");
    let text = body;
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    let start = find(text, delimiter.as_bytes(), 0).expect("first boundary");
    let headers_end = find(text, b"\r\n\r\n", start).expect("part headers");
    let headers = std::str::from_utf8(&text[start..headers_end]).unwrap();
    assert!(
        headers.contains("Content-Disposition: form-data; name=\"profile\""),
        "{headers}"
    );
    let data_start = headers_end + 4;
    let end =
        find(text, format!("\r\n{delimiter}--").as_bytes(), data_start).expect("closing boundary");
    text[data_start..end].to_vec()
}

#[test]
fn profiles_are_pushed_as_pyroscope_documents() {
    let (url, got) = stand_in();
    let collector = Collector::start_with(Options {
        exporters_extra: format!(
            "pprof:\n  pyroscope:\n    url: {url}\n    upload_interval: 1s\n    heap_interval: 1s\n    tenant_id: acme\n    bearer_token: s3cret\n    labels: {{env: test}}\n"
        ),
        ..Default::default()
    });
    let is_cpu = |r: &Received| r.query.get("name").is_some_and(|n| n.contains(".cpu"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        {
            let got = got.lock().unwrap();
            let cpu = got.iter().filter(|r| is_cpu(r)).count();
            if (cpu >= 2 && got.len() > cpu) || Instant::now() > deadline {
                break;
            }
        }
        let _ = http_client().get(collector.url("/metrics")).send();
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = got.lock().unwrap();
    let (cpu, heap): (Vec<&Received>, Vec<&Received>) = got.iter().partition(|r| is_cpu(r));
    assert!(
        cpu.len() >= 2 && !heap.is_empty(),
        "two CPU windows and a heap profile pushed within 20 s, got {} and {}",
        cpu.len(),
        heap.len()
    );
    for r in got.iter() {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/ingest");
        assert_eq!(r.query["format"], "pprof");
        let from: u64 = r.query["from"].parse().expect("from in seconds");
        let until: u64 = r.query["until"].parse().expect("until in seconds");
        assert!(from < until && until - from <= 3, "{from}..{until}");
        assert_eq!(r.headers["x-scope-orgid"], "acme");
        assert_eq!(r.headers["authorization"], "Bearer s3cret");
        let ct = &r.headers["content-type"];
        assert!(ct.starts_with("multipart/form-data"), "{ct}");
        let part = profile_part(ct, &r.body);
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&part[..])
            .read_to_end(&mut raw)
            .expect("gzipped");
        let profile = pprof::protos::Profile::decode(&raw[..]).expect("a pprof profile");
        assert!(!profile.sample_type.is_empty());
        let strings = &profile.string_table;
        let kind = &strings[profile.sample_type[0].ty as usize];
        let unit = &strings[profile.sample_type[0].unit as usize];
        if is_cpu(r) {
            assert_eq!(r.query["name"], "streamgate.cpu{env=test}");
            assert_eq!(r.query["sampleRate"], "100");
            assert!(["cpu", "samples"].contains(&kind.as_str()), "{kind}");
            assert!(profile.period > 0);
        } else {
            assert_eq!(r.query["name"], "streamgate.inuse_space{env=test}");
            assert!(!r.query.contains_key("sampleRate"), "no rate for heap");
            assert_eq!((kind.as_str(), unit.as_str()), ("inuse_space", "bytes"));
            assert!(!profile.sample.is_empty(), "live allocations sampled");
            assert!(
                profile.sample.iter().all(|s| s.value[0] > 0),
                "bytes per stack"
            );
        }
    }
    // Consecutive windows.
    let a: u64 = cpu[0].query["until"].parse().unwrap();
    let b: u64 = cpu[1].query["from"].parse().unwrap();
    assert!(
        b >= a.saturating_sub(1),
        "windows follow each other: {a} then {b}"
    );
    // A push is counted once its answer is read, a moment after the
    // server has it.
    collector.scrape_until("3 pushes counted as sent", |s| {
        s.get("streamgate_profiling_pushes_total", &[("outcome", "sent")])
            .is_some_and(|n| n >= 3.0)
    });
}

#[test]
fn unreachable_pyroscope_is_counted_and_ingest_unaffected() {
    let port = free_port();
    let collector = Collector::start_with(Options {
        exporters_extra: format!(
            "pprof:\n  pyroscope:\n    url: http://127.0.0.1:{port}\n    upload_interval: 1s\n    attempts: 1\n    timeout: 500ms\n"
        ),
        ..Default::default()
    });
    let s = collector.scrape_until("a failed profile push", |s| {
        s.get(
            "streamgate_profiling_pushes_total",
            &[("outcome", "failed")],
        )
        .is_some_and(|n| n >= 1.0)
    });
    assert_eq!(
        s.get("streamgate_profiling_pushes_total", &[("outcome", "sent")]),
        Some(0.0)
    );
    let r = http_client()
        .post(collector.otlp_http_url("/v1/metrics"))
        .header("Content-Type", "application/json")
        .body(r#"{"resourceMetrics":[]}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Pyroscope down for a while, then back: pushes fail meanwhile (bounded
/// retries and queue, counted), ingest is unaffected, and pushing resumes
/// on its own once the server answers.
#[test]
fn pushing_resumes_after_a_pyroscope_outage() {
    let port = free_port();
    let collector = Collector::start_with(Options {
        exporters_extra: format!(
            "pprof:\n  pyroscope:\n    url: http://127.0.0.1:{port}\n    upload_interval: 1s\n    heap_interval: 1s\n    attempts: 2\n    timeout: 500ms\n"
        ),
        ..Default::default()
    });
    collector.scrape_until("failed pushes during the outage", |s| {
        s.get(
            "streamgate_profiling_pushes_total",
            &[("outcome", "failed")],
        )
        .is_some_and(|n| n >= 2.0)
    });
    let sent = Instant::now();
    let r = http_client()
        .post(collector.otlp_http_url("/v1/metrics"))
        .header("Content-Type", "application/json")
        .body(r#"{"resourceMetrics":[]}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(sent.elapsed() < Duration::from_secs(1));

    let (_, got) = stand_in_on(TcpListener::bind(("127.0.0.1", port)).expect("the port again"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no push after the outage");
        std::thread::sleep(Duration::from_millis(100));
    }
    collector.scrape_until("a push counted as sent", |s| {
        s.get("streamgate_profiling_pushes_total", &[("outcome", "sent")])
            .is_some_and(|n| n >= 1.0)
    });
}

/// A stop during a long profile window is not held up by it: the window
/// ends at SIGTERM, is pushed shortened, and the process exits 0 well
/// within `shutdown_timeout` (it used to wait for the window's end, then
/// exit 1 as if requests were left in flight).
#[test]
fn a_stop_ends_the_window_and_pushes_it() {
    let (url, got) = stand_in();
    let mut collector = Collector::start_with(Options {
        exporters_extra: format!(
            "pprof:\n  pyroscope:\n    url: {url}\n    upload_interval: 60s\n    heap_interval: 0s\n"
        ),
        ..Default::default()
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        got.lock().unwrap().is_empty(),
        "nothing before the window ends"
    );
    let stopped = Instant::now();
    let status = collector.terminate();
    let took = stopped.elapsed();
    assert!(status.success(), "{status:?}: {}", collector.logs());
    assert!(took < Duration::from_secs(10), "took {took:?} to stop");
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 1, "the shortened window pushed");
    let r = &got[0];
    assert!(r.query["name"].contains(".cpu"), "{:?}", r.query);
    let from: u64 = r.query["from"].parse().expect("from");
    let until: u64 = r.query["until"].parse().expect("until");
    assert!(until > from && until - from <= 8, "{from}..{until}");
    let part = profile_part(&r.headers["content-type"], &r.body);
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(&part[..])
        .read_to_end(&mut raw)
        .expect("gzipped");
    pprof::protos::Profile::decode(&raw[..]).expect("a pprof profile");
}
