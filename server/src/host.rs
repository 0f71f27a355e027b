//! The REST API for hosts that bring their own front door (AWS Lambda, Azure Functions custom
//! handlers, Cloud Run): the same gateway, service and store as the binary's REST listener, built
//! once per execution environment, without the binary's listeners, drain or gRPC port. The host
//! adapter decides how requests arrive and hands them to this router.

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
