//! Receivers: where telemetry enters StreamGate.

pub mod otlp;
