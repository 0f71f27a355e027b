//! The REST API for hosts that bring their own front door (AWS Lambda, Azure Functions custom
//! handlers, Cloud Run): the same gateway, service and store as the binary's REST listener, built
//! once per execution environment, without the binary's listeners, drain or gRPC port. The host
//! adapter decides how requests arrive and hands them to this router.

use std::sync::Arc;

use candidates_gateway as gateway;

use crate::{StartError, app::open_store, config::Config, grpc, service::CandidateApi};

/// The REST router over the configured store, ready at once: a platform sends requests only to
/// environments that finished their start, and retires them itself. `instance_id` is what
/// `/gtg?details` reports (the host's name for the environment, e.g. Lambda's log stream).
pub async fn rest_router(config: &Config, instance_id: String) -> Result<axum::Router, StartError> {
    config.validate()?;
    let store = open_store(config).await?;
    let auth = Arc::new(config.auth()?);
    if let Some(keys) = auth.keys() {
        keys.reload_and_report().await;
    }
    if let Some(oidc) = auth.oidc() {
        oidc.refresh().await;
    }
    let api = CandidateApi::new(store, instance_id, config.status_cache, auth.clone());
    let upstream = grpc::in_process(api, config.request_timeout);
    let options = gateway::Options {
        limits: config.admission(),
        send_timeout: config.send_timeout,
        auth,
        cors: config.cors()?,
        compression: config.compression,
        // gRPC-Web needs the gRPC router and its edge; the single-port hosts serve REST only.
        grpc_web: None,
    };
    let (ready, readiness) = tokio::sync::watch::channel(true);
    // Ready for the environment's whole life: nothing here ever drains it.
    std::mem::forget(ready);
    Ok(gateway::router(upstream, readiness, options))
}
