# Access (docs/security.md "Deployments"): a deployment is never open for writes. Terraform makes
# the deployment's write key; the instances get only its SHA-256 digest, in the API key file that
# cloud-init writes (modules/instance-config, which also sets CANDIDATES_AUTH_WRITE=scope); the key
# itself is the sensitive output write_key, which the scripts read with
# `terraform output -raw write_key`. This file is the same in the aws, azure and gcp roots (a test
# compares them).

# The key has the shape of `candidatectl key mint`'s: "cand_" and 43 of [A-Za-z0-9_-] (here hex
# digits). uuid() is hashicorp/go-uuid, 16 bytes from crypto/rand with every bit random (it is not
# an RFC 4122 version 4 UUID, whose version and variant bits are fixed), so the 43 hex digits of two
# uuid()s carry 172 random bits (mint's keys: 256). No random provider: the built-in terraform_data
# needs none, so every root still initialises offline. uuid() is new on every plan; ignore_changes
# keeps the first value (the uuid function's documentation: "with care in conjunction with the
# ignore_changes lifecycle meta-argument"), so the key changes only when the resource is replaced:
#   terraform apply -replace=terraform_data.write_key        (rotation: docs/deploy-<cloud>.md)
# The key is held in `triggers_replace`, not `input`: terraform_data copies `input` to `output`,
# and that copy is unmarked after apply, so `terraform show`, `state show`, `plan -replace` and
# `plan -destroy` printed the key in plain text (Terraform 1.11, reproduced by a review).
# `triggers_replace` has no copy; sensitive() makes the state mark it, so every plan and show
# prints `(sensitive value)` and Terraform refuses any output of it that is not `sensitive = true`.
resource "terraform_data" "write_key" {
  triggers_replace = sensitive("cand_${substr(replace("${uuid()}${uuid()}", "-", ""), 0, 43)}")

  lifecycle {
    ignore_changes = [triggers_replace]
  }
}

locals {
  # The instances' key file: the deployment key's digest with both scopes, then the operator's own
  # lines. A digest is not a secret (the server itself keeps nothing else, and nobody turns a
  # SHA-256 back into 172 random bits), so it is nonsensitive: user data stays readable in plans.
  api_key_lines = concat(
    ["${nonsensitive(sha256(terraform_data.write_key.triggers_replace))} candidates.read,candidates.write deploy"],
    var.api_key_lines,
  )
}

output "write_key" {
  description = "The deployment's API key with candidates.read and candidates.write: `export CANDIDATES_API_KEY=$(terraform output -raw write_key)`. Printed only when asked for by name; it is in the state in plain text, so keep the state private."
  value       = terraform_data.write_key.triggers_replace
  sensitive   = true
}

variable "auth_read" {
  type        = string
  description = "Who may read (GET /candidate, /candidates, /gtg?details; gRPC reads): anyone (the default: public reads), authenticated (any valid key or token) or scope (candidates.read). Writes always need candidates.write; health checks never need a credential."
  default     = "anyone"
}

variable "api_key_lines" {
  type        = list(string)
  description = "More key file lines besides the deployment key's, e.g. `candidatectl key mint --name ci` prints one: `<sha256 hex> <scopes> <name>`, never the key itself. For your own clients, and to keep an old key valid while a rotation rolls out."
  default     = []
}

variable "oidc_issuer" {
  type        = string
  description = "Also accept OIDC bearer tokens from this HTTPS issuer (docs/security.md); empty: keys only. Needs oidc_audience."
  default     = ""
}

variable "oidc_audience" {
  type        = string
  description = "The audience OIDC tokens must be issued for (with oidc_issuer)."
  default     = ""
}

variable "oidc_scope_claim" {
  type        = string
  description = "The token claim holding the scopes (scope, scp, roles); empty: the server's default, scope."
  default     = ""
}
