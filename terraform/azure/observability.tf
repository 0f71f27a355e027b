# Day-one operations (issue 31, Azure): the service's logs off the instances (Azure Monitor Agent
# on the scale set, a data collection rule into a Log Analytics workspace), alerts to an action
# group, saved KQL queries, a workbook (the dashboard) and a monthly budget.
# docs/deploy-azure.md "Alarms, logs and dashboard" says what each watches and costs;
# docs/operations.md "Runbooks (Azure alerts)" says what to do when one fires. Every metric name
# and dimension here is in Microsoft's "Supported metrics" lists, which
# terraform/invariants/tests/invariants/observability.rs encodes (with their URLs) and checks.
#
# Why Syslog and not a custom JSON log: Microsoft documents two ways for a Linux VM's own lines,
# "Collect Syslog events with Azure Monitor Agent" (a DCR syslog data source, the built-in
# Syslog table, no data collection endpoint, no custom table) and "Collect logs from a text or
# JSON file" (a DCR logFiles source, which needs a custom table created through the Log Analytics
# tables API and a data collection endpoint, neither of which azurerm creates from a schema). The
# service's lines are already in syslog: systemd forwards the unit's journal lines
# (SyslogIdentifier=candidates, facility daemon, priority info) to rsyslog, and the agent installs
# an rsyslog forwarding rule for the facilities the DCR names. Each line's JSON is SyslogMessage;
# KQL's parse_json makes its fields queryable at query time (the saved queries below).

variable "log_retention_days" {
  type        = number
  description = "Days the Log Analytics workspace keeps the service's lines (30 to 730; the first 31 days are included in ingestion)."
  default     = 30
  validation {
    # PerGB2018 workspaces: 30 to 730 days (azurerm_log_analytics_workspace retention_in_days).
    condition     = var.log_retention_days >= 30 && var.log_retention_days <= 730
    error_message = "log_retention_days must be between 30 and 730."
  }
}

variable "log_daily_quota_gb" {
  type        = number
  description = "Daily ingestion cap of the workspace in GB (-1: none). A cap stops ingestion for the rest of the day when reached, alerts on logs included."
  default     = -1
}

variable "alarm_email" {
  type        = string
  description = "Email address of the action group every alert notifies; empty: none (add receivers to output action_group_id yourself)."
  default     = ""
}

variable "alarm_webhook_url" {
  type        = string
  description = "HTTPS webhook the action group also calls (common alert schema); empty: none."
  default     = ""
  sensitive   = true
}

variable "alarm_5xx_percent" {
  type        = number
  description = "Service 5xx answers as a percentage of at least 100 requests in 5 minutes that alert."
  default     = 5
}

variable "unhealthy_host_minutes" {
  type        = number
  description = "Minutes a backend must stay unhealthy (gateway or gRPC load balancer) before its alert fires (1 to 60)."
  default     = 5
  validation {
    condition     = var.unhealthy_host_minutes >= 1 && var.unhealthy_host_minutes <= 60
    error_message = "unhealthy_host_minutes must be between 1 and 60."
  }
}

variable "cosmos_throttle_alarm_count" {
  type        = number
  description = "Cosmos DB 429 answers in 5 minutes above which the throttling alert fires."
  default     = 50
}

variable "monthly_budget_usd" {
  type        = number
  description = "Monthly cost budget of the resource group in USD: mail at 80 % actual and 100 % forecast. 0: no budget."
  default     = 400
}

locals {
  # server/src/store/guarded.rs writes this once each time the breaker opens.
  breaker_log_marker = "store is down: failing fast"
  # The lines server/src/service.rs writes for a failed store call (each throttled: once, then a
  # "repeated log lines summarised" line with what = the Throttle's name and suppressed = the
  # count left out), so lines + suppressed counts = failed calls that reached the client as errors.
  store_error_messages  = ["store unavailable", "internal store error", "the store refused this instance's credentials or permissions"]
  store_error_throttles = ["store unavailable", "internal store error", "store access denied"]

  # The service's lines in the Syslog table, one parsed JSON object each (KQL, shared below).
  service_lines = <<-EOT
    Syslog
    | where ProcessName == "candidates"
    | extend line = parse_json(trim(@"\s+", SyslogMessage))
  EOT
  # REST access lines: the route is the path's first segment (/candidate, /candidates, /gtg), the
  # same closed set as the metrics' route label.
  access_lines = <<-EOT
    ${local.service_lines}
    | where tostring(line.message) == "request"
    | extend method = tostring(line.method), path = tostring(line.path), status = toint(line.status), latency_ms = todouble(line.latency_ms), request_id = tostring(line.request_id), trace_id = tostring(line.trace_id)
    | extend route = extract("^(/[^/]*)", 1, path)
  EOT

  action_groups = [azurerm_monitor_action_group.alarms.id]
}

# --- logs ------------------------------------------------------------------------------------

resource "azurerm_log_analytics_workspace" "this" {
  name                = "${var.name}-logs"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  daily_quota_gb      = var.log_daily_quota_gb
  tags                = local.tags
}

# The service's lines (facility daemon: systemd's default for a unit) at Info and above: every
# access line and event (journald gives stdout lines priority info). Other daemons' lines of the
# same facility come too; the queries filter on ProcessName.
resource "azurerm_monitor_data_collection_rule" "service" {
  name                = "${var.name}-service-logs"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  kind                = "Linux"
  description         = "candidate-server's JSON lines (syslog, facility daemon) into ${var.name}-logs"
  tags                = local.tags

  destinations {
    log_analytics {
      name                  = "workspace"
      workspace_resource_id = azurerm_log_analytics_workspace.this.id
    }
  }

  data_flow {
    streams      = ["Microsoft-Syslog"]
    destinations = ["workspace"]
  }

  data_sources {
    syslog {
      name           = "candidates"
      facility_names = ["daemon"]
      log_levels     = ["Info", "Notice", "Warning", "Error", "Critical", "Alert", "Emergency"]
      streams        = ["Microsoft-Syslog"]
    }
  }
}

# The scale set's instances send what the rule says. The agent authenticates as the instances'
# user-assigned identity (named in the extension's settings); it needs no role on the workspace:
# the association is the authorisation, so the identity keeps only its Cosmos DB roles.
resource "azurerm_monitor_data_collection_rule_association" "service" {
  name                    = "${var.name}-service-logs"
  target_resource_id      = azurerm_linux_virtual_machine_scale_set.this.id
  data_collection_rule_id = azurerm_monitor_data_collection_rule.service.id
  description             = "candidate-server's lines from every instance of the scale set"
}

# Saved queries (Logs > Queries, category "candidates").
resource "azurerm_log_analytics_saved_search" "errors_by_route" {
  name                       = "candidates-5xx-by-route"
  log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id
  category                   = "candidates"
  display_name               = "5xx by route"
  query                      = <<-EOT
    ${local.access_lines}
    | where status >= 500
    | summarize errors = count() by route, method, status
    | sort by errors desc
  EOT
}

resource "azurerm_log_analytics_saved_search" "latency_by_route" {
  name                       = "candidates-p99-by-route"
  log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id
  category                   = "candidates"
  display_name               = "p99 latency by route"
  query                      = <<-EOT
    ${local.access_lines}
    | summarize p50_ms = percentile(latency_ms, 50), p99_ms = percentile(latency_ms, 99), requests = count() by route, method
    | sort by p99_ms desc
  EOT
}

resource "azurerm_log_analytics_saved_search" "rpc_errors" {
  name                       = "candidates-grpc-errors-by-rpc"
  log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id
  category                   = "candidates"
  display_name               = "gRPC errors by RPC"
  query                      = <<-EOT
    ${local.service_lines}
    | where tostring(line.message) == "rpc"
    | extend rpc = tostring(line.rpc), grpc_status = toint(line.grpc_status), latency_ms = todouble(line.latency_ms)
    | where grpc_status in (2, 4, 12, 13, 14, 15)
    | summarize errors = count(), p99_ms = percentile(latency_ms, 99) by rpc, grpc_status
    | sort by errors desc
  EOT
}

# --- the notification target -----------------------------------------------------------------

resource "azurerm_monitor_action_group" "alarms" {
  name                = "${var.name}-alarms"
  resource_group_name = azurerm_resource_group.this.name
  short_name          = substr(var.name, 0, 12) # at most 12 characters
  tags                = local.tags

  dynamic "email_receiver" {
    for_each = var.alarm_email != "" ? [var.alarm_email] : []
    content {
      name                    = "email"
      email_address           = email_receiver.value
      use_common_alert_schema = true
    }
  }

  dynamic "webhook_receiver" {
    # Whether it is set is not secret; the address is.
    for_each = nonsensitive(var.alarm_webhook_url != "") ? [1] : []
    content {
      name                    = "webhook"
      service_uri             = var.alarm_webhook_url
      use_common_alert_schema = true
    }
  }
}

# --- alerts (each reason is in its description and in docs/deploy-azure.md) --------------------

# Reason: 5 % of at least 100 requests in 5 minutes failing is an outage for clients, not a blip;
# fewer requests do not alert (one 5xx of 3 requests is not a rate). Read from the access lines:
# the gateway's metrics cannot divide one count by another.
resource "azurerm_monitor_scheduled_query_rules_alert_v2" "service_5xx" {
  name                 = "${var.name}-service-5xx-rate"
  resource_group_name  = azurerm_resource_group.this.name
  location             = azurerm_resource_group.this.location
  scopes               = [azurerm_log_analytics_workspace.this.id]
  description          = "The service answered 5xx to more than ${var.alarm_5xx_percent} % of at least 100 requests in 5 minutes. Runbook: docs/operations.md \"Azure: service 5xx rate\"."
  severity             = 1
  evaluation_frequency = "PT5M"
  # Every 5-minute bin is looked at twice (windows overlap): a line that reached the workspace
  # after one evaluation is in the next (ingestion delay: "Handle ingestion delay in scheduled
  # analytics rules").
  window_duration = "PT10M"
  tags            = local.tags

  # One row per 5-minute bin, TimeGenerated kept: a log alert with a measure column aggregates
  # the column over time by it.
  criteria {
    query                   = <<-EOT
      ${local.access_lines}
      | summarize requests = count(), errors = countif(status >= 500) by bin(TimeGenerated, 5m)
      | extend rate = iff(requests >= 100, 100.0 * errors / requests, 0.0)
    EOT
    time_aggregation_method = "Maximum"
    metric_measure_column   = "rate"
    operator                = "GreaterThan"
    threshold               = var.alarm_5xx_percent
  }

  action {
    action_groups = local.action_groups
  }
}

# Reason: the gateway's own 5xx (502: no backend answered or one reset the connection; 504) plus
# the backends' pass through: more than 25 in 5 minutes (5 a minute) is more than a deploy's
# stray resets, and the gateway's own never reach the service's access lines.
resource "azurerm_monitor_metric_alert" "gateway_5xx" {
  name                = "${var.name}-gateway-5xx"
  resource_group_name = azurerm_resource_group.this.name
  scopes              = [azurerm_application_gateway.rest.id]
  description         = "The Application Gateway answered more than 25 responses 5xx in 5 minutes. Runbook: docs/operations.md \"Azure: gateway 5xx\"."
  severity            = 1
  frequency           = "PT1M"
  window_size         = "PT5M"
  tags                = local.tags

  criteria {
    metric_namespace = "Microsoft.Network/applicationGateways"
    metric_name      = "ResponseStatus"
    aggregation      = "Total"
    operator         = "GreaterThan"
    threshold        = 25
    dimension {
      name     = "HttpStatusGroup"
      operator = "Include"
      values   = ["5xx"]
    }
  }

  action {
    action_group_id = azurerm_monitor_action_group.alarms.id
  }
}

# Reason: automatic repairs replace an instance whose health extension fails after the 10-minute
# grace, and the gateway drops it from rotation within seconds; a backend unhealthy (Minimum > 0:
# every minute of the window) for var.unhealthy_host_minutes means replacements fail too.
resource "azurerm_monitor_metric_alert" "gateway_unhealthy_hosts" {
  name                = "${var.name}-gateway-unhealthy-hosts"
  resource_group_name = azurerm_resource_group.this.name
  scopes              = [azurerm_application_gateway.rest.id]
  description         = "The Application Gateway had an unhealthy backend for ${var.unhealthy_host_minutes} minutes in a row. Runbook: docs/operations.md \"Azure: unhealthy hosts\"."
  severity            = 2
  frequency           = "PT1M"
  window_size         = local.unhealthy_window
  tags                = local.tags

  criteria {
    metric_namespace = "Microsoft.Network/applicationGateways"
    metric_name      = "UnhealthyHostCount"
    aggregation      = "Minimum"
    operator         = "GreaterThan"
    threshold        = 0
  }

  action {
    action_group_id = azurerm_monitor_action_group.alarms.id
  }
}

# Reason: the gRPC load balancer's probe (/gtg on 8000) sees the same instances; health probe
# status (DipAvailability, % of probes answered) below 100 through the whole window means a
# backend stayed down that long, as for the gateway.
resource "azurerm_monitor_metric_alert" "grpc_unhealthy_hosts" {
  name                = "${var.name}-grpc-unhealthy-hosts"
  resource_group_name = azurerm_resource_group.this.name
  scopes              = [azurerm_lb.grpc.id]
  description         = "The gRPC load balancer's health probe failed on a backend for ${var.unhealthy_host_minutes} minutes in a row. Runbook: docs/operations.md \"Azure: unhealthy hosts\"."
  severity            = 2
  frequency           = "PT1M"
  window_size         = local.unhealthy_window
  tags                = local.tags

  criteria {
    metric_namespace = "Microsoft.Network/loadBalancers"
    metric_name      = "DipAvailability"
    aggregation      = "Maximum"
    operator         = "LessThan"
    threshold        = 100
    dimension {
      name     = "BackendIPAddress"
      operator = "Include"
      values   = ["*"]
    }
  }

  action {
    action_group_id = azurerm_monitor_action_group.alarms.id
  }
}

locals {
  # Metric alert windows are a fixed list (PT1M, PT5M, PT15M, PT30M, PT1H...): the smallest that
  # covers the minutes asked for.
  unhealthy_window = (var.unhealthy_host_minutes <= 1 ? "PT1M" : var.unhealthy_host_minutes <= 5 ? "PT5M" :
  var.unhealthy_host_minutes <= 15 ? "PT15M" : var.unhealthy_host_minutes <= 30 ? "PT30M" : "PT1H")
}

# Reason: the store retries each 429 (server/src/store/cosmos.rs THROTTLE_RETRIES) and Microsoft
# calls 1-5 % of requests throttled healthy when retries absorb them; var.cosmos_throttle_alarm_count
# (50) in 5 minutes sustained means the RU/s budget is the bottleneck and callers see 503s soon.
resource "azurerm_monitor_metric_alert" "cosmos_throttles" {
  name                = "${var.name}-cosmos-throttles"
  resource_group_name = azurerm_resource_group.this.name
  scopes              = [azurerm_cosmosdb_account.this.id]
  description         = "Cosmos DB answered more than ${var.cosmos_throttle_alarm_count} requests with 429 (throttled) in 5 minutes. Runbook: docs/operations.md \"Azure: Cosmos DB throttles or server errors\"."
  severity            = 2
  frequency           = "PT1M"
  window_size         = "PT5M"
  tags                = local.tags

  criteria {
    metric_namespace = "Microsoft.DocumentDB/databaseAccounts"
    metric_name      = "TotalRequests"
    aggregation      = "Count"
    operator         = "GreaterThan"
    threshold        = var.cosmos_throttle_alarm_count
    dimension {
      name     = "StatusCode"
      operator = "Include"
      values   = ["429"]
    }
  }

  action {
    action_group_id = azurerm_monitor_action_group.alarms.id
  }
}

# Reason: 500 and 503 are Cosmos DB's own failures; the SDK retries a few, more than 5 in 5
# minutes is a service problem the store cannot retry away (as DynamoDB's SystemErrors on AWS).
resource "azurerm_monitor_metric_alert" "cosmos_server_errors" {
  name                = "${var.name}-cosmos-server-errors"
  resource_group_name = azurerm_resource_group.this.name
  scopes              = [azurerm_cosmosdb_account.this.id]
  description         = "Cosmos DB answered more than 5 requests with 500 or 503 in 5 minutes. Runbook: docs/operations.md \"Azure: Cosmos DB throttles or server errors\"."
  severity            = 1
  frequency           = "PT1M"
  window_size         = "PT5M"
  tags                = local.tags

  criteria {
    metric_namespace = "Microsoft.DocumentDB/databaseAccounts"
    metric_name      = "TotalRequests"
    aggregation      = "Count"
    operator         = "GreaterThan"
    threshold        = 5
    dimension {
      name     = "StatusCode"
      operator = "Include"
      values   = ["500", "503"]
    }
  }

  action {
    action_group_id = azurerm_monitor_action_group.alarms.id
  }
}

# Reason: the NAT gateway carries only the agent's uploads, apt and the OIDC issuer's keys (Cosmos
# DB too: it has no private endpoint here), so a failed SNAT connection is a fault, never load.
resource "azurerm_monitor_metric_alert" "nat_snat_failures" {
  name                = "${var.name}-nat-snat-failures"
  resource_group_name = azurerm_resource_group.this.name
  scopes              = [azurerm_nat_gateway.this.id]
  description         = "The NAT gateway failed SNAT connections in 5 minutes. Runbook: docs/operations.md \"Azure: NAT errors\"."
  severity            = 2
  frequency           = "PT1M"
  window_size         = "PT5M"
  tags                = local.tags

  criteria {
    metric_namespace = "Microsoft.Network/natGateways"
    metric_name      = "SNATConnectionCount"
    aggregation      = "Total"
    operator         = "GreaterThan"
    threshold        = 0
    dimension {
      name     = "ConnectionState"
      operator = "Include"
      values   = ["Failed"]
    }
  }

  action {
    action_group_id = azurerm_monitor_action_group.alarms.id
  }
}

# Reason: the service's own failed store calls (the store error lines of server/src/service.rs and
# the suppressed counts of their summaries: the metric store_operation_errors_total is on
# /metrics only, which the agent cannot scrape on a VM); more than 75 in 15 minutes (5 a minute)
# is a store problem, whichever the store says or not.
resource "azurerm_monitor_scheduled_query_rules_alert_v2" "store_errors" {
  name                 = "${var.name}-store-errors"
  resource_group_name  = azurerm_resource_group.this.name
  location             = azurerm_resource_group.this.location
  scopes               = [azurerm_log_analytics_workspace.this.id]
  description          = "The instances logged more than 75 failed store calls in 15 minutes. Runbook: docs/operations.md \"Azure: store errors or breaker open\"."
  severity             = 1
  evaluation_frequency = "PT5M"
  # 15 minutes looked at every 5 (overlapping): lines that arrive late are still counted.
  window_duration = "PT15M"
  tags            = local.tags

  criteria {
    query                   = <<-EOT
      ${local.service_lines}
      | extend message = tostring(line.message), what = tostring(line.what), suppressed = tolong(line.suppressed)
      | extend errors = case(message in (${join(", ", [for m in local.store_error_messages : jsonencode(m)])}), 1, message == "repeated log lines summarised" and what in (${join(", ", [for t in local.store_error_throttles : jsonencode(t)])}), suppressed, 0)
      | where errors > 0
      | project TimeGenerated, errors
    EOT
    time_aggregation_method = "Total"
    metric_measure_column   = "errors"
    operator                = "GreaterThan"
    threshold               = 75
  }

  action {
    action_groups = local.action_groups
  }
}

# Reason: the breaker opens only after 5 store failures in a row on one instance
# (server/src/store/guarded.rs TRIP_AFTER): every opening means the store was down from there.
resource "azurerm_monitor_scheduled_query_rules_alert_v2" "breaker_open" {
  name                 = "${var.name}-store-breaker-open"
  resource_group_name  = azurerm_resource_group.this.name
  location             = azurerm_resource_group.this.location
  scopes               = [azurerm_log_analytics_workspace.this.id]
  description          = "An instance's store breaker opened (5 failed store calls in a row: it fails fast). Runbook: docs/operations.md \"Azure: store errors or breaker open\"."
  severity             = 1
  evaluation_frequency = "PT5M"
  # One line is the whole signal: 15 minutes looked at every 5, so a line that reached the
  # workspace late is not missed.
  window_duration = "PT15M"
  tags            = local.tags

  criteria {
    query                   = <<-EOT
      ${local.service_lines}
      | where tostring(line.message) == "${local.breaker_log_marker}"
    EOT
    time_aggregation_method = "Count"
    operator                = "GreaterThanOrEqual"
    threshold               = 1
  }

  action {
    action_groups = local.action_groups
  }
}

# Reason: a scale action autoscale could not carry out (capacity, a quota, the image) leaves the
# set short whatever the rules ask; every one matters.
resource "azurerm_monitor_activity_log_alert" "autoscale_failures" {
  name                = "${var.name}-autoscale-failures"
  resource_group_name = azurerm_resource_group.this.name
  location            = "global"
  scopes              = [azurerm_resource_group.this.id]
  description         = "Autoscale could not scale ${azurerm_linux_virtual_machine_scale_set.this.name} out or in. Runbook: docs/operations.md \"Azure: autoscale failures\"."
  tags                = local.tags

  criteria {
    category    = "Autoscale"
    resource_id = azurerm_monitor_autoscale_setting.this.id
    status      = "Failed"
  }

  action {
    action_group_id = azurerm_monitor_action_group.alarms.id
  }
}

# Reason: the stack idles at about $340 a month (docs/deploy-azure.md "Cost"); 80 % of
# var.monthly_budget_usd actually spent, or 100 % forecast, is worth a mail before the bill.
resource "azurerm_consumption_budget_resource_group" "monthly" {
  count             = var.monthly_budget_usd > 0 ? 1 : 0
  name              = "${var.name}-monthly"
  resource_group_id = azurerm_resource_group.this.id
  amount            = var.monthly_budget_usd
  time_grain        = "Monthly"

  # The first day of the month of the first apply (Azure requires the first of a month); kept
  # afterwards, or every plan would move it.
  time_period {
    start_date = formatdate("YYYY-MM-01'T'00:00:00Z", timestamp())
  }

  notification {
    enabled        = true
    threshold      = 80
    operator       = "GreaterThan"
    threshold_type = "Actual"
    contact_groups = [azurerm_monitor_action_group.alarms.id]
  }

  notification {
    enabled        = true
    threshold      = 100
    operator       = "GreaterThan"
    threshold_type = "Forecasted"
    contact_groups = [azurerm_monitor_action_group.alarms.id]
  }

  lifecycle {
    ignore_changes = [time_period]
  }
}

# --- the dashboard (a workbook: KQL over the access lines, platform metrics) --------------------

resource "azurerm_application_insights_workbook" "this" {
  # A workbook's name must be a GUID; this one is fixed per deployment name.
  name                = uuidv5("url", "https://candidates.invalid/azure/${var.name}/workbook")
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  display_name        = "${var.name} service"
  source_id           = lower(azurerm_log_analytics_workspace.this.id)
  tags                = local.tags
  data_json = jsonencode({
    version = "Notebook/1.0"
    items = concat(
      [for panel in local.workbook_queries : {
        type = 3
        name = panel.title
        content = {
          version                 = "KqlItem/1.0"
          title                   = panel.title
          query                   = panel.query
          size                    = 0
          timeContext             = { durationMs = 3600000 }
          queryType               = 0
          resourceType            = "microsoft.operationalinsights/workspaces"
          crossComponentResources = [azurerm_log_analytics_workspace.this.id]
          visualization           = "timechart"
        }
      }],
      [for panel in local.workbook_metrics : {
        type = 10
        name = panel.title
        content = {
          version      = "MetricsItem/2.0"
          title        = panel.title
          size         = 0
          chartType    = 2
          resourceType = lower(panel.namespace)
          metricScope  = 0
          resourceIds  = [panel.resource]
          timeContext  = { durationMs = 3600000 }
          metrics = [for metric in panel.metrics : {
            namespace   = lower(panel.namespace)
            metric      = "${lower(panel.namespace)}--${metric.name}"
            aggregation = metric.aggregation
          }]
          gridSettings = { rowLimit = 10000 }
        }
      }],
    )
  })
}

locals {
  # The rehearsal chart's panels: request rate, errors, p50/p99, instances against the target,
  # CPU, store latency and errors.
  workbook_queries = [
    {
      title = "Requests a minute (service access lines)"
      query = "${local.access_lines}| summarize requests = count() by bin(TimeGenerated, 1m), route"
    },
    {
      title = "Errors a minute: service 5xx and 4xx, store errors"
      query = "${local.access_lines}| summarize service_5xx = countif(status >= 500), service_4xx = countif(status >= 400 and status < 500) by bin(TimeGenerated, 1m)"
    },
    {
      title = "Latency p50 / p99 (ms, service)"
      query = "${local.access_lines}| summarize p50_ms = percentile(latency_ms, 50), p99_ms = percentile(latency_ms, 99) by bin(TimeGenerated, 1m)"
    },
  ]
  # Aggregations in workbook metric items, the workbook format's MetricAggregation numbers:
  # 1 Sum, 2 Min, 3 Max, 4 Average, 7 Count.
  workbook_metrics = [
    {
      title     = "Gateway: requests, failed requests, 5xx"
      namespace = "Microsoft.Network/applicationGateways"
      resource  = azurerm_application_gateway.rest.id
      metrics   = [{ name = "TotalRequests", aggregation = 1 }, { name = "FailedRequests", aggregation = 1 }, { name = "ResponseStatus", aggregation = 1 }]
    },
    {
      title     = "Gateway: total time and backend response time (ms)"
      namespace = "Microsoft.Network/applicationGateways"
      resource  = azurerm_application_gateway.rest.id
      metrics   = [{ name = "ApplicationGatewayTotalTime", aggregation = 4 }, { name = "BackendLastByteResponseTime", aggregation = 4 }]
    },
    {
      title     = "Instances: healthy backends against the autoscale capacity"
      namespace = "Microsoft.Network/applicationGateways"
      resource  = azurerm_application_gateway.rest.id
      metrics   = [{ name = "HealthyHostCount", aggregation = 4 }, { name = "UnhealthyHostCount", aggregation = 3 }]
    },
    {
      title     = "Autoscale: observed capacity, metric against its threshold"
      namespace = "Microsoft.Insights/autoscaleSettings"
      resource  = azurerm_monitor_autoscale_setting.this.id
      metrics   = [{ name = "ObservedCapacity", aggregation = 4 }, { name = "ObservedMetricValue", aggregation = 4 }, { name = "MetricThreshold", aggregation = 4 }]
    },
    {
      title     = "CPU (average, busiest)"
      namespace = "Microsoft.Compute/virtualMachineScaleSets"
      resource  = azurerm_linux_virtual_machine_scale_set.this.id
      metrics   = [{ name = "Percentage CPU", aggregation = 4 }, { name = "Percentage CPU", aggregation = 3 }]
    },
    {
      title     = "Cosmos DB: server-side latency (ms)"
      namespace = "Microsoft.DocumentDB/databaseAccounts"
      resource  = azurerm_cosmosdb_account.this.id
      metrics   = [{ name = "ServerSideLatency", aggregation = 4 }]
    },
    {
      title     = "Cosmos DB: requests (split by status code in the chart)"
      namespace = "Microsoft.DocumentDB/databaseAccounts"
      resource  = azurerm_cosmosdb_account.this.id
      metrics   = [{ name = "TotalRequests", aggregation = 7 }]
    },
  ]
}

output "log_analytics_workspace_id" {
  description = "Log Analytics workspace of the service's lines (Logs: the saved queries are under category candidates)."
  value       = azurerm_log_analytics_workspace.this.id
}

output "log_analytics_workspace_customer_id" {
  description = "The workspace's id for `az monitor log-analytics query -w`."
  value       = azurerm_log_analytics_workspace.this.workspace_id
}

output "action_group_id" {
  description = "Action group every alert and the budget notify."
  value       = azurerm_monitor_action_group.alarms.id
}

output "workbook_id" {
  description = "The deployment's workbook (the dashboard)."
  value       = azurerm_application_insights_workbook.this.id
}
