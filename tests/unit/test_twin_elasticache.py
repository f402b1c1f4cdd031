"""The twin's ElastiCache stand-in (gearlift.twin.dataplane.elasticache): its pure parts, and the network
policy it is put behind (6379 only from the app security group), evaluated like test_twin_netpolicy."""

from __future__ import annotations

from pathlib import Path

import pytest

from gearlift.twin import tls
from gearlift.twin.dataplane import elasticache
from gearlift.twin.netpolicy import Node, Policy

from .test_twin_netpolicy import APP1, PLANE, VPC, _sg, _tcp, connects, topology

PRIMARY = "master.shop-rehearsal-sessions.abc123.use1.cache.amazonaws.com"
GROUP = {
    "ReplicationGroupId": "shop-rehearsal-sessions",
    "Status": "available",
    "ClusterEnabled": False,
    "TransitEncryptionEnabled": True,
    "AuthTokenEnabled": True,
    "NodeGroups": [
        {
            "PrimaryEndpoint": {"Address": PRIMARY, "Port": 6379},
            "ReaderEndpoint": {"Address": "replica.shop-rehearsal-sessions.abc123.use1.cache.amazonaws.com"},
            "NodeGroupMembers": [
                {"ReadEndpoint": {"Address": "shop-rehearsal-sessions-001.shop-rehearsal-sessions.abc123.use1.cache"}},
                {"ReadEndpoint": {"Address": "shop-rehearsal-sessions-002.shop-rehearsal-sessions.abc123.use1.cache"}},
            ],
        }
    ],
}
MEMBERS = [
    {"CacheSubnetGroupName": "shop-rehearsal-cache", "SecurityGroups": [{"SecurityGroupId": "sg-cache"}]},
    {"CacheSubnetGroupName": "shop-rehearsal-cache", "SecurityGroups": [{"SecurityGroupId": "sg-cache"}]},
]


def test_a_group_is_read_with_its_names_groups_and_flags() -> None:
    group = elasticache.read_group(GROUP, MEMBERS)
    assert group is not None
    assert group.names[0] == PRIMARY and len(group.names) == 4
    assert group.port == 6379 and group.tls and group.auth
    assert group.subnet_group == "shop-rehearsal-cache"
    assert group.security_groups == ("sg-cache",)
    assert elasticache.read_group({**GROUP, "Status": "creating"}, MEMBERS) is None
    assert elasticache.read_group({**GROUP, "ClusterEnabled": True}, MEMBERS) is None
    assert elasticache.read_group({**GROUP, "NodeGroups": []}, MEMBERS) is None


def test_the_token_comes_from_the_secret_naming_the_primary_endpoint() -> None:
    secrets = [
        {"username": "shop_app", "password": "p", "host": "shop.rds.amazonaws.com"},
        {"host": "master.other.use1.cache.amazonaws.com", "auth_token": "other-token-0123456789"},
        {"host": PRIMARY, "auth_token": "the-right-token-0123456789"},
    ]
    assert elasticache.find_token(secrets, PRIMARY) == "the-right-token-0123456789"
    assert elasticache.find_token(secrets[:2], PRIMARY) is None
    assert elasticache.find_token([{"host": PRIMARY, "auth_token": ""}], PRIMARY) is None


def test_server_config_is_tls_only_with_auth_and_plain_without() -> None:
    conf = elasticache.server_config(6379, True, "tok0123456789abcdef")
    lines = conf.splitlines()
    assert "port 0" in lines and "tls-port 6379" in lines
    assert 'requirepass "tok0123456789abcdef"' in lines
    assert "tls-auth-clients no" in lines  # ElastiCache does not ask clients for certificates
    plain = elasticache.server_config(6380, False, None).splitlines()
    assert "port 6380" in plain and not [line for line in plain if line.startswith(("tls-", "requirepass"))]


def test_the_certificate_names_every_endpoint_and_chains_to_the_twin_ca(tmp_path: Path) -> None:
    import subprocess

    ca = tmp_path / "ca"
    assert tls.ensure_ca(ca, "test-ca")
    assert not tls.ensure_ca(ca, "test-ca"), "a valid CA is kept"
    assert (ca / "ca.key").stat().st_mode & 0o077 == 0
    out = tmp_path / "tls"
    tls.issue_certificate(ca, out, "server", PRIMARY, [f"DNS:{PRIMARY}", "DNS:replica.example"])
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", str(out / "ca.crt"), "-verify_hostname", PRIMARY, str(out / "server.crt")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert (out / "server.key").stat().st_mode & 0o077 == 0


CACHE = Node(
    "elasticache:shop-rehearsal-sessions",
    "elasticache",
    "10.89.90.30",
    VPC,
    ("subnet-db",),
    ("10.40.20.0/24",),
    ("sg-cache",),
)
OUTSIDER = Node("i-other", "ec2", "10.89.90.12", VPC, ("subnet-app-b",), ("10.40.11.6/32",), ("sg-other",))


@pytest.mark.parametrize("app_egress", [True, False])
def test_only_the_app_group_reaches_6379(app_egress: bool) -> None:
    topo = topology()
    topo.security_groups["sg-cache"] = _sg("sg-cache", [_tcp(6379, group="sg-app")], [])
    topo.security_groups["sg-app"]["IpPermissionsEgress"] = (
        [_tcp(6379, group="sg-cache"), _tcp(3306, group="sg-db")] if app_egress else [_tcp(3306, group="sg-db")]
    )
    topo.security_groups["sg-other"] = _sg("sg-other", [])
    policy = Policy([APP1, OUTSIDER, CACHE], topo, PLANE)
    assert connects(policy, APP1, CACHE, 6379) is app_egress
    assert not connects(policy, OUTSIDER, CACHE, 6379)
    assert not connects(policy, APP1, CACHE, 6380)
    assert not connects(policy, CACHE, APP1, 80), "the cache opens nothing"
