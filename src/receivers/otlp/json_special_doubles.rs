//! An attribute's `doubleValue` of `"NaN"`, `"Infinity"` or
//! `"-Infinity"`, as the proto3 JSON mapping writes those values. The
//! generated serde code of `AnyValue` reads numbers only, and a JSON
//! number cannot hold them: the respelling step writes each as a
//! stand-in, a finite number next to `f64::MAX` that no instrument
//! reports ([`stand_in`]), and once decoded the request's values are
//! walked and the stand-ins turned back ([`RestoreSpecialDoubles`]).

use crate::model::otlp::common::{AnyValue, KeyValue, any_value};
use crate::model::otlp::metrics::metric::Data;
use crate::model::{LogsRequest, MetricsRequest, TracesRequest};

/// The stand-ins: the largest finite doubles but a few (bits
/// `0x7fef_ffff_ffff_fffX`), negated for `-Infinity`.
const NAN_STAND_IN: u64 = 0x7fef_ffff_ffff_fff1;
const INFINITY_STAND_IN: u64 = 0x7fef_ffff_ffff_fff2;

/// The stand-in for a special value's JSON string, if it is one.
pub fn stand_in(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::from_bits(NAN_STAND_IN)),
        "Infinity" => Some(f64::from_bits(INFINITY_STAND_IN)),
        "-Infinity" => Some(-f64::from_bits(INFINITY_STAND_IN)),
        _ => None,
    }
}

/// The value a stand-in stands for; any other value as it is.
fn restored(value: f64) -> f64 {
    match value.to_bits() {
        NAN_STAND_IN => f64::NAN,
        INFINITY_STAND_IN => f64::INFINITY,
        bits if bits == (-f64::from_bits(INFINITY_STAND_IN)).to_bits() => f64::NEG_INFINITY,
        _ => value,
    }
}

fn restore_value(value: &mut AnyValue) {
    match &mut value.value {
        Some(any_value::Value::DoubleValue(d)) => *d = restored(*d),
        Some(any_value::Value::ArrayValue(a)) => a.values.iter_mut().for_each(restore_value),
        Some(any_value::Value::KvlistValue(l)) => restore_attributes(&mut l.values),
        _ => {}
    }
}

fn restore_attributes(attributes: &mut [KeyValue]) {
    for kv in attributes {
        if let Some(value) = &mut kv.value {
            restore_value(value);
        }
    }
}

/// Turns the stand-ins of a decoded request back into the values they
/// stand for, wherever an `AnyValue` may be.
pub trait RestoreSpecialDoubles {
    fn restore_special_doubles(&mut self);
}

impl RestoreSpecialDoubles for TracesRequest {
    fn restore_special_doubles(&mut self) {
        for rs in &mut self.resource_spans {
            if let Some(r) = &mut rs.resource {
                restore_attributes(&mut r.attributes);
            }
            for ss in &mut rs.scope_spans {
                if let Some(s) = &mut ss.scope {
                    restore_attributes(&mut s.attributes);
                }
                for span in &mut ss.spans {
                    restore_attributes(&mut span.attributes);
                    for e in &mut span.events {
                        restore_attributes(&mut e.attributes);
                    }
                    for l in &mut span.links {
                        restore_attributes(&mut l.attributes);
                    }
                }
            }
        }
    }
}

impl RestoreSpecialDoubles for LogsRequest {
    fn restore_special_doubles(&mut self) {
        for rl in &mut self.resource_logs {
            if let Some(r) = &mut rl.resource {
                restore_attributes(&mut r.attributes);
            }
            for sl in &mut rl.scope_logs {
                if let Some(s) = &mut sl.scope {
                    restore_attributes(&mut s.attributes);
                }
                for record in &mut sl.log_records {
                    restore_attributes(&mut record.attributes);
                    if let Some(body) = &mut record.body {
                        restore_value(body);
                    }
                }
            }
        }
    }
}

impl RestoreSpecialDoubles for MetricsRequest {
    fn restore_special_doubles(&mut self) {
        for rm in &mut self.resource_metrics {
            if let Some(r) = &mut rm.resource {
                restore_attributes(&mut r.attributes);
            }
            for sm in &mut rm.scope_metrics {
                if let Some(s) = &mut sm.scope {
                    restore_attributes(&mut s.attributes);
                }
                for metric in &mut sm.metrics {
                    restore_attributes(&mut metric.metadata);
                    restore_points(metric.data.as_mut());
                }
            }
        }
    }
}

/// The attributes of every point of a metric, and of their exemplars.
fn restore_points(data: Option<&mut Data>) {
    macro_rules! points {
        ($points:expr) => {
            for p in $points {
                restore_attributes(&mut p.attributes);
                for e in &mut p.exemplars {
                    restore_attributes(&mut e.filtered_attributes);
                }
            }
        };
    }
    match data {
        Some(Data::Gauge(g)) => points!(&mut g.data_points),
        Some(Data::Sum(s)) => points!(&mut s.data_points),
        Some(Data::Histogram(h)) => points!(&mut h.data_points),
        Some(Data::ExponentialHistogram(h)) => points!(&mut h.data_points),
        Some(Data::Summary(s)) => {
            for p in &mut s.data_points {
                restore_attributes(&mut p.attributes);
            }
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stand_ins_are_finite_and_come_back_as_what_they_stand_for() {
        for (text, check) in [
            ("NaN", f64::is_nan as fn(f64) -> bool),
            ("Infinity", |v: f64| v == f64::INFINITY),
            ("-Infinity", |v: f64| v == f64::NEG_INFINITY),
        ] {
            let s = stand_in(text).unwrap();
            assert!(s.is_finite() && serde_json::Number::from_f64(s).is_some());
            assert!(check(restored(s)), "{text}");
        }
        assert_eq!(stand_in("nan"), None);
        assert_eq!(restored(f64::MAX), f64::MAX);
        assert_eq!(restored(1.5), 1.5);
    }
}
