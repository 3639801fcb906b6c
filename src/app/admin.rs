//! The admin server (`server:`): `/metrics`, health, API and pprof, served
//! on a thread and runtime of its own, over TLS when `server.tls` is set,
//! behind a credentials guard when `server.auth` is.

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
use crate::receivers::otlp::tls::{Alpn, ServerTls, TlsError};
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
    let tls = ServerTls::new(
        settings,
        "server.tls",
        Alpn::H2AndHttp1,
        TlsServer::Admin,
        HEADER_TIMEOUT,
        telemetry,
    )?;
    Ok(Some(Arc::new(tls)))
}

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

/// Whether a request needs credentials under `scope`.
fn needs_credentials(scope: AuthScope, method: &Method, path: &str) -> bool {
    match scope {
        AuthScope::All => !matches!(path, "/healthz" | "/readyz"),
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
