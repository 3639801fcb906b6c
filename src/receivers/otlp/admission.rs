//! Admission control shared by both servers: a bound on requests in
//! flight, refused at once (never queued) with a retry hint, the memory
//! limiter's verdict, and the draining state during shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::memory::MemoryLimiter;
use super::status::Failure;

/// Hands out permits for requests. Cheap to clone.
#[derive(Clone)]
pub struct Admission {
    permits: Arc<Semaphore>,
    draining: Arc<AtomicBool>,
    limit: usize,
    retry_after: Duration,
    memory: MemoryLimiter,
}

impl Admission {
    pub fn new(max_concurrent: usize, retry_after: Duration, memory: MemoryLimiter) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent)),
            draining: Arc::new(AtomicBool::new(false)),
            limit: max_concurrent,
            retry_after,
            memory,
        }
    }

    /// The memory limiter requests reserve their bytes from.
    pub fn memory(&self) -> &MemoryLimiter {
        &self.memory
    }

    /// A permit held for the whole request, including reading its body.
    pub fn try_admit(&self) -> Result<OwnedSemaphorePermit, Failure> {
        if self.draining.load(Ordering::Acquire) {
            return Err(Failure::ShuttingDown {
                message: "StreamGate is shutting down; retry against another instance or later"
                    .into(),
                retry_after: self.retry_after,
            });
        }
        self.memory.check()?;
        self.permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| Failure::Overloaded {
                message: format!(
                    "too many concurrent requests (limit {}); retry later",
                    self.limit
                ),
                retry_after: self.retry_after,
            })
    }

    /// From now on every new request is refused with 503 / UNAVAILABLE.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.limit - self.permits.available_permits()
    }
}
