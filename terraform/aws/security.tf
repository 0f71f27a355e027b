# Who may talk to whom:
#   internet (var.alb_ingress_cidrs) -> ALB :80/:443 -> instances :8000 (REST and its health check)
#   VPC (var.grpc_client_cidrs)      -> internal NLB :50051 -> instances :50051 (gRPC; the NLB does
#                                       not preserve client addresses, so instances admit the NLB)
#   NLB health checks                -> instances :8000 /gtg
#   VPC (var.metrics_scrape_cidrs)   -> instances :9090 /metrics (no load balancer forwards it)
#   instances -> 443 out (DynamoDB via the gateway endpoint, SSM via NAT), 80 out via NAT (Ubuntu's
#   apt mirrors, plain HTTP), and 50051 to the NLB (validate.sh's SSM port-forward starts on an
#   instance); nothing else.

locals {
  grpc_client_cidrs    = length(var.grpc_client_cidrs) > 0 ? var.grpc_client_cidrs : [var.vpc_cidr]
  metrics_scrape_cidrs = length(var.metrics_scrape_cidrs) > 0 ? var.metrics_scrape_cidrs : [var.vpc_cidr]
  https_enabled        = var.certificate_arn != ""
  alb_ports            = local.https_enabled ? [80, 443] : [80]
}

resource "aws_security_group" "alb" {
  name_prefix = "${var.name}-alb-"
  description = "Public ALB: HTTP(S) in from the allowed ranges, to the instances' REST port only"
  vpc_id      = aws_vpc.this.id
  tags        = { Name = "${var.name}-alb" }
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "alb_http" {
  for_each          = { for pair in setproduct(local.alb_ports, var.alb_ingress_cidrs) : "${pair[0]}-${pair[1]}" => pair }
  security_group_id = aws_security_group.alb.id
  description       = "HTTP${each.value[0] == 443 ? "S" : ""} from clients"
  ip_protocol       = "tcp"
  from_port         = each.value[0]
  to_port           = each.value[0]
  cidr_ipv4         = each.value[1]
}

resource "aws_vpc_security_group_egress_rule" "alb_to_instances" {
  security_group_id            = aws_security_group.alb.id
  description                  = "REST and health checks to the instances"
  ip_protocol                  = "tcp"
  from_port                    = var.http_port
  to_port                      = var.http_port
  referenced_security_group_id = aws_security_group.instances.id
}

resource "aws_security_group" "nlb" {
  name_prefix = "${var.name}-grpc-nlb-"
  description = "Internal gRPC NLB: 50051 in from the VPC, to the instances"
  vpc_id      = aws_vpc.this.id
  tags        = { Name = "${var.name}-grpc-nlb" }
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "nlb_grpc" {
  for_each          = toset(local.grpc_client_cidrs)
  security_group_id = aws_security_group.nlb.id
  description       = "gRPC from internal clients"
  ip_protocol       = "tcp"
  from_port         = var.grpc_port
  to_port           = var.grpc_port
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "nlb_to_instances" {
  for_each                     = toset([tostring(var.grpc_port), tostring(var.http_port)])
  security_group_id            = aws_security_group.nlb.id
  description                  = "gRPC and /gtg health checks to the instances"
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.value)
  to_port                      = tonumber(each.value)
  referenced_security_group_id = aws_security_group.instances.id
}

resource "aws_security_group" "instances" {
  name_prefix = "${var.name}-instances-"
  description = "candidate-server instances: REST from the load balancers, gRPC from the VPC"
  vpc_id      = aws_vpc.this.id
  tags        = { Name = "${var.name}-instances" }
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "instances_rest_from_alb" {
  security_group_id            = aws_security_group.instances.id
  description                  = "REST and health checks from the ALB"
  ip_protocol                  = "tcp"
  from_port                    = var.http_port
  to_port                      = var.http_port
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_vpc_security_group_ingress_rule" "instances_health_from_nlb" {
  security_group_id            = aws_security_group.instances.id
  description                  = "/gtg health checks from the gRPC NLB"
  ip_protocol                  = "tcp"
  from_port                    = var.http_port
  to_port                      = var.http_port
  referenced_security_group_id = aws_security_group.nlb.id
}

# Client-IP preservation is off on the gRPC target group (load_balancers.tf): connections arrive
# from the NLB, whose security group admits the clients.
resource "aws_vpc_security_group_ingress_rule" "instances_grpc_from_nlb" {
  security_group_id            = aws_security_group.instances.id
  description                  = "gRPC from the internal NLB"
  ip_protocol                  = "tcp"
  from_port                    = var.grpc_port
  to_port                      = var.grpc_port
  referenced_security_group_id = aws_security_group.nlb.id
}

# validate.sh's gRPC check: an SSM port-forwarding session to the NLB runs on an instance, so the
# instance connects to the NLB on the gRPC port.
resource "aws_vpc_security_group_egress_rule" "instances_grpc_to_nlb" {
  security_group_id            = aws_security_group.instances.id
  description                  = "gRPC to the internal NLB (validate.sh's SSM tunnel starts on an instance)"
  ip_protocol                  = "tcp"
  from_port                    = var.grpc_port
  to_port                      = var.grpc_port
  referenced_security_group_id = aws_security_group.nlb.id
}

resource "aws_vpc_security_group_ingress_rule" "nlb_grpc_from_instances" {
  security_group_id            = aws_security_group.nlb.id
  description                  = "gRPC from the instances (validate.sh's SSM tunnel), whatever grpc_client_cidrs says"
  ip_protocol                  = "tcp"
  from_port                    = var.grpc_port
  to_port                      = var.grpc_port
  referenced_security_group_id = aws_security_group.instances.id
}

resource "aws_vpc_security_group_ingress_rule" "instances_metrics" {
  for_each          = toset(local.metrics_scrape_cidrs)
  security_group_id = aws_security_group.instances.id
  description       = "Prometheus scrapes of /metrics from inside the VPC"
  ip_protocol       = "tcp"
  from_port         = var.metrics_port
  to_port           = var.metrics_port
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "instances_https" {
  security_group_id = aws_security_group.instances.id
  description       = "HTTPS out: DynamoDB (gateway endpoint) and SSM (NAT)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

# apt and unattended-upgrades: Ubuntu's EC2 images point apt at <region>.ec2.archive.ubuntu.com and
# security.ubuntu.com over plain HTTP (packages are verified by their signed indexes, not by TLS).
# Those are Canonical's hosts with no published address range or AWS prefix list, so a security
# group cannot name them more narrowly than 0.0.0.0/0; what bounds it is the route: the private
# subnets' only way out is the NAT gateway (no public IPs, no internet gateway route), and nothing
# can open a connection back in.
resource "aws_vpc_security_group_egress_rule" "instances_http" {
  security_group_id = aws_security_group.instances.id
  description       = "HTTP out via NAT: Ubuntu apt mirrors and security updates"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = "0.0.0.0/0"
}
