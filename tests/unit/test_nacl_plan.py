"""plugins/filter/nacl.py (tier_nacl_rules): the tier ACLs playbooks/network.yml writes, evaluated packet by
packet with the twin's own stateless ACL evaluator (gearlift.twin.netpolicy.nacl_allows)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.gearlift.platform.plugins.filter.nacl import outside_vpc, tier_nacl_rules

from gearlift.twin.netpolicy import nacl_allows

PLAN: dict[str, Any] = {
    "vpc_cidr": "10.40.0.0/16",
    "public": ["10.40.0.0/24", "10.40.1.0/24"],
    "app": ["10.40.10.0/24", "10.40.11.0/24"],
    "db": ["10.40.20.0/24", "10.40.21.0/24"],
    "alb_ingress_cidrs": ["0.0.0.0/0"],
    "app_port": 80,
    "ssh_cidrs": [],
    "db_extra_cidrs": [],
    "onprem_cidrs": ["192.168.50.0/24"],
    "app_egress_extra": [],
    "efs": False,
}
PROTOCOLS = {"all": "-1", "tcp": "6", "udp": "17"}


def acl(tier: str, plan: dict[str, Any] | None = None) -> dict[str, Any]:
    """The filter's rules as DescribeNetworkAcls returns them (plus AWS's final deny rules)."""
    rules = tier_nacl_rules(tier, plan or PLAN)
    entries = []
    for egress, key in ((False, "ingress"), (True, "egress")):
        for number, proto, action, cidr, _, _, lo, hi in rules[key]:
            entries.append(
                {
                    "RuleNumber": number,
                    "Egress": egress,
                    "Protocol": PROTOCOLS[proto],
                    "RuleAction": action,
                    "CidrBlock": cidr,
                    "PortRange": {"From": lo, "To": hi},
                }
            )
        entries.append(
            {"RuleNumber": 32767, "Egress": egress, "Protocol": "-1", "RuleAction": "deny", "CidrBlock": "0.0.0.0/0"}
        )
    return {"Entries": entries}


def ip(text: str) -> ipaddress.IPv4Network:
    return ipaddress.ip_network(text)


CLIENT, ALB, APP, DB, ONPREM = (
    ip("203.0.113.9/32"),
    ip("10.40.0.7/32"),
    ip("10.40.11.5/32"),
    ip("10.40.20.9/32"),
    ip("192.168.50.10/32"),
)
REPLY = 40000  # a client's ephemeral port


def test_the_shop_flows_and_their_replies_pass_every_acl_on_the_way() -> None:
    public, app, db = acl("public"), acl("app"), acl("db")
    # client -> ALB 443, ALB -> client reply
    assert nacl_allows(public, False, "tcp", 443, CLIENT) and nacl_allows(public, True, "tcp", REPLY, CLIENT)
    # ALB -> app port (leaving the public subnet, entering the app subnet) and the reply
    assert nacl_allows(public, True, "tcp", 80, APP) and nacl_allows(app, False, "tcp", 80, ALB)
    assert nacl_allows(app, True, "tcp", REPLY, ALB) and nacl_allows(public, False, "tcp", REPLY, APP)
    # app -> DB 3306 and the reply
    assert nacl_allows(app, True, "tcp", 3306, DB) and nacl_allows(db, False, "tcp", 3306, APP)
    assert nacl_allows(db, True, "tcp", REPLY, APP) and nacl_allows(app, False, "tcp", REPLY, DB)
    # app -> AWS APIs (443 through the NAT in the public subnet) and the replies
    assert nacl_allows(app, True, "tcp", 443, CLIENT) and nacl_allows(public, False, "tcp", 443, APP)
    assert nacl_allows(public, True, "tcp", 443, CLIENT) and nacl_allows(public, False, "tcp", REPLY, CLIENT)
    assert nacl_allows(public, True, "tcp", REPLY, APP) and nacl_allows(app, False, "tcp", REPLY, CLIENT)
    # the database move: RDS <-> the site's MySQL, both directions, with replies
    assert nacl_allows(db, True, "tcp", 3306, ONPREM) and nacl_allows(db, False, "tcp", REPLY, ONPREM)
    assert nacl_allows(db, False, "tcp", 3306, ONPREM) and nacl_allows(db, True, "tcp", REPLY, ONPREM)


def test_everything_else_is_denied() -> None:
    public, app, db = acl("public"), acl("app"), acl("db")
    assert not nacl_allows(app, False, "tcp", 80, CLIENT), "the app port only from the public subnets"
    assert not nacl_allows(app, False, "tcp", 22, ALB), "no SSH without gearlift_ssh_ingress_cidrs"
    assert not nacl_allows(app, True, "tcp", 25, CLIENT), "no mail out"
    assert not nacl_allows(app, True, "udp", 53, CLIENT), "no DNS but the VPC resolver (not filtered)"
    assert not nacl_allows(db, True, "tcp", 443, CLIENT), "the DB tier opens nothing to the internet"
    assert not nacl_allows(db, False, "tcp", 3306, ALB), "MySQL only from the app subnets and the site"
    assert not nacl_allows(public, False, "tcp", 22, CLIENT)


def test_ssh_extra_egress_and_efs_open_only_their_paths() -> None:
    plan = {
        **PLAN,
        "ssh_cidrs": ["198.51.100.0/24"],
        "app_egress_extra": [{"port": 80, "cidr": "0.0.0.0/0"}, {"port": 123, "cidr": "10.30.0.0/16", "proto": "udp"}],
        "efs": True,
    }
    public, app = acl("public", plan), acl("app", plan)
    admin = ip("198.51.100.7/32")
    assert nacl_allows(app, False, "tcp", 22, admin) and nacl_allows(app, True, "tcp", REPLY, admin)
    assert nacl_allows(app, True, "tcp", 80, CLIENT) and nacl_allows(public, False, "tcp", 80, APP)
    assert nacl_allows(public, True, "tcp", 80, CLIENT)
    assert nacl_allows(app, True, "udp", 123, ip("10.30.1.1/32")) and nacl_allows(
        app, False, "udp", REPLY, ip("10.30.1.1/32")
    )
    assert nacl_allows(app, True, "tcp", 2049, ip("10.40.10.9/32")) and nacl_allows(app, False, "tcp", 2049, APP)
    # NFS is inside the ephemeral range the replies need anyway: the explicit rule is what EFS adds
    assert ["tcp", "10.40.0.0/16", 2049, 2049] in [
        r[1:2] + r[3:4] + r[6:] for r in tier_nacl_rules("app", plan)["egress"]
    ]
    assert not [r for r in tier_nacl_rules("app", PLAN)["egress"] if r[6] == 2049]


def test_the_sites_uploads_copier_reaches_nfs_through_the_app_acl_only() -> None:
    """An EFS extra source outside the VPC (the on-prem app server copying the uploads) gets NFS in and the
    replies out in the app tier's ACL; one inside the VPC adds nothing (the VPC rule covers it)."""
    copier = "192.168.50.20/32"
    plan = {**PLAN, "efs": True, "efs_extra_cidrs": [copier, "10.40.10.0/24"]}
    app = acl("app", plan)
    # in: NFS from the copier (an explicit rule); out: the mount target's replies to it
    assert nacl_allows(app, False, "tcp", 2049, ip(copier)) and nacl_allows(app, True, "tcp", REPLY, ip(copier))
    assert ["tcp", copier, 2049, 2049] in [r[1:2] + r[3:4] + r[6:] for r in tier_nacl_rules("app", plan)["ingress"]]
    assert not nacl_allows(app, True, "tcp", REPLY, ip("192.168.50.21/32")), "replies to the copier, not the site"
    assert not [r for r in tier_nacl_rules("app", plan)["ingress"] if r[6] == 2049 and r[3] == "10.40.10.0/24"]
    no_efs = {**plan, "efs": False}
    assert not nacl_allows(acl("app", no_efs), True, "tcp", REPLY, ip(copier)), "no file system, no path"


BAKE_PLAN: dict[str, Any] = {
    **PLAN,
    "bake": ["10.40.3.0/24"],
    "bake_egress_extra": [{"port": 80, "cidr": "0.0.0.0/0", "description": "apt mirrors"}],
}
BUILDER = ip("10.40.3.9/32")


def test_the_image_builder_reaches_out_through_the_nat_and_nothing_reaches_it() -> None:
    """The bake subnet: HTTPS and its named extras out (the NAT in the public tier forwards them), replies in;
    no flow into it, and the app and DB tiers stay closed to it."""
    bake, public, app, db = (acl(t, BAKE_PLAN) for t in ("bake", "public", "app", "db"))
    for port in (443, 80):
        assert nacl_allows(bake, True, "tcp", port, CLIENT) and nacl_allows(public, False, "tcp", port, BUILDER)
        assert nacl_allows(public, True, "tcp", REPLY, BUILDER) and nacl_allows(bake, False, "tcp", REPLY, CLIENT)
    assert not nacl_allows(bake, True, "tcp", 25, CLIENT) and not nacl_allows(bake, True, "tcp", 3306, DB)
    assert not nacl_allows(bake, False, "tcp", 22, CLIENT), "nothing comes in but replies"
    assert not nacl_allows(db, False, "tcp", 3306, BUILDER), "the builder never reaches the database"
    assert not nacl_allows(app, False, "tcp", 443, BUILDER), "no interface endpoints, no path into the app tier"
    # the app hosts do not get the builder's extras: 80 out of the app tier stays closed
    assert not nacl_allows(app, True, "tcp", 80, CLIENT)
    # with interface endpoints (in the app subnets) the builder reaches them on 443, and only that
    endpoints = {**BAKE_PLAN, "endpoints": True}
    app_with = acl("app", endpoints)
    assert nacl_allows(app_with, False, "tcp", 443, BUILDER) and nacl_allows(app_with, True, "tcp", REPLY, BUILDER)
    assert not nacl_allows(app_with, False, "tcp", 80, BUILDER)
    # the plan without a bake subnet is the plan before it: public and app rules unchanged
    assert tier_nacl_rules("public", PLAN) == tier_nacl_rules("public", {**PLAN, "bake_egress_extra": []})
    with pytest.raises(AnsibleFilterError, match="no bake subnet"):
        tier_nacl_rules("bake", PLAN)


def test_the_s3_gateway_endpoint_path_passes_the_bake_and_app_acls() -> None:
    """Through the S3 gateway endpoint (network.yml puts it on the app and bake route tables) a host talks to S3's
    public addresses (the region's S3 prefix list) on 443 from its own subnet, not through the NAT in the public
    tier: its tier's ACL alone must pass the request and the reply, with no rule naming the prefix list."""
    s3 = ip("52.216.8.1/32")  # in 52.216.0.0/15, S3 us-east-1 (AWS's ip-ranges.json, service S3)
    for tier, plan in (("bake", BAKE_PLAN), ("app", PLAN)):
        tier_acl = acl(tier, plan)
        assert nacl_allows(tier_acl, True, "tcp", 443, s3) and nacl_allows(tier_acl, False, "tcp", REPLY, s3), tier


def test_the_session_store_opens_redis_from_the_app_to_the_db_tier_only() -> None:
    plan = {**PLAN, "session_store": True}
    app, db = acl("app", plan), acl("db", plan)
    assert nacl_allows(app, True, "tcp", 6379, DB) and nacl_allows(db, False, "tcp", 6379, APP)
    assert nacl_allows(db, True, "tcp", REPLY, APP) and nacl_allows(app, False, "tcp", REPLY, DB)
    assert not nacl_allows(db, False, "tcp", 6379, ALB), "Redis only from the app subnets"
    # (from the site, 6379 is inside the replies the database move needs; the cache's security group stops it)
    # 6379 is not in the ephemeral range: without the store nothing lets it into the DB tier
    assert not nacl_allows(acl("db"), False, "tcp", 6379, APP)
    for tier in ("public", "app", "db"):  # still within AWS's default quota with the extra rules
        assert len(tier_nacl_rules(tier, {**plan, "efs": True})["ingress"]) <= 20
    # ... and beside the image builder's subnet and the interface endpoints
    everything = {**BAKE_PLAN, "session_store": True, "efs": True, "endpoints": True}
    for tier in ("public", "app", "db", "bake"):
        rules = tier_nacl_rules(tier, everything)
        assert len(rules["ingress"]) <= 20 and len(rules["egress"]) <= 20
    assert nacl_allows(acl("app", everything), True, "tcp", 6379, DB)
    assert not nacl_allows(acl("db", everything), False, "tcp", 6379, BUILDER), "Redis never from the builder"


def test_outside_vpc_keeps_the_blocks_a_gateway_reaches() -> None:
    assert outside_vpc(["10.40.1.0/24", "192.168.50.20/32", "10.41.0.0/16"], "10.40.0.0/16") == [
        "192.168.50.20/32",
        "10.41.0.0/16",
    ]
    assert outside_vpc([], "10.40.0.0/16") == []
    with pytest.raises(AnsibleFilterError, match="outside_vpc"):
        outside_vpc(["192.168.50.20/24"], "10.40.0.0/16")


def test_rules_are_numbered_from_100_unique_and_all_allow() -> None:
    for tier in ("public", "app", "db", "bake"):
        rules = tier_nacl_rules(tier, BAKE_PLAN)
        for direction in ("ingress", "egress"):
            numbers = [r[0] for r in rules[direction]]
            assert numbers == list(range(100, 100 + 10 * len(numbers), 10))
            assert len({tuple(r[1:]) for r in rules[direction]}) == len(numbers)
            assert {r[2] for r in rules[direction]} == {"allow"}


def test_more_rules_than_the_quota_are_refused_naming_the_settings() -> None:
    many = {**PLAN, "onprem_cidrs": [f"192.168.{i}.0/24" for i in range(10)]}
    with pytest.raises(AnsibleFilterError, match=r"more than AWS's default quota of 20.*gearlift_onprem_cidrs"):
        tier_nacl_rules("db", many)


def test_bad_input_is_refused() -> None:
    with pytest.raises(AnsibleFilterError, match="unknown tier"):
        tier_nacl_rules("edge", PLAN)
    with pytest.raises(AnsibleFilterError, match="incomplete plan"):
        tier_nacl_rules("app", {k: v for k, v in PLAN.items() if k != "db"})
    with pytest.raises(AnsibleFilterError, match="host bits"):
        tier_nacl_rules("db", {**PLAN, "onprem_cidrs": ["192.168.50.1/24"]})
