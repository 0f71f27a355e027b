# Day-one operations (issue 31, GCP): the service's logs off the instances (the image's Ops Agent,
# packer/files/ops-agent.yaml, into a log bucket of the deployment's own with its retention),
# log-based metrics (5xx by route, latency by route, the breaker, unhealthy backends), alert
# policies to notification channels, a dashboard and an optional billing budget.
# docs/deploy-gcp.md "Alarms, logs and dashboard" says what each watches and costs;
# docs/operations.md "Runbooks (GCP alerts)" says what to do when one fires. Every metric type and
# label here is in Google's metrics lists (https://cloud.google.com/monitoring/api/metrics_gcp),
# which terraform/invariants/tests/invariants/observability.rs encodes and checks.

variable "log_retention_days" {
  type        = number
  description = "Days the deployment's log bucket keeps the service's lines (1 to 3650; storage past 30 days is billed)."
  default     = 30
  validation {
    condition     = var.log_retention_days >= 1 && var.log_retention_days <= 3650
    error_message = "log_retention_days must be between 1 and 3650."
  }
}

variable "alarm_email" {
  type        = string
  description = "Email address of a notification channel every alert policy (and the budget) notifies; empty: none."
  default     = ""
}

variable "alarm_webhook_url" {
  type        = string
  description = "Webhook URL of a second notification channel (webhook_tokenauth); empty: none."
  default     = ""
  sensitive   = true
}

variable "alarm_5xx_percent" {
  type        = number
  description = "5xx answers of the REST load balancer as a percentage of requests (at least 20 a minute) that alert when held 3 minutes."
  default     = 5
}

variable "unhealthy_host_minutes" {
  type        = number
  description = "Window in minutes in which more than one backend health transition to UNHEALTHY alerts."
  default     = 5
}

variable "billing_account" {
  type        = string
  description = "Billing account id (XXXXXX-XXXXXX-XXXXXX) for the monthly budget; empty: no budget (creating one needs Billing Account Costs Manager on it)."
  default     = ""
}

variable "monthly_budget_usd" {
  type        = number
  description = "Monthly budget of the project in USD (with billing_account): notify at 80 % actual and 100 % forecast. 0: none."
  default     = 120
}

locals {
  # The Ops Agent names a files receiver's log after the receiver (packer/files/ops-agent.yaml).
  service_log_name = "projects/${var.project_id}/logs/candidates"
  # This deployment's instances (the group's base_instance_name and a 4-character suffix).
  instance_name_regex = "^${var.name}-[a-z0-9]{4}$"
  service_lines       = "logName=\"${local.service_log_name}\" AND resource.type=\"gce_instance\" AND labels.\"compute.googleapis.com/resource_name\"=~\"${local.instance_name_regex}\""
  access_lines        = "${local.service_lines} AND jsonPayload.message=\"request\""
  # server/src/store/guarded.rs writes this once each time the breaker opens.
  breaker_log_marker = "store is down: failing fast"
  # The route is the path's first segment (/candidate, /candidates, /gtg): the metrics' route set.
  route_extractor = "REGEXP_EXTRACT(jsonPayload.path, \"^(/[^/]*)\")"

  notification_channels = concat(
    [for c in google_monitoring_notification_channel.email : c.id],
    [for c in google_monitoring_notification_channel.webhook : c.id],
  )
  # PromQL names of Cloud Monitoring metrics: the domain's dots and the first slash become
  # underscores and a colon ("PromQL for Cloud Monitoring metrics").
  lb_requests = "loadbalancing_googleapis_com:https_request_count{monitored_resource=\"https_lb_rule\",backend_target_name=\"${google_compute_backend_service.rest.name}\"}"
}

# The image's Ops Agent scrapes 127.0.0.1:9090 (packer/files/ops-agent.yaml): another metrics port
# leaves store_operation_errors_total, its alert policy and its panel without data. A check
# block warns at plan time without failing the apply.
check "ops_agent_scrapes_the_metrics_port" {
  assert {
    condition     = var.metrics_port == 9090
    error_message = "The image's Ops Agent scrapes port 9090 (packer/files/ops-agent.yaml); with metrics_port ${var.metrics_port} the store errors policy and the dashboard's store panels get no data."
  }
}

# --- logs ------------------------------------------------------------------------------------

# The deployment's own bucket, so its retention is this root's and not the project's _Default.
resource "google_logging_project_bucket_config" "service" {
  project        = var.project_id
  location       = "global"
  bucket_id      = "${var.name}-service"
  retention_days = var.log_retention_days
  description    = "candidate-server's lines (Ops Agent log `candidates`) of deployment ${var.name}"
  depends_on     = [google_project_service.apis]
}

resource "google_logging_project_sink" "service" {
  name                   = "${var.name}-service"
  destination            = "logging.googleapis.com/${google_logging_project_bucket_config.service.id}"
  filter                 = local.service_lines
  unique_writer_identity = true
  description            = "candidate-server's lines into ${google_logging_project_bucket_config.service.bucket_id}"
}

# ...and not a second time into _Default (project exclusions are the _Default sink's): stored and
# billed once. Log-based metrics count them either way.
resource "google_logging_project_exclusion" "service" {
  name        = "${var.name}-service-in-own-bucket"
  description = "candidate-server's lines go to ${google_logging_project_bucket_config.service.bucket_id} instead"
  filter      = local.service_lines
  depends_on  = [google_logging_project_sink.service]
}

# The agent writes logs and metrics as the instances' account: exactly these two roles.
resource "google_project_iam_member" "log_writer" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.instances.email}"
}

resource "google_project_iam_member" "metric_writer" {
  project = var.project_id
  role    = "roles/monitoring.metricWriter"
  member  = "serviceAccount:${google_service_account.instances.email}"
}

# --- log-based metrics (logging.googleapis.com/user/<name>) -------------------------------------

resource "google_logging_metric" "http_5xx" {
  name        = "${var.name}/http_5xx"
  description = "REST access lines with a 5xx status, by route and status"
  filter      = "${local.access_lines} AND jsonPayload.status>=500"
  label_extractors = {
    route  = local.route_extractor
    status = "EXTRACT(jsonPayload.status)"
  }
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key        = "route"
      value_type = "STRING"
    }
    labels {
      key        = "status"
      value_type = "STRING"
    }
  }
  depends_on = [google_project_service.apis]
}

resource "google_logging_metric" "http_latency" {
  name            = "${var.name}/http_latency"
  description     = "REST access lines' latency_ms, by route"
  filter          = local.access_lines
  value_extractor = "EXTRACT(jsonPayload.latency_ms)"
  label_extractors = {
    route = local.route_extractor
  }
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "ms"
    labels {
      key        = "route"
      value_type = "STRING"
    }
  }
  # 0.1 ms to about 26 s.
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 36
      growth_factor      = 1.5
      scale              = 0.1
    }
  }
  depends_on = [google_project_service.apis]
}

resource "google_logging_metric" "breaker_open" {
  name        = "${var.name}/store_breaker_opened"
  description = "The store breaker opened on an instance (the line server/src/store/guarded.rs writes)"
  filter      = "${local.service_lines} AND jsonPayload.message=\"${local.breaker_log_marker}\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
  }
  depends_on = [google_project_service.apis]
}

# Health check logs record transitions only (both checks have log_config on): a backend of this
# group turning UNHEALTHY.
resource "google_logging_metric" "unhealthy_backends" {
  name        = "${var.name}/backend_unhealthy"
  description = "Health check transitions of the group's instances to UNHEALTHY"
  filter      = "logName=\"projects/${var.project_id}/logs/compute.googleapis.com%2Fhealthchecks\" AND resource.type=\"gce_instance_group\" AND resource.labels.instance_group_name=\"${google_compute_region_instance_group_manager.this.name}\" AND jsonPayload.healthCheckProbeResult.healthState=\"UNHEALTHY\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
  }
  depends_on = [google_project_service.apis]
}

# --- notification channels ---------------------------------------------------------------------

resource "google_monitoring_notification_channel" "email" {
  count        = var.alarm_email != "" ? 1 : 0
  display_name = "${var.name} alarms (email)"
  type         = "email"
  labels       = { email_address = var.alarm_email }
  depends_on   = [google_project_service.apis]
}

resource "google_monitoring_notification_channel" "webhook" {
  count        = nonsensitive(var.alarm_webhook_url != "") ? 1 : 0 # a count may not be sensitive; whether it is set is not
  display_name = "${var.name} alarms (webhook)"
  type         = "webhook_tokenauth"
  labels       = { url = var.alarm_webhook_url }
  depends_on   = [google_project_service.apis]
}

# --- alert policies (each reason is in its documentation and in docs/deploy-gcp.md) -------------

# Reason: 5 % of requests failing for 3 minutes is an outage for clients, not a blip; under 20
# requests a minute nothing alerts (one 5xx of 3 requests is not a rate). PromQL, because a ratio
# with a minimum volume is one expression there.
resource "google_monitoring_alert_policy" "lb_5xx" {
  display_name          = "${var.name}: load balancer 5xx rate"
  combiner              = "OR"
  notification_channels = local.notification_channels
  severity              = "ERROR"
  depends_on            = [google_project_service.apis] # its references are in locals
  documentation {
    content   = "More than ${var.alarm_5xx_percent} % of the REST load balancer's answers (at least 20 a minute) were 5xx for 3 minutes. Runbook: docs/operations.md \"GCP: load balancer 5xx rate\"."
    mime_type = "text/markdown"
  }
  conditions {
    display_name = "5xx > ${var.alarm_5xx_percent} % of >= 20 requests/min for 3 min"
    condition_prometheus_query_language {
      query               = "(100 * sum(rate(${replace(local.lb_requests, "}", ",response_code_class=\"500\"}")}[5m])) / sum(rate(${local.lb_requests}[5m])) > ${var.alarm_5xx_percent}) and on() (sum(rate(${local.lb_requests}[5m])) * 60 >= 20)"
      duration            = "180s"
      evaluation_interval = "60s"
    }
  }
}

# Reason: autohealing replaces an instance after 3 failed checks 10 s apart; a second transition
# to UNHEALTHY within var.unhealthy_host_minutes (5) means the replacement fails too (a bad
# image, the store unreachable from every instance).
resource "google_monitoring_alert_policy" "unhealthy_backends" {
  display_name          = "${var.name}: unhealthy backends"
  combiner              = "OR"
  notification_channels = local.notification_channels
  severity              = "ERROR"
  documentation {
    content   = "The group's instances turned UNHEALTHY more than once in ${var.unhealthy_host_minutes} minutes. Runbook: docs/operations.md \"GCP: unhealthy backends\"."
    mime_type = "text/markdown"
  }
  conditions {
    display_name = "more than 1 UNHEALTHY transition in ${var.unhealthy_host_minutes} min"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.unhealthy_backends.name}\" AND resource.type=\"gce_instance_group\""
      comparison      = "COMPARISON_GT"
      threshold_value = 1
      duration        = "0s"
      aggregations {
        alignment_period     = "${var.unhealthy_host_minutes * 60}s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
}

# Reason: the autoscaler changes status only when it cannot do what its policy says (statusDetails:
# a missing metric, capped at max, a backend it cannot use); every change is worth a look, and the
# change back says it cleared.
resource "google_monitoring_alert_policy" "autoscaler_status" {
  display_name          = "${var.name}: autoscaler status changed"
  combiner              = "OR"
  notification_channels = local.notification_channels
  severity              = "WARNING"
  documentation {
    content   = "The autoscaler ${google_compute_region_autoscaler.this.name} logged a status change (its statusDetails say why). Runbook: docs/operations.md \"GCP: autoscaler status\"."
    mime_type = "text/markdown"
  }
  conditions {
    display_name = "autoscaler status change log entry"
    condition_matched_log {
      filter = "logName=\"projects/${var.project_id}/logs/compute.googleapis.com%2Fautoscaler\" AND jsonPayload.new_status:* AND \"${google_compute_region_autoscaler.this.name}\""
    }
  }
  # Required for log-match conditions.
  alert_strategy {
    notification_rate_limit {
      period = "300s"
    }
    auto_close = "1800s"
  }
}

# Reason: NOT_FOUND is an answer (GetCandidate of a missing name) and OK is success; any other
# code is Firestore failing the call (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED,
# PERMISSION_DENIED...). The store retries a few; more than 5 a minute for 3 minutes is not noise.
resource "google_monitoring_alert_policy" "firestore_errors" {
  display_name          = "${var.name}: Firestore errors"
  combiner              = "OR"
  notification_channels = local.notification_channels
  severity              = "ERROR"
  documentation {
    content   = "Firestore answered more than 5 calls a minute with an error code for 3 minutes. Runbook: docs/operations.md \"GCP: Firestore errors\"."
    mime_type = "text/markdown"
  }
  conditions {
    display_name = "api/request_count with response_code other than OK and NOT_FOUND > 5/min for 3 min"
    condition_threshold {
      filter          = "metric.type=\"firestore.googleapis.com/api/request_count\" AND resource.type=\"firestore.googleapis.com/Database\" AND resource.label.database_id=\"${google_firestore_database.this.name}\" AND NOT metric.label.response_code=one_of(\"OK\", \"NOT_FOUND\")"
      comparison      = "COMPARISON_GT"
      threshold_value = 5
      duration        = "180s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
}

# Reason: the service's own count of failed store calls (store_operation_errors_total, scraped by
# the Ops Agent): a few a minute are retried by clients, more than 5 a minute for 3 minutes is a
# store problem, whichever the store says or not.
resource "google_monitoring_alert_policy" "store_errors" {
  display_name          = "${var.name}: store errors"
  combiner              = "OR"
  notification_channels = local.notification_channels
  severity              = "ERROR"
  depends_on            = [google_project_service.apis] # its references are in locals
  documentation {
    content   = "The instances counted more than 25 failed store calls in 5 minutes (store_operation_errors_total), for 3 minutes. Runbook: docs/operations.md \"GCP: store errors or breaker open\"."
    mime_type = "text/markdown"
  }
  conditions {
    display_name = "store_operation_errors_total > 25 in 5 min, for 3 min"
    condition_prometheus_query_language {
      # Over 5 minutes, not 1: with a 60 s scrape, Prometheus practice is a range of at least four
      # scrape intervals (review); 25 in 5 minutes is the same 5 a minute.
      query               = "sum(increase(store_operation_errors_total{job=\"candidates\",instance_name=~\"${local.instance_name_regex}\"}[5m])) > 25"
      duration            = "180s"
      evaluation_interval = "60s"
    }
  }
}

# Reason: the breaker opens only after 5 store failures in a row on one instance
# (server/src/store/guarded.rs TRIP_AFTER): every opening means the store was down from there.
resource "google_monitoring_alert_policy" "breaker_open" {
  display_name          = "${var.name}: store breaker opened"
  combiner              = "OR"
  notification_channels = local.notification_channels
  severity              = "ERROR"
  documentation {
    content   = "An instance's store breaker opened (5 failed store calls in a row: it fails fast). Runbook: docs/operations.md \"GCP: store errors or breaker open\"."
    mime_type = "text/markdown"
  }
  conditions {
    display_name = "store breaker opened"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.breaker_open.name}\" AND resource.type=\"gce_instance\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
}

# Reason: Cloud NAT carries only apt, the OIDC issuer's keys and nothing of the data path (Firestore
# and the agents' uploads use Private Google Access), so a failed port allocation or a packet
# dropped for want of ports is a fault, never load.
resource "google_monitoring_alert_policy" "nat_errors" {
  display_name          = "${var.name}: Cloud NAT errors"
  combiner              = "OR"
  notification_channels = local.notification_channels
  severity              = "WARNING"
  documentation {
    content   = "Cloud NAT ${google_compute_router_nat.this.name} failed to allocate ports or dropped packets for want of them. Runbook: docs/operations.md \"GCP: Cloud NAT errors\"."
    mime_type = "text/markdown"
  }
  conditions {
    display_name = "NAT allocation failed"
    condition_threshold {
      filter          = "metric.type=\"router.googleapis.com/nat/nat_allocation_failed\" AND resource.type=\"nat_gateway\" AND resource.label.gateway_name=\"${google_compute_router_nat.this.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_COUNT_TRUE"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
  conditions {
    display_name = "NAT dropped sent packets (out of resources)"
    condition_threshold {
      filter          = "metric.type=\"router.googleapis.com/nat/dropped_sent_packets_count\" AND resource.type=\"nat_gateway\" AND resource.label.gateway_name=\"${google_compute_router_nat.this.name}\" AND metric.label.reason=\"OUT_OF_RESOURCES\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
}

# Reason: the stack idles at about $65-85 a month (docs/deploy-gcp.md "Cost"); 80 % of
# var.monthly_budget_usd actually spent, or 100 % forecast, is worth a mail before the bill.
data "google_project" "this" {
  count      = local.budget ? 1 : 0
  project_id = var.project_id
  depends_on = [google_project_service.apis]
}

locals {
  budget = var.billing_account != "" && var.monthly_budget_usd > 0
}

# The Budget API is called against a quota project: with user credentials, that is the ADC quota
# project (`gcloud auth application-default set-quota-project PROJECT`), which must have it on.
resource "google_project_service" "billing_budgets" {
  count              = local.budget ? 1 : 0
  service            = "billingbudgets.googleapis.com"
  disable_on_destroy = false
  depends_on         = [google_project_service.apis]
}

resource "google_billing_budget" "monthly" {
  count           = local.budget ? 1 : 0
  depends_on      = [google_project_service.billing_budgets]
  billing_account = var.billing_account
  display_name    = "${var.name}-monthly"

  budget_filter {
    projects = ["projects/${data.google_project.this[0].number}"]
  }

  amount {
    specified_amount {
      currency_code = "USD"
      units         = tostring(var.monthly_budget_usd)
    }
  }

  threshold_rules {
    threshold_percent = 0.8
  }

  threshold_rules {
    threshold_percent = 1.0
    spend_basis       = "FORECASTED_SPEND"
  }

  all_updates_rule {
    monitoring_notification_channels = local.notification_channels
  }
}

# --- the dashboard -------------------------------------------------------------------------------

resource "google_monitoring_dashboard" "this" {
  dashboard_json = jsonencode({
    displayName = "${var.name} service"
    mosaicLayout = {
      columns = 12
      tiles = [for i, panel in local.dashboard_panels : {
        xPos   = (i % 2) * 6
        yPos   = floor(i / 2) * 4
        width  = 6
        height = 4
        widget = {
          title = panel.title
          xyChart = {
            dataSets = [for series in panel.series : {
              plotType           = "LINE"
              legendTemplate     = series.legend
              timeSeriesQuery    = { timeSeriesFilter = { filter = series.filter, aggregation = series.aggregation } }
              minAlignmentPeriod = "60s"
            }]
          }
        }
      }]
    }
  })
  depends_on = [google_project_service.apis]
}

locals {
  lb_filter       = "metric.type=\"loadbalancing.googleapis.com/https/request_count\" AND resource.type=\"https_lb_rule\" AND resource.label.backend_target_name=\"${google_compute_backend_service.rest.name}\""
  per_minute_rate = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM" }
  # The rehearsal chart's panels: request rate, errors, p50/p99, instances against the target,
  # CPU, store latency and errors.
  dashboard_panels = [
    {
      title = "Requests/s (load balancer)"
      series = [{
        legend      = "requests/s by class"
        filter      = local.lb_filter
        aggregation = merge(local.per_minute_rate, { groupByFields = ["metric.label.response_code_class"] })
      }]
    },
    {
      title = "Errors/s: load balancer 5xx, service 5xx by route, store errors"
      series = [
        {
          legend      = "LB 5xx"
          filter      = "${local.lb_filter} AND metric.label.response_code_class=500"
          aggregation = local.per_minute_rate
        },
        {
          legend      = "service 5xx"
          filter      = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.http_5xx.name}\" AND resource.type=\"gce_instance\""
          aggregation = merge(local.per_minute_rate, { groupByFields = ["metric.label.route"] })
        },
        {
          legend      = "store errors"
          filter      = "metric.type=\"prometheus.googleapis.com/store_operation_errors_total/counter\" AND resource.type=\"prometheus_target\""
          aggregation = local.per_minute_rate
        },
      ]
    },
    {
      title = "Latency p50 / p99 (ms): load balancer total, service by route"
      series = [
        for p in [50, 99] : {
          legend      = "LB p${p}"
          filter      = "metric.type=\"loadbalancing.googleapis.com/https/total_latencies\" AND resource.type=\"https_lb_rule\" AND resource.label.backend_target_name=\"${google_compute_backend_service.rest.name}\""
          aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_PERCENTILE_${p}" }
        }
      ]
    },
    {
      title = "Service latency p99 by route (ms, access lines)"
      series = [{
        legend      = "p99"
        filter      = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.http_latency.name}\" AND resource.type=\"gce_instance\""
        aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_PERCENTILE_99", groupByFields = ["metric.label.route"] }
      }]
    },
    {
      title = "Instances in the group (min ${var.min_replicas}, max ${var.max_replicas})"
      series = [{
        legend      = "instances"
        filter      = "metric.type=\"compute.googleapis.com/instance_group/size\" AND resource.type=\"instance_group\" AND resource.label.instance_group_name=\"${google_compute_region_instance_group_manager.this.name}\""
        aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MEAN", crossSeriesReducer = "REDUCE_SUM" }
      }]
    },
    {
      title = "CPU utilization (average, busiest)"
      series = [
        for reducer in ["REDUCE_MEAN", "REDUCE_MAX"] : {
          legend      = reducer
          filter      = "metric.type=\"compute.googleapis.com/instance/cpu/utilization\" AND resource.type=\"gce_instance\" AND metric.label.instance_name=monitoring.regex.full_match(\"${local.instance_name_regex}\")"
          aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MEAN", crossSeriesReducer = reducer }
        }
      ]
    },
    {
      title = "Firestore: calls/s by response code"
      series = [{
        legend      = "calls/s"
        filter      = "metric.type=\"firestore.googleapis.com/api/request_count\" AND resource.type=\"firestore.googleapis.com/Database\" AND resource.label.database_id=\"${google_firestore_database.this.name}\""
        aggregation = merge(local.per_minute_rate, { groupByFields = ["metric.label.response_code"] })
      }]
    },
    {
      title = "Firestore: store call latency p99 by operation (service side, seconds)"
      series = [{
        legend      = "p99"
        filter      = "metric.type=\"prometheus.googleapis.com/store_operation_duration_seconds/histogram\" AND resource.type=\"prometheus_target\""
        aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_PERCENTILE_99", groupByFields = ["metric.label.operation"] }
      }]
    },
  ]
}

output "log_bucket" {
  description = "Log bucket of the service's lines (Logs Explorer: refine scope to this bucket)."
  value       = google_logging_project_bucket_config.service.id
}

output "dashboard_id" {
  description = "Cloud Monitoring dashboard of the deployment."
  value       = google_monitoring_dashboard.this.id
}

output "notification_channels" {
  description = "Notification channels every alert policy notifies (empty without alarm_email / alarm_webhook_url)."
  value       = local.notification_channels
}
