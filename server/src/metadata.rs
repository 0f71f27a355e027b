//! Instance identity for `/gtg?details`: looked up once at start from the cloud's metadata
//! service (AWS IMDSv2 instance-id, Azure IMDS vmId, GCP instance id) with a short timeout, else
//! the host name. The base URL is configurable so tests use a local fake; nothing here is called
//! again after start.

use std::time::Duration;

use crate::config::MetadataCloud;

const AWS_DEFAULT: &str = "http://169.254.169.254";
const AZURE_DEFAULT: &str = "http://169.254.169.254";
const GCP_DEFAULT: &str = "http://metadata.google.internal";

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("metadata request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("metadata service returned an empty instance id")]
    Empty,
}

/// The instance id, or the host name when the cloud is `none` or the look-up fails (logged).
pub async fn instance_id(cloud: MetadataCloud, base_url: Option<&str>, timeout: Duration) -> String {
    if cloud == MetadataCloud::None {
        return hostname();
    }
    match lookup(cloud, base_url, timeout).await {
        Ok(id) => {
            tracing::info!(?cloud, instance_id = %id, "instance id from the metadata service");
            id
        }
        Err(error) => {
            let fallback = hostname();
            tracing::warn!(?cloud, %error, fallback = %fallback, "instance id look-up failed; using the host name");
            fallback
        }
    }
}

async fn lookup(cloud: MetadataCloud, base_url: Option<&str>, timeout: Duration) -> Result<String, MetadataError> {
    // No proxy: a metadata service is only reachable directly (and a proxy could leak the token).
    let client = reqwest::Client::builder().timeout(timeout).no_proxy().build()?;
    let base = |default: &str| base_url.unwrap_or(default).trim_end_matches('/').to_owned();
    let id = match cloud {
        MetadataCloud::None => unreachable!("handled by the caller"),
        MetadataCloud::Aws => {
            let base = base(AWS_DEFAULT);
            let token = client
                .put(format!("{base}/latest/api/token"))
                .header("X-aws-ec2-metadata-token-ttl-seconds", "60")
                .send()
                .await?
                .error_for_status()?
                .text()
                .await?;
            client
                .get(format!("{base}/latest/meta-data/instance-id"))
                .header("X-aws-ec2-metadata-token", token.trim())
                .send()
                .await?
                .error_for_status()?
                .text()
                .await?
        }
        MetadataCloud::Azure => {
            client
                .get(format!(
                    "{}/metadata/instance/compute/vmId?api-version=2021-02-01&format=text",
                    base(AZURE_DEFAULT)
                ))
                .header("Metadata", "true")
                .send()
                .await?
                .error_for_status()?
                .text()
                .await?
        }
        MetadataCloud::Gcp => {
            client
                .get(format!("{}/computeMetadata/v1/instance/id", base(GCP_DEFAULT)))
                .header("Metadata-Flavor", "Google")
                .send()
                .await?
                .error_for_status()?
                .text()
                .await?
        }
    };
    let id = id.trim().to_owned();
    if id.is_empty() { Err(MetadataError::Empty) } else { Ok(id) }
}

fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}
