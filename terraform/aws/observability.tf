# Day-one operations (issue 31, AWS): the service's logs off the instances, alarms to an SNS topic,
# a dashboard, saved Logs Insights queries, optional ALB access logs and a monthly budget.
# docs/deploy-aws.md "Alarms, logs and dashboard" says what each watches and costs;
# docs/operations.md "Runbooks (AWS alarms)" says what to do when one fires. Every metric name and
# dimension here is in the AWS documentation's lists, which
# terraform/invariants/tests/invariants/observability.rs encodes (with their URLs) and checks.

variable "log_retention_days" {
  type        = number
  description = "Days CloudWatch Logs keeps the service's log lines (access lines and events, shipped by the CloudWatch agent)."
  default     = 30
  validation {
    # CloudWatch Logs' PutRetentionPolicy accepts only these.
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of CloudWatch Logs' values (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "alarm_email" {
  type        = string
  description = "Email address subscribed to the alarm topic (AWS sends a confirmation mail first); empty: no subscription, subscribe to output alarm_topic_arn yourself."
  default     = ""
}

variable "alarm_5xx_percent" {
  type        = number
  description = "5xx answers (target or load balancer) as a percentage of requests, per minute, that alarm when held 3 of 5 minutes."
  default     = 5
}

variable "unhealthy_host_minutes" {
  type        = number
  description = "Minutes a target group must have an unhealthy target before its alarm fires."
  default     = 5
}

variable "monthly_budget_usd" {
  type        = number
  description = "Monthly cost budget in USD (the whole account unless budget_by_deployment_tag): mail at 80 % actual and 100 % forecast. 0: no budget."
  default     = 150
}

variable "budget_by_deployment_tag" {
  type        = bool
  description = "Budget only costs tagged deployment=<name>. Needs the `deployment` tag activated as a cost allocation tag (Billing console) first, or the budget sees nothing."
  default     = false
}

variable "alb_access_logs" {
  type        = bool
  description = "ALB access logs to an S3 bucket made here (S3 storage and requests cost; ELB's delivery itself is free). Off: the service's own access lines cover requests that reach it."
  default     = false
}

variable "alb_access_log_retention_days" {
  type        = number
  description = "Days the ALB access log objects are kept (with alb_access_logs)."
  default     = 30
}

locals {
  log_group_name = "/candidates/${var.name}/service"
  # Where rsyslog (packer/files/candidates-rsyslog.conf) writes the unit's journal lines, one JSON
  # object a line, and where the agent's files live (the .deb's paths).
  service_log_file  = "/var/log/candidates/service.log"
  agent_dir         = "/opt/aws/amazon-cloudwatch-agent/etc"
  agent_config_path = "${local.agent_dir}/candidates.json"
  prometheus_config = "${local.agent_dir}/candidates-prometheus.yaml"
  # Per deployment: two stacks in one account keep their metrics apart.
  metrics_namespace  = "Candidates/${var.name}"
  breaker_log_marker = "store is down: failing fast" # server/src/store/guarded.rs, when the breaker opens

  agent_config = templatefile("${path.module}/files/cloudwatch-agent.json.tftpl", {
    log_group_name         = aws_cloudwatch_log_group.service.name
    service_log_file       = local.service_log_file
    prometheus_config_path = local.prometheus_config
    metrics_namespace      = local.metrics_namespace
  })
  # Prometheus' scrape configuration is YAML; JSON is YAML, and jsonencode cannot get it wrong.
  prometheus_scrape = jsonencode({
    global = { scrape_interval = "1m", scrape_timeout = "10s" }
    scrape_configs = [{
      job_name       = "candidates"
      static_configs = [{ targets = ["127.0.0.1:${var.metrics_port}"], labels = { deployment = var.name } }]
    }]
  })

  alarm_actions = [aws_sns_topic.alarms.arn]
  # server/src/store/dynamodb.rs' data calls (DescribeTable is the start-up check, not traffic).
  dynamodb_operations = ["GetItem", "PutItem", "DeleteItem", "Scan"]
  target_groups = {
    rest = { namespace = "AWS/ApplicationELB", lb = aws_lb.rest.arn_suffix, tg = aws_lb_target_group.rest.arn_suffix }
    grpc = { namespace = "AWS/NetworkELB", lb = aws_lb.grpc.arn_suffix, tg = aws_lb_target_group.grpc.arn_suffix }
  }
}

# --- logs ------------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "service" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  #checkov:skip=CKV_AWS_158:Encrypted with the CloudWatch Logs service key; a CMK is an organisation choice.
  #checkov:skip=CKV_AWS_338:Retention is a variable (default 30 days); a year of request logs is a compliance choice.
}

# The agent may write its streams in this group and nothing else: no CreateLogGroup (Terraform
# made it), no PutRetentionPolicy (Terraform owns retention), no other group. Embedded metric
# format lines (the Prometheus scrape) go to the same group, so they need no cloudwatch:PutMetricData.
data "aws_iam_policy_document" "service_logs" {
  statement {
    sid       = "ServiceLogGroupOnly"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.service.arn}:*"]
  }
}

resource "aws_iam_role_policy" "service_logs" {
  name   = "candidates-logs"
  role   = aws_iam_role.instance.id
  policy = data.aws_iam_policy_document.service_logs.json
}

# The breaker's opening line (one per opening, per instance) as a metric.
resource "aws_cloudwatch_log_metric_filter" "breaker_open" {
  name           = "${var.name}-store-breaker-open"
  log_group_name = aws_cloudwatch_log_group.service.name
  pattern        = "{ $.message = \"${local.breaker_log_marker}\" }"
  metric_transformation {
    name      = "StoreBreakerOpened"
    namespace = local.metrics_namespace
    value     = "1"
  }
}

# Saved queries (Logs Insights discovers the JSON fields of every line). The access line has the
# raw path, not the route: the route is its first segment (/candidate/{name} -> /candidate), which
# is the same closed set as the metrics' route label. gRPC lines (message "rpc") carry the RPC.
resource "aws_cloudwatch_query_definition" "errors_by_route" {
  name            = "${var.name}/5xx by route"
  log_group_names = [aws_cloudwatch_log_group.service.name]
  query_string    = <<-EOT
    fields @timestamp, method, path, status, request_id, trace_id
    | filter message = "request" and status >= 500
    | parse path /^(?<route>\/[^\/]*)/
    | stats count(*) as errors by route, method, status
    | sort errors desc
  EOT
}

resource "aws_cloudwatch_query_definition" "latency_by_route" {
  name            = "${var.name}/p99 latency by route"
  log_group_names = [aws_cloudwatch_log_group.service.name]
  query_string    = <<-EOT
    fields @timestamp, method, path, latency_ms
    | filter message = "request"
    | parse path /^(?<route>\/[^\/]*)/
    | stats pct(latency_ms, 50) as p50_ms, pct(latency_ms, 99) as p99_ms, count(*) as requests by route, method
    | sort p99_ms desc
  EOT
}

resource "aws_cloudwatch_query_definition" "rpc_errors" {
  name            = "${var.name}/gRPC errors by RPC"
  log_group_names = [aws_cloudwatch_log_group.service.name]
  query_string    = <<-EOT
    fields @timestamp, rpc, grpc_status, latency_ms, request_id
    | filter message = "rpc" and grpc_status in ["2", "4", "12", "13", "14", "15"]
    | stats count(*) as errors, pct(latency_ms, 99) as p99_ms by rpc, grpc_status
    | sort errors desc
  EOT
}

# --- the notification target -----------------------------------------------------------------

resource "aws_sns_topic" "alarms" {
  name = "${var.name}-alarms"
  # Not encrypted with a KMS key: the AWS managed SNS key's policy cannot be changed, so CloudWatch
  # alarms, EventBridge and Budgets could not publish to a topic under it; a customer managed key
  # with grants for the three is an organisation's choice.
  #checkov:skip=CKV_AWS_26:Alarm notifications hold alarm names and states only; a CMK would need key grants for CloudWatch, EventBridge and Budgets.
}

resource "aws_sns_topic_subscription" "email" {
  count     = var.alarm_email != "" ? 1 : 0
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# The topic's policy replaces SNS's default one: the account itself, and the three services that
# publish to it, each only for this stack (its alarms, its rule) or this account (budgets).
data "aws_iam_policy_document" "alarm_topic" {
  statement {
    sid       = "OwnerPublishes"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
  # Alarm notifications are published by CloudWatch itself: only this stack's alarms.
  statement {
    sid       = "StackAlarms"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${data.aws_partition.current.partition}:cloudwatch:${var.region}:${data.aws_caller_identity.current.account_id}:alarm:${var.name}-*"]
    }
  }
  statement {
    sid       = "AutoScalingFailureEvents"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.asg_failures.arn]
    }
  }
  statement {
    sid       = "Budgets"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]
    principals {
      type        = "Service"
      identifiers = ["budgets.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

data "aws_caller_identity" "current" {}

resource "aws_sns_topic_policy" "alarms" {
  arn    = aws_sns_topic.alarms.arn
  policy = data.aws_iam_policy_document.alarm_topic.json
}

# --- alarms (each reason is in alarm_description and in docs/deploy-aws.md) ---------------------

# Reason: 5 % of requests failing for 3 of 5 minutes is an outage for clients, not a blip; fewer
# than 20 requests a minute do not alarm (one 5xx of 3 requests is not a rate).
resource "aws_cloudwatch_metric_alarm" "target_5xx" {
  alarm_name          = "${var.name}-target-5xx-rate"
  alarm_description   = "The service answered 5xx to more than ${var.alarm_5xx_percent} % of requests (at least 20 a minute) in 3 of 5 minutes. Runbook: docs/operations.md \"Target 5xx rate\"."
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_5xx_percent
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  treat_missing_data  = "notBreaching" # no requests: no errors
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "rate"
    expression  = "IF(requests >= 20, 100 * FILL(errors, 0) / requests, 0)"
    label       = "target 5xx %"
    return_data = true
  }
  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = { LoadBalancer = aws_lb.rest.arn_suffix, TargetGroup = aws_lb_target_group.rest.arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }
  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = { LoadBalancer = aws_lb.rest.arn_suffix, TargetGroup = aws_lb_target_group.rest.arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }
}

# Reason: the ALB's own 5xx (502/503/504: no healthy target, a reset connection, a timeout) are
# failures the service never logs; same rate and window as the target's.
resource "aws_cloudwatch_metric_alarm" "elb_5xx" {
  alarm_name          = "${var.name}-alb-5xx-rate"
  alarm_description   = "The load balancer itself answered 5xx (502/503/504) to more than ${var.alarm_5xx_percent} % of requests (at least 20 a minute) in 3 of 5 minutes. Runbook: docs/operations.md \"ALB 5xx rate\"."
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_5xx_percent
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  treat_missing_data  = "notBreaching" # no requests: no errors
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "rate"
    expression  = "IF(requests >= 20, 100 * FILL(errors, 0) / requests, 0)"
    label       = "ALB 5xx %"
    return_data = true
  }
  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_ELB_5XX_Count"
      dimensions  = { LoadBalancer = aws_lb.rest.arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }
  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = { LoadBalancer = aws_lb.rest.arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }
}

# Reason: a failing instance is replaced by the group's ELB health check within about two minutes
# (2 failed checks 10 s apart, then a launch); unhealthy for var.unhealthy_host_minutes (5) minutes
# in a row means replacement is not fixing it (a bad image, the store unreachable from every instance).
resource "aws_cloudwatch_metric_alarm" "unhealthy_hosts" {
  for_each            = local.target_groups
  alarm_name          = "${var.name}-${each.key}-unhealthy-hosts"
  alarm_description   = "The ${each.key} target group had an unhealthy target for ${var.unhealthy_host_minutes} minutes in a row. Runbook: docs/operations.md \"Unhealthy hosts\"."
  namespace           = each.value.namespace
  metric_name         = "UnHealthyHostCount"
  dimensions          = { LoadBalancer = each.value.lb, TargetGroup = each.value.tg }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = var.unhealthy_host_minutes
  datapoints_to_alarm = var.unhealthy_host_minutes
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "missing" # no data says nothing either way: keep the state
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# Reason: on-demand tables still throttle (a hot partition, the account's table limits); any
# throttle in 2 minutes running means clients are already seeing UNAVAILABLE/503 after the retries.
resource "aws_cloudwatch_metric_alarm" "dynamodb_throttles" {
  alarm_name          = "${var.name}-dynamodb-throttles"
  alarm_description   = "DynamoDB throttled requests to the table in 2 minutes running. Runbook: docs/operations.md \"DynamoDB throttles or system errors\"."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  treat_missing_data  = "notBreaching" # DynamoDB reports throttles only when there are some
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "throttled"
    expression  = "FILL(reads, 0) + FILL(writes, 0)"
    label       = "throttle events"
    return_data = true
  }
  metric_query {
    id = "reads"
    metric {
      namespace   = "AWS/DynamoDB"
      metric_name = "ReadThrottleEvents"
      dimensions  = { TableName = aws_dynamodb_table.candidates.name }
      period      = 60
      stat        = "Sum"
    }
  }
  metric_query {
    id = "writes"
    metric {
      namespace   = "AWS/DynamoDB"
      metric_name = "WriteThrottleEvents"
      dimensions  = { TableName = aws_dynamodb_table.candidates.name }
      period      = 60
      stat        = "Sum"
    }
  }
}

# Reason: SystemErrors are DynamoDB's own 500s; the SDK retries them, so a few in 5 minutes is
# noise, but more than 5 in each of 3 minutes is a regional problem the service cannot retry away.
resource "aws_cloudwatch_metric_alarm" "dynamodb_system_errors" {
  alarm_name          = "${var.name}-dynamodb-system-errors"
  alarm_description   = "DynamoDB answered more than 5 internal errors a minute, in 3 of 5 minutes, on the table's data calls. Runbook: docs/operations.md \"DynamoDB throttles or system errors\"."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 5
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  treat_missing_data  = "notBreaching" # reported only when there are some
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "errors"
    expression  = "FILL(getitem, 0) + FILL(putitem, 0) + FILL(deleteitem, 0) + FILL(scan, 0)"
    label       = "system errors"
    return_data = true
  }
  dynamic "metric_query" {
    for_each = local.dynamodb_operations
    content {
      id = lower(metric_query.value)
      metric {
        namespace   = "AWS/DynamoDB"
        metric_name = "SystemErrors"
        dimensions  = { TableName = aws_dynamodb_table.candidates.name, Operation = metric_query.value }
        period      = 60
        stat        = "Sum"
      }
    }
  }
}

# Reason: the service's own count of failed store calls (store_operation_errors_total: timeouts,
# unavailable, throttled, whatever the store); a few a minute are retried by clients, more than 5
# a minute in 3 of 5 minutes is a store problem, whichever the store says or not.
resource "aws_cloudwatch_metric_alarm" "store_errors" {
  alarm_name          = "${var.name}-store-errors"
  alarm_description   = "The instances counted more than 5 failed store calls a minute (store_operation_errors_total) in 3 of 5 minutes. Runbook: docs/operations.md \"Store errors or breaker open\"."
  namespace           = local.metrics_namespace
  metric_name         = "store_operation_errors_total"
  dimensions          = { deployment = var.name }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 5
  treat_missing_data  = "notBreaching" # the counter has no series until the first error
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# Reason: the breaker opens only after 5 store failures in a row on one instance
# (server/src/store/guarded.rs TRIP_AFTER): every opening means the store was down from there.
resource "aws_cloudwatch_metric_alarm" "breaker_open" {
  alarm_name          = "${var.name}-store-breaker-open"
  alarm_description   = "An instance's store breaker opened (5 failed store calls in a row: it fails fast). Runbook: docs/operations.md \"Store errors or breaker open\"."
  namespace           = local.metrics_namespace
  metric_name         = aws_cloudwatch_log_metric_filter.breaker_open.metric_transformation[0].name
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching" # no line: no opening
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# Reason: the NAT gateway carries only SSM and apt (DynamoDB uses the gateway endpoint), so a
# failed port allocation is never traffic's fault: any one means connections are being refused.
resource "aws_cloudwatch_metric_alarm" "nat_port_allocation" {
  count               = local.nat_count
  alarm_name          = "${var.name}-nat-${count.index}-port-allocation"
  alarm_description   = "NAT gateway ${count.index} could not allocate a source port. Runbook: docs/operations.md \"NAT errors\"."
  namespace           = "AWS/NATGateway"
  metric_name         = "ErrorPortAllocation"
  dimensions          = { NatGatewayId = aws_nat_gateway.this[count.index].id }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# Reason: the NAT gateway documentation's own line: dropped packets above 0.01 % of the gateway's
# traffic is worth a look (AWS Health Dashboard); held for 3 of 5 five-minute periods.
resource "aws_cloudwatch_metric_alarm" "nat_packets_dropped" {
  count               = local.nat_count
  alarm_name          = "${var.name}-nat-${count.index}-packets-dropped"
  alarm_description   = "NAT gateway ${count.index} dropped more than 0.01 % of its packets in 3 of 5 five-minute periods. Runbook: docs/operations.md \"NAT errors\"."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0.01
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "dropped_percent"
    expression  = "IF(inbound + outbound > 0, 100 * FILL(dropped, 0) / (inbound + outbound), 0)"
    label       = "dropped %"
    return_data = true
  }
  metric_query {
    id = "dropped"
    metric {
      namespace   = "AWS/NATGateway"
      metric_name = "PacketsDropCount"
      dimensions  = { NatGatewayId = aws_nat_gateway.this[count.index].id }
      period      = 300
      stat        = "Sum"
    }
  }
  metric_query {
    id = "inbound"
    metric {
      namespace   = "AWS/NATGateway"
      metric_name = "PacketsInFromSource"
      dimensions  = { NatGatewayId = aws_nat_gateway.this[count.index].id }
      period      = 300
      stat        = "Sum"
    }
  }
  metric_query {
    id = "outbound"
    metric {
      namespace   = "AWS/NATGateway"
      metric_name = "PacketsInFromDestination"
      dimensions  = { NatGatewayId = aws_nat_gateway.this[count.index].id }
      period      = 300
      stat        = "Sum"
    }
  }
}

# Reason: a launch or termination the group could not do (capacity, a bad launch template, a
# quota, a missing permission) leaves the group short whatever the policies ask; every one matters.
resource "aws_cloudwatch_event_rule" "asg_failures" {
  name        = "${var.name}-asg-failures"
  description = "Auto Scaling could not launch or terminate an instance of ${aws_autoscaling_group.this.name}. Runbook: docs/operations.md \"Auto Scaling failures\"."
  event_pattern = jsonencode({
    source        = ["aws.autoscaling"]
    "detail-type" = ["EC2 Instance Launch Unsuccessful", "EC2 Instance Terminate Unsuccessful"]
    detail        = { AutoScalingGroupName = [aws_autoscaling_group.this.name] }
  })
}

resource "aws_cloudwatch_event_target" "asg_failures" {
  rule = aws_cloudwatch_event_rule.asg_failures.name
  arn  = aws_sns_topic.alarms.arn
}

# Reason: the stack idles at about $110 a month (docs/deploy-aws.md "Cost"); 80 % of
# var.monthly_budget_usd actually spent, or 100 % forecast, is worth a mail before the bill.
resource "aws_budgets_budget" "monthly" {
  count        = var.monthly_budget_usd > 0 ? 1 : 0
  name         = "${var.name}-monthly"
  budget_type  = "COST"
  limit_amount = tostring(var.monthly_budget_usd)
  limit_unit   = "USD"
  time_unit    = "MONTHLY"

  dynamic "cost_filter" {
    for_each = var.budget_by_deployment_tag ? [1] : []
    content {
      name = "TagKeyValue"
      # Cost Explorer's tag filter is "user:<key>$<value>"; format() because "$${" would be HCL's
      # escape for a literal "${" (the budget then matched no cost at all: review).
      values = [format("user:deployment$%s", var.name)]
    }
  }

  notification {
    comparison_operator       = "GREATER_THAN"
    threshold                 = 80
    threshold_type            = "PERCENTAGE"
    notification_type         = "ACTUAL"
    subscriber_sns_topic_arns = [aws_sns_topic.alarms.arn]
  }

  notification {
    comparison_operator       = "GREATER_THAN"
    threshold                 = 100
    threshold_type            = "PERCENTAGE"
    notification_type         = "FORECASTED"
    subscriber_sns_topic_arns = [aws_sns_topic.alarms.arn]
  }

  depends_on = [aws_sns_topic_policy.alarms]
}

# --- the dashboard -----------------------------------------------------------------------------

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = templatefile("${path.module}/files/dashboard.json.tftpl", {
    region            = var.region
    load_balancer     = aws_lb.rest.arn_suffix
    target_group      = aws_lb_target_group.rest.arn_suffix
    asg_name          = aws_autoscaling_group.this.name
    table_name        = aws_dynamodb_table.candidates.name
    deployment        = var.name
    metrics_namespace = local.metrics_namespace
  })
}

# --- ALB access logs (optional) -----------------------------------------------------------------

resource "aws_s3_bucket" "alb_logs" {
  count         = var.alb_access_logs ? 1 : 0
  bucket_prefix = "${var.name}-alb-logs-"
  force_destroy = true
  #checkov:skip=CKV_AWS_18:This is the access log bucket; logging it to another bucket is an account-level choice.
  #checkov:skip=CKV_AWS_144:Access logs are not replicated across regions.
  #checkov:skip=CKV_AWS_145:ELB access logs support SSE-S3 only, not SSE-KMS.
  #checkov:skip=CKV2_AWS_62:No event notifications on access log objects.
  #checkov:skip=CKV_AWS_21:Versioning would keep every expired log object; objects are written once.
}

resource "aws_s3_bucket_public_access_block" "alb_logs" {
  count                   = var.alb_access_logs ? 1 : 0
  bucket                  = aws_s3_bucket.alb_logs[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "alb_logs" {
  count  = var.alb_access_logs ? 1 : 0
  bucket = aws_s3_bucket.alb_logs[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256" # the only one ELB access logs support
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "alb_logs" {
  count  = var.alb_access_logs ? 1 : 0
  bucket = aws_s3_bucket.alb_logs[0].id
  rule {
    id     = "expire"
    status = "Enabled"
    filter {}
    expiration {
      days = var.alb_access_log_retention_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_elb_service_account" "this" {
  count = var.alb_access_logs ? 1 : 0
}

# The ALB user guide's bucket policy: regions opened before August 2022 deliver as the region's
# ELB account, newer ones as the logdelivery.elasticloadbalancing.amazonaws.com service; both are
# granted PutObject under this account's AWSLogs/ prefix only.
data "aws_iam_policy_document" "alb_logs" {
  count = var.alb_access_logs ? 1 : 0
  statement {
    sid       = "ElbAccount"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.alb_logs[0].arn}/alb/AWSLogs/${data.aws_caller_identity.current.account_id}/*"]
    principals {
      type        = "AWS"
      identifiers = [data.aws_elb_service_account.this[0].arn]
    }
  }
  statement {
    sid       = "ElbLogDelivery"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.alb_logs[0].arn}/alb/AWSLogs/${data.aws_caller_identity.current.account_id}/*"]
    principals {
      type        = "Service"
      identifiers = ["logdelivery.elasticloadbalancing.amazonaws.com"]
    }
  }
  statement {
    sid     = "TlsOnly"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.alb_logs[0].arn,
      "${aws_s3_bucket.alb_logs[0].arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "alb_logs" {
  count  = var.alb_access_logs ? 1 : 0
  bucket = aws_s3_bucket.alb_logs[0].id
  policy = data.aws_iam_policy_document.alb_logs[0].json
}

output "log_group_name" {
  description = "CloudWatch Logs group of the service's lines (Logs Insights: the saved queries are under <name>/)."
  value       = aws_cloudwatch_log_group.service.name
}

output "alarm_topic_arn" {
  description = "SNS topic every alarm, the Auto Scaling failure rule and the budget notify."
  value       = aws_sns_topic.alarms.arn
}

output "dashboard_name" {
  description = "CloudWatch dashboard of the deployment."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}
