//! A point-in-time copy of the self-metrics, in a shape any renderer can write.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{RefusalReason, Signal, Telemetry, Transport, names};

/// The Prometheus type of a self-metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// One sample line: an optional name suffix (`_bucket`, `_sum`, `_count`),
/// its labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleSnapshot {
    pub suffix: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

/// One metric family. `name` is the full sample name for counters
/// (ending in `_total`), as the text format writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilySnapshot {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: MetricKind,
    pub samples: Vec<SampleSnapshot>,
}

/// A counter family with one sample per delivery outcome.
fn outcome_family(
    name: &'static str,
    help: &'static str,
    counts: &[AtomicU64; 3],
) -> FamilySnapshot {
    FamilySnapshot {
        name,
        help,
        kind: MetricKind::Counter,
        samples: super::NotificationOutcome::ALL
            .iter()
            .map(|o| {
                sample(
                    vec![("outcome", o.as_str().to_string())],
                    counts[*o as usize].load(Ordering::Relaxed) as f64,
                )
            })
            .collect(),
    }
}

fn sample(labels: Vec<(&'static str, String)>, value: f64) -> SampleSnapshot {
    SampleSnapshot {
        suffix: "",
        labels,
        value,
    }
}

fn route_labels(signal: Signal, transport: Transport) -> Vec<(&'static str, String)> {
    vec![
        ("signal", signal.as_str().to_string()),
        ("transport", transport.as_str().to_string()),
    ]
}

impl Telemetry {
    /// Copies every self-metric. Called once per scrape; allocation is fine.
    pub fn snapshot(&self) -> Vec<FamilySnapshot> {
        let mut out = Vec::with_capacity(16);
        out.push(FamilySnapshot {
            name: names::BUILD_INFO,
            help: "StreamGate build information; the value is always 1.",
            kind: MetricKind::Gauge,
            samples: vec![sample(
                vec![("version", env!("CARGO_PKG_VERSION").to_string())],
                1.0,
            )],
        });
        out.push(FamilySnapshot {
            name: names::START_TIME_SECONDS,
            help: "Unix time at which this StreamGate process started, in seconds.",
            kind: MetricKind::Gauge,
            samples: vec![sample(vec![], self.started_unix)],
        });
        out.push(FamilySnapshot {
            name: names::UPTIME_SECONDS,
            help: "Seconds since this StreamGate process started.",
            kind: MetricKind::Gauge,
            samples: vec![sample(vec![], self.uptime().as_secs_f64())],
        });
        if let Some(runtime) = self.runtime() {
            runtime_families(&runtime, &mut out);
        }
        let process = super::process::read();
        let heap = super::allocator::read();
        for (name, help, kind, value) in [
            (
                names::HEAP_ALLOCATED,
                "Bytes in live heap allocations of this StreamGate process (jemalloc).",
                MetricKind::Gauge,
                heap.map(|h| h.allocated),
            ),
            (
                names::HEAP_RESIDENT,
                "Resident bytes held by the heap allocator: live data, metadata and freed pages not yet returned to the system (jemalloc).",
                MetricKind::Gauge,
                heap.map(|h| h.resident),
            ),
            (
                names::PROCESS_MEMORY_LIMIT,
                "Most memory this StreamGate process may use: its cgroup's limit, else the machine's memory, in bytes.",
                MetricKind::Gauge,
                super::allocator::memory_limit_bytes(),
            ),
            (
                names::PROCESS_RESIDENT_MEMORY,
                "Resident memory of this StreamGate process, in bytes.",
                MetricKind::Gauge,
                process.resident_bytes,
            ),
            (
                names::PROCESS_CPU_SECONDS,
                "User and system CPU time used by this StreamGate process, in seconds.",
                MetricKind::Counter,
                process.cpu_seconds,
            ),
            (
                names::PROCESS_OPEN_FDS,
                "Open file descriptors of this StreamGate process.",
                MetricKind::Gauge,
                process.open_fds,
            ),
            (
                names::PROCESS_THREADS,
                "Operating-system threads of this StreamGate process.",
                MetricKind::Gauge,
                process.threads,
            ),
        ] {
            if let Some(v) = value {
                out.push(FamilySnapshot {
                    name,
                    help,
                    kind,
                    samples: vec![sample(vec![], v)],
                });
            }
        }

        let mut accepted = Vec::new();
        let mut bytes = Vec::new();
        let mut repaired = Vec::new();
        let mut refused_items = Vec::new();
        let mut refused_requests = Vec::new();
        let mut durations = Vec::new();
        for signal in Signal::ALL {
            for transport in Transport::ALL {
                accepted.push(sample(
                    route_labels(signal, transport),
                    self.accepted_items
                        .get(signal, transport)
                        .load(Ordering::Relaxed) as f64,
                ));
                bytes.push(sample(
                    route_labels(signal, transport),
                    self.received_bytes
                        .get(signal, transport)
                        .load(Ordering::Relaxed) as f64,
                ));
                repaired.push(sample(
                    route_labels(signal, transport),
                    self.repaired_strings
                        .get(signal, transport)
                        .load(Ordering::Relaxed) as f64,
                ));
                for reason in RefusalReason::ALL {
                    let mut labels = route_labels(signal, transport);
                    labels.push(("reason", reason.as_str().to_string()));
                    refused_items.push(sample(
                        labels.clone(),
                        self.refused_items[reason.index()]
                            .get(signal, transport)
                            .load(Ordering::Relaxed) as f64,
                    ));
                    refused_requests.push(sample(
                        labels,
                        self.refused_requests[reason.index()]
                            .get(signal, transport)
                            .load(Ordering::Relaxed) as f64,
                    ));
                }
                let (buckets, sum, count) =
                    self.request_duration.get(signal, transport).cumulative();
                for (bound, cumulative) in buckets {
                    let mut labels = route_labels(signal, transport);
                    labels.push(("le", format_bound(bound)));
                    durations.push(SampleSnapshot {
                        suffix: "_bucket",
                        labels,
                        value: cumulative as f64,
                    });
                }
                durations.push(SampleSnapshot {
                    suffix: "_sum",
                    labels: route_labels(signal, transport),
                    value: sum,
                });
                durations.push(SampleSnapshot {
                    suffix: "_count",
                    labels: route_labels(signal, transport),
                    value: count as f64,
                });
            }
        }
        out.push(FamilySnapshot {
            name: names::RECEIVER_ACCEPTED_ITEMS,
            help: "Items (spans, data points, log records) accepted by the OTLP receiver.",
            kind: MetricKind::Counter,
            samples: accepted,
        });
        out.push(FamilySnapshot {
            name: names::RECEIVER_REFUSED_ITEMS,
            help: "Items refused by the OTLP receiver, by reason, when known. Requests refused before their body is decoded (too large, overloaded, memory-limited, unauthenticated, undecodable) count in streamgate_receiver_refused_requests_total only.",
            kind: MetricKind::Counter,
            samples: refused_items,
        });
        out.push(FamilySnapshot {
            name: names::RECEIVER_REFUSED_REQUESTS,
            help: "Requests answered with an error or a partial success, by reason.",
            kind: MetricKind::Counter,
            samples: refused_requests,
        });
        out.push(FamilySnapshot {
            name: names::RECEIVER_RECEIVED_BYTES,
            help: "Request body bytes received by the OTLP receiver, as sent on the wire (before decompression).",
            kind: MetricKind::Counter,
            samples: bytes,
        });
        out.push(FamilySnapshot {
            name: names::RECEIVER_REPAIRED_STRINGS,
            help: "Strings in accepted OTLP protobuf requests that were not valid UTF-8; their invalid bytes were replaced by '?'.",
            kind: MetricKind::Counter,
            samples: repaired,
        });
        out.push(FamilySnapshot {
            name: names::RECEIVER_UNKNOWN_PATHS,
            help: "Requests to no OTLP export: an unknown HTTP path (404) or gRPC service or method (UNIMPLEMENTED).",
            kind: MetricKind::Counter,
            samples: Transport::ALL
                .iter()
                .map(|t| {
                    sample(
                        vec![("transport", t.as_str().to_string())],
                        self.unknown_paths(*t) as f64,
                    )
                })
                .collect(),
        });
        out.push(FamilySnapshot {
            name: names::RECEIVER_REQUEST_DURATION,
            help: "Time from receiving an OTLP request to answering it, in seconds.",
            kind: MetricKind::Histogram,
            samples: durations,
        });
        out.push(FamilySnapshot {
            name: names::EXPORTER_ACTIVE_SERIES,
            help: "Series currently held for /metrics by the Prometheus exporter.",
            kind: MetricKind::Gauge,
            samples: vec![sample(vec![], self.active_series() as f64)],
        });
        out.push(FamilySnapshot {
            name: names::EXPORTER_EXPIRED_SERIES,
            help: "Series dropped from /metrics because no point arrived within series_ttl.",
            kind: MetricKind::Counter,
            samples: vec![sample(
                vec![],
                self.expired_series.load(Ordering::Relaxed) as f64,
            )],
        });
        out.push(FamilySnapshot {
            name: names::EXPORTER_REMOVED_SERIES,
            help: "Series removed from /metrics because a point carried the NoRecordedValue flag.",
            kind: MetricKind::Counter,
            samples: vec![sample(
                vec![],
                self.removed_series.load(Ordering::Relaxed) as f64,
            )],
        });
        out.push(FamilySnapshot {
            name: names::EXPORTER_OUT_OF_ORDER_POINTS,
            help: "Points ignored because they were older than the point already stored for their series.",
            kind: MetricKind::Counter,
            samples: vec![sample(
                vec![],
                self.out_of_order_points.load(Ordering::Relaxed) as f64,
            )],
        });
        let limits = &self.memory_limits;
        if limits[0].load(Ordering::Relaxed) > 0 {
            out.push(FamilySnapshot {
                name: names::RECEIVER_MEMORY_LIMIT,
                help: "The memory limiter's limits on resident memory: above soft, new data is refused with 429 / RESOURCE_EXHAUSTED; hard is what memory is kept under.",
                kind: MetricKind::Gauge,
                samples: ["soft", "hard"]
                    .iter()
                    .zip(limits)
                    .map(|(l, v)| sample(vec![("limit", l.to_string())], v.load(Ordering::Relaxed) as f64))
                    .collect(),
            });
            out.push(FamilySnapshot {
                name: names::RECEIVER_IN_FLIGHT_BYTES,
                help: "Bytes of requests being read or processed, held against the memory limiter's budget (hard less soft).",
                kind: MetricKind::Gauge,
                samples: vec![sample(
                    vec![],
                    self.in_flight_bytes.load(Ordering::Relaxed) as f64,
                )],
            });
        }
        out.push(FamilySnapshot {
            name: names::EXPORTER_OVERFLOW_POINTS,
            help: "Points of new series beyond exporters.prometheus.max_series or max_series_per_metric, folded into their metric's otel_metric_overflow=\"true\" series.",
            kind: MetricKind::Counter,
            samples: vec![sample(
                vec![],
                self.exporter_overflow_points.load(Ordering::Relaxed) as f64,
            )],
        });
        out.push(FamilySnapshot {
            name: names::CONNECTOR_OVERFLOW_POINTS,
            help: "Points a connector counted in its overflow series because the metric reached its cardinality limit.",
            kind: MetricKind::Counter,
            samples: super::CONNECTOR_NAMES
                .iter()
                .zip(&self.connector_overflow)
                .map(|(c, v)| sample(vec![("connector", c.to_string())], v.load(Ordering::Relaxed) as f64))
                .collect(),
        });
        out.push(FamilySnapshot {
            name: names::SERVICEGRAPH_PENDING_SPANS,
            help: "Span halves the service-graph connector holds waiting for their pair.",
            kind: MetricKind::Gauge,
            samples: vec![sample(
                vec![],
                self.servicegraph_pending.load(Ordering::Relaxed) as f64,
            )],
        });
        out.push(FamilySnapshot {
            name: names::SERVICEGRAPH_UNPAIRED_SPANS,
            help: "Client or server span halves whose other side did not arrive within connectors.servicegraph.wait.",
            kind: MetricKind::Counter,
            samples: ["client", "server"]
                .iter()
                .zip(&self.servicegraph_unpaired)
                .map(|(side, v)| {
                    sample(
                        vec![("side", side.to_string())],
                        v.load(Ordering::Relaxed) as f64,
                    )
                })
                .collect(),
        });
        out.push(FamilySnapshot {
            name: names::SERVICEGRAPH_DROPPED_SPANS,
            help: "Span halves dropped unpaired because the service-graph store held connectors.servicegraph.max_items.",
            kind: MetricKind::Counter,
            samples: vec![sample(
                vec![],
                self.servicegraph_dropped.load(Ordering::Relaxed) as f64,
            )],
        });
        out.push(FamilySnapshot {
            name: names::WINDOWS_SERIES,
            help: "Series the window processor keeps rolling windows for.",
            kind: MetricKind::Gauge,
            samples: vec![sample(
                vec![],
                self.windows_series.load(Ordering::Relaxed) as f64,
            )],
        });
        out.push(FamilySnapshot {
            name: names::WINDOWS_SKIPPED,
            help: "Points not analysed by the window processor because it holds max_series series.",
            kind: MetricKind::Counter,
            samples: vec![sample(
                vec![],
                self.windows_skipped.load(Ordering::Relaxed) as f64,
            )],
        });
        out.push(FamilySnapshot {
            name: names::ANALYSIS_SERIES,
            help: "Series the analysis processor keeps baselines and forecasts for.",
            kind: MetricKind::Gauge,
            samples: vec![sample(
                vec![],
                self.analysis_series.load(Ordering::Relaxed) as f64,
            )],
        });
        out.push(FamilySnapshot {
            name: names::ANALYSIS_SKIPPED,
            help: "Points not analysed because the analysis processor holds max_series series.",
            kind: MetricKind::Counter,
            samples: vec![sample(
                vec![],
                self.analysis_skipped.load(Ordering::Relaxed) as f64,
            )],
        });
        out.push(outcome_family(
            names::ALERTING_NOTIFICATIONS,
            "Alert notifications pushed to Alertmanager, by outcome (sent, failed after retries, dropped because the queue was full).",
            &self.alerting_notifications,
        ));
        out.push(outcome_family(
            names::PROFILING_PUSHES,
            "CPU and heap profiles pushed to Pyroscope, by outcome (sent, failed after retries, dropped because the queue was full).",
            &self.profiling_pushes,
        ));
        self.delivery_families(&mut out);
        let state = self.state_stats();
        let per_component = |value: &dyn Fn(&super::StateStats) -> f64| -> Vec<SampleSnapshot> {
            state
                .iter()
                .map(|(name, stats)| sample(vec![("component", name.to_string())], value(stats)))
                .collect()
        };
        out.push(FamilySnapshot {
            name: names::STATE_SNAPSHOTS,
            help: "State snapshots written to state.directory, by component and outcome (ok, failed).",
            kind: MetricKind::Counter,
            samples: state
                .iter()
                .flat_map(|(name, stats)| {
                    [("ok", stats.snapshots_ok), ("failed", stats.snapshots_failed)].map(
                        |(outcome, n)| {
                            sample(
                                vec![("component", name.to_string()), ("outcome", outcome.into())],
                                n as f64,
                            )
                        },
                    )
                })
                .collect(),
        });
        out.push(FamilySnapshot {
            name: names::STATE_SNAPSHOT_BYTES,
            help: "Size of the last state snapshot written, by component.",
            kind: MetricKind::Gauge,
            samples: per_component(&|s| s.bytes as f64),
        });
        out.push(FamilySnapshot {
            name: names::STATE_LAST_SNAPSHOT,
            help: "Unix time the last state snapshot written was begun, by component (0: none yet).",
            kind: MetricKind::Gauge,
            samples: per_component(&|s| s.last_taken_unix),
        });
        out.push(FamilySnapshot {
            name: names::STATE_RESTORED_ITEMS,
            help: "Items (series, alerts) taken back from saved state at start, by component.",
            kind: MetricKind::Gauge,
            samples: per_component(&|s| s.restored as f64),
        });
        out.push(FamilySnapshot {
            name: names::STATE_RESTORE_FAILURES,
            help: "Saved state files that could not be used at start (damaged or from another version) and were set aside, by component.",
            kind: MetricKind::Counter,
            samples: per_component(&|s| s.restore_failures as f64),
        });
        out.push(FamilySnapshot {
            name: names::TLS_HANDSHAKE_FAILURES,
            help: "TLS handshakes that failed or timed out, by server (otlp_grpc, otlp_http, admin): plaintext clients, untrusted or missing client certificates, protocol errors.",
            kind: MetricKind::Counter,
            samples: super::TlsServer::ALL
                .iter()
                .map(|s| {
                    sample(
                        vec![("server", s.as_str().to_string())],
                        self.tls_handshake_failures[*s as usize].load(Ordering::Relaxed) as f64,
                    )
                })
                .collect(),
        });
        out.push(FamilySnapshot {
            name: names::ADMIN_UNAUTHENTICATED,
            help: "Requests to the admin server refused for missing or wrong credentials (401) or for want of a client certificate (403).",
            kind: MetricKind::Counter,
            samples: vec![sample(
                vec![],
                self.admin_unauthenticated.load(Ordering::Relaxed) as f64,
            )],
        });
        out.push(FamilySnapshot {
            name: names::ADMIN_OVERLOADED,
            help: "Requests to the admin server refused with 503 because server.max_concurrent_requests were already in flight (health checks are never refused).",
            kind: MetricKind::Counter,
            samples: vec![sample(
                vec![],
                self.admin_overloaded.load(Ordering::Relaxed) as f64,
            )],
        });
        out.push(FamilySnapshot {
            name: names::ALERTING_QUEUE,
            help: "Alert notifications waiting to be pushed to Alertmanager.",
            kind: MetricKind::Gauge,
            samples: vec![sample(
                vec![],
                self.alerting_queue.load(Ordering::Relaxed) as f64,
            )],
        });
        out.push(FamilySnapshot {
            name: names::ALERTING_ACTIVE,
            help: "Alerts of StreamGate's built-in alerting that are active now, by severity.",
            kind: MetricKind::Gauge,
            samples: ["info", "warning", "critical"]
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    sample(
                        vec![("severity", s.to_string())],
                        self.alerting_active[i].load(Ordering::Relaxed) as f64,
                    )
                })
                .collect(),
        });
        out.push(FamilySnapshot {
            name: names::EXPORTER_SCRAPES,
            help: "Scrapes of /metrics served.",
            kind: MetricKind::Counter,
            samples: vec![sample(vec![], self.scrapes.load(Ordering::Relaxed) as f64)],
        });
        out.push(FamilySnapshot {
            name: names::EXPORTER_RENDER_SECONDS,
            help: "Time spent rendering /metrics (waits for slow clients, and gzip on its own thread, not counted).",
            kind: MetricKind::Counter,
            samples: vec![sample(
                vec![],
                self.render_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            )],
        });
        out.push(FamilySnapshot {
            name: names::EXPORTER_LAST_RENDER_SECONDS,
            help: "Time the last completed /metrics exposition took to render.",
            kind: MetricKind::Gauge,
            samples: vec![sample(
                vec![],
                self.last_render_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            )],
        });
        out
    }
}

/// The Tokio runtime's state (the async counterpart of goroutine counts):
/// of the ingest runtime ([`Telemetry::set_runtime`]), else of the one
/// the snapshot is taken on; absent outside one.
fn runtime_families(handle: &tokio::runtime::Handle, out: &mut Vec<FamilySnapshot>) {
    let m = handle.metrics();
    let workers = m.num_workers();
    for (name, help, value) in [
        (
            names::RUNTIME_WORKERS,
            "Worker threads of the async runtime.",
            workers,
        ),
        (
            names::RUNTIME_ALIVE_TASKS,
            "Async tasks alive in the runtime (spawned and not finished).",
            m.num_alive_tasks(),
        ),
        (
            names::RUNTIME_GLOBAL_QUEUE,
            "Tasks waiting in the runtime's global queue for a worker.",
            m.global_queue_depth(),
        ),
    ] {
        out.push(FamilySnapshot {
            name,
            help,
            kind: MetricKind::Gauge,
            samples: vec![sample(vec![], value as f64)],
        });
    }
    let per_worker = |f: &dyn Fn(usize) -> f64| -> Vec<SampleSnapshot> {
        (0..workers)
            .map(|w| sample(vec![("worker", w.to_string())], f(w)))
            .collect()
    };
    out.push(FamilySnapshot {
        name: names::RUNTIME_BUSY_SECONDS,
        help: "Time each runtime worker spent running tasks, in seconds.",
        kind: MetricKind::Counter,
        samples: per_worker(&|w| m.worker_total_busy_duration(w).as_secs_f64()),
    });
    out.push(FamilySnapshot {
        name: names::RUNTIME_PARKS,
        help: "Times each runtime worker parked (went idle waiting for work).",
        kind: MetricKind::Counter,
        samples: per_worker(&|w| m.worker_park_count(w) as f64),
    });
}

fn format_bound(bound: f64) -> String {
    if bound.is_infinite() {
        "+Inf".to_string()
    } else {
        bound.to_string()
    }
}

impl Telemetry {
    /// `streamgate_exporter_*` of the configured push exporters.
    fn delivery_families(&self, out: &mut Vec<FamilySnapshot>) {
        use super::delivery::{Delivery, DeliveryOutcome};
        let enabled: Vec<Delivery> = Delivery::ALL
            .into_iter()
            .filter(|d| self.delivery(*d).is_enabled())
            .collect();
        if enabled.is_empty() {
            return;
        }
        let labels = |d: Delivery| {
            vec![
                ("exporter", d.exporter().to_string()),
                ("signal", d.signal().to_string()),
            ]
        };
        let family = |name: &'static str,
                      help: &'static str,
                      kind: MetricKind,
                      value: &dyn Fn(Delivery) -> f64| FamilySnapshot {
            name,
            help,
            kind,
            samples: enabled
                .iter()
                .map(|d| sample(labels(*d), value(*d)))
                .collect(),
        };
        let items =
            |outcome: DeliveryOutcome| move |d: Delivery| self.delivery(d).items(outcome) as f64;
        out.push(family(
            names::DELIVERY_ITEMS,
            "Items (samples, spans, data points, log records) a push exporter delivered.",
            MetricKind::Counter,
            &items(DeliveryOutcome::Sent),
        ));
        out.push(family(
            names::DELIVERY_FAILED,
            "Items a push exporter gave up on: refused by the endpoint (4xx other than 429), or still failing when too old or at shutdown.",
            MetricKind::Counter,
            &items(DeliveryOutcome::Failed),
        ));
        out.push(family(
            names::DELIVERY_DROPPED,
            "Items a push exporter dropped unsent because its queue was full.",
            MetricKind::Counter,
            &items(DeliveryOutcome::Dropped),
        ));
        out.push(family(
            names::DELIVERY_RETRIES,
            "Requests a push exporter retried (connection errors, timeouts, 429, 5xx).",
            MetricKind::Counter,
            &|d| self.delivery(d).requests_retried.load(Ordering::Relaxed) as f64,
        ));
        out.push(family(
            names::DELIVERY_QUEUE_ITEMS,
            "Items waiting in a push exporter's queue.",
            MetricKind::Gauge,
            &|d| self.delivery(d).queue_items.load(Ordering::Relaxed) as f64,
        ));
        out.push(family(
            names::DELIVERY_QUEUE_BYTES,
            "Encoded bytes waiting in a push exporter's queue.",
            MetricKind::Gauge,
            &|d| self.delivery(d).queue_bytes.load(Ordering::Relaxed) as f64,
        ));
        out.push(family(
            names::DELIVERY_QUEUE_CAPACITY,
            "Most encoded bytes a push exporter's queue holds; beyond it the oldest batches are dropped.",
            MetricKind::Gauge,
            &|d| {
                self.delivery(d)
                    .queue_capacity_bytes
                    .load(Ordering::Relaxed) as f64
            },
        ));
        out.push(family(
            names::DELIVERY_LAST_SUCCESS,
            "Unix time of a push exporter's last accepted request (0: none yet).",
            MetricKind::Gauge,
            &|d| self.delivery(d).last_success_ms.load(Ordering::Relaxed) as f64 / 1000.0,
        ));
    }
}
