//! Tests of the span-metrics connector.
