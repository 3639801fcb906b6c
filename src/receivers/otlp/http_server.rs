//! Serving an axum router over HTTP/1.1 and h2c with a bound on how long
//! a client may take to send its request headers, so a connection that
//! trickles them (slow loris) is closed instead of held open forever.
//! Bodies are bounded by the handlers (`receivers.otlp.read_timeout` on
//! the OTLP routes). With TLS, each connection's handshake runs on its own
//! task (a slow one holds up no other). On shutdown the listener closes
//! and open connections finish their requests.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt;

use super::tls::ServerTls;
use crate::pipeline::Shutdown;

/// Most header fields in an HTTP/1.1 request (beyond: 431). Their bytes
/// are bounded by hyper's read buffer (about 400 KiB).
pub const MAX_HEADERS: usize = 100;
/// Most bytes of an HTTP/2 request's header list (beyond: the stream is
/// refused), on both servers and on OTLP/gRPC.
pub const MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;

/// Serves `router` on `listener` (over `tls` when given) until `shutdown`,
/// then waits for the open connections' requests to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_timeout: Duration,
    tls: Option<Arc<ServerTls>>,
    shutdown: Shutdown,
    name: &'static str,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_headers(MAX_HEADERS);
    builder.http2().max_header_list_size(MAX_HEADER_LIST_BYTES);
    let graceful = GracefulShutdown::new();
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off, as
                    // hammering accept would not help.
                    tracing::warn!(server = name, error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let served = match tls {
                None => {
                    let service =
                        hyper::service::service_fn(move |request| router.clone().oneshot(request));
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    watcher.watch(connection).await
                }
                Some(tls) => {
                    let Some(stream) = tls.accept(stream).await else {
                        return;
                    };
                    let certificate = tls
                        .checks_certificates_at_http()
                        .then(|| stream.client_certificate());
                    let service = hyper::service::service_fn(
                        move |mut request: hyper::Request<hyper::body::Incoming>| {
                            if let Some(certificate) = certificate {
                                request.extensions_mut().insert(certificate);
                            }
                            router.clone().oneshot(request)
                        },
                    );
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    watcher.watch(connection).await
                }
            };
            if let Err(e) = served {
                tracing::debug!(server = name, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
