//! Slow, hostile and unlucky clients against the real binary: each test is one finding of the
//! hardening review and failed before its fix.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use common::{BoxBody, TestServer, grpc_health as health, h2, http, stalled_body};
use http_body_util::{BodyExt, Full};
use tonic_health::pb::health_check_response::ServingStatus;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_request_bodies_neither_fail_health_checks_nor_take_the_capacity() {
    // 16 work permits: 256 bodies may be read at once, more than the 200 stalled ones below.
    let server = TestServer::spawn(&["--max-concurrency", "16", "--body-timeout", "1500ms"]);
    let mut held = Vec::new();
    let mut stalled = Vec::new();
    // 2 connections x 50 streams on each listener whose bodies never come (the review's attack).
    for _ in 0..2 {
        let mut rest = h2(server.http).await;
        let mut grpc = h2(server.grpc).await;
        for i in 0..50 {
            let (tx, body) = stalled_body();
            held.push(tx);
            let request = http::Request::post(format!("http://{}/candidate/slow{i}", server.http))
                .header("content-length", "100")
                .body(body)
                .unwrap();
            stalled.push(tokio::spawn(rest.send_request(request)));
            let (tx, body) = stalled_body();
            held.push(tx);
            let request =
                http::Request::post(format!("http://{}/candidates.v1.CandidateService/PutCandidate", server.grpc))
                    .header("content-type", "application/grpc")
                    .header("te", "trailers")
                    .body(body)
                    .unwrap();
            stalled.push(tokio::spawn(grpc.send_request(request)));
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = http();
    for _ in 0..5 {
        assert_eq!(c.get(server.url("/gtg")).send().await.unwrap().status(), 200);
        assert_eq!(c.get(server.url("/gtg?details")).send().await.unwrap().status(), 200);
        assert_eq!(health(server.grpc).await.unwrap(), ServingStatus::Serving);
    }
    // Work still gets a permit: a real answer, not 503 / RESOURCE_EXHAUSTED.
    assert_eq!(c.get(server.url("/candidate/nobody")).send().await.unwrap().status(), 404);
    let mut grpc = server.grpc_client().await;
    let err = grpc.get_candidate(candidates_api::v1::GetCandidateRequest { name: "nobody".into() }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);

    // And the stalled ones are answered when the body timeout passes: 408 on REST,
    // DEADLINE_EXCEEDED on gRPC (or, past the reading bound, at once with 503/RESOURCE_EXHAUSTED).
    let started = Instant::now();
    let mut statuses = std::collections::BTreeMap::new();
    for call in stalled {
        let response = tokio::time::timeout(Duration::from_secs(10), call).await.expect("answered").unwrap().unwrap();
        let grpc_status = response.headers().get("grpc-status").map(|v| v.to_str().unwrap().to_owned());
        *statuses.entry((response.status().as_u16(), grpc_status)).or_insert(0) += 1;
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(statuses.contains_key(&(408, None)), "{statuses:?}");
    assert!(statuses.contains_key(&(200, Some("4".to_owned()))), "DEADLINE_EXCEEDED: {statuses:?}");
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overload_sheds_requests_but_never_health_checks() {
    let server = TestServer::spawn(&["--max-concurrency", "2", "--debug-store-delay", "300ms"]);
    let c = http();
    let load: Vec<_> = (0..40)
        .map(|i| {
            let c = c.clone();
            let url = server.url(&format!("/candidate/load{i}"));
            tokio::spawn(async move { c.get(url).send().await.unwrap().status().as_u16() })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    for _ in 0..10 {
        assert_eq!(c.get(server.url("/gtg")).send().await.unwrap().status(), 200);
        assert_eq!(health(server.grpc).await.unwrap(), ServingStatus::Serving);
    }
    let mut shed = 0;
    for call in load {
        if call.await.unwrap() == 503 {
            shed += 1;
        }
    }
    assert!(shed > 0, "the limit did shed application requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_labels_come_from_closed_sets() {
    let server = TestServer::spawn(&[]);
    let c = http();
    for i in 0..40 {
        let method = reqwest::Method::from_bytes(format!("M{i}X").as_bytes()).unwrap();
        let _ = c.request(method, server.url("/candidate/x")).send().await.unwrap();
    }
    let mut grpc = h2(server.grpc).await;
    for i in 0..40 {
        let request = http::Request::post(format!("http://{}/candidates.v1.CandidateService/Made{i}Up", server.grpc))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(BoxBody::new(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])).map_err(|e| match e {})))
            .unwrap();
        let _ = grpc.send_request(request).await.unwrap().into_body().collect().await;
        let request = http::Request::post(format!("http://{}/grpc.made.up{i}/X", server.grpc))
            .header("content-type", "application/grpc")
            .body(BoxBody::new(Full::new(Bytes::new()).map_err(|e| match e {})))
            .unwrap();
        let _ = grpc.send_request(request).await.unwrap().into_body().collect().await;
    }
    let text = c.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let label = |line: &str, name: &str| -> Option<String> {
        let start = line.find(&format!("{name}=\""))? + name.len() + 2;
        Some(line[start..].split('"').next().unwrap().to_owned())
    };
    let mut methods = std::collections::BTreeSet::new();
    let mut rpcs = std::collections::BTreeSet::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if line.starts_with("http_requests_total") {
            methods.insert(label(line, "method").unwrap());
        }
        if line.starts_with("grpc_requests_total") {
            rpcs.insert(label(line, "rpc").unwrap());
        }
    }
    assert_eq!(methods.into_iter().collect::<Vec<_>>(), ["other"], "made-up methods collapse to one label");
    for rpc in &rpcs {
        assert!(
            rpc == "other" || candidates_server::metrics::known_rpcs().contains(&rpc.as_str()),
            "unbounded rpc label {rpc}"
        );
    }
    assert!(rpcs.contains("other"));
}

/// The value of an unlabelled gauge in the Prometheus text.
fn gauge(text: &str, name: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(&format!("{name} "))).and_then(|v| v.trim().parse().ok()).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_gauges_return_to_zero_when_clients_abandon_requests() {
    let server = TestServer::spawn(&["--debug-store-delay", "800ms"]);
    let impatient = reqwest::Client::builder().no_proxy().timeout(Duration::from_millis(100)).build().unwrap();
    let mut grpc = server.grpc_client().await;
    for i in 0..5 {
        assert!(impatient.get(server.url(&format!("/candidate/gone{i}"))).send().await.is_err());
        // Dropping the call's future resets the stream: the server drops the handler.
        let call = grpc.get_candidate(candidates_api::v1::GetCandidateRequest { name: format!("gone{i}") });
        assert!(tokio::time::timeout(Duration::from_millis(100), call).await.is_err());
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let text = http().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert_eq!(gauge(&text, "http_requests_in_flight"), 0.0, "{text}");
    assert_eq!(gauge(&text, "grpc_requests_in_flight"), 0.0, "{text}");
}

/// Reads from a raw socket until it is closed; returns what came and how long it took.
fn read_until_closed(mut stream: TcpStream, limit: Duration) -> (Vec<u8>, Duration) {
    stream.set_read_timeout(Some(limit)).unwrap();
    let started = Instant::now();
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return (data, started.elapsed()),
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn slowloris_and_idle_connections_are_cut() {
    let server = TestServer::spawn(&["--header-read-timeout", "500ms", "--idle-timeout", "1500ms"]);
    // A request head that never ends, on both listeners.
    for addr in [server.http, server.grpc] {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(b"GET /gtg HTTP/1.1\r\nHost: x\r\n").unwrap();
        let (_, took) = read_until_closed(stream, Duration::from_secs(5));
        assert!(took < Duration::from_millis(1400), "cut at the header-read timeout: {took:?}");
    }
    // A connection that says nothing at all.
    let (_, took) = read_until_closed(TcpStream::connect(server.http).unwrap(), Duration::from_secs(5));
    assert!(took < Duration::from_millis(1400), "{took:?}");

    // A keep-alive connection is not cut by the header timeout while idle, only by the idle one
    // (which must outlast the load balancers' own).
    let mut stream = TcpStream::connect(server.http).unwrap();
    stream.write_all(b"GET /gtg HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    std::thread::sleep(Duration::from_millis(800));
    stream.write_all(b"GET /gtg HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let n = stream.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "still open after the header-read timeout");
    let (_, took) = read_until_closed(stream, Duration::from_secs(5));
    assert!(took > Duration::from_millis(1000) && took < Duration::from_millis(3000), "closed when idle: {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http2_connections_are_closed_gracefully() {
    let server = TestServer::spawn(&["--idle-timeout", "700ms", "--http2-keepalive-interval", "200ms"]);
    let stream = tokio::net::TcpStream::connect(server.grpc).await.unwrap();
    let (_sender, connection) = hyper::client::conn::http2::handshake::<_, _, Full<Bytes>>(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    let started = Instant::now();
    // Keep-alive pings are answered by the client, and still the idle connection is closed.
    tokio::time::timeout(Duration::from_secs(5), connection).await.expect("closed by the server").ok();
    assert!(started.elapsed() >= Duration::from_millis(600), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_listing_counts_against_the_limit_while_it_runs() {
    let temp = tempfile::tempdir().unwrap();
    {
        let server = TestServer::spawn_in(temp.path(), &[]);
        let c = http();
        let puts = (0..1100).map(|i| c.post(server.url(&format!("/candidate/c{i:05}"))).send());
        for r in futures::future::join_all(puts).await {
            assert_eq!(r.unwrap().status(), 200);
        }
    }
    // Two pages; the second takes 600 ms to fetch, well after the headers went out.
    let server = TestServer::spawn_in(temp.path(), &["--max-concurrency", "1", "--debug-store-delay", "600ms"]);
    let c = http();
    let listing = c.get(server.url("/candidates")).send().await.unwrap();
    assert_eq!(listing.status(), 200);
    assert_eq!(
        c.get(server.url("/candidate/c00001")).send().await.unwrap().status(),
        503,
        "the stream holds the permit"
    );
    let names: Vec<serde_json::Value> = listing.json().await.unwrap();
    assert_eq!(names.len(), 1100);
    assert_eq!(c.get(server.url("/candidate/c00001")).send().await.unwrap().status(), 200, "and gives it back");
}

#[test]
fn oversized_body_with_expect_continue_gets_413_at_once() {
    let server = TestServer::spawn(&[]);
    let mut stream = TcpStream::connect(server.http).unwrap();
    stream
        .write_all(b"POST /candidate/x HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 512];
    let n = stream.read(&mut buf).unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "no 100 Continue first: {head}");
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_or_odd_request_ids_are_replaced() {
    let server = TestServer::spawn(&[]);
    let c = http();
    // (A 300 KiB id is over the head limit: 431, see reliability.rs.)
    for id in ["x".repeat(20 * 1024), "a b".into(), "é".into()] {
        let response = c.get(server.url("/gtg")).header("x-request-id", id.as_str()).send().await.unwrap();
        let echoed = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_ne!(echoed, id);
        assert_eq!(echoed.len(), 36, "a fresh UUID: {echoed}");
    }
    let response = c.get(server.url("/gtg")).header("x-request-id", "trace-123.a_b:c").send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-123.a_b:c", "a sane id is kept");
    assert!(server.log_lines().iter().all(|l| l.len() < 4096), "nothing client-sized in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_requests_that_are_not_grpc_get_415() {
    let server = TestServer::spawn(&[]);
    let mut sender = h2(server.grpc).await;
    let request = http::Request::post(format!("http://{}/candidates.v1.CandidateService/GetCandidate", server.grpc))
        .header("content-type", "application/json")
        .body(BoxBody::new(Full::new(Bytes::from_static(b"{}")).map_err(|e| match e {})))
        .unwrap();
    assert_eq!(sender.send_request(request).await.unwrap().status(), 415);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_clients_are_told_to_close_while_draining() {
    let server = TestServer::spawn(&["--drain-period", "3s"]);
    let c = http();
    let response = c.get(server.url("/candidate/x")).send().await.unwrap();
    assert!(response.headers().get("connection").is_none());
    server.signal(libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let response = c.get(server.url("/candidate/x")).send().await.unwrap();
        if response.headers().get("connection").is_some_and(|v| v == "close") {
            assert_eq!(response.status(), 404, "still served while draining");
            break;
        }
        assert!(Instant::now() < deadline, "no Connection: close while draining");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn an_empty_store_file_is_an_error_not_an_empty_store() {
    let temp = tempfile::tempdir().unwrap();
    let file = temp.path().join("candidates.redb");
    std::fs::write(&file, b"").unwrap();
    let mut child = common::server_command(temp.path(), &[]).spawn().unwrap();
    // It must refuse at once; a server that starts would serve an empty store.
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server started on an empty store file instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&file.display().to_string()) && stderr.contains("empty"), "{stderr}");
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 0, "left as it was");
}

/// A tmpfs of `size` mounted on a fresh directory (unmounted on drop): a disk that really fills.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` (with a line saying so) where this process may not mount; under scripts/test.sh
    /// (CANDIDATES_TEST_STRICT) that is a failure instead, so CI can never skip it silently.
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status();
        if matches!(status, Ok(s) if s.success()) {
            return Some(Self { dir });
        }
        let why = format!("cannot mount a tmpfs ({status:?}): run as root to test a full disk");
        assert!(std::env::var_os("CANDIDATES_TEST_STRICT").is_none(), "{why}");
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
        None
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Fills what is left of the disk; returns the filler's path.
    fn fill(&self) -> std::path::PathBuf {
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        let _ = file.write_all(&[0u8; 1]);
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_a_clear_retryable_error_and_writes_recover_without_a_restart() {
    let Some(disk) = SmallDisk::mount("4m") else { return };
    let data = disk.path().join("data");
    let server = TestServer::spawn_in(&data, &["--status-cache", "0s"]);
    let c = http();
    assert_eq!(c.post(server.url("/candidate/before")).send().await.unwrap().status(), 200);

    let filler = disk.fill();
    // Writes until the store needs space it cannot get: each is refused, none half-done.
    let mut refused = None;
    for i in 0..2000 {
        let response = c.post(server.url(&format!("/candidate/{i:05}{}", "x".repeat(200)))).send().await.unwrap();
        if response.status() != 200 {
            refused = Some((response.status(), response.json::<serde_json::Value>().await.unwrap()));
            break;
        }
    }
    let (status, body) = refused.expect("a full disk refuses writes");
    assert_eq!(status, 503, "retryable: {body}");
    assert_eq!(body["code"], 14, "UNAVAILABLE: {body}");
    assert!(body["message"].as_str().unwrap().contains("disk of the embedded store is full"), "{body}");
    let details = c.get(server.url("/gtg?details")).send().await.unwrap();
    assert_eq!(details.status(), 503, "health says the store is down while it cannot write");
    let mut grpc = server.grpc_client().await;
    let err =
        grpc.put_candidate(candidates_api::v1::PutCandidateRequest { name: "grpc-full".into() }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
    assert_eq!(c.get(server.url("/candidate/before")).send().await.unwrap().status(), 200, "reads still work");

    std::fs::remove_file(filler).unwrap();
    // Same process: writes work again, health says so, and nothing acknowledged was lost.
    assert_eq!(c.post(server.url("/candidate/after")).send().await.unwrap().status(), 200);
    assert_eq!(c.get(server.url("/gtg?details")).send().await.unwrap().status(), 200);
    for name in ["before", "after"] {
        assert_eq!(c.get(server.url(&format!("/candidate/{name}"))).send().await.unwrap().status(), 200);
    }
    assert_eq!(
        server.log_lines().iter().filter(|l| l.contains("embedded store writes are failing")).count(),
        1,
        "one log line for the outage, not one per write"
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_a_listing_is_given_up_on() {
    use tower::ServiceExt;
    let options = candidates_gateway::Options {
        limits: candidates_edge::limit::Limits {
            max_concurrency: 1,
            body_limit: 1024,
            body_timeout: Duration::from_secs(1),
        },
        send_timeout: Duration::from_millis(300),
        auth: std::sync::Arc::new(candidates_edge::auth::Auth::open()),
        cors: None,
        compression: false,
        grpc_web: None,
    };
    let gateway = common::in_process_gateway(5000, options).await;
    // This test's log lines (a current-thread runtime: the listing's task runs on this thread).
    let logs = Arc::new(Mutex::new(Vec::<u8>::new()));
    let subscriber = tracing_subscriber::fmt().json().flatten_event(true).with_writer({
        let logs = Arc::clone(&logs);
        move || Lines(Arc::clone(&logs))
    });
    let _logging = tracing::subscriber::set_default(subscriber.finish());
    let get = |path: &str| http::Request::get(path).body(axum::body::Body::empty()).unwrap();
    // A listing whose body nobody reads (5 pages; the producer can hand over one).
    let stalled = gateway
        .clone()
        .oneshot(
            http::Request::get("/candidates")
                .header("x-request-id", "stalled-1")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(stalled.status(), 200);
    assert_eq!(gateway.clone().oneshot(get("/candidate/c000001")).await.unwrap().status(), 503);
    tokio::time::sleep(Duration::from_millis(600)).await;
    // Given up on: the permit is back although the response is still held.
    assert_eq!(gateway.clone().oneshot(get("/candidate/c000001")).await.unwrap().status(), 200);
    // And its body ends in an error, not in a complete-looking list.
    let body = stalled.into_body().collect().await;
    assert!(body.is_err(), "a truncated listing is an aborted body");
    // The warning, logged by the listing's own task, names the request.
    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let warning = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "client stopped reading the listing; giving up on it")
        .unwrap_or_else(|| panic!("no warning about the stalled listing in:\n{logs}"));
    assert_eq!(warning["request_id"], "stalled-1", "{warning}");
}

/// A log sink for one test.
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An HTTP/2 client that grants its streams no flow-control window (`nghttp -w 0`) never blocks a
/// socket write: its answers simply wait, each holding a concurrency permit until its body ends.
/// The attacker review's 6 connections x 200 streams held every permit for good while /gtg said
/// 200. Now a response the transport has not asked for within the send timeout drops its
/// connection, and with it every permit its streams held.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_that_grant_no_flow_control_window_lose_their_connection_after_the_send_timeout() {
    use prost::Message;
    let server = TestServer::spawn(&["--max-concurrency", "8", "--send-timeout", "1s"]);
    let grpc_get = |name: &str| {
        let message = candidates_api::v1::GetCandidateRequest { name: name.into() }.encode_to_vec();
        let mut framed = vec![0u8];
        framed.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
        framed.extend_from_slice(&message);
        http::Request::post(format!("http://{}/candidates.v1.CandidateService/GetCandidate", server.grpc))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(BoxBody::new(Full::new(Bytes::from(framed)).map_err(|never| match never {})))
            .unwrap()
    };
    let rest_get = |name: &str| {
        http::Request::get(format!("http://{}/candidate/{name}", server.http))
            .body(BoxBody::new(Full::new(Bytes::new()).map_err(|never| match never {})))
            .unwrap()
    };
    // A candidate to answer with: a NOT_FOUND is a gRPC trailers-only answer, with no body to stall.
    assert_eq!(http().post(server.url("/candidate/present")).send().await.unwrap().status(), 200);
    let mut stalled = Vec::new();
    let mut connections = Vec::new();
    for grpc in [false, true] {
        let stream = tokio::net::TcpStream::connect(if grpc { server.grpc } else { server.http }).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .initial_stream_window_size(0)
            .adaptive_window(false)
            .handshake::<_, BoxBody>(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
        connections.push(tokio::spawn(connection));
        for _ in 0..8 {
            let request = if grpc { grpc_get("present") } else { rest_get("present") };
            // Headers are not flow-controlled: the answer's head arrives, its body never does.
            let response = sender.send_request(request).await.unwrap();
            stalled.push(response);
        }
    }
    let c = http();
    let mut grpc = server.grpc_client().await;
    let get = candidates_api::v1::GetCandidateRequest { name: "nobody".into() };
    // The attack holds: every permit of both listeners is taken, health still answers.
    assert_eq!(c.get(server.url("/candidate/nobody")).send().await.unwrap().status(), 503);
    assert_eq!(grpc.get_candidate(get.clone()).await.unwrap_err().code(), tonic::Code::ResourceExhausted);
    assert_eq!(c.get(server.url("/gtg")).send().await.unwrap().status(), 200);
    assert_eq!(health(server.grpc).await.unwrap(), ServingStatus::Serving);
    // And ends with the send timeout: both connections are dropped, the permits come back.
    for connection in connections {
        tokio::time::timeout(Duration::from_secs(10), connection).await.expect("dropped by the server").unwrap().ok();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rest = c.get(server.url("/candidate/nobody")).send().await.unwrap().status();
        let grpc = grpc.get_candidate(get.clone()).await.map(|_| ()).unwrap_err().code();
        if rest == 404 && grpc == tonic::Code::NotFound {
            break;
        }
        if Instant::now() >= deadline {
            let metrics = c.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
            panic!("permits still held: REST {rest}, gRPC {grpc:?}\n{metrics}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for response in stalled {
        assert!(response.into_body().collect().await.is_err(), "a stalled answer ends in an error, not a body");
    }
}

/// The send timeout counts only what the transport has not taken: a stream with nothing to send (a
/// health watch with no change) stays open however long it waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_with_nothing_to_send_outlives_the_send_timeout() {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let server = TestServer::spawn(&["--send-timeout", "300ms"]);
    let channel =
        tonic::transport::Channel::from_shared(format!("http://{}", server.grpc)).unwrap().connect().await.unwrap();
    let mut watch =
        HealthClient::new(channel).watch(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner();
    assert_eq!(watch.message().await.unwrap().unwrap().status(), ServingStatus::Serving);
    // Four send timeouts with nothing to send: neither the stream nor its connection is cut.
    let waited = tokio::time::timeout(Duration::from_millis(1200), watch.message()).await;
    assert!(waited.is_err(), "the watch ended: {waited:?}");
}
