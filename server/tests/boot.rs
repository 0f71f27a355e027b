//! Boot resilience: a cloud store that cannot be opened at start (the emulator not up
//! yet, a table not created yet) no longer kills the process. The listeners serve at once, `/gtg`
//! is 503 and says why, and the same process becomes ready as soon as the store opens; after
//! `--store-open-timeout` it exits with 2 so that the group replaces the instance.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, cosmos, dynamo, firestore, http};
use serde_json::Value;

/// `/gtg` is 503, `/gtg?details` says why (containing `reason`), health is NOT_SERVING, and a
/// request is 503 with the same reason.
async fn not_ready_because(server: &TestServer, reason: &str) {
    let c = http();
    assert_eq!(c.get(server.url("/gtg")).send().await.unwrap().status(), 503);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let resp = c.get(server.url("/gtg?details")).send().await.unwrap();
        assert_eq!(resp.status(), 503);
        let details: Value = resp.json().await.unwrap();
        assert_eq!(details["connected"], "false");
        let got = details["reason"].as_str().unwrap_or_default().to_owned();
        if got.contains(reason) {
            break;
        }
        assert!(Instant::now() < deadline, "reason {got:?} never became {reason:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let resp = c.get(server.url("/candidate/x")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("not open yet"), "{body}");
    let channel = server.grpc_channel().await;
    let health = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(health, 2, "NOT_SERVING");
}

/// Polls `/gtg` until 200 (the backoff doubles up to 30 s, jittered: well within 60 s).
async fn becomes_ready(server: &TestServer) -> Duration {
    let started = Instant::now();
    while http().get(server.url("/gtg")).send().await.unwrap().status() != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not ready {:?} after the store came up",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(http().get(server.url("/gtg?details")).send().await.unwrap().status(), 200);
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_down_then_without_its_table_then_ready_in_the_same_process() {
    if common::skip_without(&["CANDIDATES_TEST_MOTO_URL", "CANDIDATES_TEST_MOTO_BIN"]) {
        return;
    }
    let port = common::port_or_free(0);
    let endpoint = format!("http://127.0.0.1:{port}");
    let server = TestServer::spawn(&["--store", "dynamodb", "--dynamodb-endpoint", &endpoint, "--status-cache", "0s"]);
    not_ready_because(&server, "DynamoDB cannot be reached").await;
    // The network is there, the table not yet (Terraform creates it in the same apply).
    let moto = dynamo::PrivateMoto::start(port);
    not_ready_because(&server, "the table does not exist yet").await;
    dynamo::create_table(&moto.url(), "Candidates").await;
    let took = becomes_ready(&server).await;
    println!("ready {took:?} after the table was created");
    assert_eq!(http().post(server.url("/candidate/after")).send().await.unwrap().status(), 200);
    let logs = server.log_lines();
    let warned = |what: &str| logs.iter().filter(|l| l.contains(what)).count();
    assert_eq!(warned("a new reason"), 1, "each distinct failure logged once: {logs:#?}");
    assert_eq!(warned("store open: ready"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosmos_down_then_ready_in_the_same_process() {
    if common::skip_without(&["CANDIDATES_TEST_COSMOS_KEY", "CANDIDATES_TEST_COSMOS_DIR", "CANDIDATES_TEST_COSMOS_TLS"])
    {
        return;
    }
    let port = common::port_or_free(0);
    let endpoint = format!("https://127.0.0.1:{port}/");
    let key = cosmos::key();
    let server = TestServer::spawn_with_env(
        &["--store", "cosmos", "--cosmos-endpoint", &endpoint, "--status-cache", "0s"],
        &[("CANDIDATES_COSMOS_KEY", &key)],
    );
    not_ready_because(&server, "Cosmos DB cannot be reached").await;
    let emulator = cosmos::PrivateCosmos::start(port);
    cosmos::create_container(&emulator.endpoint(), "CandidateDatabase", "Candidates").await;
    becomes_ready(&server).await;
    assert_eq!(http().post(server.url("/candidate/after")).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firestore_down_then_ready_in_the_same_process() {
    if common::skip_without(&["FIRESTORE_EMULATOR_HOST", "CANDIDATES_TEST_FIRESTORE_JAR"]) {
        return;
    }
    let port = common::port_or_free(0);
    let host = format!("127.0.0.1:{port}");
    let project = firestore::unique_project();
    let server = TestServer::spawn_with_env(
        &["--store", "firestore", "--firestore-project", &project, "--status-cache", "0s"],
        &[("FIRESTORE_EMULATOR_HOST", &host)],
    );
    not_ready_because(&server, "Firestore").await;
    let _emulator = firestore::PrivateEmulator::start(port);
    becomes_ready(&server).await;
    assert_eq!(http().post(server.url("/candidate/after")).send().await.unwrap().status(), 200);
}

/// After `--store-open-timeout` the process gives up with exit code 2 and says why.
#[test]
fn a_store_that_never_opens_exits_2_after_the_limit() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = common::server_command(
        dir.path(),
        &["--store", "dynamodb", "--dynamodb-endpoint", &format!("http://{closed}"), "--store-open-timeout", "3s"],
    )
    .output()
    .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("\"listening\""), "it served while it waited: {text}");
    assert!(text.contains("did not open within 3s") && text.contains("cannot reach DynamoDB"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
}
