//! One port for REST and gRPC (`--single-port`): platforms that route a single port (Cloud Run,
//! App Runner, a Kubernetes ingress) send both to it. Each request goes to one of the two routers by
//! its content type: gRPC (`application/grpc`, `application/grpc+proto`, any `application/grpc+…`
//! or `application/grpc;…`) to the gRPC listener's router, edge, health and reflection included;
//! everything else, gRPC-Web (`application/grpc-web…`) among it, to the REST router. gRPC then
//! arrives over HTTP/2 (h2c with prior knowledge, or h2 over TLS), which the accept loop's
//! auto-detecting builder serves on the same connection as HTTP/1.1.

use axum::{Router, extract::Request};
use tower::ServiceExt;

/// The REST router with gRPC dispatched to `grpc` by content type.
pub fn router(rest: Router, grpc: Router) -> Router {
    let service = tower::service_fn(move |request: Request| {
        let target = if is_grpc(request.headers()) { grpc.clone() } else { rest.clone() };
        target.oneshot(request)
    });
    Router::new().fallback_service(service)
}

/// Whether a request is gRPC (not gRPC-Web): its content type is `application/grpc`, alone or
/// followed by `+` (a message format) or `;` (parameters), as the gRPC HTTP/2 protocol spells it.
pub fn is_grpc(headers: &http::HeaderMap) -> bool {
    let Some(value) = headers.get(http::header::CONTENT_TYPE) else { return false };
    let value = value.as_bytes();
    let prefix = b"application/grpc";
    value.len() >= prefix.len()
        && value[..prefix.len()].eq_ignore_ascii_case(prefix)
        && matches!(value.get(prefix.len()), None | Some(b'+' | b';'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(content_type: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, content_type.parse().unwrap());
        headers
    }

    #[test]
    fn grpc_by_content_type_and_grpc_web_is_not() {
        for grpc in ["application/grpc", "application/grpc+proto", "application/grpc;charset=utf-8", "Application/GRPC"]
        {
            assert!(is_grpc(&headers(grpc)), "{grpc}");
        }
        for other in [
            "application/grpc-web",
            "application/grpc-web+proto",
            "application/grpc-web-text",
            "application/grpcx",
            "application/json",
            "text/plain",
        ] {
            assert!(!is_grpc(&headers(other)), "{other}");
        }
        assert!(!is_grpc(&http::HeaderMap::new()));
    }
}
