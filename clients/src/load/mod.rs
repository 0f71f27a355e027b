//! `candidatectl load`: closed-loop (N workers, each on its own connection) or open-loop (a fixed,
//! optionally ramped, request rate with latency from the intended send time), REST or gRPC, a
//! weighted operation mix, bounded by a duration and/or a request count, with a live progress bar
//! and an HDR-histogram report.

mod mix;
mod report;
mod schedule;

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
pub use mix::{Mix, Op};
use rand::Rng;
pub use report::Report;
pub use schedule::Schedule;
use tokio::sync::{Semaphore, mpsc};

use crate::api::{Api, ClientError, GrpcApi, RestApi};

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Closed loop: this many workers, each on its own connection, each sending its next request
    /// when the previous one is answered.
    #[arg(short = 'c', long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,
    /// Open loop: send at this rate (requests/s) whatever the latency.
    #[arg(long, conflicts_with = "concurrency")]
    pub rate: Option<f64>,
    /// Open loop: ramp the rate linearly from 0 to --rate over this long, then hold (scaling demos).
    #[arg(long, value_parser = humantime::parse_duration, requires = "rate")]
    pub ramp_up: Option<Duration>,
    /// Stop after this long (default 10s when --requests is not given either).
    #[arg(short = 'd', long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many requests.
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,
    /// Operation weights, e.g. `gtg=1,get=8,put=1,list=0`.
    #[arg(long, default_value = "get=1")]
    pub mix: Mix,
    /// How many names get/put choose from (`load-000000` ...).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub keys: u64,
    /// Put every name once before the run, so that gets find them.
    #[arg(long)]
    pub populate: bool,
    /// Open loop: connections shared by the requests in flight.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Open loop: most requests in flight at once; past it sending waits, and the wait counts in the
    /// latency (it is measured from the intended send time).
    #[arg(long, default_value_t = 10_000)]
    pub max_in_flight: usize,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Exit with 1 when more than this fraction of requests failed.
    #[arg(long, default_value_t = 0.0)]
    pub max_error_rate: f64,
}

impl LoadArgs {
    fn duration(&self) -> Option<Duration> {
        match (self.duration, self.requests) {
            (None, None) => Some(Duration::from_secs(10)),
            (d, _) => d,
        }
    }
}

/// One finished request.
struct Sample {
    op: Op,
    latency: Duration,
    result: Result<(), String>,
}

pub fn key(i: u64) -> String {
    format!("load-{i:06}")
}

async fn call(api: &dyn Api, op: Op, keys: u64) -> Result<(), ClientError> {
    let k = key(rand::rng().random_range(0..keys));
    match op {
        Op::Gtg => api.gtg().await,
        Op::Get => api.get(&k).await.map(drop),
        Op::Put => api.put(&k).await.map(drop),
        Op::List => api.list_page(100, "").await.map(drop),
    }
}

fn connect(target: &str, rest: bool, timeout: Duration, pool: usize) -> Result<Arc<dyn Api>, ClientError> {
    Ok(if rest { Arc::new(RestApi::new(target, timeout, pool)?) } else { Arc::new(GrpcApi::new(target, timeout)?) })
}

/// Runs the load and returns what it measured. Fails only if it cannot start (bad target,
/// populate failed); request errors are counted in the report.
pub async fn run(target: &str, rest: bool, timeout: Duration, args: &LoadArgs) -> Result<Report, ClientError> {
    if args.populate {
        populate(&*connect(target, rest, timeout, 64)?, args.keys).await?;
    }
    let (samples, mut results) = mpsc::unbounded_channel::<Sample>();
    let started = Instant::now();
    let deadline = args.duration().map(|d| started + d);
    let sent = Arc::new(AtomicU64::new(0));
    let progress = progress_bar(args);

    let mode = match args.rate {
        None => {
            // Closed loop: each worker owns one connection and one request at a time.
            for _ in 0..args.concurrency {
                let api = connect(target, rest, timeout, 1)?;
                let (samples, sent, mix, keys, limit) =
                    (samples.clone(), Arc::clone(&sent), args.mix.clone(), args.keys, args.requests);
                tokio::spawn(async move {
                    loop {
                        if deadline.is_some_and(|d| Instant::now() >= d) {
                            break;
                        }
                        if limit.is_some_and(|n| sent.fetch_add(1, Ordering::Relaxed) >= n) {
                            break;
                        }
                        if limit.is_none() {
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                        let op = mix.pick(&mut rand::rng());
                        let at = Instant::now();
                        let result = call(&*api, op, keys).await.map_err(|e| e.status);
                        if samples.send(Sample { op, latency: at.elapsed(), result }).is_err() {
                            break;
                        }
                    }
                });
            }
            format!("closed (c={})", args.concurrency)
        }
        Some(rate) => {
            let schedule = Schedule { rate, ramp_up: args.ramp_up.unwrap_or_default() };
            let pool: Vec<Arc<dyn Api>> =
                (0..args.connections.max(1)).map(|_| connect(target, rest, timeout, 64)).collect::<Result<_, _>>()?;
            let in_flight = Arc::new(Semaphore::new(args.max_in_flight.max(1)));
            let (samples, sent, mix, keys, limit) =
                (samples.clone(), Arc::clone(&sent), args.mix.clone(), args.keys, args.requests);
            tokio::spawn(async move {
                for i in 0u64.. {
                    if limit.is_some_and(|n| i >= n) {
                        break;
                    }
                    let intended = started + schedule.offset(i);
                    if deadline.is_some_and(|d| intended >= d) {
                        break;
                    }
                    tokio::time::sleep_until(intended.into()).await;
                    let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else { break };
                    sent.fetch_add(1, Ordering::Relaxed);
                    let api = Arc::clone(&pool[(i % pool.len() as u64) as usize]);
                    let samples = samples.clone();
                    let op = mix.pick(&mut rand::rng());
                    tokio::spawn(async move {
                        let result = call(&*api, op, keys).await.map_err(|e| e.status);
                        // From the intended send time: waiting for a permit or the scheduler is latency too.
                        let _ = samples.send(Sample { op, latency: intended.elapsed(), result });
                        drop(permit);
                    });
                }
            });
            match args.ramp_up {
                Some(r) => format!("open (ramp to {rate}/s over {}, then hold)", humantime::format_duration(r)),
                None => format!("open (rate={rate}/s)"),
            }
        }
    };
    drop(samples); // the collector ends when every sender (workers, in-flight requests) is done

    let mut latency = report::new_histogram();
    let mut ok = 0u64;
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_op: BTreeMap<&'static str, u64> = BTreeMap::new();
    while let Some(sample) = results.recv().await {
        latency.saturating_record(sample.latency.as_micros().max(1) as u64);
        *by_op.entry(sample.op.name()).or_default() += 1;
        match sample.result {
            Ok(()) => ok += 1,
            Err(status) => *errors.entry(status).or_default() += 1,
        }
        progress.inc(1);
        let failed: u64 = errors.values().sum();
        if failed > 0 && progress.position().is_multiple_of(64) {
            progress.set_message(format!("{failed} errors"));
        }
    }
    progress.finish_and_clear();
    let elapsed = started.elapsed();
    let sent = ok + errors.values().sum::<u64>();
    Ok(Report {
        protocol: if rest { "rest" } else { "grpc" },
        mode,
        elapsed,
        sent,
        ok,
        errors,
        latency,
        by_op,
        target_rate: args.rate,
    })
}

fn progress_bar(args: &LoadArgs) -> ProgressBar {
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else if let Some(n) = args.requests {
        ProgressBar::new(n)
    } else {
        ProgressBar::new_spinner()
    };
    let template = "{spinner} {elapsed_precise} {pos} requests, {per_sec} {msg}";
    bar.set_style(ProgressStyle::with_template(template).expect("valid progress template"));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Puts every name once, 64 at a time.
async fn populate(api: &dyn Api, keys: u64) -> Result<(), ClientError> {
    use futures::{StreamExt, TryStreamExt};
    futures::stream::iter(0..keys)
        .map(|i| async move { api.put(&key(i)).await.map(drop) })
        .buffer_unordered(64)
        .try_collect::<()>()
        .await
}
