//! The HTTP/JSON gateway: maps the REST routes of `candidates.v1` (its `google.api.http`
//! annotations) onto `CandidateService` gRPC calls. It is a real gRPC client, generic over the
//! transport: the server process hands it its own gRPC router (no network hop), or a tonic
//! `Channel` to another instance. It knows HTTP and the generated client, nothing about stores.

use axum::Router;
use bytes::Bytes;
use candidates_api::v1::candidate_service_client::CandidateServiceClient;
use tokio::sync::watch;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt, util::BoxCloneSyncService};

pub mod error;
pub mod layers;
pub mod limit;
pub mod openapi;
mod routes;

pub use routes::{ROUTES, RouteSpec, Rpc, route_template};

/// The gRPC transport the gateway calls through, type-erased so one router type serves both the
/// in-process and the remote case.
pub type GrpcTransport =
    BoxCloneSyncService<http::Request<tonic::body::Body>, http::Response<tonic::body::Body>, TransportError>;

/// A transport failure (connection refused, reset, ...); the client turns it into UNAVAILABLE.
/// A named type rather than `BoxError`: with a boxed trait object as the error, rustc cannot
/// prove the handlers' futures `Send` (rust-lang/rust#102211).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct TransportError(BoxError);

/// Erases any tower service that speaks gRPC over HTTP (an axum/tonic router, a `Channel`).
pub fn transport<S, B>(service: S) -> GrpcTransport
where
    S: Service<http::Request<tonic::body::Body>, Response = http::Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    BoxCloneSyncService::new(
        ServiceBuilder::new()
            .map_response(|r: http::Response<B>| r.map(tonic::body::Body::new))
            .service(service.map_err(|e: S::Error| TransportError(e.into()))),
    )
}

/// Limits applied to the REST listener.
#[derive(Debug, Clone)]
pub struct Options {
    /// Largest request body, in bytes (413 above it).
    pub body_limit: usize,
    /// How long a request body may take to arrive (408 after it).
    pub body_timeout: std::time::Duration,
    /// Requests served at once before new ones are shed with 503 (`/gtg` is never shed).
    pub max_concurrency: usize,
    /// How long a streamed response (`GET /candidates`) waits for the client to take its next
    /// chunk before giving up on it.
    pub send_timeout: std::time::Duration,
}

/// Shared by every handler.
#[derive(Clone)]
pub(crate) struct Gateway {
    pub(crate) client: CandidateServiceClient<GrpcTransport>,
    /// `true` while this instance should receive traffic (false while starting or draining).
    pub(crate) ready: watch::Receiver<bool>,
    pub(crate) send_timeout: std::time::Duration,
}

/// The REST router with every layer: request ids, one log line per request, limits and JSON
/// error bodies.
pub fn router(transport: GrpcTransport, ready: watch::Receiver<bool>, options: Options) -> Router {
    let gateway = Gateway {
        client: CandidateServiceClient::new(transport),
        ready: ready.clone(),
        send_timeout: options.send_timeout,
    };
    layers::apply(routes::routes(gateway), &options, ready)
}
