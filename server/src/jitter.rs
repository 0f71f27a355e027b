//! Jitter for retries, reconnects and connection ages: spreading callers only needs values that
//! differ between them, not unpredictable ones, so a fast thread-local generator (fastrand, the
//! same one request ids use) rather than the system's random source.

/// A fraction in [0, 1).
pub fn fraction() -> f64 {
    fastrand::f64()
}

#[cfg(test)]
mod tests {
    #[test]
    fn stays_in_range_and_varies() {
        let values: Vec<f64> = (0..1000).map(|_| super::fraction()).collect();
        assert!(values.iter().all(|f| (0.0..1.0).contains(f)));
        // Calls made back to back differ (clock low bits could repeat within a microsecond).
        assert!(values.windows(2).filter(|w| w[0] == w[1]).count() < 5);
    }
}
