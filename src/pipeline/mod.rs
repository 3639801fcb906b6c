//! Component contracts and how components are chained.
//!
//! A receiver hands each decoded request to a consumer and answers the sender
//! only after the consumer returns, so nothing acknowledged is lost: the
//! consumer either applied the items, or reported how many it rejected and
//! why (which becomes OTLP `partial_success`), or refused the whole request
//! as overloaded (which becomes 429/503 or `RESOURCE_EXHAUSTED`, retryable).
//! [`Fanout`] sends one request to several consumers; [`Shutdown`] is the
//! signal every long-running component watches to drain and stop.
//! [`durable`] is the contract of components whose state is kept across
//! restarts. [`derived`] is how a processor's computed series reach the
//! exporter without being stored. [`query`] holds the read-only queries the API asks of components
//! (series listing and history) without importing them.

pub mod derived;
pub mod durable;
mod fanout;
pub mod query;
mod shutdown;

use std::time::Duration;

use crate::model::{LogsBatch, MetricsBatch, Observations, TracesBatch};

pub use fanout::Fanout;
pub use shutdown::{Shutdown, ShutdownTrigger};

/// What a consumer did with a request it accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Consumed {
    /// Items not applied (for example a type conflict). 0 means all applied.
    pub rejected: u64,
    /// Why items were rejected; empty when none were.
    pub message: String,
}

impl Consumed {
    pub fn all() -> Self {
        Self::default()
    }

    pub fn rejected(count: u64, message: impl Into<String>) -> Self {
        Self {
            rejected: count,
            message: message.into(),
        }
    }

    /// Combines two outcomes for the same request: the larger rejection wins,
    /// messages (of rejections, or warnings with none) are joined.
    pub fn merge(mut self, other: Consumed) -> Self {
        if other.rejected > 0 || !other.message.is_empty() {
            self.rejected = self.rejected.max(other.rejected);
            if self.message.is_empty() {
                self.message = other.message;
            } else if !other.message.is_empty() {
                self.message.push_str("; ");
                self.message.push_str(&other.message);
            }
        }
        self
    }
}

/// A consumer refused the whole request; the sender should retry later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsumeError {
    #[error("collector overloaded: {reason}")]
    Overloaded {
        reason: String,
        retry_after: Duration,
    },
    #[error("collector is shutting down")]
    ShuttingDown,
}

pub type ConsumeResult = Result<Consumed, ConsumeError>;

/// Takes decoded metrics requests.
pub trait MetricsConsumer: Send + Sync {
    fn consume_metrics(&self, request: &MetricsBatch) -> ConsumeResult;
}

/// Takes decoded trace requests.
pub trait TracesConsumer: Send + Sync {
    fn consume_traces(&self, batch: &TracesBatch) -> ConsumeResult;
}

/// Takes validated log requests.
pub trait LogsConsumer: Send + Sync {
    fn consume_logs(&self, batch: &LogsBatch) -> ConsumeResult;
}

/// Takes raw measurements (every value, not aggregated) from connectors,
/// for processors whose statistics need them (window quantiles).
pub trait ObservationConsumer: Send + Sync {
    fn observe(&self, batch: &Observations<'_>);
}

/// The end of a pipeline with nothing attached: accepts and drops.
/// Used for signals whose processing is not configured.
#[derive(Debug, Default, Clone, Copy)]
pub struct Discard;

impl MetricsConsumer for Discard {
    fn consume_metrics(&self, _: &MetricsBatch) -> ConsumeResult {
        Ok(Consumed::all())
    }
}

impl TracesConsumer for Discard {
    fn consume_traces(&self, _: &TracesBatch) -> ConsumeResult {
        Ok(Consumed::all())
    }
}

impl LogsConsumer for Discard {
    fn consume_logs(&self, _: &LogsBatch) -> ConsumeResult {
        Ok(Consumed::all())
    }
}

#[cfg(test)]
mod tests;
