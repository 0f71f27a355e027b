//! The configuration reference (docs/configuration.md's table) lists exactly the flags and
//! environment variables `candidate-server --help` has, with the same defaults.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;

use candidates_server::Config;
use clap::CommandFactory;

/// (flag or "(env only)", env) -> default column, from the reference table.
fn documented() -> BTreeMap<(String, String), String> {
    let section = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md")).unwrap();
    let mut rows = BTreeMap::new();
    for line in section.lines().skip_while(|l| !l.starts_with("| flag")).skip(2) {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<String> = line.split('|').map(|c| c.trim().trim_matches('`').to_owned()).collect();
        rows.insert((cells[1].clone(), cells[2].clone()), cells[3].clone());
    }
    rows
}

#[test]
fn every_flag_is_documented_with_its_env_and_default() {
    let documented = documented();
    let mut served = BTreeMap::new();
    for arg in Config::command().get_arguments() {
        let Some(env) = arg.get_env() else { continue };
        let env = env.to_string_lossy().into_owned();
        let flag = if arg.is_hide_set() && arg.get_id() != "cosmos_key" {
            continue; // testing aids
        } else if arg.get_id() == "cosmos_key" {
            "(env only)".to_owned()
        } else {
            format!("--{}", arg.get_long().unwrap())
        };
        let default: Vec<String> = arg.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
        served.insert((flag, env), default.join(","));
    }
    let doc_keys: Vec<_> = documented.keys().cloned().collect();
    let served_keys: Vec<_> = served.keys().cloned().collect();
    assert_eq!(doc_keys, served_keys, "docs/configuration.md (left) vs --help (right)");
    for (key, default) in &served {
        if !default.is_empty() {
            assert_eq!(&documented[key], default, "default of {} in docs/configuration.md", key.0);
        }
    }
}
