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

/// Longest cursor: a name is at most 255 characters, 1,020 bytes of UTF-8. Longer ones are no
/// position a listing ever gave, and real DynamoDB refuses start keys over its key size limit.
pub const MAX_CURSOR_BYTES: usize = 1024;

/// Any well-formed base64url token of a name's length is a position (bytes that are not UTF-8
/// are replaced, which still orders them): a malformed or over-long token is an error.
pub fn decode_name_cursor(token: &str) -> Result<String, StoreError> {
    if token.len() > MAX_CURSOR_BYTES.div_ceil(3) * 4 {
        return Err(StoreError::invalid_page_token());
    }
    let bytes = LENIENT.decode(token).map_err(|_| StoreError::invalid_page_token())?;
    if bytes.len() > MAX_CURSOR_BYTES {
        return Err(StoreError::invalid_page_token());
    }
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
        // The longest name is a position; anything longer is not (DynamoDB would refuse it).
        let longest = "é".repeat(255);
        assert_eq!(decode_name_cursor(&encode_name_cursor(&longest)).unwrap(), longest);
        assert!(decode_name_cursor(&encode_name_cursor(&"x".repeat(MAX_CURSOR_BYTES))).is_ok());
        for long in ["x".repeat(MAX_CURSOR_BYTES + 1), "x".repeat(4096)] {
            assert!(matches!(decode_name_cursor(&encode_name_cursor(&long)), Err(StoreError::InvalidArgument(_))));
        }
    }
}
