//! Bounds every store call in time and fails fast while the store is known to be down (a circuit
//! breaker), whichever backend is behind it.
//!
//! Without it a stalled store makes every request wait for its whole deadline, and requests pile
//! up in flight (memory, connections, the load balancer's patience). With it, a call takes at most
//! the store timeout; after [`TRIP_AFTER`] such failures in a row the breaker opens and calls answer
//! UNAVAILABLE at once; after [`OPEN_FOR`] one call (a request or the health check) is let through
//! as a trial, and its success closes the breaker again. So recovery follows the store within
//! about `OPEN_FOR` + one round-trip, with no restart.
//!
//! A trial whose caller goes away (a client deadline, a disconnect, the health probe's shorter
//! timeout: its future is dropped before it answers) counts as a failed trial: the breaker stays
//! open for another `OPEN_FOR` and the next call is the next trial. Without that, the half-open
//! state would wait for ever for an answer that never comes, and the instance would fail fast for
//! good while its store was back.

use std::{future::Future, sync::Mutex, time::Duration};

use tokio::time::Instant;

use super::{DynStore, Result, StoreError};

/// Consecutive store failures (unavailable or timed out) that open the breaker.
pub const TRIP_AFTER: u32 = 5;
/// How long the breaker stays open before a trial call.
pub const OPEN_FOR: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct Guarded {
    inner: DynStore,
    timeout: Duration,
    breaker: Mutex<Breaker>,
}

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    /// Set while open: calls before this instant fail fast.
    open_until: Option<Instant>,
    /// A trial call is running (half-open): other calls still fail fast.
    trial: bool,
}

/// What the breaker lets a call do. A trial that is dropped without an outcome (its caller went
/// away) records itself as failed, so the half-open state always ends.
struct Permit<'a> {
    guarded: &'a Guarded,
    trial: bool,
    /// Set once the outcome is recorded: the drop then has nothing to do.
    recorded: bool,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.recorded {
            self.guarded.settle(self.trial, true, Settled::Abandoned);
        }
    }
}

/// How a call ended, for the breaker's log lines.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Settled {
    Answered,
    /// The caller dropped the call before the store answered.
    Abandoned,
}

impl Guarded {
    pub fn new(inner: DynStore, timeout: Duration) -> Self {
        Self { inner, timeout, breaker: Mutex::new(Breaker::default()) }
    }

    fn admit(&self) -> Result<Permit<'_>> {
        let mut b = self.breaker.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match b.open_until {
            None => Ok(Permit { guarded: self, trial: false, recorded: false }),
            Some(until) if Instant::now() >= until && !b.trial => {
                b.trial = true;
                Ok(Permit { guarded: self, trial: true, recorded: false })
            }
            Some(_) => Err(StoreError::Unavailable {
                message: format!(
                    "the {} store is not answering ({} failures in a row); failing fast until it does",
                    self.inner.kind(),
                    b.failures
                ),
                source: None,
            }),
        }
    }

    fn record(&self, mut permit: Permit<'_>, down: bool) {
        permit.recorded = true;
        self.settle(permit.trial, down, Settled::Answered);
    }

    fn settle(&self, trial: bool, down: bool, how: Settled) {
        let mut b = self.breaker.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if trial {
            b.trial = false;
        } else if how == Settled::Abandoned {
            // An ordinary call whose caller went away says nothing about the store.
            return;
        }
        if !down {
            if b.open_until.is_some() {
                tracing::info!(store = self.inner.kind(), "store answers again: closing the breaker");
            }
            *b = Breaker::default();
            return;
        }
        b.failures = b.failures.saturating_add(1);
        if b.failures >= TRIP_AFTER {
            if b.open_until.is_none() {
                tracing::warn!(
                    request_id = candidates_edge::context::request_id(),
                    store = self.inner.kind(),
                    failures = b.failures,
                    "store is down: failing fast"
                );
            }
            b.open_until = Some(Instant::now() + OPEN_FOR);
        }
        if trial && how == Settled::Abandoned {
            tracing::debug!(store = self.inner.kind(), "trial call abandoned by its caller: the breaker stays open");
        }
    }

    async fn around<T>(&self, _op: super::Op, call: impl Future<Output = Result<T>>) -> Result<T> {
        let permit = self.admit()?;
        let result = match candidates_edge::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::DeadlineExceeded),
        };
        let down = matches!(result, Err(StoreError::Unavailable { .. } | StoreError::DeadlineExceeded));
        self.record(permit, down);
        result
    }
}

super::wrap_store!(Guarded, inner, around);

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };

    use async_trait::async_trait;

    use super::*;
    use crate::{
        name::CandidateName,
        store::{Candidate, CandidateStore, Page, memory::MemoryStore},
    };

    /// A store that hangs while `stalled` is set (a stopped emulator), else a memory store.
    #[derive(Debug)]
    struct Stallable {
        inner: MemoryStore,
        stalled: Arc<AtomicBool>,
    }

    #[async_trait]
    impl CandidateStore for Stallable {
        fn kind(&self) -> &'static str {
            "stallable"
        }
        async fn get(&self, name: &CandidateName) -> Result<Candidate> {
            if self.stalled.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            self.inner.get(name).await
        }
        async fn put(&self, name: &CandidateName) -> Result<Candidate> {
            self.inner.put(name).await
        }
        async fn delete(&self, name: &CandidateName) -> Result<()> {
            self.inner.delete(name).await
        }
        async fn list(&self, page_size: usize, page_token: Option<&str>) -> Result<Page> {
            self.inner.list(page_size, page_token).await
        }
        async fn ping(&self) -> Result<()> {
            self.get(&CandidateName::parse("ping").unwrap()).await.map(drop).or(Ok(()))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_store_times_out_then_fails_fast_then_recovers() {
        let stalled = Arc::new(AtomicBool::new(true));
        let store = Guarded::new(
            Arc::new(Stallable { inner: MemoryStore::new(), stalled: Arc::clone(&stalled) }),
            Duration::from_secs(2),
        );
        let name = CandidateName::parse("a").unwrap();
        for _ in 0..TRIP_AFTER {
            let started = tokio::time::Instant::now();
            assert!(matches!(store.get(&name).await, Err(StoreError::DeadlineExceeded)));
            assert_eq!(started.elapsed(), Duration::from_secs(2));
        }
        // Open: no waiting at all.
        let started = tokio::time::Instant::now();
        assert!(matches!(store.get(&name).await, Err(StoreError::Unavailable { .. })));
        assert_eq!(started.elapsed(), Duration::ZERO);
        // The store comes back; after OPEN_FOR one trial closes the breaker.
        stalled.store(false, Ordering::SeqCst);
        tokio::time::advance(OPEN_FOR).await;
        assert!(matches!(store.get(&name).await, Err(StoreError::NotFound)));
        assert!(matches!(store.get(&name).await, Err(StoreError::NotFound)));
    }

    /// Opens the breaker of a fresh guard over a stalled store.
    async fn tripped() -> (Guarded, Arc<AtomicBool>) {
        let stalled = Arc::new(AtomicBool::new(true));
        let store = Guarded::new(
            Arc::new(Stallable { inner: MemoryStore::new(), stalled: Arc::clone(&stalled) }),
            Duration::from_secs(3),
        );
        let name = CandidateName::parse("a").unwrap();
        for _ in 0..TRIP_AFTER {
            assert!(matches!(store.get(&name).await, Err(StoreError::DeadlineExceeded)));
        }
        assert!(matches!(store.get(&name).await, Err(StoreError::Unavailable { .. })), "open");
        (store, stalled)
    }

    /// The probe's finding: a trial whose caller gives up (here after 300 ms, shorter than the
    /// store timeout) used to leave the breaker half-open for ever.
    #[tokio::test(start_paused = true)]
    async fn a_dropped_trial_does_not_keep_the_breaker_open() {
        let (store, stalled) = tripped().await;
        let name = CandidateName::parse("a").unwrap();
        tokio::time::advance(OPEN_FOR).await;
        // The trial, dropped by its caller's deadline before the store answers.
        let abandoned = tokio::time::timeout(Duration::from_millis(300), store.get(&name)).await;
        assert!(abandoned.is_err(), "the trial was still waiting on the store");
        // Still open right after (an abandoned trial is a failed one) ...
        assert!(matches!(store.get(&name).await, Err(StoreError::Unavailable { .. })));
        // ... and the store is back: within one trial interval calls are served again.
        stalled.store(false, Ordering::SeqCst);
        tokio::time::advance(OPEN_FOR).await;
        assert!(matches!(store.get(&name).await, Err(StoreError::NotFound)), "the next trial closes it");
        assert!(matches!(store.get(&name).await, Err(StoreError::NotFound)));
    }

    /// Dropping the future before its first poll, or while an ordinary call is in flight, leaves
    /// nothing behind either.
    #[tokio::test(start_paused = true)]
    async fn trials_dropped_before_or_during_the_call_end_the_half_open_state() {
        let (store, stalled) = tripped().await;
        let name = CandidateName::parse("a").unwrap();
        tokio::time::advance(OPEN_FOR).await;
        // Polled once (admitted as the trial, waiting on the store), then dropped.
        {
            let mut trial = Box::pin(store.get(&name));
            assert!(futures::poll!(trial.as_mut()).is_pending());
        }
        stalled.store(false, Ordering::SeqCst);
        tokio::time::advance(OPEN_FOR).await;
        // Never polled: admits nothing, records nothing.
        drop(store.get(&name));
        assert!(matches!(store.get(&name).await, Err(StoreError::NotFound)));
    }

    #[tokio::test(start_paused = true)]
    async fn answers_that_are_not_outages_never_trip_it() {
        let store = Guarded::new(Arc::new(MemoryStore::new()), Duration::from_secs(2));
        let name = CandidateName::parse("missing").unwrap();
        for _ in 0..TRIP_AFTER * 3 {
            assert!(matches!(store.get(&name).await, Err(StoreError::NotFound)));
        }
    }
}
