//! Page tokens for stores that list by name: the last name of the page, base64url-encoded so
//! clients treat it as opaque and it is safe in a query string.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use super::StoreError;

pub fn encode_name_cursor(last_name: &str) -> String {
    URL_SAFE_NO_PAD.encode(last_name.as_bytes())
}

pub fn decode_name_cursor(token: &str) -> Result<String, StoreError> {
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| StoreError::invalid_page_token())?;
    String::from_utf8(bytes).map_err(|_| StoreError::invalid_page_token())
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
        assert!(matches!(decode_name_cursor("_w"), Err(StoreError::InvalidArgument(_))));
    }
}
