variable "region" {
  description = "Region of the state bucket (the deployment's region: scripts/aws/bootstrap-state.sh passes AWS_REGION)."
  type        = string
  default     = "us-east-2"
}

variable "name" {
  description = "The stack's name (STACK), in the default bucket name and the tags."
  type        = string
  default     = "candidates"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,30}$", var.name))
    error_message = "name: lowercase letters, digits and '-', at most 31 characters (it goes into a bucket name)."
  }
}

variable "bucket_name" {
  description = "The state bucket's name; empty for <name>-tfstate-<account id>-<region> (bucket names are global)."
  type        = string
  default     = ""

  validation {
    condition     = var.bucket_name == "" || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name: 3 to 63 lowercase letters, digits, '.' and '-' (S3 bucket naming rules)."
  }
}

variable "noncurrent_version_days" {
  description = "Days an overwritten state version is kept (each apply writes one); what `terraform state pull` of an old version can go back to."
  type        = number
  default     = 90

  validation {
    condition     = var.noncurrent_version_days >= 1
    error_message = "noncurrent_version_days must be at least 1."
  }
}

variable "tags" {
  description = "Extra tags for the bucket."
  type        = map(string)
  default     = {}
}
