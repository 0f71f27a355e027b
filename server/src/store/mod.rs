//! The candidate store: one async trait, a semantic error enum, one module per backend.
//!
//! A backend knows one storage engine or cloud SDK and nothing about HTTP or gRPC; the service maps
//! [`StoreError`] to a gRPC status once (see `crate::service`). SDK types never leave a backend's
//! module. Page tokens are opaque strings to clients: each backend encodes its own cursor.

use std::{fmt, sync::Arc};

use async_trait::async_trait;

use crate::name::CandidateName;

pub mod conformance;
pub mod debug;
pub mod guarded;
pub mod instrumented;
pub mod opening;
#[cfg(feature = "store-cosmos")]
mod sealed;
mod token;

pub use token::{decode_name_cursor, encode_name_cursor};

/// A stored candidate. Names read back from a store are returned as stored, even if they were
/// written by another program and would not pass today's name rules.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Candidate {
    pub name: String,
}

impl From<&CandidateName> for Candidate {
    fn from(name: &CandidateName) -> Self {
        Self { name: name.as_str().to_owned() }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub candidates: Vec<Candidate>,
    /// `None` on the last page.
    pub next_page_token: Option<String>,
}

/// What went wrong, in terms a caller can act on. Messages are safe to show to clients; the
/// `source` (SDK or I/O detail) is only logged.
/// Every backend maps its SDK's failures onto this one vocabulary, the same way: unreachable or
/// failing → `Unavailable`, a timeout → `DeadlineExceeded`, throttling → `ResourceExhausted`,
/// refused credentials or permissions → `PermissionDenied`, anything unexpected → `Internal`.
/// Exhaustive on purpose: the compiler finds every place a new variant must be handled.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("candidate not found")]
    NotFound,
    #[error("{0}")]
    InvalidArgument(String),
    #[error("the store is unavailable: {message}")]
    Unavailable {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
    #[error("the store is throttling requests: {message}")]
    ResourceExhausted { message: String },
    /// The store refused this instance's credentials or permissions: a deployment error (the
    /// instance's role lacks the backend's `REQUIRED_PERMISSIONS`), not the client's.
    #[error("the store denied access: {message}")]
    PermissionDenied { message: String },
    #[error("the store did not answer within the deadline")]
    DeadlineExceeded,
    #[error("internal store error: {message}")]
    Internal {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    pub fn unavailable(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Unavailable { message: message.into(), source: Some(source.into()) }
    }

    pub fn internal(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Internal { message: message.into(), source: Some(source.into()) }
    }

    /// The variant's name, for metric labels and mapping tables.
    pub fn label(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::InvalidArgument(_) => "invalid_argument",
            Self::Unavailable { .. } => "unavailable",
            Self::ResourceExhausted { .. } => "resource_exhausted",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::PermissionDenied { .. } => "permission_denied",
            Self::Internal { .. } => "internal",
        }
    }

    /// Attaches the SDK error a mapping was made from (logged, never sent to clients).
    pub fn with_source(self, error: impl Into<BoxError>) -> Self {
        match self {
            Self::Unavailable { message, .. } => Self::Unavailable { message, source: Some(error.into()) },
            Self::Internal { message, .. } => Self::Internal { message, source: Some(error.into()) },
            other => other,
        }
    }

    pub fn invalid_page_token() -> Self {
        Self::InvalidArgument("invalid page_token: pass the next_page_token of a previous page".into())
    }
}

/// The storage behind `CandidateService`. Object-safe so the service holds an
/// `Arc<dyn CandidateStore>` chosen at start from configuration.
#[async_trait]
pub trait CandidateStore: fmt::Debug + Send + Sync + 'static {
    /// Short backend name for logs and metrics (`embedded`, `memory`, `dynamodb`, ...).
    fn kind(&self) -> &'static str;

    /// Whether [`CandidateStore::list`] returns names in ascending (UTF-8 byte) order. Stores that
    /// list in their own scan order (DynamoDB) return `false`; the conformance suite then checks
    /// only that every candidate appears exactly once.
    fn lists_in_name_order(&self) -> bool {
        true
    }

    /// Whether [`CandidateStore::list`] may return an empty page that is not the last (a store
    /// that pages by scanned size, like DynamoDB's Scan). The service skips such pages, so that
    /// clients never see one.
    fn may_return_empty_pages(&self) -> bool {
        false
    }

    /// The candidate, or [`StoreError::NotFound`].
    async fn get(&self, name: &CandidateName) -> Result<Candidate>;

    /// Adds or updates the candidate; durable once this returns `Ok`.
    async fn put(&self, name: &CandidateName) -> Result<Candidate>;

    /// Deletes the candidate, or [`StoreError::NotFound`] if there was none.
    async fn delete(&self, name: &CandidateName) -> Result<()>;

    /// Up to `page_size` (>= 1) candidates after the cursor in `page_token`.
    /// An unknown or malformed token is [`StoreError::InvalidArgument`].
    async fn list(&self, page_size: usize, page_token: Option<&str>) -> Result<Page>;

    /// A real, cheap round-trip to the storage (for `/gtg?details`).
    async fn ping(&self) -> Result<()>;
}

pub type DynStore = Arc<dyn CandidateStore>;

/// A store operation, for wrappers that treat every call alike ([`wrap_store!`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Get,
    Put,
    Delete,
    List,
    Ping,
}

impl Op {
    /// Every operation, in declaration order (`op as usize` indexes it).
    pub const ALL: [Op; 5] = [Self::Get, Self::Put, Self::Delete, Self::List, Self::Ping];

    /// The metric label and log field.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Put => "put",
            Self::Delete => "delete",
            Self::List => "list",
            Self::Ping => "ping",
        }
    }
}

/// Implements [`CandidateStore`] for a wrapper `$ty` around the store in its field `$inner`, every
/// call going through its method `$around(op, call)` (`async fn $around<T>(&self, op: Op, call:
/// impl Future<Output = Result<T>>) -> Result<T>`). One place forwards the trait's methods, so a
/// wrapper is its one method, and a new store method is added here once, not per wrapper.
macro_rules! wrap_store {
    ($ty:ty, $inner:ident, $around:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::CandidateStore for $ty {
            fn kind(&self) -> &'static str {
                self.$inner.kind()
            }

            fn lists_in_name_order(&self) -> bool {
                self.$inner.lists_in_name_order()
            }

            fn may_return_empty_pages(&self) -> bool {
                self.$inner.may_return_empty_pages()
            }

            async fn get(&self, name: &$crate::name::CandidateName) -> $crate::store::Result<$crate::store::Candidate> {
                self.$around($crate::store::Op::Get, self.$inner.get(name)).await
            }

            async fn put(&self, name: &$crate::name::CandidateName) -> $crate::store::Result<$crate::store::Candidate> {
                self.$around($crate::store::Op::Put, self.$inner.put(name)).await
            }

            async fn delete(&self, name: &$crate::name::CandidateName) -> $crate::store::Result<()> {
                self.$around($crate::store::Op::Delete, self.$inner.delete(name)).await
            }

            async fn list(
                &self,
                page_size: usize,
                page_token: Option<&str>,
            ) -> $crate::store::Result<$crate::store::Page> {
                self.$around($crate::store::Op::List, self.$inner.list(page_size, page_token)).await
            }

            async fn ping(&self) -> $crate::store::Result<()> {
                self.$around($crate::store::Op::Ping, self.$inner.ping()).await
            }
        }
    };
}
pub(crate) use wrap_store;

/// Turns `page_size + 1` fetched rows into a page: the extra row only tells that more exist.
pub(crate) fn paginate(rows: &mut Vec<Candidate>, page_size: usize) -> Page {
    let more = rows.len() > page_size;
    rows.truncate(page_size);
    let next_page_token = if more { rows.last().map(|c| encode_name_cursor(&c.name)) } else { None };
    Page { candidates: std::mem::take(rows), next_page_token }
}

/// What every backend's `open` gets besides its own flags.
#[derive(Debug, Clone)]
pub struct OpenContext {
    /// Longest a store call may take, retries included (`--store-timeout`).
    pub call_timeout: std::time::Duration,
}

/// Why the chosen backend could not be opened: its own error, named for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct OpenError {
    pub backend: &'static str,
    /// `Some(short reason)` when waiting may cure it (see [`Transient`]); `None` when it is a
    /// configuration the operator must fix.
    pub transient: Option<&'static str>,
    pub source: BoxError,
}

/// Whether an open error can go away by itself: a role assignment or IAM binding not yet
/// propagated, a table or container created by the same deployment a little later, a network or
/// NAT not yet ready. Those are retried at start (`crate::opening`); a configuration error (no
/// region, a bad endpoint, a key schema that is wrong) is not. The short reason is safe to show on
/// `/gtg?details`: no names, no endpoints.
pub trait Transient {
    fn transient(&self) -> Option<&'static str>;
}

impl Transient for std::convert::Infallible {
    fn transient(&self) -> Option<&'static str> {
        match *self {}
    }
}

/// The registry: each line is a backend module that owns its flags (`Args`, flattened into the
/// server's `Config`), its `open` and open errors, its required cloud permissions and its SDK
/// error mapping. Adding a backend is its module, one line here, and its tests.
macro_rules! backends {
    ($( $(#[cfg($cfg:meta)])? $(#[doc = $doc:expr])* $variant:ident => $module:ident ),* $(,)?) => {
        $( $(#[cfg($cfg)])? pub mod $module; )*

        /// Where candidates are stored.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
        pub enum StoreKind {
            $( $(#[cfg($cfg)])? $(#[doc = $doc])* $variant, )*
        }

        impl StoreKind {
            /// The backend's name, as its `kind()` says it.
            pub fn name(self) -> &'static str {
                match self {
                    $( $(#[cfg($cfg)])? Self::$variant => stringify!($module), )*
                }
            }
        }

        /// Every backend's own flags.
        #[derive(Debug, Clone, clap::Args)]
        pub struct StoreArgs {
            $( $(#[cfg($cfg)])? #[command(flatten)] pub $module: $module::Args, )*
        }

        /// Opens the backend `kind` with its flags.
        pub async fn open(kind: StoreKind, args: &StoreArgs, context: &OpenContext) -> Result<DynStore, OpenError> {
            match kind {
                $( $(#[cfg($cfg)])? StoreKind::$variant => $module::open(&args.$module, context)
                    .await
                    .map_err(|e| OpenError { backend: stringify!($module), transient: Transient::transient(&e), source: Box::new(e) }), )*
            }
        }
    };
}

backends! {
    /// redb file under --data-dir; durable, no cloud needed (the default).
    Embedded => embedded,
    /// In memory; lost on restart (tests, demos).
    Memory => memory,
    #[cfg(feature = "store-dynamodb")]
    /// Amazon DynamoDB (the --dynamodb-* flags).
    Dynamodb => dynamodb,
    #[cfg(feature = "store-firestore")]
    /// Google Cloud Firestore, native mode (the --firestore-* flags).
    Firestore => firestore,
    #[cfg(feature = "store-cosmos")]
    /// Azure Cosmos DB, NoSQL API (the --cosmos-* flags).
    Cosmos => cosmos,
}
