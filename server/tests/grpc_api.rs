//! The gRPC contract with real tonic clients against the real binary: CandidateService status
//! codes, deadlines, shedding, health, reflection, and the gateway's --grpc-upstream mode.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use candidates_api::v1::{
    DeleteCandidateRequest, GetCandidateRequest, GetStatusRequest, ListCandidatesRequest, PutCandidateRequest,
};
use common::{TestServer, http};
use futures::StreamExt;
use tonic::Code;

#[tokio::test]
async fn crud_and_status_codes() {
    let server = TestServer::spawn(&[]);
    let mut c = server.grpc_client().await;

    let err = c.get_candidate(GetCandidateRequest { name: "Ada".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let put = c.put_candidate(PutCandidateRequest { name: "Ada".into() }).await.unwrap().into_inner();
    assert_eq!(put.name, "Ada");
    let got = c.get_candidate(GetCandidateRequest { name: "Ada".into() }).await.unwrap().into_inner();
    assert_eq!(got.name, "Ada");

    for bad in ["", "a/b", "..", "__x__", "new\nline"] {
        let err = c.put_candidate(PutCandidateRequest { name: bad.into() }).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}");
        assert!(err.message().starts_with("invalid name: "), "{}", err.message());
    }
    let page = c.list_candidates(ListCandidatesRequest::default()).await.unwrap().into_inner();
    assert_eq!(page.candidates.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["Ada"], "bad names wrote");

    let deleted = c.delete_candidate(DeleteCandidateRequest { name: "Ada".into() }).await.unwrap().into_inner();
    assert_eq!(deleted.name, "Ada");
    let err = c.delete_candidate(DeleteCandidateRequest { name: "Ada".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let status = c.get_status(GetStatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.connected, "true");
    assert!(!status.instance_id.is_empty());
}

#[tokio::test]
async fn list_pages_and_page_size_rules() {
    let server = TestServer::spawn(&["--store", "memory"]);
    let mut c = server.grpc_client().await;
    for i in 0..1_205 {
        c.put_candidate(PutCandidateRequest { name: format!("n{i:04}") }).await.unwrap();
    }
    // 0 → default 100; above the maximum → 1000.
    let page = c.list_candidates(ListCandidatesRequest::default()).await.unwrap().into_inner();
    assert_eq!(page.candidates.len(), 100);
    let page = c
        .list_candidates(ListCandidatesRequest { page_size: 5_000, page_token: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.candidates.len(), 1000);
    let rest = c
        .list_candidates(ListCandidatesRequest { page_size: 5_000, page_token: page.next_page_token })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((rest.candidates.len(), rest.next_page_token.as_str()), (205, ""));
    assert_eq!(rest.candidates[0].name, "n1000");

    let err = c.list_candidates(ListCandidatesRequest { page_size: -1, page_token: String::new() }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = c.list_candidates(ListCandidatesRequest { page_size: 1, page_token: "@@".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn caller_deadline_is_deadline_exceeded() {
    let server = TestServer::spawn(&["--debug-store-delay", "2s"]);
    // tonic's Channel enforces the deadline locally too (and reports CANCELLED), which would hide
    // what the server answers: use a plain HTTP/2 client as the transport instead.
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<tonic::body::Body>();
    let origin: http::Uri = format!("http://{}", server.grpc).parse().unwrap();
    let mut raw = candidates_api::v1::candidate_service_client::CandidateServiceClient::with_origin(h2, origin);
    let mut request = tonic::Request::new(GetCandidateRequest { name: "slow".into() });
    request.set_timeout(Duration::from_millis(150));
    let started = Instant::now();
    let err = raw.get_candidate(request).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn server_default_deadline_applies_without_one() {
    let server = TestServer::spawn(&["--debug-store-delay", "2s", "--request-timeout", "200ms"]);
    let mut c = server.grpc_client().await;
    let err = c.get_candidate(GetCandidateRequest { name: "slow".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded);
}

#[tokio::test]
async fn store_down_is_unavailable() {
    let server = TestServer::spawn(&["--debug-store-fail"]);
    let mut c = server.grpc_client().await;
    let mut request = tonic::Request::new(PutCandidateRequest { name: "x".into() });
    request.metadata_mut().insert("x-request-id", "grpc-warn-1".parse().unwrap());
    let err = c.put_candidate(request).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    // The call's line and the warning logged inside it both carry its id.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let lines: Vec<serde_json::Value> =
            server.log_lines().iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let warning = lines.iter().find(|v| v["message"] == "store unavailable");
        let access = lines.iter().find(|v| v["message"] == "rpc" && v["request_id"] == "grpc-warn-1");
        if let (Some(warning), Some(access)) = (warning, access) {
            assert_eq!(warning["request_id"], "grpc-warn-1", "{warning}");
            assert_eq!(access["rpc"], "/candidates.v1.CandidateService/PutCandidate");
            assert_eq!(access["grpc_status"], "14");
            assert!(access["latency_ms"].is_number(), "{access}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no lines with the call's id: {lines:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let status = c.get_status(GetStatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.connected, "false");
}

#[tokio::test]
async fn overload_is_resource_exhausted() {
    let server = TestServer::spawn(&["--max-concurrency", "2", "--debug-store-delay", "500ms"]);
    let c = server.grpc_client().await;
    let calls = (0..6).map(|i| {
        let mut c = c.clone();
        async move { c.get_candidate(GetCandidateRequest { name: format!("n{i}") }).await }
    });
    let results = futures::future::join_all(calls).await;
    let exhausted = results.iter().filter(|r| matches!(r, Err(s) if s.code() == Code::ResourceExhausted)).count();
    assert!(exhausted >= 1, "{results:?}");
    assert!(
        results.iter().all(|r| matches!(r, Err(s) if matches!(s.code(), Code::ResourceExhausted | Code::NotFound)))
    );
}

#[tokio::test]
async fn health_serves_both_names() {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    let server = TestServer::spawn(&[]);
    let mut health = HealthClient::new(server.grpc_channel().await);
    for service in ["", candidates_api::SERVICE_NAME] {
        let resp = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
        assert_eq!(resp.status(), ServingStatus::Serving, "{service:?}");
    }
    let err = health.check(HealthCheckRequest { service: "nope.Service".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_the_services() {
    let server = TestServer::spawn(&[]);
    let channel = server.grpc_channel().await;
    let expected = [candidates_api::SERVICE_NAME, "grpc.health.v1.Health"];

    {
        use tonic_reflection::pb::v1::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let mut client = ServerReflectionClient::new(channel.clone());
        let requests = vec![
            ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            },
            ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::FileContainingSymbol(candidates_api::SERVICE_NAME.into())),
            },
        ];
        let mut responses = client.server_reflection_info(futures::stream::iter(requests)).await.unwrap().into_inner();
        match responses.next().await.unwrap().unwrap().message_response.unwrap() {
            MessageResponse::ListServicesResponse(list) => {
                let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
                for want in expected {
                    assert!(names.contains(&want), "v1 lists {names:?}, missing {want}");
                }
            }
            other => panic!("unexpected {other:?}"),
        }
        match responses.next().await.unwrap().unwrap().message_response.unwrap() {
            MessageResponse::FileDescriptorResponse(files) => assert!(!files.file_descriptor_proto.is_empty()),
            other => panic!("unexpected {other:?}"),
        }
    }
    {
        use tonic_reflection::pb::v1alpha::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let mut client = ServerReflectionClient::new(channel);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut responses = client.server_reflection_info(futures::stream::iter([request])).await.unwrap().into_inner();
        match responses.next().await.unwrap().unwrap().message_response.unwrap() {
            MessageResponse::ListServicesResponse(list) => {
                let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
                for want in expected {
                    assert!(names.contains(&want), "v1alpha lists {names:?}, missing {want}");
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The gateway of one instance can call another instance's gRPC service.
#[tokio::test]
async fn gateway_calls_a_remote_upstream() {
    let backend = TestServer::spawn(&[]);
    let upstream = format!("http://{}", backend.grpc);
    let front = TestServer::spawn(&["--store", "memory", "--grpc-upstream", &upstream]);

    let resp = http().post(front.url("/candidate/Remote%20One")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut c = backend.grpc_client().await;
    let got = c.get_candidate(GetCandidateRequest { name: "Remote One".into() }).await.unwrap().into_inner();
    assert_eq!(got.name, "Remote One");
    // And an unreachable upstream is 503, not a hang or a 500.
    drop(backend);
    let resp = http().get(front.url("/candidate/Remote%20One")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
}

/// With --grpc-max-connection-age the server ends each connection gracefully after about that
/// long: the connection closes by itself (GOAWAY), and a call in flight at that moment still
/// completes. Clients behind a layer-4 load balancer reconnect, so a scale-out gets their calls.
#[tokio::test]
async fn connections_close_gracefully_at_their_maximum_age() {
    use http_body_util::{BodyExt, Full};
    use prost::Message;

    let server = TestServer::spawn(&["--grpc-max-connection-age", "300ms", "--debug-store-delay", "700ms"]);
    let stream = tokio::net::TcpStream::connect(server.grpc).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    let started = Instant::now();
    let closed = tokio::spawn(async move {
        let _ = connection.await;
        started.elapsed()
    });

    // One GetCandidate, gRPC-framed by hand; the store delay keeps it in flight past the age.
    let message = GetCandidateRequest { name: "in-flight".into() }.encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&message);
    let request = http::Request::post(format!("http://{}/candidates.v1.CandidateService/GetCandidate", server.grpc))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(bytes::Bytes::from(frame)))
        .unwrap();
    let response = sender.send_request(request).await.expect("the in-flight call is answered");
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.expect("the in-flight call's body completes");
    // An error is a trailers-only response: grpc-status comes with the headers.
    let trailers = body.trailers().cloned().unwrap_or_default();
    let status = trailers.get("grpc-status").or(headers.get("grpc-status"));
    assert_eq!(status.map(|v| v.to_str().unwrap()), Some("5"), "NOT_FOUND, the store's real answer: {headers:?}");
    assert!(started.elapsed() >= Duration::from_millis(600), "the call really was in flight across the age limit");

    let lifetime = tokio::time::timeout(Duration::from_secs(5), closed).await.expect("the server closed it").unwrap();
    assert!(lifetime >= Duration::from_millis(250), "closed at the age limit, not at once: {lifetime:?}");
    assert!(sender.ready().await.is_err(), "no new calls on a closed connection");
}
