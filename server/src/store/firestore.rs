//! Google Cloud Firestore (native mode), through the `firestore` crate. The collection is the one
//! the original Flask app used: `candidates`, document id = name, fields `{"CandidateName": name}`;
//! documents it wrote read back unchanged. One Firestore call per operation: GetDocument,
//! UpdateDocument without precondition (an upsert, i.e. `set`), DeleteDocument with an
//! `exists` precondition (so a missing document is reported), ListDocuments ordered by document id
//! (its page token, wrapped, is ours), and the crate's ping for the health round-trip.
//!
//! Authentication: Application Default Credentials (on GCE, the instance's service account through
//! the metadata server). With `FIRESTORE_EMULATOR_HOST` set, the crate talks to the emulator with a
//! stub token and looks up no credentials.

use std::time::Duration;

use async_trait::async_trait;
use firestore::{
    FirestoreDb, FirestoreDbOptions, FirestoreListDocResult, FirestoreWritePrecondition, errors::FirestoreError,
};
use serde::{Deserialize, Serialize};

use super::{Candidate, CandidateStore, Page, Result, StoreError, decode_name_cursor, encode_name_cursor};
use crate::name::CandidateName;

/// The Firestore store's settings. Credentials are Application Default Credentials (the GCE
/// instance's service account); FIRESTORE_EMULATOR_HOST points the client at an emulator.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "firestore_store")]
#[command(next_help_heading = "Firestore store (--store firestore)")]
pub struct Args {
    /// Google Cloud project id (default: detected from the credentials or the metadata server).
    #[arg(id = "firestore_project", long = "firestore-project", env = "GOOGLE_CLOUD_PROJECT")]
    pub project: Option<String>,
    /// Firestore database id.
    #[arg(
        id = "firestore_database",
        long = "firestore-database",
        env = "CANDIDATES_FIRESTORE_DATABASE",
        default_value = "(default)"
    )]
    pub database: String,
    /// Collection of the candidates (document id = name).
    #[arg(
        id = "firestore_collection",
        long = "firestore-collection",
        env = "CANDIDATES_FIRESTORE_COLLECTION",
        default_value = "candidates"
    )]
    pub collection: String,
}

/// Attempts per write (the crate retries reads itself, with the same bound).
const ATTEMPTS: usize = 3;

/// The stored document, field for field as the original app wrote it.
#[derive(Debug, Serialize, Deserialize)]
struct CandidateDoc {
    #[serde(rename = "CandidateName")]
    candidate_name: String,
}

/// The IAM permissions this backend uses, on the database: what the deployment's role must grant.
pub const REQUIRED_PERMISSIONS: &[&str] = &[
    "datastore.entities.create",
    "datastore.entities.delete",
    "datastore.entities.get",
    "datastore.entities.list",
    "datastore.entities.update",
];

pub async fn open(args: &Args, context: &super::OpenContext) -> Result<super::DynStore, OpenError> {
    Ok(std::sync::Arc::new(FirestoreStore::connect(args, context.call_timeout).await?))
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("no Google Cloud project for Firestore: set --firestore-project or GOOGLE_CLOUD_PROJECT ({0})")]
    NoProject(String),
    #[error("cannot create the Firestore client: {0}")]
    Client(String),
    #[error(
        "Firestore database {database:?} of project {project:?} not found (create it in native mode, or set --firestore-database)"
    )]
    NoDatabase { project: String, database: String },
    #[error(
        "access to Firestore in project {project:?} denied: the instance's service account needs roles/datastore.user ({detail})"
    )]
    PermissionDenied { project: String, detail: String },
    #[error("cannot reach Firestore for project {project:?}: {detail}")]
    Unreachable { project: String, detail: String },
}

impl super::Transient for OpenError {
    fn transient(&self) -> Option<&'static str> {
        match self {
            // Application Default Credentials come from the metadata server, which may lag at boot.
            Self::Client(_) => Some("the Firestore client cannot be created yet (credentials)"),
            Self::NoDatabase { .. } => Some("the database does not exist yet"),
            Self::PermissionDenied { .. } => Some("access denied: the service account lacks roles/datastore.user"),
            Self::Unreachable { .. } => Some("Firestore cannot be reached"),
            Self::NoProject(_) => None,
        }
    }
}

#[derive(Clone)]
pub struct FirestoreStore {
    db: FirestoreDb,
    collection: String,
    project: String,
}

impl std::fmt::Debug for FirestoreStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirestoreStore").field("project", &self.project).field("collection", &self.collection).finish()
    }
}

/// The code of a Firestore error as gRPC names it (`NotFound`, `Unavailable`, ...), if it has one.
fn code(e: &FirestoreError) -> &str {
    match e {
        FirestoreError::DatabaseError(e) => &e.public.code,
        FirestoreError::DataNotFoundError(e) => &e.public.code,
        FirestoreError::DataConflictError(e) => &e.public.code,
        FirestoreError::NetworkError(e) => &e.public.code,
        _ => "",
    }
}

fn retryable(e: &FirestoreError) -> bool {
    match e {
        FirestoreError::DatabaseError(e) => e.retry_possible,
        FirestoreError::NetworkError(_) => true,
        _ => false,
    }
}

impl FirestoreStore {
    /// Connects (the emulator when FIRESTORE_EMULATOR_HOST is set) and checks that the database
    /// answers and lets us in.
    pub async fn connect(config: &Args, call_timeout: Duration) -> Result<Self, OpenError> {
        let project = match &config.project {
            Some(p) => p.clone(),
            None => FirestoreDbOptions::for_default_project_id()
                .await
                .map(|o| o.google_project_id)
                .ok_or_else(|| OpenError::NoProject("none found in the environment".into()))?,
        };
        let options = FirestoreDbOptions::new(project.clone())
            .with_database_id(config.database.clone())
            .with_max_retries(ATTEMPTS - 1)
            // Per attempt: a stalled endpoint costs one attempt's share of the call's time.
            .with_request_timeout(call_timeout / ATTEMPTS as u32);
        let db = FirestoreDb::with_options(options).await.map_err(|e| OpenError::Client(e.to_string()))?;
        let store = Self { db, collection: config.collection.clone(), project };
        store.check(&config.database).await?;
        Ok(store)
    }

    /// One cheap listing: a missing database or a missing permission shows here, at start.
    async fn check(&self, database: &str) -> Result<(), OpenError> {
        match self.list_page(1, None).await {
            Ok(_) => Ok(()),
            Err(e) => Err(match code(&e) {
                "NotFound" => OpenError::NoDatabase { project: self.project.clone(), database: database.to_owned() },
                "PermissionDenied" | "Unauthenticated" => {
                    OpenError::PermissionDenied { project: self.project.clone(), detail: e.to_string() }
                }
                _ => OpenError::Unreachable { project: self.project.clone(), detail: e.to_string() },
            }),
        }
    }

    async fn list_page(
        &self,
        page_size: usize,
        page_token: Option<String>,
    ) -> Result<FirestoreListDocResult, FirestoreError> {
        let list = self
            .db
            .fluent()
            .list()
            .fields(["CandidateName"])
            .from(&self.collection)
            // ListDocuments returns documents in ascending name (id) order by itself. An explicit
            // `order_by __name__` is the same order, but the emulator then fails every request with
            // a page token (UNKNOWN), so none is sent.
            .page_size(page_size);
        match page_token {
            Some(token) => list.page_token(token).get_page().await,
            None => list.get_page().await,
        }
    }

    /// Runs a write up to [`ATTEMPTS`] times while Firestore says it may be retried (UNAVAILABLE,
    /// ABORTED, RESOURCE_EXHAUSTED, a dropped connection), with jittered exponential backoff.
    /// Both writes are safe to repeat: a set is idempotent, and a repeated delete at worst reports
    /// NOT_FOUND for a document the first attempt removed.
    async fn write<T, F, Fut>(&self, op: F) -> Result<T, FirestoreError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, FirestoreError>>,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Err(e) if attempt < ATTEMPTS && retryable(&e) => {
                    let max = 100u64 << attempt;
                    let delay = Duration::from_millis(rand_millis(max));
                    static RETRYING: candidates_edge::throttle::Throttle = candidates_edge::throttle::Throttle::new("Firestore write retried");
                    if RETRYING.admit(|| e.to_string()) {
                        tracing::warn!(request_id = candidates_edge::context::request_id(), error = %e, attempt, ?delay, "Firestore write failed; retrying");
                    }
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    fn error(&self, op: &str, e: FirestoreError) -> StoreError {
        let network = matches!(e, FirestoreError::NetworkError(_));
        classify(code(&e), network, &self.collection, op).with_source(e)
    }
}

/// The mapping table, by gRPC code name (see `StoreError` for the vocabulary).
fn classify(code: &str, network: bool, collection: &str, op: &str) -> StoreError {
    let unavailable = |message: String| StoreError::Unavailable { message, source: None };
    match code {
        "Unavailable" | "Cancelled" => unavailable("cannot reach Firestore".into()),
        "DeadlineExceeded" => StoreError::DeadlineExceeded,
        "ResourceExhausted" => {
            StoreError::ResourceExhausted { message: "Firestore is throttling requests (resource exhausted)".into() }
        }
        "Aborted" => unavailable("Firestore aborted the request (contention)".into()),
        "PermissionDenied" | "Unauthenticated" => {
            StoreError::PermissionDenied { message: format!("access to Firestore denied ({code})") }
        }
        "NotFound" => unavailable(format!("Firestore database or collection {collection:?} not found")),
        _ if network => unavailable("cannot reach Firestore".into()),
        _ => StoreError::Internal { message: format!("Firestore {op} failed ({code})"), source: None },
    }
}

/// A number of milliseconds below `max`, to spread retries.
fn rand_millis(max: u64) -> u64 {
    (crate::jitter::fraction() * max as f64) as u64
}

#[async_trait]
impl CandidateStore for FirestoreStore {
    fn kind(&self) -> &'static str {
        "firestore"
    }

    async fn get(&self, name: &CandidateName) -> Result<Candidate> {
        match self.db.fluent().select().by_id_in(&self.collection).one(name.as_str()).await {
            Ok(Some(_)) => Ok(name.into()),
            Ok(None) => Err(StoreError::NotFound),
            Err(e) => Err(self.error("GetDocument", e)),
        }
    }

    async fn put(&self, name: &CandidateName) -> Result<Candidate> {
        let doc = CandidateDoc { candidate_name: name.as_str().to_owned() };
        self.write(|| {
            self.db
                .fluent()
                .update()
                .in_col(&self.collection)
                .document_id(name.as_str())
                .object(&doc)
                .execute::<CandidateDoc>()
        })
        .await
        .map_err(|e| self.error("UpdateDocument", e))?;
        Ok(name.into())
    }

    async fn delete(&self, name: &CandidateName) -> Result<()> {
        let result = self
            .write(|| {
                self.db
                    .fluent()
                    .delete()
                    .from(&self.collection)
                    .precondition(FirestoreWritePrecondition::Exists(true))
                    .document_id(name.as_str())
                    .execute()
            })
            .await;
        match result {
            Ok(()) => Ok(()),
            Err(FirestoreError::DataNotFoundError(_)) => Err(StoreError::NotFound),
            Err(e) => Err(self.error("DeleteDocument", e)),
        }
    }

    async fn list(&self, page_size: usize, page_token: Option<&str>) -> Result<Page> {
        // Firestore's own page token, wrapped so that a malformed one is rejected here.
        let token = page_token.map(decode_name_cursor).transpose()?;
        let page = match self.list_page(page_size, token).await {
            Ok(page) => page,
            Err(e) if code(&e) == "InvalidArgument" => return Err(StoreError::invalid_page_token()),
            Err(e) => return Err(self.error("ListDocuments", e)),
        };
        let candidates = page
            .documents
            .iter()
            .filter_map(|doc| doc.name.rsplit_once('/').map(|(_, id)| Candidate { name: id.to_owned() }))
            .collect();
        Ok(Page { candidates, next_page_token: page.page_token.as_deref().map(encode_name_cursor) })
    }

    async fn ping(&self) -> Result<()> {
        self.db.ping().await.map_err(|e| self.error("ping", e))
    }
}

#[cfg(test)]
mod mapping_tests {
    use super::*;

    #[test]
    fn error_mapping_table() {
        let cases: &[(&str, bool, &str)] = &[
            ("Unavailable", false, "unavailable"),
            ("Cancelled", false, "unavailable"),
            ("DeadlineExceeded", false, "deadline_exceeded"),
            ("ResourceExhausted", false, "resource_exhausted"),
            ("Aborted", false, "unavailable"),
            ("PermissionDenied", false, "permission_denied"),
            ("Unauthenticated", false, "permission_denied"),
            ("NotFound", false, "unavailable"),
            ("", true, "unavailable"),
            ("Internal", false, "internal"),
        ];
        for (code, network, want) in cases {
            let got = classify(code, *network, "c", "GetDocument").label();
            assert_eq!(got, *want, "{code} {network}");
        }
    }
}
