//! Tests of the alerting component: recommendations become alerts with
//! routing labels and runbook links; forecasts only within the window,
//! critical when close; manual alerts are validated.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::model::prometheus_label::is_label_name;

use parking_lot::Mutex;

use super::*;
use crate::pipeline::query::AlertsQuery;

struct Fixed(Mutex<Vec<Recommendation>>);

impl RecommendationSource for Fixed {
    fn recommendations(&self) -> Vec<Recommendation> {
        self.0.lock().clone()
    }
}

fn rec(kind: &'static str, eta: f64) -> Recommendation {
    Recommendation {
        kind,
        summary: format!("{kind} finding"),
        metric: "http_latency_seconds".into(),
        labels: [
            ("service.name".to_string(), "checkout".to_string()),
            ("span.name".to_string(), "GET /cart".to_string()),
        ]
        .into(),
        numbers: [
            ("eta_seconds".to_string(), eta),
            ("confirmed_eta_seconds".to_string(), eta),
            ("value".to_string(), 1.5),
        ]
        .into(),
    }
}

fn component(recs: Vec<Recommendation>) -> (Arc<Alerting>, Arc<Fixed>) {
    let source = Arc::new(Fixed(Mutex::new(recs)));
    let (_trigger, shutdown) = Shutdown::new();
    let (a, handle) = Alerting::new(
        AlertingConfig::default(),
        Some(source.clone() as Arc<dyn RecommendationSource>),
        Arc::new(Telemetry::new()),
        "http://127.0.0.1:9464",
        shutdown,
    );
    assert!(handle.is_none(), "no Alertmanager configured");
    (a, source)
}

/// A service with a namespace is `namespace/name`, as its `job` on
/// /metrics and in the shipped rules' alerts; `job` and `instance` are
/// there as /metrics shows them, so one route or silence fits both.
#[test]
fn the_service_label_is_the_job_of_metrics() {
    let mut r = rec("anomaly", f64::NAN);
    r.labels.insert("service.namespace".into(), "shop".into());
    r.labels
        .insert("service.instance.id".into(), "checkout-1".into());
    let (a, _) = component(vec![r]);
    a.evaluate(1000.0);
    let active = a.active();
    let labels = &active[0].labels;
    assert_eq!(labels["service"], "shop/checkout");
    assert_eq!(labels["job"], "shop/checkout");
    assert_eq!(labels["instance"], "checkout-1");
}

#[test]
fn recommendations_become_labelled_alerts_and_resolve_when_gone() {
    let (a, source) = component(vec![
        rec("anomaly", f64::NAN),
        rec("threshold", 600.0),
        rec("threshold", 7200.0),
    ]);
    a.evaluate(1000.0);
    let active = a.active();
    assert_eq!(
        active.len(),
        2,
        "the 2 h forecast is beyond forecast_within"
    );
    let anomaly = active
        .iter()
        .find(|x| x.labels["alertname"] == "StreamGateAnomaly")
        .expect("anomaly alert");
    assert_eq!(anomaly.labels["service"], "checkout");
    assert_eq!(anomaly.labels["service_name"], "checkout");
    assert_eq!(anomaly.labels["span_name"], "GET /cart");
    assert_eq!(anomaly.labels["metric"], "http_latency_seconds");
    assert_eq!(anomaly.labels["severity"], "warning");
    assert!(anomaly.annotations["runbook_url"].ends_with("runbooks.md#streamgateanomaly"));
    assert!(anomaly.annotations["description"].contains("value=1.5"));
    let breach = active
        .iter()
        .find(|x| x.labels["alertname"] == "StreamGateForecastBreach")
        .expect("forecast alert");
    assert_eq!(
        breach.labels["severity"], "critical",
        "10 min is within critical_within"
    );

    source.0.lock().clear();
    a.evaluate(1015.0);
    assert!(a.active().is_empty());
    let history = a.history();
    assert_eq!(history.len(), 2);
    assert!(history.iter().all(|x| x.ends_at == Some(1015.0)));
    assert!(a.get(&history[0].id).is_some());
}

/// A crossing within `critical_within` on a trend the recent points do
/// not confirm (a one-off step toward the level) is a warning; the same
/// crossing once confirmed escalates the alert to critical.
#[test]
fn only_a_confirmed_trend_pages_critical() {
    let mut step = rec("threshold", 300.0);
    step.numbers.remove("confirmed_eta_seconds");
    let (a, source) = component(vec![step]);
    a.evaluate(1000.0);
    let active = a.active();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].labels["severity"], "warning");
    *source.0.lock() = vec![rec("threshold", 240.0)];
    a.evaluate(1015.0);
    let active = a.active();
    assert_eq!(active.len(), 1, "one alert, escalated");
    assert_eq!(active[0].labels["severity"], "critical");
}

#[test]
fn manual_alerts_are_checked_created_and_resolved() {
    let (a, _) = component(Vec::new());
    let bad = a.create(
        [("alert.name".to_string(), "x".to_string())].into(),
        BTreeMap::new(),
        Severity::Warning,
        None,
    );
    assert!(matches!(bad, Err(AlertError::Invalid(_))), "{bad:?}");
    let created = a
        .create(
            [
                ("alertname".to_string(), "DiskFull".to_string()),
                ("severity".to_string(), "info".to_string()),
            ]
            .into(),
            [("summary".to_string(), "disk".to_string())].into(),
            Severity::Critical,
            None,
        )
        .expect("created");
    assert_eq!(
        created.labels["severity"], "critical",
        "the severity field wins"
    );
    // A later evaluation of the automatic sources leaves it alone.
    a.evaluate(super::now_secs());
    assert_eq!(a.active().len(), 1);
    let resolved = a.resolve(&created.id).expect("resolved");
    assert!(resolved.ends_at.is_some());
    assert!(matches!(
        a.resolve(&created.id),
        Err(AlertError::NotFound(_))
    ));
}

#[test]
fn label_names_are_made_prometheus_safe_as_on_metrics() {
    let attributes: BTreeMap<String, String> = [
        ("service.name", "cart"),
        ("9lives", "x"),
        ("ok_name", "y"),
        ("http.method", "GET"),
        ("http_method", "POST"),
        ("名前", "z"),
        ("empty", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let labels = alert_labels(&attributes);
    let want: BTreeMap<String, String> = [
        ("service_name", "cart"),
        ("key_9lives", "x"),
        ("ok_name", "y"),
        ("http_method", "GET;POST"),
        ("_", "z"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(labels, want);
    assert!(is_label_name("_") && is_label_name("a_1") && !is_label_name("1a"));
    assert!(!is_label_name("a.b") && !is_label_name(""));
}
