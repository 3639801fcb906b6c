//! The views read exactly what prost reads: a request with every metric
//! kind, walked through the views, matches its prost decoding; corrupt
//! bytes are refused by validation where prost refuses them.

use prost::Message;

use super::metrics::{MetricData, MetricsRequestView, validate_metrics};
use crate::model::otlp::common::{InstrumentationScope, KeyValue, any_value::Value as V};
use crate::model::otlp::metrics::{
    self as m, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint, exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    summary_data_point::ValueAtQuantile,
};
use crate::model::otlp::resource::Resource;
use crate::model::otlp::{ItemCount, MetricsRequest};

pub(super) use crate::model::otlp::kv;

fn metric(name: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        description: format!("{name} help"),
        unit: "s".into(),
        data: Some(data),
        ..Default::default()
    }
}

/// A request with one metric of each kind, exemplars, resource and scope.
pub fn sample_metrics() -> MetricsRequest {
    let attrs = vec![
        kv("http.method", V::StringValue("GET".into())),
        kv("code", V::IntValue(200)),
        kv("ok", V::BoolValue(true)),
    ];
    let exemplar = Exemplar {
        time_unix_nano: 9,
        span_id: vec![1; 8],
        trace_id: vec![2; 16],
        value: Some(m::exemplar::Value::AsDouble(0.25)),
        filtered_attributes: vec![kv("user", V::StringValue("u1".into()))],
    };
    let number = |v| NumberDataPoint {
        attributes: attrs.clone(),
        start_time_unix_nano: 1,
        time_unix_nano: 2,
        value: Some(v),
        exemplars: vec![exemplar.clone()],
        flags: 0,
    };
    MetricsRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", V::StringValue("checkout".into()))],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "lib".into(),
                    version: "1.0".into(),
                    attributes: vec![kv("tier", V::DoubleValue(1.5))],
                    dropped_attributes_count: 0,
                }),
                metrics: vec![
                    metric(
                        "g",
                        Data::Gauge(Gauge {
                            data_points: vec![
                                number(number_data_point::Value::AsDouble(1.5)),
                                number(number_data_point::Value::AsInt(-7)),
                            ],
                        }),
                    ),
                    metric(
                        "c",
                        Data::Sum(Sum {
                            data_points: vec![number(number_data_point::Value::AsInt(3))],
                            aggregation_temporality: 2,
                            is_monotonic: true,
                        }),
                    ),
                    metric(
                        "h",
                        Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                attributes: attrs.clone(),
                                start_time_unix_nano: 1,
                                time_unix_nano: 2,
                                count: 6,
                                sum: Some(4.5),
                                bucket_counts: vec![1, 2, 3],
                                explicit_bounds: vec![0.1, 1.0],
                                exemplars: vec![exemplar.clone()],
                                flags: 0,
                                min: Some(0.01),
                                max: Some(2.0),
                            }],
                            aggregation_temporality: 1,
                        }),
                    ),
                    metric(
                        "e",
                        Data::ExponentialHistogram(ExponentialHistogram {
                            data_points: vec![ExponentialHistogramDataPoint {
                                attributes: attrs.clone(),
                                count: 5,
                                sum: Some(3.0),
                                scale: -2,
                                zero_count: 1,
                                positive: Some(Buckets {
                                    offset: -3,
                                    bucket_counts: vec![1, 300],
                                }),
                                negative: None,
                                zero_threshold: 0.001,
                                ..Default::default()
                            }],
                            aggregation_temporality: 2,
                        }),
                    ),
                    metric(
                        "s",
                        Data::Summary(Summary {
                            data_points: vec![SummaryDataPoint {
                                attributes: attrs.clone(),
                                count: 3,
                                sum: 9.0,
                                quantile_values: vec![ValueAtQuantile {
                                    quantile: 0.5,
                                    value: 2.0,
                                }],
                                ..Default::default()
                            }],
                        }),
                    ),
                ],
                schema_url: "https://example/schema".into(),
            }],
            schema_url: String::new(),
        }],
    }
}

pub(super) fn owned_attributes(list: &super::Attributes<'_>) -> Vec<KeyValue> {
    list.to_owned_vec()
}

/// Rebuilds the owned request from the views, field by field.
fn rebuild(bytes: &[u8]) -> MetricsRequest {
    let view = MetricsRequestView::new(bytes);
    MetricsRequest {
        resource_metrics: view
            .resource_metrics
            .iter()
            .map(|rm| ResourceMetrics {
                resource: rm.resource.map(|r| Resource {
                    attributes: owned_attributes(&r.attributes),
                    ..Default::default()
                }),
                schema_url: rm.schema_url.into(),
                scope_metrics: rm
                    .scope_metrics
                    .iter()
                    .map(|sm| ScopeMetrics {
                        scope: sm.scope.map(|s| InstrumentationScope {
                            name: s.name.into(),
                            version: s.version.into(),
                            attributes: owned_attributes(&s.attributes),
                            dropped_attributes_count: 0,
                        }),
                        schema_url: sm.schema_url.into(),
                        metrics: sm.metrics.iter().map(rebuild_metric).collect(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn rebuild_metric(mv: super::MetricView<'_>) -> Metric {
    let exemplars = |list: &super::Repeated<'_, super::metrics::ExemplarView<'_>>| {
        list.iter()
            .map(|e| Exemplar {
                filtered_attributes: owned_attributes(&e.filtered_attributes),
                time_unix_nano: e.time_ns,
                span_id: e.span_id.to_vec(),
                trace_id: e.trace_id.to_vec(),
                value: e.value.map(m::exemplar::Value::AsDouble),
            })
            .collect::<Vec<_>>()
    };
    let numbers = |list: &super::Repeated<'_, super::metrics::NumberPointView<'_>>| {
        list.iter()
            .map(|p| NumberDataPoint {
                attributes: owned_attributes(&p.attributes),
                start_time_unix_nano: p.start_ns,
                time_unix_nano: p.time_ns,
                value: p.value.map(number_data_point::Value::AsDouble),
                exemplars: exemplars(&p.exemplars),
                flags: p.flags,
            })
            .collect::<Vec<_>>()
    };
    let data = mv.data.map(|d| match d {
        MetricData::Gauge(points) => Data::Gauge(Gauge {
            data_points: numbers(&points),
        }),
        MetricData::Sum {
            points,
            temporality,
            monotonic,
        } => Data::Sum(Sum {
            data_points: numbers(&points),
            aggregation_temporality: temporality,
            is_monotonic: monotonic,
        }),
        MetricData::Histogram {
            points,
            temporality,
        } => Data::Histogram(Histogram {
            aggregation_temporality: temporality,
            data_points: points
                .iter()
                .map(|p| {
                    let mut bucket_counts = Vec::new();
                    p.bucket_counts.read_into(&mut bucket_counts);
                    let mut explicit_bounds = Vec::new();
                    p.explicit_bounds.read_doubles_into(&mut explicit_bounds);
                    HistogramDataPoint {
                        attributes: owned_attributes(&p.attributes),
                        start_time_unix_nano: p.start_ns,
                        time_unix_nano: p.time_ns,
                        count: p.count,
                        sum: p.sum,
                        bucket_counts,
                        explicit_bounds,
                        exemplars: exemplars(&p.exemplars),
                        flags: p.flags,
                        min: p.min,
                        max: p.max,
                    }
                })
                .collect(),
        }),
        MetricData::Exponential {
            points,
            temporality,
        } => Data::ExponentialHistogram(ExponentialHistogram {
            aggregation_temporality: temporality,
            data_points: points
                .iter()
                .map(|p| {
                    let buckets = |b: Option<super::metrics::BucketsView<'_>>| {
                        b.map(|b| {
                            let mut bucket_counts = Vec::new();
                            b.counts.read_into(&mut bucket_counts);
                            Buckets {
                                offset: b.offset,
                                bucket_counts,
                            }
                        })
                    };
                    ExponentialHistogramDataPoint {
                        attributes: owned_attributes(&p.attributes),
                        start_time_unix_nano: p.start_ns,
                        time_unix_nano: p.time_ns,
                        count: p.count,
                        sum: p.sum,
                        scale: p.scale,
                        zero_count: p.zero_count,
                        positive: buckets(p.positive),
                        negative: buckets(p.negative),
                        flags: p.flags,
                        exemplars: exemplars(&p.exemplars),
                        min: p.min,
                        max: p.max,
                        zero_threshold: p.zero_threshold,
                    }
                })
                .collect(),
        }),
        MetricData::Summary(points) => Data::Summary(Summary {
            data_points: points
                .iter()
                .map(|p| SummaryDataPoint {
                    attributes: owned_attributes(&p.attributes),
                    start_time_unix_nano: p.start_ns,
                    time_unix_nano: p.time_ns,
                    count: p.count,
                    sum: p.sum,
                    quantile_values: p
                        .quantile_values
                        .iter()
                        .map(|q| ValueAtQuantile {
                            quantile: q.quantile,
                            value: q.value,
                        })
                        .collect(),
                    flags: p.flags,
                })
                .collect(),
        }),
    });
    Metric {
        name: mv.name.into(),
        description: mv.description.into(),
        unit: mv.unit.into(),
        data,
        metadata: owned_attributes(&mv.metadata),
    }
}

/// Integers become doubles in the views; do the same to the original.
fn ints_as_doubles(mut request: MetricsRequest) -> MetricsRequest {
    for metric in request
        .resource_metrics
        .iter_mut()
        .flat_map(|rm| &mut rm.scope_metrics)
        .flat_map(|sm| &mut sm.metrics)
    {
        let points: &mut [NumberDataPoint] = match &mut metric.data {
            Some(Data::Gauge(g)) => &mut g.data_points,
            Some(Data::Sum(s)) => &mut s.data_points,
            _ => &mut [],
        };
        for p in points {
            if let Some(number_data_point::Value::AsInt(i)) = p.value {
                p.value = Some(number_data_point::Value::AsDouble(i as f64));
            }
        }
    }
    request
}

#[test]
fn views_read_every_field_prost_reads() {
    let request = sample_metrics();
    let bytes = request.encode_to_vec();
    assert_eq!(validate_metrics(&bytes), Ok(request.item_count()));
    assert_eq!(rebuild(&bytes), ints_as_doubles(request));
}

#[test]
fn every_truncation_and_single_byte_corruption_agrees_with_prost() {
    let bytes = sample_metrics().encode_to_vec();
    for cut in 0..bytes.len() {
        let ours = validate_metrics(&bytes[..cut]);
        let prost = MetricsRequest::decode(&bytes[..cut]);
        assert_eq!(ours.is_ok(), prost.is_ok(), "cut at {cut}: {ours:?}");
    }
    // Flipping bytes: whatever both accept must read the same.
    for at in 0..bytes.len() {
        for flip in [0x80u8, 0xff, 0x01] {
            let mut corrupt = bytes.clone();
            corrupt[at] ^= flip;
            let ours = validate_metrics(&corrupt);
            if let (Ok(_), Ok(decoded)) = (&ours, MetricsRequest::decode(&corrupt[..])) {
                assert_eq!(
                    rebuild(&corrupt),
                    ints_as_doubles(decoded),
                    "byte {at} ^ {flip:#x}"
                );
            }
        }
    }
}

#[test]
fn invalid_utf8_in_a_label_value_is_refused() {
    let mut request = sample_metrics();
    request.resource_metrics[0].scope_metrics[0].metrics[0].name = "gauge_é".into();
    let mut bytes = request.encode_to_vec();
    let at = bytes
        .windows(2)
        .position(|w| w == "é".as_bytes())
        .expect("encoded name");
    bytes[at + 1] = 0x41; // breaks the two-byte sequence
    assert!(MetricsRequest::decode(&bytes[..]).is_err());
    let error = validate_metrics(&bytes).expect_err("invalid UTF-8");
    assert_eq!(error.to_string(), "Metric.name: string is not valid UTF-8");
}

#[test]
fn adjacent_attributes_are_one_slice_and_interleaved_ones_are_not() {
    use super::MessageView;
    use super::metrics::NumberPointView;
    let point = NumberDataPoint {
        attributes: vec![kv("a", V::StringValue("1".into())), kv("b", V::IntValue(2))],
        time_unix_nano: 5,
        value: Some(number_data_point::Value::AsDouble(1.0)),
        ..Default::default()
    };
    let bytes = point.encode_to_vec();
    let view = NumberPointView::parse(&bytes).expect("valid");
    let run = view
        .attribute_bytes
        .expect("prost writes attributes together");
    let expected: Vec<u8> = point
        .attributes
        .iter()
        .flat_map(|a| {
            let body = a.encode_to_vec();
            let mut field = vec![0x3a, body.len() as u8];
            field.extend(body);
            field
        })
        .collect();
    assert_eq!(run, &expected[..]);
    assert!(!view.has_exemplars);
    // attribute, flags, attribute: not one run.
    let one = kv("a", V::StringValue("1".into())).encode_to_vec();
    let mut interleaved = vec![0x3a, one.len() as u8];
    interleaved.extend(&one);
    interleaved.extend([0x40, 1]);
    interleaved.extend([0x3a, one.len() as u8]);
    interleaved.extend(&one);
    let view = NumberPointView::parse(&interleaved).expect("valid");
    assert_eq!(view.attribute_bytes, None);
    assert_eq!(view.attributes.len(), 2);
    let none = NumberDataPoint::default().encode_to_vec();
    assert_eq!(
        NumberPointView::parse(&none)
            .expect("valid")
            .attribute_bytes,
        Some(&[][..])
    );
}

/// A list element of the wrong wire type is reported under the list's
/// message and field names.
#[test]
fn a_repeated_field_names_its_message_and_field_in_errors() {
    use super::common::{FieldName, Repeated};
    use super::metrics::NumberPointView;
    // Field 1 as a varint where `Gauge.data_points` holds messages.
    let bytes = [0x08, 0x01];
    let points: Repeated<'_, NumberPointView<'_>> =
        Repeated::new(&bytes, 1, &FieldName("Gauge", "data_points"));
    let error = points
        .try_iter()
        .next()
        .expect("one element")
        .expect_err("wrong wire type");
    assert!(
        error.to_string().starts_with("Gauge.data_points"),
        "{error}"
    );
    assert_eq!(format!("{points:?}"), "Repeated(Gauge.data_points)");
}

/// `bytes` as field `field` (length-delimited) of an enclosing message.
fn wrapped(field: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_key(field, prost::encoding::WireType::LengthDelimited, &mut out);
    prost::encoding::encode_varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

/// A request holding one `Metric` whose encoding is `metric`.
fn request_of_metric(metric: &[u8]) -> Vec<u8> {
    wrapped(1, &wrapped(2, &wrapped(2, metric)))
}

/// Protobuf merges a singular message sent in parts (and keeps the last
/// member of a oneof); reading in place cannot, so such requests are
/// refused, naming the field, instead of read with a part dropped.
#[test]
fn a_singular_message_sent_twice_is_refused() {
    let gauge = |value: f64| {
        metric(
            "g",
            Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint {
                    value: Some(number_data_point::Value::AsDouble(value)),
                    ..Default::default()
                }],
            }),
        )
    };
    // The same metric twice: prost merges it into one with two points.
    let mut twice = gauge(1.0).encode_to_vec();
    twice.extend(gauge(2.0).encode_to_vec());
    let bytes = request_of_metric(&twice);
    let merged = MetricsRequest::decode(&bytes[..]).expect("prost merges");
    assert_eq!(merged.item_count(), 2);
    let error = validate_metrics(&bytes).expect_err("split message");
    assert_eq!(
        error.to_string(),
        "Metric.data: sent more than once (a singular message must come in one part)"
    );
    // A gauge, then a sum: the oneof's second member.
    let mut gauge_then_sum = gauge(1.0).encode_to_vec();
    gauge_then_sum.extend(
        metric(
            "g",
            Data::Sum(Sum {
                data_points: vec![NumberDataPoint::default()],
                ..Default::default()
            }),
        )
        .encode_to_vec(),
    );
    assert!(validate_metrics(&request_of_metric(&gauge_then_sum)).is_err());
    // A resource in two parts.
    let resource = Resource::default().encode_to_vec();
    let mut resource_metrics = wrapped(1, &resource);
    resource_metrics.extend(wrapped(1, &resource));
    let error = validate_metrics(&wrapped(1, &resource_metrics)).expect_err("two resources");
    assert!(
        error.to_string().starts_with("ResourceMetrics.resource"),
        "{error}"
    );
    // Positive buckets in two parts.
    let buckets = Buckets {
        offset: 0,
        bucket_counts: vec![1],
    }
    .encode_to_vec();
    let mut point = wrapped(8, &buckets);
    point.extend(wrapped(8, &buckets));
    let exponential = wrapped(10, &wrapped(1, &point));
    let error = validate_metrics(&request_of_metric(&exponential)).expect_err("two parts");
    assert!(
        error
            .to_string()
            .starts_with("ExponentialHistogramDataPoint.positive"),
        "{error}"
    );
}
