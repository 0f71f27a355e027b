# REST: an internet-facing ALB (HTTP 80, optional HTTPS 443) to the instances' port 8000.
# gRPC: an internal NLB passing TCP 50051 straight through (see README "Deploy to AWS" for why not
# an ALB gRPC target group).

locals {
  # A target leaves the load balancer as the service drains: in-flight requests get the drain
  # period plus the shutdown grace before the connection is cut.
  deregistration_delay = var.drain_period_seconds + var.shutdown_grace_seconds
  # The contract's JSON error body, for the paths the ALB answers itself.
  not_found_body = jsonencode({ code = 5, message = "Not Found", details = [] })
}

resource "aws_lb" "rest" {
  name                       = "${var.name}-rest"
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = aws_subnet.public[*].id
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  idle_timeout               = 60
  tags                       = { Name = "${var.name}-rest" }
  #checkov:skip=CKV_AWS_91:Access logs are optional (var.alb_access_logs, observability.tf: S3 costs); requests are logged by the service and shipped to CloudWatch Logs.

  dynamic "access_logs" {
    for_each = var.alb_access_logs ? [1] : []
    content {
      bucket  = aws_s3_bucket.alb_logs[0].id
      prefix  = "alb"
      enabled = true
    }
  }
  # ELB checks that it can write when logging is turned on: the bucket policy first.
  depends_on = [aws_s3_bucket_policy.alb_logs]
  #checkov:skip=CKV_AWS_150:Deletion protection would make `destroy` a two-step job for a stack whose data lives in DynamoDB, not in the ALB.
  #checkov:skip=CKV2_AWS_28:WAF is an account-level choice (and cost); attach a web ACL to this ALB outside this module.
}

resource "aws_lb_target_group" "rest" {
  # create_before_destroy needs a fresh name for the replacement: a fixed name would collide.
  name_prefix          = "rest-"
  tags                 = { Name = "${var.name}-rest" }
  port                 = var.http_port
  protocol             = "HTTP"
  vpc_id               = aws_vpc.this.id
  target_type          = "instance"
  deregistration_delay = local.deregistration_delay
  #checkov:skip=CKV_AWS_378:ALB to instance is plain HTTP inside the VPC (the service has no TLS listener); TLS ends at the ALB.

  health_check {
    enabled             = true
    protocol            = "HTTP"
    port                = "traffic-port"
    path                = var.health_check_path
    interval            = var.health_check_interval
    timeout             = var.health_check_timeout
    healthy_threshold   = var.healthy_threshold
    unhealthy_threshold = var.unhealthy_threshold
    # Only 200 is healthy: /gtg never redirects, so the original's 300-310 would only hide faults.
    matcher = "200"
  }

  lifecycle {
    create_before_destroy = true
    precondition {
      condition     = var.health_check_interval * var.unhealthy_threshold <= var.drain_period_seconds
      error_message = "The drain period must cover interval x unhealthy threshold, or the ALB still routes to a stopping instance."
    }
  }
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.rest.arn
  port              = 80
  protocol          = "HTTP"
  #checkov:skip=CKV_AWS_2:Port 80 serves plain HTTP only when no certificate_arn is given (the original's setup); with one it redirects to HTTPS.
  #checkov:skip=CKV_AWS_103:TLS policy applies to the HTTPS listener, which sets ELBSecurityPolicy-TLS13-1-2-2021-06.
  #checkov:skip=CKV2_AWS_20:Redirects to HTTPS whenever a certificate is configured; without one there is nothing to redirect to.

  default_action {
    type             = local.https_enabled ? "redirect" : "forward"
    target_group_arn = local.https_enabled ? null : aws_lb_target_group.rest.arn

    dynamic "redirect" {
      for_each = local.https_enabled ? [1] : []
      content {
        port        = "443"
        protocol    = "HTTPS"
        status_code = "HTTP_301"
      }
    }
  }
}

resource "aws_lb_listener" "https" {
  count             = local.https_enabled ? 1 : 0
  load_balancer_arn = aws_lb.rest.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.rest.arn
  }
}

# /metrics is served on its own port (var.metrics_port) for Prometheus inside the VPC; should an
# instance serve it on 8000 anyway (an image without CANDIDATES_METRICS_ADDR), the ALB still hides it.
resource "aws_lb_listener_rule" "hide_metrics" {
  listener_arn = local.https_enabled ? aws_lb_listener.https[0].arn : aws_lb_listener.http.arn
  priority     = 10

  condition {
    path_pattern {
      values = ["/metrics", "/metrics/*"]
    }
  }

  action {
    type = "fixed-response"
    fixed_response {
      content_type = "application/json"
      message_body = local.not_found_body
      status_code  = "404"
    }
  }
}

resource "aws_lb" "grpc" {
  name                             = "${var.name}-grpc"
  load_balancer_type               = "network"
  internal                         = true
  subnets                          = aws_subnet.private[*].id
  security_groups                  = [aws_security_group.nlb.id]
  enable_cross_zone_load_balancing = true # long-lived HTTP/2 connections: spread them over every instance
  tags                             = { Name = "${var.name}-grpc" }
  #checkov:skip=CKV_AWS_91:Access logs of an internal TCP load balancer hold only flow records; the VPC flow logs cover them.
  #checkov:skip=CKV_AWS_150:Deletion protection would make `destroy` a two-step job; the NLB holds no data.
}

resource "aws_lb_target_group" "grpc" {
  name_prefix          = "grpc-"
  tags                 = { Name = "${var.name}-grpc" }
  port                 = var.grpc_port
  protocol             = "TCP"
  vpc_id               = aws_vpc.this.id
  target_type          = "instance"
  deregistration_delay = local.deregistration_delay
  # Off: with instance targets and client-IP preservation, a connection an instance makes to the
  # NLB that lands on itself arrives with its own address as source and is dropped (no hairpin),
  # e.g. validate.sh's SSM tunnel, which starts on an instance. The instances then see the NLB's
  # addresses, so their gRPC ingress names the NLB's security group (security.tf); the NLB's own
  # security group keeps filtering the real clients.
  preserve_client_ip = "false"

  # The NLB cannot speak gRPC health; /gtg on the REST port has the same readiness and drain state.
  health_check {
    enabled             = true
    protocol            = "HTTP"
    port                = tostring(var.http_port)
    path                = var.health_check_path
    interval            = var.health_check_interval
    timeout             = var.health_check_timeout
    healthy_threshold   = var.healthy_threshold
    unhealthy_threshold = var.unhealthy_threshold
    matcher             = "200"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lb_listener" "grpc" {
  load_balancer_arn = aws_lb.grpc.arn
  port              = var.grpc_port
  protocol          = "TCP"
  #checkov:skip=CKV_AWS_2:gRPC inside the VPC is plaintext h2c by design (the service has no TLS listener); the NLB is internal.

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.grpc.arn
  }
}
