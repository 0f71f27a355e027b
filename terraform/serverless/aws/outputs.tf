output "function_url" {
  description = "The HTTPS endpoint (https://<id>.lambda-url.<region>.on.aws/): the REST API, as the scaling groups' rest_url."
  value       = aws_lambda_function_url.this.function_url
}

output "function_name" {
  description = "The Lambda function."
  value       = aws_lambda_function.this.function_name
}

output "table_name" {
  description = "The DynamoDB table."
  value       = aws_dynamodb_table.candidates.name
}

output "log_group" {
  description = "The function's CloudWatch Logs group."
  value       = aws_cloudwatch_log_group.function.name
}
