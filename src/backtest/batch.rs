//! The whole backtest: every input file through a fresh model, outputs
//! written under the output directory with the same relative paths, a
//! summary across files, charts and an index with `--plot`, and progress
//! on stderr (`crate::progress`: a bar with rate and ETA on a terminal,
//! plain lines otherwise).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::input::{self, InputError};
use super::model::AnalyticsModel;
use super::runner::{self, HorizonScore};
use crate::analytics::baselines::BaselineConfig;
use crate::analytics::forecasts::ForecastConfig;

/// Why a backtest failed.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("cannot write {path}: {source}")]
    Output {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{input} would be overwritten by its own output; choose an --output directory that is not the input's"
    )]
    WouldOverwrite { input: String },
}

/// Whether writing `target` would replace the input file `input` (the
/// same file reached by two paths).
fn same_file(input: &Path, target: &Path) -> bool {
    match (std::fs::canonicalize(input), std::fs::canonicalize(target)) {
        (Ok(a), Ok(b)) => a == b,
        // A target that does not exist yet is not the input.
        _ => false,
    }
}

/// Scores of one horizon over all files.
#[derive(Debug, Clone, Default)]
pub struct HorizonSummary {
    pub label: String,
    pub checked: u64,
    /// Geometric mean over files of MAE / naive MAE.
    pub relative_mae_geomean: Option<f64>,
    /// Outcomes inside the interval, over all files.
    pub coverage: Option<f64>,
}

/// What the backtest did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub files: usize,
    pub rows: u64,
    pub seconds: f64,
    pub horizons: Vec<HorizonSummary>,
}

impl Summary {
    pub fn points_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.rows as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Runs the backtest from `input` (file or directory) into `output`; with
/// `plot`, an SVG chart beside each output and an `index.html`.
pub fn run(
    input: &Path,
    output: &Path,
    baseline: &BaselineConfig,
    forecasts: &ForecastConfig,
    plot: bool,
) -> Result<Summary, BacktestError> {
    let mut plotted = Vec::new();
    let files = input::discover(input, Some(output))?;
    // Checked for every file before any is written.
    if let Some((path, _)) = files
        .iter()
        .find(|(path, relative)| same_file(path, &output.join(relative)))
    {
        return Err(BacktestError::WouldOverwrite {
            input: path.display().to_string(),
        });
    }
    let started = Instant::now();
    let mut progress = crate::progress::Progress::new(files.len() as f64);
    let mut summary = Summary {
        files: files.len(),
        ..Default::default()
    };
    let mut per_file: Vec<Vec<HorizonScore>> = Vec::new();
    for (n, (path, relative)) in files.iter().enumerate() {
        let series = input::read(path)?;
        let rows = &series.rows;
        let target: PathBuf = output.join(relative);
        let write_err = |source| BacktestError::Output {
            path: target.display().to_string(),
            source,
        };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(write_err)?;
        }
        let file = std::fs::File::create(&target).map_err(write_err)?;
        let mut out = BufWriter::with_capacity(1 << 16, file);
        let mut model = AnalyticsModel::new(baseline.clone(), forecasts.clone());
        let horizons = model.horizons().to_vec();
        let scores = runner::run(&series, &mut model, &horizons, &mut out).map_err(write_err)?;
        out.flush().map_err(write_err)?;
        summary.rows += rows.len() as u64;
        per_file.push(scores);
        if plot {
            let svg = target.with_extension("svg");
            let (count, anomalies) =
                super::plot::plot_file(&series, &target, &svg, &relative.display().to_string())
                    .map_err(|source| BacktestError::Output {
                        path: svg.display().to_string(),
                        source,
                    })?;
            plotted.push(super::plot::Plotted {
                svg: relative.with_extension("svg"),
                csv: relative.clone(),
                rows: count,
                anomalies,
            });
        }
        let rate = summary.rows as f64 / started.elapsed().as_secs_f64().max(1e-9);
        progress.update(
            (n + 1) as f64,
            &format!("{:.0} points/s", rate),
            &format!(
                "{}/{} files, {} ({} rows)",
                n + 1,
                files.len(),
                relative.display(),
                rows.len()
            ),
        );
    }
    progress.finish(
        &format!(
            "{:.0} points/s",
            summary.rows as f64 / started.elapsed().as_secs_f64().max(1e-9)
        ),
        &format!("{} files, {} points", files.len(), summary.rows),
    );
    summary.seconds = started.elapsed().as_secs_f64();
    summary.horizons = summarise(&per_file);
    if plot {
        super::plot::write_index(output, &plotted, &summary).map_err(|source| {
            BacktestError::Output {
                path: output.join("index.html").display().to_string(),
                source,
            }
        })?;
    }
    Ok(summary)
}

fn summarise(per_file: &[Vec<HorizonScore>]) -> Vec<HorizonSummary> {
    let Some(first) = per_file.first() else {
        return Vec::new();
    };
    (0..first.len())
        .map(|h| {
            let mut log_sum = 0.0;
            let mut files = 0;
            let mut checked = 0;
            let (mut covered, mut with_interval) = (0u64, 0u64);
            for scores in per_file {
                let s = &scores[h];
                checked += s.checked;
                covered += s.covered;
                with_interval += s.with_interval;
                if let Some(r) = s.relative_mae().filter(|r| *r > 0.0) {
                    log_sum += r.ln();
                    files += 1;
                }
            }
            HorizonSummary {
                label: first[h].label.clone(),
                checked,
                relative_mae_geomean: (files > 0).then(|| (log_sum / files as f64).exp()),
                coverage: (with_interval > 0).then(|| covered as f64 / with_interval as f64),
            }
        })
        .collect()
}

/// The summary as printed by the CLI.
pub fn report(summary: &Summary) -> String {
    let mut text = format!(
        "{} files, {} points in {:.2}s ({:.0} points/s)\n",
        summary.files,
        summary.rows,
        summary.seconds,
        summary.points_per_second()
    );
    text.push_str("horizon  forecasts  MAE/naive (geo. mean)  interval coverage\n");
    for h in &summary.horizons {
        let mae = h
            .relative_mae_geomean
            .map(|v| format!("{v:.3}"))
            .unwrap_or_else(|| "-".into());
        let cov = h
            .coverage
            .map(|v| format!("{:.1}%", v * 100.0))
            .unwrap_or_else(|| "-".into());
        text.push_str(&format!(
            "{:<8} {:>9}  {:>21}  {:>17}\n",
            h.label, h.checked, mae, cov
        ));
    }
    text
}
