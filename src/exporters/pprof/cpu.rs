//! One CPU profile of the whole process: sampled with `SIGPROF` at the
//! configured frequency for the requested time (pprof-rs), symbolised in
//! process, and returned as a gzipped pprof protobuf or a flame graph SVG.
//! The sampling runs on a blocking thread, so no async worker sleeps.

use std::io::Write as _;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use pprof::protos::Message as _;

use super::PprofError;

/// What a profile is rendered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `profile.proto`, gzipped, as `go tool pprof` reads it.
    Pprof,
    /// An SVG flame graph.
    Flamegraph,
}

/// Frames of the profiler's own signal handling and of the C library,
/// left out of the stacks.
const BLOCKLIST: [&str; 4] = ["libc", "libgcc", "pthread", "vdso"];

/// Samples for `duration` at `frequency` Hz and renders the result.
/// Blocking: call from a blocking thread.
pub fn profile(duration: Duration, frequency: u32, format: Format) -> Result<Vec<u8>, PprofError> {
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(frequency as i32)
        .blocklist(&BLOCKLIST)
        .build()
        .map_err(|e| PprofError::Profiler(e.to_string()))?;
    std::thread::sleep(duration);
    let report = guard
        .report()
        .build()
        .map_err(|e| PprofError::Profiler(e.to_string()))?;
    drop(guard);
    match format {
        Format::Flamegraph => {
            let mut svg = Vec::new();
            if report.data.is_empty() {
                // An idle process: nothing to draw, say so.
                svg.extend_from_slice(
                    format!(
                        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"40\"><text x=\"10\" y=\"25\">No CPU samples in {} s: StreamGate was idle.</text></svg>\n",
                        duration.as_secs()
                    )
                    .as_bytes(),
                );
                return Ok(svg);
            }
            report
                .flamegraph(&mut svg)
                .map_err(|e| PprofError::Profiler(e.to_string()))?;
            Ok(svg)
        }
        Format::Pprof => {
            let profile = report
                .pprof()
                .map_err(|e| PprofError::Profiler(e.to_string()))?;
            let mut raw = Vec::new();
            profile
                .encode(&mut raw)
                .map_err(|e| PprofError::Profiler(e.to_string()))?;
            let mut gz = GzEncoder::new(Vec::new(), Compression::default());
            gz.write_all(&raw)
                .and_then(|_| gz.finish())
                .map_err(|e| PprofError::Profiler(e.to_string()))
        }
    }
}
