"""gearlift.platform.asg_processes: module_utils/asg_processes.py on its own, and the module against the emulator."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.gearlift.platform.plugins.module_utils import asg_processes as ap

from gearlift.twin.awsclients import Clients
from gearlift.twin.controlplane import MotoControlPlane
from tests.unit.module_harness import Result, dummy_aws_env, run_main

REGION = "us-east-1"
PATCH = ["AlarmNotification", "ScheduledActions", "AZRebalance"]


def test_suspend_records_only_what_it_suspended() -> None:
    plan = ap.plan_suspend({"AZRebalance"}, PATCH, None, "run-1")
    assert plan.suspend == ("AlarmNotification", "ScheduledActions")
    assert plan.record == ap.Record(("AlarmNotification", "ScheduledActions"), "run-1")
    resume = ap.plan_resume({"AZRebalance", "AlarmNotification", "ScheduledActions"}, plan.record)
    assert resume.resume == ("AlarmNotification", "ScheduledActions")  # a person's AZRebalance stays suspended
    assert resume.record is None


def test_a_second_suspend_changes_nothing_and_keeps_the_record() -> None:
    record = ap.Record(tuple(sorted(PATCH)), "run-1")
    plan = ap.plan_suspend(set(PATCH), PATCH, record, "run-2")
    assert not plan.changed
    assert plan.record == ap.Record(tuple(sorted(PATCH)), "run-2")


def test_resume_without_a_record_changes_nothing() -> None:
    assert not ap.plan_resume({"AlarmNotification"}, None).changed


def test_the_record_round_trips_and_a_foreign_tag_is_refused() -> None:
    record = ap.Record(("AlarmNotification",), "r")
    group = {"Tags": [{"Key": ap.TAG_KEY, "Value": record.encode()}]}
    assert ap.recorded(group) == record
    assert ap.recorded({"Tags": []}) is None
    with pytest.raises(ap.RecordError, match="not JSON"):
        ap.recorded({"Tags": [{"Key": ap.TAG_KEY, "Value": "x"}]})
    with pytest.raises(ap.RecordError, match="no valid process list"):
        ap.recorded({"Tags": [{"Key": ap.TAG_KEY, "Value": '{"processes": ["Nap"]}'}]})


def test_unknown_and_unsafe_names_are_refused_with_the_fix() -> None:
    assert ap.check_names(PATCH, allow_unsafe=False) == []
    [unknown] = ap.check_names(["Scaling"], allow_unsafe=False)
    assert "unknown process name(s) Scaling" in unknown and "AlarmNotification" in unknown
    [unsafe] = ap.check_names(["Launch", "AZRebalance"], allow_unsafe=False)
    assert "Launch" in unsafe and "allow_unsafe_processes=true" in unsafe
    assert ap.check_names(["Launch"], allow_unsafe=True) == []


# --------------------------------------------------------------------------- the module on the emulator


@pytest.fixture
def aws(emulator: MotoControlPlane, monkeypatch: pytest.MonkeyPatch) -> Clients:
    dummy_aws_env(monkeypatch, REGION)
    emulator.reset()
    clients = Clients(emulator.url, REGION)
    ec2 = clients("ec2")
    subnet = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]["SubnetId"]
    template = ec2.create_launch_template(
        LaunchTemplateName="shop-lt", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    clients("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="shop",
        LaunchTemplate={"LaunchTemplateId": template, "Version": "1"},
        MinSize=0,
        MaxSize=2,
        DesiredCapacity=0,
        VPCZoneIdentifier=subnet,
    )
    return clients


def _run(emulator: MotoControlPlane, args: dict[str, Any], check_mode: bool = False) -> Result:
    from ansible_collections.gearlift.platform.plugins.modules import asg_processes

    module_args = {"group_name": "shop", "region": REGION, "endpoint_url": emulator.url, **args}
    return run_main(asg_processes.main, module_args, check_mode=check_mode, diff=True)


def _group(aws: Clients) -> dict[str, Any]:
    return dict(aws("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["shop"])["AutoScalingGroups"][0])


def test_suspend_then_resume_leaves_a_persons_suspension(aws: Clients, emulator: MotoControlPlane) -> None:
    aws("autoscaling").suspend_processes(AutoScalingGroupName="shop", ScalingProcesses=["AZRebalance"])
    checked = _run(emulator, {"run": "r1"}, check_mode=True)
    assert checked["changed"] and ap.suspended(_group(aws)) == {"AZRebalance"}  # check mode changes nothing
    done = _run(emulator, {"run": "r1"})
    assert done["changed"] and done["suspended"] == ["AlarmNotification", "ScheduledActions"]
    assert ap.suspended(_group(aws)) == set(PATCH)
    assert ap.recorded(_group(aws)) == ap.Record(("AlarmNotification", "ScheduledActions"), "r1")
    again = _run(emulator, {"run": "r1"})
    assert not again["changed"]  # idempotent
    resumed = _run(emulator, {"state": "resumed"})
    assert resumed["changed"] and resumed["resumed"] == ["AlarmNotification", "ScheduledActions"]
    assert ap.suspended(_group(aws)) == {"AZRebalance"}
    assert ap.recorded(_group(aws)) is None
    assert not _run(emulator, {"state": "resumed"})["changed"]


def test_unsafe_processes_are_refused_before_any_change(aws: Clients, emulator: MotoControlPlane) -> None:
    refused = _run(emulator, {"processes": ["Terminate"]})
    assert refused.failed and "allow_unsafe_processes" in refused["msg"]
    assert ap.suspended(_group(aws)) == set()
