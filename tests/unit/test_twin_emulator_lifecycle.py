"""The twin's emulator answers the image lifecycle's APIs as AWS does.

One real emulator process (gearlift.twin.emulator.server, as the twin starts it) for
the module, reset between tests; no containers. The test plays the data plane
where one is needed: it reports target health through the emulator's private
channel (as gearlift.twin.healthcheck does) and marks committed images
available (as the EC2 reconciler does after `podman commit`).
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from gearlift.twin import channel
from gearlift.twin.awsclients import Clients
from gearlift.twin.controlplane import MotoControlPlane
from gearlift.twin.emulator.lifecycle import CANONICAL_OWNER

REGION = "us-east-1"


@pytest.fixture
def aws(emulator: MotoControlPlane) -> Clients:
    emulator.reset()
    return Clients(emulator.url, REGION)


def report(emulator: MotoControlPlane, what: str, body: dict[str, Any]) -> dict[str, Any]:
    return channel.send(emulator.url, what, body)


def error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response["Error"]["Code"])


# --------------------------------------------------------------------- images


@pytest.mark.parametrize(
    ("release", "arch", "newest"),
    [
        ("jammy-22.04", "x86_64", "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20261014"),
        ("jammy-22.04", "arm64", "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-arm64-server-20261014"),
        ("noble-24.04", "x86_64", "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20261021"),
        ("noble-24.04", "arm64", "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-20261021"),
    ],
)
def test_canonical_lts_images_are_found_by_owner_name_and_architecture(
    aws: Clients, release: str, arch: str, newest: str
) -> None:
    images = aws("ec2").describe_images(
        Owners=[CANONICAL_OWNER],
        Filters=[
            {"Name": "name", "Values": [f"ubuntu/images/*ubuntu-{release}-*-server-*"]},
            {"Name": "architecture", "Values": [arch]},
            {"Name": "state", "Values": ["available"]},
        ],
    )["Images"]
    assert images and {i["Architecture"] for i in images} == {arch}
    latest = max(images, key=lambda i: i["CreationDate"])
    assert latest["Name"] == newest
    assert latest["RootDeviceType"] == "ebs" and latest["OwnerId"] == CANONICAL_OWNER


def _builder(aws: Clients, encrypted: bool = True) -> tuple[str, str]:
    ec2 = aws("ec2")
    key = aws("kms").create_key(Description="image key")["KeyMetadata"]["Arn"]
    source = ec2.describe_images(Owners=[CANONICAL_OWNER])["Images"][0]["ImageId"]
    ebs: dict[str, Any] = {"VolumeSize": 12, "VolumeType": "gp3", "Encrypted": encrypted}
    if encrypted:
        ebs["KmsKeyId"] = key
    iid = ec2.run_instances(
        ImageId=source,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.small",
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": ebs}],
    )["Instances"][0]["InstanceId"]
    return iid, key


def test_create_image_is_pending_encrypted_like_the_root_volume_then_available(
    aws: Clients, emulator: MotoControlPlane
) -> None:
    ec2 = aws("ec2")
    iid, key = _builder(aws)
    ec2.stop_instances(InstanceIds=[iid])
    ami = ec2.create_image(
        InstanceId=iid,
        Name="golden-test-1",
        TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": "role", "Value": "golden"}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "role", "Value": "golden-root"}]},
        ],
    )["ImageId"]
    image = ec2.describe_images(ImageIds=[ami])["Images"][0]
    assert image["State"] == "pending"
    assert image["RootDeviceType"] == "ebs" and image["SourceInstanceId"] == iid
    ebs = image["BlockDeviceMappings"][0]["Ebs"]
    assert ebs["Encrypted"] is True and ebs["KmsKeyId"] == key
    assert (ebs["VolumeSize"], ebs["VolumeType"]) == (12, "gp3")
    snapshot = ec2.describe_snapshots(SnapshotIds=[ebs["SnapshotId"]])["Snapshots"][0]
    assert snapshot["State"] == "pending" and snapshot["Encrypted"] is True and snapshot["KmsKeyId"] == key
    assert {"Key": "role", "Value": "golden-root"} in snapshot["Tags"]
    with pytest.raises(botocore.exceptions.WaiterError):
        ec2.get_waiter("image_available").wait(ImageIds=[ami], WaiterConfig={"Delay": 1, "MaxAttempts": 2})

    assert report(emulator, "image-available", {"region": REGION, "image_id": ami}) == {"updated": True}
    ec2.get_waiter("image_available").wait(ImageIds=[ami], WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    assert ec2.describe_snapshots(SnapshotIds=[ebs["SnapshotId"]])["Snapshots"][0]["State"] == "completed"


def test_snapshot_of_a_registered_image_cannot_be_deleted_until_it_is_deregistered(aws: Clients) -> None:
    ec2 = aws("ec2")
    iid, _ = _builder(aws)
    ami = ec2.create_image(InstanceId=iid, Name="golden-test-2")["ImageId"]
    snapshot = ec2.describe_images(ImageIds=[ami])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        ec2.delete_snapshot(SnapshotId=snapshot)
    assert error_code(refused.value) == "InvalidSnapshot.InUse"
    ec2.deregister_image(ImageId=ami)
    ec2.delete_snapshot(SnapshotId=snapshot)
    assert not ec2.describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": [snapshot]}])["Snapshots"]


# ------------------------------------------------ Auto Scaling and target health


def _group(
    aws: Clients, desired: int = 2, grace: int = 2, delay: int = 1, name: str = "web", min_size: int | None = None
) -> dict[str, str]:
    ec2, elbv2 = aws("ec2"), aws("elbv2")
    subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    subnets = sorted(subnets, key=lambda s: s["AvailabilityZone"])[:2]
    vpc = subnets[0]["VpcId"]
    tg = elbv2.create_target_group(Name=f"{name}-tg", Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0][
        "TargetGroupArn"
    ]
    elbv2.modify_target_group_attributes(
        TargetGroupArn=tg, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(delay)}]
    )
    images = [i["ImageId"] for i in ec2.describe_images(Owners=[CANONICAL_OWNER])["Images"][:3]]
    # Every version carries user data, as the fleet's do (base64, as the API takes it).
    user_data = base64.b64encode(b"#cloud-config\nruncmd: [true]\n").decode()
    template = ec2.create_launch_template(
        LaunchTemplateName=f"{name}-lt",
        LaunchTemplateData={"ImageId": images[0], "InstanceType": "t3.micro", "UserData": user_data},
    )["LaunchTemplate"]["LaunchTemplateId"]
    for image in images[1:]:
        ec2.create_launch_template_version(
            LaunchTemplateId=template,
            LaunchTemplateData={"ImageId": image, "InstanceType": "t3.micro", "UserData": user_data},
        )
    aws("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateId": template, "Version": "1"},
        MinSize=desired if min_size is None else min_size,
        MaxSize=desired * 2,
        DesiredCapacity=desired,
        VPCZoneIdentifier=",".join(s["SubnetId"] for s in subnets),
        TargetGroupARNs=[tg],
        HealthCheckType="ELB",
        HealthCheckGracePeriod=grace,
    )
    return {"tg": tg, "template": template, "name": name}


def _instances(aws: Clients, name: str) -> list[dict[str, Any]]:
    group = aws("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    instances: list[dict[str, Any]] = group["Instances"]
    return instances


def _health(aws: Clients, tg: str) -> dict[str, str]:
    found = aws("elbv2").describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    return {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in found}


def test_group_spreads_over_its_zones_and_reports_each_instances_template_version(aws: Clients) -> None:
    group = _group(aws, desired=4)
    instances = _instances(aws, group["name"])
    zones = [i["AvailabilityZone"] for i in instances]
    assert sorted(zones.count(z) for z in set(zones)) == [2, 2], zones
    assert {i["LaunchTemplate"]["Version"] for i in instances} == {"1"}
    aws("autoscaling").update_auto_scaling_group(
        AutoScalingGroupName=group["name"], LaunchTemplate={"LaunchTemplateId": group["template"], "Version": "2"}
    )
    # Instances keep the version they were launched from; a new one gets the group's.
    victim = instances[0]["InstanceId"]
    aws("autoscaling").terminate_instance_in_auto_scaling_group(InstanceId=victim, ShouldDecrementDesiredCapacity=False)
    versions = {i["InstanceId"]: i["LaunchTemplate"]["Version"] for i in _instances(aws, group["name"])}
    assert victim not in versions and sorted(versions.values()) == ["1", "1", "1", "2"]


def test_target_health_comes_from_the_data_plane_and_deregistered_targets_drain(
    aws: Clients, emulator: MotoControlPlane
) -> None:
    group = _group(aws, desired=2, delay=2, min_size=1)
    tg = group["tg"]
    a, b = sorted(_health(aws, tg))
    # Before the data plane has seen the group, moto's default answer stands.
    assert set(_health(aws, tg).values()) == {"healthy"}
    report(emulator, "target-health", {"region": REGION, "target_groups": {tg: {a: "healthy"}}})
    assert _health(aws, tg) == {a: "healthy", b: "initial"}
    report(emulator, "target-health", {"region": REGION, "target_groups": {tg: {a: "healthy", b: "unhealthy"}}})
    detail = {
        d["Target"]["Id"]: d["TargetHealth"]
        for d in aws("elbv2").describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    }
    assert detail[b] == {
        "State": "unhealthy",
        "Reason": "Target.FailedHealthChecks",
        "Description": "Health checks failed",
    }
    # Standby: the group deregisters the instance, which drains for the delay, then is gone.
    aws("autoscaling").enter_standby(
        AutoScalingGroupName=group["name"], InstanceIds=[a], ShouldDecrementDesiredCapacity=True
    )
    assert _health(aws, tg)[a] == "draining"
    deadline = time.monotonic() + 10
    while a in _health(aws, tg) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert a not in _health(aws, tg), "the target never finished draining"
    # Back in service: registered again and initial until the health checks pass.
    aws("autoscaling").exit_standby(AutoScalingGroupName=group["name"], InstanceIds=[a])
    assert _health(aws, tg)[a] == "initial"
    assert len(_instances(aws, group["name"])) == 2


def test_enter_standby_refuses_to_take_the_group_below_its_minimum(aws: Clients) -> None:
    """AWS: with a decrement, the desired capacity after Standby must stay >= the minimum."""
    group = _group(aws, desired=2, name="atmin")  # min = desired = 2, as both shipped inventories run
    a, b = sorted(i["InstanceId"] for i in _instances(aws, group["name"]))
    with pytest.raises(botocore.exceptions.ClientError) as err:
        aws("autoscaling").enter_standby(
            AutoScalingGroupName=group["name"], InstanceIds=[a], ShouldDecrementDesiredCapacity=True
        )
    assert error_code(err.value) == "ValidationError"
    assert "min-size=2" in str(err.value) and "desired-capacity=2" in str(err.value)
    states = {i["InstanceId"]: i["LifecycleState"] for i in _instances(aws, group["name"])}
    assert states == {a: "InService", b: "InService"}, "a refused call changes nothing"
    # Raised by one first, the same call is accepted and the group keeps its minimum in service.
    aws("autoscaling").set_desired_capacity(AutoScalingGroupName=group["name"], DesiredCapacity=3)
    aws("autoscaling").enter_standby(
        AutoScalingGroupName=group["name"], InstanceIds=[a], ShouldDecrementDesiredCapacity=True
    )
    described = aws("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group["name"]])
    assert described["AutoScalingGroups"][0]["DesiredCapacity"] == 2
    # Only InService instances enter Standby.
    with pytest.raises(botocore.exceptions.ClientError) as again:
        aws("autoscaling").enter_standby(
            AutoScalingGroupName=group["name"], InstanceIds=[a], ShouldDecrementDesiredCapacity=False
        )
    assert error_code(again.value) == "ValidationError" and "InService" in str(again.value)


def test_default_vpc_routes_to_the_internet_and_default_groups_admit_their_members(aws: Clients) -> None:
    """AWS's default VPC has an internet gateway route; a default security group admits itself."""
    ec2 = aws("ec2")
    default = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    main = ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [default]}, {"Name": "association.main", "Values": ["true"]}]
    )["RouteTables"][0]
    routes = {r["DestinationCidrBlock"]: r.get("GatewayId", "") for r in main["Routes"]}
    assert routes["0.0.0.0/0"].startswith("igw-")
    gateways = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [default]}])
    assert [g["InternetGatewayId"] for g in gateways["InternetGateways"]] == [routes["0.0.0.0/0"]]
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    group = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]
    assert group["IpPermissions"] == [
        {
            "IpProtocol": "-1",
            "UserIdGroupPairs": [{"UserId": group["OwnerId"], "GroupId": group["GroupId"]}],
            "IpRanges": [],
            "Ipv6Ranges": [],
            "PrefixListIds": [],
        }
    ]
    assert [r["IpRanges"] for r in group["IpPermissionsEgress"]] == [[{"CidrIp": "0.0.0.0/0"}]]


def test_vpn_connections_keep_their_options_and_static_routes(aws: Clients) -> None:
    """AWS: StaticRoutesOnly is kept, CreateVpnConnectionRoute / DeleteVpnConnectionRoute exist."""
    ec2 = aws("ec2")
    cgw = ec2.create_customer_gateway(Type="ipsec.1", PublicIp="198.51.100.10", BgpAsn=65000)["CustomerGateway"]
    vgw = ec2.create_vpn_gateway(Type="ipsec.1")["VpnGateway"]["VpnGatewayId"]
    conn = ec2.create_vpn_connection(
        Type="ipsec.1",
        CustomerGatewayId=cgw["CustomerGatewayId"],
        VpnGatewayId=vgw,
        Options={"StaticRoutesOnly": True},
    )["VpnConnection"]
    assert conn["Options"]["StaticRoutesOnly"] is True and conn.get("Routes", []) == []
    ec2.create_vpn_connection_route(VpnConnectionId=conn["VpnConnectionId"], DestinationCidrBlock="192.168.50.0/24")
    ec2.create_vpn_connection_route(VpnConnectionId=conn["VpnConnectionId"], DestinationCidrBlock="192.168.50.0/24")
    described = ec2.describe_vpn_connections(VpnConnectionIds=[conn["VpnConnectionId"]])["VpnConnections"][0]
    assert described["Routes"] == [
        {"DestinationCidrBlock": "192.168.50.0/24", "Source": "Static", "State": "available"}
    ]
    ec2.delete_vpn_connection_route(VpnConnectionId=conn["VpnConnectionId"], DestinationCidrBlock="192.168.50.0/24")
    described = ec2.describe_vpn_connections(VpnConnectionIds=[conn["VpnConnectionId"]])["VpnConnections"][0]
    assert described.get("Routes", []) == []
    with pytest.raises(botocore.exceptions.ClientError) as err:
        ec2.create_vpn_connection_route(VpnConnectionId="vpn-00000000", DestinationCidrBlock="10.0.0.0/8")
    assert error_code(err.value) == "InvalidVpnConnectionID.NotFound"


def test_instances_from_a_template_get_its_interfaces_groups(aws: Clients) -> None:
    """AWS: the template's primary interface carries the groups (gearlift's launch template does)."""
    ec2 = aws("ec2")
    subnet = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]
    group = ec2.create_security_group(GroupName="app", Description="app", VpcId=subnet["VpcId"])["GroupId"]
    image = ec2.describe_images(Owners=[CANONICAL_OWNER])["Images"][0]["ImageId"]
    ec2.create_launch_template(
        LaunchTemplateName="nic-groups",
        LaunchTemplateData={
            "ImageId": image,
            "InstanceType": "t3.micro",
            "NetworkInterfaces": [{"DeviceIndex": 0, "Groups": [group], "AssociatePublicIpAddress": False}],
        },
    )
    direct = ec2.run_instances(
        MinCount=1, MaxCount=1, SubnetId=subnet["SubnetId"], LaunchTemplate={"LaunchTemplateName": "nic-groups"}
    )["Instances"][0]
    assert [g["GroupId"] for g in direct["SecurityGroups"]] == [group]
    aws("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="nic-groups",
        LaunchTemplate={"LaunchTemplateName": "nic-groups", "Version": "$Latest"},
        MinSize=1,
        MaxSize=1,
        DesiredCapacity=1,
        VPCZoneIdentifier=subnet["SubnetId"],
    )
    iid = _instances(aws, "nic-groups")[0]["InstanceId"]
    launched = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert [g["GroupId"] for g in launched["SecurityGroups"]] == [group]


# ----------------------------------------------------------- instance refresh


class DataPlane:
    """Reports target health every 0.2 s: targets launched from a 'bad' version fail their checks."""

    def __init__(self, aws: Clients, emulator: MotoControlPlane, group: dict[str, str], bad: set[str]) -> None:
        self.aws, self.emulator, self.group, self.bad = aws, emulator, group, bad
        self.stop = threading.Event()
        self.samples: list[dict[str, str]] = []
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        deadline = time.monotonic() + 300  # bounded, whatever the test does
        while not self.stop.is_set() and time.monotonic() < deadline:
            versions = {
                i["InstanceId"]: i["LaunchTemplate"]["Version"] for i in _instances(self.aws, self.group["name"])
            }
            health = _health(self.aws, self.group["tg"])
            states = {
                iid: ("unhealthy" if versions.get(iid) in self.bad else "healthy")
                for iid, state in health.items()
                if state != "draining"
            }
            report(self.emulator, "target-health", {"region": REGION, "target_groups": {self.group["tg"]: states}})
            self.samples.append(_health(self.aws, self.group["tg"]))
            self.stop.wait(0.2)

    def __enter__(self) -> DataPlane:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def _refresh(aws: Clients, name: str, refresh_id: str) -> dict[str, Any]:
    found = aws("autoscaling").describe_instance_refreshes(AutoScalingGroupName=name, InstanceRefreshIds=[refresh_id])
    refresh: dict[str, Any] = found["InstanceRefreshes"][0]
    return refresh


def _wait_refresh(aws: Clients, name: str, refresh_id: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        refresh = _refresh(aws, name, refresh_id)
        if refresh["Status"] not in ("Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"):
            return refresh
        time.sleep(0.5)
    pytest.fail(f"instance refresh {refresh_id} still running after {timeout} s")


def _start(aws: Clients, group: dict[str, str], version: str, **prefs: Any) -> str:
    preferences = {"MinHealthyPercentage": 50, "InstanceWarmup": 1, "SkipMatching": True, **prefs}
    refresh_id: str = aws("autoscaling").start_instance_refresh(
        AutoScalingGroupName=group["name"],
        Strategy="Rolling",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateId": group["template"], "Version": version}},
        Preferences=preferences,
    )["InstanceRefreshId"]
    return refresh_id


def test_refresh_replaces_every_instance_keeping_the_minimum_healthy(aws: Clients, emulator: MotoControlPlane) -> None:
    group = _group(aws, desired=4)
    before = {i["InstanceId"] for i in _instances(aws, group["name"])}
    with DataPlane(aws, emulator, group, bad=set()) as plane:
        time.sleep(0.5)
        refresh_id = _start(aws, group, "2", MinHealthyPercentage=75)
        with pytest.raises(botocore.exceptions.ClientError) as busy:
            _start(aws, group, "3")
        assert error_code(busy.value) == "InstanceRefreshInProgress"
        done = _wait_refresh(aws, group["name"], refresh_id)
    assert done["Status"] == "Successful" and done["PercentageComplete"] == 100 and done["InstancesToUpdate"] == 0
    assert done["DesiredConfiguration"]["LaunchTemplate"] == {"LaunchTemplateId": group["template"], "Version": "2"}
    assert done["Preferences"]["MinHealthyPercentage"] == 75 and done["EndTime"] >= done["StartTime"]
    after = _instances(aws, group["name"])
    assert not before & {i["InstanceId"] for i in after}, "an instance was not replaced"
    assert {i["LaunchTemplate"]["Version"] for i in after} == {"2"} and len(after) == 4
    group_now = aws("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group["name"]])
    assert group_now["AutoScalingGroups"][0]["LaunchTemplate"]["Version"] == "2"
    # Never fewer than 75 % of 4 = 3 healthy targets while it ran.
    healthy = [sum(1 for s in sample.values() if s == "healthy") for sample in plane.samples[3:]]
    assert healthy and min(healthy) >= 3, healthy


def test_refresh_above_100_percent_launches_first_and_keeps_full_capacity(
    aws: Clients, emulator: MotoControlPlane
) -> None:
    group = _group(aws, desired=2)
    with DataPlane(aws, emulator, group, bad=set()) as plane:
        time.sleep(0.5)
        refresh_id = _start(aws, group, "2", MinHealthyPercentage=100, MaxHealthyPercentage=150)
        done = _wait_refresh(aws, group["name"], refresh_id)
    assert done["Status"] == "Successful"
    healthy = [sum(1 for s in sample.values() if s == "healthy") for sample in plane.samples[3:]]
    assert min(healthy) >= 2 and max(len(s) for s in plane.samples) <= 3, plane.samples


def test_refresh_pauses_at_checkpoints_and_bakes_before_success(aws: Clients, emulator: MotoControlPlane) -> None:
    group = _group(aws, desired=2)
    seen: list[tuple[str, str]] = []
    with DataPlane(aws, emulator, group, bad=set()):
        time.sleep(0.5)
        refresh_id = _start(aws, group, "2", CheckpointPercentages=[50, 100], CheckpointDelay=3, BakeTime=3)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            refresh = _refresh(aws, group["name"], refresh_id)
            seen.append((refresh["Status"], refresh.get("StatusReason", "")))
            if refresh["Status"] not in ("Pending", "InProgress", "Baking"):
                break
            time.sleep(0.5)
    assert seen[-1][0] == "Successful", seen
    assert any("checkpoint (50%)" in reason for status, reason in seen if status == "InProgress"), seen
    assert "Baking" in [status for status, _ in seen], seen


def test_refresh_with_skip_matching_also_replaces_what_the_group_launched_from_its_old_version(
    aws: Clients, emulator: MotoControlPlane
) -> None:
    """A health-check replacement during the refresh comes from the group's own (old) version; with
    skip matching the refresh does not end before that instance is replaced too (the story's deploy
    once ended with two hosts on the old version: the group had replaced them mid-refresh)."""
    group = _group(aws, desired=2)
    asg = aws("autoscaling")
    with DataPlane(aws, emulator, group, bad=set()):
        time.sleep(0.5)
        refresh_id = _start(aws, group, "2", CheckpointPercentages=[50], CheckpointDelay=4)
        deadline = time.monotonic() + 60
        while "checkpoint (50%)" not in _refresh(aws, group["name"], refresh_id).get("StatusReason", ""):
            assert time.monotonic() < deadline, _refresh(aws, group["name"], refresh_id)
            time.sleep(0.3)
        old = [i["InstanceId"] for i in _instances(aws, group["name"]) if i["LaunchTemplate"]["Version"] == "1"]
        assert len(old) == 1, _instances(aws, group["name"])
        # The group replaces it (as its health check would) from its own configuration: version 1.
        asg.terminate_instance_in_auto_scaling_group(InstanceId=old[0], ShouldDecrementDesiredCapacity=False)
        late = [i for i in _instances(aws, group["name"]) if i["InstanceId"] != old[0]]
        assert sorted(i["LaunchTemplate"]["Version"] for i in late) == ["1", "2"], late
        done = _wait_refresh(aws, group["name"], refresh_id)
    assert done["Status"] == "Successful", done
    after = _instances(aws, group["name"])
    assert {i["LaunchTemplate"]["Version"] for i in after} == {"2"} and len(after) == 2, after


def test_refresh_whose_new_instances_fail_health_rolls_back_by_itself(aws: Clients, emulator: MotoControlPlane) -> None:
    group = _group(aws, desired=2, grace=2)
    with DataPlane(aws, emulator, group, bad={"2"}):
        time.sleep(0.5)
        refresh_id = _start(aws, group, "2", AutoRollback=True)
        done = _wait_refresh(aws, group["name"], refresh_id)
    assert done["Status"] == "RollbackSuccessful", done
    assert "failed its ELB health checks" in done["RollbackDetails"]["RollbackReason"]
    assert done["RollbackDetails"]["RollbackStartTime"] >= done["StartTime"]
    instances = _instances(aws, group["name"])
    assert {i["LaunchTemplate"]["Version"] for i in instances} == {"1"} and len(instances) == 2
    group_now = aws("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group["name"]])
    assert group_now["AutoScalingGroups"][0]["LaunchTemplate"]["Version"] == "1"


def test_refresh_without_auto_rollback_fails_and_leaves_the_group_on_its_version(
    aws: Clients, emulator: MotoControlPlane
) -> None:
    group = _group(aws, desired=2, grace=1)
    with DataPlane(aws, emulator, group, bad={"2"}):
        time.sleep(0.5)
        refresh_id = _start(aws, group, "2", AutoRollback=False)
        done = _wait_refresh(aws, group["name"], refresh_id)
    assert done["Status"] == "Failed" and "ELB health checks" in done["StatusReason"]
    assert "RollbackDetails" not in done
    group_now = aws("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group["name"]])
    assert group_now["AutoScalingGroups"][0]["LaunchTemplate"]["Version"] == "1"


def test_cancel_and_rollback_requests_answer_as_aws(aws: Clients, emulator: MotoControlPlane) -> None:
    group = _group(aws, desired=2, delay=30)
    asg = aws("autoscaling")
    for call in (asg.cancel_instance_refresh, asg.rollback_instance_refresh):
        with pytest.raises(botocore.exceptions.ClientError) as none:
            call(AutoScalingGroupName=group["name"])
        assert error_code(none.value) == "ActiveInstanceRefreshNotFound"
    with pytest.raises(botocore.exceptions.ClientError) as invalid:
        _start(aws, group, "2", MinHealthyPercentage=100, MaxHealthyPercentage=100)
    assert error_code(invalid.value) == "ValidationError"
    # Without a desired configuration there is nothing to roll back to.
    plain = asg.start_instance_refresh(AutoScalingGroupName=group["name"])["InstanceRefreshId"]
    with pytest.raises(botocore.exceptions.ClientError) as irreversible:
        asg.rollback_instance_refresh(AutoScalingGroupName=group["name"])
    assert error_code(irreversible.value) == "IrreversibleInstanceRefresh"
    assert asg.cancel_instance_refresh(AutoScalingGroupName=group["name"])["InstanceRefreshId"] == plain
    assert _wait_refresh(aws, group["name"], plain)["Status"] == "Cancelled"
    # A rollback on request: back to version 1 (the old instance drains 30 s first, so it is mid-way).
    with DataPlane(aws, emulator, group, bad=set()):
        refresh_id = _start(aws, group, "2")
        back = asg.rollback_instance_refresh(AutoScalingGroupName=group["name"])["InstanceRefreshId"]
        assert back == refresh_id
        assert _refresh(aws, group["name"], refresh_id)["Status"] == "RollbackInProgress"
        done = _wait_refresh(aws, group["name"], refresh_id)
    assert done["Status"] == "RollbackSuccessful"
    assert {i["LaunchTemplate"]["Version"] for i in _instances(aws, group["name"])} == {"1"}
    listed = asg.describe_instance_refreshes(AutoScalingGroupName=group["name"], MaxRecords=1)
    assert len(listed["InstanceRefreshes"]) == 1 and listed["InstanceRefreshes"][0]["InstanceRefreshId"] == refresh_id
    assert "NextToken" in listed


# ------------------------------------------ asg_fleet against the emulator


def _fleet_args(group: dict[str, str], aws: Clients, image: str, **extra: Any) -> dict[str, Any]:
    ec2 = aws("ec2")
    subnets = sorted(
        ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"],
        key=lambda s: s["AvailabilityZone"],
    )[:2]
    sg = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]
    return {
        "name": group["name"],
        "launch_template_name": group["name"],
        "environment": "test",
        "image_id": image,
        "instance_type": "t3.micro",
        "security_group_ids": [sg["GroupId"]],
        "subnets": [s["SubnetId"] for s in subnets],
        "min_size": 2,
        "max_size": 4,
        "target_group_arns": [group["tg"]],
        "health_check_grace_period": 2,
        "instance_warmup": 1,
        "min_healthy_percentage": 50,
        "refresh_timeout": 120,
        "poll_interval": 1,
        "region": REGION,
        **extra,
    }


@pytest.fixture
def fleet_module(aws: Clients, emulator: MotoControlPlane, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    from tests.unit.module_harness import dummy_aws_env, run_main

    collections = str(Path(__file__).resolve().parents[2] / ".collections")
    monkeypatch.syspath_prepend(collections)
    from ansible_collections.gearlift.platform.plugins.modules import asg_fleet

    dummy_aws_env(monkeypatch, REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.url)

    def run(args: dict[str, Any]) -> Any:
        return run_main(asg_fleet.main, args)

    return run


def _roll_fleet(aws: Clients, emulator: MotoControlPlane, fleet_module: Callable[..., Any], bad: set[str]) -> Any:
    """asg_fleet creates the group on one Canonical image, then rolls it to another (versions in `bad` fail health)."""
    images = [i["ImageId"] for i in aws("ec2").describe_images(Owners=[CANONICAL_OWNER])["Images"][:2]]
    group = {"name": "fleet", "tg": _group(aws, desired=2, name="tgonly")["tg"]}
    created = fleet_module(_fleet_args(group, aws, images[0]))
    assert not created.failed, created.data
    group["template"] = created["launch_template"]["id"]
    with DataPlane(aws, emulator, group, bad=bad):
        return fleet_module(_fleet_args(group, aws, images[1]))


def test_asg_fleet_refresh_waits_for_the_emulator_and_succeeds(
    aws: Clients, emulator: MotoControlPlane, fleet_module: Callable[..., Any]
) -> None:
    rolled = _roll_fleet(aws, emulator, fleet_module, bad=set())
    assert not rolled.failed, rolled.data.get("msg")
    refresh = rolled["instance_refresh"]
    assert refresh["status"] == "Successful" and refresh["rolled_back"] is False
    assert refresh["percentage_history"][-1] == 100 and len(refresh["percentage_history"]) > 1
    assert {i["launch_template_version"] for i in rolled["auto_scaling_group"]["instances"]} == {"2"}


def test_asg_fleet_rolls_back_when_the_new_instances_fail_health(
    aws: Clients, emulator: MotoControlPlane, fleet_module: Callable[..., Any]
) -> None:
    rolled = _roll_fleet(aws, emulator, fleet_module, bad={"2"})
    assert rolled.failed and rolled["rolled_back"] is True, rolled.data
    assert "RollbackSuccessful" in rolled["msg"] or "Rolled back" in rolled["msg"]
    assert rolled["launch_template"]["default_version"] == 1
    instances = _instances(aws, "fleet")
    assert {i["LaunchTemplate"]["Version"] for i in instances} == {"1"} and len(instances) == 2
    group_now = aws("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["fleet"])["AutoScalingGroups"]
    assert group_now[0]["LaunchTemplate"]["Version"] == "1"


# --------------------------------------------- SSM Patch Manager (managed path)


def _patching_args(**window: Any) -> dict[str, Any]:
    return {
        "baseline": {
            "name": "shop-test-ubuntu",
            "operating_system": "UBUNTU",
            "description": "security updates",
            "approval_rules": [
                {
                    "patch_filters": {"PRIORITY": ["Required", "Important"], "SECTION": ["*"]},
                    "compliance_level": "CRITICAL",
                },
                {
                    "patch_filters": {"PRIORITY": ["Standard", "Optional", "Extra"], "SECTION": ["*"]},
                    "compliance_level": "HIGH",
                },
            ],
        },
        "patch_group": "shop-test",
        "window": {
            "name": "shop-test-patching",
            "schedule": "cron(0 3 ? * SUN *)",
            "duration": 3,
            "cutoff": 1,
            **window,
        },
        "tags": {"gearlift:project": "shop"},
        "region": REGION,
    }


@pytest.fixture
def patching_module(aws: Clients, emulator: MotoControlPlane, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    from tests.unit.module_harness import dummy_aws_env, run_main

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / ".collections"))
    from ansible_collections.gearlift.platform.plugins.modules import ssm_patching

    dummy_aws_env(monkeypatch, REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.url)

    def run(args: dict[str, Any], check_mode: bool = False) -> Any:
        return run_main(ssm_patching.main, args, check_mode=check_mode)

    return run


def test_patching_creates_then_leaves_then_repairs_the_managed_path(
    aws: Clients, patching_module: Callable[..., Any]
) -> None:
    ssm = aws("ssm")
    planned = patching_module(_patching_args(), check_mode=True)
    assert not planned.failed and planned["changed"] and planned["baseline_id"] is None
    assert (
        ssm.describe_patch_baselines(Filters=[{"Key": "NAME_PREFIX", "Values": ["shop-test-ubuntu"]}])[
            "BaselineIdentities"
        ]
        == []
    ), "check mode created the baseline"

    created = patching_module(_patching_args())
    assert not created.failed, created.data
    baseline = ssm.get_patch_baseline(BaselineId=created["baseline_id"])
    rules = baseline["ApprovalRules"]["PatchRules"]
    assert [r["ComplianceLevel"] for r in rules] == ["CRITICAL", "HIGH"]
    assert all("ApproveAfterDays" not in r for r in rules) and baseline["OperatingSystem"] == "UBUNTU"
    group = ssm.get_patch_baseline_for_patch_group(PatchGroup="shop-test", OperatingSystem="UBUNTU")
    assert group["BaselineId"] == created["baseline_id"]
    window = ssm.get_maintenance_window(WindowId=created["window_id"])
    assert (window["Schedule"], window["Duration"], window["Cutoff"]) == ("cron(0 3 ? * SUN *)", 3, 1)
    targets = ssm.describe_maintenance_window_targets(WindowId=created["window_id"])["Targets"]
    assert [t["Targets"] for t in targets] == [[{"Key": "tag:Patch Group", "Values": ["shop-test"]}]]
    task = ssm.get_maintenance_window_task(WindowId=created["window_id"], WindowTaskId=created["window_task_id"])
    assert task["TaskArn"] == "AWS-RunPatchBaseline" and (task["MaxConcurrency"], task["MaxErrors"]) == ("1", "0")
    assert task["TaskInvocationParameters"]["RunCommand"]["Parameters"]["Operation"] == ["Install"]
    # The window cannot drain a host: by default it installs without a reboot.
    assert task["TaskInvocationParameters"]["RunCommand"]["Parameters"]["RebootOption"] == ["NoReboot"]

    again = patching_module(_patching_args())
    assert not again.failed and not again["changed"], again["changes"]

    # Drift is repaired: the window's schedule and the baseline's rules are put back.
    ssm.update_maintenance_window(WindowId=created["window_id"], Schedule="cron(0 3 ? * MON *)")
    ssm.update_patch_baseline(BaselineId=created["baseline_id"], ApprovalRules={"PatchRules": rules[:1]})
    repaired = patching_module(_patching_args(max_errors="1"))
    assert repaired["changed"] and len(repaired["changes"]) == 3, repaired["changes"]
    assert ssm.get_maintenance_window(WindowId=created["window_id"])["Schedule"] == "cron(0 3 ? * SUN *)"
    assert len(ssm.get_patch_baseline(BaselineId=created["baseline_id"])["ApprovalRules"]["PatchRules"]) == 2
    tasks = ssm.describe_maintenance_window_tasks(WindowId=created["window_id"])["Tasks"]
    assert len(tasks) == 1 and tasks[0]["MaxErrors"] == "1"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"approve_after_days": 7}, "not supported for UBUNTU"),
        ({"schedule": "rate(14 days)"}, "more than max_days_between_runs"),
        ({"schedule": "every sunday"}, "must be cron(...) or rate(...)"),
        ({"cutoff": 3}, "shorter than the duration"),
        ({"max_concurrency": "100%"}, "patches more than one host at a time"),
        ({"max_concurrency": "2"}, "window.allow_unsafe_concurrency"),
        ({"max_concurrency": "0"}, "must be a positive number or a percentage"),
        ({"max_concurrency": "150%", "allow_unsafe_concurrency": True}, "must be a positive number or a percentage"),
        ({"max_errors": "many"}, "window.max_errors must be a number"),
        ({"reboot_option": "RebootIfNeeded"}, "reboots in-service hosts without a drain"),
    ],
)
def test_patching_refuses_bad_settings_before_any_call(
    aws: Clients, patching_module: Callable[..., Any], change: dict[str, Any], words: str
) -> None:
    args = _patching_args()
    if "approve_after_days" in change:
        args["baseline"]["approval_rules"][0]["approve_after_days"] = change["approve_after_days"]
    else:
        args["window"].update(change)
    result = patching_module(args)
    assert result.failed and words in result["msg"]
    assert aws("ssm").describe_maintenance_windows()["WindowIdentities"] == []
