//! Open-loop send times from a rate profile: linear segments (ramp up, hold, ramp down, or any
//! sequence of them). Latency is measured from these intended times, so a slow server cannot hide
//! its queueing (no coordinated omission).

use std::time::Duration;

/// One linear piece of the profile: the rate goes from `from` to `to` (requests/s) over `secs`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub secs: f64,
    pub from: f64,
    pub to: f64,
}

impl Segment {
    pub fn new(length: Duration, from: f64, to: f64) -> Self {
        Self { secs: length.as_secs_f64(), from, to }
    }

    /// Requests sent during the first `t` seconds of the segment: ∫ rate = a·t + (b−a)·t²/(2T).
    fn count_at(&self, t: f64) -> f64 {
        if self.secs.is_infinite() || self.from == self.to {
            return self.from * t;
        }
        self.from * t + (self.to - self.from) * t * t / (2.0 * self.secs)
    }

    fn total(&self) -> f64 {
        self.count_at(self.secs)
    }

    /// When, within the segment, the `n`-th request is due: solves k·t² + a·t = n with
    /// k = (b−a)/(2T), written as 2n / (a + √(a² + 4kn)) so that k = 0 and ramps down are stable.
    fn time_of(&self, n: f64) -> f64 {
        let k = if self.secs.is_infinite() { 0.0 } else { (self.to - self.from) / (2.0 * self.secs) };
        let root = (self.from * self.from + 4.0 * k * n).max(0.0).sqrt();
        if n == 0.0 { 0.0 } else { 2.0 * n / (self.from + root) }
    }

    fn rate_at(&self, t: f64) -> f64 {
        if self.secs.is_infinite() { self.from } else { self.from + (self.to - self.from) * t / self.secs }
    }
}

/// The rate over time; the run ends where the last segment ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub segments: Vec<Segment>,
}

impl Profile {
    /// What `candidatectl load` flags describe: ramp from 0 over `ramp_up`, hold, ramp back to 0
    /// over the last `ramp_down` of `total` (no `total`: hold until the request limit).
    pub fn ramp_hold_ramp(rate: f64, ramp_up: Duration, total: Option<Duration>, ramp_down: Duration) -> Self {
        let mut segments = Vec::new();
        if !ramp_up.is_zero() {
            segments.push(Segment::new(ramp_up, 0.0, rate));
        }
        match total {
            Some(total) => {
                let hold = total.saturating_sub(ramp_up).saturating_sub(ramp_down);
                segments.push(Segment::new(hold, rate, rate));
                if !ramp_down.is_zero() {
                    segments.push(Segment::new(ramp_down.min(total.saturating_sub(ramp_up)), rate, 0.0));
                }
            }
            None => segments.push(Segment { secs: f64::INFINITY, from: rate, to: rate }),
        }
        Self { segments }
    }

    /// When request `i` (from 0) is due, from the start of the run; `None` once the profile ends.
    pub fn offset(&self, i: u64) -> Option<Duration> {
        let mut n = i as f64;
        let mut start = 0.0;
        for segment in &self.segments {
            let total = segment.total();
            if n < total {
                return Some(Duration::from_secs_f64(start + segment.time_of(n)));
            }
            n -= total;
            start += segment.secs;
        }
        None
    }

    /// The intended rate at `at` from the start (0 after the end).
    pub fn rate_at(&self, at: Duration) -> f64 {
        let mut t = at.as_secs_f64();
        for segment in &self.segments {
            if t < segment.secs {
                return segment.rate_at(t);
            }
            t -= segment.secs;
        }
        0.0
    }

    /// How long the profile lasts (infinite if it holds until a request limit).
    pub fn length(&self) -> f64 {
        self.segments.iter().map(|s| s.secs).sum()
    }

    /// The highest rate anywhere in the profile.
    pub fn peak(&self) -> f64 {
        self.segments.iter().map(|s| s.from.max(s.to)).fold(0.0, f64::max)
    }

    /// The same shape at `factor` times the rate (e.g. the gRPC share of a mixed load).
    pub fn scaled(&self, factor: f64) -> Self {
        let segments =
            self.segments.iter().map(|s| Segment { secs: s.secs, from: s.from * factor, to: s.to * factor }).collect();
        Self { segments }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: Option<Duration>) -> f64 {
        d.expect("within the profile").as_secs_f64()
    }

    #[test]
    fn fixed_rate() {
        let p = Profile::ramp_hold_ramp(100.0, Duration::ZERO, Some(Duration::from_secs(3)), Duration::ZERO);
        assert_eq!(p.offset(0), Some(Duration::ZERO));
        assert!((secs(p.offset(100)) - 1.0).abs() < 1e-9);
        assert!((secs(p.offset(250)) - 2.5).abs() < 1e-9);
        assert_eq!(p.offset(300), None, "3 s at 100/s is 300 requests");
    }

    #[test]
    fn ramp_then_hold() {
        let p = Profile::ramp_hold_ramp(100.0, Duration::from_secs(10), None, Duration::ZERO);
        // 500 requests during a 10 s ramp to 100/s, then 100/s.
        assert!((secs(p.offset(500)) - 10.0).abs() < 1e-9);
        assert!((secs(p.offset(600)) - 11.0).abs() < 1e-9);
        // A quarter of the ramp's requests go out in the first half of it.
        assert!((secs(p.offset(125)) - 5.0).abs() < 1e-9);
        assert!(p.rate_at(Duration::from_secs(5)) == 50.0 && p.rate_at(Duration::from_secs(20)) == 100.0);
    }

    #[test]
    fn ramp_down_mirrors_ramp_up() {
        let p = Profile::ramp_hold_ramp(
            100.0,
            Duration::from_secs(10),
            Some(Duration::from_secs(30)),
            Duration::from_secs(10),
        );
        // 500 up + 1000 held + 500 down.
        assert!((secs(p.offset(1500)) - 20.0).abs() < 1e-9);
        // Three quarters of the ramp-down's requests go out in its first half.
        assert!((secs(p.offset(1875)) - 25.0).abs() < 1e-6, "{:?}", p.offset(1875));
        assert_eq!(p.offset(2000), None);
        assert!((p.rate_at(Duration::from_secs(25)) - 50.0).abs() < 1e-9);
        assert_eq!(p.rate_at(Duration::from_secs(31)), 0.0);
    }

    #[test]
    fn send_times_never_go_backwards() {
        let p = Profile {
            segments: vec![
                Segment::new(Duration::from_secs(3), 10.0, 200.0),
                Segment::new(Duration::from_secs(2), 200.0, 20.0),
                Segment::new(Duration::from_secs(2), 20.0, 20.0),
            ],
        };
        let mut last = Duration::ZERO;
        let mut i = 0;
        while let Some(at) = p.offset(i) {
            assert!(at >= last, "request {i} at {at:?} before {last:?}");
            last = at;
            i += 1;
        }
        let expected = (10.0 + 200.0) / 2.0 * 3.0 + (200.0 + 20.0) / 2.0 * 2.0 + 40.0;
        assert!((i as f64 - expected).abs() <= 1.0, "{i} requests, expected {expected}");
        assert_eq!(p.peak(), 200.0);
        assert!((p.scaled(0.5).peak() - 100.0).abs() < 1e-9);
    }
}
