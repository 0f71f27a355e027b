variable "project_id" {
  type        = string
  description = "Google Cloud project to deploy into."
}

variable "name" {
  type        = string
  description = "Prefix of every resource name."
  default     = "candidates"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "The name must be 2 to 21 lower-case letters, digits and dashes."
  }
}

variable "region" {
  type        = string
  description = "Region of the instance group, the subnet and the internal load balancer (the original's)."
  default     = "us-central1"
}

variable "zones" {
  type        = list(string)
  description = "Zones the regional instance group spreads over; empty means the first three UP zones of the region (by name)."
  default     = []
}

variable "labels" {
  type        = map(string)
  description = "Extra labels on every resource."
  default     = {}
}

# --- network ---------------------------------------------------------------------------------

variable "subnet_cidr" {
  type        = string
  description = "Subnet of the instances and the internal load balancer."
  default     = "10.0.0.0/24"
}

variable "grpc_client_cidrs" {
  type        = list(string)
  description = "Who may reach gRPC on 50051; empty means the subnet."
  default     = []
}

variable "metrics_scrape_cidrs" {
  type        = list(string)
  description = "Who may scrape /metrics on the instances; empty means the subnet."
  default     = []
}

variable "iap_ssh" {
  type        = bool
  description = "Admit SSH from Identity-Aware Proxy's range only (OS Login decides who); validate uses it for the gRPC check from inside."
  default     = true
}

variable "validation_host" {
  type        = bool
  description = "A small VM outside the instance group from which validate.sh checks gRPC through the internal load balancer (a backend reaching it is answered by itself). About 7 USD a month (e2-micro); destroy removes it."
  default     = true
}

variable "validation_host_machine_type" {
  type        = string
  description = "Machine type of the validation host."
  default     = "e2-micro"
}

# --- HTTPS ----------------------------------------------------------------------------------

variable "domains" {
  type        = list(string)
  description = "Host names of the REST API. Set: a Google-managed certificate for them, HTTPS on 443 (TLS 1.2 or later), port 80 redirecting to HTTPS, and rest_url is https://<first domain>. Each name needs a DNS A record pointing at the output rest_address before Google can issue the certificate (docs/deploy-gcp.md, HTTPS). Empty: plain HTTP on 80 only."
  default     = []
  # Google-managed certificates (google_compute_managed_ssl_certificate managed.domains): at most
  # 100 names, no wildcards; each a host name, not a URL.
  validation {
    condition     = length(var.domains) <= 100
    error_message = "A Google-managed certificate covers at most 100 domains."
  }
  validation {
    condition     = alltrue([for d in var.domains : !strcontains(d, "://") && !strcontains(d, "/")])
    error_message = "domains are host names (api.example.com), not URLs: no scheme and no path."
  }
  validation {
    condition     = alltrue([for d in var.domains : !strcontains(d, "*")])
    error_message = "Google-managed certificates do not support wildcard domains: list each host name."
  }
  validation {
    condition     = alltrue([for d in var.domains : length(d) <= 253 && can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?[.])+[a-z][a-z0-9-]{0,61}[a-z0-9]$", d))])
    error_message = "Each domain must be a fully qualified host name in lower case, without a trailing dot (api.example.com)."
  }
  validation {
    condition     = length(distinct(var.domains)) == length(var.domains)
    error_message = "domains lists a host name twice."
  }
}

variable "certificate_revision" {
  type        = number
  description = "Raise it (1, 2, ...) to replace the Google-managed certificate with a new one of the same domains, under a new name: for a certificate whose status is PROVISIONING_FAILED_PERMANENTLY or RENEWAL_FAILED, which Google never retries. `terraform apply -replace` cannot do it: the replacement is created before the old one is destroyed, under the same name. 0: the name is NAME-<digest of the domains>."
  default     = 0
  validation {
    condition     = var.certificate_revision >= 0 && var.certificate_revision <= 9999 && floor(var.certificate_revision) == var.certificate_revision
    error_message = "certificate_revision is a whole number from 0 to 9999."
  }
}

# --- image and instances ----------------------------------------------------------------------

variable "image" {
  type        = string
  description = "Image to run (name or self link). Empty: the newest googlecompute build in var.packer_manifest, else the newest image of var.image_family."
  default     = ""
}

variable "image_family" {
  type        = string
  description = "Image family Packer publishes to (packer/candidates.pkr.hcl)."
  default     = "candidates"
}

variable "packer_manifest" {
  type        = string
  description = "packer-manifest.json written by `packer build`; empty means packer/packer-manifest.json."
  default     = ""
}

variable "machine_type" {
  type        = string
  description = "Machine type. Shared-core e2 types burst, which distorts the CPU scaling signal under sustained load."
  default     = "e2-small"
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
  description = "Health check path: 200 when serving, 503 while starting or draining."
  default     = "/gtg"
}

variable "health_check_interval" {
  type        = number
  description = "Seconds between load balancer health checks (the original's: 5)."
  default     = 5
}

variable "unhealthy_threshold" {
  type        = number
  description = "Failed checks before a backend leaves rotation (the original's: 2)."
  default     = 2
}

variable "autohealing_initial_delay" {
  type        = number
  description = "Seconds after boot before autohealing acts. The service is ready within milliseconds of start once its store opens; a first deployment's Firestore grant can take up to ~7 minutes to propagate (IAM), during which the server serves /gtg 503 and retries: 480 s covers that and the VM's boot, so first instances are not recreated in a loop while the grant spreads."
  default     = 480
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

# --- Firestore --------------------------------------------------------------------------------

variable "firestore_database" {
  type        = string
  description = "Firestore database id (a named database: Terraform owns it whole, and IAM can be scoped to it)."
  default     = "candidates"
}

variable "firestore_location" {
  type        = string
  description = "Firestore location (the original's us-central1; nam5 for multi-region)."
  default     = "us-central1"
}

variable "firestore_collection" {
  type        = string
  description = "Collection of candidates (the original's)."
  default     = "candidates"
}

variable "firestore_delete_protection" {
  type        = bool
  description = "Refuse to delete the database. Off so that destroy works in one step; turn on in production."
  default     = false
}

# --- scaling ----------------------------------------------------------------------------------

variable "min_replicas" {
  type        = number
  description = "Fewest instances."
  default     = 2
}

variable "max_replicas" {
  type        = number
  description = "Most instances."
  default     = 4
}

variable "cpu_target" {
  type        = number
  description = "Target average CPU utilisation of the group (0-1): the backstop signal (and the one `STRESS=1` scale-demo drives)."
  default     = 0.6
}

variable "target_requests_per_instance_per_second" {
  type        = number
  description = "Requests per second per instance through the REST load balancer at which the group scales out (same meaning in every cloud's root). Set by scripts/gcp/calibrate.sh (calibration.auto.tfvars.json); the default is the uncalibrated starting point of README \"Scaling\"."
  default     = 200
  validation {
    condition     = var.target_requests_per_instance_per_second >= 1
    error_message = "target_requests_per_instance_per_second must be at least 1."
  }
}

variable "cooldown_seconds" {
  type        = number
  description = "Seconds a new instance's CPU is ignored by the autoscaler (its initialisation period)."
  default     = 60
}

variable "api_explorer" {
  type        = bool
  default     = false
  description = "Serve the API explorer (Swagger UI) at /docs on the public REST endpoint. Off by default: it follows the read policy like /openapi.json, and a deployment's API reference is docs/."
}
