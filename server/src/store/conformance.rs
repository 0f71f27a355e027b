//! The store conformance suite (object_store style): shared async checks that every backend runs,
//! from its own test file, against a fresh, empty store. A failing check panics with a message
//! that names the backend and what differed.
//!
//! Add a backend with the `conformance_suite!` macro in `server/tests/common/`: one test per check,
//! each on a fresh store from the backend's factory, so the checks run in parallel and in isolation.
#![allow(
    clippy::expect_used,
    reason = "a test suite (compiled into the lib so that each backend's tests can run it): a failed expect is a failed test"
)]

use std::collections::BTreeSet;

use futures::{StreamExt, stream};

use super::{Candidate, CandidateStore, Page, StoreError};
use crate::name::{CandidateName, MAX_CHARS};

fn name(s: &str) -> CandidateName {
    CandidateName::parse(s).unwrap_or_else(|e| panic!("test name {s:?} is invalid: {e}"))
}

/// Every page of the listing, checking the invariants of paging on the way.
pub async fn list_all(store: &dyn CandidateStore, page_size: usize) -> Vec<Candidate> {
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    for pages in 0.. {
        assert!(pages < 1_000_000, "{}: listing never ends", store.kind());
        let Page { candidates, next_page_token } = store
            .list(page_size, token.as_deref())
            .await
            .unwrap_or_else(|e| panic!("{}: list failed: {e}", store.kind()));
        assert!(
            candidates.len() <= page_size,
            "{}: page of {} exceeds page_size {page_size}",
            store.kind(),
            candidates.len()
        );
        all.extend(candidates);
        match next_page_token {
            Some(t) => {
                assert!(!t.is_empty(), "{}: empty next_page_token must be None", store.kind());
                token = Some(t);
            }
            None => break,
        }
    }
    all
}

fn names_of(list: &[Candidate]) -> Vec<String> {
    list.iter().map(|c| c.name.clone()).collect()
}

fn assert_listing(store: &dyn CandidateStore, listed: &[Candidate], expected: &BTreeSet<String>) {
    let names = names_of(listed);
    let unique: BTreeSet<String> = names.iter().cloned().collect();
    assert_eq!(unique.len(), names.len(), "{}: listing has duplicates", store.kind());
    assert_eq!(&unique, expected, "{}: listing differs from what was written", store.kind());
    if store.lists_in_name_order() {
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "{}: listing is not in name order", store.kind());
    }
}

/// A fresh store is empty: get/delete are NotFound, list is one empty last page.
pub async fn empty_store(store: &dyn CandidateStore) {
    let n = name("nobody");
    assert!(matches!(store.get(&n).await, Err(StoreError::NotFound)), "{}: get on empty", store.kind());
    assert!(matches!(store.delete(&n).await, Err(StoreError::NotFound)), "{}: delete on empty", store.kind());
    let page = store.list(10, None).await.expect("list on empty store");
    assert_eq!(page, Page::default(), "{}: list on empty store", store.kind());
    store.ping().await.expect("ping");
}

/// put → get → list → delete → get NotFound → delete NotFound.
pub async fn put_get_list_delete(store: &dyn CandidateStore) {
    let n = name("John Smith");
    assert_eq!(store.put(&n).await.expect("put"), Candidate { name: "John Smith".into() });
    assert_eq!(store.get(&n).await.expect("get"), Candidate { name: "John Smith".into() });
    assert_eq!(names_of(&list_all(store, 10).await), vec!["John Smith".to_string()]);
    store.delete(&n).await.expect("delete");
    assert!(matches!(store.get(&n).await, Err(StoreError::NotFound)), "{}: get after delete", store.kind());
    assert!(matches!(store.delete(&n).await, Err(StoreError::NotFound)), "{}: second delete", store.kind());
    assert!(list_all(store, 10).await.is_empty(), "{}: list after delete", store.kind());
}

/// Putting the same name again changes nothing: one candidate, still readable.
pub async fn upsert_is_idempotent(store: &dyn CandidateStore) {
    let n = name("Ada");
    for _ in 0..3 {
        store.put(&n).await.expect("put");
    }
    assert_eq!(names_of(&list_all(store, 10).await), vec!["Ada".to_string()]);
    store.get(&n).await.expect("get after repeated put");
}

/// Names at every edge of the validity rules round-trip exactly, through get and list.
pub async fn names_at_validity_edges(store: &dyn CandidateStore) {
    let edges: Vec<String> = vec![
        "a".into(),
        "John Smith".into(),
        " padded ".into(),
        "Zoë Ångström".into(),
        "候选人".into(),
        "🦀 crab".into(),
        "...".into(),
        "__".into(),
        "___".into(),
        "_x__".into(),
        "%20".into(),
        "x=y&z+w".into(),
        "quote\"apostrophe'".into(),
        "z".repeat(MAX_CHARS),
        "é".repeat(MAX_CHARS),
        "🦀".repeat(MAX_CHARS),
    ];
    for e in &edges {
        store.put(&name(e)).await.unwrap_or_else(|err| panic!("{}: put {e:?}: {err}", store.kind()));
    }
    for e in &edges {
        let got = store.get(&name(e)).await.unwrap_or_else(|err| panic!("{}: get {e:?}: {err}", store.kind()));
        assert_eq!(&got.name, e, "{}: name changed on the way", store.kind());
    }
    let expected: BTreeSet<String> = edges.iter().cloned().collect();
    assert_listing(store, &list_all(store, 3).await, &expected);
}

/// Many candidates over many pages: every one exactly once, in order, at several page sizes.
pub async fn list_many_pages(store: &dyn CandidateStore, count: usize) {
    let expected: BTreeSet<String> = (0..count).map(|i| format!("candidate-{i:05}")).collect();
    let names: Vec<CandidateName> = expected.iter().map(|n| name(n)).collect();
    stream::iter(names.iter())
        .for_each_concurrent(32, |n| async move {
            store.put(n).await.unwrap_or_else(|e| panic!("{}: put {n}: {e}", store.kind()));
        })
        .await;
    for page_size in [1000, 100, 7] {
        assert_listing(store, &list_all(store, page_size).await, &expected);
    }
}

/// Listing order is by name (UTF-8 byte order) for stores that keep names ordered.
pub async fn list_order(store: &dyn CandidateStore) {
    let names = ["b", "a", "B", "ab", "é", "Z", "a b", "0"];
    for n in names {
        store.put(&name(n)).await.expect("put");
    }
    let expected: BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
    assert_listing(store, &list_all(store, 3).await, &expected);
}

/// A malformed page token is InvalidArgument, not a panic or an empty page.
pub async fn bad_page_token(store: &dyn CandidateStore) {
    store.put(&name("x")).await.expect("put");
    for token in ["not a token!", "%%%", "\u{0}"] {
        match store.list(10, Some(token)).await {
            Err(StoreError::InvalidArgument(_)) => {}
            other => panic!("{}: token {token:?} gave {other:?}", store.kind()),
        }
    }
}

/// Concurrent writers on distinct and shared names: all writes land, none is lost.
pub async fn concurrent_writers(store: &dyn CandidateStore) {
    let writers = 16;
    let per_writer = 25;
    stream::iter(0..writers)
        .for_each_concurrent(writers, |w| async move {
            for i in 0..per_writer {
                store.put(&name(&format!("w{w:02}-{i:02}"))).await.expect("put distinct");
                store.put(&name(&format!("shared-{i:02}"))).await.expect("put shared");
            }
        })
        .await;
    let mut expected: BTreeSet<String> = BTreeSet::new();
    for w in 0..writers {
        for i in 0..per_writer {
            expected.insert(format!("w{w:02}-{i:02}"));
        }
    }
    for i in 0..per_writer {
        expected.insert(format!("shared-{i:02}"));
    }
    assert_listing(store, &list_all(store, 50).await, &expected);

    // Concurrent deletes of one name: exactly one succeeds.
    let target = name("shared-00");
    let results: Vec<_> =
        stream::iter(0..8).map(|_| async { store.delete(&target).await }).buffer_unordered(8).collect().await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{}: concurrent deletes of one name: {results:?}", store.kind());
    assert!(results.iter().all(|r| matches!(r, Ok(()) | Err(StoreError::NotFound))), "{}: {results:?}", store.kind());
}

/// How many candidates the standard run of [`list_many_pages`] writes: more than two pages of the
/// largest page size the service allows.
pub const LIST_MANY: usize = 2_500;
