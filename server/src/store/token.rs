//! Page tokens: a store's own cursor, base64url-encoded so that clients treat it as opaque and it
//! is safe in a query string. Stores that list by name use the last name of the page; Cosmos DB
//! wraps its continuation token the same way.

use base64::{
    Engine,
    alphabet::URL_SAFE,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig, general_purpose::URL_SAFE_NO_PAD},
};

/// Decoding accepts non-zero trailing bits: any token of the documented shape is a position.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

use super::StoreError;

pub fn encode_name_cursor(last_name: &str) -> String {
    URL_SAFE_NO_PAD.encode(last_name.as_bytes())
}

/// Any well-formed base64url token is a position (bytes that are not UTF-8 are replaced, which
/// still orders them): only a malformed token is an error.
pub fn decode_name_cursor(token: &str) -> Result<String, StoreError> {
    let bytes = LENIENT.decode(token).map_err(|_| StoreError::invalid_page_token())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        for name in ["a", "John Smith", "候选人 🦀", "x=y&z"] {
            let token = encode_name_cursor(name);
            assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(decode_name_cursor(&token).unwrap(), name);
        }
        assert!(matches!(decode_name_cursor("!!"), Err(StoreError::InvalidArgument(_))));
        assert!(matches!(decode_name_cursor("a"), Err(StoreError::InvalidArgument(_))));
        // Well-formed but not UTF-8: still a position.
        assert!(decode_name_cursor("_w").is_ok());
    }
}
