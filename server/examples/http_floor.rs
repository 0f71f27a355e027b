//! The floor for a REST answer on this stack: hyper's own server (hyper-util's auto builder, as the
//! server's accept loop uses) answering `GET /gtg` with an empty 200 and `GET /candidate/{name}`
//! with the candidate's JSON, with none of ours (no router, edge, log line, metrics, store), on
//! the same allocator and scheduler as the server (current-thread when pinned to one core;
//! `FLOOR_RUNTIME=multi_thread` for one worker of the work-stealing one). Run beside the
//! server by `bench/side_by_side.py`, so that each REST row is read against what hyper itself
//! costs. Not a part of the product.
//!
//! `cargo run --release -p candidates-server --example http_floor -- 127.0.0.1:8080`

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming, header};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto::Builder,
};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path();
    let response = if path == "/gtg" {
        Response::builder().header(header::CONTENT_TYPE, "text/plain; charset=utf-8").body(Full::new(Bytes::new()))
    } else if let Some(name) = path.strip_prefix("/candidate/") {
        Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(format!("{{\"CandidateName\":\"{name}\"}}"))))
    } else {
        Response::builder().status(404).body(Full::new(Bytes::new()))
    };
    Ok(response.unwrap_or_default())
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let runtime = if std::env::var("FLOOR_RUNTIME").is_ok_and(|v| v == "multi_thread") {
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?
    } else {
        candidates_server::runtime::Scheduler::for_workers(None).build()?
    };
    runtime.block_on(serve(addr))
}

async fn serve(addr: String) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let builder = Builder::new(TokioExecutor::new());
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let builder = builder.clone();
        tokio::spawn(async move {
            let _ = builder.serve_connection(TokioIo::new(stream), hyper::service::service_fn(answer)).await;
        });
    }
}
