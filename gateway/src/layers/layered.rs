//! Bench only (feature `library-plumbing`): the REST edge of `layers` as one axum `from_fn` layer
//! per step, the way the tower/axum documentation composes middleware. `bench/plumbing.py`
//! measures it against the one-function edge it replaces; the server uses it only when built with
//! the feature and started with `CANDIDATES_LIBRARY_PLUMBING` naming `edge`.

use std::{borrow::Cow, sync::Arc, time::Instant};

use axum::{
    Router,
    extract::{Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use http::HeaderValue;

use super::{RestEdge, gate, log_request, refuse_declared_oversize, rest_line, route_label, status_label};
use candidates_edge::observe::{InFlight, method_label, observe};

/// Layers added last run first: observe, metrics, drain header, JSON errors, auth, 413, admission.
pub(super) fn apply(router: Router, edge: RestEdge) -> Router {
    let edge = Arc::new(edge);
    router
        .layer(middleware::from_fn_with_state(edge.clone(), admission))
        .layer(middleware::from_fn_with_state(edge.clone(), declared_oversize))
        .layer(middleware::from_fn_with_state(edge.clone(), authenticated))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn_with_state(edge, close_while_draining))
        .layer(middleware::from_fn(metered))
        .layer(middleware::from_fn(observed))
}

async fn observed(request: Request, next: Next) -> Response {
    let line = rest_line(&request);
    observe(request, line, log_request, |request| next.run(request)).await
}

async fn metered(request: Request, next: Next) -> Response {
    let route = route_label(request.uri().path());
    let method = method_label(request.method());
    let _in_flight = InFlight::new("http_requests_in_flight");
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = [
        ("route", Cow::Borrowed(route)),
        ("method", Cow::Borrowed(method)),
        ("status", status_label(response.status())),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    response
}

async fn close_while_draining(State(edge): State<Arc<RestEdge>>, request: Request, next: Next) -> Response {
    let http1 = request.version() <= http::Version::HTTP_11;
    let mut response = next.run(request).await;
    if http1 && !*edge.ready.borrow() {
        response.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn json_errors(request: Request, next: Next) -> Response {
    crate::error::json_errors(next.run(request).await).await
}

async fn authenticated(State(edge): State<Arc<RestEdge>>, mut request: Request, next: Next) -> Response {
    let gate = gate(&request);
    match edge.auth.gate(&mut request, gate).await {
        Ok(()) => next.run(request).await,
        Err(error) => crate::error::ApiError::from(tonic::Status::from(error)).into_response(),
    }
}

async fn declared_oversize(State(edge): State<Arc<RestEdge>>, request: Request, next: Next) -> Response {
    match refuse_declared_oversize(edge.body_limit, request).await {
        Ok(request) => next.run(request).await,
        Err(refused) => refused,
    }
}

async fn admission(State(edge): State<Arc<RestEdge>>, request: Request, next: Next) -> Response {
    edge.admit.run(request, |request| next.run(request)).await
}
