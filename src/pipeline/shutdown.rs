//! The shutdown signal: one trigger, any number of watchers.
//!
//! Contract (as the OTel Collector writes it): waiting on a signal that was
//! already triggered returns at once, and triggering twice is harmless.

use tokio::sync::watch;

/// Fires the shutdown signal.
#[derive(Debug, Clone)]
pub struct ShutdownTrigger {
    tx: std::sync::Arc<watch::Sender<bool>>,
}

/// Watches the shutdown signal. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// A new untriggered signal.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (
        ShutdownTrigger {
            tx: std::sync::Arc::new(tx),
        },
        Shutdown { rx },
    )
}

impl ShutdownTrigger {
    /// Starts shutdown. Idempotent.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            rx: self.tx.subscribe(),
        }
    }
}

impl Shutdown {
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        channel()
    }

    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Runs `work` every `period` (the first time at once; a late tick
    /// delays the next instead of bunching) until shutdown. Work already
    /// started finishes; the caller does what shutdown needs after this
    /// returns.
    pub async fn every<F, Fut>(self, period: std::time::Duration, mut work: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stop = self.wait();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tick.tick() => work().await,
            }
        }
    }

    /// Resolves once shutdown has been triggered (at once if it already was).
    pub async fn wait(mut self) {
        // An error means every trigger was dropped: treat that as shutdown too.
        let _ = self.rx.wait_for(|down| *down).await;
    }
}
