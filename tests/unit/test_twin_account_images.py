"""The account keeps its golden images between rehearsals (gearlift.twin.dataplane.amis).

One real emulator process for the module; a reset plays a new rehearsal's empty account. The
test plays the data plane's commit (the local image tag and ``image-available``); podman is not
needed: whether the local image exists is the one thing patched.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gearlift.twin import channel, podman
from gearlift.twin.awsclients import Clients
from gearlift.twin.controlplane import MotoControlPlane
from gearlift.twin.dataplane import Round
from gearlift.twin.dataplane.amis import AMI_IMAGE_REPO, LOCAL_IMAGE_TAG, AccountImages, kept_local_images
from gearlift.twin.emulator.lifecycle import CANONICAL_OWNER
from gearlift.twin.layout import TwinLayout

REGION = "us-east-1"
ALIAS = "alias/shop/test/data"


@pytest.fixture
def aws(emulator: MotoControlPlane) -> Clients:
    emulator.reset()
    return Clients(emulator.url, REGION)


def _layout(state: Path) -> TwinLayout:
    return TwinLayout(prefix="t", state_dir=state, network="t", subnet="10.0.0.0/24", gateway="10.0.0.1", region=REGION)


def _key(aws: Clients) -> str:
    arn: str = aws("kms").create_key(Description="data")["KeyMetadata"]["Arn"]
    aws("kms").create_alias(AliasName=ALIAS, TargetKeyId=arn)
    return arn


def _baked_image(aws: Clients, emulator: MotoControlPlane, key: str) -> str:
    """An image as bake_ami.yml makes it: CreateImage of an encrypted builder, committed by the data plane."""
    ec2 = aws("ec2")
    source = ec2.describe_images(Owners=[CANONICAL_OWNER])["Images"][0]["ImageId"]
    iid = ec2.run_instances(
        ImageId=source,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.small",
        BlockDeviceMappings=[
            {
                "DeviceName": "/dev/sda1",
                "Ebs": {"VolumeSize": 12, "VolumeType": "gp3", "Encrypted": True, "KmsKeyId": key},
            }
        ],
    )["Instances"][0]["InstanceId"]
    ami: str = ec2.create_image(
        InstanceId=iid,
        Name="shop-golden-1",
        Description="golden",
        TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "gearlift:inputs", "Value": "abc123"}]}],
    )["ImageId"]
    ec2.create_tags(Resources=[ami], Tags=[{"Key": LOCAL_IMAGE_TAG, "Value": f"{AMI_IMAGE_REPO}:{ami}"}])
    channel.send(emulator.url, channel.IMAGE_AVAILABLE, {"region": REGION, "image_id": ami})
    ec2.terminate_instances(InstanceIds=[iid])
    return ami


def _ebs(aws: Clients, ami: str) -> dict[str, Any]:
    image = aws("ec2").describe_images(ImageIds=[ami])["Images"][0]
    ebs: dict[str, Any] = image["BlockDeviceMappings"][0]["Ebs"]
    return ebs


def test_a_baked_image_comes_back_in_the_next_rehearsals_account_under_its_new_key(
    aws: Clients, emulator: MotoControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(podman, "image_exists", lambda name: name.startswith(AMI_IMAGE_REPO + ":"))
    logs: list[str] = []
    ami = _baked_image(aws, emulator, _key(aws))
    before = aws("ec2").describe_images(ImageIds=[ami])["Images"][0]
    AccountImages(_layout(tmp_path), aws, logs.append).reconcile(Round())
    record = json.loads((tmp_path / "account-images" / f"{ami}.json").read_text(encoding="utf-8"))
    assert record["kms_alias"] == ALIAS and record["local_image"] == f"{AMI_IMAGE_REPO}:{ami}"
    assert kept_local_images(tmp_path) == {f"{AMI_IMAGE_REPO}:{ami}"}

    emulator.reset()  # the next rehearsal: an empty account
    later = AccountImages(_layout(tmp_path), aws, logs.append)
    later.reconcile(Round())
    assert aws("ec2").describe_images(Owners=["self"])["Images"] == []  # its key does not exist yet
    assert any("waiting for the key" in line for line in logs)

    new_key = _key(aws)  # keys.yml makes the key and its alias anew
    later.reconcile(Round())
    image = aws("ec2").describe_images(ImageIds=[ami])["Images"][0]
    assert image["State"] == "available" and image["Name"] == "shop-golden-1"
    assert image["CreationDate"] == before["CreationDate"]
    tags = {t["Key"]: t["Value"] for t in image["Tags"]}
    assert tags["gearlift:inputs"] == "abc123" and tags[LOCAL_IMAGE_TAG] == f"{AMI_IMAGE_REPO}:{ami}"
    ebs = _ebs(aws, ami)
    assert ebs["Encrypted"] is True and ebs["KmsKeyId"] == new_key and ebs["VolumeSize"] == 12
    snapshot = aws("ec2").describe_snapshots(SnapshotIds=[ebs["SnapshotId"]])["Snapshots"][0]
    assert snapshot["Encrypted"] is True and snapshot["State"] == "completed"

    # Deregistered in this account (the prune): the account no longer keeps it.
    aws("ec2").deregister_image(ImageId=ami)
    later.reconcile(Round())
    assert not (tmp_path / "account-images" / f"{ami}.json").exists()
    assert kept_local_images(tmp_path) == set()


def test_a_record_whose_local_image_is_gone_is_dropped_not_restored(
    aws: Clients, emulator: MotoControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ami = _baked_image(aws, emulator, _key(aws))
    AccountImages(_layout(tmp_path), aws, lambda _line: None).reconcile(Round())
    emulator.reset()
    _key(aws)
    monkeypatch.setattr(podman, "image_exists", lambda name: False)
    AccountImages(_layout(tmp_path), aws, lambda _line: None).reconcile(Round())
    assert aws("ec2").describe_images(Owners=["self"])["Images"] == []
    assert not (tmp_path / "account-images" / f"{ami}.json").exists()


def test_the_twins_seeded_images_and_keys_without_alias_are_not_kept(
    aws: Clients, emulator: MotoControlPlane, tmp_path: Path
) -> None:
    key = aws("kms").create_key(Description="no alias")["KeyMetadata"]["Arn"]
    ami = _baked_image(aws, emulator, key)
    seeded = aws("ec2").register_image(Name="seeded")["ImageId"]
    aws("ec2").create_tags(Resources=[seeded], Tags=[{"Key": LOCAL_IMAGE_TAG, "Value": "localhost/gearlift-apphost:x"}])
    logs: list[str] = []
    AccountImages(_layout(tmp_path), aws, logs.append).reconcile(Round())
    assert kept_local_images(tmp_path) == set()
    assert any(f"{ami}'s key has no alias" in line for line in logs)


def test_the_emulator_refuses_to_restore_over_an_existing_image(aws: Clients, emulator: MotoControlPlane) -> None:
    ami = _baked_image(aws, emulator, _key(aws))
    record = {"image_id": ami, "name": "x", "creation_date": "2026-01-01T00:00:00.000Z", "kms_alias": ALIAS}
    answer = channel.send(emulator.url, channel.IMAGE_RESTORE, {"region": REGION, "image": record})
    assert answer == {"restored": False, "why": f"{ami} exists"}
