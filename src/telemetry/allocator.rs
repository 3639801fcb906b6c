//! The heap as the allocator sees it (jemalloc's statistics), and the
//! memory the process may use at most (cgroup limit or machine memory).
//!
//! jemalloc's figures are only meaningful where jemalloc is the global
//! allocator (the `streamgate` binary); elsewhere it allocates nothing and
//! [`read`] answers `None`, so the series are simply absent.

/// One reading of the allocator's statistics, bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeapStats {
    /// Bytes held by live allocations.
    pub allocated: f64,
    /// Bytes in physically resident pages the allocator holds (live data,
    /// metadata and freed pages not yet returned to the system).
    pub resident: f64,
}

/// The current figures, when jemalloc is the allocator.
pub fn read() -> Option<HeapStats> {
    // The statistics are a snapshot refreshed by advancing the epoch.
    tikv_jemalloc_ctl::epoch::advance().ok()?;
    let allocated = tikv_jemalloc_ctl::stats::allocated::read().ok()?;
    let resident = tikv_jemalloc_ctl::stats::resident::read().ok()?;
    (allocated > 0).then_some(HeapStats {
        allocated: allocated as f64,
        resident: resident as f64,
    })
}

/// Returns the pages of freed memory the allocator still holds to the
/// system at once (every arena's dirty and muzzy pages), instead of after
/// the decay time. For memory pressure: under heavy churn (request bodies
/// read and dropped) the decay otherwise keeps about a second's worth of
/// freed buffers resident. A no-op where jemalloc is not the allocator.
pub fn release_free_memory() {
    // "arena.<MALLCTL_ARENAS_ALL>.purge" takes no input and gives no output.
    const PURGE_ALL: &[u8] = b"arena.4096.purge\0";
    // SAFETY: the name is NUL-terminated, and this control neither reads
    // nor writes through the (null) pointers, as its documentation says.
    let _ = unsafe {
        tikv_jemalloc_sys::mallctl(
            PURGE_ALL.as_ptr().cast(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
}

/// The most memory this process may use: its cgroup's limit (v2
/// `memory.max`, or v1 `memory.limit_in_bytes`) when one is set, else
/// the machine's memory. `None` where neither can be read.
pub fn memory_limit_bytes() -> Option<f64> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let machine = read("/proc/meminfo").and_then(|m| mem_total(&m));
    let cgroup = read("/sys/fs/cgroup/memory.max")
        .or_else(|| read("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
        .and_then(|v| cgroup_limit(&v));
    match (cgroup, machine) {
        // A v1 "no limit" is a huge number: the machine is the bound.
        (Some(c), Some(m)) => Some(c.min(m)),
        (c, m) => c.or(m),
    }
}

/// A cgroup memory limit file's value (`max` means none).
fn cgroup_limit(text: &str) -> Option<f64> {
    text.trim().parse::<u64>().ok().map(|v| v as f64)
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn mem_total(meminfo: &str) -> Option<f64> {
    let kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_and_meminfo_values_are_parsed() {
        assert_eq!(cgroup_limit("max\n"), None);
        assert_eq!(cgroup_limit("1073741824\n"), Some(1073741824.0));
        assert_eq!(
            mem_total("MemTotal:       24684132 kB\nMemFree: 1 kB\n"),
            Some(24684132.0 * 1024.0)
        );
        assert_eq!(mem_total("garbage"), None);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn this_machine_has_a_memory_limit() {
        let limit = memory_limit_bytes().expect("a limit on Linux");
        assert!(limit > 64e6, "{limit}");
    }
}
