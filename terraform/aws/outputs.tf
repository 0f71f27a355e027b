output "rest_url" {
  description = "Base URL of the REST API: https://<domain> with a certificate, else http://<the public ALB's name>."
  value       = local.https_enabled ? "https://${var.domain}" : "http://${aws_lb.rest.dns_name}"
}

output "alb_dns_name" {
  description = "The public ALB's DNS name: with a certificate, point the domain here (CNAME, or a Route 53 alias)."
  value       = aws_lb.rest.dns_name
}

output "grpc_endpoint" {
  description = "host:port of the internal gRPC load balancer (plaintext h2c, reachable from inside the VPC)."
  value       = "${aws_lb.grpc.dns_name}:${var.grpc_port}"
}

output "asg_name" {
  description = "Auto Scaling group name."
  value       = aws_autoscaling_group.this.name
}

output "table_name" {
  description = "DynamoDB table name."
  value       = aws_dynamodb_table.candidates.name
}

output "rest_target_group_arn" {
  description = "Target group of the REST listener (scripts poll its target health)."
  value       = aws_lb_target_group.rest.arn
}

output "grpc_target_group_arn" {
  description = "Target group of the gRPC listener."
  value       = aws_lb_target_group.grpc.arn
}

output "image_id" {
  description = "AMI the launch template runs."
  value       = local.image_id
}

output "region" {
  description = "AWS region of the stack."
  value       = var.region
}

output "min_size" {
  description = "Fewest instances (scale-demo prints the expected counts)."
  value       = var.min_size
}

output "max_size" {
  description = "Most instances (scale-demo prints the expected counts)."
  value       = var.max_size
}

output "target_requests_per_instance_per_second" {
  description = "Requests per second per instance that the ALBRequestCountPerTarget policy holds."
  value       = var.target_requests_per_instance_per_second
}
