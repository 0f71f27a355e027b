//! TLS on both listeners with certificates made here (rcgen): REST over HTTP/1.1 and h2, gRPC over
//! h2, plaintext refused, and a certificate reloaded without dropping established connections.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use candidates_api::v1::{GetCandidateRequest, PutCandidateRequest, candidate_service_client::CandidateServiceClient};
use common::TestServer;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};

struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "test CA");
        Self { ca: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap() }
    }

    /// A leaf for 127.0.0.1 and localhost named `name`: (cert PEM, key PEM, cert DER).
    fn leaf(&self, name: &str) -> (String, String, CertificateDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.signed_by(&key, &self.ca).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().clone())
    }

    fn write(&self, dir: &Path, name: &str) -> CertificateDer<'static> {
        let (cert, key, der) = self.leaf(name);
        // Written to new files and renamed over the old ones, as a renewal tool does.
        for (file, text) in [("tls.crt", cert), ("tls.key", key)] {
            std::fs::write(dir.join(format!("{file}.new")), text).unwrap();
            std::fs::rename(dir.join(format!("{file}.new")), dir.join(file)).unwrap();
        }
        der
    }
}

fn client_config(pki: &Pki, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A TLS connection to `addr`: its negotiated ALPN and the certificate the server presented.
async fn handshake(
    pki: &Pki,
    addr: std::net::SocketAddr,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(client_config(pki, alpn));
    connector.connect(ServerName::try_from("127.0.0.1").unwrap(), tcp).await.unwrap()
}

fn server_with_tls(dir: &Path) -> TestServer {
    let (cert, key) = (dir.join("tls.crt").display().to_string(), dir.join("tls.key").display().to_string());
    TestServer::spawn(&["--tls-cert", &cert, "--tls-key", &key])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_and_grpc_over_tls_on_both_protocols() {
    let (pki, dir) = (Pki::new(), tempfile::tempdir().unwrap());
    pki.write(dir.path(), "v1");
    let server = server_with_tls(dir.path());
    let ca = reqwest::Certificate::from_pem(pki.ca.pem().as_bytes()).unwrap();

    // REST over HTTP/1.1 and over h2 (ALPN).
    for (http1, version) in [(true, http::Version::HTTP_11), (false, http::Version::HTTP_2)] {
        let mut builder = reqwest::Client::builder().add_root_certificate(ca.clone()).no_proxy();
        if http1 {
            builder = builder.http1_only();
        }
        let client = builder.build().unwrap();
        let response =
            client.post(format!("https://127.0.0.1:{}/candidate/alice", server.http.port())).send().await.unwrap();
        assert_eq!((response.status().as_u16(), response.version()), (200, version));
        let response = client.get(format!("https://localhost:{}/gtg", server.http.port())).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    // The ALPN the server offers: h2 first.
    let tls = handshake(&pki, server.http, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));

    // gRPC over h2 with TLS (a tonic client with the CA).
    let endpoint = tonic::transport::Channel::from_shared(format!("https://127.0.0.1:{}", server.grpc.port()))
        .unwrap()
        .tls_config(
            tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(pki.ca.pem())),
        )
        .unwrap();
    let mut client = CandidateServiceClient::new(endpoint.connect().await.unwrap());
    client.put_candidate(PutCandidateRequest { name: "bob".into() }).await.unwrap();
    let got = client.get_candidate(GetCandidateRequest { name: "alice".into() }).await.unwrap().into_inner();
    assert_eq!(got.name, "alice");

    // No plaintext on a TLS listener: a plain HTTP request gets no HTTP answer.
    let plain = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build().unwrap();
    assert!(plain.get(server.url("/gtg")).send().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_serves_new_connections_and_old_ones_stay() {
    let (pki, dir) = (Pki::new(), tempfile::tempdir().unwrap());
    let first = pki.write(dir.path(), "v1");
    let server = server_with_tls(dir.path());

    // An h2 connection made before the renewal, kept open across it.
    let tls = handshake(&pki, server.http, &[b"h2"]).await;
    assert_eq!(tls.get_ref().1.peer_certificates().unwrap()[0], first);
    let (mut old, connection) = hyper::client::conn::http2::handshake::<_, _, http_body_util::Empty<bytes::Bytes>>(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let gtg = || {
        http::Request::get(format!("https://127.0.0.1:{}/gtg", server.http.port()))
            .body(http_body_util::Empty::new())
            .unwrap()
    };
    assert_eq!(old.send_request(gtg()).await.unwrap().status(), 200);

    let second = pki.write(dir.path(), "v2");
    let started = Instant::now();
    loop {
        let tls = handshake(&pki, server.http, &[b"h2"]).await;
        if tls.get_ref().1.peer_certificates().unwrap()[0] == second {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "the renewed certificate was not taken");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("renewed certificate served {:?} after the rename", started.elapsed());
    // The connection from before the renewal still serves requests.
    assert_eq!(old.send_request(gtg()).await.unwrap().status(), 200);
    assert!(server.log_lines().iter().any(|l| l.contains("TLS certificate reloaded")));

    // A key that does not match its certificate is refused; the certificate in use stays.
    let (cert, _, _) = pki.leaf("v3");
    let (_, other_key, _) = pki.leaf("other");
    std::fs::write(dir.path().join("tls.crt"), cert).unwrap();
    std::fs::write(dir.path().join("tls.key"), other_key).unwrap();
    let started = Instant::now();
    while !server.log_lines().iter().any(|l| l.contains("TLS certificate not taken")) {
        assert!(started.elapsed() < Duration::from_secs(15), "the mismatched pair was not reported");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let tls = handshake(&pki, server.http, &[b"h2"]).await;
    assert_eq!(tls.get_ref().1.peer_certificates().unwrap()[0], second);
}

#[test]
fn a_bad_certificate_at_start_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tls.crt"), "not a certificate").unwrap();
    std::fs::write(dir.path().join("tls.key"), "not a key").unwrap();
    let (cert, key) =
        (dir.path().join("tls.crt").display().to_string(), dir.path().join("tls.key").display().to_string());
    let output = common::server_command(dir.path(), &["--tls-cert", &cert, "--tls-key", &key]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string() + &String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success());
    assert!(stderr.contains("holds no PEM certificate"), "{stderr}");
    // A key whose line breaks were lost: refused without quoting its bytes.
    let (leaf, key_pem, _) = Pki::new().leaf("flat");
    std::fs::write(dir.path().join("tls.crt"), leaf).unwrap();
    let flat: String = key_pem.lines().collect();
    std::fs::write(dir.path().join("tls.key"), &flat).unwrap();
    let output = common::server_command(dir.path(), &["--tls-cert", &cert, "--tls-key", &key]).output().unwrap();
    let all = String::from_utf8_lossy(&output.stderr).to_string() + &String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success() && all.contains("malformed PEM"), "{all}");
    let body = flat.trim_start_matches("-----BEGIN PRIVATE KEY-----");
    assert!(!all.contains(&body[..40]) && !all.contains("[45, 45"), "the key's bytes in the message: {all}");
    let output = common::server_command(dir.path(), &["--tls-cert", &cert]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "--tls-cert without --tls-key is a usage error");
}
