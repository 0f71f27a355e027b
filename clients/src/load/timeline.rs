//! The per-second time series of a load run: requests offered (by intended send time), answered
//! ok (by completion time: the achieved rate), errors by status, and latency quantiles, one row
//! per second. Scale demos plot it against the instance count.

use std::{collections::BTreeMap, time::Duration};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Per-second histograms: 2 significant digits keep a long run's memory small (~10 KB a second).
#[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
fn second_histogram() -> Histogram<u32> {
    Histogram::new_with_bounds(1, 300_000_000, 2).expect("valid histogram bounds")
}

#[derive(Debug, Clone)]
struct Bucket {
    /// Requests whose intended send time falls in this second.
    offered: u64,
    /// Of those, how many failed, by status.
    errors: BTreeMap<String, u64>,
    /// Requests answered ok during this second (whenever they were sent).
    achieved: u64,
    /// Latency (µs) of the requests sent in this second.
    latency: Histogram<u32>,
}

impl Bucket {
    fn new() -> Self {
        Self { offered: 0, errors: BTreeMap::new(), achieved: 0, latency: second_histogram() }
    }
}

/// What a run looked like second by second; each load task keeps its own and they are merged.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    buckets: Vec<Bucket>,
}

/// One row of the timeline, as printed in JSON (and read back, e.g. by the rehearsal's chart;
/// missing fields default to zero).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
#[serde(default)]
pub struct Row {
    /// Seconds from the start of the run (this row covers [t, t+1)).
    pub t: u64,
    pub offered: u64,
    pub achieved: u64,
    pub errors: BTreeMap<String, u64>,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Hard bound on the seconds kept, whatever a caller passes (a day).
const MAX_SECONDS: usize = 86_400;

impl Timeline {
    fn bucket(&mut self, at: Duration) -> Option<&mut Bucket> {
        let second = at.as_secs() as usize;
        if second >= MAX_SECONDS {
            return None;
        }
        if self.buckets.len() <= second {
            self.buckets.resize_with(second + 1, Bucket::new);
        }
        Some(&mut self.buckets[second])
    }

    /// A request due at `sent` (from the start of the run) that took `latency`.
    pub fn record(&mut self, sent: Duration, latency: Duration, error: Option<&str>) {
        if let Some(b) = self.bucket(sent) {
            b.offered += 1;
            b.latency.saturating_record(latency.as_micros().max(1) as u64);
            if let Some(status) = error {
                *b.errors.entry(status.to_owned()).or_default() += 1;
            }
        }
        if error.is_none()
            && let Some(b) = self.bucket(sent + latency)
        {
            b.achieved += 1;
        }
    }

    /// Adds another timeline's counts, its error statuses prefixed (e.g. `rest `, `grpc `).
    #[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
    pub fn merge(&mut self, other: &Timeline, prefix: &str) {
        if self.buckets.len() < other.buckets.len() {
            self.buckets.resize_with(other.buckets.len(), Bucket::new);
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            mine.offered += theirs.offered;
            mine.achieved += theirs.achieved;
            mine.latency.add(&theirs.latency).expect("histograms have the same bounds");
            for (status, n) in &theirs.errors {
                *mine.errors.entry(format!("{prefix}{status}")).or_default() += n;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    pub fn rows(&self) -> Vec<Row> {
        let ms = |us: u64| us as f64 / 1e3;
        self.buckets
            .iter()
            .enumerate()
            .map(|(t, b)| {
                let empty = b.latency.is_empty();
                Row {
                    t: t as u64,
                    offered: b.offered,
                    achieved: b.achieved,
                    errors: b.errors.clone(),
                    p50_ms: if empty { 0.0 } else { ms(b.latency.value_at_quantile(0.5)) },
                    p99_ms: if empty { 0.0 } else { ms(b.latency.value_at_quantile(0.99)) },
                    max_ms: if empty { 0.0 } else { ms(b.latency.max()) },
                }
            })
            .collect()
    }

    /// Latency histogram (µs) and error counts over seconds [from, to).
    #[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
    pub fn window(&self, from: u64, to: u64) -> (Histogram<u32>, BTreeMap<String, u64>, u64) {
        let mut latency = second_histogram();
        let mut errors = BTreeMap::new();
        let mut offered = 0;
        for b in self.buckets.iter().skip(from as usize).take(to.saturating_sub(from) as usize) {
            latency.add(&b.latency).expect("same bounds");
            offered += b.offered;
            for (status, n) in &b.errors {
                *errors.entry(status.clone()).or_default() += n;
            }
        }
        (latency, errors, offered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_count_by_send_and_completion_second() {
        let mut t = Timeline::default();
        let ms = Duration::from_millis;
        t.record(ms(100), ms(10), None);
        t.record(ms(900), ms(300), None); // sent in second 0, answered in second 1
        t.record(ms(1500), ms(20), Some("503"));
        let rows = t.rows();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].offered, rows[0].achieved), (2, 1));
        assert_eq!((rows[1].offered, rows[1].achieved), (1, 1));
        assert_eq!(rows[1].errors.get("503"), Some(&1));
        assert!(rows[0].p99_ms >= 290.0 && rows[0].p50_ms < 20.0, "{:?}", rows[0]);

        let mut both = Timeline::default();
        both.merge(&t, "rest ");
        both.merge(&t, "grpc ");
        let rows = both.rows();
        assert_eq!(rows[0].offered, 4);
        assert_eq!(rows[1].errors.get("grpc 503"), Some(&1));
        let (latency, errors, offered) = both.window(0, 2);
        assert_eq!((latency.len(), errors.values().sum::<u64>(), offered), (6, 2, 6));
    }

    #[test]
    fn far_future_seconds_are_dropped_not_allocated() {
        let mut t = Timeline::default();
        t.record(Duration::from_secs(10 * 86_400), Duration::from_millis(1), None);
        assert!(t.is_empty());
    }
}
