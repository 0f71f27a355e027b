//! `handler`: the candidates REST API as an Azure Functions custom handler. The Functions host
//! starts it, sets `FUNCTIONS_CUSTOMHANDLER_PORT`, and with `enableForwardingHttpRequest` (host.json)
//! forwards each HTTP request of the one catch-all function (`api/function.json`, route `{*path}`,
//! `routePrefix` empty) as it came: same method, path, query, headers and body. So the handler is
//! the binary's REST router (`candidates_server::host`) on 127.0.0.1 at that port, nothing else.
//!
//! Configuration is the binary's, from the app settings (environment): `CANDIDATES_STORE=cosmos`,
//! `CANDIDATES_COSMOS_ENDPOINT`, ... with the function app's managed identity (no key). The write
//! keys' digests may come as `CANDIDATES_API_KEY_LINES` (terraform/serverless/azure), written to a
//! file in the temporary directory at start, as on Lambda (`host::api_key_lines_from_env`).

use std::{net::SocketAddr, process::ExitCode};

use candidates_server::{Config, host, telemetry};
use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let mut config = Config::parse_from(["handler"]);
    telemetry::init(config.log_format, &config.log);
    if let Err(error) = host::api_key_lines_from_env(&mut config, &std::env::temp_dir()) {
        tracing::error!(%error, "cannot start");
        telemetry::flush();
        return ExitCode::from(2);
    }
    let code = run(config).await;
    telemetry::flush();
    code
}

async fn run(config: Config) -> ExitCode {
    let Some(port) = std::env::var("FUNCTIONS_CUSTOMHANDLER_PORT").ok().and_then(|p| p.parse::<u16>().ok()) else {
        tracing::error!("FUNCTIONS_CUSTOMHANDLER_PORT is not a port: the Functions host sets it");
        return ExitCode::from(2);
    };
    // The instance the function app runs on (App Service's name for it), for /gtg?details.
    let instance_id = std::env::var("WEBSITE_INSTANCE_ID").unwrap_or_else(|_| "functions".to_owned());
    let router = match host::rest_router(&config, instance_id).await {
        Ok(router) => router,
        Err(error) => {
            // The host restarts a handler that exits; the error is in the function app's log.
            tracing::error!(%error, "cannot start");
            return ExitCode::from(2);
        }
    };
    // Only the Functions host, on the same machine, talks to the handler.
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%addr, %error, "cannot listen");
            return ExitCode::from(2);
        }
    };
    tracing::info!(%addr, "custom handler listening");
    let stopped = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => {}
        }
    };
    match axum::serve(listener, router).with_graceful_shutdown(stopped).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "the listener failed");
            ExitCode::FAILURE
        }
    }
}
