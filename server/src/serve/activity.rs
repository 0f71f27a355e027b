//! What one connection is doing, for its timeouts: requests in flight (from request head to the
//! end of the response body), when that last changed, and whether an HTTP/1 request head is being
//! read. Reads are observed through [`Watched`], requests through [`InFlightGuard`].

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::Notify,
};

/// The HTTP/2 connection preface starts with this; such connections have no request heads to time.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// What the connection task should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Due {
    /// Nothing yet: look again at this instant (or earlier, when notified).
    At(Instant),
    /// A request head has taken longer than the header-read timeout: drop the connection.
    HeadTimeout,
    /// No request for the idle timeout: close gracefully.
    Idle,
    /// The peer has not taken any of our bytes for the send timeout: drop the connection.
    WriteStalled,
}

/// The timeouts `Activity::due` applies.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header_read: Duration,
    pub idle: Duration,
    pub send: Duration,
}

#[derive(Debug)]
pub struct Activity {
    started: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds since `started` of the last request start or end.
    last: AtomicU64,
    /// Milliseconds since `started` + 1 when the bytes of a request head began to arrive with no
    /// request in flight (HTTP/1 only); 0 when no head is being read.
    head_since: AtomicU64,
    /// Milliseconds since `started` + 1 since when a write has been blocked (the peer's receive
    /// window or socket buffer is full); 0 when writes go through.
    blocked_since: AtomicU64,
    http2: AtomicBool,
    first_read: AtomicBool,
    /// Wakes the connection task when a head starts, so its timer is re-armed.
    pub changed: Notify,
}

impl Activity {
    /// A new connection: its first request head is due within the header-read timeout of accept.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last: AtomicU64::new(0),
            head_since: AtomicU64::new(1),
            blocked_since: AtomicU64::new(0),
            http2: AtomicBool::new(false),
            first_read: AtomicBool::new(true),
            changed: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn at(&self, ms: u64) -> Instant {
        self.started + Duration::from_millis(ms)
    }

    /// What is due now.
    pub fn due(&self, timeouts: Timeouts) -> Due {
        let Timeouts { header_read: header_read_timeout, idle: idle_timeout, send: send_timeout } = timeouts;
        let now = Instant::now();
        let blocked_since = self.blocked_since.load(Ordering::Acquire);
        if blocked_since != 0 {
            let deadline = self.at(blocked_since - 1) + send_timeout;
            return if deadline <= now { Due::WriteStalled } else { Due::At(deadline) };
        }
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Due::At(now + idle_timeout);
        }
        let head_since = self.head_since.load(Ordering::Acquire);
        if head_since != 0 && !self.http2.load(Ordering::Relaxed) {
            let deadline = self.at(head_since - 1) + header_read_timeout;
            return if deadline <= now { Due::HeadTimeout } else { Due::At(deadline) };
        }
        let deadline = self.at(self.last.load(Ordering::Acquire)) + idle_timeout;
        if deadline <= now { Due::Idle } else { Due::At(deadline) }
    }

    /// Since when the connection has had no request in flight (its last request's end, or its
    /// accept), or `None` while it serves one: the order in which the connection cap sheds.
    pub fn idle_since(&self) -> Option<Instant> {
        (self.in_flight.load(Ordering::Acquire) == 0).then(|| self.at(self.last.load(Ordering::Acquire)))
    }

    fn on_write(&self, blocked: bool) {
        if blocked {
            if self.blocked_since.load(Ordering::Acquire) == 0 {
                self.blocked_since.store(self.now_ms() + 1, Ordering::Release);
                self.changed.notify_one();
            }
        } else if self.blocked_since.load(Ordering::Relaxed) != 0 {
            self.blocked_since.store(0, Ordering::Release);
        }
    }

    fn on_read(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.first_read.swap(false, Ordering::Relaxed) && bytes.starts_with(H2_PREFACE) {
            self.http2.store(true, Ordering::Relaxed);
            // No head clock from here on: the task re-arms its timer for the idle timeout.
            self.changed.notify_one();
        }
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_since.load(Ordering::Acquire) == 0
            && !self.http2.load(Ordering::Relaxed)
        {
            self.head_since.store(self.now_ms() + 1, Ordering::Release);
            self.changed.notify_one();
        }
    }
}

/// Counts a request from its head until its response body is finished or dropped.
pub struct InFlightGuard(Arc<Activity>);

impl InFlightGuard {
    pub fn new(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.head_since.store(0, Ordering::Release);
        activity.last.store(activity.now_ms(), Ordering::Release);
        Self(activity)
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.last.store(self.0.now_ms(), Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_one();
    }
}

/// The connection's socket, reporting the bytes it reads to the activity.
pub struct Watched<T> {
    pub inner: T,
    pub activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            self.activity.on_read(&buf.filled()[before..]);
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.activity.on_write(result.is_pending());
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.activity.on_write(result.is_pending());
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(60);
    const SEND: Duration = Duration::from_secs(10);

    fn t(header_read: Duration, idle: Duration) -> Timeouts {
        Timeouts { header_read, idle, send: SEND }
    }

    #[test]
    fn a_blocked_writer_is_dropped_after_the_send_timeout() {
        let activity = Arc::new(Activity::new());
        let _guard = InFlightGuard::new(Arc::clone(&activity));
        activity.on_write(true);
        assert!(matches!(activity.due(t(HEAD, IDLE)), Due::At(_)));
        assert_eq!(activity.due(Timeouts { send: Duration::ZERO, ..t(HEAD, IDLE) }), Due::WriteStalled);
        activity.on_write(false);
        assert!(matches!(activity.due(Timeouts { send: Duration::ZERO, ..t(HEAD, IDLE) }), Due::At(_)));
    }

    #[test]
    fn a_new_connection_owes_a_request_head() {
        let activity = Activity::new();
        assert!(matches!(activity.due(t(HEAD, IDLE)), Due::At(t) if t <= Instant::now() + HEAD));
        assert_eq!(activity.due(t(Duration::ZERO, IDLE)), Due::HeadTimeout);
    }

    #[test]
    fn a_request_in_flight_is_never_timed_out_and_idle_counts_from_its_end() {
        let activity = Arc::new(Activity::new());
        let guard = InFlightGuard::new(Arc::clone(&activity));
        assert!(matches!(activity.due(t(Duration::ZERO, Duration::ZERO)), Due::At(_)));
        drop(guard);
        assert_eq!(activity.due(t(Duration::ZERO, Duration::ZERO)), Due::Idle);
        assert!(matches!(activity.due(t(HEAD, IDLE)), Due::At(_)));
        // The next head's first bytes start the header-read clock again.
        activity.on_read(b"GET / HTTP/1.1\r\n");
        assert_eq!(activity.due(t(Duration::ZERO, IDLE)), Due::HeadTimeout);
    }

    #[test]
    fn http2_connections_have_no_head_clock() {
        let activity = Activity::new();
        activity.on_read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        assert!(matches!(activity.due(t(Duration::ZERO, IDLE)), Due::At(_)));
        assert_eq!(activity.due(t(Duration::ZERO, Duration::ZERO)), Due::Idle);
    }
}
