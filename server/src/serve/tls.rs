//! Optional TLS on the REST and gRPC listeners (rustls, TLS 1.2 and 1.3 only, ALPN `h2` and
//! `http/1.1`): encryption from the load balancer to the instance and for internal gRPC clients.
//! The certificate and key files are read again by the upkeep loop when they change; a new pair
//! serves new handshakes, established connections keep theirs. A pair that cannot be read or does
//! not match is reported and the one in use stays.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
};

use arc_swap::ArcSwap;
use rustls::{
    ServerConfig,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use tokio_rustls::TlsAcceptor;

/// Why a certificate or key was not taken.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("the private key in {key} does not belong to the certificate in {cert}")]
    Mismatch { cert: PathBuf, key: PathBuf },
}

/// The certificate both listeners present, swapped whole when its files change.
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertifiedKey>,
    /// The files' bytes last taken or refused, so an unchanged pair is not parsed again.
    last: Mutex<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore").field("cert", &self.cert_path).field("key", &self.key_path).finish()
    }
}

impl CertStore {
    /// Reads the pair; at start a pair that cannot be used is a configuration error.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<Self>, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let (cert, key) = (read(cert_path)?, read(key_path)?);
        let certified = certified(&provider, cert_path, &cert, key_path, &key)?;
        Ok(Arc::new(Self {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            provider,
            current: ArcSwap::from_pointee(certified),
            last: Mutex::new((cert, key)),
        }))
    }

    /// Takes the files if they changed. `Ok(true)`: a new certificate serves new handshakes.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let (cert, key) = (read(&self.cert_path)?, read(&self.key_path)?);
        {
            let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            if last.0 == cert && last.1 == key {
                return Ok(false);
            }
            *last = (cert.clone(), key.clone());
        }
        let certified = certified(&self.provider, &self.cert_path, &cert, &self.key_path, &key)?;
        self.current.store(Arc::new(certified));
        Ok(true)
    }

    /// [`reload`](Self::reload), with what happened logged.
    pub fn reload_and_report(&self) {
        match self.reload() {
            Ok(true) => tracing::info!(cert = %self.cert_path.display(), "TLS certificate reloaded"),
            Ok(false) => {}
            // A certificate renewed in two writes (cert, then key) mismatches for a moment: the
            // next read takes the pair.
            Err(error) => tracing::error!(%error, "TLS certificate not taken; the one in use stays"),
        }
    }

    /// The acceptor both listeners use: TLS 1.2 and 1.3, ALPN `h2` then `http/1.1`.
    #[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
    pub fn acceptor(self: &Arc<Self>) -> TlsAcceptor {
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("aws-lc-rs supports TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        TlsAcceptor::from(Arc::new(config))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_owned(), source })
}

fn certified(
    provider: &CryptoProvider,
    cert_path: &Path,
    cert: &[u8],
    key_path: &Path,
    key: &[u8],
) -> Result<CertifiedKey, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert).filter_map(Result::ok).collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: cert_path.to_owned() });
    }
    // Fixed messages: a PEM parser's error can quote the file's bytes, and these are a private key.
    let key_error = |reason: &str| TlsError::Key { path: key_path.to_owned(), reason: reason.to_owned() };
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| {
        key_error(match e {
            rustls::pki_types::pem::Error::NoItemsFound => "no PEM private key block",
            _ => "malformed PEM (a lost line break or a damaged BEGIN/END line?)",
        })
    })?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|_| key_error("the key is not a supported RSA, ECDSA or Ed25519 key"))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|_| TlsError::Mismatch { cert: cert_path.to_owned(), key: key_path.to_owned() })?;
    Ok(certified)
}
