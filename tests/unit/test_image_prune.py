"""gearlift.platform.image_prune against moto: keeps the newest, never one a launch template uses."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.unit.module_harness import dummy_aws_env, run_main

REGION = "eu-west-1"


@pytest.fixture
def ec2(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    dummy_aws_env(monkeypatch, REGION)
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


def _bake(ec2: Any, name: str, project: str = "shop") -> str:
    source = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    iid = ec2.run_instances(ImageId=source, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ami: str = ec2.create_image(
        InstanceId=iid,
        Name=name,
        TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "gearlift:project", "Value": project}]}],
    )["ImageId"]
    time.sleep(1.1)  # CreationDate has second resolution: keep the order unambiguous
    return ami


def _prune(args: dict[str, Any], check_mode: bool = False) -> Any:
    from ansible_collections.gearlift.platform.plugins.modules import image_prune

    return run_main(image_prune.main, {"region": REGION, **args}, check_mode=check_mode)


def _snapshot(ec2: Any, ami: str) -> str:
    snapshot: str = ec2.describe_images(ImageIds=[ami])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    return snapshot


def test_keeps_the_newest_and_spares_launch_templates_and_the_promoted_image(ec2: Any) -> None:
    oldest, in_template, promoted, old, newer, newest = (_bake(ec2, f"shop-golden-{n}") for n in range(6))
    other_family = _bake(ec2, "other-golden-1")
    other_project = _bake(ec2, "shop-golden-x", project="blog")
    ec2.create_launch_template(LaunchTemplateName="fleet", LaunchTemplateData={"ImageId": newest})
    ec2.create_launch_template_version(LaunchTemplateName="fleet", LaunchTemplateData={"ImageId": in_template})
    snapshots = {ami: _snapshot(ec2, ami) for ami in (oldest, old)}
    args = {"name_prefix": "shop-golden-", "tags": {"gearlift:project": "shop"}, "keep": 2, "protect": [promoted]}

    planned = _prune(args, check_mode=True)
    assert not planned.failed and planned["changed"]
    assert {d["image_id"] for d in planned["deleted"]} == {oldest, old}
    assert len(ec2.describe_images(Owners=["self"])["Images"]) == 8, "check mode deleted something"

    result = _prune(args)
    assert not result.failed, result.data
    assert result["kept"] == [newest, newer]
    assert {d["image_id"]: d["snapshots"] for d in result["deleted"]} == {
        oldest: [snapshots[oldest]],
        old: [snapshots[old]],
    }
    reasons = {p["image_id"]: p["reason"] for p in result["protected"]}
    assert "version 2" in reasons[in_template] and "protected" in reasons[promoted]
    left = {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}
    assert left == {in_template, promoted, newer, newest, other_family, other_project}
    gone = ec2.describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": list(snapshots.values())}])["Snapshots"]
    assert gone == []

    again = _prune(args)
    assert not again.failed and not again["changed"] and again["deleted"] == []


@pytest.mark.parametrize(("args", "words"), [({"keep": 0}, "at least 1"), ({"name_prefix": " "}, "must not be empty")])
def test_refuses_settings_that_could_delete_everything(ec2: Any, args: dict[str, Any], words: str) -> None:
    _bake(ec2, "shop-golden-1")
    result = _prune({"name_prefix": "shop-golden-", **args})
    assert result.failed and words in result["msg"]
    assert len(ec2.describe_images(Owners=["self"])["Images"]) == 1
