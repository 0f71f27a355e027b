//! Traces: one span per request at each listener's edge (`observe`), one per service call and one
//! per store attempt ([`child`]), W3C `traceparent` honoured (the incoming span is the parent, its
//! sampled flag decides) and passed on ([`current`]).
//!
//! Off unless the server [`install`]s an exporter (`--otlp-endpoint`): then every entry point is
//! one load of a `OnceLock` that finds nothing, and no span, id or clock read is made. On, a
//! request without a sampled parent is sampled with the configured ratio; an unsampled request
//! still gets ids (so that what it calls does not sample it either) but records nothing.
//!
//! A client decides the sampled flag it sends, so honouring it is bounded: at most
//! [`REMOTE_SAMPLED_PER_SECOND`] traces a second are sampled because an incoming `traceparent`
//! said so (attacker review: a client sending `-01` on every request filled the export queue and
//! crowded out the traces the ratio chose); beyond it the ratio decides, as for a new trace.
//!
//! Spans are ours, not an OpenTelemetry SDK's: a finished [`Span`] is handed to the exporter,
//! which queues it (bounded) and sends batches over OTLP from a task of its own
//! (`candidates_server::telemetry::otlp`). The context of the span being served travels in a
//! task-local, like the request id (`context`).

use std::{
    borrow::Cow,
    future::Future,
    sync::{
        OnceLock,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use http::HeaderValue;

/// The ids of a span and whether its trace is sampled (recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanContext {
    pub trace_id: u128,
    pub span_id: u64,
    pub sampled: bool,
}

impl SpanContext {
    /// The W3C `traceparent` of this span (version 00), for a call it makes.
    #[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
    pub fn traceparent(&self) -> HeaderValue {
        let text = format!("00-{:032x}-{:016x}-{:02x}", self.trace_id, self.span_id, u8::from(self.sampled));
        HeaderValue::from_str(&text).expect("hex digits and dashes are a valid header value")
    }

    /// The trace id as 32 lowercase hex digits, written into `buffer`.
    pub fn trace_id_hex<'b>(&self, buffer: &'b mut [u8; 32]) -> &'b str {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, byte) in self.trace_id.to_be_bytes().iter().enumerate() {
            buffer[2 * i] = HEX[usize::from(byte >> 4)];
            buffer[2 * i + 1] = HEX[usize::from(byte & 0xf)];
        }
        std::str::from_utf8(buffer).unwrap_or_default()
    }
}

/// A `traceparent` already checked by `observe::TraceContext` (any version: the first four fields
/// are where version 00 has them): the parent's trace id, span id and sampled flag.
fn parse_traceparent(value: &[u8]) -> Option<SpanContext> {
    let text = std::str::from_utf8(value.get(..55)?).ok()?;
    let trace_id = u128::from_str_radix(&text[3..35], 16).ok()?;
    let span_id = u64::from_str_radix(&text[36..52], 16).ok()?;
    let flags = u8::from_str_radix(&text[53..55], 16).ok()?;
    (trace_id != 0 && span_id != 0).then_some(SpanContext { trace_id, span_id, sampled: flags & 1 == 1 })
}

/// What a span is: its place in the call (OTLP's span kinds that we use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A request received (the edge span).
    Server,
    /// Work inside the process (the service call).
    Internal,
    /// A call out (a store attempt).
    Client,
}

/// An attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(Cow<'static, str>),
    Int(i64),
}

impl From<&'static str> for Value {
    fn from(value: &'static str) -> Self {
        Self::Str(Cow::Borrowed(value))
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Self::Str(Cow::Owned(value))
    }
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

/// A finished, sampled span, as handed to the exporter.
#[derive(Debug, Clone)]
pub struct Span {
    pub trace_id: u128,
    pub span_id: u64,
    /// 0 for a root span.
    pub parent_span_id: u64,
    /// Whether the parent came from another process (an incoming `traceparent`).
    pub remote_parent: bool,
    pub name: Cow<'static, str>,
    pub kind: Kind,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<(&'static str, Value)>,
    /// Set when the span failed: its status is then ERROR with this message.
    pub error: Option<String>,
}

/// What a span says once its work is done: name, attributes and error, computed only for sampled
/// spans.
#[derive(Debug, Clone)]
pub struct Described {
    pub name: Cow<'static, str>,
    pub attributes: Vec<(&'static str, Value)>,
    pub error: Option<String>,
}

/// Takes finished spans. It must never block nor fail the request: queue and send elsewhere.
pub trait Exporter: Send + Sync + 'static {
    fn export(&self, span: Span);
}

/// Traces a second sampled on an incoming `traceparent`'s word: about a quarter of what the
/// exporter's queue (8,192 spans, sent every 2 s) carries at 4 spans a trace.
pub const REMOTE_SAMPLED_PER_SECOND: u32 = 250;

struct Tracer {
    ratio: f64,
    exporter: Box<dyn Exporter>,
    remote: Budget,
}

/// A per-second allowance, without locks: the second it counts, and how much of it is used.
#[derive(Default)]
struct Budget {
    second: AtomicU64,
    used: AtomicU32,
}

impl Budget {
    /// Whether one more is allowed in second `now` (of at most `limit`).
    fn admit(&self, now: u64, limit: u32) -> bool {
        let second = self.second.load(Ordering::Relaxed);
        if second != now && self.second.compare_exchange(second, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            self.used.store(0, Ordering::Relaxed);
        }
        self.used.fetch_add(1, Ordering::Relaxed) < limit
    }
}

static TRACER: OnceLock<Tracer> = OnceLock::new();

tokio::task_local! {
    static CURRENT: SpanContext;
}

/// Turns tracing on for the life of the process: requests without a sampled parent are sampled
/// with `ratio` (0 to 1), and sampled spans go to `exporter`. False if it was already on.
pub fn install(ratio: f64, exporter: impl Exporter) -> bool {
    TRACER.set(Tracer { ratio: ratio.clamp(0.0, 1.0), exporter: Box::new(exporter), remote: Budget::default() }).is_ok()
}

/// Whether tracing is on (one atomic load).
#[inline]
pub fn enabled() -> bool {
    TRACER.get().is_some()
}

/// The span being served by this task, sampled or not; `None` when tracing is off or outside a
/// request.
#[inline]
pub fn current() -> Option<SpanContext> {
    if !enabled() {
        return None;
    }
    CURRENT.try_with(|c| *c).ok()
}

fn unix_second() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn new_span_id() -> u64 {
    fastrand::u64(1..)
}

/// The edge span of a request: started by `observe` when tracing is on.
#[derive(Debug)]
pub struct Root {
    context: SpanContext,
    parent: Option<SpanContext>,
    /// Whether the parent is another process's (an incoming `traceparent`).
    remote: bool,
    start: SystemTime,
}

impl Root {
    /// The request's span: a child of the span this task already serves (a gRPC-Web call is
    /// served by the gRPC listener's edge inside the REST one's), else of the incoming
    /// `traceparent` (checked by `observe::TraceContext`), sampled as it says; else a new trace,
    /// sampled with the configured ratio. `None` when tracing is off.
    pub fn start(incoming: Option<&HeaderValue>) -> Option<Self> {
        let tracer = TRACER.get()?;
        let local = CURRENT.try_with(|c| *c).ok();
        let parent = local.or_else(|| incoming.and_then(|v| parse_traceparent(v.as_bytes())));
        let remote = local.is_none() && parent.is_some();
        let by_ratio = || fastrand::f64() < tracer.ratio;
        let context = match parent {
            // Within this process: the parent's decision, always.
            Some(parent) if !remote => {
                SpanContext { trace_id: parent.trace_id, span_id: new_span_id(), sampled: parent.sampled }
            }
            // Another process's word, within the allowance.
            Some(parent) => {
                let sampled =
                    parent.sampled && (tracer.remote.admit(unix_second(), REMOTE_SAMPLED_PER_SECOND) || by_ratio());
                SpanContext { trace_id: parent.trace_id, span_id: new_span_id(), sampled }
            }
            None => SpanContext { trace_id: fastrand::u128(1..), span_id: new_span_id(), sampled: by_ratio() },
        };
        let start = if context.sampled { SystemTime::now() } else { SystemTime::UNIX_EPOCH };
        Some(Self { context, parent, remote, start })
    }

    pub fn context(&self) -> SpanContext {
        self.context
    }

    /// Runs `future` as this span (what it calls becomes its child).
    pub fn scope<F: Future>(&self, future: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(self.context, future)
    }

    /// Ends the span; `describe` runs only if it is sampled.
    pub fn finish(self, describe: impl FnOnce() -> Described) {
        let Some(tracer) = TRACER.get().filter(|_| self.context.sampled) else { return };
        let Described { name, attributes, error } = describe();
        tracer.exporter.export(Span {
            trace_id: self.context.trace_id,
            span_id: self.context.span_id,
            parent_span_id: self.parent.map_or(0, |p| p.span_id),
            remote_parent: self.remote,
            name,
            kind: Kind::Server,
            start: self.start,
            end: SystemTime::now(),
            attributes,
            error,
        });
    }
}

/// Runs `future` as a child span of the current one, if that is sampled; `describe` (name, kind,
/// attributes) and `error` (the outcome's error message, if it failed) run only then. Off, or
/// outside a sampled request, this is one load and a branch.
pub async fn child<F: Future>(
    describe: impl FnOnce() -> (Cow<'static, str>, Kind, Vec<(&'static str, Value)>),
    future: F,
    error: impl FnOnce(&F::Output) -> Option<String>,
) -> F::Output {
    let parent = match current() {
        Some(parent) if parent.sampled => parent,
        _ => return future.await,
    };
    let context = SpanContext { trace_id: parent.trace_id, span_id: new_span_id(), sampled: true };
    let start = SystemTime::now();
    let output = CURRENT.scope(context, future).await;
    let end = SystemTime::now();
    if let Some(tracer) = TRACER.get() {
        let (name, kind, attributes) = describe();
        tracer.exporter.export(Span {
            trace_id: context.trace_id,
            span_id: context.span_id,
            parent_span_id: parent.span_id,
            remote_parent: false,
            name,
            kind,
            start,
            end,
            attributes,
            error: error(&output),
        });
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_the_trace_id_prints_as_hex() {
        let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parsed = parse_traceparent(text.as_bytes()).unwrap();
        assert_eq!(parsed.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(parsed.span_id, 0x00f067aa0ba902b7);
        assert!(parsed.sampled);
        assert_eq!(parsed.traceparent().to_str().unwrap(), text);
        let mut buffer = [0u8; 32];
        assert_eq!(parsed.trace_id_hex(&mut buffer), "4bf92f3577b34da6a3ce929d0e0e4736");
        let unsampled = parse_traceparent(b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02-later").unwrap();
        assert!(!unsampled.sampled, "only bit 0 is the sampled flag");
        assert!(unsampled.traceparent().to_str().unwrap().ends_with("-00"));
    }

    #[test]
    fn the_remote_allowance_is_per_second() {
        let budget = Budget::default();
        assert!((0..3).all(|_| budget.admit(100, 3)));
        assert!(!budget.admit(100, 3), "the fourth in one second is refused");
        assert!(budget.admit(101, 3), "a new second, a new allowance");
        assert!(budget.admit(101, 3) && budget.admit(101, 3) && !budget.admit(101, 3));
    }

    #[tokio::test]
    async fn off_there_is_no_span_and_no_context() {
        // This test binary never installs a tracer.
        assert!(
            Root::start(Some(&HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")))
                .is_none()
        );
        assert_eq!(child(|| unreachable!(), async { 7 }, |_| unreachable!()).await, 7);
        assert_eq!(current(), None);
    }
}
