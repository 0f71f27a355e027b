//! Clients of CandidateService: the API over gRPC or REST, the contract check and the load
//! generator behind `candidatectl` (the scaling-group rehearsal, which drives the load generator,
//! is its own crate: `rehearsal/`).

pub mod api;
pub mod check;
pub mod credential;
pub mod load;
pub mod output;
pub mod tls;
