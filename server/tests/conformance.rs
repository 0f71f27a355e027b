//! The store conformance suite against the built-in backends. Cloud backends add their own
//! `conformance_suite!` lines (against their emulators) in their own test files.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;

use candidates_server::store::{CandidateStore, embedded::EmbeddedStore, memory::MemoryStore};

/// An embedded store in its own temporary directory, removed when the store is dropped.
struct TempEmbedded {
    store: EmbeddedStore,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for TempEmbedded {
    type Target = dyn CandidateStore;
    fn deref(&self) -> &Self::Target {
        &self.store
    }
}

fn embedded() -> TempEmbedded {
    let dir = tempfile::tempdir().expect("temp dir");
    TempEmbedded { store: EmbeddedStore::open(dir.path()).expect("open embedded store"), _dir: dir }
}

conformance_suite!(memory, Arc::new(MemoryStore::new()) as Arc<dyn CandidateStore>);
conformance_suite!(embedded, embedded());

/// The embedded store keeps what it acknowledged across a close and reopen.
#[tokio::test]
async fn embedded_reopens_with_its_data() {
    use candidates_server::name::CandidateName;
    let dir = tempfile::tempdir().unwrap();
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store.put(&CandidateName::parse("kept").unwrap()).await.unwrap();
    }
    // The writer thread exits when the last handle drops; the file lock is released with it.
    let store = loop {
        match EmbeddedStore::open(dir.path()) {
            Ok(store) => break store,
            Err(candidates_server::store::embedded::OpenError::AlreadyOpen { .. }) => {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(store.get(&CandidateName::parse("kept").unwrap()).await.unwrap().name, "kept");
}

/// A second process (or store) cannot open the same file: a clear error, not corruption.
#[test]
fn embedded_is_exclusive() {
    let dir = tempfile::tempdir().unwrap();
    let _first = EmbeddedStore::open(dir.path()).unwrap();
    let second = EmbeddedStore::open(dir.path()).unwrap_err();
    assert!(second.to_string().contains("already open"), "{second}");
}
