//! The Cloud Run image (serverless/cloud-run/build-image.py) built from this test's binary: the OCI
//! layout is checked (every blob's digest and size, media types, the config's user, entrypoint,
//! environment and diff id, the layer's exact contents: no shell, nothing writable by the user but
//! its home and /tmp), the build is reproducible, and the layer, unpacked into a root filesystem,
//! runs: the binary from that root (chroot as the image's user when the test runs as root, else
//! through the image's own dynamic loader and libraries), configured by the image's environment
//! alone plus Cloud Run's `PORT`, passes candidatectl check's REST and gRPC contract on that one
//! port, and stops at once on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::BTreeMap,
    io::Read,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{BIN, http, port_or_free};
use serde_json::Value;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../serverless/cloud-run/build-image.py");

fn sha256_hex(data: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn build(layout: &Path, archive: Option<&Path>) -> Value {
    let mut command = Command::new("python3");
    command.arg(SCRIPT).args(["--binary", BIN, "--gzip-level", "1", "--output"]).arg(layout);
    if let Some(archive) = archive {
        command.arg("--archive").arg(archive);
    }
    let out = command.env("SOURCE_DATE_EPOCH", "1700000000").output().expect("run python3");
    assert!(out.status.success(), "build-image.py: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The blob a descriptor names, after checking its size and digest.
fn blob(layout: &Path, descriptor: &Value) -> Vec<u8> {
    let digest = descriptor["digest"].as_str().unwrap();
    let hex = digest.strip_prefix("sha256:").expect("sha256 digests");
    let data = std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap();
    assert_eq!(data.len() as u64, descriptor["size"].as_u64().unwrap(), "size of {digest}");
    assert_eq!(sha256_hex(&data), hex, "content of {digest}");
    data
}

/// One tar entry (ustar): enough to check and unpack the layer.
#[derive(Debug)]
struct Entry {
    path: String,
    mode: u32,
    uid: u32,
    gid: u32,
    kind: u8,
    data: Vec<u8>,
}

fn octal(field: &[u8]) -> u64 {
    let text = std::str::from_utf8(field).unwrap().trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() { 0 } else { u64::from_str_radix(text, 8).unwrap() }
}

fn cstr(field: &[u8]) -> String {
    String::from_utf8(field.iter().copied().take_while(|&b| b != 0).collect()).unwrap()
}

fn entries(tar: &[u8]) -> Vec<Entry> {
    let mut found = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() && tar[at..at + 512].iter().any(|&b| b != 0) {
        let header = &tar[at..at + 512];
        assert_eq!(&header[257..262], b"ustar", "ustar headers");
        let (prefix, name) = (cstr(&header[345..500]), cstr(&header[0..100]));
        let path = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let size = octal(&header[124..136]) as usize;
        let data = tar[at + 512..at + 512 + size].to_vec();
        found.push(Entry {
            path: path.trim_end_matches('/').to_owned(),
            mode: octal(&header[100..108]) as u32,
            uid: octal(&header[108..116]) as u32,
            gid: octal(&header[116..124]) as u32,
            kind: header[156],
            data,
        });
        at += 512 + size.div_ceil(512) * 512;
    }
    found
}

/// Unpacks the layer as a container runtime would: modes and numeric owners kept.
fn unpack(entries: &[Entry], root: &Path) {
    for entry in entries {
        let path = root.join(&entry.path);
        match entry.kind {
            b'5' => std::fs::create_dir_all(&path).unwrap(),
            b'0' | 0 => std::fs::write(&path, &entry.data).unwrap(),
            other => panic!("unexpected entry type {} for {}", other as char, entry.path),
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(entry.mode)).unwrap();
        if is_root() {
            std::os::unix::fs::chown(&path, Some(entry.uid), Some(entry.gid)).unwrap();
        }
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .is_some_and(|ids| ids.split_whitespace().next() == Some("0"))
}

struct Image {
    layout: PathBuf,
    manifest: Value,
    config: Value,
    layer: Vec<Entry>,
}

/// Reads and checks the layout: index → manifest → config and layer, every descriptor verified.
fn read_image(layout: &Path) -> Image {
    let oci_layout: Value = serde_json::from_slice(&std::fs::read(layout.join("oci-layout")).unwrap()).unwrap();
    assert_eq!(oci_layout["imageLayoutVersion"], "1.0.0");
    let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1);
    let descriptor = &manifests[0];
    assert_eq!(descriptor["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(descriptor["platform"]["os"], "linux");
    assert_eq!(descriptor["platform"]["architecture"], "amd64");
    assert_eq!(descriptor["annotations"]["org.opencontainers.image.ref.name"], "latest");
    let manifest: Value = serde_json::from_slice(&blob(layout, descriptor)).unwrap();
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(manifest["config"]["mediaType"], "application/vnd.oci.image.config.v1+json");
    let config: Value = serde_json::from_slice(&blob(layout, &manifest["config"])).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "one layer");
    assert_eq!(layers[0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
    let compressed = blob(layout, &layers[0]);
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&compressed[..]).read_to_end(&mut tar).unwrap();
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(config["rootfs"]["diff_ids"], serde_json::json!([format!("sha256:{}", sha256_hex(&tar))]));
    // Nothing in blobs/ that the manifest does not name.
    let mut named: Vec<String> = [descriptor, &manifest["config"], &layers[0]]
        .iter()
        .map(|d| d["digest"].as_str().unwrap().trim_start_matches("sha256:").to_owned())
        .collect();
    named.sort();
    let mut present: Vec<String> = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    present.sort();
    assert_eq!(named, present);
    Image { layout: layout.to_owned(), manifest, config, layer: entries(&tar) }
}

#[test]
fn the_layout_is_valid_minimal_and_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let summary = build(&dir.path().join("a"), Some(&dir.path().join("a.tar")));
    let image = read_image(&dir.path().join("a"));
    let index: Value = serde_json::from_slice(&std::fs::read(image.layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(summary["manifest"], index["manifests"][0]["digest"], "the digest the script prints");

    // The config: a non-root user, the binary as an absolute entrypoint (exec form: no shell), the
    // single-port environment, the port Cloud Run defaults to.
    let config = &image.config;
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["created"], "2023-11-14T22:13:20Z", "from SOURCE_DATE_EPOCH");
    let run = &config["config"];
    assert_eq!(run["User"], "65532:65532");
    assert_eq!(run["Entrypoint"], serde_json::json!(["/usr/local/bin/candidate-server"]));
    assert!(run.get("Cmd").is_none_or(Value::is_null), "no command: the entrypoint takes no shell");
    assert_eq!(run["WorkingDir"], "/home/nonroot");
    assert_eq!(run["ExposedPorts"], serde_json::json!({"8080/tcp": {}}));
    let env: Vec<&str> = run["Env"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for expected in [
        "CANDIDATES_SINGLE_PORT=true",
        "CANDIDATES_HTTP_ADDR=0.0.0.0:8080",
        "CANDIDATES_METRICS_ADDR=127.0.0.1:9090",
        "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
        "CANDIDATES_LOG_FORMAT=json",
    ] {
        assert!(env.contains(&expected), "{expected} in {env:?}");
    }

    // The layer: exactly these files, every one root's and read-only to the user; the user owns
    // only its home; no shell, no other program.
    let files: BTreeMap<&str, &Entry> =
        image.layer.iter().filter(|e| e.kind != b'5').map(|e| (e.path.as_str(), e)).collect();
    let names: Vec<&str> = files.keys().copied().collect();
    assert_eq!(
        names,
        [
            "etc/group",
            "etc/passwd",
            "etc/ssl/certs/ca-certificates.crt",
            "lib/x86_64-linux-gnu/libc.so.6",
            "lib/x86_64-linux-gnu/libgcc_s.so.1",
            "lib/x86_64-linux-gnu/libm.so.6",
            "lib64/ld-linux-x86-64.so.2",
            "usr/local/bin/candidate-server",
        ]
    );
    for entry in &image.layer {
        assert!(entry.kind == b'5' || entry.kind == b'0', "{}: only directories and regular files", entry.path);
        if entry.path == "home/nonroot" {
            assert_eq!((entry.uid, entry.gid, entry.mode), (65532, 65532, 0o755));
        } else if entry.path == "tmp" {
            assert_eq!((entry.uid, entry.mode), (0, 0o1777));
        } else {
            assert_eq!((entry.uid, entry.gid), (0, 0), "{} is root's", entry.path);
            assert_eq!(entry.mode & 0o022, 0, "{} is writable by root only", entry.path);
        }
    }
    assert_eq!(files["usr/local/bin/candidate-server"].data, std::fs::read(BIN).unwrap(), "the binary, unchanged");
    assert_eq!(files["usr/local/bin/candidate-server"].mode, 0o755);
    let passwd = String::from_utf8(files["etc/passwd"].data.clone()).unwrap();
    assert!(passwd.contains("nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin"), "{passwd}");
    assert!(!files.keys().any(|p| p.starts_with("bin/") || p.starts_with("usr/bin/") || p.ends_with("/sh")));
    assert!(!files["etc/ssl/certs/ca-certificates.crt"].data.is_empty());

    // The oci-archive: the layout's files, as they are.
    let archive = entries(&std::fs::read(dir.path().join("a.tar")).unwrap());
    let mut archived: Vec<&str> = archive.iter().filter(|e| e.kind != b'5').map(|e| e.path.as_str()).collect();
    archived.sort_unstable();
    let mut expected = vec!["index.json", "oci-layout"];
    let blobs: Vec<String> = std::fs::read_dir(image.layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| format!("blobs/sha256/{}", e.unwrap().file_name().into_string().unwrap()))
        .collect();
    expected.extend(blobs.iter().map(String::as_str));
    expected.sort_unstable();
    assert_eq!(archived, expected);
    for entry in archive.iter().filter(|e| e.kind != b'5') {
        assert_eq!(entry.data, std::fs::read(image.layout.join(&entry.path)).unwrap(), "{}", entry.path);
    }

    // Reproducible: a second build is the same image, byte for byte.
    build(&dir.path().join("b"), None);
    let again = read_image(&dir.path().join("b"));
    assert_eq!(again.manifest, image.manifest);
    assert_eq!(
        std::fs::read(dir.path().join("a/index.json")).unwrap(),
        std::fs::read(dir.path().join("b/index.json")).unwrap()
    );
}

/// Starts the image's entrypoint from `root` as a container runtime would: the image's user and
/// environment only, plus Cloud Run's `PORT` and what a test needs (a free metrics port, the data
/// directory in the user's home).
fn run_from_root(image: &Image, root: &Path, port: u16) -> Running {
    let run = &image.config["config"];
    let entrypoint: Vec<String> =
        run["Entrypoint"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    let inside = |path: &str| if is_root() { PathBuf::from(path) } else { root.join(path.trim_start_matches('/')) };
    let mut command = if is_root() {
        // By its path: the child's PATH is the image's.
        let chroot = std::env::split_paths(&std::env::var_os("PATH").unwrap())
            .map(|dir| dir.join("chroot"))
            .find(|path| path.is_file())
            .expect("chroot (coreutils) on PATH");
        let mut command = Command::new(chroot);
        command.arg(format!("--userspec={}", run["User"].as_str().unwrap())).arg(root).args(&entrypoint);
        command
    } else {
        // Not root: no chroot, so the image's own loader runs the binary with the image's libraries.
        let mut command = Command::new(root.join("lib64/ld-linux-x86-64.so.2"));
        command.arg("--library-path").arg(root.join("lib/x86_64-linux-gnu")).arg(inside(&entrypoint[0]));
        command.args(&entrypoint[1..]);
        command
    };
    command.env_clear();
    for pair in run["Env"].as_array().unwrap() {
        let (name, value) = pair.as_str().unwrap().split_once('=').unwrap();
        command.env(name, value);
    }
    command
        .env("PORT", port.to_string())
        .env("CANDIDATES_METRICS_ADDR", "127.0.0.1:0")
        .env("CANDIDATES_DATA_DIR", inside("/home/nonroot/candidates-data"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let mut running = Running { child: command.spawn().expect("start the image's entrypoint") };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http_ok(port) {
        assert!(running.child.try_wait().unwrap().is_none(), "the image's candidate-server exited");
        assert!(Instant::now() < deadline, "the image's candidate-server did not answer /gtg");
        std::thread::sleep(Duration::from_millis(20));
    }
    running
}

/// The image's process, killed on drop.
struct Running {
    child: std::process::Child,
}

impl Running {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    #[allow(unsafe_code)] // kill(2): see the SAFETY comment.
    fn terminate(&self) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) }, 0);
    }

    fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "still running after {timeout:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_ok(port: u16) -> bool {
    use std::io::Write;
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.write_all(b"GET /gtg HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_runs_from_its_root_filesystem_and_passes_the_contract_on_port() {
    let dir = tempfile::tempdir().unwrap();
    build(&dir.path().join("image"), None);
    let image = read_image(&dir.path().join("image"));
    let root = dir.path().join("rootfs");
    unpack(&image.layer, &root);
    // The temporary directory is 0700 and root's: the image's user must be able to reach its root.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    let port = port_or_free(0);
    let mut server = run_from_root(&image, &root, port);
    if is_root() {
        let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
        let uid = status.lines().find_map(|l| l.strip_prefix("Uid:")).unwrap();
        assert_eq!(uid.split_whitespace().next(), Some("65532"), "runs as the image's user");
        let exe = std::fs::read_link(format!("/proc/{}/exe", server.pid())).unwrap();
        assert_eq!(exe, root.join("usr/local/bin/candidate-server"), "the image's binary");
    }

    // The whole contract, REST and gRPC (h2c: health, reflection, every RPC), on PORT alone.
    let target = format!("http://127.0.0.1:{port}");
    let args = candidates_clients::check::CheckArgs {
        rest_target: target.clone(),
        grpc_target: target.clone(),
        skip_rest: false,
        skip_grpc: false,
    };
    let credential = candidates_clients::credential::Credential::key(None).unwrap();
    let report = candidates_clients::check::run(Duration::from_secs(10), &args, &credential).await;
    assert!(report.passed >= 20 && report.failed == 0, "{report:?}");
    // Cloud Run with HTTP/2 end to end sends REST as h2c too.
    let h2c = reqwest::Client::builder().no_proxy().http2_prior_knowledge().build().unwrap();
    let answer = h2c.get(format!("{target}/candidates?page_size=1")).send().await.unwrap();
    assert_eq!((answer.version(), answer.status().as_u16()), (reqwest::Version::HTTP_2, 200));
    let details: Value = http().get(format!("{target}/gtg?details")).send().await.unwrap().json().await.unwrap();
    assert_eq!(details["connected"], "true");
    assert!(root.join("home/nonroot/candidates-data").read_dir().unwrap().next().is_some(), "the store is in the home");
    // /metrics is not on the public port (the image puts it on 127.0.0.1:9090, here a free port).
    assert_eq!(http().get(format!("{target}/metrics")).send().await.unwrap().status(), 404);

    // SIGTERM: the image's drain settings stop it well within Cloud Run's 10 s.
    let started = Instant::now();
    server.terminate();
    let status = server.wait(Duration::from_secs(9));
    assert_eq!(status.code(), Some(0), "clean exit");
    assert!(started.elapsed() < Duration::from_secs(9));
}
