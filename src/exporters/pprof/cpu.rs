//! One CPU profile of the whole process: sampled with `SIGPROF` at the
//! configured frequency for the requested time (pprof-rs), symbolised in
//! process, and returned as a gzipped pprof protobuf or a flame graph SVG.
//! The sampling runs on a blocking thread, so no async worker sleeps.
//!
//! A running collector samples the same code addresses over and over: a
//! [`SymbolCache`] kept across profiles (continuous mode) resolves each
//! address once. What remains of a report's cost (about 0.1 s of CPU for
//! a busy 10 s window) is mostly pprof-rs walking its sample table.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
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

/// One source-level frame of a code address (inlined calls give several).
#[derive(Clone)]
struct ResolvedSymbol {
    name: Option<Vec<u8>>,
    lineno: Option<u32>,
    filename: Option<PathBuf>,
}

impl ResolvedSymbol {
    fn to_pprof(&self) -> pprof::Symbol {
        pprof::Symbol {
            name: self.name.clone(),
            addr: None,
            lineno: self.lineno,
            filename: self.filename.clone(),
        }
    }
}

/// Code address → its frames, kept across profiles; bounded (cleared
/// when it grows past [`SymbolCache::MAX_ADDRESSES`]).
#[derive(Default)]
pub struct SymbolCache {
    frames: HashMap<usize, Vec<ResolvedSymbol>>,
}

impl SymbolCache {
    const MAX_ADDRESSES: usize = 200_000;

    /// The frames at `address`, looked up by `lookup` (which reports each
    /// symbol it finds) the first time only.
    fn cached(
        &mut self,
        address: usize,
        lookup: impl FnOnce(&mut dyn FnMut(&backtrace::Symbol)),
    ) -> &[ResolvedSymbol] {
        if self.frames.len() >= Self::MAX_ADDRESSES {
            self.frames.clear();
        }
        self.frames.entry(address).or_insert_with(|| {
            let mut symbols = Vec::new();
            lookup(&mut |symbol| {
                symbols.push(ResolvedSymbol {
                    name: symbol.name().map(|n| n.as_bytes().to_vec()),
                    lineno: symbol.lineno(),
                    filename: symbol.filename().map(|p| p.to_path_buf()),
                })
            });
            symbols
        })
    }

    fn resolve(&mut self, frame: &backtrace::Frame) -> &[ResolvedSymbol] {
        self.cached(frame.ip() as usize, |found| {
            backtrace::resolve_frame(frame, found)
        })
    }

    /// The frames of a return address taken from a stack (not the first
    /// frame's own instruction pointer), innermost first.
    pub(super) fn resolve_return_address(&mut self, address: usize) -> Vec<pprof::Symbol> {
        // `resolve` looks up the instruction before the address, the call
        // that returns there.
        self.cached(address, |found| {
            backtrace::resolve(address as *mut std::ffi::c_void, found)
        })
        .iter()
        .map(ResolvedSymbol::to_pprof)
        .collect()
    }

    /// The report of `unresolved`, each address resolved once.
    fn symbolise(&mut self, unresolved: pprof::UnresolvedReport) -> pprof::Report {
        let mut data: HashMap<pprof::Frames, isize> = HashMap::new();
        for (stack, count) in unresolved.data {
            let mut frames = Vec::with_capacity(stack.frames.len());
            let mut addresses = stack.frames.iter();
            while let Some(frame) = addresses.next() {
                let symbols = self.resolve(frame);
                // The profiler's own signal frame and the one it interrupted
                // twice are not part of the sampled stack.
                if symbols.iter().any(|s| {
                    s.name
                        .as_deref()
                        .is_some_and(|n| n.windows(19).any(|w| w == b"perf_signal_handler"))
                }) {
                    addresses.next();
                    continue;
                }
                if !symbols.is_empty() {
                    frames.push(symbols.iter().map(ResolvedSymbol::to_pprof).collect());
                }
            }
            let key = pprof::Frames {
                frames,
                thread_name: String::from_utf8_lossy(
                    &stack.thread_name[..stack.thread_name_length],
                )
                .into_owned(),
                thread_id: stack.thread_id,
                sample_timestamp: stack.sample_timestamp,
            };
            *data.entry(key).or_insert(0) += count;
        }
        pprof::Report {
            data,
            timing: unresolved.timing,
        }
    }
}

/// How often a profile being taken looks whether it should end early.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// Samples for `duration` at `frequency` Hz, or until `stop` says so
/// (shutdown: what was sampled until then is the profile), and renders
/// the result, resolving addresses through `symbols`. Blocking: call from
/// a blocking thread.
pub fn profile(
    duration: Duration,
    frequency: u32,
    format: Format,
    symbols: &mut SymbolCache,
    stop: &dyn Fn() -> bool,
) -> Result<Vec<u8>, PprofError> {
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(frequency as i32)
        .blocklist(&BLOCKLIST)
        .build()
        .map_err(|e| PprofError::Profiler(e.to_string()))?;
    let deadline = std::time::Instant::now() + duration;
    loop {
        let now = std::time::Instant::now();
        if now >= deadline || stop() {
            break;
        }
        std::thread::sleep((deadline - now).min(STOP_CHECK));
    }
    let unresolved = guard
        .report()
        .build_unresolved()
        .map_err(|e| PprofError::Profiler(e.to_string()))?;
    drop(guard);
    let report = symbols.symbolise(unresolved);
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
        Format::Pprof => gzipped(
            &report
                .pprof()
                .map_err(|e| PprofError::Profiler(e.to_string()))?,
        ),
    }
}

/// `profile.proto`, gzipped, as `go tool pprof` and Pyroscope read it.
pub(super) fn gzipped(profile: &pprof::protos::Profile) -> Result<Vec<u8>, PprofError> {
    let mut raw = Vec::new();
    profile
        .encode(&mut raw)
        .map_err(|e| PprofError::Profiler(e.to_string()))?;
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&raw)
        .and_then(|_| gz.finish())
        .map_err(|e| PprofError::Profiler(e.to_string()))
}
