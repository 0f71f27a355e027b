//! The edge both listeners share (REST in `candidates-gateway`, gRPC in `candidates-server`):
//! who may call what (`auth`), request context and ids, the access line, admission and limits, in-flight gauges, and the
//! throttle for log lines that repeat per request. It knows HTTP and nothing about stores or the
//! API's messages; stores use only its task-local request id and log throttle.

pub mod auth;
pub mod context;
pub mod limit;
pub mod observe;
pub mod throttle;
