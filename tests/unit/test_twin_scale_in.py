"""Scale-in as AWS does it (gearlift.twin.emulator.scalein): the Default termination policy's choice, and
instances drain from their target groups before they terminate."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest

from gearlift.twin.awsclients import Clients
from gearlift.twin.controlplane import MotoControlPlane
from gearlift.twin.emulator.lifecycle import CANONICAL_OWNER
from gearlift.twin.emulator.scalein import Candidate, choose

REGION = "us-east-1"


def c(iid: str, zone: str, version: int = 1, launched: float = 0.0, protected: bool = False) -> Candidate:
    return Candidate(iid, zone, version, launched, protected)


def test_the_zone_with_the_most_instances_loses_one_first() -> None:
    pool = [c("i-1", "a", launched=1), c("i-2", "a", launched=2), c("i-3", "b", launched=0)]
    assert choose(pool, 1) == ["i-1"]  # zone a has two; its oldest goes, not b's older one


def test_zones_stay_balanced_over_several() -> None:
    pool = [c(f"i-a{n}", "a", launched=n) for n in range(3)] + [c(f"i-b{n}", "b", launched=n) for n in range(2)]
    gone = choose(pool, 3)
    assert gone == ["i-a0", "i-a1", "i-b0"]


def test_the_oldest_template_version_goes_before_the_oldest_launch() -> None:
    pool = [c("i-new", "a", version=3, launched=0), c("i-old", "a", version=2, launched=9)]
    assert choose(pool, 1) == ["i-old"]


def test_protected_instances_never_go() -> None:
    pool = [c("i-1", "a", protected=True), c("i-2", "a", launched=5)]
    assert choose(pool, 2) == ["i-2"]


@pytest.fixture
def aws(emulator: MotoControlPlane, monkeypatch: pytest.MonkeyPatch) -> Clients:
    from tests.unit.module_harness import dummy_aws_env

    dummy_aws_env(monkeypatch, REGION)
    emulator.reset()
    return Clients(emulator.url, REGION)


def _group(aws: Clients) -> dict[str, Any]:
    return dict(aws("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["shop"])["AutoScalingGroups"][0])


def test_a_lower_desired_capacity_drains_then_terminates(aws: Clients) -> None:
    ec2, elbv2, asg = aws("ec2"), aws("elbv2"), aws("autoscaling")
    subnets = sorted(
        ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"],
        key=lambda s: s["AvailabilityZone"],
    )[:2]
    tg = elbv2.create_target_group(Name="shop-tg", Protocol="HTTP", Port=80, VpcId=subnets[0]["VpcId"])["TargetGroups"][
        0
    ]["TargetGroupArn"]
    elbv2.modify_target_group_attributes(
        TargetGroupArn=tg, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "3"}]
    )
    image = ec2.describe_images(Owners=[CANONICAL_OWNER])["Images"][0]["ImageId"]
    template = ec2.create_launch_template(
        LaunchTemplateName="shop-lt",
        LaunchTemplateData={
            "ImageId": image,
            "InstanceType": "t3.micro",
            "UserData": base64.b64encode(b"#cloud-config\n").decode(),
        },
    )["LaunchTemplate"]["LaunchTemplateId"]
    asg.create_auto_scaling_group(
        AutoScalingGroupName="shop",
        LaunchTemplate={"LaunchTemplateId": template, "Version": "1"},
        MinSize=1,
        MaxSize=4,
        DesiredCapacity=3,
        VPCZoneIdentifier=",".join(s["SubnetId"] for s in subnets),
        TargetGroupARNs=[tg],
    )
    before = {i["InstanceId"]: i["AvailabilityZone"] for i in _group(aws)["Instances"]}
    zones = sorted(before.values())
    crowded = max(set(zones), key=zones.count)
    asg.set_desired_capacity(AutoScalingGroupName="shop", DesiredCapacity=2)
    group = _group(aws)
    leaving = [i for i in group["Instances"] if i["LifecycleState"] == "Terminating"]
    assert group["DesiredCapacity"] == 2 and len(leaving) == 1
    victim = leaving[0]["InstanceId"]
    assert before[victim] == crowded  # the zone with two lost one
    health = {
        d["Target"]["Id"]: d["TargetHealth"]["State"]
        for d in elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    }
    assert health.get(victim) == "draining"
    state = ec2.describe_instances(InstanceIds=[victim])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state == "running"  # still serving its in-flight requests
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and victim in {i["InstanceId"] for i in _group(aws)["Instances"]}:
        time.sleep(0.5)
    assert victim not in {i["InstanceId"] for i in _group(aws)["Instances"]}
    state = ec2.describe_instances(InstanceIds=[victim])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state in ("shutting-down", "terminated")
    assert len([i for i in _group(aws)["Instances"] if i["LifecycleState"] == "InService"]) == 2
