//! `candidates-rehearsal`: `run` rehearses a scaling group on this machine (scripts/fleet.sh starts
//! the store and builds the binaries); `chart` draws a timeline (the rehearsal's `timeline.json`,
//! `candidatectl load --timeline FILE`, or a scale demo's) as an SVG.

use std::process::ExitCode;

use candidates_rehearsal::fleet;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "candidates-rehearsal", version, about = "A scaling group rehearsed on one machine, and its chart")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Rehearse a scaling group: HAProxy, N candidate-server instances on loopback, a shared
    /// store emulator, an autoscaler, and REST + gRPC load through it all.
    Run(Box<fleet::FleetArgs>),
    /// Draw a timeline as an SVG chart: req/s, latency, and instances when the timeline has them.
    Chart {
        /// The timeline JSON.
        timeline: std::path::PathBuf,
        /// Where the SVG goes.
        #[arg(short, long, default_value = "chart.svg")]
        out: std::path::PathBuf,
        /// Title (default: the timeline's path).
        #[arg(long)]
        title: Option<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Chart { timeline, out, title } => match fleet::redraw(&timeline, &out, title) {
            Ok(()) => {
                eprintln!("chart: {}", out.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("candidates-rehearsal chart: {e}");
                ExitCode::from(2)
            }
        },
        Command::Run(args) => {
            let filter = tracing_subscriber::EnvFilter::try_from_env("CANDIDATES_REHEARSAL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
            match fleet::run(&args).await {
                Ok(outcome) => {
                    println!("fleet: {} bars passed, {} failed", outcome.passed, outcome.failed);
                    if outcome.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
                }
                Err(e) => {
                    eprintln!("candidates-rehearsal run: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
