//! The workspace's layering, kept by a test: dependencies run api <- edge <- {gateway,
//! server}, and no store module imports anything HTTP (a store knows its storage engine or cloud
//! SDK and the service's vocabulary, not how requests arrive).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::{collections::BTreeMap, path::Path, process::Command};

/// Each workspace crate's dependencies on other workspace crates (normal and dev).
fn workspace_graph() -> BTreeMap<String, Vec<String>> {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .output()
        .expect("cargo metadata");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let ours: Vec<String> = packages.iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .filter(|d| ours.contains(d))
                .collect();
            (p["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

#[test]
fn dependencies_run_from_api_to_edge_to_gateway_and_server() {
    let graph = workspace_graph();
    let deps = |name: &str| graph.get(name).unwrap_or_else(|| panic!("no crate {name}: {graph:?}")).clone();
    assert!(deps("candidates-api").is_empty(), "the API crate depends on none of ours: {:?}", deps("candidates-api"));
    assert!(deps("candidates-edge").iter().all(|d| d == "candidates-api"), "edge: {:?}", deps("candidates-edge"));
    let gateway = deps("candidates-gateway");
    assert!(gateway.contains(&"candidates-edge".to_owned()), "{gateway:?}");
    assert!(!gateway.contains(&"candidates-server".to_owned()), "the gateway knows nothing of the server: {gateway:?}");
    let server = deps("candidates-server");
    assert!(server.contains(&"candidates-edge".to_owned()), "{server:?}");
}

#[test]
fn no_store_imports_http() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store");
    // HTTP types and the HTTP layers; the edge's task-local request id and log throttle are fine.
    let forbidden = [
        "axum",
        "hyper",
        "http::",
        "tonic::",
        "candidates_gateway",
        "candidates_edge::limit",
        "candidates_edge::observe",
    ];
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        // Only the module's own code, not its tests.
        let code = text.split("#[cfg(test)]").next().unwrap();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for word in forbidden {
                assert!(!line.contains(word), "{} imports HTTP ({word}): {line}", path.display());
            }
        }
        checked += 1;
    }
    assert!(checked >= 8, "read the store modules ({checked})");
}
