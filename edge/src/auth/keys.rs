//! The API keys a server accepts: a file of SHA-256 digests, one key per line, read again when it
//! changes (no restart to add, rotate or revoke a key).
//!
//! ```text
//! # digest (candidatectl key mint prints this line)                   scopes                          name
//! 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08   candidates.read,candidates.write deploy
//! ```
//!
//! A presented key is hashed and compared with every digest in constant time, so the time taken
//! says nothing about how close a guess came. A file that cannot be read or parsed leaves the keys
//! as they were (none at start: requests that need a key are refused until it is fixed).

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
};

use arc_swap::ArcSwap;

use super::{Principal, Scopes};

/// Longest key file read (about 5,000 keys): a file that grows without bound is an error.
const MAX_FILE: u64 = 1 << 20;
/// Longest key name: names are logged.
const MAX_NAME: usize = 64;

/// One accepted key.
struct Entry {
    digest: [u64; 4],
    principal: Arc<Principal>,
}

/// Why a key file was not taken.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read the API key file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the API key file {path} is larger than {MAX_FILE} bytes")]
    TooLarge { path: PathBuf },
    #[error("the API key file {path}, line {line}: {problem}")]
    Line { path: PathBuf, line: usize, problem: String },
}

/// The accepted keys, swapped whole when the file changes: a request sees the old set or the new.
pub struct KeyRing {
    path: PathBuf,
    entries: ArcSwap<Vec<Entry>>,
    /// The file's bytes last taken (or last refused), so an unchanged file is not parsed again
    /// and a bad one is reported once.
    last: Mutex<Option<Vec<u8>>>,
}

impl KeyRing {
    /// A ring for `path`, empty until [`reload`](Self::reload) takes the file.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), entries: ArcSwap::from_pointee(Vec::new()), last: Mutex::new(None) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many keys are accepted now.
    pub fn len(&self) -> usize {
        self.entries.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key's principal, if `key` is one of the accepted keys.
    pub fn find(&self, key: &str) -> Option<Arc<Principal>> {
        let digest = words(&candidates_api::api_key::digest(key));
        let entries = self.entries.load();
        // Every digest is compared whole, with no early exit inside a digest or on the first
        // match: the time taken says nothing about how many bytes of a guess were right. Words,
        // not subtle's byte-wise `ct_eq`: with 100 keys that cost a quarter of a request
        // (bench/auth.py).
        let mut found = None;
        for entry in entries.iter() {
            let diff = entry.digest.iter().zip(&digest).fold(0u64, |acc, (a, b)| acc | (a ^ b));
            if std::hint::black_box(diff) == 0 {
                found = Some(entry.principal.clone());
            }
        }
        found
    }

    /// Reads the file and takes it if it changed. `Ok(Some(n))`: `n` keys taken; `Ok(None)`:
    /// unchanged; `Err`: the keys stay as they were (reported once per version of the file).
    pub async fn reload(&self) -> Result<Option<usize>, KeyFileError> {
        let bytes = read_bounded(&self.path).await?;
        {
            let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            if last.as_deref() == Some(&bytes[..]) {
                return Ok(None);
            }
            *last = Some(bytes.clone());
        }
        let entries = parse(&self.path, &bytes)?;
        let taken = entries.len();
        self.entries.store(Arc::new(entries));
        Ok(Some(taken))
    }

    /// [`reload`](Self::reload), with what happened logged (never a key: names and counts).
    pub async fn reload_and_report(&self) {
        match self.reload().await {
            Ok(Some(count)) => tracing::info!(path = %self.path.display(), keys = count, "API keys loaded"),
            Ok(None) => {}
            Err(error) => {
                // A file being rewritten can be read half-written: the next read takes it whole.
                tracing::error!(%error, keys_in_use = self.len(), "API key file not taken; the keys in use stay");
            }
        }
    }
}

async fn read_bounded(path: &Path) -> Result<Vec<u8>, KeyFileError> {
    let read_error = |source| KeyFileError::Read { path: path.to_owned(), source };
    let length = tokio::fs::metadata(path).await.map_err(read_error)?.len();
    if length > MAX_FILE {
        return Err(KeyFileError::TooLarge { path: path.to_owned() });
    }
    tokio::fs::read(path).await.map_err(read_error)
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<Entry>, KeyFileError> {
    let text = std::str::from_utf8(bytes).map_err(|_| KeyFileError::Line {
        path: path.to_owned(),
        line: 0,
        problem: "not UTF-8".to_owned(),
    })?;
    let mut entries: Vec<Entry> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let problem = |problem: String| KeyFileError::Line { path: path.to_owned(), line: index + 1, problem };
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [digest, scopes, name] = fields[..] else {
            return Err(problem("expected `<sha256 hex> <scope>[,<scope>] <name>`".to_owned()));
        };
        let digest = hex_digest(digest).ok_or_else(|| {
            // A key pasted where its digest belongs must not be echoed into the log.
            problem("the first field must be a key's SHA-256 digest, 64 hex digits (candidatectl key mint)".to_owned())
        })?;
        let scopes = Scopes::parse(scopes.split(','))
            .map_err(|_| problem("scopes are candidates.read and/or candidates.write".to_owned()))?;
        if name.len() > MAX_NAME || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
            return Err(problem(format!("a key name is at most {MAX_NAME} of [A-Za-z0-9._-]")));
        }
        let digest = words(&digest);
        if entries.iter().any(|e| e.digest == digest) {
            return Err(problem("this digest is already on an earlier line".to_owned()));
        }
        entries.push(Entry { digest, principal: Arc::new(Principal { name: name.to_owned(), scopes }) });
    }
    Ok(entries)
}

/// A digest as four words, compared without branches.
fn words(digest: &[u8; 32]) -> [u64; 4] {
    let mut words = [0u64; 4];
    for (word, chunk) in words.iter_mut().zip(digest.chunks_exact(8)) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        *word = u64::from_le_bytes(bytes);
    }
    words
}

fn hex_digest(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(digest)
}
