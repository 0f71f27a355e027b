# The instances: a launch template from the Packer image and an Auto Scaling group over the
# private subnets, registered in both target groups, replaced by ELB health and rolled on change.

locals {
  manifest_path = var.packer_manifest != "" ? var.packer_manifest : "${path.module}/../../packer/packer-manifest.json"
  manifest      = fileexists(local.manifest_path) ? jsondecode(file(local.manifest_path)) : { builds = [] }
  # artifact_id is "region:ami-id[,region:ami-id...]"; builds are appended, so the last one is newest.
  manifest_amis = flatten([
    for build in local.manifest.builds : [
      for artifact in split(",", build.artifact_id) : split(":", artifact)[1]
      if split(":", artifact)[0] == var.region
    ] if build.builder_type == "amazon-ebs"
  ])
  image_id = var.image_id != "" ? var.image_id : try(local.manifest_amis[length(local.manifest_amis) - 1], "")

  # The hook holds a terminating instance while the service drains: poll interval + drain + grace,
  # with room to spare (the hook then ends by itself with CONTINUE).
  termination_hook_seconds = var.drain_period_seconds + var.shutdown_grace_seconds + 25
}

# The env file (store DynamoDB) and the lifecycle drain watcher, written by cloud-init.
module "instance_config" {
  source                 = "../modules/instance-config"
  deployment             = "aws/${var.name}"
  http_port              = var.http_port
  grpc_port              = var.grpc_port
  metrics_port           = var.metrics_port
  drain_period_seconds   = var.drain_period_seconds
  shutdown_grace_seconds = var.shutdown_grace_seconds
  # Access (access.tf): the key file's digests and who may read.
  api_key_lines    = local.api_key_lines
  auth_read        = var.auth_read
  api_explorer     = var.api_explorer
  oidc_issuer      = var.oidc_issuer
  oidc_audience    = var.oidc_audience
  oidc_scope_claim = var.oidc_scope_claim
  store_env = {
    CANDIDATES_STORE             = "dynamodb"
    CANDIDATES_DYNAMODB_TABLE    = aws_dynamodb_table.candidates.name
    CANDIDATES_DYNAMODB_REGION   = var.region
    CANDIDATES_INSTANCE_METADATA = "aws"
  }
  files = [
    { path = "/usr/local/sbin/candidates-lifecycle-drain", permissions = "0755", content = file("${path.module}/files/lifecycle-drain.sh") },
    { path = "/etc/systemd/system/candidates-lifecycle.service", permissions = "0644", content = file("${path.module}/files/candidates-lifecycle.service") },
    # The CloudWatch agent's configuration and the unit that loads it (observability.tf).
    { path = local.agent_config_path, permissions = "0644", content = local.agent_config },
    { path = local.prometheus_config, permissions = "0644", content = local.prometheus_scrape },
    { path = "/etc/systemd/system/candidates-cloudwatch-agent.service", permissions = "0644", content = file("${path.module}/files/candidates-cloudwatch-agent.service") },
  ]
  enable_units = ["candidates-lifecycle.service", "candidates-cloudwatch-agent.service"]
}

resource "aws_launch_template" "this" {
  name_prefix            = "${var.name}-"
  description            = "candidate-server on the Packer image, store DynamoDB"
  image_id               = local.image_id
  instance_type          = var.instance_type
  update_default_version = true
  ebs_optimized          = true
  user_data              = base64encode(module.instance_config.user_data)
  vpc_security_group_ids = [aws_security_group.instances.id]
  # No key_name: shell access is through SSM Session Manager (AmazonSSMManagedInstanceCore).

  iam_instance_profile {
    arn = aws_iam_instance_profile.instance.arn
  }

  # IMDSv2 only, one hop: a container or a proxied request cannot reach the instance credentials.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  block_device_mappings {
    device_name = var.root_device_name
    ebs {
      volume_size           = var.root_volume_size
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  # One-minute CloudWatch metrics: target tracking reacts in minutes, not in five-minute steps.
  monitoring {
    enabled = true
  }

  # The stack's tags (versions.tf) spelled out: default_tags do not reach what the group launches.
  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.common_tags, { Name = "${var.name}-instance" })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(local.common_tags, { Name = "${var.name}-root" })
  }

  lifecycle {
    precondition {
      condition     = local.image_id != ""
      error_message = "No image: set image_id, or run `packer build -only=amazon-ebs.aws` so that the manifest has an AMI for this region."
    }
    # EC2: "User data is limited to 16 KB, in raw form, before it is base64-encoded"; api_key_lines
    # grows it by about 100 bytes a key.
    precondition {
      condition     = length(module.instance_config.user_data) <= 16384
      error_message = "The instances' user data is over EC2's 16 KB: fewer api_key_lines."
    }
  }
}

resource "aws_autoscaling_group" "this" {
  name                      = "${var.name}-asg"
  min_size                  = var.min_size
  desired_capacity          = var.desired_capacity
  max_size                  = var.max_size
  vpc_zone_identifier       = aws_subnet.private[*].id
  target_group_arns         = [aws_lb_target_group.rest.arn, aws_lb_target_group.grpc.arn]
  health_check_type         = "ELB"
  health_check_grace_period = var.health_check_grace_period
  default_instance_warmup   = var.instance_warmup_seconds
  # apply returns once the first instances pass the load balancer's health check.
  min_elb_capacity          = var.min_size
  wait_for_capacity_timeout = "10m"
  enabled_metrics           = ["GroupDesiredCapacity", "GroupInServiceInstances", "GroupPendingInstances", "GroupTerminatingInstances", "GroupTotalInstances"]
  metrics_granularity       = "1Minute"

  launch_template {
    id      = aws_launch_template.this.id
    version = aws_launch_template.this.latest_version
  }

  # A new launch template version (new image, new user-data) rolls through the group: new
  # instances first (up to 200 % of desired), old ones leave only after the new ones are healthy
  # and warm, so a bad image never takes capacity away. No auto_rollback: the provider sets the
  # group's launch template version before it starts the refresh, so a "rollback" returns to the
  # new version (terraform-provider-aws #34189). Rolling back is `apply` with the previous image
  # (docs/deploy-aws.md "Rolling back").
  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 100
      max_healthy_percentage = 200
      instance_warmup        = var.instance_warmup_seconds
      skip_matching          = true
      auto_rollback          = false
    }
  }

  # Health replacements also launch first, then terminate.
  instance_maintenance_policy {
    min_healthy_percentage = 100
    max_healthy_percentage = 200
  }

  initial_lifecycle_hook {
    name                 = "drain"
    lifecycle_transition = "autoscaling:EC2_INSTANCE_TERMINATING"
    heartbeat_timeout    = local.termination_hook_seconds
    default_result       = "CONTINUE"
  }

  tag {
    key                 = "Name"
    value               = "${var.name}-asg"
    propagate_at_launch = false
  }

  # Instances boot as soon as the group exists and the service opens the table at once. Nothing
  # in the group's arguments refers to what that needs, so without these Terraform may create the
  # group first: the table policy and SSM core on the role (the profile alone does not wait for
  # them), the DynamoDB gateway endpoint, and the private subnets' route tables with their NAT
  # route (SSM, apt). Destroy then also drains the group before any of them goes.
  depends_on = [
    aws_iam_role_policy.table_access,
    aws_iam_role_policy.service_logs,
    aws_iam_role_policy_attachment.ssm_core,
    aws_vpc_endpoint.dynamodb,
    aws_route.private_nat,
    aws_route_table_association.private,
  ]

  lifecycle {
    # Scaling policies own the desired capacity after creation.
    ignore_changes = [desired_capacity]
    precondition {
      condition     = var.min_size <= var.desired_capacity && var.desired_capacity <= var.max_size
      error_message = "Need min_size <= desired_capacity <= max_size."
    }
  }
}

resource "aws_autoscaling_policy" "cpu" {
  name                   = "${var.name}-cpu-target"
  autoscaling_group_name = aws_autoscaling_group.this.name
  policy_type            = "TargetTrackingScaling"

  # Target tracking scales out fast and in slowly (15 minutes under target), so it does not flap
  # like the original's 60 %-up / 60 %-down alarm pair.
  target_tracking_configuration {
    predefined_metric_specification {
      predefined_metric_type = "ASGAverageCPUUtilization"
    }
    target_value = var.cpu_target
  }
}

# The signal that matters for this service: requests per instance through the ALB. With two
# target-tracking policies the group scales out when either asks and in only when both agree, so
# CPU stays as the backstop (and the signal of the `STRESS=1` demo).
resource "aws_autoscaling_policy" "requests" {
  name                   = "${var.name}-requests-target"
  autoscaling_group_name = aws_autoscaling_group.this.name
  policy_type            = "TargetTrackingScaling"

  target_tracking_configuration {
    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${aws_lb.rest.arn_suffix}/${aws_lb_target_group.rest.arn_suffix}"
    }
    # ALBRequestCountPerTarget is a count per minute.
    target_value = var.target_requests_per_instance_per_second * 60
  }
}
