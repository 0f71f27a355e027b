//! One client API over both protocols: the CLI and the load generator speak to [`Api`], which is
//! implemented by a tonic client (gRPC) and by reqwest (REST). Errors are classified so the CLI
//! can give scripts meaningful exit codes.

use std::time::Duration;

use async_trait::async_trait;
use candidates_api::v1::{
    DeleteCandidateRequest, GetCandidateRequest, GetStatusRequest, ListCandidatesRequest, ListCandidatesResponse,
    PutCandidateRequest, Status, candidate_service_client::CandidateServiceClient,
};
use serde::Deserialize;
use tonic::{Code, transport::Channel};

use crate::credential::{AuthChannel, Credential};

/// What went wrong, in terms a script can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// 404 / NOT_FOUND.
    NotFound,
    /// 4xx other than 404 / INVALID_ARGUMENT and friends: the request was wrong.
    Rejected,
    /// Nothing listens there, or the connection broke.
    Connect,
    /// The deadline passed (client timeout, 504, DEADLINE_EXCEEDED).
    Timeout,
    /// 5xx / UNAVAILABLE, INTERNAL, RESOURCE_EXHAUSTED ...: the server could not do it.
    Server,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ClientError {
    pub kind: ErrorKind,
    /// HTTP status for REST, gRPC code name for gRPC; what the load report groups errors by.
    pub status: String,
    pub message: String,
}

impl ClientError {
    /// Exit code for the CLI: 3 not found, 4 rejected, 5 server error, 6 connection, 7 timeout.
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            ErrorKind::NotFound => 3,
            ErrorKind::Rejected => 4,
            ErrorKind::Server => 5,
            ErrorKind::Connect => 6,
            ErrorKind::Timeout => 7,
        }
    }
}

impl From<tonic::Status> for ClientError {
    fn from(s: tonic::Status) -> Self {
        let kind = match s.code() {
            Code::NotFound => ErrorKind::NotFound,
            Code::InvalidArgument
            | Code::FailedPrecondition
            | Code::OutOfRange
            | Code::AlreadyExists
            | Code::PermissionDenied
            | Code::Unauthenticated => ErrorKind::Rejected,
            Code::DeadlineExceeded => ErrorKind::Timeout,
            // tonic reports its own client-side deadline as CANCELLED "Timeout expired".
            Code::Cancelled if s.message().contains("Timeout expired") => ErrorKind::Timeout,
            Code::Unavailable if is_connect_error(&s) => ErrorKind::Connect,
            _ => ErrorKind::Server,
        };
        let message = if kind == ErrorKind::Connect {
            format!("cannot connect: {}", root_cause(&s))
        } else {
            format!("{:?}: {}", s.code(), s.message())
        };
        Self { kind, status: format!("{:?}", s.code()), message }
    }
}

fn is_connect_error(s: &tonic::Status) -> bool {
    let chain = candidates_api::error_chain(s);
    chain.contains("Connection refused") || chain.contains("tcp connect") || chain.contains("transport error")
}

/// The innermost error: for connection problems, the OS's own words ("Connection refused").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(inner) = current.source() {
        current = inner;
    }
    current.to_string()
}

impl From<reqwest::Error> for ClientError {
    fn from(e: reqwest::Error) -> Self {
        let kind = if e.is_timeout() {
            ErrorKind::Timeout
        } else if e.is_connect() || e.is_request() {
            ErrorKind::Connect
        } else {
            ErrorKind::Server
        };
        let what = match kind {
            ErrorKind::Timeout => "timed out",
            ErrorKind::Connect => "cannot connect",
            _ => "request failed",
        };
        let detail = if kind == ErrorKind::Server { candidates_api::error_chain(&e) } else { root_cause(&e) };
        Self { kind, status: what.replace(' ', "_"), message: format!("{what}: {detail}") }
    }
}

/// Response (and, on gRPC, request) compression a client asks for, so that its cost can be
/// measured: REST sends `Accept-Encoding` and decodes the answer; gRPC compresses its requests and
/// accepts compressed answers (`grpc-encoding`). The server sends small answers plain either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Zstd,
}

impl Compression {
    fn grpc(self) -> Option<tonic::codec::CompressionEncoding> {
        match self {
            Self::None => None,
            Self::Gzip => Some(tonic::codec::CompressionEncoding::Gzip),
            Self::Zstd => Some(tonic::codec::CompressionEncoding::Zstd),
        }
    }

    /// Only the chosen decoder, so that reqwest's `Accept-Encoding` names exactly it (and none
    /// when none is chosen, whatever features other crates turn on).
    fn rest(self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        let builder = builder.no_gzip().no_zstd().no_deflate().no_brotli();
        match self {
            Self::None => builder,
            Self::Gzip => builder.gzip(true),
            Self::Zstd => builder.zstd(true),
        }
    }
}

/// The calls the CLI and the load generator make.
#[async_trait]
pub trait Api: Send + Sync {
    async fn get(&self, name: &str) -> Result<String, ClientError>;
    async fn put(&self, name: &str) -> Result<String, ClientError>;
    async fn delete(&self, name: &str) -> Result<String, ClientError>;
    async fn list_page(&self, page_size: i32, page_token: &str) -> Result<ListCandidatesResponse, ClientError>;
    /// The `/gtg?details` data; an error if the instance reports itself unhealthy.
    async fn status(&self) -> Result<Status, ClientError>;
    /// Plain `/gtg` (REST) or a health check (gRPC): the cheapest call, what load balancers make.
    async fn gtg(&self) -> Result<(), ClientError>;
}

/// gRPC: one HTTP/2 connection per client (clone the channel to share it).
#[derive(Clone)]
pub struct GrpcApi {
    client: CandidateServiceClient<AuthChannel>,
    health: tonic_health::pb::health_client::HealthClient<AuthChannel>,
    timeout: Duration,
}

impl GrpcApi {
    /// Connects lazily: the first call reports a connection problem, like REST.
    pub fn new(
        target: &str,
        timeout: Duration,
        credential: Credential,
        compression: Compression,
    ) -> Result<Self, ClientError> {
        let endpoint = Channel::from_shared(target.to_owned())
            .map_err(|e| ClientError {
                kind: ErrorKind::Rejected,
                status: "bad_target".into(),
                message: format!("invalid --target {target:?}: {e}"),
            })?
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .tcp_nodelay(true);
        let endpoint = crate::tls::grpc(endpoint, target).map_err(|e| ClientError {
            kind: ErrorKind::Rejected,
            status: "bad_tls".into(),
            message: format!("TLS for {target:?}: {e}"),
        })?;
        let channel = endpoint.connect_lazy();
        let mut client = CandidateServiceClient::with_interceptor(channel.clone(), credential.clone());
        if let Some(encoding) = compression.grpc() {
            client = client.send_compressed(encoding).accept_compressed(encoding);
        }
        Ok(Self {
            client,
            health: tonic_health::pb::health_client::HealthClient::with_interceptor(channel, credential),
            timeout,
        })
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.timeout);
        request
    }
}

/// gRPC's transparent retry, for idempotent calls: hyper cancels a call still queued on a
/// connection that is closing (GOAWAY at the server's maximum connection age, or a drain) before
/// it is written, and tonic reports that as CANCELLED "operation was canceled". Such a call never
/// reached a server, so it is sent once more (on a new connection), as gRPC clients do.
async fn unsent_retried<T, F, Fut>(call: F) -> Result<T, tonic::Status>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    match call().await {
        Err(s) if s.code() == Code::Cancelled && s.message().contains("operation was canceled") => call().await,
        other => other,
    }
}

#[async_trait]
impl Api for GrpcApi {
    async fn get(&self, name: &str) -> Result<String, ClientError> {
        let call = || {
            let (mut client, req) = (self.client.clone(), self.request(GetCandidateRequest { name: name.to_owned() }));
            async move { client.get_candidate(req).await }
        };
        Ok(unsent_retried(call).await?.into_inner().name)
    }

    /// An upsert: sending it twice is the same as once.
    async fn put(&self, name: &str) -> Result<String, ClientError> {
        let call = || {
            let (mut client, req) = (self.client.clone(), self.request(PutCandidateRequest { name: name.to_owned() }));
            async move { client.put_candidate(req).await }
        };
        Ok(unsent_retried(call).await?.into_inner().name)
    }

    async fn delete(&self, name: &str) -> Result<String, ClientError> {
        let req = self.request(DeleteCandidateRequest { name: name.to_owned() });
        Ok(self.client.clone().delete_candidate(req).await?.into_inner().name)
    }

    async fn list_page(&self, page_size: i32, page_token: &str) -> Result<ListCandidatesResponse, ClientError> {
        let call = || {
            let mut client = self.client.clone();
            let req = self.request(ListCandidatesRequest { page_size, page_token: page_token.to_owned() });
            async move { client.list_candidates(req).await }
        };
        Ok(unsent_retried(call).await?.into_inner())
    }

    async fn status(&self) -> Result<Status, ClientError> {
        Ok(self.client.clone().get_status(self.request(GetStatusRequest {})).await?.into_inner())
    }

    async fn gtg(&self) -> Result<(), ClientError> {
        use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
        let req = self.request(HealthCheckRequest { service: candidates_api::SERVICE_NAME.into() });
        let status = self.health.clone().check(req).await?.into_inner().status();
        if status == ServingStatus::Serving {
            Ok(())
        } else {
            Err(ClientError {
                kind: ErrorKind::Server,
                status: format!("{status:?}"),
                message: format!("health: {status:?}"),
            })
        }
    }
}

/// REST: the gateway's JSON API through a pooled reqwest client.
#[derive(Clone)]
pub struct RestApi {
    http: reqwest::Client,
    base: String,
    /// Parsed once: `/gtg` is the hot path of load balancer-style load.
    gtg: reqwest::Url,
}

/// The JSON error body every REST error carries.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    message: String,
}

impl RestApi {
    /// `max_connections`: idle connections kept per host (one per worker in closed-loop runs).
    pub fn new(
        target: &str,
        timeout: Duration,
        max_connections: usize,
        credential: &Credential,
        compression: Compression,
    ) -> Result<Self, ClientError> {
        let http = compression
            .rest(crate::tls::reqwest(reqwest::Client::builder()))
            .default_headers(credential.headers())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(max_connections)
            .tcp_nodelay(true)
            .http1_only()
            .no_proxy()
            .build()
            .map_err(ClientError::from)?;
        let base = target.trim_end_matches('/').to_owned();
        let gtg = reqwest::Url::parse(&format!("{base}/gtg")).map_err(|e| ClientError {
            kind: ErrorKind::Rejected,
            status: "bad_target".into(),
            message: format!("invalid --target {target:?}: {e}"),
        })?;
        Ok(Self { http, base, gtg })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn candidate_url(&self, name: &str) -> String {
        self.url(&format!("/candidate/{}", encode_segment(name)))
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let response = request.send().await?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(Self::error(response).await)
    }

    /// An error answer as a client error: the JSON body's message, the kind from the status.
    async fn error(response: reqwest::Response) -> ClientError {
        let status = response.status();
        let message = match response.json::<ErrorBody>().await {
            Ok(body) => body.message,
            Err(_) => status.canonical_reason().unwrap_or("error").to_owned(),
        };
        let kind = match status.as_u16() {
            404 => ErrorKind::NotFound,
            408 | 504 => ErrorKind::Timeout,
            400..=499 if status.as_u16() != 429 => ErrorKind::Rejected,
            _ => ErrorKind::Server,
        };
        ClientError { kind, status: status.as_u16().to_string(), message: format!("HTTP {status}: {message}") }
    }

    async fn candidate(&self, request: reqwest::RequestBuilder) -> Result<String, ClientError> {
        let body: candidates_api::v1::Candidate = self.send(request).await?.json().await?;
        Ok(body.name)
    }
}

/// Percent-encodes a path segment (the API crate's rule).
pub fn encode_segment(name: &str) -> String {
    candidates_api::name::encode_path_segment(name)
}

#[async_trait]
impl Api for RestApi {
    async fn get(&self, name: &str) -> Result<String, ClientError> {
        self.candidate(self.http.get(self.candidate_url(name))).await
    }

    async fn put(&self, name: &str) -> Result<String, ClientError> {
        self.candidate(self.http.post(self.candidate_url(name))).await
    }

    async fn delete(&self, name: &str) -> Result<String, ClientError> {
        self.candidate(self.http.delete(self.candidate_url(name))).await
    }

    async fn list_page(&self, page_size: i32, page_token: &str) -> Result<ListCandidatesResponse, ClientError> {
        let request = self
            .http
            .get(self.url("/candidates"))
            .query(&[("page_size", page_size.to_string()), ("page_token", page_token.to_owned())]);
        Ok(self.send(request).await?.json().await?)
    }

    async fn status(&self) -> Result<Status, ClientError> {
        let response = self.http.get(self.url("/gtg?details")).send().await?;
        let code = response.status();
        // 200 and 503 carry the details; any other answer (401, 403, 429...) is an error body.
        if !code.is_success() && code != reqwest::StatusCode::SERVICE_UNAVAILABLE {
            return Err(Self::error(response).await);
        }
        let status: Status = response.json().await?;
        if code.is_success() {
            Ok(status)
        } else {
            Err(ClientError {
                kind: ErrorKind::Server,
                status: code.as_u16().to_string(),
                message: format!("HTTP {code}: connected={} instance-id={}", status.connected, status.instance_id),
            })
        }
    }

    async fn gtg(&self) -> Result<(), ClientError> {
        self.send(self.http.get(self.gtg.clone())).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_distinct() {
        let codes: std::collections::BTreeSet<u8> =
            [ErrorKind::NotFound, ErrorKind::Rejected, ErrorKind::Server, ErrorKind::Connect, ErrorKind::Timeout]
                .into_iter()
                .map(|kind| ClientError { kind, status: String::new(), message: String::new() }.exit_code())
                .collect();
        assert_eq!(codes.len(), 5);
        assert!(!codes.contains(&0) && !codes.contains(&1) && !codes.contains(&2));
    }

    #[test]
    fn grpc_codes_classify() {
        assert_eq!(ClientError::from(tonic::Status::not_found("x")).kind, ErrorKind::NotFound);
        assert_eq!(ClientError::from(tonic::Status::invalid_argument("x")).kind, ErrorKind::Rejected);
        assert_eq!(ClientError::from(tonic::Status::deadline_exceeded("x")).kind, ErrorKind::Timeout);
        assert_eq!(ClientError::from(tonic::Status::unavailable("store down")).kind, ErrorKind::Server);
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode_segment("John Smith"), "John%20Smith");
        assert_eq!(encode_segment("a/b?c#d"), "a%2Fb%3Fc%23d");
        assert_eq!(encode_segment("é"), "%C3%A9");
    }
}
