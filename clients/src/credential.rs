//! The API key a client sends on every request: `Authorization: Bearer <key>` on REST and the
//! same `authorization` metadata on gRPC (including health and reflection, which ignore it where
//! the policy says so). Marked sensitive, so HTTP/2 never indexes it and `Debug` never prints it.

use http::HeaderValue;
use tonic::{Request, Status, service::Interceptor};

use crate::api::{ClientError, ErrorKind};

/// No key, or one key's `Bearer` header value.
#[derive(Clone, Default)]
pub struct Credential(Option<HeaderValue>);

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Credential(<key>)" } else { "Credential(none)" })
    }
}

impl Credential {
    /// Sends nothing.
    pub fn none() -> Self {
        Self(None)
    }

    /// `key` as a bearer credential; an empty key is none (an unset variable in a script).
    pub fn key(key: Option<&str>) -> Result<Self, ClientError> {
        let Some(key) = key.map(str::trim).filter(|k| !k.is_empty()) else {
            return Ok(Self::none());
        };
        let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| ClientError {
            kind: ErrorKind::Rejected,
            status: "bad_key".into(),
            // Never the key itself: it may be a secret pasted in the wrong place.
            message: "the API key has characters a header cannot carry".into(),
        })?;
        value.set_sensitive(true);
        Ok(Self(Some(value)))
    }

    /// The header, for reqwest's default headers.
    pub fn headers(&self) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        if let Some(value) = &self.0 {
            headers.insert(http::header::AUTHORIZATION, value.clone());
        }
        headers
    }
}

/// On every gRPC call of a client built `with_interceptor(channel, credential)`.
impl Interceptor for Credential {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0
            && let Ok(mut value) = tonic::metadata::MetadataValue::try_from(value.as_bytes())
        {
            value.set_sensitive(true);
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

/// A channel that sends the credential.
pub type AuthChannel = tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Credential>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let credential = Credential::key(Some("cand_secret")).unwrap();
        assert_eq!(format!("{credential:?}"), "Credential(<key>)");
        assert!(Credential::key(Some("  ")).unwrap().0.is_none());
        let error = Credential::key(Some("bad\nkey")).unwrap_err();
        assert!(!error.message.contains("bad"), "{}", error.message);
    }
}
