//! The admin server (`server:`): `/metrics`, health, API and pprof, served
//! on a thread and runtime of its own, over TLS when `server.tls` is set,
//! behind a credentials guard when `server.auth` is. With
//! `server.tls.client_ca_file`, a connection without a client certificate
//! is made but answered only on `/healthz` and `/readyz`, so probes that
//! hold no certificate (Kubernetes, `streamgate healthcheck`) still work;
//! a certificate the CA did not sign fails the handshake.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;

use crate::api::config::{AuthScope, ServerConfig};
use crate::pipeline::Shutdown;
use crate::receivers::otlp::auth::{self, Authenticator};
use crate::receivers::otlp::http_server;
use crate::receivers::otlp::tls::{
    Alpn, ClientCertificate, ClientCertificates, ServerTls, TlsError,
};
use crate::telemetry::{Telemetry, TlsServer};

/// How long a client of the admin server may take to send its headers
/// (and to finish its TLS handshake).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The admin server's TLS, when `server.tls` is set (files read now).
pub fn tls(
    config: &ServerConfig,
    telemetry: Arc<Telemetry>,
) -> Result<Option<Arc<ServerTls>>, TlsError> {
    let Some(settings) = &config.tls else {
        return Ok(None);
    };
    let tls = ServerTls::with_client_certificates(
        settings,
        "server.tls",
        Alpn::H2AndHttp1,
        ClientCertificates::CheckedAtHttp,
        TlsServer::Admin,
        HEADER_TIMEOUT,
        telemetry,
    )?;
    Ok(Some(Arc::new(tls)))
}

/// `router` answering at most `max` requests at once; beyond, 503 with
/// `Retry-After: 1` at once (nothing queues). The health checks are
/// always answered: a liveness probe failing because scrapes are slow
/// would restart a working collector.
/// Each refusal is counted in `telemetry`.
pub fn limit(router: axum::Router, max: usize, telemetry: Arc<Telemetry>) -> axum::Router {
    let permits = Arc::new(tokio::sync::Semaphore::new(max));
    router.layer(axum::middleware::from_fn_with_state(
        (permits, telemetry),
        admit,
    ))
}

async fn admit(
    State((permits, telemetry)): State<(Arc<tokio::sync::Semaphore>, Arc<Telemetry>)>,
    request: Request,
    next: Next,
) -> Response {
    if is_health_check(request.uri().path()) {
        return next.run(request).await;
    }
    let Ok(permit) = permits.try_acquire_owned() else {
        telemetry.record_admin_overloaded();
        let body = serde_json::json!({
            "error": "too many requests to the admin server at once (server.max_concurrent_requests); retry later"
        });
        let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    // The permit lives as long as the body: a `/metrics` render streams
    // after the handler returned.
    next.run(request).await.map(|body| {
        axum::body::Body::new(Held {
            body,
            _permit: permit,
        })
    })
}

/// A response body holding a permit until it is done or dropped.
struct Held {
    body: axum::body::Body,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl http_body::Body for Held {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Most bytes of a refused request's body read (and dropped) before the
/// 401: admin requests are small JSON documents.
const MAX_REFUSED_BODY: usize = 1024 * 1024;

/// What the guard needs.
struct Guard {
    auth: Authenticator,
    scope: AuthScope,
    telemetry: Arc<Telemetry>,
}

/// `router` behind the credentials of `server.auth`, when any are set.
pub fn guard(
    router: axum::Router,
    config: &ServerConfig,
    telemetry: Arc<Telemetry>,
) -> axum::Router {
    let Some(auth) = Authenticator::from_config(&config.auth) else {
        return router;
    };
    let guard = Arc::new(Guard {
        auth,
        scope: config.require_auth_for,
        telemetry,
    });
    router.layer(axum::middleware::from_fn_with_state(guard, check))
}

/// Whether `path` is a health check, answered to anyone.
fn is_health_check(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

/// `router` refusing, with 403, every request but the health checks
/// from a connection that presented no client certificate (marked by
/// the TLS layer when `server.tls.client_ca_file` is set).
pub fn require_client_certificates(
    router: axum::Router,
    telemetry: Arc<Telemetry>,
) -> axum::Router {
    router.layer(axum::middleware::from_fn_with_state(
        telemetry,
        refuse_without_certificate,
    ))
}

async fn refuse_without_certificate(
    State(telemetry): State<Arc<Telemetry>>,
    request: Request,
    next: Next,
) -> Response {
    let without =
        request.extensions().get::<ClientCertificate>() == Some(&ClientCertificate(false));
    if !without || is_health_check(request.uri().path()) {
        return next.run(request).await;
    }
    telemetry.record_admin_unauthenticated();
    let body = serde_json::json!({
        "error": "this server requires a client certificate (server.tls.client_ca_file); without one only /healthz and /readyz answer"
    });
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

/// Whether a request needs credentials under `scope`.
fn needs_credentials(scope: AuthScope, method: &Method, path: &str) -> bool {
    match scope {
        AuthScope::All => !is_health_check(path),
        AuthScope::Writes => {
            !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
                || path.starts_with("/debug/pprof")
        }
    }
}

async fn check(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    if !needs_credentials(guard.scope, request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    match guard.auth.verify(given) {
        Ok(()) => next.run(request).await,
        Err(denied) => {
            guard.telemetry.record_admin_unauthenticated();
            // Read (and drop) a small body first: answering while the
            // client still sends makes some clients report a reset
            // instead of the 401 (HTTP/2 streams cut short).
            let drain = axum::body::to_bytes(request.into_body(), MAX_REFUSED_BODY);
            let _ = tokio::time::timeout(HEADER_TIMEOUT, drain).await;
            let body = serde_json::json!({ "error": denied.message() });
            let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(auth::CHALLENGE),
            );
            response
        }
    }
}

/// Serves the admin router (`/metrics`, health, API, pprof) on a thread
/// and runtime of its own, so scrapes and health checks are answered
/// while ingest keeps the main workers busy: they never queue behind OTLP
/// requests (rendering itself still runs on that runtime's blocking
/// threads). The thread ends when `stop` fires and the server drained.
pub fn serve(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<Arc<ServerTls>>,
    stop: Shutdown,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let listener = listener.into_std()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("streamgate-admin-blocking")
        .build()?;
    std::thread::Builder::new()
        .name("streamgate-admin".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(e) => {
                        tracing::error!(error = %e, "admin server failed");
                        return;
                    }
                };
                // Headers must arrive within 10 s (slow loris); the
                // admin routes read no request bodies worth bounding.
                http_server::serve(listener, router, HEADER_TIMEOUT, tls, stop, "admin").await;
            });
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_beyond_the_limit_get_503_at_once() {
        use tower::ServiceExt;
        let gate = Arc::new(tokio::sync::Notify::new());
        let open = gate.clone();
        let router = axum::Router::new()
            .route(
                "/slow",
                axum::routing::get(move || {
                    let gate = open.clone();
                    async move {
                        gate.notified().await;
                        "done"
                    }
                }),
            )
            .route("/healthz", axum::routing::get(|| async { "ok" }))
            .route("/readyz", axum::routing::get(|| async { "ready" }));
        let telemetry = Arc::new(Telemetry::new());
        let router = limit(router, 1, telemetry.clone());
        let get = || {
            Request::builder()
                .uri("/slow")
                .body(axum::body::Body::empty())
                .expect("request")
        };
        let first = tokio::spawn(router.clone().oneshot(get()));
        tokio::task::yield_now().await;
        let refused = router.clone().oneshot(get()).await.expect("answered");
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
        let overloaded = |t: &Telemetry| {
            t.snapshot()
                .into_iter()
                .find(|f| f.name == crate::telemetry::names::ADMIN_OVERLOADED)
                .map(|f| f.samples[0].value)
        };
        assert_eq!(overloaded(&telemetry), Some(1.0), "counted");
        // The health checks are answered all the same.
        for path in ["/healthz", "/readyz"] {
            let health = Request::builder()
                .uri(path)
                .body(axum::body::Body::empty())
                .expect("request");
            let answer = router.clone().oneshot(health).await.expect("answered");
            assert_eq!(answer.status(), StatusCode::OK, "{path}");
        }
        gate.notify_one();
        let served = first.await.expect("task").expect("answered");
        assert_eq!(served.status(), StatusCode::OK);
        // Its body done and dropped, the permit is back.
        drop(served);
        gate.notify_one();
        let again = router.oneshot(get()).await.expect("answered");
        assert_eq!(again.status(), StatusCode::OK);
    }

    #[test]
    fn writes_scope_guards_state_changes_and_profiling_only() {
        let w = AuthScope::Writes;
        assert!(!needs_credentials(w, &Method::GET, "/metrics"));
        assert!(!needs_credentials(w, &Method::GET, "/api/v1/alerts"));
        assert!(needs_credentials(w, &Method::POST, "/api/v1/alerts"));
        assert!(needs_credentials(
            w,
            &Method::POST,
            "/api/v1/alerts/a1/resolve"
        ));
        assert!(needs_credentials(w, &Method::DELETE, "/api/v1/reports"));
        assert!(needs_credentials(w, &Method::GET, "/debug/pprof/profile"));
        let all = AuthScope::All;
        assert!(needs_credentials(all, &Method::GET, "/metrics"));
        assert!(needs_credentials(all, &Method::GET, "/api/v1/status"));
        assert!(!needs_credentials(all, &Method::GET, "/healthz"));
        assert!(!needs_credentials(all, &Method::GET, "/readyz"));
    }
}
