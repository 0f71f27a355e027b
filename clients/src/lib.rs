//! Clients of CandidateService: the API over gRPC or REST, the contract check and the load
//! generator behind `candidatectl`.

pub mod api;
pub mod check;
pub mod load;
pub mod output;
