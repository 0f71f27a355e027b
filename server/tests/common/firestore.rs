//! The Firestore emulator for tests: the shared one scripts/test.sh starts (FIRESTORE_EMULATOR_HOST,
//! a unique project per store for isolation) and private ones for tests that stop them.

use std::{process::Command, time::Duration};

use candidates_server::store::firestore::{Args as FirestoreConfig, FirestoreStore};

/// The shared emulator's host:port. Without it the client would look for Google credentials, so
/// refuse to go on.
pub fn emulator_host() -> String {
    std::env::var("FIRESTORE_EMULATOR_HOST").unwrap_or_else(|_| {
        panic!("FIRESTORE_EMULATOR_HOST is not set: run the tests through scripts/test.sh, which starts the emulator")
    })
}

pub fn unique_project() -> String {
    format!("test-{}", &uuid::Uuid::new_v4().simple().to_string()[..20])
}

pub fn config(project: &str) -> FirestoreConfig {
    FirestoreConfig { project: Some(project.to_owned()), database: "(default)".into(), collection: "candidates".into() }
}

/// A store on a project of its own (an empty database in the emulator).
pub async fn fresh_store() -> FirestoreStore {
    emulator_host();
    FirestoreStore::connect(&config(&unique_project()), Duration::from_secs(10)).await.expect("connect to the emulator")
}

/// The emulator's REST URL of a document, for writing and reading documents the way other
/// programs (the original Python app) do.
pub fn document_url(host: &str, project: &str, id: &str) -> String {
    format!("http://{host}/v1/projects/{project}/databases/(default)/documents/candidates/{}", id.replace(' ', "%20"))
}

/// A Firestore emulator of the test's own on `port` (0: a free one), killed on drop.
pub struct PrivateEmulator {
    process: super::ChildGuard,
    pub port: u16,
}

/// Whether the emulator on `port` answers `GET /` with 200 (its readiness signal).
fn answers(port: u16) -> bool {
    use std::io::{Read, Write};
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut s| {
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1 200")
    })
}

impl PrivateEmulator {
    pub fn start(port: u16) -> Self {
        let jar =
            std::env::var("CANDIDATES_TEST_FIRESTORE_JAR").expect("CANDIDATES_TEST_FIRESTORE_JAR (scripts/test.sh)");
        let port = super::port_or_free(port);
        let mut cmd = Command::new("java");
        cmd.args(["-Duser.language=en", "-cp", &jar, "com.google.cloud.datastore.emulator.firestore.CloudFirestore"])
            .args(["start", "--host=127.0.0.1", &format!("--port={port}")]);
        let process =
            super::ChildGuard::spawn(cmd, "private Firestore emulator", Duration::from_secs(60), || answers(port));
        Self { process, port }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        self.process.kill();
    }
}
