//! gRPC-Web on the REST listener. A gRPC-Web call (a POST with a gRPC-Web content type on one of
//! the service's method paths) goes, before the REST edge, to the server's translating router,
//! which brings the gRPC listener's own edge (admission, deadline, access line, metrics, policy).
//! Anything else on those paths is refused by a REST route, inside the REST edge, so a refusal has
//! a request id, an access line, a metric and `Connection: close` while draining like any answer.

use axum::{
    Router,
    extract::Request,
    response::{IntoResponse, Response},
    routing::any,
};
use http::{HeaderValue, Method, StatusCode, header};
use tower::ServiceExt;

use crate::error::ApiError;

/// The gRPC-Web calls of one service and how to recognise them.
#[derive(Clone)]
pub struct GrpcWeb {
    /// `/<package>.<Service>/`.
    prefix: String,
    /// Serves a gRPC-Web call on `{prefix}{method}`.
    calls: Router,
}

impl std::fmt::Debug for GrpcWeb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcWeb").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl GrpcWeb {
    /// `calls` serves `/{service}/{method}` for gRPC-Web requests (the server's tonic-web router).
    pub fn new(service: &str, calls: Router) -> Self {
        Self { prefix: format!("/{service}/"), calls }
    }

    /// A gRPC-Web call: a POST, a gRPC-Web content type, one method segment after the prefix.
    pub(crate) fn is_call(&self, request: &Request) -> bool {
        request.method() == Method::POST
            && request.uri().path().strip_prefix(&self.prefix).is_some_and(|m| !m.is_empty() && !m.contains('/'))
            && request.headers().get(header::CONTENT_TYPE).is_some_and(|v| is_grpc_web(v.as_bytes()))
    }

    /// The REST routes that refuse what is not a gRPC-Web call on the service's paths.
    pub(crate) fn refusals(&self) -> Router<()> {
        Router::new().route(&format!("{}{{method}}", self.prefix), any(refuse))
    }

    /// Serves a gRPC-Web call ([`is_call`](Self::is_call)), before the REST edge: the translating
    /// router brings the gRPC listener's.
    pub(crate) async fn call(&self, request: Request) -> Response {
        match self.calls.clone().oneshot(request).await {
            Ok(response) => response,
            Err(infallible) => match infallible {},
        }
    }
}

async fn refuse(method: Method) -> Response {
    if method != Method::POST {
        let mut refused =
            ApiError::from_http(StatusCode::METHOD_NOT_ALLOWED, "a gRPC-Web call is a POST").into_response();
        refused.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return refused;
    }
    ApiError::from_http(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "this path takes gRPC-Web (content-type application/grpc-web+proto or application/grpc-web-text); gRPC is served on the gRPC port",
    )
    .into_response()
}

/// The content types tonic-web translates (the protobuf ones; `+json` is not supported).
fn is_grpc_web(content_type: &[u8]) -> bool {
    matches!(
        content_type,
        b"application/grpc-web"
            | b"application/grpc-web+proto"
            | b"application/grpc-web-text"
            | b"application/grpc-web-text+proto"
    )
}
