"""The target group's stickiness (edge.yml's settings) against the emulator: created, then unchanged.

AWS reports the stickiness defaults of a new HTTP target group; community.aws.elb_target_group
compares against them (a KeyError when they are missing, as moto had them until
``fidelity._target_group_default_attributes``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import boto3

from gearlift.twin.controlplane import MotoControlPlane

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"

PLAY = """- name: Target group with the ALB cookie, as playbooks/edge.yml sets it
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Target group
      community.aws.elb_target_group:
        name: shop-test-app
        protocol: HTTP
        port: 80
        vpc_id: {vpc}
        health_check_protocol: http
        health_check_path: /health
        stickiness_enabled: true
        stickiness_type: lb_cookie
        stickiness_lb_cookie_duration: 3600
        region: {region}
        state: present
"""


def _play(path: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            str(path),
        ],
        cwd=REPO,
        env={**os.environ, **env, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1500:]
    recap = re.search(r"localhost\s+: ok=\d+\s+changed=(\d+)", proc.stdout)
    assert recap, proc.stdout[-1500:]
    return recap[1]


def test_a_sticky_target_group_is_created_then_left_unchanged(emulator: MotoControlPlane, tmp_path: Path) -> None:
    emulator.reset()
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=emulator.url, **keys)
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    env = {
        "AWS_ENDPOINT_URL": emulator.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }
    playbook = tmp_path / "tg.yml"
    playbook.write_text(PLAY.format(vpc=vpc, region=REGION), encoding="utf-8")
    assert _play(playbook, env) == "1"
    assert _play(playbook, env) == "0"
    elbv2 = boto3.client("elbv2", region_name=REGION, endpoint_url=emulator.url, **keys)
    arn = elbv2.describe_target_groups(Names=["shop-test-app"])["TargetGroups"][0]["TargetGroupArn"]
    attributes = {
        a["Key"]: a["Value"] for a in elbv2.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]
    }
    assert attributes["stickiness.enabled"] == "true"
    assert attributes["stickiness.type"] == "lb_cookie"
    assert attributes["stickiness.lb_cookie.duration_seconds"] == "3600"
