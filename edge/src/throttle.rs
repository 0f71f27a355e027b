//! Log lines that repeat per request (a store outage fails every request the same way) are
//! written once, then summarised: at most one line per [`Throttle`] per interval, with how many
//! were left out and the first and last of them. Without it a store outage under load wrote
//! ~4,700 identical warnings a second (157 MB in 2.5 minutes): the disk, the journal and whatever
//! ships logs pay for an outage the first line already reported.
//!
//! ```ignore
//! static UNAVAILABLE: Throttle = Throttle::new("store unavailable");
//! if UNAVAILABLE.admit(|| error.to_string()) {
//!     tracing::warn!(%error, "store unavailable");
//! }
//! ```

use std::{
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

/// At most one full line per throttle per this interval; the rest are counted.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// Longest first/last message kept for a summary (store errors can carry an SDK's whole chain).
const MAX_MESSAGE: usize = 512;

/// One kind of repeated line.
pub struct Throttle {
    what: &'static str,
    registered: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// When the last full line (or summary) was written.
    since: Option<Instant>,
    suppressed: u64,
    first: Option<String>,
    last: Option<String>,
}

/// Every throttle that has admitted a line, for [`flush_due`].
static ALL: Mutex<Vec<&'static Throttle>> = Mutex::new(Vec::new());

impl Throttle {
    pub const fn new(what: &'static str) -> Self {
        Self {
            what,
            registered: AtomicBool::new(false),
            state: Mutex::new(State { since: None, suppressed: 0, first: None, last: None }),
        }
    }

    /// Whether to write this occurrence in full now. If not, it is counted (with `describe()` as
    /// its message) for the summary line written when the interval has passed.
    pub fn admit(&'static self, describe: impl FnOnce() -> String) -> bool {
        self.admit_at(Instant::now(), describe)
    }

    fn admit_at(&'static self, now: Instant, describe: impl FnOnce() -> String) -> bool {
        if !self.registered.swap(true, Ordering::AcqRel) {
            ALL.lock().unwrap_or_else(PoisonError::into_inner).push(self);
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match state.since {
            Some(since) if now.duration_since(since) < INTERVAL => {
                state.suppressed += 1;
                let message = bounded(describe());
                if state.first.is_none() {
                    state.first = Some(message.clone());
                }
                state.last = Some(message);
                false
            }
            _ => {
                let summary = take_summary(&mut state, now);
                state.since = Some(now);
                drop(state);
                if let Some(summary) = summary {
                    summary.write(self.what);
                }
                true
            }
        }
    }

    /// Writes the summary of what was left out if the interval has passed since the last line, so
    /// that the tail of an outage is reported even when no further line comes.
    fn flush_at(&self, now: Instant) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.since.is_some_and(|since| now.duration_since(since) >= INTERVAL) && state.suppressed > 0 {
            let summary = take_summary(&mut state, now);
            state.since = Some(now);
            drop(state);
            if let Some(summary) = summary {
                summary.write(self.what);
            }
        }
    }

    /// Lines left out since the last full line (for tests and metrics).
    pub fn suppressed(&self) -> u64 {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).suppressed
    }
}

/// Writes the due summaries of every throttle: called periodically by the server's upkeep.
pub fn flush_due() {
    let now = Instant::now();
    let all = ALL.lock().unwrap_or_else(PoisonError::into_inner).clone();
    for throttle in all {
        throttle.flush_at(now);
    }
}

struct Summary {
    suppressed: u64,
    over: Duration,
    first: String,
    last: String,
}

impl Summary {
    fn write(&self, what: &'static str) {
        tracing::warn!(
            what,
            suppressed = self.suppressed,
            over_s = self.over.as_secs(),
            first = %self.first,
            last = %self.last,
            "repeated log lines summarised"
        );
    }
}

fn take_summary(state: &mut State, now: Instant) -> Option<Summary> {
    if state.suppressed == 0 {
        return None;
    }
    let summary = Summary {
        suppressed: state.suppressed,
        over: state.since.map_or(Duration::ZERO, |since| now.duration_since(since)),
        first: state.first.take().unwrap_or_default(),
        last: state.last.take().unwrap_or_default(),
    };
    state.suppressed = 0;
    Some(summary)
}

fn bounded(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_then_a_summary_with_the_count_and_the_first_and_last() {
        static T: Throttle = Throttle::new("test");
        let start = Instant::now();
        assert!(T.admit_at(start, || "e0".into()), "the first line is written");
        for i in 1..=1000 {
            assert!(!T.admit_at(start + Duration::from_millis(i), || format!("e{i}")));
        }
        assert_eq!(T.suppressed(), 1000);
        {
            let state = T.state.lock().unwrap();
            assert_eq!((state.first.as_deref(), state.last.as_deref()), (Some("e1"), Some("e1000")));
        }
        // Not yet due: nothing written, nothing reset.
        T.flush_at(start + INTERVAL / 2);
        assert_eq!(T.suppressed(), 1000);
        // Due: the summary goes out even though no new line came.
        T.flush_at(start + INTERVAL);
        assert_eq!(T.suppressed(), 0);
        // The next interval starts at the summary.
        assert!(!T.admit_at(start + INTERVAL + Duration::from_secs(1), || "later".into()));
        assert!(T.admit_at(start + INTERVAL * 2 + Duration::from_secs(1), || "much later".into()));
        assert_eq!(T.suppressed(), 0, "the summary was written with the line");
    }

    #[test]
    fn messages_are_bounded() {
        assert_eq!(bounded("é".repeat(600)).len(), MAX_MESSAGE);
    }
}
