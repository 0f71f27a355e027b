//! The allocator's upkeep. The binary uses mimalloc (cheaper per-request allocations than glibc's,
//! and it gives memory back), built with `no_thp`: transparent huge pages doubled idle RSS.
//!
//! mimalloc returns freed memory to the system a purge delay (1 s) after it was freed, but only
//! when some thread next calls into the allocator; an instance that goes idle after a load peak (or
//! after a store stall with a thousand requests waiting) could keep the peak's memory. [`upkeep`]
//! makes that call every few seconds. A purge delay of 0 returns memory as soon as it is freed, but
//! cost a quarter of gRPC's throughput in page faults (docs/performance.md).

use std::{future::Future, time::Duration};

/// How often expired purges are carried out.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Returns memory freed more than the purge delay ago to the system, every [`UPKEEP_EVERY`],
/// until `stopped`.
pub async fn upkeep(stopped: impl Future<Output = ()>) {
    let mut every = tokio::time::interval(UPKEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = every.tick() => collect(),
            () = &mut stopped => return,
        }
    }
}

/// Purges what is due, process-wide (mimalloc's arenas are shared by all threads); not forced, so
/// memory freed within the purge delay stays for reuse.
fn collect() {
    // SAFETY: takes no pointers; safe to call from any thread at any time.
    unsafe { libmimalloc_sys::mi_collect(false) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn upkeep_runs_until_stopped() {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(upkeep(async {
            let _ = stopped.await;
        }));
        tokio::time::sleep(UPKEEP_EVERY * 3).await;
        assert!(!task.is_finished());
        stop.send(()).unwrap();
        task.await.unwrap();
    }
}
