# What every cloud's instances are told at first boot: candidate-server's environment file
# (the settings all deployments share, plus the store's), written by cloud-init before
# candidates.service starts, and any extra files and units (the clouds' drain watchers).
# No providers: it only renders text, so it works offline too.

terraform {
  required_version = ">= 1.9"
}

variable "deployment" {
  type        = string
  description = "Written into the env file's header, e.g. aws/candidates."
}

variable "store_env" {
  type        = map(string)
  description = "The store's settings and the metadata flavour (CANDIDATES_STORE, ...); they win over the shared ones."
}

variable "http_port" {
  type        = number
  description = "REST listener port."
}

variable "grpc_port" {
  type        = number
  description = "gRPC listener port."
}

variable "metrics_port" {
  type        = number
  description = "/metrics listener port (no load balancer forwards it)."
}

variable "drain_period_seconds" {
  type        = number
  description = "CANDIDATES_DRAIN_PERIOD."
}

variable "shutdown_grace_seconds" {
  type        = number
  description = "CANDIDATES_SHUTDOWN_GRACE."

  # The image's unit stops the service with TimeoutStopSec=60 (packer/files/candidates.service):
  # a drain and grace that do not fit with 5 s to spare would be cut short by SIGKILL.
  validation {
    condition     = var.drain_period_seconds + var.shutdown_grace_seconds <= 55
    error_message = "drain_period_seconds + shutdown_grace_seconds must be at most 55: the unit's TimeoutStopSec (60 s) would SIGKILL the service mid-drain."
  }
}

variable "files" {
  type = list(object({
    path        = string
    permissions = string
    content     = string
  }))
  description = "Extra files for cloud-init to write (root-owned)."
  default     = []
}

variable "enable_units" {
  type        = list(string)
  description = "systemd units among those files to enable and start."
  default     = []
}

locals {
  # Every key is a candidate-server flag's environment name (README "Configuration").
  env = merge({
    CANDIDATES_HTTP_ADDR      = "0.0.0.0:${var.http_port}"
    CANDIDATES_GRPC_ADDR      = "0.0.0.0:${var.grpc_port}"
    CANDIDATES_METRICS_ADDR   = "0.0.0.0:${var.metrics_port}"
    CANDIDATES_DRAIN_PERIOD   = "${var.drain_period_seconds}s"
    CANDIDATES_SHUTDOWN_GRACE = "${var.shutdown_grace_seconds}s"
    CANDIDATES_LOG_FORMAT     = "json"
    # The gRPC load balancers balance connections: recycling them every ~5 minutes lets
    # existing clients reach instances a scale-out added.
    CANDIDATES_GRPC_MAX_CONNECTION_AGE = "5m"
  }, var.store_env)
}

output "env" {
  description = "The environment file's keys and values."
  value       = local.env
}

output "user_data" {
  description = "The cloud-init document (#cloud-config), not yet base64-encoded."
  value = templatefile("${path.module}/cloud-init.yaml.tftpl", {
    deployment   = var.deployment
    env          = local.env
    files        = var.files
    enable_units = var.enable_units
  })
}
