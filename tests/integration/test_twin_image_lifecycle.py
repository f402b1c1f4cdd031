"""The twin's image lifecycle data plane, for real: podman hosts, HAProxy, the emulator.

* CreateImage of a twin instance commits its container into a local image (the
  twin's own mount points left out), the AMI is tagged with it and turns
  available; instances launched from it boot that image; deleting the image
  and its snapshot removes the local image.
* User data runs as cloud-init runs it (write_files early, runcmd late).
* An instance refresh replaces every host while a request loop on loopback
  sees no failure; one whose new hosts fail their health checks rolls back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gearlift.twin import images, podman
from gearlift.twin.dataplane.ec2 import AMI_IMAGE_REPO, LOCAL_IMAGE_TAG
from gearlift.twin.loadloop import LoadLoop
from gearlift.twin.twin import Twin

from .conftest import TEST_PREFIX, http_target_group_behind_alb

WEB_UNIT = """[Unit]
Description=test web server
After=network-online.target
[Service]
ExecStart=/usr/bin/python3 -m http.server 8080 --directory /srv/www
[Install]
WantedBy=multi-user.target
"""


def _user_data(version: str, healthy: bool = True) -> str:
    files = [{"path": "/etc/systemd/system/web.service", "content": WEB_UNIT}]
    files.append({"path": "/srv/www/version", "content": version, "permissions": "0644"})
    if healthy:
        files.append({"path": "/srv/www/health", "content": json.dumps({"status": "ok", "version": version})})
    config = {
        "write_files": files,
        "runcmd": ["systemctl daemon-reload", "systemctl enable --now web.service"],
    }
    return "#cloud-config\n" + json.dumps(config)


@pytest.fixture(scope="module")
def no_committed_images_left() -> Iterator[None]:
    """Torn down after the twin: its committed images went with it. Images of the prefix that were there
    before (e.g. golden images an earlier rehearsal with the same prefix kept for the next) are not its."""

    def images() -> set[str]:
        out = podman.run("images", "--filter", f"label={podman.LABEL}={TEST_PREFIX}", "--format", "{{.Id}}").stdout
        return set(out.split())

    before = images()
    yield
    left = sorted(images() - before)
    assert not left, f"committed images of the test twin are left: {left}"


@pytest.fixture(scope="module")
def running(no_committed_images_left: None, twin: Twin) -> Iterator[Twin]:
    twin.start_loop()
    try:
        yield twin
    finally:
        twin.stop_loop()


def _subnets(twin: Twin) -> list[dict[str, Any]]:
    subnets = twin.clients("ec2").describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])
    return sorted(subnets["Subnets"], key=lambda s: s["AvailabilityZone"])[:2]


def _container_ready(iid: str) -> bool:
    if not podman.container_exists(iid):
        return False
    state = podman.exec_(iid, "systemctl", "is-system-running", check=False, timeout=30).stdout.strip()
    return state in ("running", "degraded")


@pytest.mark.slow
def test_create_image_commits_the_container_and_instances_boot_from_it(running: Twin) -> None:
    twin = running
    ec2 = twin.clients("ec2")
    stock = ec2.describe_images(
        Owners=["099720109477"], Filters=[{"Name": "name", "Values": ["*ubuntu-noble-24.04-amd64-server-*"]}]
    )["Images"][0]["ImageId"]
    builder = ec2.run_instances(
        ImageId=stock,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.small",
        UserData=_user_data("builder"),
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 10, "Encrypted": True}}],
    )["Instances"][0]["InstanceId"]
    twin.wait_for(lambda: _container_ready(builder), 120, f"{builder} booted")
    # write_files ran before the network was online; runcmd started the server afterwards.
    fetch = "import urllib.request as u;print(u.urlopen('http://127.0.0.1:8080/version').read().decode())"
    served = podman.exec_(builder, "python3", "-c", fetch, check=False, timeout=60)
    assert served.stdout.strip() == "builder", served.stderr
    podman.exec_(builder, "sh", "-c", "echo baked > /etc/baked-marker")
    ec2.stop_instances(InstanceIds=[builder])
    ami = ec2.create_image(InstanceId=builder, Name="twin-commit-test")["ImageId"]
    assert ec2.describe_images(ImageIds=[ami])["Images"][0]["State"] == "pending"
    ec2.get_waiter("image_available").wait(ImageIds=[ami], WaiterConfig={"Delay": 2, "MaxAttempts": 120})
    image = ec2.describe_images(ImageIds=[ami])["Images"][0]
    local = {t["Key"]: t["Value"] for t in image["Tags"]}[LOCAL_IMAGE_TAG]
    assert local == f"{AMI_IMAGE_REPO}:{ami}" and podman.image_exists(local)
    assert image["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True
    # The twin's mount points are not in the image.
    listing = podman.run(
        "run", "--rm", *podman.RUN_FIX_ARGS, local, "sh", "-c",
        "ls -d /root/.aws /etc/gearlift-twin /etc/systemd/system-generators/gearlift-twin-cloud-init "
        "/etc/systemd/system.conf.d/50-gearlift-twin-aws.conf 2>/dev/null; cat /etc/baked-marker",
        check=False,
    )  # fmt: skip
    assert listing.stdout.split() == ["baked"], listing.stdout
    ec2.terminate_instances(InstanceIds=[builder])

    booted = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.small")["Instances"][0][
        "InstanceId"
    ]
    twin.wait_for(lambda: _container_ready(booted), 120, f"{booted} booted from {ami}")
    assert podman.exec_(booted, "cat", "/etc/baked-marker").stdout.strip() == "baked"
    assert podman.inspect(booted)["ImageName"].endswith(ami)
    # User data is per instance: the booted copy has none of its own, and the builder's did not run again.
    assert podman.exec_(booted, "test", "-e", "/var/lib/cloud/instances/" + booted, check=False).returncode != 0
    ec2.terminate_instances(InstanceIds=[booted])
    twin.wait_for(lambda: not podman.container_exists(booted), 60, f"{booted} removed")

    snapshot = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    ec2.deregister_image(ImageId=ami)
    ec2.delete_snapshot(SnapshotId=snapshot)
    twin.wait_for(lambda: not podman.image_exists(local), 60, f"{local} removed after its snapshot")


# --------------------------------------------------------- instance refresh


def _web_group(twin: Twin) -> dict[str, Any]:
    ec2, elbv2 = twin.clients("ec2"), twin.clients("elbv2")
    subnets = _subnets(twin)
    vpc = subnets[0]["VpcId"]
    tg = http_target_group_behind_alb(twin, "web", vpc, [s["SubnetId"] for s in subnets])
    elbv2.modify_target_group_attributes(
        TargetGroupArn=tg, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "4"}]
    )
    ami = ec2.register_image(Name="web-base", RootDeviceName="/dev/sda1", Architecture="x86_64")["ImageId"]
    ec2.create_tags(Resources=[ami], Tags=[{"Key": LOCAL_IMAGE_TAG, "Value": images.BASE_IMAGE}])
    template = ec2.create_launch_template(
        LaunchTemplateName="web-lt",
        LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.micro", "UserData": _b64(_user_data("v1"))},
    )["LaunchTemplate"]["LaunchTemplateId"]
    for data in (_user_data("v2"), _user_data("v3-broken", healthy=False)):
        version = {"ImageId": ami, "InstanceType": "t3.micro", "UserData": _b64(data)}
        ec2.create_launch_template_version(LaunchTemplateId=template, LaunchTemplateData=version)
    twin.clients("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="web",
        LaunchTemplate={"LaunchTemplateId": template, "Version": "1"},
        MinSize=2,
        MaxSize=4,
        DesiredCapacity=2,
        VPCZoneIdentifier=",".join(s["SubnetId"] for s in subnets),
        TargetGroupARNs=[tg],
        HealthCheckType="ELB",
        HealthCheckGracePeriod=60,
    )
    return {"tg": tg, "template": template}


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def _members(twin: Twin) -> dict[str, str]:
    group = twin.clients("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["web"])
    return {i["InstanceId"]: i["LaunchTemplate"]["Version"] for i in group["AutoScalingGroups"][0]["Instances"]}


def _healthy(twin: Twin, tg: str) -> set[str]:
    """Healthy as the twin's ALB health checks found and the emulator reports (none before the first report)."""
    if "web-alb" not in twin.endpoints.load_balancers:
        return set()
    found = twin.clients("elbv2").describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    return {d["Target"]["Id"] for d in found if d["TargetHealth"]["State"] == "healthy"} & twin.checker.states(
        "healthy"
    )


def _refresh(twin: Twin, template: str, version: str, **prefs: Any) -> dict[str, Any]:
    asg = twin.clients("autoscaling")
    refresh_id = asg.start_instance_refresh(
        AutoScalingGroupName="web",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateId": template, "Version": version}},
        Preferences={"MinHealthyPercentage": 50, "InstanceWarmup": 2, "SkipMatching": True, **prefs},
    )["InstanceRefreshId"]
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline:
        found = asg.describe_instance_refreshes(AutoScalingGroupName="web", InstanceRefreshIds=[refresh_id])
        refresh: dict[str, Any] = found["InstanceRefreshes"][0]
        if refresh["Status"] not in ("Pending", "InProgress", "RollbackInProgress", "Cancelling", "Baking"):
            return refresh
        time.sleep(2)
    pytest.fail(f"instance refresh {refresh_id} did not end within 420 s")


# In the lifecycle lane, not CI's slow lane: beside CI's second stream it saw HAProxy answer
# "No server is available" for about a second during the refresh (4 and 7 failed requests in two
# runs; 0 alone). A twin fault under investigation (docs/image-lifecycle.md).
@pytest.mark.lifecycle
def test_refresh_replaces_every_host_without_a_failed_request_and_rolls_back_a_bad_one(running: Twin) -> None:
    twin = running
    web = _web_group(twin)
    first = _members(twin)
    twin.wait_for(lambda: set(first) <= _healthy(twin, web["tg"]), 240, "both hosts healthy")
    port = twin.endpoints.load_balancers["web-alb"]["80"]
    zones = {
        i["Placement"]["AvailabilityZone"]
        for r in twin.clients("ec2").describe_instances(InstanceIds=list(first))["Reservations"]
        for i in r["Instances"]
    }
    assert len(zones) == 2, f"the group should spread over both zones: {zones}"

    with LoadLoop(f"http://127.0.0.1:{port}/health", interval=0.05) as load:
        done = _refresh(twin, web["template"], "2")
        time.sleep(3)
    result = load.result
    assert done["Status"] == "Successful", done
    now = _members(twin)
    assert not set(first) & set(now) and set(now.values()) == {"2"}, now
    assert result.sent > 100 and result.failed == 0, result.summary() + "\n" + "\n".join(result.failures)

    twin.wait_for(lambda: set(now) <= _healthy(twin, web["tg"]), 60, "v2 hosts healthy")
    with LoadLoop(f"http://127.0.0.1:{port}/health", interval=0.05) as load:
        bad = _refresh(twin, web["template"], "3", AutoRollback=True)
    result = load.result
    assert bad["Status"] == "RollbackSuccessful", bad
    assert set(_members(twin).values()) == {"2"}
    assert result.failed == 0, result.summary() + "\n" + "\n".join(result.failures)
    twin.clients("autoscaling").delete_auto_scaling_group(AutoScalingGroupName="web", ForceDelete=True)
