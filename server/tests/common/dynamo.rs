//! DynamoDB emulators for tests: the shared ones scripts/test.sh starts (moto_server and DynamoDB
//! Local), unique tables per test, and private moto instances for tests that stop them.

use std::{process::Command, time::Duration};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::{
    Client,
    config::Credentials,
    types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType},
};
use candidates_server::store::dynamodb::DynamoStore;

fn env(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests through scripts/test.sh, which starts the emulators")
    })
}

pub fn moto() -> String {
    env("CANDIDATES_TEST_MOTO_URL")
}

pub fn dynamodb_local() -> String {
    env("CANDIDATES_TEST_DYNAMODB_LOCAL_URL")
}

/// SDK configuration for an emulator: static dummy credentials, explicit region and endpoint, so
/// nothing looks up a profile or the instance metadata service.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .load()
        .await
}

pub fn unique_table() -> String {
    format!("candidates-test-{}", uuid::Uuid::new_v4().simple())
}

/// Creates a table shaped as the original app's (partition key CandidateName, S).
pub async fn create_table(endpoint: &str, table: &str) {
    create_table_with_key(endpoint, table, "CandidateName").await;
}

pub async fn create_table_with_key(endpoint: &str, table: &str, key: &str) {
    let client = Client::new(&sdk_config(endpoint).await);
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name(key).attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name(key).key_type(KeyType::Hash).build().unwrap())
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create table {table} at {endpoint}: {e:?}"));
}

/// A store on a fresh table of its own.
pub async fn fresh_store(endpoint: &str) -> DynamoStore {
    let table = unique_table();
    create_table(endpoint, &table).await;
    DynamoStore::from_sdk_config(&sdk_config(endpoint).await, &table, Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("open store on {table}: {e}"))
}

/// A moto_server of the test's own on `port` (0: a free one), killed on drop.
pub struct PrivateMoto {
    process: super::ChildGuard,
    pub port: u16,
}

impl PrivateMoto {
    pub fn start(port: u16) -> Self {
        let port = super::port_or_free(port);
        let mut cmd = Command::new(env("CANDIDATES_TEST_MOTO_BIN"));
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        let process =
            super::ChildGuard::spawn(cmd, "private moto_server", Duration::from_secs(30), || super::port_open(port));
        Self { process, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Stops (SIGSTOP) or resumes (SIGCONT) the process: a store that hangs, not one that is gone.
    #[allow(unsafe_code)] // kill(2): see the SAFETY comment.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(self.process.pid(), signal) }, 0);
    }
}
