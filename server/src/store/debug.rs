//! Fault injection for tests and demos (hidden `--debug-store-*` flags): wraps any store to add
//! latency to every call or to fail every call as if the store were unreachable. It lets the
//! drain test hold a request in flight and lets `candidatectl check` be shown a broken server.

use std::time::Duration;

use async_trait::async_trait;

use super::{Candidate, CandidateStore, DynStore, Page, Result, StoreError};
use crate::name::CandidateName;

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

#[async_trait]
impl CandidateStore for Faulty {
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
        self.before().await?;
        self.inner.get(name).await
    }

    async fn put(&self, name: &CandidateName) -> Result<Candidate> {
        self.before().await?;
        self.inner.put(name).await
    }

    async fn delete(&self, name: &CandidateName) -> Result<()> {
        self.before().await?;
        self.inner.delete(name).await
    }

    async fn list(&self, page_size: usize, page_token: Option<&str>) -> Result<Page> {
        self.before().await?;
        self.inner.list(page_size, page_token).await
    }

    async fn ping(&self) -> Result<()> {
        self.before().await?;
        self.inner.ping().await
    }
}
