//! Visibility probes: how long after StreamGate answers an OTLP export its
//! point can be read on `/metrics`. Every `every`, one gauge point
//! (`loadgen.probe`, its value the probe's number) is exported on a
//! connection of its own; once it is accepted, `/metrics?name[]=
//! loadgen_probe` (only the probe's metric, so what is timed is when the
//! point shows, not how long a page of every series takes to read) is
//! read until that value shows, and the time from the answer to the read
//! that showed it is recorded (that read included). A probe not visible
//! within [`GIVE_UP`] counts as missed.

use std::time::{Duration, Instant};

use super::latency::Latencies;
use super::payload;
use super::sender::{Answer, Payload, Sender};
use super::{LoadgenError, fetch_text};

/// How long a probe's point is looked for.
pub const GIVE_UP: Duration = Duration::from_secs(2);

/// What the probes saw.
#[derive(Debug, Default)]
pub struct Probes {
    pub latencies: Latencies,
    /// Probes whose point never showed within [`GIVE_UP`].
    pub missed: u64,
    /// Probes the receiver did not accept (not measured).
    pub refused: u64,
    /// Reads of `/metrics` beyond the first per probe: 0 when every
    /// accepted point showed on the first read after its answer.
    pub extra_reads: u64,
}

/// Runs `probes` (a [`run`]) on a thread and runtime of its own, so the
/// probes' timing never waits for the load's busy workers. The thread
/// gives up a little after `deadline`.
pub fn spawn(
    deadline: Instant,
    probes: impl Future<Output = Result<Probes, LoadgenError>> + Send + 'static,
) -> Result<std::thread::JoinHandle<Result<Probes, LoadgenError>>, LoadgenError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| LoadgenError::Invalid(format!("cannot start the probe runtime: {e}")))?;
    let limit = deadline.saturating_duration_since(Instant::now()) + GIVE_UP + GIVE_UP;
    std::thread::Builder::new()
        .name("loadgen-probe".into())
        .spawn(move || {
            runtime.block_on(async move {
                tokio::time::timeout(limit, probes).await.map_err(|_| {
                    LoadgenError::Invalid("the probes did not finish in time".into())
                })?
            })
        })
        .map_err(|e| LoadgenError::Invalid(format!("cannot start the probe thread: {e}")))
}

/// Probes every `every` until `deadline`.
pub async fn run(
    sender: Sender,
    metrics_url: &str,
    every: Duration,
    deadline: Instant,
) -> Result<Probes, LoadgenError> {
    let mut probes = Probes::default();
    let url = probe_url(metrics_url);
    let mut ticker = tokio::time::interval(every);
    for number in 1u64.. {
        ticker.tick().await;
        if Instant::now() >= deadline {
            break;
        }
        let now_ns = super::unix_nanos();
        let request = payload::probe(number, now_ns);
        if !matches!(
            sender.send(Payload::Metrics(request)).await,
            Answer::Accepted { rejected: 0 }
        ) {
            probes.refused += 1;
            continue;
        }
        let answered = Instant::now();
        for read in 0u64.. {
            probes.extra_reads += read.min(1);
            let page = fetch_text(&url).await?;
            if shows(&page, number) {
                probes.latencies.record(answered.elapsed());
                break;
            }
            if answered.elapsed() >= GIVE_UP {
                probes.missed += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    Ok(probes)
}

/// `metrics_url` asking for the probe's metric only.
fn probe_url(metrics_url: &str) -> String {
    let join = if metrics_url.contains('?') { '&' } else { '?' };
    format!("{metrics_url}{join}name[]=loadgen_probe")
}

/// Whether a `/metrics` page shows probe `number`.
fn shows(page: &str, number: u64) -> bool {
    let wanted = number.to_string();
    page.lines()
        .filter(|line| line.starts_with("loadgen_probe{"))
        .filter_map(|line| line.rsplit_once('}'))
        .any(|(_, value)| value.split_whitespace().next() == Some(wanted.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_shows_only_with_its_own_value() {
        let page = "# TYPE loadgen_probe gauge\nloadgen_probe{job=\"loadgen-probe\",x=\"a} 7\"} 12\nloadgen_probe_other 7\n";
        assert!(shows(page, 12));
        assert!(!shows(page, 7));
        assert!(!shows(page, 1));
    }

    #[test]
    fn the_probe_reads_its_own_metric_only() {
        assert_eq!(
            probe_url("http://127.0.0.1:9464/metrics"),
            "http://127.0.0.1:9464/metrics?name[]=loadgen_probe"
        );
        assert_eq!(
            probe_url("http://h/metrics?a=1"),
            "http://h/metrics?a=1&name[]=loadgen_probe"
        );
    }
}
