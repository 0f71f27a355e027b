//! The HTTP/JSON gateway: maps the REST routes of `candidates.v1` (its `google.api.http`
//! annotations) onto `CandidateService` calls. It calls an [`Upstream`]: the generated service
//! trait, implemented by the server's own service in process (a direct call: no protobuf encoding,
//! no HTTP in between) or by [`remote`], a tonic client over a `Channel` to another instance. It
//! knows HTTP and the generated API, nothing about stores.

use std::sync::Arc;

use axum::Router;
use bytes::Bytes;
use candidates_api::v1::{
    self as pb, candidate_service_client::CandidateServiceClient, candidate_service_server::CandidateService,
};
use tokio::sync::watch;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt, util::BoxCloneSyncService};

pub mod cors;
pub mod error;
pub mod explorer;
pub mod grpc_web;
pub mod layers;
pub mod metadata;
pub mod openapi;
mod routes;

pub use routes::{ROUTES, RouteSpec, Rpc, route_template};

/// What the gateway calls: `CandidateService` behind its generated trait. In process it is the
/// server's service itself (with the same deadline as on the gRPC listener); [`remote`] makes one
/// from any gRPC transport.
pub type Upstream = Arc<dyn CandidateService>;

/// A gRPC transport for [`remote`], type-erased: a `Channel` to another instance, or any tower
/// service that speaks gRPC over HTTP (tests use the server's gRPC router).
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

/// A `CandidateService` reached over gRPC: each call goes through the tonic client and `transport`.
pub fn remote(transport: GrpcTransport) -> Upstream {
    Arc::new(Remote(CandidateServiceClient::new(transport)))
}

struct Remote(CandidateServiceClient<GrpcTransport>);

type Reply<T> = Result<tonic::Response<T>, tonic::Status>;

/// Calls `$m!` with every RPC of `CandidateService` as `method(Request) -> Response`: the one
/// list that the service's forwarding implementations ([`Remote`] here, the server's in-process
/// upstream) are generated from, so a new RPC is one line here rather than one method in each.
#[macro_export]
macro_rules! for_each_rpc {
    ($m:ident) => {
        $m! {
            get_candidate(GetCandidateRequest) -> Candidate;
            put_candidate(PutCandidateRequest) -> Candidate;
            delete_candidate(DeleteCandidateRequest) -> Candidate;
            list_candidates(ListCandidatesRequest) -> ListCandidatesResponse;
            get_status(GetStatusRequest) -> Status;
        }
    };
}

macro_rules! remote_impl {
    ($($method:ident($request:ident) -> $response:ident;)*) => {
        #[tonic::async_trait]
        impl CandidateService for Remote {
            $(
                async fn $method(&self, request: tonic::Request<pb::$request>) -> Reply<pb::$response> {
                    self.0.clone().$method(request).await
                }
            )*
        }
    };
}
for_each_rpc!(remote_impl);

/// Limits applied to the REST listener.
#[derive(Debug, Clone)]
pub struct Options {
    /// Admission: requests at once (503 beyond, `/gtg` never shed), body size (413) and time (408);
    /// built once from the configuration, the same for both listeners.
    pub limits: candidates_edge::limit::Limits,
    /// How long a streamed response (`GET /candidates`) waits for the client to take its next
    /// chunk before giving up on it.
    pub send_timeout: std::time::Duration,
    /// Who may call what (the same policy and keys as the gRPC listener's).
    pub auth: std::sync::Arc<candidates_edge::auth::Auth>,
    /// Browser clients on other origins; `None`: same-origin only.
    pub cors: Option<cors::Cors>,
    /// gzip/zstd responses (from `COMPRESSION_MIN_BYTES`) when the client accepts them.
    pub compression: bool,
    /// gRPC-Web calls, served beside the REST routes, inside CORS but outside the REST edge (they
    /// bring the gRPC listener's); refusals on their paths go through the REST edge.
    pub grpc_web: Option<grpc_web::GrpcWeb>,
}

/// Shared by every handler.
#[derive(Clone)]
pub(crate) struct Gateway {
    pub(crate) upstream: Upstream,
    /// `true` while this instance should receive traffic (false while starting or draining).
    pub(crate) ready: watch::Receiver<bool>,
    pub(crate) send_timeout: std::time::Duration,
}

/// The REST router with every layer: request ids, one log line per request, limits and JSON
/// error bodies.
pub fn router(upstream: Upstream, ready: watch::Receiver<bool>, options: Options) -> Router {
    router_with_explorer(upstream, ready, options, false)
}

/// [`router`], with the API explorer at [`explorer::PATH`] when `explorer` is true (and the
/// `api-explorer` feature compiled it in): inside the same edge as the REST routes.
pub fn router_with_explorer(
    upstream: Upstream,
    ready: watch::Receiver<bool>,
    options: Options,
    explorer: bool,
) -> Router {
    let gateway = Gateway { upstream, ready: ready.clone(), send_timeout: options.send_timeout };
    let routes = routes::routes(gateway);
    let routes = if explorer { explorer::mount(routes) } else { routes };
    layers::apply(routes, &options, ready)
}
