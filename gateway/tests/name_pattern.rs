//! The OpenAPI document's pattern for a candidate name accepts exactly the names the server
//! accepts (`candidates_api::name::CandidateName::parse`), so that clients validating against the
//! spec and the server never disagree.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use candidates_api::name::CandidateName;
use candidates_gateway::openapi::NAME_PATTERN;
use proptest::prelude::*;

fn pattern() -> fancy_regex::Regex {
    // JSON Schema patterns are ECMA-262; this one uses only what fancy-regex reads the same way.
    fancy_regex::Regex::new(NAME_PATTERN).expect("the pattern compiles")
}

fn agree(re: &fancy_regex::Regex, name: &str) -> Result<(), TestCaseError> {
    let spec = re.is_match(name).unwrap();
    let server = CandidateName::parse(name).is_ok();
    prop_assert_eq!(spec, server, "{:?}: spec says {}, server says {}", name, spec, server);
    Ok(())
}

proptest! {
    #[test]
    fn pattern_and_parser_agree_on_any_string(name in any::<String>()) {
        agree(&pattern(), &name)?;
    }

    #[test]
    fn pattern_and_parser_agree_near_the_edges(name in "[._/#?\\\\a\u{7f}\u{85}\u{9f}\u{a0}é🦀 ]{0,6}") {
        agree(&pattern(), &name)?;
    }
}

#[test]
fn pattern_and_parser_agree_on_the_rules_examples() {
    let re = pattern();
    let long = "é".repeat(255);
    let too_long = "a".repeat(256);
    for name in [
        "a",
        "John Smith",
        ".",
        "..",
        "...",
        "__x__",
        "___",
        "__",
        "a/b",
        "a\\b",
        "a?b",
        "a#b",
        "\u{7f}",
        "",
        &long,
        &too_long,
    ] {
        agree(&re, name).unwrap();
    }
}
