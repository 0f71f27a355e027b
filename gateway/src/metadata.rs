//! Metadata passthrough in grpc-gateway's convention: a `Grpc-Metadata-<key>` request header
//! becomes `<key>` gRPC metadata on the call, and the call's response metadata comes back as
//! `Grpc-Metadata-<key>` headers. W3C `traceparent`/`tracestate` pass through under their own names
//! when well formed. Both directions are bounded in count and size, ASCII only (binary `-bin`
//! keys are refused), and never carry the names the gateway sets itself or the credential.

use http::{HeaderMap, HeaderName, StatusCode};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, KeyAndValueRef, MetadataMap};

use crate::error::ApiError;

/// The request header prefix (header names are case-insensitive; `http` stores them lowercase).
pub const PREFIX: &str = "grpc-metadata-";
/// At most this many entries each way.
pub const MAX_ENTRIES: usize = 16;
/// At most this many bytes of keys and values each way (gRPC's own default header list limit is
/// 8 KiB for the whole of it).
pub const MAX_BYTES: usize = 4096;

/// Metadata that is the gateway's or the transport's to set: the credential, the request id, the
/// deadline, the trace context (passed through under its own name), and HTTP/2's and gRPC's own.
fn reserved(key: &str) -> bool {
    key.starts_with("grpc-")
        || key.starts_with(':')
        || matches!(
            key,
            "authorization"
                | "x-request-id"
                | "traceparent"
                | "tracestate"
                | "content-type"
                | "content-length"
                | "content-encoding"
                | "accept-encoding"
                | "te"
                | "user-agent"
                | "host"
                | "connection"
                | "date"
                | "server"
        )
}

/// The request's passthrough entries, or 400 saying which rule an entry broke. Never echoes a
/// value (it may be anything, credentials included).
pub fn incoming(headers: &HeaderMap) -> Result<Vec<(AsciiMetadataKey, AsciiMetadataValue)>, ApiError> {
    let bad = |message: String| ApiError::from_http(StatusCode::BAD_REQUEST, message);
    let mut entries = Vec::new();
    let mut bytes = 0;
    for (name, value) in headers {
        let Some(key) = name.as_str().strip_prefix(PREFIX) else { continue };
        let shown = candidates_edge::observe::bounded(key);
        if key.is_empty() || key.ends_with("-bin") || reserved(key) {
            return Err(bad(format!(
                "Grpc-Metadata-{shown}: not passed through (binary, empty and reserved keys are refused)"
            )));
        }
        let (Ok(key), Ok(text)) = (key.parse::<AsciiMetadataKey>(), value.to_str()) else {
            return Err(bad(format!("Grpc-Metadata-{shown}: the value must be printable ASCII")));
        };
        bytes += key.as_str().len() + text.len();
        if entries.len() == MAX_ENTRIES || bytes > MAX_BYTES {
            return Err(bad(format!(
                "at most {MAX_ENTRIES} Grpc-Metadata-* headers of {MAX_BYTES} bytes in all are passed through"
            )));
        }
        let Ok(value) = AsciiMetadataValue::try_from(text) else {
            return Err(bad(format!("Grpc-Metadata-{shown}: the value must be printable ASCII")));
        };
        entries.push((key, value));
    }
    Ok(entries)
}

/// Copies a call's response metadata onto the REST response as `Grpc-Metadata-<key>` headers:
/// ASCII entries that are not reserved, within the same bounds (the rest are dropped: they are the
/// upstream's, and the client's request was fine).
pub fn outgoing(metadata: &MetadataMap, headers: &mut HeaderMap) {
    let (mut count, mut bytes) = (0, 0);
    for entry in metadata.iter() {
        let KeyAndValueRef::Ascii(key, value) = entry else { continue };
        if reserved(key.as_str()) {
            continue;
        }
        bytes += key.as_str().len() + value.len();
        if count == MAX_ENTRIES || bytes > MAX_BYTES {
            break;
        }
        let Ok(name) = HeaderName::from_bytes(format!("{PREFIX}{}", key.as_str()).as_bytes()) else { continue };
        let Ok(value) = http::HeaderValue::from_bytes(value.as_encoded_bytes()) else { continue };
        headers.append(name, value);
        count += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap())).collect()
    }

    #[test]
    fn request_headers_become_metadata_within_bounds() {
        let got = incoming(&headers(&[("grpc-metadata-tenant", "acme"), ("x-other", "no")])).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0.as_str(), got[0].1.to_str().unwrap()), ("tenant", "acme"));

        for refused in ["grpc-metadata-authorization", "grpc-metadata-grpc-timeout", "grpc-metadata-x-bin"] {
            let error = incoming(&headers(&[(refused, "v")])).unwrap_err();
            assert_eq!(error.status, StatusCode::BAD_REQUEST, "{refused}");
            assert!(!error.body.message.contains(": v"), "values are never echoed");
        }
        let many: Vec<_> = (0..=MAX_ENTRIES).map(|i| (format!("grpc-metadata-k{i}"), "v".to_owned())).collect();
        let many: Vec<_> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert!(incoming(&headers(&many)).is_err(), "too many entries");
        let big = "v".repeat(MAX_BYTES);
        assert!(incoming(&headers(&[("grpc-metadata-big", &big)])).is_err(), "too many bytes");
    }

    #[test]
    fn response_metadata_becomes_headers_without_reserved_ones() {
        let mut metadata = MetadataMap::new();
        metadata.insert("x-served-by", "b".parse().unwrap());
        metadata.insert("grpc-status", "0".parse().unwrap());
        metadata.insert("content-type", "application/grpc".parse().unwrap());
        metadata.insert_bin("trace-bin", tonic::metadata::MetadataValue::from_bytes(b"\x00\x01"));
        let mut out = HeaderMap::new();
        outgoing(&metadata, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out["grpc-metadata-x-served-by"], "b");
    }
}
