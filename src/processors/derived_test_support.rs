//! Test support for derived sources: a label translation that keeps the
//! OTel keys (and one that counts its calls), and the render of a source
//! read back as an OTLP request.

use super::output::string_kv;
use crate::model::MetricsRequest;
use crate::model::otlp::common::{InstrumentationScope, KeyValue};
use crate::model::otlp::metrics::{
    Gauge, Metric, NumberDataPoint, metric::Data, number_data_point,
};
use crate::pipeline::derived::{DerivedSource, LabelBlock, LabelTranslator};

/// A translator that keeps the OTel keys: the resource's attributes as
/// `resource:<key>`, then the point's, so [`rendered`] can rebuild them.
pub struct PlainLabels;

impl LabelTranslator for PlainLabels {
    fn label_block(
        &self,
        resource: &[KeyValue],
        _scope: &InstrumentationScope,
        attributes: &[KeyValue],
    ) -> Result<LabelBlock, String> {
        let text = |kv: &KeyValue| {
            let mut t = String::new();
            crate::model::text::write_any_value(kv.value.as_ref(), &mut t);
            t
        };
        // The resource's part is the run shared by a source's series.
        let resource: Vec<String> = resource
            .iter()
            .map(|kv| format!("resource:{}\u{2}{}", kv.key, text(kv)))
            .collect();
        let own: Vec<String> = attributes
            .iter()
            .map(|kv| format!("{}\u{2}{}", kv.key, text(kv)))
            .collect();
        let run = resource.join("\u{1}");
        let text = [run.clone(), own.join("\u{1}")].join("\u{1}");
        // A route this long breaks the (pretended) label value limit.
        if text.len() > 200 {
            return Err("a label value is too long".into());
        }
        Ok(LabelBlock {
            shared: 0..run.len(),
            text,
        })
    }
}

/// What `/metrics` would render from `p` now, as one request: a
/// resource per sample, the derived family as a gauge with one point, its
/// labels read back as [`PlainLabels`] wrote them.
pub fn rendered(p: &dyn DerivedSource) -> MetricsRequest {
    let mut resource_metrics = Vec::new();
    for family in p.families() {
        p.walk(family.key, &mut |labels, extra, value| {
            let mut resource = Vec::new();
            let mut attributes = Vec::new();
            for pair in labels.joined().split('\u{1}').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('\u{2}').expect("key and value");
                match k.strip_prefix("resource:") {
                    Some(k) => resource.push(string_kv(k, v)),
                    None => attributes.push(string_kv(k, v)),
                }
            }
            if let Some((k, v)) = extra {
                attributes.push(string_kv(k, v));
            }
            let point = NumberDataPoint {
                attributes,
                value: Some(number_data_point::Value::AsDouble(value)),
                ..Default::default()
            };
            let metric = Metric {
                name: family.name.to_string(),
                unit: family.unit.to_string(),
                data: Some(Data::Gauge(Gauge {
                    data_points: vec![point],
                })),
                ..Default::default()
            };
            resource_metrics.push(super::output::derived(
                &resource,
                &Default::default(),
                vec![metric],
            ));
            true
        });
    }
    MetricsRequest { resource_metrics }
}

/// [`PlainLabels`], counting its translations.
pub struct CountedLabels(pub std::sync::atomic::AtomicUsize);

impl LabelTranslator for CountedLabels {
    fn label_block(
        &self,
        resource: &[KeyValue],
        scope: &InstrumentationScope,
        attributes: &[KeyValue],
    ) -> Result<LabelBlock, String> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        PlainLabels.label_block(resource, scope, attributes)
    }
}
