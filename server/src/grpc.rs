//! The gRPC side: CandidateService + grpc.health.v1 + reflection (v1 and v1alpha) as one router,
//! with the deadline every call gets. The network listener adds shedding, request ids and a log
//! line per RPC; the in-process gateway calls the same router without them (the REST listener
//! already did that work).
//!
//! We serve the tonic routes with our own stack instead of `tonic::transport::Server` because its
//! built-in `grpc-timeout` handling answers CANCELLED, while gRPC clients expect DEADLINE_EXCEEDED.

use std::time::Duration;

use axum::{
    extract::{Request, State},
    middleware::{self, Next},
    response::Response,
};
use candidates_api::v1::candidate_service_server::CandidateServiceServer;
use candidates_gateway::{
    layers::{observe, request_id},
    limit::{Admission, Limits, Rejections, admit},
};
use tonic::{Status, service::Routes};
use tonic_health::pb::health_server::{Health, HealthServer};
use tracing::Span;

use crate::service::CandidateApi;

/// Every gRPC service of the server, each call bounded by its deadline.
pub fn router(api: CandidateApi, health: HealthServer<impl Health>, default_deadline: Duration) -> axum::Router {
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(candidates_api::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let routes = Routes::new(CandidateServiceServer::new(api))
        .add_service(health)
        .add_service(reflection().build_v1().expect("descriptor set is valid"))
        .add_service(reflection().build_v1alpha().expect("descriptor set is valid"));
    routes.prepare().into_axum_router().layer(middleware::from_fn_with_state(default_deadline, deadline))
}

/// What the network listener adds around [`router`]: content-type check, admission (health
/// exempt, request message read before a permit is taken), metrics, request ids and a log line.
pub fn network_layers(router: axum::Router, limits: Limits) -> axum::Router {
    let rejections = Rejections {
        overloaded: || Status::resource_exhausted("server is overloaded, retry with backoff").into_http(),
        too_large: |limit| Status::resource_exhausted(format!("request message larger than {limit} bytes")).into_http(),
        too_slow: |timeout| {
            Status::deadline_exceeded(format!(
                "the request message did not arrive within {}",
                humantime::format_duration(timeout)
            ))
            .into_http()
        },
        unreadable: || Status::cancelled("could not read the request message").into_http(),
    };
    let router = admit(router, limits, classify, rejections)
        .layer(middleware::from_fn(require_grpc_content_type))
        .layer(middleware::from_fn(crate::metrics::track_grpc));
    observe(
        router,
        |req: &Request| {
            tracing::info_span!("grpc", rpc = crate::metrics::rpc_label(req.uri().path()), request_id = request_id(req))
        },
        |res: &Response, latency: Duration, _span: &Span| {
            tracing::info!(grpc_status = status_code(res), latency_ms = latency.as_secs_f64() * 1e3, "rpc");
        },
    )
}

/// Health checks are never shed; CandidateService calls are unary with small messages (read
/// first); the rest (reflection streams, unknown paths) take a permit as they come.
fn classify(request: &Request) -> Admission {
    let path = request.uri().path();
    if path.starts_with("/grpc.health.v1.Health/") {
        Admission::Exempt
    } else if path
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(candidates_api::SERVICE_NAME))
        .is_some_and(|p| p.starts_with('/'))
    {
        Admission::Buffered
    } else {
        Admission::Streaming
    }
}

/// The gRPC spec (PROTOCOL-HTTP2): a request whose content-type does not begin with
/// `application/grpc` gets HTTP 415, so that a plain HTTP/2 client does not read the trailers-only
/// error of a 200 as success.
async fn require_grpc_content_type(request: Request, next: Next) -> Response {
    let grpc = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    if grpc {
        return next.run(request).await;
    }
    let mut response = Status::unimplemented("content-type must be application/grpc").into_http::<axum::body::Body>();
    *response.status_mut() = http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
    response
}

/// The gRPC status code of a unary response, as sent. Errors are trailers-only (grpc-status in the
/// headers); OK responses carry it in the trailers, so absent here means 0.
pub fn status_code(response: &Response) -> &str {
    response.headers().get("grpc-status").and_then(|v| v.to_str().ok()).unwrap_or("0")
}

/// Bounds a call by the caller's `grpc-timeout` (or the server default if none or longer) and
/// answers DEADLINE_EXCEEDED when it passes; the handler's future, store call included, is dropped.
async fn deadline(State(default): State<Duration>, request: Request, next: Next) -> Response {
    let timeout = match request.headers().get("grpc-timeout").map(|v| parse_grpc_timeout(v.as_bytes())) {
        None => default,
        Some(Some(t)) => t.min(default),
        Some(None) => return Status::invalid_argument("malformed grpc-timeout header").into_http::<axum::body::Body>(),
    };
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            Status::deadline_exceeded(format!("deadline of {timeout:?} exceeded")).into_http::<axum::body::Body>()
        }
    }
}

/// `grpc-timeout`: 1 to 8 ASCII digits and a unit (H M S m u n), per the gRPC HTTP/2 spec.
pub fn parse_grpc_timeout(value: &[u8]) -> Option<Duration> {
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_header() {
        assert_eq!(parse_grpc_timeout(b"100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_grpc_timeout(b"2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout(b"1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout(b"99999999n"), Some(Duration::from_nanos(99_999_999)));
        for bad in [&b""[..], b"m", b"10", b"10x", b"123456789S", b"-1S", b"1.5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
