"""Unit tests of the gearlift.platform.asg_fleet module and its module_utils.

The module runs in-process (``patch_module_args`` + exit/fail patched to raise).

* moto (``mock_aws``) plays EC2 and Auto Scaling for what it implements: launch
  templates and versions, group create/update, target groups, tags.
* botocore's ``Stubber`` (validating against the real API shapes) plays what moto
  does not implement: the instance refresh calls.  For those tests the module gets a
  client that sends the refresh operations to the stub and everything else to moto,
  so rollbacks are verified by reading the moto state back.
* Check mode is also run against clients that are *fully* stubbed with Describe*
  responses only, so any write call would break the test.

Waiting uses a fake clock: nothing here really sleeps.
"""

from __future__ import annotations

import base64
import copy
import datetime
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import boto3
import pytest
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper
from ansible_collections.gearlift.platform.plugins.module_utils import fleet
from ansible_collections.gearlift.platform.plugins.modules import asg_fleet
from botocore.stub import Stubber
from moto import mock_aws

from .module_harness import CallLog, Result, dummy_aws_env, run_main

REGION = "us-east-1"
AMI_V1 = "ami-12c6146b"  # AMIs moto ships with
AMI_V2 = "ami-03cf127a"
USER_DATA = "#!/bin/bash\nsystemctl enable --now shop\n"
GROUP = "shop-web"
TEMPLATE = "shop-web-lt"
REFRESH_OPS = frozenset(
    {
        "start_instance_refresh",
        "describe_instance_refreshes",
        "cancel_instance_refresh",
        "rollback_instance_refresh",
    }
)


# --------------------------------------------------------------------------- harness


def run_module(args: dict[str, Any], check_mode: bool = False, diff: bool = False) -> Result:
    return run_main(asg_fleet.main, args, check_mode=check_mode, diff=diff)


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    dummy_aws_env(monkeypatch, REGION)


class FakeClock:
    """Replaces the module's clock/sleep: sleeping advances time, and can run hooks."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep: list[Any] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        while self.on_sleep:
            self.on_sleep.pop(0)()


@pytest.fixture
def fake_clock(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(asg_fleet, "_clock", clock.clock)
    monkeypatch.setattr(asg_fleet, "_sleep", clock.sleep)
    return clock


@dataclass
class Net:
    ec2: Any
    asg: Any
    elbv2: Any
    vpc: str
    subnets: list[str]
    sg: str


@pytest.fixture
def net():
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"][
                "SubnetId"
            ]
            for i, az in ((1, "a"), (2, "b"))
        ]
        sg = ec2.create_security_group(VpcId=vpc, GroupName="web", Description="web")["GroupId"]
        yield Net(
            ec2=ec2,
            asg=boto3.client("autoscaling", region_name=REGION),
            elbv2=boto3.client("elbv2", region_name=REGION),
            vpc=vpc,
            subnets=subnets,
            sg=sg,
        )


def base_args(net: Net, **overrides: Any) -> dict[str, Any]:
    args = dict(
        name=GROUP,
        launch_template_name=TEMPLATE,
        region=REGION,
        image_id=AMI_V1,
        instance_type="t3.micro",
        iam_instance_profile="shop-web",
        security_group_ids=[net.sg],
        subnets=list(net.subnets),
        min_size=2,
        max_size=4,
        user_data=USER_DATA,
        tags={"app": "shop"},
        poll_interval=10,
        refresh_timeout=60,
    )
    args.update(overrides)
    return args


def default_version(net: Net) -> dict[str, Any]:
    return net.ec2.describe_launch_template_versions(LaunchTemplateName=TEMPLATE, Versions=["$Default"])[
        "LaunchTemplateVersions"
    ][0]


def template(net: Net) -> dict[str, Any]:
    return net.ec2.describe_launch_templates(LaunchTemplateNames=[TEMPLATE])["LaunchTemplates"][0]


def group(net: Net) -> dict[str, Any]:
    return net.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]


# ----------------------------------------------------------------- client plumbing


class RefreshSplit:
    """Autoscaling client: refresh operations go to a stub, the rest to moto."""

    def __init__(self, moto_client: Any, stub_client: Any) -> None:
        self._moto = moto_client
        self._stub = stub_client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stub if name in REFRESH_OPS else self._moto, name)


def use_clients(monkeypatch, **clients: Any) -> None:
    """Make AnsibleAWSModule.client() hand out the given clients (retry wrapper kept)."""

    def client(self, service, retry_decorator=None, **kwargs):
        made = clients[service]
        return RetryingBotoClientWrapper(made, retry_decorator) if retry_decorator else made

    monkeypatch.setattr(AnsibleAWSModule, "client", client)


@dataclass
class RefreshRig:
    stub: Stubber
    log: CallLog
    template_id: str
    group_name: str = GROUP
    next_ids: list[str] = field(default_factory=lambda: ["ir-0001", "ir-0002", "ir-0003"])

    def no_active_refresh(self) -> None:
        self.stub.add_response(
            "describe_instance_refreshes",
            {"InstanceRefreshes": []},
            {"AutoScalingGroupName": self.group_name, "MaxRecords": 5},
        )

    def expect_start(self, version: str, auto_rollback: bool, warmup: int = 300) -> str:
        refresh_id = self.next_ids.pop(0)
        prefs: dict[str, Any] = {"MinHealthyPercentage": 90, "SkipMatching": True, "InstanceWarmup": warmup}
        if auto_rollback:
            prefs["AutoRollback"] = True
        self.stub.add_response(
            "start_instance_refresh",
            {"InstanceRefreshId": refresh_id},
            {
                "AutoScalingGroupName": self.group_name,
                "Strategy": "Rolling",
                "DesiredConfiguration": {"LaunchTemplate": {"LaunchTemplateId": self.template_id, "Version": version}},
                "Preferences": prefs,
            },
        )
        return refresh_id

    def poll(self, refresh_id: str, status: str, percentage: int, reason: str | None = None) -> None:
        entry: dict[str, Any] = {
            "InstanceRefreshId": refresh_id,
            "AutoScalingGroupName": self.group_name,
            "Status": status,
            "PercentageComplete": percentage,
            "InstancesToUpdate": 0 if status == "Successful" else 1,
            "StartTime": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
        }
        if reason:
            entry["StatusReason"] = reason
        self.stub.add_response(
            "describe_instance_refreshes",
            {"InstanceRefreshes": [entry]},
            {"AutoScalingGroupName": self.group_name, "InstanceRefreshIds": [refresh_id]},
        )


@pytest.fixture
def rig(net, monkeypatch, fake_clock):
    """An existing fleet (created through the module on moto) plus a refresh stub."""
    created = run_module(base_args(net))
    assert not created.failed, created.data
    assert len(group(net)["Instances"]) == 2
    log = CallLog()
    ec2 = log.attach(boto3.client("ec2", region_name=REGION))
    moto_asg = log.attach(boto3.client("autoscaling", region_name=REGION))
    stub_asg = log.attach(boto3.client("autoscaling", region_name=REGION))
    stubber = Stubber(stub_asg)
    use_clients(monkeypatch, ec2=ec2, autoscaling=RefreshSplit(moto_asg, stub_asg))
    with stubber:
        yield RefreshRig(stub=stubber, log=log, template_id=created["launch_template"]["id"])
        stubber.assert_no_pending_responses()


# ------------------------------------------------------------------ moto: converge


def test_create_then_second_run_is_idempotent(net):
    first = run_module(base_args(net))
    assert not first.failed, first.data
    assert first["changed"] is True
    assert first["launch_template"]["previous_version"] is None
    assert first["launch_template"]["default_version"] == 1

    data = default_version(net)["LaunchTemplateData"]
    assert data["MetadataOptions"] == {
        "HttpTokens": "required",
        "HttpPutResponseHopLimit": 1,
        "HttpEndpoint": "enabled",
    }
    assert data["Monitoring"] == {"Enabled": True}  # detailed monitoring by default
    ebs = data["BlockDeviceMappings"][0]["Ebs"]
    assert ebs["Encrypted"] is True
    assert ebs["VolumeType"] == "gp3"
    assert ebs["DeleteOnTermination"] is True
    nic = data["NetworkInterfaces"][0]
    assert nic["AssociatePublicIpAddress"] is False
    assert nic["DeleteOnTermination"] is True
    assert nic["Groups"] == [net.sg]
    assert base64.b64decode(data["UserData"]).decode() == USER_DATA
    assert data["IamInstanceProfile"] == {"Name": "shop-web"}

    g = group(net)
    assert g["LaunchTemplate"]["Version"] == "1"  # explicit number, never $Latest/$Default
    assert g["LaunchTemplate"]["LaunchTemplateId"] == first["launch_template"]["id"]
    assert (g["MinSize"], g["MaxSize"], g["DesiredCapacity"]) == (2, 4, 2)
    assert g["HealthCheckType"] == "ELB"
    assert sorted(g["VPCZoneIdentifier"].split(",")) == sorted(net.subnets)
    assert {(t["Key"], t["Value"], t["PropagateAtLaunch"]) for t in g["Tags"]} == {("app", "shop", True)}
    assert len(first["auto_scaling_group"]["instances"]) == 2

    second = run_module(base_args(net))
    assert not second.failed, second.data
    assert second["changed"] is False
    assert second["instance_refresh"] is None
    assert template(net)["LatestVersionNumber"] == 1
    assert second["launch_template"]["previous_version"] == 1


def test_warm_pool_is_put_then_left_then_changed_then_deleted(net):
    first = run_module(base_args(net, warm_pool={"min_size": 1}))
    assert not first.failed, first.data
    assert first["warm_pool"] == {
        "min_size": 1,
        "max_group_prepared_capacity": -1,
        "pool_state": "Stopped",
        "reuse_on_scale_in": False,
    }
    pool = net.asg.describe_warm_pool(AutoScalingGroupName=GROUP)["WarmPoolConfiguration"]
    assert (pool["MinSize"], pool["PoolState"]) == (1, "Stopped")

    again = run_module(base_args(net, warm_pool={"min_size": 1}))
    assert not again.failed, again.data
    assert again["changed"] is False

    left_alone = run_module(base_args(net))
    assert left_alone["changed"] is False
    assert left_alone["warm_pool"] is None
    assert net.asg.describe_warm_pool(AutoScalingGroupName=GROUP)["WarmPoolConfiguration"]["MinSize"] == 1

    planned = run_module(base_args(net, warm_pool={"min_size": 2, "pool_state": "Running"}), check_mode=True)
    assert planned["changed"] is True
    assert planned["diff"]["before"]["warm_pool"]["min_size"] == 1
    assert planned["diff"]["after"]["warm_pool"]["pool_state"] == "Running"
    assert net.asg.describe_warm_pool(AutoScalingGroupName=GROUP)["WarmPoolConfiguration"]["MinSize"] == 1

    changed = run_module(base_args(net, warm_pool={"min_size": 2, "pool_state": "Running"}))
    assert changed["changed"] is True
    pool = net.asg.describe_warm_pool(AutoScalingGroupName=GROUP)["WarmPoolConfiguration"]
    assert (pool["MinSize"], pool["PoolState"]) == (2, "Running")

    deleted = run_module(base_args(net, warm_pool={"state": "absent"}))
    assert deleted["changed"] is True
    assert deleted["warm_pool"] is None
    assert "WarmPoolConfiguration" not in net.asg.describe_warm_pool(AutoScalingGroupName=GROUP)
    assert run_module(base_args(net, warm_pool={"state": "absent"}))["changed"] is False


def test_new_image_creates_version_and_points_group_at_it(net):
    run_module(base_args(net))
    result = run_module(base_args(net, image_id=AMI_V2, refresh=False))
    assert not result.failed, result.data
    assert result["changed"] is True
    assert result["launch_template"]["previous_version"] == 1
    assert result["launch_template"]["default_version"] == 2
    assert template(net)["DefaultVersionNumber"] == 2
    assert default_version(net)["LaunchTemplateData"]["ImageId"] == AMI_V2
    assert group(net)["LaunchTemplate"]["Version"] == "2"
    assert result["instance_refresh"] is None  # refresh=false: no refresh call at all

    again = run_module(base_args(net, image_id=AMI_V2, refresh=False))
    assert again["changed"] is False
    assert template(net)["LatestVersionNumber"] == 2


def test_desired_capacity_is_kept_when_not_given(net):
    run_module(base_args(net, desired_capacity=3, max_size=5))
    net.asg.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=4)  # a scaling policy acted

    result = run_module(base_args(net, max_size=5))
    assert not result.failed, result.data
    assert result["changed"] is False
    assert group(net)["DesiredCapacity"] == 4

    result = run_module(base_args(net, max_size=5, desired_capacity=3))
    assert result["changed"] is True
    assert group(net)["DesiredCapacity"] == 3


def test_group_settings_converge(net):
    run_module(base_args(net))
    result = run_module(base_args(net, min_size=3, max_size=6, health_check_grace_period=120, subnets=net.subnets[:1]))
    assert result["changed"] is True
    g = group(net)
    assert (g["MinSize"], g["MaxSize"], g["HealthCheckGracePeriod"]) == (3, 6, 120)
    assert g["VPCZoneIdentifier"] == net.subnets[0]
    assert g["DesiredCapacity"] == 3  # raised to the new minimum by the service
    assert template(net)["LatestVersionNumber"] == 1  # group-only change: no new template version


def test_empty_group_is_repointed_without_a_refresh(net):
    run_module(base_args(net, environment="staging", min_size=0, max_size=2))
    assert group(net)["Instances"] == []
    # moto has no instance refresh API: any refresh call would raise here
    result = run_module(base_args(net, environment="staging", min_size=0, max_size=2, image_id=AMI_V2))
    assert not result.failed, result.data
    assert result["instance_refresh"] is None
    assert group(net)["LaunchTemplate"]["Version"] == "2"


def test_target_groups_are_attached_and_detached(net):
    def target_group(name):
        return net.elbv2.create_target_group(Name=name, Protocol="HTTP", Port=8080, VpcId=net.vpc)["TargetGroups"][0][
            "TargetGroupArn"
        ]

    blue, green = target_group("blue"), target_group("green")
    run_module(base_args(net, target_group_arns=[blue]))
    assert group(net)["TargetGroupARNs"] == [blue]

    switched = run_module(base_args(net, target_group_arns=[green]))
    assert switched["changed"] is True
    assert group(net)["TargetGroupARNs"] == [green]

    assert run_module(base_args(net, target_group_arns=[green]))["changed"] is False
    # omitted: attachments are left alone
    assert run_module(base_args(net))["changed"] is False
    assert group(net)["TargetGroupARNs"] == [green]


def test_tags_are_converged_and_purged(net):
    run_module(base_args(net, tags={"app": "shop", "team": "web"}))
    # volume tags live in the template data: a tag change is a new version (refresh off here)
    result = run_module(base_args(net, tags={"app": "shop2"}, refresh=False))
    assert result["changed"] is True
    tags = {(t["Key"], t["Value"], t["PropagateAtLaunch"]) for t in group(net)["Tags"]}
    assert tags == {("app", "shop2", True)}
    specs = default_version(net)["LaunchTemplateData"]["TagSpecifications"]
    assert {s["ResourceType"]: s["Tags"] for s in specs}["volume"] == [{"Key": "app", "Value": "shop2"}]


def test_override_allows_imdsv1_and_public_ip(net):
    result = run_module(
        base_args(
            net, http_tokens="optional", allow_imdsv1=True, associate_public_ip_address=True, allow_public_ip=True
        )
    )
    assert not result.failed, result.data
    data = default_version(net)["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "optional"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    assert data["NetworkInterfaces"][0]["AssociatePublicIpAddress"] is True


def test_check_mode_creates_nothing(net):
    result = run_module(base_args(net), check_mode=True)
    assert not result.failed, result.data
    assert result["changed"] is True
    assert result["diff"]["before"]["launch_template"] is None
    assert result["diff"]["after"]["launch_template"]["image_id"] == AMI_V1
    assert net.ec2.describe_launch_templates()["LaunchTemplates"] == []
    assert net.asg.describe_auto_scaling_groups()["AutoScalingGroups"] == []


def test_check_mode_on_existing_fleet_changes_nothing(net):
    run_module(base_args(net))
    result = run_module(base_args(net, image_id=AMI_V2, min_size=3), check_mode=True, diff=True)
    assert not result.failed, result.data
    assert result["changed"] is True
    assert result["launch_template"]["default_version"] == 2  # what it would become
    assert result["instance_refresh"]["status"] == "Planned"
    diff = result["diff"]
    assert (diff["before"]["launch_template"]["image_id"], diff["after"]["launch_template"]["image_id"]) == (
        AMI_V1,
        AMI_V2,
    )
    assert diff["after"]["auto_scaling_group"]["launch_template"]["version"] == "2"
    assert diff["after"]["auto_scaling_group"]["min_size"] == 3
    assert template(net)["LatestVersionNumber"] == 1
    g = group(net)
    assert (g["MinSize"], g["LaunchTemplate"]["Version"]) == (2, "1")


# ------------------------------------------------------------------------ guards

GUARD_CASES = [
    pytest.param({"http_tokens": "optional"}, ["http_tokens", "allow_imdsv1"], id="imdsv1"),
    pytest.param(
        {"associate_public_ip_address": True}, ["associate_public_ip_address", "allow_public_ip"], id="public-ip"
    ),
    pytest.param({"volume_encrypted": False}, ["volume_encrypted", "allow_unencrypted_volumes"], id="unencrypted"),
    pytest.param(
        {"min_size": 1, "environment": "production"}, ["min_size=1", "allow_single_instance"], id="prod-single"
    ),
    pytest.param({"min_size": 5, "max_size": 3}, ["min_size=5", "max_size=3"], id="min-gt-max"),
    pytest.param({"desired_capacity": 9}, ["desired_capacity=9"], id="desired-gt-max"),
    pytest.param({"desired_capacity": 1, "environment": "staging"}, ["desired_capacity=1"], id="desired-lt-min"),
    pytest.param({"subnets": []}, ["subnets"], id="no-subnets"),
    pytest.param({"subnets": [""]}, ["subnets"], id="blank-subnet"),
    pytest.param({"security_group_ids": []}, ["security_group_ids"], id="no-security-groups"),
    pytest.param({"min_healthy_percentage": 101}, ["min_healthy_percentage=101"], id="mhp-over-100"),
    pytest.param({"min_healthy_percentage": -5}, ["min_healthy_percentage=-5"], id="mhp-negative"),
    pytest.param({"min_healthy_percentage": 100}, ["max_healthy_percentage"], id="mhp-100-without-max"),
    pytest.param({"user_data": "x" * 16385}, ["user_data", "16384"], id="user-data-too-big"),
    pytest.param(
        {"kms_key_id": "alias/x", "volume_encrypted": False, "allow_unencrypted_volumes": True},
        ["kms_key_id"],
        id="kms-without-encryption",
    ),
    pytest.param({"poll_interval": 0}, ["poll_interval"], id="zero-poll-interval"),
    pytest.param({"volume_throughput": 250, "volume_type": "gp2"}, ["volume_throughput"], id="throughput-not-gp3"),
    pytest.param(
        {"warm_pool": {"max_group_prepared_capacity": 9}},
        ["warm_pool.max_group_prepared_capacity=9", "max_size=4"],
        id="warm-pool-over-max",
    ),
    pytest.param({"warm_pool": {"min_size": -1}}, ["warm_pool.min_size=-1"], id="warm-pool-negative"),
]


@pytest.mark.parametrize(("overrides", "words"), GUARD_CASES)
def test_guards_refuse_before_any_api_call(monkeypatch, overrides, words):
    client = mock.Mock(side_effect=AssertionError("no AWS client may be created when a guard refuses"))
    monkeypatch.setattr(AnsibleAWSModule, "client", client)
    fake = Net(ec2=None, asg=None, elbv2=None, vpc="vpc-1", subnets=["subnet-a", "subnet-b"], sg="sg-1")
    result = run_module(base_args(fake, **overrides))
    assert result.failed
    assert result["msg"].startswith("asg_fleet refused")
    for word in words:
        assert word in result["msg"]
    client.assert_not_called()


def test_guards_report_every_problem_at_once(monkeypatch):
    monkeypatch.setattr(AnsibleAWSModule, "client", mock.Mock(side_effect=AssertionError("no client")))
    fake = Net(ec2=None, asg=None, elbv2=None, vpc="vpc-1", subnets=["subnet-a"], sg="sg-1")
    result = run_module(
        base_args(fake, http_tokens="optional", associate_public_ip_address=True, volume_encrypted=False, min_size=1)
    )
    assert result.failed
    assert len(result["guard_errors"]) == 4
    for override in ("allow_imdsv1", "allow_public_ip", "allow_unencrypted_volumes", "allow_single_instance"):
        assert f"set {override}=true to override" in result["msg"]


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        pytest.param({"http_tokens": "none"}, ["http_tokens", "required, optional"], id="bad-choice"),
        pytest.param({"volume_type": "io2"}, ["volume_iops"], id="io2-needs-iops"),
        pytest.param({"min_size": "two"}, ["min_size", "int"], id="not-an-int"),
        pytest.param({"metrics_list": ["GroupMaxSize"]}, ["metrics_collection"], id="metrics-list-needs-collection"),
    ],
)
def test_argspec_rejects_bad_input_before_any_api_call(monkeypatch, overrides, words):
    client = mock.Mock(side_effect=AssertionError("no client"))
    monkeypatch.setattr(AnsibleAWSModule, "client", client)
    fake = Net(ec2=None, asg=None, elbv2=None, vpc="vpc-1", subnets=["subnet-a"], sg="sg-1")
    result = run_module(base_args(fake, **overrides))
    assert result.failed
    for word in words:
        assert word in result["msg"]
    client.assert_not_called()


# ------------------------------------------------------- stubber: instance refresh


def test_refresh_success_polls_then_points_group_at_new_version(net, rig, fake_clock):
    rig.no_active_refresh()
    refresh_id = rig.expect_start("2", auto_rollback=True)
    rig.poll(refresh_id, "InProgress", 50)
    rig.poll(refresh_id, "Successful", 100)

    result = run_module(base_args(net, image_id=AMI_V2))

    assert not result.failed, result.data
    assert result["changed"] is True
    refresh = result["instance_refresh"]
    assert (refresh["id"], refresh["status"], refresh["percentage"]) == (refresh_id, "Successful", 100)
    assert refresh["percentage_history"] == [50, 100]
    assert refresh["rolled_back"] is False
    assert fake_clock.sleeps == [10]
    assert template(net)["DefaultVersionNumber"] == 2
    assert group(net)["LaunchTemplate"]["Version"] == "2"
    # the group was not moved before the refresh (the refresh's DesiredConfiguration does that,
    # which is what lets AWS roll back to the previous version)
    names = rig.log.names
    start = names.index("StartInstanceRefresh")
    moves = [
        i
        for i, (op, params) in enumerate(rig.log.calls)
        if op == "UpdateAutoScalingGroup" and "LaunchTemplate" in params
    ]
    assert all(i > start for i in moves)


def test_refresh_failed_rolls_back_and_fails(net, rig, fake_clock):
    rig.no_active_refresh()
    refresh_id = rig.expect_start("2", auto_rollback=True)
    rig.poll(refresh_id, "InProgress", 50)
    rig.poll(refresh_id, "Failed", 50, reason="Instances failed to pass ELB health checks")
    back_id = rig.expect_start("1", auto_rollback=False)
    rig.poll(back_id, "Successful", 100)

    result = run_module(base_args(net, image_id=AMI_V2))

    assert result.failed
    assert result["rolled_back"] is True
    assert result["instance_refresh"]["id"] == refresh_id
    assert result["instance_refresh"]["status"] == "Failed"
    assert result["instance_refresh"]["status_reason"] == "Instances failed to pass ELB health checks"
    assert result["instance_refresh"]["rollback_refresh"]["status"] == "Successful"
    assert "Failed" in result["msg"]
    assert "Instances failed to pass ELB health checks" in result["msg"]
    assert "Rolled back" in result["msg"]
    # rollback, read back from the API
    assert template(net)["DefaultVersionNumber"] == 1
    assert template(net)["LatestVersionNumber"] == 2
    assert group(net)["LaunchTemplate"]["Version"] == "1"
    assert rig.log.params("ModifyLaunchTemplate")[-1]["DefaultVersion"] == "1"
    assert result["launch_template"]["default_version"] == 1


def test_rollback_points_group_back_when_it_moved(net, rig, fake_clock):
    """The group ends up on the new version mid-refresh; AWS's own rollback failed."""
    rig.no_active_refresh()
    refresh_id = rig.expect_start("2", auto_rollback=True)
    rig.poll(refresh_id, "InProgress", 30)
    rig.poll(refresh_id, "RollbackFailed", 60, reason="Rollback failed: capacity")
    back_id = rig.expect_start("1", auto_rollback=False)
    rig.poll(back_id, "Successful", 100)
    fake_clock.on_sleep.append(
        lambda: net.asg.update_auto_scaling_group(
            AutoScalingGroupName=GROUP,
            LaunchTemplate={"LaunchTemplateId": rig.template_id, "Version": "2"},
        )
    )

    result = run_module(base_args(net, image_id=AMI_V2))

    assert result.failed
    assert result["rolled_back"] is True
    group_moves = [
        p["LaunchTemplate"]["Version"] for p in rig.log.params("UpdateAutoScalingGroup") if "LaunchTemplate" in p
    ]
    assert group_moves == ["1"]
    assert group(net)["LaunchTemplate"]["Version"] == "1"
    assert template(net)["DefaultVersionNumber"] == 1
    assert "pointed the group back at launch template version 1" in result["msg"]


def test_auto_rollback_successful_needs_no_refresh_back(net, rig, fake_clock):
    rig.no_active_refresh()
    refresh_id = rig.expect_start("2", auto_rollback=True)
    rig.poll(refresh_id, "RollbackSuccessful", 100, reason="Rolled back by AWS after a failed health check")

    result = run_module(base_args(net, image_id=AMI_V2))

    assert result.failed
    assert result["rolled_back"] is True
    assert result["instance_refresh"]["status"] == "RollbackSuccessful"
    assert result["instance_refresh"]["rollback_refresh"] is None
    assert rig.log.names.count("StartInstanceRefresh") == 1
    assert template(net)["DefaultVersionNumber"] == 1
    assert group(net)["LaunchTemplate"]["Version"] == "1"


def test_timeout_cancels_then_rolls_back(net, rig, fake_clock):
    rig.no_active_refresh()
    refresh_id = rig.expect_start("2", auto_rollback=True)
    for pct in (10, 20, 30, 40):  # polls at t=0, 10, 20, 30 -> deadline reached
        rig.poll(refresh_id, "InProgress", pct)
    rig.stub.add_response(
        "cancel_instance_refresh",
        {"InstanceRefreshId": refresh_id},
        {"AutoScalingGroupName": GROUP},
    )
    rig.poll(refresh_id, "Cancelling", 40)
    rig.poll(refresh_id, "Cancelled", 40, reason="Cancelled by user")
    back_id = rig.expect_start("1", auto_rollback=False)
    rig.poll(back_id, "InProgress", 50)
    rig.poll(back_id, "Successful", 100)

    result = run_module(base_args(net, image_id=AMI_V2, refresh_timeout=30, poll_interval=10))

    assert result.failed
    assert result["rolled_back"] is True
    assert result["instance_refresh"]["timed_out"] is True
    assert result["instance_refresh"]["status"] == "Cancelled"
    assert "did not finish within 30" in result["msg"]
    assert f"cancelled instance refresh {refresh_id}" in result["msg"]
    names = rig.log.names
    after_cancel = rig.log.calls[names.index("CancelInstanceRefresh") :]
    assert ("ModifyLaunchTemplate", {"LaunchTemplateId": rig.template_id, "DefaultVersion": "1"}) in after_cancel
    assert names.count("StartInstanceRefresh") == 2
    assert template(net)["DefaultVersionNumber"] == 1
    assert group(net)["LaunchTemplate"]["Version"] == "1"
    assert max(fake_clock.sleeps) <= 10
    assert sum(fake_clock.sleeps) == 30 + 10 + 10  # main wait, cancel settle, refresh back


def test_wait_false_returns_after_starting(net, rig, fake_clock):
    rig.no_active_refresh()
    refresh_id = rig.expect_start("2", auto_rollback=True)

    result = run_module(base_args(net, image_id=AMI_V2, wait=False))

    assert not result.failed, result.data
    assert result["instance_refresh"]["id"] == refresh_id
    assert fake_clock.sleeps == []
    assert "DescribeInstanceRefreshes" not in rig.log.names[rig.log.names.index("StartInstanceRefresh") :]
    assert template(net)["DefaultVersionNumber"] == 2
    assert group(net)["LaunchTemplate"]["Version"] == "1"  # AWS moves it when the refresh succeeds


def test_follows_a_running_refresh_towards_the_same_version(net, rig, fake_clock):
    run_module(base_args(net, image_id=AMI_V2, refresh=False))  # v2 exists and is the default
    net.asg.update_auto_scaling_group(
        AutoScalingGroupName=GROUP, LaunchTemplate={"LaunchTemplateId": rig.template_id, "Version": "1"}
    )
    rig.stub.add_response(
        "describe_instance_refreshes",
        {
            "InstanceRefreshes": [
                {
                    "InstanceRefreshId": "ir-running",
                    "AutoScalingGroupName": GROUP,
                    "Status": "InProgress",
                    "PercentageComplete": 50,
                    "DesiredConfiguration": {"LaunchTemplate": {"LaunchTemplateId": rig.template_id, "Version": "2"}},
                }
            ]
        },
        {"AutoScalingGroupName": GROUP, "MaxRecords": 5},
    )
    rig.poll("ir-running", "Successful", 100)

    result = run_module(base_args(net, image_id=AMI_V2))

    assert not result.failed, result.data
    assert result["instance_refresh"]["id"] == "ir-running"
    assert "StartInstanceRefresh" not in rig.log.names
    assert group(net)["LaunchTemplate"]["Version"] == "2"


def test_refuses_when_another_refresh_is_running(net, rig, fake_clock):
    rig.stub.add_response(
        "describe_instance_refreshes",
        {
            "InstanceRefreshes": [
                {"InstanceRefreshId": "ir-other", "AutoScalingGroupName": GROUP, "Status": "InProgress"}
            ]
        },
        {"AutoScalingGroupName": GROUP, "MaxRecords": 5},
    )
    result = run_module(base_args(net, image_id=AMI_V2))
    assert result.failed
    assert "ir-other" in result["msg"]
    assert "StartInstanceRefresh" not in rig.log.names


# ------------------------------------------- stubber: check mode makes no write call


def test_check_mode_makes_only_describe_calls(monkeypatch):
    args = dict(
        name=GROUP,
        launch_template_name=TEMPLATE,
        region=REGION,
        image_id=AMI_V2,
        instance_type="t3.micro",
        security_group_ids=["sg-0123456789abcdef0"],
        subnets=["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"],
        min_size=2,
        max_size=4,
        target_group_arns=["arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/new/0123456789abcdef"],
    )
    params = {**{k: v["default"] for k, v in asg_fleet.argument_spec().items() if "default" in v}, **args}
    current_data = fleet.build_launch_template_data({**params, "image_id": AMI_V1})
    current_data["MetadataOptions"]["State"] = "applied"  # read-only member AWS adds
    template_id = "lt-0123456789abcdef0"
    created = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)

    log = CallLog()
    ec2 = log.attach(boto3.client("ec2", region_name=REGION))
    asg = log.attach(boto3.client("autoscaling", region_name=REGION))
    ec2_stub, asg_stub = Stubber(ec2), Stubber(asg)
    ec2_stub.add_response(
        "describe_launch_templates",
        {
            "LaunchTemplates": [
                {
                    "LaunchTemplateId": template_id,
                    "LaunchTemplateName": TEMPLATE,
                    "DefaultVersionNumber": 3,
                    "LatestVersionNumber": 4,
                    "CreateTime": created,
                }
            ]
        },
        {"LaunchTemplateNames": [TEMPLATE]},
    )
    ec2_stub.add_response(
        "describe_launch_template_versions",
        {
            "LaunchTemplateVersions": [
                {
                    "LaunchTemplateId": template_id,
                    "LaunchTemplateName": TEMPLATE,
                    "VersionNumber": 3,
                    "DefaultVersion": True,
                    "LaunchTemplateData": current_data,
                }
            ]
        },
        {"LaunchTemplateId": template_id, "Versions": ["3"]},
    )
    asg_stub.add_response(
        "describe_auto_scaling_groups",
        {
            "AutoScalingGroups": [
                {
                    "AutoScalingGroupName": GROUP,
                    "LaunchTemplate": {"LaunchTemplateId": template_id, "LaunchTemplateName": TEMPLATE, "Version": "3"},
                    "MinSize": 2,
                    "MaxSize": 4,
                    "DesiredCapacity": 2,
                    "DefaultCooldown": 300,
                    "AvailabilityZones": ["us-east-1a", "us-east-1b"],
                    "HealthCheckType": "ELB",
                    "HealthCheckGracePeriod": 300,
                    "VPCZoneIdentifier": ",".join(args["subnets"]),
                    "CreatedTime": created,
                    "TargetGroupARNs": [],
                    "Tags": [],
                    "Instances": [
                        {
                            "InstanceId": f"i-000000000000000{n}",
                            "AvailabilityZone": "us-east-1a",
                            "LifecycleState": "InService",
                            "HealthStatus": "Healthy",
                            "ProtectedFromScaleIn": False,
                            "LaunchTemplate": {"LaunchTemplateId": template_id, "Version": "3"},
                        }
                        for n in (1, 2)
                    ],
                }
            ]
        },
        {"AutoScalingGroupNames": [GROUP]},
    )
    use_clients(monkeypatch, ec2=ec2, autoscaling=asg)

    with ec2_stub, asg_stub:
        result = run_module(args, check_mode=True)
        ec2_stub.assert_no_pending_responses()
        asg_stub.assert_no_pending_responses()

    assert not result.failed, result.data
    assert result["changed"] is True
    assert log.names == ["DescribeLaunchTemplates", "DescribeLaunchTemplateVersions", "DescribeAutoScalingGroups"]
    assert all(name.startswith("Describe") for name in log.names)
    assert result["launch_template"]["default_version"] == 5  # latest + 1
    assert result["instance_refresh"]["status"] == "Planned"
    before, after = result["diff"]["before"], result["diff"]["after"]
    assert before["launch_template"]["image_id"] == AMI_V1
    assert after["launch_template"]["image_id"] == AMI_V2
    assert before["auto_scaling_group"]["target_group_arns"] == []
    assert after["auto_scaling_group"]["target_group_arns"] == args["target_group_arns"]


# --------------------------------------------------------------- module_utils: pure


def _params(**overrides: Any) -> dict[str, Any]:
    params = {k: v["default"] for k, v in asg_fleet.argument_spec().items() if "default" in v}
    params.update(
        name=GROUP,
        launch_template_name=TEMPLATE,
        image_id=AMI_V1,
        instance_type="t3.micro",
        security_group_ids=["sg-b", "sg-a"],
        subnets=["subnet-a", "subnet-b"],
        min_size=2,
        max_size=4,
        user_data=USER_DATA,
        tags={"app": "shop"},
    )
    params.update(overrides)
    return params


def test_clean_params_pass_the_guards():
    assert fleet.check_guards(_params()) == []
    assert fleet.check_guards(_params(environment="staging", min_size=1)) == []
    assert fleet.check_guards(_params(min_size=1, allow_single_instance=True)) == []


def test_template_diff_ignores_read_only_members_and_order():
    desired = fleet.build_launch_template_data(_params())
    described = copy.deepcopy(desired)
    described["MetadataOptions"].update(State="applied", HttpProtocolIpv6="disabled", InstanceMetadataTags="disabled")
    described["NetworkInterfaces"][0]["Groups"] = ["sg-a", "sg-b"]
    described["TagSpecifications"].reverse()
    assert not fleet.launch_template_differs(desired, described)


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda d: d.update(KeyName="ops-key"), id="unmanaged-key-name"),
        pytest.param(lambda d: d["MetadataOptions"].update(HttpTokens="optional"), id="imdsv1"),
        pytest.param(lambda d: d["BlockDeviceMappings"][0]["Ebs"].update(Encrypted=False), id="unencrypted"),
        pytest.param(lambda d: d.update(UserData=fleet.encode_user_data("other")), id="user-data"),
        pytest.param(lambda d: d["NetworkInterfaces"][0].update(AssociatePublicIpAddress=True), id="public-ip"),
        pytest.param(lambda d: d.update(Monitoring={"Enabled": False}), id="basic-monitoring"),
        pytest.param(lambda d: d.pop("Monitoring"), id="monitoring-unset"),
    ],
)
def test_template_diff_detects_drift(mutate):
    desired = fleet.build_launch_template_data(_params())
    current = copy.deepcopy(desired)
    mutate(current)
    assert fleet.launch_template_differs(desired, current)


def test_detailed_monitoring_is_on_by_default_and_can_be_switched_off():
    assert fleet.build_launch_template_data(_params())["Monitoring"] == {"Enabled": True}
    basic = fleet.build_launch_template_data(_params(detailed_monitoring=False))
    assert basic["Monitoring"] == {"Enabled": False}
    # a version written before the option (no Monitoring) equals switched off, not on
    legacy = copy.deepcopy(basic)
    del legacy["Monitoring"]
    assert not fleet.launch_template_differs(basic, legacy)
    assert fleet.launch_template_differs(fleet.build_launch_template_data(_params()), legacy)


def test_switching_monitoring_off_makes_a_new_version_then_stays(net):
    assert not run_module(base_args(net)).failed
    off = run_module(base_args(net, detailed_monitoring=False, refresh=False))
    assert not off.failed, off.data
    assert off["changed"] is True
    assert template(net)["LatestVersionNumber"] == 2
    assert default_version(net)["LaunchTemplateData"]["Monitoring"] == {"Enabled": False}
    again = run_module(base_args(net, detailed_monitoring=False, refresh=False))
    assert again["changed"] is False and template(net)["LatestVersionNumber"] == 2


def test_wait_for_refresh_never_sleeps_past_the_deadline():
    clock = FakeClock()
    polls = iter([{"Status": "InProgress", "PercentageComplete": p} for p in (0, 10, 20, 30)])
    outcome = fleet.wait_for_refresh(
        lambda: next(polls), "ir-1", timeout=25, interval=10, clock=clock.clock, sleep=clock.sleep
    )
    assert outcome.timed_out
    assert outcome.state == fleet.FAILED
    assert clock.sleeps == [10, 10, 5]
    assert outcome.history == [0, 10, 20, 30]


def test_wait_for_refresh_treats_a_vanished_refresh_as_failed():
    clock = FakeClock()
    outcome = fleet.wait_for_refresh(lambda: None, "ir-9", timeout=60, interval=5, clock=clock.clock, sleep=clock.sleep)
    assert (outcome.status, outcome.state, clock.sleeps) == ("NotFound", fleet.FAILED, [])


@pytest.mark.parametrize(
    ("status", "percentage", "on_new", "refresh_back"),
    [
        ("Failed", 0, 0, False),  # nothing replaced yet
        ("Failed", 0, 1, True),  # replaced, not yet counted in the percentage
        ("Cancelled", 40, 0, True),
        ("RollbackSuccessful", 100, 0, False),  # AWS already did it
        ("RollbackFailed", 50, 2, True),
    ],
)
def test_plan_rollback(status, percentage, on_new, refresh_back):
    before = {"LaunchTemplateId": "lt-1", "Version": "3"}
    plan = fleet.plan_rollback(
        status=status,
        percentage=percentage,
        instances_on_new=on_new,
        group_template_now={"LaunchTemplateId": "lt-1", "Version": "3"},
        group_template_before=before,
        default_now=4,
        default_before=3,
    )
    assert plan.restore_group_template is None
    assert plan.reset_default_version == 3
    assert (plan.refresh_back_to == before) is refresh_back


def test_tag_and_target_group_changes():
    upsert, delete = fleet.tag_changes(
        GROUP,
        [
            {"Key": "app", "Value": "shop", "PropagateAtLaunch": False},
            {"Key": "old", "Value": "x", "PropagateAtLaunch": True},
        ],
        {"app": "shop"},
        purge=True,
    )
    assert [(t["Key"], t["PropagateAtLaunch"]) for t in upsert] == [("app", True)]
    assert [t["Key"] for t in delete] == ["old"]
    assert fleet.target_group_changes(["a", "b"], ["b", "c"]) == (["c"], ["a"])
    assert fleet.target_group_changes(["a"], None) == ([], [])
