//! gRPC-Web on the REST listener against the real binary: binary and text modes over HTTP/1.1
//! and h2, errors in trailers-only headers, the access policy and the log line of the gRPC edge,
//! health and reflection not exposed, other content types refused, and the switch to turn it off.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use candidates_api::v1::{Candidate, GetCandidateRequest, PutCandidateRequest};
use common::{TestServer, http};
use prost::Message;

const SERVICE: &str = "/candidates.v1.CandidateService";
const TEXT: &str = "application/grpc-web-text";
const BINARY: &str = "application/grpc-web+proto";

/// One gRPC-Web answer: its HTTP status, the data messages, and the status from the trailer frame
/// (or from the headers of a trailers-only answer).
#[derive(Debug)]
struct Answer {
    http: u16,
    messages: Vec<Vec<u8>>,
    grpc_status: Option<String>,
    grpc_message: Option<String>,
}

fn frame(message: &impl Message) -> Vec<u8> {
    let bytes = message.encode_to_vec();
    [&[0u8][..], &(bytes.len() as u32).to_be_bytes(), &bytes].concat()
}

fn parse(http: u16, headers: &reqwest::header::HeaderMap, mut body: &[u8]) -> Answer {
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    let mut answer =
        Answer { http, messages: Vec::new(), grpc_status: header("grpc-status"), grpc_message: header("grpc-message") };
    while body.len() >= 5 {
        let (flag, len) = (body[0], u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize);
        let payload = &body[5..5 + len];
        if flag & 0x80 != 0 {
            for line in std::str::from_utf8(payload).unwrap().split("\r\n").filter(|l| !l.is_empty()) {
                let (name, value) = line.split_once(':').unwrap();
                match name.trim().to_ascii_lowercase().as_str() {
                    "grpc-status" => answer.grpc_status = Some(value.trim().to_owned()),
                    "grpc-message" => answer.grpc_message = Some(value.trim().to_owned()),
                    _ => {}
                }
            }
        } else {
            answer.messages.push(payload.to_vec());
        }
        body = &body[5 + len..];
    }
    assert!(body.is_empty(), "trailing bytes in a gRPC-Web body");
    answer
}

async fn call(
    client: &reqwest::Client,
    server: &TestServer,
    method: &str,
    content_type: &str,
    message: &impl Message,
    extra: &[(&str, &str)],
) -> Answer {
    let text = content_type.starts_with(TEXT);
    let body = if text {
        base64::engine::general_purpose::STANDARD.encode(frame(message)).into_bytes()
    } else {
        frame(message)
    };
    let mut request = client
        .post(server.url(&format!("{SERVICE}/{method}")))
        .header("content-type", content_type)
        // The answer's mode follows Accept, as grpc-web's JS clients send it.
        .header("accept", content_type)
        .header("x-grpc-web", "1")
        .body(body);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    if status == 200 {
        let answered = headers["content-type"].to_str().unwrap();
        assert!(answered.starts_with(if text { TEXT } else { "application/grpc-web" }), "{answered}");
    }
    let bytes = response.bytes().await.unwrap();
    let bytes = if text && status == 200 {
        // Text mode: each chunk is base64 with its own padding, so decode 4 characters at a time
        // (every chunk's length is a multiple of 4, so the groups stay aligned).
        bytes.chunks(4).flat_map(|group| base64::engine::general_purpose::STANDARD.decode(group).unwrap()).collect()
    } else {
        bytes.to_vec()
    };
    parse(status, &headers, &bytes)
}

fn h2() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().http2_prior_knowledge().build().unwrap()
}

#[tokio::test]
async fn calls_in_binary_and_text_mode_over_http1_and_h2() {
    let server = TestServer::spawn(&[]);
    for (client, version) in [(http(), "http1"), (h2(), "h2")] {
        for (i, mode) in
            [BINARY, "application/grpc-web", TEXT, "application/grpc-web-text+proto"].into_iter().enumerate()
        {
            let name = format!("web {version} {i}");
            let put =
                call(&client, &server, "PutCandidate", mode, &PutCandidateRequest { name: name.clone() }, &[]).await;
            assert_eq!((put.http, put.grpc_status.as_deref()), (200, Some("0")), "{version} {mode}: {put:?}");
            assert_eq!(Candidate::decode(&put.messages[0][..]).unwrap().name, name);

            let get =
                call(&client, &server, "GetCandidate", mode, &GetCandidateRequest { name: name.clone() }, &[]).await;
            assert_eq!(get.grpc_status.as_deref(), Some("0"), "{version} {mode}: {get:?}");
            assert_eq!(get.messages.len(), 1);
            assert_eq!(Candidate::decode(&get.messages[0][..]).unwrap().name, name);
        }
    }
    // What gRPC-Web wrote, REST and gRPC read: one service.
    let rest = http().get(server.url("/candidate/web%20h2%203")).send().await.unwrap();
    assert_eq!(rest.status(), 200);

    // Errors: the gRPC status, in the headers of a trailers-only answer.
    let missing =
        call(&http(), &server, "GetCandidate", BINARY, &GetCandidateRequest { name: "nobody".into() }, &[]).await;
    assert_eq!((missing.http, missing.grpc_status.as_deref()), (200, Some("5")), "{missing:?}");
    let invalid = call(&http(), &server, "PutCandidate", TEXT, &PutCandidateRequest { name: String::new() }, &[]).await;
    assert_eq!(invalid.grpc_status.as_deref(), Some("3"), "{invalid:?}");

    // The gRPC edge's access line, with the RPC and the trace context.
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let traced = call(
        &http(),
        &server,
        "GetCandidate",
        BINARY,
        &GetCandidateRequest { name: "nobody".into() },
        &[("traceparent", traceparent), ("x-request-id", "web-trace-1")],
    )
    .await;
    assert_eq!(traced.grpc_status.as_deref(), Some("5"));
    let line = server.log_line(|v| v["request_id"] == "web-trace-1").await;
    assert_eq!(line["rpc"], "/candidates.v1.CandidateService/GetCandidate", "{line}");
    assert_eq!(line["grpc_status"], "5", "{line}");
    assert_eq!(line["traceparent"], traceparent, "{line}");
}

#[tokio::test]
async fn only_the_candidate_service_and_only_grpc_web() {
    let server = TestServer::spawn(&[]);
    // Health and reflection are the gRPC listener's.
    for path in ["/grpc.health.v1.Health/Check", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"] {
        let response =
            http().post(server.url(path)).header("content-type", BINARY).body(vec![0u8; 5]).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    // Plain gRPC or JSON on a gRPC-Web path: 415 with the REST listener's JSON error body.
    for content_type in ["application/grpc", "application/json", "application/grpc-web+json"] {
        let response = http()
            .post(server.url(&format!("{SERVICE}/GetCandidate")))
            .header("content-type", content_type)
            .body(frame(&GetCandidateRequest { name: "x".into() }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 415, "{content_type}");
        // A REST answer like any other (attacker review): a request id, and below an access line.
        assert!(response.headers().contains_key("x-request-id"), "{content_type}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body["message"].as_str().unwrap().contains("gRPC-Web"), "{body}");
    }
    // A GET is not a gRPC-Web call.
    let response = http().get(server.url(&format!("{SERVICE}/GetCandidate"))).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let line = server.log_line(|v| v["request_id"] == id.as_str()).await;
    assert_eq!(line["status"], 405, "{line}");
    let metrics = http().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"http_requests_total{route="unmatched",method="GET",status="405"} 1"#), "{metrics}");

    // Text mode whose body is not base64: the client's malformed input, INVALID_ARGUMENT (it was
    // CANCELLED, as if the client had gone away).
    let malformed = http()
        .post(server.url(&format!("{SERVICE}/GetCandidate")))
        .header("content-type", TEXT)
        .body("!!!! not base64 !!!!")
        .send()
        .await
        .unwrap();
    let answer = parse(malformed.status().as_u16(), &malformed.headers().clone(), &malformed.bytes().await.unwrap());
    assert_eq!(answer.grpc_status.as_deref(), Some("3"), "{answer:?}");

    // An unknown method of the service: UNIMPLEMENTED, as on the gRPC listener.
    let unknown = call(&http(), &server, "Nope", BINARY, &GetCandidateRequest { name: "x".into() }, &[]).await;
    assert_eq!(unknown.grpc_status.as_deref(), Some("12"), "{unknown:?}");

    // A message over the body limit: RESOURCE_EXHAUSTED, as on the gRPC listener.
    let big =
        call(&http(), &server, "PutCandidate", BINARY, &PutCandidateRequest { name: "x".repeat(2 << 20) }, &[]).await;
    assert_eq!(big.grpc_status.as_deref(), Some("8"), "{big:?}");
}

#[tokio::test]
async fn the_access_policy_holds_and_it_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let key = candidates_api::api_key::mint().unwrap();
    std::fs::write(&keys, format!("{} candidates.write app\n", candidates_api::api_key::digest_hex(&key))).unwrap();
    let server = TestServer::spawn(&["--api-keys-file", &keys.display().to_string()]);

    let put = PutCandidateRequest { name: "guarded".into() };
    let anonymous = call(&http(), &server, "PutCandidate", BINARY, &put, &[]).await;
    assert_eq!(anonymous.grpc_status.as_deref(), Some("16"), "UNAUTHENTICATED: {anonymous:?}");
    let bearer = format!("Bearer {key}");
    let keyed = call(&http(), &server, "PutCandidate", TEXT, &put, &[("authorization", &bearer)]).await;
    assert_eq!(keyed.grpc_status.as_deref(), Some("0"), "{keyed:?}");
    let read =
        call(&http(), &server, "GetCandidate", BINARY, &GetCandidateRequest { name: "guarded".into() }, &[]).await;
    assert_eq!(read.grpc_status.as_deref(), Some("0"), "reads stay open: {read:?}");
    assert!(!server.log_lines().iter().any(|l| l.contains(&key)), "the key is never logged");

    let off = TestServer::spawn(&["--grpc-web", "false"]);
    let response = http()
        .post(off.url(&format!("{SERVICE}/GetCandidate")))
        .header("content-type", BINARY)
        .body(frame(&GetCandidateRequest { name: "x".into() }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}
