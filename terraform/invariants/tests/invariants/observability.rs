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
