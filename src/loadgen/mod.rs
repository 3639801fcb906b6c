//! `streamgate loadgen`: OTLP load for StreamGate (or any OTLP receiver).
//!
//! | file | owns |
//! |---|---|
//! | `payload.rs` | metrics, spans or log records over a fixed set of series |
//! | `template.rs` | metrics and traces requests encoded once, re-stamped per request |
//! | `sender.rs` | one connection: OTLP/gRPC or OTLP/HTTP, answers as OTLP says |
//! | `latency.rs` | request latencies in log buckets, quantiles |
//! | `probe.rs` | visibility probes: export answered → readable on `/metrics` |
//!
//! `concurrency` workers send requests of `batch` items, paced together
//! to `rate` items per second (open loop: a late request is sent at once,
//! not skipped) or flat out with `rate` 0, for `duration`. The summary has
//! the achieved rate, the server's refusals and partial rejections, and
//! latency percentiles; with `metrics_url` (StreamGate's `/metrics`) also
//! the server's CPU time, so throughput per server CPU-second, and with
//! `probe_visibility` how soon an accepted point shows on `/metrics`.
//!
//! Loopback only unless `allow_remote`, and at most one hour: a load
//! generator must not be pointed at someone else's collector by accident.

mod baseline;
mod latency;
pub mod payload;
mod probe;
mod sender;
mod template;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::config::types::HumanDuration;
pub use latency::Latencies;
pub use sender::{Answer, Compression, Encoding};
use sender::{Payload, Sender};

/// Why a load run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    #[error("bad endpoint {0}")]
    Endpoint(String),
    #[error("cannot connect to {0}")]
    Connect(String),
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    Metrics,
    Traces,
    Logs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Grpc,
    Http,
}

/// What to send, where, how fast and for how long.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadgenArgs {
    /// What to send: data points, spans or log records.
    #[arg(long, value_enum, default_value = "metrics")]
    pub signal: Signal,
    /// OTLP/gRPC or OTLP/HTTP.
    #[arg(long, value_enum, default_value = "grpc")]
    pub transport: Transport,
    /// OTLP/HTTP body encoding.
    #[arg(long, value_enum, default_value = "protobuf")]
    pub encoding: Encoding,
    /// Request compression: gRPC message compression, or the HTTP body's
    /// `Content-Encoding` (the OTel Collector's exporters send gzip by
    /// default). With `--baseline` the floor decompresses too.
    #[arg(long, value_enum, default_value = "none")]
    pub compression: Compression,
    /// Receiver address (default http://127.0.0.1:4317 for gRPC,
    /// http://127.0.0.1:4318 for HTTP; the `/v1/<signal>` path is added).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Items per second, all workers together; 0 sends flat out.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// How long to send (at most 1h).
    #[arg(long, default_value = "10s")]
    pub duration: HumanDuration,
    /// Distinct series (metrics), operations (spans) or sources (logs).
    #[arg(long, default_value_t = 10_000)]
    pub series: u64,
    /// Items per request.
    #[arg(long, default_value_t = 1000)]
    pub batch: u64,
    /// Attributes per item.
    #[arg(long, default_value_t = 5)]
    pub attributes: u64,
    /// With `--signal traces`: root server spans, or client/server pairs
    /// of one trace across two services (what the service graph pairs;
    /// needs an even `--batch`), both halves in one request or
    /// (`pairs-across`) each server span one request after its client.
    #[arg(long, value_enum, default_value = "roots")]
    pub spans: payload::SpanShape,
    /// Requests in flight at once (one connection each).
    #[arg(long, default_value_t = 4)]
    pub concurrency: u64,
    /// StreamGate's /metrics, read before and after for its CPU time.
    #[arg(long)]
    pub metrics_url: Option<String>,
    /// Allow an endpoint that is not on this machine's loopback.
    #[arg(long)]
    pub allow_remote: bool,
    /// Before the load, measure how fast prost decodes the same payloads
    /// (items per CPU-second, in this process) to compare the server with.
    #[arg(long)]
    pub baseline: bool,
    /// During the load, every 100 ms export one probe point on a
    /// connection of its own and time how long after the answer it shows
    /// on `--metrics-url` (needs it).
    #[arg(long)]
    pub probe_visibility: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

impl LoadgenArgs {
    /// Without `--endpoint`, targets `config`'s OTLP receiver for the
    /// transport (an unspecified address, `0.0.0.0` or `::`, as
    /// loopback).
    pub fn default_endpoint_from(&mut self, config: &crate::config::Config) {
        if self.endpoint.is_some() {
            return;
        }
        let mut addr = match self.transport {
            Transport::Grpc => config.otlp.grpc.endpoint.addr(),
            Transport::Http => config.otlp.http.endpoint.addr(),
        };
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        self.endpoint = Some(format!("http://{addr}"));
    }

    fn endpoint(&self) -> String {
        self.endpoint
            .clone()
            .unwrap_or_else(|| match self.transport {
                Transport::Grpc => "http://127.0.0.1:4317".into(),
                Transport::Http => "http://127.0.0.1:4318".into(),
            })
    }

    /// Settings that work but skew what is measured, to say before the
    /// run.
    /// A `--rate` below `--batch` would still send a whole batch at
    /// once (the rate several times over in a short run): the batch is
    /// cut to the rate, and the warning says so.
    pub fn fit_batch_to_rate(&mut self) -> Option<String> {
        if self.rate == 0 || self.rate >= self.batch {
            return None;
        }
        let warning = format!(
            "--rate {} is below --batch {}: sending batches of {} instead",
            self.rate, self.batch, self.rate
        );
        self.batch = self.rate;
        Some(warning)
    }

    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let in_flight = self.batch.saturating_mul(self.concurrency);
        if self.signal == Signal::Metrics && self.series < in_flight {
            out.push(format!(
                "--series {} is below --batch × --concurrency ({in_flight}): requests in flight together hold points of the same series, and a point that arrives after a newer one of its series is answered as accepted but dropped as out of order (streamgate_exporter_prometheus_out_of_order_points_total)",
                self.series
            ));
        }
        out
    }

    pub fn validate(&self) -> Result<(), LoadgenError> {
        let invalid = |m: &str| Err(LoadgenError::Invalid(m.into()));
        if self.duration.get().is_zero() || self.duration.get() > Duration::from_secs(3600) {
            return invalid("--duration must be above 0 and at most 1h");
        }
        if self.probe_visibility && self.metrics_url.is_none() {
            return invalid("--probe-visibility needs --metrics-url (StreamGate's /metrics)");
        }
        if self.batch == 0 || self.batch > 100_000 {
            return invalid("--batch must be 1 to 100000 items per request");
        }
        if self.series == 0 {
            return invalid("--series must be above 0");
        }
        if self.concurrency == 0 || self.concurrency > 1024 {
            return invalid("--concurrency must be 1 to 1024");
        }
        if self.attributes > 128 {
            return invalid("--attributes must be at most 128");
        }
        if self.signal == Signal::Metrics && self.attributes == 0 && self.series > payload::METRICS
        {
            return Err(LoadgenError::Invalid(format!(
                "--attributes 0 leaves a point without its series.id attribute, so --series {} would be only {} series (one per metric name): use --attributes 1 or more, or --series {} or fewer",
                self.series,
                payload::METRICS,
                payload::METRICS
            )));
        }
        if self.transport == Transport::Grpc && self.encoding != Encoding::Protobuf {
            return invalid("--encoding json is OTLP/HTTP only: add --transport http");
        }
        if self.signal != Signal::Traces && self.spans != payload::SpanShape::Roots {
            return invalid("--spans shapes traces: add --signal traces");
        }
        if self.spans.paired() && self.batch % 2 == 1 {
            return invalid("--spans pairs needs an even --batch (two spans per pair)");
        }
        let endpoint = self.endpoint();
        let uri: http::Uri = endpoint
            .parse()
            .map_err(|e| LoadgenError::Endpoint(format!("{endpoint}: {e}")))?;
        if uri.scheme_str() != Some("http") {
            return Err(LoadgenError::Endpoint(format!(
                "{endpoint}: only http:// endpoints are supported"
            )));
        }
        let host = uri.host().unwrap_or_default();
        if !self.allow_remote && !is_loopback(host) {
            return Err(LoadgenError::Endpoint(format!(
                "{endpoint} is not on loopback; pass --allow-remote to load another machine"
            )));
        }
        Ok(())
    }
}

/// Fails when nothing accepts a connection at `endpoint`.
async fn check_reachable(endpoint: &str) -> Result<(), LoadgenError> {
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|e| LoadgenError::Endpoint(format!("{endpoint}: {e}")))?;
    let host = uri
        .host()
        .unwrap_or("127.0.0.1")
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    tokio::net::TcpStream::connect((host, port))
        .await
        .map(drop)
        .map_err(|e| LoadgenError::Connect(format!("{endpoint}: {e}")))
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Counters the workers share, read by the progress lines.
#[derive(Default)]
struct Live {
    requests: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    /// Items of requests without an answer.
    failed: AtomicU64,
}

/// One worker's tally.
#[derive(Default)]
struct Tally {
    /// Of answered requests only: a connection that fails at once would
    /// otherwise pass for a fast answer.
    latencies: Latencies,
    requests: u64,
    accepted: u64,
    rejected: u64,
    refused_items: u64,
    failed_requests: u64,
    refusals: BTreeMap<String, u64>,
}

/// What a run achieved.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub signal: Signal,
    pub transport: Transport,
    pub compression: Compression,
    pub seconds: f64,
    pub requests: u64,
    pub items_sent: u64,
    /// Items the server took (sent minus refused and rejected).
    pub items_accepted: u64,
    /// Items refused by `partial_success`.
    pub items_rejected: u64,
    /// Items of requests refused as a whole.
    pub items_refused: u64,
    /// Items of requests that got no answer (connection failures): sent,
    /// but whether the server took them is unknown. Sent = accepted +
    /// rejected + refused + failed.
    pub items_failed: u64,
    /// Requests without an answer (connection failures).
    pub requests_failed: u64,
    /// Refused requests by HTTP status or gRPC code (`retryable` and retry
    /// hints marked).
    pub refusals: BTreeMap<String, u64>,
    /// Accepted items per second of the run: over `--duration`, or the
    /// time until the last answer when that was longer.
    pub accepted_per_second: f64,
    /// Latencies of the answered requests.
    pub latency_p50_ms: f64,
    pub latency_p90_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    /// The server's CPU time during the run (with `metrics_url`).
    pub server_cpu_seconds: Option<f64>,
    /// Accepted items per server CPU-second (with `metrics_url`).
    pub accepted_per_server_cpu_second: Option<f64>,
    /// Items per CPU-second prost decodes from the same payloads (with
    /// `baseline`), decompressing them first when they are compressed.
    pub prost_decode_per_cpu_second: Option<f64>,
    /// Probes measured, and missed (not visible within 2 s), with
    /// `probe_visibility`.
    pub visibility_probes: Option<u64>,
    pub visibility_missed: Option<u64>,
    /// From an export's answer to its point read on `/metrics`.
    pub visibility_p50_ms: Option<f64>,
    pub visibility_p99_ms: Option<f64>,
    pub visibility_max_ms: Option<f64>,
    /// Reads of `/metrics` beyond the first a probe needed (0: each
    /// point showed on the first read after its answer).
    pub visibility_extra_reads: Option<u64>,
}

/// Where a run is, given to the progress callback about once a second.
#[derive(Debug, Clone, Copy)]
pub struct Tick {
    pub elapsed_secs: f64,
    pub duration_secs: f64,
    pub requests: u64,
    pub accepted: u64,
    pub refused: u64,
    /// Items of requests without an answer.
    pub failed: u64,
}

impl Tick {
    /// Items accepted per second so far.
    pub fn rate(&self) -> f64 {
        self.accepted as f64 / self.elapsed_secs.max(1e-9)
    }

    /// `1500 requests, 1500000 items accepted, 0 refused` (and `, 3000
    /// without an answer` when some got none).
    pub fn detail(&self) -> String {
        let mut text = format!(
            "{} requests, {} items accepted, {} refused",
            self.requests, self.accepted, self.refused
        );
        if self.failed > 0 {
            text.push_str(&format!(", {} without an answer", self.failed));
        }
        text
    }
}

/// Runs the load; `progress` gets a [`Tick`] about once a second and at
/// the end.
pub async fn run(
    args: &LoadgenArgs,
    mut progress: impl FnMut(Tick),
) -> Result<Summary, LoadgenError> {
    args.validate()?;
    let endpoint = args.endpoint();
    if args.transport == Transport::Http {
        // gRPC connects before the first request; HTTP would only find
        // out request by request.
        check_reachable(&endpoint).await?;
    }
    let mut senders = Vec::new();
    for _ in 0..args.concurrency {
        senders.push(match args.transport {
            Transport::Grpc => Sender::grpc(&endpoint, args.compression).await?,
            Transport::Http => Sender::http(&endpoint, args.encoding, args.compression),
        });
    }
    let server_cpu_before = match &args.metrics_url {
        Some(url) => Some(server_cpu_seconds(url).await?),
        None => None,
    };
    let shape = payload::Shape {
        series: args.series,
        batch: args.batch,
        attributes: args.attributes,
        spans: args.spans,
    };
    let prost_decode = if args.baseline {
        let (signal, shape, compression) = (args.signal, shape, args.compression);
        tokio::task::spawn_blocking(move || {
            baseline::prost_decode_rate(signal, &shape, compression, Duration::from_secs(2))
        })
        .await
        .ok()
        .flatten()
    } else {
        None
    };
    let probes = match (args.probe_visibility, &args.metrics_url) {
        (true, Some(url)) => {
            let (transport, encoding, compression) =
                (args.transport, args.encoding, args.compression);
            let (endpoint, url) = (endpoint.clone(), url.clone());
            let deadline = Instant::now() + args.duration.get();
            Some(probe::spawn(deadline, async move {
                let sender = match transport {
                    Transport::Grpc => Sender::grpc(&endpoint, compression).await?,
                    Transport::Http => Sender::http(&endpoint, encoding, compression),
                };
                probe::run(sender, &url, Duration::from_millis(100), deadline).await
            })?)
        }
        _ => None,
    };
    // Metrics and spans sent as protobuf are encoded once per distinct
    // request and re-stamped (the bytes are the same), so the sender's CPU
    // goes to sending: a load generator that costs more per item than the
    // collector cannot load it on the same machine.
    let templates = (args.transport == Transport::Grpc || args.encoding == Encoding::Protobuf)
        .then(|| template::Templates::new(args.signal, shape))
        .flatten();
    let live = Arc::new(Live::default());
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let start_ns = unix_nanos();
    let deadline = start + args.duration.get();
    let mut workers = tokio::task::JoinSet::new();
    for sender in senders {
        let (live, next, signal, rate, batch, templates) = (
            live.clone(),
            next.clone(),
            args.signal,
            args.rate,
            args.batch,
            templates.clone(),
        );
        workers.spawn(async move {
            let mut tally = Tally::default();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if rate > 0 {
                    let due =
                        start + Duration::from_secs_f64(index as f64 * batch as f64 / rate as f64);
                    if due >= deadline {
                        break;
                    }
                    tokio::time::sleep_until(due.into()).await;
                }
                if Instant::now() >= deadline {
                    break;
                }
                let now_ns = unix_nanos();
                let encoded = templates
                    .as_ref()
                    .and_then(|t| t.encoded(index, start_ns, now_ns));
                let payload = match (signal, encoded) {
                    (_, Some(bytes)) => Payload::Encoded(signal, bytes),
                    (Signal::Metrics, None) => {
                        Payload::Metrics(payload::metrics(&shape, index, start_ns, now_ns))
                    }
                    (Signal::Traces, None) => {
                        Payload::Traces(payload::traces(&shape, index, now_ns))
                    }
                    (Signal::Logs, None) => Payload::Logs(payload::logs(&shape, index, now_ns)),
                };
                let sent = Instant::now();
                let answer = sender.send(payload).await;
                if !matches!(answer, Answer::Failed(_)) {
                    tally.latencies.record(sent.elapsed());
                }
                tally.requests += 1;
                live.requests.fetch_add(1, Ordering::Relaxed);
                match answer {
                    Answer::Accepted { rejected } => {
                        let rejected = rejected.min(batch);
                        tally.accepted += batch - rejected;
                        tally.rejected += rejected;
                        live.accepted.fetch_add(batch - rejected, Ordering::Relaxed);
                    }
                    Answer::Refused {
                        status,
                        retryable,
                        hinted,
                    } => {
                        tally.refused_items += batch;
                        let key = match (retryable, hinted) {
                            (true, true) => format!("{status} (retryable, with a retry hint)"),
                            (true, false) => format!("{status} (retryable, no retry hint)"),
                            (false, _) => status,
                        };
                        *tally.refusals.entry(key).or_default() += 1;
                        live.refused.fetch_add(batch, Ordering::Relaxed);
                    }
                    Answer::Failed(why) => {
                        tally.failed_requests += 1;
                        live.failed.fetch_add(batch, Ordering::Relaxed);
                        *tally
                            .refusals
                            .entry(format!("no answer: {why}"))
                            .or_default() += 1;
                        // A refused connection answers at once: do not spin.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            tally
        });
    }
    let mut total = Tally::default();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    loop {
        tokio::select! {
            joined = workers.join_next() => match joined {
                Some(Ok(t)) => {
                    total.latencies.merge(&t.latencies);
                    total.requests += t.requests;
                    total.accepted += t.accepted;
                    total.rejected += t.rejected;
                    total.refused_items += t.refused_items;
                    total.failed_requests += t.failed_requests;
                    for (k, v) in t.refusals {
                        *total.refusals.entry(k).or_default() += v;
                    }
                }
                Some(Err(e)) => return Err(LoadgenError::Invalid(format!("a worker failed: {e}"))),
                None => break,
            },
            _ = ticker.tick() => progress(tick(&live, start, args.duration.get())),
        }
    }
    progress(tick(&live, start, args.duration.get()));
    // A paced run's last request is due before the end and covers the
    // time up to it: the run lasted `--duration` at least.
    let seconds = start.elapsed().max(args.duration.get()).as_secs_f64();
    if total.requests > 0 && total.failed_requests == total.requests {
        let why = total.refusals.keys().next().cloned().unwrap_or_default();
        return Err(LoadgenError::Connect(format!(
            "{endpoint}: none of {} requests was answered ({why})",
            total.requests
        )));
    }
    let server_cpu = match (&args.metrics_url, server_cpu_before) {
        (Some(url), Some(before)) => Some(server_cpu_seconds(url).await? - before),
        _ => None,
    };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let probes = match probes {
        Some(thread) => Some(
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .ok()
                .and_then(Result::ok)
                .ok_or_else(|| LoadgenError::Invalid("the probe thread failed".into()))??,
        ),
        None => None,
    };
    let requests = total.requests;
    Ok(Summary {
        signal: args.signal,
        transport: args.transport,
        compression: args.compression,
        seconds,
        requests,
        items_sent: requests * args.batch,
        items_accepted: total.accepted,
        items_rejected: total.rejected,
        items_refused: total.refused_items,
        items_failed: total.failed_requests * args.batch,
        requests_failed: total.failed_requests,
        refusals: total.refusals,
        accepted_per_second: total.accepted as f64 / seconds,
        latency_p50_ms: ms(total.latencies.quantile(0.5)),
        latency_p90_ms: ms(total.latencies.quantile(0.9)),
        latency_p99_ms: ms(total.latencies.quantile(0.99)),
        latency_max_ms: ms(total.latencies.max()),
        server_cpu_seconds: server_cpu,
        accepted_per_server_cpu_second: server_cpu
            .filter(|c| *c > 0.0)
            .map(|c| total.accepted as f64 / c),
        prost_decode_per_cpu_second: prost_decode,
        visibility_probes: probes.as_ref().map(|p| p.latencies.count()),
        visibility_missed: probes.as_ref().map(|p| p.missed),
        visibility_p50_ms: probes.as_ref().map(|p| ms(p.latencies.quantile(0.5))),
        visibility_p99_ms: probes.as_ref().map(|p| ms(p.latencies.quantile(0.99))),
        visibility_max_ms: probes.as_ref().map(|p| ms(p.latencies.max())),
        visibility_extra_reads: probes.as_ref().map(|p| p.extra_reads),
    })
}

fn tick(live: &Live, start: Instant, duration: Duration) -> Tick {
    Tick {
        elapsed_secs: start.elapsed().as_secs_f64(),
        duration_secs: duration.as_secs_f64(),
        requests: live.requests.load(Ordering::Relaxed),
        accepted: live.accepted.load(Ordering::Relaxed),
        refused: live.refused.load(Ordering::Relaxed),
        failed: live.failed.load(Ordering::Relaxed),
    }
}

/// The summary as a few aligned lines.
pub fn report(s: &Summary) -> String {
    let signal = match s.signal {
        Signal::Metrics => "Metrics",
        Signal::Traces => "Spans",
        Signal::Logs => "Log records",
    };
    let transport = match s.transport {
        Transport::Grpc => "OTLP/gRPC",
        Transport::Http => "OTLP/HTTP",
    };
    let failed = if s.items_failed > 0 {
        format!(", {} without an answer", s.items_failed)
    } else {
        String::new()
    };
    let mut out = format!(
        "{signal} over {transport}: {} requests in {:.1} s\n  items: {} sent, {} accepted ({:.0}/s), {} rejected (partial success), {} refused{failed}\n  latency of answered requests: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms\n",
        s.requests,
        s.seconds,
        s.items_sent,
        s.items_accepted,
        s.accepted_per_second,
        s.items_rejected,
        s.items_refused,
        s.latency_p50_ms,
        s.latency_p90_ms,
        s.latency_p99_ms,
        s.latency_max_ms,
    );
    if let (Some(cpu), Some(per)) = (s.server_cpu_seconds, s.accepted_per_server_cpu_second) {
        out.push_str(&format!(
            "  server: {cpu:.2} CPU-s, {per:.0} accepted items per CPU-second\n"
        ));
    }
    if let Some(floor) = s.prost_decode_per_cpu_second {
        let what = match s.compression {
            Compression::None => "prost decode alone",
            Compression::Gzip => "gzip decompress + prost decode alone",
            Compression::Zstd => "zstd decompress + prost decode alone",
        };
        out.push_str(&format!("  {what}: {floor:.0} items per CPU-second"));
        if let Some(per) = s.accepted_per_server_cpu_second {
            out.push_str(&format!(" (server/decode ratio {:.2})", per / floor));
        }
        out.push('\n');
    }
    if let (Some(n), Some(missed), Some(p50), Some(p99), Some(max)) = (
        s.visibility_probes,
        s.visibility_missed,
        s.visibility_p50_ms,
        s.visibility_p99_ms,
        s.visibility_max_ms,
    ) {
        out.push_str(&format!(
            "  visible on /metrics after the answer: p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms ({n} probes, {missed} missed, {} extra reads)\n", s.visibility_extra_reads.unwrap_or(0)
        ));
    }
    for (status, n) in &s.refusals {
        out.push_str(&format!("  refused {status}: {n} requests\n"));
    }
    out
}

fn unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The body of `GET url` as text.
async fn fetch_text(url: &str) -> Result<String, LoadgenError> {
    use http_body_util::{BodyExt, Empty};
    let client: hyper_util::client::legacy::Client<_, Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let uri: http::Uri = url
        .parse()
        .map_err(|e| LoadgenError::Endpoint(format!("--metrics-url {url}: {e}")))?;
    let response = client
        .get(uri)
        .await
        .map_err(|e| LoadgenError::Connect(format!("--metrics-url {url}: {e}")))?;
    if !response.status().is_success() {
        return Err(LoadgenError::Connect(format!(
            "--metrics-url {url} answered {}",
            response.status()
        )));
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| LoadgenError::Connect(format!("--metrics-url {url}: {e}")))?
        .to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// `streamgate_process_cpu_seconds_total` from a `/metrics` page.
async fn server_cpu_seconds(url: &str) -> Result<f64, LoadgenError> {
    fetch_text(url)
        .await?
        .lines()
        .find_map(|l| l.strip_prefix("streamgate_process_cpu_seconds_total "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            LoadgenError::Invalid(format!(
                "--metrics-url {url} has no streamgate_process_cpu_seconds_total"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: LoadgenArgs,
    }

    fn args(line: &[&str]) -> LoadgenArgs {
        Cli::parse_from(std::iter::once("loadgen").chain(line.iter().copied())).args
    }

    #[test]
    fn only_loopback_without_allow_remote_and_bounded() {
        assert!(args(&[]).validate().is_ok());
        assert!(
            args(&["--endpoint", "http://[::1]:4317"])
                .validate()
                .is_ok()
        );
        let remote = args(&["--endpoint", "http://10.1.2.3:4317"]).validate();
        assert!(
            remote.unwrap_err().to_string().contains("--allow-remote"),
            "remote refused"
        );
        assert!(
            args(&["--endpoint", "http://10.1.2.3:4317", "--allow-remote"])
                .validate()
                .is_ok()
        );
        assert!(args(&["--duration", "2h"]).validate().is_err());
        assert!(args(&["--batch", "0"]).validate().is_err());
        let odd = args(&["--signal", "traces", "--spans", "pairs", "--batch", "999"]).validate();
        assert!(odd.unwrap_err().to_string().contains("even --batch"));
        assert!(
            args(&["--signal", "traces", "--spans", "pairs", "--batch", "1000"])
                .validate()
                .is_ok()
        );
        assert!(
            args(&["--endpoint", "https://127.0.0.1:4317"])
                .validate()
                .is_err()
        );
    }

    /// Each bad value is named alone, and settings that would quietly
    /// send something else than asked are refused.
    #[test]
    fn errors_name_the_option_at_fault() {
        let error = |line: &[&str]| args(line).validate().unwrap_err().to_string();
        assert_eq!(error(&["--series", "0"]), "--series must be above 0");
        assert_eq!(
            error(&["--concurrency", "1025"]),
            "--concurrency must be 1 to 1024"
        );
        let collapsed = error(&["--attributes", "0", "--series", "1000"]);
        assert!(collapsed.contains("only 10 series"), "{collapsed}");
        assert!(
            args(&["--attributes", "0", "--series", "10"])
                .validate()
                .is_ok()
        );
        assert!(
            args(&["--attributes", "0", "--signal", "traces"])
                .validate()
                .is_ok()
        );
        assert!(error(&["--encoding", "json"]).contains("--transport http"));
        assert!(
            args(&["--encoding", "json", "--transport", "http"])
                .validate()
                .is_ok()
        );
        assert!(error(&["--spans", "pairs"]).contains("--signal traces"));
    }

    #[test]
    fn series_shared_by_requests_in_flight_are_warned_of() {
        assert!(args(&[]).warnings().is_empty(), "10000 ≥ 1000 × 4");
        let shared = args(&["--series", "100", "--batch", "100", "--concurrency", "2"]).warnings();
        assert!(shared[0].contains("out of order"), "{shared:?}");
        let traces = args(&["--signal", "traces", "--series", "10"]).warnings();
        assert!(traces.is_empty(), "{traces:?}");
    }

    #[test]
    fn a_config_gives_the_receiver_of_the_transport() {
        let mut config = crate::config::Config::default();
        config.otlp.grpc.endpoint =
            crate::config::types::Endpoint("0.0.0.0:14317".parse().unwrap());
        config.otlp.http.endpoint = crate::config::types::Endpoint("[::1]:14318".parse().unwrap());
        let mut grpc = args(&[]);
        grpc.default_endpoint_from(&config);
        assert_eq!(grpc.endpoint(), "http://127.0.0.1:14317");
        let mut http = args(&["--transport", "http"]);
        http.default_endpoint_from(&config);
        assert_eq!(http.endpoint(), "http://[::1]:14318");
        let mut given = args(&["--endpoint", "http://127.0.0.1:1"]);
        given.default_endpoint_from(&config);
        assert_eq!(given.endpoint(), "http://127.0.0.1:1");
    }
}
