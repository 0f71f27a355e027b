variable "name" {
  type        = string
  description = "The function's name and the prefix of every other resource name (several deployments can share an account)."
  default     = "candidates-fn"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,40}$", var.name))
    error_message = "The name must be 2 to 41 lower-case letters, digits and dashes (IAM role name prefixes are at most 38 characters with the suffix Terraform adds)."
  }
}

variable "region" {
  type        = string
  description = "AWS region."
  default     = "us-east-2"
}

variable "tags" {
  type        = map(string)
  description = "Extra tags on every resource."
  default     = {}
}

variable "package" {
  type        = string
  description = "The function's zip: `bootstrap` (target/release of candidates-lambda) at its root, as scripts/aws/serverless-build.sh makes it (dist/lambda/bootstrap-<arch>.zip)."
}

variable "architecture" {
  type        = string
  description = "arm64 (Graviton: about 20% cheaper per GB-second than x86_64, AWS Lambda pricing) or x86_64. Must match the binary in `package`: serverless-build.sh builds for this machine's architecture unless told otherwise."
  default     = "arm64"
  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture is arm64 or x86_64."
  }
}

variable "memory_mb" {
  type        = number
  description = "Memory (128 to 10240 MB); Lambda gives CPU in proportion (one full vCPU at 1769 MB)."
  default     = 512
  validation {
    condition     = var.memory_mb >= 128 && var.memory_mb <= 10240
    error_message = "memory_mb is 128 to 10240."
  }
}

variable "timeout_seconds" {
  type        = number
  description = "The longest an invocation may run (1 to 900 s); a streamed GET /candidates of a large table needs more than a single read."
  default     = 30
  validation {
    condition     = var.timeout_seconds >= 1 && var.timeout_seconds <= 900
    error_message = "timeout_seconds is 1 to 900."
  }
}

variable "reserved_concurrency" {
  type        = number
  description = "Reserved concurrent executions: the most environments at once (a cap on cost and on DynamoDB load); -1 (the default) for none, the account's unreserved pool. Lambda refuses a reservation that leaves fewer than 100 unreserved executions in the account (new accounts often have a limit of 10 or 50): scripts/aws/serverless-apply.sh checks RESERVED_CONCURRENCY against the account first."
  default     = -1
  validation {
    condition     = var.reserved_concurrency == -1 || var.reserved_concurrency >= 1
    error_message = "reserved_concurrency is -1 (unreserved) or at least 1."
  }
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the function's log group (a value CloudWatch Logs accepts, e.g. 30, 90, 365)."
  default     = 365
}

variable "table_name" {
  type        = string
  description = "The DynamoDB table; empty: <name>-candidates."
  default     = ""
}

variable "table_deletion_protection" {
  type        = bool
  description = "DynamoDB deletion protection: `terraform destroy` cannot delete the table while it is on."
  default     = false
}

variable "table_kms_key_arn" {
  type        = string
  description = "A customer managed KMS key for the table; empty: the AWS managed key."
  default     = ""
}
