# The function: serverless/lambda's `bootstrap` on provided.al2023, configured like the binary
# (docs/configuration.md) from its environment.
#
# The API key file: the server reads keys only from a file (CANDIDATES_API_KEYS_FILE), and the
# deployment's key is made by Terraform (access.tf), so its digest cannot be in a zip built before
# the apply, and Terraform itself writes no files (no archive or local provider: every root
# initialises from the aws provider alone). The digest lines go in CANDIDATES_API_KEY_LINES
# instead; `bootstrap` writes them to a file under /tmp during the init phase and points
# CANDIDATES_API_KEYS_FILE at it (serverless/lambda/src/main.rs). Digests only: the key itself is
# only in the sensitive output write_key.

locals {
  env = merge({
    CANDIDATES_STORE           = "dynamodb"
    CANDIDATES_DYNAMODB_TABLE  = aws_dynamodb_table.candidates.name
    CANDIDATES_DYNAMODB_REGION = var.region
    CANDIDATES_LOG_FORMAT      = "json"
    CANDIDATES_API_EXPLORER    = "false"
    # Never open for writes: writes need a credential with candidates.write.
    CANDIDATES_API_KEY_LINES = join("\n", local.api_key_lines)
    CANDIDATES_AUTH_WRITE    = "scope"
    CANDIDATES_AUTH_READ     = var.auth_read
    }, {
    for key, value in {
      CANDIDATES_OIDC_ISSUER      = var.oidc_issuer
      CANDIDATES_OIDC_AUDIENCE    = var.oidc_audience
      CANDIDATES_OIDC_SCOPE_CLAIM = var.oidc_scope_claim
    } : key => value if value != ""
  })
}

resource "aws_lambda_function" "this" {
  function_name = var.name
  description   = "candidates REST API (serverless/lambda), Function URL with response streaming"
  role          = aws_iam_role.function.arn

  runtime       = "provided.al2023"
  handler       = "bootstrap"
  architectures = [var.architecture]

  filename         = var.package
  source_code_hash = filebase64sha256(var.package)

  memory_size                    = var.memory_mb
  timeout                        = var.timeout_seconds
  reserved_concurrent_executions = var.reserved_concurrency

  environment {
    variables = local.env
  }

  logging_config {
    log_format = "Text" # the service writes JSON lines itself (CANDIDATES_LOG_FORMAT=json)
    log_group  = aws_cloudwatch_log_group.function.name
  }

  # The role's policy before the first invocation, and the group before the first line.
  depends_on = [aws_iam_role_policy.function, aws_cloudwatch_log_group.function]

  # access.tf's variables, checked as modules/instance-config validates them for the other roots:
  # the server refuses a whole key file with a bad line, and a bad setting ends the init phase.
  lifecycle {
    # Lambda: "The total size of all environment variables doesn't exceed 4 KB" (Lambda quotas);
    # each API key line is about 90 bytes, so some 35 lines would fail the apply with an API error.
    precondition {
      condition     = sum([for key, value in local.env : length(key) + length(value)]) <= 4096
      error_message = "The function's environment (mostly CANDIDATES_API_KEY_LINES) exceeds Lambda's 4 KB: fewer API key lines, or OIDC for many callers."
    }
    precondition {
      condition     = alltrue([for line in var.api_key_lines : can(regex("^[0-9a-fA-F]{64} candidates\\.(read|write)(,candidates\\.(read|write))? [A-Za-z0-9._-]{1,64}$", line))])
      error_message = "Each API key line is `<64 hex digits> <scopes> <name>`: the SHA-256 digest of a key (never the key), candidates.read and/or candidates.write joined by a comma, and a name of 1 to 64 of [A-Za-z0-9._-]."
    }
    precondition {
      condition     = length(distinct([for line in local.api_key_lines : lower(split(" ", line)[0])])) == length(local.api_key_lines)
      error_message = "Two API key lines hold the same digest: the server refuses the whole file."
    }
    precondition {
      condition     = contains(["anyone", "authenticated", "scope"], var.auth_read)
      error_message = "auth_read is anyone, authenticated or scope."
    }
    precondition {
      condition     = (var.oidc_issuer == "" || startswith(var.oidc_issuer, "https://")) && (var.oidc_issuer == "") == (var.oidc_audience == "")
      error_message = "oidc_issuer is an https:// URL, and goes with oidc_audience (the server refuses an issuer without an audience)."
    }
  }

  #checkov:skip=CKV_AWS_116:Function URL invocations are synchronous: a dead-letter queue applies to asynchronous invocations only.
  #checkov:skip=CKV_AWS_117:The function reaches only DynamoDB and CloudWatch Logs, public AWS endpoints; a VPC would add NAT or endpoints and nothing to protect.
  #checkov:skip=CKV_AWS_173:The environment holds no secret (key digests, not keys); Lambda encrypts it at rest with its own key.
  #checkov:skip=CKV_AWS_272:Code signing needs a signing profile this deployment does not have; the zip's hash is pinned by source_code_hash.
  #checkov:skip=CKV_AWS_50:No X-Ray: traces go to OTLP when CANDIDATES_OTLP_ENDPOINT is set (docs/observability.md).
}
