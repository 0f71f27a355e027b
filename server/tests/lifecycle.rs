//! Process lifecycle against the real binary: drain on SIGTERM, a second signal, startup errors
//! (exit code 2), the instance id from each cloud's (fake) metadata service.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use common::{TestServer, fake_metadata, http, server_command};
use serde_json::Value;

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn sigterm_drains_then_exits_zero() {
    drains_then_exits_zero(&[]).await;
}

/// One worker is tokio's current-thread scheduler (server/src/runtime.rs): the same lifecycle, the
/// embedded store's blocking calls and the delayed write included, on the one thread.
#[tokio::test]
async fn one_worker_thread_drains_then_exits_zero() {
    drains_then_exits_zero(&["--worker-threads", "1"]).await;
}

async fn drains_then_exits_zero(extra: &[&str]) {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    let mut args = vec!["--debug-store-delay", "1s", "--drain-period", "500ms"];
    args.extend_from_slice(extra);
    let mut server = TestServer::spawn(&args);
    let mut health = HealthClient::new(server.grpc_channel().await);
    let c = http();

    // A request that is in flight when the signal arrives and still running when draining ends.
    let in_flight = tokio::spawn(c.post(server.url("/candidate/in-flight")).send());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let signalled = Instant::now();
    server.signal(libc::SIGTERM);

    // /gtg fails at once, and gRPC health agrees.
    wait_until("/gtg 503", Duration::from_millis(300), || async {
        c.get(server.url("/gtg")).send().await.map(|r| r.status() == 503).unwrap_or(false)
    })
    .await;
    let status = health.check(HealthCheckRequest { service: candidates_api::SERVICE_NAME.into() }).await.unwrap();
    assert_eq!(status.into_inner().status(), ServingStatus::NotServing);
    let status = health.check(HealthCheckRequest { service: String::new() }).await.unwrap();
    assert_eq!(status.into_inner().status(), ServingStatus::NotServing);

    // Requests are still served while draining (200 or 404, depending on whether the in-flight
    // write landed first; never refused or 503).
    let resp = c.get(server.url("/candidate/in-flight")).send().await.unwrap();
    assert!(matches!(resp.status().as_u16(), 200 | 404), "not served during drain: {}", resp.status());

    // The in-flight request completes.
    let resp = in_flight.await.unwrap().expect("in-flight request completed");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), r#"{"CandidateName":"in-flight"}"#);

    let status = tokio::task::spawn_blocking(move || server.wait_exit(Duration::from_secs(10))).await.unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(signalled.elapsed() >= Duration::from_millis(500), "exited before the drain period");
}

#[tokio::test]
async fn second_signal_exits_at_once() {
    let mut server = TestServer::spawn(&["--drain-period", "60s"]);
    server.signal(libc::SIGTERM);
    let c = http();
    wait_until("/gtg 503", Duration::from_secs(2), || async {
        c.get(server.url("/gtg")).send().await.map(|r| r.status() == 503).unwrap_or(false)
    })
    .await;
    // A second signal right after the first is taken for a duplicate (see the next test).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    server.signal(libc::SIGINT);
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || server.wait_exit(Duration::from_secs(5))).await.unwrap();
    assert!(!status.success());
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn two_sigterms_at_once_still_drain_but_ctrl_c_twice_exits() {
    // `timeout` and process-group signals deliver SIGTERM twice within moments. The second one
    // is sent once the first has visibly started the drain (two signals sent back to back would
    // be coalesced into one by the signal handler, and test nothing).
    let mut server = TestServer::spawn(&["--drain-period", "1500ms"]);
    let c = http();
    let signalled = Instant::now();
    server.signal(libc::SIGTERM);
    wait_until("/gtg 503", Duration::from_millis(800), || async {
        c.get(server.url("/gtg")).send().await.map(|r| r.status() == 503).unwrap_or(false)
    })
    .await;
    server.signal(libc::SIGTERM);
    assert!(signalled.elapsed() < Duration::from_secs(1), "the second signal came within the repeat window");
    let status = tokio::task::spawn_blocking(move || server.wait_exit(Duration::from_secs(10))).await.unwrap();
    assert!(status.success(), "drained and exited 0, not cut short: {status}");
    assert!(signalled.elapsed() >= Duration::from_millis(1400), "the drain ran: {:?}", signalled.elapsed());

    let mut server = TestServer::spawn(&["--drain-period", "60s"]);
    server.signal(libc::SIGINT);
    wait_until("/gtg 503", Duration::from_millis(800), || async {
        c.get(server.url("/gtg")).send().await.map(|r| r.status() == 503).unwrap_or(false)
    })
    .await;
    let started = Instant::now();
    server.signal(libc::SIGINT);
    let status = tokio::task::spawn_blocking(move || server.wait_exit(Duration::from_secs(5))).await.unwrap();
    assert!(!status.success());
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// Runs the binary with `args`, expecting it to exit by itself; returns (code, stderr+stdout).
fn run_to_exit(data_dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let output = server_command(data_dir, args).stdout(Stdio::piped()).output().expect("run");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stderr), String::from_utf8_lossy(&output.stdout));
    (output.status.code().expect("exited normally"), text)
}

#[test]
fn startup_errors_exit_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();

    let (code, text) = run_to_exit(dir.path(), &["--store", "mongo"]);
    assert_eq!(code, 2);
    assert!(text.contains("mongo") && text.contains("embedded"), "{text}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let (code, text) = run_to_exit(dir.path(), &["--http-addr", &port]);
    assert_eq!(code, 2);
    assert!(text.contains("cannot listen for REST") && text.contains(&port), "{text}");

    // A data directory that cannot be created (its parent is a file).
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let bad = file.join("data");
    let (code, text) = run_to_exit(&bad, &[]);
    assert_eq!(code, 2);
    assert!(text.contains("cannot create data directory"), "{text}");

    let (code, text) = run_to_exit(dir.path(), &["--http-addr", "127.0.0.1:7001", "--grpc-addr", "127.0.0.1:7001"]);
    assert_eq!(code, 2);
    assert!(text.contains("must differ"), "{text}");

    let (code, text) = run_to_exit(dir.path(), &["--drain-period", "forever"]);
    assert_eq!(code, 2);
    assert!(text.contains("--drain-period"), "{text}");
}

#[test]
fn second_server_on_the_same_data_dir_is_refused() {
    let first = TestServer::spawn(&[]);
    let (code, text) = run_to_exit(&first.data_dir, &[]);
    assert_eq!(code, 2);
    assert!(text.contains("already open"), "{text}");
}

async fn instance_id_of(server: &TestServer) -> String {
    let body: Value = http().get(server.url("/gtg?details")).send().await.unwrap().json().await.unwrap();
    body["instance-id"].as_str().unwrap().to_owned()
}

// Multi-threaded: the fake metadata servers must answer while `TestServer::spawn` blocks this
// thread waiting for the server to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_id_from_each_cloud_metadata_service() {
    use fake_metadata::Cloud;
    for (cloud, flag, id) in [
        (Cloud::Aws, "aws", "i-0123456789abcdef0"),
        (Cloud::Azure, "azure", "02aab8a4-74ef-476e-8182-f6d2ba4166a6"),
        (Cloud::Gcp, "gcp", "4520031799277581759"),
    ] {
        let base = fake_metadata::start(cloud, id).await;
        let server = TestServer::spawn(&["--instance-metadata", flag, "--metadata-url", &base]);
        assert_eq!(instance_id_of(&server).await, id, "{flag}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_metadata_falls_back_to_the_host_name_quickly() {
    // A port nothing listens on: connection refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let started = Instant::now();
    let server = TestServer::spawn(&[
        "--instance-metadata",
        "aws",
        "--metadata-url",
        &format!("http://{closed}"),
        "--metadata-timeout",
        "300ms",
    ]);
    assert!(started.elapsed() < Duration::from_secs(5));
    let host = common::host_name();
    assert_eq!(instance_id_of(&server).await, host);
    // A metadata service that answers without the IMDSv2 token dance is not trusted either.
    let gcp_only = fake_metadata::start(fake_metadata::Cloud::Gcp, "gcp-id").await;
    let server = TestServer::spawn(&["--instance-metadata", "aws", "--metadata-url", &gcp_only]);
    assert_eq!(instance_id_of(&server).await, host);
}

/// A SIGTERM the moment the server says it is listening drains and exits 0: the handlers are in
/// place before the listeners announce themselves (a scale-in right after start must not kill it).
#[test]
fn sigterm_right_after_start_still_drains() {
    for _ in 0..5 {
        let mut server = TestServer::spawn(&["--drain-period", "0s"]);
        server.signal(libc::SIGTERM);
        let status = server.wait_exit(Duration::from_secs(10));
        assert_eq!(status.code(), Some(0), "killed by the signal instead of draining: {status}");
    }
}
