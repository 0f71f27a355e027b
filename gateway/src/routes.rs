//! REST handlers: path and query → gRPC request → JSON. [`ROUTES`] is the table the router is
//! built from; a test checks it against the `google.api.http` annotations in the descriptor.

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::{FromRequestParts, Path, Query, Request, State},
    http::{HeaderValue, Method, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
    routing::{MethodFilter, MethodRouter, on},
};
use candidates_api::v1::{
    DeleteCandidateRequest, GetCandidateRequest, GetStatusRequest, ListCandidatesRequest, ListCandidatesResponse,
    PutCandidateRequest,
};
use futures::stream;

use crate::{Gateway, Upstream, error::ApiError};
use axum::Extension;
use candidates_edge::{auth::Caller, limit::Lease, observe::TraceContext};
use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};

/// The RPCs of `candidates.v1.CandidateService` that REST routes call. A test checks the names
/// against the compiled descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rpc {
    GetStatus,
    GetCandidate,
    PutCandidate,
    DeleteCandidate,
    ListCandidates,
}

impl Rpc {
    /// The method name in the descriptor.
    pub const fn name(self) -> &'static str {
        match self {
            Self::GetStatus => "GetStatus",
            Self::GetCandidate => "GetCandidate",
            Self::PutCandidate => "PutCandidate",
            Self::DeleteCandidate => "DeleteCandidate",
            Self::ListCandidates => "ListCandidates",
        }
    }
}

impl PartialEq<&str> for Rpc {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

impl std::fmt::Display for Rpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One REST route: the HTTP method, the path template (google.api.http syntax, which is also
/// axum's) and the RPC of `candidates.v1.CandidateService` it calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub rpc: Rpc,
}

/// Every route the gateway serves.
pub const ROUTES: &[RouteSpec] = &[
    RouteSpec { method: Method::GET, path: "/gtg", rpc: Rpc::GetStatus },
    RouteSpec { method: Method::GET, path: "/candidate/{name}", rpc: Rpc::GetCandidate },
    RouteSpec { method: Method::POST, path: "/candidate/{name}", rpc: Rpc::PutCandidate },
    RouteSpec { method: Method::DELETE, path: "/candidate/{name}", rpc: Rpc::DeleteCandidate },
    RouteSpec { method: Method::GET, path: "/candidates", rpc: Rpc::ListCandidates },
];

/// The route template a request path matches (`/candidate/{name}`), or `unmatched`: a bounded
/// label for metrics.
pub fn route_template(path: &str) -> &'static str {
    ROUTES.iter().map(|r| r.path).find(|template| matches_template(template, path)).unwrap_or("unmatched")
}

/// Whether `path` has the template's segments: literal ones equal, `{...}` ones non-empty.
fn matches_template(template: &str, path: &str) -> bool {
    let (mut template, mut path) = (template.split('/'), path.split('/'));
    loop {
        match (template.next(), path.next()) {
            (None, None) => return true,
            (Some(t), Some(s)) if t.starts_with('{') && !s.is_empty() => {}
            (Some(t), Some(s)) if !t.starts_with('{') && t == s => {}
            _ => return false,
        }
    }
}

#[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
fn handler(rpc: Rpc, method: &Method) -> MethodRouter<Arc<Gateway>> {
    let filter = MethodFilter::try_from(method.clone()).expect("route methods are standard");
    match rpc {
        Rpc::GetStatus => on(filter, gtg),
        Rpc::GetCandidate => on(filter, get_candidate),
        Rpc::PutCandidate => on(filter, put_candidate),
        Rpc::DeleteCandidate => on(filter, delete_candidate),
        Rpc::ListCandidates => on(filter, list_candidates),
    }
}

pub(crate) fn routes(gateway: Gateway) -> Router {
    let mut by_path: Vec<(&str, MethodRouter<Arc<Gateway>>)> = Vec::new();
    for route in ROUTES {
        let method_router = handler(route.rpc, &route.method);
        match by_path.iter_mut().find(|(p, _)| *p == route.path) {
            Some((_, existing)) => *existing = std::mem::take(existing).merge(method_router),
            None => by_path.push((route.path, method_router)),
        }
    }
    let router = by_path.into_iter().fold(Router::new(), |r, (path, mr)| r.route(path, mr));
    router
        .route(crate::openapi::PATH, axum::routing::get(|| async { Json(crate::openapi::document()) }))
        .fallback(not_found)
        .with_state(Arc::new(gateway))
}

async fn not_found() -> ApiError {
    ApiError::from_http(StatusCode::NOT_FOUND, "Not Found")
}

/// What a REST request passes on to its RPC: its request id, any `grpc-timeout` (the service
/// bounds the call by it and by its own default), a well-formed W3C trace context and the
/// `Grpc-Metadata-*` entries (`metadata`). Nothing else is copied.
#[derive(Clone, Default)]
struct Forwarded {
    request_id: Option<HeaderValue>,
    grpc_timeout: Option<HeaderValue>,
    /// For a remote upstream, which authenticates again (never logged, never HPACK-indexed).
    authorization: Option<HeaderValue>,
    /// Who the REST edge found is calling: the in-process service judges this caller.
    caller: Option<Caller>,
    trace: TraceContext,
    metadata: Arc<[(AsciiMetadataKey, AsciiMetadataValue)]>,
}

impl<S: Send + Sync> FromRequestParts<S> for Forwarded {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self {
            request_id: parts.headers.get("x-request-id").cloned(),
            grpc_timeout: parts.headers.get("grpc-timeout").cloned(),
            authorization: parts.headers.get(header::AUTHORIZATION).cloned(),
            caller: parts.extensions.get::<Caller>().cloned(),
            trace: TraceContext::of(&parts.headers),
            metadata: crate::metadata::incoming(&parts.headers)?.into(),
        })
    }
}

/// The `{name}` of `/candidate/{name}`, percent-decoded. A `%` that is not followed by two hex
/// digits is refused (400): decoded leniently, `abc%zz` was stored as is, the same name as
/// `abc%25zz`, and `abc%` was accepted.
struct NameSegment(String);

impl<S: Send + Sync> FromRequestParts<S> for NameSegment {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.path().rsplit_once('/').map_or("", |(_, segment)| segment);
        if !well_formed_escapes(raw) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                tonic::Code::InvalidArgument,
                "invalid name: malformed percent-encoding (each % must be followed by two hex digits)",
            )
            .into_response());
        }
        let Path(name) = Path::<String>::from_request_parts(parts, state).await.map_err(IntoResponse::into_response)?;
        Ok(Self(name))
    }
}

/// Whether every `%` in `segment` starts a `%XX` escape.
fn well_formed_escapes(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if !(i + 2 < bytes.len() && bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

impl Forwarded {
    /// The RPC's request: `message` with the forwarded headers as metadata.
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(caller) = &self.caller {
            request.extensions_mut().insert(caller.clone());
        }
        if let Some(value) = self.authorization.as_ref().and_then(|v| v.to_str().ok())
            && let Ok(mut value) = tonic::metadata::MetadataValue::try_from(value)
        {
            value.set_sensitive(true);
            request.metadata_mut().insert("authorization", value);
        }
        // With traces on, a remote upstream's span is a child of this request's edge span (an
        // unsampled request says so, and is not sampled there either); off, the client's own.
        let traceparent = candidates_edge::trace::current().map(|span| span.traceparent());
        let copied = [
            ("x-request-id", self.request_id.as_ref()),
            ("grpc-timeout", self.grpc_timeout.as_ref()),
            ("traceparent", traceparent.as_ref().or(self.trace.parent.as_ref())),
            ("tracestate", self.trace.state.as_ref()),
        ];
        for (name, value) in copied {
            if let Some(value) = value.and_then(|v| v.to_str().ok())
                && let Ok(value) = value.parse()
            {
                request.metadata_mut().insert(name, value);
            }
        }
        for (key, value) in self.metadata.iter() {
            request.metadata_mut().append(key.clone(), value.clone());
        }
        request
    }
}

/// A call's answer as JSON, its response metadata as `Grpc-Metadata-*` headers.
fn json<T: serde::Serialize>(response: tonic::Response<T>) -> Response {
    let (metadata, message, _) = response.into_parts();
    let mut response = Json(message).into_response();
    crate::metadata::outgoing(&metadata, response.headers_mut());
    response
}

/// Whether a `/gtg` query asks for the details (the key's presence is enough).
pub(crate) fn asks_for_details(query: Option<&str>) -> bool {
    query.is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(key, _)| key == "details"))
}

/// `GET /gtg`: 200 with no body when ready, 503 while starting or draining. With `?details`
/// (its presence is enough), the GetStatus RPC's `{"connected", "instance-id"}`, and 503 when
/// the store did not answer. The plain check touches neither the query parser nor the upstream:
/// it is what load balancers call, several times a second.
async fn gtg(State(gw): State<Arc<Gateway>>, request: Request) -> Result<Response, ApiError> {
    let ready = *gw.ready.borrow();
    let (mut parts, _) = request.into_parts();
    if !asks_for_details(parts.uri.query()) {
        return Ok(if ready {
            // An empty body, typed so that clients and spec checkers need not guess.
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")]).into_response()
        } else {
            ApiError::from_http(StatusCode::SERVICE_UNAVAILABLE, "not ready: starting or draining").into_response()
        });
    }
    // Read only here: the load balancer's plain check answers whatever headers came with it, and
    // copies none of them.
    let forwarded = Forwarded::from_request_parts(&mut parts, &()).await?;
    let status = gw.upstream.get_status(forwarded.request(GetStatusRequest {})).await?;
    let connected = status.get_ref().connected == "true";
    let mut response = json(status);
    if !(ready && connected) {
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    }
    Ok(response)
}

async fn get_candidate(
    State(gw): State<Arc<Gateway>>,
    NameSegment(name): NameSegment,
    forwarded: Forwarded,
) -> Result<Response, ApiError> {
    let candidate = gw.upstream.get_candidate(forwarded.request(GetCandidateRequest { name })).await?;
    Ok(json(candidate))
}

/// The body is ignored whatever its type (as the original service did); admission (`limit`) has
/// already read it within the size and time limits.
async fn put_candidate(
    State(gw): State<Arc<Gateway>>,
    NameSegment(name): NameSegment,
    forwarded: Forwarded,
) -> Result<Response, ApiError> {
    let candidate = gw.upstream.put_candidate(forwarded.request(PutCandidateRequest { name })).await;
    match candidate {
        Ok(candidate) => Ok(json(candidate)),
        // The original service's message, kept for clients that match on it (it had no access
        // control: refusals read the same on every route and listener).
        Err(status)
            if !matches!(
                status.code(),
                tonic::Code::InvalidArgument | tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
            ) =>
        {
            let mut error = ApiError::from(status);
            error.body.message = format!("Unable to update: {}", error.body.message);
            Err(error)
        }
        Err(status) => Err(status.into()),
    }
}

async fn delete_candidate(
    State(gw): State<Arc<Gateway>>,
    NameSegment(name): NameSegment,
    forwarded: Forwarded,
) -> Result<Response, ApiError> {
    let candidate = gw.upstream.delete_candidate(forwarded.request(DeleteCandidateRequest { name })).await?;
    Ok(json(candidate))
}

/// One ListCandidates call.
async fn fetch_page(
    upstream: &Upstream,
    request: tonic::Request<ListCandidatesRequest>,
) -> Result<ListCandidatesResponse, tonic::Status> {
    upstream.list_candidates(request).await.map(tonic::Response::into_inner)
}

/// Page size while streaming the whole list: the service's maximum, for the fewest store calls;
/// memory stays bounded by one page.
const STREAM_PAGE_SIZE: i32 = 1000;

#[derive(Debug, serde::Deserialize)]
struct ListQuery {
    page_size: Option<String>,
    page_token: Option<String>,
}

/// `GET /candidates`: with `page_size` or `page_token`, one page as
/// `{"candidates": [...], "next_page_token": "..."}`; without, every candidate as one JSON array,
/// streamed page by page so memory does not grow with the store. 404 when there are none.
async fn list_candidates(
    State(gw): State<Arc<Gateway>>,
    Query(query): Query<ListQuery>,
    lease: Option<Extension<Lease>>,
    forwarded: Forwarded,
) -> Result<Response, ApiError> {
    let page_size = match query.page_size.as_deref() {
        None => 0,
        Some(s) => s.parse::<i32>().map_err(|_| {
            ApiError::from_http(StatusCode::BAD_REQUEST, format!("page_size must be a non-negative integer, got {s:?}"))
        })?,
    };
    if query.page_size.is_some() || query.page_token.is_some() {
        let request = ListCandidatesRequest { page_size, page_token: query.page_token.unwrap_or_default() };
        let page = gw.upstream.list_candidates(forwarded.request(request)).await?;
        return Ok(json(page));
    }

    // The service never returns an empty page that is not the last.
    let request = ListCandidatesRequest { page_size: STREAM_PAGE_SIZE, page_token: String::new() };
    let first = fetch_page(&gw.upstream, forwarded.request(request)).await?;
    if first.candidates.is_empty() {
        return Err(ApiError::from(tonic::Status::not_found("no candidates")));
    }

    // Each chunk is one page: `[` + items, then `,` + items ..., then `]`. A task fetches the pages
    // and hands each chunk over when the client has taken the previous one; a client that leaves a
    // chunk untaken for `send_timeout` is given up on (no more store calls, permit released). An
    // error after the first byte cannot change the status any more, so the body is then aborted:
    // the client sees a truncated body, never a complete-looking partial list.
    let (chunks, received) = tokio::sync::mpsc::channel::<Bytes>(1);
    let completed = Arc::new(AtomicBool::new(false));
    // In the request's context: warnings about later pages (here and in the store) carry its id.
    candidates_edge::context::spawn(produce_pages(gw, forwarded, first, chunks, Arc::clone(&completed), lease));
    let body = stream::unfold(Some(received), move |received| {
        let completed = Arc::clone(&completed);
        async move {
            let mut received = received?;
            match received.recv().await {
                Some(chunk) => Some((Ok(chunk), Some(received))),
                None if completed.load(Ordering::Acquire) => None,
                None => Some((Err(std::io::Error::other("listing aborted")), None)),
            }
        }
    });
    // Fused: a body may be polled again after its end (the compression layer's reader does), and
    // an unfold stream panics on that.
    Ok(([(header::CONTENT_TYPE, "application/json")], Body::from_stream(futures::StreamExt::fuse(body)))
        .into_response())
}

/// Fetches the pages after `first` and sends one chunk per non-empty page; sets `completed` once
/// the closing `]` has been handed over.
#[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
async fn produce_pages(
    gw: Arc<Gateway>,
    forwarded: Forwarded,
    first: ListCandidatesResponse,
    chunks: tokio::sync::mpsc::Sender<Bytes>,
    completed: Arc<AtomicBool>,
    lease: Option<Extension<Lease>>,
) {
    let send_timeout = gw.send_timeout;
    let send = |chunk: Bytes| {
        let chunks = chunks.clone();
        async move {
            match chunks.send_timeout(chunk, send_timeout).await {
                Ok(()) => true,
                Err(tokio::sync::mpsc::error::SendTimeoutError::Timeout(_)) => {
                    static STALLED: candidates_edge::throttle::Throttle =
                        candidates_edge::throttle::Throttle::new("client stopped reading the listing");
                    if STALLED.admit(|| format!("send timeout {send_timeout:?}")) {
                        tracing::warn!(
                            request_id = candidates_edge::context::request_id(),
                            ?send_timeout,
                            "client stopped reading the listing; giving up on it"
                        );
                    }
                    false
                }
                // The client went away.
                Err(tokio::sync::mpsc::error::SendTimeoutError::Closed(_)) => false,
            }
        }
    };
    let mut page = first;
    let mut opened = false;
    loop {
        let mut chunk = Vec::with_capacity(page.candidates.len() * 32 + 2);
        for candidate in &page.candidates {
            chunk.push(if opened { b',' } else { b'[' });
            opened = true;
            serde_json::to_writer(&mut chunk, candidate).expect("candidate serializes");
        }
        if !chunk.is_empty() && !send(Bytes::from(chunk)).await {
            break;
        }
        if page.next_page_token.is_empty() {
            if send(Bytes::from_static(b"]")).await {
                completed.store(true, Ordering::Release);
            }
            break;
        }
        let request = ListCandidatesRequest { page_size: STREAM_PAGE_SIZE, page_token: page.next_page_token };
        page = match fetch_page(&gw.upstream, forwarded.request(request)).await {
            Ok(page) => page,
            Err(status) => {
                static FAILED: candidates_edge::throttle::Throttle =
                    candidates_edge::throttle::Throttle::new("listing failed mid-stream");
                if FAILED.admit(|| format!("{:?}: {}", status.code(), status.message())) {
                    tracing::error!(request_id = candidates_edge::context::request_id(), code = ?status.code(), message = status.message(), "listing failed mid-stream; aborting the response");
                }
                break;
            }
        };
    }
    if let Some(Extension(lease)) = lease {
        lease.release();
    }
}

#[cfg(test)]
mod tests {
    use super::route_template;

    #[test]
    fn route_templates_are_bounded() {
        assert_eq!(route_template("/candidate/John%20Smith"), "/candidate/{name}");
        assert_eq!(route_template("/candidates"), "/candidates");
        assert_eq!(route_template("/gtg"), "/gtg");
        for other in ["/", "/candidate/", "/candidate/a/b", "/nope", "/candidates/x"] {
            assert_eq!(route_template(other), "unmatched", "{other}");
        }
    }
}
