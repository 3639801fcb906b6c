//! Overall health from StreamGate's own signals: `ok`, `degraded` or
//! `failing`, with the reasons, for `GET /api/v1/status`.
//!
//! Counters only ever grow, so "recently" is judged against samples of
//! them taken every few seconds ([`HealthWindow::sample`], driven by a
//! task in `app.rs`) and kept for [`WINDOW_SECS`]: a reason holds while
//! its counter moved within the window, and clears by itself once the
//! trouble has stopped for that long.

use std::collections::VecDeque;

use serde::Serialize;

/// How far back "recently" reaches.
pub const WINDOW_SECS: f64 = 300.0;

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthLevel {
    Ok,
    Degraded,
    Failing,
}

/// The verdict and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    pub status: HealthLevel,
    pub reasons: Vec<String>,
}

/// The counters health is judged on, at one time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HealthCounters {
    /// Requests refused because of overload.
    pub overloaded_requests: u64,
    /// Requests refused by the memory limiter.
    pub memory_limited_requests: u64,
    /// Requests refused as malformed, too large or of an unknown type
    /// (their items cannot always be counted).
    pub refused_items: u64,
    /// Points rejected inside accepted requests (partial success).
    pub rejected_items: u64,
    /// Points counted in overflow series or skipped by a series limit.
    pub limited_points: u64,
    /// Spans the service graph dropped (its pairing store was full).
    pub dropped_spans: u64,
    /// Alert notifications that failed or were dropped.
    pub failed_notifications: u64,
    /// Alert notifications Alertmanager accepted.
    pub sent_notifications: u64,
    /// State snapshots that could not be written (a restart would lose
    /// what was learned since the last good one).
    pub failed_snapshots: u64,
    /// Items a push exporter (remote write, OTLP) lost: refused for good,
    /// given up on, or dropped from a full queue.
    pub lost_exports: u64,
    /// Items push exporters delivered.
    pub sent_exports: u64,
    /// Push requests retried (the endpoint failing: what waits in the
    /// queue is at risk).
    pub retried_exports: u64,
}

/// Recent samples of [`HealthCounters`].
#[derive(Debug, Default)]
pub struct HealthWindow {
    samples: VecDeque<(f64, HealthCounters)>,
}

impl HealthWindow {
    /// Records `counters` at `now` (seconds) and forgets samples older
    /// than the window (keeping one just outside it as the baseline).
    pub fn sample(&mut self, now: f64, counters: HealthCounters) {
        self.samples.push_back((now, counters));
        while self.samples.len() > 2 && now - self.samples[1].0 >= WINDOW_SECS {
            self.samples.pop_front();
        }
    }

    /// The verdict for `now`, given readiness and the current counters.
    pub fn assess(&self, ready: bool, draining: bool, now: HealthCounters) -> HealthReport {
        let mut reasons = Vec::new();
        let mut level = HealthLevel::Ok;
        if draining {
            level = HealthLevel::Failing;
            reasons.push("shutting down: new data is refused".to_string());
        } else if !ready {
            level = HealthLevel::Failing;
            reasons.push("not ready".to_string());
        }
        let base = self.samples.front().map(|s| s.1).unwrap_or_default();
        let d = |f: fn(&HealthCounters) -> u64| f(&now).saturating_sub(f(&base));
        let minutes = (WINDOW_SECS / 60.0) as u64;
        let mut degraded = |text: String| {
            reasons.push(text);
        };
        let overloaded = d(|c| c.overloaded_requests);
        if overloaded > 0 {
            degraded(format!(
                "overloaded: {overloaded} requests refused for lack of capacity in the last {minutes} min (senders retry)"
            ));
        }
        let limited = d(|c| c.memory_limited_requests);
        if limited > 0 {
            degraded(format!(
                "memory limit: {limited} requests refused because memory was above the soft limit in the last {minutes} min (senders retry)"
            ));
        }
        let refused = d(|c| c.refused_items);
        if refused > 0 {
            degraded(format!(
                "{refused} requests refused as malformed, too large or of an unsupported type in the last {minutes} min"
            ));
        }
        let rejected = d(|c| c.rejected_items);
        if rejected > 0 {
            degraded(format!(
                "{rejected} points rejected inside accepted requests (type conflicts and the like) in the last {minutes} min"
            ));
        }
        let limited = d(|c| c.limited_points);
        if limited > 0 {
            degraded(format!(
                "series limits reached: {limited} points went to overflow series or were not analysed in the last {minutes} min"
            ));
        }
        let dropped = d(|c| c.dropped_spans);
        if dropped > 0 {
            degraded(format!(
                "the service graph dropped {dropped} spans (pairing store full) in the last {minutes} min"
            ));
        }
        let failed = d(|c| c.failed_notifications);
        if failed > 0 {
            let sent = d(|c| c.sent_notifications);
            degraded(format!(
                "alert delivery: {failed} notifications failed or were dropped, {sent} sent, in the last {minutes} min"
            ));
        }
        let unsaved = d(|c| c.failed_snapshots);
        if unsaved > 0 {
            degraded(format!(
                "state: {unsaved} snapshots could not be written in the last {minutes} min (a restart would lose what was learned since the last good one)"
            ));
        }
        let lost = d(|c| c.lost_exports);
        let retried = d(|c| c.retried_exports);
        if lost > 0 || retried > 0 {
            let sent = d(|c| c.sent_exports);
            degraded(format!(
                "export: {lost} items lost (refused, given up on or dropped from a full queue) and {retried} requests retried, {sent} items sent, in the last {minutes} min"
            ));
        }
        if level == HealthLevel::Ok && !reasons.is_empty() {
            level = HealthLevel::Degraded;
        }
        HealthReport {
            status: level,
            reasons,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_hold_within_the_window_then_clear() {
        let mut w = HealthWindow::default();
        let calm = HealthCounters::default();
        w.sample(0.0, calm);
        assert_eq!(w.assess(true, false, calm).status, HealthLevel::Ok);
        let trouble = HealthCounters {
            overloaded_requests: 3,
            failed_notifications: 2,
            ..calm
        };
        w.sample(10.0, trouble);
        let r = w.assess(true, false, trouble);
        assert_eq!(r.status, HealthLevel::Degraded);
        assert_eq!(r.reasons.len(), 2, "{r:?}");
        assert!(r.reasons[0].contains("3 requests refused"), "{r:?}");
        // Nothing new for longer than the window: ok again.
        for t in 2..40 {
            w.sample(f64::from(t) * 10.0, trouble);
        }
        assert_eq!(w.assess(true, false, trouble).status, HealthLevel::Ok);
    }

    #[test]
    fn a_failed_snapshot_degrades() {
        let mut w = HealthWindow::default();
        let calm = HealthCounters::default();
        w.sample(0.0, calm);
        let unsaved = HealthCounters {
            failed_snapshots: 1,
            ..calm
        };
        let r = w.assess(true, false, unsaved);
        assert_eq!(r.status, HealthLevel::Degraded);
        assert!(
            r.reasons[0].contains("1 snapshots could not be written"),
            "{r:?}"
        );
    }

    /// A push exporter that retries (its endpoint down) or loses items
    /// degrades the status; one that only sends does not.
    #[test]
    fn failing_exports_degrade() {
        let mut w = HealthWindow::default();
        let calm = HealthCounters::default();
        w.sample(0.0, calm);
        let sending = HealthCounters {
            sent_exports: 1000,
            ..calm
        };
        assert_eq!(w.assess(true, false, sending).status, HealthLevel::Ok);
        let retrying = HealthCounters {
            retried_exports: 4,
            ..sending
        };
        let r = w.assess(true, false, retrying);
        assert_eq!(r.status, HealthLevel::Degraded);
        assert!(r.reasons[0].contains("4 requests retried"), "{r:?}");
        let losing = HealthCounters {
            lost_exports: 500,
            ..sending
        };
        let r = w.assess(true, false, losing);
        assert_eq!(r.status, HealthLevel::Degraded);
        assert!(r.reasons[0].contains("500 items lost"), "{r:?}");
    }

    #[test]
    fn draining_or_unready_is_failing() {
        let w = HealthWindow::default();
        let c = HealthCounters::default();
        let r = w.assess(true, true, c);
        assert_eq!(r.status, HealthLevel::Failing);
        assert!(r.reasons[0].contains("shutting down"));
        assert_eq!(w.assess(false, false, c).status, HealthLevel::Failing);
    }
}
