//! The candidates API crate: code generated from `proto/candidates/v1/candidates.proto`.
//!
//! - [`v1`]: prost messages with proto3-JSON serde impls, the tonic client and server.
//! - [`name`]: the name rules of the wire contract; [`DEFAULT_PAGE_SIZE`], [`MAX_PAGE_SIZE`].
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for gRPC reflection and for tools that read
//!   the `google.api.http` annotations.

/// `candidates.v1`: messages, `candidate_service_client` and `candidate_service_server`.
pub mod v1 {
    tonic::include_proto!("candidates.v1");
    include!(concat!(env!("OUT_DIR"), "/candidates.v1.serde.rs"));
}

pub mod api_key;
pub mod name;

/// The fully qualified gRPC service name, as health checks and reflection know it (tonic's, from
/// the .proto).
pub const SERVICE_NAME: &str = v1::candidate_service_server::SERVICE_NAME;

/// Page size of `ListCandidates` when the request leaves it at 0.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Largest page a request may ask for; larger requests are lowered to it (AIP-158).
pub const MAX_PAGE_SIZE: usize = 1000;

/// Encoded `google.protobuf.FileDescriptorSet` of the API and its imports.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("candidates_descriptor");

/// An error and its sources, joined by `: ` (repeats dropped): one line for logs and messages.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut current = e.source();
    while let Some(inner) = current {
        parts.push(inner.to_string());
        current = inner.source();
    }
    parts.dedup();
    parts.join(": ")
}
