# The instance role: exactly the DynamoDB calls the backend makes, on the one table, plus SSM
# Session Manager (the only way in: no SSH keys, no open port 22).

locals {
  # server/src/store/dynamodb.rs: GetItem (get), PutItem (put), DeleteItem (delete), Scan (list),
  # DescribeTable (start-up check and /gtg?details). README "DynamoDB" lists the same five.
  dynamodb_actions = [
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Scan",
  ]
}

data "aws_partition" "current" {}

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "instance" {
  name_prefix        = "${var.name}-instance-"
  description        = "candidate-server instances: the Candidates table and SSM"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

data "aws_iam_policy_document" "table_access" {
  statement {
    sid       = "CandidatesTable"
    actions   = local.dynamodb_actions
    resources = [aws_dynamodb_table.candidates.arn]
  }

  # A customer managed key on the table: DynamoDB uses it on the caller's behalf, so the role
  # needs it too (the actions of the AWS managed key's own policy, aws/dynamodb), only through
  # DynamoDB in this region. Without it every call is AccessDenied.
  dynamic "statement" {
    for_each = var.table_kms_key_arn != "" ? [var.table_kms_key_arn] : []
    content {
      sid       = "CandidatesTableKey"
      actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*", "kms:CreateGrant"]
      resources = [statement.value]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["dynamodb.${var.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "table_access" {
  name   = "candidates-table"
  role   = aws_iam_role.instance.id
  policy = data.aws_iam_policy_document.table_access.json
}

resource "aws_iam_role_policy_attachment" "ssm_core" {
  role       = aws_iam_role.instance.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "instance" {
  name_prefix = "${var.name}-instance-"
  role        = aws_iam_role.instance.name
}

# VPC flow logs write to their log group only. The service may assume the role only for flow
# logs of this account (confused deputy: the VPC user guide's "IAM role for publishing flow logs
# to CloudWatch Logs" recommends aws:SourceAccount and aws:SourceArn; the flow log's ID is not
# known before the role exists, so its ARN is matched with a wildcard, as that page suggests).
data "aws_iam_policy_document" "flow_logs_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [aws_vpc.this.owner_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${data.aws_partition.current.partition}:ec2:${var.region}:${aws_vpc.this.owner_id}:vpc-flow-log/*"]
    }
  }
}

resource "aws_iam_role" "flow_logs" {
  name_prefix        = "${var.name}-flow-logs-"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_assume.json
}

data "aws_iam_policy_document" "flow_logs" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.flow_logs.arn}:*"]
  }
}

resource "aws_iam_role_policy" "flow_logs" {
  name   = "flow-logs"
  role   = aws_iam_role.flow_logs.id
  policy = data.aws_iam_policy_document.flow_logs.json
}
