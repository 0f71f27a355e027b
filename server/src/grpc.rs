//! The gRPC side: CandidateService + grpc.health.v1 + reflection (v1 and v1alpha) as the gRPC
//! listener's router, behind one edge middleware (request id, log line, metrics, shedding, the
//! deadline every call gets). The in-process gateway calls the service directly ([`in_process`])
//! with the same deadline and without the rest (the REST listener already did that work).
//!
//! We serve the tonic routes with our own stack instead of `tonic::transport::Server` because its
//! built-in `grpc-timeout` handling answers CANCELLED, while gRPC clients expect DEADLINE_EXCEEDED.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use axum::{extract::Request, response::Response};
use candidates_api::v1::{
    self as pb,
    candidate_service_server::{CandidateService, CandidateServiceServer},
};
use candidates_edge::{
    auth::{self, Auth},
    limit::{Admission, Admit, Limits, Rejections},
    observe::{ACCESS_LOG, InFlight, Seen, latency_ms, observe},
};
use candidates_gateway::Upstream;
use tonic::{Status, codec::CompressionEncoding, service::Routes};
use tonic_health::pb::health_server::{Health, HealthServer};
use tower::ServiceExt;

use crate::service::CandidateApi;

/// The gRPC listener's router: every service of the server behind one edge middleware (request
/// id and access line; metrics; content-type check; admission, health exempt, request message
/// read before a permit is taken; the call's deadline).
#[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
pub fn router(
    api: CandidateApi,
    health: HealthServer<impl Health>,
    limits: Limits,
    default_deadline: Duration,
    stream_idle: Duration,
    auth: Arc<Auth>,
    compression: bool,
) -> axum::Router {
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(candidates_api::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    // Compressed requests are always accepted; their decompressed size is held to the same limit
    // as a plain message (tonic: RESOURCE_EXHAUSTED), so a small bomb cannot become a large
    // buffer. Responses are compressed when the client accepts it and --compression is on; small
    // ones are sent plain (`service::reply`).
    let mut service = CandidateServiceServer::new(api)
        .max_decoding_message_size(limits.body_limit)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd);
    if compression {
        service = service.send_compressed(CompressionEncoding::Zstd).send_compressed(CompressionEncoding::Gzip);
    }
    let routes = Routes::new(service)
        .add_service(health)
        .add_service(reflection().build_v1().expect("descriptor set is valid"))
        .add_service(reflection().build_v1alpha().expect("descriptor set is valid"));
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
        malformed: || Status::invalid_argument("the request message could not be decoded").into_http(),
    };
    let admit = Admit::new(limits, classify, rejections).with_body_check(unary_framing);
    let edge =
        Arc::new(GrpcEdge { admit, default_deadline, stream_idle, auth, routes: routes.prepare().into_axum_router() });
    // One service around the routes, not a `from_fn` layer on each: axum boxes a layered route's
    // service and future per call, and `from_fn` clones everything beneath it (as the REST edge).
    let service = tower::service_fn(move |request: Request| {
        let edge = Arc::clone(&edge);
        async move { Ok::<_, std::convert::Infallible>(grpc_edge(&edge, request).await) }
    });
    axum::Router::new().fallback_service(service)
}

/// gRPC-Web for `CandidateService` on the REST listener: tonic-web turns each call into plain
/// gRPC and its answer back, around `grpc` (the gRPC listener's router, edge included, so a call
/// is admitted, bounded, logged and counted as on that listener). Health and reflection are not
/// exposed here; the gateway refuses anything but gRPC-Web on these paths (415, 405), and gRPC
/// itself belongs on the gRPC port (tonic-web would pass h2 gRPC through).
pub fn web(grpc: axum::Router) -> candidates_gateway::grpc_web::GrpcWeb {
    let path = format!("/{}/{{method}}", candidates_api::SERVICE_NAME);
    let service = tower::ServiceBuilder::new().layer(tonic_web::GrpcWebLayer::new()).service(grpc);
    candidates_gateway::grpc_web::GrpcWeb::new(
        candidates_api::SERVICE_NAME,
        axum::Router::new().route_service(&path, service),
    )
}

struct GrpcEdge {
    admit: Admit,
    default_deadline: Duration,
    /// A stream whose response has sent nothing for this long is ended (DEADLINE_EXCEEDED).
    stream_idle: Duration,
    auth: Arc<Auth>,
    /// Every service of the listener (tonic's routes, by path).
    routes: axum::Router,
}

async fn grpc_edge(edge: &GrpcEdge, request: Request) -> Response {
    // The RPC, as a closed set: the access line's and the metrics' label.
    let rpc = crate::metrics::rpc_label(request.uri().path());
    observe(request, Rpc(rpc), log_rpc, |request| async move {
        let _in_flight = InFlight::of(crate::metrics::grpc_in_flight());
        let started = std::time::Instant::now();
        let streaming = classify(&request) == Admission::Streaming;
        let mut request = request;
        let refused = match not_grpc(&request) {
            Some(refused) => Some(refused),
            None => {
                let gate = gate(request.uri().path());
                edge.auth.gate(&mut request, gate).await.err().map(|error| Status::from(error).into_http())
            }
        };
        let mut response = match refused {
            None => edge.admit.run(request, |request| deadline(edge.default_deadline, request, &edge.routes)).await,
            Some(refused) => refused,
        };
        if streaming {
            // The deadline above bounds the call until its response head; a stream then lives as
            // long as its client sends, and no longer than `stream_idle` without a message.
            response = response.map(|body| IdleEnded::wrap(body, edge.stream_idle));
        }
        crate::metrics::record_grpc(rpc, &response, started.elapsed());
        response
    })
    .await
}

/// What the gRPC edge does about credentials: nothing for health; the caller for
/// `CandidateService` (the service applies the policy per method); reflection and unknown paths
/// are reads, judged here.
fn gate(path: &str) -> auth::Gate {
    if path.starts_with("/grpc.health.v1.Health/") {
        auth::Gate::Open
    } else if is_candidate_service(path) {
        auth::Gate::Identify
    } else {
        auth::Gate::Judge(auth::Access::Read)
    }
}

fn is_candidate_service(path: &str) -> bool {
    path.strip_prefix('/')
        .and_then(|p| p.strip_prefix(candidates_api::SERVICE_NAME))
        .is_some_and(|p| p.starts_with('/'))
}

/// The RPC of a call on the gRPC listener (its metric label: the path, or `other`).
struct Rpc(&'static str);

/// The edge span of a sampled call: `candidates.v1.CandidateService/GetCandidate`, with the RPC
/// semantic-convention attributes; the statuses that are the server's fault are errors.
impl candidates_edge::observe::Describe for Rpc {
    fn describe(&self, response: &Response) -> candidates_edge::trace::Described {
        let name = self.0.trim_start_matches('/');
        let (service, method) = name.split_once('/').unwrap_or(("", name));
        let code = status_code(response);
        let server_fault = matches!(code, "2" | "4" | "12" | "13" | "14" | "15");
        candidates_edge::trace::Described {
            name: name.into(),
            attributes: vec![
                ("rpc.system", "grpc".into()),
                ("rpc.service", service.into()),
                ("rpc.method", method.into()),
                ("rpc.grpc.status_code", code.parse::<i64>().unwrap_or(-1).into()),
            ],
            error: server_fault.then(|| format!("grpc-status {code}")),
        }
    }
}

fn log_rpc(rpc: &Rpc, seen: &Seen<'_>, res: &Response, latency: Duration) {
    tracing::info!(
        target: ACCESS_LOG,
        rpc = rpc.0,
        request_id = seen.request_id,
        grpc_status = status_code(res),
        latency_ms = latency_ms(latency),
        traceparent = seen.traceparent,
        tracestate = seen.tracestate,
        trace_id = seen.trace_id,
        "rpc"
    );
}

/// Health checks are never shed; CandidateService calls are unary with small messages (read
/// first); the rest take a permit of the stream budget as they come: reflection streams, unknown
/// paths, and health `Watch` streams, which need no credentials and would otherwise be unbounded
/// (a review held 2,000 open on ten connections).
fn classify(request: &Request) -> Admission {
    let path = request.uri().path();
    if path == "/grpc.health.v1.Health/Check" {
        Admission::Exempt
    } else if is_candidate_service(path) {
        Admission::Buffered
    } else {
        Admission::Streaming
    }
}

/// A streaming response body that ends itself, with `grpc-status: 4` (DEADLINE_EXCEEDED) trailers,
/// once it has sent nothing for the idle timeout: an open reflection stream holds a permit of the
/// stream budget, and a client must not keep one for ever by sending nothing.
struct IdleEnded {
    inner: axum::body::Body,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    ended: bool,
}

impl IdleEnded {
    fn wrap(inner: axum::body::Body, idle: Duration) -> axum::body::Body {
        axum::body::Body::new(Self { inner, idle, timer: Box::pin(tokio::time::sleep(idle)), ended: false })
    }
}

impl http_body::Body for IdleEnded {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, axum::Error>>> {
        use std::task::Poll;
        if self.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let deadline = tokio::time::Instant::now() + self.idle;
                self.timer.as_mut().reset(deadline);
                if frame.as_ref().is_none_or(|f| f.as_ref().is_ok_and(http_body::Frame::is_trailers)) {
                    self.ended = true;
                }
                Poll::Ready(frame)
            }
            Poll::Pending => {
                std::task::ready!(self.timer.as_mut().poll(cx));
                self.ended = true;
                let mut trailers = http::HeaderMap::new();
                trailers.insert("grpc-status", http::HeaderValue::from_static("4"));
                trailers.insert("grpc-message", http::HeaderValue::from_static("stream%20idle%20timeout"));
                Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }
}

/// The framing of a unary call's whole request body (5-byte prefix: compressed flag, length):
/// a message declared larger than the limit is RESOURCE_EXHAUSTED, as one sent larger is (tonic's
/// decoder answered OUT_OF_RANGE), and a second message is INTERNAL, as grpc-java answers it
/// (tonic read the first and answered OK). A truncated message is left to tonic's decoder.
fn unary_framing(body: &[u8], limit: usize) -> Option<Response> {
    let prefix = body.get(..5)?;
    let declared = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
    if declared > limit {
        return Some(
            Status::resource_exhausted(format!(
                "request message declared as {declared} bytes, larger than {limit} bytes"
            ))
            .into_http(),
        );
    }
    (body.len() > 5 + declared).then(|| Status::internal("more than one request message for a unary call").into_http())
}

/// The answer to a request that is not gRPC. The gRPC spec (PROTOCOL-HTTP2): a request whose
/// content-type does not begin with `application/grpc` gets HTTP 415, so that a plain HTTP/2
/// client does not read the trailers-only error of a 200 as success.
fn not_grpc(request: &Request) -> Option<Response> {
    let grpc = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    if grpc {
        return None;
    }
    let mut response = Status::unimplemented("content-type must be application/grpc").into_http::<axum::body::Body>();
    *response.status_mut() = http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
    Some(response)
}

/// The gRPC status code of a unary response, as sent. Errors are trailers-only (grpc-status in the
/// headers); OK responses carry it in the trailers, so absent here means 0.
pub fn status_code(response: &Response) -> &str {
    response.headers().get("grpc-status").and_then(|v| v.to_str().ok()).unwrap_or("0")
}

/// Bounds a call by the caller's `grpc-timeout` (or the server default if none or longer) and
/// answers DEADLINE_EXCEEDED when it passes; the handler's future, store call included, is dropped.
async fn deadline(default: Duration, request: Request, routes: &axum::Router) -> Response {
    let timeout = match call_deadline(request.headers().get("grpc-timeout").map(|v| v.as_bytes()), default) {
        Ok(timeout) => timeout,
        Err(status) => return status.into_http::<axum::body::Body>(),
    };
    match candidates_edge::time::timeout(timeout, routes.clone().oneshot(request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(infallible)) => match infallible {},
        Err(_) => deadline_exceeded(timeout).into_http::<axum::body::Body>(),
    }
}

/// How long a call may run: the caller's `grpc-timeout`, at most `default`; a malformed header is
/// INVALID_ARGUMENT.
fn call_deadline(header: Option<&[u8]>, default: Duration) -> Result<Duration, Status> {
    match header.map(parse_grpc_timeout) {
        None => Ok(default),
        Some(Some(timeout)) => Ok(timeout.min(default)),
        Some(None) => Err(Status::invalid_argument("malformed grpc-timeout header")),
    }
}

fn deadline_exceeded(timeout: Duration) -> Status {
    Status::deadline_exceeded(format!("deadline of {timeout:?} exceeded"))
}

/// The service as the REST gateway calls it in process: the trait called directly (no protobuf
/// encoding, no HTTP, no second middleware stack), each call bounded by the same deadline as on
/// the gRPC listener. Admission, metrics and the log line are the REST listener's.
pub fn in_process(api: CandidateApi, default_deadline: Duration) -> Upstream {
    Arc::new(InProcess { api, default_deadline })
}

struct InProcess {
    api: CandidateApi,
    default_deadline: Duration,
}

impl InProcess {
    async fn bounded<T, U, F>(
        &self,
        request: tonic::Request<T>,
        call: impl FnOnce(tonic::Request<T>) -> F,
    ) -> Result<tonic::Response<U>, Status>
    where
        F: Future<Output = Result<tonic::Response<U>, Status>>,
    {
        let header = request.metadata().get("grpc-timeout").map(|v| v.as_bytes());
        let timeout = call_deadline(header, self.default_deadline)?;
        candidates_edge::time::timeout(timeout, call(request)).await.unwrap_or_else(|_| Err(deadline_exceeded(timeout)))
    }
}

type Reply<T> = Result<tonic::Response<T>, Status>;

macro_rules! in_process_impl {
    ($($method:ident($request:ident) -> $response:ident;)*) => {
        #[tonic::async_trait]
        impl CandidateService for InProcess {
            $(
                async fn $method(&self, request: tonic::Request<pb::$request>) -> Reply<pb::$response> {
                    self.bounded(request, |r| self.api.$method(r)).await
                }
            )*
        }
    };
}
candidates_gateway::for_each_rpc!(in_process_impl);

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
    fn only_the_health_check_skips_admission_a_watch_is_a_bounded_stream() {
        let at = |path: &str| classify(&Request::post(path).body(axum::body::Body::empty()).unwrap());
        assert!(at("/grpc.health.v1.Health/Check") == Admission::Exempt);
        assert!(at("/grpc.health.v1.Health/Watch") == Admission::Streaming);
        assert!(at("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo") == Admission::Streaming);
        assert!(at(&format!("/{}/GetCandidate", candidates_api::SERVICE_NAME)) == Admission::Buffered);
    }

    #[test]
    fn unary_framing_is_one_message_within_the_limit() {
        let frame = |len: u32, body: &[u8]| [&[0u8][..], &len.to_be_bytes(), body].concat();
        let code = |r: Option<Response>| r.map(|r| status_code(&r).to_owned());
        assert_eq!(code(unary_framing(&frame(3, b"abc"), 16)), None);
        assert_eq!(code(unary_framing(b"", 16)), None, "no message: tonic's answer");
        assert_eq!(code(unary_framing(&frame(10, b"abc"), 16)), None, "truncated: tonic's answer");
        assert_eq!(code(unary_framing(&frame(u32::MAX, b"abc"), 16)).as_deref(), Some("8"), "RESOURCE_EXHAUSTED");
        let two = [frame(3, b"abc"), frame(3, b"def")].concat();
        assert_eq!(code(unary_framing(&two, 16)).as_deref(), Some("13"), "INTERNAL");
    }

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
