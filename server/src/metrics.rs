//! Prometheus metrics: one process-wide recorder (metrics + metrics-exporter-prometheus), rendered
//! at `GET /metrics`: on the REST listener by default, or on a listener of its own with
//! `--metrics-addr` (what the deployments do, so that no load balancer in front of the REST port
//! can expose it). Names follow Prometheus conventions (base units in the name, `_total` for
//! counters); labels come from closed sets (route templates, standard methods, the served RPCs, store
//! operations); anything a client makes up is counted as `other`.

use std::sync::OnceLock;

use axum::{
    http::header,
    response::{IntoResponse, Response},
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds: 100 µs to 10 s (the default request deadline).
const BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global recorder on first use (tests start several servers in one process).
#[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().set_buckets(BUCKETS).expect("buckets are valid").build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (an embedding program): then ours only renders.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Describes every metric once and records the build info.
pub fn init(store: &'static str) {
    handle();
    metrics::describe_counter!("http_requests_total", "REST requests answered, by route template, method and status");
    metrics::describe_histogram!(
        "http_request_duration_seconds",
        metrics::Unit::Seconds,
        "REST request latency, by route template, method and status"
    );
    metrics::describe_gauge!("http_requests_in_flight", "REST requests being served");
    metrics::describe_counter!(
        "grpc_requests_total",
        "gRPC calls answered on the gRPC listener, by RPC and status code"
    );
    metrics::describe_histogram!(
        "grpc_request_duration_seconds",
        metrics::Unit::Seconds,
        "gRPC call latency, by RPC and status code"
    );
    metrics::describe_gauge!("grpc_requests_in_flight", "gRPC calls being served on the gRPC listener");
    metrics::describe_histogram!(
        "store_operation_duration_seconds",
        metrics::Unit::Seconds,
        "store call latency, by backend, operation and outcome"
    );
    metrics::describe_counter!(
        "store_operation_errors_total",
        "store calls that failed, by backend, operation and error"
    );
    metrics::describe_gauge!("connections_open", "connections open, all listeners together");
    metrics::describe_counter!("connections_shed_total", "connections closed by the connection cap, by reason");
    metrics::describe_gauge!("candidates_draining", "1 while draining after SIGTERM (health checks fail), else 0");
    metrics::describe_gauge!("candidates_build_info", "always 1; the labels tell the version, git commit and store");
    metrics::gauge!(
        "candidates_build_info",
        "version" => env!("CARGO_PKG_VERSION"),
        "git_commit" => env!("CANDIDATES_GIT_COMMIT"),
        "store" => store,
    )
    .set(1.0);
    metrics::gauge!("candidates_draining").set(0.0);
}

/// `GET /metrics`: the Prometheus text format.
pub async fn render() -> Response {
    let handle = handle();
    handle.run_upkeep();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render()).into_response()
}

/// Every RPC the gRPC listener serves, as `/package.Service/Method`: the `rpc` label takes one of
/// these or `other`, so clients cannot add series by sending made-up paths. Read once from the
/// services' descriptors, so a new RPC needs no change here.
#[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
pub fn known_rpcs() -> &'static [&'static str] {
    static KNOWN: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
        let mut paths = Vec::new();
        for set in [candidates_api::FILE_DESCRIPTOR_SET, tonic_health::pb::FILE_DESCRIPTOR_SET] {
            let pool = prost_reflect::DescriptorPool::decode(set).expect("the compiled descriptor sets decode");
            for service in pool.services() {
                for method in service.methods() {
                    // Leaked once: a handful of strings for the life of the process.
                    paths.push(&*format!("/{}/{}", service.full_name(), method.name()).leak());
                }
            }
        }
        // tonic-reflection's services (v1 and v1alpha), whose descriptors it keeps to itself.
        paths.push("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo");
        paths.push("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo");
        paths
    });
    &KNOWN
}

/// The bounded `rpc` label (and log field) for a request path.
pub fn rpc_label(path: &str) -> &'static str {
    known_rpcs().iter().find(|rpc| **rpc == path).copied().unwrap_or("other")
}

/// gRPC status codes as labels, `0` to `16`; anything else is `other`.
const CODES: [&str; 17] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16"];

/// One (RPC, code) pair's series.
struct GrpcSeries {
    total: metrics::Counter,
    duration: metrics::Histogram,
}

/// The gRPC listener's series, one slot per (RPC or `other`, code or `other`), each registered on
/// its first call, so /metrics shows the same series as before: looking them up by labels on every
/// call (a label vector, a hash, the registry's lock, twice) was 2 % of a call's CPU in
/// `bench/profile.sh grpc`.
#[allow(clippy::type_complexity, reason = "a table of lazily registered handles")]
static GRPC_SERIES: std::sync::LazyLock<Vec<[OnceLock<GrpcSeries>; CODES.len() + 1]>> =
    std::sync::LazyLock::new(|| (0..=known_rpcs().len()).map(|_| Default::default()).collect());

/// Counts and times one call on the gRPC listener by RPC and status code.
pub fn record_grpc(rpc: &'static str, response: &Response, latency: std::time::Duration) {
    let code = crate::grpc::status_code(response);
    // Known RPCs first, `other` last; codes likewise.
    let rpc_slot = known_rpcs().iter().position(|known| *known == rpc).unwrap_or(known_rpcs().len());
    let code_slot = CODES.iter().position(|c| *c == code).unwrap_or(CODES.len());
    let series = GRPC_SERIES[rpc_slot][code_slot].get_or_init(|| {
        handle(); // the recorder is installed before a handle is kept
        let labels = [("rpc", rpc), ("code", CODES.get(code_slot).copied().unwrap_or("other"))];
        GrpcSeries {
            total: metrics::counter!("grpc_requests_total", &labels),
            duration: metrics::histogram!("grpc_request_duration_seconds", &labels),
        }
    });
    series.total.increment(1);
    series.duration.record(latency.as_secs_f64());
}

/// The gRPC listener's in-flight gauge, registered once (the recorder installed first).
pub fn grpc_in_flight() -> metrics::Gauge {
    static GAUGE: std::sync::LazyLock<metrics::Gauge> = std::sync::LazyLock::new(|| {
        handle();
        metrics::gauge!("grpc_requests_in_flight")
    });
    GAUGE.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_reflect::DescriptorPool;

    #[test]
    fn grpc_series_are_registered_on_first_use_with_their_labels() {
        let rpc = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";
        let line = format!("grpc_requests_total{{rpc=\"{rpc}\",code=\"other\"}}");
        let count = || {
            handle()
                .render()
                .lines()
                .find_map(|l| l.strip_prefix(&line).map(|v| v.trim().parse::<u64>().unwrap()))
                .unwrap_or(0)
        };
        let response =
            || axum::http::Response::builder().header("grpc-status", "99").body(axum::body::Body::empty()).unwrap();
        let before = count();
        record_grpc(rpc, &response(), std::time::Duration::from_millis(1));
        record_grpc(rpc, &response(), std::time::Duration::from_millis(1));
        assert_eq!(count(), before + 2, "a status outside 0-16 is counted as `other`, once per call");
        assert!(
            handle().render().contains(&format!("grpc_request_duration_seconds_count{{rpc=\"{rpc}\",code=\"other\"}}"))
        );
    }

    #[test]
    fn known_rpcs_are_exactly_the_served_methods() {
        let mut served = Vec::new();
        for set in [candidates_api::FILE_DESCRIPTOR_SET, tonic_health::pb::FILE_DESCRIPTOR_SET] {
            let pool = DescriptorPool::decode(set).unwrap();
            for service in pool.services() {
                for method in service.methods() {
                    served.push(format!("/{}/{}", service.full_name(), method.name()));
                }
            }
        }
        // Reflection (v1 and v1alpha) has one method each, served by tonic-reflection.
        served.push("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo".into());
        served.push("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo".into());
        served.sort();
        let mut known: Vec<String> = known_rpcs().iter().map(|s| s.to_string()).collect();
        known.sort();
        assert_eq!(known, served);
        assert!(known.contains(&"/candidates.v1.CandidateService/GetCandidate".to_owned()));
        assert_eq!(rpc_label("/candidates.v1.CandidateService/Nope"), "other");
        assert_eq!(rpc_label("/grpc.x/y"), "other");
    }
}
