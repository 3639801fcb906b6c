//! Heap profiles: the memory in use, by allocating call stack, from
//! jemalloc's sampling profiler (one allocation sampled per
//! `heap_sample_bytes` allocated on average), symbolised in process and
//! rendered as a gzipped pprof (`inuse_space`, bytes) or a flame graph.
//!
//! jemalloc's dump is read by jemalloc_pprof; the stacks are symbolised
//! here the way CPU profiles are (same symboliser, so functions carry
//! their full paths, `streamgate::…`, where the binary's symbols give it),
//! with the allocator's own frames taken off the top, and encoded with
//! pprof-rs, retyped as `inuse_space` in bytes.
//!
//! Available when the running binary's allocator is jemalloc started with
//! `prof:true` (the `streamgate` binary sets that in `main.rs`); in any
//! other process every call answers [`PprofError::Unavailable`].

use super::PprofError;
use super::cpu::{Format, SymbolCache, gzipped};

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
    let sample_bytes = 1u64 << ctl.lg_sample();
    let stacks = ctl
        .dump_profile()
        .map_err(|e| PprofError::Profiler(format!("heap profile: {e}")))?;
    drop(ctl);
    let report = to_report(&stacks, &mut SymbolCache::default());
    match format {
        Format::Flamegraph => {
            let mut svg = Vec::new();
            let mut options = pprof::flamegraph::Options::default();
            options.title = "Heap in use".into();
            options.count_name = "bytes".into();
            report
                .flamegraph_with_options(&mut svg, &mut options)
                .map_err(|e| PprofError::Profiler(e.to_string()))?;
            Ok(svg)
        }
        Format::Pprof => {
            let mut profile = report
                .pprof()
                .map_err(|e| PprofError::Profiler(e.to_string()))?;
            retype_as_inuse_space(&mut profile, sample_bytes);
            gzipped(&profile)
        }
    }
}

/// Whether a frame is the allocator's own (jemalloc, its Rust wrapper or
/// Rust's allocation shims), not the code that allocated.
fn is_allocator_frame(frame: &[pprof::Symbol]) -> bool {
    frame.iter().any(|symbol| {
        let name = symbol.name();
        name.starts_with("_rjem_")
            || name.starts_with("prof_")
            || name.starts_with("__rust_")
            || name.starts_with("__rg_")
            || name.starts_with("tikv_jemallocator::")
            || name.starts_with("<tikv_jemallocator::")
            || symbol
                .filename
                .as_deref()
                .is_some_and(|f| f.to_string_lossy().contains("tikv-jemalloc"))
    })
}

/// jemalloc's stacks (root first, bytes as weight) as a pprof-rs report
/// whose counts are bytes.
fn to_report(stacks: &jemalloc_pprof::StackProfile, symbols: &mut SymbolCache) -> pprof::Report {
    let mut data: std::collections::HashMap<pprof::Frames, isize> = Default::default();
    for (stack, _) in stacks.iter() {
        let mut frames: Vec<Vec<pprof::Symbol>> = stack
            .addrs
            .iter()
            .rev()
            .map(|&address| symbols.resolve_return_address(address))
            .filter(|frame| !frame.is_empty())
            .collect();
        let allocator = frames
            .iter()
            .take_while(|frame| is_allocator_frame(frame))
            .count();
        frames.drain(..allocator);
        let key = pprof::Frames {
            frames,
            thread_name: String::new(),
            thread_id: 0,
            sample_timestamp: std::time::SystemTime::now(),
        };
        *data.entry(key).or_insert(0) += stack.weight.round() as isize;
    }
    pprof::Report {
        data,
        timing: Default::default(),
    }
}

/// pprof-rs writes CPU profiles (`samples`/`cpu`, a thread label): make
/// it a heap profile, one value per sample, `inuse_space` in bytes.
fn retype_as_inuse_space(profile: &mut pprof::protos::Profile, sample_bytes: u64) {
    let mut string = |text: &str| {
        profile.string_table.push(text.to_string());
        (profile.string_table.len() - 1) as i64
    };
    let inuse_space = pprof::protos::ValueType {
        ty: string("inuse_space"),
        unit: string("bytes"),
    };
    let space = pprof::protos::ValueType {
        ty: string("space"),
        unit: string("bytes"),
    };
    profile.sample_type = vec![inuse_space];
    profile.period_type = Some(space);
    profile.period = sample_bytes as i64;
    profile.duration_nanos = 0;
    for sample in &mut profile.sample {
        sample.value.truncate(1);
        sample.label.clear();
    }
}
