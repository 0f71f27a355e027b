//! HTTPS and gRPC over TLS for `https://` targets: the system's roots, plus a CA file
//! (`--ca-file`, e.g. a private CA in front of the instances or a test's), set once for the process
//! the way `SSL_CERT_FILE` is for other tools.

use std::sync::OnceLock;

use crate::api::{ClientError, ErrorKind};

static CA: OnceLock<Vec<u8>> = OnceLock::new();

/// Trusts the PEM certificates in `path` besides the system's roots. Call once, before any client
/// is built.
pub fn trust_ca_file(path: &std::path::Path) -> Result<(), ClientError> {
    let pem = std::fs::read(path).map_err(|e| ClientError {
        kind: ErrorKind::Rejected,
        status: "bad_ca_file".into(),
        message: format!("cannot read --ca-file {}: {e}", path.display()),
    })?;
    reqwest::Certificate::from_pem(&pem).map_err(|e| ClientError {
        kind: ErrorKind::Rejected,
        status: "bad_ca_file".into(),
        message: format!("--ca-file {} holds no PEM certificate: {e}", path.display()),
    })?;
    let _ = CA.set(pem);
    Ok(())
}

/// A reqwest client builder that trusts the CA file too.
pub fn reqwest(builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    match CA.get().and_then(|pem| reqwest::Certificate::from_pem(pem).ok()) {
        Some(ca) => builder.add_root_certificate(ca),
        None => builder,
    }
}

/// The endpoint with TLS when `target` is `https://`: ALPN h2, the system's roots and the CA file.
pub fn grpc(
    endpoint: tonic::transport::Endpoint,
    target: &str,
) -> Result<tonic::transport::Endpoint, tonic::transport::Error> {
    if !target.starts_with("https://") {
        return Ok(endpoint);
    }
    let mut config = tonic::transport::ClientTlsConfig::new().with_native_roots();
    if let Some(pem) = CA.get() {
        config = config.ca_certificate(tonic::transport::Certificate::from_pem(pem));
    }
    endpoint.tls_config(config)
}

/// Whether a credential sent to `target` would cross the network unencrypted: an `http://` URL
/// whose host is not this machine (loopback addresses and `localhost` are local, TLS or not).
/// Unparseable targets are left to the call to report.
pub fn key_would_travel_in_clear(target: &str) -> bool {
    let Ok(uri) = target.parse::<http::Uri>() else { return false };
    if uri.scheme_str() != Some("http") {
        return false;
    }
    let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let local =
        host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    !local
}

#[cfg(test)]
mod plaintext_tests {
    use super::key_would_travel_in_clear as clear;

    #[test]
    fn only_plain_http_off_this_machine_is_in_clear() {
        for local in ["http://127.0.0.1:8000", "http://127.1.2.3", "http://localhost:8000", "http://[::1]:50051"] {
            assert!(!clear(local), "{local}");
        }
        for tls in ["https://api.example.com", "https://10.0.0.5:8443"] {
            assert!(!clear(tls), "{tls}");
        }
        for remote in [
            "http://api.example.com",
            "http://10.0.0.5:50051",
            "http://[2001:db8::1]:80",
            "http://LB-123.elb.amazonaws.com",
        ] {
            assert!(clear(remote), "{remote}");
        }
    }
}
