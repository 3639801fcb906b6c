//! Black-box tests of logs turned into metrics: log records sent by the
//! Rust OpenTelemetry SDK over OTLP/gRPC are counted in
//! `log_records_total{service_name, severity}` and, at ERROR and FATAL,
//! in `log_error_records_total{service_name}`.

mod common;

use std::time::Duration;

use common::Collector;
use opentelemetry::KeyValue;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry_otlp::{LogExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;

/// Emits records with (severity number, severity text) over gRPC.
fn send(collector: &Collector, service: &str, records: &[(Severity, &'static str)]) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let exporter = LogExporter::builder()
            .with_tonic()
            .with_endpoint(collector.grpc_url())
            .with_timeout(Duration::from_secs(10))
            .build()
            .expect("log exporter");
        let provider = SdkLoggerProvider::builder()
            .with_resource(
                Resource::builder_empty()
                    .with_attributes([KeyValue::new("service.name", service.to_string())])
                    .build(),
            )
            .with_batch_exporter(exporter)
            .build();
        let logger = provider.logger("log-metrics-test");
        for (severity, text) in records {
            let mut record = logger.create_log_record();
            record.set_severity_number(*severity);
            if !text.is_empty() {
                record.set_severity_text(text);
            }
            record.set_body(AnyValue::from("something happened"));
            logger.emit(record);
        }
        provider.force_flush().expect("flush");
        provider.shutdown().expect("shutdown");
    });
}

/// Severity is the text when given, else the number's range name; ERROR
/// and FATAL records are also counted as errors per service.
#[test]
fn records_counted_by_service_and_severity() {
    let collector = Collector::start();
    send(
        &collector,
        "payments",
        &[
            (Severity::Info, "INFO"),
            (Severity::Info, "INFO"),
            (Severity::Warn, ""),
            (Severity::Error, "ERROR"),
            (Severity::Fatal2, ""),
            (Severity::Debug, ""),
        ],
    );
    send(&collector, "search", &[(Severity::Error, "ERROR")]);
    let s = collector.scrape_until("log counts", |s| s.has_family("log_records_total"));
    let version = env!("CARGO_PKG_VERSION");
    let count = |service: &str, severity: &str| {
        s.get(
            "log_records_total",
            &[
                ("job", service),
                ("otel_scope_name", "streamgate.logmetrics"),
                ("otel_scope_version", version),
                ("service_name", service),
                ("severity", severity),
            ],
        )
    };
    assert_eq!(count("payments", "INFO"), Some(2.0), "{}", s.text);
    assert_eq!(count("payments", "WARN"), Some(1.0));
    assert_eq!(count("payments", "ERROR"), Some(1.0));
    assert_eq!(count("payments", "FATAL"), Some(1.0));
    assert_eq!(count("payments", "DEBUG"), Some(1.0));
    assert_eq!(count("search", "ERROR"), Some(1.0));
    let errors = |service: &str| {
        s.get(
            "log_error_records_total",
            &[
                ("job", service),
                ("otel_scope_name", "streamgate.logmetrics"),
                ("otel_scope_version", version),
                ("service_name", service),
            ],
        )
    };
    assert_eq!(errors("payments"), Some(2.0));
    assert_eq!(errors("search"), Some(1.0));
    assert_eq!(s.types["log_records_total"], "counter");
}
