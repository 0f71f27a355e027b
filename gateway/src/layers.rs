//! The REST listener's tower stack: request id (generated or propagated, bounded), one log line
//! per request, admission (body limit and timeout, concurrency limit, health exempt: `limit`),
//! `Connection: close` while draining, and JSON bodies on every error response.

use std::time::Duration;

use axum::{
    Router,
    extract::{Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use http::StatusCode;
use tokio::sync::watch;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};
use tracing::Span;

use crate::{Options, error::ApiError, limit};

/// Bodies declared larger than the limit but at most this large are read and dropped before the
/// 413 goes out (see `refuse_declared_oversize`); larger ones are refused at once.
const DRAIN_CAP: u64 = 16 << 20;
/// How long reading such a body may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) fn apply(router: Router, options: &Options, ready: watch::Receiver<bool>) -> Router {
    let limits = limit::Limits {
        max_concurrency: options.max_concurrency,
        body_limit: options.body_limit,
        body_timeout: options.body_timeout,
    };
    let rejections = limit::Rejections {
        overloaded: || {
            ApiError::from_http(StatusCode::SERVICE_UNAVAILABLE, "server is overloaded, retry later").into_response()
        },
        too_large: |limit| ApiError::body_too_large(limit).into_response(),
        too_slow: |timeout| {
            ApiError::from_http(
                StatusCode::REQUEST_TIMEOUT,
                format!("the request body did not arrive within {}", humantime::format_duration(timeout)),
            )
            .into_response()
        },
        unreadable: || ApiError::from_http(StatusCode::BAD_REQUEST, "could not read the request body").into_response(),
    };
    let router = limit::admit(router, limits, classify, rejections)
        .layer(middleware::from_fn_with_state(options.body_limit, refuse_declared_oversize))
        .layer(middleware::from_fn_with_state(ready, close_while_draining))
        .layer(middleware::map_response(crate::error::json_errors))
        .layer(middleware::from_fn(track_http));
    observe(router, rest_span, |res: &Response, latency: Duration, _span: &Span| {
        tracing::info!(status = res.status().as_u16(), latency_ms = latency.as_secs_f64() * 1e3, "request");
    })
}

fn rest_span(req: &Request) -> Span {
    tracing::info_span!(
        "http",
        method = method_label(req.method()),
        path = bounded(req.uri().path()),
        request_id = request_id(req),
    )
}

/// The request's id, as the id layers left it (bounded and sane, see `sanitize_request_id`).
pub fn request_id(req: &Request) -> &str {
    req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// What both listeners put around their routes to observe requests: a sane request id (the
/// client's, or a new UUID) on the request and the response, and one span and log line per request.
pub fn observe(router: Router, span: fn(&Request) -> Span, on_response: fn(&Response, Duration, &Span)) -> Router {
    router
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(span).on_request(()).on_response(on_response).on_failure(()))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(middleware::from_fn(sanitize_request_id))
}

/// `/gtg` (with or without `?details`) is the load balancer's: never shed, never queued.
fn classify(request: &Request) -> limit::Admission {
    if request.uri().path() == "/gtg" { limit::Admission::Exempt } else { limit::Admission::Buffered }
}

/// While draining, HTTP/1.1 responses say `Connection: close`, so keep-alive clients reconnect
/// (through the load balancer, to another instance) instead of finding the socket closed under
/// them at the end of the drain. HTTP/2 has no such header: GOAWAY does it at shutdown.
async fn close_while_draining(State(ready): State<watch::Receiver<bool>>, request: Request, next: Next) -> Response {
    let http1 = request.version() <= http::Version::HTTP_11;
    let mut response = next.run(request).await;
    if http1 && !*ready.borrow() {
        response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
    }
    response
}

/// Longest request id kept; longer ones (and ones with other characters than these) are replaced
/// by a fresh one, so that a client cannot make us echo or log arbitrary bytes.
pub const MAX_REQUEST_ID: usize = 128;

/// Drops an `x-request-id` that is too long or not made of `[A-Za-z0-9._:-]`; the id layer then
/// generates one. Used by both listeners.
pub async fn sanitize_request_id(mut request: Request, next: Next) -> Response {
    let valid = |v: &http::HeaderValue| {
        let bytes = v.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID
            && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    };
    if request.headers().get_all("x-request-id").iter().any(|v| !valid(v))
        || request.headers().get_all("x-request-id").iter().count() > 1
    {
        request.headers_mut().remove("x-request-id");
    }
    next.run(request).await
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

/// 413 for a body whose Content-Length is over the limit. The body is read and dropped first (up
/// to `DRAIN_CAP` bytes and `DRAIN_TIMEOUT`), like nginx's lingering close: a server that answers
/// and closes with unread data in the socket makes the kernel send RST, and the client sees
/// "connection reset" or "broken pipe" instead of the 413. Reading it also keeps the connection
/// usable. Chunked bodies are limited while read (`RequestBodyLimitLayer`).
async fn refuse_declared_oversize(State(limit): State<usize>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => {
            // A client that waits for `100 Continue` has sent nothing yet: answer at once (hyper
            // sends 100 only when the body is first read, so it never goes out).
            let expects_continue = request
                .headers()
                .get(http::header::EXPECT)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
            if length <= DRAIN_CAP && !expects_continue {
                let mut body = request.into_body().into_data_stream();
                let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
                    while let Some(Ok(_)) = futures::StreamExt::next(&mut body).await {}
                })
                .await;
            }
            ApiError::body_too_large(limit).into_response()
        }
        _ => next.run(request).await,
    }
}

/// Counts and times every REST request by route template, method and status.
async fn track_http(request: Request, next: Next) -> Response {
    // `/candidate/:name`: no braces in label values, which simple exposition-format parsers
    // (e.g. the prometheus-parse crate) cannot read.
    let route = crate::routes::route_template(request.uri().path()).replace('{', ":").replace('}', "");
    let method = method_label(request.method());
    let _in_flight = InFlight::new("http_requests_in_flight");
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let labels = [("route", route), ("method", method.to_owned()), ("status", response.status().as_str().to_owned())];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    response
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
