//! gRPC status → HTTP, once: the grpc-gateway / Envoy / google.rpc.Code table, and the JSON error
//! body `{"code": <gRPC code>, "message": "...", "details": []}` every error response carries.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use tonic::Code;

/// HTTP status for a gRPC code, exactly as grpc-gateway's `HTTPStatusFromCode`.
#[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        // 499 Client Closed Request (nginx); grpc-gateway uses it since v2.13.
        Code::Cancelled => StatusCode::from_u16(499).expect("499 is a valid status"),
        Code::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        // Deliberately not 412, as grpc-gateway.
        Code::FailedPrecondition => StatusCode::BAD_REQUEST,
        Code::Aborted => StatusCode::CONFLICT,
        Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
    }
}

/// For errors that arise in HTTP itself (routing, limits), the gRPC code their body reports;
/// grpc-gateway's routing-error handler does the same for 400/404/405.
pub fn code_for_http(status: StatusCode) -> Code {
    match status.as_u16() {
        400 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        405 => Code::Unimplemented,
        408 | 504 => Code::DeadlineExceeded,
        409 => Code::Aborted,
        413 | 429 => Code::ResourceExhausted,
        499 => Code::Cancelled,
        501 => Code::Unimplemented,
        503 => Code::Unavailable,
        500 => Code::Internal,
        _ => Code::Unknown,
    }
}

/// The error body, shaped as `google.rpc.Status` in proto3 JSON.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub code: i32,
    pub message: String,
    pub details: Vec<serde_json::Value>,
}

/// An error response: an HTTP status and the JSON body.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    /// RFC 6750's challenge on 401 and 403, from the status's `www-authenticate` metadata.
    pub challenge: Option<HeaderValue>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: Code, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody { code: code as i32, message: message.into(), details: Vec::new() },
            challenge: None,
        }
    }

    /// An error born in HTTP (routing, limits): the status decides the code.
    pub fn from_http(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(status, code_for_http(status), message)
    }

    /// 413: the request body is over the `--body-limit`, however that was found out (its
    /// declared length, or reading it).
    pub fn body_too_large(limit: usize) -> Self {
        Self::from_http(StatusCode::PAYLOAD_TOO_LARGE, format!("request body is larger than {limit} bytes"))
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let message =
            if status.code() == Code::NotFound { "Not Found".to_owned() } else { status.message().to_owned() };
        let mut error = Self::new(http_status(status.code()), status.code(), message);
        if matches!(status.code(), Code::Unauthenticated | Code::PermissionDenied) {
            error.challenge = status
                .metadata()
                .get(candidates_edge::auth::CHALLENGE)
                .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
                .or_else(|| (status.code() == Code::Unauthenticated).then(|| HeaderValue::from_static("Bearer")));
        }
        error
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

/// Middleware: gives error responses made by layers or the router (405, 413, shed 503, ...) the
/// same JSON body as errors from handlers. Responses that already are JSON pass unchanged.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let message = status.canonical_reason().unwrap_or("Error");
    let mut json = ApiError::from_http(status, message).into_response();
    // Keep headers such as `Allow` (405) and `Retry-After`, but not the old body's framing.
    let (parts, _) = response.into_parts();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            json.headers_mut().insert(name.clone(), value.clone());
        }
    }
    json.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    /// grpc-gateway's table (runtime/errors.go, HTTPStatusFromCode), row by row.
    #[test]
    fn grpc_gateway_table() {
        let table = [
            (Code::Ok, 200),
            (Code::Cancelled, 499),
            (Code::Unknown, 500),
            (Code::InvalidArgument, 400),
            (Code::DeadlineExceeded, 504),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::PermissionDenied, 403),
            (Code::ResourceExhausted, 429),
            (Code::FailedPrecondition, 400),
            (Code::Aborted, 409),
            (Code::OutOfRange, 400),
            (Code::Unimplemented, 501),
            (Code::Internal, 500),
            (Code::Unavailable, 503),
            (Code::DataLoss, 500),
            (Code::Unauthenticated, 401),
        ];
        for (code, http) in table {
            assert_eq!(http_status(code).as_u16(), http, "{code:?}");
        }
        // Unknown numeric codes become Unknown in tonic, so 500.
        assert_eq!(http_status(Code::from_i32(42)).as_u16(), 500);
    }

    #[test]
    fn not_found_message_is_fixed() {
        let e = ApiError::from(tonic::Status::not_found("no such row in table X"));
        assert_eq!((e.status.as_u16(), e.body.code, e.body.message.as_str()), (404, 5, "Not Found"));
    }
}
