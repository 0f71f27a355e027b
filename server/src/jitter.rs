//! Jitter from the clock's low bits: spreading retries and reconnects only needs values that
//! differ between callers and moments, not unpredictable ones, so no RNG is needed.

/// A fraction in [0, 1).
pub fn fraction() -> f64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    f64::from(nanos % 1_000_000) / 1_000_000.0
}

#[cfg(test)]
mod tests {
    #[test]
    fn stays_in_range() {
        for _ in 0..1000 {
            let f = super::fraction();
            assert!((0.0..1.0).contains(&f), "{f}");
        }
    }
}
