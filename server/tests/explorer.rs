//! The API explorer at /docs against the real binary: the page and its files with their content
//! types, the Content-Security-Policy and caching headers, conditional requests, the edge (access
//! line, metrics labels from a closed set), `--api-explorer false`, and the read policy.
//! (A real browser loads it in tests/browser, docs/browsers.md.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestServer, http};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response.headers().get(name).unwrap_or_else(|| panic!("no {name} header")).to_str().unwrap()
}

/// The files the page loads, from its `src`/`href` attributes under /docs/.
fn linked_files(page: &str) -> Vec<String> {
    page.split(['"', '\''])
        .filter(|part| part.starts_with("/docs/"))
        .map(str::to_owned)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[tokio::test]
async fn the_page_and_its_files_are_served_with_their_types_policy_and_caching() {
    let server = TestServer::spawn(&[]);
    let client = http();

    let page = client.get(server.url("/docs")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&page, "content-security-policy"), CSP);
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    assert_eq!(header(&page, "referrer-policy"), "no-referrer");
    assert_eq!(header(&page, "cache-control"), "no-cache");
    let etag = header(&page, "etag").to_owned();
    let html = page.text().await.unwrap();
    assert!(html.contains("<div id=\"swagger-ui\">"), "{html}");
    assert!(!html.contains("<script>") && !html.contains("style="), "no inline script or style: {html}");
    assert!(!html.contains("//cdn") && !html.contains("https://"), "nothing from elsewhere: {html}");
    let slash = client.get(server.url("/docs/")).send().await.unwrap();
    assert_eq!(slash.status(), 200);
    assert_eq!(slash.text().await.unwrap(), html);

    // Revalidation: the same ETag gives 304 with no body.
    let again = client.get(server.url("/docs")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(header(&again, "etag"), etag);
    assert!(again.bytes().await.unwrap().is_empty());

    let files = linked_files(&html);
    let expected = [
        ("swagger-ui-bundle.", "text/javascript; charset=utf-8", true),
        ("init.", "text/javascript; charset=utf-8", true),
        ("swagger-ui.", "text/css; charset=utf-8", true),
        ("explorer.", "text/css; charset=utf-8", true),
        ("favicon-32x32.", "image/png", true),
        ("LICENSE", "text/plain; charset=utf-8", false),
        ("NOTICE", "text/plain; charset=utf-8", false),
        ("swagger-ui-bundle.js.LICENSE.txt", "text/plain; charset=utf-8", false),
    ];
    assert_eq!(files.len(), expected.len(), "{files:?}");
    for (prefix, content_type, versioned) in expected {
        let path = files
            .iter()
            .find(|f| f.strip_prefix("/docs/").unwrap().starts_with(prefix) && (versioned || f.ends_with(prefix)))
            .unwrap_or_else(|| panic!("the page links no {prefix}: {files:?}"));
        let response = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header(&response, "content-type"), content_type, "{path}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header(&response, "content-security-policy"), CSP, "{path}");
        let cache = if versioned { "max-age=31536000, immutable" } else { "no-cache" };
        assert_eq!(header(&response, "cache-control"), cache, "{path}");
        assert!(header(&response, "etag").starts_with("W/\""), "{path}");
        assert!(!response.bytes().await.unwrap().is_empty(), "{path}");
    }
    let bundle = files.iter().find(|f| f.contains("swagger-ui-bundle.") && f.ends_with(".js")).unwrap();
    let body = client.get(server.url(bundle)).send().await.unwrap().bytes().await.unwrap();
    assert!(body.len() > 1_000_000, "the whole bundle: {} bytes", body.len());
    // Gzipped once at build time, not per request: sent as it is, and not compressed again.
    let raw = reqwest::Client::builder().no_proxy().no_gzip().no_zstd().build().unwrap();
    let zipped = raw.get(server.url(bundle)).header("accept-encoding", "gzip, zstd").send().await.unwrap();
    assert_eq!(header(&zipped, "content-encoding"), "gzip");
    assert_eq!(header(&zipped, "vary"), "accept-encoding");
    let zipped = zipped.bytes().await.unwrap();
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&zipped[..]), &mut unzipped).unwrap();
    assert!(unzipped == body, "one gzip layer over the bundle");
    let refused = raw.get(server.url(bundle)).header("accept-encoding", "gzip;q=0").send().await.unwrap();
    assert!(refused.headers().get("content-encoding").is_none());
    assert_eq!(refused.bytes().await.unwrap(), body);
    let init = files.iter().find(|f| f.contains("/init.")).unwrap();
    let init = client.get(server.url(init)).send().await.unwrap().text().await.unwrap();
    assert!(init.contains("/openapi.json") && init.contains("tryItOutEnabled: true"), "{init}");

    // Anything else under /docs: the JSON 404 of every unknown path; other methods: 405.
    for missing in ["/docs/swagger-ui-bundle.js", "/docs/nope", "/docs/a/b", "/docs/swagger-ui-bundle.000000000000.js"]
    {
        let response = client.get(server.url(missing)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{missing}");
        assert_eq!(header(&response, "content-type"), "application/json", "{missing}");
        if missing != "/docs/a/b" {
            // The explorer's own refusals carry its policy too (attacker review).
            assert_eq!(header(&response, "x-content-type-options"), "nosniff", "{missing}");
            assert!(header(&response, "content-security-policy").contains("default-src"), "{missing}");
        }
    }
    let refused = client.post(server.url("/docs")).send().await.unwrap();
    assert_eq!(refused.status(), 405);
    assert_eq!(header(&refused, "x-content-type-options"), "nosniff");

    // Not in the API's document (so not in the schemathesis run either).
    let doc: serde_json::Value = client.get(server.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["paths"].as_object().unwrap().keys().all(|p| !p.starts_with("/docs")), "{doc}");

    // Through the edge: an access line per request, and two route labels whatever the path.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let logs = server.log_lines().join("\n");
        if logs.contains("\"path\":\"/docs\"") && logs.contains("\"path\":\"/docs/nope\"") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no access lines for /docs: {logs}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let metrics = client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let labels: std::collections::BTreeSet<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("http_requests_total{"))
        .filter_map(|l| l.split("route=\"").nth(1)?.split('"').next())
        .filter(|route| route.contains("docs"))
        .collect();
    assert_eq!(labels, ["/docs", "/docs/:file"].into_iter().collect(), "{metrics}");
}

#[tokio::test]
async fn turned_off_it_is_not_found() {
    let server = TestServer::spawn(&["--api-explorer", "false"]);
    let client = http();
    for path in ["/docs", "/docs/", "/docs/LICENSE"] {
        let response = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert!(response.headers().get("content-security-policy").is_none());
    }
    assert_eq!(client.get(server.url("/openapi.json")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn it_follows_the_read_policy() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let reader = candidates_api::api_key::mint().unwrap();
    std::fs::write(&keys, candidates_api::api_key::file_line(&reader, "candidates.read", "reader") + "\n").unwrap();
    let keys = keys.display().to_string();
    let server = TestServer::spawn(&["--api-keys-file", &keys, "--auth-read", "scope"]);
    let client = http();
    for path in ["/docs", "/docs/LICENSE", "/openapi.json"] {
        let anonymous = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(anonymous.status(), 401, "{path}");
        assert!(header(&anonymous, "www-authenticate").starts_with("Bearer"), "{path}");
        let with_key = client.get(server.url(path)).bearer_auth(&reader).send().await.unwrap();
        assert_eq!(with_key.status(), 200, "{path}");
    }

    // Reads open (the default, even with keys for writes): the page needs nothing.
    let open = TestServer::spawn(&["--api-keys-file", &keys]);
    assert_eq!(client.get(open.url("/docs")).send().await.unwrap().status(), 200);
}
