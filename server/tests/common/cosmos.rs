//! The Cosmos DB emulator for tests (@vercel/cosmosdb-server, patched, over TLS; started by
//! scripts/test.sh): a database and container per store, private servers for outage tests, and a
//! fake managed-identity token endpoint.

use std::{
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use azure_core::credentials::Secret;
use azure_data_cosmos::{
    AccountReference, CosmosClientBuilder,
    models::ContainerProperties,
    options::{Region, RoutingStrategy},
};
use candidates_server::store::cosmos::{Args as CosmosConfig, CosmosStore};

fn env(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests through scripts/test.sh, which starts the emulators")
    })
}

pub fn endpoint() -> String {
    env("CANDIDATES_TEST_COSMOS_ENDPOINT")
}

pub fn key() -> String {
    env("CANDIDATES_TEST_COSMOS_KEY")
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..16])
}

/// Creates `database` / `container` (partition key /CandidateName) as the original stack did.
pub async fn create_container(endpoint: &str, database: &str, container: &str) {
    let account = AccountReference::with_authentication_key(endpoint.parse().unwrap(), Secret::from(key()));
    let client = CosmosClientBuilder::new()
        .build(account, RoutingStrategy::ProximityTo(Region::EAST_US))
        .await
        .expect("cosmos client");
    let _ = client.create_database(database, None).await; // may exist already
    client
        .database_client(database)
        .create_container(ContainerProperties::new(container.to_owned(), "/CandidateName".into()), None)
        .await
        .unwrap_or_else(|e| panic!("create container {database}/{container}: {e}"));
}

pub fn config(endpoint: &str, database: &str, container: &str) -> CosmosConfig {
    CosmosConfig {
        endpoint: Some(endpoint.to_owned()),
        database: database.to_owned(),
        container: container.to_owned(),
        region: "eastus".into(),
        key: Some(key().parse().unwrap()),
        key_file: None,
        identity_client_id: None,
        page_token_secret: None,
    }
}

/// A store on a fresh database and container of its own.
pub async fn fresh_store() -> CosmosStore {
    let (database, container) = (unique("db"), unique("c"));
    create_container(&endpoint(), &database, &container).await;
    CosmosStore::connect(&config(&endpoint(), &database, &container)).await.expect("connect to the emulator")
}

/// A cosmosdb-server of the test's own on `port` (0: a free one), killed on drop.
pub struct PrivateCosmos {
    process: super::ChildGuard,
    pub port: u16,
}

impl PrivateCosmos {
    pub fn start(port: u16) -> Self {
        let dir = env("CANDIDATES_TEST_COSMOS_DIR");
        let tls = env("CANDIDATES_TEST_COSMOS_TLS");
        let port = super::port_or_free(port);
        let mut cmd = Command::new("node");
        cmd.arg(format!("{dir}/server.js")).args([
            "127.0.0.1",
            &port.to_string(),
            &format!("{tls}/cert.pem"),
            &format!("{tls}/key.pem"),
        ]);
        let process = super::ChildGuard::spawn(cmd, "private cosmosdb-server", Duration::from_secs(30), || {
            super::port_open(port)
        });
        Self { process, port }
    }

    pub fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}/", self.port)
    }

    pub fn kill(&mut self) {
        self.process.kill();
    }
}

/// A fake managed-identity token endpoint (the App Service protocol azure_identity speaks when
/// IDENTITY_ENDPOINT and IDENTITY_HEADER are set): checks the secret header, counts the calls.
pub async fn fake_token_endpoint(
    secret: &'static str,
) -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::{Json, Router, http::HeaderMap, routing::get};
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let queries = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&queries);
    let router = Router::new().route(
        "/msi/token",
        get(move |headers: HeaderMap, query: axum::extract::RawQuery| {
            let counter = Arc::clone(&counter);
            let seen = Arc::clone(&seen);
            async move {
                let query = query.0.unwrap_or_default();
                seen.lock().unwrap().push(query.clone());
                let ok = headers.get("x-identity-header").is_some_and(|v| v == secret)
                    && query.contains("api-version=2019-08-01");
                if !ok {
                    return Err(axum::http::StatusCode::UNAUTHORIZED);
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let expires =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600;
                Ok(Json(serde_json::json!({
                    "access_token": "fake-entra-token",
                    "expires_on": expires.to_string(),
                    "resource": "https://cosmos.azure.com",
                    "token_type": "Bearer",
                })))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{addr}/msi/token"), calls, queries)
}
