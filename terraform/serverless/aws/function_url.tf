# The public HTTPS endpoint. authorization_type NONE: the service applies its own access policy
# (API keys or OIDC, docs/security.md), as it does behind the scaling groups' load balancers;
# AWS_IAM would demand SigV4-signed requests from every client. RESPONSE_STREAM so GET /candidates
# streams (a buffered answer is capped at 6 MB). No `cors` block: the service answers CORS itself
# (CANDIDATES_CORS_ALLOW_ORIGINS), and two CORS layers would disagree.
resource "aws_lambda_function_url" "this" {
  function_name      = aws_lambda_function.this.function_name
  authorization_type = "NONE"
  invoke_mode        = "RESPONSE_STREAM"
  #checkov:skip=CKV_AWS_258:Public on purpose: the service applies its own key or token policy to every request (docs/security.md).
}

# With NONE, the function's resource-based policy must still allow the public (AWS Lambda developer
# guide, "Control access to Lambda function URLs"), and since October 2025 a new function URL needs
# both statements: lambda:InvokeFunctionUrl with the condition lambda:FunctionUrlAuthType = NONE,
# and lambda:InvokeFunction with lambda:InvokedViaFunctionUrl = true, which keeps the plain Invoke
# API closed to anyone else. The provider adds such statements itself on creation but does not
# track them; these are in the state and go with destroy.
resource "aws_lambda_permission" "url" {
  statement_id           = "CandidatesFunctionUrlPublic"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.this.function_name
  principal              = "*"
  function_url_auth_type = "NONE"
  #checkov:skip=CKV_AWS_301:Public through the function URL only (FunctionUrlAuthType NONE); the service checks keys or tokens itself.
}
