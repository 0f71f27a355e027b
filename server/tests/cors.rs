//! CORS on the REST listener against the real binary: a preflight from an allowed origin is
//! answered before admission and credentials (a write-guarded server answers it without a key),
//! actual responses carry the origin and `Vary: Origin`, other origins get nothing, and a server
//! without CORS configured behaves as before.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestServer, http};

const APP: &str = "http://app.example:3000";

async fn preflight(server: &TestServer, origin: &str, method: &str, headers: &str) -> reqwest::Response {
    http()
        .request(reqwest::Method::OPTIONS, server.url("/candidate/alice"))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", headers)
        .send()
        .await
        .unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn allowed_origins_get_cors_headers_and_preflights_skip_the_edge() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let key = candidates_api::api_key::mint().unwrap();
    std::fs::write(&keys, format!("{} candidates.write app\n", candidates_api::api_key::digest_hex(&key))).unwrap();
    let keys = keys.display().to_string();
    let server =
        TestServer::spawn(&["--cors-allow-origins", &format!("{APP},https://other.example"), "--api-keys-file", &keys]);

    // A preflight for a DELETE with Authorization: answered without a key (writes need one).
    let response = preflight(&server, APP, "DELETE", "authorization,x-request-id").await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(header(&response, "access-control-allow-origin"), Some(APP));
    let methods = header(&response, "access-control-allow-methods").unwrap().to_owned();
    assert!(methods.contains("DELETE") && methods.contains("POST"), "{methods}");
    let allowed = header(&response, "access-control-allow-headers").unwrap().to_ascii_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("x-request-id"), "{allowed}");
    assert_eq!(header(&response, "access-control-max-age"), Some("600"));
    assert!(header(&response, "vary").unwrap().contains("origin"));
    assert_eq!(header(&response, "access-control-allow-credentials"), None, "no credentials unless asked for");

    // The actual requests: the origin echoed, Vary, the exposed headers.
    let put = http()
        .post(server.url("/candidate/alice"))
        .header("origin", APP)
        .header("authorization", format!("Bearer {key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    assert_eq!(header(&put, "access-control-allow-origin"), Some(APP));
    assert!(header(&put, "vary").unwrap().contains("origin"));
    let exposed = header(&put, "access-control-expose-headers").unwrap().to_ascii_lowercase();
    assert!(exposed.contains("x-request-id") && exposed.contains("www-authenticate"), "{exposed}");
    // A refusal carries them too, so the page can read the 401 and its challenge.
    let refused = http().delete(server.url("/candidate/alice")).header("origin", APP).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(header(&refused, "access-control-allow-origin"), Some(APP));

    // Another origin: no CORS headers, so the browser keeps the answer from the page.
    let response = preflight(&server, "https://evil.example", "DELETE", "authorization").await;
    assert_eq!(header(&response, "access-control-allow-origin"), None);
    let get = http().get(server.url("/candidate/alice")).header("origin", "https://evil.example").send().await.unwrap();
    assert_eq!(header(&get, "access-control-allow-origin"), None);

    // Preflights are not requests: nothing counted, no error.
    let metrics = http().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        !metrics.lines().any(|l| l.starts_with("http_requests_total") && l.contains("method=\"OPTIONS\"")),
        "{metrics}"
    );
    assert!(!metrics.contains("reason=\"missing\"} 2"), "the preflights were not judged by the auth policy");
}

#[tokio::test]
async fn without_cors_nothing_changes_and_a_wildcard_with_credentials_is_refused() {
    let server = TestServer::spawn(&[]);
    let get = http().get(server.url("/gtg")).header("origin", APP).send().await.unwrap();
    assert_eq!(header(&get, "access-control-allow-origin"), None);
    let response = preflight(&server, APP, "DELETE", "authorization").await;
    assert_eq!(header(&response, "access-control-allow-origin"), None);
    assert_eq!(response.status(), 405, "as before: /candidate/{{name}} has no OPTIONS");

    let output = common::server_command(
        std::path::Path::new("/nonexistent"),
        &["--cors-allow-origins", "*", "--cors-allow-credentials"],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`*` with credentials"), "{stderr}");
    let output = common::server_command(
        std::path::Path::new("/nonexistent"),
        &["--cors-allow-origins", "https://app.example/path"],
    )
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(2));
}
