//! `candidatectl`: talk to CandidateService over gRPC (default) or REST, check a deployment against
//! the wire contract, or load-test it.
//!
//! Exit codes: 0 ok, 1 check/load failures, 2 usage, 3 not found, 4 request rejected (4xx),
//! 5 server error (5xx / UNAVAILABLE ...), 6 cannot connect, 7 timeout.

use std::{process::ExitCode, sync::Arc, time::Duration};

use candidates_clients::{
    api::{Api, ClientError, Compression, GrpcApi, RestApi},
    check,
    credential::Credential,
    load, output,
};
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, parser::ValueSource};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(name = "candidatectl", version, about = "Client, contract check and load generator for CandidateService")]
struct Cli {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Args)]
struct Connection {
    /// Use the REST gateway instead of gRPC.
    #[arg(long, global = true, env = "CANDIDATECTL_REST")]
    rest: bool,
    /// Server URL (default http://127.0.0.1:50051 for gRPC, http://127.0.0.1:8000 for REST).
    #[arg(long, global = true, env = "CANDIDATECTL_TARGET")]
    target: Option<String>,
    /// Per-request timeout.
    #[arg(long, global = true, value_parser = humantime::parse_duration, default_value = "10s")]
    timeout: Duration,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// API key sent on every request (`Authorization: Bearer`; gRPC `authorization` metadata).
    /// Prefer the environment variable: a flag is visible to other users in the process list.
    #[arg(long, global = true, env = "CANDIDATES_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Send the API key even to a plain http:// target that is not on this machine (refused by
    /// default: the key would cross the network unencrypted). For a deployment without HTTPS.
    #[arg(long, global = true, env = "CANDIDATECTL_ALLOW_PLAINTEXT_KEY")]
    allow_plaintext_key: bool,
    /// Ask for compressed answers (REST `Accept-Encoding`; gRPC also compresses its requests).
    #[arg(long, global = true, value_enum, default_value_t = Compression::None, env = "CANDIDATECTL_COMPRESSION")]
    compression: Compression,
    /// PEM CA certificate(s) to trust for https:// targets, besides the system's roots.
    #[arg(long, global = true, env = "CANDIDATECTL_CA_FILE")]
    ca_file: Option<std::path::PathBuf>,
}

impl Connection {
    fn target(&self, rest: bool) -> String {
        self.target
            .clone()
            .unwrap_or_else(|| if rest { "http://127.0.0.1:8000".into() } else { "http://127.0.0.1:50051".into() })
    }

    fn credential(&self) -> Result<Credential, ClientError> {
        Credential::key(self.api_key.as_deref())
    }

    fn api(&self, connections: usize) -> Result<Arc<dyn Api>, ClientError> {
        let target = self.target(self.rest);
        Ok(if self.rest {
            Arc::new(RestApi::new(&target, self.timeout, connections, &self.credential()?, self.compression)?)
        } else {
            Arc::new(GrpcApi::new(&target, self.timeout, self.credential()?, self.compression)?)
        })
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show one candidate.
    Get { name: String },
    /// Add or update a candidate.
    Put { name: String },
    /// Delete a candidate.
    Delete { name: String },
    /// List candidates: every page, or one page with --page-size.
    List {
        /// Fetch one page of this size (and print its next_page_token) instead of all pages.
        #[arg(long)]
        page_size: Option<i32>,
        /// With --page-size: continue from this token.
        #[arg(long, default_value = "")]
        page_token: String,
    },
    /// Show what /gtg?details shows: store connectivity and instance id.
    Status,
    /// Run the whole wire contract against a live deployment over REST and gRPC
    /// (--rest-target / --grpc-target; --target and --rest do not apply).
    Check(check::CheckArgs),
    /// Generate load (closed- or open-loop) and report throughput, latency and a per-second
    /// timeline.
    Load(Box<load::LoadArgs>),
    /// API keys: `key mint` makes one (docs/security.md).
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Make a new API key. Prints the key (give it to the client, once) and the line for the
    /// server's --api-keys-file (its SHA-256 digest, scopes and name: no secret in it).
    Mint {
        /// The key's name in the key file and in the server's logs.
        #[arg(long, value_parser = key_name)]
        name: String,
        /// Comma-separated scopes: candidates.read, candidates.write.
        #[arg(long, default_value = "candidates.read,candidates.write", value_parser = scopes)]
        scopes: String,
    },
}

fn key_name(name: &str) -> Result<String, String> {
    let ok =
        !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    ok.then(|| name.to_owned()).ok_or_else(|| "1 to 64 of [A-Za-z0-9._-]".to_owned())
}

fn scopes(text: &str) -> Result<String, String> {
    use candidates_api::api_key::{SCOPE_READ, SCOPE_WRITE};
    let all: Vec<&str> = text.split(',').map(str::trim).collect();
    match all.iter().find(|s| **s != SCOPE_READ && **s != SCOPE_WRITE) {
        Some(bad) => Err(format!("unknown scope {bad:?}: use {SCOPE_READ} and/or {SCOPE_WRITE}")),
        None => Ok(all.join(",")),
    }
}

/// Flags that were typed on the command line (not from the environment or defaults).
fn given(matches: &ArgMatches, id: &str) -> bool {
    let typed = |m: &ArgMatches| m.value_source(id) == Some(ValueSource::CommandLine);
    typed(matches) || matches.subcommand().is_some_and(|(_, sub)| typed(sub))
}

#[tokio::main]
async fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // `check` needs two addresses (--rest-target, --grpc-target); a lone --target or --rest would
    // be silently ignored, so refuse them instead.
    if matches!(cli.command, Command::Check(_)) {
        for flag in ["target", "rest"] {
            if given(&matches, flag) {
                eprintln!(
                    "candidatectl: --{flag} does not apply to `check`: use --rest-target URL and --grpc-target URL"
                );
                return ExitCode::from(2);
            }
        }
    }
    match run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("candidatectl: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, ClientError> {
    let conn = cli.conn;
    if let Some(path) = &conn.ca_file {
        candidates_clients::tls::trust_ca_file(path)?;
    }
    if conn.api_key.is_some() && !conn.allow_plaintext_key {
        let targets = match &cli.command {
            Command::Check(args) => [
                (!args.skip_rest).then(|| args.rest_target.clone()),
                (!args.skip_grpc).then(|| args.grpc_target.clone()),
            ],
            Command::Key(_) => [None, None],
            _ => [Some(conn.target(conn.rest)), None],
        };
        if let Some(target) = targets.iter().flatten().find(|t| candidates_clients::tls::key_would_travel_in_clear(t)) {
            eprintln!(
                "candidatectl: refusing to send the API key over plain HTTP to {target}: use an https:// target, or --allow-plaintext-key (CANDIDATECTL_ALLOW_PLAINTEXT_KEY) to send it anyway"
            );
            return Ok(ExitCode::from(2));
        }
    }
    match cli.command {
        Command::Get { name } => print_candidate(&conn, conn.api(1)?.get(&name).await?),
        Command::Put { name } => print_candidate(&conn, conn.api(1)?.put(&name).await?),
        Command::Delete { name } => print_candidate(&conn, conn.api(1)?.delete(&name).await?),
        Command::List { page_size, page_token } => {
            let api = conn.api(1)?;
            let (names, next) = match page_size {
                Some(size) => {
                    let page = api.list_page(size, &page_token).await?;
                    (page.candidates.into_iter().map(|c| c.name).collect(), Some(page.next_page_token))
                }
                None => (list_all(api.as_ref()).await?, None),
            };
            if conn.json {
                let mut value = json!({ "candidates": names });
                if let Some(next) = next {
                    value["next_page_token"] = json!(next);
                }
                output::print_json(&value);
            } else {
                println!("{}", output::table(&["CandidateName"], names.iter().map(|n| [n.clone()])));
                match next {
                    Some(next) if !next.is_empty() => println!("next page: --page-token {next}"),
                    _ => eprintln!("{} candidate(s)", names.len()),
                }
            }
        }
        Command::Status => {
            let status = conn.api(1)?.status().await?;
            if conn.json {
                output::print_json(&json!({"connected": status.connected, "instance-id": status.instance_id}));
            } else {
                let rows = [["connected".to_owned(), status.connected], ["instance-id".to_owned(), status.instance_id]];
                println!("{}", output::table(&["field", "value"], rows));
            }
        }
        Command::Check(args) => {
            let report = check::run(conn.timeout, &args, &conn.credential()?).await;
            return Ok(if report.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        Command::Load(args) => {
            let report = load::run(
                &conn.target(conn.rest),
                conn.rest,
                conn.timeout,
                &args,
                &conn.credential()?,
                conn.compression,
            )
            .await?;
            if conn.json {
                output::print_json(&report.to_json());
            } else {
                println!("{}", report.render());
            }
            return Ok(if report.failed_threshold(args.max_error_rate) {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            });
        }
        Command::Key(KeyCommand::Mint { name, scopes }) => {
            let key = candidates_api::api_key::mint().map_err(|e| ClientError {
                kind: candidates_clients::api::ErrorKind::Rejected,
                status: "no_randomness".into(),
                message: format!("cannot get random bytes from the system: {e}"),
            })?;
            let line = candidates_api::api_key::file_line(&key, &scopes, &name);
            if conn.json {
                output::print_json(&json!({ "key": key, "key_file_line": line }));
            } else {
                println!("key:           {key}");
                println!("key file line: {line}");
                eprintln!("Give the key to its client once; add the line to the server's --api-keys-file.");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_candidate(conn: &Connection, name: String) {
    if conn.json {
        output::print_json(&json!({ "CandidateName": name }));
    } else {
        println!("{}", output::table(&["CandidateName"], [[name]]));
    }
}

/// Every candidate, following next_page_token to the end.
async fn list_all(api: &dyn Api) -> Result<Vec<String>, ClientError> {
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let page = api.list_page(1000, &token).await?;
        names.extend(page.candidates.into_iter().map(|c| c.name));
        if page.next_page_token.is_empty() {
            return Ok(names);
        }
        token = page.next_page_token;
    }
}
