//! `--single-port` against the real binary: REST (HTTP/1.1 and h2c), gRPC (h2c with prior knowledge:
//! CandidateService, health, reflection), gRPC-Web and /metrics all on the REST listener, dispatched
//! by content type, and no gRPC listener bound; `PORT` chooses the port in this mode only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use candidates_api::v1::{GetCandidateRequest, PutCandidateRequest};
use common::{TestServer, http, port_open, port_or_free};
use prost::Message;

async fn contract(rest: &str, grpc: &str) -> candidates_clients::check::Report {
    let args = candidates_clients::check::CheckArgs {
        rest_target: rest.to_owned(),
        grpc_target: grpc.to_owned(),
        skip_rest: false,
        skip_grpc: false,
    };
    let credential = candidates_clients::credential::Credential::key(None).unwrap();
    candidates_clients::check::run(Duration::from_secs(10), &args, &credential).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_grpc_health_reflection_and_grpc_web_share_one_port() {
    let unbound = port_or_free(0);
    let grpc_addr = format!("127.0.0.1:{unbound}");
    let server = TestServer::spawn(&["--single-port", "--grpc-addr", &grpc_addr]);
    assert_eq!(server.http, server.grpc, "gRPC is announced on the REST listener");
    assert!(!port_open(unbound), "no gRPC listener is bound in single-port mode");
    let line = server.log_line(|v| v["message"] == "listening").await;
    assert_eq!(line["single_port"], true);

    // The whole wire contract, REST and gRPC (health, reflection, every RPC), at one address.
    let target = format!("http://{}", server.http);
    let report = contract(&target, &target).await;
    assert!(report.passed >= 20 && report.failed == 0, "{report:?}");

    // gRPC: a tonic client (h2c, prior knowledge) on the REST port.
    let mut client = server.grpc_client().await;
    client.put_candidate(PutCandidateRequest { name: "Ada".into() }).await.unwrap();
    let got = client.get_candidate(GetCandidateRequest { name: "Ada".into() }).await.unwrap().into_inner();
    assert_eq!(got.name, "Ada");

    // gRPC-Web (HTTP/1.1) still goes to the REST router's gRPC-Web service.
    let message = GetCandidateRequest { name: "Ada".into() }.encode_to_vec();
    let body = [&[0u8][..], &(message.len() as u32).to_be_bytes(), &message].concat();
    let answer = http()
        .post(server.url("/candidates.v1.CandidateService/GetCandidate"))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["content-type"], "application/grpc-web+proto");
    let bytes = answer.bytes().await.unwrap();
    assert!(bytes.windows(3).any(|w| w == b"Ada"), "{bytes:?}");

    // REST beside it, and /metrics counting both protocols.
    let rest = http().get(server.url("/candidate/Ada")).send().await.unwrap();
    assert_eq!(rest.status(), 200);
    assert_eq!(rest.text().await.unwrap(), r#"{"CandidateName":"Ada"}"#);
    let metrics = http().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("GetCandidate"), "gRPC calls are counted");

    // h2c with prior knowledge (what Cloud Run sends with HTTP/2 end to end) carries REST too.
    let h2c = reqwest::Client::builder().no_proxy().http2_prior_knowledge().build().unwrap();
    let answer = h2c.get(server.url("/candidates")).send().await.unwrap();
    assert_eq!(answer.version(), reqwest::Version::HTTP_2);
    assert_eq!(answer.status(), 200);
    assert!(answer.text().await.unwrap().contains(r#"{"CandidateName":"Ada"}"#));

    // Not gRPC by content type: a JSON POST to a gRPC path is REST's (no such route).
    let json = http()
        .post(server.url("/candidates.v1.CandidateService/GetCandidate"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_ne!(json.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_sets_the_port_in_single_port_mode_only() {
    let port = port_or_free(0);
    let server = TestServer::spawn_with_env(&["--single-port"], &[("PORT", &port.to_string())]);
    assert_eq!(server.http.port(), port);
    assert_eq!(server.grpc, server.http);
    let status = http().get(server.url("/gtg")).send().await.unwrap().status();
    assert_eq!(status, 200);
    drop(server);

    let port = port_or_free(0);
    let server = TestServer::spawn_with_env(&[], &[("PORT", &port.to_string())]);
    assert_ne!(server.http.port(), port, "PORT is ignored without --single-port");
    assert_ne!(server.grpc, server.http);
    drop(server);

    // A stray PORT that is not a port stops nothing but single-port mode, which says why.
    drop(TestServer::spawn_with_env(&[], &[("PORT", "not-a-port")]));
    let dir = tempfile::tempdir().unwrap();
    let out = common::server_command(dir.path(), &["--single-port"]).env("PORT", "not-a-port").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--port (PORT) must be a port number"), "{out:?}");
}
