//! In-memory store: a sorted set behind a lock. For tests of other layers and for `--store memory`
//! (nothing survives a restart).

use std::{
    sync::PoisonError,collections::BTreeSet, ops::Bound, sync::RwLock};

use async_trait::async_trait;

use super::{Candidate, CandidateStore, Page, Result, StoreError, decode_name_cursor, paginate};
use crate::name::CandidateName;

/// The memory store has no flags.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "memory_store")]
pub struct Args {}

pub async fn open(_args: &Args, _context: &super::OpenContext) -> Result<super::DynStore, std::convert::Infallible> {
    Ok(std::sync::Arc::new(MemoryStore::new()))
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    names: RwLock<BTreeSet<String>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl CandidateStore for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn get(&self, name: &CandidateName) -> Result<Candidate> {
        let names = self.names.read().unwrap_or_else(PoisonError::into_inner);
        names.get(name.as_str()).map(|n| Candidate { name: n.clone() }).ok_or(StoreError::NotFound)
    }

    async fn put(&self, name: &CandidateName) -> Result<Candidate> {
        self.names.write().unwrap_or_else(PoisonError::into_inner).insert(name.as_str().to_owned());
        Ok(name.into())
    }

    async fn delete(&self, name: &CandidateName) -> Result<()> {
        let removed = self.names.write().unwrap_or_else(PoisonError::into_inner).remove(name.as_str());
        if removed { Ok(()) } else { Err(StoreError::NotFound) }
    }

    async fn list(&self, page_size: usize, page_token: Option<&str>) -> Result<Page> {
        let after = page_token.map(decode_name_cursor).transpose()?;
        let lower = after.as_ref().map_or(Bound::Unbounded, |a| Bound::Excluded(a.clone()));
        let names = self.names.read().unwrap_or_else(PoisonError::into_inner);
        let mut candidates: Vec<Candidate> =
            names.range((lower, Bound::Unbounded)).take(page_size + 1).map(|n| Candidate { name: n.clone() }).collect();
        Ok(paginate(&mut candidates, page_size))
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

