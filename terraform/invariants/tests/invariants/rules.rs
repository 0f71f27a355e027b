//! Rules of the clouds' APIs that a schema check cannot see: each test fails on the
//! configuration that a real `terraform apply`, validation or scale demo would trip over, with the
//! provider documentation that states the rule named above it.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    process::Command,
};

use hcl::Body;

use crate::infra::{Module, attr, block, blocks, bool_attr, one_line, repo_root, str_attr, text};

fn read(path: &str) -> String {
    fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every attribute expression of a body, nested blocks included, as text.
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

/// The string literals in a piece of HCL text, interpolations left out.
fn string_literals(text: &str) -> Vec<String> {
    text.split('"').skip(1).step_by(2).filter(|s| !s.contains("${")).map(str::to_owned).collect()
}

fn is_cidr_or_address(s: &str) -> bool {
    let (addr, len) = s.split_once('/').unwrap_or((s, "32"));
    addr.parse::<std::net::IpAddr>().is_ok() && len.parse::<u8>().is_ok_and(|l| l <= 128)
}

/// The variable blocks' `validation { condition }` texts, by variable name.
fn validations(m: &Module) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, body) in m.variables() {
        let conditions: Vec<String> = blocks(body, "validation").into_iter().map(|v| text(v, "condition")).collect();
        out.insert(name.to_string(), conditions.join("\n"));
    }
    out
}

// Azure: "sourceAddressPrefixes / destinationAddressPrefixes: CIDR ranges or IP addresses"; the
// service tags (Internet, VirtualNetwork, AzureLoadBalancer, ...) go only into the singular
// sourceAddressPrefix. A tag in the list is rejected (SecurityRuleParameterContainsUnsupportedValue).
#[test]
fn azure_nsg_plural_prefix_lists_hold_addresses_only_never_service_tags() {
    let m = Module::load("azure");
    let checks = validations(&m);
    let mut checked = 0;
    for (name, rule) in m.resources("azurerm_network_security_rule") {
        for key in ["source_address_prefixes", "destination_address_prefixes"] {
            let Some(expr) = attr(rule, key) else { continue };
            checked += 1;
            let expanded = m.expand(expr);
            for literal in string_literals(&expanded) {
                assert!(
                    is_cidr_or_address(&literal),
                    "{name}.{key} can hold {literal:?}, which is not an address range"
                );
            }
            // Whatever a caller passes must be address ranges too: every variable feeding the list
            // validates that each entry is a CIDR.
            for (kind, var) in crate::infra::references(&expanded) {
                if kind == "var" && !var.ends_with("_cidr") {
                    let condition = checks.get(&var).map(String::as_str).unwrap_or_default();
                    assert!(condition.contains("cidrhost("), "{name}.{key}: variable {var} is not validated as CIDRs");
                }
            }
        }
    }
    assert!(checked >= 3, "expected the gateway, gRPC and metrics rules to use prefix lists");
}

// Azure Application Health extension: typeHandlerVersion 1.0 is Binary Health States (a 200 is
// Healthy); 2.0 is Rich Health States, where a 2xx must carry {"ApplicationHealthState":"Healthy"}
// or the instance is Unknown (and automatic repair replaces it). The mode must match what /gtg
// answers, so this asks the gateway itself (in process, as the binary wires it).
#[tokio::test]
async fn azure_health_extension_mode_matches_what_gtg_returns() {
    let (status, body) = gtg().await;
    assert_eq!(status, 200);
    let rich = body.contains("\"ApplicationHealthState\"");

    let m = Module::load("azure");
    let vmss = m.resource("azurerm_linux_virtual_machine_scale_set", "this");
    let health = blocks(vmss, "extension")
        .into_iter()
        .find(|e| str_attr(e, "type").as_deref() == Some("ApplicationHealthLinux"))
        .expect("ApplicationHealthLinux extension");
    let version = str_attr(health, "type_handler_version").unwrap();
    let settings = one_line(attr(health, "settings").unwrap());
    assert!(settings.contains("requestPath = var.health_check_path"), "{settings}");
    if rich {
        assert!(version.starts_with("2."), "/gtg answers rich health states; use 2.0");
    } else {
        assert!(
            version.starts_with("1."),
            "/gtg answers 200 with {body:?}, not the rich-states JSON: type_handler_version {version} leaves instances Unknown"
        );
    }
}

// Azure: MaxSurge rolling upgrades need the MaxSurgeRollingUpgrade feature registered on the
// subscription ("Configure rolling upgrades on Virtual Machine Scale Sets", prerequisites).
#[test]
fn azure_max_surge_is_a_variable_that_defaults_off() {
    let m = Module::load("azure");
    let policy = block(m.resource("azurerm_linux_virtual_machine_scale_set", "this"), "rolling_upgrade_policy");
    assert_eq!(
        text(policy, "maximum_surge_instances_enabled"),
        "var.rolling_upgrade_max_surge",
        "MaxSurge must be the variable (it needs a feature registration)"
    );
    assert_eq!(m.default("rolling_upgrade_max_surge").to_string(), "false");
    assert!(read("scripts/azure/apply.sh").contains("MaxSurgeRollingUpgrade"), "apply.sh checks the registration");
    assert!(
        read("docs/deploy-azure.md").contains("MaxSurgeRollingUpgrade"),
        "docs/deploy-azure.md names the feature registration"
    );
}

/// (instance group expression, balancing mode, load-balancing scheme, backend body) of every backend
/// of every GCP backend service.
fn gcp_backends(m: &Module) -> Vec<(String, String, String, &Body)> {
    let mut out = Vec::new();
    for ty in ["google_compute_backend_service", "google_compute_region_backend_service"] {
        for (name, service) in m.resources(ty) {
            let scheme = str_attr(service, "load_balancing_scheme").unwrap_or_else(|| "EXTERNAL".into());
            for backend in blocks(service, "backend") {
                let mode = str_attr(backend, "balancing_mode").unwrap_or_else(|| format!("{name}: default"));
                out.push((text(backend, "group"), mode, scheme.clone(), backend));
            }
        }
    }
    out
}

// GCP backend services: "Backends must use compatible balancing modes" (Backend.balancingMode);
// an internal passthrough Network Load Balancer (scheme INTERNAL) takes CONNECTION only, and an
// instance group that is a backend of it cannot also be a UTILIZATION backend. RATE needs
// maxRatePerInstance (or maxRate) and is what the autoscaler's load-balancing signal reads.
#[test]
fn gcp_backend_services_on_one_instance_group_use_compatible_balancing_modes() {
    let m = Module::load("gcp");
    let backends = gcp_backends(&m);
    assert!(backends.len() >= 2);
    let mut modes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (group, mode, scheme, backend) in &backends {
        if scheme == "INTERNAL" {
            assert_eq!(mode, "CONNECTION", "an internal passthrough backend must use CONNECTION");
        }
        if mode == "RATE" {
            assert!(
                attr(backend, "max_rate_per_instance").is_some() || attr(backend, "max_rate").is_some(),
                "RATE needs max_rate_per_instance"
            );
        }
        modes.entry(group.clone()).or_default().insert(mode.clone());
    }
    for (group, modes) in modes {
        assert!(
            !(modes.contains("UTILIZATION") && modes.contains("CONNECTION")),
            "{group} is a UTILIZATION backend and a CONNECTION backend: GCP rejects the pair"
        );
    }
}

/// resource address -> the resource addresses its body mentions (references and depends_on).
fn dependency_graph(m: &Module, prefix: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for (kind, ty, name, body) in m.typed_blocks() {
        let address = if kind == "data" { format!("data.{ty}.{name}") } else { format!("{ty}.{name}") };
        let body = body_text(body);
        let mut deps = BTreeSet::new();
        for (i, _) in body.match_indices(prefix) {
            let before = body[..i].chars().next_back();
            let is_data = body[..i].ends_with("data.");
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || (c == '.' && !is_data)) {
                continue;
            }
            let rest: String =
                body[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.').collect();
            let mut parts = rest.split('.');
            if let (Some(t), Some(n)) = (parts.next(), parts.next()) {
                deps.insert(if is_data { format!("data.{t}.{n}") } else { format!("{t}.{n}") });
            }
        }
        // A module's outputs depend on what is passed to it.
        for (i, _) in body.match_indices("module.") {
            let rest: String = body[i + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            deps.insert(format!("module.{rest}"));
        }
        graph.insert(address, deps);
    }
    graph
}

// GCP: a resource created before its service's API is enabled fails ("SERVICE_DISABLED ... API has
// not been used in project"); Terraform orders only what depends on google_project_service, and
// with SKIP_IMAGE=1 nothing else enables Compute first.
#[test]
fn gcp_resources_that_need_an_enabled_api_depend_on_it() {
    let m = Module::load("gcp");
    let graph = dependency_graph(&m, "google_");
    let target = "google_project_service.apis";
    let mut missing = Vec::new();
    for start in graph.keys() {
        // Only Google's resources call Google's APIs (terraform_data is Terraform's own).
        if start == target || !(start.starts_with("google_") || start.starts_with("data.google_")) {
            continue;
        }
        let (mut seen, mut stack) = (BTreeSet::new(), vec![start.clone()]);
        let mut reaches = false;
        while let Some(node) = stack.pop() {
            if node == target {
                reaches = true;
                break;
            }
            if seen.insert(node.clone())
                && let Some(next) = graph.get(&node)
            {
                stack.extend(next.iter().cloned());
            }
        }
        if !reaches {
            missing.push(start.clone());
        }
    }
    assert!(missing.is_empty(), "created without waiting for the APIs: {missing:?}");
}

// Terraform's create_before_destroy creates the replacement while the old object still exists, so
// a fixed name collides (AWS: "A target group with the same name exists"; GCP and Azure alike):
// such resources take name_prefix, or (where the provider has none, as for GCP's managed
// certificates) a name that embeds a digest of the very expression whose change replaces them.
#[test]
fn resources_created_before_destroyed_have_no_fixed_name() {
    let mut checked = 0;
    for cloud in ["aws", "azure", "gcp"] {
        let m = Module::load(cloud);
        for (ty, name, body) in m.all_resources() {
            let cbd =
                blocks(body, "lifecycle").into_iter().any(|l| bool_attr(l, "create_before_destroy") == Some(true));
            if !cbd {
                continue;
            }
            checked += 1;
            let Some(fixed) = attr(body, "name") else { continue };
            let fixed = one_line(fixed);
            let digested =
                fixed.split("sha256(jsonencode(").nth(1).and_then(|rest| rest.split("))").next()).unwrap_or_else(
                    || panic!("{cloud}: {ty}.{name} is created before destroyed with a fixed name: {fixed}"),
                );
            let inputs: Vec<String> = body
                .blocks()
                .filter(|b| b.identifier() != "lifecycle")
                .flat_map(|b| b.body().attributes().map(|a| one_line(a.expr())).collect::<Vec<_>>())
                .collect();
            assert!(
                inputs.iter().any(|i| i == digested),
                "{cloud}: {ty}.{name}: the name digests {digested}, which is not what the resource is made of"
            );
        }
    }
    assert!(checked >= 6);
}

// AWS: the NLB's instance targets with client-IP preservation drop a connection a target makes to
// itself through the NLB ("Internal load balancers do not support hairpinning or loopback";
// preserve_client_ip.enabled=false gives the target the NLB's address). validate.sh's gRPC check
// is an SSM port-forward that starts on an instance: that instance connects to the NLB on the gRPC
// port, so its egress must allow it and the NLB must admit it.
#[test]
fn aws_validation_path_is_allowed_and_does_not_hairpin() {
    let m = Module::load("aws");
    let validate = read("scripts/aws/validate.sh");
    assert!(validate.contains("AWS-StartPortForwardingSessionToRemoteHost") && validate.contains("grpc_endpoint"));
    // Ports the documented validation paths open from an instance.
    let paths = [("var.grpc_port", "aws_security_group.nlb.id")];
    for (port, to) in paths {
        let egress = m.resources("aws_vpc_security_group_egress_rule").into_iter().any(|(_, r)| {
            text(r, "security_group_id") == "aws_security_group.instances.id"
                && text(r, "from_port") == port
                && text(r, "to_port") == port
                && (text(r, "referenced_security_group_id") == to || text(r, "cidr_ipv4").contains("0.0.0.0/0"))
        });
        assert!(egress, "the instances' egress does not allow {port} to {to}: validate.sh's gRPC check cannot connect");
        let ingress = m.resources("aws_vpc_security_group_ingress_rule").into_iter().any(|(_, r)| {
            text(r, "security_group_id") == "aws_security_group.nlb.id"
                && text(r, "from_port") == port
                && text(r, "referenced_security_group_id") == "aws_security_group.instances.id"
        });
        assert!(ingress, "the NLB does not admit the instances on {port}");
    }
    let grpc = m.resource("aws_lb_target_group", "grpc");
    assert_eq!(str_attr(grpc, "target_type").as_deref(), Some("instance"));
    assert_eq!(str_attr(grpc, "preserve_client_ip").as_deref(), Some("false"), "hairpin through the NLB");
    // Without client addresses the instances must admit the NLB itself on the gRPC port.
    let from_nlb = m.resources("aws_vpc_security_group_ingress_rule").into_iter().any(|(_, r)| {
        text(r, "security_group_id") == "aws_security_group.instances.id"
            && text(r, "from_port") == "var.grpc_port"
            && text(r, "referenced_security_group_id") == "aws_security_group.nlb.id"
    });
    assert!(from_nlb, "instances do not admit gRPC from the NLB");
}

// Azure Load Balancer limitations: "if an outbound flow from a VM in the backend pool attempts a
// flow to frontend of the internal Load Balancer in which pool it resides and is mapped back to
// itself, ... the flow will fail". validate.sh's gRPC check runs on a host in no backend pool.
#[test]
fn azure_grpc_validation_runs_outside_the_backend_pools() {
    let m = Module::load("azure");
    let validate = read("scripts/azure/validate.sh");
    assert!(!validate.contains("az vmss run-command"), "validate.sh checks gRPC from a scale set instance (a backend)");
    assert!(validate.contains("az vm run-command invoke") && validate.contains("validation_vm_name"));
    let vm = m.resource("azurerm_linux_virtual_machine", "validation");
    assert_eq!(text(vm, "network_interface_ids"), "[azurerm_network_interface.validation[0].id]");
    let ip = block(m.resource("azurerm_network_interface", "validation"), "ip_configuration");
    assert!(body_text(ip).lines().all(|l| !l.contains("backend_address_pool")), "the validation host is in a pool");
    assert_eq!(text(ip, "subnet_id"), "azurerm_subnet.app.id");
    assert_eq!(m.default("validation_host").to_string(), "true");
}

// GCP: on every backend of an internal passthrough load balancer the guest agent installs a local
// route for the load balancer's address ("Internal passthrough Network Load Balancer overview"), so
// a backend's connection to it is answered by itself: a check from a backend never tests the load
// balancer. validate.sh's gRPC check runs on a VM in no instance group.
#[test]
fn gcp_grpc_validation_runs_outside_the_instance_group() {
    let m = Module::load("gcp");
    let validate = read("scripts/gcp/validate.sh");
    assert!(
        validate.contains("validation_instance") && !validate.contains("list-instances"),
        "validate.sh picks a group instance"
    );
    let vm = m.resource("google_compute_instance", "validation");
    assert_eq!(text(block(vm, "network_interface"), "subnetwork"), "google_compute_subnetwork.this.id");
    assert!(blocks(block(vm, "network_interface"), "access_config").is_empty(), "no external address");
    for (_, _, body) in m.all_resources() {
        assert!(!body_text(body).contains("google_compute_instance.validation"), "the validation host is a backend");
    }
    assert_eq!(m.default("validation_host").to_string(), "true");
}

/// `Key=value` lines of the image's unit, in order.
fn unit_lines(key: &str) -> Vec<String> {
    read("packer/files/candidates.service")
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
        .collect()
}

// The image must not serve without the deployment's configuration: no env file ships in the image,
// the unit reads the one cloud-init writes, and its ExecStartPre refuses to start without it (exit
// status and reason, which systemd writes to the journal).
#[test]
fn image_default_configuration_refuses_to_serve() {
    let env_file = "/etc/candidates/candidates.env";
    let cloud_init = read("terraform/modules/instance-config/cloud-init.yaml.tftpl");
    assert!(cloud_init.contains(&format!("path: {env_file}")), "cloud-init writes {env_file}");
    let files = unit_lines("EnvironmentFile");
    assert!(files.iter().all(|f| f.trim_start_matches('-') == env_file), "{files:?}");
    let provision = read("packer/scripts/provision.sh");
    assert!(
        !provision.lines().any(|l| l.trim_start().starts_with("install") && l.trim_end().ends_with("candidates.env\"")),
        "provision.sh installs a default candidates.env"
    );
    let pre = unit_lines("ExecStartPre");
    assert_eq!(pre, ["/usr/local/libexec/candidates-check-config"], "the unit has no configuration check");
    assert!(provision.contains("\"$ROOT/usr/local/libexec/candidates-check-config\""));
    // The binary's own default store is the embedded one: the check is what stops it.
    assert_eq!(crate::infra::binary::default("store"), "embedded");

    let check = repo_root().join("packer/files/candidates-check-config");
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("candidates.env");
    let refused = Command::new(&check).env_clear().env("CANDIDATES_ENV_FILE", &missing).output().unwrap();
    assert!(!refused.status.success(), "started without the env file");
    let reason = String::from_utf8_lossy(&refused.stderr);
    assert!(reason.contains("refusing to start") && reason.contains("never arrived"), "{reason}");

    fs::write(&missing, "CANDIDATES_STORE=dynamodb\n").unwrap();
    let empty = Command::new(&check).env_clear().env("CANDIDATES_ENV_FILE", &missing).output().unwrap();
    assert!(!empty.status.success(), "started with no CANDIDATES_STORE in the environment");
    let ok = Command::new(&check)
        .env_clear()
        .env("CANDIDATES_ENV_FILE", &missing)
        .env("CANDIDATES_STORE", "dynamodb")
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
}

// cloud-init 24.3 renamed cloud-init.service (the network stage, which runs write_files) to
// cloud-init-network.service; systemd ignores ordering on a unit that does not exist.
#[test]
fn unit_is_ordered_after_both_cloud_init_network_stage_names() {
    let after: BTreeSet<String> =
        unit_lines("After").iter().flat_map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>()).collect();
    for unit in ["cloud-init.service", "cloud-init-network.service"] {
        assert!(after.contains(unit), "After= lacks {unit}: {after:?}");
    }
    // And it does not rely on the ordering alone (the previous test): no env file, no start.
    assert!(!unit_lines("ExecStartPre").is_empty());
}

// The per-instance request-rate target means the same in every root (requests per second per
// instance through the REST load balancer), converted where the cloud counts per minute
// (ALBRequestCountPerTarget, AvgRequestCountPerHealthyHost).
#[test]
fn every_cloud_scales_on_the_same_per_instance_request_rate() {
    let var = "target_requests_per_instance_per_second";
    let defaults: BTreeSet<i64> = ["aws", "azure", "gcp"].iter().map(|c| Module::load(c).default_number(var)).collect();
    assert_eq!(defaults.len(), 1, "different defaults: {defaults:?}");

    let aws = Module::load("aws");
    let policy = block(aws.resource("aws_autoscaling_policy", "requests"), "target_tracking_configuration");
    assert_eq!(
        str_attr(block(policy, "predefined_metric_specification"), "predefined_metric_type").as_deref(),
        Some("ALBRequestCountPerTarget")
    );
    assert_eq!(text(policy, "target_value"), format!("var.{var} * 60"), "ALBRequestCountPerTarget counts per minute");
    assert!(attr(aws.resource("aws_autoscaling_policy", "requests"), "count").is_none(), "always on");

    let azure = Module::load("azure");
    assert_eq!(one_line(azure.local("requests_per_host_per_minute")), format!("var.{var} * 60"));
    let profile = block(azure.resource("azurerm_monitor_autoscale_setting", "this"), "profile");
    let request_rules: Vec<(String, String)> = blocks(profile, "rule")
        .into_iter()
        .map(|r| block(r, "metric_trigger"))
        .filter(|t| str_attr(t, "metric_name").as_deref() == Some("AvgRequestCountPerHealthyHost"))
        .map(|t| (str_attr(t, "operator").unwrap(), text(t, "threshold")))
        .collect();
    // Scale-out only: scale-in rests on CPU, a metric defined at zero traffic (azure.rs).
    assert_eq!(request_rules, [("GreaterThan".into(), "local.requests_per_host_per_minute".into())]);
}

// Packer's build VMs: SSH only from the builder (amazon-ebs looks up its public address,
// azure-arm takes allowed_inbound_ip_addresses, googlecompute tunnels through IAP with no
// external address at all).
#[test]
fn packer_build_vms_accept_ssh_only_from_the_builder() {
    let text_of = read("packer/candidates.pkr.hcl");
    let body = hcl::parse(&text_of).unwrap();
    let sources: BTreeMap<String, &Body> = body
        .blocks()
        .filter(|b| b.identifier() == "source")
        .map(|b| (b.labels()[0].as_str().to_owned(), b.body()))
        .collect();
    assert_eq!(
        bool_attr(sources["amazon-ebs"], "temporary_security_group_source_public_ip"),
        Some(true),
        "amazon-ebs: SSH to the build instance from anywhere"
    );
    assert_eq!(text(sources["azure-arm"], "allowed_inbound_ip_addresses"), "var.azure_allowed_inbound_ip_addresses");
    assert!(
        read("scripts/azure/apply.sh").contains("azure_allowed_inbound_ip_addresses="),
        "apply.sh passes the builder's address"
    );
    for key in ["omit_external_ip", "use_internal_ip", "use_iap"] {
        assert_eq!(bool_attr(sources["googlecompute"], key), Some(true), "googlecompute {key}");
    }
}

// Stacks with different names can share an account: the table is named after the stack.
#[test]
fn aws_table_is_named_after_the_stack() {
    let m = Module::load("aws");
    assert_eq!(
        text(m.resource("aws_dynamodb_table", "candidates"), "name"),
        "local.table_name",
        "the table is not named after the stack"
    );
    assert_eq!(one_line(m.local("table_name")), "var.table_name != \"\" ? var.table_name : \"${var.name}-candidates\"");
    assert_eq!(m.default_string("table_name"), "");
}

// destroy.sh deletes this stack's images only: every image query filters on the `stack` tag or
// label Packer puts on the images (packer/candidates.pkr.hcl), not on the project-wide ones.
#[test]
fn destroy_deletes_only_this_stacks_images() {
    let packer = read("packer/candidates.pkr.hcl");
    assert!(packer.contains("stack       = var.stack"), "images carry a stack label");
    assert!(read("scripts/deploy/lib.sh").contains("-var \"stack=$STACK\""), "packer_build passes the stack");
    for (cloud, filter) in
        [("aws", "\"Name=tag:stack,Values=$STACK\""), ("azure", "tags.stack=='$STACK'"), ("gcp", "labels.stack=$STACK")]
    {
        let destroy = read(&format!("scripts/{cloud}/destroy.sh"));
        assert!(destroy.contains(filter), "{cloud}: destroy.sh does not filter images on {filter}");
        assert!(
            read(&format!("scripts/{cloud}/env.sh")).contains("\"name=$STACK\""),
            "{cloud}: Terraform's name is the stack"
        );
    }
}

/// What `GET /gtg` answers from a ready instance: the gateway over the in-process service.
async fn gtg() -> (u16, String) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let store = std::sync::Arc::new(candidates_server::store::memory::MemoryStore::new());
    let api = candidates_server::service::CandidateApi::new(
        store,
        "test".into(),
        std::time::Duration::from_secs(1),
        std::sync::Arc::new(candidates_edge::auth::Auth::open()),
    );
    let upstream = candidates_server::grpc::in_process(api, std::time::Duration::from_secs(10));
    let (_ready, readiness) = tokio::sync::watch::channel(true);
    let options = candidates_gateway::Options {
        limits: candidates_edge::limit::Limits {
            max_concurrency: 8,
            body_limit: 1024,
            body_timeout: std::time::Duration::from_secs(1),
        },
        send_timeout: std::time::Duration::from_secs(1),
        auth: std::sync::Arc::new(candidates_edge::auth::Auth::open()),
        cors: None,
        compression: false,
        grpc_web: None,
    };
    let gateway = candidates_gateway::router(upstream, readiness, options);
    let response = gateway.oneshot(http::Request::get("/gtg").body(axum::body::Body::empty()).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The drain must fit in the unit's stop timeout, which the image bakes in while the drain and
/// grace are each root's variables (the pre-production review's finding): the instance-config
/// module refuses a sum that SIGKILL would cut short, and its bound follows the unit's value.
#[test]
fn drain_and_grace_fit_in_the_units_stop_timeout() {
    let unit = read("packer/files/candidates.service");
    let stop: u64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .expect("the unit sets TimeoutStopSec")
        .parse()
        .unwrap();
    let module = read("terraform/modules/instance-config/main.tf");
    let bound: u64 = module
        .lines()
        .find_map(|l| {
            l.trim().strip_prefix("condition     = var.drain_period_seconds + var.shutdown_grace_seconds <= ")
        })
        .expect("instance-config validates drain + grace")
        .trim()
        .parse()
        .unwrap();
    assert!(bound + 5 <= stop, "drain + grace may reach {bound} s, the unit kills after {stop} s");
    for cloud in ["aws", "azure", "gcp"] {
        let m = crate::infra::Module::load(cloud);
        let sum = m.default_number("drain_period_seconds") + m.default_number("shutdown_grace_seconds");
        assert!(sum <= bound as i64, "{cloud}: default drain + grace {sum} > {bound}");
    }
}
