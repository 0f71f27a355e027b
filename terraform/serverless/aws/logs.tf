# The function's log group, made before the function so Terraform owns its retention (and destroy
# removes it); Lambda's default group name, which logging_config names explicitly.
resource "aws_cloudwatch_log_group" "function" {
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  #checkov:skip=CKV_AWS_158:Log lines carry no secrets (keys are never logged; docs/security.md); CloudWatch Logs encrypts at rest with its own key.
}
