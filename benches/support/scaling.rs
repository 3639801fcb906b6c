//! Thread scaling measured in paired rounds, shared by the benches that
//! check the "2 threads at least 1.8× 1 thread" target.
//!
//! This VM's speed drifts between criterion's 1- and 2-thread blocks
//! (seconds apart), so the ratio of two blocks is as noisy as the drift.
//! Here each round times 1 thread, then 2 threads, back to back (~40 ms
//! each), and the ratio is taken per round; the cases take turns within
//! a round.

use bytes::Bytes;
use criterion::{Criterion, Throughput};

/// One payload's work.
pub type Work<'a> = &'a (dyn Fn(&Bytes) + Sync);

/// Runs `work` on one payload per thread (the first `threads` payloads),
/// `iters` times each; the wall time until every thread is done.
pub fn on_threads(
    payloads: &[Bytes],
    threads: usize,
    iters: u64,
    work: Work<'_>,
) -> std::time::Duration {
    let start = std::time::Instant::now();
    std::thread::scope(|scope| {
        for bytes in &payloads[..threads] {
            scope.spawn(move || {
                for _ in 0..iters {
                    work(bytes);
                }
            });
        }
    });
    start.elapsed()
}

/// Whether the paired rounds of `id` (`group/scaling`) should run: not
/// when listing, testing, or filtering for another benchmark.
pub fn wanted(id: &str) -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let other_filter = args
        .iter()
        .filter(|a| !a.starts_with('-') && a.parse::<f64>().is_err())
        .any(|f| !id.contains(f.as_str()));
    !(other_filter || args.iter().any(|a| a == "--list" || a == "--test"))
}

/// Prints, per case, the median and quartiles of the 1 → 2 thread
/// throughput ratio over 40 paired rounds. The cases take turns within
/// each round, so a stretch of time when the VM's second vCPU is slow
/// falls on every case alike, not on whichever case ran then.
pub fn print_paired_rounds(payloads: &[Bytes], cases: &[(&str, Work<'_>)]) {
    let iters: Vec<u64> = cases
        .iter()
        .map(|(_, work)| {
            let once = on_threads(payloads, 1, 20, *work).as_secs_f64() / 20.0;
            ((0.04 / once.max(1e-9)) as u64).max(1)
        })
        .collect();
    let mut ratios: Vec<Vec<f64>> = vec![Vec::with_capacity(40); cases.len()];
    for _ in 0..40 {
        for ((_, work), (iters, ratios)) in cases.iter().zip(iters.iter().zip(&mut ratios)) {
            let one = on_threads(payloads, 1, *iters, *work).as_secs_f64();
            let two = on_threads(payloads, 2, *iters, *work).as_secs_f64();
            ratios.push(2.0 * one / two);
        }
    }
    for ((name, _), mut ratios) in cases.iter().zip(ratios) {
        ratios.sort_by(f64::total_cmp);
        let q = |f: f64| ratios[((ratios.len() - 1) as f64 * f).round() as usize];
        println!(
            "scaling 1 -> 2 threads, {name}: median {:.2} (quartiles {:.2} to {:.2}) over {} paired rounds",
            q(0.5),
            q(0.25),
            q(0.75),
            ratios.len()
        );
    }
}

/// Benchmarks every case from 1 and 2 threads as criterion blocks in the
/// group `group` (throughput: `items` per payload per thread), then, when
/// asked for, prints `group/scaling`: the paired rounds.
pub fn bench_threads(
    c: &mut Criterion,
    group: &str,
    items: u64,
    payloads: &[Bytes],
    cases: &[(&str, Work<'_>)],
) {
    let mut criterion_group = c.benchmark_group(group);
    for (name, work) in cases {
        for threads in [1usize, 2] {
            criterion_group.throughput(Throughput::Elements(items * threads as u64));
            criterion_group.bench_function(format!("{name}_{threads}_threads"), |b| {
                b.iter_custom(|iters| on_threads(payloads, threads, iters, *work))
            });
        }
    }
    criterion_group.finish();
    if wanted(&format!("{group}/scaling")) {
        print_paired_rounds(payloads, cases);
    }
}
