//! The allocator's upkeep. The binary uses mimalloc (cheaper per-request allocations than glibc's,
//! and it gives memory back), built with `no_thp`: transparent huge pages doubled idle RSS.
//!
//! mimalloc returns freed memory to the system a purge delay (1 s) after it was freed, but only
//! when some thread next calls into the allocator; an instance that goes idle after a load peak (or
//! after a store stall with a thousand requests waiting) could keep the peak's memory.
//! `crate::upkeep` calls [`collect`] every few seconds. A purge delay of 0 returns memory as soon
//! as it is freed, but cost a quarter of gRPC's throughput in page faults (docs/performance.md).

/// Purges what is due, process-wide (mimalloc's arenas are shared by all threads); not forced, so
/// memory freed within the purge delay stays for reuse.
#[allow(unsafe_code)] // mimalloc's C API: see the SAFETY comment.
pub fn collect() {
    // SAFETY: takes no pointers; safe to call from any thread at any time.
    unsafe { libmimalloc_sys::mi_collect(false) };
}
