//! Clients of CandidateService: the API over gRPC or REST, the contract check, the load
//! generator and the scaling-group rehearsal behind `candidatectl`.

pub mod api;
pub mod check;
pub mod fleet;
pub mod load;
pub mod output;
