//! The cost of continuous self-profiling: metrics ingest (decode +
//! translate + store, one thread, as one ingest worker does) with all
//! profiling off, and with it on as `exporters.pprof.pyroscope` runs it:
//! the CPU sampler at 100 Hz in consecutive windows, each ending with its
//! report (symbolised, pprof-encoded, gzipped), jemalloc's heap sampler
//! on and a heap profile dumped per window.
//!
//! The two modes alternate in blocks of one window (10 s, the default
//! `upload_interval`), and each block is measured in CPU time of the whole
//! process (`getrusage`), so the profiler's signal handler and its report
//! building on another thread both count, and the other tenants of a
//! noisy machine mostly do not. Printed: points per CPU-second of each
//! block pair and their ratio, the CPU time of each window's report and
//! heap dump, and the medians (the overhead is 1 - ratio).
//!
//! Run: `cargo bench --bench profiling` (about 3 min); `PAIRS=N` sets the
//! number of block pairs (default 9), `WINDOW_SECS=N` the window.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message;
use streamgate::exporters::pprof::{
    Format, SymbolCache, cpu_profile_blocking, heap_profile_blocking,
};
use streamgate::exporters::prometheus::{PrometheusExporter, PrometheusExporterConfig};
use streamgate::model::MetricsBatch;
use streamgate::pipeline::MetricsConsumer;
use streamgate::telemetry::Telemetry;

#[path = "support/requests.rs"]
mod requests;

/// The allocator and heap-sampler settings of the `streamgate` binary.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8] = b"prof:true,prof_active:false,lg_prof_sample:19\0";

/// CPU seconds used by the whole process so far.
fn process_cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is valid.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn heap_sampler(active: bool) {
    let mut ctl = jemalloc_pprof::PROF_CTL
        .as_ref()
        .expect("jemalloc started with prof:true")
        .blocking_lock();
    if active {
        ctl.activate().expect("heap sampler on");
    } else {
        ctl.deactivate().expect("heap sampler off");
    }
}

/// Ingests until `done` says stop; returns points per CPU-second.
fn ingest_block(
    e: &PrometheusExporter,
    bytes: &[u8],
    points: u64,
    done: impl Fn(Instant) -> bool,
) -> f64 {
    let start = Instant::now();
    let cpu = process_cpu_seconds();
    let mut n = 0u64;
    while !done(start) {
        let batch = MetricsBatch::decode(Bytes::copy_from_slice(black_box(bytes))).expect("valid");
        black_box(e.consume_metrics(&batch).expect("consumed"));
        n += 1;
    }
    (n * points) as f64 / (process_cpu_seconds() - cpu)
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo test --benches` runs bench binaries with no `--bench` flag:
    // nothing to measure then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let pairs = env_number("PAIRS", 9) as usize;
    let window = Duration::from_secs(env_number("WINDOW_SECS", 10));
    let request = requests::realistic_request(12, 100, 3, 2);
    let bytes = request.encode_to_vec();
    let points = 12 * 100;
    let e = PrometheusExporter::new(
        PrometheusExporterConfig::default(),
        Arc::new(Telemetry::new()),
    );
    e.consume_metrics(&MetricsBatch::from_request(request))
        .expect("consumed");
    // Warm up, and load the symboliser's cache as continuous mode keeps it.
    ingest_block(&e, &bytes, points, |s| {
        s.elapsed() >= Duration::from_secs(2)
    });
    println!("continuous profiling overhead, {pairs} pairs of {window:?} blocks, CPU time");
    let mut ratios = Vec::new();
    let mut off_rates = Vec::new();
    let mut on_rates = Vec::new();
    let mut reports = Vec::new();
    let mut dumps = Vec::new();
    // Kept across windows, as continuous profiling keeps it.
    let mut symbols = Some(SymbolCache::default());
    for pair in 0..pairs {
        heap_sampler(false);
        let off = ingest_block(&e, &bytes, points, |s| s.elapsed() >= window);
        heap_sampler(true);
        let mut cache = symbols.take().unwrap_or_default();
        let profiler = std::thread::spawn(move || {
            // The sampler's thread sleeps through the window, so its CPU
            // time is the report's and the heap dump's.
            let t0 = thread_cpu_seconds();
            let cpu = cpu_profile_blocking(window, 100, Format::Pprof, &mut cache, &|| false)
                .expect("CPU profile");
            let t1 = thread_cpu_seconds();
            let heap = heap_profile_blocking(Format::Pprof).expect("heap profile");
            let t2 = thread_cpu_seconds();
            (cpu.len(), heap.len(), t1 - t0, t2 - t1, cache)
        });
        let on = ingest_block(&e, &bytes, points, |_| profiler.is_finished());
        let (cpu_bytes, heap_bytes, report, dump, cache) =
            profiler.join().expect("profiler thread");
        symbols = Some(cache);
        let ratio = on / off;
        println!(
            "pair {pair}: off {off:>9.0} points/CPU-s  on {on:>9.0}  ratio {ratio:.4}  CPU report {:>5.1} ms, heap dump {:>4.1} ms  ({cpu_bytes} + {heap_bytes} bytes)",
            report * 1e3,
            dump * 1e3
        );
        ratios.push(ratio);
        off_rates.push(off);
        on_rates.push(on);
        reports.push(report);
        dumps.push(dump);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ratio = median(&mut ratios);
    let report = median(&mut reports);
    let dump = median(&mut dumps);
    println!(
        "median: off {:.0} points/CPU-s, on {:.0}; ratio on/off {ratio:.4} (overhead {:.2} %)",
        median(&mut off_rates),
        median(&mut on_rates),
        (1.0 - ratio) * 100.0
    );
    println!(
        "median per window: CPU report {:.1} ms + heap dump {:.1} ms = {:.2} % of one core",
        report * 1e3,
        dump * 1e3,
        (report + dump) / window.as_secs_f64() * 100.0
    );
}
