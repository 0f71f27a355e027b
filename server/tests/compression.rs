//! Negotiated compression against the real binary: gzip and zstd on REST (the streamed listing
//! included) and gRPC (both directions), small answers sent plain, the size limit applied to the
//! decompressed message (a bomb is RESOURCE_EXHAUSTED and costs no memory), and the switch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;

use candidates_api::v1::{GetCandidateRequest, ListCandidatesRequest, PutCandidateRequest};
use common::{TestServer, http};
use prost::Message;
use tonic::codec::CompressionEncoding;

const SERVICE: &str = "/candidates.v1.CandidateService";

async fn seed(server: &TestServer, count: usize) {
    let client = server.grpc_client().await;
    let puts = (0..count).map(|i| {
        let mut client = client.clone();
        async move { client.put_candidate(PutCandidateRequest { name: format!("candidate {i:05}") }).await.unwrap() }
    });
    futures::future::join_all(puts).await;
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

/// A client that shows the wire: no decoding of compressed answers.
fn raw_http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().no_gzip().no_zstd().no_deflate().build().unwrap()
}

async fn rest(server: &TestServer, path: &str, accept: Option<&str>) -> (Option<String>, Vec<u8>) {
    let mut request = raw_http().get(server.url(path));
    if let Some(accept) = accept {
        request = request.header("accept-encoding", accept);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let encoding = response.headers().get("content-encoding").map(|v| v.to_str().unwrap().to_owned());
    (encoding, response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn rest_answers_are_compressed_as_negotiated_and_small_ones_are_not() {
    let server = TestServer::spawn(&[]);
    seed(&server, 3000).await;

    let (none, plain) = rest(&server, "/candidates", None).await;
    assert_eq!(none, None);
    let (gzip, gzipped) = rest(&server, "/candidates", Some("gzip")).await;
    assert_eq!(gzip.as_deref(), Some("gzip"));
    assert_eq!(gunzip(&gzipped), plain, "the streamed listing, gzip");
    let (zstd, zstded) = rest(&server, "/candidates", Some("zstd, gzip;q=0.5")).await;
    assert_eq!(zstd.as_deref(), Some("zstd"));
    assert_eq!(zstd::decode_all(&zstded[..]).unwrap(), plain, "the streamed listing, zstd");
    assert!(
        gzipped.len() * 4 < plain.len() && zstded.len() * 4 < plain.len(),
        "{} {} {}",
        plain.len(),
        gzipped.len(),
        zstded.len()
    );

    // One page (a sized body over the threshold) too; brotli is not offered.
    let (page, _) = rest(&server, "/candidates?page_size=1000", Some("gzip")).await;
    assert_eq!(page.as_deref(), Some("gzip"));
    let (br, _) = rest(&server, "/candidates?page_size=1000", Some("br")).await;
    assert_eq!(br, None);

    // Small answers go out plain whatever is accepted.
    for path in ["/candidate/candidate%2000001", "/gtg?details", "/gtg"] {
        let (encoding, _) = rest(&server, path, Some("gzip, zstd")).await;
        assert_eq!(encoding, None, "{path}");
    }

    let off = TestServer::spawn(&["--compression", "false"]);
    seed(&off, 100).await;
    let (encoding, _) = rest(&off, "/candidates", Some("gzip")).await;
    assert_eq!(encoding, None, "--compression false");
}

/// One unary gRPC call over raw h2 (reqwest), so the test sees the wire: the response's
/// `grpc-encoding` and each message's compressed flag.
async fn raw_grpc(server: &TestServer, method: &str, frame: Vec<u8>, headers: &[(&str, &str)]) -> RawAnswer {
    let client = reqwest::Client::builder().no_proxy().no_gzip().no_zstd().http2_prior_knowledge().build().unwrap();
    let mut request = client
        .post(format!("http://{}{SERVICE}/{method}", server.grpc))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(frame);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    let (encoding, early_status, early_message) =
        (header("grpc-encoding"), header("grpc-status"), header("grpc-message"));
    let body = response.bytes().await.unwrap();
    RawAnswer { encoding, flag: body.first().copied(), status: early_status, message: early_message }
}

#[derive(Debug)]
struct RawAnswer {
    encoding: Option<String>,
    /// The first message's compressed flag.
    flag: Option<u8>,
    /// From a trailers-only answer (reqwest does not expose trailers).
    status: Option<String>,
    message: Option<String>,
}

fn frame(compressed: bool, bytes: &[u8]) -> Vec<u8> {
    [&[u8::from(compressed)][..], &(bytes.len() as u32).to_be_bytes(), bytes].concat()
}

#[tokio::test]
async fn grpc_compresses_both_ways_small_messages_plain() {
    let server = TestServer::spawn(&[]);
    seed(&server, 2000).await;

    // A tonic client that compresses its requests and accepts compressed answers, both encodings.
    for encoding in [CompressionEncoding::Gzip, CompressionEncoding::Zstd] {
        let mut client = server.grpc_client().await.send_compressed(encoding).accept_compressed(encoding);
        let page = client.list_candidates(ListCandidatesRequest { page_size: 1000, page_token: String::new() }).await;
        assert_eq!(page.unwrap().into_inner().candidates.len(), 1000, "{encoding:?}");
        let got = client.get_candidate(GetCandidateRequest { name: "candidate 00007".into() }).await.unwrap();
        assert_eq!(got.into_inner().name, "candidate 00007");
    }

    // On the wire: a large answer compressed as asked, a small one plain.
    let list = ListCandidatesRequest { page_size: 1000, page_token: String::new() }.encode_to_vec();
    for accept in ["gzip", "zstd"] {
        let answer =
            raw_grpc(&server, "ListCandidates", frame(false, &list), &[("grpc-accept-encoding", accept)]).await;
        assert_eq!((answer.encoding.as_deref(), answer.flag), (Some(accept), Some(1)), "{answer:?}");
    }
    let get = GetCandidateRequest { name: "candidate 00007".into() }.encode_to_vec();
    let small = raw_grpc(&server, "GetCandidate", frame(false, &get), &[("grpc-accept-encoding", "gzip")]).await;
    assert_eq!(small.flag, Some(0), "a small answer is plain: {small:?}");
    let none = raw_grpc(&server, "ListCandidates", frame(false, &list), &[]).await;
    assert_eq!((none.encoding, none.flag), (None, Some(0)), "nothing accepted, nothing compressed");

    // An encoding the server does not take: UNIMPLEMENTED, saying which it takes.
    let br = raw_grpc(&server, "GetCandidate", frame(true, &get), &[("grpc-encoding", "br")]).await;
    assert_eq!(br.status.as_deref(), Some("12"), "{br:?}");

    let off = TestServer::spawn(&["--compression", "false"]);
    seed(&off, 1000).await;
    let plain = raw_grpc(&off, "ListCandidates", frame(false, &list), &[("grpc-accept-encoding", "gzip")]).await;
    assert_eq!(plain.flag, Some(0), "--compression false: {plain:?}");
    // Compressed requests are still accepted.
    let mut client = off.grpc_client().await.send_compressed(CompressionEncoding::Gzip);
    client.get_candidate(GetCandidateRequest { name: "candidate 00001".into() }).await.unwrap();
}

fn peak_rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_decompression_bomb_is_resource_exhausted_and_costs_no_memory() {
    let server = TestServer::spawn(&[]);
    // 64 MiB of one character: well under the 64 KiB body limit compressed, a thousand times it
    // decompressed.
    let message = PutCandidateRequest { name: "a".repeat(64 << 20) }.encode_to_vec();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gzip, &message).unwrap();
    let gzip = gzip.finish().unwrap();
    let zstd = zstd::encode_all(&message[..], 19).unwrap();
    assert!(gzip.len() < 64 * 1024 && zstd.len() < 64 * 1024, "{} {}", gzip.len(), zstd.len());

    let before = peak_rss_kib(server.pid());
    for (encoding, bomb) in [("gzip", &gzip), ("zstd", &zstd)] {
        let answer = raw_grpc(&server, "PutCandidate", frame(true, bomb), &[("grpc-encoding", encoding)]).await;
        assert_eq!(answer.status.as_deref(), Some("8"), "{encoding}: {answer:?}");
        assert!(answer.message.unwrap().contains("size%20limit"), "{encoding}");
    }
    let grown = peak_rss_kib(server.pid()).saturating_sub(before);
    assert!(grown < 16 * 1024, "the bombs raised peak memory by {grown} KiB");
    // Nothing was written.
    let response = http().get(server.url("/candidates")).send().await.unwrap();
    assert_eq!(response.status(), 404);
}
