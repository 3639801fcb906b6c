//! Tests of the pipeline contracts: fan-out merging and shutdown semantics.

use crate::model::MetricsBatch;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;

struct Rejecting(u64, &'static str, AtomicUsize);

impl MetricsConsumer for Rejecting {
    fn consume_metrics(&self, _: &MetricsBatch) -> ConsumeResult {
        self.2.fetch_add(1, Ordering::Relaxed);
        Ok(Consumed::rejected(self.0, self.1))
    }
}

struct Overloaded;

impl MetricsConsumer for Overloaded {
    fn consume_metrics(&self, _: &MetricsBatch) -> ConsumeResult {
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
    let out = fan
        .consume_metrics(&MetricsBatch::from_request(Default::default()))
        .unwrap();
    assert_eq!(out.rejected, 5);
    assert_eq!(out.message, "a; b");
    assert_eq!(a.2.load(Ordering::Relaxed), 1);
    assert_eq!(b.2.load(Ordering::Relaxed), 1);
}

#[test]
fn fanout_stops_at_overload() {
    let after = Arc::new(Rejecting(0, "", AtomicUsize::new(0)));
    let fan: Fanout<dyn MetricsConsumer> = Fanout::new(vec![Arc::new(Overloaded), after.clone()]);
    let err = fan
        .consume_metrics(&MetricsBatch::from_request(Default::default()))
        .unwrap_err();
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

mod selectors {
    use std::collections::BTreeMap;

    use super::super::query::{LabelOp, NameMatch, SeriesMatcher};

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_metric_name_matches_exactly() {
        let m = SeriesMatcher::parse("http_requests_total").unwrap();
        assert!(matches!(&m.name, NameMatch::Exact(n) if n == "http_requests_total"));
        assert!(m.name.matches("http_requests_total"));
        assert!(!m.name.matches("http_requests_total_x"));
        assert!(m.labels.is_empty());
    }

    #[test]
    fn anything_else_is_an_anchored_regex() {
        let m = SeriesMatcher::parse("http_.*").unwrap();
        assert!(m.name.matches("http_requests_total"));
        assert!(!m.name.matches("xhttp_requests_total"));
        let m = SeriesMatcher::parse("a|b").unwrap();
        assert!(m.name.matches("a") && m.name.matches("b") && !m.name.matches("ab"));
        // A repetition's braces belong to the regex.
        let m = SeriesMatcher::parse("a{2}").unwrap();
        assert!(m.name.matches("aa") && m.labels.is_empty());
        let m = SeriesMatcher::parse("up{}").unwrap();
        assert!(matches!(&m.name, NameMatch::Exact(n) if n == "up") && m.labels.is_empty());
        let m = SeriesMatcher::parse(r#"a{1,2}_x{job="j"}"#).unwrap();
        assert!(m.name.matches("aa_x") && !m.name.matches("aaa_x"));
        assert_eq!(m.labels.len(), 1);
    }

    /// `__name__` inside the braces matches the name; a regex's `.`
    /// matches a newline, as in PromQL.
    #[test]
    fn the_name_as_a_label_and_dot_all_regexes() {
        let m = SeriesMatcher::parse(r#"{__name__="up"}"#).unwrap();
        assert!(m.name.matches("up") && !m.name.matches("upx"));
        assert!(m.labels.is_empty());
        let m =
            SeriesMatcher::parse(r#"{__name__=~"http_.*",__name__!="http_x",job="a"}"#).unwrap();
        assert!(m.name.matches("http_requests_total") && !m.name.matches("http_x"));
        assert!(!m.name.matches("grpc_requests_total"));
        assert_eq!(m.labels.len(), 1);
        let m = SeriesMatcher::parse(r#"up{__name__="down"}"#).unwrap();
        assert!(!m.name.matches("up") && !m.name.matches("down"));
        let m = SeriesMatcher::parse(r#"m{q=~".*"}"#).unwrap();
        let labels = [("q".to_string(), "a\nb".to_string())]
            .into_iter()
            .collect();
        assert!(m.labels_match(&labels));
    }

    #[test]
    fn label_matchers_in_promql_style() {
        let m =
            SeriesMatcher::parse(r#"up{job="api", code=~"5..",path!="/x\"y", env!~"dev|test",}"#)
                .unwrap();
        assert!(matches!(&m.name, NameMatch::Exact(n) if n == "up"));
        assert_eq!(m.labels.len(), 4);
        assert!(matches!(&m.labels[2].op, LabelOp::NotEqual(v) if v == "/x\"y"));
        let ok = labels(&[("job", "api"), ("code", "503"), ("path", "/")]);
        assert!(m.labels_match(&ok));
        let bad_code = labels(&[("job", "api"), ("code", "200")]);
        assert!(!m.labels_match(&bad_code));
        let bad_env = labels(&[("job", "api"), ("code", "500"), ("env", "dev")]);
        assert!(!m.labels_match(&bad_env));
        // A missing label is the empty value, as in PromQL.
        let m = SeriesMatcher::parse(r#"{env=""}"#).unwrap();
        assert!(matches!(m.name, NameMatch::Any));
        assert!(m.labels_match(&labels(&[("job", "x")])));
        assert!(!m.labels_match(&labels(&[("env", "prod")])));
    }

    #[test]
    fn empty_means_everything() {
        let m = SeriesMatcher::parse("  ").unwrap();
        assert!(matches!(m.name, NameMatch::Any) && m.labels.is_empty());
    }

    #[test]
    fn bad_selectors_explain_themselves() {
        for (selector, says) in [
            ("http_(", "bad regular expression `http_(`: unclosed group"),
            (r#"up{job="x}"#, "expected a quoted value for label `job`"),
            (
                r#"up{job~"x"}"#,
                "expected =, !=, =~ or !~ after label `job`",
            ),
            (r#"up{9a="x"}"#, "expected a label name"),
            (r#"up{a="x" b="y"}"#, "expected `,` or `}`"),
            (
                r#"up{a="x"}x"#,
                "label matchers `{a=\"x\"}x` do not end with `}`",
            ),
            (
                r#"up{a="x""#,
                "label matchers `{a=\"x\"` do not end with `}`",
            ),
            (
                r#"up{a=~"("}"#,
                "bad regular expression `(`: unclosed group",
            ),
        ] {
            let err = SeriesMatcher::parse(selector).unwrap_err();
            assert!(err.contains(says), "{selector}: {err}");
        }
    }
}
