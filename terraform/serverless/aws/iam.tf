# The function's execution role: its own log group and the five DynamoDB calls the store makes on
# its one table; nothing else (no AWSLambdaBasicExecutionRole, whose logs:* statements cover every
# log group of the account).

locals {
  # server/src/store/dynamodb.rs: GetItem (get), PutItem (put), DeleteItem (delete), Scan (list),
  # DescribeTable (start-up check and /gtg?details). The scaling-group root grants the same five.
  dynamodb_actions = [
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Scan",
  ]
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  name_prefix        = "${substr(var.name, 0, 25)}-fn-"
  description        = "candidates Lambda function: its log group and its table"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "function" {
  # The log group exists (logs.tf) before the function, so no logs:CreateLogGroup: Lambda writes
  # streams into it (AWS Lambda developer guide, "Sending Lambda function logs to CloudWatch Logs":
  # CreateLogStream and PutLogEvents on the group's streams).
  statement {
    sid       = "OwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function.arn}:*"]
  }

  statement {
    sid       = "CandidatesTable"
    actions   = local.dynamodb_actions
    resources = [aws_dynamodb_table.candidates.arn]
  }

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

resource "aws_iam_role_policy" "function" {
  name   = "candidates-function"
  role   = aws_iam_role.function.id
  policy = data.aws_iam_policy_document.function.json
}
