//! The allocator's settings. The binary uses mimalloc (cheaper per-request allocations than glibc's,
//! and it gives memory back); built with `no_thp`, since transparent huge pages doubled idle RSS.

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_t` (not in the Rust bindings); a test checks
/// the index against the environment variable mimalloc reads for it.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the system at once. mimalloc's default waits a second and then
/// purges only when the thread allocates again, so an instance that went idle after a load peak
/// (or a store stall with a thousand requests waiting) kept the peak's memory. An operator's
/// `MIMALLOC_PURGE_DELAY` is left as set.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one integer option; mimalloc reads options atomically.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) };
    }
}

/// The purge delay in effect, in milliseconds.
pub fn purge_delay() -> std::os::raw::c_long {
    // SAFETY: reads one integer option.
    unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run in a child process with `MIMALLOC_PURGE_DELAY` set: mimalloc read it into the option at
    /// our index, so the index is the purge delay's.
    #[test]
    fn purge_delay_index_is_the_one_mimalloc_reads_from_the_environment() {
        if let Ok(expected) = std::env::var("CANDIDATES_EXPECT_PURGE_DELAY") {
            assert_eq!(purge_delay().to_string(), expected);
            return;
        }
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "allocator::tests::purge_delay_index_is_the_one_mimalloc_reads_from_the_environment"])
            .env("MIMALLOC_PURGE_DELAY", "4321")
            .env("CANDIDATES_EXPECT_PURGE_DELAY", "4321")
            .status()
            .unwrap();
        assert!(status.success(), "mimalloc's purge delay is not option {PURGE_DELAY}");
    }

    #[test]
    fn tune_sets_immediate_purging_unless_the_operator_chose() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            tune();
            assert_eq!(purge_delay(), 0);
        }
    }
}
