//! The container deployment (`deploy/`): the baked config is valid and
//! listens where the image says, every file the Dockerfile copies exists,
//! the image runs unprivileged with a health check, and the health check
//! command answers for a running collector and fails for a dead one;
//! SIGHUP checks the configuration file and keeps the collector running.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Collector, free_port};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn streamgate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args(args)
        .output()
        .expect("run streamgate")
}

#[test]
fn the_container_config_is_valid() {
    let config = format!("{ROOT}/deploy/docker/streamgate.yaml");
    let out = streamgate(&["--config", &config, "validate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&config).expect("config");
    for listen in ["0.0.0.0:4317", "0.0.0.0:4318", "0.0.0.0:9464"] {
        assert!(text.contains(listen), "{listen} in the container config");
    }
    assert!(text.contains("directory: /var/lib/streamgate"));
}

#[test]
fn the_dockerfile_copies_what_exists_and_runs_unprivileged() {
    let dockerfile =
        std::fs::read_to_string(format!("{ROOT}/deploy/Dockerfile")).expect("Dockerfile");
    let mut stages = 0;
    for line in dockerfile.lines().map(str::trim) {
        if line.starts_with("FROM ") {
            stages += 1;
        }
        let Some(rest) = line.strip_prefix("COPY ") else {
            continue;
        };
        if rest.starts_with("--from=") {
            continue;
        }
        let parts: Vec<&str> = rest.split_whitespace().collect();
        for source in &parts[..parts.len() - 1] {
            assert!(
                Path::new(ROOT).join(source).exists(),
                "the Dockerfile copies {source}, which does not exist"
            );
        }
    }
    assert_eq!(stages, 2, "a build stage and a runtime stage");
    assert!(
        dockerfile.contains("\nUSER streamgate"),
        "runs as a non-root user"
    );
    assert!(dockerfile.contains("HEALTHCHECK"), "has a health check");
    assert!(dockerfile.contains("EXPOSE 4317 4318 9464"));
    assert!(dockerfile.contains("/etc/streamgate/streamgate.yaml"));
}

#[test]
fn healthcheck_answers_for_a_live_collector_and_fails_for_a_dead_one() {
    let collector = Collector::start();
    let out = streamgate(&["healthcheck", "--url", &collector.url("/readyz")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dead = format!("http://127.0.0.1:{}/readyz", free_port());
    let out = streamgate(&["healthcheck", "--url", &dead, "--timeout", "2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unhealthy"));
    let out = streamgate(&["healthcheck", "--url", &collector.url("/nonexistent")]);
    assert_eq!(out.status.code(), Some(1), "a 404 is not healthy");
    // A URL that cannot be asked is a usage error, like a bad config.
    let out = streamgate(&["healthcheck", "--url", "ftp://127.0.0.1/readyz"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an http:// or https:// URL"));

    // Without --url, the config's admin endpoint is asked; a config that
    // cannot be read is exit code 2.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.yaml");
    std::fs::write(
        &config,
        format!(
            "server:\n  endpoint: 127.0.0.1:{}\n",
            collector.admin.port()
        ),
    )
    .unwrap();
    let out = streamgate(&["--config", config.to_str().unwrap(), "healthcheck"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&config, "server:\n  endpont: 127.0.0.1:1\n").unwrap();
    let out = streamgate(&["--config", config.to_str().unwrap(), "healthcheck"]);
    assert_eq!(out.status.code(), Some(2));
}

/// The compose stack: `docker-compose config` accepts it, every file it
/// mounts exists, Prometheus' config passes `promtool check config` with
/// the shipped rules where the stack mounts them, StreamGate's config is
/// valid, and Grafana's provisioning points where the dashboards are
/// mounted.
#[test]
fn the_compose_stack_and_its_configs_are_valid() {
    let dir = Path::new(ROOT).join("deploy/compose");
    let compose_text = std::fs::read_to_string(dir.join("docker-compose.yml")).expect("compose");
    let compose: serde_yaml_ng::Value = serde_yaml_ng::from_str(&compose_text).expect("YAML");
    let services = compose["services"].as_mapping().expect("services");
    for wanted in [
        "streamgate",
        "prometheus",
        "alertmanager",
        "grafana",
        "pyroscope",
        "demo-load",
    ] {
        assert!(services.contains_key(wanted), "service {wanted}");
    }
    for (name, service) in services {
        for volume in service["volumes"].as_sequence().into_iter().flatten() {
            let source = volume
                .as_str()
                .expect("short volume syntax")
                .split(':')
                .next()
                .unwrap_or("");
            if source.starts_with('.') {
                assert!(
                    dir.join(source).exists(),
                    "{name:?} mounts {source}, which does not exist"
                );
            }
        }
        for port in service["ports"].as_sequence().into_iter().flatten() {
            let port = port.as_str().expect("port string");
            assert!(
                port.starts_with("127.0.0.1:"),
                "{name:?} publishes {port} beyond loopback"
            );
        }
    }

    let out = streamgate(&[
        "--config",
        dir.join("streamgate.yaml").to_str().unwrap(),
        "validate",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let grafana = dir.join("grafana/provisioning");
    let datasources: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(grafana.join("datasources/prometheus.yml")).expect("datasources"),
    )
    .expect("YAML");
    assert_eq!(
        datasources["datasources"][0]["url"],
        "http://prometheus:9090"
    );
    assert_eq!(datasources["datasources"][0]["isDefault"], true);
    let dashboards: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(grafana.join("dashboards/streamgate.yml")).expect("dashboards"),
    )
    .expect("YAML");
    let path = dashboards["providers"][0]["options"]["path"]
        .as_str()
        .expect("path");
    assert!(
        compose_text.contains(&format!("../../dashboards:{path}")),
        "the dashboards are mounted where the provider reads them ({path})"
    );

    if let Some(promtool) = common::find_peer("promtool") {
        // As the stack mounts it: rules/ beside prometheus.yml.
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::copy(
            dir.join("prometheus.yml"),
            tmp.path().join("prometheus.yml"),
        )
        .expect("copy");
        std::os::unix::fs::symlink(Path::new(ROOT).join("rules"), tmp.path().join("rules"))
            .expect("link");
        let out = Command::new(promtool)
            .args(["check", "config"])
            .arg(tmp.path().join("prometheus.yml"))
            .output()
            .expect("promtool");
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if let Some(compose_tool) = common::find_peer("docker-compose") {
        let out = Command::new(compose_tool)
            .args(["-f"])
            .arg(dir.join("docker-compose.yml"))
            .args(["config", "-q"])
            .output()
            .expect("docker-compose");
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// SIGHUP (what Prometheus, Alertmanager and the Collector take as
/// "reload", and what config-map reloaders send) does not kill the
/// collector: it checks the file again and says whether a restart would
/// change anything; data already received stays, and SIGTERM still
/// drains and exits 0.
#[test]
fn sighup_checks_the_file_and_keeps_running() {
    let mut c = Collector::start();
    let config = c.dir.path().join("streamgate.yaml");
    let body = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"hup_probe","gauge":{"dataPoints":[{"asDouble":3}]}}]}]}]}"#;
    let sent = common::http_client()
        .post(c.otlp_http_url("/v1/metrics"))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .expect("send");
    assert_eq!(sent.status(), 200);

    let hangup = |c: &Collector, said: &str| {
        let before = c.logs().matches("SIGHUP received").count();
        let status = Command::new("kill")
            .args(["-HUP", &c.pid().to_string()])
            .status()
            .expect("kill -HUP");
        assert!(status.success());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let logs = c.logs();
            if logs.matches("SIGHUP received").count() > before {
                let line = logs
                    .lines()
                    .rfind(|l| l.contains("SIGHUP received"))
                    .unwrap_or_default()
                    .to_string();
                assert!(line.contains(said), "{line}");
                return line;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no SIGHUP line:\n{logs}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    hangup(&c, "unchanged");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace("shutdown_timeout: 10s", "shutdown_timeout: 12s"),
    )
    .expect("edit");
    let line = hangup(&c, "changed and is valid");
    assert!(line.contains("WARN"), "{line}");
    std::fs::write(&config, format!("{text}\nnot_a_section: 1\n")).expect("edit");
    let line = hangup(&c, "no longer valid");
    assert!(line.contains("not_a_section"), "{line}");

    // Still running, with what it had.
    assert_eq!(c.scrape().get("hup_probe", &[]), Some(3.0));
    assert!(c.terminate().success(), "{}", c.logs());
}
