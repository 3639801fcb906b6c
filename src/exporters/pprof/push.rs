//! Pushing profiles to a Pyroscope-compatible server with its documented
//! ingest API: `POST <url>/ingest?name=<app>.cpu{labels}&from=&until=
//! &format=pprof&sampleRate=&spyName=streamgate` (heap profiles as
//! `<app>.inuse_space`, without `sampleRate`), the gzipped pprof as the
//! multipart field `profile`; `X-Scope-OrgID` for the tenant and basic
//! or bearer auth when configured. Profiles wait in a bounded queue (a
//! full queue drops its oldest, counted); each is tried `attempts` times
//! with backoff; outcomes are counted in
//! `streamgate_profiling_pushes_total` and failures logged at most once a
//! minute. At shutdown what is queued is tried once each, for at most
//! [`DRAIN_BUDGET`] in all.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Notify;

use super::config::PyroscopeConfig;
use crate::pipeline::Shutdown;
use crate::telemetry::{NotificationOutcome, Telemetry};

/// What a profile measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileKind {
    /// CPU time by stack, sampled at the configured frequency.
    Cpu,
    /// Memory in use by allocating stack.
    Heap,
}

impl ProfileKind {
    /// The suffix of the Pyroscope series name.
    fn suffix(self) -> &'static str {
        match self {
            ProfileKind::Cpu => "cpu",
            ProfileKind::Heap => "inuse_space",
        }
    }
}

/// One profile to push: its kind, window (Unix seconds) and gzipped pprof.
pub struct Upload {
    pub kind: ProfileKind,
    pub from: u64,
    pub until: u64,
    pub profile: Vec<u8>,
}

const BOUNDARY: &str = "streamgate-profile-boundary-7d2c";

/// Percent-encodes a query value (RFC 3986 unreserved kept).
fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `<app>.cpu{k=v,...}` as Pyroscope names a series.
pub fn series_name(cfg: &PyroscopeConfig, kind: ProfileKind) -> String {
    let labels: Vec<String> = cfg.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "{}.{}{{{}}}",
        cfg.application_name,
        kind.suffix(),
        labels.join(",")
    )
}

/// The request URI and multipart body for one upload.
pub fn request_parts(cfg: &PyroscopeConfig, sample_rate: u32, u: &Upload) -> (String, Vec<u8>) {
    let rate = match u.kind {
        ProfileKind::Cpu => format!("&sampleRate={sample_rate}"),
        ProfileKind::Heap => String::new(),
    };
    let uri = format!(
        "{}/ingest?name={}&from={}&until={}&format=pprof{rate}&spyName=streamgate",
        cfg.url.trim_end_matches('/'),
        encode(&series_name(cfg, u.kind)),
        u.from,
        u.until
    );
    let mut body = Vec::with_capacity(u.profile.len() + 256);
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"profile\"; filename=\"profile.pprof\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(&u.profile);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    (uri, body)
}

/// A warning written at most once a minute: profiling failures repeat
/// every window, and one line a minute says as much.
#[derive(Default)]
pub(super) struct OnceAMinute(Option<Instant>);

impl OnceAMinute {
    /// Whether a line may be written now (and counts it as written).
    pub(super) fn due(&mut self) -> bool {
        let now = Instant::now();
        let due = self
            .0
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60));
        if due {
            self.0 = Some(now);
        }
        due
    }
}

/// How long, at shutdown, the profiles still queued may take to send.
pub const DRAIN_BUDGET: Duration = Duration::from_secs(5);

/// Profiles waiting to be pushed: at most `capacity`, the oldest dropped
/// for a new one.
struct Queue {
    items: parking_lot::Mutex<VecDeque<Upload>>,
    capacity: usize,
    /// Wakes the worker for a new profile or the close.
    ready: Notify,
    closed: AtomicBool,
}

impl Queue {
    /// The next profile, waiting for one; `None` once closed and empty.
    async fn next(&self) -> Option<Upload> {
        loop {
            if let Some(upload) = self.items.lock().pop_front() {
                return Some(upload);
            }
            if self.closed.load(Ordering::Acquire) {
                return None;
            }
            // `notify_one` keeps a permit when nobody waits: no wake-up
            // between the checks above and here is lost.
            self.ready.notified().await;
        }
    }
}

/// The sending half.
#[derive(Clone)]
pub struct Pusher {
    queue: Arc<Queue>,
    telemetry: Arc<Telemetry>,
}

impl Pusher {
    /// The pusher and its worker, which runs until [`Pusher::close`] and
    /// the queue is empty; from `shutdown` on it no longer retries.
    pub fn spawn(
        cfg: PyroscopeConfig,
        sample_rate: u32,
        telemetry: Arc<Telemetry>,
        shutdown: Shutdown,
    ) -> (Pusher, tokio::task::JoinHandle<()>) {
        let queue = Arc::new(Queue {
            items: parking_lot::Mutex::new(VecDeque::new()),
            capacity: cfg.queue.max(1),
            ready: Notify::new(),
            closed: AtomicBool::new(false),
        });
        let worker = Worker {
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
            cfg,
            sample_rate,
            telemetry: telemetry.clone(),
            failure_log: OnceAMinute::default(),
        };
        (
            Pusher {
                queue: queue.clone(),
                telemetry,
            },
            tokio::spawn(worker.run(queue, shutdown)),
        )
    }

    /// Queues an upload without waiting; a full queue drops its oldest
    /// (counted).
    pub fn send(&self, upload: Upload) {
        let dropped = {
            let mut items = self.queue.items.lock();
            let dropped = (items.len() >= self.queue.capacity)
                .then(|| items.pop_front())
                .flatten();
            items.push_back(upload);
            dropped
        };
        if dropped.is_some() {
            self.telemetry
                .record_profile_push(NotificationOutcome::Dropped);
        }
        self.queue.ready.notify_one();
    }

    /// Counts a profile that could not be taken, so never pushed.
    pub fn record_failure(&self) {
        self.telemetry
            .record_profile_push(NotificationOutcome::Failed);
    }

    /// No more uploads: the worker ends once the queue is sent.
    pub fn close(&self) {
        self.queue.closed.store(true, Ordering::Release);
        self.queue.ready.notify_one();
    }
}

struct Worker {
    client: Client<HttpConnector, Full<Bytes>>,
    cfg: PyroscopeConfig,
    sample_rate: u32,
    telemetry: Arc<Telemetry>,
    failure_log: OnceAMinute,
}

impl Worker {
    async fn run(mut self, queue: Arc<Queue>, shutdown: Shutdown) {
        let mut drain_started: Option<Instant> = None;
        while let Some(upload) = queue.next().await {
            let stopping = shutdown.is_triggered();
            if stopping {
                let started = *drain_started.get_or_insert_with(Instant::now);
                if started.elapsed() >= DRAIN_BUDGET {
                    self.telemetry
                        .record_profile_push(NotificationOutcome::Dropped);
                    continue;
                }
            }
            let attempts = if stopping {
                1
            } else {
                self.cfg.attempts.max(1)
            };
            let mut backoff = Duration::from_secs(1);
            let mut outcome = Err(String::new());
            for attempt in 0..attempts {
                if attempt > 0 {
                    tokio::select! {
                        _ = shutdown.clone().wait() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                let timeout = if shutdown.is_triggered() {
                    self.cfg.timeout.get().min(DRAIN_BUDGET)
                } else {
                    self.cfg.timeout.get()
                };
                outcome = self.attempt(&upload, timeout).await;
                if outcome.is_ok() {
                    break;
                }
            }
            match outcome {
                Ok(()) => self
                    .telemetry
                    .record_profile_push(NotificationOutcome::Sent),
                Err(why) => {
                    self.telemetry
                        .record_profile_push(NotificationOutcome::Failed);
                    if self.failure_log.due() {
                        tracing::warn!(url = %self.cfg.url, "profile push failed: {why}");
                    }
                }
            }
        }
    }

    async fn attempt(&self, upload: &Upload, timeout: Duration) -> Result<(), String> {
        let (uri, body) = request_parts(&self.cfg, self.sample_rate, upload);
        let mut request = http::Request::post(&uri).header(
            http::header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        );
        if !self.cfg.tenant_id.is_empty() {
            request = request.header("X-Scope-OrgID", &self.cfg.tenant_id);
        }
        if !self.cfg.bearer_token.is_empty() {
            request = request.header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", self.cfg.bearer_token.expose()),
            );
        } else if !self.cfg.basic_auth_username.is_empty() {
            use base64::Engine as _;
            let token = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                self.cfg.basic_auth_username,
                self.cfg.basic_auth_password.expose()
            ));
            request = request.header(http::header::AUTHORIZATION, format!("Basic {token}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("bad Pyroscope URL {uri}: {e}"))?;
        let response = tokio::time::timeout(timeout, self.client.request(request))
            .await
            .map_err(|_| format!("no answer within {timeout:?}"))?
            .map_err(|e| format!("{}: {e}", self.cfg.url))?;
        let status = response.status();
        let _ = tokio::time::timeout(timeout, response.into_body().collect()).await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("{} answered {status}", self.cfg.url))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(from: u64) -> Upload {
        Upload {
            kind: ProfileKind::Cpu,
            from,
            until: from + 1,
            profile: Vec::new(),
        }
    }

    /// A full queue makes room by dropping its oldest profile; a closed
    /// queue still hands out what it holds, then ends.
    #[tokio::test]
    async fn a_full_queue_drops_its_oldest() {
        let queue = Arc::new(Queue {
            items: parking_lot::Mutex::new(VecDeque::new()),
            capacity: 2,
            ready: Notify::new(),
            closed: AtomicBool::new(false),
        });
        let pusher = Pusher {
            queue: queue.clone(),
            telemetry: Arc::new(Telemetry::new()),
        };
        for from in 1..=4 {
            pusher.send(upload(from));
        }
        pusher.close();
        let mut left = Vec::new();
        while let Some(u) = queue.next().await {
            left.push(u.from);
        }
        assert_eq!(left, [3, 4]);
    }
}
