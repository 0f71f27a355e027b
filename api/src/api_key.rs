//! The API key format both sides share: `candidatectl key mint` makes keys, the server knows only
//! their SHA-256 digests (a key file line: `<digest hex> <scopes> <name>`).
//!
//! A key is [`PREFIX`] and 43 URL-safe base64 characters (32 random bytes, 256 bits): the prefix
//! lets secret scanners find leaked keys, the length makes guessing hopeless, so one fast hash
//! (not a slow password hash) is enough to keep them from being read back out of a key file.

use base64::Engine;
use sha2::{Digest, Sha256};

/// What every key starts with.
pub const PREFIX: &str = "cand_";
/// A key's length: the prefix and 43 base64 characters.
pub const LEN: usize = PREFIX.len() + 43;
/// The scope of the read operations (`GetCandidate`, `ListCandidates`, `GetStatus`).
pub const SCOPE_READ: &str = "candidates.read";
/// The scope of the write operations (`PutCandidate`, `DeleteCandidate`).
pub const SCOPE_WRITE: &str = "candidates.write";

/// A new random key from the operating system's generator.
///
/// # Errors
/// When the system has no randomness to give (never on the platforms we ship).
pub fn mint() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

/// The SHA-256 digest of a key, as the server compares it.
pub fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The digest in lowercase hex, as a key file holds it.
pub fn digest_hex(key: &str) -> String {
    digest(key).iter().map(|b| format!("{b:02x}")).collect()
}

/// The key file line the server takes for `key`: its digest, the comma-separated `scopes` and a
/// `name` (no secret in it).
pub fn file_line(key: &str, scopes: &str, name: &str) -> String {
    format!("{} {scopes} {name}", digest_hex(key))
}

/// Whether `token` has a key's shape (prefix, length, alphabet); says nothing about its validity.
pub fn looks_like_key(token: &str) -> bool {
    token.len() == LEN
        && token.starts_with(PREFIX)
        && token[PREFIX.len()..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_have_the_shape_and_differ() {
        let (a, b) = (mint().unwrap(), mint().unwrap());
        assert!(looks_like_key(&a) && looks_like_key(&b), "{a} {b}");
        assert_ne!(a, b);
        assert_ne!(digest(&a), digest(&b));
    }

    #[test]
    fn digest_is_sha256() {
        // sha256("abc")
        assert_eq!(digest_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn shape_check() {
        assert!(!looks_like_key("cand_short"));
        assert!(!looks_like_key(&format!("xxxx_{}", "a".repeat(43))));
        assert!(!looks_like_key(&format!("{PREFIX}{}", "a+".repeat(21) + "a")));
        assert!(looks_like_key(&format!("{PREFIX}{}", "a".repeat(43))));
    }
}
