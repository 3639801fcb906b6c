//! Black-box tests of `streamgate backtest`: inputs found recursively,
//! one output row per input row under the same relative path, the
//! documented columns, a summary with relative MAE and coverage per
//! horizon, and clear errors for bad input.

use std::process::Command;

fn backtest(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .arg("backtest")
        .args(args)
        .output()
        .expect("run streamgate backtest")
}

/// A noisy daily sine sampled every 5 minutes for 4 days, with a spike.
fn series() -> String {
    let mut csv = String::from("timestamp,value\n");
    let mut state = 12345u64;
    for i in 0..(4 * 288) {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let noise = ((state >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 2.0;
        let t = 1_700_000_000 + i * 300;
        let day = (i % 288) as f64 / 288.0 * std::f64::consts::TAU;
        let mut v = 50.0 + 20.0 * day.sin() + noise;
        if i == 900 {
            v += 80.0;
        }
        csv.push_str(&format!("{t},{v:.3}\n"));
    }
    csv
}

/// Outputs mirror the inputs' relative paths and rows; the summary names
/// each horizon with its relative MAE and coverage; a gap row stays empty.
#[test]
fn writes_outputs_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(input.join("nested")).unwrap();
    let mut with_gap = series();
    with_gap.push_str("1700345600,\n");
    std::fs::write(input.join("nested/a.csv"), &with_gap).unwrap();
    std::fs::write(input.join("b.csv"), series()).unwrap();
    let output = dir.path().join("out");
    let out = backtest(&[
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("2 files"), "{summary}");
    for h in ["5m", "15m", "1h"] {
        assert!(
            summary.lines().any(|l| l.starts_with(h) && l.contains('%')),
            "{summary}"
        );
    }
    let a = std::fs::read_to_string(output.join("nested/a.csv")).unwrap();
    let lines: Vec<&str> = a.lines().collect();
    assert_eq!(lines.len(), with_gap.lines().count());
    assert_eq!(
        lines[0],
        "timestamp,value,expected,lower,upper,anomaly_score,anomaly,forecast_5m,forecast_5m_lower,forecast_5m_upper,forecast_15m,forecast_15m_lower,forecast_15m_upper,forecast_1h,forecast_1h_lower,forecast_1h_upper"
    );
    // Every row keeps its timestamp and value, and has all 16 cells.
    for (out_line, in_line) in lines.iter().zip(with_gap.lines()).skip(1) {
        assert!(out_line.starts_with(in_line), "{out_line} vs {in_line}");
        assert_eq!(out_line.split(',').count(), 16, "{out_line}");
    }
    // Past warm-up the baseline and forecasts are filled; the gap row is not.
    let late: Vec<&str> = lines[1000].split(',').collect();
    assert!(late[2..].iter().all(|c| !c.is_empty()), "{}", lines[1000]);
    assert!(
        lines.last().unwrap().ends_with(",,,,,,,,,,,,,,"),
        "{}",
        lines.last().unwrap()
    );
    // The spike row is scored high.
    let spike: Vec<&str> = lines[901].split(',').collect();
    let score: f64 = spike[5].parse().unwrap();
    assert!(score > 0.9, "spike scored {score}: {}", lines[901]);
    assert!(output.join("b.csv").exists());
}

/// `--plot` writes a standalone SVG beside each output, with the spike
/// marked, and an index.html linking every chart with the summary.
#[test]
fn plot_writes_charts_and_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(input.join("nested")).unwrap();
    std::fs::write(input.join("nested/a.csv"), series()).unwrap();
    std::fs::write(input.join("b c.csv"), series()).unwrap();
    let output = dir.path().join("out");
    let out = backtest(&[
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--plot",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for svg in ["nested/a.svg", "b c.svg"] {
        let text = std::fs::read_to_string(output.join(svg)).expect(svg);
        assert!(text.starts_with("<?xml"), "{svg}");
        assert!(
            text.contains(r#"<svg xmlns="http://www.w3.org/2000/svg""#),
            "{svg}"
        );
        assert!(text.trim_end().ends_with("</svg>"), "{svg}");
        assert!(text.contains("<style>"), "{svg}: styled on its own");
        assert!(text.contains(r#"class="line value""#), "{svg}");
        assert!(text.contains(r#"class="line expected""#), "{svg}");
        assert!(text.contains(r#"class="band""#), "{svg}");
        assert!(text.contains(r#"class="line forecast""#), "{svg}");
        assert!(
            text.contains("<circle class=\"mark\""),
            "{svg}: the spike is marked"
        );
        assert_eq!(text.matches("<svg").count(), 1);
    }
    let index = std::fs::read_to_string(output.join("index.html")).unwrap();
    assert!(index.contains(r#"<img src="nested/a.svg""#), "{index}");
    assert!(index.contains(r#"<img src="b%20c.svg""#), "{index}");
    assert!(index.contains(r#"href="b%20c.csv""#), "{index}");
    for h in ["5m", "15m", "1h"] {
        assert!(
            index.contains(&format!(r#"<th scope="row">{h}</th>"#)),
            "{index}"
        );
    }
    // Without --plot, no charts.
    let plain = dir.path().join("plain");
    let out = backtest(&[
        "--input",
        input.to_str().unwrap(),
        "--output",
        plain.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert!(!plain.join("index.html").exists() && !plain.join("nested/a.svg").exists());
}

/// A bad row is an error naming the file and line, with exit code 1.
#[test]
fn bad_input_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bad.csv");
    std::fs::write(&input, "timestamp,value\n2024-01-01 00:00:00,1\nsoon,2\n").unwrap();
    let out = backtest(&[
        "--input",
        input.to_str().unwrap(),
        "--output",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.csv:3:") && err.contains("timestamp"),
        "{err}"
    );
}

/// An output directory that is the input's is refused before anything is
/// written (the inputs stay as they were); one inside the input is not
/// read back as input on the next run.
#[test]
fn output_never_replaces_or_rereads_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let original = series();
    std::fs::write(data.join("s.csv"), &original).unwrap();
    let out = backtest(&[
        "--input",
        data.to_str().unwrap(),
        "--output",
        data.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("would be overwritten"), "{err}");
    assert_eq!(
        std::fs::read_to_string(data.join("s.csv")).unwrap(),
        original
    );

    let inner = data.join("out");
    for _ in 0..2 {
        let out = backtest(&[
            "--input",
            data.to_str().unwrap(),
            "--output",
            inner.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{out:?}");
    }
    assert!(inner.join("s.csv").is_file());
    assert!(!inner.join("out").exists(), "the output was read as input");
}

/// `--config` sets the horizons as `processors.analysis.horizons` does for
/// the collector, and the band width from `processors.analysis.anomaly`.
#[test]
fn config_sets_the_horizons() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("s.csv");
    std::fs::write(&input, series()).unwrap();
    let config = dir.path().join("c.yaml");
    std::fs::write(
        &config,
        "processors:\n  analysis:\n    horizons: [10m, 2h]\n    anomaly: {band: 1.5}\n",
    )
    .unwrap();
    let output = dir.path().join("out");
    let out = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args(["--config", config.to_str().unwrap(), "backtest", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(output.join("s.csv")).unwrap();
    let header = text.lines().next().unwrap();
    assert!(header.ends_with(",forecast_10m,forecast_10m_lower,forecast_10m_upper,forecast_2h,forecast_2h_lower,forecast_2h_upper"), "{header}");
    // The band is expected ± 1.5 σ: half of the default 3 σ.
    let narrow = band_widths(&text);
    let default_output = dir.path().join("default");
    let out_default = backtest(&[
        "--input",
        input.to_str().unwrap(),
        "--output",
        default_output.to_str().unwrap(),
    ]);
    assert!(out_default.status.success());
    let wide = band_widths(&std::fs::read_to_string(default_output.join("s.csv")).unwrap());
    assert_eq!(narrow.len(), wide.len());
    assert!(!narrow.is_empty());
    for (n, w) in narrow.iter().zip(&wide) {
        assert!((n * 2.0 - w).abs() <= 1e-4 * w.abs().max(1.0), "{n} vs {w}");
    }
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.lines().any(|l| l.starts_with("10m")), "{summary}");
    assert!(summary.lines().any(|l| l.starts_with("2h")), "{summary}");
}

/// `upper − lower` of every row that has a band.
fn band_widths(csv: &str) -> Vec<f64> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (lo, hi) = (col("lower"), col("upper"));
    lines
        .filter_map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            Some(cells[hi].parse::<f64>().ok()? - cells[lo].parse::<f64>().ok()?)
        })
        .collect()
}

/// `scripts/nab-score` scores backtest output as NAB does: a flag at the
/// start of the only window is perfect (100), and the sweep of the score
/// column finds the threshold that keeps the false positive out.
#[test]
fn nab_score_script_scores_flags_and_sweeps_the_score_column() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(out.join("cat")).unwrap();
    let mut csv = String::from("timestamp,value,anomaly_score,anomaly\n");
    for i in 0..100 {
        let (score, flag) = match i {
            50 => ("0.99", "1"),
            80 => ("0.97", "0"),
            _ => ("0.1", "0"),
        };
        csv.push_str(&format!("{},1,{score},{flag}\n", 1_400_000_000 + i * 300));
    }
    std::fs::write(out.join("cat/a.csv"), csv).unwrap();
    let window = |i: i64| chrono_like(1_400_000_000 + i * 300);
    std::fs::write(
        dir.path().join("windows.json"),
        format!(
            "{{\"cat/a.csv\": [[\"{}\", \"{}\"]]}}",
            window(50),
            window(59)
        ),
    )
    .unwrap();
    let result = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/nab-score"))
        .arg(&out)
        .arg(dir.path().join("windows.json"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(text.contains("windows 1"), "{text}");
    assert!(text.contains("flags (anomaly column): 100.0"), "{text}");
    // Threshold 0.99 catches the window alone; 0.97 would add a false
    // positive right after it.
    assert!(
        text.contains("score (anomaly_score column) at best threshold 0.99: 100.0"),
        "{text}"
    );
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of Unix seconds.
fn chrono_like(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
