//! Exporters: where telemetry leaves StreamGate.

pub mod prometheus;
