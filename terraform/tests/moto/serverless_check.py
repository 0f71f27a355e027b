"""terraform/serverless/aws as moto holds it after the apply, and nothing left after destroy.

    serverless_check.py ENDPOINT REGION snapshot FILE     # what moto holds before the apply
    WRITE_KEY=... serverless_check.py ENDPOINT REGION applied NAME
    serverless_check.py ENDPOINT REGION leftovers FILE    # after destroy: only what was there before
"""
import hashlib
import json
import os
import sys

import boto3

endpoint, region, mode, arg = sys.argv[1:5]


def client(service):
    return boto3.client(service, endpoint_url=endpoint, region_name=region,
                        aws_access_key_id="test", aws_secret_access_key="test")


def inventory():
    return {
        "functions": sorted(f["FunctionName"] for f in client("lambda").list_functions()["Functions"]),
        "tables": sorted(client("dynamodb").list_tables()["TableNames"]),
        "roles": sorted(r["RoleName"] for r in client("iam").list_roles()["Roles"]
                        if not r["Path"].startswith("/aws-service-role/")),
        "log_groups": sorted(g["logGroupName"] for g in client("logs").describe_log_groups()["logGroups"]),
    }


def fail(message):
    print(f"serverless_check: {message}", file=sys.stderr)
    sys.exit(1)


if mode == "snapshot":
    json.dump(inventory(), open(arg, "w"))
elif mode == "leftovers":
    before = json.load(open(arg))
    after = inventory()
    left = {kind: sorted(set(after[kind]) - set(before[kind])) for kind in after}
    if any(left.values()):
        fail(f"left behind in moto: {left}")
    print("nothing left behind")
elif mode == "applied":
    name, key = arg, os.environ["WRITE_KEY"]
    lam = client("lambda")
    fn = lam.get_function_configuration(FunctionName=name)
    checks = {
        "runtime": (fn["Runtime"], "provided.al2023"),
        "handler": (fn["Handler"], "bootstrap"),
        "architectures": (fn["Architectures"], ["arm64"]),
    }
    for what, (got, want) in checks.items():
        if got != want:
            fail(f"function {what}: {got!r}, expected {want!r}")
    env = fn["Environment"]["Variables"]
    digest = hashlib.sha256(key.encode()).hexdigest()
    if not env.get("CANDIDATES_API_KEY_LINES", "").startswith(f"{digest} candidates.read,candidates.write "):
        fail("CANDIDATES_API_KEY_LINES does not start with the write key's digest line")
    if any(key in value for value in env.values()):
        fail("the write key itself is in the function's environment")
    table = env["CANDIDATES_DYNAMODB_TABLE"]
    client("dynamodb").describe_table(TableName=table)
    url = lam.get_function_url_config(FunctionName=name)
    if url["AuthType"] != "NONE":
        fail(f"function URL auth type {url['AuthType']}")
    # moto 5 answers InvokeMode only when it was given (checked when present).
    if url.get("InvokeMode", "RESPONSE_STREAM") != "RESPONSE_STREAM":
        fail(f"function URL invoke mode {url['InvokeMode']}")
    policy = json.loads(lam.get_policy(FunctionName=name)["Policy"])
    actions = sorted(s["Action"] for s in policy["Statement"])
    if "lambda:InvokeFunctionUrl" not in actions:
        fail(f"no lambda:InvokeFunctionUrl statement: {actions}")
    reserved = lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
    print(f"function {name}: provided.al2023 arm64, key digest line present, table {table}, "
          f"URL auth NONE invoke mode {url.get('InvokeMode', '(not returned)')}, policy actions {actions}, "
          f"reserved concurrency {reserved}")
else:
    fail(f"unknown mode {mode}")
