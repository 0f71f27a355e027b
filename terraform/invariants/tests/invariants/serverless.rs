//! terraform/serverless/{aws,azure,gcp} (issue 30, the serverless deployments): each rule below
//! with the documentation it rests on, checked offline against the HCL and the code it must agree
//! with. The moto harness (terraform/tests/moto/serverless.sh) applies, re-plans and destroys the
//! AWS root; these rules cover what moto does not check (it stores no LoggingConfig, has no
//! `invoked_via_function_url` in provider 5.100, and evaluates no IAM policy). Nothing applies the
//! Azure and Google Cloud roots here (no emulator for either, and their providers are not
//! installed): these rules, and schema.rs's check of every block against the providers' schemas,
//! are all that checks them.

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

/// Whether a host adapter turns CANDIDATES_API_KEY_LINES into its key file: itself, or through
/// the shared `candidates_server::host::api_key_lines_from_env`.
fn adapter_reads_key_lines(main_rs: &str) -> bool {
    let main = read(main_rs);
    main.contains("\"CANDIDATES_API_KEY_LINES\"")
        || (main.contains("host::api_key_lines_from_env(")
            && read("server/src/host.rs").contains("\"CANDIDATES_API_KEY_LINES\""))
}

/// `local.env` of lambda.tf, merged: key -> one-line HCL.
fn env(m: &Module) -> Vec<(String, String)> {
    merged(m, "env")
}

/// A local of the form `merge({...}, {for key, value in {...} : key => value if value != ""})`
/// (the settings a root passes to the binary): key -> one-line HCL.
fn merged(m: &Module, local: &str) -> Vec<(String, String)> {
    let Expression::FuncCall(merge) = m.local(local) else { panic!("local.{local} is not merge(...)") };
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
            other => panic!("local.{local}: unexpected {other}"),
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
    // PutFunctionConcurrency: a reservation must leave 100 unreserved executions in the account;
    // accounts with a limit of 10 or 50 exist, so no reservation unless asked for (and then the
    // apply script checks the account first).
    assert_eq!(one_line(attr(m.variable("reserved_concurrency"), "default").unwrap()), "-1");
    let apply = read("scripts/aws/serverless-apply.sh");
    assert!(apply.contains("AccountLimit.UnreservedConcurrentExecutions") && apply.contains("< 100"));
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
    assert!(adapter_reads_key_lines("serverless/lambda/src/main.rs"));
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

/// The write key is read only by access.tf's digest local and its sensitive output, and
/// access.tf is the scaling-group roots' own file.
fn write_key_stays_in_access_tf(m: &Module, root: &str) {
    assert_eq!(
        read(&format!("terraform/{root}/access.tf")),
        read("terraform/aws/access.tf"),
        "{root}: access.tf differs"
    );
    for (kind, labels, body) in m.top_level() {
        let all = format!("{body:?}");
        if all.contains("terraform_data") && all.contains("write_key") {
            assert!(
                matches!(
                    (kind, labels.as_slice()),
                    ("resource", ["terraform_data", "write_key"]) | ("output", ["write_key"]) | ("locals", _)
                ),
                "{root}: {kind} {labels:?} reads the write key"
            );
        }
    }
    let output = m.top_level().into_iter().find(|(k, l, _)| *k == "output" && l == &["write_key"]).unwrap().2;
    assert_eq!(bool_attr(output, "sensitive"), Some(true));
}

/// access.tf's variables are checked before the apply (as modules/instance-config does for the
/// scaling groups): a bad key line would leave the deployment with no keys at all.
fn access_preconditions(body: &Body) {
    let conditions: Vec<String> =
        blocks(block(body, "lifecycle"), "precondition").into_iter().map(|p| text(p, "condition")).collect();
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

/// `variable "NAME"`'s validation condition, on one line.
fn validation(m: &Module, name: &str) -> String {
    one_line(attr(block(m.variable(name), "validation"), "condition").unwrap())
}

// --- Azure Functions (terraform/serverless/azure) ------------------------------------------------

const AZURE: &str = "serverless/azure";

fn azure() -> Module {
    Module::load(AZURE)
}

// Microsoft, "Azure Functions custom handlers": the app's root holds host.json, one folder per
// function with its function.json, and the handler executable, which host.json names in
// customHandler.description.defaultExecutablePath; with enableForwardingHttpRequest the host
// passes an HTTP-triggered function's request through as it came (only for a function with an
// HTTP trigger and an http output); extensions.http.routePrefix "" removes the /api prefix. The
// build script zips exactly that layout, with the adapter crate's `handler` binary at the root.
#[test]
fn the_package_is_a_custom_handler_app_forwarding_every_path() {
    let host: serde_json::Value = serde_json::from_str(&read("serverless/azure-functions/app/host.json")).unwrap();
    assert_eq!(host["version"], "2.0");
    assert_eq!(host["customHandler"]["description"]["defaultExecutablePath"], "handler");
    assert_eq!(host["customHandler"]["enableForwardingHttpRequest"], true);
    assert_eq!(host["extensions"]["http"]["routePrefix"], "");
    let function: serde_json::Value =
        serde_json::from_str(&read("serverless/azure-functions/app/api/function.json")).unwrap();
    let bindings = function["bindings"].as_array().unwrap();
    assert_eq!(bindings.len(), 2, "one HTTP trigger and one http output (forwarding needs exactly that)");
    assert_eq!(bindings[0]["type"], "httpTrigger");
    assert_eq!(bindings[0]["route"], "{*path}");
    assert_eq!(bindings[0]["authLevel"], "anonymous", "the service applies its own key or token policy");
    assert_eq!(bindings[1]["type"], "http");
    // The binary host.json names is the adapter crate's, and the build zips it at the root with the app.
    assert!(read("serverless/azure-functions/Cargo.toml").contains("name = \"handler\""));
    let build = read("scripts/azure/serverless-build.sh");
    assert!(build.contains("-p candidates-functions --bin handler"), "the build builds the adapter");
    assert!(build.contains("cp -R \"$ROOT/serverless/azure-functions/app/.\" \"$stage/\""));
    assert!(build.contains("zip -q -X -r \"$FUNCTIONS_ZIP\" host.json api handler"));
    assert!(build.contains("chmod 755 \"$stage/handler\""), "the host runs handler as an executable");
}

// The plan: Flex Consumption (FC1, Linux). Microsoft's Functions stacks API (as Az.Functions ships
// it, FunctionsStackFlexData/custom.json): the custom handler stack on sku FC1 is
// functionAppConfig.runtime {name "custom", version "1.0"}, instance memory 512, 2048 (default) or
// 4096 MB, maximum instance count 40 to 1000. Provider docs, azurerm_function_app_flex_consumption:
// `runtime_name` (the provider's validation accepts "custom"), `runtime_version`,
// `instance_memory_in_mb`, `maximum_instance_count`, `http_concurrency` 1 to 1000; the plan is an
// azurerm_service_plan with sku_name FC1 and os_type Linux. On Flex Consumption the runtime is not
// an app setting: FUNCTIONS_WORKER_RUNTIME (what a Consumption-plan custom handler sets to
// "custom"), FUNCTIONS_EXTENSION_VERSION and WEBSITE_RUN_FROM_PACKAGE are not used there
// (Microsoft, "App settings reference": deprecated or not supported on Flex Consumption).
#[test]
fn the_app_runs_the_custom_handler_on_flex_consumption() {
    let m = azure();
    let plan = m.resource("azurerm_service_plan", "this");
    assert_eq!(str_attr(plan, "sku_name").as_deref(), Some("FC1"));
    assert_eq!(str_attr(plan, "os_type").as_deref(), Some("Linux"));
    let app = m.resource("azurerm_function_app_flex_consumption", "this");
    assert_eq!(text(app, "service_plan_id"), "azurerm_service_plan.this.id");
    assert_eq!(str_attr(app, "runtime_name").as_deref(), Some("custom"));
    assert_eq!(str_attr(app, "runtime_version").as_deref(), Some("1.0"));
    assert!(m.resources("azurerm_linux_function_app").is_empty(), "one app, on Flex Consumption");

    assert_eq!(text(app, "instance_memory_in_mb"), "var.instance_memory_mb");
    assert_eq!(m.default_number("instance_memory_mb"), 2048);
    let memory = validation(&m, "instance_memory_mb");
    assert!(memory.contains("[512, 2048, 4096]"), "{memory}");
    assert_eq!(text(app, "maximum_instance_count"), "var.max_instances");
    let max = validation(&m, "max_instances");
    assert!(max.contains(">= 40") && max.contains("<= 1000"), "{max}");
    assert!((40..=1000).contains(&m.default_number("max_instances")));
    assert_eq!(text(app, "http_concurrency"), "var.http_concurrency");
    let concurrency = validation(&m, "http_concurrency");
    assert!(concurrency.contains(">= 1") && concurrency.contains("<= 1000"), "{concurrency}");

    let settings: Vec<String> = merged(&m, "app_settings").into_iter().map(|(k, _)| k).collect();
    for key in ["FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE"] {
        assert!(!settings.iter().any(|s| s == key), "{key}: not an app setting on Flex Consumption");
    }
    // The package goes to the deployment container by one deploy, after the apply.
    assert!(attr(app, "zip_deploy_file").is_none());
    assert_eq!(str_attr(app, "storage_container_type").as_deref(), Some("blobContainer"));
    let apply = read("scripts/azure/serverless-apply.sh");
    assert!(apply.contains("az functionapp deployment source config-zip --resource-group \"$group\" --name \"$app\" --src \"$FUNCTIONS_ZIP\""));
}

// The app's settings are the binary's environment variables (docs/configuration.md; the handler
// parses Config from the environment), plus two of the platform's: the host's identity-based
// storage connection (Microsoft, "Connecting to host storage with an identity":
// AzureWebJobsStorage__accountName) and Application Insights' Entra ID ingestion
// (APPLICATIONINSIGHTS_AUTHENTICATION_STRING), and the adapter's CANDIDATES_API_KEY_LINES. The
// host sets FUNCTIONS_CUSTOMHANDLER_PORT itself. The store is Cosmos DB under the server's own
// variable names (COSMOS_ENDPOINT, ...; not the CANDIDATES_COSMOS_ENDPOINT an older doc showed),
// through the managed identity: no key in any setting.
#[test]
fn the_app_settings_are_the_binarys_with_the_cosmos_store() {
    let m = azure();
    let app = m.resource("azurerm_function_app_flex_consumption", "this");
    assert_eq!(text(app, "app_settings"), "local.app_settings");
    let known = binary::env_names();
    let platform = [
        "AzureWebJobsStorage__accountName",
        "AzureWebJobsStorage__credential",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    ];
    let settings = merged(&m, "app_settings");
    for (key, _) in &settings {
        assert!(
            known.contains(key) || key == "CANDIDATES_API_KEY_LINES" || platform.contains(&key.as_str()),
            "{key} is neither a candidate-server environment variable, the adapter's, nor the platform's"
        );
        assert!(!key.starts_with("FUNCTIONS_") && !key.starts_with("WEBSITE_"), "{key}: the platform sets it");
        assert!(!key.contains("COSMOS_KEY"), "{key}: Cosmos DB through the managed identity only");
    }
    let value = |key: &str| settings.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(value("CANDIDATES_STORE"), "\"cosmos\"");
    assert_eq!(value("COSMOS_ENDPOINT"), "azurerm_cosmosdb_account.this.endpoint");
    assert_eq!(value("COSMOS_DATABASE_NAME"), "azurerm_cosmosdb_sql_database.this.name");
    assert_eq!(value("COSMOS_CONTAINER_NAME"), "azurerm_cosmosdb_sql_container.candidates.name");
    assert_eq!(value("CANDIDATES_LOG_FORMAT"), "\"json\"");
    assert_eq!(value("AzureWebJobsStorage__accountName"), "azurerm_storage_account.functions.name");
    // Without the credential setting the host looks for a connection string and does not start
    // (Microsoft's Flex Consumption samples set both; azure/terraform-azurerm-avm-res-web-site #376).
    assert_eq!(value("AzureWebJobsStorage__credential"), "\"managedidentity\"");
    // The provider also writes a scalar AzureWebJobsStorage (a connection string, with an empty key
    // under the app's identity: helpers.ExpandSiteConfigFunctionFlexConsumptionApp appends it
    // whenever the storage string is not empty; provider issues #29693, #30732), which the host
    // reads first. Terraform itself removes it after every apply that changed the app, so that a
    // hand-run apply cannot leave it behind.
    assert!(!settings.iter().any(|(k, _)| k == "AzureWebJobsStorage"));
    let drop = m.resource("terraform_data", "drop_keyless_storage_string");
    assert_eq!(text(drop, "triggers_replace"), "azurerm_function_app_flex_consumption.this");
    let exec = block(drop, "provisioner");
    let command = str_attr(exec, "command").unwrap();
    assert!(
        command.contains("az functionapp config appsettings delete")
            && command.contains("--setting-names AzureWebJobsStorage ")
    );
    assert!(
        command.contains("\"$GROUP\"") && command.contains("\"$APP\""),
        "names through the environment, not the shell"
    );
    // The system-assigned identity is the app's only one, so the store's credential needs no client id.
    assert!(!settings.iter().any(|(k, _)| k == "CANDIDATES_COSMOS_IDENTITY_CLIENT_ID"));
    assert_eq!(str_attr(block(app, "identity"), "type").as_deref(), Some("SystemAssigned"));
    // The database and container default to the server's own defaults.
    assert_eq!(m.default_string("cosmos_database"), binary::default("cosmos_database"));
    assert_eq!(m.default_string("cosmos_container"), binary::default("cosmos_container"));
}

// Provider docs, azurerm_function_app_flex_consumption: `https_only` (default false),
// site_config `minimum_tls_version` and `scm_minimum_tls_version`,
// `webdeploy_publish_basic_authentication_enabled` (default true), `identity`. HTTPS only, TLS 1.2
// at least, no basic-auth publishing credentials (the deploy uses Entra ID), no App Service
// authentication or CORS in front of the service (it applies its own policy and answers CORS).
#[test]
fn the_app_is_https_only_with_tls_1_2_and_no_publishing_passwords() {
    let m = azure();
    let app = m.resource("azurerm_function_app_flex_consumption", "this");
    assert_eq!(bool_attr(app, "https_only"), Some(true));
    assert_eq!(bool_attr(app, "webdeploy_publish_basic_authentication_enabled"), Some(false));
    let site = block(app, "site_config");
    assert_eq!(str_attr(site, "minimum_tls_version").as_deref(), Some("1.2"));
    assert_eq!(str_attr(site, "scm_minimum_tls_version").as_deref(), Some("1.2"));
    assert!(blocks(site, "cors").is_empty(), "the service does CORS (CANDIDATES_CORS_ALLOW_ORIGINS)");
    assert!(blocks(app, "auth_settings").is_empty() && blocks(app, "auth_settings_v2").is_empty());
    assert!(attr(app, "storage_access_key").is_none());
    access_preconditions(app);
}

// Microsoft, "Azure Cosmos DB serverless": an account is serverless through the EnableServerless
// capability, and has no provisioned throughput to set. "Disable key-based authentication":
// local_authentication_disabled (provider docs, azurerm_cosmosdb_account), so only Entra ID
// identities reach the data. The container is keyed as the store expects (server/src/store/
// cosmos.rs: partition key /CandidateName, as terraform/azure/cosmos.tf makes it).
#[test]
fn cosmos_is_serverless_keyless_and_keyed_by_candidate_name() {
    let m = azure();
    let account = m.resource("azurerm_cosmosdb_account", "this");
    assert_eq!(bool_attr(account, "local_authentication_disabled"), Some(true));
    assert_eq!(bool_attr(account, "access_key_metadata_writes_enabled"), Some(false));
    assert_eq!(str_attr(account, "minimal_tls_version").as_deref(), Some("Tls12"));
    assert_eq!(str_attr(account, "kind").as_deref(), Some("GlobalDocumentDB"));
    let capabilities: Vec<String> =
        blocks(account, "capabilities").into_iter().filter_map(|c| str_attr(c, "name")).collect();
    assert_eq!(capabilities, ["EnableServerless"]);
    let database = m.resource("azurerm_cosmosdb_sql_database", "this");
    assert!(attr(database, "throughput").is_none() && blocks(database, "autoscale_settings").is_empty());
    let container = m.resource("azurerm_cosmosdb_sql_container", "candidates");
    assert_eq!(strings(attr(container, "partition_key_paths").unwrap()), ["/CandidateName"]);
    assert!(attr(container, "throughput").is_none() && blocks(container, "autoscale_settings").is_empty());
    assert!(read("server/src/store/cosmos.rs").contains("(partition key /CandidateName)"));
    let scaling = Module::load("azure");
    assert_eq!(
        text(scaling.resource("azurerm_cosmosdb_sql_container", "candidates"), "partition_key_paths"),
        text(container, "partition_key_paths"),
        "the same partition key as terraform/azure's container"
    );
}

// Least privilege. Microsoft, "Configure role-based access control with Microsoft Entra ID for
// your Azure Cosmos DB account": data-plane access is a Cosmos DB SQL role assignment (not Azure
// RBAC), of a built-in role (Data Reader ...0001, Data Contributor ...0002) or a custom role
// listing data actions, at the account, a database or a container. The built-in Data Contributor
// allows containers/* and items/*; the store needs four item and query actions on its container
// and readMetadata on the account (cosmos::REQUIRED_PERMISSIONS), which two custom roles grant,
// as in terraform/azure. Assigned to the app's system-assigned identity. Azure RBAC: Storage Blob
// Data Owner on the app's storage account (Microsoft: what identity-based AzureWebJobsStorage
// needs) and Monitoring Metrics Publisher on the Application Insights component (Microsoft,
// "Microsoft Entra authentication for Application Insights"); nothing at a wider scope, no Owner
// or Contributor.
#[test]
fn the_apps_identity_holds_exactly_the_stores_cosmos_actions_and_two_scoped_roles() {
    let m = azure();
    let (want_metadata, want_data): (Vec<&str>, Vec<&str>) =
        candidates_server::store::cosmos::REQUIRED_PERMISSIONS.iter().partition(|p| **p == "readMetadata");
    let prefix = "Microsoft.DocumentDB/databaseAccounts/";
    let want_data: BTreeSet<String> = want_data.iter().map(|p| format!("{prefix}{p}")).collect();
    let want_metadata: BTreeSet<String> = want_metadata.iter().map(|p| format!("{prefix}{p}")).collect();
    let data: BTreeSet<String> = strings(m.local("cosmos_data_actions")).into_iter().collect();
    assert_eq!(data, want_data, "local.cosmos_data_actions vs cosmos::REQUIRED_PERMISSIONS");
    let metadata: BTreeSet<String> = strings(m.local("cosmos_metadata_actions")).into_iter().collect();
    assert_eq!(metadata, want_metadata);

    let data_role = m.resource("azurerm_cosmosdb_sql_role_definition", "data");
    assert_eq!(text(block(data_role, "permissions"), "data_actions"), "local.cosmos_data_actions");
    assert_eq!(text(data_role, "assignable_scopes"), "[local.container_scope]");
    let metadata_role = m.resource("azurerm_cosmosdb_sql_role_definition", "metadata");
    assert_eq!(text(block(metadata_role, "permissions"), "data_actions"), "local.cosmos_metadata_actions");

    let assignments = m.resources("azurerm_cosmosdb_sql_role_assignment");
    assert_eq!(assignments.len(), 2);
    for (name, a) in assignments {
        assert_eq!(text(a, "principal_id"), "local.function_principal_id", "{name}");
        let (role, scope) = match name {
            "data" => ("azurerm_cosmosdb_sql_role_definition.data.id", "local.container_scope"),
            "metadata" => ("azurerm_cosmosdb_sql_role_definition.metadata.id", "azurerm_cosmosdb_account.this.id"),
            other => panic!("unexpected assignment {other}"),
        };
        assert_eq!(text(a, "role_definition_id"), role, "{name}");
        assert_eq!(text(a, "scope"), scope, "{name}");
    }
    assert_eq!(
        one_line(m.local("function_principal_id")),
        "azurerm_function_app_flex_consumption.this.identity[0].principal_id"
    );
    let scope = one_line(m.local("container_scope"));
    assert!(scope.contains("/dbs/${azurerm_cosmosdb_sql_database.this.name}/colls/"), "{scope}");
    // No built-in data role (the contributor's id ends in 2, the reader's in 1) anywhere.
    for e in m.expressions() {
        assert!(!e.contains("00000000-0000-0000-0000-00000000000"), "a built-in Cosmos DB data role: {e}");
    }

    let mut rbac: Vec<(String, String, String)> = m
        .resources("azurerm_role_assignment")
        .into_iter()
        .map(|(name, a)| {
            assert_eq!(
                text(a, "principal_id"),
                "azurerm_function_app_flex_consumption.this.identity[0].principal_id",
                "{name}"
            );
            assert!(attr(a, "role_definition_id").is_none(), "{name}: by name, so the test can read it");
            (name.to_owned(), str_attr(a, "role_definition_name").unwrap(), text(a, "scope"))
        })
        .collect();
    rbac.sort();
    assert_eq!(
        rbac,
        [
            (
                "insights".to_owned(),
                "Monitoring Metrics Publisher".to_owned(),
                "azurerm_application_insights.this.id".to_owned()
            ),
            (
                "storage".to_owned(),
                "Storage Blob Data Owner".to_owned(),
                "azurerm_storage_account.functions.id".to_owned()
            ),
        ]
    );
    assert!(m.resources("azurerm_user_assigned_identity").is_empty(), "the system-assigned identity only");
}

// Provider docs, azurerm_storage_account: `shared_access_key_enabled` (false: Entra ID only),
// `min_tls_version` TLS1_2, `allow_nested_items_to_be_public`. azurerm_function_app_flex_consumption:
// `storage_authentication_type` SystemAssignedIdentity reads the deployment container with the
// app's identity, so no `storage_access_key`. The provider itself stays off the data plane.
#[test]
fn storage_takes_no_shared_keys() {
    let m = azure();
    let storage = m.resource("azurerm_storage_account", "functions");
    assert_eq!(bool_attr(storage, "shared_access_key_enabled"), Some(false));
    assert_eq!(bool_attr(storage, "default_to_oauth_authentication"), Some(true));
    assert_eq!(bool_attr(storage, "allow_nested_items_to_be_public"), Some(false));
    assert_eq!(bool_attr(storage, "https_traffic_only_enabled"), Some(true));
    assert_eq!(str_attr(storage, "min_tls_version").as_deref(), Some("TLS1_2"));
    let container = m.resource("azurerm_storage_container", "deployments");
    assert_eq!(str_attr(container, "container_access_type").as_deref(), Some("private"));
    let app = m.resource("azurerm_function_app_flex_consumption", "this");
    assert_eq!(str_attr(app, "storage_authentication_type").as_deref(), Some("SystemAssignedIdentity"));
    assert_eq!(
        text(app, "storage_container_endpoint"),
        "\"${azurerm_storage_account.functions.primary_blob_endpoint}${azurerm_storage_container.deployments.name}\""
    );
    // Provider docs, features.storage.data_plane_available (false: ARM only) and
    // storage_use_azuread: the provider never needs the keys the account does not allow.
    let versions = read("terraform/serverless/azure/versions.tf");
    assert!(versions.contains("data_plane_available = false") && versions.contains("storage_use_azuread = true"));
    // The account name: at most 24 lower-case letters and digits.
    assert!(text(storage, "name").starts_with("substr(\"${replace(var.name, \"-\", \"\")}"));
    let name = validation(&m, "name");
    assert!(name.contains("{1,15}"), "2 to 16 characters, so that name + 8 hex digits fit in 24: {name}");
}

// Provider docs, azurerm_application_insights (`workspace_id`, `retention_in_days`: 30, 60, 90,
// 120, 180, 270, 365, 550 or 730; `local_authentication_disabled`) and
// azurerm_log_analytics_workspace (`retention_in_days`); azurerm_function_app_flex_consumption
// site_config `application_insights_connection_string`. Logs stay for a year by default.
#[test]
fn the_app_logs_to_application_insights_with_a_retention() {
    let m = azure();
    let workspace = m.resource("azurerm_log_analytics_workspace", "this");
    assert_eq!(text(workspace, "retention_in_days"), "var.log_retention_days");
    let insights = m.resource("azurerm_application_insights", "this");
    assert_eq!(text(insights, "workspace_id"), "azurerm_log_analytics_workspace.this.id");
    assert_eq!(text(insights, "retention_in_days"), "var.log_retention_days");
    assert_eq!(bool_attr(insights, "local_authentication_disabled"), Some(true));
    assert!(m.default_number("log_retention_days") >= 365);
    assert!(validation(&m, "log_retention_days").contains("[30, 60, 90, 120, 180, 270, 365, 550, 730]"));
    let site = block(m.resource("azurerm_function_app_flex_consumption", "this"), "site_config");
    assert_eq!(
        text(site, "application_insights_connection_string"),
        "azurerm_application_insights.this.connection_string"
    );
    let settings = merged(&m, "app_settings");
    assert!(
        settings
            .contains(&("APPLICATIONINSIGHTS_AUTHENTICATION_STRING".to_owned(), "\"Authorization=AAD\"".to_owned()))
    );
}

// Issue 27's access rules: access.tf is the other roots' own; the app gets the key lines (digests,
// not the key: no Key Vault reference is needed for them, and the write key never reaches the
// app) in CANDIDATES_API_KEY_LINES, which the Functions adapter turns into its key file as
// `bootstrap` does (candidates_server::host::api_key_lines_from_env), and writes need
// candidates.write. Without the key file the binary's configuration would refuse
// CANDIDATES_AUTH_WRITE=scope: the app would fail closed, never open.
#[test]
fn writes_need_the_deployment_key_and_the_app_fails_closed_without_it() {
    let m = azure();
    write_key_stays_in_access_tf(&m, AZURE);
    let settings = merged(&m, "app_settings");
    let value = |key: &str| settings.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(value("CANDIDATES_API_KEY_LINES"), "join(\"\\n\", local.api_key_lines)");
    assert_eq!(value("CANDIDATES_AUTH_WRITE"), "\"scope\"");
    assert_eq!(value("CANDIDATES_AUTH_READ"), "var.auth_read");
    assert!(adapter_reads_key_lines("serverless/azure-functions/src/main.rs"), "handler must read the key lines");
    let config = Config::try_parse_from(["handler", "--auth-write", "scope"]).unwrap();
    assert!(config.validate().is_err(), "scope without a key file must refuse to start, not open writes");
}

// The outputs the scripts read (scripts/azure/serverless-{apply,validate}.sh).
#[test]
fn the_azure_outputs_are_what_the_scripts_read() {
    let m = azure();
    let outputs: BTreeSet<&str> =
        m.top_level().into_iter().filter(|(k, _, _)| *k == "output").map(|(_, l, _)| l[0]).collect();
    for name in ["function_url", "function_app_name", "resource_group", "write_key"] {
        assert!(outputs.contains(name), "no output {name}");
    }
    let validate = read("scripts/azure/serverless-validate.sh");
    assert!(
        validate.contains("use_write_key \"$SLS_DIR\"") && validate.contains("tf_output \"$SLS_DIR\" function_url")
    );
    assert!(validate.contains("check --rest-target \"$url\" --skip-grpc"));
    assert!(validate.contains("anonymous_writes_refused \"$url\""));
    assert!(read("scripts/azure/serverless-env.sh").contains("SLS_DIR=serverless/azure"));
}

// --- Google Cloud Run (terraform/serverless/gcp) -------------------------------------------------

const GCP: &str = "serverless/gcp";

fn gcp_root() -> Module {
    Module::load(GCP)
}

/// The service's one container block.
fn container(m: &Module) -> &Body {
    block(block(m.resource("google_cloud_run_v2_service", "this"), "template"), "containers")
}

// Cloud Run, "Use HTTP/2 for services": without end-to-end HTTP/2, Cloud Run downgrades requests
// to HTTP/1 on their way to the container; with it, the container must speak HTTP/2 cleartext
// (h2c), and in a service's YAML (and the provider's `ports` block) that is the port named "h2c".
// "Container runtime contract": the container listens on the port Cloud Run passes in PORT, which
// is the service's container port. Single-port mode (docs/configuration.md) serves REST and gRPC,
// HTTP/1.1 and h2c, on PORT; the image listens on 8080 (serverless/cloud-run/build-image.py).
#[test]
fn the_service_speaks_h2c_end_to_end_on_the_port_cloud_run_passes() {
    let m = gcp_root();
    let ports = blocks(container(&m), "ports");
    assert_eq!(ports.len(), 1, "one port: Cloud Run routes one");
    assert_eq!(str_attr(ports[0], "name").as_deref(), Some("h2c"));
    assert_eq!(text(ports[0], "container_port"), "var.port");
    let image = read("serverless/cloud-run/build-image.py");
    assert!(image.contains(&format!("PORT = {}", m.default_number("port"))), "the image's port");
    assert!(image.contains("\"CANDIDATES_SINGLE_PORT=true\""));
    let env = merged(&m, "env");
    assert!(env.contains(&("CANDIDATES_SINGLE_PORT".to_owned(), "\"true\"".to_owned())));
    assert!(read("server/src/config.rs").contains("PORT"), "the binary reads PORT in single-port mode");
}

// Cloud Run, "Configure environment variables", reserved names: "The environment variables defined
// in the container runtime contract are reserved and cannot be set. In particular, the PORT
// environment variable is injected inside your container by Cloud Run" (and K_SERVICE, K_REVISION,
// K_CONFIGURATION). Everything else the service gets is the binary's own variables
// (docs/configuration.md), through one dynamic `env` block over local.env.
#[test]
fn the_environment_is_the_binarys_and_sets_no_reserved_name() {
    let m = gcp_root();
    let dynamic: Vec<&hcl::Block> =
        container(&m).blocks().filter(|b| b.identifier() == "dynamic" && b.labels()[0].as_str() == "env").collect();
    assert_eq!(dynamic.len(), 1);
    assert_eq!(text(dynamic[0].body(), "for_each"), "local.env");
    assert!(blocks(container(&m), "env").is_empty(), "every variable through local.env");
    let known = binary::env_names();
    for (key, _) in merged(&m, "env") {
        assert!(!["PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"].contains(&key.as_str()), "{key} is reserved");
        assert!(known.contains(&key), "{key} is not a candidate-server environment variable");
        assert_ne!(key, "GOOGLE_APPLICATION_CREDENTIALS", "the service account through the metadata server, no key");
    }
    let env = merged(&m, "env");
    let value = |key: &str| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(value("CANDIDATES_STORE"), "\"firestore\"");
    assert_eq!(value("GOOGLE_CLOUD_PROJECT"), "var.project_id");
    assert_eq!(value("CANDIDATES_FIRESTORE_DATABASE"), "google_firestore_database.this.name");
    assert_eq!(value("CANDIDATES_FIRESTORE_COLLECTION"), "var.firestore_collection");
    assert_eq!(value("CANDIDATES_INSTANCE_METADATA"), "\"gcp\"");
    assert_eq!(value("CANDIDATES_LOG_FORMAT"), "\"json\"");
    // The same collection as the scaling groups' (the original's).
    assert_eq!(m.default_string("firestore_collection"), Module::load("gcp").default_string("firestore_collection"));
}

// Cloud Run, "Configure container health checks": an HTTP startup probe GETs a path and counts
// 200 to 399 as started; it speaks HTTP/1 (the single port serves HTTP/1.1 beside h2c);
// failureThreshold x periodSeconds may not exceed 240 s; timeoutSeconds must be smaller than
// periodSeconds. Provider docs, google_cloud_run_v2_service startup_probe.http_get: `port`
// defaults to the container port. /gtg answers 503 until the store answers, then 200.
#[test]
fn the_startup_probe_waits_for_gtg() {
    let m = gcp_root();
    let probe = block(container(&m), "startup_probe");
    let get = block(probe, "http_get");
    assert_eq!(str_attr(get, "path").as_deref(), Some(binary::health_path()));
    assert_eq!(binary::health_path(), "/gtg");
    assert!(attr(get, "port").is_none(), "the container port");
    let period = crate::infra::num_attr(probe, "period_seconds").unwrap();
    let threshold = crate::infra::num_attr(probe, "failure_threshold").unwrap();
    let timeout = crate::infra::num_attr(probe, "timeout_seconds").unwrap();
    assert!(period * threshold <= 240, "{period} x {threshold} s is over Cloud Run's 240 s");
    assert!(timeout < period);
    assert!(blocks(probe, "grpc").is_empty() && blocks(probe, "tcp_socket").is_empty());
}

// Provider docs, google_cloud_run_v2_service: template.scaling `min_instance_count` (default 0) and
// `max_instance_count`; `max_instance_request_concurrency` (Cloud Run: at most 1000; above 1 needs
// at least one CPU); resources `limits` (cpu, memory), `cpu_idle` (CPU only during requests) and
// `startup_cpu_boost`; `timeout` (at most 3600 s); `deletion_protection` defaults to true, which
// would make `terraform destroy` fail, so it is a variable, off by default.
#[test]
fn the_service_scales_from_zero_to_a_cap_with_limits() {
    let m = gcp_root();
    let service = m.resource("google_cloud_run_v2_service", "this");
    let template = block(service, "template");
    let scaling = block(template, "scaling");
    assert_eq!(crate::infra::num_attr(scaling, "min_instance_count"), Some(0), "scale to zero");
    assert_eq!(text(scaling, "max_instance_count"), "var.max_instances");
    assert!(validation(&m, "max_instances").contains(">= 1"));
    assert_eq!(text(template, "max_instance_request_concurrency"), "var.concurrency");
    assert!(validation(&m, "concurrency").contains("<= 1000"));
    assert_eq!(m.default_string("cpu"), "1", "concurrency above 1 needs a whole CPU");
    assert_eq!(text(template, "timeout"), "\"${var.timeout_seconds}s\"");
    assert!(validation(&m, "timeout_seconds").contains("<= 3600"));
    let resources = block(container(&m), "resources");
    let limits = one_line(attr(resources, "limits").unwrap());
    assert!(limits.contains("cpu = var.cpu") && limits.contains("memory = var.memory"), "{limits}");
    assert_eq!(bool_attr(resources, "cpu_idle"), Some(true));
    assert_eq!(text(service, "deletion_protection"), "var.deletion_protection");
    assert_eq!(crate::infra::boolean(m.default("deletion_protection")), Some(false), "destroy works in one step");
    assert_eq!(text(service, "ingress"), "var.ingress");
    assert_eq!(m.default_string("ingress"), "INGRESS_TRAFFIC_ALL");
}

// Least privilege. Cloud Run, "Service identity": give each service a dedicated, user-managed
// service account with only the roles it needs (the default compute account holds Editor).
// Firestore: the five permissions the store's calls need (firestore::REQUIRED_PERMISSIONS), in a
// custom role granted under an IAM condition naming the one database, as terraform/gcp grants it
// (narrower than roles/datastore.user, which also covers indexes, statistics and every database).
// Secret Manager, "Access control with IAM": roles/secretmanager.secretAccessor granted on the one
// secret, not the project. No other binding but the optional public invoker.
#[test]
fn the_service_account_holds_the_stores_permissions_on_its_database_and_its_secret_only() {
    let m = gcp_root();
    let backend: BTreeSet<String> =
        candidates_server::store::firestore::REQUIRED_PERMISSIONS.iter().map(|p| p.to_string()).collect();
    let granted: BTreeSet<String> = strings(m.local("firestore_permissions")).into_iter().collect();
    assert_eq!(granted, backend, "local.firestore_permissions vs firestore::REQUIRED_PERMISSIONS");
    assert_eq!(
        text(m.resource("google_project_iam_custom_role", "firestore"), "permissions"),
        "local.firestore_permissions"
    );
    let template = block(m.resource("google_cloud_run_v2_service", "this"), "template");
    assert_eq!(text(template, "service_account"), "google_service_account.service.email");

    let mut bindings = Vec::new();
    for (ty, name, body) in m.all_resources() {
        if ty.starts_with("google_") && ty.contains("_iam_") && ty != "google_project_iam_custom_role" {
            bindings.push((format!("{ty}.{name}"), body));
        }
    }
    bindings.sort_by(|a, b| a.0.cmp(&b.0));
    let names: Vec<&str> = bindings.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["google_project_iam_member.firestore", "google_secret_manager_secret_iam_member.api_keys",]);
    let sa = "\"serviceAccount:${google_service_account.service.email}\"";
    let firestore = bindings[0].1;
    assert_eq!(text(firestore, "role"), "google_project_iam_custom_role.firestore.id");
    assert_eq!(text(firestore, "member"), sa);
    let condition = text(block(firestore, "condition"), "expression");
    assert!(condition.contains("/databases/${google_firestore_database.this.name}"), "{condition}");
    let secret = bindings[1].1;
    assert_eq!(str_attr(secret, "role").as_deref(), Some("roles/secretmanager.secretAccessor"));
    assert_eq!(text(secret, "member"), sa);
    assert_eq!(text(secret, "secret_id"), "google_secret_manager_secret.api_keys.id");
    for e in m.expressions() {
        for role in ["roles/editor", "roles/owner", "roles/datastore.user", "roles/datastore.owner"] {
            assert!(!e.contains(role), "{role}: {e}");
        }
    }
}

// The access policy. The binary reads API keys from a file only (CANDIDATES_API_KEYS_FILE); Cloud
// Run, "Configure secrets for services": a Secret Manager secret mounted as a volume is a file at
// mount_path/items.path, read-only, of the pinned version. access.tf is the other roots' own; the
// secret holds its digest lines (never the key); writes need candidates.write. Judged by the
// binary's policy code with such a file.
#[tokio::test]
async fn writes_need_the_deployment_key_which_reaches_the_service_as_a_mounted_file() {
    let m = gcp_root();
    write_key_stays_in_access_tf(&m, GCP);
    let version = m.resource("google_secret_manager_secret_version", "api_keys");
    // The file's lines, each ending in a newline (one_line would fold the last one into a space).
    assert!(text(version, "secret_data").starts_with("\"${join(\"\\n\", local.api_key_lines)}"));
    assert!(
        read("terraform/serverless/gcp/keys.tf").contains("secret_data = \"${join(\"\\n\", local.api_key_lines)}\\n\"")
    );
    let template = block(m.resource("google_cloud_run_v2_service", "this"), "template");
    let volume = block(template, "volumes");
    assert_eq!(str_attr(volume, "name").as_deref(), Some("api-keys"));
    let secret = block(volume, "secret");
    assert_eq!(text(secret, "secret"), "google_secret_manager_secret.api_keys.secret_id");
    let item = block(secret, "items");
    assert_eq!(text(item, "version"), "google_secret_manager_secret_version.api_keys.version");
    let mount = block(container(&m), "volume_mounts");
    assert_eq!(str_attr(mount, "name").as_deref(), Some("api-keys"));
    assert_eq!(text(mount, "mount_path"), "local.keys_dir");
    let env = merged(&m, "env");
    let value = |key: &str| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(
        value("CANDIDATES_API_KEYS_FILE"),
        format!("\"${{local.keys_dir}}/{}\"", str_attr(item, "path").unwrap())
    );
    assert_eq!(value("CANDIDATES_AUTH_WRITE"), "\"scope\"");
    assert_eq!(value("CANDIDATES_AUTH_READ"), "var.auth_read");
    access_preconditions(m.resource("google_cloud_run_v2_service", "this"));

    // The file the secret holds, read by the binary's policy.
    let dir = tempfile::tempdir().unwrap();
    let key = candidates_api::api_key::mint().unwrap();
    let lines = format!("{} candidates.read,candidates.write deploy\n", candidates_api::api_key::digest_hex(&key));
    let file = dir.path().join("api-keys");
    fs::write(&file, &lines).unwrap();
    let config = Config::try_parse_from([
        "candidate-server",
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
    assert_eq!(auth.authorize(&Caller::Anonymous, Access::Read), Ok(()), "public reads by default");
}

// Public invocation. Cloud Run, "Allowing public (unauthenticated) access": either an allUsers
// run.invoker binding or the invoker IAM check turned off; the latter is the documented way "when
// the project is subject to the domain restricted sharing constraint" (iam.allowedPolicyMemberDomains,
// on by default for organisations created since 2024), which refuses allUsers members at apply.
// The REST contract's reads are public, and the service's clients send their API key or OIDC token
// in Authorization, where Cloud Run's IAM check would want a Google ID token; so the service is
// public by default (var.public) and applies its own policy. No allUsers member anywhere.
#[test]
fn the_service_is_invocable_by_all_only_when_public() {
    let m = gcp_root();
    let service = m.resource("google_cloud_run_v2_service", "this");
    assert_eq!(text(service, "invoker_iam_disabled"), "var.public");
    assert_eq!(crate::infra::boolean(m.default("public")), Some(true));
    for e in m.expressions() {
        assert!(!e.contains("allUsers") && !e.contains("allAuthenticatedUsers"), "{e}");
    }
}

// The image: build-image.py's OCI layout pushed to the root's Artifact Registry repository (format
// DOCKER holds OCI images too) and run by digest; the scripts apply the repository first. Firestore
// as the scaling-group root makes it (terraform/gcp/firestore.tf): native mode, point-in-time
// recovery, deleted with the root (deletion_policy DELETE).
#[test]
fn the_image_comes_from_the_roots_repository_and_the_database_mirrors_the_scaling_groups() {
    let m = gcp_root();
    let repository = m.resource("google_artifact_registry_repository", "images");
    assert_eq!(str_attr(repository, "format").as_deref(), Some("DOCKER"));
    assert_eq!(text(container(&m), "image"), "var.image");
    let apply = read("scripts/gcp/serverless-apply.sh");
    assert!(apply.contains("-target=google_artifact_registry_repository.images"));
    assert!(apply.contains("-var \"image=$image\""));
    let env = read("scripts/gcp/serverless-env.sh");
    assert!(env.contains("crane push \"$dir\"") && env.contains("skopeo copy --preserve-digests"));
    assert!(env.contains("echo \"$repository/candidates@$digest\""), "the service runs the image by digest");

    // Cloud Run service names: a letter first, no dash last; Firestore database ids (the name by
    // default): 4 to 63 characters; service account ids ("<name>-run"): 6 to 30.
    assert!(validation(&m, "name").contains("^[a-z][a-z0-9-]{2,19}[a-z0-9]$"));
    assert_eq!(
        one_line(m.local("firestore_database")),
        "var.firestore_database != \"\" ? var.firestore_database : var.name"
    );
    let db = m.resource("google_firestore_database", "this");
    let scaling = Module::load("gcp");
    let theirs = scaling.resource("google_firestore_database", "this");
    for key in ["type", "point_in_time_recovery_enablement", "delete_protection_state", "deletion_policy"] {
        assert_eq!(text(db, key), text(theirs, key), "{key}");
    }
}

// The outputs the scripts read (scripts/gcp/serverless-{apply,validate}.sh); validate checks REST
// and gRPC on the one https URL (Cloud Run: HTTP/2 end to end, one port).
#[test]
fn the_gcp_outputs_are_what_the_scripts_read() {
    let m = gcp_root();
    let outputs: BTreeSet<&str> =
        m.top_level().into_iter().filter(|(k, _, _)| *k == "output").map(|(_, l, _)| l[0]).collect();
    for name in ["service_url", "repository_url", "write_key"] {
        assert!(outputs.contains(name), "no output {name}");
    }
    let validate = read("scripts/gcp/serverless-validate.sh");
    assert!(validate.contains("use_write_key \"$SLS_DIR\"") && validate.contains("tf_output \"$SLS_DIR\" service_url"));
    assert!(validate.contains("check --rest-target \"$url\" --grpc-target \"$url\""));
    assert!(validate.contains("anonymous_writes_refused \"$url\""));
    assert!(read("scripts/gcp/serverless-env.sh").contains("SLS_DIR=serverless/gcp"));
}

// Resource names, in Terraform itself (a provider-less throwaway module of the roots' own `name`
// variables and name expressions, planned and applied offline). Azure, "Naming rules and
// restrictions for Azure resources": a storage account is 3 to 24 lower-case letters and digits;
// provider docs, azurerm_function_app_flex_consumption `name`: at most 32 characters to avoid host
// id collisions; Cosmos DB accounts 3 to 44 of lower-case letters, digits and dashes. Cloud Run: a
// service name starts with a letter, does not end with a dash, at most 49 characters; Firestore
// database ids 4 to 63; service account ids 6 to 30.
#[test]
fn resource_names_fit_their_services_rules() {
    let azure = azure();
    let storage = text(azure.resource("azurerm_storage_account", "functions"), "name");
    let app = text(azure.resource("azurerm_function_app_flex_consumption", "this"), "name");
    let cosmos = text(azure.resource("azurerm_cosmosdb_account", "this"), "name");
    let module = format!(
        "{}\nlocals {{\n  suffix = \"0123abcd\"\n}}\noutput \"names\" {{\n  value = join(\" \", [{storage}, {app}, {cosmos}])\n}}\n",
        azure.variables_hcl(&["name"])
    );
    let Some(tf) = crate::https::ThrowawayModule::new(&module) else { return };
    for (value, ok) in [
        ("ab", true),
        ("a-b-c", true),
        ("candidates-fn", true),
        ("abcdefghijklmnop", true),
        ("abcdefghijklmnopq", false),
        ("a", false),
        ("1ab", false),
        ("AB", false),
    ] {
        let (accepted, err) = tf.accepts(&[("name", value)]);
        assert_eq!(accepted, ok, "azure name = {value}: {err}");
        if !ok {
            continue;
        }
        let out = tf.output("names", &[("name", value)]);
        let names: Vec<&str> = out.split(' ').collect();
        let (storage, app, cosmos) = (names[0], names[1], names[2]);
        assert!(
            (3..=24).contains(&storage.len()) && storage.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "{storage}"
        );
        assert!(app.len() <= 32, "{app}");
        assert!((3..=44).contains(&cosmos.len()), "{cosmos}");
    }

    let gcp = gcp_root();
    let Some(tf) = crate::https::ThrowawayModule::new(&format!(
        "{}\noutput \"service_account\" {{\n  value = \"${{var.name}}-run\"\n}}\n",
        gcp.variables_hcl(&["name"])
    )) else {
        return;
    };
    for (value, ok) in [
        ("abcd", true),
        ("candidates-run", true),
        ("a23456789012345678901", true),
        ("abc", false),
        ("a234567890123456789012", false),
        ("abcd-", false),
        ("1abc", false),
    ] {
        let (accepted, err) = tf.accepts(&[("name", value)]);
        assert_eq!(accepted, ok, "gcp name = {value}: {err}");
        if ok {
            let account = tf.output("service_account", &[("name", value)]);
            assert!((6..=30).contains(&account.len()), "{account}");
        }
    }
}
