//! The reliability probe's findings against the real binary and a real emulator: each
//! test failed before its fix.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::{
    future::Future,
    pin::Pin,
    time::{Duration, Instant},
};

use candidates_api::v1::GetCandidateRequest;
use common::{BoxBody, TestServer, dynamo, grpc_health, h2, http, stalled_body};
use tonic_health::pb::health_check_response::ServingStatus;

const EMULATORS: &[&str] =
    &["CANDIDATES_TEST_MOTO_URL", "CANDIDATES_TEST_MOTO_BIN", "CANDIDATES_TEST_DYNAMODB_LOCAL_URL"];

type Abandon<'a> = Box<dyn Fn(&'a TestServer) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> + 'a>;

/// Finding 1: the breaker's trial call, dropped by its caller in each of the five ways the probe
/// found, must not leave the breaker open once the store answers again. Before the fix every one of
/// them left every call failing fast for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_trial_never_leaves_the_breaker_open() {
    if common::skip_without(EMULATORS) {
        return;
    }
    let moto = dynamo::PrivateMoto::start(0);
    dynamo::create_table(&moto.url(), "Candidates").await;
    // A store timeout longer than the /gtg?details probe's 2 s, as in production (3 s).
    let server = TestServer::spawn(&[
        "--store",
        "dynamodb",
        "--dynamodb-endpoint",
        &moto.url(),
        "--store-timeout",
        "2500ms",
        "--status-cache",
        "0s",
    ]);
    let c = http();
    assert_eq!(c.post(server.url("/candidate/x")).send().await.unwrap().status(), 200);

    let ways: Vec<(&str, Abandon)> = vec![
        (
            "/gtg?details (its 2 s probe timeout is shorter than the store timeout)",
            Box::new(|s| {
                Box::pin(async move {
                    let _ = http().get(s.url("/gtg?details")).send().await;
                })
            }),
        ),
        (
            "gRPC call with grpc-timeout 300m",
            Box::new(|s| {
                Box::pin(async move {
                    let mut request = tonic::Request::new(GetCandidateRequest { name: "x".into() });
                    request.set_timeout(Duration::from_millis(300));
                    let _ = s.grpc_client().await.get_candidate(request).await;
                })
            }),
        ),
        (
            "REST call with grpc-timeout: 300m",
            Box::new(|s| {
                Box::pin(async move {
                    let _ = http().get(s.url("/candidate/x")).header("grpc-timeout", "300m").send().await;
                })
            }),
        ),
        (
            "HTTP/1 client that disconnects after 0.3 s",
            Box::new(|s| {
                Box::pin(async move {
                    let c = reqwest::Client::builder().no_proxy().http1_only().build().unwrap();
                    let _ = tokio::time::timeout(Duration::from_millis(300), c.get(s.url("/candidate/x")).send()).await;
                })
            }),
        ),
        (
            "h2 client that resets its stream (RST_STREAM) after 0.3 s",
            Box::new(|s| {
                Box::pin(async move {
                    let c = reqwest::Client::builder().no_proxy().http2_prior_knowledge().build().unwrap();
                    let _ = tokio::time::timeout(Duration::from_millis(300), c.get(s.url("/candidate/x")).send()).await;
                })
            }),
        ),
    ];
    for (way, abandon) in ways {
        moto.signal(libc::SIGSTOP);
        // Open the breaker: five calls at once, each bounded by the store timeout.
        let opening: Vec<_> = (0..5)
            .map(|_| {
                let (c, url) = (c.clone(), server.url("/candidate/x"));
                tokio::spawn(async move { c.get(url).send().await.unwrap().status().as_u16() })
            })
            .collect();
        for call in opening {
            let status = call.await.unwrap();
            assert!(status == 503 || status == 504, "{way}: {status}");
        }
        let started = Instant::now();
        assert_eq!(c.get(server.url("/candidate/x")).send().await.unwrap().status(), 503, "{way}: open");
        assert!(started.elapsed() < Duration::from_millis(500), "{way}: open means failing fast");
        // After the open period the next call is the trial; this one is abandoned by its caller.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        abandon(&server).await;
        moto.signal(libc::SIGCONT);
        let resumed = Instant::now();
        loop {
            let status = c.get(server.url("/candidate/x")).send().await.unwrap().status();
            if status == 200 {
                break;
            }
            assert!(
                resumed.elapsed() < Duration::from_secs(5),
                "{way}: the store answers again but calls still fail ({status}) {:?} after SIGCONT",
                resumed.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!("{way}: serving again {:?} after SIGCONT", resumed.elapsed());
        assert_eq!(c.get(server.url("/gtg?details")).send().await.unwrap().status(), 200, "{way}");
    }
}

/// Finding 2: 200 reflection streams that a client keeps open and idle. Before the fix they took
/// 200 of the work permits (1,200 took all 1,024): unary calls were RESOURCE_EXHAUSTED while health
/// said SERVING. Now streams have a budget of their own, and an idle one is ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_reflection_streams_cannot_take_the_unary_calls_capacity() {
    use http_body_util::BodyExt;
    // 64 work permits: fewer than the streams opened below.
    let server = TestServer::spawn(&["--max-concurrency", "64", "--stream-idle-timeout", "2s"]);
    let mut held = Vec::new();
    let mut streams = Vec::new();
    for _ in 0..2 {
        let mut conn = h2(server.grpc).await;
        for _ in 0..100 {
            let (tx, body) = stalled_body();
            held.push(tx);
            let request = http::Request::post(format!(
                "http://{}/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                server.grpc
            ))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(body)
            .unwrap();
            conn.ready().await.unwrap();
            streams.push(conn.send_request(request).await.unwrap());
        }
    }
    let refused = streams.iter().filter(|r| r.headers().get("grpc-status").is_some_and(|s| s == "8")).count();
    let open: Vec<_> = streams.into_iter().filter(|r| r.headers().get("grpc-status").is_none()).collect();
    assert_eq!(open.len(), 4, "the stream budget of --max-concurrency 64 is 4");
    assert_eq!(refused, 196);

    // Every unary call still gets a permit, and health answers.
    let mut client = server.grpc_client().await;
    for i in 0..100 {
        let err = client.get_candidate(GetCandidateRequest { name: format!("n{i}") }).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
    }
    assert_eq!(grpc_health(server.grpc).await.unwrap(), ServingStatus::Serving);
    assert_eq!(http().get(server.url("/gtg")).send().await.unwrap().status(), 200);

    // An idle stream is ended by the server, with DEADLINE_EXCEEDED, after the idle timeout.
    let started = Instant::now();
    for response in open {
        let trailers = tokio::time::timeout(Duration::from_secs(10), response.into_body().collect())
            .await
            .expect("ended by the server")
            .unwrap()
            .trailers()
            .cloned()
            .expect("trailers");
        assert_eq!(trailers["grpc-status"], "4");
    }
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    drop(held);
}

/// Finding 6: request heads were bounded only by hyper's ~400 KiB buffer: 500 unfinished 390 KB
/// heads took RSS from 22 to 218 MiB until the header timeout, and a complete 200 KB head was
/// served. Now a head over 32 KiB is answered 431 as soon as it is over, finished or not.
#[test]
fn request_heads_over_the_limit_get_431_at_once() {
    use std::io::{Read, Write};
    let server = TestServer::spawn(&[]);
    for finished in [true, false] {
        let mut stream = std::net::TcpStream::connect(server.http).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut head = format!("GET /gtg HTTP/1.1\r\nHost: x\r\nX-Big: {}", "a".repeat(40 * 1024));
        if finished {
            head.push_str("\r\n\r\n");
        }
        let started = Instant::now();
        // The server may answer and close before it has read all of it.
        let _ = stream.write_all(head.as_bytes());
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 431"), "finished={finished}: {answer:.80}");
        assert!(started.elapsed() < Duration::from_secs(2), "not held until the header timeout");
    }
    // Under the limit is served as before.
    let mut stream = std::net::TcpStream::connect(server.http).unwrap();
    let head = format!("GET /gtg HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n", "a".repeat(24 * 1024));
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"));
}

/// Finding 5: with `nofile` 1024, 1,005 idle keep-alive connections filled every descriptor and
/// `/gtg` stopped answering. Under a descriptor limit of 256 (cap 192), 400 idle connections:
/// the oldest idle ones are closed to make room, and health answers throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[allow(unsafe_code)] // pre_exec + setrlimit(2): see the SAFETY comment.
async fn idle_connections_cannot_exhaust_descriptors_or_health() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = common::server_command(dir.path(), &[]);
    // SAFETY: setrlimit is async-signal-safe, and the closure touches nothing else.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: 256, rlim_max: 256 };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let server = TestServer::start_command(cmd, dir.path());
    let listening = server.log_lines().into_iter().find(|l| l.contains("\"listening\"")).unwrap();
    assert!(listening.contains("\"max_connections\":192"), "{listening}");
    // "listening" comes just before the instance is ready: the first /gtg below must not race it.
    let started = std::time::Instant::now();
    while http().get(server.url("/gtg")).send().await.unwrap().status() != 200 {
        assert!(started.elapsed() < Duration::from_secs(10), "not ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut idle = Vec::new();
    for i in 0..400 {
        // A keep-alive connection that made one request and then waits.
        let mut stream = tokio::net::TcpStream::connect(server.http).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream.write_all(b"GET /gtg HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.expect("answered").unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "connection {i}");
        idle.push(stream);
        if i % 50 == 0 {
            assert_eq!(http().get(server.url("/gtg")).send().await.unwrap().status(), 200, "after {i}");
            assert_eq!(grpc_health(server.grpc).await.unwrap(), ServingStatus::Serving, "after {i}");
        }
    }
    // The oldest were closed (EOF), the newest are still open.
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 16];
    let first = tokio::time::timeout(Duration::from_secs(5), idle[0].read(&mut buf)).await.expect("closed").unwrap();
    assert_eq!(first, 0, "the oldest idle connection was closed");
    assert!(tokio::time::timeout(Duration::from_millis(200), idle[399].read(&mut buf)).await.is_err(), "newest open");
    assert_eq!(http().get(server.url("/gtg")).send().await.unwrap().status(), 200);
}

/// The probe's low findings, each against the real binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_findings_malformed_escapes_unary_framing_and_oversized_metadata() {
    use http_body_util::BodyExt;
    let server = TestServer::spawn(&[]);
    let c = http();
    // Malformed percent-escapes are 400, not stored literally (`abc%zz` was the name `abc%25zz`).
    for path in ["/candidate/abc%", "/candidate/abc%zz", "/candidate/%4", "/candidate/a%g1"] {
        for method in [reqwest::Method::GET, reqwest::Method::POST, reqwest::Method::DELETE] {
            let resp = c.request(method.clone(), server.url(path)).send().await.unwrap();
            assert_eq!(resp.status(), 400, "{method} {path}");
            let body: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(body["code"], 3, "{method} {path}");
        }
    }
    let resp = c.post(server.url("/candidate/abc%25zz")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), r#"{"CandidateName":"abc%zz"}"#);
    assert_eq!(
        c.get(server.url("/candidates")).send().await.unwrap().text().await.unwrap(),
        r#"[{"CandidateName":"abc%zz"}]"#
    );

    // Unary framing: two messages are INTERNAL (was OK), a declared 4 GiB message is
    // RESOURCE_EXHAUSTED (was OUT_OF_RANGE).
    let mut conn = h2(server.grpc).await;
    let frame = |len: u32, body: &[u8]| [&[0u8][..], &len.to_be_bytes(), body].concat();
    // GetCandidateRequest { name: "x" }: field 1, length 1.
    let message = b"\x0a\x01x";
    for (body, want) in [
        ([frame(3, message), frame(3, message)].concat(), "13"),
        (frame(u32::MAX, message), "8"),
        (frame(3, message), "5"),
    ] {
        let request =
            http::Request::post(format!("http://{}/candidates.v1.CandidateService/GetCandidate", server.grpc))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(BoxBody::new(http_body_util::Full::new(bytes::Bytes::from(body)).map_err(|e| match e {})))
                .unwrap();
        conn.ready().await.unwrap();
        let response = conn.send_request(request).await.unwrap();
        let status = match response.headers().get("grpc-status") {
            Some(status) => status.to_str().unwrap().to_owned(),
            None => response.into_body().collect().await.unwrap().trailers().unwrap()["grpc-status"]
                .to_str()
                .unwrap()
                .to_owned(),
        };
        assert_eq!(status, want);
    }

    // Oversized gRPC metadata is 431 on its own stream; the connection and its other streams live
    // on (64 KiB, or 100 x 1 KiB headers, used to send GOAWAY and kill every stream).
    let mut conn = h2(server.grpc).await;
    let health = || {
        http::Request::post(format!("http://{}/grpc.health.v1.Health/Check", server.grpc))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(BoxBody::new(
                http_body_util::Full::new(bytes::Bytes::from_static(b"\0\0\0\0\0")).map_err(|e| match e {}),
            ))
            .unwrap()
    };
    let mut big = health();
    big.headers_mut().insert("x-big", "a".repeat(64 * 1024).parse().unwrap());
    let mut many = health();
    for i in 0..100 {
        many.headers_mut().insert(
            http::HeaderName::from_bytes(format!("x-h{i}").as_bytes()).unwrap(),
            "b".repeat(1024).parse().unwrap(),
        );
    }
    for oversized in [big, many] {
        conn.ready().await.unwrap();
        let response = conn.send_request(oversized).await.unwrap();
        assert_eq!(response.status(), 431);
        conn.ready().await.expect("the connection lives on");
        let ok = conn.send_request(health()).await.expect("another stream on the same connection");
        assert_eq!(ok.status(), 200);
    }
}

/// The fault proxy's modes between the server and DynamoDB (moto), CI's short form: no 500, every
/// answer within the store timeout (plus a margin), recovery once the network is back, and log
/// lines bounded (finding 4: one WARN per failed request made 363,455 lines in 2.5 minutes).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_network_faults_give_bounded_answers_and_bounded_logs() {
    use common::fault_proxy::{FaultProxy, Mode};
    if common::skip_without(EMULATORS) {
        return;
    }
    let moto: std::net::SocketAddr = dynamo::moto().trim_start_matches("http://").parse().unwrap();
    let table = dynamo::unique_table();
    dynamo::create_table(&dynamo::moto(), &table).await;
    let proxy = FaultProxy::start(moto).await;
    let server = TestServer::spawn(&[
        "--store",
        "dynamodb",
        "--dynamodb-endpoint",
        &proxy.url(),
        "--dynamodb-table",
        &table,
        "--store-timeout",
        "1s",
        "--status-cache",
        "0s",
    ]);
    let c = http();
    assert_eq!(c.post(server.url("/candidate/x")).send().await.unwrap().status(), 200);
    let mut requests = 0;
    for mode in [Mode::Delay(Duration::from_millis(1500)), Mode::Reset, Mode::Blackhole, Mode::Garbage, Mode::Refuse] {
        proxy.set(mode);
        let calls: Vec<_> = (0..60)
            .map(|i| {
                let c = c.clone();
                let url = server.url(if i % 3 == 0 { "/candidate/y" } else { "/candidate/x" });
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(20 * i)).await;
                    let started = Instant::now();
                    let status = if i % 3 == 0 { c.post(url) } else { c.get(url) }.send().await.unwrap().status();
                    (status.as_u16(), started.elapsed())
                })
            })
            .collect();
        let mut seen = std::collections::BTreeMap::new();
        for call in calls {
            let (status, took) = call.await.unwrap();
            requests += 1;
            *seen.entry(status).or_insert(0) += 1;
            assert!(status == 503 || status == 504 || status == 200, "{mode:?}: {status}");
            assert!(took < Duration::from_millis(2500), "{mode:?}: bounded by the store timeout: {took:?}");
        }
        assert!(seen.keys().any(|s| *s != 200), "{mode:?} was a fault: {seen:?}");
        proxy.set(Mode::Pass);
        let back = Instant::now();
        while c.get(server.url("/candidate/x")).send().await.unwrap().status() != 200 {
            assert!(back.elapsed() < Duration::from_secs(5), "{mode:?}: recovers once the network is back");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!("{mode:?}: {seen:?}, recovered in {:?}", back.elapsed());
    }
    let warnings = server
        .log_lines()
        .iter()
        .filter(|l| l.contains("\"level\":\"WARN\"") || l.contains("\"level\":\"ERROR\""))
        .count();
    println!("{requests} failing-mode requests, {warnings} warning/error lines");
    assert!(warnings < 40, "log lines bounded: {warnings} for {requests} requests: {:#?}", server.log_lines());
}

/// The drop audit: a streamed listing whose client goes away mid-stream gives its work permit
/// back at once, and its producer stops (no store calls for pages nobody reads). In-flight gauges
/// (hardening.rs), the admission permit (limit.rs) and the breaker's trial (guarded.rs) have their
/// own drop tests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_dropped_mid_stream_gives_its_permit_back_and_stops() {
    let temp = tempfile::tempdir().unwrap();
    {
        let server = TestServer::spawn_in(temp.path(), &[]);
        let c = http();
        for chunk in (0..3100).collect::<Vec<_>>().chunks(500) {
            let puts = chunk.iter().map(|i| c.post(server.url(&format!("/candidate/c{i:05}"))).send());
            for r in futures::future::join_all(puts).await {
                assert_eq!(r.unwrap().status(), 200);
            }
        }
    }
    let server = TestServer::spawn_in(temp.path(), &["--max-concurrency", "1", "--debug-store-delay", "300ms"]);
    let c = http();
    let metrics = || async {
        let text = http().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
        text.lines()
            .filter(|l| l.starts_with("store_operation_duration_seconds_count") && l.contains("operation=\"list\""))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum::<f64>()
    };
    let mut listing = c.get(server.url("/candidates")).send().await.unwrap();
    assert_eq!(listing.status(), 200);
    assert!(listing.chunk().await.unwrap().is_some(), "the first page arrived");
    assert_eq!(c.get(server.url("/candidate/c00001")).send().await.unwrap().status(), 503, "held while it runs");
    drop(listing);
    let dropped = Instant::now();
    while c.get(server.url("/candidate/c00001")).send().await.unwrap().status() != 200 {
        assert!(dropped.elapsed() < Duration::from_secs(2), "the permit came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // At most the page being fetched when the client left; not the rest of the four.
    let lists = metrics().await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(metrics().await, lists, "the producer stopped: no more pages fetched");
    assert!(lists <= 3.0, "{lists} pages fetched of 4");
}
