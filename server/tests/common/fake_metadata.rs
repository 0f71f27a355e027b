//! Fake cloud metadata services on 127.0.0.1, each checking the headers its real counterpart
//! requires (IMDSv2 token dance for AWS, `Metadata: true` for Azure, `Metadata-Flavor: Google`).

use std::net::SocketAddr;

use axum::{
    Router,
    http::{HeaderMap, StatusCode},
    routing::{get, put},
};

const AWS_TOKEN: &str = "fake-imds-token";

pub enum Cloud {
    Aws,
    Azure,
    Gcp,
}

/// Serves the fake on a free port for the rest of the test; returns its base URL.
pub async fn start(cloud: Cloud, instance_id: &'static str) -> String {
    let router = match cloud {
        Cloud::Aws => Router::new()
            .route(
                "/latest/api/token",
                put(|headers: HeaderMap| async move {
                    if headers.contains_key("x-aws-ec2-metadata-token-ttl-seconds") {
                        (StatusCode::OK, AWS_TOKEN)
                    } else {
                        (StatusCode::BAD_REQUEST, "")
                    }
                }),
            )
            .route(
                "/latest/meta-data/instance-id",
                get(move |headers: HeaderMap| async move {
                    if headers.get("x-aws-ec2-metadata-token").is_some_and(|v| v == AWS_TOKEN) {
                        (StatusCode::OK, instance_id)
                    } else {
                        (StatusCode::UNAUTHORIZED, "")
                    }
                }),
            ),
        Cloud::Azure => Router::new().route(
            "/metadata/instance/compute/vmId",
            get(move |headers: HeaderMap, query: axum::extract::RawQuery| async move {
                let q = query.0.unwrap_or_default();
                if headers.get("metadata").is_some_and(|v| v == "true") && q.contains("api-version=") {
                    (StatusCode::OK, instance_id)
                } else {
                    (StatusCode::BAD_REQUEST, "")
                }
            }),
        ),
        Cloud::Gcp => Router::new().route(
            "/computeMetadata/v1/instance/id",
            get(move |headers: HeaderMap| async move {
                if headers.get("metadata-flavor").is_some_and(|v| v == "Google") {
                    (StatusCode::OK, instance_id)
                } else {
                    (StatusCode::FORBIDDEN, "")
                }
            }),
        ),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}
