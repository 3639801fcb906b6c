//! Pushing profiles to a Pyroscope-compatible server with its documented
//! ingest API: `POST <url>/ingest?name=<app>.cpu{labels}&from=&until=
//! &format=pprof&sampleRate=&spyName=streamgate` (heap profiles as
//! `<app>.inuse_space`, without `sampleRate`), the gzipped pprof as the
//! multipart field `profile`; `X-Scope-OrgID` for the tenant and basic
//! or bearer auth when configured. Profiles wait in a bounded queue (a
//! full queue drops and counts); each is tried `attempts` times with
//! backoff; outcomes are counted in `streamgate_profiling_pushes_total`
//! and failures logged at most once a minute.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;

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

/// The sending half.
#[derive(Clone)]
pub struct Pusher {
    tx: mpsc::Sender<Upload>,
    telemetry: Arc<Telemetry>,
}

impl Pusher {
    pub fn spawn(
        cfg: PyroscopeConfig,
        sample_rate: u32,
        telemetry: Arc<Telemetry>,
        shutdown: Shutdown,
    ) -> (Pusher, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(cfg.queue.max(1));
        let worker = Worker {
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
            cfg,
            sample_rate,
            telemetry: telemetry.clone(),
            last_log: None,
        };
        (
            Pusher { tx, telemetry },
            tokio::spawn(worker.run(rx, shutdown)),
        )
    }

    /// Queues an upload without waiting; a full queue drops it (counted).
    pub fn send(&self, upload: Upload) {
        if self.tx.try_send(upload).is_err() {
            self.telemetry
                .record_profile_push(NotificationOutcome::Dropped);
        }
    }
}

struct Worker {
    client: Client<HttpConnector, Full<Bytes>>,
    cfg: PyroscopeConfig,
    sample_rate: u32,
    telemetry: Arc<Telemetry>,
    last_log: Option<std::time::Instant>,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Upload>, shutdown: Shutdown) {
        let stop = shutdown.clone().wait();
        tokio::pin!(stop);
        loop {
            let upload = tokio::select! {
                u = rx.recv() => match u { Some(u) => u, None => return },
                _ = &mut stop => return,
            };
            let mut backoff = Duration::from_secs(1);
            let mut outcome = Err(String::new());
            for attempt in 0..self.cfg.attempts.max(1) {
                if attempt > 0 {
                    if shutdown.is_triggered() {
                        break;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                outcome = self.attempt(&upload).await;
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
                    let now = std::time::Instant::now();
                    if self
                        .last_log
                        .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60))
                    {
                        self.last_log = Some(now);
                        tracing::warn!(url = %self.cfg.url, "profile push failed: {why}");
                    }
                }
            }
        }
    }

    async fn attempt(&self, upload: &Upload) -> Result<(), String> {
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
        let response = tokio::time::timeout(self.cfg.timeout.get(), self.client.request(request))
            .await
            .map_err(|_| format!("no answer within {:?}", self.cfg.timeout.get()))?
            .map_err(|e| format!("{}: {e}", self.cfg.url))?;
        let status = response.status();
        let _ = tokio::time::timeout(self.cfg.timeout.get(), response.into_body().collect()).await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("{} answered {status}", self.cfg.url))
        }
    }
}
