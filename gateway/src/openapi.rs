//! The OpenAPI 3.1 document of the REST surface, generated from the compiled descriptor: paths
//! and methods from the `google.api.http` annotations, path parameters from their templates, query
//! parameters from the other request fields, schemas from the messages (by `json_name`),
//! descriptions from the .proto comments, and every error status of the wire contract with the
//! JSON error body. Nothing is written by hand in parallel with the proto, except what REST adds
//! on top of it (marked below): `/gtg`'s `details` switch and the unpaged `/candidates` array.

use std::sync::OnceLock;

use crate::Rpc;
use candidates_api::{FILE_DESCRIPTOR_SET, SERVICE_NAME};
use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor, Value as PValue};
use serde_json::{Map, Value, json};

/// Where the document is served.
pub const PATH: &str = "/openapi.json";

/// The document, built once.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(build)
}

/// The .proto comment of the element at `path` in its file, trimmed.
fn comments(file: &prost_types::FileDescriptorProto, path: &[i32]) -> Option<String> {
    let location = file.source_code_info.as_ref()?.location.iter().find(|l| l.path == path)?;
    let text = location.leading_comments.as_deref()?.trim();
    (!text.is_empty()).then(|| text.split('\n').map(str::trim).collect::<Vec<_>>().join("\n"))
}

fn field_schema(field: &FieldDescriptor) -> Value {
    let item = match field.kind() {
        Kind::String => json!({"type": "string"}),
        Kind::Bool => json!({"type": "boolean"}),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => json!({"type": "integer", "format": "int32"}),
        Kind::Uint32 | Kind::Fixed32 => json!({"type": "integer", "format": "int32", "minimum": 0}),
        // proto3 JSON writes 64-bit integers as strings.
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => {
            json!({"type": "string", "format": "int64"})
        }
        Kind::Double | Kind::Float => json!({"type": "number"}),
        Kind::Bytes => json!({"type": "string", "contentEncoding": "base64"}),
        Kind::Enum(e) => json!({"type": "string", "enum": e.values().map(|v| v.name().to_owned()).collect::<Vec<_>>()}),
        Kind::Message(m) => json!({"$ref": format!("#/components/schemas/{}", m.name())}),
    };
    let mut schema = if field.is_list() { json!({"type": "array", "items": item}) } else { item };
    let file = field.parent_message().parent_file_descriptor_proto().clone();
    if let Some(text) = comments(&file, field.path()) {
        schema["description"] = json!(text);
    }
    schema
}

fn message_schema(message: &MessageDescriptor) -> Value {
    let mut properties = Map::new();
    for field in message.fields() {
        properties.insert(field.json_name().to_owned(), field_schema(&field));
    }
    // Every field is always sent (proto3 JSON with defaults emitted), except proto3 `optional`
    // ones, which are sent only when set (Status.reason).
    let required: Vec<String> =
        message.fields().filter(|f| !f.supports_presence()).map(|f| f.json_name().to_owned()).collect();
    let mut schema = json!({"type": "object", "properties": properties, "required": required});
    if let Some(text) = comments(message.parent_file_descriptor_proto(), message.path()) {
        schema["description"] = json!(text);
    }
    schema
}

/// The name rules as a regular expression. `(?![\s\S])` is the end of input in every dialect
/// (ECMA-262 and Python, which schemathesis uses, where `$` also matches before a final newline).
pub const NAME_PATTERN: &str =
    r"^(?!\.\.?(?![\s\S]))(?!__[\s\S]*__(?![\s\S]))[^\u0000-\u001f\u007f-\u009f/\\?#]{1,255}(?![\s\S])";

/// Every error status of the contract, with the gRPC code that produces it.
const ERRORS: &[(&str, &str)] = &[
    ("400", "INVALID_ARGUMENT: an invalid name (the message says which rule), page size or token"),
    (
        "401",
        "UNAUTHENTICATED: the operation needs a credential, or the one sent is not valid (WWW-Authenticate says which)",
    ),
    ("403", "PERMISSION_DENIED: the credential lacks the operation's scope (candidates.read or candidates.write)"),
    ("404", "NOT_FOUND: no such candidate (message `Not Found`), or no candidates at all"),
    ("405", "The path exists, the method does not"),
    ("413", "The request body is larger than the limit"),
    ("429", "RESOURCE_EXHAUSTED: the store is throttling"),
    ("500", "INTERNAL: a bug"),
    ("503", "UNAVAILABLE: the store did not answer, or the server is overloaded or draining"),
    ("504", "DEADLINE_EXCEEDED: the request's deadline passed"),
];

fn error_responses(responses: &mut Map<String, Value>) {
    for (status, description) in ERRORS {
        responses.entry(status.to_string()).or_insert_with(|| {
            json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
        });
    }
}

fn json_content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

#[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
fn build() -> Value {
    let pool = DescriptorPool::decode(FILE_DESCRIPTOR_SET).expect("the compiled descriptor set decodes");
    let service = pool.get_service_by_name(SERVICE_NAME).expect("the service is in the descriptor");
    let http = pool.get_extension_by_name("google.api.http").expect("google.api.http is in the descriptor");
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object",
            "description": "Every error: google.rpc.Status in JSON.",
            "properties": {
                "code": {"type": "integer", "description": "The gRPC status code (3 INVALID_ARGUMENT, 5 NOT_FOUND, 14 UNAVAILABLE, ...)"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {}},
            },
            "required": ["code", "message", "details"],
        }),
    );

    for route in crate::ROUTES {
        let method = service
            .methods()
            .find(|m| m.name() == route.rpc.name())
            .unwrap_or_else(|| panic!("{} is not in the descriptor", route.rpc));
        let PValue::Message(rule) = method.options().get_extension(&http).into_owned() else { continue };
        let Some((verb, template)) = ["get", "put", "post", "delete", "patch"].into_iter().find_map(|verb| {
            if !rule.has_field_by_name(verb) {
                return None;
            }
            Some((verb, rule.get_field_by_name(verb)?.as_str()?.to_owned()))
        }) else {
            continue;
        };
        let input = method.input();
        let output = method.output();
        for message in [&input, &output] {
            schemas.insert(message.name().to_owned(), message_schema(message));
            for field in message.fields() {
                if let Kind::Message(m) = field.kind() {
                    schemas.insert(m.name().to_owned(), message_schema(&m));
                }
            }
        }

        let path_params: Vec<String> =
            template.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).map(str::to_owned).collect();
        let mut parameters = Vec::new();
        for field in input.fields() {
            let mut schema = field_schema(&field);
            let description = schema.as_object_mut().and_then(|o| o.remove("description"));
            let (location, name) = if path_params.iter().any(|p| p == field.name()) {
                ("path", field.name().to_owned())
            } else {
                ("query", field.json_name().to_owned())
            };
            if location == "path" {
                // The name rules of the contract: 1 to 255 characters, no control characters, none
                // of / \ ? #, not . or .., not __anything__.
                schema = json!({"type": "string", "minLength": 1, "maxLength": 255, "pattern": NAME_PATTERN});
            } else if field.name() == "page_token" {
                // Unpadded base64url.
                schema["pattern"] = json!(r"^([A-Za-z0-9_-]{4})*([A-Za-z0-9_-]{2,3})?(?![\s\S])");
            } else if field.kind() == Kind::Int32 {
                schema["minimum"] = json!(0);
            }
            let mut param = json!({"name": name, "in": location, "required": location == "path", "schema": schema});
            if let Some(d) = description {
                param["description"] = d;
            }
            parameters.push(param);
        }

        let output_ref = json!({"$ref": format!("#/components/schemas/{}", output.name())});
        let mut responses = Map::new();
        let mut operation = json!({
            "operationId": method.name(),
            "tags": ["CandidateService"],
            "parameters": parameters,
        });
        if let Some(text) = comments(method.parent_service().parent_file_descriptor_proto(), method.path()) {
            operation["summary"] = json!(text.lines().next().unwrap_or_default());
            operation["description"] = json!(text);
        }
        match route.rpc {
            // REST-only behaviour on top of the RPC (the gateway's, see routes.rs).
            Rpc::GetStatus => {
                operation["parameters"] = json!([{
                    "name": "details", "in": "query", "required": false, "allowEmptyValue": true,
                    "description": "Its presence (any value) asks for the store round-trip and the instance id.",
                    "schema": {"type": "string"},
                }]);
                responses.insert("200".into(), json!({
                    "description": "Serving. An empty text body without `details`; with it, the status (the store answered).",
                    "content": {
                        "application/json": {"schema": output_ref.clone()},
                        "text/plain": {"schema": {"type": "string", "maxLength": 0}},
                    },
                }));
                responses.insert(
                    "503".into(),
                    json!({
                        "description": "Starting or draining, or (with `details`) the store did not answer.",
                        "content": json_content(json!({"oneOf": [output_ref, {"$ref": "#/components/schemas/Error"}]})),
                    }),
                );
            }
            Rpc::ListCandidates => {
                let candidate = json!({"$ref": "#/components/schemas/Candidate"});
                responses.insert("200".into(), json!({
                    "description": "Without page_size/page_token: every candidate as one array. With either: one page.",
                    "content": json_content(json!({"oneOf": [{"type": "array", "items": candidate}, output_ref]})),
                }));
            }
            // Plain RPCs: the response message as it is.
            _ => {
                responses.insert("200".into(), json!({"description": "OK", "content": json_content(output_ref)}));
            }
        }
        if verb == "post" {
            operation["requestBody"] = json!({
                "required": false,
                "description": "Ignored, whatever its type (up to the body limit).",
                "content": {"*/*": {"schema": {}}},
            });
        }
        error_responses(&mut responses);
        operation["responses"] = Value::Object(responses);
        let entry = paths.entry(template.clone()).or_insert_with(|| json!({}));
        entry[verb] = operation;
    }

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "candidates",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "REST gateway of candidates.v1.CandidateService (generated from the .proto).",
        },
        "paths": paths,
        // Whether a credential is needed depends on the server's policy (docs/security.md): none
        // by default, a key or token for writes on a deployment.
        "security": [{}, {"bearer": []}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key (cand_...) or an OIDC token (JWT, RS256/ES256) from the configured issuer.",
            }},
        },
    })
}
