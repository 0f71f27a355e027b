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
//! `CANDIDATES_API_KEY_LINES` (this adapter only): the API key file's lines (`<sha256 hex> <scopes>
//! <name>`, digests, never keys), for a deployment whose key is made after the zip is built
//! (terraform/serverless/aws): written to a file under the temporary directory (Lambda's `/tmp`)
//! during the init phase, which then is `CANDIDATES_API_KEYS_FILE`. Not both.

use std::{
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    process::ExitCode,
};

use candidates_server::{Config, host, telemetry};
use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // No arguments on Lambda: the environment only.
    let mut config = Config::parse_from(["bootstrap"]);
    telemetry::init(config.log_format, &config.log);
    if let Some(lines) = std::env::var_os("CANDIDATES_API_KEY_LINES") {
        let written = match (&config.api_keys_file, lines.to_str()) {
            (Some(_), _) => Err("set CANDIDATES_API_KEY_LINES or CANDIDATES_API_KEYS_FILE, not both".to_owned()),
            (None, None) => Err("CANDIDATES_API_KEY_LINES is not UTF-8".to_owned()),
            (None, Some(lines)) => write_key_lines(lines, &std::env::temp_dir()).map_err(|e| e.to_string()),
        };
        match written {
            Ok(path) => config.api_keys_file = Some(path),
            Err(error) => {
                tracing::error!(%error, "cannot start");
                telemetry::flush();
                return ExitCode::from(2);
            }
        }
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

/// Writes the key file's lines to `dir/candidates-api-keys` (owner-only, replacing an earlier
/// init's) and returns its path. A trailing newline is added when missing.
fn write_key_lines(lines: &str, dir: &Path) -> std::io::Result<PathBuf> {
    let path = dir.join("candidates-api-keys");
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path)?;
    file.write_all(lines.as_bytes())?;
    if !lines.ends_with('\n') {
        file.write_all(b"\n")?;
    }
    file.sync_all()?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::PermissionsExt;

    use super::write_key_lines;

    #[test]
    fn key_lines_become_an_owner_only_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path =
            write_key_lines("aa candidates.read,candidates.write deploy\nbb candidates.read ci", dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "aa candidates.read,candidates.write deploy\nbb candidates.read ci\n"
        );
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        // A second init in the same environment replaces the file.
        write_key_lines("cc candidates.write x\n", dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "cc candidates.write x\n");
    }
}
