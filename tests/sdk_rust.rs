//! Black-box tests with the real Rust OpenTelemetry SDK as the sender
//! (`opentelemetry_sdk` with the `opentelemetry-otlp` exporters).
//!
//! Metrics of every instrument kind sent over OTLP/gRPC, OTLP/HTTP protobuf
//! and OTLP/HTTP JSON must come out of `/metrics` with the exact names,
//! labels, values and types the OTel→Prometheus rules
//! (prometheus/otlptranslator) give; delta temporality must be accumulated
//! into cumulative totals; spans and log records must be counted per signal
//! and transport.
//!
//! The tonic (gRPC) exporters need a Tokio runtime: their channel is created
//! inside a multi-thread runtime's context, whose workers then drive the
//! connection while the SDK's own reader/processor threads block on exports.
//! The HTTP exporters use the reqwest blocking client and no runtime.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Collector, Samples};
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::{
    MeterProvider as _, ObservableCounter, ObservableGauge, ObservableUpDownCounter,
};
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{
    Compression, LogExporter, MetricExporter, Protocol, RetryPolicy, SpanExporter,
    WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::{
    Aggregation, Instrument, PeriodicReader, SdkMeterProvider, Stream, Temporality,
};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

const ACCEPTED: &str = "streamgate_receiver_accepted_items_total";
const REFUSED: &str = "streamgate_receiver_refused_items_total";
const OUT_OF_ORDER: &str = "streamgate_exporter_prometheus_out_of_order_points_total";

/// The three OTLP transports of the SDK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Grpc,
    HttpProto,
    HttpJson,
}

impl Kind {
    /// The `transport` label of StreamGate's receiver self-metrics.
    fn label(self) -> &'static str {
        match self {
            Kind::Grpc => "grpc",
            Kind::HttpProto | Kind::HttpJson => "http",
        }
    }
}

/// Builds SDK exporters of one transport, keeping alive the Tokio runtime
/// the tonic channels run on (gRPC only).
struct Transport {
    kind: Kind,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Transport {
    fn new(kind: Kind) -> Self {
        let runtime = (kind == Kind::Grpc).then(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime")
        });
        Self { kind, runtime }
    }

    /// Runs `build` inside the runtime's context when there is one (tonic's
    /// lazy channel spawns its worker onto the current runtime).
    fn build<T>(&self, build: impl FnOnce() -> T) -> T {
        let _guard = self.runtime.as_ref().map(|rt| rt.enter());
        build()
    }

    fn http_protocol(&self) -> Protocol {
        match self.kind {
            Kind::HttpJson => Protocol::HttpJson,
            _ => Protocol::HttpBinary,
        }
    }

    fn metric_exporter(&self, c: &Collector, temporality: Temporality) -> MetricExporter {
        self.build(|| match self.kind {
            Kind::Grpc => MetricExporter::builder()
                .with_tonic()
                .with_endpoint(c.grpc_url())
                .with_timeout(Duration::from_secs(10))
                .with_retry_policy(RetryPolicy::disabled())
                .with_temporality(temporality)
                .build(),
            Kind::HttpProto | Kind::HttpJson => MetricExporter::builder()
                .with_http()
                .with_protocol(self.http_protocol())
                .with_endpoint(c.otlp_http_url("/v1/metrics"))
                .with_timeout(Duration::from_secs(10))
                .with_retry_policy(RetryPolicy::disabled())
                .with_temporality(temporality)
                .build(),
        })
        .expect("metric exporter")
    }

    fn span_exporter(&self, c: &Collector) -> SpanExporter {
        self.build(|| match self.kind {
            Kind::Grpc => SpanExporter::builder()
                .with_tonic()
                .with_endpoint(c.grpc_url())
                .with_timeout(Duration::from_secs(10))
                .with_retry_policy(RetryPolicy::disabled())
                .build(),
            Kind::HttpProto | Kind::HttpJson => SpanExporter::builder()
                .with_http()
                .with_protocol(self.http_protocol())
                .with_endpoint(c.otlp_http_url("/v1/traces"))
                .with_timeout(Duration::from_secs(10))
                .with_retry_policy(RetryPolicy::disabled())
                .build(),
        })
        .expect("span exporter")
    }

    /// Log exporter; the gRPC one sends gzip-compressed requests.
    fn log_exporter(&self, c: &Collector) -> LogExporter {
        self.build(|| match self.kind {
            Kind::Grpc => LogExporter::builder()
                .with_tonic()
                .with_endpoint(c.grpc_url())
                .with_compression(Compression::Gzip)
                .with_timeout(Duration::from_secs(10))
                .with_retry_policy(RetryPolicy::disabled())
                .build(),
            Kind::HttpProto | Kind::HttpJson => LogExporter::builder()
                .with_http()
                .with_protocol(self.http_protocol())
                .with_endpoint(c.otlp_http_url("/v1/logs"))
                .with_timeout(Duration::from_secs(10))
                .with_retry_policy(RetryPolicy::disabled())
                .build(),
        })
        .expect("log exporter")
    }
}

/// Resource with exactly the three identifying attributes and one more
/// (no SDK detectors, so `target_info` is fully known).
fn resource(name: &str, namespace: &str, instance: &str, environment: &str) -> Resource {
    Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", name.to_string()),
            KeyValue::new("service.namespace", namespace.to_string()),
            KeyValue::new("service.instance.id", instance.to_string()),
            KeyValue::new("deployment.environment.name", environment.to_string()),
        ])
        .build()
}

/// A meter provider whose only reader exports on flush/shutdown (the
/// periodic interval is far beyond any test's run time).
fn meter_provider(exporter: MetricExporter, resource: Resource) -> SdkMeterProvider {
    let reader = PeriodicReader::builder(exporter)
        .with_interval(Duration::from_secs(3600))
        .build();
    SdkMeterProvider::builder()
        .with_resource(resource)
        .with_reader(reader)
        .with_view(|i: &Instrument| {
            (i.name() == "http.request.body.size").then(|| {
                Stream::builder()
                    .with_aggregation(Aggregation::ExplicitBucketHistogram {
                        boundaries: vec![100.0, 1000.0],
                        record_min_max: false,
                    })
                    .build()
                    .expect("valid stream")
            })
        })
        .build()
}

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("streamgate.sdk-test")
        .with_version("1.2.3")
        .with_attributes([KeyValue::new("library.language", "rust")])
        .build()
}

/// `(name, value)` pairs as the `&[(&str, &str)]` the harness takes.
fn pairs(labels: &[(String, String)]) -> Vec<(&str, &str)> {
    labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// The labels every series of the test scope carries, plus `extra`.
fn series_labels(job: &str, instance: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = [
        ("job", job),
        ("instance", instance),
        ("otel_scope_name", "streamgate.sdk-test"),
        ("otel_scope_version", "1.2.3"),
        ("otel_scope_library_language", "rust"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    labels.sort();
    labels
}

/// Asserts that `name` with exactly `labels` has `want`.
fn assert_sample(s: &Samples, name: &str, labels: &[(String, String)], want: f64) {
    let got = s.get(name, &pairs(labels));
    assert_eq!(
        got,
        Some(want),
        "{}: want {want}; scrape:\n{}",
        common::key(name, &pairs(labels)),
        s.text
    );
}

/// Asserts a classic histogram: cumulative `(le, count)` buckets (ending
/// with `+Inf`), `_sum`, `_count`, and that no other bucket exists.
fn assert_histogram(
    s: &Samples,
    name: &str,
    labels: &[(String, String)],
    buckets: &[(&str, f64)],
    sum: f64,
    count: f64,
) {
    for (le, want) in buckets {
        let mut with_le = labels.to_vec();
        with_le.push(("le".to_string(), le.to_string()));
        assert_sample(s, &format!("{name}_bucket"), &with_le, *want);
    }
    assert_eq!(
        s.matching(&format!("{name}_bucket"), &pairs(labels)).len(),
        buckets.len(),
        "{name}: unexpected buckets; scrape:\n{}",
        s.text
    );
    assert_sample(s, &format!("{name}_sum"), labels, sum);
    assert_sample(s, &format!("{name}_count"), labels, count);
}

fn accepted(s: &Samples, signal: &str, transport: &str) -> Option<f64> {
    s.get(ACCEPTED, &[("signal", signal), ("transport", transport)])
}

/// Sum of every `streamgate_receiver_refused_items_total` series.
fn refused_total(s: &Samples) -> f64 {
    s.matching(REFUSED, &[]).iter().map(|(_, v)| v).sum()
}

/// Family names of translated (non-self) metrics, from the `# TYPE` lines:
/// without the window families the windows processor derives from
/// duration histograms on its own 10 s clock.
fn translated_families(s: &Samples) -> BTreeSet<String> {
    s.types
        .keys()
        .filter(|name| !name.starts_with("streamgate_") && !name.contains("_window_"))
        .cloned()
        .collect()
}

/// The observable instruments of [`record_every_instrument`].
type Observables = (
    ObservableCounter<u64>,
    ObservableUpDownCounter<i64>,
    ObservableGauge<f64>,
);

/// Data points one round of [`record_every_instrument`] exports.
const POINTS_PER_EXPORT: f64 = 11.0;

/// Creates every instrument kind on `provider` and records the fixed
/// measurements [`assert_every_instrument`] expects. Returns the
/// observable instruments, kept alive until the last export.
fn record_every_instrument(provider: &SdkMeterProvider) -> Observables {
    let meter = provider.meter_with_scope(scope());
    let get = [
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new("1st", "yes"),
        KeyValue::new("http.response.status_code", 200_i64),
    ];
    let post = [
        KeyValue::new("http.request.method", "POST"),
        KeyValue::new("1st", "no"),
        KeyValue::new("http.response.status_code", 500_i64),
    ];

    let requests = meter
        .u64_counter("http.server.requests")
        .with_unit("{request}")
        .with_description("Requests served.")
        .build();
    requests.add(3, &get);
    requests.add(4, &get);
    requests.add(2, &post);

    let cpu = meter
        .f64_counter("process.cpu.time")
        .with_unit("s")
        .with_description("CPU time used.")
        .build();
    let user = [
        KeyValue::new("cpu.mode", "user"),
        KeyValue::new("cache.hit", true),
    ];
    cpu.add(1.5, &user);
    cpu.add(0.25, &user);

    let memory = meter
        .i64_up_down_counter("process.memory.usage")
        .with_unit("By")
        .with_description("Memory in use.")
        .build();
    memory.add(4096, &[KeyValue::new("memory.type", "heap")]);
    memory.add(-1024, &[KeyValue::new("memory.type", "heap")]);

    let duration = meter
        .f64_histogram("http.server.request.duration")
        .with_unit("s")
        .with_description("Request duration.")
        .with_boundaries(vec![0.1, 0.5, 1.0])
        .build();
    for v in [0.0625, 0.25, 0.25, 0.75, 2.0] {
        duration.record(v, &get[..1]);
    }

    // Boundaries from the provider's view.
    let body = meter
        .u64_histogram("http.request.body.size")
        .with_unit("By")
        .with_description("Request body size.")
        .build();
    for v in [50, 500, 5000] {
        body.record(v, &[]);
    }

    let threads = meter
        .u64_gauge("worker.threads")
        .with_unit("{thread}")
        .with_description("Worker threads.")
        .build();
    threads.record(8, &[]);

    let utilization = meter
        .f64_gauge("system.cpu.utilization")
        .with_unit("1")
        .with_description("CPU utilization.")
        .build();
    utilization.record(0.9, &[KeyValue::new("cpu.logical_number", 0_i64)]);
    utilization.record(0.5, &[KeyValue::new("cpu.logical_number", 0_i64)]);

    let network = meter
        .u64_observable_counter("process.network.io")
        .with_unit("By")
        .with_description("Bytes sent.")
        .with_callback(|o| o.observe(1024, &[KeyValue::new("network.io.direction", "transmit")]))
        .build();
    let balance = meter
        .i64_observable_up_down_counter("pool.balance")
        .with_unit("1")
        .with_description("Pool balance.")
        .with_callback(|o| o.observe(-3, &[]))
        .build();
    let uptime = meter
        .f64_observable_gauge("process.uptime")
        .with_unit("s")
        .with_description("Process uptime.")
        .with_callback(|o| o.observe(42.5, &[]))
        .build();

    (network, balance, uptime)
}

/// Asserts the exact translation of what [`record_every_instrument`] sent.
fn assert_every_instrument(s: &Samples, job: &str, instance: &str, environment: &str) {
    let families: BTreeSet<String> = [
        "http_request_body_size_bytes",
        "http_server_request_duration_seconds",
        "http_server_requests_total",
        "pool_balance",
        "process_cpu_time_seconds_total",
        "process_memory_usage_bytes",
        "process_network_io_bytes_total",
        "process_uptime_seconds",
        "system_cpu_utilization_ratio",
        "target_info",
        "worker_threads",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(translated_families(s), families, "scrape:\n{}", s.text);

    let types = [
        ("http_request_body_size_bytes", "histogram"),
        ("http_server_request_duration_seconds", "histogram"),
        ("http_server_requests_total", "counter"),
        ("pool_balance", "gauge"),
        ("process_cpu_time_seconds_total", "counter"),
        ("process_memory_usage_bytes", "gauge"),
        ("process_network_io_bytes_total", "counter"),
        ("process_uptime_seconds", "gauge"),
        ("system_cpu_utilization_ratio", "gauge"),
        ("target_info", "gauge"),
        ("worker_threads", "gauge"),
    ];
    for (name, kind) in types {
        assert_eq!(
            s.types.get(name).map(String::as_str),
            Some(kind),
            "# TYPE {name}"
        );
    }
    let help = [
        ("http_request_body_size_bytes", "Request body size."),
        ("http_server_request_duration_seconds", "Request duration."),
        ("http_server_requests_total", "Requests served."),
        ("pool_balance", "Pool balance."),
        ("process_cpu_time_seconds_total", "CPU time used."),
        ("process_memory_usage_bytes", "Memory in use."),
        ("process_network_io_bytes_total", "Bytes sent."),
        ("process_uptime_seconds", "Process uptime."),
        ("system_cpu_utilization_ratio", "CPU utilization."),
        ("target_info", "Target metadata"),
        ("worker_threads", "Worker threads."),
    ];
    for (name, text) in help {
        assert_eq!(
            s.help.get(name).map(String::as_str),
            Some(text),
            "# HELP {name}"
        );
    }

    let get = [
        ("http_request_method", "GET"),
        ("key_1st", "yes"),
        ("http_response_status_code", "200"),
    ];
    let post = [
        ("http_request_method", "POST"),
        ("key_1st", "no"),
        ("http_response_status_code", "500"),
    ];
    let none = series_labels(job, instance, &[]);

    assert_sample(
        s,
        "http_server_requests_total",
        &series_labels(job, instance, &get),
        7.0,
    );
    assert_sample(
        s,
        "http_server_requests_total",
        &series_labels(job, instance, &post),
        2.0,
    );
    assert_eq!(s.matching("http_server_requests_total", &[]).len(), 2);

    let user = series_labels(
        job,
        instance,
        &[("cpu_mode", "user"), ("cache_hit", "true")],
    );
    assert_sample(s, "process_cpu_time_seconds_total", &user, 1.75);

    let heap = series_labels(job, instance, &[("memory_type", "heap")]);
    assert_sample(s, "process_memory_usage_bytes", &heap, 3072.0);

    assert_histogram(
        s,
        "http_server_request_duration_seconds",
        &series_labels(job, instance, &get[..1]),
        &[("0.1", 1.0), ("0.5", 3.0), ("1", 4.0), ("+Inf", 5.0)],
        3.3125,
        5.0,
    );
    assert_histogram(
        s,
        "http_request_body_size_bytes",
        &none,
        &[("100", 1.0), ("1000", 2.0), ("+Inf", 3.0)],
        5550.0,
        3.0,
    );

    assert_sample(s, "worker_threads", &none, 8.0);
    let cpu0 = series_labels(job, instance, &[("cpu_logical_number", "0")]);
    assert_sample(s, "system_cpu_utilization_ratio", &cpu0, 0.5);

    let transmit = series_labels(job, instance, &[("network_io_direction", "transmit")]);
    assert_sample(s, "process_network_io_bytes_total", &transmit, 1024.0);
    assert_sample(s, "pool_balance", &none, -3.0);
    assert_sample(s, "process_uptime_seconds", &none, 42.5);

    let mut target = vec![
        (
            "deployment_environment_name".to_string(),
            environment.to_string(),
        ),
        ("instance".to_string(), instance.to_string()),
        ("job".to_string(), job.to_string()),
    ];
    target.sort();
    assert_sample(s, "target_info", &target, 1.0);
    assert_eq!(
        s.matching("target_info", &[]).len(),
        1,
        "scrape:\n{}",
        s.text
    );
}

/// Sends every instrument kind over `kind` and checks the scrape after a
/// flush and again after shutdown (a second cumulative export of the same
/// values, which must replace, not add).
fn every_instrument_over(kind: Kind, service: &str) {
    let collector = Collector::start();
    let transport = Transport::new(kind);
    let namespace = "sdk-tests";
    let instance = format!("{service}-1");
    let environment = format!("ci-{service}");
    let job = format!("{namespace}/{service}");

    let exporter = transport.metric_exporter(&collector, Temporality::Cumulative);
    let provider = meter_provider(
        exporter,
        resource(service, namespace, &instance, &environment),
    );
    let _observables = record_every_instrument(&provider);
    provider.force_flush().expect("force_flush exports");

    let t = kind.label();
    let s = collector.scrape_until("the first export", |s| {
        accepted(s, "metrics", t) == Some(POINTS_PER_EXPORT)
    });
    assert_every_instrument(&s, &job, &instance, &environment);

    provider.shutdown().expect("shutdown exports");
    let s = collector.scrape_until("the export at shutdown", |s| {
        accepted(s, "metrics", t) == Some(2.0 * POINTS_PER_EXPORT)
    });
    assert_every_instrument(&s, &job, &instance, &environment);
    let other = if t == "grpc" { "http" } else { "grpc" };
    assert_eq!(accepted(&s, "metrics", other), Some(0.0));
    assert_eq!(refused_total(&s), 0.0, "scrape:\n{}", s.text);
    assert_eq!(s.get(OUT_OF_ORDER, &[]), Some(0.0));
}

/// Every SDK instrument kind (u64/f64 counter, up-down counter, histogram
/// with builder and view boundaries, u64/f64 gauge, observable counter,
/// up-down counter and gauge) sent over OTLP/gRPC appears with its exact
/// Prometheus name, type, help, labels, value and `target_info`.
#[test]
fn grpc_every_instrument_kind_translates_exactly() {
    every_instrument_over(Kind::Grpc, "svc-grpc");
}

/// The same as the gRPC test, over OTLP/HTTP with protobuf bodies.
#[test]
fn http_protobuf_every_instrument_kind_translates_exactly() {
    every_instrument_over(Kind::HttpProto, "svc-http-proto");
}

/// The same as the gRPC test, over OTLP/HTTP with JSON bodies (the SDK's
/// OTLP/JSON encoding, with 64-bit integers and timestamps as strings).
#[test]
fn http_json_every_instrument_kind_translates_exactly() {
    every_instrument_over(Kind::HttpJson, "svc-http-json");
}

/// With the SDK's delta temporality, each export of the counter and the
/// histogram carries only the change since the previous one; StreamGate
/// exposes their running totals (buckets, sum, count). The up-down counter
/// in the same requests stays cumulative (the OTLP exporter's delta
/// preference keeps up-down counters cumulative) and is replaced, and a
/// final export with no new measurements changes nothing.
#[test]
fn delta_temporality_is_accumulated_into_cumulative_totals() {
    let collector = Collector::start();
    let transport = Transport::new(Kind::HttpProto);
    let exporter = transport.metric_exporter(&collector, Temporality::Delta);
    let provider = meter_provider(
        exporter,
        resource("svc-delta", "sdk-tests", "delta-1", "ci"),
    );
    let meter = provider.meter_with_scope(scope());
    let job = "sdk-tests/svc-delta";
    let attrs = [KeyValue::new("queue.name", "main")];

    let processed = meter
        .u64_counter("jobs.processed")
        .with_unit("{job}")
        .with_description("Jobs processed.")
        .build();
    let queued = meter
        .i64_up_down_counter("jobs.queued")
        .with_unit("{job}")
        .build();
    let duration = meter
        .f64_histogram("job.duration")
        .with_unit("s")
        .with_boundaries(vec![1.0, 10.0])
        .build();

    let labels = series_labels(job, "delta-1", &[("queue_name", "main")]);
    let check = |s: &Samples, total: f64, queue: f64, buckets: [f64; 3], sum: f64| {
        assert_eq!(
            s.types.get("jobs_processed_total").map(String::as_str),
            Some("counter")
        );
        assert_eq!(
            s.types.get("jobs_queued").map(String::as_str),
            Some("gauge")
        );
        assert_eq!(
            s.types.get("job_duration_seconds").map(String::as_str),
            Some("histogram")
        );
        assert_sample(s, "jobs_processed_total", &labels, total);
        assert_sample(s, "jobs_queued", &labels, queue);
        assert_histogram(
            s,
            "job_duration_seconds",
            &labels,
            &[("1", buckets[0]), ("10", buckets[1]), ("+Inf", buckets[2])],
            sum,
            buckets[2],
        );
        assert_eq!(s.get(OUT_OF_ORDER, &[]), Some(0.0), "scrape:\n{}", s.text);
    };

    processed.add(5, &attrs);
    queued.add(10, &attrs);
    duration.record(0.5, &attrs);
    duration.record(5.0, &attrs);
    provider.force_flush().expect("first flush");
    let s = collector.scrape_until("the first delta", |s| {
        accepted(s, "metrics", "http") == Some(3.0)
    });
    check(&s, 5.0, 10.0, [1.0, 2.0, 2.0], 5.5);

    processed.add(7, &attrs);
    queued.add(-4, &attrs);
    duration.record(20.0, &attrs);
    duration.record(0.5, &attrs);
    provider.force_flush().expect("second flush");
    let s = collector.scrape_until("the second delta", |s| {
        accepted(s, "metrics", "http") == Some(6.0)
    });
    check(&s, 12.0, 6.0, [2.0, 3.0, 4.0], 26.0);

    // Nothing new was measured: the final export carries no delta point,
    // only the (cumulative) up-down counter again, which must not change.
    provider.shutdown().expect("shutdown");
    let s = collector.scrape();
    assert_eq!(
        accepted(&s, "metrics", "http"),
        Some(7.0),
        "scrape:\n{}",
        s.text
    );
    check(&s, 12.0, 6.0, [2.0, 3.0, 4.0], 26.0);
    assert_eq!(refused_total(&s), 0.0, "scrape:\n{}", s.text);
}

/// Sends `spans` spans and `logs` log records (emitted through the
/// `opentelemetry::logs` Logger API) over `kind`, flushing and shutting
/// both providers down.
fn send_spans_and_logs(collector: &Collector, kind: Kind, spans: usize, logs: usize) {
    let transport = Transport::new(kind);
    let service = format!("svc-{kind:?}");
    let resource = resource(&service, "sdk-tests", "signals-1", "ci");

    let tracer_provider = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_sampler(Sampler::AlwaysOn)
        .with_batch_exporter(transport.span_exporter(collector))
        .build();
    let tracer = tracer_provider.tracer_with_scope(scope());
    for i in 0..spans {
        let mut span = tracer.start(format!("operation-{i}"));
        span.set_attribute(KeyValue::new("iteration", i as i64));
        span.end();
    }

    let logger_provider = SdkLoggerProvider::builder()
        .with_resource(resource)
        .with_batch_exporter(transport.log_exporter(collector))
        .build();
    let logger = logger_provider.logger_with_scope(scope());
    for i in 0..logs {
        let mut record = logger.create_log_record();
        record.set_severity_number(Severity::Info);
        record.set_severity_text("INFO");
        record.set_body(AnyValue::from(format!("log record {i}")));
        record.add_attribute("iteration", i as i64);
        logger.emit(record);
    }

    tracer_provider.force_flush().expect("span flush");
    logger_provider.force_flush().expect("log flush");
    tracer_provider.shutdown().expect("tracer shutdown");
    logger_provider.shutdown().expect("logger shutdown");
}

/// Spans and log records sent by the SDK over gRPC (logs gzip-compressed),
/// OTLP/HTTP protobuf and OTLP/HTTP JSON are all accepted and counted
/// exactly in `streamgate_receiver_accepted_items_total` per signal and
/// transport, with nothing refused; the connectors turn them into exactly
/// one call per span name and one log count per service.
#[test]
fn spans_and_logs_are_counted_per_signal_and_transport() {
    let collector = Collector::start();
    send_spans_and_logs(&collector, Kind::Grpc, 7, 4);
    send_spans_and_logs(&collector, Kind::HttpProto, 5, 6);
    send_spans_and_logs(&collector, Kind::HttpJson, 3, 3);

    collector.scrape_until("all spans and logs", |s| {
        accepted(s, "traces", "grpc") == Some(7.0)
            && accepted(s, "traces", "http") == Some(8.0)
            && accepted(s, "logs", "grpc") == Some(4.0)
            && accepted(s, "logs", "http") == Some(9.0)
    });
    let s = collector.scrape_after_span_calls(15.0);
    assert_eq!(accepted(&s, "metrics", "grpc"), Some(0.0));
    assert_eq!(accepted(&s, "metrics", "http"), Some(0.0));
    assert_eq!(refused_total(&s), 0.0, "scrape:\n{}", s.text);
    assert_eq!(
        translated_families(&s),
        BTreeSet::from([
            "log_records_total".to_string(),
            "target_info".to_string(),
            "traces_span_metrics_calls_total".to_string(),
            "traces_span_metrics_duration_seconds".to_string(),
        ]),
        "scrape:\n{}",
        s.text
    );
    for (kind, spans, logs) in [
        (Kind::Grpc, 7, 4),
        (Kind::HttpProto, 5, 6),
        (Kind::HttpJson, 3, 3),
    ] {
        let service = format!("svc-{kind:?}");
        let job = format!("sdk-tests/{service}");
        for i in 0..spans {
            let name = format!("operation-{i}");
            let calls = s.matching(
                "traces_span_metrics_calls_total",
                &[
                    ("job", &job),
                    ("service_name", &service),
                    ("span_name", &name),
                    ("span_kind", "SPAN_KIND_INTERNAL"),
                    ("status_code", "STATUS_CODE_UNSET"),
                ],
            );
            assert_eq!(calls.len(), 1, "{service} {name}: {}", s.text);
            assert_eq!(calls[0].1, 1.0);
        }
        let records = s.matching(
            "log_records_total",
            &[
                ("job", &job),
                ("service_name", &service),
                ("severity", "INFO"),
            ],
        );
        assert_eq!(records.len(), 1, "{service}");
        assert_eq!(records[0].1, logs as f64, "{service}");
    }
    // Settled: a later scrape shows the same counts (no late duplicates).
    std::thread::sleep(Duration::from_millis(300));
    let again = collector.scrape();
    for (signal, transport, want) in [
        ("traces", "grpc", 7.0),
        ("traces", "http", 8.0),
        ("logs", "grpc", 4.0),
        ("logs", "http", 9.0),
    ] {
        assert_eq!(
            accepted(&again, signal, transport),
            Some(want),
            "{signal}/{transport}"
        );
    }
}
