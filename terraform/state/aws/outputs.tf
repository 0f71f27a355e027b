output "bucket" {
  description = "The state bucket (the S3 backend's `bucket`)."
  value       = aws_s3_bucket.state.bucket # known at plan (a dry run prints it)
}

output "region" {
  description = "The bucket's region (the S3 backend's `region`)."
  value       = var.region
}
