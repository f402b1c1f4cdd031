"""What the network lets through, as AWS enforces it: security groups and route tables.

Pure logic, no I/O: from the emulator's descriptions (security groups, subnets,
route tables, VPC endpoints) and the twin's hosts (EC2 containers, RDS
stand-ins, each load balancer's source address, the on-prem estate), build one
iptables ruleset per host, applied in that host's network namespace by
gearlift.twin.dataplane.network. The rules follow the EC2 and VPC user guides:

- Security groups are stateful (replies to allowed traffic pass both ways),
  allow-only, default deny for ingress; egress is what the group's outbound
  rules allow (a new group's default all-traffic outbound rule included).
  A rule's source or destination is a CIDR or another security group: a
  group reference means "the network interfaces that carry that group", so
  it is resolved to the current members' addresses on every reconcile.
- Traffic to the Amazon-provided DNS server is not filtered by security
  groups ("Security group rules", EC2 user guide): port 53 to the twin's
  gateway (the network's resolver) and to the twin's Route 53 resolver
  (Plane.resolver) is always allowed.
- A destination outside the VPC needs a route in the subnet's route table
  (the explicitly associated one, else the VPC's main table): the internet
  through an internet or NAT gateway (0.0.0.0/0); the VPC's own CIDR is the
  implicit `local` route.
- The AWS APIs: the twin's emulator (one port on the gateway address) stands
  for the regional public endpoints on 443. A host reaches it when its
  security groups allow TCP 443 out to 0.0.0.0/0 and its subnet routes to the
  internet, or when the VPC has an interface endpoint (which the twin does not
  distinguish by service).

- The instance metadata service (169.254.169.254:80) is not filtered by security groups:
  an EC2 host's namespace sends it to the twin's IMDS server on the gateway (nat table).

- The on-premises estate is outside every VPC, at its site addresses: a VPC
  host and an on-prem host reach each other only when the VPC host's route
  table sends the on-prem address to a virtual private gateway attached to its
  VPC, and an available Site-to-Site VPN connection on that gateway carries a
  static route covering the address; the VPC host's security groups then
  decide with the on-prem address as the peer (the on-prem side's own
  firewall is the customer's and admits what the VPN delivers).

- Network ACLs are stateless and evaluated per packet, replies included, at
  the subnet boundary ("Control subnet traffic with network ACLs", VPC user
  guide): a packet leaving a host passes its subnet's ACL outbound rules and,
  arriving, the destination subnet's inbound rules, each in rule-number order,
  first match wins, the final rule denies. Traffic between addresses of the same
  subnet is not filtered, nor traffic to or from the Amazon DNS server, the
  instance metadata service and Amazon Time Sync (link-local). A subnet without
  an explicitly associated ACL has its VPC's default ACL. Each host's ruleset
  evaluates its own subnet's ACL (GL_NACL_IN / GL_NACL_OUT, before the
  stateful accept of replies); the ACL's CIDRs are resolved to the twin
  addresses of the hosts in them, as for security groups.

Approximations, each in docs/twin-fidelity.md: the controller (the gateway
address: Session Manager port forwarding, the operator) reaches every host;
prefix lists are not evaluated; a load balancer's or an on-prem host's side of
an ACL is not (only the VPC hosts' own subnets' ACLs); BGP-routed VPN connections and
transit gateways carry nothing; a load balancer's own egress is not filtered.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

Net = ipaddress.IPv4Network


def _net(text: str, strict: bool = False) -> Net:
    return ipaddress.IPv4Network(text, strict=strict)


ANYWHERE = _net("0.0.0.0/0")
IMDS_ADDRESS = "169.254.169.254"
# Kinds of host the twin runs ("efs": an EFS mount target, "elasticache": a replication group's server).
# "onprem" hosts are outside every VPC.
KINDS = ("ec2", "rds", "alb", "efs", "elasticache", "onprem")


@dataclass(frozen=True)
class Node:
    """One host (or traffic source) on the twin network.

    ``addresses`` are what the node is in AWS's terms, for matching CIDR rules
    and routes: an instance's private IP, the subnets an RDS instance or a load
    balancer has interfaces in; ``twin_ip`` is where its packets come from here.
    """

    key: str
    kind: str
    twin_ip: str
    vpc_id: str = ""
    subnet_ids: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    def networks(self) -> list[Net]:
        return [_net(a) for a in self.addresses]


@dataclass
class Topology:
    """The emulator's view of the network, as the EC2 API describes it."""

    security_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    subnets: dict[str, dict[str, Any]] = field(default_factory=dict)
    route_tables: list[dict[str, Any]] = field(default_factory=list)
    vpcs: dict[str, dict[str, Any]] = field(default_factory=dict)
    interface_endpoint_vpcs: frozenset[str] = frozenset()
    vpn_paths: tuple[VpnPath, ...] = ()
    network_acls: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class VpnPath:
    """What one available Site-to-Site VPN connection carries: its gateway, the VPCs the gateway
    is attached to, and the on-premises networks of its static routes."""

    gateway_id: str
    vpc_ids: frozenset[str]
    cidrs: tuple[str, ...]

    def carries(self, vpc_id: str, gateway_id: str, destination: Net) -> bool:
        return (
            gateway_id == self.gateway_id
            and vpc_id in self.vpc_ids
            and any(destination.subnet_of(_net(c)) for c in self.cidrs)
        )


@dataclass(frozen=True)
class Plane:
    """Where the twin's own services are: the gateway (controller, DNS) and the AWS API port."""

    gateway: str
    twin_subnet: str
    api_port: int
    imds_port: int = 0  # the twin's IMDS server on the gateway (gearlift.twin.dataplane.imds); 0: none
    resolver: str = ""  # the twin's DNS resolver (route53), if it runs one


@dataclass(frozen=True)
class Match:
    """One allowed flow: protocol and port range as iptables arguments."""

    proto: str  # "all", "tcp", "udp", "icmp"
    ports: str = ""  # "80", "1024:65535", "" for any

    def args(self) -> str:
        if self.proto == "all":
            return ""
        out = f"-p {self.proto}"
        if self.ports and self.proto in ("tcp", "udp"):
            out += f" --dport {self.ports}"
        return out

    def covers(self, proto: str, port: int) -> bool:
        if self.proto not in ("all", proto):
            return False
        if not self.ports or self.proto == "all":
            return True
        lo, _, hi = self.ports.partition(":")
        return int(lo) <= port <= int(hi or lo)


PROTOCOLS = {"-1": "all", "tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "icmp": "icmp", "1": "icmp"}


def permission_match(perm: dict[str, Any]) -> Match | None:
    """An IpPermission's protocol and ports; None for what the twin cannot express (e.g. ICMPv6)."""
    proto = PROTOCOLS.get(str(perm.get("IpProtocol", "-1")).lower())
    if proto is None:
        return None
    if proto in ("all", "icmp"):
        return Match(proto)
    lo, hi = perm.get("FromPort"), perm.get("ToPort")
    if lo is None or hi is None or (int(lo) <= 0 and int(hi) >= 65535) or int(lo) == -1:
        return Match(proto)
    return Match(proto, str(lo) if lo == hi else f"{lo}:{hi}")


def _cidrs(perm: dict[str, Any]) -> list[Net]:
    return [_net(r["CidrIp"]) for r in perm.get("IpRanges", []) if r.get("CidrIp")]


def _group_refs(perm: dict[str, Any]) -> list[str]:
    return [p["GroupId"] for p in perm.get("UserIdGroupPairs", []) if p.get("GroupId")]


def _overlaps(node: Node, cidr: Net) -> bool:
    return any(net.overlaps(cidr) for net in node.networks())


#: NACL protocol numbers the twin evaluates (others, e.g. ICMPv6 "58", match nothing).
NACL_PROTOCOLS = {"-1": "all", "6": "tcp", "17": "udp", "1": "icmp"}
#: A client's ephemeral ports on the twin's hosts (Linux ip_local_port_range): replies go there.
EPHEMERAL = (32768, 60999)
#: Not filtered by network ACLs: Amazon DNS (the twin's gateway), metadata and time sync (link-local).
_LINK_LOCAL = "169.254.0.0/16"


def nacl_entries(acl: dict[str, Any], egress: bool) -> list[dict[str, Any]]:
    """The ACL's IPv4 rules of one direction in evaluation order (rule number ascending)."""
    entries = [e for e in acl.get("Entries", []) if bool(e.get("Egress")) == egress and e.get("CidrBlock")]
    return sorted(entries, key=lambda e: int(e.get("RuleNumber", 32767)))


def nacl_match(entry: dict[str, Any]) -> Match | None:
    """An ACL entry's protocol and destination ports (None: a protocol the twin does not express)."""
    proto = NACL_PROTOCOLS.get(str(entry.get("Protocol", "-1")))
    if proto is None:
        return None
    ports = entry.get("PortRange") or {}
    lo, hi = ports.get("From"), ports.get("To")
    if proto not in ("tcp", "udp") or lo is None or hi is None:
        return Match(proto)
    return Match(proto, str(lo) if lo == hi else f"{lo}:{hi}")


def nacl_allows(acl: dict[str, Any], egress: bool, proto: str, port: int, address: Net) -> bool:
    """One packet through one direction of an ACL: the first matching rule decides; none matching denies."""
    for entry in nacl_entries(acl, egress):
        match = nacl_match(entry)
        if match is None or not match.covers(proto, port):
            continue
        if not address.subnet_of(_net(entry["CidrBlock"])):
            continue
        return str(entry.get("RuleAction", "deny")).lower() == "allow"
    return False


class Policy:
    """Security-group and route evaluation over one snapshot of the twin."""

    def __init__(self, nodes: Iterable[Node], topology: Topology, plane: Plane) -> None:
        self.nodes = list(nodes)
        self.topology = topology
        self.plane = plane
        self.members: dict[str, list[Node]] = {}
        for node in self.nodes:
            for group in node.groups:
                self.members.setdefault(group, []).append(node)

    # ---------------------------------------------------------------- routes
    def route_table(self, node: Node) -> dict[str, Any] | None:
        """The subnet's explicitly associated route table, else its VPC's main table."""
        tables = self.topology.route_tables
        for subnet in node.subnet_ids:
            for table in tables:
                if any(a.get("SubnetId") == subnet for a in table.get("Associations", [])):
                    return table
        for table in tables:
            if table.get("VpcId") == node.vpc_id and any(a.get("Main") for a in table.get("Associations", [])):
                return table
        return None

    def route_target(self, node: Node, destination: Net) -> str | None:
        """The longest-prefix route covering ``destination``: 'local', 'igw-...', 'nat-...', or None."""
        vpc = self.topology.vpcs.get(node.vpc_id, {})
        best: tuple[int, str] | None = None
        for block in [vpc.get("CidrBlock"), *(a.get("CidrBlock") for a in vpc.get("CidrBlockAssociationSet", []))]:
            if block and destination.subnet_of(_net(block)):
                best = (_net(block).prefixlen, "local")
        table = self.route_table(node)
        for route in (table or {}).get("Routes", []):
            cidr = route.get("DestinationCidrBlock")
            if not cidr or route.get("State", "active") != "active":
                continue
            net = _net(cidr)
            if not destination.subnet_of(net):
                continue
            target = (
                route.get("NatGatewayId")
                or route.get("TransitGatewayId")
                or route.get("VpcPeeringConnectionId")
                or route.get("GatewayId")
                or route.get("NetworkInterfaceId")
                or ""
            )
            if best is None or net.prefixlen > best[0]:
                best = (net.prefixlen, target)
        return best[1] if best else None

    def internet_route(self, node: Node) -> bool:
        target = self.route_target(node, _net("8.8.8.8/32"))
        return bool(target) and str(target).startswith(("igw-", "nat-"))

    # --------------------------------------------------------------- matching
    def peers_for(self, node: Node, perm: dict[str, Any]) -> tuple[list[Node], list[Net]]:
        """Twin hosts a rule names (by group or CIDR), and the CIDRs that reach outside the twin."""
        peers: dict[str, Node] = {}
        for group in _group_refs(perm):
            for member in self.members.get(group, []):
                if member.key != node.key:
                    peers[member.key] = member
        outside: list[Net] = []
        for cidr in _cidrs(perm):
            for other in self.nodes:
                if other.key != node.key and _overlaps(other, cidr):
                    peers[other.key] = other
            if cidr == ANYWHERE or not any(cidr.subnet_of(_net(p)) for p in _private_ranges()):
                outside.append(cidr)
        return sorted(peers.values(), key=lambda n: n.key), outside

    def _permissions(self, node: Node, direction: str) -> Iterator[tuple[Match, dict[str, Any]]]:
        key = "IpPermissions" if direction == "in" else "IpPermissionsEgress"
        for group in node.groups:
            for perm in self.topology.security_groups.get(group, {}).get(key, []):
                match = permission_match(perm)
                if match is not None:
                    yield match, perm

    def onprem_path(self, vpc_node: Node, onprem: Node) -> bool:
        """A route to the on-prem address through an attached VGW whose VPN connection carries it."""
        for net in onprem.networks():
            target = self.route_target(vpc_node, net)
            if target and any(p.carries(vpc_node.vpc_id, target, net) for p in self.topology.vpn_paths):
                return True
        return False

    def reachable(self, source: Node, destination: Node) -> bool:
        """Is there a route from ``source`` to ``destination`` (either may be outside a VPC)?"""
        if source.kind == "onprem" and destination.kind == "onprem":
            return True  # the site's own network
        if destination.kind == "onprem":
            return self.onprem_path(source, destination)
        if source.kind == "onprem":
            return self.onprem_path(destination, source)
        if source.vpc_id and source.vpc_id == destination.vpc_id:
            return True  # the implicit local route
        return any(
            (target := self.route_target(source, net)) is not None and target != "local"
            for net in destination.networks()
        )

    # ----------------------------------------------------------- network ACLs
    def network_acl(self, node: Node) -> dict[str, Any] | None:
        """The ACL of the node's subnet (explicitly associated, else the VPC's default); None without ACL data."""
        acls = [a for a in self.topology.network_acls if a.get("VpcId") == node.vpc_id]
        for subnet in node.subnet_ids:
            for acl in acls:
                if any(a.get("SubnetId") == subnet for a in acl.get("Associations", [])):
                    return acl
        return next((a for a in acls if a.get("IsDefault")), None)

    def _own_subnets(self, node: Node) -> list[Net]:
        return [
            _net(self.topology.subnets[s]["CidrBlock"])
            for s in node.subnet_ids
            if self.topology.subnets.get(s, {}).get("CidrBlock")
        ]

    def _nacl_chain(self, node: Node, acl: dict[str, Any], egress: bool) -> list[str]:
        chain, flag = ("GL_NACL_OUT", "-d") if egress else ("GL_NACL_IN", "-s")
        out = [
            f"-A {chain} {flag} {self.plane.gateway}/32 -j RETURN",
            f"-A {chain} {flag} {_LINK_LOCAL} -j RETURN",
        ]
        if self.plane.resolver:  # Amazon DNS as the hosts see it: the twin's Route 53 resolver
            out.append(f"-A {chain} {flag} {self.plane.resolver}/32 -j RETURN")
        own = self._own_subnets(node)
        for other in self.nodes:
            nets = other.networks()
            if other.key != node.key and nets and all(any(n.subnet_of(s) for s in own) for n in nets):
                out.append(f"-A {chain} {flag} {other.twin_ip}/32 -j RETURN")  # same subnet: not filtered
        for entry in nacl_entries(acl, egress):
            match = nacl_match(entry)
            if match is None:
                continue
            cidr = _net(entry["CidrBlock"])
            verdict = "RETURN" if str(entry.get("RuleAction", "deny")).lower() == "allow" else "DROP"
            if cidr == ANYWHERE:
                targets = [""]
            else:
                targets = [f"{flag} {o.twin_ip}/32" for o in self.nodes if o.key != node.key and _overlaps(o, cidr)]
                if not any(cidr.subnet_of(_net(p)) for p in _private_ranges()):
                    targets.append(f"{flag} {cidr}")  # the internet side
            for target in targets:
                out.append(" ".join(w for w in (f"-A {chain}", target, match.args(), f"-j {verdict}") if w))
        out.append(f"-A {chain} -j DROP")
        return out

    def nacl_internet(self, node: Node) -> bool:
        """HTTPS to the internet and its replies through the node's subnet ACL (True without ACL data)."""
        acl = self.network_acl(node)
        if acl is None:
            return True
        internet = _net("8.8.8.8/32")
        replies = all(nacl_allows(acl, False, "tcp", port, internet) for port in EPHEMERAL)
        return nacl_allows(acl, True, "tcp", 443, internet) and replies

    def api_allowed(self, node: Node) -> bool:
        """The AWS APIs: TCP 443 out to the internet plus a route there, or an interface endpoint."""
        if node.kind not in ("ec2", "rds"):
            return False
        egress_443 = any(
            match.covers("tcp", 443) and ANYWHERE in _cidrs(perm) for match, perm in self._permissions(node, "out")
        )
        if not egress_443:
            return False
        if node.vpc_id in self.topology.interface_endpoint_vpcs:
            return True  # endpoints sit in the VPC's own subnets
        return self.internet_route(node) and self.nacl_internet(node)

    # ------------------------------------------------------------------ rules
    def ruleset(self, node: Node) -> str:
        """iptables-restore input for ``node``'s network namespace (filter table, IPv4)."""
        plane = self.plane
        lines = [
            "*filter",
            ":INPUT DROP [0:0]",
            ":FORWARD DROP [0:0]",
            ":OUTPUT DROP [0:0]",
            ":GL_IN - [0:0]",
            ":GL_OUT - [0:0]",
            ":GL_INTERNET - [0:0]",
            "-A INPUT -i lo -j ACCEPT",
        ]
        # An EFS mount target or a cache node is an interface in its subnet: the subnet's ACL filters it as any
        # host there.
        acl = self.network_acl(node) if node.kind in ("ec2", "rds", "efs", "elasticache") else None
        if acl is not None:
            # stateless: every packet, replies included, before the security groups' stateful accept
            lines[1:1] = [":GL_NACL_IN - [0:0]", ":GL_NACL_OUT - [0:0]"]
            lines.append("-A INPUT -j GL_NACL_IN")
        lines += [
            "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
            f"-A INPUT -s {plane.gateway}/32 -j ACCEPT",
            "-A INPUT -j GL_IN",
            "-A OUTPUT -o lo -j ACCEPT",
        ]
        if acl is not None:
            lines.append("-A OUTPUT -j GL_NACL_OUT")
        lines += [
            "-A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
            f"-A OUTPUT -d {plane.gateway}/32 -p udp --dport 53 -j ACCEPT",
            f"-A OUTPUT -d {plane.gateway}/32 -p tcp --dport 53 -j ACCEPT",
        ]
        if plane.imds_port and node.kind == "ec2":
            # IMDS (169.254.169.254, DNAT to the twin's server) is not filtered by security groups.
            lines.append(f"-A OUTPUT -d {plane.gateway}/32 -p tcp --dport {plane.imds_port} -j ACCEPT")
        if plane.resolver:
            lines += [
                f"-A OUTPUT -d {plane.resolver}/32 -p udp --dport 53 -j ACCEPT",
                f"-A OUTPUT -d {plane.resolver}/32 -p tcp --dport 53 -j ACCEPT",
            ]
        if self.api_allowed(node):
            lines.append(f"-A OUTPUT -d {plane.gateway}/32 -p tcp --dport {plane.api_port} -j ACCEPT")
        lines += [
            f"-A OUTPUT -d {plane.twin_subnet} -j GL_OUT",
            f"-A OUTPUT ! -d {plane.twin_subnet} -j GL_INTERNET",
        ]
        lines += self._ingress(node)
        lines += self._egress(node)
        if acl is not None:
            lines += self._nacl_chain(node, acl, egress=False) + self._nacl_chain(node, acl, egress=True)
        lines.append("COMMIT")
        return "\n".join(_unique(lines)) + "\n"

    def nat(self, node: Node) -> str:
        """An instance reaches its metadata at 169.254.169.254:80: the twin's IMDS server (nat table)."""
        nat = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
        nat.append(":POSTROUTING ACCEPT [0:0]")
        if self.plane.imds_port and node.kind == "ec2":
            nat.append(
                f"-A OUTPUT -d {IMDS_ADDRESS}/32 -p tcp --dport 80 "
                f"-j DNAT --to-destination {self.plane.gateway}:{self.plane.imds_port}"
            )
        return "\n".join([*nat, "COMMIT"]) + "\n"

    def _ingress(self, node: Node) -> list[str]:
        if node.kind == "onprem":
            return ["-A GL_IN -j ACCEPT"]  # the customer's own network: not AWS's to filter
        # Without a VPN path the on-prem estate cannot reach the VPC, even where a group allows 0.0.0.0/0.
        out = [
            f"-A GL_IN -s {o.twin_ip}/32 -j DROP"
            for o in self.nodes
            if o.kind == "onprem" and not self.reachable(o, node)
        ]
        for match, perm in self._permissions(node, "in"):
            peers, outside = self.peers_for(node, perm)
            if ANYWHERE in outside:
                out.append(f"-A GL_IN {match.args()} -j ACCEPT".replace("  ", " "))
                continue
            for peer in peers:
                if self.reachable(peer, node):
                    out.append(f"-A GL_IN -s {peer.twin_ip}/32 {match.args()} -j ACCEPT".replace("  ", " "))
        return out

    def _egress(self, node: Node) -> list[str]:
        if node.kind == "onprem":
            return ["-A GL_OUT -j ACCEPT", "-A GL_INTERNET -j ACCEPT"]
        out = []
        internet = self.internet_route(node)
        for match, perm in self._permissions(node, "out"):
            peers, outside = self.peers_for(node, perm)
            for peer in peers:
                # A load balancer's listeners are on the controller's loopback: nothing to reach here.
                if peer.kind != "alb" and self.reachable(node, peer):
                    out.append(f"-A GL_OUT -d {peer.twin_ip}/32 {match.args()} -j ACCEPT".replace("  ", " "))
            if internet:
                for cidr in outside:
                    out.append(f"-A GL_INTERNET -d {cidr} {match.args()} -j ACCEPT".replace("  ", " "))
        return out


def ruleset6() -> str:
    """IPv6: the twin's networks are IPv4 only; nothing but loopback."""
    return (
        "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT DROP [0:0]\n"
        "-A INPUT -i lo -j ACCEPT\n-A OUTPUT -o lo -j ACCEPT\nCOMMIT\n"
    )


def _private_ranges() -> tuple[str, ...]:
    return ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")


def _unique(lines: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for line in lines:
        if line not in seen:
            seen.add(line)
            out.append(line)
    return out
