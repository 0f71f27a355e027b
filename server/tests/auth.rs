//! Who may call what, against the real binary: every operation on both listeners against the
//! policy matrix (the exact status, challenge and message), health and metrics never asking for
//! credentials, credentials never in logs, metrics or bodies, and a key file rotated under load.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use candidates_api::{
    api_key,
    v1::{DeleteCandidateRequest, GetCandidateRequest, GetStatusRequest, ListCandidatesRequest, PutCandidateRequest},
};
use common::{TestServer, grpc_health, http};
use tonic::{Code, Request};

/// Keys with one scope each, and their key file.
struct Keys {
    dir: tempfile::TempDir,
    read: String,
    write: String,
}

impl Keys {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (read, write) = (api_key::mint().unwrap(), api_key::mint().unwrap());
        let keys = Self { dir, read, write };
        keys.write_file(&[(&keys.read, "candidates.read", "reader"), (&keys.write, "candidates.write", "writer")]);
        keys
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self) -> String {
        self.path().join("keys").display().to_string()
    }

    /// Replaces the key file the way docs/security.md says: a new file renamed over the old.
    fn write_file(&self, keys: &[(&str, &str, &str)]) {
        let text: String =
            keys.iter().map(|(key, scopes, name)| format!("{} {scopes} {name}\n", api_key::digest_hex(key))).collect();
        let temp = self.path().join("keys.new");
        std::fs::write(&temp, text).unwrap();
        std::fs::rename(&temp, self.path().join("keys")).unwrap();
    }
}

/// What a caller sends.
#[derive(Debug, Clone, Copy)]
enum Who {
    Anonymous,
    Malformed,
    NotAKey,
    Revoked,
    Reader,
    Writer,
}

/// What the server answers: allowed (whatever the operation then says), or refused with a code.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Verdict {
    Allowed,
    Refused(Code, &'static str, &'static str),
}

const MISSING: Verdict = Verdict::Refused(
    Code::Unauthenticated,
    "Bearer",
    "this operation needs credentials: send Authorization: Bearer <key>",
);
const MALFORMED: Verdict = Verdict::Refused(
    Code::Unauthenticated,
    "Bearer error=\"invalid_request\"",
    "the authorization header is not `Bearer <token>`",
);
const NOT_A_KEY: Verdict = Verdict::Refused(
    Code::Unauthenticated,
    "Bearer error=\"invalid_token\"",
    "the bearer token is neither an API key nor a token this server accepts",
);
const REVOKED: Verdict = Verdict::Refused(
    Code::Unauthenticated,
    "Bearer error=\"invalid_token\"",
    "the API key is not valid (unknown or revoked)",
);
const NO_READ: Verdict = Verdict::Refused(
    Code::PermissionDenied,
    "Bearer error=\"insufficient_scope\", scope=\"candidates.read\"",
    "the credential does not hold the scope this operation needs",
);
const NO_WRITE: Verdict = Verdict::Refused(
    Code::PermissionDenied,
    "Bearer error=\"insufficient_scope\", scope=\"candidates.write\"",
    "the credential does not hold the scope this operation needs",
);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Get,
    List,
    Status,
    Put,
    Delete,
    /// Reflection (gRPC) and /openapi.json (REST).
    Describe,
}

const OPS: [Op; 6] = [Op::Get, Op::List, Op::Status, Op::Put, Op::Delete, Op::Describe];

impl Op {
    fn writes(self) -> bool {
        matches!(self, Self::Put | Self::Delete)
    }
}

fn authorization(keys: &Keys, who: Who, revoked: &str) -> Option<String> {
    match who {
        Who::Anonymous => None,
        Who::Malformed => Some("Basic dXNlcjpwYXNzd29yZA==".into()),
        Who::NotAKey => Some("Bearer eyJhbGciOiJub25lIn0.e30.".into()),
        Who::Revoked => Some(format!("Bearer {revoked}")),
        Who::Reader => Some(format!("Bearer {}", keys.read)),
        Who::Writer => Some(format!("Bearer {}", keys.write)),
    }
}

/// The REST answer: status, WWW-Authenticate, and the JSON error body's code and message.
async fn rest(server: &TestServer, op: Op, auth: Option<&str>) -> (u16, Option<String>, serde_json::Value) {
    let c = http();
    let name = "alice";
    let request = match op {
        Op::Get => c.get(server.url(&format!("/candidate/{name}"))),
        Op::List => c.get(server.url("/candidates")),
        Op::Status => c.get(server.url("/gtg?details")),
        Op::Put => c.post(server.url(&format!("/candidate/{name}"))),
        Op::Delete => c.delete(server.url("/candidate/nobody")),
        Op::Describe => c.get(server.url("/openapi.json")),
    };
    let request = match auth {
        Some(value) => request.header("authorization", value),
        None => request,
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    let body = response.json::<serde_json::Value>().await.unwrap_or(serde_json::Value::Null);
    (status, challenge, body)
}

/// The gRPC answer: the status code, the challenge metadata and the message.
async fn grpc(server: &TestServer, op: Op, auth: Option<&str>) -> (Code, Option<String>, String) {
    fn req<T>(message: T, auth: Option<&str>) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(value) = auth {
            request.metadata_mut().insert("authorization", value.parse().unwrap());
        }
        request
    }
    let channel = server.grpc_channel().await;
    let mut client = candidates_api::v1::candidate_service_client::CandidateServiceClient::new(channel.clone());
    let name = "alice".to_owned();
    let result = match op {
        Op::Get => client.get_candidate(req(GetCandidateRequest { name }, auth)).await.map(drop),
        Op::List => client.list_candidates(req(ListCandidatesRequest::default(), auth)).await.map(drop),
        Op::Status => client.get_status(req(GetStatusRequest {}, auth)).await.map(drop),
        Op::Put => client.put_candidate(req(PutCandidateRequest { name }, auth)).await.map(drop),
        Op::Delete => {
            client.delete_candidate(req(DeleteCandidateRequest { name: "nobody".into() }, auth)).await.map(drop)
        }
        Op::Describe => {
            use tonic_reflection::pb::v1::{
                ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
                server_reflection_request::MessageRequest,
            };
            let list = ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            };
            let mut client = ServerReflectionClient::new(channel);
            match client.server_reflection_info(req(futures::stream::iter([list]), auth)).await {
                Ok(response) => {
                    let mut stream = response.into_inner();
                    futures::StreamExt::next(&mut stream).await.unwrap().map(drop)
                }
                Err(status) => Err(status),
            }
        }
    };
    match result {
        Ok(()) => (Code::Ok, None, String::new()),
        Err(status) => (
            status.code(),
            status.metadata().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()),
            status.message().to_owned(),
        ),
    }
}

/// Runs the whole matrix against `server`; `expect(op, who)` is the policy's verdict. Returns
/// every credential and body seen, for the leak checks.
async fn matrix(server: &TestServer, keys: &Keys, expect: impl Fn(Op, Who) -> Verdict) -> Vec<String> {
    let revoked = api_key::mint().unwrap();
    let mut seen = Vec::new();
    // The candidate the reads find.
    let put = rest(server, Op::Put, Some(&format!("Bearer {}", keys.write))).await;
    assert_eq!(put.0, 200, "{put:?}");
    for who in [Who::Anonymous, Who::Malformed, Who::NotAKey, Who::Revoked, Who::Reader, Who::Writer] {
        let auth = authorization(keys, who, &revoked);
        for op in OPS {
            let verdict = expect(op, who);
            let (status, challenge, body) = rest(server, op, auth.as_deref()).await;
            match verdict {
                Verdict::Allowed => assert!(![401, 403].contains(&status), "REST {op:?} as {who:?}: {status} {body}"),
                Verdict::Refused(code, want_challenge, message) => {
                    let want_status = if code == Code::Unauthenticated { 401 } else { 403 };
                    assert_eq!(status, want_status, "REST {op:?} as {who:?}: {body}");
                    assert_eq!(challenge.as_deref(), Some(want_challenge), "REST {op:?} as {who:?}");
                    assert_eq!(body["code"], code as i32, "REST {op:?} as {who:?}: {body}");
                    assert_eq!(body["message"], message, "REST {op:?} as {who:?}");
                }
            }
            seen.push(body.to_string());
            let (code, challenge, message) = grpc(server, op, auth.as_deref()).await;
            match verdict {
                Verdict::Allowed => assert!(
                    ![Code::Unauthenticated, Code::PermissionDenied].contains(&code),
                    "gRPC {op:?} as {who:?}: {code:?} {message}"
                ),
                Verdict::Refused(want, want_challenge, want_message) => {
                    assert_eq!((code, message.as_str()), (want, want_message), "gRPC {op:?} as {who:?}");
                    assert_eq!(challenge.as_deref(), Some(want_challenge), "gRPC {op:?} as {who:?}");
                }
            }
            seen.push(message);
        }
        // Health never asks for credentials, and never refuses one.
        let gtg = match &auth {
            Some(value) => http().get(server.url("/gtg")).header("authorization", value),
            None => http().get(server.url("/gtg")),
        };
        assert_eq!(gtg.send().await.unwrap().status(), 200, "/gtg as {who:?}");
    }
    seen
}

fn credential_failure(who: Who) -> Option<Verdict> {
    match who {
        Who::Malformed => Some(MALFORMED),
        Who::NotAKey => Some(NOT_A_KEY),
        Who::Revoked => Some(REVOKED),
        _ => None,
    }
}

#[tokio::test]
async fn scopes_on_both_listeners() {
    let keys = Keys::new();
    let server = TestServer::spawn(&["--api-keys-file", &keys.file(), "--auth-read", "scope", "--auth-write", "scope"]);
    let seen = matrix(&server, &keys, |op, who| {
        if let Some(verdict) = credential_failure(who) {
            return verdict;
        }
        match (who, op.writes()) {
            (Who::Anonymous, _) => MISSING,
            (Who::Reader, false) | (Who::Writer, true) => Verdict::Allowed,
            (Who::Reader, true) => NO_WRITE,
            (Who::Writer, false) => NO_READ,
            _ => unreachable!(),
        }
    })
    .await;
    // gRPC health answers anyone.
    assert_eq!(
        grpc_health(server.grpc).await.unwrap(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    no_credential_leaks(&server, &keys, &seen).await;
}

#[tokio::test]
async fn keys_default_to_public_reads_and_guarded_writes() {
    let keys = Keys::new();
    let server = TestServer::spawn(&["--api-keys-file", &keys.file()]);
    let seen = matrix(&server, &keys, |op, who| {
        if let Some(verdict) = credential_failure(who) {
            return verdict;
        }
        match (who, op.writes()) {
            (_, false) | (Who::Writer, true) => Verdict::Allowed,
            (Who::Anonymous, true) => MISSING,
            (Who::Reader, true) => NO_WRITE,
            _ => unreachable!(),
        }
    })
    .await;
    no_credential_leaks(&server, &keys, &seen).await;
}

#[tokio::test]
async fn any_authenticated_caller() {
    let keys = Keys::new();
    let server = TestServer::spawn(&[
        "--api-keys-file",
        &keys.file(),
        "--auth-read",
        "authenticated",
        "--auth-write",
        "authenticated",
    ]);
    matrix(&server, &keys, |_, who| match credential_failure(who) {
        Some(verdict) => verdict,
        None if matches!(who, Who::Anonymous) => MISSING,
        None => Verdict::Allowed,
    })
    .await;
}

#[tokio::test]
async fn without_keys_everything_is_open_as_before_and_a_policy_without_keys_is_refused() {
    let server = TestServer::spawn(&[]);
    // A credential sent to a server that has none configured is ignored, as it always was.
    for auth in [None, Some("Bearer cand_whatever"), Some("Basic eA==")] {
        for op in OPS {
            let (status, challenge, body) = rest(&server, op, auth).await;
            assert!(![401, 403].contains(&status) && challenge.is_none(), "{op:?} {auth:?}: {status} {body}");
            let (code, _, message) = grpc(&server, op, auth).await;
            assert!(![Code::Unauthenticated, Code::PermissionDenied].contains(&code), "{op:?} {auth:?}: {message}");
        }
    }
    let output = common::server_command(Path::new("/nonexistent"), &["--auth-write", "scope"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--auth-write asks for credentials, but none are configured"), "{stderr}");
}

/// Every key and raw credential the matrix sent must be absent from the server's lines, its
/// metrics and every body or message it answered; refusals are counted by reason.
async fn no_credential_leaks(server: &TestServer, keys: &Keys, seen: &[String]) {
    let metrics = http().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let logs = server.log_lines().join("\n");
    let secrets = [keys.read.as_str(), keys.write.as_str(), "dXNlcjpwYXNzd29yZA", "eyJhbGciOiJub25lIn0"];
    for secret in secrets {
        assert!(!logs.contains(secret), "a credential in the logs");
        assert!(!metrics.contains(secret), "a credential in /metrics");
        assert!(seen.iter().all(|s| !s.contains(secret)), "a credential in a response");
    }
    for reason in ["missing", "malformed", "unknown_key", "unknown_token"] {
        assert!(metrics.contains(&format!("auth_failures_total{{reason=\"{reason}\"}}")), "{reason} not counted");
    }
    assert!(logs.contains("request refused by the auth policy"), "refusals are logged");
}

#[tokio::test]
async fn a_rotated_key_file_fails_no_request_whose_key_stays_valid() {
    let keys = Keys::new();
    let stable = api_key::mint().unwrap();
    let (old, new) = (api_key::mint().unwrap(), api_key::mint().unwrap());
    keys.write_file(&[(&stable, "candidates.read,candidates.write", "stable"), (&old, "candidates.write", "old")]);
    let server = TestServer::spawn(&["--api-keys-file", &keys.file()]);

    // Load with the stable key on both listeners while the file is rotated twice.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for worker in 0..8 {
        let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
        let (url, grpc, auth) = (server.url(""), server.grpc_channel().await, format!("Bearer {stable}"));
        load.push(tokio::spawn(async move {
            let c = http();
            let mut client = candidates_api::v1::candidate_service_client::CandidateServiceClient::new(grpc);
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("w{worker}-{i}");
                let ok = if i % 2 == 0 {
                    let r = c.post(format!("{url}/candidate/{name}")).header("authorization", &auth).send().await;
                    r.is_ok_and(|r| r.status() == 200)
                } else {
                    let mut request = Request::new(PutCandidateRequest { name });
                    request.metadata_mut().insert("authorization", auth.parse().unwrap());
                    client.put_candidate(request).await.is_ok()
                };
                sent.fetch_add(1, Ordering::Relaxed);
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
        }));
    }
    let put_with = |key: String| {
        let url = server.url("/candidate/rotation");
        async move { http().post(url).header("authorization", format!("Bearer {key}")).send().await.unwrap().status() }
    };
    assert_eq!(put_with(old.clone()).await, 200);
    // Rotate: the new key in, the old out.
    keys.write_file(&[(&stable, "candidates.read,candidates.write", "stable"), (&new, "candidates.write", "new")]);
    let started = Instant::now();
    while put_with(new.clone()).await != 200 {
        assert!(started.elapsed() < Duration::from_secs(15), "the new key was not taken");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let taken_after = started.elapsed();
    assert_eq!(put_with(old.clone()).await, 401, "the old key is revoked with the same read");
    // And back, with a file another tool wrote in place (no rename).
    std::fs::write(
        keys.path().join("keys"),
        format!("{} candidates.read,candidates.write stable\n", api_key::digest_hex(&stable)),
    )
    .unwrap();
    let started = Instant::now();
    while put_with(new.clone()).await != 401 {
        assert!(started.elapsed() < Duration::from_secs(15), "the new key was not revoked");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let (sent, failed) = (sent.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("rotation: {sent} requests with the stable key, {failed} failed; new key taken after {taken_after:?}");
    assert!(sent > 100, "the load ran ({sent} requests)");
    assert_eq!(failed, 0, "requests with a key valid before and after the rotation failed");
    let logs = server.log_lines().join("\n");
    assert!(logs.contains("API keys loaded"), "reloads are logged");
    for key in [&stable, &old, &new] {
        assert!(!logs.contains(key.as_str()));
    }
}

/// With --grpc-upstream the gateway is a real gRPC client of another server: it forwards the
/// caller's credential, and the upstream judges it again (no blanket trust between them).
#[tokio::test]
async fn a_remote_gateway_forwards_the_callers_credential() {
    let keys = Keys::new();
    let upstream = TestServer::spawn(&["--api-keys-file", &keys.file()]);
    let target = format!("http://{}", upstream.grpc);
    let gateway = TestServer::spawn(&["--api-keys-file", &keys.file(), "--grpc-upstream", &target]);
    for (who, want) in [(Who::Anonymous, 401), (Who::Reader, 403), (Who::Writer, 200)] {
        let auth = authorization(&keys, who, "");
        let (status, _, body) = rest(&gateway, Op::Put, auth.as_deref()).await;
        assert_eq!(status, want, "{who:?}: {body}");
    }
    // The write reached the upstream's store.
    let (status, _, body) = rest(&upstream, Op::Get, None).await;
    assert_eq!((status, &body["CandidateName"]), (200, &serde_json::json!("alice")), "{body}");
}
