//! The spans' way out: OTLP over gRPC or HTTP (protobuf), from a task of its own. Requests hand
//! finished spans to a bounded queue and never wait: a full queue drops the span (counted in
//! `trace_spans_dropped_total`), and an unreachable or slow collector only delays this task, each
//! export bounded by [`EXPORT_TIMEOUT`]. Spans are sent in batches of up to [`MAX_BATCH`], at
//! least every [`BATCH_DELAY`]; [`flush`] sends what is queued at shutdown.

use std::{
    sync::OnceLock,
    time::{Duration, SystemTime},
};

use candidates_edge::{
    throttle::Throttle,
    trace::{self, Kind, Span, Value},
};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{ExportTraceServiceRequest, trace_service_client::TraceServiceClient},
    common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value},
    resource::v1::Resource,
    trace::v1::{ResourceSpans, ScopeSpans, Status, span::SpanKind, status::StatusCode},
};
use prost::Message;
use tokio::sync::{mpsc, oneshot};

use crate::config::OtlpProtocol;

/// Spans waiting to be sent; beyond this they are dropped (at 100 % sampling and three spans a
/// request, about a second of a busy instance's traffic).
pub const QUEUE: usize = 8192;
/// Spans per export request.
pub const MAX_BATCH: usize = 512;
/// Longest a span waits in the queue before its batch is sent.
pub const BATCH_DELAY: Duration = Duration::from_secs(2);
/// Longest one export may take (connection included).
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how to send, and the resource the spans come from.
pub struct Otlp {
    pub endpoint: http::Uri,
    pub protocol: OtlpProtocol,
    pub service_name: String,
    pub instance_id: String,
    pub sample_ratio: f64,
}

struct Queue(mpsc::Sender<Span>);

impl trace::Exporter for Queue {
    fn export(&self, span: Span) {
        if self.0.try_send(span).is_err() {
            metrics::counter!("trace_spans_dropped_total").increment(1);
        }
    }
}

static FLUSH: OnceLock<mpsc::Sender<oneshot::Sender<()>>> = OnceLock::new();

/// Turns traces on for the life of the process and starts the exporting task (on the current
/// runtime). False if traces were already on (a second application in one process, in tests).
pub fn start(config: Otlp) -> bool {
    let (spans, queued) = mpsc::channel(QUEUE);
    if !trace::install(config.sample_ratio, Queue(spans)) {
        return false;
    }
    let (flush, flushes) = mpsc::channel(1);
    let _ = FLUSH.set(flush);
    metrics::describe_counter!(
        "trace_spans_dropped_total",
        "finished spans dropped, the export queue being full (a slow or unreachable collector)"
    );
    metrics::describe_counter!("trace_spans_exported_total", "spans the OTLP collector accepted");
    metrics::describe_counter!("trace_export_failures_total", "OTLP export requests that failed or timed out");
    tracing::info!(endpoint = %config.endpoint, protocol = ?config.protocol, sample_ratio = config.sample_ratio, "traces exported over OTLP");
    let sender = Sender::new(&config);
    let resource = resource(&config);
    tokio::spawn(run(sender, resource, queued, flushes));
    true
}

/// Sends the spans still queued (at most `timeout`): call it when the server has stopped.
pub async fn flush(timeout: Duration) {
    let Some(flush) = FLUSH.get() else { return };
    let (done, flushed) = oneshot::channel();
    let _ = tokio::time::timeout(timeout, async {
        if flush.send(done).await.is_ok() {
            let _ = flushed.await;
        }
    })
    .await;
}

async fn run(
    sender: Sender,
    resource: Resource,
    mut queued: mpsc::Receiver<Span>,
    mut flushes: mpsc::Receiver<oneshot::Sender<()>>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut tick = tokio::time::interval(BATCH_DELAY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            received = queued.recv_many(&mut batch, MAX_BATCH) => {
                if received == 0 {
                    break;
                }
                if batch.len() >= MAX_BATCH {
                    sender.send(&resource, std::mem::take(&mut batch)).await;
                }
            }
            _ = tick.tick() => {
                if !batch.is_empty() {
                    sender.send(&resource, std::mem::take(&mut batch)).await;
                }
            }
            Some(done) = flushes.recv() => {
                while let Ok(span) = queued.try_recv() {
                    batch.push(span);
                    if batch.len() >= MAX_BATCH {
                        sender.send(&resource, std::mem::take(&mut batch)).await;
                    }
                }
                if !batch.is_empty() {
                    sender.send(&resource, std::mem::take(&mut batch)).await;
                }
                let _ = done.send(());
            }
        }
    }
}

enum Sender {
    Grpc(TraceServiceClient<tonic::transport::Channel>),
    Http { client: reqwest::Client, url: String },
}

impl Sender {
    fn new(config: &Otlp) -> Self {
        match config.protocol {
            OtlpProtocol::Grpc => {
                let channel = tonic::transport::Endpoint::from(config.endpoint.clone())
                    .connect_timeout(EXPORT_TIMEOUT)
                    .timeout(EXPORT_TIMEOUT)
                    .connect_lazy();
                Self::Grpc(TraceServiceClient::new(channel))
            }
            OtlpProtocol::Http => {
                let base = config.endpoint.to_string();
                let url = match config.endpoint.path() {
                    "" | "/" => format!("{}/v1/traces", base.trim_end_matches('/')),
                    _ => base,
                };
                let client = reqwest::Client::builder()
                    .timeout(EXPORT_TIMEOUT)
                    .connect_timeout(EXPORT_TIMEOUT)
                    .build()
                    .unwrap_or_default();
                Self::Http { client, url }
            }
        }
    }

    async fn send(&self, resource: &Resource, spans: Vec<Span>) {
        let count = spans.len() as u64;
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "candidates".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..Default::default()
                    }),
                    spans: spans.into_iter().map(to_proto).collect(),
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let result = match self {
            Self::Grpc(client) => {
                let mut client = client.clone();
                match tokio::time::timeout(EXPORT_TIMEOUT, client.export(request)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(status)) => Err(format!("{:?}: {}", status.code(), status.message())),
                    Err(_) => Err("timed out".to_owned()),
                }
            }
            Self::Http { client, url } => {
                let call = client
                    .post(url)
                    .header(http::header::CONTENT_TYPE, "application/x-protobuf")
                    .body(request.encode_to_vec())
                    .send();
                match call.await {
                    Ok(response) if response.status().is_success() => Ok(()),
                    Ok(response) => Err(format!("HTTP {}", response.status())),
                    Err(error) => Err(error.to_string()),
                }
            }
        };
        match result {
            Ok(()) => metrics::counter!("trace_spans_exported_total").increment(count),
            Err(error) => {
                metrics::counter!("trace_export_failures_total").increment(1);
                metrics::counter!("trace_spans_dropped_total").increment(count);
                static FAILED: Throttle = Throttle::new("OTLP export failed");
                if FAILED.admit(|| error.clone()) {
                    tracing::warn!(%error, spans = count, "OTLP export failed: these spans are dropped");
                }
            }
        }
    }
}

fn resource(config: &Otlp) -> Resource {
    Resource {
        attributes: vec![
            attribute("service.name", Value::from(config.service_name.clone())),
            attribute("service.instance.id", Value::from(config.instance_id.clone())),
            attribute("service.version", Value::from(env!("CARGO_PKG_VERSION"))),
        ],
        ..Default::default()
    }
}

fn attribute(key: &str, value: Value) -> KeyValue {
    let value = match value {
        Value::Str(s) => any_value::Value::StringValue(s.into_owned()),
        Value::Int(i) => any_value::Value::IntValue(i),
    };
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// OTLP's span flags: the W3C flags (sampled) and whether the parent's remoteness is known (bit
/// 8) and is remote (bit 9).
const SAMPLED: u32 = 0x1;
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

fn to_proto(span: Span) -> opentelemetry_proto::tonic::trace::v1::Span {
    let kind = match span.kind {
        Kind::Server => SpanKind::Server,
        Kind::Internal => SpanKind::Internal,
        Kind::Client => SpanKind::Client,
    };
    let status = match &span.error {
        Some(message) => Status { message: message.clone(), code: StatusCode::Error as i32 },
        None => Status { message: String::new(), code: StatusCode::Unset as i32 },
    };
    opentelemetry_proto::tonic::trace::v1::Span {
        trace_id: span.trace_id.to_be_bytes().to_vec(),
        span_id: span.span_id.to_be_bytes().to_vec(),
        parent_span_id: if span.parent_span_id == 0 { Vec::new() } else { span.parent_span_id.to_be_bytes().to_vec() },
        flags: SAMPLED | HAS_IS_REMOTE | if span.remote_parent { IS_REMOTE } else { 0 },
        name: span.name.into_owned(),
        kind: kind as i32,
        start_time_unix_nano: unix_nanos(span.start),
        end_time_unix_nano: unix_nanos(span.end),
        attributes: span.attributes.into_iter().map(|(k, v)| attribute(k, v)).collect(),
        status: Some(status),
        ..Default::default()
    }
}
