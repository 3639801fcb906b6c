//! OTLP/JSON decoding of metrics, stricter than the generated serde code.
//!
//! The generated types flatten the `Metric.data` and `NumberDataPoint.value`
//! oneofs into `Option`s, and serde turns *any* error inside a flattened
//! `Option` into `None`: a metric with a malformed point would vanish and
//! the request would still be answered as a success. Here the oneofs are
//! ordinary optional fields, so an error anywhere is a 400 naming the field,
//! and number values accept every form the proto3 JSON mapping allows
//! (numbers, numeric strings, `"NaN"`, `"Infinity"`, `"-Infinity"`).
//! Exemplars and summaries are read here too: the generated code would
//! drop an exemplar whose value is a string, and refuse a summary whose
//! `sum` is.
//! Unknown fields are ignored, as the OTLP specification requires.

use serde::Deserialize;
use serde::de::{self, Deserializer};

use crate::model::MetricsRequest;
use crate::model::otlp::common::{InstrumentationScope, KeyValue};
use crate::model::otlp::metrics::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint, exemplar, exponential_histogram_data_point::Buckets, metric::Data,
    number_data_point, summary_data_point::ValueAtQuantile,
};
use crate::model::otlp::resource::Resource;

/// Decodes an OTLP/JSON metrics request.
pub fn decode_metrics(body: &[u8]) -> Result<MetricsRequest, serde_json::Error> {
    let (request, special): (JsonRequest, bool) = super::json_spellings::decode_respelled(body)?;
    let mut request = request.into_request().map_err(de::Error::custom)?;
    if special {
        use super::json_special_doubles::RestoreSpecialDoubles as _;
        request.restore_special_doubles();
    }
    Ok(request)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonRequest {
    #[serde(default)]
    resource_metrics: Vec<JsonResourceMetrics>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonResourceMetrics {
    #[serde(default)]
    resource: Option<Resource>,
    #[serde(default)]
    scope_metrics: Vec<JsonScopeMetrics>,
    #[serde(default)]
    schema_url: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonScopeMetrics {
    #[serde(default)]
    scope: Option<InstrumentationScope>,
    #[serde(default)]
    metrics: Vec<JsonMetric>,
    #[serde(default)]
    schema_url: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonMetric {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    unit: String,
    #[serde(default)]
    metadata: Vec<KeyValue>,
    #[serde(default)]
    gauge: Option<JsonGauge>,
    #[serde(default)]
    sum: Option<JsonSum>,
    #[serde(default)]
    histogram: Option<JsonHistogram>,
    #[serde(default)]
    exponential_histogram: Option<JsonExponentialHistogram>,
    #[serde(default)]
    summary: Option<JsonSummary>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonGauge {
    #[serde(default)]
    data_points: Vec<JsonNumberPoint>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonSum {
    #[serde(default)]
    data_points: Vec<JsonNumberPoint>,
    #[serde(default)]
    aggregation_temporality: i32,
    #[serde(default)]
    is_monotonic: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonNumberPoint {
    #[serde(default)]
    attributes: Vec<KeyValue>,
    #[serde(default, deserialize_with = "unsigned")]
    start_time_unix_nano: u64,
    #[serde(default, deserialize_with = "unsigned")]
    time_unix_nano: u64,
    #[serde(default)]
    exemplars: Vec<JsonExemplar>,
    #[serde(default)]
    flags: u32,
    #[serde(default, deserialize_with = "some_double")]
    as_double: Option<f64>,
    #[serde(default, deserialize_with = "some_signed")]
    as_int: Option<i64>,
}

/// A histogram whose floating-point fields (`sum`, `min`, `max`,
/// `explicitBounds`) take every form the proto3 JSON mapping allows.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonHistogram {
    #[serde(default)]
    data_points: Vec<JsonHistogramPoint>,
    #[serde(default)]
    aggregation_temporality: i32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonHistogramPoint {
    #[serde(default)]
    attributes: Vec<KeyValue>,
    #[serde(default, deserialize_with = "unsigned")]
    start_time_unix_nano: u64,
    #[serde(default, deserialize_with = "unsigned")]
    time_unix_nano: u64,
    #[serde(default, deserialize_with = "unsigned")]
    count: u64,
    #[serde(default, deserialize_with = "some_double")]
    sum: Option<f64>,
    #[serde(default, deserialize_with = "unsigned_list")]
    bucket_counts: Vec<u64>,
    #[serde(default, deserialize_with = "double_list")]
    explicit_bounds: Vec<f64>,
    #[serde(default)]
    exemplars: Vec<JsonExemplar>,
    #[serde(default)]
    flags: u32,
    #[serde(default, deserialize_with = "some_double")]
    min: Option<f64>,
    #[serde(default, deserialize_with = "some_double")]
    max: Option<f64>,
}

/// An exponential histogram whose floating-point fields (`sum`, `min`,
/// `max`, `zeroThreshold`) take every form the proto3 JSON mapping allows.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonExponentialHistogram {
    #[serde(default)]
    data_points: Vec<JsonExponentialPoint>,
    #[serde(default)]
    aggregation_temporality: i32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonExponentialPoint {
    #[serde(default)]
    attributes: Vec<KeyValue>,
    #[serde(default, deserialize_with = "unsigned")]
    start_time_unix_nano: u64,
    #[serde(default, deserialize_with = "unsigned")]
    time_unix_nano: u64,
    #[serde(default, deserialize_with = "unsigned")]
    count: u64,
    #[serde(default, deserialize_with = "some_double")]
    sum: Option<f64>,
    #[serde(default)]
    scale: i32,
    #[serde(default, deserialize_with = "unsigned")]
    zero_count: u64,
    #[serde(default)]
    positive: Option<Buckets>,
    #[serde(default)]
    negative: Option<Buckets>,
    #[serde(default)]
    flags: u32,
    #[serde(default)]
    exemplars: Vec<JsonExemplar>,
    #[serde(default, deserialize_with = "some_double")]
    min: Option<f64>,
    #[serde(default, deserialize_with = "some_double")]
    max: Option<f64>,
    #[serde(default, deserialize_with = "double")]
    zero_threshold: f64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonExemplar {
    #[serde(default)]
    filtered_attributes: Vec<KeyValue>,
    #[serde(default, deserialize_with = "unsigned")]
    time_unix_nano: u64,
    #[serde(default, deserialize_with = "some_double")]
    as_double: Option<f64>,
    #[serde(default, deserialize_with = "some_signed")]
    as_int: Option<i64>,
    #[serde(default, deserialize_with = "hex_id")]
    span_id: Vec<u8>,
    #[serde(default, deserialize_with = "hex_id")]
    trace_id: Vec<u8>,
}

/// A summary whose floating-point fields (`sum`, the quantiles and their
/// values) take every form the proto3 JSON mapping allows.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonSummary {
    #[serde(default)]
    data_points: Vec<JsonSummaryPoint>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonSummaryPoint {
    #[serde(default)]
    attributes: Vec<KeyValue>,
    #[serde(default, deserialize_with = "unsigned")]
    start_time_unix_nano: u64,
    #[serde(default, deserialize_with = "unsigned")]
    time_unix_nano: u64,
    #[serde(default, deserialize_with = "unsigned")]
    count: u64,
    #[serde(default, deserialize_with = "double")]
    sum: f64,
    #[serde(default)]
    quantile_values: Vec<JsonQuantile>,
    #[serde(default)]
    flags: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonQuantile {
    #[serde(default, deserialize_with = "double")]
    quantile: f64,
    #[serde(default, deserialize_with = "double")]
    value: f64,
}

/// Exemplars, each with at most one value.
fn exemplars(exemplars: Vec<JsonExemplar>) -> Result<Vec<Exemplar>, String> {
    exemplars
        .into_iter()
        .map(|e| {
            let value = one_number(
                e.as_double,
                e.as_int,
                exemplar::Value::AsDouble,
                exemplar::Value::AsInt,
            )
            .ok_or("an exemplar has both asDouble and asInt")?;
            Ok(Exemplar {
                filtered_attributes: e.filtered_attributes,
                time_unix_nano: e.time_unix_nano,
                span_id: e.span_id,
                trace_id: e.trace_id,
                value,
            })
        })
        .collect()
}

impl JsonSummary {
    fn into_summary(self) -> Summary {
        Summary {
            data_points: self
                .data_points
                .into_iter()
                .map(|p| SummaryDataPoint {
                    attributes: p.attributes,
                    start_time_unix_nano: p.start_time_unix_nano,
                    time_unix_nano: p.time_unix_nano,
                    count: p.count,
                    sum: p.sum,
                    quantile_values: p
                        .quantile_values
                        .into_iter()
                        .map(|q| ValueAtQuantile {
                            quantile: q.quantile,
                            value: q.value,
                        })
                        .collect(),
                    flags: p.flags,
                })
                .collect(),
        }
    }
}

impl JsonHistogram {
    fn into_histogram(self) -> Result<Histogram, String> {
        Ok(Histogram {
            data_points: self
                .data_points
                .into_iter()
                .map(|p| {
                    Ok(HistogramDataPoint {
                        attributes: p.attributes,
                        start_time_unix_nano: p.start_time_unix_nano,
                        time_unix_nano: p.time_unix_nano,
                        count: p.count,
                        sum: p.sum,
                        bucket_counts: p.bucket_counts,
                        explicit_bounds: p.explicit_bounds,
                        exemplars: exemplars(p.exemplars)?,
                        flags: p.flags,
                        min: p.min,
                        max: p.max,
                    })
                })
                .collect::<Result<_, String>>()?,
            aggregation_temporality: self.aggregation_temporality,
        })
    }
}

impl JsonExponentialHistogram {
    fn into_histogram(self) -> Result<ExponentialHistogram, String> {
        Ok(ExponentialHistogram {
            data_points: self
                .data_points
                .into_iter()
                .map(|p| {
                    Ok(ExponentialHistogramDataPoint {
                        attributes: p.attributes,
                        start_time_unix_nano: p.start_time_unix_nano,
                        time_unix_nano: p.time_unix_nano,
                        count: p.count,
                        sum: p.sum,
                        scale: p.scale,
                        zero_count: p.zero_count,
                        positive: p.positive,
                        negative: p.negative,
                        flags: p.flags,
                        exemplars: exemplars(p.exemplars)?,
                        min: p.min,
                        max: p.max,
                        zero_threshold: p.zero_threshold,
                    })
                })
                .collect::<Result<_, String>>()?,
            aggregation_temporality: self.aggregation_temporality,
        })
    }
}

impl JsonRequest {
    fn into_request(self) -> Result<MetricsRequest, String> {
        let mut resource_metrics = Vec::with_capacity(self.resource_metrics.len());
        for rm in self.resource_metrics {
            let mut scope_metrics = Vec::with_capacity(rm.scope_metrics.len());
            for sm in rm.scope_metrics {
                let metrics = sm
                    .metrics
                    .into_iter()
                    .map(JsonMetric::into_metric)
                    .collect::<Result<Vec<_>, _>>()?;
                scope_metrics.push(ScopeMetrics {
                    scope: sm.scope,
                    metrics,
                    schema_url: sm.schema_url,
                });
            }
            resource_metrics.push(ResourceMetrics {
                resource: rm.resource,
                scope_metrics,
                schema_url: rm.schema_url,
            });
        }
        Ok(MetricsRequest { resource_metrics })
    }
}

impl JsonMetric {
    fn into_metric(self) -> Result<Metric, String> {
        let name = self.name;
        let kinds = [
            self.gauge.is_some(),
            self.sum.is_some(),
            self.histogram.is_some(),
            self.exponential_histogram.is_some(),
            self.summary.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() > 1 {
            return Err(format!("metric `{name}` has more than one data type"));
        }
        let data = if let Some(g) = self.gauge {
            Some(Data::Gauge(Gauge {
                data_points: points(g.data_points, &name)?,
            }))
        } else if let Some(s) = self.sum {
            Some(Data::Sum(Sum {
                data_points: points(s.data_points, &name)?,
                aggregation_temporality: s.aggregation_temporality,
                is_monotonic: s.is_monotonic,
            }))
        } else if let Some(h) = self.histogram {
            Some(Data::Histogram(h.into_histogram()?))
        } else if let Some(h) = self.exponential_histogram {
            Some(Data::ExponentialHistogram(h.into_histogram()?))
        } else {
            self.summary.map(|s| Data::Summary(s.into_summary()))
        };
        Ok(Metric {
            name,
            description: self.description,
            unit: self.unit,
            metadata: self.metadata,
            data,
        })
    }
}

fn points(points: Vec<JsonNumberPoint>, metric: &str) -> Result<Vec<NumberDataPoint>, String> {
    points
        .into_iter()
        .map(|p| {
            let value = one_number(
                p.as_double,
                p.as_int,
                number_data_point::Value::AsDouble,
                number_data_point::Value::AsInt,
            )
            .ok_or_else(|| format!("metric `{metric}`: a point has both asDouble and asInt"))?;
            Ok(NumberDataPoint {
                attributes: p.attributes,
                start_time_unix_nano: p.start_time_unix_nano,
                time_unix_nano: p.time_unix_nano,
                exemplars: exemplars(p.exemplars)?,
                flags: p.flags,
                value,
            })
        })
        .collect()
}

/// The `asDouble`/`asInt` oneof of a point or an exemplar: `None` when
/// both are set, `Some(None)` when neither is.
fn one_number<V>(
    double: Option<f64>,
    int: Option<i64>,
    as_double: fn(f64) -> V,
    as_int: fn(i64) -> V,
) -> Option<Option<V>> {
    match (double, int) {
        (Some(d), None) => Some(Some(as_double(d))),
        (None, Some(i)) => Some(Some(as_int(i))),
        (None, None) => Some(None),
        (Some(_), Some(_)) => None,
    }
}

/// A number or a string holding one.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Text(String),
}

fn unsigned<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match NumberOrText::deserialize(d)? {
        NumberOrText::Unsigned(n) => Ok(n),
        NumberOrText::Text(t) => t
            .parse()
            .map_err(|_| de::Error::custom(format!("`{t}` is not an unsigned 64-bit integer"))),
        _ => Err(de::Error::custom("expected an unsigned 64-bit integer")),
    }
}

fn some_signed<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match NumberOrText::deserialize(d)? {
        NumberOrText::Unsigned(n) => i64::try_from(n)
            .map(Some)
            .map_err(|_| de::Error::custom("asInt is out of the 64-bit range")),
        NumberOrText::Signed(n) => Ok(Some(n)),
        NumberOrText::Text(t) => t
            .parse()
            .map(Some)
            .map_err(|_| de::Error::custom(format!("asInt `{t}` is not a 64-bit integer"))),
        NumberOrText::Float(_) => Err(de::Error::custom("asInt must be an integer")),
    }
}

/// A double in any form the proto3 JSON mapping allows: a number, a
/// numeric string, `"NaN"`, `"Infinity"`, `"-Infinity"`.
fn double_of<E: de::Error>(n: NumberOrText) -> Result<f64, E> {
    match n {
        NumberOrText::Unsigned(n) => Ok(n as f64),
        NumberOrText::Signed(n) => Ok(n as f64),
        NumberOrText::Float(f) => Ok(f),
        NumberOrText::Text(t) => match t.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => other
                .parse()
                .map_err(|_| E::custom(format!("`{other}` is not a number"))),
        },
    }
}

/// A trace or span id in hex (either case), as OTLP/JSON writes ids;
/// its length is checked with the protobuf form's.
fn hex_id<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let text = Option::<String>::deserialize(d)?.unwrap_or_default();
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    if text.len() % 2 != 0 {
        return Err(de::Error::custom(format!(
            "id `{text}` has an odd number of hex digits"
        )));
    }
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| de::Error::custom(format!("id `{text}` is not hex")))
}

/// An optional double (`null` for none).
fn some_double<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Option::<NumberOrText>::deserialize(d)?
        .map(double_of)
        .transpose()
}

/// A double field (`null` for 0).
fn double<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(some_double(d)?.unwrap_or(0.0))
}

fn double_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Option::<Vec<NumberOrText>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(double_of)
        .collect()
}

fn unsigned_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    Option::<Vec<NumberOrText>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(|n| match n {
            NumberOrText::Unsigned(n) => Ok(n),
            NumberOrText::Text(t) => t
                .parse()
                .map_err(|_| de::Error::custom(format!("`{t}` is not an unsigned 64-bit integer"))),
            _ => Err(de::Error::custom("expected an unsigned 64-bit integer")),
        })
        .collect()
}
