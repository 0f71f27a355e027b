//! What both listeners do around every request: a sane request id (the client's or a new one) on
//! the request, the response and in [`context`](crate::context); one access line when the
//! response head is ready; in-flight gauges that a dropped request cannot leave counted; and the
//! bounded labels (method, path) that lines and metrics use.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use axum::{extract::Request, response::Response};
use http::HeaderValue;

/// The target of the per-request lines of both listeners: `--log info,access=off` silences them
/// (and saves their cost) while keeping every other line; the server's log writer buffers only
/// these lines and formats them on a fast path (`telemetry::access`).
pub const ACCESS_LOG: &str = "access";

/// A latency in milliseconds to the microsecond, the `latency_ms` of access lines: finer digits
/// are noise at this scale and only lengthen every line.
pub fn latency_ms(latency: Duration) -> f64 {
    latency.as_micros() as f64 / 1e3
}

/// What both listeners put around every request: a sane request id (the client's, or a new random
/// UUID) on the request and the response and in [`context`](crate::context) for lines logged
/// inside the request, and one access line (`log`, with `line`: what the listener kept of the
/// request) when the response head is ready. No tracing span: the access line carries the
/// request's fields.
pub async fn observe<T, F, Fut>(
    mut request: Request,
    line: T,
    log: fn(&T, &str, &Response, Duration),
    inner: F,
) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let mut id = sanitize_request_id(&mut request);
    // Never indexed by HPACK: a value unique to each response would fill HTTP/2's header table,
    // evicting the headers that do repeat, and cost a search of every id in it (a tenth of a gRPC
    // call's CPU in bench/profile.sh). HTTP/1 ignores the flag.
    id.set_sensitive(true);
    let started = Instant::now();
    let mut response = crate::context::scope(id.clone(), inner(request)).await;
    log(&line, id.to_str().unwrap_or_default(), &response, started.elapsed());
    response.headers_mut().entry("x-request-id").or_insert(id);
    response
}

/// Longest request id kept; longer ones (and ones with other characters than these) are replaced
/// by a fresh one, so that a client cannot make us echo or log arbitrary bytes.
pub const MAX_REQUEST_ID: usize = 128;

/// Keeps a client's `x-request-id` if it is one value of at most [`MAX_REQUEST_ID`] characters of
/// `[A-Za-z0-9._:-]`, else sets a new random UUID, so that a client cannot make us echo or log
/// arbitrary bytes. Returns the id, for the response.
pub fn sanitize_request_id(request: &mut Request) -> HeaderValue {
    let valid = |v: &HeaderValue| {
        let bytes = v.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID
            && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    };
    let mut ids = request.headers().get_all("x-request-id").iter();
    if let (Some(id), None) = (ids.next(), ids.next())
        && valid(id)
    {
        return id.clone();
    }
    let id = new_request_id();
    request.headers_mut().insert("x-request-id", id.clone());
    id
}

/// A random (version 4) UUID. From a fast thread-local generator: request ids need to be unique,
/// not unpredictable, and the system's random source costs a syscall per request.
#[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
fn new_request_id() -> HeaderValue {
    let uuid = uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    HeaderValue::from_str(uuid.hyphenated().encode_lower(&mut text)).expect("a UUID is a valid header value")
}

/// A path cut to a length fit for a log line (whole request lines can be 64 KiB).
pub fn bounded(path: &str) -> &str {
    const MAX: usize = 256;
    if path.len() <= MAX {
        return path;
    }
    let mut end = MAX;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    &path[..end]
}

/// The method as a metric label or log field: one of the standard methods, or `other` (clients
/// can send any token as a method).
pub fn method_label(method: &http::Method) -> &'static str {
    use http::Method as M;
    match *method {
        M::GET => "GET",
        M::POST => "POST",
        M::PUT => "PUT",
        M::DELETE => "DELETE",
        M::HEAD => "HEAD",
        M::OPTIONS => "OPTIONS",
        M::PATCH => "PATCH",
        M::TRACE => "TRACE",
        M::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// Counts one request in an in-flight gauge for as long as it lives: the decrement happens on drop,
/// so a request the client abandons (its future dropped mid-way) is not counted for ever.
pub struct InFlight(metrics::Gauge);

impl InFlight {
    pub fn new(name: &'static str) -> Self {
        let gauge = metrics::gauge!(name);
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::response::IntoResponse;
    use http::StatusCode;

    use super::*;

    async fn id_of(request_id: Option<&str>) -> (HeaderValue, HeaderValue) {
        let mut request = Request::get("/x").body(axum::body::Body::empty()).unwrap();
        if let Some(id) = request_id {
            request.headers_mut().insert("x-request-id", HeaderValue::from_str(id).unwrap());
        }
        let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
        let response = observe(request, (), |_, _, _, _| {}, {
            let seen = Arc::clone(&seen);
            |request: Request| async move {
                *seen.lock().unwrap() = request.headers().get("x-request-id").cloned();
                StatusCode::OK.into_response()
            }
        })
        .await;
        let forwarded = seen.lock().unwrap().clone().expect("the handler saw an id");
        (forwarded, response.headers()["x-request-id"].clone())
    }

    #[tokio::test]
    async fn request_ids_are_kept_when_sane_else_replaced_and_never_hpack_indexed() {
        let (forwarded, answered) = id_of(Some("abc-123")).await;
        assert_eq!((forwarded.as_bytes(), answered.as_bytes()), (&b"abc-123"[..], &b"abc-123"[..]));
        assert!(answered.is_sensitive(), "a unique id must not enter HTTP/2's header table");

        for odd in [None, Some("has space"), Some(&*"x".repeat(MAX_REQUEST_ID + 1))] {
            let (forwarded, answered) = id_of(odd).await;
            assert_eq!(forwarded, answered);
            let id = uuid::Uuid::parse_str(answered.to_str().unwrap()).expect("a new id is a UUID");
            assert_eq!(id.get_version_num(), 4);
            assert!(answered.is_sensitive());
        }
        assert_ne!(id_of(None).await.1, id_of(None).await.1, "new ids differ");
    }
}
