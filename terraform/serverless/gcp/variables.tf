variable "project_id" {
  type        = string
  description = "Google Cloud project to deploy into."
}

variable "name" {
  type        = string
  description = "The Cloud Run service's name and the prefix of every other resource name."
  default     = "candidates-run"
  validation {
    # Cloud Run service names start with a letter and do not end with a dash; the Firestore
    # database id (<name> by default) is 4 to 63 characters; the service account id "<name>-run"
    # is at most 30.
    condition     = can(regex("^[a-z][a-z0-9-]{2,19}[a-z0-9]$", var.name))
    error_message = "The name must be 4 to 21 lower-case letters, digits and dashes, starting with a letter and not ending with a dash."
  }
}

variable "region" {
  type        = string
  description = "Region of the service and of the Artifact Registry repository."
  default     = "us-central1"
}

variable "labels" {
  type        = map(string)
  description = "Extra labels on every resource."
  default     = {}
}

variable "image" {
  type        = string
  description = "The container image: serverless/cloud-run/build-image.py's OCI image, pushed to this root's Artifact Registry repository (output repository_url), by digest (REPO/candidates@sha256:...), as scripts/gcp/serverless-build.sh prints it. Empty only for the first, targeted apply that makes the repository."
  default     = ""
}

variable "public" {
  type        = bool
  description = "Let anyone invoke the service (Cloud Run's invoker IAM check off, which works where Domain Restricted Sharing refuses an all-users binding): the REST contract's reads are public, and the service applies its own key or token policy (access.tf) to every request. false: only principals granted roles/run.invoker, with a Google ID token in X-Serverless-Authorization."
  default     = true
}

variable "ingress" {
  type        = string
  description = "Where requests may come from: INGRESS_TRAFFIC_ALL (the internet), INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  default     = "INGRESS_TRAFFIC_ALL"
  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.ingress)
    error_message = "ingress is INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }
}

variable "port" {
  type        = number
  description = "The container port Cloud Run sends requests to, and passes to the container as PORT (the image listens on 8080: build-image.py)."
  default     = 8080
}

variable "max_instances" {
  type        = number
  description = "The most instances at once (a cap on cost and on Firestore load)."
  default     = 10
  validation {
    condition     = var.max_instances >= 1 && var.max_instances <= 1000
    error_message = "max_instances is 1 to 1000."
  }
}

variable "concurrency" {
  type        = number
  description = "Requests one instance serves at once (Cloud Run's maximum is 1000; its default 80)."
  default     = 80
  validation {
    condition     = var.concurrency >= 1 && var.concurrency <= 1000
    error_message = "concurrency is 1 to 1000."
  }
}

variable "cpu" {
  type        = string
  description = "CPU limit per instance (\"1\", \"2\", ...; concurrency above 1 needs at least 1)."
  default     = "1"
}

variable "memory" {
  type        = string
  description = "Memory limit per instance (at least 512Mi)."
  default     = "512Mi"
}

variable "timeout_seconds" {
  type        = number
  description = "The longest a request may take (1 to 3600 s); a streamed GET /candidates of a large collection needs more than a single read."
  default     = 60
  validation {
    condition     = var.timeout_seconds >= 1 && var.timeout_seconds <= 3600
    error_message = "timeout_seconds is 1 to 3600."
  }
}

variable "deletion_protection" {
  type        = bool
  description = "The provider's deletion_protection on the service (it defaults to true): off so that destroy works in one step; the service holds no data."
  default     = false
}

variable "firestore_database" {
  type        = string
  description = "Firestore database id (a named database of its own: Terraform owns it whole, and IAM is scoped to it); empty: <name>."
  default     = ""
}

variable "firestore_location" {
  type        = string
  description = "Firestore location."
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
