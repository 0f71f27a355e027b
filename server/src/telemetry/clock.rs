//! The log lines' timestamp: RFC 3339 in UTC with microseconds, as tracing-subscriber's default
//! writes it, but with the part up to the second formatted once a second per thread (nginx caches
//! its time strings the same way). Formatting the whole date for each request line was a sixth of
//! the line's cost in bench/profile.sh.

use std::{
    cell::RefCell,
    fmt::{self, Write},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tracing_subscriber::fmt::{format::Writer, time::FormatTime};

#[derive(Debug, Clone, Copy, Default)]
pub struct CachedUtc;

thread_local! {
    /// The second last formatted and its text without the `Z`: `2026-12-02T02:04:57`.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

impl FormatTime for CachedUtc {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        format_at(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default(), w)
    }
}

#[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
fn format_at(since_epoch: Duration, w: &mut impl Write) -> fmt::Result {
    let (seconds, micros) = (since_epoch.as_secs(), since_epoch.subsec_micros());
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != seconds {
            let text = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(seconds)).to_string();
            *cached = (seconds, text.trim_end_matches('Z').to_owned());
        }
        w.write_str(&cached.1)
    })?;
    let mut fraction = *b".000000Z";
    let mut rest = micros;
    for digit in fraction[1..7].iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    w.write_str(std::str::from_utf8(&fraction).expect("ASCII digits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_text_as_the_uncached_format() {
        let samples = [0, 951_782_400_000_001, 1_764_640_000_123_456, 1_764_640_000_999_999, 1_764_640_001_000_000];
        for micros in samples.into_iter().chain((0..2000).map(|i| 1_764_640_000_000_000 + i * 777_777)) {
            let at = Duration::from_micros(micros);
            let mut ours = String::new();
            format_at(at, &mut ours).unwrap();
            let expected = humantime::format_rfc3339_micros(UNIX_EPOCH + at).to_string();
            assert_eq!(ours, expected, "{micros}");
        }
    }
}
