//! The request a task is serving, for log lines written inside it. `layers::observe` sets it
//! around each request instead of entering a tracing span: a span per request cost about a twentieth
//! of `/gtg`'s throughput (docs/performance.md), and only the rare warning inside a request needs it.
//!
//! ```ignore
//! tracing::warn!(request_id = context::request_id(), "store unavailable");
//! ```

use std::future::Future;

use http::HeaderValue;
use tokio::task::JoinHandle;

tokio::task_local! {
    static REQUEST_ID: HeaderValue;
}

/// Runs `future` as the request `id` (already sane: `layers::sanitize_request_id`).
pub fn scope<F: Future>(id: HeaderValue, future: F) -> impl Future<Output = F::Output> {
    REQUEST_ID.scope(id, future)
}

/// The id of the request being served by this task, if any (tasks spawned with [`spawn`] keep it).
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.to_str().unwrap_or_default().to_owned()).ok()
}

/// `tokio::spawn`, the new task serving the same request as this one (a task-local is not
/// inherited by `tokio::spawn`).
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match REQUEST_ID.try_with(HeaderValue::clone) {
        Ok(id) => tokio::spawn(REQUEST_ID.scope(id, future)),
        Err(_) => tokio::spawn(future),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_id_is_seen_inside_the_request_only() {
        assert_eq!(request_id(), None);
        let inside = scope(HeaderValue::from_static("req-1"), async {
            tokio::task::yield_now().await;
            request_id()
        })
        .await;
        assert_eq!(inside.as_deref(), Some("req-1"));
        assert_eq!(request_id(), None);
    }

    #[tokio::test]
    async fn spawned_tasks_keep_the_request_and_others_have_none() {
        let spawned =
            scope(HeaderValue::from_static("req-2"), async { spawn(async { request_id() }).await.unwrap() }).await;
        assert_eq!(spawned.as_deref(), Some("req-2"));
        assert_eq!(spawn(async { request_id() }).await.unwrap(), None);
    }
}
