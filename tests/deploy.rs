//! The container deployment (`deploy/`): the baked config is valid and
//! listens where the image says, every file the Dockerfile copies exists,
//! the image runs unprivileged with a health check, and the health check
//! command answers for a running collector and fails for a dead one.

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
}
