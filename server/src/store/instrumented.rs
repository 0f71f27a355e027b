//! Times every store call and counts its errors by backend and operation (Prometheus metrics);
//! wraps whichever backend the configuration chose.

use std::time::Instant;

use super::{DynStore, Op, Result, StoreError};

#[derive(Debug)]
pub struct Instrumented {
    inner: DynStore,
}

impl Instrumented {
    pub fn new(inner: DynStore) -> Self {
        Self { inner }
    }

    async fn around<T>(&self, op: Op, call: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let started = Instant::now();
        let result = call.await;
        self.observe(op.as_str(), started, &result);
        result
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

super::wrap_store!(Instrumented, inner, around);
