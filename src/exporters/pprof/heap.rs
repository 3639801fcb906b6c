//! Heap profiles: the memory in use, by allocating call stack, from
//! jemalloc's sampling profiler (one allocation sampled per
//! `heap_sample_bytes` allocated on average), symbolised in process and
//! rendered as a gzipped pprof (`inuse_space`, bytes) or a flame graph.
//!
//! Available when the running binary's allocator is jemalloc started with
//! `prof:true` (the `streamgate` binary sets that in `main.rs`); in any
//! other process every call answers [`PprofError::Unavailable`].

use super::PprofError;
use super::cpu::Format;

/// Why heap profiling is off in this process.
const UNAVAILABLE: &str = "heap profiling is not available in this process: its allocator is not jemalloc started with prof:true";

/// Sets the sampling interval and turns the sampler on or off, once at
/// start (changing the interval discards the samples taken so far).
pub fn configure(enabled: bool, sample_bytes: u64) -> Result<(), PprofError> {
    let Some(ctl) = jemalloc_pprof::PROF_CTL.as_ref() else {
        return Ok(());
    };
    // Called once at start, before anyone can ask for a profile.
    let mut ctl = ctl
        .try_lock()
        .map_err(|_| PprofError::Profiler("the heap profiler is busy".into()))?;
    if !enabled {
        return ctl
            .deactivate()
            .map_err(|e| PprofError::Profiler(format!("turning the heap profiler off: {e}")));
    }
    let lg = sample_bytes.max(1).trailing_zeros() as usize;
    if ctl.lg_sample() != lg {
        // SAFETY: "prof.reset" is a documented writable size_t control:
        // it clears the samples and sets the sampling interval to 2^lg.
        unsafe { tikv_jemalloc_ctl::raw::write(b"prof.reset\0", lg) }.map_err(|e| {
            PprofError::Profiler(format!("setting the heap sampling interval: {e}"))
        })?;
    }
    ctl.activate()
        .map_err(|e| PprofError::Profiler(format!("turning the heap profiler on: {e}")))
}

/// Whether heap profiles can be taken here (a profile being taken right
/// now counts as yes). Does not block.
pub fn available() -> bool {
    jemalloc_pprof::PROF_CTL
        .as_ref()
        .is_some_and(|ctl| ctl.try_lock().map(|c| c.activated()).unwrap_or(true))
}

/// The heap in use now, sampled. Blocking (it writes jemalloc's dump to a
/// temporary file and symbolises it): call from a blocking thread.
pub fn profile(format: Format) -> Result<Vec<u8>, PprofError> {
    let ctl = jemalloc_pprof::PROF_CTL
        .as_ref()
        .ok_or_else(|| PprofError::Unavailable(UNAVAILABLE.into()))?;
    let mut ctl = ctl.blocking_lock();
    if !ctl.activated() {
        return Err(PprofError::Unavailable(
            "the heap profiler is off (exporters.pprof.enabled is false)".into(),
        ));
    }
    let rendered = match format {
        Format::Pprof => ctl.dump_pprof(),
        Format::Flamegraph => ctl.dump_flamegraph(),
    };
    rendered.map_err(|e| PprofError::Profiler(format!("heap profile: {e}")))
}
