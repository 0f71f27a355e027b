//! The floor for a gRPC call on this stack: tonic's own server (hyper + h2, no layers, no logging,
//! no store) answering `GetCandidate` with a fixed candidate, on the same allocator and scheduler
//! as the server.
//! `bench/pinned.py` runs it beside the real server so that the gRPC row can be read against what
//! tonic itself costs, not only against REST. Not a part of the product.
//!
//! `cargo run --release -p candidates-server --example grpc_floor -- 127.0.0.1:50051`

use candidates_api::v1::{
    self as pb, DeleteCandidateRequest, GetCandidateRequest, GetStatusRequest, ListCandidatesRequest,
    ListCandidatesResponse, PutCandidateRequest,
    candidate_service_server::{CandidateService, CandidateServiceServer},
};
use tonic::{Request, Response, Status};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Fixed;

#[tonic::async_trait]
impl CandidateService for Fixed {
    async fn get_candidate(&self, request: Request<GetCandidateRequest>) -> Result<Response<pb::Candidate>, Status> {
        Ok(Response::new(pb::Candidate { name: request.into_inner().name }))
    }

    async fn put_candidate(&self, _: Request<PutCandidateRequest>) -> Result<Response<pb::Candidate>, Status> {
        Err(Status::unimplemented("floor"))
    }

    async fn list_candidates(
        &self,
        _: Request<ListCandidatesRequest>,
    ) -> Result<Response<ListCandidatesResponse>, Status> {
        Err(Status::unimplemented("floor"))
    }

    async fn delete_candidate(&self, _: Request<DeleteCandidateRequest>) -> Result<Response<pb::Candidate>, Status> {
        Err(Status::unimplemented("floor"))
    }

    async fn get_status(&self, _: Request<GetStatusRequest>) -> Result<Response<pb::Status>, Status> {
        Err(Status::unimplemented("floor"))
    }
}

/// The HTTP/2 and executor settings under test (issue 29): each from an environment variable, unset
/// meaning tonic's default, so `bench/h2_settings.py` can run the floor once per variant.
struct Knobs {
    multi_thread: bool,
    adaptive_window: Option<bool>,
    stream_window: Option<u32>,
    connection_window: Option<u32>,
    max_frame_size: Option<u32>,
    max_concurrent_streams: Option<u32>,
}

impl Knobs {
    fn from_env() -> Result<Self, Box<dyn std::error::Error>> {
        fn number(name: &str) -> Result<Option<u32>, Box<dyn std::error::Error>> {
            std::env::var(name).ok().map(|v| v.parse().map_err(|e| format!("{name}: {e}").into())).transpose()
        }
        Ok(Self {
            multi_thread: std::env::var("FLOOR_RUNTIME").is_ok_and(|v| v == "multi_thread"),
            adaptive_window: std::env::var("FLOOR_ADAPTIVE_WINDOW").ok().map(|v| v == "1"),
            stream_window: number("FLOOR_STREAM_WINDOW")?,
            connection_window: number("FLOOR_CONNECTION_WINDOW")?,
            max_frame_size: number("FLOOR_MAX_FRAME_SIZE")?,
            max_concurrent_streams: number("FLOOR_MAX_CONCURRENT_STREAMS")?,
        })
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:50051".into()).parse()?;
    let knobs = Knobs::from_env()?;
    // The server's scheduler for the CPUs it may use (current-thread when pinned to one core), or
    // the multi-thread scheduler with one worker, which the server used before (the comparison).
    let runtime = if knobs.multi_thread {
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?
    } else {
        candidates_server::runtime::Scheduler::for_workers(None).build()?
    };
    runtime.block_on(async {
        tonic::transport::Server::builder()
            .http2_adaptive_window(knobs.adaptive_window)
            .initial_stream_window_size(knobs.stream_window)
            .initial_connection_window_size(knobs.connection_window)
            .max_frame_size(knobs.max_frame_size)
            .max_concurrent_streams(knobs.max_concurrent_streams)
            .add_service(CandidateServiceServer::new(Fixed))
            .serve(addr)
            .await
    })?;
    Ok(())
}
