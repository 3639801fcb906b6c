//! The `streamgate` command: run the collector, validate a config, print
//! the documented default config. Exit codes: 0 success, 1 runtime
//! failure, 2 invalid configuration or usage.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use streamgate::app::{self, App};
use streamgate::config::{Config, DEFAULT_YAML, LogFormat, LoggingConfig};

/// jemalloc: it returns freed memory to the system on its own (background
/// purging), and its sampling heap profiler serves `/debug/pprof/heap`.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's start-up options: the heap profiler samples one allocation
/// per 512 KiB allocated on average (about 1 % CPU at most; turned off at
/// start when `exporters.pprof` is disabled), and unused dirty pages are
/// returned to the system after 1 s (so resident memory, which the
/// memory limiter watches, falls soon after a burst or a render).
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8] =
    b"prof:true,prof_active:true,lg_prof_sample:19,dirty_decay_ms:1000,muzzy_decay_ms:1000\0";

/// StreamGate: an OpenTelemetry collector with analytics built in.
/// OTLP in (gRPC :4317, HTTP :4318), Prometheus /metrics out (:9464).
#[derive(Parser, Debug)]
#[command(name = "streamgate", version, about)]
struct Cli {
    /// Config file (YAML). Without it, the embedded default is used.
    #[arg(long, short, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the collector (the default).
    Run,
    /// Check a config file and exit: 0 if valid, 2 with the reason if not.
    Validate,
    /// Print the embedded default config, with every key documented.
    PrintConfig,
    /// Run the analytics over recorded CSV series (`timestamp,value`) and
    /// write per-row baselines, anomaly scores and forecasts.
    Backtest {
        /// A CSV file, or a directory searched recursively for *.csv.
        #[arg(long, value_name = "PATH")]
        input: PathBuf,
        /// Where to write the outputs (same relative paths as the inputs).
        #[arg(long, value_name = "DIR")]
        output: PathBuf,
        /// Also write an SVG chart beside each output (value, expected
        /// value, band, anomaly marks, forecast) and an index.html.
        #[arg(long)]
        plot: bool,
    },
    /// Send OTLP load (metrics, spans or logs over gRPC or HTTP) to a
    /// receiver on this machine and report the achieved rate, refusals
    /// and latency percentiles.
    Loadgen(streamgate::loadgen::LoadgenArgs),
    /// GET a health endpoint once (for container health checks): exit 0
    /// on a 2xx answer, 1 otherwise, 2 for a URL or configuration that
    /// cannot be used.
    Healthcheck {
        /// The endpoint to GET (http:// or https://); without it,
        /// `/readyz` on the config's `server.endpoint` (https when
        /// `server.tls` is set; a wildcard address is asked on loopback).
        #[arg(long)]
        url: Option<String>,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
}

/// `eprintln!` that cannot panic: a closed stderr (a log pipe whose
/// reader died) must not turn an exit code into a panic.
macro_rules! say_err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `println!` that cannot panic on a closed stdout.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::PrintConfig => {
            use std::io::Write as _;
            if let Some(path) = &cli.config {
                say_err!(
                    "note: print-config prints the embedded default, not {}; `streamgate --config {} validate` checks that file",
                    path.display(),
                    path.display()
                );
            }
            let _ = std::io::stdout().write_all(DEFAULT_YAML.as_bytes());
            ExitCode::SUCCESS
        }
        Command::Backtest {
            input,
            output,
            plot,
        } => {
            let config = match load_config(cli.config.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    say_err!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            // The very settings the collector uses (processors.analysis).
            let baseline = config.analysis.anomaly.baseline();
            let forecasts = config.analysis.forecasts();
            match streamgate::backtest::batch::run(&input, &output, &baseline, &forecasts, plot) {
                Ok(summary) => {
                    use std::io::Write as _;
                    let report = streamgate::backtest::batch::report(&summary);
                    let _ = std::io::stdout().write_all(report.as_bytes());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    say_err!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Loadgen(mut args) => {
            // With a config, its OTLP receiver is the default target.
            if let Some(path) = cli.config.as_deref() {
                match load_config(Some(path)) {
                    Ok(config) => args.default_endpoint_from(&config),
                    Err(e) => {
                        say_err!("error: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
            loadgen(args)
        }
        Command::Healthcheck { url, timeout } => {
            let url = match url {
                Some(url) => url,
                None => match load_config(cli.config.as_deref()) {
                    Ok(config) => app::probe::readyz_url(&config.server),
                    Err(e) => {
                        say_err!("error: {e}");
                        return ExitCode::from(2);
                    }
                },
            };
            match app::probe::probe(&url, std::time::Duration::from_secs(timeout)) {
                Ok(status) => {
                    say!("{url}: {status}");
                    ExitCode::SUCCESS
                }
                // A URL that cannot be asked is a usage error, as a bad
                // configuration is: the probe never ran.
                Err(e @ app::probe::ProbeError::Url(_)) => {
                    say_err!("error: {e}");
                    ExitCode::from(2)
                }
                Err(e) => {
                    say_err!("unhealthy: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Validate => match load_config(cli.config.as_deref())
            .map_err(anyhow::Error::from)
            .and_then(|config| {
                app::check_files(&config)
                    .map(|_| config)
                    .map_err(anyhow::Error::from)
            })
            .and_then(|config| {
                config
                    .runtime
                    .workers_from_env()
                    .map_err(anyhow::Error::msg)?;
                LoggingConfig::env_override().map_err(anyhow::Error::msg)
            }) {
            Ok(_) => {
                let name = cli
                    .config
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "embedded default".into());
                say!("{name}: valid");
                ExitCode::SUCCESS
            }
            Err(e) => {
                say_err!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Run => {
            let config = match load_config(cli.config.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    say_err!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let workers = match config.runtime.workers_from_env() {
                Ok(w) => w,
                Err(e) => {
                    say_err!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let filter = match LoggingConfig::env_override() {
                Ok(filter) => filter.unwrap_or_else(|| config.logging.level.clone()),
                Err(e) => {
                    say_err!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            init_logging(&filter, config.logging.format);
            match run(config, cli.config.as_deref(), workers) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    let text = error_chain(&e);
                    tracing::error!("{text}");
                    say_err!("error: {text}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// An error and its causes, each said once: a message that already
/// quotes its cause (`…: {source}`) is not followed by it again.
fn error_chain(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn load_config(path: Option<&std::path::Path>) -> Result<Config, streamgate::config::ConfigError> {
    match path {
        Some(p) => Config::load(p),
        None => Config::embedded_default(),
    }
}

/// Logs to stderr through `filter` (checked: `RUST_LOG` or
/// `logging.level`). A log line that cannot be written (stderr closed) is
/// lost quietly: reporting it would write to stderr again.
fn init_logging(filter: &str, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    // pprof-rs logs each profile's start and stop at info: one line
    // per window of continuous profiling, unless asked for by name.
    let filter = if filter.contains("pprof") {
        filter.to_string()
    } else {
        format!("{filter},pprof=warn")
    };
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Runs the collector until a signal, on `workers` runtime threads
/// (`None`: one per CPU); SIGHUP checks the file at `path` again.
fn run(
    config: Config,
    path: Option<&std::path::Path>,
    workers: Option<usize>,
) -> anyhow::Result<()> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().thread_name("streamgate");
    if let Some(workers) = workers {
        builder.worker_threads(workers);
    }
    let runtime = builder
        .build()
        .context("cannot start the async runtime (runtime.worker_threads, TOKIO_WORKER_THREADS)")?;
    let worker_threads = runtime.metrics().num_workers();
    let running_config = config.clone();
    runtime.block_on(async {
        let running = App::build(config).start().await?;
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            worker_threads,
            "StreamGate started"
        );
        app::wait_for_signal(|| app::hangup::report(path, &running_config)).await;
        running.shutdown().await?;
        tracing::info!("StreamGate stopped");
        Ok(())
    })
}

/// `streamgate loadgen`: progress lines on stderr, the summary on stdout.
fn loadgen(args: streamgate::loadgen::LoadgenArgs) -> ExitCode {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    match streamgate::config::RuntimeConfig::default().workers_from_env() {
        Ok(Some(workers)) => {
            builder.worker_threads(workers);
        }
        Ok(None) => {}
        Err(e) => {
            say_err!("error: {e}");
            return ExitCode::from(2);
        }
    }
    let runtime = match builder.build() {
        Ok(r) => r,
        Err(e) => {
            say_err!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let mut args = args;
    if let Some(warning) = args.fit_batch_to_rate() {
        say_err!("warning: {warning}");
    }
    for warning in args.warnings() {
        say_err!("warning: {warning}");
    }
    let mut bar = streamgate::progress::Progress::new(args.duration.get().as_secs_f64());
    let mut last = None;
    let outcome = runtime.block_on(streamgate::loadgen::run(&args, |t| {
        bar.update(
            t.elapsed_secs,
            &format!("{:.0} items/s", t.rate()),
            &t.detail(),
        );
        last = Some(t);
    }));
    if let Some(t) = last {
        bar.finish(&format!("{:.0} items/s", t.rate()), &t.detail());
    }
    match outcome {
        Ok(summary) => {
            if args.json {
                match serde_json::to_string_pretty(&summary) {
                    Ok(text) => say!("{text}"),
                    Err(e) => {
                        say_err!("error: {e}");
                        return ExitCode::from(1);
                    }
                }
            } else {
                print!("{}", streamgate::loadgen::report(&summary));
            }
            ExitCode::SUCCESS
        }
        Err(e @ streamgate::loadgen::LoadgenError::Invalid(_))
        | Err(e @ streamgate::loadgen::LoadgenError::Endpoint(_)) => {
            say_err!("error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            say_err!("error: {e}");
            ExitCode::from(1)
        }
    }
}
