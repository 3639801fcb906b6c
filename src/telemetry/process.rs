//! StreamGate's own process resources, read from Linux `/proc/self`:
//! resident memory, CPU time, open file descriptors and threads. On other
//! systems (or if `/proc` is not mounted) every figure is `None` and the
//! series are simply absent.

/// `USER_HZ`: the unit of the CPU times in `/proc/<pid>/stat`, fixed at
/// 100 by the Linux user-space ABI on every mainstream architecture.
const USER_HZ: f64 = 100.0;

/// One reading of the process' resources.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessStats {
    /// Resident set size, bytes.
    pub resident_bytes: Option<f64>,
    /// User plus system CPU time since start, seconds.
    pub cpu_seconds: Option<f64>,
    /// Open file descriptors.
    pub open_fds: Option<f64>,
    /// Operating-system threads.
    pub threads: Option<f64>,
}

/// Reads the current figures; missing ones are `None`.
pub fn read() -> ProcessStats {
    let status = std::fs::read_to_string("/proc/self/status").ok();
    let field = |name: &str| {
        status.as_deref().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        })
    };
    ProcessStats {
        resident_bytes: field("VmRSS:").map(|kib| kib * 1024.0),
        cpu_seconds: std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| cpu_seconds(&s)),
        open_fds: std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as f64),
        threads: field("Threads:"),
    }
}

/// The resident set size alone, for callers that read it often (the
/// memory limiter, every 20 ms by default). Read from
/// `/proc/self/statm`, whose second figure is `VmRSS` in pages: a few
/// numbers the kernel formats, where `/proc/self/status` formats some
/// fifty lines, read here into a buffer on the stack.
pub fn resident_bytes() -> Option<u64> {
    use std::io::Read;
    let mut buf = [0u8; 128];
    let len = std::fs::File::open("/proc/self/statm")
        .and_then(|mut f| f.read(&mut buf))
        .ok()?;
    let text = std::str::from_utf8(buf.get(..len)?).ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// The kernel's page size in bytes: `AT_PAGESZ` from the process'
/// auxiliary vector (`/proc/self/auxv`, pairs of native words), read
/// once; 4 KiB if it cannot be read.
fn page_size() -> u64 {
    static PAGE_SIZE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *PAGE_SIZE.get_or_init(|| {
        const AT_PAGESZ: u64 = 6;
        const WORD: usize = std::mem::size_of::<usize>();
        let word = |b: &[u8]| -> u64 {
            let mut bytes = [0u8; WORD];
            bytes.copy_from_slice(b);
            usize::from_ne_bytes(bytes) as u64
        };
        std::fs::read("/proc/self/auxv")
            .ok()
            .and_then(|auxv| {
                auxv.chunks_exact(2 * WORD)
                    .map(|pair| (word(&pair[..WORD]), word(&pair[WORD..])))
                    .find(|&(key, _)| key == AT_PAGESZ)
                    .map(|(_, size)| size)
            })
            .filter(|size| size.is_power_of_two())
            .unwrap_or(4096)
    })
}

/// utime + stime from a `/proc/<pid>/stat` line. The command name (field
/// 2) is in parentheses and may hold spaces, so fields are counted after
/// the last `)`: utime and stime are fields 14 and 15 of the line.
fn cpu_seconds(stat: &str) -> Option<f64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_parsed_after_the_command_name() {
        let line =
            "4242 (stream gate) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 9 0 100 0 0";
        assert_eq!(cpu_seconds(line), Some(3.0));
        assert_eq!(cpu_seconds("garbage"), None);
        assert_eq!(cpu_seconds("1 (x) S 1"), None);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn reads_this_process() {
        let s = read();
        assert!(s.resident_bytes.is_some_and(|b| b > 1e6), "{s:?}");
        assert!(s.cpu_seconds.is_some_and(|c| c >= 0.0), "{s:?}");
        assert!(s.open_fds.is_some_and(|n| n >= 3.0), "{s:?}");
        assert!(s.threads.is_some_and(|n| n >= 1.0), "{s:?}");
        assert!(resident_bytes().is_some_and(|b| b > 1 << 20));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_quick_reading_is_the_status_files_resident_size() {
        // The same figure from two files, read moments apart while other
        // tests allocate: within a factor of two of the readings around
        // it (a wrong page size would be off by a factor of 4 or more).
        let before = read().resident_bytes.expect("VmRSS") as u64;
        let quick = resident_bytes().expect("statm");
        let after = read().resident_bytes.expect("VmRSS") as u64;
        assert!(
            quick >= before.min(after) / 2 && quick <= before.max(after) * 2,
            "statm {quick} against VmRSS {before} and {after}"
        );
    }
}
