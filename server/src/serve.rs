//! The gRPC listener's accept loop: what `axum::serve` with graceful shutdown does, plus a maximum
//! connection age. gRPC clients keep one HTTP/2 connection for as long as it lives, and the
//! deployments' gRPC load balancers are layer 4 (they balance connections, not requests), so
//! without an age limit instances added by a scale-out never get traffic from existing clients.
//! At the age limit (with ±10 % jitter, so clients do not all reconnect at once) the connection
//! gets a graceful shutdown: GOAWAY, in-flight calls finish, the client reconnects, through the
//! load balancer, for its next call.

use std::{future::Future, io, time::Duration};

use axum::Router;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto::Builder,
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::watch, task::JoinSet};

/// Serves `router` on `listener` until `stopped` resolves; then stops accepting, shuts every
/// connection down gracefully and returns once they have all closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    max_age: Option<Duration>,
    stopped: impl Future<Output = ()>,
) -> io::Result<()> {
    let builder = Builder::new(TokioExecutor::new());
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(stopped);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    accept_error(error).await;
                    continue;
                }
            },
            () = &mut stopped => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let builder = builder.clone();
        let mut stopping = stopping.clone();
        let age = max_age.map(jitter);
        connections.spawn(async move {
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let aged = async {
                match age {
                    Some(age) => tokio::time::sleep(age).await,
                    None => std::future::pending().await,
                }
            };
            tokio::pin!(aged);
            let mut closing = false;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(error) = result {
                            tracing::debug!(%error, "gRPC connection ended with an error");
                        }
                        break;
                    }
                    () = &mut aged, if !closing => {
                        tracing::debug!(?age, "gRPC connection reached its maximum age: GOAWAY");
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    _ = stopping.wait_for(|s| *s), if !closing => {
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                    }
                }
            }
        });
        // Reap finished connections so the set holds only live ones.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// The age of one connection: `max_age` ± 10 %, spread by the clock's nanoseconds (no RNG needed
/// for spreading reconnects).
fn jitter(max_age: Duration) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    let factor = 0.9 + 0.2 * (f64::from(nanos % 1_000_000) / 1_000_000.0);
    max_age.mul_f64(factor)
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
    tracing::error!(%error, "gRPC accept failed; retrying in 1 s");
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
