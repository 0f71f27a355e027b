//! OIDC bearer tokens against the real binary and a local issuer (an axum JWKS server in this
//! process, keys made here with aws-lc-rs): a good RS256 and ES256 token on both listeners, and
//! every way a token must fail, with its exact status and message; a flood of unknown key ids
//! costing one JWKS fetch per floor; the issuer down with a warm cache; its keys rotated.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use aws_lc_rs::{
    rand::SystemRandom,
    rsa::{KeySize, PublicKeyComponents},
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use candidates_api::v1::{PutCandidateRequest, candidate_service_client::CandidateServiceClient};
use common::{TestServer, http};
use serde_json::{Value, json};
use tonic::{Code, Request};

const AUDIENCE: &str = "candidates-api";

/// A signing key of the test issuer.
enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

impl Signer {
    fn rsa() -> Self {
        Self::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).unwrap())
    }
    fn ec() -> Self {
        Self::Ec(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
    }
    fn alg(&self) -> &'static str {
        match self {
            Self::Rsa(_) => "RS256",
            Self::Ec(_) => "ES256",
        }
    }
    fn jwk(&self, kid: &str) -> Value {
        match self {
            Self::Rsa(key) => {
                let parts = PublicKeyComponents::<Vec<u8>>::from(key.public_key());
                json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": B64.encode(parts.n), "e": B64.encode(parts.e)})
            }
            Self::Ec(key) => {
                let point = key.public_key().as_ref();
                json!({"kty": "EC", "kid": kid, "crv": "P-256", "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65])})
            }
        }
    }
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::Rsa(key) => {
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut signature).unwrap();
                signature
            }
            Self::Ec(key) => key.sign(&SystemRandom::new(), message).unwrap().as_ref().to_vec(),
        }
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A compact JWT with `header` and `claims`, signed by `sign` over `header.claims`.
fn token(header: Value, claims: Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let message = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
    let signature = sign(message.as_bytes());
    format!("{message}.{}", B64.encode(signature))
}

/// The local issuer: discovery and JWKS, a fetch counter and a switch that takes it down.
struct Issuer {
    addr: SocketAddr,
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

impl Issuer {
    async fn start(keys: Vec<Value>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let jwks = Arc::new(Mutex::new(json!({ "keys": keys })));
        let (fetches, down) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let issuer = format!("http://{addr}");
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || {
                    let issuer = issuer.clone();
                    async move { axum::Json(json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")})) }
                }),
            )
            .route(
                "/jwks",
                axum::routing::get({
                    let (jwks, fetches, down) = (jwks.clone(), fetches.clone(), down.clone());
                    move || {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        let answer = if down.load(Ordering::SeqCst) {
                            Err(http::StatusCode::SERVICE_UNAVAILABLE)
                        } else {
                            Ok(axum::Json(jwks.lock().unwrap().clone()))
                        };
                        async move { answer }
                    }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, jwks, fetches, down }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn claims(&self, scope: &str) -> Value {
        json!({"iss": self.url(), "aud": AUDIENCE, "sub": "svc-1@example", "exp": now() + 300, "iat": now(), "scope": scope})
    }
}

fn server(issuer: &Issuer, extra: &[&str]) -> TestServer {
    let url = issuer.url();
    let mut args = vec!["--oidc-issuer", &url, "--oidc-audience", AUDIENCE, "--auth-read", "scope"];
    args.extend_from_slice(extra);
    TestServer::spawn(&args)
}

/// REST PUT and gRPC PutCandidate with `token`: (HTTP status, its message), (gRPC code, message).
async fn put(server: &TestServer, token: &str) -> ((u16, String), (Code, String)) {
    let response = http()
        .post(server.url("/candidate/alice"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    let rest = (status, body["message"].as_str().unwrap_or_default().to_owned());
    let mut client = CandidateServiceClient::new(server.grpc_channel().await);
    let mut request = Request::new(PutCandidateRequest { name: "alice".into() });
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let grpc = match client.put_candidate(request).await {
        Ok(_) => (Code::Ok, String::new()),
        Err(status) => (status.code(), status.message().to_owned()),
    };
    (rest, grpc)
}

async fn refused(server: &TestServer, token: &str, code: Code, message: &str, case: &str) {
    let ((status, rest_message), (grpc_code, grpc_message)) = put(server, token).await;
    let want_status = match code {
        Code::Unauthenticated => 401,
        Code::PermissionDenied => 403,
        Code::Unavailable => 503,
        _ => unreachable!(),
    };
    assert_eq!((status, rest_message.as_str()), (want_status, message), "REST: {case}");
    assert_eq!((grpc_code, grpc_message.as_str()), (code, message), "gRPC: {case}");
}

const INVALID_JWT: &str = "the bearer token is not a valid JWT (shape, key id or signature)";
const BAD_ALG: &str = "the bearer token's algorithm is not accepted (RS256 and ES256 only)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_judged_on_both_listeners() {
    let (rsa, ec, stranger) = (Signer::rsa(), Signer::ec(), Signer::rsa());
    let issuer = Issuer::start(vec![rsa.jwk("rsa-1"), ec.jwk("ec-1")]).await;
    let server = server(&issuer, &[]);
    let header = |signer: &Signer, kid: &str| json!({"alg": signer.alg(), "typ": "JWT", "kid": kid});
    let good = |signer: &Signer, kid: &str, claims: Value| token(header(signer, kid), claims, |m| signer.sign(m));

    // Good tokens, both algorithms, both listeners.
    for (signer, kid) in [(&rsa, "rsa-1"), (&ec, "ec-1")] {
        let ((status, message), (code, grpc_message)) =
            put(&server, &good(signer, kid, issuer.claims("openid candidates.write"))).await;
        assert_eq!((status, code), (200, Code::Ok), "{kid}: {message} / {grpc_message}");
    }
    // A valid token without the write scope: 403.
    let read_only = good(&rsa, "rsa-1", issuer.claims("candidates.read"));
    refused(
        &server,
        &read_only,
        Code::PermissionDenied,
        "the credential does not hold the scope this operation needs",
        "read scope writes",
    )
    .await;
    // ... which reads (the read policy here is `scope`).
    let get = http().get(server.url("/candidate/alice")).header("authorization", format!("Bearer {read_only}"));
    assert_eq!(get.send().await.unwrap().status(), 200);

    let mut claims = issuer.claims("candidates.write");
    claims["exp"] = json!(now() - 120);
    refused(
        &server,
        &good(&rsa, "rsa-1", claims),
        Code::Unauthenticated,
        "the bearer token has expired or is not valid yet",
        "expired",
    )
    .await;
    let mut claims = issuer.claims("candidates.write");
    claims["exp"] = json!(now() - 30);
    let ((status, _), _) = put(&server, &good(&rsa, "rsa-1", claims)).await;
    assert_eq!(status, 200, "30 s past exp is within the 60 s clock skew");
    let mut claims = issuer.claims("candidates.write");
    claims["nbf"] = json!(now() + 600);
    refused(
        &server,
        &good(&rsa, "rsa-1", claims),
        Code::Unauthenticated,
        "the bearer token has expired or is not valid yet",
        "not yet valid",
    )
    .await;
    let mut claims = issuer.claims("candidates.write");
    claims.as_object_mut().unwrap().remove("exp");
    refused(&server, &good(&rsa, "rsa-1", claims), Code::Unauthenticated, INVALID_JWT, "no exp").await;
    let mut claims = issuer.claims("candidates.write");
    claims["aud"] = json!("another-api");
    refused(
        &server,
        &good(&rsa, "rsa-1", claims),
        Code::Unauthenticated,
        "the bearer token is not meant for this service (audience)",
        "wrong audience",
    )
    .await;
    let mut claims = issuer.claims("candidates.write");
    claims["iss"] = json!("https://evil.example");
    refused(
        &server,
        &good(&rsa, "rsa-1", claims),
        Code::Unauthenticated,
        "the bearer token's issuer is not the one this server trusts",
        "wrong issuer",
    )
    .await;

    // `iss` as an array holding the issuer (RFC 7519: one string).
    let mut claims = issuer.claims("candidates.write");
    claims["iss"] = json!(["https://evil.example", issuer.url()]);
    refused(
        &server,
        &good(&rsa, "rsa-1", claims),
        Code::Unauthenticated,
        "the bearer token's issuer is not the one this server trusts",
        "iss array",
    )
    .await;

    // alg none: no signature at all.
    let none = token(json!({"alg": "none", "kid": "rsa-1"}), issuer.claims("candidates.write"), |_| Vec::new());
    refused(&server, &none, Code::Unauthenticated, BAD_ALG, "alg none").await;
    // HS256 with the RSA public key (its JWK text) as the HMAC secret: the key-confusion attack.
    let secret = rsa.jwk("rsa-1").to_string();
    let confused = token(json!({"alg": "HS256", "kid": "rsa-1"}), issuer.claims("candidates.write"), |m| {
        aws_lc_rs::hmac::sign(&aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes()), m)
            .as_ref()
            .to_vec()
    });
    refused(&server, &confused, Code::Unauthenticated, BAD_ALG, "HS256 with the public key").await;
    // RS256 claimed for the EC key's kid.
    let mismatched = token(header(&rsa, "ec-1"), issuer.claims("candidates.write"), |m| rsa.sign(m));
    refused(&server, &mismatched, Code::Unauthenticated, BAD_ALG, "RS256 header, EC key").await;
    // Signed by a key the issuer does not have, under a known kid.
    let forged = good(&stranger, "rsa-1", issuer.claims("candidates.write"));
    refused(&server, &forged, Code::Unauthenticated, INVALID_JWT, "forged signature").await;
    // Tampered claims: a read token given the write scope after signing.
    let mut parts: Vec<String> = read_only.split('.').map(str::to_owned).collect();
    parts[1] = B64.encode(issuer.claims("candidates.write").to_string());
    refused(&server, &parts.join("."), Code::Unauthenticated, INVALID_JWT, "tampered claims").await;
    // No kid.
    let no_kid = token(json!({"alg": "RS256"}), issuer.claims("candidates.write"), |m| rsa.sign(m));
    refused(&server, &no_kid, Code::Unauthenticated, INVALID_JWT, "no kid").await;
    refused(&server, "a.b.c", Code::Unauthenticated, INVALID_JWT, "garbage").await;

    // No token or key appears in the server's lines.
    let logs = server.log_lines().join("\n");
    for secret in [&read_only, &forged, &confused] {
        let signature = secret.rsplit('.').next().unwrap();
        assert!(!logs.contains(signature), "a token in the logs");
    }
    let metrics = http().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for reason in ["expired", "wrong_audience", "wrong_issuer", "bad_algorithm", "invalid_jwt", "insufficient_scope"] {
        assert!(metrics.contains(&format!("auth_failures_total{{reason=\"{reason}\"}}")), "{reason} not counted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kids_cost_one_fetch_per_floor_and_a_warm_cache_outlives_the_issuer() {
    let (rsa, rotated) = (Signer::rsa(), Signer::rsa());
    let issuer = Issuer::start(vec![rsa.jwk("rsa-1")]).await;
    let server = server(&issuer, &["--oidc-jwks-refresh-floor", "2s"]);
    let sign = |signer: &Signer, kid: &str| {
        token(json!({"alg": "RS256", "kid": kid}), issuer.claims("candidates.write"), |m| signer.sign(m))
    };
    let ((status, _), _) = put(&server, &sign(&rsa, "rsa-1")).await;
    assert_eq!(status, 200);
    let at_start = issuer.fetches.load(Ordering::SeqCst);
    assert_eq!(at_start, 1, "one fetch at start");

    // 200 tokens with made-up kids within the floor: at most one more fetch.
    let unknown = "the bearer token's signing key is unknown to this server";
    for i in 0..100 {
        refused(&server, &sign(&rsa, &format!("bogus-{i}")), Code::Unauthenticated, unknown, "bogus kid").await;
    }
    let after_flood = issuer.fetches.load(Ordering::SeqCst);
    assert!(after_flood - at_start <= 1, "a flood of unknown kids fetched {} times", after_flood - at_start);

    // The issuer goes down: the cached key keeps working, a new kid cannot be learnt.
    issuer.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let ((status, message), _) = put(&server, &sign(&rsa, "rsa-1")).await;
    assert_eq!(status, 200, "{message}");
    refused(&server, &sign(&rotated, "rsa-2"), Code::Unauthenticated, unknown, "new kid, issuer down").await;

    // The issuer is back with a rotated key: a token with its kid makes the next fetch learn it.
    issuer.jwks.lock().unwrap()["keys"] = json!([rsa.jwk("rsa-1"), rotated.jwk("rsa-2")]);
    issuer.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let ((status, message), (code, _)) = put(&server, &sign(&rotated, "rsa-2")).await;
    assert_eq!((status, code), (200, Code::Ok), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_down_at_boot_does_not_stop_the_instance() {
    let rsa = Signer::rsa();
    let issuer = Issuer::start(vec![rsa.jwk("rsa-1")]).await;
    issuer.down.store(true, Ordering::SeqCst);
    let server = server(&issuer, &["--oidc-jwks-refresh-floor", "1s"]);
    assert_eq!(http().get(server.url("/gtg")).send().await.unwrap().status(), 200, "ready without the issuer");
    let signed = token(json!({"alg": "RS256", "kid": "rsa-1"}), issuer.claims("candidates.write"), |m| rsa.sign(m));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    refused(
        &server,
        &signed,
        Code::Unavailable,
        "the issuer's signing keys cannot be fetched now; retry later",
        "cold cache, issuer down",
    )
    .await;
    issuer.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let ((status, message), _) = put(&server, &signed).await;
    assert_eq!(status, 200, "{message}");
}
