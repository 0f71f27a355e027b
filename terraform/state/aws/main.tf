data "aws_caller_identity" "current" {}

locals {
  bucket = var.bucket_name != "" ? var.bucket_name : "${var.name}-tfstate-${data.aws_caller_identity.current.account_id}-${var.region}"
}

resource "aws_s3_bucket" "state" {
  #checkov:skip=CKV_AWS_18:access logging needs a second bucket (and its own logging); CloudTrail data events are the audit trail for a bucket this small (docs/deploy-aws.md, Remote state)
  #checkov:skip=CKV_AWS_144:cross-region replication doubles the storage for kilobytes of state; versioning is the recovery path here
  #checkov:skip=CKV_AWS_145:SSE-S3 (AES256) encrypts at rest at no cost; a customer-managed KMS key costs $1 a month plus requests and a key policy to keep, for a bucket only Terraform reads
  #checkov:skip=CKV2_AWS_62:nothing consumes event notifications for state writes
  bucket = local.bucket

  # The state of every deployment lives here: Terraform refuses to destroy the bucket (take this
  # out deliberately, and empty every version first, to retire it).
  lifecycle {
    prevent_destroy = true

    precondition {
      condition     = length(local.bucket) <= 63
      error_message = "The bucket name ${local.bucket} is over S3's 63 characters: set bucket_name (STATE_TF_ARGS=-var=bucket_name=...)."
    }
  }
}

# The S3 backend: "highly recommended that you enable Bucket Versioning ... to allow for state
# recovery in the case of accidental deletions and human error".
resource "aws_s3_bucket_versioning" "state" {
  bucket = aws_s3_bucket.state.id

  versioning_configuration {
    status = "Enabled"
  }
}

# Every object encrypted at rest by default (the backend's `encrypt = true` asks for it on each
# write too).
resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

# No public access of any kind: public ACLs blocked and ignored, public policies blocked and
# their effect restricted.
resource "aws_s3_bucket_public_access_block" "state" {
  bucket = aws_s3_bucket.state.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# ACLs off: the bucket owner owns every object and only policies grant access.
resource "aws_s3_bucket_ownership_controls" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

# Plain HTTP refused, and TLS older than 1.2: the state holds the deployment's write key.
data "aws_iam_policy_document" "state" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.state.arn, "${aws_s3_bucket.state.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DenyOldTLS"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.state.arn, "${aws_s3_bucket.state.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }
}

resource "aws_s3_bucket_policy" "state" {
  bucket = aws_s3_bucket.state.id
  policy = data.aws_iam_policy_document.state.json

  # S3 rejects a policy while the public access block is being applied.
  depends_on = [aws_s3_bucket_public_access_block.state]
}

# Old versions expire (each apply writes one); lock files and failed uploads do not linger.
resource "aws_s3_bucket_lifecycle_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    id     = "state-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }

    # Every lock release (the `.tflock` object deleted) leaves a delete marker in a versioned
    # bucket; once its versions have expired, the marker goes too.
    expiration {
      expired_object_delete_marker = true
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  # Lifecycle rules on a versioned bucket need versioning in place first.
  depends_on = [aws_s3_bucket_versioning.state]
}
