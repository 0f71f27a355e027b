//! An acknowledged write survives `kill -9`: writers hammer the real binary over REST, the
//! process is killed at a random moment, and after a restart every acknowledged name is there.
//! 3 rounds in the test suite; `CANDIDATES_CRASH_ROUNDS=20` (bench/crash-loop.sh) is the long
//! version.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{TestServer, http};
use rand::Rng;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let rounds: usize = std::env::var("CANDIDATES_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let mut acknowledged_total = 0;
    for round in 0..rounds {
        let server = TestServer::spawn_in(dir.path(), &[]);
        let acked: Arc<Mutex<Vec<String>>> = Arc::default();
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let url = server.url("");
                let acked = Arc::clone(&acked);
                tokio::spawn(async move {
                    let c = http();
                    for i in 0.. {
                        let name = format!("r{round}-w{w}-{i:06}");
                        match c.post(format!("{url}/candidate/{name}")).send().await {
                            Ok(resp) if resp.status() == 200 => acked.lock().unwrap().push(name),
                            Ok(resp) => panic!("unexpected status {}", resp.status()),
                            Err(_) => break, // the server is gone
                        }
                    }
                })
            })
            .collect();
        let delay = rand::rng().random_range(300..800);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        server.signal(libc::SIGKILL);
        for w in writers {
            w.await.unwrap();
        }
        drop(server);

        let restarted = TestServer::spawn_in(dir.path(), &["--drain-period", "0s"]);
        let mut grpc = restarted.grpc_client().await;
        let mut stored = std::collections::HashSet::new();
        let mut token = String::new();
        loop {
            let page = grpc
                .list_candidates(candidates_api::v1::ListCandidatesRequest { page_size: 1000, page_token: token })
                .await
                .unwrap()
                .into_inner();
            stored.extend(page.candidates.into_iter().map(|c| c.name));
            token = page.next_page_token;
            if token.is_empty() {
                break;
            }
        }
        let acked = acked.lock().unwrap();
        assert!(!acked.is_empty(), "round {round}: no write was acknowledged before the kill");
        let lost: Vec<_> = acked.iter().filter(|n| !stored.contains(*n)).collect();
        assert!(
            lost.is_empty(),
            "round {round}: {} acknowledged writes lost, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        );
        acknowledged_total += acked.len();
        eprintln!(
            "round {round}: killed after {delay} ms, {} writes acknowledged, {} stored in all, none lost",
            acked.len(),
            stored.len()
        );
    }
    eprintln!("{acknowledged_total} acknowledged writes over {rounds} kill -9 rounds, none lost");
}
