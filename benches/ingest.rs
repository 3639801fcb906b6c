//! Hot-path benchmarks: OTLP metrics decode alone (the physical floor),
//! decode + translate + store update, and `/metrics` rendering.
//!
//! Run: `cargo bench --bench ingest`. Throughput is in data points/s.

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use streamgate::exporters::delivery::Batch;
use streamgate::exporters::prometheus::{
    Format, NameFilter, PrometheusExporter, PrometheusExporterConfig, Unpaced,
};
use streamgate::exporters::remote_write::{Ledger, RequestEncoder};
use streamgate::model::{MetricsBatch, MetricsRequest};
use streamgate::pipeline::MetricsConsumer;
use streamgate::telemetry::Telemetry;

#[path = "support/requests.rs"]
mod requests;
use requests::realistic_request;
#[path = "support/allocator.rs"]
mod allocator;
#[path = "support/scaling.rs"]
mod scaling;
use scaling::Work;

fn exporter() -> PrometheusExporter {
    PrometheusExporter::new(
        PrometheusExporterConfig::default(),
        Arc::new(Telemetry::new()),
    )
}

fn ingest(c: &mut Criterion) {
    let request = realistic_request(12, 100, 3, 2);
    let bytes = Bytes::from(request.encode_to_vec());
    let points = 12 * 100;
    let mut group = c.benchmark_group("metrics_ingest");
    group.throughput(Throughput::Elements(points));
    group.bench_function("decode_only", |b| {
        b.iter(|| black_box(MetricsRequest::decode(black_box(&bytes[..])).unwrap()))
    });
    group.bench_function("validate_in_place", |b| {
        b.iter(|| black_box(MetricsBatch::decode(black_box(bytes.clone())).unwrap()))
    });
    let e = exporter();
    e.consume_metrics(&MetricsBatch::from_request(request))
        .unwrap();
    group.bench_function("decode_translate_store", |b| {
        b.iter(|| {
            let batch = MetricsBatch::decode(black_box(bytes.clone())).unwrap();
            black_box(e.consume_metrics(&batch).unwrap())
        })
    });
    group.finish();
}

/// The same ingest from 1 and from 2 threads at once, each thread sending
/// its own instance's series into the same families (as two SDK
/// processes of one service do): the throughput ratio is the scaling
/// (target: at least 1.8 with 2 threads on 2 cores). With `OWN_FAMILIES`
/// set, the second thread's metrics have other names, so the threads
/// share no family (what the scaling would be with no family shared).
fn threads(c: &mut Criterion) {
    let points = 12 * 100;
    let e = exporter();
    let payloads: Vec<Bytes> = (0..2)
        .map(|t| {
            let mut request = realistic_request(12, 100, 3, 2);
            if let Some(resource) = request.resource_metrics[0].resource.as_mut() {
                for kv in &mut resource.attributes {
                    if kv.key == "service.instance.id" {
                        *kv = requests::kv("service.instance.id", format!("pod-{t}"));
                    }
                }
            }
            if t == 1 && std::env::var_os("OWN_FAMILIES").is_some() {
                // Other names: other families.
                for sm in &mut request.resource_metrics[0].scope_metrics {
                    for m in &mut sm.metrics {
                        m.name.push_str("_other");
                    }
                }
            }
            let batch = MetricsBatch::from_request(request);
            e.consume_metrics(&batch).unwrap();
            Bytes::copy_from_slice(batch.wire())
        })
        .collect();
    // The machine's own ceiling: prost decode shares nothing between the
    // threads, so its 2-thread ratio is what the cores allow. The in-place
    // validation alone (no store, nothing shared) shows how the wire
    // reader's own work scales.
    let prost = |bytes: &Bytes| {
        black_box(MetricsRequest::decode(black_box(&bytes[..])).unwrap());
    };
    let validate = |bytes: &Bytes| {
        black_box(MetricsBatch::decode(black_box(bytes.clone())).unwrap());
    };
    let store = |bytes: &Bytes| {
        let batch = MetricsBatch::decode(black_box(bytes.clone())).unwrap();
        black_box(e.consume_metrics(&batch).unwrap());
    };
    let cases: [(&str, Work<'_>); 3] = [
        ("prost_decode", &prost),
        ("validate", &validate),
        ("decode_translate_store", &store),
    ];
    scaling::bench_threads(c, "metrics_ingest_threads", points, &payloads, &cases);
}

fn render(c: &mut Criterion) {
    let mut group = c.benchmark_group("metrics_render");
    group.sample_size(20);
    for series in [10_000usize, 100_000] {
        let e = exporter();
        // Gauges and counters: one sample line per series.
        let request = realistic_request(series / 1000, 1000, 2, 2);
        assert_eq!(e.store().series_count(), 0);
        e.consume_metrics(&MetricsBatch::from_request(request))
            .unwrap();
        assert_eq!(e.store().series_count(), series + 1, "plus target_info");
        eprintln!(
            "text_{series}_series renders {} bytes",
            e.render(Format::Text).len()
        );
        group.throughput(Throughput::Elements(series as u64));
        group.bench_function(format!("text_{series}_series"), |b| {
            b.iter(|| black_box(e.render(Format::Text).len()))
        });
        // The same walk encoded as remote-write requests (protobuf +
        // snappy, 2000 samples each) instead of text.
        group.bench_function(format!("remote_write_{series}_series"), |b| {
            b.iter(|| black_box(remote_write_bytes(&e)))
        });
        // The same with the staleness ledger in steady state: every
        // series of the last collection is read back and found.
        let mut ledger = Ledger::default();
        remote_write_with_ledger(&e, &mut ledger);
        group.bench_function(format!("remote_write_{series}_series_staleness"), |b| {
            b.iter(|| black_box(remote_write_with_ledger(&e, &mut ledger)))
        });
    }
    group.finish();
}

/// One remote-write collection of `e`; the compressed bytes it made.
fn remote_write_bytes(e: &PrometheusExporter) -> usize {
    let mut bytes = 0usize;
    let mut ready = |batch: Batch| bytes += batch.body.len();
    let mut encoder = RequestEncoder::new(1_700_000_000_000, 2000, true, &[], &mut ready);
    e.visit(&NameFilter::all(), &mut encoder, &mut Unpaced);
    encoder.flush();
    drop(encoder);
    bytes
}

/// [`remote_write_bytes`] with the staleness markers of `ledger`'s last
/// collection; the markers written.
fn remote_write_with_ledger(e: &PrometheusExporter, ledger: &mut Ledger) -> u64 {
    let mut bodies = Vec::new();
    let mut ready = |batch: Batch| bodies.push(batch.body);
    let mut encoder = RequestEncoder::new(1_700_000_000_000, 2000, true, &[], &mut ready);
    e.visit(&NameFilter::all(), &mut encoder, &mut Unpaced);
    let marked = ledger.mark_vanished(&mut encoder).unwrap();
    encoder.flush();
    drop(encoder);
    ledger.remember(bodies);
    marked
}

criterion_group!(benches, ingest, threads, render);
criterion_main!(benches);
