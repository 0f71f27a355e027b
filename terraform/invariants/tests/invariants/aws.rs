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

    // Everything attached to the instance role: the table policy and SSM core, nothing else.
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
    assert_eq!(attached.len(), 2, "{attached:?}");
    assert!(attached[0].ends_with(":iam::aws:policy/AmazonSSMManagedInstanceCore\""), "{attached:?}");
    assert_eq!(attached[1], "aws_iam_role_policy.table_access -> data.aws_iam_policy_document.table_access.json");
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
