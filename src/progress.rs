//! Progress of long-running commands (`backtest`, `loadgen`) on stderr: on
//! a terminal, one line redrawn in place with a bar, the rate and the time
//! left; otherwise (CI logs, pipes) plain lines, at most one every
//! `PLAIN_EVERY`, so logs stay readable. Imports nothing of ours.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Shortest time between two plain lines.
const PLAIN_EVERY: Duration = Duration::from_secs(1);
const BAR_WIDTH: usize = 24;

/// A progress display towards `total` units of work.
pub struct Progress {
    terminal: bool,
    total: f64,
    started: Instant,
    last_plain: Option<Instant>,
    drawn: bool,
}

impl Progress {
    /// Shows on a terminal as a bar, elsewhere as plain lines.
    pub fn new(total: f64) -> Self {
        Self::with_terminal(total, std::io::stderr().is_terminal())
    }

    pub fn with_terminal(total: f64, terminal: bool) -> Self {
        Self {
            terminal,
            total: total.max(0.0),
            started: Instant::now(),
            last_plain: None,
            drawn: false,
        }
    }

    /// The line for `done` of the total, with `rate` (what per second,
    /// already formatted) and a detail; `None` when a plain line is not
    /// due yet (`force` makes it due).
    pub fn line(&mut self, done: f64, rate: &str, detail: &str, force: bool) -> Option<String> {
        let elapsed = self.started.elapsed().as_secs_f64();
        let fraction = if self.total > 0.0 {
            (done / self.total).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let eta = if fraction > 0.0 && fraction < 1.0 {
            format!("ETA {}", short_duration(elapsed / fraction - elapsed))
        } else if fraction >= 1.0 {
            format!("done in {}", short_duration(elapsed))
        } else {
            "ETA –".into()
        };
        if self.terminal {
            let filled = (fraction * BAR_WIDTH as f64).round() as usize;
            return Some(format!(
                "[{}{}] {:>3.0}% {rate} · {eta} · {detail}",
                "#".repeat(filled),
                "-".repeat(BAR_WIDTH - filled),
                fraction * 100.0
            ));
        }
        let now = Instant::now();
        if !force
            && self
                .last_plain
                .is_some_and(|t| now.duration_since(t) < PLAIN_EVERY)
        {
            return None;
        }
        self.last_plain = Some(now);
        Some(format!("{:.0}% {rate}, {eta}: {detail}", fraction * 100.0))
    }

    /// Shows the progress at `done`.
    pub fn update(&mut self, done: f64, rate: &str, detail: &str) {
        self.show(done, rate, detail, false);
    }

    /// Shows the work as complete and ends the redrawn line.
    pub fn finish(&mut self, rate: &str, detail: &str) {
        self.show(self.total, rate, detail, true);
        if self.terminal && self.drawn {
            let _ = writeln!(std::io::stderr());
        }
    }

    fn show(&mut self, done: f64, rate: &str, detail: &str, force: bool) {
        let Some(line) = self.line(done, rate, detail, force) else {
            return;
        };
        let mut err = std::io::stderr().lock();
        if self.terminal {
            // Clear to the end of the line: a shorter line leaves no tail.
            let _ = write!(err, "\r{line}\x1b[K");
            self.drawn = true;
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }
}

/// `1h 02m`, `3m 05s`, `42s`.
pub fn short_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h {:02}m", s / 3600, s / 60 % 60)
    } else if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terminal_gets_a_bar_and_a_log_gets_throttled_lines() {
        let mut bar = Progress::with_terminal(10.0, true);
        let line = bar.line(5.0, "100 points/s", "a.csv", false).unwrap();
        assert!(
            line.starts_with("[############------------]  50%"),
            "{line}"
        );
        assert!(line.contains("ETA") && line.contains("a.csv"), "{line}");
        let mut plain = Progress::with_terminal(4.0, false);
        let first = plain.line(1.0, "1/s", "x", false).unwrap();
        assert!(first.starts_with("25% 1/s, ETA"), "{first}");
        assert!(plain.line(2.0, "1/s", "y", false).is_none(), "throttled");
        assert!(
            plain
                .line(4.0, "1/s", "z", true)
                .unwrap()
                .contains("done in")
        );
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(short_duration(42.4), "42s");
        assert_eq!(short_duration(185.0), "3m 05s");
        assert_eq!(short_duration(3720.0), "1h 02m");
    }
}
