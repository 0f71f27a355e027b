//! Bounds every store call in time and fails fast while the store is known to be down (a circuit
//! breaker), whichever backend is behind it.
//!
//! Without it a stalled store makes every request wait for its whole deadline, and requests pile
//! up in flight (memory, connections, the load balancer's patience). With it, a call takes at most
//! the store timeout; after [`TRIP_AFTER`] such failures in a row the breaker opens and calls answer
//! UNAVAILABLE at once; after [`OPEN_FOR`] one call (a request or the health check) is let through
//! as a trial, and its success closes the breaker again. So recovery follows the store within
//! about `OPEN_FOR` + one round-trip, with no restart.

use std::{future::Future, sync::Mutex, time::Duration};

use tokio::time::Instant;

use async_trait::async_trait;

use super::{Candidate, CandidateStore, DynStore, Page, Result, StoreError};
use crate::name::CandidateName;

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

/// What the breaker lets a call do.
enum Permit {
    Call,
    Trial,
}

impl Guarded {
    pub fn new(inner: DynStore, timeout: Duration) -> Self {
        Self { inner, timeout, breaker: Mutex::new(Breaker::default()) }
    }

    fn admit(&self) -> Result<Permit> {
        let mut b = self.breaker.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match b.open_until {
            None => Ok(Permit::Call),
            Some(until) if Instant::now() >= until && !b.trial => {
                b.trial = true;
                Ok(Permit::Trial)
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

    fn record(&self, permit: Permit, down: bool) {
        let mut b = self.breaker.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if matches!(permit, Permit::Trial) {
            b.trial = false;
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
                    request_id = candidates_gateway::context::request_id(),
                    store = self.inner.kind(),
                    failures = b.failures,
                    "store is down: failing fast"
                );
            }
            b.open_until = Some(Instant::now() + OPEN_FOR);
        }
    }

    async fn call<T>(&self, call: impl Future<Output = Result<T>>) -> Result<T> {
        let permit = self.admit()?;
        let result = match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::DeadlineExceeded),
        };
        let down = matches!(result, Err(StoreError::Unavailable { .. } | StoreError::DeadlineExceeded));
        self.record(permit, down);
        result
    }
}

#[async_trait]
impl CandidateStore for Guarded {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn lists_in_name_order(&self) -> bool {
        self.inner.lists_in_name_order()
    }

    fn may_return_empty_pages(&self) -> bool {
        self.inner.may_return_empty_pages()
    }

    async fn get(&self, name: &CandidateName) -> Result<Candidate> {
        self.call(self.inner.get(name)).await
    }

    async fn put(&self, name: &CandidateName) -> Result<Candidate> {
        self.call(self.inner.put(name)).await
    }

    async fn delete(&self, name: &CandidateName) -> Result<()> {
        self.call(self.inner.delete(name)).await
    }

    async fn list(&self, page_size: usize, page_token: Option<&str>) -> Result<Page> {
        self.call(self.inner.list(page_size, page_token)).await
    }

    async fn ping(&self) -> Result<()> {
        self.call(self.inner.ping()).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };

    use super::*;
    use crate::store::memory::MemoryStore;

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

    #[tokio::test(start_paused = true)]
    async fn answers_that_are_not_outages_never_trip_it() {
        let store = Guarded::new(Arc::new(MemoryStore::new()), Duration::from_secs(2));
        let name = CandidateName::parse("missing").unwrap();
        for _ in 0..TRIP_AFTER * 3 {
            assert!(matches!(store.get(&name).await, Err(StoreError::NotFound)));
        }
    }
}
