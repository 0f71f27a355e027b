//! Metadata passthrough on the REST gateway against the real binary, in grpc-gateway's convention:
//! `Grpc-Metadata-<key>` request headers reach the gRPC service as metadata, its response
//! metadata comes back as `Grpc-Metadata-<key>` headers, W3C trace context passes through and is
//! on the access line, and everything is bounded. The upstream is a tonic server in the test (the
//! binary's `--grpc-upstream`), so the test sees exactly what arrives over gRPC.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use candidates_api::v1::{
    self as pb, Candidate, DeleteCandidateRequest, GetCandidateRequest, GetStatusRequest, ListCandidatesRequest,
    ListCandidatesResponse, PutCandidateRequest,
    candidate_service_server::{CandidateService, CandidateServiceServer},
};
use common::{TestServer, http};
use tonic::{Request, Response, Status};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Remembers the metadata of every call and answers with some of its own.
#[derive(Clone, Default)]
struct Upstream {
    seen: Arc<Mutex<Vec<tonic::metadata::MetadataMap>>>,
}

impl Upstream {
    fn answer<T>(&self, request: &Request<impl Sized>, message: T) -> Result<Response<T>, Status> {
        self.seen.lock().unwrap().push(request.metadata().clone());
        let mut response = Response::new(message);
        response.metadata_mut().insert("x-served-by", "upstream-1".parse().unwrap());
        response.metadata_mut().insert("grpc-internal", "never passed on".parse().unwrap());
        Ok(response)
    }
}

#[tonic::async_trait]
impl CandidateService for Upstream {
    async fn get_candidate(&self, request: Request<GetCandidateRequest>) -> Result<Response<Candidate>, Status> {
        let name = request.get_ref().name.clone();
        self.answer(&request, Candidate { name })
    }
    async fn put_candidate(&self, request: Request<PutCandidateRequest>) -> Result<Response<Candidate>, Status> {
        let name = request.get_ref().name.clone();
        self.answer(&request, Candidate { name })
    }
    async fn delete_candidate(&self, request: Request<DeleteCandidateRequest>) -> Result<Response<Candidate>, Status> {
        let name = request.get_ref().name.clone();
        self.answer(&request, Candidate { name })
    }
    async fn list_candidates(
        &self,
        request: Request<ListCandidatesRequest>,
    ) -> Result<Response<ListCandidatesResponse>, Status> {
        self.answer(&request, ListCandidatesResponse { candidates: vec![], next_page_token: String::new() })
    }
    async fn get_status(&self, request: Request<GetStatusRequest>) -> Result<Response<pb::Status>, Status> {
        self.answer(&request, pb::Status { connected: "true".into(), instance_id: "up".into(), reason: None })
    }
}

async fn upstream() -> (Upstream, std::net::SocketAddr) {
    let upstream = Upstream::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = CandidateServiceServer::new(upstream.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (upstream, addr)
}

#[tokio::test]
async fn grpc_metadata_headers_pass_through_both_ways() {
    let (upstream, addr) = upstream().await;
    let server = TestServer::spawn(&["--grpc-upstream", &format!("http://{addr}")]);

    let response = http()
        .get(server.url("/candidate/alice"))
        .header("Grpc-Metadata-Tenant", "acme")
        .header("grpc-metadata-x-feature", "a")
        .header("grpc-metadata-x-feature", "b")
        .header("traceparent", TRACEPARENT)
        .header("tracestate", "vendor=opaque")
        .header("x-request-id", "meta-1")
        .header("x-not-metadata", "stays here")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["grpc-metadata-x-served-by"], "upstream-1");
    assert!(response.headers().get("grpc-metadata-grpc-internal").is_none(), "grpc-* stays inside");
    assert!(response.headers().get("grpc-metadata-content-type").is_none());

    let seen = upstream.seen.lock().unwrap().pop().unwrap();
    assert_eq!(seen.get("tenant").unwrap(), "acme");
    let features: Vec<_> = seen.get_all("x-feature").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert_eq!(features, ["a", "b"]);
    assert_eq!(seen.get("traceparent").unwrap(), TRACEPARENT);
    assert_eq!(seen.get("tracestate").unwrap(), "vendor=opaque");
    assert_eq!(seen.get("x-request-id").unwrap(), "meta-1");
    assert!(seen.get("x-not-metadata").is_none(), "only Grpc-Metadata-* headers are passed on");

    let line = server.log_line(|v| v["request_id"] == "meta-1").await;
    assert_eq!(line["traceparent"], TRACEPARENT, "{line}");
    assert_eq!(line["tracestate"], "vendor=opaque", "{line}");

    // A malformed traceparent is dropped (with its tracestate), not an error.
    let response = http()
        .get(server.url("/candidate/alice"))
        .header("traceparent", "00-zzzz-01")
        .header("tracestate", "vendor=opaque")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = upstream.seen.lock().unwrap().pop().unwrap();
    assert!(seen.get("traceparent").is_none() && seen.get("tracestate").is_none());
}

#[tokio::test]
async fn passthrough_is_bounded_and_never_carries_reserved_names() {
    let (upstream, addr) = upstream().await;
    let server = TestServer::spawn(&["--grpc-upstream", &format!("http://{addr}")]);

    let refused = |request: reqwest::RequestBuilder| async move {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 400);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], 3, "{body}");
        body["message"].as_str().unwrap().to_owned()
    };
    // Too many entries, too many bytes.
    let mut many = http().get(server.url("/candidate/alice"));
    for i in 0..17 {
        many = many.header(format!("grpc-metadata-k{i}"), "v");
    }
    assert!(refused(many).await.contains("at most 16"));
    let big = http().get(server.url("/candidate/alice")).header("grpc-metadata-big", "v".repeat(5000));
    assert!(refused(big).await.contains("bytes"));
    // A second credential, the deadline, binary metadata: refused, and the value is not echoed.
    for name in ["grpc-metadata-authorization", "grpc-metadata-grpc-timeout", "grpc-metadata-trace-bin"] {
        let message = refused(http().post(server.url("/candidate/alice")).header(name, "s3cr3t-value")).await;
        assert!(!message.contains("s3cr3t-value"), "{message}");
    }
    assert!(upstream.seen.lock().unwrap().is_empty(), "no refused request reached the service");

    // The load balancer's check answers whatever headers come with it.
    let gtg = http().get(server.url("/gtg")).header("grpc-metadata-authorization", "x").send().await.unwrap();
    assert_eq!(gtg.status(), 200);
}

#[tokio::test]
async fn the_in_process_service_gets_the_trace_context_too() {
    let server = TestServer::spawn(&[]);
    let response = http()
        .post(server.url("/candidate/traced"))
        .header("traceparent", TRACEPARENT)
        .header("grpc-metadata-tenant", "acme")
        .header("x-request-id", "meta-local")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let line = server.log_line(|v| v["request_id"] == "meta-local").await;
    assert_eq!(line["traceparent"], TRACEPARENT, "{line}");
    assert_eq!(line["path"], "/candidate/traced");
}
