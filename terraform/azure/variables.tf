variable "name" {
  type        = string
  description = "Prefix of every resource name."
  default     = "candidates"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "The name must be 2 to 21 lower-case letters, digits and dashes (Cosmos DB account names are strict)."
  }
}

variable "location" {
  type        = string
  description = "Azure region (the original ran in Central US)."
  default     = "centralus"
}

variable "zones" {
  type        = list(string)
  description = "Availability zones for the scale set, the gateway and their public addresses."
  default     = ["1", "2", "3"]
}

variable "tags" {
  type        = map(string)
  description = "Extra tags on every resource."
  default     = {}
}

# --- network ---------------------------------------------------------------------------------

variable "vnet_cidr" {
  type        = string
  description = "Virtual network address space."
  default     = "10.0.0.0/16"
}

variable "app_subnet_cidr" {
  type        = string
  description = "Subnet of the instances and the internal gRPC load balancer."
  default     = "10.0.0.0/24"
}

variable "gateway_subnet_cidr" {
  type        = string
  description = "Subnet of the Application Gateway (it needs one of its own)."
  default     = "10.0.1.0/24"
}

variable "lb_ingress_cidrs" {
  type        = list(string)
  description = "Address ranges that may reach the Application Gateway on 80; empty means everyone (the service tag Internet)."
  default     = []
  validation {
    # NSG rules take service tags only in the singular prefix; this list goes to the plural one.
    condition     = alltrue([for c in var.lb_ingress_cidrs : can(cidrhost(c, 0))])
    error_message = "lb_ingress_cidrs holds CIDR ranges only (no service tags such as Internet: leave the list empty for everyone)."
  }
}

variable "grpc_client_cidrs" {
  type        = list(string)
  description = "Address ranges that may reach gRPC on 50051; empty means the virtual network."
  default     = []
  validation {
    condition     = alltrue([for c in var.grpc_client_cidrs : can(cidrhost(c, 0))])
    error_message = "grpc_client_cidrs holds CIDR ranges only (an NSG's plural prefix list takes no service tags)."
  }
}

variable "metrics_scrape_cidrs" {
  type        = list(string)
  description = "Address ranges that may scrape /metrics on the instances; empty means the virtual network."
  default     = []
  validation {
    condition     = alltrue([for c in var.metrics_scrape_cidrs : can(cidrhost(c, 0))])
    error_message = "metrics_scrape_cidrs holds CIDR ranges only (an NSG's plural prefix list takes no service tags)."
  }
}

# --- HTTPS ----------------------------------------------------------------------------------
# Azure has no free managed certificate for an Application Gateway: the certificate is a PFX in a
# Key Vault of this subscription, read by a user-assigned identity on the gateway (azurerm
# application_gateway ssl_certificate; "TLS termination with Key Vault certificates").

variable "domain" {
  type        = string
  description = "Host name of the REST API, which the certificate is for (with tls_certificate_key_vault_secret_id). The HTTPS listener answers this name only and rest_url is https://<domain>; create its DNS record (CNAME to the output gateway_fqdn, or A to gateway_ip). Empty: plain HTTP."
  default     = ""
  validation {
    condition     = var.domain == "" || (length(var.domain) <= 253 && can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?[.])+[a-z][a-z0-9-]{0,61}[a-z0-9]$", var.domain)))
    error_message = "domain is one fully qualified host name in lower case (api.example.com): no scheme, path, wildcard or trailing dot."
  }
  validation {
    condition     = (var.domain == "") == (var.tls_certificate_key_vault_secret_id == "")
    error_message = "HTTPS needs both domain and tls_certificate_key_vault_secret_id (or neither)."
  }
}

variable "tls_certificate_key_vault_secret_id" {
  type        = string
  description = "Versionless secret id of the certificate (PFX) in Key Vault, https://<vault>.vault.azure.net/secrets/<name>: with domain, an HTTPS listener on 443 (TLS 1.2 or later) and port 80 redirecting to it. Versionless, so that the gateway picks up a renewed certificate (it polls Key Vault every 4 hours). The vault must be in this subscription. Empty: plain HTTP on 80."
  default     = ""
  validation {
    condition     = var.tls_certificate_key_vault_secret_id == "" || can(regex("^https://[0-9A-Za-z-]{3,24}[.]vault[.][a-z0-9.-]+/secrets/[0-9A-Za-z-]{1,127}/?$", var.tls_certificate_key_vault_secret_id))
    error_message = "tls_certificate_key_vault_secret_id must be a versionless Key Vault secret id, https://<vault>.vault.azure.net/secrets/<name> (no version after the name: a pinned version is never renewed)."
  }
}

variable "tls_key_vault_id" {
  type        = string
  description = "Resource id of the Key Vault holding the certificate (/subscriptions/.../providers/Microsoft.KeyVault/vaults/<vault>): Terraform lets the gateway's identity read the certificate's secret there (tls_key_vault_authorization)."
  default     = ""
  validation {
    condition     = var.tls_key_vault_id == "" || can(regex("(?i)^/subscriptions/[0-9a-f-]{36}/resourceGroups/[^/]+/providers/Microsoft[.]KeyVault/vaults/[0-9a-z-]{3,24}$", var.tls_key_vault_id))
    error_message = "tls_key_vault_id must be a Key Vault resource id: /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.KeyVault/vaults/<vault>."
  }
  validation {
    # The vault named in the secret id is the vault given here.
    condition     = (var.tls_key_vault_id == "") == (var.tls_certificate_key_vault_secret_id == "") && (var.tls_key_vault_id == "" || lower(element(split("/", var.tls_key_vault_id), 8)) == lower(split(".", trimprefix(var.tls_certificate_key_vault_secret_id, "https://"))[0]))
    error_message = "tls_key_vault_id must be set exactly when tls_certificate_key_vault_secret_id is, and name the vault of that secret id."
  }
}

variable "tls_key_vault_authorization" {
  type        = string
  description = "How the vault authorizes reads: rbac (Azure role-based access control: the gateway's identity gets Key Vault Secrets User on the certificate's secret alone; the deployer needs Microsoft.Authorization/roleAssignments/write there) or access_policy (a vault access policy with Get on secrets)."
  default     = "rbac"
  validation {
    condition     = contains(["rbac", "access_policy"], var.tls_key_vault_authorization)
    error_message = "tls_key_vault_authorization is rbac or access_policy."
  }
}

variable "tls_rbac_propagation_seconds" {
  type        = number
  description = "With tls_key_vault_authorization = rbac: how long apply waits, once, between making the gateway's Key Vault role assignment and creating the gateway, which reads the certificate at once and fails without access. Key Vault takes up to 600 s to apply a new role assignment (Azure RBAC for Key Vault, Known limits). 0: no wait (a first apply may then fail, and the next one replaces the failed gateway)."
  default     = 600
  validation {
    condition     = var.tls_rbac_propagation_seconds >= 0 && var.tls_rbac_propagation_seconds <= 1800 && floor(var.tls_rbac_propagation_seconds) == var.tls_rbac_propagation_seconds
    error_message = "tls_rbac_propagation_seconds is a whole number of seconds from 0 to 1800."
  }
}

# --- image and instances ----------------------------------------------------------------------

variable "image_id" {
  type        = string
  description = "Managed image id to run. Empty: the newest azure-arm build in var.packer_manifest."
  default     = ""
}

variable "packer_manifest" {
  type        = string
  description = "packer-manifest.json written by `packer build` (read when image_id is empty); empty means packer/packer-manifest.json."
  default     = ""
}

variable "vm_size" {
  type        = string
  description = "Instance size. B-series is cheap, but its CPU credits distort the CPU scaling signal under sustained load."
  default     = "Standard_B2s"
}

variable "admin_ssh_public_key" {
  type        = string
  description = "SSH public key (OpenSSH format, ssh-rsa of at least 2048 bits or ssh-ed25519) for the admin user of the instances and the validation host. Required: a key Terraform generated would keep its private half unencrypted in the state. No port 22 is open anyway: use `az vmss run-command`. scripts/azure/apply.sh passes ADMIN_SSH_PUBLIC_KEY or ~/.ssh/id_ed25519.pub / id_rsa.pub."
  validation {
    condition     = can(regex("^(ssh-rsa|ssh-ed25519) [A-Za-z0-9+/=]+( .*)?$", trimspace(var.admin_ssh_public_key)))
    error_message = "admin_ssh_public_key must be one OpenSSH public key line (ssh-rsa or ssh-ed25519), e.g. the contents of ~/.ssh/id_ed25519.pub."
  }
}

variable "rolling_upgrade_max_surge" {
  type        = bool
  description = "Rolling upgrades create the new instances before deleting old ones (MaxSurge). Off by default: it needs the MaxSurgeRollingUpgrade feature registered on the subscription (README \"Deploy to Azure\", prerequisites); apply.sh checks the registration when it is on."
  default     = false
}

variable "validation_host" {
  type        = bool
  description = "A small VM outside every backend pool from which validate.sh checks gRPC through the internal load balancer (a backend cannot reach its own load balancer's frontend). About 8 USD a month; destroy removes it."
  default     = true
}

variable "validation_host_size" {
  type        = string
  description = "Size of the validation host."
  default     = "Standard_B1s"
}

variable "encryption_at_host" {
  type        = bool
  description = "Encrypt temp disks and caches at the host too (needs the EncryptionAtHost feature registered on the subscription)."
  default     = false
}

# --- the service ------------------------------------------------------------------------------

variable "http_port" {
  type        = number
  description = "REST port of candidate-server on the instances (the image's default)."
  default     = 8000
}

variable "grpc_port" {
  type        = number
  description = "gRPC port of candidate-server on the instances (the image's default)."
  default     = 50051
}

variable "metrics_port" {
  type        = number
  description = "Port of /metrics on the instances (CANDIDATES_METRICS_ADDR); no load balancer forwards it."
  default     = 9090
}

variable "health_check_path" {
  type        = string
  description = "Health probe path: 200 when serving, 503 while starting or draining."
  default     = "/gtg"
}

variable "probe_interval" {
  type        = number
  description = "Seconds between health probes (the original's Application Gateway probe: 5)."
  default     = 5
}

variable "probe_unhealthy_threshold" {
  type        = number
  description = "Failed probes before an instance leaves rotation (the original used 1, which drops an instance on one slow answer)."
  default     = 2
}

variable "drain_period_seconds" {
  type        = number
  description = "How long the service keeps serving after SIGTERM while /gtg answers 503 (CANDIDATES_DRAIN_PERIOD)."
  default     = 25
}

variable "shutdown_grace_seconds" {
  type        = number
  description = "Then how long in-flight requests may take (CANDIDATES_SHUTDOWN_GRACE)."
  default     = 10
}

# --- Cosmos DB --------------------------------------------------------------------------------

variable "cosmos_serverless" {
  type        = bool
  description = "Serverless (pay per request unit, the original's choice) instead of provisioned throughput."
  default     = true
}

variable "cosmos_max_throughput" {
  type        = number
  description = "With cosmos_serverless = false: autoscale maximum RU/s of the database."
  default     = 1000
}

variable "cosmos_database" {
  type        = string
  description = "SQL database name (the original's)."
  default     = "CandidateDatabase"
}

variable "cosmos_container" {
  type        = string
  description = "Container name (the original's); partition key /CandidateName."
  default     = "Candidates"
}

# --- scaling ----------------------------------------------------------------------------------

variable "instances_min" {
  type        = number
  description = "Fewest instances. At least 3: a rolling image upgrade takes one out at a time in place (MaxSurge is a preview), and 2 keep serving."
  default     = 3
  validation {
    condition     = var.instances_min >= 3
    error_message = "instances_min must be at least 3, so that 2 instances serve while a rolling upgrade replaces one in place."
  }
}

variable "instances_default" {
  type        = number
  description = "Instances when autoscale has no metrics, and at creation."
  default     = 3
}

variable "instances_max" {
  type        = number
  description = "Most instances."
  default     = 5
}

variable "target_requests_per_instance_per_second" {
  type        = number
  description = "Requests per second per healthy instance through the Application Gateway above which the scale set adds an instance (same meaning in every cloud's root). Set by scripts/azure/calibrate.sh (calibration.auto.tfvars.json); the default is the uncalibrated starting point of README \"Scaling\"."
  default     = 200
  validation {
    condition     = var.target_requests_per_instance_per_second >= 1
    error_message = "target_requests_per_instance_per_second must be at least 1."
  }
}

variable "scale_out_cpu" {
  type        = number
  description = "Add an instance when average CPU over 5 minutes is above this (%)."
  default     = 60
}

variable "scale_in_cpu" {
  type        = number
  description = "Remove an instance when average CPU over 10 minutes is below this (%). At most half of scale_out_cpu, so removing one of n >= 2 instances cannot push the rest over it (the original used 60 for both and flapped)."
  default     = 30
  validation {
    condition     = var.scale_in_cpu > 0
    error_message = "scale_in_cpu must be positive."
  }
}

variable "api_explorer" {
  type        = bool
  default     = false
  description = "Serve the API explorer (Swagger UI) at /docs on the public REST endpoint. Off by default: it follows the read policy like /openapi.json, and a deployment's API reference is docs/."
}
