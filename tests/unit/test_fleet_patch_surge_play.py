"""roles/fleet_patch's plan and settle steps, run by ansible-playbook against the twin's emulator process.

The group runs at min = desired = 2, as both shipped inventories do. The plan adds a surge of one host
(gearlift.platform.asg_surge) and waits until it is a healthy target; a stand-in for the rollout puts each planned
host in Standby with host.yml's own arguments (a decrement, refused by AWS below the minimum) and back; the settle
drains and terminates the surge. A thread plays the data plane: every registered target reports healthy. The group is
sampled throughout: never fewer than 2 instances in service.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from gearlift.twin.awsclients import Clients
from gearlift.twin.controlplane import MotoControlPlane
from gearlift.twin.emulator.lifecycle import CANONICAL_OWNER
from tests.unit.module_harness import REPO

REGION = "us-east-1"
NAME = "shop"


@pytest.fixture
def aws(emulator: MotoControlPlane) -> Clients:
    emulator.reset()
    return Clients(emulator.url, REGION)


def _group(aws: Clients) -> dict[str, Any]:
    found: dict[str, Any] = aws("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[NAME])[
        "AutoScalingGroups"
    ][0]
    return found


def _fleet(aws: Clients) -> tuple[str, list[dict[str, str]]]:
    ec2, elbv2 = aws("ec2"), aws("elbv2")
    subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    subnets = sorted(subnets, key=lambda s: s["AvailabilityZone"])[:2]
    tg: str = elbv2.create_target_group(Name=f"{NAME}-app", Protocol="HTTP", Port=80, VpcId=subnets[0]["VpcId"])[
        "TargetGroups"
    ][0]["TargetGroupArn"]
    elbv2.modify_target_group_attributes(
        TargetGroupArn=tg, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "1"}]
    )
    image = ec2.describe_images(Owners=[CANONICAL_OWNER])["Images"][0]["ImageId"]
    user_data = base64.b64encode(b"#cloud-config\nruncmd: [true]\n").decode()
    template = ec2.create_launch_template(
        LaunchTemplateName=f"{NAME}-lt",
        LaunchTemplateData={"ImageId": image, "InstanceType": "t3.micro", "UserData": user_data},
    )["LaunchTemplate"]["LaunchTemplateId"]
    aws("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=NAME,
        LaunchTemplate={"LaunchTemplateId": template, "Version": "1"},
        MinSize=2,
        MaxSize=4,
        DesiredCapacity=2,
        VPCZoneIdentifier=",".join(s["SubnetId"] for s in subnets),
        TargetGroupARNs=[tg],
    )
    hosts = [
        {"id": i["InstanceId"], "zone": i["AvailabilityZone"]}
        for i in sorted(_group(aws)["Instances"], key=lambda i: i["InstanceId"])
    ]
    return tg, hosts


class DataPlane:
    """Every 0.2 s (bounded): registered targets report healthy (draining ones are left alone); the group sampled."""

    def __init__(self, aws: Clients, emulator: MotoControlPlane, tg: str) -> None:
        self.aws, self.emulator, self.tg = aws, emulator, tg
        self.samples: list[tuple[int, int]] = []
        self.suspended: set[str] = set()  # every scaling process seen suspended during the play
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        deadline = time.monotonic() + 240
        while not self.stop.is_set() and time.monotonic() < deadline:
            found = self.aws("elbv2").describe_target_health(TargetGroupArn=self.tg)["TargetHealthDescriptions"]
            states = {
                d["Target"]["Id"]: "healthy" for d in found if d["TargetHealth"]["State"] not in ("draining", "unused")
            }
            body = json.dumps({"region": REGION, "target_groups": {self.tg: states}}).encode()
            request = urllib.request.Request(f"{self.emulator.url}/_gearlift/target-health", data=body, method="POST")
            with urllib.request.urlopen(request, timeout=10) as resp:
                resp.read()
            group = _group(self.aws)
            in_service = sum(1 for i in group["Instances"] if i["LifecycleState"] == "InService")
            self.samples.append((in_service, group["DesiredCapacity"]))
            self.suspended |= {p["ProcessName"] for p in group.get("SuspendedProcesses") or []}
            self.stop.wait(0.2)

    def __enter__(self) -> DataPlane:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=15)


PLAYBOOK = """\
- name: Plan
  hosts: controller
  gather_facts: false
  tasks:
    - name: Plan | the run's names
      ansible.builtin.set_fact:
        fleet_patch_region: "{{ region }}"
        fleet_patch_group_name: "{{ group }}"
        fleet_patch_target_group_arn: "{{ tg }}"
        fleet_patch_run: "{{ run }}"
    - name: Plan | plan
      ansible.builtin.include_role:
        name: gearlift.platform.fleet_patch
        tasks_from: plan

- name: Rollout stand-in (host.yml's Standby and back, from the controller)
  hosts: fleet_patch_batch
  gather_facts: false
  serial: 1
  tasks:
    - name: Rollout | Standby with a decrement, as host.yml does
      amazon.aws.autoscaling_instance:
        group_name: "{{ group }}"
        instance_ids: ["{{ ec2_instance_id }}"]
        state: standby
        decrement_desired_capacity: true
        wait: true
        wait_timeout: 30
        region: "{{ region }}"
      delegate_to: localhost
    - name: Rollout | back in service
      amazon.aws.autoscaling_instance:
        group_name: "{{ group }}"
        instance_ids: ["{{ ec2_instance_id }}"]
        state: present
        wait: true
        wait_timeout: 30
        region: "{{ region }}"
      delegate_to: localhost

- name: Settle and report
  hosts: controller
  gather_facts: false
  tasks:
    - name: Settle
      ansible.builtin.include_role:
        name: gearlift.platform.fleet_patch
        tasks_from: settle
    - name: Report
      ansible.builtin.include_role:
        name: gearlift.platform.fleet_patch
        tasks_from: report
"""


def _play(
    emulator: MotoControlPlane, tmp: Path, tg: str, hosts: list[dict[str, str]]
) -> subprocess.CompletedProcess[str]:
    inventory = {
        "all": {
            "children": {
                "controller": {
                    "hosts": {
                        "localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
                    }
                },
                "asg_shop": {
                    "hosts": {
                        h["id"]: {
                            "ec2_instance_id": h["id"],
                            "ec2_availability_zone": h["zone"],
                            "ansible_connection": "local",
                        }
                        for h in hosts
                    }
                },
            }
        }
    }
    (tmp / "inventory.json").write_text(json.dumps(inventory))
    (tmp / "play.yml").write_text(textwrap.dedent(PLAYBOOK))
    extra = {
        "region": REGION,
        "group": NAME,
        "tg": tg,
        "run": "unit-1",
        "fleet_patch_hosts": "asg_shop",
        "fleet_patch_report_dir": str(tmp / "reports"),
        "fleet_patch_target_timeout": 60,
        "fleet_patch_surge_timeout": 60,
    }
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": emulator.url,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_FORCE_COLOR": "0",
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
    }
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(tmp / "inventory.json"),
            str(tmp / "play.yml"),
            "-e",
            json.dumps(extra),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )


def test_plan_surges_a_group_at_its_minimum_and_settle_takes_it_back(
    aws: Clients, emulator: MotoControlPlane, tmp_path: Path
) -> None:
    tg, hosts = _fleet(aws)
    with DataPlane(aws, emulator, tg) as plane:
        deadline = time.monotonic() + 20
        while len(plane.samples) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        ran = _play(emulator, tmp_path, tg, hosts)
    assert ran.returncode == 0, ran.stdout[-6000:] + ran.stderr[-3000:]
    report = json.loads((tmp_path / "reports" / "unit-1.json").read_text())
    surge = report["surge"]
    assert surge["count"] == 1 and surge["status"] == "settled" and surge["terminated"] == surge["instances"], surge
    assert report["capacity"] == {"min": 2, "max": 4, "desired": 2, "recorded_surge": []}
    assert sorted(report["planned"]) == sorted(h["id"] for h in hosts), "the surge host was put in a batch"
    group = _group(aws)
    assert sorted(i["InstanceId"] for i in group["Instances"]) == sorted(h["id"] for h in hosts)
    assert group["DesiredCapacity"] == 2 and "gearlift:surge" not in {t["Key"] for t in group["Tags"]}
    assert len(plane.samples) > 5 and min(s[0] for s in plane.samples) >= 2, plane.samples
    assert max(s[1] for s in plane.samples) == 3, plane.samples
    # The group's own scaling was suspended during the rollout and is resumed after it, record removed.
    assert plane.suspended == {"AlarmNotification", "ScheduledActions", "AZRebalance"}, plane.suspended
    assert not group.get("SuspendedProcesses") and "gearlift:suspended-processes" not in {
        t["Key"] for t in group["Tags"]
    }
    assert "Surge: 1 host(s)" in (tmp_path / "reports" / "unit-1.md").read_text()


def test_a_batch_above_max_minus_min_is_refused_before_any_change(
    aws: Clients, emulator: MotoControlPlane, tmp_path: Path
) -> None:
    tg, hosts = _fleet(aws)
    aws("autoscaling").update_auto_scaling_group(AutoScalingGroupName=NAME, MaxSize=2)
    with DataPlane(aws, emulator, tg):
        ran = _play(emulator, tmp_path, tg, [{**h, "zone": "us-east-1a"} for h in hosts])  # one zone: a batch of 2
    assert ran.returncode != 0
    assert "Unsafe concurrency" in ran.stdout and "at most max - min = 0" in ran.stdout, ran.stdout[-4000:]
    group = _group(aws)
    assert group["DesiredCapacity"] == 2 and {i["LifecycleState"] for i in group["Instances"]} == {"InService"}
    assert "gearlift:surge" not in {t["Key"] for t in group["Tags"]}
    assert not group.get("SuspendedProcesses")  # refused before the suspension too
