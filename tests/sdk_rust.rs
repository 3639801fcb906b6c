//! stub
mod common;
use opentelemetry_otlp as _;
use opentelemetry_sdk as _;
use opentelemetry as _;
#[test]
fn stub() {}
