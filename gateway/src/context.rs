//! The request a task is serving, for log lines written inside it. `layers::observe` sets it
//! around each request instead of entering a tracing span: a span per request cost about a twentieth
//! of `/gtg`'s throughput (docs/performance.md), and only the rare warning inside a request needs it.
//!
//! ```ignore
//! tracing::warn!(request_id = context::request_id(), "store unavailable");
//! ```

use std::future::Future;

use http::HeaderValue;

tokio::task_local! {
    static REQUEST_ID: HeaderValue;
}

/// Runs `future` as the request `id` (already sane: `layers::sanitize_request_id`).
pub fn scope<F: Future>(id: HeaderValue, future: F) -> impl Future<Output = F::Output> {
    REQUEST_ID.scope(id, future)
}

/// The id of the request being served by this task, if any. Tasks a request spawns do not inherit
/// it: pass the id along (`Forwarded`) and log it from there.
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.to_str().unwrap_or_default().to_owned()).ok()
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
}
