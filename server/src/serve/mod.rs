//! The accept loop of both listeners: what `axum::serve` with graceful shutdown does, plus the
//! connection limits that keep slow, idle and hostile clients bounded in time:
//!
//! - a header-read timeout (HTTP/1: a client must send a whole request head in time; slowloris);
//! - a send timeout: a peer that takes none of our bytes for this long (a stalled reader, or an
//!   HTTP/2 peer that grants a stream no flow-control window) is dropped, with whatever it held;
//! - an idle timeout: a connection with no request in flight for this long is closed gracefully.
//!   It must be longer than the load balancers' own idle timeouts, or they reuse a connection
//!   we are closing and get a reset (see docs/operations.md);
//! - HTTP/2 keep-alive pings, so dead peers (and the L4 load balancers' flow state) are noticed;
//! - optionally a maximum connection age (gRPC): clients behind a layer-4 load balancer keep one
//!   HTTP/2 connection as long as it lives, so without it instances added by a scale-out never get
//!   traffic from existing clients. At the age (±10 % jitter, so clients do not all reconnect at
//!   once) the connection gets a graceful shutdown: GOAWAY, in-flight calls finish.
//!
//! A connection told to close gracefully that has not closed after [`CLOSE_GRACE`] (a peer that
//! never finishes its request head, for example) is dropped.
//!
//! It is kept for what it does, not for speed: `axum::serve` has none of these limits nor a
//! connection cap (`cap`); each connection is served by hyper-util's auto builder, as in axum.
//! Each limit has a test in server/tests/hardening.rs.

mod activity;
pub mod cap;
pub mod single_port;
pub mod tls;

use std::{
    future::Future,
    io,
    sync::Arc,
    time::{Duration, Instant},
};

use activity::{Activity, Due, InFlightGuard, Sending, Timeouts, Watched};
use axum::{Router, body::Body, extract::Request, response::Response};
pub use cap::Connections;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto::Builder,
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::watch, task::JoinSet};
use tower::ServiceExt;

/// How long a connection may take to close after a graceful shutdown was asked for (idle or aged
/// connections, which have no request in flight or only ones already running) before it is dropped.
pub const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// Largest HTTP/1 request head (request line and headers), in bytes: larger ones get 431. hyper's
/// default (~400 KiB) let 500 unfinished heads hold 200 MiB until the header-read timeout. nginx
/// allows 4 x 8 KiB by default; names are at most 255 characters (3 KiB percent-encoded).
pub const MAX_HEAD_BYTES: usize = 32 * 1024;

/// HTTP/2: the header list size we advertise (431 on the one stream above it). h2 closes the whole
/// connection only above four times this (its abuse limit), so 128 KiB: above what proxies
/// forward by default (Envoy 60 KiB), so a multiplexing proxy's other streams are never hit by one
/// client's oversized metadata.
pub const MAX_HEADER_LIST_BYTES: u32 = 32 * 1024;

/// HTTP/2: streams a peer may open at once on one connection (hyper's default, made explicit):
/// what one connection can hold of the concurrency permits until the send timeout drops it.
/// Go's net/http2 allows 250, nginx 128; gRPC clients queue calls beyond it.
pub const MAX_CONCURRENT_STREAMS: u32 = 200;

/// A deadline that does not come.
const NEVER: Duration = Duration::from_secs(365 * 24 * 3600);

/// Per-connection limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// HTTP/1: the whole request head must arrive within this (from the first byte or accept).
    pub header_read_timeout: Duration,
    /// Close a connection that has had no request in flight for this long.
    pub idle_timeout: Duration,
    /// Drop a connection whose peer has taken none of our bytes for this long.
    pub send_timeout: Duration,
    /// HTTP/2: send a PING after this long without frames; close if unanswered within the timeout.
    pub keepalive_interval: Option<Duration>,
    pub keepalive_timeout: Duration,
    /// Close gracefully after about this long (±10 %).
    pub max_age: Option<Duration>,
}

/// Serves `router` on `listener` until `stopped` resolves; then stops accepting, shuts every
/// connection down gracefully and returns once they have all closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    connections: Arc<Connections>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stopped: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    // hyper's own header-read timeout also runs while a keep-alive connection waits for its next
    // request (hyper 1.12), which would close connections the load balancer keeps idle; `Activity`
    // times request heads from their first byte instead.
    builder.http1().timer(TokioTimer::new()).header_read_timeout(None).max_buf_size(MAX_HEAD_BYTES);
    builder
        .http2()
        .max_header_list_size(MAX_HEADER_LIST_BYTES)
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.keepalive_interval)
        .keep_alive_timeout(limits.keepalive_timeout);
    let (stop, stopping) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(stopped);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    // As tonic and nginx do: HTTP/2 writes a response in more than one write
                    // (headers, message, trailers, window updates), and Nagle's algorithm would hold
                    // the later ones back until the peer acknowledges the first.
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::debug!(%error, "cannot set TCP_NODELAY");
                    }
                    stream
                }
                Err(error) => {
                    accept_error(error).await;
                    continue;
                }
            },
            () = &mut stopped => break,
        };
        let activity = Arc::new(Activity::new());
        let Some(slot) = connections.admit(Arc::clone(&activity)) else {
            // At the cap with every connection busy: closing this one keeps a descriptor free.
            tracing::debug!(max = connections.max(), "connection cap reached and none idle: connection refused");
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(track(router.clone(), Arc::clone(&activity)));
        let builder = builder.clone();
        let stopping = stopping.clone();
        let tls = tls.clone();
        tasks.spawn(async move {
            let slot = slot;
            match tls {
                None => {
                    let io = Watched { inner: stream, activity: Arc::clone(&activity) };
                    connection(io, &builder, service, limits, &activity, &slot, stopping).await;
                }
                Some(acceptor) => {
                    // Boxed: a task is as large as its largest state, and the TLS states (the
                    // handshake, a TLS stream inside the connection) would make every plain
                    // connection's task that large too.
                    Box::pin(async move {
                        // The handshake is bounded like a request head: a client that opens a
                        // connection and says nothing holds no slot for longer.
                        match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => {
                                let io = Watched { inner: stream, activity: Arc::clone(&activity) };
                                connection(io, &builder, service, limits, &activity, &slot, stopping).await;
                            }
                            Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                            Err(_) => {
                                tracing::debug!("TLS handshake not done within the header-read timeout: dropped");
                            }
                        }
                    })
                    .await;
                }
            }
        });
        // Reap finished connections so the set holds only live ones.
        while tasks.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Serves one accepted connection (plain or TLS) until it ends, is evicted, ages out, idles out or
/// the server stops (then gracefully, within [`CLOSE_GRACE`] unless requests are in flight).
async fn connection<I, S, B>(
    io: I,
    builder: &Builder<TokioExecutor>,
    service: S,
    limits: ConnLimits,
    activity: &Arc<Activity>,
    slot: &cap::Slot,
    stopping: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<Request<hyper::body::Incoming>, Response = http::Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let aged = async {
        match limits.max_age.map(jitter) {
            Some(age) => tokio::time::sleep(age).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(aged);
    let timeouts =
        Timeouts { header_read: limits.header_read_timeout, idle: limits.idle_timeout, send: limits.send_timeout };
    // No deadline `due` gives is nearer than this to the change that made it.
    let shortest = limits.header_read_timeout.min(limits.idle_timeout).min(limits.send_timeout);
    let timer = tokio::time::sleep(limits.header_read_timeout);
    tokio::pin!(timer);
    activity.armed(timer.deadline().into_std(), shortest);
    let mut stopping = stopping;
    // Armed once a graceful shutdown was asked for: the connection is dropped if still open then.
    let hard_stop = tokio::time::sleep(NEVER);
    tokio::pin!(hard_stop);
    let mut closing = false;
    loop {
        // Why the connection is to close, and whether it gets only CLOSE_GRACE to do so (at
        // shutdown the server's own grace period bounds in-flight requests instead).
        let (reason, bounded) = tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            () = slot.evict.notified() => {
                tracing::debug!("idle connection closed to make room under the connection cap");
                return;
            }
            () = &mut hard_stop => {
                tracing::debug!("connection still open after the close grace: dropped");
                return;
            }
            () = &mut aged, if !closing => ("maximum age", true),
            _ = stopping.wait_for(|s| *s), if !closing => ("server stopping", false),
            () = activity.changed.notified(), if !closing => {
                // Only ever brought forward here: a later deadline (a request ended, the next
                // head began after the armed one) is left to the timer, which fires early, asks
                // `due` again and re-arms. So a keep-alive request costs no timer-wheel updates
                // (two a request before: 4 % of /gtg's CPU in bench/profile.sh), and, with the
                // activity's quiet window, no wake-up either.
                activity.rearming();
                if let Due::At(at) = activity.due(timeouts)
                    && tokio::time::Instant::from(at) < timer.deadline()
                {
                    timer.as_mut().reset(at.into());
                }
                activity.armed(timer.deadline().into_std(), shortest);
                continue;
            }
            () = &mut timer, if !closing => {
                activity.rearming();
                match activity.due(timeouts) {
                    Due::At(at) => {
                        timer.as_mut().reset(at.into());
                        activity.armed(at, shortest);
                        continue;
                    }
                    Due::HeadTimeout => {
                        tracing::debug!("request head not received within the header-read timeout: dropped");
                        return;
                    }
                    Due::WriteStalled => {
                        tracing::debug!("peer took none of our bytes within the send timeout: dropped");
                        return;
                    }
                    Due::Idle => ("idle timeout", true),
                }
            }
        };
        tracing::debug!(reason, "closing connection gracefully");
        conn.as_mut().graceful_shutdown();
        closing = true;
        if bounded {
            hard_stop.as_mut().reset((Instant::now() + CLOSE_GRACE).into());
        }
    }
}

fn track(
    router: Router,
    activity: Arc<Activity>,
) -> impl tower::Service<Request<hyper::body::Incoming>, Response = Response, Error = std::convert::Infallible, Future: Send>
+ Clone
+ Send
+ 'static {
    tower::service_fn(move |request: Request<hyper::body::Incoming>| {
        let guard = InFlightGuard::new(Arc::clone(&activity));
        let router = router.clone();
        async move {
            let response = router.oneshot(request.map(Body::new)).await?;
            Ok(response.map(|inner| Sending::wrap(inner, guard)))
        }
    })
}

/// The age of one connection: `max_age` ± 10 %, so that clients do not all reconnect at once.
fn jitter(max_age: Duration) -> Duration {
    max_age.mul_f64(0.9 + 0.2 * crate::jitter::fraction())
}

/// Like axum::serve: errors of one connection (reset before accept) are ignored; others (out of
/// file descriptors) are logged and retried after a pause rather than ending the server.
async fn accept_error(error: io::Error) {
    if matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let age = jitter(Duration::from_secs(300));
            assert!(age >= Duration::from_secs(270) && age <= Duration::from_secs(330), "{age:?}");
        }
    }
}
