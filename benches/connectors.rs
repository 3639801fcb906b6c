//! Span-metrics throughput: OTLP traces decode alone (the floor) against
//! decode + span metrics into the Prometheus store, with and without the
//! window processor fed every raw duration; and the service graph alone
//! on client/server span pairs, within a request and across requests.
//!
//! Run: `cargo bench --bench connectors`. Throughput is in spans/s.
//! `span_metrics_threads/scaling` and `log_counts_threads/scaling` print
//! the 1 → 2 thread ratio of span metrics (alone and followed by the
//! service graph), of the service graph on whole calls, and of log counts,
//! from two instances of one service (target: at least 1.8).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use streamgate::connectors::logmetrics::{LogMetrics, LogMetricsConfig};
use streamgate::connectors::servicegraph::{ServiceGraph, ServiceGraphConfig};
use streamgate::connectors::spanmetrics::{SpanMetrics, SpanMetricsConfig};
use streamgate::exporters::prometheus::{PrometheusExporter, PrometheusExporterConfig};
use streamgate::model::otlp::common::{AnyValue, InstrumentationScope, KeyValue, any_value};
use streamgate::model::otlp::logs::{LogRecord, ResourceLogs, ScopeLogs};
use streamgate::model::otlp::resource::Resource;
use streamgate::model::otlp::trace::{ResourceSpans, ScopeSpans, Span, Status};
use streamgate::model::{LogsBatch, LogsRequest, TracesBatch, TracesRequest};
use streamgate::pipeline::{LogsConsumer, MetricsConsumer, ObservationConsumer, TracesConsumer};
use streamgate::processors::windows::{WindowProcessor, WindowsConfig};
use streamgate::telemetry::Telemetry;

#[path = "support/allocator.rs"]
mod allocator;
#[path = "support/scaling.rs"]
mod scaling;
use scaling::Work;

fn kv(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

/// 1 000 spans with 10 attributes each over 20 span names, as an SDK
/// batch sends them, from instance `pod-7f9c`.
fn realistic_traces() -> TracesRequest {
    traces_of("pod-7f9c")
}

/// The high half of the trace ids of `instance`'s spans, so each
/// instance's traces are its own.
fn trace_salt(instance: &str) -> u128 {
    instance
        .bytes()
        .fold(0u128, |h, b| h.wrapping_mul(31).wrapping_add(u128::from(b)))
        << 64
}

/// `count` attributes `app.attribute.<a>` of item `i`, with values cycling
/// over 13.
fn app_attributes(i: u64, count: u64) -> Vec<KeyValue> {
    (0..count)
        .map(|a| {
            kv(
                &format!("app.attribute.{a}"),
                format!("value-{}", (i + a) % 13),
            )
        })
        .collect()
}

fn traces_of(instance: &str) -> TracesRequest {
    // Each instance's traces are its own.
    let salt = trace_salt(instance);
    let spans = (0..1000u64)
        .map(|i| Span {
            trace_id: (salt | (i as u128 + 1)).to_be_bytes().to_vec(),
            span_id: (i + 1).to_be_bytes().to_vec(),
            parent_span_id: (i / 2 + 1).to_be_bytes().to_vec(),
            name: format!("GET /api/v1/items/{}", i % 20),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000 + i * 1000,
            end_time_unix_nano: 1_700_000_000_000_000_000 + i * 1000 + (i % 97 + 1) * 1_000_000,
            attributes: app_attributes(i, 10),
            status: Some(Status {
                code: if i % 50 == 0 { 2 } else { 0 },
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    TracesRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "checkout".into()),
                    kv("service.namespace", "shop".into()),
                    kv("service.instance.id", instance.into()),
                    kv("host.name", "node-3".into()),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "io.opentelemetry.http".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// 500 calls from one instance of `frontend` to `checkout`, whole: each
/// trace's CLIENT span (frontend) and the SERVER span it called
/// (checkout), in one request, as a gateway forwarding whole traces sends
/// them. Every pair meets within the request.
fn calls_of(instance: &str) -> TracesRequest {
    let salt = trace_salt(instance);
    let side = |service: &str, kind: i32, server: bool| ResourceSpans {
        resource: Some(Resource {
            attributes: vec![
                kv("service.name", service.into()),
                kv("service.instance.id", instance.into()),
            ],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans: (0..500u64)
                .map(|i| Span {
                    trace_id: (salt | (i as u128 + 1)).to_be_bytes().to_vec(),
                    span_id: (2 * i + 1 + u64::from(server)).to_be_bytes().to_vec(),
                    parent_span_id: if server {
                        (2 * i + 1).to_be_bytes().to_vec()
                    } else {
                        Vec::new()
                    },
                    name: format!("GET /api/v1/items/{}", i % 20),
                    kind,
                    start_time_unix_nano: 1_700_000_000_000_000_000 + i * 1000,
                    end_time_unix_nano: 1_700_000_000_000_000_000
                        + i * 1000
                        + (i % 97 + 1) * 1_000_000,
                    attributes: app_attributes(i, 5),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    TracesRequest {
        resource_spans: vec![side("frontend", 3, false), side("checkout", 2, true)],
    }
}

fn span_metrics(c: &mut Criterion) {
    let bytes = realistic_traces().encode_to_vec();
    let shared = bytes::Bytes::from(bytes.clone());
    let telemetry = Arc::new(Telemetry::new());
    let mut group = c.benchmark_group("span_metrics");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("decode_only", |b| {
        b.iter(|| black_box(TracesRequest::decode(black_box(&bytes[..])).unwrap()))
    });
    group.bench_function("validate_and_index", |b| {
        b.iter(|| black_box(TracesBatch::decode(black_box(shared.clone())).unwrap()))
    });

    let store = Arc::new(PrometheusExporter::new(
        PrometheusExporterConfig::default(),
        telemetry.clone(),
    ));
    let exporter: Arc<dyn MetricsConsumer> = store.clone();
    let plain = SpanMetrics::new(
        SpanMetricsConfig::default(),
        exporter.clone(),
        None,
        telemetry.clone(),
    );
    group.bench_function("decode_spanmetrics_store", |b| {
        b.iter(|| {
            let batch = TracesBatch::decode(black_box(shared.clone())).unwrap();
            black_box(plain.consume_traces(&batch).unwrap())
        })
    });

    let windows = Arc::new(WindowProcessor::new(
        WindowsConfig::default(),
        exporter,
        store,
        None,
        telemetry.clone(),
    ));
    let observer: Arc<dyn ObservationConsumer> = windows.clone();
    let with_windows = SpanMetrics::new(
        SpanMetricsConfig::default(),
        windows,
        Some(observer),
        telemetry,
    );
    group.bench_function("decode_spanmetrics_windows_store", |b| {
        b.iter(|| {
            let batch = TracesBatch::decode(black_box(shared.clone())).unwrap();
            black_box(with_windows.consume_traces(&batch).unwrap())
        })
    });
    group.finish();
}

/// Span metrics from 1 and from 2 threads at once, each thread sending
/// its own instance's spans (as two SDK processes of one service do),
/// beside prost decode of the same payloads (what the cores allow). With
/// `OWN_CONNECTOR` set, each thread has a connector of its own (what the
/// scaling would be with nothing shared).
fn threads(c: &mut Criterion) {
    let payloads: Vec<bytes::Bytes> = (0..2)
        .map(|t| bytes::Bytes::from(traces_of(&format!("pod-{t}")).encode_to_vec()))
        .collect();
    let telemetry = Arc::new(Telemetry::new());
    let exporter: Arc<dyn MetricsConsumer> = Arc::new(PrometheusExporter::new(
        PrometheusExporterConfig::default(),
        telemetry.clone(),
    ));
    let connectors: Vec<SpanMetrics> = (0..2)
        .map(|_| {
            SpanMetrics::new(
                SpanMetricsConfig::default(),
                exporter.clone(),
                None,
                telemetry.clone(),
            )
        })
        .collect();
    let own = std::env::var_os("OWN_CONNECTOR").is_some();
    let connector_for = |bytes: &bytes::Bytes| {
        let second = own && bytes.as_ptr() == payloads[1].as_ptr();
        &connectors[usize::from(second)]
    };
    for bytes in &payloads {
        connector_for(bytes)
            .consume_traces(&TracesBatch::decode(bytes.clone()).unwrap())
            .unwrap();
    }
    let prost = |bytes: &bytes::Bytes| {
        black_box(TracesRequest::decode(black_box(&bytes[..])).unwrap());
    };
    let spans = |bytes: &bytes::Bytes| {
        let batch = TracesBatch::decode(black_box(bytes.clone())).unwrap();
        black_box(connector_for(bytes).consume_traces(&batch).unwrap());
    };
    // The default traces pipeline: span metrics, then the service graph
    // (every span here is a SERVER half waiting for its client).
    let graph = ServiceGraph::new(
        ServiceGraphConfig::default(),
        exporter.clone(),
        Arc::new(Telemetry::new()),
    );
    let spans_and_graph = |bytes: &bytes::Bytes| {
        let batch = TracesBatch::decode(black_box(bytes.clone())).unwrap();
        black_box(connector_for(bytes).consume_traces(&batch).unwrap());
        black_box(graph.consume_traces(&batch).unwrap());
    };
    // The service graph alone on whole calls (each thread its own
    // instance's traces): every span pairs within its request.
    let calls: Vec<bytes::Bytes> = (0..2)
        .map(|t| bytes::Bytes::from(calls_of(&format!("pod-{t}")).encode_to_vec()))
        .collect();
    let pairing = ServiceGraph::new(
        ServiceGraphConfig::default(),
        exporter.clone(),
        Arc::new(Telemetry::new()),
    );
    let graph_pairs = |bytes: &bytes::Bytes| {
        let second = bytes.as_ptr() == payloads[1].as_ptr();
        let batch = TracesBatch::decode(black_box(calls[usize::from(second)].clone())).unwrap();
        black_box(pairing.consume_traces(&batch).unwrap());
    };
    let cases: [(&str, Work<'_>); 4] = [
        ("prost_decode", &prost),
        ("decode_spanmetrics", &spans),
        ("decode_spanmetrics_servicegraph", &spans_and_graph),
        ("decode_servicegraph_whole_calls", &graph_pairs),
    ];
    scaling::bench_threads(c, "span_metrics_threads", 1000, &payloads, &cases);
}

/// 1,000 log records with 5 attributes and a body each, severities from
/// DEBUG to ERROR, from one instance of a service.
fn logs_of(instance: &str) -> LogsRequest {
    let records = (0..1000u64)
        .map(|i| LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000 + i * 1000,
            severity_number: [5, 9, 9, 9, 13, 17][(i % 6) as usize],
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!(
                    "handled request {i} for /api/v1/items/{}",
                    i % 20
                ))),
            }),
            attributes: app_attributes(i, 5),
            ..Default::default()
        })
        .collect();
    LogsRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "checkout".into()),
                    kv("service.instance.id", instance.into()),
                ],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Log counts from 1 and from 2 threads at once, each thread sending its
/// own instance's records, beside prost decode of the same payloads.
fn log_threads(c: &mut Criterion) {
    let payloads: Vec<bytes::Bytes> = (0..2)
        .map(|t| bytes::Bytes::from(logs_of(&format!("pod-{t}")).encode_to_vec()))
        .collect();
    let telemetry = Arc::new(Telemetry::new());
    let exporter: Arc<dyn MetricsConsumer> = Arc::new(PrometheusExporter::new(
        PrometheusExporterConfig::default(),
        telemetry.clone(),
    ));
    let connector = LogMetrics::new(LogMetricsConfig::default(), exporter, telemetry);
    let prost = |bytes: &bytes::Bytes| {
        black_box(LogsRequest::decode(black_box(&bytes[..])).unwrap());
    };
    let counts = |bytes: &bytes::Bytes| {
        let batch = LogsBatch::decode(black_box(bytes.clone())).unwrap();
        black_box(connector.consume_logs(&batch).unwrap());
    };
    let cases: [(&str, Work<'_>); 2] = [("prost_decode", &prost), ("decode_logmetrics", &counts)];
    scaling::bench_threads(c, "log_counts_threads", 1000, &payloads, &cases);
}

/// The service graph alone on client/server span pairs (the load
/// generator's payloads: 1,000 spans a request, 2 attributes each, 5
/// services, each CLIENT span's SERVER child in the next service): pairs
/// within one request, and pairs split across consecutive requests (each
/// server half arrives a request after its client), beside prost decode
/// of the same requests. The clock moves 10 ms a request and halves wait
/// 1 s, so the halves left at the end of the cycle of requests expire as
/// they would in a steady stream.
fn service_graph(c: &mut Criterion) {
    use streamgate::config::types::HumanDuration;
    use streamgate::loadgen::payload::{Shape, SpanShape, traces};
    const REQUESTS: u64 = 64;
    const T0: u64 = 1_700_000_000_000_000_000;
    const STEP_NS: u64 = 10_000_000;
    let telemetry = Arc::new(Telemetry::new());
    let exporter: Arc<dyn MetricsConsumer> = Arc::new(PrometheusExporter::new(
        PrometheusExporterConfig::default(),
        telemetry.clone(),
    ));
    let mut group = c.benchmark_group("service_graph");
    group.throughput(Throughput::Elements(1000));
    for (name, spans) in [
        ("pairs", SpanShape::Pairs),
        ("pairs_across", SpanShape::PairsAcross),
    ] {
        let shape = Shape {
            series: 10_000,
            batch: 1000,
            attributes: 2,
            spans,
        };
        let payloads: Vec<bytes::Bytes> = (0..REQUESTS)
            .map(|i| bytes::Bytes::from(traces(&shape, i, T0).encode_to_vec()))
            .collect();
        group.bench_function(format!("{name}/decode_only"), |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                let bytes = &payloads[i % payloads.len()];
                black_box(TracesRequest::decode(black_box(&bytes[..])).unwrap())
            })
        });
        group.bench_function(format!("{name}/validate_and_index"), |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                let bytes = &payloads[i % payloads.len()];
                black_box(TracesBatch::decode(black_box(bytes.clone())).unwrap())
            })
        });
        let graph = ServiceGraph::new(
            ServiceGraphConfig {
                max_items: 1_000_000,
                wait: HumanDuration::secs(1),
                ..Default::default()
            },
            exporter.clone(),
            telemetry.clone(),
        );
        group.bench_function(format!("{name}/decode_servicegraph"), |b| {
            let mut i = 0u64;
            b.iter(|| {
                i += 1;
                let bytes = &payloads[(i % REQUESTS) as usize];
                let batch = TracesBatch::decode(black_box(bytes.clone())).unwrap();
                graph.consume_batch_at(&batch, T0 + i * STEP_NS);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, span_metrics, service_graph, threads, log_threads);
criterion_main!(benches);
