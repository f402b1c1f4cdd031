"""Unit tests of gearlift.platform.sns_topic_encryption against moto's SNS (in-process)."""

from __future__ import annotations

import boto3
import pytest
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper
from ansible_collections.gearlift.platform.plugins.modules import sns_topic_encryption
from moto import mock_aws

from .module_harness import CallLog, dummy_aws_env, run_main

REGION = "us-east-1"
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.fixture
def topic(monkeypatch):
    dummy_aws_env(monkeypatch, REGION)
    with mock_aws():
        log = CallLog()
        client = log.attach(boto3.client("sns", region_name=REGION))

        def make(self, service, retry_decorator=None, **kwargs):
            return RetryingBotoClientWrapper(client, retry_decorator) if retry_decorator else client

        monkeypatch.setattr(AnsibleAWSModule, "client", make)
        arn = boto3.client("sns", region_name=REGION).create_topic(Name="shop-alarms")["TopicArn"]
        yield arn, log


def key_of(arn: str) -> str:
    return (
        boto3.client("sns", region_name=REGION)
        .get_topic_attributes(TopicArn=arn)["Attributes"]
        .get("KmsMasterKeyId", "")
    )


def test_key_is_set_once_then_nothing_changes_and_empty_turns_it_off(topic):
    arn, log = topic
    first = run_main(sns_topic_encryption.main, {"topic_arn": arn, "kms_key_id": KEY, "region": REGION})
    assert not first.failed, first.data
    assert first["changed"] is True
    assert key_of(arn) == KEY

    log.calls.clear()
    second = run_main(sns_topic_encryption.main, {"topic_arn": arn, "kms_key_id": KEY, "region": REGION})
    assert second["changed"] is False
    assert log.names == ["GetTopicAttributes"]

    off = run_main(sns_topic_encryption.main, {"topic_arn": arn, "kms_key_id": "", "region": REGION})
    assert off["changed"] is True
    assert key_of(arn) == ""


def test_check_mode_reads_only(topic):
    arn, log = topic
    result = run_main(
        sns_topic_encryption.main, {"topic_arn": arn, "kms_key_id": KEY, "region": REGION}, check_mode=True
    )
    assert result["changed"] is True
    assert result["diff"] == {"before": {"kms_key_id": ""}, "after": {"kms_key_id": KEY}}
    assert log.names == ["GetTopicAttributes"]
    assert key_of(arn) == ""


def test_a_topic_name_instead_of_an_arn_is_refused_before_any_call(topic):
    _, log = topic
    result = run_main(sns_topic_encryption.main, {"topic_arn": "shop-alarms", "kms_key_id": KEY, "region": REGION})
    assert result.failed
    assert "topic_arn must be an SNS topic ARN" in result["msg"]
    assert log.names == []
