"""The twin's network policy: security groups and routes as AWS enforces them (pure logic).

The rulesets are read back by a small evaluator of the iptables rules they contain
(chains, -s/-d/-p/--dport matches, ACCEPT/jumps, policies), so the assertions are
about what passes, not about the text. The same rulesets are loaded into real
network namespaces by the slow lane (tests/integration/test_twin_network.py).
"""

from __future__ import annotations

import ipaddress
import shlex
from typing import Any

import pytest

from gearlift.twin.netpolicy import Match, Node, Plane, Policy, Topology, VpnPath, nacl_allows, permission_match

PLANE = Plane(gateway="10.89.90.1", twin_subnet="10.89.90.0/24", api_port=45123)
VPC = "vpc-1"


def _sg(gid: str, ingress: list[dict[str, Any]], egress: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    everything = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    return {
        "GroupId": gid,
        "GroupName": gid,
        "VpcId": VPC,
        "IpPermissions": ingress,
        "IpPermissionsEgress": everything if egress is None else egress,
    }


def _tcp(port: int, *, group: str = "", cidr: str = "") -> dict[str, Any]:
    return {
        "IpProtocol": "tcp",
        "FromPort": port,
        "ToPort": port,
        "UserIdGroupPairs": [{"GroupId": group}] if group else [],
        "IpRanges": [{"CidrIp": cidr}] if cidr else [],
    }


def _table(rid: str, subnets: list[str], routes: list[dict[str, Any]], main: bool = False) -> dict[str, Any]:
    assoc = [{"SubnetId": s} for s in subnets] + ([{"Main": True}] if main else [])
    local = {"DestinationCidrBlock": "10.40.0.0/16", "GatewayId": "local", "State": "active"}
    return {"RouteTableId": rid, "VpcId": VPC, "Associations": assoc, "Routes": [local, *routes]}


def topology(db_egress: list[dict[str, Any]] | None = None) -> Topology:
    """The shape site.yml builds: public (IGW), app (NAT) and isolated DB subnets; ALB -> app -> DB."""
    return Topology(
        security_groups={
            "sg-alb": _sg("sg-alb", [_tcp(443, cidr="0.0.0.0/0"), _tcp(80, cidr="0.0.0.0/0")]),
            "sg-app": _sg("sg-app", [_tcp(80, group="sg-alb")]),
            "sg-db": _sg("sg-db", [_tcp(3306, group="sg-app")], db_egress if db_egress is not None else []),
        },
        subnets={
            "subnet-pub": {"SubnetId": "subnet-pub", "VpcId": VPC, "CidrBlock": "10.40.0.0/24"},
            "subnet-app-a": {"SubnetId": "subnet-app-a", "VpcId": VPC, "CidrBlock": "10.40.10.0/24"},
            "subnet-app-b": {"SubnetId": "subnet-app-b", "VpcId": VPC, "CidrBlock": "10.40.11.0/24"},
            "subnet-db": {"SubnetId": "subnet-db", "VpcId": VPC, "CidrBlock": "10.40.20.0/24"},
        },
        route_tables=[
            _table("rtb-main", [], [], main=True),
            _table("rtb-pub", ["subnet-pub"], [{"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-1"}]),
            _table(
                "rtb-app",
                ["subnet-app-a", "subnet-app-b"],
                [{"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-1"}],
            ),
            _table("rtb-db", ["subnet-db"], []),
        ],
        vpcs={VPC: {"VpcId": VPC, "CidrBlock": "10.40.0.0/16"}},
    )


ALB = Node("alb:shop", "alb", "10.89.90.254", VPC, ("subnet-pub",), ("10.40.0.0/24",), ("sg-alb",))
APP1 = Node("i-app1", "ec2", "10.89.90.10", VPC, ("subnet-app-a",), ("10.40.10.5/32",), ("sg-app",))
APP2 = Node("i-app2", "ec2", "10.89.90.11", VPC, ("subnet-app-b",), ("10.40.11.5/32",), ("sg-app",))
DB = Node("rds:shop", "rds", "10.89.90.20", VPC, ("subnet-db",), ("10.40.20.0/24",), ("sg-db",))
ONPREM = Node("onprem:db", "onprem", "10.89.90.30", addresses=("192.168.50.10/32",))
NODES = [ALB, APP1, APP2, DB, ONPREM]


class Rules:
    """Evaluates an iptables-restore filter table for one new connection."""

    def __init__(self, text: str) -> None:
        self.policy: dict[str, str] = {}
        self.chains: dict[str, list[dict[str, str]]] = {}
        for line in text.splitlines():
            if line.startswith(":"):
                name, policy = line[1:].split()[:2]
                self.policy[name] = policy
                self.chains.setdefault(name, [])
            elif line.startswith("-A "):
                words = shlex.split(line)
                rule: dict[str, str] = {"chain": words[1]}
                i = 2
                while i < len(words):
                    if words[i] == "!":
                        rule["not" + words[i + 1]] = words[i + 2]
                        i += 3
                    elif words[i] in ("-m", "--ctstate"):
                        rule[words[i]] = words[i + 1]
                        i += 2
                    else:
                        rule[words[i]] = words[i + 1]
                        i += 2
                self.chains[rule["chain"]].append(rule)

    def verdict(
        self, chain: str, *, src: str, dst: str, proto: str, port: int, iface: str = "eth0", reply: bool = False
    ) -> str:
        """A new connection's first packet, or (reply=True) a packet of an established one."""
        for rule in self.chains[chain]:
            if "--ctstate" in rule:
                if reply:
                    return rule["-j"]
                continue
            if rule.get("-i", iface) != iface or rule.get("-o", iface) != iface:
                continue
            if "-s" in rule and ipaddress.ip_address(src) not in ipaddress.ip_network(rule["-s"]):
                continue
            if "-d" in rule and ipaddress.ip_address(dst) not in ipaddress.ip_network(rule["-d"]):
                continue
            if "not-d" in rule and ipaddress.ip_address(dst) in ipaddress.ip_network(rule["not-d"]):
                continue
            if "-p" in rule and rule["-p"] != proto:
                continue
            if "--dport" in rule:
                lo, _, hi = rule["--dport"].partition(":")
                if not int(lo) <= port <= int(hi or lo):
                    continue
            target = rule["-j"]
            if target in ("ACCEPT", "DROP", "REJECT", "RETURN"):
                return target
            inner = self.verdict(target, src=src, dst=dst, proto=proto, port=port, iface=iface, reply=reply)
            if inner != "RETURN":
                return inner
        return self.policy.get(chain, "-") if chain in ("INPUT", "OUTPUT", "FORWARD") else "RETURN"


def _rules(policy: Policy, node: Node) -> Rules:
    return Rules(policy.ruleset(node))


def connects(policy: Policy, src: Node, dst: Node, port: int, proto: str = "tcp") -> bool:
    """Both ends must agree: the source's egress and the destination's ingress."""
    out = _rules(policy, src).verdict("OUTPUT", src=src.twin_ip, dst=dst.twin_ip, proto=proto, port=port)
    inn = _rules(policy, dst).verdict("INPUT", src=src.twin_ip, dst=dst.twin_ip, proto=proto, port=port)
    return out == "ACCEPT" and inn == "ACCEPT"


@pytest.fixture
def policy() -> Policy:
    return Policy(NODES, topology(), PLANE)


def test_the_alb_reaches_the_app_hosts_and_the_app_reaches_the_db(policy: Policy) -> None:
    # The ALB's own egress is not filtered (it is HAProxy on the controller): the app's ingress decides.
    for app in (APP1, APP2):
        assert _rules(policy, app).verdict("INPUT", src=ALB.twin_ip, dst=app.twin_ip, proto="tcp", port=80) == "ACCEPT"
        assert connects(policy, app, DB, 3306)


def test_an_app_host_cannot_reach_another_app_hosts_app_port(policy: Policy) -> None:
    assert not connects(policy, APP1, APP2, 80)
    assert not connects(policy, APP2, APP1, 80)
    assert not connects(policy, APP1, APP2, 22), "no SSH between hosts"


def test_the_db_cannot_open_connections_to_the_app_hosts(policy: Policy) -> None:
    assert not connects(policy, DB, APP1, 80)
    assert not connects(policy, DB, APP1, 8080)


def test_only_the_app_tier_reaches_the_db(policy: Policy) -> None:
    assert _rules(policy, DB).verdict("INPUT", src=ALB.twin_ip, dst=DB.twin_ip, proto="tcp", port=3306) == "DROP"
    assert not connects(policy, APP1, DB, 22)


def test_a_rule_change_takes_effect_on_the_next_ruleset() -> None:
    open_app = topology()
    open_app.security_groups["sg-app"]["IpPermissions"].append(_tcp(80, group="sg-app"))
    policy = Policy(NODES, open_app, PLANE)
    assert connects(policy, APP1, APP2, 80), "a self-referencing rule admits the group's members"


def test_internet_egress_needs_a_route_and_a_rule(policy: Policy) -> None:
    mirror = "151.101.2.132"  # a public address: only evaluated, nothing is sent
    app_out = _rules(policy, APP1).verdict("OUTPUT", src=APP1.twin_ip, dst=mirror, proto="tcp", port=443)
    assert app_out == "ACCEPT", "app subnets route 0.0.0.0/0 through the NAT gateway"
    db_out = _rules(policy, DB).verdict("OUTPUT", src=DB.twin_ip, dst=mirror, proto="tcp", port=443)
    assert db_out == "DROP", "the DB tier has neither egress rules nor a route out"
    # Egress allowed but no route (isolated subnet): still no way out.
    open_db = Policy(NODES, topology(db_egress=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]), PLANE)
    assert _rules(open_db, DB).verdict("OUTPUT", src=DB.twin_ip, dst=mirror, proto="tcp", port=443) == "DROP"


def test_the_aws_apis_need_443_out_and_a_route_or_an_interface_endpoint() -> None:
    def api(policy: Policy, node: Node) -> str:
        return _rules(policy, node).verdict("OUTPUT", src=node.twin_ip, dst=PLANE.gateway, proto="tcp", port=45123)

    policy = Policy(NODES, topology(), PLANE)
    assert api(policy, APP1) == "ACCEPT"
    assert api(policy, DB) == "DROP"
    narrowed = topology()
    narrowed.security_groups["sg-app"]["IpPermissionsEgress"] = [_tcp(3306, group="sg-db")]
    assert api(Policy(NODES, narrowed, PLANE), APP1) == "DROP", "no 443 out: no AWS API"
    # Without a NAT route, an interface endpoint in the VPC carries the calls.
    no_nat = topology()
    no_nat.route_tables[2]["Routes"] = no_nat.route_tables[2]["Routes"][:1]
    assert api(Policy(NODES, no_nat, PLANE), APP1) == "DROP"
    no_nat.interface_endpoint_vpcs = frozenset({VPC})
    assert api(Policy(NODES, no_nat, PLANE), APP1) == "ACCEPT"


def test_dns_always_and_nothing_else_of_the_controller(policy: Policy) -> None:
    rules = _rules(policy, DB)
    assert rules.verdict("OUTPUT", src=DB.twin_ip, dst=PLANE.gateway, proto="udp", port=53) == "ACCEPT"
    assert rules.verdict("OUTPUT", src=DB.twin_ip, dst=PLANE.gateway, proto="tcp", port=22) == "DROP"
    # The controller (Session Manager port forwarding, the operator) reaches every host.
    assert rules.verdict("INPUT", src=PLANE.gateway, dst=DB.twin_ip, proto="tcp", port=3306) == "ACCEPT"


def test_the_twins_route53_resolver_is_reachable_on_53_only() -> None:
    """The Amazon-provided DNS is not filtered by security groups: the twin's Route 53 resolver (the
    hosts' name server) is open on 53, and only there, even for the DB tier that opens nothing else."""
    plane = Plane(gateway="10.89.90.1", twin_subnet="10.89.90.0/24", api_port=45123, resolver="10.89.90.254")
    rules = _rules(Policy(NODES, topology(), plane), DB)
    for proto in ("udp", "tcp"):
        assert rules.verdict("OUTPUT", src=DB.twin_ip, dst=plane.resolver, proto=proto, port=53) == "ACCEPT"
    assert rules.verdict("OUTPUT", src=DB.twin_ip, dst=plane.resolver, proto="tcp", port=80) == "DROP"
    without = _rules(Policy(NODES, topology(), PLANE), DB)
    assert without.verdict("OUTPUT", src=DB.twin_ip, dst="10.89.90.254", proto="udp", port=53) == "DROP"


def test_a_host_without_groups_has_no_ingress() -> None:
    bare = Node("i-bare", "ec2", "10.89.90.40", VPC, ("subnet-app-a",), ("10.40.10.9/32",), ())
    policy = Policy([*NODES, bare], topology(), PLANE)
    assert not connects(policy, APP1, bare, 80)
    assert _rules(policy, bare).verdict("OUTPUT", src=bare.twin_ip, dst=DB.twin_ip, proto="tcp", port=3306) == "DROP"


def test_cidr_rules_match_the_hosts_aws_addresses_not_the_twins() -> None:
    by_cidr = topology()
    by_cidr.security_groups["sg-db"]["IpPermissions"] = [_tcp(3306, cidr="10.40.10.0/24")]  # app subnet a only
    policy = Policy(NODES, by_cidr, PLANE)
    assert connects(policy, APP1, DB, 3306)
    assert not connects(policy, APP2, DB, 3306)


@pytest.mark.parametrize(
    ("perm", "expected"),
    [
        ({"IpProtocol": "-1"}, Match("all")),
        ({"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443}, Match("tcp", "443")),
        ({"IpProtocol": "tcp", "FromPort": 1024, "ToPort": 65535}, Match("tcp", "1024:65535")),
        ({"IpProtocol": "6", "FromPort": 0, "ToPort": 65535}, Match("tcp")),
        ({"IpProtocol": "udp", "FromPort": 53, "ToPort": 53}, Match("udp", "53")),
        ({"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1}, Match("icmp")),
        ({"IpProtocol": "58"}, None),
    ],
)
def test_permissions_translate_to_matches(perm: dict[str, Any], expected: Match | None) -> None:
    assert permission_match(perm) == expected


def _hybrid(*, route: bool = True, vpn: bool = True, attached: bool = True) -> Topology:
    """The DB tier's path to the on-prem source: a VGW route, a VPN carrying the site, the move's rules."""
    topo = topology(db_egress=[_tcp(3306, cidr="192.168.50.10/32")])
    topo.security_groups["sg-db"]["IpPermissions"].append(_tcp(3306, cidr="192.168.50.0/24"))
    if route:
        topo.route_tables[3]["Routes"].append({"DestinationCidrBlock": "192.168.50.0/24", "GatewayId": "vgw-1"})
    if vpn:
        topo.vpn_paths = (VpnPath("vgw-1", frozenset({VPC} if attached else set()), ("192.168.50.0/24",)),)
    return topo


def test_the_db_reaches_the_on_prem_source_only_through_a_provisioned_vpn_path() -> None:
    policy = Policy(NODES, _hybrid(), PLANE)
    assert connects(policy, DB, ONPREM, 3306), "replication from the source over the VPN"
    assert connects(policy, ONPREM, DB, 3306), "the copy and the on-prem apps over the VPN"
    assert not connects(policy, DB, ONPREM, 22), "only what the move opened"
    assert not connects(policy, APP1, ONPREM, 3306), "the app subnets have no route to the site"
    for missing in ({"route": False}, {"vpn": False}, {"attached": False}):
        cut = Policy(NODES, _hybrid(**missing), PLANE)
        assert not connects(cut, DB, ONPREM, 3306), missing
        assert not connects(cut, ONPREM, DB, 3306), missing


def test_without_the_moves_rules_the_vpn_alone_opens_nothing() -> None:
    topo = _hybrid()
    topo.security_groups["sg-db"]["IpPermissionsEgress"] = []
    topo.security_groups["sg-db"]["IpPermissions"] = [_tcp(3306, group="sg-app")]
    policy = Policy(NODES, topo, PLANE)
    assert not connects(policy, DB, ONPREM, 3306)
    assert not connects(policy, ONPREM, DB, 3306)


def test_an_open_ingress_rule_does_not_admit_the_site_without_a_path() -> None:
    topo = topology()
    topo.security_groups["sg-app"]["IpPermissions"].append(_tcp(80, cidr="0.0.0.0/0"))
    policy = Policy(NODES, topo, PLANE)
    assert _rules(policy, APP1).verdict("INPUT", src=ONPREM.twin_ip, dst=APP1.twin_ip, proto="tcp", port=80) == "DROP"
    assert _rules(policy, APP1).verdict("INPUT", src=APP2.twin_ip, dst=APP1.twin_ip, proto="tcp", port=80) == "ACCEPT"


# ---------------------------------------------------------------- network ACLs (stateless, per subnet)


def _entry(number: int, egress: bool, cidr: str, action: str = "allow", proto: str = "6", ports: str = "") -> dict:
    entry: dict[str, Any] = {
        "RuleNumber": number,
        "Egress": egress,
        "CidrBlock": cidr,
        "RuleAction": action,
        "Protocol": proto,
    }
    if ports:
        lo, _, hi = ports.partition("-")
        entry["PortRange"] = {"From": int(lo), "To": int(hi or lo)}
    return entry


def _acl(acl_id: str, subnets: list[str], entries: list[dict[str, Any]], default: bool = False) -> dict[str, Any]:
    star = [_entry(32767, e, "0.0.0.0/0", "deny", "-1") for e in (False, True)]
    return {
        "NetworkAclId": acl_id,
        "VpcId": VPC,
        "IsDefault": default,
        "Associations": [{"SubnetId": s} for s in subnets],
        "Entries": entries + star,
    }


EPH = "1024-65535"


def tier_acls(app_egress_443: bool = True, db_reply_to_app: bool = True) -> list[dict[str, Any]]:
    """What playbooks/network.yml builds: public, app, DB ACLs with explicit ephemeral-port returns."""
    app_out = [_entry(100, True, "0.0.0.0/0", ports="443")] if app_egress_443 else []
    db_out = [_entry(100, True, "10.40.10.0/23", ports=EPH)] if db_reply_to_app else []
    return [
        _acl("acl-default", [], [_entry(100, e, "0.0.0.0/0", proto="-1") for e in (False, True)], default=True),
        _acl(
            "acl-app",
            ["subnet-app-a", "subnet-app-b"],
            [
                _entry(100, False, "10.40.0.0/24", ports="80"),
                _entry(110, False, "0.0.0.0/0", ports=EPH),
                *app_out,
                _entry(110, True, "10.40.20.0/24", ports="3306"),
                _entry(120, True, "10.40.0.0/24", ports=EPH),
            ],
        ),
        _acl(
            "acl-db",
            ["subnet-db"],
            [_entry(100, False, "10.40.10.0/23", ports="3306"), _entry(90, False, "10.40.10.5/32", "deny"), *db_out],
        ),
    ]


def nacl_policy(**kwargs: bool) -> Policy:
    topo = topology()
    topo.network_acls = tier_acls(**kwargs)
    return Policy(NODES, topo, PLANE)


def exchange(policy: Policy, src: Node, dst: Node, port: int, reply_port: int = 40000) -> bool:
    """A TCP exchange: the first packet and the reply, each through both hosts' rulesets (ACLs are stateless)."""
    there = connects(policy, src, dst, port)
    back_out = _rules(policy, dst).verdict(
        "OUTPUT", src=dst.twin_ip, dst=src.twin_ip, proto="tcp", port=reply_port, reply=True
    )
    back_in = _rules(policy, src).verdict(
        "INPUT", src=dst.twin_ip, dst=src.twin_ip, proto="tcp", port=reply_port, reply=True
    )
    return there and back_out == "ACCEPT" and back_in == "ACCEPT"


def test_acl_rules_are_evaluated_in_rule_number_order_first_match_wins() -> None:
    [_, _, db_acl] = tier_acls()
    # rule 90 denies one app host before rule 100 allows its subnet
    assert not nacl_allows(db_acl, False, "tcp", 3306, ipaddress.ip_network("10.40.10.5/32"))
    assert nacl_allows(db_acl, False, "tcp", 3306, ipaddress.ip_network("10.40.11.5/32"))
    assert not nacl_allows(db_acl, False, "tcp", 22, ipaddress.ip_network("10.40.11.5/32")), "the final rule denies"
    assert not nacl_allows(db_acl, True, "tcp", 443, ipaddress.ip_network("8.8.8.8/32"))


def test_tier_acls_keep_the_shop_flows_both_ways() -> None:
    policy = nacl_policy()
    assert exchange(policy, APP2, DB, 3306), "app -> DB and the DB's reply to an ephemeral port"
    for app in (APP1, APP2):
        inbound = _rules(policy, app).verdict("INPUT", src=ALB.twin_ip, dst=app.twin_ip, proto="tcp", port=80)
        reply = _rules(policy, app).verdict(
            "OUTPUT", src=app.twin_ip, dst=ALB.twin_ip, proto="tcp", port=50000, reply=True
        )
        assert (inbound, reply) == ("ACCEPT", "ACCEPT")


def test_a_deny_rule_stops_what_the_security_groups_allow() -> None:
    policy = nacl_policy()
    assert not connects(policy, APP1, DB, 3306), "rule 90 of the DB ACL denies 10.40.10.5"
    assert connects(Policy(NODES, topology(), PLANE), APP1, DB, 3306), "without ACL data the groups decide"


def test_acls_are_stateless_a_missing_return_rule_drops_the_replies() -> None:
    policy = nacl_policy(db_reply_to_app=False)
    assert connects(policy, APP2, DB, 3306), "the first packet passes both ACLs"
    assert not exchange(policy, APP2, DB, 3306), "the DB subnet's ACL lets no reply out to the ephemeral port"


def test_same_subnet_traffic_is_not_filtered_by_acls() -> None:
    twin = Node("i-app3", "ec2", "10.89.90.12", VPC, ("subnet-app-a",), ("10.40.10.9/32",), ("sg-app",))
    topo = topology()
    topo.network_acls = tier_acls()
    topo.security_groups["sg-app"]["IpPermissions"].append(_tcp(8080, group="sg-app"))
    policy = Policy([*NODES, twin], topo, PLANE)
    assert exchange(policy, APP1, twin, 8080), "both in subnet-app-a: the app ACL has no 8080 rule, yet it passes"
    assert not connects(policy, APP2, twin, 8080), "from subnet-app-b the app ACL's inbound rules apply"


def test_the_aws_apis_need_the_acl_to_pass_443_out_and_the_replies_in() -> None:
    def api(policy: Policy, node: Node) -> str:
        return _rules(policy, node).verdict("OUTPUT", src=node.twin_ip, dst=PLANE.gateway, proto="tcp", port=45123)

    assert api(nacl_policy(), APP1) == "ACCEPT"
    assert api(nacl_policy(app_egress_443=False), APP1) == "DROP"


def test_dns_and_the_controller_are_not_filtered_by_acls() -> None:
    rules = _rules(nacl_policy(), DB)
    assert rules.verdict("OUTPUT", src=DB.twin_ip, dst=PLANE.gateway, proto="udp", port=53) == "ACCEPT"
    assert rules.verdict("INPUT", src=PLANE.gateway, dst=DB.twin_ip, proto="tcp", port=22) == "ACCEPT"


def test_the_twins_route53_resolver_is_not_filtered_by_acls_either() -> None:
    """Amazon DNS is never filtered by network ACLs: the twin's Route 53 resolver is that server for the
    hosts (a tier ACL without a rule for 53 dropped apt's lookups in the story's patch run)."""
    topo = topology()
    topo.network_acls = tier_acls()
    plane = Plane(gateway="10.89.90.1", twin_subnet="10.89.90.0/24", api_port=45123, resolver="10.89.90.254")
    rules = _rules(Policy(NODES, topo, plane), APP1)
    for proto in ("udp", "tcp"):
        assert rules.verdict("OUTPUT", src=APP1.twin_ip, dst=plane.resolver, proto=proto, port=53) == "ACCEPT"


def test_a_subnet_without_its_own_acl_has_the_vpcs_default_acl() -> None:
    policy = nacl_policy()
    stray = Node("i-stray", "ec2", "10.89.90.40", VPC, ("subnet-pub",), ("10.40.0.9/32",), ("sg-app",))
    assert policy.network_acl(stray) is not None and policy.network_acl(stray)["NetworkAclId"] == "acl-default"
    assert policy.network_acl(APP1)["NetworkAclId"] == "acl-app"


def test_an_efs_mount_target_is_behind_its_subnets_acl() -> None:
    """A mount target in subnet-app-b answers an app host of subnet-app-a only if the app ACL lets its replies out."""
    mount_target = Node("efs:fsmt-1", "efs", "10.89.90.30", VPC, ("subnet-app-b",), ("10.40.11.9/32",), ("sg-efs",))
    topo = topology()
    topo.security_groups["sg-efs"] = _sg("sg-efs", [_tcp(2049, group="sg-app")])
    topo.security_groups["sg-app"]["IpPermissionsEgress"] = [_tcp(2049, group="sg-efs")]
    topo.network_acls = tier_acls()
    [_, app_acl, _] = topo.network_acls
    app_acl["Entries"].append(_entry(125, True, "10.40.0.0/16", ports="2049"))  # NFS out, as network.yml adds it
    policy = Policy([*NODES, mount_target], topo, PLANE)
    assert connects(policy, APP1, mount_target, 2049), "in: NFS is inside the ACL's 1024-65535 rule"
    assert not exchange(policy, APP1, mount_target, 2049), "out: the app ACL returns replies to the public tier only"
    app_acl["Entries"].append(_entry(130, True, "10.40.10.0/23", ports=EPH))
    assert exchange(Policy([*NODES, mount_target], topo, PLANE), APP1, mount_target, 2049)
