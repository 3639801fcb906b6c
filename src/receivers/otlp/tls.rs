//! TLS for StreamGate's servers (OTLP/gRPC, OTLP/HTTP and the admin
//! server), with rustls and the ring provider: the certificate and key
//! from `tls.cert_file` / `tls.key_file`, client certificates required
//! and verified when `tls.client_ca_file` is set, TLS 1.2 or 1.3 as the
//! lowest version. The files are read at start (an error then stops
//! StreamGate with the file and the reason) and again when they change on
//! disk, so a rotated certificate is served without a restart; a
//! rotation that cannot be loaded keeps the previous certificate and is
//! logged. Handshakes run on the connection's own task, bounded in time
//! and in number ([`MAX_HANDSHAKES`] at once), and failures are counted in
//! `streamgate_server_tls_handshake_failures_total`.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::config::types::{TlsConfig, TlsVersion};
use crate::telemetry::{Telemetry, TlsServer};

/// Why a server's TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{key}: cannot read {}: {source}", path.display())]
    Read {
        key: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{key}: {} holds no PEM certificate", path.display())]
    NoCertificate { key: String, path: PathBuf },
    #[error("{key}: {} holds no PEM private key ({reason})", path.display())]
    NoKey {
        key: String,
        path: PathBuf,
        reason: String,
    },
    #[error("{key}: {} is not usable: {reason}", path.display())]
    Invalid {
        key: String,
        path: PathBuf,
        reason: String,
    },
}

/// The protocols offered in ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    /// gRPC: HTTP/2 only.
    H2,
    /// HTTP/2 or HTTP/1.1, the client's choice.
    H2AndHttp1,
}

impl Alpn {
    fn protocols(self) -> Vec<Vec<u8>> {
        match self {
            Alpn::H2 => vec![b"h2".to_vec()],
            Alpn::H2AndHttp1 => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        }
    }
}

/// What the handshake asks of clients when `client_ca_file` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCertificates {
    /// No connection without a certificate the CA signed (the OTLP
    /// receivers, as the Collector's).
    Required,
    /// A certificate, when given, must be one the CA signed; without one
    /// the connection is made and its requests carry
    /// [`ClientCertificate`]`(false)` for the server to refuse all but
    /// its health checks (the admin server: Kubernetes probes and
    /// `streamgate healthcheck` hold no client certificate).
    CheckedAtHttp,
}

/// Whether a request's connection presented a client certificate the
/// CA signed; set on requests of [`ClientCertificates::CheckedAtHttp`]
/// servers only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCertificate(pub bool);

/// A server's TLS: the current rustls configuration, rebuilt when the
/// files change.
pub struct ServerTls {
    settings: TlsConfig,
    key: String,
    alpn: Alpn,
    client_certificates: ClientCertificates,
    server: TlsServer,
    telemetry: Arc<Telemetry>,
    handshake_timeout: Duration,
    current: parking_lot::Mutex<Loaded>,
    /// Handshakes under way at most (see [`MAX_HANDSHAKES`]).
    handshakes: tokio::sync::Semaphore,
}

/// TLS handshakes one server runs at once; a connection beyond is closed
/// at once (counted as a failed handshake), so a flood of connections
/// that never finish theirs holds bounded memory.
pub const MAX_HANDSHAKES: usize = 256;

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerTls({})", self.key)
    }
}

/// The configuration built from the files, and when they were last seen.
struct Loaded {
    config: Arc<ServerConfig>,
    stamps: Vec<Option<SystemTime>>,
    checked: Instant,
}

impl ServerTls {
    /// Loads `settings` (found at `key` in the config file) for `server`;
    /// a handshake must finish within `handshake_timeout`.
    pub fn new(
        settings: &TlsConfig,
        key: &str,
        alpn: Alpn,
        server: TlsServer,
        handshake_timeout: Duration,
        telemetry: Arc<Telemetry>,
    ) -> Result<Self, TlsError> {
        Self::with_client_certificates(
            settings,
            key,
            alpn,
            ClientCertificates::Required,
            server,
            handshake_timeout,
            telemetry,
        )
    }

    /// [`ServerTls::new`] asking `client_certificates` of clients when
    /// `client_ca_file` is set.
    pub fn with_client_certificates(
        settings: &TlsConfig,
        key: &str,
        alpn: Alpn,
        client_certificates: ClientCertificates,
        server: TlsServer,
        handshake_timeout: Duration,
        telemetry: Arc<Telemetry>,
    ) -> Result<Self, TlsError> {
        let config = build(settings, key, alpn, client_certificates)?;
        Ok(Self {
            settings: settings.clone(),
            key: key.to_string(),
            alpn,
            client_certificates,
            server,
            telemetry,
            handshake_timeout,
            current: parking_lot::Mutex::new(Loaded {
                config,
                stamps: stamps(settings),
                checked: Instant::now(),
            }),
            handshakes: tokio::sync::Semaphore::new(MAX_HANDSHAKES),
        })
    }

    /// The configuration to accept a connection with, reloaded first if
    /// the files changed since they were last checked.
    fn config(&self) -> Arc<ServerConfig> {
        let mut current = self.current.lock();
        let interval = self.settings.reload_interval.get();
        if !interval.is_zero() && current.checked.elapsed() >= interval {
            current.checked = Instant::now();
            let now = stamps(&self.settings);
            if now != current.stamps {
                current.stamps = now;
                match build(
                    &self.settings,
                    &self.key,
                    self.alpn,
                    self.client_certificates,
                ) {
                    Ok(config) => {
                        tracing::info!(key = %self.key, "TLS certificate files changed: reloaded");
                        current.config = config;
                    }
                    Err(e) => tracing::warn!(
                        error = %e,
                        "TLS certificate files changed but cannot be loaded; still serving the previous ones"
                    ),
                }
            }
        }
        current.config.clone()
    }

    /// Whether requests must be told apart by their connection's client
    /// certificate ([`ClientCertificates::CheckedAtHttp`] with a CA).
    pub fn checks_certificates_at_http(&self) -> bool {
        self.client_certificates == ClientCertificates::CheckedAtHttp
            && self.settings.client_ca_file.is_some()
    }

    /// Runs the handshake on `stream`; `None` (counted and logged at
    /// debug) when it fails or takes too long.
    pub async fn accept(&self, stream: TcpStream) -> Option<TlsConnection> {
        let peer = stream.peer_addr().ok();
        let Ok(_slot) = self.handshakes.try_acquire() else {
            self.telemetry.record_tls_handshake_failure(self.server);
            tracing::debug!(
                server = self.server.as_str(),
                ?peer,
                "too many TLS handshakes at once: connection closed"
            );
            return None;
        };
        let acceptor = TlsAcceptor::from(self.config());
        let failure =
            match tokio::time::timeout(self.handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => return Some(TlsConnection(stream)),
                Ok(Err(e)) => e.to_string(),
                Err(_) => "no handshake within the timeout".to_string(),
            };
        self.telemetry.record_tls_handshake_failure(self.server);
        tracing::debug!(server = self.server.as_str(), ?peer, error = %failure, "TLS handshake failed");
        None
    }
}

/// Loads `settings` (at `key` in the config file) without serving, to
/// check the files (`streamgate validate`).
pub fn check(settings: &TlsConfig, key: &str) -> Result<(), TlsError> {
    build(settings, key, Alpn::H2, ClientCertificates::Required).map(|_| ())
}

/// The modification times of the files, to notice a rotation.
fn stamps(settings: &TlsConfig) -> Vec<Option<SystemTime>> {
    [
        Some(&settings.cert_file),
        Some(&settings.key_file),
        settings.client_ca_file.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
    .collect()
}

fn read(key: &str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key: key.to_string(),
        path: path.to_path_buf(),
        source,
    })
}

/// The certificates of a PEM file (at least one).
fn certificates(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Invalid {
            key: key.to_string(),
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            key: key.to_string(),
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// Builds the rustls configuration from the files.
fn build(
    settings: &TlsConfig,
    key: &str,
    alpn: Alpn,
    client_certificates: ClientCertificates,
) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_key = format!("{key}.cert_file");
    let chain = certificates(&cert_key, &settings.cert_file)?;
    let key_key = format!("{key}.key_file");
    let private_key =
        PrivateKeyDer::from_pem_slice(&read(&key_key, &settings.key_file)?).map_err(|e| {
            TlsError::NoKey {
                key: key_key.clone(),
                path: settings.key_file.clone(),
                reason: e.to_string(),
            }
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match settings.min_version {
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let invalid = |key: &str, path: &Path, reason: String| TlsError::Invalid {
        key: key.to_string(),
        path: path.to_path_buf(),
        reason,
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| invalid(key, &settings.cert_file, e.to_string()))?;
    let builder = match &settings.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let ca_key = format!("{key}.client_ca_file");
            let mut roots = RootCertStore::empty();
            for cert in certificates(&ca_key, path)? {
                roots
                    .add(cert)
                    .map_err(|e| invalid(&ca_key, path, e.to_string()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match client_certificates {
                ClientCertificates::Required => verifier,
                ClientCertificates::CheckedAtHttp => verifier.allow_unauthenticated(),
            };
            let verifier = verifier
                .build()
                .map_err(|e| invalid(&ca_key, path, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, private_key)
        .map_err(|e| invalid(&key_key, &settings.key_file, e.to_string()))?;
    config.alpn_protocols = alpn.protocols();
    Ok(Arc::new(config))
}

/// An accepted TLS connection, as the servers read and write it.
pub struct TlsConnection(tokio_rustls::server::TlsStream<TcpStream>);

impl TlsConnection {
    fn tcp(&self) -> &TcpStream {
        self.0.get_ref().0
    }

    /// Whether the client presented a certificate (the handshake has
    /// verified any it did).
    pub fn client_certificate(&self) -> ClientCertificate {
        ClientCertificate(
            self.0
                .get_ref()
                .1
                .peer_certificates()
                .is_some_and(|c| !c.is_empty()),
        )
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for TlsConnection {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        tonic::transport::server::TcpConnectInfo {
            local_addr: self.tcp().local_addr().ok(),
            remote_addr: self.tcp().peer_addr().ok(),
        }
    }
}

#[cfg(test)]
mod tests;
