//! The Rust OTel SDK as a test sender: a meter provider that exports one
//! counter once, when flushed.

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_otlp::MetricExporter;
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
