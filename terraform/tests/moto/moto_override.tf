# Test harness only, never part of terraform/aws: terraform/tests/moto/run.sh copies the root to a
# temporary directory and adds this file, which Terraform merges over the root (override files).
# Everything the provider calls goes to a private moto_server on 127.0.0.1; the credentials are
# dummies (moto_endpoint is declared in moto_variables.tf: an override file
# cannot add a variable). Each `ignore_changes` below is a moto artifact (moto 5 does not store or return the
# attribute), listed with its reason in docs/deploy-aws.md "Applied against moto".

provider "aws" {
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  # skip_requesting_account_id stays false: STS is moto too, and with the account ID known the
  # provider reads security group references back as plain IDs.

  # Every service the root uses (and CloudWatch, which target tracking touches in AWS).
  endpoints {
    autoscaling = var.moto_endpoint
    budgets     = var.moto_endpoint
    cloudwatch  = var.moto_endpoint
    dynamodb    = var.moto_endpoint
    ec2         = var.moto_endpoint
    elbv2       = var.moto_endpoint
    events      = var.moto_endpoint
    iam         = var.moto_endpoint
    logs        = var.moto_endpoint
    s3          = var.moto_endpoint
    sns         = var.moto_endpoint
    ssm         = var.moto_endpoint
    sts         = var.moto_endpoint
  }
}

# moto stores neither DefaultInstanceWarmup nor InstanceMaintenancePolicy (reads back 0 / none).
resource "aws_autoscaling_group" "this" {
  lifecycle {
    ignore_changes = [desired_capacity, default_instance_warmup, instance_maintenance_policy]
  }
}

# moto returns no `Enabled` (reads back false) and an empty PredictiveScalingConfiguration.
resource "aws_autoscaling_policy" "cpu" {
  lifecycle {
    ignore_changes = [enabled, predictive_scaling_configuration]
  }
}

resource "aws_autoscaling_policy" "requests" {
  lifecycle {
    ignore_changes = [enabled, predictive_scaling_configuration]
  }
}

# moto copies the launch template's own tags (CreateLaunchTemplate's TagSpecifications, type
# launch-template) into the version's data, so a third tag_specifications block reads back. The
# harness checks the instance and volume blocks through the API instead (check_moto.py).
resource "aws_launch_template" "this" {
  lifecycle {
    ignore_changes = [tag_specifications]
  }
}

# moto returns a rule's Description only for address ranges, not for security group references.
resource "aws_vpc_security_group_egress_rule" "alb_to_instances" {
  lifecycle {
    ignore_changes = [description]
  }
}

resource "aws_vpc_security_group_egress_rule" "nlb_to_instances" {
  lifecycle {
    ignore_changes = [description]
  }
}

resource "aws_vpc_security_group_egress_rule" "instances_grpc_to_nlb" {
  lifecycle {
    ignore_changes = [description]
  }
}

resource "aws_vpc_security_group_ingress_rule" "instances_rest_from_alb" {
  lifecycle {
    ignore_changes = [description]
  }
}

resource "aws_vpc_security_group_ingress_rule" "instances_health_from_nlb" {
  lifecycle {
    ignore_changes = [description]
  }
}

resource "aws_vpc_security_group_ingress_rule" "instances_grpc_from_nlb" {
  lifecycle {
    ignore_changes = [description]
  }
}

resource "aws_vpc_security_group_ingress_rule" "nlb_grpc_from_instances" {
  lifecycle {
    ignore_changes = [description]
  }
}

# moto 5.2 has no CloudWatch Logs query definitions (PutQueryDefinition is not implemented): the
# saved queries are left out of the harness; terraform/invariants checks their fields instead.
resource "aws_cloudwatch_query_definition" "errors_by_route" {
  count = 0
}

resource "aws_cloudwatch_query_definition" "latency_by_route" {
  count = 0
}

resource "aws_cloudwatch_query_definition" "rpc_errors" {
  count = 0
}

# moto 5.2 creates a budget but has no DescribeSubscribersForNotification, which the provider
# reads the notifications back with (it retries until its timeout): the budget is left out of the
# harness; terraform/invariants checks its notifications and the topic policy instead.
resource "aws_budgets_budget" "monthly" {
  count = 0
}
