//! Fault injection for tests and demos (hidden `--debug-store-*` flags): wraps any store to add
//! latency to every call or to fail every call as if the store were unreachable. It lets the
//! drain test hold a request in flight and lets `candidatectl check` be shown a broken server.

use std::time::Duration;

use super::{DynStore, Result, StoreError};

#[derive(Debug)]
pub struct Faulty {
    inner: DynStore,
    delay: Duration,
    fail: bool,
}

impl Faulty {
    pub fn new(inner: DynStore, delay: Duration, fail: bool) -> Self {
        Self { inner, delay, fail }
    }

    async fn around<T>(&self, _op: super::Op, call: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        self.before().await?;
        call.await
    }

    async fn before(&self) -> Result<()> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if self.fail {
            return Err(StoreError::Unavailable {
                message: "injected fault (--debug-store-fail)".into(),
                source: None,
            });
        }
        Ok(())
    }
}

super::wrap_store!(Faulty, inner, around);
