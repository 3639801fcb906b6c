//! The `streamgate` binary's allocator and its start-up options, so a
//! bench times allocation (and frees from another thread) as the binary
//! does: jemalloc with per-thread caches, the heap sampler on.

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8] =
    b"prof:true,prof_active:true,lg_prof_sample:19,dirty_decay_ms:1000,muzzy_decay_ms:1000\0";
