//! Built-in alerting, for users who want alerts without a rule evaluator:
//! anomalies and threshold forecasts of the analysis processor become
//! alerts with a lifecycle, kept for the API and pushed to Alertmanager.
//!
//! | file | owns |
//! |---|---|
//! | `book.rs` | [`AlertBook`]: create, deduplicate by fingerprint, escalate, resolve, history (pure) |
//! | `wire.rs` | Alertmanager API v2 `postableAlerts` JSON |
//! | `notifier.rs` | [`Notifier`]: bounded queue, retries with backoff, outcome counts |
//! | `config.rs` | `exporters.alertmanager` settings |
//!
//! Every `evaluation_interval` the component reads the current
//! recommendations (a series in an anomaly → `StreamGateAnomaly`, a level
//! forecast to be crossed within `forecast_within` →
//! `StreamGateForecastBreach`), reconciles them with the book and pushes
//! what changed; every `resend_interval` it re-sends all active alerts
//! and those resolved in the last 15 minutes, with `endsAt` three resend
//! intervals ahead for firing ones, so Alertmanager resolves them itself
//! if StreamGate disappears. All of it runs on its own task and reads
//! snapshots: it never blocks ingest.

mod book;
pub mod config;
mod notifier;
pub mod wire;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::model::prometheus_label::{is_settable_label_name, sanitize_label_into};
use crate::model::recommendation::{Recommendation, RecommendationSource};
use crate::pipeline::Shutdown;
use crate::pipeline::query::AlertsQuery;
use crate::telemetry::Telemetry;

pub use crate::model::alert::{Alert, AlertError, Severity, Source};
pub use book::{AlertBook, BookConfig, Candidate, Change};
pub use config::AlertingConfig;
pub use notifier::{Notifier, NotifierConfig};

/// Where the runbooks live; alerts link to their section.
pub const RUNBOOK_BASE: &str =
    "https://github.com/streamgate/streamgate/blob/main/docs/runbooks.md";
/// Resolved alerts are re-sent for this long.
const RESEND_RESOLVED_SECS: f64 = 15.0 * 60.0;

/// The alerting component; shared as `Arc<Alerting>`.
pub struct Alerting {
    cfg: AlertingConfig,
    book: Mutex<AlertBook>,
    source: Option<Arc<dyn RecommendationSource>>,
    notifier: Option<Notifier>,
    telemetry: Arc<Telemetry>,
    /// `<external url>/api/v1/alerts`; an alert's `generatorURL` is this
    /// plus `/<id>`.
    generator_base: String,
}

/// Unix time now, in seconds.
fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A series' attributes as alert labels, named as `/metrics` names them
/// (`service.name` → `service_name`, `1st` → `key_1st`): two keys that
/// make the same name join their values with `;` in key order, as the
/// exporter does, rather than one silently replacing the other.
fn alert_labels(attributes: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    let mut name = String::new();
    for (key, value) in attributes {
        if value.is_empty() {
            continue;
        }
        name.clear();
        sanitize_label_into(key, &mut name);
        if name.is_empty() {
            continue;
        }
        match labels.get_mut(&name) {
            Some(joined) => {
                joined.push(';');
                joined.push_str(value);
            }
            None => {
                labels.insert(name.clone(), value.clone());
            }
        }
    }
    labels
}

impl Alerting {
    /// Builds the component; with an Alertmanager URL it also starts the
    /// delivery task (so it must run inside the Tokio runtime).
    pub fn new(
        cfg: AlertingConfig,
        source: Option<Arc<dyn RecommendationSource>>,
        telemetry: Arc<Telemetry>,
        default_external_url: &str,
        shutdown: Shutdown,
    ) -> (Arc<Alerting>, Option<tokio::task::JoinHandle<()>>) {
        let (notifier, handle) = if cfg.url.is_empty() {
            (None, None)
        } else {
            let (n, h) = Notifier::spawn(
                NotifierConfig {
                    url: cfg.url.clone(),
                    timeout: cfg.timeout.get(),
                    queue: cfg.queue,
                    attempts: cfg.attempts,
                    backoff: Duration::from_secs(1),
                },
                telemetry.clone(),
                shutdown,
            );
            (Some(n), Some(h))
        };
        let external = if cfg.external_url.is_empty() {
            default_external_url.to_string()
        } else {
            cfg.external_url.clone()
        };
        let alerting = Alerting {
            book: Mutex::new(AlertBook::new(BookConfig {
                escalate_after_secs: cfg.escalate_after.get().as_secs_f64(),
                history: cfg.history,
                max_active: cfg.max_active,
            })),
            source,
            notifier,
            telemetry,
            generator_base: format!("{}/api/v1/alerts", external.trim_end_matches('/')),
            cfg,
        };
        (Arc::new(alerting), handle)
    }

    /// The alerts the recommendations call for now.
    fn candidates(&self, recommendations: Vec<Recommendation>) -> Vec<Candidate> {
        let within = self.cfg.forecast_within.get().as_secs_f64();
        let critical = self.cfg.critical_within.get().as_secs_f64();
        let mut out = Vec::new();
        for r in recommendations {
            let (alertname, source, severity) = match r.kind {
                "anomaly" => ("StreamGateAnomaly", Source::Anomaly, Severity::Warning),
                "threshold" => {
                    let number = |name: &str| r.numbers.get(name).copied();
                    let eta = number("eta_seconds").unwrap_or(f64::INFINITY);
                    if eta > within {
                        continue;
                    }
                    // Critical only on a trend the recent points confirm:
                    // a one-off step toward the level makes the line steep
                    // for a few minutes without confirming it.
                    let confirmed = number("confirmed_eta_seconds").unwrap_or(f64::INFINITY);
                    let severity = if confirmed <= critical {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    };
                    ("StreamGateForecastBreach", Source::Forecast, severity)
                }
                _ => continue,
            };
            let mut labels = alert_labels(&r.labels);
            // `service` is the series' `job` on /metrics (and so in the
            // shipped rules' alerts): `namespace/name` when the service
            // has a namespace. `job` and `instance` are added as /metrics
            // shows them, so routes and silences written for the rules'
            // alerts match these too.
            let name = r.labels.get("service.name").or_else(|| r.labels.get("job"));
            let job = match (r.labels.get("service.namespace"), name) {
                (Some(ns), Some(name))
                    if !ns.is_empty() && r.labels.contains_key("service.name") =>
                {
                    Some(format!("{ns}/{name}"))
                }
                (_, Some(name)) => Some(name.clone()),
                _ => None,
            };
            if let Some(job) = &job {
                labels.entry("job".into()).or_insert_with(|| job.clone());
            }
            if let Some(id) = r
                .labels
                .get("service.instance.id")
                .filter(|id| !id.is_empty())
            {
                labels
                    .entry("instance".into())
                    .or_insert_with(|| id.clone());
            }
            labels.insert("service".into(), job.unwrap_or_else(|| "unknown".into()));
            labels.insert("metric".into(), r.metric.clone());
            labels.insert("alertname".into(), alertname.into());
            labels.remove("severity");
            let numbers = r
                .numbers
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ");
            let annotations: BTreeMap<String, String> = [
                ("summary".to_string(), r.summary.clone()),
                (
                    "description".to_string(),
                    format!("{} ({numbers}).", r.summary),
                ),
                (
                    "runbook_url".to_string(),
                    format!("{RUNBOOK_BASE}#{}", alertname.to_lowercase()),
                ),
            ]
            .into();
            out.push(Candidate {
                labels,
                annotations,
                severity,
                source,
            });
        }
        out
    }

    /// One evaluation at `now`: derive, reconcile, push what changed.
    pub fn evaluate(&self, now: f64) {
        if !self.cfg.enabled {
            return;
        }
        let recommendations = self
            .source
            .as_ref()
            .map(|s| s.recommendations())
            .unwrap_or_default();
        let candidates = self.candidates(recommendations);
        let (changes, refused) = {
            let mut book = self.book.lock();
            let r = book.reconcile(now, &[Source::Anomaly, Source::Forecast], candidates);
            self.telemetry.set_active_alerts(book.count_by_severity());
            r
        };
        if refused > 0 {
            tracing::warn!(
                refused,
                max_active = self.cfg.max_active,
                "alerts not raised: exporters.alertmanager.max_active reached"
            );
        }
        self.push_changes(changes, now);
    }

    fn push_changes(&self, changes: Vec<Change>, now: f64) {
        if changes.is_empty() {
            return;
        }
        let alerts: Vec<Alert> = changes
            .into_iter()
            .map(|c| match c {
                Change::Firing(a) | Change::Resolved(a) => a,
            })
            .collect();
        self.push(&alerts, now);
    }

    fn push(&self, alerts: &[Alert], now: f64) {
        if alerts.is_empty() {
            return;
        }
        if let Some(n) = &self.notifier {
            let valid_for = 3.0 * self.cfg.resend_interval.get().as_secs_f64();
            n.send(wire::body(alerts, now, valid_for, &self.generator_base));
        }
    }

    /// Re-sends active and recently resolved alerts.
    pub fn resend(&self, now: f64) {
        let alerts = self.book.lock().to_resend(now, RESEND_RESOLVED_SECS);
        self.push(&alerts, now);
    }

    /// Evaluates every `evaluation_interval` and re-sends every
    /// `resend_interval` until shutdown.
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        let stop = shutdown.wait();
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(self.cfg.evaluation_interval.get());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let resend_every = self.cfg.resend_interval.get().as_secs_f64();
        // The first tick re-sends what is active: after a restart, the
        // alerts restored from saved state reach Alertmanager at once.
        let mut last_resend = f64::NEG_INFINITY;
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tick.tick() => {
                    let now = now_secs();
                    self.evaluate(now);
                    if now - last_resend >= resend_every {
                        last_resend = now;
                        self.resend(now);
                    }
                }
            }
        }
    }
}

impl AlertsQuery for Alerting {
    fn active(&self) -> Vec<Alert> {
        self.book.lock().active()
    }

    fn history(&self) -> Vec<Alert> {
        self.book.lock().history()
    }

    fn get(&self, id: &str) -> Option<Alert> {
        self.book.lock().get(id)
    }

    /// Creates a manual alert and pushes it.
    fn create(
        &self,
        labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
        severity: Severity,
        ends_at: Option<f64>,
    ) -> Result<Alert, AlertError> {
        let now = now_secs();
        for k in labels.keys().chain(annotations.keys()) {
            if !is_settable_label_name(k) {
                return Err(AlertError::Invalid(format!(
                    "{k:?} is not a valid label or annotation name ([a-zA-Z_][a-zA-Z0-9_]*, no leading __)"
                )));
            }
        }
        let total: usize = labels
            .iter()
            .chain(annotations.iter())
            .map(|(k, v)| k.len() + v.len())
            .sum();
        if total > 16 * 1024 || labels.len() + annotations.len() > 64 {
            return Err(AlertError::Invalid(
                "too many or too long labels and annotations (at most 64 entries, 16 KiB)".into(),
            ));
        }
        let mut labels = labels;
        labels.remove("severity");
        let alert = {
            let mut book = self.book.lock();
            let a = book.create_manual(now, labels, annotations, severity, ends_at)?;
            self.telemetry.set_active_alerts(book.count_by_severity());
            a
        };
        self.push(std::slice::from_ref(&alert), now);
        Ok(alert)
    }

    /// Resolves an active alert and pushes the resolution.
    fn resolve(&self, id: &str) -> Result<Alert, AlertError> {
        let now = now_secs();
        let alert = {
            let mut book = self.book.lock();
            let a = book.resolve(id, now)?;
            self.telemetry.set_active_alerts(book.count_by_severity());
            a
        };
        self.push(std::slice::from_ref(&alert), now);
        Ok(alert)
    }
}

#[cfg(test)]
mod tests;

/// Durable state: active alerts (with their start time, severity and
/// escalation) and the recent history, so a restart neither forgets an
/// alert nor shows it starting again; restored active alerts are re-sent
/// to Alertmanager on the first evaluation, and those whose condition
/// cleared meanwhile resolve then.
impl crate::pipeline::durable::Durable for Alerting {
    fn state_name(&self) -> &'static str {
        "alerts"
    }

    fn state_version(&self) -> u32 {
        1
    }

    fn snapshot(&self, out: &mut Vec<u8>) -> Result<(), crate::pipeline::durable::DurableError> {
        use crate::pipeline::durable::DurableError;
        let book = self.book.lock();
        let saved = book.saved();
        let written = std::mem::take(out);
        *out = postcard::to_extend(&saved, written).map_err(DurableError::encode)?;
        Ok(())
    }

    fn restore(
        &self,
        snapshot: &[u8],
    ) -> Result<crate::pipeline::durable::Restored, crate::pipeline::durable::DurableError> {
        use crate::pipeline::durable::{DurableError, Restored};
        let ((active, history), rest): ((Vec<Alert>, Vec<Alert>), _) =
            postcard::take_from_bytes(snapshot).map_err(DurableError::decode)?;
        if !rest.is_empty() {
            return Err(DurableError::decode("bytes after the alerts"));
        }
        let mut book = self.book.lock();
        let (items, discarded) = book.restore(active, history);
        self.telemetry.set_active_alerts(book.count_by_severity());
        Ok(Restored { items, discarded })
    }
}
