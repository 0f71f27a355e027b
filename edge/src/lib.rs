//! The edge both listeners share (REST in `candidates-gateway`, gRPC in `candidates-server`):
//! who may call what (`auth`), request context and ids, the access line, admission and limits, in-flight gauges, and the
//! throttle for log lines that repeat per request. It knows HTTP and nothing about stores or the
//! API's messages; stores use only its task-local request id and log throttle.

pub mod auth;
pub mod context;
pub mod limit;
pub mod observe;
pub mod throttle;
pub mod time;
pub mod trace;

/// Responses smaller than this are sent uncompressed on both listeners, whatever the client
/// accepts: a compressed frame of a few bytes costs more CPU than the bytes it saves.
pub const COMPRESSION_MIN_BYTES: u16 = 1024;
