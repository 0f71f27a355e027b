//! The real `bootstrap` binary against a faithful fake of Lambda's side, on 127.0.0.1: the Runtime
//! API (`/2018-06-01/runtime/invocation/next`, `.../{id}/response` with response streaming,
//! `.../{id}/error`, `/runtime/init/error`) and a Function URL front that turns each HTTP request into
//! a payload 2.0 event and the streamed answer (JSON prelude, eight NUL bytes, body) back into an
//! HTTP response. The store is DynamoDB Local (started by scripts/test.sh). Through it, the REST
//! wire contract (`candidatectl check`'s REST half) passes, the listing streams, and the access
//! policy holds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::HashMap,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Path, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

const BIN: &str = env!("CARGO_BIN_EXE_bootstrap");
const RUNTIME: &str = "/2018-06-01/runtime";

/// What the function answered for one invocation.
#[derive(Debug)]
struct Answer {
    /// `Lambda-Runtime-Function-Response-Mode` of the answer (`streaming` when streamed).
    mode: Option<String>,
    body: Bytes,
    error: bool,
}

#[derive(Default)]
struct Fake {
    pending: Mutex<Option<mpsc::UnboundedReceiver<(String, Value)>>>,
    queue: Mutex<Option<mpsc::UnboundedSender<(String, Value)>>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    init_errors: Mutex<Vec<String>>,
    invocations: std::sync::atomic::AtomicUsize,
}

async fn next(State(fake): State<Arc<Fake>>) -> Response {
    // One poller at a time, as the runtime client polls.
    let mut receiver = fake.pending.lock().unwrap().take().expect("one poller");
    let next = receiver.recv().await;
    *fake.pending.lock().unwrap() = Some(receiver);
    let Some((id, event)) = next else { return StatusCode::GONE.into_response() };
    fake.invocations.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let deadline =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap() + Duration::from_secs(30);
    let mut response = axum::Json(event).into_response();
    let headers = response.headers_mut();
    headers.insert("lambda-runtime-aws-request-id", HeaderValue::from_str(&id).unwrap());
    headers.insert("lambda-runtime-deadline-ms", HeaderValue::from(deadline.as_millis() as u64));
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:candidates"),
    );
    headers.insert("lambda-runtime-trace-id", HeaderValue::from_static("Root=1-5759e988-bd862e3fe1be46a994272793"));
    response
}

async fn answered(fake: &Fake, id: &str, headers: &HeaderMap, body: Body, error: bool) -> StatusCode {
    let mode = headers.get("lambda-runtime-function-response-mode").map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(body, 64 << 20).await.unwrap();
    if let Some(waiter) = fake.waiting.lock().unwrap().remove(id) {
        let _ = waiter.send(Answer { mode, body, error });
    }
    StatusCode::ACCEPTED
}

async fn response(State(fake): State<Arc<Fake>>, Path(id): Path<String>, request: Request) -> StatusCode {
    let (parts, body) = request.into_parts();
    answered(&fake, &id, &parts.headers, body, false).await
}

async fn error(State(fake): State<Arc<Fake>>, Path(id): Path<String>, request: Request) -> StatusCode {
    let (parts, body) = request.into_parts();
    answered(&fake, &id, &parts.headers, body, true).await
}

async fn init_error(State(fake): State<Arc<Fake>>, body: Bytes) -> StatusCode {
    fake.init_errors.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
    StatusCode::ACCEPTED
}

/// The Function URL: an HTTP request as a payload 2.0 event, the function's answer as a response.
async fn front(State(fake): State<Arc<Fake>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 6 << 20).await.unwrap();
    let mut headers = serde_json::Map::new();
    for name in parts.headers.keys() {
        let values: Vec<&str> = parts.headers.get_all(name).iter().map(|v| v.to_str().unwrap()).collect();
        headers.insert(name.as_str().to_owned(), json!(values.join(",")));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let (path, query) = (parts.uri.path(), parts.uri.query().unwrap_or(""));
    let event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "fakeurl",
            "domainName": "fakeurl.lambda-url.us-east-1.on.aws",
            "domainPrefix": "fakeurl",
            "http": {
                "method": parts.method.as_str(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": parts.headers.get("user-agent").map_or("", |v| v.to_str().unwrap()),
            },
            "requestId": id,
            "routeKey": "$default",
            "stage": "$default",
            "time": "06/Dec/2026:09:00:00 +0000",
            "timeEpoch": 1_796_547_600_000u64,
        },
        "body": base64::engine::general_purpose::STANDARD.encode(&body),
        "isBase64Encoded": true,
    });
    let (tx, rx) = oneshot::channel();
    fake.waiting.lock().unwrap().insert(id.clone(), tx);
    fake.queue.lock().unwrap().as_ref().unwrap().send((id, event)).unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(30), rx).await.expect("the function answered").unwrap();
    if answer.error {
        return (StatusCode::BAD_GATEWAY, answer.body).into_response();
    }
    to_http(&answer)
}

/// A streamed answer: the JSON prelude (status, headers, cookies), eight NUL bytes, the body.
fn to_http(answer: &Answer) -> Response {
    assert_eq!(answer.mode.as_deref(), Some("streaming"), "answers are streamed");
    let split = answer.body.windows(8).position(|w| w == [0u8; 8]).expect("a prelude and its NUL separator");
    let prelude: Value = serde_json::from_slice(&answer.body[..split]).unwrap();
    let mut response = Response::new(Body::from(answer.body.slice(split + 8..)));
    *response.status_mut() = StatusCode::from_u16(prelude["statusCode"].as_u64().unwrap() as u16).unwrap();
    for (name, value) in prelude["headers"].as_object().unwrap() {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value.as_str().unwrap()).unwrap(),
        );
    }
    response
}

struct Function {
    child: std::process::Child,
    url: String,
    fake: Arc<Fake>,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn serve(router: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

async fn create_table(endpoint: &str, table: &str) {
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test"))
        .load()
        .await;
    aws_sdk_dynamodb::Client::new(&config)
        .create_table()
        .table_name(table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("CandidateName")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder().attribute_name("CandidateName").key_type(KeyType::Hash).build().unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
}

/// Starts the function on a fresh DynamoDB Local table behind the fake; `None` without the
/// emulator (a failure under CANDIDATES_TEST_STRICT, as every emulator test).
async fn function(env: &[(&str, &str)]) -> Option<Function> {
    let Some(endpoint) = std::env::var("CANDIDATES_TEST_DYNAMODB_LOCAL_URL").ok() else {
        assert!(std::env::var_os("CANDIDATES_TEST_STRICT").is_none(), "DynamoDB Local is not running");
        eprintln!("skipped: CANDIDATES_TEST_DYNAMODB_LOCAL_URL not set (scripts/test.sh starts DynamoDB Local)");
        return None;
    };
    let table = format!("lambda-{}", uuid::Uuid::new_v4().simple());
    create_table(&endpoint, &table).await;
    let (tx, rx) = mpsc::unbounded_channel();
    let fake = Arc::new(Fake { pending: Mutex::new(Some(rx)), queue: Mutex::new(Some(tx)), ..Fake::default() });
    let runtime = Router::new()
        .route(&format!("{RUNTIME}/invocation/next"), get(next))
        .route(&format!("{RUNTIME}/invocation/{{id}}/response"), post(response))
        .route(&format!("{RUNTIME}/invocation/{{id}}/error"), post(error))
        .route(&format!("{RUNTIME}/init/error"), post(init_error))
        .with_state(Arc::clone(&fake));
    let runtime = serve(runtime).await;
    let url = serve(Router::new().fallback(front).with_state(Arc::clone(&fake))).await;

    let mut command = std::process::Command::new(BIN);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", runtime.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "candidates")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/12/06/[$LATEST]0123456789abcdef")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/candidates")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("CANDIDATES_STORE", "dynamodb")
        .env("CANDIDATES_DYNAMODB_TABLE", &table)
        .env("CANDIDATES_DYNAMODB_ENDPOINT", &endpoint)
        .env("CANDIDATES_LOG_FORMAT", "json")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("start bootstrap");
    let logs = Arc::new(Mutex::new(Vec::new()));
    for pipe in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let logs = Arc::clone(&logs);
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                logs.lock().unwrap().push(line);
            }
        });
    }
    Some(Function { child, url: format!("http://{url}"), fake, logs })
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_contract_passes_through_a_function_url() {
    let Some(function) = function(&[]).await else { return };
    let args = candidates_clients::check::CheckArgs {
        rest_target: function.url.clone(),
        grpc_target: String::new(),
        skip_rest: false,
        skip_grpc: true,
    };
    let credential = candidates_clients::credential::Credential::key(None).unwrap();
    let report = candidates_clients::check::run(Duration::from_secs(10), &args, &credential).await;
    assert!(report.passed > 10, "{report:?}\n{:#?}", function.logs.lock().unwrap());
    assert_eq!(report.failed, 0, "{:#?}", function.logs.lock().unwrap());

    // The listing streams (every answer is streamed: the prelude and the separator were there).
    let client = http();
    let puts = (0..300).map(|i| client.post(format!("{}/candidate/lambda-{i:04}", function.url)).send());
    for response in futures::future::join_all(puts).await {
        assert_eq!(response.unwrap().status(), 200);
    }
    let listing = client.get(format!("{}/candidates", function.url)).send().await.unwrap();
    assert_eq!(listing.status(), 200);
    let names: Vec<Value> = listing.json().await.unwrap();
    let mut names: Vec<&str> = names.iter().map(|c| c["CandidateName"].as_str().unwrap()).collect();
    names.sort_unstable();
    // DynamoDB's scan order is the store's: compare as sets.
    assert_eq!(names, (0..300).map(|i| format!("lambda-{i:04}")).collect::<Vec<_>>());

    // /gtg?details names the execution environment; one process served every invocation, with
    // one store client (made during init).
    let details: Value =
        client.get(format!("{}/gtg?details", function.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(details["instance-id"], "2026/12/06/[$LATEST]0123456789abcdef");
    assert!(function.fake.invocations.load(std::sync::atomic::Ordering::SeqCst) > 300);
    assert!(function.fake.init_errors.lock().unwrap().is_empty());
    let logs = function.logs.lock().unwrap().clone();
    assert!(logs.iter().any(|l| l.contains("\"path\":\"/candidates\"")), "access lines reach the log: {logs:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_the_key_through_a_function_url() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let key = candidates_api::api_key::mint().unwrap();
    std::fs::write(&keys, format!("{} candidates.write app\n", candidates_api::api_key::digest_hex(&key))).unwrap();
    let keys = keys.display().to_string();
    let Some(function) = function(&[("CANDIDATES_API_KEYS_FILE", &keys)]).await else { return };
    let client = http();
    let anonymous = client.post(format!("{}/candidate/guarded", function.url)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let keyed = client
        .post(format!("{}/candidate/guarded", function.url))
        .header("authorization", format!("Bearer {key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(keyed.status(), 200);
    let read = client.get(format!("{}/candidate/guarded", function.url)).send().await.unwrap();
    assert_eq!(read.status(), 200, "reads stay public");
    assert!(!function.logs.lock().unwrap().iter().any(|l| l.contains(&key)), "the key is never logged");
}

/// terraform/serverless/aws passes the key file's lines in the environment: `bootstrap` writes them
/// to a file in the temporary directory during init, and the policy is the key file's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_lines_in_the_environment_are_the_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().display().to_string();
    let key = candidates_api::api_key::mint().unwrap();
    // As access.tf's api_key_lines joined with newlines: the deployment key's line, then another.
    let lines = format!(
        "{} candidates.read,candidates.write deploy\n{} candidates.read ci",
        candidates_api::api_key::digest_hex(&key),
        "0".repeat(64)
    );
    let Some(function) =
        function(&[("CANDIDATES_API_KEY_LINES", &lines), ("TMPDIR", &tmp), ("CANDIDATES_AUTH_WRITE", "scope")]).await
    else {
        return;
    };
    let client = http();
    let anonymous = client.post(format!("{}/candidate/from-lines", function.url)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let keyed = client
        .post(format!("{}/candidate/from-lines", function.url))
        .header("authorization", format!("Bearer {key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(keyed.status(), 200);
    assert_eq!(std::fs::read_to_string(dir.path().join("candidates-api-keys")).unwrap(), format!("{lines}\n"));
    assert!(!function.logs.lock().unwrap().iter().any(|l| l.contains(&key)), "the key is never logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_open_is_an_init_error() {
    if std::env::var_os("CANDIDATES_TEST_DYNAMODB_LOCAL_URL").is_none() {
        return;
    }
    // Nothing listens on port 9: the store's first call fails, the function reports it and exits.
    let Some(mut function) =
        function(&[("CANDIDATES_DYNAMODB_ENDPOINT", "http://127.0.0.1:9"), ("CANDIDATES_STORE_TIMEOUT", "1s")]).await
    else {
        return;
    };
    let status = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = function.child.try_wait().unwrap() {
                return (status, function.logs.lock().unwrap().clone());
            }
            assert!(std::time::Instant::now() < deadline, "the function did not give up");
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    assert_eq!(status.0.code(), Some(2), "{:#?}", status.1);
}
