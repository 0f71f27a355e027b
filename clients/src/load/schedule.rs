//! Open-loop send times: a fixed rate, optionally ramped linearly from 0 over `ramp_up` then held.
//! Latency is measured from these intended times, so a slow server cannot hide its queueing
//! (no coordinated omission).

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Requests per second once ramped up.
    pub rate: f64,
    pub ramp_up: Duration,
}

impl Schedule {
    /// When request `i` (from 0) should be sent, from the start of the run.
    /// Ramp: rate(t) = rate·t/T, so N(t) = rate·t²/(2T) and t(i) = sqrt(2·T·i/rate); after the
    /// ramp, N(T) = rate·T/2 requests are out and the rest follow at the full rate.
    pub fn offset(&self, i: u64) -> Duration {
        let i = i as f64;
        let t = self.ramp_up.as_secs_f64();
        let during_ramp = self.rate * t / 2.0;
        let secs = if t > 0.0 && i < during_ramp {
            (2.0 * t * i / self.rate).sqrt()
        } else {
            t + (i - during_ramp.min(i)) / self.rate
        };
        Duration::from_secs_f64(secs)
    }

    /// The intended rate at time `at` (for the progress display).
    pub fn rate_at(&self, at: Duration) -> f64 {
        let t = self.ramp_up.as_secs_f64();
        if t > 0.0 && at.as_secs_f64() < t { self.rate * at.as_secs_f64() / t } else { self.rate }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_rate() {
        let s = Schedule { rate: 100.0, ramp_up: Duration::ZERO };
        assert_eq!(s.offset(0), Duration::ZERO);
        assert_eq!(s.offset(100), Duration::from_secs(1));
        assert_eq!(s.offset(250), Duration::from_millis(2500));
    }

    #[test]
    fn ramp_then_hold() {
        let s = Schedule { rate: 100.0, ramp_up: Duration::from_secs(10) };
        // 500 requests during a 10 s ramp to 100/s, then 100/s.
        assert!((s.offset(500).as_secs_f64() - 10.0).abs() < 1e-9);
        assert!((s.offset(600).as_secs_f64() - 11.0).abs() < 1e-9);
        // A quarter of the ramp's requests go out in the first half of it.
        assert!((s.offset(125).as_secs_f64() - 5.0).abs() < 1e-9);
        assert!(s.rate_at(Duration::from_secs(5)) == 50.0 && s.rate_at(Duration::from_secs(20)) == 100.0);
    }
}
