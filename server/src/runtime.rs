//! The async runtime the binary serves on. With several workers, tokio's work-stealing scheduler;
//! with one (one CPU, a one-CPU affinity or `--worker-threads 1`), the current-thread scheduler:
//! one worker of the multi-thread scheduler still pays for work stealing, a second thread
//! (`block_on`'s) and cross-thread wake-ups, and on one core bare tonic served 1.38x the gRPC
//! calls on the current-thread scheduler (`bench/h2_settings.py`, docs/performance.md).

use std::num::NonZeroUsize;

use tokio::runtime::{Builder, Runtime};

/// Which scheduler a runtime of `workers` threads uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduler {
    CurrentThread,
    MultiThread(NonZeroUsize),
}

impl Scheduler {
    /// `workers` if set, else one per CPU this process may use (its affinity and cgroup quota).
    pub fn for_workers(workers: Option<NonZeroUsize>) -> Self {
        let workers = workers.or_else(|| std::thread::available_parallelism().ok()).unwrap_or(NonZeroUsize::MIN);
        if workers.get() == 1 { Self::CurrentThread } else { Self::MultiThread(workers) }
    }

    pub fn build(self) -> std::io::Result<Runtime> {
        match self {
            Self::CurrentThread => Builder::new_current_thread().enable_all().build(),
            Self::MultiThread(workers) => {
                Builder::new_multi_thread().worker_threads(workers.get()).enable_all().build()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_worker_is_the_current_thread_scheduler() {
        let n = |v| NonZeroUsize::new(v);
        assert_eq!(Scheduler::for_workers(n(1)), Scheduler::CurrentThread);
        assert_eq!(Scheduler::for_workers(n(2)), Scheduler::MultiThread(NonZeroUsize::new(2).unwrap()));
        let cpus = std::thread::available_parallelism().unwrap();
        let expected = if cpus.get() == 1 { Scheduler::CurrentThread } else { Scheduler::MultiThread(cpus) };
        assert_eq!(Scheduler::for_workers(None), expected, "the default follows the CPUs this process may use");
    }

    #[test]
    fn both_schedulers_run_spawned_and_blocking_work() {
        for scheduler in [Scheduler::CurrentThread, Scheduler::for_workers(NonZeroUsize::new(2))] {
            let runtime = scheduler.build().unwrap();
            let answer = runtime.block_on(async {
                let spawned = tokio::spawn(async { 20 });
                let blocking = tokio::task::spawn_blocking(|| 22);
                spawned.await.unwrap() + blocking.await.unwrap()
            });
            assert_eq!(answer, 42, "{scheduler:?}");
        }
    }
}
