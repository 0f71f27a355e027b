//! The scaling group: instances, the load balancer's view of them, the autoscaler, instance
//! refresh and autohealing, driven by one `tick` every 100 ms. Like the clouds, the group learns
//! about a dead instance only from the load balancer's health checks, never from the process.

use std::{
    collections::VecDeque,
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use nix::sys::signal::Signal;

use super::{
    FleetError,
    autoscaler::{Autoscaler, Decision, Observation},
    haproxy::{self, GRPC, Haproxy, REST},
    instance::{self, Instance, InstanceSettings, LaunchTemplate, State},
    timing::Timing,
};

/// Something that happened, for the timeline and the chart.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Event {
    /// Seconds from the start of the run.
    pub t: f64,
    pub what: String,
}

/// The group's state once a second.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Snapshot {
    pub starting: usize,
    pub in_service: usize,
    pub draining: usize,
    pub desired: usize,
    /// REST requests per second through the load balancer (the scaling metric, averaged).
    pub lb_rate: f64,
    /// In-service instances holding at least one gRPC connection: behind the L4 balancer, new
    /// instances get gRPC clients only as the max connection age recycles connections.
    pub grpc_instances: usize,
}

/// What an instance killed with SIGKILL cost, as the load balancer saw it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Kill {
    pub name: String,
    pub at: f64,
    /// REST requests in progress on it when it died (HAProxy `scur`).
    pub rest_in_flight: u64,
    /// gRPC connections to it when it died.
    pub grpc_connections: u64,
    /// gRPC calls in flight in the load generator (on every instance) when it died.
    pub grpc_client_in_flight: u64,
    /// Seconds from the kill until the load balancer marked it DOWN.
    pub ejected_after: Option<f64>,
    /// REST requests HAProxy sent to it after it died and before it was ejected.
    pub rest_sent_before_ejection: Option<u64>,
    /// gRPC connections HAProxy sent to it in that time.
    pub grpc_connections_before_ejection: Option<u64>,
    #[serde(skip)]
    pub(super) rest_stot: u64,
    #[serde(skip)]
    pub(super) grpc_stot: u64,
}

/// An instance that was drained (scale-in or refresh) and how it exited.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Drained {
    pub name: String,
    pub version: String,
    pub why: String,
    pub exit_code: Option<i32>,
    /// Seconds from SIGTERM to exit.
    pub took: Option<f64>,
}

/// Where an instance refresh is: each step launches one new instance (surge), waits for it to
/// warm up, then drains one outdated instance.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refresh {
    /// No refresh running.
    Idle,
    /// Between steps: the next step launches a surge instance, or the refresh ends.
    Stepping { replaced: usize },
    /// A step's new instance, not yet warm.
    Surging { surge: String, replaced: usize },
}

pub struct Group {
    lb: Haproxy,
    timing: Timing,
    settings: InstanceSettings,
    pub template: LaunchTemplate,
    prefix: [u8; 3],
    first_host: u8,
    instances: Vec<Instance>,
    launched: usize,
    pub desired: usize,
    pub autoscaler: Autoscaler,
    pub autoscaling: bool,
    refresh: Refresh,
    /// (when, backend `rest` req_tot) samples for the rate.
    requests: VecDeque<(Instant, u64)>,
    /// Servers whose `del server` has yet to succeed (connections still closing).
    pending_removal: Vec<String>,
    pub started: Instant,
    pub events: Vec<Event>,
    pub snapshots: Vec<Snapshot>,
    pub kills: Vec<Kill>,
    pub drained: Vec<Drained>,
    /// Processes that exited while the group thought them healthy (crashes), by name.
    pub crashed: Vec<(String, f64, i32)>,
}

pub struct GroupConfig {
    pub timing: Timing,
    pub settings: InstanceSettings,
    pub template: LaunchTemplate,
    pub prefix: [u8; 3],
    pub first_host: u8,
    pub autoscaler: Autoscaler,
}

impl Group {
    pub fn new(lb: Haproxy, config: GroupConfig, started: Instant) -> Self {
        let GroupConfig { timing, settings, template, prefix, first_host, autoscaler } = config;
        Self {
            lb,
            timing,
            settings,
            template,
            prefix,
            first_host,
            instances: Vec::new(),
            launched: 0,
            desired: autoscaler.policy.min,
            autoscaler,
            autoscaling: true,
            refresh: Refresh::Idle,
            requests: VecDeque::new(),
            pending_removal: Vec::new(),
            started,
            events: Vec::new(),
            snapshots: Vec::new(),
            kills: Vec::new(),
            drained: Vec::new(),
            crashed: Vec::new(),
        }
    }

    fn secs(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.started).as_secs_f64()
    }

    pub fn event(&mut self, what: impl Into<String>) {
        let what = what.into();
        tracing::info!("{what}");
        self.events.push(Event { t: self.secs(Instant::now()), what });
    }

    pub fn in_service(&self) -> impl Iterator<Item = &Instance> {
        self.instances.iter().filter(|i| i.state == State::InService)
    }

    /// The instances' REST addresses (for probes that bypass the load balancer).
    pub fn in_service_rest_addrs(&self) -> Vec<(String, SocketAddr)> {
        self.in_service().map(|i| (i.name.clone(), SocketAddr::new(i.ip, self.settings.http_port))).collect()
    }

    pub fn pids(&self) -> Vec<(String, u32)> {
        self.instances.iter().filter(|i| i.state != State::Gone).map(|i| (i.name.clone(), i.pid)).collect()
    }

    async fn launch(&mut self, why: &str) -> Result<String, FleetError> {
        let ip: IpAddr = instance::address(self.prefix, self.first_host, self.launched);
        let name = format!("i{}", self.launched + 1);
        self.launched += 1;
        let instance = Instance::launch(name.clone(), ip, &self.template, &self.settings)?;
        for backend in [REST, GRPC] {
            let port = if backend == REST { self.settings.http_port } else { self.settings.grpc_port };
            let line = haproxy::add_server_line(
                backend,
                &name,
                SocketAddr::new(ip, port),
                self.settings.http_port,
                &self.timing,
            );
            self.lb.run(&line).await?;
        }
        self.event(format!("launch {name} ({}) on {ip}: {why}", instance.version));
        self.instances.push(instance);
        Ok(name)
    }

    /// Takes an instance out of the load balancer, then SIGTERM: it answers /gtg 503 and serves
    /// what is in flight for the drain period, then exits.
    async fn drain(&mut self, index: usize, why: &str) -> Result<(), FleetError> {
        let name = self.instances[index].name.clone();
        for backend in [REST, GRPC] {
            self.lb.run(&format!("set server {backend}/{name} state drain")).await?;
        }
        let instance = &mut self.instances[index];
        instance.signal(Signal::SIGTERM)?;
        instance.state = State::Draining;
        instance.drain_started = Some(Instant::now());
        let version = instance.version.clone();
        self.drained.push(Drained { name: name.clone(), version, why: why.into(), exit_code: None, took: None });
        self.event(format!("drain {name} ({why}): LB stops routing, SIGTERM"));
        Ok(())
    }

    async fn remove_from_lb(&mut self, name: &str) {
        for backend in [REST, GRPC] {
            for line in haproxy::remove_server_commands(backend, name) {
                if let Err(e) = self.lb.run(&line).await {
                    if line.starts_with("del server") {
                        self.pending_removal.push(format!("{backend}/{name}"));
                    } else {
                        tracing::debug!("{e}");
                    }
                }
            }
        }
    }

    /// The scaling metric: REST requests per second through the load balancer over the metric
    /// period (the ALB counts REST requests; the L4 gRPC balancer counts none).
    fn rate(&mut self, now: Instant, total: u64) -> f64 {
        self.requests.push_back((now, total));
        while self.requests.front().is_some_and(|(at, _)| now.duration_since(*at) > self.timing.metric_period) {
            self.requests.pop_front();
        }
        match (self.requests.front(), self.requests.back()) {
            (Some((a, ra)), Some((b, rb))) if b.duration_since(*a) >= Duration::from_millis(500) => {
                rb.saturating_sub(*ra) as f64 / b.duration_since(*a).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    /// Before a refresh: at least `n` instances of the current version, and no scaling until the
    /// refresh is over (so that it replaces a known set).
    pub fn prepare_refresh(&mut self, n: usize) {
        self.autoscaling = false;
        if self.desired < n {
            self.event(format!("desired {}→{n} for the instance refresh", self.desired));
            self.desired = n;
        }
    }

    /// In service and warm.
    pub fn warm_count(&self) -> usize {
        let now = Instant::now();
        self.instances.iter().filter(|i| i.warm(now, self.timing.warmup)).count()
    }

    /// Starts replacing every instance with `template`, one at a time, new one first.
    pub fn start_refresh(&mut self, template: LaunchTemplate) {
        self.event(format!("instance refresh to {} (surge first, {} instances)", template.version, self.desired));
        self.template = template;
        self.autoscaling = false;
        self.refresh = Refresh::Stepping { replaced: 0 };
    }

    pub fn refreshing(&self) -> bool {
        self.refresh != Refresh::Idle
    }

    /// SIGKILL one in-service instance (the oldest), recording what the load balancer saw.
    pub async fn kill_one(&mut self, grpc_client_in_flight: u64) -> Result<(), FleetError> {
        let stats = self.lb.stats().await?;
        let Some(index) = self.instances.iter().position(|i| i.state == State::InService) else {
            self.event("kill: no instance in service");
            return Ok(());
        };
        let name = self.instances[index].name.clone();
        let rest = stats.server(REST, &name).cloned().unwrap_or_default();
        let grpc = stats.server(GRPC, &name).cloned().unwrap_or_default();
        self.instances[index].signal(Signal::SIGKILL)?;
        let at = self.secs(Instant::now());
        self.kills.push(Kill {
            name: name.clone(),
            at,
            rest_in_flight: rest.scur,
            grpc_connections: grpc.scur,
            grpc_client_in_flight,
            ejected_after: None,
            rest_sent_before_ejection: None,
            grpc_connections_before_ejection: None,
            rest_stot: rest.stot,
            grpc_stot: grpc.stot,
        });
        self.event(format!("SIGKILL {name}"));
        Ok(())
    }

    /// One step of the group, every 100 ms: what the load balancer's stats say, in phases.
    pub async fn tick(&mut self) -> Result<(), FleetError> {
        let now = Instant::now();
        let stats = self.lb.stats().await?;
        let total = stats.backend_requests.get(REST).copied().unwrap_or(0);
        let rate = self.rate(now, total);
        self.retry_removals().await;
        self.observe_instances(now, &stats).await;
        self.autoscale(now, rate);
        self.step_refresh(now).await?;
        self.reconcile().await?;
        self.snapshot(now, rate, &stats);
        Ok(())
    }

    /// Servers whose `del server` failed before (connections still closing): again.
    #[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
    async fn retry_removals(&mut self) {
        for line in std::mem::take(&mut self.pending_removal) {
            let (backend, name) = line.split_once('/').expect("backend/server");
            let _ = self.lb.run(&format!("shutdown sessions server {line}")).await;
            if self.lb.run(&format!("del server {line}")).await.is_err() {
                tracing::debug!("del server {backend}/{name}: not yet");
                self.pending_removal.push(line);
            }
        }
    }

    /// Exits and health as the load balancer sees them: in service, crashed, never healthy,
    /// marked DOWN (autohealing), drained and gone.
    async fn observe_instances(&mut self, now: Instant, stats: &super::haproxy::Stats) {
        // Instances: exits, health as the load balancer sees it.
        for index in 0..self.instances.len() {
            let (name, state) = (self.instances[index].name.clone(), self.instances[index].state);
            if state == State::Gone {
                continue;
            }
            let exited = self.instances[index].poll_exit();
            let lb = stats.server(REST, &name).cloned().unwrap_or_default();
            match (state, exited) {
                (State::Draining | State::Unhealthy, Some(code)) => {
                    let took = self.instances[index].drain_started.map(|at| now.duration_since(at).as_secs_f64());
                    if let Some(d) = self.drained.iter_mut().rev().find(|d| d.name == name) {
                        d.exit_code = Some(code);
                        d.took = took;
                    }
                    self.instances[index].state = State::Gone;
                    self.remove_from_lb(&name).await;
                    self.event(format!("{name} exited {code}"));
                }
                (State::Starting | State::InService, Some(code))
                    if !self.crashed.iter().any(|(n, _, _)| *n == name) =>
                {
                    // The group does not know yet: only the health checks will tell it.
                    self.crashed.push((name.clone(), self.secs(now), code));
                }
                (State::Starting, None) if lb.is_up() => {
                    self.instances[index].state = State::InService;
                    self.instances[index].in_service_at = Some(now);
                    self.event(format!("{name} in service"));
                }
                (State::Starting, _) if now.duration_since(self.instances[index].launched) > self.launch_timeout() => {
                    self.instances[index].state = State::Unhealthy;
                    let _ = self.instances[index].signal(Signal::SIGKILL);
                    self.event(format!("{name} never passed its checks: replaced"));
                }
                (State::InService, _) if lb.status.starts_with("DOWN") => {
                    let stats_now = (stats.server(REST, &name).cloned(), stats.server(GRPC, &name).cloned());
                    let started = self.started;
                    if let Some(kill) = self.kills.iter_mut().find(|k| k.name == name && k.ejected_after.is_none()) {
                        kill.ejected_after = Some(now.saturating_duration_since(started).as_secs_f64() - kill.at);
                        kill.rest_sent_before_ejection = stats_now.0.map(|s| s.stot.saturating_sub(kill.rest_stot));
                        kill.grpc_connections_before_ejection =
                            stats_now.1.map(|s| s.stot.saturating_sub(kill.grpc_stot));
                    }
                    // Autohealing: out of the load balancer, terminated, replaced below.
                    self.instances[index].state = State::Unhealthy;
                    self.instances[index].replaced_unhealthy = true;
                    self.instances[index].drain_started = Some(now);
                    self.drained.push(Drained {
                        name: name.clone(),
                        version: self.instances[index].version.clone(),
                        why: "unhealthy".into(),
                        exit_code: exited,
                        took: None,
                    });
                    for backend in [REST, GRPC] {
                        let _ = self.lb.run(&format!("set server {backend}/{name} state maint")).await;
                    }
                    let _ = self.instances[index].signal(Signal::SIGKILL);
                    self.event(format!("{name} marked DOWN by the LB: autohealing replaces it"));
                }
                _ => {}
            }
        }
    }

    /// The autoscaler's decision on the load balancer's request rate, when autoscaling is on.
    fn autoscale(&mut self, now: Instant, rate: f64) {
        let warmup = self.timing.warmup;
        let capacity = self.instances.iter().filter(|i| i.counts()).count();
        let warming = self.instances.iter().filter(|i| i.counts() && !i.warm(now, warmup)).count();

        if self.autoscaling {
            let decision = self.autoscaler.decide(Observation { now, rate, capacity, warming });
            match decision {
                Decision::ScaleOut(n) if n > self.desired => {
                    let target = self.autoscaler.policy.target;
                    self.event(format!(
                        "scale out {}→{n} (LB {rate:.0} req/s, target {target}/instance)",
                        self.desired
                    ));
                    self.desired = n;
                }
                Decision::ScaleIn(n) if n < self.desired => {
                    let target = self.autoscaler.policy.target;
                    self.event(format!("scale in {}→{n} (LB {rate:.0} req/s, target {target}/instance)", self.desired));
                    self.desired = n;
                }
                _ => {}
            }
        }
    }

    /// Launches what is missing (scale-out, autohealing); drains what is too much.
    async fn reconcile(&mut self) -> Result<(), FleetError> {
        // Reconcile: launch what is missing (scale-out, autohealing); drain what is too much.
        let mut counted = self.instances.iter().filter(|i| i.counts()).count();
        let surge = usize::from(matches!(self.refresh, Refresh::Surging { .. }));
        while counted < self.desired {
            self.launch("capacity below desired").await?;
            counted += 1;
        }
        if self.refresh == Refresh::Idle {
            while counted > self.desired + surge {
                // The oldest instance in service leaves first (warm ones only: one just launched
                // is still being admitted).
                let Some(index) = self.instances.iter().position(|i| i.state == State::InService) else { break };
                self.drain(index, "scale-in").await?;
                counted -= 1;
            }
        }
        Ok(())
    }

    /// This second's counts, for the report.
    fn snapshot(&mut self, now: Instant, rate: f64, stats: &super::haproxy::Stats) {
        let second = now.duration_since(self.started).as_secs() as usize;
        if self.snapshots.len() <= second {
            self.snapshots.resize(second + 1, Snapshot::default());
        }
        let count = |s: State| self.instances.iter().filter(|i| i.state == s).count();
        self.snapshots[second] = Snapshot {
            starting: count(State::Starting),
            in_service: count(State::InService),
            draining: count(State::Draining) + count(State::Unhealthy),
            desired: self.desired,
            lb_rate: rate,
            grpc_instances: self
                .in_service()
                .filter(|i| stats.server(GRPC, &i.name).is_some_and(|s| s.scur > 0))
                .count(),
        };
    }

    fn launch_timeout(&self) -> Duration {
        (self.timing.admission() * 3).max(Duration::from_secs(15))
    }

    async fn step_refresh(&mut self, now: Instant) -> Result<(), FleetError> {
        let version = self.template.version.clone();
        let outdated = |i: &Instance| i.counts() && i.version != version;
        self.refresh = match self.refresh.clone() {
            Refresh::Idle => Refresh::Idle,
            Refresh::Surging { surge, replaced } => {
                let warmup = self.timing.warmup;
                let ready = self.instances.iter().any(|i| i.name == surge && i.warm(now, warmup));
                let gone = self.instances.iter().any(|i| i.name == surge && !i.counts());
                if gone {
                    // The new instance failed: the next step launches another.
                    Refresh::Stepping { replaced }
                } else if ready {
                    let old = self.instances.iter().position(|i| outdated(i) && i.state == State::InService);
                    match old {
                        Some(index) => {
                            self.drain(index, "instance refresh").await?;
                            Refresh::Stepping { replaced: replaced + 1 }
                        }
                        None => Refresh::Stepping { replaced },
                    }
                } else {
                    Refresh::Surging { surge, replaced }
                }
            }
            Refresh::Stepping { replaced } => {
                if self.instances.iter().any(outdated) {
                    let surge = self.launch("instance refresh (surge)").await?;
                    Refresh::Surging { surge, replaced }
                } else {
                    self.autoscaling = true;
                    self.event(format!("instance refresh complete: {replaced} replaced"));
                    Refresh::Idle
                }
            }
        };
        Ok(())
    }

    /// Drains everything, waits (bounded) for the exits, stops HAProxy.
    pub async fn shutdown(mut self) -> Self {
        let indexes: Vec<usize> = (0..self.instances.len())
            .filter(|&i| matches!(self.instances[i].state, State::Starting | State::InService))
            .collect();
        for index in indexes {
            let _ = self.instances[index].signal(Signal::SIGTERM);
            self.instances[index].state = State::Draining;
        }
        let deadline = Instant::now() + self.timing.drain_period + self.timing.shutdown_grace + Duration::from_secs(5);
        while Instant::now() < deadline
            && self.instances.iter_mut().any(|i| i.state != State::Gone && i.poll_exit().is_none())
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for i in &mut self.instances {
            if i.poll_exit().is_none() {
                let _ = i.signal(Signal::SIGKILL);
            }
        }
        self
    }

    /// Stops HAProxy and hands over what was recorded.
    pub async fn finish(self) -> Record {
        self.lb.stop().await;
        Record {
            events: self.events,
            snapshots: self.snapshots,
            kills: self.kills,
            drained: self.drained,
            crashed: self.crashed,
        }
    }

    /// Makes `started` time zero (the start of the load): what happened before has negative times.
    pub fn rebase(&mut self, started: Instant) {
        let shift = started.saturating_duration_since(self.started).as_secs_f64();
        for e in &mut self.events {
            e.t -= shift;
        }
        self.snapshots.clear();
        self.requests.clear();
        self.started = started;
    }
}

/// What the group recorded over a run.
pub struct Record {
    pub events: Vec<Event>,
    pub snapshots: Vec<Snapshot>,
    pub kills: Vec<Kill>,
    pub drained: Vec<Drained>,
    pub crashed: Vec<(String, f64, i32)>,
}
