//! The Rust OTel SDK as a test sender: a meter provider that exports one
//! counter once, when flushed.

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_otlp::{MetricExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};

/// A meter provider (scope `scope`, service `service`) holding the counter
/// `logins` = 3 `{result="ok"}`; flushing it exports through `exporter`
/// and returns the export's outcome. Keep it alive to the end of the
/// test: dropping it exports again.
pub fn logins_provider(
    exporter: MetricExporter,
    service: &str,
    scope: &'static str,
) -> SdkMeterProvider {
    let reader = PeriodicReader::builder(exporter)
        .with_interval(Duration::from_secs(3600))
        .build();
    let provider = SdkMeterProvider::builder()
        .with_resource(
            Resource::builder()
                .with_service_name(service.to_string())
                .build(),
        )
        .with_reader(reader)
        .build();
    provider
        .meter(scope)
        .u64_counter("logins")
        .build()
        .add(3, &[KeyValue::new("result", "ok")]);
    provider
}

/// A tracer provider exporting each span at once over OTLP/HTTP protobuf
/// to `collector`, sampling everything.
pub fn http_tracer_provider(
    collector: &super::Collector,
    resource: Resource,
) -> opentelemetry_sdk::trace::SdkTracerProvider {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(collector.otlp_http_url("/v1/traces"))
        .with_timeout(Duration::from_secs(10))
        .build()
        .expect("span exporter");
    opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_resource(resource)
        .with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOn)
        .with_simple_exporter(exporter)
        .build()
}

/// A logger provider exporting each record at once over OTLP/HTTP
/// protobuf to `collector`.
pub fn http_logger_provider(
    collector: &super::Collector,
    resource: Resource,
) -> opentelemetry_sdk::logs::SdkLoggerProvider {
    let exporter = opentelemetry_otlp::LogExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(collector.otlp_http_url("/v1/logs"))
        .with_timeout(Duration::from_secs(10))
        .build()
        .expect("log exporter");
    opentelemetry_sdk::logs::SdkLoggerProvider::builder()
        .with_resource(resource)
        .with_simple_exporter(exporter)
        .build()
}

/// A meter provider exporting over OTLP/HTTP protobuf to `collector`
/// only when flushed (one point per instrument per flush).
pub fn http_meter_provider(collector: &super::Collector, resource: Resource) -> SdkMeterProvider {
    let exporter = MetricExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(collector.otlp_http_url("/v1/metrics"))
        .with_timeout(Duration::from_secs(10))
        .build()
        .expect("metric exporter");
    let reader = PeriodicReader::builder(exporter)
        .with_interval(Duration::from_secs(3600))
        .build();
    SdkMeterProvider::builder()
        .with_resource(resource)
        .with_reader(reader)
        .build()
}
