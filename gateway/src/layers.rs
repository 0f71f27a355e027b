//! What both listeners do around every request ([`observe`]: a request id, one log line),
//! and the REST listener's edge: metrics, `Connection: close` while draining, a 413 for bodies
//! declared too large, admission (`limit`) and JSON bodies on every error response.
//!
//! Each listener's edge is one middleware function calling these steps in order, not a layer per
//! step: axum's `from_fn` clones everything beneath it and boxes a future on every request.
//! `python3 bench/plumbing.py` (variant `edge`: the same steps as one `from_fn` layer each, in
//! `layered`) measures the difference: 0.83x `/gtg` and 0.79x GET with the layers.

use std::{
    borrow::Cow,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Router,
    extract::Request,
    response::{IntoResponse, Response},
};
use http::{HeaderValue, StatusCode};
use tokio::sync::watch;
use tower::ServiceExt;

use crate::{Options, error::ApiError};
use candidates_edge::{
    auth::{Access, Auth, Gate},
    limit,
    observe::{ACCESS_LOG, InFlight, Seen, bounded, latency_ms, method_label, observe},
};

/// Bodies declared larger than the limit but at most this large are read and dropped before the
/// 413 goes out (see `refuse_declared_oversize`); larger ones are refused at once.
const DRAIN_CAP: u64 = 16 << 20;
/// How long reading such a body may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(feature = "library-plumbing")]
mod layered;
mod series;

/// Whether `CANDIDATES_LIBRARY_PLUMBING` (a comma-separated list, bench builds only) names `part`.
#[cfg(feature = "library-plumbing")]
pub fn library_plumbing(part: &str) -> bool {
    std::env::var("CANDIDATES_LIBRARY_PLUMBING").is_ok_and(|parts| parts.split(',').any(|p| p.trim() == part))
}

/// The REST listener's edge, shared by every request.
struct RestEdge {
    admit: limit::Admit,
    ready: watch::Receiver<bool>,
    body_limit: usize,
    auth: Arc<Auth>,
}

/// The REST listener's service inside CORS and compression: a gRPC-Web call to its translating
/// router, anything else through the edge into the routes. One service around the router, not a
/// layer on each route: axum's `Router::layer` boxes each layer's service and future per request,
/// and `from_fn` clones everything beneath it (bench/profile.sh: 14 % of `/gtg`'s CPU between the
/// connection and the edge with the edge and gRPC-Web dispatch as two `from_fn` layers).
struct Rest {
    /// `None` in the bench build's layered variant, whose routes carry the edge as layers.
    edge: Option<RestEdge>,
    routes: Router,
    web: Option<crate::grpc_web::GrpcWeb>,
}

impl Rest {
    async fn serve(&self, request: Request) -> Response {
        if let Some(web) = &self.web
            && web.is_call(&request)
        {
            return web.call(request).await;
        }
        let routes = self.routes.clone();
        let route = |request| async move {
            match routes.oneshot(request).await {
                Ok(response) => response,
                Err(infallible) => match infallible {},
            }
        };
        match &self.edge {
            Some(edge) => rest_edge(edge, request, route).await,
            None => route(request).await,
        }
    }
}

pub(crate) fn apply(router: Router, options: &Options, ready: watch::Receiver<bool>) -> Router {
    let limits = options.limits;
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
        malformed: || {
            ApiError::from_http(StatusCode::BAD_REQUEST, "the request body could not be decoded").into_response()
        },
    };
    let edge = RestEdge {
        admit: limit::Admit::new(limits, classify, rejections),
        ready,
        body_limit: limits.body_limit,
        auth: options.auth.clone(),
    };
    // Refusals of what is not gRPC-Web on its paths are REST answers, edge and all.
    let routes = match &options.grpc_web {
        Some(web) => router.merge(web.refusals()),
        None => router,
    };
    #[cfg(feature = "library-plumbing")]
    let (routes, edge) =
        if library_plumbing("edge") { (layered::apply(routes, edge), None) } else { (routes, Some(edge)) };
    #[cfg(not(feature = "library-plumbing"))]
    let edge = Some(edge);
    let rest = Arc::new(Rest { edge, routes, web: options.grpc_web.clone() });
    let service = tower::service_fn(move |request: Request| {
        let rest = Arc::clone(&rest);
        async move { Ok::<_, std::convert::Infallible>(rest.serve(request).await) }
    });
    // Compression outside the edge, which then logs and counts the uncompressed response and sees
    // JSON error bodies as JSON; CORS outermost: a preflight never reaches admission, credentials
    // or the service. Composed here, so the router boxes the whole stack once.
    let service = tower::ServiceBuilder::new()
        .option_layer(options.cors.as_ref().map(crate::cors::Cors::layer))
        .layer(compression(options.compression))
        .service(service);
    Router::new().fallback_service(service)
}

/// gzip or zstd, as the client's `Accept-Encoding` prefers, for responses of
/// `COMPRESSION_MIN_BYTES` or more (or of unknown length: the streamed listing, compressed as it
/// streams, so memory stays one encoder's window per response). gRPC-Web answers are left to
/// gRPC's own compression. The fastest level: on a 2-core instance the CPU is the scarcer
/// resource, and level 1 already takes a JSON listing to about a tenth (docs/performance.md).
/// With `enabled` false, nothing is compressed (the layer stays, so the service has one type).
fn compression(enabled: bool) -> tower_http::compression::CompressionLayer<impl tower_http::compression::Predicate> {
    use tower_http::compression::{
        CompressionLayer, CompressionLevel, Predicate,
        predicate::{NotForContentType, SizeAbove},
    };
    let predicate = (move |_: StatusCode, _: http::Version, _: &http::HeaderMap, _: &http::Extensions| enabled)
        .and(SizeAbove::new(candidates_edge::COMPRESSION_MIN_BYTES))
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE);
    CompressionLayer::new().no_br().no_deflate().quality(CompressionLevel::Fastest).compress_when(predicate)
}

/// Every REST request, in order: request id and access line; in-flight gauge; 413 for a body
/// declared too large; admission; the route; JSON error bodies; `Connection: close` while
/// draining; the request counter and latency histogram.
async fn rest_edge<F, Fut>(edge: &RestEdge, request: Request, routes: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let line = rest_line(&request);
    let method = line.method;
    observe(request, line, log_request, |request| async move {
        let route = route_label(request.uri().path());
        let http1 = request.version() <= http::Version::HTTP_11;
        let _in_flight = InFlight::of(series::in_flight());
        let started = Instant::now();
        let mut request = request;
        let gate = gate(&request);
        let response = match edge.auth.gate(&mut request, gate).await {
            Ok(()) => match refuse_declared_oversize(edge.body_limit, request).await {
                Ok(request) => edge.admit.run(request, routes).await,
                Err(refused) => refused,
            },
            Err(error) => ApiError::from(tonic::Status::from(error)).into_response(),
        };
        let mut response = crate::error::json_errors(response).await;
        // While draining, HTTP/1.1 responses say `Connection: close`, so keep-alive clients
        // reconnect (through the load balancer, to another instance) instead of finding the socket
        // closed under them at the end of the drain. HTTP/2 has no such header: GOAWAY does it.
        if http1 && !*edge.ready.borrow() {
            response.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        series::record(route, method, status_label(response.status()), started.elapsed());
        response
    })
    .await
}

/// What a REST request's line needs from the request, kept before the request moves on.
struct RestLine {
    method: &'static str,
    uri: http::Uri,
}

fn rest_line(req: &Request) -> RestLine {
    // A `Uri` clone shares its bytes: no copy of the path per request.
    RestLine { method: method_label(req.method()), uri: req.uri().clone() }
}

/// The edge span of a sampled REST request: `GET /candidate/{name}` (the bounded route template,
/// never the raw path), with the HTTP semantic-convention attributes; a 5xx is an error.
impl candidates_edge::observe::Describe for RestLine {
    fn describe(&self, response: &Response) -> candidates_edge::trace::Described {
        let path = self.uri.path();
        let route = crate::explorer::route_label(path).unwrap_or_else(|| crate::routes::route_template(path));
        let status = response.status();
        let mut attributes = vec![
            ("http.request.method", self.method.into()),
            ("url.path", bounded(path).to_owned().into()),
            ("http.response.status_code", i64::from(status.as_u16()).into()),
        ];
        // No route (gRPC-Web, whose RPC names the gRPC edge's span inside this one; a 404): the
        // method alone, as the HTTP semantic conventions name such spans.
        let name = if route == "unmatched" {
            self.method.into()
        } else {
            attributes.push(("http.route", route.into()));
            format!("{} {route}", self.method).into()
        };
        candidates_edge::trace::Described {
            name,
            attributes,
            error: status.is_server_error().then(|| status.as_str().to_owned()),
        }
    }
}

fn log_request(line: &RestLine, seen: &Seen<'_>, response: &Response, latency: Duration) {
    tracing::info!(
        target: ACCESS_LOG,
        method = line.method,
        path = bounded(line.uri.path()),
        request_id = seen.request_id,
        status = response.status().as_u16(),
        latency_ms = latency_ms(latency),
        traceparent = seen.traceparent,
        tracestate = seen.tracestate,
        trace_id = seen.trace_id,
        "request"
    );
}

/// What the REST edge does about credentials: nothing for the load balancer's plain `/gtg` (it
/// costs nothing); `/openapi.json` and the API explorer are reads, judged here; everything else (`/gtg?details` is
/// GetStatus) is judged by the service on the caller found here.
fn gate(request: &Request) -> Gate {
    let uri = request.uri();
    if uri.path() == "/gtg" && !crate::routes::asks_for_details(uri.query()) {
        Gate::Open
    } else if uri.path() == crate::openapi::PATH || crate::explorer::serves(uri.path()) {
        // The explorer too: it shows the document (and, reads closed, a browser could not send a
        // key for the page anyway, so opening the page alone would show nothing but a 401).
        Gate::Judge(Access::Read)
    } else {
        Gate::Identify
    }
}

/// `/gtg` (with or without `?details`) is the load balancer's: never shed, never queued.
fn classify(request: &Request) -> limit::Admission {
    if request.uri().path() == "/gtg" { limit::Admission::Exempt } else { limit::Admission::Buffered }
}

/// A request's route label: its route template's, or the explorer's page or file label (either
/// way a closed set, whatever the path).
fn route_label(path: &str) -> &'static str {
    crate::explorer::route_label(path).unwrap_or_else(|| metric_route(crate::routes::route_template(path)))
}

/// The label of a route template: `/candidate/{name}` is `/candidate/:name` (no braces in label
/// values, which simple exposition-format parsers cannot read). Derived once from the route table,
/// so a new route needs no change here.
fn metric_route(template: &'static str) -> &'static str {
    static LABELS: std::sync::LazyLock<Vec<(&'static str, &'static str)>> = std::sync::LazyLock::new(|| {
        crate::ROUTES
            .iter()
            .map(|route| {
                let label = route.path.replace('{', ":").replace('}', "");
                (route.path, if label == route.path { route.path } else { &*label.leak() })
            })
            .collect()
    });
    LABELS.iter().find(|(t, _)| *t == template).map_or(template, |(_, label)| label)
}

/// A status code as a label, without allocating for the codes this service sends.
fn status_label(status: StatusCode) -> Cow<'static, str> {
    const SENT: [&str; 14] =
        ["200", "400", "404", "405", "408", "409", "413", "415", "429", "499", "500", "501", "503", "504"];
    match SENT.iter().find(|label| label.as_bytes() == status.as_str().as_bytes()) {
        Some(label) => Cow::Borrowed(label),
        None => Cow::Owned(status.as_str().to_owned()),
    }
}

/// 413 for a body whose Content-Length is over the limit. The body is read and dropped first (up
/// to `DRAIN_CAP` bytes and `DRAIN_TIMEOUT`), like nginx's lingering close: a server that answers
/// and closes with unread data in the socket makes the kernel send RST, and the client sees
/// "connection reset" or "broken pipe" instead of the 413. Reading it also keeps the connection
/// usable. Chunked bodies are limited while read (`RequestBodyLimitLayer`).
async fn refuse_declared_oversize(limit: usize, request: Request) -> Result<Request, Response> {
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
            Err(ApiError::body_too_large(limit).into_response())
        }
        _ => Ok(request),
    }
}
