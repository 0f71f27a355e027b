//! The candidates API crate: code generated from `proto/candidates/v1/candidates.proto`.
//!
//! - [`v1`]: prost messages with proto3-JSON serde impls, the tonic client and server.
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for gRPC reflection and for tools that read
//!   the `google.api.http` annotations.

/// `candidates.v1`: messages, `candidate_service_client` and `candidate_service_server`.
pub mod v1 {
    tonic::include_proto!("candidates.v1");
    include!(concat!(env!("OUT_DIR"), "/candidates.v1.serde.rs"));
}

/// The fully qualified gRPC service name, as health checks and reflection know it.
pub const SERVICE_NAME: &str = "candidates.v1.CandidateService";

/// Encoded `google.protobuf.FileDescriptorSet` of the API and its imports.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("candidates_descriptor");
