//! Replays the fuzz corpora on the stable toolchain: every file in
//! `fuzz/corpus/<target>/` (inputs the fuzzers kept for their coverage) and
//! `fuzz/regressions/<target>/` (inputs that once crashed, hung or ran out
//! of memory) goes through the same pipeline its cargo-fuzz target drives
//! (`fuzz/src/lib.rs`, included below), and must come back without a
//! panic. Run the fuzzers themselves with `scripts/fuzz`.
//!
//! A regression whose name starts with `open-` is a finding not fixed
//! yet: it is listed, not run (a stack overflow would abort the whole
//! test binary). Drop the prefix with the fix, so it is replayed from then.
//!
//! `cargo test --test fuzz_corpus -- --ignored write_seed_corpus` writes
//! the hand-made seeds (valid requests of each signal and a few hostile
//! ones) into `fuzz/corpus/`.

#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use harness::Target;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, sorted (none if it is missing).
fn inputs(kind: &str, target: Target) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target.name());
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .map(|e| e.expect("readable corpus entry").path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// A kept reproducer of a bug not fixed yet.
fn is_open(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("open-"))
}

#[test]
fn corpus_and_regressions_replay_without_panics() {
    let mut failures = Vec::new();
    let mut replayed = 0;
    for target in Target::ALL {
        let corpus = inputs("corpus", target);
        assert!(
            !corpus.is_empty(),
            "fuzz/corpus/{} is empty or missing",
            target.name()
        );
        for path in corpus.iter().chain(&inputs("regressions", target)) {
            if is_open(path) {
                eprintln!("not replayed (open finding): {}", path.display());
                continue;
            }
            let data = std::fs::read(path).expect("readable input");
            replayed += 1;
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| harness::run(target, &data))) {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{}: {why}", path.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {replayed} inputs panicked (replay one with `cargo +nightly fuzz run <target> <file>` in fuzz/):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The seeds are real requests: the valid ones must be accepted.
#[test]
fn valid_seeds_are_accepted() {
    for (target, name, data) in seeds::all() {
        if name.starts_with("valid") {
            let outcome = harness::run(target, &data);
            assert!(
                matches!(
                    outcome,
                    streamgate::receivers::otlp::fuzzing::Outcome::Accepted { .. }
                ),
                "{}/{name}: {outcome:?}",
                target.name()
            );
        }
    }
}

#[test]
#[ignore = "writes the seed corpus into fuzz/corpus/"]
fn write_seed_corpus() {
    for (target, name, data) in seeds::all() {
        let dir = fuzz_dir().join("corpus").join(target.name());
        std::fs::create_dir_all(&dir).expect("corpus dir");
        std::fs::write(dir.join(format!("seed-{name}")), data).expect("seed written");
    }
}

/// Hand-made inputs: valid requests of every kind of metric, span and
/// log record, and hostile ones (label text that needs escaping, names
/// that collide once sanitised, NaN and infinities, inconsistent
/// histograms, deep nesting, truncation).
mod seeds {
    use prost::Message;
    use streamgate::model::otlp::common::{
        AnyValue, ArrayValue as Array, InstrumentationScope, KeyValue, KeyValueList, any_value,
    };
    use streamgate::model::otlp::logs::{LogRecord, ResourceLogs, ScopeLogs};
    use streamgate::model::otlp::metrics::{
        self, AggregationTemporality, Exemplar, ExponentialHistogram,
        ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric,
        NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
        exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
        summary_data_point::ValueAtQuantile,
    };
    use streamgate::model::otlp::resource::Resource;
    use streamgate::model::otlp::trace::{ResourceSpans, ScopeSpans, Span, Status, span};
    use streamgate::model::{LogsRequest, MetricsRequest, TracesRequest};
    use streamgate::telemetry::Signal;

    use super::Target;
    use super::harness::json_prefix;

    const NOW: u64 = 1_700_000_000_000_000_000;

    fn value(v: any_value::Value) -> Option<AnyValue> {
        Some(AnyValue { value: Some(v) })
    }

    fn kv(key: &str, v: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: value(v),
            ..Default::default()
        }
    }

    fn s(key: &str, text: &str) -> KeyValue {
        kv(key, any_value::Value::StringValue(text.into()))
    }

    fn resource(service: &str) -> Option<Resource> {
        Some(Resource {
            attributes: vec![
                s("service.name", service),
                s("service.namespace", "shop"),
                s("service.instance.id", "pod-1"),
                s("host.name", "node-a"),
            ],
            ..Default::default()
        })
    }

    fn scope() -> Option<InstrumentationScope> {
        Some(InstrumentationScope {
            name: "seed.library".into(),
            version: "1.2.3".into(),
            attributes: vec![s("scope.kind", "seed")],
            ..Default::default()
        })
    }

    /// Attribute values of every type.
    fn rich_attributes() -> Vec<KeyValue> {
        use any_value::Value::*;
        vec![
            s("http.request.method", "GET"),
            kv("http.response.status_code", IntValue(200)),
            kv("ratio", DoubleValue(0.25)),
            kv("ok", BoolValue(true)),
            kv("raw", BytesValue(vec![0, 1, 2, 255])),
            kv(
                "list",
                ArrayValue(Array {
                    values: vec![
                        AnyValue {
                            value: Some(IntValue(1)),
                        },
                        AnyValue {
                            value: Some(StringValue("two".into())),
                        },
                    ],
                }),
            ),
            kv(
                "map",
                KvlistValue(KeyValueList {
                    values: vec![s("inner", "v"), kv("n", DoubleValue(f64::NAN))],
                }),
            ),
        ]
    }

    /// Label text a renderer must escape or sanitise.
    fn hostile_attributes() -> Vec<KeyValue> {
        vec![
            s("quote\"key", "say \"hi\"\\n"),
            s("new\nline", "line1\nline2\r\n"),
            s("a.b", "dot"),
            s("a_b", "underscore"),
            s("a-b", "dash"),
            s("", "empty key"),
            s("__reserved", "x"),
            s("0digit", "x"),
            s("job", "overrides?"),
            s("instance", "overrides?"),
            s("le", "0.5"),
            s("quantile", "0.9"),
            s("émoji🔥", "ünïcødé 🔥 \u{0}\u{7f}\u{feff}"),
            s("dup", "first"),
            s("dup", "second"),
        ]
    }

    fn number(attributes: Vec<KeyValue>, v: number_data_point::Value) -> NumberDataPoint {
        NumberDataPoint {
            attributes,
            start_time_unix_nano: NOW - 60_000_000_000,
            time_unix_nano: NOW,
            value: Some(v),
            exemplars: vec![Exemplar {
                filtered_attributes: vec![s("user", "u1")],
                time_unix_nano: NOW - 1,
                span_id: vec![1; 8],
                trace_id: vec![2; 16],
                value: Some(metrics::exemplar::Value::AsDouble(0.5)),
            }],
            ..Default::default()
        }
    }

    fn metric(name: &str, unit: &str, data: Data) -> Metric {
        Metric {
            name: name.into(),
            unit: unit.into(),
            description: format!("seed {name}"),
            data: Some(data),
            ..Default::default()
        }
    }

    fn metrics_request(metrics: Vec<Metric>) -> MetricsRequest {
        MetricsRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: resource("checkout"),
                scope_metrics: vec![ScopeMetrics {
                    scope: scope(),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn every_metric_kind(attributes: Vec<KeyValue>) -> Vec<Metric> {
        use number_data_point::Value::*;
        let cumulative = AggregationTemporality::Cumulative as i32;
        let delta = AggregationTemporality::Delta as i32;
        vec![
            metric(
                "system.memory.usage",
                "By",
                Data::Gauge(Gauge {
                    data_points: vec![number(attributes.clone(), AsInt(1 << 30))],
                }),
            ),
            metric(
                "http.server.requests",
                "{request}",
                Data::Sum(Sum {
                    data_points: vec![number(attributes.clone(), AsDouble(42.0))],
                    aggregation_temporality: cumulative,
                    is_monotonic: true,
                }),
            ),
            metric(
                "queue.delta",
                "1",
                Data::Sum(Sum {
                    data_points: vec![number(attributes.clone(), AsInt(-3))],
                    aggregation_temporality: delta,
                    is_monotonic: false,
                }),
            ),
            metric(
                "http.server.request.duration",
                "ms",
                Data::Histogram(Histogram {
                    data_points: vec![HistogramDataPoint {
                        attributes: attributes.clone(),
                        start_time_unix_nano: NOW - 60_000_000_000,
                        time_unix_nano: NOW,
                        count: 6,
                        sum: Some(123.5),
                        bucket_counts: vec![1, 2, 3],
                        explicit_bounds: vec![10.0, 100.0],
                        min: Some(0.5),
                        max: Some(300.0),
                        ..Default::default()
                    }],
                    aggregation_temporality: cumulative,
                }),
            ),
            metric(
                "rpc.client.latency",
                "s",
                Data::ExponentialHistogram(ExponentialHistogram {
                    data_points: vec![ExponentialHistogramDataPoint {
                        attributes: attributes.clone(),
                        start_time_unix_nano: NOW - 60_000_000_000,
                        time_unix_nano: NOW,
                        count: 7,
                        sum: Some(1.5),
                        scale: 3,
                        zero_count: 1,
                        positive: Some(Buckets {
                            offset: -4,
                            bucket_counts: vec![1, 2, 1],
                        }),
                        negative: Some(Buckets {
                            offset: 0,
                            bucket_counts: vec![2],
                        }),
                        zero_threshold: 1e-9,
                        ..Default::default()
                    }],
                    aggregation_temporality: delta,
                }),
            ),
            metric(
                "db.query.time",
                "us",
                Data::Summary(Summary {
                    data_points: vec![SummaryDataPoint {
                        attributes,
                        start_time_unix_nano: NOW - 60_000_000_000,
                        time_unix_nano: NOW,
                        count: 10,
                        sum: 55.0,
                        quantile_values: vec![
                            ValueAtQuantile {
                                quantile: 0.5,
                                value: 4.0,
                            },
                            ValueAtQuantile {
                                quantile: 0.99,
                                value: 9.0,
                            },
                        ],
                        ..Default::default()
                    }],
                }),
            ),
        ]
    }

    /// Metrics whose values and shapes a translator must survive, each
    /// with the name of its seed.
    fn hostile_metrics() -> Vec<(&'static str, Vec<Metric>)> {
        use number_data_point::Value::*;
        let cumulative = AggregationTemporality::Cumulative as i32;
        let nan = metric(
            "nan.gauge",
            "%",
            Data::Gauge(Gauge {
                data_points: vec![
                    number(vec![s("v", "nan")], AsDouble(f64::NAN)),
                    number(vec![s("v", "inf")], AsDouble(f64::INFINITY)),
                    number(vec![s("v", "-inf")], AsDouble(f64::NEG_INFINITY)),
                    number(vec![s("v", "min")], AsInt(i64::MIN)),
                ],
            }),
        );
        let histogram = every_metric_kind(vec![]).swap_remove(3);
        // Same Prometheus name as the histogram's, another type.
        let conflict = metric(
            "http.server.request.duration",
            "ms",
            Data::Gauge(Gauge {
                data_points: vec![number(vec![], AsDouble(1.0))],
            }),
        );
        let bad_histogram = metric(
            "bad.histogram",
            "s",
            Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    count: 1,
                    sum: Some(f64::NAN),
                    bucket_counts: vec![5, u64::MAX],
                    explicit_bounds: vec![f64::INFINITY, 1.0, f64::NAN],
                    time_unix_nano: u64::MAX,
                    ..Default::default()
                }],
                aggregation_temporality: cumulative,
            }),
        );
        let bad_exponential = metric(
            "bad.exponential",
            "s",
            Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    count: 0,
                    scale: 20,
                    positive: Some(Buckets {
                        offset: i32::MAX,
                        bucket_counts: vec![1, 1],
                    }),
                    negative: Some(Buckets {
                        offset: i32::MIN,
                        bucket_counts: vec![u64::MAX],
                    }),
                    zero_threshold: f64::NAN,
                    ..Default::default()
                }],
                aggregation_temporality: 7,
            }),
        );
        let names = vec![
            metric(
                "",
                "",
                Data::Gauge(Gauge {
                    data_points: vec![number(vec![], AsInt(0))],
                }),
            ),
            metric(
                "9starts.with digit/and spaces:colons::",
                "{weird unit}/s",
                Data::Sum(Sum {
                    data_points: vec![number(vec![], AsDouble(-1.0))],
                    aggregation_temporality: 0,
                    is_monotonic: true,
                }),
            ),
            Metric {
                name: "no.data".into(),
                ..Default::default()
            },
        ];
        let labels = every_metric_kind(hostile_attributes()).swap_remove(1);
        vec![
            ("hostile-nan", vec![nan]),
            ("hostile-type-conflict", vec![histogram, conflict]),
            ("hostile-bad-histogram", vec![bad_histogram]),
            ("hostile-bad-exponential", vec![bad_exponential]),
            ("hostile-names", names),
            ("hostile-labels", vec![labels]),
            (
                "hostile-deep-attribute",
                vec![metric(
                    "deep",
                    "1",
                    Data::Gauge(Gauge {
                        data_points: vec![number(vec![nested(60)], AsInt(1))],
                    }),
                )],
            ),
        ]
    }

    /// An attribute whose value nests arrays `depth` levels deep.
    fn nested(depth: usize) -> KeyValue {
        let mut v = AnyValue {
            value: Some(any_value::Value::StringValue("bottom".into())),
        };
        for _ in 0..depth {
            v = AnyValue {
                value: Some(any_value::Value::ArrayValue(Array { values: vec![v] })),
            };
        }
        KeyValue {
            key: "deep".into(),
            value: Some(v),
            ..Default::default()
        }
    }

    fn span(name: &str, id: u8, parent: u8, kind: span::SpanKind, code: i32) -> Span {
        Span {
            trace_id: vec![0xab; 16],
            span_id: vec![id; 8],
            parent_span_id: if parent == 0 { vec![] } else { vec![parent; 8] },
            name: name.into(),
            kind: kind as i32,
            start_time_unix_nano: NOW,
            end_time_unix_nano: NOW + u64::from(id) * 1_000_000,
            attributes: vec![
                s("http.route", "/cart"),
                kv("retries", any_value::Value::IntValue(1)),
            ],
            status: Some(Status {
                message: if code == 2 {
                    "failed".into()
                } else {
                    String::new()
                },
                code,
            }),
            ..Default::default()
        }
    }

    fn resource_spans(service: &str, spans: Vec<Span>) -> ResourceSpans {
        ResourceSpans {
            resource: resource(service),
            scope_spans: vec![ScopeSpans {
                scope: scope(),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn traces(resource_spans: Vec<ResourceSpans>) -> TracesRequest {
        TracesRequest { resource_spans }
    }

    /// Valid traces, each with the name of its seed.
    fn traces_valid() -> Vec<(&'static str, TracesRequest)> {
        use span::SpanKind::*;
        let mut rich = span("rich", 1, 0, Server, 1);
        rich.attributes = rich_attributes();
        rich.trace_state = "vendor=1".into();
        rich.events = vec![span::Event {
            time_unix_nano: NOW + 1,
            name: "exception".into(),
            attributes: vec![s("exception.message", "boom")],
            ..Default::default()
        }];
        rich.links = vec![span::Link {
            trace_id: vec![0xcd; 16],
            span_id: vec![9; 8],
            trace_state: "k=v".into(),
            ..Default::default()
        }];
        vec![
            (
                "valid-service-graph",
                traces(vec![
                    resource_spans(
                        "frontend",
                        vec![
                            span("GET /", 1, 0, Server, 0),
                            span("call checkout", 2, 1, Client, 1),
                            span("publish", 5, 1, Producer, 0),
                        ],
                    ),
                    resource_spans(
                        "checkout",
                        vec![
                            span("POST /checkout", 3, 2, Server, 2),
                            span("SELECT", 4, 3, Client, 0),
                            span("consume", 6, 5, Consumer, 0),
                            span("internal", 7, 3, Internal, 0),
                        ],
                    ),
                ]),
            ),
            (
                "valid-rich-span",
                traces(vec![resource_spans("shop", vec![rich])]),
            ),
        ]
    }

    /// Traces a connector must survive, each with the name of its seed.
    fn traces_hostile() -> Vec<(&'static str, TracesRequest)> {
        use span::SpanKind::*;
        let mut backwards = span("ends before it starts", 1, 0, Server, 0);
        backwards.end_time_unix_nano = 1;
        let mut forever = span("forever", 2, 1, Client, 2);
        forever.start_time_unix_nano = 0;
        forever.end_time_unix_nano = u64::MAX;
        let mut odd = span("\"odd\"\nname\\", 3, 2, Server, 99);
        odd.kind = -5;
        odd.trace_id = vec![1, 2, 3];
        odd.span_id = vec![];
        let mut unknown = span("", 4, 3, Unspecified, -1);
        unknown.status = None;
        let mut labels = span("labels", 5, 0, Server, 0);
        labels.attributes = hostile_attributes();
        labels.attributes.push(nested(20));
        let mut no_service = resource_spans("", vec![span("orphan", 6, 4, Client, 0)]);
        no_service.resource = None;
        let mut weird_service = resource_spans("x", vec![span("weird", 7, 6, Server, 1)]);
        if let Some(r) = &mut weird_service.resource {
            r.attributes[0] = kv("service.name", any_value::Value::IntValue(7));
        }
        vec![
            (
                "hostile-times",
                traces(vec![resource_spans("svc", vec![backwards, forever])]),
            ),
            (
                "hostile-ids-kinds",
                traces(vec![resource_spans("svc \"a\"\n", vec![odd, unknown])]),
            ),
            (
                "hostile-labels",
                traces(vec![resource_spans("svc", vec![labels])]),
            ),
            ("hostile-services", traces(vec![no_service, weird_service])),
        ]
    }

    fn log(severity_number: i32, severity_text: &str, body: any_value::Value) -> LogRecord {
        LogRecord {
            time_unix_nano: NOW,
            observed_time_unix_nano: NOW + 1,
            severity_number,
            severity_text: severity_text.into(),
            body: value(body),
            attributes: vec![s("code.function", "pay")],
            trace_id: vec![0xab; 16],
            span_id: vec![1; 8],
            ..Default::default()
        }
    }

    fn logs(service: Option<&str>, records: Vec<LogRecord>) -> LogsRequest {
        LogsRequest {
            resource_logs: vec![ResourceLogs {
                resource: service.and_then(resource),
                scope_logs: vec![ScopeLogs {
                    scope: scope(),
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    /// Log requests, each with the name of its seed.
    fn logs_seeds() -> Vec<(&'static str, LogsRequest)> {
        use any_value::Value::*;
        let mut rich = log(9, "INFO", KvlistValue(KeyValueList::default()));
        rich.attributes = rich_attributes();
        let mut labels = log(-1, "\"WARN\"\n", StringValue("x".into()));
        labels.attributes = hostile_attributes();
        labels.attributes.push(nested(20));
        vec![
            (
                "valid-severities",
                logs(
                    Some("checkout"),
                    vec![
                        log(9, "INFO", StringValue("order placed".into())),
                        log(13, "", StringValue("slow".into())),
                        log(17, "ERROR", StringValue("payment failed".into())),
                        log(21, "FATAL", IntValue(1)),
                        log(0, "", BoolValue(false)),
                    ],
                ),
            ),
            ("valid-rich-record", logs(Some("shop"), vec![rich])),
            ("hostile-labels", logs(Some("svc\\\"\n"), vec![labels])),
            (
                "hostile-severities",
                logs(
                    None,
                    vec![
                        log(i32::MAX, "", DoubleValue(f64::NAN)),
                        log(24, "err", BytesValue(vec![0xff; 4])),
                        log(5, "debug", StringValue(String::new())),
                    ],
                ),
            ),
        ]
    }

    fn json_of<T: serde::Serialize>(signal: Signal, request: &T) -> Vec<u8> {
        let mut out = vec![json_prefix(signal)];
        out.extend(serde_json::to_vec(request).expect("serialisable"));
        out
    }

    fn json_file(signal: Signal, path: &str) -> Vec<u8> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut out = vec![json_prefix(signal)];
        out.extend(std::fs::read(root.join(path)).expect("testdata file"));
        out
    }

    /// A JSON log request whose body nests arrays `depth` levels deep.
    fn deep_json(depth: usize) -> Vec<u8> {
        let mut out = vec![json_prefix(Signal::Logs)];
        out.extend(b"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":");
        out.extend(b"{\"arrayValue\":{\"values\":[".repeat(depth));
        out.extend(b"{\"stringValue\":\"x\"}");
        out.extend(b"]}}".repeat(depth));
        out.extend(b"}]}]}]}");
        out
    }

    /// (target, file name, bytes) of every seed: small requests, one
    /// feature each, so the inputs the fuzzers derive stay small.
    pub fn all() -> Vec<(Target, String, Vec<u8>)> {
        use Target::*;
        let mut seeds = Vec::new();
        let mut add = |target: Target, name: &str, data: Vec<u8>| {
            seeds.push((target, name.to_string(), data));
        };
        let kinds = [
            "gauge",
            "sum",
            "delta-sum",
            "histogram",
            "exponential",
            "summary",
        ];
        for (kind, metric) in kinds.iter().zip(every_metric_kind(rich_attributes())) {
            let request = metrics_request(vec![metric]);
            add(
                MetricsProtobuf,
                &format!("valid-{kind}"),
                request.encode_to_vec(),
            );
            add(
                Json,
                &format!("serde-metrics-{kind}"),
                json_of(Signal::Metrics, &request),
            );
        }
        for (name, metrics) in hostile_metrics() {
            let request = metrics_request(metrics);
            add(MetricsProtobuf, name, request.encode_to_vec());
            if name == "hostile-labels" || name == "hostile-names" {
                add(
                    Json,
                    &format!("metrics-{name}"),
                    json_of(Signal::Metrics, &request),
                );
            }
        }
        let mut bare = metrics_request(every_metric_kind(vec![]).split_off(4));
        bare.resource_metrics[0].resource = None;
        bare.resource_metrics[0].scope_metrics[0].scope = None;
        add(
            MetricsProtobuf,
            "valid-no-resource-no-scope",
            bare.encode_to_vec(),
        );
        let gauge = metrics_request(vec![every_metric_kind(vec![]).swap_remove(0)]).encode_to_vec();
        add(
            MetricsProtobuf,
            "hostile-truncated",
            gauge[..gauge.len() / 2].to_vec(),
        );
        add(MetricsProtobuf, "empty", Vec::new());
        for (name, request) in traces_valid().into_iter().chain(traces_hostile()) {
            add(TracesProtobuf, name, request.encode_to_vec());
            if name.starts_with("valid") {
                add(
                    Json,
                    &format!("serde-traces-{name}"),
                    json_of(Signal::Traces, &request),
                );
            }
        }
        for (name, request) in logs_seeds() {
            add(LogsProtobuf, name, request.encode_to_vec());
            if name.starts_with("valid") {
                add(
                    Json,
                    &format!("serde-logs-{name}"),
                    json_of(Signal::Logs, &request),
                );
            }
        }
        for (signal, name, path) in [
            (
                Signal::Metrics,
                "valid-metrics-testdata",
                "src/receivers/otlp/testdata/metrics.json",
            ),
            (
                Signal::Metrics,
                "valid-metrics-spec-example",
                "src/exporters/prometheus/testdata/spec_example.json",
            ),
            (
                Signal::Traces,
                "valid-traces-testdata",
                "src/receivers/otlp/testdata/traces.json",
            ),
            (
                Signal::Logs,
                "valid-logs-testdata",
                "src/receivers/otlp/testdata/logs.json",
            ),
        ] {
            add(Json, name, json_file(signal, path));
        }
        add(Json, "hostile-deep-json-20", deep_json(20));
        add(Json, "hostile-deep-json-200", deep_json(200));
        seeds
    }
}
