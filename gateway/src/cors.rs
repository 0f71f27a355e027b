//! CORS on the REST listener, for browser clients on other origins: tower-http's `CorsLayer`,
//! outside the edge, so a preflight is answered without touching admission, credentials or the
//! service, and is never counted as a request (let alone an error). Off unless origins are given:
//! then the browser's same-origin rule applies, as before.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Which other origins may call the REST API from a browser.
#[derive(Debug, Clone)]
pub struct Cors {
    /// `None`: any origin (`*`, never with credentials). Else the exact origins.
    pub origins: Option<Vec<HeaderValue>>,
    /// Whether browsers may send cookies or HTTP authentication (`Authorization` does not need
    /// it: it is an allowed header).
    pub credentials: bool,
    /// How long a browser may cache a preflight's answer.
    pub max_age: Duration,
}

/// Why an origin list was refused.
#[derive(Debug, thiserror::Error)]
pub enum CorsError {
    #[error("a CORS origin is `scheme://host[:port]` with no path, got {0:?}")]
    Origin(String),
    #[error("CORS credentials need explicit origins: `*` with credentials is refused by browsers")]
    WildcardWithCredentials,
}

impl Cors {
    /// From `*` or a list of origins.
    pub fn new(origins: &[String], credentials: bool, max_age: Duration) -> Result<Self, CorsError> {
        if origins.iter().any(|o| o == "*") {
            if credentials {
                return Err(CorsError::WildcardWithCredentials);
            }
            return Ok(Self { origins: None, credentials, max_age });
        }
        let parsed = origins
            .iter()
            .map(|origin| {
                let uri: http::Uri = origin.parse().map_err(|_| CorsError::Origin(origin.clone()))?;
                let plain = matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.host().is_some()
                    && uri.path_and_query().is_none_or(|p| p.as_str() == "/" || p.as_str().is_empty())
                    && !origin.ends_with('/');
                if !plain {
                    return Err(CorsError::Origin(origin.clone()));
                }
                HeaderValue::from_str(origin).map_err(|_| CorsError::Origin(origin.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { origins: Some(parsed), credentials, max_age })
    }

    pub(crate) fn layer(&self) -> CorsLayer {
        let origin = match &self.origins {
            None => AllowOrigin::any(),
            Some(list) => AllowOrigin::list(list.iter().cloned()),
        };
        CorsLayer::new()
            .allow_origin(origin)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            // gRPC-Web clients send x-grpc-web, x-user-agent and grpc-timeout, and read grpc-status
            // and grpc-message from the headers of a trailers-only answer.
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("grpc-timeout"),
                HeaderName::from_static("x-grpc-web"),
                HeaderName::from_static("x-user-agent"),
                HeaderName::from_static("traceparent"),
                HeaderName::from_static("tracestate"),
            ])
            .expose_headers([
                HeaderName::from_static("x-request-id"),
                header::WWW_AUTHENTICATE,
                header::RETRY_AFTER,
                HeaderName::from_static("grpc-status"),
                HeaderName::from_static("grpc-message"),
                HeaderName::from_static("grpc-status-details-bin"),
            ])
            .allow_credentials(self.credentials)
            .max_age(self.max_age)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked() {
        let ten = Duration::from_secs(600);
        assert!(Cors::new(&["https://app.example".into(), "http://127.0.0.1:3000".into()], true, ten).is_ok());
        assert!(Cors::new(&["*".into()], false, ten).unwrap().origins.is_none());
        assert!(matches!(Cors::new(&["*".into()], true, ten), Err(CorsError::WildcardWithCredentials)));
        for bad in ["app.example", "https://app.example/path", "https://app.example/", "ftp://x", "https://"] {
            assert!(matches!(Cors::new(&[bad.into()], false, ten), Err(CorsError::Origin(_))), "{bad}");
        }
    }
}
