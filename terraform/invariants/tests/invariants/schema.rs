//! Every resource and data block against its provider's schema: no unknown attribute or block, no
//! attribute written as a block, no required attribute or block missing. `terraform validate`
//! would do this but needs the providers, which cannot be downloaded here; the schemas come from
//! `terraform/tests/provider-schemas.json`, which `terraform/tests/provider_schemas.py` extracts
//! from the providers' prebuilt CDKTF packages (and `terraform/check.sh` keeps current).

use std::fs;

use hcl::Body;
use serde_json::Value;

use crate::infra::{Module, repo_root};

/// The roots checked: every one but serverless/aws, whose aws_lambda_permission's
/// `invoked_via_function_url` is newer (provider 6.28) than the pinned aws package (6.25); the
/// moto harness applies that root with a real provider instead (terraform/tests/moto/serverless.sh).
const ROOTS: [&str; 8] =
    ["aws", "azure", "gcp", "state/aws", "state/azure", "state/gcp", "serverless/azure", "serverless/gcp"];

/// Meta-arguments Terraform itself handles, in any resource.
const META_ATTRIBUTES: &[&str] = &["count", "for_each", "depends_on", "provider"];
const META_BLOCKS: &[&str] = &["lifecycle", "provisioner", "connection"];

/// The built-in provider's resource (`terraform.io/builtin/terraform`), which no provider package
/// describes: the terraform_data reference's arguments (`input`, `triggers_replace`, both optional)
/// and attributes (`id`, `output`). Terraform 1.11 has no `store` block (a later version's).
const BUILTIN: &str = r#"{"terraform_data": {
    "attributes": {"input": false, "triggers_replace": false},
    "blocks": {},
    "exported": ["id", "input", "output", "triggers_replace"]
}}"#;

/// The providers' schemas, with the built-in provider's resource among the resources.
fn schemas() -> Value {
    let path = repo_root().join("terraform/tests/provider-schemas.json");
    let mut schemas: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    let builtin: Value = serde_json::from_str(BUILTIN).unwrap();
    for (ty, schema) in builtin.as_object().unwrap() {
        assert!(schemas["resource"].get(ty).is_none(), "{ty} is a provider's resource now");
        schemas["resource"][ty] = schema.clone();
    }
    schemas
}

fn check(path: &str, body: &Body, schema: &Value, top: bool, errors: &mut Vec<String>) {
    let attributes = &schema["attributes"];
    let blocks = &schema["blocks"];
    let mut present: Vec<String> = Vec::new();
    for attr in body.attributes() {
        let key = attr.key();
        present.push(key.to_owned());
        if top && META_ATTRIBUTES.contains(&key) {
            continue;
        }
        // Nested attributes of object type are written `key = {...}` although the schema lists
        // them with the blocks.
        if attributes.get(key).is_none() && blocks.get(key).is_none() {
            errors.push(format!("{path}: unknown attribute `{key}`"));
        }
    }
    for block in body.blocks() {
        let ident = block.identifier();
        if top && META_BLOCKS.contains(&ident) {
            continue;
        }
        let (name, content) = if ident == "dynamic" {
            let name = block.labels()[0].as_str();
            let content = block.body().blocks().find(|b| b.identifier() == "content");
            match content {
                Some(c) => (name, c.body()),
                None => {
                    errors.push(format!("{path}: dynamic `{name}` has no content block"));
                    continue;
                }
            }
        } else {
            (ident, block.body())
        };
        present.push(name.to_owned());
        match blocks.get(name) {
            Some(nested) => check(&format!("{path}.{name}"), content, &nested["schema"], false, errors),
            None if attributes.get(name).is_some() => {
                errors.push(format!("{path}: `{name}` is an attribute (`{name} = ...`), not a block"))
            }
            None => errors.push(format!("{path}: unknown block `{name}`")),
        }
    }
    for (key, required) in attributes.as_object().unwrap() {
        if required.as_bool() == Some(true) && !present.iter().any(|p| p == key) {
            errors.push(format!("{path}: required attribute `{key}` is missing"));
        }
    }
    for (key, nested) in blocks.as_object().unwrap() {
        if nested["required"].as_bool() == Some(true) && !present.iter().any(|p| p == key) {
            errors.push(format!("{path}: required block `{key}` is missing"));
        }
    }
}

#[test]
fn every_block_matches_its_provider_schema() {
    let schemas = schemas();
    let mut errors = Vec::new();
    let mut checked = 0;
    for cloud in ROOTS {
        let m = Module::load(cloud);
        for (kind, ty, name, body) in m.typed_blocks() {
            let Some(schema) = schemas[kind].get(ty) else {
                errors.push(format!("{cloud}: {kind} {ty} has no schema: run terraform/tests/provider_schemas.py"));
                continue;
            };
            check(&format!("{cloud}: {kind}.{ty}.{name}"), body, schema, true, &mut errors);
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} blocks checked");
    assert!(errors.is_empty(), "{} problems:\n{}", errors.len(), errors.join("\n"));
}

/// Every `TYPE.NAME.ATTRIBUTE` (and `data.TYPE.NAME.ATTRIBUTE`) an expression reads names an
/// attribute the type exports: a typo such as `aws_lb.rest.arn_sufix` fails here, not at plan.
#[test]
fn every_reference_reads_an_attribute_the_type_exports() {
    let schemas = schemas();
    let mut errors = Vec::new();
    let mut checked = 0;
    for cloud in ROOTS {
        let m = Module::load(cloud);
        for text in m.expressions() {
            for run in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')) {
                let mut parts: Vec<&str> = run.split('.').collect();
                let kind = if parts.first() == Some(&"data") {
                    parts.remove(0);
                    "data"
                } else {
                    "resource"
                };
                if parts.len() < 3 {
                    continue;
                }
                let Some(schema) = schemas[kind].get(parts[0]) else { continue };
                let attribute = parts[2];
                let exported = schema["exported"].as_array().unwrap().iter().any(|a| a == attribute);
                if !(exported
                    || schema["attributes"].get(attribute).is_some()
                    || schema["blocks"].get(attribute).is_some())
                {
                    errors
                        .push(format!("{cloud}: `{run}` reads `{attribute}`, which {kind} {} does not have", parts[0]));
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} references checked");
    assert!(errors.is_empty(), "{} problems:\n{}", errors.len(), errors.join("\n"));
}

/// The checker itself: it must notice what `terraform validate` would.
#[test]
fn the_check_catches_typos_blocks_as_attributes_and_missing_required_settings() {
    let schemas = schemas();
    let probe = &schemas["resource"]["azurerm_lb_probe"];
    let cases = [
        (
            "name = \"a\"\nloadbalancer_id = \"b\"\nport = 8000\nprobe_treshold = 2\n",
            "unknown attribute `probe_treshold`",
        ),
        ("name = \"a\"\nloadbalancer_id = \"b\"\n", "required attribute `port` is missing"),
        ("name = \"a\"\nloadbalancer_id = \"b\"\nport = 1\nport_x {\n}\n", "unknown block `port_x`"),
        ("name = \"a\"\nloadbalancer_id = \"b\"\nport {\n}\n", "`port` is an attribute"),
    ];
    for (hcl_text, expected) in cases {
        let body = hcl::parse(hcl_text).unwrap();
        let mut errors = Vec::new();
        check("case", &body, probe, true, &mut errors);
        assert!(errors.iter().any(|e| e.contains(expected)), "{hcl_text:?}: {errors:?}");
    }
    let body = hcl::parse("name = \"a\"\nloadbalancer_id = \"b\"\nport = 8000\ncount = 1\nlifecycle {\n}\n").unwrap();
    let mut errors = Vec::new();
    check("ok", &body, probe, true, &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
}
