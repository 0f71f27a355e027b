use std::collections::BTreeSet;

use crate::infra::{
    Module, attr, binary, block, blocks, bool_attr, integers, num_attr, one_line, str_attr, strings, text, world_open,
};

fn aws() -> Module {
    Module::load("aws")
}

/// The IAM actions the DynamoDB backend says it needs.
fn backend_actions() -> BTreeSet<String> {
    candidates_server::store::dynamodb::REQUIRED_PERMISSIONS.iter().map(|p| p.to_string()).collect()
}

#[test]
fn instance_role_grants_exactly_the_backends_dynamodb_calls_on_the_one_table() {
    let m = aws();
    let backend = backend_actions();
    let granted: BTreeSet<String> = strings(m.local("dynamodb_actions")).into_iter().collect();
    assert_eq!(granted, backend, "local.dynamodb_actions vs dynamodb::REQUIRED_PERMISSIONS");

    let doc = m.data("aws_iam_policy_document", "table_access");
    let statements = blocks(doc, "statement");
    assert_eq!(statements.len(), 1);
    assert_eq!(text(statements[0], "actions"), "local.dynamodb_actions");
    assert_eq!(text(statements[0], "resources"), "[aws_dynamodb_table.candidates.arn]");
    assert!(attr(statements[0], "effect").is_none_or(|e| e.to_string() == "\"Allow\""));

    // Everything attached to the instance role: the table policy, SSM core and the writes to its
    // own log group (observability.rs checks that one), nothing else.
    let mut attached = Vec::new();
    for (ty, name, body) in m.all_resources() {
        let role = text(body, "role");
        if role.starts_with("aws_iam_role.instance.") && ty != "aws_iam_instance_profile" {
            attached.push(match ty {
                "aws_iam_role_policy_attachment" => text(body, "policy_arn"),
                _ => format!("{ty}.{name} -> {}", text(body, "policy")),
            });
        }
    }
    attached.sort();
    assert_eq!(attached.len(), 3, "{attached:?}");
    assert!(attached[0].ends_with(":iam::aws:policy/AmazonSSMManagedInstanceCore\""), "{attached:?}");
    assert_eq!(attached[1], "aws_iam_role_policy.service_logs -> data.aws_iam_policy_document.service_logs.json");
    assert_eq!(attached[2], "aws_iam_role_policy.table_access -> data.aws_iam_policy_document.table_access.json");
    // ...and the DynamoDB gateway endpoint admits the same actions on the same table.
    let endpoint = text(m.resource("aws_vpc_endpoint", "dynamodb"), "policy");
    assert!(endpoint.contains("local.dynamodb_actions") && endpoint.contains("aws_dynamodb_table.candidates.arn"));
}

#[test]
fn health_checks_and_ports_match_the_binary() {
    let m = aws();
    assert_eq!(m.default_number("http_port"), binary::default_port("http_addr"));
    assert_eq!(m.default_number("grpc_port"), binary::default_port("grpc_addr"));
    assert_eq!(m.default_string("health_check_path"), binary::health_path());
    assert_eq!(binary::health_path(), "/gtg");
    // The original's target group timings.
    for (var, original) in [
        ("health_check_interval", 10),
        ("health_check_timeout", 5),
        ("healthy_threshold", 3),
        ("unhealthy_threshold", 2),
    ] {
        assert_eq!(m.default_number(var), original, "{var}");
    }

    let rest = m.resource("aws_lb_target_group", "rest");
    assert_eq!(text(rest, "port"), "var.http_port");
    assert_eq!(str_attr(rest, "protocol").as_deref(), Some("HTTP"));
    let grpc = m.resource("aws_lb_target_group", "grpc");
    assert_eq!(text(grpc, "port"), "var.grpc_port");
    assert_eq!(text(m.resource("aws_lb_listener", "grpc"), "port"), "var.grpc_port");
    assert_eq!(num_attr(m.resource("aws_lb_listener", "http"), "port"), Some(80));
    for (tg, port) in [(rest, "\"traffic-port\""), (grpc, "tostring(var.http_port)")] {
        let hc = block(tg, "health_check");
        assert_eq!(text(hc, "path"), "var.health_check_path");
        assert_eq!(text(hc, "port"), port);
        assert_eq!(str_attr(hc, "protocol").as_deref(), Some("HTTP"));
        assert_eq!(str_attr(hc, "matcher").as_deref(), Some("200"));
        assert_eq!(text(tg, "deregistration_delay"), "local.deregistration_delay");
    }

    // The env file gets the same ports and drain timings (Module::store_env checks the call), which
    // are the binary's.
    m.store_env();
    let drain = m.default_number("drain_period_seconds");
    let grace = m.default_number("shutdown_grace_seconds");
    assert_eq!(drain, binary::default_secs("drain_period"));
    assert_eq!(grace, binary::default_secs("shutdown_grace"));
    assert_eq!(one_line(m.local("deregistration_delay")), "var.drain_period_seconds + var.shutdown_grace_seconds");
    // The drain outlasts the time the ALB needs to see /gtg fail.
    assert!(m.default_number("health_check_interval") * m.default_number("unhealthy_threshold") <= drain);
}

#[test]
fn launch_template_requires_imdsv2_encrypts_the_root_volume_and_has_no_ssh_key() {
    let m = aws();
    let lt = m.resource("aws_launch_template", "this");
    let md = block(lt, "metadata_options");
    assert_eq!(str_attr(md, "http_tokens").as_deref(), Some("required"));
    assert_eq!(num_attr(md, "http_put_response_hop_limit"), Some(1));
    assert_eq!(str_attr(md, "http_endpoint").as_deref(), Some("enabled"));
    let ebs = block(block(lt, "block_device_mappings"), "ebs");
    assert_eq!(bool_attr(ebs, "encrypted"), Some(true));
    assert!(attr(lt, "key_name").is_none(), "no SSH key pair: access is SSM only");
    for nic in blocks(lt, "network_interfaces") {
        assert_ne!(bool_attr(nic, "associate_public_ip_address"), Some(true));
    }
    assert_eq!(text(lt, "user_data"), "base64encode(module.instance_config.user_data)");
    assert!(text(block(lt, "iam_instance_profile"), "arn").starts_with("aws_iam_instance_profile.instance."));
}

#[test]
fn env_file_configures_dynamodb_with_the_binarys_own_variable_names() {
    let m = aws();
    let keys = m.store_env();
    assert_eq!(keys["CANDIDATES_STORE"], "\"dynamodb\"");
    assert_eq!(keys["CANDIDATES_INSTANCE_METADATA"], "\"aws\"");
    assert_eq!(keys["CANDIDATES_DYNAMODB_TABLE"], "aws_dynamodb_table.candidates.name");
    assert_eq!(keys["CANDIDATES_DYNAMODB_REGION"], "var.region");
}

#[test]
fn only_the_public_alb_accepts_traffic_from_the_internet_and_only_on_80_and_443() {
    let m = aws();
    let http = m.default_number("http_port");
    let mut ingress = Vec::new();
    for (name, body) in m.resources("aws_vpc_security_group_ingress_rule") {
        ingress.push((name.to_string(), body));
    }
    for (name, body) in m.resources("aws_security_group_rule") {
        if str_attr(body, "type").as_deref() == Some("ingress") {
            ingress.push((name.to_string(), body));
        }
    }
    for (name, sg) in m.resources("aws_security_group") {
        assert!(blocks(sg, "ingress").is_empty(), "{name}: use separate rule resources");
    }
    assert!(ingress.len() >= 4);
    for (name, rule) in ingress {
        let sources =
            [m.expand_attr(rule, "cidr_ipv4"), m.expand_attr(rule, "cidr_ipv6"), m.expand_attr(rule, "cidr_blocks")]
                .join("\n");
        let ports = m.expand_attr(rule, "from_port") + &m.expand_attr(rule, "to_port");
        if world_open(&sources) {
            assert_eq!(text(rule, "security_group_id"), "aws_security_group.alb.id", "{name} is open to the internet");
            // The ports come from local.alb_ports, which holds only 80 and 443.
            assert!(text(rule, "for_each").contains("local.alb_ports"), "{name}");
            let alb_ports = integers(&m.local("alb_ports").to_string());
            assert!(alb_ports.is_subset(&BTreeSet::from([80, 443])), "{alb_ports:?}");
        }
        // The REST port is reachable only from the load balancers' security groups.
        if ports.contains("var.http_port") || integers(&ports).contains(&http) {
            let source = text(rule, "referenced_security_group_id");
            assert!(
                source == "aws_security_group.alb.id" || source == "aws_security_group.nlb.id",
                "{name}: port {http} open to {source:?} {sources}"
            );
        }
    }
    // gRPC clients: the VPC by default.
    assert!(strings(m.default("grpc_client_cidrs")).is_empty());
    assert_eq!(
        one_line(m.local("grpc_client_cidrs")),
        "length(var.grpc_client_cidrs) > 0 ? var.grpc_client_cidrs : [var.vpc_cidr]"
    );
    // Instances live in private subnets without public addresses; the gRPC NLB is internal.
    let asg = m.resource("aws_autoscaling_group", "this");
    assert_eq!(text(asg, "vpc_zone_identifier"), "aws_subnet.private[*].id");
    assert_ne!(bool_attr(m.resource("aws_subnet", "private"), "map_public_ip_on_launch"), Some(true));
    assert_eq!(bool_attr(m.resource("aws_lb", "grpc"), "internal"), Some(true));
    assert_eq!(text(m.resource("aws_lb", "grpc"), "subnets"), "aws_subnet.private[*].id");
}

#[test]
fn metrics_are_not_served_through_the_public_alb() {
    let m = aws();
    // Their own port (modules/instance-config sets CANDIDATES_METRICS_ADDR from metrics_port),
    // which only the VPC reaches and no listener forwards...
    m.store_env();
    let metrics = m.default_number("metrics_port");
    assert!(![m.default_number("http_port"), m.default_number("grpc_port"), 80, 443].contains(&metrics));
    let rule = m.resource("aws_vpc_security_group_ingress_rule", "instances_metrics");
    assert_eq!(text(rule, "from_port"), "var.metrics_port");
    assert!(!world_open(&m.expand_attr(rule, "cidr_ipv4")));
    for (name, listener) in m.resources("aws_lb_listener") {
        assert!(!text(listener, "port").contains("metrics"), "{name}");
    }
    // ...and the ALB answers /metrics itself should an instance serve it on 8000.
    let rule = m.resource("aws_lb_listener_rule", "hide_metrics");
    let paths = strings(attr(block(block(rule, "condition"), "path_pattern"), "values").unwrap());
    assert!(paths.contains(&"/metrics".to_string()), "{paths:?}");
    let action = block(rule, "action");
    assert_eq!(str_attr(action, "type").as_deref(), Some("fixed-response"));
    assert_eq!(str_attr(block(action, "fixed_response"), "status_code").as_deref(), Some("404"));
}

#[test]
fn group_scales_on_cpu_rolls_on_change_and_drains_on_scale_in() {
    let m = aws();
    assert_eq!(
        (m.default_number("min_size"), m.default_number("desired_capacity"), m.default_number("max_size")),
        (2, 2, 4)
    );
    assert_eq!(m.default_number("cpu_target"), 60);
    let asg = m.resource("aws_autoscaling_group", "this");
    assert_eq!(str_attr(asg, "health_check_type").as_deref(), Some("ELB"));
    assert_eq!(text(asg, "target_group_arns"), "[aws_lb_target_group.rest.arn, aws_lb_target_group.grpc.arn]");
    let refresh = block(asg, "instance_refresh");
    assert_eq!(str_attr(refresh, "strategy").as_deref(), Some("Rolling"));
    assert_eq!(num_attr(block(refresh, "preferences"), "min_healthy_percentage"), Some(100));
    let hook = block(asg, "initial_lifecycle_hook");
    assert_eq!(str_attr(hook, "lifecycle_transition").as_deref(), Some("autoscaling:EC2_INSTANCE_TERMINATING"));
    assert_eq!(str_attr(hook, "default_result").as_deref(), Some("CONTINUE"));
    let hook_secs = one_line(m.local("termination_hook_seconds"));
    assert!(hook_secs.starts_with("var.drain_period_seconds + var.shutdown_grace_seconds + "), "{hook_secs}");

    let cpu = block(m.resource("aws_autoscaling_policy", "cpu"), "target_tracking_configuration");
    assert_eq!(text(cpu, "target_value"), "var.cpu_target");
    assert_eq!(
        str_attr(block(cpu, "predefined_metric_specification"), "predefined_metric_type").as_deref(),
        Some("ASGAverageCPUUtilization")
    );
}

#[test]
fn table_is_the_originals_with_recovery_and_encryption() {
    let m = aws();
    // Named after the stack unless set (rules.rs); setting it to the binary's default gives the
    // original's table.
    assert_eq!(m.default_string("table_name"), "");
    assert_eq!(binary::default("dynamodb_table"), "Candidates");
    let t = m.resource("aws_dynamodb_table", "candidates");
    assert_eq!(str_attr(t, "billing_mode").as_deref(), Some("PAY_PER_REQUEST"));
    assert_eq!(str_attr(t, "hash_key").as_deref(), Some("CandidateName"));
    let key = block(t, "attribute");
    assert_eq!(
        (str_attr(key, "name").as_deref(), str_attr(key, "type").as_deref()),
        (Some("CandidateName"), Some("S"))
    );
    assert_eq!(bool_attr(block(t, "point_in_time_recovery"), "enabled"), Some(true));
    assert_eq!(bool_attr(block(t, "server_side_encryption"), "enabled"), Some(true));
}

// --- ordering, patches, rollback, tags, flow logs, quota ------------------------------------

fn read(path: &str) -> String {
    std::fs::read_to_string(crate::infra::repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The references in a `depends_on = [...]` list.
fn depends_on(body: &hcl::Body) -> BTreeSet<String> {
    match attr(body, "depends_on") {
        Some(hcl::Expression::Array(items)) => items.iter().map(one_line).collect(),
        Some(other) => panic!("depends_on is not a list: {other}"),
        None => BTreeSet::new(),
    }
}

// Terraform's depends_on reference: a hidden dependency is one that Terraform cannot infer, where
// a resource relies on another's behaviour without reading its data; its own example is an EC2
// instance whose software needs an `aws_iam_role_policy` that only the instance profile's role
// names. Here the group's instances open the table at boot (DynamoDB through the gateway endpoint,
// SSM and apt through NAT), and the group's arguments reach none of those resources.
#[test]
fn group_waits_for_the_role_policies_the_dynamodb_endpoint_and_the_nat_route() {
    let m = aws();
    let asg = m.resource("aws_autoscaling_group", "this");
    let deps = depends_on(asg);
    for needed in [
        "aws_iam_role_policy.table_access",
        "aws_iam_role_policy_attachment.ssm_core",
        "aws_vpc_endpoint.dynamodb",
        "aws_route.private_nat",
        "aws_route_table_association.private",
    ] {
        assert!(deps.contains(needed), "aws_autoscaling_group.this does not depend on {needed}: {deps:?}");
    }
    // The hidden part: the policies hang off the role, which the group reaches only through the
    // launch template's instance profile, so no reference orders them.
    assert_eq!(text(m.resource("aws_iam_role_policy", "table_access"), "role"), "aws_iam_role.instance.id");
    assert_eq!(text(m.resource("aws_iam_role_policy_attachment", "ssm_core"), "role"), "aws_iam_role.instance.name");
}

// Ubuntu's EC2 images point apt at http://<region>.ec2.archive.ubuntu.com and
// http://security.ubuntu.com (cloud-init's EC2 datasource sets the regional mirror): plain HTTP,
// so without port 80 out, apt and unattended-upgrades never install a security fix. Canonical
// publishes no address range for them, so the rule is 80 to 0.0.0.0/0, bounded by the route: the
// instances have no public address and their subnets reach the internet through NAT only.
#[test]
fn instances_reach_ubuntus_http_mirrors_through_nat_only() {
    let m = aws();
    let mut world_ports = BTreeSet::new();
    for (name, rule) in m.resources("aws_vpc_security_group_egress_rule") {
        if text(rule, "security_group_id") != "aws_security_group.instances.id" {
            continue;
        }
        if world_open(&m.expand_attr(rule, "cidr_ipv4")) {
            assert_eq!(str_attr(rule, "ip_protocol").as_deref(), Some("tcp"), "{name}");
            let (from, to) = (num_attr(rule, "from_port"), num_attr(rule, "to_port"));
            assert_eq!(from, to, "{name}: a port range to the internet");
            world_ports.insert(from.unwrap_or_else(|| panic!("{name}: from_port is not a literal")));
        }
    }
    assert_eq!(world_ports, BTreeSet::from([80, 443]), "the instances' egress to the internet");
    // ...through NAT only: the private route tables' default route is a NAT gateway, never the
    // internet gateway, and nothing gives an instance a public address.
    let route = m.resource("aws_route", "private_nat");
    assert_eq!(text(route, "route_table_id"), "aws_route_table.private[count.index].id");
    assert_eq!(str_attr(route, "destination_cidr_block").as_deref(), Some("0.0.0.0/0"));
    assert!(text(route, "nat_gateway_id").starts_with("aws_nat_gateway.this["), "{}", text(route, "nat_gateway_id"));
    assert!(attr(route, "gateway_id").is_none());
    for (name, r) in m.resources("aws_route") {
        if text(r, "route_table_id").starts_with("aws_route_table.private") {
            assert!(attr(r, "gateway_id").is_none(), "{name}: a private route table routes to the internet gateway");
        }
    }
    assert_eq!(
        text(m.resource("aws_route_table_association", "private"), "subnet_id"),
        "aws_subnet.private[count.index].id"
    );
    assert_ne!(bool_attr(m.resource("aws_subnet", "private"), "map_public_ip_on_launch"), Some(true));
    assert!(blocks(m.resource("aws_launch_template", "this"), "network_interfaces").is_empty());
}

// terraform-provider-aws #34189 (open): with a launch template, apply first points the group at the
// new template version (UpdateAutoScalingGroup), then starts the refresh; AutoRollback returns the
// group to "its previous configuration", which is by then the new one. So the stack does not rely
// on it, and docs/deploy-aws.md says how to roll back instead.
#[test]
fn instance_refresh_does_not_rely_on_auto_rollback_and_the_docs_say_how_to_roll_back() {
    let m = aws();
    let refresh = block(m.resource("aws_autoscaling_group", "this"), "instance_refresh");
    let prefs = block(refresh, "preferences");
    assert_ne!(bool_attr(prefs, "auto_rollback"), Some(true), "auto_rollback is ineffective (#34189)");
    assert!(attr(prefs, "auto_rollback").is_none_or(|e| e.to_string() == "false"));
    // Launch first, terminate after: a bad image never lowers capacity, so a rollback is a second
    // refresh, not a recovery.
    assert_eq!(num_attr(prefs, "min_healthy_percentage"), Some(100));
    let docs = read("docs/deploy-aws.md");
    let section =
        docs.split("\n## Rolling back").nth(1).expect("docs/deploy-aws.md has no \"## Rolling back\" section");
    let section = section.split("\n## ").next().unwrap();
    for needed in ["34189", "cancel-instance-refresh", "image_id", "describe-instance-refreshes"] {
        assert!(section.contains(needed), "the rollback section does not mention {needed}");
    }
    assert!(!docs.contains("rolls back on failure"), "docs/deploy-aws.md still promises an automatic rollback");
}

// terraform-provider-aws #19387: default_tags apply to a resource's top-level `tags` only, not to a
// launch template's tag_specifications, and an ASG's `tag` blocks get none; so instances and volumes
// the group launches carry only what the launch template names.
#[test]
fn instances_and_volumes_carry_the_stacks_tags() {
    let m = aws();
    let versions = hcl::parse(&read("terraform/aws/versions.tf")).unwrap();
    let provider = versions
        .blocks()
        .find(|b| b.identifier() == "provider" && b.labels()[0].as_str() == "aws")
        .expect("provider \"aws\" in versions.tf");
    assert_eq!(text(block(provider.body(), "default_tags"), "tags"), "local.common_tags");
    let common = one_line(m.local("common_tags"));
    assert!(common.starts_with("merge(var.tags,"), "{common}");
    let lt = m.resource("aws_launch_template", "this");
    let mut tagged = BTreeSet::new();
    for spec in blocks(lt, "tag_specifications") {
        let tags = text(spec, "tags");
        assert!(tags.starts_with("merge(local.common_tags,") || tags == "local.common_tags", "{tags}");
        tagged.insert(str_attr(spec, "resource_type").unwrap());
    }
    assert!(tagged.is_superset(&BTreeSet::from(["instance".to_string(), "volume".to_string()])), "{tagged:?}");
}

// VPC user guide, "IAM role for publishing flow logs to CloudWatch Logs": use the aws:SourceAccount
// and aws:SourceArn condition keys against the confused deputy problem; the source account owns the
// flow log, the source ARN is the flow log's (a wildcard for its ID when it is not yet known).
#[test]
fn flow_logs_role_trusts_the_service_only_for_this_accounts_flow_logs() {
    let m = aws();
    let doc = m.data("aws_iam_policy_document", "flow_logs_assume");
    let statements = blocks(doc, "statement");
    assert_eq!(statements.len(), 1);
    let s = statements[0];
    assert_eq!(strings(attr(block(s, "principals"), "identifiers").unwrap()), ["vpc-flow-logs.amazonaws.com"]);
    let conditions: Vec<(String, String, String)> = blocks(s, "condition")
        .into_iter()
        .map(|c| (str_attr(c, "test").unwrap(), str_attr(c, "variable").unwrap(), text(c, "values")))
        .collect();
    let account = conditions.iter().find(|(_, v, _)| v == "aws:SourceAccount").expect("no aws:SourceAccount condition");
    assert_eq!(account.0, "StringEquals");
    assert_eq!(account.2, "[aws_vpc.this.owner_id]");
    let arn = conditions.iter().find(|(_, v, _)| v == "aws:SourceArn").expect("no aws:SourceArn condition");
    assert!(arn.0 == "ArnLike" || arn.0 == "ArnEquals", "{arn:?}");
    assert!(
        arn.2.contains(":ec2:") && arn.2.contains("aws_vpc.this.owner_id") && arn.2.contains(":vpc-flow-log/"),
        "{arn:?}"
    );
    assert_eq!(
        text(m.resource("aws_iam_role", "flow_logs"), "assume_role_policy"),
        "data.aws_iam_policy_document.flow_logs_assume.json"
    );
}

// RefreshPreferences / InstanceMaintenancePolicy: MaxHealthyPercentage is a percentage of the
// desired capacity, so a refresh (or a health replacement) at desired = max_size may run
// max_size × 200 % instances at once. The quota the docs ask for must cover that, plus the Packer
// build instance.
#[test]
fn quota_docs_cover_a_refresh_at_max_size() {
    let m = aws();
    let asg = m.resource("aws_autoscaling_group", "this");
    let refresh_max = num_attr(block(block(asg, "instance_refresh"), "preferences"), "max_healthy_percentage").unwrap();
    let maintenance_max = num_attr(block(asg, "instance_maintenance_policy"), "max_healthy_percentage").unwrap();
    let peak_percent = refresh_max.max(maintenance_max);
    let vcpus = match m.default_string("instance_type").as_str() {
        "t3.micro" | "t3.small" | "t3.medium" | "t3.large" | "c7i.large" | "m7i.large" => 2,
        other => panic!("vCPUs of {other} unknown to this test"),
    };
    let build_vcpus = 2; // packer's amazon-ebs builder: a t3.small-class instance
    let peak = m.default_number("max_size") * peak_percent / 100 * vcpus + build_vcpus;
    let docs = read("docs/deploy-aws.md");
    let quota = docs
        .lines()
        .skip_while(|l| !l.starts_with("- Quotas:"))
        .take_while(|l| !l.starts_with("- `STACK`"))
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        quota.contains(&format!("{peak_percent} %")),
        "the quota bullet ignores max_healthy_percentage = {peak_percent}: {quota}"
    );
    assert!(
        quota.contains(&format!("{peak} with the defaults")),
        "the quota bullet does not say {peak} vCPUs: {quota}"
    );
}

/// `major.minor.patch` against one `>= x` / `< x` / `~> x` clause list, as Terraform reads them.
fn satisfies(version: &str, constraint: &str) -> bool {
    fn parse(v: &str) -> Vec<u64> {
        let mut parts: Vec<u64> = v.trim().split('.').map(|p| p.parse().unwrap()).collect();
        parts.resize(3, 0);
        parts
    }
    let v = parse(version);
    constraint.split(',').all(|clause| {
        let clause = clause.trim();
        let (op, rest) = clause.split_at(clause.find(|c: char| c.is_ascii_digit()).unwrap());
        let bound = parse(rest);
        match op.trim() {
            ">=" => v >= bound,
            ">" => v > bound,
            "<" => v < bound,
            "<=" => v <= bound,
            "=" | "" => v == bound,
            "~>" => {
                let fixed = rest.trim().split('.').count() - 1; // ~> 6.25 fixes the major only
                v >= bound && v[..fixed] == bound[..fixed]
            }
            other => panic!("operator {other} in {constraint}"),
        }
    })
}

// The provider constraint admits both versions the project checks the root against: the schema
// names of terraform/tests/provider-schemas.json, and the mirrored 5.100 that the moto harness
// (terraform/tests/moto) validates, applies, re-plans and destroys with.
#[test]
fn provider_constraint_admits_the_checked_versions() {
    let versions = hcl::parse(&read("terraform/aws/versions.tf")).unwrap();
    let terraform = versions.blocks().find(|b| b.identifier() == "terraform").unwrap();
    let providers = block(terraform.body(), "required_providers");
    let Some(hcl::Expression::Object(aws)) = attr(providers, "aws") else { panic!("required_providers.aws") };
    let constraint = aws
        .iter()
        .find(|(k, _)| k.to_string() == "version")
        .and_then(|(_, v)| crate::infra::string(v))
        .expect("required_providers.aws.version");
    let schemas: serde_json::Value = serde_json::from_str(&read("terraform/tests/provider-schemas.json")).unwrap();
    let schema_version = schemas["source"]["aws"]["provider_version"].as_str().unwrap();
    let harness = read("terraform/tests/moto/run.sh");
    let mirrored = harness
        .lines()
        .find_map(|l| l.strip_prefix("AWS_PROVIDER_VERSION="))
        .expect("AWS_PROVIDER_VERSION= in terraform/tests/moto/run.sh")
        .trim_matches('"');
    for v in [schema_version, mirrored] {
        assert!(satisfies(v, &constraint), "aws {v} is outside {constraint:?}");
    }
    assert!(!satisfies("7.0.0", &constraint), "{constraint:?} admits a major nobody checked");
    // The checker itself.
    assert!(satisfies("6.30.1", "~> 6.25") && !satisfies("5.100.0", "~> 6.25") && !satisfies("7.0.0", "~> 6.25"));
}

/// A customer managed key on the table must come with the role's right to use it through DynamoDB
/// (every call is AccessDenied otherwise; the pre-production review's finding), and only through
/// DynamoDB in this region.
#[test]
fn a_customer_managed_table_key_is_usable_by_the_instances_through_dynamodb_only() {
    let m = aws();
    let doc = m.data("aws_iam_policy_document", "table_access");
    let dynamic: Vec<&hcl::Body> = doc
        .blocks()
        .filter(|b| b.identifier() == "dynamic" && b.labels()[0].as_str() == "statement")
        .map(|b| b.body())
        .collect();
    assert_eq!(dynamic.len(), 1, "no statement for the table's customer managed key");
    let statement = dynamic[0];
    assert!(text(statement, "for_each").contains("var.table_kms_key_arn"));
    let content = block(statement, "content");
    assert_eq!(text(content, "resources"), "[statement.value]", "the one key, not every key");
    let actions = text(content, "actions");
    for action in ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey*"] {
        assert!(actions.contains(action), "{action} missing: {actions}");
    }
    let condition = block(content, "condition");
    assert_eq!(str_attr(condition, "variable").as_deref(), Some("kms:ViaService"));
    assert_eq!(text(condition, "values"), "[\"dynamodb.${var.region}.amazonaws.com\"]");
}
