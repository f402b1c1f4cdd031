"""site.yml against the twin: everything the emulator can express, read back through boto3.

The checks follow the Security Hub PCI DSS v4.0.1 controls listed in the
solution brief (IMDSv2, no public IPs, no world ingress but the ALB, private
encrypted Multi-AZ RDS with 35-day backups and deletion protection, secrets
under the target's KMS key, validated and encrypted trail, 365-day logs ...).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gearlift.twin.awsclients import Clients
from gearlift.twin.runner import RunResult, run_playbook
from gearlift.twin.twin import Twin

from .conftest import REPO, ansible_env

pytestmark = pytest.mark.slow
NAME = "shop-rehearsal"
LOG_PREFIX = "/gearlift/shop/rehearsal"


def _run(twin: Twin, tmp: Path, label: str) -> RunResult:
    lines: list[str] = []
    result = run_playbook(
        REPO, "site.yml", ["inventories/rehearsal"], tmp / f"runner-{label}", twin.aws_env, lines.append
    )
    assert result.ok, "\n".join(lines + result.failures)
    return result


@pytest.fixture(scope="module")
def provisioned(twin: Twin, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("provision")
    twin.start_loop()
    try:
        first = _run(twin, tmp, "first")
        second = _run(twin, tmp, "second")
        yield {"twin": twin, "first": first, "second": second, "tmp": tmp}
    finally:
        twin.stop_loop()


def _c(p: dict[str, Any], service: str) -> Any:
    return p["twin"].clients(service)


def test_second_run_changes_nothing(provisioned: dict[str, Any]) -> None:
    assert provisioned["first"].totals()["changed"] > 0
    changed = provisioned["second"].changed_tasks
    assert provisioned["second"].totals()["changed"] == 0, f"second run changed: {changed}"


def test_network_tiers_and_isolated_db(provisioned: dict[str, Any]) -> None:
    ec2 = _c(provisioned, "ec2")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [NAME]}])["Vpcs"]
    assert len(vpcs) == 1
    vpc = vpcs[0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    tiers: dict[str, set[str]] = {}
    for s in subnets:
        tags = {t["Key"]: t["Value"] for t in s.get("Tags", [])}
        tiers.setdefault(tags["gearlift:tier"], set()).add(s["AvailabilityZone"])
        assert s["MapPublicIpOnLaunch"] is False  # EC2.15
    assert set(tiers) == {"public", "app", "db", "bake"}
    assert all(len(azs) == 2 for tier, azs in tiers.items() if tier != "bake")
    assert len(tiers["bake"]) == 1  # the image builder's own subnet, one AZ
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"]
    db_table = next(t for t in tables if {"Key": "Name", "Value": f"{NAME}-db"} in t.get("Tags", []))
    assert not [r for r in db_table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
    # the bake subnet: out through the NAT only (no internet gateway, no VPN), and its table is its own
    bake_table = next(t for t in tables if {"Key": "Name", "Value": f"{NAME}-bake"} in t.get("Tags", []))
    bake_subnets = {s["SubnetId"] for s in subnets if {"Key": "gearlift:tier", "Value": "bake"} in s["Tags"]}
    assert {a["SubnetId"] for a in bake_table["Associations"] if a.get("SubnetId")} == bake_subnets
    out = [r for r in bake_table["Routes"] if r.get("DestinationCidrBlock") not in (None, vpcs[0]["CidrBlock"])]
    assert [r["DestinationCidrBlock"] for r in out] == ["0.0.0.0/0"] and out[0].get("NatGatewayId"), out
    app_tables = [
        t for t in tables if any(x["Value"].startswith(f"{NAME}-app-") for x in t.get("Tags", []) if x["Key"] == "Name")
    ]
    assert app_tables and all(
        any(r.get("NatGatewayId") for r in t["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0")
        for t in app_tables
    )
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["VpcEndpoints"]
    assert any(e["ServiceName"].endswith(".s3") and e["VpcEndpointType"] == "Gateway" for e in endpoints)
    flows = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc]}])["FlowLogs"]
    assert [f["LogGroupName"] for f in flows] == [f"{LOG_PREFIX}/vpc-flow-logs"]  # EC2.6


def test_security_groups_reference_each_other_and_no_world_admin_ports(provisioned: dict[str, Any]) -> None:
    ec2 = _c(provisioned, "ec2")
    groups = {
        g["GroupName"]: g
        for g in ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [f"{NAME}-*"]}])[
            "SecurityGroups"
        ]
    }
    alb, app, db = groups[f"{NAME}-alb"], groups[f"{NAME}-app"], groups[f"{NAME}-db"]
    for group in groups.values():
        for perm in group["IpPermissions"]:
            world = [r for r in perm.get("IpRanges", []) if r["CidrIp"] == "0.0.0.0/0"]
            if world:
                assert group is alb and perm["FromPort"] in (80, 443), (group["GroupName"], perm)
            assert not (perm.get("FromPort", 0) <= 22 <= perm.get("ToPort", 0)), "no SSH anywhere"  # EC2.13/53/54
    assert [p["UserIdGroupPairs"][0]["GroupId"] for p in app["IpPermissions"]] == [alb["GroupId"]]
    # The database: MySQL from the app group and from the secret rotation function's group only.
    assert sorted((p["FromPort"], pair["GroupId"]) for p in db["IpPermissions"] for pair in p["UserIdGroupPairs"]) == (
        sorted([(3306, app["GroupId"]), (3306, groups[f"{NAME}-db-rotation"]["GroupId"])])
    )
    assert all(not p.get("IpRanges") for p in db["IpPermissions"]), db["IpPermissions"]


def test_launch_template_imdsv2_encrypted_no_public_ip(provisioned: dict[str, Any]) -> None:
    ec2 = _c(provisioned, "ec2")
    lt = ec2.describe_launch_template_versions(LaunchTemplateName=NAME, Versions=["$Default"])[
        "LaunchTemplateVersions"
    ][0]["LaunchTemplateData"]
    assert lt["MetadataOptions"]["HttpTokens"] == "required"  # EC2.170 / AutoScaling.3
    assert lt["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    assert all(b["Ebs"]["Encrypted"] for b in lt["BlockDeviceMappings"])
    assert all(b["Ebs"]["VolumeType"] == "gp3" for b in lt["BlockDeviceMappings"])
    assert all(n["AssociatePublicIpAddress"] is False for n in lt["NetworkInterfaces"])  # Autoscaling.5
    assert lt["IamInstanceProfile"]["Name"] == f"{NAME}-app"
    user_data = lt.get("UserData", "")
    import base64

    assert "password" not in base64.b64decode(user_data).decode().lower()


def test_auto_scaling_group_elb_checks_across_app_subnets(provisioned: dict[str, Any]) -> None:
    asg = _c(provisioned, "autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[NAME])[
        "AutoScalingGroups"
    ][0]
    assert asg["HealthCheckType"] == "ELB"  # AutoScaling.1
    assert len(asg["VPCZoneIdentifier"].split(",")) == 2
    assert asg["MinSize"] >= 2 and len(asg["Instances"]) == asg["DesiredCapacity"]
    assert asg["TargetGroupARNs"]
    ec2 = _c(provisioned, "ec2")
    subnets = ec2.describe_subnets(SubnetIds=asg["VPCZoneIdentifier"].split(","))["Subnets"]
    assert {t["Value"] for s in subnets for t in s["Tags"] if t["Key"] == "gearlift:tier"} == {"app"}
    reservations = ec2.describe_instances(InstanceIds=[i["InstanceId"] for i in asg["Instances"]])["Reservations"]
    assert all("PublicIpAddress" not in i for r in reservations for i in r["Instances"])  # EC2.8-ish: no public IPs


def test_rds_private_encrypted_multi_az_backups_protected(provisioned: dict[str, Any]) -> None:
    db = _c(provisioned, "rds").describe_db_instances(DBInstanceIdentifier=NAME)["DBInstances"][0]
    assert db["PubliclyAccessible"] is False  # RDS.2
    assert db["StorageEncrypted"] is True  # RDS.3
    assert db["MultiAZ"] is True  # RDS.5
    assert db["BackupRetentionPeriod"] == 35
    assert db["DeletionProtection"] is True  # RDS.8
    assert db["AutoMinorVersionUpgrade"] is True  # RDS.13
    assert set(db.get("EnabledCloudwatchLogsExports", [])) >= {"error", "slowquery", "audit"}  # RDS.9
    assert db["MasterUserSecret"]["SecretArn"]
    assert db["DBParameterGroups"][0]["DBParameterGroupName"] == f"{NAME}-mysql80"


def test_app_secret_under_the_targets_kms_key(provisioned: dict[str, Any]) -> None:
    kms = _c(provisioned, "kms")
    key = kms.describe_key(KeyId=f"alias/{NAME}-secrets")["KeyMetadata"]
    secret = _c(provisioned, "secretsmanager").describe_secret(SecretId=f"gearlift/{NAME}/app-db")
    assert secret["KmsKeyId"] in (key["KeyId"], key["Arn"], f"alias/{NAME}-secrets")
    value = json.loads(
        _c(provisioned, "secretsmanager").get_secret_value(SecretId=f"gearlift/{NAME}/app-db")["SecretString"]
    )
    db = _c(provisioned, "rds").describe_db_instances(DBInstanceIdentifier=NAME)["DBInstances"][0]
    assert value["host"] == db["Endpoint"]["Address"] and len(value["password"]) >= 24
    for alias in ("logs", "data", "secrets"):
        key_id = kms.describe_key(KeyId=f"alias/{NAME}-{alias}")["KeyMetadata"]["KeyId"]
        assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True  # KMS.4


def test_trail_validated_encrypted_and_logs_kept_a_year(provisioned: dict[str, Any]) -> None:
    trail = _c(provisioned, "cloudtrail").describe_trails(trailNameList=[NAME])["trailList"][0]
    assert trail["LogFileValidationEnabled"] is True  # CloudTrail.4
    assert trail["IsMultiRegionTrail"] is True  # CloudTrail.1/.3 baseline
    assert trail.get("KmsKeyId")  # CloudTrail.2
    s3 = _c(provisioned, "s3")
    pab = s3.get_public_access_block(Bucket=trail["S3BucketName"])["PublicAccessBlockConfiguration"]
    assert all(pab.values())  # S3.1/S3.8
    groups = _c(provisioned, "logs").describe_log_groups(logGroupNamePrefix=LOG_PREFIX)["logGroups"]
    assert len(groups) >= 7
    for group in groups:
        assert group.get("retentionInDays", 0) >= 365, group["logGroupName"]
        assert group.get("kmsKeyId") == _key_arn(provisioned, "logs"), group["logGroupName"]


def test_alb_tls_redirect_and_header_hygiene(provisioned: dict[str, Any]) -> None:
    elbv2 = _c(provisioned, "elbv2")
    lb = elbv2.describe_load_balancers(Names=[NAME])["LoadBalancers"][0]
    listeners = {li["Port"]: li for li in elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]}
    assert listeners[443]["Protocol"] == "HTTPS" and listeners[443]["SslPolicy"].startswith(
        "ELBSecurityPolicy-TLS13-1-2"
    )
    assert listeners[80]["DefaultActions"][0]["Type"] == "redirect"  # ELB.1
    attrs = {
        a["Key"]: a["Value"]
        for a in elbv2.describe_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"])["Attributes"]
    }
    assert attrs["routing.http.drop_invalid_header_fields.enabled"] == "true"  # ELB.4
    assert attrs["routing.http.desync_mitigation_mode"] == "defensive"  # ELB.12
    tg = elbv2.describe_target_groups(Names=[f"{NAME}-app"])["TargetGroups"][0]
    assert tg["HealthCheckPath"] == "/health"


def test_guardduty_and_inspector_on(provisioned: dict[str, Any]) -> None:
    gd = _c(provisioned, "guardduty")
    detectors = gd.list_detectors()["DetectorIds"]
    assert len(detectors) == 1 and gd.get_detector(DetectorId=detectors[0])["Status"] == "ENABLED"  # GuardDuty.1


def _key_arn(p: dict[str, Any], purpose: str, region: str | None = None) -> str:
    kms = _c(p, "kms") if region is None else _region_client(p, "kms", region)
    return str(kms.describe_key(KeyId=f"alias/{NAME}-{purpose}")["KeyMetadata"]["Arn"])


def _region_client(p: dict[str, Any], service: str, region: str) -> Any:
    clients = p["twin"].clients
    return Clients(clients.endpoint, region)(service)


def test_config_records_into_a_private_encrypted_bucket(provisioned: dict[str, Any]) -> None:
    cfg = _c(provisioned, "config")
    recorders = cfg.describe_configuration_recorders()["ConfigurationRecorders"]
    assert len(recorders) == 1 and recorders[0]["recordingGroup"]["allSupported"] is True
    assert recorders[0]["roleARN"].endswith(f":role/{NAME}-config")
    statuses = cfg.describe_configuration_recorder_status()["ConfigurationRecordersStatus"]
    assert [s["recording"] for s in statuses] == [True]  # Config.1
    channel = cfg.describe_delivery_channels()["DeliveryChannels"][0]
    assert channel["s3KmsKeyArn"] == _key_arn(provisioned, "logs")
    s3 = _c(provisioned, "s3")
    bucket = channel["s3BucketName"]
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert any(st["Sid"] == "DenyInsecureTransport" and st["Effect"] == "Deny" for st in policy["Statement"])  # S3.5


def test_waf_logs_with_session_headers_redacted(provisioned: dict[str, Any]) -> None:
    waf = _c(provisioned, "wafv2")
    acl = next(a for a in waf.list_web_acls(Scope="REGIONAL")["WebACLs"] if a["Name"] == NAME)
    logging = waf.get_logging_configuration(ResourceArn=acl["ARN"])["LoggingConfiguration"]  # WAF.11
    [destination] = logging["LogDestinationConfigs"]
    assert destination.endswith(f":log-group:aws-waf-logs-{NAME}")
    assert {f["SingleHeader"]["Name"] for f in logging["RedactedFields"]} == {"authorization", "cookie"}
    group = _c(provisioned, "logs").describe_log_groups(logGroupNamePrefix=f"aws-waf-logs-{NAME}")["logGroups"][0]
    assert group["retentionInDays"] >= 365 and group["kmsKeyId"] == _key_arn(provisioned, "logs")


def test_alarm_topic_encrypted_and_backups_copied_to_an_encrypted_vault(provisioned: dict[str, Any]) -> None:
    sns = _c(provisioned, "sns")
    topic = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(f":{NAME}-alarms"))
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["KmsMasterKeyId"] == _key_arn(provisioned, "logs")
    copy_region = "us-west-2"  # inventories/rehearsal: gearlift_backup_copy_region
    vault = _region_client(provisioned, "backup", copy_region).describe_backup_vault(BackupVaultName=NAME)
    assert vault["EncryptionKeyArn"] == _key_arn(provisioned, "data", copy_region)
    plan_id = next(
        p["BackupPlanId"]
        for p in _c(provisioned, "backup").list_backup_plans()["BackupPlansList"]
        if p["BackupPlanName"] == NAME
    )
    rules = _c(provisioned, "backup").get_backup_plan(BackupPlanId=plan_id)["BackupPlan"]["Rules"]
    for rule in rules:
        assert [c["DestinationBackupVaultArn"] for c in rule["CopyActions"]] == [vault["BackupVaultArn"]]


def test_dynamic_inventory_lists_the_fleet_and_ansible_reaches_it(provisioned: dict[str, Any]) -> None:
    twin = provisioned["twin"]
    asg = twin.clients("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[NAME])["AutoScalingGroups"][0]
    members = sorted(i["InstanceId"] for i in asg["Instances"])
    twin.wait_for(lambda: all(twin.ec2 and m in twin.ec2.containers() for m in members), 120, "fleet containers")
    env = ansible_env({k: v for k, v in twin.aws_env.items()})
    listing = subprocess.run(
        ["ansible-inventory", "-i", "inventories/rehearsal/fleet.aws.yml", "--list"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert listing.returncode == 0, listing.stderr
    hosts = sorted(json.loads(listing.stdout)["_meta"]["hostvars"])
    assert hosts == members
    ping = subprocess.run(
        ["ansible", "all", "-i", "inventories/rehearsal/fleet.aws.yml", "-m", "ansible.builtin.ping"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert ping.returncode == 0, ping.stdout[-2000:] + ping.stderr[-2000:]
    assert ping.stdout.count("SUCCESS") == len(members)


# ---------------------------------------------------------------- issue 17: PCI DSS at the AWS layer

HOST_LOG_GROUPS = {"apache-access", "apache-error", "app", "auth", "audit", "aide", "payment-page", "syslog"}
CIS_FILTERS = {  # playbooks/vars/cis_metric_filters.yml: Security Hub CloudWatch.1 - .14
    "root-usage",
    "unauthorized-api-calls",
    "console-signin-without-mfa",
    "iam-policy-changes",
    "cloudtrail-config-changes",
    "console-auth-failures",
    "cmk-disable-or-deletion",
    "s3-bucket-policy-changes",
    "aws-config-changes",
    "security-group-changes",
    "nacl-changes",
    "network-gateway-changes",
    "route-table-changes",
    "vpc-changes",
}


def _caller(p: dict[str, Any]) -> tuple[str, str]:
    """(partition, account) of the rehearsal account."""
    arn = _c(p, "sts").get_caller_identity()["Arn"]
    return arn.split(":")[1], arn.split(":")[4]


def _topic(p: dict[str, Any]) -> str:
    topics = _c(p, "sns").list_topics()["Topics"]
    return next(t["TopicArn"] for t in topics if t["TopicArn"].endswith(f":{NAME}-alarms"))


def _statements(document: Any) -> list[dict[str, Any]]:
    doc = json.loads(document) if isinstance(document, str) else document
    statements = doc["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_instance_role_is_inline_least_privilege(provisioned: dict[str, Any]) -> None:
    """PCI 7.2.1/7.2.2, 10.3.2: no AWS-managed policy; its own log groups, parameters, secret, key only."""
    iam = _c(provisioned, "iam")
    partition, account = _caller(provisioned)
    role = f"{NAME}-app"
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["least-privilege"]
    statements = _statements(iam.get_role_policy(RoleName=role, PolicyName="least-privilege")["PolicyDocument"])
    by_sid = {s["Sid"]: s for s in statements}
    actions = [a for s in statements for a in _listed(s["Action"])]
    assert not [a for a in actions if a in ("logs:CreateLogGroup", "logs:PutRetentionPolicy", "logs:*", "ssm:*")]
    assert not [a for a in actions if a.endswith(":*") or a == "*"]
    logs = by_sid["ShipToTheHostLogGroupsOnly"]["Resource"]
    assert sorted(logs) == sorted(
        f"arn:{partition}:logs:us-east-1:{account}:log-group:{LOG_PREFIX}/{g}:*" for g in HOST_LOG_GROUPS
    )
    params = _listed(by_sid["ReadTheTargetsParameters"]["Resource"])
    golden = f"arn:{partition}:ssm:us-east-1:{account}:parameter{LOG_PREFIX}/golden-ami-id"  # the bake's parameter
    assert golden in params and all(
        r.startswith(f"arn:{partition}:ssm:us-east-1:{account}:parameter/gearlift/shop/rehearsal") for r in params
    )
    assert by_sid["DecryptTheAppSecret"]["Resource"] == _key_arn(provisioned, "secrets")
    # The app's DB secret only (the session store's secret joins it with gearlift_session_store: redis).
    assert _listed(by_sid["ReadTheAppSecret"]["Resource"]) == [
        f"arn:{partition}:secretsmanager:us-east-1:{account}:secret:gearlift/{NAME}/app-db-*"
    ]
    # the only "*" resources are for calls without resource-level permissions
    star = {s["Sid"] for s in statements if s["Resource"] == "*"}
    assert star == {
        "AgentMetricsInItsNamespace",
        "AgentDescribesItsInstance",
        "SSMAgentCore",
        "SSMAgentSessionsAndMessages",
    }
    assert by_sid["AgentMetricsInItsNamespace"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "CWAgent"}}


def test_trail_delivered_to_cloudwatch_logs_with_cis_filters_and_alarms(provisioned: dict[str, Any]) -> None:
    """CloudTrail.5 and CloudWatch.1-14 (PCI 10.3.3, 10.4.1): filters on the trail's group, alarms to the topic."""
    partition, account = _caller(provisioned)
    trail = _c(provisioned, "cloudtrail").describe_trails(trailNameList=[NAME])["trailList"][0]
    group = f"{LOG_PREFIX}/cloudtrail"
    assert trail["CloudWatchLogsLogGroupArn"] == f"arn:{partition}:logs:us-east-1:{account}:log-group:{group}:*"
    assert trail["CloudWatchLogsRoleArn"].endswith(f":role/{NAME}-cloudtrail-logs")
    iam = _c(provisioned, "iam")
    trust = _statements(iam.get_role(RoleName=f"{NAME}-cloudtrail-logs")["Role"]["AssumeRolePolicyDocument"])
    assert [s["Principal"] for s in trust] == [{"Service": "cloudtrail.amazonaws.com"}]
    assert trust[0]["Condition"]["StringEquals"] == {"aws:SourceAccount": account}
    [delivery] = _statements(
        iam.get_role_policy(RoleName=f"{NAME}-cloudtrail-logs", PolicyName="deliver-to-the-trail-log-group")[
            "PolicyDocument"
        ]
    )
    assert delivery["Resource"] == f"arn:{partition}:logs:us-east-1:{account}:log-group:{group}:log-stream:*"
    logs = _c(provisioned, "logs")
    filters = logs.describe_metric_filters(logGroupName=group)["metricFilters"]
    names = {f["filterName"].removeprefix(f"{NAME}-cis-") for f in filters}
    assert names == CIS_FILTERS
    metrics = {f["metricTransformations"][0]["metricName"] for f in filters}
    topic = _topic(provisioned)
    alarms = _c(provisioned, "cloudwatch").describe_alarms(AlarmNamePrefix=f"{NAME}-cis-")["MetricAlarms"]
    assert len(alarms) == len(CIS_FILTERS)
    for alarm in alarms:
        assert alarm["MetricName"] in metrics, alarm["AlarmName"]
        assert alarm["AlarmActions"] == [topic]
        assert alarm["Threshold"] >= 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_every_log_group_the_agent_ships_to_exists_encrypted(provisioned: dict[str, Any]) -> None:
    """The agent may not create groups; fleet.yml creates all of them, syslog included (KMS, 365 days)."""
    groups = {
        g["logGroupName"]: g
        for g in _c(provisioned, "logs").describe_log_groups(logGroupNamePrefix=LOG_PREFIX)["logGroups"]
    }
    for name in HOST_LOG_GROUPS:
        group = groups[f"{LOG_PREFIX}/{name}"]
        assert group["retentionInDays"] >= 365 and group["kmsKeyId"] == _key_arn(provisioned, "logs"), name


def _s3control(p: dict[str, Any], account: str) -> Any:
    """S3 Control against the emulator: its endpoint rules put the account in front of the host."""
    client = _region_client(p, "s3control", "us-east-1")

    def strip(request: Any, **kwargs: Any) -> None:
        request.url = request.url.replace(f"//{account}.", "//", 1)

    client.meta.events.register("before-sign.s3-control.*", strip)
    return client


def test_account_public_access_block_password_policy_and_rds_events(provisioned: dict[str, Any]) -> None:
    """S3.1, IAM.7 / PCI 8.3.6, 8.3.7, 8.3.9, RDS.20 / PCI 10.7.1, detailed monitoring."""
    _, account = _caller(provisioned)
    pab = _s3control(provisioned, account).get_public_access_block(AccountId=account)
    assert pab["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    policy = _c(provisioned, "iam").get_account_password_policy()["PasswordPolicy"]
    assert policy["MinimumPasswordLength"] >= 12
    assert all(policy[k] for k in ("RequireSymbols", "RequireNumbers", "RequireUppercaseCharacters"))
    assert policy["RequireLowercaseCharacters"] is True
    assert policy["PasswordReusePrevention"] >= 4 and 0 < policy["MaxPasswordAge"] <= 90
    [subscription] = _c(provisioned, "rds").describe_event_subscriptions(SubscriptionName=f"{NAME}-db-events")[
        "EventSubscriptionsList"
    ]
    assert subscription["SnsTopicArn"] == _topic(provisioned)
    assert subscription["SourceType"] == "db-instance" and subscription["SourceIdsList"] == [NAME]
    assert subscription["Enabled"] is True
    assert {"failure", "failover", "maintenance", "low storage"} <= set(subscription["EventCategoriesList"])
    lt = _c(provisioned, "ec2").describe_launch_template_versions(LaunchTemplateName=NAME, Versions=["$Default"])[
        "LaunchTemplateVersions"
    ][0]["LaunchTemplateData"]
    assert lt["Monitoring"] == {"Enabled": True}


def test_findings_routed_to_the_topic_only_from_this_accounts_rules(provisioned: dict[str, Any]) -> None:
    """PCI 10.4.1 / 10.7.1: GuardDuty, Security Hub, Inspector findings of HIGH and above to the topic."""
    partition, account = _caller(provisioned)
    events = _c(provisioned, "events")
    topic = _topic(provisioned)
    patterns = {}
    for name in ("guardduty-findings", "securityhub-findings", "inspector-findings"):
        rule = events.describe_rule(Name=f"{NAME}-{name}")
        assert rule["State"] == "ENABLED"
        patterns[name] = json.loads(rule["EventPattern"])
        assert [t["Arn"] for t in events.list_targets_by_rule(Rule=f"{NAME}-{name}")["Targets"]] == [topic]
    assert patterns["guardduty-findings"]["detail"]["severity"] == [{"numeric": [">=", 7]}]
    assert patterns["securityhub-findings"]["detail"]["findings"]["Severity"]["Label"] == ["HIGH", "CRITICAL"]
    assert patterns["inspector-findings"]["detail"]["severity"] == ["HIGH", "CRITICAL"]
    policy = _statements(_c(provisioned, "sns").get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"])
    by_sid = {s["Sid"]: s for s in policy}
    rules = by_sid["EventBridgeRulesOfThisTarget"]
    assert rules["Principal"] == {"Service": "events.amazonaws.com"}
    assert rules["Condition"]["StringEquals"] == {"aws:SourceAccount": account}
    assert rules["Condition"]["ArnLike"] == {
        "aws:SourceArn": f"arn:{partition}:events:us-east-1:{account}:rule/{NAME}-*"
    }
    # nobody outside the account: every Allow names the account root or a service with a source condition
    for statement in policy:
        if "AWS" in statement["Principal"]:
            assert statement["Principal"]["AWS"] in (f"arn:{partition}:iam::{account}:root", account)
        else:
            assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == account


def test_default_security_group_has_no_rules(provisioned: dict[str, Any]) -> None:
    """EC2.2 (PCI 1.2.1): the VPC's default group, which nothing uses, allows nothing."""
    ec2 = _c(provisioned, "ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [NAME]}])["Vpcs"][0]["VpcId"]
    [default] = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"]
    assert default["IpPermissions"] == [] and default["IpPermissionsEgress"] == []


def _rehearsal_settings() -> dict[str, Any]:
    settings: dict[str, Any] = yaml.safe_load(
        (REPO / "inventories" / "rehearsal" / "group_vars" / "all" / "main.yml").read_text(encoding="utf-8")
    )
    return settings


def _egress(group: dict[str, Any]) -> set[tuple[str, int, str]]:
    """(protocol, port, CIDR or group id) of each outbound rule."""
    out = set()
    for perm in group["IpPermissionsEgress"]:
        for peer in [r["CidrIp"] for r in perm.get("IpRanges", [])] + [
            p["GroupId"] for p in perm.get("UserIdGroupPairs", [])
        ]:
            out.add((perm["IpProtocol"], perm.get("FromPort", -1), peer))
            assert perm.get("FromPort") == perm.get("ToPort"), perm  # one port per rule, no ranges
    return out


def test_egress_is_explicit_and_least_privilege_per_tier(provisioned: dict[str, Any]) -> None:
    """PCI 1.3.2: ALB -> app port to the app group; app -> 443 out, 3306 to the DB group and NFS 2049 to the
    uploads' EFS group; DB -> nothing."""
    ec2 = _c(provisioned, "ec2")
    groups = {
        g["GroupName"]: g
        for g in ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [f"{NAME}-*"]}])[
            "SecurityGroups"
        ]
    }
    alb, app, db, efs = groups[f"{NAME}-alb"], groups[f"{NAME}-app"], groups[f"{NAME}-db"], groups[f"{NAME}-efs"]
    [app_port] = {p["FromPort"] for p in app["IpPermissions"]}
    assert _egress(alb) == {("tcp", app_port, app["GroupId"])}
    extra = {
        (str(r.get("proto", "tcp")), int(r["port"]), str(r["cidr"]))
        for r in _rehearsal_settings().get("gearlift_app_egress_extra", [])
    }
    # 443 out, 3306 to the DB tier, 2049 to the EFS group, the inventory's named extras (the OS mirrors on 80)
    assert (
        _egress(app) == {("tcp", 443, "0.0.0.0/0"), ("tcp", 3306, db["GroupId"]), ("tcp", 2049, efs["GroupId"])} | extra
    )
    assert db["IpPermissionsEgress"] == []
    # the image builder's group: nothing in; 443 out and the inventory's named bake extras (the OS mirrors on 80)
    bake = groups[f"{NAME}-bake"]
    bake_extra = {
        (str(r.get("proto", "tcp")), int(r["port"]), str(r["cidr"]))
        for r in _rehearsal_settings().get("gearlift_bake_egress_extra", [])
    }
    assert bake["IpPermissions"] == []
    assert _egress(bake) == {("tcp", 443, "0.0.0.0/0")} | bake_extra


def test_the_image_builder_has_a_role_of_its_own_without_production_secrets(provisioned: dict[str, Any]) -> None:
    """PCI 6.5.3 / 6.5.4, 7.2.2: the bake role (and its instance profile) may only run the SSM agent: no secret,
    parameter, key or log group of the target; EC2 alone may assume it."""
    iam = _c(provisioned, "iam")
    role = f"{NAME}-bake"
    trust = _statements(iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"])
    assert [(s["Principal"], s["Action"]) for s in trust] == [({"Service": "ec2.amazonaws.com"}, "sts:AssumeRole")]
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["session-manager-only"]
    statements = _statements(iam.get_role_policy(RoleName=role, PolicyName="session-manager-only")["PolicyDocument"])
    actions = {a for s in statements for a in _listed(s["Action"])}
    assert {a.split(":")[0] for a in actions} == {"ssm", "ssmmessages", "ec2messages"}
    assert not {a for a in actions if a.startswith("ssm:GetParameter") or a.endswith(":*") or a == "*"}
    profile = iam.get_instance_profile(InstanceProfileName=role)["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == [role]


def test_host_alarms_aide_payment_page_and_standby(provisioned: dict[str, Any]) -> None:
    """PCI 10.4.1 / 11.5.2 / 11.6.1: metric filters on the hosts' AIDE and payment-page log groups and an alarm
    each to the topic; an alarm on hosts left in Standby, fed by the group's collected metrics."""
    logs, cloudwatch, topic = _c(provisioned, "logs"), _c(provisioned, "cloudwatch"), _topic(provisioned)
    for group, name, words in (
        ("aide", "aide-changes", "AIDE found differences"),
        ("payment-page", "payment-page-changes", "PAYMENT_PAGE_CHANGED"),
    ):
        [metric_filter] = logs.describe_metric_filters(logGroupName=f"{LOG_PREFIX}/{group}")["metricFilters"]
        assert metric_filter["filterName"] == f"{NAME}-host-{name}" and words in metric_filter["filterPattern"]
        [transform] = metric_filter["metricTransformations"]
        [alarm] = cloudwatch.describe_alarms(AlarmNames=[f"{NAME}-host-{name}"])["MetricAlarms"]
        assert (alarm["Namespace"], alarm["MetricName"]) == (transform["metricNamespace"], transform["metricName"])
        assert alarm["AlarmActions"] == [topic] and alarm["Threshold"] == 1
    [standby] = cloudwatch.describe_alarms(AlarmNames=[f"{NAME}-hosts-in-standby"])["MetricAlarms"]
    assert (standby["Namespace"], standby["MetricName"]) == ("AWS/AutoScaling", "GroupStandbyInstances")
    assert standby["Dimensions"] == [{"Name": "AutoScalingGroupName", "Value": NAME}]
    assert standby["Period"] * standby["EvaluationPeriods"] == 60 * 60  # gearlift_standby_alarm_minutes' default
    assert standby["AlarmActions"] == [topic] and standby["Threshold"] == 0
    group = _c(provisioned, "autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[NAME])[
        "AutoScalingGroups"
    ][0]
    assert "GroupStandbyInstances" in {m["Metric"] for m in group.get("EnabledMetrics", [])}


def test_s3_gateway_endpoint_reaches_only_the_accounts_and_the_agents_buckets(provisioned: dict[str, Any]) -> None:
    """PCI 1.3.2 / 1.4.4: the endpoint policy, not AWS's full-access default."""
    partition, account = _caller(provisioned)
    ec2 = _c(provisioned, "ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [NAME]}])["Vpcs"][0]["VpcId"]
    [endpoint] = [
        e
        for e in ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["VpcEndpoints"]
        if e["ServiceName"].endswith(".s3")
    ]
    by_sid = {s["Sid"]: s for s in _statements(endpoint["PolicyDocument"])}
    assert set(by_sid) == {"TheAccountsOwnBuckets", "AgentAndPatchRepositories"}
    assert by_sid["TheAccountsOwnBuckets"]["Condition"] == {"StringEquals": {"aws:ResourceAccount": account}}
    repositories = by_sid["AgentAndPatchRepositories"]
    assert repositories["Action"] == "s3:GetObject"
    assert f"arn:{partition}:s3:::amazon-ssm-us-east-1/*" in repositories["Resource"]
    assert f"arn:{partition}:s3:::amazoncloudwatch-agent-us-east-1/*" in repositories["Resource"]


def test_key_policies_split_administration_from_use(provisioned: dict[str, Any]) -> None:
    """PCI 3.6.1 / 7.2.2: nobody holds kms:* on a key; use only through the services of its purpose."""
    partition, account = _caller(provisioned)
    kms = _c(provisioned, "kms")
    for purpose, service in (("logs", "logs"), ("data", "rds"), ("secrets", "secretsmanager")):
        key = kms.describe_key(KeyId=f"alias/{NAME}-{purpose}")["KeyMetadata"]["KeyId"]
        by_sid = {s["Sid"]: s for s in _statements(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])}
        assert all(s["Action"] != "kms:*" for s in by_sid.values()), purpose
        admin = by_sid["KeyAdministrationWithoutUse"]
        assert not {a for a in admin["Action"] if a.startswith(("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"))}
        use = by_sid["KeyUseOnlyThroughTheServicesOfItsPurpose"]
        assert use["Principal"] == {"AWS": f"arn:{partition}:iam::{account}:root"}
        assert f"{service}.us-east-1.amazonaws.com" in use["Condition"]["StringEquals"]["kms:ViaService"]


def test_service_roles_and_the_trail_bucket_accept_only_this_accounts_sources(provisioned: dict[str, Any]) -> None:
    """Confused-deputy conditions: aws:SourceAccount / aws:SourceArn on service trust and bucket policies."""
    partition, account = _caller(provisioned)
    iam = _c(provisioned, "iam")
    [config] = _statements(iam.get_role(RoleName=f"{NAME}-config")["Role"]["AssumeRolePolicyDocument"])
    assert config["Condition"]["StringEquals"] == {"aws:SourceAccount": account}
    [flows] = _statements(iam.get_role(RoleName=f"{NAME}-vpc-flow-logs")["Role"]["AssumeRolePolicyDocument"])
    assert flows["Condition"]["ArnLike"] == {"aws:SourceArn": f"arn:{partition}:ec2:us-east-1:{account}:vpc-flow-log/*"}
    trail = _c(provisioned, "cloudtrail").describe_trails(trailNameList=[NAME])["trailList"][0]
    policy = _statements(_c(provisioned, "s3").get_bucket_policy(Bucket=trail["S3BucketName"])["Policy"])
    for statement in policy:
        if statement["Effect"] == "Allow":
            assert statement["Condition"]["StringEquals"]["aws:SourceArn"] == trail["TrailARN"], statement["Sid"]


def test_tier_network_acls_pass_the_shop_flows_and_their_replies_only(provisioned: dict[str, Any]) -> None:
    """PCI 1.3.1 / 1.3.2: a stateless ACL per tier, read back and evaluated packet by packet."""
    from gearlift.twin.netpolicy import nacl_allows

    ec2 = _c(provisioned, "ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [NAME]}])["Vpcs"][0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    tier_of = {s["SubnetId"]: {t["Key"]: t["Value"] for t in s["Tags"]}["gearlift:tier"] for s in subnets}
    acls = {}
    for acl in ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NetworkAcls"]:
        tags = {t["Key"]: t["Value"] for t in acl.get("Tags", [])}
        if tags.get("Name", "").startswith(f"{NAME}-"):
            acls[tags["gearlift:tier"]] = acl
            assert {tier_of[a["SubnetId"]] for a in acl["Associations"]} == {tags["gearlift:tier"]}
            assert len(acl["Associations"]) == (1 if tags["gearlift:tier"] == "bake" else 2)  # both AZs; bake one
    assert set(acls) == {"public", "app", "db", "bake"}

    import ipaddress

    def host(tier: str) -> Any:
        """An address inside one of the tier's subnets (as a /32)."""
        cidr = next(s["CidrBlock"] for s in subnets if tier_of[s["SubnetId"]] == tier)
        return ipaddress.ip_network(f"{ipaddress.ip_network(cidr)[9]}/32")

    internet, app, db, builder = ipaddress.ip_network("203.0.113.9/32"), host("app"), host("db"), host("bake")
    site, reply = ipaddress.ip_network("192.168.50.10/32"), 40000
    assert nacl_allows(acls["app"], True, "tcp", 3306, db) and nacl_allows(acls["db"], False, "tcp", 3306, app)
    assert nacl_allows(acls["db"], True, "tcp", reply, app) and nacl_allows(acls["app"], False, "tcp", reply, db)
    assert nacl_allows(acls["app"], True, "tcp", 443, internet) and nacl_allows(
        acls["app"], False, "tcp", reply, internet
    )
    assert nacl_allows(acls["db"], True, "tcp", 3306, site) and nacl_allows(acls["db"], False, "tcp", reply, site)
    assert not nacl_allows(acls["db"], True, "tcp", 443, internet)
    assert not nacl_allows(acls["app"], False, "tcp", 22, internet)
    assert not nacl_allows(acls["app"], True, "tcp", 25, internet)
    # The uploads: NFS inside the VPC, and from the site's app server (the designs' copy through the VPN)
    copier = ipaddress.ip_network("192.168.50.20/32")
    assert nacl_allows(acls["app"], False, "tcp", 2049, app) and nacl_allows(acls["app"], True, "tcp", 2049, app)
    assert nacl_allows(acls["app"], False, "tcp", 2049, copier) and nacl_allows(acls["app"], True, "tcp", reply, copier)
    assert not nacl_allows(acls["app"], True, "tcp", reply, site), "replies to the copier only, not the whole site"
    # The image builder: HTTPS out through the NAT (the public tier forwards it), replies in; nothing else
    assert nacl_allows(acls["bake"], True, "tcp", 443, internet) and nacl_allows(
        acls["public"], False, "tcp", 443, builder
    )
    assert nacl_allows(acls["bake"], False, "tcp", reply, internet) and nacl_allows(
        acls["public"], True, "tcp", reply, builder
    )
    assert not nacl_allows(acls["bake"], False, "tcp", 22, internet), "nothing comes into the bake subnet"
    assert not nacl_allows(acls["bake"], True, "tcp", 3306, db) and not nacl_allows(
        acls["db"], False, "tcp", 3306, builder
    )


def test_the_sites_copier_of_the_uploads_is_routed_through_the_vpn(provisioned: dict[str, Any]) -> None:
    """gearlift_efs_extra_ingress_cidrs outside the VPC (the on-prem app server): the app route tables send it to
    the VPN gateway (the mount targets' replies), the EFS group admits NFS from it; nothing else of the site."""
    ec2 = _c(provisioned, "ec2")
    [vgw] = ec2.describe_vpn_gateways(Filters=[{"Name": "tag:Name", "Values": [f"{NAME}-onprem"]}])["VpnGateways"]
    tables = ec2.describe_route_tables(Filters=[{"Name": "tag:Name", "Values": [f"{NAME}-app-*"]}])["RouteTables"]
    assert len(tables) == 2
    for table in tables:
        site_routes = {r.get("DestinationCidrBlock"): r.get("GatewayId") for r in table["Routes"] if r.get("GatewayId")}
        assert site_routes.get("192.168.50.20/32") == vgw["VpnGatewayId"], table["Routes"]
        assert "192.168.50.0/24" not in site_routes, "the app tier routes the copier, not the whole site"
    [group] = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [f"{NAME}-efs"]}])[
        "SecurityGroups"
    ]
    nfs = [p for p in group["IpPermissions"] if p.get("FromPort") == 2049]
    assert [r["CidrIp"] for p in nfs for r in p.get("IpRanges", [])] == ["192.168.50.20/32"]
    assert group["IpPermissionsEgress"] == []


def _bucket(name_part: str, p: dict[str, Any]) -> str:
    _, account = _caller(p)
    return f"{NAME}-{name_part}-{account}"


def test_log_buckets_locked_logged_and_expiring(provisioned: dict[str, Any]) -> None:
    """PCI 10.3.2 / 10.5.1 / 10.2.1.3: Object Lock (governance), server access logs, lifecycle."""
    s3 = _c(provisioned, "s3")
    trail = _c(provisioned, "cloudtrail").describe_trails(trailNameList=[NAME])["trailList"][0]["S3BucketName"]
    alb, access = _bucket("alb-logs", provisioned), _bucket("s3-access-logs", provisioned)
    for bucket in (trail, alb):
        lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
        assert lock["ObjectLockEnabled"] == "Enabled"
        retention = lock["Rule"]["DefaultRetention"]
        assert (retention["Mode"], retention["Days"]) == ("GOVERNANCE", 365), bucket
        logging = s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"]
        assert logging == {"TargetBucket": access, "TargetPrefix": f"{bucket}/"}
    for bucket in (trail, alb, access):
        [rule] = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        assert rule["Status"] == "Enabled" and rule["Expiration"]["Days"] >= 365
        assert [(t["Days"], t["StorageClass"]) for t in rule["Transitions"]] == [(90, "GLACIER_IR")]
    for bucket in (alb, access):  # the services that write them take SSE-S3 only
        rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    _, account = _caller(provisioned)
    [writers, _] = _statements(s3.get_bucket_policy(Bucket=access)["Policy"])
    assert writers["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert writers["Condition"]["StringEquals"] == {"aws:SourceAccount": account}


def test_alb_access_logs_and_database_audit_plugin(provisioned: dict[str, Any]) -> None:
    """ELB.5 and PCI 10.2.1: the ALB logs to its locked bucket; the DB's audit plugin records logins and changes."""
    elbv2 = _c(provisioned, "elbv2")
    lb = elbv2.describe_load_balancers(Names=[NAME])["LoadBalancers"][0]
    attrs = {
        a["Key"]: a["Value"]
        for a in elbv2.describe_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"])["Attributes"]
    }
    assert attrs["access_logs.s3.enabled"] == "true"
    assert attrs["access_logs.s3.bucket"] == _bucket("alb-logs", provisioned)
    rds = _c(provisioned, "rds")
    db = rds.describe_db_instances(DBInstanceIdentifier=NAME)["DBInstances"][0]
    assert [m["OptionGroupName"] for m in db["OptionGroupMemberships"]] == [f"{NAME}-mysql80-audit"]
    [group] = rds.describe_option_groups(OptionGroupName=f"{NAME}-mysql80-audit")["OptionGroupsList"]
    [audit] = [o for o in group["Options"] if o["OptionName"] == "MARIADB_AUDIT_PLUGIN"]
    settings = {s["Name"]: s["Value"] for s in audit["OptionSettings"]}
    assert {"CONNECT", "QUERY_DDL", "QUERY_DML_NO_SELECT"} <= set(settings["SERVER_AUDIT_EVENTS"].split(","))
    assert "audit" in db["EnabledCloudwatchLogsExports"]
