//! OIDC bearer tokens (JWTs) for workload identity: Cognito, Entra ID, Google-signed ID tokens.
//!
//! A token is accepted when it is RS256 or ES256 (never `none`, never an HMAC algorithm, so a
//! public key can never be used as an HMAC secret), its `kid` names a key of the issuer's JWKS of
//! the matching type, its signature verifies, `iss` and `aud` are the configured ones and `exp`
//! (required) and `nbf` hold within the allowed clock skew. Scopes come from one configurable
//! claim, a space-separated string (`scope`, `scp`) or an array of strings (`roles`).
//!
//! The JWKS is fetched at start, again when a token names an unknown `kid` (a key rotation), and
//! every `refresh_every`; never more often than `refresh_floor`, so a flood of tokens with made-up
//! `kid`s costs one fetch per floor, not one per request. A failed fetch keeps the keys it had.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    errors::ErrorKind,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm},
};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::{AuthError, Principal, Scopes};

/// Where tokens come from and what they must say.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The `iss` tokens carry; also where discovery starts (`/.well-known/openid-configuration`).
    pub issuer: String,
    /// The `aud` tokens must carry.
    pub audience: String,
    /// The JWKS address, when discovery is not wanted (or not offered).
    pub jwks_url: Option<String>,
    /// The claim holding the scopes.
    pub scope_claim: String,
    /// Allowed clock difference on `exp` and `nbf`.
    pub leeway: Duration,
    /// The shortest time between two JWKS fetches.
    pub refresh_floor: Duration,
    /// How often the JWKS is fetched anyway (keys are added before they are used).
    pub refresh_every: Duration,
    /// The longest a discovery or JWKS fetch may take.
    pub fetch_timeout: Duration,
}

/// Longest `sub` kept as the caller's name (it is logged); longer or odder ones are cut.
const MAX_SUBJECT: usize = 64;
/// Largest JWKS document read.
const MAX_JWKS: usize = 256 * 1024;

/// One key of the JWKS, ready to verify with.
struct Key {
    algorithm: Algorithm,
    key: DecodingKey,
}

#[derive(Default)]
struct KeySet {
    keys: HashMap<String, Arc<Key>>,
}

/// Verifies tokens against the issuer's keys.
pub struct Verifier {
    config: OidcConfig,
    validation: HashMap<Algorithm, Validation>,
    keys: ArcSwap<KeySet>,
    /// When the last fetch started (None: never); held while fetching, so one fetch runs at a time.
    fetched: Mutex<Option<Instant>>,
    http: reqwest::Client,
    verified: Verified,
}

/// How long a verified token is taken without a new check (at most until it expires): also how
/// long a key removed from the JWKS keeps its tokens working.
pub const CACHE_FOR: Duration = Duration::from_secs(60);
/// Most tokens remembered; when full, the expired go, and if none had, all.
const CACHE_ENTRIES: usize = 10_000;

/// A verified token's caller and until when it is taken without a new check.
type Remembered = (Arc<Principal>, Instant);

/// Tokens verified lately, by the SHA-256 of the whole token (signature included).
#[derive(Default)]
struct Verified {
    entries: std::sync::Mutex<HashMap<[u8; 32], Remembered>>,
}

impl Verified {
    fn get(&self, digest: &[u8; 32]) -> Option<Arc<Principal>> {
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.get(digest).filter(|(_, until)| Instant::now() < *until).map(|(principal, _)| Arc::clone(principal))
    }

    fn put(&self, digest: [u8; 32], principal: Arc<Principal>, valid_for: Duration) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= CACHE_ENTRIES {
            entries.retain(|_, (_, until)| now < *until);
            if entries.len() >= CACHE_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(digest, (principal, now + valid_for.min(CACHE_FOR)));
    }
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// HTTPS, or HTTP to a loopback host (a test's or a sidecar's issuer): the rule the server's
/// configuration applies to the flags, applied to what discovery returns too.
pub fn secure_url(url: &str) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else { return false };
    match (uri.scheme_str(), uri.host()) {
        (Some("https"), Some(_)) => true,
        (Some("http"), Some(host)) => {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        _ => false,
    }
}

#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<serde_json::Value>,
}

impl Verifier {
    /// A verifier with no keys yet: call [`refresh`](Self::refresh) (the server does at start).
    pub fn new(config: OidcConfig) -> Result<Self, reqwest::Error> {
        // No redirects: the HTTPS rule of the issuer and JWKS addresses must hold for where the keys
        // really come from.
        let http = reqwest::Client::builder()
            .timeout(config.fetch_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        let mut validation = HashMap::new();
        for algorithm in [Algorithm::RS256, Algorithm::ES256] {
            let mut v = Validation::new(algorithm);
            v.set_issuer(&[&config.issuer]);
            v.set_audience(&[&config.audience]);
            v.set_required_spec_claims(&["exp", "iss", "aud"]);
            v.leeway = config.leeway.as_secs();
            v.validate_nbf = true;
            validation.insert(algorithm, v);
        }
        Ok(Self {
            config,
            validation,
            keys: ArcSwap::from_pointee(KeySet::default()),
            fetched: Mutex::new(None),
            http,
            verified: Verified::default(),
        })
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// How many keys are cached.
    pub fn key_count(&self) -> usize {
        self.keys.load().keys.len()
    }

    /// The caller a token names, or why not. A token verified in the last [`CACHE_FOR`] (and not
    /// expired since) is not verified again: an RS256 signature check is most of a request's CPU
    /// (bench/auth.py), and a workload sends the same token for its whole lifetime.
    pub async fn verify(&self, token: &str) -> Result<Arc<Principal>, AuthError> {
        let digest = candidates_api::api_key::digest(token);
        if let Some(principal) = self.verified.get(&digest) {
            return Ok(principal);
        }
        let (principal, expires) = self.verify_now(token).await?;
        let principal = Arc::new(principal);
        self.verified.put(digest, Arc::clone(&principal), expires);
        Ok(principal)
    }

    /// The full check; also returns how long the token stays valid.
    async fn verify_now(&self, token: &str) -> Result<(Principal, Duration), AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| header_error(token))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(AuthError::BadAlgorithm);
        }
        let kid = header.kid.ok_or(AuthError::InvalidToken)?;
        let key = match self.keys.load().keys.get(&kid).cloned() {
            Some(key) => key,
            None => self.refetch_for(&kid).await?,
        };
        if key.algorithm != header.alg {
            return Err(AuthError::BadAlgorithm);
        }
        let validation = self.validation.get(&header.alg).ok_or(AuthError::BadAlgorithm)?;
        let data = jsonwebtoken::decode::<HashMap<String, serde_json::Value>>(token, &key.key, validation)
            .map_err(|e| classify(e.kind()))?;
        let claims = data.claims;
        // RFC 7519 section 4.1.1: `iss` is one string; jsonwebtoken also takes an array holding it.
        if !claims.get("iss").is_some_and(serde_json::Value::is_string) {
            return Err(AuthError::WrongIssuer);
        }
        let subject = claims.get("sub").and_then(serde_json::Value::as_str).unwrap_or("unknown");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
        let exp = claims.get("exp").and_then(serde_json::Value::as_u64).unwrap_or(now);
        let valid_for = Duration::from_secs((exp + self.config.leeway.as_secs()).saturating_sub(now));
        let principal = Principal {
            name: format!("jwt:{}", bounded_subject(subject)),
            scopes: scopes(claims.get(&self.config.scope_claim)),
        };
        Ok((principal, valid_for))
    }

    /// An unknown `kid`: fetch the JWKS again if the floor allows, then look again.
    async fn refetch_for(&self, kid: &str) -> Result<Arc<Key>, AuthError> {
        let mut fetched = self.fetched.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(key) = self.keys.load().keys.get(kid) {
            return Ok(key.clone());
        }
        let cold = self.keys.load().keys.is_empty();
        if fetched.is_some_and(|at| at.elapsed() < self.config.refresh_floor) {
            return Err(if cold { AuthError::KeysUnavailable } else { AuthError::UnknownKid });
        }
        *fetched = Some(Instant::now());
        let result = self.fetch().await;
        if let Err(error) = &result {
            tracing::warn!(issuer = %self.config.issuer, %error, "JWKS fetch failed; the keys in use stay");
        }
        match self.keys.load().keys.get(kid) {
            Some(key) => Ok(key.clone()),
            None if self.keys.load().keys.is_empty() => Err(AuthError::KeysUnavailable),
            None => Err(AuthError::UnknownKid),
        }
    }

    /// Fetches the JWKS now unless the floor forbids it; what the periodic refresh calls.
    pub async fn refresh(&self) {
        let mut fetched = self.fetched.lock().await;
        if fetched.is_some_and(|at| at.elapsed() < self.config.refresh_floor) {
            return;
        }
        *fetched = Some(Instant::now());
        match self.fetch().await {
            Ok(count) => tracing::info!(issuer = %self.config.issuer, keys = count, "JWKS loaded"),
            Err(error) => {
                tracing::warn!(issuer = %self.config.issuer, %error, keys_in_use = self.key_count(), "JWKS fetch failed; the keys in use stay");
            }
        }
    }

    /// Whether the periodic refresh is due: every `refresh_every`, or every `refresh_floor` while
    /// no key has been fetched yet (an issuer unreachable at boot is tried again soon).
    pub async fn refresh_due(&self) -> bool {
        let every = if self.key_count() == 0 { self.config.refresh_floor } else { self.config.refresh_every };
        self.fetched.lock().await.is_none_or(|at| at.elapsed() >= every)
    }

    async fn fetch(&self) -> Result<usize, String> {
        let url = match &self.config.jwks_url {
            Some(url) => url.clone(),
            None => {
                let discovery =
                    format!("{}/.well-known/openid-configuration", self.config.issuer.trim_end_matches('/'));
                let body = self.get(&discovery).await?;
                let document = serde_json::from_slice::<Discovery>(&body).map_err(|e| format!("{discovery}: {e}"))?;
                // OIDC Discovery 1.0, section 4.3: the document's issuer is exactly the one asked.
                if document.issuer != self.config.issuer {
                    return Err(format!("{discovery}: its issuer is not {}", self.config.issuer));
                }
                if !secure_url(&document.jwks_uri) {
                    return Err(format!("{discovery}: jwks_uri is not HTTPS (HTTP only on loopback)"));
                }
                document.jwks_uri
            }
        };
        let body = self.get(&url).await?;
        let document: JwksDocument = serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))?;
        let mut keys = HashMap::new();
        for value in document.keys {
            // A key this verifier cannot use (another type, no `kid`) is skipped, not fatal.
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else { continue };
            if let (Some(kid), Some(key)) = (jwk.common.key_id.clone(), usable(&jwk)) {
                keys.insert(kid, Arc::new(key));
            }
        }
        if keys.is_empty() {
            return Err(format!("{url}: no RS256 or ES256 key with a kid"));
        }
        let count = keys.len();
        self.keys.store(Arc::new(KeySet { keys }));
        Ok(count)
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        let response = self.http.get(url).send().await.map_err(|e| format!("{url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{url}: HTTP {}", response.status().as_u16()));
        }
        // Read in chunks up to the cap: a huge document must not be held whole first.
        let too_large = || format!("{url}: larger than {MAX_JWKS} bytes");
        if response.content_length().is_some_and(|n| n > MAX_JWKS as u64) {
            return Err(too_large());
        }
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {e}"))? {
            if body.len() + chunk.len() > MAX_JWKS {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// An RSA key (RS256) or a P-256 key (ES256), whatever else the JWKS holds.
fn usable(jwk: &Jwk) -> Option<Key> {
    let algorithm = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        _ => return None,
    };
    // A key that declares another algorithm is not used for this one.
    let expected = if algorithm == Algorithm::RS256 { KeyAlgorithm::RS256 } else { KeyAlgorithm::ES256 };
    if jwk.common.key_algorithm.is_some_and(|declared| declared != expected) {
        return None;
    }
    DecodingKey::from_jwk(jwk).ok().map(|key| Key { algorithm, key })
}

/// Why a header jsonwebtoken could not read is refused: an algorithm it does not even name
/// (`none`) is still an algorithm refusal, anything else an invalid token.
fn header_error(token: &str) -> AuthError {
    use base64::Engine;
    let alg = token
        .split('.')
        .next()
        .and_then(|h| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
        .and_then(|h| h.get("alg").and_then(serde_json::Value::as_str).map(str::to_owned));
    match alg {
        Some(alg) if alg != "RS256" && alg != "ES256" => AuthError::BadAlgorithm,
        _ => AuthError::InvalidToken,
    }
}

fn classify(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature => AuthError::Expired,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => AuthError::BadAlgorithm,
        _ => AuthError::InvalidToken,
    }
}

/// `sub` as a log-safe name: at most [`MAX_SUBJECT`] of `[A-Za-z0-9._@:-]`, others as `_`.
fn bounded_subject(subject: &str) -> String {
    subject
        .chars()
        .take(MAX_SUBJECT)
        .map(|c| if c.is_ascii_alphanumeric() || "._@:-".contains(c) { c } else { '_' })
        .collect()
}

/// The scopes the claim holds; names this service does not know are ignored (tokens carry many).
fn scopes(claim: Option<&serde_json::Value>) -> Scopes {
    let names: Vec<&str> = match claim {
        Some(serde_json::Value::String(text)) => text.split_whitespace().collect(),
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(serde_json::Value::as_str).collect(),
        _ => Vec::new(),
    };
    let mut scopes = Scopes::default();
    for name in names {
        if let Ok(one) = Scopes::parse([name]) {
            scopes.read |= one.read;
            scopes.write |= one.write;
        }
    }
    scopes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_from_a_string_or_an_array() {
        let s = |v: serde_json::Value| scopes(Some(&v));
        assert_eq!(s(serde_json::json!("openid candidates.write email")), Scopes { read: false, write: true });
        assert_eq!(s(serde_json::json!(["candidates.read", "x", 3])), Scopes { read: true, write: false });
        assert_eq!(scopes(None), Scopes::default());
    }

    #[test]
    fn subjects_are_bounded_and_plain() {
        assert_eq!(bounded_subject("svc@project.iam"), "svc@project.iam");
        assert_eq!(bounded_subject("a\nb c"), "a_b_c");
        assert_eq!(bounded_subject(&"x".repeat(500)).len(), MAX_SUBJECT);
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    fn principal() -> Arc<Principal> {
        Arc::new(Principal { name: "jwt:x".into(), scopes: Scopes::default() })
    }

    #[test]
    fn a_verified_token_is_remembered_until_it_expires_or_the_cache_time_ends() {
        let cache = Verified::default();
        cache.put([1; 32], principal(), Duration::from_secs(3600));
        assert!(cache.get(&[1; 32]).is_some());
        assert!(cache.get(&[2; 32]).is_none());
        cache.put([3; 32], principal(), Duration::ZERO);
        assert!(cache.get(&[3; 32]).is_none(), "an expired token is never taken from the cache");
        let until = cache.entries.lock().unwrap()[&[1; 32]].1;
        assert!(until <= Instant::now() + CACHE_FOR, "at most CACHE_FOR");
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = Verified::default();
        for i in 0..(CACHE_ENTRIES + 10) {
            let mut digest = [0u8; 32];
            digest[..8].copy_from_slice(&(i as u64).to_le_bytes());
            cache.put(digest, principal(), Duration::from_secs(60));
        }
        assert!(cache.entries.lock().unwrap().len() <= CACHE_ENTRIES);
    }
}
