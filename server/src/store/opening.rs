//! The store while the server waits for it at start. A cloud store often cannot be opened in an
//! instance's first minute: a role assignment or IAM binding not yet propagated (GCP documents up
//! to 7 minutes), a table or container the same deployment creates a little later, a NAT not yet
//! routing. Exiting then (as before December 2026) made systemd give up on the unit after five
//! quick restarts, and the instance stayed dead until the group replaced it. Instead the server
//! serves from the start: `/gtg` is 503 and health NOT_SERVING, every call is UNAVAILABLE with
//! the reason, and the store is swapped in as soon as it opens (`crate::app` retries).

use std::sync::{Mutex, OnceLock, PoisonError};

use async_trait::async_trait;

use super::{Candidate, CandidateStore, DynStore, Page, Result, StoreError};
use crate::name::CandidateName;

#[derive(Debug)]
pub struct Opening {
    kind: &'static str,
    store: OnceLock<DynStore>,
    /// Why the store is not open yet: a short reason safe to show to clients (no names).
    waiting: Mutex<&'static str>,
}

impl Opening {
    /// A store still to be opened, for `reason`.
    pub fn pending(kind: &'static str, reason: &'static str) -> Self {
        Self { kind, store: OnceLock::new(), waiting: Mutex::new(reason) }
    }

    /// The latest reason the store could not be opened.
    pub fn waiting_for(&self, reason: &'static str) {
        *self.waiting.lock().unwrap_or_else(PoisonError::into_inner) = reason;
    }

    /// The store, opened: every call goes to it from now on.
    pub fn open(&self, store: DynStore) {
        let _ = self.store.set(store);
    }

    pub fn is_open(&self) -> bool {
        self.store.get().is_some()
    }

    fn store(&self) -> Result<&DynStore> {
        self.store.get().ok_or_else(|| StoreError::Unavailable {
            message: format!(
                "the {} store is not open yet: {}",
                self.kind,
                *self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
            ),
            source: None,
        })
    }
}

#[async_trait]
impl CandidateStore for Opening {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn lists_in_name_order(&self) -> bool {
        self.store.get().is_some_and(|s| s.lists_in_name_order())
    }

    fn may_return_empty_pages(&self) -> bool {
        self.store.get().is_none_or(|s| s.may_return_empty_pages())
    }

    async fn get(&self, name: &CandidateName) -> Result<Candidate> {
        self.store()?.get(name).await
    }

    async fn put(&self, name: &CandidateName) -> Result<Candidate> {
        self.store()?.put(name).await
    }

    async fn delete(&self, name: &CandidateName) -> Result<()> {
        self.store()?.delete(name).await
    }

    async fn list(&self, page_size: usize, page_token: Option<&str>) -> Result<Page> {
        self.store()?.list(page_size, page_token).await
    }

    async fn ping(&self) -> Result<()> {
        self.store()?.ping().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::memory::MemoryStore;

    #[tokio::test]
    async fn unavailable_with_the_reason_until_opened_then_the_store() {
        let opening = Opening::pending("dynamodb", "the table does not exist yet");
        let name = CandidateName::parse("a").unwrap();
        let error = opening.put(&name).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "the store is unavailable: the dynamodb store is not open yet: the table does not exist yet"
        );
        opening.waiting_for("DynamoDB cannot be reached");
        assert!(opening.ping().await.unwrap_err().to_string().ends_with("DynamoDB cannot be reached"));
        opening.open(Arc::new(MemoryStore::new()));
        assert!(opening.is_open());
        opening.put(&name).await.unwrap();
        assert_eq!(CandidateStore::get(&opening, &name).await.unwrap().name, "a");
        assert!(opening.lists_in_name_order());
    }
}
