//! Exporters: where telemetry leaves StreamGate.

pub mod alertmanager;
pub mod prometheus;
