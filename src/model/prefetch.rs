//! Cache hints for walks over data spread across the heap: a render of
//! every stored series reads, per series, allocations that sit anywhere
//! in memory, and waits for main memory at each one unless it asks for
//! them a little ahead. [`prefetch`] is that ask: a hint to the CPU that
//! reads nothing into the program.

/// Asks the CPU to bring the first `most_bytes` of `value` (its whole
/// size if smaller) into its cache, one request per 64-byte line. A hint
/// only: nothing is read, and on targets without the instruction it does
/// nothing.
#[inline(always)]
pub fn prefetch<T: ?Sized>(value: &T, most_bytes: usize) {
    let bytes = std::mem::size_of_val(value).min(most_bytes);
    let start = (value as *const T).cast::<u8>();
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let mut at = 0;
        while at < bytes {
            // SAFETY: `at` is below `size_of_val(value)`, so the pointer
            // stays within `value`; a prefetch reads nothing into the
            // program and cannot fault (SSE, which it needs, is part of
            // every x86_64 target).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.add(at).cast()) };
            at += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (start, bytes);
}
