//! Cross-file invariants of the Terraform in `terraform/<cloud>/`, checked offline (no providers,
//! no credentials): the load balancers' health checks and ports agree with the binary's defaults,
//! the permissions granted equal the calls the store backend makes (and the README's list), and
//! only the public load balancer is reachable from the internet; and (rules.rs) the clouds' API
//! rules that a real apply, validation or scale demo would otherwise trip over.

mod infra;

// The real binary, for rules that depend on what it answers (the Azure health extension's mode).
#[path = "../common/mod.rs"]
mod common;

mod aws;
mod azure;
mod gcp;
mod instance_config;
mod rules;
mod schema;
