//! StreamGate: an OpenTelemetry collector with analytics built in.
//!
//! OTLP traces, metrics and logs come in over gRPC and HTTP
//! ([`receivers::otlp`]), pass through the [`pipeline`] as decoded OTLP
//! structures ([`model`]), and metrics come out on a Prometheus `/metrics`
//! endpoint translated by the OTel→Prometheus rules
//! ([`exporters::prometheus`]). [`app::App`] wires it all from a
//! [`config::Config`].
//!
//! # Layout
//!
//! | module | owns |
//! |---|---|
//! | [`backtest`] | `streamgate backtest`: analytics over recorded CSV series |
//! | [`loadgen`] | `streamgate loadgen`: OTLP load over gRPC or HTTP, with latency and refusals |
//! | [`app`] | building components from config, running, draining on shutdown |
//! | [`config`] | the YAML file: raw (as written) → resolved (validated) |
//! | [`model`] | types passed between components (OTLP payloads) |
//! | [`pipeline`] | consumer traits, fan-out, shutdown signal, API query traits |
//! | [`connectors`] | traces → span metrics and service graph, logs → log counts |
//! | [`processors`] | rolling windows and quantiles over selected series |
//! | [`receivers::otlp`] | OTLP/gRPC and OTLP/HTTP servers, decoding, limits, status codes |
//! | [`analytics`] | pure algorithms, time passed in: quantile sketches and sliding windows |
//! | [`exporters::prometheus`] | series store, OTel→Prometheus translation, `/metrics` |
//! | [`exporters::alertmanager`] | built-in alerts: lifecycle, push to Alertmanager API v2 |
//! | [`exporters::pprof`] | self-profiling: CPU profiles and flame graphs on `/debug/pprof` |
//! | [`api`] | health, readiness, status, series and history, span and log tails, alerts, reports, the web console |
//! | [`progress`] | progress bars and lines of long-running commands |
//! | [`chart`] | SVG line charts (console pages, backtest plots); imports nothing of ours |
//! | [`exporters::remote_write`] | Prometheus remote write of everything `/metrics` serves |
//! | [`exporters::otlp`] | forwarding what is received to another OTLP endpoint |
//! | [`telemetry`] | StreamGate's own `streamgate_*` metrics and events |
//!
//! `docs/ARCHITECTURE.md` gives the bird's-eye view and the invariants.

pub mod analytics;
pub mod api;
pub mod app;
pub mod backtest;
pub mod chart;
pub mod config;
pub mod connectors;
pub mod exporters;
pub mod loadgen;
pub mod model;
pub mod pipeline;
pub mod processors;
pub mod progress;
pub mod receivers;
pub mod telemetry;
