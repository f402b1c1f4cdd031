"""gearlift.platform.s3_object_lock and vpc_endpoint_policy: their pure logic (module_utils/s3_controls.py)
and the modules against moto in-process (idempotence, check mode, refusals before any call)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper
from ansible_collections.gearlift.platform.plugins.module_utils import s3_controls
from ansible_collections.gearlift.platform.plugins.modules import s3_object_lock, vpc_endpoint_policy
from moto import mock_aws

from .module_harness import CallLog, dummy_aws_env, run_main

REGION = "us-east-1"


# ------------------------------------------------------------------ pure logic


def test_lock_configuration_is_enabled_with_a_default_retention() -> None:
    assert s3_controls.lock_configuration("governance", 365) == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 365}},
    }


@pytest.mark.parametrize(
    ("mode", "days", "words"),
    [
        ("LEGAL", 30, "mode must be"),
        ("GOVERNANCE", 0, "days must"),
        ("GOVERNANCE", True, "days must"),
        ("COMPLIANCE", "30", "days must"),
    ],
)
def test_lock_configuration_refuses_bad_input(mode: str, days: Any, words: str) -> None:
    with pytest.raises(s3_controls.ControlError, match=words):
        s3_controls.lock_configuration(mode, days)


def test_lock_differs_on_off_other_mode_other_days_or_years_only() -> None:
    want = s3_controls.lock_configuration("GOVERNANCE", 365)
    assert s3_controls.lock_differs(None, want)
    assert s3_controls.lock_differs({"ObjectLockEnabled": "Enabled"}, want)  # no default rule
    assert s3_controls.lock_differs(s3_controls.lock_configuration("COMPLIANCE", 365), want)
    assert s3_controls.lock_differs(s3_controls.lock_configuration("GOVERNANCE", 30), want)
    years = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Years": 1}}}
    assert s3_controls.lock_differs(years, want)
    assert not s3_controls.lock_differs(json.loads(json.dumps(want)), want)
    emulated = {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 365, "Years": 0}},
    }
    assert not s3_controls.lock_differs(emulated, want)


def test_policies_equal_whatever_the_order_or_spelling() -> None:
    a = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "A",
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": "*",
            },
            {
                "Sid": "B",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": ["arn:aws:s3:::x/*"],
            },
        ],
    }
    b = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "B",
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject"],
                "Resource": "arn:aws:s3:::x/*",
            },
            {
                "Sid": "A",
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:ListBucket", "s3:GetObject"],
                "Resource": "*",
            },
        ],
    }
    assert not s3_controls.policy_differs(json.dumps(a), b)
    b["Statement"][0]["Resource"] = "arn:aws:s3:::y/*"
    assert s3_controls.policy_differs(json.dumps(a), b)
    assert s3_controls.policy_differs(None, a) and s3_controls.policy_differs("", a)
    with pytest.raises(s3_controls.ControlError):
        s3_controls.canonical_policy({"Version": "2012-10-17"})


# ------------------------------------------------------------------ the modules against moto


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    dummy_aws_env(monkeypatch, REGION)
    with mock_aws():
        log = CallLog()
        made: dict[str, Any] = {}

        def make(self: Any, service: str, retry_decorator: Any = None, **kwargs: Any) -> Any:
            if service not in made:
                made[service] = log.attach(boto3.client(service, region_name=REGION))
            client = made[service]
            return RetryingBotoClientWrapper(client, retry_decorator) if retry_decorator else client

        monkeypatch.setattr(AnsibleAWSModule, "client", make)
        yield log


def _versioned_bucket(name: str) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


def test_object_lock_is_switched_on_for_an_existing_bucket_once(aws: Any) -> None:
    _versioned_bucket("trail")
    args = {"bucket": "trail", "days": 365, "region": REGION}
    first = run_main(s3_object_lock.main, args)
    assert not first.failed, first.data
    assert first["changed"] is True and first["diff"]["before"] == {}
    lock = boto3.client("s3", region_name=REGION).get_object_lock_configuration(Bucket="trail")
    assert lock["ObjectLockConfiguration"]["ObjectLockEnabled"] == "Enabled"
    retention = lock["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
    assert (retention["Mode"], retention["Days"], retention.get("Years", 0)) == ("GOVERNANCE", 365, 0)
    aws.calls.clear()
    second = run_main(s3_object_lock.main, args)
    assert second["changed"] is False
    assert aws.names == ["GetObjectLockConfiguration"]
    longer = run_main(s3_object_lock.main, {**args, "days": 400})
    assert longer["changed"] is True and longer["diff"]["before"]["Rule"]["DefaultRetention"]["Days"] == 365


def test_object_lock_check_mode_reads_only_and_bad_days_are_refused_before_any_call(aws: Any) -> None:
    _versioned_bucket("trail")
    checked = run_main(s3_object_lock.main, {"bucket": "trail", "days": 365, "region": REGION}, check_mode=True)
    assert checked["changed"] is True and aws.names == ["GetObjectLockConfiguration"]
    aws.calls.clear()
    refused = run_main(s3_object_lock.main, {"bucket": "trail", "days": 0, "region": REGION})
    assert refused.failed and "days must be" in refused["msg"] and aws.names == []


def test_object_lock_without_versioning_fails_naming_it(aws: Any) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="plain")
    result = run_main(s3_object_lock.main, {"bucket": "plain", "days": 30, "region": REGION})
    assert result.failed and "versioning" in result["msg"]


POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "TheAccountsBuckets",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:ResourceAccount": "123456789012"}},
        }
    ],
}


def test_endpoint_policy_replaces_the_full_access_default_once(aws: Any) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    endpoint = ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.s3")["VpcEndpoint"][
        "VpcEndpointId"
    ]
    args = {"vpc_endpoint_id": endpoint, "policy": json.dumps(POLICY), "region": REGION}
    checked = run_main(vpc_endpoint_policy.main, args, check_mode=True)
    assert checked["changed"] is True and aws.names == ["DescribeVpcEndpoints"]
    first = run_main(vpc_endpoint_policy.main, args)
    assert first["changed"] is True
    stored = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint])["VpcEndpoints"][0]["PolicyDocument"]
    assert json.loads(stored) == POLICY
    aws.calls.clear()
    # the same policy, spelt differently: no change
    respelt = {**POLICY, "Statement": POLICY["Statement"][0]}
    second = run_main(vpc_endpoint_policy.main, {**args, "policy": json.dumps(respelt)})
    assert second["changed"] is False and aws.names == ["DescribeVpcEndpoints"]


def test_endpoint_policy_refuses_a_non_policy_before_any_call(aws: Any) -> None:
    result = run_main(vpc_endpoint_policy.main, {"vpc_endpoint_id": "vpce-1", "policy": "[]", "region": REGION})
    assert result.failed and "not a policy document" in result["msg"] and aws.names == []
