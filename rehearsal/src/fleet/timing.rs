//! The deployments' health-check, drain and scaling settings (the Terraform defaults), scaled down
//! in time by one factor so that a rehearsal takes minutes instead of hours. At `--time-factor
//! 0.1`, a 10 s health-check interval becomes 1 s, a 25 s drain 2.5 s, and so on; counts
//! (healthy/unhealthy thresholds) are not scaled.

use std::time::Duration;

/// Terraform defaults in seconds (terraform/aws/variables.tf unless noted); a test compares them
/// with the files so that they cannot drift apart.
pub mod defaults {
    /// `health_check_interval`.
    pub const HEALTH_CHECK_INTERVAL: f64 = 10.0;
    /// `health_check_timeout`.
    pub const HEALTH_CHECK_TIMEOUT: f64 = 5.0;
    /// `healthy_threshold` (HAProxy `rise`).
    pub const HEALTHY_THRESHOLD: u32 = 3;
    /// `unhealthy_threshold` (HAProxy `fall`).
    pub const UNHEALTHY_THRESHOLD: u32 = 2;
    /// `drain_period_seconds` (the server's --drain-period).
    pub const DRAIN_PERIOD: f64 = 25.0;
    /// `shutdown_grace_seconds` (the server's --shutdown-grace).
    pub const SHUTDOWN_GRACE: f64 = 10.0;
    /// `instance_warmup_seconds`.
    pub const INSTANCE_WARMUP: f64 = 60.0;
    /// terraform/gcp/variables.tf `cooldown_seconds` (AWS target tracking has none of its own; the
    /// warm-up plays that part).
    pub const COOLDOWN: f64 = 60.0;
    /// The gRPC max connection age the instance config sets (`5m`).
    pub const GRPC_MAX_CONNECTION_AGE: f64 = 300.0;
    /// Scale-in waits this long under target. The clouds wait longer (AWS target tracking: 15
    /// one-minute periods; GCP: a 10-minute stabilisation); 5 minutes keeps a rehearsal short.
    pub const SCALE_IN_AFTER: f64 = 300.0;
    /// CloudWatch's one-minute period: the request rate is averaged over it.
    pub const METRIC_PERIOD: f64 = 60.0;
}

/// Every duration the rehearsal uses, already scaled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    pub factor: f64,
    pub check_interval: Duration,
    pub check_timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    pub drain_period: Duration,
    pub shutdown_grace: Duration,
    pub warmup: Duration,
    pub cooldown: Duration,
    pub scale_in_after: Duration,
    pub metric_period: Duration,
    pub grpc_max_connection_age: Duration,
}

impl Timing {
    pub fn scaled(factor: f64) -> Self {
        use defaults::*;
        // Millisecond resolution: HAProxy and the server take whole milliseconds.
        let s = |secs: f64| Duration::from_millis((secs * factor * 1000.0).round().max(1.0) as u64);
        Self {
            factor,
            check_interval: s(HEALTH_CHECK_INTERVAL),
            check_timeout: s(HEALTH_CHECK_TIMEOUT),
            rise: HEALTHY_THRESHOLD,
            fall: UNHEALTHY_THRESHOLD,
            drain_period: s(DRAIN_PERIOD),
            shutdown_grace: s(SHUTDOWN_GRACE),
            warmup: s(INSTANCE_WARMUP),
            cooldown: s(COOLDOWN),
            scale_in_after: s(SCALE_IN_AFTER),
            // At least 2 s: a 1 s average of an open loop is noise.
            metric_period: s(METRIC_PERIOD).max(Duration::from_secs(2)),
            grpc_max_connection_age: s(GRPC_MAX_CONNECTION_AGE),
        }
    }

    /// How long the load balancer takes to stop routing to an instance that stopped answering.
    pub fn ejection(&self) -> Duration {
        self.check_interval * self.fall
    }

    /// How long a new instance takes to be routed to once it answers.
    pub fn admission(&self) -> Duration {
        self.check_interval * self.rise
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `default` of a Terraform variable, read from the file (a small parser is enough for
    /// `variable "x" { ... default = 10 ... }`).
    fn tf_default(file: &str, variable: &str) -> f64 {
        let path = format!("{}/../terraform/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let start = text.find(&format!("variable \"{variable}\"")).unwrap_or_else(|| panic!("{variable} in {path}"));
        let block = &text[start..];
        let block = &block[..block.find("\n}").expect("block ends")];
        let line = block.lines().find(|l| l.trim_start().starts_with("default")).expect("has a default");
        line.split('=').nth(1).unwrap().trim().parse().unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    #[test]
    fn defaults_are_the_terraform_defaults() {
        use defaults::*;
        assert_eq!(tf_default("aws/variables.tf", "health_check_interval"), HEALTH_CHECK_INTERVAL);
        assert_eq!(tf_default("aws/variables.tf", "health_check_timeout"), HEALTH_CHECK_TIMEOUT);
        assert_eq!(tf_default("aws/variables.tf", "healthy_threshold"), f64::from(HEALTHY_THRESHOLD));
        assert_eq!(tf_default("aws/variables.tf", "unhealthy_threshold"), f64::from(UNHEALTHY_THRESHOLD));
        assert_eq!(tf_default("aws/variables.tf", "instance_warmup_seconds"), INSTANCE_WARMUP);
        assert_eq!(tf_default("gcp/variables.tf", "cooldown_seconds"), COOLDOWN);
        for cloud in ["aws", "azure", "gcp"] {
            let file = format!("{cloud}/variables.tf");
            assert_eq!(tf_default(&file, "drain_period_seconds"), DRAIN_PERIOD, "{cloud}");
            assert_eq!(tf_default(&file, "shutdown_grace_seconds"), SHUTDOWN_GRACE, "{cloud}");
        }
        // The drain covers the load balancer's ejection, as the deployments' preconditions demand.
        assert!(HEALTH_CHECK_INTERVAL * f64::from(UNHEALTHY_THRESHOLD) <= DRAIN_PERIOD);
    }

    #[test]
    fn scales_durations_not_counts() {
        let t = Timing::scaled(0.1);
        assert_eq!(t.check_interval, Duration::from_secs(1));
        assert_eq!(t.drain_period, Duration::from_millis(2500));
        assert_eq!((t.rise, t.fall), (3, 2));
        assert_eq!(t.ejection(), Duration::from_secs(2));
        assert_eq!(t.grpc_max_connection_age, Duration::from_secs(30));
        assert!(t.ejection() <= t.drain_period);
    }
}
