"""The shop's name on the twin (issue 15 item 5): playbooks/dns.yml against the twin's emulator, and a
twin host resolving the name through the twin's DNS - the legacy front door before the cutover, the
ALB after it, the legacy front door again after the rollback. Names outside the Route 53 zones
(the network's own, like the anchor container) still resolve on the hosts (forwarded)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gearlift.twin import images, podman
from gearlift.twin.twin import Twin

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
NAME = "shop.example.com"
ONPREM = "192.168.50.20"
PROJECT = "dnst"
ALB = f"{PROJECT}-rehearsal"


@pytest.fixture(scope="module")
def shop(twin: Twin, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    images.ensure_apphost_image()
    ec2, elbv2 = twin.clients("ec2"), twin.clients("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    public = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.40.{i}.0/24", AvailabilityZone=z)["Subnet"]["SubnetId"]
        for i, z in enumerate(zones)
    ]
    host = ec2.run_instances(
        ImageId=twin.seeded["GEARLIFT_AMI_ID"], MinCount=1, MaxCount=1, InstanceType="t3.micro", SubnetId=public[0]
    )["Instances"][0]["InstanceId"]
    lb = elbv2.create_load_balancer(Name=ALB, Subnets=public, Type="application")["LoadBalancers"][0]
    elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200"}}],
    )
    twin.wait_for(lambda: host in twin.addresses(), 180, "the twin host")
    twin.wait_for(lambda: ALB in twin.endpoints.load_balancers, 60, "the ALB")
    tmp = tmp_path_factory.mktemp("dns-play")
    (tmp / "vars.json").write_text(
        json.dumps(
            {
                "gearlift_environment": "rehearsal",
                "gearlift_project": PROJECT,
                "gearlift_region": twin.config.region,
                "gearlift_vpc_cidr": "10.40.0.0/16",
                "gearlift_certificate_arn": twin.seeded["GEARLIFT_CERTIFICATE_ARN"],
                "gearlift_dns_zone": "example.com",
                "gearlift_shop_domain": NAME,
                "gearlift_dns_onprem_address": ONPREM,
                "gearlift_dns_canary_weight": 100,
            }
        )
    )
    assert twin.alb is not None
    return {"host": host, "vars": tmp / "vars.json", "alb_address": twin.alb.sources[ALB]}


def play(twin: Twin, shop: dict[str, Any], *tags: str) -> None:
    env = {**os.environ, **twin.aws_env, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    args = ["--tags", ",".join(tags)] if tags else []
    proc = subprocess.run(
        [
            str(PLAYBOOK),
            "-i",
            str(REPO / "inventories" / "rehearsal" / "hosts.yml"),
            "-e",
            f"@{shop['vars']}",
            str(REPO / "playbooks" / "dns.yml"),
            *args,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def resolves_to(twin: Twin, host: str, expected: str) -> Callable[[], bool]:
    """The host's own resolver (glibc, /etc/resolv.conf) answers ``expected`` for the shop's name."""

    def check() -> bool:
        out = podman.exec_(host, "getent", "ahostsv4", NAME, check=False, timeout=30)
        return out.returncode == 0 and out.stdout.split()[:1] == [expected]

    return check


def test_a_twin_host_follows_the_shops_name_through_cutover_and_rollback(twin: Twin, shop: dict[str, Any]) -> None:
    host = shop["host"]
    play(twin, shop)
    twin.wait_for(resolves_to(twin, host, ONPREM), 60, f"{NAME} -> on-prem {ONPREM} on {host}")

    play(twin, shop, "lower_ttl")
    play(twin, shop, "cutover")
    twin.wait_for(resolves_to(twin, host, shop["alb_address"]), 60, f"{NAME} -> the ALB on {host}")
    resolver = twin.name_resolver()
    assert resolver.url(NAME) == f"http://127.0.0.1:{twin.endpoints.load_balancers[ALB]['80']}"

    play(twin, shop, "rollback")
    twin.wait_for(resolves_to(twin, host, ONPREM), 60, f"{NAME} -> on-prem {ONPREM} again on {host}")
    assert resolver.addresses(NAME) == [ONPREM]


def test_names_outside_the_zones_still_resolve_on_the_hosts(twin: Twin, shop: dict[str, Any]) -> None:
    anchor = podman.exec_(shop["host"], "getent", "ahostsv4", twin.anchor, check=False, timeout=30)
    assert anchor.returncode == 0, anchor.stderr
    assert anchor.stdout.split()[0] == podman.container_ip(twin.anchor, twin.layout.network)
    missing = podman.exec_(shop["host"], "getent", "ahostsv4", "nothing.example.com", check=False, timeout=30)
    assert missing.returncode != 0
