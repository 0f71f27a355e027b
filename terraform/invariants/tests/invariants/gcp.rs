use std::{collections::BTreeSet, fs};

use hcl::Body;

use crate::infra::{
    Module, attr, binary, block, blocks, bool_attr, integers, num_attr, one_line, repo_root, str_attr, strings, text,
    world_open,
};

fn read(path: &str) -> String {
    fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `source "googlecompute" "gcp"` block of the Packer template.
fn packer_gcp_source(template: &str) -> Body {
    let body = hcl::parse(template).unwrap();
    body.blocks()
        .find(|b| b.identifier() == "source" && b.labels()[0].as_str() == "googlecompute")
        .map(|b| b.body().clone())
        .expect("no googlecompute source")
}

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
    // Besides Firestore, exactly the Ops Agent's two roles (issue 31; observability.rs checks them).
    let agent: Vec<_> = bindings.iter().filter(|(_, n, _)| *n == "log_writer" || *n == "metric_writer").collect();
    assert_eq!(agent.len(), 2);
    for (_, name, body) in &agent {
        assert_eq!(text(body, "member"), "\"serviceAccount:${google_service_account.instances.email}\"", "{name}");
    }
    bindings.retain(|(_, n, _)| *n != "log_writer" && *n != "metric_writer");
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
    // Long enough for IAM's documented ~7-minute propagation of the Firestore grant (the server
    // waits for its store meanwhile), short enough that a broken instance is not kept for long.
    let delay = m.default_number("autohealing_initial_delay");
    assert!((420..=600).contains(&delay), "autohealing_initial_delay {delay}: cover IAM propagation, no more");

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

// Packer's googlecompute builder, `use_iap`: "You must manually enable the IAP API" (plugin docs,
// IAPConfig). `use_os_login` imports the key through the OS Login API. The build runs before
// Terraform, so apply.sh enables both (and Compute) before `packer_build`; Terraform enables them
// too for validate.sh, calibrate.sh and STRESS=1 (IAP SSH), which run with SKIP_IMAGE=1 as well.
#[test]
fn packer_build_enables_the_iap_and_os_login_apis_before_it_needs_them() {
    let source = packer_gcp_source(&read("packer/candidates.pkr.hcl"));
    assert_eq!(bool_attr(&source, "use_iap"), Some(true));
    let apply = read("scripts/gcp/apply.sh");
    let build = apply.find("packer_build googlecompute").expect("apply.sh builds the GCP image");
    let enable = apply
        .lines()
        .filter(|l| l.contains("gcloud services enable"))
        .map(|l| (apply.find(l).unwrap(), l))
        .find(|(at, _)| *at < build)
        .map(|(_, l)| l)
        .expect("apply.sh enables services before the Packer build");
    for api in ["compute.googleapis.com", "iap.googleapis.com", "oslogin.googleapis.com"] {
        assert!(enable.contains(api), "apply.sh does not enable {api} before Packer: {enable}");
    }
    let m = gcp();
    let apis = one_line(attr(m.resource("google_project_service", "apis"), "for_each").unwrap());
    for api in ["iap.googleapis.com", "oslogin.googleapis.com", "monitoring.googleapis.com"] {
        assert!(apis.contains(api), "Terraform does not enable {api}: {apis}");
    }
}

// Packer's googlecompute builder: `network` "Defaults to default"; `use_os_login` puts the
// temporary key in the builder's OS Login profile instead of instance metadata (which projects
// enforcing OS Login or blocking metadata keys refuse). The build VM's network is a variable.
#[test]
fn packer_build_uses_os_login_and_a_chosen_network() {
    let source = packer_gcp_source(&read("packer/candidates.pkr.hcl"));
    assert_eq!(bool_attr(&source, "use_os_login"), Some(true), "metadata SSH keys");
    assert_eq!(bool_attr(&source, "disable_default_service_account"), Some(true));
    assert_eq!(text(&source, "network"), "var.gcp_network");
    assert_eq!(text(&source, "subnetwork"), "var.gcp_subnetwork");
    let apply = read("scripts/gcp/apply.sh");
    assert!(apply.contains("\"gcp_network=$network\""), "apply.sh passes the build network");
    assert!(apply.contains("gcp_subnetwork="), "apply.sh passes the build subnetwork");
}

// Zones are not always REGION-a (e.g. us-east1 has b, c, d): the build zone is one the region
// lists as UP.
#[test]
fn packer_build_zone_is_a_zone_the_region_has() {
    let apply = read("scripts/gcp/apply.sh");
    assert!(!apply.contains("$REGION-a"), "apply.sh assumes zone a exists");
    assert!(apply.contains("gcloud compute zones list"), "apply.sh looks the zone up");
    assert!(apply.contains("\"gcp_zone=$zone\""), "apply.sh passes the zone it found");
}

// gcloud compute ssh asks for a passphrase when it first generates ~/.ssh/google_compute_engine
// and to confirm prompts; `--quiet` (gcloud-wide flag) disables prompts. Scripts must not stop.
#[test]
fn every_gcloud_ssh_in_the_scripts_is_non_interactive() {
    let dir = repo_root().join("scripts/gcp");
    let mut seen = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let script = fs::read_to_string(&path).unwrap();
        // A command continued over several lines is one command.
        let joined = script.replace("\\\n", " ");
        for line in joined.lines().filter(|l| l.contains("gcloud compute ssh")) {
            seen += 1;
            assert!(line.contains("--quiet"), "{}: gcloud compute ssh without --quiet: {line}", path.display());
        }
    }
    assert!(seen >= 2, "expected the IAP SSH of env.sh and validate.sh");
}

// Compute API, AutoscalerStatusDetails: MORE_THAN_ONE_BACKEND_SERVICE (ERROR) "The instance group
// cannot be autoscaled because it has more than one backend service attached to it" when scaling
// on load-balancing utilisation. This group is a backend of the REST and the gRPC backend
// services, so it scales on a per-group Cloud Monitoring metric instead (AutoscalingPolicy
// CustomMetricUtilization): a filter on a resource type other than gce_instance makes it per-group,
// only `=` joined by AND is valid, the matching series are summed, and single_instance_assignment
// is one instance's share. loadbalancing.googleapis.com/https/request_count is a DELTA count of
// the https_lb_rule resource (global external Application Load Balancer), read per second.
#[test]
fn autoscaler_signal_works_for_a_group_behind_two_backend_services() {
    let m = gcp();
    let group = "google_compute_region_instance_group_manager.this.instance_group";
    let mut services = Vec::new();
    for ty in ["google_compute_backend_service", "google_compute_region_backend_service"] {
        for (name, service) in m.resources(ty) {
            if blocks(service, "backend").iter().any(|b| text(b, "group") == group) {
                services.push(format!("{ty}.{name}"));
            }
        }
    }
    let policy = block(m.resource("google_compute_region_autoscaler", "this"), "autoscaling_policy");
    if services.len() > 1 {
        assert!(
            blocks(policy, "load_balancing_utilization").is_empty(),
            "the group is a backend of {services:?}: load_balancing_utilization cannot scale it \
             (MORE_THAN_ONE_BACKEND_SERVICE)"
        );
    }

    let metrics = blocks(policy, "metric");
    assert_eq!(metrics.len(), 1, "one request-rate metric");
    let metric = metrics[0];
    let name = str_attr(metric, "name").unwrap();
    assert_eq!(name, "loadbalancing.googleapis.com/https/request_count");
    let filter = text(metric, "filter");
    let filter = filter.strip_prefix('"').and_then(|f| f.strip_suffix('"')).expect("a string").replace("\\\"", "\"");
    let mut selectors = std::collections::BTreeMap::new();
    for selector in filter.split(" AND ") {
        let (key, value) = selector.split_once(" = ").unwrap_or_else(|| panic!("not `key = value`: {selector}"));
        assert!(key.chars().all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'), "{key}: no functions");
        assert!(value.starts_with('"') && value.ends_with('"') && value.len() >= 2, "{value}: a quoted literal");
        assert!(!value.contains(" OR ") && !value.contains('('), "{value}");
        selectors.insert(key.to_string(), value.trim_matches('"').to_string());
    }
    assert_eq!(
        selectors.get("resource.type").map(String::as_str),
        Some("https_lb_rule"),
        "per-group: not gce_instance"
    );
    if let Some(in_filter) = selectors.get("metric.type") {
        assert_eq!(in_filter, &name, "the metric in the filter must be the metric's");
    }
    assert_eq!(
        selectors.get("resource.label.backend_target_name").map(String::as_str),
        Some("${google_compute_backend_service.rest.name}"),
        "the filter must select the REST backend service's requests only"
    );
    let rest = m.resource("google_compute_backend_service", "rest");
    assert_eq!(str_attr(rest, "load_balancing_scheme").as_deref(), Some("EXTERNAL_MANAGED"), "https_lb_rule");
    assert_eq!(text(metric, "single_instance_assignment"), "var.target_requests_per_instance_per_second");
    assert!(attr(metric, "target").is_none(), "either a utilization target or a single-instance assignment");
    assert_eq!(str_attr(metric, "type").as_deref(), Some("DELTA_PER_SECOND"), "request_count is a DELTA count");

    // CPU stays the backstop.
    assert_eq!(text(block(policy, "cpu_utilization"), "target"), "var.cpu_target");
}

// IAM, roles.delete: a deleted custom role can be undeleted for 7 days, then is purged; its ID
// cannot be reused until 37 days after the deletion. A service account's unique ID is new every
// time it is created ("if you delete a service account, then create a new service account with the
// same name, the new service account has a different unique ID"), 21 digits.
#[test]
fn custom_role_id_is_new_on_every_deploy() {
    let m = gcp();
    let role_id = text(m.resource("google_project_iam_custom_role", "firestore"), "role_id");
    assert!(
        role_id.contains("google_service_account.instances.unique_id") || role_id.contains("random_id."),
        "a fixed role ID fails a re-deploy within 37 days of a destroy: {role_id}"
    );
    // name: 2-21 characters (its validation), the literal part, 21 digits; role IDs have 3-64.
    let literal = role_id
        .replace("${replace(var.name, \"-\", \"_\")}", "")
        .replace("${google_service_account.instances.unique_id}", "");
    let literal = literal.trim_matches('"');
    assert!(literal.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{literal}");
    assert!(21 + literal.len() + 21 <= 64, "role ID may exceed 64 characters: {role_id}");
}

// IAM: a new grant can take up to ~7 minutes to propagate. The group is created after the binding
// of its service account, and the server waits for its store (serving /gtg 503) for
// --store-open-timeout, which must cover that window.
#[test]
fn instance_group_waits_for_its_firestore_grant() {
    let m = gcp();
    let mig = m.resource("google_compute_region_instance_group_manager", "this");
    let depends = text(mig, "depends_on");
    assert!(depends.contains("google_project_iam_member.firestore"), "MIG depends_on: {depends:?}");
    assert!(binary::default_secs("store_open_timeout") >= 7 * 60, "the store wait must outlast IAM propagation");
}

// An instance template stores its source image as given: with a family path
// (projects/P/global/images/family/F) the template never changes when the family gets a new
// image, so the group never rolls. The family is resolved to one image (data source, by name).
#[test]
fn template_boots_a_concrete_image_so_a_new_one_rolls_the_group() {
    let m = gcp();
    let image = m.expand(m.local("image"));
    assert!(!image.contains("/family/"), "a family path never triggers a rolling replacement: {image}");
    assert!(image.contains("data.google_compute_image.family[0].self_link"), "{image}");
    let data = m.data("google_compute_image", "family");
    assert_eq!(text(data, "family"), "var.image_family");
    assert_eq!(
        text(block(m.resource("google_compute_instance_template", "this"), "disk"), "source_image"),
        "local.image"
    );
}

// What a person needs to SSH through IAP with OS Login to a VM that runs as a service account
// (validate.sh, calibrate.sh, STRESS=1, Packer): IAP-secured Tunnel User, OS Admin Login (sudo),
// Service Account User on the VM's account.
#[test]
fn deploy_doc_names_the_os_login_and_iap_roles() {
    let doc = read("docs/deploy-gcp.md");
    for role in ["roles/iap.tunnelResourceAccessor", "roles/compute.osAdminLogin", "roles/iam.serviceAccountUser"] {
        assert!(doc.contains(role), "docs/deploy-gcp.md does not name {role}");
    }
}

// The validation host's comment must say what it has.
#[test]
fn validation_host_comment_matches_its_service_account() {
    let text_of = read("terraform/gcp/validation.tf");
    let vm = gcp();
    let vm = vm.resource("google_compute_instance", "validation");
    if !blocks(vm, "service_account").is_empty() {
        assert!(!text_of.contains("No service account"), "validation.tf says it has no service account, but has one");
        assert_eq!(text(block(vm, "service_account"), "scopes"), "[]", "no scopes: no usable token");
    }
}
