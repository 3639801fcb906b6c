//! Views of the OTLP metrics messages, from `ExportMetricsServiceRequest`
//! down to data points, and [`validate_metrics`], the one pass that checks
//! a whole request (every field prost would check) and counts its points.

use super::common::{
    Attributes, FieldName, KeyValueView, MessageView, Repeated, ResourceView, ScopeView,
    head_and_schema_url, once, optional, validate_attributes,
};
use super::reader::{
    Field, Fields, Packed64, PackedVarint, SPAN_ID_LEN, TRACE_ID_LEN, WireError, for_each_field,
};

/// `ExportMetricsServiceRequest`.
#[derive(Debug, Clone, Copy)]
pub struct MetricsRequestView<'a> {
    pub resource_metrics: Repeated<'a, ResourceMetricsView<'a>>,
}

impl<'a> MetricsRequestView<'a> {
    /// The view of a request's bytes (validate them first).
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            resource_metrics: Repeated::new(
                bytes,
                1,
                &FieldName("ExportMetricsServiceRequest", "resource_metrics"),
            ),
        }
    }
}

impl<'a> MetricsRequestView<'a> {
    /// The name of every metric, in order.
    pub fn metric_names(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        self.resource_metrics
            .iter()
            .flat_map(|rm| rm.scope_metrics.iter())
            .flat_map(|sm| sm.metrics.iter())
            .map(|m| m.name)
    }
}

/// `ResourceMetrics`.
#[derive(Debug, Clone, Copy)]
pub struct ResourceMetricsView<'a> {
    pub resource: Option<ResourceView<'a>>,
    pub scope_metrics: Repeated<'a, ScopeMetricsView<'a>>,
    pub schema_url: &'a str,
}

impl<'a> MessageView<'a> for ResourceMetricsView<'a> {
    const NAME: &'static str = "ResourceMetrics";
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        let (resource, schema_url) = head_and_schema_url(bytes, Self::NAME, "resource")?;
        Ok(Self {
            resource: optional(resource)?,
            scope_metrics: Repeated::new(bytes, 2, &FieldName(Self::NAME, "scope_metrics")),
            schema_url,
        })
    }
}

/// `ScopeMetrics`.
#[derive(Debug, Clone, Copy)]
pub struct ScopeMetricsView<'a> {
    pub scope: Option<ScopeView<'a>>,
    pub metrics: Repeated<'a, MetricView<'a>>,
    pub schema_url: &'a str,
}

impl<'a> MessageView<'a> for ScopeMetricsView<'a> {
    const NAME: &'static str = "ScopeMetrics";
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        let (scope, schema_url) = head_and_schema_url(bytes, Self::NAME, "scope")?;
        Ok(Self {
            scope: optional(scope)?,
            metrics: Repeated::new(bytes, 2, &FieldName(Self::NAME, "metrics")),
            schema_url,
        })
    }
}

/// Aggregation temporality as sent (0 unspecified, 1 delta, 2 cumulative).
pub type TemporalityCode = i32;

/// The data of a metric: its kind and its points.
#[derive(Debug, Clone, Copy)]
pub enum MetricData<'a> {
    Gauge(Repeated<'a, NumberPointView<'a>>),
    Sum {
        points: Repeated<'a, NumberPointView<'a>>,
        temporality: TemporalityCode,
        monotonic: bool,
    },
    Histogram {
        points: Repeated<'a, HistogramPointView<'a>>,
        temporality: TemporalityCode,
    },
    Exponential {
        points: Repeated<'a, ExponentialPointView<'a>>,
        temporality: TemporalityCode,
    },
    Summary(Repeated<'a, SummaryPointView<'a>>),
}

impl MetricData<'_> {
    /// Number of data points (a walk over the metric's fields).
    pub fn point_count(&self) -> usize {
        match self {
            MetricData::Gauge(p) | MetricData::Sum { points: p, .. } => p.len(),
            MetricData::Histogram { points, .. } => points.len(),
            MetricData::Exponential { points, .. } => points.len(),
            MetricData::Summary(p) => p.len(),
        }
    }

    /// Whether the metric has no data point (stops at the first).
    pub fn has_no_points(&self) -> bool {
        match self {
            MetricData::Gauge(p) | MetricData::Sum { points: p, .. } => p.is_empty(),
            MetricData::Histogram { points, .. } => points.is_empty(),
            MetricData::Exponential { points, .. } => points.is_empty(),
            MetricData::Summary(p) => p.is_empty(),
        }
    }
}

/// `Metric`.
#[derive(Debug, Clone, Copy)]
pub struct MetricView<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub unit: &'a str,
    pub data: Option<MetricData<'a>>,
    pub metadata: Attributes<'a>,
}

impl<'a> MessageView<'a> for MetricView<'a> {
    const NAME: &'static str = "Metric";
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        let mut out = MetricView {
            name: "",
            description: "",
            unit: "",
            data: None,
            metadata: Repeated::new(bytes, 12, &FieldName(Self::NAME, "metadata")),
        };
        for_each_field(bytes, Self::NAME, |n, v| {
            let data = match n {
                1 => {
                    out.name = field!(v, Self::NAME, "name").string()?;
                    return Ok(());
                }
                2 => {
                    out.description = field!(v, Self::NAME, "description").string()?;
                    return Ok(());
                }
                3 => {
                    out.unit = field!(v, Self::NAME, "unit").string()?;
                    return Ok(());
                }
                5 => gauge(field!(v, Self::NAME, "gauge").message()?),
                7 => sum(field!(v, Self::NAME, "sum").message()?)?,
                9 => histogram(field!(v, Self::NAME, "histogram").message()?)?,
                10 => exponential(field!(v, Self::NAME, "exponential_histogram").message()?)?,
                11 => MetricData::Summary(Repeated::new(
                    field!(v, Self::NAME, "summary").message()?,
                    1,
                    &FieldName("Summary", "data_points"),
                )),
                _ => return Ok(()),
            };
            // `data` is a oneof of messages: a second part, or a second
            // member, is refused (see `WireError::RepeatedMessage`).
            if out.data.replace(data).is_some() {
                return Err(WireError::RepeatedMessage {
                    message: Self::NAME,
                    field: "data",
                });
            }
            Ok(())
        })?;
        Ok(out)
    }
}

fn gauge(bytes: &[u8]) -> MetricData<'_> {
    MetricData::Gauge(Repeated::new(bytes, 1, &FieldName("Gauge", "data_points")))
}

fn temporality_of(bytes: &[u8], message: &'static str) -> Result<TemporalityCode, WireError> {
    let mut temporality = 0;
    for_each_field(bytes, message, |n, v| {
        if n == 2 {
            temporality = field!(v, message, "aggregation_temporality").int32()?;
        }
        Ok(())
    })?;
    Ok(temporality)
}

fn sum(bytes: &[u8]) -> Result<MetricData<'_>, WireError> {
    const NAME: &str = "Sum";
    let mut temporality = 0;
    let mut monotonic = false;
    for_each_field(bytes, NAME, |n, v| {
        match n {
            2 => temporality = field!(v, NAME, "aggregation_temporality").int32()?,
            3 => monotonic = field!(v, NAME, "is_monotonic").boolean()?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(MetricData::Sum {
        points: Repeated::new(bytes, 1, &FieldName(NAME, "data_points")),
        temporality,
        monotonic,
    })
}

fn histogram(bytes: &[u8]) -> Result<MetricData<'_>, WireError> {
    Ok(MetricData::Histogram {
        points: Repeated::new(bytes, 1, &FieldName("Histogram", "data_points")),
        temporality: temporality_of(bytes, "Histogram")?,
    })
}

fn exponential(bytes: &[u8]) -> Result<MetricData<'_>, WireError> {
    Ok(MetricData::Exponential {
        points: Repeated::new(bytes, 1, &FieldName("ExponentialHistogram", "data_points")),
        temporality: temporality_of(bytes, "ExponentialHistogram")?,
    })
}

/// `NumberDataPoint`.
#[derive(Debug, Clone, Copy)]
pub struct NumberPointView<'a> {
    pub attributes: Attributes<'a>,
    pub start_ns: u64,
    pub time_ns: u64,
    /// `as_double`, or `as_int` as a double; `None` when neither is set.
    pub value: Option<f64>,
    pub exemplars: Repeated<'a, ExemplarView<'a>>,
    /// Whether any exemplar is present (saves a pass when none is).
    pub has_exemplars: bool,
    pub flags: u32,
    /// The encoded attribute fields when they are one contiguous run (as
    /// every SDK writes them): the point's attribute identity in one slice.
    pub attribute_bytes: Option<&'a [u8]>,
}

impl<'a> MessageView<'a> for NumberPointView<'a> {
    const NAME: &'static str = "NumberDataPoint";
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        let mut out = NumberPointView {
            attributes: Repeated::new(bytes, 7, &FieldName(Self::NAME, "attributes")),
            start_ns: 0,
            time_ns: 0,
            value: None,
            exemplars: Repeated::new(bytes, 5, &FieldName(Self::NAME, "exemplars")),
            has_exemplars: false,
            flags: 0,
            attribute_bytes: None,
        };
        let mut fields = Fields::new(bytes, Self::NAME);
        let mut run = Run::default();
        loop {
            let start = bytes.len() - fields.remaining();
            let Some((n, v)) = fields.next_field()? else {
                break;
            };
            match n {
                2 => out.start_ns = field!(v, Self::NAME, "start_time_unix_nano").fixed64()?,
                3 => out.time_ns = field!(v, Self::NAME, "time_unix_nano").fixed64()?,
                4 => out.value = Some(field!(v, Self::NAME, "as_double").double()?),
                5 => out.has_exemplars = true,
                6 => out.value = Some(field!(v, Self::NAME, "as_int").fixed64()? as i64 as f64),
                7 => run.extend(start, bytes.len() - fields.remaining()),
                8 => out.flags = field!(v, Self::NAME, "flags").uint32()?,
                _ => {}
            }
        }
        out.attribute_bytes = run.slice(bytes);
        Ok(out)
    }
}

/// Where a repeated field's occurrences lie in their message, while they
/// are adjacent.
#[derive(Default)]
struct Run {
    span: Option<(usize, usize)>,
    broken: bool,
}

impl Run {
    fn extend(&mut self, start: usize, end: usize) {
        self.span = match self.span {
            None => Some((start, end)),
            Some((first, last)) if last == start => Some((first, end)),
            Some(span) => {
                self.broken = true;
                Some(span)
            }
        };
    }

    /// The run's bytes (empty when the field is absent); `None` if the
    /// occurrences were not adjacent.
    fn slice<'a>(&self, bytes: &'a [u8]) -> Option<&'a [u8]> {
        match (self.broken, self.span) {
            (true, _) => None,
            (false, None) => Some(&[]),
            (false, Some((start, end))) => bytes.get(start..end),
        }
    }
}

/// `HistogramDataPoint`.
#[derive(Debug, Clone, Copy)]
pub struct HistogramPointView<'a> {
    pub attributes: Attributes<'a>,
    pub start_ns: u64,
    pub time_ns: u64,
    pub count: u64,
    pub sum: Option<f64>,
    pub bucket_counts: Packed64<'a>,
    pub explicit_bounds: Packed64<'a>,
    pub exemplars: Repeated<'a, ExemplarView<'a>>,
    pub flags: u32,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl<'a> MessageView<'a> for HistogramPointView<'a> {
    const NAME: &'static str = "HistogramDataPoint";
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        let mut out = HistogramPointView {
            attributes: Repeated::new(bytes, 9, &FieldName(Self::NAME, "attributes")),
            start_ns: 0,
            time_ns: 0,
            count: 0,
            sum: None,
            bucket_counts: Packed64::new(bytes, 6, Self::NAME),
            explicit_bounds: Packed64::new(bytes, 7, Self::NAME),
            exemplars: Repeated::new(bytes, 8, &FieldName(Self::NAME, "exemplars")),
            flags: 0,
            min: None,
            max: None,
        };
        for_each_field(bytes, Self::NAME, |n, v| {
            match n {
                2 => out.start_ns = field!(v, Self::NAME, "start_time_unix_nano").fixed64()?,
                3 => out.time_ns = field!(v, Self::NAME, "time_unix_nano").fixed64()?,
                4 => out.count = field!(v, Self::NAME, "count").fixed64()?,
                5 => out.sum = Some(field!(v, Self::NAME, "sum").double()?),
                10 => out.flags = field!(v, Self::NAME, "flags").uint32()?,
                11 => out.min = Some(field!(v, Self::NAME, "min").double()?),
                12 => out.max = Some(field!(v, Self::NAME, "max").double()?),
                _ => {}
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// `ExponentialHistogramDataPoint.Buckets`.
#[derive(Debug, Clone, Copy)]
pub struct BucketsView<'a> {
    pub offset: i32,
    pub counts: PackedVarint<'a>,
}

impl<'a> MessageView<'a> for BucketsView<'a> {
    const NAME: &'static str = "Buckets";
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        let mut offset = 0;
        for_each_field(bytes, Self::NAME, |n, v| {
            if n == 1 {
                offset = field!(v, Self::NAME, "offset").sint32()?;
            }
            Ok(())
        })?;
        Ok(Self {
            offset,
            counts: PackedVarint::new(bytes, 2, Self::NAME),
        })
    }
}

/// `ExponentialHistogramDataPoint`.
#[derive(Debug, Clone, Copy)]
pub struct ExponentialPointView<'a> {
    pub attributes: Attributes<'a>,
    pub start_ns: u64,
    pub time_ns: u64,
    pub count: u64,
    pub sum: Option<f64>,
    pub scale: i32,
    pub zero_count: u64,
    pub positive: Option<BucketsView<'a>>,
    pub negative: Option<BucketsView<'a>>,
    pub flags: u32,
    pub exemplars: Repeated<'a, ExemplarView<'a>>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub zero_threshold: f64,
}

impl<'a> MessageView<'a> for ExponentialPointView<'a> {
    const NAME: &'static str = "ExponentialHistogramDataPoint";
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        let mut out = ExponentialPointView {
            attributes: Repeated::new(bytes, 1, &FieldName(Self::NAME, "attributes")),
            start_ns: 0,
            time_ns: 0,
            count: 0,
            sum: None,
            scale: 0,
            zero_count: 0,
            positive: None,
            negative: None,
            flags: 0,
            exemplars: Repeated::new(bytes, 11, &FieldName(Self::NAME, "exemplars")),
            min: None,
            max: None,
            zero_threshold: 0.0,
        };
        for_each_field(bytes, Self::NAME, |n, v| {
            match n {
                2 => out.start_ns = field!(v, Self::NAME, "start_time_unix_nano").fixed64()?,
                3 => out.time_ns = field!(v, Self::NAME, "time_unix_nano").fixed64()?,
                4 => out.count = field!(v, Self::NAME, "count").fixed64()?,
                5 => out.sum = Some(field!(v, Self::NAME, "sum").double()?),
                6 => out.scale = field!(v, Self::NAME, "scale").sint32()?,
                7 => out.zero_count = field!(v, Self::NAME, "zero_count").fixed64()?,
                8 => once(
                    &mut out.positive,
                    BucketsView::parse(field!(v, Self::NAME, "positive").message()?)?,
                    Self::NAME,
                    "positive",
                )?,
                9 => once(
                    &mut out.negative,
                    BucketsView::parse(field!(v, Self::NAME, "negative").message()?)?,
                    Self::NAME,
                    "negative",
                )?,
                10 => out.flags = field!(v, Self::NAME, "flags").uint32()?,
                12 => out.min = Some(field!(v, Self::NAME, "min").double()?),
                13 => out.max = Some(field!(v, Self::NAME, "max").double()?),
                14 => out.zero_threshold = field!(v, Self::NAME, "zero_threshold").double()?,
                _ => {}
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// `SummaryDataPoint`.
#[derive(Debug, Clone, Copy)]
pub struct SummaryPointView<'a> {
    pub attributes: Attributes<'a>,
    pub start_ns: u64,
    pub time_ns: u64,
    pub count: u64,
    pub sum: f64,
    pub quantile_values: Repeated<'a, QuantileView>,
    pub flags: u32,
}

impl<'a> MessageView<'a> for SummaryPointView<'a> {
    const NAME: &'static str = "SummaryDataPoint";
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        let mut out = SummaryPointView {
            attributes: Repeated::new(bytes, 7, &FieldName(Self::NAME, "attributes")),
            start_ns: 0,
            time_ns: 0,
            count: 0,
            sum: 0.0,
            quantile_values: Repeated::new(bytes, 6, &FieldName(Self::NAME, "quantile_values")),
            flags: 0,
        };
        for_each_field(bytes, Self::NAME, |n, v| {
            match n {
                2 => out.start_ns = field!(v, Self::NAME, "start_time_unix_nano").fixed64()?,
                3 => out.time_ns = field!(v, Self::NAME, "time_unix_nano").fixed64()?,
                4 => out.count = field!(v, Self::NAME, "count").fixed64()?,
                5 => out.sum = field!(v, Self::NAME, "sum").double()?,
                8 => out.flags = field!(v, Self::NAME, "flags").uint32()?,
                _ => {}
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// `SummaryDataPoint.ValueAtQuantile`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantileView {
    pub quantile: f64,
    pub value: f64,
}

impl MessageView<'_> for QuantileView {
    const NAME: &'static str = "ValueAtQuantile";
    fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let mut out = QuantileView {
            quantile: 0.0,
            value: 0.0,
        };
        for_each_field(bytes, Self::NAME, |n, v| {
            match n {
                1 => out.quantile = field!(v, Self::NAME, "quantile").double()?,
                2 => out.value = field!(v, Self::NAME, "value").double()?,
                _ => {}
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// `Exemplar`.
#[derive(Debug, Clone, Copy)]
pub struct ExemplarView<'a> {
    pub filtered_attributes: Attributes<'a>,
    pub time_ns: u64,
    pub value: Option<f64>,
    pub span_id: &'a [u8],
    pub trace_id: &'a [u8],
}

impl<'a> MessageView<'a> for ExemplarView<'a> {
    const NAME: &'static str = "Exemplar";
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        let mut out = ExemplarView {
            filtered_attributes: Repeated::new(
                bytes,
                7,
                &FieldName(Self::NAME, "filtered_attributes"),
            ),
            time_ns: 0,
            value: None,
            span_id: &[],
            trace_id: &[],
        };
        for_each_field(bytes, Self::NAME, |n, v| {
            match n {
                2 => out.time_ns = field!(v, Self::NAME, "time_unix_nano").fixed64()?,
                3 => out.value = Some(field!(v, Self::NAME, "as_double").double()?),
                6 => out.value = Some(field!(v, Self::NAME, "as_int").fixed64()? as i64 as f64),
                4 => out.span_id = field!(v, Self::NAME, "span_id").id(SPAN_ID_LEN)?,
                5 => out.trace_id = field!(v, Self::NAME, "trace_id").id(TRACE_ID_LEN)?,
                _ => {}
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// Checks a whole `ExportMetricsServiceRequest` and returns its number of
/// data points. After this, every view of the request reads without error.
pub fn validate_metrics(bytes: &[u8]) -> Result<u64, WireError> {
    let mut points = 0u64;
    for rm in MetricsRequestView::new(bytes).resource_metrics.try_iter() {
        let rm = rm?;
        if let Some(resource) = &rm.resource {
            resource.validate()?;
        }
        for sm in rm.scope_metrics.try_iter() {
            let sm = sm?;
            if let Some(scope) = &sm.scope {
                scope.validate()?;
            }
            for metric in sm.metrics.try_iter() {
                let metric = metric?;
                validate_attributes(&metric.metadata)?;
                if let Some(data) = &metric.data {
                    points += validate_points(data)?;
                }
            }
        }
    }
    Ok(points)
}

fn validate_points(data: &MetricData<'_>) -> Result<u64, WireError> {
    match data {
        // The most common point: its own fields and children in one pass.
        MetricData::Gauge(list) | MetricData::Sum { points: list, .. } => {
            let mut n = 0;
            for bytes in list.raw() {
                point_children(
                    bytes?,
                    NumberPointView::NAME,
                    &[
                        (7, Child::Attribute),
                        (2, Child::Scalar64("start_time_unix_nano")),
                        (3, Child::Scalar64("time_unix_nano")),
                        (4, Child::Scalar64("as_double")),
                        (6, Child::Scalar64("as_int")),
                        (8, Child::Varint("flags")),
                        (5, Child::Exemplar),
                    ],
                )?;
                n += 1;
            }
            Ok(n)
        }
        MetricData::Histogram { points, .. } => validate_each(points, |bytes| {
            point_children(
                bytes,
                HistogramPointView::NAME,
                &[
                    (9, Child::Attribute),
                    (8, Child::Exemplar),
                    (6, Child::Fixed64("bucket_counts")),
                    (7, Child::Fixed64("explicit_bounds")),
                ],
            )
        }),
        MetricData::Exponential { points, .. } => validate_each(points, |bytes| {
            let p = ExponentialPointView::parse(bytes)?;
            for buckets in [&p.positive, &p.negative].into_iter().flatten() {
                buckets.counts.validate("bucket_counts")?;
            }
            point_children(
                bytes,
                ExponentialPointView::NAME,
                &[(1, Child::Attribute), (11, Child::Exemplar)],
            )
        }),
        MetricData::Summary(points) => validate_each(points, |bytes| {
            point_children(
                bytes,
                SummaryPointView::NAME,
                &[(7, Child::Attribute), (6, Child::Quantile)],
            )
        }),
    }
}

/// Parses each point (its own fields) and runs `children` on its bytes;
/// returns the number of points.
fn validate_each<'a, T: MessageView<'a> + 'a>(
    points: &Repeated<'a, T>,
    children: impl Fn(&'a [u8]) -> Result<(), WireError>,
) -> Result<u64, WireError> {
    let mut n = 0;
    for bytes in points.raw() {
        let bytes = bytes?;
        T::parse(bytes)?;
        children(bytes)?;
        n += 1;
    }
    Ok(n)
}

/// A field of a data point checked by [`point_children`].
#[derive(Clone, Copy)]
enum Child {
    Attribute,
    Exemplar,
    Quantile,
    /// A repeated 8-byte scalar, packed or not.
    Fixed64(&'static str),
    /// A single 8-byte scalar (`fixed64`, `sfixed64`, `double`).
    Scalar64(&'static str),
    /// A single varint scalar.
    Varint(&'static str),
}

/// Checks a point's repeated children in one pass over its fields.
fn point_children(
    bytes: &[u8],
    message: &'static str,
    children: &[(u32, Child)],
) -> Result<(), WireError> {
    for_each_field(bytes, message, |n, value| {
        let Some((_, child)) = children.iter().find(|(number, _)| *number == n) else {
            return Ok(());
        };
        let field = |name| Field {
            value,
            message,
            field: name,
        };
        match *child {
            Child::Attribute => {
                KeyValueView::parse(field("attributes").message()?)?;
            }
            Child::Exemplar => {
                let e = ExemplarView::parse(field("exemplars").message()?)?;
                validate_attributes(&e.filtered_attributes)?;
            }
            Child::Quantile => {
                QuantileView::parse(field("quantile_values").message()?)?;
            }
            Child::Fixed64(name) => {
                field(name).packed64_len()?;
            }
            Child::Scalar64(name) => {
                field(name).fixed64()?;
            }
            Child::Varint(name) => {
                field(name).varint()?;
            }
        }
        Ok(())
    })
}
