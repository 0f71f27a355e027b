//! `candidate-server`: configuration → logging → serve until SIGTERM/SIGINT, then drain.
//! Exit codes: 0 after a clean drain, 2 for configuration/startup errors, 1 otherwise.

use std::process::ExitCode;

use candidates_server::{Application, Config, telemetry};
use clap::Parser;
use tokio::sync::oneshot;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    if let Err(error) = config.validate() {
        eprintln!("candidate-server: {error}");
        return ExitCode::from(2);
    }
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
        signals.next().await;
        let _ = first_signal.send(());
        signals.next().await;
        tracing::warn!("second signal: exiting at once");
        std::process::exit(1);
    });

    match app.run_until_stopped(async { on_first_signal.await.unwrap_or(()) }).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server stopped with an error");
            ExitCode::FAILURE
        }
    }
}

/// SIGTERM (systemd, scaling groups) and SIGINT (Ctrl-C), registered when created.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Self {
            term: signal(SignalKind::terminate()).expect("install SIGTERM handler"),
            int: signal(SignalKind::interrupt()).expect("install SIGINT handler"),
        }
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM received"),
            _ = self.int.recv() => tracing::info!("SIGINT received"),
        }
    }
}
