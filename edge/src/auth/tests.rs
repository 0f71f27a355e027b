use std::io::Write;

use candidates_api::api_key;
use http::HeaderValue;

use super::*;

fn headers(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(http::header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
    headers
}

struct Fixture {
    _dir: tempfile::TempDir,
    ring: Arc<KeyRing>,
    read: String,
    write: String,
    both: String,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (read, write, both) = (api_key::mint().unwrap(), api_key::mint().unwrap(), api_key::mint().unwrap());
    let path = dir.path().join("keys");
    std::fs::write(
        &path,
        format!(
            "# comment\n\n{} candidates.read reader\n{} candidates.write writer\n{}   candidates.read,candidates.write  both\n",
            api_key::digest_hex(&read),
            api_key::digest_hex(&write),
            api_key::digest_hex(&both)
        ),
    )
    .unwrap();
    let ring = Arc::new(KeyRing::new(&path));
    assert_eq!(ring.reload().await.unwrap(), Some(3));
    Fixture { _dir: dir, ring, read, write, both }
}

#[tokio::test]
async fn the_policy_matrix() {
    let f = fixture().await;
    let anon = HeaderMap::new();
    let bearer = |key: &str| headers(&format!("Bearer {key}"));
    let revoked = api_key::mint().unwrap();
    for (policy, access, who, expected) in [
        (Policy::OPEN, Access::Write, anon.clone(), Ok(())),
        (Policy::GUARDED_WRITES, Access::Read, anon.clone(), Ok(())),
        (Policy::GUARDED_WRITES, Access::Write, anon.clone(), Err(AuthError::Missing)),
        (Policy::GUARDED_WRITES, Access::Write, bearer(&f.read), Err(AuthError::Forbidden(Access::Write))),
        (Policy::GUARDED_WRITES, Access::Write, bearer(&f.write), Ok(())),
        (Policy::GUARDED_WRITES, Access::Write, bearer(&f.both), Ok(())),
        (Policy::GUARDED_WRITES, Access::Read, bearer(&revoked), Err(AuthError::UnknownKey)),
        (Policy::GUARDED_WRITES, Access::Read, bearer("not-a-key"), Err(AuthError::UnknownToken)),
        (Policy::GUARDED_WRITES, Access::Read, headers("Basic dXNlcjpwYXNz"), Err(AuthError::Malformed)),
        (Policy::GUARDED_WRITES, Access::Read, headers("Bearer"), Err(AuthError::Malformed)),
        (Policy::GUARDED_WRITES, Access::Read, headers("Bearer a b"), Err(AuthError::Malformed)),
        (Policy { read: Rule::Authenticated, write: Rule::Scope }, Access::Read, anon.clone(), Err(AuthError::Missing)),
        (Policy { read: Rule::Authenticated, write: Rule::Scope }, Access::Read, bearer(&f.write), Ok(())),
        (
            Policy { read: Rule::Scope, write: Rule::Scope },
            Access::Read,
            bearer(&f.write),
            Err(AuthError::Forbidden(Access::Read)),
        ),
        (Policy { read: Rule::Scope, write: Rule::Scope }, Access::Read, bearer(&f.read), Ok(())),
    ] {
        let auth = Auth::new(policy, Some(f.ring.clone()), None);
        let got = auth.admit(&who, access).await.map(|_| ());
        assert_eq!(got, expected, "{policy:?} {access:?} {who:?}");
    }
    // The scheme is case-insensitive (RFC 7235).
    let auth = Auth::new(Policy::GUARDED_WRITES, Some(f.ring.clone()), None);
    assert!(auth.admit(&headers(&format!("bearer {}", f.write)), Access::Write).await.is_ok());
}

#[tokio::test]
async fn with_no_credentials_configured_a_credential_is_ignored_as_before() {
    let auth = Auth::open();
    assert!(matches!(auth.authenticate(&HeaderMap::new()).await, Ok(Caller::Anonymous)));
    let key = api_key::mint().unwrap();
    assert!(matches!(auth.authenticate(&headers(&format!("Bearer {key}"))).await, Ok(Caller::Anonymous)));
    assert!(matches!(auth.authenticate(&headers("Basic eA==")).await, Ok(Caller::Anonymous)));
}

#[tokio::test]
async fn with_keys_only_a_jwt_is_not_a_token_this_server_accepts() {
    let f = fixture().await;
    let auth = Auth::new(Policy::GUARDED_WRITES, Some(f.ring.clone()), None);
    let error = auth.authenticate(&headers("Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln")).await.unwrap_err();
    assert_eq!(error, AuthError::UnknownToken);
}

#[test]
fn statuses_and_challenges_never_echo_the_credential() {
    for (error, code, challenge) in [
        (AuthError::Missing, Code::Unauthenticated, "Bearer"),
        (AuthError::Malformed, Code::Unauthenticated, "Bearer error=\"invalid_request\""),
        (AuthError::UnknownKey, Code::Unauthenticated, "Bearer error=\"invalid_token\""),
        (AuthError::UnknownToken, Code::Unauthenticated, "Bearer error=\"invalid_token\""),
        (
            AuthError::Forbidden(Access::Write),
            Code::PermissionDenied,
            "Bearer error=\"insufficient_scope\", scope=\"candidates.write\"",
        ),
    ] {
        let status = Status::from(error);
        assert_eq!(status.code(), code);
        assert_eq!(status.metadata().get(CHALLENGE).unwrap(), challenge);
        assert!(AuthError::REASONS.contains(&error.reason()));
    }
}

#[tokio::test]
async fn a_changed_file_is_taken_and_a_bad_one_leaves_the_keys_in_use() {
    let f = fixture().await;
    assert_eq!(f.ring.reload().await.unwrap(), None, "unchanged file");
    let path = f.ring.path().to_owned();
    let principal = f.ring.find(&f.write).unwrap();
    assert_eq!((principal.name.as_str(), principal.scopes), ("writer", Scopes { read: false, write: true }));

    // Revoke `read`, keep the others.
    let keep = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.contains("reader"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&path, &keep).unwrap();
    assert_eq!(f.ring.reload().await.unwrap(), Some(2));
    assert!(f.ring.find(&f.read).is_none());
    assert!(f.ring.find(&f.write).is_some());

    // A key pasted instead of its digest: refused, not echoed, the keys in use stay.
    let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    writeln!(file, "\n{} candidates.read oops", f.read).unwrap();
    let error = f.ring.reload().await.unwrap_err().to_string();
    assert!(error.contains("SHA-256") && !error.contains(&f.read), "{error}");
    assert_eq!(f.ring.len(), 2);
    assert!(f.ring.find(&f.write).is_some());
}

#[tokio::test]
async fn bad_lines_are_refused_with_their_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    let digest = api_key::digest_hex("x");
    for (content, expect) in [
        (format!("{digest} candidates.admin a\n"), "line 1: scopes"),
        (format!("\n{digest} candidates.read\n"), "line 2: expected"),
        (format!("{digest} candidates.read a b\n"), "line 1: expected"),
        (format!("{digest} candidates.read na/me\n"), "line 1: a key name"),
        (format!("{digest} candidates.read a\n{digest} candidates.write b\n"), "line 2: this digest"),
        (format!("+{} candidates.read a\n", &digest[1..]), "line 1: the first field"),
    ] {
        std::fs::write(&path, &content).unwrap();
        let ring = KeyRing::new(&path);
        let error = ring.reload().await.unwrap_err().to_string();
        assert!(error.contains(expect), "{content:?}: {error}");
        assert!(ring.is_empty());
    }
    let missing = KeyRing::new(dir.path().join("absent"));
    assert!(matches!(missing.reload().await, Err(keys::KeyFileError::Read { .. })));
}
