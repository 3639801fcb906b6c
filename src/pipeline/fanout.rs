//! Fan-out: one request to every attached consumer, outcomes merged.

use crate::model::MetricsBatch;
use std::sync::Arc;

use super::{ConsumeResult, Consumed, LogsConsumer, MetricsConsumer, TracesConsumer};
use crate::model::{LogsBatch, TracesBatch};

/// Sends each request to all consumers in order. The first whole-request
/// refusal stops the fan-out and is returned; otherwise rejections merge.
pub struct Fanout<C: ?Sized> {
    consumers: Vec<Arc<C>>,
}

impl<C: ?Sized> Fanout<C> {
    pub fn new(consumers: Vec<Arc<C>>) -> Self {
        Self { consumers }
    }

    pub fn len(&self) -> usize {
        self.consumers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.consumers.is_empty()
    }

    fn each(&self, mut f: impl FnMut(&C) -> ConsumeResult) -> ConsumeResult {
        let mut outcome = Consumed::all();
        for consumer in &self.consumers {
            outcome = outcome.merge(f(consumer)?);
        }
        Ok(outcome)
    }
}

impl MetricsConsumer for Fanout<dyn MetricsConsumer> {
    fn consume_metrics(&self, request: &MetricsBatch) -> ConsumeResult {
        self.each(|c| c.consume_metrics(request))
    }
}

impl TracesConsumer for Fanout<dyn TracesConsumer> {
    fn consume_traces(&self, batch: &TracesBatch) -> ConsumeResult {
        self.each(|c| c.consume_traces(batch))
    }
}

impl LogsConsumer for Fanout<dyn LogsConsumer> {
    fn consume_logs(&self, batch: &LogsBatch) -> ConsumeResult {
        self.each(|c| c.consume_logs(batch))
    }
}
