"""What terraform/aws left in the harness's moto_server, through the AWS APIs (boto3) on 127.0.0.1.

    check_moto.py ENDPOINT REGION snapshot FILE          # record what exists (before apply)
    check_moto.py ENDPOINT REGION applied NAME           # the stack is there, tagged as it should be;
                                                         # WRITE_KEY (env): the root's write_key output
    check_moto.py ENDPOINT REGION leftovers FILE         # after destroy: nothing beyond FILE

Called by run.sh; talks to ENDPOINT only (it must be http://127.0.0.1:PORT), with dummy credentials.
"""
import base64
import hashlib
import json
import os
import re
import sys

import boto3
import yaml

ENDPOINT, REGION, COMMAND, ARG = sys.argv[1:5]
assert ENDPOINT.startswith("http://127.0.0.1:"), ENDPOINT


def client(service):
    return boto3.client(service, endpoint_url=ENDPOINT, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test")


def orphaned(volume, terminated):
    """moto gap: for an instance an Auto Scaling group launches from a launch template, moto makes
    the template's root mapping a second volume and, when the instance terminates, leaves it
    "in-use", attached to the terminated instance, although the mapping says
    delete_on_termination = true (it deletes it for run_instances). Only such volumes are skipped:
    any other volume the stack left would still be reported."""
    attachments = volume.get("Attachments") or []
    return bool(attachments) and all(a["InstanceId"] in terminated for a in attachments)


def snapshot():
    """kind -> sorted ids of everything the stack could create (and moto's own defaults)."""
    ec2, elbv2, asg = client("ec2"), client("elbv2"), client("autoscaling")
    iam, logs, ddb, cw = client("iam"), client("logs"), client("dynamodb"), client("cloudwatch")
    sns, events = client("sns"), client("events")
    instances = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    live_instances = [i["InstanceId"] for i in instances if i["State"]["Name"] not in ("terminated", "shutting-down")]
    terminated = {i["InstanceId"] for i in instances if i["State"]["Name"] == "terminated"}
    found = {
        "instances": live_instances,
        "vpcs": [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]],
        "subnets": [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]],
        "route_tables": [t["RouteTableId"] for t in ec2.describe_route_tables()["RouteTables"]],
        "internet_gateways": [g["InternetGatewayId"] for g in ec2.describe_internet_gateways()["InternetGateways"]],
        "nat_gateways": [g["NatGatewayId"] for g in ec2.describe_nat_gateways()["NatGateways"]
                         if g["State"] not in ("deleted", "deleting")],
        "addresses": [a.get("AllocationId", a.get("PublicIp")) for a in ec2.describe_addresses()["Addresses"]],
        "security_groups": [g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]],
        "vpc_endpoints": [e["VpcEndpointId"] for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]
                          if e["State"].lower() not in ("deleted", "deleting")],
        "flow_logs": [f["FlowLogId"] for f in ec2.describe_flow_logs()["FlowLogs"]],
        "launch_templates": [t["LaunchTemplateId"] for t in ec2.describe_launch_templates()["LaunchTemplates"]],
        "volumes": [v["VolumeId"] for v in ec2.describe_volumes()["Volumes"] if not orphaned(v, terminated)],
        "load_balancers": [lb["LoadBalancerArn"] for lb in elbv2.describe_load_balancers()["LoadBalancers"]],
        "target_groups": [tg["TargetGroupArn"] for tg in elbv2.describe_target_groups()["TargetGroups"]],
        "autoscaling_groups": [g["AutoScalingGroupName"] for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]],
        "scaling_policies": [p["PolicyARN"] for p in asg.describe_policies()["ScalingPolicies"]],
        "dynamodb_tables": ddb.list_tables()["TableNames"],
        "iam_roles": [r["RoleName"] for r in iam.list_roles()["Roles"]],
        "iam_instance_profiles": [p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]],
        "iam_local_policies": [p["Arn"] for p in iam.list_policies(Scope="Local")["Policies"]],
        "log_groups": [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]],
        "alarms": [a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]],
        "dashboards": [d["DashboardName"] for d in cw.list_dashboards()["DashboardEntries"]],
        "metric_filters": [f["filterName"] for f in logs.describe_metric_filters()["metricFilters"]],
        "sns_topics": [t["TopicArn"] for t in sns.list_topics()["Topics"]],
        "sns_subscriptions": [x["SubscriptionArn"] for x in sns.list_subscriptions()["Subscriptions"]],
        "event_rules": [r["Name"] for r in events.list_rules()["Rules"]],
    }
    return {kind: sorted(ids) for kind, ids in found.items()}


def applied(name):
    """The stack exists (so that an empty leftovers list means something), and what moto cannot
    show through a re-plan: the launch template's instance and volume tags carry the stack's tags."""
    now = snapshot()
    want = {"vpcs": 2, "load_balancers": 2, "target_groups": 2, "autoscaling_groups": 1, "scaling_policies": 2,
            "dynamodb_tables": 1, "launch_templates": 1, "flow_logs": 1, "nat_gateways": 1, "vpc_endpoints": 1,
            "alarms": 10, "dashboards": 1, "metric_filters": 1, "sns_topics": 1, "event_rules": 1}
    for kind, least in want.items():
        assert len(now[kind]) >= least, f"after apply, only {len(now[kind])} {kind} (want >= {least}): {now[kind]}"
    ec2 = client("ec2")
    template = ec2.describe_launch_templates()["LaunchTemplates"][0]
    data = ec2.describe_launch_template_versions(LaunchTemplateId=template["LaunchTemplateId"],
                                                 Versions=["$Latest"])["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    specs = {s["ResourceType"]: {t["Key"]: t["Value"] for t in s["Tags"]} for s in data.get("TagSpecifications", [])}
    for kind in ("instance", "volume"):
        tags = specs.get(kind, {})
        for key, value in {"application": "candidates", "deployment": name, "managed-by": "terraform"}.items():
            assert tags.get(key) == value, f"launch template {kind} tags lack {key}={value}: {tags}"
    # The write key reaches the instances only as its digest: in the launch template's user data
    # (and so every instance's), never the key; nor in any tag.
    key = os.environ["WRITE_KEY"]
    assert re.fullmatch(r"cand_[A-Za-z0-9_-]{43}", key), "the write_key output is not a key"
    user_data = base64.b64decode(data["UserData"]).decode()
    digest = hashlib.sha256(key.encode()).hexdigest()
    assert f"\n      {digest} candidates.read,candidates.write deploy\n" in user_data, "no key digest in the user data"
    for setting in ("CANDIDATES_API_KEYS_FILE=/etc/candidates/api-keys", "CANDIDATES_AUTH_WRITE=scope",
                    "CANDIDATES_AUTH_READ=anyone"):
        assert f"\n      {setting}\n" in user_data, f"the env file lacks {setting}"
    assert key not in user_data and key[len("cand_"):] not in user_data, "the write key is in the user data"
    assert len(user_data) <= 16384, f"user data is {len(user_data)} bytes, over EC2's 16 KB"
    instances = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
                 if i["State"]["Name"] == "running"]
    for instance in instances:
        attribute = ec2.describe_instance_attribute(InstanceId=instance["InstanceId"], Attribute="userData")
        launched = base64.b64decode(attribute.get("UserData", {}).get("Value", "")).decode()
        assert key not in launched, f"the write key is in {instance['InstanceId']}'s user data"
    everything = json.dumps([data.get("TagSpecifications", []), [i.get("Tags", []) for i in instances],
                             ec2.describe_tags()["Tags"]])
    assert key not in everything, "the write key is in a tag"
    # The flow-logs role is assumable only for this account's flow logs.
    iam = client("iam")
    role = next(r for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(f"{name}-flow-logs-"))
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    condition = trust["Statement"][0].get("Condition", {})
    assert "aws:SourceAccount" in condition.get("StringEquals", {}), trust
    assert "aws:SourceArn" in condition.get("ArnLike", {}), trust
    # Observability (terraform/aws/observability.tf): every alarm notifies the stack's topic, the
    # Auto Scaling failure rule targets it, and its policy lets EventBridge publish for that rule.
    topic = next(t for t in now["sns_topics"] if t.endswith(f":{name}-alarms"))
    for alarm in client("cloudwatch").describe_alarms(AlarmNamePrefix=f"{name}-")["MetricAlarms"]:
        assert alarm["AlarmActions"] == [topic], f"{alarm['AlarmName']} notifies {alarm['AlarmActions']}"
    events = client("events")
    targets = events.list_targets_by_rule(Rule=f"{name}-asg-failures")["Targets"]
    assert [t["Arn"] for t in targets] == [topic], targets
    policy = json.loads(client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"])
    publishers = [s["Principal"] for s in policy["Statement"]]
    assert {"Service": "events.amazonaws.com"} in publishers, policy
    group = client("logs").describe_log_groups(logGroupNamePrefix=f"/candidates/{name}/")["logGroups"]
    assert [g.get("retentionInDays") for g in group] == [30], group
    # The CloudWatch agent's configuration as Terraform rendered it into the user data: the
    # cloud-init document parses, the agent's file is JSON that ships the rsyslog file into the
    # group that exists, the Prometheus scrape is YAML aimed at the instance's /metrics, and
    # cloud-init enables the unit that loads the configuration.
    doc = yaml.safe_load(user_data)
    written = {f["path"]: f["content"] for f in doc["write_files"]}
    agent = json.loads(written["/opt/aws/amazon-cloudwatch-agent/etc/candidates.json"])
    shipped = agent["logs"]["logs_collected"]["files"]["collect_list"]
    assert [(f["file_path"], f["log_group_name"]) for f in shipped] == [
        ("/var/log/candidates/service.log", group[0]["logGroupName"])], shipped
    assert agent["logs"]["metrics_collected"]["prometheus"]["log_group_name"] == group[0]["logGroupName"]
    scrape = yaml.safe_load(written["/opt/aws/amazon-cloudwatch-agent/etc/candidates-prometheus.yaml"])
    assert scrape["scrape_configs"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9090"], scrape
    assert "/etc/systemd/system/candidates-cloudwatch-agent.service" in written
    assert ["systemctl", "enable", "--now", "candidates-cloudwatch-agent.service"] in doc["runcmd"], doc["runcmd"]
    print(f"applied: {', '.join(f'{len(now[k])} {k}' for k in want)}; launch template tags, flow-logs trust, alarm actions, the "
          "failure rule's target and the topic policy, the agent's configuration in the user data ok; "
          f"user data ({len(user_data)} bytes) has the write key's digest, not the key ({len(instances)} instances "
          "and every tag checked too)")


def leftovers(before_file):
    with open(before_file) as f:
        before = json.load(f)
    now = snapshot()
    left = {kind: sorted(set(ids) - set(before.get(kind, []))) for kind, ids in now.items()}
    left = {kind: ids for kind, ids in left.items() if ids}
    if left:
        print("left behind after destroy:", json.dumps(left, indent=1), file=sys.stderr)
        sys.exit(1)
    print(f"nothing left behind ({len(now)} kinds of resource compared with before apply)")


if COMMAND == "snapshot":
    with open(ARG, "w") as f:
        json.dump(snapshot(), f)
elif COMMAND == "applied":
    applied(ARG)
elif COMMAND == "leftovers":
    leftovers(ARG)
else:
    sys.exit(f"unknown command {COMMAND}")
