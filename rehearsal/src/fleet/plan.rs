//! The scenarios and the load they run under, planned up front: one open-loop rate profile for
//! the whole run (REST and gRPC share it) and, per phase, its time window and what happens in it.

use std::{fmt, str::FromStr, time::Duration};

use candidates_clients::load::{Profile, Segment};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Load rises above the target (scale-out), then falls (scale-in).
    Scale,
    /// Every instance replaced with the next binary, new ones first.
    Rolling,
    /// SIGKILL of one instance; the load balancer ejects it, autohealing replaces it.
    Kill,
    /// The store stops (SIGSTOP) for a few seconds, then continues (SIGCONT).
    Stall,
}

impl Scenario {
    pub const ALL: [Scenario; 4] = [Scenario::Scale, Scenario::Rolling, Scenario::Kill, Scenario::Stall];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Scale => "scale",
            Scenario::Rolling => "rolling",
            Scenario::Kill => "kill",
            Scenario::Stall => "stall",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::ALL
            .into_iter()
            .find(|x| x.name() == s.trim())
            .ok_or_else(|| format!("unknown scenario {s:?} (scale, rolling, kill, stall)"))
    }
}

/// What shapes the plan (all rates are the total of REST and gRPC).
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// The time factor: phase lengths scale with it like the health checks do.
    pub factor: f64,
    pub low: f64,
    pub high: f64,
    /// The steady rate of the rolling, kill and stall phases.
    pub steady: f64,
    pub stall: Duration,
    /// Scale-in waits this long under target; the scale phase's tail must cover it.
    pub scale_in_after: Duration,
    /// Drain period + grace: the tail of a phase in which instances finish leaving.
    pub drain: Duration,
}

#[derive(Debug, Clone)]
pub struct Phase {
    pub scenario: Scenario,
    /// Seconds from the start of the load.
    pub start: f64,
    pub end: f64,
    /// Scale: when the hold at the high rate starts and ends.
    pub hold: Option<(f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub phases: Vec<Phase>,
    /// The total rate over the whole run.
    pub profile: Profile,
}

impl Plan {
    pub fn new(scenarios: &[Scenario], shape: Shape) -> Self {
        // Phase lengths at factor 1 (the clouds' time scale), scaled like everything else.
        let s = |secs: f64| (secs * shape.factor).max(1.0);
        let mut segments = Vec::new();
        let mut phases = Vec::new();
        let mut t = 0.0;
        let push = |segments: &mut Vec<Segment>, secs: f64, from: f64, to: f64| {
            segments.push(Segment { secs, from, to });
            secs
        };
        let mut sorted = scenarios.to_vec();
        sorted.sort();
        sorted.dedup();
        for scenario in sorted {
            let start = t;
            let mut hold = None;
            match scenario {
                Scenario::Scale => {
                    t += push(&mut segments, s(60.0), shape.low, shape.low);
                    t += push(&mut segments, s(200.0), shape.low, shape.high);
                    let held = s(250.0);
                    hold = Some((t, t + held));
                    t += push(&mut segments, held, shape.high, shape.high);
                    t += push(&mut segments, s(100.0), shape.high, shape.low);
                    // Low long enough for the scale-in wait, the drain and a margin.
                    let tail = shape.scale_in_after.as_secs_f64() + shape.drain.as_secs_f64() + s(100.0);
                    t += push(&mut segments, tail, shape.low, shape.low);
                }
                Scenario::Rolling => {
                    // Capacity raised first (admission + warm-up), then per instance: admission +
                    // warm-up of the new one; then the last drain, and a margin.
                    t += push(&mut segments, s(500.0), shape.steady, shape.steady);
                }
                Scenario::Kill => {
                    t += push(&mut segments, s(150.0), shape.steady, shape.steady);
                }
                Scenario::Stall => {
                    t += push(&mut segments, 2.0 + shape.stall.as_secs_f64() + 8.0, shape.steady, shape.steady);
                }
            }
            phases.push(Phase { scenario, start, end: t, hold });
        }
        Self { phases, profile: Profile { segments } }
    }

    pub fn length(&self) -> f64 {
        self.phases.last().map_or(0.0, |p| p.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(factor: f64) -> Shape {
        Shape {
            factor,
            low: 40.0,
            high: 200.0,
            steady: 120.0,
            stall: Duration::from_secs(3),
            scale_in_after: Duration::from_secs_f64(300.0 * factor),
            drain: Duration::from_secs_f64(35.0 * factor),
        }
    }

    #[test]
    fn phases_follow_each_other_and_the_profile_covers_them() {
        let plan = Plan::new(&Scenario::ALL, shape(0.05));
        assert_eq!(plan.phases.iter().map(|p| p.scenario).collect::<Vec<_>>(), Scenario::ALL);
        for pair in plan.phases.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
        }
        assert!((plan.profile.length() - plan.length()).abs() < 1e-9);
        assert_eq!(plan.profile.peak(), 200.0);
        // The short version fits in two minutes with start-up.
        assert!(plan.length() <= 100.0, "{}", plan.length());
    }

    #[test]
    fn scenarios_parse_and_run_in_a_fixed_order() {
        let plan = Plan::new(&["stall".parse().unwrap(), "scale".parse().unwrap()], shape(0.1));
        assert_eq!(plan.phases[0].scenario, Scenario::Scale);
        assert!("fly".parse::<Scenario>().is_err());
    }
}
