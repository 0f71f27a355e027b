//! Cross-file invariants of the Terraform in `terraform/<cloud>/`, checked offline (no providers,
//! no credentials): the load balancers' health checks and ports agree with the binary's defaults
//! (`Config`), the permissions granted equal each store backend's `REQUIRED_PERMISSIONS`, and only
//! the public load balancer is reachable from the internet; and (rules.rs) the clouds' API rules
//! that a real apply, validation or scale demo would otherwise trip over.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod infra;

mod access;
mod aws;
mod azure;
mod gcp;
mod https;
mod instance_config;
mod observability;
mod rules;
mod schema;
mod serverless;
mod state;
