# The second Function URL statement (function_url.tf): lambda:InvokeFunction, only when invoked
# through the function URL. Its own file because `invoked_via_function_url` is new in provider
# 6.28, and terraform/tests/moto/serverless.sh, whose provider mirror has 5.100, leaves this file
# out (terraform/invariants checks it instead).
resource "aws_lambda_permission" "url_invoke" {
  statement_id             = "CandidatesFunctionUrlInvoke"
  action                   = "lambda:InvokeFunction"
  function_name            = aws_lambda_function.this.function_name
  principal                = "*"
  invoked_via_function_url = true
  #checkov:skip=CKV_AWS_301:Only through the function URL (lambda:InvokedViaFunctionUrl); the plain Invoke API stays closed.
}
