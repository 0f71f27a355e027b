//! The Cosmos DB store through the real azure_data_cosmos SDK against @vercel/cosmosdb-server
//! (patched; over TLS with a certificate the test setup made; started by scripts/test.sh).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::atomic::Ordering;

use candidates_server::{name::CandidateName, store::CandidateStore};
use common::{TestServer, cosmos, http};
use serde_json::Value;

conformance_suite!(emulator, requires: ["CANDIDATES_TEST_COSMOS_ENDPOINT", "CANDIDATES_TEST_COSMOS_KEY", "CANDIDATES_TEST_COSMOS_DIR"], Box::new(cosmos::fresh_store().await));

/// The server's flags for a Cosmos DB store at `endpoint`, in `database` / `container`.
fn cosmos_args<'a>(endpoint: &'a str, database: &'a str, container: &'a str) -> Vec<&'a str> {
    vec![
        "--store",
        "cosmos",
        "--cosmos-endpoint",
        endpoint,
        "--cosmos-database",
        database,
        "--cosmos-container",
        container,
    ]
}

fn name(s: &str) -> CandidateName {
    CandidateName::parse(s).unwrap()
}

/// Documents as the original app wrote them (`upsert_item({"id": name, "CandidateName": name})`)
/// read back, and system fields never reach a response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_of_the_original_app_read_back() {
    if common::skip_without(&[
        "CANDIDATES_TEST_COSMOS_ENDPOINT",
        "CANDIDATES_TEST_COSMOS_KEY",
        "CANDIDATES_TEST_COSMOS_DIR",
    ]) {
        return;
    }
    use azure_core::credentials::Secret;
    use azure_data_cosmos::{
        AccountReference, CosmosClientBuilder,
        options::{Region, RoutingStrategy},
    };
    let (database, container) = (cosmos::unique("db"), cosmos::unique("c"));
    cosmos::create_container(&cosmos::endpoint(), &database, &container).await;
    let account =
        AccountReference::with_authentication_key(cosmos::endpoint().parse().unwrap(), Secret::from(cosmos::key()));
    let raw = CosmosClientBuilder::new().build(account, RoutingStrategy::ProximityTo(Region::EAST_US)).await.unwrap();
    let raw = raw.database_client(database.as_str()).container_client(container.as_str(), None).await.unwrap();
    let doc = serde_json::json!({"id": "Flask Made", "CandidateName": "Flask Made"});
    raw.upsert_item("Flask Made".to_string(), "Flask Made", doc, None).await.unwrap();

    let store = candidates_server::store::cosmos::CosmosStore::connect(&cosmos::config(
        &cosmos::endpoint(),
        &database,
        &container,
    ))
    .await
    .unwrap();
    assert_eq!(store.get(&name("Flask Made")).await.unwrap().name, "Flask Made");
    let page = store.list(10, None).await.unwrap();
    assert_eq!(page.candidates.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["Flask Made"]);

    store.put(&name("Rust Made")).await.unwrap();
    let stored: Value = raw.read_item("Rust Made".to_string(), "Rust Made", None).await.unwrap().into_model().unwrap();
    assert_eq!(stored["id"], "Rust Made");
    assert_eq!(stored["CandidateName"], "Rust Made");
    let own: Vec<&String> = stored.as_object().unwrap().keys().filter(|k| !k.starts_with('_')).collect();
    assert_eq!(own.len(), 2, "only id and CandidateName besides system fields: {stored}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_and_grpc_on_cosmos_with_a_key_file() {
    if common::skip_without(&[
        "CANDIDATES_TEST_COSMOS_ENDPOINT",
        "CANDIDATES_TEST_COSMOS_KEY",
        "CANDIDATES_TEST_COSMOS_DIR",
    ]) {
        return;
    }
    let (database, container) = (cosmos::unique("db"), cosmos::unique("c"));
    cosmos::create_container(&cosmos::endpoint(), &database, &container).await;
    let key_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key_file.path(), format!("{}\n", cosmos::key())).unwrap();
    let endpoint = cosmos::endpoint();
    let args =
        [&cosmos_args(&endpoint, &database, &container)[..], &["--cosmos-key-file", key_file.path().to_str().unwrap()]]
            .concat();
    let server = TestServer::spawn(&args);
    let c = http();
    assert_eq!(c.get(server.url("/candidates")).send().await.unwrap().status(), 404);
    let resp = c.post(server.url("/candidate/John%20Smith")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), r#"{"CandidateName":"John Smith"}"#);
    let resp = c.get(server.url("/candidate/John%20Smith")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), r#"{"CandidateName":"John Smith"}"#, "no system fields");
    let resp = c.get(server.url("/candidates")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), r#"[{"CandidateName":"John Smith"}]"#);
    let details: Value = c.get(server.url("/gtg?details")).send().await.unwrap().json().await.unwrap();
    assert_eq!(details["connected"], "true");
    let mut grpc = server.grpc_client().await;
    let err =
        grpc.delete_candidate(candidates_api::v1::DeleteCandidateRequest { name: "nobody".into() }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    // The key never reaches the logs.
    assert!(!server.log_lines().iter().any(|l| l.contains(&cosmos::key())), "the account key was logged");
}

#[test]
fn missing_container_is_a_startup_error() {
    if common::skip_without(&[
        "CANDIDATES_TEST_COSMOS_ENDPOINT",
        "CANDIDATES_TEST_COSMOS_KEY",
        "CANDIDATES_TEST_COSMOS_DIR",
    ]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let endpoint = cosmos::endpoint();
    let out = common::server_command(
        dir.path(),
        &[
            "--store",
            "cosmos",
            "--cosmos-endpoint",
            &endpoint,
            "--cosmos-container",
            "nope",
            "--store-open-timeout",
            "1s",
        ],
    )
    .env("CANDIDATES_COSMOS_KEY", cosmos::key())
    .output()
    .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("\"nope\"") && text.contains("not found"), "{text}");
    assert!(!text.contains(&cosmos::key()), "the key was printed");
}

/// Entra ID through the managed identity credential: constructed from the environment, fetching
/// its token from a local fake endpoint (never the real IMDS), and used for every request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_identity_token_is_fetched_and_used() {
    if common::skip_without(&[
        "CANDIDATES_TEST_COSMOS_ENDPOINT",
        "CANDIDATES_TEST_COSMOS_KEY",
        "CANDIDATES_TEST_COSMOS_DIR",
    ]) {
        return;
    }
    let (database, container) = (cosmos::unique("db"), cosmos::unique("c"));
    cosmos::create_container(&cosmos::endpoint(), &database, &container).await;
    let (token_url, calls, queries) = cosmos::fake_token_endpoint("x-id-secret").await;
    let endpoint = cosmos::endpoint();
    // The deployment's user-assigned identity (terraform/azure): named, not guessed.
    let identity = ["--cosmos-identity-client-id", "11111111-2222-3333-4444-555555555555"];
    let args = [&cosmos_args(&endpoint, &database, &container)[..], &identity].concat();
    let server =
        TestServer::spawn_with_env(&args, &[("IDENTITY_ENDPOINT", &token_url), ("IDENTITY_HEADER", "x-id-secret")]);
    let resp = http().post(server.url("/candidate/Entra%20User")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(calls.load(Ordering::SeqCst) >= 1, "the credential never asked the token endpoint");
    let queries = queries.lock().unwrap().clone();
    assert!(
        queries.iter().all(|q| q.contains("client_id=11111111-2222-3333-4444-555555555555")),
        "every token request names the user-assigned identity: {queries:?}"
    );
}

/// The emulator goes away mid-run: 503 / UNAVAILABLE with a clear message, no panic; it comes
/// back on the same port: requests succeed again without restarting the service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_outage_is_unavailable_then_recovers() {
    if common::skip_without(&[
        "CANDIDATES_TEST_COSMOS_ENDPOINT",
        "CANDIDATES_TEST_COSMOS_KEY",
        "CANDIDATES_TEST_COSMOS_DIR",
    ]) {
        return;
    }
    let mut emulator = cosmos::PrivateCosmos::start(0);
    let (database, container) = ("CandidateDatabase", "Candidates");
    cosmos::create_container(&emulator.endpoint(), database, container).await;
    let endpoint = emulator.endpoint();
    let server = TestServer::spawn_with_env(
        &["--store", "cosmos", "--cosmos-endpoint", &endpoint, "--status-cache", "0s", "--request-timeout", "5s"],
        &[("CANDIDATES_COSMOS_KEY", &cosmos::key())],
    );
    let c = http();
    assert_eq!(c.post(server.url("/candidate/before")).send().await.unwrap().status(), 200);

    emulator.kill();
    let resp = c.get(server.url("/candidate/before")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], 14);
    assert_eq!(body["message"], "the store is unavailable: cannot reach Cosmos DB", "{body}");
    let mut grpc = server.grpc_client().await;
    let err = grpc.get_candidate(candidates_api::v1::GetCandidateRequest { name: "before".into() }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
    assert_eq!(c.get(server.url("/gtg?details")).send().await.unwrap().status(), 503);

    // Back on the same port; its data lived in memory, so the container is made again.
    let emulator = cosmos::PrivateCosmos::start(emulator.port);
    cosmos::create_container(&emulator.endpoint(), database, container).await;
    assert_eq!(c.post(server.url("/candidate/after")).send().await.unwrap().status(), 200);
    assert_eq!(c.get(server.url("/candidate/after")).send().await.unwrap().status(), 200);
    assert_eq!(c.get(server.url("/gtg?details")).send().await.unwrap().status(), 200);
}

/// Finding 3 of the reliability probe: page tokens in the SDK's own `c1.` format with a malformed
/// payload made Cosmos DB answer 500, counted as an outage: 5 forged tokens a second failed 70 of
/// 75 ordinary requests. Forged tokens are now 400 without reaching Cosmos DB, and never trip the
/// breaker; real tokens (one instance's, used on another with the same key) still page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_page_tokens_are_refused_and_never_trip_the_breaker() {
    use base64::Engine;
    if common::skip_without(&[
        "CANDIDATES_TEST_COSMOS_ENDPOINT",
        "CANDIDATES_TEST_COSMOS_KEY",
        "CANDIDATES_TEST_COSMOS_DIR",
    ]) {
        return;
    }
    let (database, container) = (cosmos::unique("db"), cosmos::unique("c"));
    let endpoint = cosmos::endpoint();
    cosmos::create_container(&endpoint, &database, &container).await;
    let args = cosmos_args(&endpoint, &database, &container);
    let env = [("CANDIDATES_COSMOS_KEY", cosmos::key())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (a, b) = (TestServer::spawn_with_env(&args, &env), TestServer::spawn_with_env(&args, &env));
    let c = http();
    for i in 0..5 {
        assert_eq!(c.post(a.url(&format!("/candidate/n{i}"))).send().await.unwrap().status(), 200);
    }
    // A real token from one instance pages on the other (same derived key).
    let page: Value = c.get(a.url("/candidates?page_size=2")).send().await.unwrap().json().await.unwrap();
    let token = page["next_page_token"].as_str().unwrap().to_owned();
    let resp = c.get(b.url(&format!("/candidates?page_size=2&page_token={token}"))).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let forged =
        [b64("c1.bm90IGpzb24"), b64("c1.eyJ0b2tlbnMiOlt7fV19"), b64("c1."), b64(&format!("c1.{}", "A".repeat(900)))];
    for round in 0..4 {
        for token in &forged {
            let resp = c.get(b.url(&format!("/candidates?page_size=2&page_token={token}"))).send().await.unwrap();
            assert_eq!(resp.status(), 400, "round {round}: {token}");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["code"], 3);
        }
    }
    // Far more than the breaker's five failures in a row: every ordinary request still works.
    for i in 0..5 {
        assert_eq!(c.get(b.url(&format!("/candidate/n{i}"))).send().await.unwrap().status(), 200);
    }
    assert_eq!(c.get(b.url("/gtg?details")).send().await.unwrap().status(), 200);
}
