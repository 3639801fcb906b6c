//! Running a [`RowModel`] over parsed rows: writes the output CSV and
//! scores the forecasts against what happened (MAE relative to the naive
//! last-value forecast, and prediction-interval coverage).

use std::io::Write;

use super::RowModel;
use super::input::{Row, Series};

/// A forecast horizon: its length and its column label (`5m`).
#[derive(Debug, Clone, PartialEq)]
pub struct Horizon {
    pub secs: f64,
    pub label: String,
}

/// Forecast scores of one horizon.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HorizonScore {
    pub label: String,
    /// Forecasts that could be checked (the target time is in the data).
    pub checked: u64,
    pub abs_error: f64,
    pub naive_abs_error: f64,
    pub covered: u64,
    pub with_interval: u64,
}

impl HorizonScore {
    /// MAE of the model divided by MAE of the naive forecast.
    pub fn relative_mae(&self) -> Option<f64> {
        (self.checked > 0 && self.naive_abs_error > 0.0)
            .then(|| self.abs_error / self.naive_abs_error)
    }

    /// Share of outcomes inside the prediction interval.
    pub fn coverage(&self) -> Option<f64> {
        (self.with_interval > 0).then(|| self.covered as f64 / self.with_interval as f64)
    }
}

/// A forecast as made on a row: value and interval bounds.
#[derive(Debug, Clone, Copy)]
struct Made {
    value: f64,
    lower: Option<f64>,
    upper: Option<f64>,
}

/// The fixed columns before the forecasts.
pub const BASE_COLUMNS: [&str; 5] = ["expected", "lower", "upper", "anomaly_score", "anomaly"];

/// Output column names for these horizons.
pub fn columns(horizons: &[Horizon]) -> Vec<String> {
    let mut c: Vec<String> = BASE_COLUMNS.iter().map(|s| s.to_string()).collect();
    for h in horizons {
        c.push(format!("forecast_{}", h.label));
        c.push(format!("forecast_{}_lower", h.label));
        c.push(format!("forecast_{}_upper", h.label));
    }
    c
}

/// Writes one output cell. Derived values are written with single
/// precision (the shortest text that reads back as the same `f32`, about
/// 7 significant digits): far more than the models' accuracy, and half
/// the formatting cost, which dominated the backtest's run time.
fn cell(out: &mut String, v: Option<f64>) {
    out.push(',');
    if let Some(v) = v {
        // Whole numbers (counts, flags) as integers; the cast comparison
        // avoids a library `trunc` call per cell.
        let whole = v as i64;
        if v.abs() < 1e15 && whole as f64 == v {
            out.push_str(itoa::Buffer::new().format(whole));
        } else if v.is_finite() && v.abs() < f32::MAX as f64 {
            out.push_str(zmij::Buffer::new().format_finite(v as f32));
        } else {
            out.push_str(zmij::Buffer::new().format(v));
        }
    }
}

/// Runs `model` over `rows`, writing `timestamp,value,<columns>` rows to
/// `out`, and returns the per-horizon scores.
pub fn run(
    series: &Series,
    model: &mut dyn RowModel,
    horizons: &[Horizon],
    out: &mut dyn Write,
) -> std::io::Result<Vec<HorizonScore>> {
    let names = model.columns();
    let mut line = String::with_capacity(256);
    line.push_str("timestamp,value");
    for n in &names {
        line.push(',');
        line.push_str(n);
    }
    line.push('\n');
    out.write_all(line.as_bytes())?;
    let mut cells: Vec<Option<f64>> = Vec::with_capacity(names.len());
    // Forecasts made so far: row i, horizon h at `i * horizons.len() + h`.
    let rows = &series.rows;
    let mut made: Vec<Option<Made>> = Vec::with_capacity(rows.len() * horizons.len());
    for row in rows {
        cells.clear();
        model.update(row.time_secs, row.value, &mut cells);
        cells.resize(names.len(), None);
        line.clear();
        line.push_str(series.timestamp_text(row));
        line.push(',');
        line.push_str(series.value_text(row));
        for c in &cells {
            cell(&mut line, *c);
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
        made.extend((0..horizons.len()).map(|h| {
            let base = BASE_COLUMNS.len() + 3 * h;
            cells.get(base).copied().flatten().map(|value| Made {
                value,
                lower: cells.get(base + 1).copied().flatten(),
                upper: cells.get(base + 2).copied().flatten(),
            })
        }));
    }
    Ok(score(rows, &made, horizons))
}

/// Compares each forecast with the value at its target time (exactly
/// that timestamp, as in regularly sampled data) and with the naive
/// forecast (the value when it was made).
fn score(rows: &[Row], made: &[Option<Made>], horizons: &[Horizon]) -> Vec<HorizonScore> {
    let mut scores: Vec<HorizonScore> = horizons
        .iter()
        .map(|h| HorizonScore {
            label: h.label.clone(),
            ..Default::default()
        })
        .collect();
    for (h, horizon) in horizons.iter().enumerate() {
        let mut target = 0;
        for (i, row) in rows.iter().enumerate() {
            let Some(Made {
                value: forecast,
                lower,
                upper,
            }) = made[i * horizons.len() + h]
            else {
                continue;
            };
            let Some(now) = row.value else { continue };
            let at = row.time_secs + horizon.secs;
            target = target.max(i);
            while target < rows.len() && rows[target].time_secs < at - 1e-6 {
                target += 1;
            }
            let Some(actual) = rows
                .get(target)
                .filter(|r| (r.time_secs - at).abs() < 1e-6)
                .and_then(|r| r.value)
            else {
                continue;
            };
            let s = &mut scores[h];
            s.checked += 1;
            s.abs_error += (forecast - actual).abs();
            s.naive_abs_error += (now - actual).abs();
            if let (Some(lo), Some(hi)) = (lower, upper) {
                s.with_interval += 1;
                s.covered += u64::from(lo <= actual && actual <= hi);
            }
        }
    }
    scores
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backtest::input::parse;

    /// Forecasts "value + 1" with interval ±1.5, no baseline.
    struct PlusOne(Vec<Horizon>);

    impl RowModel for PlusOne {
        fn columns(&self) -> Vec<String> {
            columns(&self.0)
        }
        fn update(&mut self, _: f64, value: Option<f64>, out: &mut Vec<Option<f64>>) {
            out.extend([None, None, None, None, None]);
            for _ in &self.0 {
                let f = value.map(|v| v + 1.0);
                out.extend([f, f.map(|f| f - 1.5), f.map(|f| f + 1.5)]);
            }
        }
    }

    #[test]
    fn writes_rows_and_scores_against_naive() {
        // A ramp of +1 per step: "+1 per horizon step" is perfect at 1 step.
        let csv = "timestamp,value\n0,0\n300,1\n600,2\n900,3\n,\n";
        let rows = parse(csv.replace(",\n", ""), "ramp.csv").unwrap();
        let horizons = vec![
            Horizon {
                secs: 300.0,
                label: "5m".into(),
            },
            Horizon {
                secs: 900.0,
                label: "15m".into(),
            },
        ];
        let mut model = PlusOne(horizons.clone());
        let mut out = Vec::new();
        let scores = run(&rows, &mut model, &horizons, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "timestamp,value,expected,lower,upper,anomaly_score,anomaly,forecast_5m,forecast_5m_lower,forecast_5m_upper,forecast_15m,forecast_15m_lower,forecast_15m_upper"
        );
        assert_eq!(lines[1], "0,0,,,,,,1,-0.5,2.5,1,-0.5,2.5");
        assert_eq!(lines.len(), 5);
        // 5m: 3 checked, zero error, naive error 1 each.
        assert_eq!(scores[0].checked, 3);
        assert_eq!(scores[0].relative_mae(), Some(0.0));
        assert_eq!(scores[0].coverage(), Some(1.0));
        // 15m: one checked (0 → 3): error 2, naive 3.
        assert_eq!(scores[1].checked, 1);
        assert!((scores[1].relative_mae().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(scores[1].coverage(), Some(0.0));
    }
}
