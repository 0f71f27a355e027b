//! Remote state (terraform/state/<cloud>, scripts/<cloud>/bootstrap-state.sh): each setting the
//! state store must have, with the documentation that asks for it named above its test, and the
//! backend file each bootstrap script writes. The scripts' behaviour (dry run, apply, tf_init) and
//! the AWS store applied against moto are terraform/tests/test_state_bootstrap.py.

use std::{fs, process::Command};

use hcl::Body;

use crate::infra::{Module, attr, block, blocks, bool_attr, num_attr, one_line, repo_root, str_attr, text};

fn read(path: &str) -> String {
    fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `terraform {}` blocks of a root.
fn terraform_blocks(m: &Module) -> Vec<&Body> {
    m.top_level().into_iter().filter(|(ident, _, _)| *ident == "terraform").map(|(_, _, b)| b).collect()
}

fn lifecycle_prevents_destroy(body: &Body) -> bool {
    blocks(body, "lifecycle").iter().any(|l| bool_attr(l, "prevent_destroy") == Some(true))
}

/// The HCL between `cat <<HCL` and `HCL` in a bootstrap script: the backend file it writes.
fn backend_file(cloud: &str) -> String {
    let script = read(&format!("scripts/{cloud}/bootstrap-state.sh"));
    let start = script.find("<<HCL\n").unwrap_or_else(|| panic!("{cloud}: no <<HCL heredoc")) + 6;
    let end = script[start..].find("\nHCL\n").unwrap() + start;
    script[start..end].to_string()
}

/// The backend file's `backend "KIND" {}` body, parsed (shell `$1`-style values are strings).
fn backend(cloud: &str, kind: &str) -> Body {
    let text = backend_file(cloud);
    let body = hcl::parse(&text).unwrap_or_else(|e| panic!("{cloud}'s backend file: {e}\n{text}"));
    let terraform = body.blocks().find(|b| b.identifier() == "terraform").unwrap();
    let backend = terraform.body().blocks().find(|b| b.identifier() == "backend").unwrap();
    assert_eq!(backend.labels()[0].as_str(), kind);
    backend.body().clone()
}

// Local state stays the default for a first try: no deployment root declares a backend, so a
// bare `terraform init` needs no bucket (the backend comes only from the git-ignored
// backend_override.tf the bootstrap writes). An operator's own override file is left out here.
#[test]
fn the_deployment_roots_declare_no_backend_and_the_backend_file_is_git_ignored() {
    for cloud in ["aws", "azure", "gcp"] {
        let dir = repo_root().join("terraform").join(cloud);
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !name.ends_with(".tf") || name.ends_with("_override.tf") {
                continue;
            }
            let body = hcl::parse(&fs::read_to_string(&path).unwrap()).unwrap();
            for terraform in body.blocks().filter(|b| b.identifier() == "terraform") {
                assert!(
                    terraform.body().blocks().all(|b| b.identifier() != "backend" && b.identifier() != "cloud"),
                    "terraform/{cloud}/{name} declares a backend: every init would need the state store"
                );
            }
        }
        let ignored = Command::new("git")
            .current_dir(repo_root())
            .args(["check-ignore", "-q", &format!("terraform/{cloud}/backend_override.tf")])
            .status()
            .unwrap();
        assert!(ignored.success(), "terraform/{cloud}/backend_override.tf is not git-ignored");
    }
    let lib = read("scripts/deploy/state.sh");
    assert!(lib.contains("backend_override.tf"), "tf_init reads the file the bootstrap writes");
    for cloud in ["aws", "azure", "gcp"] {
        for script in ["apply", "destroy"] {
            let text = read(&format!("scripts/{cloud}/{script}.sh"));
            assert!(text.contains("tf_init \"$TF_DIR\""), "scripts/{cloud}/{script}.sh must init through tf_init");
            assert!(!text.contains("\"$TF_DIR\" init"), "scripts/{cloud}/{script}.sh has a bare terraform init");
        }
        let doc = read(&format!("docs/deploy-{cloud}.md"));
        assert!(doc.contains("## Remote state"), "docs/deploy-{cloud}.md has no Remote state section");
    }
}

// Terraform, S3 backend (developer.hashicorp.com/terraform/language/backend/s3): "State locking is
// an opt-in feature ... enabled via S3 or DynamoDB. However, DynamoDB-based locking is deprecated";
// `use_lockfile = true` (S3 conditional writes, a `<key>.tflock` object) exists since Terraform
// 1.10; `encrypt` asks for server-side encryption of the state file.
#[test]
fn aws_backend_locks_with_an_s3_lockfile_encrypted_never_dynamodb() {
    let b = backend("aws", "s3");
    assert_eq!(bool_attr(&b, "use_lockfile"), Some(true));
    assert_eq!(bool_attr(&b, "encrypt"), Some(true));
    for key in ["bucket", "key", "region"] {
        assert!(attr(&b, key).is_some(), "the S3 backend needs `{key}`");
    }
    assert!(attr(&b, "dynamodb_table").is_none(), "DynamoDB locking is deprecated");
    assert!(attr(&b, "access_key").is_none() && attr(&b, "secret_key").is_none(), "no credentials in the file");
    // use_lockfile is experimental in 1.10 and GA in 1.11: the state root, which exists for this
    // backend, and the root the backend file goes into both say so.
    for root in ["state/aws", "aws"] {
        let m = Module::load(root);
        let required = terraform_blocks(&m).iter().filter_map(|t| str_attr(t, "required_version")).collect::<Vec<_>>();
        assert_eq!(required, [">= 1.11"], "{root}");
    }
    // Each lock release leaves a delete marker in the versioned bucket: they expire.
    let state = Module::load("state/aws");
    let rule = block(state.resource("aws_s3_bucket_lifecycle_configuration", "state"), "rule");
    assert_eq!(bool_attr(block(rule, "expiration"), "expired_object_delete_marker"), Some(true));
}

// Same page: "It is highly recommended that you enable Bucket Versioning on the S3 bucket to
// allow for state recovery"; aws_s3_bucket_versioning: versioning_configuration.status "Enabled".
#[test]
fn aws_state_bucket_is_versioned_and_cannot_be_destroyed_by_terraform() {
    let m = Module::load("state/aws");
    let bucket = m.resource("aws_s3_bucket", "state");
    assert!(lifecycle_prevents_destroy(bucket), "prevent_destroy on the state bucket");
    assert!(bool_attr(bucket, "force_destroy") != Some(true));
    let versioning = m.resource("aws_s3_bucket_versioning", "state");
    assert_eq!(text(versioning, "bucket"), "aws_s3_bucket.state.id");
    assert_eq!(str_attr(block(versioning, "versioning_configuration"), "status").as_deref(), Some("Enabled"));
    // Lifecycle rules on a versioned bucket: expire noncurrent versions, after versioning exists
    // (aws_s3_bucket_lifecycle_configuration: "add a depends_on meta-argument" on the versioning).
    let lifecycle = m.resource("aws_s3_bucket_lifecycle_configuration", "state");
    assert_eq!(text(lifecycle, "depends_on"), "[aws_s3_bucket_versioning.state]");
    let rule = block(lifecycle, "rule");
    assert_eq!(str_attr(rule, "status").as_deref(), Some("Enabled"));
    assert_eq!(text(block(rule, "noncurrent_version_expiration"), "noncurrent_days"), "var.noncurrent_version_days");
    assert!(m.default_number("noncurrent_version_days") >= 30, "keep a month of state versions at least");
}

// aws_s3_bucket_server_side_encryption_configuration: apply_server_side_encryption_by_default
// with sse_algorithm AES256 (SSE-S3) or aws:kms.
#[test]
fn aws_state_bucket_encrypts_by_default() {
    let m = Module::load("state/aws");
    let sse = m.resource("aws_s3_bucket_server_side_encryption_configuration", "state");
    assert_eq!(text(sse, "bucket"), "aws_s3_bucket.state.id");
    let by_default = block(block(sse, "rule"), "apply_server_side_encryption_by_default");
    let algorithm = str_attr(by_default, "sse_algorithm").unwrap();
    assert!(["AES256", "aws:kms", "aws:kms:dsse"].contains(&algorithm.as_str()), "{algorithm}");
}

// aws_s3_bucket_public_access_block: the four settings (S3 PublicAccessBlockConfiguration:
// BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets), all on.
// aws_s3_bucket_ownership_controls: BucketOwnerEnforced disables ACLs.
#[test]
fn aws_state_bucket_blocks_every_public_access_and_acls() {
    let m = Module::load("state/aws");
    let block_ = m.resource("aws_s3_bucket_public_access_block", "state");
    assert_eq!(text(block_, "bucket"), "aws_s3_bucket.state.id");
    for key in ["block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"] {
        assert_eq!(bool_attr(block_, key), Some(true), "{key}");
    }
    let ownership = m.resource("aws_s3_bucket_ownership_controls", "state");
    assert_eq!(str_attr(block(ownership, "rule"), "object_ownership").as_deref(), Some("BucketOwnerEnforced"));
}

// S3 user guide / AWS Config rule s3-bucket-ssl-requests-only: a bucket policy that denies every
// action when "aws:SecureTransport" is "false", on the bucket and its objects, to everyone.
#[test]
fn aws_state_bucket_policy_denies_plain_http() {
    let m = Module::load("state/aws");
    let policy = m.resource("aws_s3_bucket_policy", "state");
    assert_eq!(text(policy, "policy"), "data.aws_iam_policy_document.state.json");
    assert_eq!(text(policy, "depends_on"), "[aws_s3_bucket_public_access_block.state]");
    let doc = m.data("aws_iam_policy_document", "state");
    let deny = blocks(doc, "statement")
        .into_iter()
        .find(|s| {
            blocks(s, "condition").iter().any(|c| {
                str_attr(c, "variable").as_deref() == Some("aws:SecureTransport")
                    && str_attr(c, "test").as_deref() == Some("Bool")
                    && text(c, "values") == "[\"false\"]"
            })
        })
        .expect("a statement conditioned on aws:SecureTransport false");
    assert_eq!(str_attr(deny, "effect").as_deref(), Some("Deny"));
    assert_eq!(text(deny, "actions"), "[\"s3:*\"]");
    assert_eq!(text(deny, "resources"), "[aws_s3_bucket.state.arn, \"${aws_s3_bucket.state.arn}/*\"]");
    let principals = block(deny, "principals");
    assert_eq!(str_attr(principals, "type").as_deref(), Some("*"));
    assert_eq!(text(principals, "identifiers"), "[\"*\"]");
}

// Terraform, azurerm backend (developer.hashicorp.com/terraform/language/backend/azurerm):
// storage_account_name, container_name and key; Microsoft Entra ID (use_azuread_auth = true) is
// the recommended authentication (access keys and SAS "not recommended for new workloads"), and
// "This backend supports state locking and consistency checking with Azure Blob Storage native
// capabilities" (a blob lease): nothing to configure for the lock.
#[test]
fn azure_backend_uses_entra_id_and_no_key() {
    let b = backend("azure", "azurerm");
    for key in ["storage_account_name", "container_name", "key"] {
        assert!(attr(&b, key).is_some(), "the azurerm backend needs `{key}`");
    }
    assert_eq!(bool_attr(&b, "use_azuread_auth"), Some(true));
    for key in ["access_key", "sas_token", "client_secret"] {
        assert!(attr(&b, key).is_none(), "no `{key}` in the backend file");
    }
}

// azurerm_storage_account (provider 4.x): min_tls_version TLS1_2, https_traffic_only_enabled,
// allow_nested_items_to_be_public false; shared_access_key_enabled = false needs the provider's
// storage_use_azuread = true (the provider's own test for allowSharedKeyAccess sets both), and
// use_azuread_auth needs a data-plane role: Storage Blob Data Contributor (Contributor cannot
// read blobs).
#[test]
fn azure_state_account_is_tls12_https_private_and_entra_id_only() {
    let m = Module::load("state/azure");
    let account = m.resource("azurerm_storage_account", "state");
    assert_eq!(str_attr(account, "min_tls_version").as_deref(), Some("TLS1_2"));
    assert_eq!(bool_attr(account, "https_traffic_only_enabled"), Some(true));
    assert_eq!(bool_attr(account, "allow_nested_items_to_be_public"), Some(false));
    assert_eq!(bool_attr(account, "shared_access_key_enabled"), Some(false));
    assert_eq!(bool_attr(account, "default_to_oauth_authentication"), Some(true));
    assert_eq!(bool_attr(account, "cross_tenant_replication_enabled"), Some(false));
    assert!(lifecycle_prevents_destroy(account));
    let provider = m
        .top_level()
        .into_iter()
        .find(|(ident, labels, _)| *ident == "provider" && labels == &["azurerm"])
        .map(|(_, _, b)| b)
        .expect("provider azurerm");
    assert_eq!(bool_attr(provider, "storage_use_azuread"), Some(true), "shared keys are off");

    let container = m.resource("azurerm_storage_container", "state");
    assert_eq!(text(container, "storage_account_id"), "azurerm_storage_account.state.id");
    assert_eq!(str_attr(container, "container_access_type").as_deref(), Some("private"));

    let role = m.resource("azurerm_role_assignment", "state");
    assert_eq!(str_attr(role, "role_definition_name").as_deref(), Some("Storage Blob Data Contributor"));
    assert_eq!(text(role, "scope"), "azurerm_storage_account.state.id");
    assert_eq!(m.default("grant_blob_data_role").to_string(), "true");
}

// Azure Blob Storage data protection: blob versioning keeps every overwritten state; blob and
// container soft delete (1 to 365 days) make a deleted state restorable.
#[test]
fn azure_state_account_versions_and_soft_deletes_blobs() {
    let m = Module::load("state/azure");
    let props = block(m.resource("azurerm_storage_account", "state"), "blob_properties");
    assert_eq!(bool_attr(props, "versioning_enabled"), Some(true));
    for policy in ["delete_retention_policy", "container_delete_retention_policy"] {
        assert_eq!(text(block(props, policy), "days"), "var.retention_days", "{policy}");
    }
    let days = m.default_number("retention_days");
    assert!((7..=365).contains(&days), "retention_days default {days}");
    let condition = one_line(attr(block(m.variable("retention_days"), "validation"), "condition").unwrap());
    assert!(condition.contains(">= 1") && condition.contains("<= 365"), "{condition}");
}

// Terraform, gcs backend (developer.hashicorp.com/terraform/language/backend/gcs): "The bucket must
// exist prior to configuring the backend. This backend supports state locking" (nothing to
// configure); bucket and prefix; "highly recommended that you enable Object Versioning".
// google_storage_bucket: uniform_bucket_level_access, public_access_prevention "enforced".
#[test]
fn gcp_state_bucket_is_versioned_uniform_and_never_public() {
    let b = backend("gcp", "gcs");
    assert!(attr(&b, "bucket").is_some() && attr(&b, "prefix").is_some());
    assert!(attr(&b, "credentials").is_none(), "Application Default Credentials, no key file");
    let m = Module::load("state/gcp");
    let bucket = m.resource("google_storage_bucket", "state");
    assert_eq!(bool_attr(block(bucket, "versioning"), "enabled"), Some(true));
    assert_eq!(bool_attr(bucket, "uniform_bucket_level_access"), Some(true));
    assert_eq!(str_attr(bucket, "public_access_prevention").as_deref(), Some("enforced"));
    assert_eq!(bool_attr(bucket, "force_destroy"), Some(false));
    assert!(lifecycle_prevents_destroy(bucket));
    // Noncurrent versions are pruned by count, never the live state.
    let rule = block(bucket, "lifecycle_rule");
    assert_eq!(str_attr(block(rule, "condition"), "with_state").as_deref(), Some("ARCHIVED"));
    assert!(num_attr(block(rule, "condition"), "num_newer_versions").is_none(), "a variable");
    assert!(m.default_number("noncurrent_versions") >= 10);
}

// The three state roots keep their own state local and their secrets out of git (the .gitignore
// rules for *.tfstate), and each script is where its documentation says.
#[test]
fn each_state_root_has_its_script_and_no_backend_of_its_own() {
    for cloud in ["aws", "azure", "gcp"] {
        let m = Module::load(&format!("state/{cloud}"));
        for t in terraform_blocks(&m) {
            assert!(t.blocks().all(|b| b.identifier() != "backend"), "terraform/state/{cloud} has a backend");
        }
        let script = read(&format!("scripts/{cloud}/bootstrap-state.sh"));
        assert!(script.contains(&format!("bootstrap_state {cloud} \"$@\"")));
        assert!(script.contains("--dry-run"), "scripts/{cloud}/bootstrap-state.sh documents --dry-run");
        let ignored = Command::new("git")
            .current_dir(repo_root())
            .args(["check-ignore", "-q", &format!("terraform/state/{cloud}/terraform.tfstate")])
            .status()
            .unwrap();
        assert!(ignored.success());
    }
}
