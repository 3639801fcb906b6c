//! The OTLP receiver: OTLP/gRPC and OTLP/HTTP servers for traces, metrics
//! and logs.
//!
//! Each request is admitted (bounded concurrency, draining on shutdown),
//! read within the size limit (checked again after decompression), decoded
//! once, and handed to the pipeline's consumer for its signal; the sender
//! is answered only after the consumer returns. Refusals follow the OTLP
//! specification: 400 / `INVALID_ARGUMENT` for malformed data, 413 for
//! oversize, 415 for unknown media types, 429 / 503 with `Retry-After`
//! (gRPC `RESOURCE_EXHAUSTED` / `UNAVAILABLE` with `RetryInfo`) for
//! overload, `partial_success` when some items are rejected.

mod admission;
pub mod auth;
pub mod config;
mod encoding;
pub mod fuzzing;
mod grpc;
mod http;
pub mod http_server;
mod json;
mod json_special_doubles;
mod json_spellings;
pub mod memory;
mod process;
mod signal;
pub mod status;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::pipeline::{LogsConsumer, MetricsConsumer, Shutdown, TracesConsumer};
use crate::telemetry::{Telemetry, TlsServer};

pub use admission::Admission;
pub use config::OtlpReceiverConfig;
pub use encoding::{Compression, Payload, decompress};
pub use memory::{MemoryLimiter, MemoryLimits};

/// Where each signal goes after decoding.
#[derive(Clone)]
pub struct Consumers {
    pub traces: Arc<dyn TracesConsumer>,
    pub metrics: Arc<dyn MetricsConsumer>,
    pub logs: Arc<dyn LogsConsumer>,
}

/// What request handlers share.
pub struct ReceiverContext {
    pub(crate) consumers: Consumers,
    pub(crate) telemetry: Arc<Telemetry>,
    pub(crate) admission: Admission,
    pub(crate) max_request_size: usize,
    pub(crate) retry_after: Duration,
    /// Most time to receive a request body.
    pub(crate) read_timeout: Duration,
    /// The credentials requests must carry (`None`: no authentication).
    pub(crate) auth: Option<auth::Authenticator>,
}

/// Why the receiver could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    #[error("cannot listen for OTLP/{transport} on {endpoint}: {source}")]
    Bind {
        transport: &'static str,
        endpoint: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// A built, not yet started receiver.
pub struct OtlpReceiver {
    config: OtlpReceiverConfig,
    ctx: Arc<ReceiverContext>,
}

/// A running receiver: its bound addresses and server tasks.
pub struct RunningReceiver {
    pub grpc_addr: Option<SocketAddr>,
    pub http_addr: Option<SocketAddr>,
    pub tasks: Vec<JoinHandle<()>>,
}

/// Builds the receiver from its (validated) config.
pub fn build(
    config: OtlpReceiverConfig,
    consumers: Consumers,
    telemetry: Arc<Telemetry>,
) -> OtlpReceiver {
    let limits = MemoryLimits::resolve(&config.memory_limiter);
    if limits.enabled() {
        tracing::info!(
            limit_bytes = limits.limit,
            soft_limit_bytes = limits.soft,
            hard_limit_bytes = limits.hard,
            source = limits.source.as_str(),
            "memory limiter on"
        );
    } else {
        tracing::warn!(
            "memory limiter off: no memory limit could be read; set receivers.otlp.memory_limiter.limit"
        );
    }
    let memory = MemoryLimiter::new(limits, config.retry_after.get());
    if limits.enabled() {
        telemetry.set_memory_limits(limits.soft, limits.hard);
    }
    let admission = Admission::new(
        config.max_concurrent_requests,
        config.retry_after.get(),
        memory,
    );
    let ctx = Arc::new(ReceiverContext {
        consumers,
        telemetry,
        admission,
        max_request_size: config.max_request_size.bytes() as usize,
        retry_after: config.retry_after.get(),
        read_timeout: config.read_timeout.get(),
        auth: auth::Authenticator::from_config(&config.auth),
    });
    OtlpReceiver { config, ctx }
}

impl OtlpReceiver {
    /// The admission control, so shutdown can start draining.
    pub fn admission(&self) -> Admission {
        self.ctx.admission.clone()
    }

    /// Binds the enabled servers and serves until `shutdown`, then stops
    /// accepting and finishes in-flight requests.
    pub async fn start(&self, shutdown: Shutdown) -> Result<RunningReceiver, ReceiverError> {
        let mut running = RunningReceiver {
            grpc_addr: None,
            http_addr: None,
            tasks: Vec::new(),
        };
        let memory = self.ctx.admission.memory().clone();
        if memory
            .start(
                self.config.memory_limiter.check_interval.get(),
                Some(self.ctx.telemetry.clone()),
            )
            .is_some()
        {
            // The sampler thread exits once the receiver is gone; stop it
            // at shutdown too.
            let stop = shutdown.clone();
            running.tasks.push(tokio::spawn(async move {
                stop.wait().await;
                memory.stop();
            }));
        }
        // TLS files are read before anything listens: a bad file stops
        // the start with its path and the reason.
        let grpc_tls = self.tls(
            &self.config.grpc,
            "grpc",
            tls::Alpn::H2,
            TlsServer::OtlpGrpc,
        )?;
        let http_tls = self.tls(
            &self.config.http,
            "http",
            tls::Alpn::H2AndHttp1,
            TlsServer::OtlpHttp,
        )?;
        if self.config.grpc.enabled {
            let endpoint = self.config.grpc.endpoint.addr();
            let listener = bind(endpoint, "gRPC").await?;
            let addr = listener.local_addr().unwrap_or(endpoint);
            tracing::info!(%addr, tls = grpc_tls.is_some(), "OTLP/gRPC receiver listening");
            running.grpc_addr = Some(addr);
            running.tasks.push(tokio::spawn(serve_grpc(
                listener,
                grpc_tls,
                self.ctx.clone(),
                shutdown.clone(),
            )));
        }
        if self.config.http.enabled {
            let endpoint = self.config.http.endpoint.addr();
            let listener = bind(endpoint, "HTTP").await?;
            let addr = listener.local_addr().unwrap_or(endpoint);
            tracing::info!(%addr, tls = http_tls.is_some(), "OTLP/HTTP receiver listening");
            running.http_addr = Some(addr);
            let router = http::router(self.ctx.clone());
            running.tasks.push(tokio::spawn(http_server::serve(
                listener,
                router,
                self.config.read_timeout.get(),
                http_tls,
                shutdown.clone(),
                "OTLP/HTTP",
            )));
        }
        Ok(running)
    }

    /// The TLS of one server, when it is enabled and configured.
    fn tls(
        &self,
        server: &config::ServerConfig,
        key: &str,
        alpn: tls::Alpn,
        which: TlsServer,
    ) -> Result<Option<Arc<tls::ServerTls>>, tls::TlsError> {
        let Some(settings) = server.tls.as_ref().filter(|_| server.enabled) else {
            return Ok(None);
        };
        let tls = tls::ServerTls::new(
            settings,
            &format!("receivers.otlp.{key}.tls"),
            alpn,
            which,
            self.config.read_timeout.get(),
            self.ctx.telemetry.clone(),
        )?;
        Ok(Some(Arc::new(tls)))
    }
}

async fn bind(endpoint: SocketAddr, transport: &'static str) -> Result<TcpListener, ReceiverError> {
    TcpListener::bind(endpoint)
        .await
        .map_err(|source| ReceiverError::Bind {
            transport,
            endpoint,
            source,
        })
}

/// HTTP/2 flow-control window per stream and per connection, and the
/// largest frame a client may send, on the OTLP/gRPC server.
const GRPC_STREAM_WINDOW: u32 = 4 << 20;
const GRPC_CONNECTION_WINDOW: u32 = 16 << 20;
const GRPC_MAX_FRAME: u32 = 1 << 20;

/// The three OTLP services; a call to any other service is answered
/// `UNIMPLEMENTED` and counted, as a wrong method of ours is.
fn grpc_routes(ctx: Arc<ReceiverContext>) -> tonic::service::Routes {
    use signal::{Logs, Metrics, Traces};
    let counted = ctx.clone();
    let router = tonic::service::Routes::new(grpc::SignalService::<Traces>::new(ctx.clone()))
        .add_service(grpc::SignalService::<Metrics>::new(ctx.clone()))
        .add_service(grpc::SignalService::<Logs>::new(ctx))
        .into_axum_router()
        .fallback(move |request: axum::extract::Request| {
            let ctx = counted.clone();
            async move {
                ctx.telemetry
                    .record_unknown_path(crate::telemetry::Transport::Grpc);
                let status = tonic::Status::unimplemented(format!(
                    "unknown service {}",
                    request.uri().path()
                ));
                let (parts, ()) = status.into_http::<()>().into_parts();
                axum::response::Response::from_parts(parts, axum::body::Body::empty())
            }
        });
    tonic::service::Routes::from(router)
}

async fn serve_grpc(
    listener: TcpListener,
    tls: Option<Arc<tls::ServerTls>>,
    ctx: Arc<ReceiverContext>,
    shutdown: Shutdown,
) {
    // OTLP requests are large (a batch is hundreds of KB): wide HTTP/2
    // windows and frames let a request arrive without a window update
    // per 64 KiB, and with fewer frames to parse.
    let router = tonic::transport::Server::builder()
        // A request (its body, as the handler waits for it) that takes
        // longer is cancelled: a stalled sender holds no slot for long.
        .timeout(ctx.read_timeout)
        .initial_stream_window_size(GRPC_STREAM_WINDOW)
        .initial_connection_window_size(GRPC_CONNECTION_WINDOW)
        .max_frame_size(GRPC_MAX_FRAME)
        .http2_max_header_list_size(http_server::MAX_HEADER_LIST_BYTES)
        .add_routes(grpc_routes(ctx));
    let result = match tls {
        None => {
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            router
                .serve_with_incoming_shutdown(incoming, shutdown.wait())
                .await
        }
        Some(tls) => {
            let incoming = tls_incoming(listener, tls, shutdown.clone());
            router
                .serve_with_incoming_shutdown(incoming, shutdown.wait())
                .await
        }
    };
    if let Err(e) = result {
        tracing::error!(error = %e, "OTLP/gRPC server failed");
    }
}

/// The connections of `listener` once their TLS handshake is done. Each
/// handshake runs on its own task, so a slow client delays no other;
/// connections that fail theirs never reach the server.
fn tls_incoming(
    listener: TcpListener,
    tls: Arc<tls::ServerTls>,
    shutdown: Shutdown,
) -> tokio_stream::wrappers::ReceiverStream<std::io::Result<tls::TlsConnection>> {
    let (ready, incoming) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        let stop = shutdown.wait();
        tokio::pin!(stop);
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "OTLP/gRPC: cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = &mut stop => break,
            };
            let _ = stream.set_nodelay(true);
            let tls = tls.clone();
            let ready = ready.clone();
            tokio::spawn(async move {
                if let Some(connection) = tls.accept(stream).await {
                    let _ = ready.send(Ok(connection)).await;
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(incoming)
}

#[cfg(test)]
mod tests;
