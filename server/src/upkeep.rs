//! The server's periodic chores, on one timer: fold histogram samples into their buckets (so
//! `/metrics` renders quickly), write the summaries of throttled log lines when no new line comes,
//! give memory freed after a load peak back to the system (`crate::allocator`), read the API key
//! file and the TLS certificate again if they changed, and fetch the OIDC issuer's keys when due.

use std::{future::Future, sync::Arc, time::Duration};

use candidates_edge::auth::Auth;

use crate::serve::tls::CertStore;

/// How often the chores run.
pub const EVERY: Duration = Duration::from_secs(5);

/// How often histogram samples are folded into their buckets. The exporter keeps every sample of
/// a histogram until then: at 80,000 calls a second that was 3 MB per series for 5 s, most of the
/// RSS a load peak left behind (bench/side_by_side.py: 30 MiB after a gRPC run, 16 idle).
pub const FOLD_EVERY: Duration = Duration::from_secs(1);

/// Runs the chores every [`EVERY`] (the histograms every [`FOLD_EVERY`]) until `stopped`.
pub async fn run(auth: Arc<Auth>, tls: Option<Arc<CertStore>>, stopped: impl Future<Output = ()>) {
    let handle = crate::metrics::handle();
    let mut fold = tokio::time::interval(FOLD_EVERY);
    fold.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut every = tokio::time::interval(EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = fold.tick() => handle.run_upkeep(),
            _ = every.tick() => {
                candidates_edge::throttle::flush_due();
                crate::allocator::collect();
                if let Some(tls) = &tls {
                    tls.reload_and_report();
                }
                if let Some(keys) = auth.keys() {
                    keys.reload_and_report().await;
                }
                if let Some(oidc) = auth.oidc()
                    && oidc.refresh_due().await
                {
                    oidc.refresh().await;
                }
            }
            () = &mut stopped => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn runs_until_stopped() {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run(Arc::new(Auth::open()), None, async {
            let _ = stopped.await;
        }));
        tokio::time::sleep(EVERY * 3).await;
        assert!(!task.is_finished());
        stop.send(()).unwrap();
        task.await.unwrap();
    }
}
