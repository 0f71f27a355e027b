//! Azure Cosmos DB (NoSQL API), through azure_data_cosmos. The container is the one the original
//! Flask app used: database `CandidateDatabase`, container `Candidates`, partition key
//! `/CandidateName`, documents `{"id": name, "CandidateName": name}`; documents it wrote read back
//! unchanged. One Cosmos call per operation: a point read by id and partition key (not a query),
//! an upsert, a delete, and a cross-partition query for listing whose continuation token is our
//! page token. System fields (`_rid`, `_ts`, ...) are never read into responses.
//!
//! Authentication: Entra ID through the VM's managed identity (azure_identity), as the original's
//! DefaultAzureCredential did, so accounts with local (key) auth disabled work; or an account key
//! (emulators, users who need it), taken from the environment or a file and never logged.

use std::{num::NonZeroU32, path::PathBuf, sync::Arc, time::Duration};

use async_trait::async_trait;
use azure_core::credentials::Secret;
use azure_data_cosmos::{
    AccountReference, ContainerClient, CosmosClientBuilder, CosmosError, FeedScope, Query,
    options::{
        MaxItemCountHint, OperationOptionsBuilder, QueryOptions, Region, RoutingStrategy, ThrottlingRetryOptionsBuilder,
    },
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::{Candidate, CandidateStore, Page, Result, StoreError};
use crate::name::CandidateName;

/// The Cosmos DB store's settings. The env names are the original app's. Without a key the VM's
/// managed identity (Entra ID) is used.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "cosmos_store")]
#[command(next_help_heading = "Cosmos DB store (--store cosmos)")]
pub struct Args {
    /// Account endpoint, e.g. https://myaccount.documents.azure.com:443/
    #[arg(id = "cosmos_endpoint", long = "cosmos-endpoint", env = "COSMOS_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Database.
    #[arg(
        id = "cosmos_database",
        long = "cosmos-database",
        env = "COSMOS_DATABASE_NAME",
        default_value = "CandidateDatabase"
    )]
    pub database: String,
    /// Container (partition key /CandidateName).
    #[arg(
        id = "cosmos_container",
        long = "cosmos-container",
        env = "COSMOS_CONTAINER_NAME",
        default_value = "Candidates"
    )]
    pub container: String,
    /// The region the SDK prefers (the one nearest the VM), e.g. eastus.
    #[arg(id = "cosmos_region", long = "cosmos-region", env = "CANDIDATES_COSMOS_REGION", default_value = "eastus")]
    pub region: String,
    /// Account key instead of Entra ID (emulators; accounts with key auth). Environment only.
    #[arg(id = "cosmos_key", long = "cosmos-key", env = "CANDIDATES_COSMOS_KEY", hide_env_values = true, hide = true)]
    pub key: Option<CosmosKey>,
    /// Client id of the user-assigned managed identity to authenticate as (Entra ID), when the VM
    /// may carry more than one; without it the VM's only identity is used.
    #[arg(id = "cosmos_identity_client_id", long = "cosmos-identity-client-id", env = "CANDIDATES_COSMOS_IDENTITY_CLIENT_ID")]
    pub identity_client_id: Option<String>,
    /// Secret for the MAC on page tokens, the same on every instance behind one load balancer.
    /// Without it the MAC key is derived from the endpoint, database and container: enough to
    /// stop corrupted and blindly forged tokens, not one forged by someone who knows all three.
    #[arg(
        id = "cosmos_page_token_secret",
        long = "cosmos-page-token-secret",
        env = "CANDIDATES_COSMOS_PAGE_TOKEN_SECRET",
        hide_env_values = true
    )]
    pub page_token_secret: Option<CosmosKey>,
    /// File holding the account key instead of Entra ID.
    #[arg(id = "cosmos_key_file", long = "cosmos-key-file", env = "CANDIDATES_COSMOS_KEY_FILE")]
    pub key_file: Option<PathBuf>,
}

/// 429 retries per call (each honouring the service's retry-after, capped), then RESOURCE_EXHAUSTED.
const THROTTLE_RETRIES: u32 = 3;
/// The longest all of a call's 429 waits may add up to.
const THROTTLE_WAIT: Duration = Duration::from_secs(5);

/// The stored document, field for field as the original app wrote it.
#[derive(Debug, Serialize, Deserialize)]
struct CandidateDoc {
    id: String,
    #[serde(rename = "CandidateName")]
    candidate_name: String,
}

#[derive(Debug, Deserialize)]
struct IdOnly {
    id: String,
}

/// The data actions this backend uses on the container (`Microsoft.DocumentDB/databaseAccounts/`
/// prefix), and the account-level metadata read the SDK makes: what the deployment's roles grant.
pub const REQUIRED_PERMISSIONS: &[&str] = &[
    "readMetadata",
    "sqlDatabases/containers/executeQuery",
    "sqlDatabases/containers/items/delete",
    "sqlDatabases/containers/items/read",
    "sqlDatabases/containers/items/upsert",
];

pub async fn open(args: &Args, _context: &super::OpenContext) -> Result<super::DynStore, OpenError> {
    Ok(Arc::new(CosmosStore::connect(args).await?))
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("no Cosmos DB endpoint: set --cosmos-endpoint or COSMOS_ENDPOINT")]
    NoEndpoint,
    #[error("invalid Cosmos DB endpoint {0:?}")]
    BadEndpoint(String),
    #[error("cannot read the Cosmos DB key file {path}: {source}")]
    KeyFile { path: std::path::PathBuf, source: std::io::Error },
    #[error("cannot create the managed identity credential: {0}")]
    Credential(String),
    #[error("Cosmos DB database {database:?} or container {container:?} not found at {endpoint}")]
    NotFound { endpoint: String, database: String, container: String },
    #[error(
        "access to Cosmos DB at {endpoint} denied ({status}): the VM's identity needs a data-plane role with read, upsert, delete and query on the container"
    )]
    AccessDenied { endpoint: String, status: String },
    #[error("cannot reach Cosmos DB at {endpoint}: {detail}")]
    Unreachable { endpoint: String, detail: String },
}

impl super::Transient for OpenError {
    fn transient(&self) -> Option<&'static str> {
        match self {
            Self::Credential(_) => Some("the managed identity is not available yet"),
            Self::NotFound { .. } => Some("the database or container does not exist yet"),
            Self::AccessDenied { .. } => Some("access denied: the identity lacks a data-plane role on the container"),
            Self::Unreachable { .. } => Some("Cosmos DB cannot be reached"),
            Self::NoEndpoint | Self::BadEndpoint(_) | Self::KeyFile { .. } => None,
        }
    }
}

#[derive(Clone)]
pub struct CosmosStore {
    container: ContainerClient,
    name: String,
    /// Seals continuation tokens into page tokens: only tokens Cosmos DB issued reach it again.
    tokens: super::sealed::Sealer,
}

impl std::fmt::Debug for CosmosStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CosmosStore").field("container", &self.name).finish_non_exhaustive()
    }
}

impl CosmosStore {
    pub async fn connect(config: &Args) -> Result<Self, OpenError> {
        let endpoint_text = config.endpoint.clone().ok_or(OpenError::NoEndpoint)?;
        let endpoint = endpoint_text.parse().map_err(|_| OpenError::BadEndpoint(endpoint_text.clone()))?;
        let key = match (&config.key, &config.key_file) {
            (Some(key), _) => Some(key.expose().to_owned()),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .map_err(|source| OpenError::KeyFile { path: path.clone(), source })?
                    .trim()
                    .to_owned(),
            ),
            (None, None) => None,
        };
        let account = match key {
            Some(key) => AccountReference::with_authentication_key(endpoint, Secret::from(key)),
            None => {
                // azure_identity 1.0 reads no AZURE_CLIENT_ID: a user-assigned identity is named here.
                let options = config.identity_client_id.clone().map(|id| azure_identity::ManagedIdentityCredentialOptions {
                    user_assigned_id: Some(azure_identity::UserAssignedId::ClientId(id)),
                    ..Default::default()
                });
                let credential = azure_identity::ManagedIdentityCredential::new(options)
                    .map_err(|e| OpenError::Credential(e.to_string()))?;
                AccountReference::with_credential(endpoint, credential)
            }
        };
        let throttling = ThrottlingRetryOptionsBuilder::new()
            .with_max_retry_count(THROTTLE_RETRIES)
            .with_max_retry_wait_time(THROTTLE_WAIT)
            .build();
        let operation = OperationOptionsBuilder::new().with_throttling_retry_options(throttling).build();
        let unreachable =
            |e: CosmosError| OpenError::Unreachable { endpoint: endpoint_text.clone(), detail: e.to_string() };
        let client = CosmosClientBuilder::new()
            .with_default_operation_options(operation)
            .build(account, RoutingStrategy::ProximityTo(Region::new(config.region.clone())))
            .await
            .map_err(unreachable)?;
        let container = client
            .database_client(config.database.as_str())
            .container_client(config.container.as_str(), None)
            .await
            .map_err(|e| {
                let status = e.status();
                if status.is_not_found() {
                    OpenError::NotFound {
                        endpoint: endpoint_text.clone(),
                        database: config.database.clone(),
                        container: config.container.clone(),
                    }
                } else if status.is_unauthorized() || status.is_forbidden() {
                    OpenError::AccessDenied { endpoint: endpoint_text.clone(), status: status.to_string() }
                } else {
                    unreachable(e)
                }
            })?;
        let tokens = match &config.page_token_secret {
            Some(secret) => super::sealed::Sealer::new(secret.expose().as_bytes()),
            None => super::sealed::Sealer::new(
                format!("{endpoint_text}\n{}\n{}", config.database, config.container).as_bytes(),
            ),
        };
        let store = Self { container, name: config.container.clone(), tokens };
        // A real data-plane round trip: the identity may read metadata but not items.
        store.ping().await.map_err(|e| match e {
            StoreError::PermissionDenied { message } => {
                OpenError::AccessDenied { endpoint: endpoint_text.clone(), status: message }
            }
            e => OpenError::Unreachable { endpoint: endpoint_text.clone(), detail: e.to_string() },
        })?;
        Ok(store)
    }

    fn error(&self, op: &str, e: CosmosError) -> StoreError {
        let status = e.status();
        let answer = if e.is_from_wire() { Answer::Status(u16::from(status)) } else { Answer::NoAnswer };
        classify(answer, &self.name, op).with_source(e)
    }
}

/// What came back from Cosmos DB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// An HTTP status from the service.
    Status(u16),
    /// Nothing: the request failed before an answer (connection, DNS, TLS).
    NoAnswer,
}

/// The mapping table, by HTTP status (see `StoreError` for the vocabulary).
fn classify(answer: Answer, container: &str, op: &str) -> StoreError {
    let unavailable = |message: String| StoreError::Unavailable { message, source: None };
    match answer {
        Answer::NoAnswer => unavailable("cannot reach Cosmos DB".into()),
        Answer::Status(429) => StoreError::ResourceExhausted {
            message: format!("Cosmos DB is throttling requests (429), still after {THROTTLE_RETRIES} retries"),
        },
        Answer::Status(401 | 403) => {
            StoreError::PermissionDenied { message: format!("access to Cosmos DB container {container:?} denied") }
        }
        Answer::Status(404) => unavailable(format!("Cosmos DB container {container:?} not found")),
        Answer::Status(408 | 504) => StoreError::DeadlineExceeded,
        Answer::Status(410 | 449 | 500 | 502 | 503) => unavailable("cannot reach Cosmos DB".into()),
        Answer::Status(status) => {
            StoreError::Internal { message: format!("Cosmos DB {op} failed ({status})"), source: None }
        }
    }
}

#[async_trait]
impl CandidateStore for CosmosStore {
    fn kind(&self) -> &'static str {
        "cosmos"
    }

    /// Cross-partition query results come in partition order.
    fn lists_in_name_order(&self) -> bool {
        false
    }

    async fn get(&self, name: &CandidateName) -> Result<Candidate> {
        match self.container.read_item(name.as_str().to_owned(), name.as_str(), None).await {
            Ok(_) => Ok(name.into()),
            Err(e) if e.status().is_not_found() => Err(StoreError::NotFound),
            Err(e) => Err(self.error("read_item", e)),
        }
    }

    async fn put(&self, name: &CandidateName) -> Result<Candidate> {
        let doc = CandidateDoc { id: name.as_str().to_owned(), candidate_name: name.as_str().to_owned() };
        self.container
            .upsert_item(name.as_str().to_owned(), name.as_str(), doc, None)
            .await
            .map_err(|e| self.error("upsert_item", e))?;
        Ok(name.into())
    }

    async fn delete(&self, name: &CandidateName) -> Result<()> {
        match self.container.delete_item(name.as_str().to_owned(), name.as_str(), None).await {
            Ok(_) => Ok(()),
            Err(e) if e.status().is_not_found() => Err(StoreError::NotFound),
            Err(e) => Err(self.error("delete_item", e)),
        }
    }

    #[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
    async fn list(&self, page_size: usize, page_token: Option<&str>) -> Result<Page> {
        let max = NonZeroU32::new(u32::try_from(page_size).unwrap_or(u32::MAX).max(1)).expect("non-zero");
        let mut options = QueryOptions::default().with_max_item_count(MaxItemCountHint::Limit(max));
        if let Some(token) = page_token {
            // A token we did not issue never reaches Cosmos DB: a forged continuation in its own
            // format made it answer 500, which counted as an outage for every client.
            let token = self.tokens.open(token)?;
            options = options.with_continuation_token(azure_data_cosmos::feed::ContinuationToken::from_string(token));
        }
        let query = Query::from("SELECT c.id FROM c");
        let result = self.container.query_items::<IdOnly>(query, FeedScope::full_container(), Some(options)).await;
        let mut pages = match result {
            Ok(items) => items.into_pages(),
            Err(e) if page_token.is_some() && e.status().is_bad_request() => {
                return Err(StoreError::invalid_page_token());
            }
            Err(e) => return Err(self.error("query_items", e)),
        };
        // Cosmos may answer empty pages before the feed ends (one per partition range with nothing
        // left): skip them, so an empty page always means the end.
        loop {
            match pages.next().await {
                None => return Ok(Page::default()),
                Some(Err(e)) if page_token.is_some() && e.status().is_bad_request() => {
                    return Err(StoreError::invalid_page_token());
                }
                Some(Err(e)) => return Err(self.error("query_items", e)),
                Some(Ok(page)) if page.items().is_empty() => continue,
                Some(Ok(page)) => {
                    let candidates = page.into_items().into_iter().map(|d| Candidate { name: d.id }).collect();
                    // The position after this page; when nothing is left, the next call ends at once.
                    let token = pages.to_continuation_token().map_err(|e| self.error("continuation", e))?;
                    return Ok(Page { candidates, next_page_token: Some(self.tokens.seal(token.as_str())) });
                }
            }
        }
    }

    async fn ping(&self) -> Result<()> {
        // A point read: found or not found, either answer proves a data-plane round trip.
        match self.container.read_item("-ping-", "-ping-", None).await {
            Ok(_) => Ok(()),
            Err(e) if e.status().is_not_found() => Ok(()),
            Err(e) => Err(self.error("ping", e)),
        }
    }
}

/// An account key from the environment: kept out of Debug output and logs.
#[derive(Clone)]
pub struct CosmosKey(Arc<str>);

impl CosmosKey {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for CosmosKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CosmosKey(<redacted>)")
    }
}

impl std::str::FromStr for CosmosKey {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(Self(s.into()))
    }
}

#[cfg(test)]
mod mapping_tests {
    use super::*;

    #[test]
    fn error_mapping_table() {
        let cases: &[(Answer, &str)] = &[
            (Answer::NoAnswer, "unavailable"),
            (Answer::Status(429), "resource_exhausted"),
            (Answer::Status(401), "permission_denied"),
            (Answer::Status(403), "permission_denied"),
            (Answer::Status(404), "unavailable"),
            (Answer::Status(408), "deadline_exceeded"),
            (Answer::Status(410), "unavailable"),
            (Answer::Status(449), "unavailable"),
            (Answer::Status(500), "unavailable"),
            (Answer::Status(503), "unavailable"),
            (Answer::Status(400), "internal"),
        ];
        for (answer, want) in cases {
            let got = classify(*answer, "c", "read").label();
            assert_eq!(got, *want, "{answer:?}");
        }
    }
}
