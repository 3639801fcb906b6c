//! The Kubernetes manifests (`deploy/kubernetes/`), checked offline: the
//! base and the sharded overlay build with `kubectl kustomize`; every
//! resource of a built-in kind passes `kubernetes-validate` in strict mode
//! (no unknown fields) against the Kubernetes versions we support; the
//! Prometheus Operator resources have the structure their CRDs expect and
//! the PrometheusRule holds exactly `rules/` (and passes `promtool check
//! rules`); the dashboards ConfigMap holds exactly `dashboards/`; the
//! resources refer to each other correctly (selectors, ports, probes,
//! volumes, config paths); the StreamGate config in each ConfigMap passes
//! `streamgate validate`; the load-balancing gateway routes each signal by
//! the key that keeps a series on one replica; and the generated files are
//! what `scripts/gen-kubernetes` writes now.
//!
//! `kubectl` must be on PATH (it brings kustomize). kubernetes-validate
//! runs in the venv `scripts/test` makes (`$STREAMGATE_PYTHON`, else
//! `.venv/bin/python`).

mod common;

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;
use serde_yaml_ng::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BASE: &str = "deploy/kubernetes/base";
const SHARDED: &str = "deploy/kubernetes/overlays/sharded";
/// The oldest Kubernetes the manifests claim to support (deploy/README.md)
/// and the newest whose schemas kubernetes-validate bundles.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.29.0", "1.37.0"];
/// Kinds defined by CRDs (Prometheus Operator), which have no schema in
/// kubernetes-validate and are checked here instead.
const CRD_KINDS: [&str; 2] = ["ServiceMonitor", "PrometheusRule"];
/// Where the StatefulSet mounts the config, and what its args name.
const CONFIG_PATH: &str = "/etc/streamgate/streamgate.yaml";
/// The largest `kubectl apply` (client side) can store in its
/// last-applied-configuration annotation.
const ANNOTATION_LIMIT: usize = 262_144;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `kubectl kustomize DIR`, parsed into its resources.
fn build(dir: &Path) -> Vec<Value> {
    let kubectl = std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("kubectl"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "kubectl is not on PATH: the Kubernetes checks build the manifests with \
                 `kubectl kustomize`. kubectl is not a Debian package; install it from the \
                 Kubernetes or Google Cloud SDK apt repository (the project's machines have it)"
            )
        });
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("run kubectl kustomize");
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        text(&out)
    );
    let yaml = String::from_utf8(out.stdout).expect("UTF-8");
    serde_yaml_ng::Deserializer::from_str(&yaml)
        .map(|doc| Value::deserialize(doc).expect("kustomize output is YAML"))
        .filter(|doc| !doc.is_null())
        .collect()
}

fn built(dir: &str) -> Vec<Value> {
    build(&Path::new(ROOT).join(dir))
}

fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().expect("kind")
}

fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().expect("metadata.name")
}

fn of_kind<'a>(docs: &'a [Value], wanted: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| kind(d) == wanted).collect()
}

fn find<'a>(docs: &'a [Value], wanted: &str, wanted_name: &str) -> &'a Value {
    docs.iter()
        .find(|d| kind(d) == wanted && name(d) == wanted_name)
        .unwrap_or_else(|| panic!("no {wanted} {wanted_name} in the build"))
}

fn seq(value: &Value) -> &[Value] {
    value.as_sequence().map(Vec::as_slice).unwrap_or(&[])
}

fn str_of<'a>(value: &'a Value, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value:?}"))
}

/// Whether every label a selector asks for is on `labels` (and it asks
/// for at least one).
fn selects(selector: &Value, labels: &Value) -> bool {
    let Some(wanted) = selector.as_mapping() else {
        return false;
    };
    !wanted.is_empty() && wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The container port a Service target port or probe port names (by name
/// or number), if the container has it.
fn container_port(container: &Value, port: &Value) -> Option<u64> {
    seq(&container["ports"]).iter().find_map(|p| {
        let number = p["containerPort"].as_u64()?;
        let hit = match port {
            Value::String(n) => p["name"].as_str() == Some(n.as_str()),
            Value::Number(n) => n.as_u64() == Some(number),
            _ => false,
        };
        hit.then_some(number)
    })
}

/// The pod template's labels and containers of each workload.
fn workloads(docs: &[Value]) -> Vec<&Value> {
    docs.iter()
        .filter(|d| matches!(kind(d), "StatefulSet" | "Deployment"))
        .collect()
}

/// The one workload whose pods `selector` selects.
fn selected_workload<'a>(docs: &'a [Value], selector: &Value, by: &str) -> &'a Value {
    let hits: Vec<&Value> = workloads(docs)
        .into_iter()
        .filter(|w| selects(selector, &w["spec"]["template"]["metadata"]["labels"]))
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "{by} selects the pods of exactly one workload (selector {selector:?})"
    );
    hits[0]
}

/// What holds for every resource of a build: workloads select their own
/// pods and their probes, mounts and config maps exist; Services,
/// PodDisruptionBudgets and NetworkPolicies select pods that have the ports
/// they name; pods run unprivileged with limits.
fn check_references(docs: &[Value]) {
    for workload in workloads(docs) {
        let id = format!("{} {}", kind(workload), name(workload));
        let spec = &workload["spec"];
        let pod = &spec["template"]["spec"];
        let labels = &spec["template"]["metadata"]["labels"];
        assert!(
            selects(&spec["selector"]["matchLabels"], labels),
            "{id}: its selector matches its pod labels"
        );
        for constraint in seq(&pod["topologySpreadConstraints"]) {
            assert!(
                selects(&constraint["labelSelector"]["matchLabels"], labels),
                "{id}: topology spread counts its own pods"
            );
        }
        // Unprivileged.
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{id}");
        assert_eq!(pod["securityContext"]["runAsUser"], 10001, "{id}");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{id}"
        );
        let volumes = seq(&pod["volumes"]);
        let claims: Vec<&str> = seq(&spec["volumeClaimTemplates"])
            .iter()
            .map(|c| str_of(&c["metadata"]["name"], "claim name"))
            .collect();
        for container in seq(&pod["containers"]) {
            let id = format!("{id} container {}", str_of(&container["name"], "name"));
            let security = &container["securityContext"];
            assert_eq!(security["readOnlyRootFilesystem"], true, "{id}");
            // StreamGate's profilers write temporary files: a read-only
            // root needs a writable /tmp.
            if str_of(&container["name"], "name") == "streamgate" {
                assert!(
                    seq(&container["volumeMounts"])
                        .iter()
                        .any(|m| m["mountPath"] == "/tmp"),
                    "{id}: no writable /tmp under a read-only root"
                );
            }
            assert_eq!(security["allowPrivilegeEscalation"], false, "{id}");
            assert_eq!(security["capabilities"]["drop"][0], "ALL", "{id}");
            for resource in ["cpu", "memory"] {
                assert!(
                    container["resources"]["requests"][resource].is_string(),
                    "{id}: requests {resource}"
                );
            }
            assert!(
                container["resources"]["limits"]["memory"].is_string(),
                "{id}: a memory limit"
            );
            for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
                let get = &container[probe]["httpGet"];
                if get.is_null() {
                    continue;
                }
                assert!(
                    container_port(container, &get["port"]).is_some(),
                    "{id}: {probe} uses port {:?}, which the container does not have",
                    get["port"]
                );
            }
            for mount in seq(&container["volumeMounts"]) {
                let volume = str_of(&mount["name"], "mount name");
                assert!(
                    volumes.iter().any(|v| v["name"] == volume) || claims.contains(&volume),
                    "{id} mounts {volume}, which is neither a volume nor a claim template"
                );
            }
        }
        for claim in &claims {
            assert!(
                seq(&pod["containers"])
                    .iter()
                    .flat_map(|c| seq(&c["volumeMounts"]))
                    .any(|m| m["name"] == *claim),
                "{id}: volumeClaimTemplate {claim} is mounted"
            );
        }
        for volume in volumes {
            if let Some(map) = volume["configMap"]["name"].as_str() {
                find(docs, "ConfigMap", map);
            }
        }
        if kind(workload) == "StatefulSet" {
            let governing = find(docs, "Service", str_of(&spec["serviceName"], "serviceName"));
            assert_eq!(
                governing["spec"]["clusterIP"], "None",
                "{id}: its serviceName is a headless Service"
            );
        }
    }

    for service in of_kind(docs, "Service") {
        let id = format!("Service {}", name(service));
        let workload = selected_workload(docs, &service["spec"]["selector"], &id);
        let containers = seq(&workload["spec"]["template"]["spec"]["containers"]);
        for port in seq(&service["spec"]["ports"]) {
            let target = &port["targetPort"];
            assert!(
                containers
                    .iter()
                    .any(|c| container_port(c, target) == port["port"].as_u64()),
                "{id}: port {:?} targets {target:?}, which is no container port {:?} of {}",
                port["name"],
                port["port"],
                name(workload)
            );
            if port["name"] == "otlp-grpc" {
                assert_eq!(port["appProtocol"], "grpc", "{id}: otlp-grpc is gRPC");
            }
        }
    }
    for budget in of_kind(docs, "PodDisruptionBudget") {
        let id = format!("PodDisruptionBudget {}", name(budget));
        selected_workload(docs, &budget["spec"]["selector"]["matchLabels"], &id);
        assert_eq!(
            budget["spec"]["maxUnavailable"], 1,
            "{id}: drains never block"
        );
    }
    for policy in of_kind(docs, "NetworkPolicy") {
        let id = format!("NetworkPolicy {}", name(policy));
        let workload = selected_workload(docs, &policy["spec"]["podSelector"]["matchLabels"], &id);
        let ingress = seq(&policy["spec"]["ingress"]);
        assert_eq!(ingress.len(), 1, "{id}: one ingress rule");
        let allowed: BTreeSet<u64> = seq(&ingress[0]["ports"])
            .iter()
            .map(|p| p["port"].as_u64().expect("numeric port"))
            .collect();
        // Every container port a Service routes to these pods, and
        // nothing else.
        let containers = seq(&workload["spec"]["template"]["spec"]["containers"]);
        let served: BTreeSet<u64> = of_kind(docs, "Service")
            .into_iter()
            .filter(|s| {
                selects(
                    &s["spec"]["selector"],
                    &workload["spec"]["template"]["metadata"]["labels"],
                )
            })
            .flat_map(|s| seq(&s["spec"]["ports"]).iter())
            .filter_map(|p| {
                containers
                    .iter()
                    .find_map(|c| container_port(c, &p["targetPort"]))
            })
            .collect();
        assert_eq!(allowed, served, "{id}: ingress only to the served ports");
    }
}

/// The interpreter with kubernetes-validate, or `None` (skipped outside
/// `scripts/test`).
fn validator_python() -> Option<PathBuf> {
    let python = std::env::var_os("STREAMGATE_PYTHON")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| Some(Path::new(ROOT).join(".venv/bin/python")).filter(|p| p.is_file()));
    let usable = python.filter(|p| {
        Command::new(p)
            .args(["-c", "import kubernetes_validate"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if usable.is_none() {
        let message = "no Python with kubernetes-validate ($STREAMGATE_PYTHON or .venv): \
                       run scripts/test, which installs tests/python/requirements.txt";
        if common::peers_required() {
            panic!("{message}");
        }
        eprintln!("SKIPPED: {message}");
    }
    usable
}

/// Every resource of a built-in kind passes kubernetes-validate, strictly,
/// for every supported version; the rest are the CRD kinds checked here.
fn check_schemas(docs: &[Value]) {
    let (crds, builtin): (Vec<&Value>, Vec<&Value>) =
        docs.iter().partition(|d| CRD_KINDS.contains(&kind(d)));
    assert!(!builtin.is_empty());
    let Some(python) = validator_python() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("resources.yaml");
    let yaml: Vec<String> = builtin
        .iter()
        .map(|d| serde_yaml_ng::to_string(d).expect("YAML"))
        .collect();
    std::fs::write(&file, yaml.join("---\n")).expect("write");
    let mut command = Command::new(python);
    command.args(["-m", "kubernetes_validate", "--strict"]);
    for version in KUBERNETES_VERSIONS {
        command.args(["--kubernetes-version", version]);
    }
    let out = command
        .arg(&file)
        .output()
        .expect("run kubernetes-validate");
    let report = text(&out);
    assert!(out.status.success(), "kubernetes-validate:\n{report}");
    assert!(
        !report.contains("WARN") && !report.contains("ERROR"),
        "kubernetes-validate found no schema for a kind, or failed:\n{report}"
    );
    let passed = report.matches(" passed for resource ").count();
    assert_eq!(
        passed,
        builtin.len() * KUBERNETES_VERSIONS.len(),
        "every resource validated against every version:\n{report}"
    );
    for crd in crds {
        assert_eq!(crd["apiVersion"], "monitoring.coreos.com/v1");
    }
}

/// The Prometheus Operator resources: the ServiceMonitor scrapes the one
/// non-headless Service's metrics port with honorLabels, and the
/// PrometheusRule has the structure of the CRD.
fn check_operator_resources(docs: &[Value]) {
    let monitor = find(docs, "ServiceMonitor", "streamgate");
    let spec = monitor["spec"].as_mapping().expect("spec");
    let keys: BTreeSet<&str> = spec.keys().filter_map(Value::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["selector", "endpoints"]));
    let services: Vec<&Value> = of_kind(docs, "Service")
        .into_iter()
        .filter(|s| {
            selects(
                &monitor["spec"]["selector"]["matchLabels"],
                &s["metadata"]["labels"],
            )
        })
        .collect();
    assert_eq!(services.len(), 1, "the ServiceMonitor selects one Service");
    assert_ne!(
        services[0]["spec"]["clusterIP"], "None",
        "not the headless one"
    );
    let endpoints = seq(&monitor["spec"]["endpoints"]);
    assert_eq!(endpoints.len(), 1);
    let endpoint = &endpoints[0];
    for key in endpoint.as_mapping().expect("endpoint").keys() {
        let key = str_of(key, "endpoint key");
        assert!(
            ["port", "path", "honorLabels", "interval", "scrapeTimeout"].contains(&key),
            "ServiceMonitor endpoint key {key} is not one this test knows from the CRD"
        );
    }
    assert_eq!(endpoint["path"], "/metrics");
    assert_eq!(endpoint["honorLabels"], true);
    assert!(
        seq(&services[0]["spec"]["ports"])
            .iter()
            .any(|p| p["name"] == endpoint["port"] && p["port"] == 9464),
        "the endpoint's port is the Service's metrics port"
    );

    let rule = find(docs, "PrometheusRule", "streamgate");
    let spec = rule["spec"].as_mapping().expect("spec");
    assert_eq!(spec.len(), 1, "spec has only groups");
    for group in seq(&rule["spec"]["groups"]) {
        str_of(&group["name"], "group name");
        assert!(!seq(&group["rules"]).is_empty());
        for rule in seq(&group["rules"]) {
            let keys: BTreeSet<&str> = rule
                .as_mapping()
                .expect("rule")
                .keys()
                .filter_map(Value::as_str)
                .collect();
            assert!(
                keys.contains("record") != keys.contains("alert"),
                "{rule:?}: record or alert"
            );
            assert!(keys.contains("expr"));
            for key in keys {
                assert!(
                    [
                        "record",
                        "alert",
                        "expr",
                        "for",
                        "keep_firing_for",
                        "labels",
                        "annotations"
                    ]
                    .contains(&key),
                    "rule key {key}"
                );
            }
        }
    }
}

/// The StreamGate ConfigMap's file, from the ConfigMap the StatefulSet
/// mounts at the config path.
fn streamgate_config(docs: &[Value]) -> String {
    let set = find(docs, "StatefulSet", "streamgate");
    let pod = &set["spec"]["template"]["spec"];
    let mount = seq(&pod["containers"][0]["volumeMounts"])
        .iter()
        .find(|m| m["mountPath"] == CONFIG_PATH)
        .expect("the config is mounted at /etc/streamgate/streamgate.yaml");
    let volume = seq(&pod["volumes"])
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the config volume");
    let map = find(
        docs,
        "ConfigMap",
        str_of(&volume["configMap"]["name"], "configMap name"),
    );
    let key = str_of(&mount["subPath"], "subPath");
    str_of(&map["data"][key], "the config in the ConfigMap").to_string()
}

/// Runs the StatefulSet's own command line with `validate` for `run` and
/// the config at a temporary path: `streamgate validate` accepts it.
fn validate_as_the_pod_would(docs: &[Value], config: &str, env: &[(&str, &str)]) {
    let set = find(docs, "StatefulSet", "streamgate");
    let container = &set["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["command"][0], "streamgate");
    let args: Vec<&str> = seq(&container["args"])
        .iter()
        .map(|a| str_of(a, "arg"))
        .collect();
    assert_eq!(
        args,
        ["--config", CONFIG_PATH, "run"],
        "the pod runs the mounted config"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("streamgate.yaml");
    std::fs::write(&path, config).expect("write");
    let args: Vec<&str> = args
        .iter()
        .map(|a| match *a {
            CONFIG_PATH => path.to_str().expect("path"),
            "run" => "validate",
            other => other,
        })
        .collect();
    let out = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args(&args)
        .envs(env.iter().copied())
        .output()
        .expect("run streamgate validate");
    assert!(
        out.status.success(),
        "streamgate validate rejects the ConfigMap's config:\n{}\n{config}",
        text(&out)
    );
}

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).expect("YAML")
}

/// The base: one StreamGate replica, its Services, budget, policy,
/// monitoring resources and dashboards, valid against the schemas and
/// each other.
#[test]
fn the_base_builds_validates_and_hangs_together() {
    let docs = built(BASE);
    let kinds: BTreeSet<&str> = docs.iter().map(kind).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "ConfigMap",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "PrometheusRule",
            "Service",
            "ServiceMonitor",
            "StatefulSet",
        ])
    );
    check_references(&docs);
    check_operator_resources(&docs);
    check_schemas(&docs);

    let set = find(&docs, "StatefulSet", "streamgate");
    assert_eq!(set["spec"]["replicas"], 1);
    let container = &set["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "streamgate:latest");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(
            container_port(container, &container[probe]["httpGet"]["port"]),
            Some(9464),
            "{probe} asks the admin server"
        );
    }
    assert_eq!(
        container["resources"]["requests"]["memory"], container["resources"]["limits"]["memory"],
        "memory requested as limited: not evicted for memory promised elsewhere"
    );
    let ports: BTreeSet<u64> = seq(&container["ports"])
        .iter()
        .filter_map(|p| p["containerPort"].as_u64())
        .collect();
    assert_eq!(ports, BTreeSet::from([4317, 4318, 9464]));

    // The headless Service lists the pods for the load balancer's resolver.
    let headless = find(&docs, "Service", "streamgate-headless");
    assert_eq!(set["spec"]["serviceName"], "streamgate-headless");
    assert_eq!(headless["spec"]["publishNotReadyAddresses"], false);
    assert!(
        seq(&headless["spec"]["ports"])
            .iter()
            .any(|p| p["port"] == 4317)
    );

    // The state: a claim per pod mounted where the config keeps state.
    let config = streamgate_config(&docs);
    let parsed = yaml(&config);
    let claim = &set["spec"]["volumeClaimTemplates"][0];
    let state_mount = seq(&container["volumeMounts"])
        .iter()
        .find(|m| m["name"] == claim["metadata"]["name"])
        .expect("the claim is mounted");
    assert_eq!(state_mount["mountPath"], "/var/lib/streamgate");
    assert_eq!(parsed["state"]["directory"], state_mount["mountPath"]);
    assert_eq!(parsed["logging"]["format"], "json");
    assert_eq!(parsed["server"]["endpoint"], "0.0.0.0:9464");
    assert_eq!(
        parsed["receivers"]["otlp"]["grpc"]["endpoint"],
        "0.0.0.0:4317"
    );
    assert_eq!(
        parsed["receivers"]["otlp"]["http"]["endpoint"],
        "0.0.0.0:4318"
    );
    validate_as_the_pod_would(&docs, &config, &[]);

    // The image is a placeholder that `images:` replaces.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        format!(
            "resources:\n  - {}\nimages:\n  - name: streamgate\n    newName: registry.example/streamgate\n    newTag: \"1.2.3\"\n",
            relative(dir.path(), &Path::new(ROOT).join(BASE)).display()
        ),
    )
    .expect("write");
    let overridden = build(dir.path());
    assert_eq!(
        find(&overridden, "StatefulSet", "streamgate")["spec"]["template"]["spec"]["containers"][0]
            ["image"],
        "registry.example/streamgate:1.2.3"
    );
}

/// `to` relative to `from` (kustomize refuses absolute resource paths).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut path = PathBuf::new();
    for _ in common..from.len() {
        path.push("..");
    }
    for part in &to[common..] {
        path.push(part);
    }
    path
}

/// The PrometheusRule is every group of every `rules/*.yml`, unchanged,
/// and `promtool check rules` accepts it as a rules file.
#[test]
fn the_prometheus_rule_is_the_rules_directory() {
    let docs = built(BASE);
    let rule = find(&docs, "PrometheusRule", "streamgate");
    let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("rules"))
        .expect("rules/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let mut groups = Vec::new();
    for file in &files {
        let parsed = yaml(&std::fs::read_to_string(file).expect("rules file"));
        groups.extend(seq(&parsed["groups"]).iter().cloned());
    }
    assert_eq!(
        seq(&rule["spec"]["groups"]),
        groups.as_slice(),
        "the PrometheusRule differs from rules/*.yml: run scripts/gen-kubernetes"
    );

    if let Some(promtool) = common::find_peer("promtool") {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("prometheusrule.yml");
        std::fs::write(
            &file,
            serde_yaml_ng::to_string(&rule["spec"]).expect("YAML"),
        )
        .expect("write");
        let out = Command::new(promtool)
            .args(["check", "rules"])
            .arg(&file)
            .output()
            .expect("promtool");
        assert!(out.status.success(), "promtool check rules: {}", text(&out));
    }
}

/// The dashboards ConfigMap is what Grafana's sidecar loads: labelled
/// grafana_dashboard="1", one key per `dashboards/*.json` with the file's
/// exact text, and small enough for a client-side `kubectl apply`.
#[test]
fn the_dashboards_configmap_is_the_dashboards_directory() {
    let docs = built(BASE);
    let map = find(&docs, "ConfigMap", "streamgate-dashboards");
    assert_eq!(map["metadata"]["labels"]["grafana_dashboard"], "1");
    let data = map["data"].as_mapping().expect("data");
    let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("dashboards"))
        .expect("dashboards/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(data.len(), files.len(), "one key per dashboard");
    for file in &files {
        let key = file.file_name().unwrap().to_str().unwrap();
        let content = std::fs::read_to_string(file).expect("dashboard");
        assert!(
            map["data"][key].as_str() == Some(content.as_str()),
            "{key} in the ConfigMap differs from dashboards/{key}: run scripts/gen-kubernetes"
        );
    }
    let encoded = serde_json::to_string(map).expect("JSON").len();
    assert!(
        encoded < ANNOTATION_LIMIT,
        "the dashboards ConfigMap is {encoded} bytes as JSON, beyond what a client-side \
         kubectl apply can record ({ANNOTATION_LIMIT}): split it, and keep --server-side in \
         deploy/README.md"
    );
}

/// The committed generated files are what `scripts/gen-kubernetes` writes
/// from the current `rules/` and `dashboards/`.
#[test]
fn the_generated_manifests_are_up_to_date() {
    let out = Command::new("python3")
        .arg(Path::new(ROOT).join("scripts/gen-kubernetes"))
        .arg("--check")
        .output()
        .expect("run python3 scripts/gen-kubernetes --check");
    assert!(
        out.status.success(),
        "deploy/kubernetes/base is out of date with rules/ or dashboards/: run \
         scripts/gen-kubernetes and commit what it writes\n{}",
        text(&out)
    );
}

/// The routing a loadbalancing config must have so each series lives on
/// one replica: traces and logs by service, metrics by stream; each
/// pipeline receives OTLP and exports through the exporter of its signal.
/// Returns the resolver (the same for all three).
fn check_loadbalancing(config: &Value, source: &str) -> Value {
    let exporters = config["exporters"].as_mapping().expect("exporters");
    let mut resolver = None;
    for (signal, key) in [
        ("traces", "service"),
        ("metrics", "streamID"),
        ("logs", "service"),
    ] {
        let pipeline = &config["service"]["pipelines"][signal];
        assert_eq!(pipeline["receivers"][0], "otlp", "{source}: {signal}");
        let names = seq(&pipeline["exporters"]);
        assert_eq!(names.len(), 1, "{source}: {signal} has one exporter");
        let exporter_name = str_of(&names[0], "exporter");
        assert!(
            exporter_name.starts_with("loadbalancing"),
            "{source}: {signal} exports through the loadbalancing exporter"
        );
        let exporter = exporters
            .get(exporter_name)
            .unwrap_or_else(|| panic!("{source}: exporter {exporter_name} is defined"));
        assert_eq!(
            exporter["routing_key"], key,
            "{source}: {signal} routing key"
        );
        assert_eq!(
            exporter["protocol"]["otlp"]["tls"]["insecure"], true,
            "{source}: StreamGate's OTLP is plaintext in the cluster"
        );
        assert!(exporter["protocol"]["otlp"]["endpoint"].is_null());
        for processor in seq(&pipeline["processors"]) {
            let processor = str_of(processor, "processor");
            assert!(
                !config["processors"][processor].is_null(),
                "{source}: processor {processor} is defined"
            );
        }
        match &resolver {
            None => resolver = Some(exporter["resolver"].clone()),
            Some(first) => assert_eq!(
                first, &exporter["resolver"],
                "{source}: one set of replicas for all signals"
            ),
        }
    }
    let protocols = &config["receivers"]["otlp"]["protocols"];
    assert_eq!(protocols["grpc"]["endpoint"], "0.0.0.0:4317");
    assert_eq!(protocols["http"]["endpoint"], "0.0.0.0:4318");
    resolver.expect("resolver")
}

/// The sharded overlay: three StreamGate replicas that label their series
/// with their pod name, behind a gateway whose loadbalancing exporter
/// finds them through the headless Service (with the RBAC to watch it).
#[test]
fn the_sharded_overlay_builds_validates_and_routes_by_series() {
    let docs = built(SHARDED);
    check_references(&docs);
    check_operator_resources(&docs);
    check_schemas(&docs);

    let set = find(&docs, "StatefulSet", "streamgate");
    assert_eq!(set["spec"]["replicas"], 3);
    let container = &set["spec"]["template"]["spec"]["containers"][0];
    let pod_name = seq(&container["env"])
        .iter()
        .find(|e| e["name"] == "POD_NAME")
        .expect("POD_NAME in the StreamGate container");
    assert_eq!(
        pod_name["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );

    // The config: the base's, plus collector_instance from POD_NAME, and
    // every variable it refers to is set on the container.
    let config = streamgate_config(&docs);
    let parsed = yaml(&config);
    assert_eq!(parsed["collector_instance"], "${env:POD_NAME}");
    let mut without = parsed.clone();
    without
        .as_mapping_mut()
        .expect("mapping")
        .remove("collector_instance");
    assert_eq!(
        without,
        yaml(&streamgate_config(&built(BASE))),
        "the overlay's config is the base's plus collector_instance"
    );
    for reference in config.split("${env:").skip(1) {
        let variable = reference.split(['}', ':']).next().unwrap_or("");
        assert!(
            seq(&container["env"]).iter().any(|e| e["name"] == variable),
            "the config refers to {variable}, which the container does not set"
        );
    }

    // The gateway: routes by series to the headless Service's pods.
    let gateway = find(&docs, "Deployment", "streamgate-gateway");
    let pod = &gateway["spec"]["template"]["spec"];
    let otelcol = &pod["containers"][0];
    assert!(
        str_of(&otelcol["image"], "image").starts_with("otel/opentelemetry-collector-contrib:"),
        "the contrib distribution has the loadbalancing exporter"
    );
    let arg = str_of(&otelcol["args"][0], "arg");
    let config_file = arg.strip_prefix("--config=").expect("--config=FILE");
    let mount = seq(&otelcol["volumeMounts"])
        .iter()
        .find(|m| config_file.starts_with(str_of(&m["mountPath"], "mountPath")))
        .expect("the gateway config is mounted");
    let volume = seq(&pod["volumes"])
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("volume");
    let map = find(
        &docs,
        "ConfigMap",
        str_of(&volume["configMap"]["name"], "configMap"),
    );
    let key = Path::new(config_file)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    let collector = yaml(str_of(&map["data"][key], "the gateway config"));
    let resolver = check_loadbalancing(&collector, "the gateway config");
    let k8s = &resolver["k8s"];
    let headless = find(&docs, "Service", str_of(&k8s["service"], "k8s.service"));
    assert_eq!(headless["spec"]["clusterIP"], "None");
    assert_eq!(
        set["spec"]["serviceName"], headless["metadata"]["name"],
        "return_hostnames needs the StatefulSet's governing Service"
    );
    assert_eq!(k8s["return_hostnames"], true);
    assert!(
        selects(
            &headless["spec"]["selector"],
            &set["spec"]["template"]["metadata"]["labels"]
        ),
        "the headless Service lists the StreamGate pods"
    );
    for port in seq(&k8s["ports"]) {
        assert_eq!(
            container_port(container, port),
            Some(4317),
            "the gateway sends to StreamGate's OTLP/gRPC port"
        );
    }
    assert!(
        otelcol["livenessProbe"]["httpGet"]["port"] == "health"
            && collector["extensions"]["health_check"]["endpoint"] == "0.0.0.0:13133"
            && container_port(otelcol, &Value::from("health")) == Some(13133),
        "the gateway's probes ask its health_check extension"
    );

    // RBAC: the gateway's ServiceAccount may watch the endpoints.
    let account = str_of(&pod["serviceAccountName"], "serviceAccountName");
    find(&docs, "ServiceAccount", account);
    let binding = of_kind(&docs, "RoleBinding")
        .into_iter()
        .find(|b| {
            seq(&b["subjects"])
                .iter()
                .any(|s| s["kind"] == "ServiceAccount" && s["name"] == account)
        })
        .expect("a RoleBinding for the gateway's ServiceAccount");
    assert_eq!(
        binding["subjects"][0]["namespace"], gateway["metadata"]["namespace"],
        "the binding names the account in the gateway's namespace"
    );
    let role = find(
        &docs,
        "Role",
        str_of(&binding["roleRef"]["name"], "roleRef"),
    );
    for (group, resource) in [("", "endpoints"), ("discovery.k8s.io", "endpointslices")] {
        assert!(
            seq(&role["rules"]).iter().any(|r| {
                seq(&r["apiGroups"]).iter().any(|g| g == group)
                    && seq(&r["resources"]).iter().any(|x| x == resource)
                    && ["list", "watch"]
                        .iter()
                        .all(|v| seq(&r["verbs"]).iter().any(|x| x == *v))
            }),
            "the gateway may list and watch {resource}"
        );
    }
}

/// The sharded overlay's StreamGate config passes `streamgate validate`
/// as the pod runs it (POD_NAME set as the StatefulSet sets it). This
/// needs the top-level `collector_instance` key in the config code.
#[test]
fn the_sharded_config_is_valid() {
    let docs = built(SHARDED);
    let config = streamgate_config(&docs);
    validate_as_the_pod_would(&docs, &config, &[("POD_NAME", "streamgate-0")]);
}

/// `otel/collector-loadbalancing.yaml`, the standalone gateway config,
/// routes as the overlay's does and finds the replicas by DNS through the
/// headless Service.
#[test]
fn the_standalone_loadbalancing_config_routes_by_series() {
    let path = Path::new(ROOT).join("otel/collector-loadbalancing.yaml");
    let text = std::fs::read_to_string(&path).expect("otel/collector-loadbalancing.yaml");
    let config = yaml(&text);
    let resolver = check_loadbalancing(&config, "otel/collector-loadbalancing.yaml");
    let hostname = str_of(&resolver["dns"]["hostname"], "dns.hostname");
    let headless = find(&built(BASE), "Service", "streamgate-headless")["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    assert!(
        hostname.starts_with(&format!("{headless}.")),
        "the DNS resolver asks for the headless Service ({hostname})"
    );
    assert_eq!(resolver["dns"]["port"], "4317");
    assert!(text.contains("# static:"), "a static list, commented out");
}
