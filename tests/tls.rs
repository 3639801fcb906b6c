//! Black-box tests of TLS (`tls:` on `receivers.otlp.grpc`,
//! `receivers.otlp.http` and `server`) and of the admin server's
//! credentials (`server.auth`), with real clients: the Rust OpenTelemetry
//! SDK over gRPC (tonic with rustls), the Python OpenTelemetry SDK over
//! gRPC and HTTP, curl, and a real Prometheus scraping `/metrics` over
//! HTTPS with a bearer token. Plaintext clients, clients without a
//! certificate and clients with a certificate from another CA are
//! refused at the handshake and counted; nothing they sent is stored.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pki::{self, Pki};
use common::prometheus::Prometheus;
use common::{Collector, Options, find_peer, http_client, peers_required};
use opentelemetry_otlp::{MetricExporter, RetryPolicy, WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use prost::Message;
use streamgate::model::otlp::MetricsRequest;
use streamgate::model::otlp::common::{AnyValue, KeyValue as OtlpKeyValue, any_value};
use streamgate::model::otlp::metrics::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric::Data, number_data_point,
};
use streamgate::model::otlp::resource::Resource as OtlpResource;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

const ADMIN_TOKEN: &str = "admin-t0ken-for-the-tls-test-0123";

/// A collector whose OTLP servers speak TLS (client certificates required
/// when `mutual`), the admin server plain.
fn tls_collector(pki: &Pki, mutual: bool, extra: &str) -> Collector {
    let tls = format!("{}{extra}", pki.server_yaml(mutual));
    Collector::start_with(Options {
        grpc_extra: tls.clone(),
        http_extra: tls,
        ..Default::default()
    })
}

fn pki_in(dir: &Path) -> Pki {
    pki::generate(dir)
}

fn provider(exporter: MetricExporter, service: &str) -> SdkMeterProvider {
    common::sdk::logins_provider(exporter, service, "tls-test")
}

/// The Rust SDK's gRPC exporter to `endpoint`, trusting the test CA and
/// presenting `identity` (certificate, key) when given.
fn grpc_exporter(endpoint: &str, pki: &Pki, identity: Option<(&Path, &Path)>) -> MetricExporter {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(&pki.ca)))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(read(cert), read(key)));
    }
    let builder = MetricExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint);
    let builder = if endpoint.starts_with("https://") {
        builder.with_tls_config(tls)
    } else {
        builder
    };
    builder
        .with_retry_policy(RetryPolicy::disabled())
        .with_timeout(Duration::from_secs(10))
        .build()
        .expect("gRPC exporter")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Exports `logins` as `service` through a new provider; the export's
/// outcome. The provider is kept alive by the caller (dropping one
/// exports again), so it is returned too.
fn export_grpc(
    runtime: &tokio::runtime::Runtime,
    endpoint: &str,
    pki: &Pki,
    identity: Option<(&Path, &Path)>,
    service: &str,
) -> (SdkMeterProvider, Result<(), String>) {
    let provider = {
        let _guard = runtime.enter();
        provider(grpc_exporter(endpoint, pki, identity), service)
    };
    let outcome = provider.force_flush().map_err(|e| e.to_string());
    (provider, outcome)
}

fn logins(c: &Collector, service: &str) -> Vec<f64> {
    c.scrape()
        .matching("logins_total", &[("job", service), ("result", "ok")])
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

fn handshake_failures(c: &Collector, server: &str) -> f64 {
    c.scrape()
        .get(
            "streamgate_server_tls_handshake_failures_total",
            &[("server", server)],
        )
        .unwrap_or(0.0)
}

/// A small OTLP/HTTP metrics request (one gauge `tls_probe` for `service`).
fn probe_request(service: &str) -> Vec<u8> {
    MetricsRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(OtlpResource {
                attributes: vec![OtlpKeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(service.into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "tls_probe".into(),
                    data: Some(Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            time_unix_nano: 1,
                            value: Some(number_data_point::Value::AsDouble(1.0)),
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// What curl made of a request.
#[derive(Debug)]
struct Curl {
    /// curl's exit code (0: a response came back).
    exit: i32,
    /// The HTTP status (0 when there was none).
    status: u16,
    /// The HTTP version spoken (`1.1`, `2`).
    version: String,
    /// What curl said went wrong (shown when an assertion fails).
    #[allow(dead_code)]
    stderr: String,
}

/// Runs curl with `args` and `url`, printing status and version.
fn curl(args: &[&str], url: &str) -> Curl {
    let output = Command::new("curl")
        .args(["-s", "-S", "-o", "/dev/null", "--max-time", "10"])
        .args(["-w", "%{http_code} %{http_version}"])
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("run curl");
    let out = String::from_utf8_lossy(&output.stdout).to_string();
    let mut parts = out.split_whitespace();
    Curl {
        exit: output.status.code().unwrap_or(-1),
        status: parts.next().and_then(|s| s.parse().ok()).unwrap_or(0),
        version: parts.next().unwrap_or_default().to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).to_string(),
    }
}

/// curl arguments posting the probe request for `service` (written to
/// `dir`) as OTLP/HTTP protobuf.
fn post_probe(dir: &Path, service: &str) -> Vec<String> {
    let body = dir.join(format!("{service}.binpb"));
    std::fs::write(&body, probe_request(service)).expect("write body");
    vec![
        "-H".into(),
        "Content-Type: application/x-protobuf".into(),
        "--data-binary".into(),
        format!("@{}", body.display()),
    ]
}

fn args(owned: &[String]) -> Vec<&str> {
    owned.iter().map(String::as_str).collect()
}

/// The test PKI's files as curl arguments: the CA, the trusted client's
/// certificate and key, the rogue client's certificate and key.
fn pem_paths(pki: &Pki) -> [String; 5] {
    [
        &pki.ca,
        &pki.client_cert,
        &pki.client_key,
        &pki.rogue_client_cert,
        &pki.rogue_client_key,
    ]
    .map(|p| p.display().to_string())
}

/// Runs `streamgate healthcheck` on a config (written to `dir`) whose
/// admin server at `endpoint` has the test PKI's TLS.
fn healthcheck(dir: &Path, pki: &Pki, mutual: bool, endpoint: &str) -> std::process::Output {
    let probe_config = dir.join("probe.yaml");
    let tls_block: String = pki
        .server_yaml(mutual)
        .lines()
        .map(|l| format!("  {l}\n"))
        .collect();
    std::fs::write(
        &probe_config,
        format!("server:\n  endpoint: {endpoint}\n{tls_block}"),
    )
    .expect("probe config");
    Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args(["healthcheck", "--config"])
        .arg(&probe_config)
        .output()
        .expect("run healthcheck")
}

/// Waits (up to 45 s) until `prometheus` has scraped the collector (`up`
/// is 1) and sees each query at or above its minimum; fails with `what`
/// and both logs otherwise.
fn await_scraped(prometheus: &Prometheus, c: &Collector, minimums: &[(&str, f64)], what: &str) {
    let at_least = |query: &str, min: f64| {
        prometheus
            .query(query)
            .first()
            .is_some_and(|r| common::prometheus::sample_value(r) >= min)
    };
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let scraped = at_least("up{job=\"streamgate\"}", 1.0);
        if scraped && minimums.iter().all(|&(q, min)| at_least(q, min)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: scraped={scraped}\n{}\n--- collector ---\n{}",
            prometheus.logs(),
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// TLS on both OTLP servers: the Rust SDK exports over gRPC with TLS,
/// curl posts over HTTPS with HTTP/2 chosen by ALPN; a plaintext gRPC
/// client and a plaintext HTTP client are refused at the handshake
/// (counted), and nothing they sent is stored.
#[test]
fn otlp_over_tls_is_accepted_and_plaintext_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki_in(dir.path());
    let c = tls_collector(&pki, false, "");
    let runtime = runtime();
    let https_grpc = format!("https://localhost:{}", c.grpc.port());

    let (_kept, outcome) = export_grpc(&runtime, &https_grpc, &pki, None, "tls-grpc");
    outcome.expect("gRPC export over TLS");
    c.scrape_until("the TLS export stored", |s| {
        s.get(
            "logins_total",
            &[
                ("job", "tls-grpc"),
                ("result", "ok"),
                ("otel_scope_name", "tls-test"),
            ],
        ) == Some(3.0)
    });

    // Plaintext gRPC to the TLS port: the export fails.
    let (_kept2, outcome) = export_grpc(&runtime, &c.grpc_url(), &pki, None, "plain-grpc");
    assert!(outcome.is_err(), "a plaintext gRPC export must fail");
    assert!(handshake_failures(&c, "otlp_grpc") >= 1.0);

    // HTTPS with curl: HTTP/2 by ALPN, 200.
    let https = format!("https://localhost:{}/v1/metrics", c.http.port());
    let ca = pki.ca.display().to_string();
    let post = post_probe(dir.path(), "tls-http");
    let mut with_ca = vec!["--cacert", ca.as_str()];
    with_ca.extend(args(&post));
    let ok = curl(&with_ca, &https);
    assert_eq!((ok.exit, ok.status), (0, 200), "{ok:?}");
    assert_eq!(ok.version, "2", "ALPN should pick HTTP/2: {ok:?}");
    let mut http1 = with_ca.clone();
    http1.push("--http1.1");
    let ok = curl(&http1, &https);
    assert_eq!((ok.status, ok.version.as_str()), (200, "1.1"), "{ok:?}");

    // Plaintext HTTP to the TLS port: no HTTP response at all.
    let post_plain = post_probe(dir.path(), "plain-http");
    let plain = curl(
        &args(&post_plain),
        &format!("http://127.0.0.1:{}/v1/metrics", c.http.port()),
    );
    assert_ne!(plain.exit, 0, "plaintext must not get an answer: {plain:?}");
    assert_eq!(plain.status, 0, "{plain:?}");
    // A client that does not trust the server's CA gives up itself.
    let untrusted = curl(&args(&post), &https);
    assert_eq!(
        untrusted.exit, 60,
        "curl: peer certificate not trusted: {untrusted:?}"
    );

    let s = c.scrape_until("handshake failures counted", |s| {
        s.get(
            "streamgate_server_tls_handshake_failures_total",
            &[("server", "otlp_http")],
        )
        .unwrap_or(0.0)
            >= 2.0
    });
    assert_eq!(s.matching("tls_probe", &[("job", "tls-http")]).len(), 1);
    assert!(s.matching("tls_probe", &[("job", "plain-http")]).is_empty());
    assert!(logins(&c, "plain-grpc").is_empty());
    // Both servers said they listen with TLS.
    let logs = c.logs();
    assert!(
        logs.lines()
            .filter(|l| l.contains("receiver listening") && l.contains("\"tls\":true"))
            .count()
            == 2,
        "{logs}"
    );
}

/// Client certificates required (`client_ca_file`) on both OTLP servers:
/// a certificate from the configured CA is accepted; none, or one from
/// another CA, is refused at the handshake (gRPC and HTTP). With
/// `min_version: "1.3"` a TLS 1.2 client is refused.
#[test]
fn mutual_tls_requires_a_certificate_from_the_configured_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki_in(dir.path());
    let c = tls_collector(&pki, true, "  min_version: \"1.3\"\n");
    let runtime = runtime();
    let https_grpc = format!("https://localhost:{}", c.grpc.port());
    let client = (pki.client_cert.as_path(), pki.client_key.as_path());
    let rogue = (
        pki.rogue_client_cert.as_path(),
        pki.rogue_client_key.as_path(),
    );

    let (_a, ok) = export_grpc(&runtime, &https_grpc, &pki, Some(client), "mtls-grpc");
    ok.expect("gRPC export with a trusted client certificate");
    let (_b, none) = export_grpc(&runtime, &https_grpc, &pki, None, "anon-grpc");
    assert!(none.is_err(), "no client certificate must fail");
    let (_c, bad) = export_grpc(&runtime, &https_grpc, &pki, Some(rogue), "rogue-grpc");
    assert!(bad.is_err(), "an untrusted client certificate must fail");

    let https = format!("https://localhost:{}/v1/metrics", c.http.port());
    let [ca, cert, key, rogue_cert, rogue_key] = pem_paths(&pki);
    let send = |service: &str, extra: &[&str]| {
        let post = post_probe(dir.path(), service);
        let mut a = vec!["--cacert", ca.as_str()];
        a.extend(extra);
        a.extend(args(&post));
        curl(&a, &https)
    };
    let ok = send("mtls-http", &["--cert", &cert, "--key", &key]);
    assert_eq!((ok.exit, ok.status), (0, 200), "{ok:?}");
    let anonymous = send("anon-http", &[]);
    assert_eq!(anonymous.status, 0, "{anonymous:?}");
    let rogue = send("rogue-http", &["--cert", &rogue_cert, "--key", &rogue_key]);
    assert_eq!(rogue.status, 0, "{rogue:?}");
    let old = send(
        "tls12-http",
        &[
            "--cert",
            &cert,
            "--key",
            &key,
            "--tlsv1.2",
            "--tls-max",
            "1.2",
        ],
    );
    assert_eq!(old.status, 0, "TLS 1.2 must be refused: {old:?}");

    let s = c.scrape_until("the trusted exports stored", |s| {
        s.get(
            "logins_total",
            &[
                ("job", "mtls-grpc"),
                ("result", "ok"),
                ("otel_scope_name", "tls-test"),
            ],
        ) == Some(3.0)
            && s.matching("tls_probe", &[("job", "mtls-http")]).len() == 1
    });
    for job in ["anon-grpc", "rogue-grpc"] {
        assert!(
            s.matching("logins_total", &[("job", job)]).is_empty(),
            "{job}"
        );
    }
    for job in ["anon-http", "rogue-http", "tls12-http"] {
        assert!(s.matching("tls_probe", &[("job", job)]).is_empty(), "{job}");
    }
    assert!(handshake_failures(&c, "otlp_grpc") >= 2.0);
    assert!(handshake_failures(&c, "otlp_http") >= 3.0);
}

/// The Python interpreter with the OTel SDK (`$STREAMGATE_PYTHON`), or
/// `None` when the test should skip.
fn python() -> Option<PathBuf> {
    match std::env::var_os("STREAMGATE_PYTHON").filter(|p| !p.is_empty()) {
        Some(path) => Some(PathBuf::from(path)),
        None if peers_required() => panic!("STREAMGATE_PYTHON is not set; scripts/test sets it"),
        None => {
            eprintln!("SKIPPED: STREAMGATE_PYTHON not set (run scripts/test)");
            None
        }
    }
}

/// The Python SDK exports over gRPC and HTTP with mutual TLS.
#[test]
fn the_python_sdk_exports_with_mutual_tls() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki_in(dir.path());
    let c = tls_collector(&pki, true, "");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/send_metrics.py");
    for (transport, port, instance) in [
        ("grpc", c.grpc.port(), "py-grpc"),
        ("http", c.http.port(), "py-http"),
    ] {
        let output = Command::new(&python)
            .arg(script)
            .arg(transport)
            .arg(format!("https://localhost:{port}"))
            .args(["--instance", instance, "--no-traces", "--no-logs"])
            .arg("--ca")
            .arg(&pki.ca)
            .arg("--client-cert")
            .arg(&pki.client_cert)
            .arg("--client-key")
            .arg(&pki.client_key)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            // requests lets these override the exporter's own CA file
            // (a session's `verify` loses to them), so a machine that
            // sets them would make the exporter ignore `--ca`.
            .env_remove("REQUESTS_CA_BUNDLE")
            .env_remove("CURL_CA_BUNDLE")
            .stdin(Stdio::null())
            .output()
            .expect("run send_metrics.py");
        assert!(
            output.status.success(),
            "{transport}: {}\n{}\n--- collector ---\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            c.logs()
        );
    }
    c.scrape_until("both Python exports stored", |s| {
        ["py-grpc", "py-http"].iter().all(|instance| {
            !s.matching("shop_orders_total", &[("instance", instance)])
                .is_empty()
        })
    });
}

/// The admin server over HTTPS with `require_auth_for: all`: a real
/// Prometheus scrapes it with the bearer token; curl without the token
/// gets 401 (counted) except on the health probes; a write needs it.
#[test]
fn prometheus_scrapes_the_admin_server_over_https_with_a_token() {
    let Some(binary) = find_peer("prometheus") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki_in(dir.path());
    let c = Collector::start_with(Options {
        server_extra: format!(
            "{}auth:\n  bearer_tokens: [\"{ADMIN_TOKEN}\"]\nrequire_auth_for: all\n",
            pki.server_yaml(false)
        ),
        admin_ca: Some(pki.ca.clone()),
        ..Default::default()
    });
    let base = format!("https://localhost:{}", c.admin.port());
    let ca = pki.ca.display().to_string();
    let bearer = format!("Authorization: Bearer {ADMIN_TOKEN}");

    let open = curl(&["--cacert", &ca], &format!("{base}/healthz"));
    assert_eq!(open.status, 200, "{open:?}");
    let denied = curl(&["--cacert", &ca], &format!("{base}/metrics"));
    assert_eq!(denied.status, 401, "{denied:?}");
    let wrong = curl(
        &[
            "--cacert",
            &ca,
            "-H",
            "Authorization: Bearer wrong-token-0123456789",
        ],
        &format!("{base}/api/v1/status"),
    );
    assert_eq!(wrong.status, 401, "{wrong:?}");
    let write = curl(
        &["--cacert", &ca, "-X", "POST", "-d", "{}"],
        &format!("{base}/api/v1/reports"),
    );
    assert_eq!(write.status, 401, "{write:?}");
    let allowed = curl(
        &["--cacert", &ca, "-H", &bearer],
        &format!("{base}/metrics"),
    );
    assert_eq!(allowed.status, 200, "{allowed:?}");
    let plain = curl(&[], &format!("http://127.0.0.1:{}/healthz", c.admin.port()));
    assert_eq!(
        plain.status, 0,
        "plaintext to the HTTPS admin server: {plain:?}"
    );

    // `streamgate healthcheck` reads the admin endpoint from the config:
    // https because of `server.tls`, loopback for a wildcard address.
    let probe = healthcheck(
        dir.path(),
        &pki,
        false,
        &format!("0.0.0.0:{}", c.admin.port()),
    );
    let said = String::from_utf8_lossy(&probe.stdout);
    assert!(
        probe.status.success() && said.starts_with("https://127.0.0.1:"),
        "{said}{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let probe = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args(["healthcheck", "--url", &format!("{base}/nonexistent")])
        .output()
        .expect("run healthcheck");
    assert_eq!(
        probe.status.code(),
        Some(1),
        "a 401 over https is not healthy"
    );

    let token_file = dir.path().join("token");
    std::fs::write(&token_file, ADMIN_TOKEN).expect("token file");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
         scrape_configs:\n\
         \x20 - job_name: streamgate\n    scheme: https\n    tls_config:\n      ca_file: {ca}\n      server_name: localhost\n    authorization:\n      credentials_file: {}\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
        token_file.display(),
        c.admin.port()
    );
    let prometheus = Prometheus::start(&binary, &config);
    // curl's three refusals above were counted, and Prometheus sees it.
    await_scraped(
        &prometheus,
        &c,
        &[("streamgate_server_unauthenticated_requests_total", 3.0)],
        "Prometheus did not scrape over HTTPS",
    );
    assert!(
        !c.logs().contains(ADMIN_TOKEN),
        "the token must not be logged"
    );
}

/// The admin server with client certificates (`server.tls.client_ca_file`):
/// a real Prometheus scrapes it presenting one; the health checks answer
/// a client without one (Kubernetes probes, `streamgate healthcheck`),
/// everything else refuses it with 403 (counted); a certificate from
/// another CA fails the handshake.
#[test]
fn the_admin_server_with_client_certificates_answers_probes_without_one() {
    let Some(binary) = find_peer("prometheus") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki_in(dir.path());
    let c = Collector::start_with(Options {
        server_extra: pki.server_yaml(true),
        admin_ca: Some(pki.ca.clone()),
        ..Default::default()
    });
    let base = format!("https://localhost:{}", c.admin.port());
    let [ca, cert, key, rogue_cert, rogue_key] = pem_paths(&pki);

    for path in ["/healthz", "/readyz"] {
        let probe = curl(&["--cacert", &ca], &format!("{base}{path}"));
        assert_eq!(probe.status, 200, "{path} without a certificate: {probe:?}");
    }
    for path in ["/metrics", "/api/v1/status", "/debug/pprof/heap"] {
        let refused = curl(&["--cacert", &ca], &format!("{base}{path}"));
        assert_eq!(
            refused.status, 403,
            "{path} without a certificate: {refused:?}"
        );
    }
    let with = curl(
        &["--cacert", &ca, "--cert", &cert, "--key", &key],
        &format!("{base}/metrics"),
    );
    assert_eq!(with.status, 200, "{with:?}");
    let rogue = curl(
        &["--cacert", &ca, "--cert", &rogue_cert, "--key", &rogue_key],
        &format!("{base}/healthz"),
    );
    assert_eq!(rogue.status, 0, "another CA's certificate: {rogue:?}");

    // `streamgate healthcheck`, from the same config, holds no client
    // certificate and is answered.
    let probe = healthcheck(
        dir.path(),
        &pki,
        true,
        &format!("127.0.0.1:{}", c.admin.port()),
    );
    assert!(
        probe.status.success(),
        "{}{}",
        String::from_utf8_lossy(&probe.stdout),
        String::from_utf8_lossy(&probe.stderr)
    );

    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
         scrape_configs:\n\
         \x20 - job_name: streamgate\n    scheme: https\n    tls_config:\n      ca_file: {ca}\n      cert_file: {cert}\n      key_file: {key}\n      server_name: localhost\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
        c.admin.port()
    );
    let prometheus = Prometheus::start(&binary, &config);
    // curl's three refusals above were counted, and the rogue handshake.
    await_scraped(
        &prometheus,
        &c,
        &[
            ("streamgate_server_unauthenticated_requests_total", 3.0),
            (
                "streamgate_server_tls_handshake_failures_total{server=\"admin\"}",
                1.0,
            ),
        ],
        "Prometheus did not scrape with its certificate",
    );
}

/// With the default `require_auth_for: writes`, reads stay open (a plain
/// Prometheus scrape works without credentials) and writes need them.
#[test]
fn by_default_admin_credentials_guard_writes_only() {
    let c = Collector::start_with(Options {
        server_extra: format!("auth:\n  bearer_tokens: [\"{ADMIN_TOKEN}\"]\n"),
        ..Default::default()
    });
    let client = http_client();
    let get = client.get(c.url("/metrics")).send().expect("GET /metrics");
    assert_eq!(get.status(), 200);
    let post = client
        .post(c.url("/api/v1/reports"))
        .send()
        .expect("POST /api/v1/reports");
    assert_eq!(post.status(), 401);
    assert!(
        post.headers()
            .get("www-authenticate")
            .is_some_and(|v| v.to_str().is_ok_and(|v| v.contains("Bearer"))),
        "{:?}",
        post.headers()
    );
    let body: serde_json::Value =
        serde_json::from_str(&post.text().expect("body")).expect("JSON error");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("requires credentials")),
        "{body}"
    );
    let pprof = client
        .get(c.url("/debug/pprof/profile?seconds=1"))
        .send()
        .expect("GET pprof");
    assert_eq!(pprof.status(), 401, "profiling needs credentials");
    let authorized = client
        .post(c.url("/api/v1/reports"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .expect("POST with the token");
    assert_ne!(authorized.status(), 401);
    let s = c.scrape();
    assert_eq!(
        s.get("streamgate_server_unauthenticated_requests_total", &[]),
        Some(2.0)
    );
}
