//! `candidatectl fleet`: a scaling group rehearsed on one machine with real parts. A shared store
//! (an emulator the caller started, e.g. DynamoDB Local), N release `candidate-server` instances
//! on loopback aliases (127.0.0.11, 127.0.0.12, ...), HAProxy as the load balancer (HTTP for REST,
//! TCP for gRPC, active `/gtg` checks, servers added and removed through its runtime API), an
//! autoscaler doing target tracking on request rate per instance, and open-loop REST + gRPC load
//! through HAProxy; then the scenarios (scale out/in, rolling replacement, SIGKILL, store stall),
//! a per-second timeline, a chart, and the bars. `scripts/fleet.sh` starts the store and runs it.

mod autoscaler;
mod chart;
mod group;
mod haproxy;
mod instance;
mod plan;
mod probe;
mod report;
mod timing;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

pub use autoscaler::{Autoscaler, Decision, Observation, Policy};
pub use chart::redraw;
use clap::Args;
use nix::sys::signal::Signal;
pub use plan::Scenario;
use serde_json::json;
pub use timing::Timing;

use candidates_clients::{
    api::{Api, Compression, GrpcApi, RestApi},
    credential::Credential,
    load::{self, Mix, OpenLoop, Progress, Tally, Timeline},
};

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A flag out of its range (the rehearsal's load and size are bounded).
    #[error("{0}")]
    Args(String),
    #[error("cannot run {binary}: {source} (apt-get install haproxy)")]
    HaproxyMissing { binary: String, source: std::io::Error },
    #[error("haproxy -c refused the configuration: {stderr}")]
    HaproxyConfig { stderr: String },
    #[error("cannot start {binary}: {source}")]
    HaproxyStart { binary: String, source: std::io::Error },
    #[error("HAProxy's runtime API at {socket}: {detail}")]
    RuntimeApi { socket: PathBuf, detail: String },
    #[error("HAProxy refused {command:?}: {answer}")]
    RuntimeRefused { command: String, answer: String },
    #[error("pid {0} out of range")]
    Pid(u32),
    #[error("{signal} to {pid}: {source}")]
    Signal { signal: Signal, pid: i32, source: nix::Error },
    #[error("instances not in service within {within:?}; see {logs}")]
    NotInService { within: Duration, logs: PathBuf },
    #[error("chart: {0}")]
    Chart(String),
    #[error(transparent)]
    Client(#[from] candidates_clients::api::ClientError),
}

impl FleetError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_owned(), source }
    }
}

#[derive(Debug, Clone, Args)]
pub struct FleetArgs {
    /// The release candidate-server the instances run (the "image").
    #[arg(long, env = "FLEET_SERVER_BIN")]
    pub server_bin: PathBuf,
    /// The binary the rolling replacement rolls to (default: a second copy of --server-bin).
    #[arg(long)]
    pub next_server_bin: Option<PathBuf>,
    /// The shared store: a DynamoDB endpoint (DynamoDB Local or moto_server) with the table.
    #[arg(long, env = "FLEET_STORE_ENDPOINT")]
    pub store_endpoint: String,
    #[arg(long, default_value = "Candidates")]
    pub store_table: String,
    /// PID of the store emulator (the stall scenario sends it SIGSTOP and SIGCONT).
    #[arg(long, env = "FLEET_STORE_PID")]
    pub store_pid: Option<u32>,
    /// Scenarios to run, in this order whatever the order given.
    #[arg(long, value_delimiter = ',', default_value = "scale,rolling,kill,stall")]
    pub scenarios: Vec<Scenario>,
    /// Every duration of the deployments (health checks, drain, warm-up, cooldown, connection age)
    /// times this: 0.1 turns a 10 s check interval into 1 s.
    #[arg(long, default_value_t = 0.1)]
    pub time_factor: f64,
    /// Target tracking: REST requests per second per in-service instance, through the load
    /// balancer (the meaning of the deployments' target_requests_per_instance_per_second; small
    /// so that a modest load scales).
    #[arg(long, default_value_t = 30.0)]
    pub target_rps: f64,
    #[arg(long, default_value_t = 2)]
    pub min: usize,
    #[arg(long, default_value_t = 5)]
    pub max: usize,
    /// Total request rate (REST + gRPC) before and after the peak of the scale scenario.
    #[arg(long, default_value_t = 40.0)]
    pub rate_low: f64,
    /// Total request rate at the peak.
    #[arg(long, default_value_t = 200.0)]
    pub rate_high: f64,
    /// Total request rate of the rolling, kill and stall scenarios.
    #[arg(long, default_value_t = 120.0)]
    pub rate_steady: f64,
    /// Fraction of the load sent over gRPC (the rest is REST).
    #[arg(long, default_value_t = 0.4)]
    pub grpc_share: f64,
    /// Instances the rolling replacement runs with (it raises the desired capacity to this).
    #[arg(long, default_value_t = 3)]
    pub rolling_instances: usize,
    /// Let HAProxy retry idempotent REST requests on another server (the clouds' load
    /// balancers do not; off by default).
    #[arg(long)]
    pub retries: bool,
    /// The requests' deadline: the server's --request-timeout (REST) and grpc-timeout (gRPC).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub deadline: Duration,
    /// How long the store is stopped in the stall scenario.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "4s")]
    pub stall: Duration,
    /// The load balancer's address (REST on --http-port, gRPC on --grpc-port).
    #[arg(long, default_value = "127.0.0.10")]
    pub lb_ip: Ipv4Addr,
    /// Instances get <first three octets of this>.<first-host + n>.
    #[arg(long, default_value = "127.0.0.11")]
    pub first_instance_ip: Ipv4Addr,
    #[arg(long, default_value_t = 8000)]
    pub http_port: u16,
    #[arg(long, default_value_t = 50051)]
    pub grpc_port: u16,
    /// Names the load gets and puts (put once before the load).
    #[arg(long, default_value_t = 200)]
    pub keys: u64,
    #[arg(long, default_value = "haproxy")]
    pub haproxy: String,
    /// Where the timeline (timeline.json), the chart (chart.svg) and the logs go.
    #[arg(long, default_value = "fleet-out")]
    pub out: PathBuf,
}

const REST_MIX: &str = "gtg=1,get=8,put=1";
const GRPC_MIX: &str = "get=9,put=1";

/// What the run found: the bars and whether they all passed.
pub struct Outcome {
    pub passed: usize,
    pub failed: usize,
}

fn check_args(args: &FleetArgs) -> Result<(), FleetError> {
    let bad = |m: String| Err(FleetError::Args(m));
    if !(0.001..=1.0).contains(&args.time_factor) {
        return bad(format!("--time-factor {} must be in 0.001..=1", args.time_factor));
    }
    if args.min == 0 || args.min > args.max || args.max > 20 {
        return bad(format!("need 1 <= --min ({}) <= --max ({}) <= 20", args.min, args.max));
    }
    if !(0.0..=1.0).contains(&args.grpc_share) {
        return bad("--grpc-share must be within 0..=1".into());
    }
    // Bounded load: a rehearsal on a shared machine, not a benchmark of the machine.
    for rate in [args.rate_low, args.rate_high, args.rate_steady] {
        if !(1.0..=5000.0).contains(&rate) {
            return bad(format!("rates must be within 1..=5000 req/s, got {rate}"));
        }
    }
    if args.scenarios.contains(&Scenario::Stall) && args.store_pid.is_none() {
        return bad("the stall scenario needs --store-pid (the emulator's PID)".into());
    }
    if args.stall > Duration::from_secs(60) {
        return bad("--stall is at most 60s".into());
    }
    if !args.lb_ip.is_loopback() || !args.first_instance_ip.is_loopback() {
        return bad("the fleet runs on loopback addresses only".into());
    }
    Ok(())
}

/// Sends SIGCONT to the store if it is still stopped when this goes out of scope (an error
/// half-way through the stall must not leave the emulator frozen).
struct Resume(Option<u32>);

impl Drop for Resume {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = instance::signal_pid(pid, Signal::SIGCONT);
        }
    }
}

#[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
pub async fn run(args: &FleetArgs) -> Result<Outcome, FleetError> {
    check_args(args)?;
    let timing = Timing::scaled(args.time_factor);
    let out = &args.out;
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| FleetError::io(&logs, e))?;
    let socket = std::env::temp_dir().join(format!("candidates-rehearsal-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&socket);
    let rest_lb = SocketAddr::new(IpAddr::V4(args.lb_ip), args.http_port);
    let grpc_lb = SocketAddr::new(IpAddr::V4(args.lb_ip), args.grpc_port);
    // Writes need a key, as in every deployment: the instances get its digest, the load its value.
    let (credential, keys_file) = rehearsal_key(out)?;
    let (mut group, v2) = launch_group(args, timing, &logs, &keys_file, rest_lb, grpc_lb, &socket).await?;
    wait_for_capacity(&mut group, &logs).await?;

    let rest_target = format!("http://{rest_lb}");
    let grpc_target = format!("http://{grpc_lb}");
    // The REST client waits past the deadline: it is the server that must answer by then.
    let rest_timeout = args.deadline * 2 + Duration::from_secs(1);
    let populate_api = RestApi::new(&rest_target, rest_timeout, 16, &credential, Compression::None)?;
    load::populate(&populate_api, args.keys).await?;
    tracing::info!("put {} names through the load balancer", args.keys);

    let plan = plan::Plan::new(
        &args.scenarios,
        plan::Shape {
            factor: args.time_factor,
            low: args.rate_low,
            high: args.rate_high,
            steady: args.rate_steady,
            stall: args.stall,
            scale_in_after: timing.scale_in_after,
            drain: timing.drain_period + timing.shutdown_grace,
        },
    );
    let started = Instant::now();
    group.rebase(started);
    // REST includes /gtg (what a client of the load balancer may call); gRPC does not call the
    // health service: behind an L4 balancer it reaches a draining instance, which rightly answers
    // NOT_SERVING, a signal for load balancers rather than a failed call.
    let rest_mix: Mix = REST_MIX.parse().expect("valid mix");
    let grpc_mix: Mix = GRPC_MIX.parse().expect("valid mix");
    let give_up = Some(rest_timeout);
    let rest_counters = Arc::new(Progress::default());
    let grpc_counters = Arc::new(Progress::default());
    let rest_pool: Vec<Arc<dyn Api>> = (0..4)
        .map(|_| {
            RestApi::new(&rest_target, rest_timeout, 64, &credential, Compression::None)
                .map(|a| Arc::new(a) as Arc<dyn Api>)
        })
        .collect::<Result<_, _>>()?;
    // Eight HTTP/2 connections: each lands on one instance until the server's max connection
    // age closes it, which is how new instances get gRPC clients behind an L4 balancer.
    let grpc_pool: Vec<Arc<dyn Api>> = (0..8)
        .map(|_| {
            GrpcApi::new(&grpc_target, args.deadline, credential.clone(), Compression::None)
                .map(|a| Arc::new(a) as Arc<dyn Api>)
        })
        .collect::<Result<_, _>>()?;
    let loads = [
        (rest_pool, 1.0 - args.grpc_share, Arc::clone(&rest_counters), rest_mix),
        (grpc_pool, args.grpc_share, Arc::clone(&grpc_counters), grpc_mix),
    ]
    .map(|(pool, share, counters, mix)| {
        let open = OpenLoop {
            pool,
            profile: plan.profile.scaled(share),
            mix,
            keys: args.keys,
            limit: None,
            max_in_flight: 2_000,
            give_up,
            label_ops: true,
        };
        tokio::spawn(open.run(started, counters))
    });

    // The scenarios' actions, at their planned times.
    let mut actions = Actions::planned(&plan, started);
    let probe_url = format!("{rest_target}/candidate/{}", load::key(0));
    let end = started + Duration::from_secs_f64(plan.length());
    let hard_stop = end + Duration::from_secs(60);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = Instant::now();
        if let Err(e) = group.tick().await {
            tracing::warn!("tick: {e}");
        }
        actions.refresh(now, &mut group, args.rolling_instances, &v2);
        actions.kill(now, &mut group, grpc_counters.in_flight.load(Ordering::Relaxed)).await?;
        actions.stall(now, &mut group, args, &probe_url, rest_timeout)?;
        let loads_done = loads.iter().all(|l| l.is_finished());
        if (now >= end && loads_done && !group.refreshing() && !actions.refresh_pending) || now >= hard_stop {
            break;
        }
    }
    let Actions { stall_phase, mut stall, stalled, probes, pids_before, .. } = actions;
    drop(stalled);
    let mut tallies = Vec::new();
    for l in loads {
        tallies.push(l.await.unwrap_or_default());
    }
    if let Some(p) = probes {
        stall.probes = p.await.unwrap_or_default();
        let after = group.pids();
        stall.restarts = pids_before
            .iter()
            .filter(|(name, pid)| !after.iter().any(|(n, p)| n == name && p == pid))
            .map(|(name, _)| format!("{name} gone"))
            .chain(
                group
                    .crashed
                    .iter()
                    .filter(|(_, t, _)| *t >= stall.stopped_at)
                    .map(|(n, _, c)| format!("{n} exited {c}")),
            )
            .collect();
    }
    let group = group.shutdown().await;
    let record = group.finish().await;
    let _ = std::fs::remove_file(&socket);

    let mut timeline = Timeline::default();
    // The two loads started above, REST then gRPC.
    let mut tallies = tallies.into_iter();
    let (rest, grpc): (Tally, Tally) = (tallies.next().unwrap_or_default(), tallies.next().unwrap_or_default());
    timeline.merge(&rest.timeline, "rest ");
    timeline.merge(&grpc.timeline, "grpc ");
    let measured = report::Measured {
        phases: &plan.phases,
        timeline: &timeline,
        snapshots: &record.snapshots,
        events: &record.events,
        kills: &record.kills,
        drained: &record.drained,
        stall: stall_phase.as_ref().map(|_| &stall),
        target: args.target_rps,
        warmup: timing.warmup.as_secs_f64(),
        cooldown: timing.cooldown.as_secs_f64(),
        metric_period: timing.metric_period.as_secs_f64(),
        deadline_ms: args.deadline.as_secs_f64() * 1e3,
        retries: args.retries,
        rest_share: 1.0 - args.grpc_share,
    };
    let rows = report::rows(&measured);
    let bars = report::bars(&measured, &rows);
    println!("{}", report::phase_table(&measured, &rows));
    println!("{}", report::bar_table(&bars));
    let totals = json!({
        "rest": { "sent": rest.sent(), "ok": rest.ok, "errors": rest.errors, "failed_by_op": rest.failed_by_op,
                  "first_messages": rest.first_messages },
        "grpc": { "sent": grpc.sent(), "ok": grpc.ok, "errors": grpc.errors, "failed_by_op": grpc.failed_by_op,
                  "first_messages": grpc.first_messages },
    });
    let document = json!({
        "settings": settings_json(args, timing),
        "phases": plan.phases.iter().map(|p| json!({"scenario": p.scenario.name(), "start": p.start, "end": p.end})).collect::<Vec<_>>(),
        "bars": bars,
        "totals": totals,
        "kills": record.kills,
        "drained": record.drained,
        "crashed": record.crashed,
        "stall": stall_phase.as_ref().map(|_| &stall),
        "events": record.events,
        "timeline": rows,
    });
    write_outputs(args, &logs, &document, &rows, &plan.phases, &record.events)?;
    let failed = bars.iter().filter(|b| !b.pass).count();
    Ok(Outcome { passed: bars.len() - failed, failed })
}

/// The setup phase: HAProxy with its configuration, the launch templates (v1, and v2 for the
/// instance refresh), and the group with its autoscaler.
/// A fresh API key with both scopes, and the key file that names its digest.
fn rehearsal_key(out: &Path) -> Result<(Credential, PathBuf), FleetError> {
    let path = out.join("api-keys");
    let key = candidates_api::api_key::mint().map_err(|e| FleetError::Args(format!("no randomness: {e}")))?;
    let line = candidates_api::api_key::file_line(&key, "candidates.read,candidates.write", "rehearsal") + "\n";
    std::fs::write(&path, line).map_err(|e| FleetError::io(&path, e))?;
    Ok((Credential::key(Some(&key))?, path))
}

async fn launch_group(
    args: &FleetArgs,
    timing: Timing,
    logs: &Path,
    keys_file: &Path,
    rest_lb: SocketAddr,
    grpc_lb: SocketAddr,
    socket: &Path,
) -> Result<(group::Group, instance::LaunchTemplate), FleetError> {
    let lb_config =
        haproxy::LbConfig { rest: rest_lb, grpc: grpc_lb, socket: socket.to_owned(), timing, retries: args.retries };
    let lb = haproxy::Haproxy::start(&args.haproxy, &lb_config, &args.out).await?;
    let v1 = instance::LaunchTemplate { binary: args.server_bin.clone(), version: "v1".into() };
    let v2 = match &args.next_server_bin {
        Some(path) => instance::LaunchTemplate { binary: path.clone(), version: "v2".into() },
        None => {
            // Another file, so that the refresh really starts a different binary.
            let copy = args.out.join("candidate-server-v2");
            std::fs::copy(&args.server_bin, &copy).map_err(|e| FleetError::io(&copy, e))?;
            instance::LaunchTemplate { binary: copy, version: "v2".into() }
        }
    };
    let octets = args.first_instance_ip.octets();
    let policy = Policy {
        target: args.target_rps,
        min: args.min,
        max: args.max,
        warmup: timing.warmup,
        cooldown: timing.cooldown,
        scale_in_after: timing.scale_in_after,
    };
    let settings = instance::InstanceSettings {
        http_port: args.http_port,
        grpc_port: args.grpc_port,
        store_endpoint: args.store_endpoint.clone(),
        store_table: args.store_table.clone(),
        timing,
        request_timeout: args.deadline,
        log_dir: logs.to_owned(),
        api_keys_file: keys_file.to_owned(),
    };
    let config = group::GroupConfig {
        timing,
        settings,
        template: v1,
        prefix: [octets[0], octets[1], octets[2]],
        first_host: octets[3],
        autoscaler: Autoscaler::new(policy),
    };
    let group = group::Group::new(lb, config, Instant::now());
    tracing::info!("HAProxy on {rest_lb} (REST) and {grpc_lb} (gRPC); {timing:?}");
    Ok((group, v2))
}

/// The initial capacity, in service before any load (30 s at most).
async fn wait_for_capacity(group: &mut group::Group, logs: &Path) -> Result<(), FleetError> {
    let within = Duration::from_secs(30);
    let ready_by = Instant::now() + within;
    loop {
        group.tick().await?;
        if group.in_service().count() >= group.desired {
            return Ok(());
        }
        if Instant::now() > ready_by {
            return Err(FleetError::NotInService { within, logs: logs.to_owned() });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The run's settings, as written at the top of timeline.json.
fn settings_json(args: &FleetArgs, timing: Timing) -> serde_json::Value {
    json!({
        "time_factor": args.time_factor,
        "timing_ms": {
            "check_interval": timing.check_interval.as_millis() as u64,
            "check_timeout": timing.check_timeout.as_millis() as u64,
            "rise": timing.rise, "fall": timing.fall,
            "drain_period": timing.drain_period.as_millis() as u64,
            "shutdown_grace": timing.shutdown_grace.as_millis() as u64,
            "warmup": timing.warmup.as_millis() as u64,
            "cooldown": timing.cooldown.as_millis() as u64,
            "scale_in_after": timing.scale_in_after.as_millis() as u64,
            "metric_period": timing.metric_period.as_millis() as u64,
            "grpc_max_connection_age": timing.grpc_max_connection_age.as_millis() as u64,
        },
        "target_rest_rps_per_instance": args.target_rps,
        "min": args.min, "max": args.max,
        "rates": { "low": args.rate_low, "high": args.rate_high, "steady": args.rate_steady, "grpc_share": args.grpc_share },
        "deadline_ms": args.deadline.as_millis() as u64,
        "retries": args.retries,
        "mix": { "rest": REST_MIX, "grpc": GRPC_MIX },
        "keys_put_first": args.keys,
    })
}

/// The report phase's files: timeline.json and chart.svg in --out.
#[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
fn write_outputs(
    args: &FleetArgs,
    logs: &Path,
    document: &serde_json::Value,
    rows: &[report::Row],
    phases: &[plan::Phase],
    events: &[group::Event],
) -> Result<(), FleetError> {
    let json_path = args.out.join("timeline.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(document).expect("serializes") + "\n")
        .map_err(|e| FleetError::io(&json_path, e))?;
    let chart_path = args.out.join("chart.svg");
    let title = format!(
        "candidates-rehearsal: {} (time factor {}, target {} REST req/s per instance)",
        args.scenarios.iter().map(|s| s.name()).collect::<Vec<_>>().join(", "),
        args.time_factor,
        args.target_rps
    );
    chart::draw(&chart_path, &title, rows, phases, events).map_err(FleetError::Chart)?;
    println!("timeline: {}  chart: {}  logs: {}", json_path.display(), chart_path.display(), logs.display());
    Ok(())
}

/// The scenarios' actions at their planned times (the instance refresh, the SIGKILL, the store's
/// SIGSTOP and SIGCONT), and what the stall measured.
struct Actions {
    started: Instant,
    refresh_at: Option<Instant>,
    /// Asked for, waiting for the group to be at its refresh size and warm.
    refresh_pending: bool,
    kill_at: Option<Instant>,
    stall_phase: Option<plan::Phase>,
    stop_at: Option<Instant>,
    resume_at: Option<Instant>,
    stalled: Resume,
    stall: report::Stall,
    probes: Option<tokio::task::JoinHandle<probe::StallProbes>>,
    pids_before: Vec<(String, u32)>,
}

impl Actions {
    fn planned(plan: &plan::Plan, started: Instant) -> Self {
        let at = |secs: f64| started + Duration::from_secs_f64(secs);
        let phase = |scenario| plan.phases.iter().find(|p| p.scenario == scenario);
        let stall_phase = phase(Scenario::Stall).cloned();
        Self {
            started,
            refresh_at: phase(Scenario::Rolling).map(|p| at(p.start)),
            refresh_pending: false,
            kill_at: phase(Scenario::Kill).map(|p| at(p.start + 1.0)),
            stop_at: stall_phase.as_ref().map(|p| at(p.start + 2.0)),
            stall_phase,
            resume_at: None,
            stalled: Resume(None),
            stall: report::Stall::default(),
            probes: None,
            pids_before: Vec::new(),
        }
    }

    /// The rolling scenario: grow to the refresh size, then replace every instance with v2.
    fn refresh(&mut self, now: Instant, group: &mut group::Group, size: usize, v2: &instance::LaunchTemplate) {
        if self.refresh_at.is_some_and(|t| now >= t) {
            self.refresh_at = None;
            group.prepare_refresh(size);
            self.refresh_pending = true;
        }
        if self.refresh_pending && group.warm_count() >= group.desired {
            self.refresh_pending = false;
            group.start_refresh(v2.clone());
        }
    }

    /// The kill scenario: SIGKILL one instance in service.
    async fn kill(&mut self, now: Instant, group: &mut group::Group, grpc_in_flight: u64) -> Result<(), FleetError> {
        if self.kill_at.is_some_and(|t| now >= t) {
            self.kill_at = None;
            group.kill_one(grpc_in_flight).await?;
        }
        Ok(())
    }

    /// The stall scenario: SIGSTOP the store, probe the load balancer and every instance while it
    /// is stopped, SIGCONT it after --stall.
    fn stall(
        &mut self,
        now: Instant,
        group: &mut group::Group,
        args: &FleetArgs,
        probe_url: &str,
        probe_timeout: Duration,
    ) -> Result<(), FleetError> {
        if let (Some(t), Some(pid), Some(phase)) = (self.stop_at, args.store_pid, &self.stall_phase)
            && now >= t
        {
            self.stop_at = None;
            self.pids_before = group.pids();
            let until = self.started + Duration::from_secs_f64(phase.end);
            self.probes = Some(tokio::spawn(probe::run(
                probe_url.to_owned(),
                group.in_service_rest_addrs(),
                self.started,
                until,
                probe_timeout,
            )));
            instance::signal_pid(pid, Signal::SIGSTOP)?;
            self.stalled.0 = Some(pid);
            self.stall.stopped_at = now.duration_since(self.started).as_secs_f64();
            group.event(format!("SIGSTOP store (pid {pid}) for {:?}", args.stall));
            self.resume_at = Some(now + args.stall);
        }
        if let (Some(t), Some(pid)) = (self.resume_at, self.stalled.0)
            && now >= t
        {
            self.resume_at = None;
            instance::signal_pid(pid, Signal::SIGCONT)?;
            self.stalled.0 = None;
            self.stall.resumed_at = now.duration_since(self.started).as_secs_f64();
            group.event(format!("SIGCONT store (pid {pid})"));
        }
        Ok(())
    }
}
