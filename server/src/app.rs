//! Startup and shutdown: open the store, bind both listeners, wire the service, the gateway and
//! health together, serve, and on the shutdown signal drain as the contract says.

use std::{future::Future, io, net::SocketAddr, sync::Arc, time::Duration};

use candidates_edge::auth::Auth;

use crate::serve::tls::{CertStore, TlsError};
use candidates_gateway as gateway;
use tokio::{net::TcpListener, sync::watch, task::JoinSet};

use crate::{
    config::{Config, ConfigError},
    grpc,
    lifecycle::Lifecycle,
    metadata,
    serve::serve,
    service::CandidateApi,
    store::{self, DynStore, debug::Faulty, guarded::Guarded, instrumented::Instrumented, opening::Opening},
};

/// Why the server could not start. Every variant is a configuration or environment problem the
/// operator must fix; the binary exits with 2.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind { what: &'static str, addr: SocketAddr, source: io::Error },
    #[error(transparent)]
    Store(#[from] store::OpenError),
    #[error("invalid --grpc-upstream {uri}: {source}")]
    Upstream { uri: http::Uri, source: tonic::transport::Error },
    #[error("the {backend} store did not open within {} ({attempts} attempts); last: {last}", humantime::format_duration(*.waited))]
    StoreNotOpened { backend: &'static str, waited: Duration, attempts: u32, last: String },
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
}

/// A store still being opened after start (see `store::opening`).
struct Pending {
    opening: Arc<Opening>,
    config: Config,
    /// The first failure's message: retries log a failure only when it differs from the last.
    last: String,
}

/// A built server: listeners bound (so the ports are known, even when asked for port 0), not
/// yet serving.
pub struct Application {
    http: TcpListener,
    /// None with --single-port: gRPC is served on `http`.
    grpc: Option<TcpListener>,
    /// A listener of its own for /metrics, when configured (else /metrics is on `http`).
    metrics: Option<TcpListener>,
    http_router: axum::Router,
    grpc_router: axum::Router,
    lifecycle: Lifecycle,
    drain_period: Duration,
    shutdown_grace: Duration,
    http_limits: crate::serve::ConnLimits,
    grpc_limits: crate::serve::ConnLimits,
    store_kind: &'static str,
    connections: Arc<crate::serve::Connections>,
    /// Set when the store could not be opened yet: it is retried while the listeners serve.
    pending: Option<Pending>,
    auth: Arc<Auth>,
    tls: Option<Arc<CertStore>>,
}

pub async fn open_store(config: &Config) -> Result<DynStore, StartError> {
    let context = store::OpenContext { call_timeout: config.store_timeout };
    let store = store::open(config.store, &config.stores, &context).await?;
    let store: DynStore = if config.debug_store_delay.is_some() || config.debug_store_fail {
        tracing::warn!(delay = ?config.debug_store_delay, fail = config.debug_store_fail, "store fault injection is on");
        let delay = config.debug_store_delay.unwrap_or_default();
        Arc::new(Faulty::new(store, delay, config.debug_store_fail))
    } else {
        store
    };
    Ok(Arc::new(Instrumented::new(Arc::new(Guarded::new(store, config.store_timeout)))))
}

/// The access policy with its keys read and the issuer's keys fetched once, as every host starts
/// it. A missing or bad key file is reported and read again by the upkeep loop; meanwhile every
/// request that needs a key is refused (closed, not open). An issuer that cannot be reached now is
/// tried again (on the first token and by the upkeep loop); the instance boots either way.
pub(crate) async fn load_auth(config: &Config) -> Result<Arc<Auth>, ConfigError> {
    let auth = Arc::new(config.auth()?);
    if let Some(keys) = auth.keys() {
        keys.reload_and_report().await;
    }
    if let Some(oidc) = auth.oidc() {
        oidc.refresh().await;
    }
    tracing::info!(read = ?auth.policy().read, write = ?auth.policy().write, api_keys = auth.keys().map(|k| k.len()), oidc_issuer = auth.oidc().map(|o| o.config().issuer.as_str()), "access policy");
    Ok(auth)
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).await.map_err(|source| StartError::Bind { what, addr, source })
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        config.validate()?;
        // Bind first: a port conflict should fail fast, before any store or metadata work.
        let http = bind("REST", config.http_listen_addr()).await?;
        let grpc = match config.single_port {
            false => Some(bind("gRPC", config.grpc_addr).await?),
            true => None,
        };
        let metrics = match config.metrics_addr {
            Some(addr) => Some(bind("metrics", addr).await?),
            None => None,
        };
        let (store, pending) = match open_store(&config).await {
            Ok(store) => (store, None),
            Err(StartError::Store(error)) if error.transient.is_some() && !config.store_open_timeout.is_zero() => {
                let reason = error.transient.unwrap_or_default();
                tracing::warn!(%error, wait = %humantime::format_duration(config.store_open_timeout), "the store cannot be opened yet: serving as not ready while retrying");
                let opening = Arc::new(Opening::pending(config.store.name(), reason));
                let store: DynStore = opening.clone();
                (store, Some(Pending { opening, config: config.clone(), last: error.to_string() }))
            }
            Err(error) => return Err(error),
        };
        let store_kind = store.kind();
        crate::metrics::init(store_kind);
        let instance_id =
            metadata::instance_id(config.instance_metadata, config.metadata_url.as_deref(), config.metadata_timeout)
                .await;

        if let Some(endpoint) = &config.otlp_endpoint {
            let otlp = crate::telemetry::otlp::Otlp {
                endpoint: endpoint.clone(),
                protocol: config.otlp_protocol,
                service_name: config.otlp_service_name.clone(),
                instance_id: instance_id.clone(),
                sample_ratio: config.trace_sample_ratio,
            };
            if !crate::telemetry::otlp::start(otlp) {
                tracing::warn!("traces were already on in this process: the first configuration stays");
            }
        }
        let (health_reporter, health_server) = tonic_health::server::health_reporter();
        let lifecycle = Lifecycle::new(health_reporter).await;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(CertStore::load(cert, key)?),
            _ => None,
        };
        let auth = load_auth(&config).await?;
        let api = CandidateApi::new(store, instance_id, config.status_cache, auth.clone());
        let upstream = match &config.grpc_upstream {
            None => grpc::in_process(api.clone(), config.request_timeout),
            Some(uri) => {
                let channel = tonic::transport::Endpoint::from(uri.clone())
                    .connect_timeout(Duration::from_secs(2))
                    .timeout(config.request_timeout)
                    .connect_lazy();
                gateway::remote(gateway::transport(channel))
            }
        };
        let grpc_router = grpc::router(
            api,
            health_server,
            config.admission(),
            config.request_timeout,
            config.stream_idle_timeout,
            auth.clone(),
            config.compression,
        );
        let options = config.gateway_options(auth.clone(), config.grpc_web.then(|| grpc::web(grpc_router.clone())))?;
        let explorer = config.api_explorer && gateway::explorer::COMPILED_IN;
        if explorer {
            tracing::info!(
                path = gateway::explorer::PATH,
                swagger_ui = gateway::explorer::swagger_ui_version(),
                "API explorer"
            );
        } else if config.api_explorer {
            tracing::info!("no API explorer: this build has not got one (cargo feature api-explorer)");
        }
        let mut http_router = gateway::router_with_explorer(upstream, lifecycle.readiness(), options, explorer);
        if metrics.is_none() {
            http_router = http_router.merge(metrics_router());
        }
        if config.single_port {
            http_router = crate::serve::single_port::router(http_router, grpc_router.clone());
        }

        Ok(Self {
            http,
            grpc,
            metrics,
            http_router,
            grpc_router,
            lifecycle,
            drain_period: config.drain_period,
            shutdown_grace: config.shutdown_grace,
            // One port: its connections carry gRPC too, so they age like the gRPC listener's.
            http_limits: config.conn_limits(config.single_port.then_some(config.grpc_max_connection_age).flatten()),
            grpc_limits: config.conn_limits(config.grpc_max_connection_age),
            store_kind,
            connections: crate::serve::Connections::new(config.connection_cap()),
            pending,
            auth,
            tls,
        })
    }

    #[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr().expect("bound listener has an address")
    }

    /// Where gRPC is served: the gRPC listener, or the REST listener with --single-port.
    #[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc.as_ref().unwrap_or(&self.http).local_addr().expect("bound listener has an address")
    }

    #[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|l| l.local_addr().expect("bound listener has an address"))
    }

    /// Serves until `shutdown` resolves, then: /gtg 503 and health NOT_SERVING at once, keep
    /// serving for the drain period, stop accepting, let in-flight requests finish (up to the
    /// grace period). Returns an error only if requests were still running after the grace period.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let (http_addr, grpc_addr, metrics_addr) = (self.http_addr(), self.grpc_addr(), self.metrics_addr());
        let single_port = self.grpc.is_none();
        let (stop, stopping) = watch::channel(false);
        let stopped = move || {
            let mut stopping = stopping.clone();
            async move {
                let _ = stopping.wait_for(|s| *s).await;
            }
        };
        let mut servers = JoinSet::new();
        let conns = &self.connections;
        let tls = self.tls.as_ref().map(CertStore::acceptor);
        servers.spawn(serve(self.http, self.http_router, self.http_limits, Arc::clone(conns), tls.clone(), stopped()));
        if let Some(grpc) = self.grpc {
            servers.spawn(serve(grpc, self.grpc_router, self.grpc_limits, Arc::clone(conns), tls, stopped()));
        }
        if let Some(listener) = self.metrics {
            // Plaintext: /metrics is for a private scraper on its own port.
            servers.spawn(serve(listener, metrics_router(), self.http_limits, Arc::clone(conns), None, stopped()));
        }
        let upkeep = tokio::spawn(crate::upkeep::run(self.auth.clone(), self.tls.clone(), stopped()));
        // Ready once the store is open: at once, or when a retry opens it.
        let lifecycle = self.lifecycle.clone();
        let pending = self.pending;
        let opened = async move {
            if let Some(pending) = pending {
                open_with_retry(pending).await?;
            }
            lifecycle.set_ready().await;
            std::future::pending::<Result<(), StartError>>().await
        };
        tokio::pin!(opened);
        let metrics_at = metrics_addr.map_or_else(|| "the REST listener".to_owned(), |a| a.to_string());
        tracing::info!(%http_addr, %grpc_addr, metrics = %metrics_at, single_port, store = self.store_kind, max_connections = self.connections.max(), "listening");
        // systemd (Type=notify) starts dependents and counts the start as done only now.
        systemd_notify(sd_notify::NotifyState::Ready);

        tokio::select! {
            () = shutdown => {}
            Some(result) = servers.join_next() => {
                // A server only ends by itself on an accept-loop I/O error.
                return result.map_err(io::Error::other).and_then(|r| r);
            }
            Err(error) = &mut opened => {
                // The store never opened: exit (2), so that the group replaces the instance.
                tracing::error!(%error, "giving up on the store");
                return Err(io::Error::other(error));
            }
        }
        self.lifecycle.set_draining().await;
        systemd_notify(sd_notify::NotifyState::Stopping);
        tracing::info!(drain_period = ?self.drain_period, "draining: health checks fail, requests are still served");
        tokio::time::sleep(self.drain_period).await;

        tracing::info!(grace = ?self.shutdown_grace, "stopping: no new connections, waiting for in-flight requests");
        let _ = stop.send(true);
        let finished = tokio::time::timeout(self.shutdown_grace, async {
            while let Some(result) = servers.join_next().await {
                result.map_err(io::Error::other)??;
            }
            io::Result::Ok(())
        })
        .await;
        upkeep.abort();
        match finished {
            Ok(result) => {
                tracing::info!("stopped");
                result
            }
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "in-flight requests did not finish within the grace period",
            )),
        }
    }
}

/// First wait before a retry, and the longest (the waits double, each jittered down by up to half).
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Retries opening the store until it opens (it then serves every call) or `--store-open-timeout`
/// has passed since start, logging each distinct failure once.
async fn open_with_retry(pending: Pending) -> Result<(), StartError> {
    let Pending { opening, config, last } = pending;
    let started = std::time::Instant::now();
    let (mut delay, mut attempts, mut last) = (RETRY_FIRST, 1u32, last);
    let mut reminded = started;
    loop {
        let remaining = config.store_open_timeout.saturating_sub(started.elapsed());
        if remaining.is_zero() {
            return Err(StartError::StoreNotOpened {
                backend: config.store.name(),
                waited: config.store_open_timeout,
                attempts,
                last,
            });
        }
        // Full jitter over the upper half: instances that booted together do not retry together.
        let wait = delay.mul_f64(0.5 + 0.5 * crate::jitter::fraction()).min(remaining);
        tokio::time::sleep(wait).await;
        delay = (delay * 2).min(RETRY_MAX);
        attempts += 1;
        let attempt = tokio::time::timeout(remaining.max(Duration::from_secs(1)), open_store(&config)).await;
        match attempt {
            Ok(Ok(store)) => {
                opening.open(store);
                tracing::info!(attempts, after = %humantime::format_duration(Duration::from_secs(started.elapsed().as_secs())), "store open: ready");
                return Ok(());
            }
            Ok(Err(StartError::Store(error))) if error.transient.is_some() => {
                opening.waiting_for(error.transient.unwrap_or_default());
                let text = error.to_string();
                if text != last {
                    tracing::warn!(%error, attempts, "the store still cannot be opened (a new reason)");
                    last = text;
                    reminded = std::time::Instant::now();
                } else if reminded.elapsed() >= Duration::from_secs(60) {
                    tracing::info!(attempts, waited_s = started.elapsed().as_secs(), "still waiting for the store");
                    reminded = std::time::Instant::now();
                }
            }
            Ok(Err(error)) => return Err(error),
            Err(_) => tracing::warn!(attempts, "opening the store did not finish in time; retrying"),
        }
    }
}

fn metrics_router() -> axum::Router {
    axum::Router::new().route("/metrics", axum::routing::get(crate::metrics::render))
}

/// Tells systemd about a state change when it runs us as `Type=notify` (a no-op without
/// `NOTIFY_SOCKET`).
fn systemd_notify(state: sd_notify::NotifyState<'_>) {
    if let Err(error) = sd_notify::notify(&[state]) {
        tracing::warn!(%error, "cannot notify systemd");
    }
}
