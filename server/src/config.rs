//! All configuration, in one typed struct read once at start from flags and the environment
//! (every flag has an env name). Defaults run with nothing configured: the embedded store and both
//! listeners on 127.0.0.1.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use candidates_edge::auth::{Auth, KeyRing, OidcConfig, Policy, Rule, Verifier};
use clap::{Parser, ValueEnum};

use crate::store::StoreArgs;
pub use crate::store::StoreKind;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "candidate-server",
    version,
    args_override_self = true,
    about = "CandidateService: gRPC (tonic) and the REST gateway (axum) over a pluggable candidate store",
    after_help = "Every flag can also be set through the environment variable shown with it."
)]
pub struct Config {
    /// REST listener (the HTTP/JSON gateway, /gtg for load balancers).
    #[arg(long, env = "CANDIDATES_HTTP_ADDR", default_value = "127.0.0.1:8000")]
    pub http_addr: SocketAddr,

    /// gRPC listener (CandidateService, grpc.health.v1, reflection).
    #[arg(long, env = "CANDIDATES_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,

    /// One port for everything: the REST listener also serves gRPC (CandidateService, health,
    /// reflection), chosen per request by content type (`application/grpc`, `application/grpc+proto`;
    /// gRPC-Web stays with the REST router), and no gRPC listener is bound. For platforms that route
    /// one port (Cloud Run, App Runner, a Kubernetes ingress); gRPC needs HTTP/2 there (h2c with
    /// prior knowledge, or h2 over TLS).
    #[arg(long, env = "CANDIDATES_SINGLE_PORT")]
    pub single_port: bool,

    /// With --single-port: listen on this port, at --http-addr's IP address (Cloud Run and App
    /// Runner set `PORT`). Ignored without --single-port (not even parsed: a stray `PORT` in a
    /// shell must not stop the binary).
    #[arg(long, env = "PORT")]
    pub port: Option<String>,

    /// Serve /metrics on this address instead of on the REST listener, so that a load balancer in
    /// front of the REST port never exposes it (what the deployments do).
    #[arg(long, env = "CANDIDATES_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Close each gRPC connection gracefully (GOAWAY, in-flight calls finish) after about this
    /// long (±10 %), so clients behind a layer-4 load balancer reconnect and reach instances a
    /// scale-out added. Unset: connections live as long as the client keeps them.
    #[arg(long, env = "CANDIDATES_GRPC_MAX_CONNECTION_AGE", value_parser = parse_duration)]
    pub grpc_max_connection_age: Option<Duration>,

    /// Where candidates are stored.
    #[arg(long, env = "CANDIDATES_STORE", value_enum, default_value_t = StoreKind::Embedded)]
    pub store: StoreKind,

    /// Send the gateway's gRPC calls to this CandidateService (e.g. http://10.0.0.5:50051) instead
    /// of the one in this process.
    #[arg(long, env = "CANDIDATES_GRPC_UPSTREAM")]
    pub grpc_upstream: Option<http::Uri>,

    /// Where the instance id for /gtg?details comes from; `none` uses the host name.
    #[arg(long, env = "CANDIDATES_INSTANCE_METADATA", value_enum, default_value_t = MetadataCloud::None)]
    pub instance_metadata: MetadataCloud,

    /// Base URL of the metadata service (default: the cloud's own address). Tests point it at a
    /// local fake.
    #[arg(long, env = "CANDIDATES_METADATA_URL")]
    pub metadata_url: Option<String>,

    /// How long the one instance-id look-up at start may take before falling back to the host name.
    #[arg(long, env = "CANDIDATES_METADATA_TIMEOUT", value_parser = parse_duration, default_value = "2s")]
    pub metadata_timeout: Duration,

    /// After SIGTERM/SIGINT: how long /gtg answers 503 (and health NOT_SERVING) while requests are
    /// still served, so the load balancer stops routing here. Default suits health checks every
    /// 10 s with an unhealthy threshold of 2.
    #[arg(long, env = "CANDIDATES_DRAIN_PERIOD", value_parser = parse_duration, default_value = "25s")]
    pub drain_period: Duration,

    /// After the drain period: how long in-flight requests may take to finish before exit.
    #[arg(long, env = "CANDIDATES_SHUTDOWN_GRACE", value_parser = parse_duration, default_value = "10s")]
    pub shutdown_grace: Duration,

    /// Deadline of every request that brings none of its own (a shorter `grpc-timeout` wins).
    #[arg(long, env = "CANDIDATES_REQUEST_TIMEOUT", value_parser = parse_duration, default_value = "10s")]
    pub request_timeout: Duration,

    /// Longest a store call may take, retries included (each cloud SDK attempt gets a third of it).
    /// Well below --request-timeout, so that a stalled store fails requests fast instead of
    /// holding them for their whole deadline; after 5 such failures in a row calls fail at once
    /// (UNAVAILABLE) until a trial call a second later succeeds.
    #[arg(long, env = "CANDIDATES_STORE_TIMEOUT", value_parser = parse_duration, default_value = "3s")]
    pub store_timeout: Duration,

    /// How long to wait at start for a cloud store that cannot be opened yet (a role or IAM
    /// binding not yet propagated, a table created a little later, the network not ready): the
    /// listeners serve meanwhile, /gtg says 503 and why, and the store is retried with capped,
    /// jittered backoff; after this the process exits with 2 so that the group replaces the
    /// instance. 0: do not wait. Configuration errors never wait.
    #[arg(long, env = "CANDIDATES_STORE_OPEN_TIMEOUT", value_parser = parse_duration, default_value = "15m")]
    pub store_open_timeout: Duration,

    /// Requests served at once per listener; beyond it requests are shed at once with
    /// 503 / RESOURCE_EXHAUSTED instead of queueing.
    #[arg(long, env = "CANDIDATES_MAX_CONCURRENCY", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrency: u32,

    /// Connections open at once, all listeners together. Default: the process's file descriptor
    /// limit (soft RLIMIT_NOFILE) less a reserve of an eighth (at least 64) for the store's
    /// connections and files. At the cap the connection idle the longest is closed for a new one;
    /// if none is idle the new one is closed.
    #[arg(long, env = "CANDIDATES_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,

    /// Largest request body accepted, in bytes: REST bodies (ignored; larger ones get 413) and
    /// gRPC request messages (RESOURCE_EXHAUSTED).
    #[arg(long, env = "CANDIDATES_BODY_LIMIT", default_value_t = 64 * 1024)]
    pub body_limit: usize,

    /// How long a request body may take to arrive (REST 408, gRPC DEADLINE_EXCEEDED after it). It is
    /// read before the request counts against --max-concurrency, so slow clients cannot take the
    /// server's capacity.
    #[arg(long, env = "CANDIDATES_BODY_TIMEOUT", value_parser = parse_duration, default_value = "10s")]
    pub body_timeout: Duration,

    /// How long a client may leave our bytes untaken: a streamed response (`GET /candidates`)
    /// gives up on it (no more store calls, the request stops counting as work); a connection whose
    /// writes are blocked this long, or with an answer the transport has not asked for this long
    /// (an HTTP/2 peer that grants no flow-control window), is dropped.
    #[arg(long, env = "CANDIDATES_SEND_TIMEOUT", value_parser = parse_duration, default_value = "10s")]
    pub send_timeout: Duration,

    /// gRPC streams (reflection): end a stream that has sent nothing for this long with
    /// DEADLINE_EXCEEDED. Streams take permits from a small budget of their own (a sixteenth of
    /// --max-concurrency, 4 to 64), never the unary calls' permits.
    #[arg(long, env = "CANDIDATES_STREAM_IDLE_TIMEOUT", value_parser = parse_duration, default_value = "30s")]
    pub stream_idle_timeout: Duration,

    /// HTTP/1: how long a client may take to send a whole request head (slowloris defence).
    #[arg(long, env = "CANDIDATES_HEADER_READ_TIMEOUT", value_parser = parse_duration, default_value = "10s")]
    pub header_read_timeout: Duration,

    /// Close a connection (gracefully) that has had no request in flight for this long. Keep it
    /// longer than the load balancers' idle timeouts (ALB 60 s, Google's external LB 600 s), or they
    /// send requests on connections we are closing.
    #[arg(long, env = "CANDIDATES_IDLE_TIMEOUT", value_parser = parse_duration, default_value = "620s")]
    pub idle_timeout: Duration,

    /// HTTP/2 (gRPC, h2c): ping a peer after this long without frames...
    #[arg(long, env = "CANDIDATES_HTTP2_KEEPALIVE_INTERVAL", value_parser = parse_duration, default_value = "60s")]
    pub http2_keepalive_interval: Duration,

    /// ...and close the connection if the ping is not answered within this.
    #[arg(long, env = "CANDIDATES_HTTP2_KEEPALIVE_TIMEOUT", value_parser = parse_duration, default_value = "20s")]
    pub http2_keepalive_timeout: Duration,

    /// How long a /gtg?details store round-trip result is reused, so frequent health checks do
    /// not each cost a store call.
    #[arg(long, env = "CANDIDATES_STATUS_CACHE", value_parser = parse_duration, default_value = "2s")]
    pub status_cache: Duration,

    /// Threads that serve requests (the async runtime's workers). Default: one per CPU the process
    /// may use. One worker runs tokio's current-thread scheduler, more its work-stealing one. A
    /// scaling group pays per vCPU: size the instance for the load, then leave this at its
    /// default, or lower it to leave CPU to other processes on the VM.
    #[arg(long, env = "CANDIDATES_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    pub worker_threads: Option<u16>,

    /// Log format: human-readable text or one JSON object per line (for journald / log shippers).
    #[arg(long, env = "CANDIDATES_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter (tracing EnvFilter syntax, e.g. `info,candidates_server=debug`).
    #[arg(long, env = "CANDIDATES_LOG", default_value = "info")]
    pub log: String,

    /// Export traces over OTLP to this collector (e.g. http://127.0.0.1:4317 for gRPC, or
    /// http://127.0.0.1:4318 for HTTP, where `/v1/traces` is added to a bare address). Unset:
    /// no traces, at no cost per request.
    #[arg(long, env = "CANDIDATES_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<http::Uri>,

    /// OTLP transport: gRPC (plaintext, `http://` only) or HTTP with protobuf bodies (`http://`
    /// or `https://`).
    #[arg(long, env = "CANDIDATES_OTLP_PROTOCOL", value_enum, default_value_t = OtlpProtocol::Grpc)]
    pub otlp_protocol: OtlpProtocol,

    /// Share of requests traced when they come without a `traceparent` (0 to 1); a request whose
    /// `traceparent` says sampled (or not) is traced (or not) as it says.
    #[arg(long, env = "CANDIDATES_TRACE_SAMPLE_RATIO", default_value_t = 0.01)]
    pub trace_sample_ratio: f64,

    /// `service.name` of the exported spans (`service.instance.id` is the instance id).
    #[arg(long, env = "CANDIDATES_OTLP_SERVICE_NAME", default_value = "candidates")]
    pub otlp_service_name: String,

    /// The API explorer: Swagger UI over /openapi.json at /docs on the REST listener, served from
    /// the binary (builds without the `api-explorer` cargo feature have none). It is a read, like
    /// /openapi.json: with --auth-read closed it needs a key too.
    #[arg(long, env = "CANDIDATES_API_EXPLORER", default_value_t = true, action = clap::ArgAction::Set, help_heading = "Browsers")]
    pub api_explorer: bool,

    /// Origins whose browser pages may call the REST API (CORS), comma-separated
    /// (`https://app.example,http://127.0.0.1:3000`), or `*`. None by default: same-origin only.
    #[arg(long, env = "CANDIDATES_CORS_ALLOW_ORIGINS", value_delimiter = ',', help_heading = "Browsers")]
    pub cors_allow_origins: Vec<String>,

    /// CORS: let browsers send cookies or HTTP authentication (only with explicit origins).
    #[arg(long, env = "CANDIDATES_CORS_ALLOW_CREDENTIALS", help_heading = "Browsers")]
    pub cors_allow_credentials: bool,

    /// CORS: how long a browser may cache a preflight's answer.
    #[arg(long, env = "CANDIDATES_CORS_MAX_AGE", value_parser = parse_duration, default_value = "10m", help_heading = "Browsers")]
    pub cors_max_age: Duration,

    /// gRPC-Web on the REST listener for CandidateService (`application/grpc-web[+proto]` and
    /// `application/grpc-web-text[+proto]`, over HTTP/1.1 or h2), so that browsers call the gRPC
    /// API without a proxy; the same admission, deadline, log line and metrics as the gRPC listener.
    #[arg(long, env = "CANDIDATES_GRPC_WEB", default_value_t = true, action = clap::ArgAction::Set, help_heading = "Browsers")]
    pub grpc_web: bool,

    /// Compress responses of 1 KiB or more when the client asks: gzip or zstd on REST
    /// (`Accept-Encoding`, the streamed listing included) and on gRPC (`grpc-accept-encoding`).
    /// Compressed gRPC requests are accepted either way, limited by their decompressed size.
    #[arg(long, env = "CANDIDATES_COMPRESSION", default_value_t = true, action = clap::ArgAction::Set)]
    pub compression: bool,

    /// TLS on the REST and gRPC listeners: the PEM certificate chain (read again within 5 s when
    /// it changes; established connections keep theirs). Needs --tls-key. /metrics stays plaintext.
    #[arg(long, env = "CANDIDATES_TLS_CERT", requires = "tls_key", help_heading = "TLS")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, env = "CANDIDATES_TLS_KEY", requires = "tls_cert", help_heading = "TLS")]
    pub tls_key: Option<PathBuf>,

    /// API keys: a file of `<sha256 hex> <scopes> <name>` lines (docs/security.md; `candidatectl
    /// key mint` makes them), read again within 5 s when it changes. With it, writes need the
    /// `candidates.write` scope unless --auth-write says otherwise.
    #[arg(long, env = "CANDIDATES_API_KEYS_FILE", help_heading = "Access")]
    pub api_keys_file: Option<PathBuf>,

    /// OIDC issuer whose bearer tokens (JWTs, RS256/ES256) are accepted, e.g. a Cognito user pool,
    /// `https://login.microsoftonline.com/<tenant>/v2.0` or `https://accounts.google.com`. HTTPS,
    /// except on loopback. Its keys come from discovery unless --oidc-jwks-url is given.
    #[arg(long, env = "CANDIDATES_OIDC_ISSUER", help_heading = "Access")]
    pub oidc_issuer: Option<String>,

    /// The audience (`aud`) tokens must be issued for. Required with --oidc-issuer.
    #[arg(long, env = "CANDIDATES_OIDC_AUDIENCE", help_heading = "Access")]
    pub oidc_audience: Option<String>,

    /// The issuer's JWKS address, instead of discovery.
    #[arg(long, env = "CANDIDATES_OIDC_JWKS_URL", help_heading = "Access")]
    pub oidc_jwks_url: Option<String>,

    /// The token claim holding the scopes: a space-separated string (`scope`, `scp`) or an array
    /// (`roles`).
    #[arg(long, env = "CANDIDATES_OIDC_SCOPE_CLAIM", default_value = "scope", help_heading = "Access")]
    pub oidc_scope_claim: String,

    /// Clock difference allowed on a token's `exp` and `nbf` (at most 5 minutes).
    #[arg(long, env = "CANDIDATES_OIDC_CLOCK_SKEW", value_parser = parse_duration, default_value = "60s", help_heading = "Access")]
    pub oidc_clock_skew: Duration,

    /// The shortest time between two JWKS fetches: a token with an unknown key id fetches the
    /// JWKS again at most this often.
    #[arg(long, env = "CANDIDATES_OIDC_JWKS_REFRESH_FLOOR", value_parser = parse_duration, default_value = "30s", help_heading = "Access")]
    pub oidc_jwks_refresh_floor: Duration,

    /// How often the JWKS is fetched anyway.
    #[arg(long, env = "CANDIDATES_OIDC_JWKS_REFRESH", value_parser = parse_duration, default_value = "1h", help_heading = "Access")]
    pub oidc_jwks_refresh: Duration,

    /// Who may read (GetCandidate, ListCandidates, GetStatus, reflection, /openapi.json, the API
    /// explorer at /docs). Default: anyone.
    #[arg(long, env = "CANDIDATES_AUTH_READ", value_enum, help_heading = "Access")]
    pub auth_read: Option<AuthRule>,

    /// Who may write (PutCandidate, DeleteCandidate). Default: `scope` when --api-keys-file or
    /// --oidc-issuer is given, else `anyone` (a local run keeps the original, open API).
    #[arg(long, env = "CANDIDATES_AUTH_WRITE", value_enum, help_heading = "Access")]
    pub auth_write: Option<AuthRule>,

    /// Testing aid: add this latency to every store call.
    #[arg(long, env = "CANDIDATES_DEBUG_STORE_DELAY", value_parser = parse_duration, hide = true)]
    pub debug_store_delay: Option<Duration>,

    /// Testing aid: fail every store call as unavailable.
    #[arg(long, env = "CANDIDATES_DEBUG_STORE_FAIL", hide = true)]
    pub debug_store_fail: bool,

    /// Every backend's own flags (see `crate::store`), each under its own heading.
    #[command(flatten)]
    pub stores: StoreArgs,
}

/// Longest duration any flag takes. Durations are added to `Instant`s (deadlines, connection ages);
/// an unbounded one (`18446744073709551615s` parsed fine) overflowed that addition and panicked in
/// every connection. Nothing here needs more than a few hours.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// humantime's duration syntax (`10s`, `250ms`, `1h 30m`), at most [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if duration > MAX_DURATION {
        return Err(format!("at most {} (30 days)", humantime::format_duration(MAX_DURATION)));
    }
    Ok(duration)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MetadataCloud {
    /// The host name.
    None,
    /// EC2 IMDSv2 instance-id.
    Aws,
    /// Azure IMDS vmId.
    Azure,
    /// GCP metadata server instance id.
    Gcp,
}

/// Who may perform a class of operations (health checks never need credentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthRule {
    /// No credentials needed.
    Anyone,
    /// Any valid credential.
    Authenticated,
    /// A credential holding the class's scope (`candidates.read` or `candidates.write`).
    Scope,
}

impl From<AuthRule> for Rule {
    fn from(rule: AuthRule) -> Self {
        match rule {
            AuthRule::Anyone => Self::Anyone,
            AuthRule::Authenticated => Self::Authenticated,
            AuthRule::Scope => Self::Scope,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OtlpProtocol {
    Grpc,
    Http,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A configuration that parsed but cannot work; the binary prints it and exits with 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--http-addr and --grpc-addr must differ (both are {0})")]
    SameAddr(SocketAddr),
    #[error("--{0} must be greater than zero")]
    ZeroTimeout(&'static str),
    #[error("--grpc-upstream must be an http:// URL with a host (plaintext gRPC inside the network), got {0}")]
    Upstream(http::Uri),
    #[error("invalid --log filter {filter:?}: {reason}")]
    LogFilter { filter: String, reason: String },
    #[error("--{0} asks for credentials, but none are configured (--api-keys-file, --oidc-issuer)")]
    AuthWithoutCredentials(&'static str),
    #[error("--oidc-issuer needs --oidc-audience")]
    OidcAudience,
    #[error("--oidc-issuer and --oidc-jwks-url must be https:// URLs (http:// only on loopback), got {0}")]
    OidcUrl(String),
    #[error("--oidc-clock-skew must be at most 5m")]
    OidcSkew,
    #[error("--oidc-jwks-refresh-floor must be at least 1s: it is what bounds JWKS fetches caused by unknown key ids")]
    OidcFloor,
    #[error("--otlp-endpoint must be an http:// URL with a host (https:// too with --otlp-protocol http), got {0}")]
    OtlpEndpoint(http::Uri),
    #[error("--trace-sample-ratio must be between 0 and 1, got {0}")]
    SampleRatio(f64),
    #[error("--port (PORT) must be a port number, got {0:?}")]
    Port(String),
    #[error("--cors-allow-origins: {0}")]
    Cors(#[from] candidates_gateway::cors::CorsError),
}

impl Config {
    /// Checks what clap cannot: relations between fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.single_port && self.http_addr == self.grpc_addr && self.http_addr.port() != 0 {
            return Err(ConfigError::SameAddr(self.http_addr));
        }
        for (flag, value) in [
            ("request-timeout", self.request_timeout),
            ("store-timeout", self.store_timeout),
            ("body-timeout", self.body_timeout),
            ("send-timeout", self.send_timeout),
            ("header-read-timeout", self.header_read_timeout),
            ("stream-idle-timeout", self.stream_idle_timeout),
            ("idle-timeout", self.idle_timeout),
            ("http2-keepalive-interval", self.http2_keepalive_interval),
            ("http2-keepalive-timeout", self.http2_keepalive_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::ZeroTimeout(flag));
            }
        }
        if let Some(uri) = &self.grpc_upstream
            && (uri.scheme_str() != Some("http") || uri.host().is_none())
        {
            return Err(ConfigError::Upstream(uri.clone()));
        }
        if let Some(uri) = &self.otlp_endpoint {
            let scheme_ok = match self.otlp_protocol {
                OtlpProtocol::Grpc => uri.scheme_str() == Some("http"),
                OtlpProtocol::Http => matches!(uri.scheme_str(), Some("http" | "https")),
            };
            if !scheme_ok || uri.host().is_none() {
                return Err(ConfigError::OtlpEndpoint(uri.clone()));
            }
        }
        if self.single_port {
            self.listen_port()?;
        }
        if !(0.0..=1.0).contains(&self.trace_sample_ratio) {
            return Err(ConfigError::SampleRatio(self.trace_sample_ratio));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log)
            .map_err(|e| ConfigError::LogFilter { filter: self.log.clone(), reason: e.to_string() })?;
        self.cors()?;
        if let Some(issuer) = &self.oidc_issuer {
            if self.oidc_audience.as_deref().is_none_or(str::is_empty) {
                return Err(ConfigError::OidcAudience);
            }
            for url in std::iter::once(issuer).chain(self.oidc_jwks_url.as_ref()) {
                if !candidates_edge::auth::jwt::secure_url(url) {
                    return Err(ConfigError::OidcUrl(url.clone()));
                }
            }
            if self.oidc_clock_skew > Duration::from_secs(300) {
                return Err(ConfigError::OidcSkew);
            }
            if self.oidc_jwks_refresh_floor < Duration::from_secs(1) {
                return Err(ConfigError::OidcFloor);
            }
        }
        if self.api_keys_file.is_none() && self.oidc_issuer.is_none() {
            for (flag, rule) in [("auth-read", self.auth_read), ("auth-write", self.auth_write)] {
                if rule.is_some_and(|r| r != AuthRule::Anyone) {
                    return Err(ConfigError::AuthWithoutCredentials(flag));
                }
            }
        }
        Ok(())
    }

    /// The defaults, with both listeners on free ports: the starting point of tests.
    #[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
    pub fn for_tests(data_dir: PathBuf) -> Self {
        let mut config = Self::parse_from(["candidate-server"]);
        config.http_addr = "127.0.0.1:0".parse().expect("valid address");
        config.grpc_addr = "127.0.0.1:0".parse().expect("valid address");
        config.stores.embedded.data_dir = data_dir;
        config
    }
}

impl Config {
    /// The REST listener's address: --http-addr, with --port's port in single-port mode.
    pub fn http_listen_addr(&self) -> SocketAddr {
        match self.listen_port() {
            Ok(Some(port)) if self.single_port => SocketAddr::new(self.http_addr.ip(), port),
            _ => self.http_addr,
        }
    }

    /// --port as a number (an empty value is no value).
    fn listen_port(&self) -> Result<Option<u16>, ConfigError> {
        match self.port.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| ConfigError::Port(text.to_owned())),
        }
    }

    /// The connection limits of a listener (`max_age` for gRPC only).
    pub fn conn_limits(&self, max_age: Option<Duration>) -> crate::serve::ConnLimits {
        crate::serve::ConnLimits {
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            send_timeout: self.send_timeout,
            keepalive_interval: Some(self.http2_keepalive_interval),
            keepalive_timeout: self.http2_keepalive_timeout,
            max_age,
        }
    }

    /// The connection cap: `--max-connections`, or derived from the descriptor limit; never
    /// above what the descriptor limit allows.
    pub fn connection_cap(&self) -> usize {
        let from_limit = crate::serve::cap::nofile_limit().map_or(usize::MAX, crate::serve::cap::cap_for);
        self.max_connections.map_or(from_limit, |n| (n as usize).min(from_limit))
    }

    /// The access policy and the API keys (empty until `KeyRing::reload` reads the file).
    pub fn auth(&self) -> Result<Auth, ConfigError> {
        let keys = self.api_keys_file.as_ref().map(|path| Arc::new(KeyRing::new(path)));
        let oidc = match (&self.oidc_issuer, &self.oidc_audience) {
            (Some(issuer), Some(audience)) => {
                let config = OidcConfig {
                    issuer: issuer.clone(),
                    audience: audience.clone(),
                    jwks_url: self.oidc_jwks_url.clone(),
                    scope_claim: self.oidc_scope_claim.clone(),
                    leeway: self.oidc_clock_skew,
                    refresh_floor: self.oidc_jwks_refresh_floor,
                    refresh_every: self.oidc_jwks_refresh,
                    fetch_timeout: Duration::from_secs(5),
                };
                Some(Arc::new(Verifier::new(config).map_err(|e| ConfigError::OidcUrl(e.to_string()))?))
            }
            _ => None,
        };
        if keys.is_none() && oidc.is_none() {
            return Ok(Auth::open());
        }
        let policy = Policy {
            read: self.auth_read.map_or(Policy::GUARDED_WRITES.read, Rule::from),
            write: self.auth_write.map_or(Policy::GUARDED_WRITES.write, Rule::from),
        };
        Ok(Auth::new(policy, keys, oidc))
    }

    /// CORS for the REST listener, when origins are given.
    pub fn cors(&self) -> Result<Option<candidates_gateway::cors::Cors>, ConfigError> {
        let origins: Vec<String> =
            self.cors_allow_origins.iter().map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()).collect();
        if origins.is_empty() {
            return Ok(None);
        }
        Ok(Some(candidates_gateway::cors::Cors::new(&origins, self.cors_allow_credentials, self.cors_max_age)?))
    }

    /// What the REST gateway needs from the configuration, with the access policy `auth` and the
    /// gRPC-Web routes it serves beside the REST ones (if any).
    pub fn gateway_options(
        &self,
        auth: Arc<Auth>,
        grpc_web: Option<candidates_gateway::grpc_web::GrpcWeb>,
    ) -> Result<candidates_gateway::Options, ConfigError> {
        Ok(candidates_gateway::Options {
            limits: self.admission(),
            send_timeout: self.send_timeout,
            auth,
            cors: self.cors()?,
            compression: self.compression,
            grpc_web,
        })
    }

    /// The admission limits of a listener.
    pub fn admission(&self) -> candidates_edge::limit::Limits {
        candidates_edge::limit::Limits {
            max_concurrency: self.max_concurrency as usize,
            body_limit: self.body_limit,
            body_timeout: self.body_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Config::command().debug_assert();
    }

    #[test]
    fn defaults_need_nothing() {
        let c = Config::try_parse_from(["candidate-server"]).unwrap();
        assert_eq!(c.http_addr.to_string(), "127.0.0.1:8000");
        assert_eq!(c.grpc_addr.to_string(), "127.0.0.1:50051");
        assert_eq!(c.store, StoreKind::Embedded);
        c.validate().unwrap();
    }

    #[test]
    fn the_port_applies_in_single_port_mode_only() {
        let c = Config::try_parse_from(["x", "--http-addr", "0.0.0.0:8080", "--port", "9090"]).unwrap();
        assert_eq!(c.http_listen_addr().to_string(), "0.0.0.0:8080");
        let c =
            Config::try_parse_from(["x", "--http-addr", "0.0.0.0:8080", "--port", "9090", "--single-port"]).unwrap();
        assert_eq!(c.http_listen_addr().to_string(), "0.0.0.0:9090");
        let c = Config::try_parse_from(["x", "--http-addr", "0.0.0.0:8080", "--single-port"]).unwrap();
        assert_eq!(c.http_listen_addr().to_string(), "0.0.0.0:8080");
        // Not a port: an error in single-port mode only; empty is unset.
        let c = Config::try_parse_from(["x", "--port", "abc"]).unwrap();
        c.validate().unwrap();
        let c = Config::try_parse_from(["x", "--port", "abc", "--single-port"]).unwrap();
        assert!(matches!(c.validate(), Err(ConfigError::Port(_))));
        let c = Config::try_parse_from(["x", "--port", "", "--single-port", "--http-addr", "0.0.0.0:8080"]).unwrap();
        c.validate().unwrap();
        assert_eq!(c.http_listen_addr().to_string(), "0.0.0.0:8080");
    }

    #[test]
    fn rejects_bad_values() {
        assert!(Config::try_parse_from(["x", "--store", "mongo"]).is_err());
        assert!(Config::try_parse_from(["x", "--drain-period", "soon"]).is_err());
        assert!(Config::try_parse_from(["x", "--max-concurrency", "0"]).is_err());
        // Durations are bounded where they are parsed (this one used to panic every connection).
        for flag in ["--idle-timeout", "--request-timeout", "--grpc-max-connection-age", "--drain-period"] {
            assert!(Config::try_parse_from(["x", flag, "18446744073709551615s"]).is_err(), "{flag}");
            assert!(Config::try_parse_from(["x", flag, "31days"]).is_err(), "{flag}");
            assert!(Config::try_parse_from(["x", flag, "30days"]).is_ok(), "{flag}");
        }
        let c =
            Config::try_parse_from(["x", "--http-addr", "127.0.0.1:9000", "--grpc-addr", "127.0.0.1:9000"]).unwrap();
        assert!(matches!(c.validate(), Err(ConfigError::SameAddr(_))));
        // One port: the gRPC address is not bound, so it may equal the REST one.
        let c = Config::try_parse_from([
            "x",
            "--single-port",
            "--http-addr",
            "0.0.0.0:9000",
            "--grpc-addr",
            "0.0.0.0:9000",
        ])
        .unwrap();
        c.validate().unwrap();
        let c = Config::try_parse_from(["x", "--grpc-upstream", "ftp://h:1"]).unwrap();
        assert!(matches!(c.validate(), Err(ConfigError::Upstream(_))));
    }
}
