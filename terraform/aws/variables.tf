variable "name" {
  type        = string
  description = "Prefix of every resource name (several stacks can share an account)."
  default     = "candidates"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "The name must be 2 to 21 lower-case letters, digits and dashes (ALB names are at most 32 characters)."
  }
}

variable "region" {
  type        = string
  description = "AWS region (the original ran in us-east-2)."
  default     = "us-east-2"
}

variable "tags" {
  type        = map(string)
  description = "Extra tags on every resource."
  default     = {}
}

# --- network ---------------------------------------------------------------------------------

variable "vpc_cidr" {
  type        = string
  description = "VPC address range; split into one public and one private subnet per AZ."
  default     = "10.0.0.0/16"
}

variable "az_count" {
  type        = number
  description = "Availability zones to spread subnets, load balancers and instances over."
  default     = 2
  validation {
    condition     = var.az_count >= 2 && var.az_count <= 6
    error_message = "Use 2 to 6 availability zones (an ALB needs at least two)."
  }
}

variable "one_nat_gateway_per_az" {
  type        = bool
  description = "One NAT gateway per AZ instead of one in all. The data path to DynamoDB uses the gateway endpoint, not NAT; NAT carries only SSM and OS traffic, so one is the default."
  default     = false
}

variable "alb_ingress_cidrs" {
  type        = list(string)
  description = "Who may reach the public load balancer on 80/443."
  default     = ["0.0.0.0/0"]
}

variable "grpc_client_cidrs" {
  type        = list(string)
  description = "Who may reach the internal gRPC load balancer on 50051; empty means the VPC."
  default     = []
}

variable "certificate_arn" {
  type        = string
  description = "ACM certificate for an HTTPS listener on 443; when set, port 80 redirects to it. Needs domain."
  default     = ""
}

variable "domain" {
  type        = string
  description = "Host name the certificate is for (with certificate_arn): rest_url is https://<domain>, so that clients and the scripts verify the certificate against it. Point its DNS record at the ALB (output alb_dns_name). The ALB's own name is not in any certificate ACM issues you."
  default     = ""
  validation {
    condition     = var.domain == "" || (length(var.domain) <= 253 && can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?[.])+[a-z][a-z0-9-]{0,61}[a-z0-9]$", var.domain)))
    error_message = "domain is one fully qualified host name in lower case (api.example.com): no scheme, path, wildcard or trailing dot."
  }
  validation {
    condition     = (var.domain == "") == (var.certificate_arn == "")
    error_message = "HTTPS needs both certificate_arn and domain (or neither)."
  }
}

variable "flow_log_retention_days" {
  type        = number
  description = "Retention of the VPC flow logs in CloudWatch Logs."
  default     = 30
}

# --- image and instances ----------------------------------------------------------------------

variable "image_id" {
  type        = string
  description = "AMI to run. Empty: the newest amazon-ebs build in var.packer_manifest for var.region."
  default     = ""
}

variable "packer_manifest" {
  type        = string
  description = "packer-manifest.json written by `packer build` (read when image_id is empty)."
  default     = "../../packer/packer-manifest.json"
}

variable "instance_type" {
  type        = string
  description = "Instance type. Burstable types work, but CPU credits distort the CPU scaling signal under sustained load."
  default     = "t3.small"
}

variable "root_volume_size" {
  type        = number
  description = "Root volume size in GiB (encrypted gp3)."
  default     = 8
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

variable "metrics_scrape_cidrs" {
  type        = list(string)
  description = "Who may scrape /metrics on the instances; empty means the VPC."
  default     = []
}

variable "health_check_path" {
  type        = string
  description = "Health check path: 200 when serving, 503 while starting or draining."
  default     = "/gtg"
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

variable "table_name" {
  type        = string
  description = "DynamoDB table of candidates; empty means \"<name>-candidates\", so stacks with different names can share an account (the original's fixed name was Candidates)."
  default     = ""
}

variable "table_kms_key_arn" {
  type        = string
  description = "Customer managed KMS key for the table; empty uses the AWS managed key (aws/dynamodb). The instance role is granted its use through DynamoDB (iam.tf); the key's own policy must allow the account's IAM policies (the default key policy does)."
  default     = ""
}

variable "table_deletion_protection" {
  type        = bool
  description = "Refuse to delete the table. Off so that destroy works in one step; turn on in production."
  default     = false
}

# --- health checks (defaults: the original's target group) ------------------------------------

variable "health_check_interval" {
  type        = number
  description = "Seconds between target group health checks."
  default     = 10
}

variable "health_check_timeout" {
  type        = number
  description = "Seconds before a health check counts as failed."
  default     = 5
}

variable "healthy_threshold" {
  type        = number
  description = "Consecutive successes before a target is healthy."
  default     = 3
}

variable "unhealthy_threshold" {
  type        = number
  description = "Consecutive failures before a target is unhealthy."
  default     = 2
}

# --- scaling ----------------------------------------------------------------------------------

variable "min_size" {
  type        = number
  description = "Fewest instances."
  default     = 2
}

variable "desired_capacity" {
  type        = number
  description = "Instances at creation (scaling policies move it between min and max afterwards)."
  default     = 2
}

variable "max_size" {
  type        = number
  description = "Most instances."
  default     = 4
  validation {
    condition     = var.max_size >= 1
    error_message = "max_size must be at least 1."
  }
}

variable "cpu_target" {
  type        = number
  description = "Target average CPU utilisation (%) of the group (target tracking): the backstop signal, and the one the `STRESS=1` scale demo drives."
  default     = 60
}

variable "target_requests_per_instance_per_second" {
  type        = number
  description = "Requests per second per instance through the ALB that target tracking holds (ALBRequestCountPerTarget, which counts per minute: the policy's target is this x 60). Same meaning in every cloud's root. Set by scripts/aws/calibrate.sh (calibration.auto.tfvars.json); the default is the uncalibrated starting point of README \"Scaling\"."
  default     = 200
  validation {
    condition     = var.target_requests_per_instance_per_second >= 1
    error_message = "target_requests_per_instance_per_second must be at least 1."
  }
}

variable "instance_warmup_seconds" {
  type        = number
  description = "Seconds before a new instance's metrics count for scaling and instance refresh. The service is ready in milliseconds; this covers the boot."
  default     = 60
}

variable "health_check_grace_period" {
  type        = number
  description = "Seconds after launch before failed ELB health checks replace an instance."
  default     = 60
}

variable "root_device_name" {
  type        = string
  description = "Root device of the AMI (Canonical's Ubuntu images, and so ours, use /dev/sda1)."
  default     = "/dev/sda1"
}

variable "api_explorer" {
  type        = bool
  default     = false
  description = "Serve the API explorer (Swagger UI) at /docs on the public REST endpoint. Off by default: it follows the read policy like /openapi.json, and a deployment's API reference is docs/."
}
