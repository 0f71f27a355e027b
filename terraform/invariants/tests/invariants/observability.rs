//! terraform/aws/observability.tf (issue 31, AWS) against what it must agree with: every alarm and
//! dashboard metric is in the AWS documentation's list for its namespace, with documented
//! dimensions (the lists are encoded below with their URLs); the service's own metrics are ones
//! server/src/metrics.rs describes and its log line one server/src/store/guarded.rs writes; every
//! alarm notifies the topic, says what missing data means, and has its reason and runbook; the
//! CloudWatch agent's configuration parses, reads the file rsyslog writes and writes the log group
//! Terraform makes, which is the only thing the instance role may write; the saved queries read
//! only fields the access lines have.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
};

use hcl::{Body, Expression};
use serde_json::Value;

use crate::infra::{Module, attr, block, blocks, bool_attr, one_line, repo_root, str_attr, strings, text};

fn aws() -> Module {
    Module::load("aws")
}

fn read(path: &str) -> String {
    fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Our own namespace (local.metrics_namespace, "Candidates/<name>"): its metrics are the service's.
const OURS: &str = "Candidates";

/// (namespace, metric, the dimension sets the documentation lists for it), with the page each
/// namespace's list comes from.
const DOCUMENTED: &[(&str, &str, &[&[&str]])] = &[
    // https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html
    (
        "AWS/ApplicationELB",
        "RequestCount",
        &[&["LoadBalancer"], &["LoadBalancer", "TargetGroup"], &["AvailabilityZone", "LoadBalancer"]],
    ),
    ("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", &[&["LoadBalancer"], &["AvailabilityZone", "LoadBalancer"]]),
    (
        "AWS/ApplicationELB",
        "HTTPCode_Target_5XX_Count",
        &[&["LoadBalancer"], &["LoadBalancer", "TargetGroup"], &["AvailabilityZone", "LoadBalancer", "TargetGroup"]],
    ),
    (
        "AWS/ApplicationELB",
        "HTTPCode_Target_4XX_Count",
        &[&["LoadBalancer"], &["LoadBalancer", "TargetGroup"], &["AvailabilityZone", "LoadBalancer", "TargetGroup"]],
    ),
    (
        "AWS/ApplicationELB",
        "TargetResponseTime",
        &[&["LoadBalancer"], &["LoadBalancer", "TargetGroup"], &["AvailabilityZone", "LoadBalancer", "TargetGroup"]],
    ),
    (
        "AWS/ApplicationELB",
        "UnHealthyHostCount",
        &[&["LoadBalancer", "TargetGroup"], &["AvailabilityZone", "LoadBalancer", "TargetGroup"]],
    ),
    (
        "AWS/ApplicationELB",
        "HealthyHostCount",
        &[&["LoadBalancer", "TargetGroup"], &["AvailabilityZone", "LoadBalancer", "TargetGroup"]],
    ),
    // https://docs.aws.amazon.com/elasticloadbalancing/latest/network/load-balancer-cloudwatch-metrics.html
    (
        "AWS/NetworkELB",
        "UnHealthyHostCount",
        &[&["LoadBalancer", "TargetGroup"], &["AvailabilityZone", "LoadBalancer", "TargetGroup"]],
    ),
    (
        "AWS/NetworkELB",
        "HealthyHostCount",
        &[&["LoadBalancer", "TargetGroup"], &["AvailabilityZone", "LoadBalancer", "TargetGroup"]],
    ),
    // https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-metrics.html (group
    // metrics: only once enabled_metrics names them)
    ("AWS/AutoScaling", "GroupInServiceInstances", &[&["AutoScalingGroupName"]]),
    ("AWS/AutoScaling", "GroupDesiredCapacity", &[&["AutoScalingGroupName"]]),
    // https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/viewing_metrics_with_cloudwatch.html
    ("AWS/EC2", "CPUUtilization", &[&["AutoScalingGroupName"], &["InstanceId"]]),
    // https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html
    ("AWS/DynamoDB", "ReadThrottleEvents", &[&["TableName"], &["GlobalSecondaryIndexName", "TableName"]]),
    ("AWS/DynamoDB", "WriteThrottleEvents", &[&["TableName"], &["GlobalSecondaryIndexName", "TableName"]]),
    ("AWS/DynamoDB", "ThrottledRequests", &[&["Operation", "TableName"]]),
    ("AWS/DynamoDB", "SystemErrors", &[&["Operation", "TableName"]]),
    ("AWS/DynamoDB", "SuccessfulRequestLatency", &[&["Operation", "TableName"]]),
    // https://docs.aws.amazon.com/vpc/latest/userguide/vpc-nat-gateway-cloudwatch.html
    ("AWS/NATGateway", "ErrorPortAllocation", &[&["NatGatewayId"]]),
    ("AWS/NATGateway", "PacketsDropCount", &[&["NatGatewayId"]]),
    ("AWS/NATGateway", "PacketsInFromSource", &[&["NatGatewayId"]]),
    ("AWS/NATGateway", "PacketsInFromDestination", &[&["NatGatewayId"]]),
];

/// DynamoDB's Operation dimension values (the same page), for the data calls the service makes.
const DYNAMODB_OPERATIONS: &[&str] =
    &["BatchGetItem", "BatchWriteItem", "DeleteItem", "GetItem", "PutItem", "Query", "Scan", "UpdateItem"];

/// Our namespace's metrics: the Prometheus metric the agent scrapes (by its exported name, with the
/// scrape's static label as dimension) and the breaker's log metric filter (no dimension).
fn our_metrics(m: &Module) -> Vec<(String, Vec<&'static str>)> {
    let filter = m.resource("aws_cloudwatch_log_metric_filter", "breaker_open");
    let name = str_attr(block(filter, "metric_transformation"), "name").unwrap();
    vec![("store_operation_errors_total".into(), vec!["deployment"]), (name, vec![])]
}

fn check_metric(m: &Module, namespace: &str, metric: &str, dims: &BTreeMap<String, String>, what: &str) {
    let keys: BTreeSet<&str> = dims.keys().map(String::as_str).collect();
    if namespace == OURS {
        let found = our_metrics(m).into_iter().find(|(name, _)| name == metric);
        let (_, want) = found.unwrap_or_else(|| panic!("{what}: {metric} is not one of our metrics"));
        assert_eq!(keys, want.into_iter().collect(), "{what}: {metric}'s dimensions");
        return;
    }
    let (_, _, sets) = DOCUMENTED
        .iter()
        .find(|(ns, name, _)| *ns == namespace && *name == metric)
        .unwrap_or_else(|| panic!("{what}: {namespace} {metric} is not in the documented list"));
    assert!(
        sets.iter().any(|set| set.iter().copied().collect::<BTreeSet<_>>() == keys),
        "{what}: {namespace} {metric} with dimensions {keys:?}, documented: {sets:?}"
    );
    if let Some(op) = dims.get("Operation") {
        let op = op.trim_matches('"');
        assert!(
            DYNAMODB_OPERATIONS.contains(&op) || op == "metric_query.value",
            "{what}: DynamoDB operation {op} is not documented"
        );
    }
}

/// A namespace expression as the namespaces it can be.
fn namespaces(m: &Module, expr: &str) -> Vec<String> {
    match expr {
        "local.metrics_namespace" => {
            assert_eq!(one_line(m.local("metrics_namespace")), "\"Candidates/${var.name}\"");
            vec![OURS.into()]
        }
        "each.value.namespace" => {
            let Expression::Object(groups) = m.local("target_groups") else { panic!("target_groups") };
            groups
                .values()
                .map(|g| {
                    let Expression::Object(fields) = g else { panic!("target_groups entry") };
                    let ns = fields.iter().find(|(k, _)| k.to_string() == "namespace").unwrap().1;
                    one_line(ns).trim_matches('"').to_string()
                })
                .collect()
        }
        literal => vec![literal.trim_matches('"').to_string()],
    }
}

fn metric_name(m: &Module, expr: &str) -> String {
    if expr.starts_with("aws_cloudwatch_log_metric_filter.breaker_open.") {
        let filter = m.resource("aws_cloudwatch_log_metric_filter", "breaker_open");
        return str_attr(block(filter, "metric_transformation"), "name").unwrap();
    }
    expr.trim_matches('"').to_string()
}

fn dimensions(body: &Body) -> BTreeMap<String, String> {
    match attr(body, "dimensions") {
        Some(Expression::Object(o)) => o.iter().map(|(k, v)| (k.to_string(), one_line(v))).collect(),
        None => BTreeMap::new(),
        Some(other) => panic!("dimensions is not an object: {other}"),
    }
}

/// Every (namespace, metric, dimensions) an alarm reads: its own metric, or each metric_query's
/// (dynamic blocks included).
fn alarm_metrics(m: &Module, alarm: &Body) -> Vec<(String, String, BTreeMap<String, String>)> {
    let mut out = Vec::new();
    let mut push = |body: &Body| {
        for ns in namespaces(m, &text(body, "namespace")) {
            out.push((ns, metric_name(m, &text(body, "metric_name")), dimensions(body)));
        }
    };
    if attr(alarm, "metric_name").is_some() {
        push(alarm);
    }
    for query in blocks(alarm, "metric_query") {
        for metric in blocks(query, "metric") {
            push(metric);
        }
    }
    for dynamic in alarm.blocks().filter(|b| b.identifier() == "dynamic") {
        assert_eq!(dynamic.labels()[0].as_str(), "metric_query");
        for metric in blocks(block(dynamic.body(), "content"), "metric") {
            push(metric);
        }
    }
    out
}

#[test]
fn every_alarm_reads_a_documented_metric_notifies_the_topic_and_has_a_reason_and_a_runbook() {
    let m = aws();
    let source = read("terraform/aws/observability.tf");
    let operations = read("docs/operations.md");
    let deploy = read("docs/deploy-aws.md");
    assert_eq!(one_line(m.local("alarm_actions")), "[aws_sns_topic.alarms.arn]");
    let alarms = m.resources("aws_cloudwatch_metric_alarm");
    assert!(alarms.len() >= 9, "{} alarms", alarms.len());
    for (name, alarm) in alarms {
        let metrics = alarm_metrics(&m, alarm);
        assert!(!metrics.is_empty(), "{name}: reads no metric");
        for (ns, metric, dims) in &metrics {
            check_metric(&m, ns, metric, dims, name);
        }
        // Metric math: every id an expression names is a query of the alarm.
        let ids: BTreeSet<String> = blocks(alarm, "metric_query").iter().map(|q| text(q, "id")).collect();
        for query in blocks(alarm, "metric_query") {
            if let Some(expr) = str_attr(query, "expression") {
                assert_eq!(bool_attr(query, "return_data"), Some(true), "{name}: the expression is the alarm's value");
                for word in expr.split(|c: char| !c.is_ascii_alphanumeric() && c != '_') {
                    if word.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
                        let dynamic = source.contains("id = lower(metric_query.value)")
                            && ["getitem", "putitem", "deleteitem", "scan"].contains(&word);
                        assert!(ids.contains(&format!("\"{word}\"")) || dynamic, "{name}: {expr} names {word}");
                    }
                }
            }
        }

        assert_eq!(text(alarm, "alarm_actions"), "local.alarm_actions", "{name}: alarm_actions");
        assert_eq!(text(alarm, "ok_actions"), "local.alarm_actions", "{name}: ok_actions");
        let missing = str_attr(alarm, "treat_missing_data").unwrap_or_else(|| panic!("{name}: no treat_missing_data"));
        assert!(["missing", "notBreaching", "breaching", "ignore"].contains(&missing.as_str()), "{name}: {missing}");

        // The reason: a `# Reason:` comment right above the resource, and the description.
        let header = format!("resource \"aws_cloudwatch_metric_alarm\" \"{name}\"");
        let at = source.find(&header).unwrap();
        let above: Vec<&str> = source[..at].lines().rev().take_while(|l| l.starts_with('#')).collect();
        assert!(above.iter().any(|l| l.starts_with("# Reason:")), "{name}: no `# Reason:` comment above it");
        // (A literal's text escapes its quotes; a template's does not.)
        let description = text(alarm, "alarm_description").replace("\\\"", "\"");
        let runbook = description
            .split("Runbook: docs/operations.md \"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_else(|| panic!("{name}: the description names no runbook: {description}"));
        assert!(
            operations.contains(&format!("### {runbook}\n")),
            "{name}: docs/operations.md has no runbook {runbook:?}"
        );
        let suffix = text(alarm, "alarm_name")
            .trim_matches('"')
            .replace("${var.name}-", "")
            .replace("${each.key}", "{rest,grpc}")
            .replace("${count.index}", "<n>");
        assert!(deploy.contains(&format!("`{suffix}`")), "docs/deploy-aws.md does not list alarm `{suffix}`");
    }
}

#[test]
fn our_metrics_are_the_services_own() {
    let m = aws();
    let metrics_rs = read("server/src/metrics.rs");
    let instrumented = read("server/src/store/instrumented.rs");
    // The agent scrapes store_operation_errors_total, which the service describes and counts.
    assert!(metrics_rs.contains("\"store_operation_errors_total\""));
    assert!(instrumented.contains("metrics::counter!(\"store_operation_errors_total\""));
    // The breaker's metric counts the line the breaker writes when it opens.
    let marker = str_attr_local(&m, "breaker_log_marker");
    let guarded = read("server/src/store/guarded.rs");
    assert!(guarded.contains(&format!("\"{marker}\"")), "guarded.rs no longer writes {marker:?}");
    let filter = m.resource("aws_cloudwatch_log_metric_filter", "breaker_open");
    let pattern = text(filter, "pattern");
    assert!(pattern.contains("$.message = \"${local.breaker_log_marker}\""), "{pattern}");
    assert_eq!(text(filter, "log_group_name"), "aws_cloudwatch_log_group.service.name");
    assert_eq!(text(block(filter, "metric_transformation"), "namespace"), "local.metrics_namespace");
}

fn str_attr_local(m: &Module, name: &str) -> String {
    crate::infra::string(m.local(name)).unwrap_or_else(|| panic!("local.{name} is not a literal"))
}

/// The agent configuration, rendered the way templatefile would with the given values.
fn render(template: &str, values: &BTreeMap<&str, String>) -> String {
    let mut out = template.to_string();
    for (key, value) in values {
        out = out.replace(&format!("${{{key}}}"), value);
    }
    assert!(!out.contains("${"), "a placeholder has no value: {out}");
    out
}

/// The variables a templatefile() call passes, as (name -> HCL text).
fn template_vars(expr: &Expression) -> (String, BTreeMap<String, String>) {
    let Expression::FuncCall(call) = expr else { panic!("not a templatefile call: {expr}") };
    assert_eq!(call.name.to_string(), "templatefile");
    let path = one_line(&call.args[0]);
    let Expression::Object(vars) = &call.args[1] else { panic!("templatefile vars") };
    (path, vars.iter().map(|(k, v)| (k.to_string(), one_line(v))).collect())
}

fn placeholders(template: &str) -> BTreeSet<String> {
    template.split("${").skip(1).map(|s| s.split('}').next().unwrap().to_string()).collect()
}

#[test]
fn the_agent_ships_the_file_rsyslog_writes_to_the_log_group_terraform_makes() {
    let m = aws();
    let template = read("terraform/aws/files/cloudwatch-agent.json.tftpl");
    let (path, vars) = template_vars(m.local("agent_config"));
    assert_eq!(path, "\"${path.module}/files/cloudwatch-agent.json.tftpl\"");
    assert_eq!(
        vars.keys().cloned().collect::<BTreeSet<_>>(),
        placeholders(&template),
        "templatefile vars vs the template's"
    );
    assert_eq!(vars["log_group_name"], "aws_cloudwatch_log_group.service.name");
    assert_eq!(vars["service_log_file"], "local.service_log_file");
    assert_eq!(vars["prometheus_config_path"], "local.prometheus_config");
    assert_eq!(vars["metrics_namespace"], "local.metrics_namespace");
    let log_file = str_attr_local(&m, "service_log_file");
    let values = BTreeMap::from([
        ("log_group_name", "/candidates/test/service".to_string()),
        ("service_log_file", log_file.clone()),
        ("prometheus_config_path", "/opt/aws/amazon-cloudwatch-agent/etc/candidates-prometheus.yaml".to_string()),
        ("metrics_namespace", "Candidates/test".to_string()),
    ]);
    let config: Value = serde_json::from_str(&render(&template, &values)).expect("the agent configuration is JSON");

    // The documented sections and fields only (CloudWatch-Agent-Configuration-File-Details:
    // https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch-Agent-Configuration-File-Details.html).
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<BTreeSet<String>>();
    let subset = |got: BTreeSet<String>, allowed: &[&str], what: &str| {
        for key in &got {
            assert!(allowed.contains(&key.as_str()), "{what}: {key} is not a documented field");
        }
    };
    subset(keys(&config), &["agent", "metrics", "logs", "traces"], "top level");
    subset(
        keys(&config["agent"]),
        &[
            "metrics_collection_interval",
            "region",
            "credentials",
            "debug",
            "aws_sdk_log_level",
            "logfile",
            "omit_hostname",
            "run_as_user",
            "user_agent",
            "usage_data",
        ],
        "agent",
    );
    subset(
        keys(&config["logs"]),
        &[
            "logs_collected",
            "metrics_collected",
            "force_flush_interval",
            "log_stream_name",
            "credentials",
            "endpoint_override",
            "concurrency",
        ],
        "logs",
    );
    let files = config["logs"]["logs_collected"]["files"]["collect_list"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    let entry = &files[0];
    subset(
        keys(entry),
        &[
            "file_path",
            "auto_removal",
            "log_group_name",
            "log_group_class",
            "log_stream_name",
            "retention_in_days",
            "filters",
            "timezone",
            "timestamp_format",
            "multi_line_start_pattern",
            "encoding",
            "trim_timestamp",
            "backpressure_mode",
        ],
        "collect_list entry",
    );
    assert_eq!(entry["file_path"], log_file.as_str());
    assert_eq!(entry["log_group_name"], "/candidates/test/service");
    assert_eq!(entry["log_stream_name"], "{instance_id}");
    // Terraform owns retention; the role may not PutRetentionPolicy, so the agent must not ask.
    assert!(entry.get("retention_in_days").is_none());

    // The Prometheus scrape: our metric into our namespace, EMF lines in the same log group (so
    // the same permission), the scrape's job and label matching the declaration.
    let prometheus = &config["logs"]["metrics_collected"]["prometheus"];
    assert_eq!(prometheus["log_group_name"], "/candidates/test/service");
    assert_eq!(prometheus["prometheus_config_path"], values["prometheus_config_path"].as_str());
    let emf = &prometheus["emf_processor"];
    assert_eq!(emf["metric_namespace"], "Candidates/test");
    let declaration = &emf["metric_declaration"].as_array().unwrap()[0];
    assert_eq!(declaration["source_labels"], serde_json::json!(["job"]));
    assert_eq!(declaration["label_matcher"], "^candidates$");
    assert_eq!(declaration["dimensions"], serde_json::json!([["deployment"]]));
    let metrics_rs = read("server/src/metrics.rs");
    for selector in declaration["metric_selectors"].as_array().unwrap() {
        let name = selector.as_str().unwrap().trim_start_matches('^').trim_end_matches('$');
        assert!(metrics_rs.contains(&format!("\"{name}\"")), "{name} is not a metric the service describes");
    }
    let scrape = one_line(m.local("prometheus_scrape"));
    assert!(scrape.contains("job_name = \"candidates\""), "{scrape}");
    assert!(scrape.contains("targets = [\"127.0.0.1:${var.metrics_port}\"]"), "{scrape}");
    assert!(scrape.contains("labels = {deployment = var.name}"), "{scrape}");

    // rsyslog writes that file, logrotate rotates it, and the image installs both (AWS builds).
    let rsyslog = read("packer/files/candidates-rsyslog.conf");
    assert!(rsyslog.contains(&format!("file=\"{log_file}\"")), "rsyslog writes another file");
    assert!(rsyslog.contains("if $programname == \"candidates\""));
    let unit = read("packer/files/candidates.service");
    assert!(unit.contains("\nSyslogIdentifier=candidates\n") && unit.contains("\nStandardOutput=journal\n"));
    assert!(read("packer/files/candidates-logrotate").starts_with(&format!("# {log_file}")));
    assert!(read("packer/files/candidates-logrotate").contains(&format!("\n{log_file} {{")));
    let installer = read("packer/scripts/install-cloudwatch-agent.sh");
    assert!(
        installer.contains("/etc/rsyslog.d/30-candidates.conf") && installer.contains("/etc/logrotate.d/candidates")
    );
    assert!(installer.contains("gpg --batch --verify"), "the package's signature is checked");
    let packer = read("packer/candidates.pkr.hcl");
    let provisioner =
        packer.split("provisioner \"shell\" {").find(|p| p.contains("install-cloudwatch-agent.sh")).unwrap();
    assert!(provisioner.contains("only             = [\"amazon-ebs.aws\"]"), "{provisioner}");
    assert!(
        packer.contains("\"${path.root}/files/candidates-rsyslog.conf\",")
            && packer.contains("\"${path.root}/files/candidates-logrotate\",")
    );

    // cloud-init writes the configuration where the loading unit reads it, and enables the unit.
    let call = m.module_call("instance_config");
    let files = one_line(attr(call, "files").unwrap());
    let config_path = one_line(m.local("agent_config_path"))
        .trim_matches('"')
        .replace("${local.agent_dir}", &str_attr_local(&m, "agent_dir"));
    assert!(
        files.contains("path = local.agent_config_path permissions = \"0644\" content = local.agent_config"),
        "{files}"
    );
    assert!(
        files.contains("path = local.prometheus_config permissions = \"0644\" content = local.prometheus_scrape"),
        "{files}"
    );
    assert!(files.contains("path = \"/etc/systemd/system/candidates-cloudwatch-agent.service\""), "{files}");
    assert!(text(call, "enable_units").contains("\"candidates-cloudwatch-agent.service\""));
    let loader = read("terraform/aws/files/candidates-cloudwatch-agent.service");
    assert!(
        loader.contains(&format!("-a fetch-config -m ec2 -s -c file:{config_path}\n")),
        "the unit loads another file"
    );
}

#[test]
fn the_instance_role_may_write_only_its_log_group() {
    let m = aws();
    let group = m.resource("aws_cloudwatch_log_group", "service");
    assert_eq!(text(group, "name"), "local.log_group_name");
    assert_eq!(text(group, "retention_in_days"), "var.log_retention_days");
    let doc = m.data("aws_iam_policy_document", "service_logs");
    let statements = blocks(doc, "statement");
    assert_eq!(statements.len(), 1);
    let actions: BTreeSet<String> = strings(attr(statements[0], "actions").unwrap()).into_iter().collect();
    assert_eq!(actions, BTreeSet::from(["logs:CreateLogStream".to_string(), "logs:PutLogEvents".to_string()]));
    assert_eq!(text(statements[0], "resources"), "[\"${aws_cloudwatch_log_group.service.arn}:*\"]");
    assert!(attr(statements[0], "effect").is_none_or(|e| e.to_string() == "\"Allow\""));
    let policy = m.resource("aws_iam_role_policy", "service_logs");
    assert_eq!(text(policy, "role"), "aws_iam_role.instance.id");
    assert_eq!(text(policy, "policy"), "data.aws_iam_policy_document.service_logs.json");
    // The group launches after the permission exists (the agent starts at boot).
    assert!(
        text(m.resource("aws_autoscaling_group", "this"), "depends_on").contains("aws_iam_role_policy.service_logs")
    );
}

#[test]
fn the_dashboard_parses_and_shows_only_documented_metrics() {
    let m = aws();
    let dashboard = m.resource("aws_cloudwatch_dashboard", "this");
    let template = read("terraform/aws/files/dashboard.json.tftpl");
    let (path, vars) = template_vars(attr(dashboard, "dashboard_body").unwrap());
    assert_eq!(path, "\"${path.module}/files/dashboard.json.tftpl\"");
    assert_eq!(vars.keys().cloned().collect::<BTreeSet<_>>(), placeholders(&template));
    assert_eq!(vars["metrics_namespace"], "local.metrics_namespace");
    let values: BTreeMap<&str, String> = vars
        .keys()
        .map(|k| (k.as_str(), if k == "metrics_namespace" { OURS.to_string() } else { format!("<{k}>") }))
        .collect();
    let body: Value = serde_json::from_str(&render(&template, &values)).expect("the dashboard is JSON");
    let mut shown = BTreeSet::new();
    for widget in body["widgets"].as_array().unwrap() {
        assert_eq!(widget["properties"]["region"], "<region>");
        for row in widget["properties"]["metrics"].as_array().unwrap() {
            let row = row.as_array().unwrap();
            let fields: Vec<&str> = row.iter().filter_map(Value::as_str).collect();
            let (ns, metric) = (fields[0], fields[1]);
            let dims: BTreeMap<String, String> =
                fields[2..].chunks(2).map(|p| (p[0].to_string(), p[1].to_string())).collect();
            check_metric(&m, ns, metric, &dims, "dashboard");
            shown.insert(metric.to_string());
        }
    }
    // The rehearsal chart's panels: rate, errors, p50/p99, instances against desired, CPU, store.
    for metric in [
        "RequestCount",
        "HTTPCode_Target_5XX_Count",
        "TargetResponseTime",
        "GroupInServiceInstances",
        "GroupDesiredCapacity",
        "CPUUtilization",
        "SuccessfulRequestLatency",
        "SystemErrors",
        "store_operation_errors_total",
    ] {
        assert!(shown.contains(metric), "the dashboard has no {metric}");
    }
    assert!(template.contains("\"stat\": \"p50\"") && template.contains("\"stat\": \"p99\""));
    // Group metrics exist only when the group publishes them.
    let enabled = strings(attr(m.resource("aws_autoscaling_group", "this"), "enabled_metrics").unwrap());
    for metric in ["GroupInServiceInstances", "GroupDesiredCapacity"] {
        assert!(enabled.contains(&metric.to_string()), "enabled_metrics lacks {metric}");
    }
}

/// The access lines' field names: the `name = value` pairs of the REST and gRPC edges' log calls.
fn access_fields() -> BTreeSet<String> {
    let mut fields = BTreeSet::from(["message".to_string()]);
    for (file, function) in [("gateway/src/layers.rs", "fn log_request("), ("server/src/grpc.rs", "fn log_rpc(")] {
        let source = read(file);
        let start = source.find(function).unwrap_or_else(|| panic!("{file}: no {function}"));
        let body = &source[start..start + source[start..].find("\n}\n").unwrap()];
        for line in body.lines() {
            if let Some((name, _)) = line.trim().split_once(" = ")
                && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                && name != "target"
            {
                fields.insert(name.to_string());
            }
        }
    }
    fields
}

#[test]
fn saved_queries_read_only_fields_the_access_lines_have() {
    let m = aws();
    let fields = access_fields();
    for must in ["method", "path", "status", "latency_ms", "request_id", "rpc", "grpc_status", "trace_id"] {
        assert!(fields.contains(must), "access lines lack {must}: {fields:?}");
    }
    // Logs Insights' own words (commands, functions, operators).
    const INSIGHTS: &[&str] = &[
        "fields", "filter", "parse", "stats", "sort", "by", "as", "and", "or", "in", "desc", "asc", "count", "pct",
        "not", "like",
    ];
    let queries = m.resources("aws_cloudwatch_query_definition");
    assert!(queries.len() >= 2);
    let mut names = Vec::new();
    for (name, query) in queries {
        assert_eq!(text(query, "log_group_names"), "[aws_cloudwatch_log_group.service.name]");
        let q = match attr(query, "query_string").unwrap() {
            Expression::TemplateExpr(t) => t.to_string(),
            other => other.to_string(),
        };
        names.push(text(query, "name"));
        // Names the query makes itself: `as x` aliases and parse's named groups.
        let mut own = BTreeSet::new();
        let words: Vec<&str> = q
            .split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
            .filter(|w| !w.is_empty())
            .collect();
        for pair in words.windows(2) {
            if pair[0] == "as" {
                own.insert(pair[1].to_string());
            }
        }
        for group in q.split("(?<").skip(1) {
            own.insert(group.split('>').next().unwrap().to_string());
        }
        // Every other identifier outside quotes and regexes is an access-line field.
        let mut bare = String::new();
        let mut quote = None;
        for c in q.chars() {
            match (quote, c) {
                (None, '"' | '/') => quote = Some(c),
                (Some(open), c) if c == open => quote = None,
                (None, c) => bare.push(c),
                _ => {}
            }
        }
        for word in bare.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '@')) {
            if word.is_empty() || word.starts_with('@') || word.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            assert!(
                INSIGHTS.contains(&word) || own.contains(word) || fields.contains(word),
                "{name}: {word} is not a field of the access lines ({fields:?})"
            );
        }
        assert!(
            q.contains("message = \"request\"") || q.contains("message = \"rpc\""),
            "{name}: not filtered to access lines"
        );
    }
    assert!(
        names.iter().any(|n| n.contains("5xx by route")) && names.iter().any(|n| n.contains("p99 latency by route"))
    );
    // The route is the path's first segment, the same closed set as the metrics' route labels.
    for route in candidates_gateway::ROUTES {
        let first = format!("/{}", route.path.trim_start_matches('/').split('/').next().unwrap());
        assert!(["/gtg", "/candidate", "/candidates"].contains(&first.as_str()), "{first}");
    }
}

#[test]
fn autoscaling_failures_budget_and_the_topic_policy_fit_together() {
    let m = aws();
    let rule = m.resource("aws_cloudwatch_event_rule", "asg_failures");
    let pattern = one_line(attr(rule, "event_pattern").unwrap());
    for part in [
        "source = [\"aws.autoscaling\"]",
        "\"EC2 Instance Launch Unsuccessful\"",
        "\"EC2 Instance Terminate Unsuccessful\"",
        "AutoScalingGroupName = [aws_autoscaling_group.this.name]",
    ] {
        assert!(pattern.contains(part), "event pattern lacks {part}: {pattern}");
    }
    let target = m.resource("aws_cloudwatch_event_target", "asg_failures");
    assert_eq!(text(target, "arn"), "aws_sns_topic.alarms.arn");
    assert_eq!(text(target, "rule"), "aws_cloudwatch_event_rule.asg_failures.name");
    // EventBridge publishes as events.amazonaws.com, only for this rule; Budgets for this account.
    let doc = m.data("aws_iam_policy_document", "alarm_topic");
    let mut services = BTreeMap::new();
    for statement in blocks(doc, "statement") {
        assert_eq!(strings(attr(statement, "actions").unwrap()), ["sns:Publish"]);
        assert_eq!(text(statement, "resources"), "[aws_sns_topic.alarms.arn]");
        let principal = block(statement, "principals");
        if str_attr(principal, "type").as_deref() == Some("Service") {
            let condition = block(statement, "condition");
            services.insert(strings(attr(principal, "identifiers").unwrap())[0].clone(), text(condition, "values"));
        }
    }
    assert_eq!(services["events.amazonaws.com"], "[aws_cloudwatch_event_rule.asg_failures.arn]");
    assert_eq!(services["budgets.amazonaws.com"], "[data.aws_caller_identity.current.account_id]");
    assert!(services["cloudwatch.amazonaws.com"].ends_with(":alarm:${var.name}-*\"]"), "{services:?}");
    // ...and every alarm is named so that the condition admits it.
    for (name, alarm) in m.resources("aws_cloudwatch_metric_alarm") {
        assert!(text(alarm, "alarm_name").starts_with("\"${var.name}-"), "{name}");
    }
    assert_eq!(
        text(m.resource("aws_sns_topic_policy", "alarms"), "policy"),
        "data.aws_iam_policy_document.alarm_topic.json"
    );
    let budget = m.resource("aws_budgets_budget", "monthly");
    assert_eq!(str_attr(budget, "time_unit").as_deref(), Some("MONTHLY"));
    for notification in blocks(budget, "notification") {
        assert_eq!(text(notification, "subscriber_sns_topic_arns"), "[aws_sns_topic.alarms.arn]");
    }
    let email = m.resource("aws_sns_topic_subscription", "email");
    assert_eq!(text(email, "count"), "var.alarm_email != \"\" ? 1 : 0");
    assert_eq!(m.default_string("alarm_email"), "");
}

#[test]
fn alb_access_logs_are_optional_off_by_default_and_the_bucket_admits_elb_only() {
    let m = aws();
    assert_eq!(crate::infra::boolean(m.default("alb_access_logs")), Some(false));
    let lb = m.resource("aws_lb", "rest");
    let dynamic = lb.blocks().find(|b| b.identifier() == "dynamic").expect("aws_lb.rest: no dynamic access_logs");
    assert_eq!(dynamic.labels()[0].as_str(), "access_logs");
    assert_eq!(text(dynamic.body(), "for_each"), "var.alb_access_logs ? [1] : []");
    let content = block(dynamic.body(), "content");
    assert_eq!(text(content, "bucket"), "aws_s3_bucket.alb_logs[0].id");
    let prefix = str_attr(content, "prefix").unwrap();
    let doc = m.data("aws_iam_policy_document", "alb_logs");
    let mut principals = BTreeSet::new();
    for statement in blocks(doc, "statement") {
        if text(statement, "effect") == "\"Deny\"" {
            continue;
        }
        assert_eq!(strings(attr(statement, "actions").unwrap()), ["s3:PutObject"]);
        assert!(
            text(statement, "resources")
                .contains(&format!("/{prefix}/AWSLogs/${{data.aws_caller_identity.current.account_id}}/*")),
            "{}",
            text(statement, "resources")
        );
        principals.insert(text(block(statement, "principals"), "identifiers"));
    }
    assert!(principals.contains("[\"logdelivery.elasticloadbalancing.amazonaws.com\"]"), "{principals:?}");
    assert!(principals.contains("[data.aws_elb_service_account.this[0].arn]"), "{principals:?}");
    for (ty, name, body) in m.all_resources() {
        if ty.starts_with("aws_s3_bucket") {
            assert_eq!(text(body, "count"), "var.alb_access_logs ? 1 : 0", "{ty}.{name}");
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Azure and GCP (issue 31): terraform/azure/observability.tf and terraform/gcp/observability.tf,
// with the image's Ops Agent configuration (packer/files/ops-agent.yaml), against the providers'
// and the clouds' documented rules, the service's metric names (server/src/metrics.rs) and the
// access lines' fields (access_fields above).

/// The `# Reason:` comment right above a resource, and the resource's own source text.
fn reason_and_source<'a>(source: &'a str, ty: &str, name: &str) -> (Vec<&'a str>, &'a str) {
    let header = format!("resource \"{ty}\" \"{name}\" {{");
    let at = source.find(&header).unwrap_or_else(|| panic!("{ty}.{name} not in the source"));
    let above: Vec<&str> = source[..at].lines().rev().take_while(|l| l.starts_with('#')).collect();
    let end = source[at..].find("\n}\n").map_or(source.len(), |e| at + e);
    (above, &source[at..end])
}

/// The runbook a description or documentation names: `Runbook: docs/operations.md "X"`.
fn runbook_of(what: &str, description: &str) -> String {
    let description = description.replace("\\\"", "\"");
    description
        .split("Runbook: docs/operations.md \"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("{what}: names no runbook: {description}"))
        .to_string()
}

fn assert_reason_and_runbook(source: &str, ty: &str, name: &str, description: &str, operations: &str) {
    let (above, _) = reason_and_source(source, ty, name);
    assert!(above.iter().any(|l| l.starts_with("# Reason:")), "{ty}.{name}: no `# Reason:` comment above it");
    let runbook = runbook_of(&format!("{ty}.{name}"), description);
    assert!(
        operations.contains(&format!("### {runbook}\n")),
        "{ty}.{name}: docs/operations.md has no runbook {runbook:?}"
    );
}

/// Azure Monitor platform metrics: (namespace, metric, its dimensions), from Microsoft's
/// "Supported metrics" pages, one per resource type:
/// https://learn.microsoft.com/azure/azure-monitor/reference/supported-metrics/<type>-metrics
/// (microsoft-network-applicationgateways, microsoft-network-loadbalancers,
/// microsoft-network-natgateways, microsoft-documentdb-databaseaccounts,
/// microsoft-compute-virtualmachinescalesets, microsoft-insights-autoscalesettings).
const AZURE_DOCUMENTED: &[(&str, &str, &[&str])] = &[
    ("Microsoft.Network/applicationGateways", "ResponseStatus", &["HttpStatusGroup"]),
    ("Microsoft.Network/applicationGateways", "FailedRequests", &["BackendSettingsPool"]),
    ("Microsoft.Network/applicationGateways", "TotalRequests", &["BackendSettingsPool"]),
    ("Microsoft.Network/applicationGateways", "UnhealthyHostCount", &["BackendSettingsPool"]),
    ("Microsoft.Network/applicationGateways", "HealthyHostCount", &["BackendSettingsPool"]),
    ("Microsoft.Network/applicationGateways", "ApplicationGatewayTotalTime", &["Listener"]),
    (
        "Microsoft.Network/applicationGateways",
        "BackendLastByteResponseTime",
        &["Listener", "BackendServer", "BackendPool", "BackendHttpSetting"],
    ),
    (
        "Microsoft.Network/loadBalancers",
        "DipAvailability",
        &["ProtocolType", "BackendPort", "FrontendIPAddress", "FrontendPort", "BackendIPAddress"],
    ),
    ("Microsoft.Network/natGateways", "SNATConnectionCount", &["Protocol", "ConnectionState"]),
    ("Microsoft.Network/natGateways", "PacketDropCount", &[]),
    (
        "Microsoft.DocumentDB/databaseAccounts",
        "TotalRequests",
        &["DatabaseName", "CollectionName", "Region", "StatusCode", "OperationType", "Status", "CapacityType"],
    ),
    (
        "Microsoft.DocumentDB/databaseAccounts",
        "ServerSideLatency",
        &["DatabaseName", "CollectionName", "Region", "ConnectionMode", "OperationType", "PublicAPIType"],
    ),
    ("Microsoft.Compute/virtualMachineScaleSets", "Percentage CPU", &["VMName"]),
    ("Microsoft.Insights/autoscaleSettings", "ObservedCapacity", &[]),
    ("Microsoft.Insights/autoscaleSettings", "ObservedMetricValue", &["MetricTriggerSource"]),
    ("Microsoft.Insights/autoscaleSettings", "MetricThreshold", &["MetricTriggerRule"]),
];

/// Documented values of the dimensions the alerts filter on: HttpStatusGroup (2xx..5xx, the
/// Application Gateway reference), ConnectionState (Attempted, Failed: the NAT gateway metrics
/// page), StatusCode (HTTP status codes as text: "Monitor Azure Cosmos DB", 429 is throttling).
fn azure_dimension_value_ok(dimension: &str, value: &str) -> bool {
    match dimension {
        "HttpStatusGroup" => ["1xx", "2xx", "3xx", "4xx", "5xx"].contains(&value),
        "ConnectionState" => ["Attempted", "Failed"].contains(&value),
        "StatusCode" => value.len() == 3 && value.chars().all(|c| c.is_ascii_digit()),
        _ => value == "*",
    }
}

fn azure_metric(namespace: &str, metric: &str, what: &str) -> &'static [&'static str] {
    AZURE_DOCUMENTED
        .iter()
        .find(|(ns, m, _)| ns.eq_ignore_ascii_case(namespace) && *m == metric)
        .map(|(_, _, dims)| *dims)
        .unwrap_or_else(|| panic!("{what}: {namespace} {metric} is not in the documented list"))
}

#[test]
fn azure_metric_alerts_read_documented_metrics_and_dimensions_and_notify_the_action_group() {
    let m = Module::load("azure");
    let source = read("terraform/azure/observability.tf");
    let operations = read("docs/operations.md");
    let deploy = read("docs/deploy-azure.md");
    let alerts = m.resources("azurerm_monitor_metric_alert");
    assert!(alerts.len() >= 6, "{} metric alerts", alerts.len());
    // azurerm_monitor_metric_alert: frequency one of PT1M..PT1H, window_size one of PT1M..P1D and
    // not shorter than the frequency; aggregation and operator from the provider's enums
    // (registry.terraform.io/providers/hashicorp/azurerm/latest/docs/resources/monitor_metric_alert).
    let minutes = |iso: &str| match iso {
        "PT1M" => 1,
        "PT5M" => 5,
        "PT15M" => 15,
        "PT30M" => 30,
        "PT1H" => 60,
        "PT6H" => 360,
        "PT12H" => 720,
        "P1D" => 1440,
        other => panic!("{other} is not a documented window or frequency"),
    };
    for (name, alert) in alerts {
        let frequency = str_attr(alert, "frequency").unwrap_or_else(|| panic!("{name}: no frequency"));
        assert!(minutes(&frequency) <= 60, "{name}: frequency {frequency}");
        if let Some(window) = str_attr(alert, "window_size") {
            assert!(minutes(&window) >= minutes(&frequency), "{name}: window shorter than frequency");
        } else {
            assert_eq!(text(alert, "window_size"), "local.unhealthy_window", "{name}");
        }
        for criteria in blocks(alert, "criteria") {
            let namespace = str_attr(criteria, "metric_namespace").unwrap();
            let metric = str_attr(criteria, "metric_name").unwrap();
            let dims = azure_metric(&namespace, &metric, name);
            let aggregation = str_attr(criteria, "aggregation").unwrap();
            assert!(["Average", "Count", "Minimum", "Maximum", "Total"].contains(&aggregation.as_str()), "{name}");
            let operator = str_attr(criteria, "operator").unwrap();
            assert!(
                ["Equals", "GreaterThan", "GreaterThanOrEqual", "LessThan", "LessThanOrEqual"]
                    .contains(&operator.as_str()),
                "{name}: {operator}"
            );
            for dimension in blocks(criteria, "dimension") {
                let dim = str_attr(dimension, "name").unwrap();
                assert!(dims.contains(&dim.as_str()), "{name}: {metric} has no dimension {dim} ({dims:?})");
                assert_eq!(str_attr(dimension, "operator").as_deref(), Some("Include"), "{name}");
                for value in strings(attr(dimension, "values").unwrap()) {
                    assert!(
                        azure_dimension_value_ok(&dim, &value),
                        "{name}: {dim} = {value} is not a documented value"
                    );
                }
            }
        }
        assert_eq!(text(block(alert, "action"), "action_group_id"), "azurerm_monitor_action_group.alarms.id", "{name}");
        assert_reason_and_runbook(
            &source,
            "azurerm_monitor_metric_alert",
            name,
            &text(alert, "description"),
            &operations,
        );
        let suffix = text(alert, "name").trim_matches('"').replace("${var.name}-", "");
        assert!(deploy.contains(&format!("`{suffix}`")), "docs/deploy-azure.md does not list alert `{suffix}`");
    }
    // Each metric's scope is a resource of its namespace's type.
    for (name, alert) in m.resources("azurerm_monitor_metric_alert") {
        let scope = text(alert, "scopes");
        let namespace = str_attr(block(alert, "criteria"), "metric_namespace").unwrap();
        let expected = match namespace.as_str() {
            "Microsoft.Network/applicationGateways" => "azurerm_application_gateway.",
            "Microsoft.Network/loadBalancers" => "azurerm_lb.",
            "Microsoft.Network/natGateways" => "azurerm_nat_gateway.",
            "Microsoft.DocumentDB/databaseAccounts" => "azurerm_cosmosdb_account.",
            other => panic!("{name}: {other}"),
        };
        assert!(scope.starts_with(&format!("[{expected}")), "{name}: {scope} for {namespace}");
    }
}

/// The KQL's `line.X` fields (the parsed JSON of a service line).
fn kql_line_fields(kql: &str) -> BTreeSet<String> {
    kql.split("line.")
        .skip(1)
        .map(|rest| rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect())
        .collect()
}

#[test]
fn azure_log_alerts_and_saved_queries_read_only_fields_the_service_writes() {
    let m = Module::load("azure");
    let source = read("terraform/azure/observability.tf");
    let operations = read("docs/operations.md");
    let deploy = read("docs/deploy-azure.md");
    // The summaries' fields are the throttle's (edge/src/throttle.rs).
    let throttle = read("edge/src/throttle.rs");
    let mut fields = access_fields();
    for summary in ["what", "suppressed"] {
        assert!(throttle.contains(&format!("{summary} = ")) || throttle.contains(&format!("{summary},")), "{summary}");
        fields.insert(summary.to_string());
    }
    for field in kql_line_fields(&source) {
        assert!(fields.contains(&field), "KQL reads line.{field}, which no service line has ({fields:?})");
    }
    // The KQL reads the unit's lines: ProcessName is the syslog tag, the unit's SyslogIdentifier.
    assert!(read("packer/files/candidates.service").contains("\nSyslogIdentifier=candidates\n"));
    assert!(one_line(m.local("service_lines")).contains("ProcessName == \"candidates\""));
    // The messages and throttle names the store-error alert counts are the service's own.
    let service = read("server/src/service.rs");
    for message in strings(m.local("store_error_messages")) {
        assert!(service.contains(&format!("\"{message}\"")), "server/src/service.rs never writes {message:?}");
    }
    for name in strings(m.local("store_error_throttles")) {
        assert!(service.contains(&format!("Throttle::new(\"{name}\")")), "no Throttle named {name:?}");
    }
    assert!(throttle.contains("\"repeated log lines summarised\""));
    assert!(source.contains("message == \"repeated log lines summarised\""));
    let marker = str_attr_local(&m, "breaker_log_marker");
    assert!(read("server/src/store/guarded.rs").contains(&format!("\"{marker}\"")));

    // azurerm_monitor_scheduled_query_rules_alert_v2: time_aggregation_method from the enum; a
    // metric_measure_column with every method but Count, none with Count (the provider's docs);
    // evaluation_frequency no longer than window_duration.
    let rules = m.resources("azurerm_monitor_scheduled_query_rules_alert_v2");
    assert!(rules.len() >= 3);
    for (name, rule) in rules {
        let criteria = block(rule, "criteria");
        let method = str_attr(criteria, "time_aggregation_method").unwrap();
        assert!(["Average", "Count", "Maximum", "Minimum", "Total"].contains(&method.as_str()), "{name}");
        let column = str_attr(criteria, "metric_measure_column");
        let query = text(criteria, "query");
        if method == "Count" {
            assert!(column.is_none(), "{name}: Count takes no metric_measure_column");
        } else {
            let column = column.unwrap_or_else(|| panic!("{name}: {method} needs a metric_measure_column"));
            assert!(query.contains(&format!("{column} =")), "{name}: the query makes no column {column}");
        }
        assert_eq!(text(rule, "scopes"), "[azurerm_log_analytics_workspace.this.id]", "{name}");
        // Windows overlap (at least twice the frequency, within the API's PT5M..P2D): a line that
        // reached the workspace after one evaluation is still seen by the next (ingestion delay,
        // "Handle ingestion delay in scheduled analytics rules").
        let minutes =
            |iso: &str| iso.trim_matches('"').trim_start_matches("PT").trim_end_matches('M').parse::<u32>().unwrap();
        let (every, window) = (minutes(&text(rule, "evaluation_frequency")), minutes(&text(rule, "window_duration")));
        assert!(every >= 5 && window >= 2 * every, "{name}: a window of {window} min evaluated every {every} min");
        assert_eq!(text(block(rule, "action"), "action_groups"), "local.action_groups", "{name}");
        assert_reason_and_runbook(
            &source,
            "azurerm_monitor_scheduled_query_rules_alert_v2",
            name,
            &text(rule, "description"),
            &operations,
        );
        let suffix = text(rule, "name").trim_matches('"').replace("${var.name}-", "");
        assert!(deploy.contains(&format!("`{suffix}`")), "docs/deploy-azure.md does not list alert `{suffix}`");
    }
    assert_eq!(one_line(m.local("action_groups")), "[azurerm_monitor_action_group.alarms.id]");

    // The saved queries: 5xx by route and p99 by route over the access lines (message "request").
    let searches = m.resources("azurerm_log_analytics_saved_search");
    let names: Vec<String> = searches.iter().map(|(_, s)| text(s, "display_name")).collect();
    assert!(
        names.iter().any(|n| n.contains("5xx by route")) && names.iter().any(|n| n.contains("p99 latency by route"))
    );
    let access = one_line(m.local("access_lines"));
    assert!(access.contains("tostring(line.message) == \"request\""), "{access}");
    assert!(access.contains("extract(\"^(/[^/]*)\", 1, path)"), "the route is the path's first segment: {access}");
    for (name, search) in searches {
        assert_eq!(text(search, "log_analytics_workspace_id"), "azurerm_log_analytics_workspace.this.id", "{name}");
    }

    // Autoscale failures: an activity log alert on the Autoscale category (the activity log's
    // documented categories: Administrative, ServiceHealth, ResourceHealth, Alert, Autoscale,
    // Recommendation, Security, Policy), this autoscale setting, failed operations.
    let activity = m.resource("azurerm_monitor_activity_log_alert", "autoscale_failures");
    let criteria = block(activity, "criteria");
    assert_eq!(str_attr(criteria, "category").as_deref(), Some("Autoscale"));
    assert_eq!(text(criteria, "resource_id"), "azurerm_monitor_autoscale_setting.this.id");
    assert_eq!(str_attr(criteria, "status").as_deref(), Some("Failed"));
    assert_eq!(str_attr(activity, "location").as_deref(), Some("global"));
    assert_eq!(text(block(activity, "action"), "action_group_id"), "azurerm_monitor_action_group.alarms.id");
    assert_reason_and_runbook(
        &source,
        "azurerm_monitor_activity_log_alert",
        "autoscale_failures",
        &text(activity, "description"),
        &operations,
    );
    assert!(deploy.contains("`autoscale-failures`"));
}

#[test]
fn azure_monitor_agent_and_its_data_collection_rule_fit_together() {
    let m = Module::load("azure");
    let vmss = m.resource("azurerm_linux_virtual_machine_scale_set", "this");
    // "Azure Monitor agent requirements": publisher Microsoft.Azure.Monitor, type
    // AzureMonitorLinuxAgent; a managed identity on the VM; with a user-assigned identity, the
    // extension's settings name it (authentication.managedIdentity, identifier-name mi_res_id,
    // object_id or client_id: "Install and manage Azure Monitor Agent").
    let agent = blocks(vmss, "extension")
        .into_iter()
        .find(|e| str_attr(e, "type").as_deref() == Some("AzureMonitorLinuxAgent"))
        .expect("the scale set has no AzureMonitorLinuxAgent extension");
    assert_eq!(str_attr(agent, "publisher").as_deref(), Some("Microsoft.Azure.Monitor"));
    assert_eq!(bool_attr(agent, "automatic_upgrade_enabled"), Some(true));
    let settings = one_line(attr(agent, "settings").unwrap());
    assert!(settings.contains("identifier-name = \"mi_res_id\""), "{settings}");
    assert!(settings.contains("identifier-value = azurerm_user_assigned_identity.instances.id"), "{settings}");
    let identity = block(vmss, "identity");
    assert_eq!(text(identity, "identity_ids"), "[azurerm_user_assigned_identity.instances.id]");

    // The DCR: kind Linux; a syslog source whose facilities and levels are from the documented
    // lists (SyslogDataSource: facilityNames, logLevels; stream Microsoft-Syslog), a data flow of
    // that stream to the rule's Log Analytics destination, which is the workspace.
    let dcr = m.resource("azurerm_monitor_data_collection_rule", "service");
    assert_eq!(str_attr(dcr, "kind").as_deref(), Some("Linux"));
    let syslog = block(block(dcr, "data_sources"), "syslog");
    const FACILITIES: &[&str] = &[
        "auth", "authpriv", "cron", "daemon", "mark", "kern", "local0", "local1", "local2", "local3", "local4",
        "local5", "local6", "local7", "lpr", "mail", "news", "syslog", "user", "uucp", "*",
    ];
    const LEVELS: &[&str] = &["Debug", "Info", "Notice", "Warning", "Error", "Critical", "Alert", "Emergency", "*"];
    let facilities = strings(attr(syslog, "facility_names").unwrap());
    let levels = strings(attr(syslog, "log_levels").unwrap());
    assert!(facilities.iter().all(|f| FACILITIES.contains(&f.as_str())), "{facilities:?}");
    assert!(levels.iter().all(|l| LEVELS.contains(&l.as_str())), "{levels:?}");
    // systemd gives a unit's lines facility daemon unless SyslogFacility= says otherwise, and
    // stdout lines priority info unless SyslogLevel= does (systemd.exec).
    let unit = read("packer/files/candidates.service");
    assert!(!unit.contains("SyslogFacility=") || unit.contains("SyslogFacility=daemon"));
    assert!(!unit.contains("SyslogLevel=") || unit.contains("SyslogLevel=info"));
    assert!(facilities.contains(&"daemon".to_string()) && levels.contains(&"Info".to_string()));
    assert_eq!(strings(attr(syslog, "streams").unwrap()), ["Microsoft-Syslog"]);
    let flow = block(dcr, "data_flow");
    assert_eq!(strings(attr(flow, "streams").unwrap()), ["Microsoft-Syslog"]);
    let destination = block(block(dcr, "destinations"), "log_analytics");
    assert_eq!(text(destination, "workspace_resource_id"), "azurerm_log_analytics_workspace.this.id");
    assert_eq!(strings(attr(flow, "destinations").unwrap()), [str_attr(destination, "name").unwrap()]);
    let association = m.resource("azurerm_monitor_data_collection_rule_association", "service");
    assert_eq!(text(association, "target_resource_id"), "azurerm_linux_virtual_machine_scale_set.this.id");
    assert_eq!(text(association, "data_collection_rule_id"), "azurerm_monitor_data_collection_rule.service.id");

    // The workspace keeps var.log_retention_days, validated to PerGB2018's 30..730.
    let workspace = m.resource("azurerm_log_analytics_workspace", "this");
    assert_eq!(str_attr(workspace, "sku").as_deref(), Some("PerGB2018"));
    assert_eq!(text(workspace, "retention_in_days"), "var.log_retention_days");
    let validation = block(m.variable("log_retention_days"), "validation");
    assert_eq!(text(validation, "condition"), "var.log_retention_days >= 30 && var.log_retention_days <= 730");

    // The identity gets no new role: the association authorises the agent (no role assignment
    // names the instances' identity anywhere in the root).
    for (name, assignment) in m.resources("azurerm_role_assignment") {
        assert!(!text(assignment, "principal_id").contains("azurerm_user_assigned_identity.instances"), "{name}");
    }
}

#[test]
fn azure_action_group_budget_and_workbook() {
    let m = Module::load("azure");
    let group = m.resource("azurerm_monitor_action_group", "alarms");
    assert_eq!(text(group, "short_name"), "substr(var.name, 0, 12)", "short_name is at most 12 characters");
    let dynamic: BTreeMap<String, String> = group
        .blocks()
        .filter(|b| b.identifier() == "dynamic")
        .map(|b| (b.labels()[0].as_str().to_string(), text(b.body(), "for_each")))
        .collect();
    assert_eq!(dynamic["email_receiver"], "var.alarm_email != \"\" ? [var.alarm_email] : []");
    assert_eq!(dynamic["webhook_receiver"], "nonsensitive(var.alarm_webhook_url != \"\") ? [1] : []");
    assert_eq!(m.default_string("alarm_email"), "");
    assert_eq!(m.default_string("alarm_webhook_url"), "");

    // azurerm_consumption_budget_resource_group: time_grain Monthly, a start date on the first of
    // a month, threshold_type Actual or Forecasted, notifications to the action group.
    let budget = m.resource("azurerm_consumption_budget_resource_group", "monthly");
    assert_eq!(text(budget, "count"), "var.monthly_budget_usd > 0 ? 1 : 0");
    assert_eq!(str_attr(budget, "time_grain").as_deref(), Some("Monthly"));
    assert!(text(block(budget, "time_period"), "start_date").contains("YYYY-MM-01"));
    assert!(text(budget, "lifecycle").is_empty() && one_line_block(budget, "lifecycle").contains("time_period"));
    let kinds: BTreeSet<String> =
        blocks(budget, "notification").iter().map(|n| str_attr(n, "threshold_type").unwrap()).collect();
    assert_eq!(kinds, BTreeSet::from(["Actual".to_string(), "Forecasted".to_string()]));
    for notification in blocks(budget, "notification") {
        assert_eq!(text(notification, "contact_groups"), "[azurerm_monitor_action_group.alarms.id]");
    }

    // The workbook (the dashboard): its metrics are documented ones, and it has the rehearsal
    // chart's panels.
    let workbook = m.resource("azurerm_application_insights_workbook", "this");
    assert!(text(workbook, "name").starts_with("uuidv5("), "a workbook's name is a GUID");
    let Expression::Array(panels) = m.local("workbook_metrics") else { panic!("workbook_metrics") };
    let mut shown = BTreeSet::new();
    for panel in panels {
        let panel = one_line(panel);
        let namespace = panel.split("namespace = \"").nth(1).unwrap().split('"').next().unwrap().to_string();
        for metric in panel.split("name = \"").skip(1) {
            let metric = metric.split('"').next().unwrap();
            azure_metric(&namespace, metric, "workbook");
            shown.insert(metric.to_string());
        }
    }
    for metric in [
        "TotalRequests",
        "ResponseStatus",
        "HealthyHostCount",
        "ObservedCapacity",
        "Percentage CPU",
        "ServerSideLatency",
    ] {
        assert!(shown.contains(metric), "the workbook has no {metric}");
    }
    let queries = one_line(m.local("workbook_queries"));
    assert!(queries.contains("percentile(latency_ms, 50)") && queries.contains("percentile(latency_ms, 99)"));
}

/// A nested block's text (hcl-rs' formatting, one line).
fn one_line_block(body: &Body, ident: &str) -> String {
    body.blocks()
        .filter(|b| b.identifier() == ident)
        .map(|b| hcl::to_string(b.body()).unwrap().split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(" ")
}

// --- GCP -----------------------------------------------------------------------------------------

/// A small YAML reader for the Ops Agent configuration (block maps and lists by indentation,
/// `[a, b]` flow lists, plain and double-quoted scalars, comments): enough for that file, and it
/// refuses what it does not know rather than guess.
fn yaml(text: &str) -> Value {
    let lines: Vec<(usize, String)> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| (l.len() - l.trim_start().len(), l.trim().to_string()))
        .collect();
    let (value, next) = yaml_node(&lines, 0, lines[0].0);
    assert_eq!(next, lines.len(), "YAML: unread lines from {next}");
    value
}

fn yaml_scalar(s: &str) -> Value {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return Value::Array(inner.split(',').map(str::trim).filter(|x| !x.is_empty()).map(yaml_scalar).collect());
    }
    if let Some(inner) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        return Value::String(inner.to_string());
    }
    assert!(!s.contains(": ") && !s.starts_with('{') && !s.starts_with('&'), "YAML: unsupported scalar {s:?}");
    Value::String(s.to_string())
}

fn yaml_node(lines: &[(usize, String)], mut at: usize, indent: usize) -> (Value, usize) {
    if lines[at].1.starts_with("- ") {
        let mut items = Vec::new();
        while at < lines.len() && lines[at].0 == indent && lines[at].1.starts_with("- ") {
            let rest = lines[at].1[2..].to_string();
            if rest.contains(": ") || rest.ends_with(':') {
                // A map item: its first key is on the dash's line, the rest two columns in.
                let mut sub = lines.to_vec();
                sub[at] = (indent + 2, rest);
                let (value, next) = yaml_node(&sub, at, indent + 2);
                items.push(value);
                at = next;
            } else {
                items.push(yaml_scalar(&rest));
                at += 1;
            }
        }
        return (Value::Array(items), at);
    }
    let mut map = serde_json::Map::new();
    while at < lines.len() && lines[at].0 == indent {
        let line = &lines[at].1;
        let (key, rest) = line.split_once(':').unwrap_or_else(|| panic!("YAML: not a key: {line:?}"));
        assert!(!map.contains_key(key), "YAML: duplicate key {key}");
        if rest.trim().is_empty() {
            let child = lines.get(at + 1).map(|(i, _)| *i).unwrap_or(0);
            assert!(child > indent || lines[at + 1].1.starts_with("- "), "YAML: {key} has no value");
            let (value, next) = yaml_node(lines, at + 1, child);
            map.insert(key.to_string(), value);
            at = next;
        } else {
            map.insert(key.to_string(), yaml_scalar(rest));
            at += 1;
        }
    }
    assert!(at == lines.len() || lines[at].0 < indent, "YAML: bad indentation at {:?}", lines[at]);
    (Value::Object(map), at)
}

#[test]
fn the_yaml_reader_reads_what_it_claims() {
    let v = yaml("a:\n  b: [x, y]\n  c:\n    - d: 1\n      e: \"f:g\"\n    - h\n# note\nz: w\n");
    assert_eq!(v, serde_json::json!({"a": {"b": ["x", "y"], "c": [{"d": "1", "e": "f:g"}, "h"]}, "z": "w"}));
}

#[test]
fn the_ops_agent_configuration_follows_its_documented_schema_and_reads_the_rsyslog_file() {
    let config = yaml(&read("packer/files/ops-agent.yaml"));
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<BTreeSet<String>>();
    let subset = |got: BTreeSet<String>, allowed: &[&str], what: &str| {
        for key in &got {
            assert!(allowed.contains(&key.as_str()), "{what}: {key} is not a documented field");
        }
    };
    // "Configure the Ops Agent" (https://cloud.google.com/monitoring/agent/ops-agent/configuration):
    // logging and metrics each have receivers, processors and service.pipelines; a pipeline lists
    // receivers and processors by id, which must be defined.
    subset(keys(&config), &["logging", "metrics", "traces", "global", "combined"], "top level");
    for section in ["logging", "metrics"] {
        subset(keys(&config[section]), &["receivers", "processors", "service", "exporters"], section);
        subset(keys(&config[section]["service"]), &["pipelines", "log_level"], section);
        for (id, pipeline) in config[section]["service"]["pipelines"].as_object().unwrap() {
            subset(keys(pipeline), &["receivers", "processors", "exporters"], "pipeline");
            for kind in ["receivers", "processors"] {
                for used in pipeline[kind].as_array().into_iter().flatten() {
                    let used = used.as_str().unwrap();
                    assert!(config[section][kind].get(used).is_some(), "{section} pipeline {id}: no {kind} {used}");
                }
            }
        }
    }
    // Logging receivers: type files with include_paths (and the documented optional fields);
    // processors: parse_json with field / time_key / time_format.
    let receiver = &config["logging"]["receivers"]["candidates"];
    assert_eq!(receiver["type"], "files");
    subset(
        keys(receiver),
        &[
            "type",
            "include_paths",
            "exclude_paths",
            "record_log_file_path",
            "wildcard_refresh_interval",
            "buffer_in_memory",
        ],
        "files receiver",
    );
    let log_file = str_attr_local(&aws(), "service_log_file");
    assert_eq!(receiver["include_paths"], serde_json::json!([log_file]));
    assert!(read("packer/files/candidates-rsyslog.conf").contains(&format!("file=\"{log_file}\"")));
    let processor = &config["logging"]["processors"]["candidates_json"];
    assert_eq!(processor["type"], "parse_json");
    subset(keys(processor), &["type", "field", "time_key", "time_format"], "parse_json");
    assert_eq!(processor["field"], "message", "the files receiver puts the line in jsonPayload.message");

    // Metrics: the prometheus receiver's config is Prometheus' scrape configuration ("Collect
    // Prometheus metrics"); it scrapes the metrics port the GCP root configures (its default) on
    // the instance itself.
    let prometheus = &config["metrics"]["receivers"]["candidates"];
    assert_eq!(prometheus["type"], "prometheus");
    let scrape = &prometheus["config"]["scrape_configs"].as_array().unwrap()[0];
    subset(
        keys(scrape),
        &["job_name", "scrape_interval", "scrape_timeout", "metrics_path", "static_configs", "scheme"],
        "scrape config",
    );
    assert_eq!(scrape["job_name"], "candidates");
    assert_eq!(scrape["metrics_path"], "/metrics");
    let gcp = Module::load("gcp");
    let port = gcp.default_number("metrics_port");
    assert_eq!(scrape["static_configs"][0]["targets"], serde_json::json!([format!("127.0.0.1:{port}")]));
    // ...and the root warns (a check block) when a deployment picks another port.
    assert!(read("terraform/gcp/observability.tf").contains(&format!("condition     = var.metrics_port == {port}\n")));

    // The log is named after the receiver, which is what the GCP root's filters read.
    assert_eq!(one_line(gcp.local("service_log_name")), "\"projects/${var.project_id}/logs/candidates\"");

    // The image installs it where the agent reads it, on GCP builds only.
    let installer = read("packer/scripts/install-ops-agent.sh");
    assert!(installer.contains("\"$ROOT/etc/google-cloud-ops-agent/config.yaml\""));
    assert!(installer.contains("add-google-cloud-ops-agent-repo.sh --also-install"));
    assert!(installer.contains("/etc/rsyslog.d/30-candidates.conf"));
    let packer = read("packer/candidates.pkr.hcl");
    let provisioner = packer.split("provisioner \"shell\" {").find(|p| p.contains("install-ops-agent.sh")).unwrap();
    assert!(provisioner.contains("only             = [\"googlecompute.gcp\"]"), "{provisioner}");
    assert!(packer.contains("\"${path.root}/files/ops-agent.yaml\","));
}

/// Cloud Monitoring metrics: (type, kind, value type, monitored resource, metric labels, resource
/// labels), from https://cloud.google.com/monitoring/api/metrics_gcp (loadbalancing, firestore,
/// router, compute) and https://cloud.google.com/monitoring/api/resources.
/// (type, kind, value type, monitored resource, metric labels, resource labels).
type GcpMetric =
    (&'static str, &'static str, &'static str, &'static str, &'static [&'static str], &'static [&'static str]);

const GCP_DOCUMENTED: &[GcpMetric] = &[
    (
        "loadbalancing.googleapis.com/https/request_count",
        "DELTA",
        "INT64",
        "https_lb_rule",
        &["response_code", "response_code_class", "proxy_continent", "protocol", "cache_result", "client_country"],
        &["backend_target_name", "url_map_name", "forwarding_rule_name", "backend_name", "region", "project_id"],
    ),
    (
        "loadbalancing.googleapis.com/https/total_latencies",
        "DELTA",
        "DISTRIBUTION",
        "https_lb_rule",
        &["response_code", "response_code_class", "proxy_continent", "protocol", "cache_result", "client_country"],
        &["backend_target_name", "url_map_name", "forwarding_rule_name", "backend_name", "region", "project_id"],
    ),
    (
        "firestore.googleapis.com/api/request_count",
        "DELTA",
        "INT64",
        "firestore.googleapis.com/Database",
        &["api_method", "response_code"],
        &["database_id", "location", "project_id"],
    ),
    (
        "router.googleapis.com/nat/nat_allocation_failed",
        "GAUGE",
        "BOOL",
        "nat_gateway",
        &["nat_ip"],
        &["gateway_name", "router_id", "region", "project_id"],
    ),
    (
        "router.googleapis.com/nat/dropped_sent_packets_count",
        "DELTA",
        "INT64",
        "nat_gateway",
        &["ip_protocol", "reason"],
        &["gateway_name", "router_id", "region", "project_id"],
    ),
    (
        "compute.googleapis.com/instance_group/size",
        "GAUGE",
        "INT64",
        "instance_group",
        &[],
        &["instance_group_name", "instance_group_id", "location", "project_id"],
    ),
    (
        "compute.googleapis.com/instance/cpu/utilization",
        "GAUGE",
        "DOUBLE",
        "gce_instance",
        &["instance_name"],
        &["instance_id", "zone", "project_id"],
    ),
];

/// Every Monitoring filter in the GCP root's source: the text of each string holding `metric.type=`.
fn monitoring_filters(source: &str) -> Vec<String> {
    source
        .match_indices("metric.type=\\\"")
        .map(|(at, _)| {
            let start = source[..at].rfind(" = \"").map_or(at, |s| s + 4);
            let rest = &source[start..];
            let mut end = 0;
            let bytes = rest.as_bytes();
            while end < bytes.len() && !(bytes[end] == b'"' && (end == 0 || bytes[end - 1] != b'\\')) {
                end += 1;
            }
            rest[..end].replace("\\\"", "\"")
        })
        .collect()
}

fn filter_value<'a>(filter: &'a str, key: &str) -> Option<&'a str> {
    filter.split(&format!("{key}=\"")).nth(1).and_then(|r| r.split('"').next())
}

fn filter_labels(filter: &str, prefix: &str) -> BTreeSet<String> {
    filter
        .split(prefix)
        .skip(1)
        .map(|r| r.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect())
        .collect()
}

#[test]
fn gcp_alert_policies_and_dashboard_read_documented_metrics_and_notify_the_channels() {
    let m = Module::load("gcp");
    let source = read("terraform/gcp/observability.tf");
    let operations = read("docs/operations.md");
    let deploy = read("docs/deploy-gcp.md");
    let metrics_rs = read("server/src/metrics.rs");
    let log_metrics: BTreeMap<String, String> = m
        .resources("google_logging_metric")
        .into_iter()
        .map(|(name, body)| (name.to_string(), text(body, "name")))
        .collect();

    let filters = monitoring_filters(&source);
    assert!(filters.len() >= 12, "{} filters", filters.len());
    for filter in &filters {
        let metric = filter_value(filter, "metric.type").unwrap();
        let resource = filter_value(filter, "resource.type").unwrap_or_else(|| panic!("no resource.type: {filter}"));
        if let Some(user) = metric.strip_prefix("logging.googleapis.com/user/") {
            // A log-based metric of this root: its resource is its log entries'.
            let name = user.trim_start_matches("${google_logging_metric.").trim_end_matches(".name}");
            assert!(log_metrics.contains_key(name), "{filter}: no google_logging_metric.{name}");
            assert!(["gce_instance", "gce_instance_group"].contains(&resource), "{filter}");
        } else if let Some(prom) = metric.strip_prefix("prometheus.googleapis.com/") {
            // Ops Agent Prometheus metrics: prometheus.googleapis.com/<name>/<kind>, resource
            // prometheus_target ("Collect Prometheus metrics").
            let (name, kind) = prom.rsplit_once('/').unwrap();
            assert!(["counter", "histogram", "gauge"].contains(&kind), "{filter}");
            assert!(metrics_rs.contains(&format!("\"{name}\"")), "{name} is not a metric the service describes");
            assert_eq!(resource, "prometheus_target", "{filter}");
        } else {
            let (_, _, _, res, labels, res_labels) = GCP_DOCUMENTED
                .iter()
                .find(|d| d.0 == metric)
                .unwrap_or_else(|| panic!("{metric} is not in the documented list"));
            assert_eq!(resource, *res, "{metric}'s monitored resource");
            for label in filter_labels(filter, "metric.label.") {
                assert!(labels.contains(&label.as_str()), "{metric} has no metric label {label}");
            }
            for label in filter_labels(filter, "resource.label.") {
                assert!(res_labels.contains(&label.as_str()), "{metric}'s resource has no label {label}");
            }
        }
    }

    // Aligners fit the metric's kind (the Monitoring API's Aligner reference: ALIGN_COUNT_TRUE
    // needs a BOOL, ALIGN_RATE and ALIGN_DELTA a DELTA or CUMULATIVE metric).
    for (name, policy) in m.resources("google_monitoring_alert_policy") {
        for condition in blocks(policy, "conditions") {
            for threshold in blocks(condition, "condition_threshold") {
                let filter = text(threshold, "filter").replace("\\\"", "\"");
                let metric = filter_value(&filter, "metric.type").unwrap().to_string();
                let aligner = str_attr(block(threshold, "aggregations"), "per_series_aligner").unwrap();
                if let Some(d) = GCP_DOCUMENTED.iter().find(|d| d.0 == metric) {
                    match aligner.as_str() {
                        "ALIGN_COUNT_TRUE" => assert_eq!(d.2, "BOOL", "{name}"),
                        "ALIGN_RATE" | "ALIGN_DELTA" => assert_ne!(d.1, "GAUGE", "{name}"),
                        _ => {}
                    }
                }
                let comparison = str_attr(threshold, "comparison").unwrap();
                assert!(comparison.starts_with("COMPARISON_"), "{name}");
            }
            // Log-match conditions need a notification rate limit (AlertStrategy.notificationRateLimit:
            // "required for log-based alerting policies").
            if !blocks(condition, "condition_matched_log").is_empty() {
                let strategy = block(policy, "alert_strategy");
                assert!(str_attr(block(strategy, "notification_rate_limit"), "period").is_some(), "{name}");
            }
        }
        assert_eq!(text(policy, "notification_channels"), "local.notification_channels", "{name}");
        let documentation = block(policy, "documentation");
        assert_eq!(str_attr(documentation, "mime_type").as_deref(), Some("text/markdown"));
        assert_reason_and_runbook(
            &source,
            "google_monitoring_alert_policy",
            name,
            &text(documentation, "content"),
            &operations,
        );
        let title = text(policy, "display_name").trim_matches('"').replace("${var.name}: ", "");
        assert!(deploy.contains(&format!("`{title}`")), "docs/deploy-gcp.md does not list alert `{title}`");
    }

    // PromQL: Cloud Monitoring metrics by the documented mapping (the domain's dots become
    // underscores, the first slash a colon, other slashes underscores), labels documented ones;
    // the service's own metric by its Prometheus name.
    let lb = one_line(m.local("lb_requests"));
    let promql_name = lb.trim_matches('"').split('{').next().unwrap().to_string();
    let (domain, path) = promql_name.split_once(':').unwrap();
    let metric_type = format!("{}/{}", domain.replace('_', "."), path.replacen('_', "/", 1));
    let documented = GCP_DOCUMENTED.iter().find(|d| d.0 == metric_type).unwrap_or_else(|| panic!("{metric_type}"));
    assert!(lb.contains("backend_target_name=") && documented.5.contains(&"backend_target_name"), "{lb}");
    assert!(
        lb.contains("monitored_resource=\\\"https_lb_rule\\\"") || lb.contains("monitored_resource=\"https_lb_rule\"")
    );
    let store = m.resource("google_monitoring_alert_policy", "store_errors");
    let query = text(block(block(store, "conditions"), "condition_prometheus_query_language"), "query");
    assert!(query.contains("increase(store_operation_errors_total{"), "{query}");
    assert!(metrics_rs.contains("\"store_operation_errors_total\""));
    let lb_5xx = m.resource("google_monitoring_alert_policy", "lb_5xx");
    let query = text(block(block(lb_5xx, "conditions"), "condition_prometheus_query_language"), "query");
    assert!(query.contains("response_code_class=") && documented.4.contains(&"response_code_class"), "{query}");
    assert!(query.contains(">= 20"), "the rate needs at least 20 requests a minute: {query}");

    // The dashboard has the rehearsal chart's panels.
    let panels = m.expand(m.local("dashboard_panels"));
    for shown in [
        "loadbalancing.googleapis.com/https/request_count",
        "loadbalancing.googleapis.com/https/total_latencies",
        "REDUCE_PERCENTILE_99",
        "compute.googleapis.com/instance_group/size",
        "compute.googleapis.com/instance/cpu/utilization",
        "firestore.googleapis.com/api/request_count",
        "store_operation_errors_total",
        "store_operation_duration_seconds",
    ] {
        assert!(panels.contains(shown), "the dashboard has no {shown}");
    }
    // p50 and p99 of the load balancer's latency: one series per percentile.
    let compact: String = panels.split_whitespace().collect();
    assert!(compact.contains("forpin[50,99]") && compact.contains("REDUCE_PERCENTILE_${p}"), "{panels}");
}

#[test]
fn gcp_log_based_metrics_read_only_fields_the_access_lines_have() {
    let m = Module::load("gcp");
    let source = read("terraform/gcp/observability.tf");
    let fields = access_fields();
    for field in source
        .split("jsonPayload.")
        .skip(1)
        .map(|r| r.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>())
    {
        // Other logs' payloads: health check logs (healthCheckProbeResult.healthState, "Health
        // check logging") and the autoscaler's status changes (new_status, "View autoscaler logs").
        if field == "healthCheckProbeResult" || field == "new_status" {
            continue;
        }
        assert!(fields.contains(&field), "jsonPayload.{field} is not an access line field");
    }
    let access = one_line(m.local("access_lines"));
    assert!(access.replace('\\', "").contains("jsonPayload.message=\"request\""), "{access}");
    assert_eq!(
        one_line(m.local("route_extractor")),
        "\"REGEXP_EXTRACT(jsonPayload.path, \\\"^(/[^/]*)\\\")\"",
        "the route is the path's first segment"
    );
    // google_logging_metric: every descriptor label has an extractor and every extractor a label;
    // a DISTRIBUTION has a value_extractor and bucket_options (the provider's and LogMetric's rules).
    for (name, metric) in m.resources("google_logging_metric") {
        let descriptor = block(metric, "metric_descriptor");
        let labels: BTreeSet<String> =
            blocks(descriptor, "labels").iter().map(|l| str_attr(l, "key").unwrap()).collect();
        let extractors: BTreeSet<String> = match attr(metric, "label_extractors") {
            Some(Expression::Object(o)) => o.keys().map(|k| k.to_string()).collect(),
            _ => BTreeSet::new(),
        };
        assert_eq!(labels, extractors, "{name}: labels vs label_extractors");
        if str_attr(descriptor, "value_type").as_deref() == Some("DISTRIBUTION") {
            assert!(
                attr(metric, "value_extractor").is_some() && !blocks(metric, "bucket_options").is_empty(),
                "{name}"
            );
            assert_eq!(text(metric, "value_extractor"), "\"EXTRACT(jsonPayload.latency_ms)\"");
        }
        assert_eq!(str_attr(descriptor, "metric_kind").as_deref(), Some("DELTA"), "{name}");
    }
    let marker = str_attr_local(&m, "breaker_log_marker");
    assert!(read("server/src/store/guarded.rs").contains(&format!("\"{marker}\"")));
    assert!(
        text(m.resource("google_logging_metric", "breaker_open"), "filter").contains("${local.breaker_log_marker}")
    );
    // Both health checks log (health check logs record transitions only when log_config is on).
    for check in ["gtg", "autohealing"] {
        let body = m.resource("google_compute_health_check", check);
        assert_eq!(bool_attr(block(body, "log_config"), "enable"), Some(true), "{check}");
    }
}

#[test]
fn gcp_logs_are_kept_once_in_the_deployments_bucket_and_the_account_may_only_write_logs_and_metrics() {
    let m = Module::load("gcp");
    let bucket = m.resource("google_logging_project_bucket_config", "service");
    assert_eq!(text(bucket, "retention_days"), "var.log_retention_days");
    assert_eq!(str_attr(bucket, "location").as_deref(), Some("global"));
    let sink = m.resource("google_logging_project_sink", "service");
    assert_eq!(text(sink, "filter"), "local.service_lines");
    assert!(
        text(sink, "destination")
            .starts_with("\"logging.googleapis.com/${google_logging_project_bucket_config.service.id}")
    );
    let exclusion = m.resource("google_logging_project_exclusion", "service");
    assert_eq!(text(exclusion, "filter"), "local.service_lines");
    // The Ops Agent writes as the instances' account: logging.logWriter and
    // monitoring.metricWriter ("Authorize the Ops Agent"), nothing else.
    let mut roles = BTreeSet::new();
    for name in ["log_writer", "metric_writer"] {
        let member = m.resource("google_project_iam_member", name);
        assert_eq!(text(member, "member"), "\"serviceAccount:${google_service_account.instances.email}\"");
        roles.insert(str_attr(member, "role").unwrap());
    }
    assert_eq!(
        roles,
        BTreeSet::from(["roles/logging.logWriter".to_string(), "roles/monitoring.metricWriter".to_string()])
    );
    // The group starts after both grants; logging's API is enabled with the others.
    let group = text(m.resource("google_compute_region_instance_group_manager", "this"), "depends_on");
    assert!(
        group.contains("google_project_iam_member.log_writer")
            && group.contains("google_project_iam_member.metric_writer")
    );
    assert!(text(m.resource("google_project_service", "apis"), "for_each").contains("\"logging.googleapis.com\""));
    // Optional: channels by variable, the budget only with a billing account.
    assert_eq!(m.default_string("alarm_email"), "");
    assert_eq!(m.default_string("billing_account"), "");
    assert_eq!(one_line(m.local("budget")), "var.billing_account != \"\" && var.monthly_budget_usd > 0");
    let budget = m.resource("google_billing_budget", "monthly");
    assert_eq!(text(budget, "count"), "local.budget ? 1 : 0");
    let rules: Vec<String> = blocks(budget, "threshold_rules").iter().map(|r| one_line_block_body(r)).collect();
    assert!(rules.iter().any(|r| r.contains("FORECASTED_SPEND")), "{rules:?}");
    assert_eq!(
        text(block(budget, "all_updates_rule"), "monitoring_notification_channels"),
        "local.notification_channels"
    );
}

fn one_line_block_body(body: &Body) -> String {
    hcl::to_string(body).unwrap().split_whitespace().collect::<Vec<_>>().join(" ")
}

// The service's log lines must not fill the instance's disk between rotations (review: at 200
// requests/s an instance writes about 4 GB of access lines a day, and Ubuntu runs logrotate once a
// day). The file is rotated hourly and by size and compressed at once (logrotate(8): `hourly`
// needs logrotate itself run hourly, hence the timer drop-in, systemd.timer(5): an empty
// OnCalendar= clears the daily one); both agent images install the drop-in. On Azure the lines go
// to the agent through syslog and stop after its forwarder (10-azuremonitoragent-omfwd.conf, Azure
// Monitor Agent's syslog troubleshooting page), before Ubuntu's 50-default.conf writes
// /var/log/syslog, which is rotated weekly with no size limit.
#[test]
fn service_logs_are_rotated_by_size_hourly_and_never_double_written() {
    let logrotate = read("packer/files/candidates-logrotate");
    for directive in ["\n  hourly\n", "\n  maxsize 100M\n", "\n  compress\n", "\n  rotate 3\n"] {
        assert!(logrotate.contains(directive), "{directive:?} missing:\n{logrotate}");
    }
    assert!(!logrotate.contains("\n  delaycompress\n") && !logrotate.contains("\n  daily\n"), "{logrotate}");
    let timer = read("packer/files/logrotate-hourly.conf");
    assert!(timer.contains("[Timer]\nOnCalendar=\nOnCalendar=hourly\n"), "{timer}");
    for installer in ["packer/scripts/install-cloudwatch-agent.sh", "packer/scripts/install-ops-agent.sh"] {
        let text = read(installer);
        assert!(
            text.contains("\"$SRC/logrotate-hourly.conf\" \"$ROOT/etc/systemd/system/logrotate.timer.d/hourly.conf\""),
            "{installer} does not install the hourly timer"
        );
    }
    let azure = read("packer/files/candidates-rsyslog-azure.conf");
    assert!(azure.contains("\nif $programname == \"candidates\" then stop\n"), "{azure}");
    let packer = read("packer/candidates.pkr.hcl");
    assert!(packer.contains("\"${path.root}/files/logrotate-hourly.conf\","));
    assert!(packer.contains("\"${path.root}/files/candidates-rsyslog-azure.conf\","));
    let provisioner =
        packer.split("provisioner \"shell\" {").find(|p| p.contains("candidates-rsyslog-azure.conf /etc/")).unwrap();
    assert!(provisioner.contains("only            = [\"azure-arm.azure\"]"), "{provisioner}");
    // After the agent's forwarder (10-...), before Ubuntu's default rules (50-default.conf).
    assert!(provisioner.contains("/etc/rsyslog.d/30-candidates.conf"), "{provisioner}");
}

// HCL's "$${" is the escape for a literal "${": a value meant as "$" followed by an interpolation
// silently became text (the AWS budget's tag filter matched "user:deployment${var.name}" and so
// no cost at all: review). No root writes it outside a comment; a literal "$" before a value is
// format("...$%s", ...).
#[test]
fn no_interpolation_is_escaped_into_text() {
    fn walk(dir: &std::path::Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() && !name.starts_with('.') {
                walk(&path, found);
            } else if name.ends_with(".tf") {
                for (i, line) in std::fs::read_to_string(&path).unwrap().lines().enumerate() {
                    let code = line.split_once('#').map_or(line, |(code, _)| code);
                    if code.contains("$${") {
                        found.push(format!("{}:{}: {line}", path.display(), i + 1));
                    }
                }
            }
        }
    }
    let mut found = Vec::new();
    walk(&repo_root().join("terraform"), &mut found);
    assert!(found.is_empty(), "{found:#?}");
    let budget = read("terraform/aws/observability.tf");
    assert!(budget.contains("values = [format(\"user:deployment$%s\", var.name)]"));
}
