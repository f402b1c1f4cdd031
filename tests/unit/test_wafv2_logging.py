"""Unit tests of gearlift.platform.wafv2_logging against moto's WAFv2 (in-process)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper
from ansible_collections.gearlift.platform.plugins.modules import wafv2_logging
from moto import mock_aws

from .module_harness import CallLog, Result, dummy_aws_env, run_main

REGION = "us-east-1"
ACCOUNT = "123456789012"
GROUP = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:aws-waf-logs-shop-rehearsal"


@pytest.fixture
def waf(monkeypatch):
    dummy_aws_env(monkeypatch, REGION)
    with mock_aws():
        log = CallLog()
        client = log.attach(boto3.client("wafv2", region_name=REGION))

        def make(self, service, retry_decorator=None, **kwargs):
            assert service == "wafv2"
            return RetryingBotoClientWrapper(client, retry_decorator) if retry_decorator else client

        monkeypatch.setattr(AnsibleAWSModule, "client", make)
        acl = boto3.client("wafv2", region_name=REGION).create_web_acl(
            Name="shop-rehearsal",
            Scope="REGIONAL",
            DefaultAction={"Allow": {}},
            VisibilityConfig={"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": "acl"},
        )["Summary"]
        log.calls.clear()
        yield acl["ARN"], log


def run(args: dict[str, Any], check_mode: bool = False) -> Result:
    return run_main(wafv2_logging.main, {"region": REGION, **args}, check_mode=check_mode)


def stored(arn: str) -> dict[str, Any] | None:
    client = boto3.client("wafv2", region_name=REGION)
    try:
        return client.get_logging_configuration(ResourceArn=arn)["LoggingConfiguration"]
    except client.exceptions.WAFNonexistentItemException:
        return None


def test_logging_is_put_with_credentials_redacted_then_nothing_changes(waf):
    arn, log = waf
    first = run({"web_acl_arn": arn, "destinations": [GROUP]})
    assert not first.failed, first.data
    assert first["changed"] is True
    config = stored(arn)
    assert config is not None
    assert config["LogDestinationConfigs"] == [GROUP]
    assert sorted(f["SingleHeader"]["Name"] for f in config["RedactedFields"]) == ["authorization", "cookie"]
    assert "PutLoggingConfiguration" in log.names

    log.calls.clear()
    second = run({"web_acl_arn": arn, "destinations": [GROUP], "redacted_headers": ["Cookie", "Authorization"]})
    assert not second.failed, second.data
    assert second["changed"] is False
    assert log.names == ["GetLoggingConfiguration"]


def test_check_mode_reads_only(waf):
    arn, log = waf
    result = run({"web_acl_arn": arn, "destinations": [GROUP]}, check_mode=True)
    assert not result.failed, result.data
    assert result["changed"] is True
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["destinations"] == [GROUP]
    assert log.names == ["GetLoggingConfiguration"]
    assert stored(arn) is None


def test_a_filter_change_is_written_and_absent_removes_logging(waf):
    arn, _ = waf
    assert not run({"web_acl_arn": arn, "destinations": [GROUP]}).failed
    changed = run({"web_acl_arn": arn, "destinations": [GROUP], "log_only_actions": ["BLOCK", "COUNT"]})
    assert changed["changed"] is True
    config = stored(arn)
    assert config is not None
    conditions = config["LoggingFilter"]["Filters"][0]["Conditions"]
    assert sorted(c["ActionCondition"]["Action"] for c in conditions) == ["BLOCK", "COUNT"]
    assert config["LoggingFilter"]["DefaultBehavior"] == "DROP"

    removed = run({"web_acl_arn": arn, "state": "absent"})
    assert removed["changed"] is True
    assert stored(arn) is None
    assert run({"web_acl_arn": arn, "state": "absent"})["changed"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"destinations": [GROUP.replace("aws-waf-logs-", "")]}, "log group named aws-waf-logs-*"),
        ({"destinations": [GROUP + ":*"]}, "without the trailing ':*'"),
        ({"destinations": [GROUP, GROUP + "-2"]}, "exactly one ARN"),
        ({"destinations": ["aws-waf-logs-shop"]}, "must be ARNs"),
        ({"web_acl_arn": "shop-rehearsal", "destinations": [GROUP]}, "must be a WAFv2 web ACL ARN"),
        ({}, "missing: destinations"),
    ],
)
def test_bad_arguments_fail_before_any_call(waf, args, message):
    arn, log = waf
    result = run({"web_acl_arn": arn, **args})
    assert result.failed
    assert message in result["msg"]
    assert log.names == []
