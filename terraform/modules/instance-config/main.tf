# What every cloud's instances are told at first boot: candidate-server's environment file
# (the settings all deployments share, the store's, and the access policy), the API key file
# (digests only), written by cloud-init before candidates.service starts, and any extra files and
# units (the clouds' drain watchers). No providers: it only renders text, so it works offline too.

terraform {
  required_version = ">= 1.9"
}

variable "deployment" {
  type        = string
  description = "Written into the env file's header, e.g. aws/candidates."
}

variable "store_env" {
  type        = map(string)
  description = "The store's settings and the metadata flavour (CANDIDATES_STORE, ...); they win over the shared ones, not over the access settings."
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

# --- access (docs/security.md "Deployments") ----------------------------------------------------

variable "api_key_lines" {
  type        = list(string)
  description = "The API key file's lines, `<SHA-256 hex of a key> <scopes> <name>` (what `candidatectl key mint` prints as the key file line): digests only, never a key. cloud-init writes them to /etc/candidates/api-keys."

  # The server refuses a whole file with a bad line (edge/src/auth/keys.rs), so a bad line would
  # leave every instance with no keys at all: caught here instead. A key pasted where its digest
  # belongs (cand_...) fails the first field, so it never reaches user data.
  validation {
    condition     = alltrue([for line in var.api_key_lines : can(regex("^[0-9a-fA-F]{64} candidates\\.(read|write)(,candidates\\.(read|write))? [A-Za-z0-9._-]{1,64}$", line))])
    error_message = "Each API key line is `<64 hex digits> <scopes> <name>`: the SHA-256 digest of a key (never the key), candidates.read and/or candidates.write joined by a comma, and a name of 1 to 64 of [A-Za-z0-9._-]."
  }
  validation {
    condition     = length(distinct([for line in var.api_key_lines : lower(split(" ", line)[0])])) == length(var.api_key_lines)
    error_message = "Two API key lines hold the same digest: the server refuses the whole file."
  }
}

variable "auth_read" {
  type        = string
  description = "Who may read (CANDIDATES_AUTH_READ): anyone, authenticated or scope (candidates.read). Writes always need candidates.write."
  default     = "anyone"
  validation {
    condition     = contains(["anyone", "authenticated", "scope"], var.auth_read)
    error_message = "auth_read is anyone, authenticated or scope."
  }
}

# OIDC bearer tokens besides the keys (docs/security.md). Each value becomes one line of the env
# file, so none may hold whitespace, quotes or a backslash (a newline would add a setting).
variable "oidc_issuer" {
  type        = string
  description = "CANDIDATES_OIDC_ISSUER: an HTTPS issuer whose tokens are accepted too; empty for none."
  default     = ""
  validation {
    condition     = var.oidc_issuer == "" || can(regex("^https://[A-Za-z0-9._~:/?#@!&+,;=%-]+$", var.oidc_issuer))
    error_message = "oidc_issuer is an https:// URL (no spaces or quotes), or empty."
  }
  validation {
    condition     = (var.oidc_issuer == "") == (var.oidc_audience == "")
    error_message = "oidc_issuer and oidc_audience go together (the server refuses an issuer without an audience)."
  }
}

variable "oidc_audience" {
  type        = string
  description = "CANDIDATES_OIDC_AUDIENCE: the audience tokens must be issued for; empty with no issuer."
  default     = ""
  validation {
    condition     = can(regex("^[A-Za-z0-9._~:/?#@!&+,;=%-]*$", var.oidc_audience))
    error_message = "oidc_audience holds no spaces, quotes or backslashes."
  }
}

variable "oidc_scope_claim" {
  type        = string
  description = "CANDIDATES_OIDC_SCOPE_CLAIM: the token claim holding the scopes; empty for the server's default (scope)."
  default     = ""
  validation {
    condition     = can(regex("^[A-Za-z0-9._:/-]*$", var.oidc_scope_claim))
    error_message = "oidc_scope_claim is a claim name such as scope, scp or roles."
  }
}

variable "api_explorer" {
  type        = bool
  default     = false
  description = "CANDIDATES_API_EXPLORER: Swagger UI at /docs on the REST listener. Off in deployments (it is on by default in local runs): the API's reference is docs/ and /openapi.json."
}

locals {
  api_keys_file = "/etc/candidates/api-keys"

  # Never open for writes: a key file, and writes need a credential with candidates.write. Merged
  # last, so no store setting can loosen it.
  access_env = merge({
    CANDIDATES_API_KEYS_FILE = local.api_keys_file
    CANDIDATES_AUTH_WRITE    = "scope"
    CANDIDATES_AUTH_READ     = var.auth_read
    }, {
    for key, value in {
      CANDIDATES_OIDC_ISSUER      = var.oidc_issuer
      CANDIDATES_OIDC_AUDIENCE    = var.oidc_audience
      CANDIDATES_OIDC_SCOPE_CLAIM = var.oidc_scope_claim
    } : key => value if value != ""
  })

  # Every key is a candidate-server flag's environment name (README "Configuration").
  env = merge({
    CANDIDATES_HTTP_ADDR      = "0.0.0.0:${var.http_port}"
    CANDIDATES_GRPC_ADDR      = "0.0.0.0:${var.grpc_port}"
    CANDIDATES_METRICS_ADDR   = "0.0.0.0:${var.metrics_port}"
    CANDIDATES_DRAIN_PERIOD   = "${var.drain_period_seconds}s"
    CANDIDATES_SHUTDOWN_GRACE = "${var.shutdown_grace_seconds}s"
    CANDIDATES_LOG_FORMAT     = "json"
    CANDIDATES_API_EXPLORER   = tostring(var.api_explorer)
    # The gRPC load balancers balance connections: recycling them every ~5 minutes lets
    # existing clients reach instances a scale-out added.
    CANDIDATES_GRPC_MAX_CONNECTION_AGE = "5m"
  }, var.store_env, local.access_env)
}

output "env" {
  description = "The environment file's keys and values."
  value       = local.env
}

output "user_data" {
  description = "The cloud-init document (#cloud-config), not yet base64-encoded."
  value = templatefile("${path.module}/cloud-init.yaml.tftpl", {
    deployment    = var.deployment
    env           = local.env
    api_keys_file = local.api_keys_file
    api_key_lines = var.api_key_lines
    files         = var.files
    enable_units  = var.enable_units
  })
}
