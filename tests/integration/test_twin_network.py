"""The twin enforces security groups and routes on real hosts, as AWS does.

One VPC shaped like site.yml's (public subnets behind an internet gateway, app
subnets behind a NAT gateway, isolated DB subnets; ALB -> app -> DB security
groups), two app hosts, the RDS stand-in and an ALB, all built through the AWS
APIs of the twin's emulator. Connections are opened from inside the hosts
(podman exec) to each other's addresses on the twin network; on a permissive
twin every one of them would connect.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from gearlift.twin import images, podman
from gearlift.twin.netutil import http_get
from gearlift.twin.twin import HOSTS_API_PORT, Twin

pytestmark = pytest.mark.slow

APP_PORT = 8080


def _connects(container: str, address: str, port: int, timeout: float = 3.0) -> bool:
    """Open a TCP connection from inside ``container``; True when the handshake completed."""
    probe = (
        "import socket,sys\n"
        f"s=socket.socket(); s.settimeout({timeout})\n"
        f"sys.exit(0 if s.connect_ex(('{address}', {port})) == 0 else 1)\n"
    )
    return podman.exec_(container, "python3", "-c", probe, check=False, timeout=30).returncode == 0


def _tcp(port: int, *, group: str = "", cidr: str = "") -> list[dict[str, Any]]:
    rule: dict[str, Any] = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port}
    if group:
        rule["UserIdGroupPairs"] = [{"GroupId": group}]
    if cidr:
        rule["IpRanges"] = [{"CidrIp": cidr}]
    return [rule]


def _sg(ec2: Any, vpc: str, name: str) -> str:
    gid: str = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
    return gid


@pytest.fixture(scope="module")
def estate(twin: Twin) -> dict[str, Any]:
    images.ensure_apphost_image()
    ec2, rds = twin.clients("ec2"), twin.clients("rds")
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]

    def subnet(cidr: str, zone: str) -> str:
        sid: str = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]["SubnetId"]
        return sid

    public = [subnet(f"10.40.{i}.0/24", z) for i, z in enumerate(zones)]
    app = [subnet(f"10.40.{10 + i}.0/24", z) for i, z in enumerate(zones)]
    db = [subnet(f"10.40.{20 + i}.0/24", z) for i, z in enumerate(zones)]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public[0], AllocationId=eip)["NatGateway"]["NatGatewayId"]
    for subnets, route in ((public, {"GatewayId": igw}), (app, {"NatGatewayId": nat}), (db, None)):
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        if route:
            ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", **route)
        for sid in subnets:
            ec2.associate_route_table(RouteTableId=table, SubnetId=sid)

    alb_sg, app_sg, db_sg = (_sg(ec2, vpc, f"net-{tier}") for tier in ("alb", "app", "db"))
    ec2.authorize_security_group_ingress(
        GroupId=alb_sg,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    ec2.authorize_security_group_ingress(
        GroupId=app_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": APP_PORT, "ToPort": APP_PORT, "UserIdGroupPairs": [{"GroupId": alb_sg}]}
        ],
    )
    ec2.authorize_security_group_ingress(
        GroupId=db_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 3306, "ToPort": 3306, "UserIdGroupPairs": [{"GroupId": app_sg}]}
        ],
    )
    # The DB tier opens nothing (site.yml's rules_egress: []).
    ec2.revoke_security_group_egress(
        GroupId=db_sg, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )

    rds.create_db_subnet_group(DBSubnetGroupName="net-db", DBSubnetGroupDescription="db", SubnetIds=db)
    rds.create_db_instance(
        DBInstanceIdentifier="netdb",
        DBInstanceClass="db.t3.micro",
        Engine="mysql",
        MasterUsername="shopadmin",
        ManageMasterUserPassword=True,
        AllocatedStorage=20,
        DBSubnetGroupName="net-db",
        VpcSecurityGroupIds=[db_sg],
    )
    ami = twin.seeded["GEARLIFT_AMI_ID"]
    hosts = [
        ec2.run_instances(
            ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.micro", SubnetId=sid, SecurityGroupIds=[app_sg]
        )["Instances"][0]["InstanceId"]
        for sid in app
    ]
    elbv2 = twin.clients("elbv2")
    tg = elbv2.create_target_group(
        Name="net-tg",
        Protocol="HTTP",
        Port=APP_PORT,
        VpcId=vpc,
        HealthCheckPath="/",
        HealthCheckIntervalSeconds=5,
        HealthyThresholdCount=2,
        UnhealthyThresholdCount=2,
    )["TargetGroups"][0]["TargetGroupArn"]
    lb = elbv2.create_load_balancer(Name="net-alb", Subnets=public, SecurityGroups=[alb_sg], Type="application")
    elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancers"][0]["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
    )
    elbv2.register_targets(TargetGroupArn=tg, Targets=[{"Id": h} for h in hosts])
    twin.wait_for(lambda: "netdb" in twin.endpoints.databases, 180, "MariaDB for netdb")
    twin.wait_for(lambda: set(hosts) <= set(twin.addresses()), 120, "the app hosts")
    for host in hosts:  # a plain HTTP listener on the app port stands for Apache
        podman.run("exec", "-d", host, "python3", "-m", "http.server", str(APP_PORT), "--bind", "0.0.0.0")
    twin.wait_for(lambda: "net-alb" in twin.endpoints.load_balancers, 60, "the ALB")
    addresses = twin.addresses()
    return {
        "hosts": hosts,
        "ip": {h: addresses[h] for h in hosts},
        "db": twin.endpoints.databases["netdb"],
        "db_ip": podman.container_ip(twin.endpoints.databases["netdb"]["container"], twin.layout.network),
        "app_sg": app_sg,
        "alb_port": twin.endpoints.load_balancers["net-alb"]["80"],
    }


def test_an_app_host_cannot_reach_another_app_hosts_app_port(twin: Twin, estate: dict[str, Any]) -> None:
    a, b = estate["hosts"]
    assert not _connects(a, estate["ip"][b], APP_PORT)
    assert not _connects(b, estate["ip"][a], APP_PORT)


def test_the_db_stand_in_cannot_open_connections_to_app_hosts(twin: Twin, estate: dict[str, Any]) -> None:
    a, _ = estate["hosts"]
    assert not _connects(estate["db"]["container"], estate["ip"][a], APP_PORT)


def test_the_app_reaches_the_db_and_the_alb_reaches_the_app(twin: Twin, estate: dict[str, Any]) -> None:
    for host in estate["hosts"]:
        assert _connects(host, estate["db_ip"], 3306)
    deadline = time.monotonic() + 90
    status = 0
    while time.monotonic() < deadline and status != 200:
        twin.reconcile_once()
        status, _ = http_get(f"http://127.0.0.1:{estate['alb_port']}/", timeout=3)
        time.sleep(1)
    assert status == 200, "the ALB's group is admitted on the app port: traffic through HAProxy must flow"


def test_a_rule_change_in_the_emulator_takes_effect_on_the_next_reconcile(twin: Twin, estate: dict[str, Any]) -> None:
    a, b = estate["hosts"]
    ec2 = twin.clients("ec2")
    self_rule = [
        {
            "IpProtocol": "tcp",
            "FromPort": APP_PORT,
            "ToPort": APP_PORT,
            "UserIdGroupPairs": [{"GroupId": estate["app_sg"]}],
        }
    ]
    ec2.authorize_security_group_ingress(GroupId=estate["app_sg"], IpPermissions=self_rule)
    try:
        twin.reconcile_once()
        assert _connects(a, estate["ip"][b], APP_PORT), "a self-referencing rule admits the group's members"
    finally:
        ec2.revoke_security_group_ingress(GroupId=estate["app_sg"], IpPermissions=self_rule)
    twin.reconcile_once()
    assert not _connects(a, estate["ip"][b], APP_PORT), "revoked: closed again"


def test_a_host_cannot_change_its_own_rules(twin: Twin, estate: dict[str, Any]) -> None:
    """As an instance cannot edit its security groups from inside: no CAP_NET_ADMIN in the host."""
    for host in estate["hosts"]:
        caps = podman.inspect(host).get("EffectiveCaps") or []
        assert caps and "CAP_NET_ADMIN" not in caps, caps


def test_the_gateway_stays_reachable_when_the_host_with_the_lowest_mac_stops(
    twin: Twin, estate: dict[str, Any]
) -> None:
    """A VPC's router keeps its MAC whoever comes and goes.

    A Linux bridge left to itself takes the lowest MAC of its ports: a host joining with a lower one
    renames the bridge, and its leaving renames it again, while every other host's ARP entry keeps
    the old name for up to ~45 s and its packets to the gateway, the DNS resolver and the load
    balancers are lost (a scale-in's lost lookups, this lane's DNS stalls). The throwaway container's
    port on the bridge gets a MAC (00:00:5e:00:53:01, from the documentation range) lower than any
    podman assigns.
    """
    bridge = podman.network_interface(twin.layout.network)
    sysfs = Path("/sys/class/net") / bridge

    def mac() -> str:
        return (sysfs / "address").read_text().strip()

    assert mac() == podman.bridge_mac(twin.layout.network)
    assert (sysfs / "addr_assign_type").read_text().strip() == "3", "the MAC is set, so the kernel keeps it"
    host = estate["hosts"][0]
    gateway = twin.layout.gateway
    low = f"{twin.layout.prefix}-lowmac"
    assert _connects(host, gateway, HOSTS_API_PORT), "the host reaches the AWS API on the gateway"
    podman.run(
        *("run", "-d", "--name", low, "--network", twin.layout.network),
        *podman.RUN_FIX_ARGS,
        *(images.BASE_IMAGE, "sleep", "infinity"),
    )
    try:
        peer = podman.exec_(low, "cat", "/sys/class/net/eth0/iflink").stdout.strip()
        port = next(p.name for p in Path("/sys/class/net").iterdir() if (p / "ifindex").read_text().strip() == peer)
        subprocess.run(["ip", "link", "set", "dev", port, "address", "00:00:5e:00:53:01"], check=True)
        assert mac() == podman.bridge_mac(twin.layout.network), "a lower MAC joining renames nothing"
        assert _connects(host, gateway, HOSTS_API_PORT, timeout=2.0), "it still does, with the ARP entry it had"
        podman.run("stop", "-t", "0", low)
        assert mac() == podman.bridge_mac(twin.layout.network), "its leaving renames nothing"
        assert _connects(host, gateway, HOSTS_API_PORT, timeout=2.0), "at once, not after the ARP entry expires"
    finally:
        podman.remove(low, stop_timeout=0)
