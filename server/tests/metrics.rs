//! `GET /metrics` after a few requests: the counters moved, and the text parses as Prometheus'
//! exposition format.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{TestServer, http};
use prometheus_parse::{Scrape, Value};

fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.iter().map(|b| b.count).fold(0.0, f64::max),
            Value::Summary(_) => f64::NAN,
        })
        .reduce(|a, b| a + b)
}

#[tokio::test]
async fn metrics_count_requests_rpcs_and_store_calls() {
    let server = TestServer::spawn(&[]);
    let c = http();
    for _ in 0..3 {
        c.post(server.url("/candidate/Ada")).send().await.unwrap();
    }
    c.get(server.url("/candidate/nobody")).send().await.unwrap();
    c.get(server.url("/no-such-path")).send().await.unwrap();
    let mut grpc = server.grpc_client().await;
    grpc.get_candidate(candidates_api::v1::GetCandidateRequest { name: "Ada".into() }).await.unwrap();
    let _ = grpc.get_candidate(candidates_api::v1::GetCandidateRequest { name: "a/b".into() }).await;

    let resp = c.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = resp.text().await.unwrap();
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text format");

    let post = [("route", "/candidate/:name"), ("method", "POST"), ("status", "200")];
    assert_eq!(value(&scrape, "http_requests_total", &post), Some(3.0), "{text}");
    let missing = [("route", "/candidate/:name"), ("method", "GET"), ("status", "404")];
    assert_eq!(value(&scrape, "http_requests_total", &missing), Some(1.0));
    assert_eq!(value(&scrape, "http_requests_total", &[("route", "unmatched"), ("status", "404")]), Some(1.0));
    assert!(value(&scrape, "http_request_duration_seconds", &post).unwrap_or(0.0) >= 3.0, "{text}");
    assert_eq!(value(&scrape, "http_requests_in_flight", &[]), Some(0.0));

    let rpc = "/candidates.v1.CandidateService/GetCandidate";
    assert_eq!(value(&scrape, "grpc_requests_total", &[("rpc", rpc), ("code", "0")]), Some(1.0), "{text}");
    assert_eq!(value(&scrape, "grpc_requests_total", &[("rpc", rpc), ("code", "3")]), Some(1.0), "{text}");
    assert!(value(&scrape, "grpc_request_duration_seconds", &[("rpc", rpc)]).unwrap_or(0.0) >= 2.0);

    let put = [("backend", "embedded"), ("operation", "put"), ("outcome", "ok")];
    assert_eq!(value(&scrape, "store_operation_duration_seconds", &put), Some(3.0), "{text}");
    let get_missing = [("backend", "embedded"), ("operation", "get"), ("outcome", "not_found")];
    assert_eq!(value(&scrape, "store_operation_duration_seconds", &get_missing), Some(1.0));

    assert_eq!(value(&scrape, "candidates_draining", &[]), Some(0.0));
    assert_eq!(value(&scrape, "candidates_build_info", &[("store", "embedded")]), Some(1.0), "{text}");
}

#[tokio::test]
async fn store_errors_are_counted() {
    let server = TestServer::spawn(&["--debug-store-fail"]);
    let c = http();
    c.post(server.url("/candidate/x")).send().await.unwrap();
    let text = c.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let labels = [("backend", "embedded"), ("operation", "put"), ("error", "unavailable")];
    assert_eq!(value(&scrape, "store_operation_errors_total", &labels), Some(1.0), "{text}");
}

/// With --metrics-addr, /metrics moves to its own listener: a load balancer in front of the REST
/// port cannot expose it.
#[tokio::test]
async fn metrics_addr_moves_metrics_off_the_rest_listener() {
    let server = TestServer::spawn(&["--metrics-addr", "127.0.0.1:0"]);
    let listening = server
        .log_lines()
        .into_iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
        .find(|v| v["message"] == "listening")
        .expect("a listening log line");
    let addr = listening["metrics"].as_str().unwrap().to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{listening}");

    let c = http();
    c.post(server.url("/candidate/Ada")).send().await.unwrap();
    let on_rest = c.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(on_rest.status(), 404);
    assert_eq!(on_rest.json::<serde_json::Value>().await.unwrap()["code"], 5);

    let resp = c.get(format!("http://{addr}/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text format");
    assert!(value(&scrape, "http_requests_total", &[("method", "POST")]).unwrap_or(0.0) >= 1.0, "{text}");
}
