# The function's own table: the scaling-group root's table settings (terraform/aws/dynamodb.tf).
locals {
  table_name = var.table_name != "" ? var.table_name : "${var.name}-candidates"
}

resource "aws_dynamodb_table" "candidates" {
  name         = local.table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "CandidateName"

  attribute {
    name = "CandidateName"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.table_kms_key_arn != "" ? var.table_kms_key_arn : null
  }

  deletion_protection_enabled = var.table_deletion_protection
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS managed key by default; a customer managed key is a variable (table_kms_key_arn).
}
