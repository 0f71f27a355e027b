//! Amazon DynamoDB, through aws-sdk-dynamodb. The table is the one the original Flask app used:
//! partition key `CandidateName` (S), items `{"CandidateName": name}`; a table it filled works
//! unchanged. One DynamoDB call per operation: GetItem, PutItem, DeleteItem (conditional, so a
//! missing item is reported), Scan pages for listing (ExclusiveStartKey is the opaque page token),
//! DescribeTable for the health round-trip and the start-up check.
//!
//! IAM actions needed on the table: dynamodb:GetItem, dynamodb:PutItem, dynamodb:DeleteItem,
//! dynamodb:Scan, dynamodb:DescribeTable.

use std::{collections::HashMap, time::Duration};

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region, SdkConfig, retry::RetryConfig, timeout::TimeoutConfig};
use aws_sdk_dynamodb::{
    Client,
    error::{ProvideErrorMetadata, SdkError},
    types::{AttributeValue, KeyType, ScalarAttributeType},
};

use super::{Candidate, CandidateStore, Page, Result, StoreError, decode_name_cursor, encode_name_cursor};
use crate::name::CandidateName;

/// The DynamoDB store's settings. Credentials come from the SDK's default chain (environment,
/// profile, the EC2 instance role); the standard AWS_* variables, AWS_ENDPOINT_URL_DYNAMODB
/// included, are honoured.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "dynamodb_store")]
#[command(next_help_heading = "DynamoDB store (--store dynamodb)")]
pub struct Args {
    /// Table name; its partition key is CandidateName (S), as the original app created it.
    #[arg(
        id = "dynamodb_table",
        long = "dynamodb-table",
        env = "CANDIDATES_DYNAMODB_TABLE",
        default_value = "Candidates"
    )]
    pub table: String,
    /// AWS region (default: the SDK's chain: AWS_REGION, the profile, the instance's region).
    #[arg(id = "dynamodb_region", long = "dynamodb-region", env = "CANDIDATES_DYNAMODB_REGION")]
    pub region: Option<String>,
    /// Endpoint URL instead of the region's, e.g. a local emulator.
    #[arg(id = "dynamodb_endpoint", long = "dynamodb-endpoint", env = "CANDIDATES_DYNAMODB_ENDPOINT")]
    pub endpoint: Option<String>,
}

/// The partition key of the original table.
const KEY: &str = "CandidateName";
/// Attempts per call (the first try included) under the SDK's standard retry mode, which backs off
/// with jitter on throttling, 5xx and transient network errors.
const MAX_ATTEMPTS: u32 = 3;

/// The IAM actions this backend calls, on the table: what the deployment's role must grant.
pub const REQUIRED_PERMISSIONS: &[&str] =
    &["dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Scan"];

pub async fn open(args: &Args, context: &super::OpenContext) -> Result<super::DynStore, OpenError> {
    Ok(std::sync::Arc::new(DynamoStore::connect(args, context.call_timeout).await?))
}

/// Why the store cannot start; the binary prints it and exits with 2.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("no AWS region for DynamoDB (unset or empty): set --dynamodb-region or AWS_REGION")]
    NoRegion,
    #[error("DynamoDB table {table:?} does not exist in {region} (create it, or set --dynamodb-table)")]
    NoTable { table: String, region: String },
    #[error(
        "access to DynamoDB table {table:?} denied ({code}): the instance role needs dynamodb:DescribeTable, GetItem, PutItem, DeleteItem and Scan on it"
    )]
    AccessDenied { table: String, code: String },
    #[error("DynamoDB table {table:?} has key schema {found}, expected partition key CandidateName of type S")]
    KeySchema { table: String, found: String },
    #[error("cannot reach DynamoDB to check table {table:?}: {reason}")]
    Unreachable { table: String, reason: String },
}

impl super::Transient for OpenError {
    fn transient(&self) -> Option<&'static str> {
        match self {
            // Created by the same deployment, or its permissions or network not there yet.
            Self::NoTable { .. } => Some("the table does not exist yet"),
            Self::AccessDenied { .. } => Some("access denied: the instance's role lacks the table's permissions"),
            Self::Unreachable { .. } => Some("DynamoDB cannot be reached"),
            Self::NoRegion | Self::KeySchema { .. } => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// Builds the one shared client from the SDK's default chain (env, profile, instance role),
    /// with `config`'s region and endpoint when given, and checks the table.
    pub async fn connect(config: &Args, call_timeout: Duration) -> Result<Self, OpenError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = &config.region {
            if region.trim().is_empty() {
                return Err(OpenError::NoRegion);
            }
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &config.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        Self::from_sdk_config(&loader.load().await, &config.table, call_timeout).await
    }

    /// The same from an explicit SDK configuration (tests pass static credentials this way).
    pub async fn from_sdk_config(sdk: &SdkConfig, table: &str, call_timeout: Duration) -> Result<Self, OpenError> {
        // `AWS_REGION=` (empty) reaches here as an empty region, which failed later as "cannot
        // reach DynamoDB".
        let region =
            sdk.region().map(ToString::to_string).filter(|r| !r.trim().is_empty()).ok_or(OpenError::NoRegion)?;
        let conf = aws_sdk_dynamodb::config::Builder::from(sdk)
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    // Each attempt gets its share, so a stalled endpoint costs one attempt's
                    // timeout, not the whole call's, before the retry (standard mode's retry
                    // quota is the budget that stops retry storms).
                    .operation_attempt_timeout(call_timeout / MAX_ATTEMPTS)
                    .operation_timeout(call_timeout)
                    .build(),
            )
            .build();
        let store = Self { client: Client::from_conf(conf), table: table.to_owned() };
        store.check_table(&region).await?;
        Ok(store)
    }

    async fn check_table(&self, region: &str) -> Result<(), OpenError> {
        let table = self.table.clone();
        let described = match self.client.describe_table().table_name(&self.table).send().await {
            Ok(out) => out,
            Err(e) => {
                let code = e.code().unwrap_or_default().to_owned();
                return Err(match code.as_str() {
                    "ResourceNotFoundException" => OpenError::NoTable { table, region: region.to_owned() },
                    "AccessDeniedException" | "UnrecognizedClientException" => OpenError::AccessDenied { table, code },
                    _ => OpenError::Unreachable { table, reason: candidates_api::error_chain(&e) },
                });
            }
        };
        let t = described.table();
        let schema: Vec<String> = t
            .map(|t| {
                t.key_schema().iter().map(|k| format!("{}:{}", k.attribute_name(), k.key_type().as_str())).collect()
            })
            .unwrap_or_default();
        let key_type = t.and_then(|t| {
            t.attribute_definitions().iter().find(|a| a.attribute_name() == KEY).map(|a| a.attribute_type().clone())
        });
        let ok = t.is_some_and(|t| {
            t.key_schema().len() == 1
                && t.key_schema()[0].attribute_name() == KEY
                && t.key_schema()[0].key_type() == &KeyType::Hash
        }) && key_type == Some(ScalarAttributeType::S);
        if ok { Ok(()) } else { Err(OpenError::KeySchema { table, found: format!("[{}]", schema.join(", ")) }) }
    }

    fn key(name: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([(KEY.to_owned(), AttributeValue::S(name.to_owned()))])
    }

    /// Maps an SDK error (after the SDK's own retries) to a client-safe store error.
    fn error<E>(&self, op: &str, e: SdkError<E>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.error_for(op, e, false)
    }

    /// The same for a request that carries a client's page token (`client_cursor`).
    fn error_for<E>(&self, op: &str, e: SdkError<E>, client_cursor: bool) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let failure = match &e {
            SdkError::DispatchFailure(_) => Failure::Dispatch,
            SdkError::TimeoutError(_) => Failure::Timeout,
            SdkError::ResponseError(_) => Failure::Unreadable,
            _ => Failure::Service,
        };
        let code = e.code().unwrap_or_default().to_owned();
        classify(failure, &code, &self.table, op, client_cursor).with_source(e)
    }
}

/// How an SDK call failed, before its error code is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// The request never got an answer (connection refused, reset, DNS).
    Dispatch,
    /// The SDK's attempt or operation timeout passed.
    Timeout,
    /// An answer that could not be parsed.
    Unreadable,
    /// DynamoDB answered with an error code.
    Service,
}

/// The mapping table (see `StoreError` for the vocabulary). `client_cursor`: the request carries a
/// client's page token (a Scan's start key).
fn classify(failure: Failure, code: &str, table: &str, op: &str, client_cursor: bool) -> StoreError {
    let unavailable = |message: String| StoreError::Unavailable { message, source: None };
    match (failure, code) {
        (Failure::Dispatch, _) => unavailable("cannot reach DynamoDB".into()),
        (Failure::Timeout, _) => StoreError::DeadlineExceeded,
        (Failure::Unreadable, _) => unavailable("DynamoDB sent an unreadable response".into()),
        (_, "ProvisionedThroughputExceededException" | "ThrottlingException" | "RequestLimitExceeded") => {
            StoreError::ResourceExhausted {
                message: format!("DynamoDB is throttling requests ({code}), still after {MAX_ATTEMPTS} attempts"),
            }
        }
        (_, "AccessDeniedException" | "UnrecognizedClientException") => {
            StoreError::PermissionDenied { message: format!("access to DynamoDB table {table:?} denied ({code})") }
        }
        (_, "ResourceNotFoundException") => unavailable(format!("DynamoDB table {table:?} not found")),
        (_, "InternalServerError" | "ServiceUnavailable") => unavailable(format!("DynamoDB failed ({code})")),
        // DynamoDB's "your request is malformed" (a start key over its size limit, say): with a
        // client's page token in the request, that token is to blame; otherwise the fault is ours.
        (Failure::Service, "ValidationException") if client_cursor => StoreError::invalid_page_token(),
        _ => StoreError::Internal { message: format!("DynamoDB {op} failed ({code})"), source: None },
    }
}


#[async_trait]
impl CandidateStore for DynamoStore {
    fn kind(&self) -> &'static str {
        "dynamodb"
    }

    /// Scan order is the table's hash order, not names.
    fn lists_in_name_order(&self) -> bool {
        false
    }

    /// A Scan page stops at 1 MB of data read, whatever it returns.
    fn may_return_empty_pages(&self) -> bool {
        true
    }

    async fn get(&self, name: &CandidateName) -> Result<Candidate> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(name.as_str())))
            // Read-your-writes: a candidate just put is found.
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", e))?;
        match out.item() {
            Some(_) => Ok(name.into()),
            None => Err(StoreError::NotFound),
        }
    }

    async fn put(&self, name: &CandidateName) -> Result<Candidate> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::key(name.as_str())))
            .send()
            .await
            .map_err(|e| self.error("PutItem", e))?;
        Ok(name.into())
    }

    async fn delete(&self, name: &CandidateName) -> Result<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(name.as_str())))
            .condition_expression("attribute_exists(CandidateName)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                Err(StoreError::NotFound)
            }
            Err(e) => Err(self.error("DeleteItem", e)),
        }
    }

    async fn list(&self, page_size: usize, page_token: Option<&str>) -> Result<Page> {
        let start = page_token.map(decode_name_cursor).transpose()?;
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .limit(i32::try_from(page_size).unwrap_or(i32::MAX))
            .consistent_read(true)
            .projection_expression("#k")
            .expression_attribute_names("#k", KEY)
            .set_exclusive_start_key(start.as_deref().map(Self::key))
            .send()
            .await
            .map_err(|e| self.error_for("Scan", e, start.is_some()))?;
        let candidates = out
            .items()
            .iter()
            .filter_map(|item| item.get(KEY)?.as_s().ok())
            .map(|name| Candidate { name: name.clone() })
            .collect();
        let next_page_token = match out.last_evaluated_key() {
            None => None,
            Some(key) => match key.get(KEY).and_then(|v| v.as_s().ok()) {
                Some(last) => Some(encode_name_cursor(last)),
                None => {
                    return Err(StoreError::Internal {
                        message: "DynamoDB returned an unexpected LastEvaluatedKey".into(),
                        source: None,
                    });
                }
            },
        };
        Ok(Page { candidates, next_page_token })
    }

    async fn ping(&self) -> Result<()> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map(drop)
            .map_err(|e| self.error("DescribeTable", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_mapping_table() {
        let cases: &[(Failure, &str, &str)] = &[
            (Failure::Dispatch, "", "unavailable"),
            (Failure::Timeout, "", "deadline_exceeded"),
            (Failure::Unreadable, "", "unavailable"),
            (Failure::Service, "ThrottlingException", "resource_exhausted"),
            (Failure::Service, "ProvisionedThroughputExceededException", "resource_exhausted"),
            (Failure::Service, "RequestLimitExceeded", "resource_exhausted"),
            (Failure::Service, "AccessDeniedException", "permission_denied"),
            (Failure::Service, "UnrecognizedClientException", "permission_denied"),
            (Failure::Service, "ResourceNotFoundException", "unavailable"),
            (Failure::Service, "InternalServerError", "unavailable"),
            (Failure::Service, "ServiceUnavailable", "unavailable"),
            (Failure::Service, "ValidationException", "internal"),
        ];
        for (failure, code, want) in cases {
            let got = classify(*failure, code, "T", "GetItem", false).label();
            assert_eq!(got, *want, "{failure:?} {code}");
        }
        // After a client's page token (the Scan's start key), only ValidationException is the
        // client's: real DynamoDB refuses an ExclusiveStartKey over its key size limit with it,
        // which the emulators accept, so the mapping is tested here as a table.
        for (code, want) in [("ValidationException", "invalid_argument"), ("InternalServerError", "unavailable")] {
            assert_eq!(classify(Failure::Service, code, "T", "Scan", true).label(), want, "{code}");
        }
    }
}
