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

    let (first_signal, on_first_signal) = oneshot::channel();
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = first_signal.send(());
        shutdown_signal().await;
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

/// SIGTERM (systemd, scaling groups) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}
