//! The OpenAPI document describes exactly the routes the gateway serves, with the contract's
//! status codes and error body.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeSet;

use candidates_gateway::{ROUTES, openapi};

#[test]
fn paths_and_methods_equal_the_gateway_routes() {
    let doc = openapi::document();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            documented.insert((method.to_uppercase(), path.clone(), op["operationId"].as_str().unwrap().to_owned()));
        }
    }
    let served: BTreeSet<_> =
        ROUTES.iter().map(|r| (r.method.to_string(), r.path.to_owned(), r.rpc.name().to_owned())).collect();
    assert_eq!(documented, served);
}

#[test]
fn every_operation_documents_the_contract_statuses_and_error_body() {
    let doc = openapi::document();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            for status in ["200", "400", "404", "405", "413", "429", "500", "503", "504"] {
                assert!(responses.contains_key(status), "{method} {path} lacks {status}");
            }
            let error = &responses["400"]["content"]["application/json"]["schema"]["$ref"];
            assert_eq!(error, "#/components/schemas/Error", "{method} {path}");
        }
    }
    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(error["required"], serde_json::json!(["code", "message", "details"]));
    // Field names are the proto's json_names, so the wire format of the original service.
    assert!(doc["components"]["schemas"]["Candidate"]["properties"].get("CandidateName").is_some());
    assert!(doc["components"]["schemas"]["Status"]["properties"].get("instance-id").is_some());
    let list = &doc["components"]["schemas"]["ListCandidatesResponse"]["properties"];
    assert!(list.get("next_page_token").is_some());
    // Path parameters come from the templates, query parameters from the other request fields.
    let get = &doc["paths"]["/candidate/{name}"]["get"]["parameters"][0];
    assert_eq!((get["name"].as_str(), get["in"].as_str()), (Some("name"), Some("path")));
    let names: Vec<&str> = doc["paths"]["/candidates"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["page_size", "page_token"]);
    // Descriptions come from the .proto comments.
    let summary = doc["paths"]["/candidate/{name}"]["get"]["summary"].as_str().unwrap();
    assert!(summary.contains("Returns one candidate"), "{summary}");
}
