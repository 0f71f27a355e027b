//! Test helpers: the real `candidate-server` binary on port 0, real HTTP and gRPC clients, fake
//! cloud metadata services on 127.0.0.1, and the conformance-suite macro.
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod cosmos;
pub mod dynamo;
pub mod fake_metadata;
pub mod fault_proxy;
pub mod firestore;

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

use candidates_api::v1::candidate_service_client::CandidateServiceClient;
use tonic::transport::Channel;

pub const BIN: &str = env!("CARGO_BIN_EXE_candidate-server");
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `candidate-server` process with both listeners on free ports. Killed on drop.
pub struct TestServer {
    pub child: Child,
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    pub data_dir: PathBuf,
    /// Every line the server printed (JSON logs), for assertions on logging.
    pub logs: Arc<Mutex<Vec<String>>>,
    _temp: Option<tempfile::TempDir>,
}

/// Command line for the server with test defaults: free ports, JSON logs, a short drain.
pub fn server_command(data_dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--log-format", "json"])
        .args(["--drain-period", "200ms", "--shutdown-grace", "5s"])
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        // Hermetic: no CANDIDATES_* from the developer's shell, no metadata look-ups.
        .env_remove("CANDIDATES_STORE")
        .env_remove("CANDIDATES_INSTANCE_METADATA")
        .env_remove("CANDIDATES_METADATA_URL")
        .env_remove("CANDIDATES_GRPC_UPSTREAM")
        // AWS SDK: dummy credentials, a fixed region, never the instance metadata service.
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
        // Azure: no key or identity endpoint unless a test sets one.
        .env_remove("CANDIDATES_COSMOS_KEY")
        .env_remove("COSMOS_ENDPOINT")
        .env_remove("IDENTITY_ENDPOINT")
        .env_remove("IDENTITY_HEADER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

impl TestServer {
    /// Starts the server on a fresh temporary data directory.
    pub fn spawn(extra: &[&str]) -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        let mut server = Self::spawn_in(temp.path(), extra);
        server._temp = Some(temp);
        server
    }

    /// Starts the server with extra environment variables.
    pub fn spawn_with_env(extra: &[&str], env: &[(&str, &str)]) -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        let mut cmd = server_command(temp.path(), extra);
        cmd.envs(env.iter().copied());
        let mut server = Self::start(cmd, temp.path());
        server._temp = Some(temp);
        server
    }

    /// Starts the server on `data_dir` (kept by the caller, e.g. across a restart).
    pub fn spawn_in(data_dir: &Path, extra: &[&str]) -> Self {
        Self::start(server_command(data_dir, extra), data_dir)
    }

    /// Starts the server from a command made with [`server_command`] (and changed by the caller).
    pub fn start_command(cmd: Command, data_dir: &Path) -> Self {
        Self::start(cmd, data_dir)
    }

    fn start(mut cmd: Command, data_dir: &Path) -> Self {
        let mut child = cmd.spawn().expect("start candidate-server");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (listening_tx, listening_rx) = mpsc::channel();
        // Drain both pipes for the whole life of the process, or it would block on a full pipe.
        for pipe in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let logs = Arc::clone(&logs);
            let listening_tx = listening_tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let listening = parse_listening(&line);
                    // Logged before announced: a test that sees the server started sees this line.
                    logs.lock().unwrap().push(line);
                    if let Some(addrs) = listening {
                        let _ = listening_tx.send(addrs);
                    }
                }
            });
        }
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match listening_rx.recv_timeout(Duration::from_millis(50)) {
                Ok((http, grpc)) => {
                    return Self { child, http, grpc, data_dir: data_dir.to_owned(), logs, _temp: None };
                }
                Err(_) => {
                    if let Some(status) = child.try_wait().expect("try_wait") {
                        panic!("server exited before listening ({status}): {:#?}", logs.lock().unwrap());
                    }
                    assert!(Instant::now() < deadline, "server did not start: {:#?}", logs.lock().unwrap());
                }
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    pub async fn grpc_channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc)).unwrap().connect().await.expect("connect gRPC")
    }

    pub async fn grpc_client(&self) -> CandidateServiceClient<Channel> {
        CandidateServiceClient::new(self.grpc_channel().await)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    #[allow(unsafe_code)] // kill(2): see the SAFETY comment.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill({signal}) failed");
    }

    /// Waits for the process to exit, polling; panics after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not exit within {timeout:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The first JSON log line that `matches`, waiting up to 5 s for it (access lines are
    /// written in batches).
    pub async fn log_line(&self, matches: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found = self.log_lines().iter().filter_map(|l| serde_json::from_str(l).ok()).find(|v| matches(v));
            if let Some(line) = found {
                return line;
            }
            assert!(Instant::now() < deadline, "no such log line in {:#?}", self.log_lines());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A helper process of the test's own (a private emulator), killed on drop.
pub struct ChildGuard {
    child: Child,
}

impl ChildGuard {
    /// Spawns `cmd` (output discarded) and polls `ready` until it holds, for up to `timeout`.
    pub fn spawn(mut cmd: Command, what: &str, timeout: Duration, ready: impl Fn() -> bool) -> Self {
        let child =
            cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap_or_else(|e| panic!("start {what}: {e}"));
        let guard = Self { child };
        let deadline = Instant::now() + timeout;
        while !ready() {
            assert!(Instant::now() < deadline, "{what} did not become ready within {timeout:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        guard
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port nothing listens on yet (0 picks one); emulators are restarted on the same port.
pub fn port_or_free(port: u16) -> u16 {
    if port != 0 {
        return port;
    }
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// The `listening` log event carries both bound addresses.
fn parse_listening(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if v.get("message")?.as_str()? != "listening" {
        return None;
    }
    Some((v.get("http_addr")?.as_str()?.parse().ok()?, v.get("grpc_addr")?.as_str()?.parse().ok()?))
}

/// This machine's host name: the instance id `/gtg?details` reports without cloud metadata.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_owned()
}

/// An HTTP client that never uses a proxy (tests talk to 127.0.0.1 only).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().unwrap()
}

/// Percent-encodes a name for a URL path segment (the API crate's rule).
pub fn encode(name: &str) -> String {
    candidates_api::name::encode_path_segment(name)
}

/// The gateway over the in-process service on a memory store, as the binary wires them.
pub async fn in_process_gateway(names: usize, options: candidates_gateway::Options) -> axum::Router {
    use candidates_server::{name::CandidateName, service::CandidateApi, store::CandidateStore};
    let store = std::sync::Arc::new(candidates_server::store::memory::MemoryStore::new());
    for i in 0..names {
        store.put(&CandidateName::parse(format!("c{i:06}")).unwrap()).await.unwrap();
    }
    let api = CandidateApi::new(store, "test".into(), Duration::from_secs(1), options.auth.clone());
    let (ready, readiness) = tokio::sync::watch::channel(true);
    std::mem::forget(ready);
    candidates_gateway::router(candidates_server::grpc::in_process(api, Duration::from_secs(10)), readiness, options)
}

/// Whether to skip a test because an emulator it needs was not started (`vars` unset): plain
/// `cargo test` on a fresh clone passes, saying once per test binary what to set. Under
/// scripts/test.sh (`CANDIDATES_TEST_STRICT`) a missing emulator fails the test instead, so CI
/// can never skip silently.
pub fn skip_without(vars: &[&str]) -> bool {
    let missing: Vec<&str> = vars.iter().copied().filter(|v| std::env::var_os(v).is_none()).collect();
    if missing.is_empty() {
        return false;
    }
    assert!(
        std::env::var_os("CANDIDATES_TEST_STRICT").is_none(),
        "{} not set: the emulators did not start (scripts/test.sh starts them)",
        missing.join(", ")
    );
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        // Straight to the stream: libtest captures eprintln! of passing tests.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: emulator tests need {}: run scripts/test.sh, which starts the emulators",
            missing.join(", ")
        );
    });
    true
}

/// Generates one `#[tokio::test]` per conformance check, each on a fresh store from `$factory`
/// (an async expression yielding something that derefs to `dyn CandidateStore`).
#[macro_export]
macro_rules! conformance_suite {
    ($module:ident, $factory:expr) => {
        conformance_suite!($module, requires: [], $factory);
    };
    ($module:ident, requires: [$($var:expr),*], $factory:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            use candidates_server::store::conformance as c;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn empty_store() {
                if $crate::common::skip_without(&[$($var),*]) {
                    return;
                }
                let store = $factory;
                c::empty_store(&*store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn put_get_list_delete() {
                if $crate::common::skip_without(&[$($var),*]) {
                    return;
                }
                let store = $factory;
                c::put_get_list_delete(&*store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn upsert_is_idempotent() {
                if $crate::common::skip_without(&[$($var),*]) {
                    return;
                }
                let store = $factory;
                c::upsert_is_idempotent(&*store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn names_at_validity_edges() {
                if $crate::common::skip_without(&[$($var),*]) {
                    return;
                }
                let store = $factory;
                c::names_at_validity_edges(&*store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn list_many_pages() {
                if $crate::common::skip_without(&[$($var),*]) {
                    return;
                }
                let store = $factory;
                c::list_many_pages(&*store, c::LIST_MANY).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn list_order() {
                if $crate::common::skip_without(&[$($var),*]) {
                    return;
                }
                let store = $factory;
                c::list_order(&*store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn bad_page_token() {
                if $crate::common::skip_without(&[$($var),*]) {
                    return;
                }
                let store = $factory;
                c::bad_page_token(&*store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_writers() {
                if $crate::common::skip_without(&[$($var),*]) {
                    return;
                }
                let store = $factory;
                c::concurrent_writers(&*store).await;
            }
        }
    };
}

/// A request body for hand-made HTTP/2 requests.
pub type BoxBody = http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>;

/// An HTTP/2 (prior knowledge) connection of our own, for many streams at once (and many reset
/// ones: hyper's default limit would close the connection under the tests that cancel streams).
pub async fn h2(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<BoxBody> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
        .max_concurrent_reset_streams(1000)
        .handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

/// A body that never sends anything (the sender is returned to keep it open).
pub fn stalled_body()
-> (futures::channel::mpsc::Sender<Result<hyper::body::Frame<bytes::Bytes>, std::io::Error>>, BoxBody) {
    let (tx, rx) = futures::channel::mpsc::channel(1);
    (tx, BoxBody::new(http_body_util::StreamBody::new(rx)))
}

/// grpc.health.v1 Check of the whole server, on a connection of its own.
pub async fn grpc_health(
    addr: SocketAddr,
) -> Result<tonic_health::pb::health_check_response::ServingStatus, tonic::Status> {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let response = HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await?;
    Ok(response.into_inner().status())
}
