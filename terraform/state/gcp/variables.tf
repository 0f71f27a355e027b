variable "project_id" {
  description = "The project that holds the state bucket (the deployment's: scripts/gcp/bootstrap-state.sh passes it)."
  type        = string
}

variable "region" {
  description = "The bucket's location: one region (GCP_REGION), the cheapest storage class there."
  type        = string
  default     = "us-central1"
}

variable "name" {
  description = "The stack's name (STACK), in the default bucket name and the labels."
  type        = string
  default     = "candidates"
}

variable "bucket_name" {
  description = "The bucket's name (global); empty for <project_id>-<name>-tfstate."
  type        = string
  default     = ""

  validation {
    condition     = var.bucket_name == "" || can(regex("^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name: 3 to 63 lowercase letters, digits, '_', '.' and '-'."
  }
}

variable "noncurrent_versions" {
  description = "Overwritten state versions kept per object (each apply writes one); older ones are deleted."
  type        = number
  default     = 50

  validation {
    condition     = var.noncurrent_versions >= 1
    error_message = "noncurrent_versions must be at least 1."
  }
}

variable "labels" {
  description = "Extra labels."
  type        = map(string)
  default     = {}
}
