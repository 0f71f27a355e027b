//! The candidates service: `CandidateService` over a pluggable store, served over gRPC and, through
//! the gateway crate, REST. `main.rs` is thin; everything here is usable from tests.

pub mod allocator;
pub mod app;
pub mod config;
pub mod grpc;
pub mod jitter;
pub mod lifecycle;
pub mod metadata;
pub mod metrics;
/// The name rules live in the API crate, next to the wire contract.
pub use candidates_api::name;
pub mod serve;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod upkeep;

pub use app::{Application, StartError};
pub use config::Config;
