//! What the fuzz targets run, shared with the stable replay test
//! (`tests/fuzz_corpus.rs` includes this file as a module).
//!
//! Every input goes through the OTLP receiver's request path
//! ([`Harness`], built once) into a fresh pipeline wired as `App::build`
//! wires it: metrics into the window processor and the Prometheus
//! exporter (translation and series store); traces into span metrics
//! (flushed after every request), the service graph and the API's span
//! tail; logs into log counts and the log tail. Fresh state makes every
//! finding replay on its own. An accepted request is sent a second time
//! (series then exist: cumulative replaces, delta adds, connector series
//! update), then the pipeline is settled: waiting service-graph halves
//! expire, the windows are evaluated, `/metrics` (with the windows'
//! gauges) is rendered in both formats and the tails as JSON.
//!
//! Protobuf inputs are also checked against prost: the in-place
//! validation must accept exactly what prost decodes and count the same
//! items (the pipeline's consumers trust both).

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use bytes::Bytes;
use prost::Message;

use streamgate::api::Tail;
use streamgate::api::config::TailConfig;
use streamgate::config::types::HumanDuration;
use streamgate::connectors::logmetrics::{LogMetrics, LogMetricsConfig};
use streamgate::connectors::servicegraph::{ServiceGraph, ServiceGraphConfig};
use streamgate::connectors::spanmetrics::{SpanMetrics, SpanMetricsConfig};
use streamgate::exporters::prometheus::{self, Format, PrometheusExporter};
use streamgate::model::LogsBatch;
use streamgate::model::otlp::ItemCount;
use streamgate::model::wire::WireError;
use streamgate::model::{MetricsBatch, MetricsRequest, TracesBatch, TracesRequest};
use streamgate::pipeline::{
    ConsumeResult, Consumed, Fanout, LogsConsumer, MetricsConsumer, ObservationConsumer,
    TracesConsumer,
};
use streamgate::processors::windows::{self, WindowProcessor, WindowsConfig};
use streamgate::receivers::otlp::fuzzing::{Harness, Outcome};
use streamgate::receivers::otlp::{Consumers, OtlpReceiverConfig, Payload};
use streamgate::telemetry::{Signal, Telemetry};

/// A fuzz target: which bytes go where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The whole input is an `ExportMetricsServiceRequest` in protobuf.
    MetricsProtobuf,
    /// The whole input is an `ExportTraceServiceRequest` in protobuf.
    TracesProtobuf,
    /// The whole input is an `ExportLogsServiceRequest` in protobuf.
    LogsProtobuf,
    /// The first byte picks the signal (modulo 3: metrics, traces, logs),
    /// the rest is the OTLP/JSON body.
    Json,
}

impl Target {
    pub const ALL: [Target; 4] = [
        Target::MetricsProtobuf,
        Target::TracesProtobuf,
        Target::LogsProtobuf,
        Target::Json,
    ];

    /// The cargo-fuzz target's name, also its corpus folder's.
    pub fn name(self) -> &'static str {
        match self {
            Target::MetricsProtobuf => "otlp_metrics_protobuf",
            Target::TracesProtobuf => "otlp_traces_protobuf",
            Target::LogsProtobuf => "otlp_logs_protobuf",
            Target::Json => "otlp_json",
        }
    }

    /// The signal, encoding and body an input stands for.
    pub fn split(self, data: &[u8]) -> (Signal, Payload, &[u8]) {
        match self {
            Target::MetricsProtobuf => (Signal::Metrics, Payload::Protobuf, data),
            Target::TracesProtobuf => (Signal::Traces, Payload::Protobuf, data),
            Target::LogsProtobuf => (Signal::Logs, Payload::Protobuf, data),
            Target::Json => match data.split_first() {
                Some((first, body)) => (json_signal(*first), Payload::Json, body),
                None => (Signal::Metrics, Payload::Json, data),
            },
        }
    }
}

/// The signal the first byte of a JSON input picks.
pub fn json_signal(first: u8) -> Signal {
    match first % 3 {
        0 => Signal::Metrics,
        1 => Signal::Traces,
        _ => Signal::Logs,
    }
}

/// The first byte that makes a JSON input one of `signal`.
pub fn json_prefix(signal: Signal) -> u8 {
    match signal {
        Signal::Metrics => 0,
        Signal::Traces => 1,
        Signal::Logs => 2,
    }
}

/// Runs one input through a fresh pipeline; panics only on a bug.
pub fn run(target: Target, data: &[u8]) -> Outcome {
    let (signal, payload, body) = target.split(data);
    if payload == Payload::Protobuf {
        agrees_with_prost(signal, body);
    }
    let (receiver, current) = receiver();
    // One input at a time: the receiver is shared (tests run in threads).
    let _running = current
        .running
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let pipeline = Pipeline::new();
    current.set(Some(pipeline.consumers.clone()));
    let outcome = receiver.exercise(signal, payload, body);
    if let Outcome::Accepted { .. } = outcome {
        receiver.exercise(signal, payload, body);
    }
    current.set(None);
    pipeline.settle();
    outcome
}

/// The receiver, built once (it is stateless between requests but not
/// cheap to build), and the switch that hands its requests to the
/// pipeline of the input being run.
fn receiver() -> &'static (Harness, Arc<Current>) {
    static RECEIVER: OnceLock<(Harness, Arc<Current>)> = OnceLock::new();
    RECEIVER.get_or_init(|| {
        let current = Arc::new(Current::default());
        let consumers = Consumers {
            traces: current.clone(),
            metrics: current.clone(),
            logs: current.clone(),
        };
        let telemetry = Arc::new(Telemetry::new());
        let harness = Harness::new(OtlpReceiverConfig::default(), consumers, telemetry);
        (harness, current)
    })
}

/// The consumers of the input being run (none between inputs: accept
/// and drop).
#[derive(Default)]
struct Current {
    consumers: Mutex<Option<Consumers>>,
    running: Mutex<()>,
}

impl Current {
    fn set(&self, consumers: Option<Consumers>) {
        *self
            .consumers
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = consumers;
    }

    fn get(&self) -> Option<Consumers> {
        self.consumers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl MetricsConsumer for Current {
    fn consume_metrics(&self, batch: &MetricsBatch) -> ConsumeResult {
        match self.get() {
            Some(c) => c.metrics.consume_metrics(batch),
            None => Ok(Consumed::all()),
        }
    }
}

impl TracesConsumer for Current {
    fn consume_traces(&self, batch: &TracesBatch) -> ConsumeResult {
        match self.get() {
            Some(c) => c.traces.consume_traces(batch),
            None => Ok(Consumed::all()),
        }
    }
}

impl LogsConsumer for Current {
    fn consume_logs(&self, batch: &LogsBatch) -> ConsumeResult {
        match self.get() {
            Some(c) => c.logs.consume_logs(batch),
            None => Ok(Consumed::all()),
        }
    }
}

/// The components an input goes through.
struct Pipeline {
    consumers: Consumers,
    exporter: Arc<PrometheusExporter>,
    windows: Arc<WindowProcessor>,
    servicegraph: Arc<ServiceGraph>,
    tail: Arc<Tail>,
}

impl Pipeline {
    fn new() -> Self {
        let telemetry = Arc::new(Telemetry::new());
        let exporter = prometheus::build(Default::default(), telemetry.clone());
        let windows = Arc::new(WindowProcessor::new(
            WindowsConfig::default(),
            exporter.clone(),
            exporter.clone(),
            None,
            telemetry.clone(),
        ));
        // Its gauges are rendered from its state, as in the collector.
        let source: Arc<dyn streamgate::pipeline::derived::DerivedSource> = windows.clone();
        exporter.attach_derived(Arc::downgrade(&source));
        let metrics: Arc<dyn MetricsConsumer> = windows.clone();
        let spanmetrics = Arc::new(SpanMetrics::new(
            SpanMetricsConfig {
                flush_interval: HumanDuration::secs(0),
                ..Default::default()
            },
            metrics.clone(),
            Some(windows.clone() as Arc<dyn ObservationConsumer>),
            telemetry.clone(),
        ));
        let servicegraph = Arc::new(ServiceGraph::new(
            ServiceGraphConfig::default(),
            metrics.clone(),
            telemetry.clone(),
        ));
        let logmetrics = Arc::new(LogMetrics::new(
            LogMetricsConfig::default(),
            metrics.clone(),
            telemetry.clone(),
        ));
        let tail = Arc::new(Tail::new(&TailConfig::default()));
        let traces: Vec<Arc<dyn TracesConsumer>> =
            vec![spanmetrics, servicegraph.clone(), tail.clone()];
        let logs: Vec<Arc<dyn LogsConsumer>> = vec![logmetrics, tail.clone()];
        Pipeline {
            consumers: Consumers {
                traces: Arc::new(Fanout::new(traces)),
                metrics,
                logs: Arc::new(Fanout::new(logs)),
            },
            exporter,
            windows,
            servicegraph,
            tail,
        }
    }

    /// What happens after requests, on the components' own clocks.
    fn settle(&self) {
        let now_ms = windows::now_ms();
        // Past every half's wait: unpaired halves and virtual edges.
        let later_ns = (now_ms + 3_600_000).saturating_mul(1_000_000);
        self.servicegraph.expire(later_ns);
        // The windows' gauges are rendered from the figures this computes.
        self.windows.evaluate(now_ms);
        // `/metrics` as a scrape writes it.
        for format in [Format::Text, Format::OpenMetrics] {
            std::hint::black_box(self.exporter.render(format));
        }
        std::hint::black_box(self.tail.spans(None, usize::MAX));
        std::hint::black_box(self.tail.logs(None, usize::MAX));
    }
}

/// Panics when the in-place validation and prost disagree on `body`:
/// validation accepts what prost refuses, counts other items than prost,
/// or refuses what prost decodes for another reason than its nesting
/// limit, a message sent in parts or an id of the wrong length (prost's own is off in this build: `pprof_util` turns on its
/// `no-recursion-limit` feature). Inputs the validation refuses for a
/// group (wire types 3 and 4, which prost skips) are not given to prost:
/// nested groups would overflow the stack in prost's skipping, here
/// only (the receiver never hands such metrics or traces to prost), and
/// that refusal is a known difference: protobuf parsers skip unknown
/// fields sent as groups, the validation refuses them.
///
/// Strings that are not UTF-8 are repaired rather than refused (as the
/// OTLP guidance allows): prost is then given the repaired bytes, which
/// it must decode to as many items.
fn agrees_with_prost(signal: Signal, body: &[u8]) {
    let mut repaired: Option<Vec<u8>> = None;
    let ours = match signal {
        Signal::Metrics => MetricsBatch::decode(Bytes::copy_from_slice(body)).map(|b| {
            if b.repaired_strings() > 0 {
                repaired = Some(b.wire().to_vec());
            }
            b.item_count()
        }),
        Signal::Traces => TracesBatch::decode(Bytes::copy_from_slice(body)).map(|b| {
            if b.repaired_strings() > 0 {
                repaired = Some(b.wire().to_vec());
            }
            b.item_count()
        }),
        // Logs are decoded by prost itself.
        Signal::Logs => return,
    };
    let body = repaired.as_deref().unwrap_or(body);
    if let Err(WireError::UnknownWireType {
        wire_type: 3 | 4, ..
    }) = ours
    {
        return;
    }
    let theirs = match signal {
        Signal::Metrics => MetricsRequest::decode(body).map(|r| r.item_count()),
        _ => TracesRequest::decode(body).map(|r| r.item_count()),
    };
    let agree = match (&ours, &theirs) {
        (Ok(a), Ok(b)) => a == b,
        (Err(_), Err(_)) => true,
        (Ok(_), Err(_)) => false,
        // prost takes ids of any length; OTLP (and the validation) does not.
        (Err(e), Ok(_)) => matches!(
            e,
            WireError::TooDeep { .. }
                | WireError::RepeatedMessage { .. }
                | WireError::IdLength { .. }
        ),
    };
    assert!(
        agree,
        "{} protobuf: in-place validation says {ours:?}, prost says {theirs:?}",
        signal.as_str()
    );
}
