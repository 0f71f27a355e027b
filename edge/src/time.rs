//! A timeout that costs nothing when the future is ready at once.

use std::{future::Future, pin::pin, task::Poll, time::Duration};

pub use tokio::time::error::Elapsed;

/// `tokio::time::timeout`, with the timer made only if `future` is not ready on its first poll.
/// Most bounded work here finishes at once (a request body that arrived with its head, an
/// in-memory store), and a timer costs a clock read, a runtime handle and, once polled, a
/// timer-wheel entry per call (bench/profile.sh). The bound then counts from that first poll,
/// which is not long: it did not wait for anything.
pub async fn timeout<F: Future>(duration: Duration, future: F) -> Result<F::Output, Elapsed> {
    let mut future = pin!(future);
    let first = std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(output) => Ok(output),
        Poll::Pending => tokio::time::timeout(duration, future).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ready_futures_need_no_timer_and_pending_ones_are_bounded() {
        assert_eq!(timeout(Duration::ZERO, async { 7 }).await, Ok(7));
        let started = tokio::time::Instant::now();
        assert!(timeout(Duration::from_secs(3), std::future::pending::<()>()).await.is_err());
        assert_eq!(started.elapsed(), Duration::from_secs(3));
        let later = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            "done"
        };
        assert_eq!(timeout(Duration::from_secs(3), later).await, Ok("done"));
    }

    /// A future dropped while waiting (its caller went away) leaves nothing behind: the timer and
    /// the future go with it.
    #[tokio::test(start_paused = true)]
    async fn a_dropped_timeout_drops_its_future() {
        struct Flag(std::sync::Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Flag(dropped.clone());
        let waiting = timeout(Duration::from_secs(60), async move {
            let _flag = flag;
            std::future::pending::<()>().await;
        });
        assert!(tokio::time::timeout(Duration::from_secs(1), waiting).await.is_err());
        assert!(dropped.load(std::sync::atomic::Ordering::SeqCst));
    }
}
