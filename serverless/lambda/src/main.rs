//! `bootstrap`: the candidates REST API as an AWS Lambda function on `provided.al2023`, behind a
//! Lambda Function URL with `invoke_mode = RESPONSE_STREAM`, so `GET /candidates` streams as it does
//! from the binary (a buffered Lambda answer is capped at 6 MB; a streamed one at 200 MB, with the
//! first 6 MB unthrottled: AWS docs, "Response streaming"). lambda_http turns each Function URL
//! event (API Gateway HTTP API payload 2.0) into an `http::Request` for the same router the
//! binary's REST listener serves (`candidates_server::host`), and streams the answer back.
//!
//! Configuration is the binary's, from the environment (`CANDIDATES_STORE=dynamodb`,
//! `CANDIDATES_DYNAMODB_TABLE`, `CANDIDATES_API_KEYS_FILE`, ...); the store client is made once per
//! execution environment, during the init phase, and reused by every invocation.
//!
//! `CANDIDATES_API_KEY_LINES`: the API key file's lines (digests), for a deployment whose key is
//! made after the zip is built (terraform/serverless/aws): written to Lambda's `/tmp` during the
//! init phase (`host::api_key_lines_from_env`), which then is `CANDIDATES_API_KEYS_FILE`.

use std::process::ExitCode;

use candidates_server::{Config, host, telemetry};
use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // No arguments on Lambda: the environment only.
    let mut config = Config::parse_from(["bootstrap"]);
    telemetry::init(config.log_format, &config.log);
    if let Err(error) = host::api_key_lines_from_env(&mut config, &std::env::temp_dir()) {
        tracing::error!(%error, "cannot start");
        telemetry::flush();
        return ExitCode::from(2);
    }
    // The execution environment's own name (one log stream per environment) for /gtg?details.
    let instance_id = std::env::var("AWS_LAMBDA_LOG_STREAM_NAME").unwrap_or_else(|_| "lambda".to_owned());
    let router = match host::rest_router(&config, instance_id).await {
        Ok(router) => router,
        Err(error) => {
            // An init error: Lambda reports it and starts another environment for the next request.
            tracing::error!(%error, "cannot start");
            telemetry::flush();
            return ExitCode::from(2);
        }
    };
    // The environment may be frozen right after an answer: its access line is written before.
    let service = router.layer(axum::middleware::map_response(|response: axum::response::Response| async {
        telemetry::flush();
        response
    }));
    let result = lambda_http::run_with_streaming_response(service).await;
    telemetry::flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bootstrap: the Lambda runtime stopped: {error}");
            ExitCode::FAILURE
        }
    }
}
