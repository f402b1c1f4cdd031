"""Unit tests of gearlift.platform.s3_account_public_access_block and rds_event_subscription
against moto (in-process), plus the rendered policies security.yml writes for issue 17."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
import yaml
from ansible.template import trust_as_template
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper
from ansible_collections.gearlift.platform.plugins.modules import (
    rds_event_subscription,
    s3_account_public_access_block,
)
from moto import mock_aws

from .module_harness import REPO, CallLog, dummy_aws_env, run_main, templar

REGION = "us-east-1"
ACCOUNT = "123456789012"


@pytest.fixture
def aws(monkeypatch):
    """moto clients, one per service, handed to the modules; calls logged."""
    dummy_aws_env(monkeypatch, REGION)
    with mock_aws():
        log = CallLog()
        made: dict[str, Any] = {}

        def make(self, service, retry_decorator=None, **kwargs):
            if service not in made:
                made[service] = log.attach(boto3.client(service, region_name=REGION))
            client = made[service]
            return RetryingBotoClientWrapper(client, retry_decorator) if retry_decorator else client

        monkeypatch.setattr(AnsibleAWSModule, "client", make)
        yield log


# ------------------------------------------------------------------ S3 account Block Public Access


def account_pab() -> dict[str, bool]:
    return boto3.client("s3control", region_name=REGION).get_public_access_block(AccountId=ACCOUNT)[
        "PublicAccessBlockConfiguration"
    ]


def test_block_public_access_is_switched_on_once(aws):
    first = run_main(s3_account_public_access_block.main, {"account_id": ACCOUNT, "region": REGION})
    assert not first.failed, first.data
    assert first["changed"] is True
    assert first["diff"]["before"] == dict.fromkeys(s3_account_public_access_block.SWITCHES, False)
    assert account_pab() == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    aws.calls.clear()
    second = run_main(s3_account_public_access_block.main, {"account_id": ACCOUNT, "region": REGION})
    assert second["changed"] is False
    assert aws.names == ["GetPublicAccessBlock"]


def test_block_public_access_check_mode_reads_only(aws):
    result = run_main(s3_account_public_access_block.main, {"account_id": ACCOUNT, "region": REGION}, check_mode=True)
    assert result["changed"] is True
    assert aws.names == ["GetPublicAccessBlock"]


def test_switching_a_block_off_needs_the_override_and_is_refused_before_any_call(aws):
    args = {"account_id": ACCOUNT, "region": REGION, "block_public_policy": False}
    refused = run_main(s3_account_public_access_block.main, args)
    assert refused.failed and "allow_public_access=true" in refused["msg"] and "block_public_policy" in refused["msg"]
    assert aws.names == []
    allowed = run_main(s3_account_public_access_block.main, {**args, "allow_public_access": True})
    assert not allowed.failed and account_pab()["BlockPublicPolicy"] is False


def test_a_malformed_account_id_is_refused(aws):
    result = run_main(s3_account_public_access_block.main, {"account_id": "12345", "region": REGION})
    assert result.failed and "12 digits" in result["msg"]
    assert aws.names == []


def test_the_account_host_prefix_is_stripped_only_for_a_custom_endpoint(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3_CONTROL"):
        monkeypatch.delenv(name, raising=False)
    assert s3_account_public_access_block.custom_endpoint({}) is False
    assert s3_account_public_access_block.custom_endpoint({"endpoint_url": "http://127.0.0.1:5000"}) is True
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://10.89.85.2:5000")
    assert s3_account_public_access_block.custom_endpoint({}) is True

    class Request:
        url = f"http://{ACCOUNT}.10.89.85.2:5000/v20180820/configuration/publicAccessBlock"

    request = Request()
    s3_account_public_access_block.strip_account_host_prefix(ACCOUNT, request)
    assert request.url == "http://10.89.85.2:5000/v20180820/configuration/publicAccessBlock"


# ------------------------------------------------------------------ RDS event subscription


@pytest.fixture
def topic(aws):
    return boto3.client("sns", region_name=REGION).create_topic(Name="shop-production-alarms")["TopicArn"]


def sub_args(topic: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "shop-production-db-events",
        "sns_topic_arn": topic,
        "source_ids": ["shop-production"],
        "event_categories": ["failure", "maintenance", "failover"],
        "region": REGION,
        **extra,
    }


def stored() -> list[dict[str, Any]]:
    return boto3.client("rds", region_name=REGION).describe_event_subscriptions()["EventSubscriptionsList"]


def test_subscription_is_created_once_then_left_alone(aws, topic):
    first = run_main(rds_event_subscription.main, sub_args(topic))
    assert not first.failed, first.data
    assert first["changed"] is True
    [sub] = stored()
    assert sub["SnsTopicArn"] == topic and sub["SourceType"] == "db-instance" and sub["Enabled"] is True
    assert sorted(sub["EventCategoriesList"]) == ["failover", "failure", "maintenance"]
    assert sub["SourceIdsList"] == ["shop-production"]
    aws.calls.clear()
    second = run_main(rds_event_subscription.main, sub_args(topic))
    assert second["changed"] is False
    assert aws.names == ["DescribeEventSubscriptions"]


def test_subscription_check_mode_and_removal(aws, topic):
    dry = run_main(rds_event_subscription.main, sub_args(topic), check_mode=True)
    assert dry["changed"] is True and stored() == []
    run_main(rds_event_subscription.main, sub_args(topic))
    gone = run_main(rds_event_subscription.main, sub_args(topic, state="absent"))
    assert gone["changed"] is True and stored() == []
    again = run_main(rds_event_subscription.main, sub_args(topic, state="absent"))
    assert again["changed"] is False


def test_subscription_refuses_a_topic_that_is_not_an_sns_arn(aws):
    result = run_main(rds_event_subscription.main, sub_args("shop-production-alarms"))
    assert result.failed and "SNS topic ARN" in result["msg"]
    assert aws.names == []


# ------------------------------------------------------------------ what security.yml renders


def render(template: str, **variables: Any) -> dict[str, Any]:
    text = (REPO / "playbooks" / "templates" / template).read_text()
    return json.loads(templar(variables).template(trust_as_template(text)))


BASE = {
    "gearlift_name": "shop-production",
    "gearlift_project": "shop",
    "gearlift_environment": "production",
    "gearlift_region": "cn-north-1",
    "gearlift_log_group_prefix": "/gearlift/shop/production",
    "gearlift_golden_ami_parameter": "/gearlift/shop/production/golden-ami-id",
    "gearlift_key_arns": {"secrets": "arn:aws-cn:kms:cn-north-1:123456789012:key/abc"},
    "naming_host_log_groups": ["app", "syslog"],
    "naming_agent_metrics_namespace": "CWAgent",
    "security_partition": "aws-cn",
    "security_account": ACCOUNT,
    **yaml.safe_load((REPO / "playbooks" / "vars" / "aws_services.yml").read_text()),
}


def test_instance_role_policy_is_scoped_and_partition_derived():
    policy = render("app-role-policy.json.j2", **BASE)
    text = json.dumps(policy)
    assert "arn:aws:" not in text and "arn:aws-cn:" in text
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert (
        "arn:aws-cn:ssm:cn-north-1:123456789012:parameter/gearlift/shop/production/golden-ami-id"
        in (by_sid["ReadTheTargetsParameters"]["Resource"])
    )
    assert by_sid["ShipToTheHostLogGroupsOnly"]["Resource"] == [
        "arn:aws-cn:logs:cn-north-1:123456789012:log-group:/gearlift/shop/production/app:*",
        "arn:aws-cn:logs:cn-north-1:123456789012:log-group:/gearlift/shop/production/syslog:*",
    ]
    actions = {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert not actions & {"logs:CreateLogGroup", "logs:PutRetentionPolicy", "ssm:GetParametersByPath"}
    assert by_sid["DecryptTheAppSecret"]["Resource"] == BASE["gearlift_key_arns"]["secrets"]


def test_bake_role_policy_is_session_manager_only():
    """PCI 6.5.3 / 7.2.2: the image builder's role reads no secret, parameter, key or log group."""
    policy = render("bake-role-policy.json.j2", **BASE)
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert {s["Sid"] for s in policy["Statement"]} == {"SSMAgentCore", "SSMAgentSessionsAndMessages"}
    assert {a.split(":")[0] for a in actions} == {"ssm", "ssmmessages", "ec2messages"}
    assert not {a for a in actions if a.startswith(("ssm:GetParameter", "secretsmanager:", "kms:", "logs:"))}
    # the same SSM agent statements as the instance role's (one list, vars/aws_services.yml)
    app = {s["Sid"]: s for s in render("app-role-policy.json.j2", **BASE)["Statement"]}
    assert all(app[s["Sid"]] == s for s in policy["Statement"])


def test_alarm_topic_policy_limits_every_publisher_to_the_account():
    policy = render(
        "alarm-topic-policy.json.j2",
        **BASE,
        topic_partition="aws-cn",
        topic_account=ACCOUNT,
        topic_arn="arn:aws-cn:sns:cn-north-1:123456789012:shop-production-alarms",
    )
    for statement in policy["Statement"]:
        principal = statement["Principal"]
        if "Service" in principal:
            assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
            assert statement["Condition"]["ArnLike"]["aws:SourceArn"].startswith("arn:aws-cn:")
        else:
            assert principal == {"AWS": "arn:aws-cn:iam::123456789012:root"}
    services = {s["Principal"].get("Service") for s in policy["Statement"]}
    assert {"events.amazonaws.com", "cloudwatch.amazonaws.com", "events.rds.amazonaws.com"} <= services


# ------------------------------------------------------------------ key, trust, bucket and endpoint policies

CRYPTO = {"kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant"}
KMS_BASE = {**BASE, "kms_partition": "aws-cn", "kms_account": ACCOUNT, "kms_region": "cn-north-1"}


@pytest.mark.parametrize(
    ("purpose", "services"),
    [
        ("logs", {"logs", "s3", "sns"}),
        ("data", {"rds", "ec2", "backup"}),
        ("secrets", {"secretsmanager", "ssm", "rds"}),
    ],
)
def test_key_policy_splits_administration_from_use_through_services_only(purpose: str, services: set[str]) -> None:
    policy = render("kms-policy.json.j2", **KMS_BASE, kms_purpose=purpose, gearlift_kms_admin_arns=[])
    assert "arn:aws:" not in json.dumps(policy)
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    admin = by_sid["KeyAdministrationWithoutUse"]
    assert admin["Principal"] == {"AWS": ["arn:aws-cn:iam::123456789012:root"]}
    assert not set(admin["Action"]) & CRYPTO and "kms:*" not in admin["Action"]
    assert {"kms:PutKeyPolicy", "kms:EnableKeyRotation", "kms:ScheduleKeyDeletion"} <= set(admin["Action"])
    use = by_sid["KeyUseOnlyThroughTheServicesOfItsPurpose"]
    assert set(use["Action"]) >= {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert use["Condition"]["StringEquals"]["kms:CallerAccount"] == ACCOUNT
    assert set(use["Condition"]["StringEquals"]["kms:ViaService"]) == {
        f"{s}.cn-north-1.amazonaws.com" for s in services
    }
    # nothing grants kms:* or unconditioned use to an AWS principal
    for statement in policy["Statement"]:
        assert statement["Action"] != "kms:*"
        if "AWS" in statement["Principal"] and set(_as_list(statement["Action"])) & CRYPTO:
            assert statement.get("Condition"), statement["Sid"]


def test_key_administrators_when_named_are_the_only_administrators() -> None:
    admins = ["arn:aws-cn:iam::123456789012:role/KeyAdmins"]
    policy = render("kms-policy.json.j2", **KMS_BASE, kms_purpose="data", gearlift_kms_admin_arns=admins)
    [admin] = [s for s in policy["Statement"] if s["Sid"] == "KeyAdministrationWithoutUse"]
    assert admin["Principal"] == {"AWS": admins}


def test_logs_key_lets_cloudtrail_encrypt_only_for_this_trail() -> None:
    policy = render("kms-policy.json.j2", **KMS_BASE, kms_purpose="logs", gearlift_kms_admin_arns=[])
    [trail] = [s for s in policy["Statement"] if s["Sid"] == "CloudTrail"]
    assert trail["Condition"]["StringEquals"] == {
        "aws:SourceArn": "arn:aws-cn:cloudtrail:cn-north-1:123456789012:trail/shop-production"
    }


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_service_trust_policies_carry_source_conditions() -> None:
    config = render("trust-config.json.j2", **BASE, security_caller={"account": ACCOUNT})
    assert [s["Condition"] for s in config["Statement"]] == [{"StringEquals": {"aws:SourceAccount": ACCOUNT}}]
    flows = render("trust-vpc-flow-logs.json.j2", **BASE, network_account=ACCOUNT, network_partition="aws-cn")
    [statement] = flows["Statement"]
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    assert statement["Condition"]["ArnLike"] == {
        "aws:SourceArn": "arn:aws-cn:ec2:cn-north-1:123456789012:vpc-flow-log/*"
    }


def test_trail_bucket_takes_writes_only_from_this_trail_and_partition_is_derived() -> None:
    trail_arn = "arn:aws-cn:cloudtrail:cn-north-1:123456789012:trail/shop-production"
    policy = render("trail-bucket-policy.json.j2", **BASE, security_bucket="shop-trail", security_trail_arn=trail_arn)
    assert "arn:aws:" not in json.dumps(policy)
    for statement in policy["Statement"]:
        if statement["Effect"] == "Allow":
            assert statement["Condition"]["StringEquals"]["aws:SourceArn"] == trail_arn, statement["Sid"]


def test_s3_endpoint_policy_allows_the_accounts_buckets_and_the_agent_repositories_only() -> None:
    policy = render(
        "s3-endpoint-policy.json.j2",
        **BASE,  # with vars/aws_services.yml's repository buckets
        network_account=ACCOUNT,
        network_partition="aws-cn",
        gearlift_s3_endpoint_extra_buckets=["vendor-repo"],
    )
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["TheAccountsOwnBuckets"]["Condition"] == {"StringEquals": {"aws:ResourceAccount": ACCOUNT}}
    repos = by_sid["AgentAndPatchRepositories"]
    assert repos["Action"] == "s3:GetObject"
    assert "arn:aws-cn:s3:::amazon-ssm-cn-north-1/*" in repos["Resource"]
    assert "arn:aws-cn:s3:::amazoncloudwatch-agent-cn-north-1/*" in repos["Resource"]
    assert "arn:aws-cn:s3:::cn-north-1-birdwatcher-prod/*" in repos["Resource"]
    assert "arn:aws-cn:s3:::vendor-repo/*" in repos["Resource"]
    assert all(r.startswith("arn:aws-cn:s3:::") and r.endswith("/*") and "REGION" not in r for r in repos["Resource"])
    assert len(policy["Statement"]) == 2
