//! `terraform/modules/instance-config`: the env file every cloud's instances get.

use crate::infra::{Module, binary, one_line, text};

#[test]
fn shared_settings_use_the_binarys_names_and_the_clouds_ports_and_timings() {
    let m = Module::load("modules/instance-config");
    let env = one_line(m.local("env"));
    let expected = [
        ("CANDIDATES_HTTP_ADDR", "\"0.0.0.0:${var.http_port}\""),
        ("CANDIDATES_GRPC_ADDR", "\"0.0.0.0:${var.grpc_port}\""),
        ("CANDIDATES_METRICS_ADDR", "\"0.0.0.0:${var.metrics_port}\""),
        ("CANDIDATES_DRAIN_PERIOD", "\"${var.drain_period_seconds}s\""),
        ("CANDIDATES_SHUTDOWN_GRACE", "\"${var.shutdown_grace_seconds}s\""),
        ("CANDIDATES_LOG_FORMAT", "\"json\""),
        ("CANDIDATES_GRPC_MAX_CONNECTION_AGE", "\"5m\""),
        ("CANDIDATES_API_EXPLORER", "tostring(var.api_explorer)"),
    ];
    let known = binary::env_names();
    for (key, value) in expected {
        assert!(known.contains(&key.to_string()), "{key} is not an environment variable of candidate-server");
        assert!(env.contains(&format!("{key} = {value}")), "{key}: {env}");
    }
    // The store's settings come after the shared ones, so a cloud's own choices win; the access
    // settings come last, so nothing loosens them (access.rs).
    assert!(env.starts_with("merge({") && env.ends_with("}, var.store_env, local.access_env)"), "{env}");
}

#[test]
fn every_cloud_boots_its_instances_with_it() {
    for (cloud, store, kind, attribute) in [
        ("aws", "dynamodb", "aws_launch_template", "user_data"),
        ("azure", "cosmos", "azurerm_linux_virtual_machine_scale_set", "custom_data"),
        ("gcp", "firestore", "google_compute_instance_template", "metadata"),
    ] {
        let m = Module::load(cloud);
        let env = m.store_env();
        assert_eq!(env.get("CANDIDATES_STORE"), Some(&format!("\"{store}\"")), "{cloud}");
        assert_eq!(env.get("CANDIDATES_INSTANCE_METADATA"), Some(&format!("\"{cloud}\"")), "{cloud}");
        let (_, body) = m.resources(kind)[0];
        assert!(text(body, attribute).contains("module.instance_config.user_data"), "{cloud}: {kind}.{attribute}");
    }
}

/// The API explorer is on by default in local runs and off in deployments unless asked for: each
/// root's `api_explorer` defaults to false and reaches the module, whose own default is false too.
#[test]
fn deployments_serve_no_api_explorer_unless_asked() {
    use crate::infra::boolean;
    let module = Module::load("modules/instance-config");
    assert_eq!(boolean(module.default("api_explorer")), Some(false));
    for cloud in ["aws", "azure", "gcp"] {
        let m = Module::load(cloud);
        assert_eq!(boolean(m.default("api_explorer")), Some(false), "{cloud}");
        assert_eq!(text(m.module_call("instance_config"), "api_explorer"), "var.api_explorer", "{cloud}");
    }
}
