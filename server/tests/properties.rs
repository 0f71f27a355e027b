//! Property tests of every parser of outside input: names, page tokens, `grpc-timeout`, route
//! templates, and path and query decoding end to end through the gateway. A failure proptest finds
//! becomes a plain regression test below.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use axum::body::Body;
use candidates_server::{
    grpc::parse_grpc_timeout,
    name::{CandidateName, MAX_CHARS},
    store::{decode_name_cursor, encode_name_cursor},
};
use http_body_util::BodyExt;
use proptest::prelude::*;
use tower::ServiceExt;

/// What the name rules promise about every name they accept.
fn holds_the_rules(name: &str) -> bool {
    let chars = name.chars().count();
    (1..=MAX_CHARS).contains(&chars)
        && !name.chars().any(|c| c.is_control() || matches!(c, '/' | '\\' | '?' | '#'))
        && name != "."
        && name != ".."
        && !(chars >= 4 && name.starts_with("__") && name.ends_with("__"))
}

proptest! {
    #[test]
    fn names_are_accepted_exactly_when_they_hold_the_rules(name in any::<String>()) {
        match CandidateName::parse(name.clone()) {
            Ok(parsed) => {
                prop_assert!(holds_the_rules(&name), "accepted {name:?}");
                prop_assert_eq!(parsed.as_str(), name.as_str());
            }
            Err(_) => prop_assert!(!holds_the_rules(&name), "rejected {name:?}"),
        }
    }

    #[test]
    fn names_near_the_rules_edges(name in "[._/#?\\\\a\u{7f}\u{e9}🦀 ]{0,6}") {
        prop_assert_eq!(CandidateName::parse(name.clone()).is_ok(), holds_the_rules(&name));
    }

    #[test]
    fn page_tokens_round_trip_and_any_string_is_answered(name in any::<String>(), junk in any::<String>()) {
        prop_assert_eq!(decode_name_cursor(&encode_name_cursor(&name)).unwrap(), name);
        // Never a panic: a position or InvalidArgument.
        let _ = decode_name_cursor(&junk);
    }

    #[test]
    fn grpc_timeouts_parse_only_the_spec_shape(value in proptest::collection::vec(any::<u8>(), 0..12)) {
        if let Some(timeout) = parse_grpc_timeout(&value) {
            let (unit, digits) = value.split_last().unwrap();
            prop_assert!((1..=8).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit));
            prop_assert!(b"HMSmun".contains(unit));
            prop_assert!(timeout <= Duration::from_secs(99_999_999 * 3600));
        }
    }

    #[test]
    fn route_templates_are_a_closed_set(path in any::<String>()) {
        let template = candidates_gateway::route_template(&path);
        prop_assert!(template == "unmatched" || candidates_gateway::ROUTES.iter().any(|r| r.path == template));
    }
}

fn encode(bytes: &[u8]) -> String {
    candidates_api::name::encode_path_segment(bytes)
}

async fn call(gateway: &axum::Router, method: &str, uri: &str) -> (u16, serde_json::Value) {
    let request = http::Request::builder().method(method).uri(uri).body(Body::empty()).unwrap();
    let response = gateway.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}

fn gateway(runtime: &tokio::runtime::Runtime) -> axum::Router {
    let options = candidates_gateway::Options {
        limits: candidates_edge::limit::Limits {
            max_concurrency: 64,
            body_limit: 1024,
            body_timeout: Duration::from_secs(1),
        },
        send_timeout: Duration::from_secs(1),
        auth: std::sync::Arc::new(candidates_edge::auth::Auth::open()),
        cors: None,
        compression: false,
        grpc_web: None,
    };
    runtime.block_on(common::in_process_gateway(3, options))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Any bytes, percent-encoded into the path: a valid UTF-8 name that holds the rules is stored
    /// and read back as itself; anything else is a 4xx with a JSON error body, never a 5xx.
    #[test]
    fn any_percent_encoded_name_is_stored_as_itself_or_refused_with_a_4xx(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let gateway = gateway(&runtime);
        let uri = format!("/candidate/{}", encode(&bytes));
        let (status, body) = runtime.block_on(call(&gateway, "POST", &uri));
        match std::str::from_utf8(&bytes) {
            Ok(name) if holds_the_rules(name) => {
                prop_assert_eq!(status, 200, "{:?}: {}", name, body);
                prop_assert_eq!(body["CandidateName"].as_str(), Some(name));
                let (status, body) = runtime.block_on(call(&gateway, "GET", &uri));
                prop_assert_eq!(status, 200);
                prop_assert_eq!(body["CandidateName"].as_str(), Some(name));
            }
            _ => {
                prop_assert!((400..500).contains(&status), "{:?} -> {}", bytes, status);
                prop_assert!(body["code"].is_i64() && body["message"].is_string(), "JSON error body: {}", body);
            }
        }
    }

    /// Any query string on the listing: a page or a 4xx with a JSON error, never a 5xx.
    #[test]
    fn any_listing_query_is_a_page_or_a_4xx(size in any::<Vec<u8>>(), token in any::<Vec<u8>>()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let gateway = gateway(&runtime);
        let uri = format!("/candidates?page_size={}&page_token={}", encode(&size), encode(&token));
        let (status, body) = runtime.block_on(call(&gateway, "GET", &uri));
        prop_assert!(status == 200 || (400..500).contains(&status), "{} -> {}: {}", uri, status, body);
        if status == 200 {
            prop_assert!(body["candidates"].is_array(), "{}", body);
        } else {
            prop_assert!(body["code"].is_i64(), "{}", body);
        }
    }
}
