//! Tests of the log-metrics connector.
