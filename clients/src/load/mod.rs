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
use rand::{Rng, SeedableRng};
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

/// What some requests measured; each closed-loop worker keeps its own (no shared state on the hot
/// path) and they are merged at the end.
struct Tally {
    latency: hdrhistogram::Histogram<u64>,
    ok: u64,
    errors: BTreeMap<String, u64>,
    by_op: BTreeMap<&'static str, u64>,
}

impl Tally {
    fn new() -> Self {
        Self { latency: report::new_histogram(), ok: 0, errors: BTreeMap::new(), by_op: BTreeMap::new() }
    }

    fn record(&mut self, op: Op, latency: Duration, result: Result<(), ClientError>, progress: &Progress) {
        self.latency.saturating_record(latency.as_micros().max(1) as u64);
        *self.by_op.entry(op.name()).or_default() += 1;
        progress.done.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(()) => self.ok += 1,
            Err(e) => {
                progress.failed.fetch_add(1, Ordering::Relaxed);
                *self.errors.entry(e.status).or_default() += 1;
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latency.add(other.latency).expect("histograms have the same bounds");
        self.ok += other.ok;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        for (k, v) in other.by_op {
            *self.by_op.entry(k).or_default() += v;
        }
    }
}

/// Counters the progress bar reads.
#[derive(Default)]
struct Progress {
    done: AtomicU64,
    failed: AtomicU64,
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
    let started = Instant::now();
    let deadline = args.duration().map(|d| started + d);
    let counters = Arc::new(Progress::default());
    let bar = progress_bar(args);
    let ticker = {
        let (bar, counters) = (bar.clone(), Arc::clone(&counters));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                bar.set_position(counters.done.load(Ordering::Relaxed));
                let failed = counters.failed.load(Ordering::Relaxed);
                if failed > 0 {
                    bar.set_message(format!("{failed} errors"));
                }
            }
        })
    };

    let mut tasks = tokio::task::JoinSet::new();
    let mode = match args.rate {
        None => {
            // Closed loop: each worker owns one connection and one request at a time.
            let issued = Arc::new(AtomicU64::new(0));
            for _ in 0..args.concurrency {
                let api = connect(target, rest, timeout, 1)?;
                let (issued, counters, mix, keys, limit) =
                    (Arc::clone(&issued), Arc::clone(&counters), args.mix.clone(), args.keys, args.requests);
                tasks.spawn(async move {
                    let mut tally = Tally::new();
                    let mut rng = rand::rngs::StdRng::from_rng(&mut rand::rng());
                    while deadline.is_none_or(|d| Instant::now() < d)
                        && limit.is_none_or(|n| issued.fetch_add(1, Ordering::Relaxed) < n)
                    {
                        let op = mix.pick(&mut rng);
                        let at = Instant::now();
                        let result = call(&*api, op, keys).await;
                        tally.record(op, at.elapsed(), result, &counters);
                    }
                    tally
                });
            }
            format!("closed (c={})", args.concurrency)
        }
        Some(rate) => {
            let schedule = Schedule { rate, ramp_up: args.ramp_up.unwrap_or_default() };
            let pool: Vec<Arc<dyn Api>> =
                (0..args.connections.max(1)).map(|_| connect(target, rest, timeout, 64)).collect::<Result<_, _>>()?;
            let in_flight = Arc::new(Semaphore::new(args.max_in_flight.max(1)));
            let (counters, mix, keys, limit) = (Arc::clone(&counters), args.mix.clone(), args.keys, args.requests);
            tasks.spawn(async move {
                // Requests finish on their own tasks; they hand their samples to this one.
                let (samples, mut finished) = mpsc::unbounded_channel::<(Op, Duration, Result<(), ClientError>)>();
                let mut tally = Tally::new();
                for i in 0u64.. {
                    if limit.is_some_and(|n| i >= n) {
                        break;
                    }
                    let intended = started + schedule.offset(i);
                    if deadline.is_some_and(|d| intended >= d) {
                        break;
                    }
                    tokio::time::sleep_until(intended.into()).await;
                    while let Ok((op, latency, result)) = finished.try_recv() {
                        tally.record(op, latency, result, &counters);
                    }
                    let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else { break };
                    let api = Arc::clone(&pool[(i % pool.len() as u64) as usize]);
                    let samples = samples.clone();
                    let op = mix.pick(&mut rand::rng());
                    tokio::spawn(async move {
                        let result = call(&*api, op, keys).await;
                        // From the intended send time: waiting for a permit or the scheduler is latency too.
                        let _ = samples.send((op, intended.elapsed(), result));
                        drop(permit);
                    });
                }
                drop(samples);
                while let Some((op, latency, result)) = finished.recv().await {
                    tally.record(op, latency, result, &counters);
                }
                tally
            });
            match args.ramp_up {
                Some(r) => format!("open (ramp to {rate}/s over {}, then hold)", humantime::format_duration(r)),
                None => format!("open (rate={rate}/s)"),
            }
        }
    };

    let mut total = Tally::new();
    while let Some(tally) = tasks.join_next().await {
        total.merge(tally.expect("load task panicked"));
    }
    ticker.abort();
    bar.finish_and_clear();
    let Tally { latency, ok, errors, by_op } = total;
    Ok(Report {
        protocol: if rest { "rest" } else { "grpc" },
        mode,
        elapsed: started.elapsed(),
        sent: ok + errors.values().sum::<u64>(),
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
