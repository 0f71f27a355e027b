//! Target tracking, the way the clouds' autoscalers do it, as a pure decision function: the group
//! keeps a desired capacity; the metric is the load balancer's request rate per in-service
//! instance (ALBRequestCountPerTarget: requests / healthy targets), so the capacity that meets the
//! target is ⌈rate / target⌉. Scale-out is immediate but waits for the cooldown after the last
//! one and for new instances to warm up (their capacity counts, their metric does not yet);
//! scale-in only after the metric stayed under target for `scale_in_after`. Instances that are
//! draining are leaving: they count neither as capacity nor as candidates for another scale-in.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Requests per second per instance (the deployments' request-rate target).
    pub target: f64,
    pub min: usize,
    pub max: usize,
    pub warmup: Duration,
    pub cooldown: Duration,
    pub scale_in_after: Duration,
}

/// What the autoscaler sees at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    pub now: Instant,
    /// Requests per second through the load balancer (averaged over the metric period).
    pub rate: f64,
    /// Instances launched and not leaving (starting, warming up or in service).
    pub capacity: usize,
    /// Of those, still starting or warming up.
    pub warming: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Hold,
    /// Set the desired capacity to this (higher) value.
    ScaleOut(usize),
    /// Set the desired capacity to this (lower) value.
    ScaleIn(usize),
}

#[derive(Debug, Clone)]
pub struct Autoscaler {
    pub policy: Policy,
    last_scale_out: Option<Instant>,
    under_since: Option<Instant>,
}

impl Autoscaler {
    pub fn new(policy: Policy) -> Self {
        Self { policy, last_scale_out: None, under_since: None }
    }

    /// The capacity that meets the target for `rate`, within min/max.
    pub fn wanted(&self, rate: f64) -> usize {
        let p = &self.policy;
        let wanted = if p.target > 0.0 { (rate / p.target).ceil() as usize } else { p.min };
        wanted.clamp(p.min, p.max)
    }

    pub fn decide(&mut self, obs: Observation) -> Decision {
        let p = self.policy;
        let wanted = self.wanted(obs.rate);
        if wanted > obs.capacity {
            self.under_since = None;
            let cooling = self.last_scale_out.is_some_and(|at| obs.now.duration_since(at) < p.cooldown);
            // While new instances warm up their capacity is already counted: no second step for
            // the same rise in load.
            if cooling || obs.warming > 0 {
                return Decision::Hold;
            }
            self.last_scale_out = Some(obs.now);
            return Decision::ScaleOut(wanted);
        }
        if wanted < obs.capacity && obs.warming == 0 {
            let since = *self.under_since.get_or_insert(obs.now);
            if obs.now.duration_since(since) >= p.scale_in_after {
                self.under_since = None;
                return Decision::ScaleIn(wanted);
            }
            return Decision::Hold;
        }
        self.under_since = None;
        Decision::Hold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            target: 30.0,
            min: 2,
            max: 5,
            warmup: Duration::from_secs(6),
            cooldown: Duration::from_secs(6),
            scale_in_after: Duration::from_secs(30),
        }
    }

    fn at(start: Instant, secs: u64, rate: f64, capacity: usize, warming: usize) -> Observation {
        Observation { now: start + Duration::from_secs(secs), rate, capacity, warming }
    }

    #[test]
    fn scales_out_to_rate_over_target_within_min_max() {
        let a = Autoscaler::new(policy());
        assert_eq!(a.wanted(0.0), 2);
        assert_eq!(a.wanted(61.0), 3);
        assert_eq!(a.wanted(90.0), 3);
        assert_eq!(a.wanted(1e6), 5);
    }

    #[test]
    fn one_step_per_rise_then_cooldown_and_warmup() {
        let t0 = Instant::now();
        let mut a = Autoscaler::new(policy());
        assert_eq!(a.decide(at(t0, 0, 100.0, 2, 0)), Decision::ScaleOut(4));
        // Launched instances are warming: no further step, however high the rate.
        assert_eq!(a.decide(at(t0, 1, 140.0, 4, 2)), Decision::Hold);
        // Warm, but within the cooldown.
        assert_eq!(a.decide(at(t0, 3, 140.0, 4, 0)), Decision::Hold);
        assert_eq!(a.decide(at(t0, 7, 140.0, 4, 0)), Decision::ScaleOut(5));
    }

    #[test]
    fn scales_in_only_after_staying_under_target() {
        let t0 = Instant::now();
        let mut a = Autoscaler::new(policy());
        assert_eq!(a.decide(at(t0, 0, 20.0, 4, 0)), Decision::Hold);
        assert_eq!(a.decide(at(t0, 20, 20.0, 4, 0)), Decision::Hold);
        // A burst resets the clock.
        assert_eq!(a.decide(at(t0, 21, 119.0, 4, 0)), Decision::Hold);
        assert_eq!(a.decide(at(t0, 22, 20.0, 4, 0)), Decision::Hold);
        assert_eq!(a.decide(at(t0, 51, 20.0, 4, 0)), Decision::Hold);
        assert_eq!(a.decide(at(t0, 52, 20.0, 4, 0)), Decision::ScaleIn(2));
        // Never below min, whatever the rate.
        assert_eq!(a.decide(at(t0, 100, 0.0, 2, 0)), Decision::Hold);
    }

    #[test]
    fn below_min_scales_out_at_once() {
        let t0 = Instant::now();
        let mut a = Autoscaler::new(policy());
        assert_eq!(a.decide(at(t0, 0, 0.0, 1, 0)), Decision::ScaleOut(2));
    }
}
