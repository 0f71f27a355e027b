//! `candidatectl check`: the wire contract (REST and gRPC) against a live deployment. One line per
//! check, everything it wrote deleted again, a non-zero exit on any failure. The deploy scripts'
//! `validate` step runs it against the load balancers.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use candidates_api::v1::{
    DeleteCandidateRequest, GetCandidateRequest, GetStatusRequest, ListCandidatesRequest, PutCandidateRequest,
    candidate_service_client::CandidateServiceClient,
};
use clap::Args;
use serde_json::{Value, json};
use tonic::{Code, service::interceptor::InterceptedService, transport::Channel};

use crate::credential::Credential;

use crate::api::encode_segment;

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// REST base URL (the load balancer's HTTP address).
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub rest_target: String,
    /// gRPC URL (the internal gRPC load balancer).
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub grpc_target: String,
    /// Skip the REST checks (e.g. only gRPC is reachable from here).
    #[arg(long)]
    pub skip_rest: bool,
    /// Skip the gRPC checks (e.g. the gRPC load balancer is internal and this runs outside).
    #[arg(long)]
    pub skip_grpc: bool,
}

/// What a run found.
#[derive(Debug, Default)]
pub struct Report {
    pub passed: usize,
    pub failed: usize,
}

type Outcome = Result<(), String>;

struct Checker {
    report: Report,
}

impl Checker {
    async fn check(&mut self, area: &str, what: &str, f: impl Future<Output = Outcome>) -> bool {
        let started = Instant::now();
        let outcome = f.await;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        match &outcome {
            Ok(()) => {
                self.report.passed += 1;
                println!("PASS  {area:<4}  {what}  ({ms:.1} ms)");
            }
            Err(reason) => {
                self.report.failed += 1;
                println!("FAIL  {area:<4}  {what}: {reason}  ({ms:.1} ms)");
            }
        }
        outcome.is_ok()
    }
}

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Outcome {
    if cond { Ok(()) } else { Err(msg()) }
}

/// Runs every check; prints one line each and a summary. Never panics on a bad server.
pub async fn run(timeout: Duration, args: &CheckArgs, credential: &Credential) -> Report {
    let (rest, grpc) = (args.rest_target.as_str(), args.grpc_target.as_str());
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    // Unique names so concurrent checks and real data never collide; a space and non-ASCII to
    // exercise percent-decoding.
    let name = format!("check-{run_id} Zoë");
    let mut checker = Checker { report: Report::default() };
    if !args.skip_rest {
        rest_checks(&mut checker, rest.trim_end_matches('/'), timeout, &name, &run_id, credential).await;
    }
    if !args.skip_grpc {
        grpc_checks(&mut checker, grpc, timeout, &format!("{name} grpc"), credential).await;
    }
    let Report { passed, failed } = checker.report;
    println!("{passed} passed, {failed} failed");
    checker.report
}

struct Rest {
    http: reqwest::Client,
    base: String,
}

impl Rest {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn candidate(&self, name: &str) -> String {
        self.url(&format!("/candidate/{}", encode_segment(name)))
    }

    /// Sends and returns (status, content-type, body text).
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<(u16, String, String), String> {
        let response = request.send().await.map_err(|e| format!("request failed: {e}"))?;
        let status = response.status().as_u16();
        let ct = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let body = response.text().await.map_err(|e| format!("reading body: {e}"))?;
        Ok((status, ct, body))
    }

    /// Expects `status` and a JSON body; returns the body.
    async fn json(&self, request: reqwest::RequestBuilder, status: u16) -> Result<Value, String> {
        let (got, ct, body) = self.call(request).await?;
        ensure(got == status, || format!("status {got}, want {status}; body {body:.200}"))?;
        ensure(ct.starts_with("application/json"), || format!("content-type {ct:?}, want application/json"))?;
        serde_json::from_str(&body).map_err(|e| format!("body is not JSON ({e}): {body:.200}"))
    }

    /// Expects an error response with the contract's JSON error body and gRPC `code`.
    async fn error(&self, request: reqwest::RequestBuilder, status: u16, code: i64) -> Result<Value, String> {
        let body = self.json(request, status).await?;
        ensure(body["code"] == code, || format!("error code {}, want {code}", body["code"]))?;
        ensure(body["message"].is_string(), || format!("no message in {body}"))?;
        ensure(body["details"].is_array(), || format!("no details array in {body}"))?;
        Ok(body)
    }

    /// Every name of the full `/candidates` listing (404 means none).
    async fn all_names(&self) -> Result<Vec<String>, String> {
        let (status, _, body) = self.call(self.http.get(self.url("/candidates"))).await?;
        if status == 404 {
            return Ok(Vec::new());
        }
        ensure(status == 200, || format!("GET /candidates: status {status}"))?;
        let list: Vec<Value> =
            serde_json::from_str(&body).map_err(|e| format!("/candidates is not a JSON array: {e}"))?;
        list.iter()
            .map(|c| {
                c["CandidateName"].as_str().map(str::to_owned).ok_or_else(|| format!("item without CandidateName: {c}"))
            })
            .collect()
    }
}

#[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
async fn rest_checks(
    c: &mut Checker,
    base: &str,
    timeout: Duration,
    name: &str,
    run_id: &str,
    credential: &Credential,
) {
    let http = crate::tls::reqwest(reqwest::Client::builder())
        .default_headers(credential.headers())
        .timeout(timeout)
        .no_proxy()
        .build()
        .expect("HTTP client builds");
    let r = Rest { http, base: base.to_owned() };
    let expected = json!({ "CandidateName": name });

    c.check("rest", "GET /gtg → 200, empty body", async {
        let (status, _, body) = r.call(r.http.get(r.url("/gtg"))).await?;
        ensure(status == 200 && body.is_empty(), || format!("status {status}, body {body:.100}"))
    })
    .await;
    c.check("rest", "GET /gtg?details → 200 {connected: \"true\", instance-id}", async {
        let body = r.json(r.http.get(r.url("/gtg?details")), 200).await?;
        ensure(body["connected"] == "true", || format!("connected is {}", body["connected"]))?;
        ensure(body["instance-id"].as_str().is_some_and(|s| !s.is_empty()), || format!("no instance-id: {body}"))?;
        ensure(body.as_object().map(|o| o.len()) == Some(2), || format!("unexpected fields: {body}"))
    })
    .await;
    c.check("rest", "GET /candidate/{missing} → 404 \"Not Found\"", async {
        let body = r.error(r.http.get(r.candidate(&format!("{name} missing"))), 404, 5).await?;
        ensure(body["message"] == "Not Found", || format!("message {}", body["message"]))
    })
    .await;
    c.check("rest", "POST /candidate/{name} (body ignored) → 200 {CandidateName}", async {
        let request = r.http.post(r.candidate(name)).header("content-type", "application/json").body("{not json");
        let body = r.json(request, 200).await?;
        ensure(body == expected, || format!("body {body}"))
    })
    .await;
    c.check("rest", "GET /candidate/{name} → 200 {CandidateName}, percent-decoded", async {
        let body = r.json(r.http.get(r.candidate(name)), 200).await?;
        ensure(body == expected, || format!("body {body}"))
    })
    .await;
    c.check("rest", "invalid names → 400 with the rule, nothing written", async {
        for (bad, rule) in [
            (format!("check-{run_id}%2Fslash"), "'/'"),
            (format!("check-{run_id}%3Fq"), "'?'"),
            (format!("check-{run_id}%0Actl"), "control"),
            (format!("__check-{run_id}__"), "__anything__"),
            ("x".repeat(256), "255"),
        ] {
            let body = r.error(r.http.post(r.url(&format!("/candidate/{bad}"))), 400, 3).await?;
            let message = body["message"].as_str().unwrap_or("");
            ensure(message.contains(rule), || format!("{bad:.40}: message {message:?} does not name {rule}"))?;
        }
        Ok(())
    })
    .await;
    c.check("rest", "GET /candidates → 200, every candidate, ours included, no rejected name", async {
        let names = r.all_names().await?;
        ensure(names.iter().any(|n| n == name), || format!("{name:?} missing from {} candidates", names.len()))?;
        let leaked: Vec<_> = names.iter().filter(|n| n.contains(run_id) && n.as_str() != name).collect();
        ensure(leaked.is_empty(), || format!("rejected names were written: {leaked:?}"))
    })
    .await;
    c.check("rest", "GET /candidates?page_size=1 → one page with next_page_token", async {
        let body = r.json(r.http.get(r.url("/candidates?page_size=1")), 200).await?;
        let page = body["candidates"].as_array().ok_or_else(|| format!("no candidates array: {body}"))?;
        ensure(page.len() == 1, || format!("{} items on a page of 1", page.len()))?;
        ensure(body["next_page_token"].is_string(), || format!("no next_page_token: {body}"))
    })
    .await;
    c.check("rest", "unknown path → 404, wrong method → 405, JSON bodies", async {
        r.error(r.http.get(r.url(&format!("/no-such-path-{run_id}"))), 404, 5).await?;
        r.error(r.http.put(r.candidate(name)), 405, 12).await.map(drop)
    })
    .await;
    c.check("rest", "oversized body → 413", async {
        r.error(r.http.post(r.candidate(name)).body(vec![b'x'; 1 << 20]), 413, 8).await.map(drop)
    })
    .await;
    c.check("rest", "x-request-id is echoed", async {
        let response =
            r.http.get(r.url("/gtg")).header("x-request-id", run_id).send().await.map_err(|e| e.to_string())?;
        let echoed = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
        ensure(echoed == run_id, || format!("x-request-id {echoed:?}"))
    })
    .await;
    c.check("rest", "DELETE /candidate/{name} → 200, then 404", async {
        let body = r.json(r.http.delete(r.candidate(name)), 200).await?;
        ensure(body == expected, || format!("body {body}"))?;
        r.error(r.http.delete(r.candidate(name)), 404, 5).await.map(drop)
    })
    .await;
    // Clean up even if a check failed half-way (404 is fine: already gone).
    let _ = r.http.delete(r.candidate(name)).send().await;
}

async fn grpc_checks(c: &mut Checker, target: &str, timeout: Duration, name: &str, credential: &Credential) {
    let endpoint = Channel::from_shared(target.to_owned())
        .map_err(|e| e.to_string())
        .and_then(|endpoint| crate::tls::grpc(endpoint, target).map_err(|e| e.to_string()));
    let channel = match endpoint {
        Ok(endpoint) => InterceptedService::new(
            endpoint.connect_timeout(timeout).timeout(timeout).connect_lazy(),
            credential.clone(),
        ),
        Err(e) => {
            c.check("grpc", "target URL", async { Err(format!("invalid gRPC target {target:?}: {e}")) }).await;
            return;
        }
    };
    let client = CandidateServiceClient::new(channel.clone());

    c.check("grpc", "grpc.health.v1 Check \"\" and CandidateService → SERVING", async {
        use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
        let mut health = HealthClient::new(channel.clone());
        for service in ["", candidates_api::SERVICE_NAME] {
            let status = health
                .check(HealthCheckRequest { service: service.into() })
                .await
                .map_err(|s| format!("{service:?}: {s}"))?
                .into_inner()
                .status();
            ensure(status == ServingStatus::Serving, || format!("{service:?} is {status:?}"))?;
        }
        Ok(())
    })
    .await;
    c.check("grpc", "reflection (v1) lists CandidateService", async {
        use tonic_reflection::pb::v1::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = ServerReflectionClient::new(channel.clone())
            .server_reflection_info(futures::stream::iter([request]))
            .await
            .map_err(|s| s.to_string())?
            .into_inner();
        match stream.message().await.map_err(|s| s.to_string())?.and_then(|r| r.message_response) {
            Some(MessageResponse::ListServicesResponse(list)) => {
                let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
                ensure(names.iter().any(|n| n == candidates_api::SERVICE_NAME), || format!("services: {names:?}"))
            }
            other => Err(format!("unexpected reply {other:?}")),
        }
    })
    .await;
    c.check("grpc", "GetStatus → connected \"true\", instance id", async {
        let status = client.clone().get_status(GetStatusRequest {}).await.map_err(|s| s.to_string())?.into_inner();
        ensure(status.connected == "true" && !status.instance_id.is_empty(), || format!("{status:?}"))
    })
    .await;
    c.check("grpc", "GetCandidate {missing} → NOT_FOUND", async {
        let missing = format!("{name} missing");
        expect_code(client.clone().get_candidate(GetCandidateRequest { name: missing }).await, Code::NotFound)
    })
    .await;
    c.check("grpc", "PutCandidate → the name; GetCandidate → the name", async {
        let put =
            client.clone().put_candidate(PutCandidateRequest { name: name.into() }).await.map_err(|s| s.to_string())?;
        ensure(put.get_ref().name == name, || format!("put returned {:?}", put.get_ref().name))?;
        let got =
            client.clone().get_candidate(GetCandidateRequest { name: name.into() }).await.map_err(|s| s.to_string())?;
        ensure(got.get_ref().name == name, || format!("get returned {:?}", got.get_ref().name))
    })
    .await;
    c.check("grpc", "PutCandidate with an invalid name → INVALID_ARGUMENT", async {
        expect_code(
            client.clone().put_candidate(PutCandidateRequest { name: format!("{name}/x") }).await,
            Code::InvalidArgument,
        )
    })
    .await;
    c.check("grpc", "ListCandidates pages through everything, ours included", async {
        let mut token = String::new();
        let mut found = false;
        for _ in 0..100_000 {
            let page = client
                .clone()
                .list_candidates(ListCandidatesRequest { page_size: 1000, page_token: token })
                .await
                .map_err(|s| s.to_string())?
                .into_inner();
            ensure(page.candidates.len() <= 1000, || format!("page of {}", page.candidates.len()))?;
            found |= page.candidates.iter().any(|c| c.name == name);
            if page.next_page_token.is_empty() {
                return ensure(found, || format!("{name:?} not listed"));
            }
            token = page.next_page_token;
        }
        Err("listing did not end".into())
    })
    .await;
    c.check("grpc", "DeleteCandidate → ok, then NOT_FOUND", async {
        client
            .clone()
            .delete_candidate(DeleteCandidateRequest { name: name.into() })
            .await
            .map_err(|s| s.to_string())?;
        expect_code(client.clone().delete_candidate(DeleteCandidateRequest { name: name.into() }).await, Code::NotFound)
    })
    .await;
    let _ = client.clone().delete_candidate(DeleteCandidateRequest { name: name.into() }).await;
}

fn expect_code<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: Code) -> Outcome {
    match result {
        Err(status) if status.code() == code => Ok(()),
        Err(status) => Err(format!("{:?} ({}), want {code:?}", status.code(), status.message())),
        Ok(value) => Err(format!("succeeded with {value:?}, want {code:?}")),
    }
}
