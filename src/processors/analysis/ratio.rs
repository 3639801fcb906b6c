//! [`RatioGroup`]: the share of a counter's increase that falls on some
//! of its series, per evaluation step — e.g. the error ratio of a span
//! operation from `traces.span.metrics.calls` split by `status.code`.
//!
//! A group is the set of cumulative counter series that differ only in
//! one attribute (the rule's `over`); its members are marked numerator or
//! not. Each step the ratio is `Σ increase(numerator) / Σ increase(all)`
//! over the counts since the previous step, so a member that was not
//! re-sent (spanmetrics only re-sends changed series) counts as no
//! increase rather than repeating its last rate. A decrease is a counter
//! reset: the new value is the increase. A step where nothing increased
//! has no ratio (no traffic is not a 0 % error rate).

use std::collections::HashMap;

/// One member counter series.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Member {
    numerator: bool,
    /// Latest cumulative value received.
    current: f64,
    /// The value at the previous step, once a step has seen the member.
    at_last_step: Option<f64>,
}

/// The members of one ratio and their counts at the last step.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RatioGroup {
    members: HashMap<u64, Member>,
    /// Whether a step has run: members first seen after that started at 0
    /// within the step (a new status value appearing), members seen
    /// before it only set the starting point.
    stepped: bool,
}

impl RatioGroup {
    /// Records the latest cumulative value of member `id`.
    pub fn record(&mut self, id: u64, numerator: bool, value: f64) {
        if !value.is_finite() || value < 0.0 {
            return;
        }
        let stepped = self.stepped;
        self.members
            .entry(id)
            .and_modify(|m| m.current = value)
            .or_insert(Member {
                numerator,
                current: value,
                at_last_step: stepped.then_some(0.0),
            });
    }

    /// The ratio of the increases since the last step, or `None` when
    /// nothing increased (or on the first step, which sets the start).
    pub fn step(&mut self) -> Option<f64> {
        let (mut part, mut all) = (0.0, 0.0);
        for m in self.members.values_mut() {
            if let Some(before) = m.at_last_step {
                let increase = if m.current < before {
                    m.current
                } else {
                    m.current - before
                };
                all += increase;
                if m.numerator {
                    part += increase;
                }
            }
            m.at_last_step = Some(m.current);
        }
        self.stepped = true;
        (all > 0.0).then(|| part / all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: u64 = 1;
    const ERR: u64 = 2;

    #[test]
    fn ratio_of_increases_between_steps() {
        let mut g = RatioGroup::default();
        g.record(OK, false, 100.0);
        g.record(ERR, true, 10.0);
        assert_eq!(g.step(), None, "the first step only sets the start");
        g.record(OK, false, 190.0);
        g.record(ERR, true, 20.0);
        assert_eq!(g.step(), Some(0.1));
        // Only the OK series was re-sent: errors did not increase.
        g.record(OK, false, 290.0);
        assert_eq!(g.step(), Some(0.0));
        // No increase at all: no ratio.
        assert_eq!(g.step(), None);
    }

    #[test]
    fn new_member_counts_from_zero_and_reset_counts_the_new_value() {
        let mut g = RatioGroup::default();
        g.record(OK, false, 50.0);
        assert_eq!(g.step(), None);
        g.record(OK, false, 80.0);
        // The first error series appears after the first step.
        g.record(ERR, true, 10.0);
        assert_eq!(g.step(), Some(0.25));
        // The sender restarted: both counters start again.
        g.record(OK, false, 15.0);
        g.record(ERR, true, 5.0);
        assert_eq!(g.step(), Some(0.25));
        assert_eq!(g.members.len(), 2);
    }

    #[test]
    fn bad_values_are_ignored() {
        let mut g = RatioGroup::default();
        g.record(OK, false, 10.0);
        g.step();
        g.record(OK, false, f64::NAN);
        g.record(ERR, true, -3.0);
        g.record(OK, false, 20.0);
        assert_eq!(g.step(), Some(0.0));
        assert_eq!(g.members.len(), 1);
    }
}
