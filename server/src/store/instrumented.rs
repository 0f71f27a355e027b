//! Times every store call and counts its errors by backend and operation (Prometheus metrics);
//! wraps whichever backend the configuration chose.

use std::{sync::OnceLock, time::Instant};

use super::{DynStore, Op, Result, StoreError};

/// Outcomes of a call, as the `outcome` label says them.
const OUTCOMES: [&str; 3] = ["ok", "not_found", "error"];

#[derive(Debug)]
pub struct Instrumented {
    inner: DynStore,
    /// Each (operation, outcome) histogram, registered on its first call: looking one up by its
    /// labels on every call (a label vector, a hash, the registry's lock) was a quarter of an
    /// in-memory get in `bench/profile.sh grpc`.
    durations: [[OnceLock<metrics::Histogram>; OUTCOMES.len()]; Op::ALL.len()],
}

impl Instrumented {
    pub fn new(inner: DynStore) -> Self {
        Self { inner, durations: Default::default() }
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
        self.observe(op, started, &result);
        result
    }

    fn observe<T>(&self, op: Op, started: Instant, result: &Result<T>) {
        let outcome = match result {
            Ok(_) => 0,
            Err(StoreError::NotFound) => 1,
            Err(_) => 2,
        };
        let backend = self.inner.kind();
        let operation = op.as_str();
        self.durations[op as usize][outcome]
            .get_or_init(|| {
                metrics::histogram!("store_operation_duration_seconds", "backend" => backend, "operation" => operation, "outcome" => OUTCOMES[outcome])
            })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_its_row() {
        for (i, op) in Op::ALL.into_iter().enumerate() {
            assert_eq!(op as usize, i, "{op:?}: Op::ALL is in declaration order");
        }
    }
}
