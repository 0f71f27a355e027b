//! The floor for a gRPC call on this stack: tonic's own server (hyper + h2, no layers, no logging,
//! no store) answering `GetCandidate` with a fixed candidate, on the same allocator as the server.
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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:50051".into()).parse()?;
    // One worker, like the server pinned to one core by the bench.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(async {
        tonic::transport::Server::builder().add_service(CandidateServiceServer::new(Fixed)).serve(addr).await
    })?;
    Ok(())
}
