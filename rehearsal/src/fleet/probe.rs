//! What the store stall is measured with, besides the load itself: a GET through the load balancer
//! every 100 ms (when did requests succeed again after SIGCONT?) and `/gtg?details` on every
//! instance every 250 ms, straight to the instance (does it say the store is gone?).

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    time::{Duration, Instant},
};

use serde::Serialize;

/// One probe: when it was sent (seconds from the start of the run) and what came back.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub t: f64,
    pub ok: bool,
    /// HTTP status, or `timeout` / `error`.
    pub status: String,
    pub ms: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StallProbes {
    /// GETs through the load balancer.
    pub lb_get: Vec<Probe>,
    /// `/gtg?details` per instance.
    pub details: BTreeMap<String, Vec<Probe>>,
}

async fn probe(http: &reqwest::Client, url: &str, started: Instant) -> Probe {
    let at = Instant::now();
    let t = at.duration_since(started).as_secs_f64();
    let (ok, status) = match http.get(url).send().await {
        Ok(r) => (r.status().is_success(), r.status().as_u16().to_string()),
        Err(e) if e.is_timeout() => (false, "timeout".into()),
        Err(_) => (false, "error".into()),
    };
    Probe { t, ok, status, ms: at.elapsed().as_secs_f64() * 1e3 }
}

/// Probes until `until`; `timeout` bounds each probe.
#[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
pub async fn run(
    lb_get_url: String,
    instances: Vec<(String, SocketAddr)>,
    started: Instant,
    until: Instant,
    timeout: Duration,
) -> StallProbes {
    let http = reqwest::Client::builder().timeout(timeout).no_proxy().build().expect("HTTP client builds");
    let lb = {
        let http = http.clone();
        tokio::spawn(async move {
            let mut out = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut running = tokio::task::JoinSet::new();
            while Instant::now() < until {
                tick.tick().await;
                let (http, url) = (http.clone(), lb_get_url.clone());
                // Each probe on its own task: a stalled one must not delay the next.
                running.spawn(async move { probe(&http, &url, started).await });
            }
            while let Some(p) = running.join_next().await {
                out.extend(p.ok());
            }
            out.sort_by(|a, b| a.t.total_cmp(&b.t));
            out
        })
    };
    let mut details = tokio::task::JoinSet::new();
    for (name, addr) in instances {
        let http = http.clone();
        details.spawn(async move {
            let url = format!("http://{addr}/gtg?details");
            let mut out = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            while Instant::now() < until {
                tick.tick().await;
                out.push(probe(&http, &url, started).await);
            }
            (name, out)
        });
    }
    let mut result = StallProbes { lb_get: lb.await.unwrap_or_default(), ..Default::default() };
    while let Some(Ok((name, probes))) = details.join_next().await {
        result.details.insert(name, probes);
    }
    result
}

impl StallProbes {
    /// Seconds from `resumed` until the GETs through the load balancer succeeded and kept
    /// succeeding; None if they never did.
    pub fn recovery(&self, resumed: f64) -> Option<f64> {
        let after: Vec<&Probe> = self.lb_get.iter().filter(|p| p.t >= resumed).collect();
        let last_failure = after.iter().rposition(|p| !p.ok);
        match last_failure {
            None => after.first().map(|_| 0.0),
            Some(i) if i + 1 < after.len() => Some(after[i + 1].t - resumed),
            Some(_) => None,
        }
    }

    /// Whether any instance answered `/gtg?details` with 503 between `from` and `to`.
    pub fn details_503(&self, from: f64, to: f64) -> bool {
        self.details.values().flatten().any(|p| p.t >= from && p.t < to && p.status == "503")
    }

    /// What `/gtg?details` answered during [from, to): status → count.
    pub fn details_statuses(&self, from: f64, to: f64) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for p in self.details.values().flatten().filter(|p| p.t >= from && p.t < to) {
            *out.entry(p.status.clone()).or_default() += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: f64, ok: bool) -> Probe {
        Probe { t, ok, status: if ok { "200" } else { "503" }.into(), ms: 1.0 }
    }

    #[test]
    fn recovery_is_from_resume_to_the_first_of_the_lasting_successes() {
        let probes = StallProbes {
            lb_get: vec![p(1.0, false), p(5.0, false), p(5.5, true), p(6.0, false), p(6.5, true), p(7.0, true)],
            ..Default::default()
        };
        assert_eq!(probes.recovery(5.0), Some(1.5));
        assert_eq!(probes.recovery(6.8), Some(0.0));
        let never = StallProbes { lb_get: vec![p(5.0, true), p(6.0, false)], ..Default::default() };
        assert_eq!(never.recovery(5.0), None);
    }
}
