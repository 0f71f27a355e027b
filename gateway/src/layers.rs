//! The REST listener's tower stack: request id (generated or propagated), one log line per request,
//! a body limit, load shedding, and JSON bodies on every error response.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use http::StatusCode;
use tokio::sync::Semaphore;
use tower_http::{
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};
use tracing::Span;

use crate::{Options, error::ApiError};

/// Bodies declared larger than the limit but at most this large are read and dropped before the
/// 413 goes out (see `refuse_declared_oversize`); larger ones are refused at once.
const DRAIN_CAP: u64 = 16 << 20;
/// How long reading such a body may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) fn apply(router: Router, options: &Options) -> Router {
    let router = router
        .layer(RequestBodyLimitLayer::new(options.body_limit))
        .layer(middleware::from_fn_with_state(options.body_limit, refuse_declared_oversize));
    load_shed(router, options.max_concurrency, || {
        ApiError::from_http(StatusCode::SERVICE_UNAVAILABLE, "server is overloaded, retry later").into_response()
    })
    .layer(middleware::map_response(crate::error::json_errors))
    .layer(middleware::from_fn(track_http))
    .layer(PropagateRequestIdLayer::x_request_id())
    .layer(
        TraceLayer::new_for_http()
            .make_span_with(|req: &Request| {
                tracing::info_span!(
                    "http",
                    method = %req.method(),
                    path = %req.uri().path(),
                    request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or(""),
                )
            })
            .on_request(())
            .on_response(|res: &Response, latency: Duration, _span: &Span| {
                tracing::info!(status = res.status().as_u16(), latency_ms = latency.as_secs_f64() * 1e3, "request");
            })
            .on_failure(()),
    )
    .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
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
            if length <= DRAIN_CAP {
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

#[derive(Clone)]
struct Shed {
    permits: Arc<Semaphore>,
    reject: fn() -> Response,
}

/// Serves at most `max_concurrency` requests at once; beyond that answers `reject()` at once
/// rather than queue without bound (the load balancer retries elsewhere, the autoscaler sees the
/// load). Used by both listeners, each with its own protocol's rejection.
pub fn load_shed(router: Router, max_concurrency: usize, reject: fn() -> Response) -> Router {
    let state = Shed { permits: Arc::new(Semaphore::new(max_concurrency)), reject };
    router.layer(middleware::from_fn_with_state(state, shed))
}

async fn shed(State(shed): State<Shed>, request: Request, next: Next) -> Response {
    match shed.permits.try_acquire_owned() {
        Ok(_permit) => next.run(request).await,
        Err(_) => (shed.reject)(),
    }
}

/// Counts and times every REST request by route template, method and status.
async fn track_http(request: Request, next: Next) -> Response {
    // `/candidate/:name`: no braces in label values, which simple exposition-format parsers
    // (e.g. the prometheus-parse crate) cannot read.
    let route = crate::routes::route_template(request.uri().path()).replace('{', ":").replace('}', "");
    let method = request.method().as_str().to_owned();
    let in_flight = metrics::gauge!("http_requests_in_flight");
    in_flight.increment(1.0);
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    in_flight.decrement(1.0);
    let labels = [("route", route), ("method", method), ("status", response.status().as_str().to_owned())];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    response
}
