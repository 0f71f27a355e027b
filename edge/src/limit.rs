//! Admission for both listeners: what counts against the concurrency limit, and what never does.
//!
//! - Health and readiness (`/gtg`, `grpc.health.v1`) are never shed or queued: a load balancer
//!   removes an instance whose health check fails, so a busy instance must still answer it.
//! - A request's body is read *before* it takes a permit, bounded in size and time: the limit
//!   counts work, not waiting for a slow client. Bodies being read have their own bound, so slow
//!   clients cannot grow memory without limit either.
//! - The permit is held until the response body has been sent (or dropped), so a streamed
//!   response (`GET /candidates`) counts for as long as it runs.
//! - Streaming calls (gRPC reflection) take permits from a small budget of their own: a client
//!   decides how long a stream stays open, and 1,200 idle reflection streams once held every
//!   work permit, so every unary call was refused while health said SERVING.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::{body::Body, extract::Request, response::Response};
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How a request is admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Health and readiness: served at once, never counted or shed.
    Exempt,
    /// A request with a bounded body (REST, unary gRPC): the body is read first, then a permit.
    Buffered,
    /// A streaming call (gRPC reflection): takes a permit of the stream budget at once, body
    /// untouched.
    Streaming,
}

/// The protocol's answers when a request is not admitted.
#[derive(Clone, Copy)]
pub struct Rejections {
    /// Every permit is taken (503 / RESOURCE_EXHAUSTED).
    pub overloaded: fn() -> Response,
    /// The body is larger than the limit (the limit is passed).
    pub too_large: fn(usize) -> Response,
    /// The body did not arrive within the timeout (the timeout is passed).
    pub too_slow: fn(Duration) -> Response,
    /// The body could not be read (the client went away, or the connection broke).
    pub unreadable: fn() -> Response,
    /// The body arrived but a decoder in front of the edge refused it (gRPC-Web text that is not
    /// base64): the client's fault, not a cancellation.
    pub malformed: fn() -> Response,
}

/// The limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests served at once; beyond it requests are rejected at once, not queued.
    pub max_concurrency: usize,
    /// Largest request body, in bytes.
    pub body_limit: usize,
    /// How long a request body may take to arrive.
    pub body_timeout: Duration,
}

/// A protocol's check of a whole request body, given the body limit: `Some` is the refusal.
pub type BodyCheck = fn(&[u8], usize) -> Option<Response>;

/// Bodies being read per work permit.
const READERS_PER_PERMIT: usize = 16;

/// The stream budget: streams open at once, whatever `max_concurrency` is (a sixteenth of it, at
/// least 4, at most 64). Reflection streams are an operator's grpcurl session, a few at a time.
pub fn stream_budget(max_concurrency: usize) -> usize {
    (max_concurrency / 16).clamp(4, 64)
}

/// One listener's admission state (see the module's rules); [`Admit::run`] admits one request.
pub struct Admit {
    work: Arc<Semaphore>,
    /// Streaming calls: a budget of their own ([`stream_budget`]), never the work permits.
    streams: Arc<Semaphore>,
    /// Requests whose bodies are being read: many more than the work limit (a stalled upload
    /// costs a task, not a permit), but not unbounded.
    reading: Arc<Semaphore>,
    /// Bytes of request bodies being read, all requests together (half of max_concurrency full
    /// bodies): slow clients that send most of a body and stall cannot hold more memory than this.
    buffered: Arc<Semaphore>,
    limits: Limits,
    classify: fn(&Request) -> Admission,
    reject: Rejections,
    /// A protocol's check of a whole buffered body (gRPC: message framing), before any permit.
    body_check: Option<BodyCheck>,
}

impl Admit {
    pub fn new(limits: Limits, classify: fn(&Request) -> Admission, reject: Rejections) -> Self {
        Self {
            work: Arc::new(Semaphore::new(limits.max_concurrency)),
            streams: Arc::new(Semaphore::new(stream_budget(limits.max_concurrency))),
            reading: Arc::new(Semaphore::new(
                limits.max_concurrency.saturating_mul(READERS_PER_PERMIT).min(Semaphore::MAX_PERMITS),
            )),
            buffered: Arc::new(Semaphore::new(
                (limits.max_concurrency.max(8).saturating_mul(limits.body_limit) / 2).min(Semaphore::MAX_PERMITS),
            )),
            limits,
            classify,
            reject,
            body_check: None,
        }
    }

    /// Checks each buffered body with `check(body, body_limit)` once it is read; a `Some` is the
    /// answer, and the request never takes a permit.
    pub fn with_body_check(mut self, check: BodyCheck) -> Self {
        self.body_check = Some(check);
        self
    }

    /// Admits `request` (or answers for it) and runs it with `call`.
    pub async fn run<F, Fut>(&self, request: Request, call: F) -> Response
    where
        F: FnOnce(Request) -> Fut,
        Fut: Future<Output = Response>,
    {
        let (request, budget) = match (self.classify)(&request) {
            Admission::Exempt => return call(request).await,
            Admission::Streaming => (request, &self.streams),
            Admission::Buffered => match read_body(self, request).await {
                Ok(request) => (request, &self.work),
                Err(response) => return response,
            },
        };
        let Ok(permit) = Arc::clone(budget).try_acquire_owned() else {
            return (self.reject.overloaded)();
        };
        let lease = Lease(Arc::new(std::sync::Mutex::new(Some(permit))));
        let mut request = request;
        request.extensions_mut().insert(lease.clone());
        let response = call(request).await;
        response.map(|body| GuardedBody::wrap(body, LeaseGuard(lease)))
    }
}

/// The concurrency permit of one request. It is given back when the response body ends or is
/// dropped, or earlier by a handler that gives up on a stalled client ([`Lease::release`]): a
/// client that stops reading must not keep the server's capacity.
#[derive(Clone, Debug)]
pub struct Lease(Arc<std::sync::Mutex<Option<OwnedSemaphorePermit>>>);

impl Lease {
    pub fn release(&self) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    }
}

/// Why a body could not be read.
enum ReadError {
    TooLarge,
    Unreadable,
    Malformed,
    Overloaded,
}

/// Reads the whole body (bounded in size and time) and puts it back as a full body.
async fn read_body(admit: &Admit, request: Request) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    if body.is_end_stream() {
        // No body (a GET): nothing to wait for.
        return Ok(Request::from_parts(parts, body));
    }
    let Ok(_reading) = admit.reading.try_acquire() else {
        return Err((admit.reject.overloaded)());
    };
    let limit = admit.limits.body_limit;
    let bytes = match crate::time::timeout(admit.limits.body_timeout, collect(body, limit, &admit.buffered)).await {
        Err(_) => return Err((admit.reject.too_slow)(admit.limits.body_timeout)),
        Ok(Err(ReadError::TooLarge)) => return Err((admit.reject.too_large)(limit)),
        Ok(Err(ReadError::Unreadable)) => return Err((admit.reject.unreadable)()),
        Ok(Err(ReadError::Malformed)) => return Err((admit.reject.malformed)()),
        Ok(Err(ReadError::Overloaded)) => return Err((admit.reject.overloaded)()),
        Ok(Ok(bytes)) => bytes,
    };
    if let Some(refused) = admit.body_check.and_then(|check| check(&bytes, limit)) {
        return Err(refused);
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Collects the body's data, each byte counted against the shared `budget` while it is held.
async fn collect(mut body: Body, limit: usize, budget: &Semaphore) -> Result<Bytes, ReadError> {
    let mut data = bytes::BytesMut::new();
    let mut held = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(chunk) = frame.map_err(read_error)?.into_data() else { continue };
        if data.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge);
        }
        if data.is_empty() && body.is_end_stream() {
            // The whole body in one frame (a small unary message, a REST body): it is already in
            // memory and goes on as it is, with nothing to copy or to hold budget for.
            return Ok(chunk);
        }
        let permits = u32::try_from(chunk.len()).map_err(|_| ReadError::TooLarge)?;
        held.push(budget.try_acquire_many(permits).map_err(|_| ReadError::Overloaded)?);
        data.extend_from_slice(&chunk);
    }
    Ok(data.freeze())
}

/// Why a body frame failed: a decoder's status (tonic-web's, on a malformed gRPC-Web text body)
/// is the client's malformed input; anything else (hyper's: a reset, a broken connection) means
/// the body could not be read.
fn read_error(error: axum::Error) -> ReadError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(error) = source {
        if error.is::<tonic::Status>() {
            return ReadError::Malformed;
        }
        source = error.source();
    }
    ReadError::Unreadable
}

/// A response body that keeps a guard alive until the body is finished or dropped: what
/// "counts until the last byte" means for a concurrency permit. (The server's accept loop also
/// watches, per connection, how long each body waits for the transport: serve/activity.rs.)
pub(crate) struct GuardedBody<G> {
    inner: Body,
    _guard: G,
}

impl<G: Send + Unpin + 'static> GuardedBody<G> {
    pub(crate) fn wrap(inner: Body, guard: G) -> Body {
        Body::new(Self { inner, _guard: guard })
    }
}

impl<G: Send + Unpin + 'static> HttpBody for GuardedBody<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Gives the lease back when dropped (the lease's other holders may live longer).
struct LeaseGuard(Lease);

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.0.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{
        Router,
        extract::State,
        middleware::{self, Next},
        response::IntoResponse,
        routing::{get, post},
    };
    use http::StatusCode;
    use tower::ServiceExt;

    /// The router with every route behind `Admit::run`, as the listeners' edges call it.
    fn admit(router: Router, limits: Limits, classify: fn(&Request) -> Admission, reject: Rejections) -> Router {
        let admit = Arc::new(Admit::new(limits, classify, reject));
        router.layer(middleware::from_fn_with_state(
            admit,
            |State(admit): State<Arc<Admit>>, request: Request, next: Next| async move {
                admit.run(request, |request| next.run(request)).await
            },
        ))
    }

    fn reject() -> Rejections {
        Rejections {
            overloaded: || (StatusCode::SERVICE_UNAVAILABLE, "overloaded").into_response(),
            too_large: |_| StatusCode::PAYLOAD_TOO_LARGE.into_response(),
            too_slow: |_| StatusCode::REQUEST_TIMEOUT.into_response(),
            unreadable: || StatusCode::BAD_REQUEST.into_response(),
            malformed: || StatusCode::UNPROCESSABLE_ENTITY.into_response(),
        }
    }
    fn classify(request: &Request) -> Admission {
        match request.uri().path() {
            "/health" => Admission::Exempt,
            "/watch" => Admission::Streaming,
            _ => Admission::Buffered,
        }
    }

    fn app(max: usize) -> Router {
        let router = Router::new()
            .route("/health", get(|| async { "ok" }))
            .route("/work", post(|body: Bytes| async move { body.len().to_string() }))
            .route(
                "/stream",
                get(|| async { Body::from_stream(futures::stream::pending::<Result<Bytes, std::io::Error>>()) }),
            )
            .route(
                "/watch",
                get(|| async { Body::from_stream(futures::stream::pending::<Result<Bytes, std::io::Error>>()) }),
            );
        admit(
            router,
            Limits { max_concurrency: max, body_limit: 16, body_timeout: Duration::from_millis(100) },
            classify,
            reject(),
        )
    }

    async fn call(app: &Router, request: Request) -> StatusCode {
        app.clone().oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn a_body_that_never_arrives_holds_no_permit_and_times_out() {
        let app = app(1);
        // A body that never sends anything: the permit must stay free for real work.
        let (_tx, body) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        let slow = tokio::spawn({
            let app = app.clone();
            async move { call(&app, Request::post("/work").body(Body::from_stream(body)).unwrap()).await }
        });
        tokio::task::yield_now().await;
        assert_eq!(call(&app, Request::post("/work").body(Body::from("abc")).unwrap()).await, StatusCode::OK);
        assert_eq!(slow.await.unwrap(), StatusCode::REQUEST_TIMEOUT);
    }

    #[tokio::test]
    async fn oversized_bodies_are_refused() {
        let app = app(1);
        let big = Body::from(vec![b'x'; 17]);
        assert_eq!(call(&app, Request::post("/work").body(big).unwrap()).await, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn a_streamed_response_holds_its_permit_until_dropped_and_health_is_never_shed() {
        let app = app(1);
        let streaming = app.clone().oneshot(Request::get("/stream").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(streaming.status(), StatusCode::OK);
        // Headers are out, the body is still running: the one permit is taken.
        assert_eq!(
            call(&app, Request::post("/work").body(Body::empty()).unwrap()).await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(call(&app, Request::get("/health").body(Body::empty()).unwrap()).await, StatusCode::OK);
        drop(streaming);
        assert_eq!(call(&app, Request::post("/work").body(Body::empty()).unwrap()).await, StatusCode::OK);
    }

    #[tokio::test]
    async fn streams_a_client_keeps_open_never_take_the_work_permits() {
        let app = app(16);
        let budget = stream_budget(16);
        let mut open = Vec::new();
        for _ in 0..budget {
            let watching = app.clone().oneshot(Request::get("/watch").body(Body::empty()).unwrap()).await.unwrap();
            assert_eq!(watching.status(), StatusCode::OK);
            open.push(watching);
        }
        // The stream budget is spent: one more stream is refused ...
        assert_eq!(
            call(&app, Request::get("/watch").body(Body::empty()).unwrap()).await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        // ... while unary work still gets every one of its permits.
        assert_eq!(call(&app, Request::post("/work").body(Body::from("abc")).unwrap()).await, StatusCode::OK);
        drop(open.pop());
        assert_eq!(call(&app, Request::get("/watch").body(Body::empty()).unwrap()).await, StatusCode::OK);
    }

    /// Every way a request's future can end early gives its permit back: dropped before the
    /// handler answers, and the response dropped before its body is read.
    #[tokio::test]
    async fn a_dropped_request_gives_its_permit_back() {
        let admit = Admit::new(
            Limits { max_concurrency: 1, body_limit: 16, body_timeout: Duration::from_secs(1) },
            classify,
            reject(),
        );
        let request = || Request::post("/work").body(Body::from("abc")).unwrap();
        {
            let mut pending = Box::pin(admit.run(request(), |_| std::future::pending::<Response>()));
            assert!(futures::poll!(pending.as_mut()).is_pending());
            assert_eq!(admit.work.available_permits(), 0, "held while the handler runs");
        }
        assert_eq!(admit.work.available_permits(), 1, "given back when the request future is dropped");
        let response = admit.run(request(), |_| async { StatusCode::OK.into_response() }).await;
        assert_eq!(admit.work.available_permits(), 0, "held until the body is done");
        drop(response);
        assert_eq!(admit.work.available_permits(), 1);
    }
}
