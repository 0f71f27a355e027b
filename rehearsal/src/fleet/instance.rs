//! One instance: a release `candidate-server` process on its own loopback address (127.0.0.11,
//! 127.0.0.12, ... like VMs), with the deployments' drain settings scaled in time, its lifecycle
//! state as the group sees it, and the signals the rehearsal sends it.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};
use tokio::process::{Child, Command};

use super::{FleetError, timing::Timing};

/// Where the group is in an instance's life (the clouds' lifecycle states, simplified).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Launched; not yet passing the load balancer's checks.
    Starting,
    /// Routed to by the load balancer.
    InService,
    /// Taken out of the load balancer and sent SIGTERM; waiting for it to exit.
    Draining,
    /// Found dead or failing its checks; being replaced.
    Unhealthy,
    /// Exited and removed from the load balancer.
    Gone,
}

/// How to start instances: the binary (the "image") and the shared settings.
#[derive(Debug, Clone)]
pub struct LaunchTemplate {
    pub binary: PathBuf,
    /// Label in the report (`v1`, `v2`).
    pub version: String,
}

#[derive(Debug, Clone)]
pub struct InstanceSettings {
    pub http_port: u16,
    pub grpc_port: u16,
    pub store_endpoint: String,
    pub store_table: String,
    pub timing: Timing,
    /// The server's deadline for requests that bring none (REST).
    pub request_timeout: Duration,
    pub log_dir: PathBuf,
    /// The digest of the rehearsal's key: writes need it, as in a deployment.
    pub api_keys_file: PathBuf,
}

pub struct Instance {
    pub name: String,
    pub ip: IpAddr,
    pub version: String,
    pub pid: u32,
    child: Child,
    pub state: State,
    pub launched: Instant,
    /// When the load balancer first reported it UP.
    pub in_service_at: Option<Instant>,
    pub drain_started: Option<Instant>,
    pub exit_code: Option<i32>,
    /// The autohealer replaces it (killed or failing checks), rather than a drain removing it.
    pub replaced_unhealthy: bool,
}

impl Instance {
    #[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
    pub fn launch(
        name: String,
        ip: IpAddr,
        template: &LaunchTemplate,
        s: &InstanceSettings,
    ) -> Result<Self, FleetError> {
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        let log = s.log_dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).map_err(|e| FleetError::io(&log, e))?;
        let mut command = Command::new(&template.binary);
        command
            .arg("--http-addr")
            .arg(SocketAddr::new(ip, s.http_port).to_string())
            .arg("--grpc-addr")
            .arg(SocketAddr::new(ip, s.grpc_port).to_string())
            .args(["--store", "dynamodb", "--dynamodb-endpoint", &s.store_endpoint])
            .args(["--dynamodb-table", &s.store_table, "--dynamodb-region", "us-east-1"])
            .args(["--drain-period", &ms(s.timing.drain_period)])
            .args(["--shutdown-grace", &ms(s.timing.shutdown_grace)])
            .args(["--grpc-max-connection-age", &ms(s.timing.grpc_max_connection_age)])
            .args(["--request-timeout", &ms(s.request_timeout)])
            .args(["--instance-metadata", "none", "--log", "warn"])
            .arg("--api-keys-file")
            .arg(&s.api_keys_file)
            // Dummy credentials for the emulator; never the real metadata service.
            .env("AWS_ACCESS_KEY_ID", "fleet")
            .env("AWS_SECRET_ACCESS_KEY", "fleet")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .env_remove("CANDIDATES_STORE")
            .stdin(Stdio::null())
            .stdout(file.try_clone().map_err(|e| FleetError::io(&log, e))?)
            .stderr(file)
            .kill_on_drop(true);
        let child = command.spawn().map_err(|e| FleetError::io(&template.binary, e))?;
        let pid = child.id().expect("a just-spawned child has a pid");
        Ok(Self {
            name,
            ip,
            version: template.version.clone(),
            pid,
            child,
            state: State::Starting,
            launched: Instant::now(),
            in_service_at: None,
            drain_started: None,
            exit_code: None,
            replaced_unhealthy: false,
        })
    }

    pub fn signal(&self, signal: Signal) -> Result<(), FleetError> {
        signal_pid(self.pid, signal)
    }

    /// Whether the process has exited (recording its exit code: -signal when killed).
    pub fn poll_exit(&mut self) -> Option<i32> {
        if self.exit_code.is_none()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            use std::os::unix::process::ExitStatusExt;
            self.exit_code = Some(status.code().unwrap_or_else(|| -status.signal().unwrap_or(0)));
        }
        self.exit_code
    }

    /// Counts as capacity: launched and not leaving.
    pub fn counts(&self) -> bool {
        matches!(self.state, State::Starting | State::InService)
    }

    /// In service and past its warm-up.
    pub fn warm(&self, now: Instant, warmup: Duration) -> bool {
        self.state == State::InService && self.in_service_at.is_some_and(|at| now.duration_since(at) >= warmup)
    }
}

pub fn signal_pid(pid: u32, signal: Signal) -> Result<(), FleetError> {
    let pid = i32::try_from(pid).map_err(|_| FleetError::Pid(pid))?;
    nix::sys::signal::kill(Pid::from_raw(pid), signal).map_err(|source| FleetError::Signal { signal, pid, source })
}

/// The address of the `n`-th instance (from 0): `prefix.(first + n)`, wrapping within 11..=250
/// so that a long run never runs out.
pub fn address(prefix: [u8; 3], first: u8, n: usize) -> IpAddr {
    let span = 250 - usize::from(first) + 1;
    let host = usize::from(first) + n % span;
    IpAddr::from([prefix[0], prefix[1], prefix[2], host as u8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_loopback_aliases_like_vms() {
        assert_eq!(address([127, 0, 0], 11, 0).to_string(), "127.0.0.11");
        assert_eq!(address([127, 0, 0], 11, 1).to_string(), "127.0.0.12");
        assert_eq!(address([127, 0, 0], 11, 240).to_string(), "127.0.0.11", "wraps");
        assert!(address([127, 0, 0], 11, 3).is_loopback());
    }
}
