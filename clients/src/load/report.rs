//! What a load run measured: counts, errors by status, an HDR latency histogram.

use std::{collections::BTreeMap, time::Duration};

use hdrhistogram::Histogram;
use serde_json::json;

use super::Timeline;
use crate::output;

/// Latency is recorded in microseconds, 1 µs to 5 minutes, 3 significant digits.
#[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 300_000_000, 3).expect("valid histogram bounds")
}

#[derive(Debug)]
pub struct Report {
    pub protocol: &'static str,
    /// `closed (c=16)`, `open (500/s, ramp up 1m)` ...
    pub mode: String,
    /// What was done before the run (names put first, or why not).
    pub setup: String,
    pub elapsed: Duration,
    /// Requests sent; every one is either ok or an error when the run ends.
    pub sent: u64,
    pub ok: u64,
    /// Errors by status (HTTP status, gRPC code, or `cannot_connect`, `timed_out` ...).
    pub errors: BTreeMap<String, u64>,
    /// Latency of every completed request (ok or not), µs. Open loop: from the intended send time.
    pub latency: Histogram<u64>,
    /// Requests per operation.
    pub by_op: BTreeMap<&'static str, u64>,
    /// Open loop: the rate asked for (after the ramp).
    pub target_rate: Option<f64>,
    /// One row per second.
    pub timeline: Timeline,
}

impl Report {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn throughput(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency at quantile `q`, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1e3
    }

    pub fn failed_threshold(&self, max_error_rate: f64) -> bool {
        self.sent == 0 || (self.error_count() as f64 / self.sent as f64) > max_error_rate
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "protocol": self.protocol,
            "mode": self.mode,
            "setup": self.setup,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "sent": self.sent,
            "ok": self.ok,
            "errors": self.errors,
            "by_op": self.by_op,
            "target_rate": self.target_rate,
            "throughput_rps": self.throughput(),
            "latency_ms": {
                "count": self.latency.len(),
                "min": self.latency.min() as f64 / 1e3,
                "p50": self.quantile_ms(0.5),
                "p90": self.quantile_ms(0.9),
                "p99": self.quantile_ms(0.99),
                "p99_9": self.quantile_ms(0.999),
                "max": self.latency.max() as f64 / 1e3,
                "mean": self.latency.mean() / 1e3,
            },
            "timeline": self.timeline.rows(),
        })
    }

    pub fn render(&self) -> String {
        let mut rows = vec![
            ["protocol".to_owned(), self.protocol.to_owned()],
            ["mode".to_owned(), self.mode.clone()],
            ["setup".to_owned(), self.setup.clone()],
            ["elapsed".to_owned(), format!("{:.2} s", self.elapsed.as_secs_f64())],
            ["sent".to_owned(), self.sent.to_string()],
            ["ok".to_owned(), self.ok.to_string()],
            ["errors".to_owned(), self.error_count().to_string()],
            ["throughput".to_owned(), format!("{:.0} req/s", self.throughput())],
        ];
        if let Some(rate) = self.target_rate {
            rows.push(["target rate".to_owned(), format!("{rate:.0} req/s")]);
        }
        for (label, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)] {
            rows.push([format!("latency {label}"), format!("{:.3} ms", self.quantile_ms(q))]);
        }
        rows.push(["latency max".to_owned(), format!("{:.3} ms", self.latency.max() as f64 / 1e3)]);
        for (op, n) in &self.by_op {
            rows.push([format!("op {op}"), n.to_string()]);
        }
        for (status, n) in &self.errors {
            rows.push([format!("error {status}"), n.to_string()]);
        }
        output::table(&["", "value"], rows).to_string()
    }
}
