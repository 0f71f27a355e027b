//! The reliability probe's findings (issue 25) against the real binary and a real emulator: each
//! test failed before its fix.

mod common;

use std::{
    future::Future,
    pin::Pin,
    time::{Duration, Instant},
};

use candidates_api::v1::GetCandidateRequest;
use common::{TestServer, dynamo, http};

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
