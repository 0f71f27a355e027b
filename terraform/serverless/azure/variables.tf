variable "name" {
  type        = string
  description = "The function app's name prefix and the prefix of every other resource name (several deployments can share a subscription)."
  default     = "candidates-fn"
  validation {
    # The function app is "<name>-<8 hex>" (globally unique; at most 32 characters to avoid host
    # id collisions) and the storage account strips the dashes (3 to 24 lower-case letters and digits).
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.name))
    error_message = "The name must be 2 to 16 lower-case letters, digits and dashes, starting with a letter."
  }
}

variable "location" {
  type        = string
  description = "Azure region (one with Flex Consumption: `az functionapp list-flexconsumption-locations`)."
  default     = "centralus"
}

variable "tags" {
  type        = map(string)
  description = "Extra tags on every resource."
  default     = {}
}

variable "instance_memory_mb" {
  type        = number
  description = "Flex Consumption instance memory: 512, 2048 (the default) or 4096 MB."
  default     = 2048
  validation {
    condition     = contains([512, 2048, 4096], var.instance_memory_mb)
    error_message = "instance_memory_mb is 512, 2048 or 4096."
  }
}

variable "max_instances" {
  type        = number
  description = "The most instances at once: Flex Consumption allows 40 to 1000 (a cap on cost and on Cosmos DB load)."
  default     = 40
  validation {
    condition     = var.max_instances >= 40 && var.max_instances <= 1000
    error_message = "max_instances is 40 to 1000 (Flex Consumption's lowest and highest maximum instance count)."
  }
}

variable "http_concurrency" {
  type        = number
  description = "HTTP requests one instance serves at once (1 to 1000)."
  default     = 16
  validation {
    condition     = var.http_concurrency >= 1 && var.http_concurrency <= 1000
    error_message = "http_concurrency is 1 to 1000."
  }
}

variable "log_retention_days" {
  type        = number
  description = "Retention of Application Insights and its Log Analytics workspace, in days (a value both accept)."
  default     = 365
  validation {
    condition     = contains([30, 60, 90, 120, 180, 270, 365, 550, 730], var.log_retention_days)
    error_message = "log_retention_days is 30, 60, 90, 120, 180, 270, 365, 550 or 730 (Application Insights' choices)."
  }
}

variable "cosmos_database" {
  type        = string
  description = "Cosmos DB database (the server's default)."
  default     = "CandidateDatabase"
}

variable "cosmos_container" {
  type        = string
  description = "Cosmos DB container (the server's default)."
  default     = "Candidates"
}
