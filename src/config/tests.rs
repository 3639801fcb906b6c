//! Tests of config parsing: defaults, substitution, errors with line numbers.

use super::*;

#[test]
fn embedded_default_equals_built_in_defaults() {
    let parsed = Config::embedded_default().expect("embedded default parses");
    assert_eq!(parsed, Config::default());
}

#[test]
fn empty_file_means_defaults() {
    let parsed = Config::from_yaml("", "empty.yaml").unwrap();
    assert_eq!(parsed, Config::default());
}

#[test]
fn unknown_key_names_line_and_suggests() {
    let text = "receivers:\n  otlp:\n    grpc:\n      endpont: 127.0.0.1:1\n";
    let err = Config::from_yaml(text, "bad.yaml").unwrap_err().to_string();
    assert!(err.starts_with("bad.yaml:4:"), "{err}");
    assert!(err.contains("did you mean `endpoint`"), "{err}");
}

#[test]
fn unknown_top_level_section_lists_valid_keys() {
    let err = Config::from_yaml("exporterz: {}\n", "bad.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.yaml:1:"), "{err}");
    assert!(err.contains("did you mean `exporters`"), "{err}");
}

#[test]
fn env_substitution_applies_before_parsing() {
    let text = "server:\n  endpoint: 127.0.0.1:${env:ADMIN_PORT}\n";
    let cfg = Config::from_yaml_with_env(text, "t.yaml", |n| {
        (n == "ADMIN_PORT").then(|| "19464".to_string())
    })
    .unwrap();
    assert_eq!(cfg.server.endpoint.addr().port(), 19464);
}

#[test]
fn bad_value_names_key_position() {
    let text = "exporters:\n  prometheus:\n    series_ttl: forever\n";
    let err = Config::from_yaml(text, "t.yaml").unwrap_err().to_string();
    assert!(err.contains("t.yaml:3:"), "{err}");
    assert!(err.contains("forever"), "{err}");
}

#[test]
fn a_refused_value_names_its_key_in_the_path() {
    for (text, want) in [
        (
            "state:\n  interval: 5x\n",
            "t.yaml:2:3: state.interval: unknown duration unit `x`",
        ),
        (
            "state:\n  directory: x\n\n  # the key's own line\n  interval: 5x\n",
            "t.yaml:5:3: state.interval: unknown duration unit `x`",
        ),
        (
            "state: {interval: 5x}\n",
            "t.yaml:1:8: state.interval: unknown duration unit",
        ),
        (
            "exporters:\n  prometheus:\n    series_ttl: forever\n",
            "t.yaml:3:5: exporters.prometheus.series_ttl: `forever` is not a duration",
        ),
        (
            "server:\n  \"endpoint\": 5\n",
            "t.yaml:2:3: server.endpoint: `5` is not a listen address",
        ),
        (
            "receivers:\n  otlp:\n    grpc:\n      enabled: true\n      endpont: 127.0.0.1:1\n",
            "t.yaml:5:7: receivers.otlp.grpc: unknown key `endpont`; did you mean `endpoint`?",
        ),
        // Already named by serde: left as it is.
        (
            "exporters:\n  prometheus:\n    series_ttl: [1]\n",
            "t.yaml:3:17: exporters.prometheus.series_ttl: invalid type: sequence",
        ),
    ] {
        let err = Config::from_yaml(text, "t.yaml").unwrap_err().to_string();
        assert!(err.starts_with(want), "{text:?}: {err}");
    }
}

/// A wildcard address and a specific one on the same port cannot both
/// be bound: refused as the start would fail; other addresses may share
/// a port.
#[test]
fn overlapping_listeners_are_rejected() {
    for endpoints in [
        ("0.0.0.0:4317", "127.0.0.1:4317"),
        ("127.0.0.1:4317", "0.0.0.0:4317"),
        ("[::]:4317", "127.0.0.1:4317"),
    ] {
        let text = format!(
            "server:\n  endpoint: \"{}\"\nreceivers:\n  otlp:\n    grpc:\n      endpoint: \"{}\"\n",
            endpoints.0, endpoints.1
        );
        let err = Config::from_yaml(&text, "t.yaml").unwrap_err().to_string();
        assert!(err.contains("overlap"), "{endpoints:?}: {err}");
    }
    let text = "server:\n  endpoint: 127.0.0.2:4317\nreceivers:\n  otlp:\n    grpc:\n      endpoint: 127.0.0.1:4317\n";
    assert!(Config::from_yaml(text, "t.yaml").is_ok());
}

#[test]
fn clashing_ports_are_rejected() {
    let text = "server:\n  endpoint: 127.0.0.1:4317\n";
    let err = Config::from_yaml(text, "t.yaml").unwrap_err().to_string();
    assert!(err.contains("both 127.0.0.1:4317"), "{err}");
}

#[test]
fn api_bounds_are_checked() {
    let cfg = Config::from_yaml(
        "api:\n  history:\n    points: 8\n  tail:\n    spans: 0\n",
        "t.yaml",
    )
    .unwrap();
    assert_eq!(cfg.api.history.points, 8);
    assert_eq!(cfg.api.history.max_series, 64);
    assert_eq!(cfg.api.tail.spans, 0);
    let err = Config::from_yaml("api:\n  history:\n    max_series: 0\n", "t.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("api.history.max_series is 0"), "{err}");
    let err = Config::from_yaml("api:\n  tail:\n    span: 5\n", "t.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("did you mean `spans`"), "{err}");
}

#[test]
fn a_server_block_without_endpoint_keeps_the_standard_port() {
    let text =
        "receivers:\n  otlp:\n    grpc:\n      enabled: false\n    http:\n      enabled: true\n";
    let cfg = Config::from_yaml(text, "t.yaml").unwrap();
    assert!(!cfg.otlp.grpc.enabled);
    assert_eq!(cfg.otlp.grpc.endpoint.addr().port(), 4317);
    assert_eq!(cfg.otlp.http.endpoint.addr().port(), 4318);
    let err = Config::from_yaml(
        "receivers:\n  otlp:\n    grpc:\n      endpont: x\n",
        "t.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("did you mean `endpoint`"), "{err}");
}

/// `/debug/pprof` behind both `server.auth` and its own token is refused
/// at load unless the token is one of the server's bearer tokens: one
/// `Authorization` header cannot carry two credentials.
#[test]
fn a_pprof_token_no_request_could_present_is_refused() {
    let server = "server:\n  auth:\n    bearer_tokens: [\"server-token-0123456789\"]\n";
    let pprof = |token: &str| format!("exporters:\n  pprof:\n    access_token: \"{token}\"\n");
    let err = Config::from_yaml(
        &format!("{server}{}", pprof("profiles-token-0123456789")),
        "t.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("exporters.pprof.access_token"), "{err}");
    assert!(err.contains("server.auth"), "{err}");
    for fine in [
        format!("{server}{}", pprof("server-token-0123456789")),
        pprof("profiles-token-0123456789"),
        server.to_string(),
    ] {
        Config::from_yaml(&fine, "t.yaml").unwrap_or_else(|e| panic!("{fine}: {e}"));
    }
}
