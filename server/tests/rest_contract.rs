//! The REST wire contract (README's API table and docs/client.md), row by row, over HTTP against the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{TestServer, encode, http};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn json_of(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    let text = resp.text().await.unwrap();
    assert_eq!(ct.as_deref(), Some("application/json"), "status {status}, body {text:?}");
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}")))
}

fn assert_error(status: StatusCode, body: &Value, want_status: u16, want_code: i64) {
    assert_eq!(status.as_u16(), want_status, "{body}");
    assert_eq!(body["code"], want_code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert_eq!(body["details"], json!([]), "{body}");
}

async fn list_names(server: &TestServer) -> Vec<String> {
    let resp = http().get(server.url("/candidates")).send().await.unwrap();
    if resp.status() == StatusCode::NOT_FOUND {
        return Vec::new();
    }
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    body.as_array().unwrap().iter().map(|c| c["CandidateName"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn gtg_plain_and_details() {
    let server = TestServer::spawn(&[]);
    let resp = http().get(server.url("/gtg")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().await.unwrap(), "");

    let host = common::host_name();
    for query in ["?details", "?details=", "?details=true", "?x=1&details=no"] {
        let (status, body) = json_of(http().get(server.url(&format!("/gtg{query}"))).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{query}");
        assert_eq!(body, json!({"connected": "true", "instance-id": host}), "{query}");
    }
    // HEAD works for load balancers that probe with it.
    let resp = http().head(server.url("/gtg")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn candidate_lifecycle_row_by_row() {
    let server = TestServer::spawn(&[]);
    let c = http();

    // GET of a missing candidate: 404 "Not Found".
    let (status, body) = json_of(c.get(server.url("/candidate/John%20Smith")).send().await.unwrap()).await;
    assert_error(status, &body, 404, 5);
    assert_eq!(body["message"], "Not Found");

    // /candidates on an empty store: 404.
    let (status, body) = json_of(c.get(server.url("/candidates")).send().await.unwrap()).await;
    assert_error(status, &body, 404, 5);

    // POST adds; the body is ignored whatever its type.
    let bodies: Vec<(Option<&str>, &str)> = vec![
        (None, ""),
        (Some("application/json"), r#"{"CandidateName": "someone else", "extra": 1}"#),
        (Some("text/plain"), "hello"),
        (Some("application/x-www-form-urlencoded"), "a=b"),
        (Some("application/json"), "{not json"),
    ];
    for (ct, body) in bodies {
        let mut req = c.post(server.url("/candidate/John%20Smith")).body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let (status, json) = json_of(req.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{ct:?} {body:?}");
        assert_eq!(json, json!({"CandidateName": "John Smith"}));
    }

    let (status, body) = json_of(c.get(server.url("/candidate/John%20Smith")).send().await.unwrap()).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"CandidateName": "John Smith"})));

    c.post(server.url("/candidate/Ada")).send().await.unwrap().error_for_status().unwrap();
    let (status, body) = json_of(c.get(server.url("/candidates")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!([{"CandidateName": "Ada"}, {"CandidateName": "John Smith"}]));

    // DELETE (an addition): 200 with the name, then 404.
    let (status, body) = json_of(c.delete(server.url("/candidate/Ada")).send().await.unwrap()).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"CandidateName": "Ada"})));
    let (status, body) = json_of(c.delete(server.url("/candidate/Ada")).send().await.unwrap()).await;
    assert_error(status, &body, 404, 5);
    assert_eq!(list_names(&server).await, vec!["John Smith"]);
}

#[tokio::test]
async fn bad_names_are_400_and_write_nothing() {
    let server = TestServer::spawn(&[]);
    let c = http();
    let cases: Vec<(String, &str)> = vec![
        (encode(&"x".repeat(256)), "at most 255"),
        (encode("a\u{1}b"), "control"),
        (encode("tab\there"), "control"),
        ("a%2Fb".into(), "'/'"),
        ("a%5Cb".into(), "'\\'"),
        ("a%3Fb".into(), "'?'"),
        ("a%23b".into(), "'#'"),
        ("__reserved__".into(), "__anything__"),
    ];
    for (path_name, rule) in &cases {
        for method in [reqwest::Method::POST, reqwest::Method::GET, reqwest::Method::DELETE] {
            let resp = c.request(method.clone(), server.url(&format!("/candidate/{path_name}"))).send().await.unwrap();
            let (status, body) = json_of(resp).await;
            assert_error(status, &body, 400, 3);
            let message = body["message"].as_str().unwrap();
            assert!(message.contains(rule), "{method} {path_name}: {message:?} should name rule {rule:?}");
        }
    }
    // HTTP clients (and the URL standard) turn `%2E` path segments into dot segments, so send
    // these two byte for byte.
    for (path_name, method) in [("%2E", "POST"), ("%2E%2E", "POST"), ("%2e", "GET"), ("%2E%2E", "DELETE")] {
        let (status, body) = raw_request(&server, method, &format!("/candidate/{path_name}")).await;
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_error(StatusCode::from_u16(status).unwrap(), &body, 400, 3);
        assert!(body["message"].as_str().unwrap().contains("'.' or '..'"), "{body}");
    }
    assert!(list_names(&server).await.is_empty(), "a rejected request wrote something");

    // The longest valid name and awkward-but-valid names work, percent-decoded.
    let ok = ["é".repeat(255), "John Smith".into(), "x=y&z".into(), "%20 literal".into(), "🦀".into()];
    for name in &ok {
        let (status, body) =
            json_of(c.post(server.url(&format!("/candidate/{}", encode(name)))).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert_eq!(body, json!({"CandidateName": name}));
    }
    let mut expected: Vec<String> = ok.to_vec();
    expected.sort();
    assert_eq!(list_names(&server).await, expected);
}

/// One HTTP/1.1 request with the path exactly as given; returns status and body.
async fn raw_request(server: &TestServer, method: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.http).await.unwrap();
    let request = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn unknown_path_and_wrong_method_are_json() {
    let server = TestServer::spawn(&[]);
    let c = http();
    for path in ["/", "/nope", "/candidate", "/candidate/", "/candidates/x", "/gtg/x"] {
        let (status, body) = json_of(c.get(server.url(path)).send().await.unwrap()).await;
        assert_error(status, &body, 404, 5);
    }
    for (method, path) in [
        (reqwest::Method::PUT, "/candidate/x"),
        (reqwest::Method::PATCH, "/candidate/x"),
        (reqwest::Method::POST, "/gtg"),
        (reqwest::Method::DELETE, "/candidates"),
        (reqwest::Method::POST, "/candidates"),
    ] {
        let resp = c.request(method.clone(), server.url(path)).send().await.unwrap();
        assert!(resp.headers().contains_key("allow"), "{method} {path}: 405 should say what is allowed");
        let (status, body) = json_of(resp).await;
        assert_error(status, &body, 405, 12);
    }
}

/// A client sending a large body gets its 413, not a connection reset: the server reads and drops
/// a declared-too-large body (up to a cap) before answering, so it does not close a socket with
/// unread data (which makes the kernel send RST and lose the response).
#[tokio::test]
async fn large_oversized_bodies_get_413_not_a_reset() {
    let server = TestServer::spawn(&[]);
    let c = http();
    for i in 0..5 {
        let resp = c.post(server.url(&format!("/candidate/big{i}"))).body(vec![b'x'; 8 << 20]).send().await;
        let resp = resp.unwrap_or_else(|e| panic!("request {i}: {e:?}"));
        let (status, body) = json_of(resp).await;
        assert_error(status, &body, 413, 8);
    }
    assert!(list_names(&server).await.is_empty());
}

#[tokio::test]
async fn oversized_body_is_413_and_writes_nothing() {
    let server = TestServer::spawn(&["--body-limit", "1024"]);
    let c = http();
    // Declared length over the limit.
    let (status, body) =
        json_of(c.post(server.url("/candidate/big")).body(vec![b'x'; 4096]).send().await.unwrap()).await;
    assert_error(status, &body, 413, 8);
    // Chunked (no length): the limit holds while reading.
    let chunks = futures::stream::iter((0..8).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 512])));
    let resp = c.post(server.url("/candidate/big2")).body(reqwest::Body::wrap_stream(chunks)).send().await.unwrap();
    let (status, body) = json_of(resp).await;
    assert_error(status, &body, 413, 8);
    assert!(list_names(&server).await.is_empty());
    // At the limit is fine.
    let resp = c.post(server.url("/candidate/fits")).body(vec![b'x'; 1024]).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn paging_and_streaming_the_whole_list() {
    let server = TestServer::spawn(&["--store", "memory"]);
    let mut grpc = server.grpc_client().await;
    let total = 2_500;
    for i in 0..total {
        grpc.put_candidate(candidates_api::v1::PutCandidateRequest { name: format!("c{i:05}") }).await.unwrap();
    }
    let expected: Vec<String> = (0..total).map(|i| format!("c{i:05}")).collect();

    // Without paging parameters: every candidate in one JSON array (many store pages).
    assert_eq!(list_names(&server).await, expected);

    // With page_size: one page at a time, following next_page_token.
    let c = http();
    let mut got = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let url = server.url(&format!("/candidates?page_size=700&page_token={token}"));
        let (status, body) = json_of(c.get(url).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        let page = body["candidates"].as_array().unwrap();
        assert!(page.len() <= 700);
        got.extend(page.iter().map(|c| c["CandidateName"].as_str().unwrap().to_owned()));
        pages += 1;
        token = body["next_page_token"].as_str().unwrap().to_owned();
        if token.is_empty() {
            break;
        }
    }
    assert_eq!((got, pages), (expected, 4));

    // An empty page is a page, not a 404, when the client pages.
    let (status, body) =
        json_of(c.get(server.url("/candidates?page_size=5&page_token=YzA5OTk5")).send().await.unwrap()).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"candidates": [], "next_page_token": ""})));

    for bad in ["page_size=abc", "page_size=-1", "page_size=", "page_token=***"] {
        let (status, body) = json_of(c.get(server.url(&format!("/candidates?{bad}"))).send().await.unwrap()).await;
        assert_error(status, &body, 400, 3);
    }
}

#[tokio::test]
async fn store_failure_is_503_with_original_messages() {
    let server = TestServer::spawn(&["--debug-store-fail"]);
    let c = http();
    let (status, body) = json_of(c.post(server.url("/candidate/x")).send().await.unwrap()).await;
    assert_error(status, &body, 503, 14);
    assert!(body["message"].as_str().unwrap().starts_with("Unable to update"), "{body}");
    let (status, body) = json_of(c.get(server.url("/candidate/x")).send().await.unwrap()).await;
    assert_error(status, &body, 503, 14);
    // The instance is up, so plain /gtg stays 200; details tell the store did not answer.
    assert_eq!(c.get(server.url("/gtg")).send().await.unwrap().status(), StatusCode::OK);
    let (status, body) = json_of(c.get(server.url("/gtg?details")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["connected"], "false");
    // Bad input is still 400, not 503: validation comes before the store.
    let (status, _) = json_of(c.post(server.url("/candidate/a%2Fb")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn lines_logged_inside_a_request_carry_its_id() {
    let server = TestServer::spawn(&["--debug-store-fail"]);
    let resp = http().get(server.url("/candidate/x")).header("x-request-id", "inner-warn-1").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let lines: Vec<Value> = server.log_lines().iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let warning = lines.iter().find(|v| v["message"] == "store unavailable");
        let access = lines.iter().find(|v| v["target"] == "access" && v["request_id"] == "inner-warn-1");
        if let (Some(warning), Some(access)) = (warning, access) {
            assert_eq!(warning["level"], "WARN");
            assert_eq!(warning["request_id"], "inner-warn-1", "{warning}");
            assert_eq!((access["status"].as_u64(), access["path"].as_str()), (Some(503), Some("/candidate/x")));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no warning with the request id: {lines:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn deadline_from_grpc_timeout_header_is_504() {
    let server = TestServer::spawn(&["--debug-store-delay", "2s"]);
    let started = std::time::Instant::now();
    let resp = http().get(server.url("/candidate/slow")).header("grpc-timeout", "200m").send().await.unwrap();
    let (status, body) = json_of(resp).await;
    assert_error(status, &body, 504, 4);
    assert!(started.elapsed() < std::time::Duration::from_millis(1500), "the deadline was not honoured");
    let resp = http().get(server.url("/candidate/slow")).header("grpc-timeout", "soon").send().await.unwrap();
    let (status, body) = json_of(resp).await;
    assert_error(status, &body, 400, 3);
}

#[tokio::test]
async fn overload_is_shed_with_503() {
    let server = TestServer::spawn(&["--max-concurrency", "2", "--debug-store-delay", "500ms"]);
    let c = http();
    let requests = (0..6).map(|i| c.get(server.url(&format!("/candidate/n{i}"))).send());
    let responses = futures::future::join_all(requests).await;
    let mut shed = 0;
    for resp in responses {
        let (status, body) = json_of(resp.unwrap()).await;
        match status.as_u16() {
            503 => {
                assert_error(status, &body, 503, 14);
                shed += 1;
            }
            404 => {}
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(shed >= 1, "nothing was shed with 6 concurrent requests over a limit of 2");
}

#[tokio::test]
async fn request_id_is_generated_propagated_and_logged() {
    let server = TestServer::spawn(&[]);
    let c = http();
    let resp = c.get(server.url("/gtg")).send().await.unwrap();
    let generated = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");

    let resp = c.post(server.url("/candidate/traced")).header("x-request-id", "trace-me-123").send().await.unwrap();
    assert_eq!(resp.headers()["x-request-id"], "trace-me-123");
    // The log line for the request has method, path, status, latency and the id.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let line = server.log_lines().into_iter().find(|l| l.contains("trace-me-123") && l.contains("\"status\""));
        if let Some(line) = line {
            let v: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["status"], 200);
            assert!(v["latency_ms"].is_number());
            assert_eq!(v["method"], "POST");
            assert_eq!(v["path"], "/candidate/traced");
            assert_eq!(v["target"], "access");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no log line with the request id");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn http2_prior_knowledge_is_served() {
    let server = TestServer::spawn(&[]);
    let c = reqwest::Client::builder().no_proxy().http2_prior_knowledge().build().unwrap();
    let resp = c.post(server.url("/candidate/h2")).send().await.unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    let (status, body) = json_of(resp).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"CandidateName": "h2"})));
}
