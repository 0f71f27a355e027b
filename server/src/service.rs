//! `CandidateService`: validate the name (one place), call the store, map errors to a gRPC status
//! (once, here). Deadlines are enforced around every call by `crate::grpc`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use candidates_api::v1::{
    self as pb, DeleteCandidateRequest, GetCandidateRequest, GetStatusRequest, ListCandidatesRequest,
    ListCandidatesResponse, PutCandidateRequest, candidate_service_server::CandidateService,
};
use candidates_edge::{
    auth::{Access, Auth, Caller, record_failure},
    context,
    throttle::Throttle,
};
use tokio::sync::Mutex;
use tonic::{Request, Response, Status};

use crate::{
    name::CandidateName,
    store::{Candidate, DynStore, StoreError},
};

pub use candidates_api::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
/// How long the /gtg?details store round-trip may take before the store counts as not connected
/// (well inside a load balancer's usual 5 s health-check timeout).
pub const STATUS_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct CandidateApi {
    store: DynStore,
    instance_id: Arc<str>,
    status: Arc<StatusCache>,
    auth: Arc<Auth>,
}

impl CandidateApi {
    pub fn new(store: DynStore, instance_id: String, status_cache: Duration, auth: Arc<Auth>) -> Self {
        Self {
            store,
            instance_id: instance_id.into(),
            status: Arc::new(StatusCache { ttl: status_cache, last: Mutex::new(None) }),
            auth,
        }
    }

    /// The policy's verdict on the request's caller, as the listener's edge found it (REST's, for
    /// the in-process gateway): the first thing every method does. No caller: anonymous.
    fn authorize<T>(&self, request: &Request<T>, access: Access) -> Result<(), Status> {
        let verdict = match request.extensions().get::<Caller>() {
            Some(caller) => self.auth.authorize(caller, access),
            None => self.auth.authorize(&Caller::Anonymous, access),
        };
        verdict.map_err(|error| {
            record_failure(error);
            Status::from(error)
        })
    }
}

/// Remembers the last store round-trip result for a short while, so frequent health checks from
/// several load balancers cost one store call per TTL. Concurrent callers wait for one probe.
#[derive(Debug)]
struct StatusCache {
    ttl: Duration,
    last: Mutex<Option<(Instant, Probe)>>,
}

/// One store round-trip's result: `Err` holds why it failed (a client-safe message).
type Probe = Result<(), String>;

impl StatusCache {
    async fn connected(&self, store: &DynStore) -> Probe {
        let mut last = self.last.lock().await;
        if let Some((at, probe)) = &*last
            && at.elapsed() < self.ttl
        {
            return probe.clone();
        }
        let probe = match tokio::time::timeout(STATUS_PROBE_TIMEOUT, store.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => {
                static FAILED: Throttle = Throttle::new("store round-trip failed");
                if FAILED.admit(|| error.to_string()) {
                    tracing::warn!(request_id = context::request_id(), store = store.kind(), %error, "store round-trip failed");
                }
                Err(error.to_string())
            }
            Err(_) => {
                static TIMED_OUT: Throttle = Throttle::new("store round-trip timed out");
                if TIMED_OUT.admit(|| format!("no answer within {STATUS_PROBE_TIMEOUT:?}")) {
                    tracing::warn!(request_id = context::request_id(), store = store.kind(), timeout = ?STATUS_PROBE_TIMEOUT, "store round-trip timed out");
                }
                Err(format!("the store did not answer within {}", humantime::format_duration(STATUS_PROBE_TIMEOUT)))
            }
        };
        *last = Some((Instant::now(), probe.clone()));
        probe
    }
}

fn parse_name(name: String) -> Result<CandidateName, Status> {
    CandidateName::parse(name).map_err(|e| Status::invalid_argument(format!("invalid name: {e}")))
}

/// A response, marked to go out uncompressed when it is small (tonic otherwise compresses every
/// message once the client accepts an encoding); see `candidates_edge::COMPRESSION_MIN_BYTES`.
fn reply<T: prost::Message>(message: T) -> Response<T> {
    let small = message.encoded_len() < usize::from(candidates_edge::COMPRESSION_MIN_BYTES);
    let mut response = Response::new(message);
    if small {
        response.extensions_mut().insert(tonic::codec::SingleMessageCompressionOverride::Disable);
    }
    response
}

fn to_pb(c: Candidate) -> pb::Candidate {
    pb::Candidate { name: c.name }
}

/// The one mapping from store errors to gRPC statuses. Messages are the store's client-safe
/// messages; sources (SDK detail) are logged, never sent.
impl From<StoreError> for Status {
    fn from(error: StoreError) -> Self {
        match &error {
            StoreError::NotFound => Status::not_found("Not Found"),
            StoreError::InvalidArgument(m) => Status::invalid_argument(m.clone()),
            StoreError::Unavailable { .. } => {
                static UNAVAILABLE: Throttle = Throttle::new("store unavailable");
                if UNAVAILABLE.admit(|| error.to_string()) {
                    tracing::warn!(request_id = context::request_id(), error = %error, source = ?std::error::Error::source(&error), "store unavailable");
                }
                Status::unavailable(error.to_string())
            }
            StoreError::ResourceExhausted { .. } => Status::resource_exhausted(error.to_string()),
            StoreError::DeadlineExceeded => Status::deadline_exceeded(error.to_string()),
            // The instance's own credentials were refused: a server-side fault the client cannot
            // fix, so INTERNAL (not the caller's PERMISSION_DENIED); the log says what to grant.
            StoreError::PermissionDenied { .. } => {
                static DENIED: Throttle = Throttle::new("store access denied");
                if DENIED.admit(|| error.to_string()) {
                    tracing::error!(request_id = context::request_id(), error = %error, "the store refused this instance's credentials or permissions");
                }
                Status::internal("internal error: the server's store access is misconfigured")
            }
            StoreError::Internal { .. } => {
                static INTERNAL: Throttle = Throttle::new("internal store error");
                if INTERNAL.admit(|| error.to_string()) {
                    tracing::error!(request_id = context::request_id(), error = %error, source = ?std::error::Error::source(&error), "internal store error");
                }
                Status::internal("internal error")
            }
        }
    }
}

#[tonic::async_trait]
impl CandidateService for CandidateApi {
    async fn get_candidate(&self, request: Request<GetCandidateRequest>) -> Result<Response<pb::Candidate>, Status> {
        traced("GetCandidate", async move {
            self.authorize(&request, Access::Read)?;
            let name = parse_name(request.into_inner().name)?;
            Ok(reply(to_pb(self.store.get(&name).await?)))
        })
        .await
    }

    async fn put_candidate(&self, request: Request<PutCandidateRequest>) -> Result<Response<pb::Candidate>, Status> {
        traced("PutCandidate", async move {
            self.authorize(&request, Access::Write)?;
            let name = parse_name(request.into_inner().name)?;
            Ok(reply(to_pb(self.store.put(&name).await?)))
        })
        .await
    }

    async fn list_candidates(
        &self,
        request: Request<ListCandidatesRequest>,
    ) -> Result<Response<ListCandidatesResponse>, Status> {
        traced("ListCandidates", async move {
            self.authorize(&request, Access::Read)?;
            let ListCandidatesRequest { page_size, page_token } = request.into_inner();
            let page_size = match page_size {
                n if n < 0 => return Err(Status::invalid_argument("page_size must not be negative")),
                0 => DEFAULT_PAGE_SIZE,
                n => (n as usize).min(MAX_PAGE_SIZE),
            };
            let mut page = self.store.list(page_size, (!page_token.is_empty()).then_some(page_token.as_str())).await?;
            // Normalised here, once: a page is empty only when it is the last (the call's deadline
            // bounds the walk).
            if self.store.may_return_empty_pages() {
                while page.candidates.is_empty()
                    && let Some(token) = page.next_page_token.take()
                {
                    page = self.store.list(page_size, Some(&token)).await?;
                }
            }
            Ok(reply(ListCandidatesResponse {
                candidates: page.candidates.into_iter().map(to_pb).collect(),
                next_page_token: page.next_page_token.unwrap_or_default(),
            }))
        })
        .await
    }

    async fn delete_candidate(
        &self,
        request: Request<DeleteCandidateRequest>,
    ) -> Result<Response<pb::Candidate>, Status> {
        traced("DeleteCandidate", async move {
            self.authorize(&request, Access::Write)?;
            let name = parse_name(request.into_inner().name)?;
            self.store.delete(&name).await?;
            Ok(reply(pb::Candidate { name: name.into_string() }))
        })
        .await
    }

    async fn get_status(&self, request: Request<GetStatusRequest>) -> Result<Response<pb::Status>, Status> {
        traced("GetStatus", async move {
            self.authorize(&request, Access::Read)?;
            let probe = self.status.connected(&self.store).await;
            Ok(reply(pb::Status {
                connected: probe.is_ok().to_string(),
                instance_id: self.instance_id.to_string(),
                reason: probe.err(),
            }))
        })
        .await
    }
}

/// The service call's span (a child of the edge span, or of nothing when traces are off): one per
/// RPC whichever listener it came through; the statuses that are the server's fault are errors.
async fn traced<T>(
    method: &'static str,
    call: impl std::future::Future<Output = Result<Response<T>, Status>>,
) -> Result<Response<T>, Status> {
    use candidates_edge::trace;
    let describe = || {
        let name = format!("{}/{method}", candidates_api::SERVICE_NAME);
        (name.into(), trace::Kind::Internal, vec![("rpc.method", method.into())])
    };
    let error = |result: &Result<Response<T>, Status>| match result {
        Err(status)
            if matches!(
                status.code(),
                tonic::Code::Unknown
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::Unimplemented
                    | tonic::Code::Internal
                    | tonic::Code::Unavailable
                    | tonic::Code::DataLoss
            ) =>
        {
            Some(format!("{:?}: {}", status.code(), status.message()))
        }
        _ => None,
    };
    trace::child(describe, call, error).await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::store::{CandidateStore, Page, Result as StoreResult, memory::MemoryStore};

    /// A store that answers every other page empty, with a token, as DynamoDB's Scan may.
    #[derive(Debug)]
    struct Gappy {
        inner: MemoryStore,
        calls: AtomicUsize,
    }

    #[async_trait]
    impl CandidateStore for Gappy {
        fn kind(&self) -> &'static str {
            "gappy"
        }
        fn may_return_empty_pages(&self) -> bool {
            true
        }
        async fn get(&self, name: &CandidateName) -> StoreResult<Candidate> {
            self.inner.get(name).await
        }
        async fn put(&self, name: &CandidateName) -> StoreResult<Candidate> {
            self.inner.put(name).await
        }
        async fn delete(&self, name: &CandidateName) -> StoreResult<()> {
            self.inner.delete(name).await
        }
        async fn list(&self, page_size: usize, page_token: Option<&str>) -> StoreResult<Page> {
            if self.calls.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
                // An empty page that repeats the position it was given.
                let token = page_token.map_or_else(|| crate::store::encode_name_cursor(""), str::to_owned);
                return Ok(Page { candidates: vec![], next_page_token: Some(token) });
            }
            self.inner
                .list(page_size, page_token.filter(|t| !crate::store::decode_name_cursor(t).unwrap().is_empty()))
                .await
        }
        async fn ping(&self) -> StoreResult<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn clients_never_see_an_empty_page_that_is_not_the_last() {
        let store = Gappy { inner: MemoryStore::new(), calls: AtomicUsize::new(0) };
        for i in 0..5 {
            store.put(&CandidateName::parse(format!("c{i}")).unwrap()).await.unwrap();
        }
        let api = CandidateApi::new(Arc::new(store), "test".into(), Duration::from_secs(1), Arc::new(Auth::open()));
        let (mut token, mut seen) = (String::new(), Vec::new());
        loop {
            let page = api
                .list_candidates(Request::new(ListCandidatesRequest { page_size: 2, page_token: token }))
                .await
                .unwrap()
                .into_inner();
            assert!(!page.candidates.is_empty() || page.next_page_token.is_empty(), "empty page with a token");
            seen.extend(page.candidates.into_iter().map(|c| c.name));
            token = page.next_page_token;
            if token.is_empty() {
                break;
            }
        }
        assert_eq!(seen, ["c0", "c1", "c2", "c3", "c4"]);
    }
}
