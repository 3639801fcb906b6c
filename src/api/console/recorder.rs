//! What the console's charts show over time, sampled off the ingest path:
//! every `sample_interval` the recorder reads StreamGate's own counters
//! (accepted items by signal and transport, refusals, active series,
//! resident memory) and the analysis processor's ranked snapshot, and
//! keeps the last `points` samples in rings: one for the overview, one
//! per analysed series that ranked among the top ones (at most
//! `MAX_TRACKED` series, the least recently ranked forgotten first).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::model::recommendation::{AnalysedSeries, AnalysisSnapshot};
use crate::pipeline::Shutdown;
use crate::telemetry::{Signal, Telemetry, Transport};

/// Series ranked per sample whose history is kept.
pub const TOP: usize = 25;
/// Most analysed series with a history ring.
const MAX_TRACKED: usize = 200;

/// One overview sample: per-second rates since the previous sample.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct RateSample {
    pub t: f64,
    /// Accepted items per second by [signal][transport].
    pub accepted: [[f64; 2]; 3],
    /// Refused requests per second.
    pub refused: f64,
    pub active_series: f64,
    pub resident_bytes: f64,
}

/// One analysed-series sample.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct AnalysisSample {
    pub t: f64,
    pub value: f64,
    pub expected: f64,
    pub lower: f64,
    pub upper: f64,
    pub score: f64,
    pub anomalous: bool,
}

/// A tracked analysed series: its latest snapshot and its history.
pub struct Tracked {
    pub latest: AnalysedSeries,
    pub history: VecDeque<AnalysisSample>,
    last_ranked: u64,
}

/// The rings, behind one lock taken briefly by the sampler and by pages.
pub struct Recorder {
    telemetry: Arc<Telemetry>,
    analysis: Option<Arc<dyn AnalysisSnapshot>>,
    interval: Duration,
    points: usize,
    state: parking_lot::Mutex<State>,
}

#[derive(Default)]
struct State {
    rates: VecDeque<RateSample>,
    /// Counter totals at the previous sample: accepted [signal][transport]
    /// and refused requests.
    previous: Option<(f64, [[u64; 2]; 3], u64)>,
    tracked: HashMap<String, Tracked>,
    /// Keys of the latest ranking, best first, and how many series the
    /// analysis holds in all.
    ranking: Vec<String>,
    analysed_total: usize,
    samples: u64,
}

/// The key of an analysed series: its metric and labels.
pub fn series_key(s: &AnalysedSeries) -> String {
    let mut key = s.metric.clone();
    for (k, v) in &s.labels {
        key.push('\u{1f}');
        key.push_str(k);
        key.push('=');
        key.push_str(v);
    }
    key
}

impl Recorder {
    pub fn new(
        telemetry: Arc<Telemetry>,
        analysis: Option<Arc<dyn AnalysisSnapshot>>,
        interval: Duration,
        points: usize,
    ) -> Self {
        Self {
            telemetry,
            analysis,
            interval,
            points: points.max(2),
            state: parking_lot::Mutex::new(State::default()),
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Samples every `interval` until shutdown.
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        shutdown
            .every(self.interval, || {
                let recorder = self.clone();
                async move {
                    let _ = tokio::task::spawn_blocking(move || recorder.sample(unix_now())).await;
                }
            })
            .await;
    }

    /// Takes one sample at `now` (Unix seconds).
    pub fn sample(&self, now: f64) {
        let t = &self.telemetry;
        let mut totals = [[0u64; 2]; 3];
        for (si, signal) in Signal::ALL.iter().enumerate() {
            for (ti, transport) in Transport::ALL.iter().enumerate() {
                totals[si][ti] = t.accepted(*signal, *transport);
            }
        }
        let refused = t.refused_requests_total();
        let resident = crate::telemetry::process::resident_bytes().unwrap_or(0) as f64;
        let ranked = self.analysis.as_ref().map(|a| a.analysed(TOP));

        let mut state = self.state.lock();
        state.samples += 1;
        let generation = state.samples;
        if let Some((t0, before, refused_before)) = state.previous {
            let dt = (now - t0).max(1e-3);
            let mut sample = RateSample {
                t: now,
                refused: refused.saturating_sub(refused_before) as f64 / dt,
                active_series: t.active_series() as f64,
                resident_bytes: resident,
                ..RateSample::default()
            };
            for si in 0..3 {
                for ti in 0..2 {
                    sample.accepted[si][ti] =
                        totals[si][ti].saturating_sub(before[si][ti]) as f64 / dt;
                }
            }
            push_bounded(&mut state.rates, sample, self.points);
        }
        state.previous = Some((now, totals, refused));

        if let Some((list, total)) = ranked {
            state.analysed_total = total;
            state.ranking.clear();
            for s in list {
                let key = series_key(&s);
                state.ranking.push(key.clone());
                let sample = AnalysisSample {
                    t: now,
                    value: s.value,
                    expected: s.expected,
                    lower: s.lower,
                    upper: s.upper,
                    score: s.score,
                    anomalous: s.anomalous,
                };
                let entry = state.tracked.entry(key).or_insert_with(|| Tracked {
                    latest: s.clone(),
                    history: VecDeque::new(),
                    last_ranked: generation,
                });
                entry.latest = s;
                entry.last_ranked = generation;
                push_bounded(&mut entry.history, sample, self.points);
            }
            if state.tracked.len() > MAX_TRACKED {
                let mut ages: Vec<(u64, String)> = state
                    .tracked
                    .iter()
                    .map(|(k, v)| (v.last_ranked, k.clone()))
                    .collect();
                ages.sort();
                let excess = state.tracked.len() - MAX_TRACKED;
                for (_, key) in ages.into_iter().take(excess) {
                    state.tracked.remove(&key);
                }
            }
        }
    }

    /// The overview rings, oldest first.
    pub fn rates(&self) -> Vec<RateSample> {
        self.state.lock().rates.iter().copied().collect()
    }

    /// The latest ranking with each series' history, best first, and how
    /// many series the analysis holds.
    pub fn ranking(&self) -> (Vec<(AnalysedSeries, Vec<AnalysisSample>)>, usize) {
        let state = self.state.lock();
        let list = state
            .ranking
            .iter()
            .filter_map(|k| state.tracked.get(k))
            .map(|t| (t.latest.clone(), t.history.iter().copied().collect()))
            .collect();
        (list, state.analysed_total)
    }

    /// Whether the analysis processor runs.
    pub fn has_analysis(&self) -> bool {
        self.analysis.is_some()
    }
}

fn push_bounded<T>(ring: &mut VecDeque<T>, item: T, max: usize) {
    if ring.len() >= max {
        ring.pop_front();
    }
    ring.push_back(item);
}

/// Unix time now, in seconds.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
