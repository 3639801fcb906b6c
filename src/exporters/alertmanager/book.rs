//! [`AlertBook`]: the lifecycle of StreamGate's own alerts, with time
//! passed in (no clock, no I/O): create, deduplicate by fingerprint,
//! escalate severity after a while, resolve, and keep a bounded history.
//!
//! A fingerprint is a hash of the alert's labels *without* `severity`,
//! so the same condition is one alert however its severity changes.
//! Alertmanager, however, identifies alerts by their full label set: an
//! escalation is therefore reported as the old label set resolved and
//! the new one firing ([`Change`]), and the caller pushes both.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{Hash, Hasher};

use crate::model::alert::{Alert, AlertError, Severity, Source};

/// A condition a source reports now.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Labels without `severity` (`alertname` included).
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub severity: Severity,
    pub source: Source,
}

/// What changed, to be pushed to Alertmanager now.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Firing(Alert),
    Resolved(Alert),
}

/// Settings of the lifecycle.
#[derive(Debug, Clone, PartialEq)]
pub struct BookConfig {
    /// A warning still active after this many seconds becomes critical.
    pub escalate_after_secs: f64,
    /// Resolved alerts kept for `history`.
    pub history: usize,
    /// Most active alerts; further new ones are refused (and counted by
    /// the caller).
    pub max_active: usize,
}

/// Active alerts and the recent history; see the module docs.
#[derive(Debug, Clone)]
pub struct AlertBook {
    cfg: BookConfig,
    active: HashMap<u64, Alert>,
    history: VecDeque<Alert>,
}

/// The fingerprint of a label set, ignoring `severity`.
pub fn fingerprint(labels: &BTreeMap<String, String>) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    for (k, v) in labels.iter().filter(|(k, _)| k.as_str() != "severity") {
        k.hash(&mut h);
        v.hash(&mut h);
    }
    h.finish()
}

fn with_severity(labels: &BTreeMap<String, String>, s: Severity) -> BTreeMap<String, String> {
    let mut l = labels.clone();
    l.insert("severity".into(), s.as_str().into());
    l
}

impl AlertBook {
    pub fn new(cfg: BookConfig) -> Self {
        Self {
            cfg,
            active: HashMap::new(),
            history: VecDeque::new(),
        }
    }

    /// Active alerts, newest first.
    pub fn active(&self) -> Vec<Alert> {
        let mut v: Vec<Alert> = self.active.values().cloned().collect();
        v.sort_by(|a, b| b.starts_at.total_cmp(&a.starts_at).then(a.id.cmp(&b.id)));
        v
    }

    /// Resolved alerts, most recently resolved first.
    pub fn history(&self) -> Vec<Alert> {
        self.history.iter().rev().cloned().collect()
    }

    /// An active or resolved alert by id.
    pub fn get(&self, id: &str) -> Option<Alert> {
        self.active
            .values()
            .find(|a| a.id == id)
            .or_else(|| self.history.iter().rev().find(|a| a.id == id))
            .cloned()
    }

    /// Active alerts by severity.
    pub fn count_by_severity(&self) -> [usize; 3] {
        let mut c = [0; 3];
        for a in self.active.values() {
            c[a.severity as usize] += 1;
        }
        c
    }

    fn retire(&mut self, mut alert: Alert, now: f64) -> Alert {
        alert.ends_at = Some(alert.ends_at.map_or(now, |e| e.min(now)));
        self.history.push_back(alert.clone());
        while self.history.len() > self.cfg.history {
            self.history.pop_front();
        }
        alert
    }

    /// Brings the alerts of the automatic `sources` in line with what
    /// they report now: new candidates fire, known ones are refreshed
    /// (and escalated when due), and alerts of those sources that are no
    /// longer reported resolve. Manual alerts are only touched by their
    /// own end time. Returns the changes to push and how many new
    /// candidates were refused because `max_active` was reached.
    pub fn reconcile(
        &mut self,
        now: f64,
        sources: &[Source],
        candidates: Vec<Candidate>,
    ) -> (Vec<Change>, usize) {
        let mut changes = Vec::new();
        let mut refused = 0;
        let mut seen = std::collections::HashSet::new();
        for c in candidates {
            let fp = fingerprint(&c.labels);
            if !seen.insert(fp) {
                continue;
            }
            match self.active.get_mut(&fp) {
                Some(a) => {
                    a.updated_at = now;
                    // The annotations stay those of the moment it fired
                    // (or escalated): they describe the incident, and the
                    // resolved notification and the history carry them,
                    // where the latest refresh would describe a value
                    // already back to normal.
                    // A source may raise the severity itself (e.g. a
                    // closer forecast); it never lowers it.
                    let wanted = c.severity.max(a.severity);
                    let due = a.severity == Severity::Warning
                        && now - a.starts_at >= self.cfg.escalate_after_secs;
                    let target = if due { Severity::Critical } else { wanted };
                    if target != a.severity {
                        let old = a.clone();
                        a.annotations = c.annotations;
                        a.severity = target;
                        a.escalated |= due;
                        a.labels = with_severity(&c.labels, target);
                        let mut resolved_old = old;
                        resolved_old.ends_at = Some(now);
                        changes.push(Change::Resolved(resolved_old));
                        changes.push(Change::Firing(a.clone()));
                    }
                }
                None => {
                    if self.active.len() >= self.cfg.max_active {
                        refused += 1;
                        continue;
                    }
                    let alert = Alert {
                        id: format!("{fp:016x}"),
                        labels: with_severity(&c.labels, c.severity),
                        annotations: c.annotations,
                        source: c.source,
                        severity: c.severity,
                        starts_at: now,
                        updated_at: now,
                        ends_at: None,
                        escalated: false,
                    };
                    self.active.insert(fp, alert.clone());
                    changes.push(Change::Firing(alert));
                }
            }
        }
        // Gone from their source, or a manual alert past its end.
        let gone: Vec<u64> = self
            .active
            .iter()
            .filter(|(fp, a)| {
                (sources.contains(&a.source) && !seen.contains(fp))
                    || (a.source == Source::Manual && a.ends_at.is_some_and(|e| e <= now))
            })
            .map(|(fp, _)| *fp)
            .collect();
        for fp in gone {
            if let Some(a) = self.active.remove(&fp) {
                let a = self.retire(a, now);
                changes.push(Change::Resolved(a));
            }
        }
        (changes, refused)
    }

    /// Creates (or refreshes) a manual alert. `labels` must hold
    /// `alertname`; `severity` goes into the labels.
    pub fn create_manual(
        &mut self,
        now: f64,
        labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
        severity: Severity,
        ends_at: Option<f64>,
    ) -> Result<Alert, AlertError> {
        if !labels.contains_key("alertname") {
            return Err(AlertError::Invalid("labels.alertname is required".into()));
        }
        if let Some(e) = ends_at
            && e <= now
        {
            return Err(AlertError::Invalid("endsAt must be in the future".into()));
        }
        let fp = fingerprint(&labels);
        if let Some(a) = self.active.get_mut(&fp) {
            a.updated_at = now;
            a.annotations = annotations;
            a.ends_at = ends_at;
            if severity != a.severity {
                a.severity = severity;
                a.labels = with_severity(&labels, severity);
            }
            return Ok(a.clone());
        }
        if self.active.len() >= self.cfg.max_active {
            return Err(AlertError::Full(self.cfg.max_active));
        }
        let alert = Alert {
            id: format!("{fp:016x}"),
            labels: with_severity(&labels, severity),
            annotations,
            source: Source::Manual,
            severity,
            starts_at: now,
            updated_at: now,
            ends_at,
            escalated: false,
        };
        self.active.insert(fp, alert.clone());
        Ok(alert)
    }

    /// Resolves an active alert by id.
    pub fn resolve(&mut self, id: &str, now: f64) -> Result<Alert, AlertError> {
        let fp = self
            .active
            .iter()
            .find(|(_, a)| a.id == id)
            .map(|(fp, _)| *fp)
            .ok_or_else(|| AlertError::NotFound(id.to_string()))?;
        let a = self
            .active
            .remove(&fp)
            .ok_or(AlertError::NotFound(id.into()))?;
        Ok(self.retire(a, now))
    }

    /// The active alerts and the history, for durable state.
    pub fn saved(&self) -> (Vec<&Alert>, Vec<&Alert>) {
        (
            self.active.values().collect(),
            self.history.iter().collect(),
        )
    }

    /// Takes back saved alerts into an empty book (at start, before any
    /// source reports): active ones up to `max_active`, the history up to
    /// its bound. Returns (taken back, left out).
    pub fn restore(&mut self, active: Vec<Alert>, history: Vec<Alert>) -> (u64, u64) {
        let (mut kept, mut left) = (0, 0);
        for alert in active {
            if self.active.len() >= self.cfg.max_active || alert.ends_at.is_some_and(|e| e.is_nan())
            {
                left += 1;
                continue;
            }
            self.active.insert(fingerprint(&alert.labels), alert);
            kept += 1;
        }
        let skip = history.len().saturating_sub(self.cfg.history);
        left += skip as u64;
        for alert in history.into_iter().skip(skip) {
            self.history.push_back(alert);
            kept += 1;
        }
        (kept, left)
    }

    /// Alerts to re-send periodically: every active one, and those
    /// resolved within `resolved_for` seconds (so a receiver that missed
    /// the resolution still learns of it).
    ///
    /// Alertmanager knows an alert by its label set and keeps the last
    /// copy it is sent, so a label set goes out once: active if an alert
    /// with those labels is active (an alert that resolved and fired
    /// again), else its most recent resolution. Sending an older
    /// resolved copy beside an active one would resolve the active alert
    /// in Alertmanager until the next re-send.
    pub fn to_resend(&self, now: f64, resolved_for: f64) -> Vec<Alert> {
        let mut v = self.active();
        let mut sent: std::collections::HashSet<&BTreeMap<String, String>> =
            self.active.values().map(|a| &a.labels).collect();
        // Most recently resolved first, so the first copy of a label set
        // is its latest.
        for a in self.history.iter().rev() {
            if a.ends_at.is_some_and(|e| now - e <= resolved_for) && sent.insert(&a.labels) {
                v.push(a.clone());
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book() -> AlertBook {
        AlertBook::new(BookConfig {
            escalate_after_secs: 600.0,
            history: 3,
            max_active: 10,
        })
    }

    fn cand(name: &str, service: &str, severity: Severity) -> Candidate {
        Candidate {
            labels: [
                ("alertname".to_string(), name.to_string()),
                ("service".to_string(), service.to_string()),
            ]
            .into(),
            annotations: [("summary".to_string(), format!("{name} on {service}"))].into(),
            severity,
            source: Source::Anomaly,
        }
    }

    fn firing(changes: &[Change]) -> Vec<&Alert> {
        changes
            .iter()
            .filter_map(|c| match c {
                Change::Firing(a) => Some(a),
                _ => None,
            })
            .collect()
    }

    fn resolved(changes: &[Change]) -> Vec<&Alert> {
        changes
            .iter()
            .filter_map(|c| match c {
                Change::Resolved(a) => Some(a),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn create_deduplicate_escalate_resolve() {
        let mut b = book();
        let src = [Source::Anomaly];
        let (c, _) = b.reconcile(0.0, &src, vec![cand("A", "api", Severity::Warning)]);
        assert_eq!(firing(&c).len(), 1);
        let id = firing(&c)[0].id.clone();
        assert_eq!(firing(&c)[0].labels["severity"], "warning");
        // Reported again: the same alert, nothing to push.
        let (c, _) = b.reconcile(60.0, &src, vec![cand("A", "api", Severity::Warning)]);
        assert!(c.is_empty(), "{c:?}");
        assert_eq!(b.active().len(), 1);
        // After escalate_after: the warning label set resolves and a
        // critical one fires, under the same id.
        let (c, _) = b.reconcile(600.0, &src, vec![cand("A", "api", Severity::Warning)]);
        assert_eq!(resolved(&c)[0].labels["severity"], "warning");
        assert_eq!(resolved(&c)[0].ends_at, Some(600.0));
        assert_eq!(firing(&c)[0].labels["severity"], "critical");
        assert_eq!(firing(&c)[0].id, id);
        assert!(firing(&c)[0].escalated);
        assert_eq!(b.count_by_severity(), [0, 0, 1]);
        // No longer reported: resolved, with endsAt, into the history.
        let (c, _) = b.reconcile(660.0, &src, vec![]);
        assert_eq!(resolved(&c)[0].ends_at, Some(660.0));
        assert!(b.active().is_empty());
        assert_eq!(b.history()[0].id, id);
        assert_eq!(b.get(&id).map(|a| a.ends_at), Some(Some(660.0)));
    }

    /// A refresh does not rewrite what the alert said when it fired: the
    /// resolved notification describes the incident, not the calm value
    /// of the last refresh; an escalation fires with the new words.
    #[test]
    fn annotations_are_those_of_the_firing() {
        let mut b = book();
        let src = [Source::Anomaly];
        let said = |summary: &str, severity| {
            let mut c = cand("A", "api", severity);
            c.annotations = [("summary".to_string(), summary.to_string())].into();
            c
        };
        b.reconcile(
            0.0,
            &src,
            vec![said("300 where 100 was expected", Severity::Warning)],
        );
        b.reconcile(
            60.0,
            &src,
            vec![said("100 where 100 was expected", Severity::Warning)],
        );
        let (c, _) = b.reconcile(120.0, &src, vec![]);
        assert_eq!(
            resolved(&c)[0].annotations["summary"],
            "300 where 100 was expected"
        );
        b.reconcile(200.0, &src, vec![said("first", Severity::Warning)]);
        let (c, _) = b.reconcile(800.0, &src, vec![said("escalated", Severity::Warning)]);
        assert_eq!(resolved(&c)[0].annotations["summary"], "first");
        assert_eq!(firing(&c)[0].annotations["summary"], "escalated");
    }

    #[test]
    fn history_is_bounded_and_resolved_alerts_are_resent_for_a_while() {
        let mut b = book();
        let src = [Source::Anomaly];
        for i in 0..5 {
            let name = format!("A{i}");
            b.reconcile(
                f64::from(i) * 10.0,
                &src,
                vec![cand(&name, "api", Severity::Info)],
            );
            b.reconcile(f64::from(i) * 10.0 + 5.0, &src, vec![]);
        }
        assert_eq!(b.history().len(), 3);
        assert_eq!(b.history()[0].labels["alertname"], "A4");
        assert_eq!(b.to_resend(50.0, 10.0).len(), 1, "only A4 ended 5 s ago");
    }

    #[test]
    fn a_label_set_is_resent_once_active_if_it_fired_again() {
        let mut b = book();
        let src = [Source::Anomaly];
        // Fires, resolves, fires, resolves, fires again: two resolved
        // copies in the history with the labels of the active alert.
        for i in 0..2 {
            let t = f64::from(i) * 20.0;
            b.reconcile(t, &src, vec![cand("Flap", "api", Severity::Warning)]);
            b.reconcile(t + 10.0, &src, vec![]);
        }
        b.reconcile(40.0, &src, vec![cand("Flap", "api", Severity::Warning)]);
        assert_eq!(b.history().len(), 2);
        let sent = b.to_resend(45.0, 300.0);
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].ends_at, None, "the active copy, not a resolved one");

        // Resolved again: only the latest resolution goes out.
        b.reconcile(50.0, &src, vec![]);
        let sent = b.to_resend(55.0, 300.0);
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].ends_at, Some(50.0));

        // Another label set resolved meanwhile is still re-sent.
        b.reconcile(60.0, &src, vec![cand("Other", "api", Severity::Warning)]);
        b.reconcile(70.0, &src, vec![]);
        assert_eq!(b.to_resend(75.0, 300.0).len(), 2);
    }

    #[test]
    fn sources_only_resolve_their_own_alerts_and_max_active_is_kept() {
        let mut b = AlertBook::new(BookConfig {
            escalate_after_secs: 1e9,
            history: 10,
            max_active: 2,
        });
        let manual = b
            .create_manual(
                0.0,
                [("alertname".to_string(), "Deploy".to_string())].into(),
                BTreeMap::new(),
                Severity::Info,
                Some(100.0),
            )
            .expect("created");
        let (_, refused) = b.reconcile(
            1.0,
            &[Source::Anomaly],
            vec![
                cand("A", "api", Severity::Warning),
                cand("B", "api", Severity::Warning),
            ],
        );
        assert_eq!(refused, 1);
        // The anomaly source reporting nothing does not touch the manual
        // alert; its end time does.
        let (c, _) = b.reconcile(50.0, &[Source::Anomaly], vec![]);
        assert_eq!(resolved(&c).len(), 1);
        assert!(b.get(&manual.id).is_some_and(|a| a.ends_at == Some(100.0)));
        let (c, _) = b.reconcile(100.0, &[Source::Anomaly], vec![]);
        assert_eq!(resolved(&c)[0].id, manual.id);
        assert!(b.active().is_empty());
    }

    #[test]
    fn manual_alerts_need_a_name_and_resolve_by_id() {
        let mut b = book();
        let err = b
            .create_manual(
                0.0,
                BTreeMap::new(),
                BTreeMap::new(),
                Severity::Warning,
                None,
            )
            .unwrap_err();
        assert!(err.to_string().contains("alertname"), "{err}");
        let a = b
            .create_manual(
                0.0,
                [("alertname".to_string(), "X".to_string())].into(),
                BTreeMap::new(),
                Severity::Critical,
                None,
            )
            .expect("created");
        assert_eq!(a.labels["severity"], "critical");
        assert!(matches!(
            b.resolve("nope", 1.0),
            Err(AlertError::NotFound(_))
        ));
        let r = b.resolve(&a.id, 5.0).expect("resolved");
        assert_eq!(r.ends_at, Some(5.0));
        assert!(b.active().is_empty());
    }

    #[test]
    fn fingerprint_ignores_severity_and_order() {
        let a: BTreeMap<String, String> = [
            ("alertname".to_string(), "X".to_string()),
            ("severity".to_string(), "warning".to_string()),
        ]
        .into();
        let b: BTreeMap<String, String> = [("alertname".to_string(), "X".to_string())].into();
        assert_eq!(fingerprint(&a), fingerprint(&b));
    }
}
