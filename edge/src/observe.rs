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
/// request) when the response head is ready. No `tracing` span: the access line carries the
/// request's fields. With traces on (`crate::trace`), the request's edge span, described by
/// `line` once the response head is ready.
pub async fn observe<T, F, Fut>(
    mut request: Request,
    line: T,
    log: fn(&T, &Seen<'_>, &Response, Duration),
    inner: F,
) -> Response
where
    T: Describe,
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let mut id = sanitize_request_id(&mut request);
    // Never indexed by HPACK: a value unique to each response would fill HTTP/2's header table,
    // evicting the headers that do repeat, and cost a search of every id in it (a tenth of a gRPC
    // call's CPU in bench/profile.sh). HTTP/1 ignores the flag.
    id.set_sensitive(true);
    let trace = TraceContext::of(request.headers());
    // Off: `None` after one load, and the request runs as it did before traces existed.
    let span = crate::trace::Root::start(trace.parent.as_ref());
    let started = Instant::now();
    let mut response = match &span {
        None => crate::context::scope(id.clone(), inner(request)).await,
        Some(span) => crate::context::scope(id.clone(), span.scope(inner(request))).await,
    };
    let mut hex = [0u8; 32];
    let seen = Seen {
        request_id: id.to_str().unwrap_or_default(),
        traceparent: trace.parent.as_ref().and_then(|v| v.to_str().ok()),
        tracestate: trace.state.as_ref().and_then(|v| v.to_str().ok()),
        trace_id: span.as_ref().map(|s| s.context().trace_id_hex(&mut hex)),
    };
    log(&line, &seen, &response, started.elapsed());
    if let Some(span) = span {
        span.finish(|| line.describe(&response));
    }
    response.headers_mut().entry("x-request-id").or_insert(id);
    response
}

/// What an access line says about the request besides the listener's own fields.
pub struct Seen<'a> {
    pub request_id: &'a str,
    /// The W3C `traceparent`, when well formed, and its `tracestate`.
    pub traceparent: Option<&'a str>,
    pub tracestate: Option<&'a str>,
    /// The trace id of the request's span, when traces are on (sampled or not).
    pub trace_id: Option<&'a str>,
}

/// What a listener says about a request in its edge span: called only for sampled requests.
pub trait Describe {
    fn describe(&self, response: &Response) -> crate::trace::Described;
}

/// Nothing beyond a name (tests, and listeners that describe nothing).
impl Describe for () {
    fn describe(&self, _: &Response) -> crate::trace::Described {
        crate::trace::Described { name: "request".into(), attributes: Vec::new(), error: None }
    }
}

/// Longest `tracestate` kept (W3C Trace Context: 32 members of at most 256 characters may be
/// cut to 512 characters by a vendor; longer is dropped here).
pub const MAX_TRACESTATE: usize = 512;

/// A request's W3C Trace Context (`traceparent`, `tracestate`), kept only when well formed, so
/// the access line and the metadata passed on never carry a client's arbitrary bytes. An invalid
/// `traceparent` drops both, as the spec says a receiver must.
#[derive(Debug, Clone, Default)]
pub struct TraceContext {
    pub parent: Option<HeaderValue>,
    pub state: Option<HeaderValue>,
}

impl TraceContext {
    pub fn of(headers: &http::HeaderMap) -> Self {
        let mut parents = headers.get_all("traceparent").iter();
        let parent = match (parents.next(), parents.next()) {
            (Some(parent), None) if valid_traceparent(parent.as_bytes()) => parent,
            _ => return Self::default(),
        };
        // A later version's extra fields are not ours to log or pass on: the first 55 characters
        // are the four fields every version has (an attacker reviewer carried 200 arbitrary bytes
        // into the access line and the upstream's metadata through them).
        let parent = match parent.as_bytes().get(..55) {
            Some(first) if parent.len() > 55 => HeaderValue::from_bytes(first).unwrap_or_else(|_| parent.clone()),
            _ => parent.clone(),
        };
        // Several tracestate headers are one list joined by commas; one is the common case, and
        // the rare split list is dropped rather than joined.
        let mut states = headers.get_all("tracestate").iter();
        let state = match (states.next(), states.next()) {
            (Some(state), None) if valid_tracestate(state.as_bytes()) => Some(state.clone()),
            _ => None,
        };
        Self { parent: Some(parent), state }
    }
}

/// `version-traceid-parentid-flags`: 2, 32, 16 and 2 lowercase hex digits; version `ff`, an
/// all-zero trace id or parent id is invalid. Version 00 is exactly 55 characters; a later version
/// may append `-` and fields of lowercase hex and dashes, which are not kept (`TraceContext::of`
/// keeps the first 55).
fn valid_traceparent(value: &[u8]) -> bool {
    let hex = |b: &[u8]| b.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
    let zero = |b: &[u8]| b.iter().all(|&c| c == b'0');
    if value.len() < 55 || (value.len() > 55 && (value.starts_with(b"00") || value[55] != b'-')) {
        return false;
    }
    if !value[55..].iter().all(|&c| c == b'-' || c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) {
        return false;
    }
    let (version, trace, parent, flags) = (&value[0..2], &value[3..35], &value[36..52], &value[53..55]);
    value[2] == b'-'
        && value[35] == b'-'
        && value[52] == b'-'
        && hex(version)
        && version != b"ff"
        && hex(trace)
        && !zero(trace)
        && hex(parent)
        && !zero(parent)
        && hex(flags)
        && value.len() <= 256
}

/// A `tracestate` list: printable ASCII, at most [`MAX_TRACESTATE`] characters. (Its members'
/// grammar is the tracing system's business; this keeps log lines and metadata clean.)
fn valid_tracestate(value: &[u8]) -> bool {
    !value.is_empty() && value.len() <= MAX_TRACESTATE && value.iter().all(|&c| (0x20..0x7f).contains(&c))
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
        Self::of(metrics::gauge!(name))
    }

    /// Counts in a gauge the caller has already registered (no lookup by name per request).
    pub fn of(gauge: metrics::Gauge) -> Self {
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
        let response = observe(request, (), |_, _: &Seen<'_>, _, _| {}, {
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

    #[test]
    fn only_well_formed_trace_context_is_kept() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let of = |parent: &str, state: Option<&str>| {
            let mut headers = http::HeaderMap::new();
            headers.insert("traceparent", HeaderValue::from_str(parent).unwrap());
            if let Some(state) = state {
                headers.insert("tracestate", HeaderValue::from_str(state).unwrap());
            }
            let trace = TraceContext::of(&headers);
            (trace.parent.map(|v| v.to_str().unwrap().to_owned()), trace.state.map(|v| v.to_str().unwrap().to_owned()))
        };
        assert_eq!(of(good, Some("rojo=00f067aa0ba902b7")), (Some(good.into()), Some("rojo=00f067aa0ba902b7".into())));
        assert_eq!(of(good, None), (Some(good.into()), None));
        assert_eq!(of(good, Some(&"x".repeat(MAX_TRACESTATE + 1))), (Some(good.into()), None), "tracestate too long");
        let future = format!("01{}-0a1b-ff", &good[2..]);
        assert_eq!(of(&future, None).0.as_deref(), Some(&future[..55]), "a later version's fields are not kept");
        let injected = format!("cc{}-<script>$(id)", &good[2..]);
        assert_eq!(of(&injected, None), (None, None), "extra fields are hex and dashes only");
        for bad in [
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "hello",
        ] {
            assert_eq!(of(bad, Some("a=b")), (None, None), "{bad}");
        }
    }
}
