//! The gateway's routes and the `google.api.http` annotations in the compiled descriptor must
//! agree exactly: the .proto is the one source of truth for the REST mapping.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeSet;

use candidates_gateway::ROUTES;
use prost_reflect::{DescriptorPool, Value};

/// (HTTP method, path template, RPC) for every annotated method of CandidateService.
fn annotated_routes() -> BTreeSet<(String, String, String)> {
    let pool = DescriptorPool::decode(candidates_api::FILE_DESCRIPTOR_SET).expect("descriptor set decodes");
    let service = pool.get_service_by_name(candidates_api::SERVICE_NAME).expect("service in descriptor");
    let http = pool.get_extension_by_name("google.api.http").expect("google.api.http extension in descriptor");
    let mut routes = BTreeSet::new();
    for method in service.methods() {
        let options = method.options();
        assert!(options.has_extension(&http), "{} has no google.api.http annotation", method.name());
        let Value::Message(rule) = options.get_extension(&http).into_owned() else {
            panic!("{}: annotation is not a message", method.name());
        };
        let mut bindings = Vec::new();
        for verb in ["get", "put", "post", "delete", "patch"] {
            if rule.has_field_by_name(verb) {
                let path = rule.get_field_by_name(verb).unwrap().as_str().unwrap().to_owned();
                bindings.push((verb.to_uppercase(), path));
            }
        }
        assert_eq!(bindings.len(), 1, "{}: exactly one HTTP binding expected", method.name());
        let additional = rule.get_field_by_name("additional_bindings").unwrap();
        assert!(additional.as_list().unwrap().is_empty(), "{}: additional_bindings are not served", method.name());
        let (verb, path) = bindings.pop().unwrap();
        routes.insert((verb, path, method.name().to_owned()));
    }
    routes
}

#[test]
fn gateway_routes_equal_proto_annotations() {
    let served: BTreeSet<(String, String, String)> =
        ROUTES.iter().map(|r| (r.method.to_string(), r.path.to_owned(), r.rpc.name().to_owned())).collect();
    assert_eq!(served.len(), ROUTES.len(), "duplicate route in the gateway table");
    let annotated = annotated_routes();
    assert_eq!(served, annotated, "gateway routes (left) differ from the proto annotations (right)");
}

#[test]
fn every_rpc_is_routed() {
    let pool = DescriptorPool::decode(candidates_api::FILE_DESCRIPTOR_SET).unwrap();
    let service = pool.get_service_by_name(candidates_api::SERVICE_NAME).unwrap();
    let rpcs: BTreeSet<String> = service.methods().map(|m| m.name().to_owned()).collect();
    let routed: BTreeSet<String> = ROUTES.iter().map(|r| r.rpc.name().to_owned()).collect();
    assert_eq!(rpcs, routed);
}

/// Besides the annotated routes (and `/openapi.json`), the REST listener serves the API explorer,
/// and nothing of it may shadow or be taken for an API route: its paths are exactly the page and
/// the files it lists, all under `/docs`, none matching a route template, none in the document.
#[test]
fn the_explorer_is_the_only_other_surface_and_is_disjoint_from_the_api() {
    use candidates_gateway::{explorer, openapi, route_template};
    for route in ROUTES {
        assert!(!explorer::serves(route.path), "{} is under the explorer's path", route.path);
    }
    assert!(!explorer::serves(openapi::PATH));
    let paths = explorer::paths();
    assert_eq!(paths.is_empty(), !explorer::COMPILED_IN);
    for path in &paths {
        assert!(explorer::serves(path), "{path}");
        assert_eq!(route_template(path), "unmatched", "{path} matches an API route");
        assert!(openapi::document()["paths"].get(path.as_str()).is_none(), "{path} is in /openapi.json");
    }
    if explorer::COMPILED_IN {
        let names: BTreeSet<&str> = paths.iter().map(|p| p.trim_start_matches("/docs/")).collect();
        // The page (twice: /docs and /docs/), Swagger UI's three files and our two (by hash), and
        // the three licence files (by name).
        assert_eq!(paths.len(), 10, "{paths:?}");
        for name in ["LICENSE", "NOTICE", "swagger-ui-bundle.js.LICENSE.txt"] {
            assert!(names.contains(name), "{name}");
        }
        for prefix in ["swagger-ui-bundle.", "swagger-ui.", "favicon-32x32.", "init.", "explorer."] {
            assert!(names.iter().any(|n| n.starts_with(prefix)), "{prefix}");
        }
    }
}
