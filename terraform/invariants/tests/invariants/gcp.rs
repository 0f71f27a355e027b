use std::collections::BTreeSet;

use crate::infra::{
    Module, attr, binary, block, blocks, integers, num_attr, one_line, str_attr, strings, text, world_open,
};

fn gcp() -> Module {
    Module::load("gcp")
}

/// The IAM permissions the Firestore backend says it needs.
fn backend_permissions() -> BTreeSet<String> {
    candidates_server::store::firestore::REQUIRED_PERMISSIONS.iter().map(|p| p.to_string()).collect()
}

#[test]
fn service_account_holds_exactly_the_backends_firestore_permissions_on_its_database() {
    let m = gcp();
    let granted: BTreeSet<String> = strings(m.local("firestore_permissions")).into_iter().collect();
    assert_eq!(granted, backend_permissions(), "local.firestore_permissions vs firestore::REQUIRED_PERMISSIONS");
    let role = m.resource("google_project_iam_custom_role", "firestore");
    assert_eq!(text(role, "permissions"), "local.firestore_permissions");

    // Every IAM binding in the module is for the instances' account, and it is only this one.
    let mut bindings = Vec::new();
    for (ty, name, body) in m.all_resources() {
        if ty.starts_with("google_") && ty.contains("_iam_") && ty != "google_project_iam_custom_role" {
            bindings.push((ty, name, body));
        }
    }
    assert_eq!(bindings.len(), 1, "{:?}", bindings.iter().map(|(t, n, _)| format!("{t}.{n}")).collect::<Vec<_>>());
    let (_, _, member) = bindings[0];
    assert_eq!(text(member, "role"), "google_project_iam_custom_role.firestore.id");
    assert_eq!(text(member, "member"), "\"serviceAccount:${google_service_account.instances.email}\"");
    let condition = text(block(member, "condition"), "expression");
    assert!(condition.contains("/databases/${google_firestore_database.this.name}"), "{condition}");

    let template = m.resource("google_compute_instance_template", "this");
    assert_eq!(text(block(template, "service_account"), "email"), "google_service_account.instances.email");
}

#[test]
fn firestore_database_is_native_mode_in_terraform() {
    let m = gcp();
    let db = m.resource("google_firestore_database", "this");
    assert_eq!(str_attr(db, "type").as_deref(), Some("FIRESTORE_NATIVE"));
    assert_eq!(str_attr(db, "point_in_time_recovery_enablement").as_deref(), Some("POINT_IN_TIME_RECOVERY_ENABLED"));
    assert_eq!(m.default_string("firestore_collection"), binary::default("firestore_collection"));
    let apis = one_line(attr(m.resource("google_project_service", "apis"), "for_each").unwrap());
    for api in ["compute.googleapis.com", "firestore.googleapis.com"] {
        assert!(apis.contains(api), "{api} not enabled: {apis}");
    }
}

#[test]
fn health_checks_and_ports_match_the_binary() {
    let m = gcp();
    assert_eq!(m.default_number("http_port"), binary::default_port("http_addr"));
    assert_eq!(m.default_number("grpc_port"), binary::default_port("grpc_addr"));
    assert_eq!(m.default_string("health_check_path"), binary::health_path());
    // The original's health check timings.
    assert_eq!((m.default_number("health_check_interval"), m.default_number("unhealthy_threshold")), (5, 2));

    for name in ["gtg", "autohealing"] {
        let hc = block(m.resource("google_compute_health_check", name), "http_health_check");
        assert_eq!(
            (text(hc, "port"), text(hc, "request_path")),
            ("var.http_port".into(), "var.health_check_path".into())
        );
    }
    let mig = m.resource("google_compute_region_instance_group_manager", "this");
    let ports: Vec<(String, String)> =
        blocks(mig, "named_port").into_iter().map(|p| (str_attr(p, "name").unwrap(), text(p, "port"))).collect();
    assert_eq!(ports, [("http".into(), "var.http_port".into()), ("grpc".into(), "var.grpc_port".into())]);
    let rest = m.resource("google_compute_backend_service", "rest");
    assert_eq!(str_attr(rest, "port_name").as_deref(), Some("http"));
    assert_eq!(text(rest, "health_checks"), "[google_compute_health_check.gtg.id]");
    assert_eq!(
        text(m.resource("google_compute_region_backend_service", "grpc"), "health_checks"),
        "[google_compute_health_check.gtg.id]"
    );
    assert_eq!(text(m.resource("google_compute_forwarding_rule", "grpc"), "ports"), "[tostring(var.grpc_port)]");
    assert_eq!(
        str_attr(m.resource("google_compute_global_forwarding_rule", "rest"), "port_range").as_deref(),
        Some("80")
    );
    let autoheal = block(mig, "auto_healing_policies");
    assert_eq!(text(autoheal, "health_check"), "google_compute_health_check.autohealing.id");
    assert!(m.default_number("autohealing_initial_delay") <= 120, "start-up is short: keep the initial delay short");

    let drain = m.default_number("drain_period_seconds");
    let grace = m.default_number("shutdown_grace_seconds");
    assert_eq!((drain, grace), (binary::default_secs("drain_period"), binary::default_secs("shutdown_grace")));
    assert_eq!(one_line(m.local("connection_draining")), "var.drain_period_seconds + var.shutdown_grace_seconds");
    for body in [rest, m.resource("google_compute_region_backend_service", "grpc")] {
        assert_eq!(text(body, "connection_draining_timeout_sec"), "local.connection_draining");
    }
    assert!(m.default_number("health_check_interval") * m.default_number("unhealthy_threshold") <= drain);
}

#[test]
fn env_file_configures_firestore_with_the_binarys_own_variable_names() {
    let m = gcp();
    let pairs = m.store_env();
    assert_eq!(pairs["CANDIDATES_STORE"], "\"firestore\"");
    assert_eq!(pairs["CANDIDATES_INSTANCE_METADATA"], "\"gcp\"");
    assert_eq!(pairs["GOOGLE_CLOUD_PROJECT"], "var.project_id");
    assert_eq!(pairs["CANDIDATES_FIRESTORE_DATABASE"], "google_firestore_database.this.name");
    assert!(!pairs.contains_key("GOOGLE_APPLICATION_CREDENTIALS"), "no key file: the VM's service account");
}

#[test]
fn firewall_admits_only_google_lb_ranges_on_8000_and_the_network_on_50051() {
    let m = gcp();
    let (http, grpc) = (m.default_number("http_port"), m.default_number("grpc_port"));
    let google = BTreeSet::from(["130.211.0.0/22".to_string(), "35.191.0.0/16".to_string()]);
    assert_eq!(strings(m.local("google_lb_ranges")).into_iter().collect::<BTreeSet<_>>(), google);
    let mut seen = BTreeSet::new();
    for (name, rule) in m.resources("google_compute_firewall") {
        if str_attr(rule, "direction").as_deref() != Some("INGRESS") || !blocks(rule, "deny").is_empty() {
            continue;
        }
        let sources = m.expand_attr(rule, "source_ranges");
        assert!(!world_open(&sources), "{name}: open to the internet: {sources}");
        assert!(attr(rule, "source_tags").is_none(), "{name}: sources are address ranges");
        let ports: BTreeSet<String> = blocks(rule, "allow")
            .into_iter()
            .flat_map(|a| {
                let p = m.expand_attr(a, "ports");
                assert!(!p.trim().is_empty(), "{name}: every port");
                vec![p]
            })
            .collect();
        let ports = ports.into_iter().collect::<Vec<_>>().join("\n");
        if ports.contains("var.http_port") || integers(&ports).contains(&http) {
            assert_eq!(text(rule, "source_ranges"), "local.google_lb_ranges", "{name}");
            seen.insert("rest");
        }
        if ports.contains("var.grpc_port") || integers(&ports).contains(&grpc) {
            assert_eq!(text(rule, "source_ranges"), "local.grpc_client_cidrs", "{name}");
            assert_eq!(
                one_line(m.local("grpc_client_cidrs")),
                "length(var.grpc_client_cidrs) > 0 ? var.grpc_client_cidrs : [var.subnet_cidr]"
            );
            seen.insert("grpc");
        }
        if integers(&ports).contains(&22) {
            assert_eq!(text(rule, "source_ranges"), "[local.iap_range]", "{name}: SSH only through IAP");
            assert_eq!(one_line(m.local("iap_range")), "\"35.235.240.0/20\"");
        }
        assert_eq!(text(rule, "target_tags"), "[local.instance_tag]", "{name}");
    }
    assert_eq!(seen, BTreeSet::from(["grpc", "rest"]));

    // No external address on the instances; the internal load balancer is internal.
    let template = m.resource("google_compute_instance_template", "this");
    for nic in blocks(template, "network_interface") {
        assert!(blocks(nic, "access_config").is_empty(), "instances must not get external IPs");
    }
    let shielded = block(template, "shielded_instance_config");
    for key in ["enable_secure_boot", "enable_vtpm", "enable_integrity_monitoring"] {
        assert_eq!(text(shielded, key), "true", "{key}");
    }
    assert_eq!(
        str_attr(m.resource("google_compute_forwarding_rule", "grpc"), "load_balancing_scheme").as_deref(),
        Some("INTERNAL")
    );
}

#[test]
fn group_rolls_on_a_new_template_and_autoscales_on_cpu() {
    let m = gcp();
    assert_eq!((m.default_number("min_replicas"), m.default_number("max_replicas")), (2, 4));
    assert_eq!(m.default("cpu_target").to_string(), "0.6");
    let policy = block(m.resource("google_compute_region_autoscaler", "this"), "autoscaling_policy");
    assert_eq!(text(block(policy, "cpu_utilization"), "target"), "var.cpu_target");
    assert_eq!(text(policy, "cooldown_period"), "var.cooldown_seconds");
    let scale_in = block(policy, "scale_in_control");
    assert_eq!(num_attr(block(scale_in, "max_scaled_in_replicas"), "fixed"), Some(1));
    let update = block(m.resource("google_compute_region_instance_group_manager", "this"), "update_policy");
    assert_eq!(str_attr(update, "type").as_deref(), Some("PROACTIVE"));
    assert_eq!(num_attr(update, "max_unavailable_fixed"), Some(0));
    assert_eq!(text(update, "max_surge_fixed"), "length(local.zones)");
}
