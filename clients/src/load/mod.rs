//! `candidatectl load`: closed-loop (N workers, each on its own connection) or open-loop (a request
//! rate, optionally ramped up and down, with latency from the intended send time), REST or gRPC, a
//! weighted operation mix, bounded by a duration and/or a request count, with a live progress bar,
//! an HDR-histogram report and a per-second timeline.

mod mix;
mod report;
mod schedule;
mod timeline;

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
pub use schedule::{Profile, Segment};
pub use timeline::{Row, Timeline};
use tokio::sync::{Semaphore, mpsc};

use crate::{
    api::{Api, ClientError, Compression, GrpcApi, RestApi},
    credential::Credential,
};

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
    /// Open loop: ramp the rate linearly back to 0 over the last this-long of --duration.
    #[arg(long, value_parser = humantime::parse_duration, requires_all = ["rate", "duration"])]
    pub ramp_down: Option<Duration>,
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
    /// Put every name once before the run (the default when the mix reads), so that gets find
    /// them. Kept for scripts that pass it explicitly.
    #[arg(long, conflicts_with = "no_populate")]
    pub populate: bool,
    /// Do not put the names first: gets of names never put answer 404 (to measure misses).
    #[arg(long)]
    pub no_populate: bool,
    /// Also write the per-second timeline (JSON array, one row per second) to this file.
    #[arg(long)]
    pub timeline: Option<std::path::PathBuf>,
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

    /// Whether the names are put first: unless told not to, whenever the mix reads them.
    pub fn populates(&self) -> bool {
        !self.no_populate && (self.populate || self.mix.weight(Op::Get) > 0)
    }
}

/// What some requests measured; each closed-loop worker keeps its own (no shared state on the hot
/// path) and they are merged at the end.
pub struct Tally {
    pub latency: hdrhistogram::Histogram<u64>,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub by_op: BTreeMap<&'static str, u64>,
    /// Failed requests per operation (the fleet's "0 failed GETs" bar).
    pub failed_by_op: BTreeMap<&'static str, u64>,
    pub timeline: Timeline,
    /// Key the timeline's errors by operation too (`get 503`), for bars on one operation.
    pub label_ops: bool,
    /// The first message seen for each error status (at most 32 statuses), to tell what a rare
    /// failure was.
    pub first_messages: BTreeMap<String, String>,
}

impl Default for Tally {
    fn default() -> Self {
        Self::new()
    }
}

impl Tally {
    pub fn new() -> Self {
        Self {
            latency: report::new_histogram(),
            ok: 0,
            errors: BTreeMap::new(),
            by_op: BTreeMap::new(),
            failed_by_op: BTreeMap::new(),
            timeline: Timeline::default(),
            label_ops: false,
            first_messages: BTreeMap::new(),
        }
    }

    /// `sent`: when the request was due, from the start of the run; `latency` from then.
    fn record(&mut self, sample: Sample, progress: &Progress) {
        let Sample { op, sent, latency, result } = sample;
        self.latency.saturating_record(latency.as_micros().max(1) as u64);
        *self.by_op.entry(op.name()).or_default() += 1;
        progress.done.fetch_add(1, Ordering::Relaxed);
        let status = result
            .as_ref()
            .err()
            .map(|e| if self.label_ops { format!("{} {}", op.name(), e.status) } else { e.status.clone() });
        self.timeline.record(sent, latency, status.as_deref());
        match result {
            Ok(()) => self.ok += 1,
            Err(e) => {
                progress.failed.fetch_add(1, Ordering::Relaxed);
                if self.first_messages.len() < 32 {
                    let key = format!("{} {}", op.name(), e.status);
                    self.first_messages.entry(key).or_insert_with(|| e.message.chars().take(300).collect());
                }
                *self.errors.entry(e.status).or_default() += 1;
                *self.failed_by_op.entry(op.name()).or_default() += 1;
            }
        }
    }

    pub fn sent(&self) -> u64 {
        self.ok + self.errors.values().sum::<u64>()
    }

    #[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
    fn merge(&mut self, other: Tally) {
        self.timeline.merge(&other.timeline, "");
        for (k, v) in other.first_messages {
            if self.first_messages.len() < 32 {
                self.first_messages.entry(k).or_insert(v);
            }
        }
        for (k, v) in other.failed_by_op {
            *self.failed_by_op.entry(k).or_default() += v;
        }
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

/// One answered (or failed) request.
struct Sample {
    op: Op,
    sent: Duration,
    latency: Duration,
    result: Result<(), ClientError>,
}

/// Live counters: the progress bar reads them, and the fleet reads the requests in flight.
#[derive(Default)]
pub struct Progress {
    pub done: AtomicU64,
    pub failed: AtomicU64,
    pub in_flight: AtomicU64,
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

/// `call` bounded by `give_up`: past it the request counts as `client_gave_up` (the server kept
/// it past any deadline it was given).
async fn bounded_call(api: &dyn Api, op: Op, keys: u64, give_up: Option<Duration>) -> Result<(), ClientError> {
    match give_up {
        None => call(api, op, keys).await,
        Some(limit) => tokio::time::timeout(limit, call(api, op, keys)).await.unwrap_or_else(|_| {
            Err(ClientError {
                kind: crate::api::ErrorKind::Timeout,
                status: "client_gave_up".into(),
                message: format!("no answer within {limit:?}"),
            })
        }),
    }
}

/// An open-loop run: sends on `profile` from `started` over `pool` (round robin), each request on
/// its own task, at most `max_in_flight` at once, until the profile ends or `limit` requests.
pub struct OpenLoop {
    pub pool: Vec<Arc<dyn Api>>,
    pub profile: Profile,
    pub mix: Mix,
    pub keys: u64,
    pub limit: Option<u64>,
    pub max_in_flight: usize,
    /// Give up on a request after this long (None: wait as long as the client's own timeout).
    pub give_up: Option<Duration>,
    /// Key the timeline's errors by operation (`get 503`).
    pub label_ops: bool,
}

impl OpenLoop {
    pub async fn run(self, started: Instant, counters: Arc<Progress>) -> Tally {
        let OpenLoop { pool, profile, mix, keys, limit, max_in_flight, give_up, label_ops } = self;
        let in_flight = Arc::new(Semaphore::new(max_in_flight.max(1)));
        // Requests finish on their own tasks; they hand their samples to this one.
        let (samples, mut finished) = mpsc::unbounded_channel::<Sample>();
        let mut tally = Tally { label_ops, ..Tally::new() };
        for i in 0u64.. {
            if limit.is_some_and(|n| i >= n) {
                break;
            }
            let Some(offset) = profile.offset(i) else { break };
            let intended = started + offset;
            tokio::time::sleep_until(intended.into()).await;
            while let Ok(sample) = finished.try_recv() {
                tally.record(sample, &counters);
            }
            let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else { break };
            let api = Arc::clone(&pool[(i % pool.len() as u64) as usize]);
            let (samples, counters) = (samples.clone(), Arc::clone(&counters));
            let op = mix.pick(&mut rand::rng());
            tokio::spawn(async move {
                counters.in_flight.fetch_add(1, Ordering::Relaxed);
                let result = bounded_call(&*api, op, keys, give_up).await;
                counters.in_flight.fetch_sub(1, Ordering::Relaxed);
                // From the intended send time: waiting for a permit or the scheduler is latency too.
                let _ = samples.send(Sample { op, sent: offset, latency: intended.elapsed(), result });
                drop(permit);
            });
        }
        drop(samples);
        while let Some(sample) = finished.recv().await {
            tally.record(sample, &counters);
        }
        tally
    }
}

pub fn connect(
    target: &str,
    rest: bool,
    timeout: Duration,
    pool: usize,
    credential: &Credential,
    compression: Compression,
) -> Result<Arc<dyn Api>, ClientError> {
    Ok(if rest {
        Arc::new(RestApi::new(target, timeout, pool, credential, compression)?)
    } else {
        Arc::new(GrpcApi::new(target, timeout, credential.clone(), compression)?)
    })
}

/// Runs the load and returns what it measured. Fails only if it cannot start (bad target,
/// populate failed); request errors are counted in the report.
#[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
pub async fn run(
    target: &str,
    rest: bool,
    timeout: Duration,
    args: &LoadArgs,
    credential: &Credential,
    compression: Compression,
) -> Result<Report, ClientError> {
    let populated = if args.populates() {
        populate(&*connect(target, rest, timeout, 64, credential, compression)?, args.keys).await?;
        Some(args.keys)
    } else {
        None
    };
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
                let api = connect(target, rest, timeout, 1, credential, compression)?;
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
                        let sample = Sample { op, sent: at - started, latency: at.elapsed(), result };
                        tally.record(sample, &counters);
                    }
                    tally
                });
            }
            format!("closed (c={})", args.concurrency)
        }
        Some(rate) => {
            let ramp_up = args.ramp_up.unwrap_or_default();
            let ramp_down = args.ramp_down.unwrap_or_default();
            let open = OpenLoop {
                pool: (0..args.connections.max(1))
                    .map(|_| connect(target, rest, timeout, 64, credential, compression))
                    .collect::<Result<_, _>>()?,
                profile: Profile::ramp_hold_ramp(rate, ramp_up, args.duration(), ramp_down),
                mix: args.mix.clone(),
                keys: args.keys,
                limit: args.requests,
                max_in_flight: args.max_in_flight,
                give_up: None,
                label_ops: false,
            };
            tasks.spawn(open.run(started, Arc::clone(&counters)));
            let mut mode = format!("open ({rate}/s");
            if !ramp_up.is_zero() {
                mode += &format!(", ramp up {}", humantime::format_duration(ramp_up));
            }
            if !ramp_down.is_zero() {
                mode += &format!(", ramp down {}", humantime::format_duration(ramp_down));
            }
            mode + ")"
        }
    };

    let mut total = Tally::new();
    while let Some(tally) = tasks.join_next().await {
        total.merge(tally.expect("load task panicked"));
    }
    ticker.abort();
    bar.finish_and_clear();
    let setup = match populated {
        Some(n) => format!("put {n} names (load-000000 ...) before the run, so gets find them"),
        None if args.mix.weight(Op::Get) > 0 => {
            "names not put first (--no-populate): gets of names never put answer not found".to_owned()
        }
        None => "nothing put first (the mix does not get names)".to_owned(),
    };
    let report = Report {
        protocol: if rest { "rest" } else { "grpc" },
        mode,
        setup,
        elapsed: started.elapsed(),
        sent: total.sent(),
        ok: total.ok,
        errors: total.errors,
        latency: total.latency,
        by_op: total.by_op,
        target_rate: args.rate,
        timeline: total.timeline,
    };
    if let Some(path) = &args.timeline {
        let json = serde_json::to_string_pretty(&report.timeline.rows()).expect("rows serialize");
        std::fs::write(path, json + "\n").map_err(|e| ClientError {
            kind: crate::api::ErrorKind::Rejected,
            status: "timeline_file".into(),
            message: format!("cannot write --timeline {}: {e}", path.display()),
        })?;
    }
    Ok(report)
}

#[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
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
pub async fn populate(api: &dyn Api, keys: u64) -> Result<(), ClientError> {
    use futures::{StreamExt, TryStreamExt};
    futures::stream::iter(0..keys)
        .map(|i| async move { api.put(&key(i)).await.map(drop) })
        .buffer_unordered(64)
        .try_collect::<()>()
        .await
}
