//! Who may call what, the same on both listeners: each listener's edge turns the `authorization`
//! header (REST) or metadata (gRPC) into a [`Caller`] once and puts it in the request's extensions;
//! `CandidateService` asks [`Auth::authorize`] with the operation's [`Access`] before it does
//! anything, so the REST gateway's in-process call is judged on its caller, not trusted. Health
//! checks never reach this module; reflection and `/openapi.json` are reads.
//!
//! Credentials are API keys (`keys`: the server holds only their SHA-256 digests) and OIDC bearer
//! tokens (`jwt`). A failure never echoes the credential: the error's message and its metric label
//! are from closed sets. With neither configured, a credential is ignored, as before there was any.

pub mod jwt;
pub mod keys;

use std::{fmt, sync::Arc};

use candidates_api::api_key::{SCOPE_READ, SCOPE_WRITE};
use http::HeaderMap;
use tonic::{Code, Status, metadata::MetadataValue};

use crate::throttle::Throttle;
pub use jwt::{OidcConfig, Verifier};
pub use keys::KeyRing;

/// The two classes of operation the policy speaks of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `GetCandidate`, `ListCandidates`, `GetStatus`, reflection, `/openapi.json`.
    Read,
    /// `PutCandidate`, `DeleteCandidate`.
    Write,
}

impl Access {
    /// The scope a caller needs under [`Rule::Scope`].
    pub const fn scope(self) -> &'static str {
        match self {
            Self::Read => SCOPE_READ,
            Self::Write => SCOPE_WRITE,
        }
    }
}

/// Who may perform one class of operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// No credentials needed (a credential that is sent must still be valid).
    Anyone,
    /// Any caller with a valid credential.
    Authenticated,
    /// Callers whose credential holds the class's scope.
    Scope,
}

/// The rule for each class of operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub read: Rule,
    pub write: Rule,
}

impl Policy {
    /// The seed's contract: everything open. Local runs with no credentials configured.
    pub const OPEN: Self = Self { read: Rule::Anyone, write: Rule::Anyone };
    /// Where credentials are configured and the policy is not given: public reads, writes only
    /// with the write scope.
    pub const GUARDED_WRITES: Self = Self { read: Rule::Anyone, write: Rule::Scope };

    fn rule(&self, access: Access) -> Rule {
        match access {
            Access::Read => self.read,
            Access::Write => self.write,
        }
    }
}

/// What a listener's edge does about credentials for one request ([`Auth::gate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Health checks: credentials are neither needed nor read.
    Open,
    /// Find out who calls; the service applies the policy per operation.
    Identify,
    /// Find out who calls and apply the policy for this class here.
    Judge(Access),
}

/// The scopes a credential holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scopes {
    pub read: bool,
    pub write: bool,
}

impl Scopes {
    /// Parses scope names; `None` names the first one that is not known.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, &'a str> {
        let mut scopes = Self::default();
        for name in names {
            match name {
                SCOPE_READ => scopes.read = true,
                SCOPE_WRITE => scopes.write = true,
                other => return Err(other),
            }
        }
        Ok(scopes)
    }

    fn holds(self, access: Access) -> bool {
        match access {
            Access::Read => self.read,
            Access::Write => self.write,
        }
    }
}

/// Who is calling, as the edge found out. Requests without one (a test calling the service
/// directly) are anonymous.
#[derive(Debug, Clone, Default)]
pub enum Caller {
    #[default]
    Anonymous,
    Known(Arc<Principal>),
}

/// An authenticated caller.
#[derive(Debug)]
pub struct Principal {
    /// The key's name from the key file (operator-chosen, safe to log).
    pub name: String,
    pub scopes: Scopes,
}

/// Why a request was refused. The messages say what is wrong and never contain the credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("this operation needs credentials: send Authorization: Bearer <key>")]
    Missing,
    #[error("the authorization header is not `Bearer <token>`")]
    Malformed,
    #[error("the API key is not valid (unknown or revoked)")]
    UnknownKey,
    #[error("the bearer token is neither an API key nor a token this server accepts")]
    UnknownToken,
    #[error("the bearer token is not a valid JWT (shape, key id or signature)")]
    InvalidToken,
    #[error("the bearer token has expired or is not valid yet")]
    Expired,
    #[error("the bearer token's issuer is not the one this server trusts")]
    WrongIssuer,
    #[error("the bearer token is not meant for this service (audience)")]
    WrongAudience,
    #[error("the bearer token's algorithm is not accepted (RS256 and ES256 only)")]
    BadAlgorithm,
    #[error("the bearer token's signing key is unknown to this server")]
    UnknownKid,
    #[error("the issuer's signing keys cannot be fetched now; retry later")]
    KeysUnavailable,
    #[error("the credential does not hold the scope this operation needs")]
    Forbidden(Access),
}

impl AuthError {
    /// The metric label and log field: a closed set.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::UnknownKey => "unknown_key",
            Self::UnknownToken => "unknown_token",
            Self::InvalidToken => "invalid_jwt",
            Self::Expired => "expired",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::BadAlgorithm => "bad_algorithm",
            Self::UnknownKid => "unknown_kid",
            Self::KeysUnavailable => "keys_unavailable",
            Self::Forbidden(_) => "insufficient_scope",
        }
    }

    /// Every reason, for tests and dashboards.
    pub const REASONS: [&'static str; 12] = [
        "missing",
        "malformed",
        "unknown_key",
        "unknown_token",
        "invalid_jwt",
        "expired",
        "wrong_issuer",
        "wrong_audience",
        "bad_algorithm",
        "unknown_kid",
        "keys_unavailable",
        "insufficient_scope",
    ];

    /// The RFC 6750 challenge: no error code when no credentials were sent (section 3.1).
    fn challenge(self) -> String {
        match self {
            Self::Missing => "Bearer".to_owned(),
            Self::Malformed => "Bearer error=\"invalid_request\"".to_owned(),
            Self::Forbidden(access) => {
                format!("Bearer error=\"insufficient_scope\", scope=\"{}\"", access.scope())
            }
            Self::KeysUnavailable => "Bearer".to_owned(),
            _ => "Bearer error=\"invalid_token\"".to_owned(),
        }
    }
}

/// The metadata key that carries the challenge with the status, for the REST gateway's
/// `WWW-Authenticate` header.
pub const CHALLENGE: &str = "www-authenticate";

/// The one mapping to a gRPC status: UNAUTHENTICATED without a valid credential,
/// PERMISSION_DENIED with one that lacks the scope; the REST gateway maps those to 401 and 403.
impl From<AuthError> for Status {
    fn from(error: AuthError) -> Self {
        let code = match error {
            AuthError::Forbidden(_) => Code::PermissionDenied,
            // The token may well be valid: the client should retry, not drop it.
            AuthError::KeysUnavailable => Code::Unavailable,
            _ => Code::Unauthenticated,
        };
        let mut status = Status::new(code, error.to_string());
        if let Ok(value) = MetadataValue::try_from(error.challenge()) {
            status.metadata_mut().insert(CHALLENGE, value);
        }
        status
    }
}

/// The credentials a server accepts and its policy.
pub struct Auth {
    policy: Policy,
    keys: Option<Arc<KeyRing>>,
    jwt: Option<Arc<Verifier>>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("policy", &self.policy)
            .field("keys", &self.keys.is_some())
            .field("oidc", &self.jwt.as_ref().map(|v| &v.config().issuer))
            .finish()
    }
}

impl Auth {
    pub fn new(policy: Policy, keys: Option<Arc<KeyRing>>, jwt: Option<Arc<Verifier>>) -> Self {
        Self { policy, keys, jwt }
    }

    /// Everything open, no credentials: the seed's contract.
    pub fn open() -> Self {
        Self::new(Policy::OPEN, None, None)
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The API keys, when a key file is configured (to reload them).
    pub fn keys(&self) -> Option<&Arc<KeyRing>> {
        self.keys.as_ref()
    }

    /// The OIDC verifier, when an issuer is configured (to refresh its keys).
    pub fn oidc(&self) -> Option<&Arc<Verifier>> {
        self.jwt.as_ref()
    }

    /// The caller a request's `authorization` header names: anonymous without one, an error for
    /// one that is malformed or not valid (even where anyone may call: a client that sends a
    /// revoked key should hear so). A server with no credentials configured ignores the header.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, AuthError> {
        let Some(value) = headers.get(http::header::AUTHORIZATION) else {
            return Ok(Caller::Anonymous);
        };
        if self.keys.is_none() && self.jwt.is_none() {
            return Ok(Caller::Anonymous);
        }
        let token = bearer(value.as_bytes()).ok_or(AuthError::Malformed)?;
        if candidates_api::api_key::looks_like_key(token) {
            let keys = self.keys.as_ref().ok_or(AuthError::UnknownToken)?;
            return keys.find(token).map(Caller::Known).ok_or(AuthError::UnknownKey);
        }
        match &self.jwt {
            Some(jwt) if token.bytes().filter(|b| *b == b'.').count() == 2 => {
                jwt.verify(token).await.map(Caller::Known)
            }
            _ => Err(AuthError::UnknownToken),
        }
    }

    /// Whether `caller` may perform `access`.
    pub fn authorize(&self, caller: &Caller, access: Access) -> Result<(), AuthError> {
        match (self.policy.rule(access), caller) {
            (Rule::Anyone, _) => Ok(()),
            (_, Caller::Anonymous) => Err(AuthError::Missing),
            (Rule::Authenticated, Caller::Known(_)) => Ok(()),
            (Rule::Scope, Caller::Known(principal)) if principal.scopes.holds(access) => Ok(()),
            (Rule::Scope, Caller::Known(_)) => Err(AuthError::Forbidden(access)),
        }
    }

    /// A listener edge's one step: per `gate`, nothing (health), the caller (the service applies
    /// the policy per operation), or the caller judged for `access` here (reflection,
    /// `/openapi.json`). The caller goes into the request's extensions; a refusal is counted and
    /// logged.
    pub async fn gate<B>(&self, request: &mut http::Request<B>, gate: Gate) -> Result<(), AuthError> {
        let caller = match gate {
            Gate::Open => return Ok(()),
            Gate::Identify => self.authenticate(request.headers()).await,
            Gate::Judge(access) => self.admit(request.headers(), access).await,
        }
        .inspect_err(|error| record_failure(*error))?;
        request.extensions_mut().insert(caller);
        Ok(())
    }

    /// Both, for requests the edge judges itself (reflection, `/openapi.json`).
    pub async fn admit(&self, headers: &HeaderMap, access: Access) -> Result<Caller, AuthError> {
        let caller = self.authenticate(headers).await?;
        self.authorize(&caller, access)?;
        Ok(caller)
    }
}

/// Counts a refusal by reason and logs it at a bounded rate, without the credential.
pub fn record_failure(error: AuthError) {
    metrics::counter!("auth_failures_total", "reason" => error.reason()).increment(1);
    // One throttle per reason: cheap refusals (no credential) must not hide key guessing.
    static REFUSED: [Throttle; AuthError::REASONS.len()] =
        [const { Throttle::new("request refused by the auth policy") }; AuthError::REASONS.len()];
    let index = AuthError::REASONS.iter().position(|r| *r == error.reason()).unwrap_or(0);
    if REFUSED[index].admit(|| error.reason().to_owned()) {
        tracing::warn!(
            request_id = crate::context::request_id(),
            reason = error.reason(),
            "request refused by the auth policy"
        );
    }
}

/// The token of `Bearer <token>` (scheme case-insensitive, RFC 6750's token68 characters).
fn bearer(value: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(value).ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim_start_matches(' ');
    let token68 = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b);
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.bytes().all(token68)).then_some(token)
}

#[cfg(test)]
mod tests;
