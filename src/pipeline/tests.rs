//! Tests of the pipeline contracts: fan-out merging and shutdown semantics.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;

struct Rejecting(u64, &'static str, AtomicUsize);

impl MetricsConsumer for Rejecting {
    fn consume_metrics(&self, _: &MetricsRequest) -> ConsumeResult {
        self.2.fetch_add(1, Ordering::Relaxed);
        Ok(Consumed::rejected(self.0, self.1))
    }
}

struct Overloaded;

impl MetricsConsumer for Overloaded {
    fn consume_metrics(&self, _: &MetricsRequest) -> ConsumeResult {
        Err(ConsumeError::Overloaded {
            reason: "full".into(),
            retry_after: Duration::from_secs(1),
        })
    }
}

#[test]
fn fanout_merges_rejections_and_calls_everyone() {
    let a = Arc::new(Rejecting(2, "a", AtomicUsize::new(0)));
    let b = Arc::new(Rejecting(5, "b", AtomicUsize::new(0)));
    let fan: Fanout<dyn MetricsConsumer> = Fanout::new(vec![a.clone(), b.clone()]);
    let out = fan.consume_metrics(&MetricsRequest::default()).unwrap();
    assert_eq!(out.rejected, 5);
    assert_eq!(out.message, "a; b");
    assert_eq!(a.2.load(Ordering::Relaxed), 1);
    assert_eq!(b.2.load(Ordering::Relaxed), 1);
}

#[test]
fn fanout_stops_at_overload() {
    let after = Arc::new(Rejecting(0, "", AtomicUsize::new(0)));
    let fan: Fanout<dyn MetricsConsumer> = Fanout::new(vec![Arc::new(Overloaded), after.clone()]);
    let err = fan.consume_metrics(&MetricsRequest::default()).unwrap_err();
    assert!(matches!(err, ConsumeError::Overloaded { .. }));
    assert_eq!(after.2.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn shutdown_wait_returns_when_already_triggered_and_trigger_is_idempotent() {
    let (trigger, watcher) = Shutdown::new();
    assert!(!watcher.is_triggered());
    trigger.trigger();
    trigger.trigger();
    assert!(watcher.is_triggered());
    tokio::time::timeout(Duration::from_secs(1), watcher.clone().wait())
        .await
        .expect("wait returns after trigger");
    tokio::time::timeout(Duration::from_secs(1), trigger.subscribe().wait())
        .await
        .expect("late subscribers see the trigger");
}
