//! The Firestore store through the real `firestore` crate against Google's Cloud Firestore
//! emulator (started by scripts/test.sh on 127.0.0.1; FIRESTORE_EMULATOR_HOST is set, so no
//! credentials are looked up and nothing reaches Google).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use candidates_server::{name::CandidateName, store::CandidateStore};
use common::{TestServer, firestore as fs, http};
use serde_json::{Value, json};

conformance_suite!(emulator, requires: ["FIRESTORE_EMULATOR_HOST", "CANDIDATES_TEST_FIRESTORE_JAR"], Box::new(fs::fresh_store().await));

/// Documents written the way the original Python app wrote them (`set({"CandidateName": name})`
/// with the name as id) read back; what we write is exactly such a document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_of_the_original_app_read_back() {
    if common::skip_without(&["FIRESTORE_EMULATOR_HOST", "CANDIDATES_TEST_FIRESTORE_JAR"]) {
        return;
    }
    let host = fs::emulator_host();
    let project = fs::unique_project();
    let c = http();
    let resp = c
        .patch(fs::document_url(&host, &project, "Flask Made"))
        .header("Authorization", "Bearer owner")
        .json(&json!({"fields": {"CandidateName": {"stringValue": "Flask Made"}}}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());

    let store = candidates_server::store::firestore::FirestoreStore::connect(
        &fs::config(&project),
        std::time::Duration::from_secs(10),
    )
    .await
    .unwrap();
    let name = |s: &str| CandidateName::parse(s).unwrap();
    assert_eq!(store.get(&name("Flask Made")).await.unwrap().name, "Flask Made");
    assert_eq!(store.list(10, None).await.unwrap().candidates[0].name, "Flask Made");

    store.put(&name("Rust Made")).await.unwrap();
    let doc: Value = c
        .get(fs::document_url(&host, &project, "Rust Made"))
        .header("Authorization", "Bearer owner")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["fields"], json!({"CandidateName": {"stringValue": "Rust Made"}}), "{doc}");
    assert!(doc["name"].as_str().unwrap().ends_with("/documents/candidates/Rust Made"), "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_and_grpc_on_firestore() {
    if common::skip_without(&["FIRESTORE_EMULATOR_HOST", "CANDIDATES_TEST_FIRESTORE_JAR"]) {
        return;
    }
    fs::emulator_host();
    let project = fs::unique_project();
    let server = TestServer::spawn(&["--store", "firestore", "--firestore-project", &project]);
    let c = http();
    assert_eq!(c.get(server.url("/candidates")).send().await.unwrap().status(), 404);
    let resp = c.post(server.url("/candidate/John%20Smith")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), r#"{"CandidateName":"John Smith"}"#);
    let resp = c.get(server.url("/candidates")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), r#"[{"CandidateName":"John Smith"}]"#);
    let details: Value = c.get(server.url("/gtg?details")).send().await.unwrap().json().await.unwrap();
    assert_eq!(details["connected"], "true");
    let mut grpc = server.grpc_client().await;
    let err =
        grpc.delete_candidate(candidates_api::v1::DeleteCandidateRequest { name: "nobody".into() }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
}

/// The emulator goes away mid-run: 503 / UNAVAILABLE with a clear message, no panic; it comes
/// back on the same port: requests succeed again without restarting the service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_outage_is_unavailable_then_recovers() {
    if common::skip_without(&["FIRESTORE_EMULATOR_HOST", "CANDIDATES_TEST_FIRESTORE_JAR"]) {
        return;
    }
    let mut emulator = fs::PrivateEmulator::start(0);
    let project = fs::unique_project();
    let mut cmd_args = vec!["--store", "firestore", "--firestore-project", &project, "--status-cache", "0s"];
    cmd_args.extend(["--request-timeout", "5s"]);
    let server = TestServer::spawn_with_env(&cmd_args, &[("FIRESTORE_EMULATOR_HOST", &emulator.host())]);
    let c = http();
    assert_eq!(c.post(server.url("/candidate/before")).send().await.unwrap().status(), 200);

    emulator.kill();
    let resp = c.get(server.url("/candidate/before")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], 14);
    assert_eq!(body["message"], "the store is unavailable: cannot reach Firestore", "{body}");
    let resp = c.post(server.url("/candidate/during")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let mut grpc = server.grpc_client().await;
    let err = grpc.get_candidate(candidates_api::v1::GetCandidateRequest { name: "before".into() }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
    assert_eq!(c.get(server.url("/gtg?details")).send().await.unwrap().status(), 503);

    let _emulator = fs::PrivateEmulator::start(emulator.port);
    // The restarted emulator (a JVM) answers its first calls slowly, and each store attempt has
    // a third of --store-timeout: a client retries (as it would against any instance) until the
    // store is back, within seconds, without a restart of the server.
    let restarted = std::time::Instant::now();
    loop {
        let status = c.post(server.url("/candidate/after")).send().await.unwrap().status();
        if status == 200 {
            break;
        }
        assert!(status == 503 || status == 504, "{status}");
        assert!(restarted.elapsed() < std::time::Duration::from_secs(15), "recovered after the restart");
    }
    println!("writes work again {:?} after the emulator restarted", restarted.elapsed());
    assert_eq!(c.get(server.url("/candidate/after")).send().await.unwrap().status(), 200);
    assert_eq!(c.get(server.url("/gtg?details")).send().await.unwrap().status(), 200);
}
