//! The API explorer: Swagger UI over the service's own `/openapi.json`, at [`PATH`] on the REST
//! listener, served from the binary (the files are vendored in `gateway/explorer/`, see its
//! README; nothing comes from a CDN). Behind the `api-explorer` cargo feature (on by default) and
//! `--api-explorer` (on by default).
//!
//! - The page (`/docs`, `/docs/`) is our `index.html`; every file it loads is named by its content
//!   hash (`swagger-ui-bundle.<hash>.js`), so those are cached for a year (`immutable`), and the
//!   page and the licences are revalidated with their `ETag` (`no-cache`, 304 on a match).
//! - Every response carries [`CSP`], `X-Content-Type-Options: nosniff` and `Referrer-Policy:
//!   no-referrer`. The page runs no inline script or style and loads nothing from elsewhere.
//! - It goes through the REST edge like any request: access line, admission, and the read policy
//!   (`layers::gate`: like `/openapi.json`, it is a read); metrics label it [`PAGE_LABEL`] or
//!   [`FILE_LABEL`], a closed set whatever the path asked for. It is not in `/openapi.json`.

/// Where the explorer is served: the page at `/docs` and `/docs/`, its files under `/docs/`.
/// One fixed path: the edge judges and labels it without configuration.
pub const PATH: &str = "/docs";

/// The metrics route label of the page.
pub const PAGE_LABEL: &str = "/docs";
/// The metrics route label of every other path under [`PATH`] (the files, and 404s there).
pub const FILE_LABEL: &str = "/docs/:file";

/// Whether this build has the explorer (the `api-explorer` cargo feature).
pub const COMPILED_IN: bool = cfg!(feature = "api-explorer");

/// The Content-Security-Policy of every explorer response. Swagger UI works under it as it is:
/// its React components set styles through the CSSOM (`element.style`), which `style-src` does
/// not govern, so no `'unsafe-inline'`; its icons are `data:` images in its CSS. The browser test
/// (tests/browser) fails on any violation report.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; \
                       frame-ancestors 'none'";

/// Whether a request path is the explorer's (the page or anything under it).
pub fn serves(path: &str) -> bool {
    route_label(path).is_some()
}

/// The route label of an explorer path, `None` for any other path.
pub fn route_label(path: &str) -> Option<&'static str> {
    match path.strip_prefix(PATH)? {
        "" | "/" => Some(PAGE_LABEL),
        rest if rest.starts_with('/') => Some(FILE_LABEL),
        _ => None,
    }
}

/// Every path the explorer answers 200 on (empty when it is not compiled in).
pub fn paths() -> Vec<String> {
    #[cfg(feature = "api-explorer")]
    {
        let site = site::site();
        let mut paths = vec![PATH.to_owned(), format!("{PATH}/")];
        paths.extend(site.files.iter().map(|f| format!("{PATH}/{}", f.name)));
        paths
    }
    #[cfg(not(feature = "api-explorer"))]
    Vec::new()
}

/// The version of Swagger UI served (`None` when the explorer is not compiled in).
pub fn swagger_ui_version() -> Option<&'static str> {
    #[cfg(feature = "api-explorer")]
    {
        Some(site::VERSION.trim())
    }
    #[cfg(not(feature = "api-explorer"))]
    None
}

/// Adds the explorer's routes to `router` (nothing when it is not compiled in).
pub(crate) fn mount(router: axum::Router) -> axum::Router {
    #[cfg(feature = "api-explorer")]
    {
        site::mount(router)
    }
    #[cfg(not(feature = "api-explorer"))]
    router
}

#[cfg(feature = "api-explorer")]
mod site {
    use std::sync::LazyLock;

    use axum::{
        Router,
        body::Body,
        extract::Path,
        http::{HeaderMap, HeaderValue, StatusCode, header},
        response::{IntoResponse, Response},
        routing::get,
    };

    use super::{CSP, PATH};
    use crate::error::ApiError;

    pub(super) const VERSION: &str = include_str!("../explorer/swagger-ui-dist/VERSION");

    const HTML: &str = "text/html; charset=utf-8";
    const JS: &str = "text/javascript; charset=utf-8";
    const CSS: &str = "text/css; charset=utf-8";
    const PNG: &str = "image/png";
    const TEXT: &str = "text/plain; charset=utf-8";

    /// Gzipped at build time (build.rs).
    const BUNDLE_GZ: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/swagger-ui-bundle.js.gz"));
    const CSS_GZ: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/swagger-ui.css.gz"));

    /// (name, contents, content type, named by its hash, gzipped): a file besides the page.
    type Source = (&'static str, &'static [u8], &'static str, bool, Option<&'static [u8]>);

    /// Every file besides the page.
    const FILES: &[Source] = &[
        (
            "swagger-ui-bundle.js",
            include_bytes!("../explorer/swagger-ui-dist/swagger-ui-bundle.js"),
            JS,
            true,
            Some(BUNDLE_GZ),
        ),
        ("swagger-ui.css", include_bytes!("../explorer/swagger-ui-dist/swagger-ui.css"), CSS, true, Some(CSS_GZ)),
        ("favicon-32x32.png", include_bytes!("../explorer/swagger-ui-dist/favicon-32x32.png"), PNG, true, None),
        ("init.js", include_bytes!("../explorer/init.js"), JS, true, None),
        ("explorer.css", include_bytes!("../explorer/explorer.css"), CSS, true, None),
        ("LICENSE", include_bytes!("../explorer/swagger-ui-dist/LICENSE"), TEXT, false, None),
        ("NOTICE", include_bytes!("../explorer/swagger-ui-dist/NOTICE"), TEXT, false, None),
        (
            "swagger-ui-bundle.js.LICENSE.txt",
            include_bytes!("../explorer/swagger-ui-dist/swagger-ui-bundle.js.LICENSE.txt"),
            TEXT,
            false,
            None,
        ),
    ];
    const INDEX: &str = include_str!("../explorer/index.html");

    /// One served file.
    pub(super) struct File {
        /// Its name under `/docs/`: `swagger-ui-bundle.<hash>.js`, or `LICENSE` as it is.
        pub(super) name: String,
        body: &'static [u8],
        content_type: &'static str,
        etag: HeaderValue,
        immutable: bool,
        /// The same bytes gzipped once at build time, for the large files.
        gzip: Option<&'static [u8]>,
    }

    pub(super) struct Site {
        page: File,
        pub(super) files: Vec<File>,
    }

    /// 64-bit FNV-1a: enough to tell versions of a file apart in its name and `ETag` (not a
    /// security measure: the files are ours).
    fn fnv1a(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    }

    /// Weak: the compression layer outside the edge may send the file gzipped, a different
    /// representation under the same tag (If-None-Match compares weakly anyway).
    #[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
    fn etag(hash: u64) -> HeaderValue {
        HeaderValue::from_str(&format!("W/\"{hash:016x}\"")).expect("hex digits are a valid header value")
    }

    /// Built once: the hashes (a few milliseconds over the 1.8 MB bundle) and the page with the
    /// hashed names in it.
    pub(super) fn site() -> &'static Site {
        static SITE: LazyLock<Site> = LazyLock::new(|| {
            let files: Vec<File> = FILES
                .iter()
                .map(|&(name, body, content_type, immutable, gzip)| {
                    let hash = fnv1a(body);
                    let name = match name.rsplit_once('.') {
                        Some((stem, extension)) if immutable => format!("{stem}.{:012x}.{extension}", hash >> 16),
                        _ => name.to_owned(),
                    };
                    File { name, body, content_type, etag: etag(hash), immutable, gzip }
                })
                .collect();
            let mut page = INDEX.replace("{{base}}", PATH).replace("{{version}}", VERSION.trim());
            for (&(original, ..), file) in FILES.iter().zip(&files) {
                page = page.replace(&format!("{{{{{original}}}}}"), &format!("{PATH}/{}", file.name));
            }
            debug_assert!(!page.contains("{{"), "every placeholder of index.html is filled");
            let body: &'static [u8] = page.into_bytes().leak();
            let page = File {
                name: String::new(),
                body,
                content_type: HTML,
                etag: etag(fnv1a(body)),
                immutable: false,
                gzip: None,
            };
            Site { page, files }
        });
        &SITE
    }

    pub(super) fn mount(router: Router) -> Router {
        let explorer = Router::new()
            .route(PATH, get(page))
            .route(&format!("{PATH}/"), get(page))
            .route(&format!("{PATH}/{{file}}"), get(file))
            .layer(axum::middleware::map_response(protect));
        router.merge(explorer)
    }

    /// Every answer on the explorer's routes, its 404s and 405s included, carries the page's
    /// policy: a browser renders none of them as anything but what its content type says.
    async fn protect(mut response: Response) -> Response {
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        response
    }

    async fn page(headers: HeaderMap) -> Response {
        serve(&site().page, &headers)
    }

    async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
        match site().files.iter().find(|f| f.name == name) {
            Some(file) => serve(file, &headers),
            None => ApiError::from_http(StatusCode::NOT_FOUND, "Not Found").into_response(),
        }
    }

    /// Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 asks for this header).
    fn matches(headers: &HeaderMap, etag: &HeaderValue) -> bool {
        fn opaque(tag: &[u8]) -> &[u8] {
            tag.strip_prefix(b"W/").unwrap_or(tag)
        }
        let ours = opaque(etag.as_bytes());
        headers.get_all(header::IF_NONE_MATCH).iter().any(|value| {
            value.as_bytes().split(|&b| b == b',').any(|tag| {
                let tag = tag.trim_ascii();
                tag == b"*" || opaque(tag) == ours
            })
        })
    }

    fn serve(file: &File, request: &HeaderMap) -> Response {
        let not_modified = matches(request, &file.etag);
        let gzip = file.gzip.filter(|_| accepts_gzip(request));
        let mut response = if not_modified {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let mut response = Body::from(gzip.unwrap_or(file.body)).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(file.content_type));
            if gzip.is_some() {
                // Already encoded: the compression layer leaves a response with an encoding alone.
                response.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            response
        };
        let headers = response.headers_mut();
        if file.gzip.is_some() {
            headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        headers.insert(header::ETAG, file.etag.clone());
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(if file.immutable { "max-age=31536000, immutable" } else { "no-cache" }),
        );
        response
    }

    /// Whether `Accept-Encoding` takes gzip (RFC 9110 12.5.3: named, or `*`, with a q above 0; a
    /// named entry wins over `*`).
    fn accepts_gzip(headers: &HeaderMap) -> bool {
        let mut star = false;
        for entry in headers.get_all(header::ACCEPT_ENCODING).iter().flat_map(|v| v.as_bytes().split(|&b| b == b',')) {
            let mut parts = entry.split(|&b| b == b';');
            let coding = parts.next().unwrap_or_default().trim_ascii();
            let weighted = parts
                .filter_map(|p| p.trim_ascii().strip_prefix(b"q=").or_else(|| p.trim_ascii().strip_prefix(b"Q=")))
                .next()
                .and_then(|q| std::str::from_utf8(q).ok()?.parse::<f32>().ok())
                .unwrap_or(1.0)
                > 0.0;
            if coding.eq_ignore_ascii_case(b"gzip") {
                return weighted;
            }
            star |= coding == b"*" && weighted;
        }
        star
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn gzip_is_taken_when_accepted_with_a_positive_weight() {
            let with = |value: &'static str| {
                let mut headers = HeaderMap::new();
                headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(value));
                accepts_gzip(&headers)
            };
            assert!(with("gzip"));
            assert!(with("br, GZIP;q=0.5"));
            assert!(with("*"));
            assert!(!with("gzip;q=0"));
            assert!(!with("*, gzip;q=0"));
            assert!(!with("zstd, br"));
            assert!(!with("identity"));
            assert!(!accepts_gzip(&HeaderMap::new()));
        }

        #[test]
        fn the_gzipped_files_are_the_files() {
            use std::io::Read;
            for &(name, body, _, _, gzip) in FILES {
                if let Some(gzip) = gzip {
                    let mut plain = Vec::new();
                    flate2::read::GzDecoder::new(gzip).read_to_end(&mut plain).unwrap();
                    assert!(plain == body, "{name}");
                    assert!(gzip.len() * 3 < body.len(), "{name}: {} of {}", gzip.len(), body.len());
                }
            }
        }

        #[test]
        fn the_page_names_every_file_by_its_hash() {
            let site = site();
            let page = std::str::from_utf8(site.page.body).unwrap();
            assert!(!page.contains("{{"), "{page}");
            for file in site.files.iter().filter(|f| f.immutable) {
                assert!(page.contains(&format!("\"/docs/{}\"", file.name)), "{} is not in the page", file.name);
            }
            assert!(site.files.iter().any(|f| f.name == "LICENSE" && !f.immutable));
            assert!(page.contains(VERSION.trim()));
        }

        #[test]
        fn if_none_match_is_compared_weakly() {
            let tag = etag(42);
            let with = |value: &'static str| {
                let mut headers = HeaderMap::new();
                headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static(value));
                matches(&headers, &tag)
            };
            assert!(with("\"000000000000002a\""));
            assert!(with("W/\"000000000000002a\""));
            assert_eq!(tag, "W/\"000000000000002a\"");
            assert!(with("\"x\", \"000000000000002a\""));
            assert!(with("*"));
            assert!(!with("\"000000000000002b\""));
            assert!(!matches(&HeaderMap::new(), &tag));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explorer_paths_are_recognised_and_labelled_in_a_closed_set() {
        assert_eq!(route_label("/docs"), Some(PAGE_LABEL));
        assert_eq!(route_label("/docs/"), Some(PAGE_LABEL));
        assert_eq!(route_label("/docs/swagger-ui-bundle.0123.js"), Some(FILE_LABEL));
        assert_eq!(route_label("/docs/anything/else"), Some(FILE_LABEL));
        for other in ["/doc", "/docsx", "/docs.json", "/", "/candidate/docs", "/openapi.json"] {
            assert_eq!(route_label(other), None, "{other}");
            assert!(!serves(other));
        }
    }
}
