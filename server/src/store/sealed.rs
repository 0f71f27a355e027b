//! Page tokens that carry a store's own continuation (Cosmos DB's), sealed with a MAC so that a
//! client can neither forge nor corrupt one: only continuations the store issued are sent back to
//! it. A forged continuation in Cosmos DB's own format made it answer 500, which the store maps
//! to "unavailable" and the breaker counted as an outage, for every client.
//!
//! Token: base64url(tag ‖ continuation), the tag the first 16 bytes of HMAC-SHA256(key, continuation).
//! Instances that share the key (all of a deployment's) accept each other's tokens.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::StoreError;

const TAG: usize = 16;
/// Longest continuation accepted (Cosmos DB's are well under 1 KiB; the SDK allows a limit of 16).
const MAX_CONTINUATION: usize = 16 * 1024;

#[derive(Clone)]
pub struct Sealer {
    key: Hmac<Sha256>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<key>)")
    }
}

impl Sealer {
    #[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
    pub fn new(key: &[u8]) -> Self {
        Self { key: Hmac::new_from_slice(key).expect("HMAC takes keys of any length") }
    }

    fn tag(&self, continuation: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.key.clone();
        mac.update(continuation);
        mac
    }

    pub fn seal(&self, continuation: &str) -> String {
        let tag = self.tag(continuation.as_bytes()).finalize().into_bytes();
        let mut raw = Vec::with_capacity(TAG + continuation.len());
        raw.extend_from_slice(&tag[..TAG]);
        raw.extend_from_slice(continuation.as_bytes());
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The continuation inside a token this key sealed; anything else is INVALID_ARGUMENT.
    pub fn open(&self, token: &str) -> Result<String, StoreError> {
        if token.len() > (TAG + MAX_CONTINUATION) * 4 / 3 + 4 {
            return Err(StoreError::invalid_page_token());
        }
        let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| StoreError::invalid_page_token())?;
        if raw.len() <= TAG {
            return Err(StoreError::invalid_page_token());
        }
        let (tag, continuation) = raw.split_at(TAG);
        // Constant-time comparison of the truncated tag.
        self.tag(continuation).verify_truncated_left(tag).map_err(|_| StoreError::invalid_page_token())?;
        String::from_utf8(continuation.to_vec()).map_err(|_| StoreError::invalid_page_token())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_tokens_open_and_nothing_else_does() {
        let sealer = Sealer::new(b"key");
        let continuation = r#"c1.eyJ0b2tlbnMiOlt7InJhbmdlIjp7Im1pbiI6IiIsIm1heCI6IkZGIn19XX0"#;
        let token = sealer.seal(continuation);
        assert_eq!(sealer.open(&token).unwrap(), continuation);
        // Another instance with the same key accepts it; one with another key does not.
        assert_eq!(Sealer::new(b"key").open(&token).unwrap(), continuation);
        assert!(Sealer::new(b"other").open(&token).is_err());
        // A forged continuation in the SDK's format, bare or base64url-wrapped as before: refused.
        for forged in [
            "c1.bm90IGpzb24".to_owned(),
            URL_SAFE_NO_PAD.encode("c1.bm90IGpzb24"),
            URL_SAFE_NO_PAD.encode([&[0u8; TAG][..], b"c1.bm90IGpzb24"].concat()),
            String::new(),
            "!!".into(),
            "A".repeat(100_000),
        ] {
            assert!(matches!(sealer.open(&forged), Err(StoreError::InvalidArgument(_))), "{forged:.40}");
        }
        // One flipped bit anywhere: refused.
        let mut raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for i in 0..raw.len() {
            raw[i] ^= 1;
            assert!(sealer.open(&URL_SAFE_NO_PAD.encode(&raw)).is_err(), "bit {i}");
            raw[i] ^= 1;
        }
    }
}
