//! Ready / draining state, shared by `/gtg` (through a watch channel the gateway reads) and by
//! `grpc.health.v1` (through the tonic-health reporter), so the two never disagree.

use tokio::sync::watch;
use tonic_health::{ServingStatus, server::HealthReporter};

/// Both health names the contract requires: the whole server and the service.
const HEALTH_NAMES: [&str; 2] = ["", candidates_api::SERVICE_NAME];

#[derive(Debug, Clone)]
pub struct Lifecycle {
    ready: watch::Sender<bool>,
    health: HealthReporter,
}

impl Lifecycle {
    /// Starts "not ready": /gtg is 503 and health NOT_SERVING until [`Lifecycle::set_ready`].
    pub async fn new(health: HealthReporter) -> Self {
        let lifecycle = Self { ready: watch::Sender::new(false), health };
        lifecycle.publish(false).await;
        lifecycle
    }

    pub async fn set_ready(&self) {
        self.publish(true).await;
    }

    /// Draining: fail health checks at once, keep serving requests.
    pub async fn set_draining(&self) {
        metrics::gauge!("candidates_draining").set(1.0);
        self.publish(false).await;
    }

    /// What `/gtg` reads: `true` while the instance should receive traffic.
    pub fn readiness(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    async fn publish(&self, ready: bool) {
        self.ready.send_replace(ready);
        let status = if ready { ServingStatus::Serving } else { ServingStatus::NotServing };
        for name in HEALTH_NAMES {
            self.health.set_service_status(name, status).await;
        }
    }
}
