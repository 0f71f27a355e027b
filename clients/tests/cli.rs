//! `candidatectl` (the real binary) against a real server on port 0: the CLI over gRPC and REST,
//! exit codes, `check` on a healthy and on a broken server, and bounded load runs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::{net::SocketAddr, process::Output, time::Duration};

use candidates_server::{Application, Config, config::StoreKind};
use serde_json::Value;

struct Server {
    http: SocketAddr,
    grpc: SocketAddr,
    _dir: tempfile::TempDir,
}

/// Starts the real server (same code as the binary) in this process on free ports.
async fn server(tweak: impl FnOnce(&mut Config)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path().to_owned());
    config.store = StoreKind::Memory;
    tweak(&mut config);
    let app = Application::build(config).await.expect("server starts");
    let (http, grpc) = (app.http_addr(), app.grpc_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    Server { http, grpc, _dir: dir }
}

impl Server {
    fn rest(&self) -> String {
        format!("http://{}", self.http)
    }
    fn grpc(&self) -> String {
        format!("http://{}", self.grpc)
    }
}

async fn ctl<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_candidatectl"))
        .args(args)
        .env_remove("CANDIDATECTL_TARGET")
        .env_remove("CANDIDATECTL_REST")
        .env_remove("CANDIDATES_API_KEY")
        .output()
        .await
        .expect("run candidatectl")
}

fn stdout_json(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {text}\nstderr: {}", String::from_utf8_lossy(&out.stderr)))
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_over_grpc_and_rest() {
    let s = server(|_| {}).await;
    for (proto, target) in [("grpc", s.grpc()), ("rest", s.rest())] {
        let mut base = vec!["--target", target.as_str(), "--json"];
        if proto == "rest" {
            base.push("--rest");
        }
        let name = format!("{proto} Zoë Smith");
        let with = |extra: &[&str]| -> Vec<String> { base.iter().chain(extra).map(|s| s.to_string()).collect() };

        let out = ctl(&with(&["put", &name])).await;
        assert_eq!(code(&out), 0, "{proto} put: {out:?}");
        assert_eq!(stdout_json(&out)["CandidateName"], name.as_str());

        let out = ctl(&with(&["get", &name])).await;
        assert_eq!((code(&out), stdout_json(&out)["CandidateName"].clone()), (0, Value::from(name.as_str())));

        let out = ctl(&with(&["list"])).await;
        assert_eq!(code(&out), 0);
        assert!(stdout_json(&out)["candidates"].as_array().unwrap().contains(&Value::from(name.as_str())), "{proto}");

        let out = ctl(&with(&["list", "--page-size", "1"])).await;
        let page = stdout_json(&out);
        assert_eq!(page["candidates"].as_array().unwrap().len(), 1);
        assert!(page["next_page_token"].is_string());

        let out = ctl(&with(&["status"])).await;
        assert_eq!(stdout_json(&out)["connected"], "true");

        let out = ctl(&with(&["delete", &name])).await;
        assert_eq!(code(&out), 0);

        // Exit codes scripts can use, with the server's message on stderr.
        let out = ctl(&with(&["get", &name])).await;
        assert_eq!(code(&out), 3, "{proto}: not found");
        assert!(String::from_utf8_lossy(&out.stderr).contains("Not Found"));
        let out = ctl(&with(&["put", "a/b"])).await;
        assert_eq!(code(&out), 4, "{proto}: rejected");
        assert!(String::from_utf8_lossy(&out.stderr).contains("must not contain '/'"), "{out:?}");
    }
    // Table output for people.
    let out = ctl(&["--target", &s.grpc(), "put", "Table Person"]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("│ Table Person"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_and_timeout_exit_codes() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let target = format!("http://{closed}");
    for rest in [false, true] {
        let mut args = vec!["--target", target.as_str(), "get", "x"];
        if rest {
            args.insert(0, "--rest");
        }
        let out = ctl(&args).await;
        assert_eq!(code(&out), 6, "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("Connection refused"), "{out:?}");
    }
    let slow = server(|c| c.debug_store_delay = Some(Duration::from_secs(3))).await;
    for (target, rest) in [(slow.grpc(), false), (slow.rest(), true)] {
        let mut args = vec!["--target", target.as_str(), "--timeout", "300ms", "get", "x"];
        if rest {
            args.insert(0, "--rest");
        }
        let out = ctl(&args).await;
        assert_eq!(code(&out), 7, "rest={rest}: {out:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_on_a_healthy_server() {
    let s = server(|_| {}).await;
    let out = ctl(&["check", "--rest-target", &s.rest(), "--grpc-target", &s.grpc()]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(code(&out), 0, "{text}");
    assert!(text.lines().filter(|l| l.starts_with("PASS")).count() >= 20, "{text}");
    assert!(text.contains(" 0 failed"), "{text}");
    // It cleaned up after itself.
    let out = ctl(&["--target", &s.grpc(), "--json", "list"]).await;
    assert_eq!(stdout_json(&out)["candidates"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_fails_on_a_broken_store() {
    let s = server(|c| c.debug_store_fail = true).await;
    let out = ctl(&["check", "--rest-target", &s.rest(), "--grpc-target", &s.grpc()]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(code(&out), 1, "{text}");
    assert!(text.lines().any(|l| l.starts_with("FAIL  rest  POST /candidate")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("FAIL  grpc  GetStatus")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("PASS  rest  GET /gtg → 200")), "the instance itself is up: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_fails_when_nothing_listens() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let target = format!("http://{closed}");
    let out = ctl(&["check", "--rest-target", &target, "--grpc-target", &target, "--timeout", "2s"]).await;
    assert_eq!(code(&out), 1);
    assert!(!String::from_utf8_lossy(&out.stdout).lines().any(|l| l.starts_with("PASS")));
}

fn assert_counts_add_up(report: &Value) {
    let sent = report["sent"].as_u64().unwrap();
    let ok = report["ok"].as_u64().unwrap();
    let errors: u64 = report["errors"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert!(sent > 0, "{report}");
    assert_eq!(sent, ok + errors, "{report}");
    assert_eq!(report["latency_ms"]["count"].as_u64().unwrap(), sent, "{report}");
    let by_op: u64 = report["by_op"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(by_op, sent);
    let (p50, p99, max) = (
        report["latency_ms"]["p50"].as_f64().unwrap(),
        report["latency_ms"]["p99"].as_f64().unwrap(),
        report["latency_ms"]["max"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_load_counts_add_up() {
    let s = server(|_| {}).await;
    for (target, rest) in [(s.grpc(), false), (s.rest(), true)] {
        let mut args = vec![
            "--target",
            target.as_str(),
            "--json",
            "load",
            "-c",
            "8",
            "-n",
            "600",
            "--populate",
            "--keys",
            "50",
            "--mix",
            "gtg=1,get=6,put=2,list=1",
            "--quiet",
        ];
        if rest {
            args.insert(0, "--rest");
        }
        let out = ctl(&args).await;
        assert_eq!(code(&out), 0, "{out:?}");
        let report = stdout_json(&out);
        assert_counts_add_up(&report);
        assert_eq!(report["sent"], 600);
        assert_eq!(report["errors"], serde_json::json!({}), "populated keys: no 404s");
        for op in ["gtg", "get", "put", "list"] {
            assert!(report["by_op"][op].as_u64().unwrap() > 0, "{op} never ran: {report}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_honours_the_rate_and_counts_errors() {
    let s = server(|_| {}).await;
    // 300 req/s for 2 s: 600 sends, on schedule.
    let out = ctl(&[
        "--rest",
        "--target",
        &s.rest(),
        "--json",
        "load",
        "--rate",
        "300",
        "-d",
        "2s",
        "--mix",
        "gtg=1",
        "--quiet",
    ])
    .await;
    assert_eq!(code(&out), 0, "{out:?}");
    let report = stdout_json(&out);
    assert_counts_add_up(&report);
    let sent = report["sent"].as_u64().unwrap();
    assert!((570..=600).contains(&sent), "sent {sent} at 300/s for 2 s");
    // The schedule, second by second (a wall-clock throughput bound failed under CI-like load:
    // speed is for benchmarks, not for tests).
    let rows = report["timeline"].as_array().unwrap();
    for row in &rows[..2] {
        let offered = row["offered"].as_u64().unwrap();
        assert!((295..=300).contains(&offered), "{offered} sent in second {}: {report}", row["t"]);
    }
    let achieved: u64 = rows.iter().map(|r| r["achieved"].as_u64().unwrap()).sum();
    assert_eq!(achieved, report["ok"].as_u64().unwrap(), "every ok answer is counted once: {report}");

    // Unpopulated keys: every get is a 404, counted by status; the error-rate gate fails the run.
    let out =
        ctl(&["--target", &s.grpc(), "--json", "load", "--rate", "200", "-n", "100", "--no-populate", "--quiet"]).await;
    assert_eq!(code(&out), 1, "errors above --max-error-rate 0 must fail the run");
    let report = stdout_json(&out);
    assert_counts_add_up(&report);
    assert_eq!(report["errors"]["NotFound"], 100, "{report}");
    assert!(report["setup"].as_str().unwrap().contains("--no-populate"), "the report says what it did: {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_load_measures_hits_and_says_so() {
    let s = server(|_| {}).await;
    for (target, rest) in [(s.grpc(), false), (s.rest(), true)] {
        let mut args =
            vec!["--target", target.as_str(), "--json", "load", "-d", "1s", "-c", "4", "--keys", "50", "--quiet"];
        if rest {
            args.insert(0, "--rest");
        }
        // Default flags: the names are put first, so every get finds its name.
        let out = ctl(&args).await;
        assert_eq!(code(&out), 0, "{out:?}");
        let report = stdout_json(&out);
        assert_counts_add_up(&report);
        assert_eq!(report["errors"], serde_json::json!({}), "rest={rest}: {report}");
        assert!(report["setup"].as_str().unwrap().starts_with("put 50 names"), "{report}");
        // The per-second timeline accounts for every request.
        let rows = report["timeline"].as_array().unwrap();
        let offered: u64 = rows.iter().map(|r| r["offered"].as_u64().unwrap()).sum();
        assert_eq!(offered, report["sent"].as_u64().unwrap(), "{report}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_ramps_down_and_writes_the_timeline() {
    let s = server(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("timeline.json");
    // 200/s held for 2 s, then down to 0 over 2 s: about 400 + 200 requests.
    let out = ctl(&[
        "--rest",
        "--target",
        &s.rest(),
        "--json",
        "load",
        "--rate",
        "200",
        "-d",
        "4s",
        "--ramp-down",
        "2s",
        "--mix",
        "gtg=1",
        "--timeline",
        file.to_str().unwrap(),
        "--quiet",
    ])
    .await;
    assert_eq!(code(&out), 0, "{out:?}");
    let report = stdout_json(&out);
    let sent = report["sent"].as_u64().unwrap();
    assert!((590..=600).contains(&sent), "sent {sent}");
    let rows: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(Value::from(rows.clone()), report["timeline"]);
    let offered: Vec<u64> = rows.iter().map(|r| r["offered"].as_u64().unwrap()).collect();
    assert!(offered.len() >= 4, "{offered:?}");
    // Held, then the ramp: ~150/s in its first second, ~50/s in its last.
    assert!((195..=205).contains(&offered[1]), "{offered:?}");
    assert!((140..=160).contains(&offered[2]) && (40..=60).contains(&offered[3]), "{offered:?}");
    assert!(rows.iter().all(|r| r["p99_ms"].as_f64().unwrap() >= r["p50_ms"].as_f64().unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_rejects_flags_that_do_not_apply() {
    for extra in [["--target", "http://127.0.0.1:1"].as_slice(), ["--rest"].as_slice()] {
        let mut args = vec!["check"];
        args.extend_from_slice(extra);
        let out = ctl(&args).await;
        assert_eq!(code(&out), 2, "{extra:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("does not apply to `check`") && stderr.contains("--rest-target"), "{stderr}");
        assert!(out.stdout.is_empty(), "nothing was checked: {out:?}");
    }
}

/// `key mint` makes a key the server takes, and every command sends it: with it the whole contract
/// check passes on a server that wants scopes for reads and writes; without it, it fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minted_key_works_on_every_command() {
    let minted = stdout_json(&ctl(&["--json", "key", "mint", "--name", "ci"]).await);
    let (key, line) =
        (minted["key"].as_str().unwrap().to_owned(), minted["key_file_line"].as_str().unwrap().to_owned());
    assert!(key.starts_with("cand_") && line.ends_with(" candidates.read,candidates.write ci"), "{minted}");
    assert!(!line.contains(&key), "the key file line holds no secret");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    std::fs::write(&path, format!("{line}\n")).unwrap();
    let s = server(|c| {
        c.api_keys_file = Some(path);
        c.auth_read = Some(candidates_server::config::AuthRule::Scope);
    })
    .await;
    let check = ["check", "--rest-target", &s.rest(), "--grpc-target", &s.grpc()];
    let with_key = tokio::process::Command::new(env!("CARGO_BIN_EXE_candidatectl"))
        .args(check)
        .env("CANDIDATES_API_KEY", &key)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&with_key.stdout);
    assert_eq!(code(&with_key), 0, "{text}");
    assert!(text.contains(" 0 failed"), "{text}");
    let without = ctl(&check).await;
    assert_eq!(code(&without), 1, "{}", String::from_utf8_lossy(&without.stdout));
    for (proto, target) in [("grpc", s.grpc()), ("rest", s.rest())] {
        let rest: &[&str] = if proto == "rest" { &["--rest"] } else { &[] };
        let refused = ctl(&[&["--target", &target], rest, &["put", "bob"]].concat()).await;
        assert_eq!(code(&refused), 4, "{proto}: {}", String::from_utf8_lossy(&refused.stderr));
        assert!(!String::from_utf8_lossy(&refused.stderr).contains(&key));
        let ok = ctl(&[&["--target", &target, "--api-key", &key], rest, &["put", "bob"]].concat()).await;
        assert_eq!(code(&ok), 0, "{proto}: {}", String::from_utf8_lossy(&ok.stderr));
        // `status` is a read (GetStatus): without the key it is refused, exit 4 like any 4xx.
        let status = ctl(&[&["--target", &target], rest, &["status"]].concat()).await;
        assert_eq!(code(&status), 4, "{proto}: {}", String::from_utf8_lossy(&status.stderr));
    }
}

/// `https://` targets over gRPC and REST with `--ca-file` (a CA made here); without the CA the
/// server's certificate is not trusted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_targets_with_a_ca_file() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&key, &ca).unwrap();
    let (cert_path, key_path, ca_path) =
        (dir.path().join("tls.crt"), dir.path().join("tls.key"), dir.path().join("ca.pem"));
    std::fs::write(&cert_path, leaf.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let s = server(|c| {
        c.tls_cert = Some(cert_path);
        c.tls_key = Some(key_path);
    })
    .await;
    let ca = ca_path.display().to_string();
    for (proto, target) in [("grpc", format!("https://{}", s.grpc)), ("rest", format!("https://{}", s.http))] {
        let rest: &[&str] = if proto == "rest" { &["--rest"] } else { &[] };
        let ok = ctl(&[&["--target", &target, "--ca-file", &ca], rest, &["put", "tls-user"]].concat()).await;
        assert_eq!(code(&ok), 0, "{proto}: {}", String::from_utf8_lossy(&ok.stderr));
        let untrusted = ctl(&[&["--target", &target, "--timeout", "3s"], rest, &["get", "tls-user"]].concat()).await;
        assert_ne!(code(&untrusted), 0, "{proto}: a certificate from an unknown CA must not be trusted");
    }
}

/// `--compression`: a listing large enough to be compressed, read over both protocols with each
/// encoding (REST could not parse the JSON if it did not decode what it asked for), and a load run
/// with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_answers_over_both_protocols() {
    let s = server(|_| {}).await;
    let out = ctl(&[
        "--target",
        &s.rest(),
        "--rest",
        "--json",
        "load",
        "-n",
        "10",
        "--populate",
        "--keys",
        "1500",
        "--mix",
        "get=1",
        "--quiet",
    ])
    .await;
    assert_eq!(code(&out), 0, "{out:?}");
    for (target, rest) in [(s.grpc(), false), (s.rest(), true)] {
        for encoding in ["gzip", "zstd", "none"] {
            let mut args = vec!["--target", target.as_str(), "--json", "--compression", encoding];
            if rest {
                args.push("--rest");
            }
            let out = ctl(&[&args[..], &["list"]].concat()).await;
            assert_eq!(code(&out), 0, "{encoding} rest={rest}: {out:?}");
            assert_eq!(stdout_json(&out)["candidates"].as_array().unwrap().len(), 1500, "{encoding} rest={rest}");
            let out = ctl(&[&args[..], &["load", "-n", "40", "--mix", "list=1,get=1", "--quiet"]].concat()).await;
            assert_eq!(code(&out), 0, "{encoding} rest={rest}: {out:?}");
            assert_eq!(stdout_json(&out)["sent"], 40);
        }
    }
}

/// A key is never sent over plain HTTP off this machine unless asked: every command that would
/// refuses with exit 2 before any connection, without echoing the key.
#[tokio::test]
async fn a_key_is_not_sent_in_clear_off_this_machine() {
    let key = "cand_0123456789abcdef0123456789abcdef0123456789a";
    for args in [
        vec!["--api-key", key, "--target", "http://10.0.0.5:50051", "get", "x"],
        vec!["--api-key", key, "--rest", "--target", "http://api.example.com", "put", "x"],
        vec!["--api-key", key, "--rest", "--target", "http://api.example.com", "load", "-n", "1"],
        vec!["--api-key", key, "check", "--rest-target", "http://api.example.com", "--skip-grpc"],
        vec![
            "--api-key",
            key,
            "check",
            "--rest-target",
            "https://api.example.com",
            "--grpc-target",
            "http://10.0.0.5:50051",
        ],
    ] {
        let out = ctl(&args).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 2, "{args:?}: {out:?}");
        assert!(stderr.contains("refusing to send the API key over plain HTTP"), "{stderr}");
        assert!(!stderr.contains(key), "the key is never echoed");
    }
}
