//! terraform/serverless/aws (issue 30, the Lambda deployment): each rule below with the
//! documentation it rests on, checked offline against the HCL and the code it must agree with.
//! The moto harness (terraform/tests/moto/serverless.sh) applies, re-plans and destroys the root;
//! these rules cover what moto does not check (it stores no LoggingConfig, has no
//! `invoked_via_function_url` in provider 5.100, and evaluates no IAM policy).

use std::{collections::BTreeSet, fs};

use candidates_edge::auth::{Access, AuthError, Caller};
use candidates_server::Config;
use clap::Parser;
use hcl::{Body, Expression};

use crate::infra::{Module, attr, binary, block, blocks, bool_attr, one_line, repo_root, str_attr, strings, text};

const ROOT: &str = "serverless/aws";

fn root() -> Module {
    Module::load(ROOT)
}

fn read(path: &str) -> String {
    fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `local.env` of lambda.tf, merged: key -> one-line HCL.
fn env(m: &Module) -> Vec<(String, String)> {
    let Expression::FuncCall(merge) = m.local("env") else { panic!("local.env is not merge(...)") };
    assert_eq!(merge.name.to_string(), "merge");
    let mut out = Vec::new();
    for arg in &merge.args {
        match arg {
            Expression::Object(o) => out.extend(o.iter().map(|(k, v)| (k.to_string(), one_line(v)))),
            // The OIDC settings, kept only when set: `{for key, value in {...} : key => value if value != ""}`.
            Expression::ForExpr(f) => {
                let Expression::Object(o) = &f.collection_expr else { panic!("for over a non-object") };
                out.extend(o.iter().map(|(k, v)| (k.to_string(), one_line(v))));
            }
            other => panic!("local.env: unexpected {other}"),
        }
    }
    out
}

fn env_value(m: &Module, key: &str) -> String {
    env(m).into_iter().find(|(k, _)| k == key).map(|(_, v)| v).unwrap_or_else(|| panic!("local.env has no {key}"))
}

// AWS Lambda developer guide, "Building Lambda functions with Rust" and "OS-only runtimes": a
// custom runtime on provided.al2023 runs an executable named `bootstrap` at the root of the zip;
// the handler setting is not used by OS-only runtimes, `bootstrap` by convention. "Lambda
// instruction set architectures": arm64 (Graviton2) or x86_64, one per function, and the binary
// must be built for it. Provider docs, aws_lambda_function: `source_code_hash` is what makes a new
// zip at the same path an update (filebase64sha256 of the file).
#[test]
fn the_function_runs_bootstrap_on_provided_al2023_for_the_chosen_architecture() {
    let m = root();
    let f = m.resource("aws_lambda_function", "this");
    assert_eq!(str_attr(f, "runtime").as_deref(), Some("provided.al2023"));
    assert_eq!(str_attr(f, "handler").as_deref(), Some("bootstrap"));
    assert_eq!(text(f, "architectures"), "[var.architecture]");
    assert_eq!(m.default_string("architecture"), "arm64", "arm64 is the cheaper default");
    let validation = one_line(attr(block(m.variable("architecture"), "validation"), "condition").unwrap());
    assert!(validation.contains("\"arm64\"") && validation.contains("\"x86_64\""), "{validation}");
    assert_eq!(text(f, "filename"), "var.package");
    assert_eq!(text(f, "source_code_hash"), "filebase64sha256(var.package)");
    assert!(attr(m.variable("package"), "default").is_none(), "the zip path has no default");
    // The binary is the adapter crate's `bootstrap`, and the build script zips that name.
    assert!(read("serverless/lambda/Cargo.toml").contains("name = \"bootstrap\""));
    let build = read("scripts/aws/serverless-build.sh");
    assert!(
        build.contains("-p candidates-lambda --bin bootstrap") && build.contains("zip -q -X \"$LAMBDA_ZIP\" bootstrap")
    );
    // Sizes and limits are variables with Lambda's ranges (the developer guide's quotas page:
    // memory 128 to 10,240 MB, timeout up to 900 seconds).
    assert_eq!(text(f, "memory_size"), "var.memory_mb");
    assert_eq!(text(f, "timeout"), "var.timeout_seconds");
    assert_eq!(text(f, "reserved_concurrent_executions"), "var.reserved_concurrency");
    let memory = one_line(attr(block(m.variable("memory_mb"), "validation"), "condition").unwrap());
    assert!(memory.contains("128") && memory.contains("10240"), "{memory}");
    let timeout = one_line(attr(block(m.variable("timeout_seconds"), "validation"), "condition").unwrap());
    assert!(timeout.contains("900"), "{timeout}");
}

// The function is configured as the binary is (docs/configuration.md): every setting is a flag's
// environment variable, except CANDIDATES_API_KEY_LINES, which the adapter reads
// (serverless/lambda/src/main.rs). AWS_REGION is reserved by Lambda (developer guide, "Defined
// runtime environment variables"), so the store's own region variable carries it.
#[test]
fn the_environment_is_the_binarys_with_the_dynamodb_store() {
    let m = root();
    assert_eq!(text(block(m.resource("aws_lambda_function", "this"), "environment"), "variables"), "local.env");
    let known = binary::env_names();
    for (key, _) in env(&m) {
        assert!(
            known.contains(&key) || key == "CANDIDATES_API_KEY_LINES",
            "{key} is neither a candidate-server environment variable nor the adapter's"
        );
        assert!(!key.starts_with("AWS_"), "{key}: Lambda reserves AWS_* names");
    }
    assert!(read("serverless/lambda/src/main.rs").contains("\"CANDIDATES_API_KEY_LINES\""));
    assert_eq!(env_value(&m, "CANDIDATES_STORE"), "\"dynamodb\"");
    assert_eq!(env_value(&m, "CANDIDATES_DYNAMODB_TABLE"), "aws_dynamodb_table.candidates.name");
    assert_eq!(env_value(&m, "CANDIDATES_DYNAMODB_REGION"), "var.region");
    assert_eq!(env_value(&m, "CANDIDATES_LOG_FORMAT"), "\"json\"");
}

// Issue 27's access rules, for a host with no file system to write at boot: access.tf is the
// other roots' own; the function gets the key lines (digests) in its environment and writes need
// candidates.write; the key itself is only in the sensitive output. Judged by the binary's policy
// code with the key file the adapter writes from those lines.
#[tokio::test]
async fn writes_need_the_deployment_key_and_only_its_digest_reaches_the_function() {
    assert_eq!(read("terraform/serverless/aws/access.tf"), read("terraform/aws/access.tf"), "access.tf differs");
    let m = root();
    assert_eq!(env_value(&m, "CANDIDATES_API_KEY_LINES"), "join(\"\\n\", local.api_key_lines)");
    assert_eq!(env_value(&m, "CANDIDATES_AUTH_WRITE"), "\"scope\"");
    assert_eq!(env_value(&m, "CANDIDATES_AUTH_READ"), "var.auth_read");
    // The key is read only by the digest (access.tf's local) and the sensitive output.
    for (kind, labels, body) in m.top_level() {
        let all = format!("{body:?}");
        if all.contains("terraform_data") && all.contains("write_key") {
            assert!(
                matches!(
                    (kind, labels.as_slice()),
                    ("resource", ["terraform_data", "write_key"]) | ("output", ["write_key"]) | ("locals", _)
                ),
                "{kind} {labels:?} reads the write key"
            );
        }
    }
    let output = m.top_level().into_iter().find(|(k, l, _)| *k == "output" && l == &["write_key"]).unwrap().2;
    assert_eq!(bool_attr(output, "sensitive"), Some(true));

    // The adapter's file, as main.rs writes it: the lines, then the binary's policy.
    let dir = tempfile::tempdir().unwrap();
    let key = candidates_api::api_key::mint().unwrap();
    let lines = format!("{} candidates.read,candidates.write deploy\n", candidates_api::api_key::digest_hex(&key));
    assert!(!lines.contains(&key));
    let file = dir.path().join("candidates-api-keys");
    fs::write(&file, &lines).unwrap();
    let config = Config::try_parse_from([
        "bootstrap",
        "--api-keys-file",
        file.to_str().unwrap(),
        "--auth-write",
        "scope",
        "--auth-read",
        &m.default_string("auth_read"),
    ])
    .unwrap();
    config.validate().unwrap();
    let auth = config.auth().unwrap();
    auth.keys().expect("a key ring").reload().await.unwrap();
    assert_eq!(auth.authorize(&Caller::Anonymous, Access::Write), Err(AuthError::Missing));
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::AUTHORIZATION, format!("Bearer {key}").parse().unwrap());
    let writer = auth.authenticate(&headers).await.unwrap();
    assert_eq!(auth.authorize(&writer, Access::Write), Ok(()));

    // access.tf's variables are checked before the apply, as modules/instance-config validates
    // them for the other roots (a bad key line would leave the function with no keys at all).
    let f = m.resource("aws_lambda_function", "this");
    let conditions: Vec<String> =
        blocks(block(f, "lifecycle"), "precondition").into_iter().map(|p| text(p, "condition")).collect();
    assert!(
        conditions.iter().any(|c| c.contains("var.api_key_lines") && c.contains("[0-9a-fA-F]{64}")),
        "{conditions:?}"
    );
    assert!(conditions.iter().any(|c| c.contains("distinct(")), "{conditions:?}");
    assert!(conditions.iter().any(|c| c.contains("var.auth_read")), "{conditions:?}");
    assert!(
        conditions.iter().any(|c| c.contains("var.oidc_issuer") && c.contains("var.oidc_audience")),
        "{conditions:?}"
    );
}

// Provider docs, aws_lambda_function_url: `authorization_type` NONE or AWS_IAM; `invoke_mode`
// BUFFERED (the default) or RESPONSE_STREAM; `cors` optional. AWS developer guide, "Lambda
// response streaming": a Function URL streams only with RESPONSE_STREAM (buffered answers are
// capped at 6 MB). The service answers CORS itself, so no `cors` block.
#[test]
fn the_function_url_is_public_streamed_and_leaves_cors_to_the_service() {
    let m = root();
    let urls = m.resources("aws_lambda_function_url");
    assert_eq!(urls.len(), 1);
    let url = urls[0].1;
    assert_eq!(text(url, "function_name"), "aws_lambda_function.this.function_name");
    assert_eq!(str_attr(url, "authorization_type").as_deref(), Some("NONE"));
    assert_eq!(str_attr(url, "invoke_mode").as_deref(), Some("RESPONSE_STREAM"));
    assert!(blocks(url, "cors").is_empty(), "the service does CORS (CANDIDATES_CORS_ALLOW_ORIGINS)");
    assert!(attr(url, "qualifier").is_none(), "the URL serves $LATEST");
    // The adapter streams (lambda_http's streaming runner), matching RESPONSE_STREAM.
    assert!(read("serverless/lambda/src/main.rs").contains("run_with_streaming_response"));
}

// AWS developer guide, "Control access to Lambda function URLs": with NONE "your function's
// resource-based policy is always in effect and must grant public access", and "starting in
// October 2025, new function URLs will require both lambda:InvokeFunctionUrl and
// lambda:InvokeFunction permissions": InvokeFunctionUrl for * with lambda:FunctionUrlAuthType =
// NONE, InvokeFunction for * with lambda:InvokedViaFunctionUrl = true (so the plain Invoke API
// stays closed). Provider docs, aws_lambda_permission: `function_url_auth_type` sets the first
// condition, `invoked_via_function_url` the second (new in provider 6.28.0, CHANGELOG, #44858).
#[test]
fn the_resource_policy_opens_the_url_and_nothing_else() {
    let m = root();
    let permissions = m.resources("aws_lambda_permission");
    assert_eq!(permissions.len(), 2, "exactly the two statements");
    let mut actions = BTreeSet::new();
    for (name, p) in permissions {
        assert_eq!(text(p, "function_name"), "aws_lambda_function.this.function_name", "{name}");
        assert_eq!(str_attr(p, "principal").as_deref(), Some("*"), "{name}");
        assert!(attr(p, "qualifier").is_none() && attr(p, "source_arn").is_none(), "{name}");
        let action = str_attr(p, "action").unwrap();
        match action.as_str() {
            "lambda:InvokeFunctionUrl" => {
                assert_eq!(str_attr(p, "function_url_auth_type").as_deref(), Some("NONE"), "{name}");
                assert!(attr(p, "invoked_via_function_url").is_none(), "{name}");
            }
            "lambda:InvokeFunction" => {
                assert_eq!(bool_attr(p, "invoked_via_function_url"), Some(true), "{name}: the Invoke API stays closed");
                assert!(attr(p, "function_url_auth_type").is_none(), "{name}");
            }
            other => panic!("{name}: unexpected action {other}"),
        }
        actions.insert(action);
    }
    assert_eq!(actions.len(), 2);
    // The provider that has `invoked_via_function_url`.
    let versions = read("terraform/serverless/aws/versions.tf");
    assert!(versions.contains("version = \">= 6.28, < 7.0\""), "the aws provider must be >= 6.28");
    // The moto harness leaves out only that statement's file, and the file holds only it.
    let invoke = hcl::parse(&read("terraform/serverless/aws/function_url_invoke.tf")).unwrap();
    let labels: Vec<Vec<String>> =
        invoke.blocks().map(|b| b.labels().iter().map(|l| l.as_str().to_owned()).collect()).collect();
    assert_eq!(labels, [vec!["aws_lambda_permission".to_owned(), "url_invoke".to_owned()]]);
    let harness = read("terraform/tests/moto/serverless.sh");
    assert!(harness.contains("! -name function_url_invoke.tf"));
}

/// The policy document's statements as (sid, actions, resources).
fn statements(doc: &Body) -> Vec<(String, Vec<String>, String)> {
    blocks(doc, "statement")
        .into_iter()
        .map(|s| {
            assert!(attr(s, "effect").is_none_or(|e| e.to_string() == "\"Allow\""));
            let actions = match attr(s, "actions") {
                Some(Expression::Array(_)) => strings(attr(s, "actions").unwrap()),
                _ => vec![text(s, "actions")],
            };
            (str_attr(s, "sid").unwrap_or_default(), actions, text(s, "resources"))
        })
        .collect()
}

// Least privilege. AWS developer guide, "Defining Lambda function permissions with an execution
// role": the role is assumed by lambda.amazonaws.com; "Sending Lambda function logs to CloudWatch
// Logs": the function needs logs:CreateLogStream and logs:PutLogEvents (and CreateLogGroup only
// when Lambda makes the group, which Terraform does here). The table: the five calls the store
// makes (dynamodb::REQUIRED_PERMISSIONS), on its ARN only. No managed policy attached.
#[test]
fn the_role_may_write_its_own_log_group_and_use_its_own_table_only() {
    let m = root();
    let assume = block(m.data("aws_iam_policy_document", "lambda_assume"), "statement");
    assert_eq!(strings(attr(assume, "actions").unwrap()), ["sts:AssumeRole"]);
    let principals = block(assume, "principals");
    assert_eq!(str_attr(principals, "type").as_deref(), Some("Service"));
    assert_eq!(strings(attr(principals, "identifiers").unwrap()), ["lambda.amazonaws.com"]);
    assert_eq!(
        text(m.resource("aws_iam_role", "function"), "assume_role_policy"),
        "data.aws_iam_policy_document.lambda_assume.json"
    );
    assert_eq!(text(m.resource("aws_lambda_function", "this"), "role"), "aws_iam_role.function.arn");

    let backend: BTreeSet<String> =
        candidates_server::store::dynamodb::REQUIRED_PERMISSIONS.iter().map(|p| p.to_string()).collect();
    let granted: BTreeSet<String> = strings(m.local("dynamodb_actions")).into_iter().collect();
    assert_eq!(granted, backend, "local.dynamodb_actions vs dynamodb::REQUIRED_PERMISSIONS");

    let doc = m.data("aws_iam_policy_document", "function");
    assert_eq!(
        statements(doc),
        [
            (
                "OwnLogGroup".to_owned(),
                vec!["logs:CreateLogStream".to_owned(), "logs:PutLogEvents".to_owned()],
                "[\"${aws_cloudwatch_log_group.function.arn}:*\"]".to_owned()
            ),
            (
                "CandidatesTable".to_owned(),
                vec!["local.dynamodb_actions".to_owned()],
                "[aws_dynamodb_table.candidates.arn]".to_owned()
            ),
        ]
    );
    // The optional KMS statement (a customer managed key) is only through DynamoDB.
    let dynamic = block(doc, "dynamic");
    assert!(format!("{dynamic:?}").contains("kms:ViaService"));

    // What is attached to the role: this one inline policy (the function only assumes it).
    let mut attached = Vec::new();
    for (ty, name, body) in m.all_resources() {
        if ty != "aws_lambda_function" && text(body, "role").starts_with("aws_iam_role.function") {
            attached.push(format!("{ty}.{name}"));
        }
    }
    assert_eq!(attached, ["aws_iam_role_policy.function"]);
    assert_eq!(
        text(m.resource("aws_iam_role_policy", "function"), "policy"),
        "data.aws_iam_policy_document.function.json"
    );
    assert!(m.resources("aws_iam_role_policy_attachment").is_empty());
}

// Provider docs, aws_lambda_function `logging_config` (`log_group`, `log_format`) and
// aws_cloudwatch_log_group `retention_in_days`; Lambda's default group is /aws/lambda/<function
// name>. Made by Terraform before the function, with a retention, and the function logs there.
#[test]
fn the_function_logs_to_its_own_group_with_a_retention() {
    let m = root();
    let group = m.resource("aws_cloudwatch_log_group", "function");
    assert_eq!(text(group, "name"), "\"/aws/lambda/${var.name}\"");
    assert_eq!(text(group, "retention_in_days"), "var.log_retention_days");
    assert!(m.default_number("log_retention_days") >= 365, "checkov CKV_AWS_338: a year at least");
    let f = m.resource("aws_lambda_function", "this");
    assert_eq!(text(f, "function_name"), "var.name", "the group's name is the function's");
    let logging = block(f, "logging_config");
    assert_eq!(text(logging, "log_group"), "aws_cloudwatch_log_group.function.name");
    assert_eq!(str_attr(logging, "log_format").as_deref(), Some("Text"), "the service writes JSON lines itself");
    let depends = text(f, "depends_on");
    assert!(depends.contains("aws_iam_role_policy.function") && depends.contains("aws_cloudwatch_log_group.function"));
}

// The table as the scaling-group root makes it (AWS docs: on-demand capacity, point-in-time
// recovery, encryption at rest), keyed as the store expects.
#[test]
fn the_table_is_on_demand_recoverable_and_encrypted() {
    let m = root();
    let t = m.resource("aws_dynamodb_table", "candidates");
    assert_eq!(str_attr(t, "billing_mode").as_deref(), Some("PAY_PER_REQUEST"));
    assert_eq!(str_attr(t, "hash_key").as_deref(), Some("CandidateName"));
    assert_eq!(bool_attr(block(t, "point_in_time_recovery"), "enabled"), Some(true));
    assert_eq!(bool_attr(block(t, "server_side_encryption"), "enabled"), Some(true));
    let aws = Module::load("aws");
    assert_eq!(
        str_attr(aws.resource("aws_dynamodb_table", "candidates"), "hash_key"),
        str_attr(t, "hash_key"),
        "the same key as terraform/aws's table"
    );
}

// The outputs the scripts read (scripts/aws/serverless-validate.sh).
#[test]
fn the_outputs_are_what_the_scripts_read() {
    let m = root();
    let outputs: BTreeSet<&str> =
        m.top_level().into_iter().filter(|(k, _, _)| *k == "output").map(|(_, l, _)| l[0]).collect();
    for name in ["function_url", "write_key", "table_name"] {
        assert!(outputs.contains(name), "no output {name}");
    }
    let validate = read("scripts/aws/serverless-validate.sh");
    assert!(
        validate.contains("use_write_key \"$SLS_DIR\"") && validate.contains("tf_output \"$SLS_DIR\" function_url")
    );
    assert!(validate.contains("check --rest-target \"$url\" --skip-grpc"));
}
