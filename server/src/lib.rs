//! The candidates service: `CandidateService` over a pluggable store, served over gRPC and, through
//! the gateway crate, REST. `main.rs` is thin. Public: what the binary and the tests build on (the
//! application, its configuration, the service, the stores, the gRPC edge, metrics labels,
//! logging); the rest is internal.

pub(crate) mod allocator;
pub mod app;
pub mod config;
pub mod grpc;
pub mod host;
pub(crate) mod jitter;
pub(crate) mod lifecycle;
pub(crate) mod metadata;
pub mod metrics;
pub mod runtime;
/// The name rules live in the API crate, next to the wire contract.
pub use candidates_api::name;
pub(crate) mod serve;
pub mod service;
pub mod store;
pub mod telemetry;
pub(crate) mod upkeep;

pub use app::{Application, StartError};
pub use config::Config;
