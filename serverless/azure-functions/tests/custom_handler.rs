//! The real `handler` binary behind a local stand-in for the Functions host: with
//! `enableForwardingHttpRequest` the host forwards the HTTP request as it came (method, path,
//! query, headers, body) to `127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT` and returns the answer as it
//! came, which is what the stand-in does. Through it the REST wire contract (`candidatectl check`'s
//! REST half) passes. And the function app's `host.json` and `function.json` keep the documented
//! rules that make the paths the contract's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    net::SocketAddr,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_handler");
const APP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/app");

struct Handler {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Handler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn start(port: u16) -> Handler {
    start_with(port, &[]).await
}

async fn start_with(port: u16, env: &[(&str, &str)]) -> Handler {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(BIN)
        .env_clear()
        .envs(env.iter().copied())
        .env("TMPDIR", dir.path())
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("WEBSITE_INSTANCE_ID", "instance-0123")
        .env("CANDIDATES_DATA_DIR", dir.path())
        .env("CANDIDATES_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start handler");
    let mut handler = Handler { child, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(20);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    loop {
        if client.get(format!("http://127.0.0.1:{port}/gtg")).send().await.is_ok_and(|r| r.status() == 200) {
            return handler;
        }
        assert!(handler.child.try_wait().unwrap().is_none(), "the handler exited");
        assert!(Instant::now() < deadline, "the handler did not answer /gtg");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The Functions host's forwarding, as the docs describe it: the request as it came, the answer as
/// it came.
async fn host(handler_port: u16) -> SocketAddr {
    use axum::{body::Body, extract::Request, response::Response};
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let forward = move |request: Request| {
        let client = client.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, 100 << 20).await.unwrap();
            let uri = format!("http://127.0.0.1:{handler_port}{}", parts.uri.path_and_query().unwrap());
            let mut forwarded = client.request(parts.method, uri).body(body);
            for (name, value) in &parts.headers {
                if name != "host" {
                    forwarded = forwarded.header(name, value);
                }
            }
            let answer = forwarded.send().await.unwrap();
            let mut response = Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                if name != "transfer-encoding" && name != "connection" {
                    response = response.header(name, value);
                }
            }
            response.body(Body::from(answer.bytes().await.unwrap())).unwrap()
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(forward)).await.unwrap() });
    addr
}

/// terraform/serverless/azure puts the write keys' digests in the app setting
/// `CANDIDATES_API_KEY_LINES`: the handler holds writes to them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_a_key_from_the_key_lines_setting() {
    let key = candidates_api::api_key::mint().unwrap();
    let lines = format!("{} candidates.write deploy", candidates_api::api_key::digest_hex(&key));
    let port = free_port();
    let _handler = start_with(port, &[("CANDIDATES_API_KEY_LINES", &lines), ("CANDIDATES_AUTH_WRITE", "scope")]).await;
    let front = host(port).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://{front}/candidate/keyed");
    assert_eq!(client.post(&url).send().await.unwrap().status(), 401);
    assert_eq!(client.post(&url).bearer_auth(&key).send().await.unwrap().status(), 200);
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200, "reads stay open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_contract_passes_through_the_functions_host() {
    let port = free_port();
    let _handler = start(port).await;
    let front = host(port).await;
    let args = candidates_clients::check::CheckArgs {
        rest_target: format!("http://{front}"),
        grpc_target: String::new(),
        skip_rest: false,
        skip_grpc: true,
    };
    let credential = candidates_clients::credential::Credential::key(None).unwrap();
    let report = candidates_clients::check::run(Duration::from_secs(10), &args, &credential).await;
    assert!(report.passed > 10 && report.failed == 0, "{report:?}");

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let details: Value = client.get(format!("http://{front}/gtg?details")).send().await.unwrap().json().await.unwrap();
    assert_eq!(details["instance-id"], "instance-0123");
}

#[tokio::test]
async fn without_the_port_it_says_so_and_exits() {
    let status = Command::new(BIN).env_clear().stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap();
    assert_eq!(status.code(), Some(2));
}

fn json(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{APP}/{path}")).unwrap()).unwrap()
}

/// host.json (learn.microsoft.com, "Azure Functions custom handlers" and "host.json reference"):
/// version 2.0; `customHandler.description.defaultExecutablePath` is the executable, relative to the
/// app root; `enableForwardingHttpRequest` forwards the original request, which applies only to
/// functions with an HTTP trigger and only an HTTP output; `extensions.http.routePrefix` empty, or
/// every path gains `/api`.
#[test]
fn host_json_forwards_requests_at_the_contracts_paths() {
    let host = json("host.json");
    assert_eq!(host["version"], "2.0");
    assert_eq!(host["customHandler"]["description"]["defaultExecutablePath"], "handler");
    assert_eq!(host["customHandler"]["enableForwardingHttpRequest"], true);
    assert_eq!(host["extensions"]["http"]["routePrefix"], "");
    assert!(host.get("extensionBundle").is_none(), "HTTP triggers are built in: no bundle to download");
}

/// function.json (learn.microsoft.com, "Azure Functions HTTP trigger"): one `httpTrigger` in and one
/// `http` out and nothing else (forwarding needs exactly that); `authLevel` anonymous (the service
/// applies its own access policy: a function key would be a second, unrotatable credential); the
/// contract's methods plus OPTIONS for CORS preflights; a catch-all route (`{*path}`).
#[test]
fn the_one_function_takes_every_path_of_the_contract() {
    let function = json("api/function.json");
    let bindings = function["bindings"].as_array().unwrap();
    assert_eq!(bindings.len(), 2, "forwarding needs exactly an HTTP trigger and an HTTP output");
    let trigger = bindings.iter().find(|b| b["type"] == "httpTrigger").unwrap();
    assert_eq!(trigger["direction"], "in");
    assert_eq!(trigger["authLevel"], "anonymous");
    assert_eq!(trigger["route"], "{*path}");
    let methods: Vec<&str> = trigger["methods"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    for method in ["get", "post", "delete", "options"] {
        assert!(methods.contains(&method), "{method}");
    }
    let output = bindings.iter().find(|b| b["type"] == "http").unwrap();
    assert_eq!(output["direction"], "out");
}
