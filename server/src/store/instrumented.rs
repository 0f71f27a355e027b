//! Times every store call and counts its errors by backend and operation (Prometheus metrics);
//! wraps whichever backend the configuration chose.

use std::time::Instant;

use async_trait::async_trait;

use super::{Candidate, CandidateStore, DynStore, Page, Result, StoreError};
use crate::name::CandidateName;

#[derive(Debug)]
pub struct Instrumented {
    inner: DynStore,
}

impl Instrumented {
    pub fn new(inner: DynStore) -> Self {
        Self { inner }
    }

    fn observe<T>(&self, operation: &'static str, started: Instant, result: &Result<T>) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(StoreError::NotFound) => "not_found",
            Err(_) => "error",
        };
        let backend = self.inner.kind();
        metrics::histogram!("store_operation_duration_seconds", "backend" => backend, "operation" => operation, "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
        if let Err(e) = result {
            if matches!(e, StoreError::NotFound) {
                return;
            }
            let error = e.label();
            metrics::counter!("store_operation_errors_total", "backend" => backend, "operation" => operation, "error" => error)
                .increment(1);
        }
    }
}

#[async_trait]
impl CandidateStore for Instrumented {
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
        let started = Instant::now();
        let result = self.inner.get(name).await;
        self.observe("get", started, &result);
        result
    }

    async fn put(&self, name: &CandidateName) -> Result<Candidate> {
        let started = Instant::now();
        let result = self.inner.put(name).await;
        self.observe("put", started, &result);
        result
    }

    async fn delete(&self, name: &CandidateName) -> Result<()> {
        let started = Instant::now();
        let result = self.inner.delete(name).await;
        self.observe("delete", started, &result);
        result
    }

    async fn list(&self, page_size: usize, page_token: Option<&str>) -> Result<Page> {
        let started = Instant::now();
        let result = self.inner.list(page_size, page_token).await;
        self.observe("list", started, &result);
        result
    }

    async fn ping(&self) -> Result<()> {
        let started = Instant::now();
        let result = self.inner.ping().await;
        self.observe("ping", started, &result);
        result
    }
}
