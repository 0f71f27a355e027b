//! The DynamoDB store through the real aws-sdk-dynamodb against two real emulators: moto_server and
//! AWS's own DynamoDB Local (both started by scripts/test.sh on 127.0.0.1).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::{Client, types::AttributeValue};
use candidates_server::{
    name::CandidateName,
    store::{CandidateStore, conformance},
};
use common::{TestServer, dynamo, http};

conformance_suite!(moto, requires: ["CANDIDATES_TEST_MOTO_URL", "CANDIDATES_TEST_MOTO_BIN", "CANDIDATES_TEST_DYNAMODB_LOCAL_URL"], Box::new(dynamo::fresh_store(&dynamo::moto()).await));
conformance_suite!(dynamodb_local, requires: ["CANDIDATES_TEST_MOTO_URL", "CANDIDATES_TEST_MOTO_BIN", "CANDIDATES_TEST_DYNAMODB_LOCAL_URL"], Box::new(dynamo::fresh_store(&dynamo::dynamodb_local()).await));

fn name(s: &str) -> CandidateName {
    CandidateName::parse(s).unwrap()
}

/// More than 1 MB of items: a Scan page stops at 1 MB of data read, and listing must go on past
/// it. Names alone cannot fill 1 MB in a page of 1000 (255 characters are at most 1 KB), but rows
/// that other programs wrote with more attributes can: 300 rows with 10 KB each.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listing_goes_past_one_megabyte_scan_pages() {
    if common::skip_without(&[
        "CANDIDATES_TEST_MOTO_URL",
        "CANDIDATES_TEST_MOTO_BIN",
        "CANDIDATES_TEST_DYNAMODB_LOCAL_URL",
    ]) {
        return;
    }
    for endpoint in [dynamo::dynamodb_local(), dynamo::moto()] {
        let table = dynamo::unique_table();
        dynamo::create_table(&endpoint, &table).await;
        let raw = Client::new(&dynamo::sdk_config(&endpoint).await);
        let padding = "x".repeat(10_000);
        futures::future::join_all((0..300).map(|i| {
            let (raw, table, padding) = (&raw, &table, &padding);
            async move {
                raw.put_item()
                    .table_name(table)
                    .item("CandidateName", AttributeValue::S(format!("big-{i:03}")))
                    .item("Notes", AttributeValue::S(padding.clone()))
                    .send()
                    .await
                    .unwrap();
            }
        }))
        .await;
        let store = candidates_server::store::dynamodb::DynamoStore::from_sdk_config(
            &dynamo::sdk_config(&endpoint).await,
            &table,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        let all = conformance::list_all(&store, 1000).await;
        assert_eq!(all.len(), 300, "{endpoint}: listing stopped early");
        let first = store.list(1000, None).await.unwrap();
        if endpoint == dynamo::dynamodb_local() {
            assert!(
                first.candidates.len() < 300,
                "DynamoDB Local caps a Scan page at 1 MB: {}",
                first.candidates.len()
            );
            assert!(first.next_page_token.is_some());
        }
    }
}

/// Items written the way the original Flask app wrote them read back unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_written_by_the_original_app_read_back() {
    if common::skip_without(&[
        "CANDIDATES_TEST_MOTO_URL",
        "CANDIDATES_TEST_MOTO_BIN",
        "CANDIDATES_TEST_DYNAMODB_LOCAL_URL",
    ]) {
        return;
    }
    for endpoint in [dynamo::moto(), dynamo::dynamodb_local()] {
        let table = dynamo::unique_table();
        dynamo::create_table(&endpoint, &table).await;
        let raw = Client::new(&dynamo::sdk_config(&endpoint).await);
        raw.put_item()
            .table_name(&table)
            .item("CandidateName", AttributeValue::S("Flask Made".into()))
            .send()
            .await
            .unwrap();
        let store = candidates_server::store::dynamodb::DynamoStore::from_sdk_config(
            &dynamo::sdk_config(&endpoint).await,
            &table,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(store.get(&name("Flask Made")).await.unwrap().name, "Flask Made");
        // And what we write is what the original app would have written.
        store.put(&name("Rust Made")).await.unwrap();
        let item = raw
            .get_item()
            .table_name(&table)
            .key("CandidateName", AttributeValue::S("Rust Made".into()))
            .send()
            .await
            .unwrap()
            .item
            .unwrap();
        assert_eq!(item.len(), 1);
        assert_eq!(item["CandidateName"], AttributeValue::S("Rust Made".into()));
    }
}

fn dynamo_args<'a>(endpoint: &'a str, table: &'a str) -> Vec<&'a str> {
    vec!["--store", "dynamodb", "--dynamodb-endpoint", endpoint, "--dynamodb-table", table]
}

/// The same, for a process expected to exit: a store that may still appear (no table yet, no
/// network yet) is waited for only a second (boot resilience: tests/boot.rs).
fn dynamo_args_no_wait<'a>(endpoint: &'a str, table: &'a str) -> Vec<&'a str> {
    [dynamo_args(endpoint, table), vec!["--store-open-timeout", "1s"]].concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_and_grpc_on_dynamodb() {
    if common::skip_without(&[
        "CANDIDATES_TEST_MOTO_URL",
        "CANDIDATES_TEST_MOTO_BIN",
        "CANDIDATES_TEST_DYNAMODB_LOCAL_URL",
    ]) {
        return;
    }
    let endpoint = dynamo::dynamodb_local();
    let table = dynamo::unique_table();
    dynamo::create_table(&endpoint, &table).await;
    let server = TestServer::spawn(&dynamo_args(&endpoint, &table));
    let c = http();
    assert_eq!(c.get(server.url("/candidates")).send().await.unwrap().status(), 404);
    let resp = c.post(server.url("/candidate/John%20Smith")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), r#"{"CandidateName":"John Smith"}"#);
    let resp = c.get(server.url("/candidates")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), r#"[{"CandidateName":"John Smith"}]"#);
    let details: serde_json::Value = c.get(server.url("/gtg?details")).send().await.unwrap().json().await.unwrap();
    assert_eq!(details["connected"], "true");
    let mut grpc = server.grpc_client().await;
    let err =
        grpc.delete_candidate(candidates_api::v1::DeleteCandidateRequest { name: "nobody".into() }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
}

fn run_to_exit(args: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = common::server_command(dir.path(), args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    (out.status.code().unwrap(), text)
}

#[test]
fn missing_table_or_wrong_key_is_a_startup_error() {
    if common::skip_without(&[
        "CANDIDATES_TEST_MOTO_URL",
        "CANDIDATES_TEST_MOTO_BIN",
        "CANDIDATES_TEST_DYNAMODB_LOCAL_URL",
    ]) {
        return;
    }
    let endpoint = dynamo::moto();
    let table = dynamo::unique_table();
    let (code, text) = run_to_exit(&dynamo_args_no_wait(&endpoint, &table));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains(&table) && text.contains("does not exist"), "{text}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(dynamo::create_table_with_key(&endpoint, &table, "id"));
    let (code, text) = run_to_exit(&dynamo_args_no_wait(&endpoint, &table));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("expected partition key CandidateName"), "{text}");

    // Nothing listening: a clear message, not a hang.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (code, text) = run_to_exit(&dynamo_args_no_wait(&format!("http://{closed}"), "Candidates"));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("cannot reach DynamoDB"), "{text}");

    // `AWS_REGION=` (empty): say so, not "cannot reach DynamoDB" (the probe's finding).
    let dir = tempfile::tempdir().unwrap();
    let out = common::server_command(dir.path(), &dynamo_args(&endpoint, "Candidates"))
        .env("AWS_REGION", "")
        .env_remove("AWS_DEFAULT_REGION")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("no AWS region for DynamoDB (unset or empty)"), "{text}");
    let (code, text) = run_to_exit(&[&dynamo_args(&endpoint, "Candidates")[..], &["--dynamodb-region", ""]].concat());
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("no AWS region"), "{text}");
}

/// The emulator goes away mid-run: 503 / UNAVAILABLE with a clear message, no panic; it comes
/// back: requests succeed again without restarting the service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_outage_is_unavailable_then_recovers() {
    if common::skip_without(&[
        "CANDIDATES_TEST_MOTO_URL",
        "CANDIDATES_TEST_MOTO_BIN",
        "CANDIDATES_TEST_DYNAMODB_LOCAL_URL",
    ]) {
        return;
    }
    let mut moto = dynamo::PrivateMoto::start(0);
    let table = "Candidates";
    dynamo::create_table(&moto.url(), table).await;
    let server =
        TestServer::spawn(&["--store", "dynamodb", "--dynamodb-endpoint", &moto.url(), "--status-cache", "0s"]);
    let c = http();
    assert_eq!(c.post(server.url("/candidate/before")).send().await.unwrap().status(), 200);

    moto.kill();
    let resp = c.get(server.url("/candidate/before")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], 14);
    assert_eq!(body["message"], "the store is unavailable: cannot reach DynamoDB");
    let resp = c.post(server.url("/candidate/during")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().starts_with("Unable to update"), "{body}");
    let mut grpc = server.grpc_client().await;
    let err = grpc.get_candidate(candidates_api::v1::GetCandidateRequest { name: "before".into() }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
    let details = c.get(server.url("/gtg?details")).send().await.unwrap();
    assert_eq!(details.status(), 503);

    // Back on the same port (moto keeps nothing in memory across a restart: recreate the table).
    let moto = dynamo::PrivateMoto::start(moto.port);
    dynamo::create_table(&moto.url(), table).await;
    assert_eq!(c.post(server.url("/candidate/after")).send().await.unwrap().status(), 200);
    assert_eq!(c.get(server.url("/candidate/after")).send().await.unwrap().status(), 200);
    assert_eq!(c.get(server.url("/gtg?details")).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_store_fails_requests_fast_and_recovers_without_a_restart() {
    if common::skip_without(&[
        "CANDIDATES_TEST_MOTO_URL",
        "CANDIDATES_TEST_MOTO_BIN",
        "CANDIDATES_TEST_DYNAMODB_LOCAL_URL",
    ]) {
        return;
    }
    let moto = dynamo::PrivateMoto::start(0);
    dynamo::create_table(&moto.url(), "Candidates").await;
    let server = TestServer::spawn(&[
        "--store",
        "dynamodb",
        "--dynamodb-endpoint",
        &moto.url(),
        "--store-timeout",
        "1s",
        "--status-cache",
        "0s",
    ]);
    let c = http();
    assert_eq!(c.post(server.url("/candidate/before")).send().await.unwrap().status(), 200);

    // Stopped, not gone: connections are accepted and never answered.
    moto.signal(libc::SIGSTOP);
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let c = c.clone();
            let url = server.url(if i % 2 == 0 { "/candidate/before" } else { "/candidate/during" });
            tokio::spawn(async move {
                let started = Instant::now();
                let status =
                    if url.ends_with("during") { c.post(url) } else { c.get(url) }.send().await.unwrap().status();
                (status.as_u16(), started.elapsed())
            })
        })
        .collect();
    for call in calls {
        let (status, took) = call.await.unwrap();
        assert!(status == 503 || status == 504, "{status}");
        assert!(took < Duration::from_millis(2500), "bounded by the store timeout, not the 10 s deadline: {took:?}");
    }
    // Known down: answered at once, and health says so.
    let started = Instant::now();
    let resp = c.get(server.url("/candidate/before")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert!(started.elapsed() < Duration::from_millis(300), "fails fast: {:?}", started.elapsed());
    let details = c.get(server.url("/gtg?details")).send().await.unwrap();
    assert_eq!(details.status(), 503);
    assert_eq!(c.get(server.url("/gtg")).send().await.unwrap().status(), 200, "the LB check does not depend on it");

    moto.signal(libc::SIGCONT);
    let resumed = Instant::now();
    loop {
        if c.get(server.url("/candidate/before")).send().await.unwrap().status() == 200 {
            break;
        }
        assert!(resumed.elapsed() < Duration::from_secs(5), "recovered within 5 s of SIGCONT");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(c.get(server.url("/gtg?details")).send().await.unwrap().status(), 200);
    println!("recovered {:?} after SIGCONT", resumed.elapsed());
}
