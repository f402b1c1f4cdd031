"""gearlift.platform.asg_surge: module_utils/surge.py on its own, and the module against the twin's emulator."""

from __future__ import annotations

import base64
import threading
import time
from typing import Any

import botocore.exceptions
import pytest
from ansible_collections.gearlift.platform.plugins.module_utils import surge as sg

from gearlift.twin.awsclients import Clients
from gearlift.twin.controlplane import MotoControlPlane
from gearlift.twin.emulator.lifecycle import CANONICAL_OWNER
from tests.unit.module_harness import Result, dummy_aws_env, run_main

REGION = "us-east-1"


def _group(instances: dict[str, str], tag: str | None = None, desired: int = 2) -> dict[str, Any]:
    tags = [{"Key": "Name", "Value": "shop"}] + ([{"Key": sg.TAG_KEY, "Value": tag}] if tag is not None else [])
    return {
        "DesiredCapacity": desired,
        "MinSize": 2,
        "MaxSize": 4,
        "Instances": [{"InstanceId": i, "LifecycleState": s} for i, s in instances.items()],
        "Tags": tags,
    }


def test_record_is_compact_json_and_round_trips() -> None:
    record = sg.Surge(baseline=2, instances=["i-0abc"], run="20261204-221500", count=1)
    assert record.encode() == '{"baseline":2,"count":1,"instances":["i-0abc"],"run":"20261204-221500"}'
    assert sg.decode(record.encode()) == record
    assert sg.recorded(_group({}, record.encode())) == record
    assert sg.recorded(_group({})) is None


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("not json", "not JSON"),
        ("[1]", "not a JSON object"),
        ('{"instances": []}', "no valid baseline"),
        ('{"baseline": true, "instances": []}', "no valid baseline"),
        ('{"baseline": 2, "instances": ["x-1"]}', "no valid instance list"),
        ('{"baseline": 2, "instances": [], "count": -1}', "no valid count"),
    ],
)
def test_a_tag_that_is_not_a_record_is_refused(value: str, words: str) -> None:
    with pytest.raises(sg.RecordError, match=words):
        sg.decode(value)


def test_request_above_max_names_the_fix() -> None:
    assert sg.check_request(2, "r", desired=2, max_size=4) == []
    [reason] = sg.check_request(3, "r", desired=2, max_size=4)
    assert "above the group's max size 4" in reason and "raise the group's max size or lower the batch" in reason
    assert sg.check_request(0, "r", desired=2, max_size=4) == ["count must be at least 1 (got 0)"]


def test_request_that_cannot_be_recorded_in_a_tag_is_refused() -> None:
    assert sg.check_request(9, "r", desired=2, max_size=100) == []
    [reason] = sg.check_request(11, "r", desired=2, max_size=100)
    assert "256-character" in reason and "lower the batch" in reason


def test_a_recorded_surge_still_in_the_group_is_reused() -> None:
    record = sg.Surge(baseline=2, instances=["i-3"], run="a", count=1)
    group = _group({"i-1": "InService", "i-2": "Standby", "i-3": "InService"}, record.encode(), desired=3)
    assert sg.reuse(record, group, 1) == (True, None)
    keep, reason = sg.reuse(record, group, 2)
    assert not keep and reason is not None and "smaller than the 2 asked for" in reason


def test_a_recorded_surge_that_lost_instances_is_refused_with_the_fix() -> None:
    record = sg.Surge(baseline=2, instances=["i-3", "i-4"], run="a", count=2)
    group = _group({"i-1": "InService", "i-3": "InService", "i-4": "Terminating"}, record.encode())
    keep, reason = sg.reuse(record, group, 2)
    assert not keep and reason is not None and "i-4" in reason and "state=absent" in reason and "i-3," not in reason
    pending = sg.Surge(baseline=2, instances=[], run="a", count=1)  # recorded before the capacity changed
    keep, reason = sg.reuse(pending, group, 1)
    assert not keep and reason is not None and "not all recorded" in reason


def test_new_instances_are_the_ones_not_there_before_and_not_leaving() -> None:
    group = _group({"i-1": "InService", "i-2": "InService", "i-9": "Terminating", "i-5": "Pending", "i-6": "InService"})
    assert sg.new_instances(["i-1", "i-2"], group, 1) == ["i-5"]
    assert sg.new_instances(["i-1", "i-2"], group, 5) == ["i-5", "i-6"]
    done = sg.surge_in_service(["i-1", "i-2"], 2)
    assert not done(group)
    group["Instances"][3]["LifecycleState"] = "InService"
    assert done(group)
    assert not sg.surge_in_service(["i-1", "i-2"], 3)(group)


def test_settle_terminates_only_recorded_instances_still_in_the_group() -> None:
    record = sg.Surge(baseline=2, instances=["i-3", "i-4", "i-7"], run="a", count=3)
    group = _group({"i-1": "InService", "i-3": "InService", "i-4": "Terminating", "i-5": "InService"})
    assert sg.to_settle(record, group) == ["i-3"]
    assert not sg.gone(["i-3"])(group) and sg.gone(["i-4", "i-7"])(group)
    assert sg.in_service(group) == ["i-1", "i-3", "i-5"]


def test_drained_waits_for_every_target_to_leave_or_be_unused() -> None:
    done = sg.drained(["i-3"])
    assert not done({"i-1": "healthy", "i-3": "draining"})
    assert done({"i-1": "healthy", "i-3": "unused"}) and done({"i-1": "healthy"})


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_wait_is_bounded_and_never_sleeps_past_the_deadline() -> None:
    clock = Clock()
    polls: list[int] = []

    def describe() -> dict[str, Any]:
        polls.append(1)
        return _group({"i-1": "Pending"})

    waited = sg.wait_until(describe, lambda g: False, timeout=12, interval=5, clock=clock, sleep=clock.sleep)
    assert not waited.done and clock.sleeps == [5, 5, 2] and waited.polls == 4 == len(polls)


def test_wait_returns_as_soon_as_the_condition_holds() -> None:
    clock = Clock()
    states = iter(["Pending", "Pending", "InService"])

    def describe() -> dict[str, Any]:
        return _group({"i-1": "InService", "i-2": next(states)})

    waited = sg.wait_until(
        describe, sg.surge_in_service(["i-1"], 1), timeout=600, interval=5, clock=clock, sleep=clock.sleep
    )
    assert waited.done and waited.polls == 3 and clock.sleeps == [5, 5]


# ------------------------------------------------- the module against the twin's emulator process
#
# One real emulator process (gearlift.twin.emulator.server, as the twin starts it, with every fidelity rule:
# EnterStandby below the minimum is refused as on AWS), reset between tests; no containers.


@pytest.fixture
def aws(emulator: MotoControlPlane, monkeypatch: pytest.MonkeyPatch) -> Clients:
    from ansible_collections.gearlift.platform.plugins.modules import asg_surge

    monkeypatch.setattr(asg_surge, "POLL_SECONDS", 0.5)  # the emulator drains a target in 1 s
    dummy_aws_env(monkeypatch, REGION)
    emulator.reset()
    return Clients(emulator.url, REGION)


def _fleet(aws: Clients, name: str = "shop", min_size: int = 2, desired: int = 2, max_size: int = 4) -> list[str]:
    """A group spread over two zones behind a target group, as the shipped inventories run it (min = desired = 2)."""
    ec2, elbv2 = aws("ec2"), aws("elbv2")
    subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    subnets = sorted(subnets, key=lambda s: s["AvailabilityZone"])[:2]
    tg = elbv2.create_target_group(Name=f"{name}-tg", Protocol="HTTP", Port=80, VpcId=subnets[0]["VpcId"])[
        "TargetGroups"
    ][0]["TargetGroupArn"]
    elbv2.modify_target_group_attributes(
        TargetGroupArn=tg, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "1"}]
    )
    image = ec2.describe_images(Owners=[CANONICAL_OWNER])["Images"][0]["ImageId"]
    user_data = base64.b64encode(b"#cloud-config\nruncmd: [true]\n").decode()
    template = ec2.create_launch_template(
        LaunchTemplateName=f"{name}-lt",
        LaunchTemplateData={"ImageId": image, "InstanceType": "t3.micro", "UserData": user_data},
    )["LaunchTemplate"]["LaunchTemplateId"]
    aws("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateId": template, "Version": "1"},
        MinSize=min_size,
        MaxSize=max_size,
        DesiredCapacity=desired,
        VPCZoneIdentifier=",".join(s["SubnetId"] for s in subnets),
        TargetGroupARNs=[tg],
    )
    return sorted(i["InstanceId"] for i in _described(aws, name)["Instances"])


def _targets(aws: Clients) -> dict[str, str]:
    arn = _described(aws)["TargetGroupARNs"][0]
    found = aws("elbv2").describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    return {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in found}


def _described(aws: Clients, name: str = "shop") -> dict[str, Any]:
    group: dict[str, Any] = aws("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"
    ][0]
    return group


def _surge(emulator: MotoControlPlane, args: dict[str, Any], check_mode: bool = False, diff: bool = False) -> Result:
    from ansible_collections.gearlift.platform.plugins.modules import asg_surge

    module_args = {"group_name": "shop", "region": REGION, "endpoint_url": emulator.url, "wait_timeout": 30, **args}
    return run_main(asg_surge.main, module_args, check_mode=check_mode, diff=diff)


class Sampler:
    """DescribeAutoScalingGroups and DescribeTargetHealth every 0.05 s in the background (bounded): in-service count
    and desired capacity; the targets' states."""

    def __init__(self, aws: Clients) -> None:
        self.aws = aws
        self.samples: list[tuple[int, int]] = []
        self.targets: list[dict[str, str]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def sample(self) -> None:
        group = _described(self.aws)
        in_service = sum(1 for i in group["Instances"] if i["LifecycleState"] == "InService")
        self.samples.append((in_service, group["DesiredCapacity"]))
        self.targets.append(_targets(self.aws))

    def loop(self) -> None:
        deadline = time.monotonic() + 120
        while not self.stop.is_set() and time.monotonic() < deadline:
            self.sample()
            self.stop.wait(0.05)

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def test_at_minimum_the_old_standby_is_refused_and_the_surge_keeps_two_in_service(
    aws: Clients, emulator: MotoControlPlane
) -> None:
    hosts = _fleet(aws)  # min = desired = 2, max 4
    asg = aws("autoscaling")
    # The old way: Standby with a decrement takes the group below its minimum; AWS (and the twin) refuse it.
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        asg.enter_standby(AutoScalingGroupName="shop", InstanceIds=[hosts[0]], ShouldDecrementDesiredCapacity=True)
    assert refused.value.response["Error"]["Code"] == "ValidationError" and "min-size=2" in str(refused.value)

    with Sampler(aws) as sampler:
        planned = _surge(emulator, {"count": 1, "run": "t1"}, check_mode=True)
        assert not planned.failed and planned["changed"], planned.data
        assert planned["desired_capacity"] == 3 and planned["diff"]["before"]["desired_capacity"] == 2
        assert _described(aws)["DesiredCapacity"] == 2 and sampler.samples[-1] == (2, 2), "check mode changed it"

        made = _surge(emulator, {"count": 1, "run": "t1"})
        assert not made.failed and made["changed"], made.data
        [extra] = made["surge"]["instances"]
        assert extra not in hosts and made["surge"] == {"baseline": 2, "count": 1, "instances": [extra], "run": "t1"}
        group = _described(aws)
        tag = {t["Key"]: t for t in group["Tags"]}["gearlift:surge"]
        assert tag["Value"] == '{"baseline":2,"count":1,"instances":["' + extra + '"],"run":"t1"}'
        assert tag["PropagateAtLaunch"] is False and group["DesiredCapacity"] == 3

        again = _surge(emulator, {"count": 1, "run": "t1"})
        assert not again.failed and not again["changed"] and again["surge"]["instances"] == [extra]
        assert _described(aws)["DesiredCapacity"] == 3, "a recorded surge was repeated"

        # The rolling patch, one host per batch: Standby with a decrement is accepted while the surge holds capacity.
        for host in hosts:
            asg.enter_standby(AutoScalingGroupName="shop", InstanceIds=[host], ShouldDecrementDesiredCapacity=True)
            sampler.sample()
            refused_settle = _surge(emulator, {"state": "absent"})  # a host is out: settling now would drop below 2
            assert refused_settle.failed and "below the group's minimum 2" in refused_settle["msg"]
            asg.exit_standby(AutoScalingGroupName="shop", InstanceIds=[host])
            sampler.sample()

        settled_plan = _surge(emulator, {"state": "absent"}, check_mode=True)
        assert settled_plan["changed"] and settled_plan["terminated"] == [extra]
        assert extra in {i["InstanceId"] for i in _described(aws)["Instances"]}, "check mode terminated it"
        settled = _surge(emulator, {"state": "absent"}, diff=True)
        assert not settled.failed and settled["changed"], settled.data
        assert settled["terminated"] == [extra] and settled["baseline_restored"] is True
        assert settled["diff"]["after"] == {"desired_capacity": 2, "surge": None}
    group = _described(aws)
    assert sorted(i["InstanceId"] for i in group["Instances"]) == hosts and group["DesiredCapacity"] == 2
    assert "gearlift:surge" not in {t["Key"] for t in group["Tags"]}
    assert {i["LifecycleState"] for i in group["Instances"]} == {"InService"}
    assert len(sampler.samples) > 10 and min(s[0] for s in sampler.samples) >= 2, sampler.samples
    assert max(s[1] for s in sampler.samples) == 3
    # The surge host was drained (deregistered, in-flight requests finish) before it was terminated, and is gone.
    assert any(t.get(extra) == "draining" for t in sampler.targets), "the surge host was never drained"
    assert extra not in _targets(aws)
    state = aws("ec2").describe_instances(InstanceIds=[extra])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state in ("shutting-down", "terminated")

    nothing = _surge(emulator, {"state": "absent"})
    assert not nothing.failed and not nothing["changed"] and nothing["surge"] is None


def test_a_surge_above_the_max_size_is_refused_before_any_change(aws: Clients, emulator: MotoControlPlane) -> None:
    _fleet(aws, max_size=3)
    result = _surge(emulator, {"count": 2, "run": "t2"})
    assert result.failed and "raise the group's max size or lower the batch" in result["msg"]
    group = _described(aws)
    assert group["DesiredCapacity"] == 2 and len(group["Instances"]) == 2
    assert "gearlift:surge" not in {t["Key"] for t in group["Tags"]}


def test_a_recorded_surge_that_lost_its_instances_is_not_reused(aws: Clients, emulator: MotoControlPlane) -> None:
    _fleet(aws)
    made = _surge(emulator, {"count": 1, "run": "t3"})
    [extra] = made["surge"]["instances"]
    aws("autoscaling").terminate_instance_in_auto_scaling_group(InstanceId=extra, ShouldDecrementDesiredCapacity=False)
    refused = _surge(emulator, {"count": 1, "run": "t4"})
    assert refused.failed and extra in refused["msg"] and "state=absent" in refused["msg"]
    # Settling a surge whose instance was replaced terminates nothing else and drops the record.
    settled = _surge(emulator, {"state": "absent"})
    assert not settled.failed and settled["terminated"] == [] and settled["baseline_restored"] is False
    assert "gearlift:surge" not in {t["Key"] for t in _described(aws)["Tags"]}
