//! `candidate-server`: configuration → logging → serve until SIGTERM/SIGINT, then drain.
//! Exit codes: 0 after a clean drain, 2 for configuration/startup errors, 1 otherwise.

use std::process::ExitCode;

use candidates_server::{Application, Config, runtime::Scheduler, telemetry};
use clap::Parser;
use tokio::sync::oneshot;

/// mimalloc instead of glibc's allocator: cheaper per-request allocations, and memory freed after a
/// load peak goes back to the system (`candidates_server::allocator`); see docs/performance.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let config = Config::parse();
    if let Err(error) = config.validate() {
        eprintln!("candidate-server: {error}");
        return ExitCode::from(2);
    }
    let workers = config.worker_threads.and_then(|n| std::num::NonZeroUsize::new(usize::from(n)));
    match Scheduler::for_workers(workers).build() {
        Ok(runtime) => {
            let code = runtime.block_on(run(config));
            telemetry::flush();
            code
        }
        Err(error) => {
            eprintln!("candidate-server: cannot start the runtime: {error}");
            ExitCode::from(2)
        }
    }
}

async fn run(config: Config) -> ExitCode {
    telemetry::init(config.log_format, &config.log);

    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(error) => {
            tracing::error!(%error, "cannot start");
            eprintln!("candidate-server: {error}");
            return ExitCode::from(2);
        }
    };

    // Handlers are registered here, before the listeners announce themselves: a SIGTERM that
    // arrives right after start must drain, not kill the process.
    let mut signals = Signals::install();
    let (first_signal, on_first_signal) = oneshot::channel();
    tokio::spawn(async move {
        let first = signals.next().await;
        let first_at = std::time::Instant::now();
        let _ = first_signal.send(());
        loop {
            let next = signals.next().await;
            if should_exit_at_once(first, next, first_at.elapsed()) {
                tracing::warn!("second signal: exiting at once, without finishing the drain");
                telemetry::flush();
                std::process::exit(1);
            }
            tracing::info!("repeated signal right after the first ignored: still draining");
        }
    });

    let stopped = app.run_until_stopped(async { on_first_signal.await.unwrap_or(()) }).await;
    // The spans of the last requests (no-op when traces are off).
    telemetry::otlp::flush(std::time::Duration::from_secs(5)).await;
    match stopped {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server stopped with an error");
            // The store never opened: a startup error, like the ones above.
            if error.get_ref().is_some_and(|e| e.is::<candidates_server::app::StartError>()) {
                eprintln!("candidate-server: {error}");
                return ExitCode::from(2);
            }
            ExitCode::FAILURE
        }
    }
}

/// A repeated signal this soon after the first is the same request delivered twice (`timeout`,
/// process-group signals, supervisors that signal both the group and the process), not an
/// operator asking to skip the drain.
const REPEAT_WINDOW: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether a second signal means "exit now": Ctrl-C twice always does; otherwise only a signal
/// that comes after [`REPEAT_WINDOW`].
fn should_exit_at_once(first: Signal, second: Signal, since_first: std::time::Duration) -> bool {
    (first == Signal::Int && second == Signal::Int) || since_first >= REPEAT_WINDOW
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    Term,
    Int,
}

/// SIGTERM (systemd, scaling groups) and SIGINT (Ctrl-C), registered when created.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    #[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
    fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Self {
            term: signal(SignalKind::terminate()).expect("install SIGTERM handler"),
            int: signal(SignalKind::interrupt()).expect("install SIGINT handler"),
        }
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => {
                tracing::info!("SIGTERM received");
                Signal::Term
            }
            _ = self.int.recv() => {
                tracing::info!("SIGINT received");
                Signal::Int
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_a_later_signal_or_a_second_ctrl_c_skips_the_drain() {
        assert!(!should_exit_at_once(Signal::Term, Signal::Term, Duration::from_millis(5)));
        assert!(!should_exit_at_once(Signal::Term, Signal::Int, Duration::from_millis(5)));
        assert!(!should_exit_at_once(Signal::Int, Signal::Term, Duration::from_millis(5)));
        assert!(should_exit_at_once(Signal::Int, Signal::Int, Duration::from_millis(5)));
        assert!(should_exit_at_once(Signal::Term, Signal::Term, REPEAT_WINDOW));
    }
}
