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

    /// Times the call, and with traces on makes it a span of its own (a child of the service
    /// call's): one per call into the backend, so a listing that walks several pages has one per
    /// page. Not found is an outcome, not an error.
    async fn around<T>(&self, op: Op, call: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        use candidates_edge::trace;
        let started = Instant::now();
        let backend = self.inner.kind();
        let describe = || {
            let attributes = vec![("db.system.name", backend.into()), ("db.operation.name", op.as_str().into())];
            (format!("store {}", op.as_str()).into(), trace::Kind::Client, attributes)
        };
        let error = |result: &Result<T>| match result {
            Err(StoreError::NotFound) | Ok(_) => None,
            Err(e) => Some(format!("{}: {e}", e.label())),
        };
        let result = trace::child(describe, call, error).await;
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
