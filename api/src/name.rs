//! The name rules of the wire contract, in one place: a valid name is what every cloud store can
//! hold as a key (DynamoDB partition key, Cosmos DB `id`, Firestore document id).

use std::fmt;

/// The most Unicode scalar values a name may have (Cosmos DB's `id` limit).
pub const MAX_CHARS: usize = 255;

/// A candidate name that passed every rule. Only [`CandidateName::parse`] makes one, so a store
/// never sees an unchecked name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CandidateName(String);

/// Which rule a rejected name broke; the message is what the client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name must not be empty")]
    Empty,
    #[error("name must be at most {MAX_CHARS} characters, got {0}")]
    TooLong(usize),
    #[error("name must not contain control characters (found U+{0:04X})")]
    ControlCharacter(u32),
    #[error("name must not contain '{0}'")]
    ForbiddenCharacter(char),
    #[error("name must not be '.' or '..'")]
    DotName,
    #[error("name must not be of the form __anything__ (reserved by Firestore)")]
    Reserved,
}

impl CandidateName {
    pub fn parse(name: impl Into<String>) -> Result<Self, NameError> {
        let name = name.into();
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        let chars = name.chars().count();
        if chars > MAX_CHARS {
            return Err(NameError::TooLong(chars));
        }
        if let Some(c) = name.chars().find(|c| c.is_control()) {
            return Err(NameError::ControlCharacter(c as u32));
        }
        if let Some(c) = name.chars().find(|c| matches!(c, '/' | '\\' | '?' | '#')) {
            return Err(NameError::ForbiddenCharacter(c));
        }
        if name == "." || name == ".." {
            return Err(NameError::DotName);
        }
        // `__.*__` needs at least four characters; "___" is not of that form.
        if chars >= 4 && name.starts_with("__") && name.ends_with("__") {
            return Err(NameError::Reserved);
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for CandidateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for CandidateName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Percent-encodes a name (or any bytes) for a URL path segment or query value: everything but
/// RFC 3986 unreserved characters. What clients and tests put in `/candidate/{name}`.
pub fn encode_path_segment(name: impl AsRef<[u8]>) -> String {
    let mut out = String::with_capacity(name.as_ref().len());
    for &b in name.as_ref() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_edges() {
        for ok in [
            "a",
            "John Smith",
            " leading and trailing ",
            "Zoë Ångström",
            "候选人",
            "🦀",
            "...",
            ".a",
            "__",
            "___",
            "_a__",
            "__a_",
            "a.b",
            "%20",
            "x=y&z",
        ] {
            assert_eq!(CandidateName::parse(ok).unwrap().as_str(), ok, "{ok:?}");
        }
        let max = "é".repeat(MAX_CHARS);
        assert!(CandidateName::parse(max).is_ok());
        let max_emoji = "🦀".repeat(MAX_CHARS); // 1020 bytes: still within every store's key limit
        assert!(CandidateName::parse(max_emoji).is_ok());
    }

    #[test]
    fn rejects_each_rule() {
        assert_eq!(CandidateName::parse(""), Err(NameError::Empty));
        assert_eq!(CandidateName::parse("a".repeat(MAX_CHARS + 1)), Err(NameError::TooLong(MAX_CHARS + 1)));
        assert_eq!(CandidateName::parse("a\nb"), Err(NameError::ControlCharacter(0x0a)));
        assert_eq!(CandidateName::parse("\u{7f}"), Err(NameError::ControlCharacter(0x7f)));
        assert_eq!(CandidateName::parse("a\u{85}"), Err(NameError::ControlCharacter(0x85)));
        for c in ['/', '\\', '?', '#'] {
            assert_eq!(CandidateName::parse(format!("a{c}b")), Err(NameError::ForbiddenCharacter(c)));
        }
        assert_eq!(CandidateName::parse("."), Err(NameError::DotName));
        assert_eq!(CandidateName::parse(".."), Err(NameError::DotName));
        assert_eq!(CandidateName::parse("____"), Err(NameError::Reserved));
        assert_eq!(CandidateName::parse("__name__"), Err(NameError::Reserved));
    }

    #[test]
    fn messages_name_the_rule() {
        let msg = CandidateName::parse("a/b").unwrap_err().to_string();
        assert!(msg.contains("'/'"), "{msg}");
        let msg = CandidateName::parse("x".repeat(300)).unwrap_err().to_string();
        assert!(msg.contains("at most 255"), "{msg}");
    }
}
