//! The scaling-group rehearsal: what the clouds run (a load balancer, instances that boot, drain
//! and die, an autoscaler, a shared store that stalls), on this machine with real parts, driven
//! by `candidatectl`'s load generator; and the chart of its timeline. Its own crate and binary,
//! so that the operator's client does not ship process control and plotting.

pub mod fleet;
