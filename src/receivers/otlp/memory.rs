//! The memory limiter: keeps StreamGate's resident memory under a hard
//! limit by refusing new data, with a retry hint, above a soft one.
//!
//! The limit is the cgroup's (`memory.max`, or v1's
//! `memory.limit_in_bytes`) when there is one, else the machine's memory,
//! unless configured. A sampler thread reads the resident set size
//! (`/proc/self/status`) every `check_interval` (and, while above the soft
//! limit, first has the allocator return the freed pages it holds); above
//! the soft limit every
//! new request is refused with 429 / `RESOURCE_EXHAUSTED` and
//! `Retry-After` / `RetryInfo`, so senders back off and retry instead of
//! StreamGate growing until the kernel kills it.
//!
//! Between two samples, and while a request is being read and decoded,
//! memory grows by the requests in flight. Their bytes are reserved from
//! a budget of `hard − soft` (wire bytes as they arrive, then the
//! decompressed body), and a request that does not fit is refused the
//! same way. So what is kept (at most the soft limit when admission
//! stops) plus what is in flight (at most the budget) stays under the
//! hard limit. Since what is kept can pass the soft limit between two
//! samples, a reservation is also refused while the last sample plus the
//! bytes would come within a quarter of the budget of the hard limit:
//! that quarter is left for other transient memory (rendering `/metrics`,
//! writing state).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::telemetry::Telemetry;
use crate::telemetry::allocator::memory_limit_bytes;
use crate::telemetry::process::resident_bytes;

use super::config::{MemoryLimit, MemoryLimiterConfig};
use super::status::Failure;

/// Budget permits are whole KiB.
const PERMIT_BYTES: u64 = 1024;

/// Where the limit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitSource {
    /// `receivers.otlp.memory_limiter.limit`.
    Configured,
    /// The cgroup's memory limit, else the machine's memory.
    Detected,
    /// None could be read: limiting is off.
    Unknown,
}

impl LimitSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitSource::Configured => "configured",
            LimitSource::Detected => "cgroup or machine memory",
            LimitSource::Unknown => "unknown",
        }
    }
}

/// The limits in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimits {
    pub limit: u64,
    pub soft: u64,
    pub hard: u64,
    pub source: LimitSource,
}

impl MemoryLimits {
    /// Resolves the configuration against this machine.
    pub fn resolve(config: &MemoryLimiterConfig) -> Self {
        let (limit, source) = match config.limit {
            MemoryLimit::Size(size) => (size.bytes(), LimitSource::Configured),
            MemoryLimit::Auto => match memory_limit_bytes() {
                Some(bytes) if bytes >= 1.0 => (bytes as u64, LimitSource::Detected),
                _ => (0, LimitSource::Unknown),
            },
        };
        Self::from_limit(limit, source, config.soft_percent, config.hard_percent)
    }

    /// Soft and hard limits as percentages of `limit`.
    pub fn from_limit(limit: u64, source: LimitSource, soft_percent: u8, hard_percent: u8) -> Self {
        let share = |p: u8| (u128::from(limit) * u128::from(p) / 100) as u64;
        Self {
            limit,
            soft: share(soft_percent),
            hard: share(hard_percent),
            source,
        }
    }

    /// Whether there is anything to enforce.
    pub fn enabled(&self) -> bool {
        self.limit > 0 && self.soft > 0
    }
}

/// The limiter shared by both servers. Cheap to clone.
#[derive(Clone)]
pub struct MemoryLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    limits: MemoryLimits,
    /// The last resident-memory sample, bytes.
    resident: AtomicU64,
    /// Whether the last sample was above the soft limit.
    above_soft: AtomicBool,
    /// In-flight request bytes, in KiB permits.
    budget: Arc<Semaphore>,
    budget_bytes: u64,
    budget_permits: usize,
    retry_after: Duration,
    stop: AtomicBool,
}

/// Bytes of a request held against the in-flight budget until dropped.
#[derive(Debug, Default)]
pub struct Reservation {
    permits: Option<OwnedSemaphorePermit>,
}

impl Reservation {
    /// Bytes held (rounded up to whole KiB).
    pub fn bytes(&self) -> u64 {
        self.permits
            .as_ref()
            .map_or(0, |p| p.num_permits() as u64 * PERMIT_BYTES)
    }

    fn merge(&mut self, more: OwnedSemaphorePermit) {
        match &mut self.permits {
            Some(held) => held.merge(more),
            None => self.permits = Some(more),
        }
    }
}

impl MemoryLimiter {
    /// A limiter for `limits`; nothing is sampled until [`MemoryLimiter::start`].
    pub fn new(limits: MemoryLimits, retry_after: Duration) -> Self {
        let budget_bytes = limits.hard.saturating_sub(limits.soft);
        let permits = (budget_bytes / PERMIT_BYTES).min(Semaphore::MAX_PERMITS as u64) as usize;
        Self {
            inner: Arc::new(Inner {
                limits,
                resident: AtomicU64::new(0),
                above_soft: AtomicBool::new(false),
                budget: Arc::new(Semaphore::new(permits)),
                budget_bytes,
                budget_permits: permits,
                retry_after,
                stop: AtomicBool::new(false),
            }),
        }
    }

    /// No limits: every check passes.
    pub fn unlimited() -> Self {
        Self::new(
            MemoryLimits::from_limit(0, LimitSource::Unknown, 0, 0),
            Duration::from_secs(1),
        )
    }

    pub fn limits(&self) -> MemoryLimits {
        self.inner.limits
    }

    /// The last resident-memory sample, bytes (0 before the first).
    pub fn resident(&self) -> u64 {
        self.inner.resident.load(Ordering::Relaxed)
    }

    /// Bytes of the in-flight budget in use now.
    pub fn in_flight_bytes(&self) -> u64 {
        let inner = &self.inner;
        let held = inner.budget_permits - inner.budget.available_permits();
        held as u64 * PERMIT_BYTES
    }

    /// Records a resident-memory reading and whether it is above the soft
    /// limit.
    pub fn observe(&self, resident: u64) {
        let inner = &self.inner;
        inner.resident.store(resident, Ordering::Relaxed);
        let above = inner.limits.enabled() && resident > inner.limits.soft;
        let was = inner.above_soft.swap(above, Ordering::Relaxed);
        if above && !was {
            tracing::warn!(
                resident_bytes = resident,
                soft_limit_bytes = inner.limits.soft,
                "memory above the soft limit: refusing new data until it falls"
            );
        } else if was && !above {
            tracing::info!(
                resident_bytes = resident,
                "memory back under the soft limit: accepting data"
            );
        }
    }

    /// Whether the last sample was above the soft limit.
    pub fn above_soft(&self) -> bool {
        self.inner.above_soft.load(Ordering::Relaxed)
    }

    /// Starts the sampler thread, which also reports the in-flight bytes
    /// to `telemetry`; it stops when the limiter is dropped or
    /// [`MemoryLimiter::stop`] is called.
    pub fn start(
        &self,
        interval: Duration,
        telemetry: Option<Arc<Telemetry>>,
    ) -> Option<JoinHandle<()>> {
        if !self.inner.limits.enabled() {
            return None;
        }
        let weak = Arc::downgrade(&self.inner);
        let spawned = std::thread::Builder::new()
            .name("memory-limiter".into())
            .spawn(move || {
                loop {
                    let Some(inner) = weak.upgrade() else { return };
                    if inner.stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let limiter = MemoryLimiter { inner };
                    if let Some(resident) = resident_bytes() {
                        limiter.observe(resident);
                        // Above the soft limit, freed memory the allocator
                        // still holds (request bodies read and dropped) is
                        // returned at once, and memory read again: it is
                        // often what keeps resident memory up.
                        if limiter.above_soft() {
                            crate::telemetry::allocator::release_free_memory();
                            if let Some(resident) = resident_bytes() {
                                limiter.observe(resident);
                            }
                        }
                    }
                    if let Some(t) = &telemetry {
                        t.set_in_flight_bytes(limiter.in_flight_bytes());
                    }
                    drop(limiter);
                    std::thread::sleep(interval);
                }
            });
        match spawned {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the memory limiter's sampler");
                None
            }
        }
    }

    /// Stops the sampler thread.
    pub fn stop(&self) {
        self.inner.stop.store(true, Ordering::Relaxed);
    }

    /// Refuses a new request while memory is above the soft limit.
    pub fn check(&self) -> Result<(), Failure> {
        let inner = &self.inner;
        if !inner.above_soft.load(Ordering::Relaxed) {
            return Ok(());
        }
        Err(Failure::MemoryLimited {
            message: format!(
                "memory limiter: resident memory {} is above the soft limit {}; retry later",
                mib(inner.resident.load(Ordering::Relaxed)),
                mib(inner.limits.soft)
            ),
            retry_after: inner.retry_after,
        })
    }

    /// Adds `bytes` of a request in flight to `held`; refuses the request
    /// if the in-flight budget cannot take them now.
    pub fn reserve(&self, held: &mut Reservation, bytes: u64) -> Result<(), Failure> {
        let inner = &self.inner;
        if !inner.limits.enabled() || bytes == 0 {
            return Ok(());
        }
        let permits = bytes.div_ceil(PERMIT_BYTES);
        let refused = || Failure::MemoryLimited {
            message: format!(
                "memory limiter: requests in flight would exceed their budget of {} (the hard limit less the soft); retry later",
                mib(inner.budget_bytes)
            ),
            retry_after: inner.retry_after,
        };
        // What is kept may have grown past the soft limit between two
        // samples, and the allocator keeps freed pages a while: once the
        // last sample is near the hard limit, in-flight bytes would take
        // it over, so they are refused too. A quarter of the budget stays
        // free for everything else that allocates (a `/metrics` render, a
        // state snapshot).
        let ceiling = inner.limits.hard.saturating_sub(inner.budget_bytes / 4);
        let resident = inner.resident.load(Ordering::Relaxed);
        if resident.saturating_add(bytes) > ceiling {
            return Err(Failure::MemoryLimited {
                message: format!(
                    "memory limiter: resident memory {} is near the hard limit {}; retry later",
                    mib(resident),
                    mib(inner.limits.hard)
                ),
                retry_after: inner.retry_after,
            });
        }
        let permits = u32::try_from(permits).map_err(|_| refused())?;
        let got = inner
            .budget
            .clone()
            .try_acquire_many_owned(permits)
            .map_err(|_| refused())?;
        held.merge(got);
        Ok(())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// `bytes` as MiB with one decimal, for messages.
fn mib(bytes: u64) -> String {
    format!("{:.1}MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(limit_mib: u64) -> MemoryLimiter {
        MemoryLimiter::new(
            MemoryLimits::from_limit(limit_mib << 20, LimitSource::Configured, 80, 90),
            Duration::from_secs(2),
        )
    }

    #[test]
    fn refuses_above_the_soft_limit_with_a_retry_hint_and_recovers() {
        let m = limiter(100);
        assert_eq!(m.limits().soft, 80 << 20);
        assert_eq!(m.limits().hard, 90 << 20);
        m.observe(70 << 20);
        assert!(m.check().is_ok());
        m.observe(81 << 20);
        let failure = m.check().unwrap_err();
        assert_eq!(failure.http_status(), http::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(failure.retry_after(), Some(Duration::from_secs(2)));
        assert!(
            failure.to_string().contains("soft limit 80.0MiB"),
            "{failure}"
        );
        m.observe(79 << 20);
        assert!(m.check().is_ok());
    }

    #[test]
    fn in_flight_bytes_are_bounded_by_hard_less_soft_and_returned() {
        let m = limiter(100);
        let mut a = Reservation::default();
        m.reserve(&mut a, 6 << 20).unwrap();
        m.reserve(&mut a, 1).unwrap();
        assert_eq!(a.bytes(), (6 << 20) + 1024);
        let mut b = Reservation::default();
        let refused = m.reserve(&mut b, 5 << 20).unwrap_err();
        assert!(
            refused.to_string().contains("budget of 10.0MiB"),
            "{refused}"
        );
        assert_eq!(b.bytes(), 0);
        assert_eq!(m.in_flight_bytes(), (6 << 20) + 1024);
        drop(a);
        assert_eq!(m.in_flight_bytes(), 0);
        m.reserve(&mut b, 5 << 20).unwrap();
    }

    /// Near the hard limit (last sample within a quarter of the budget
    /// of it), in-flight bytes are refused even with budget left.
    #[test]
    fn in_flight_bytes_are_refused_near_the_hard_limit() {
        let m = limiter(100);
        // hard 90 MiB, budget 10 MiB: the ceiling is 87.5 MiB.
        m.observe(86 << 20);
        let mut a = Reservation::default();
        m.reserve(&mut a, 1 << 20).unwrap();
        m.observe(87 << 20);
        let refused = m.reserve(&mut a, 1 << 20).unwrap_err();
        assert_eq!(refused.http_status(), http::StatusCode::TOO_MANY_REQUESTS);
        assert!(
            refused.to_string().contains("near the hard limit"),
            "{refused}"
        );
        assert_eq!(a.bytes(), 1 << 20, "the refused bytes were not taken");
        m.observe(80 << 20);
        m.reserve(&mut a, 1 << 20).unwrap();
    }

    #[test]
    fn no_limit_means_nothing_is_refused() {
        let m = MemoryLimiter::unlimited();
        m.observe(u64::MAX);
        assert!(m.check().is_ok());
        let mut r = Reservation::default();
        m.reserve(&mut r, u64::MAX).unwrap();
        assert!(m.start(Duration::from_millis(1), None).is_none());
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn resolves_a_limit_on_this_machine() {
        let auto = MemoryLimits::resolve(&MemoryLimiterConfig::default());
        assert!(auto.enabled(), "{auto:?}");
        assert!(auto.soft < auto.hard && auto.hard < auto.limit, "{auto:?}");
    }

    #[test]
    fn the_sampler_thread_observes_and_stops() {
        let m = limiter(1 << 20);
        let telemetry = Arc::new(Telemetry::new());
        let handle = m
            .start(Duration::from_millis(5), Some(telemetry))
            .expect("started");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while m.resident() == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(m.resident() > 0);
        m.stop();
        handle.join().expect("sampler exits");
    }
}
