//! Exporters: where telemetry leaves StreamGate.

pub mod alertmanager;
pub mod pprof;
pub mod prometheus;
