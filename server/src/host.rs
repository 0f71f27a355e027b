//! The REST API for hosts that bring their own front door (AWS Lambda, Azure Functions custom
//! handlers, Cloud Run): the same gateway, service and store as the binary's REST listener, built
//! once per execution environment, without the binary's listeners, drain or gRPC port. The host
//! adapter decides how requests arrive and hands them to this router.

use std::{
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use candidates_gateway as gateway;

use crate::{
    StartError,
    app::{load_auth, open_store},
    config::Config,
    grpc,
    service::CandidateApi,
};

/// The REST router over the configured store, ready at once: a platform sends requests only to
/// environments that finished their start, and retires them itself. `instance_id` is what
/// `/gtg?details` reports (the host's name for the environment, e.g. Lambda's log stream).
pub async fn rest_router(config: &Config, instance_id: String) -> Result<axum::Router, StartError> {
    config.validate()?;
    let store = open_store(config).await?;
    let auth = load_auth(config).await?;
    let api = CandidateApi::new(store, instance_id, config.status_cache, auth.clone());
    let upstream = grpc::in_process(api, config.request_timeout);
    // gRPC-Web needs the gRPC router and its edge; these hosts serve REST only.
    let options = config.gateway_options(auth, None)?;
    let (ready, readiness) = tokio::sync::watch::channel(true);
    // Ready for the environment's whole life: nothing here ever drains it.
    std::mem::forget(ready);
    Ok(gateway::router(upstream, readiness, options))
}

/// `CANDIDATES_API_KEY_LINES` (the hosts only): the API key file's lines (`<sha256 hex> <scopes>
/// <name>`, digests, never keys), for a deployment whose key is made after the package is built
/// (terraform/serverless/{aws,azure}): written to an owner-only file in `dir` (the host's
/// temporary directory), which then is `--api-keys-file`. Not both. Nothing to do without it.
pub fn api_key_lines_from_env(config: &mut Config, dir: &Path) -> Result<(), String> {
    let Some(lines) = std::env::var_os("CANDIDATES_API_KEY_LINES") else { return Ok(()) };
    let path = match (&config.api_keys_file, lines.to_str()) {
        (Some(_), _) => return Err("set CANDIDATES_API_KEY_LINES or CANDIDATES_API_KEYS_FILE, not both".to_owned()),
        (None, None) => return Err("CANDIDATES_API_KEY_LINES is not UTF-8".to_owned()),
        (None, Some(lines)) => write_key_lines(lines, dir).map_err(|e| format!("cannot write the key file: {e}"))?,
    };
    config.api_keys_file = Some(path);
    Ok(())
}

/// Writes the key file's lines to `dir/candidates-api-keys` (owner-only, replacing an earlier
/// start's) and returns its path. A trailing newline is added when missing.
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
        // A second start in the same environment replaces the file.
        write_key_lines("cc candidates.write x\n", dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "cc candidates.write x\n");
    }
}
