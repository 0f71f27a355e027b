//! Cross-file invariants of the Terraform in `terraform/<cloud>/`, checked offline (no providers,
//! no credentials): the load balancers' health checks and ports agree with the binary's defaults,
//! the permissions granted equal the calls the store backend makes (and the README's list), and
//! only the public load balancer is reachable from the internet.

mod infra;

mod aws;
mod azure;
mod gcp;
mod instance_config;
mod schema;
