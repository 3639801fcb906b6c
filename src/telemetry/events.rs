//! Typed internal events: each `emit` logs and counts in one place, so a
//! refusal can never be logged without being counted or the other way round.

use super::{RefusalReason, Signal, Telemetry, Transport};

/// A request (or part of one) was refused.
#[derive(Debug)]
pub struct RequestRefused<'a> {
    pub signal: Signal,
    pub transport: Transport,
    pub reason: RefusalReason,
    /// Items refused, when countable (0 for undecodable bodies).
    pub items: u64,
    pub message: &'a str,
}

impl RequestRefused<'_> {
    pub fn emit(&self, telemetry: &Telemetry) {
        telemetry.record_refused(self.signal, self.transport, self.reason, self.items);
        // Senders control how often this happens: log at most once a second
        // per (signal, reason); the count is exact in the metrics anyway.
        let Some(suppressed) = telemetry.refusal_log_admit(self.signal, self.reason) else {
            return;
        };
        match self.reason {
            RefusalReason::Overloaded | RefusalReason::MemoryLimited => tracing::debug!(
                signal = self.signal.as_str(),
                transport = self.transport.as_str(),
                reason = self.reason.as_str(),
                suppressed,
                "refused OTLP request: {}",
                self.message
            ),
            _ => tracing::warn!(
                signal = self.signal.as_str(),
                transport = self.transport.as_str(),
                reason = self.reason.as_str(),
                items = self.items,
                suppressed,
                "refused OTLP data: {}",
                self.message
            ),
        }
    }
}

/// A request was decoded and handed to the pipeline.
#[derive(Debug)]
pub struct RequestAccepted {
    pub signal: Signal,
    pub transport: Transport,
    pub items: u64,
}

impl RequestAccepted {
    pub fn emit(&self, telemetry: &Telemetry) {
        telemetry.record_accepted(self.signal, self.transport, self.items);
        tracing::trace!(
            signal = self.signal.as_str(),
            transport = self.transport.as_str(),
            items = self.items,
            "accepted OTLP request"
        );
    }
}
