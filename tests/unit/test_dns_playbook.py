"""playbooks/dns.yml end to end against the twin's emulator (moto with the twin's fidelity rules, as
the rehearsal runs it): every phase changes what it should, runs a second time without a change, and
runs in check mode without changing anything.

The emulator answers Route 53 (zones, weighted and alias records; alias records without a TTL, as
AWS), ACM (a DNS-validated request is issued once its validation CNAME is in a zone, as AWS) and
ELBv2 (the ALB the cutover aliases).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from gearlift.twin.controlplane import MotoControlPlane

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ZONE = "example.com"
NAME = "shop.example.com"
ONPREM = "192.168.50.20"
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory, emulator: MotoControlPlane) -> Iterator[dict[str, Any]]:
    emulator.reset()
    url = emulator.url
    env = {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=url, **_keys())
    elbv2 = boto3.client("elbv2", region_name=REGION, endpoint_url=url, **_keys())
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.40.{i}.0/24", AvailabilityZone=f"{REGION}{z}")["Subnet"]["SubnetId"]
        for i, z in enumerate("ab")
    ]
    lb = elbv2.create_load_balancer(Name="shop-rehearsal", Subnets=subnets, Type="application")["LoadBalancers"][0]
    tmp = tmp_path_factory.mktemp("dns")
    variables = {
        "gearlift_environment": "rehearsal",
        "gearlift_project": "shop",
        "gearlift_region": REGION,
        "gearlift_vpc_cidr": "10.40.0.0/16",
        "gearlift_certificate_mode": "acm_dns",
        "gearlift_dns_zone": ZONE,
        "gearlift_shop_domain": NAME,
        "gearlift_dns_onprem_address": ONPREM,
        "gearlift_dns_canary_weight": 30,
    }
    (tmp / "vars.json").write_text(json.dumps(variables))
    (tmp / "hosts.yml").write_text(
        "all:\n  children:\n    controller:\n      hosts:\n        localhost:\n"
        "          ansible_connection: local\n          ansible_python_interpreter: " + sys.executable + "\n"
    )
    yield {"env": env, "tmp": tmp, "url": url, "lb": lb}


def _keys() -> dict[str, str]:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def play(aws: dict[str, Any], *args: str) -> dict[str, int]:
    """Run dns.yml; the recap's counters of localhost."""
    env = {**os.environ, **aws["env"], "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    proc = subprocess.run(
        [
            str(PLAYBOOK),
            "-i",
            str(aws["tmp"] / "hosts.yml"),
            "-e",
            f"@{aws['tmp'] / 'vars.json'}",
            str(REPO / "playbooks" / "dns.yml"),
            *args,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    recap = re.search(r"localhost\s+: ok=(\d+)\s+changed=(\d+)", proc.stdout)
    assert recap, proc.stdout[-2000:]
    return {"ok": int(recap[1]), "changed": int(recap[2])}


def records(aws: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """SetIdentifier -> record of the shop's name."""
    r53 = boto3.client("route53", region_name=REGION, endpoint_url=aws["url"], **_keys())
    [zone] = [z for z in r53.list_hosted_zones()["HostedZones"] if z["Name"] == ZONE + "."]
    sets = r53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
    return {s.get("SetIdentifier", ""): s for s in sets if s["Name"] == NAME + "." and s["Type"] == "A"}


def test_dns_phases_idempotent_and_check_mode(aws: dict[str, Any]) -> None:
    # check mode on a fresh account: reports the zone and the certificate, creates nothing
    assert play(aws, "--check")["changed"] >= 2
    r53 = boto3.client("route53", region_name=REGION, endpoint_url=aws["url"], **_keys())
    assert not [z for z in r53.list_hosted_zones()["HostedZones"] if z["Name"] == ZONE + "."]
    acm = boto3.client("acm", region_name=REGION, endpoint_url=aws["url"], **_keys())
    assert not [c for c in acm.list_certificates()["CertificateSummaryList"] if c["DomainName"] == NAME]

    # provision: zone, certificate (requested, validated, issued), the legacy record
    assert play(aws)["changed"] > 0
    legacy = records(aws)
    assert set(legacy) == {"onprem"}
    assert legacy["onprem"]["ResourceRecords"] == [{"Value": ONPREM}] and legacy["onprem"]["TTL"] == 300
    [cert] = [c for c in acm.list_certificates()["CertificateSummaryList"] if c["DomainName"] == NAME]
    assert cert["DomainName"] == NAME
    assert acm.describe_certificate(CertificateArn=cert["CertificateArn"])["Certificate"]["Status"] == "ISSUED"
    [zone] = [z for z in r53.list_hosted_zones()["HostedZones"] if z["Name"] == ZONE + "."]
    names = {s["Name"] for s in r53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]}
    assert any(n.startswith("_") and n.endswith(NAME + ".") for n in names), names  # the validation CNAME
    assert play(aws)["changed"] == 0

    # lower_ttl: check mode changes nothing, then the TTL drops, then nothing more
    assert play(aws, "--tags", "lower_ttl", "--check")["changed"] == 1
    assert records(aws)["onprem"]["TTL"] == 300
    assert play(aws, "--tags", "lower_ttl")["changed"] == 1
    assert records(aws)["onprem"]["TTL"] == 60
    assert play(aws, "--tags", "lower_ttl")["changed"] == 0

    # cutover with a 30 % canary
    assert play(aws, "--tags", "cutover", "--check")["changed"] == 2
    assert set(records(aws)) == {"onprem"}
    assert play(aws, "--tags", "cutover")["changed"] == 2
    cut = records(aws)
    assert cut["alb"]["Weight"] == 30 and cut["onprem"]["Weight"] == 70
    alias = cut["alb"]["AliasTarget"]
    assert alias["DNSName"].rstrip(".").lower() == "dualstack." + aws["lb"]["DNSName"].lower()
    assert alias["HostedZoneId"] == aws["lb"]["CanonicalHostedZoneId"]
    assert play(aws, "--tags", "cutover")["changed"] == 0
    # the untagged run (site.yml again) never moves the name back
    assert play(aws)["changed"] == 0
    assert set(records(aws)) == {"onprem", "alb"}

    # rollback: check mode, then back to the legacy shop only, then nothing more
    assert play(aws, "--tags", "rollback", "--check")["changed"] == 2
    assert set(records(aws)) == {"onprem", "alb"}
    assert play(aws, "--tags", "rollback")["changed"] == 2
    back = records(aws)
    assert set(back) == {"onprem"} and back["onprem"]["Weight"] == 100
    assert play(aws, "--tags", "rollback")["changed"] == 0
