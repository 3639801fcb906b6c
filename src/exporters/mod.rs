//! Exporters: where telemetry leaves StreamGate.

pub mod alertmanager;
pub mod delivery;
pub mod otlp;
pub mod pprof;
pub mod prometheus;
pub mod remote_write;
