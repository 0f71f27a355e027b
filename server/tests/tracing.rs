//! Traces against a real OTLP receiver on 127.0.0.1, built in the test from the official OTLP
//! protobufs (opentelemetry-proto's `TraceService`, and OTLP/HTTP's `POST /v1/traces`): the real
//! binary exports to it, and the test checks the span tree of a REST request and of a gRPC call
//! (edge span ← incoming `traceparent`, service span ← edge span, store span ← service span),
//! the trace id on the access line, the propagation to a `--grpc-upstream`, parent-based
//! sampling, and that an unreachable collector changes nothing for requests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use candidates_api::v1::{GetCandidateRequest, PutCandidateRequest};
use common::{TestServer, http};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value,
    trace::v1::{Span, span::SpanKind, status::StatusCode},
};
use prost::Message;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// A span as received, with its resource's `service.instance.id`.
#[derive(Clone, Debug)]
struct Received {
    span: Span,
    service: String,
}

impl Received {
    fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }
    fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }
    fn parent_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }
    fn attribute(&self, key: &str) -> Option<String> {
        let value = self.span.attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()?;
        Some(match value {
            any_value::Value::StringValue(s) => s.clone(),
            any_value::Value::IntValue(i) => i.to_string(),
            other => format!("{other:?}"),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every span every export request brought, over either protocol.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Received>>>,
}

impl Collector {
    fn take(&self, request: ExportTraceServiceRequest) {
        let mut spans = self.spans.lock().unwrap();
        for resource_spans in request.resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    any_value::Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                spans.extend(scope.spans.into_iter().map(|span| Received { span, service: service.clone() }));
            }
        }
    }

    fn of_trace(&self, trace: &str) -> Vec<Received> {
        self.spans.lock().unwrap().iter().filter(|s| s.trace_id() == trace).cloned().collect()
    }

    fn all(&self) -> Vec<Received> {
        self.spans.lock().unwrap().clone()
    }

    /// The spans of `trace` once there are `count` of them (the server sends a batch every 2 s).
    async fn wait_for(&self, trace: &str, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let spans = self.of_trace(trace);
            if spans.len() >= count {
                return spans;
            }
            assert!(Instant::now() < deadline, "{} of {count} spans of {trace}: {:#?}", spans.len(), self.all());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.take(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

/// An OTLP/gRPC receiver on 127.0.0.1.
async fn grpc_collector() -> (Collector, SocketAddr) {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (collector, addr)
}

/// An OTLP/HTTP (protobuf) receiver on 127.0.0.1.
async fn http_collector() -> (Collector, SocketAddr) {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post({
            let collector = collector.clone();
            move |headers: http::HeaderMap, body: bytes::Bytes| async move {
                assert_eq!(headers["content-type"], "application/x-protobuf");
                collector.take(ExportTraceServiceRequest::decode(body).unwrap());
                ExportTraceServiceResponse { partial_success: None }.encode_to_vec()
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    (collector, addr)
}

fn traced_server(collector: SocketAddr, extra: &[&str]) -> TestServer {
    let endpoint = format!("http://{collector}");
    let mut args = vec!["--otlp-endpoint", &endpoint, "--trace-sample-ratio", "1", "--store", "memory"];
    args.extend_from_slice(extra);
    TestServer::spawn(&args)
}

/// The one span of `spans` named `name`.
fn named<'a>(spans: &'a [Received], name: &str) -> &'a Received {
    let found: Vec<_> = spans.iter().filter(|s| s.span.name == name).collect();
    assert_eq!(found.len(), 1, "one span named {name} in {spans:#?}");
    found[0]
}

/// The one span of `spans` of this kind, named `name`.
fn of_kind<'a>(spans: &'a [Received], kind: SpanKind, name: &str) -> &'a Received {
    let found: Vec<_> = spans.iter().filter(|s| s.span.kind == kind as i32).collect();
    assert_eq!(found.len(), 1, "one {kind:?} span in {spans:#?}");
    assert_eq!(found[0].span.name, name, "{spans:#?}");
    found[0]
}

/// Edge (server) ← service (internal) ← store (client), in one trace, each inside its parent.
fn assert_tree<'a>(spans: &'a [Received], edge: &str, method: &str, op: &str) -> (&'a Received, &'a Received) {
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let edge = of_kind(spans, SpanKind::Server, edge);
    let service = of_kind(spans, SpanKind::Internal, &format!("candidates.v1.CandidateService/{method}"));
    let store = of_kind(spans, SpanKind::Client, &format!("store {op}"));
    assert_eq!(service.parent_id(), edge.span_id(), "the service call is a child of the edge span");
    assert_eq!(store.parent_id(), service.span_id(), "the store attempt is a child of the service call");
    for (outer, inner) in [(edge, service), (service, store)] {
        assert!(outer.span.start_time_unix_nano <= inner.span.start_time_unix_nano);
        assert!(inner.span.end_time_unix_nano <= outer.span.end_time_unix_nano);
    }
    assert_eq!(store.attribute("db.system.name").as_deref(), Some("memory"));
    assert_eq!(store.attribute("db.operation.name").as_deref(), Some(op));
    for span in [edge, service, store] {
        assert_eq!(span.service, "candidates");
        assert_ne!(span.span.status.as_ref().unwrap().code, StatusCode::Error as i32);
    }
    (edge, store)
}

#[tokio::test]
async fn rest_and_grpc_requests_export_one_span_tree_each_to_an_otlp_grpc_collector() {
    let (collector, addr) = grpc_collector().await;
    let server = traced_server(addr, &[]);
    let client = http();

    // No traceparent, sampled at ratio 1: a new trace, whose root is the edge span.
    let put = client.post(server.url("/candidate/alice")).send().await.unwrap();
    assert_eq!(put.status(), 200);
    let line = server.log_line(|l| l["method"] == "POST" && l["path"] == "/candidate/alice").await;
    let put_trace = line["trace_id"].as_str().expect("the access line has the trace id").to_owned();
    let spans = collector.wait_for(&put_trace, 3).await;
    let (edge, _) = assert_tree(&spans, "POST /candidate/{name}", "PutCandidate", "put");
    assert!(edge.span.parent_span_id.is_empty(), "a new trace's edge span is its root");

    // REST with a sampled traceparent: the same trace, the edge span a child of the caller's.
    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    let get = client.get(server.url("/candidate/alice")).header("traceparent", &traceparent).send().await.unwrap();
    assert_eq!(get.status(), 200);
    let spans = collector.wait_for(TRACE, 3).await;
    let (edge, _) = assert_tree(&spans, "GET /candidate/{name}", "GetCandidate", "get");
    assert_eq!(edge.parent_id(), PARENT, "the incoming traceparent is the edge span's parent");
    assert_eq!(edge.span.flags & 0x300, 0x300, "its parent is remote");
    assert_eq!(edge.attribute("http.route").as_deref(), Some("/candidate/{name}"));
    assert_eq!(edge.attribute("http.response.status_code").as_deref(), Some("200"));
    let line = server.log_line(|l| l["method"] == "GET" && l["path"] == "/candidate/alice").await;
    assert_eq!(line["trace_id"], TRACE, "{line}");
    assert_eq!(line["traceparent"], traceparent.as_str(), "{line}");

    // gRPC with a traceparent in its metadata: the same tree under the gRPC listener's span.
    let grpc_trace = "0af7651916cd43dd8448eb211c80319c";
    let mut request = tonic::Request::new(GetCandidateRequest { name: "alice".into() });
    request.metadata_mut().insert("traceparent", format!("00-{grpc_trace}-b7ad6b7169203331-01").parse().unwrap());
    server.grpc_client().await.get_candidate(request).await.unwrap();
    let spans = collector.wait_for(grpc_trace, 3).await;
    // Two spans have the RPC's name: the edge's (server) and the service call's (internal).
    let (edge, _) = assert_tree(&spans, "candidates.v1.CandidateService/GetCandidate", "GetCandidate", "get");
    assert_eq!(edge.parent_id(), "b7ad6b7169203331");
    assert_eq!(edge.attribute("rpc.system").as_deref(), Some("grpc"));
    assert_eq!(edge.attribute("rpc.grpc.status_code").as_deref(), Some("0"));
    let line = server.log_line(|l| l["rpc"].as_str().is_some_and(|r| r.ends_with("/GetCandidate"))).await;
    assert_eq!(line["trace_id"], grpc_trace, "{line}");

    // Not found is an answer, not an error: a tree with no error in it.
    let missing_trace = "22222222222222222222222222222222";
    let missing =
        client.get(server.url("/candidate/nobody")).header("traceparent", format!("00-{missing_trace}-{PARENT}-01"));
    assert_eq!(missing.send().await.unwrap().status(), 404);
    let spans = collector.wait_for(missing_trace, 3).await;
    let (edge, _) = assert_tree(&spans, "GET /candidate/{name}", "GetCandidate", "get");
    assert_eq!(edge.attribute("http.response.status_code").as_deref(), Some("404"));
}

#[tokio::test]
async fn a_grpc_web_call_is_traced_as_a_grpc_call() {
    let (collector, addr) = grpc_collector().await;
    let server = traced_server(addr, &[]);
    let mut body = vec![0u8];
    let message = GetCandidateRequest { name: "nobody".into() }.encode_to_vec();
    body.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    body.extend_from_slice(&message);
    let web_trace = "33333333333333333333333333333333";
    let response = http()
        .post(server.url("/candidates.v1.CandidateService/GetCandidate"))
        .header("content-type", "application/grpc-web+proto")
        .header("traceparent", format!("00-{web_trace}-{PARENT}-01"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // gRPC-Web on the REST port is served by the gRPC listener's edge (docs/browsers.md).
    let spans = collector.wait_for(web_trace, 3).await;
    let rpc = "candidates.v1.CandidateService/GetCandidate";
    let (edge, _) = assert_tree(&spans, rpc, "GetCandidate", "get");
    assert_eq!(edge.parent_id(), PARENT);
    assert_eq!(edge.attribute("rpc.grpc.status_code").as_deref(), Some("5"));
}

#[tokio::test]
async fn otlp_over_http_and_a_remote_upstream_continue_the_trace() {
    let (collector, addr) = http_collector().await;
    // The service instance, and a gateway instance that calls it over gRPC; both export.
    let upstream = traced_server(addr, &["--otlp-protocol", "http"]);
    let upstream_uri = format!("http://{}", upstream.grpc);
    let gateway = traced_server(addr, &["--otlp-protocol", "http", "--grpc-upstream", &upstream_uri]);

    let put = upstream.grpc_client().await.put_candidate(PutCandidateRequest { name: "bob".into() }).await;
    put.unwrap();
    let response =
        http().get(gateway.url("/candidate/bob")).header("traceparent", format!("00-{TRACE}-{PARENT}-01")).send().await;
    assert_eq!(response.unwrap().status(), 200);

    // Gateway edge ← upstream's gRPC edge ← service ← store, one trace across two processes.
    let spans = collector.wait_for(TRACE, 4).await;
    let servers: Vec<_> = spans.iter().filter(|s| s.span.kind == SpanKind::Server as i32).collect();
    assert_eq!(servers.len(), 2, "{spans:#?}");
    let rest_edge = named(&spans, "GET /candidate/{name}");
    assert_eq!(rest_edge.parent_id(), PARENT);
    let grpc_edge = servers.iter().find(|s| s.span.name != rest_edge.span.name).unwrap();
    assert_eq!(grpc_edge.parent_id(), rest_edge.span_id(), "the upstream's span is a child of the gateway's");
    let upstream_spans: Vec<_> = spans.iter().filter(|s| s.span_id() != rest_edge.span_id()).cloned().collect();
    assert_tree(&upstream_spans, &grpc_edge.span.name, "GetCandidate", "get");
}

#[tokio::test]
async fn sampling_follows_the_parent_and_the_ratio() {
    let (collector, addr) = grpc_collector().await;
    let endpoint = format!("http://{addr}");
    let server = TestServer::spawn(&["--otlp-endpoint", &endpoint, "--trace-sample-ratio", "0", "--store", "memory"]);
    let client = http();

    // Ratio 0 and no traceparent, or one that says "not sampled": nothing is exported.
    for _ in 0..20 {
        assert_eq!(client.post(server.url("/candidate/carol")).send().await.unwrap().status(), 200);
    }
    let unsampled = format!("00-{TRACE}-{PARENT}-00");
    let get = client.get(server.url("/candidate/carol")).header("traceparent", &unsampled).send().await.unwrap();
    assert_eq!(get.status(), 200);
    let line = server.log_line(|l| l["traceparent"] == unsampled.as_str()).await;
    assert_eq!(line["trace_id"], TRACE, "an unsampled request still logs its trace id");

    // A sampled parent is honoured whatever the ratio.
    let sampled = "11111111111111111111111111111111";
    let get = client.get(server.url("/candidate/carol")).header("traceparent", format!("00-{sampled}-{PARENT}-01"));
    assert_eq!(get.send().await.unwrap().status(), 200);
    collector.wait_for(sampled, 3).await;
    // Exported in order: had any earlier request been sampled, its spans would be here by now.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let all = collector.all();
    assert!(all.iter().all(|s| s.trace_id() == sampled), "only the sampled request: {all:#?}");
}

#[tokio::test]
async fn an_unreachable_collector_never_slows_or_fails_requests() {
    // A port that was free a moment ago: connections to it are refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut server = traced_server(closed, &[]);
    let client = http();
    let started = Instant::now();
    for i in 0..200 {
        let url = server.url(&format!("/candidate/n{i}"));
        assert_eq!(client.post(url).send().await.unwrap().status(), 200);
    }
    let mut grpc = server.grpc_client().await;
    for _ in 0..50 {
        grpc.get_candidate(GetCandidateRequest { name: "n1".into() }).await.unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(10), "250 requests took {:?}", started.elapsed());
    // Exports fail (and say so) in the background.
    server.log_line(|l| l["message"].as_str().is_some_and(|m| m.starts_with("OTLP export failed"))).await;
    // Shutdown is not held up by the last flush for longer than its bound. (Waited for without
    // blocking this thread: the clients' connections live on it and must see the GOAWAY.)
    server.signal(libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    drop((grpc, client));
    assert!(
        status.success(),
        "{status}: {:#?}",
        server.log_lines().iter().filter(|l| !l.contains("\"target\":\"access\"")).collect::<Vec<_>>()
    );
}

/// A client chooses its `traceparent`'s sampled flag: honouring it is bounded to
/// `REMOTE_SAMPLED_PER_SECOND` traces a second (attacker review: `-01` on every request filled the
/// export queue). Within the allowance it is honoured, as above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_forced_sampling_is_bounded() {
    use futures::StreamExt;
    let (collector, addr) = grpc_collector().await;
    let endpoint = format!("http://{addr}");
    let mut server =
        TestServer::spawn(&["--otlp-endpoint", &endpoint, "--trace-sample-ratio", "0", "--store", "memory"]);
    let client = http();
    const REQUESTS: usize = 3000;
    let started = Instant::now();
    futures::stream::iter(0..REQUESTS)
        .for_each_concurrent(32, |i| {
            let request =
                client.get(server.url("/gtg")).header("traceparent", format!("00-{:032x}-{PARENT}-01", i + 1));
            async move { assert_eq!(request.send().await.unwrap().status(), 200) }
        })
        .await;
    let elapsed = started.elapsed();
    // Everything queued is sent at shutdown.
    server.signal(libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the server did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let traces: std::collections::HashSet<String> = collector.all().iter().map(Received::trace_id).collect();
    // The burst spans at most elapsed + 2 one-second windows.
    let bound = candidates_edge::trace::REMOTE_SAMPLED_PER_SECOND as usize * (elapsed.as_secs() as usize + 2);
    assert!(traces.len() <= bound, "{} traces sampled on the client's word in {elapsed:?}", traces.len());
    assert!(traces.len() >= candidates_edge::trace::REMOTE_SAMPLED_PER_SECOND as usize, "the allowance is honoured");
    if bound < REQUESTS {
        assert!(traces.len() < REQUESTS);
    }
}
