# Test harness only: run.sh copies it, with moto_override.tf, next to a copy of terraform/aws.

variable "moto_endpoint" {
  type        = string
  description = "http://127.0.0.1:PORT of the harness's moto_server."
  validation {
    condition     = startswith(var.moto_endpoint, "http://127.0.0.1:")
    error_message = "The harness talks to 127.0.0.1 only."
  }
}
