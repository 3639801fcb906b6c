//! Connectors: turn one signal into another. Traces become span metrics
//! (RED) and a service graph; logs become log-record counts. Each connector
//! is a consumer of its input signal that emits an OTLP metrics request to
//! its downstream metrics consumer after every input request, so the
//! metrics are visible as soon as the input is acknowledged.
//!
//! Shared pieces: [`table`] (bounded series with overflow, dirty tracking,
//! expiry), [`output`] (building the emitted request), [`encode`] (the
//! span metrics' request written straight as protobuf), [`exponential`]
//! (a self-scaling exponential histogram), [`explicit`] (the bucket of a
//! duration), [`held`] (values kept per series until the next drain).

pub mod dimension;
pub mod encode;
pub mod explicit;
pub mod exponential;
pub mod held;
pub mod logmetrics;
pub mod output;
pub mod servicegraph;
pub mod spanmetrics;
pub mod table;
