//! What one connection is doing, for its timeouts: requests in flight (from request head to the
//! end of the response body), when that last changed, whether an HTTP/1 request head is being
//! read, and since when each response has waited for the transport to take its next frame. Reads
//! and writes are observed through [`Watched`], requests through [`InFlightGuard`], responses
//! through [`Sending`].
//!
//! Why responses are watched one by one: an HTTP/2 peer that grants no flow-control window never
//! blocks a socket write (its streams' DATA is simply never sent), so the socket-level send
//! timeout cannot see it, and each of its streams holds a concurrency permit until its body ends.
//! Six such connections of 200 streams once held every permit for good (attacker review).

use std::{
    io,
    pin::Pin,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::body::Body;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::Notify,
};

/// The HTTP/2 connection preface starts with this; such connections have no request heads to time.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// The shortest wait between two looks at a connection with requests in flight.
const MIN_RECHECK: Duration = Duration::from_millis(100);

/// What the connection task should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Due {
    /// Nothing yet: look again at this instant (or earlier, when notified).
    At(Instant),
    /// A request head has taken longer than the header-read timeout: drop the connection.
    HeadTimeout,
    /// No request for the idle timeout: close gracefully.
    Idle,
    /// The peer has not taken any of our bytes (a blocked socket write, or a response frame the
    /// transport has not asked for: HTTP/2 flow control) for the send timeout: drop the connection,
    /// which ends its streams and so releases what they hold.
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
    /// The responses being sent: each one's clock of waiting for the transport.
    sending: Mutex<Vec<Arc<AtomicU64>>>,
    /// Milliseconds since `started` from which a change cannot bring the connection's deadline
    /// before its armed timer (the timer's instant less the shortest timeout): such a change wakes
    /// nobody, and the timer, when it fires, looks again. `u64::MAX` while the timer is being
    /// re-armed or before it first is: every change wakes the task.
    quiet_from: AtomicU64,
    /// Wakes the connection task when a change may bring its deadline forward (a head starts on an
    /// idle connection, a response starts waiting for the transport, a write blocks).
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
            sending: Mutex::new(Vec::new()),
            quiet_from: AtomicU64::new(u64::MAX),
            changed: Notify::new(),
        }
    }

    /// Called by the connection task before it asks [`due`](Self::due) to re-arm its timer: until
    /// [`armed`](Self::armed), every change wakes it (a change made while `due` runs may be missed
    /// by it, and must not also be skipped here).
    pub fn rearming(&self) {
        self.quiet_from.store(u64::MAX, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// The connection task's timer fires at `at`; no deadline `due` gives after a change that calls
    /// [`wake`](Self::wake) is nearer than `shortest` (the least of the timeouts) from that change:
    /// each such change starts its clock then (a head, a request's end, a blocked write, a response
    /// waiting). The HTTP/2 preface, whose idle deadline counts from accept, always wakes.
    pub fn armed(&self, at: Instant, shortest: Duration) {
        let at_ms = at.saturating_duration_since(self.started).as_millis() as u64;
        self.quiet_from.store(at_ms.saturating_sub(shortest.as_millis() as u64), Ordering::SeqCst);
    }

    /// Wakes the connection task if the change just made (stored before this call) may bring its
    /// deadline before the armed timer. Keep-alive traffic on a busy connection wakes nobody: a
    /// wake-up is a second poll of the connection task per request (bench/profile.sh).
    fn wake(&self) {
        // Pairs with `rearming`'s: either the task's `due` sees this change, or this sees MAX.
        fence(Ordering::SeqCst);
        if self.now_ms() < self.quiet_from.load(Ordering::SeqCst) {
            self.changed.notify_one();
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
            // Looked at again within the send timeout: a response that starts waiting after
            // now is seen then, and one already waiting at its own deadline.
            return match self.waiting_since() {
                Some(since) if self.at(since) + send_timeout <= now => Due::WriteStalled,
                Some(since) => Due::At(self.at(since) + send_timeout),
                None => Due::At(now + send_timeout.clamp(MIN_RECHECK, idle_timeout.max(MIN_RECHECK))),
            };
        }
        let head_since = self.head_since.load(Ordering::Acquire);
        if head_since != 0 && !self.http2.load(Ordering::Relaxed) {
            let deadline = self.at(head_since - 1) + header_read_timeout;
            return if deadline <= now { Due::HeadTimeout } else { Due::At(deadline) };
        }
        let deadline = self.at(self.last.load(Ordering::Acquire)) + idle_timeout;
        if deadline <= now { Due::Idle } else { Due::At(deadline) }
    }

    /// Milliseconds since `started` since when the response that has waited longest for the
    /// transport has waited, if any is waiting.
    fn waiting_since(&self) -> Option<u64> {
        let sending = self.sending.lock().unwrap_or_else(PoisonError::into_inner);
        sending
            .iter()
            .map(|clock| clock.load(Ordering::Acquire))
            .filter(|&since| since != 0)
            .min()
            .map(|since| since - 1)
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
                self.wake();
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
            // No head clock from here on: the idle deadline, counted from accept, may be earlier
            // than the armed one (once per connection: always woken).
            self.http2.store(true, Ordering::Relaxed);
            self.changed.notify_one();
        }
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_since.load(Ordering::Acquire) == 0
            && !self.http2.load(Ordering::Relaxed)
        {
            self.head_since.store(self.now_ms() + 1, Ordering::Release);
            self.wake();
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
        self.0.wake();
    }
}

/// A response body being sent, with the clock of how long it has waited for the transport to ask
/// for its next frame. A body that is itself pending (a stream waiting for its next item, a health
/// watch with nothing new) is not waiting for the transport; one that has handed over a frame is,
/// until it is polled again.
///
/// HTTP/2 only: an HTTP/1 connection has one response at a time, written as fast as the socket takes
/// it, so a reader that stops blocks a write, which [`Watched`] sees; its responses carry no clock
/// (no allocation, lock or wake-up per request on the load balancers' keep-alive connections).
pub struct Sending {
    inner: Body,
    /// `None` on HTTP/1.
    clock: Option<Arc<AtomicU64>>,
    in_flight: InFlightGuard,
}

impl Sending {
    /// `inner`, counted as in flight (by `in_flight`) until it ends or is dropped, and on HTTP/2
    /// waiting for the transport from now (its first frame has not been asked for yet).
    pub fn wrap(inner: Body, in_flight: InFlightGuard) -> Body {
        if !in_flight.0.http2.load(Ordering::Relaxed) {
            return Body::new(Self { inner, clock: None, in_flight });
        }
        let activity = &in_flight.0;
        let clock = Arc::new(AtomicU64::new(activity.now_ms() + 1));
        let first = {
            let mut sending = activity.sending.lock().unwrap_or_else(PoisonError::into_inner);
            sending.push(Arc::clone(&clock));
            sending.len() == 1
        };
        if first {
            // The connection's timer may be set for its idle timeout: bring it within the send
            // timeout. (Later responses find it there: it is re-armed from `due` while any is.)
            activity.wake();
        }
        Body::new(Self { inner, clock: Some(clock), in_flight })
    }
}

impl HttpBody for Sending {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Some(clock) = &self.clock {
            let waiting = match &polled {
                // The transport asked and we have nothing yet: the producer is the one waited for.
                Poll::Pending | Poll::Ready(None) => 0,
                // A frame handed over: the transport is the one waited for until it asks again.
                Poll::Ready(Some(_)) => self.in_flight.0.now_ms() + 1,
            };
            clock.store(waiting, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Sending {
    fn drop(&mut self) {
        let Some(clock) = &self.clock else { return };
        let mut sending = self.in_flight.0.sending.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = sending.iter().position(|c| Arc::ptr_eq(c, clock)) {
            sending.swap_remove(at);
        }
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

    const ZERO_SEND: fn() -> Timeouts = || Timeouts { send: Duration::ZERO, ..t(HEAD, IDLE) };

    fn poll(body: &mut Body) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let waker = futures::task::noop_waker();
        Pin::new(body).poll_frame(&mut Context::from_waker(&waker))
    }

    /// An HTTP/2 peer that grants no window never blocks a write: the response's frame is simply
    /// never asked for. That is a stalled writer all the same.
    fn http2() -> Arc<Activity> {
        let activity = Arc::new(Activity::new());
        activity.on_read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        activity
    }

    #[test]
    fn a_response_the_transport_never_asks_for_is_a_stalled_writer() {
        let activity = http2();
        let mut body = Sending::wrap(Body::from("answer"), InFlightGuard::new(Arc::clone(&activity)));
        assert_eq!(activity.due(ZERO_SEND()), Due::WriteStalled, "headers out, first frame never asked for");
        assert!(matches!(activity.due(t(HEAD, IDLE)), Due::At(at) if at <= Instant::now() + SEND));
        assert!(matches!(poll(&mut body), Poll::Ready(Some(Ok(_)))));
        assert_eq!(activity.due(ZERO_SEND()), Due::WriteStalled, "a frame handed over and not asked for again");
        assert!(matches!(poll(&mut body), Poll::Ready(None)));
        assert!(matches!(activity.due(ZERO_SEND()), Due::At(_)), "the transport asked again: done");
        drop(body);
        assert!(activity.sending.lock().unwrap().is_empty(), "a dropped body leaves no clock behind");
        assert_eq!(activity.due(t(HEAD, Duration::ZERO)), Due::Idle);
    }

    /// A body waiting on its own producer (a health watch with nothing new, a listing waiting for
    /// the store) is not waiting for the transport, however long it waits.
    #[test]
    fn a_response_waiting_on_its_producer_is_not_stalled() {
        let activity = http2();
        let (tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        let mut body = Sending::wrap(Body::from_stream(rx), InFlightGuard::new(Arc::clone(&activity)));
        assert!(poll(&mut body).is_pending());
        assert!(matches!(activity.due(ZERO_SEND()), Due::At(_)));
        // Another response on the same connection, stalled: the connection is due all the same.
        let stalled = Sending::wrap(Body::from("x"), InFlightGuard::new(Arc::clone(&activity)));
        assert_eq!(activity.due(ZERO_SEND()), Due::WriteStalled);
        drop(stalled);
        assert!(matches!(activity.due(ZERO_SEND()), Due::At(_)));
        drop(tx);
        drop(body);
        assert!(activity.sending.lock().unwrap().is_empty());
    }

    /// HTTP/1 writes as fast as the socket takes it (a stalled reader blocks a write, which
    /// `Watched` sees): its responses carry no clock.
    #[test]
    fn http1_responses_carry_no_clock() {
        let activity = Arc::new(Activity::new());
        let mut body = Sending::wrap(Body::from("answer"), InFlightGuard::new(Arc::clone(&activity)));
        assert!(activity.sending.lock().unwrap().is_empty());
        assert!(matches!(poll(&mut body), Poll::Ready(Some(Ok(_)))));
        assert!(matches!(activity.due(ZERO_SEND()), Due::At(_)));
        drop(body);
        assert_eq!(activity.due(t(HEAD, Duration::ZERO)), Due::Idle);
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

    fn woken(activity: &Activity) -> bool {
        futures::FutureExt::now_or_never(activity.changed.notified()).is_some()
    }

    /// Keep-alive requests on a connection whose timer is near wake nobody (the timer looks again
    /// when it fires); a head on a connection armed for its idle timeout, or any change while the
    /// task re-arms, does.
    #[test]
    fn changes_wake_the_task_only_when_they_may_bring_its_deadline_forward() {
        let activity = Arc::new(Activity::new());
        drop(InFlightGuard::new(Arc::clone(&activity)));
        assert!(woken(&activity), "before the timer is first armed, every change wakes");

        activity.armed(Instant::now() + HEAD, HEAD);
        for _ in 0..3 {
            drop(InFlightGuard::new(Arc::clone(&activity)));
            activity.on_read(b"GET / HTTP/1.1\r\n");
        }
        assert!(!woken(&activity), "no deadline can come before a timer armed for the shortest timeout");

        drop(InFlightGuard::new(Arc::clone(&activity)));
        activity.armed(Instant::now() + IDLE, HEAD);
        activity.on_read(b"GET / HTTP/1.1\r\n");
        assert!(woken(&activity), "a head on an idle connection brings its deadline forward");

        activity.armed(Instant::now() + HEAD, HEAD);
        activity.rearming();
        drop(InFlightGuard::new(Arc::clone(&activity)));
        assert!(woken(&activity), "a change while the task re-arms is never skipped");
    }

    #[test]
    fn http2_connections_have_no_head_clock() {
        let activity = Activity::new();
        activity.on_read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        assert!(matches!(activity.due(t(Duration::ZERO, IDLE)), Due::At(_)));
        assert_eq!(activity.due(t(Duration::ZERO, Duration::ZERO)), Due::Idle);
    }
}
