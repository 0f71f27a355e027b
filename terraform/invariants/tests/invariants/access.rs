//! Issue 27: a deployment is never open for writes. Each root makes a write key
//! (`terraform_data.write_key`, access.tf), gives the instances only its SHA-256 digest (the key
//! file cloud-init writes, `modules/instance-config`), and exposes the key as a sensitive output
//! that every script reads. The rules, each with the documentation it rests on:
//! - no root exposes write operations without credentials, judged by the binary's own policy code;
//! - the plaintext key appears only in a sensitive output, never in user data, instance metadata or
//!   tags: every other reference goes through `sha256()`;
//! - Terraform's `sensitive` mark holds (the key in `triggers_replace`, which has no unmarked copy
//!   as `input` has in `output`) and `ignore_changes` keeps the key;
//! - the key has the shape of `candidatectl key mint`'s keys;
//! - the scripts use the key from the environment, never from a command line.

use std::{collections::BTreeMap, fs};

use candidates_edge::auth::{Access, AuthError, Caller};
use candidates_server::Config;
use clap::Parser;
use hcl::{Body, Expression};

use crate::infra::{Module, attr, binary, block, blocks, bool_attr, one_line, repo_root, text};

const CLOUDS: [&str; 3] = ["aws", "azure", "gcp"];
const KEY: &str = "terraform_data.write_key";
/// The only way the key may appear outside its sensitive output.
const DIGEST: &str = "nonsensitive(sha256(terraform_data.write_key.triggers_replace))";

fn read(path: &str) -> String {
    fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every attribute expression of a body, nested blocks included, one per line.
fn body_text(body: &Body) -> String {
    let mut out = String::new();
    for a in body.attributes() {
        out.push_str(&a.expr().to_string());
        out.push('\n');
    }
    for b in body.blocks() {
        out.push_str(&body_text(b.body()));
    }
    out
}

/// The entries of an object expression, as key -> one-line HCL text.
fn object(expr: &Expression) -> BTreeMap<String, String> {
    match expr {
        Expression::Object(o) => o.iter().map(|(k, v)| (k.to_string(), one_line(v))).collect(),
        other => panic!("not an object: {other}"),
    }
}

/// A function call's name and arguments.
fn call(expr: &Expression) -> (String, &[Expression]) {
    match expr {
        Expression::FuncCall(f) => (f.name.to_string(), &f.args),
        other => panic!("not a function call: {other}"),
    }
}

/// The deployment key's line in a root's `local.api_key_lines` (HCL template text, unquoted), and
/// what follows it in the concat.
fn deploy_line(m: &Module) -> (String, String) {
    let (name, args) = call(m.local("api_key_lines"));
    assert_eq!(name, "concat", "{}: api_key_lines", m.name);
    let Expression::Array(first) = &args[0] else { panic!("{}: the first list is not a literal", m.name) };
    assert_eq!(first.len(), 1, "{}", m.name);
    let line = first[0].to_string();
    (line.trim_matches('"').to_owned(), args[1..].iter().map(one_line).collect::<Vec<_>>().join(", "))
}

/// The three values `auth_read` may take, from the module's validation.
fn auth_read_values(m: &Module) -> Vec<String> {
    let (_, var) = m.variables().into_iter().find(|(n, _)| *n == "auth_read").expect("variable auth_read");
    let condition = text(block(var, "validation"), "condition");
    let list = condition
        .strip_prefix("contains([")
        .and_then(|c| c.strip_suffix("], var.auth_read)"))
        .unwrap_or_else(|| panic!("auth_read is not validated against a list: {condition}"));
    list.split(", ").map(|v| v.trim_matches('"').to_owned()).collect()
}

// The module sets the key file and `CANDIDATES_AUTH_WRITE=scope` as literals, after the store's
// settings (merge: "more than one given map defines the same key, then the one later in the
// argument sequence takes precedence"), and every root passes it the key lines and nothing that
// names an access setting. docs/security.md: with a key file "reads are `anyone` and writes
// `scope`"; --auth-write anyone would reopen writes, so nothing in any root may set it.
#[test]
fn every_root_gives_its_instances_a_key_file_and_writes_that_need_the_write_scope() {
    let module = Module::load("modules/instance-config");
    let env = one_line(module.local("env"));
    assert!(env.ends_with("}, var.store_env, local.access_env)"), "access settings must be merged last: {env}");
    let (merge, args) = call(module.local("access_env"));
    assert_eq!(merge, "merge");
    let pairs = object(&args[0]);
    assert_eq!(pairs.get("CANDIDATES_API_KEYS_FILE").map(String::as_str), Some("local.api_keys_file"));
    assert_eq!(pairs.get("CANDIDATES_AUTH_WRITE").map(String::as_str), Some("\"scope\""), "writes need the scope");
    assert_eq!(pairs.get("CANDIDATES_AUTH_READ").map(String::as_str), Some("var.auth_read"));
    assert_eq!(pairs.len(), 3, "{pairs:?}");
    // The OIDC settings, each only when set.
    let oidc = one_line(&args[1]);
    let known = binary::env_names();
    for (key, var) in [
        ("CANDIDATES_OIDC_ISSUER", "oidc_issuer"),
        ("CANDIDATES_OIDC_AUDIENCE", "oidc_audience"),
        ("CANDIDATES_OIDC_SCOPE_CLAIM", "oidc_scope_claim"),
    ] {
        assert!(oidc.contains(&format!("{key} = var.{var}")), "{key} is not passed on: {oidc}");
    }
    assert!(oidc.ends_with(": key => value if value != \"\"}"), "{oidc}");
    for key in pairs.keys().map(String::as_str).chain([
        "CANDIDATES_OIDC_ISSUER",
        "CANDIDATES_OIDC_AUDIENCE",
        "CANDIDATES_OIDC_SCOPE_CLAIM",
    ]) {
        assert!(known.iter().any(|k| k == key), "{key} is not an environment variable of candidate-server");
    }
    assert_eq!(one_line(module.local("api_keys_file")), "\"/etc/candidates/api-keys\"");
    let template = read("terraform/modules/instance-config/cloud-init.yaml.tftpl");
    assert!(template.contains("  - path: ${api_keys_file}\n    owner: root:candidates\n    permissions: \"0640\"\n"));
    assert!(template.contains("%{ for line in api_key_lines ~}"), "the key lines are not written");
    assert!(!module.expressions().iter().any(|e| e.contains("AUTH_WRITE") && !e.contains("\"scope\"")));

    for cloud in CLOUDS {
        let m = Module::load(cloud);
        let call = m.module_call("instance_config");
        assert_eq!(text(call, "api_key_lines"), "local.api_key_lines", "{cloud}");
        assert_eq!(text(call, "auth_read"), "var.auth_read", "{cloud}");
        for oidc in ["oidc_issuer", "oidc_audience", "oidc_scope_claim"] {
            assert_eq!(text(call, oidc), format!("var.{oidc}"), "{cloud}");
        }
        for key in m.store_env().keys() {
            assert!(
                !(key.starts_with("CANDIDATES_AUTH") || key.contains("API_KEY") || key.starts_with("CANDIDATES_OIDC")),
                "{cloud}: store_env sets {key}"
            );
        }
        // Nothing in the root names the write rule (it is the module's literal).
        assert!(!m.expressions().iter().any(|e| e.contains("AUTH_WRITE") || e.contains("auth_write")), "{cloud}");
        // The first line is the deployment key's, with the write scope; the operator's follow.
        let (line, rest) = deploy_line(&m);
        assert_eq!(line, format!("${{{DIGEST}}} candidates.read,candidates.write deploy"), "{cloud}");
        assert_eq!(rest, "var.api_key_lines", "{cloud}");
        assert_eq!(m.default_string("auth_read"), "anyone", "{cloud}: public reads stay public by default");
    }
}

/// The binary's own policy, configured as the module configures it, for every `auth_read` the
/// module admits: anonymous writes are refused, the deployment key (a line in the module's format)
/// writes, a read-only key does not; reads are open exactly when `auth_read` is anyone.
#[tokio::test]
async fn the_binary_configured_as_the_module_says_refuses_writes_without_the_key() {
    let module = Module::load("modules/instance-config");
    let values = auth_read_values(&module);
    assert_eq!(values, ["anyone", "authenticated", "scope"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api-keys");
    let deploy = candidates_api::api_key::mint().unwrap();
    let reader = candidates_api::api_key::mint().unwrap();
    // access.tf's line for the deployment key, and an operator's read-only line.
    let (line, _) = deploy_line(&Module::load("aws"));
    let deploy_line = line.replace(&format!("${{{DIGEST}}}"), &candidates_api::api_key::digest_hex(&deploy));
    assert!(!deploy_line.contains('$'), "{deploy_line}");
    fs::write(
        &file,
        format!(
            "# header\n{deploy_line}\n{} candidates.read dashboard\n",
            candidates_api::api_key::digest_hex(&reader)
        ),
    )
    .unwrap();
    let bearer = |key: &str| {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, format!("Bearer {key}").parse().unwrap());
        headers
    };
    for read in &values {
        let config = Config::try_parse_from([
            "candidate-server",
            "--api-keys-file",
            file.to_str().unwrap(),
            "--auth-write",
            "scope",
            "--auth-read",
            read,
        ])
        .unwrap();
        config.validate().unwrap();
        let auth = config.auth().unwrap();
        auth.keys().expect("a key ring").reload().await.unwrap();
        assert_eq!(auth.authorize(&Caller::Anonymous, Access::Write), Err(AuthError::Missing), "auth_read={read}");
        assert_eq!(auth.authorize(&Caller::Anonymous, Access::Read).is_ok(), read == "anyone", "auth_read={read}");
        let writer = auth.authenticate(&bearer(&deploy)).await.unwrap();
        assert_eq!(auth.authorize(&writer, Access::Write), Ok(()), "the deployment key writes (auth_read={read})");
        assert_eq!(auth.authorize(&writer, Access::Read), Ok(()));
        let dashboard = auth.authenticate(&bearer(&reader)).await.unwrap();
        assert!(auth.authorize(&dashboard, Access::Write).is_err(), "a read-only key writes");
        let stranger = candidates_api::api_key::mint().unwrap();
        assert_eq!(auth.authenticate(&bearer(&stranger)).await.err(), Some(AuthError::UnknownKey));
    }
    // And without the module's key file the binary would be open: what the module prevents.
    let open = Config::try_parse_from(["candidate-server"]).unwrap().auth().unwrap();
    assert!(open.authorize(&Caller::Anonymous, Access::Write).is_ok());
}

// Terraform, "Sensitive Data in State" / the `sensitive` function and output `sensitive`: a
// sensitive mark follows derived values and Terraform refuses a root output of one unless it is
// `sensitive = true`; `terraform output -raw NAME` still prints it. The state marks only the
// attribute set with sensitive(); terraform_data copies `input` to an unmarked `output` (Terraform
// 1.11: show, state show, plan -replace and plan -destroy printed it), so the key is held in
// `triggers_replace`, which has no copy, and every reference reads `.triggers_replace`. The EC2 docs: user data "is
// an instance attribute" anyone with DescribeInstanceAttribute or a shell on the instance reads;
// GCP metadata and Azure custom data alike. So outside the one sensitive output the key appears
// only as `nonsensitive(sha256(...))` (the nonsensitive docs' own example: "a SHA256 hash of a
// particular sensitive value is safe to include").
#[test]
fn the_plaintext_key_appears_only_in_a_sensitive_output() {
    for cloud in CLOUDS {
        let m = Module::load(cloud);
        let key = m.resource("terraform_data", "write_key");
        let held = text(key, "triggers_replace");
        assert!(held.starts_with("sensitive(") && held.ends_with(')'), "{cloud}: the key is not sensitive(): {held}");
        assert!(attr(key, "input").is_none(), "{cloud}: `input` is copied to an unmarked `output`");

        let mut sensitive_outputs = Vec::new();
        let mut digests = 0;
        for (kind, labels, body) in m.top_level() {
            if kind == "resource" && labels == ["terraform_data", "write_key"] {
                continue;
            }
            let all = body_text(body);
            if !all.contains(KEY) {
                continue;
            }
            if kind == "output" {
                assert_eq!(bool_attr(body, "sensitive"), Some(true), "{cloud}: output {labels:?} shows the key");
                assert_eq!(text(body, "value"), format!("{KEY}.triggers_replace"), "{cloud}: output {labels:?}");
                sensitive_outputs.push(labels[0].to_owned());
                continue;
            }
            for (i, _) in all.match_indices(KEY) {
                let wrapped = all[..i].ends_with("nonsensitive(sha256(")
                    && all[i..].starts_with(&format!("{KEY}.triggers_replace))"));
                let excerpt: String = all[i.saturating_sub(60)..].chars().take(120).collect();
                assert!(wrapped, "{cloud}: {kind} {labels:?} reads the key without sha256(): ...{excerpt}...");
                digests += 1;
            }
        }
        assert_eq!(sensitive_outputs, ["write_key"], "{cloud}");
        assert_eq!(digests, 1, "{cloud}: the digest is made once (local.api_key_lines)");
        // ...and reaches the instances only through the module's key lines: no resource reads the
        // local but the module call.
        for (kind, labels, body) in m.top_level() {
            if body_text(body).contains("local.api_key_lines") {
                assert_eq!((kind, labels.as_slice()), ("module", ["instance_config"].as_slice()), "{cloud}");
            }
        }
        // The instance config module never sees the key, only lines, and prints them in user data.
        assert!(!read("terraform/modules/instance-config/main.tf").contains("write_key"));
    }
}

// The uuid function's documentation: "This function produces a new value each time it is called,
// ... can be used with care in conjunction with the ignore_changes lifecycle meta-argument". The
// key must be made once, on create, and kept (the moto harness's second plan and
// terraform/tests/test_cloud_init.py check it for real).
#[test]
fn the_key_is_made_once_and_has_the_shape_of_a_minted_key() {
    for cloud in CLOUDS {
        let m = Module::load(cloud);
        let key = m.resource("terraform_data", "write_key");
        let lifecycle = block(key, "lifecycle");
        assert_eq!(
            text(lifecycle, "ignore_changes"),
            "[triggers_replace]",
            "{cloud}: the key would change on every apply"
        );
        assert!(attr(key, "input").is_none(), "{cloud}");
        assert_eq!(
            text(key, "triggers_replace"),
            "sensitive(\"cand_${substr(replace(\"${uuid()}${uuid()}\", \"-\", \"\"), 0, 43)}\")",
            "{cloud}: the expression this test evaluates"
        );
    }
    // The expression, evaluated as Terraform does, on uuid()-shaped values of every hex digit:
    // 43 hex digits of 64 random ones (go-uuid fills all 128 bits of each), 172 bits.
    for (a, b) in [
        ("01234567-89ab-cdef-0123-456789abcdef", "fedcba98-7654-3210-fedc-ba9876543210"),
        ("00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"),
    ] {
        let hex: String = format!("{a}{b}").replace('-', "");
        assert_eq!(hex.len(), 64);
        let key = format!("cand_{}", &hex[..43]);
        assert!(candidates_api::api_key::looks_like_key(&key), "{key}");
        assert_eq!(key.len(), candidates_api::api_key::LEN);
        let random_bits = 4 * key.trim_start_matches("cand_").len();
        assert!(random_bits >= 160, "{random_bits} random bits");
    }
}

#[test]
fn access_tf_is_the_same_in_every_root() {
    let aws = read("terraform/aws/access.tf");
    for cloud in ["azure", "gcp"] {
        assert_eq!(
            read(&format!("terraform/{cloud}/access.tf")),
            aws,
            "terraform/{cloud}/access.tf differs from aws's"
        );
    }
    // Its variables are the module's, validated there.
    let module = Module::load("modules/instance-config");
    let validated: Vec<&str> =
        module.variables().into_iter().filter(|(_, b)| !blocks(b, "validation").is_empty()).map(|(n, _)| n).collect();
    for var in ["auth_read", "api_key_lines", "oidc_issuer", "oidc_audience", "oidc_scope_claim"] {
        assert!(validated.contains(&var), "modules/instance-config does not validate {var}");
    }
}

/// The scripts that call the API read the key from Terraform into the environment
/// (`use_write_key`, scripts/deploy/lib.sh) before they do, and none puts a key on a command line:
/// candidatectl reads CANDIDATES_API_KEY, curl reads its header from a file descriptor.
#[test]
fn scripts_use_the_key_from_the_environment() {
    let lib = read("scripts/deploy/lib.sh");
    let use_key =
        lib.split("\nuse_write_key() {").nth(1).expect("lib.sh defines use_write_key").split("\n}\n").next().unwrap();
    assert!(use_key.contains("tf_output \"$1\" write_key"), "{use_key}");
    assert!(use_key.contains("export CANDIDATES_API_KEY"), "{use_key}");
    let retry = lib.split("\nhttp_retry() {").nth(1).unwrap().split("\n}\n").next().unwrap();
    assert!(retry.contains("-H @<(") && retry.contains("CANDIDATES_API_KEY"), "http_retry sends no key: {retry}");
    for cloud in CLOUDS {
        for script in ["validate.sh", "scale-demo.sh"] {
            let path = format!("scripts/{cloud}/{script}");
            let body = read(&path);
            let first_use =
                ["contract_check", "scale_demo ", "http_retry"].iter().filter_map(|c| body.find(c)).min().unwrap();
            let key = body.find("use_write_key \"$TF_DIR\"").unwrap_or_else(|| panic!("{path} does not use the key"));
            assert!(key < first_use, "{path} calls the API before it has the key");
        }
    }
    for path in ["scripts/deploy/lib.sh", "scripts/deploy/calibrate-instance.sh"].into_iter().map(str::to_owned).chain(
        CLOUDS.iter().flat_map(|c| {
            ["apply.sh", "calibrate.sh", "destroy.sh", "env.sh", "scale-demo.sh", "validate.sh"]
                .map(|s| format!("scripts/{c}/{s}"))
        }),
    ) {
        let body = read(&path);
        assert!(!body.contains("--api-key"), "{path} puts a key on a command line");
        assert!(
            !body.contains("Authorization: Bearer $") || body.contains("-H @<("),
            "{path}: a key in curl's arguments"
        );
    }
}

#[test]
fn the_docs_say_how_to_get_rotate_and_extend_the_key() {
    let security = read("docs/security.md");
    let section = security.split("\n## Deployments").nth(1).expect("docs/security.md has a \"## Deployments\" section");
    for needed in ["write_key", "sha256", "auth_read", "api_key_lines"] {
        assert!(section.contains(needed), "docs/security.md \"Deployments\" does not mention {needed}");
    }
    assert!(!security.contains("still starts with no key file"), "docs/security.md still says deployments are open");
    for cloud in CLOUDS {
        let docs = read(&format!("docs/deploy-{cloud}.md"));
        for needed in
            ["output -raw write_key", "-replace=terraform_data.write_key", "api_key_lines", "auth_read", "oidc_issuer"]
        {
            assert!(docs.contains(needed), "docs/deploy-{cloud}.md does not mention {needed}");
        }
    }
}
